/* Description: capabilities and data between processes over Unix sockets */
/* SPDX-License-Identifier: MIT */
/*
 * Every part runs between two processes (fork, or fork and exec of
 * shmcap-test-peer) or feeds the receiver messages it must refuse. Each
 * part counts this process's descriptors before and after, so a descriptor
 * left behind by the library on any path fails the test. Nothing waits for
 * time to pass: processes synchronise through the sockets and pipes
 * themselves, and the watchdog only turns a hang into a failure.
 *
 * The hostile messages are built by hand with the wire header documented
 * in src/transfer.c, which test/util.h repeats (struct t_wire_hdr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"

#define MAXC SHMCAP_MSG_MAX_CAPS
/* Seconds any one child may take. */
#define CHILD_TIMEOUT 60

static long page_size;
static const char *peer_path;
/* Checks that failed without stopping the test; main() fails at the end. */
static int deferred_failures;

/* ------------------------------------------------------------------------
 * Helpers
 */

static void write_region(const shmcap_cap *cap, uint64_t off, const char *text)
{
	int flags = shmcap_region_flags(cap);
	shmcap_map *m;
	void *p;

	CHECK_OK(flags);
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL,
				   SHMCAP_MAP_READ | SHMCAP_MAP_WRITE |
					   (flags & SHMCAP_REGION_UNSEALED ?
						    SHMCAP_MAP_UNSEALED :
						    0),
				   &m));
	CHECK_OK(shmcap_map_ptr(m, off, strlen(text) + 1, &p));
	memcpy(p, text, strlen(text) + 1);
	shmcap_map_unmap(m);
}

/* The region must hold the NUL-terminated text at offset off. */
static void check_region(const shmcap_cap *cap, uint64_t off, const char *text,
			 unsigned int mapflags)
{
	shmcap_map *m;
	void *p;

	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_READ | mapflags,
				   &m));
	CHECK_OK(shmcap_map_ptr(m, off, strlen(text) + 1, &p));
	CHECK_STR_EQ((const char *)p, text);
	shmcap_map_unmap(m);
}

/* Whether two capabilities name the same kernel object. */
static int same_object(const shmcap_cap *a, const shmcap_cap *b)
{
	struct stat sa, sb;

	CHECK_EQ(fstat(shmcap_cap_fd(a), &sa), 0);
	CHECK_EQ(fstat(shmcap_cap_fd(b), &sb), 0);
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void close_caps(shmcap_cap **caps, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		shmcap_cap_close(caps[i]);
		caps[i] = NULL;
	}
}

/*
 * Receive on sock and expect err; whatever the message carried must be
 * closed again, so the count of descriptors is what it was.
 */
#define CHECK_RECV_ERR(sock, err)                                              \
	do {                                                                   \
		shmcap_cap *crx_caps_[MAXC];                                   \
		char crx_buf_[256];                                            \
		size_t crx_n_ = 77;                                            \
		int crx_fds_ = t_count_fds();                                  \
		CHECK_ERR(shmcap_recv((sock), crx_caps_, MAXC, &crx_n_,        \
				      crx_buf_, sizeof(crx_buf_), NULL,        \
				      SHMCAP_MSG_DONTWAIT),                    \
			  (err));                                              \
		CHECK_EQ(crx_n_, 0);                                           \
		CHECK_EQ(t_count_fds(), crx_fds_);                             \
	} while (0)

/*
 * Fork and exec the peer in mode with child_fd (made inheritable in the
 * child only). As nobody, the child drops to uid and gid 65534 first.
 */
static pid_t spawn_peer(const char *mode, int child_fd, int as_nobody)
{
	char fdtext[16];
	pid_t pid;

	snprintf(fdtext, sizeof(fdtext), "%d", child_fd);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int fl = fcntl(child_fd, F_GETFD);

		if (fl < 0 || fcntl(child_fd, F_SETFD, fl & ~FD_CLOEXEC) < 0) {
			perror("clearing FD_CLOEXEC");
			_exit(T_EXIT_FAIL);
		}
		if (as_nobody && (setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
				  setuid(65534) < 0)) {
			perror("dropping to uid 65534");
			_exit(T_EXIT_FAIL);
		}
		/* After setuid, which clears it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(peer_path, peer_path, mode, fdtext, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", peer_path, strerror(errno));
		_exit(as_nobody && errno == EACCES ? T_EXIT_SKIP : T_EXIT_FAIL);
	}
	return pid;
}

/* ------------------------------------------------------------------------
 * Messages between forked processes
 */

/*
 * The child creates ncaps regions (even ones READ and WRITE, odd ones
 * READ only), writes "cap I from PID" into each and sends them with a
 * greeting. The parent checks everything, writes into the writable ones
 * and answers; the child then sees the parent's writes.
 */
static void roundtrip_child(int sock, size_t ncaps)
{
	shmcap_cap *own[MAXC], *caps[MAXC];
	char text[128], buf[128];
	shmcap_peer peer;
	size_t i, n;
	int ret;

	for (i = 0; i < ncaps; i++) {
		shmcap_cap *rw;

		CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &rw));
		snprintf(text, sizeof(text), "cap %zu from %ld", i,
			 (long)getpid());
		write_region(rw, 0, text);
		if (i % 2) {
			CHECK_OK(shmcap_cap_derive(rw, SHMCAP_RIGHT_READ,
						   &own[i]));
			shmcap_cap_close(rw);
		} else {
			own[i] = rw;
		}
	}
	snprintf(text, sizeof(text), "hello with %zu caps from %ld", ncaps,
		 (long)getpid());
	CHECK_OK(shmcap_send(sock, own, ncaps, text, strlen(text), 0));

	memset(&peer, 0, sizeof(peer));
	ret = shmcap_recv(sock, caps, MAXC, &n, buf, sizeof(buf) - 1, &peer, 0);
	CHECK_EQ(ret, strlen("checked"));
	CHECK_EQ(n, 0);
	buf[ret] = '\0';
	CHECK_STR_EQ(buf, "checked");
	CHECK_EQ(peer.pid, getppid());
	CHECK_EQ(peer.uid, getuid());
	CHECK_EQ(peer.gid, getgid());
	for (i = 0; i < ncaps; i += 2) {
		snprintf(text, sizeof(text), "parent was here %zu", i);
		check_region(own[i], 64, text, 0);
	}
	close_caps(own, ncaps);
}

