/* SPDX-License-Identifier: MIT */
/*
 * Privilege: ChorusOS user and supervisor actors, secure mode, and the
 * groups in which supervisor actors share one address layout.
 *
 * Overview: a user actor maps regions wherever it (or the kernel) likes.
 * Supervisor actors belong to a group, and every region that a member
 * maps is placed at the address the group assigned to that region, in the
 * reserved arena [SHMCAP_SUPERVISOR_BASE, + SHMCAP_SUPERVISOR_SIZE): a raw
 * pointer into a region is then valid in every member. The assignment is
 * kept in the group's registry, an anonymous region that every member
 * maps (anywhere, not in the arena) and that is handed from a supervisor
 * to the supervisors it spawns under the reserved name "shmcap.group".
 *
 * Privilege of the caller: a process is a supervisor if it called
 * shmcap_privilege_set(SHMCAP_PRIV_SUPERVISOR), or if shmcap_spawn() with
 * SHMCAP_SPAWN_SUPERVISOR started it. Such a child finds
 * SHMCAP_PRIVILEGE=PPPPPPPPPP;supervisor in its environment, PPPPPPPPPP
 * being its own pid in ten digits (spawn writes the pid in the child
 * before exec); a value carrying another pid was inherited through a
 * plain fork and exec and is ignored. The library's constructor evaluates
 * the variable before main() and joins the group: it maps the registry
 * passed as "shmcap.group" (or founds a new group if there is none: the
 * spawner was a user actor) and then maps every region passed as
 * "shmcap.region.N" at its group address, so the program can follow the
 * raw pointers its spawner computed without a mapping step of its own. A
 * failure to join is remembered and reported by shmcap_privilege(NULL);
 * the process then stays a user actor. Without the variable the
 * constructor costs one getenv().
 *
 * Privilege of another actor: read from its /proc/PID/environ, i.e. the
 * environment it was started with. An actor that became a supervisor with
 * shmcap_privilege_set() is therefore reported as a user actor to others
 * (the kernel lets nobody but a privileged process rewrite the area that
 * file shows). The pidfd is checked after reading, so a pid reused by
 * another process is never read as the actor's.
 *
 * Secure mode: on when /etc/shmcap/secure exists (any error other than
 * "no such file" counts as existing, so a directory that hides the file
 * from non-root users does not switch it off for them) or the environment
 * holds SHMCAP_SECURE=1; evaluated once per process and passed on to every
 * actor spawned. In secure mode only an effective uid 0 may found or join
 * a group, spawn a supervisor, or be taken for a supervisor: a non-root
 * process that forges SHMCAP_PRIVILEGE is a user actor.
 *
 * Placement (shmcap__group_place(), called by shmcap_region_map()): a
 * region is identified by its file's (st_dev, st_ino), the same through
 * every descriptor in every process. The first member to map a region
 * gives it a room: its size rounded up to 2 MiB, taken from a bump
 * pointer; the mapping of [offset, offset + length) goes to room +
 * offset, with MAP_FIXED_NOREPLACE (region.c), so a clash is -EEXIST and
 * never replaces anything. Rooms are never freed or reused within a group:
 * a stale raw pointer then faults or reads the old region's room, never
 * another region. A region that grew beyond its room cannot be mapped
 * beyond it (-ENOSPC).
 *
 * Inode numbers can be reused once a file is freed (memfds wrap after 2^32
 * on some kernels), so a new region may find the entry of a dead one. That
 * is safe: a file that anything still maps or holds open keeps its inode,
 * so the reused entry's room is mapped by nobody, and the new region simply
 * inherits it (-ENOSPC if it is larger than the room).
 *
 * Registry layout (host byte order; everything is validated on every use,
 * a bad value gives -EBADMSG):
 *
 *   offset size field
 *   0      4    magic        REG_MAGIC "SCGR"
 *   4      2    version      REG_VERSION
 *   6      2    header_size  128
 *   8      4    entry_size   32
 *   12     4    capacity     REG_CAPACITY entries follow the header
 *   16     8    arena_base   SHMCAP_SUPERVISOR_BASE of the founder
 *   24     8    arena_size   SHMCAP_SUPERVISOR_SIZE of the founder
 *   32     8    next         first free byte of the arena, as an offset
 *                            from arena_base; a multiple of 2 MiB
 *   40     4    count        entries published
 *   44     20   reserved     0
 *   64     64   lock         a shmcap_mutex guarding next, count, entries
 *   128    32*i entry i:     0 dev, 8 ino, 16 off (room's offset from
 *                            arena_base, 2 MiB aligned), 24 len (room's
 *                            length, a non-zero multiple of 2 MiB)
 *
 * Rooms are appended in address order, so a valid registry has each
 * entry's room starting at or after the previous one's end and ending at
 * or before next. An append writes the entry, then next, then count, each
 * of the last two with a release store (which orders the stores before it
 * for any later reader, including the locker that recovers a dead
 * holder's mutex): a member killed while appending leaves at most an
 * unpublished entry, or a room taken and never used, and the next locker
 * just marks the mutex consistent.
 *
 * Regions passed on: each process keeps a list of the regions it placed
 * for its group, with a descriptor of each (a capability copy), to hand
 * to the supervisors it spawns. The list is pruned against
 * /proc/self/maps: before a spawn every region no longer mapped in the
 * arena is dropped, and when a region is added, those unmapped that no
 * other thread can be about to map (see members_prune()). A supervisor
 * therefore keeps an unmapped region alive until its next map or spawn.
 * At most SHMCAP__EXTRA_MAX - 1 regions can be passed: a spawn of a
 * supervisor with more mapped fails with -E2BIG, rather than start a
 * child that lacks some of them.
 *
 * Thread safety: the process's state (privilege, registry, list) is
 * guarded by priv_lock; the registry by its shared mutex, always taken
 * after priv_lock.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/kcmp.h>

#include "atomic.h"

#define REG_MAGIC 0x52474353u /* "SCGR" little-endian */
#define REG_VERSION 1
#define ROOM_ALIGN ((uint64_t)2 << 20)
#define REG_CAPACITY ((uint32_t)(SHMCAP_SUPERVISOR_SIZE / ROOM_ALIGN))
/* Longer than any holder needs for an append: a stopped or hostile one. */
#define REG_LOCK_TIMEOUT_NS ((int64_t)10 * 1000000000)

