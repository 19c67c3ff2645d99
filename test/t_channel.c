/* SPDX-License-Identifier: MIT */
/*
 * Description: single-producer channels: zero-copy and copying send and
 * receive, batches, blocking and non-blocking calls, back-pressure,
 * end-of-stream, bad input, and 10^6 messages of random sizes between two
 * processes checked by sequence number and checksum.
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "channel_util.h"
#include "helpers.h"
#include "util.h"

/*
 * The stress size: 10^6 messages, a tenth under ThreadSanitizer (which
 * slows these loops twentyfold), times SHMCAP_TEST_SCALE.
 */
#define STRESS_N (T_TSAN ? 100000 : 1000000)

/* The layout of src/channel.c, to look at and to corrupt. */
#define CTRL 4096
#define OFF_TAIL 128
#define OFF_CFUTEX 136
#define OFF_HEAD 256
#define OFF_SLOT0 384
#define OFF_FULL_FENCES 32

struct msghdr_t {
	uint64_t seq;
	uint32_t len;
	uint32_t sum;
};

/* Fill buf with a message of len bytes (len >= 16) for seq. */
static void make_msg(uint8_t *buf, size_t len, uint64_t seq)
{
	struct msghdr_t h = { .seq = seq, .len = (uint32_t)len };
	size_t i;

	for (i = sizeof(h); i < len; i++)
		buf[i] = (uint8_t)(seq * 31 + i);
	h.sum = t_msg_checksum(buf + sizeof(h), len - sizeof(h), seq);
	memcpy(buf, &h, sizeof(h));
}

/* Check a received message: whole, expected seq, right checksum. */
static void check_msg(const uint8_t *buf, size_t len, uint64_t seq)
{
	struct msghdr_t h;

	if (len < sizeof(h))
		FAIL("message %llu too short: %zu", (unsigned long long)seq,
		     len);
	memcpy(&h, buf, sizeof(h));
	if (h.seq != seq)
		FAIL("got message %llu, expected %llu",
		     (unsigned long long)h.seq, (unsigned long long)seq);
	CHECK_EQ(h.len, len);
	CHECK_EQ(h.sum, t_msg_checksum(buf + sizeof(h), len - sizeof(h), seq));
}

static void open_pair(shmcap_cap *r, shmcap_channel **p, shmcap_channel **c)
{
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, p));
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, c));
}

