/* SPDX-License-Identifier: MIT */
/*
 * shmcap stat: a channel's live counters, refreshed in place like top.
 *
 *   shmcap stat NAME|AID [--once] [--interval SEC] [--json]
 *
 * A channel is always an anonymous region (shmcap_channel_create()), so
 * it is reached through whoever holds it. NAME is a published name
 * (shmcap_name_lookup()): every channel among the regions it holds; when
 * nobody publishes NAME, a named region of that name (which holds a
 * channel only if something put one there by hand). "name:NAME" forces
 * the published name, "named:NAME" the named region. AID is an actor
 * (pid or id): every channel among the regions it maps or holds (found
 * as in shmcap dump). Regions that hold no channel are skipped; none at
 * all is an error (exit 1).
 *
 * Each refresh reads the 4096-byte control part of every channel
 * (<shmcap/abi.h>, struct shmcap_channel_ctrl) with pread(2) from a
 * read-only descriptor and shows, per channel:
 *
 *   depth     bytes in the ring (tail - head; broadcast: behind the
 *             slowest open subscriber) and, for SPSC, messages (sent -
 *             taken); MPSC and broadcast keep no message count for it;
 *   msg/s     messages per second between two refreshes: the producer's
 *             `sent` counter (SPSC, broadcast) or the consumer's `taken`
 *             (MPSC, whose producers share no counter);
 *   bytes/s   ring bytes committed per second (tail; record headers and
 *             padding included);
 *   sleeping  consumers and producers asleep on the futexes;
 *   prod/cons open producer and consumer (subscriber) slots;
 *   lost      lossy broadcast only: the messages subscribers lost
 *             (overwritten before they read them), the channel's `lost`
 *             total, which each subscriber adds to when it finds out;
 *             and (lost_bytes, detail view) the bytes by which open
 *             subscribers have fallen more than a ring behind, lost
 *             but not yet counted.
 *
 * With --once it prints once, with no rates (they need two samples: "-"
 * or null); otherwise it refreshes every --interval seconds (default 1),
 * clearing the terminal when standard output is one, until SIGINT or
 * SIGTERM, after which it restores the cursor and exits 0. The control
 * part is written by the participants without any lock, so a snapshot
 * may be a little inconsistent (tail and head read at slightly different
 * times): everything is range-checked and shown as read, never trusted.
 *
 * cli_channel_print() here also serves `shmcap dump --channel`.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <shmcap.h>

#define CMD "stat"

/* A decoded, checked snapshot of a channel's control part. */
struct chan_view {
	const char *why; /* NULL, or why the header is not a valid one */
	int kind, lossy;
	const char *kind_name;
	uint64_t capacity;
	uint32_t max_msg, nslots;
	uint64_t tail, head, sent, taken, wpos;
	uint64_t depth;	    /* bytes */
	int64_t depth_msgs; /* -1: unknown */
	int64_t lost;	    /* lossy broadcast: bytes; -1: not applicable */
	int64_t lost_msgs;  /* lossy broadcast: messages; -1: n/a */
	int counters_ok;    /* the counters are mutually consistent */
	uint32_t cons_sleepers, prod_sleepers, armed;
	uint32_t producers, consumers;
};

static const char *slot_state(uint32_t s)
{
	switch (s) {
	case 0:
		return "free";
	case 1:
		return "open";
	case 2:
		return "closed";
	case 3:
		return "claiming";
	default:
		return "invalid";
	}
}

/* Is slot i a producer's in a channel of this kind? */
static int is_prod_slot(int kind, uint32_t i)
{
	return kind == SHMCAP_CHANNEL_MPSC ? i >= 1 : i == 1;
}

