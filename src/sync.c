/* SPDX-License-Identifier: MIT */
/*
 * Semaphores, robust mutexes and condition variables in shared memory.
 *
 * Overview: each object is a 64-byte record (include/shmcap/abi.h) whose
 * state is one futex word plus a count of sleepers. Waiting has three
 * stages: a lock-free attempt; a bounded spin that watches the word (a
 * cache-line transfer between cores costs ~0.1-0.4 us, while a sleep and
 * wake-up in the kernel costs ~30 us each way on the machines we measure);
 * then a futex sleep. The waker makes a system call only if the sleeper
 * count says someone sleeps.
 *
 * Implementation notes:
 * - Lost wake-ups. A sleeper increments `sleepers` and then reads the
 *   futex word; a waker changes the word and then reads `sleepers`. Both
 *   use sequentially consistent operations, so at least one of them sees
 *   the other's write (the store-buffer pattern): either the waker wakes,
 *   or the sleeper sees the change and does not sleep. FUTEX_WAIT checks
 *   the word again atomically in the kernel.
 * - Robust mutex. The owner field holds the holder's thread id and the low
 *   32 bits of its start time. A waiter that finds the lock taken checks,
 *   before each sleep and after each sleep slice (1 to 8 ms), whether that
 *   thread still lives (kill(tid, 0) and /proc/TID/stat); if not, it takes
 *   the lock over with a compare-and-swap and reports -EOWNERDEAD. Why this
 *   rather than glibc's robust pthread mutexes: see docs/sync.md.
 * - Hostile memory. Every call checks magic and version; values outside
 *   their range give -EBADMSG; a run of lost compare-and-swap races backs
 *   off (1 ms per thousand) and ends at the caller's deadline, or after
 *   100 ms for a post, so a peer scribbling on the words can make calls
 *   fail or time out, never crash or spin for ever (see lost_race()).
 *
 * Concurrency: any number of threads and processes may call any function
 * on the same object at once. Wait and lock are blocking (lock-free on the
 * fast path); post, signal, broadcast and unlock never block.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */

#include <endian.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"

/* How long a waiter spins before sleeping; see shmcap_spin_set(). */
#define SPIN_DEFAULT_NS 50000
#define SPIN_UNSET INT64_MIN
static int64_t spin_ns = SPIN_UNSET;

/*
 * Sleep slices of a mutex waiter between two checks of the holder: 1 ms,
 * doubling up to 8 ms. A holder killed a moment ago is often still dying at
 * the first check; the short first slice catches it soon after.
 */
#define MUTEX_SLICE_MIN_NS 1000000
#define MUTEX_SLICE_MAX_NS 8000000

/*
 * Compare-and-swap retries in a row before backing off. Honest rivals make
 * long runs of lost races vanishingly rare; a peer that rewrites a word
 * without pause could make them endless. So each CAS_TRIES losses in a row
 * cost a 1 ms sleep (bounding the CPU such a peer can burn in us), the
 * caller's deadline is honoured, and a post, which has no deadline, gives
 * up after POST_GIVEUP_NS of continuous losses.
 */
#define CAS_TRIES 1000
#define BACKOFF_NS 1000000
#define POST_GIVEUP_NS 100000000

static void backoff(int64_t deadline)
{
	struct timespec ts = { 0, BACKOFF_NS };
	int64_t left = deadline - shmcap__now_ns();

	if (left < BACKOFF_NS)
		ts.tv_nsec = left > 0 ? left : 0;
	nanosleep(&ts, NULL);
}

/*
 * Count a lost compare-and-swap; every CAS_TRIES in a row, back off.
 * Returns -ETIMEDOUT once the deadline has passed, else 0.
 */
static int lost_race(unsigned int *tries, int64_t deadline)
{
	if (++*tries % CAS_TRIES)
		return 0;
	if (shmcap__now_ns() >= deadline)
		return -ETIMEDOUT;
	backoff(deadline);
	return 0;
}

#define MUTEX_TID_MASK 0x3fffffffu
#define MUTEX_WAITERS 0x80000000u
#define MUTEX_CONSISTENT 0
#define MUTEX_INCONSISTENT 1
#define MUTEX_NOTRECOVERABLE 2

