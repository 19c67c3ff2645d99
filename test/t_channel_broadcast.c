/* SPDX-License-Identifier: MIT */
/*
 * Description: broadcast channels: every subscriber process receives
 * every message in order (checked by sequence number and checksum); a
 * slow subscriber holds the producer back, a killed one stops doing so;
 * late joiners; -EPIPE both ways; lossy mode, where a slow subscriber
 * skips ahead and the missed count is exact.
 */
#include "channel_util.h"
#include "helpers.h"
#include "util.h"

#define MAX 300
#define NSUB 4
#define LONG_WAIT 20000000000 /* only turns a hang into a failure */

/* Message seq: u64 seq, u32 checksum of the rest, bytes. */
static size_t make_msg(uint8_t *buf, uint64_t seq)
{
	size_t len = 12 + (size_t)((seq * 2654435761u) % (MAX - 11)), i;
	uint32_t sum;

	for (i = 12; i < len; i++)
		buf[i] = (uint8_t)(seq + i);
	sum = t_msg_checksum(buf + 12, len - 12, seq);
	memcpy(buf, &seq, 8);
	memcpy(buf + 8, &sum, 4);
	return len;
}

/* The message's number, after checking its contents. */
static uint64_t check_msg(const uint8_t *buf, size_t len)
{
	uint64_t seq;
	uint32_t sum;

	CHECK(len >= 12 && len <= MAX);
	memcpy(&seq, buf, 8);
	memcpy(&sum, buf + 8, 4);
	CHECK_EQ(len, 12 + (seq * 2654435761u) % (MAX - 11));
	CHECK_EQ(sum, t_msg_checksum(buf + 12, len - 12, seq));
	return seq;
}

/*
 * A subscriber child: attaches, reports on the pipe, receives until
 * -EPIPE, checking that numbers follow each other (from first, or from
 * whatever comes first if first is UINT64_MAX), with a pause of
 * nap_ns every 64 messages. Exits 0 if it received want (if not 0).
 */
static pid_t subscriber(shmcap_cap *r, uint64_t first, uint64_t want,
			int64_t nap_ns)
{
	shmcap_channel *c;
	pid_t pid = t_fork_attached(r, SHMCAP_CHANNEL_CONSUMER, 100, &c);

	if (pid == 0) {
		uint8_t buf[MAX];
		uint64_t n = 0, seq, next = first;
		const void *q;
		size_t l;
		int ret;

		for (;;) {
			if (n & 1) {
				ret = shmcap_channel_recv_ptr(c, &q, &l,
							      LONG_WAIT);
				if (ret == -EPIPE)
					break;
				CHECK_OK(ret);
				seq = check_msg(q, l);
				CHECK_OK(shmcap_channel_release(c));
			} else {
				ret = shmcap_channel_recv(c, buf, sizeof(buf),
							  LONG_WAIT);
				if (ret == -EPIPE)
					break;
				CHECK_OK(ret);
				seq = check_msg(buf, (size_t)ret);
			}
			if (next == UINT64_MAX)
				next = seq;
			CHECK_EQ(seq, next);
			next++;
			n++;
			if (nap_ns && (n & 63) == 0)
				t_sleep_ns(nap_ns);
		}
		if (want)
			CHECK_EQ(n, want);
		shmcap_channel_close(c);
		t_child_pass();
	}
	return pid;
}

static void test_fanout(void)
{
	uint64_t n = t_scaled(200000), seq;
	shmcap_cap *r;
	shmcap_channel *p;
	uint8_t buf[MAX];
	pid_t pid[NSUB], late;
	int i;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_BROADCAST, 8192, MAX, 0,
				       &r));
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
	for (i = 0; i < NSUB; i++)
		pid[i] = subscriber(r, 0, n, i == 0 ? 100000 : 0);
	late = -1;
	for (seq = 0; seq < n; seq++) {
		size_t len = make_msg(buf, seq);

		if (seq == n / 2)
			late = subscriber(r, UINT64_MAX, 0, 0);
		CHECK_OK(shmcap_channel_send(p, buf, len, LONG_WAIT));
	}
	shmcap_channel_close(p);
	for (i = 0; i < NSUB; i++)
		t_reap_ok(pid[i], 60);
	t_reap_ok(late, 60);
	printf("fan-out: %llu messages to %d subscribers\n",
	       (unsigned long long)n, NSUB);
	shmcap_cap_close(r);
}