static void chan_decode(const struct shmcap_channel_ctrl *c,
			unsigned long long region_size, struct chan_view *v)
{
	const struct shmcap_channel_header *h = &c->hdr;
	uint64_t min_head = 0;
	uint32_t i;
	int any_sub = 0;

	memset(v, 0, sizeof(*v));
	v->depth_msgs = -1;
	v->lost = -1;
	v->lost_msgs = -1;
	if (h->magic != SHMCAP_CHANNEL_MAGIC) {
		v->why = "not a channel (bad magic)";
		return;
	}
	if (h->version != SHMCAP_CHANNEL_VERSION) {
		v->why = "unknown channel version";
		return;
	}
	v->kind = h->kind;
	switch (h->kind) {
	case SHMCAP_CHANNEL_SPSC:
		v->kind_name = "spsc";
		break;
	case SHMCAP_CHANNEL_MPSC:
		v->kind_name = "mpsc";
		break;
	case SHMCAP_CHANNEL_BROADCAST:
		v->kind_name = "broadcast";
		break;
	default:
		v->why = "corrupt header: unknown kind";
		return;
	}
	v->lossy = h->kind == SHMCAP_CHANNEL_BROADCAST &&
		   (h->flags & SHMCAP_CHANNEL_LOSSY);
	v->capacity = h->capacity;
	v->max_msg = h->max_msg;
	v->nslots = h->nslots;
	if (h->ctrl_size != SHMCAP_CHANNEL_CTRL_SIZE || h->capacity < 64 ||
	    h->capacity > SHMCAP_CHANNEL_CAPACITY_MAX ||
	    (h->capacity & (h->capacity - 1)) != 0 ||
	    h->max_msg > h->capacity / 2 ||
	    region_size < SHMCAP_CHANNEL_CTRL_SIZE ||
	    h->capacity > region_size - SHMCAP_CHANNEL_CTRL_SIZE) {
		v->why = "corrupt header: bad geometry";
		return;
	}
	if (h->nslots < 2 || h->nslots > SHMCAP_CHANNEL_SLOTS ||
	    (h->kind == SHMCAP_CHANNEL_SPSC && h->nslots != 2)) {
		v->why = "corrupt header: bad slot count";
		return;
	}

	v->tail = c->prod.tail;
	v->head = c->cons.head;
	v->wpos = c->prod.wpos;
	v->sent = c->prod.sent;
	v->taken = c->cons.taken;
	v->cons_sleepers = c->prod.cons_sleepers;
	v->prod_sleepers = c->cons.prod_sleepers;
	v->armed = c->prod.cons_armed;
	for (i = 0; i < v->nslots; i++) {
		const struct shmcap_channel_slot *s = &c->slot[i];

		if (s->state != 1)
			continue;
		if (is_prod_slot(v->kind, i)) {
			v->producers++;
			continue;
		}
		v->consumers++;
		if (v->kind == SHMCAP_CHANNEL_BROADCAST) {
			/* A subscriber's head is in its pend_pos. */
			if (!any_sub ||
			    v->tail - s->pend_pos > v->tail - min_head)
				min_head = s->pend_pos;
			any_sub = 1;
		}
	}
	if (v->kind == SHMCAP_CHANNEL_BROADCAST) {
		v->head = any_sub ? min_head : v->tail;
		v->depth = v->tail - v->head;
		v->counters_ok = 1;
		if (v->lossy) {
			v->lost_msgs = c->cons.lost > INT64_MAX ?
					       INT64_MAX :
					       (int64_t)c->cons.lost;
			v->lost = v->depth > v->capacity ?
					  (int64_t)(v->depth - v->capacity) :
					  0;
			if (v->depth > v->capacity)
				v->depth = v->capacity;
		} else if (v->depth > v->capacity) {
			v->counters_ok = 0;
		}
		return;
	}
	v->depth = v->tail - v->head;
	v->counters_ok = v->depth <= v->capacity;
	if (v->kind == SHMCAP_CHANNEL_SPSC && v->sent >= v->taken &&
	    v->sent - v->taken <= v->capacity / 8)
		v->depth_msgs = (int64_t)(v->sent - v->taken);
}

static json_t *slots_json(const struct shmcap_channel_ctrl *c,
			  const struct chan_view *v)
{
	json_t *arr = json_array();
	uint32_t i;

	for (i = 0; arr && i < v->nslots; i++) {
		const struct shmcap_channel_slot *s = &c->slot[i];

		if (s->state == 0)
			continue;
		json_array_append_new(
			arr,
			json_pack("{s:i,s:s,s:s,s:i,s:I}", "slot", (int)i,
				  "role",
				  is_prod_slot(v->kind, i) ? "producer" :
							     "consumer",
				  "state", slot_state(s->state), "pid",
				  (int)s->pid, "start", (json_int_t)s->start));
	}
	return arr;
}