static int64_t spin_budget(void)
{
	int64_t ns = __atomic_load_n(&spin_ns, ORDER_RELAXED);
	const char *env;

	if (ns == SPIN_UNSET) {
		char *end;

		env = getenv("SHMCAP_SPIN_NS");
		ns = SPIN_DEFAULT_NS;
		/* With one CPU online nobody can answer while we spin. */
		if (sysconf(_SC_NPROCESSORS_ONLN) == 1)
			ns = 0;
		if (env && *env) {
			int64_t v = strtoll(env, &end, 10);

			if (!*end && v >= 0) /* anything else is ignored */
				ns = v;
		}
		__atomic_store_n(&spin_ns, ns, ORDER_RELAXED);
	}
	return ns;
}

SHMCAP_EXPORT int64_t shmcap_spin_set(int64_t ns)
{
	int64_t old = spin_budget();

	if (ns < 0)
		return -EINVAL;
	__atomic_store_n(&spin_ns, ns, ORDER_RELAXED);
	return old;
}

/*
 * Spin while *word == val, for at most the spin budget and never past the
 * deadline. Returns 1 once the word differs, 0 when the budget is spent.
 * The acquire load pairs with the release (or stronger) store of whoever
 * changes the word.
 *
 * The first SPIN_PAUSE_NS only pause between looks: a peer on another core
 * answers within a cache-line round trip. After that, every look is
 * followed by sched_yield(): if the peer shares our core (pinned there, or
 * placed there by the scheduler), spinning would only keep it from
 * running, and yielding hands it the core at once; with nobody else to
 * run, the call returns within a fraction of a microsecond.
 */
#define SPIN_PAUSE_NS 1000

static int spin_while32(const uint32_t *word, uint32_t val, int64_t deadline)
{
	int64_t budget = spin_budget(), start, now, end;
	int yielding = 0;
	unsigned int i;

	if (budget == 0)
		return 0;
	start = shmcap__now_ns();
	end = budget > deadline - start ? deadline : start + budget;
	for (i = 1;; i++) {
		if (load32(word, ORDER_ACQUIRE) != val)
			return 1;
		if (yielding) {
			sched_yield();
		} else {
			cpu_relax();
			/* Reading the clock (vDSO, ~20 ns) every 32 looks. */
			if (i & 31)
				continue;
		}
		now = shmcap__now_ns();
		if (now >= end)
			return 0;
		yielding = now - start >= SPIN_PAUSE_NS;
	}
}

int shmcap__lost_race(unsigned int *tries, int64_t deadline)
{
	return lost_race(tries, deadline);
}

int64_t shmcap__spin_budget(void)
{
	return spin_budget();
}

int shmcap__spin_while32(const uint32_t *word, uint32_t val, int64_t deadline)
{
	return spin_while32(word, val, deadline);
}

/* ------------------------------------------------------------------------
 * Semaphore
 */

static int sem_check(const shmcap_sem *s)
{
	if (!s || ((uintptr_t)s & 3))
		return -EINVAL;
	if (load32(&s->magic, ORDER_ACQUIRE) != SHMCAP_SEM_MAGIC ||
	    s->version != SHMCAP_SYNC_VERSION)
		return -EBADMSG;
	return 0;
}

SHMCAP_EXPORT int shmcap_sem_init(shmcap_sem *s, uint32_t value)
{
	if (!s || ((uintptr_t)s & 3) || value > SHMCAP_SEM_VALUE_MAX)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	s->version = SHMCAP_SYNC_VERSION;
	s->value = value;
	/* Release: pairs with the acquire load of magic in sem_check(). */
	store32(&s->magic, SHMCAP_SEM_MAGIC, ORDER_RELEASE);
	return 0;
}

/*
 * Take one unit if there is one: 0, -EAGAIN (none), -EBADMSG, or -EBUSY
 * after CAS_TRIES lost races in a row (the value keeps changing).
 */
static int sem_take(shmcap_sem *s)
{
	uint32_t v = load32(&s->value, ORDER_RELAXED);
	int tries;

	for (tries = 0; tries < CAS_TRIES; tries++) {
		if (v == 0)
			return -EAGAIN;
		if (v > SHMCAP_SEM_VALUE_MAX)
			return -EBADMSG;
		/* Acquire: pairs with the seq_cst increment in post. */
		if (cas32(&s->value, &v, v - 1, ORDER_ACQUIRE))
			return 0;
	}
	return -EBUSY;
}

