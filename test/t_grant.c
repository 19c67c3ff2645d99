/* Description: map from another actor: grants, rights, rules, revocation, death and pid reuse */
/* SPDX-License-Identifier: MIT */
/*
 * An actor grants some of its mappings with shmcap_map_grant() and other
 * actors map them by address with shmcap_map_from_actor(): a forked child
 * from its parent, the test's main process from its children, anywhere,
 * at a fixed address or at the same address. Writes are seen both ways.
 * Rights, the access rule (uid 65534), ranges that are not granted,
 * revocation and unmapping, the granting actor's death (SIGKILL while idle
 * and while stopped with a request waiting) and a process that reuses a
 * dead actor's pid (made with clone3() and set_tid, where allowed) are
 * checked, and so are bad arguments and a squatter on an actor's address.
 *
 * The main process never grants, so it never has the serving thread:
 * ThreadSanitizer cannot follow a child that starts threads after a
 * multi-threaded fork, and most children here grant. A granting actor is
 * therefore always a child; the tests that need a granting parent run in
 * a child that forks its own children, which only map.
 *
 * Usage: t_grant, or t_grant grantor FD (the program a reused pid runs).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"

#define SEC ((int64_t)1000000000)
#define MSEC ((int64_t)1000000)
/* Long enough never to expire in a passing run. */
#define T_OUT (30 * SEC)
#define CHILD_TIMEOUT 60
#define NOBODY 65534
#define RW SHMCAP_RIGHTS_REGION
#define RO SHMCAP_RIGHT_READ

static uint64_t page;

/* ------------------------------------------------------------------------
 * Helpers
 */

static void read_all(int fd, void *buf, size_t len)
{
	ssize_t r;

	do
		r = read(fd, buf, len);
	while (r < 0 && errno == EINTR);
	if (r != (ssize_t)len)
		FAIL("reading %zu bytes from a pipe: %zd (%s)", len, r,
		     r < 0 ? strerror(errno) : "short");
}

static void write_all(int fd, const void *buf, size_t len)
{
	if (write(fd, buf, len) != (ssize_t)len)
		FAIL("write: %s", strerror(errno));
}

static void send_u64(int fd, uint64_t v)
{
	write_all(fd, &v, sizeof(v));
}

static uint64_t recv_u64(int fd)
{
	uint64_t v;

	read_all(fd, &v, sizeof(v));
	return v;
}

/* One step of a two-process dance: tell the other side, wait for it. */
struct dance {
	int to_child[2], to_parent[2];
};

static void dance_init(struct dance *d)
{
	CHECK_EQ(pipe2(d->to_child, O_CLOEXEC), 0);
	CHECK_EQ(pipe2(d->to_parent, O_CLOEXEC), 0);
}

static void dance_close(struct dance *d)
{
	close(d->to_child[0]);
	close(d->to_child[1]);
	close(d->to_parent[0]);
	close(d->to_parent[1]);
}

static void child_says(struct dance *d)
{
	send_u64(d->to_parent[1], 1);
}

static void parent_hears(struct dance *d)
{
	CHECK_EQ(recv_u64(d->to_parent[0]), 1);
}

static void parent_says(struct dance *d)
{
	send_u64(d->to_child[1], 1);
}

static void child_hears(struct dance *d)
{
	CHECK_EQ(recv_u64(d->to_child[0]), 1);
}

/* A region of n pages mapped writable, page i holding "TAG i". */
static char *region_pages(unsigned int n, const char *tag, shmcap_cap **r,
			  shmcap_map **m)
{
	char *base = t_region_new(n * page, r, m);
	unsigned int i;

	for (i = 0; i < n; i++)
		snprintf(base + i * page, page, "%s %u", tag, i);
	return base;
}

static void check_page(const void *p, const char *tag, unsigned int i)
{
	char want[64];

	snprintf(want, sizeof(want), "%s %u", tag, i);
	CHECK_STR_EQ((const char *)p, want);
}

/* The parent of this process as an actor. */
static shmcap_cap *parent_actor(void)
{
	shmcap_cap *a;

	CHECK_OK(shmcap_actor_open((int32_t)getppid(), NULL, &a));
	return a;
}

/* Whether the kernel refuses to make [p, p + len) writable. */
static int write_refused(void *p, uint64_t len)
{
	if (mprotect(p, (size_t)len, PROT_READ | PROT_WRITE) == 0)
		return 0;
	CHECK_EQ(errno, EACCES);
	return 1;
}

static void become_nobody(void)
{
	if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) < 0)
		FAIL("dropping to uid %d: %s", NOBODY, strerror(errno));
}

