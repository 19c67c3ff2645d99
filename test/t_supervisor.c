/* Description: supervisor actors of a group share one address layout */
/* SPDX-License-Identifier: MIT */
/*
 * Each part runs in a forked child that founds a group of its own
 * (shmcap_privilege_set), so the parts do not see each other's rooms.
 * Members of a group are made in two ways: fork() (a child inherits its
 * parent's membership along with its memory) and shmcap_spawn() with
 * SHMCAP_SPAWN_SUPERVISOR of this very program (/proc/self/exe) in one of
 * the child modes at the bottom, which must find the regions its spawner
 * mapped already mapped at the same addresses, without mapping anything.
 *
 * The hostile parts write into the group's registry directly, with the
 * layout documented in src/privilege.c and repeated here (struct t_reg):
 * a forked member finds it in /proc/self/maps, a spawned one receives it
 * as the capability "shmcap.group" like the library itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"

#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)
#define ROOM (2 * MiB)
#define BASE SHMCAP_SUPERVISOR_BASE
#define ARENA SHMCAP_SUPERVISOR_SIZE
#define CHILD_TIMEOUT 60

/* The registry, as src/privilege.c lays it out. */
#define T_REG_MAGIC 0x52474353u
struct t_reg_entry {
	uint64_t dev, ino, off, len;
};
struct t_reg {
	uint32_t magic;
	uint16_t version;
	uint16_t header_size;
	uint32_t entry_size;
	uint32_t capacity;
	uint64_t arena_base;
	uint64_t arena_size;
	uint64_t next;
	uint32_t count;
	uint32_t reserved[5];
	shmcap_mutex lock;
	struct t_reg_entry entries[];
};
_Static_assert(sizeof(struct t_reg) == 128, "registry header as documented");
#define T_REG_CAPACITY ((uint32_t)(ARENA / ROOM))
#define T_REG_BYTES (sizeof(struct t_reg) + T_REG_CAPACITY * 32ull)

static uint64_t page;

/* ------------------------------------------------------------------------
 * Helpers
 */

static int in_arena(const void *p, uint64_t len)
{
	uint64_t a = (uint64_t)(uintptr_t)p;

	return a >= BASE && a < BASE + ARENA && len <= BASE + ARENA - a;
}

static shmcap_cap *region_new(uint64_t size, unsigned int flags)
{
	shmcap_cap *r;

	CHECK_OK(shmcap_region_create(size, flags, &r));
	return r;
}

static void *map_rw(const shmcap_cap *r, shmcap_map **m)
{
	CHECK_OK(shmcap_region_map(r, 0, 0, NULL, SHMCAP_MAP_WRITE, m));
	return shmcap_map_addr(*m);
}

static void become_supervisor(void)
{
	CHECK_OK(shmcap_privilege_set(SHMCAP_PRIV_SUPERVISOR));
	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_SUPERVISOR);
}

/* This process's mapping of its group's registry (forked members). */
static struct t_reg *find_registry(void)
{
	uint64_t want = (T_REG_BYTES + page - 1) & ~(page - 1);
	unsigned long long start, end;
	struct t_reg *found = NULL;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	CHECK_NOTNULL(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx", &start, &end) != 2 ||
		    end - start != want || !strstr(line, "memfd:shmcap"))
			continue;
		if (((struct t_reg *)(uintptr_t)start)->magic == T_REG_MAGIC) {
			CHECK_NULL(found);
			found = (struct t_reg *)(uintptr_t)start;
		}
	}
	fclose(f);
	CHECK_NOTNULL(found);
	return found;
}

static void send_cap(int sock, shmcap_cap *cap, const void *addr)
{
	uint64_t a = (uint64_t)(uintptr_t)addr;

	CHECK_OK(shmcap_send(sock, &cap, 1, &a, sizeof(a), 0));
}

static shmcap_cap *recv_cap(int sock, void **addr)
{
	shmcap_cap *cap;
	size_t n;
	uint64_t a;

	CHECK_EQ(shmcap_recv(sock, &cap, 1, &n, &a, sizeof(a), NULL, 0),
		 sizeof(a));
	CHECK_EQ(n, 1);
	*addr = (void *)(uintptr_t)a;
	return cap;
}

static void sync_send(int sock, char c)
{
	CHECK_EQ(write(sock, &c, 1), 1);
}

static void sync_recv(int sock, char want)
{
	char c = 0;

	CHECK_EQ(read(sock, &c, 1), 1);
	CHECK_EQ(c, want);
}

/* Run part in a forked child of its own and check that it passed. */
static void run_part(const char *name, void (*part)(void))
{
	pid_t pid;

	printf("part %s\n", name);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		part();
		t_child_pass();
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
}

/* ------------------------------------------------------------------------
 * One member
 */

