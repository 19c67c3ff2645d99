/* SPDX-License-Identifier: MIT */
/*
 * shmcap dump (tools/shmcap/cmd_dump.c), driven through the tool.
 *
 * - Hex: a named region with known text shows hexdump -C lines (bytes and
 *   text column), a run of zero lines as "*", --offset/--length select
 *   the range, --json gives the bytes in hex.
 * - Datum: a frame written with the datum writer at offset 64 decodes
 *   with --datum and is recognised without it; --json has its text.
 * - Channel: an SPSC channel held by a forked child (named by its AID)
 *   decodes with --channel: kind, capacity, counters and the slots with
 *   the participants' pids; also auto-detected; AID:N picks a region.
 * - A published name: its first region is dumped (also as name:NAME);
 *   "named:NAME" forces a named region.
 * - A header whose geometry is corrupt is reported, never trusted.
 * - Errors: no such named region or actor 3, a range outside the region
 *   2, --channel on a region that holds none 1, --datum where no frame
 *   validates 1, an AID:N beyond the actor's regions 3, bad usage 2.
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

static void test_named(void)
{
	char name[64], named_as[80];
	shmcap_datum_writer *w;
	shmcap_cap *region;
	shmcap_map *m;
	json_t *o, *d;
	char *p;
	int len;

	t_unique_name(name, sizeof(name), "clidump");
	CHECK_OK(shmcap_region_create_named(name, 4096, 0600, &region));
	CHECK_OK(shmcap_region_map(region, 0, 0, NULL,
				   SHMCAP_MAP_WRITE | SHMCAP_MAP_UNSEALED, &m));
	p = shmcap_map_addr(m);
	strcpy(p, "Hello, dump");

	CLI_EXPECT(&res, 0, "dump", name, NULL);
	CHECK(strstr(res.out,
		     "00000000  48 65 6c 6c 6f 2c 20 64  75 6d 70 00") != NULL);
	CHECK(strstr(res.out, "|Hello, dump.....|") != NULL);
	CHECK(strstr(res.out, "\n*\n") != NULL);
	CHECK(strstr(res.out, "00000100\n") != NULL);
	CHECK(strstr(res.out, "datum") == NULL);

	CLI_EXPECT(&res, 0, "dump", name, "--offset", "7", "--length", "4",
		   NULL);
	CHECK(strstr(res.out, "00000007  64 75 6d 70") != NULL);
	CHECK(strstr(res.out, "|dump|") != NULL);

	CLI_EXPECT(&res, 0, "dump", name, "--length", "5", "--json", NULL);
	o = cli_json_one(res.out);
	CHECK_STR_EQ(json_string_value(json_object_get(o, "data")),
		     "48656c6c6f");
	CHECK_EQ(json_integer_value(json_object_get(o, "size")), 4096);
	json_decref(o);

	/* "named:" forces the named region. */
	snprintf(named_as, sizeof(named_as), "named:%s", name);
	CLI_EXPECT(&res, 0, "dump", named_as, "--length", "16", NULL);

	/* A datum frame at 64: (1 2 "hi" #(3 4)). */
	CHECK_OK(shmcap_datum_writer_new(p + 64, 256, &w));
	CHECK_OK(shmcap_datum_begin_list(w, 4));
	CHECK_OK(shmcap_datum_put_int(w, 1));
	CHECK_OK(shmcap_datum_put_int(w, 2));
	CHECK_OK(shmcap_datum_put_text(w, "hi", 2));
	CHECK_OK(shmcap_datum_begin_vector(w, 2));
	CHECK_OK(shmcap_datum_put_int(w, 3));
	CHECK_OK(shmcap_datum_put_int(w, 4));
	len = shmcap_datum_finish(w);
	CHECK(len > 4);
	shmcap_datum_writer_free(w);

	CLI_EXPECT(&res, 0, "dump", name, "--offset", "64", "--datum", NULL);
	CHECK(strstr(res.out, "(1 2 \"hi\" #(3 4))") != NULL);
	/* Recognised without --datum. */
	CLI_EXPECT(&res, 0, "dump", name, "--offset", "64", NULL);
	CHECK(strstr(res.out, "(1 2 \"hi\" #(3 4))") != NULL);
	CLI_EXPECT(&res, 0, "dump", name, "--offset", "64", "--datum", "--json",
		   NULL);
	o = cli_json_one(res.out);
	d = json_object_get(o, "datum");
	CHECK_NOTNULL(d);
	CHECK_STR_EQ(json_string_value(json_object_get(d, "text")),
		     "(1 2 \"hi\" #(3 4))");
	CHECK_EQ(json_integer_value(json_object_get(d, "size")), len);
	json_decref(o);

	/* Hostile length prefixes: beyond the region, truncated CBOR. */
	memcpy(p + 512, "\xff\xff\xff\x7f", 4);
	CLI_EXPECT(&res, 1, "dump", name, "--offset", "512", "--datum", NULL);
	memcpy(p + 512, "\x08\x00\x00\x00\x9f\x01", 6);
	CLI_EXPECT(&res, 1, "dump", name, "--offset", "512", "--datum", NULL);
	CLI_EXPECT(&res, 1, "dump", name, "--offset", "0", "--datum", NULL);
	CLI_EXPECT(&res, 1, "dump", name, "--channel", NULL);
	CHECK(strstr(res.err, "not a channel") != NULL);

	/* Ranges. */
	CLI_EXPECT(&res, 2, "dump", name, "--offset", "4096", NULL);
	CLI_EXPECT(&res, 2, "dump", name, "--offset", "4000", "--length", "200",
		   NULL);
	cli_rerun(&res, "dump", name, "--offset", "4000", NULL); /* clipped */
	CLI_CHECK_STATUS(&res, 0);
	CHECK(strstr(res.out, "00001000\n") != NULL);
	CLI_EXPECT(&res, 2, "dump", name, "--offset", "x", NULL);

	/* A corrupt channel header: reported as such. */
	CHECK_OK(shmcap_region_grow(region, 8192));
	{
		struct shmcap_channel_header h;

		memset(&h, 0, sizeof(h));
		h.magic = SHMCAP_CHANNEL_MAGIC;
		h.version = SHMCAP_CHANNEL_VERSION;
		h.kind = SHMCAP_CHANNEL_SPSC;
		h.ctrl_size = SHMCAP_CHANNEL_CTRL_SIZE;
		h.capacity = (uint64_t)1 << 40; /* beyond the region */
		h.max_msg = 64;
		h.nslots = 2;
		memcpy(p, &h, sizeof(h));
	}
	CLI_EXPECT(&res, 1, "dump", name, "--channel", NULL);
	CHECK(strstr(res.out, "corrupt") != NULL);
	CLI_EXPECT(&res, 1, "stat", name, "--once", NULL);

	shmcap_map_unmap(m);
	shmcap_cap_close(region);
	CHECK_OK(shmcap_region_unlink(name));

	CLI_EXPECT(&res, 3, "dump", name, NULL);
	CLI_EXPECT(&res, 2, "dump", NULL);
	CLI_EXPECT(&res, 2, "dump", "a", "b", NULL);
	CLI_EXPECT(&res, 0, "dump", "--help", NULL);
}

