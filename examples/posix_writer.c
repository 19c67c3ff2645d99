/* SPDX-License-Identifier: MIT */
/*
 * posix_writer: send each line of standard input to posix_reader through
 * a named region (the POSIX shared-memory lesson, writer side).
 *
 * The writer opens the region the reader created (same optional name,
 * default "posix_lesson"), prompts "? ", and for each line waits for
 * clr2send, copies the line into the mailbox and posts sent. At the end
 * of its input (Ctrl-D, or Ctrl-C) it tells the reader so, and the
 * reader stops and removes the name. A line longer than the mailbox goes
 * in several pieces, which the reader prints back to back.
 */
#define _GNU_SOURCE
#include "posix_lesson.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1; /* and fgets() fails with EINTR: see main() */
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "posix_writer: %s: %s\n", what, shmcap_strerror(err));
	return 1;
}

/* Put len bytes (len 0 with eof set: the end) in the mailbox. */
static int send_piece(struct lesson *l, const char *s, size_t len, int eof)
{
	int err;

	/* Sleep until the reader has emptied the mailbox. */
	err = shmcap_sem_wait(&l->clr2send, SHMCAP_FOREVER);
	if (err < 0)
		return err;
	memcpy(l->text, s, len);
	l->len = (uint32_t)len;
	l->eof = (uint32_t)eof;
	return shmcap_sem_post(&l->sent);
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : LESSON_NAME;
	/* No SA_RESTART: Ctrl-C makes fgets() fail, which ends the input. */
	struct sigaction sa = { .sa_handler = on_signal };
	char line[sizeof(((struct lesson *)0)->text)];
	shmcap_cap *region;
	shmcap_map *m;
	struct lesson *l;
	uint64_t size;
	int err;

	err = shmcap_region_open_named(
		name, SHMCAP_RIGHT_READ | SHMCAP_RIGHT_WRITE, &region);
	if (err == -ENOENT)
		fprintf(stderr, "posix_writer: start posix_reader first\n");
	if (err < 0)
		return fail("open", err);
	/* Whoever made the region could have made it too small. */
	err = shmcap_region_size(region, &size);
	if (err == 0 && size < sizeof(*l))
		err = -EBADMSG;
	if (err < 0)
		return fail("size", err);
	err = shmcap_region_map(region, 0, sizeof(*l), NULL,
				SHMCAP_MAP_WRITE | SHMCAP_MAP_UNSEALED, &m);
	shmcap_cap_close(region); /* the mapping is all we need */
	if (err < 0)
		return fail("map", err);
	l = shmcap_map_addr(m);

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (;;) {
		printf("? ");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			break; /* end of input, or interrupted */
		err = send_piece(l, line, strlen(line), 0);
		if (err < 0) {
			fail("send", err);
			break;
		}
	}
	printf("\n");
	/* Tell the reader there is nothing more, even after an error. */
	err = send_piece(l, "", 0, 1);
	shmcap_map_unmap(m);
	if (err < 0)
		return fail("send the end", err);
	if (ferror(stdin) && !interrupted)
		return fail("read standard input", -EIO);
	return 0;
}
