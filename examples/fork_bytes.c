/* SPDX-License-Identifier: MIT */
/*
 * fork_bytes: a parent and its child share an array of bytes (Vicare's
 * appendix on POSIX shared memory, second example).
 *
 * The parent fills ten bytes of an anonymous region with 0 to 9 and
 * forks; the child adds 100 to each; once the child has ended the parent
 * prints "100 101 ... 109".
 */
#define _GNU_SOURCE
#include <shmcap.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define COUNT 10

static int fail(const char *what, int err)
{
	fprintf(stderr, "fork_bytes: %s: %s\n", what, shmcap_strerror(err));
	return 1;
}

int main(void)
{
	shmcap_cap *region;
	shmcap_map *m;
	uint8_t *bytes;
	int i, err, status;
	pid_t pid;

	err = shmcap_region_create(COUNT, 0, &region);
	if (err < 0)
		return fail("create", err);
	err = shmcap_region_map(region, 0, 0, NULL, SHMCAP_MAP_WRITE, &m);
	if (err < 0)
		return fail("map", err);
	shmcap_cap_close(region);
	bytes = shmcap_map_addr(m);
	for (i = 0; i < COUNT; i++)
		bytes[i] = (uint8_t)i;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return fail("fork", -errno);
	if (pid == 0) {
		for (i = 0; i < COUNT; i++)
			bytes[i] += 100;
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0)
		return fail("waitpid", -errno);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fail("child", -ECHILD);
	for (i = 0; i < COUNT; i++)
		printf("%s%u", i ? " " : "", bytes[i]);
	printf("\n");
	shmcap_map_unmap(m);
	return 0;
}
