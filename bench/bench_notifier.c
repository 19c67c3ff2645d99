/* SPDX-License-Identifier: MIT */
/*
 * bench_notifier: shmcap notifiers against raw eventfds.
 *
 * Bench:
 *   notifier_pingpong  round trip A -> B -> A with two doorbells, back to
 *                      back
 *
 * Implementations:
 *   shmcap   shmcap_notifier_signal/shmcap_notifier_wait, two notifiers
 *            created before fork() and inherited
 *   eventfd  two blocking eventfds: write(2) 1, read(2) the count
 *
 * A notifier is an eventfd underneath, so both sleep in the kernel for
 * every wait; the bench shows what the library adds on top.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <shmcap.h>

/* ------------------------------------------------------------------------
 * shmcap notifiers
 */

static shmcap_cap *sc_ping_n, *sc_pong_n;

static int sc_setup(struct hb_ctx *ctx)
{
	int err;

	(void)ctx;
	err = shmcap_notifier_create(&sc_ping_n);
	if (err < 0)
		return err;
	err = shmcap_notifier_create(&sc_pong_n);
	if (err < 0)
		shmcap_cap_close(sc_ping_n);
	return err;
}

static void sc_teardown(struct hb_ctx *ctx)
{
	(void)ctx;
	shmcap_cap_close(sc_ping_n);
	shmcap_cap_close(sc_pong_n);
}

static int sc_ping(struct hb_ctx *ctx)
{
	int err;

	(void)ctx;
	err = shmcap_notifier_signal(sc_ping_n);
	if (err < 0)
		return err;
	err = shmcap_notifier_wait(sc_pong_n, SHMCAP_FOREVER);
	return err < 0 ? err : 0;
}

static int sc_pong(struct hb_ctx *ctx)
{
	int err;

	(void)ctx;
	err = shmcap_notifier_wait(sc_ping_n, SHMCAP_FOREVER);
	if (err < 0)
		return err;
	return shmcap_notifier_signal(sc_pong_n);
}

/* ------------------------------------------------------------------------
 * Raw eventfds, blocking
 */

static int efd_ping = -1, efd_pong = -1;

static int ev_setup(struct hb_ctx *ctx)
{
	(void)ctx;
	efd_ping = eventfd(0, EFD_CLOEXEC);
	if (efd_ping < 0)
		return -errno;
	efd_pong = eventfd(0, EFD_CLOEXEC);
	if (efd_pong < 0) {
		close(efd_ping);
		return -errno;
	}
	return 0;
}

static void ev_teardown(struct hb_ctx *ctx)
{
	(void)ctx;
	close(efd_ping);
	close(efd_pong);
}

static int ev_signal(int fd)
{
	uint64_t one = 1;

	while (write(fd, &one, sizeof(one)) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int ev_wait(int fd)
{
	uint64_t count;

	while (read(fd, &count, sizeof(count)) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int ev_ping(struct hb_ctx *ctx)
{
	int err;

	(void)ctx;
	err = ev_signal(efd_ping);
	return err < 0 ? err : ev_wait(efd_pong);
}

static int ev_pong(struct hb_ctx *ctx)
{
	int err;

	(void)ctx;
	err = ev_wait(efd_ping);
	return err < 0 ? err : ev_signal(efd_pong);
}

/* ------------------------------------------------------------------------
 * The bench
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
		.name = "eventfd",
		.setup = ev_setup,
		.ping = ev_ping,
		.pong = ev_pong,
		.teardown = ev_teardown,
	},
};

static const char *const benches[] = {
	"notifier_pingpong",
	NULL,
};

int main(int argc, char **argv)
{
	static const struct hb_bench steady = {
		.name = "notifier_pingpong",
		.subject = "shmcap",
		.impls = impls,
		.nimpls = (int)(sizeof(impls) / sizeof(impls[0])),
		.samples = 200000,
		.warmup = 20000,
	};

	hb_init(argc, argv, "bench_notifier", benches);
	/* No target: the table's ratio says what the library adds. */
	hb_pingpong(&steady);
	return hb_finish();
}
