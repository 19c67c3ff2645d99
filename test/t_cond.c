/* Description: shared-memory condition variables: bounded producer/consumer between processes, signal and broadcast wake sleepers, timeouts, EPERM, corrupt records, EOWNERDEAD from cond_wait */
/* SPDX-License-Identifier: MIT */
/*
 * Usage: t_cond [ITEMS]
 *
 * ITEMS is the number of items each producer passes through the bounded
 * buffer (default 100000). Without an argument, SHMCAP_TEST_SCALE (a
 * factor such as 0.1 or 10) scales the default.
 *
 * The records live in an anonymous region that every child maps again at
 * an address of its own. Waits that must be woken wait without a limit
 * (or with a limit far beyond any scheduling delay, where a timeout is
 * reported as the missing wake-up it means); a hang is caught by the
 * watchdog. Timing never decides a verdict.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* gettid, SYS_* */
#endif

#include <errno.h>
#include <fcntl.h>
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
#define RING 4		  /* slots in the bounded buffer */
#define OWNER_TID_MASK 0x3fffffffu

/* Everything the processes share. */
struct shared {
	shmcap_mutex m;
	shmcap_cond not_empty;
	shmcap_cond not_full;
	shmcap_cond c3;
	shmcap_sem done;
	shmcap_sem go;
	/* The bounded buffer, under m. */
	uint64_t ring[RING];
	uint64_t head, tail;
	uint32_t count;
	uint32_t producers_done;
	/* Predicates of the wake-up tests, under m. */
	uint32_t flag;
	uint32_t tickets;
	uint32_t woken;
	uint32_t ready;
	uint32_t timeouts;
	int32_t result;
	/* What each consumer took: how many, and their sum. */
	uint64_t taken[2];
	uint64_t sum[2];
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
	CHECK_OK(shmcap_cond_init(&sh->not_empty));
	CHECK_OK(shmcap_cond_init(&sh->not_full));
	CHECK_OK(shmcap_cond_init(&sh->c3));
	CHECK_OK(shmcap_sem_init(&sh->done, 0));
	CHECK_OK(shmcap_sem_init(&sh->go, 0));
	return sh;
}

static void lock(shmcap_mutex *m)
{
	CHECK_ERR(shmcap_mutex_lock(m, SHMCAP_FOREVER), 0);
}

static void unlock(shmcap_mutex *m)
{
	CHECK_ERR(shmcap_mutex_unlock(m), 0);
}

/* Wait until *word reaches v; the bound only avoids a hang. */
static void wait_value(const uint32_t *word, uint32_t v)
{
	int i;

	for (i = 0; t_load32(word) != v; i++) {
		if (i > 1000000)
			FAIL("value %u never became %u", t_load32(word), v);
		t_sleep_ns(20000);
	}
}

/* ------------------------------------------------------------------------
 * One process
 */