/* Run fn in a forked child (a granting actor of its own) and reap it. */
static void in_child(void (*fn)(void))
{
	pid_t pid = t_fork_child(CHILD_TIMEOUT);

	if (pid == 0) {
		fn();
		t_child_pass();
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
}

/* ------------------------------------------------------------------------
 * Mapping a parent's grant: anywhere, fixed, same address; both ways
 */

static void basic_child(char *base, shmcap_cap *region, shmcap_map *m,
			struct dance *d)
{
	shmcap_map *a, *b, *f, *s, *x;
	shmcap_cap *actor = parent_actor();
	int fds = t_count_fds();
	unsigned int i;
	char *p, *hole;

	/* The inherited mapping is not granted in the child. */
	CHECK_ERR(shmcap_map_revoke(m), -ENOENT);

	/* All of it, anywhere, writable. */
	CHECK_OK(shmcap_map_from_actor(actor, base, 0, NULL, SHMCAP_MAP_WRITE,
				       T_OUT, &a));
	CHECK_EQ(shmcap_map_size(a), 4 * page);
	CHECK_EQ(shmcap_map_region_offset(a), 0);
	p = shmcap_map_addr(a);
	CHECK(p != base);
	for (i = 0; i < 4; i++)
		check_page(p + i * page, "basic", i);
	snprintf(p + page, page, "from child");

	/* A part of it, read-only. */
	CHECK_OK(shmcap_map_from_actor(actor, base + page, 2 * page, NULL,
				       SHMCAP_MAP_READ, T_OUT, &b));
	CHECK_EQ(shmcap_map_size(b), 2 * page);
	CHECK_EQ(shmcap_map_region_offset(b), page);
	CHECK_STR_EQ((char *)shmcap_map_addr(b), "from child");
	check_page((char *)shmcap_map_addr(b) + page, "basic", 2);
	CHECK(write_refused(shmcap_map_addr(b), 2 * page));

	/* At a fixed address: a free spot found first. */
	hole = mmap(NULL, 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	CHECK(hole != MAP_FAILED);
	CHECK_EQ(munmap(hole, 2 * page), 0);
	CHECK_OK(shmcap_map_from_actor(actor, base + 2 * page, 2 * page, hole,
				       SHMCAP_MAP_FIXED, T_OUT, &f));
	CHECK(shmcap_map_addr(f) == hole);
	check_page(hole + page, "basic", 3);
	/* Never over something already there. */
	CHECK_ERR(shmcap_map_from_actor(actor, base, page, hole,
					SHMCAP_MAP_FIXED, T_OUT, &x),
		  -EEXIST);

	/* At the same address: taken by the copy fork() left us ... */
	CHECK_ERR(shmcap_map_from_actor(actor, base, 0, NULL, SHMCAP_MAP_SAME,
					T_OUT, &x),
		  -EEXIST);
	/* ... so drop that copy (not granted here: nothing to withdraw). */
	shmcap_map_unmap(m);
	CHECK_OK(shmcap_map_from_actor(actor, base, 0, NULL,
				       SHMCAP_MAP_SAME | SHMCAP_MAP_WRITE,
				       T_OUT, &s));
	CHECK(shmcap_map_addr(s) == base);
	CHECK_STR_EQ(base + page, "from child");
	CHECK_ERR(shmcap_map_from_actor(actor, base, 0, NULL, SHMCAP_MAP_SAME,
					T_OUT, &x),
		  -EEXIST);

	/* The parent reads our write and writes back. */
	child_says(d);
	child_hears(d);
	CHECK_STR_EQ(p + 2 * page, "from parent");
	CHECK_STR_EQ(base + 2 * page, "from parent");
	CHECK_STR_EQ((char *)shmcap_map_addr(f), "from parent");

	shmcap_map_unmap(a);
	shmcap_map_unmap(b);
	shmcap_map_unmap(f);
	shmcap_map_unmap(s);
	CHECK_EQ(t_count_fds(), fds);
	shmcap_cap_close(actor);
	shmcap_cap_close(region);
}

static void basic_parent(void)
{
	shmcap_cap *region, *self;
	shmcap_map *m, *x;
	struct dance d;
	char *base;
	pid_t pid;

	base = region_pages(4, "basic", &region, &m);
	CHECK_OK(shmcap_map_grant(m, region, RW, 0600));
	/* An actor may map from itself. */
	CHECK_OK(shmcap_actor_self(&self));
	CHECK_OK(shmcap_map_from_actor(self, base + 3 * page, page, NULL,
				       SHMCAP_MAP_READ, T_OUT, &x));
	check_page(shmcap_map_addr(x), "basic", 3);
	shmcap_map_unmap(x);
	shmcap_cap_close(self);

	dance_init(&d);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		basic_child(base, region, m, &d);
		t_child_pass();
	}
	parent_hears(&d);
	CHECK_STR_EQ(base + page, "from child");
	snprintf(base + 2 * page, page, "from parent");
	parent_says(&d);
	t_reap_ok(pid, CHILD_TIMEOUT);
	dance_close(&d);
	t_region_free(region, m);
}

static void test_basic(void)
{
	in_child(basic_parent);
	printf("ok: a child maps its parent's grant anywhere, in part, at a "
	       "fixed and at the same address; writes seen both ways\n");
}

/* ------------------------------------------------------------------------
 * Rights
 */

static char *rights_base;

static void rights_read_only(void)
{
	shmcap_cap *actor = parent_actor();
	shmcap_map *x;

	CHECK_ERR(shmcap_map_from_actor(actor, rights_base, 0, NULL,
					SHMCAP_MAP_WRITE, T_OUT, &x),
		  -EACCES);
	CHECK_OK(shmcap_map_from_actor(actor, rights_base, 0, NULL,
				       SHMCAP_MAP_READ, T_OUT, &x));
	check_page(shmcap_map_addr(x), "rights", 0);
	/* The descriptor behind it was read-only: the kernel refuses. */
	CHECK(write_refused(shmcap_map_addr(x), shmcap_map_size(x)));
	shmcap_map_unmap(x);
	shmcap_cap_close(actor);
}

static void rights_read_write(void)
{
	shmcap_cap *actor = parent_actor();
	shmcap_map *x;

	CHECK_OK(shmcap_map_from_actor(actor, rights_base, 0, NULL,
				       SHMCAP_MAP_WRITE, T_OUT, &x));
	snprintf((char *)shmcap_map_addr(x) + page, page, "written");
	shmcap_map_unmap(x);
	/* Asking for READ only gets a read-only descriptor. */
	CHECK_OK(shmcap_map_from_actor(actor, rights_base, 0, NULL, 0, T_OUT,
				       &x));
	CHECK(write_refused(shmcap_map_addr(x), shmcap_map_size(x)));
	shmcap_map_unmap(x);
	shmcap_cap_close(actor);
}

static void rights_parent(void)
{
	shmcap_cap *region, *ro, *other;
	shmcap_map *m, *om;

	rights_base = region_pages(2, "rights", &region, &m);
	CHECK_OK(shmcap_map_grant(m, region, RO, 0600));
	in_child(rights_read_only);
	/* Granting again replaces the rights. */
	CHECK_OK(shmcap_map_grant(m, region, RW, 0600));
	in_child(rights_read_write);
	CHECK_STR_EQ(rights_base + page, "written");
	CHECK_OK(shmcap_map_grant(m, region, RO, 0600));
	in_child(rights_read_only);

	/* Never more than the capability holds. */
	CHECK_OK(shmcap_cap_derive(region, RO, &ro));
	CHECK_ERR(shmcap_map_grant(m, ro, RW, 0600), -EPERM);
	CHECK_OK(shmcap_map_grant(m, ro, RO, 0644));
	shmcap_cap_close(ro);
	/* The capability must be the region m maps. */
	t_region_new(page, &other, &om);
	CHECK_ERR(shmcap_map_grant(m, other, RO, 0600), -EINVAL);
	CHECK_ERR(shmcap_map_grant(om, region, RO, 0600), -EINVAL);
	t_region_free(other, om);
	t_region_free(region, m);
}

static void test_rights(void)
{
	in_child(rights_parent);
	printf("ok: a READ grant refuses WRITE and hands out a read-only "
	       "descriptor; grants replace, never exceed the capability\n");
}

/* ------------------------------------------------------------------------
 * Ranges, revocation, unmapping
 */

static void ranges_child(char *b1, char *b2, struct dance *d)
{
	shmcap_cap *actor = parent_actor();
	int fds = t_count_fds();
	shmcap_map *x;

	/* Not granted, or beyond the granted mapping. */
	CHECK_ERR(shmcap_map_from_actor(actor, b2, 0, NULL, 0, T_OUT, &x),
		  -ENOENT);
	CHECK_ERR(shmcap_map_from_actor(actor, b1 + 3 * page, 2 * page, NULL, 0,
					T_OUT, &x),
		  -ENOENT);
	/* Length 0 from a middle page: to the end of the mapping. */
	CHECK_OK(shmcap_map_from_actor(actor, b1 + 2 * page, 0, NULL, 0, T_OUT,
				       &x));
	CHECK_EQ(shmcap_map_size(x), 2 * page);
	CHECK_EQ(shmcap_map_region_offset(x), 2 * page);
	check_page(shmcap_map_addr(x), "ranges", 2);
	shmcap_map_unmap(x);
	CHECK_OK(shmcap_map_from_actor(actor, b1 + 3 * page, page, NULL, 0,
				       T_OUT, &x));
	check_page(shmcap_map_addr(x), "ranges", 3);
	shmcap_map_unmap(x);

	/* Revoked. */
	child_says(d);
	child_hears(d);
	CHECK_ERR(shmcap_map_from_actor(actor, b1, 0, NULL, 0, T_OUT, &x),
		  -ENOENT);
	/* Granted again, READ only. */
	child_says(d);
	child_hears(d);
	CHECK_ERR(shmcap_map_from_actor(actor, b1, 0, NULL, SHMCAP_MAP_WRITE,
					T_OUT, &x),
		  -EACCES);
	CHECK_OK(shmcap_map_from_actor(actor, b1, 0, NULL, 0, T_OUT, &x));
	/* Unmapped by the parent: gone, but our mapping stays valid. */
	child_says(d);
	child_hears(d);
	CHECK_ERR(shmcap_map_from_actor(actor, b1, 0, NULL, 0, T_OUT, &x),
		  -ENOENT);
	check_page((char *)shmcap_map_addr(x) + page, "ranges", 1);
	shmcap_map_unmap(x);
	CHECK_EQ(t_count_fds(), fds);
	shmcap_cap_close(actor);
}

static void ranges_parent(void)
{
	shmcap_cap *r1, *r2;
	shmcap_map *m1, *m2;
	struct dance d;
	char *b1, *b2;
	pid_t pid;

	b1 = region_pages(4, "ranges", &r1, &m1);
	b2 = region_pages(2, "other", &r2, &m2);
	CHECK_OK(shmcap_map_grant(m1, r1, RW, 0600));
	CHECK_ERR(shmcap_map_revoke(m2), -ENOENT);
	dance_init(&d);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		ranges_child(b1, b2, &d);
		t_child_pass();
	}
	parent_hears(&d);
	CHECK_OK(shmcap_map_revoke(m1));
	CHECK_ERR(shmcap_map_revoke(m1), -ENOENT);
	parent_says(&d);
	parent_hears(&d);
	CHECK_OK(shmcap_map_grant(m1, r1, RO, 0600));
	parent_says(&d);
	parent_hears(&d);
	shmcap_map_unmap(m1);
	parent_says(&d);
	t_reap_ok(pid, CHILD_TIMEOUT);
	dance_close(&d);
	shmcap_cap_close(r1);
	t_region_free(r2, m2);
}

