/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the tests of the shmcap command (test/t_cli_*.c): run the
 * tool built at SHMCAP_TOOL with arguments, optionally as another user,
 * and capture its stdout, stderr and exit status; parse its --json output.
 *
 * The tool runs in a forked child with its output on two pipes that the
 * parent drains together (poll), so a chatty stderr cannot block a
 * process that is still writing stdout. A run that takes longer than
 * CLI_RUN_TIMEOUT_S seconds is killed and fails the test: the bound only
 * turns a hang into a failure, no verdict depends on timing.
 *
 * "Another user": the child drops its groups and sets its real, effective
 * and saved ids to uid/gid before exec, as a process of that user would
 * run the tool (tests run as root, so this needs no privilege setup).
 *
 * A test that runs the tool many times keeps one static result and uses
 * cli_rerun() (which frees the previous run's output) or CLI_EXPECT()
 * (run, then check the exit status, showing the output if it is wrong).
 *
 * cli_fork() forks a child for the tool to look at (it dies with the test
 * and tells the parent when it is set up); cli_sleeper() one that only
 * waits; cli_kill_reap() ends either. cli_actor_start() forks a test
 * actor with one of everything the listings show (an anonymous region
 * holding a datum, a named region, a channel and a published name) for
 * the tests to look at and kill. cli_test_done() checks that a test left
 * no named region behind.
 *
 * Everything is static inline so a test that uses only some of it still
 * compiles without warnings. Define _GNU_SOURCE before any include.
 */
#ifndef SHMCAP_TEST_CLI_UTIL_H
#define SHMCAP_TEST_CLI_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "helpers.h"

#ifndef SHMCAP_TOOL
#error "SHMCAP_TOOL must name the shmcap command (tools/CMakeLists.txt)"
#endif

#define CLI_RUN_TIMEOUT_S 60
#define CLI_ARGS_MAX 32
#define CLI_AS_SELF ((uid_t)-1)
#define CLI_NOBODY ((uid_t)65534)

struct cli_result {
	int status; /* exit code, or 128 + signal number */
	char *out;  /* stdout, NUL-terminated */
	size_t outlen;
	char *err; /* stderr, NUL-terminated */
	size_t errlen;
};

static inline void cli_result_free(struct cli_result *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

static inline void cli__append(char **buf, size_t *len, const char *data,
			       size_t n)
{
	char *nb = realloc(*buf, *len + n + 1);

	if (!nb)
		FAIL("out of memory");
	memcpy(nb + *len, data, n);
	*len += n;
	nb[*len] = '\0';
	*buf = nb;
}

static inline int64_t cli__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Run SHMCAP_TOOL with argv (argv[0] is ignored: the tool's path goes
 * there; NULL-terminated) as uid (CLI_AS_SELF: as the caller; else gid =
 * uid), into *r. Returns r->status.
 */
static inline int cli_runa(struct cli_result *r, uid_t uid,
			   const char *const *argv)
{
	int po[2], pe[2], st = 0;
	struct pollfd pf[2];
	int64_t deadline;
	pid_t pid;
	int open_fds = 2;

	memset(r, 0, sizeof(*r));
	cli__append(&r->out, &r->outlen, "", 0);
	cli__append(&r->err, &r->errlen, "", 0);
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
		FAIL("pipe: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
			_exit(126);
		if (uid != CLI_AS_SELF &&
		    (setgroups(0, NULL) < 0 ||
		     setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) < 0 ||
		     setresuid(uid, uid, uid) < 0)) {
			fprintf(stderr, "cli_util: setresuid: %s\n",
				strerror(errno));
			_exit(126);
		}
		execv(SHMCAP_TOOL, (char *const *)argv);
		fprintf(stderr, "cli_util: exec %s: %s\n", SHMCAP_TOOL,
			strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	pf[0].fd = po[0];
	pf[1].fd = pe[0];
	pf[0].events = pf[1].events = POLLIN;
	deadline = cli__now_ms() + CLI_RUN_TIMEOUT_S * 1000;
	while (open_fds > 0) {
		int64_t left = deadline - cli__now_ms();
		char buf[4096];
		int i, n;

		if (left <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			FAIL("shmcap %s did not finish in %d s",
			     argv[1] ? argv[1] : "", CLI_RUN_TIMEOUT_S);
		}
		n = poll(pf, 2, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			FAIL("poll: %s", strerror(errno));
		for (i = 0; i < 2; i++) {
			ssize_t got;

			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			got = read(pf[i].fd, buf, sizeof(buf));
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				close(pf[i].fd);
				pf[i].fd = -1;
				open_fds--;
				continue;
			}
			if (i == 0)
				cli__append(&r->out, &r->outlen, buf,
					    (size_t)got);
			else
				cli__append(&r->err, &r->errlen, buf,
					    (size_t)got);
		}
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			FAIL("waitpid: %s", strerror(errno));
	}
	if (WIFEXITED(st))
		r->status = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		r->status = 128 + WTERMSIG(st);
	else
		r->status = -1;
	return r->status;
}

/* cli_runa() with the arguments in ap, ending with NULL. */
static inline int cli_vrun_as(struct cli_result *r, uid_t uid, va_list ap)
{
	const char *argv[CLI_ARGS_MAX + 2];
	const char *a;
	int n = 1;

	argv[0] = "shmcap";
	while ((a = va_arg(ap, const char *)) != NULL) {
		if (n > CLI_ARGS_MAX)
			FAIL("cli_run: too many arguments");
		argv[n++] = a;
	}
	argv[n] = NULL;
	return cli_runa(r, uid, argv);
}

/* cli_runa() with the arguments after uid, ending with NULL. */
static inline int cli_run_as(struct cli_result *r, uid_t uid, ...)
{
	va_list ap;
	int ret;

	va_start(ap, uid);
	ret = cli_vrun_as(r, uid, ap);
	va_end(ap);
	return ret;
}

/* cli_run(&r, "ls", "--json", NULL): run as the caller. */
#define cli_run(r, ...) cli_run_as((r), CLI_AS_SELF, __VA_ARGS__)

/*
 * cli_run_as() into a result that a test reuses run after run (a static
 * one, zero at first): the previous run's output is freed first, so the
 * test need not free after every run and leaks nothing.
 */
static inline int cli_rerun_as(struct cli_result *r, uid_t uid, ...)
{
	va_list ap;
	int ret;

	cli_result_free(r);
	va_start(ap, uid);
	ret = cli_vrun_as(r, uid, ap);
	va_end(ap);
	return ret;
}

#define cli_rerun(r, ...) cli_rerun_as((r), CLI_AS_SELF, __VA_ARGS__)

/* Print what a run produced, for the log of a failing test. */
static inline void cli_show(const char *what, const struct cli_result *r)
{
	printf("--- %s: exit %d\n--- stdout:\n%s--- stderr:\n%s---\n", what,
	       r->status, r->out ? r->out : "", r->err ? r->err : "");
}

/* Fail unless the run exited with status; show its output if not. */
#define CLI_CHECK_STATUS(r, want)                                              \
	do {                                                                   \
		if ((r)->status != (want)) {                                   \
			cli_show("unexpected exit status", (r));               \
			FAIL("exit status %d, expected %d", (r)->status,       \
			     (want));                                          \
		}                                                              \
	} while (0)

/*
 * Run the tool into the reused result r (cli_rerun()) and fail unless it
 * exits with want: CLI_EXPECT(&res, 2, "kill", "-s", "99", "1", NULL).
 */
#define CLI_EXPECT(r, want, ...)                                               \
	do {                                                                   \
		cli_rerun((r), __VA_ARGS__);                                   \
		CLI_CHECK_STATUS((r), (want));                                 \
	} while (0)

/* CLI_EXPECT() run as uid. */
#define CLI_EXPECT_AS(r, want, uid, ...)                                       \
	do {                                                                   \
		cli_rerun_as((r), (uid), __VA_ARGS__);                         \
		CLI_CHECK_STATUS((r), (want));                                 \
	} while (0)

/* The run's stdout parsed as JSON (fails the test if it is not). */
static inline json_t *cli_json(const struct cli_result *r)
{
	json_error_t e;
	json_t *v = json_loads(r->out, 0, &e);

	if (!v) {
		cli_show("not JSON", r);
		FAIL("JSON error at line %d: %s", e.line, e.text);
	}
	return v;
}

/*
 * The first JSON value in text, which may go on (one line of a
 * refreshing output); fails the test if there is none.
 */
static inline json_t *cli_json_one(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DISABLE_EOF_CHECK, &e);

	if (!v)
		FAIL("bad JSON '%s': %s", text, e.text);
	return v;
}

/* The integer member key of object o (fails the test if there is none). */
static inline json_int_t cli_json_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		FAIL("no integer '%s' in the JSON", key);
	return json_integer_value(v);
}

/* The element of array arr whose integer member key equals v, or NULL. */
static inline json_t *cli_json_find_int(json_t *arr, const char *key,
					json_int_t v)
{
	size_t i;
	json_t *o;

	json_array_foreach(arr, i, o)
	{
		json_t *m = json_object_get(o, key);

		if (json_is_integer(m) && json_integer_value(m) == v)
			return o;
	}
	return NULL;
}

/* The element of array arr whose string member key equals s, or NULL. */
static inline json_t *cli_json_find_str(json_t *arr, const char *key,
					const char *s)
{
	size_t i;
	json_t *o;

	json_array_foreach(arr, i, o)
	{
		json_t *m = json_object_get(o, key);

		if (json_is_string(m) && strcmp(json_string_value(m), s) == 0)
			return o;
	}
	return NULL;
}

/* Whether line-oriented text has a line containing needle. */
static inline int cli_has_line(const char *text, const char *needle)
{
	return strstr(text, needle) != NULL;
}

/* ------------------------------------------------------------------------
 * A test actor
 */

struct cli_actor {
	pid_t pid;
	char region[64];  /* its named region's NAME (/dev/shm/shmcap.NAME) */
	char pubname[64]; /* the name it publishes */
};

/*
 * Fork an actor that maps an anonymous region of two pages holding a
 * datum frame (the integer 42 and the text "cli"), creates and maps the
 * named region a->region (one page, mode mode), holds a SPSC channel's
 * region (a descriptor, not mapped) and publishes a->pubname (the
 * anonymous region, mode 0600), then waits to be killed. Returns once
 * all of that is in place. tag makes the names unique to the test.
 */
static inline void cli_actor_start(struct cli_actor *a, const char *tag,
				   unsigned int mode)
{
	int pfd[2];
	char c;

	memset(a, 0, sizeof(*a));
	snprintf(a->region, sizeof(a->region), "t-cli-%s-%ld", tag,
		 (long)getpid());
	snprintf(a->pubname, sizeof(a->pubname), "t-cli-%s-pub-%ld", tag,
		 (long)getpid());
	CHECK(pipe(pfd) == 0);
	fflush(NULL);
	a->pid = fork();
	CHECK(a->pid >= 0);
	if (a->pid == 0) {
		shmcap_cap *anon, *named, *chan;
		shmcap_map *am, *nm;
		shmcap_datum_writer *w;
		shmcap_name *pub;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		t_watchdog(CLI_RUN_TIMEOUT_S * 2);
		close(pfd[0]);
		CHECK_OK(shmcap_region_create(8192, 0, &anon));
		CHECK_OK(shmcap_region_map(anon, 0, 0, NULL, SHMCAP_MAP_WRITE,
					   &am));
		CHECK_OK(
			shmcap_datum_writer_new(shmcap_map_addr(am), 8192, &w));
		CHECK_OK(shmcap_datum_begin_list(w, 2));
		CHECK_OK(shmcap_datum_put_int(w, 42));
		CHECK_OK(shmcap_datum_put_text(w, "cli", 3));
		CHECK(shmcap_datum_finish(w) > 0);
		shmcap_datum_writer_free(w);
		CHECK_OK(shmcap_region_create_named(a->region, 4096, mode,
						    &named));
		CHECK_OK(shmcap_region_map(
			named, 0, 0, NULL,
			SHMCAP_MAP_WRITE | SHMCAP_MAP_UNSEALED, &nm));
		CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, 64, 0,
					       &chan));
		CHECK_OK(shmcap_name_publish(a->pubname, &anon, 1, 0600, 0,
					     &pub));
		CHECK(write(pfd[1], "r", 1) == 1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1) {
		waitpid(a->pid, NULL, 0);
		a->pid = 0;
		FAIL("test actor failed to start");
	}
	close(pfd[0]);
}

