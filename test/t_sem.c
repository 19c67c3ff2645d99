/* Description: shared-memory semaphores: init, P/V, timeouts, limits, corrupt records, ping-pong and counting between processes, sleep path, signals */
/* SPDX-License-Identifier: MIT */
/*
 * Usage: t_sem [PAIRS]
 *
 * PAIRS is the number of P/V round trips of the two-process ping-pong
 * (default 1000000; the other stress sizes follow from it). Without an
 * argument the default is scaled: by SHMCAP_TEST_SCALE from the
 * environment (a factor such as 0.1 or 10); down by ONE_CPU_DIVISOR when
 * this process may run on one CPU only (taskset -c 0), where every
 * hand-off first spends the waiter's whole spin budget (about 60 us a
 * round trip instead of 0.5 us: 1000000 pairs would take a minute); and
 * down by TSAN_DIVISOR in a ThreadSanitizer build. ASan and UBSan need no
 * allowance.
 *
 * The semaphores live in an anonymous region that every child maps again
 * at an address of its own, so the processes meet through the shared
 * futex (keyed by the file and offset), never through equal pointers.
 *
 * Timing never decides a verdict: waits that must succeed wait without a
 * limit (a lost wake-up is a hang, caught by the watchdog), and timeouts
 * appear only where -ETIMEDOUT is the thing tested. Elapsed times are
 * printed for information.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* gettid, SYS_* */
#endif

#include <errno.h>
#include <fcntl.h>
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

#define ONE_CPU_DIVISOR 50

/*
 * ThreadSanitizer makes every atomic load of the spin loop a call: the
 * default ping-pong takes 3 s alone and about 20 s beside another test
 * under `ctest -j2`, so a TSan build runs a tenth of it. ASan and UBSan
 * need no allowance (0.5 s alone, 7 s beside t_mutex).
 */
#define TSAN_DIVISOR (T_TSAN ? 10 : 1)

/* Everything the processes share: one record per cache line. */
struct shared {
	shmcap_sem s1;
	shmcap_sem s2;
	/* Ping-pong payload, ordered by the semaphores alone. */
	uint64_t data;
	uint64_t reply;
	/* Counts the children report; read by the parent after waitpid. */
	uint64_t count[4];
	uint64_t taken;
	uint32_t producers_done;
	int32_t result;
	uint32_t signals;
	uint32_t ready;
};

_Static_assert(sizeof(shmcap_sem) == 64, "one cache line");

static uint64_t page;

/* ------------------------------------------------------------------------
 * Helpers
 */

/* Whether this process may run on one CPU only. */
static int one_cpu(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	return sched_getaffinity(0, sizeof(set), &set) == 0 &&
	       CPU_COUNT(&set) == 1;
}

/* A default size, scaled by SHMCAP_TEST_SCALE, and for a single CPU. */
static unsigned long scaled(unsigned long dflt)
{
	double n = (double)dflt * t_scale_factor() / TSAN_DIVISOR;

	if (one_cpu())
		n /= ONE_CPU_DIVISOR;
	return n < 1 ? 1 : (unsigned long)n;
}

/* ------------------------------------------------------------------------
 * One process
 */