static void test_ranges(void)
{
	in_child(ranges_parent);
	printf("ok: ungranted ranges -ENOENT, sub-ranges and length 0 served, "
	       "revoke and unmap withdraw the grant\n");
}

/* ------------------------------------------------------------------------
 * The access rule
 */

static char *rule_base[4];

static void rule_nobody(void)
{
	shmcap_cap *actor = parent_actor();
	shmcap_map *x;

	become_nobody();
	/* 0600 */
	CHECK_ERR(shmcap_map_from_actor(actor, rule_base[0], 0, NULL, 0, T_OUT,
					&x),
		  -EACCES);
	/* 0644: read only. */
	CHECK_ERR(shmcap_map_from_actor(actor, rule_base[1], 0, NULL,
					SHMCAP_MAP_WRITE, T_OUT, &x),
		  -EACCES);
	CHECK_OK(shmcap_map_from_actor(actor, rule_base[1], 0, NULL, 0, T_OUT,
				       &x));
	check_page(shmcap_map_addr(x), "rule1", 0);
	CHECK(write_refused(shmcap_map_addr(x), shmcap_map_size(x)));
	shmcap_map_unmap(x);
	/* 0666: read and write. */
	CHECK_OK(shmcap_map_from_actor(actor, rule_base[2], 0, NULL,
				       SHMCAP_MAP_WRITE, T_OUT, &x));
	snprintf(shmcap_map_addr(x), page, "nobody was here");
	shmcap_map_unmap(x);
	/* 0666, but granted READ only. */
	CHECK_ERR(shmcap_map_from_actor(actor, rule_base[3], 0, NULL,
					SHMCAP_MAP_WRITE, T_OUT, &x),
		  -EACCES);
	CHECK_OK(shmcap_map_from_actor(actor, rule_base[3], 0, NULL, 0, T_OUT,
				       &x));
	shmcap_map_unmap(x);
	shmcap_cap_close(actor);
}