#define PRIV_VAR "SHMCAP_PRIVILEGE"
#define PRIV_SUFFIX ";supervisor"
#define PID_DIGITS 10
#define SECURE_VAR "SHMCAP_SECURE"
#define SECURE_FILE "/etc/shmcap/secure"
#define GROUP_CAP_NAME "shmcap.group"
#define REGION_CAP_PREFIX "shmcap.region."
#define REGIONS_PASSED_MAX (SHMCAP__EXTRA_MAX - 1)

_Static_assert(sizeof(SHMCAP__PID_HOLDER) - 1 == PID_DIGITS,
	       "the pid placeholder has as many characters as the pid");
_Static_assert(SHMCAP_SUPERVISOR_BASE % ROOM_ALIGN == 0 &&
		       SHMCAP_SUPERVISOR_SIZE % ROOM_ALIGN == 0 &&
		       SHMCAP_SUPERVISOR_SIZE / ROOM_ALIGN <= UINT32_MAX,
	       "the arena is made of whole rooms");
_Static_assert(SHMCAP_SUPERVISOR_BASE + SHMCAP_SUPERVISOR_SIZE <=
		       ((uint64_t)1 << 47),
	       "the arena lies in the 47-bit user address space");

struct reg_entry {
	uint64_t dev;
	uint64_t ino;
	uint64_t off;
	uint64_t len;
};

struct reg_header {
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
	struct reg_entry entries[];
};

_Static_assert(sizeof(struct reg_entry) == 32, "registry entry layout");
_Static_assert(offsetof(struct reg_entry, off) == 16, "registry entry");
_Static_assert(offsetof(struct reg_entry, len) == 24, "registry entry");
_Static_assert(offsetof(struct reg_header, capacity) == 12, "registry");
_Static_assert(offsetof(struct reg_header, arena_base) == 16, "registry");
_Static_assert(offsetof(struct reg_header, next) == 32, "registry");
_Static_assert(offsetof(struct reg_header, count) == 40, "registry");
_Static_assert(offsetof(struct reg_header, lock) == 64, "registry");
_Static_assert(sizeof(struct reg_header) == 128, "registry header");
_Static_assert(offsetof(struct reg_header, entries) == 128, "registry");

#define REG_BYTES                                                              \
	(sizeof(struct reg_header) +                                           \
	 (uint64_t)REG_CAPACITY * sizeof(struct reg_entry))

/* A region this process placed for its group. */
struct member_region {
	uint64_t dev, ino;
	shmcap_cap *cap; /* a copy, passed to supervisors spawned */
	pid_t placer;	 /* the thread that placed it */
	int seen;	 /* found mapped at an earlier look at the maps */
	int mapped;	 /* found mapped at the last look */
};

