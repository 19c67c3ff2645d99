/* Description: shmcap_spawn() and shmcap_env_cap(): named capabilities in the child, descriptors, PATH, exec errors, exit status, signals, leaks */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"

#define SEC ((int64_t)1000000000)
#define MS ((int64_t)1000000)

static const char *peer;
static char tmpdir[64];

/* Wait for actor and return its wait status; closes actor. */
static int wait_close(shmcap_cap *actor)
{
	int st = -2, ret;

	do
		ret = shmcap_actor_wait(actor, 60 * SEC, &st);
	while (ret == -EINTR);
	CHECK_OK(ret);
	shmcap_cap_close(actor);
	return st;
}

static void check_exit(int st, int code)
{
	if (!WIFEXITED(st) || WEXITSTATUS(st) != code)
		FAIL("status 0x%x, expected exit %d", st, code);
}

/* No child of ours is left to reap. */
static void check_no_children(void)
{
	CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1);
	CHECK_EQ(errno, ECHILD);
}

/* ------------------------------------------------------------------------
 * Capabilities in the child
 */

struct spec {
	char name[64];
	shmcap_cap *cap;  /* what we pass */
	shmcap_cap *keep; /* a full-rights capability to check results */
	int type;
	unsigned int rights;
	char text[32];
};

/*
 * Make spec i: regions (READ and WRITE, READ only), notifiers (both
 * rights, WAIT only, SIGNAL only) and, for i == 5, the parent itself.
 */
static void spec_make(struct spec *s, int i)
{
	static const char *const stems[] = { "rw",     "ro.region", "bell",
					     "waiter", "signaller", "parent" };
	shmcap_map *m;
	int kind = i % 6, k;

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s/%d_x-%d", stems[kind], i, i);
	switch (kind) {
	case 0:
	case 1:
		s->type = SHMCAP_TYPE_REGION;
		snprintf(s->text, sizeof(s->text), "region %d", i);
		CHECK_OK(shmcap_region_create(4096, 0, &s->keep));
		CHECK_OK(shmcap_region_map(s->keep, 0, 0, NULL,
					   SHMCAP_MAP_WRITE, &m));
		strcpy(shmcap_map_addr(m), s->text);
		shmcap_map_unmap(m);
		s->rights = kind == 0 ? SHMCAP_RIGHTS_REGION :
					SHMCAP_RIGHT_READ;
		break;
	case 2:
	case 3:
	case 4:
		s->type = SHMCAP_TYPE_NOTIFIER;
		CHECK_OK(shmcap_notifier_create(&s->keep));
		s->rights = kind == 2 ? SHMCAP_RIGHTS_NOTIFIER :
			    kind == 3 ? SHMCAP_RIGHT_WAIT :
					SHMCAP_RIGHT_SIGNAL;
		/* Pending signals the child must find: i % 3 + 1. */
		for (k = 0; k <= i % 3; k++)
			CHECK_OK(shmcap_notifier_signal(s->keep));
		snprintf(s->text, sizeof(s->text), "%d", i % 3 + 1);
		break;
	default:
		s->type = SHMCAP_TYPE_ACTOR;
		CHECK_OK(shmcap_actor_self(&s->keep));
		s->rights = i % 12 == 5 ? SHMCAP_RIGHTS_ACTOR :
					  SHMCAP_RIGHT_WAIT;
		strcpy(s->text, "parent");
		break;
	}
	CHECK_OK(shmcap_cap_derive(s->keep, s->rights, &s->cap));
}

/* After the child ran: what it wrote or signalled. */
static void spec_check(struct spec *s)
{
	char want[64];
	shmcap_map *m;
	const char *p;

	if (s->type == SHMCAP_TYPE_REGION) {
		CHECK_OK(shmcap_region_map(s->keep, 0, 0, NULL, SHMCAP_MAP_READ,
					   &m));
		p = (const char *)shmcap_map_addr(m) + 1024;
		if (s->rights & SHMCAP_RIGHT_WRITE) {
			snprintf(want, sizeof(want), "child:%s", s->text);
			CHECK_STR_EQ(p, want);
		} else {
			CHECK_EQ(p[0], 0);
		}
		shmcap_map_unmap(m);
	} else if (s->type == SHMCAP_TYPE_NOTIFIER) {
		/* The child took what was pending if it could, then rang. */
		if (s->rights == SHMCAP_RIGHTS_NOTIFIER)
			CHECK_EQ(shmcap_notifier_wait(s->keep, 0), 1);
		else if (s->rights == SHMCAP_RIGHT_WAIT)
			CHECK_ERR(shmcap_notifier_wait(s->keep, 0), -ETIMEDOUT);
		else
			CHECK_EQ(shmcap_notifier_wait(s->keep, 0),
				 atoi(s->text) + 1);
	}
}