static void test_basic(void)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = t_region_new(page, &region, &map);
	shmcap_sem *s = &sh->s1;
	size_t i;

	CHECK_OK(shmcap_sem_init(s, 0));

	/* The layout of <shmcap/abi.h>. */
	CHECK_EQ(s->magic, SHMCAP_SEM_MAGIC);
	CHECK_EQ(s->version, SHMCAP_SYNC_VERSION);
	CHECK_EQ(s->reserved0, 0);
	CHECK_EQ(s->value, 0);
	CHECK_EQ(s->sleepers, 0);
	for (i = 0; i < sizeof(s->reserved) / sizeof(s->reserved[0]); i++)
		CHECK_EQ(s->reserved[i], 0);

	CHECK_EQ(shmcap_sem_value(s), 0);
	CHECK_ERR(shmcap_sem_trywait(s), -EAGAIN);
	CHECK_ERR(shmcap_sem_wait(s, 0), -ETIMEDOUT);
	CHECK_ERR(shmcap_sem_wait(s, 1), -ETIMEDOUT);
	CHECK_ERR(shmcap_sem_wait(s, 2 * MSEC), -ETIMEDOUT);
	CHECK_EQ(shmcap_sem_value(s), 0);
	CHECK_EQ(s->sleepers, 0); /* a timed-out sleeper counted itself out */

	CHECK_ERR(shmcap_sem_post(s), 0);
	CHECK_EQ(shmcap_sem_value(s), 1);
	CHECK_EQ(s->value, 1);
	CHECK_ERR(shmcap_sem_trywait(s), 0);
	CHECK_ERR(shmcap_sem_trywait(s), -EAGAIN);
	for (i = 0; i < 3; i++)
		CHECK_ERR(shmcap_sem_post(s), 0);
	CHECK_EQ(shmcap_sem_value(s), 3);
	/* Units present: every kind of wait takes one without waiting. */
	CHECK_ERR(shmcap_sem_wait(s, SHMCAP_FOREVER), 0);
	CHECK_ERR(shmcap_sem_wait(s, 0), 0);
	CHECK_ERR(shmcap_sem_wait(s, 5 * SEC), 0);
	CHECK_EQ(shmcap_sem_value(s), 0);
	CHECK_ERR(shmcap_sem_wait(s, 0), -ETIMEDOUT);

	/* Initial values, up to the largest. */
	CHECK_OK(shmcap_sem_init(s, 5));
	CHECK_EQ(shmcap_sem_value(s), 5);
	CHECK_OK(shmcap_sem_init(s, SHMCAP_SEM_VALUE_MAX));
	CHECK_EQ(shmcap_sem_value(s), (int)SHMCAP_SEM_VALUE_MAX);
	CHECK_ERR(shmcap_sem_post(s), -EOVERFLOW);
	CHECK_EQ(shmcap_sem_value(s), (int)SHMCAP_SEM_VALUE_MAX);
	CHECK_ERR(shmcap_sem_trywait(s), 0);
	CHECK_EQ(shmcap_sem_value(s), (int)SHMCAP_SEM_VALUE_MAX - 1);
	CHECK_ERR(shmcap_sem_post(s), 0);
	CHECK_ERR(shmcap_sem_post(s), -EOVERFLOW);
	CHECK_EQ(s->value, SHMCAP_SEM_VALUE_MAX);

	/* Re-initialising resets it. */
	CHECK_OK(shmcap_sem_init(s, 0));
	CHECK_EQ(shmcap_sem_value(s), 0);

	/* Any 4-byte aligned offset will do, not only 64-byte ones. */
	{
		shmcap_sem *s4 = (shmcap_sem *)((char *)&sh->s2 + 4);

		CHECK_OK(shmcap_sem_init(s4, 2));
		CHECK_ERR(shmcap_sem_trywait(s4), 0);
		CHECK_ERR(shmcap_sem_post(s4), 0);
		CHECK_EQ(shmcap_sem_value(s4), 2);
		CHECK_ERR(shmcap_sem_wait(s4, MSEC), 0);
		CHECK_ERR(shmcap_sem_wait(s4, SHMCAP_FOREVER), 0);
		CHECK_ERR(shmcap_sem_wait(s4, MSEC), -ETIMEDOUT);
	}

	shmcap_map_unmap(map);
	shmcap_cap_close(region);
}