static void test_fork_roundtrip(size_t ncaps)
{
	shmcap_cap *caps[MAXC];
	char want[128], buf[256], text[64];
	int sv[2], fds = t_count_fds(), ret;
	shmcap_peer peer;
	size_t n, i;
	pid_t pid;

	CHECK_OK(shmcap_socketpair(sv));
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		close(sv[0]);
		roundtrip_child(sv[1], ncaps);
		_exit(T_EXIT_PASS);
	}
	close(sv[1]);

	memset(&peer, 0, sizeof(peer));
	n = 12345;
	ret = shmcap_recv(sv[0], caps, MAXC, &n, buf, sizeof(buf) - 1, &peer,
			  0);
	snprintf(want, sizeof(want), "hello with %zu caps from %ld", ncaps,
		 (long)pid);
	CHECK_EQ(ret, strlen(want));
	buf[ret] = '\0';
	CHECK_STR_EQ(buf, want);
	CHECK_EQ(n, ncaps);
	/* The kernel's view of the sender, not the sender's claim. */
	CHECK_EQ(peer.pid, pid);
	CHECK_EQ(peer.uid, getuid());
	CHECK_EQ(peer.gid, getgid());
	for (i = 0; i < n; i++) {
		CHECK_EQ(shmcap_cap_type(caps[i]), SHMCAP_TYPE_REGION);
		snprintf(text, sizeof(text), "cap %zu from %ld", i, (long)pid);
		check_region(caps[i], 0, text, 0);
		if (i % 2) {
			CHECK_EQ(shmcap_cap_rights(caps[i]), SHMCAP_RIGHT_READ);
			CHECK_EQ(t_accmode(caps[i]), O_RDONLY);
		} else {
			CHECK_EQ(shmcap_cap_rights(caps[i]),
				 SHMCAP_RIGHTS_REGION);
			CHECK_EQ(t_accmode(caps[i]), O_RDWR);
			snprintf(text, sizeof(text), "parent was here %zu", i);
			write_region(caps[i], 64, text);
		}
	}
	CHECK_OK(shmcap_send(sv[0], NULL, 0, "checked", strlen("checked"), 0));
	CHECK_CHILD_OK(t_wait_child(pid, CHILD_TIMEOUT));

	/* The child is gone: end of stream. */
	n = 5;
	CHECK_ERR(shmcap_recv(sv[0], caps, MAXC, &n, buf, sizeof(buf), NULL, 0),
		  -EPIPE);
	CHECK_EQ(n, 0);
	close_caps(caps, ncaps);
	close(sv[0]);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: message with %zu caps between forked processes\n", ncaps);
}

/* A message of the largest size: every capability and every data byte. */
static void test_largest_message(void)
{
	shmcap_cap *own[MAXC], *caps[MAXC];
	unsigned char *out, *in;
	int sv[2], fds = t_count_fds(), ret;
	char text[32];
	size_t n, i;

	out = malloc(SHMCAP_MSG_MAX_DATA);
	in = malloc(SHMCAP_MSG_MAX_DATA + 1);
	CHECK_NOTNULL(out);
	CHECK_NOTNULL(in);
	for (i = 0; i < SHMCAP_MSG_MAX_DATA; i++)
		out[i] = (unsigned char)(i * 7 + 3);
	for (i = 0; i < MAXC; i++) {
		CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &own[i]));
		snprintf(text, sizeof(text), "big %zu", i);
		write_region(own[i], 0, text);
	}
	CHECK_OK(shmcap_socketpair(sv));
	CHECK_OK(shmcap_send(sv[0], own, MAXC, out, SHMCAP_MSG_MAX_DATA, 0));
	/* Exactly the right room is enough. */
	ret = shmcap_recv(sv[1], caps, MAXC, &n, in, SHMCAP_MSG_MAX_DATA, NULL,
			  0);
	CHECK_EQ(ret, SHMCAP_MSG_MAX_DATA);
	CHECK(memcmp(in, out, SHMCAP_MSG_MAX_DATA) == 0);
	CHECK_EQ(n, MAXC);
	for (i = 0; i < MAXC; i++) {
		CHECK(same_object(caps[i], own[i]));
		snprintf(text, sizeof(text), "big %zu", i);
		check_region(caps[i], 0, text, SHMCAP_MAP_WRITE);
	}
	close_caps(caps, MAXC);

	/* Capabilities without data, and data without capabilities. */
	CHECK_OK(shmcap_send(sv[0], own, 3, NULL, 0, 0));
	CHECK_EQ(shmcap_recv(sv[1], caps, MAXC, &n, NULL, 0, NULL, 0), 0);
	CHECK_EQ(n, 3);
	close_caps(caps, 3);
	CHECK_OK(shmcap_send(sv[0], NULL, 0, "d", 1, 0));
	CHECK_EQ(shmcap_recv(sv[1], NULL, 0, &n, in, 10, NULL, 0), 1);
	CHECK_EQ(n, 0);

	close_caps(own, MAXC);
	close(sv[0]);
	close(sv[1]);
	free(out);
	free(in);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: largest message (%d caps, %d bytes)\n", MAXC,
	       SHMCAP_MSG_MAX_DATA);
}

/* The named region of test_named_region(), removed even if a check fails. */
static char named_region[64];
static pid_t named_owner;

static void named_cleanup(void)
{
	if (named_region[0] && getpid() == named_owner)
		shmcap_region_unlink(named_region);
}

/* A named region travels like an anonymous one but needs UNSEALED. */
static void test_named_region(void)
{
	char name[64], prefix[64], ack[8];
	int sv[2], fds = t_count_fds();
	shmcap_cap *cap, *got;
	shmcap_map *m;
	size_t n;
	pid_t pid;

	snprintf(prefix, sizeof(prefix), "shmcap.t-transfer-%ld-",
		 (long)getpid());
	t_unique_name(name, sizeof(name), "transfer");
	snprintf(named_region, sizeof(named_region), "%s", name);
	named_owner = getpid();
	CHECK_EQ(atexit(named_cleanup), 0);
	CHECK_OK(shmcap_region_create_named(name, (uint64_t)page_size, 0600,
					    &cap));
	write_region(cap, 0, "named hello");
	CHECK_OK(shmcap_socketpair(sv));
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		close(sv[0]);
		shmcap_cap_close(cap);
		CHECK_OK(shmcap_recv(sv[1], &got, 1, &n, NULL, 0, NULL, 0));
		CHECK_EQ(n, 1);
		CHECK_EQ(shmcap_cap_rights(got), SHMCAP_RIGHTS_REGION);
		CHECK(shmcap_region_flags(got) & SHMCAP_REGION_UNSEALED);
		CHECK_ERR(shmcap_region_map(got, 0, 0, NULL, SHMCAP_MAP_READ,
					    &m),
			  -EPERM);
		check_region(got, 0, "named hello",
			     SHMCAP_MAP_UNSEALED | SHMCAP_MAP_WRITE);
		CHECK_OK(shmcap_region_map(
			got, 0, 0, NULL, SHMCAP_MAP_WRITE | SHMCAP_MAP_UNSEALED,
			&m));
		strcpy((char *)shmcap_map_addr(m) + 100, "named reply");
		shmcap_map_unmap(m);
		shmcap_cap_close(got);
		CHECK_OK(shmcap_send(sv[1], NULL, 0, "done", 4, 0));
		_exit(T_EXIT_PASS);
	}
	close(sv[1]);
	CHECK_OK(shmcap_send(sv[0], &cap, 1, NULL, 0, 0));
	CHECK_EQ(shmcap_recv(sv[0], NULL, 0, &n, ack, sizeof(ack), NULL, 0), 4);
	CHECK_CHILD_OK(t_wait_child(pid, CHILD_TIMEOUT));
	check_region(cap, 100, "named reply", SHMCAP_MAP_UNSEALED);
	CHECK_OK(shmcap_region_unlink(name));
	named_region[0] = '\0';
	shmcap_cap_close(cap);
	close(sv[0]);
	CHECK_EQ(t_shm_leftovers_prefix(prefix), 0);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: named region between forked processes\n");
}

/* ------------------------------------------------------------------------
 * Messages to an exec'd peer
 */