static void part_placement(void)
{
	shmcap_cap *r1 = region_new(MiB, 0), *r2 = region_new(3 * MiB, 0);
	shmcap_cap *r3 = region_new(page, 0);
	shmcap_map *m1, *m2, *m3, *mx;
	char *a1, *a2, *a3;

	become_supervisor();
	/* Rooms in order: 1 MiB -> 2, 3 MiB -> 4, a page -> 2. */
	a1 = map_rw(r1, &m1);
	a2 = map_rw(r2, &m2);
	a3 = map_rw(r3, &m3);
	CHECK_EQ((uintptr_t)a1, BASE);
	CHECK_EQ((uintptr_t)a2, BASE + ROOM);
	CHECK_EQ((uintptr_t)a3, BASE + 3 * ROOM);
	CHECK(in_arena(a2, 3 * MiB));
	strcpy(a1, "one");

	/* The group's address is taken by the mapping itself. */
	CHECK_ERR(shmcap_region_map(r1, 0, 0, NULL, SHMCAP_MAP_READ, &mx),
		  -EEXIST);
	CHECK_ERR(shmcap_region_map(r1, page, page, NULL, SHMCAP_MAP_READ, &mx),
		  -EEXIST);
	/* Any other address is refused, hint or fixed. */
	CHECK_ERR(shmcap_region_map(r1, 0, 0, a1 + ROOM * 16, SHMCAP_MAP_READ,
				    &mx),
		  -EINVAL);
	CHECK_ERR(shmcap_region_map(r1, 0, 0, a2, SHMCAP_MAP_FIXED, &mx),
		  -EINVAL);
	CHECK_ERR(shmcap_region_map(r1, page, page, a1, SHMCAP_MAP_FIXED, &mx),
		  -EINVAL);

	/* Unmapped, it comes back at the same place; parts go to room+off. */
	shmcap_map_unmap(m1);
	CHECK_OK(shmcap_region_map(r1, page, page, NULL, SHMCAP_MAP_READ, &mx));
	CHECK(shmcap_map_addr(mx) == a1 + page);
	shmcap_map_unmap(mx);
	CHECK_OK(shmcap_region_map(r1, 0, 0, a1, SHMCAP_MAP_FIXED, &m1));
	CHECK(shmcap_map_addr(m1) == a1);
	CHECK_STR_EQ(a1, "one");
	/* Another member's address hint that is right is accepted too. */
	shmcap_map_unmap(m3);
	CHECK_OK(shmcap_region_map(r3, 0, 0, a3, SHMCAP_MAP_READ, &m3));
	CHECK(shmcap_map_addr(m3) == a3);

	t_region_free(r1, m1);
	t_region_free(r2, m2);
	t_region_free(r3, m3);
}

/* Rooms do not stretch, and the arena fills up. */
static void part_room_limits(void)
{
	shmcap_cap *g = region_new(MiB, SHMCAP_REGION_RESIZABLE), *big, *huge;
	shmcap_map *m, *mx;
	uint64_t huge_size = 300 * GiB;
	char *a;

	become_supervisor();
	a = map_rw(g, &m);
	CHECK_EQ((uintptr_t)a, BASE);
	shmcap_map_unmap(m);
	CHECK_OK(shmcap_region_grow(g, 3 * MiB));
	/* Its room is 2 MiB: the first two fit, the third does not. */
	CHECK_OK(shmcap_region_map(g, 0, ROOM, NULL, SHMCAP_MAP_WRITE, &m));
	CHECK(shmcap_map_addr(m) == a);
	CHECK_ERR(shmcap_region_map(g, ROOM, MiB, NULL, SHMCAP_MAP_READ, &mx),
		  -ENOSPC);
	shmcap_map_unmap(m);
	CHECK_ERR(shmcap_region_map(g, 0, 0, NULL, SHMCAP_MAP_READ, &mx),
		  -ENOSPC);

	/* Larger than the whole arena (sparse: no memory is used). */
	if (shmcap_region_create(huge_size, 0, &huge) == 0) {
		CHECK_ERR(shmcap_region_map(huge, 0, page, NULL,
					    SHMCAP_MAP_READ, &mx),
			  -ENOSPC);
		shmcap_cap_close(huge);
	}
	/* Most of the arena, then a region that does not fit any more. */
	CHECK_OK(shmcap_region_create(ARENA - 4 * ROOM, 0, &big));
	CHECK_OK(shmcap_region_map(big, 0, page, NULL, SHMCAP_MAP_READ, &mx));
	CHECK_EQ((uintptr_t)shmcap_map_addr(mx), BASE + ROOM);
	shmcap_map_unmap(mx);
	shmcap_cap_close(big);
	CHECK_OK(shmcap_region_create(4 * ROOM, 0, &big));
	CHECK_ERR(shmcap_region_map(big, 0, page, NULL, SHMCAP_MAP_READ, &mx),
		  -ENOSPC);
	shmcap_cap_close(big);
	/* What still fits still goes: the last three rooms. */
	CHECK_OK(shmcap_region_create(3 * ROOM, 0, &big));
	CHECK_OK(shmcap_region_map(big, 0, 0, NULL, SHMCAP_MAP_READ, &mx));
	CHECK_EQ((uintptr_t)shmcap_map_addr(mx), BASE + ARENA - 3 * ROOM);
	t_region_free(big, mx);
	/* Now nothing fits, not even a page. */
	CHECK_OK(shmcap_region_create(page, 0, &big));
	CHECK_ERR(shmcap_region_map(big, 0, 0, NULL, SHMCAP_MAP_READ, &mx),
		  -ENOSPC);
	shmcap_cap_close(big);
	shmcap_cap_close(g);
}

