/* Description: notifiers: signal/wait counts, timeouts, epoll readiness, rights, transfer to a child and back, tokens, hostile descriptors, a peer clearing O_NONBLOCK, a killed waiter */
/* SPDX-License-Identifier: MIT */
/*
 * Usage: t_notifier [ROUNDS]
 *
 * ROUNDS is the number of round trips between this process and a forked
 * child over two notifiers sent to it (default 1000), and the number of
 * signals each of two children sends in the counting test. Without an
 * argument, SHMCAP_TEST_SCALE (a factor such as 0.1 or 10) scales the
 * default.
 *
 * Timing never decides a verdict: waits that must be woken wait without a
 * limit (a hang is caught by the watchdog); timeouts appear only where
 * -ETIMEDOUT is the thing tested.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"

#define SEC ((int64_t)1000000000)
#define MSEC ((int64_t)1000000)
#define CHILD_TIMEOUT 60
#define MAXC SHMCAP_MSG_MAX_CAPS
/* The largest value an eventfd counter holds. */
#define EVENTFD_MAX 0xfffffffffffffffeull

static unsigned long rounds;

/* ------------------------------------------------------------------------
 * Helpers
 */

/* Add v to the eventfd counter behind cap with write(2), bypassing shmcap. */
static void raw_add(const shmcap_cap *cap, uint64_t v)
{
	CHECK_EQ(write(shmcap_cap_fd(cap), &v, sizeof(v)), (ssize_t)sizeof(v));
}

/* Signal, which must succeed. */
static void ring(shmcap_cap *n)
{
	CHECK_ERR(shmcap_notifier_signal(n), 0);
}

static int epoll_ready(int ep)
{
	struct epoll_event ev;
	int n = epoll_wait(ep, &ev, 1, 0);

	CHECK(n >= 0);
	if (n == 1)
		CHECK(ev.events & EPOLLIN);
	return n;
}

/* A message with one descriptor, claimed to be of type with rights. */
static void send_claimed(int sock, int fd, uint32_t type, uint32_t rights)
{
	struct t_wire_hdr h;

	t_wire_init(&h, 1, rights, 0);
	h.caps[0].type = type;
	t_raw_send(sock, &h, sizeof(h), &fd, 1);
}

/* ------------------------------------------------------------------------
 * One process
 */

static void test_create(void)
{
	char path[64], link[64];
	shmcap_cap *n = NULL;
	ssize_t len;
	int fd;

	CHECK_ERR(shmcap_notifier_create(NULL), -EINVAL);
	CHECK_OK(shmcap_notifier_create(&n));
	CHECK_NOTNULL(n);
	CHECK_EQ(shmcap_cap_type(n), SHMCAP_TYPE_NOTIFIER);
	CHECK_EQ(shmcap_cap_rights(n), SHMCAP_RIGHTS_NOTIFIER);
	fd = shmcap_cap_fd(n);
	CHECK(fd >= 0);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	len = readlink(path, link, sizeof(link) - 1);
	CHECK(len > 0);
	link[len] = '\0';
	CHECK_STR_EQ(link, "anon_inode:[eventfd]");

	/* Region calls refuse it. */
	{
		uint64_t size;
		shmcap_map *m;

		CHECK_ERR(shmcap_region_size(n, &size), -EINVAL);
		CHECK_ERR(shmcap_region_flags(n), -EINVAL);
		CHECK_ERR(shmcap_region_map(n, 0, 0, NULL, SHMCAP_MAP_READ, &m),
			  -EINVAL);
	}
	shmcap_cap_close(n);
}

