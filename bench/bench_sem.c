/* SPDX-License-Identifier: MIT */
/*
 * bench_sem: shmcap semaphores against their peers.
 *
 * Benches:
 *   sem_pingpong       round trip A -> B -> A with two semaphores, back to
 *                      back
 *   sem_pingpong_idle  the same with a 1 ms sleep of A before every round
 *                      trip, so that B (and then A) go to sleep: the cost
 *                      of waking a sleeper
 *   idle_waiter_cpu    a waiter whose semaphore is posted only after 1 s:
 *                      the CPU time it uses meanwhile
 *
 * Implementations:
 *   shmcap     shmcap_sem_post/shmcap_sem_wait, two semaphores in a region
 *   posix_sem  sem_t with pshared=1, two in the shared mapping
 *   futex      one shared word: the initiator makes it odd, FUTEX_WAKE, and
 *              FUTEX_WAIT until the responder makes it even again (and the
 *              reverse); every step a system call, no spinning
 *   spin       one shared word, the same protocol, busy-waiting with pause
 *
 * Targets (pinned, two cores): steady shmcap <= 3x spin, and >= 10x faster
 * than futex and sem_t; with idle gaps shmcap no slower than futex; an idle
 * shmcap waiter under 1% of a core.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <linux/futex.h>
#include <math.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <shmcap.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

/* ------------------------------------------------------------------------
 * shmcap: two semaphores in a region, on separate cache lines
 */

static struct {
	shmcap_cap *region;
	shmcap_map *map;
	shmcap_sem *ping, *pong;
} sc;

static int sc_setup(struct hb_ctx *ctx)
{
	char *base;
	int err;

	(void)ctx;
	err = shmcap_region_create(4096, 0, &sc.region);
	if (err < 0)
		return err;
	err = shmcap_region_map(sc.region, 0, 0, NULL, SHMCAP_MAP_WRITE,
				&sc.map);
	if (err < 0) {
		shmcap_cap_close(sc.region);
		return err;
	}
	base = shmcap_map_addr(sc.map);
	sc.ping = (shmcap_sem *)base;
	sc.pong = (shmcap_sem *)(base + 128);
	err = shmcap_sem_init(sc.ping, 0);
	if (err == 0)
		err = shmcap_sem_init(sc.pong, 0);
	return err;
}

static void sc_teardown(struct hb_ctx *ctx)
{
	(void)ctx;
	shmcap_map_unmap(sc.map);
	shmcap_cap_close(sc.region);
}

static int sc_ping(struct hb_ctx *ctx)
{
	int err;

	(void)ctx;
	err = shmcap_sem_post(sc.ping);
	return err < 0 ? err : shmcap_sem_wait(sc.pong, SHMCAP_FOREVER);
}

static int sc_pong(struct hb_ctx *ctx)
{
	int err;

	(void)ctx;
	err = shmcap_sem_wait(sc.ping, SHMCAP_FOREVER);
	return err < 0 ? err : shmcap_sem_post(sc.pong);
}

/* ------------------------------------------------------------------------
 * posix_sem: two process-shared sem_t
 */

struct ps_shm {
	sem_t ping;
	char pad[128 - sizeof(sem_t)];
	sem_t pong;
};

static int ps_setup(struct hb_ctx *ctx)
{
	struct ps_shm *p = ctx->shm;

	if (sem_init(&p->ping, 1, 0) < 0 || sem_init(&p->pong, 1, 0) < 0)
		return -errno;
	return 0;
}

static void ps_teardown(struct hb_ctx *ctx)
{
	struct ps_shm *p = ctx->shm;

	sem_destroy(&p->ping);
	sem_destroy(&p->pong);
}

