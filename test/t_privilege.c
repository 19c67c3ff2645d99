/* Description: user and supervisor actors, secure mode, forged claims */
/* SPDX-License-Identifier: MIT */
/*
 * Secure mode is evaluated once per process, so every part that needs it
 * on runs in a fresh program: this test executes itself (/proc/self/exe)
 * in one of the modes at the bottom, with SHMCAP_SECURE=1 in its
 * environment, by fork and exec or by shmcap_spawn(). "Another user" is
 * uid and gid 65534, reached with setresgid/setresuid in a forked child
 * (the test runs as root). A spawned child reports back through its exit
 * status and waits on the notifier "go" while its spawner looks at it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"

#define CHILD_TIMEOUT 60
#define SEC ((int64_t)1000000000)
#define NOBODY 65534
#define SELF "/proc/self/exe"

extern char **environ;

static int secure_file;

/* ------------------------------------------------------------------------
 * Helpers
 */

static void become_nobody(void)
{
	CHECK_EQ(setresgid(NOBODY, NOBODY, NOBODY), 0);
	CHECK_EQ(setresuid(NOBODY, NOBODY, NOBODY), 0);
}

static const char *priv_name(int p)
{
	return p == SHMCAP_PRIV_SUPERVISOR ? "supervisor" :
	       p == SHMCAP_PRIV_USER	   ? "user" :
					     shmcap_err_name(p);
}

/*
 * Spawn this program as "report WANT_SELF WANT_SECURE" with flags and
 * the notifier go; returns its actor capability.
 */
static shmcap_cap *spawn_report(unsigned int flags, int want_self,
				int want_secure, shmcap_cap *go,
				char *const envp[])
{
	char a1[16], a2[16];
	char *argv[] = { "t_privilege", "report", a1, a2, NULL };
	const char *names[] = { "go" };
	shmcap_cap *actor;

	snprintf(a1, sizeof(a1), "%d", want_self);
	snprintf(a2, sizeof(a2), "%d", want_secure);
	CHECK_OK(shmcap_spawn(SELF, argv, envp, names, &go, 1, flags, &actor));
	return actor;
}

/* Let a reporting child end, and check that it passed. */
static void finish_report(shmcap_cap *actor, shmcap_cap *go)
{
	int st = -1;

	CHECK_OK(shmcap_notifier_signal(go));
	CHECK_OK(shmcap_actor_wait(actor, 30 * SEC, &st));
	CHECK_CHILD_OK(st);
	shmcap_cap_close(actor);
}

/* Spawn a reporting child, check how its spawner sees it, end it. */
static void spawn_and_query(unsigned int flags, int want)
{
	shmcap_cap *go, *actor;

	CHECK_OK(shmcap_notifier_create(&go));
	actor = spawn_report(flags, want, shmcap_secure_mode(), go, NULL);
	CHECK_EQ(shmcap_privilege(actor), want);
	finish_report(actor, go);
	shmcap_cap_close(go);
}

/*
 * Fork, optionally become nobody, and execute this program as argv with
 * exactly the environment env plus SHMCAP_PRIVILEGE=<its pid>;supervisor
 * (forge set) or the value given. sock (if >= 0) is kept open across exec
 * and its number appended to argv. Returns the pid.
 */
static pid_t exec_self(char *const argv[], const char *const env[], int nobody,
		       int forge, const char *priv_value, int sock)
{
	pid_t pid = t_fork_child(CHILD_TIMEOUT);
	char *av[16], *ev[16], var[64], fdtext[16];
	int i, n = 0;

	if (pid != 0)
		return pid;
	for (i = 0; argv[i]; i++)
		av[i] = argv[i];
	if (sock >= 0) {
		snprintf(fdtext, sizeof(fdtext), "%d", sock);
		av[i++] = fdtext;
		CHECK_EQ(fcntl(sock, F_SETFD, 0), 0);
	}
	av[i] = NULL;
	for (i = 0; env[i]; i++)
		ev[n++] = (char *)env[i];
	if (forge) {
		snprintf(var, sizeof(var), "SHMCAP_PRIVILEGE=%010d;supervisor",
			 (int)getpid());
		ev[n++] = var;
	} else if (priv_value) {
		snprintf(var, sizeof(var), "SHMCAP_PRIVILEGE=%s", priv_value);
		ev[n++] = var;
	}
	ev[n] = NULL;
	if (nobody)
		become_nobody();
	execve(SELF, av, ev);
	perror("execve " SELF);
	_exit(T_EXIT_FAIL);
}

