/* SPDX-License-Identifier: MIT */
/*
 * fork_int: a parent and its child share an integer (Vicare's appendix on
 * POSIX shared memory, first example).
 *
 * The parent creates an anonymous region, maps it, stores 234 there and
 * forks. The child inherits the mapping, adds 1000 and exits; the parent
 * waits for it and prints 1234. The region has no name: it needs no
 * shm_unlink() and vanishes when both processes let go of it, however
 * they end.
 */
#define _GNU_SOURCE
#include <shmcap.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what, int err)
{
	fprintf(stderr, "fork_int: %s: %s\n", what, shmcap_strerror(err));
	return 1;
}

int main(void)
{
	shmcap_cap *region;
	shmcap_map *m;
	int64_t *n;
	int err, status;
	pid_t pid;

	err = shmcap_region_create(sizeof(*n), 0, &region);
	if (err < 0)
		return fail("create", err);
	err = shmcap_region_map(region, 0, 0, NULL, SHMCAP_MAP_WRITE, &m);
	if (err < 0)
		return fail("map", err);
	/* The mapping is all we need: fork() shares it with the child. */
	shmcap_cap_close(region);
	n = shmcap_map_addr(m);
	*n = 234;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return fail("fork", -errno);
	if (pid == 0) {
		*n += 1000; /* the parent reads it only after we exit */
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0)
		return fail("waitpid", -errno);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fail("child", -ECHILD);
	printf("%lld\n", (long long)*n);
	shmcap_map_unmap(m);
	return 0;
}