static void test_channel(void)
{
	char aid[16], aidn[24], buf[64], pidtext[32];
	shmcap_channel *cons, *prod;
	shmcap_cap *region;
	json_t *o, *c, *slots;
	int ready, found = 0;
	size_t i;
	pid_t pid;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, 256, 0,
				       &region));
	pid = cli_fork(&ready);
	if (pid == 0) {
		CHECK_OK(shmcap_channel_open(region, SHMCAP_CHANNEL_PRODUCER, 0,
					     &prod));
		CHECK_OK(shmcap_channel_send(prod, "abcdefgh", 8, 0));
		CHECK_OK(shmcap_channel_send(prod, "ijklmnop", 8, 0));
		cli_child_ready(ready);
		cli_child_idle();
	}
	CHECK_OK(
		shmcap_channel_open(region, SHMCAP_CHANNEL_CONSUMER, 0, &cons));
	CHECK_EQ(shmcap_channel_recv(cons, buf, sizeof(buf), 0), 8);
	snprintf(aid, sizeof(aid), "%d", (int)pid);
	snprintf(pidtext, sizeof(pidtext), " %d ", (int)pid);

	CLI_EXPECT(&res, 0, "dump", aid, "--channel", NULL);
	CHECK(strstr(res.out, "00000000  53 43 48 4e") != NULL);
	CHECK(strstr(res.out, "(spsc)") != NULL);
	CHECK(strstr(res.out, "capacity    4096") != NULL);
	CHECK(strstr(res.out, "sent        2") != NULL);
	CHECK(strstr(res.out, "taken       1") != NULL);
	CHECK(strstr(res.out, "producer") != NULL);
	CHECK(strstr(res.out, pidtext) != NULL);

	/* Auto-detected; :0 is the same region. */
	snprintf(aidn, sizeof(aidn), "%d:0", (int)pid);
	CLI_EXPECT(&res, 0, "dump", aidn, NULL);
	CHECK(strstr(res.out, "(spsc)") != NULL);
	snprintf(aidn, sizeof(aidn), "%d:5", (int)pid);
	CLI_EXPECT(&res, 3, "dump", aidn, NULL);

	CLI_EXPECT(&res, 0, "dump", aid, "--channel", "--json", NULL);
	o = cli_json_one(res.out);
	c = json_object_get(o, "channel");
	CHECK_NOTNULL(c);
	CHECK_STR_EQ(json_string_value(json_object_get(c, "kind")), "spsc");
	CHECK_EQ(json_integer_value(json_object_get(c, "sent")), 2);
	CHECK_EQ(json_integer_value(json_object_get(c, "taken")), 1);
	CHECK_EQ(json_integer_value(json_object_get(c, "depth_msgs")), 1);
	slots = json_object_get(c, "slots");
	for (i = 0; i < json_array_size(slots); i++) {
		json_t *s = json_array_get(slots, i);

		if (json_integer_value(json_object_get(s, "pid")) == pid &&
		    strcmp(json_string_value(json_object_get(s, "role")),
			   "producer") == 0)
			found = 1;
	}
	CHECK(found);
	json_decref(o);

	/* Another user may not read root's actor's regions. */
	CLI_EXPECT_AS(&res, 4, CLI_NOBODY, "dump", aid, NULL);

	cli_kill_reap(pid);
	CLI_EXPECT(&res, 3, "dump", aid, NULL);
	shmcap_channel_close(cons);
	shmcap_cap_close(region);
}