static void test_signal_wait(void)
{
	shmcap_cap *n;
	int i;

	CHECK_OK(shmcap_notifier_create(&n));

	/* The very first signal, checked on its own. */
	ring(n);
	CHECK_ERR(shmcap_notifier_wait(n, 0), 1);

	/* Nothing pending: -ETIMEDOUT, at once or after a while. */
	CHECK_ERR(shmcap_notifier_wait(n, 0), -ETIMEDOUT);
	CHECK_ERR(shmcap_notifier_wait(n, 1), -ETIMEDOUT);
	CHECK_ERR(shmcap_notifier_wait(n, 5 * MSEC), -ETIMEDOUT);

	/* Three signals, one wait: the count. */
	for (i = 0; i < 3; i++)
		ring(n);
	CHECK_ERR(shmcap_notifier_wait(n, SHMCAP_FOREVER), 3);
	CHECK_ERR(shmcap_notifier_wait(n, 0), -ETIMEDOUT);
	ring(n);
	CHECK_ERR(shmcap_notifier_wait(n, 5 * SEC), 1);
	ring(n);
	ring(n);
	CHECK_ERR(shmcap_notifier_wait(n, 0), 2);

	/* Counts above INT_MAX are reported as INT_MAX, and all taken. */
	raw_add(n, (uint64_t)INT_MAX + 5);
	CHECK_ERR(shmcap_notifier_wait(n, 0), INT_MAX);
	CHECK_ERR(shmcap_notifier_wait(n, 0), -ETIMEDOUT);

	/*
	 * A counter at its maximum: signal must not block (the notifier
	 * is non-blocking) and is not an error, the bell already rings.
	 */
	raw_add(n, EVENTFD_MAX);
	CHECK_ERR(shmcap_notifier_signal(n), 0);
	CHECK_ERR(shmcap_notifier_signal(n), 0);
	CHECK_ERR(shmcap_notifier_wait(n, 0), INT_MAX);
	CHECK_ERR(shmcap_notifier_wait(n, 0), -ETIMEDOUT);

	/* Bad input. */
	CHECK_ERR(shmcap_notifier_signal(NULL), -EINVAL);
	CHECK_ERR(shmcap_notifier_wait(NULL, 0), -EINVAL);
	CHECK_ERR(shmcap_notifier_wait(NULL, SHMCAP_FOREVER), -EINVAL);
	{
		shmcap_cap *region;

		CHECK_OK(shmcap_region_create(1, 0, &region));
		CHECK_ERR(shmcap_notifier_signal(region), -EINVAL);
		CHECK_ERR(shmcap_notifier_wait(region, 0), -EINVAL);
		CHECK_ERR(shmcap_notifier_wait(region, SHMCAP_FOREVER),
			  -EINVAL);
		/* A region cannot be given notifier rights. */
		{
			shmcap_cap *d;

			CHECK_ERR(shmcap_cap_derive(region, SHMCAP_RIGHT_SIGNAL,
						    &d),
				  -EPERM);
		}
		shmcap_cap_close(region);
	}
	shmcap_cap_close(n);
}

/* The descriptor is readable in epoll (and poll) while signals wait. */
static void test_epoll(void)
{
	struct epoll_event ev;
	struct pollfd p;
	shmcap_cap *n;
	int ep;

	CHECK_OK(shmcap_notifier_create(&n));
	ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(ep >= 0);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, shmcap_cap_fd(n), &ev), 0);

	CHECK_EQ(epoll_ready(ep), 0);
	ring(n);
	CHECK_EQ(epoll_ready(ep), 1);
	CHECK_EQ(epoll_ready(ep), 1); /* level-triggered: until taken */
	p.fd = shmcap_cap_fd(n);
	p.events = POLLIN;
	CHECK_EQ(poll(&p, 1, 0), 1);
	CHECK_ERR(shmcap_notifier_wait(n, 0), 1);
	CHECK_EQ(epoll_ready(ep), 0);
	CHECK_EQ(poll(&p, 1, 0), 0);
	ring(n);
	ring(n);
	CHECK_EQ(epoll_ready(ep), 1);
	CHECK_ERR(shmcap_notifier_wait(n, SHMCAP_FOREVER), 2);
	CHECK_EQ(epoll_ready(ep), 0);

	close(ep);
	shmcap_cap_close(n);
}

