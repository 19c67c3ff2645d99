/* SPDX-License-Identifier: MIT */
/*
 * The benchmark harness: processes, pinning, timing, statistics and
 * output. See harness.h for what it does; the notes here are about how.
 *
 * - Timing. Every round trip is timed on its own: t0 = clock; ping; t1 =
 *   clock, with CLOCK_MONOTONIC (vDSO; rdtsc is no cheaper on these
 *   guests). The interval holds the round trip plus about one clock read
 *   (the tail of the first and the head of the second), ~20 ns, which is
 *   comparable to a spin round trip (~100 ns). At start the harness
 *   measures the mean interval between two back-to-back reads and
 *   subtracts it from the statistics (printed, and stored as timer_ns in
 *   the JSON; --raw writes the intervals as measured). The clock also has
 *   a step: on AMD the TSC counts a 100 MHz reference, so every reading is
 *   a multiple of 10 ns and sub-microsecond percentiles move in 10 ns
 *   steps (timer_step_ns); the mean (mean_ns) is not quantised that way.
 * - Spin budgets. With --spin LIST every implementation whose name starts
 *   with "shmcap" runs once per budget, as IMPL@spin=NS: the initiator
 *   calls shmcap_spin_set() before fork(), and the responder inherits the
 *   setting. Its runs interleave with the peers' like any other's, so a
 *   sweep compares budgets on one machine state.
 * - Runs. A run forks a fresh responder, so that no state (a sleeper
 *   count, a cache line left in some state) carries over. The
 *   implementations' runs are interleaved: run 1 of every implementation,
 *   then run 2 ... On a KVM guest the vCPUs' placement on the host may
 *   change between runs and shift every result; interleaving makes such a
 *   shift hit all implementations alike.
 * - Stopping. The responder cannot know how many round trips the
 *   initiator will make (runs are bounded by time as well as by count), so
 *   before its last ping the initiator writes that ping's number in the
 *   control page; the responder ends after answering it. A flag ("the
 *   next ping is the last") would not do: the responder that reads it
 *   after answering ping k may already see it set for ping k + 1, and end
 *   without answering that one.
 * - Own processes. An implementation flagged HB_IMPL_OWN_PROCESS (a
 *   runtime such as iceoryx's, which a process starts once and a forked
 *   child inherits half-alive) has its whole round-trip run done by a
 *   child of the harness, which forks the responder in turn; the
 *   harness's own process never starts such a runtime. Throughput runs
 *   fork every process (producer and consumers) for the same reason, and
 *   meet at a barrier in the control page before the producer starts.
 * - Hangs. A responder that fails (or a lost wake-up) leaves the initiator
 *   waiting for ever in ping(). A watchdog (alarm, 30 s beyond twice the
 *   run's time bound) then kills the responder, names the run and ends the
 *   program with status 3; the responder also dies with its parent
 *   (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmcap.h>

#define MAX_RESULTS 128
#define MAX_RUNS HB_MAX_RUNS
#define MAX_VARIANTS 32
#define MAX_SPINS 16
#define CTL_SIZE 4096

/* The control page, shared by the two processes of a run. */
struct hb_ctl {
	uint32_t ready;	   /* responder: ready to answer */
	int32_t child_err; /* responder: its error, if it failed */
	uint64_t last;	   /* initiator: the number of the last ping (from 1) */
	int64_t cpu_ns;	   /* responder (idle waiter): CPU time of its wait */
	int64_t wall_ns;   /* responder (idle waiter): wall time of its wait */
};

static struct {
	const char *prog;
	const char *const *benches;
	int runs;
	long samples;	 /* 0: the bench's own */
	long warmup;	 /* -1: the bench's own */
	double max_sec;	 /* time bound of one run's timed part */
	double idle_sec; /* idle-waiter wait; 0: the caller's */
	int pinned;
	int same_core;
	int quick;
	int strict;
	const char *json;
	const char *raw;
	const char *bench_list;
	const char *impl_list;
} opt = {
	.runs = 3,
	.warmup = -1,
	.max_sec = 1.0,
	.pinned = 1,
};

static struct hb_ctl *ctl;
static void *impl_shm;
static int cpu_a = -1, cpu_b = -1; /* initiator's and responder's CPU */
static cpu_set_t cpus_allowed;
static double timer_ns, timer_res_ns = 1;
static int64_t spin_ns;		 /* the library's budget as started */
static int64_t spins[MAX_SPINS]; /* --spin */
static int nspins;
static char machine[128] = "unknown";
static char kernel[128] = "unknown";
static char date[32];
static struct hb_result results[MAX_RESULTS];
static int nresults;
static int failures, targets_missed, targets_passed;
static volatile pid_t watched_child;
static char watched_what[160]; /* "bench impl run k", for the watchdog */
static char run_label[160];    /* "bench impl k", for --raw */

/* ------------------------------------------------------------------------
 * Small helpers
 */

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt,
								...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", opt.prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