/* A user actor, before and after, maps as it likes. */
static void part_user(void)
{
	shmcap_cap *r = region_new(MiB, 0);
	void *want = (void *)(uintptr_t)(BASE + 100 * GiB);
	shmcap_map *m, *mu;
	char *a;

	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_USER);
	CHECK_OK(shmcap_region_map(r, 0, 0, want, SHMCAP_MAP_FIXED, &mu));
	CHECK(shmcap_map_addr(mu) == want);
	shmcap_map_unmap(mu);

	become_supervisor();
	CHECK_OK(shmcap_privilege_set(SHMCAP_PRIV_SUPERVISOR)); /* no change */
	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_SUPERVISOR);
	a = map_rw(r, &m);
	CHECK_EQ((uintptr_t)a, BASE);
	strcpy(a, "kept");

	/* Leaving the group keeps the mappings where they are. */
	CHECK_OK(shmcap_privilege_set(SHMCAP_PRIV_USER));
	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_USER);
	CHECK_STR_EQ(a, "kept");
	CHECK_OK(shmcap_region_map(r, 0, 0, NULL, SHMCAP_MAP_READ, &mu));
	CHECK(shmcap_map_addr(mu) != a);
	CHECK_STR_EQ((char *)shmcap_map_addr(mu), "kept");
	shmcap_map_unmap(mu);
	CHECK_OK(shmcap_region_map(r, 0, 0, want, SHMCAP_MAP_FIXED, &mu));
	CHECK(shmcap_map_addr(mu) == want);
	shmcap_map_unmap(mu);

	/* A new group starts from the beginning of the arena again. */
	shmcap_map_unmap(m);
	become_supervisor();
	CHECK_OK(shmcap_region_map(r, 0, 0, NULL, SHMCAP_MAP_READ, &m));
	CHECK_EQ((uintptr_t)shmcap_map_addr(m), BASE);
	t_region_free(r, m);
	CHECK_OK(shmcap_privilege_set(SHMCAP_PRIV_USER));
}

/* ------------------------------------------------------------------------
 * Forked members
 */

static void part_forked_members(void)
{
	shmcap_cap *r1 = region_new(MiB, 0), *r2, *r3, *r4;
	shmcap_map *m1, *m2, *m3, *m4;
	char *a1, *a2, *a3, *a4, *mine;
	void *sent;
	int sv[2];
	pid_t pid;

	become_supervisor();
	a1 = map_rw(r1, &m1);
	strcpy(a1, "founder");
	CHECK_OK(shmcap_socketpair(sv));
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		close(sv[0]);
		/* Membership comes with the memory. */
		CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_SUPERVISOR);
		CHECK_STR_EQ(a1, "founder");
		/* A region of the child's own, sent to the founder. */
		r2 = region_new(MiB, 0);
		a2 = map_rw(r2, &m2);
		CHECK(in_arena(a2, MiB));
		strcpy(a2, "member");
		send_cap(sv[1], r2, a2);
		/* The founder's new region lands where the founder has it. */
		r3 = recv_cap(sv[1], &sent);
		a3 = map_rw(r3, &m3);
		CHECK(a3 == sent);
		CHECK_STR_EQ(a3, "founder 3");
		strcpy(a3, "member 3");
		/* A clash: something of ours sits at the group's address. */
		r4 = recv_cap(sv[1], &sent);
		mine = mmap(sent, page, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			    -1, 0);
		CHECK(mine == sent);
		strcpy(mine, "mine");
		CHECK_ERR(shmcap_region_map(r4, 0, 0, NULL, SHMCAP_MAP_READ,
					    &m4),
			  -EEXIST);
		CHECK_STR_EQ(mine, "mine");
		munmap(mine, page);
		CHECK_OK(shmcap_region_map(r4, 0, 0, NULL, SHMCAP_MAP_READ,
					   &m4));
		CHECK(shmcap_map_addr(m4) == sent);
		CHECK_STR_EQ((char *)sent, "founder 4");
		sync_send(sv[1], 'd');
		t_region_free(r2, m2);
		t_region_free(r3, m3);
		t_region_free(r4, m4);
		t_child_exit(r1, m1);
	}
	close(sv[1]);
	r2 = recv_cap(sv[0], &sent);
	a2 = map_rw(r2, &m2);
	CHECK(a2 == sent);
	CHECK_STR_EQ(a2, "member");

	r3 = region_new(MiB, 0);
	a3 = map_rw(r3, &m3);
	strcpy(a3, "founder 3");
	send_cap(sv[0], r3, a3);
	r4 = region_new(page, 0);
	a4 = map_rw(r4, &m4);
	strcpy(a4, "founder 4");
	send_cap(sv[0], r4, a4);
	sync_recv(sv[0], 'd');
	CHECK_STR_EQ(a3, "member 3");
	t_reap_ok(pid, CHILD_TIMEOUT);
	close(sv[0]);
	t_region_free(r1, m1);
	t_region_free(r2, m2);
	t_region_free(r3, m3);
	t_region_free(r4, m4);
}

/*
 * Members mapping the same regions at once, in different orders, all get
 * the same address for each; the founder checks what they wrote.
 */
