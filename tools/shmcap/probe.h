/* SPDX-License-Identifier: MIT */
/*
 * probe: what shmcap objects this host holds, as far as the caller may
 * see, found without any daemon or registry:
 *
 *   - processes (/proc/PID): those that map libshmcap, map or hold a
 *     shmcap region, or publish a shmcap name are actors;
 *   - regions: anonymous ones are memfds named "shmcap" (in
 *     /proc/PID/maps and /proc/PID/fd: "/memfd:shmcap (deleted)"), named
 *     ones are /dev/shm/shmcap.NAME; a region's identity is its (device,
 *     inode) pair, so a memfd mapped by three processes is one region;
 *   - published names: abstract Unix sockets "@shmcap-name-NAME" in
 *     /proc/net/unix, tied to a process by the socket inode among its
 *     descriptors.
 *
 * Another user's processes are skipped, never an error (they are counted
 * in `skipped`). A process that ends during the scan is left out, and so
 * is every run of the shmcap command itself (the same executable): a
 * concurrent `shmcap ls` reading a region must not make it look in use.
 */
#ifndef SHMCAP_PROBE_H
#define SHMCAP_PROBE_H

#include <stddef.h>
#include <sys/types.h>

#define PROBE_UNKNOWN ((unsigned long long)-1)

struct probe_region {
	unsigned long long dev, ino; /* identity */
	int named;		     /* 1: /dev/shm/shmcap.NAME */
	char name[256];		     /* NAME, or "" for an anonymous one */
	unsigned long long size;     /* bytes, or PROBE_UNKNOWN */
	unsigned long long resident; /* bytes in memory, or PROBE_UNKNOWN */
	uid_t owner;		     /* the file's owner, or (uid_t)-1 */
	double age;		     /* seconds since the file last changed,
					or -1 if unknown */
	/*
	 * What lives at its start, by magic number: "channel-spsc",
	 * "channel-mpsc", "channel-broadcast", "semaphore", "mutex",
	 * "cond", "datum" (a frame that validates), or "" (unknown).
	 */
	char content[24];
	int nusers; /* processes that map it or hold a descriptor of it */
	/*
	 * A path that opens it read-only for the caller: /dev/shm/shmcap.NAME,
	 * or /proc/PID/fd/N of a holder, or /proc/PID/map_files/A-B of a
	 * mapper; "" if none could be opened.
	 */
	char path[320];
};

/* One process's use of one region: a mapping, or a descriptor. */
struct probe_use {
	size_t region;		      /* index in probe.regions */
	size_t proc;		      /* index in probe.procs */
	int fd;			      /* the descriptor, or -1 for a mapping */
	unsigned long long addr, len; /* the mapping, or 0, 0 */
	int writable; /* mapped writable, or descriptor opened O_RDWR */
};

struct probe_proc {
	pid_t pid;
	uid_t uid;
	char comm[64];
	double uptime; /* seconds since it started */
	int links_lib; /* maps libshmcap.so */
	char id[33];   /* its 128-bit actor id in hex, or "" */
	int privilege; /* SHMCAP_PRIV_USER / _SUPERVISOR, or -1 */
	char **names;  /* names it publishes */
	size_t nnames;
	size_t nregions; /* regions it maps or holds */
};

struct probe {
	struct probe_proc *procs; /* actors only, by pid */
	size_t nprocs;
	struct probe_region *regions; /* named first (by name), then anonymous */
	size_t nregions;
	struct probe_use *uses;
	size_t nuses;
	size_t skipped; /* processes the caller may not look into */
};

/* Scan the host into *p. 0, or a negative errno (-ENOMEM, /proc missing). */
int probe_scan(struct probe *p);
void probe_free(struct probe *p);

/* Index of the actor with this pid, or -1. */
long probe_find_proc(const struct probe *p, pid_t pid);

/* Index of the named region NAME (without "shmcap."), or -1. */
long probe_find_named(const struct probe *p, const char *name);

/*
 * How many mappings and descriptors of the file (dev, ino) the caller can
 * see in live processes now (a fresh look at /proc, for shmcap gc to check
 * again right before removing), or a negative errno.
 */
long probe_count_uses(unsigned long long dev, unsigned long long ino);

#endif /* SHMCAP_PROBE_H */