static pthread_mutex_t priv_lock = PTHREAD_MUTEX_INITIALIZER;

/* The caller's privilege and group; guarded by priv_lock. */
static struct {
	int supervisor; /* member of a group (see self_supervisor()) */
	int join_error; /* why joining at start failed, or 0 */
	shmcap_cap *registry;
	struct reg_header *reg; /* its mapping, REG_BYTES long */
	struct member_region *regions;
	size_t nregions, alloc;
	/* The mappings made at start; kept for the life of the process. */
	shmcap_map *start_maps[REGIONS_PASSED_MAX];
	size_t nstart;
} self;

/* 0 not yet known, 1 off, 2 on. */
static uint32_t secure_state;

/* Names "shmcap.region.N" for spawn_extra, filled once. */
static pthread_once_t names_once = PTHREAD_ONCE_INIT;
static char region_names[REGIONS_PASSED_MAX][24];

static void region_names_fill(void)
{
	size_t i;

	for (i = 0; i < REGIONS_PASSED_MAX; i++)
		snprintf(region_names[i], sizeof(region_names[i]),
			 REGION_CAP_PREFIX "%zu", i);
}

/* ------------------------------------------------------------------------
 * Secure mode
 */

static int secure_file_exists(void)
{
	struct stat st;

	if (stat(SECURE_FILE, &st) == 0)
		return 1;
	/* Fail closed: only a file known to be absent leaves it off. */
	return errno != ENOENT && errno != ENOTDIR;
}

SHMCAP_EXPORT int shmcap_secure_mode(void)
{
	/*
	 * Relaxed is enough: the value is computed from the same inputs by
	 * whichever thread gets here first, and nothing else is published
	 * with it.
	 */
	uint32_t s = load32(&secure_state, ORDER_RELAXED);

	if (s == 0) {
		const char *v = getenv(SECURE_VAR);

		s = (v && strcmp(v, "1") == 0) || secure_file_exists() ? 2 : 1;
		store32(&secure_state, s, ORDER_RELAXED);
	}
	return s == 2;
}

/* Whether a process with effective uid euid may be a supervisor here. */
static int euid_allowed(uid_t euid)
{
	return euid == 0 || !shmcap_secure_mode();
}

/* With priv_lock held: is the caller a supervisor now? */
static int self_supervisor(void)
{
	return self.supervisor && euid_allowed(geteuid());
}

/* ------------------------------------------------------------------------
 * The registry
 */

/* Check the fields fixed at creation; they are read once each. */
static int reg_header_check(const struct reg_header *h)
{
	if (h->magic != REG_MAGIC || h->version != REG_VERSION ||
	    h->header_size != sizeof(struct reg_header) ||
	    h->entry_size != sizeof(struct reg_entry) ||
	    h->capacity != REG_CAPACITY ||
	    h->arena_base != SHMCAP_SUPERVISOR_BASE ||
	    h->arena_size != SHMCAP_SUPERVISOR_SIZE)
		return -EBADMSG;
	return 0;
}

static int reg_lock(struct reg_header *h)
{
	int ret = reg_header_check(h);

	if (ret < 0)
		return ret;
	ret = shmcap_mutex_lock(&h->lock, REG_LOCK_TIMEOUT_NS);
	if (ret == -EOWNERDEAD) {
		/*
		 * A member died holding the lock. Appends publish count last,
		 * so whatever it left is consistent (see the overview).
		 */
		ret = shmcap_mutex_consistent(&h->lock);
		if (ret < 0) {
			shmcap_mutex_unlock(&h->lock);
			return -EBADMSG;
		}
	}
	if (ret == -ENOTRECOVERABLE || ret == -EDEADLK)
		ret = -EBADMSG; /* only a member writing garbage gets here */
	return ret;
}

static void reg_unlock(struct reg_header *h)
{
	shmcap_mutex_unlock(&h->lock);
}

/*
 * With the registry locked: the room of the region (dev, ino) of size
 * bytes in *off and *len, given one now if it has none.
 */