static void test_exec_echo(void)
{
	shmcap_cap *own[MAXC], *caps[MAXC];
	static const size_t counts[] = { 0, 1, MAXC, 2 };
	int sv[2], fds = t_count_fds(), ret;
	char text[64], buf[128];
	shmcap_peer peer;
	size_t n, i, k;
	pid_t pid;

	for (i = 0; i < MAXC; i++) {
		shmcap_cap *rw;

		CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &rw));
		snprintf(text, sizeof(text), "echo %zu", i);
		write_region(rw, 0, text);
		if (i % 3 == 1) {
			CHECK_OK(shmcap_cap_derive(rw, SHMCAP_RIGHT_READ,
						   &own[i]));
			shmcap_cap_close(rw);
		} else {
			own[i] = rw;
		}
	}
	CHECK_OK(shmcap_socketpair(sv));
	pid = spawn_peer("echo", sv[1], 0);
	close(sv[1]);

	for (k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		/* The last message has capabilities and no data. */
		size_t len = counts[k] == 2 ?
				     0 :
				     (size_t)snprintf(text, sizeof(text),
						      "message %zu", k);

		CHECK_OK(shmcap_send(sv[0], own, counts[k], text, len, 0));
		memset(&peer, 0, sizeof(peer));
		ret = shmcap_recv(sv[0], caps, MAXC, &n, buf, sizeof(buf),
				  &peer, 0);
		CHECK_EQ(ret, len);
		CHECK(memcmp(buf, text, len) == 0);
		CHECK_EQ(n, counts[k]);
		CHECK_EQ(peer.pid, pid);
		CHECK_EQ(peer.uid, getuid());
		CHECK_EQ(peer.gid, getgid());
		for (i = 0; i < n; i++) {
			CHECK(same_object(caps[i], own[i]));
			CHECK_EQ(shmcap_cap_rights(caps[i]),
				 shmcap_cap_rights(own[i]));
			CHECK_EQ(t_accmode(caps[i]), t_accmode(own[i]));
			snprintf(text, sizeof(text), "echo %zu", i);
			check_region(caps[i], 0, text, 0);
		}
		close_caps(caps, n);
	}
	/* End of stream tells the peer to finish. */
	close(sv[0]);
	CHECK_CHILD_OK(t_wait_child(pid, CHILD_TIMEOUT));
	close_caps(own, MAXC);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: messages with 0, 1 and %d caps echoed by an exec'd peer\n",
	       MAXC);
}

/*
 * A READ capability arrives as READ, and the exec'd peer shows that the
 * kernel refuses every way to write through it. As nobody (when run as
 * root) the peer also shows that re-opening /proc/self/fd/N is refused.
 */
static void test_exec_recv_ro(int as_nobody)
{
	static const char text[] = "read-only text from the parent";
	int sv[2], fds = t_count_fds(), ret, st;
	shmcap_cap *rw, *ro;
	shmcap_peer peer;
	char buf[64];
	size_t n;
	pid_t pid;

	CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &rw));
	write_region(rw, 0, text);
	CHECK_OK(shmcap_cap_derive(rw, SHMCAP_RIGHT_READ, &ro));
	CHECK_OK(shmcap_socketpair(sv));
	pid = spawn_peer("recv-ro", sv[1], as_nobody);
	close(sv[1]);
	CHECK_OK(shmcap_send(sv[0], &ro, 1, text, strlen(text), 0));
	shmcap_cap_close(ro);

	/* The reply, or end of stream if the peer failed. */
	memset(&peer, 0, sizeof(peer));
	ret = shmcap_recv(sv[0], NULL, 0, &n, buf, sizeof(buf) - 1, &peer, 0);
	st = t_wait_child(pid, CHILD_TIMEOUT);
	if (as_nobody && st != -1 && WIFEXITED(st) &&
	    WEXITSTATUS(st) == T_EXIT_SKIP) {
		printf("skipped: the peer cannot be run as uid 65534 here\n");
	} else {
		CHECK_CHILD_OK(st);
		CHECK_OK(ret);
		buf[ret] = '\0';
		CHECK_STR_EQ(buf, "ro-ok");
		CHECK_EQ(peer.pid, pid);
		CHECK_EQ(peer.uid, as_nobody ? 65534 : getuid());
		CHECK_EQ(peer.gid, as_nobody ? 65534 : getgid());
	}
	/* The region is as the parent left it. */
	check_region(rw, 0, text, 0);
	shmcap_cap_close(rw);
	close(sv[0]);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: READ capability enforced by the kernel in an exec'd "
	       "peer%s\n",
	       as_nobody ? " running as uid 65534" : "");
}

/* A READ and WRITE capability lets the exec'd peer write for the parent. */
static void test_exec_recv_rw(void)
{
	static const char text[] = "hello from the parent";
	int sv[2], fds = t_count_fds(), ret;
	char buf[64], want[128];
	shmcap_peer peer;
	shmcap_cap *rw;
	size_t n;
	pid_t pid;

	CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &rw));
	CHECK_OK(shmcap_socketpair(sv));
	pid = spawn_peer("recv-rw", sv[1], 0);
	close(sv[1]);
	CHECK_OK(shmcap_send(sv[0], &rw, 1, text, strlen(text), 0));
	ret = shmcap_recv(sv[0], NULL, 0, &n, buf, sizeof(buf) - 1, &peer, 0);
	CHECK_CHILD_OK(t_wait_child(pid, CHILD_TIMEOUT));
	CHECK_OK(ret);
	buf[ret] = '\0';
	snprintf(want, sizeof(want), "ack %ld", (long)pid);
	CHECK_STR_EQ(buf, want);
	CHECK_EQ(peer.pid, pid);
	snprintf(want, sizeof(want), "peer %ld: %s", (long)pid, text);
	check_region(rw, 0, want, 0);
	shmcap_cap_close(rw);
	close(sv[0]);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: READ and WRITE capability written by an exec'd peer\n");
}

/* ------------------------------------------------------------------------
 * Bad input
 */

