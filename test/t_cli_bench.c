/* SPDX-License-Identifier: MIT */
/*
 * Description: `shmcap bench`: runs the benchmark programs of the build
 * tree the tool belongs to (--quick, shmcap's rows only, so that it
 * takes a few seconds), prints their tables, and fails clearly without
 * them or with bad usage. Timing decides nothing: only that every program
 * ran and printed its rows.
 */
#define _GNU_SOURCE
#include "cli_util.h"

static void test_quick(void)
{
	static const char *const rows[] = {
		"sem_pingpong",	 "notifier_pingpong", "spawn_first_msg",
		"chan_pingpong", "chan_tput",	      "chan_fanout4"
	};
	struct cli_result r;
	size_t i;

	if (cli_run(&r, "bench", "--quick", "--", "--impl", "shmcap", NULL) !=
	    0) {
		cli_show("bench --quick", &r);
		FAIL("bench --quick failed");
	}
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (!strstr(r.out, rows[i])) {
			cli_show("bench --quick", &r);
			FAIL("no %s row", rows[i]);
		}
	}
	cli_result_free(&r);
}

static void test_errors(void)
{
	struct cli_result r;

	CHECK_EQ(cli_run(&r, "bench", "--build", "/nonexistent", NULL), 3);
	CHECK(strstr(r.err, "no benchmark programs") != NULL);
	cli_result_free(&r);
	CHECK_EQ(cli_run(&r, "bench", "stray", NULL), 2);
	cli_result_free(&r);
	CHECK_EQ(cli_run(&r, "bench", "--no-such-option", NULL), 2);
	cli_result_free(&r);
	CHECK_EQ(cli_run(&r, "bench", "--help", NULL), 0);
	CHECK(strstr(r.out, "usage") != NULL);
	cli_result_free(&r);
}

int main(void)
{
	t_watchdog(110);
	test_errors();
	test_quick();
	return T_EXIT_PASS;
}
