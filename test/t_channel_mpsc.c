/* SPDX-License-Identifier: MIT */
/*
 * Description: many-producer channels: messages from several processes
 * arrive whole, each producer's in order, checked by sequence number and
 * checksum; producers killed at random points (even between reservation
 * and header) never expose a partial message and do not stop the others;
 * end-of-stream once all are gone; slot exhaustion; random corruption.
 */
#include <pthread.h>

#include "channel_util.h"
#include "helpers.h"
#include "util.h"

/*
 * The stress size: 10^6 messages, a tenth under ThreadSanitizer (which
 * slows these loops twentyfold), times SHMCAP_TEST_SCALE.
 */
#define STRESS_N (T_TSAN ? 100000 : 1000000)

#define MAX 400
#define LONG_WAIT 20000000000 /* only turns a hang into a failure */
#define NPROD 3

struct mhdr {
	uint32_t prod;
	uint32_t len;
	uint64_t seq;
	uint32_t sum;
	uint32_t pad;
};

static void make_msg(uint8_t *buf, size_t len, uint32_t prod, uint64_t seq)
{
	struct mhdr h = { .prod = prod, .len = (uint32_t)len, .seq = seq };
	size_t i;

	for (i = sizeof(h); i < len; i++)
		buf[i] = (uint8_t)(seq * 7 + i + prod);
	h.sum = t_msg_checksum(buf + sizeof(h), len - sizeof(h), seq);
	memcpy(buf, &h, sizeof(h));
}

/* Check a message and its producer's sequence; returns the producer. */
static uint32_t check_msg(const uint8_t *buf, size_t len, uint64_t *next)
{
	struct mhdr h;

	CHECK(len >= sizeof(h) && len <= MAX);
	memcpy(&h, buf, sizeof(h));
	CHECK(h.prod < NPROD);
	CHECK_EQ(h.len, len);
	CHECK_EQ(h.seq, next[h.prod]);
	CHECK_EQ(h.sum,
		 t_msg_checksum(buf + sizeof(h), len - sizeof(h), h.seq));
	next[h.prod]++;
	return h.prod;
}

static size_t rnd_len(void)
{
	return sizeof(struct mhdr) + t_rnd() % (MAX - sizeof(struct mhdr) + 1);
}

/*
 * A producer child: n messages (UINT64_MAX: until killed), alternating
 * copying and in-place sends, then close. It reports on fd when attached.
 */
static pid_t producer(shmcap_cap *r, uint32_t id, uint64_t n)
{
	shmcap_channel *p;
	uint8_t buf[MAX];
	uint64_t seq;
	void *vp;
	pid_t pid = t_fork_attached(r, SHMCAP_CHANNEL_PRODUCER, 100, &p);

	if (pid > 0)
		return pid;
	t_rng_state ^= (uint64_t)id * 0x9e3779b97f4a7c15ull;
	for (seq = 0; seq < n; seq++) {
		size_t len = rnd_len();

		if (seq & 1) {
			CHECK_OK(
				shmcap_channel_reserve(p, MAX, &vp, LONG_WAIT));
			make_msg(vp, len, id, seq);
			CHECK_OK(shmcap_channel_commit(p, len));
		} else {
			make_msg(buf, len, id, seq);
			CHECK_OK(shmcap_channel_send(p, buf, len, LONG_WAIT));
		}
	}
	shmcap_channel_close(p);
	t_child_pass();
}

/* Receive until -EPIPE; returns the total. */
static uint64_t drain(shmcap_channel *c, uint64_t *next)
{
	uint8_t buf[MAX];
	uint64_t got = 0;
	const void *q;
	size_t l;
	int ret;

	for (;;) {
		if (t_rnd() % 2) {
			ret = shmcap_channel_recv(c, buf, sizeof(buf),
						  LONG_WAIT);
			if (ret == -EPIPE)
				return got;
			CHECK_OK(ret);
			check_msg(buf, (size_t)ret, next);
		} else {
			ret = shmcap_channel_recv_ptr(c, &q, &l, LONG_WAIT);
			if (ret == -EPIPE)
				return got;
			CHECK_OK(ret);
			check_msg(q, l, next);
			CHECK_OK(shmcap_channel_release(c));
		}
		got++;
	}
}

