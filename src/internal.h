/* SPDX-License-Identifier: MIT */
/*
 * Private declarations shared by the library's source files. Nothing here
 * is exported: the linker script keeps only shmcap_* symbols, and internal
 * non-static functions are named shmcap__*.
 */
#ifndef SHMCAP_INTERNAL_H
#define SHMCAP_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <limits.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "shmcap.h"

/*
 * A capability. Invariant: a region capability without SHMCAP_RIGHT_WRITE
 * holds an O_RDONLY descriptor, so the kernel enforces the missing right.
 */
struct shmcap_cap {
	int fd;
	uint32_t type;
	uint32_t rights;
	/*
	 * Actor capabilities only (actor.c); zero in the others. pid is the
	 * process's pid in the caller's pid namespace, 0 if unknown (it had
	 * ended, or lives in no namespace we see, when the capability was
	 * received). have_id says whether id holds its 128-bit id. waited is
	 * 0 until a wait reaped the process, then 1 << 32 | its wait status;
	 * it is read and written atomically, as threads may share the cap.
	 */
	int32_t pid;
	uint32_t have_id;
	uint8_t id[16];
	uint64_t waited;
};

/*
 * Wrap fd (owned from now on) in a new capability. On failure fd is closed,
 * so callers never have to.
 */
int shmcap__cap_new(int fd, uint32_t type, uint32_t rights, shmcap_cap **out);

/*
 * Turn a descriptor received from an untrusted peer into a region
 * capability, taking ownership of fd (closed on failure). claimed_rights
 * is what the peer said; the result has at most what fd's open mode allows.
 * Errors: -EBADMSG (not a shmem file, write-only, no READ), -ENOMEM, ...
 */
int shmcap__region_adopt(int fd, uint32_t claimed_rights, shmcap_cap **out);

/*
 * Turn a descriptor received from an untrusted peer into a notifier
 * capability (an eventfd), taking ownership of fd (closed on failure).
 */
int shmcap__notifier_adopt(int fd, uint32_t claimed_rights, shmcap_cap **out);

/*
 * Adopt a received descriptor as a capability of the given type, by the
 * type's rules above; -EBADMSG for an unknown type.
 */
int shmcap__cap_adopt(int fd, uint32_t type, uint32_t claimed_rights,
		      shmcap_cap **out);

/*
 * What one recvmsg() brought besides its bytes: the descriptors (at most
 * SHMCAP_MSG_MAX_CAPS; any beyond were closed and `excess` set), the
 * sender's credentials if the kernel gave them, its address, msg_flags.
 */
struct shmcap__msg_in {
	int fds[SHMCAP_MSG_MAX_CAPS];
	size_t nfds;
	int excess;
	int have_cred;
	int32_t pid;
	uint32_t uid, gid;
	int msg_flags;
	socklen_t fromlen;
	struct sockaddr_un from;
};

/*
 * Receive one message into iov[0..iovlen) with recvmsg(flags |
 * MSG_CMSG_CLOEXEC), collecting descriptors and credentials into *in.
 * Returns the byte count or -errno; on success the caller owns in->fds.
 */
ssize_t shmcap__recv_msg(int sock, struct iovec *iov, int iovlen, int flags,
			 struct shmcap__msg_in *in);

/* Close the n descriptors at fds. */
void shmcap__close_fds(const int *fds, size_t n);

/*
 * A mapping. dev/ino identify the region file (the same through every
 * descriptor and in every process); grant is set while other actors may
 * map it (grant.c).
 */
struct shmcap__grant;
struct shmcap_map {
	void *addr;
	uint64_t size;
	uint64_t region_offset;
	int prot;
	uint64_t dev, ino;
	struct shmcap__grant *grant;
};

/* Withdraw m's grant before m is unmapped (grant.c). */
void shmcap__grant_drop(shmcap_map *m);

/*
 * Endpoints (names.c): the socket server behind published names and
 * map-from-actor grants, at any abstract address.
 *
 * A client's credentials as the kernel recorded them at connect():
 * effective uid and gid, pid, and supplementary groups.
 */
struct shmcap__client {
	shmcap_peer peer;
	const uint32_t *groups;
	size_t ngroups;
};

