/* SPDX-License-Identifier: MIT */
/*
 * chorus_privilege: an actor asks whether it is a user or a supervisor
 * actor (ChorusOS Programmer's Guide, Example 5-1).
 *
 * Run plainly, the program is a user actor, as every process is unless
 * someone made it otherwise. Run with --supervisor, it first prints its
 * own privilege and then starts a copy of itself as a supervisor actor
 * (shmcap_spawn() with SHMCAP_SPAWN_SUPERVISOR), which prints the other
 * line. In secure mode only root may start a supervisor actor; anyone
 * else gets EPERM, printed as an error.
 */
#define _GNU_SOURCE
#include <shmcap.h>

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static int fail(const char *what, int err)
{
	fprintf(stderr, "chorus_privilege: %s: %s\n", what,
		shmcap_strerror(err));
	return 1;
}

int main(int argc, char **argv)
{
	char *child_argv[] = { argv[0], NULL };
	shmcap_cap *child;
	int priv, err, status;

	/* NULL: the calling actor (ChorusOS's K_MYACTOR). */
	priv = shmcap_privilege(NULL);
	if (priv < 0)
		return fail("privilege", priv);
	printf("This actor is running as a %s actor\n",
	       priv == SHMCAP_PRIV_SUPERVISOR ? "supervisor" : "user");

	if (argc < 2 || strcmp(argv[1], "--supervisor") != 0)
		return 0;

	/* Start ourselves again, without arguments, as a supervisor. */
	fflush(stdout);
	err = shmcap_spawn("/proc/self/exe", child_argv, NULL, NULL, NULL, 0,
			   SHMCAP_SPAWN_SUPERVISOR, &child);
	if (err < 0)
		return fail("spawn a supervisor actor", err);
	err = shmcap_actor_wait(child, SHMCAP_FOREVER, &status);
	shmcap_cap_close(child);
	if (err < 0)
		return fail("wait", err);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fail("the supervisor actor", -ECHILD);
	return 0;
}