static void test_basic(void)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	shmcap_cond *c = &sh->c3;
	size_t i;

	/* The layout of <shmcap/abi.h>. */
	CHECK_EQ(c->magic, SHMCAP_COND_MAGIC);
	CHECK_EQ(c->version, SHMCAP_SYNC_VERSION);
	CHECK_EQ(c->reserved0, 0);
	CHECK_EQ(c->seq, 0);
	CHECK_EQ(c->waiters, 0);
	for (i = 0; i < sizeof(c->reserved) / sizeof(c->reserved[0]); i++)
		CHECK_EQ(c->reserved[i], 0);

	/* Signals with nobody waiting are not remembered: still counted. */
	CHECK_ERR(shmcap_cond_signal(c), 0);
	CHECK_ERR(shmcap_cond_broadcast(c), 0);
	CHECK_EQ(c->waiters, 0);

	/* Timeouts: -ETIMEDOUT, and the mutex is ours again. */
	lock(&sh->m);
	CHECK_ERR(shmcap_cond_wait(c, &sh->m, 0), -ETIMEDOUT);
	CHECK_ERR(shmcap_mutex_trylock(&sh->m), -EDEADLK);
	CHECK_ERR(shmcap_cond_wait(c, &sh->m, 1), -ETIMEDOUT);
	CHECK_ERR(shmcap_cond_wait(c, &sh->m, 5 * MSEC), -ETIMEDOUT);
	CHECK_ERR(shmcap_mutex_trylock(&sh->m), -EDEADLK);
	CHECK_EQ((uint32_t)sh->m.owner & OWNER_TID_MASK, gettid());
	CHECK_EQ(c->waiters, 0);
	CHECK_ERR(shmcap_mutex_unlock(&sh->m), 0);
	CHECK_ERR(shmcap_mutex_unlock(&sh->m), -EPERM);

	/* Not holding the mutex: -EPERM, nothing counted. */
	CHECK_ERR(shmcap_cond_wait(c, &sh->m, 0), -EPERM);
	CHECK_ERR(shmcap_cond_wait(c, &sh->m, SHMCAP_FOREVER), -EPERM);
	CHECK_EQ(c->waiters, 0);
	CHECK_EQ(sh->m.owner, 0);

	/* Held by another process: -EPERM, and still the other's. */
	{
		pid_t pid = t_fork_child(CHILD_TIMEOUT);
		uint64_t owner;

		if (pid == 0) {
			struct shared *s = t_remap(region, &map);

			lock(&s->m);
			CHECK_ERR(shmcap_sem_post(&s->done), 0);
			CHECK_ERR(shmcap_sem_wait(&s->go, SHMCAP_FOREVER), 0);
			unlock(&s->m);
			t_child_exit(region, map);
		}
		CHECK_ERR(shmcap_sem_wait(&sh->done, SHMCAP_FOREVER), 0);
		owner = sh->m.owner;
		CHECK_EQ((uint32_t)owner & OWNER_TID_MASK, pid);
		CHECK_ERR(shmcap_cond_wait(c, &sh->m, 10 * MSEC), -EPERM);
		CHECK_ERR(shmcap_cond_wait(c, &sh->m, SHMCAP_FOREVER), -EPERM);
		CHECK_EQ(sh->m.owner, owner);
		CHECK_EQ(c->waiters, 0);
		CHECK_ERR(shmcap_sem_post(&sh->go), 0);
		t_reap_ok(pid, CHILD_TIMEOUT);
	}
	t_region_free(region, map);
}

static void test_bad_input(void)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	shmcap_cond *c = &sh->c3;
	/* A condition must be 4-byte aligned, a mutex 8-byte aligned. */
	static const size_t skew[] = { 1, 2, 3, 6 };
	static const size_t mskew[] = { 1, 2, 4, 7 };
	size_t i;

	CHECK_ERR(shmcap_cond_init(NULL), -EINVAL);
	CHECK_ERR(shmcap_cond_signal(NULL), -EINVAL);
	CHECK_ERR(shmcap_cond_broadcast(NULL), -EINVAL);
	lock(&sh->m);
	CHECK_ERR(shmcap_cond_wait(NULL, &sh->m, 0), -EINVAL);
	CHECK_ERR(shmcap_cond_wait(c, NULL, 0), -EINVAL);
	CHECK_ERR(shmcap_cond_wait(NULL, NULL, SHMCAP_FOREVER), -EINVAL);
	for (i = 0; i < sizeof(skew) / sizeof(skew[0]); i++) {
		shmcap_cond *bad = (shmcap_cond *)((char *)c + skew[i]);
		shmcap_mutex *badm =
			(shmcap_mutex *)((char *)&sh->m + mskew[i]);

		CHECK_ERR(shmcap_cond_init(bad), -EINVAL);
		CHECK_ERR(shmcap_cond_signal(bad), -EINVAL);
		CHECK_ERR(shmcap_cond_broadcast(bad), -EINVAL);
		CHECK_ERR(shmcap_cond_wait(bad, &sh->m, SHMCAP_FOREVER),
			  -EINVAL);
		CHECK_ERR(shmcap_cond_wait(c, badm, SHMCAP_FOREVER), -EINVAL);
	}
	/* Still held, and nobody counted as waiting. */
	CHECK_ERR(shmcap_mutex_trylock(&sh->m), -EDEADLK);
	CHECK_EQ(c->waiters, 0);

	/* At a 4-byte aligned offset, a condition works. */
	{
		shmcap_cond *c4 = (shmcap_cond *)((char *)&sh->not_full + 4);

		CHECK_OK(shmcap_cond_init(c4));
		CHECK_ERR(shmcap_cond_signal(c4), 0);
		CHECK_ERR(shmcap_cond_broadcast(c4), 0);
		CHECK_ERR(shmcap_cond_wait(c4, &sh->m, MSEC), -ETIMEDOUT);
		CHECK_ERR(shmcap_mutex_trylock(&sh->m), -EDEADLK);
	}
	unlock(&sh->m);
	t_region_free(region, map);
}