static void test_bad_input(void)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = t_region_new(page, &region, &map);
	shmcap_sem *s = &sh->s1;
	/* A semaphore must be 4-byte aligned, as its C type is. */
	static const size_t skew[] = { 1, 2, 3, 6 };
	size_t i;

	CHECK_ERR(shmcap_sem_init(NULL, 0), -EINVAL);
	CHECK_ERR(shmcap_sem_wait(NULL, 0), -EINVAL);
	CHECK_ERR(shmcap_sem_wait(NULL, SHMCAP_FOREVER), -EINVAL);
	CHECK_ERR(shmcap_sem_trywait(NULL), -EINVAL);
	CHECK_ERR(shmcap_sem_post(NULL), -EINVAL);
	CHECK_ERR(shmcap_sem_value(NULL), -EINVAL);

	CHECK_OK(shmcap_sem_init(s, 1));
	for (i = 0; i < sizeof(skew) / sizeof(skew[0]); i++) {
		shmcap_sem *bad = (shmcap_sem *)((char *)s + skew[i]);

		CHECK_ERR(shmcap_sem_init(bad, 0), -EINVAL);
		CHECK_ERR(shmcap_sem_wait(bad, SHMCAP_FOREVER), -EINVAL);
		CHECK_ERR(shmcap_sem_trywait(bad), -EINVAL);
		CHECK_ERR(shmcap_sem_post(bad), -EINVAL);
		CHECK_ERR(shmcap_sem_value(bad), -EINVAL);
	}
	/* None of that touched the real one. */
	CHECK_EQ(shmcap_sem_value(s), 1);

	CHECK_ERR(shmcap_sem_init(s, SHMCAP_SEM_VALUE_MAX + 1), -EINVAL);
	CHECK_ERR(shmcap_sem_init(s, UINT32_MAX), -EINVAL);

	/* Never initialised: zero-filled memory is not a semaphore. */
	memset(s, 0, sizeof(*s));
	CHECK_ERR(shmcap_sem_wait(s, SHMCAP_FOREVER), -EBADMSG);
	CHECK_ERR(shmcap_sem_trywait(s), -EBADMSG);
	CHECK_ERR(shmcap_sem_post(s), -EBADMSG);
	CHECK_ERR(shmcap_sem_value(s), -EBADMSG);
	CHECK_EQ(s->value, 0);

	/* Another kind of record is not a semaphore either. */
	CHECK_OK(shmcap_mutex_init((shmcap_mutex *)s));
	CHECK_ERR(shmcap_sem_post(s), -EBADMSG);
	CHECK_OK(shmcap_cond_init((shmcap_cond *)s));
	CHECK_ERR(shmcap_sem_trywait(s), -EBADMSG);

	shmcap_map_unmap(map);
	shmcap_cap_close(region);
}

/*
 * Corrupt records. Every wait here has a timeout: whatever the record
 * holds, no call may wait past it (the watchdog catches one that does).
 */
