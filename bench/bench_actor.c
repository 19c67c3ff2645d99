/* SPDX-License-Identifier: MIT */
/*
 * bench_actor: starting actors, and obtaining a capability from another
 * process.
 *
 * Benches (each sample measured on its own, in the parent):
 *   spawn_first_msg  start a program and receive its first message; the
 *                    child is reaped afterwards, untimed
 *   cap_lookup       obtain a region capability (a descriptor) from a
 *                    server process that is already running
 *
 * spawn_first_msg implementations (the child is bench/actor_child, one
 * binary linked to libshmcap for all, so loading it costs each alike):
 *   shmcap       shmcap_spawn() with a notifier named "bell"; the child
 *                finds it with shmcap_env_cap() and signals it
 *   fork_exec    socketpair(), fork(), dup2() to descriptor 3, execv();
 *                the child writes to descriptor 3 -- the classic way
 *   posix_spawn  the same with posix_spawn() and a dup2 file action
 *
 * cap_lookup implementations (the server is a child pinned to the other
 * CPU, answering one request at a time):
 *   shmcap        shmcap_name_lookup() of a name the server published
 *   shmcap_token  shmcap_token_resolve() of a token the server issued
 *   connect_scm   a hand-written broker: connect to an abstract
 *                 SOCK_SEQPACKET socket, send a request, receive the
 *                 descriptor as SCM_RIGHTS, close
 *   socketpair    the lower bound: a request over a socketpair made
 *                 before fork() (fork+exec with a socketpair), the
 *                 descriptor back as SCM_RIGHTS
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmcap.h>

extern char **environ;

#define TIMEOUT_NS (5 * (int64_t)1000000000)

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* bench/actor_child, beside this program. */
static char child_path[PATH_MAX];

static void find_child(void)
{
	ssize_t n = readlink("/proc/self/exe", child_path,
			     sizeof(child_path) - 1);
	char *slash;

	if (n < 0) {
		perror("bench_actor: /proc/self/exe");
		exit(2);
	}
	child_path[n] = '\0';
	slash = strrchr(child_path, '/');
	if (!slash || (size_t)(slash - child_path) + 13 >= sizeof(child_path)) {
		fprintf(stderr, "bench_actor: odd path %s\n", child_path);
		exit(2);
	}
	strcpy(slash + 1, "actor_child");
	if (access(child_path, X_OK) < 0) {
		fprintf(stderr, "bench_actor: %s: %s\n", child_path,
			strerror(errno));
		exit(2);
	}
}

/* Reap pid and check that it exited 0. */
static int reap_ok(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPROTO;
}

/* ------------------------------------------------------------------------
 * spawn_first_msg
 */

static shmcap_cap *bell;
static int sv[2] = { -1, -1 };

static int spawn_sc_setup(struct hb_ctx *ctx)
{
	(void)ctx;
	return shmcap_notifier_create(&bell);
}

static void spawn_sc_teardown(struct hb_ctx *ctx)
{
	(void)ctx;
	shmcap_cap_close(bell);
	bell = NULL;
}

