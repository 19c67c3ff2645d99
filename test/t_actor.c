/* Description: actors: ids and their text, actor capabilities, pid reuse, alive/signal/wait, transfer of actor capabilities, bad input */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"

#define SEC ((int64_t)1000000000)
#define MS ((int64_t)1000000)

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#define T_PID_FS_MAGIC 0x50494446
#define T_PIDFD_THREAD O_EXCL

static int have_pidfs;
static const char *pid_reuse_skipped;

static int pidfd_open_raw(pid_t pid, unsigned int flags)
{
	return (int)syscall(SYS_pidfd_open, pid, flags);
}

static int id_eq(const shmcap_actor_id *a, const shmcap_actor_id *b)
{
	return memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

static shmcap_actor_id id_of(const shmcap_cap *actor)
{
	shmcap_actor_id id;

	CHECK_OK(shmcap_actor_id_of(actor, &id));
	return id;
}

/* A child that sleeps until killed. */
static pid_t sleeper(void)
{
	pid_t pid = t_fork_child(60);

	if (pid == 0)
		for (;;)
			pause();
	return pid;
}

/* ------------------------------------------------------------------------
 * Ids
 */

/* The id of the process behind pidfd, computed here independently. */
static void expected_id(int pidfd, pid_t pid, shmcap_actor_id *id)
{
	char text[64], path[64], buf[1024], *p;
	unsigned long long ticks, serial;
	struct statfs sfs;
	struct stat st;
	FILE *f;
	int i, n = 0, field;

	f = fopen("/proc/sys/kernel/random/boot_id", "re");
	CHECK_NOTNULL(f);
	CHECK_NOTNULL(fgets(text, sizeof(text), f));
	fclose(f);
	for (i = 0; text[i] && n < 16; i++) {
		unsigned int v;

		if (text[i] == '-')
			continue;
		CHECK_EQ(sscanf(&text[i], "%1x", &v), 1);
		if (n % 2 == 0)
			id->bytes[n / 2] = (uint8_t)(v << 4);
		else
			id->bytes[n / 2] |= (uint8_t)v;
		n++;
	}
	CHECK_EQ(fstatfs(pidfd, &sfs), 0);
	if (sfs.f_type == T_PID_FS_MAGIC) {
		CHECK_EQ(fstat(pidfd, &st), 0);
		serial = (unsigned long long)st.st_ino;
	} else {
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		f = fopen(path, "re");
		CHECK_NOTNULL(f);
		CHECK_NOTNULL(fgets(buf, sizeof(buf), f));
		fclose(f);
		p = strrchr(buf, ')');
		CHECK_NOTNULL(p);
		for (field = 2; field < 22; field++) {
			p = strchr(p + 1, ' ');
			CHECK_NOTNULL(p);
		}
		ticks = strtoull(p + 1, NULL, 10);
		serial = ticks << 22 | (unsigned long long)pid;
	}
	for (i = 0; i < 8; i++)
		id->bytes[8 + i] = (uint8_t)(serial >> (56 - 8 * i));
}

static void test_self(void)
{
	shmcap_actor_id a, b, want;
	int fd;

	CHECK_EQ(shmcap_self(NULL), getpid());
	CHECK_EQ(shmcap_self(&a), getpid());
	CHECK_EQ(shmcap_self(&b), getpid());
	CHECK(id_eq(&a, &b));
	fd = pidfd_open_raw(getpid(), 0);
	CHECK(fd >= 0);
	expected_id(fd, getpid(), &want);
	close(fd);
	CHECK(id_eq(&a, &want));
}

static void test_text(void)
{
	static const char *const bad[] = {
		"",
		"0123456789abcdef0123456789abcde",   /* 31 digits */
		"0123456789abcdef0123456789abcdef0", /* 33 */
		"0123456789abcdef0123456789abcdeg",
		"0123456789abcdef0123456789abcdef\n",
		" 0123456789abcdef0123456789abcdef",
		"0x23456789abcdef0123456789abcdef",
		"01234567-89ab-cdef-0123-456789abcdef",
		"0123456789abcdef 123456789abcdef",
	};
	char text[SHMCAP_ACTOR_ID_TEXT + 8];
	shmcap_actor_id id, back;
	size_t i;

	CHECK_EQ(shmcap_self(&id), getpid());
	memset(text, 'z', sizeof(text));
	CHECK_EQ(shmcap_actor_id_format(&id, text, sizeof(text)), 32);
	CHECK_EQ(strlen(text), 32);
	for (i = 0; i < 32; i++)
		CHECK((text[i] >= '0' && text[i] <= '9') ||
		      (text[i] >= 'a' && text[i] <= 'f'));
	CHECK_OK(shmcap_actor_id_parse(text, &back));
	CHECK(id_eq(&id, &back));

	/* Exactly SHMCAP_ACTOR_ID_TEXT bytes suffice; one fewer does not. */
	CHECK_EQ(shmcap_actor_id_format(&id, text, SHMCAP_ACTOR_ID_TEXT), 32);
	CHECK_ERR(shmcap_actor_id_format(&id, text, SHMCAP_ACTOR_ID_TEXT - 1),
		  -ENOSPC);
	CHECK_ERR(shmcap_actor_id_format(NULL, text, sizeof(text)), -EINVAL);
	CHECK_ERR(shmcap_actor_id_format(&id, NULL, sizeof(text)), -EINVAL);

	/* Either case is read; known bytes come out right. */
	CHECK_OK(shmcap_actor_id_parse("00FF10Ab0123456789ABCDEFabcdef01",
				       &back));
	CHECK_EQ(back.bytes[0], 0x00);
	CHECK_EQ(back.bytes[1], 0xff);
	CHECK_EQ(back.bytes[2], 0x10);
	CHECK_EQ(back.bytes[3], 0xab);
	CHECK_EQ(back.bytes[15], 0x01);
	CHECK_EQ(shmcap_actor_id_format(&back, text, sizeof(text)), 32);
	CHECK_STR_EQ(text, "00ff10ab0123456789abcdefabcdef01");

	memcpy(&back, &id, sizeof(id));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (shmcap_actor_id_parse(bad[i], &back) != -EINVAL)
			FAIL("\"%s\" was accepted", bad[i]);
		CHECK(id_eq(&back, &id)); /* untouched on error */
	}
	CHECK_ERR(shmcap_actor_id_parse(NULL, &back), -EINVAL);
	CHECK_ERR(shmcap_actor_id_parse(text, NULL), -EINVAL);
}

