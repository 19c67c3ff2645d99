/* SPDX-License-Identifier: MIT */
/*
 * Grants: mapping from another actor (ChorusOS rgnMapFromActor).
 *
 * Overview: an actor lets others map one of its mappings with
 * shmcap_map_grant(). The first grant publishes an endpoint (names.c) at
 * the abstract address "\0shmcap-actor-ID", ID being the actor's 128-bit
 * id in hex, served by a thread. Another actor names an address range in
 * the granting actor's address space; the thread looks the range up in
 * the process's table of grants, checks the client against that grant's
 * access rule and answers with a capability for the region behind the
 * range, derived down to the rights granted and asked for, plus the
 * offset in the region that the range starts at. The client maps that
 * with shmcap_region_map(): anywhere, at an address of its choosing, or
 * at the same address as in the granting actor (SHMCAP_MAP_SAME).
 *
 * Why an id and not a pid in the address: an actor id is never reused, so
 * a process that later gets a dead actor's pid never answers for it; its
 * own address differs. The client also checks that the process listening
 * is the actor's (SO_PEERCRED pid against the actor capability's pid): ids
 * are not secret, and any process could bind the address of an actor that
 * has not granted anything yet. That process can then make the actor's
 * first grant fail (-EADDRINUSE), but never answer in its name. While it
 * waits, the client also polls the actor's pidfd, so the end of the actor
 * is an immediate -ESRCH, whatever else holds the socket.
 *
 * Wire format: the names.c request and reply, carrying (host byte order)
 *
 *   request data, 24 bytes          reply data, 16 bytes, + 1 region cap
 *   0  u64 address (page aligned)   0  u64 offset in the region
 *   8  u64 length (page multiple;   8  u64 length granted
 *          0: to the mapping's end)
 *   16 u32 rights (READ, or READ|WRITE)
 *   20 u32 reserved, 0
 *
 * A request may name any page-aligned part of one granted mapping; a range
 * that crosses into another mapping, granted or not, is -ENOENT.
 *
 * Lifetime: the table and the thread end with the process. Revoking or
 * unmapping removes a grant; when the table becomes empty the thread stays
 * (it answers -ENOENT), which keeps grant and revoke cheap and free of any
 * race between a thread stopping and another grant starting one.
 *
 * fork(): the child is another actor with another id. A pthread_atfork()
 * handler empties the table in the child (its copies of granted mappings
 * are no longer granted) and closes its copy of the parent's listening
 * socket, so that the child neither believes it serves the parent's
 * grants nor keeps the parent's address alive after the parent ends. The
 * table also records the pid it belongs to, so a child made by a raw
 * clone() that bypasses the fork handlers starts afresh at its first grant
 * (it keeps the listening socket copy until then).
 *
 * Thread safety: the table is guarded by grant_lock, taken by the serving
 * thread while it looks a range up and by grant, revoke and unmap. The
 * mappings in the table stay valid under the lock, since unmapping removes
 * the grant (shmcap__grant_drop) before munmap().
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ACTOR_PREFIX "shmcap-actor-"
#define ACTOR_ADDR_SIZE (sizeof(ACTOR_PREFIX) + SHMCAP_ACTOR_ID_TEXT)

struct grant_req {
	uint64_t addr;
	uint64_t length;
	uint32_t rights;
	uint32_t reserved;
};

struct grant_rep {
	uint64_t offset;
	uint64_t length;
};

_Static_assert(sizeof(struct grant_req) == 24, "grant request layout");
_Static_assert(offsetof(struct grant_req, rights) == 16, "grant request");
_Static_assert(sizeof(struct grant_rep) == 16, "grant reply layout");

struct shmcap__grant {
	shmcap_map *map;
	shmcap_cap *region; /* our own copy, with the rights granted */
	unsigned int mode;
	uint32_t euid, egid; /* the owner for the rule, at grant time */
	struct shmcap__grant *prev, *next;
};

static pthread_mutex_t grant_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t grant_once = PTHREAD_ONCE_INIT;

/* The process's grants; all guarded by grant_lock. */
static struct {
	pid_t pid; /* the process they belong to; 0: none yet */
	shmcap_name *endpoint;
	struct shmcap__grant *head;
} gs;

static void grant_unlink(struct shmcap__grant *g)
{
	if (g->prev)
		g->prev->next = g->next;
	else
		gs.head = g->next;
	if (g->next)
		g->next->prev = g->prev;
	g->map->grant = NULL;
}

static void grant_free(struct shmcap__grant *g)
{
	shmcap_cap_close(g->region);
	free(g);
}

/*
 * Forget what a parent process left: its grants (the child's copies of the
 * mappings stay, no longer granted) and its endpoint, whose thread does
 * not exist here. Caller holds grant_lock.
 */
static void grant_forget_inherited(void)
{
	struct shmcap__grant *g;

	while ((g = gs.head) != NULL) {
		grant_unlink(g);
		grant_free(g);
	}
	shmcap__endpoint_abandon(gs.endpoint);
	gs.endpoint = NULL;
	gs.pid = 0;
}

