/* Description: robust shared-memory mutexes: lock, trylock, unlock, errors, exclusion across processes and threads, holders killed at random moments, threads exiting holding, corrupt records */
/* SPDX-License-Identifier: MIT */
/*
 * Usage: t_mutex [ROUNDS]
 *
 * ROUNDS is the number of kill-the-holder rounds of the robustness test
 * (default 1000); the exclusion test does 100 * ROUNDS increments per
 * thread. Without an argument, SHMCAP_TEST_SCALE (a factor such as 0.1
 * or 10) scales both defaults.
 *
 * The mutexes live in an anonymous region that every child maps again at
 * an address of its own. Timing never decides a verdict: timeouts appear
 * only where -ETIMEDOUT is what is tested, or bound a call whose result
 * (0, -EOWNERDEAD ...) is what is checked; a call that never returns is
 * caught by the watchdog. How often a holder was caught holding the lock
 * when killed is printed, not checked: it depends on the scheduler.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* gettid, SYS_* */
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"

#define SEC ((int64_t)1000000000)
#define MSEC ((int64_t)1000000)
#define CHILD_TIMEOUT 100 /* seconds; the test's own watchdog is 110 */

/* The owner field of <shmcap/abi.h>. */
#define OWNER_TID_MASK 0x3fffffffu
#define OWNER_WAITERS 0x80000000u
#define STATE_CONSISTENT 0
#define STATE_OWNER_DIED 1
#define STATE_NOTRECOVERABLE 2

/* Everything the processes share. */
struct shared {
	shmcap_mutex m;
	shmcap_mutex m2;
	shmcap_sem go;
	shmcap_sem done;
	/* Two fields the mutex protects: equal whenever it is released. */
	uint64_t a, b;
	/* A plain counter incremented under the mutex. */
	uint64_t counter;
	uint32_t inside;
	uint32_t arrived; /* threads at the starting line */
	uint32_t start;
	uint32_t ready;
	int32_t result;
	uint32_t pad;
	uint64_t owner;
	uint64_t busy; /* trylocks that found it held: contention seen */
};

static uint64_t page;

/* ------------------------------------------------------------------------
 * Helpers
 */

static struct shared *shared_new(shmcap_cap **region, shmcap_map **map)
{
	struct shared *sh;

	sh = t_region_new(page, region, map);
	CHECK_OK(shmcap_mutex_init(&sh->m));
	CHECK_OK(shmcap_mutex_init(&sh->m2));
	CHECK_OK(shmcap_sem_init(&sh->go, 0));
	CHECK_OK(shmcap_sem_init(&sh->done, 0));
	return sh;
}

static void reap_killed(pid_t pid)
{
	int st = t_wait_child(pid, CHILD_TIMEOUT);

	if (st == -1 || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		FAIL("child %ld ended with status 0x%x, not by SIGKILL",
		     (long)pid, st);
}

static void post(shmcap_sem *s)
{
	CHECK_ERR(shmcap_sem_post(s), 0);
}

static void take(shmcap_sem *s)
{
	CHECK_ERR(shmcap_sem_wait(s, SHMCAP_FOREVER), 0);
}

/* Fields 3 (state) and 22 (start time) of a /proc stat file. */
static int read_stat(const char *path, char *state, uint64_t *start)
{
	char buf[512], *p;
	unsigned long long st;
	ssize_t n;
	int fd, field;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -1;
	p += 2;
	*state = *p;
	for (field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	if (sscanf(p, "%llu", &st) != 1)
		return -1;
	*start = st;
	return 0;
}

/* The owner word this thread is recorded as, by the documented layout. */
static uint64_t self_owner(void)
{
	char state;
	uint64_t start = 0;

	CHECK_EQ(read_stat("/proc/thread-self/stat", &state, &start), 0);
	return (uint64_t)(uint32_t)start << 32 |
	       ((uint32_t)gettid() & OWNER_TID_MASK);
}

/* Whether thread tid sleeps in the futex system call now. */
static int in_futex(pid_t tid)
{
	char path[64], state = '?';
	uint64_t start;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)tid);
	if (read_stat(path, &state, &start) < 0)
		return 0;
	return state == 'S' && t_proc_syscall(tid) == SYS_futex;
}

/* Wait until tid sleeps in the kernel; the bound only avoids a hang. */
static void wait_asleep(pid_t tid)
{
	int i;

	for (i = 0; i < 200000; i++) {
		if (in_futex(tid))
			return;
		t_sleep_ns(50000);
	}
	FAIL("thread %ld never went to sleep in the kernel", (long)tid);
}

/* Wait until *flag becomes v; the bound only avoids a hang. */
static void wait_flag(const uint32_t *flag, uint32_t v)
{
	int i;

	for (i = 0; t_load32(flag) != v; i++) {
		if (i > 2000000)
			FAIL("flag never became %u", v);
		if (i > 1000)
			t_sleep_ns(10000);
	}
}

/* Busy for about ns nanoseconds (finer than any sleep). */
static void busy_ns(int64_t ns)
{
	int64_t end = t_now_ns() + ns;

	while (t_now_ns() < end)
		;
}

