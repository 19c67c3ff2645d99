/* SPDX-License-Identifier: MIT */
/*
 * Description: channel peers killed with SIGKILL at random points, in the
 * middle of a message and asleep: the consumer gets every committed
 * message, never a partial one, then -EPIPE; the producer gets -EPIPE.
 */
#include "channel_util.h"
#include "helpers.h"
#include "util.h"

#define MAX 500
#define LONG_WAIT 20000000000 /* only turns a hang into a failure */

static void make_msg(uint8_t *buf, size_t len, uint64_t seq)
{
	size_t i;

	memcpy(buf, &seq, sizeof(seq));
	for (i = sizeof(seq); i < len; i++)
		buf[i] = (uint8_t)(seq + i);
}

static void check_msg(const uint8_t *buf, size_t len, uint64_t seq)
{
	uint64_t s;
	size_t i;

	CHECK(len >= sizeof(s) && len <= MAX);
	memcpy(&s, buf, sizeof(s));
	CHECK_EQ(s, seq);
	for (i = sizeof(s); i < len; i++)
		if (buf[i] != (uint8_t)(seq + i))
			FAIL("message %llu: byte %zu is %u",
			     (unsigned long long)seq, i, buf[i]);
}

/*
 * Fork a producer that sends until killed, half of its messages written
 * in place. Returns once it has attached: a consumer waits for a producer
 * that never attached, so a producer killed before attaching would not end
 * the stream.
 */
static pid_t endless_producer(shmcap_cap *r)
{
	shmcap_channel *p;
	uint64_t seq;
	uint8_t buf[MAX];
	void *vp;
	pid_t pid = t_fork_attached(r, SHMCAP_CHANNEL_PRODUCER, 60, &p);

	if (pid > 0)
		return pid;
	for (seq = 0;; seq++) {
		size_t len = 8 + t_rnd() % (MAX - 7);

		if (seq & 1) {
			CHECK_OK(shmcap_channel_reserve(p, len, &vp,
							SHMCAP_FOREVER));
			make_msg(vp, len, seq);
			CHECK_OK(shmcap_channel_commit(p, len));
		} else {
			make_msg(buf, len, seq);
			CHECK_OK(shmcap_channel_send(p, buf, len,
						     SHMCAP_FOREVER));
		}
	}
}

/* Receive until -EPIPE, checking sequence; returns how many arrived. */
static uint64_t drain(shmcap_channel *c, uint64_t got, uint64_t stop_at,
		      pid_t kill_pid)
{
	const void *q;
	size_t l;
	int ret;

	for (;;) {
		if (got == stop_at && kill_pid > 0)
			kill(kill_pid, SIGKILL);
		ret = shmcap_channel_recv_ptr(c, &q, &l, LONG_WAIT);
		if (ret == -EPIPE)
			return got;
		CHECK_OK(ret);
		check_msg(q, l, got++);
		CHECK_OK(shmcap_channel_release(c));
	}
}

/* The producer killed at a random moment while sending. */
static void test_kill_producer(unsigned int rounds)
{
	unsigned int i;

	for (i = 0; i < rounds; i++) {
		shmcap_cap *r;
		shmcap_channel *c;
		uint64_t got;
		pid_t pid;

		CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, MAX,
					       0, &r));
		pid = endless_producer(r);
		CHECK_OK(
			shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
		if (i & 1) {
			/* Killed after a random time, consumer busy. */
			t_sleep_ns((int64_t)(t_rnd() % 3000000));
			kill(pid, SIGKILL);
			got = drain(c, 0, UINT64_MAX, 0);
		} else {
			/* Killed when the consumer has taken n messages. */
			got = drain(c, 0, t_rnd() % 3000, pid);
		}
		t_check_killed(pid, 30);
		CHECK_ERR(shmcap_channel_recv(c, NULL, 0, 0), -EPIPE);
		shmcap_channel_close(c);
		shmcap_cap_close(r);
		(void)got;
	}
}