static void test_actor_self_open(void)
{
	shmcap_actor_id self, other;
	shmcap_cap *me, *again;
	int fds = t_count_fds();

	CHECK_EQ(shmcap_self(&self), getpid());
	CHECK_OK(shmcap_actor_self(&me));
	CHECK_EQ(shmcap_cap_type(me), SHMCAP_TYPE_ACTOR);
	CHECK_EQ(shmcap_cap_rights(me), SHMCAP_RIGHTS_ACTOR);
	CHECK_EQ(shmcap_actor_pid(me), getpid());
	CHECK(id_eq(&self, &(shmcap_actor_id){ 0 }) == 0);
	other = id_of(me);
	CHECK(id_eq(&self, &other));
	CHECK(fcntl(shmcap_cap_fd(me), F_GETFD) & FD_CLOEXEC);
	CHECK_EQ(shmcap_actor_alive(me), 1);
	CHECK_OK(shmcap_actor_signal(me, 0));
	/* Our own end never comes. */
	CHECK_ERR(shmcap_actor_wait(me, 0, NULL), -ETIMEDOUT);
	CHECK_ERR(shmcap_actor_wait(me, 5 * MS, NULL), -ETIMEDOUT);

	CHECK_OK(shmcap_actor_open(getpid(), NULL, &again));
	other = id_of(again);
	CHECK(id_eq(&self, &other));
	shmcap_cap_close(again);
	CHECK_OK(shmcap_actor_open(getpid(), &self, &again));
	shmcap_cap_close(again);
	other = self;
	other.bytes[15] ^= 1;
	again = NULL;
	CHECK_ERR(shmcap_actor_open(getpid(), &other, &again), -ESRCH);
	CHECK_NULL(again);
	other = self;
	other.bytes[0] ^= 0x80; /* another boot */
	CHECK_ERR(shmcap_actor_open(getpid(), &other, &again), -ESRCH);

	CHECK_ERR(shmcap_actor_open(0, NULL, &again), -EINVAL);
	CHECK_ERR(shmcap_actor_open(-5, NULL, &again), -EINVAL);
	CHECK_ERR(shmcap_actor_open(getpid(), NULL, NULL), -EINVAL);
	CHECK_ERR(shmcap_actor_open(INT32_MAX, NULL, &again), -ESRCH);
	shmcap_cap_close(me);
	CHECK_EQ(t_count_fds(), fds);
}

/* A thread of ours is not an actor of its own. */
static void *thread_tid(void *arg)
{
	pid_t *tid = arg;
	shmcap_cap *c;

	*tid = (pid_t)syscall(SYS_gettid);
	CHECK_ERR(shmcap_actor_open(*tid, NULL, &c), -ESRCH);
	/* Every thread is the same actor. */
	CHECK_OK(shmcap_actor_self(&c));
	CHECK_EQ(shmcap_actor_pid(c), getpid());
	shmcap_cap_close(c);
	return NULL;
}