static void test_send_errors(void)
{
	shmcap_cap *cap, *many[MAXC + 1], *withnull[2];
	int sv[2], st[2], p[2], dead[2], fds = t_count_fds(), devnull;
	unsigned char *big;
	size_t i, n;
	char buf[8];

	CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &cap));
	CHECK_OK(shmcap_socketpair(sv));
	for (i = 0; i <= MAXC; i++)
		many[i] = cap;
	withnull[0] = cap;
	withnull[1] = NULL;
	big = calloc(1, SHMCAP_MSG_MAX_DATA + 1);
	CHECK_NOTNULL(big);

	CHECK_ERR(shmcap_send(sv[0], NULL, 1, "x", 1, 0), -EINVAL);
	CHECK_ERR(shmcap_send(sv[0], withnull, 2, "x", 1, 0), -EINVAL);
	CHECK_ERR(shmcap_send(sv[0], NULL, 0, NULL, 1, 0), -EINVAL);
	CHECK_ERR(shmcap_send(sv[0], many, MAXC + 1, "x", 1, 0), -E2BIG);
	CHECK_ERR(shmcap_send(sv[0], NULL, 0, big, SHMCAP_MSG_MAX_DATA + 1, 0),
		  -EMSGSIZE);
	CHECK_ERR(shmcap_send(sv[0], NULL, 0, "x", 1, 0x2), -EINVAL);
	CHECK_ERR(shmcap_send(sv[0], NULL, 0, "x", 1, 0x80000000u), -EINVAL);
	CHECK_ERR(shmcap_send(sv[0], &cap, 1, "x", 1, ~0u), -EINVAL);
	/* None of them sent anything. */
	CHECK_ERR(shmcap_recv(sv[1], NULL, 0, &n, buf, sizeof(buf), NULL,
			      SHMCAP_MSG_DONTWAIT),
		  -EAGAIN);

	/* A byte stream would split messages. */
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, st), 0);
	CHECK_ERR(shmcap_send(st[0], &cap, 1, "x", 1, 0), -EPROTOTYPE);
	CHECK_ERR(shmcap_recv(st[1], NULL, 0, &n, buf, sizeof(buf), NULL,
			      SHMCAP_MSG_DONTWAIT),
		  -EPROTOTYPE);
	close(st[0]);
	close(st[1]);

	/* Not sockets at all. */
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK_ERR(shmcap_send(p[1], &cap, 1, "x", 1, 0), -ENOTSOCK);
	CHECK_ERR(shmcap_recv(p[0], NULL, 0, &n, buf, sizeof(buf), NULL,
			      SHMCAP_MSG_DONTWAIT),
		  -ENOTSOCK);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK(devnull >= 0);
	CHECK_ERR(shmcap_send(devnull, NULL, 0, "x", 1, 0), -ENOTSOCK);
	CHECK_ERR(shmcap_send(shmcap_cap_fd(cap), NULL, 0, "x", 1, 0),
		  -ENOTSOCK);
	close(devnull);
	close(p[0]);
	close(p[1]);

	/* Closed descriptors. */
	CHECK_EQ(pipe2(dead, O_CLOEXEC), 0);
	close(dead[0]);
	close(dead[1]);
	CHECK_ERR(shmcap_send(dead[0], &cap, 1, "x", 1, 0), -EBADF);
	CHECK_ERR(shmcap_recv(dead[1], NULL, 0, &n, buf, sizeof(buf), NULL, 0),
		  -EBADF);
	CHECK_ERR(shmcap_send(-1, NULL, 0, "x", 1, 0), -EBADF);
	CHECK_ERR(shmcap_recv(-1, NULL, 0, &n, buf, sizeof(buf), NULL, 0),
		  -EBADF);

	CHECK_ERR(shmcap_socketpair(NULL), -EINVAL);

	free(big);
	shmcap_cap_close(cap);
	close(sv[0]);
	close(sv[1]);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: shmcap_send and shmcap_socketpair refuse bad input\n");
}

static void test_recv_errors(void)
{
	shmcap_cap *own[3], *caps[MAXC];
	int sv[2], fds, ret;
	char data[100], buf[128];
	size_t i, n;

	memset(data, 'q', sizeof(data));
	for (i = 0; i < 3; i++)
		CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &own[i]));
	CHECK_OK(shmcap_socketpair(sv));
	fds = t_count_fds();

	/* Bad arguments do not consume the waiting message. */
	CHECK_OK(shmcap_send(sv[0], own, 3, data, sizeof(data), 0));
	CHECK_ERR(shmcap_recv(sv[1], caps, MAXC, NULL, buf, sizeof(buf), NULL,
			      0),
		  -EINVAL);
	CHECK_ERR(shmcap_recv(sv[1], NULL, 1, &n, buf, sizeof(buf), NULL, 0),
		  -EINVAL);
	CHECK_ERR(shmcap_recv(sv[1], caps, MAXC, &n, NULL, 10, NULL, 0),
		  -EINVAL);
	CHECK_ERR(shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(buf), NULL,
			      0x2),
		  -EINVAL);
	ret = shmcap_recv(sv[1], caps, 3, &n, buf, sizeof(data), NULL, 0);
	CHECK_EQ(ret, sizeof(data));
	CHECK_EQ(n, 3);
	close_caps(caps, 3);
	CHECK_EQ(t_count_fds(), fds);

	/* Buffer too small: -EMSGSIZE, message consumed, nothing leaked. */
	CHECK_OK(shmcap_send(sv[0], own, 3, data, sizeof(data), 0));
	n = 9;
	CHECK_ERR(shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(data) - 1,
			      NULL, 0),
		  -EMSGSIZE);
	CHECK_EQ(n, 0);
	CHECK_EQ(t_count_fds(), fds);
	CHECK_OK(shmcap_send(sv[0], own, 1, data, 1, 0));
	CHECK_ERR(shmcap_recv(sv[1], caps, MAXC, &n, NULL, 0, NULL, 0),
		  -EMSGSIZE);
	CHECK_EQ(t_count_fds(), fds);
	CHECK_ERR(shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(buf), NULL,
			      SHMCAP_MSG_DONTWAIT),
		  -EAGAIN);

	/* More capabilities than maxcaps: -E2BIG, nothing leaked. */
	CHECK_OK(shmcap_send(sv[0], own, 3, data, 10, 0));
	n = 9;
	CHECK_ERR(shmcap_recv(sv[1], caps, 2, &n, buf, sizeof(buf), NULL, 0),
		  -E2BIG);
	CHECK_EQ(n, 0);
	CHECK_EQ(t_count_fds(), fds);
	CHECK_OK(shmcap_send(sv[0], own, 1, data, 10, 0));
	CHECK_ERR(shmcap_recv(sv[1], NULL, 0, &n, buf, sizeof(buf), NULL, 0),
		  -E2BIG);
	CHECK_EQ(t_count_fds(), fds);
	CHECK_ERR(shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(buf), NULL,
			      SHMCAP_MSG_DONTWAIT),
		  -EAGAIN);

	close_caps(own, 3);
	close(sv[0]);
	close(sv[1]);
	printf("ok: shmcap_recv: bad arguments, small buffer, too few caps\n");
}

/* ------------------------------------------------------------------------
 * Hostile messages: not from shmcap, or lying about what they carry
 */