#define RACE_REGIONS 24
#define RACE_MEMBERS 3
#define RACE_SIZE(i) ((uint64_t)((i) % 3 + 1) * MiB)
#define RACE_ROOM(i) ((RACE_SIZE(i) + ROOM - 1) / ROOM * ROOM)

static void part_race(void)
{
	shmcap_cap *r[RACE_REGIONS], *res;
	shmcap_map *m[RACE_REGIONS], *mres;
	uint64_t *got;
	pid_t pids[RACE_MEMBERS];
	int i, k, j;

	become_supervisor();
	res = region_new(page, 0);
	got = map_rw(res, &mres);
	for (i = 0; i < RACE_REGIONS; i++)
		r[i] = region_new(RACE_SIZE(i), 0);
	for (k = 0; k < RACE_MEMBERS; k++) {
		pids[k] = t_fork_child(CHILD_TIMEOUT);
		if (pids[k] != 0)
			continue;
		for (j = 0; j < RACE_REGIONS; j++) {
			i = k % 2 ? RACE_REGIONS - 1 - j :
				    (j + k * 7) % RACE_REGIONS;
			CHECK_OK(shmcap_region_map(r[i], 0, 0, NULL,
						   SHMCAP_MAP_READ, &m[i]));
			t_store64(&got[k * RACE_REGIONS + i],
				  (uintptr_t)shmcap_map_addr(m[i]));
		}
		t_child_pass();
	}
	for (k = 0; k < RACE_MEMBERS; k++)
		t_reap_ok(pids[k], CHILD_TIMEOUT);
	for (i = 0; i < RACE_REGIONS; i++) {
		CHECK_OK(shmcap_region_map(r[i], 0, 0, NULL, SHMCAP_MAP_READ,
					   &m[i]));
		CHECK(in_arena(shmcap_map_addr(m[i]), shmcap_map_size(m[i])));
		for (k = 0; k < RACE_MEMBERS; k++)
			CHECK_EQ(t_load64(&got[k * RACE_REGIONS + i]),
				 (uintptr_t)shmcap_map_addr(m[i]));
		/* Rooms never overlap. */
		for (j = 0; j < i; j++) {
			uintptr_t a = (uintptr_t)shmcap_map_addr(m[i]);
			uintptr_t b = (uintptr_t)shmcap_map_addr(m[j]);

			CHECK(a >= b + RACE_ROOM(j) || b >= a + RACE_ROOM(i));
		}
	}
	for (i = 0; i < RACE_REGIONS; i++)
		t_region_free(r[i], m[i]);
	t_region_free(res, mres);
}

/* Threads of one member mapping at once. */
#define THREADS 4
#define PER_THREAD 16

struct thread_arg {
	shmcap_cap *r[PER_THREAD];
	shmcap_map *m[PER_THREAD];
};

static void *thread_maps(void *p)
{
	struct thread_arg *t = p;
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		CHECK_OK(shmcap_region_create(page, 0, &t->r[i]));
		CHECK_OK(shmcap_region_map(t->r[i], 0, 0, NULL,
					   SHMCAP_MAP_WRITE, &t->m[i]));
		*(volatile int *)shmcap_map_addr(t->m[i]) = i;
	}
	return NULL;
}

static void part_threads(void)
{
	static struct thread_arg args[THREADS];
	pthread_t th[THREADS];
	uint64_t seen[THREADS * PER_THREAD];
	int i, j, n = 0;

	become_supervisor();
	for (i = 0; i < THREADS; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, thread_maps, &args[i]),
			 0);
	for (i = 0; i < THREADS; i++)
		CHECK_EQ(pthread_join(th[i], NULL), 0);
	for (i = 0; i < THREADS; i++)
		for (j = 0; j < PER_THREAD; j++) {
			uint64_t a = (uintptr_t)shmcap_map_addr(args[i].m[j]);
			int k;

			CHECK(in_arena((void *)(uintptr_t)a, page));
			CHECK_EQ((a - BASE) % ROOM, 0);
			for (k = 0; k < n; k++)
				CHECK_NE(seen[k], a);
			seen[n++] = a;
			t_region_free(args[i].r[j], args[i].m[j]);
		}
	CHECK_EQ(n, THREADS * PER_THREAD);
}

/* ------------------------------------------------------------------------
 * A hostile or dying member
 */

static void check_corrupt(shmcap_cap *r)
{
	shmcap_map *m;

	CHECK_ERR(shmcap_region_map(r, 0, 0, NULL, SHMCAP_MAP_READ, &m),
		  -EBADMSG);
}

