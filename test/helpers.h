/* SPDX-License-Identifier: MIT */
/*
 * The test harness of shmcap's tests.
 *
 * Each test is one program, test/t_NAME.c, that CTest runs as its own
 * process with a timeout. It begins with a "Description:" comment and ends
 * with one of the exit codes below: T_EXIT_SKIP (77) tells CTest that the
 * test could not run here, and the test prints why first (SKIP()).
 *
 * The CHECK macros stop the test at the first failure: they print the file
 * and line, the expression as written and the values it had, and exit with
 * T_EXIT_FAIL. In a forked child they end the child the same way, so the
 * parent sees WEXITSTATUS() == T_EXIT_FAIL.
 *
 * Everything here is static inline, so a test that uses only some of it
 * compiles without warnings.
 */
#ifndef SHMCAP_TEST_HELPERS_H
#define SHMCAP_TEST_HELPERS_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmcap.h>

enum t_exit_code {
	T_EXIT_PASS = 0,
	T_EXIT_FAIL = 1,
	T_EXIT_SKIP = 77,
};

/*
 * Runs before main() in every test: stdout is line buffered even when
 * CTest reads it through a pipe, so that its lines and stderr's come out
 * in order, and a forked child that exits does not print again what the
 * parent had buffered before fork().
 */
__attribute__((constructor)) static inline void t_line_buffered(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
}

__attribute__((format(printf, 3, 4), noreturn)) static inline void
t_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(T_EXIT_FAIL);
}

__attribute__((format(printf, 1, 2), noreturn)) static inline void
t_skip(const char *fmt, ...)
{
	va_list ap;

	printf("skipped: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(T_EXIT_SKIP);
}

/* Skip the test, saying why: SKIP("no memfd_create: %s", strerror(e)). */
#define SKIP(...) t_skip(__VA_ARGS__)

/* Fail the test with a message: FAIL("child ended with status %d", st). */
#define FAIL(...) t_fail(__FILE__, __LINE__, __VA_ARGS__)

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			t_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond); \
	} while (0)

/*
 * Integers of any type, compared and printed as long long, so that mixing
 * signed and unsigned operands needs no cast at the call site.
 */
#define CHECK_EQ(a, b)                                                         \
	do {                                                                   \
		long long t_chk_a_ = (long long)(a);                           \
		long long t_chk_b_ = (long long)(b);                           \
		if (t_chk_a_ != t_chk_b_)                                      \
			t_fail(__FILE__, __LINE__,                             \
			       "CHECK_EQ(%s, %s) failed: %lld != %lld", #a,    \
			       #b, t_chk_a_, t_chk_b_);                        \
	} while (0)

#define CHECK_NE(a, b)                                                         \
	do {                                                                   \
		long long t_chk_a_ = (long long)(a);                           \
		long long t_chk_b_ = (long long)(b);                           \
		if (t_chk_a_ == t_chk_b_)                                      \
			t_fail(__FILE__, __LINE__,                             \
			       "CHECK_NE(%s, %s) failed: both %lld", #a, #b,   \
			       t_chk_a_);                                      \
	} while (0)

/* expr must return exactly err, a negative errno: CHECK_ERR(f(), -EINVAL). */
#define CHECK_ERR(expr, err)                                                   \
	do {                                                                   \
		int t_chk_got_ = (int)(expr);                                  \
		int t_chk_want_ = (int)(err);                                  \
		if (t_chk_got_ != t_chk_want_)                                 \
			t_fail(__FILE__, __LINE__,                             \
			       "%s returned %d (%s), expected %d (%s)", #expr, \
			       t_chk_got_, shmcap_err_name(t_chk_got_),        \
			       t_chk_want_, shmcap_err_name(t_chk_want_));     \
	} while (0)

/* expr must succeed, i.e. return a value >= 0. */
#define CHECK_OK(expr)                                                         \
	do {                                                                   \
		long long t_chk_ret_ = (long long)(expr);                      \
		if (t_chk_ret_ < 0)                                            \
			t_fail(__FILE__, __LINE__, "%s failed: %lld (%s: %s)", \
			       #expr, t_chk_ret_,                              \
			       shmcap_err_name((int)t_chk_ret_),               \
			       shmcap_strerror((int)t_chk_ret_));              \
	} while (0)

/* Two strings, either of which may be NULL (then equal only to NULL). */
#define CHECK_STR_EQ(a, b)                                                     \
	do {                                                                   \
		const char *t_chk_a_ = (a);                                    \
		const char *t_chk_b_ = (b);                                    \
		if (t_chk_a_ == NULL || t_chk_b_ == NULL ?                     \
			    t_chk_a_ != t_chk_b_ :                             \
			    strcmp(t_chk_a_, t_chk_b_) != 0)                   \
			t_fail(__FILE__, __LINE__,                             \
			       "CHECK_STR_EQ(%s, %s): \"%s\" != \"%s\"", #a,   \
			       #b, t_chk_a_ ? t_chk_a_ : "(null)",             \
			       t_chk_b_ ? t_chk_b_ : "(null)");                \
	} while (0)

#define CHECK_NULL(p)                                                          \
	do {                                                                   \
		const void *t_chk_p_ = (p);                                    \
		if (t_chk_p_ != NULL)                                          \
			t_fail(__FILE__, __LINE__,                             \
			       "CHECK_NULL(%s) failed: %p", #p, t_chk_p_);     \
	} while (0)

#define CHECK_NOTNULL(p)                                                       \
	do {                                                                   \
		if ((p) == NULL)                                               \
			t_fail(__FILE__, __LINE__,                             \
			       "CHECK_NOTNULL(%s) failed: NULL", #p);          \
	} while (0)

/*
 * The number of descriptors open in this process, or -1. Compare it before
 * and after an operation to find a leaked descriptor.
 */
static inline int t_count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	int self, n = 0;

	if (!dir)
		return -1;
	self = dirfd(dir);
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (atoi(de->d_name) == self)
			continue;
		n++;
	}
	closedir(dir);
	return n;
}

/*
 * The number of files in /dev/shm whose name starts with prefix, or -1.
 * Tests run in parallel, so a test that checks for leftovers names its
 * regions with a prefix of its own (t_unique_name()) and counts those.
 */
static inline int t_shm_leftovers_prefix(const char *prefix)
{
	DIR *dir = opendir("/dev/shm");
	struct dirent *de;
	size_t len = strlen(prefix);
	int n = 0;

	if (!dir)
		return -1;
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, prefix, len) == 0)
			n++;
	}
	closedir(dir);
	return n;
}