static void test_corrupt(void)
{
	static const uint32_t bad_values[] = { SHMCAP_SEM_VALUE_MAX + 1,
					       0x80000001u, 0xfffffffeu,
					       0xffffffffu };
	static const uint32_t garbage_sleepers[] = { 1, 2, 0x7fffffffu,
						     0x80000000u, 0xffffffffu };
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = t_region_new(page, &region, &map);
	shmcap_sem *s = &sh->s1;
	size_t i;
	int k;

	/* Bad magic. */
	CHECK_OK(shmcap_sem_init(s, 1));
	s->magic ^= 0x100;
	CHECK_ERR(shmcap_sem_wait(s, 10 * MSEC), -EBADMSG);
	CHECK_ERR(shmcap_sem_wait(s, SHMCAP_FOREVER), -EBADMSG);
	CHECK_ERR(shmcap_sem_trywait(s), -EBADMSG);
	CHECK_ERR(shmcap_sem_post(s), -EBADMSG);
	CHECK_ERR(shmcap_sem_value(s), -EBADMSG);
	CHECK_EQ(s->value, 1); /* nothing was taken or added */
	s->magic = SHMCAP_MUTEX_MAGIC;
	CHECK_ERR(shmcap_sem_trywait(s), -EBADMSG);

	/* Bad version. */
	CHECK_OK(shmcap_sem_init(s, 1));
	s->version = SHMCAP_SYNC_VERSION + 1;
	CHECK_ERR(shmcap_sem_wait(s, 10 * MSEC), -EBADMSG);
	CHECK_ERR(shmcap_sem_trywait(s), -EBADMSG);
	CHECK_ERR(shmcap_sem_post(s), -EBADMSG);
	CHECK_ERR(shmcap_sem_value(s), -EBADMSG);
	s->version = 0;
	CHECK_ERR(shmcap_sem_post(s), -EBADMSG);
	s->version = 0xffff;
	CHECK_ERR(shmcap_sem_value(s), -EBADMSG);
	CHECK_EQ(s->value, 1);

	/* Values out of range: -EBADMSG, and left as they are. */
	for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
		CHECK_OK(shmcap_sem_init(s, 0));
		s->value = bad_values[i];
		CHECK_ERR(shmcap_sem_wait(s, 10 * MSEC), -EBADMSG);
		CHECK_ERR(shmcap_sem_wait(s, 0), -EBADMSG);
		CHECK_ERR(shmcap_sem_trywait(s), -EBADMSG);
		CHECK_ERR(shmcap_sem_post(s), -EBADMSG);
		CHECK_ERR(shmcap_sem_value(s), -EBADMSG);
		CHECK_EQ(s->value, bad_values[i]);
	}

	/*
	 * Garbage in the sleeper count: the semaphore still counts right,
	 * and a wait either succeeds or times out, never hangs.
	 */
	for (i = 0; i < sizeof(garbage_sleepers) / sizeof(garbage_sleepers[0]);
	     i++) {
		uint32_t g = garbage_sleepers[i];

		CHECK_OK(shmcap_sem_init(s, 0));
		s->sleepers = g;
		CHECK_ERR(shmcap_sem_wait(s, 2 * MSEC), -ETIMEDOUT);
		CHECK_EQ(s->sleepers, g); /* counted in and out again */
		CHECK_ERR(shmcap_sem_post(s), 0);
		CHECK_ERR(shmcap_sem_post(s), 0);
		CHECK_EQ(shmcap_sem_value(s), 2);
		CHECK_ERR(shmcap_sem_wait(s, 10 * MSEC), 0);
		CHECK_ERR(shmcap_sem_trywait(s), 0);
		CHECK_ERR(shmcap_sem_trywait(s), -EAGAIN);
		CHECK_EQ(s->sleepers, g);
	}

	/*
	 * The same with a sleeper in another process: whether its post
	 * wakes the sleeper (sleepers nonzero after its increment) or not
	 * (0xffffffff wraps to 0: the post sees nobody), the unit is taken
	 * exactly once, by the waiter (0) or left over (-ETIMEDOUT).
	 */
	for (i = 0; i < sizeof(garbage_sleepers) / sizeof(garbage_sleepers[0]);
	     i++) {
		uint32_t g = garbage_sleepers[i];
		pid_t pid;

		CHECK_OK(shmcap_sem_init(s, 0));
		s->sleepers = g;
		sh->result = 1;
		pid = t_fork_child(CHILD_TIMEOUT);
		if (pid == 0) {
			struct shared *c = t_remap(region, &map);

			shmcap_spin_set(0);
			t_store32((uint32_t *)&c->result,
				  (uint32_t)shmcap_sem_wait(&c->s1,
							    200 * MSEC));
			t_child_exit(region, map);
		}
		t_wait_asleep(pid);
		CHECK_ERR(shmcap_sem_post(s), 0);
		t_reap_ok(pid, CHILD_TIMEOUT);
		if (sh->result == 0)
			CHECK_EQ(shmcap_sem_value(s), 0);
		else if (sh->result == -ETIMEDOUT)
			CHECK_EQ(shmcap_sem_value(s), 1);
		else
			FAIL("wait with sleepers 0x%x returned %d (%s)", g,
			     sh->result, shmcap_err_name(sh->result));
		CHECK_EQ(s->sleepers, g);
		printf("sleepers 0x%08x: the sleeping waiter got %s\n", g,
		       shmcap_err_name(sh->result));
	}

	/*
	 * Random records. The outcome is fully determined by the bytes:
	 * magic and version decide -EBADMSG, then the value decides.
	 */
	for (k = 0; k < 1000; k++) {
		uint32_t *w = (uint32_t *)s;
		uint32_t v;
		int valid;
		size_t j;

		for (j = 0; j < sizeof(*s) / 4; j++)
			w[j] = (uint32_t)t_rnd();
		switch (k % 4) {
		case 0: /* all random */
			break;
		case 1: /* a valid header, a random value */
			s->magic = SHMCAP_SEM_MAGIC;
			s->version = SHMCAP_SYNC_VERSION;
			break;
		default: /* a valid header, a value in range */
			s->magic = SHMCAP_SEM_MAGIC;
			s->version = SHMCAP_SYNC_VERSION;
			s->value = (uint32_t)t_rnd() % 4;
			if (k % 8 == 2)
				s->value = SHMCAP_SEM_VALUE_MAX -
					   (uint32_t)t_rnd() % 2;
			break;
		}
		valid = s->magic == SHMCAP_SEM_MAGIC &&
			s->version == SHMCAP_SYNC_VERSION;
		v = s->value;
		if (!valid || v > SHMCAP_SEM_VALUE_MAX) {
			CHECK_ERR(shmcap_sem_value(s), -EBADMSG);
			CHECK_ERR(shmcap_sem_trywait(s), -EBADMSG);
			CHECK_ERR(shmcap_sem_wait(s, MSEC), -EBADMSG);
			CHECK_ERR(shmcap_sem_post(s), -EBADMSG);
			CHECK_EQ(s->value, v);
			continue;
		}
		CHECK_EQ(shmcap_sem_value(s), v);
		if (v == SHMCAP_SEM_VALUE_MAX) {
			CHECK_ERR(shmcap_sem_post(s), -EOVERFLOW);
		} else {
			CHECK_ERR(shmcap_sem_post(s), 0);
			v++;
		}
		CHECK_EQ(shmcap_sem_value(s), v);
		while (v > 0 && v < 8) {
			CHECK_ERR(k & 1 ? shmcap_sem_trywait(s) :
					  shmcap_sem_wait(s, MSEC),
				  0);
			v--;
		}
		if (v == 0) {
			CHECK_ERR(shmcap_sem_trywait(s), -EAGAIN);
			CHECK_ERR(shmcap_sem_wait(s, k & 1 ? 0 : MSEC / 4),
				  -ETIMEDOUT);
		} else {
			CHECK_ERR(shmcap_sem_wait(s, MSEC), 0);
			v--;
		}
		CHECK_EQ(shmcap_sem_value(s), v);
	}

	shmcap_map_unmap(map);
	shmcap_cap_close(region);
}

