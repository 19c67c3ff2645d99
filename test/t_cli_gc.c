/* Description: shmcap gc: unused named regions, dry run, in use, other uid */
/* SPDX-License-Identifier: MIT */
/*
 * Three named regions, all with names of this test (gc is always given
 * names here, so it never touches another test's regions running in
 * parallel; only --dry-run, which removes nothing, runs on the whole host):
 *
 *   actor.region  created and mapped by a forked actor, then SIGKILLed:
 *                 unused, gc must remove it (not with --dry-run);
 *   keep          created and kept mapped by this test: in use, gc must
 *                 refuse to remove it (exit 1);
 *   rootonly      created by this test (root, 0644) and closed: unused,
 *                 but gc run as nobody may not remove it (exit 4).
 *
 * Everything is removed at exit whatever happens.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"
#include "cli_util.h"

static struct cli_actor actor;
static char keep[64], rootonly[64];

static void cleanup(void)
{
	if (actor.pid > 0)
		cli_actor_kill(&actor);
	if (actor.region[0])
		shmcap_region_unlink(actor.region);
	if (keep[0])
		shmcap_region_unlink(keep);
	if (rootonly[0])
		shmcap_region_unlink(rootonly);
}

static int exists(const char *name)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm/shmcap.%s", name);
	return stat(path, &st) == 0;
}

static void check_usage(void)
{
	struct cli_result r;

	cli_run(&r, "gc", "--help", NULL);
	CLI_CHECK_STATUS(&r, 0);
	CHECK(strstr(r.out, "usage: shmcap gc") != NULL);
	cli_result_free(&r);

	cli_run(&r, "gc", "--bogus", NULL);
	CLI_CHECK_STATUS(&r, 2);
	CHECK(strstr(r.err, "usage:") != NULL);
	cli_result_free(&r);

	cli_run(&r, "gc", "a/b", NULL);
	CLI_CHECK_STATUS(&r, 2);
	cli_result_free(&r);

	/* A name that does not exist: not found. */
	cli_run(&r, "gc", "t-cli-gc-no-such-region", NULL);
	CLI_CHECK_STATUS(&r, 3);
	CHECK(strstr(r.err, "no such region") != NULL);
	cli_result_free(&r);
}

static void check_dry_run(void)
{
	struct cli_result r;
	char needle[96];
	json_t *arr, *o;

	cli_run(&r, "gc", "--dry-run", actor.region, NULL);
	CLI_CHECK_STATUS(&r, 0);
	snprintf(needle, sizeof(needle), "would remove %s ", actor.region);
	CHECK(strstr(r.out, needle) != NULL);
	CHECK(exists(actor.region));
	cli_result_free(&r);

	/* Host-wide, but removing nothing: ours is listed, keep is not. */
	cli_run(&r, "gc", "-n", "--json", NULL);
	CLI_CHECK_STATUS(&r, 0);
	arr = cli_json(&r);
	o = cli_json_find_str(arr, "name", actor.region);
	CHECK_NOTNULL(o);
	CHECK(json_is_false(json_object_get(o, "removed")));
	CHECK_NULL(cli_json_find_str(arr, "name", keep));
	json_decref(arr);
	CHECK(exists(actor.region));
	CHECK(exists(rootonly));
	cli_result_free(&r);
}

static void check_other_uid(void)
{
	struct cli_result r;

	/* Unnamed, root's leftovers are not nobody's business. */
	cli_run_as(&r, CLI_NOBODY, "gc", "--dry-run", NULL);
	CLI_CHECK_STATUS(&r, 0);
	CHECK(strstr(r.out, rootonly) == NULL);
	cli_result_free(&r);

	cli_run_as(&r, CLI_NOBODY, "gc", "--dry-run", rootonly, NULL);
	CLI_CHECK_STATUS(&r, 4);
	CHECK(exists(rootonly));
	cli_result_free(&r);

	cli_run_as(&r, CLI_NOBODY, "gc", rootonly, NULL);
	CLI_CHECK_STATUS(&r, 4);
	CHECK(strstr(r.err, rootonly) != NULL);
	CHECK(exists(rootonly));
	cli_result_free(&r);
}

static void check_remove(void)
{
	struct cli_result r;
	char needle[96];
	json_t *arr, *o;

	/* keep is mapped by this live process: refused, the other goes. */
	cli_run(&r, "gc", actor.region, keep, NULL);
	CLI_CHECK_STATUS(&r, 1);
	snprintf(needle, sizeof(needle), "removed %s\n", actor.region);
	CHECK(strstr(r.out, needle) != NULL);
	CHECK(strstr(r.err, "in use") != NULL);
	CHECK(!exists(actor.region));
	CHECK(exists(keep));
	actor.region[0] = '\0';
	cli_result_free(&r);

	cli_run(&r, "gc", keep, NULL);
	CLI_CHECK_STATUS(&r, 1);
	CHECK(exists(keep));
	cli_result_free(&r);

	/* "shmcap.NAME" is accepted for NAME; --json reports the removal. */
	snprintf(needle, sizeof(needle), "shmcap.%s", rootonly);
	cli_run(&r, "gc", "--json", needle, NULL);
	CLI_CHECK_STATUS(&r, 0);
	arr = cli_json(&r);
	CHECK_EQ(json_array_size(arr), 1);
	o = cli_json_find_str(arr, "name", rootonly);
	CHECK_NOTNULL(o);
	CHECK(json_is_true(json_object_get(o, "removed")));
	CHECK(json_is_null(json_object_get(o, "error")));
	json_decref(arr);
	CHECK(!exists(rootonly));
	rootonly[0] = '\0';
	cli_result_free(&r);
}

int main(void)
{
	shmcap_cap *kc, *rc;
	shmcap_map *km;

	t_watchdog(100);
	CHECK_EQ(atexit(cleanup), 0);
	check_usage();

	snprintf(keep, sizeof(keep), "t-cli-gc-keep-%ld", (long)getpid());
	CHECK_OK(shmcap_region_create_named(keep, 4096, 0600, &kc));
	CHECK_OK(shmcap_region_map(
		kc, 0, 0, NULL, SHMCAP_MAP_WRITE | SHMCAP_MAP_UNSEALED, &km));
	shmcap_cap_close(kc); /* the mapping alone keeps it in use */
	snprintf(rootonly, sizeof(rootonly), "t-cli-gc-root-%ld",
		 (long)getpid());
	CHECK_OK(shmcap_region_create_named(rootonly, 4096, 0644, &rc));
	shmcap_cap_close(rc);

	cli_actor_start(&actor, "gc", 0600);
	cli_actor_kill(&actor);

	check_dry_run();
	check_other_uid();
	check_remove();

	shmcap_map_unmap(km);
	CHECK_OK(shmcap_region_unlink(keep));
	keep[0] = '\0';
	printf("cli_gc: ok\n");
	return T_EXIT_PASS;
}