static void test_bad_input(void)
{
	shmcap_cap *r, *ro, *n;
	shmcap_channel *p, *c, *x;
	uint8_t buf[256];
	const void *cp;
	void *vp;
	size_t len;
	struct iovec iov;

	/* Creation. */
	CHECK_ERR(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, 64, 0, NULL),
		  -EINVAL);
	CHECK_ERR(shmcap_channel_create(0, 4096, 64, 0, &r), -EINVAL);
	CHECK_NULL(r);
	CHECK_ERR(shmcap_channel_create(4, 4096, 64, 0, &r), -EINVAL);
	CHECK_ERR(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, 64, 1, &r),
		  -EINVAL);
	CHECK_ERR(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4095, 64, 0, &r),
		  -EINVAL);
	CHECK_ERR(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 32, 8, 0, &r),
		  -EINVAL);
	/* A record may take half the ring: 8 + 2040 = 2048 fits, 2041 not. */
	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, 2040, 0, &r));
	shmcap_cap_close(r);
	CHECK_ERR(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, 2041, 0, &r),
		  -EINVAL);
	CHECK_ERR(shmcap_channel_create(SHMCAP_CHANNEL_SPSC,
					SHMCAP_CHANNEL_CAPACITY_MAX * 2, 64, 0,
					&r),
		  -EINVAL);

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, 200, 0, &r));
	CHECK_EQ(t_region_size(r), 8192);

	/* Open. */
	CHECK_ERR(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, NULL),
		  -EINVAL);
	CHECK_ERR(shmcap_channel_open(NULL, SHMCAP_CHANNEL_PRODUCER, 0, &p),
		  -EINVAL);
	CHECK_ERR(shmcap_channel_open(r, 3, 0, &p), -EINVAL);
	CHECK_ERR(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 8, &p),
		  -EINVAL);
	CHECK_OK(shmcap_cap_derive(r, SHMCAP_RIGHT_READ, &ro));
	CHECK_ERR(shmcap_channel_open(ro, SHMCAP_CHANNEL_CONSUMER, 0, &p),
		  -EACCES);
	shmcap_cap_close(ro);
	CHECK_OK(shmcap_notifier_create(&n));
	CHECK_ERR(shmcap_channel_open(n, SHMCAP_CHANNEL_CONSUMER, 0, &p),
		  -EINVAL);
	shmcap_cap_close(n);
	/* A region that is not a channel. */
	CHECK_OK(shmcap_region_create(8192, 0, &n));
	CHECK_ERR(shmcap_channel_open(n, SHMCAP_CHANNEL_CONSUMER, 0, &p),
		  -EBADMSG);
	shmcap_cap_close(n);

	open_pair(r, &p, &c);
	CHECK_EQ(shmcap_channel_capacity(p), 4096);
	CHECK_EQ(shmcap_channel_max_msg(c), 200);
	CHECK_EQ(shmcap_channel_capacity(NULL), 0);
	/* Each role once. */
	CHECK_ERR(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &x),
		  -EBUSY);
	CHECK_ERR(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &x),
		  -EBUSY);

	/* Wrong role, NULL, sizes. */
	CHECK_ERR(shmcap_channel_send(c, buf, 1, 0), -EINVAL);
	CHECK_ERR(shmcap_channel_recv(p, buf, 1, 0), -EINVAL);
	CHECK_ERR(shmcap_channel_send(NULL, buf, 1, 0), -EINVAL);
	CHECK_ERR(shmcap_channel_recv(NULL, buf, 1, 0), -EINVAL);
	CHECK_ERR(shmcap_channel_send(p, NULL, 1, 0), -EINVAL);
	CHECK_ERR(shmcap_channel_send(p, buf, 201, 0), -EMSGSIZE);
	CHECK_ERR(shmcap_channel_reserve(p, 201, &vp, 0), -EMSGSIZE);
	CHECK_ERR(shmcap_channel_reserve(p, 1, NULL, 0), -EINVAL);
	CHECK_ERR(shmcap_channel_commit(p, 0), -EINVAL);
	CHECK_ERR(shmcap_channel_release(c), -EINVAL);
	CHECK_ERR(shmcap_channel_recv_ptr(c, NULL, &len, 0), -EINVAL);
	CHECK_ERR(shmcap_channel_send_batch(p, NULL, 1, 0), -EINVAL);
	CHECK_ERR(shmcap_channel_recv_batch(c, &iov, 0, 0), -EINVAL);

	/* Empty: non-blocking and timed receive. */
	CHECK_ERR(shmcap_channel_recv(c, buf, sizeof(buf), 0), -EAGAIN);
	CHECK_ERR(shmcap_channel_recv_ptr(c, &cp, &len, 1000000), -ETIMEDOUT);

	/* A reservation blocks a second one and the copying send. */
	CHECK_OK(shmcap_channel_reserve(p, 100, &vp, 0));
	CHECK_EQ((uintptr_t)vp & 7, 0);
	CHECK_ERR(shmcap_channel_reserve(p, 1, &vp, 0), -EINVAL);
	CHECK_ERR(shmcap_channel_send(p, buf, 1, 0), -EINVAL);
	CHECK_ERR(shmcap_channel_commit(p, 101), -EINVAL);
	memcpy(vp, "hello", 5);
	/* Not visible before the commit. */
	CHECK_ERR(shmcap_channel_recv(c, buf, sizeof(buf), 0), -EAGAIN);
	CHECK_OK(shmcap_channel_commit(p, 5));
	CHECK_ERR(shmcap_channel_commit(p, 5), -EINVAL);

	/* Too small a buffer leaves the message in place. */
	CHECK_ERR(shmcap_channel_recv(c, buf, 4, 0), -EMSGSIZE);
	CHECK_EQ(shmcap_channel_recv_ptr(c, &cp, &len, 0), 5);
	CHECK_EQ(len, 5);
	CHECK(memcmp(cp, "hello", 5) == 0);
	CHECK_ERR(shmcap_channel_recv_ptr(c, &cp, &len, 0), -EINVAL);
	CHECK_ERR(shmcap_channel_recv(c, buf, sizeof(buf), 0), -EINVAL);
	CHECK_OK(shmcap_channel_release(c));
	CHECK_ERR(shmcap_channel_release(c), -EINVAL);

	/* Zero-length messages. */
	CHECK_OK(shmcap_channel_send(p, NULL, 0, 0));
	CHECK_EQ(shmcap_channel_recv(c, NULL, 0, 0), 0);

	shmcap_channel_close(p);
	shmcap_channel_close(c);
	shmcap_channel_close(NULL);
	/* The roles stay taken. */
	CHECK_ERR(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &x),
		  -EBUSY);
	shmcap_cap_close(r);
}