/* ------------------------------------------------------------------------
 * One process
 */

static void test_basic(void)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	shmcap_mutex *m = &sh->m;
	uint64_t me = self_owner();
	size_t i;

	/* The layout of <shmcap/abi.h>. */
	CHECK_EQ(m->magic, SHMCAP_MUTEX_MAGIC);
	CHECK_EQ(m->version, SHMCAP_SYNC_VERSION);
	CHECK_EQ(m->reserved0, 0);
	CHECK_EQ(m->owner, 0);
	CHECK_EQ(m->state, STATE_CONSISTENT);
	for (i = 0; i < sizeof(m->reserved) / sizeof(m->reserved[0]); i++)
		CHECK_EQ(m->reserved[i], 0);

	CHECK_ERR(shmcap_mutex_lock(m, SHMCAP_FOREVER), 0);
	/* Held: tid in bits 0-29, start time in 32-63, no waiters. */
	CHECK_EQ(m->owner, me);
	CHECK_EQ(m->state, STATE_CONSISTENT);
	CHECK_ERR(shmcap_mutex_trylock(m), -EDEADLK);
	CHECK_ERR(shmcap_mutex_lock(m, 0), -EDEADLK);
	CHECK_ERR(shmcap_mutex_lock(m, 10 * MSEC), -EDEADLK);
	CHECK_ERR(shmcap_mutex_lock(m, SHMCAP_FOREVER), -EDEADLK);
	/* Not in the owner-died state. */
	CHECK_ERR(shmcap_mutex_consistent(m), -EINVAL);
	CHECK_EQ(m->owner, me);
	CHECK_ERR(shmcap_mutex_unlock(m), 0);
	CHECK_EQ(m->owner, 0);

	/* Not held. */
	CHECK_ERR(shmcap_mutex_unlock(m), -EPERM);
	CHECK_ERR(shmcap_mutex_consistent(m), -EINVAL);
	CHECK_EQ(m->owner, 0);

	CHECK_ERR(shmcap_mutex_trylock(m), 0);
	CHECK_EQ(m->owner, me);
	CHECK_ERR(shmcap_mutex_unlock(m), 0);
	/* A free mutex is taken even with timeout 0. */
	CHECK_ERR(shmcap_mutex_lock(m, 0), 0);
	CHECK_ERR(shmcap_mutex_unlock(m), 0);
	CHECK_ERR(shmcap_mutex_lock(m, 5 * SEC), 0);
	CHECK_ERR(shmcap_mutex_unlock(m), 0);
	CHECK_EQ(m->owner, 0);
	CHECK_EQ(m->state, STATE_CONSISTENT);

	/* Two mutexes at once, at any 8-byte aligned offset. */
	{
		shmcap_mutex *m8 = (shmcap_mutex *)((char *)&sh->m2 + 8);

		CHECK_OK(shmcap_mutex_init(m8));
		CHECK_ERR(shmcap_mutex_lock(m, SHMCAP_FOREVER), 0);
		CHECK_ERR(shmcap_mutex_lock(m8, SHMCAP_FOREVER), 0);
		CHECK_ERR(shmcap_mutex_unlock(m), 0);
		CHECK_ERR(shmcap_mutex_unlock(m8), 0);
	}
	t_region_free(region, map);
}

static void test_bad_input(void)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	shmcap_mutex *m = &sh->m;
	static const size_t skew[] = { 1, 2, 4, 7 };
	size_t i;

	CHECK_ERR(shmcap_mutex_init(NULL), -EINVAL);
	CHECK_ERR(shmcap_mutex_lock(NULL, 0), -EINVAL);
	CHECK_ERR(shmcap_mutex_lock(NULL, SHMCAP_FOREVER), -EINVAL);
	CHECK_ERR(shmcap_mutex_trylock(NULL), -EINVAL);
	CHECK_ERR(shmcap_mutex_unlock(NULL), -EINVAL);
	CHECK_ERR(shmcap_mutex_consistent(NULL), -EINVAL);
	for (i = 0; i < sizeof(skew) / sizeof(skew[0]); i++) {
		shmcap_mutex *bad = (shmcap_mutex *)((char *)m + skew[i]);

		CHECK_ERR(shmcap_mutex_init(bad), -EINVAL);
		CHECK_ERR(shmcap_mutex_lock(bad, SHMCAP_FOREVER), -EINVAL);
		CHECK_ERR(shmcap_mutex_trylock(bad), -EINVAL);
		CHECK_ERR(shmcap_mutex_unlock(bad), -EINVAL);
		CHECK_ERR(shmcap_mutex_consistent(bad), -EINVAL);
	}
	CHECK_EQ(m->magic, SHMCAP_MUTEX_MAGIC);
	CHECK_EQ(m->owner, 0);

	/* Never initialised. */
	memset(m, 0, sizeof(*m));
	CHECK_ERR(shmcap_mutex_lock(m, SHMCAP_FOREVER), -EBADMSG);
	CHECK_ERR(shmcap_mutex_trylock(m), -EBADMSG);
	CHECK_ERR(shmcap_mutex_unlock(m), -EBADMSG);
	CHECK_ERR(shmcap_mutex_consistent(m), -EBADMSG);
	CHECK_EQ(m->owner, 0);
	/* Another kind of record. */
	CHECK_OK(shmcap_sem_init((shmcap_sem *)m, 0));
	CHECK_ERR(shmcap_mutex_lock(m, SHMCAP_FOREVER), -EBADMSG);
	CHECK_OK(shmcap_cond_init((shmcap_cond *)m));
	CHECK_ERR(shmcap_mutex_trylock(m), -EBADMSG);
	t_region_free(region, map);
}

