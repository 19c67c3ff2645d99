/* SPDX-License-Identifier: MIT */
/*
 * Helpers that several tests share, built once into test/util.c and linked
 * into every test and the peer. Unlike helpers.h (the harness: CHECK
 * macros, exit codes), these are pieces of test logic: a reproducible
 * random generator, sleeping and clocks, regions mapped again in a child,
 * forked children, /proc readers and hand-built messages.
 *
 * A failed check in here reports util.c and its line, like a failed check
 * in a test's own helper reports that helper's line.
 */
#ifndef SHMCAP_TEST_UTIL_H
#define SHMCAP_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <shmcap.h>

/*
 * 1 in a ThreadSanitizer build, else 0: TSan cannot follow a child that
 * starts threads after a fork from a multi-threaded process, and makes
 * atomics slow.
 */
#if defined(__SANITIZE_THREAD__)
#define T_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define T_TSAN 1
#endif
#endif
#ifndef T_TSAN
#define T_TSAN 0
#endif

/* ------------------------------------------------------------------------
 * Numbers and time
 */

/* The state of t_rnd(), seeded by t_rng_seed(). */
extern uint64_t t_rng_state;

/*
 * Seed t_rnd() from the clock and the pid, never with 0; returns the seed,
 * for the test to print so that a failing run can be reproduced.
 */
uint64_t t_rng_seed(void);

/*
 * t_rng_seed(), unless $T_SEED=N asks to replay the run that printed seed
 * N; prints the seed either way and returns it.
 */
uint64_t t_rng_seed_env(void);

/* xorshift64*: reproducible from the seed printed at start. */
uint64_t t_rnd(void);

/*
 * The factor in $SHMCAP_TEST_SCALE (1.0 if it is unset or empty); fails
 * the test if it is not a positive number.
 */
double t_scale_factor(void);

/* A default size scaled by SHMCAP_TEST_SCALE, at least 1. */
unsigned long t_scaled(unsigned long dflt);

/* Sleep for ns nanoseconds, whatever signals arrive meanwhile. */
void t_sleep_ns(int64_t ns);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t t_now_ns(void);

static inline uint32_t t_load32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static inline void t_store32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static inline uint64_t t_load64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static inline void t_store64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

/* ------------------------------------------------------------------------
 * Regions and capabilities
 */

/* A new anonymous region of size bytes, mapped writable; its address. */
void *t_region_new(uint64_t size, shmcap_cap **region, shmcap_map **map);

/* Unmap map and close region: the end of t_region_new(). */
void t_region_free(shmcap_cap *region, shmcap_map *map);

/*
 * In a child: map the region again while the inherited mapping is still
 * in place, so the new one is at another address, then drop the old one.
 * Returns the new address.
 */
void *t_remap(shmcap_cap *region, shmcap_map **map);

/* A new READ and WRITE region of one page holding text at offset 0. */
shmcap_cap *t_text_region(const char *text);

/* cap must be a region that holds text at offset 0. */
void t_check_text_region(const shmcap_cap *cap, const char *text);

/* The size of a region, which must be known. */
uint64_t t_region_size(const shmcap_cap *cap);

/* The access mode (O_RDONLY, O_RDWR ...) of a capability's descriptor. */
int t_accmode(const shmcap_cap *cap);

/* The number of lines of /proc/self/maps that contain needle. */
int t_count_maps(const char *needle);

/* ------------------------------------------------------------------------
 * Children
 */

/*
 * fork(), with the child dying with its parent and watched by a timer of
 * timeout_s seconds.
 */
pid_t t_fork_child(int timeout_s);

/*
 * A forked child's normal end: _exit(), as a leak checker cannot run after
 * setuid; CHECK failures end it with T_EXIT_FAIL.
 */
__attribute__((noreturn)) void t_child_pass(void);

/* t_child_pass(), after t_region_free(region, map). */
__attribute__((noreturn)) void t_child_exit(shmcap_cap *region,
					    shmcap_map *map);

/*
 * In the parent of a child that writes one byte to pfd[1] when it is
 * ready: close pfd[1], wait for that byte, close pfd[0].
 */
void t_ready_wait(const int pfd[2]);

/* Wait at most timeout_s seconds for pid, which must end with T_EXIT_PASS. */
void t_reap_ok(pid_t pid, int timeout_s);

/* Wait at most timeout_s seconds for pid, which must end by SIGKILL. */
void t_check_killed(pid_t pid, int timeout_s);

/* The system call pid is blocked in (/proc/PID/syscall), or -1. */
long t_proc_syscall(pid_t pid);

/* Field 3 of /proc/PID/stat ('R', 'S', 'Z' ...), or '?'. */
char t_proc_state(pid_t pid);

/*
 * Wait until the child pid sleeps in FUTEX_WAIT: the state that a wake
 * must end with a system call. The bound only turns a broken child into a
 * failure instead of a hang.
 */
void t_wait_asleep(pid_t pid);

/*
 * Wait until the child pid sleeps in poll(), as a client does once it has
 * sent its request and waits for the answer. The bound only turns a
 * broken child into a failure instead of a hang.
 */
void t_wait_in_poll(pid_t pid);

/* ------------------------------------------------------------------------
 * Hand-built messages
 */

/* The most descriptors t_sendmsg_fds() and t_raw_send() pass at once. */
#define T_SEND_MAX_FDS 32

/*
 * sendmsg() of bytes with the descriptors fds as SCM_RIGHTS, to sa (of
 * salen bytes) unless it is NULL. Returns what sendmsg() returned, errno
 * as it left it.
 */
ssize_t t_sendmsg_fds(int sock, const struct sockaddr_un *sa, socklen_t salen,
		      const void *bytes, size_t len, const int *fds,
		      size_t nfds);

/* Send bytes and descriptors as one raw message, bypassing shmcap_send. */
void t_raw_send(int sock, const void *bytes, size_t len, const int *fds,
		size_t nfds);

/* The message header of src/transfer.c, to forge messages with. */
#define T_WIRE_MAGIC 0x544d4353u
#define T_WIRE_VERSION 1

struct t_wire_cap {
	uint32_t type;
	uint32_t rights;
};

struct t_wire_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t ncaps;
	uint32_t len;
	uint32_t reserved;
	struct t_wire_cap caps[SHMCAP_MSG_MAX_CAPS];
};

_Static_assert(sizeof(struct t_wire_hdr) == 144, "wire header as documented");

/* A well-formed header for n descriptors of type REGION with rights. */
void t_wire_init(struct t_wire_hdr *h, size_t n, uint32_t rights,
		 size_t datalen);

#endif /* SHMCAP_TEST_UTIL_H */