static void test_hostile(void)
{
	struct t_wire_hdr h;
	unsigned char junk[300], msg[sizeof(struct t_wire_hdr) + 16];
	int sv[2], p[2], two[2], devnull, dir, memfd, wronly, evfd, rfd, fds;
	int ret;
	char path[64], buf[64];
	shmcap_cap *region, *caps[MAXC];
	size_t i, n;

	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 31 + 7);
	CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &region));
	rfd = shmcap_cap_fd(region);
	CHECK_OK(shmcap_socketpair(sv));
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK(devnull >= 0);
	dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dir >= 0);
	/* A shmem file opened write-only: no READ right can come of it. */
	memfd = memfd_create("t-transfer-wo", MFD_CLOEXEC);
	CHECK(memfd >= 0);
	CHECK_EQ(ftruncate(memfd, page_size), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	wronly = open(path, O_WRONLY | O_CLOEXEC);
	CHECK(wronly >= 0);
	evfd = eventfd(0, EFD_CLOEXEC);
	CHECK(evfd >= 0);
	fds = t_count_fds();

	/* Garbage, with and without descriptors. */
	t_raw_send(sv[0], junk, 64, NULL, 0);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_raw_send(sv[0], junk, 200, &p[0], 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_raw_send(sv[0], junk, 200, &rfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_raw_send(sv[0], junk, 10, &rfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_raw_send(sv[0], junk, 0, &rfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);

	/* A good header on a descriptor that is not a region. */
	t_wire_init(&h, 1, SHMCAP_RIGHTS_REGION, 0);
	t_raw_send(sv[0], &h, sizeof(h), &p[0], 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_raw_send(sv[0], &h, sizeof(h), &p[1], 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_raw_send(sv[0], &h, sizeof(h), &devnull, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_raw_send(sv[0], &h, sizeof(h), &dir, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, two), 0);
	t_raw_send(sv[0], &h, sizeof(h), &two[0], 1);
	close(two[0]);
	close(two[1]);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_raw_send(sv[0], &h, sizeof(h), &wronly, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_raw_send(sv[0], &h, sizeof(h), &evfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_wire_init(&h, 1, SHMCAP_RIGHT_READ, 0);
	t_raw_send(sv[0], &h, sizeof(h), &devnull, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);

	/* One good region and one bad descriptor, in either order. */
	{
		int mix[2];

		t_wire_init(&h, 2, SHMCAP_RIGHTS_REGION, 0);
		mix[0] = rfd;
		mix[1] = p[0];
		t_raw_send(sv[0], &h, sizeof(h), mix, 2);
		CHECK_RECV_ERR(sv[1], -EBADMSG);
		mix[0] = devnull;
		mix[1] = rfd;
		t_raw_send(sv[0], &h, sizeof(h), mix, 2);
		CHECK_RECV_ERR(sv[1], -EBADMSG);
		mix[0] = rfd;
		mix[1] = rfd;
		h.caps[1].type = 7;
		t_raw_send(sv[0], &h, sizeof(h), mix, 2);
		CHECK_RECV_ERR(sv[1], -EBADMSG);
	}

	/* The header disagrees with what arrived. */
	t_wire_init(&h, 2, SHMCAP_RIGHTS_REGION, 0);
	t_raw_send(sv[0], &h, sizeof(h), &rfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_wire_init(&h, 0, SHMCAP_RIGHTS_REGION, 0);
	t_raw_send(sv[0], &h, sizeof(h), &rfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	/* A region claimed as another type (2), and as no known type. */
	t_wire_init(&h, 1, SHMCAP_RIGHTS_REGION, 0);
	h.caps[0].type = 2;
	t_raw_send(sv[0], &h, sizeof(h), &rfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	h.caps[0].type = 0x7fffffff;
	t_raw_send(sv[0], &h, sizeof(h), &rfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_wire_init(&h, 1, SHMCAP_RIGHTS_REGION, 0);
	h.magic ^= 1;
	t_raw_send(sv[0], &h, sizeof(h), &rfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_wire_init(&h, 1, SHMCAP_RIGHTS_REGION, 0);
	h.version = 2;
	t_raw_send(sv[0], &h, sizeof(h), &rfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_wire_init(&h, 1, SHMCAP_RIGHTS_REGION, 10);
	memcpy(msg, &h, sizeof(h));
	memset(msg + sizeof(h), 'd', 16);
	t_raw_send(sv[0], msg, sizeof(h) + 5, &rfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_raw_send(sv[0], msg, sizeof(h) + 16, &rfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_raw_send(sv[0], msg, sizeof(h) - 1, &rfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);

	/* Rights that name no usable capability. */
	t_wire_init(&h, 1, 0, 0);
	t_raw_send(sv[0], &h, sizeof(h), &rfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	t_wire_init(&h, 1, SHMCAP_RIGHT_WRITE, 0);
	t_raw_send(sv[0], &h, sizeof(h), &rfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);

	/*
	 * An empty raw message (0 bytes, nothing attached) while the peer is
	 * still connected: not a shmcap message, and not end of stream,
	 * which shmcap.h defines as "the peer closed its end". A wrong
	 * answer is a deferred failure.
	 */
	t_raw_send(sv[0], junk, 0, NULL, 0);
	{
		int got = shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(buf),
				      NULL, SHMCAP_MSG_DONTWAIT);

		if (got != -EBADMSG) {
			fprintf(stderr,
				"%s:%d: FAILED: a 0-byte raw message on a "
				"connected SOCK_SEQPACKET socket: shmcap_recv "
				"returned %d (%s), expected EBADMSG (the peer "
				"has not closed its end)\n",
				__FILE__, __LINE__, got, shmcap_err_name(got));
			deferred_failures++;
		}
		CHECK_EQ(t_count_fds(), fds);
	}

	/* After all that, the socket still carries good messages. */
	t_wire_init(&h, 1, SHMCAP_RIGHTS_REGION, 10);
	memcpy(msg, &h, sizeof(h));
	t_raw_send(sv[0], msg, sizeof(h) + 10, &rfd, 1);
	ret = shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(buf), NULL, 0);
	CHECK_EQ(ret, 10);
	CHECK_EQ(n, 1);
	CHECK(same_object(caps[0], region));
	CHECK_EQ(shmcap_cap_rights(caps[0]), SHMCAP_RIGHTS_REGION);
	shmcap_cap_close(caps[0]);
	CHECK_EQ(t_count_fds(), fds);

	close(evfd);
	close(wronly);
	close(memfd);
	close(dir);
	close(devnull);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	shmcap_cap_close(region);
	printf("ok: raw messages not from shmcap refused with EBADMSG, "
	       "nothing leaked\n");
}

/*
 * More descriptors than a message may carry. On a shmcap_socketpair() the
 * credentials take room in the control buffer, so the kernel truncates
 * (MSG_CTRUNC); on a plain socket pair without SO_PASSCRED all of them
 * arrive and the library must close the excess itself.
 */
static void test_hostile_excess(void)
{
	static const size_t counts[] = { MAXC + 1, 20, 32 };
	int sv[2], raw[2], many[32], fds, rfd, k, pass;
	struct t_wire_hdr h;
	shmcap_cap *region;
	size_t i;

	CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &region));
	rfd = shmcap_cap_fd(region);
	for (i = 0; i < 32; i++)
		many[i] = rfd;
	CHECK_OK(shmcap_socketpair(sv));
	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, raw), 0);
	fds = t_count_fds();
	for (pass = 0; pass < 2; pass++) {
		int tx = pass ? raw[0] : sv[0], rx = pass ? raw[1] : sv[1];

		for (k = 0; k < 3; k++) {
			t_wire_init(&h, counts[k] > MAXC ? MAXC : counts[k],
				    SHMCAP_RIGHTS_REGION, 0);
			t_raw_send(tx, &h, sizeof(h), many, counts[k]);
			CHECK_RECV_ERR(rx, -E2BIG);
			h.ncaps = (uint16_t)counts[k];
			t_raw_send(tx, &h, sizeof(h), many, counts[k]);
			CHECK_RECV_ERR(rx, -E2BIG);
		}
	}
	CHECK_EQ(t_count_fds(), fds);
	close(raw[0]);
	close(raw[1]);
	close(sv[0]);
	close(sv[1]);
	shmcap_cap_close(region);
	printf("ok: more than %d descriptors refused with E2BIG, nothing "
	       "leaked\n",
	       MAXC);
}

/* The receiver's rights are what the descriptor allows, whatever is said. */
static void test_rights_clamped(void)
{
	int sv[2], fds = t_count_fds(), memfd;
	shmcap_cap *rw, *ro, *got;
	struct t_wire_hdr h;
	shmcap_map *m;
	int fd;
	size_t n;

	CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &rw));
	write_region(rw, 0, "clamped");
	CHECK_OK(shmcap_cap_derive(rw, SHMCAP_RIGHT_READ, &ro));
	CHECK_OK(shmcap_socketpair(sv));

	/* An O_RDONLY descriptor claimed READ and WRITE arrives READ. */
	t_wire_init(&h, 1, SHMCAP_RIGHTS_REGION, 0);
	fd = shmcap_cap_fd(ro);
	t_raw_send(sv[0], &h, sizeof(h), &fd, 1);
	CHECK_EQ(shmcap_recv(sv[1], &got, 1, &n, NULL, 0, NULL, 0), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(shmcap_cap_rights(got), SHMCAP_RIGHT_READ);
	CHECK_EQ(t_accmode(got), O_RDONLY);
	CHECK_ERR(shmcap_region_map(got, 0, 0, NULL, SHMCAP_MAP_WRITE, &m),
		  -EACCES);
	check_region(got, 0, "clamped", 0);
	shmcap_cap_close(got);

	/*
	 * An O_RDWR descriptor claimed READ arrives READ, and its descriptor
	 * is read-only too, so that the kernel enforces the missing right.
	 */
	t_wire_init(&h, 1, SHMCAP_RIGHT_READ, 0);
	fd = shmcap_cap_fd(rw);
	t_raw_send(sv[0], &h, sizeof(h), &fd, 1);
	CHECK_EQ(shmcap_recv(sv[1], &got, 1, &n, NULL, 0, NULL, 0), 0);
	CHECK_EQ(shmcap_cap_rights(got), SHMCAP_RIGHT_READ);
	CHECK_EQ(t_accmode(got), O_RDONLY);
	CHECK(same_object(got, rw));
	shmcap_cap_close(got);

	/* Unknown right bits claimed are dropped. */
	t_wire_init(&h, 1, 0xffffffffu, 0);
	t_raw_send(sv[0], &h, sizeof(h), &fd, 1);
	CHECK_EQ(shmcap_recv(sv[1], &got, 1, &n, NULL, 0, NULL, 0), 0);
	CHECK_EQ(shmcap_cap_rights(got), SHMCAP_RIGHTS_REGION);
	shmcap_cap_close(got);

	/*
	 * A memfd from a program that does not use shmcap, not sealed: it
	 * is a region, but mapping it needs SHMCAP_MAP_UNSEALED.
	 */
	memfd = memfd_create("t-transfer-raw", MFD_CLOEXEC);
	CHECK(memfd >= 0);
	CHECK_EQ(ftruncate(memfd, page_size), 0);
	t_wire_init(&h, 1, SHMCAP_RIGHTS_REGION, 0);
	t_raw_send(sv[0], &h, sizeof(h), &memfd, 1);
	close(memfd);
	CHECK_EQ(shmcap_recv(sv[1], &got, 1, &n, NULL, 0, NULL, 0), 0);
	CHECK_EQ(shmcap_cap_rights(got), SHMCAP_RIGHTS_REGION);
	CHECK_ERR(shmcap_region_map(got, 0, 0, NULL, SHMCAP_MAP_READ, &m),
		  -EPERM);
	CHECK_OK(shmcap_region_map(got, 0, 0, NULL,
				   SHMCAP_MAP_READ | SHMCAP_MAP_UNSEALED, &m));
	shmcap_map_unmap(m);
	shmcap_cap_close(got);

	/* Through shmcap_send, a derived READ capability stays READ. */
	CHECK_OK(shmcap_send(sv[0], &ro, 1, NULL, 0, 0));
	CHECK_EQ(shmcap_recv(sv[1], &got, 1, &n, NULL, 0, NULL, 0), 0);
	CHECK_EQ(shmcap_cap_rights(got), SHMCAP_RIGHT_READ);
	CHECK_EQ(t_accmode(got), O_RDONLY);
	shmcap_cap_close(got);

	shmcap_cap_close(ro);
	shmcap_cap_close(rw);
	close(sv[0]);
	close(sv[1]);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: received rights clamped to the descriptor's open mode\n");
}

/* ------------------------------------------------------------------------
 * End of stream, non-blocking use, datagram sockets
 */

static void test_end_of_stream(void)
{
	int sv[2], fds = t_count_fds();
	shmcap_cap *cap, *caps[MAXC];
	char buf[16];
	size_t n;
	pid_t pid;

	CHECK_OK(shmcap_socketpair(sv));
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		close(sv[0]);
		CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &cap));
		CHECK_OK(shmcap_send(sv[1], NULL, 0, "one", 3, 0));
		CHECK_OK(shmcap_send(sv[1], &cap, 1, "two", 3, 0));
		_exit(T_EXIT_PASS);
	}
	close(sv[1]);
	CHECK_CHILD_OK(t_wait_child(pid, CHILD_TIMEOUT));
	/* What was sent before the peer left is still delivered. */
	CHECK_EQ(shmcap_recv(sv[0], caps, MAXC, &n, buf, sizeof(buf), NULL, 0),
		 3);
	CHECK(memcmp(buf, "one", 3) == 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(shmcap_recv(sv[0], caps, MAXC, &n, buf, sizeof(buf), NULL, 0),
		 3);
	CHECK(memcmp(buf, "two", 3) == 0);
	CHECK_EQ(n, 1);
	shmcap_cap_close(caps[0]);
	/* Then end of stream, every time, blocking or not. */
	n = 7;
	CHECK_ERR(shmcap_recv(sv[0], caps, MAXC, &n, buf, sizeof(buf), NULL, 0),
		  -EPIPE);
	CHECK_EQ(n, 0);
	n = 7;
	CHECK_ERR(shmcap_recv(sv[0], caps, MAXC, &n, buf, sizeof(buf), NULL,
			      SHMCAP_MSG_DONTWAIT),
		  -EPIPE);
	CHECK_EQ(n, 0);
	n = 7;
	CHECK_ERR(shmcap_recv(sv[0], NULL, 0, &n, NULL, 0, NULL, 0), -EPIPE);
	CHECK_EQ(n, 0);
	close(sv[0]);

	/* Closed in this very process. */
	CHECK_OK(shmcap_socketpair(sv));
	close(sv[0]);
	n = 7;
	CHECK_ERR(shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(buf), NULL, 0),
		  -EPIPE);
	CHECK_EQ(n, 0);
	close(sv[1]);

	/*
	 * A message with neither data nor capabilities is a message, told
	 * apart from end of stream: 0 bytes, no caps, and the peer is there.
	 */
	CHECK_OK(shmcap_socketpair(sv));
	CHECK_EQ(shmcap_send(sv[0], NULL, 0, NULL, 0, 0), 0);
	n = 7;
	CHECK_EQ(shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(buf), NULL, 0),
		 0);
	CHECK_EQ(n, 0);
	CHECK_ERR(shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(buf), NULL,
			      SHMCAP_MSG_DONTWAIT),
		  -EAGAIN);
	close(sv[0]);
	CHECK_ERR(shmcap_recv(sv[1], caps, MAXC, &n, buf, sizeof(buf), NULL,
			      SHMCAP_MSG_DONTWAIT),
		  -EPIPE);
	close(sv[1]);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: end of stream gives EPIPE with no caps; an empty message "
	       "is not end of stream\n");
}

static void test_dontwait(void)
{
	int sv[2], fds = t_count_fds(), ret = 0;
	size_t n, sent, i;
	char buf[16];

	CHECK_OK(shmcap_socketpair(sv));
	n = 7;
	CHECK_ERR(shmcap_recv(sv[1], NULL, 0, &n, buf, sizeof(buf), NULL,
			      SHMCAP_MSG_DONTWAIT),
		  -EAGAIN);
	CHECK_EQ(n, 0);
	/* Fill the socket until the kernel says it is full. */
	for (sent = 0; sent < 1000000; sent++) {
		ret = shmcap_send(sv[0], NULL, 0, "fill", 4,
				  SHMCAP_MSG_DONTWAIT);
		if (ret == -EAGAIN)
			break;
		CHECK_OK(ret);
	}
	CHECK_ERR(ret, -EAGAIN);
	CHECK(sent > 0);
	for (i = 0; i < sent; i++)
		CHECK_EQ(shmcap_recv(sv[1], NULL, 0, &n, buf, sizeof(buf), NULL,
				     SHMCAP_MSG_DONTWAIT),
			 4);
	CHECK_ERR(shmcap_recv(sv[1], NULL, 0, &n, buf, sizeof(buf), NULL,
			      SHMCAP_MSG_DONTWAIT),
		  -EAGAIN);
	CHECK_OK(shmcap_send(sv[0], NULL, 0, "more", 4, SHMCAP_MSG_DONTWAIT));
	CHECK_EQ(shmcap_recv(sv[1], NULL, 0, &n, buf, sizeof(buf), NULL, 0), 4);
	close(sv[0]);
	close(sv[1]);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: SHMCAP_MSG_DONTWAIT gives EAGAIN on an empty or full "
	       "socket (%zu messages queued)\n",
	       sent);
}

/*
 * A socket pair of type made by the caller, not by shmcap_socketpair().
 * With passcred the caller switched SO_PASSCRED on both ends; without, it
 * is a plain socketpair(2), and the sender's message is queued before the
 * receiver first calls shmcap_recv(). Either way the receiver must learn
 * who sent it, or at least be told that it cannot know (pid 0, uid and gid
 * UINT32_MAX, as shmcap.h promises) rather than be given another user.
 * A wrong answer is a deferred failure, so that the other parts still run.
 */
static void test_caller_pair(int type, int passcred)
{
	int sv[2], sync[2], fds = t_count_fds(), on = 1, ret;
	shmcap_cap *cap, *caps[MAXC];
	shmcap_peer peer;
	char buf[32], c;
	size_t n;
	pid_t pid;

	CHECK_EQ(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
	if (passcred) {
		CHECK_EQ(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &on,
				    sizeof(on)),
			 0);
		CHECK_EQ(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on,
				    sizeof(on)),
			 0);
	}
	CHECK_EQ(pipe2(sync, O_CLOEXEC), 0);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		close(sv[0]);
		close(sync[0]);
		CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &cap));
		write_region(cap, 0, "dgram region");
		CHECK_OK(shmcap_send(sv[1], &cap, 1, "dgram hello", 11, 0));
		CHECK_EQ(write(sync[1], "s", 1), 1);
		CHECK_EQ(shmcap_recv(sv[1], NULL, 0, &n, buf, sizeof(buf), NULL,
				     0),
			 3);
		_exit(T_EXIT_PASS);
	}
	close(sv[1]);
	close(sync[1]);
	/* The message is queued now. */
	CHECK_EQ(read(sync[0], &c, 1), 1);
	memset(&peer, 0, sizeof(peer));
	ret = shmcap_recv(sv[0], caps, MAXC, &n, buf, sizeof(buf), &peer, 0);
	CHECK_EQ(ret, 11);
	CHECK(memcmp(buf, "dgram hello", 11) == 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(shmcap_cap_rights(caps[0]), SHMCAP_RIGHTS_REGION);
	check_region(caps[0], 0, "dgram region", SHMCAP_MAP_WRITE);
	shmcap_cap_close(caps[0]);
	CHECK_OK(shmcap_send(sv[0], NULL, 0, "bye", 3, 0));
	CHECK_CHILD_OK(t_wait_child(pid, CHILD_TIMEOUT));
	if ((peer.pid != pid || peer.uid != getuid() || peer.gid != getgid()) &&
	    (peer.pid != 0 || peer.uid != UINT32_MAX ||
	     peer.gid != UINT32_MAX)) {
		fprintf(stderr,
			"%s:%d: FAILED: %s socketpair(2)%s: shmcap_recv "
			"reported sender pid %ld uid %lu gid %lu, but the "
			"sender was pid %ld uid %lu gid %lu (and 'unknown' "
			"would be pid 0 uid/gid %lu)\n",
			__FILE__, __LINE__,
			type == SOCK_DGRAM ? "SOCK_DGRAM" : "SOCK_SEQPACKET",
			passcred ? " with SO_PASSCRED" : " without SO_PASSCRED",
			(long)peer.pid, (unsigned long)peer.uid,
			(unsigned long)peer.gid, (long)pid,
			(unsigned long)getuid(), (unsigned long)getgid(),
			(unsigned long)UINT32_MAX);
		deferred_failures++;
	} else {
		printf("ok: %s socket pair%s, sender pid %ld reported as %ld\n",
		       type == SOCK_DGRAM ? "SOCK_DGRAM" : "SOCK_SEQPACKET",
		       passcred ? " with SO_PASSCRED" :
				  " made by socketpair(2) alone",
		       (long)pid, (long)peer.pid);
	}
	close(sv[0]);
	close(sync[0]);
	CHECK_EQ(t_count_fds(), fds);
}