/* ------------------------------------------------------------------------
 * Two processes
 */

/*
 * Held by a live process: -EBUSY, -ETIMEDOUT, -EPERM, -EINVAL; released,
 * it is ours. Then the other way round, with the waiter asleep in the
 * kernel when the holder unlocks, so that unlock must wake it.
 */
static void test_two_processes(void)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	shmcap_mutex *m = &sh->m;
	uint64_t held;
	int round;
	pid_t pid;

	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		struct shared *c = t_remap(region, &map);

		CHECK_ERR(shmcap_mutex_lock(&c->m, SHMCAP_FOREVER), 0);
		t_store64(&c->owner, self_owner());
		post(&c->done);
		take(&c->go);
		CHECK_ERR(shmcap_mutex_unlock(&c->m), 0);
		post(&c->done);
		t_child_exit(region, map);
	}
	take(&sh->done);
	held = t_load64(&sh->owner);
	CHECK_EQ((uint32_t)held & OWNER_TID_MASK, pid);
	CHECK_EQ(t_load64(&m->owner), held);
	CHECK_ERR(shmcap_mutex_trylock(m), -EBUSY);
	CHECK_ERR(shmcap_mutex_lock(m, 0), -ETIMEDOUT);
	CHECK_ERR(shmcap_mutex_lock(m, 20 * MSEC), -ETIMEDOUT);
	CHECK_ERR(shmcap_mutex_unlock(m), -EPERM);
	CHECK_ERR(shmcap_mutex_consistent(m), -EINVAL);
	/* Still the child's, now marked as waited for. */
	CHECK_EQ(t_load64(&m->owner) & ~(uint64_t)OWNER_WAITERS, held);
	CHECK_EQ(m->state, STATE_CONSISTENT);
	post(&sh->go);
	take(&sh->done);
	CHECK_ERR(shmcap_mutex_lock(m, SHMCAP_FOREVER), 0);
	CHECK_ERR(shmcap_mutex_unlock(m), 0);
	t_reap_ok(pid, CHILD_TIMEOUT);

	/* The waiter sleeps in the kernel when the holder unlocks. */
	for (round = 0; round < 6; round++) {
		int64_t timeout = round % 2 ? 60 * SEC : SHMCAP_FOREVER;

		CHECK_ERR(shmcap_mutex_lock(m, SHMCAP_FOREVER), 0);
		sh->result = 1;
		pid = t_fork_child(CHILD_TIMEOUT);
		if (pid == 0) {
			struct shared *c = t_remap(region, &map);
			int ret;

			if (round >= 4)
				shmcap_spin_set(0);
			ret = shmcap_mutex_lock(&c->m, timeout);
			t_store32((uint32_t *)&c->result, (uint32_t)ret);
			if (ret == 0)
				CHECK_ERR(shmcap_mutex_unlock(&c->m), 0);
			t_child_exit(region, map);
		}
		wait_asleep(pid);
		CHECK(t_load64(&m->owner) & OWNER_WAITERS);
		t_sleep_ns(5 * MSEC);
		CHECK_ERR(shmcap_mutex_unlock(m), 0);
		t_reap_ok(pid, CHILD_TIMEOUT);
		CHECK_ERR(sh->result, 0);
		CHECK_EQ(m->owner, 0);
	}
	t_region_free(region, map);
}

/* ------------------------------------------------------------------------
 * Mutual exclusion: 2 processes x 2 threads
 */

struct excl_arg {
	struct shared *sh;
	unsigned long k;
	pthread_t thread;
	unsigned long busy; /* trylock found it held */
	int err;
};

static void *excl_thread(void *p)
{
	struct excl_arg *arg = p;
	struct shared *sh = arg->sh;
	volatile uint64_t *counter = &sh->counter;
	volatile uint32_t *inside = &sh->inside;
	unsigned long i;
	int ret;

	/* All four threads start together, so that they contend. */
	__atomic_fetch_add(&sh->arrived, 1, __ATOMIC_SEQ_CST);
	while (!t_load32(&sh->start))
		sched_yield();
	for (i = 0; i < arg->k; i++) {
		if (i % 16 == 0) {
			/* trylock until it succeeds, now and then */
			while ((ret = shmcap_mutex_trylock(&sh->m)) == -EBUSY) {
				arg->busy++;
				sched_yield();
			}
		} else {
			ret = shmcap_mutex_lock(&sh->m, SHMCAP_FOREVER);
		}
		if (ret != 0) {
			arg->err = ret;
			return NULL;
		}
		/* Plain read-modify-write: two holders at once lose counts. */
		if (*inside != 0) {
			arg->err = -EALREADY;
			return NULL;
		}
		*inside = 1;
		*counter = *counter + 1;
		*inside = 0;
		ret = shmcap_mutex_unlock(&sh->m);
		if (ret != 0) {
			arg->err = ret;
			return NULL;
		}
	}
	return NULL;
}

