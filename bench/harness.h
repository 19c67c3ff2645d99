/* SPDX-License-Identifier: MIT */
/*
 * The benchmark harness shared by the programs in bench/.
 *
 * A benchmark family is one program (bench_sem, bench_notifier ...) that
 * describes its implementations as struct hb_impl and hands them to the
 * harness, which does the rest the same way for every family:
 *
 * - Two processes: the initiator (the parent) and the responder (a child
 *   made with fork() for every run), pinned to the first two CPUs of the
 *   allowed set (--unpinned: no pinning; --same-core: both on the first).
 * - A shared anonymous mapping: a control page (ready, the number of the
 *   last ping, the child's error and measurements) and HB_SHM_SIZE bytes,
 *   zeroed before every run, for the implementation's shared state
 *   (ctx->shm).
 * - Round trips: warm-up, then N timed round trips, each timed on its own
 *   with CLOCK_MONOTONIC (vDSO), less the measured cost of reading the
 *   clock. With a gap, the initiator sleeps (clock_nanosleep) before every
 *   round trip, so that the responder goes to sleep in between.
 * - Statistics: each run's samples are sorted for median, p99 and p99.9;
 *   R runs (default 3), interleaved across implementations so that a
 *   change of machine state between runs affects them alike; the result is
 *   the median of the runs' medians (and of their p99, p99.9), with the
 *   spread of the runs' medians. A ratio between two implementations is
 *   the median of their per-run ratios (hb_ratio()).
 * - Output: a table on stdout (for the bench's subject, usually "shmcap",
 *   and every implementation whose name starts with it, its ratio to every
 *   peer), JSON lines appended to the file named by --json, and target
 *   checks (PASS/MISS).
 * - Throughput (hb_throughput()): instead of round trips, a producer
 *   and one or more consumers, all forked for the run, send and receive
 *   a fixed number of messages after a warm-up, timed in the consumers;
 *   results are messages/s (and GB/s), with ratios of throughput.
 * - Settings: with --same-core the bench names get "_samecore", with
 *   --unpinned "_unpinned", so that results of different settings never
 *   mix; with --spin LIST every shmcap implementation runs once per spin
 *   budget, as "shmcap@spin=NS".
 *
 * Everything in this file is C11 and Linux; the harness is not thread-safe
 * (one benchmark at a time).
 */
#ifndef SHMCAP_BENCH_HARNESS_H
#define SHMCAP_BENCH_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of shared memory for an implementation's state (ctx->shm). */
#define HB_SHM_SIZE 65536

/* Most runs per implementation (--runs). */
#define HB_MAX_RUNS 99

/* The roles: two of a round trip, two of a throughput run. */
enum hb_role {
	HB_INITIATOR = 0, /* the parent: times the round trips */
	HB_RESPONDER = 1, /* the child: answers them */
	HB_PRODUCER = 2,  /* throughput: sends the messages */
	HB_CONSUMER = 3,  /* throughput: receives them, timed */
};

/* Most consumers of a throughput run (struct hb_bench's consumers). */
#define HB_MAX_CONSUMERS 8

/* What an implementation's callbacks get. */
struct hb_ctx {
	void *shm;	   /* HB_SHM_SIZE shared bytes, zeroed per run */
	enum hb_role role; /* who is calling */
	int index;	   /* throughput: the consumer's number, from 0 */
};

/*
 * Flags of an implementation. HB_IMPL_BUSY: it waits by spinning without
 * end, and is left out when both processes share one core.
 * HB_IMPL_OWN_PROCESS (hb_pingpong() only): the initiator too runs in a
 * process forked for the run, not in the harness's own, so that neither
 * process inherits per-process state from earlier runs: for a runtime
 * that a process can start only once and that does not survive fork()
 * (iceoryx). setup() and teardown() then run in that process as well.
 * (hb_throughput() forks every process anyway; hb_idle_cpu() does not
 * support it.)
 */
#define HB_IMPL_BUSY 0x1u
#define HB_IMPL_OWN_PROCESS 0x2u

/*
 * One implementation of a round trip. Callbacks return 0 or a negative
 * errno value; NULL callbacks are skipped. Process-local state (a
 * capability, a descriptor) set up by setup() before fork() is inherited
 * by the responder.
 */
struct hb_impl {
	const char *name;
	unsigned int flags;
	/* In the parent, before fork(), for every run. */
	int (*setup)(struct hb_ctx *ctx);
	/* In each process after fork(), and before it ends (e.g. iceoryx's
	 * runtime). */
	int (*proc_init)(struct hb_ctx *ctx);
	void (*proc_fini)(struct hb_ctx *ctx);
	/* Initiator: wake the responder and wait for its answer. */
	int (*ping)(struct hb_ctx *ctx);
	/* Responder: wait for a ping and answer it. */
	int (*pong)(struct hb_ctx *ctx);
	/* In the parent, after the responder ended, for every run. */
	void (*teardown)(struct hb_ctx *ctx);
	/*
	 * Instead of ping and pong: one sample, measured by the callback
	 * itself into *ns (e.g. start a program and time until its first
	 * message, then reap it untimed). No responder is forked; setup and
	 * teardown still run, in the parent.
	 */
	int (*measure)(struct hb_ctx *ctx, int64_t *ns);
	/*
	 * Throughput (hb_throughput()), instead of ping and pong: the
	 * producer sends n messages of the bench's msg_bytes (to every
	 * consumer); each consumer receives them, in calls of its own
	 * count (the warm-up, then the timed part). produce NULL: the
	 * consumer runs alone (e.g. memcpy, the limit of bulk transfer).
	 * msgs: timed messages per run (0: the bench's samples), chosen
	 * so that a run takes a fraction of a second.
	 */
	int (*produce)(struct hb_ctx *ctx, long n);
	int (*consume)(struct hb_ctx *ctx, long n);
	long msgs;
};

