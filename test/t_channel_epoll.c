/* SPDX-License-Identifier: MIT */
/*
 * Description: the channel's pollable descriptor (shmcap_channel_fd,
 * shmcap_channel_set_notifier): epoll in the consumer's process, producers
 * in others; no signal while the consumer never went idle, readiness when
 * a message arrives after it drained, at most one signal per arming; many
 * producers; a producer killed; broadcast subscribers, each with its own
 * descriptor (a bell socket), one killed while armed; bad input.
 */
#define _GNU_SOURCE /* preadv2 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/uio.h>

#include "channel_util.h"
#include "helpers.h"
#include "util.h"

#define MAX 64
#define LONG_WAIT 20000000000 /* only turns a hang into a failure */
#define LONG_MS 20000
#define NPROD 3

/* The layout of src/channel.c, to corrupt the armed flag. */
#define OFF_ARMED 160

struct msg {
	uint32_t prod;
	uint32_t pad;
	uint64_t seq;
};

static int ep_new(shmcap_channel *c)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int fd = shmcap_channel_fd(c);

	CHECK(ep >= 0);
	CHECK_OK(fd);
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
	return ep;
}

/*
 * A new channel of kind and capacity cap (messages up to MAX) with a
 * notifier, and its consumer *c; returns an epoll set that watches it.
 */
static int consumer_new(int kind, uint64_t cap, shmcap_cap **r, shmcap_cap **n,
			shmcap_channel **c)
{
	CHECK_OK(shmcap_notifier_create(n));
	CHECK_OK(shmcap_channel_create(kind, cap, MAX, 0, r));
	CHECK_OK(shmcap_channel_open(*r, SHMCAP_CHANNEL_CONSUMER, 0, c));
	CHECK_OK(shmcap_channel_set_notifier(*c, *n));
	return ep_new(*c);
}

/* Is the descriptor readable within ms (0: now)? */
static int ep_ready(int ep, int ms)
{
	struct epoll_event ev;
	int n;

	do
		n = epoll_wait(ep, &ev, 1, ms);
	while (n < 0 && errno == EINTR);
	CHECK(n >= 0);
	return n;
}

/* Take the eventfd's counter ourselves: the signals since the last look. */
static uint64_t take_signals(shmcap_channel *c)
{
	uint64_t n = 0;
	ssize_t r;

	r = preadv2(shmcap_channel_fd(c), &(struct iovec){ &n, sizeof(n) }, 1,
		    -1, RWF_NOWAIT);
	if (r < 0) {
		CHECK(errno == EAGAIN);
		return 0;
	}
	CHECK_EQ(r, sizeof(n));
	return n;
}

static void send_msg(shmcap_channel *p, uint32_t prod, uint64_t seq)
{
	struct msg m = { .prod = prod, .seq = seq };
	void *vp;

	if (seq & 1) {
		CHECK_OK(shmcap_channel_send(p, &m, sizeof(m), LONG_WAIT));
	} else {
		CHECK_OK(shmcap_channel_reserve(p, sizeof(m), &vp, LONG_WAIT));
		memcpy(vp, &m, sizeof(m));
		CHECK_OK(shmcap_channel_commit(p, sizeof(m)));
	}
}

static void recv_check(shmcap_channel *c, int ret, const struct msg *m,
		       uint64_t *next, int nprod)
{
	CHECK_EQ(ret, sizeof(*m));
	CHECK(m->prod < (uint32_t)nprod);
	CHECK_EQ(m->seq, next[m->prod]);
	next[m->prod]++;
	(void)c;
}