static void run_excl_threads(struct shared *sh, unsigned long k, int starter)
{
	struct excl_arg args[2];
	int t;

	for (t = 0; t < 2; t++) {
		args[t].sh = sh;
		args[t].k = k;
		args[t].err = 0;
		args[t].busy = 0;
		CHECK_EQ(pthread_create(&args[t].thread, NULL, excl_thread,
					&args[t]),
			 0);
	}
	if (starter) {
		wait_flag(&sh->arrived, 4);
		t_store32(&sh->start, 1);
	}
	for (t = 0; t < 2; t++) {
		CHECK_EQ(pthread_join(args[t].thread, NULL), 0);
		if (args[t].err == -EALREADY)
			FAIL("two holders inside the critical section at once");
		CHECK_ERR(args[t].err, 0);
		__atomic_fetch_add(&sh->busy, args[t].busy, __ATOMIC_SEQ_CST);
	}
}

static void test_exclusion(unsigned long k)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	int64_t t0 = t_now_ns();
	pid_t pid;

	sh->counter = 0;
	sh->arrived = sh->start = 0;
	sh->busy = 0;
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		struct shared *c = t_remap(region, &map);

		run_excl_threads(c, k, 0);
		t_child_exit(region, map);
	}
	run_excl_threads(sh, k, 1);
	t_reap_ok(pid, CHILD_TIMEOUT);
	printf("exclusion: 2 processes x 2 threads x %lu increments in "
	       "%.3f s (%llu trylocks found it held)\n",
	       k, (double)(t_now_ns() - t0) / 1e9,
	       (unsigned long long)sh->busy);
	CHECK_EQ(sh->counter, 4 * (uint64_t)k);
	CHECK_EQ(sh->m.owner, 0);
	CHECK_EQ(sh->m.state, STATE_CONSISTENT);
	t_region_free(region, map);
}

/* ------------------------------------------------------------------------
 * Robustness: the holder dies
 */

/* The holder's loop: a and b are equal outside the critical section. */
static void *holder_loop(void *p)
{
	struct shared *c = p;
	volatile uint64_t *a = &c->a, *b = &c->b;
	volatile int spin;

	for (;;) {
		CHECK_ERR(shmcap_mutex_lock(&c->m, SHMCAP_FOREVER), 0);
		*a = *a + 1;
		for (spin = 0; spin < 50; spin++)
			;
		*b = *b + 1;
		CHECK_ERR(shmcap_mutex_unlock(&c->m), 0);
		t_store32(&c->ready, 1);
		for (spin = 0; spin < 20; spin++)
			;
	}
	return NULL;
}

/*
 * Take the mutex after its holder (or a process that used it) died:
 * 0 with the fields equal, or -EOWNERDEAD with b at most one behind a;
 * repair, mark consistent, unlock. Returns 1 for -EOWNERDEAD.
 *
 * A process killed a moment ago may still run for a few instructions
 * (SIGKILL takes effect when it next enters the kernel), so if it has not
 * been reaped yet (pid not 0), it is reaped while we hold the lock: after
 * our unlock it can no longer take the lock again.
 */
static int recover(struct shared *sh, pid_t pid, int killed)
{
	int ret = shmcap_mutex_lock(&sh->m, 5 * SEC), dead = 0;

	if (ret == 0) {
		if (sh->a != sh->b)
			FAIL("lock gave 0 with the protected state torn "
			     "(a %llu, b %llu): a dead holder was missed",
			     (unsigned long long)sh->a,
			     (unsigned long long)sh->b);
		CHECK_EQ(sh->m.state, STATE_CONSISTENT);
	} else if (ret == -EOWNERDEAD) {
		CHECK_EQ((uint32_t)sh->m.owner & OWNER_TID_MASK, gettid());
		CHECK_EQ(sh->m.state, STATE_OWNER_DIED);
		CHECK(sh->a == sh->b || sh->a == sh->b + 1);
		sh->b = sh->a;
		CHECK_ERR(shmcap_mutex_consistent(&sh->m), 0);
		CHECK_EQ(sh->m.state, STATE_CONSISTENT);
		dead = 1;
	} else {
		FAIL("lock after the holder died: %d (%s), expected 0 or "
		     "EOWNERDEAD",
		     ret, shmcap_err_name(ret));
	}
	if (pid && killed)
		reap_killed(pid);
	else if (pid)
		t_reap_ok(pid, CHILD_TIMEOUT);
	CHECK_ERR(shmcap_mutex_unlock(&sh->m), 0);
	return dead;
}

/*
 * rounds times: a child locks and unlocks in a loop (in its main thread,
 * or in a second thread), and is killed with SIGKILL after a random
 * delay, so the kill lands anywhere, often while it holds the lock; or it
 * exits while holding it. The parent then locks, before or after reaping
 * the child, and must get 0 or -EOWNERDEAD within the timeout.
 */