static void part_corrupt(void)
{
	shmcap_cap *r1 = region_new(MiB, 0), *r2 = region_new(MiB, 0);
	shmcap_map *m1, *m2;
	struct t_reg *reg, saved;
	struct t_reg_entry e0;
	uint64_t seed = t_rng_seed();
	int i;

	become_supervisor();
	map_rw(r1, &m1);
	reg = find_registry();
	memcpy(&saved, reg, sizeof(saved));
	memcpy(&e0, &reg->entries[0], sizeof(e0));
	CHECK_EQ(reg->count, 1);

#define CORRUPT(stmt)                                                          \
	do {                                                                   \
		stmt;                                                          \
		check_corrupt(r2);                                             \
		memcpy(reg, &saved, sizeof(saved));                            \
		memcpy(&reg->entries[0], &e0, sizeof(e0));                     \
	} while (0)

	CORRUPT(reg->magic ^= 1);
	CORRUPT(reg->version = 2);
	CORRUPT(reg->capacity = UINT32_MAX);
	CORRUPT(reg->entry_size = 8);
	CORRUPT(reg->arena_base = 0x10000);
	CORRUPT(reg->count = T_REG_CAPACITY + 1);
	CORRUPT(reg->next = ROOM + 4096);
	CORRUPT(reg->next = ARENA + ROOM);
	CORRUPT(reg->entries[0].off = ARENA);
	CORRUPT(reg->entries[0].off = UINT64_MAX - ROOM + 1);
	CORRUPT(reg->entries[0].len = 0);
	CORRUPT(reg->entries[0].len = UINT64_MAX - ROOM + 1);
	CORRUPT(reg->entries[0].len = 2 * ROOM);
	CORRUPT(reg->entries[0].off = 4096);
	CORRUPT(reg->lock.magic = 0);
	CORRUPT(reg->lock.state = 7);
	/* Two entries whose rooms overlap. */
	CORRUPT(reg->count = 2; reg->next = 2 * ROOM;
		memcpy(&reg->entries[1], &e0, sizeof(e0));
		reg->entries[1].ino++);
	/* Garbage all over the header and the first entries. */
	printf("seed %" PRIu64 "\n", seed);
	for (i = 0; i < 200; i++) {
		uint64_t *w = (uint64_t *)reg;
		shmcap_map *m;
		int j, ret;

		/*
		 * Header words often, entries always; not the lock, whose
		 * garbage is t_mutex's business (an owner that looks alive
		 * would only make this wait for the registry's time limit).
		 */
		for (j = 0; j < 16 + 32; j++)
			if (j >= 16 || (j < 8 && t_rnd() % 3 == 0))
				w[j] = t_rnd() % 8 ? t_rnd() : t_rnd() % 4;
		ret = shmcap_region_map(r2, 0, 0, NULL, SHMCAP_MAP_READ, &m);
		if (ret == 0) {
			CHECK(in_arena(shmcap_map_addr(m), MiB));
			shmcap_map_unmap(m);
		} else if (ret != -EBADMSG && ret != -EEXIST &&
			   ret != -ENOSPC) {
			FAIL("map on a garbled registry: %s",
			     shmcap_err_name(ret));
		}
		memcpy(reg, &saved, sizeof(saved));
		memcpy(&reg->entries[0], &e0, sizeof(e0));
	}
	/* Repaired, it works again, and r1 keeps its room. */
	map_rw(r2, &m2);
	CHECK_EQ((uintptr_t)shmcap_map_addr(m2), BASE + ROOM);
	shmcap_map_unmap(m1);
	map_rw(r1, &m1);
	CHECK_EQ((uintptr_t)shmcap_map_addr(m1), BASE);
	t_region_free(r1, m1);
	t_region_free(r2, m2);
#undef CORRUPT
}

/*
 * A member killed holding the registry's lock, in the middle of an
 * append: after writing an entry it never published, or after taking a
 * room it never used. The next member recovers the lock and goes on.
 */
static void die_holding(struct t_reg *reg, int take_room)
{
	int sv[2];
	pid_t pid;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		uint32_t n;

		close(sv[0]);
		CHECK_OK(shmcap_mutex_lock(&reg->lock, SHMCAP_FOREVER));
		n = reg->count;
		reg->entries[n].dev = 1;
		reg->entries[n].ino = 2;
		reg->entries[n].off = 3;
		reg->entries[n].len = 4;
		if (take_room)
			t_store64(&reg->next, reg->next + ROOM);
		sync_send(sv[1], 'l');
		for (;;)
			pause();
	}
	close(sv[1]);
	sync_recv(sv[0], 'l');
	kill(pid, SIGKILL);
	t_check_killed(pid, CHILD_TIMEOUT);
	close(sv[0]);
}

static void part_dead_holder(void)
{
	shmcap_cap *r1 = region_new(MiB, 0), *r2 = region_new(MiB, 0);
	shmcap_cap *r3 = region_new(MiB, 0);
	shmcap_map *m1, *m2, *m3;
	struct t_reg *reg;

	become_supervisor();
	map_rw(r1, &m1);
	reg = find_registry();

	die_holding(reg, 0);
	map_rw(r2, &m2);
	CHECK_EQ((uintptr_t)shmcap_map_addr(m2), BASE + ROOM);
	CHECK_EQ(reg->count, 2);

	die_holding(reg, 1);
	map_rw(r3, &m3);
	/* The room the dead member took stays unused. */
	CHECK_EQ((uintptr_t)shmcap_map_addr(m3), BASE + 3 * ROOM);
	CHECK_EQ(reg->count, 3);
	CHECK_EQ(reg->lock.state, 0);

	t_region_free(r1, m1);
	t_region_free(r2, m2);
	t_region_free(r3, m3);
}

/* ------------------------------------------------------------------------
 * Spawned members: this program again, in a child mode (see main)
 */