/* Fill the ring: back-pressure, then drain; padding at the ring's end. */
static void test_backpressure_and_wrap(void)
{
	shmcap_cap *r;
	shmcap_channel *p, *c;
	uint8_t buf[512], out[512];
	uint64_t sent = 0, got = 0, i;
	int n, ret;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, 500, 0, &r));
	open_pair(r, &p, &c);

	/* 100-byte messages take 112 bytes: 36 fit in 4096. */
	for (n = 0;; n++) {
		make_msg(buf, 100, sent);
		ret = shmcap_channel_send(p, buf, 100, 0);
		if (ret == -EAGAIN)
			break;
		CHECK_OK(ret);
		sent++;
	}
	CHECK_EQ(n, 36);
	CHECK_ERR(shmcap_channel_send(p, buf, 100, 2000000), -ETIMEDOUT);
	CHECK_EQ(shmcap_channel_recv(c, out, sizeof(out), 0), 100);
	check_msg(out, 100, got++);
	CHECK_OK(shmcap_channel_send(p, buf, 0, 0)); /* 8 bytes fit now */
	sent++;

	/* Random sizes through many laps, sender ahead by up to a ring. */
	for (i = 0; i < 20000; i++) {
		size_t len = 16 + t_rnd() % 485;

		make_msg(buf, len, sent);
		ret = shmcap_channel_send(p, buf, len, 0);
		if (ret == 0) {
			sent++;
			continue;
		}
		CHECK_ERR(ret, -EAGAIN);
		while (got < sent) {
			const void *q;
			size_t l;

			ret = shmcap_channel_recv_ptr(c, &q, &l, 0);
			CHECK(ret >= 0);
			if (got == 36) {
				CHECK_EQ(l, 0); /* the zero-length one */
			} else {
				check_msg(q, l, got);
			}
			got++;
			CHECK_OK(shmcap_channel_release(c));
			if (t_rnd() % 4 == 0)
				break;
		}
	}
	while (got < sent) {
		ret = shmcap_channel_recv(c, out, sizeof(out), 0);
		CHECK(ret >= 0);
		if (got != 36)
			check_msg(out, (size_t)ret, got);
		got++;
	}
	CHECK_ERR(shmcap_channel_recv(c, out, sizeof(out), 0), -EAGAIN);
	shmcap_channel_close(p);
	shmcap_channel_close(c);
	shmcap_cap_close(r);
}

static void test_batch(void)
{
	shmcap_cap *r;
	shmcap_channel *p, *c;
	uint8_t bufs[8][64], out[8][64];
	struct iovec in[8], o[8];
	int i;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 512, 64, 0, &r));
	open_pair(r, &p, &c);
	for (i = 0; i < 8; i++) {
		make_msg(bufs[i], 16 + i, (uint64_t)i);
		in[i].iov_base = bufs[i];
		in[i].iov_len = 16 + (size_t)i;
	}
	/* 8 records of 24..32 bytes fit in 512. */
	CHECK_EQ(shmcap_channel_send_batch(p, in, 8, 0), 8);
	for (i = 0; i < 8; i++) {
		o[i].iov_base = out[i];
		o[i].iov_len = 64;
	}
	o[3].iov_len = 10; /* too small for message 3 */
	CHECK_EQ(shmcap_channel_recv_batch(c, o, 8, 0), 3);
	for (i = 0; i < 3; i++)
		check_msg(out[i], o[i].iov_len, (uint64_t)i);
	CHECK_ERR(shmcap_channel_recv_batch(c, &o[3], 1, 0), -EMSGSIZE);
	o[3].iov_len = 64;
	CHECK_EQ(shmcap_channel_recv_batch(c, &o[3], 5, 0), 5);
	for (i = 3; i < 8; i++)
		check_msg(out[i], o[i].iov_len, (uint64_t)i);
	CHECK_ERR(shmcap_channel_recv_batch(c, o, 8, 0), -EAGAIN);

	/* A batch larger than the room: sends what fits. */
	for (i = 0; i < 8; i++)
		in[i].iov_len = 64; /* 72-byte records: 6 and a padding fit */
	CHECK_EQ(shmcap_channel_send_batch(p, in, 8, 0), 6);
	CHECK_ERR(shmcap_channel_send_batch(p, in, 8, 0), -EAGAIN);
	in[1].iov_len = 65;
	CHECK_ERR(shmcap_channel_send_batch(p, in, 2, 0), -EINVAL);
	shmcap_channel_close(p);
	shmcap_channel_close(c);
	shmcap_cap_close(r);
}

