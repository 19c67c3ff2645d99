/* SPDX-License-Identifier: MIT */
/*
 * shmcap stat (tools/shmcap/cmd_stat.c), driven through the tool.
 *
 * Channels are anonymous regions, so the channel is named by the AID of
 * a forked child that holds it (as a descriptor and a mapping):
 *
 * - SPSC: the child produces N messages, this process consumes K; `stat
 *   AID --once --json` shows sent N, taken K, depth N - K messages and
 *   (N - K) * record bytes, one producer, one consumer; the human form
 *   has a header and a row.
 * - MPSC: the consumer's `taken` counts, producers are counted per slot.
 * - Lossy broadcast: a subscriber that reads nothing while 1000 messages
 *   go by shows lost bytes; depth stays within the ring.
 * - Refreshing: `stat AID --interval 0.1 --json` prints one line per
 *   refresh while the child keeps sending, with rates after the first;
 *   the holder is SIGKILLed meanwhile and stat goes on; SIGINT stops it
 *   with exit 0.
 * - A published name: the channel among the regions a child publishes
 *   shows its counters; the name wins over a named region of the same
 *   name (named:NAME picks the region, name:NAME forces the name); a
 *   name holding no channel 1, an unknown name 3, another user 4.
 * - A killed holder: exit 3. A named region that holds no channel, a
 *   child that holds only a plain region: exit 1. No such name: 3.
 *   Another user (uid 65534) looking at root's actor: 4. Bad usage: 2.
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

#define N_SENT 10
#define N_TAKEN 3
#define MSG_LEN 16
#define REC_BYTES (8 + MSG_LEN) /* header and payload, 8-aligned */

/*
 * A child that opens the channel in region as producer, sends n messages
 * (forever, one per millisecond, if n < 0), says so on a pipe and waits
 * to be killed.
 */
static pid_t producer_child(shmcap_cap *region, int n)
{
	char msg[MSG_LEN] = "message";
	shmcap_channel *ch;
	int ready, i;
	pid_t pid;

	pid = cli_fork(&ready);
	if (pid == 0) {
		CHECK_OK(shmcap_channel_open(region, SHMCAP_CHANNEL_PRODUCER, 0,
					     &ch));
		for (i = 0; i < (n < 0 ? 1 : n); i++)
			CHECK_OK(shmcap_channel_send(ch, msg, sizeof(msg),
						     SHMCAP_FOREVER));
		cli_child_ready(ready);
		if (n >= 0)
			cli_child_idle();
		/* Keep sending while the consumer takes. */
		for (;;) {
			shmcap_channel_send(ch, msg, sizeof(msg), 1000000);
			usleep(1000);
		}
	}
	return pid;
}

/*
 * A channel of kind in *region (4096 bytes), a child producing n
 * messages into it (see producer_child()), and this process's consumer
 * *cons, which has taken `taken` of them. The child's pid as text in aid.
 */
static pid_t channel_setup(unsigned int kind, int n, int taken,
			   shmcap_cap **region, shmcap_channel **cons,
			   char aid[16])
{
	char buf[64];
	pid_t pid;
	int i;

	CHECK_OK(shmcap_channel_create(kind, 4096, 256, 0, region));
	pid = producer_child(*region, n);
	CHECK_OK(
		shmcap_channel_open(*region, SHMCAP_CHANNEL_CONSUMER, 0, cons));
	for (i = 0; i < taken; i++)
		CHECK_EQ(shmcap_channel_recv(*cons, buf, sizeof(buf), 0),
			 MSG_LEN);
	snprintf(aid, 16, "%d", (int)pid);
	return pid;
}

/*
 * The --json output of `stat --once` in res: an array of exactly one
 * channel, of kind; that channel (*arr: the array, to free).
 */
static json_t *one_channel(json_t **arr, const char *kind)
{
	json_t *o;

	*arr = cli_json_one(res.out);
	CHECK(json_is_array(*arr));
	CHECK_EQ(json_array_size(*arr), 1);
	o = json_array_get(*arr, 0);
	CHECK_STR_EQ(json_string_value(json_object_get(o, "kind")), kind);
	return o;
}