#define SEC ((int64_t)1000000000)
#define SELF "/proc/self/exe"

/* What the founder leaves in its first region for its spawned members. */
struct shared {
	char *msg; /* raw pointers, valid in every member */
	char *reply;
	char *ro_text; /* in a region mapped read-only */
	char *r3;      /* set by the child: where "r3" went */
	char *reply2;
};

/*
 * Spawn this program in the mode args with the given named caps. Returns
 * what shmcap_spawn() returned; the child's actor capability goes to
 * *actor_out if it is not NULL, else the child is waited for and must
 * pass.
 */
static int spawn_self(const char *const *args, const char *const names[],
		      shmcap_cap *const caps[], size_t ncaps,
		      unsigned int flags, shmcap_cap **actor_out)
{
	char *argv[8];
	shmcap_cap *actor;
	int i, ret, st = -1;

	argv[0] = "t_supervisor";
	for (i = 0; args[i]; i++)
		argv[i + 1] = (char *)args[i];
	argv[i + 1] = NULL;
	ret = shmcap_spawn(SELF, argv, NULL, names, caps, ncaps, flags, &actor);
	if (ret < 0)
		return ret;
	if (actor_out) {
		*actor_out = actor;
		return ret;
	}
	CHECK_OK(shmcap_actor_wait(actor, 60 * SEC, &st));
	shmcap_cap_close(actor);
	CHECK_CHILD_OK(st);
	return ret;
}

static void spawn_ok(const char *const *args, const char *const names[],
		     shmcap_cap *const caps[], size_t ncaps, unsigned int flags)
{
	CHECK_OK(spawn_self(args, names, caps, ncaps, flags, NULL));
}

/* The number of distinct files mapped in the arena. */
static int arena_regions(void)
{
	unsigned long long start, end, ino, seen[256];
	int n = 0, i, known;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	CHECK_NOTNULL(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx %*s %*x %*x:%*x %llu", &start, &end,
			   &ino) != 3 ||
		    !in_arena((void *)(uintptr_t)start, end - start))
			continue;
		for (known = 0, i = 0; i < n; i++)
			known |= seen[i] == ino;
		if (!known && n < 256)
			seen[n++] = ino;
	}
	fclose(f);
	return n;
}

/*
 * The founder builds a structure of raw pointers; a supervisor it spawns
 * follows them without mapping anything, maps a new region ("r3") that
 * the founder then finds at the same address, and spawns a supervisor of
 * its own that sees all of it too.
 */
static void part_spawned_member(void)
{
	shmcap_cap *r1 = region_new(MiB, 0), *r2 = region_new(page, 0);
	shmcap_cap *r2ro, *r3 = region_new(3 * MiB, 0);
	shmcap_map *m1, *m2, *m3;
	const char *names[] = { "r3" };
	char addr[32], *a1, *a3;
	const char *args[] = { "child-raw", addr, NULL };
	struct shared *sh;

	become_supervisor();
	a1 = map_rw(r1, &m1);
	strcpy(map_rw(r2, &m2), "read-only text");
	shmcap_map_unmap(m2);
	CHECK_OK(shmcap_cap_derive(r2, SHMCAP_RIGHT_READ, &r2ro));
	shmcap_cap_close(r2);
	CHECK_OK(shmcap_region_map(r2ro, 0, 0, NULL, SHMCAP_MAP_READ, &m2));
	sh = (struct shared *)a1;
	sh->msg = a1 + 4096;
	sh->reply = a1 + 8192;
	sh->reply2 = a1 + 12288;
	sh->ro_text = shmcap_map_addr(m2);
	strcpy(sh->msg, "hello from the founder");
	snprintf(addr, sizeof(addr), "%p", (void *)sh);

	spawn_ok(args, names, &r3, 1, SHMCAP_SPAWN_SUPERVISOR);
	CHECK_STR_EQ(sh->reply, "child was here");
	CHECK_STR_EQ(sh->reply2, "grandchild was here");
	a3 = map_rw(r3, &m3);
	CHECK(a3 == sh->r3);
	CHECK_STR_EQ(a3, "r3 by the child");

	t_region_free(r1, m1);
	t_region_free(r2ro, m2);
	t_region_free(r3, m3);
}

static int mode_raw(int argc, char **argv, int grandchild)
{
	struct shared *sh;
	shmcap_cap *r3, *r1copy;
	shmcap_map *m3, *mx;
	char *a3;
	const char *args[] = { "child-raw2", argv[2], NULL };

	CHECK_EQ(argc, 3);
	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_SUPERVISOR);
	CHECK_EQ(sscanf(argv[2], "%p", (void **)&sh), 1);
	/* No mapping step: the pointers the founder stored just work. */
	CHECK_STR_EQ(sh->msg, "hello from the founder");
	CHECK_STR_EQ(sh->ro_text, "read-only text");
	if (grandchild) {
		CHECK_STR_EQ(sh->r3, "r3 by the child");
		strcpy(sh->reply2, "grandchild was here");
		return T_EXIT_PASS;
	}
	strcpy(sh->reply, "child was here");
	/* The regions are already in place: mapping one again clashes. */
	CHECK_OK(shmcap_env_cap("shmcap.region.0", &r1copy));
	CHECK_ERR(shmcap_region_map(r1copy, 0, 0, NULL, SHMCAP_MAP_READ, &mx),
		  -EEXIST);
	shmcap_cap_close(r1copy);
	/* A region the founder never mapped gets its room here. */
	CHECK_OK(shmcap_env_cap("r3", &r3));
	a3 = map_rw(r3, &m3);
	CHECK(in_arena(a3, 3 * MiB));
	strcpy(a3, "r3 by the child");
	sh->r3 = a3;
	/* A supervisor of ours sees the founder's regions and ours. */
	spawn_ok(args, NULL, NULL, 0, SHMCAP_SPAWN_SUPERVISOR);
	t_region_free(r3, m3);
	return T_EXIT_PASS;
}

