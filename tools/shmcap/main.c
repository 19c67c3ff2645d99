/* SPDX-License-Identifier: MIT */
/*
 * shmcap: see, run and clean up what processes share through shmcap.
 *
 *   shmcap run [--cap NAME=SPEC]... [--wait] PROG [ARGS...]
 *   shmcap ps | kill | ls | stat | dump | bench | gc
 *
 * ChorusOS gave its users arun and akill; operators of shared-memory
 * systems ask above all what is shared, by whom, and how to clean up
 * after a crash. This file dispatches to the subcommands (cmd_*.c) and
 * holds the helpers they share (cli.h). See shmcap(1).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <shmcap.h>

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "run", cmd_run, "start an actor with named capabilities (arun)" },
	{ "ps", cmd_ps, "list the actors on this host" },
	{ "kill", cmd_kill, "send a signal to an actor (akill)" },
	{ "ls", cmd_ls, "list the shmcap regions on this host" },
	{ "stat", cmd_stat, "a channel's live counters" },
	{ "dump", cmd_dump, "hex dump and decoded view of a region" },
	{ "bench", cmd_bench, "run the benchmark suite" },
	{ "gc", cmd_gc, "remove named regions that no live actor uses" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: shmcap COMMAND [OPTIONS] [ARGS]\n"
		   "       shmcap COMMAND --help\n"
		   "       shmcap --version\n\ncommands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-6s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f, "\nExit status: 0 success, 1 failure, 2 bad usage, "
		   "3 not found, 4 permission denied.\nSee shmcap(1).\n");
}

static __attribute__((format(printf, 2, 0))) void
vwarn(const char *cmd, const char *fmt, va_list ap)
{
	fprintf(stderr, "shmcap: %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_warn(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(cmd, fmt, ap);
	va_end(ap);
}

int cli_usage_error(const char *cmd, void (*print_usage)(FILE *),
		    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(cmd, fmt, ap);
	va_end(ap);
	print_usage(stderr);
	return CLI_USAGE;
}

int cli_exit_for(int err)
{
	switch (err) {
	case -ENOENT:
	case -ESRCH:
		return CLI_NOTFOUND;
	case -EACCES:
	case -EPERM:
		return CLI_PERM;
	default:
		return CLI_FAIL;
	}
}

int cli_json_print(json_t *v)
{
	/*
	 * 15 significant digits, not Jansson's 17: every double that came
	 * from a decimal of up to 15 digits (a rounded uptime, 0.01) prints
	 * as that decimal instead of 0.010000000000000000208.
	 */
	int ok = json_dumpf(v, stdout,
			    JSON_COMPACT | JSON_REAL_PRECISION(15)) == 0 &&
		 fputc('\n', stdout) != EOF;

	json_decref(v);
	return ok ? CLI_OK : CLI_FAIL;
}

void cli_fmt_age(double s, char *buf, size_t size)
{
	unsigned long long t = (unsigned long long)s;

	if (s < 60)
		snprintf(buf, size, "%.1fs", s);
	else if (t < 86400)
		snprintf(buf, size, "%02llu:%02llu:%02llu", t / 3600,
			 t / 60 % 60, t % 60);
	else
		snprintf(buf, size, "%llud %02llu:%02llu:%02llu", t / 86400,
			 t / 3600 % 24, t / 60 % 60, t % 60);
}

void cli_fmt_bytes(unsigned long long n, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", n);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("shmcap %s\n", shmcap_version_string());
		return CLI_OK;
	}
	for (i = 0; i < NCOMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "shmcap: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return CLI_USAGE;
}
