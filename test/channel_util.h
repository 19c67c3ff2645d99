/* SPDX-License-Identifier: MIT */
/*
 * Helpers that the channel tests (test/t_channel*.c) share: message
 * checksums, peers forked once they have attached, and the raw mapping
 * and random corruption of a channel's region.
 *
 * Everything here is static inline, so a test that uses only some of it
 * compiles without warnings.
 */
#ifndef SHMCAP_TEST_CHANNEL_UTIL_H
#define SHMCAP_TEST_CHANNEL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"

/* FNV-1a of the n bytes at p, seeded with seq: a message's checksum. */
static inline uint32_t t_msg_checksum(const uint8_t *p, size_t n, uint64_t seq)
{
	uint32_t h = 2166136261u ^ (uint32_t)seq;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/*
 * fork() a child (watched by a timer of timeout_s seconds) that opens the
 * channel r as role into *ch. In the parent, returns the child's pid once
 * the child has attached, since a channel waits only for peers that did;
 * in the child, returns 0 with *ch open.
 */
static inline pid_t t_fork_attached(shmcap_cap *r, int role, int timeout_s,
				    shmcap_channel **ch)
{
	int pfd[2];
	char b;
	pid_t pid;

	CHECK(pipe(pfd) == 0);
	pid = t_fork_child(timeout_s);
	if (pid > 0) {
		close(pfd[1]);
		CHECK(read(pfd[0], &b, 1) == 1);
		close(pfd[0]);
		return pid;
	}
	close(pfd[0]);
	CHECK_OK(shmcap_channel_open(r, role, 0, ch));
	CHECK(write(pfd[1], "x", 1) == 1);
	close(pfd[1]);
	return 0;
}

/*
 * The start of a channel test's main(): seed t_rnd() (T_SEED=N replays a
 * run), arm a watchdog of 110 seconds; returns t_count_fds() for the end.
 */
static inline int t_channel_test_start(void)
{
	t_rng_seed_env();
	t_watchdog(110);
	return t_count_fds();
}

/*
 * Check what a receive gave under corruption: a message of at most 100
 * bytes or an error it may give; once -EBADMSG (*bad), only -EBADMSG.
 */
static inline void t_check_corrupt_recv(int ret, int *bad)
{
	if (*bad)
		CHECK_ERR(ret, -EBADMSG);
	CHECK((ret >= 0 && ret <= 100) || ret == -EAGAIN || ret == -ETIMEDOUT ||
	      ret == -EBADMSG || ret == -EPIPE);
	*bad |= ret == -EBADMSG;
}

/* Map the whole channel region r writable, to look at and corrupt it. */
static inline uint8_t *t_channel_map(shmcap_cap *r, shmcap_map **m)
{
	CHECK_OK(shmcap_region_map(r, 0, 0, NULL, SHMCAP_MAP_WRITE, m));
	return shmcap_map_addr(*m);
}

/*
 * One time in four, corrupt a random word among the first 512 bytes of
 * the control part at base or of the ring after it (at 4096): a random
 * value, or the old one off by at most 16.
 */
static inline void t_channel_corrupt_maybe(uint8_t *base)
{
	size_t off;
	uint32_t v;

	if (t_rnd() % 4 != 0)
		return;
	off = t_rnd() % 2 ? (t_rnd() % 512) & ~3ul :
			    4096 + ((t_rnd() % 512) & ~3ul);
	v = (uint32_t)t_rnd();
	if (t_rnd() % 2)
		v = t_load32((uint32_t *)(base + off)) + (v % 33) - 16;
	t_store32((uint32_t *)(base + off), v);
}

#endif /* SHMCAP_TEST_CHANNEL_UTIL_H */