static void test_basic(void)
{
	shmcap_cap *r;
	shmcap_channel *p[NPROD], *c, *x;
	uint8_t buf[MAX];
	uint64_t next[NPROD] = { 0 };
	void *vp;
	int i, j;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_MPSC, 4096, MAX, 0, &r));
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
	CHECK_ERR(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &x),
		  -EBUSY);
	CHECK_ERR(shmcap_channel_recv(c, buf, sizeof(buf), 0), -EAGAIN);
	for (i = 0; i < NPROD; i++)
		CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0,
					     &p[i]));
	/* Interleaved reservations: committed out of order. */
	CHECK_OK(shmcap_channel_reserve(p[0], 100, &vp, 0));
	make_msg(vp, 100, 0, 0);
	make_msg(buf, 50, 1, 0);
	CHECK_OK(shmcap_channel_send(p[1], buf, 50, 0));
	/* p[0]'s record comes first and is not committed: nothing yet. */
	CHECK_ERR(shmcap_channel_recv(c, buf, sizeof(buf), 0), -EAGAIN);
	CHECK_ERR(shmcap_channel_recv(c, buf, sizeof(buf), 1000000),
		  -ETIMEDOUT);
	CHECK_OK(shmcap_channel_commit(p[0], 60)); /* shorter: a skip */
	CHECK_EQ(shmcap_channel_recv(c, buf, sizeof(buf), 0), 60);
	CHECK_EQ(((struct mhdr *)buf)->prod, 0);
	CHECK_EQ(shmcap_channel_recv(c, buf, sizeof(buf), 0), 50);
	CHECK_EQ(check_msg(buf, 50, next), 1);
	/* Many laps with all three, sizes random. */
	for (j = 0; j < 3000; j++) {
		i = (int)(t_rnd() % NPROD);
		{
			size_t len = rnd_len();
			int ret;

			make_msg(buf, len, (uint32_t)i, next[i] + 1000000);
			ret = shmcap_channel_send(p[i], buf, len, 0);
			if (ret == -EAGAIN) {
				while (shmcap_channel_recv(c, buf, sizeof(buf),
							   0) >= 0)
					;
				continue;
			}
			CHECK_OK(ret);
		}
	}
	while (shmcap_channel_recv(c, buf, sizeof(buf), 0) >= 0)
		;
	/* A reservation dropped by close is skipped. */
	CHECK_OK(shmcap_channel_reserve(p[2], 100, &vp, 0));
	make_msg(buf, 30, 1, 0);
	CHECK_OK(shmcap_channel_send(p[1], buf, 30, 0));
	shmcap_channel_close(p[2]);
	CHECK_EQ(shmcap_channel_recv(c, buf, sizeof(buf), 0), 30);
	/* End of stream only when every producer is gone. */
	shmcap_channel_close(p[0]);
	CHECK_ERR(shmcap_channel_recv(c, buf, sizeof(buf), 0), -EAGAIN);
	shmcap_channel_close(p[1]);
	CHECK_ERR(shmcap_channel_recv(c, buf, sizeof(buf), 0), -EPIPE);
	shmcap_channel_close(c);
	shmcap_cap_close(r);
}

static void test_slots(void)
{
	shmcap_cap *r;
	shmcap_channel *p[116], *x;
	int i;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_MPSC, 1024, 64, 0, &r));
	for (i = 0; i < 115; i++)
		CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0,
					     &p[i]));
	CHECK_ERR(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &x),
		  -EBUSY);
	for (i = 0; i < 115; i++)
		shmcap_channel_close(p[i]);
	shmcap_cap_close(r);
}

