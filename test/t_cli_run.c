/* SPDX-License-Identifier: MIT */
/*
 * shmcap run (tools/shmcap/cmd_run.c), driven as a user would: the tool
 * is executed and its exit status, output and effects checked.
 *
 * - Exit status propagation with --wait: exit 7 gives 7, a program killed
 *   by SIGKILL gives 128 + 9; without --wait the tool exits 0 and the
 *   program keeps running (this test is a child subreaper, so it reaps it).
 * - The program sees its capabilities: the test peer (test/peer.c,
 *   env-caps mode) checks that it inherited exactly the listed
 *   descriptors and finds each by name with the right type and rights: an
 *   anonymous region, a named region with known text (the peer writes
 *   back into it, which the test reads), and both capabilities a name
 *   published here holds (NAME and NAME.1); a fresh notifier by env-one.
 * - Bad usage (bad SPEC, size, name, no program) exits 2; a missing
 *   program 3, a non-executable one 4; a missing named region or
 *   published name 3.
 * - SIGTERM sent to `shmcap run --wait` reaches the program, and the tool
 *   exits 128 + 15.
 * - --json prints an object with the aid and a 32-hex-digit id.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <shmcap.h>

#include "cli_util.h"
#include "helpers.h"

static struct cli_result res;

static void test_status(void)
{
	CLI_EXPECT(&res, 7, "run", "--wait", "sh", "-c", "exit 7", NULL);
	CHECK(strncmp(res.out, "aid ", 4) == 0);
	CHECK(strstr(res.out, " id ") != NULL);

	CLI_EXPECT(&res, 128 + 9, "run", "--wait", "sh", "-c", "kill -9 $$",
		   NULL);

	CLI_EXPECT(&res, 0, "run", "--wait", "true", NULL);
	/* PROG's own options are not the tool's. */
	CLI_EXPECT(&res, 3, "run", "--wait", "sh", "-c", "exit 3", "--wait",
		   NULL);
}

static void test_json(void)
{
	json_error_t jerr;
	json_t *o, *aid, *id;

	CLI_EXPECT(&res, 0, "run", "--json", "--wait", "--cap", "n=notifier",
		   "true", NULL);
	o = json_loads(res.out, 0, &jerr);
	if (!o)
		FAIL("bad JSON '%s': %s", res.out, jerr.text);
	aid = json_object_get(o, "aid");
	id = json_object_get(o, "id");
	CHECK(json_is_integer(aid) && json_integer_value(aid) > 0);
	CHECK(json_is_string(id) && strlen(json_string_value(id)) == 32);
	CHECK_EQ(json_array_size(json_object_get(o, "caps")), 1);
	json_decref(o);
}

static void test_usage(void)
{
	static const char *const bad[] = {
		"x=bogus",	"x=anon:0",  "x=anon:12Q",
		"x=anon:",	"=notifier", "x",
		"x=named:",	"x=name:",   "shmcap.x=notifier",
		"a b=notifier", "x=anon:2T",
	};
	char path[] = "/tmp/t-cli-run-XXXXXX";
	size_t i;
	int fd;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cli_rerun(&res, "run", "--cap", bad[i], "true", NULL);
		if (res.status != 2)
			FAIL("--cap %s: exit %d, expected 2 (%s)", bad[i],
			     res.status, res.err);
		CHECK(strstr(res.err, "usage") != NULL);
	}
	CLI_EXPECT(&res, 2, "run", "--cap", "x=notifier", "--cap", "x=notifier",
		   "true", NULL);
	CLI_EXPECT(&res, 2, "run", NULL);
	CLI_EXPECT(&res, 2, "run", "--bogus", "true", NULL);
	CLI_EXPECT(&res, 0, "run", "--help", NULL);
	CHECK(strstr(res.out, "usage: shmcap run") != NULL);

	CLI_EXPECT(&res, 3, "run", "--wait", "/nonexistent/prog", NULL);
	CLI_EXPECT(&res, 3, "run", "no-such-program-anywhere", NULL);

	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "#!/bin/sh\n", 10), 10);
	close(fd);
	chmod(path, 0644);
	cli_rerun(&res, "run", path, NULL);
	unlink(path);
	CLI_CHECK_STATUS(&res, 4);

	CLI_EXPECT(&res, 3, "run", "--cap", "x=named:t-cli-no-such-region",
		   "true", NULL);
	CLI_EXPECT(&res, 3, "run", "--cap", "x=name:t-cli-no-such-name", "true",
		   NULL);
}