/*
 * An access rule: mode bits applied as shm_open() applies them, for an
 * owner with effective ids uid and gid, plus the uids and gids added with
 * shmcap_name_allow() (owner and group bits).
 */
struct shmcap__rule {
	unsigned int mode;
	uint32_t uid, gid;
	const uint32_t *uids, *gids;
	size_t nuids, ngids;
};

/*
 * The rights the rule leaves client: 0 without the read bit, else READ and
 * WAIT, plus WRITE and SIGNAL with the write bit. uid 0 gets all.
 */
unsigned int shmcap__rule_rights(const struct shmcap__rule *rule,
				 const struct shmcap__client *client);

/*
 * Replace each of caps[0..n) that has rights outside mask by a derived
 * capability with rights & mask (closing the original). -EACCES, nothing
 * changed, if one would be left without rights or a region without READ;
 * on other errors every entry is still a valid capability.
 */
int shmcap__rule_limit(shmcap_cap **caps, size_t n, unsigned int mask);

/* A request handler, as shmcap_name_fn but with the full credentials. */
typedef int (*shmcap__endpoint_fn)(void *arg,
				   const struct shmcap__client *client,
				   const void *req, size_t req_len,
				   shmcap_cap **caps, size_t max_caps,
				   void *reply, size_t *reply_len);

/*
 * Listen at the abstract address "\0address" and answer each request with
 * fn, its capabilities limited by the rule mode (0777: fn decides alone).
 * flags: SHMCAP_NAME_THREAD. Freed with shmcap_name_unpublish(), or in a
 * forked child that must not touch the parent's thread with
 * shmcap__endpoint_abandon() (closes the child's copies, frees).
 */
int shmcap__endpoint_publish(const char *address, shmcap__endpoint_fn fn,
			     void *arg, unsigned int mode, unsigned int flags,
			     shmcap_name **out);
void shmcap__endpoint_abandon(shmcap_name *n);

/*
 * One request to the endpoint at "\0address". Returns the reply's length
 * (at most reply_size) with c->ncaps capabilities in c->caps, or -errno
 * with nothing kept: absent_err when nobody listens at the address or,
 * with server_pid set, when a process other than server_pid does; -ESRCH
 * when watch_fd (a pidfd, or -1) becomes readable before the reply comes,
 * or the server went away during the request; the server's negative
 * status; -ETIMEDOUT, -EBADMSG (malformed reply), -E2BIG (more than
 * max_caps), -EMSGSIZE (reply too long, unless discard_excess),
 * -ECONNRESET (dropped unanswered three times), -EMFILE ...
 */
struct shmcap__call {
	const char *address;
	int absent_err;
	int watch_fd;
	int32_t server_pid;
	const void *req;
	size_t req_len;
	shmcap_cap **caps;
	size_t max_caps;
	size_t ncaps; /* out */
	void *reply;
	size_t reply_size;
	int discard_excess; /* reply bytes beyond reply_size are no error */
	int64_t timeout_ns;
};
int shmcap__endpoint_call(struct shmcap__call *c);

/*
 * Where a supervisor actor must map [offset, offset + length) of region
 * (privilege.c): returns 0 if the caller is a user actor (map as asked),
 * 1 with *where set to the group's address for that range, or -errno
 * (-EINVAL for an addr other than the group's, -ENOSPC, ...). addr and
 * flags are what the caller of shmcap_region_map() passed.
 */
int shmcap__group_place(const shmcap_cap *region, uint64_t offset,
			uint64_t length, void *addr, unsigned int flags,
			void **where);

/*
 * Adopt a received descriptor as an actor capability: it must be a pidfd
 * (actor.c). Takes ownership of fd (closed on failure).
 */
int shmcap__actor_adopt(int fd, uint32_t claimed_rights, shmcap_cap **out);

/* Copy an actor capability's pid, id and wait state into dst (derive). */
void shmcap__actor_copy(shmcap_cap *dst, const shmcap_cap *src);

/*
 * What shmcap_spawn() adds for the child's privilege (privilege.c):
 * capabilities under reserved names ("shmcap." prefix) and environment
 * strings "NAME=VALUE". In the strings, every SHMCAP__PID_HOLDER is
 * replaced by the child's pid written as 10 digits with leading zeros,
 * in the child before exec, so a list inherited by a later program that
 * did not come from shmcap_spawn() is recognised as stale.
 */