static void test_bad_input(void)
{
	shmcap_cap *r, *rb, *n, *sig, *wait;
	shmcap_channel *p, *c, *bp, *bc;
	int fds = t_count_fds();

	CHECK_OK(shmcap_notifier_create(&n));
	CHECK_OK(shmcap_cap_derive(n, SHMCAP_RIGHT_SIGNAL, &sig));
	CHECK_OK(shmcap_cap_derive(n, SHMCAP_RIGHT_WAIT, &wait));
	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, MAX, 0, &r));
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &c));

	CHECK_ERR(shmcap_channel_set_notifier(NULL, n), -EINVAL);
	CHECK_ERR(shmcap_channel_set_notifier(c, NULL), -EINVAL);
	CHECK_ERR(shmcap_channel_set_notifier(c, r), -EINVAL); /* a region */
	CHECK_ERR(shmcap_channel_set_notifier(c, sig), -EACCES);
	CHECK_ERR(shmcap_channel_set_notifier(p, wait), -EACCES);
	CHECK_ERR(shmcap_channel_fd(NULL), -EINVAL);
	CHECK_ERR(shmcap_channel_fd(p), -EINVAL);
	CHECK_ERR(shmcap_channel_fd(c), -ENOENT);

	/* The handle keeps its own copy; replacing it leaks nothing. */
	CHECK_OK(shmcap_channel_set_notifier(c, wait));
	CHECK_OK(shmcap_channel_set_notifier(c, n));
	CHECK_OK(shmcap_channel_set_notifier(p, sig));
	CHECK(shmcap_channel_fd(c) >= 0);
	CHECK(shmcap_channel_fd(c) != shmcap_cap_fd(n));
	shmcap_cap_close(sig);
	shmcap_cap_close(wait);
	shmcap_cap_close(n);

	/* Still works with the caller's capabilities closed. */
	{
		char b[MAX];
		int ep = ep_new(c);

		CHECK_ERR(shmcap_channel_recv(c, b, sizeof(b), 0), -EAGAIN);
		CHECK_EQ(ep_ready(ep, 0), 0);
		CHECK_OK(shmcap_channel_send(p, "hi", 2, 0));
		CHECK_EQ(ep_ready(ep, LONG_MS), 1);
		CHECK_EQ(shmcap_channel_recv(c, b, sizeof(b), 0), 2);
		CHECK_EQ(ep_ready(ep, 0), 0); /* the receive drained it */

		/*
		 * Garbage in the armed flag: taken as armed, one signal,
		 * no crash, no loop.
		 */
		CHECK_ERR(shmcap_channel_recv(c, b, sizeof(b), 0), -EAGAIN);
		{
			shmcap_map *m;
			uint32_t *armed;

			CHECK_OK(shmcap_region_map(r, 0, 4096, NULL,
						   SHMCAP_MAP_WRITE, &m));
			armed = (uint32_t *)((char *)shmcap_map_addr(m) +
					     OFF_ARMED);
			__atomic_store_n(armed, 0xdeadbeefu, __ATOMIC_SEQ_CST);
			CHECK_OK(shmcap_channel_send(p, "x", 1, 0));
			CHECK_EQ(__atomic_load_n(armed, __ATOMIC_SEQ_CST), 0);
			CHECK_EQ(ep_ready(ep, LONG_MS), 1);
			CHECK_EQ(take_signals(c), 1);
			/* Cleared by a peer: no wake-up, nothing worse. */
			CHECK_EQ(shmcap_channel_recv(c, b, sizeof(b), 0), 1);
			CHECK_ERR(shmcap_channel_recv(c, b, sizeof(b), 0),
				  -EAGAIN);
			__atomic_store_n(armed, 0, __ATOMIC_SEQ_CST);
			CHECK_OK(shmcap_channel_send(p, "y", 1, 0));
			CHECK_EQ(ep_ready(ep, 0), 0);
			CHECK_EQ(shmcap_channel_recv(c, b, sizeof(b), 0), 1);
			shmcap_map_unmap(m);
		}
		close(ep);
	}
	shmcap_channel_close(p);
	shmcap_channel_close(c);
	shmcap_cap_close(r);

	/* Broadcast: no notifier; the subscriber's descriptor is its own. */
	CHECK_OK(shmcap_notifier_create(&n));
	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_BROADCAST, 4096, MAX, 0,
				       &rb));
	CHECK_OK(shmcap_channel_open(rb, SHMCAP_CHANNEL_PRODUCER, 0, &bp));
	CHECK_OK(shmcap_channel_open(rb, SHMCAP_CHANNEL_CONSUMER, 0, &bc));
	CHECK_ERR(shmcap_channel_set_notifier(bp, n), -EOPNOTSUPP);
	CHECK_ERR(shmcap_channel_set_notifier(bc, n), -EOPNOTSUPP);
	CHECK_OK(shmcap_channel_fd(bc));
	CHECK_EQ(shmcap_channel_fd(bc), shmcap_channel_fd(bc));
	CHECK_ERR(shmcap_channel_fd(bp), -EINVAL);
	shmcap_channel_close(bp);
	shmcap_channel_close(bc);
	shmcap_cap_close(rb);
	shmcap_cap_close(n);
	CHECK_EQ(t_count_fds(), fds);
}