/* The pass-through environment for exec_self(): what sanitizers need. */
static const char **base_env(const char *extra)
{
	static const char *env[8];
	static const char *const keep[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS",
					    "TSAN_OPTIONS", "LSAN_OPTIONS",
					    "SHMCAP_TEST_PEER" };
	size_t i, n = 0;

	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		static char buf[5][512];
		const char *v = getenv(keep[i]);

		if (v) {
			snprintf(buf[i], sizeof(buf[i]), "%s=%s", keep[i], v);
			env[n++] = buf[i];
		}
	}
	if (extra)
		env[n++] = extra;
	env[n] = NULL;
	return env;
}

/* Run this program as argv (fork and exec, as nobody if asked). */
static void run_self(char *const argv[], const char *extra_env, int nobody)
{
	pid_t pid = exec_self(argv, base_env(extra_env), nobody, 0, NULL, -1);

	t_reap_ok(pid, CHILD_TIMEOUT);
}

/* ------------------------------------------------------------------------
 * Parts run in this process or forked children
 */

static void part_defaults_and_bad_input(void)
{
	shmcap_cap *r, *n, *me;

	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_USER);
	if (!secure_file && !getenv("SHMCAP_SECURE"))
		CHECK_EQ(shmcap_secure_mode(), 0);
	CHECK_ERR(shmcap_privilege_set(2), -EINVAL);
	CHECK_ERR(shmcap_privilege_set(-1), -EINVAL);
	CHECK_ERR(shmcap_privilege_set(0x10001), -EINVAL);
	CHECK_OK(shmcap_region_create(4096, 0, &r));
	CHECK_OK(shmcap_notifier_create(&n));
	CHECK_ERR(shmcap_privilege(r), -EINVAL);
	CHECK_ERR(shmcap_privilege(n), -EINVAL);
	shmcap_cap_close(r);
	shmcap_cap_close(n);
	/* Seen from outside, a process is what it was started as. */
	CHECK_OK(shmcap_actor_self(&me));
	CHECK_EQ(shmcap_privilege(me), SHMCAP_PRIV_USER);
	shmcap_cap_close(me);
	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_USER);
}

static void part_set(void)
{
	pid_t pid = t_fork_child(CHILD_TIMEOUT);
	shmcap_cap *me;

	if (pid != 0) {
		t_reap_ok(pid, CHILD_TIMEOUT);
		return;
	}
	CHECK_OK(shmcap_privilege_set(SHMCAP_PRIV_USER)); /* already */
	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_USER);
	CHECK_OK(shmcap_privilege_set(SHMCAP_PRIV_SUPERVISOR));
	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_SUPERVISOR);
	CHECK_OK(shmcap_privilege_set(SHMCAP_PRIV_SUPERVISOR));
	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_SUPERVISOR);
	/* Others read the environment it was started with. */
	CHECK_OK(shmcap_actor_self(&me));
	CHECK_EQ(shmcap_privilege(me), SHMCAP_PRIV_USER);
	shmcap_cap_close(me);
	CHECK_OK(shmcap_privilege_set(SHMCAP_PRIV_USER));
	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_USER);
	t_child_pass();
}

/* The spawner sees its children as what they were spawned as. */
static void part_spawned(void)
{
	shmcap_cap *actor, *go;
	int st;
	char *argv[] = { "t_privilege", "exit", NULL };

	spawn_and_query(SHMCAP_SPAWN_SUPERVISOR, SHMCAP_PRIV_SUPERVISOR);
	spawn_and_query(0, SHMCAP_PRIV_USER);

	/* A supervisor's user child is a user actor. */
	{
		pid_t pid = t_fork_child(CHILD_TIMEOUT);

		if (pid == 0) {
			CHECK_OK(shmcap_privilege_set(SHMCAP_PRIV_SUPERVISOR));
			spawn_and_query(0, SHMCAP_PRIV_USER);
			spawn_and_query(SHMCAP_SPAWN_SUPERVISOR,
					SHMCAP_PRIV_SUPERVISOR);
			t_child_pass();
		}
		t_reap_ok(pid, CHILD_TIMEOUT);
	}

	/* Ended: a zombie, then reaped. */
	CHECK_OK(shmcap_spawn(SELF, argv, NULL, NULL, NULL, 0,
			      SHMCAP_SPAWN_SUPERVISOR, &actor));
	while (shmcap_actor_alive(actor) == 1)
		t_sleep_ns(1000000);
	CHECK_ERR(shmcap_privilege(actor), -ESRCH);
	CHECK_OK(shmcap_actor_wait(actor, 30 * SEC, &st));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_ERR(shmcap_privilege(actor), -ESRCH);
	shmcap_cap_close(actor);

	/* Another user's process may not be looked at. */
	CHECK_OK(shmcap_notifier_create(&go));
	actor = spawn_report(SHMCAP_SPAWN_SUPERVISOR, SHMCAP_PRIV_SUPERVISOR,
			     shmcap_secure_mode(), go, NULL);
	{
		pid_t pid = t_fork_child(CHILD_TIMEOUT);

		if (pid == 0) {
			become_nobody();
			CHECK_ERR(shmcap_privilege(actor), -EACCES);
			t_child_pass();
		}
		t_reap_ok(pid, CHILD_TIMEOUT);
	}
	finish_report(actor, go);
	shmcap_cap_close(go);
}