static void test_robust(unsigned long rounds)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	unsigned long r, dead[4] = { 0 }, runs[4] = { 0 };
	int64_t t0 = t_now_ns();

	sh->a = sh->b = 0;
	for (r = 0; r < rounds; r++) {
		int mode = (int)(t_rnd() % 4), before_reap = (int)(r & 1), ret;
		pid_t pid;

		t_store32(&sh->ready, 0);
		pid = t_fork_child(CHILD_TIMEOUT);
		if (pid == 0) {
			struct shared *c = t_remap(region, &map);

			if (mode == 3) {
				/* Exit holding it, the fields torn. */
				CHECK_ERR(shmcap_mutex_lock(&c->m,
							    SHMCAP_FOREVER),
					  0);
				c->a++;
				t_store32(&c->ready, 1);
				fflush(NULL);
				_exit(T_EXIT_PASS);
			}
			if (mode == 2) {
				/* The holder is not the main thread. */
				pthread_t t;

				CHECK_EQ(pthread_create(&t, NULL, holder_loop,
							c),
					 0);
				for (;;)
					pause();
			}
			holder_loop(c);
		}
		runs[mode]++;
		if (mode == 3) {
			/* It holds the lock: exited, or about to. */
			wait_flag(&sh->ready, 1);
			if (!before_reap)
				t_reap_ok(pid, CHILD_TIMEOUT);
			ret = recover(sh, before_reap ? pid : 0, 0);
			if (!ret)
				FAIL("a process exited holding the mutex, and "
				     "the next lock gave 0, not EOWNERDEAD");
			dead[mode]++;
			continue;
		}
		/* Let it run a random while: 0 to 300 us. */
		wait_flag(&sh->ready, 1);
		busy_ns((int64_t)(t_rnd() % 300000));
		CHECK_EQ(kill(pid, SIGKILL), 0);
		if (!before_reap)
			reap_killed(pid);
		dead[mode] +=
			(unsigned long)recover(sh, before_reap ? pid : 0, 1);
	}
	printf("robust: %lu rounds in %.3f s; EOWNERDEAD in %lu of %lu kills "
	       "(main thread), %lu of %lu kills (second thread), %lu of %lu "
	       "exits holding\n",
	       rounds, (double)(t_now_ns() - t0) / 1e9, dead[0] + dead[1],
	       runs[0] + runs[1], dead[2], runs[2], dead[3], runs[3]);
	CHECK_EQ(dead[3], runs[3]);

	/* Still an ordinary mutex. */
	CHECK_ERR(shmcap_mutex_lock(&sh->m, SHMCAP_FOREVER), 0);
	CHECK_EQ(sh->a, sh->b);
	CHECK_ERR(shmcap_mutex_unlock(&sh->m), 0);
	CHECK_EQ(sh->m.owner, 0);
	CHECK_EQ(sh->m.state, STATE_CONSISTENT);
	t_region_free(region, map);
}

/* A child that locks the mutex and exits holding it. */
static void die_holding(shmcap_cap *region, shmcap_map *map)
{
	pid_t pid = t_fork_child(CHILD_TIMEOUT);

	if (pid == 0) {
		struct shared *c = t_remap(region, &map);

		CHECK_ERR(shmcap_mutex_lock(&c->m, SHMCAP_FOREVER), 0);
		fflush(NULL);
		_exit(T_EXIT_PASS);
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
}

/*
 * The owner-died protocol: consistent only by the holder, and once; an
 * unlock without it makes the mutex unusable for everyone, until it is
 * initialised again.
 */
static void test_owner_died_protocol(void)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	shmcap_mutex *m = &sh->m;
	pid_t pid;

	/* Repaired properly: back to normal. */
	die_holding(region, map);
	CHECK_ERR(shmcap_mutex_trylock(m), -EBUSY); /* no liveness check */
	CHECK_ERR(shmcap_mutex_lock(m, 5 * SEC), -EOWNERDEAD);
	CHECK_ERR(shmcap_mutex_trylock(m), -EDEADLK);
	CHECK_ERR(shmcap_mutex_lock(m, 0), -EDEADLK);
	CHECK_ERR(shmcap_mutex_consistent(m), 0);
	CHECK_ERR(shmcap_mutex_consistent(m), -EINVAL);
	CHECK_ERR(shmcap_mutex_unlock(m), 0);
	CHECK_ERR(shmcap_mutex_lock(m, 5 * SEC), 0);
	CHECK_ERR(shmcap_mutex_unlock(m), 0);

	/*
	 * Owner died, and another process tries to repair it: it is not
	 * the holder, so consistent is -EINVAL and unlock -EPERM.
	 */
	die_holding(region, map);
	CHECK_ERR(shmcap_mutex_lock(m, 5 * SEC), -EOWNERDEAD);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		struct shared *c = t_remap(region, &map);

		CHECK_ERR(shmcap_mutex_consistent(&c->m), -EINVAL);
		CHECK_ERR(shmcap_mutex_unlock(&c->m), -EPERM);
		CHECK_ERR(shmcap_mutex_trylock(&c->m), -EBUSY);
		CHECK_ERR(shmcap_mutex_lock(&c->m, 10 * MSEC), -ETIMEDOUT);
		t_child_exit(region, map);
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
	CHECK_EQ(m->state, STATE_OWNER_DIED);

	/* Unlocked without consistent: not recoverable, for everyone. */
	CHECK_ERR(shmcap_mutex_unlock(m), 0);
	CHECK_EQ(m->state, STATE_NOTRECOVERABLE);
	CHECK_ERR(shmcap_mutex_lock(m, SHMCAP_FOREVER), -ENOTRECOVERABLE);
	CHECK_ERR(shmcap_mutex_lock(m, 0), -ENOTRECOVERABLE);
	CHECK_ERR(shmcap_mutex_trylock(m), -ENOTRECOVERABLE);
	/* Not left held by the failed lock. */
	CHECK_EQ(m->owner, 0);
	CHECK_ERR(shmcap_mutex_unlock(m), -EPERM);
	CHECK_ERR(shmcap_mutex_consistent(m), -EINVAL);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		struct shared *c = t_remap(region, &map);

		CHECK_ERR(shmcap_mutex_lock(&c->m, 10 * MSEC),
			  -ENOTRECOVERABLE);
		CHECK_ERR(shmcap_mutex_trylock(&c->m), -ENOTRECOVERABLE);
		t_child_exit(region, map);
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
	CHECK_EQ(m->owner, 0);

	/* Initialised again: usable. */
	CHECK_OK(shmcap_mutex_init(m));
	CHECK_ERR(shmcap_mutex_lock(m, 0), 0);
	CHECK_ERR(shmcap_mutex_unlock(m), 0);
	t_region_free(region, map);
}