static json_t *view_json(const struct chan_view *v)
{
	json_t *o;

	o = json_pack("{s:s,s:b,s:I,s:i,s:I,s:I,s:I,s:I,s:I,s:i,s:i,s:i,s:i,"
		      "s:i,s:b}",
		      "kind", v->kind_name, "lossy", v->lossy, "capacity",
		      (json_int_t)v->capacity, "max_msg", (int)v->max_msg,
		      "tail", (json_int_t)v->tail, "head", (json_int_t)v->head,
		      "sent", (json_int_t)v->sent, "taken",
		      (json_int_t)v->taken, "depth_bytes", (json_int_t)v->depth,
		      "cons_sleepers", (int)v->cons_sleepers, "prod_sleepers",
		      (int)v->prod_sleepers, "armed", (int)v->armed,
		      "producers", (int)v->producers, "consumers",
		      (int)v->consumers, "consistent", v->counters_ok);
	if (!o)
		return NULL;
	json_object_set_new(o, "depth_msgs",
			    v->depth_msgs < 0 ? json_null() :
						json_integer(v->depth_msgs));
	json_object_set_new(o, "lost_bytes",
			    v->lost < 0 ? json_null() : json_integer(v->lost));
	json_object_set_new(o, "lost",
			    v->lost_msgs < 0 ? json_null() :
					       json_integer(v->lost_msgs));
	return o;
}

int cli_channel_print(const void *ctrl, size_t len,
		      unsigned long long region_size, int detail, json_t **json)
{
	const struct shmcap_channel_ctrl *c = ctrl;
	struct chan_view v;
	uint32_t i;

	(void)detail;
	if (len < sizeof(*c)) {
		if (json)
			*json = json_pack("{s:s}", "error", "too short");
		else
			printf("channel: too short\n");
		return -EBADMSG;
	}
	chan_decode(c, region_size, &v);
	if (v.why) {
		if (json)
			*json = json_pack("{s:s}", "error", v.why);
		else
			printf("channel: %s\n", v.why);
		return -EBADMSG;
	}
	if (json) {
		*json = view_json(&v);
		if (*json) {
			json_object_set_new(*json, "version",
					    json_integer(c->hdr.version));
			json_object_set_new(*json, "flags",
					    json_integer(c->hdr.flags));
			json_object_set_new(*json, "wpos",
					    json_integer((json_int_t)v.wpos));
			json_object_set_new(*json, "slots", slots_json(c, &v));
		}
		return 0;
	}
	printf("channel (control part, %d bytes)\n"
	       "  magic       0x%08x \"SCHN\"\n"
	       "  version     %u\n"
	       "  kind        %u (%s%s)\n"
	       "  capacity    %llu\n"
	       "  max_msg     %u\n"
	       "  tail        %llu\n"
	       "  head        %llu%s\n"
	       "  depth       %llu bytes",
	       SHMCAP_CHANNEL_CTRL_SIZE, c->hdr.magic, c->hdr.version,
	       c->hdr.kind, v.kind_name, v.lossy ? ", lossy" : "",
	       (unsigned long long)v.capacity, v.max_msg,
	       (unsigned long long)v.tail, (unsigned long long)v.head,
	       v.kind == SHMCAP_CHANNEL_BROADCAST ? " (slowest subscriber)" :
						    "",
	       (unsigned long long)v.depth);
	if (v.depth_msgs >= 0)
		printf(", %lld messages", (long long)v.depth_msgs);
	printf("%s\n", v.counters_ok ? "" : " (counters inconsistent)");
	printf("  sent        %llu\n"
	       "  taken       %llu\n"
	       "  sleepers    %u consumer, %u producer\n"
	       "  armed       %u\n",
	       (unsigned long long)v.sent, (unsigned long long)v.taken,
	       v.cons_sleepers, v.prod_sleepers, v.armed);
	if (v.kind == SHMCAP_CHANNEL_BROADCAST)
		printf("  subscribers %u open, ever attached: %s\n"
		       "  wpos        %llu\n",
		       c->prod.subs_open, c->prod.subs_seen ? "yes" : "no",
		       (unsigned long long)v.wpos);
	if (v.lost >= 0)
		printf("  lost        %lld messages counted, %lld bytes "
		       "behind\n",
		       (long long)v.lost_msgs, (long long)v.lost);
	printf("  %-5s %-9s %-8s %8s %20s\n", "SLOT", "ROLE", "STATE", "PID",
	       v.kind == SHMCAP_CHANNEL_BROADCAST ? "HEAD" : "PENDING");
	for (i = 0; i < v.nslots; i++) {
		const struct shmcap_channel_slot *s = &c->slot[i];
		char extra[32] = "-";

		if (s->state == 0)
			continue;
		if (v.kind == SHMCAP_CHANNEL_BROADCAST &&
		    !is_prod_slot(v.kind, i))
			snprintf(extra, sizeof(extra), "%llu",
				 (unsigned long long)s->pend_pos);
		else if (v.kind == SHMCAP_CHANNEL_MPSC && i >= 1 &&
			 s->pend_pos != UINT64_MAX)
			snprintf(extra, sizeof(extra), "%llu+%llu",
				 (unsigned long long)s->pend_pos,
				 (unsigned long long)s->pend_size);
		printf("  %-5u %-9s %-8s %8d %20s\n", i,
		       is_prod_slot(v.kind, i) ? "producer" : "consumer",
		       slot_state(s->state), (int)s->pid, extra);
	}
	return 0;
}