/*
 * Corrupt records: -EBADMSG before anything happens (the mutex stays
 * held), and garbage in the counters never makes a wait outlast its
 * timeout.
 */
static void test_corrupt(void)
{
	static const uint32_t garbage[] = { 1, 0x7fffffffu, 0x80000000u,
					    0xfffffffeu, 0xffffffffu };
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	shmcap_cond *c = &sh->c3;
	size_t i;
	int k;

	lock(&sh->m);

	/* Zero-filled: never initialised. */
	memset(c, 0, sizeof(*c));
	CHECK_ERR(shmcap_cond_wait(c, &sh->m, SHMCAP_FOREVER), -EBADMSG);
	CHECK_ERR(shmcap_cond_signal(c), -EBADMSG);
	CHECK_ERR(shmcap_cond_broadcast(c), -EBADMSG);

	/* Bad magic: the mutex was not touched. */
	CHECK_OK(shmcap_cond_init(c));
	c->magic ^= 0x10000;
	CHECK_ERR(shmcap_cond_wait(c, &sh->m, SHMCAP_FOREVER), -EBADMSG);
	CHECK_ERR(shmcap_cond_wait(c, &sh->m, 0), -EBADMSG);
	CHECK_ERR(shmcap_cond_signal(c), -EBADMSG);
	CHECK_ERR(shmcap_cond_broadcast(c), -EBADMSG);
	CHECK_ERR(shmcap_mutex_trylock(&sh->m), -EDEADLK);
	CHECK_EQ(c->waiters, 0);
	CHECK_EQ(c->seq, 0);
	/* A mutex or semaphore record is not a condition. */
	CHECK_OK(shmcap_sem_init((shmcap_sem *)c, 0));
	CHECK_ERR(shmcap_cond_signal(c), -EBADMSG);

	/* Bad version. */
	CHECK_OK(shmcap_cond_init(c));
	c->version = SHMCAP_SYNC_VERSION + 1;
	CHECK_ERR(shmcap_cond_wait(c, &sh->m, SHMCAP_FOREVER), -EBADMSG);
	CHECK_ERR(shmcap_cond_signal(c), -EBADMSG);
	CHECK_ERR(shmcap_cond_broadcast(c), -EBADMSG);
	CHECK_ERR(shmcap_mutex_trylock(&sh->m), -EDEADLK);

	/* A good condition with a corrupt mutex. */
	CHECK_OK(shmcap_cond_init(c));
	unlock(&sh->m);
	sh->m.magic ^= 1;
	CHECK_ERR(shmcap_cond_wait(c, &sh->m, SHMCAP_FOREVER), -EBADMSG);
	CHECK_EQ(c->waiters, 0);
	sh->m.magic ^= 1;
	lock(&sh->m);

	/* Garbage in seq and waiters: timeouts still hold. */
	for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		CHECK_OK(shmcap_cond_init(c));
		c->seq = garbage[i];
		c->waiters = garbage[i];
		CHECK_ERR(shmcap_cond_wait(c, &sh->m, 2 * MSEC), -ETIMEDOUT);
		CHECK_ERR(shmcap_mutex_trylock(&sh->m), -EDEADLK);
		CHECK_EQ(c->waiters, garbage[i]);
		CHECK_ERR(shmcap_cond_signal(c), 0);
		CHECK_ERR(shmcap_cond_broadcast(c), 0);
		CHECK_EQ(c->seq, garbage[i] + 2);
	}

	/*
	 * Random records: the header decides -EBADMSG; otherwise a wait
	 * nobody signals times out, and signal and broadcast succeed.
	 */
	for (k = 0; k < 300; k++) {
		uint32_t *w = (uint32_t *)c;
		size_t j;
		int valid, ret;

		for (j = 0; j < sizeof(*c) / 4; j++)
			w[j] = (uint32_t)t_rnd();
		if (k % 3) {
			c->magic = SHMCAP_COND_MAGIC;
			c->version = SHMCAP_SYNC_VERSION;
		}
		valid = c->magic == SHMCAP_COND_MAGIC &&
			c->version == SHMCAP_SYNC_VERSION;
		ret = shmcap_cond_wait(c, &sh->m, k % 5 ? MSEC / 2 : 0);
		CHECK_ERR(ret, valid ? -ETIMEDOUT : -EBADMSG);
		CHECK_ERR(shmcap_mutex_trylock(&sh->m), -EDEADLK);
		CHECK_ERR(shmcap_cond_signal(c), valid ? 0 : -EBADMSG);
		CHECK_ERR(shmcap_cond_broadcast(c), valid ? 0 : -EBADMSG);
	}
	unlock(&sh->m);
	t_region_free(region, map);
}