/* SIGNAL and WAIT rights, and derived capabilities sharing one counter. */
static void test_rights(void)
{
	shmcap_cap *n, *sig, *wt, *d;

	CHECK_OK(shmcap_notifier_create(&n));
	CHECK_OK(shmcap_cap_derive(n, SHMCAP_RIGHT_SIGNAL, &sig));
	CHECK_OK(shmcap_cap_derive(n, SHMCAP_RIGHT_WAIT, &wt));
	CHECK_EQ(shmcap_cap_type(sig), SHMCAP_TYPE_NOTIFIER);
	CHECK_EQ(shmcap_cap_rights(sig), SHMCAP_RIGHT_SIGNAL);
	CHECK_EQ(shmcap_cap_rights(wt), SHMCAP_RIGHT_WAIT);
	CHECK(shmcap_cap_fd(sig) != shmcap_cap_fd(n));
	CHECK(fcntl(shmcap_cap_fd(sig), F_GETFD) & FD_CLOEXEC);

	/* SIGNAL only cannot wait; WAIT only cannot signal. */
	CHECK_ERR(shmcap_notifier_wait(sig, 0), -EACCES);
	CHECK_ERR(shmcap_notifier_wait(sig, SHMCAP_FOREVER), -EACCES);
	CHECK_ERR(shmcap_notifier_signal(wt), -EACCES);
	/* The refused calls changed nothing. */
	CHECK_ERR(shmcap_notifier_wait(n, 0), -ETIMEDOUT);

	/* One counter behind all three. */
	ring(sig);
	ring(sig);
	ring(n);
	CHECK_ERR(shmcap_notifier_wait(wt, SHMCAP_FOREVER), 3);
	ring(sig);
	CHECK_ERR(shmcap_notifier_wait(n, 0), 1);

	/* Derivation never adds rights. */
	CHECK_ERR(shmcap_cap_derive(sig, SHMCAP_RIGHT_WAIT, &d), -EPERM);
	CHECK_ERR(shmcap_cap_derive(wt, SHMCAP_RIGHTS_NOTIFIER, &d), -EPERM);
	CHECK_ERR(shmcap_cap_derive(n, SHMCAP_RIGHT_READ, &d), -EPERM);
	CHECK_ERR(shmcap_cap_derive(n, 0, &d), -EINVAL);
	CHECK_ERR(shmcap_cap_derive(n, 0x100, &d), -EINVAL);
	CHECK_OK(shmcap_cap_derive(sig, SHMCAP_RIGHT_SIGNAL, &d));
	CHECK_EQ(shmcap_cap_rights(d), SHMCAP_RIGHT_SIGNAL);

	/* The original closed: the derived ones still work. */
	shmcap_cap_close(n);
	ring(d);
	CHECK_ERR(shmcap_notifier_wait(wt, 0), 1);
	shmcap_cap_close(d);
	shmcap_cap_close(sig);
	shmcap_cap_close(wt);
}

/*
 * A token for a notifier resolves, in this process and in a child, to a
 * working notifier with the rights of the capability it was issued for.
 */
static void test_token(void)
{
	char token[SHMCAP_TOKEN_MAX], token_sig[SHMCAP_TOKEN_MAX];
	shmcap_issuer *iss;
	shmcap_cap *n, *sig, *got;
	pid_t pid;

	CHECK_OK(shmcap_notifier_create(&n));
	CHECK_OK(shmcap_cap_derive(n, SHMCAP_RIGHT_SIGNAL, &sig));
	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
	CHECK(shmcap_token_issue(iss, n, 0, token, sizeof(token)) > 0);
	CHECK(shmcap_token_issue(iss, sig, 0, token_sig, sizeof(token_sig)) >
	      0);
	shmcap_cap_close(sig);

	CHECK_OK(shmcap_token_resolve(token, 30 * SEC, &got));
	CHECK_EQ(shmcap_cap_type(got), SHMCAP_TYPE_NOTIFIER);
	CHECK_EQ(shmcap_cap_rights(got), SHMCAP_RIGHTS_NOTIFIER);
	ring(got);
	CHECK_ERR(shmcap_notifier_wait(n, SHMCAP_FOREVER), 1);
	ring(n);
	CHECK_ERR(shmcap_notifier_wait(got, SHMCAP_FOREVER), 1);
	shmcap_cap_close(got);

	CHECK_OK(shmcap_token_resolve(token_sig, 30 * SEC, &got));
	CHECK_EQ(shmcap_cap_type(got), SHMCAP_TYPE_NOTIFIER);
	CHECK_EQ(shmcap_cap_rights(got), SHMCAP_RIGHT_SIGNAL);
	CHECK_ERR(shmcap_notifier_wait(got, 0), -EACCES);
	ring(got);
	CHECK_ERR(shmcap_notifier_wait(n, 0), 1);
	shmcap_cap_close(got);

	/* Resolved by another process, which rings it three times. */
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		int i;

		CHECK_OK(shmcap_token_resolve(token, 30 * SEC, &got));
		CHECK_EQ(shmcap_cap_type(got), SHMCAP_TYPE_NOTIFIER);
		for (i = 0; i < 3; i++)
			ring(got);
		shmcap_cap_close(got);
		t_child_pass();
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
	CHECK_ERR(shmcap_notifier_wait(n, SHMCAP_FOREVER), 3);

	shmcap_issuer_destroy(iss);
	CHECK_ERR(shmcap_token_resolve(token, 30 * SEC, &got), -ESRCH);
	shmcap_cap_close(n);
}