/* --- stat ------------------------------------------------------------ */

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmcap stat NAME|AID [--once] "
		"[--interval SEC] [--json]\n"
		"A channel's live counters, refreshed in place until "
		"interrupted:\n"
		"every channel among the regions a published NAME or an "
		"actor holds.\n"
		"NAME: a published name, else a named region (name:NAME or\n"
		"named:NAME forces one reading); AID: a pid or actor id.\n"
		"  -1, --once          print once (no rates)\n"
		"  -i, --interval SEC  seconds between refreshes (default 1)\n"
		"  -j, --json          JSON: an array, one object per channel\n"
		"  -h, --help          this text\n");
}

struct chan_state {
	struct cli_region *r;
	struct chan_view v, prev;
	int have_prev;
	int ok; /* read and decoded this round */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int sample(struct chan_state *s)
{
	struct shmcap_channel_ctrl c;

	s->prev = s->v;
	if (cli_pread_all(s->r->fd, &c, sizeof(c), 0) != (int)sizeof(c)) {
		s->ok = 0;
		return -EBADMSG;
	}
	chan_decode(&c, s->r->size, &s->v);
	s->ok = !s->v.why;
	return s->ok ? 0 : -EBADMSG;
}

static double rate_msgs(const struct chan_state *s, double dt)
{
	uint64_t a, b;

	if (!s->have_prev || dt <= 0)
		return NAN;
	if (s->v.kind == SHMCAP_CHANNEL_MPSC) {
		a = s->prev.taken;
		b = s->v.taken;
	} else {
		a = s->prev.sent;
		b = s->v.sent;
	}
	return b >= a ? (double)(b - a) / dt : NAN;
}

static double rate_bytes(const struct chan_state *s, double dt)
{
	if (!s->have_prev || dt <= 0 || s->v.tail < s->prev.tail)
		return NAN;
	return (double)(s->v.tail - s->prev.tail) / dt;
}

static json_t *num_or_null(double x)
{
	return isnan(x) ? json_null() : json_real(x);
}

static int show(struct chan_state *st, size_t n, double dt, int json,
		const char *what, int tty, double interval)
{
	char depth[32], rm[32], rb[32], lost[32], ts[32];
	json_t *arr;
	time_t t;
	size_t i;

	if (json) {
		arr = json_array();
		for (i = 0; arr && i < n; i++) {
			json_t *o;

			if (!st[i].ok)
				continue;
			o = view_json(&st[i].v);
			if (!o)
				continue;
			json_object_set_new(o, "region",
					    json_string(st[i].r->label));
			json_object_set_new(o, "msgs_per_s",
					    num_or_null(rate_msgs(&st[i], dt)));
			json_object_set_new(
				o, "bytes_per_s",
				num_or_null(rate_bytes(&st[i], dt)));
			json_array_append_new(arr, o);
		}
		if (!arr)
			return CLI_FAIL;
		return cli_json_print(arr) == CLI_OK && fflush(stdout) == 0 ?
			       CLI_OK :
			       CLI_FAIL;
	}
	if (tty)
		printf("\033[H\033[2J");
	t = time(NULL);
	strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&t));
	if (interval > 0)
		printf("shmcap stat %s   every %gs   %s\n", what, interval, ts);
	printf("%-30s %-9s %10s %7s %9s %11s %7s %4s %4s %10s\n", "REGION",
	       "KIND", "DEPTH", "MSGS", "MSG/S", "BYTES/S", "SLEEP", "PROD",
	       "CONS", "LOST");
	for (i = 0; i < n; i++) {
		const struct chan_view *v = &st[i].v;
		char sl[24], m[24];
		double x;

		if (!st[i].ok) {
			printf("%-30.30s (unreadable or corrupt now)\n",
			       st[i].r->label);
			continue;
		}
		cli_fmt_bytes(v->depth, depth, sizeof(depth));
		x = rate_msgs(&st[i], dt);
		if (isnan(x))
			snprintf(rm, sizeof(rm), "-");
		else
			snprintf(rm, sizeof(rm), "%.0f", x);
		x = rate_bytes(&st[i], dt);
		if (isnan(x))
			snprintf(rb, sizeof(rb), "-");
		else
			cli_fmt_bytes((unsigned long long)x, rb, sizeof(rb));
		if (v->lost_msgs < 0)
			snprintf(lost, sizeof(lost), "-");
		else
			snprintf(lost, sizeof(lost), "%lld",
				 (long long)v->lost_msgs);
		snprintf(sl, sizeof(sl), "%u/%u", v->cons_sleepers,
			 v->prod_sleepers);
		if (v->depth_msgs < 0)
			snprintf(m, sizeof(m), "-");
		else
			snprintf(m, sizeof(m), "%lld",
				 (long long)v->depth_msgs);
		printf("%-30.30s %-9s %10s %7s %9s %11s %7s %4u %4u %10s%s\n",
		       st[i].r->label, v->kind_name, depth, m, rm, rb, sl,
		       v->producers, v->consumers, lost,
		       v->counters_ok ? "" : " !");
	}
	return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
}