static int spawn_sc(struct hb_ctx *ctx, int64_t *ns)
{
	char *argv[] = { "actor_child", "shmcap", NULL };
	const char *names[] = { "bell" };
	shmcap_cap *caps[] = { bell };
	shmcap_cap *actor;
	int64_t t0, t1;
	int err, status;

	(void)ctx;
	t0 = now_ns();
	err = shmcap_spawn(child_path, argv, NULL, names, caps, 1, 0, &actor);
	if (err < 0)
		return err;
	err = shmcap_notifier_wait(bell, TIMEOUT_NS);
	t1 = now_ns();
	if (shmcap_actor_wait(actor, TIMEOUT_NS, &status) < 0 ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		err = err < 0 ? err : -EPROTO;
	shmcap_cap_close(actor);
	*ns = t1 - t0;
	return err < 0 ? err : 0;
}

static int sock_setup(struct hb_ctx *ctx)
{
	(void)ctx;
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ?
		       -errno :
		       0;
}

static void sock_teardown(struct hb_ctx *ctx)
{
	(void)ctx;
	close(sv[0]);
	close(sv[1]);
	sv[0] = sv[1] = -1;
}

/* Wait for the child's message on sv[0]. */
static int sock_first_msg(void)
{
	char buf[8];

	while (recv(sv[0], buf, sizeof(buf), 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int spawn_fork_exec(struct hb_ctx *ctx, int64_t *ns)
{
	char *argv[] = { "actor_child", "sock", NULL };
	int64_t t0, t1;
	pid_t pid;
	int err;

	(void)ctx;
	t0 = now_ns();
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* dup2 clears close-on-exec on the copy. */
		if (dup2(sv[1], 3) < 0)
			_exit(126);
		execv(child_path, argv);
		_exit(127);
	}
	err = sock_first_msg();
	t1 = now_ns();
	if (reap_ok(pid) < 0 && err == 0)
		err = -EPROTO;
	*ns = t1 - t0;
	return err;
}

static int spawn_posix(struct hb_ctx *ctx, int64_t *ns)
{
	char *argv[] = { "actor_child", "sock", NULL };
	posix_spawn_file_actions_t fa;
	int64_t t0, t1;
	pid_t pid;
	int err;

	(void)ctx;
	t0 = now_ns();
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	err = posix_spawn(&pid, child_path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err)
		return -err;
	err = sock_first_msg();
	t1 = now_ns();
	if (reap_ok(pid) < 0 && err == 0)
		err = -EPROTO;
	*ns = t1 - t0;
	return err;
}

/* ------------------------------------------------------------------------
 * cap_lookup: a server process per run, killed at teardown
 */

static pid_t server = -1;
static char name[64];
static shmcap_cap *region;

/*
 * Fork the server: it runs serve() (which never returns) after telling
 * the parent it is ready through a pipe.
 */
static int start_server(void (*serve)(int ready))
{
	int p[2], err = 0;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	server = fork();
	if (server < 0) {
		err = -errno;
		goto out;
	}
	if (server == 0) {
		close(p[0]);
		hb_pin_responder();
		serve(p[1]);
		_exit(1);
	}
	close(p[1]);
	p[1] = -1;
	if (read(p[0], &c, 1) != 1) {
		err = -EPROTO;
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
		server = -1;
	}
out:
	close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	return err;
}

static void stop_server(void)
{
	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
	}
	server = -1;
	shmcap_cap_close(region);
	region = NULL;
}

static void lookup_teardown(struct hb_ctx *ctx)
{
	(void)ctx;
	stop_server();
	if (sv[0] >= 0)
		sock_teardown(ctx);
}

static void ready(int fd)
{
	if (write(fd, "r", 1) != 1)
		_exit(1);
	close(fd);
}

static int make_region(void)
{
	return shmcap_region_create(4096, 0, &region);
}

/* shmcap names */

static void serve_name(int fd)
{
	shmcap_name *n;

	if (shmcap_name_publish(name, &region, 1, 0600, 0, &n) < 0)
		_exit(1);
	ready(fd);
	for (;;)
		shmcap_name_dispatch(n, -1);
}

static int lookup_sc_setup(struct hb_ctx *ctx)
{
	int err;

	(void)ctx;
	snprintf(name, sizeof(name), "bench-actor-%d", (int)getpid());
	err = make_region();
	return err < 0 ? err : start_server(serve_name);
}

static int lookup_sc(struct hb_ctx *ctx, int64_t *ns)
{
	shmcap_cap *cap;
	int64_t t0, t1;
	int n;

	(void)ctx;
	t0 = now_ns();
	n = shmcap_name_lookup(name, &cap, 1, TIMEOUT_NS);
	t1 = now_ns();
	if (n < 0)
		return n;
	if (n != 1)
		return -EPROTO;
	shmcap_cap_close(cap);
	*ns = t1 - t0;
	return 0;
}

/* shmcap tokens: the token travels in the harness's shared memory. */

static char *token; /* ctx->shm */

static void serve_token(int fd)
{
	shmcap_issuer *iss;

	if (shmcap_issuer_create(0, &iss) < 0)
		_exit(1);
	if (shmcap_token_issue(iss, region, 0, token, SHMCAP_TOKEN_MAX) < 0)
		_exit(1);
	ready(fd);
	for (;;)
		shmcap_issuer_dispatch(iss, -1);
}

static int lookup_tok_setup(struct hb_ctx *ctx)
{
	int err;

	token = ctx->shm;
	err = make_region();
	return err < 0 ? err : start_server(serve_token);
}

static int lookup_tok(struct hb_ctx *ctx, int64_t *ns)
{
	shmcap_cap *cap;
	int64_t t0, t1;
	int err;

	(void)ctx;
	t0 = now_ns();
	err = shmcap_token_resolve(token, TIMEOUT_NS, &cap);
	t1 = now_ns();
	if (err < 0)
		return err;
	shmcap_cap_close(cap);
	*ns = t1 - t0;
	return 0;
}

/* Raw Unix sockets: what a hand-written broker does. */

/* Send fd as SCM_RIGHTS with one byte on sock. */
static int send_fd(int sock, int fd)
{
	char byte = 'f';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Receive one descriptor sent by send_fd(). */
static int recv_fd(int sock)
{
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) <= 0)
		return -EPROTO;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static struct sockaddr_un broker_addr;
static socklen_t broker_len;

static void serve_broker(int fd)
{
	int lsock, c;
	char req[8];

	lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lsock < 0 ||
	    bind(lsock, (struct sockaddr *)&broker_addr, broker_len) < 0 ||
	    listen(lsock, 64) < 0)
		_exit(1);
	ready(fd);
	for (;;) {
		c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		if (recv(c, req, sizeof(req), 0) > 0)
			send_fd(c, shmcap_cap_fd(region));
		close(c);
	}
}

static int lookup_broker_setup(struct hb_ctx *ctx)
{
	int err;

	(void)ctx;
	memset(&broker_addr, 0, sizeof(broker_addr));
	broker_addr.sun_family = AF_UNIX;
	snprintf(broker_addr.sun_path + 1, sizeof(broker_addr.sun_path) - 1,
		 "bench-actor-broker-%d", (int)getpid());
	broker_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
				 strlen(broker_addr.sun_path + 1));
	err = make_region();
	return err < 0 ? err : start_server(serve_broker);
}

