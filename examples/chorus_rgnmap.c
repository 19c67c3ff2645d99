/* SPDX-License-Identifier: MIT */
/*
 * chorus_rgnmap: one actor maps memory found in another actor's address
 * space (ChorusOS Programmer's Guide, Example 7-2, rgnMapFromActor).
 *
 * The first actor allocates a zero-filled region of three pages, writes a
 * message at its start, puts a semaphore after the message and spawns a
 * copy of itself, passing two text arguments: its own identity (aid and
 * 128-bit id) and the address of the region in its address space. The
 * second actor maps one page found at that address in the first actor
 * (shmcap_map_from_actor), prints the message, writes its own in its
 * place and V's the semaphore; the first actor, P-ing it, prints the new
 * message.
 *
 * With --supervisor both actors are supervisor actors. They share one
 * address layout, and the second starts with the region already mapped
 * at the same address, so it uses the address it received as a plain
 * pointer, without any mapping step, as the seed does.
 */
#define _GNU_SOURCE
#include <shmcap.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECOND 1000000000LL
#define MAPPED_AT "Spawned actor mapped shared memory at 0x%" PRIxPTR

/* The first page of the region. */
struct page {
	char text[256];
	shmcap_sem done; /* V'd by the second actor when it has written */
};

static int fail(const char *what, int err)
{
	fprintf(stderr, "chorus_rgnmap: %s: %s\n", what, shmcap_strerror(err));
	return 1;
}

/* The second actor: argv[2] is "AID:ID", argv[3] the region's address. */
static int second(char **argv)
{
	shmcap_actor_id id;
	shmcap_cap *first = NULL;
	shmcap_map *m = NULL;
	struct page *p;
	uintptr_t addr;
	char *end;
	long aid;
	int err;

	aid = strtol(argv[2], &end, 10);
	if (aid < 1 || *end != ':' || shmcap_actor_id_parse(end + 1, &id) < 0)
		return fail("bad actor argument", -EINVAL);
	addr = (uintptr_t)strtoull(argv[3], &end, 16);
	if (addr == 0 || *end != '\0')
		return fail("bad address argument", -EINVAL);

	err = shmcap_privilege(NULL);
	if (err < 0) /* e.g. joining the spawner's group failed */
		return fail("privilege", err);
	if (err == SHMCAP_PRIV_SUPERVISOR) {
		/* Same address layout as the first actor: just use it. */
		p = (struct page *)addr;
	} else {
		/*
		 * Name the first actor by aid and id, so a process that
		 * happened to reuse its pid is never taken for it, then map
		 * one page found at addr in its address space.
		 */
		err = shmcap_actor_open((int32_t)aid, &id, &first);
		if (err < 0)
			return fail("open the first actor", err);
		err = shmcap_map_from_actor(first, (void *)addr,
					    (uint64_t)sysconf(_SC_PAGESIZE),
					    NULL, SHMCAP_MAP_WRITE, 10 * SECOND,
					    &m);
		shmcap_cap_close(first);
		if (err < 0)
			return fail("map from the first actor", err);
		p = shmcap_map_addr(m);
	}

	/* %.*s: the other actor could have left the text unterminated. */
	printf("Spawning actor sent: %.*s\n", (int)sizeof(p->text), p->text);
	fflush(stdout);
	snprintf(p->text, sizeof(p->text), MAPPED_AT, (uintptr_t)p);
	err = shmcap_sem_post(&p->done);
	shmcap_map_unmap(m); /* NULL for a supervisor: nothing to undo */
	if (err < 0)
		return fail("V", err);
	return 0;
}

/* Wait for the semaphore, giving up if the second actor died first. */
static int wait_done(struct page *p, shmcap_cap *child)
{
	int err;

	for (;;) {
		err = shmcap_sem_wait(&p->done, SECOND);
		if (err != -ETIMEDOUT)
			return err;
		if (shmcap_actor_alive(child) == 0 &&
		    shmcap_sem_trywait(&p->done) < 0)
			return -ECHILD;
	}
}

int main(int argc, char **argv)
{
	char who[32 + SHMCAP_ACTOR_ID_TEXT], where[32], same[128];
	char *child_argv[] = { argv[0], "--second", who, where, NULL };
	shmcap_actor_id id;
	shmcap_cap *region, *child;
	shmcap_map *m;
	struct page *p;
	int supervisor, aid, err, status;

	supervisor = argc > 1 && strcmp(argv[1], "--supervisor") == 0;
	if (argc == 4 && strcmp(argv[1], "--second") == 0)
		return second(argv);
	if (argc > 1 && !supervisor) {
		fprintf(stderr, "usage: %s [--supervisor]\n", argv[0]);
		return 1;
	}

	/* A supervisor founds a group: its regions get group addresses. */
	if (supervisor) {
		err = shmcap_privilege_set(SHMCAP_PRIV_SUPERVISOR);
		if (err < 0)
			return fail("become a supervisor actor", err);
	}

	/* rgnAllocate: three zero-filled pages, mapped anywhere. */
	err = shmcap_region_create(3 * (uint64_t)sysconf(_SC_PAGESIZE), 0,
				   &region);
	if (err < 0)
		return fail("create", err);
	err = shmcap_region_map(region, 0, 0, NULL, SHMCAP_MAP_WRITE, &m);
	if (err < 0)
		return fail("map", err);
	p = shmcap_map_addr(m);
	strcpy(p->text, "First actor initializing the shared mem");
	err = shmcap_sem_init(&p->done, 0);
	if (err < 0)
		return fail("semaphore", err);
	printf("First actor: %s region of 3 pages at 0x%" PRIxPTR "\n",
	       supervisor ? "supervisor" : "user", (uintptr_t)p);

	/*
	 * A user actor must let others map the region from its address
	 * space: grant the mapping, read and write, to this user (0600).
	 * Supervisors need no grant: the spawned one inherits the mapping.
	 */
	if (!supervisor) {
		err = shmcap_map_grant(m, region,
				       SHMCAP_RIGHT_READ | SHMCAP_RIGHT_WRITE,
				       0600);
		if (err < 0)
			return fail("grant", err);
	}

	/* Our own "capability" and the address, as text arguments. */
	aid = shmcap_self(&id);
	if (aid < 0)
		return fail("self", aid);
	snprintf(who, sizeof(who), "%d:", aid);
	shmcap_actor_id_format(&id, who + strlen(who),
			       sizeof(who) - strlen(who));
	snprintf(where, sizeof(where), "0x%" PRIxPTR, (uintptr_t)p);

	fflush(stdout);
	err = shmcap_spawn("/proc/self/exe", child_argv, NULL, NULL, NULL, 0,
			   supervisor ? SHMCAP_SPAWN_SUPERVISOR : 0, &child);
	if (err < 0)
		return fail("spawn", err);

	/* semP: wait until the second actor has written its line. */
	err = wait_done(p, child);
	if (err < 0)
		return fail("P", err);
	printf("%.*s\n", (int)sizeof(p->text), p->text);
	snprintf(same, sizeof(same), MAPPED_AT, (uintptr_t)p);
	err = strncmp(p->text, same, sizeof(p->text));
	printf("First actor: that is %s address as mine\n",
	       err == 0 ? "the same" : "not the same");

	err = shmcap_actor_wait(child, SHMCAP_FOREVER, &status);
	if (err < 0)
		return fail("wait", err);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fail("the second actor", -ECHILD);
	shmcap_cap_close(child);
	shmcap_map_unmap(m); /* also withdraws the grant */
	shmcap_cap_close(region);
	return 0;
}