static void test_env_caps(size_t n)
{
	struct spec *specs = calloc(n ? n : 1, sizeof(*specs));
	const char **names = calloc(n ? n : 1, sizeof(char *));
	shmcap_cap **caps = calloc(n ? n : 1, sizeof(shmcap_cap *));
	char **argv = calloc(4 + 4 * n, sizeof(char *));
	char nbuf[16], (*tb)[16] = calloc(n ? n : 1, sizeof(*tb));
	shmcap_cap *actor;
	size_t i, k = 0;
	int leak, fds, st;
	pid_t pid;

	CHECK(specs && names && caps && argv && tb);
	/* A descriptor the child must not inherit, close-on-exec or not. */
	leak = open("/dev/null", O_RDONLY);
	CHECK(leak >= 0);
	CHECK_EQ(fcntl(leak, F_GETFD) & FD_CLOEXEC, 0);

	snprintf(nbuf, sizeof(nbuf), "%zu", n);
	argv[k++] = "shmcap-test-peer";
	argv[k++] = "env-caps";
	argv[k++] = nbuf;
	for (i = 0; i < n; i++) {
		spec_make(&specs[i], (int)i);
		names[i] = specs[i].name;
		caps[i] = specs[i].cap;
		snprintf(tb[i], 16, "%d", specs[i].type);
		snprintf(tb[i] + 8, 8, "%u", specs[i].rights);
		argv[k++] = specs[i].name;
		argv[k++] = tb[i];
		argv[k++] = tb[i] + 8;
		argv[k++] = specs[i].text;
	}
	argv[k] = NULL;

	fds = t_count_fds();
	pid = shmcap_spawn(peer, argv, NULL, names, caps, n, 0, &actor);
	CHECK_OK(pid);
	CHECK_EQ(shmcap_actor_pid(actor), pid);
	CHECK_EQ(shmcap_cap_type(actor), SHMCAP_TYPE_ACTOR);
	CHECK_EQ(shmcap_cap_rights(actor), SHMCAP_RIGHTS_ACTOR);
	/* One more descriptor: the child's pidfd. */
	CHECK_EQ(t_count_fds(), fds + 1);
	st = wait_close(actor);
	CHECK_CHILD_OK(st);
	CHECK_EQ(t_count_fds(), fds);
	for (i = 0; i < n; i++) {
		spec_check(&specs[i]);
		shmcap_cap_close(specs[i].cap);
		shmcap_cap_close(specs[i].keep);
	}
	close(leak);
	free(specs);
	free(names);
	free(caps);
	free(argv);
	free(tb);
	check_no_children();
}

/* Up to SHMCAP_SPAWN_MAX_CAPS, all of one region under many names. */
static void test_max_caps(void)
{
	const char *names[SHMCAP_SPAWN_MAX_CAPS];
	shmcap_cap *caps[SHMCAP_SPAWN_MAX_CAPS];
	char buf[SHMCAP_SPAWN_MAX_CAPS][8], nbuf[8];
	char *argv[] = { "shmcap-test-peer", "env-caps", nbuf, NULL };
	shmcap_cap *region, *actor;
	int i;

	CHECK_OK(shmcap_region_create(4096, 0, &region));
	for (i = 0; i < SHMCAP_SPAWN_MAX_CAPS; i++) {
		snprintf(buf[i], sizeof(buf[i]), "r%d", i);
		names[i] = buf[i];
		caps[i] = region;
	}
	snprintf(nbuf, sizeof(nbuf), "%d", SHMCAP_SPAWN_MAX_CAPS);
	CHECK_OK(shmcap_spawn(peer, argv, NULL, names, caps,
			      SHMCAP_SPAWN_MAX_CAPS, 0, &actor));
	CHECK_CHILD_OK(wait_close(actor));
	CHECK_ERR(shmcap_spawn(peer, argv, NULL, names, caps,
			       SHMCAP_SPAWN_MAX_CAPS + 1, 0, &actor),
		  -E2BIG);
	shmcap_cap_close(region);
}