/* End of stream both ways. */
static void test_epipe(void)
{
	shmcap_cap *r;
	shmcap_channel *p, *c;
	uint8_t buf[64];
	void *vp;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 1024, 64, 0, &r));
	open_pair(r, &p, &c);
	CHECK_OK(shmcap_channel_send(p, "a", 1, 0));
	CHECK_OK(shmcap_channel_send(p, "b", 1, 0));
	CHECK_OK(shmcap_channel_reserve(p, 10, &vp, 0)); /* dropped */
	shmcap_channel_close(p);
	CHECK_EQ(shmcap_channel_recv(c, buf, sizeof(buf), SHMCAP_FOREVER), 1);
	CHECK_EQ(buf[0], 'a');
	CHECK_EQ(shmcap_channel_recv(c, buf, sizeof(buf), 0), 1);
	CHECK_EQ(buf[0], 'b');
	CHECK_ERR(shmcap_channel_recv(c, buf, sizeof(buf), 0), -EPIPE);
	CHECK_ERR(shmcap_channel_recv(c, buf, sizeof(buf), SHMCAP_FOREVER),
		  -EPIPE);
	shmcap_channel_close(c);
	shmcap_cap_close(r);

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 1024, 64, 0, &r));
	open_pair(r, &p, &c);
	shmcap_channel_close(c);
	CHECK_ERR(shmcap_channel_send(p, "a", 1, 0), -EPIPE);
	CHECK_ERR(shmcap_channel_reserve(p, 1, &vp, SHMCAP_FOREVER), -EPIPE);
	shmcap_channel_close(p);
	shmcap_cap_close(r);
}

/*
 * Blocking across processes: a consumer asleep in the kernel is woken by
 * a send; a producer asleep on a full ring by a release; a close wakes a
 * sleeping consumer with -EPIPE.
 */
static void test_blocking(void)
{
	shmcap_cap *r;
	shmcap_channel *p, *c;
	uint8_t buf[64];
	pid_t pid;
	int i;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 256, 64, 0, &r));
	pid = t_fork_child(30);
	if (pid == 0) {
		CHECK_OK(
			shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
		CHECK_EQ(shmcap_channel_recv(c, buf, sizeof(buf),
					     SHMCAP_FOREVER),
			 3);
		CHECK(memcmp(buf, "one", 3) == 0);
		/* Let the producer fill the ring and fall asleep. */
		t_sleep_ns(50000000);
		for (i = 0; i < 6; i++)
			CHECK_EQ(shmcap_channel_recv(c, buf, sizeof(buf),
						     SHMCAP_FOREVER),
				 56);
		/* Wait until the producer closes. */
		CHECK_ERR(shmcap_channel_recv(c, buf, sizeof(buf),
					      SHMCAP_FOREVER),
			  -EPIPE);
		shmcap_channel_close(c);
		t_child_pass();
	}
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
	t_wait_asleep(pid);
	CHECK_OK(shmcap_channel_send(p, "one", 3, 0));
	/* 64-byte records: 4 fill the ring; the fifth waits. */
	memset(buf, 'x', sizeof(buf));
	for (i = 0; i < 6; i++)
		CHECK_OK(shmcap_channel_send(p, buf, 56, 10000000000));
	t_wait_asleep(pid);
	shmcap_channel_close(p);
	t_reap_ok(pid, 30);
	shmcap_cap_close(r);
}

/* Make membarrier() fail with ENOSYS in this process (a seccomp filter). */
static void block_membarrier(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = 4, .filter = f };

	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
	CHECK(syscall(SYS_membarrier, 0, 0, 0) == -1 && errno == ENOSYS);
}

/*
 * A participant that cannot make asymmetric fences (membarrier() blocked)
 * switches the channel to full fences; blocking traffic in both
 * directions, with each side falling asleep, still flows.
 */