__attribute__((format(printf, 1, 2))) static void warn(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", opt.prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A run failed: say why, and keep the reason for the table and JSON. */
static char last_error[128];

__attribute__((format(printf, 1, 2))) static void fail_run(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	warn("%s", last_error);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = {
		.tv_sec = ns / 1000000000,
		.tv_nsec = ns % 1000000000,
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

static int in_list(const char *list, const char *name)
{
	size_t len = strlen(name);
	const char *p = list;

	if (!list)
		return 1;
	while (*p) {
		if (strncmp(p, name, len) == 0 && (p[len] == ',' || !p[len]))
			return 1;
		p = strchr(p, ',');
		if (!p)
			break;
		p++;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile pm/1000 of n sorted samples. */
static uint64_t percentile(const uint64_t *s, size_t n, unsigned int pm)
{
	size_t rank = (n * pm + 999) / 1000;

	return s[rank ? rank - 1 : 0];
}

/* The median of n values (sorts them). */
static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* See hb_ratio(). */
static double ratio(const struct hb_result *a, const struct hb_result *b)
{
	double r[MAX_RUNS];
	int k;

	if (a->error[0] || b->error[0] || !(b->median_ns > 0))
		return NAN;
	if (a->runs != b->runs || a->runs == 0)
		return a->median_ns / b->median_ns;
	for (k = 0; k < a->runs; k++) {
		if (!(b->run_median_ns[k] > 0))
			return a->median_ns / b->median_ns;
		r[k] = a->run_median_ns[k] / b->run_median_ns[k];
	}
	return median(r, a->runs);
}

/* ------------------------------------------------------------------------
 * Set-up
 */

static void usage(FILE *f)
{
	const char *const *b;

	fprintf(f,
		"usage: %s [OPTION]...\n"
		"\n"
		"  --bench LIST     run only these benches (comma separated)\n"
		"  --impl LIST      run only these implementations\n"
		"  --runs R         runs per implementation (default 3)\n"
		"  --samples N      timed round trips (throughput: messages) per run\n"
		"                   (default: the bench's)\n"
		"  --warmup N       untimed round trips first (default: the bench's)\n"
		"  --max-time SEC   bound on a run's timed part, plus its gaps (default 1)\n"
		"  --idle-wait SEC  idle-waiter wait (default 1)\n"
		"  --unpinned       do not pin the two processes\n"
		"  --same-core      pin both processes to the first CPU\n"
		"  --quick          a smoke test: 1 run, few samples, short waits\n"
		"  --json FILE      append the results to FILE as JSON lines\n"
		"  --strict         exit 1 if a target is missed\n"
		"  --raw FILE       append every sample to FILE: bench impl run ns\n"
		"  --spin LIST      run every shmcap implementation once per\n"
		"                   spin budget in LIST (ns, e.g. 0,5000,20000)\n"
		"  --help           this text\n"
		"\n"
		"benches:",
		opt.prog);
	for (b = opt.benches; b && *b; b++)
		fprintf(f, " %s", *b);
	fprintf(f, "\n");
}

static long parse_long(const char *s, const char *what, long min)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min)
		die("bad %s: %s", what, s);
	return v;
}

static double parse_sec(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 3600)
		die("bad %s: %s", what, s);
	return v;
}

/* --spin LIST: nanoseconds, separated by commas or spaces. */
static void parse_spins(const char *list)
{
	const char *p = list;
	char *end;
	long long v;

	nspins = 0;
	while (*p) {
		p += strspn(p, ", ");
		if (!*p)
			break;
		errno = 0;
		v = strtoll(p, &end, 10);
		if (errno || end == p || v < 0 || v > 10000000000LL ||
		    (*end && *end != ',' && *end != ' '))
			die("bad --spin list: %s", list);
		if (nspins == MAX_SPINS)
			die("--spin: at most %d values", MAX_SPINS);
		spins[nspins++] = v;
		p = end;
	}
	if (!nspins)
		die("bad --spin list: %s", list);
}

static void parse(int argc, char **argv)
{
	enum {
		O_BENCH = 256,
		O_IMPL,
		O_RUNS,
		O_SAMPLES,
		O_WARMUP,
		O_MAXTIME,
		O_IDLEWAIT,
		O_UNPINNED,
		O_SAMECORE,
		O_QUICK,
		O_JSON,
		O_STRICT,
		O_SPIN,
		O_RAW,
		O_HELP,
	};
	static const struct option longopts[] = {
		{ "bench", required_argument, NULL, O_BENCH },
		{ "impl", required_argument, NULL, O_IMPL },
		{ "runs", required_argument, NULL, O_RUNS },
		{ "samples", required_argument, NULL, O_SAMPLES },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "max-time", required_argument, NULL, O_MAXTIME },
		{ "idle-wait", required_argument, NULL, O_IDLEWAIT },
		{ "unpinned", no_argument, NULL, O_UNPINNED },
		{ "same-core", no_argument, NULL, O_SAMECORE },
		{ "quick", no_argument, NULL, O_QUICK },
		{ "json", required_argument, NULL, O_JSON },
		{ "strict", no_argument, NULL, O_STRICT },
		{ "spin", required_argument, NULL, O_SPIN },
		{ "raw", required_argument, NULL, O_RAW },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *const *b;
	int c, runs_set = 0;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_BENCH:
			opt.bench_list = optarg;
			break;
		case O_IMPL:
			opt.impl_list = optarg;
			break;
		case O_RUNS:
			opt.runs = (int)parse_long(optarg, "--runs", 1);
			if (opt.runs > MAX_RUNS)
				die("--runs: at most %d", MAX_RUNS);
			runs_set = 1;
			break;
		case O_SAMPLES:
			opt.samples = parse_long(optarg, "--samples", 1);
			if (opt.samples > 100000000)
				die("--samples: at most 100000000");
			break;
		case O_WARMUP:
			opt.warmup = parse_long(optarg, "--warmup", 0);
			break;
		case O_MAXTIME:
			opt.max_sec = parse_sec(optarg, "--max-time");
			break;
		case O_IDLEWAIT:
			opt.idle_sec = parse_sec(optarg, "--idle-wait");
			break;
		case O_UNPINNED:
			opt.pinned = 0;
			break;
		case O_SAMECORE:
			opt.same_core = 1;
			break;
		case O_QUICK:
			opt.quick = 1;
			break;
		case O_JSON:
			opt.json = optarg;
			break;
		case O_STRICT:
			opt.strict = 1;
			break;
		case O_RAW:
			opt.raw = optarg;
			break;
		case O_SPIN:
			parse_spins(optarg);
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		usage(stderr);
		exit(2);
	}
	if (!opt.pinned && opt.same_core)
		die("--unpinned and --same-core exclude each other");
	if (opt.quick) {
		if (!runs_set)
			opt.runs = 1;
		opt.max_sec = opt.max_sec < 0.2 ? opt.max_sec : 0.2;
		if (!opt.idle_sec)
			opt.idle_sec = 0.1;
	}
	if (opt.bench_list) {
		/* Every name asked for must exist. */
		const char *p = opt.bench_list;

		while (*p) {
			size_t len = strcspn(p, ",");
			int found = 0;

			for (b = opt.benches; b && *b; b++)
				if (strlen(*b) == len &&
				    strncmp(*b, p, len) == 0)
					found = 1;
			if (!found)
				die("unknown bench in --bench: %.*s", (int)len,
				    p);
			p += len;
			if (*p)
				p++;
		}
	}
}

/* The first two allowed CPUs: the initiator's and the responder's. */
static void pick_cpus(void)
{
	int i, n = 0;

	if (sched_getaffinity(0, sizeof(cpus_allowed), &cpus_allowed) < 0)
		die("sched_getaffinity: %s", strerror(errno));
	for (i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &cpus_allowed))
			continue;
		if (n == 0)
			cpu_a = i;
		else if (n == 1)
			cpu_b = i;
		n++;
	}
	if (n < 2 && opt.pinned && !opt.same_core) {
		warn("only one CPU allowed: both processes run on CPU %d",
		     cpu_a);
		opt.same_core = 1;
	}
	if (opt.same_core)
		cpu_b = cpu_a;
}

/* Pin the calling process to cpu, or allow every CPU if not pinned. */
static void pin(int cpu)
{
	cpu_set_t set;

	if (!opt.pinned) {
		set = cpus_allowed;
	} else {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
	}
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		die("sched_setaffinity(%d): %s", cpu, strerror(errno));
}

/* The cost of a clock read: the interval between two back-to-back reads. */
static double measure_timer(void)
{
	enum { N = 20001 };
	static uint64_t s[N];
	double sum = 0, cost;
	int64_t t0, t1;
	int i;

	for (i = 0; i < N; i++) {
		t0 = now_ns();
		t1 = now_ns();
		s[i] = (uint64_t)(t1 - t0);
	}
	qsort(s, N, sizeof(s[0]), cmp_u64);
	/*
	 * The cost of a read: the mean interval, leaving out the slowest
	 * 1% (interrupts). The intervals are quantised (below), their mean
	 * much less so.
	 */
	for (i = 0; i < N - N / 100; i++)
		sum += (double)s[i];
	cost = sum / (N - N / 100);
	/*
	 * The clock's step: intervals cluster at multiples of it (10 ns with
	 * AMD's TSC, which counts a 100 MHz reference), each cluster one
	 * nanosecond wide from rounding. The distance from the smallest
	 * interval to the next cluster is the step; 1 if there is none.
	 */
	for (i = 1; i < N; i++) {
		if (s[i] > s[0] + 1) {
			if (s[i] - s[0] > 2)
				timer_res_ns = (double)(s[i] - s[0]);
			break;
		}
	}
	return cost;
}