/* NPROD processes, n messages in all, into one consumer. */
static void test_stress(void)
{
	uint64_t n = t_scaled(STRESS_N), next[NPROD] = { 0 }, got;
	shmcap_cap *r;
	shmcap_channel *c;
	pid_t pid[NPROD];
	int i;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_MPSC, 8192, MAX, 0, &r));
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
	for (i = 0; i < NPROD; i++)
		pid[i] = producer(r, (uint32_t)i, n / NPROD);
	got = drain(c, next);
	for (i = 0; i < NPROD; i++) {
		t_reap_ok(pid[i], 60);
		CHECK_EQ(next[i], n / NPROD);
	}
	CHECK_EQ(got, n / NPROD * NPROD);
	printf("stress: %llu messages from %d producers\n",
	       (unsigned long long)got, NPROD);
	shmcap_channel_close(c);
	shmcap_cap_close(r);
}

/* Producers killed at random: the others go on, nothing partial shows. */
static void test_kill(unsigned int rounds)
{
	unsigned int k;

	for (k = 0; k < rounds; k++) {
		uint64_t next[NPROD] = { 0 };
		shmcap_cap *r;
		shmcap_channel *c;
		pid_t pid[NPROD];

		CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_MPSC, 4096, MAX,
					       0, &r));
		CHECK_OK(
			shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
		/* Two endless producers to be killed, one that finishes. */
		pid[0] = producer(r, 0, UINT64_MAX);
		pid[1] = producer(r, 1, UINT64_MAX);
		pid[2] = producer(r, 2, 20000);
		t_sleep_ns((int64_t)(t_rnd() % 2000000));
		kill(pid[0], SIGKILL);
		t_sleep_ns((int64_t)(t_rnd() % 2000000));
		kill(pid[1], SIGKILL);
		drain(c, next);
		t_check_killed(pid[0], 30);
		t_check_killed(pid[1], 30);
		t_reap_ok(pid[2], 30);
		CHECK_EQ(next[2], 20000);
		shmcap_channel_close(c);
		shmcap_cap_close(r);
	}
}

/*
 * The worst moments: killed holding a reservation (header BUSY), and
 * killed between the reservation and the header (simulated by erasing
 * the header before the kill). A live producer's message behind each is
 * still delivered.
 */
static void test_kill_reserved(int erase)
{
	uint64_t next[NPROD] = { 0 };
	shmcap_cap *r;
	shmcap_channel *c, *p1;
	shmcap_map *m;
	uint8_t buf[MAX], *base;
	int pfd[2];
	pid_t pid;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_MPSC, 1024, MAX, 0, &r));
	base = t_channel_map(r, &m);
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
	CHECK(pipe(pfd) == 0);
	pid = t_fork_child(60);
	if (pid == 0) {
		shmcap_channel *p;
		void *vp;

		CHECK_OK(
			shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
		make_msg(buf, 40, 0, 0);
		CHECK_OK(shmcap_channel_send(p, buf, 40, 0));
		/* Its header is at ring offset 48. */
		CHECK_OK(shmcap_channel_reserve(p, 300, &vp, 0));
		make_msg(vp, 300, 0, 1);
		CHECK(write(pfd[1], "x", 1) == 1);
		pause();
		_exit(T_EXIT_FAIL);
	}
	t_ready_wait(pfd);
	if (erase) {
		/* As if killed after the CAS, before any header store. */
		memset(base + 4096 + 48, 0, 8);
	}
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p1));
	make_msg(buf, 100, 1, 0);
	CHECK_OK(shmcap_channel_send(p1, buf, 100, 0));
	shmcap_channel_close(p1);
	CHECK_EQ(shmcap_channel_recv(c, buf, sizeof(buf), 0), 40);
	check_msg(buf, 40, next);
	CHECK_ERR(shmcap_channel_recv(c, buf, sizeof(buf), 0), -EAGAIN);
	kill(pid, SIGKILL);
	t_check_killed(pid, 30);
	CHECK_EQ(drain(c, next), 1);
	CHECK_EQ(next[0], 1);
	CHECK_EQ(next[1], 1);
	shmcap_channel_close(c);
	shmcap_map_unmap(m);
	shmcap_cap_close(r);
}

