/* SPDX-License-Identifier: MIT */
/*
 * shmcap version macros. Included by <shmcap.h>; do not include directly.
 *
 * ABI policy: while SHMCAP_VERSION_MAJOR is 0 the API may change between
 * minor versions; the library's SONAME carries the major and minor number
 * (libshmcap.so.0.1), so a program never silently runs against an
 * incompatible library. Every symbol is versioned by the linker script
 * src/libshmcap.map.
 */
#ifndef SHMCAP_VERSION_H
#define SHMCAP_VERSION_H

#define SHMCAP_VERSION_MAJOR 0
#define SHMCAP_VERSION_MINOR 1
#define SHMCAP_VERSION_PATCH 0

/* (major << 16) | (minor << 8) | patch, comparable with < and >. */
#define SHMCAP_VERSION_HEX                                                   \
	((SHMCAP_VERSION_MAJOR << 16) | (SHMCAP_VERSION_MINOR << 8) |        \
	 SHMCAP_VERSION_PATCH)

#endif /* SHMCAP_VERSION_H */