static void read_machine(void)
{
	struct utsname u;
	char line[256], *p, *e;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) != 0)
			continue;
		p = strchr(line, ':');
		if (!p)
			continue;
		p += 1 + strspn(p + 1, " \t");
		e = p + strlen(p);
		while (e > p && (e[-1] == '\n' || e[-1] == ' '))
			*--e = '\0';
		snprintf(machine, sizeof(machine), "%s", p);
		break;
	}
	if (f)
		fclose(f);
	if (uname(&u) == 0)
		snprintf(kernel, sizeof(kernel), "%s", u.release);
}

void hb_init(int argc, char **argv, const char *prog,
	     const char *const *benches)
{
	time_t t = time(NULL);
	struct tm tm;
	void *m;
	int64_t old;

	/* Lines in order when stdout is a pipe (run.sh | tee). */
	setvbuf(stdout, NULL, _IOLBF, 0);
	opt.prog = prog;
	opt.benches = benches;
	parse(argc, argv);
	pick_cpus();
	read_machine();
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);

	m = mmap(NULL, CTL_SIZE + HB_SHM_SIZE, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	ctl = m;
	impl_shm = (char *)m + CTL_SIZE;

	/*
	 * The library's spin budget, as it chooses it for a process pinned
	 * as ours are: it looks at SHMCAP_SPIN_NS and at the caller's CPU
	 * affinity once, at its first use, so the query comes after pinning
	 * (and the responders, forked later, inherit the choice).
	 */
	pin(cpu_a);
	old = shmcap_spin_set(0);
	shmcap_spin_set(old);
	spin_ns = old;

	timer_ns = measure_timer();
	if (opt.same_core)
		printf("# %s: both processes on CPU %d", prog, cpu_a);
	else if (opt.pinned)
		printf("# %s: initiator on CPU %d, responder on CPU %d", prog,
		       cpu_a, cpu_b);
	else
		printf("# %s: processes not pinned", prog);
	printf("; %d run%s; clock read %.1f ns (subtracted), step %.0f ns; "
	       "shmcap spin budget %lld ns\n",
	       opt.runs, opt.runs == 1 ? "" : "s", timer_ns, timer_res_ns,
	       (long long)spin_ns);
}

void hb_pin_responder(void)
{
	pin(cpu_b);
}

int hb_want_bench(const char *name)
{
	return in_list(opt.bench_list, name);
}

/* The name results are recorded under: the setting is part of it. */
static void eff_name(const char *bench, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s", bench,
		 opt.same_core ? "_samecore" :
		 !opt.pinned   ? "_unpinned" :
				 "");
}

/* ------------------------------------------------------------------------
 * Output
 */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_common(FILE *f, int64_t spin)
{
	fprintf(f, "\"pinned\":%s,\"same_core\":%s,",
		opt.pinned ? "true" : "false",
		opt.same_core ? "true" : "false");
	if (opt.pinned)
		fprintf(f, "\"cpus\":[%d,%d],", cpu_a, cpu_b);
	fprintf(f,
		"\"quick\":%s,\"shmcap_spin_ns\":%lld,\"timer_ns\":%.1f,"
		"\"timer_step_ns\":%.0f,",
		opt.quick ? "true" : "false", (long long)spin, timer_ns,
		timer_res_ns);
	fputs("\"machine\":", f);
	json_str(f, machine);
	fputs(",\"kernel\":", f);
	json_str(f, kernel);
	fprintf(f, ",\"date\":\"%s\"}\n", date);
}

static FILE *json_open(void)
{
	FILE *f;

	if (!opt.json)
		return NULL;
	f = fopen(opt.json, "a");
	if (!f)
		warn("%s: %s", opt.json, strerror(errno));
	return f;
}

static void json_result(const struct hb_result *r, const struct hb_bench *b,
			long warmup)
{
	FILE *f = json_open();
	int k;

	if (!f)
		return;
	fprintf(f, "{\"bench\":\"%s\",\"impl\":\"%s\",", r->bench, r->impl);
	if (r->error[0]) {
		fputs("\"error\":", f);
		json_str(f, r->error);
		fputc(',', f);
	} else if (r->is_tput) {
		fprintf(f,
			"\"msgs_per_s\":%.0f,\"gb_per_s\":%.4f,"
			"\"ns_per_msg\":%.3f,\"msg_bytes\":%zu,"
			"\"consumers\":%d,\"msgs\":%ld,\"warmup\":%ld,"
			"\"run_msgs_per_s\":[",
			r->msgs_per_s, r->gb_per_s, r->median_ns, b->msg_bytes,
			b->consumers > 1 ? b->consumers : 1, r->samples, warmup);
		for (k = 0; k < r->runs; k++)
			fprintf(f, "%s%.0f", k ? "," : "",
				1e9 / r->run_median_ns[k]);
		fputs("],", f);
	} else if (r->is_cpu) {
		fprintf(f,
			"\"cpu_ns\":%.0f,\"wall_ns\":%.0f,\"cpu_percent\":%.4f,"
			"\"rusage_cpu_ns\":%.0f,",
			r->cpu_ns, r->wall_ns, r->cpu_percent,
			r->rusage_cpu_ns);
	} else {
		fprintf(f,
			"\"median_ns\":%.1f,\"p99_ns\":%.1f,\"p999_ns\":%.1f,"
			"\"mean_ns\":%.1f,\"spread_ns\":[%.1f,%.1f],"
			"\"samples\":%ld,\"warmup\":%ld,\"gap_ns\":%lld,"
			"\"run_medians_ns\":[",
			r->median_ns, r->p99_ns, r->p999_ns, r->mean_ns,
			r->spread_lo_ns, r->spread_hi_ns, r->samples, warmup,
			(long long)b->gap_ns);
		for (k = 0; k < r->runs; k++)
			fprintf(f, "%s%.1f", k ? "," : "", r->run_median_ns[k]);
		fputs("],", f);
	}
	fprintf(f, "\"runs\":%d,", r->runs);
	json_common(f, r->spin_ns);
	fclose(f);
}

/* Microseconds, with a precision that suits the size. */
static const char *us(char *buf, size_t size, double ns)
{
	if (ns < 10000)
		snprintf(buf, size, "%.3f", ns / 1000);
	else if (ns < 1000000)
		snprintf(buf, size, "%.1f", ns / 1000);
	else
		snprintf(buf, size, "%.0f", ns / 1000);
	return buf;
}

static void ratio_text(char *buf, size_t size, double r)
{
	if (r >= 100)
		snprintf(buf, size, "%.0fx", r);
	else if (r >= 0.1)
		snprintf(buf, size, "%.2fx", r);
	else
		snprintf(buf, size, "%.2gx", r);
}