/* A supervisor's user actors, and a user's supervisor, found nothing. */
static void part_spawned_user_and_founder(void)
{
	shmcap_cap *r = region_new(MiB, 0), *r0 = region_new(MiB, 0);
	const char *names[] = { "r" };
	const char *user[] = { "child-user", NULL };
	const char *founder[] = { "child-founder", NULL };
	shmcap_map *m0;

	/* Spawned by a user actor: a group of its own. */
	spawn_ok(founder, names, &r, 1, SHMCAP_SPAWN_SUPERVISOR);
	become_supervisor();
	map_rw(r0, &m0);
	spawn_ok(user, names, &r, 1, 0);
	t_region_free(r0, m0);
	shmcap_cap_close(r);
}

static int mode_user(void)
{
	shmcap_cap *r, *g;
	shmcap_map *m;

	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_USER);
	CHECK_ERR(shmcap_env_cap("shmcap.group", &g), -ENOENT);
	CHECK_ERR(shmcap_env_cap("shmcap.region.0", &g), -ENOENT);
	CHECK_EQ(arena_regions(), 0);
	CHECK_OK(shmcap_env_cap("r", &r));
	map_rw(r, &m);
	CHECK(!in_arena(shmcap_map_addr(m), MiB));
	t_region_free(r, m);
	return T_EXIT_PASS;
}

static int mode_founder(void)
{
	shmcap_cap *r, *g;
	shmcap_map *m;

	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_SUPERVISOR);
	CHECK_ERR(shmcap_env_cap("shmcap.group", &g), -ENOENT);
	CHECK_OK(shmcap_env_cap("r", &r));
	map_rw(r, &m);
	CHECK_EQ((uintptr_t)shmcap_map_addr(m), BASE);
	t_region_free(r, m);
	return T_EXIT_PASS;
}

/*
 * Regions passed on are those still mapped; a spawned supervisor can
 * take SHMCAP__EXTRA_MAX - 1 (71) of them and no more, and the copies of
 * regions unmapped and closed are let go.
 */
#define PASS_MAX 71

static void part_passed_on(void)
{
	shmcap_cap *r[PASS_MAX + 1], *x;
	shmcap_map *m[PASS_MAX + 1], *mx;
	char want[16];
	const char *args[] = { "child-count", want, NULL };
	int i, fds;

	become_supervisor();
	fds = t_count_fds();
	/* Unmapped and closed: its copy goes at the next map. */
	x = region_new(page, 0);
	map_rw(x, &mx);
	CHECK_EQ(t_count_fds(), fds + 2);
	shmcap_map_unmap(mx);
	shmcap_cap_close(x);
	CHECK_EQ(t_count_fds(), fds + 1);
	for (i = 0; i <= PASS_MAX; i++) {
		r[i] = region_new(page, 0);
		map_rw(r[i], &m[i]);
		if (i == 0)
			CHECK_EQ(t_count_fds(), fds + 2);
	}
	CHECK_EQ(t_count_fds(), fds + 2 * (PASS_MAX + 1));
	CHECK_ERR(spawn_self(args, NULL, NULL, 0, SHMCAP_SPAWN_SUPERVISOR,
			     NULL),
		  -E2BIG);
	t_region_free(r[PASS_MAX], m[PASS_MAX]);
	snprintf(want, sizeof(want), "%d", PASS_MAX);
	spawn_ok(args, NULL, NULL, 0, SHMCAP_SPAWN_SUPERVISOR);
	/* Mapped but its capability closed: still passed on. */
	shmcap_cap_close(r[0]);
	spawn_ok(args, NULL, NULL, 0, SHMCAP_SPAWN_SUPERVISOR);
	for (i = 0; i < PASS_MAX; i++)
		shmcap_map_unmap(m[i]);
	for (i = 1; i < PASS_MAX; i++)
		shmcap_cap_close(r[i]);
	snprintf(want, sizeof(want), "0");
	spawn_ok(args, NULL, NULL, 0, SHMCAP_SPAWN_SUPERVISOR);
	CHECK_EQ(t_count_fds(), fds);
}

static int mode_count(int argc, char **argv)
{
	CHECK_EQ(argc, 3);
	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_SUPERVISOR);
	CHECK_EQ(arena_regions(), atoi(argv[2]));
	return T_EXIT_PASS;
}