static int reg_room_locked(struct reg_header *h, uint64_t dev, uint64_t ino,
			   uint64_t size, uint64_t *off, uint64_t *len)
{
	/* Pairs with the release stores of an append (ours or a dead one's);
	 * the mutex orders the rest. */
	uint64_t next = load64(&h->next, ORDER_ACQUIRE);
	uint32_t count = load32(&h->count, ORDER_ACQUIRE);
	uint64_t end = 0, room;
	struct reg_entry e;
	uint32_t i;

	if (count > REG_CAPACITY || next > SHMCAP_SUPERVISOR_SIZE ||
	    next % ROOM_ALIGN)
		return -EBADMSG;
	for (i = 0; i < count; i++) {
		memcpy(&e, &h->entries[i], sizeof(e));
		/* off <= next <= SIZE, so off + len cannot wrap. */
		if (e.off % ROOM_ALIGN || e.len % ROOM_ALIGN || e.len == 0 ||
		    e.off < end || e.off > next || e.len > next - e.off)
			return -EBADMSG;
		end = e.off + e.len;
		if (e.dev == dev && e.ino == ino) {
			*off = e.off;
			*len = e.len;
			return 0;
		}
	}

	if (size > SHMCAP_SUPERVISOR_SIZE || count == REG_CAPACITY)
		return -ENOSPC;
	room = (size + ROOM_ALIGN - 1) & ~(ROOM_ALIGN - 1);
	if (room == 0)
		room = ROOM_ALIGN;
	if (room > SHMCAP_SUPERVISOR_SIZE - next)
		return -ENOSPC;
	e.dev = dev;
	e.ino = ino;
	e.off = next;
	e.len = room;
	memcpy(&h->entries[count], &e, sizeof(e));
	/*
	 * Take the room, then publish the entry: a holder killed between the
	 * two wastes a room but never lets two regions share one. Release:
	 * pairs with the acquire loads above in the next locker.
	 */
	store64(&h->next, next + room, ORDER_RELEASE);
	store32(&h->count, count + 1, ORDER_RELEASE);
	*off = e.off;
	*len = e.len;
	return 0;
}

static int reg_room(struct reg_header *h, uint64_t dev, uint64_t ino,
		    uint64_t size, uint64_t *off, uint64_t *len)
{
	int ret = reg_lock(h);

	if (ret < 0)
		return ret;
	ret = reg_room_locked(h, dev, ino, size, off, len);
	reg_unlock(h);
	return ret;
}

/* ------------------------------------------------------------------------
 * Membership (all with priv_lock held)
 */

static void members_forget(void)
{
	size_t i;

	for (i = 0; i < self.nregions; i++)
		shmcap_cap_close(self.regions[i].cap);
	free(self.regions);
	self.regions = NULL;
	self.nregions = self.alloc = 0;
}

static void group_leave(void)
{
	if (self.reg)
		munmap(self.reg, REG_BYTES);
	shmcap_cap_close(self.registry);
	self.reg = NULL;
	self.registry = NULL;
	self.supervisor = 0;
	members_forget();
}

/* Map the registry of cap (kept on success) and become a member. */
static int group_enter(shmcap_cap *cap, int founding)
{
	struct reg_header *h;
	struct stat st;
	int seals;

	if (cap->type != SHMCAP_TYPE_REGION ||
	    (cap->rights & SHMCAP_RIGHTS_REGION) != SHMCAP_RIGHTS_REGION)
		return -EBADMSG;
	/* Sealed against shrinking: no member can make another fault. */
	seals = fcntl(cap->fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(cap->fd, &st) < 0 ||
	    (uint64_t)st.st_size < REG_BYTES)
		return -EBADMSG;
	h = mmap(NULL, REG_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, cap->fd,
		 0);
	if (h == MAP_FAILED)
		return shmcap__neg_errno();
	if (founding) {
		/* Nobody else sees it until it is passed on. */
		h->version = REG_VERSION;
		h->header_size = sizeof(struct reg_header);
		h->entry_size = sizeof(struct reg_entry);
		h->capacity = REG_CAPACITY;
		h->arena_base = SHMCAP_SUPERVISOR_BASE;
		h->arena_size = SHMCAP_SUPERVISOR_SIZE;
		shmcap_mutex_init(&h->lock);
		h->magic = REG_MAGIC;
	} else if (reg_header_check(h) < 0) {
		munmap(h, REG_BYTES);
		return -EBADMSG;
	}
	self.registry = cap;
	self.reg = h;
	self.supervisor = 1;
	self.join_error = 0;
	return 0;
}

static int group_found(void)
{
	shmcap_cap *cap;
	int ret;

	ret = shmcap_region_create(REG_BYTES, 0, &cap);
	if (ret < 0)
		return ret;
	ret = group_enter(cap, 1);
	if (ret < 0)
		shmcap_cap_close(cap);
	return ret;
}

/*
 * Look at /proc/self/maps and set `mapped` on each listed region that is
 * mapped in the arena. -errno if the maps cannot be read.
 */