/*
 * A producer child, as id: free_n messages at once, then bursts of burst
 * messages, each after a byte on go; then it closes. It attaches the
 * notifier from the capability inherited over fork.
 */
static pid_t producer(shmcap_cap *r, shmcap_cap *n, uint32_t id,
		      uint64_t free_n, int bursts, int burst, int go)
{
	shmcap_channel *p;
	uint64_t seq = 0;
	int i, k;
	char b;
	pid_t pid = t_fork_child(100);

	if (pid > 0)
		return pid;
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
	CHECK_OK(shmcap_channel_set_notifier(p, n));
	while (seq < free_n)
		send_msg(p, id, seq++);
	for (i = 0; i < bursts; i++) {
		CHECK(read(go, &b, 1) == 1);
		for (k = 0; k < burst; k++)
			send_msg(p, id, seq++);
	}
	if (bursts) /* and one more go before closing */
		CHECK(read(go, &b, 1) == 1);
	shmcap_channel_close(p);
	t_child_pass();
}

/*
 * Rounds of bursts: the consumer drains a burst, goes idle (-EAGAIN arms),
 * sees nothing until the producer's next burst, then exactly one signal.
 * Before that, a phase of blocking receives never arms: no signal at all.
 */
static void test_spsc_rounds(void)
{
	enum { ROUNDS = 50, BURST = 5, FIRST = 1000 };
	shmcap_cap *r, *n;
	shmcap_channel *c;
	uint64_t next[1] = { 0 };
	struct msg m;
	const void *q;
	int go[2], ep, i, k, ret;
	pid_t pid;

	ep = consumer_new(SHMCAP_CHANNEL_SPSC, 1024, &r, &n, &c);
	CHECK(pipe(go) == 0);
	pid = producer(r, n, 0, FIRST, ROUNDS, BURST, go[0]);
	close(go[0]);

	/* Blocking receives, a ring of 1024 bytes: never idle, no signal. */
	for (i = 0; i < FIRST; i++) {
		ret = shmcap_channel_recv(c, &m, sizeof(m), LONG_WAIT);
		recv_check(c, ret, &m, next, 1);
	}
	CHECK_EQ(ep_ready(ep, 0), 0);
	CHECK_EQ(take_signals(c), 0);

	for (i = 0; i < ROUNDS; i++) {
		/* Drained: the non-blocking receive arms; nothing pending. */
		CHECK_ERR(shmcap_channel_recv(c, &m, sizeof(m), 0), -EAGAIN);
		CHECK_ERR(shmcap_channel_recv(c, &m, sizeof(m), 0), -EAGAIN);
		CHECK_EQ(ep_ready(ep, 0), 0);
		CHECK(write(go[1], "g", 1) == 1);
		CHECK_EQ(ep_ready(ep, LONG_MS), 1);
		if (i % 2) /* count the signals ourselves: one per arming */
			CHECK_EQ(take_signals(c), 1);
		for (k = 0; k < BURST; k++) {
			/*
			 * The first is there; the others may still be on
			 * their way: blocking receives, which never arm.
			 * Mixed: in place and copying.
			 */
			if (k % 2 == 0) {
				ret = shmcap_channel_recv_ptr(
					c, &q, NULL, k ? LONG_WAIT : 0);
				CHECK_EQ(ret, sizeof(m));
				memcpy(&m, q, sizeof(m));
				CHECK_OK(shmcap_channel_release(c));
			} else {
				ret = shmcap_channel_recv(c, &m, sizeof(m),
							  LONG_WAIT);
			}
			recv_check(c, ret, &m, next, 1);
			/* The first receive emptied the counter. */
			CHECK_EQ(ep_ready(ep, 0), 0);
		}
	}
	/* The producer's close rings too: end of stream. */
	CHECK_ERR(shmcap_channel_recv(c, &m, sizeof(m), 0), -EAGAIN);
	CHECK_EQ(ep_ready(ep, 0), 0);
	CHECK(write(go[1], "g", 1) == 1);
	t_reap_ok(pid, 30);
	CHECK_EQ(ep_ready(ep, LONG_MS), 1);
	CHECK_ERR(shmcap_channel_recv(c, &m, sizeof(m), 0), -EPIPE);
	CHECK_EQ(next[0], FIRST + ROUNDS * BURST);
	close(go[1]);
	close(ep);
	shmcap_channel_close(c);
	shmcap_cap_close(n);
	shmcap_cap_close(r);
}