/*
 * Received descriptors are checked: an eventfd claimed as a notifier is
 * one (its rights cut down to notifier rights), anything else claimed as
 * a notifier, or an eventfd claimed as a region, is -EBADMSG, and nothing
 * is left open.
 */
static void test_hostile_descriptors(void)
{
	shmcap_cap *caps[MAXC], *region;
	int sv[2], evfd, pfd[2], memfd, fds, ret;
	size_t n;
	char buf[16];

	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(evfd >= 0);
	CHECK_EQ(pipe2(pfd, O_CLOEXEC), 0);
	memfd = memfd_create("t-notifier", MFD_CLOEXEC);
	CHECK(memfd >= 0);
	CHECK_EQ(ftruncate(memfd, 4096), 0);
	fds = t_count_fds();

	/* An eventfd with every right claimed: notifier rights only. */
	send_claimed(sv[0], evfd, SHMCAP_TYPE_NOTIFIER, 0xffffffffu);
	ret = shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(buf), NULL,
			  SHMCAP_MSG_DONTWAIT);
	CHECK_EQ(ret, 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(shmcap_cap_type(caps[0]), SHMCAP_TYPE_NOTIFIER);
	CHECK_EQ(shmcap_cap_rights(caps[0]), SHMCAP_RIGHTS_NOTIFIER);
	ring(caps[0]);
	{
		uint64_t v = 0;

		CHECK_EQ(read(evfd, &v, sizeof(v)), (ssize_t)sizeof(v));
		CHECK_EQ(v, 1);
	}
	shmcap_cap_close(caps[0]);
	CHECK_EQ(t_count_fds(), fds);

	/* SIGNAL only claimed: that is all it gets. */
	send_claimed(sv[0], evfd, SHMCAP_TYPE_NOTIFIER, SHMCAP_RIGHT_SIGNAL);
	CHECK_EQ(shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(buf), NULL,
			     SHMCAP_MSG_DONTWAIT),
		 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(shmcap_cap_rights(caps[0]), SHMCAP_RIGHT_SIGNAL);
	CHECK_ERR(shmcap_notifier_wait(caps[0], 0), -EACCES);
	shmcap_cap_close(caps[0]);

	/* Not notifiers, or no notifier right: refused, nothing kept. */
	{
		static const struct {
			const char *what;
			int which; /* 0 eventfd, 1 pipe, 2 memfd */
			uint32_t type, rights;
		} bad[] = {
			{ "pipe as notifier", 1, SHMCAP_TYPE_NOTIFIER,
			  SHMCAP_RIGHTS_NOTIFIER },
			{ "memfd as notifier", 2, SHMCAP_TYPE_NOTIFIER,
			  SHMCAP_RIGHTS_NOTIFIER },
			{ "eventfd as region", 0, SHMCAP_TYPE_REGION,
			  SHMCAP_RIGHTS_REGION },
			{ "eventfd with region rights only", 0,
			  SHMCAP_TYPE_NOTIFIER, SHMCAP_RIGHTS_REGION },
			{ "eventfd with no rights", 0, SHMCAP_TYPE_NOTIFIER,
			  0 },
			{ "eventfd of unknown type", 0, 3,
			  SHMCAP_RIGHTS_NOTIFIER },
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			int fd = bad[i].which == 0 ? evfd :
				 bad[i].which == 1 ? pfd[0] :
						     memfd;

			send_claimed(sv[0], fd, bad[i].type, bad[i].rights);
			n = 77;
			ret = shmcap_recv(sv[1], caps, MAXC, &n, buf,
					  sizeof(buf), NULL,
					  SHMCAP_MSG_DONTWAIT);
			if (ret != -EBADMSG)
				FAIL("%s: shmcap_recv returned %d (%s), "
				     "expected EBADMSG",
				     bad[i].what, ret, shmcap_err_name(ret));
			CHECK_EQ(n, 0);
			CHECK_EQ(t_count_fds(), fds);
		}
	}

	/* A region and a notifier in one message: each as what it is. */
	{
		shmcap_cap *nt, *send[2];

		CHECK_OK(shmcap_region_create(4096, 0, &region));
		CHECK_OK(shmcap_notifier_create(&nt));
		send[0] = region;
		send[1] = nt;
		CHECK_OK(shmcap_send(sv[0], send, 2, "rn", 2, 0));
		CHECK_EQ(shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(buf),
				     NULL, 0),
			 2);
		CHECK_EQ(n, 2);
		CHECK_EQ(shmcap_cap_type(caps[0]), SHMCAP_TYPE_REGION);
		CHECK_EQ(shmcap_cap_rights(caps[0]), SHMCAP_RIGHTS_REGION);
		CHECK_EQ(shmcap_cap_type(caps[1]), SHMCAP_TYPE_NOTIFIER);
		CHECK_EQ(shmcap_cap_rights(caps[1]), SHMCAP_RIGHTS_NOTIFIER);
		ring(caps[1]);
		CHECK_ERR(shmcap_notifier_wait(nt, 0), 1);
		shmcap_cap_close(caps[0]);
		shmcap_cap_close(caps[1]);
		shmcap_cap_close(nt);
		shmcap_cap_close(region);
	}

	/*
	 * A semaphore-mode eventfd is an eventfd too: accepted, and its
	 * waits take one signal each (as shmcap.h says), so three signals
	 * are three waits.
	 */
	{
		int sem =
			eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);

		CHECK(sem >= 0);
		send_claimed(sv[0], sem, SHMCAP_TYPE_NOTIFIER,
			     SHMCAP_RIGHTS_NOTIFIER);
		close(sem);
		CHECK_EQ(shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(buf),
				     NULL, SHMCAP_MSG_DONTWAIT),
			 0);
		CHECK_EQ(n, 1);
		CHECK_EQ(shmcap_cap_type(caps[0]), SHMCAP_TYPE_NOTIFIER);
		ring(caps[0]);
		ring(caps[0]);
		ring(caps[0]);
		CHECK_ERR(shmcap_notifier_wait(caps[0], 0), 1);
		CHECK_ERR(shmcap_notifier_wait(caps[0], 0), 1);
		CHECK_ERR(shmcap_notifier_wait(caps[0], SHMCAP_FOREVER), 1);
		CHECK_ERR(shmcap_notifier_wait(caps[0], 0), -ETIMEDOUT);
		shmcap_cap_close(caps[0]);
	}
	CHECK_EQ(t_count_fds(), fds);

	close(sv[0]);
	close(sv[1]);
	close(evfd);
	close(pfd[0]);
	close(pfd[1]);
	close(memfd);
}