static void rule_root(void)
{
	shmcap_cap *actor = parent_actor();
	shmcap_map *x;

	/* Root, like the owner, passes every rule. */
	CHECK_OK(shmcap_map_from_actor(actor, rule_base[0], 0, NULL,
				       SHMCAP_MAP_WRITE, T_OUT, &x));
	shmcap_map_unmap(x);
	shmcap_cap_close(actor);
}

static void rule_parent(void)
{
	static const unsigned int mode[4] = { 0600, 0644, 0666, 0666 };
	shmcap_cap *r[4];
	shmcap_map *m[4];
	char tag[16];
	int i;

	for (i = 0; i < 4; i++) {
		snprintf(tag, sizeof(tag), "rule%d", i);
		rule_base[i] = region_pages(1, tag, &r[i], &m[i]);
		CHECK_OK(shmcap_map_grant(m[i], r[i], i == 3 ? RO : RW,
					  mode[i]));
	}
	in_child(rule_nobody);
	in_child(rule_root);
	CHECK_STR_EQ(rule_base[2], "nobody was here");
	for (i = 0; i < 4; i++)
		t_region_free(r[i], m[i]);
}

static void test_rule(void)
{
	if (geteuid() != 0) {
		printf("skipped: access rule (needs root to switch users)\n");
		return;
	}
	in_child(rule_parent);
	printf("ok: per-grant rules: 0600 refuses uid %d, 0644 read-only, "
	       "0666 writable unless granted READ; root passes\n",
	       NOBODY);
}

/* ------------------------------------------------------------------------
 * The granting actor dies
 */

/*
 * Fork an actor that grants one region of 2 pages ("TAG i") with mode
 * 0666 and sleeps; returns its pid and the address, its actor cap in *a.
 */
static pid_t fork_grantor(const char *tag, char **addr, shmcap_cap **a)
{
	int p[2];
	pid_t pid;

	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		shmcap_cap *r;
		shmcap_map *m;
		char *base = region_pages(2, tag, &r, &m);

		close(p[0]);
		CHECK_OK(shmcap_map_grant(m, r, RW, 0666));
		send_u64(p[1], (uintptr_t)base);
		for (;;)
			pause();
	}
	close(p[1]);
	*addr = (char *)(uintptr_t)recv_u64(p[0]);
	close(p[0]);
	CHECK_OK(shmcap_actor_open(pid, NULL, a));
	return pid;
}

static void wait_ended(const shmcap_cap *actor)
{
	struct pollfd p = { .fd = shmcap_cap_fd(actor), .events = POLLIN };

	CHECK_EQ(poll(&p, 1, CHILD_TIMEOUT * 1000), 1);
}