static void test_thread(void)
{
	pthread_t t;
	pid_t tid = 0;

	CHECK_EQ(pthread_create(&t, NULL, thread_tid, &tid), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK(tid != getpid());
}

/* A child is another actor, with the id its parent computes for it. */
static void test_child_ids(void)
{
	shmcap_actor_id mine, theirs, seen;
	shmcap_cap *child;
	int p[2], st;
	pid_t pid;

	CHECK_EQ(shmcap_self(&mine), getpid()); /* cached before fork */
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	pid = t_fork_child(30);
	if (pid == 0) {
		CHECK_EQ(shmcap_self(&theirs), getpid());
		CHECK(!id_eq(&theirs, &mine));
		CHECK_EQ(write(p[1], &theirs, sizeof(theirs)),
			 (ssize_t)sizeof(theirs));
		t_child_pass();
	}
	CHECK_EQ(read(p[0], &theirs, sizeof(theirs)), (ssize_t)sizeof(theirs));
	CHECK_OK(shmcap_actor_open(pid, NULL, &child));
	seen = id_of(child);
	CHECK(id_eq(&seen, &theirs));
	CHECK(!id_eq(&seen, &mine));
	CHECK_OK(shmcap_actor_wait(child, 30 * SEC, &st));
	CHECK_CHILD_OK(st);
	shmcap_cap_close(child);

#if !T_TSAN
	/* A fork that runs no pthread_atfork() handler. */
	pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	CHECK(pid >= 0);
	if (pid == 0) {
		if (shmcap_self(&theirs) != syscall(SYS_getpid) ||
		    id_eq(&theirs, &mine))
			_exit(1);
		if (write(p[1], &theirs, sizeof(theirs)) != sizeof(theirs))
			_exit(1);
		_exit(0);
	}
	CHECK_EQ(read(p[0], &theirs, sizeof(theirs)), (ssize_t)sizeof(theirs));
	CHECK_OK(shmcap_actor_open(pid, NULL, &child));
	seen = id_of(child);
	CHECK(id_eq(&seen, &theirs));
	CHECK_OK(shmcap_actor_wait(child, 30 * SEC, &st));
	CHECK_CHILD_OK(st);
	shmcap_cap_close(child);
#endif
	close(p[0]);
	close(p[1]);
	CHECK_EQ(shmcap_self(&theirs), getpid());
	CHECK(id_eq(&theirs, &mine));
}

/* ------------------------------------------------------------------------
 * Pid reuse
 */

/* Make the next pid allocated in our pid namespace be pid. */
static int set_next_pid(pid_t pid)
{
	char text[16];
	int fd, len, ok;

	fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	len = snprintf(text, sizeof(text), "%d", (int)pid - 1);
	ok = write(fd, text, (size_t)len) == len;
	close(fd);
	return ok ? 0 : -1;
}

/*
 * Kill and reap a child, make a new one get its pid, and check that
 * nothing mistakes the new one for the old. Returns 0, or 1 if the pid
 * could not be made to come back.
 */
static int pid_reuse(void)
{
	shmcap_actor_id old_id, new_id;
	shmcap_cap *old_cap, *new_cap, *c;
	pid_t x, y;
	int st, tries;

	x = sleeper();
	CHECK_OK(shmcap_actor_open(x, NULL, &old_cap));
	old_id = id_of(old_cap);
	CHECK_OK(shmcap_actor_signal(old_cap, SIGKILL));
	CHECK_OK(shmcap_actor_wait(old_cap, 30 * SEC, &st));
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	/* Others may take pids meanwhile (in the host's namespace). */
	for (tries = 0;; tries++) {
		if (tries == 20 || set_next_pid(x) < 0)
			return 1;
		y = sleeper();
		if (y == x)
			break;
		kill(y, SIGKILL);
		t_check_killed(y, 30);
	}

	CHECK_ERR(shmcap_actor_open(x, &old_id, &c), -ESRCH);
	CHECK_OK(shmcap_actor_open(x, NULL, &new_cap));
	new_id = id_of(new_cap);
	CHECK(!id_eq(&old_id, &new_id));
	CHECK_OK(shmcap_actor_open(x, &new_id, &c));
	shmcap_cap_close(c);

	/* The old capability still names the old process, which ended. */
	CHECK_EQ(shmcap_actor_pid(old_cap), x);
	CHECK_EQ(shmcap_actor_alive(old_cap), 0);
	CHECK_ERR(shmcap_actor_signal(old_cap, 0), -ESRCH);
	CHECK_ERR(shmcap_actor_signal(old_cap, SIGKILL), -ESRCH);
	st = 0;
	CHECK_OK(shmcap_actor_wait(old_cap, 0, &st));
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	CHECK_EQ(shmcap_actor_alive(new_cap), 1); /* untouched */

	CHECK_OK(shmcap_actor_signal(new_cap, SIGTERM));
	CHECK_OK(shmcap_actor_wait(new_cap, 30 * SEC, &st));
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	shmcap_cap_close(old_cap);
	shmcap_cap_close(new_cap);
	return 0;
}

static void test_pid_reuse(void)
{
	pid_t c, g;
	int st;

	/*
	 * In a pid namespace of our own, where nobody else takes pids and
	 * writing ns_last_pid affects nobody; with its own /proc, for
	 * kernels without pidfs.
	 */
	c = t_fork_child(60);
	if (c == 0) {
		if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0)
			_exit(T_EXIT_SKIP);
		g = fork(); /* pid 1 of the new namespace */
		CHECK(g >= 0);
		if (g == 0) {
			if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ==
			    0)
				mount("proc", "/proc", "proc",
				      MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
			_exit(pid_reuse() ? T_EXIT_SKIP : T_EXIT_PASS);
		}
		st = t_wait_child(g, 50);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : T_EXIT_FAIL);
	}
	st = t_wait_child(c, 60);
	if (WIFEXITED(st) && WEXITSTATUS(st) == T_EXIT_SKIP) {
		/* No namespace: the host's, where we race other processes. */
		if (pid_reuse())
			pid_reuse_skipped = "cannot make a pid come back "
					    "(no pid namespace, no "
					    "ns_last_pid)";
		else
			printf("pid reuse: checked in the host's namespace\n");
		return;
	}
	CHECK_CHILD_OK(st);
	printf("pid reuse: checked in a pid namespace of our own\n");
}