static void test_spsc(void)
{
	shmcap_cap *region;
	shmcap_channel *cons;
	json_t *arr, *o;
	char aid[16];
	pid_t pid;

	pid = channel_setup(SHMCAP_CHANNEL_SPSC, N_SENT, N_TAKEN, &region,
			    &cons, aid);

	CLI_EXPECT(&res, 0, "stat", aid, "--once", "--json", NULL);
	o = one_channel(&arr, "spsc");
	CHECK_EQ(cli_json_int(o, "sent"), N_SENT);
	CHECK_EQ(cli_json_int(o, "taken"), N_TAKEN);
	CHECK_EQ(cli_json_int(o, "depth_msgs"), N_SENT - N_TAKEN);
	CHECK_EQ(cli_json_int(o, "depth_bytes"),
		 (N_SENT - N_TAKEN) * REC_BYTES);
	CHECK_EQ(cli_json_int(o, "producers"), 1);
	CHECK_EQ(cli_json_int(o, "consumers"), 1);
	CHECK_EQ(cli_json_int(o, "capacity"), 4096);
	CHECK(json_is_null(json_object_get(o, "msgs_per_s")));
	CHECK(json_is_null(json_object_get(o, "lost_bytes")));
	json_decref(arr);

	/* The human form: a header and one row. */
	CLI_EXPECT(&res, 0, "stat", aid, "--once", NULL);
	CHECK(strstr(res.out, "DEPTH") != NULL);
	CHECK(strstr(res.out, "spsc") != NULL);

	/* By id too. */
	{
		char hex[SHMCAP_ACTOR_ID_TEXT];
		shmcap_actor_id id;
		shmcap_cap *a;

		CHECK_OK(shmcap_actor_open(pid, NULL, &a));
		CHECK_OK(shmcap_actor_id_of(a, &id));
		shmcap_actor_id_format(&id, hex, sizeof(hex));
		shmcap_cap_close(a);
		CLI_EXPECT(&res, 0, "stat", hex, "--once", "--json", NULL);
	}

	/* Another user may not look into root's actor. */
	CLI_EXPECT_AS(&res, 4, CLI_NOBODY, "stat", aid, "--once", NULL);

	/* Killed: not found. */
	cli_kill_reap(pid);
	CLI_EXPECT(&res, 3, "stat", aid, "--once", NULL);

	shmcap_channel_close(cons);
	shmcap_cap_close(region);
}

static void test_mpsc(void)
{
	shmcap_cap *region;
	shmcap_channel *cons;
	json_t *arr, *o;
	char aid[16];
	pid_t pid;

	pid = channel_setup(SHMCAP_CHANNEL_MPSC, 4, 2, &region, &cons, aid);
	CLI_EXPECT(&res, 0, "stat", aid, "--once", "--json", NULL);
	o = one_channel(&arr, "mpsc");
	CHECK_EQ(cli_json_int(o, "taken"), 2);
	CHECK_EQ(cli_json_int(o, "producers"), 1);
	CHECK_EQ(cli_json_int(o, "consumers"), 1);
	CHECK(json_is_null(json_object_get(o, "depth_msgs")));
	json_decref(arr);
	cli_kill_reap(pid);
	shmcap_channel_close(cons);
	shmcap_cap_close(region);
}

/*
 * A lossy broadcast channel: a subscriber that reads nothing while the
 * child sends far more than the ring holds has lost bytes.
 */
static void test_broadcast(void)
{
	char aid[16], msg[16] = "broadcast";
	shmcap_channel *sub, *prod;
	shmcap_cap *region;
	json_t *arr, *o;
	int ready, i;
	pid_t pid;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_BROADCAST, 4096, 64,
				       SHMCAP_CHANNEL_LOSSY, &region));
	CHECK_OK(shmcap_channel_open(region, SHMCAP_CHANNEL_CONSUMER, 0, &sub));
	pid = cli_fork(&ready);
	if (pid == 0) {
		CHECK_OK(shmcap_channel_open(region, SHMCAP_CHANNEL_PRODUCER, 0,
					     &prod));
		for (i = 0; i < 1000; i++)
			CHECK_OK(
				shmcap_channel_send(prod, msg, sizeof(msg), 0));
		cli_child_ready(ready);
		cli_child_idle();
	}
	snprintf(aid, sizeof(aid), "%d", (int)pid);
	CLI_EXPECT(&res, 0, "stat", aid, "--once", "--json", NULL);
	o = one_channel(&arr, "broadcast");
	CHECK(json_is_true(json_object_get(o, "lossy")));
	CHECK_EQ(cli_json_int(o, "sent"), 1000);
	CHECK_EQ(cli_json_int(o, "producers"), 1);
	CHECK_EQ(cli_json_int(o, "consumers"), 1);
	CHECK(cli_json_int(o, "lost_bytes") > 0);
	/* Not counted yet: the subscriber has not looked. */
	CHECK_EQ(cli_json_int(o, "lost"), 0);
	CHECK(cli_json_int(o, "depth_bytes") <= 4096);
	json_decref(arr);
	cli_kill_reap(pid);
	shmcap_channel_close(sub);
	shmcap_cap_close(region);
}