/* ------------------------------------------------------------------------
 * Children for the tool to look at
 */

/*
 * Fork a child that dies with this process, or after CLI_RUN_TIMEOUT_S
 * seconds. Returns 0 in the child, the pid in the parent. With ready not
 * NULL, the child gets in *ready a descriptor to call cli_child_ready()
 * on once it is set up, and the parent returns only then, so the tool
 * never looks at a half-made child.
 */
static inline pid_t cli_fork(int *ready)
{
	int pfd[2] = { -1, -1 };
	pid_t pid;
	char c;

	if (ready)
		CHECK(pipe2(pfd, O_CLOEXEC) == 0);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(CLI_RUN_TIMEOUT_S);
		if (ready) {
			close(pfd[0]);
			*ready = pfd[1];
		}
		return 0;
	}
	if (!ready)
		return pid;
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1) {
		waitpid(pid, NULL, 0);
		FAIL("child %d failed to set up", (int)pid);
	}
	close(pfd[0]);
	return pid;
}

/* In a child of cli_fork(&ready): tell the parent it is set up. */
static inline void cli_child_ready(int ready)
{
	CHECK(write(ready, "r", 1) == 1);
	close(ready);
}

/* In a child: wait to be killed. */
static inline __attribute__((noreturn)) void cli_child_idle(void)
{
	for (;;)
		pause();
}

/* A child that only waits to be killed. */
static inline pid_t cli_sleeper(void)
{
	pid_t pid = cli_fork(NULL);

	if (pid == 0)
		cli_child_idle();
	return pid;
}

/*
 * End of a test: no named region of this test (t_unique_name(tag))
 * is left in /dev/shm, and r (if not NULL) is freed.
 */
static inline void cli_test_done(const char *tag, struct cli_result *r)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "shmcap.t-%s-%d-", tag, (int)getpid());
	CHECK_EQ(t_shm_leftovers_prefix(prefix), 0);
	if (r)
		cli_result_free(r);
	printf("ok\n");
}

/* SIGKILL the child pid and reap it (fails the test if it lingers). */
static inline void cli_kill_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	CHECK(t_wait_child(pid, 30) != -1);
}

/* SIGKILL the actor and reap it; its named region stays (remove it). */
static inline void cli_actor_kill(struct cli_actor *a)
{
	if (a->pid <= 0)
		return;
	cli_kill_reap(a->pid);
	a->pid = 0;
}

#endif /* SHMCAP_TEST_CLI_UTIL_H */
