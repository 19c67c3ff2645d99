/* SPDX-License-Identifier: MIT */
/*
 * shmcap kill (tools/shmcap/cmd_kill.c), driven through the tool.
 *
 * - A forked actor is signalled by pid and by its 32-hex-digit id, with
 *   the default (SIGTERM) and with every spelling of a signal: -9, -KILL,
 *   -SIGKILL, -sigkill, -s KILL, --signal=9; each child must end by that
 *   signal. -0 only tests: the child lives on.
 * - A dead actor (reaped, or a zombie not yet reaped), an unknown id:
 *   exit 3. Several AIDs: every live one is signalled, the exit code is
 *   the first failure's.
 * - Another user (uid 65534) signalling this root process's child: the
 *   kernel refuses, exit 4, and the child lives.
 * - Bad usage (an unknown signal, a malformed AID, no AID): exit 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <shmcap.h>

#include "cli_util.h"
#include "helpers.h"

static struct cli_result res;

static void check_ended_by(pid_t pid, int sig)
{
	int st = t_wait_child(pid, 30);

	CHECK(st != -1);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != sig)
		FAIL("child %d: status 0x%x, expected signal %d", (int)pid, st,
		     sig);
}

static void id_of(pid_t pid, char *hex)
{
	shmcap_actor_id id;
	shmcap_cap *a;

	CHECK_OK(shmcap_actor_open(pid, NULL, &a));
	CHECK_OK(shmcap_actor_id_of(a, &id));
	CHECK_OK(shmcap_actor_id_format(&id, hex, SHMCAP_ACTOR_ID_TEXT));
	shmcap_cap_close(a);
}

static void test_signals(void)
{
	static const struct {
		const char *a, *b;
		int sig;
	} forms[] = {
		{ "-9", NULL, SIGKILL },	 { "-KILL", NULL, SIGKILL },
		{ "-SIGKILL", NULL, SIGKILL },	 { "-sigkill", NULL, SIGKILL },
		{ "-s", "KILL", SIGKILL },	 { "-s", "9", SIGKILL },
		{ "--signal=9", NULL, SIGKILL }, { "-HUP", NULL, SIGHUP },
		{ "-s", "SIGUSR1", SIGUSR1 },	 { "-15", NULL, SIGTERM },
		{ "-sKILL", NULL, SIGKILL },	 { "-s9", NULL, SIGKILL },
		{ "-stkflt", NULL, SIGSTKFLT },
	};
	char pidtext[16], hex[SHMCAP_ACTOR_ID_TEXT];
	size_t i;
	pid_t pid;

	/* Default: SIGTERM, by pid. */
	pid = cli_sleeper();
	snprintf(pidtext, sizeof(pidtext), "%d", (int)pid);
	CLI_EXPECT(&res, 0, "kill", pidtext, NULL);
	check_ended_by(pid, SIGTERM);

	/* By id. */
	pid = cli_sleeper();
	id_of(pid, hex);
	CLI_EXPECT(&res, 0, "kill", "-9", hex, NULL);
	check_ended_by(pid, SIGKILL);

	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		pid = cli_sleeper();
		snprintf(pidtext, sizeof(pidtext), "%d", (int)pid);
		if (forms[i].b)
			cli_rerun(&res, "kill", forms[i].a, forms[i].b, pidtext,
				  NULL);
		else
			cli_rerun(&res, "kill", forms[i].a, pidtext, NULL);
		CLI_CHECK_STATUS(&res, 0);
		check_ended_by(pid, forms[i].sig);
	}

	/* -0 tests only. */
	pid = cli_sleeper();
	snprintf(pidtext, sizeof(pidtext), "%d", (int)pid);
	CLI_EXPECT(&res, 0, "kill", "-0", pidtext, NULL);
	CHECK_EQ(waitpid(pid, NULL, WNOHANG), 0);
	kill(pid, SIGKILL);
	check_ended_by(pid, SIGKILL);
}

static void test_dead(void)
{
	char pidtext[16], hex[SHMCAP_ACTOR_ID_TEXT], live[16];
	siginfo_t si;
	pid_t pid, other;

	/* A zombie: ended, not yet reaped. */
	pid = cli_sleeper();
	snprintf(pidtext, sizeof(pidtext), "%d", (int)pid);
	id_of(pid, hex);
	kill(pid, SIGKILL);
	memset(&si, 0, sizeof(si));
	CHECK_OK(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT));
	CLI_EXPECT(&res, 3, "kill", pidtext, NULL);
	CHECK(strstr(res.err, "no such actor") != NULL);
	check_ended_by(pid, SIGKILL);

	/* Reaped: its id names nobody (its pid may even be reused). */
	CLI_EXPECT(&res, 3, "kill", hex, NULL);

	/* An id nobody has. */
	CLI_EXPECT(&res, 3, "kill", "-9", "0123456789abcdef0123456789abcdef",
		   NULL);

	/* One dead, one live: the live one is signalled, exit 3. */
	other = cli_sleeper();
	snprintf(live, sizeof(live), "%d", (int)other);
	CLI_EXPECT(&res, 3, "kill", "-KILL", hex, live, NULL);
	check_ended_by(other, SIGKILL);
}

static void test_perm(void)
{
	char pidtext[16];
	pid_t pid;

	pid = cli_sleeper();
	snprintf(pidtext, sizeof(pidtext), "%d", (int)pid);
	CLI_EXPECT_AS(&res, 4, CLI_NOBODY, "kill", "-9", pidtext, NULL);
	CHECK_EQ(waitpid(pid, NULL, WNOHANG), 0);
	kill(pid, SIGKILL);
	check_ended_by(pid, SIGKILL);
}

static void test_usage(void)
{
	CLI_EXPECT(&res, 2, "kill", NULL);
	CLI_EXPECT(&res, 2, "kill", "-NOSUCHSIG", "1", NULL);
	CLI_EXPECT(&res, 2, "kill", "-s", "99", "1", NULL);
	CLI_EXPECT(&res, 2, "kill", "not-an-aid", NULL);
	CLI_EXPECT(&res, 2, "kill", "0123", "abc", NULL);
	CLI_EXPECT(&res, 0, "kill", "--help", NULL);
	CHECK(strstr(res.out, "usage: shmcap kill") != NULL);
	CLI_EXPECT(&res, 0, "kill", "-l", NULL);
	CHECK(strstr(res.out, "KILL") != NULL);
}

int main(void)
{
	t_watchdog(100);
	if (geteuid() != 0)
		SKIP("needs root for the other-user case");
	test_signals();
	test_dead();
	test_perm();
	test_usage();
	cli_result_free(&res);
	printf("ok\n");
	return 0;
}