/*
 * Append what the non-blocking fd has to out (*len bytes so far, size
 * in all, kept NUL-terminated); how many lines out holds now.
 */
static int read_lines(int fd, char *out, size_t size, size_t *len)
{
	ssize_t n = read(fd, out + *len, size - 1 - *len);
	const char *line;
	int lines = 0;

	if (n > 0)
		*len += (size_t)n;
	out[*len] = 0;
	for (line = out; (line = strchr(line, '\n')); line++)
		lines++;
	return lines;
}

/* Refreshing with --interval until SIGINT. */
static void test_refresh(void)
{
	char aid[16], buf[64], out[65536];
	shmcap_cap *region;
	shmcap_channel *cons;
	size_t len = 0;
	int o[2], lines = 0, rated = 0, st;
	int64_t end;
	pid_t pid, tpid;
	char *line, *save;

	pid = channel_setup(SHMCAP_CHANNEL_SPSC, -1, 0, &region, &cons, aid);

	CHECK_OK(pipe2(o, O_CLOEXEC));
	fflush(NULL);
	tpid = fork();
	CHECK(tpid >= 0);
	if (tpid == 0) {
		dup2(o[1], 1);
		execl(SHMCAP_TOOL, "shmcap", "stat", aid, "--interval", "0.1",
		      "--json", (char *)NULL);
		_exit(126);
	}
	close(o[1]);
	/* Consume for a while, reading the tool's lines as they come. */
	fcntl(o[0], F_SETFL, O_NONBLOCK);
	end = 0;
	for (;;) {
		struct timespec ts;

		while (shmcap_channel_recv(cons, buf, sizeof(buf), 0) > 0)
			;
		lines = read_lines(o[0], out, sizeof(out), &len);
		if (lines >= 4)
			break;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (!end)
			end = ts.tv_sec + 30;
		if (ts.tv_sec > end)
			FAIL("stat printed %d lines in 30 s", lines);
		usleep(10000);
	}
	/*
	 * SIGKILL the holder while stat refreshes: it goes on (its own
	 * descriptor keeps the region) until interrupted.
	 */
	cli_kill_reap(pid);
	pid = -1;
	{
		int before = lines;

		while (lines < before + 2) {
			struct timespec ts;

			lines = read_lines(o[0], out, sizeof(out), &len);
			clock_gettime(CLOCK_MONOTONIC, &ts);
			if (ts.tv_sec > end)
				FAIL("stat stopped after its holder died");
			usleep(10000);
		}
		/* Only whole lines are parsed below. */
		*(strrchr(out, '\n') + 1) = 0;
	}
	CHECK_OK(kill(tpid, SIGINT));
	st = t_wait_child(tpid, 30);
	CHECK(st != -1 && WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
	close(o[0]);

	/* Every line an array; after the first, rates are numbers. */
	lines = 0;
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *arr = cli_json_one(line), *obj = json_array_get(arr, 0);

		CHECK_NOTNULL(obj);
		if (lines > 0 &&
		    json_is_number(json_object_get(obj, "msgs_per_s")) &&
		    json_is_number(json_object_get(obj, "bytes_per_s")))
			rated++;
		lines++;
		json_decref(arr);
	}
	CHECK(lines >= 4);
	CHECK(rated >= 3);

	shmcap_channel_close(cons);
	shmcap_cap_close(region);
}

/*
 * A child that sends n messages into the channel in caps[0] (if n > 0),
 * publishes the ncaps capabilities under name (served by a thread) and
 * waits to be killed.
 */
