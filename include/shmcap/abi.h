/* SPDX-License-Identifier: MIT */
/*
 * shmcap shared-memory layouts. Included by <shmcap.h>; do not include
 * directly.
 *
 * These structures live in regions that several processes map, perhaps at
 * different addresses. They are an ABI: fixed-width fields, no pointers,
 * explicit reserved space, a magic number and a version first, sizes and
 * offsets asserted below. Their fields are read and written only through
 * the shmcap functions, with atomic operations; they are declared here so
 * that applications can embed the objects in their own shared structures
 * (sizeof, alignment) and so that tools can decode them.
 *
 * Every object is 64 bytes (one cache line on x86-64 and arm64). A
 * semaphore or condition must be 4-byte aligned, a mutex 8-byte aligned (as
 * their C types are); 64-byte alignment avoids false sharing with
 * neighbours.
 * Integers are in the host's byte order: processes sharing memory run on
 * one host.
 *
 * Nothing read from these fields is trusted: a peer may have written any
 * bit pattern, and the functions then fail (-EBADMSG, -ETIMEDOUT ...), never
 * crash, spin without bound or wait past their timeout.
 */
#ifndef SHMCAP_ABI_H
#define SHMCAP_ABI_H

#include <stddef.h>
#include <stdint.h>

#define SHMCAP_SYNC_SIZE 64
#define SHMCAP_SYNC_VERSION 1
#define SHMCAP_SEM_MAGIC 0x4d455353u   /* "SSEM" little-endian */
#define SHMCAP_MUTEX_MAGIC 0x54554d53u /* "SMUT" */
#define SHMCAP_COND_MAGIC 0x444e4353u  /* "SCND" */

/*
 * Semaphore.
 *
 *   offset size field
 *   0      4    magic     SHMCAP_SEM_MAGIC
 *   4      2    version   SHMCAP_SYNC_VERSION
 *   6      2    reserved0 0
 *   8      4    value     the count, 0 .. SHMCAP_SEM_VALUE_MAX; futex word
 *   12     4    sleepers  processes asleep (or about to sleep) in the kernel
 *   16     48   reserved  0
 */
typedef struct shmcap_sem {
	uint32_t magic;
	uint16_t version;
	uint16_t reserved0;
	uint32_t value;
	uint32_t sleepers;
	uint32_t reserved[12];
} shmcap_sem;

/*
 * Mutex, recovered when its holder dies.
 *
 *   offset size field
 *   0      4    magic     SHMCAP_MUTEX_MAGIC
 *   4      2    version   SHMCAP_SYNC_VERSION
 *   6      2    reserved0 0
 *   8      8    owner     0 when unlocked; else bits 0-29 the holder's
 *                         thread id, bit 30 reserved (0), bit 31 "someone
 *                         sleeps", bits 32-63 the low 32 bits of the
 *                         holder's start time (clock ticks since boot, 0 if
 *                         the holder could not read it), which tells a live
 *                         holder from a recycled thread id; the 32-bit half
 *                         holding bits 0-31 (bytes 8-11 on little-endian
 *                         hosts, 12-15 on big-endian) is the futex word
 *   16     4    state     0 consistent, 1 holder died and the state is not
 *                         yet marked consistent, 2 not recoverable
 *   20     44   reserved  0
 */
typedef struct shmcap_mutex {
	uint32_t magic;
	uint16_t version;
	uint16_t reserved0;
	uint64_t owner;
	uint32_t state;
	uint32_t reserved[11];
} shmcap_mutex;

/*
 * Condition variable, used with a shmcap_mutex.
 *
 *   offset size field
 *   0      4    magic     SHMCAP_COND_MAGIC
 *   4      2    version   SHMCAP_SYNC_VERSION
 *   6      2    reserved0 0
 *   8      4    seq       incremented by every signal; futex word
 *   12     4    waiters   processes waiting
 *   16     48   reserved  0
 */
typedef struct shmcap_cond {
	uint32_t magic;
	uint16_t version;
	uint16_t reserved0;
	uint32_t seq;
	uint32_t waiters;
	uint32_t reserved[12];
} shmcap_cond;

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(shmcap_sem) == SHMCAP_SYNC_SIZE, "shmcap_sem size");
_Static_assert(offsetof(shmcap_sem, value) == 8, "shmcap_sem.value");
_Static_assert(offsetof(shmcap_sem, sleepers) == 12, "shmcap_sem.sleepers");
_Static_assert(sizeof(shmcap_mutex) == SHMCAP_SYNC_SIZE, "shmcap_mutex size");
_Static_assert(offsetof(shmcap_mutex, owner) == 8, "shmcap_mutex.owner");
_Static_assert(offsetof(shmcap_mutex, state) == 16, "shmcap_mutex.state");
_Static_assert(sizeof(shmcap_cond) == SHMCAP_SYNC_SIZE, "shmcap_cond size");
_Static_assert(offsetof(shmcap_cond, seq) == 8, "shmcap_cond.seq");
_Static_assert(offsetof(shmcap_cond, waiters) == 12, "shmcap_cond.waiters");
#endif

#endif /* SHMCAP_ABI_H */
