/* SPDX-License-Identifier: MIT */
/*
 * token_pass: hand a capability to a new program through its argv, as the
 * ChorusOS examples pass a capability as a string.
 *
 * Run without arguments, it creates a region, writes into it, issues a
 * one-shot token for a READ-only capability and runs itself with the
 * token as its argument. The new program resolves the token (the issuer's
 * thread checks the key and the caller's uid and hands over a descriptor),
 * maps the region and prints what it finds. A second resolution of the
 * same token is refused.
 */
#define _GNU_SOURCE
#include <shmcap.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECOND 1000000000LL

static int fail(const char *what, int err)
{
	fprintf(stderr, "token_pass: %s: %s\n", what, shmcap_strerror(err));
	return 1;
}

static int resolver(const char *token)
{
	shmcap_cap *cap;
	shmcap_map *m;
	int err;

	err = shmcap_token_resolve(token, 5 * SECOND, &cap);
	if (err < 0)
		return fail("resolve", err);
	err = shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_READ, &m);
	if (err < 0)
		return fail("map", err);
	printf("child:  resolved a capability with rights %s; region says "
	       "\"%s\"\n",
	       shmcap_cap_rights(cap) == SHMCAP_RIGHT_READ ? "READ" : "?",
	       (char *)shmcap_map_addr(m));
	shmcap_map_unmap(m);
	shmcap_cap_close(cap);
	err = shmcap_token_resolve(token, 5 * SECOND, &cap);
	printf("child:  resolving the one-shot token again: %s\n",
	       shmcap_err_name(err));
	if (err >= 0)
		shmcap_cap_close(cap);
	return err == -EKEYREVOKED ? 0 : 1;
}

int main(int argc, char **argv)
{
	char token[SHMCAP_TOKEN_MAX];
	shmcap_cap *rw, *ro;
	shmcap_issuer *iss;
	shmcap_map *m;
	int err, status;
	pid_t pid;

	if (argc == 2)
		return resolver(argv[1]);

	err = shmcap_region_create(4096, 0, &rw);
	if (err < 0)
		return fail("create", err);
	err = shmcap_region_map(rw, 0, 0, NULL, SHMCAP_MAP_WRITE, &m);
	if (err < 0)
		return fail("map", err);
	strcpy(shmcap_map_addr(m), "passed by token");
	err = shmcap_cap_derive(rw, SHMCAP_RIGHT_READ, &ro);
	if (err < 0)
		return fail("derive", err);
	err = shmcap_issuer_create(SHMCAP_ISSUER_THREAD, &iss);
	if (err < 0)
		return fail("issuer", err);
	err = shmcap_token_issue(iss, ro, SHMCAP_TOKEN_ONCE, token,
				 sizeof(token));
	if (err < 0)
		return fail("issue", err);
	/* The issuer holds its own copy; ours is no longer needed. */
	shmcap_cap_close(ro);
	printf("parent: token %.24s... (%d characters)\n", token, err);

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", argv[0], token, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return fail("child", -ECHILD);

	shmcap_issuer_destroy(iss);
	shmcap_map_unmap(m);
	shmcap_cap_close(rw);
	printf("parent: done\n");
	return 0;
}