/* ------------------------------------------------------------------------
 * Threads that end holding the lock
 */

struct exit_arg {
	shmcap_mutex *m;
	shmcap_sem *locked;
	pid_t tid;
	pid_t wait_for;	  /* if set: exit only once this thread sleeps */
	uint32_t locking; /* set by wait_for just before it locks */
	int ret;
};

static void *exit_holding(void *p)
{
	struct exit_arg *arg = p;

	arg->tid = gettid();
	arg->ret = shmcap_mutex_lock(arg->m, SHMCAP_FOREVER);
	if (arg->ret == 0)
		CHECK_ERR(shmcap_sem_post(arg->locked), 0);
	if (arg->wait_for) {
		wait_flag(&arg->locking, 1);
		wait_asleep(arg->wait_for);
	}
	return NULL;
}

static void test_thread_exit(void)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	struct exit_arg arg;
	pthread_t t;
	pid_t pid;

	/* The thread is gone before anyone looks. */
	memset(&arg, 0, sizeof(arg));
	arg.m = &sh->m;
	arg.locked = &sh->done;
	CHECK_EQ(pthread_create(&t, NULL, exit_holding, &arg), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_ERR(arg.ret, 0);
	take(&sh->done);
	CHECK_EQ((uint32_t)sh->m.owner & OWNER_TID_MASK, arg.tid);
	CHECK_ERR(shmcap_mutex_trylock(&sh->m), -EBUSY);
	CHECK_ERR(shmcap_mutex_unlock(&sh->m), -EPERM);
	CHECK_ERR(shmcap_mutex_lock(&sh->m, 5 * SEC), -EOWNERDEAD);
	CHECK_EQ((uint32_t)sh->m.owner & OWNER_TID_MASK, gettid());
	CHECK_ERR(shmcap_mutex_consistent(&sh->m), 0);
	CHECK_ERR(shmcap_mutex_unlock(&sh->m), 0);

	/* The main thread already sleeps in lock when the holder ends. */
	memset(&arg, 0, sizeof(arg));
	arg.m = &sh->m;
	arg.locked = &sh->done;
	arg.wait_for = gettid();
	CHECK_EQ(pthread_create(&t, NULL, exit_holding, &arg), 0);
	take(&sh->done);
	t_store32(&arg.locking, 1);
	CHECK_ERR(shmcap_mutex_lock(&sh->m, SHMCAP_FOREVER), -EOWNERDEAD);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_ERR(arg.ret, 0);
	CHECK_ERR(shmcap_mutex_consistent(&sh->m), 0);
	CHECK_ERR(shmcap_mutex_unlock(&sh->m), 0);

	/*
	 * A thread of another process that lives on: the thread's death
	 * counts, not the process's.
	 */
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		struct shared *c = t_remap(region, &map);

		memset(&arg, 0, sizeof(arg));
		arg.m = &c->m;
		arg.locked = &c->done;
		CHECK_EQ(pthread_create(&t, NULL, exit_holding, &arg), 0);
		CHECK_EQ(pthread_join(t, NULL), 0);
		CHECK_ERR(arg.ret, 0);
		take(&c->go);
		t_child_exit(region, map);
	}
	take(&sh->done);
	CHECK_ERR(shmcap_mutex_lock(&sh->m, 5 * SEC), -EOWNERDEAD);
	CHECK_ERR(shmcap_mutex_consistent(&sh->m), 0);
	CHECK_ERR(shmcap_mutex_unlock(&sh->m), 0);
	post(&sh->go);
	t_reap_ok(pid, CHILD_TIMEOUT);
	t_region_free(region, map);
}