static void print_rtt_table(const char *bench, const char *subject, int first,
			    int last)
{
	const struct hb_result *r, *p;
	size_t sl = subject ? strlen(subject) : 0;
	char a[32], b[32], c[32], d[72], rt[32];
	int i, j, any = 0;

	/* The subject's rows (every impl named SUBJECT...) get ratios. */
	for (i = first; i < last; i++)
		if (sl && strncmp(results[i].impl, subject, sl) == 0 &&
		    !results[i].error[0])
			any = 1;
	printf("\n%-22s %-18s %10s %10s %10s %19s %8s  %s\n", "bench", "impl",
	       "median us", "p99 us", "p99.9 us", "run medians us", "n/run",
	       any ? "ratios (per run, median)" : "");
	for (i = first; i < last; i++) {
		r = &results[i];
		if (r->error[0]) {
			printf("%-22s %-18s FAILED: %s\n", bench, r->impl,
			       r->error);
			continue;
		}
		snprintf(d, sizeof(d), "%s-%s",
			 us(a, sizeof(a), r->spread_lo_ns),
			 us(b, sizeof(b), r->spread_hi_ns));
		printf("%-22s %-18s %10s %10s %10s %19s %8ld ", bench, r->impl,
		       us(a, sizeof(a), r->median_ns),
		       us(b, sizeof(b), r->p99_ns),
		       us(c, sizeof(c), r->p999_ns), d, r->samples);
		for (j = first;
		     sl && strncmp(r->impl, subject, sl) == 0 && j < last;
		     j++) {
			p = &results[j];
			if (strncmp(p->impl, subject, sl) == 0 || p->error[0])
				continue;
			ratio_text(rt, sizeof(rt), ratio(r, p));
			printf(" vs %s %s", p->impl, rt);
		}
		putchar('\n');
	}
}

static void print_cpu_table(const char *bench, int first, int last)
{
	const struct hb_result *r;
	int i;

	printf("\n%-22s %-18s %12s %12s %10s %14s\n", "bench", "impl", "cpu us",
	       "wall ms", "cpu %", "rusage cpu us");
	for (i = first; i < last; i++) {
		r = &results[i];
		if (r->error[0]) {
			printf("%-22s %-18s FAILED: %s\n", bench, r->impl,
			       r->error);
			continue;
		}
		printf("%-22s %-18s %12.1f %12.1f %10.4f %14.0f\n", bench,
		       r->impl, r->cpu_ns / 1000, r->wall_ns / 1e6,
		       r->cpu_percent, r->rusage_cpu_ns / 1000);
	}
}

/* ------------------------------------------------------------------------
 * Runs
 */

static void on_alarm(int sig)
{
	static const char msg[] = "bench: watchdog: this run hangs: ";
	ssize_t n;

	(void)sig;
	if (watched_child > 0)
		kill(watched_child, SIGKILL);
	n = write(2, msg, sizeof(msg) - 1);
	n = write(2, watched_what, strlen(watched_what));
	(void)n;
	_exit(3);
}

static void watchdog(double sec)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	alarm(sec > 0 ? (unsigned int)sec + 1 : 0);
}

enum child_mode { CHILD_PINGPONG, CHILD_IDLE };

/* The responder: never returns. */
__attribute__((noreturn)) static void child(const struct hb_impl *im,
					    pid_t parent, enum child_mode mode)
{
	struct hb_ctx ctx = { .shm = impl_shm, .role = HB_RESPONDER };
	int64_t c0, w0;
	uint64_t n = 0;
	int err = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		exit(1);
	pin(cpu_b);
	if (im->proc_init)
		err = im->proc_init(&ctx);
	if (err < 0)
		goto out;
	c0 = thread_cpu_ns();
	w0 = now_ns();
	__atomic_store_n(&ctl->ready, 1, __ATOMIC_SEQ_CST);
	if (mode == CHILD_IDLE) {
		err = im->pong(&ctx);
		ctl->cpu_ns = thread_cpu_ns() - c0;
		ctl->wall_ns = now_ns() - w0;
	} else {
		do {
			err = im->pong(&ctx);
			n++;
		} while (err == 0 &&
			 __atomic_load_n(&ctl->last, __ATOMIC_SEQ_CST) != n);
	}
	if (im->proc_fini)
		im->proc_fini(&ctx);
out:
	if (err < 0)
		ctl->child_err = err;
	/* exit(), not _exit(): runtimes deregister in destructors. */
	exit(err < 0 ? 1 : 0);
}

/* Start a run: set up, fork the responder, wait until it is ready. */
static pid_t start(const struct hb_impl *im, struct hb_ctx *ctx,
		   enum child_mode mode, double limit_sec)
{
	pid_t pid, parent = getpid();
	int err, status;

	memset(ctl, 0, sizeof(*ctl));
	memset(impl_shm, 0, HB_SHM_SIZE);
	ctx->shm = impl_shm;
	ctx->role = HB_INITIATOR;
	pin(cpu_a);
	if (im->setup) {
		err = im->setup(ctx);
		if (err < 0) {
			fail_run("%s: setup: %s", im->name, strerror(-err));
			return -1;
		}
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fail_run("fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child(im, parent, mode);
	watched_child = pid;
	watchdog(limit_sec + 30);
	err = im->proc_init ? im->proc_init(ctx) : 0;
	if (err < 0) {
		fail_run("%s: init: %s", im->name, strerror(-err));
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		goto fail;
	}
	while (!__atomic_load_n(&ctl->ready, __ATOMIC_SEQ_CST)) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fail_run("%s: responder failed: %s", im->name,
				 strerror(-ctl->child_err));
			goto fail_fini;
		}
		sleep_ns(50000);
	}
	return pid;
fail_fini:
	if (im->proc_fini)
		im->proc_fini(ctx);
fail:
	alarm(0);
	if (im->teardown)
		im->teardown(ctx);
	return -1;
}

/* End a run: reap the responder and tear down. 0, or -1 if it failed. */
static int finish(const struct hb_impl *im, struct hb_ctx *ctx, pid_t pid,
		  int err, struct rusage *ru)
{
	struct rusage dummy;
	int status;

	if (err < 0)
		kill(pid, SIGKILL);
	if (wait4(pid, &status, 0, ru ? ru : &dummy) < 0)
		warn("wait4: %s", strerror(errno));
	alarm(0);
	watched_child = 0;
	if (im->proc_fini)
		im->proc_fini(ctx);
	if (im->teardown)
		im->teardown(ctx);
	if (err < 0) {
		fail_run("%s: %s", im->name, strerror(-err));
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fail_run("%s: responder failed: %s", im->name,
			 ctl->child_err ? strerror(-ctl->child_err) :
					  "killed or crashed");
		return -1;
	}
	return 0;
}

/* Per-run statistics of one implementation. */
struct run_stats {
	double median, p99, p999, mean;
	long n;
};

/* A statistic of raw intervals, less the clock's cost; never below 0. */
static double stat_ns(double raw)
{
	return raw > timer_ns ? raw - timer_ns : 0;
}

