/* SPDX-License-Identifier: MIT */
/*
 * posix_reader: print the lines that posix_writer sends through a named
 * region (the POSIX shared-memory lesson, reader side).
 *
 * Start the reader first, then the writer, with the same optional name
 * (default "posix_lesson"). The reader creates the named region
 * /dev/shm/shmcap.NAME with mode 0666, so any user's writer may open it,
 * and puts in it a one-line mailbox guarded by two semaphores:
 *
 *   clr2send  the writer may fill the mailbox (starts at 1)
 *   sent      a line (or the end of the writer's input) waits in it
 *
 * Both sides sleep in the kernel while they wait: no sleep() and retry.
 * Unlike the seed's reader, which loops for ever, this one stops when the
 * writer's input ends, and it removes the name then (or on Ctrl-C), so
 * nothing stays in /dev/shm.
 */
#define _GNU_SOURCE
#include "posix_lesson.h"

#include <signal.h>
#include <stdio.h>

static volatile sig_atomic_t stop;
static struct lesson *lesson; /* for the signal handler */

/*
 * Ctrl-C, SIGTERM, SIGHUP: ask the loop to stop, and wake it with a post
 * (shmcap_sem_post is async-signal-safe). So the reader can wait with no
 * timeout at all and still remove its name when told to stop.
 */
static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
	if (lesson)
		shmcap_sem_post(&lesson->sent);
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "posix_reader: %s: %s\n", what, shmcap_strerror(err));
	return 1;
}

/* Wait for sem; -EINTR if Ctrl-C (or SIGTERM, SIGHUP) came first. */
static int wait_or_stop(shmcap_sem *sem)
{
	int err = shmcap_sem_wait(sem, SHMCAP_FOREVER);

	return stop ? -EINTR : err;
}

static int read_lines(struct lesson *l)
{
	uint32_t len;
	int err;

	for (;;) {
		err = wait_or_stop(&l->sent);
		if (err < 0)
			return err;
		if (l->eof)
			return 0;
		/* The writer is another program: check what it wrote. */
		len = l->len;
		if (len > sizeof(l->text))
			return -EBADMSG;
		fwrite(l->text, 1, len, stdout);
		fflush(stdout);
		err = shmcap_sem_post(&l->clr2send);
		if (err < 0)
			return err;
	}
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : LESSON_NAME;
	struct sigaction sa = { .sa_handler = on_signal };
	shmcap_cap *region;
	shmcap_map *m;
	struct lesson *l;
	int err, ret = 1;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	/* Exclusive: a second reader of the same name gets EEXIST. */
	err = shmcap_region_create_named(name, sizeof(*l), 0666, &region);
	if (err < 0)
		return fail("create", err);
	/* A named region is not sealed: UNSEALED says we trust the writer. */
	err = shmcap_region_map(region, 0, 0, NULL,
				SHMCAP_MAP_WRITE | SHMCAP_MAP_UNSEALED, &m);
	if (err < 0) {
		fail("map", err);
		goto out_unlink;
	}
	l = shmcap_map_addr(m);
	err = shmcap_sem_init(&l->sent, 0);
	if (err == 0)
		err = shmcap_sem_init(&l->clr2send, 1);
	if (err == 0)
		lesson = l;
	if (err < 0) {
		fail("semaphores", err);
		goto out_unmap;
	}
	printf("Reader: waiting for lines on /dev/shm/shmcap.%s\n", name);
	fflush(stdout);

	err = read_lines(l);
	if (err == -EINTR)
		fprintf(stderr, "posix_reader: stopped\n");
	else if (err < 0)
		fail("read", err);
	else
		ret = 0;
out_unmap:
	shmcap_map_unmap(m);
out_unlink:
	/* The name outlives every process unless removed: remove it. */
	err = shmcap_region_unlink(name);
	if (err < 0)
		fail("unlink", err);
	shmcap_cap_close(region);
	return ret;
}
