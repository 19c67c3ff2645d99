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

/* The two roles of a round trip. */
enum hb_role {
	HB_INITIATOR = 0, /* the parent: times the round trips */
	HB_RESPONDER = 1, /* the child: answers them */
};

/* What an implementation's callbacks get. */
struct hb_ctx {
	void *shm;	   /* HB_SHM_SIZE shared bytes, zeroed per run */
	enum hb_role role; /* who is calling */
};

/*
 * Flags of an implementation. HB_IMPL_BUSY: it waits by spinning without
 * end, and is left out when both processes share one core.
 */
#define HB_IMPL_BUSY 0x1u

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
};

/* A round-trip benchmark: one name, several implementations. */
struct hb_bench {
	const char *name;	     /* e.g. "sem_pingpong" */
	const char *subject;	     /* impl whose ratios are shown */
	const struct hb_impl *impls; /* the subject and its peers */
	int nimpls;
	long samples;	/* timed round trips per run (before --samples) */
	long warmup;	/* untimed round trips before them */
	int64_t gap_ns; /* initiator's sleep before each round trip, or 0 */
};

/* What the harness measured; kept for ratios and targets. */
struct hb_result {
	char bench[64];
	char impl[48];
	int is_cpu; /* an idle-waiter CPU result rather than a round trip */
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