/* A list inherited by another process is stale; by an exec, it is not. */
static void test_stale(void)
{
	const char *names[] = { "bell" };
	shmcap_cap *bell, *actor;
	char *fork_stale[] = { "shmcap-test-peer", "env-fork-stale", "bell",
			       NULL };
	char *exec_same[] = { "shmcap-test-peer", "env-exec-same", "bell", "2",
			      NULL };
	char script[PATH_MAX + 64];
	char *sh[] = { "sh", "-c", script, NULL };

	CHECK_OK(shmcap_notifier_create(&bell));
	CHECK_OK(shmcap_spawn(peer, fork_stale, NULL, names, &bell, 1, 0,
			      &actor));
	CHECK_CHILD_OK(wait_close(actor));
	CHECK_OK(shmcap_spawn(peer, exec_same, NULL, names, &bell, 1, 0,
			      &actor));
	CHECK_CHILD_OK(wait_close(actor));
	/* A shell runs a command that is not its last in a child. */
	snprintf(script, sizeof(script), "'%s' env-stale bell; exit $?", peer);
	CHECK_OK(shmcap_spawn("/bin/sh", sh, NULL, names, &bell, 1, 0, &actor));
	CHECK_CHILD_OK(wait_close(actor));
	shmcap_cap_close(bell);
}

/* A program that knows nothing of shmcap gets the descriptors. */
static void test_plain_program(void)
{
	const char *names[] = { "mem", "bell" };
	shmcap_cap *caps[2], *actor;
	char *sh[] = { "sh", "-c",
		       "[ -e /proc/self/fd/3 ] && [ -e /proc/self/fd/4 ] && "
		       "! [ -e /proc/self/fd/5 ] && "
		       "[ \"${SHMCAP_CAPS#*;}\" = mem:3:1:3,bell:4:2:12 ] && "
		       "[ \"${SHMCAP_CAPS%%;*}\" = \"$(printf %010d $$)\" ] && "
		       "[ \"$FOO\" = bar ] && [ \"$SHMCAP_PRIVILEGE\" != x ]",
		       NULL };
	char *envp[] = { "FOO=bar", "SHMCAP_CAPS=0000000001;x:3:1:1",
			 "SHMCAP_PRIVILEGE=x", "PATH=/bin:/usr/bin", NULL };
	char *empty_sh[] = { "sh", "-c",
			     "[ \"$SHMCAP_CAPS\" = \"$(printf %010d $$);\" ]",
			     NULL };

	CHECK_OK(shmcap_region_create(4096, 0, &caps[0]));
	CHECK_OK(shmcap_notifier_create(&caps[1]));
	CHECK_OK(shmcap_spawn("/bin/sh", sh, envp, names, caps, 2, 0, &actor));
	check_exit(wait_close(actor), 0);
	/* No capabilities: an empty list, which still replaces any other. */
	CHECK_OK(shmcap_spawn("/bin/sh", empty_sh, envp, NULL, NULL, 0, 0,
			      &actor));
	check_exit(wait_close(actor), 0);
	shmcap_cap_close(caps[0]);
	shmcap_cap_close(caps[1]);
}

/* ------------------------------------------------------------------------
 * Exec errors, PATH, status
 */

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	CHECK(fd >= 0);
	CHECK_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	CHECK_EQ(fchmod(fd, mode), 0);
	close(fd);
}

static int spawn_err(const char *file, unsigned int flags)
{
	char *argv[] = { (char *)file, NULL };
	shmcap_cap *actor = NULL;
	int ret;

	ret = shmcap_spawn(file, argv, NULL, NULL, NULL, 0, flags, &actor);
	if (ret >= 0)
		FAIL("spawning %s succeeded (pid %d, status 0x%x)", file, ret,
		     wait_close(actor));
	CHECK_NULL(actor);
	return ret;
}