/* ------------------------------------------------------------------------
 * Corrupt records
 */

enum pattern {
	P_RANDOM,     /* 64 random bits: a tid that does not exist */
	P_ZERO_TID,   /* tid 0, random start time */
	P_SELF_STALE, /* this process's tid, another start time */
	P_FREE,	      /* 0: unlocked */
	P_SELF,	      /* exactly this thread: -EDEADLK */
	P_LIVE,	      /* a live child holding it */
	P_SELF_BIT30, /* this thread with the unused bit 30 set */
	P_BAD_HEADER, /* bad magic or version */
};

static int allowed(int ret)
{
	return ret == 0 || ret == -EOWNERDEAD || ret == -ETIMEDOUT ||
	       ret == -EBUSY || ret == -ENOTRECOVERABLE || ret == -EBADMSG ||
	       ret == -EDEADLK;
}

/*
 * Random owner words and states, a few of them looking alive: every lock
 * returns within its small timeout with one of the documented results,
 * and the deterministic cases give exactly the expected one.
 */
static void test_corrupt(void)
{
	static const uint32_t states[] = { 0, 1, 2, 3, 0xffffffffu, 0 };
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	shmcap_mutex *m = &sh->m;
	uint64_t me = self_owner(), live;
	unsigned long tally[8] = { 0 };
	int k, ret;
	pid_t pid;

	/* Bad magic and version: -EBADMSG, the words untouched. */
	m->magic = SHMCAP_MUTEX_MAGIC ^ 1;
	CHECK_ERR(shmcap_mutex_lock(m, SHMCAP_FOREVER), -EBADMSG);
	CHECK_ERR(shmcap_mutex_trylock(m), -EBADMSG);
	CHECK_ERR(shmcap_mutex_unlock(m), -EBADMSG);
	CHECK_ERR(shmcap_mutex_consistent(m), -EBADMSG);
	CHECK_EQ(m->owner, 0);
	CHECK_OK(shmcap_mutex_init(m));
	m->version = SHMCAP_SYNC_VERSION + 1;
	CHECK_ERR(shmcap_mutex_lock(m, SHMCAP_FOREVER), -EBADMSG);
	CHECK_ERR(shmcap_mutex_trylock(m), -EBADMSG);
	CHECK_ERR(shmcap_mutex_unlock(m), -EBADMSG);
	CHECK_ERR(shmcap_mutex_consistent(m), -EBADMSG);

	/* A live holder elsewhere, whose owner word we can copy. */
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		struct shared *c = t_remap(region, &map);

		CHECK_ERR(shmcap_mutex_lock(&c->m2, SHMCAP_FOREVER), 0);
		post(&c->done);
		take(&c->go);
		CHECK_ERR(shmcap_mutex_unlock(&c->m2), 0);
		t_child_exit(region, map);
	}
	take(&sh->done);
	live = t_load64(&sh->m2.owner);
	CHECK_EQ((uint32_t)live & OWNER_TID_MASK, pid);

	for (k = 0; k < 1000; k++) {
		enum pattern p;
		uint32_t state = states[t_rnd() % 6];
		uint64_t owner = t_rnd();
		size_t j;
		int expect = 1; /* 1: no single expected result */

		if (k % 100 == 7)
			p = P_LIVE;
		else if (k % 100 == 57)
			p = P_SELF_BIT30;
		else if (k % 50 == 3)
			p = P_SELF;
		else
			p = (enum pattern)(t_rnd() % 4);
		if (k % 10 == 9)
			p = P_BAD_HEADER;
		if (state == 0 && k % 6 == 5)
			state = (uint32_t)t_rnd();
		tally[p]++;

		CHECK_OK(shmcap_mutex_init(m));
		for (j = 0; j < sizeof(m->reserved) / sizeof(m->reserved[0]);
		     j++)
			m->reserved[j] = (uint32_t)t_rnd();
		switch (p) {
		case P_RANDOM:
			/* Unless the random tid exists and its start time
			 * matches, a dead holder: taken over. */
			expect = -EOWNERDEAD;
			if ((owner & OWNER_TID_MASK) <= 0x400000)
				expect = 1;
			break;
		case P_ZERO_TID:
			owner &= ~(uint64_t)OWNER_TID_MASK;
			if (owner == 0)
				owner = (uint64_t)1 << 40;
			expect = -EOWNERDEAD;
			break;
		case P_SELF_STALE:
			owner = (owner & ~(uint64_t)0xffffffffu) |
				(owner & OWNER_WAITERS) | (uint32_t)gettid();
			/* Another start time; not 0, which means "unknown,
			 * judge by existence" (the holder could not read it). */
			if ((owner >> 32) == (me >> 32) || (owner >> 32) == 0)
				owner ^= (uint64_t)1 << 63;
			if ((owner >> 32) == (me >> 32))
				owner ^= (uint64_t)1 << 62;
			expect = -EOWNERDEAD;
			break;
		case P_FREE:
			owner = 0;
			expect = state == STATE_CONSISTENT ? 0 :
				 state == STATE_OWNER_DIED ? -EOWNERDEAD :
				 state == STATE_NOTRECOVERABLE ?
							     -ENOTRECOVERABLE :
							     -EBADMSG;
			break;
		case P_SELF:
			owner = me | (owner & OWNER_WAITERS);
			expect = -EDEADLK;
			break;
		case P_LIVE:
			owner = live | (owner & OWNER_WAITERS);
			/* Start time 0, "unknown": its tid exists, alive. */
			if (k % 200 == 7)
				owner = (uint32_t)owner;
			expect = -ETIMEDOUT;
			break;
		case P_SELF_BIT30:
			/* Not us (bit 30 differs), but our tid is alive. */
			owner = me | 0x40000000u | (owner & OWNER_WAITERS);
			expect = -ETIMEDOUT;
			break;
		case P_BAD_HEADER:
			if (t_rnd() & 1)
				m->magic = (uint32_t)t_rnd();
			else
				m->version = (uint16_t)(t_rnd() | 2);
			if (m->magic == SHMCAP_MUTEX_MAGIC)
				m->magic ^= 4;
			expect = -EBADMSG;
			break;
		}
		m->owner = owner;
		m->state = state;

		/* trylock first: it never waits. */
		ret = shmcap_mutex_trylock(m);
		if (!allowed(ret) || ret == -ETIMEDOUT)
			FAIL("pattern %d owner 0x%016llx state 0x%x: trylock "
			     "%d (%s)",
			     p, (unsigned long long)owner, state, ret,
			     shmcap_err_name(ret));
		if (ret == 0 || ret == -EOWNERDEAD) {
			/* Free (P_FREE): taken. Give it back as it was. */
			CHECK_EQ(p, P_FREE);
			CHECK_ERR(ret, expect);
			CHECK_ERR(shmcap_mutex_unlock(m), 0);
			m->owner = owner;
			m->state = state;
		}

		ret = shmcap_mutex_lock(m, 20 * MSEC);
		if (!allowed(ret))
			FAIL("pattern %d owner 0x%016llx state 0x%x: lock "
			     "%d (%s)",
			     p, (unsigned long long)owner, state, ret,
			     shmcap_err_name(ret));
		if (expect != 1 && ret != expect)
			FAIL("pattern %d owner 0x%016llx state 0x%x: lock "
			     "%d (%s), expected %s",
			     p, (unsigned long long)owner, state, ret,
			     shmcap_err_name(ret), shmcap_err_name(expect));
		if (ret == 0 || ret == -EOWNERDEAD) {
			/* Ours now, recorded as such. */
			CHECK_EQ(m->owner & ~(uint64_t)OWNER_WAITERS, me);
			if (ret == -EOWNERDEAD && (k & 1))
				CHECK_ERR(shmcap_mutex_consistent(m), 0);
			CHECK_ERR(shmcap_mutex_unlock(m), 0);
		} else if (p == P_SELF) {
			CHECK_ERR(shmcap_mutex_unlock(m), 0);
		} else if (p == P_BAD_HEADER) {
			CHECK_ERR(shmcap_mutex_unlock(m), -EBADMSG);
			CHECK_ERR(shmcap_mutex_consistent(m), -EBADMSG);
		} else {
			CHECK_ERR(shmcap_mutex_unlock(m), -EPERM);
			CHECK_ERR(shmcap_mutex_consistent(m), -EINVAL);
		}
	}
	post(&sh->go);
	t_reap_ok(pid, CHILD_TIMEOUT);
	printf("corrupt: %lu random, %lu tid 0, %lu stale self, %lu free, "
	       "%lu self, %lu live, %lu bit 30, %lu bad header\n",
	       tally[P_RANDOM], tally[P_ZERO_TID], tally[P_SELF_STALE],
	       tally[P_FREE], tally[P_SELF], tally[P_LIVE], tally[P_SELF_BIT30],
	       tally[P_BAD_HEADER]);
	t_region_free(region, map);
}

