/* SPDX-License-Identifier: MIT */
/*
 * fork_datum: a child writes a structured value into shared memory and
 * its parent reads it (Vicare's appendix on POSIX shared memory, the
 * fasl-write / fasl-read example).
 *
 * The child encodes the Scheme datum
 *
 *	(1 2 #(3 4) ciao "hello" #vu8(99 98 97))
 *
 * (a list holding two integers, a vector, a symbol, a string and a
 * bytevector) into an anonymous region it shares with its parent. The
 * parent waits for it and prints the value in the same notation. The
 * encoding is a "datum frame": a length, then standard CBOR (RFC 8949),
 * so a program in another language can read it too.
 */
#define _GNU_SOURCE
#include <shmcap.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what, int err)
{
	fprintf(stderr, "fork_datum: %s: %s\n", what, shmcap_strerror(err));
	return 1;
}

/* The child: (1 2 #(3 4) ciao "hello" #vu8(99 98 97)), in pre-order. */
static int child(void *buf, size_t size)
{
	static const uint8_t cba[] = { 99, 98, 97 };
	shmcap_datum_writer *w;
	int err;

	err = shmcap_datum_writer_new(buf, size, &w);
	if (err < 0)
		return fail("writer", err);
	/* Errors are sticky: finish reports the first one, if any. */
	shmcap_datum_begin_list(w, 6);
	shmcap_datum_put_int(w, 1);
	shmcap_datum_put_int(w, 2);
	shmcap_datum_begin_vector(w, 2);
	shmcap_datum_put_int(w, 3);
	shmcap_datum_put_int(w, 4);
	shmcap_datum_put_symbol(w, "ciao", 4);
	shmcap_datum_put_text(w, "hello", 5);
	shmcap_datum_put_bytes(w, cba, sizeof(cba));
	err = shmcap_datum_finish(w);
	shmcap_datum_writer_free(w);
	if (err < 0)
		return fail("write the datum", err);
	return 0;
}

int main(void)
{
	shmcap_cap *region;
	shmcap_map *m;
	char text[256];
	int err, status;
	pid_t pid;

	err = shmcap_region_create(4096, 0, &region);
	if (err < 0)
		return fail("create", err);
	err = shmcap_region_map(region, 0, 0, NULL, SHMCAP_MAP_WRITE, &m);
	if (err < 0)
		return fail("map", err);
	shmcap_cap_close(region);

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return fail("fork", -errno);
	if (pid == 0)
		_exit(child(shmcap_map_addr(m), shmcap_map_size(m)));
	if (waitpid(pid, &status, 0) < 0)
		return fail("waitpid", -errno);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fail("child", -ECHILD);

	/*
	 * Decode and print. The reader checks the whole frame first, as it
	 * must for anything read from shared memory: a bad frame is an
	 * error, never a crash.
	 */
	err = shmcap_datum_format(shmcap_map_addr(m), shmcap_map_size(m), text,
				  sizeof(text));
	if (err < 0)
		return fail("read the datum", err);
	if ((size_t)err >= sizeof(text))
		return fail("read the datum", -ENOSPC);
	printf("%s\n", text);
	shmcap_map_unmap(m);
	return 0;
}