/* ------------------------------------------------------------------------
 * Two processes
 */

/*
 * A posts s1, B waits s1 and posts s2, A waits s2; n times. The payload
 * (data, reply) is plain memory ordered by the semaphores alone, so a
 * duplicated or early wake-up shows as a wrong number and a lost one as a
 * hang. Both sides count, and both semaphores end at 0.
 */
static void test_pingpong(unsigned long n, int sleep_only)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = t_region_new(page, &region, &map);
	int64_t old_spin = 0, t0;
	unsigned long i;
	pid_t pid;

	CHECK_OK(shmcap_sem_init(&sh->s1, 0));
	CHECK_OK(shmcap_sem_init(&sh->s2, 0));
	if (sleep_only) {
		old_spin = shmcap_spin_set(0);
		CHECK(old_spin >= 0);
	}
	t0 = t_now_ns();
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		struct shared *c = t_remap(region, &map);
		uint64_t takes = 0, posts = 0;

		for (i = 1; i <= n; i++) {
			CHECK_ERR(shmcap_sem_wait(&c->s1, SHMCAP_FOREVER), 0);
			takes++;
			if (c->data != i)
				FAIL("B: round %lu saw data %llu", i,
				     (unsigned long long)c->data);
			c->reply = i;
			CHECK_ERR(shmcap_sem_post(&c->s2), 0);
			posts++;
		}
		c->count[0] = takes;
		c->count[1] = posts;
		t_child_exit(region, map);
	}
	{
		uint64_t takes = 0, posts = 0;

		for (i = 1; i <= n; i++) {
			sh->data = i;
			CHECK_ERR(shmcap_sem_post(&sh->s1), 0);
			posts++;
			CHECK_ERR(shmcap_sem_wait(&sh->s2, SHMCAP_FOREVER), 0);
			takes++;
			if (sh->reply != i)
				FAIL("A: round %lu saw reply %llu", i,
				     (unsigned long long)sh->reply);
		}
		t_reap_ok(pid, CHILD_TIMEOUT);
		CHECK_EQ(posts, n);
		CHECK_EQ(takes, n);
	}
	printf("ping-pong%s: %lu round trips in %.3f s (%.2f us each)\n",
	       sleep_only ? " (spin 0: sleep path)" : "", n,
	       (double)(t_now_ns() - t0) / 1e9,
	       (double)(t_now_ns() - t0) / 1e3 / (double)n);
	CHECK_EQ(sh->count[0], n);
	CHECK_EQ(sh->count[1], n);
	CHECK_EQ(shmcap_sem_value(&sh->s1), 0);
	CHECK_EQ(shmcap_sem_value(&sh->s2), 0);
	CHECK_EQ(sh->s1.sleepers, 0);
	CHECK_EQ(sh->s2.sleepers, 0);
	if (sleep_only)
		CHECK_EQ(shmcap_spin_set(old_spin), 0);
	shmcap_map_unmap(map);
	shmcap_cap_close(region);
}