static pid_t publisher_child(shmcap_cap **caps, size_t ncaps, const char *name,
			     int n)
{
	char msg[MSG_LEN] = "published";
	shmcap_channel *ch;
	shmcap_name *pub;
	int ready, i;
	pid_t pid;

	pid = cli_fork(&ready);
	if (pid == 0) {
		if (n > 0) {
			CHECK_OK(shmcap_channel_open(
				caps[0], SHMCAP_CHANNEL_PRODUCER, 0, &ch));
			for (i = 0; i < n; i++)
				CHECK_OK(shmcap_channel_send(ch, msg,
							     sizeof(msg), 0));
		}
		CHECK_OK(shmcap_name_publish(name, caps, ncaps, 0600,
					     SHMCAP_NAME_THREAD, &pub));
		cli_child_ready(ready);
		cli_child_idle();
	}
	return pid;
}

/*
 * A channel reached by a published name: the name is looked up, and
 * takes precedence over a named region of the same name (named:NAME
 * still picks the region). A name that holds no channel: exit 1; an
 * unknown name, or a name whose publisher was killed: 3.
 */
static void test_published(void)
{
	char name[64], forced[80], named[80], buf[64];
	shmcap_cap *caps[2], *same;
	shmcap_channel *cons;
	json_t *arr, *o;
	pid_t pid;
	int i;

	/* A region name too, so that the leftovers check covers it. */
	t_unique_name(name, sizeof(name), "clistat");
	snprintf(forced, sizeof(forced), "name:%s", name);
	snprintf(named, sizeof(named), "named:%s", name);

	/* A plain region and a channel's: only the channel is shown. */
	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_SPSC, 4096, 256, 0,
				       &caps[0]));
	CHECK_OK(shmcap_region_create(8192, 0, &caps[1]));
	pid = publisher_child(caps, 2, name, N_SENT);
	CHECK_OK(shmcap_channel_open(caps[0], SHMCAP_CHANNEL_CONSUMER, 0,
				     &cons));
	for (i = 0; i < N_TAKEN; i++)
		CHECK_EQ(shmcap_channel_recv(cons, buf, sizeof(buf), 0),
			 MSG_LEN);

	CLI_EXPECT(&res, 0, "stat", name, "--once", "--json", NULL);
	o = one_channel(&arr, "spsc");
	CHECK_STR_EQ(json_string_value(json_object_get(o, "region")), name);
	CHECK_EQ(cli_json_int(o, "sent"), N_SENT);
	CHECK_EQ(cli_json_int(o, "taken"), N_TAKEN);
	CHECK_EQ(cli_json_int(o, "depth_msgs"), N_SENT - N_TAKEN);
	CHECK_EQ(cli_json_int(o, "producers"), 1);
	CHECK_EQ(cli_json_int(o, "consumers"), 1);
	json_decref(arr);

	CLI_EXPECT(&res, 0, "stat", forced, "--once", "--json", NULL);
	arr = cli_json_one(res.out);
	CHECK_EQ(cli_json_int(json_array_get(arr, 0), "sent"), N_SENT);
	json_decref(arr);

	/* The human form names the channel by the published name. */
	CLI_EXPECT(&res, 0, "stat", name, "--once", NULL);
	CHECK(strstr(res.out, name) != NULL);
	CHECK(strstr(res.out, "spsc") != NULL);

	/* The published name wins over a named region of that name. */
	CHECK_OK(shmcap_region_create_named(name, 4096, 0600, &same));
	CLI_EXPECT(&res, 0, "stat", name, "--once", "--json", NULL);
	CLI_EXPECT(&res, 1, "stat", named, "--once", NULL);
	CHECK(strstr(res.err, "not a channel") != NULL);

	/*
	 * Killed publisher: the name is gone; name:NAME is not found, and
	 * NAME falls back to the named region, which holds no channel.
	 */
	cli_kill_reap(pid);
	CLI_EXPECT(&res, 3, "stat", forced, "--once", NULL);
	CLI_EXPECT(&res, 1, "stat", name, "--once", NULL);
	shmcap_cap_close(same);
	CHECK_OK(shmcap_region_unlink(name));
	CLI_EXPECT(&res, 3, "stat", name, "--once", NULL);
	shmcap_channel_close(cons);
	shmcap_cap_close(caps[0]);

	/* A name that holds no channel: exit 1. */
	pid = publisher_child(&caps[1], 1, name, 0);
	CLI_EXPECT(&res, 1, "stat", name, "--once", NULL);
	CHECK(strstr(res.err, "not a channel") != NULL);
	/* Another user may not look the name up (its rule is 0600). */
	CLI_EXPECT_AS(&res, 4, CLI_NOBODY, "stat", name, "--once", NULL);
	cli_kill_reap(pid);
	shmcap_cap_close(caps[1]);

	/* Unknown names. */
	CLI_EXPECT(&res, 3, "stat", "t-cli-no-such-name", "--once", NULL);
	CLI_EXPECT(&res, 3, "stat", "name:t-cli-no-such-name", "--once", NULL);
	CHECK(strstr(res.err, "nobody publishes") != NULL);
}