static int ps_wait(sem_t *s)
{
	while (sem_wait(s) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int ps_ping(struct hb_ctx *ctx)
{
	struct ps_shm *p = ctx->shm;

	if (sem_post(&p->ping) < 0)
		return -errno;
	return ps_wait(&p->pong);
}

static int ps_pong(struct hb_ctx *ctx)
{
	struct ps_shm *p = ctx->shm;
	int err = ps_wait(&p->ping);

	if (err == 0 && sem_post(&p->pong) < 0)
		err = -errno;
	return err;
}

/* ------------------------------------------------------------------------
 * futex and spin: one shared word, odd while a ping is outstanding
 */

static uint32_t *word(struct hb_ctx *ctx)
{
	return ctx->shm;
}

static int futex_wait(uint32_t *w, uint32_t val)
{
	if (syscall(SYS_futex, w, FUTEX_WAIT, val, NULL, NULL, 0) < 0 &&
	    errno != EAGAIN && errno != EINTR)
		return -errno;
	return 0;
}

static int futex_wake(uint32_t *w)
{
	if (syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0) < 0)
		return -errno;
	return 0;
}

static int fx_ping(struct hb_ctx *ctx)
{
	uint32_t *w = word(ctx);
	uint32_t v = __atomic_load_n(w, __ATOMIC_RELAXED) + 1;
	int err;

	__atomic_store_n(w, v, __ATOMIC_SEQ_CST);
	err = futex_wake(w);
	while (err == 0 && __atomic_load_n(w, __ATOMIC_ACQUIRE) == v)
		err = futex_wait(w, v);
	return err;
}

static int fx_pong(struct hb_ctx *ctx)
{
	uint32_t *w = word(ctx);
	uint32_t v;
	int err = 0;

	while (err == 0 && !((v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) & 1))
		err = futex_wait(w, v);
	if (err == 0) {
		__atomic_store_n(w, v + 1, __ATOMIC_SEQ_CST);
		err = futex_wake(w);
	}
	return err;
}

static int sp_ping(struct hb_ctx *ctx)
{
	uint32_t *w = word(ctx);
	uint32_t v = __atomic_load_n(w, __ATOMIC_RELAXED) + 1;

	__atomic_store_n(w, v, __ATOMIC_RELEASE);
	while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == v)
		cpu_relax();
	return 0;
}

static int sp_pong(struct hb_ctx *ctx)
{
	uint32_t *w = word(ctx);
	uint32_t v;

	while (!((v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) & 1))
		cpu_relax();
	__atomic_store_n(w, v + 1, __ATOMIC_RELEASE);
	return 0;
}

/* ------------------------------------------------------------------------
 * The benches
 */

/*
 * The order is the order of a run: shmcap and spin, whose results are
 * compared most finely, run next to each other.
 */
static const struct hb_impl impls[] = {
	{
		.name = "shmcap",
		.setup = sc_setup,
		.ping = sc_ping,
		.pong = sc_pong,
		.teardown = sc_teardown,
	},
	{
		.name = "spin",
		.flags = HB_IMPL_BUSY,
		.ping = sp_ping,
		.pong = sp_pong,
	},
	{
		.name = "futex",
		.ping = fx_ping,
		.pong = fx_pong,
	},
	{
		.name = "posix_sem",
		.setup = ps_setup,
		.ping = ps_ping,
		.pong = ps_pong,
		.teardown = ps_teardown,
	},
};

#define NIMPLS ((int)(sizeof(impls) / sizeof(impls[0])))

static const char *const benches[] = {
	"sem_pingpong",
	"sem_pingpong_idle",
	"idle_waiter_cpu",
	NULL,
};

int main(int argc, char **argv)
{
	static const struct hb_bench steady = {
		.name = "sem_pingpong",
		.subject = "shmcap",
		.impls = impls,
		.nimpls = NIMPLS,
		.samples = 200000,
		.warmup = 20000,
	};
	static const struct hb_bench idle = {
		.name = "sem_pingpong_idle",
		.subject = "shmcap",
		.impls = impls,
		.nimpls = NIMPLS,
		.samples = 2000,
		.warmup = 20,
		.gap_ns = 1000000,
	};
	const struct hb_result *r;

	hb_init(argc, argv, "bench_sem", benches);

	hb_pingpong(&steady);
	hb_pingpong(&idle);
	hb_idle_cpu("idle_waiter_cpu", impls, NIMPLS, 1000000000);

	printf("\n");
	hb_target("sem_pingpong", "shmcap / spin <= 3",
		  hb_ratio("sem_pingpong", "shmcap", "spin"), 3);
	hb_target("sem_pingpong", "shmcap / futex <= 0.1",
		  hb_ratio("sem_pingpong", "shmcap", "futex"), 0.1);
	hb_target("sem_pingpong", "shmcap / posix_sem <= 0.1",
		  hb_ratio("sem_pingpong", "shmcap", "posix_sem"), 0.1);
	hb_target("sem_pingpong_idle", "shmcap / futex <= 1",
		  hb_ratio("sem_pingpong_idle", "shmcap", "futex"), 1);
	r = hb_result("idle_waiter_cpu", "shmcap");
	hb_target("idle_waiter_cpu", "shmcap cpu % < 1",
		  r && !r->error[0] ? r->cpu_percent : NAN, 1);
	return hb_finish();
}