static void test_killed(void)
{
	int fds = t_count_fds(), res[2], ret;
	shmcap_cap *a;
	shmcap_map *x, *y;
	char *addr;
	pid_t g, r;

	g = fork_grantor("doomed", &addr, &a);
	CHECK_OK(shmcap_map_from_actor(a, addr, 0, NULL, SHMCAP_MAP_WRITE,
				       T_OUT, &x));
	check_page((char *)shmcap_map_addr(x) + page, "doomed", 1);
	CHECK_EQ(kill(g, SIGKILL), 0);
	/* Ended, not yet reaped (a zombie) ... */
	wait_ended(a);
	CHECK_ERR(shmcap_map_from_actor(a, addr, 0, NULL, 0, T_OUT, &y),
		  -ESRCH);
	t_check_killed(g, CHILD_TIMEOUT);
	/* ... and reaped. */
	CHECK_ERR(shmcap_map_from_actor(a, addr, 0, NULL, 0, T_OUT, &y),
		  -ESRCH);
	/* What was mapped stays: the memory lives while mapped. */
	check_page(shmcap_map_addr(x), "doomed", 0);
	shmcap_map_unmap(x);
	shmcap_cap_close(a);

	/* Stopped: a request waits, and times out if asked to. */
	g = fork_grantor("stopped", &addr, &a);
	CHECK_EQ(kill(g, SIGSTOP), 0);
	for (ret = 0; ret < 100000 && t_proc_state(g) != 'T'; ret++)
		t_sleep_ns(100000);
	CHECK_EQ(t_proc_state(g), 'T');
	CHECK_ERR(shmcap_map_from_actor(a, addr, 0, NULL, 0, 50 * MSEC, &y),
		  -ETIMEDOUT);
	/* A request in flight when it is killed ends at once. */
	CHECK_EQ(pipe2(res, O_CLOEXEC), 0);
	r = t_fork_child(CHILD_TIMEOUT);
	if (r == 0) {
		ret = shmcap_map_from_actor(a, addr, 0, NULL, 0, T_OUT, &y);
		write_all(res[1], &ret, sizeof(ret));
		t_child_pass();
	}
	t_wait_in_poll(r);
	CHECK_EQ(kill(g, SIGKILL), 0);
	t_check_killed(g, CHILD_TIMEOUT);
	t_reap_ok(r, CHILD_TIMEOUT);
	read_all(res[0], &ret, sizeof(ret));
	if (ret != -ESRCH)
		FAIL("request to a killed actor: %d (%s), expected -ESRCH", ret,
		     shmcap_err_name(ret));
	close(res[0]);
	close(res[1]);
	shmcap_cap_close(a);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: the granting actor SIGKILLed (zombie, reaped, during a "
	       "request while stopped): -ESRCH at once\n");
}

/* ------------------------------------------------------------------------
 * fork(): a child does not serve its parent's grants
 */

/*
 * How many sockets carry the abstract address "@shmcap-actor-ID" on the
 * host: the listener, and the server's end of each connection it accepted
 * and has not closed yet.
 */
static int actor_sockets(const shmcap_cap *actor)
{
	char hex[SHMCAP_ACTOR_ID_TEXT], want[64], line[512];
	shmcap_actor_id id;
	FILE *f;
	int found = 0;

	CHECK_OK(shmcap_actor_id_of(actor, &id));
	CHECK_OK(shmcap_actor_id_format(&id, hex, sizeof(hex)));
	snprintf(want, sizeof(want), " @shmcap-actor-%s", hex);
	f = fopen("/proc/net/unix", "re");
	CHECK_NOTNULL(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, want))
			found++;
	fclose(f);
	return found;
}

/* Whether an abstract socket "@shmcap-actor-ID" exists on the host. */
static int actor_socket_exists(const shmcap_cap *actor)
{
	return actor_sockets(actor) > 0;
}