static void test_full_fences(void)
{
	shmcap_cap *r[2];
	shmcap_channel *tx, *rx;
	shmcap_map *m;
	uint8_t *base, buf[64];
	uint64_t seq;
	pid_t pid;
	int i;

	for (i = 0; i < 2; i++)
		CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 256, 64, 0,
					       &r[i]));
	base = t_channel_map(r[0], &m);
	CHECK_EQ(t_load32((uint32_t *)(base + OFF_FULL_FENCES)), 0);
	pid = t_fork_child(60);
	if (pid == 0) {
		block_membarrier();
		CHECK_OK(shmcap_channel_open(r[0], SHMCAP_CHANNEL_CONSUMER, 0,
					     &rx));
		CHECK_OK(shmcap_channel_open(r[1], SHMCAP_CHANNEL_PRODUCER, 0,
					     &tx));
		for (seq = 0; seq < 200; seq++) {
			CHECK_EQ(shmcap_channel_recv(rx, buf, sizeof(buf),
						     SHMCAP_FOREVER),
				 32);
			check_msg(buf, 32, seq);
			CHECK_OK(shmcap_channel_send(tx, buf, 32,
						     SHMCAP_FOREVER));
		}
		shmcap_channel_close(rx);
		shmcap_channel_close(tx);
		t_child_pass();
	}
	CHECK_OK(shmcap_channel_open(r[0], SHMCAP_CHANNEL_PRODUCER, 0, &tx));
	CHECK_OK(shmcap_channel_open(r[1], SHMCAP_CHANNEL_CONSUMER, 0, &rx));
	for (seq = 0; seq < 200; seq++) {
		/* Now and then, let the child fall asleep first. */
		if (seq % 20 == 0)
			t_wait_asleep(pid);
		make_msg(buf, 32, seq);
		CHECK_OK(shmcap_channel_send(tx, buf, 32, SHMCAP_FOREVER));
		CHECK_EQ(shmcap_channel_recv(rx, buf, sizeof(buf),
					     SHMCAP_FOREVER),
			 32);
		check_msg(buf, 32, seq);
	}
	t_reap_ok(pid, 30);
	/* The child's open asked for full fences. */
	CHECK_EQ(t_load32((uint32_t *)(base + OFF_FULL_FENCES)), 1);
	shmcap_channel_close(tx);
	shmcap_channel_close(rx);
	shmcap_map_unmap(m);
	for (i = 0; i < 2; i++)
		shmcap_cap_close(r[i]);
}