/* ------------------------------------------------------------------------
 * Between processes
 */

/*
 * The classic bounded buffer: producers put items into a ring of RING
 * slots under the mutex and wait on not_full while it is full; consumers
 * take them and wait on not_empty while it is empty; each side signals
 * the other. Every item arrives once, each producer's in order.
 */
static void produce(struct shared *s, unsigned long n, unsigned int p,
		    unsigned int nprod)
{
	unsigned long i;

	for (i = 1; i <= n; i++) {
		lock(&s->m);
		while (s->count == RING)
			CHECK_ERR(shmcap_cond_wait(&s->not_full, &s->m,
						   SHMCAP_FOREVER),
				  0);
		s->ring[s->head % RING] = (uint64_t)p << 32 | i;
		s->head++;
		s->count++;
		CHECK_ERR(shmcap_cond_signal(&s->not_empty), 0);
		unlock(&s->m);
	}
	lock(&s->m);
	/* The last producer wakes every consumer to see the end. */
	if (++s->producers_done == nprod)
		CHECK_ERR(shmcap_cond_broadcast(&s->not_empty), 0);
	unlock(&s->m);
}

static void consume(struct shared *s, unsigned int c, unsigned int nprod,
		    unsigned int ncons)
{
	uint64_t last[2] = { 0, 0 }, item;
	unsigned int p;

	for (;;) {
		lock(&s->m);
		while (s->count == 0 && s->producers_done < nprod)
			CHECK_ERR(shmcap_cond_wait(&s->not_empty, &s->m,
						   SHMCAP_FOREVER),
				  0);
		if (s->count == 0) {
			unlock(&s->m);
			break;
		}
		item = s->ring[s->tail % RING];
		s->tail++;
		s->count--;
		CHECK_ERR(shmcap_cond_signal(&s->not_full), 0);
		unlock(&s->m);

		p = (unsigned int)(item >> 32);
		/* One consumer sees each producer's items one by one. */
		if (p >= nprod || (item & 0xffffffffu) <= last[p] ||
		    (ncons == 1 && (item & 0xffffffffu) != last[p] + 1))
			FAIL("consumer %u: item 0x%llx after 0x%llx", c,
			     (unsigned long long)item,
			     (unsigned long long)last[p < 2 ? p : 0]);
		last[p] = item & 0xffffffffu;
		s->taken[c]++;
		s->sum[c] += item & 0xffffffffu;
	}
}

static void test_bounded_buffer(unsigned long n, unsigned int nprod,
				unsigned int ncons)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	uint64_t want_sum = (uint64_t)n * (n + 1) / 2 * nprod;
	int64_t t0 = t_now_ns();
	pid_t pids[4];
	unsigned int k;

	for (k = 0; k < nprod + ncons; k++) {
		pids[k] = t_fork_child(CHILD_TIMEOUT);
		if (pids[k] == 0) {
			struct shared *s = t_remap(region, &map);

			if (k < nprod)
				produce(s, n, k, nprod);
			else
				consume(s, k - nprod, nprod, ncons);
			t_child_exit(region, map);
		}
	}
	for (k = 0; k < nprod + ncons; k++)
		t_reap_ok(pids[k], CHILD_TIMEOUT);
	printf("bounded buffer: %u producers x %lu items, %u consumers took "
	       "%llu + %llu, in %.3f s\n",
	       nprod, n, ncons, (unsigned long long)sh->taken[0],
	       (unsigned long long)sh->taken[1],
	       (double)(t_now_ns() - t0) / 1e9);
	CHECK_EQ(sh->taken[0] + sh->taken[1], (uint64_t)n * nprod);
	CHECK_EQ(sh->sum[0] + sh->sum[1], want_sum);
	CHECK_EQ(sh->head, (uint64_t)n * nprod);
	CHECK_EQ(sh->tail, sh->head);
	CHECK_EQ(sh->count, 0);
	CHECK_EQ(sh->producers_done, nprod);
	CHECK_EQ(sh->not_empty.waiters, 0);
	CHECK_EQ(sh->not_full.waiters, 0);
	CHECK_EQ(sh->m.owner, 0);
	t_region_free(region, map);
}