/* ------------------------------------------------------------------------
 * SIGKILL
 */

/* The sending end's peer was killed: -EPIPE or -ECONNRESET, no SIGPIPE. */
static void test_send_to_dead_peer(void)
{
	int sv[2], fds = t_count_fds(), ret;
	shmcap_cap *cap;
	size_t n;
	pid_t pid;

	CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &cap));
	CHECK_OK(shmcap_socketpair(sv));
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		close(sv[0]);
		for (;;)
			pause();
	}
	close(sv[1]);
	CHECK_EQ(kill(pid, SIGKILL), 0);
	t_check_killed(pid, CHILD_TIMEOUT);
	ret = shmcap_send(sv[0], &cap, 1, "x", 1, 0);
	if (ret != -EPIPE && ret != -ECONNRESET)
		FAIL("send to a killed peer returned %d (%s), expected EPIPE "
		     "or ECONNRESET",
		     ret, shmcap_err_name(ret));
	n = 3;
	CHECK_ERR(shmcap_recv(sv[0], NULL, 0, &n, NULL, 0, NULL, 0), -EPIPE);
	CHECK_EQ(n, 0);
	close(sv[0]);
	shmcap_cap_close(cap);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: sending to a killed peer fails with EPIPE/ECONNRESET\n");
}

/*
 * Receive "seq N" (with a capability for N < 32) and expect N; return 0
 * at end of stream (-EPIPE) instead.
 */