static int lookup_broker(struct hb_ctx *ctx, int64_t *ns)
{
	int64_t t0, t1;
	int s, fd, err = 0;

	(void)ctx;
	t0 = now_ns();
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&broker_addr, broker_len) < 0 ||
	    send(s, "q", 1, MSG_NOSIGNAL) != 1) {
		err = -errno;
		close(s);
		return err;
	}
	fd = recv_fd(s);
	close(s);
	t1 = now_ns();
	if (fd < 0)
		return fd;
	close(fd);
	*ns = t1 - t0;
	return 0;
}

static void serve_pair(int fd)
{
	char req[8];

	close(sv[0]);
	ready(fd);
	while (recv(sv[1], req, sizeof(req), 0) > 0)
		send_fd(sv[1], shmcap_cap_fd(region));
	_exit(0);
}

static int lookup_pair_setup(struct hb_ctx *ctx)
{
	int err = sock_setup(ctx);

	if (err < 0)
		return err;
	err = make_region();
	return err < 0 ? err : start_server(serve_pair);
}

static int lookup_pair(struct hb_ctx *ctx, int64_t *ns)
{
	int64_t t0, t1;
	int fd;

	(void)ctx;
	t0 = now_ns();
	if (send(sv[0], "q", 1, MSG_NOSIGNAL) != 1)
		return -errno;
	fd = recv_fd(sv[0]);
	t1 = now_ns();
	if (fd < 0)
		return fd;
	close(fd);
	*ns = t1 - t0;
	return 0;
}

/* ------------------------------------------------------------------------
 * The benches
 */

static const struct hb_impl spawn_impls[] = {
	{
		.name = "shmcap",
		.setup = spawn_sc_setup,
		.measure = spawn_sc,
		.teardown = spawn_sc_teardown,
	},
	{
		.name = "fork_exec",
		.setup = sock_setup,
		.measure = spawn_fork_exec,
		.teardown = sock_teardown,
	},
	{
		.name = "posix_spawn",
		.setup = sock_setup,
		.measure = spawn_posix,
		.teardown = sock_teardown,
	},
};

static const struct hb_impl lookup_impls[] = {
	{
		.name = "shmcap",
		.setup = lookup_sc_setup,
		.measure = lookup_sc,
		.teardown = lookup_teardown,
	},
	{
		.name = "shmcap_token",
		.setup = lookup_tok_setup,
		.measure = lookup_tok,
		.teardown = lookup_teardown,
	},
	{
		.name = "connect_scm",
		.setup = lookup_broker_setup,
		.measure = lookup_broker,
		.teardown = lookup_teardown,
	},
	{
		.name = "socketpair",
		.setup = lookup_pair_setup,
		.measure = lookup_pair,
		.teardown = lookup_teardown,
	},
};

static const char *const benches[] = {
	"spawn_first_msg",
	"cap_lookup",
	NULL,
};

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(int argc, char **argv)
{
	static const struct hb_bench spawn = {
		.name = "spawn_first_msg",
		.subject = "shmcap",
		.impls = spawn_impls,
		.nimpls = N(spawn_impls),
		.samples = 2000,
		.warmup = 50,
	};
	static const struct hb_bench lookup = {
		.name = "cap_lookup",
		.subject = "shmcap",
		.impls = lookup_impls,
		.nimpls = N(lookup_impls),
		.samples = 20000,
		.warmup = 500,
	};

	hb_init(argc, argv, "bench_actor", benches);
	find_child();
	/* A child that dies unreaped must not stop the run with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	hb_pingpong(&spawn);
	hb_pingpong(&lookup);
	return hb_finish();
}