static int members_look(void)
{
	uint64_t start, end, ino;
	unsigned int maj, mnr;
	char *line = NULL;
	size_t cap = 0, i;
	FILE *f;

	f = fopen("/proc/self/maps", "re");
	if (!f)
		return shmcap__neg_errno();
	for (i = 0; i < self.nregions; i++)
		self.regions[i].mapped = 0;
	while (getline(&line, &cap, f) > 0) {
		/* START-END PERMS OFFSET MAJOR:MINOR INODE PATH */
		if (sscanf(line,
			   "%" SCNx64 "-%" SCNx64 " %*s %*x %x:%x %" SCNu64,
			   &start, &end, &maj, &mnr, &ino) != 5)
			continue;
		if (end <= SHMCAP_SUPERVISOR_BASE ||
		    start >= SHMCAP_SUPERVISOR_BASE + SHMCAP_SUPERVISOR_SIZE)
			continue;
		for (i = 0; i < self.nregions; i++) {
			struct member_region *r = &self.regions[i];

			if (r->ino == ino && major(r->dev) == maj &&
			    minor(r->dev) == mnr)
				r->mapped = 1;
		}
	}
	free(line);
	fclose(f);
	return 0;
}

/*
 * Drop the listed regions no longer mapped: all of them (all), or those
 * that cannot be on their way to being mapped: seen mapped before, or
 * placed by the calling thread, whose shmcap_region_map() of it is over.
 * Another thread may be between placing a region and mapping it.
 */
static void members_prune(int all)
{
	pid_t me = (pid_t)syscall(SYS_gettid);
	size_t i, n = 0;

	if (members_look() < 0)
		return; /* keep them all: passing one too many is harmless */
	for (i = 0; i < self.nregions; i++) {
		struct member_region *r = &self.regions[i];

		if (!r->mapped && (all || r->seen || r->placer == me)) {
			shmcap_cap_close(r->cap);
			continue;
		}
		r->seen |= r->mapped;
		self.regions[n++] = *r;
	}
	self.nregions = n;
}

/* Add region (dev, ino) to the list unless it is there. */
static int members_add(const shmcap_cap *region, uint64_t dev, uint64_t ino)
{
	struct member_region *r;
	size_t i;
	int ret;

	for (i = 0; i < self.nregions; i++)
		if (self.regions[i].dev == dev && self.regions[i].ino == ino)
			return 0;
	members_prune(0);
	if (self.nregions == self.alloc) {
		size_t alloc = self.alloc ? 2 * self.alloc : 8;

		r = realloc(self.regions, alloc * sizeof(*r));
		if (!r)
			return -ENOMEM;
		self.regions = r;
		self.alloc = alloc;
	}
	r = &self.regions[self.nregions];
	ret = shmcap_cap_derive(region, region->rights, &r->cap);
	if (ret < 0)
		return ret;
	r->dev = dev;
	r->ino = ino;
	r->placer = (pid_t)syscall(SYS_gettid);
	r->seen = 0;
	r->mapped = 0;
	self.nregions++;
	return 0;
}

/* ------------------------------------------------------------------------
 * Placement
 */

int shmcap__group_place(const shmcap_cap *region, uint64_t offset,
			uint64_t length, void *addr, unsigned int flags,
			void **where)
{
	uint64_t off, len, at;
	struct stat st;
	int ret;

	(void)flags;
	*where = NULL;
	pthread_mutex_lock(&priv_lock);
	if (!self_supervisor()) {
		ret = 0;
		goto out;
	}
	if (fstat(region->fd, &st) < 0) {
		ret = shmcap__neg_errno();
		goto out;
	}
	ret = reg_room(self.reg, st.st_dev, st.st_ino, (uint64_t)st.st_size,
		       &off, &len);
	if (ret < 0)
		goto out;
	if (offset > len || length > len - offset) {
		ret = -ENOSPC; /* the region outgrew its room */
		goto out;
	}
	at = SHMCAP_SUPERVISOR_BASE + off + offset;
	if (addr && (uintptr_t)addr != at) {
		ret = -EINVAL;
		goto out;
	}
	ret = members_add(region, st.st_dev, st.st_ino);
	if (ret < 0)
		goto out;
	*where = (void *)(uintptr_t)at;
	ret = 1;
out:
	pthread_mutex_unlock(&priv_lock);
	return ret;
}

/* ------------------------------------------------------------------------
 * Joining at start (the library's constructor)
 */

