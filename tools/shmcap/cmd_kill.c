/* SPDX-License-Identifier: MIT */
/*
 * shmcap kill: send a signal to actors (ChorusOS akill).
 *
 *   shmcap kill [-SIGNAL | -s SIGNAL] AID...
 *   shmcap kill -l
 *
 * SIGNAL is a number or a name with or without "SIG", in any case (-9,
 * -KILL, -sigkill, -s TERM); the default is SIGTERM. An AID is a decimal
 * pid or the 32-hex-digit actor id. Each actor is opened as a pidfd
 * (shmcap_actor_open()) and signalled through it, so a pid reused between
 * the lookup and the signal cannot be hit by mistake; an id names exactly
 * one process ever, so `shmcap kill ID` never reaches a newcomer that
 * took the pid of a dead actor.
 *
 * Exit status: 0 if every actor was signalled, else the code of the first
 * failure: 3 for a dead or unknown actor, 4 when the kernel refuses
 * (another user's process), 2 for bad usage.
 *
 * This file also holds cli_aid_open(), the resolution of an AID argument
 * that stat and dump share (see its comment).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <shmcap.h>

#define CMD "kill"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmcap kill [-SIGNAL | -s SIGNAL] AID...\n"
		"       shmcap kill -l\n"
		"Send a signal (default TERM) to actors. "
		"SIGNAL: a number or a\n"
		"name with or without SIG (-9, -KILL, -SIGKILL, -s KILL).\n"
		"AID: a pid, or a 32-hex-digit actor id.\n"
		"  -s, --signal SIGNAL  the signal to send\n"
		"  -l, --list           list the signal names\n"
		"  -h, --help           this text\n"
		"Exit: 0 all signalled, 3 no such actor, 4 not permitted.\n");
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return 0;
	}
	return 1;
}

int cli_aid_open(const char *text, shmcap_cap **out)
{
	shmcap_cap *cap = NULL;
	shmcap_actor_id id;
	struct dirent *de;
	long pid;
	DIR *d;
	int ret;

	if (all_digits(text) && strlen(text) < 11) {
		pid = strtol(text, NULL, 10);
		if (pid < 1 || pid > INT32_MAX)
			return -EINVAL;
		ret = shmcap_actor_open((int32_t)pid, NULL, &cap);
		if (ret < 0)
			return ret;
		goto found;
	}
	if (shmcap_actor_id_parse(text, &id) < 0)
		return -EINVAL;
	d = opendir("/proc");
	if (!d)
		return -errno;
	ret = -ESRCH;
	while ((de = readdir(d))) {
		if (!all_digits(de->d_name))
			continue;
		pid = strtol(de->d_name, NULL, 10);
		if (pid < 1 || pid > INT32_MAX)
			continue;
		if (shmcap_actor_open((int32_t)pid, &id, &cap) == 0) {
			ret = 0;
			break;
		}
	}
	closedir(d);
	if (ret < 0)
		return ret;
found:
	ret = shmcap_actor_pid(cap);
	if (ret < 0 || !out)
		shmcap_cap_close(cap);
	else
		*out = cap;
	return ret;
}

/* A signal number or name ("9", "KILL", "SIGKILL", "RTMIN+2"); -1 if bad. */
static int parse_signal(const char *s)
{
	const char *abbrev;
	char *end;
	long v;
	int sig;

	if (isdigit((unsigned char)*s)) {
		v = strtol(s, &end, 10);
		return *end || v < 0 || v >= NSIG ? -1 : (int)v;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	if (strncasecmp(s, "RTMIN", 5) == 0 ||
	    strncasecmp(s, "RTMAX", 5) == 0) {
		int base = toupper((unsigned char)s[3]) == 'I' ? SIGRTMIN :
								 SIGRTMAX;

		if (!s[5])
			return base;
		if (s[5] != '+' && s[5] != '-')
			return -1;
		v = strtol(s + 6, &end, 10);
		if (*end || !isdigit((unsigned char)s[6]))
			return -1;
		v = s[5] == '+' ? base + v : base - v;
		return v < SIGRTMIN || v > SIGRTMAX ? -1 : (int)v;
	}
	for (sig = 1; sig < SIGRTMIN; sig++) {
		abbrev = sigabbrev_np(sig);
		if (abbrev && strcasecmp(s, abbrev) == 0)
			return sig;
	}
	return -1;
}

static void list_signals(void)
{
	const char *abbrev;
	int sig;

	for (sig = 1; sig < SIGRTMIN; sig++) {
		abbrev = sigabbrev_np(sig);
		if (abbrev)
			printf("%2d %s\n", sig, abbrev);
	}
	printf("%2d RTMIN .. %d RTMAX\n", SIGRTMIN, SIGRTMAX);
}

static int kill_one(const char *aid, int sig)
{
	shmcap_cap *actor = NULL;
	int ret;

	ret = cli_aid_open(aid, &actor);
	if (ret == -EINVAL) {
		cli_warn(CMD,
			 "'%s' is not an actor (a pid or a 32-hex-digit "
			 "id)",
			 aid);
		return CLI_USAGE;
	}
	if (ret < 0) {
		cli_warn(CMD, "%s: %s", aid,
			 ret == -ESRCH ? "no such actor" :
					 shmcap_strerror(ret));
		return cli_exit_for(ret);
	}
	ret = shmcap_actor_signal(actor, sig);
	shmcap_cap_close(actor);
	if (ret < 0) {
		cli_warn(CMD, "%s: %s", aid,
			 ret == -ESRCH ? "no such actor (it has ended)" :
					 shmcap_strerror(ret));
		return cli_exit_for(ret);
	}
	return CLI_OK;
}

int cmd_kill(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "signal", required_argument, NULL, 's' },
		{ "list", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int sig = SIGTERM, c, i, ret, first = 1;

	/*
	 * -9, -KILL, -SIGKILL: not options getopt knows. "-sKILL" and
	 * "-s9" are getopt's -s with its argument ("-segv" is SIGSEGV).
	 */
	if (argc > 1 && argv[1][0] == '-' && argv[1][1] && argv[1][1] != '-' &&
	    strcmp(argv[1], "-s") != 0 && strcmp(argv[1], "-l") != 0 &&
	    strcmp(argv[1], "-h") != 0 &&
	    !(argv[1][1] == 's' && parse_signal(argv[1] + 1) < 0)) {
		sig = parse_signal(argv[1] + 1);
		if (sig < 0) {
			return cli_usage_error(
				CMD, usage, "unknown signal '%s'", argv[1] + 1);
		}
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "+s:lh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sig = parse_signal(optarg);
			if (sig < 0) {
				return cli_usage_error(CMD, usage,
						       "unknown signal '%s'",
						       optarg);
			}
			break;
		case 'l':
			list_signals();
			return CLI_OK;
		case 'h':
			usage(stdout);
			return CLI_OK;
		default:
			usage(stderr);
			return CLI_USAGE;
		}
	}
	if (optind >= argc) {
		return cli_usage_error(CMD, usage, "no actor given");
	}
	/* Bad usage signals nobody: check every AID's form first. */
	for (i = optind; i < argc; i++) {
		shmcap_actor_id id;

		if ((all_digits(argv[i]) && strlen(argv[i]) < 11 &&
		     strtol(argv[i], NULL, 10) > 0) ||
		    shmcap_actor_id_parse(argv[i], &id) == 0)
			continue;
		cli_warn(CMD,
			 "'%s' is not an actor (a pid or a 32-hex-digit "
			 "id)",
			 argv[i]);
		usage(stderr);
		return CLI_USAGE;
	}
	ret = CLI_OK;
	for (i = optind; i < argc; i++) {
		c = kill_one(argv[i], sig);
		if (c != CLI_OK && first) {
			ret = c;
			first = 0;
		}
	}
	return ret;
}