/* ------------------------------------------------------------------------
 * Between processes
 */

/*
 * Two notifiers go to a forked child with shmcap_send: one to ring the
 * child (all rights), one the child rings back (SIGNAL only, so it cannot
 * wait on it). rounds round trips, counted on both sides; then the child
 * sends a notifier of its own, which the parent rings.
 */
static void test_transfer(void)
{
	shmcap_cap *to_child, *to_parent, *to_parent_sig, *send[2], *caps[MAXC];
	int sv[2], fds = t_count_fds();
	unsigned long i;
	size_t n;
	char buf[32];
	pid_t pid;

	CHECK_OK(shmcap_notifier_create(&to_child));
	CHECK_OK(shmcap_notifier_create(&to_parent));
	CHECK_OK(shmcap_cap_derive(to_parent, SHMCAP_RIGHT_SIGNAL,
				   &to_parent_sig));
	CHECK_OK(shmcap_socketpair(sv));

	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		shmcap_cap *mine;
		unsigned long got = 0;
		int ret;

		close(sv[0]);
		shmcap_cap_close(to_child);
		shmcap_cap_close(to_parent);
		shmcap_cap_close(to_parent_sig);
		ret = shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(buf), NULL,
				  0);
		CHECK_EQ(ret, 5);
		CHECK_EQ(n, 2);
		CHECK_EQ(memcmp(buf, "bells", 5), 0);
		CHECK_EQ(shmcap_cap_type(caps[0]), SHMCAP_TYPE_NOTIFIER);
		CHECK_EQ(shmcap_cap_rights(caps[0]), SHMCAP_RIGHTS_NOTIFIER);
		CHECK_EQ(shmcap_cap_type(caps[1]), SHMCAP_TYPE_NOTIFIER);
		CHECK_EQ(shmcap_cap_rights(caps[1]), SHMCAP_RIGHT_SIGNAL);
		CHECK_ERR(shmcap_notifier_wait(caps[1], 0), -EACCES);
		for (i = 0; i < rounds; i++) {
			ret = shmcap_notifier_wait(caps[0], SHMCAP_FOREVER);
			if (ret != 1)
				FAIL("child, round %lu: wait gave %d (%s)", i,
				     ret, shmcap_err_name(ret));
			got++;
			ring(caps[1]);
		}
		CHECK_EQ(got, rounds);

		/* One of its own, the other way. */
		CHECK_OK(shmcap_notifier_create(&mine));
		CHECK_OK(shmcap_send(sv[1], &mine, 1, NULL, 0, 0));
		/* Two rings, taken in one wait or two. */
		for (got = 0; got < 2;) {
			ret = shmcap_notifier_wait(mine, SHMCAP_FOREVER);
			CHECK(ret >= 1);
			got += (unsigned long)ret;
		}
		CHECK_EQ(got, 2);
		shmcap_cap_close(mine);
		shmcap_cap_close(caps[0]);
		shmcap_cap_close(caps[1]);
		close(sv[1]);
		t_child_pass();
	}
	close(sv[1]);
	send[0] = to_child;
	send[1] = to_parent_sig;
	CHECK_OK(shmcap_send(sv[0], send, 2, "bells", 5, 0));
	for (i = 0; i < rounds; i++) {
		int ret;

		ring(to_child);
		ret = shmcap_notifier_wait(to_parent, SHMCAP_FOREVER);
		if (ret != 1)
			FAIL("parent, round %lu: wait gave %d (%s)", i, ret,
			     shmcap_err_name(ret));
	}
	CHECK_EQ(shmcap_recv(sv[0], caps, MAXC, &n, NULL, 0, NULL, 0), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(shmcap_cap_type(caps[0]), SHMCAP_TYPE_NOTIFIER);
	CHECK_EQ(shmcap_cap_rights(caps[0]), SHMCAP_RIGHTS_NOTIFIER);
	ring(caps[0]);
	ring(caps[0]);
	t_reap_ok(pid, CHILD_TIMEOUT);
	shmcap_cap_close(caps[0]);
	CHECK_ERR(shmcap_notifier_wait(to_parent, 0), -ETIMEDOUT);
	CHECK_ERR(shmcap_notifier_wait(to_child, 0), -ETIMEDOUT);
	printf("transfer: %lu round trips with a forked child\n", rounds);
	close(sv[0]);
	shmcap_cap_close(to_child);
	shmcap_cap_close(to_parent);
	shmcap_cap_close(to_parent_sig);
	CHECK_EQ(t_count_fds(), fds);
}