/* Whether v is "PPPPPPPPPP;supervisor" with PPPPPPPPPP the pid. */
static int privilege_value_ok(const char *v, pid_t pid)
{
	long long p = 0;
	int i;

	for (i = 0; i < PID_DIGITS; i++) {
		if (v[i] < '0' || v[i] > '9')
			return 0;
		p = p * 10 + (v[i] - '0');
	}
	return p == pid && strcmp(v + PID_DIGITS, PRIV_SUFFIX) == 0;
}

/* Map one region passed by the spawner at its group address. */
static int start_map(shmcap_cap *c, shmcap_map **m)
{
	unsigned int mflags = SHMCAP_MAP_READ;
	uint64_t off, len, size;
	struct stat st;
	int ret, rflags;

	if (shmcap_cap_type(c) != SHMCAP_TYPE_REGION)
		return -EBADMSG;
	rflags = shmcap_region_flags(c);
	if (rflags < 0)
		return rflags;
	if (fstat(c->fd, &st) < 0)
		return shmcap__neg_errno();
	size = (uint64_t)st.st_size;
	pthread_mutex_lock(&priv_lock);
	ret = self.reg ? reg_room(self.reg, st.st_dev, st.st_ino, size, &off,
				  &len) :
			 -EBADMSG;
	pthread_mutex_unlock(&priv_lock);
	if (ret < 0)
		return ret;
	if (c->rights & SHMCAP_RIGHT_WRITE)
		mflags |= SHMCAP_MAP_WRITE;
	/* The spawner mapped it, so it accepted an unsealed one. */
	if (rflags & SHMCAP_REGION_UNSEALED)
		mflags |= SHMCAP_MAP_UNSEALED;
	/* A region that grew past its room is mapped as far as it fits. */
	return shmcap_region_map(c, 0, size < len ? size : len, NULL, mflags,
				 m);
}

static int group_join_at_start(void)
{
	shmcap_cap *c = NULL;
	size_t i;
	int ret;

	ret = shmcap_env_cap(GROUP_CAP_NAME, &c);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	pthread_mutex_lock(&priv_lock);
	if (ret == -ENOENT) {
		/* Spawned by a user actor: found a group of our own. */
		ret = group_found();
	} else {
		ret = group_enter(c, 0);
		if (ret < 0)
			shmcap_cap_close(c);
	}
	pthread_mutex_unlock(&priv_lock);
	if (ret < 0)
		return ret;

	pthread_once(&names_once, region_names_fill);
	for (i = 0; i < REGIONS_PASSED_MAX; i++) {
		ret = shmcap_env_cap(region_names[i], &c);
		if (ret == -ENOENT) {
			ret = 0;
			break;
		}
		if (ret < 0)
			break;
		ret = start_map(c, &self.start_maps[self.nstart]);
		shmcap_cap_close(c);
		if (ret < 0)
			break;
		self.nstart++;
	}
	if (ret < 0) {
		pthread_mutex_lock(&priv_lock);
		while (self.nstart > 0)
			shmcap_map_unmap(self.start_maps[--self.nstart]);
		group_leave();
		pthread_mutex_unlock(&priv_lock);
	}
	return ret;
}

__attribute__((constructor)) static void privilege_start(void)
{
	const char *v = getenv(PRIV_VAR);
	int ret;

	if (!v || !privilege_value_ok(v, getpid()))
		return;
	if (!euid_allowed(geteuid()))
		return; /* a forged or unauthorised claim: a user actor */
	ret = group_join_at_start();
	if (ret < 0) {
		pthread_mutex_lock(&priv_lock);
		self.join_error = ret;
		pthread_mutex_unlock(&priv_lock);
	}
}

/* ------------------------------------------------------------------------
 * Spawning
 */

int shmcap__privilege_spawn_extra(unsigned int flags,
				  struct shmcap__spawn_extra *x)
{
	int ret = 0, secure = shmcap_secure_mode();
	size_t i;

	memset(x, 0, sizeof(*x));
	if ((flags & SHMCAP_SPAWN_SUPERVISOR) && !euid_allowed(geteuid()))
		return -EPERM;
	if (secure) {
		x->env[x->nenv] = strdup(SECURE_VAR "=1");
		if (!x->env[x->nenv])
			return -ENOMEM;
		x->nenv++;
	}
	if (!(flags & SHMCAP_SPAWN_SUPERVISOR))
		return 0;
	x->env[x->nenv] = strdup(PRIV_VAR "=" SHMCAP__PID_HOLDER PRIV_SUFFIX);
	if (!x->env[x->nenv]) {
		ret = -ENOMEM;
		goto fail;
	}
	x->nenv++;