static void test_not_channel(void)
{
	char name[64], aid[16];
	shmcap_cap *region;
	pid_t pid;

	t_unique_name(name, sizeof(name), "clistat");
	CHECK_OK(shmcap_region_create_named(name, 8192, 0600, &region));
	CLI_EXPECT(&res, 1, "stat", name, "--once", NULL);
	CHECK(strstr(res.err, "not a channel") != NULL);
	shmcap_cap_close(region);

	/* A child holding a plain anonymous region. */
	CHECK_OK(shmcap_region_create(8192, 0, &region));
	pid = cli_sleeper();
	snprintf(aid, sizeof(aid), "%d", (int)pid);
	CLI_EXPECT(&res, 1, "stat", aid, "--once", NULL);
	cli_kill_reap(pid);
	shmcap_cap_close(region);
	CHECK_OK(shmcap_region_unlink(name));

	CLI_EXPECT(&res, 3, "stat", "t-cli-no-such-region", "--once", NULL);
	CLI_EXPECT(&res, 2, "stat", NULL);
	CLI_EXPECT(&res, 2, "stat", "x", "--interval", "0", NULL);
	CLI_EXPECT(&res, 0, "stat", "--help", NULL);
}

/*
 * The lossy channel's count of lost messages: a subscriber lapped by 1000
 * messages adds them to the channel's total when it finds out (at its next
 * message), and stat shows exactly that. Both ends are in this process.
 */
static void test_lost_count(void)
{
	char aid[16], buf[64];
	shmcap_channel *sub, *prod;
	shmcap_cap *region;
	json_t *arr, *o;
	int i;

	CHECK_OK(shmcap_channel_create(SHMCAP_CHANNEL_BROADCAST, 4096, 64,
				       SHMCAP_CHANNEL_LOSSY, &region));
	CHECK_OK(shmcap_channel_open(region, SHMCAP_CHANNEL_CONSUMER, 0, &sub));
	CHECK_OK(
		shmcap_channel_open(region, SHMCAP_CHANNEL_PRODUCER, 0, &prod));
	CHECK_OK(shmcap_channel_send(prod, "first", 5, 0));
	CHECK_EQ(shmcap_channel_recv(sub, buf, sizeof(buf), 0), 5);
	for (i = 0; i < 1000; i++)
		CHECK_OK(shmcap_channel_send(prod, "lapped", 6, 0));
	/* Overtaken: the subscriber jumps to the tail, finds nothing. */
	CHECK_ERR(shmcap_channel_recv(sub, buf, sizeof(buf), 0), -EAGAIN);
	CHECK_OK(shmcap_channel_send(prod, "last", 4, 0));
	CHECK_EQ(shmcap_channel_recv(sub, buf, sizeof(buf), 0), 4);
	snprintf(aid, sizeof(aid), "%d", (int)getpid());
	CLI_EXPECT(&res, 0, "stat", aid, "--once", "--json", NULL);
	o = one_channel(&arr, "broadcast");
	CHECK_EQ(cli_json_int(o, "lost"), 1000);
	CHECK_EQ(cli_json_int(o, "sent"), 1002);
	json_decref(arr);
	CHECK_EQ(shmcap_channel_missed(sub), 1000);
	shmcap_channel_close(prod);
	shmcap_channel_close(sub);
	shmcap_cap_close(region);
}

int main(void)
{
	t_watchdog(100);
	if (geteuid() != 0)
		SKIP("needs root for the other-user case");
	test_spsc();
	test_mpsc();
	test_broadcast();
	test_lost_count();
	test_refresh();
	test_published();
	test_not_channel();
	cli_test_done("clistat", &res);
	return 0;
}
