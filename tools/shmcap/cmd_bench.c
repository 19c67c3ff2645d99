/* SPDX-License-Identifier: MIT */
/*
 * shmcap bench: run the benchmark suite of a build tree with a progress
 * display.
 *
 *   shmcap bench [--quick] [--build DIR] [-- ARGS...]
 *
 * The programs are those bench/run.sh runs: bench_sem and bench_notifier
 * first, then every other executable bench_* of the directory in name
 * order (bench_actor, bench_channel ...). The directory is DIR/bench with
 * --build, else $SHMCAP_BENCH_DIR, else the "bench" directory next to the
 * one holding this executable (build/tools/shmcap -> build/bench), which
 * is where a build tree puts them; an installed shmcap has none and says
 * so (exit 3).
 *
 * Each program's standard output goes through a pipe: while it runs, a
 * one-line display "[2/4] bench_sem 12s: LAST LINE" on standard error
 * (only when standard error is a terminal) follows the lines it prints;
 * when it ends, its whole output (the table and the target checks) is
 * copied to standard output, so that a redirected run gives exactly the
 * tables. The programs' standard error is not touched. --quick and ARGS
 * go to every program. Unlike run.sh this does not write results files
 * (pass -- --json FILE for that) nor repeat the pinned/unpinned variants.
 *
 * Exit status: 0 if every program succeeded, 1 if one failed, 3 if there
 * are no benchmarks, 2 on bad usage.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CMD "bench"
#define MAX_PROGS 64

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmcap bench [--quick] [--build DIR] [-- ARGS...]\n"
		"Run the benchmark programs (bench_sem, bench_notifier, then\n"
		"the other bench_*) of a build tree, showing progress on a\n"
		"terminal; print their tables on stdout.\n"
		"  -q, --quick      a smoke test (passes --quick)\n"
		"  -b, --build DIR  the build tree "
		"(default: $SHMCAP_BENCH_DIR,\n"
		"                   or ../bench next to this executable)\n"
		"  -- ARGS...       passed to every program\n"
		"  -h, --help       this text\n");
}

static int is_prog(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return 0;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       access(path, X_OK) == 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The programs, run.sh's order; their count, or -1. */
static int find_progs(const char *dir, char **progs)
{
	static const char *const first[] = { "bench_sem", "bench_notifier" };
	char *rest[MAX_PROGS];
	struct dirent *de;
	size_t i, n = 0, nrest = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return -1;
	for (i = 0; i < 2; i++) {
		if (is_prog(dir, first[i]))
			progs[n++] = strdup(first[i]);
	}
	while ((de = readdir(d)) && nrest < MAX_PROGS - n) {
		if (strncmp(de->d_name, "bench_", 6) != 0 ||
		    strcmp(de->d_name, first[0]) == 0 ||
		    strcmp(de->d_name, first[1]) == 0 ||
		    strchr(de->d_name, '.') || !is_prog(dir, de->d_name))
			continue;
		rest[nrest++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(rest, nrest, sizeof(rest[0]), cmp_str);
	for (i = 0; i < nrest; i++)
		progs[n++] = rest[i];
	for (i = 0; i < n; i++) {
		if (!progs[i])
			return -1;
	}
	return (int)n;
}

static int default_dir(char *buf, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return -1;
	*slash = 0;
	/* build/tools -> build: the parent of the executable's directory. */
	slash = strrchr(exe, '/');
	if (slash)
		*slash = 0;
	return snprintf(buf, size, "%s/bench", *exe ? exe : "") < (int)size ?
		       0 :
		       -1;
}

struct outbuf {
	char *data;
	size_t len, cap;
};

static int out_append(struct outbuf *o, const char *p, size_t n)
{
	char *d;

	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 8192;

		while (cap < o->len + n + 1)
			cap *= 2;
		d = realloc(o->data, cap);
		if (!d)
			return -1;
		o->data = d;
		o->cap = cap;
	}
	memcpy(o->data + o->len, p, n);
	o->len += n;
	o->data[o->len] = 0;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The last complete non-empty line of o, into buf. */
static void last_line(const struct outbuf *o, char *buf, size_t size)
{
	size_t end = o->len, start;

	buf[0] = 0;
	while (end > 0) {
		while (end > 0 && o->data[end - 1] == '\n')
			end--;
		start = end;
		while (start > 0 && o->data[start - 1] != '\n')
			start--;
		if (end > start) {
			size_t k = 0;

			/* Table rows: runs of blanks squeezed to one. */
			for (; start < end && k + 1 < size; start++) {
				char ch = o->data[start];

				if (ch == '\t')
					ch = ' ';
				if (ch == ' ' && k > 0 && buf[k - 1] == ' ')
					continue;
				buf[k++] = (unsigned char)ch < 0x20 ? '?' : ch;
			}
			buf[k] = 0;
			return;
		}
	}
}

static void progress(int tty, int i, int n, const char *prog, double t0,
		     const struct outbuf *o)
{
	char line[256];
	int width = 78;

	if (!tty)
		return;
	last_line(o, line, sizeof(line));
	/* \r and clear to end of line: one line, rewritten in place. */
	fprintf(stderr, "\r\033[K[%d/%d] %s %.0fs: %.*s", i, n, prog,
		now_s() - t0, width > 40 ? width - 30 : 10, line);
	fflush(stderr);
}

/* Run one program; its exit status (0 ok) or -1. */
static int run_prog(const char *dir, const char *prog, int quick, char **extra,
		    int nextra, int idx, int n, int tty)
{
	struct outbuf o = { NULL, 0, 0 };
	char path[PATH_MAX], buf[4096];
	char **args;
	int pfd[2], status, a = 0, i, ret = -1;
	double t0 = now_s();
	struct pollfd p;
	pid_t pid;
	ssize_t r;

	if (snprintf(path, sizeof(path), "%s/%s", dir, prog) >=
	    (int)sizeof(path))
		return -1;
	args = calloc((size_t)nextra + 3, sizeof(*args));
	if (!args || pipe2(pfd, O_CLOEXEC) < 0) {
		free(args);
		cli_warn(CMD, "%s: %s", prog, strerror(errno));
		return -1;
	}
	args[a++] = path;
	if (quick)
		args[a++] = "--quick";
	for (i = 0; i < nextra; i++)
		args[a++] = extra[i];
	args[a] = NULL;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		cli_warn(CMD, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		execv(path, args);
		fprintf(stderr, "shmcap: bench: %s: %s\n", path,
			strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	pfd[1] = -1;
	progress(tty, idx, n, prog, t0, &o);
	p.fd = pfd[0];
	p.events = POLLIN;
	for (;;) {
		i = poll(&p, 1, 1000);
		if (i < 0 && errno != EINTR)
			break;
		if (i > 0) {
			r = read(pfd[0], buf, sizeof(buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			if (out_append(&o, buf, (size_t)r) < 0)
				break;
		}
		progress(tty, idx, n, prog, t0, &o);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (tty)
		fprintf(stderr, "\r\033[K");
	printf("\n$ %s", path);
	for (i = 1; i < a; i++)
		printf(" %s", args[i]);
	printf("\n%s", o.data ? o.data : "");
	if (WIFEXITED(status))
		ret = WEXITSTATUS(status);
	if (ret != 0)
		printf("# %s FAILED (%s %d)\n", prog,
		       WIFSIGNALED(status) ? "signal" : "exit status",
		       WIFSIGNALED(status) ? WTERMSIG(status) :
					     WEXITSTATUS(status));
	fflush(stdout);
out:
	close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	free(o.data);
	free(args);
	return ret;
}

int cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "build", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char dir[PATH_MAX], *progs[MAX_PROGS];
	const char *build = NULL, *env;
	int quick = 0, c, n, i, failed = 0, tty;
	double t0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+qb:h", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quick = 1;
			break;
		case 'b':
			build = optarg;
			break;
		case 'h':
			usage(stdout);
			return CLI_OK;
		default:
			usage(stderr);
			return CLI_USAGE;
		}
	}
	/* getopt stops at "--" and skips it; anything else left is a stray. */
	if (optind < argc && strcmp(argv[optind - 1], "--") != 0) {
		cli_warn(CMD,
			 "unexpected argument '%s' (program arguments go "
			 "after --)",
			 argv[optind]);
		usage(stderr);
		return CLI_USAGE;
	}

	env = getenv("SHMCAP_BENCH_DIR");
	if (build)
		snprintf(dir, sizeof(dir), "%s/bench", build);
	else if (env && *env)
		snprintf(dir, sizeof(dir), "%s", env);
	else if (default_dir(dir, sizeof(dir)) < 0) {
		cli_warn(CMD, "cannot find this executable's directory; use "
			      "--build DIR");
		return CLI_NOTFOUND;
	}
	n = find_progs(dir, progs);
	if (n <= 0) {
		cli_warn(CMD,
			 "no benchmark programs in %s (build them, or use "
			 "--build DIR)",
			 dir);
		return CLI_NOTFOUND;
	}

	tty = isatty(STDERR_FILENO);
	t0 = now_s();
	printf("# shmcap bench: %d programs in %s%s\n", n, dir,
	       quick ? " (--quick)" : "");
	for (i = 0; i < n; i++) {
		if (run_prog(dir, progs[i], quick, argv + optind, argc - optind,
			     i + 1, n, tty) != 0)
			failed = 1;
		free(progs[i]);
	}
	printf("\n# done in %.0f s%s\n", now_s() - t0,
	       failed ? "; some benchmarks FAILED (see above)" : "");
	return failed ? CLI_FAIL : CLI_OK;
}