static void test_fork(void)
{
	int fds = t_count_fds(), p[2], q[2];
	shmcap_cap *pa, *ca;
	shmcap_map *x;
	char *addr;
	pid_t parent, child;

	/* An actor that grants, then forks a child that lives on. */
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ(pipe2(q, O_CLOEXEC), 0);
	parent = t_fork_child(CHILD_TIMEOUT);
	if (parent == 0) {
		shmcap_cap *r, *self;
		shmcap_map *m, *y;
		char *base = region_pages(1, "forked", &r, &m);

		CHECK_OK(shmcap_map_grant(m, r, RW, 0666));
		/*
		 * One request answered before fork(): the serving thread has
		 * finished starting. Once under gcc 12's ASan the child's own
		 * serving thread never answered; the likely cause is a fork
		 * in the middle of the parent's thread start, leaving a lock
		 * of the sanitizer runtime held in the child.
		 */
		CHECK_OK(shmcap_actor_self(&self));
		CHECK_OK(shmcap_map_from_actor(self, base, 0, NULL, 0, T_OUT,
					       &y));
		shmcap_map_unmap(y);
		/*
		 * And the thread has closed that connection's socket, which
		 * the child would otherwise inherit (it carries our address
		 * and would outlive us in the check below).
		 */
		while (actor_sockets(self) > 1)
			t_sleep_ns(1000000);
		shmcap_cap_close(self);
		send_u64(p[1], (uintptr_t)base);
		child = t_fork_child(CHILD_TIMEOUT);
		if (child == 0) {
			/* Outlive the parent; the watchdog still bounds us. */
			prctl(PR_SET_PDEATHSIG, 0);
			/* Not granted here ... */
			CHECK_ERR(shmcap_map_revoke(m), -ENOENT);
			/* ... but ours to grant anew, under our own id. */
			if (!T_TSAN) {
				CHECK_OK(shmcap_map_grant(m, r, RO, 0666));
				CHECK_OK(shmcap_actor_self(&self));
				CHECK_OK(shmcap_map_from_actor(
					self, base, 0, NULL, 0, T_OUT, &y));
				shmcap_map_unmap(y);
				shmcap_cap_close(self);
			}
			send_u64(q[1], (uint64_t)getpid());
			for (;;)
				pause();
		}
		for (;;)
			pause();
	}
	addr = (char *)(uintptr_t)recv_u64(p[0]);
	child = (pid_t)recv_u64(q[0]);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
	CHECK_OK(shmcap_actor_open(parent, NULL, &pa));
	CHECK_OK(shmcap_actor_open(child, NULL, &ca));
	CHECK(actor_socket_exists(pa));
	CHECK_EQ(actor_socket_exists(ca), !T_TSAN);
	/* Each answers for itself: the child's grant is READ only. */
	CHECK_OK(shmcap_map_from_actor(pa, addr, 0, NULL, SHMCAP_MAP_WRITE,
				       T_OUT, &x));
	shmcap_map_unmap(x);
	if (T_TSAN) {
		CHECK_ERR(shmcap_map_from_actor(ca, addr, 0, NULL, 0, T_OUT,
						&x),
			  -ESRCH);
	} else {
		CHECK_ERR(shmcap_map_from_actor(ca, addr, 0, NULL,
						SHMCAP_MAP_WRITE, T_OUT, &x),
			  -EACCES);
		CHECK_OK(
			shmcap_map_from_actor(ca, addr, 0, NULL, 0, T_OUT, &x));
		check_page(shmcap_map_addr(x), "forked", 0);
		shmcap_map_unmap(x);
	}

	/* The parent dies; the child held no copy of its address. */
	CHECK_EQ(kill(parent, SIGKILL), 0);
	t_check_killed(parent, CHILD_TIMEOUT);
	CHECK(!actor_socket_exists(pa));
	CHECK_ERR(shmcap_map_from_actor(pa, addr, 0, NULL, 0, T_OUT, &x),
		  -ESRCH);
	if (!T_TSAN) {
		CHECK_OK(
			shmcap_map_from_actor(ca, addr, 0, NULL, 0, T_OUT, &x));
		shmcap_map_unmap(x);
	}
	/* The orphan is not our child: kill it, wait through its pidfd. */
	CHECK_OK(shmcap_actor_signal(ca, SIGKILL));
	wait_ended(ca);
	CHECK_ERR(shmcap_map_from_actor(ca, addr, 0, NULL, 0, T_OUT, &x),
		  -ESRCH);
	shmcap_cap_close(pa);
	shmcap_cap_close(ca);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: after fork() the child serves only its own grants and does "
	       "not keep its parent's address alive\n");
}

/* ------------------------------------------------------------------------
 * A reused pid never answers for a dead actor
 */

/* The program a reused pid runs: grant a region, report, sleep. */
static int grantor_main(int fd)
{
	shmcap_cap *r;
	shmcap_map *m;
	char *base;

	t_watchdog(CHILD_TIMEOUT);
	base = region_pages(1, "reused", &r, &m);
	CHECK_OK(shmcap_map_grant(m, r, RW, 0666));
	send_u64(fd, (uintptr_t)base);
	for (;;)
		pause();
}

/* clone3() with the child's pid chosen: -errno if not allowed here. */
static pid_t clone_with_pid(pid_t want)
{
	struct clone_args args;
	pid_t tid = want;
	long r;

	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	args.set_tid = (uintptr_t)&tid;
	args.set_tid_size = 1;
	r = syscall(SYS_clone3, &args, sizeof(args));
	return r < 0 ? -errno : (pid_t)r;
}

static void test_pid_reuse(void)
{
	char self[64], fdarg[16], *argv[4];
	int fds = t_count_fds(), p[2];
	shmcap_cap *a, *b;
	shmcap_map *x;
	char *addr, *baddr;
	pid_t g, reuse;

	g = fork_grantor("dead", &addr, &a);
	CHECK_EQ(kill(g, SIGKILL), 0);
	t_check_killed(g, CHILD_TIMEOUT);

	/* A new process with the dead actor's pid, granting a region. */
	CHECK_EQ(pipe(p), 0); /* inherited through exec */
	snprintf(self, sizeof(self), "/proc/%ld/exe", (long)getpid());
	snprintf(fdarg, sizeof(fdarg), "%d", p[1]);
	argv[0] = self;
	argv[1] = (char *)"grantor";
	argv[2] = fdarg;
	argv[3] = NULL;
	fflush(NULL);
	reuse = clone_with_pid(g);
	if (reuse == 0) {
		/* Only system calls between clone3() and exec. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(self, argv);
		_exit(127);
	}
	close(p[1]);
	if (reuse < 0) {
		close(p[0]);
		shmcap_cap_close(a);
		printf("skipped: pid reuse (clone3 with set_tid: %s); the dead "
		       "actor's id in the address is what protects\n",
		       strerror(-reuse));
		return;
	}
	CHECK_EQ(reuse, g);
	baddr = (char *)(uintptr_t)recv_u64(p[0]);
	close(p[0]);

	/* The old capability names the dead actor: -ESRCH, wherever. */
	CHECK_ERR(shmcap_map_from_actor(a, baddr, 0, NULL, 0, T_OUT, &x),
		  -ESRCH);
	CHECK_ERR(shmcap_map_from_actor(a, addr, 0, NULL, 0, T_OUT, &x),
		  -ESRCH);
	/* The new process does serve that range, under its own id. */
	CHECK_OK(shmcap_actor_open(reuse, NULL, &b));
	CHECK_OK(shmcap_map_from_actor(b, baddr, 0, NULL, 0, T_OUT, &x));
	check_page(shmcap_map_addr(x), "reused", 0);
	shmcap_map_unmap(x);
	CHECK_EQ(kill(reuse, SIGKILL), 0);
	t_check_killed(reuse, CHILD_TIMEOUT);
	shmcap_cap_close(a);
	shmcap_cap_close(b);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: pid %ld reused by a granting process: the dead actor's "
	       "capability gets -ESRCH, never the newcomer's memory\n",
	       (long)g);
}