static void test_exec_errors(void)
{
	char path[128], path2[128];
	int fds = t_count_fds(), wfd;

	snprintf(path, sizeof(path), "%s/no-such-program", tmpdir);
	CHECK_ERR(spawn_err(path, 0), -ENOENT);
	CHECK_ERR(spawn_err(path, SHMCAP_SPAWN_PATH), -ENOENT);
	CHECK_ERR(spawn_err("", 0), -ENOENT);
	CHECK_ERR(spawn_err("", SHMCAP_SPAWN_PATH), -ENOENT);

	snprintf(path, sizeof(path), "%s/not-executable", tmpdir);
	write_file(path, "#!/bin/sh\nexit 0\n", 0644);
	CHECK_ERR(spawn_err(path, 0), -EACCES);
	CHECK_ERR(spawn_err(tmpdir, 0), -EACCES);

	snprintf(path, sizeof(path), "%s/garbage", tmpdir);
	write_file(path, "this is not a program\n", 0755);
	CHECK_ERR(spawn_err(path, 0), -ENOEXEC);

	CHECK_ERR(spawn_err("/etc/passwd/x", 0), -ENOTDIR);

	snprintf(path, sizeof(path), "%s/loop", tmpdir);
	CHECK_EQ(symlink(path, path), 0);
	CHECK_ERR(spawn_err(path, 0), -ELOOP);

	/* A program still open for writing cannot run. */
	snprintf(path2, sizeof(path2), "%s/busy", tmpdir);
	write_file(path2, "#!/bin/sh\nexit 0\n", 0755);
	wfd = open(path2, O_WRONLY | O_CLOEXEC);
	CHECK(wfd >= 0);
	CHECK_ERR(spawn_err(path2, 0), -ETXTBSY);
	close(wfd);

	/* argv beyond what execve() takes. */
	{
		size_t big = 200 * 1024;
		char *arg = malloc(big + 1);
		char *argv[] = { "true", arg, NULL };

		CHECK_NOTNULL(arg);
		memset(arg, 'x', big);
		arg[big] = '\0';
		CHECK_ERR(shmcap_spawn("/bin/true", argv, NULL, NULL, NULL, 0,
				       0, NULL),
			  -E2BIG);
		free(arg);
	}

	CHECK_EQ(t_count_fds(), fds);
	check_no_children();
}

static void test_path(void)
{
	char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	char d1[128], d2[128], f[160], pathvar[300];
	char *argv[] = { "prog", NULL };
	char *true_argv[] = { "true", NULL };
	shmcap_cap *actor;
	int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	CHECK(cwd >= 0);
	/* The caller's PATH, not a relative name, finds "true". */
	CHECK_OK(shmcap_spawn("true", true_argv, NULL, NULL, NULL, 0,
			      SHMCAP_SPAWN_PATH, &actor));
	check_exit(wait_close(actor), 0);
	CHECK_ERR(spawn_err("true", 0), -ENOENT);
	CHECK_ERR(spawn_err("no-such-program-anywhere", SHMCAP_SPAWN_PATH),
		  -ENOENT);

	snprintf(d1, sizeof(d1), "%s/d1", tmpdir);
	snprintf(d2, sizeof(d2), "%s/d2", tmpdir);
	CHECK_EQ(mkdir(d1, 0755), 0);
	CHECK_EQ(mkdir(d2, 0755), 0);
	snprintf(f, sizeof(f), "%s/prog", d1);
	write_file(f, "#!/bin/sh\nexit 5\n", 0644);

	/* A refusal is remembered while the search goes on. */
	snprintf(pathvar, sizeof(pathvar), "%s:%s:/nonexistent", d1, d2);
	CHECK_EQ(setenv("PATH", pathvar, 1), 0);
	CHECK_ERR(spawn_err("prog", SHMCAP_SPAWN_PATH), -EACCES);

	/* ... and a later directory that has it wins. */
	snprintf(f, sizeof(f), "%s/prog", d2);
	write_file(f, "#!/bin/sh\nexit 7\n", 0755);
	CHECK_OK(shmcap_spawn("prog", argv, NULL, NULL, NULL, 0,
			      SHMCAP_SPAWN_PATH, &actor));
	check_exit(wait_close(actor), 7);

	/* A file name with a '/' is not searched for. */
	CHECK_ERR(spawn_err("d2/prog", SHMCAP_SPAWN_PATH), -ENOENT);

	/* An empty entry is the current directory. */
	snprintf(pathvar, sizeof(pathvar), "/nonexistent::%s", d1);
	CHECK_EQ(setenv("PATH", pathvar, 1), 0);
	CHECK_EQ(chdir(d2), 0);
	CHECK_OK(shmcap_spawn("prog", argv, NULL, NULL, NULL, 0,
			      SHMCAP_SPAWN_PATH, &actor));
	check_exit(wait_close(actor), 7);
	CHECK_EQ(fchdir(cwd), 0);
	close(cwd);

	/* Without PATH: /bin and /usr/bin. */
	CHECK_EQ(unsetenv("PATH"), 0);
	CHECK_OK(shmcap_spawn("true", true_argv, NULL, NULL, NULL, 0,
			      SHMCAP_SPAWN_PATH, &actor));
	check_exit(wait_close(actor), 0);

	if (old) {
		CHECK_EQ(setenv("PATH", old, 1), 0);
		free(old);
	}
	check_no_children();
}