int cmd_stat(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "once", no_argument, NULL, '1' },
		{ "interval", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct chan_state *st = NULL;
	struct cli_region *r = NULL;
	struct sigaction sa, old_int, old_term;
	double interval = 1, t_prev = 0, t_now;
	int once = 0, json = 0, c, ret, tty;
	size_t n = 0, nch = 0, i;
	struct timespec ts;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "1i:jh", opts, NULL)) != -1) {
		switch (c) {
		case '1':
			once = 1;
			break;
		case 'i':
			interval = strtod(optarg, &end);
			if (*end || !(interval >= 0.05 && interval <= 86400)) {
				cli_warn(CMD,
					 "bad interval '%s' (0.05 to "
					 "86400 seconds)",
					 optarg);
				return CLI_USAGE;
			}
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(stdout);
			return CLI_OK;
		default:
			usage(stderr);
			return CLI_USAGE;
		}
	}
	if (optind != argc - 1) {
		return cli_usage_error(CMD, usage,
				       optind >= argc ?
					       "no channel given" :
					       "one NAME or AID at a time");
	}
	ret = cli_regions_open(CMD, argv[optind], 1, &r, &n);
	if (ret != CLI_OK)
		return ret;
	st = calloc(n ? n : 1, sizeof(*st));
	if (!st) {
		cli_warn(CMD, "out of memory");
		ret = CLI_FAIL;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (r[i].fd < 0)
			continue;
		st[nch].r = &r[i];
		if (sample(&st[nch]) == 0)
			nch++;
	}
	if (nch == 0) {
		if (n == 1)
			cli_warn(CMD, "%s: not a channel", argv[optind]);
		else
			cli_warn(CMD, "%s: no channel among its %zu regions",
				 argv[optind], n);
		ret = CLI_FAIL;
		goto out;
	}
	t_prev = now_s();
	tty = isatty(STDOUT_FILENO);
	if (once) {
		ret = show(st, nch, 0, json, argv[optind], 0, 0);
		goto out;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	if (tty && !json)
		printf("\033[?25l"); /* hide the cursor while refreshing */
	ret = show(st, nch, 0, json, argv[optind], tty && !json, interval);
	while (!stop && ret == CLI_OK) {
		ts.tv_sec = (time_t)interval;
		ts.tv_nsec = (long)((interval - (double)ts.tv_sec) * 1e9);
		/* Interrupted by SIGINT/SIGTERM: stop at once. */
		if (nanosleep(&ts, NULL) < 0 && stop)
			break;
		t_now = now_s();
		for (i = 0; i < nch; i++) {
			sample(&st[i]);
			st[i].have_prev = st[i].prev.why == NULL &&
					  st[i].prev.kind == st[i].v.kind;
		}
		ret = show(st, nch, t_now - t_prev, json, argv[optind],
			   tty && !json, interval);
		t_prev = t_now;
	}
	if (tty && !json)
		printf("\033[?25h");
	fflush(stdout);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
out:
	free(st);
	cli_regions_close(r, n);
	return ret;
}