/*
 * An event loop: epoll, then non-blocking receives until -EAGAIN, until
 * -EPIPE. One signal per arming at most, and a receive arms at most once;
 * a receive whose first look finds nothing arms and may then find a
 * message that came meanwhile, so the armings are not the -EAGAIN count,
 * and the bound checked is the receive calls (test_spsc_rounds checks the
 * exact count where it is deterministic).
 */
static void event_loop(shmcap_channel *c, int ep, uint64_t *next, int nprod)
{
	uint64_t signals = 0, eagains = 0, wakeups = 0, calls = 0;
	struct msg m;
	int ret;

	for (;;) {
		ret = shmcap_channel_recv(c, &m, sizeof(m), 0);
		calls++;
		if (ret == -EPIPE)
			break;
		if (ret == -EAGAIN) {
			eagains++;
			if (!ep_ready(ep, LONG_MS))
				FAIL("no readiness");
			wakeups++;
			signals += take_signals(c);
			continue;
		}
		recv_check(c, ret, &m, next, nprod);
	}
	signals += take_signals(c);
	if (signals > calls)
		FAIL("%llu signals for %llu receives",
		     (unsigned long long)signals, (unsigned long long)calls);
	printf("  %llu receives, %llu -EAGAIN, %llu wake-ups, %llu signals\n",
	       (unsigned long long)calls, (unsigned long long)eagains,
	       (unsigned long long)wakeups, (unsigned long long)signals);
}

/* Free-running producers (one SPSC, or NPROD MPSC) and an event loop. */
static void test_stream(int kind, int nprod, uint64_t per)
{
	shmcap_cap *r, *n;
	shmcap_channel *c;
	uint64_t next[NPROD] = { 0 };
	pid_t pids[NPROD];
	int ep, i;

	ep = consumer_new(kind, 4096, &r, &n, &c);
	for (i = 0; i < nprod; i++)
		pids[i] = producer(r, n, (uint32_t)i, per, 0, 0, -1);
	event_loop(c, ep, next, nprod);
	for (i = 0; i < nprod; i++) {
		t_reap_ok(pids[i], 30);
		CHECK_EQ(next[i], per);
	}
	close(ep);
	shmcap_channel_close(c);
	shmcap_cap_close(n);
	shmcap_cap_close(r);
}

/*
 * Producers killed: the SPSC one after its messages (the consumer, idle,
 * learns of the death by receiving after an epoll timeout), and an MPSC
 * one holding a reservation at head while another commits behind it.
 */