/* Exit codes, a second wait, and an actor capability not asked for. */
static void test_status(void)
{
	char *argv[] = { "sh", "-c", "exit 42", NULL };
	char *true_argv[] = { "true", NULL };
	shmcap_cap *actor, *copy;
	int st = 0;
	pid_t pid;

	CHECK_OK(shmcap_spawn("/bin/sh", argv, NULL, NULL, NULL, 0, 0, &actor));
	CHECK_OK(shmcap_actor_wait(actor, 30 * SEC, &st));
	check_exit(st, 42);
	st = 0;
	CHECK_OK(shmcap_actor_wait(actor, 0, &st));
	check_exit(st, 42);
	CHECK_OK(shmcap_actor_wait(actor, 0, NULL));
	CHECK_EQ(shmcap_actor_alive(actor), 0);
	CHECK_ERR(shmcap_actor_signal(actor, 0), -ESRCH);
	/* A copy made after the reaping knows the status too. */
	CHECK_OK(shmcap_cap_derive(actor, SHMCAP_RIGHT_WAIT, &copy));
	st = 0;
	CHECK_OK(shmcap_actor_wait(copy, 0, &st));
	check_exit(st, 42);
	shmcap_cap_close(copy);
	shmcap_cap_close(actor);

	/* Without an actor capability the caller reaps with waitpid(). */
	pid = shmcap_spawn("/bin/true", true_argv, NULL, NULL, NULL, 0, 0,
			   NULL);
	CHECK_OK(pid);
	st = t_wait_child(pid, 30);
	check_exit(st, 0);
	check_no_children();
}

/* Killed while the parent waits; a wait that times out first. */
static void test_killed(void)
{
	char *argv[] = { "sleep", "30", NULL };
	shmcap_cap *actor;
	pid_t pid, killer;
	int st = 0;

	pid = shmcap_spawn("/bin/sleep", argv, NULL, NULL, NULL, 0, 0, &actor);
	CHECK_OK(pid);
	CHECK_EQ(shmcap_actor_alive(actor), 1);
	CHECK_ERR(shmcap_actor_wait(actor, 10 * MS, &st), -ETIMEDOUT);
	CHECK_ERR(shmcap_actor_wait(actor, 0, &st), -ETIMEDOUT);

	/* Another process kills it while we wait. */
	killer = t_fork_child(30);
	if (killer == 0) {
		t_sleep_ns(50 * MS);
		CHECK_EQ(kill(pid, SIGKILL), 0);
		t_child_pass();
	}
	CHECK_OK(shmcap_actor_wait(actor, 30 * SEC, &st));
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	t_reap_ok(killer, 30);
	shmcap_cap_close(actor);
	check_no_children();
}

/* ------------------------------------------------------------------------
 * Signals and threads
 */

static pid_t main_pid;
static int foreign_handler; /* a pid other than ours that ran it */
static int handled;
static int storm_stop;

/* Lock-free atomics: safe in a handler, and in several threads at once. */
static void on_usr1(int sig)
{
	int me = (int)syscall(SYS_getpid);

	(void)sig;
	if (me != main_pid)
		__atomic_store_n(&foreign_handler, me, __ATOMIC_RELAXED);
	__atomic_fetch_add(&handled, 1, __ATOMIC_RELAXED);
}

/* Signals to our whole process group: us and every child we spawn. */
static void *storm(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&storm_stop, __ATOMIC_RELAXED)) {
		kill(0, SIGUSR1);
		t_sleep_ns(20000);
	}
	return NULL;
}

static void *spawner(void *arg)
{
	const char *names[] = { "mem" };
	char *argv[] = { "true", NULL };
	shmcap_cap *region = arg, *actor;
	unsigned long i, n = t_scaled(150);
	int st, ret;

	for (i = 0; i < n; i++) {
		do
			ret = shmcap_spawn("/bin/true", argv, NULL, names,
					   &region, 1, 0, &actor);
		while (ret == -EINTR);
		CHECK_OK(ret);
		st = wait_close(actor);
		/* Killed by SIGUSR1 before or after exec, or ran. */
		if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0) &&
		    !(WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1))
			FAIL("child ended with status 0x%x", st);
	}
	return NULL;
}