int main(int argc, char **argv)
{
	unsigned long rounds;
	int fds;

	t_watchdog(110);
	if (argc > 1) {
		char *end;

		errno = 0;
		rounds = strtoul(argv[1], &end, 10);
		if (errno || *end || end == argv[1] || rounds == 0) {
			fprintf(stderr, "usage: %s [ROUNDS]\n", argv[0]);
			return T_EXIT_FAIL;
		}
	} else {
		rounds = t_scaled(1000);
	}
	page = (uint64_t)sysconf(_SC_PAGESIZE);
	t_rng_seed();
	printf("seed %llu, %lu rounds\n", (unsigned long long)t_rng_state,
	       rounds);

	fds = t_count_fds();
	CHECK(fds > 0);

	test_basic();
	test_bad_input();
	test_two_processes();
	CHECK_EQ(t_count_fds(), fds);
	test_owner_died_protocol();
	test_thread_exit();
	CHECK_EQ(t_count_fds(), fds);
	test_corrupt();
	CHECK_EQ(t_count_fds(), fds);
	test_exclusion(100 * rounds);
	test_robust(rounds);

	CHECK_EQ(t_count_fds(), fds);
	CHECK_EQ(t_shm_leftovers_prefix("shmcap.t-mutex-"), 0);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
	return T_EXIT_PASS;
}