/*
 * Two producers post m units each; two consumers take until 2m are
 * taken, one with timed waits, one alternating trywait and wait. The
 * consumers' own counts must add up to exactly 2m, and nothing is left.
 */
static void test_counting(unsigned long m)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = t_region_new(page, &region, &map);
	const uint64_t total = 2 * (uint64_t)m;
	pid_t pids[4];
	int64_t t0 = t_now_ns();
	int k;

	CHECK_OK(shmcap_sem_init(&sh->s1, 0));
	for (k = 0; k < 4; k++) {
		pids[k] = t_fork_child(CHILD_TIMEOUT);
		if (pids[k] != 0)
			continue;
		{
			struct shared *c = t_remap(region, &map);
			uint64_t mine = 0, i;
			int ret;

			if (k < 2) {
				for (i = 0; i < m; i++) {
					CHECK_ERR(shmcap_sem_post(&c->s1), 0);
					mine++;
				}
				c->count[k] = mine;
				__atomic_fetch_add(&c->producers_done, 1,
						   __ATOMIC_SEQ_CST);
				t_child_exit(region, map);
			}
			for (i = 0;; i++) {
				if (__atomic_load_n(&c->taken,
						    __ATOMIC_SEQ_CST) >= total)
					break;
				if (k == 2 || (i & 1))
					ret = shmcap_sem_wait(&c->s1,
							      10 * MSEC);
				else
					ret = shmcap_sem_trywait(&c->s1);
				if (ret == 0) {
					mine++;
					__atomic_fetch_add(&c->taken, 1,
							   __ATOMIC_SEQ_CST);
					continue;
				}
				if (ret != -ETIMEDOUT && ret != -EAGAIN)
					FAIL("consumer %d: %d (%s)", k, ret,
					     shmcap_err_name(ret));
				/* Producers finished and nothing left: stop,
				 * so that lost units give a count, not a hang. */
				if (t_load32(&c->producers_done) == 2 &&
				    shmcap_sem_value(&c->s1) == 0)
					break;
			}
			c->count[k] = mine;
			t_child_exit(region, map);
		}
	}
	for (k = 0; k < 4; k++)
		t_reap_ok(pids[k], CHILD_TIMEOUT);
	printf("counting: 2 x %lu posts, taken %llu + %llu, in %.3f s\n", m,
	       (unsigned long long)sh->count[2],
	       (unsigned long long)sh->count[3],
	       (double)(t_now_ns() - t0) / 1e9);
	CHECK_EQ(sh->count[0], m);
	CHECK_EQ(sh->count[1], m);
	CHECK_EQ(sh->count[2] + sh->count[3], total);
	CHECK_EQ(sh->taken, total);
	CHECK_EQ(shmcap_sem_value(&sh->s1), 0);
	CHECK_EQ(sh->s1.sleepers, 0);
	shmcap_map_unmap(map);
	shmcap_cap_close(region);
}

