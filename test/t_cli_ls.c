/* Description: shmcap ls: regions, users, content (channel, datum, semaphore, mutex, cond), killed actor, other uid */
/* SPDX-License-Identifier: MIT */
/*
 * A forked test actor (cli_util.h) maps an anonymous region holding a
 * datum frame and a named region, and holds a channel's region. `shmcap
 * ls` must show all three with the actor as a user (writable), the
 * content of the datum and channel regions, sizes and resident memory.
 * Run as nobody it must succeed without showing root's processes as users
 * and say how many processes it could not inspect. Once the actor is
 * SIGKILLed, its anonymous regions vanish and the named one shows as
 * unused. The named region is removed at exit whatever happens.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* Whether region object o lists pid among its users (writable: w). */
static int has_user(json_t *o, pid_t pid, int *w)
{
	json_t *users = json_object_get(o, "users"), *u;
	size_t i;
	int found = 0;

	*w = 0;
	json_array_foreach(users, i, u)
	{
		if (json_integer_value(json_object_get(u, "pid")) != pid)
			continue;
		found = 1;
		*w |= json_is_true(json_object_get(u, "writable"));
	}
	return found;
}

/* The region whose content is content and that pid uses, or NULL. */
static json_t *find_used(json_t *arr, const char *content, pid_t pid)
{
	size_t i;
	json_t *o;
	int w;

	json_array_foreach(arr, i, o)
	{
		json_t *c = json_object_get(o, "content");

		if (json_is_string(c) &&
		    strcmp(json_string_value(c), content) == 0 &&
		    has_user(o, pid, &w))
			return o;
	}
	return NULL;
}

static void check_usage(void)
{
	struct cli_result r;

	cli_run(&r, "ls", "--help", NULL);
	CLI_CHECK_STATUS(&r, 0);
	CHECK(strstr(r.out, "usage: shmcap ls") != NULL);
	cli_result_free(&r);

	cli_run(&r, "ls", "-x", NULL);
	CLI_CHECK_STATUS(&r, 2);
	CHECK(strstr(r.err, "usage:") != NULL);
	cli_result_free(&r);

	cli_run(&r, "ls", "extra", NULL);
	CLI_CHECK_STATUS(&r, 2);
	cli_result_free(&r);
}

static json_int_t datum_ino;

static void check_listed(void)
{
	struct cli_result r;
	json_t *arr, *o;
	char needle[96];
	int w;

	cli_run(&r, "ls", "--json", NULL);
	CLI_CHECK_STATUS(&r, 0);
	arr = cli_json(&r);
	CHECK(json_is_array(arr));

	o = cli_json_find_str(arr, "name", actor.region);
	if (!o)
		cli_show("named region missing", &r);
	CHECK_NOTNULL(o);
	CHECK(json_is_true(json_object_get(o, "named")));
	CHECK(json_is_false(json_object_get(o, "unused")));
	CHECK_EQ(json_integer_value(json_object_get(o, "size")), 4096);
	CHECK_EQ(json_integer_value(json_object_get(o, "owner")), 0);
	CHECK(has_user(o, actor.pid, &w));
	CHECK(w);

	o = find_used(arr, "datum", actor.pid);
	if (!o)
		cli_show("datum region missing", &r);
	CHECK_NOTNULL(o);
	CHECK(json_is_null(json_object_get(o, "name")));
	CHECK_EQ(json_integer_value(json_object_get(o, "size")), 8192);
	/* The frame was written: at least its page is in memory. */
	CHECK(json_integer_value(json_object_get(o, "resident")) >= 4096);
	CHECK(has_user(o, actor.pid, &w));
	CHECK(w);
	datum_ino = json_integer_value(json_object_get(o, "ino"));

	o = find_used(arr, "channel-spsc", actor.pid);
	if (!o)
		cli_show("channel region missing", &r);
	CHECK_NOTNULL(o);
	CHECK(json_integer_value(json_object_get(o, "size")) >= 4096 + 4096);
	json_decref(arr);
	cli_result_free(&r);

	cli_run(&r, "ls", NULL);
	CLI_CHECK_STATUS(&r, 0);
	CHECK(strncmp(r.out, "NAME", 4) == 0);
	CHECK(strstr(r.out, actor.region) != NULL);
	CHECK(strstr(r.out, "(anon)") != NULL);
	CHECK(strstr(r.out, "datum") != NULL);
	CHECK(strstr(r.out, "channel-spsc") != NULL);
	snprintf(needle, sizeof(needle), "%d(rw)", (int)actor.pid);
	CHECK(strstr(r.out, needle) != NULL);
	cli_result_free(&r);
}