/* ------------------------------------------------------------------------
 * Alive, signal, wait
 */

static void test_alive_signal_wait(void)
{
	struct pollfd pfd;
	shmcap_cap *a;
	pid_t pid;
	int st;

	/* A signal ends it; a wait that times out first. */
	pid = sleeper();
	CHECK_OK(shmcap_actor_open(pid, NULL, &a));
	CHECK_EQ(shmcap_actor_alive(a), 1);
	CHECK_ERR(shmcap_actor_wait(a, 20 * MS, &st), -ETIMEDOUT);
	CHECK_ERR(shmcap_actor_wait(a, 0, &st), -ETIMEDOUT);
	CHECK_OK(shmcap_actor_signal(a, 0));
	CHECK_ERR(shmcap_actor_signal(a, -1), -EINVAL);
	CHECK_ERR(shmcap_actor_signal(a, 65), -EINVAL);
	CHECK_OK(shmcap_actor_signal(a, SIGTERM));
	st = 0;
	CHECK_OK(shmcap_actor_wait(a, 30 * SEC, &st));
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	st = 0;
	CHECK_OK(shmcap_actor_wait(a, SHMCAP_FOREVER, &st));
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	CHECK_EQ(shmcap_actor_alive(a), 0);
	CHECK_ERR(shmcap_actor_signal(a, SIGTERM), -ESRCH);
	shmcap_cap_close(a);

	/* An exit code; SIGKILL. */
	pid = t_fork_child(30);
	if (pid == 0)
		_exit(42);
	CHECK_OK(shmcap_actor_open(pid, NULL, &a));
	CHECK_OK(shmcap_actor_wait(a, 30 * SEC, &st));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42);
	shmcap_cap_close(a);

	pid = sleeper();
	CHECK_OK(shmcap_actor_open(pid, NULL, &a));
	CHECK_OK(shmcap_actor_signal(a, SIGKILL));
	CHECK_OK(shmcap_actor_wait(a, 30 * SEC, NULL));
	CHECK_EQ(waitpid(pid, NULL, WNOHANG), -1); /* reaped */
	shmcap_cap_close(a);

	/* A zombie has ended: not alive, no signal, then reaped. */
	pid = t_fork_child(30);
	if (pid == 0)
		_exit(3);
	CHECK_OK(shmcap_actor_open(pid, NULL, &a));
	pfd.fd = shmcap_cap_fd(a);
	pfd.events = POLLIN;
	CHECK_EQ(poll(&pfd, 1, 30000), 1);
	CHECK_EQ(t_proc_state(pid), 'Z');
	CHECK_EQ(shmcap_actor_alive(a), 0);
	CHECK_ERR(shmcap_actor_signal(a, 0), -ESRCH);
	CHECK_OK(shmcap_actor_wait(a, 0, &st));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
	CHECK_EQ(t_proc_state(pid), '?');
	shmcap_cap_close(a);

	/* Opened from a pid, a zombie is still an actor; not once reaped. */
	pid = t_fork_child(30);
	if (pid == 0)
		_exit(4);
	CHECK_EQ(waitid(P_PID, (id_t)pid, NULL, WEXITED | WNOWAIT), 0);
	CHECK_OK(shmcap_actor_open(pid, NULL, &a));
	CHECK_EQ(shmcap_actor_alive(a), 0);
	CHECK_OK(shmcap_actor_wait(a, 0, &st));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 4);
	shmcap_cap_close(a);
	CHECK_ERR(shmcap_actor_open(pid, NULL, &a), -ESRCH);
}