/*
 * The idle gap: the waiter has spun out and sleeps in the kernel when
 * the post comes (about 5 ms later), so the post must make the system
 * call. Also with a timeout, and with the spin phase switched off.
 */
static void test_idle_gap(void)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = t_region_new(page, &region, &map);
	int round;

	for (round = 0; round < 12; round++) {
		int64_t timeout = round % 3 == 0 ? SHMCAP_FOREVER : 60 * SEC;
		int nospin = round % 2;
		pid_t pid;

		CHECK_OK(shmcap_sem_init(&sh->s1, 0));
		sh->result = 1;
		pid = t_fork_child(CHILD_TIMEOUT);
		if (pid == 0) {
			struct shared *c = t_remap(region, &map);

			if (nospin)
				shmcap_spin_set(0);
			t_store32((uint32_t *)&c->result,
				  (uint32_t)shmcap_sem_wait(&c->s1, timeout));
			t_child_exit(region, map);
		}
		t_wait_asleep(pid);
		CHECK_EQ(t_load32(&sh->s1.sleepers), 1);
		t_sleep_ns(5 * MSEC);
		CHECK_ERR(shmcap_sem_post(&sh->s1), 0);
		t_reap_ok(pid, CHILD_TIMEOUT);
		CHECK_ERR(sh->result, 0);
		CHECK_EQ(shmcap_sem_value(&sh->s1), 0);
		CHECK_EQ(sh->s1.sleepers, 0);
	}

	/* Two sleepers, two posts: both wake, each with one unit. */
	{
		pid_t pids[2];
		int k;

		CHECK_OK(shmcap_sem_init(&sh->s1, 0));
		sh->count[0] = sh->count[1] = 0;
		for (k = 0; k < 2; k++) {
			pids[k] = t_fork_child(CHILD_TIMEOUT);
			if (pids[k] == 0) {
				struct shared *c = t_remap(region, &map);

				CHECK_ERR(shmcap_sem_wait(&c->s1,
							  SHMCAP_FOREVER),
					  0);
				c->count[k] = 1;
				t_child_exit(region, map);
			}
		}
		for (k = 0; k < 2; k++)
			t_wait_asleep(pids[k]);
		CHECK_EQ(t_load32(&sh->s1.sleepers), 2);
		CHECK_ERR(shmcap_sem_post(&sh->s1), 0);
		CHECK_ERR(shmcap_sem_post(&sh->s1), 0);
		for (k = 0; k < 2; k++)
			t_reap_ok(pids[k], CHILD_TIMEOUT);
		CHECK_EQ(sh->count[0] + sh->count[1], 2);
		CHECK_EQ(shmcap_sem_value(&sh->s1), 0);
	}
	shmcap_map_unmap(map);
	shmcap_cap_close(region);
}