SHMCAP_EXPORT int shmcap_sem_trywait(shmcap_sem *s)
{
	int ret = sem_check(s);

	if (ret < 0)
		return ret;
	ret = sem_take(s);
	return ret == -EBUSY ? -EAGAIN : ret;
}

SHMCAP_EXPORT int shmcap_sem_wait(shmcap_sem *s, int64_t timeout_ns)
{
	int64_t deadline;
	int ret;

	ret = sem_check(s);
	if (ret < 0)
		return ret;
	ret = sem_take(s);
	if (ret != -EAGAIN && ret != -EBUSY)
		return ret;
	if (timeout_ns == 0)
		return -ETIMEDOUT;
	deadline = shmcap__deadline(timeout_ns);
	for (;;) {
		if (spin_while32(&s->value, 0, deadline)) {
			ret = sem_take(s);
			if (ret != -EAGAIN && ret != -EBUSY)
				return ret;
			if (shmcap__now_ns() >= deadline)
				return -ETIMEDOUT;
			if (ret == -EBUSY)
				backoff(deadline); /* a peer keeps rewriting it */
			continue;
		}
		/* Seq_cst: see "lost wake-ups" at the top. */
		fetch_add32(&s->sleepers, 1, ORDER_SEQ_CST);
		ret = 0;
		if (load32(&s->value, ORDER_SEQ_CST) == 0)
			ret = futex_wait_until(&s->value, 0, deadline);
		fetch_sub32(&s->sleepers, 1, ORDER_RELAXED);
		/*
		 * Even after a timeout, take a unit that arrived: its post
		 * may have spent its wake-up on us.
		 */
		if (sem_take(s) == 0)
			return 0;
		if (ret == -ETIMEDOUT || shmcap__now_ns() >= deadline)
			return -ETIMEDOUT;
		if (ret != 0 && ret != -EAGAIN && ret != -EINTR)
			return ret; /* the futex itself failed: do not loop */
	}
}

SHMCAP_EXPORT int shmcap_sem_post(shmcap_sem *s)
{
	int64_t giveup = INT64_MAX;
	unsigned int tries = 0;
	uint32_t v;
	int ret;

	ret = sem_check(s);
	if (ret < 0)
		return ret;
	v = load32(&s->value, ORDER_RELAXED);
	for (;;) {
		if (v >= SHMCAP_SEM_VALUE_MAX)
			return v == SHMCAP_SEM_VALUE_MAX ? -EOVERFLOW
							 : -EBADMSG;
		/* Seq_cst: pairs with the sleeper's increment of sleepers. */
		if (cas32(&s->value, &v, v + 1, ORDER_SEQ_CST))
			break;
		/* The clock is read only after a thousand lost races. */
		if (tries + 1 == CAS_TRIES && giveup == INT64_MAX)
			giveup = shmcap__now_ns() + POST_GIVEUP_NS;
		if (lost_race(&tries, giveup) < 0)
			return -EBUSY;
	}
	if (load32(&s->sleepers, ORDER_SEQ_CST) != 0)
		futex_wake(&s->value, 1);
	return 0;
}

SHMCAP_EXPORT int shmcap_sem_value(const shmcap_sem *s)
{
	uint32_t v;
	int ret = sem_check(s);

	if (ret < 0)
		return ret;
	v = load32(&s->value, ORDER_RELAXED);
	return v > SHMCAP_SEM_VALUE_MAX ? -EBADMSG : (int)v;
}

/* ------------------------------------------------------------------------
 * Mutex
 */

/* Who this thread is, as stored in a mutex's owner field. */
static __thread uint64_t self_owner;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void self_forget(void)
{
	self_owner = 0; /* the child of fork() has a new thread id */
}

static void atfork_register(void)
{
	pthread_atfork(NULL, NULL, self_forget);
}

/*
 * Field 22 of /proc/.../stat, the start time in clock ticks since boot;
 * 0 if it cannot be read. *state receives field 3 ('R', 'S', 'Z' ...).
 */