/* Two threads wait for one child: both return, one reaps it. */
struct waiter {
	shmcap_cap *actor;
	int ret;
	int status;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;

	int st = 0, ret;

	ret = shmcap_actor_wait(w->actor, 30 * SEC, &st);
	w->status = st;
	/* Release: the status is written before the result is seen. */
	__atomic_store_n(&w->ret, ret, __ATOMIC_RELEASE);
	return NULL;
}

static int interrupted;

static void on_usr2(int sig)
{
	(void)sig;
	__atomic_store_n(&interrupted, 1, __ATOMIC_RELAXED);
}

static void test_wait_threads(void)
{
	struct waiter w[2];
	struct sigaction sa, old;
	pthread_t t[2];
	shmcap_cap *a;
	pid_t pid;
	int i;

	pid = t_fork_child(30);
	if (pid == 0) {
		t_sleep_ns(30 * MS);
		_exit(7);
	}
	CHECK_OK(shmcap_actor_open(pid, NULL, &a));
	for (i = 0; i < 2; i++) {
		w[i].actor = a;
		w[i].ret = 1;
		w[i].status = 0;
		CHECK_EQ(pthread_create(&t[i], NULL, wait_thread, &w[i]), 0);
	}
	for (i = 0; i < 2; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	for (i = 0; i < 2; i++) {
		CHECK_OK(w[i].ret);
		/* The loser of the race may find it gone before it is told. */
		CHECK(w[i].status == 7 << 8 || w[i].status == -1);
	}
	CHECK(w[0].status == 7 << 8 || w[1].status == 7 << 8);
	shmcap_cap_close(a);

	/* A handler that interrupts a wait without limit: -EINTR. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR2, &sa, &old), 0);
	pid = sleeper();
	CHECK_OK(shmcap_actor_open(pid, NULL, &a));
	w[0].actor = a;
	w[0].ret = 1;
	CHECK_EQ(pthread_create(&t[0], NULL, wait_thread, &w[0]), 0);
	while (__atomic_load_n(&w[0].ret, __ATOMIC_ACQUIRE) == 1) {
		pthread_kill(t[0], SIGUSR2);
		t_sleep_ns(2 * MS);
	}
	CHECK_EQ(pthread_join(t[0], NULL), 0);
	CHECK_ERR(w[0].ret, -EINTR);
	CHECK(__atomic_load_n(&interrupted, __ATOMIC_RELAXED));
	CHECK_EQ(sigaction(SIGUSR2, &old, NULL), 0);
	CHECK_EQ(shmcap_actor_alive(a), 1);
	CHECK_OK(shmcap_actor_signal(a, SIGKILL));
	CHECK_OK(shmcap_actor_wait(a, 30 * SEC, NULL));
	shmcap_cap_close(a);
}

/* ------------------------------------------------------------------------
 * Actor capabilities in other processes
 */

struct sent {
	char id_text[SHMCAP_ACTOR_ID_TEXT];
	char dead_id_text[SHMCAP_ACTOR_ID_TEXT];
	char token[SHMCAP_TOKEN_MAX];
	int32_t pid;
};

/*
 * The receiver: not the parent of the actor it gets, it can watch and
 * signal it, but not reap it.
 */
static void receiver(int sock)
{
	shmcap_cap *caps[SHMCAP_MSG_MAX_CAPS], *tok;
	shmcap_actor_id want, got, dead;
	struct sent s;
	size_t n = 0;
	int st, ret;

	ret = shmcap_recv(sock, caps, SHMCAP_MSG_MAX_CAPS, &n, &s, sizeof(s),
			  NULL, 0);
	CHECK_EQ(ret, (int)sizeof(s));
	CHECK_EQ(n, 4);
	CHECK_OK(shmcap_actor_id_parse(s.id_text, &want));
	CHECK_OK(shmcap_actor_id_parse(s.dead_id_text, &dead));

	CHECK_EQ(shmcap_cap_type(caps[0]), SHMCAP_TYPE_ACTOR);
	CHECK_EQ(shmcap_cap_rights(caps[0]), SHMCAP_RIGHTS_ACTOR);
	CHECK_EQ(shmcap_cap_rights(caps[1]), SHMCAP_RIGHT_WAIT);
	CHECK_EQ(shmcap_cap_rights(caps[2]), SHMCAP_RIGHT_SIGNAL);
	CHECK_EQ(shmcap_actor_pid(caps[0]), s.pid);
	got = id_of(caps[0]);
	CHECK(id_eq(&got, &want));
	got = id_of(caps[2]);
	CHECK(id_eq(&got, &want));
	CHECK_EQ(shmcap_actor_alive(caps[0]), 1);
	CHECK_EQ(shmcap_actor_alive(caps[1]), 1);
	CHECK_ERR(shmcap_actor_alive(caps[2]), -EACCES);
	CHECK_ERR(shmcap_actor_signal(caps[1], 0), -EACCES);
	CHECK_ERR(shmcap_actor_wait(caps[2], 0, &st), -EACCES);
	CHECK_ERR(shmcap_actor_wait(caps[0], 10 * MS, &st), -ETIMEDOUT);

	/* The same actor through a token. */
	CHECK_OK(shmcap_token_resolve(s.token, 10 * SEC, &tok));
	CHECK_EQ(shmcap_cap_type(tok), SHMCAP_TYPE_ACTOR);
	CHECK_EQ(shmcap_actor_pid(tok), s.pid);
	got = id_of(tok);
	CHECK(id_eq(&got, &want));

	/* Send it back before it ends. */
	CHECK_OK(shmcap_send(sock, caps, 1, "back", 4, 0));

	/* End it, and see it end without being able to reap it. */
	CHECK_OK(shmcap_actor_signal(caps[2], SIGKILL));
	st = 0;
	CHECK_OK(shmcap_actor_wait(caps[0], 30 * SEC, &st));
	CHECK_EQ(st, -1);
	st = 0;
	CHECK_OK(shmcap_actor_wait(tok, 30 * SEC, &st));
	CHECK_EQ(st, -1);
	CHECK_EQ(shmcap_actor_alive(caps[1]), 0);
	CHECK_ERR(shmcap_actor_signal(caps[2], 0), -ESRCH);

	/* An actor that was reaped before we got it. */
	CHECK_ERR(shmcap_actor_pid(caps[3]), -ESRCH);
	if (have_pidfs) {
		got = id_of(caps[3]);
		CHECK(id_eq(&got, &dead));
	} else {
		CHECK_ERR(shmcap_actor_id_of(caps[3], &got), -ESRCH);
	}
	CHECK_EQ(shmcap_actor_alive(caps[3]), 0);
	CHECK_ERR(shmcap_actor_signal(caps[3], 0), -ESRCH);
	st = 0;
	CHECK_OK(shmcap_actor_wait(caps[3], 0, &st));
	CHECK_EQ(st, -1);

	shmcap_cap_close(tok);
	for (n = 0; n < 4; n++)
		shmcap_cap_close(caps[n]);
	CHECK_OK(shmcap_send(sock, NULL, 0, "done", 4, 0));
	t_child_pass();
}

static void test_transfer(void)
{
	shmcap_cap *a, *caps[4], *back = NULL;
	shmcap_issuer *iss;
	shmcap_actor_id id, got;
	struct sent s;
	char reply[8];
	size_t n;
	pid_t pid, recv_pid, dead;
	int sv[2], st;

	CHECK_OK(shmcap_socketpair(sv));
	recv_pid = t_fork_child(60);
	if (recv_pid == 0) {
		close(sv[0]);
		receiver(sv[1]);
	}
	close(sv[1]);

	memset(&s, 0, sizeof(s));
	pid = sleeper();
	CHECK_OK(shmcap_actor_open(pid, NULL, &a));
	id = id_of(a);
	CHECK_EQ(shmcap_actor_id_format(&id, s.id_text, sizeof(s.id_text)), 32);
	s.pid = pid;
	caps[0] = a;
	CHECK_OK(shmcap_cap_derive(a, SHMCAP_RIGHT_WAIT, &caps[1]));
	CHECK_OK(shmcap_cap_derive(a, SHMCAP_RIGHT_SIGNAL, &caps[2]));
	CHECK_EQ(shmcap_actor_pid(caps[1]), pid);
	got = id_of(caps[2]);
	CHECK(id_eq(&got, &id));

	dead = t_fork_child(30);
	if (dead == 0)
		_exit(0);
	CHECK_OK(shmcap_actor_open(dead, NULL, &caps[3]));
	got = id_of(caps[3]);
	CHECK_EQ(shmcap_actor_id_format(&got, s.dead_id_text,
					sizeof(s.dead_id_text)),
		 32);
	CHECK_OK(shmcap_actor_wait(caps[3], 30 * SEC, &st));

	CHECK_OK(shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss));
	CHECK_OK(shmcap_token_issue(iss, a, 0, s.token, sizeof(s.token)));

	CHECK_OK(shmcap_send(sv[0], caps, 4, &s, sizeof(s), 0));
	n = 0;
	CHECK_EQ(shmcap_recv(sv[0], &back, 1, &n, reply, sizeof(reply), NULL,
			     0),
		 4);
	CHECK_EQ(n, 1);
	got = id_of(back);
	CHECK(id_eq(&got, &id));
	CHECK_EQ(shmcap_actor_pid(back), pid);

	/* The receiver kills it; we, the parent, reap it. */
	CHECK_EQ(shmcap_recv(sv[0], NULL, 0, &n, reply, sizeof(reply), NULL, 0),
		 4);
	CHECK(memcmp(reply, "done", 4) == 0);
	st = 0;
	CHECK_OK(shmcap_actor_wait(back, 30 * SEC, &st));
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	/* a has not seen the reaping, but finds the process gone. */
	CHECK_EQ(shmcap_actor_alive(a), 0);
	t_reap_ok(recv_pid, 60);

	shmcap_issuer_destroy(iss);
	shmcap_cap_close(back);
	for (n = 0; n < 4; n++)
		shmcap_cap_close(caps[n]);
	close(sv[0]);
}

/* ------------------------------------------------------------------------
 * Bad input
 */

#define CHECK_RECV_ERR(sock, err)                                              \
	do {                                                                   \
		shmcap_cap *c_[SHMCAP_MSG_MAX_CAPS];                           \
		size_t n_ = 99;                                                \
		CHECK_ERR(shmcap_recv((sock), c_, SHMCAP_MSG_MAX_CAPS, &n_,    \
				      NULL, 0, NULL, SHMCAP_MSG_DONTWAIT),     \
			  (err));                                              \
	} while (0)

static void test_forged(void)
{
	struct t_wire_hdr h;
	shmcap_cap *region, *c[SHMCAP_MSG_MAX_CAPS];
	int sv[2], pidfd, tfd, fds;
	size_t n;

	CHECK_OK(shmcap_region_create(4096, 0, &region));
	CHECK_OK(shmcap_socketpair(sv));
	pidfd = pidfd_open_raw(getpid(), 0);
	CHECK(pidfd >= 0);
	fds = t_count_fds();

	/* A region claimed to be an actor, a pidfd claimed otherwise. */
	t_wire_init(&h, 1, SHMCAP_RIGHTS_ACTOR, 0);
	h.caps[0].type = SHMCAP_TYPE_ACTOR;
	t_raw_send(sv[0], &h, sizeof(h), (int[]){ shmcap_cap_fd(region) }, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	h.caps[0].type = SHMCAP_TYPE_REGION;
	h.caps[0].rights = SHMCAP_RIGHTS_REGION;
	t_raw_send(sv[0], &h, sizeof(h), &pidfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	h.caps[0].type = SHMCAP_TYPE_NOTIFIER;
	h.caps[0].rights = SHMCAP_RIGHTS_NOTIFIER;
	t_raw_send(sv[0], &h, sizeof(h), &pidfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	/* An actor without an actor's rights. */
	h.caps[0].type = SHMCAP_TYPE_ACTOR;
	h.caps[0].rights = SHMCAP_RIGHTS_REGION;
	t_raw_send(sv[0], &h, sizeof(h), &pidfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	h.caps[0].rights = 0;
	t_raw_send(sv[0], &h, sizeof(h), &pidfd, 1);
	CHECK_RECV_ERR(sv[1], -EBADMSG);
	/* More rights claimed than an actor has: only its own kept. */
	h.caps[0].rights = 0xffffffffu;
	t_raw_send(sv[0], &h, sizeof(h), &pidfd, 1);
	CHECK_EQ(shmcap_recv(sv[1], c, SHMCAP_MSG_MAX_CAPS, &n, NULL, 0, NULL,
			     0),
		 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(shmcap_cap_rights(c[0]), SHMCAP_RIGHTS_ACTOR);
	CHECK_EQ(shmcap_actor_pid(c[0]), getpid());
	shmcap_cap_close(c[0]);

	/* A pidfd of one thread (Linux 6.9) is not an actor. */
	tfd = pidfd_open_raw(getpid(), T_PIDFD_THREAD);
	if (tfd >= 0) {
		h.caps[0].rights = SHMCAP_RIGHTS_ACTOR;
		t_raw_send(sv[0], &h, sizeof(h), &tfd, 1);
		CHECK_RECV_ERR(sv[1], -EBADMSG);
		close(tfd);
		printf("thread pidfd: refused\n");
	}
	CHECK_EQ(t_count_fds(), fds);
	close(pidfd);
	close(sv[0]);
	close(sv[1]);
	shmcap_cap_close(region);
}

static void test_bad_input(void)
{
	shmcap_cap *region, *notifier, *me, *c;
	shmcap_actor_id id;
	int st;

	CHECK_OK(shmcap_region_create(4096, 0, &region));
	CHECK_OK(shmcap_notifier_create(&notifier));
	CHECK_OK(shmcap_actor_self(&me));

	CHECK_ERR(shmcap_actor_self(NULL), -EINVAL);
	CHECK_ERR(shmcap_actor_pid(NULL), -EINVAL);
	CHECK_ERR(shmcap_actor_pid(region), -EINVAL);
	CHECK_ERR(shmcap_actor_id_of(NULL, &id), -EINVAL);
	CHECK_ERR(shmcap_actor_id_of(notifier, &id), -EINVAL);
	CHECK_ERR(shmcap_actor_id_of(me, NULL), -EINVAL);
	CHECK_ERR(shmcap_actor_alive(NULL), -EINVAL);
	CHECK_ERR(shmcap_actor_alive(region), -EINVAL);
	CHECK_ERR(shmcap_actor_signal(NULL, 0), -EINVAL);
	CHECK_ERR(shmcap_actor_signal(notifier, 0), -EINVAL);
	CHECK_ERR(shmcap_actor_wait(NULL, 0, &st), -EINVAL);
	CHECK_ERR(shmcap_actor_wait(region, 0, &st), -EINVAL);

	/* Rights: a derived capability has only what it was given. */
	CHECK_ERR(shmcap_cap_derive(me, SHMCAP_RIGHT_READ, &c), -EPERM);
	CHECK_ERR(shmcap_cap_derive(me, 0, &c), -EINVAL);
	CHECK_ERR(shmcap_cap_derive(me, 0x100, &c), -EINVAL);
	CHECK_OK(shmcap_cap_derive(me, SHMCAP_RIGHT_SIGNAL, &c));
	CHECK_EQ(shmcap_cap_type(c), SHMCAP_TYPE_ACTOR);
	CHECK_EQ(shmcap_actor_pid(c), getpid());
	CHECK_ERR(shmcap_actor_alive(c), -EACCES);
	CHECK_ERR(shmcap_actor_wait(c, 0, &st), -EACCES);
	CHECK_OK(shmcap_actor_signal(c, 0));
	CHECK_ERR(shmcap_cap_derive(c, SHMCAP_RIGHT_WAIT, &region), -EPERM);
	shmcap_cap_close(c);
	CHECK_OK(shmcap_cap_derive(me, SHMCAP_RIGHT_WAIT, &c));
	CHECK_ERR(shmcap_actor_signal(c, 0), -EACCES);
	CHECK_EQ(shmcap_actor_alive(c), 1);
	shmcap_cap_close(c);

	shmcap_cap_close(me);
	shmcap_cap_close(notifier);
	shmcap_cap_close(region);
}

/* Many threads asking who they are at once. */
static void *self_thread(void *arg)
{
	const shmcap_actor_id *want = arg;
	shmcap_actor_id id;
	shmcap_cap *c;
	int i;

	for (i = 0; i < 200; i++) {
		CHECK_EQ(shmcap_self(&id), getpid());
		CHECK(id_eq(&id, want));
		CHECK_OK(shmcap_actor_self(&c));
		id = id_of(c);
		CHECK(id_eq(&id, want));
		shmcap_cap_close(c);
	}
	return NULL;
}

static void test_self_threads(void)
{
	shmcap_actor_id want;
	pthread_t t[4];
	pid_t pid;
	int i;

	CHECK_EQ(shmcap_self(&want), getpid());
	/* In a fresh child the cache starts empty, and threads race to fill it. */
	pid = t_fork_child(60);
	if (pid == 0) {
		shmcap_cap *me;

		CHECK_OK(shmcap_actor_open(getpid(), NULL, &me));
		want = id_of(me);
		shmcap_cap_close(me);
		for (i = 0; i < 4; i++)
			CHECK_EQ(pthread_create(&t[i], NULL, self_thread,
						&want),
				 0);
		for (i = 0; i < 4; i++)
			CHECK_EQ(pthread_join(t[i], NULL), 0);
		t_child_pass();
	}
	t_reap_ok(pid, 60);
}

int main(void)
{
	struct statfs sfs;
	int fd;

	t_watchdog(110);
	fd = pidfd_open_raw(getpid(), 0);
	if (fd < 0)
		SKIP("no pidfd_open: %s", strerror(errno));
	have_pidfs = fstatfs(fd, &sfs) == 0 && sfs.f_type == T_PID_FS_MAGIC;
	close(fd);
	printf("pidfs: %s\n", have_pidfs ? "yes" : "no");

	test_self();
	test_text();
	test_actor_self_open();
	test_thread();
	test_child_ids();
	test_pid_reuse();
	test_alive_signal_wait();
	test_wait_threads();
	test_transfer();
	test_forged();
	test_bad_input();
	test_self_threads();

	if (pid_reuse_skipped)
		SKIP("%s (everything else passed)", pid_reuse_skipped);
	return T_EXIT_PASS;
}