/* --raw: append a run's samples, in the order taken (raw intervals). */
static void raw_samples(const uint64_t *s, long n)
{
	FILE *f;
	long i;

	if (!opt.raw)
		return;
	f = fopen(opt.raw, "a");
	if (!f) {
		warn("%s: %s", opt.raw, strerror(errno));
		return;
	}
	for (i = 0; i < n; i++)
		fprintf(f, "%s %llu\n", run_label, (unsigned long long)s[i]);
	fclose(f);
}

/*
 * A run's statistics from its got samples: writes them out for --raw (in
 * the order taken), then sorts them in place and fills *st.
 */
static void summarise(uint64_t *s, long got, struct run_stats *st)
{
	double sum = 0;
	long i;

	raw_samples(s, got);
	for (i = 0; i < got; i++)
		sum += (double)s[i];
	qsort(s, (size_t)got, sizeof(*s), cmp_u64);
	/*
	 * Less the cost of reading the clock: a constant, so it comes off
	 * the order statistics as well as off every sample. It is a mean
	 * (not quantised like the samples), so the results are not.
	 */
	st->median = stat_ns(percentile(s, (size_t)got, 500));
	st->p99 = stat_ns(percentile(s, (size_t)got, 990));
	st->p999 = stat_ns(percentile(s, (size_t)got, 999));
	st->mean = stat_ns(sum / (double)got);
	st->n = got;
}

/* One run of a round-trip benchmark; fills *st. 0, or -1. */
static int run_pingpong(const struct hb_bench *b, const struct hb_impl *im,
			long n, long warmup, uint64_t *s, struct run_stats *st)
{
	struct hb_ctx ctx;
	double limit = opt.max_sec + (double)b->gap_ns * (double)n / 1e9;
	int64_t t0, t1, deadline;
	long i, got = 0;
	uint64_t pings = 0;
	pid_t pid;
	int err = 0;

	pid = start(im, &ctx, CHILD_PINGPONG, 2 * limit);
	if (pid < 0)
		return -1;
	/* Warm-up: bounded by a quarter of the time too. */
	deadline = now_ns() + (int64_t)(limit / 4 * 1e9);
	for (i = 0; i < warmup && err == 0; i++) {
		if (b->gap_ns)
			sleep_ns(b->gap_ns);
		err = im->ping(&ctx);
		pings++;
		if ((i & 63) == 0 && now_ns() > deadline)
			break;
	}
	deadline = now_ns() + (int64_t)(limit * 1e9);
	for (i = 0; i < n && err == 0; i++) {
		if (b->gap_ns)
			sleep_ns(b->gap_ns);
		t0 = now_ns();
		err = im->ping(&ctx);
		t1 = now_ns();
		pings++;
		s[got++] = (uint64_t)(t1 - t0);
		if (t1 > deadline)
			break;
	}
	if (err == 0) {
		/* Before the ping: its wake-up publishes the number. */
		__atomic_store_n(&ctl->last, pings + 1, __ATOMIC_SEQ_CST);
		err = im->ping(&ctx);
	}
	if (finish(im, &ctx, pid, err, NULL) < 0)
		return -1;

	summarise(s, got, st);
	return 0;
}

/*
 * A run of an implementation that measures its own samples (measure):
 * no responder, the initiator pinned as for round trips.
 */
static int run_solo(const struct hb_bench *b, const struct hb_impl *im,
		    long n, long warmup, uint64_t *s, struct run_stats *st)
{
	struct hb_ctx ctx;
	int64_t ns, deadline;
	long i, got = 0;
	int err = 0;

	(void)b;
	memset(impl_shm, 0, HB_SHM_SIZE);
	ctx.shm = impl_shm;
	ctx.role = HB_INITIATOR;
	pin(cpu_a);
	if (im->setup) {
		err = im->setup(&ctx);
		if (err < 0) {
			fail_run("%s: setup: %s", im->name, strerror(-err));
			return -1;
		}
	}
	deadline = now_ns() + (int64_t)(opt.max_sec / 4 * 1e9);
	for (i = 0; i < warmup && err == 0 && now_ns() < deadline; i++)
		err = im->measure(&ctx, &ns);
	deadline = now_ns() + (int64_t)(opt.max_sec * 1e9);
	for (i = 0; i < n && err == 0; i++) {
		err = im->measure(&ctx, &ns);
		if (err == 0)
			s[got++] = (uint64_t)(ns > 0 ? ns : 0);
		if (now_ns() > deadline)
			break;
	}
	if (im->teardown)
		im->teardown(&ctx);
	if (err < 0 || got == 0) {
		fail_run("%s: %s", im->name, strerror(err < 0 ? -err : EIO));
		return -1;
	}
	summarise(s, got, st);
	return 0;
}

static struct hb_result *new_result(const char *bench, const char *impl)
{
	struct hb_result *r;

	if (nresults == MAX_RESULTS)
		die("too many results");
	r = &results[nresults++];
	memset(r, 0, sizeof(*r));
	snprintf(r->bench, sizeof(r->bench), "%s", bench);
	snprintf(r->impl, sizeof(r->impl), "%s", impl);
	return r;
}

static int impl_wanted(const struct hb_impl *im)
{
	if (!in_list(opt.impl_list, im->name))
		return 0;
	/* A spinner that never sleeps only starves a peer on its core. */
	if ((im->flags & HB_IMPL_BUSY) && opt.same_core && !opt.impl_list)
		return 0;
	return 1;
}

/*
 * An implementation as it is run: under --spin, every shmcap
 * implementation once per spin budget (set with shmcap_spin_set() in the
 * initiator before fork(), so that the responder inherits it), named
 * IMPL@spin=NS.
 */
struct variant {
	const struct hb_impl *im;
	int64_t spin; /* the budget to set, or -1 for the default */
	char name[48];
	int ok;	 /* runs that succeeded */
	int bad; /* a run failed: no more runs */
	char error[128];
};

static struct variant vars[MAX_VARIANTS];

static int make_variants(const struct hb_impl *impls, int nimpls)
{
	struct variant *v;
	int i, j, n = 0, sc;

	for (i = 0; i < nimpls; i++) {
		if (!impl_wanted(&impls[i]))
			continue;
		sc = nspins && strncmp(impls[i].name, "shmcap", 6) == 0;
		for (j = 0; j < (sc ? nspins : 1); j++) {
			if (n == MAX_VARIANTS)
				die("too many implementations");
			v = &vars[n++];
			memset(v, 0, sizeof(*v));
			v->im = &impls[i];
			v->spin = sc ? spins[j] : -1;
			if (v->spin >= 0)
				snprintf(v->name, sizeof(v->name),
					 "%s@spin=%lld", impls[i].name,
					 (long long)v->spin);
			else
				snprintf(v->name, sizeof(v->name), "%s",
					 impls[i].name);
		}
	}
	return n;
}

/* Before and after a run of variant v. */
static void variant_begin(const struct variant *v, const char *bench, int run)
{
	snprintf(watched_what, sizeof(watched_what), "%s %s run %d\n", bench,
		 v->name, run);
	snprintf(run_label, sizeof(run_label), "%s %s %d", bench, v->name, run);
	if (v->spin >= 0)
		shmcap_spin_set(v->spin);
}