static int recv_seq(int sock, unsigned int *expect)
{
	shmcap_cap *caps[MAXC];
	char buf[32], want[32];
	size_t n;
	int ret;

	n = 9;
	ret = shmcap_recv(sock, caps, MAXC, &n, buf, sizeof(buf) - 1, NULL, 0);
	if (ret == -EPIPE) {
		CHECK_EQ(n, 0);
		return 0;
	}
	CHECK_OK(ret);
	buf[ret] = '\0';
	snprintf(want, sizeof(want), "seq %u", *expect);
	CHECK_STR_EQ(buf, want);
	CHECK_EQ(n, *expect < 32 ? 1 : 0);
	if (n) {
		CHECK_EQ(shmcap_cap_rights(caps[0]), SHMCAP_RIGHTS_REGION);
		shmcap_cap_close(caps[0]);
	}
	(*expect)++;
	return 1;
}

/*
 * A sender killed with SIGKILL in the middle of a stream of messages: the
 * receiver gets every whole message queued, then end of stream.
 */
static void test_sigkill_sender(void)
{
	int sv[2], sync[2], fds = t_count_fds(), ret;
	unsigned int expect = 0, k;
	shmcap_cap *caps[MAXC];
	size_t n;
	pid_t pid;
	char c;

	CHECK_OK(shmcap_socketpair(sv));
	CHECK_EQ(pipe2(sync, O_CLOEXEC), 0);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		shmcap_cap *cap;
		unsigned int i;
		char text[32];

		close(sv[0]);
		close(sync[0]);
		CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &cap));
		for (i = 0;; i++) {
			int len = snprintf(text, sizeof(text), "seq %u", i);

			ret = shmcap_send(sv[1], &cap, i < 32 ? 1 : 0, text,
					  (size_t)len, 0);
			if (ret < 0)
				FAIL("sender: message %u: %s", i,
				     shmcap_err_name(ret));
			/* Say when 50 are out, then go on until killed. */
			if (i == 49 && write(sync[1], "s", 1) != 1)
				FAIL("sender: write: %s", strerror(errno));
		}
	}
	close(sv[1]);
	close(sync[1]);
	for (k = 0; k < 5; k++)
		CHECK_EQ(recv_seq(sv[0], &expect), 1);
	CHECK_EQ(read(sync[0], &c, 1), 1);
	CHECK_EQ(kill(pid, SIGKILL), 0);
	t_check_killed(pid, CHILD_TIMEOUT);
	/* Whole messages in order, then end of stream: never a hang. */
	for (k = 0; recv_seq(sv[0], &expect); k++)
		CHECK(k < 1000000);
	CHECK(expect >= 50);
	n = 4;
	CHECK_ERR(shmcap_recv(sv[0], caps, MAXC, &n, NULL, 0, NULL, 0), -EPIPE);
	CHECK_EQ(n, 0);
	close(sv[0]);
	close(sync[0]);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: sender killed mid-stream: %u messages, then end of "
	       "stream\n",
	       expect);
}