	pthread_once(&names_once, region_names_fill);
	pthread_mutex_lock(&priv_lock);
	if (!self_supervisor())
		goto unlock; /* the child founds a group */
	ret = shmcap_cap_derive(self.registry, SHMCAP_RIGHTS_REGION,
				&x->caps[0]);
	if (ret < 0)
		goto unlock;
	x->names[0] = GROUP_CAP_NAME;
	x->ncaps = 1;
	members_prune(1);
	if (self.nregions > REGIONS_PASSED_MAX) {
		ret = -E2BIG;
		goto unlock;
	}
	for (i = 0; i < self.nregions; i++) {
		ret = shmcap_cap_derive(self.regions[i].cap,
					self.regions[i].cap->rights,
					&x->caps[x->ncaps]);
		if (ret < 0)
			goto unlock;
		x->names[x->ncaps++] = region_names[i];
	}
unlock:
	pthread_mutex_unlock(&priv_lock);
	if (ret == 0)
		return 0;
fail:
	shmcap__spawn_extra_free(x);
	return ret;
}

void shmcap__spawn_extra_free(struct shmcap__spawn_extra *x)
{
	size_t i;

	for (i = 0; i < x->ncaps; i++)
		shmcap_cap_close(x->caps[i]);
	for (i = 0; i < x->nenv; i++)
		free(x->env[i]);
	memset(x, 0, sizeof(*x));
}

/* ------------------------------------------------------------------------
 * Privilege of an actor
 */

/*
 * Scan /proc/PID/environ for the first SHMCAP_PRIVILEGE and SHMCAP_SECURE
 * entries, reading it in pieces: an environment may be megabytes long,
 * and the entries of interest are short, so each entry is kept only up to
 * ENTRY_KEEP bytes (a longer one cannot be a valid value).
 */
#define ENTRY_KEEP 64
/* How long an execve() may take to build the new stack; in practice us. */
#define ENV_WAIT_NS ((int64_t)2 * 1000000000)

static void env_entry(const char *e, pid_t pid, int *priv, int *secure)
{
	static const char pv[] = PRIV_VAR "=", sv[] = SECURE_VAR "=";

	if (*priv < 0 && strncmp(e, pv, sizeof(pv) - 1) == 0)
		*priv = privilege_value_ok(e + sizeof(pv) - 1, pid);
	else if (*secure < 0 && strncmp(e, sv, sizeof(sv) - 1) == 0)
		*secure = strcmp(e + sizeof(sv) - 1, "1") == 0;
}

static int proc_open(pid_t pid, const char *file)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	if (errno == ENOENT || errno == ESRCH)
		return -ESRCH;
	if (errno == EPERM)
		return -EACCES;
	return shmcap__neg_errno();
}

/*
 * Reads /proc/PID/<file> into buf, as much as fits in size - 1 bytes, and
 * ends it with a NUL. A read error ends the text where it stands, as the
 * end of the file would: callers parse what came and judge that. The
 * length read, or -errno from proc_open().
 */
static int proc_read(pid_t pid, const char *file, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = proc_open(pid, file);
	if (fd < 0)
		return fd;
	while (len < size - 1) {
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (int)len;
}

static int read_environ(pid_t pid, int *priv, int *secure)
{
	char buf[4096], entry[ENTRY_KEEP + 1];
	size_t elen = 0;
	ssize_t n, i;
	int fd;

	*priv = *secure = -1;
	fd = proc_open(pid, "environ");
	if (fd < 0)
		return fd;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (i = 0; i < n; i++) {
			if (buf[i] != '\0') {
				if (elen <= ENTRY_KEEP)
					entry[elen++] = buf[i];
				continue;
			}
			if (elen <= ENTRY_KEEP) {
				entry[elen] = '\0';
				env_entry(entry, pid, priv, secure);
			}
			elen = 0;
		}
	}
	if (n < 0) {
		int err = errno == EPERM ? EACCES : errno;

		close(fd);
		return err > 0 ? -err : -EIO;
	}
	close(fd);
	*priv = *priv > 0;
	*secure = *secure > 0;
	return 0;
}

/* The effective uid of pid from /proc/PID/status, in *euid. */
static int read_euid(pid_t pid, uid_t *euid)
{
	char buf[8192], *p;
	unsigned long r, e;
	int ret;

	ret = proc_read(pid, "status", buf, sizeof(buf));
	if (ret < 0)
		return ret;
	p = strstr(buf, "\nUid:");
	if (!p || sscanf(p + 5, "%lu %lu", &r, &e) != 2)
		return -ESRCH; /* a status without Uid: the process is gone */
	*euid = (uid_t)e;
	return 0;
}