/*
 * A published name: its first region is dumped (name:NAME forces the
 * lookup); a name that holds no region 1; once withdrawn, 3.
 */
static void test_published(void)
{
	char name[64], forced[80];
	shmcap_cap *caps[2];
	shmcap_name *pub;
	shmcap_map *m;

	snprintf(name, sizeof(name), "t-clidump-pub-%d", (int)getpid());
	snprintf(forced, sizeof(forced), "name:%s", name);
	CHECK_OK(shmcap_notifier_create(&caps[0]));
	CHECK_OK(shmcap_region_create(4096, 0, &caps[1]));
	CHECK_OK(shmcap_region_map(caps[1], 0, 0, NULL, SHMCAP_MAP_WRITE, &m));
	strcpy(shmcap_map_addr(m), "Hello, published");
	shmcap_map_unmap(m);

	/* Only a notifier: no region to dump. */
	CHECK_OK(shmcap_name_publish(name, caps, 1, 0600, SHMCAP_NAME_THREAD,
				     &pub));
	CLI_EXPECT(&res, 1, "dump", name, NULL);
	CHECK(strstr(res.err, "no region") != NULL);
	shmcap_name_unpublish(pub);

	/* The notifier, then the region: the region is the one dumped. */
	CHECK_OK(shmcap_name_publish(name, caps, 2, 0600, SHMCAP_NAME_THREAD,
				     &pub));
	CLI_EXPECT(&res, 0, "dump", name, "--length", "16", NULL);
	CHECK(strstr(res.out, "|Hello, published|") != NULL);
	CLI_EXPECT(&res, 0, "dump", forced, "--length", "16", NULL);
	CHECK(strstr(res.out, "|Hello, published|") != NULL);
	shmcap_name_unpublish(pub);

	CLI_EXPECT(&res, 3, "dump", forced, NULL);
	CLI_EXPECT(&res, 3, "dump", name, NULL);
	shmcap_cap_close(caps[1]);
	shmcap_cap_close(caps[0]);
}

int main(void)
{
	t_watchdog(100);
	if (geteuid() != 0)
		SKIP("needs root for the other-user case");
	test_named();
	test_channel();
	test_published();
	cli_test_done("clidump", &res);
	return 0;
}