/* ------------------------------------------------------------------------
 * Bad input, squatters, concurrency
 */

static void test_bad_input(void)
{
	int fds = t_count_fds(), p[2];
	shmcap_cap *r, *n, *self, *none;
	shmcap_map *m, *x = NULL;
	char *base;
	pid_t idle;

	base = t_region_new(2 * page, &r, &m);
	CHECK_OK(shmcap_notifier_create(&n));
	/* Every refusal comes before a thread would start here. */
	CHECK_ERR(shmcap_map_grant(NULL, r, RO, 0600), -EINVAL);
	CHECK_ERR(shmcap_map_grant(m, NULL, RO, 0600), -EINVAL);
	CHECK_ERR(shmcap_map_grant(m, n, RO, 0600), -EINVAL);
	CHECK_ERR(shmcap_map_grant(m, r, 0, 0600), -EINVAL);
	CHECK_ERR(shmcap_map_grant(m, r, SHMCAP_RIGHT_WRITE, 0600), -EINVAL);
	CHECK_ERR(shmcap_map_grant(m, r, RO | SHMCAP_RIGHT_SIGNAL, 0600),
		  -EINVAL);
	CHECK_ERR(shmcap_map_grant(m, r, RO, 01000), -EINVAL);
	CHECK_ERR(shmcap_map_revoke(NULL), -EINVAL);
	CHECK_ERR(shmcap_map_revoke(m), -ENOENT);

	CHECK_OK(shmcap_actor_self(&self));
	CHECK_ERR(shmcap_map_from_actor(NULL, base, 0, NULL, 0, T_OUT, &x),
		  -EINVAL);
	CHECK_ERR(shmcap_map_from_actor(r, base, 0, NULL, 0, T_OUT, &x),
		  -EINVAL);
	CHECK_ERR(shmcap_map_from_actor(self, base, 0, NULL, 0, T_OUT, NULL),
		  -EINVAL);
	CHECK_ERR(shmcap_map_from_actor(self, NULL, 0, NULL, 0, T_OUT, &x),
		  -EINVAL);
	CHECK_ERR(shmcap_map_from_actor(self, base + 1, 0, NULL, 0, T_OUT, &x),
		  -EINVAL);
	CHECK_ERR(shmcap_map_from_actor(self, base, page + 1, NULL, 0, T_OUT,
					&x),
		  -EINVAL);
	CHECK_ERR(shmcap_map_from_actor(self, base, 0, NULL, 0x1000, T_OUT, &x),
		  -EINVAL);
	CHECK_ERR(shmcap_map_from_actor(self, base, 0, base,
					SHMCAP_MAP_FIXED | SHMCAP_MAP_SAME,
					T_OUT, &x),
		  -EINVAL);
	CHECK_ERR(shmcap_map_from_actor(self, base, 0, base, SHMCAP_MAP_SAME,
					T_OUT, &x),
		  -EINVAL);
	CHECK_ERR(shmcap_map_from_actor(self, base, 0, NULL, SHMCAP_MAP_FIXED,
					T_OUT, &x),
		  -EINVAL);
	CHECK_ERR(shmcap_map_from_actor(self, base, 0, base + 1,
					SHMCAP_MAP_FIXED, T_OUT, &x),
		  -EINVAL);
	CHECK_NULL(x);
	/* An actor that never granted anything (this one, or a child). */
	CHECK_ERR(shmcap_map_from_actor(self, base, 0, NULL, 0, T_OUT, &x),
		  -ESRCH);
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	idle = t_fork_child(CHILD_TIMEOUT);
	if (idle == 0) {
		char c;

		close(p[1]);
		CHECK_EQ(read(p[0], &c, 1), 0);
		t_child_pass();
	}
	close(p[0]);
	CHECK_OK(shmcap_actor_open(idle, NULL, &none));
	CHECK_ERR(shmcap_map_from_actor(none, base, 0, NULL, 0, T_OUT, &x),
		  -ESRCH);
	close(p[1]);
	t_reap_ok(idle, CHILD_TIMEOUT);
	CHECK_ERR(shmcap_map_from_actor(none, base, 0, NULL, 0, T_OUT, &x),
		  -ESRCH);
	shmcap_cap_close(none);
	shmcap_cap_close(self);
	shmcap_cap_close(n);
	t_region_free(r, m);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: bad arguments refused; an actor that grants nothing, "
	       "alive or reaped: -ESRCH\n");
}

/*
 * Another process binds an actor's address before the actor grants: the
 * actor's grant fails (-EADDRINUSE), and nobody takes the squatter's
 * answers for the actor's.
 */