/*
 * Whether pid has finished building the stack of the program it runs: in
 * a process inside execve(), /proc/PID/environ reads empty from the switch
 * to the new memory until the kernel has written the environment's
 * pointers, and its code addresses (field 26 of /proc/PID/stat, startcode)
 * are set only after that; 0 in between. -ESRCH if the process has ended.
 */
static int exec_settled(pid_t pid)
{
	char buf[2048], *p;
	unsigned long long v = 0;
	int ret, field;

	ret = proc_read(pid, "stat", buf, sizeof(buf));
	if (ret < 0)
		return ret;
	/* The command name may hold anything: fields start after its ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -ESRCH;
	for (field = 2; field < 26 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &v) != 1)
		return 1;
	return v != 0;
}

/*
 * Whether pid still shares the caller's memory: a child of shmcap_spawn()
 * (clone with CLONE_VM | CLONE_VFORK) whose execve() has released its
 * parent but not yet switched to its new memory, so that /proc/PID/environ
 * shows the caller's own environment. 0 if kcmp() is not available.
 */
static int shares_my_memory(pid_t pid)
{
	pid_t me = getpid();

	return pid != me && syscall(SYS_kcmp, me, pid, KCMP_VM, 0, 0) == 0;
}

/* 0 while the process of pidfd lives, -ESRCH once it has ended. */
static int pidfd_alive(int pidfd)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int n;

	do
		n = poll(&pfd, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (pfd.revents & POLLNVAL))
		return -EINVAL;
	/* A pidfd is readable once its process has exited. */
	return n > 0 ? -ESRCH : 0;
}

SHMCAP_EXPORT int shmcap_privilege(const shmcap_cap *actor)
{
	const struct timespec pause = { 0, 100000 };
	int ret, priv, secure, pidfd;
	int64_t deadline;
	uid_t euid;
	pid_t pid;

	if (!actor) {
		pthread_mutex_lock(&priv_lock);
		ret = self.join_error;
		if (ret == 0)
			ret = self_supervisor() ? SHMCAP_PRIV_SUPERVISOR :
						  SHMCAP_PRIV_USER;
		pthread_mutex_unlock(&priv_lock);
		return ret;
	}
	if (shmcap_cap_type(actor) != SHMCAP_TYPE_ACTOR)
		return -EINVAL;
	ret = shmcap_actor_pid(actor);
	if (ret < 0)
		return ret;
	pid = ret;
	pidfd = shmcap_cap_fd(actor);
	/*
	 * A child that shmcap_spawn() just returned may still be inside
	 * execve() for some microseconds: first sharing the caller's memory
	 * (so its environ is the caller's), then with an empty environment
	 * until its new stack is built. Both end before the program runs.
	 */
	deadline = shmcap__deadline(ENV_WAIT_NS);
	for (;;) {
		ret = pidfd_alive(pidfd);
		if (ret < 0)
			return ret;
		if (!shares_my_memory(pid)) {
			ret = exec_settled(pid);
			if (ret < 0)
				return ret;
			if (ret > 0)
				break;
		}
		if (shmcap__now_ns() >= deadline)
			return -EAGAIN;
		nanosleep(&pause, NULL);
	}
	ret = read_environ(pid, &priv, &secure);
	if (ret < 0)
		return ret;
	if (priv && (secure || shmcap_secure_mode())) {
		ret = read_euid(pid, &euid);
		if (ret < 0)
			return ret;
		priv = euid == 0;
	}
	/* What was read belongs to the actor only if it still lives. */
	ret = pidfd_alive(pidfd);
	if (ret < 0)
		return ret;
	return priv ? SHMCAP_PRIV_SUPERVISOR : SHMCAP_PRIV_USER;
}

SHMCAP_EXPORT int shmcap_privilege_set(int privilege)
{
	int ret = 0;

	if (privilege != SHMCAP_PRIV_USER &&
	    privilege != SHMCAP_PRIV_SUPERVISOR)
		return -EINVAL;
	if (privilege == SHMCAP_PRIV_SUPERVISOR && !euid_allowed(geteuid()))
		return -EPERM;
	pthread_mutex_lock(&priv_lock);
	if (privilege == SHMCAP_PRIV_USER) {
		if (self.supervisor)
			group_leave();
		self.join_error = 0;
	} else if (!self.supervisor) {
		ret = group_found();
	}
	pthread_mutex_unlock(&priv_lock);
	return ret;
}