/*
 * A program started with SHMCAP_PRIVILEGE that names another pid (the
 * variable went through a plain fork and exec) or that is malformed is a
 * user actor, with no error.
 */
static void part_stale(void)
{
	char *argv[] = { "t_privilege", "expect", "user", NULL };
	static const char *const values[] = {
		"0000000001;supervisor", "12;supervisor", "", "supervisor",
		"x000000001;supervisor",
	};
	size_t i;
	pid_t pid;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		pid = exec_self(argv, base_env(NULL), 0, 0, values[i], -1);
		t_reap_ok(pid, CHILD_TIMEOUT);
	}
	/* Its own pid but another word, or a longer one. */
	{
		char *uargv[] = { "t_privilege", "expect-suffix", NULL };

		pid = exec_self(uargv, base_env(NULL), 0, 0, NULL, -1);
		t_reap_ok(pid, CHILD_TIMEOUT);
	}
}

/*
 * A non-root program that claims to be a supervisor by its environment:
 * believed outside secure mode (a convention), not in it. The spawner,
 * which is root, looks at it while it waits.
 */
static void forged(int secure, int want)
{
	char *argv[] = { "t_privilege", "forged", NULL, NULL };
	char wanttext[8];
	int sv[2];
	char c = 0;
	shmcap_cap *actor;
	pid_t pid;

	snprintf(wanttext, sizeof(wanttext), "%d", want);
	argv[2] = wanttext;
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = exec_self(argv, base_env(secure ? "SHMCAP_SECURE=1" : NULL), 1, 1,
			NULL, sv[1]);
	close(sv[1]);
	CHECK_EQ(read(sv[0], &c, 1), 1);
	CHECK_EQ(c, 'r');
	CHECK_OK(shmcap_actor_open(pid, NULL, &actor));
	CHECK_EQ(shmcap_privilege(actor), want);
	shmcap_cap_close(actor);
	close(sv[0]);
	t_reap_ok(pid, CHILD_TIMEOUT);
}

static void part_forged(void)
{
	if (!secure_file)
		forged(0, SHMCAP_PRIV_SUPERVISOR);
	forged(1, SHMCAP_PRIV_USER);
}

/* Outside secure mode anyone may start a supervisor. */
static void part_nobody_outside_secure(void)
{
	pid_t pid;

	if (secure_file || getenv("SHMCAP_SECURE"))
		return;
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		become_nobody();
		CHECK_EQ(shmcap_secure_mode(), 0);
		spawn_and_query(SHMCAP_SPAWN_SUPERVISOR,
				SHMCAP_PRIV_SUPERVISOR);
		CHECK_OK(shmcap_privilege_set(SHMCAP_PRIV_SUPERVISOR));
		CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_SUPERVISOR);
		t_child_pass();
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
}

static void part_secure(void)
{
	char *argv[] = { "t_privilege", "secure-root", NULL };

	run_self(argv, "SHMCAP_SECURE=1", 0);
}

/* ------------------------------------------------------------------------
 * Modes of the program executed by the parts above
 */

/* report WANT_SELF WANT_SECURE: check, then wait for "go". */
static int mode_report(int argc, char **argv)
{
	shmcap_cap *go;
	const char *sv;

	CHECK_EQ(argc, 4);
	CHECK_EQ(shmcap_privilege(NULL), atoi(argv[2]));
	CHECK_EQ(shmcap_secure_mode(), atoi(argv[3]));
	sv = getenv("SHMCAP_SECURE");
	if (atoi(argv[3]) && !secure_file)
		CHECK_STR_EQ(sv, "1");
	CHECK_OK(shmcap_env_cap("go", &go));
	CHECK_OK(shmcap_notifier_wait(go, 30 * SEC));
	shmcap_cap_close(go);
	return T_EXIT_PASS;
}

static int mode_expect(int argc, char **argv)
{
	CHECK_EQ(argc, 3);
	CHECK_STR_EQ(priv_name(shmcap_privilege(NULL)), argv[2]);
	return T_EXIT_PASS;
}