/* Random corruption of the control part and ring between operations. */
static void test_fuzz(unsigned int rounds)
{
	unsigned int k, op;

	for (k = 0; k < rounds; k++) {
		shmcap_cap *r;
		shmcap_channel *p[2], *c;
		shmcap_map *m;
		uint8_t *base, buf[MAX] = { 0 };
		int cbad = 0, ret, i;

		CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_MPSC, 512, 100, 0,
					       &r));
		base = t_channel_map(r, &m);
		CHECK_OK(
			shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
		for (i = 0; i < 2; i++)
			CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER,
						     0, &p[i]));
		for (op = 0; op < 100; op++) {
			t_channel_corrupt_maybe(base);
			i = (int)(t_rnd() % 2);
			if (t_rnd() % 2) {
				ret = shmcap_channel_send(p[i], buf,
							  t_rnd() % 101, 0);
				CHECK(ret == 0 || ret == -EAGAIN ||
				      ret == -EBADMSG || ret == -EPIPE);
			} else {
				ret = shmcap_channel_recv(
					c, buf, sizeof(buf),
					t_rnd() % 20 ? 0 : 200000);
				t_check_corrupt_recv(ret, &cbad);
			}
		}
		shmcap_channel_close(p[0]);
		shmcap_channel_close(p[1]);
		shmcap_channel_close(c);
		shmcap_map_unmap(m);
		shmcap_cap_close(r);
	}
}

/* Producers as threads (ThreadSanitizer sees every side). */
struct thr_arg {
	shmcap_channel *p;
	uint32_t id;
	uint64_t n;
};

static void *thr_producer(void *arg)
{
	struct thr_arg *a = arg;
	shmcap_channel *p = a->p;
	uint8_t buf[MAX];
	uint64_t seq;
	void *vp;

	for (seq = 0; seq < a->n; seq++) {
		size_t len = sizeof(struct mhdr) + (seq * 37 + a->id) % 200;

		if (seq & 1) {
			CHECK_OK(
				shmcap_channel_reserve(p, len, &vp, LONG_WAIT));
			make_msg(vp, len, a->id, seq);
			CHECK_OK(shmcap_channel_commit(p, len));
		} else {
			make_msg(buf, len, a->id, seq);
			CHECK_OK(shmcap_channel_send(p, buf, len, LONG_WAIT));
		}
	}
	shmcap_channel_close(p);
	return NULL;
}

static void test_threads(void)
{
	struct thr_arg a[2];
	uint64_t next[NPROD] = { 0 }, n = t_scaled(50000);
	shmcap_cap *r;
	shmcap_channel *c;
	pthread_t th[2];
	int i;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_MPSC, 4096, MAX, 0, &r));
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
	/* Both attach first: the stream ends when all that attached left. */
	for (i = 0; i < 2; i++)
		CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0,
					     &a[i].p));
	for (i = 0; i < 2; i++) {
		a[i].id = (uint32_t)i;
		a[i].n = n;
		CHECK_EQ(pthread_create(&th[i], NULL, thr_producer, &a[i]), 0);
	}
	CHECK_EQ(drain(c, next), 2 * n);
	for (i = 0; i < 2; i++)
		CHECK_EQ(pthread_join(th[i], NULL), 0);
	shmcap_channel_close(c);
	shmcap_cap_close(r);
}

int main(void)
{
	int fds = t_channel_test_start();

	test_basic();
	test_slots();
	test_kill_reserved(0);
	test_kill_reserved(1);
	test_threads();
	test_stress();
	test_kill((unsigned int)t_scaled(6));
	test_fuzz((unsigned int)t_scaled(500));
	CHECK_EQ(t_count_fds(), fds);
	return T_EXIT_PASS;
}