#define SHMCAP__PID_HOLDER "@@@@@@@@@@"
#define SHMCAP__EXTRA_MAX 72
struct shmcap__spawn_extra {
	const char *names[SHMCAP__EXTRA_MAX];
	shmcap_cap *caps[SHMCAP__EXTRA_MAX];
	size_t ncaps;
	char *env[4];
	size_t nenv;
};

/*
 * Fill x for a spawn with these flags: -EPERM if SHMCAP_SPAWN_SUPERVISOR
 * is not allowed (secure mode, effective uid not 0). On success the
 * caller passes x's capabilities and strings on and then calls
 * shmcap__spawn_extra_free().
 */
int shmcap__privilege_spawn_extra(unsigned int flags,
				  struct shmcap__spawn_extra *x);
void shmcap__spawn_extra_free(struct shmcap__spawn_extra *x);

/*
 * Whether fd is the anonymous-inode file "anon_inode:[kind]" (eventfd,
 * pidfd ...), as /proc/self/fd names it. Exact, but the first look into
 * /proc/self of a new process costs 20-40 us.
 */
int shmcap__fd_is_anon(int fd, const char *kind);

/* A new O_RDONLY, close-on-exec descriptor for the file behind fd. */
int shmcap__reopen_rdonly(int fd);

/*
 * Waiting helpers of sync.c, shared with channel.c so that the library has
 * one waiting policy. shmcap__spin_while32: spin while *word == val (pause
 * for the first microsecond, then sched_yield between looks) for at most
 * the spin budget of shmcap_spin_set() and never past deadline; 1 once the
 * word differs (acquire), 0 when the budget is spent.
 */
int shmcap__spin_while32(const uint32_t *word, uint32_t val, int64_t deadline);

/* The spin budget of shmcap_spin_set(), in nanoseconds (0: never spin). */
int64_t shmcap__spin_budget(void);

/*
 * Count a lost compare-and-swap race; after every thousand in a row sleep
 * 1 ms (bounded by deadline), so that a peer rewriting a word without
 * pause cannot make us spin at full speed. -ETIMEDOUT once the deadline
 * has passed, else 0.
 */
int shmcap__lost_race(unsigned int *tries, int64_t deadline);

/*
 * A process's start time (field 22 of /proc/PID/stat, clock ticks since
 * boot), 0 if unknown; and whether the process pid that had start time
 * start (0: unknown) still lives: not a zombie, not a recycled pid.
 */
uint64_t shmcap__proc_start(int32_t pid);
int shmcap__proc_alive(int32_t pid, uint64_t start);

/* The negated errno of the call that just failed (never 0). */
static inline int shmcap__neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

static inline uint64_t shmcap__page_size(void)
{
	return (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Fill buf with len bytes from the kernel's random generator. */
int shmcap__random(void *buf, size_t len);

/*
 * The abstract Unix socket address "\0address" in *sa and its length in
 * *len; -EINVAL for an empty address, -ENAMETOOLONG if it won't fit.
 */
int shmcap__abstract_addr(const char *address, struct sockaddr_un *sa,
			  socklen_t *len);

/* Monotonic clock in nanoseconds. */
static inline int64_t shmcap__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * The deadline for a timeout that starts now: INT64_MAX for
 * SHMCAP_FOREVER (any negative value).
 */
static inline int64_t shmcap__deadline(int64_t timeout_ns)
{
	int64_t now;

	if (timeout_ns < 0)
		return INT64_MAX;
	now = shmcap__now_ns();
	return timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
}

/*
 * Milliseconds left until deadline for poll(2): -1 for no deadline, rounded
 * up so that poll never returns before the deadline, 0 once it has passed.
 */
static inline int shmcap__poll_ms(int64_t deadline)
{
	int64_t left;

	if (deadline == INT64_MAX)
		return -1;
	left = deadline - shmcap__now_ns();
	if (left <= 0)
		return 0;
	left = (left + 999999) / 1000000;
	return left > INT_MAX ? INT_MAX : (int)left;
}

#endif /* SHMCAP_INTERNAL_H */