/* Two children ring rounds times each; the waits add up to 2 * rounds. */
static void test_counting(void)
{
	unsigned long total = 0;
	shmcap_cap *n;
	pid_t pids[2];
	int k, ret;

	CHECK_OK(shmcap_notifier_create(&n));
	for (k = 0; k < 2; k++) {
		pids[k] = t_fork_child(CHILD_TIMEOUT);
		if (pids[k] == 0) {
			unsigned long i;

			for (i = 0; i < rounds; i++)
				ring(n);
			shmcap_cap_close(n);
			t_child_pass();
		}
	}
	/* Take while they ring; then what is left. */
	while (total < 2 * rounds) {
		ret = shmcap_notifier_wait(n, SHMCAP_FOREVER);
		CHECK(ret >= 1);
		total += (unsigned long)ret;
	}
	for (k = 0; k < 2; k++)
		t_reap_ok(pids[k], CHILD_TIMEOUT);
	CHECK_ERR(shmcap_notifier_wait(n, 0), -ETIMEDOUT);
	CHECK_EQ(total, 2 * rounds);
	shmcap_cap_close(n);
}

/*
 * The descriptor's O_NONBLOCK belongs to the open file description every
 * holder shares. A child clears it; this process's waits must still end
 * at their timeout, and a signal into a full counter must still not block
 * (tried in a child, so that a block is a failure, not a hang here).
 */