static void test_caps(void)
{
	const char *peer = t_peer_path();
	char rname[64], pname[64], named[80], published[80];
	shmcap_cap *nreg, *preg, *note, *pub[2];
	shmcap_map *m;
	shmcap_name *nm;
	char *p;

	if (!peer) {
		printf("no test peer: capability checks skipped\n");
		return;
	}
	t_unique_name(rname, sizeof(rname), "clirun");
	CHECK_OK(shmcap_region_create_named(rname, 4096, 0600, &nreg));
	CHECK_OK(shmcap_region_map(nreg, 0, 0, NULL,
				   SHMCAP_MAP_WRITE | SHMCAP_MAP_UNSEALED, &m));
	p = shmcap_map_addr(m);
	strcpy(p, "hello");

	/* A published region (text "pub") and notifier (2 signals). */
	CHECK_OK(shmcap_region_create(4096, 0, &preg));
	{
		shmcap_map *pm;

		CHECK_OK(shmcap_region_map(preg, 0, 0, NULL, SHMCAP_MAP_WRITE,
					   &pm));
		strcpy(shmcap_map_addr(pm), "pub");
		shmcap_map_unmap(pm);
	}
	CHECK_OK(shmcap_notifier_create(&note));
	CHECK_OK(shmcap_notifier_signal(note));
	CHECK_OK(shmcap_notifier_signal(note));
	pub[0] = preg;
	pub[1] = note;
	snprintf(pname, sizeof(pname), "t-cli-run-%d", (int)getpid());
	CHECK_OK(shmcap_name_publish(pname, pub, 2, 0600, SHMCAP_NAME_THREAD,
				     &nm));

	snprintf(named, sizeof(named), "n=named:%s", rname);
	snprintf(published, sizeof(published), "p=name:%s", pname);
	CLI_EXPECT(&res, 0, "run", "--wait", "--cap", "a=anon:8K", "--cap",
		   published, peer, "env-caps", "3", "a", "1", "3", "", "p",
		   "1", "3", "pub", "p.1", "2", "12", "2", NULL);

	/*
	 * A named region cannot be mapped by the peer's checks (it is
	 * unsealed); a shell writes through its descriptor 3 instead.
	 */
	CLI_EXPECT(&res, 0, "run", "--wait", "--cap", named, "sh", "-c",
		   "printf child:hello | dd of=/dev/fd/3 bs=1 seek=1024 "
		   "conv=notrunc 2>/dev/null && test \"$SHMCAP_CAPS\" != ''",
		   NULL);
	CHECK(strcmp(p + 1024, "child:hello") == 0);

	CLI_EXPECT(&res, 0, "run", "--wait", "--cap", "x=notifier", peer,
		   "env-one", "x", "2", NULL);

	shmcap_name_unpublish(nm);
	shmcap_cap_close(note);
	shmcap_cap_close(preg);
	shmcap_map_unmap(m);
	shmcap_cap_close(nreg);
	CHECK_OK(shmcap_region_unlink(rname));
}

/* Without --wait the program runs on; the tool exits 0 at once. */
static void test_nowait(void)
{
	shmcap_cap *actor;
	int pid, st;

	/* Orphans come to this process, so that it can reap them. */
	CHECK_OK(prctl(PR_SET_CHILD_SUBREAPER, 1));
	/* Not holding the tool's output pipes open. */
	CLI_EXPECT(&res, 0, "run", "sh", "-c", "exec sleep 60 >/dev/null 2>&1",
		   NULL);
	CHECK(sscanf(res.out, "aid %d", &pid) == 1);
	CHECK_OK(shmcap_actor_open(pid, NULL, &actor));
	CHECK_EQ(shmcap_actor_alive(actor), 1);
	CHECK_OK(shmcap_actor_signal(actor, SIGKILL));
	st = t_wait_child(pid, 30);
	CHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	shmcap_cap_close(actor);
}

/* SIGTERM to `shmcap run --wait` goes on to the program. */
static void test_forward(void)
{
	char line[256] = "";
	ssize_t n = 0, k;
	int o[2], pid2 = 0;
	pid_t pid;
	int st;

	CHECK_OK(pipe2(o, O_CLOEXEC));
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(o[1], 1);
		execl(SHMCAP_TOOL, "shmcap", "run", "--wait", "sleep", "60",
		      (char *)NULL);
		_exit(126);
	}
	close(o[1]);
	/* The aid line says the program has started. */
	while (n < (ssize_t)sizeof(line) - 1 && !strchr(line, '\n')) {
		k = read(o[0], line + n, sizeof(line) - 1 - (size_t)n);
		if (k <= 0)
			break;
		n += k;
		line[n] = 0;
	}
	close(o[0]);
	CHECK(sscanf(line, "aid %d", &pid2) == 1);
	CHECK_OK(kill(pid, SIGTERM));
	st = t_wait_child(pid, 30);
	CHECK(st != -1 && WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 128 + SIGTERM);
}

int main(void)
{
	t_watchdog(100);
	test_status();
	test_json();
	test_usage();
	test_caps();
	test_forward();
	test_nowait();
	cli_test_done("clirun", &res);
	return 0;
}