/* The forked twin of the peer's hold mode. */
__attribute__((noreturn)) static void hold_child(int sock)
{
	shmcap_cap *cap;
	shmcap_map *m;
	char buf[64];
	size_t n;
	int ret;

	ret = shmcap_recv(sock, &cap, 1, &n, buf, sizeof(buf) - 1, NULL, 0);
	CHECK(ret > 0);
	CHECK_EQ(n, 1);
	buf[ret] = '\0';
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_WRITE, &m));
	memcpy(shmcap_map_addr(m), buf, (size_t)ret + 1);
	CHECK_OK(shmcap_send(sock, NULL, 0, "held", 4, 0));
	for (;;)
		pause();
}

/*
 * A process that holds a READ and WRITE mapping is killed with SIGKILL:
 * the parent still has the data, and once it unmaps and closes, nothing
 * of the region is left in its address space.
 */
static void test_sigkill_holder(int use_exec)
{
	static const char marker[] = "written by the holder";
	int sv[2], fds = t_count_fds(), ret;
	shmcap_cap *cap;
	shmcap_peer peer;
	shmcap_map *m;
	char buf[16], *p;
	size_t n;
	pid_t pid;

	CHECK_EQ(t_count_maps("memfd:shmcap"), 0);
	CHECK_OK(shmcap_region_create((uint64_t)page_size, 0, &cap));
	CHECK_OK(shmcap_socketpair(sv));
	if (use_exec) {
		pid = spawn_peer("hold", sv[1], 0);
	} else {
		pid = t_fork_child(CHILD_TIMEOUT);
		if (pid == 0) {
			close(sv[0]);
			hold_child(sv[1]);
		}
	}
	close(sv[1]);
	CHECK_OK(shmcap_send(sv[0], &cap, 1, marker, strlen(marker), 0));
	memset(&peer, 0, sizeof(peer));
	ret = shmcap_recv(sv[0], NULL, 0, &n, buf, sizeof(buf), &peer, 0);
	CHECK_EQ(ret, 4);
	CHECK(memcmp(buf, "held", 4) == 0);
	CHECK_EQ(peer.pid, pid);

	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_WRITE, &m));
	CHECK(t_count_maps("memfd:shmcap") >= 1);
	CHECK_EQ(kill(pid, SIGKILL), 0);
	t_check_killed(pid, CHILD_TIMEOUT);
	/* Reaped: no such child any more. */
	CHECK_EQ(waitpid(pid, NULL, WNOHANG), -1);
	CHECK_EQ(errno, ECHILD);

	/* The memory outlives the holder. */
	p = shmcap_map_addr(m);
	CHECK_STR_EQ(p, marker);
	strcpy(p + 100, "still writable");
	CHECK_STR_EQ(p + 100, "still writable");
	n = 3;
	CHECK_ERR(shmcap_recv(sv[0], NULL, 0, &n, NULL, 0, NULL, 0), -EPIPE);
	CHECK_EQ(n, 0);

	shmcap_map_unmap(m);
	shmcap_cap_close(cap);
	close(sv[0]);
	CHECK_EQ(t_count_maps("memfd:shmcap"), 0);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: holder %s killed with SIGKILL, data kept, nothing left "
	       "mapped\n",
	       use_exec ? "(exec'd peer)" : "(forked)");
}

int main(void)
{
	int fds;

	t_watchdog(110);
	page_size = sysconf(_SC_PAGESIZE);
	CHECK(page_size > 0);
	peer_path = t_peer_path();
	fds = t_count_fds();
	CHECK(fds > 0);

	test_fork_roundtrip(0);
	test_fork_roundtrip(1);
	test_fork_roundtrip(MAXC);
	test_largest_message();
	test_named_region();
	test_send_errors();
	test_recv_errors();
	test_hostile();
	test_hostile_excess();
	test_rights_clamped();
	test_end_of_stream();
	test_dontwait();
	test_caller_pair(SOCK_DGRAM, 1);
	test_caller_pair(SOCK_SEQPACKET, 1);
	test_caller_pair(SOCK_DGRAM, 0);
	test_caller_pair(SOCK_SEQPACKET, 0);
	test_send_to_dead_peer();
	test_sigkill_sender();
	test_sigkill_holder(0);
	if (peer_path) {
		test_exec_echo();
		test_exec_recv_ro(0);
		if (geteuid() == 0)
			test_exec_recv_ro(1);
		else
			printf("skipped: READ-only peer as another user "
			       "(needs root)\n");
		test_exec_recv_rw();
		test_sigkill_holder(1);
	} else {
		printf("skipped: exec'd peer parts (no shmcap-test-peer)\n");
	}

	CHECK_EQ(t_count_maps("memfd:shmcap"), 0);
	CHECK_EQ(t_count_fds(), fds);
	if (deferred_failures)
		FAIL("%d check(s) failed above", deferred_failures);
	return T_EXIT_PASS;
}