static void test_killed(int kind)
{
	shmcap_cap *r, *n;
	shmcap_channel *c;
	uint64_t next[2] = { 0, 0 };
	struct msg m;
	int64_t deadline;
	int ep, ret, sync[2], go[2];
	pid_t victim, other = -1;
	char b;

	ep = consumer_new(kind, 4096, &r, &n, &c);
	CHECK(pipe(sync) == 0);
	CHECK(pipe(go) == 0);
	CHECK_ERR(shmcap_channel_recv(c, &m, sizeof(m), 0), -EAGAIN); /* arm */
	victim = t_fork_child(100);
	if (victim == 0) {
		shmcap_channel *p;
		void *vp;

		CHECK_OK(
			shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
		CHECK_OK(shmcap_channel_set_notifier(p, n));
		send_msg(p, 0, 0);
		send_msg(p, 0, 1);
		if (kind == SHMCAP_CHANNEL_MPSC)
			CHECK_OK(shmcap_channel_reserve(p, sizeof(m), &vp, 0));
		CHECK(write(sync[1], "s", 1) == 1);
		for (;;)
			pause();
	}
	CHECK(read(sync[0], &b, 1) == 1);
	CHECK_EQ(ep_ready(ep, LONG_MS), 1);
	ret = shmcap_channel_recv(c, &m, sizeof(m), 0);
	recv_check(c, ret, &m, next, 2);
	ret = shmcap_channel_recv(c, &m, sizeof(m), 0);
	recv_check(c, ret, &m, next, 2);
	if (kind == SHMCAP_CHANNEL_MPSC) {
		/* A second producer commits behind the dead reservation. */
		other = producer(r, n, 1, 0, 1, 1, go[0]);
		CHECK(write(go[1], "gg", 2) == 2);
	}
	CHECK(kill(victim, SIGKILL) == 0);
	t_check_killed(victim, 30);
	if (other > 0)
		t_reap_ok(other, 30);
	/* Nobody rings for the dead: poll with a timeout, then receive. */
	deadline = t_now_ns() + LONG_WAIT;
	for (;;) {
		ret = shmcap_channel_recv(c, &m, sizeof(m), 0);
		if (ret == -EPIPE)
			break;
		if (ret == -EAGAIN) {
			if (t_now_ns() > deadline)
				FAIL("no end of stream");
			ep_ready(ep, 10);
			take_signals(c);
			continue;
		}
		recv_check(c, ret, &m, next, 2);
	}
	CHECK_EQ(next[0], 2);
	CHECK_EQ(next[1], kind == SHMCAP_CHANNEL_MPSC ? 1 : 0);
	close(sync[0]);
	close(sync[1]);
	close(go[0]);
	close(go[1]);
	close(ep);
	shmcap_channel_close(c);
	shmcap_cap_close(n);
	shmcap_cap_close(r);
}

/* Send one byte to the socket fd is bound to, from another socket. */
static void stranger_rings(int fd)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(a);
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	CHECK(s >= 0);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	CHECK(sendto(s, "x", 1, 0, (struct sockaddr *)&a, len) == 1);
	close(s);
}

/*
 * Broadcast, one process: readiness exactly when a subscriber that went
 * idle gets a message, for that subscriber only; none while it is busy;
 * the producer's close rings too.
 */