/* The message counts that tools read (abi.h: sent, taken). */
static void test_counts(void)
{
	static const int kinds[] = { SHMCAP_CHANNEL_SPSC, SHMCAP_CHANNEL_MPSC,
				     SHMCAP_CHANNEL_BROADCAST };
	const struct shmcap_channel_ctrl *ctrl;
	shmcap_channel *p, *c;
	shmcap_cap *r;
	shmcap_map *m;
	uint8_t buf[64];
	size_t k;
	int i;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		CHECK_OK(shmcap_channel_create(kinds[k], 4096, 64, 0, &r));
		ctrl = (const void *)t_channel_map(r, &m);
		/* A subscriber attaches first, to see every message. */
		CHECK_OK(
			shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
		CHECK_OK(
			shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
		for (i = 0; i < 5; i++)
			CHECK_OK(shmcap_channel_send(p, "abc", 3, 0));
		for (i = 0; i < 3; i++)
			CHECK_EQ(shmcap_channel_recv(c, buf, sizeof(buf), 0),
				 3);
		CHECK_EQ(t_load64(&ctrl->prod.sent),
			 kinds[k] == SHMCAP_CHANNEL_MPSC ? 0 : 5);
		CHECK_EQ(t_load64(&ctrl->cons.taken),
			 kinds[k] == SHMCAP_CHANNEL_BROADCAST ? 0 : 3);
		shmcap_channel_close(p);
		shmcap_channel_close(c);
		shmcap_map_unmap(m);
		shmcap_cap_close(r);
	}
}

/*
 * The stress test: n messages of random sizes from a child producer to
 * the parent consumer, both mixing the zero-copy, copying and batch calls.
 */
static void producer_loop(shmcap_cap *r, uint64_t n, uint32_t max,
			  int64_t timeout)
{
	shmcap_channel *p;
	uint8_t *buf = malloc(max * 4 + 64);
	uint64_t seq = 0;
	struct iovec iov[4];
	void *vp;
	int k, m;

	CHECK_NOTNULL(buf);
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
	while (seq < n) {
		size_t len = 16 + t_rnd() % (max - 15);

		switch (t_rnd() % 3) {
		case 0:
			make_msg(buf, len, seq);
			CHECK_OK(shmcap_channel_send(p, buf, len, timeout));
			seq++;
			break;
		case 1:
			CHECK_OK(shmcap_channel_reserve(p, max, &vp, timeout));
			make_msg(vp, len, seq);
			CHECK_OK(shmcap_channel_commit(p, len));
			seq++;
			break;
		default:
			for (k = 0; k < 4 && seq + (uint64_t)k < n; k++) {
				len = 16 + t_rnd() % (max - 15);
				iov[k].iov_base = buf + (size_t)k * max;
				iov[k].iov_len = len;
				make_msg(iov[k].iov_base, len,
					 seq + (uint64_t)k);
			}
			m = shmcap_channel_send_batch(p, iov, (size_t)k,
						      timeout);
			CHECK(m >= 1);
			seq += (uint64_t)m;
			break;
		}
	}
	shmcap_channel_close(p);
	free(buf);
}

static void test_stress(void)
{
	uint64_t n = t_scaled(STRESS_N), got = 0;
	uint32_t max = 1000;
	shmcap_cap *r;
	shmcap_channel *c;
	uint8_t *buf = malloc(4 * max);
	struct iovec iov[4];
	const void *q;
	size_t l;
	pid_t pid;
	int ret, k;

	CHECK_NOTNULL(buf);
	/* A small ring, so that both sides wait often. */
	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 8192, max, 0, &r));
	pid = t_fork_child(100);
	if (pid == 0) {
		producer_loop(r, n, max, 30000000000);
		free(buf);
		t_child_pass();
	}
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
	for (;;) {
		switch (t_rnd() % 3) {
		case 0:
			ret = shmcap_channel_recv(c, buf, max, 30000000000);
			if (ret == -EPIPE)
				goto done;
			CHECK(ret >= 0);
			check_msg(buf, (size_t)ret, got++);
			break;
		case 1:
			ret = shmcap_channel_recv_ptr(c, &q, &l, 30000000000);
			if (ret == -EPIPE)
				goto done;
			CHECK(ret >= 0);
			check_msg(q, l, got++);
			CHECK_OK(shmcap_channel_release(c));
			break;
		default:
			for (k = 0; k < 4; k++) {
				iov[k].iov_base = buf + (size_t)k * max;
				iov[k].iov_len = max;
			}
			ret = shmcap_channel_recv_batch(c, iov, 4, 30000000000);
			if (ret == -EPIPE)
				goto done;
			CHECK(ret >= 1);
			for (k = 0; k < ret; k++)
				check_msg(iov[k].iov_base, iov[k].iov_len,
					  got++);
			break;
		}
	}
done:
	CHECK_EQ(got, n);
	printf("stress: %llu messages checked\n", (unsigned long long)got);
	shmcap_channel_close(c);
	t_reap_ok(pid, 30);
	shmcap_cap_close(r);
	free(buf);
}

/*
 * Producer and consumer as threads of one process, so that ThreadSanitizer
 * sees both sides: every payload byte written before a commit must be
 * visible after the matching receive, with no data race reported.
 */
struct thr_arg {
	shmcap_cap *r;
	uint64_t n;
};

static void *thr_producer(void *arg)
{
	struct thr_arg *a = arg;

	producer_loop(a->r, a->n, 300, 30000000000);
	return NULL;
}

static void test_threads(void)
{
	struct thr_arg a = { .n = t_scaled(100000) };
	shmcap_channel *c;
	uint8_t buf[300];
	pthread_t th;
	uint64_t got = 0;
	int ret;

	CHECK_OK(
		shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, 300, 0, &a.r));
	CHECK_OK(shmcap_channel_open(a.r, SHMCAP_CHANNEL_CONSUMER, 0, &c));
	CHECK_EQ(pthread_create(&th, NULL, thr_producer, &a), 0);
	while ((ret = shmcap_channel_recv(c, buf, sizeof(buf), 30000000000)) >=
	       0)
		check_msg(buf, (size_t)ret, got++);
	CHECK_ERR(ret, -EPIPE);
	CHECK_EQ(pthread_join(th, NULL), 0);
	CHECK_EQ(got, a.n);
	shmcap_channel_close(c);
	shmcap_cap_close(a.r);
}

int main(void)
{
	int fds = t_channel_test_start();

	test_bad_input();
	test_backpressure_and_wrap();
	test_batch();
	test_epipe();
	test_blocking();
	test_full_fences();
	test_counts();
	test_threads();
	test_stress();
	CHECK_EQ(t_count_fds(), fds);
	return T_EXIT_PASS;
}