/* fork(): hold the lock across it, so that the child's copy is sane. */
static void grant_prepare(void)
{
	pthread_mutex_lock(&grant_lock);
}

static void grant_parent(void)
{
	pthread_mutex_unlock(&grant_lock);
}

static void grant_child(void)
{
	if (gs.pid)
		grant_forget_inherited();
	pthread_mutex_unlock(&grant_lock);
}

static void grant_register(void)
{
	pthread_atfork(grant_prepare, grant_parent, grant_child);
}

/* Take the lock, dropping what a raw clone() may have inherited. */
static void grant_lock_fresh(void)
{
	pthread_mutex_lock(&grant_lock);
	if (gs.pid && gs.pid != getpid())
		grant_forget_inherited();
}

/* The grant whose mapping contains addr. Caller holds grant_lock. */
static struct shmcap__grant *grant_find(uint64_t addr)
{
	struct shmcap__grant *g;
	uint64_t start;

	for (g = gs.head; g; g = g->next) {
		start = (uintptr_t)g->map->addr;
		if (addr >= start && addr - start < g->map->size)
			return g;
	}
	return NULL;
}

/* The serving thread's handler: one map-from-actor request. */
static int grant_serve(void *arg, const struct shmcap__client *client,
		       const void *req, size_t req_len, shmcap_cap **caps,
		       size_t max_caps, void *reply, size_t *reply_len)
{
	uint64_t page = shmcap__page_size(), start, left;
	struct shmcap__rule rule;
	struct shmcap__grant *g;
	struct grant_req rq;
	struct grant_rep rp;
	unsigned int allowed;
	int ret;

	(void)arg;
	if (req_len != sizeof(rq) || max_caps < 1 || *reply_len < sizeof(rp))
		return -EBADMSG;
	memcpy(&rq, req, sizeof(rq));
	if (rq.reserved || (rq.addr & (page - 1)) || (rq.length & (page - 1)) ||
	    (rq.rights != SHMCAP_RIGHT_READ &&
	     rq.rights != SHMCAP_RIGHTS_REGION))
		return -EINVAL;

	pthread_mutex_lock(&grant_lock);
	g = grant_find(rq.addr);
	if (!g) {
		ret = -ENOENT;
		goto out;
	}
	start = (uintptr_t)g->map->addr;
	left = g->map->size - (rq.addr - start);
	if (rq.length > left) {
		ret = -ENOENT;
		goto out;
	}
	memset(&rule, 0, sizeof(rule));
	rule.mode = g->mode;
	rule.uid = g->euid;
	rule.gid = g->egid;
	allowed = g->region->rights & shmcap__rule_rights(&rule, client);
	if (!(allowed & SHMCAP_RIGHT_READ) || (rq.rights & ~allowed)) {
		ret = -EACCES;
		goto out;
	}
	ret = shmcap_cap_derive(g->region, rq.rights, &caps[0]);
	if (ret < 0)
		goto out;
	rp.offset = g->map->region_offset + (rq.addr - start);
	rp.length = rq.length ? rq.length : left;
	memcpy(reply, &rp, sizeof(rp));
	*reply_len = sizeof(rp);
	ret = 1;
out:
	pthread_mutex_unlock(&grant_lock);
	return ret;
}

/* The endpoint address of the actor with id. */
static void actor_address(const shmcap_actor_id *id, char *buf)
{
	char hex[SHMCAP_ACTOR_ID_TEXT];

	shmcap_actor_id_format(id, hex, sizeof(hex));
	snprintf(buf, ACTOR_ADDR_SIZE, ACTOR_PREFIX "%s", hex);
}

/* Publish this process's endpoint unless it exists. Caller holds the lock. */
static int endpoint_ensure(void)
{
	char address[ACTOR_ADDR_SIZE];
	shmcap_actor_id id;
	int ret;

	if (gs.endpoint)
		return 0;
	ret = shmcap_self(&id);
	if (ret < 0)
		return ret;
	actor_address(&id, address);
	ret = shmcap__endpoint_publish(address, grant_serve, NULL, 0777,
				       SHMCAP_NAME_THREAD, &gs.endpoint);
	if (ret < 0)
		/* Another process holds our address (see the overview). */
		return ret == -EEXIST ? -EADDRINUSE : ret;
	gs.pid = getpid();
	return 0;
}