static uint64_t stat_start(const char *path, char *state)
{
	char buf[512], *p;
	unsigned long long start;
	ssize_t n;
	int fd, field;

	*state = '?';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* The command name may hold spaces and ')': skip to the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	p += 2;
	*state = *p;
	for (field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return 0;
		p++;
	}
	if (sscanf(p, "%llu", &start) != 1)
		return 0;
	return start;
}

static uint64_t self_id(void)
{
	char state;
	uint64_t start;
	pid_t tid;

	if (self_owner)
		return self_owner;
	pthread_once(&atfork_once, atfork_register);
	tid = gettid();
	start = stat_start("/proc/thread-self/stat", &state);
	self_owner = (uint64_t)(uint32_t)start << 32 |
		     ((uint32_t)tid & MUTEX_TID_MASK);
	return self_owner;
}

/*
 * Is the thread recorded in owner (tid and start time) alive? A tid that
 * no longer exists, or that now names a thread started at another time, or
 * a zombie, is dead. When /proc cannot tell (hidepid), existence decides.
 */
static int owner_alive(uint64_t owner)
{
	uint32_t tid = (uint32_t)owner & MUTEX_TID_MASK;
	char path[48], state;
	uint64_t start;

	if (tid == 0)
		return 0;
	if (kill((pid_t)tid, 0) < 0 && errno == ESRCH)
		return 0;
	snprintf(path, sizeof(path), "/proc/%u/task/%u/stat", tid, tid);
	start = stat_start(path, &state);
	if (start == 0) {
		/* A thread that is not a group leader: /proc/TID works. */
		snprintf(path, sizeof(path), "/proc/%u/stat", tid);
		start = stat_start(path, &state);
	}
	if (start == 0) /* /proc cannot tell: existence decides */
		return kill((pid_t)tid, 0) == 0 || errno != ESRCH;
	if (state == 'Z' || state == 'X')
		return 0;
	/* A holder that could not read its own start time recorded 0. */
	if ((uint32_t)(owner >> 32) == 0)
		return 1;
	return (uint32_t)start == (uint32_t)(owner >> 32);
}

uint64_t shmcap__proc_start(int32_t pid)
{
	char path[48], state;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	return stat_start(path, &state);
}

int shmcap__proc_alive(int32_t pid, uint64_t start)
{
	char path[48], state;
	uint64_t now;

	if (pid <= 0)
		return 0;
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	now = stat_start(path, &state);
	if (now == 0) /* /proc cannot tell: existence decides */
		return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
	if (state == 'Z' || state == 'X')
		return 0;
	return start == 0 || now == start;
}

/* The 32-bit half of owner that holds the tid: the futex word. */
static uint32_t *mutex_word(shmcap_mutex *m)
{
#if __BYTE_ORDER == __BIG_ENDIAN
	return (uint32_t *)&m->owner + 1;
#else
	return (uint32_t *)&m->owner;
#endif
}

static int mutex_check(const shmcap_mutex *m)
{
	if (!m || ((uintptr_t)m & 7))
		return -EINVAL;
	if (load32(&m->magic, ORDER_ACQUIRE) != SHMCAP_MUTEX_MAGIC ||
	    m->version != SHMCAP_SYNC_VERSION)
		return -EBADMSG;
	return 0;
}

static int same_owner(uint64_t a, uint64_t b)
{
	return ((a ^ b) & ~(uint64_t)MUTEX_WAITERS) == 0;
}

SHMCAP_EXPORT int shmcap_mutex_init(shmcap_mutex *m)
{
	if (!m || ((uintptr_t)m & 7))
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	m->version = SHMCAP_SYNC_VERSION;
	/* Release: pairs with the acquire load of magic in mutex_check(). */
	store32(&m->magic, SHMCAP_MUTEX_MAGIC, ORDER_RELEASE);
	return 0;
}

/* Release the lock and wake a sleeper if the WAITERS bit says one sleeps. */
static void mutex_release(shmcap_mutex *m)
{
	/* Release: pairs with the acquire CAS in mutex_try(). */
	uint64_t o = exchange64(&m->owner, 0, ORDER_RELEASE);

	if ((uint32_t)o & MUTEX_WAITERS)
		futex_wake(mutex_word(m), 1);
}