static void test_broadcast_rounds(void)
{
	shmcap_cap *r;
	shmcap_channel *p, *a, *b;
	struct msg m;
	int epa, epb, i;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_BROADCAST, 4096, MAX, 0,
				       &r));
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &a));
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &b));
	epa = ep_new(a);
	epb = ep_new(b);
	CHECK(shmcap_channel_fd(a) != shmcap_channel_fd(b));
	for (i = 0; i < 3; i++) {
		/* a goes idle (arms); b does not look. */
		CHECK_ERR(shmcap_channel_recv(a, &m, sizeof(m), 0), -EAGAIN);
		CHECK_EQ(ep_ready(epa, 0), 0);
		send_msg(p, 0, 2 * (uint64_t)i);
		CHECK_EQ(ep_ready(epa, LONG_MS), 1);
		CHECK_EQ(ep_ready(epb, 0), 0);
		/* Busy: a second message rings nobody. */
		CHECK_EQ(shmcap_channel_recv(a, &m, sizeof(m), 0), sizeof(m));
		CHECK_EQ(m.seq, 2 * (uint64_t)i);
		CHECK_EQ(ep_ready(epa, 0), 0);
		send_msg(p, 0, 2 * (uint64_t)i + 1);
		CHECK_EQ(ep_ready(epa, 0), 0);
		CHECK_EQ(shmcap_channel_recv(a, &m, sizeof(m), 0), sizeof(m));
		CHECK_EQ(m.seq, 2 * (uint64_t)i + 1);
		/* b reads at its own pace, and was never rung. */
		CHECK_EQ(shmcap_channel_recv(b, &m, sizeof(m), 0), sizeof(m));
		CHECK_EQ(shmcap_channel_recv(b, &m, sizeof(m), 0), sizeof(m));
		CHECK_EQ(ep_ready(epb, 0), 0);
	}
	/* A stranger's datagram is only a spurious readiness, once. */
	CHECK_ERR(shmcap_channel_recv(a, &m, sizeof(m), 0), -EAGAIN);
	CHECK_ERR(shmcap_channel_recv(b, &m, sizeof(m), 0), -EAGAIN);
	stranger_rings(shmcap_channel_fd(a));
	CHECK_EQ(ep_ready(epa, LONG_MS), 1);
	CHECK_ERR(shmcap_channel_recv(a, &m, sizeof(m), 0), -EAGAIN);
	CHECK_EQ(ep_ready(epa, 0), 0);
	/* Closing the producer rings every armed subscriber. */
	shmcap_channel_close(p);
	CHECK_EQ(ep_ready(epa, LONG_MS), 1);
	CHECK_EQ(ep_ready(epb, LONG_MS), 1);
	CHECK_ERR(shmcap_channel_recv(a, &m, sizeof(m), 0), -EPIPE);
	CHECK_ERR(shmcap_channel_recv(b, &m, sizeof(m), 0), -EPIPE);
	close(epa);
	close(epb);
	shmcap_channel_close(a);
	shmcap_channel_close(b);
	shmcap_cap_close(r);
}

/* A subscriber's event loop over its own bell, until -EPIPE. */
static void bc_event_loop(shmcap_channel *c, uint64_t per)
{
	uint64_t next = 0, wakeups = 0;
	int ep = ep_new(c), ret;
	struct msg m;

	for (;;) {
		ret = shmcap_channel_recv(c, &m, sizeof(m), 0);
		if (ret == -EPIPE)
			break;
		if (ret == -EAGAIN) {
			if (!ep_ready(ep, LONG_MS))
				FAIL("no readiness");
			wakeups++;
			continue;
		}
		CHECK_EQ(ret, sizeof(m));
		CHECK_EQ(m.seq, next);
		next++;
	}
	CHECK_EQ(next, per);
	printf("  subscriber: %llu messages, %llu wake-ups\n",
	       (unsigned long long)next, (unsigned long long)wakeups);
	close(ep);
}

/*
 * Broadcast, processes: NPROD subscribers in event loops, each seeing
 * every message in order; the producer pauses now and then so that they
 * go idle and must be rung.
 */
static void test_broadcast_stream(uint64_t per)
{
	shmcap_cap *r;
	shmcap_channel *p, *c;
	pid_t pids[NPROD];
	uint64_t seq;
	int i;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_BROADCAST, 4096, MAX, 0,
				       &r));
	for (i = 0; i < NPROD; i++) {
		pids[i] = t_fork_attached(r, SHMCAP_CHANNEL_CONSUMER, 100, &c);
		if (pids[i] == 0) {
			bc_event_loop(c, per);
			shmcap_channel_close(c);
			t_child_pass();
		}
	}
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
	for (seq = 0; seq < per; seq++) {
		if (seq % 1000 == 0)
			t_sleep_ns(200000);
		send_msg(p, 0, seq);
	}
	shmcap_channel_close(p);
	for (i = 0; i < NPROD; i++)
		t_reap_ok(pids[i], 60);
	shmcap_cap_close(r);
}