/*
 * Three processes asleep in cond_wait: one broadcast wakes them all; and
 * one signal per ticket wakes at least one each time. A waiter whose
 * 30-second wait runs out reports it: that is a lost wake-up.
 */
static void test_wake_all(int broadcast)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	pid_t pids[3];
	int k, round, exited = 0;

	for (k = 0; k < 3; k++) {
		pids[k] = t_fork_child(CHILD_TIMEOUT);
		if (pids[k] == 0) {
			struct shared *s = t_remap(region, &map);
			int ret;

			lock(&s->m);
			s->ready++;
			while (broadcast ? !s->flag : !s->tickets) {
				ret = shmcap_cond_wait(&s->c3, &s->m, 30 * SEC);
				if (ret == -ETIMEDOUT)
					s->timeouts++;
				else
					CHECK_ERR(ret, 0);
			}
			if (!broadcast)
				s->tickets--;
			s->woken++;
			unlock(&s->m);
			t_child_exit(region, map);
		}
	}
	wait_value(&sh->ready, 3);
	for (k = 0; k < 3; k++)
		t_wait_asleep(pids[k]);
	CHECK_EQ(t_load32(&sh->c3.waiters), 3);

	if (broadcast) {
		lock(&sh->m);
		sh->flag = 1;
		CHECK_ERR(shmcap_cond_broadcast(&sh->c3), 0);
		unlock(&sh->m);
		for (k = 0; k < 3; k++)
			t_reap_ok(pids[k], CHILD_TIMEOUT);
	} else {
		for (round = 1; round <= 3; round++) {
			int i;

			lock(&sh->m);
			sh->tickets++;
			CHECK_ERR(shmcap_cond_signal(&sh->c3), 0);
			unlock(&sh->m);
			/* Exactly one more leaves with the ticket. */
			wait_value(&sh->woken, (uint32_t)round);
			for (i = 0; exited < round; i++) {
				int st;
				pid_t r = waitpid(-1, &st, WNOHANG);

				if (r > 0) {
					CHECK_CHILD_OK(st);
					exited++;
					for (k = 0; k < 3; k++)
						if (pids[k] == r)
							pids[k] = 0;
				}
				if (i > 1000000)
					FAIL("round %d: the woken child did "
					     "not exit",
					     round);
				if (r <= 0)
					t_sleep_ns(20000);
			}
			lock(&sh->m);
			CHECK_EQ(sh->tickets, 0);
			CHECK_EQ(sh->woken, (uint32_t)round);
			unlock(&sh->m);
		}
	}
	printf("%s: woke %u of 3 sleepers (%u timed out)\n",
	       broadcast ? "broadcast" : "signal x 3", sh->woken, sh->timeouts);
	CHECK_EQ(sh->woken, 3);
	CHECK_EQ(sh->timeouts, 0);
	CHECK_EQ(sh->c3.waiters, 0);
	t_region_free(region, map);
}

/*
 * A waiter in cond_wait; another process takes the mutex and is killed
 * holding it; then the condition is signalled. The waiter's cond_wait
 * must come back with -EOWNERDEAD and the mutex held.
 */
static void test_owner_dies(void)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	pid_t waiter, holder;
	int st;

	sh->result = 1;
	waiter = t_fork_child(CHILD_TIMEOUT);
	if (waiter == 0) {
		struct shared *s = t_remap(region, &map);
		int ret;

		lock(&s->m);
		t_store32(&s->ready, 1);
		ret = shmcap_cond_wait(&s->c3, &s->m, 60 * SEC);
		t_store32((uint32_t *)&s->result, (uint32_t)ret);
		if (ret == -EOWNERDEAD) {
			CHECK_EQ((uint32_t)s->m.owner & OWNER_TID_MASK,
				 gettid());
			CHECK_ERR(shmcap_mutex_trylock(&s->m), -EDEADLK);
			CHECK_ERR(shmcap_mutex_consistent(&s->m), 0);
			unlock(&s->m);
		}
		t_child_exit(region, map);
	}
	wait_value(&sh->ready, 1);
	t_wait_asleep(waiter);
	CHECK_EQ(t_load32(&sh->c3.waiters), 1);

	holder = t_fork_child(CHILD_TIMEOUT);
	if (holder == 0) {
		struct shared *s = t_remap(region, &map);

		lock(&s->m);
		t_store32(&s->ready, 2);
		for (;;)
			pause();
	}
	wait_value(&sh->ready, 2);
	CHECK_EQ((uint32_t)sh->m.owner & OWNER_TID_MASK, holder);
	CHECK_EQ(kill(holder, SIGKILL), 0);
	st = t_wait_child(holder, CHILD_TIMEOUT);
	CHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	CHECK_ERR(shmcap_cond_signal(&sh->c3), 0);
	t_reap_ok(waiter, CHILD_TIMEOUT);
	CHECK_ERR(sh->result, -EOWNERDEAD);
	CHECK_EQ(sh->m.owner, 0);
	CHECK_EQ(sh->m.state, 0);
	CHECK_EQ(sh->c3.waiters, 0);
	t_region_free(region, map);
}

