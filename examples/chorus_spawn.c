/* SPDX-License-Identifier: MIT */
/*
 * chorus_spawn: an actor starts a copy of itself and passes it an
 * argument (ChorusOS Programmer's Guide, Example 5-3, afexecve).
 *
 * Run without arguments, the program spawns itself with the argument
 * "Welcome newly created actor!", prints the new actor's aid (its pid)
 * and waits for it to end. The spawned copy prints the argument it got.
 * Run by hand with an argument, it refuses.
 *
 * How the copy knows it was spawned: the spawner also hands it one
 * capability, an actor capability for the spawner itself, under the name
 * "spawner". shmcap_env_cap() finds it only in a process that
 * shmcap_spawn() started, so "chorus_spawn 'Welcome newly created
 * actor!'" typed in a shell is still refused.
 */
#define _GNU_SOURCE
#include <shmcap.h>

#include <stdio.h>
#include <sys/wait.h>

#define WELCOME "Welcome newly created actor!"

static int fail(const char *what, int err)
{
	fprintf(stderr, "chorus_spawn: %s: %s\n", what, shmcap_strerror(err));
	return 1;
}

/* The spawned actor: it finds its spawner's capability, then speaks. */
static int spawned(const char *arg, shmcap_cap *spawner)
{
	printf("My spawning actor passed me this argument: %s\n", arg);
	printf("(my spawner's aid is %d)\n", shmcap_actor_pid(spawner));
	shmcap_cap_close(spawner);
	return 0;
}

int main(int argc, char **argv)
{
	const char *names[] = { "spawner" };
	char *child_argv[] = { argv[0], WELCOME, NULL };
	shmcap_cap *self, *child, *spawner;
	int aid, err, status;

	if (argc > 1) {
		if (argc == 2 && shmcap_env_cap("spawner", &spawner) == 0)
			return spawned(argv[1], spawner);
		printf("You ran %s with an argument, you should not!\n",
		       argv[0]);
		return 1;
	}

	/* An actor capability for ourselves, to hand to the child. */
	err = shmcap_actor_self(&self);
	if (err < 0)
		return fail("actor_self", err);

	/*
	 * /proc/self/exe is this very program. The child inherits standard
	 * output and the one capability named here, nothing else.
	 */
	fflush(stdout);
	aid = shmcap_spawn("/proc/self/exe", child_argv, NULL, names, &self, 1,
			   0, &child);
	shmcap_cap_close(self);
	if (aid < 0)
		return fail("spawn", aid);
	printf("I succeeded creating actor whose aid is %d\n", aid);
	fflush(stdout);

	/* Unlike the seed, wait for the child so no actor outlives us. */
	err = shmcap_actor_wait(child, SHMCAP_FOREVER, &status);
	shmcap_cap_close(child);
	if (err < 0)
		return fail("wait", err);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fail("the spawned actor", -ECHILD);
	return 0;
}