static void test_signals_threads(void)
{
	struct sigaction sa, old;
	pthread_t t_storm, t_spawn[2];
	shmcap_cap *region;
	int i;

	/* Our own process group, so the storm hits nobody else. */
	CHECK_EQ(setpgid(0, 0), 0);
	main_pid = getpid();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR1, &sa, &old), 0);
	CHECK_OK(shmcap_region_create(4096, 0, &region));

	CHECK_EQ(pthread_create(&t_storm, NULL, storm, NULL), 0);
	for (i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&t_spawn[i], NULL, spawner, region), 0);
	for (i = 0; i < 2; i++)
		CHECK_EQ(pthread_join(t_spawn[i], NULL), 0);
	__atomic_store_n(&storm_stop, 1, __ATOMIC_RELAXED);
	CHECK_EQ(pthread_join(t_storm, NULL), 0);

	CHECK_EQ(__atomic_load_n(&foreign_handler, __ATOMIC_RELAXED), 0);
	CHECK(__atomic_load_n(&handled, __ATOMIC_RELAXED) > 0);
	CHECK_EQ(sigaction(SIGUSR1, &old, NULL), 0);
	shmcap_cap_close(region);
	check_no_children();
}

/*
 * A spawner killed at any moment, inside the vfork included, leaves no
 * process stuck: its orphans come to us (a subreaper) and all end.
 */
static void test_kill_spawner(void)
{
	unsigned long round, rounds = t_scaled(20);
	const int64_t deadline = t_now_ns() + 60 * SEC;
	pid_t spawner_pid, r;
	int st, orphans = 0;

	CHECK_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	for (round = 0; round < rounds; round++) {
		spawner_pid = t_fork_child(60);
		if (spawner_pid == 0) {
			const char *names[] = { "bell" };
			char *argv[] = { "true", NULL };
			shmcap_cap *bell, *actor;

			CHECK_OK(shmcap_notifier_create(&bell));
			for (;;) {
				if (shmcap_spawn("/bin/true", argv, NULL, names,
						 &bell, 1, 0, &actor) >= 0)
					shmcap_cap_close(actor);
			}
		}
		t_sleep_ns((int64_t)(t_rnd() % 20000000));
		CHECK_EQ(kill(spawner_pid, SIGKILL), 0);
		t_check_killed(spawner_pid, 30);
		/* Every orphan ends (it is /bin/true, or never ran). */
		for (;;) {
			r = waitpid(-1, &st, WNOHANG);
			if (r < 0 && errno == ECHILD)
				break;
			if (r > 0) {
				orphans++;
				continue;
			}
			if (t_now_ns() > deadline)
				FAIL("orphans of a killed spawner never end");
			t_sleep_ns(MS);
		}
	}
	CHECK_EQ(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
	printf("kill-spawner: %lu rounds, %d orphans reaped\n", rounds,
	       orphans);
}

/* ------------------------------------------------------------------------
 * Bad input and leaks
 */

static void test_bad_input(void)
{
	char long_name[80];
	const char *names[2] = { "a", "b" };
	char *argv[] = { "true", NULL };
	shmcap_cap *caps[2], *actor = NULL;
	int fds;

	CHECK_OK(shmcap_region_create(4096, 0, &caps[0]));
	CHECK_OK(shmcap_notifier_create(&caps[1]));
	fds = t_count_fds();

	CHECK_ERR(shmcap_spawn(NULL, argv, NULL, NULL, NULL, 0, 0, &actor),
		  -EINVAL);
	CHECK_ERR(shmcap_spawn("/bin/true", NULL, NULL, NULL, NULL, 0, 0,
			       &actor),
		  -EINVAL);
	CHECK_ERR(shmcap_spawn("/bin/true", argv, NULL, NULL, NULL, 0, 0x100,
			       &actor),
		  -EINVAL);
	CHECK_ERR(shmcap_spawn("/bin/true", argv, NULL, NULL, caps, 1, 0,
			       &actor),
		  -EINVAL);
	CHECK_ERR(shmcap_spawn("/bin/true", argv, NULL, names, NULL, 1, 0,
			       &actor),
		  -EINVAL);
	{
		shmcap_cap *nul[1] = { NULL };

		CHECK_ERR(shmcap_spawn("/bin/true", argv, NULL, names, nul, 1,
				       0, &actor),
			  -EINVAL);
	}
	{
		static const char *const bad[] = {
			"",  "a b", "a:b",	"a,b",		"a;b",
			"é", "a=b", "shmcap.x", "shmcap.group",
		};
		const char *one[1];
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			one[0] = bad[i];
			CHECK_ERR(shmcap_spawn("/bin/true", argv, NULL, one,
					       caps, 1, 0, &actor),
				  -EINVAL);
		}
		one[0] = NULL;
		CHECK_ERR(shmcap_spawn("/bin/true", argv, NULL, one, caps, 1, 0,
				       &actor),
			  -EINVAL);
	}
	memset(long_name, 'n', 64);
	long_name[64] = '\0';
	names[0] = long_name;
	CHECK_ERR(shmcap_spawn("/bin/true", argv, NULL, names, caps, 1, 0,
			       &actor),
		  -EINVAL);
	/* 63 bytes is the longest name. */
	long_name[63] = '\0';
	CHECK_OK(shmcap_spawn("/bin/true", argv, NULL, names, caps, 1, 0,
			      &actor));
	check_exit(wait_close(actor), 0);
	actor = NULL;
	names[0] = "same";
	names[1] = "same";
	CHECK_ERR(shmcap_spawn("/bin/true", argv, NULL, names, caps, 2, 0,
			       &actor),
		  -EINVAL);
	/* Not "shmcap." itself: a name merely containing it is fine. */
	names[0] = "my.shmcap.x";
	names[1] = "shmcap";
	CHECK_OK(shmcap_spawn("/bin/true", argv, NULL, names, caps, 2, 0,
			      &actor));
	check_exit(wait_close(actor), 0);
	actor = NULL;
	CHECK_NULL(actor);

	/* The supervisor flag works or is refused, never half done. */
	{
		int ret = shmcap_spawn("/bin/true", argv, NULL, NULL, NULL, 0,
				       SHMCAP_SPAWN_SUPERVISOR, &actor);

		if (ret >= 0)
			check_exit(wait_close(actor), 0);
		else if (ret != -ENOSYS && ret != -EPERM)
			FAIL("supervisor spawn: %s", shmcap_err_name(ret));
	}

	CHECK_ERR(shmcap_env_cap(NULL, &actor), -EINVAL);
	CHECK_ERR(shmcap_env_cap("x", NULL), -EINVAL);

	shmcap_cap_close(caps[0]);
	shmcap_cap_close(caps[1]);
	CHECK_EQ(t_count_fds(), fds - 2);
	check_no_children();
}

