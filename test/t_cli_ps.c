/* Description: shmcap ps: lists actors, killed actor, usage, other uid */
/* SPDX-License-Identifier: MIT */
/*
 * A forked test actor (cli_util.h) maps an anonymous and a named region,
 * holds a channel and publishes a name. `shmcap ps` must list it with its
 * id, privilege, name and three regions, in the table and in --json; once
 * SIGKILLed it must be gone. Run as nobody, the tool cannot look into
 * root's processes: it must still succeed, leave the actor out and say
 * that some processes could not be inspected. The named region is removed
 * at exit whatever happens.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"
#include "cli_util.h"

static struct cli_actor actor;

static void cleanup(void)
{
	if (actor.pid > 0)
		cli_actor_kill(&actor);
	if (actor.region[0])
		shmcap_region_unlink(actor.region);
}

static void check_usage(void)
{
	struct cli_result r;

	cli_run(&r, "ps", "--help", NULL);
	CLI_CHECK_STATUS(&r, 0);
	CHECK(strstr(r.out, "usage: shmcap ps") != NULL);
	cli_result_free(&r);

	cli_run(&r, "ps", "--bogus", NULL);
	CLI_CHECK_STATUS(&r, 2);
	CHECK(strstr(r.err, "usage:") != NULL);
	CHECK_EQ(r.outlen, 0);
	cli_result_free(&r);

	cli_run(&r, "ps", "extra", NULL);
	CLI_CHECK_STATUS(&r, 2);
	cli_result_free(&r);
}

static void check_listed(void)
{
	struct cli_result r;
	json_t *arr, *o, *names;
	const char *id;
	char line[32];
	size_t i;

	cli_run(&r, "ps", "--json", NULL);
	CLI_CHECK_STATUS(&r, 0);
	arr = cli_json(&r);
	CHECK(json_is_array(arr));
	o = cli_json_find_int(arr, "aid", actor.pid);
	if (!o)
		cli_show("actor missing", &r);
	CHECK_NOTNULL(o);
	id = json_string_value(json_object_get(o, "id"));
	CHECK_NOTNULL(id);
	CHECK_EQ(strlen(id), 32);
	for (i = 0; i < 32; i++)
		CHECK(isxdigit((unsigned char)id[i]));
	CHECK_STR_EQ(json_string_value(json_object_get(o, "privilege")),
		     "user");
	CHECK_EQ(json_integer_value(json_object_get(o, "uid")), 0);
	CHECK_EQ(json_integer_value(json_object_get(o, "regions")), 3);
	CHECK(json_is_true(json_object_get(o, "links_lib")));
	CHECK(json_real_value(json_object_get(o, "uptime")) >= 0);
	CHECK(json_string_length(json_object_get(o, "command")) > 0);
	names = json_object_get(o, "names");
	CHECK_EQ(json_array_size(names), 1);
	CHECK_STR_EQ(json_string_value(json_array_get(names, 0)),
		     actor.pubname);
	/* The test itself maps the library: an actor too. */
	CHECK_NOTNULL(cli_json_find_int(arr, "aid", getpid()));
	json_decref(arr);
	cli_result_free(&r);

	cli_run(&r, "ps", NULL);
	CLI_CHECK_STATUS(&r, 0);
	CHECK(strncmp(r.out, "ID", 2) == 0);
	CHECK(strstr(r.out, "REGIONS") != NULL);
	snprintf(line, sizeof(line), " %d ", (int)actor.pid);
	CHECK(strstr(r.out, line) != NULL);
	CHECK(strstr(r.out, actor.pubname) != NULL);
	cli_result_free(&r);
}

static void check_other_uid(void)
{
	struct cli_result r;
	json_t *arr;

	cli_run_as(&r, CLI_NOBODY, "ps", "--json", NULL);
	CLI_CHECK_STATUS(&r, 0);
	arr = cli_json(&r);
	CHECK_NULL(cli_json_find_int(arr, "aid", actor.pid));
	json_decref(arr);
	cli_result_free(&r);

	cli_run_as(&r, CLI_NOBODY, "ps", NULL);
	CLI_CHECK_STATUS(&r, 0);
	CHECK(strstr(r.out, "could not be inspected") != NULL);
	CHECK(strstr(r.out, actor.pubname) == NULL);
	cli_result_free(&r);
}

static void check_killed(void)
{
	struct cli_result r;
	json_t *arr;
	pid_t pid = actor.pid;

	cli_actor_kill(&actor);
	cli_run(&r, "ps", "--json", NULL);
	CLI_CHECK_STATUS(&r, 0);
	arr = cli_json(&r);
	CHECK_NULL(cli_json_find_int(arr, "aid", pid));
	json_decref(arr);
	CHECK(strstr(r.out, actor.pubname) == NULL);
	cli_result_free(&r);
}

int main(void)
{
	t_watchdog(100);
	CHECK_EQ(atexit(cleanup), 0);
	check_usage();
	cli_actor_start(&actor, "ps", 0600);
	check_listed();
	check_other_uid();
	check_killed();
	CHECK_OK(shmcap_region_unlink(actor.region));
	actor.region[0] = '\0';
	printf("cli_ps: ok\n");
	return T_EXIT_PASS;
}