/* The result of a successful acquisition, from the state field. */
static int mutex_acquired(shmcap_mutex *m)
{
	switch (load32(&m->state, ORDER_RELAXED)) {
	case MUTEX_CONSISTENT:
		return 0;
	case MUTEX_INCONSISTENT:
		return -EOWNERDEAD;
	case MUTEX_NOTRECOVERABLE:
		/* Nobody can use it; do not keep it held. */
		mutex_release(m);
		return -ENOTRECOVERABLE;
	default:
		mutex_release(m);
		return -EBADMSG;
	}
}

/*
 * One attempt to take the lock given its current value o. Returns 1 if
 * taken, 0 if not. `extra` is MUTEX_WAITERS when we have slept, so that
 * the others who may sleep too are woken at unlock.
 */
static int mutex_try(shmcap_mutex *m, uint64_t *o, uint64_t me,
		     uint32_t extra)
{
	/* Acquire: pairs with the release exchange in unlock. */
	return cas64(&m->owner, o, me | extra, ORDER_ACQUIRE);
}

SHMCAP_EXPORT int shmcap_mutex_trylock(shmcap_mutex *m)
{
	uint64_t o = 0, me;
	int ret = mutex_check(m);

	if (ret < 0)
		return ret;
	me = self_id();
	if (mutex_try(m, &o, me, 0))
		return mutex_acquired(m);
	/* No liveness check here: it reads /proc, and trylock must be fast. */
	return same_owner(o, me) ? -EDEADLK : -EBUSY;
}

SHMCAP_EXPORT int shmcap_mutex_lock(shmcap_mutex *m, int64_t timeout_ns)
{
	int64_t deadline, slice, slice_ns = MUTEX_SLICE_MIN_NS;
	unsigned int tries = 0;
	uint32_t extra = 0;
	uint64_t o, me;
	int ret;

	ret = mutex_check(m);
	if (ret < 0)
		return ret;
	me = self_id();
	o = 0;
	if (mutex_try(m, &o, me, 0))
		return mutex_acquired(m);
	if (same_owner(o, me))
		return -EDEADLK;
	deadline = shmcap__deadline(timeout_ns);
	if (timeout_ns != 0 && spin_while32(mutex_word(m), (uint32_t)o,
					    deadline)) {
		o = 0;
		if (mutex_try(m, &o, me, 0))
			return mutex_acquired(m);
	}
	for (;;) {
		o = load64(&m->owner, ORDER_RELAXED);
		if (o == 0) {
			if (mutex_try(m, &o, me, extra))
				return mutex_acquired(m);
			if (lost_race(&tries, deadline) < 0)
				return -ETIMEDOUT;
			continue;
		}
		if (!owner_alive(o)) {
			/* Take over; whoever else saw it dead loses the CAS. */
			if (mutex_try(m, &o, me, (uint32_t)o & MUTEX_WAITERS)) {
				store32(&m->state, MUTEX_INCONSISTENT,
					ORDER_RELAXED);
				return -EOWNERDEAD;
			}
			if (lost_race(&tries, deadline) < 0)
				return -ETIMEDOUT;
			continue;
		}
		if (timeout_ns == 0)
			return -ETIMEDOUT;
		if (!((uint32_t)o & MUTEX_WAITERS)) {
			uint64_t want = o | MUTEX_WAITERS;

			if (!cas64(&m->owner, &o, want, ORDER_RELAXED)) {
				if (lost_race(&tries, deadline) < 0)
					return -ETIMEDOUT;
				continue;
			}
			o = want;
		}
		slice = shmcap__now_ns() + slice_ns;
		if (slice_ns < MUTEX_SLICE_MAX_NS)
			slice_ns *= 2;
		ret = futex_wait_until(mutex_word(m), (uint32_t)o,
				       slice < deadline ? slice : deadline);
		tries = 0; /* no longer losing races in a row */
		extra = MUTEX_WAITERS;
		if (ret == -ETIMEDOUT && shmcap__now_ns() >= deadline) {
			o = 0;
			/* A last look: it may have been released just now. */
			if (mutex_try(m, &o, me, extra))
				return mutex_acquired(m);
			return -ETIMEDOUT;
		}
	}
}