static void test_nonblock_cleared(void)
{
	shmcap_cap *n;
	int st, fd;
	pid_t pid;

	CHECK_OK(shmcap_notifier_create(&n));
	fd = shmcap_cap_fd(n);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		CHECK_EQ(fcntl(shmcap_cap_fd(n), F_SETFL, 0), 0);
		shmcap_cap_close(n);
		t_child_pass();
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
	CHECK_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);

	CHECK_ERR(shmcap_notifier_wait(n, 0), -ETIMEDOUT);
	CHECK_ERR(shmcap_notifier_wait(n, 20 * MSEC), -ETIMEDOUT);
	ring(n);
	CHECK_ERR(shmcap_notifier_wait(n, 20 * MSEC), 1);
	CHECK_ERR(shmcap_notifier_wait(n, 0), -ETIMEDOUT);

	/* A full counter on a blocking descriptor: signal must return. */
	raw_add(n, EVENTFD_MAX);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		int ret = shmcap_notifier_signal(n);

		if (ret != 0)
			FAIL("signal into a full counter, O_NONBLOCK cleared: "
			     "%d (%s), expected 0",
			     ret, shmcap_err_name(ret));
		t_child_pass();
	}
	st = t_wait_child(pid, 20);
	if (st == -1)
		FAIL("shmcap_notifier_signal blocked on a full counter after "
		     "a peer cleared O_NONBLOCK");
	CHECK_CHILD_OK(st);
	CHECK_ERR(shmcap_notifier_wait(n, 0), INT_MAX);
	CHECK_ERR(shmcap_notifier_wait(n, 0), -ETIMEDOUT);
	shmcap_cap_close(n);
}

/*
 * A child asleep in shmcap_notifier_wait is killed: the notifier lives on
 * here, signals still work, the dead waiter took nothing, nothing leaks.
 */
static void test_killed_waiter(void)
{
	shmcap_cap *n, *caps[MAXC];
	int sv[2], fds = t_count_fds(), st;
	size_t cnt;
	pid_t pid;

	CHECK_OK(shmcap_notifier_create(&n));
	CHECK_OK(shmcap_socketpair(sv));
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		close(sv[0]);
		shmcap_cap_close(n);
		CHECK_EQ(shmcap_recv(sv[1], caps, MAXC, &cnt, NULL, 0, NULL, 0),
			 0);
		CHECK_EQ(cnt, 1);
		shmcap_notifier_wait(caps[0], SHMCAP_FOREVER);
		FAIL("the waiter was woken, though nobody signalled");
	}
	close(sv[1]);
	CHECK_OK(shmcap_send(sv[0], &n, 1, NULL, 0, 0));
	t_wait_in_poll(pid);
	CHECK_EQ(kill(pid, SIGKILL), 0);
	st = t_wait_child(pid, CHILD_TIMEOUT);
	CHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	close(sv[0]);

	CHECK_ERR(shmcap_notifier_wait(n, 0), -ETIMEDOUT);
	ring(n);
	CHECK_ERR(shmcap_notifier_wait(n, SHMCAP_FOREVER), 1);
	shmcap_cap_close(n);
	CHECK_EQ(t_count_fds(), fds);
}

int main(int argc, char **argv)
{
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
	printf("%lu rounds\n", rounds);

	fds = t_count_fds();
	CHECK(fds > 0);

	test_create();
	test_signal_wait();
	test_epoll();
	test_rights();
	CHECK_EQ(t_count_fds(), fds);
	test_token();
	CHECK_EQ(t_count_fds(), fds);
	test_hostile_descriptors();
	test_transfer();
	test_counting();
	test_nonblock_cleared();
	test_killed_waiter();

	CHECK_EQ(t_count_fds(), fds);
	CHECK_EQ(t_shm_leftovers_prefix("shmcap.t-notifier-"), 0);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
	return T_EXIT_PASS;
}