/* The worst moment: half a message written in place, then SIGKILL. */
static void test_kill_mid_message(void)
{
	shmcap_cap *r;
	shmcap_channel *p, *c;
	int pfd[2];
	pid_t pid;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, MAX, 0, &r));
	CHECK(pipe(pfd) == 0);
	pid = t_fork_child(60);
	if (pid == 0) {
		uint8_t buf[100];
		void *vp;

		CHECK_OK(
			shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
		make_msg(buf, 100, 0);
		CHECK_OK(shmcap_channel_send(p, buf, 100, 0));
		CHECK_OK(shmcap_channel_reserve(p, 300, &vp, 0));
		make_msg(vp, 150, 1); /* half of it */
		CHECK(write(pfd[1], "x", 1) == 1);
		pause();
		_exit(T_EXIT_FAIL);
	}
	t_ready_wait(pfd);
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
	kill(pid, SIGKILL);
	CHECK_EQ(drain(c, 0, UINT64_MAX, 0), 1);
	t_check_killed(pid, 30);
	shmcap_channel_close(c);
	shmcap_cap_close(r);
}

/* Producer asleep on a full ring, killed: the consumer drains, -EPIPE. */
static void test_kill_sleeping_producer(void)
{
	shmcap_cap *r;
	shmcap_channel *c;
	pid_t pid;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, MAX, 0, &r));
	pid = endless_producer(r);
	t_wait_asleep(pid); /* the ring is full */
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
	kill(pid, SIGKILL);
	t_check_killed(pid, 30);
	CHECK(drain(c, 0, UINT64_MAX, 0) > 0);
	shmcap_channel_close(c);
	shmcap_cap_close(r);
}

/*
 * The consumer killed at a random point (while receiving, holding a
 * message in place, or asleep): the producer gets -EPIPE once it would
 * have to wait.
 */
static void test_kill_consumer(unsigned int rounds)
{
	unsigned int i;

	for (i = 0; i < rounds; i++) {
		shmcap_cap *r;
		shmcap_channel *p, *c;
		uint8_t buf[MAX];
		uint64_t seq, stop = t_rnd() % 2000;
		pid_t pid;
		int ret, killed = 0, mode = (int)(i % 3);

		CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, MAX,
					       0, &r));
		/* Attached: from now on the consumer's death ends the stream. */
		pid = t_fork_attached(r, SHMCAP_CHANNEL_CONSUMER, 60, &c);
		if (pid == 0) {
			const void *q;
			size_t l;

			for (seq = 0;; seq++) {
				CHECK_OK(shmcap_channel_recv_ptr(
					c, &q, &l, SHMCAP_FOREVER));
				check_msg(q, l, seq);
				if (mode == 1 && seq == stop)
					pause(); /* holding it in place */
				CHECK_OK(shmcap_channel_release(c));
			}
		}
		CHECK_OK(
			shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
		for (seq = 0;; seq++) {
			size_t len = 8 + t_rnd() % (MAX - 7);

			if (mode == 0 && seq == stop)
				kill(pid, SIGKILL);
			if (mode == 2 && seq == stop) {
				t_wait_asleep(pid); /* waiting for data */
				kill(pid, SIGKILL);
			}
			make_msg(buf, len, seq);
			if (mode == 1 && !killed) {
				/* Full: the consumer may hold a message. */
				ret = shmcap_channel_send(p, buf, len, 0);
				if (ret == -EAGAIN && seq > stop) {
					kill(pid, SIGKILL);
					killed = 1;
				}
				if (ret == -EAGAIN) {
					t_sleep_ns(100000);
					seq--;
					continue;
				}
			} else {
				ret = shmcap_channel_send(p, buf, len,
							  LONG_WAIT);
			}
			if (ret == -EPIPE)
				break;
			CHECK_OK(ret);
		}
		t_check_killed(pid, 30);
		CHECK_ERR(shmcap_channel_send(p, buf, 8, 0), -EPIPE);
		shmcap_channel_close(p);
		shmcap_cap_close(r);
	}
}

int main(void)
{
	unsigned int rounds = (unsigned int)t_scaled(12);

	t_rng_seed_env();
	t_watchdog(110);
	test_kill_mid_message();
	test_kill_sleeping_producer();
	test_kill_producer(rounds);
	test_kill_consumer(rounds);
	return T_EXIT_PASS;
}