SHMCAP_EXPORT int shmcap_mutex_unlock(shmcap_mutex *m)
{
	uint64_t o, me;
	int ret = mutex_check(m);

	if (ret < 0)
		return ret;
	me = self_id();
	o = load64(&m->owner, ORDER_RELAXED);
	if (!same_owner(o, me))
		return -EPERM;
	/* Unlocked without shmcap_mutex_consistent(): nobody can trust it. */
	if (load32(&m->state, ORDER_RELAXED) == MUTEX_INCONSISTENT)
		store32(&m->state, MUTEX_NOTRECOVERABLE, ORDER_RELAXED);
	mutex_release(m);
	return 0;
}

SHMCAP_EXPORT int shmcap_mutex_consistent(shmcap_mutex *m)
{
	int ret = mutex_check(m);

	if (ret < 0)
		return ret;
	if (!same_owner(load64(&m->owner, ORDER_RELAXED), self_id()) ||
	    load32(&m->state, ORDER_RELAXED) != MUTEX_INCONSISTENT)
		return -EINVAL;
	store32(&m->state, MUTEX_CONSISTENT, ORDER_RELAXED);
	return 0;
}

/* ------------------------------------------------------------------------
 * Condition variable
 */

static int cond_check(const shmcap_cond *c)
{
	if (!c || ((uintptr_t)c & 3))
		return -EINVAL;
	if (load32(&c->magic, ORDER_ACQUIRE) != SHMCAP_COND_MAGIC ||
	    c->version != SHMCAP_SYNC_VERSION)
		return -EBADMSG;
	return 0;
}

SHMCAP_EXPORT int shmcap_cond_init(shmcap_cond *c)
{
	if (!c || ((uintptr_t)c & 3))
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	c->version = SHMCAP_SYNC_VERSION;
	/* Release: pairs with the acquire load of magic in cond_check(). */
	store32(&c->magic, SHMCAP_COND_MAGIC, ORDER_RELEASE);
	return 0;
}

SHMCAP_EXPORT int shmcap_cond_wait(shmcap_cond *c, shmcap_mutex *m,
				   int64_t timeout_ns)
{
	int64_t deadline;
	uint32_t seq;
	int ret, wait = 0;

	ret = cond_check(c);
	if (ret < 0)
		return ret;
	ret = mutex_check(m);
	if (ret < 0)
		return ret;
	if (!same_owner(load64(&m->owner, ORDER_RELAXED), self_id()))
		return -EPERM;
	deadline = shmcap__deadline(timeout_ns);

	/*
	 * Count ourselves and read seq before letting the mutex go, so that
	 * a signal sent after the unlock either finds us counted or changes
	 * seq under our futex_wait (seq_cst: see "lost wake-ups").
	 */
	fetch_add32(&c->waiters, 1, ORDER_SEQ_CST);
	seq = load32(&c->seq, ORDER_SEQ_CST);
	ret = shmcap_mutex_unlock(m);
	if (ret < 0) {
		fetch_sub32(&c->waiters, 1, ORDER_RELAXED);
		return ret;
	}
	if (timeout_ns == 0)
		wait = -ETIMEDOUT;
	else if (!spin_while32(&c->seq, seq, deadline))
		wait = futex_wait_until(&c->seq, seq, deadline);
	fetch_sub32(&c->waiters, 1, ORDER_RELAXED);

	/* Always return with the mutex held, as pthread_cond_wait does. */
	ret = shmcap_mutex_lock(m, SHMCAP_FOREVER);
	if (ret < 0)
		return ret;
	return wait == -ETIMEDOUT ? -ETIMEDOUT : 0;
}

static int cond_wake(shmcap_cond *c, int n)
{
	int ret = cond_check(c);

	if (ret < 0)
		return ret;
	/* Seq_cst: pairs with the waiter's increment of waiters. */
	fetch_add32(&c->seq, 1, ORDER_SEQ_CST);
	if (load32(&c->waiters, ORDER_SEQ_CST) != 0)
		futex_wake(&c->seq, n);
	return 0;
}

SHMCAP_EXPORT int shmcap_cond_signal(shmcap_cond *c)
{
	return cond_wake(c, 1);
}

SHMCAP_EXPORT int shmcap_cond_broadcast(shmcap_cond *c)
{
	return cond_wake(c, INT_MAX);
}