/* The number of shmcap named regions (/dev/shm/shmcap.*), or -1. */
static inline int t_shm_leftovers(void)
{
	return t_shm_leftovers_prefix("shmcap.");
}

/*
 * A region name unique to this process and call, "t-TAG-PID-N", in buf.
 * The region's file is then /dev/shm/shmcap.t-TAG-PID-N.
 */
static inline const char *t_unique_name(char *buf, size_t size, const char *tag)
{
	static unsigned int counter;

	snprintf(buf, size, "t-%s-%ld-%u", tag, (long)getpid(), counter++);
	return buf;
}

/*
 * Wait for the child pid for at most timeout_s seconds (no limit if it is
 * 0 or less). Returns its raw wait status, to be taken apart with
 * WIFEXITED() and friends. If the time runs out, the child is killed with
 * SIGKILL and reaped, and -1 is returned; -1 also if waitpid() fails.
 */
static inline int t_wait_child(pid_t pid, int timeout_s)
{
	const struct timespec pause = { .tv_sec = 0, .tv_nsec = 10000000 };
	struct timespec now, end;
	int status;
	pid_t r;

	if (timeout_s <= 0) {
		do
			r = waitpid(pid, &status, 0);
		while (r < 0 && errno == EINTR);
		return r == pid ? status : -1;
	}

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += timeout_s;
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > end.tv_sec ||
		    (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
			break;
		nanosleep(&pause, NULL);
	}

	fprintf(stderr, "child %ld still running after %d s: killing it\n",
		(long)pid, timeout_s);
	kill(pid, SIGKILL);
	do
		r = waitpid(pid, &status, 0);
	while (r < 0 && errno == EINTR);
	return -1;
}

/*
 * Check that a raw wait status says the child exited with T_EXIT_PASS;
 * fail the test otherwise, saying how it ended.
 */
#define CHECK_CHILD_OK(status)                                                 \
	do {                                                                   \
		int t_chk_st_ = (status);                                      \
		if (t_chk_st_ == -1)                                           \
			t_fail(__FILE__, __LINE__,                             \
			       "child of %s timed out or was lost", #status);  \
		if (WIFSIGNALED(t_chk_st_))                                    \
			t_fail(__FILE__, __LINE__,                             \
			       "child of %s killed by signal %d", #status,     \
			       WTERMSIG(t_chk_st_));                           \
		if (!WIFEXITED(t_chk_st_) ||                                   \
		    WEXITSTATUS(t_chk_st_) != T_EXIT_PASS)                     \
			t_fail(__FILE__, __LINE__,                             \
			       "child of %s exited with %d", #status,          \
			       WEXITSTATUS(t_chk_st_));                        \
	} while (0)

/*
 * The path of the peer program (test/peer.c) that multi-process tests
 * exec: $SHMCAP_TEST_PEER, set by CTest, else the path compiled in, else
 * NULL when there is no peer.
 */
static inline const char *t_peer_path(void)
{
	const char *path = getenv("SHMCAP_TEST_PEER");

	if (path && *path)
		return path;
#ifdef SHMCAP_TEST_PEER
	return SHMCAP_TEST_PEER;
#else
	return NULL;
#endif
}

static inline void t_watchdog_fired(int sig)
{
	static const char msg[] = "watchdog: test took too long, aborting\n";
	ssize_t r;

	(void)sig;
	r = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)r;
	_exit(T_EXIT_FAIL);
}

/*
 * End the test with T_EXIT_FAIL if it still runs after seconds, so that a
 * hang fails fast with a message instead of waiting for CTest's timeout.
 * Uses SIGALRM and alarm(); a forked child does not inherit the alarm and
 * calls t_watchdog() itself if it needs one. 0 disarms it.
 */
static inline void t_watchdog(unsigned int seconds)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = t_watchdog_fired;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(seconds);
}

#endif /* SHMCAP_TEST_HELPERS_H */