/* A subscriber that stops reading holds the producer; killed, it stops. */
static void test_slow_and_killed(void)
{
	shmcap_cap *r;
	shmcap_channel *p, *c;
	uint8_t buf[MAX];
	uint64_t seq = 0;
	pid_t pid, ok;
	int ret;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_BROADCAST, 4096, MAX, 0,
				       &r));
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
	/* No subscriber yet: messages go nowhere, never blocking. */
	for (seq = 0; seq < 100; seq++)
		CHECK_OK(shmcap_channel_send(p, buf, make_msg(buf, seq), 0));
	/* A subscriber in this process that does not read. */
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
	while ((ret = shmcap_channel_send(p, buf, make_msg(buf, seq), 0)) == 0)
		seq++;
	CHECK_ERR(ret, -EAGAIN);
	ret = shmcap_channel_recv(c, buf, sizeof(buf), 0);
	CHECK_OK(ret);
	CHECK_EQ(check_msg(buf, (size_t)ret), 100); /* joined at the tail */
	shmcap_channel_close(c);
	/* Its close freed the producer; a child that is killed too. */
	pid = subscriber(r, UINT64_MAX, 0, 10000000);
	ok = subscriber(r, UINT64_MAX, 0, 0);
	for (; seq < 5000; seq++) {
		if (seq == 2000)
			kill(pid, SIGKILL);
		CHECK_OK(shmcap_channel_send(p, buf, make_msg(buf, seq),
					     LONG_WAIT));
	}
	t_check_killed(pid, 30);
	shmcap_channel_close(p);
	t_reap_ok(ok, 30);
	shmcap_cap_close(r);

	/* Every subscriber gone: -EPIPE for the producer. */
	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_BROADCAST, 4096, MAX, 0,
				       &r));
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
	shmcap_channel_close(c);
	CHECK_ERR(shmcap_channel_send(p, buf, 10, LONG_WAIT), -EPIPE);
	shmcap_channel_close(p);
	shmcap_cap_close(r);
}

/*
 * Lossy: the producer never waits; a slow subscriber gets whole messages
 * in increasing order, and received + missed == sent; the channel's lost
 * total (shmcap/abi.h) agrees.
 */
static void test_lossy(void)
{
	uint64_t n = t_scaled(100000), seq;
	shmcap_cap *r;
	shmcap_channel *p;
	uint8_t buf[MAX];
	int pfd[2];
	pid_t pid;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_BROADCAST, 4096, MAX,
				       SHMCAP_CHANNEL_LOSSY, &r));
	CHECK(pipe(pfd) == 0);
	pid = t_fork_child(100);
	if (pid == 0) {
		const struct shmcap_channel_ctrl *ctrl;
		shmcap_channel *c;
		shmcap_map *m;
		uint64_t got = 0, missed = 0, last = UINT64_MAX, first = 0, s;
		const void *q;
		int ret;

		close(pfd[0]);
		CHECK_OK(
			shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
		CHECK_ERR(shmcap_channel_recv_ptr(c, &q, NULL, 0), -EOPNOTSUPP);
		CHECK(write(pfd[1], "x", 1) == 1);
		close(pfd[1]);
		for (;;) {
			ret = shmcap_channel_recv(c, buf, sizeof(buf),
						  LONG_WAIT);
			if (ret == -EPIPE)
				break;
			CHECK_OK(ret);
			s = check_msg(buf, (size_t)ret);
			if (last != UINT64_MAX)
				CHECK(s > last);
			else
				first = s;
			last = s;
			got++;
			if ((got & 255) == 0)
				t_sleep_ns(200000); /* fall behind */
		}
		missed = (uint64_t)shmcap_channel_missed(c);
		printf("lossy: received %llu, missed %llu\n",
		       (unsigned long long)got, (unsigned long long)missed);
		/* Counted from the first message received. */
		CHECK_EQ(got + missed, n - first);
		/* The channel's total, for tools (the only subscriber). */
		ctrl = (const void *)t_channel_map(r, &m);
		CHECK_EQ(t_load64(&ctrl->cons.lost), missed);
		shmcap_map_unmap(m);
		shmcap_channel_close(c);
		t_child_pass();
	}
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
	t_ready_wait(pfd);
	for (seq = 0; seq < n; seq++)
		CHECK_OK(shmcap_channel_send(p, buf, make_msg(buf, seq), 0));
	shmcap_channel_close(p);
	t_reap_ok(pid, 60);
	shmcap_cap_close(r);
}