/*
 * While a process waits in cond_wait, the mutex becomes unusable: not
 * recoverable (a holder died and the next one unlocked it without
 * repairing), or corrupt. The re-lock fails, and cond_wait returns that
 * error with the mutex not held.
 */
static void test_relock_fails(int corrupt)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = shared_new(&region, &map);
	int want = corrupt ? -EBADMSG : -ENOTRECOVERABLE;
	pid_t waiter, holder;

	sh->result = 1;
	waiter = t_fork_child(CHILD_TIMEOUT);
	if (waiter == 0) {
		struct shared *s = t_remap(region, &map);
		int ret;

		lock(&s->m);
		t_store32(&s->ready, 1);
		ret = shmcap_cond_wait(&s->c3, &s->m, 60 * SEC);
		t_store32((uint32_t *)&s->result, (uint32_t)ret);
		if (ret == want)
			CHECK((uint32_t)s->m.owner != (uint32_t)gettid());
		t_child_exit(region, map);
	}
	wait_value(&sh->ready, 1);
	t_wait_asleep(waiter);
	CHECK_EQ(t_load32(&sh->c3.waiters), 1);

	if (corrupt) {
		sh->m.magic ^= 0x100;
	} else {
		holder = t_fork_child(CHILD_TIMEOUT);
		if (holder == 0) {
			struct shared *s = t_remap(region, &map);

			lock(&s->m);
			fflush(NULL);
			_exit(T_EXIT_PASS); /* holding it */
		}
		t_reap_ok(holder, CHILD_TIMEOUT);
		CHECK_ERR(shmcap_mutex_lock(&sh->m, 10 * SEC), -EOWNERDEAD);
		CHECK_ERR(shmcap_mutex_unlock(&sh->m), 0); /* not repaired */
		CHECK_EQ(sh->m.state, 2);
	}
	CHECK_ERR(shmcap_cond_signal(&sh->c3), 0);
	t_reap_ok(waiter, CHILD_TIMEOUT);
	CHECK_ERR(sh->result, want);
	CHECK_EQ(sh->m.owner, 0);
	CHECK_EQ(sh->c3.waiters, 0);
	t_region_free(region, map);
}

int main(int argc, char **argv)
{
	unsigned long items;
	int fds;

	t_watchdog(110);
	if (argc > 1) {
		char *end;

		errno = 0;
		items = strtoul(argv[1], &end, 10);
		if (errno || *end || end == argv[1] || items == 0 ||
		    items > 0xffffffffu) {
			fprintf(stderr, "usage: %s [ITEMS]\n", argv[0]);
			return T_EXIT_FAIL;
		}
	} else {
		items = t_scaled(100000);
	}
	page = (uint64_t)sysconf(_SC_PAGESIZE);
	t_rng_seed();
	printf("seed %llu, %lu items\n", (unsigned long long)t_rng_state,
	       items);

	fds = t_count_fds();
	CHECK(fds > 0);

	test_basic();
	test_bad_input();
	test_corrupt();
	CHECK_EQ(t_count_fds(), fds);
	test_wake_all(1);
	test_wake_all(0);
	test_owner_dies();
	test_relock_fails(0);
	test_relock_fails(1);
	CHECK_EQ(t_count_fds(), fds);
	test_bounded_buffer(items, 1, 1);
	test_bounded_buffer(items / 2 ? items / 2 : 1, 2, 2);

	CHECK_EQ(t_count_fds(), fds);
	CHECK_EQ(t_shm_leftovers_prefix("shmcap.t-cond-"), 0);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
	return T_EXIT_PASS;
}