static void variant_end(struct variant *v, int err)
{
	if (v->spin >= 0)
		shmcap_spin_set(spin_ns);
	if (err < 0) {
		v->bad = 1;
		snprintf(v->error, sizeof(v->error), "%s", last_error);
	} else {
		v->ok++;
	}
}

static struct hb_result *variant_result(const struct variant *v,
					const char *bench, int is_cpu)
{
	struct hb_result *r = new_result(bench, v->name);

	r->is_cpu = is_cpu;
	r->runs = v->ok;
	r->spin_ns = v->spin >= 0 ? v->spin : spin_ns;
	if (v->bad) {
		snprintf(r->error, sizeof(r->error), "%s", v->error);
		failures++;
	}
	return r;
}

/* What the initiator's process of run_pingpong_forked() hands back. */
struct forked {
	int ret;
	struct run_stats st;
	char error[128];
};

/*
 * A round-trip run whose initiator is a process of its own
 * (HB_IMPL_OWN_PROCESS): a child does the whole run_pingpong(), forking
 * the responder itself, and hands back its statistics (or its error) in a
 * shared page. It ends with exit(), so that a runtime it started
 * deregisters; the harness's process never starts one.
 */
static int run_pingpong_forked(const struct hb_bench *b,
			       const struct hb_impl *im, long n, long warmup,
			       uint64_t *s, struct run_stats *st)
{
	struct forked *f;
	pid_t pid;
	int status, ret = -1;

	f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (f == MAP_FAILED) {
		fail_run("mmap: %s", strerror(errno));
		return -1;
	}
	f->ret = -1;
	snprintf(f->error, sizeof(f->error), "%s: initiator process died",
		 im->name);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fail_run("fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		f->ret = run_pingpong(b, im, n, warmup, s, &f->st);
		if (f->ret < 0)
			snprintf(f->error, sizeof(f->error), "%s", last_error);
		exit(0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (f->ret == 0) {
		*st = f->st;
		ret = 0;
	} else {
		/* The child said why on stderr; keep it for the table. */
		snprintf(last_error, sizeof(last_error), "%s", f->error);
	}
out:
	munmap(f, sizeof(*f));
	return ret;
}

int hb_pingpong(const struct hb_bench *b)
{
	static struct run_stats st[MAX_RUNS][MAX_VARIANTS];
	double med[MAX_RUNS], p99[MAX_RUNS], p999[MAX_RUNS], mean[MAX_RUNS];
	long n = opt.samples ? opt.samples : b->samples;
	long warmup = opt.warmup >= 0 ? opt.warmup : b->warmup;
	char name[64];
	struct hb_result *r;
	struct variant *v;
	uint64_t *s;
	int i, k, nv, err, first = nresults, ret = 0;

	if (!hb_want_bench(b->name))
		return 0;
	if (opt.quick && !opt.samples) {
		n = n / 40 > 50 ? n / 40 : (n < 50 ? n : 50);
		warmup = opt.warmup >= 0 ? opt.warmup : warmup / 40;
	}
	eff_name(b->name, name, sizeof(name));
	nv = make_variants(b->impls, b->nimpls);
	s = malloc((size_t)n * sizeof(*s));
	if (!s)
		die("out of memory");

	for (k = 0; k < opt.runs; k++) {
		for (i = 0; i < nv; i++) {
			v = &vars[i];
			if (v->bad)
				continue;
			variant_begin(v, name, k + 1);
			if (v->im->measure)
				err = run_solo(b, v->im, n, warmup, s,
					       &st[v->ok][i]);
			else if (v->im->flags & HB_IMPL_OWN_PROCESS)
				err = run_pingpong_forked(b, v->im, n, warmup,
							  s, &st[v->ok][i]);
			else
				err = run_pingpong(b, v->im, n, warmup, s,
						   &st[v->ok][i]);
			variant_end(v, err);
		}
	}
	free(s);

	for (i = 0; i < nv; i++) {
		v = &vars[i];
		r = variant_result(v, name, 0);
		if (v->bad) {
			ret = -1;
			json_result(r, b, warmup);
			continue;
		}
		r->samples = st[0][i].n;
		r->spread_lo_ns = r->spread_hi_ns = st[0][i].median;
		for (k = 0; k < v->ok; k++) {
			med[k] = st[k][i].median;
			r->run_median_ns[k] = med[k];
			p99[k] = st[k][i].p99;
			p999[k] = st[k][i].p999;
			mean[k] = st[k][i].mean;
			if (st[k][i].n < r->samples)
				r->samples = st[k][i].n;
			if (med[k] < r->spread_lo_ns)
				r->spread_lo_ns = med[k];
			if (med[k] > r->spread_hi_ns)
				r->spread_hi_ns = med[k];
		}
		r->median_ns = median(med, v->ok);
		r->p99_ns = median(p99, v->ok);
		r->p999_ns = median(p999, v->ok);
		r->mean_ns = median(mean, v->ok);
		json_result(r, b, warmup);
	}
	if (nresults > first)
		print_rtt_table(name, b->subject, first, nresults);
	return ret;
}

/* One idle-waiter run. 0, or -1. */
static int run_idle(const struct hb_impl *im, int64_t wait_ns, double *cpu,
		    double *wall, double *ru_cpu)
{
	struct hb_ctx ctx;
	struct rusage ru;
	pid_t pid;
	int err;

	pid = start(im, &ctx, CHILD_IDLE, (double)wait_ns / 1e9);
	if (pid < 0)
		return -1;
	sleep_ns(wait_ns);
	err = im->ping(&ctx);
	if (finish(im, &ctx, pid, err, &ru) < 0)
		return -1;
	*cpu = (double)ctl->cpu_ns;
	*wall = (double)ctl->wall_ns;
	*ru_cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
		  (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
	return 0;
}

int hb_idle_cpu(const char *bench, const struct hb_impl *impls, int nimpls,
		int64_t wait_ns)
{
	static double cpu[MAX_VARIANTS][MAX_RUNS], wall[MAX_VARIANTS][MAX_RUNS],
		ru[MAX_VARIANTS][MAX_RUNS];
	char name[64];
	struct hb_result *r;
	struct variant *v;
	int i, k, nv, first = nresults, ret = 0;

	if (!hb_want_bench(bench))
		return 0;
	if (opt.idle_sec)
		wait_ns = (int64_t)(opt.idle_sec * 1e9);
	eff_name(bench, name, sizeof(name));
	nv = make_variants(impls, nimpls);
	for (k = 0; k < opt.runs; k++) {
		for (i = 0; i < nv; i++) {
			v = &vars[i];
			if (v->bad)
				continue;
			variant_begin(v, name, k + 1);
			variant_end(v,
				    run_idle(v->im, wait_ns, &cpu[i][v->ok],
					     &wall[i][v->ok], &ru[i][v->ok]));
		}
	}
	for (i = 0; i < nv; i++) {
		v = &vars[i];
		r = variant_result(v, name, 1);
		if (v->bad) {
			ret = -1;
		} else {
			r->cpu_ns = median(cpu[i], v->ok);
			r->wall_ns = median(wall[i], v->ok);
			r->rusage_cpu_ns = median(ru[i], v->ok);
			r->cpu_percent = 100 * r->cpu_ns / r->wall_ns;
		}
		json_result(r, NULL, 0);
	}
	if (nresults > first)
		print_cpu_table(name, first, nresults);
	return ret;
}

/* ------------------------------------------------------------------------
 * Throughput
 *
 * A run forks every process (the producer and the consumers): none is the
 * harness's own, so a runtime that a process starts once (iceoryx) starts
 * afresh in each. They meet at a barrier in the control page (each counts
 * itself ready after proc_init, the parent then sets go), so that set-up
 * (connecting, subscribing) stays out of the timed part, and the warm-up
 * messages take the first page faults and cache misses.
 */

/* The throughput run's part of the control page, behind struct hb_ctl. */
struct hb_tput_ctl {
	uint32_t ready;			   /* processes past proc_init */
	uint32_t go;			   /* parent: start */
	uint32_t done;			   /* consumers finished */
	int32_t err[HB_MAX_CONSUMERS + 1]; /* [0] producer, [1 + i] consumer i */
	int64_t ns[HB_MAX_CONSUMERS];	   /* consumer i's timed part */
};

#define TPUT_CTL_OFFSET 1024
_Static_assert(sizeof(struct hb_ctl) <= TPUT_CTL_OFFSET &&
		       TPUT_CTL_OFFSET + sizeof(struct hb_tput_ctl) <= CTL_SIZE,
	       "control page layout");

static struct hb_tput_ctl *tput_ctl(void)
{
	return (struct hb_tput_ctl *)((char *)ctl + TPUT_CTL_OFFSET);
}

/* A producer or consumer: never returns. */
__attribute__((noreturn)) static void
tput_child(const struct hb_impl *im, pid_t parent, enum hb_role role, int index,
	   int consumers, long warm, long n)
{
	struct hb_tput_ctl *t = tput_ctl();
	struct hb_ctx ctx = { .shm = impl_shm, .role = role, .index = index };
	int slot = role == HB_PRODUCER ? 0 : 1 + index;
	int64_t t0;
	int err = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		exit(1);
	/* A consumer alone (memcpy) runs where the producer would. */
	pin(role == HB_PRODUCER || !im->produce ? cpu_a : cpu_b);
	if (im->proc_init)
		err = im->proc_init(&ctx);
	if (err < 0)
		goto out;
	__atomic_add_fetch(&t->ready, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&t->go, __ATOMIC_SEQ_CST))
		sleep_ns(20000);
	if (role == HB_PRODUCER) {
		err = im->produce(&ctx, warm + n);
		/*
		 * Stay until every consumer has its messages: some transports
		 * take a message back when its sender goes away.
		 */
		while (err == 0 && __atomic_load_n(&t->done, __ATOMIC_SEQ_CST) <
					   (uint32_t)consumers)
			sleep_ns(100000);
	} else {
		err = warm ? im->consume(&ctx, warm) : 0;
		if (err == 0) {
			t0 = now_ns();
			err = im->consume(&ctx, n);
			t->ns[index] = now_ns() - t0;
		}
		__atomic_add_fetch(&t->done, 1, __ATOMIC_SEQ_CST);
	}
	if (im->proc_fini)
		im->proc_fini(&ctx);
out:
	if (err < 0)
		t->err[slot] = err;
	exit(err < 0 ? 1 : 0);
}

/* Why process slot (0 the producer, 1 + i consumer i) failed. */
static void tput_fail(const struct hb_impl *im, int slot, int status)
{
	int err = tput_ctl()->err[slot];
	char who[32];

	if (slot == 0)
		snprintf(who, sizeof(who), "producer");
	else
		snprintf(who, sizeof(who), "consumer %d", slot - 1);
	if (err)
		fail_run("%s: %s: %s", im->name, who, strerror(-err));
	else if (WIFSIGNALED(status))
		fail_run("%s: %s: killed by signal %d", im->name, who,
			 WTERMSIG(status));
	else
		fail_run("%s: %s failed", im->name, who);
}

/*
 * One throughput run: *per_msg gets the slowest consumer's time per
 * message. 0, or -1.
 */
static int run_tput(const struct hb_bench *b, const struct hb_impl *im,
		    long warm, long n, double *per_msg)
{
	struct hb_tput_ctl *t = tput_ctl();
	int nc = im->produce && b->consumers > 1 ? b->consumers : 1;
	pid_t pids[HB_MAX_CONSUMERS + 1], parent = getpid(), pid;
	int slots[HB_MAX_CONSUMERS + 1];
	int i, np = 0, left, status, failed = 0;
	int64_t deadline, worst = 0;
	struct hb_ctx ctx;

	if (nc > HB_MAX_CONSUMERS)
		die("%s: at most %d consumers", b->name, HB_MAX_CONSUMERS);
	memset(ctl, 0, sizeof(*ctl));
	memset(t, 0, sizeof(*t));
	memset(impl_shm, 0, HB_SHM_SIZE);
	ctx.shm = impl_shm;
	ctx.role = HB_PRODUCER;
	ctx.index = 0;
	if (im->setup) {
		int err = im->setup(&ctx);

		if (err < 0) {
			fail_run("%s: setup: %s", im->name, strerror(-err));
			return -1;
		}
	}
	fflush(NULL);
	for (i = im->produce ? -1 : 0; i < nc; i++) {
		pid = fork();
		if (pid < 0) {
			fail_run("fork: %s", strerror(errno));
			failed = 1;
			break;
		}
		if (pid == 0)
			tput_child(im, parent,
				   i < 0 ? HB_PRODUCER : HB_CONSUMER,
				   i < 0 ? 0 : i, nc, warm, n);
		slots[np] = i + 1;
		pids[np++] = pid;
	}
	/* Start when all are ready, and wait for them (polling: any may
	 * fail first, and the others would then wait for ever). */
	deadline = now_ns() + (int64_t)60 * 1000000000;
	left = np;
	while (!failed && left) {
		if (!t->go && __atomic_load_n(&t->ready, __ATOMIC_SEQ_CST) ==
				      (uint32_t)np)
			__atomic_store_n(&t->go, 1, __ATOMIC_SEQ_CST);
		for (i = 0; i < np && !failed; i++) {
			if (pids[i] <= 0 ||
			    waitpid(pids[i], &status, WNOHANG) != pids[i])
				continue;
			pids[i] = 0;
			left--;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				tput_fail(im, slots[i], status);
				failed = 1;
			}
		}
		if (!failed && left && now_ns() > deadline) {
			fail_run("%s: timed out after 60 s", im->name);
			failed = 1;
		}
		if (!failed && left)
			sleep_ns(t->go ? 10000000 : 100000);
	}
	for (i = 0; i < np; i++) {
		if (pids[i] <= 0)
			continue;
		kill(pids[i], SIGKILL);
		waitpid(pids[i], &status, 0);
	}
	if (im->teardown)
		im->teardown(&ctx);
	if (failed)
		return -1;
	for (i = 0; i < nc; i++)
		if (t->ns[i] > worst)
			worst = t->ns[i];
	*per_msg = (double)worst / (double)n;
	return 0;
}

/* Messages/s or GB/s, as the bench shows them. */
static const char *rate_text(char *buf, size_t size, const struct hb_bench *b,
			     double per_msg)
{
	double rate = per_msg > 0 ? 1e9 / per_msg : 0;

	if (b->gb)
		snprintf(buf, size, "%.2f", rate * (double)b->msg_bytes / 1e9);
	else
		snprintf(buf, size, "%.3f", rate / 1e6);
	return buf;
}

static void print_tput_table(const char *bench, const struct hb_bench *b,
			     int first, int last)
{
	const char *subject = b->subject;
	size_t sl = subject ? strlen(subject) : 0;
	const struct hb_result *r, *p;
	char a[32], c[32], d[72], rt[32];
	int i, j, any = 0;

	for (i = first; i < last; i++)
		if (sl && strncmp(results[i].impl, subject, sl) == 0 &&
		    !results[i].error[0])
			any = 1;
	printf("\n%-22s %-18s %10s %19s %10s  %s\n", "bench", "impl",
	       b->gb ? "GB/s" : "M msgs/s", "runs (low-high)", "msgs/run",
	       any ? "throughput ratios (per run, median)" : "");
	for (i = first; i < last; i++) {
		r = &results[i];
		if (r->error[0]) {
			printf("%-22s %-18s FAILED: %s\n", bench, r->impl,
			       r->error);
			continue;
		}
		snprintf(d, sizeof(d), "%s-%s",
			 rate_text(a, sizeof(a), b, r->spread_hi_ns),
			 rate_text(c, sizeof(c), b, r->spread_lo_ns));
		printf("%-22s %-18s %10s %19s %10ld ", bench, r->impl,
		       rate_text(a, sizeof(a), b, r->median_ns), d, r->samples);
		for (j = first;
		     sl && strncmp(r->impl, subject, sl) == 0 && j < last;
		     j++) {
			p = &results[j];
			if (strncmp(p->impl, subject, sl) == 0 || p->error[0])
				continue;
			ratio_text(rt, sizeof(rt), ratio(p, r));
			printf(" vs %s %s", p->impl, rt);
		}
		putchar('\n');
	}
}

/* Timed messages per run of im, and its warm-up. */
static long tput_msgs(const struct hb_bench *b, const struct hb_impl *im,
		      long *warm)
{
	long n = opt.samples ? opt.samples : im->msgs ? im->msgs : b->samples;

	if (opt.quick && !opt.samples)
		n = n / 20 > 10 ? n / 20 : (n < 10 ? n : 10);
	if (n < 1)
		n = 1;
	*warm = opt.warmup >= 0 ? opt.warmup : n / 10;
	return n;
}

int hb_throughput(const struct hb_bench *b)
{
	static double per[MAX_VARIANTS][MAX_RUNS];
	double tmp[MAX_RUNS];
	long n[MAX_VARIANTS], warm[MAX_VARIANTS];
	char name[64];
	struct hb_result *r;
	struct variant *v;
	int i, k, nv, first = nresults, ret = 0;

	if (!hb_want_bench(b->name))
		return 0;
	eff_name(b->name, name, sizeof(name));
	nv = make_variants(b->impls, b->nimpls);
	for (i = 0; i < nv; i++)
		n[i] = tput_msgs(b, vars[i].im, &warm[i]);
	for (k = 0; k < opt.runs; k++) {
		for (i = 0; i < nv; i++) {
			v = &vars[i];
			if (v->bad)
				continue;
			variant_begin(v, name, k + 1);
			variant_end(v, run_tput(b, v->im, warm[i], n[i],
						&per[i][v->ok]));
		}
	}
	for (i = 0; i < nv; i++) {
		v = &vars[i];
		r = variant_result(v, name, 0);
		r->is_tput = 1;
		r->samples = n[i];
		if (v->bad) {
			ret = -1;
			json_result(r, b, warm[i]);
			continue;
		}
		r->spread_lo_ns = r->spread_hi_ns = per[i][0];
		for (k = 0; k < v->ok; k++) {
			r->run_median_ns[k] = tmp[k] = per[i][k];
			if (per[i][k] < r->spread_lo_ns)
				r->spread_lo_ns = per[i][k];
			if (per[i][k] > r->spread_hi_ns)
				r->spread_hi_ns = per[i][k];
		}
		r->median_ns = r->mean_ns = median(tmp, v->ok);
		r->msgs_per_s = r->median_ns > 0 ? 1e9 / r->median_ns : 0;
		r->gb_per_s = r->msgs_per_s * (double)b->msg_bytes / 1e9;
		json_result(r, b, warm[i]);
	}
	if (nresults > first)
		print_tput_table(name, b, first, nresults);
	return ret;
}

/* ------------------------------------------------------------------------
 * Targets
 */

const struct hb_result *hb_result(const char *bench, const char *impl)
{
	char name[64];
	int i;

	eff_name(bench, name, sizeof(name));
	for (i = 0; i < nresults; i++)
		if (strcmp(results[i].bench, name) == 0 &&
		    strcmp(results[i].impl, impl) == 0)
			return &results[i];
	return NULL;
}

double hb_tput_ratio(const char *bench, const char *a, const char *b)
{
	/* Rates are the reciprocals of the times per message kept. */
	return hb_ratio(bench, b, a);
}

int hb_want_impl(const char *name)
{
	return in_list(opt.impl_list, name);
}

double hb_ratio(const char *bench, const char *a, const char *b)
{
	const struct hb_result *x = hb_result(bench, a),
			       *y = hb_result(bench, b);

	if (!x || !y)
		return NAN;
	return ratio(x, y);
}

void hb_target(const char *bench, const char *what, double value, double limit)
{
	const char *verdict;
	char name[64];
	FILE *f;
	int pass = value <= limit;

	eff_name(bench, name, sizeof(name));
	if (!hb_want_bench(bench) || !opt.pinned || opt.same_core)
		return; /* the targets are for two pinned cores */
	if (isnan(value)) {
		/* Quiet when implementations were left out on purpose. */
		if (!opt.impl_list && !nspins)
			printf("target %-22s %-36s skipped (no result)\n", name,
			       what);
		return;
	}
	verdict = pass ? "PASS" : "MISS";
	if (opt.quick)
		verdict = pass ? "pass (quick)" : "miss (quick)";
	printf("target %-22s %-36s %10.4g  (limit %g)  %s\n", name, what, value,
	       limit, verdict);
	if (pass)
		targets_passed++;
	else
		targets_missed++;
	f = json_open();
	if (!f)
		return;
	fprintf(f,
		"{\"target\":\"%s\",\"bench\":\"%s\",\"value\":%.6g,"
		"\"limit\":%g,\"pass\":%s,",
		what, name, value, limit, pass ? "true" : "false");
	json_common(f, spin_ns);
	fclose(f);
}

int hb_finish(void)
{
	if (targets_passed + targets_missed)
		printf("# %s: targets: %d passed, %d missed%s\n", opt.prog,
		       targets_passed, targets_missed,
		       opt.quick ? " (quick mode: not meaningful)" : "");
	if (failures) {
		printf("# %s: %d benchmark(s) FAILED\n", opt.prog, failures);
		return 1;
	}
	return opt.strict && targets_missed ? 1 : 0;
}