/* A spawned member killed while it holds the registry's lock. */
static void part_spawned_dies_holding(void)
{
	shmcap_cap *r1 = region_new(MiB, 0), *r2 = region_new(MiB, 0);
	shmcap_cap *locked, *actor;
	shmcap_map *m1, *m2;
	const char *names[] = { "locked" };
	const char *args[] = { "child-lock", NULL };
	int st;

	become_supervisor();
	map_rw(r1, &m1);
	CHECK_OK(shmcap_notifier_create(&locked));
	CHECK_OK(spawn_self(args, names, &locked, 1, SHMCAP_SPAWN_SUPERVISOR,
			    &actor));
	CHECK_OK(shmcap_notifier_wait(locked, 30 * SEC));
	CHECK_OK(shmcap_actor_signal(actor, SIGKILL));
	CHECK_OK(shmcap_actor_wait(actor, 30 * SEC, &st));
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	shmcap_cap_close(actor);
	map_rw(r2, &m2);
	CHECK_EQ((uintptr_t)shmcap_map_addr(m2), BASE + ROOM);
	shmcap_cap_close(locked);
	t_region_free(r1, m1);
	t_region_free(r2, m2);
}

static int mode_lock(void)
{
	shmcap_cap *g, *locked;
	struct t_reg *reg;

	CHECK_OK(shmcap_env_cap("shmcap.group", &g));
	CHECK_OK(shmcap_env_cap("locked", &locked));
	reg = mmap(NULL, T_REG_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
		   shmcap_cap_fd(g), 0);
	CHECK(reg != MAP_FAILED);
	CHECK_EQ(reg->magic, T_REG_MAGIC);
	CHECK_OK(shmcap_mutex_lock(&reg->lock, 30 * SEC));
	reg->entries[reg->count].ino = 12345; /* half an append */
	CHECK_OK(shmcap_notifier_signal(locked));
	for (;;)
		pause();
}

/*
 * Joining fails on a corrupt registry: the child is a user actor and says
 * why; it may still found a group of its own.
 */
static void part_spawned_bad_registry(void)
{
	shmcap_cap *r1 = region_new(MiB, 0), *r = region_new(MiB, 0);
	const char *names[] = { "r" };
	const char *args[] = { "child-bad-join", NULL };
	shmcap_map *m1;
	struct t_reg *reg;

	become_supervisor();
	map_rw(r1, &m1);
	reg = find_registry();
	reg->count = T_REG_CAPACITY + 5;
	spawn_ok(args, names, &r, 1, SHMCAP_SPAWN_SUPERVISOR);
	reg->count = 1;
	reg->magic = 0;
	spawn_ok(args, names, &r, 1, SHMCAP_SPAWN_SUPERVISOR);
	reg->magic = T_REG_MAGIC;
	shmcap_cap_close(r);
	t_region_free(r1, m1);
}

static int mode_bad_join(void)
{
	shmcap_cap *r;
	shmcap_map *m;

	CHECK_ERR(shmcap_privilege(NULL), -EBADMSG);
	CHECK_EQ(arena_regions(), 0);
	CHECK_OK(shmcap_env_cap("r", &r));
	map_rw(r, &m);
	CHECK(!in_arena(shmcap_map_addr(m), MiB));
	shmcap_map_unmap(m);
	become_supervisor();
	map_rw(r, &m);
	CHECK_EQ((uintptr_t)shmcap_map_addr(m), BASE);
	t_region_free(r, m);
	return T_EXIT_PASS;
}

int main(int argc, char **argv)
{
	int fds;

	page = (uint64_t)sysconf(_SC_PAGESIZE);
	if (argc > 1) {
		t_watchdog(CHILD_TIMEOUT);
		if (strcmp(argv[1], "child-raw") == 0)
			return mode_raw(argc, argv, 0);
		if (strcmp(argv[1], "child-raw2") == 0)
			return mode_raw(argc, argv, 1);
		if (strcmp(argv[1], "child-user") == 0)
			return mode_user();
		if (strcmp(argv[1], "child-founder") == 0)
			return mode_founder();
		if (strcmp(argv[1], "child-count") == 0)
			return mode_count(argc, argv);
		if (strcmp(argv[1], "child-lock") == 0)
			return mode_lock();
		if (strcmp(argv[1], "child-bad-join") == 0)
			return mode_bad_join();
		FAIL("unknown mode %s", argv[1]);
	}
	t_watchdog(110);
	fds = t_count_fds();

	run_part("placement", part_placement);
	run_part("room_limits", part_room_limits);
	run_part("user", part_user);
	run_part("forked_members", part_forked_members);
	run_part("race", part_race);
	run_part("threads", part_threads);
	run_part("corrupt", part_corrupt);
	run_part("dead_holder", part_dead_holder);
	run_part("spawned_member", part_spawned_member);
	run_part("spawned_user_and_founder", part_spawned_user_and_founder);
	run_part("passed_on", part_passed_on);
	run_part("spawned_dies_holding", part_spawned_dies_holding);
	run_part("spawned_bad_registry", part_spawned_bad_registry);

	CHECK_EQ(t_count_fds(), fds);
	CHECK_EQ(shmcap_privilege(NULL), SHMCAP_PRIV_USER);
	return T_EXIT_PASS;
}