/*
 * Broadcast: a subscriber killed with SIGKILL while armed. The producer
 * goes on (the dead subscriber is left out of its room once found dead),
 * a live subscriber is still rung and gets every message, and the count
 * of armed subscribers does not stay inflated by the dead one.
 */
static void test_broadcast_killed(void)
{
	const struct shmcap_channel_ctrl *ctrl;
	shmcap_channel *p, *live, *c;
	shmcap_cap *r;
	shmcap_map *m;
	struct msg msg;
	uint64_t seq, next = 0;
	int ep, ret;
	pid_t pid;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_BROADCAST, 4096, MAX, 0,
				       &r));
	ctrl = (const void *)t_channel_map(r, &m);
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_CONSUMER, 0, &live));
	pid = t_fork_attached(r, SHMCAP_CHANNEL_CONSUMER, 60, &c);
	if (pid == 0) {
		CHECK_OK(shmcap_channel_fd(c));
		/* Armed, then killed while it waits. */
		CHECK_ERR(shmcap_channel_recv(c, &msg, sizeof(msg), 0),
			  -EAGAIN);
		CHECK_EQ(t_load32(&ctrl->prod.cons_armed), 1);
		for (;;)
			pause();
	}
	while (t_load32(&ctrl->prod.cons_armed) == 0)
		t_sleep_ns(100000);
	CHECK(kill(pid, SIGKILL) == 0);
	t_check_killed(pid, 30);
	ep = ep_new(live);
	CHECK_ERR(shmcap_channel_recv(live, &msg, sizeof(msg), 0), -EAGAIN);
	CHECK_OK(shmcap_channel_open(r, SHMCAP_CHANNEL_PRODUCER, 0, &p));
	/* More than the ring holds: the dead subscriber must be passed. */
	for (seq = 0; seq < 1000; seq++) {
		send_msg(p, 0, seq);
		for (;;) {
			ret = shmcap_channel_recv(live, &msg, sizeof(msg), 0);
			if (ret == -EAGAIN)
				break;
			CHECK_EQ(ret, sizeof(msg));
			CHECK_EQ(msg.seq, next);
			next++;
		}
		if (next <= seq)
			CHECK_EQ(ep_ready(ep, LONG_MS), 1);
	}
	while (next < 1000) {
		CHECK_EQ(shmcap_channel_recv(live, &msg, sizeof(msg),
					     LONG_WAIT),
			 sizeof(msg));
		CHECK_EQ(msg.seq, next);
		next++;
	}
	/* The dead one's arming was taken back when it was rung. */
	CHECK(t_load32(&ctrl->prod.cons_armed) <= 1);
	shmcap_channel_close(p);
	close(ep);
	shmcap_channel_close(live);
	shmcap_map_unmap(m);
	shmcap_cap_close(r);
}

int main(void)
{
	uint64_t per = t_scaled(T_TSAN ? 20000 : 200000);

	t_rng_seed();
	t_watchdog(110);
	test_bad_input();
	test_spsc_rounds();
	printf("SPSC stream:\n");
	test_stream(SHMCAP_CHANNEL_SPSC, 1, per);
	printf("MPSC stream, %d producers:\n", NPROD);
	test_stream(SHMCAP_CHANNEL_MPSC, NPROD, per / NPROD);
	test_killed(SHMCAP_CHANNEL_SPSC);
	test_broadcast_rounds();
	test_broadcast_killed();
	printf("broadcast stream, %d subscribers:\n", NPROD);
	test_broadcast_stream(per / 4);
	test_killed(SHMCAP_CHANNEL_MPSC);
	return T_EXIT_PASS;
}