static void check_other_uid(void)
{
	struct cli_result r;
	json_t *arr, *o;
	size_t i;
	char needle[32];
	int w;

	cli_run_as(&r, CLI_NOBODY, "ls", "--json", NULL);
	CLI_CHECK_STATUS(&r, 0);
	arr = cli_json(&r);
	json_array_foreach(arr, i, o)
	{
		CHECK(!has_user(o, actor.pid, &w));
	}
	/* The name is visible in /dev/shm, its users are not: it may be
	 * in use by processes nobody cannot see, so not called unused. */
	o = cli_json_find_str(arr, "name", actor.region);
	CHECK_NOTNULL(o);
	CHECK(json_is_null(json_object_get(o, "unused")));
	json_decref(arr);
	cli_result_free(&r);

	cli_run_as(&r, CLI_NOBODY, "ls", NULL);
	CLI_CHECK_STATUS(&r, 0);
	CHECK(strstr(r.out, "could not be inspected") != NULL);
	snprintf(needle, sizeof(needle), "%d(", (int)actor.pid);
	CHECK(strstr(r.out, needle) == NULL);
	cli_result_free(&r);
}

static void check_killed(void)
{
	struct cli_result r;
	json_t *arr, *o;
	char *line;
	pid_t pid = actor.pid;
	int w;

	cli_actor_kill(&actor);
	cli_run(&r, "ls", "--json", NULL);
	CLI_CHECK_STATUS(&r, 0);
	arr = cli_json(&r);
	o = cli_json_find_str(arr, "name", actor.region);
	CHECK_NOTNULL(o);
	CHECK(json_is_true(json_object_get(o, "unused")));
	CHECK_EQ(json_array_size(json_object_get(o, "users")), 0);
	CHECK(json_real_value(json_object_get(o, "age")) >= 0);
	CHECK_NULL(cli_json_find_int(arr, "ino", datum_ino));
	CHECK_NULL(find_used(arr, "channel-spsc", pid));
	(void)w;
	json_decref(arr);
	cli_result_free(&r);

	cli_run(&r, "ls", NULL);
	CLI_CHECK_STATUS(&r, 0);
	line = strstr(r.out, actor.region);
	CHECK_NOTNULL(line);
	*strchrnul(line, '\n') = '\0';
	CHECK(strstr(line, "(unused)") != NULL);
	cli_result_free(&r);
}

/*
 * Processes that come and go during the scan (each maps a region and is
 * SIGKILLed or exits at once) must never make ls fail or print broken
 * JSON: a process that vanishes half way through is simply left out.
 */
static void check_churn(void)
{
	struct cli_result r;
	int stop[2], i;
	pid_t churn;

	CHECK(pipe(stop) == 0);
	churn = t_fork_child(60);
	if (churn == 0) {
		struct pollfd pf = { .fd = stop[0], .events = POLLIN };

		close(stop[1]);
		/* Until the parent closes its end: every child is reaped. */
		while (poll(&pf, 1, 0) == 0) {
			pid_t c = fork();

			if (c == 0) {
				shmcap_cap *cap;
				shmcap_map *m;

				if (shmcap_region_create(4096, 0, &cap) == 0 &&
				    shmcap_region_map(cap, 0, 0, NULL,
						      SHMCAP_MAP_WRITE,
						      &m) == 0)
					usleep(1000);
				_exit(0);
			}
			if (c > 0) {
				if (c % 2)
					kill(c, SIGKILL);
				waitpid(c, NULL, 0);
			}
		}
		t_child_pass();
	}
	close(stop[0]);
	for (i = 0; i < 10; i++) {
		json_t *arr;

		cli_run(&r, "ls", "--json", NULL);
		CLI_CHECK_STATUS(&r, 0);
		arr = cli_json(&r);
		CHECK(json_is_array(arr));
		json_decref(arr);
		cli_result_free(&r);
		cli_run(&r, "ps", NULL);
		CLI_CHECK_STATUS(&r, 0);
		cli_result_free(&r);
	}
	close(stop[1]);
	t_reap_ok(churn, 30);
}

/*
 * Odd files in /dev/shm under the shmcap prefix: a directory, a symlink,
 * a name with a terminal escape and an empty file nobody made with
 * shmcap. ls must not fail, must show none of the first three and must
 * not print the escape; the empty file is a named region of size 0.
 */
static char odd[4][96];

static void odd_cleanup(void)
{
	rmdir(odd[0]);
	unlink(odd[1]);
	unlink(odd[2]);
	unlink(odd[3]);
}