/* Own pid with a wrong or longer word after it: set and re-executed. */
static int mode_expect_suffix(int argc, char **argv)
{
	static const char *const words[] = { ";user", ";supervisors",
					     "supervisor", ";supervisor " };
	char var[64], *av[] = { argv[0], "expect", "user", NULL };
	size_t i;
	pid_t pid;

	(void)argc;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		pid = t_fork_child(CHILD_TIMEOUT);
		if (pid == 0) {
			const char **env = base_env(NULL);
			char *ev[16];
			int n = 0;

			snprintf(var, sizeof(var), "SHMCAP_PRIVILEGE=%010d%s",
				 (int)getpid(), words[i]);
			while (env[n]) {
				ev[n] = (char *)env[n];
				n++;
			}
			ev[n++] = var;
			ev[n] = NULL;
			execve(SELF, av, ev);
			_exit(T_EXIT_FAIL);
		}
		t_reap_ok(pid, CHILD_TIMEOUT);
	}
	return T_EXIT_PASS;
}

/* forged WANT FD: a non-root process with a forged claim. */
static int mode_forged(int argc, char **argv)
{
	int want, sock;
	char c = 'r';

	CHECK_EQ(argc, 4);
	want = atoi(argv[2]);
	sock = atoi(argv[3]);
	CHECK_NE(geteuid(), 0);
	CHECK_EQ(shmcap_privilege(NULL), want);
	if (want == SHMCAP_PRIV_USER)
		CHECK_ERR(shmcap_privilege_set(SHMCAP_PRIV_SUPERVISOR), -EPERM);
	CHECK_EQ(write(sock, &c, 1), 1);
	/* Wait until the parent has looked and closed its end. */
	CHECK_EQ(read(sock, &c, 1), 0);
	return T_EXIT_PASS;
}

/* secure-root: everything secure mode allows root, and refuses others. */
static int mode_secure_root(void)
{
	char *envp[] = { "SHMCAP_SECURE=0", NULL };
	shmcap_cap *go, *actor;
	pid_t pid;

	CHECK_EQ(geteuid(), 0);
	CHECK_EQ(shmcap_secure_mode(), 1);
	spawn_and_query(SHMCAP_SPAWN_SUPERVISOR, SHMCAP_PRIV_SUPERVISOR);
	spawn_and_query(0, SHMCAP_PRIV_USER);
	/* A child cannot be let out of secure mode by its environment. */
	CHECK_OK(shmcap_notifier_create(&go));
	actor = spawn_report(0, SHMCAP_PRIV_USER, 1, go, envp);
	finish_report(actor, go);

	/* Not root: refused, and no longer taken for a supervisor. */
	CHECK_OK(shmcap_privilege_set(SHMCAP_PRIV_SUPERVISOR));
	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_SUPERVISOR);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		char *argv[] = { "t_privilege", "exit", NULL };

		become_nobody();
		CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_USER);
		CHECK_ERR(shmcap_privilege_set(SHMCAP_PRIV_SUPERVISOR), -EPERM);
		CHECK_ERR(shmcap_spawn(SELF, argv, NULL, NULL, NULL, 0,
				       SHMCAP_SPAWN_SUPERVISOR, &actor),
			  -EPERM);
		/* A user actor it may start, and that one is secure too. */
		actor = spawn_report(0, SHMCAP_PRIV_USER, 1, go, NULL);
		CHECK_EQ(shmcap_privilege(actor), SHMCAP_PRIV_USER);
		finish_report(actor, go);
		/* Leaving is always allowed. */
		CHECK_OK(shmcap_privilege_set(SHMCAP_PRIV_USER));
		t_child_pass();
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
	shmcap_cap_close(go);
	CHECK_OK(shmcap_privilege_set(SHMCAP_PRIV_USER));
	return T_EXIT_PASS;
}

int main(int argc, char **argv)
{
	struct stat st;
	int fds;

	secure_file = stat("/etc/shmcap/secure", &st) == 0;
	if (argc > 1) {
		t_watchdog(CHILD_TIMEOUT);
		if (strcmp(argv[1], "report") == 0)
			return mode_report(argc, argv);
		if (strcmp(argv[1], "expect") == 0)
			return mode_expect(argc, argv);
		if (strcmp(argv[1], "expect-suffix") == 0)
			return mode_expect_suffix(argc, argv);
		if (strcmp(argv[1], "forged") == 0)
			return mode_forged(argc, argv);
		if (strcmp(argv[1], "secure-root") == 0)
			return mode_secure_root();
		if (strcmp(argv[1], "exit") == 0)
			return T_EXIT_PASS;
		FAIL("unknown mode %s", argv[1]);
	}
	if (geteuid() != 0)
		SKIP("needs root, to act as another user");
	t_watchdog(110);
	fds = t_count_fds();

	printf("part defaults_and_bad_input\n");
	part_defaults_and_bad_input();
	printf("part set\n");
	part_set();
	printf("part spawned\n");
	part_spawned();
	printf("part stale\n");
	part_stale();
	printf("part forged\n");
	part_forged();
	printf("part nobody_outside_secure\n");
	part_nobody_outside_secure();
	printf("part secure\n");
	part_secure();

	CHECK_EQ(t_count_fds(), fds);
	return T_EXIT_PASS;
}