static void test_bad(void)
{
	shmcap_cap *r;
	shmcap_channel *c[SHMCAP_CHANNEL_SUBSCRIBERS_MAX + 1];
	int i;

	CHECK_ERR(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, 100,
					SHMCAP_CHANNEL_LOSSY, &r),
		  -EINVAL);
	/* 16-byte headers: 16 + 2032 = 2048 fits in half of 4096. */
	CHECK_ERR(shmcap_channel_create(SHMCAP_CHANNEL_BROADCAST, 4096, 2033, 0,
					&r),
		  -EINVAL);
	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_BROADCAST, 4096, 2032, 0,
				       &r));
	for (i = 0; i < SHMCAP_CHANNEL_SUBSCRIBERS_MAX; i++)
		CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0,
					     &c[i]));
	CHECK_ERR(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c[i]),
		  -EBUSY);
	CHECK_EQ(shmcap_channel_missed(c[0]), 0);
	CHECK_ERR(shmcap_channel_missed(NULL), -EINVAL);
	for (i = 0; i < SHMCAP_CHANNEL_SUBSCRIBERS_MAX; i++)
		shmcap_channel_close(c[i]);
	shmcap_cap_close(r);
}

/* Random corruption between operations, blocking and lossy. */
static void test_fuzz(unsigned int rounds)
{
	unsigned int k, op;

	for (k = 0; k < rounds; k++) {
		shmcap_cap *r;
		shmcap_channel *p, *c[2];
		shmcap_map *m;
		uint8_t *base, buf[MAX] = { 0 };
		const void *q;
		size_t l;
		int ret, i;

		CHECK_OK(shmcap_channel_create(
			SHMCAP_CHANNEL_BROADCAST, 512, 100,
			k & 1 ? SHMCAP_CHANNEL_LOSSY : 0, &r));
		base = t_channel_map(r, &m);
		CHECK_OK(
			shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
		for (i = 0; i < 2; i++)
			CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER,
						     0, &c[i]));
		for (op = 0; op < 100; op++) {
			t_channel_corrupt_maybe(base);
			i = (int)(t_rnd() % 2);
			switch (t_rnd() % 3) {
			case 0:
				ret = shmcap_channel_send(p, buf, t_rnd() % 101,
							  0);
				CHECK(ret == 0 || ret == -EAGAIN ||
				      ret == -EBADMSG || ret == -EPIPE);
				break;
			case 1:
				ret = shmcap_channel_recv(
					c[i], buf, sizeof(buf),
					t_rnd() % 20 ? 0 : 200000);
				if (!((ret >= 0 && ret <= 100) ||
				      ret == -EAGAIN || ret == -ETIMEDOUT ||
				      ret == -EBADMSG || ret == -EPIPE))
					FAIL("recv gave %d", ret);
				break;
			default:
				ret = shmcap_channel_recv_ptr(c[i], &q, &l, 0);
				CHECK((ret >= 0 && ret <= 100) ||
				      ret == -EAGAIN || ret == -EBADMSG ||
				      ret == -EOPNOTSUPP || ret == -EPIPE);
				if (ret >= 0) {
					memcpy(buf, q, l); /* ASan: inside */
					ret = shmcap_channel_release(c[i]);
					CHECK(ret == 0 || ret == -EBADMSG);
				}
				break;
			}
		}
		shmcap_channel_close(p);
		shmcap_channel_close(c[0]);
		shmcap_channel_close(c[1]);
		shmcap_map_unmap(m);
		shmcap_cap_close(r);
	}
}

int main(void)
{
	int fds = t_channel_test_start();

	if (getenv("T_FUZZ_ONLY")) {
		test_fuzz((unsigned int)t_scaled(500));
		return T_EXIT_PASS;
	}
	test_bad();
	test_slow_and_killed();
	test_fanout();
	test_lossy();
	test_fuzz((unsigned int)t_scaled(500));
	CHECK_EQ(t_count_fds(), fds);
	return T_EXIT_PASS;
}