static void squat_victim(void)
{
	char hex[SHMCAP_ACTOR_ID_TEXT];
	struct sockaddr_un sa;
	shmcap_actor_id id;
	shmcap_cap *r, *self;
	shmcap_map *m, *x;
	struct dance d;
	socklen_t len;
	char *base;
	pid_t squatter;
	int n;

	base = region_pages(1, "squat", &r, &m);
	CHECK_OK(shmcap_actor_self(&self));
	CHECK_OK(shmcap_self(&id));
	CHECK_OK(shmcap_actor_id_format(&id, hex, sizeof(hex)));
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1,
		     "shmcap-actor-%s", hex);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			  (size_t)n);
	dance_init(&d);
	squatter = t_fork_child(CHILD_TIMEOUT);
	if (squatter == 0) {
		int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		int c;

		CHECK(s >= 0);
		CHECK_EQ(bind(s, (struct sockaddr *)&sa, len), 0);
		CHECK_EQ(listen(s, 4), 0);
		child_says(&d);
		/* Answers whoever connects with a hang-up. */
		for (;;) {
			c = accept(s, NULL, NULL);
			if (c >= 0)
				close(c);
		}
	}
	parent_hears(&d);
	CHECK_ERR(shmcap_map_grant(m, r, RW, 0666), -EADDRINUSE);
	/* The squatter is not us: a request for us is not sent to it. */
	CHECK_ERR(shmcap_map_from_actor(self, base, 0, NULL, 0, T_OUT, &x),
		  -ESRCH);
	CHECK_EQ(kill(squatter, SIGKILL), 0);
	t_check_killed(squatter, CHILD_TIMEOUT);
	CHECK_OK(shmcap_map_grant(m, r, RW, 0666));
	CHECK_OK(shmcap_map_from_actor(self, base, 0, NULL, 0, T_OUT, &x));
	shmcap_map_unmap(x);
	dance_close(&d);
	shmcap_cap_close(self);
	t_region_free(r, m);
}

static void test_squatter(void)
{
	in_child(squat_victim);
	printf("ok: a squatter on an actor's address: the grant fails with "
	       "-EADDRINUSE and requests never reach the squatter\n");
}

#define HAMMER_KIDS 2
#define HAMMER_MAPS 4

static char *hammer_base[HAMMER_MAPS];

static void hammer_child(void)
{
	shmcap_cap *actor = parent_actor();
	unsigned long i, rounds = t_scaled(200);
	shmcap_map *x;
	int ret;

	t_rng_seed();
	for (i = 0; i < rounds; i++) {
		ret = shmcap_map_from_actor(actor,
					    hammer_base[t_rnd() % HAMMER_MAPS],
					    0, NULL, 0, T_OUT, &x);
		if (ret == 0)
			shmcap_map_unmap(x);
		else if (ret != -ENOENT)
			FAIL("hammer: %d (%s)", ret, shmcap_err_name(ret));
	}
	shmcap_cap_close(actor);
}

static void hammer_parent(void)
{
	shmcap_cap *r[HAMMER_MAPS];
	shmcap_map *m[HAMMER_MAPS];
	pid_t kids[HAMMER_KIDS];
	unsigned long i, rounds = t_scaled(2000);
	int k, j, live;

	for (j = 0; j < HAMMER_MAPS; j++) {
		hammer_base[j] = region_pages(2, "hammer", &r[j], &m[j]);
		CHECK_OK(shmcap_map_grant(m[j], r[j], RW, 0600));
	}
	for (k = 0; k < HAMMER_KIDS; k++) {
		kids[k] = t_fork_child(CHILD_TIMEOUT);
		if (kids[k] == 0) {
			hammer_child();
			t_child_pass();
		}
	}
	/* Grant and revoke while the serving thread answers the children. */
	t_rng_seed();
	for (i = 0;; i++) {
		live = 0;
		for (k = 0; k < HAMMER_KIDS; k++) {
			int st;
			pid_t w;

			if (!kids[k])
				continue;
			w = waitpid(kids[k], &st, WNOHANG);
			if (w == kids[k]) {
				CHECK_CHILD_OK(st);
				kids[k] = 0;
			} else {
				CHECK_EQ(w, 0);
				live++;
			}
		}
		if (!live && i >= rounds)
			break;
		j = (int)(t_rnd() % HAMMER_MAPS);
		if (t_rnd() & 1)
			CHECK_OK(shmcap_map_grant(m[j], r[j],
						  t_rnd() & 1 ? RW : RO, 0600));
		else
			shmcap_map_revoke(m[j]);
		if (!live)
			continue;
		if (i % 64 == 0)
			t_sleep_ns(100000);
	}
	for (j = 0; j < HAMMER_MAPS; j++)
		t_region_free(r[j], m[j]);
}

static void test_concurrent(void)
{
	in_child(hammer_parent);
	printf("ok: grant and revoke while %d children map concurrently\n",
	       HAMMER_KIDS);
}

int main(int argc, char **argv)
{
	int fds;

	page = (uint64_t)sysconf(_SC_PAGESIZE);
	if (argc == 3 && strcmp(argv[1], "grantor") == 0)
		return grantor_main(atoi(argv[2]));
	t_watchdog(110);
	fds = t_count_fds();
	CHECK(fds > 0);

	test_bad_input();
	test_basic();
	test_rights();
	test_ranges();
	test_rule();
	test_killed();
	test_fork();
	test_pid_reuse();
	test_squatter();
	test_concurrent();

	CHECK_EQ(t_count_fds(), fds);
	return T_EXIT_PASS;
}