static void test_no_leak(void)
{
	unsigned long i, n = t_scaled(1000);
	const char *names[] = { "mem" };
	char *argv[] = { "true", NULL };
	shmcap_cap *region, *actor;
	int fds;

	CHECK_OK(shmcap_region_create(4096, 0, &region));
	fds = t_count_fds();
	for (i = 0; i < n; i++) {
		CHECK_OK(shmcap_spawn("/bin/true", argv, NULL, names, &region,
				      i % 2, 0, &actor));
		check_exit(wait_close(actor), 0);
	}
	CHECK_EQ(t_count_fds(), fds);
	shmcap_cap_close(region);
	check_no_children();
}

/* ------------------------------------------------------------------------
 * SHMCAP_CAPS parsing, in forked children (a good list is kept for life)
 */

static void env_expect(const char *list_after_pid, int want)
{
	char var[512];
	shmcap_cap *c = NULL;
	int ret;

	snprintf(var, sizeof(var), "%010d%s", (int)getpid(), list_after_pid);
	CHECK_EQ(setenv("SHMCAP_CAPS", var, 1), 0);
	ret = shmcap_env_cap("a", &c);
	if (ret != want)
		FAIL("SHMCAP_CAPS=\"%s\": %s, expected %s", var,
		     shmcap_err_name(ret), shmcap_err_name(want));
	if (ret == 0)
		shmcap_cap_close(c);
}

/* tmpl with each '#' replaced by fd, in buf (which it must fit). */
static void with_fd(char *buf, size_t size, const char *tmpl, int fd)
{
	size_t len = 0;
	int n;

	buf[0] = '\0';
	for (; *tmpl; tmpl++) {
		if (*tmpl == '#')
			n = snprintf(buf + len, size - len, "%d", fd);
		else
			n = snprintf(buf + len, size - len, "%c", *tmpl);
		CHECK(n > 0 && (size_t)n < size - len);
		len += (size_t)n;
	}
}