static void check_odd_files(void)
{
	struct cli_result r;
	json_t *arr, *o;
	int fd;

	snprintf(odd[0], sizeof(odd[0]), "/dev/shm/shmcap.t-cli-ls-dir-%d",
		 (int)getpid());
	snprintf(odd[1], sizeof(odd[1]), "/dev/shm/shmcap.t-cli-ls-lnk-%d",
		 (int)getpid());
	snprintf(odd[2], sizeof(odd[2]), "/dev/shm/shmcap.t-cli-ls-\033[2J-%d",
		 (int)getpid());
	snprintf(odd[3], sizeof(odd[3]), "/dev/shm/shmcap.t-cli-ls-empty-%d",
		 (int)getpid());
	CHECK_EQ(atexit(odd_cleanup), 0);
	CHECK(mkdir(odd[0], 0700) == 0);
	CHECK(symlink("/etc/passwd", odd[1]) == 0);
	fd = open(odd[2], O_CREAT | O_EXCL | O_WRONLY, 0600);
	CHECK(fd >= 0);
	close(fd);
	fd = open(odd[3], O_CREAT | O_EXCL | O_WRONLY, 0600);
	CHECK(fd >= 0);
	close(fd);

	cli_run(&r, "ls", "--json", NULL);
	CLI_CHECK_STATUS(&r, 0);
	arr = cli_json(&r);
	CHECK_NULL(cli_json_find_str(arr, "name", odd[0] + 16));
	CHECK_NULL(cli_json_find_str(arr, "name", odd[1] + 16));
	CHECK_NULL(cli_json_find_str(arr, "name", odd[2] + 16));
	o = cli_json_find_str(arr, "name", odd[3] + 16);
	CHECK_NOTNULL(o);
	CHECK_EQ(json_integer_value(json_object_get(o, "size")), 0);
	CHECK(json_is_null(json_object_get(o, "content")));
	json_decref(arr);
	cli_result_free(&r);

	cli_run(&r, "ls", NULL);
	CLI_CHECK_STATUS(&r, 0);
	CHECK(strchr(r.out, '\033') == NULL);
	cli_result_free(&r);
	odd_cleanup();
}

/* Synchronisation objects at the start of named regions, found by magic. */
static void check_sync_content(void)
{
	static const char *const kinds[] = { "semaphore", "mutex", "cond" };
	char names[3][64];
	shmcap_cap *cap[3];
	shmcap_map *m[3];
	struct cli_result r;
	json_t *arr, *o;
	void *p;
	int i;

	for (i = 0; i < 3; i++) {
		snprintf(names[i], sizeof(names[i]), "t-cli-ls-%s-%d", kinds[i],
			 (int)getpid());
		CHECK_OK(shmcap_region_create_named(names[i], 4096, 0600,
						    &cap[i]));
		CHECK_OK(shmcap_region_map(
			cap[i], 0, 0, NULL,
			SHMCAP_MAP_WRITE | SHMCAP_MAP_UNSEALED, &m[i]));
		p = shmcap_map_addr(m[i]);
		if (i == 0)
			CHECK_OK(shmcap_sem_init(p, 3));
		else if (i == 1)
			CHECK_OK(shmcap_mutex_init(p));
		else
			CHECK_OK(shmcap_cond_init(p));
	}
	cli_run(&r, "ls", "--json", NULL);
	CLI_CHECK_STATUS(&r, 0);
	arr = cli_json(&r);
	for (i = 0; i < 3; i++) {
		o = cli_json_find_str(arr, "name", names[i]);
		if (!o)
			cli_show("sync region missing", &r);
		CHECK_NOTNULL(o);
		CHECK(json_is_string(json_object_get(o, "content")));
		CHECK(strcmp(json_string_value(json_object_get(o, "content")),
			     kinds[i]) == 0);
	}
	json_decref(arr);
	cli_result_free(&r);
	for (i = 0; i < 3; i++) {
		shmcap_map_unmap(m[i]);
		shmcap_cap_close(cap[i]);
		CHECK_OK(shmcap_region_unlink(names[i]));
	}
}

int main(void)
{
	t_watchdog(100);
	CHECK_EQ(atexit(cleanup), 0);
	check_usage();
	cli_actor_start(&actor, "ls", 0644);
	check_listed();
	check_other_uid();
	check_killed();
	check_churn();
	check_odd_files();
	check_sync_content();
	CHECK_OK(shmcap_region_unlink(actor.region));
	actor.region[0] = '\0';
	printf("cli_ls: ok\n");
	return T_EXIT_PASS;
}