SHMCAP_EXPORT int shmcap_map_grant(shmcap_map *m, const shmcap_cap *region,
				   unsigned int rights, unsigned int mode)
{
	struct shmcap__grant *g = NULL;
	shmcap_cap *copy;
	struct stat st;
	int ret;

	if (!m || !region || region->type != SHMCAP_TYPE_REGION ||
	    (rights != SHMCAP_RIGHT_READ && rights != SHMCAP_RIGHTS_REGION) ||
	    (mode & ~0777u))
		return -EINVAL;
	if (fstat(region->fd, &st) < 0)
		return shmcap__neg_errno();
	if ((uint64_t)st.st_dev != m->dev || (uint64_t)st.st_ino != m->ino)
		return -EINVAL;
	if (rights & ~region->rights)
		return -EPERM;
	pthread_once(&grant_once, grant_register);
	ret = shmcap_cap_derive(region, rights, &copy);
	if (ret < 0)
		return ret;

	grant_lock_fresh();
	ret = endpoint_ensure();
	if (ret < 0)
		goto fail;
	if (m->grant) {
		/* Granting again: new rights and rule, same entry. */
		g = m->grant;
		shmcap_cap_close(g->region);
	} else {
		g = calloc(1, sizeof(*g));
		if (!g) {
			ret = -ENOMEM;
			goto fail;
		}
		g->map = m;
		g->next = gs.head;
		if (gs.head)
			gs.head->prev = g;
		gs.head = g;
		m->grant = g;
	}
	g->region = copy;
	g->mode = mode;
	g->euid = (uint32_t)geteuid();
	g->egid = (uint32_t)getegid();
	pthread_mutex_unlock(&grant_lock);
	return 0;

fail:
	pthread_mutex_unlock(&grant_lock);
	shmcap_cap_close(copy);
	return ret;
}

SHMCAP_EXPORT int shmcap_map_revoke(shmcap_map *m)
{
	struct shmcap__grant *g;

	if (!m)
		return -EINVAL;
	grant_lock_fresh();
	g = m->grant;
	if (g)
		grant_unlink(g);
	pthread_mutex_unlock(&grant_lock);
	if (!g)
		return -ENOENT;
	grant_free(g);
	return 0;
}

void shmcap__grant_drop(shmcap_map *m)
{
	shmcap_map_revoke(m);
}

SHMCAP_EXPORT int shmcap_map_from_actor(const shmcap_cap *actor,
					const void *src_addr, uint64_t length,
					void *addr, unsigned int flags,
					int64_t timeout_ns, shmcap_map **out)
{
	const unsigned int known = SHMCAP_MAP_READ | SHMCAP_MAP_WRITE |
				   SHMCAP_MAP_FIXED | SHMCAP_MAP_SAME |
				   SHMCAP_MAP_UNSEALED;
	uint64_t page = shmcap__page_size();
	char address[ACTOR_ADDR_SIZE];
	struct shmcap__call c;
	struct grant_req rq;
	struct grant_rep rp;
	shmcap_actor_id id;
	shmcap_cap *cap = NULL;
	unsigned int mflags;
	void *where;
	int ret, pid;

	if (!actor || actor->type != SHMCAP_TYPE_ACTOR || !out ||
	    (flags & ~known) || !src_addr)
		return -EINVAL;
	if (((uintptr_t)src_addr & (page - 1)) || (length & (page - 1)))
		return -EINVAL;
	if ((flags & SHMCAP_MAP_FIXED) && ((flags & SHMCAP_MAP_SAME) || !addr ||
					   ((uintptr_t)addr & (page - 1))))
		return -EINVAL;
	if ((flags & SHMCAP_MAP_SAME) && addr)
		return -EINVAL;
	/* An actor whose pid or id is unknown had ended when we heard of it. */
	pid = shmcap_actor_pid(actor);
	if (pid < 0)
		return -ESRCH;
	ret = shmcap_actor_id_of(actor, &id);
	if (ret < 0)
		return -ESRCH;
	actor_address(&id, address);

	memset(&rq, 0, sizeof(rq));
	rq.addr = (uintptr_t)src_addr;
	rq.length = length;
	rq.rights = SHMCAP_RIGHT_READ;
	if (flags & SHMCAP_MAP_WRITE)
		rq.rights |= SHMCAP_RIGHT_WRITE;
	memset(&c, 0, sizeof(c));
	c.address = address;
	c.absent_err = -ESRCH;
	c.watch_fd = actor->fd;
	c.server_pid = pid;
	c.req = &rq;
	c.req_len = sizeof(rq);
	c.caps = &cap;
	c.max_caps = 1;
	c.reply = &rp;
	c.reply_size = sizeof(rp);
	c.timeout_ns = timeout_ns;
	ret = shmcap__endpoint_call(&c);
	if (ret < 0)
		return ret;
	if (ret != (int)sizeof(rp) || c.ncaps != 1 ||
	    cap->type != SHMCAP_TYPE_REGION || (rp.offset & (page - 1)) ||
	    rp.length == 0 || (rp.length & (page - 1)) ||
	    (length && rp.length != length)) {
		ret = -EBADMSG;
		goto out;
	}
	mflags = flags &
		 (SHMCAP_MAP_READ | SHMCAP_MAP_WRITE | SHMCAP_MAP_UNSEALED);
	where = addr;
	if (flags & SHMCAP_MAP_SAME)
		where = (void *)src_addr;
	if (flags & (SHMCAP_MAP_FIXED | SHMCAP_MAP_SAME))
		mflags |= SHMCAP_MAP_FIXED;
	ret = shmcap_region_map(cap, rp.offset, rp.length, where, mflags, out);
out:
	shmcap_cap_close(cap);
	return ret;
}