static void test_env_parse(void)
{
	/* Whole values of SHMCAP_CAPS that are no list at all. */
	static const char *const bad_raw[] = { "", "12;a:3:1:3",
					       "abcdefghij;" };
	/* Malformed lists after the pid; '#' stands for a region's fd. */
	static const char *const bad[] = {
		"",	      ":a:3:1:3",   ";a:#:1",
		";a:#:1:3,",  ";a:#:1:3,,", ";a:#:9:1",
		";a:2:1:1",   ";a:-3:1:1",  ";a:99999999999:1:1",
		";a:#:1:4",   ";a:#:1:0",   ";a:#:1:3x",
		";a b:#:1:3", ";:#:1:3",
	};
	shmcap_cap *region, *ro, *c;
	char buf[256], name64[70];
	size_t i;
	pid_t pid;
	int fd, fd_ro;

	pid = t_fork_child(30);
	if (pid == 0) {
		CHECK_OK(shmcap_region_create(4096, 0, &region));
		CHECK_OK(shmcap_cap_derive(region, SHMCAP_RIGHT_READ, &ro));
		fd = shmcap_cap_fd(region);
		fd_ro = shmcap_cap_fd(ro);

		CHECK_ERR(shmcap_env_cap("a", &c), -ENOENT); /* unset */
		for (i = 0; i < sizeof(bad_raw) / sizeof(bad_raw[0]); i++) {
			CHECK_EQ(setenv("SHMCAP_CAPS", bad_raw[i], 1), 0);
			CHECK_ERR(shmcap_env_cap("a", &c), -EBADMSG);
		}
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			with_fd(buf, sizeof(buf), bad[i], fd);
			env_expect(buf, -EBADMSG);
		}
		snprintf(buf, sizeof(buf), ";a:%d:1:3,a:%d:1:1", fd, fd_ro);
		env_expect(buf, -EBADMSG);
		memset(name64, 'a', 64);
		name64[64] = '\0';
		snprintf(buf, sizeof(buf), ";%s:%d:1:3", name64, fd);
		env_expect(buf, -EBADMSG);
		/* The list of another process. */
		snprintf(buf, sizeof(buf), "%010d;a:%d:1:3", (int)getppid(),
			 fd);
		CHECK_EQ(setenv("SHMCAP_CAPS", buf, 1), 0);
		CHECK_ERR(shmcap_env_cap("a", &c), -ENOENT);

		/*
		 * Well-formed but lying: the first good list is kept, so
		 * this one names a region as a notifier, a closed
		 * descriptor, and a read-only region claimed writable.
		 */
		snprintf(buf, sizeof(buf),
			 ";a:%d:2:12,closed:999:1:1,ro:%d:1:3,b:%d:1:1,"
			 "shmcap.reserved:%d:1:3",
			 fd, fd_ro, fd, fd);
		env_expect(buf, -EBADMSG);
		CHECK_ERR(shmcap_env_cap("closed", &c), -EBADMSG);
		CHECK_OK(shmcap_env_cap("ro", &c));
		CHECK_EQ(shmcap_cap_rights(c), SHMCAP_RIGHT_READ);
		CHECK_EQ(t_accmode(c), O_RDONLY);
		shmcap_cap_close(c);
		CHECK_OK(shmcap_env_cap("b", &c));
		CHECK_EQ(shmcap_cap_rights(c), SHMCAP_RIGHT_READ);
		CHECK_EQ(t_accmode(c), O_RDONLY);
		shmcap_cap_close(c);
		CHECK_OK(shmcap_env_cap("shmcap.reserved", &c));
		CHECK_EQ(shmcap_cap_rights(c), SHMCAP_RIGHTS_REGION);
		shmcap_cap_close(c);
		/* Now close-on-exec, and the list is not read again. */
		CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		CHECK_EQ(unsetenv("SHMCAP_CAPS"), 0);
		CHECK_OK(shmcap_env_cap("b", &c));
		shmcap_cap_close(c);

		/* A child of fork() inherits the list and the descriptors. */
		pid = t_fork_child(30);
		if (pid == 0) {
			CHECK_OK(shmcap_env_cap("b", &c));
			shmcap_cap_close(c);
			t_child_pass();
		}
		t_reap_ok(pid, 30);
		shmcap_cap_close(ro);
		shmcap_cap_close(region);
		t_child_pass();
	}
	t_reap_ok(pid, 30);
}

static pid_t tmpdir_owner;

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* At exit, failed or not, in the process that made the directory. */
static void rm_tmpdir(void)
{
	if (getpid() != tmpdir_owner)
		return;
	if (nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void)
{
	peer = t_peer_path();
	if (!peer)
		SKIP("no peer program");
	printf("seed %llu\n", (unsigned long long)t_rng_seed());
	t_watchdog(110);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/t_spawn.XXXXXX");
	CHECK_NOTNULL(mkdtemp(tmpdir));
	tmpdir_owner = getpid();
	atexit(rm_tmpdir);

	test_env_caps(0);
	test_env_caps(1);
	test_env_caps(6);
	test_env_caps(20);
	test_max_caps();
	test_stale();
	test_plain_program();
	test_env_parse();
	test_exec_errors();
	test_path();
	test_status();
	test_killed();
	test_bad_input();
	test_no_leak();
	test_signals_threads();
	test_kill_spawner();
	return T_EXIT_PASS;
}