/* The shared word the handler counts in (async-signal-safe: atomic). */
static uint32_t *signal_counter;

static void on_usr1(int sig)
{
	(void)sig;
	__atomic_fetch_add(signal_counter, 1, __ATOMIC_SEQ_CST);
}

/*
 * Signals that interrupt the sleep are absorbed: a waiter with a handler
 * installed without SA_RESTART gets three signals while asleep and still
 * returns 0 when the post comes, not -EINTR.
 */
static void test_signals(void)
{
	shmcap_cap *region;
	shmcap_map *map;
	struct shared *sh = t_region_new(page, &region, &map);
	pid_t pid;
	uint32_t k;

	CHECK_OK(shmcap_sem_init(&sh->s1, 0));
	sh->result = 1;
	sh->signals = 0;
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		struct shared *c = t_remap(region, &map);
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_usr1;
		sigemptyset(&sa.sa_mask);
		signal_counter = &c->signals;
		CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
		t_store32(&c->ready, 1);
		t_store32((uint32_t *)&c->result,
			  (uint32_t)shmcap_sem_wait(&c->s1, SHMCAP_FOREVER));
		t_child_exit(region, map);
	}
	for (k = 1; k <= 3; k++) {
		int i;

		t_wait_asleep(pid);
		CHECK_EQ(t_load32(&sh->ready), 1);
		CHECK_EQ(kill(pid, SIGUSR1), 0);
		for (i = 0; t_load32(&sh->signals) < k; i++) {
			if (i > 200000)
				FAIL("signal %u never handled", k);
			t_sleep_ns(50000);
		}
	}
	t_wait_asleep(pid);
	CHECK_ERR(shmcap_sem_post(&sh->s1), 0);
	t_reap_ok(pid, CHILD_TIMEOUT);
	CHECK_ERR(sh->result, 0);
	CHECK_EQ(sh->signals, 3);
	CHECK_EQ(shmcap_sem_value(&sh->s1), 0);
	shmcap_map_unmap(map);
	shmcap_cap_close(region);
}

int main(int argc, char **argv)
{
	unsigned long pairs;
	int fds, maps;

	t_watchdog(110);
	if (argc > 1) {
		char *end;

		errno = 0;
		pairs = strtoul(argv[1], &end, 10);
		if (errno || *end || end == argv[1] || pairs == 0) {
			fprintf(stderr, "usage: %s [PAIRS]\n", argv[0]);
			return T_EXIT_FAIL;
		}
	} else {
		pairs = scaled(1000000);
	}
	page = (uint64_t)sysconf(_SC_PAGESIZE);
	t_rng_seed();
	printf("seed %llu, %lu pairs%s%s\n", (unsigned long long)t_rng_state,
	       pairs, one_cpu() ? ", one CPU" : "",
	       TSAN_DIVISOR > 1 ? ", TSan build" : "");

	fds = t_count_fds();
	CHECK(fds > 0);
	maps = t_count_maps("memfd:shmcap");

	test_basic();
	test_bad_input();
	test_corrupt();
	CHECK_EQ(t_count_fds(), fds);
	test_idle_gap();
	test_signals();
	CHECK_EQ(t_count_fds(), fds);
	test_pingpong(pairs, 0);
	/* Every hand-off sleeps and wakes in the kernel: ~50x slower. */
	test_pingpong(pairs / 50 ? pairs / 50 : 1, 1);
	test_counting(pairs / 4 ? pairs / 4 : 1);

	/* Nothing left: no descriptor, no mapping, no file, no child. */
	CHECK_EQ(t_count_fds(), fds);
	CHECK_EQ(t_count_maps("memfd:shmcap"), maps);
	CHECK_EQ(t_shm_leftovers_prefix("shmcap.t-sem-"), 0);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
	return T_EXIT_PASS;
}