/*
 * A benchmark: one name, several implementations; round trips
 * (hb_pingpong()) or throughput (hb_throughput()).
 */
struct hb_bench {
	const char *name;	     /* e.g. "sem_pingpong" */
	const char *subject;	     /* impl whose ratios are shown */
	const struct hb_impl *impls; /* the subject and its peers */
	int nimpls;
	long samples;	/* timed round trips per run (before --samples) */
	long warmup;	/* untimed round trips before them */
	int64_t gap_ns; /* initiator's sleep before each round trip, or 0 */
	/* Throughput only (hb_throughput()): */
	size_t msg_bytes; /* bytes per message */
	int consumers;	  /* consumers, each receiving every message; 0: 1 */
	int gb;		  /* show GB/s rather than messages/s */
};

/* What the harness measured; kept for ratios and targets. */
struct hb_result {
	char bench[64];
	char impl[48];
	int is_cpu; /* an idle-waiter CPU result rather than a round trip */
	/*
	 * A throughput result. median_ns and run_median_ns then hold the
	 * time per message (the reciprocal of the rate), so that hb_ratio()
	 * and the run-by-run ratios work alike for both kinds.
	 */
	int is_tput;
	double msgs_per_s, gb_per_s; /* the median over the runs */
	/* Round trips, in ns (medians over the runs). */
	double median_ns, p99_ns, p999_ns, mean_ns;
	double spread_lo_ns, spread_hi_ns; /* smallest, largest run median */
	double run_median_ns[HB_MAX_RUNS]; /* each run's, in run order */
	long samples;			   /* per run (the smallest run's) */
	int runs;
	/* Idle waiter: CPU time used while waiting, and the wait's length. */
	double cpu_ns, wall_ns, cpu_percent, rusage_cpu_ns;
	int64_t spin_ns; /* shmcap's spin budget in the run */
	char error[128]; /* why it failed, or empty */
};

/*
 * Parse the common options (see --help) and prepare the shared
 * mapping, the CPUs and the timer. prog is the program's name for
 * messages; benches lists the bench names the program knows, for --help
 * and --bench checking. Exits with 2 on a bad option, 0 after --help.
 */
void hb_init(int argc, char **argv, const char *prog,
	     const char *const *benches);

/*
 * Pin the calling process to the responder's CPU (or, with --unpinned, to
 * every allowed CPU): for a helper process that a measure() implementation
 * forks itself, which would otherwise inherit the initiator's CPU.
 */
void hb_pin_responder(void);

/* Whether bench name was selected (--bench; all by default). */
int hb_want_bench(const char *name);

/*
 * Run a round-trip benchmark: every selected implementation, R runs
 * each; record and print the results. Returns 0, or -1 if an
 * implementation failed (reported on stderr; the others still run).
 */
int hb_pingpong(const struct hb_bench *bench);

/*
 * Idle-waiter CPU: for each implementation, the responder waits for one
 * ping that the initiator sends only after wait_ns; the responder's CPU
 * time over its wait (CLOCK_THREAD_CPUTIME_ID) and the wait's wall time
 * are recorded. wait_ns is replaced by --idle-wait if given. Returns as
 * hb_pingpong().
 */
int hb_idle_cpu(const char *bench, const struct hb_impl *impls, int nimpls,
		int64_t wait_ns);

/*
 * Throughput: for each implementation, fork a producer (pinned to the
 * initiator's CPU) and b->consumers consumers (to the responder's), which
 * run proc_init and then wait until all are ready; the producer sends
 * warm-up + msgs messages, each consumer receives the warm-up untimed and
 * then times the msgs messages (CLOCK_MONOTONIC, in the consumer). A
 * run's rate is the slowest consumer's; the result is the median over the
 * runs, printed as messages/s (or GB/s with b->gb) with each subject row's
 * throughput ratio to every peer, and recorded in the JSON as msgs_per_s,
 * gb_per_s and ns_per_msg. b->samples is the default of impl->msgs;
 * --samples overrides both, --quick divides them by 20. Returns as
 * hb_pingpong().
 */
int hb_throughput(const struct hb_bench *bench);

/*
 * How many times higher impl a's throughput is than impl b's in bench (the
 * median of the per-run ratios, as hb_ratio()), or NAN.
 */
double hb_tput_ratio(const char *bench, const char *a, const char *b);

/* Whether implementation name was selected (--impl; all by default). */
int hb_want_impl(const char *name);

/*
 * The result of impl in bench (bench as named by the program: the
 * setting's suffix is added), or NULL if it was not run; a failed one has
 * its error set.
 */
const struct hb_result *hb_result(const char *bench, const char *impl);

/*
 * Check a target: value <= limit passes; print it and record it in the
 * JSON. what describes it. A NAN value (a result missing or failed) is
 * reported as skipped, quietly if --impl or --spin left it out. Targets
 * are checked only in the pinned two-core setting and for selected
 * benches; elsewhere this does nothing.
 */
void hb_target(const char *bench, const char *what, double value, double limit);

/*
 * How many times slower impl a is than impl b in bench (a's median over
 * b's), or NAN. Runs are interleaved, so run k of a and run k of b saw the
 * same machine: this is the median over k of the ratio of their run
 * medians, which a change of the machine's state between runs (the vCPUs
 * moved on the host) does not skew as it can the ratio of two medians.
 */
double hb_ratio(const char *bench, const char *a, const char *b);

/*
 * End: print the target summary. Returns the exit status: 0, or 1 if a
 * benchmark failed (or, with --strict, if a target was missed).
 */
int hb_finish(void);

#endif /* SHMCAP_BENCH_HARNESS_H */
