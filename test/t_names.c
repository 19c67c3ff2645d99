/* Description: published names: publish, look up, access rule, handlers, death of the publisher */
/* SPDX-License-Identifier: MIT */
/*
 * Names are published by this process (with a thread or served by its own
 * dispatch loop) and by forked children, and looked up in this process and
 * from forked children, some of them switched to uid 65534 to meet the
 * access rule as another user. Publishers are SIGKILLed while idle, in the
 * middle of a request and while stopped; clients must then learn it at
 * once (-ESRCH or -ENOENT, never their 30-second timeout). Hostile clients
 * and a hostile server speak raw bytes to the library.
 *
 * Every part counts this process's descriptors before and after. Nothing
 * waits for time to pass, except where the thing tested is a timeout or
 * the server's grace period for silent clients, and then only the result
 * is checked, never the time taken.
 *
 * ThreadSanitizer cannot follow a child that starts threads after a
 * multi-threaded fork, so publishers with a thread are forked only while
 * this process has no thread of its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"

#define SEC ((int64_t)1000000000)
#define MSEC ((int64_t)1000000)
/* Long enough never to expire in a passing run. */
#define LOOKUP_TIMEOUT (30 * SEC)
#define CHILD_TIMEOUT 60
#define NOBODY 65534
#define NAMELEN (SHMCAP_PUBLISHED_NAME_MAX + 1)
/* More silent clients than the server takes in one round (64). */
#define BATCH_SILENT 70

/* The wire format of src/names.c, for hostile clients and servers. */
#define REQ_MAGIC 0x51524e53u
#define REP_MAGIC 0x50524e53u

struct req_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t len;
	uint32_t reserved;
};

struct rep_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t ncaps;
	int32_t status;
	uint32_t len;
	struct {
		uint32_t type;
		uint32_t rights;
	} caps[SHMCAP_MSG_MAX_CAPS];
};

_Static_assert(sizeof(struct req_hdr) == 16, "request as documented");
_Static_assert(sizeof(struct rep_hdr) == 144, "reply as documented");

static long page_size;

/* ------------------------------------------------------------------------
 * Helpers
 */

/* A name unique to this process: "t-names.PID.tag". */
static const char *name_of(char *buf, const char *tag)
{
	snprintf(buf, NAMELEN, "t-names.%ld.%s", (long)getpid(), tag);
	return buf;
}

static shmcap_cap *make_notifier(void)
{
	shmcap_cap *cap;

	CHECK_OK(shmcap_notifier_create(&cap));
	return cap;
}

static void close_all(shmcap_cap **caps, int n)
{
	int i;

	for (i = 0; i < n; i++)
		shmcap_cap_close(caps[i]);
}

/*
 * Look name up, which must give a region holding text with region_rights
 * and a notifier with notifier_rights; a read-only region must be backed
 * by an O_RDONLY descriptor the kernel refuses to map writable.
 */
static void lookup_pair(const char *name, const char *text,
			unsigned int region_rights,
			unsigned int notifier_rights)
{
	shmcap_cap *caps[4] = { NULL };
	shmcap_map *m;
	void *p;

	CHECK_EQ(shmcap_name_lookup(name, caps, 4, LOOKUP_TIMEOUT), 2);
	t_check_text_region(caps[0], text);
	CHECK_EQ(shmcap_cap_rights(caps[0]), region_rights);
	CHECK_EQ(shmcap_cap_type(caps[1]), SHMCAP_TYPE_NOTIFIER);
	CHECK_EQ(shmcap_cap_rights(caps[1]), notifier_rights);
	if (region_rights & SHMCAP_RIGHT_WRITE) {
		CHECK_EQ(t_accmode(caps[0]), O_RDWR);
	} else {
		CHECK_EQ(t_accmode(caps[0]), O_RDONLY);
		CHECK_ERR(shmcap_region_map(caps[0], 0, 0, NULL,
					    SHMCAP_MAP_WRITE, &m),
			  -EACCES);
		p = mmap(NULL, (size_t)page_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, shmcap_cap_fd(caps[0]), 0);
		CHECK(p == MAP_FAILED);
		CHECK_EQ(errno, EACCES);
	}
	close_all(caps, 2);
}

/* Publish [region holding text, notifier] under name. */
static shmcap_name *publish_pair(const char *name, const char *text,
				 unsigned int mode, unsigned int flags)
{
	shmcap_cap *caps[2];
	shmcap_name *n;

	caps[0] = t_text_region(text);
	caps[1] = make_notifier();
	CHECK_OK(shmcap_name_publish(name, caps, 2, mode, flags, &n));
	/* The name keeps its own copies. */
	close_all(caps, 2);
	return n;
}

/* Become uid and gid 65534 with the supplementary groups given. */
static void become_nobody(const gid_t *groups, size_t n)
{
	if (setgroups(n, groups) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) < 0)
		FAIL("dropping to uid %d: %s", NOBODY, strerror(errno));
	CHECK_EQ(geteuid(), NOBODY);
}

static void read_byte(int fd)
{
	char c;
	ssize_t r;

	do
		r = read(fd, &c, 1);
	while (r < 0 && errno == EINTR);
	if (r != 1)
		FAIL("reading a byte from a child: %zd (%s)", r,
		     strerror(errno));
}

static void write_byte(int fd)
{
	char c = 1;

	if (write(fd, &c, 1) != 1)
		FAIL("write: %s", strerror(errno));
}

static void write_int(int fd, int v)
{
	if (write(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		FAIL("write: %s", strerror(errno));
}

static int read_int(int fd)
{
	ssize_t r;
	int v;

	do
		r = read(fd, &v, sizeof(v));
	while (r < 0 && errno == EINTR);
	if (r != (ssize_t)sizeof(v))
		FAIL("reading a result from a child: %zd", r);
	return v;
}

/* ------------------------------------------------------------------------
 * Publishing and looking up
 */

static void test_thread_basic(void)
{
	char name[NAMELEN];
	int fds = t_count_fds(), i;
	shmcap_cap *caps[2];
	shmcap_name *n;
	pid_t pid;

	name_of(name, "basic");
	n = publish_pair(name, "basic text", 0600, SHMCAP_NAME_THREAD);
	/* In this process, through the name's thread. */
	for (i = 0; i < 3; i++)
		lookup_pair(name, "basic text", SHMCAP_RIGHTS_REGION,
			    SHMCAP_RIGHTS_NOTIFIER);
	/* No room for what the name holds: -E2BIG, nothing kept. */
	CHECK_ERR(shmcap_name_lookup(name, NULL, 0, LOOKUP_TIMEOUT), -E2BIG);
	/* Too small an array: nothing is kept. */
	caps[0] = caps[1] = NULL;
	CHECK_ERR(shmcap_name_lookup(name, caps, 1, LOOKUP_TIMEOUT), -E2BIG);
	CHECK_NULL(caps[0]);

	/* From forked children, several at once. */
	{
		pid_t kids[4];

		for (i = 0; i < 4; i++) {
			kids[i] = t_fork_child(CHILD_TIMEOUT);
			if (kids[i] == 0) {
				lookup_pair(name, "basic text",
					    SHMCAP_RIGHTS_REGION,
					    SHMCAP_RIGHTS_NOTIFIER);
				t_child_pass();
			}
		}
		for (i = 0; i < 4; i++)
			t_reap_ok(kids[i], CHILD_TIMEOUT);
	}

	/* The name dies with unpublish, at once. */
	shmcap_name_unpublish(n);
	CHECK_ERR(shmcap_name_lookup(name, caps, 2, LOOKUP_TIMEOUT), -ENOENT);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		CHECK_ERR(shmcap_name_lookup(name, caps, 2, LOOKUP_TIMEOUT),
			  -ENOENT);
		t_child_pass();
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
	/* ... and can be published again. */
	n = publish_pair(name, "again", 0600, SHMCAP_NAME_THREAD);
	lookup_pair(name, "again", SHMCAP_RIGHTS_REGION,
		    SHMCAP_RIGHTS_NOTIFIER);
	shmcap_name_unpublish(n);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: publish with a thread, look up here and from 4 children, "
	       "unpublish removes the name\n");
}

static void test_empty_and_reduced(void)
{
	char name[NAMELEN];
	int fds = t_count_fds();
	shmcap_cap *full[2], *less[2], *got[2] = { NULL, NULL };
	shmcap_name *n;

	/* No capabilities: a lookup only says that the name lives. */
	name_of(name, "empty");
	CHECK_OK(shmcap_name_publish(name, NULL, 0, 0600, SHMCAP_NAME_THREAD,
				     &n));
	CHECK_EQ(shmcap_name_lookup(name, NULL, 0, LOOKUP_TIMEOUT), 0);
	CHECK_EQ(shmcap_name_lookup(name, got, 2, LOOKUP_TIMEOUT), 0);
	shmcap_name_unpublish(n);

	/* A lookup never gets more rights than were published. */
	name_of(name, "reduced");
	full[0] = t_text_region("reduced");
	full[1] = make_notifier();
	CHECK_OK(shmcap_cap_derive(full[0], SHMCAP_RIGHT_READ, &less[0]));
	CHECK_OK(shmcap_cap_derive(full[1], SHMCAP_RIGHT_SIGNAL, &less[1]));
	CHECK_OK(shmcap_name_publish(name, less, 2, 0666, SHMCAP_NAME_THREAD,
				     &n));
	close_all(less, 2);
	close_all(full, 2);
	lookup_pair(name, "reduced", SHMCAP_RIGHT_READ, SHMCAP_RIGHT_SIGNAL);
	shmcap_name_unpublish(n);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: a name with no capabilities; published rights are an upper "
	       "bound\n");
}

static void test_dispatch(void)
{
	char name[NAMELEN];
	int fds = t_count_fds(), done[2], total = 0, ret, nfd;
	struct pollfd pf[2];
	shmcap_name *n, *threaded;
	pid_t pid;

	name_of(name, "dispatch");
	n = publish_pair(name, "dispatched", 0600, 0);
	nfd = shmcap_name_fd(n);
	CHECK_OK(nfd);
	pf[0].fd = nfd;
	pf[0].events = POLLIN;
	CHECK_EQ(poll(pf, 1, 0), 0);
	CHECK_EQ(shmcap_name_dispatch(n, 0), 0);
	CHECK_EQ(shmcap_name_dispatch(n, 10 * MSEC), 0);

	CHECK_EQ(pipe2(done, O_CLOEXEC), 0);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		int i;

		close(done[0]);
		for (i = 0; i < 5; i++)
			lookup_pair(name, "dispatched", SHMCAP_RIGHTS_REGION,
				    SHMCAP_RIGHTS_NOTIFIER);
		t_child_pass();
	}
	close(done[1]);
	/* The owner's loop: the name's descriptor and the child's pipe. */
	pf[1].fd = done[0];
	pf[1].events = POLLIN;
	for (;;) {
		CHECK(poll(pf, 2, -1) > 0);
		if (pf[0].revents & POLLIN) {
			ret = shmcap_name_dispatch(n, 0);
			CHECK(ret >= 1);
			total += ret;
		}
		if (pf[1].revents)
			break;
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
	close(done[0]);
	CHECK_EQ(total, 5);

	CHECK_ERR(shmcap_name_dispatch(NULL, 0), -EINVAL);
	CHECK_ERR(shmcap_name_fd(NULL), -EINVAL);
	threaded = publish_pair(name_of(name, "dispatch-t"), "t", 0600,
				SHMCAP_NAME_THREAD);
	CHECK_ERR(shmcap_name_dispatch(threaded, 0), -EINVAL);
	shmcap_name_unpublish(threaded);
	shmcap_name_unpublish(n);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: dispatch model: the name's fd is readable, %d lookups "
	       "answered by shmcap_name_dispatch\n",
	       total);
}

/* ------------------------------------------------------------------------
 * One publisher per name, and the name dies with its publisher
 */

/*
 * Fork a publisher of [region "text", notifier] under name, with flags;
 * it writes a byte to *ready (a pipe it makes) once published, then
 * sleeps until killed.
 */
static pid_t fork_publisher(const char *name, const char *text,
			    unsigned int flags, int *ready)
{
	int p[2];
	pid_t pid;

	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		shmcap_name *n;

		close(p[0]);
		n = publish_pair(name, text, 0600, flags);
		(void)n;
		write_byte(p[1]);
		for (;;) {
			if (flags & SHMCAP_NAME_THREAD)
				pause();
			else
				shmcap_name_dispatch(n, SHMCAP_FOREVER);
		}
	}
	close(p[1]);
	read_byte(p[0]);
	*ready = p[0];
	return pid;
}

static void test_exists_and_killed(void)
{
	static const struct {
		const char *text;
		unsigned int flags;
	} pubs[] = {
		{ "from a child", SHMCAP_NAME_THREAD },
		{ "dispatching child", 0 },
	};
	char name[NAMELEN];
	int fds = t_count_fds(), ready, i;
	shmcap_cap *caps[2];
	shmcap_name *n, *n2;
	pid_t pid, pub;

	/* A second publisher, here or in another process: -EEXIST. */
	name_of(name, "taken");
	n = publish_pair(name, "first", 0600, 0);
	caps[0] = make_notifier();
	CHECK_ERR(shmcap_name_publish(name, caps, 1, 0600, 0, &n2), -EEXIST);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		CHECK_ERR(shmcap_name_publish(name, caps, 1, 0600, 0, &n2),
			  -EEXIST);
		t_child_pass();
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
	shmcap_name_unpublish(n);

	/*
	 * The other way round: a child publishes (with a thread, then
	 * served by its dispatch loop), we cannot.
	 */
	name_of(name, "killed");
	for (i = 0; i < 2; i++) {
		pub = fork_publisher(name, pubs[i].text, pubs[i].flags, &ready);
		CHECK_ERR(shmcap_name_publish(name, caps, 1, 0600, 0, &n2),
			  -EEXIST);
		lookup_pair(name, pubs[i].text, SHMCAP_RIGHTS_REGION,
			    SHMCAP_RIGHTS_NOTIFIER);
		/* SIGKILL: the name is gone as soon as the publisher is. */
		CHECK_EQ(kill(pub, SIGKILL), 0);
		t_check_killed(pub, CHILD_TIMEOUT);
		close(ready);
		CHECK_ERR(shmcap_name_lookup(name, NULL, 0, LOOKUP_TIMEOUT),
			  -ENOENT);
		/* ... and free for another publisher at once. */
		CHECK_OK(shmcap_name_publish(name, caps, 1, 0600, 0, &n2));
		shmcap_name_unpublish(n2);
	}

	shmcap_cap_close(caps[0]);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: -EEXIST for a live name in this and another process; "
	       "-ENOENT right after the publisher's SIGKILL, name free "
	       "again\n");
}

/* A handler that tells the test it runs, then never returns. */
static int stuck_handler(void *arg, const shmcap_peer *client, const void *req,
			 size_t req_len, shmcap_cap **caps, size_t max_caps,
			 void *reply, size_t *reply_len)
{
	int fd = *(int *)arg;

	(void)client;
	(void)req;
	(void)req_len;
	(void)caps;
	(void)max_caps;
	(void)reply;
	(void)reply_len;
	write_byte(fd);
	for (;;)
		pause();
	return 0;
}

/* Fork a client that looks name up once and writes the result to fd. */
static pid_t fork_client(const char *name, int fd)
{
	shmcap_cap *caps[4];
	pid_t pid;
	int ret;

	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		ret = shmcap_name_lookup(name, caps, 4, LOOKUP_TIMEOUT);
		if (ret > 0)
			close_all(caps, ret);
		write_int(fd, ret);
		t_child_pass();
	}
	return pid;
}

#define KILL_CLIENTS 4

/*
 * Kill the publisher while clients wait for answers: one whose request
 * the publisher's handler holds (handler), or all queued at a publisher
 * stopped with SIGSTOP. Every client must learn it with -ESRCH, not with
 * its 30-second timeout.
 */
static void kill_during_lookup(int stopped)
{
	char name[NAMELEN];
	int fds = t_count_fds(), res[2], entered[2], ready[2], i, ret;
	pid_t pub, kids[KILL_CLIENTS];

	name_of(name, stopped ? "stopped" : "stuck");
	CHECK_EQ(pipe2(res, O_CLOEXEC), 0);
	CHECK_EQ(pipe2(entered, O_CLOEXEC), 0);
	CHECK_EQ(pipe2(ready, O_CLOEXEC), 0);
	pub = t_fork_child(CHILD_TIMEOUT);
	if (pub == 0) {
		shmcap_name *n;

		CHECK_OK(shmcap_name_publish_fn(name, stuck_handler,
						&entered[1], 0600,
						SHMCAP_NAME_THREAD, &n));
		write_byte(ready[1]);
		for (;;)
			pause();
	}
	read_byte(ready[0]);

	if (stopped) {
		CHECK_EQ(kill(pub, SIGSTOP), 0);
		for (i = 0; i < 100000 && t_proc_state(pub) != 'T'; i++)
			t_sleep_ns(100000);
		CHECK_EQ(t_proc_state(pub), 'T');
		i = 0;
	} else {
		/* The first client's request is held by the handler. */
		kids[0] = fork_client(name, res[1]);
		read_byte(entered[0]);
		t_wait_in_poll(kids[0]);
		i = 1;
	}
	/* The others queue up behind it, connected, request sent. */
	for (; i < KILL_CLIENTS; i++) {
		kids[i] = fork_client(name, res[1]);
		t_wait_in_poll(kids[i]);
	}
	CHECK_EQ(kill(pub, SIGKILL), 0);
	t_check_killed(pub, CHILD_TIMEOUT);
	for (i = 0; i < KILL_CLIENTS; i++) {
		t_reap_ok(kids[i], CHILD_TIMEOUT);
		ret = read_int(res[0]);
		if (ret != -ESRCH)
			FAIL("a client of a killed publisher got %d (%s), "
			     "expected -ESRCH",
			     ret, shmcap_err_name(ret));
	}
	close(res[0]);
	close(res[1]);
	close(entered[0]);
	close(entered[1]);
	close(ready[0]);
	close(ready[1]);
	CHECK_ERR(shmcap_name_lookup(name, NULL, 0, LOOKUP_TIMEOUT), -ENOENT);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: publisher %s, then SIGKILLed: %d waiting clients got "
	       "-ESRCH at once\n",
	       stopped ? "stopped with SIGSTOP" : "stuck in its handler",
	       KILL_CLIENTS);
}

/* ------------------------------------------------------------------------
 * The access rule
 */

/* In a forked child as uid 65534 with groups: look name up, expect err. */
static void nobody_expects(const char *name, const gid_t *groups, size_t ng,
			   int err, unsigned int region_rights,
			   unsigned int notifier_rights)
{
	shmcap_cap *caps[2];
	pid_t pid;

	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		become_nobody(groups, ng);
		if (err)
			CHECK_ERR(shmcap_name_lookup(name, caps, 2,
						     LOOKUP_TIMEOUT),
				  err);
		else
			lookup_pair(name, "ruled", region_rights,
				    notifier_rights);
		t_child_pass();
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
}

static void test_access(void)
{
	const unsigned int rw = SHMCAP_RIGHTS_REGION, ro = SHMCAP_RIGHT_READ,
			   sw = SHMCAP_RIGHTS_NOTIFIER, w = SHMCAP_RIGHT_WAIT;
	const gid_t extra = 4242, other = 4343;
	char name[NAMELEN];
	int fds = t_count_fds(), go[2], back[2], i;
	shmcap_cap *caps[2];
	shmcap_name *n;
	pid_t pid;

	if (geteuid() != 0) {
		printf("skipped: access rule (needs root to switch users)\n");
		return;
	}
	name_of(name, "ruled");

	/* The owner bits are not for another user; root gets everything. */
	n = publish_pair(name, "ruled", 0600, SHMCAP_NAME_THREAD);
	nobody_expects(name, NULL, 0, -EACCES, 0, 0);
	lookup_pair(name, "ruled", rw, sw);
	shmcap_name_unpublish(n);
	/* Read for others: READ and WAIT only, enforced by the kernel. */
	n = publish_pair(name, "ruled", 0644, SHMCAP_NAME_THREAD);
	nobody_expects(name, NULL, 0, 0, ro, w);
	shmcap_name_unpublish(n);
	/* Read and write for others: everything. */
	n = publish_pair(name, "ruled", 0666, SHMCAP_NAME_THREAD);
	nobody_expects(name, NULL, 0, 0, rw, sw);
	shmcap_name_unpublish(n);
	/* Write without read is nothing. */
	n = publish_pair(name, "ruled", 0602, SHMCAP_NAME_THREAD);
	nobody_expects(name, NULL, 0, -EACCES, 0, 0);
	shmcap_name_unpublish(n);

	/* Allowed uid: the owner bits. */
	n = publish_pair(name, "ruled", 0640, SHMCAP_NAME_THREAD);
	nobody_expects(name, NULL, 0, -EACCES, 0, 0);
	CHECK_OK(shmcap_name_allow(n, SHMCAP_ALLOW_UID, NOBODY));
	nobody_expects(name, NULL, 0, 0, rw, sw);
	shmcap_name_unpublish(n);
	/* Allowed gid, as primary or supplementary group: the group bits. */
	n = publish_pair(name, "ruled", 0640, SHMCAP_NAME_THREAD);
	CHECK_OK(shmcap_name_allow(n, SHMCAP_ALLOW_GID, extra));
	nobody_expects(name, &other, 1, -EACCES, 0, 0);
	nobody_expects(name, &extra, 1, 0, ro, w);
	shmcap_name_unpublish(n);
	/* The publisher's own gid (0) as a supplementary group. */
	{
		const gid_t root_group = 0;

		n = publish_pair(name, "ruled", 0660, SHMCAP_NAME_THREAD);
		nobody_expects(name, &root_group, 1, 0, rw, sw);
		nobody_expects(name, NULL, 0, -EACCES, 0, 0);
		shmcap_name_unpublish(n);
	}

	/* shmcap_name_allow() takes effect for the next request. */
	n = publish_pair(name, "ruled", 0600, SHMCAP_NAME_THREAD);
	CHECK_EQ(pipe2(go, O_CLOEXEC), 0);
	CHECK_EQ(pipe2(back, O_CLOEXEC), 0);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		become_nobody(NULL, 0);
		CHECK_ERR(shmcap_name_lookup(name, caps, 2, LOOKUP_TIMEOUT),
			  -EACCES);
		write_byte(back[1]);
		read_byte(go[0]);
		lookup_pair(name, "ruled", rw, sw);
		t_child_pass();
	}
	read_byte(back[0]);
	CHECK_OK(shmcap_name_allow(n, SHMCAP_ALLOW_UID, NOBODY));
	write_byte(go[1]);
	t_reap_ok(pid, CHILD_TIMEOUT);
	for (i = 0; i < 2; i++) {
		close(go[i]);
		close(back[i]);
	}
	shmcap_name_unpublish(n);

	/* An actor capability: a reader may wait for it, not signal it. */
	CHECK_OK(shmcap_actor_self(&caps[0]));
	CHECK_OK(shmcap_name_publish(name, caps, 1, 0644, SHMCAP_NAME_THREAD,
				     &n));
	shmcap_cap_close(caps[0]);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		become_nobody(NULL, 0);
		CHECK_EQ(shmcap_name_lookup(name, caps, 2, LOOKUP_TIMEOUT), 1);
		CHECK_EQ(shmcap_cap_type(caps[0]), SHMCAP_TYPE_ACTOR);
		CHECK_EQ(shmcap_cap_rights(caps[0]), w);
		CHECK_EQ(shmcap_actor_pid(caps[0]), getppid());
		CHECK_EQ(shmcap_actor_alive(caps[0]), 1);
		CHECK_ERR(shmcap_actor_signal(caps[0], 0), -EACCES);
		shmcap_cap_close(caps[0]);
		t_child_pass();
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
	shmcap_name_unpublish(n);

	/* A capability the rule would leave with no rights: -EACCES. */
	caps[0] = make_notifier();
	CHECK_OK(shmcap_cap_derive(caps[0], SHMCAP_RIGHT_SIGNAL, &caps[1]));
	CHECK_OK(shmcap_name_publish(name, &caps[1], 1, 0644,
				     SHMCAP_NAME_THREAD, &n));
	close_all(caps, 2);
	nobody_expects(name, NULL, 0, -EACCES, 0, 0);
	shmcap_name_unpublish(n);

	CHECK_EQ(t_count_fds(), fds);
	printf("ok: access rule: 0600/0602 refuse uid %d, 0644 gives READ and "
	       "WAIT (O_RDONLY), 0666 all; allowed uid, gid, groups\n",
	       NOBODY);
}

static void test_allow_limits(void)
{
	char name[NAMELEN];
	int fds = t_count_fds();
	shmcap_name *n;
	uint32_t i;

	n = publish_pair(name_of(name, "allow"), "x", 0600, 0);
	CHECK_ERR(shmcap_name_allow(NULL, SHMCAP_ALLOW_UID, 1), -EINVAL);
	CHECK_ERR(shmcap_name_allow(n, 0, 1), -EINVAL);
	CHECK_ERR(shmcap_name_allow(n, 3, 1), -EINVAL);
	for (i = 0; i < 32; i++) {
		CHECK_OK(shmcap_name_allow(n, SHMCAP_ALLOW_UID, 1000 + i));
		CHECK_OK(shmcap_name_allow(n, SHMCAP_ALLOW_GID, 1000 + i));
	}
	/* Again: already there, so no new entry. */
	CHECK_OK(shmcap_name_allow(n, SHMCAP_ALLOW_UID, 1000));
	CHECK_ERR(shmcap_name_allow(n, SHMCAP_ALLOW_UID, 5000), -ENOSPC);
	CHECK_ERR(shmcap_name_allow(n, SHMCAP_ALLOW_GID, 5000), -ENOSPC);
	shmcap_name_unpublish(n);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: shmcap_name_allow: 64 entries, then -ENOSPC\n");
}

/* ------------------------------------------------------------------------
 * Handlers
 */

struct handler_state {
	int calls;
};

/*
 * A server that hands each client its own region. The request is a word:
 * "region" gives a new region holding "for PID" and replies "hello PID";
 * "fail" returns -EPERM; "count" claims more capabilities than allowed;
 * "hole" claims one capability but fills none; "long" claims a reply
 * longer than the room; "echo" sends the request back; "many" fills all
 * SHMCAP_MSG_MAX_CAPS; "extra" fills two but claims one.
 */
static int server(void *arg, const shmcap_peer *client, const void *req,
		  size_t req_len, shmcap_cap **caps, size_t max_caps,
		  void *reply, size_t *reply_len)
{
	struct handler_state *st = arg;
	char text[64];
	size_t i;
	int n;

	st->calls++;
	CHECK_EQ(max_caps, SHMCAP_MSG_MAX_CAPS);
	CHECK_EQ(*reply_len, SHMCAP_MSG_MAX_DATA);
	if (req_len == 6 && memcmp(req, "region", 6) == 0) {
		snprintf(text, sizeof(text), "for %ld", (long)client->pid);
		caps[0] = t_text_region(text);
		n = snprintf(reply, *reply_len, "hello %ld", (long)client->pid);
		*reply_len = (size_t)n;
		return 1;
	}
	if (req_len == 4 && memcmp(req, "fail", 4) == 0)
		return -EPERM;
	if (req_len == 5 && memcmp(req, "count", 5) == 0)
		return (int)max_caps + 1;
	if (req_len == 4 && memcmp(req, "hole", 4) == 0)
		return 1;
	if (req_len == 4 && memcmp(req, "long", 4) == 0) {
		caps[0] = make_notifier();
		*reply_len = SHMCAP_MSG_MAX_DATA + 1;
		return 1;
	}
	if (req_len == 5 && memcmp(req, "extra", 5) == 0) {
		caps[0] = make_notifier();
		caps[1] = make_notifier();
		*reply_len = 0;
		return 1;
	}
	if (req_len == 4 && memcmp(req, "many", 4) == 0) {
		for (i = 0; i < max_caps; i++)
			caps[i] = make_notifier();
		*reply_len = 0;
		return (int)max_caps;
	}
	/* Anything else, including an empty request: echo it back. */
	memcpy(reply, req, req_len);
	*reply_len = req_len;
	return 0;
}

static void request_ok(const char *name, const char *word, int want_caps,
		       unsigned int rights)
{
	char reply[64], want[64], text[64];
	shmcap_cap *caps[2] = { NULL, NULL };
	size_t ncaps = 99;
	int len;

	len = shmcap_name_request(name, word, strlen(word), caps, 2, &ncaps,
				  reply, sizeof(reply) - 1, LOOKUP_TIMEOUT);
	CHECK_OK(len);
	reply[len] = '\0';
	CHECK_EQ(ncaps, want_caps);
	if (strcmp(word, "region") == 0) {
		snprintf(want, sizeof(want), "hello %ld", (long)getpid());
		CHECK_STR_EQ(reply, want);
		snprintf(text, sizeof(text), "for %ld", (long)getpid());
		t_check_text_region(caps[0], text);
		CHECK_EQ(shmcap_cap_rights(caps[0]), rights);
		CHECK_EQ(t_accmode(caps[0]),
			 rights & SHMCAP_RIGHT_WRITE ? O_RDWR : O_RDONLY);
		shmcap_cap_close(caps[0]);
	}
}

static void test_handler(void)
{
	static char big[SHMCAP_MSG_MAX_DATA + 1], back[SHMCAP_MSG_MAX_DATA];
	struct handler_state st = { 0 };
	char name[NAMELEN], reply[16];
	int fds = t_count_fds(), len;
	shmcap_cap *caps[SHMCAP_MSG_MAX_CAPS];
	size_t ncaps;
	shmcap_name *n;
	pid_t pid;

	name_of(name, "handler");
	CHECK_OK(shmcap_name_publish_fn(name, server, &st, 0644,
					SHMCAP_NAME_THREAD, &n));
	request_ok(name, "region", 1, SHMCAP_RIGHTS_REGION);
	/* The handler's error is the client's result. */
	CHECK_ERR(shmcap_name_request(name, "fail", 4, caps, 2, &ncaps, reply,
				      sizeof(reply), LOOKUP_TIMEOUT),
		  -EPERM);
	/* A handler's bugs reach the client as -EIO, leaking nothing. */
	CHECK_ERR(shmcap_name_request(name, "count", 5, caps, 2, &ncaps, reply,
				      sizeof(reply), LOOKUP_TIMEOUT),
		  -EIO);
	CHECK_ERR(shmcap_name_request(name, "hole", 4, caps, 2, &ncaps, reply,
				      sizeof(reply), LOOKUP_TIMEOUT),
		  -EIO);
	CHECK_ERR(shmcap_name_request(name, "long", 4, caps, 2, &ncaps, reply,
				      sizeof(reply), LOOKUP_TIMEOUT),
		  -EIO);
	/* Capabilities filled in beyond the count are closed, not sent. */
	CHECK_EQ(shmcap_name_request(name, "extra", 5, caps, 2, &ncaps, reply,
				     sizeof(reply), LOOKUP_TIMEOUT),
		 0);
	CHECK_EQ(ncaps, 1);
	shmcap_cap_close(caps[0]);
	/* All 16; then too many for the caller's array. */
	CHECK_EQ(shmcap_name_request(name, "many", 4, caps, SHMCAP_MSG_MAX_CAPS,
				     &ncaps, NULL, 0, LOOKUP_TIMEOUT),
		 0);
	CHECK_EQ(ncaps, SHMCAP_MSG_MAX_CAPS);
	close_all(caps, SHMCAP_MSG_MAX_CAPS);
	CHECK_ERR(shmcap_name_request(name, "many", 4, caps, 15, &ncaps, NULL,
				      0, LOOKUP_TIMEOUT),
		  -E2BIG);
	CHECK_EQ(ncaps, 0);
	/* A reply larger than the caller's buffer. */
	CHECK_ERR(shmcap_name_request(name, "region", 6, caps, 2, &ncaps, reply,
				      4, LOOKUP_TIMEOUT),
		  -EMSGSIZE);
	/* A lookup of a handler's name sends no bytes and ignores replies. */
	CHECK_EQ(shmcap_name_lookup(name, caps, 2, LOOKUP_TIMEOUT), 0);
	/* The largest request and reply. */
	memset(big, 'b', sizeof(big));
	big[7] = 'x';
	len = shmcap_name_request(name, big, SHMCAP_MSG_MAX_DATA, NULL, 0, NULL,
				  back, sizeof(back), LOOKUP_TIMEOUT);
	CHECK_EQ(len, SHMCAP_MSG_MAX_DATA);
	CHECK(memcmp(back, big, SHMCAP_MSG_MAX_DATA) == 0);
	CHECK_ERR(shmcap_name_request(name, big, sizeof(big), NULL, 0, NULL,
				      back, sizeof(back), LOOKUP_TIMEOUT),
		  -EMSGSIZE);

	/* Per client: each child gets its own region; 0644 limits it. */
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		request_ok(name, "region", 1, SHMCAP_RIGHTS_REGION);
		if (geteuid() == 0) {
			become_nobody(NULL, 0);
			request_ok(name, "region", 1, SHMCAP_RIGHT_READ);
			/* "many" gives notifiers with WAIT only. */
			CHECK_EQ(shmcap_name_request(name, "many", 4, caps,
						     SHMCAP_MSG_MAX_CAPS,
						     &ncaps, NULL, 0,
						     LOOKUP_TIMEOUT),
				 0);
			CHECK_EQ(shmcap_cap_rights(caps[3]), SHMCAP_RIGHT_WAIT);
			close_all(caps, (int)ncaps);
		}
		t_child_pass();
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
	shmcap_name_unpublish(n);
	CHECK(st.calls >= 12);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: handler: per-client regions and replies, errors, bugs "
	       "caught (-EIO), 64 KiB requests and replies, rule applied\n");
}

static void test_shared_buffer(void)
{
	/* Slices of caps = [region, notifier, region] that are wrong. */
	static const struct {
		int first, count;
	} wrong[] = { { 1, 2 }, { 0, 1 }, { 1, 1 }, { 0, 3 } };
	char name[NAMELEN];
	int fds = t_count_fds();
	shmcap_cap *caps[3], *region, *notifier;
	shmcap_name *n;
	size_t i;

	name_of(name, "buffer");
	n = publish_pair(name, "shared buffer", 0600, SHMCAP_NAME_THREAD);
	CHECK_OK(shmcap_shared_buffer_get(name, LOOKUP_TIMEOUT, &region,
					  &notifier));
	t_check_text_region(region, "shared buffer");
	CHECK_EQ(shmcap_cap_type(notifier), SHMCAP_TYPE_NOTIFIER);
	CHECK_OK(shmcap_notifier_signal(notifier));
	shmcap_cap_close(region);
	shmcap_cap_close(notifier);
	CHECK_ERR(shmcap_shared_buffer_get(name, LOOKUP_TIMEOUT, NULL,
					   &notifier),
		  -EINVAL);
	CHECK_ERR(shmcap_shared_buffer_get(name, LOOKUP_TIMEOUT, &region, NULL),
		  -EINVAL);
	shmcap_name_unpublish(n);
	CHECK_ERR(shmcap_shared_buffer_get(name, LOOKUP_TIMEOUT, &region,
					   &notifier),
		  -ENOENT);

	/* Anything but exactly [region, notifier] is -EPROTO. */
	caps[0] = t_text_region("wrong");
	caps[1] = make_notifier();
	caps[2] = t_text_region("third");
	for (i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		CHECK_OK(shmcap_name_publish(name, &caps[wrong[i].first],
					     (size_t)wrong[i].count, 0600,
					     SHMCAP_NAME_THREAD, &n));
		region = notifier = caps[0];
		CHECK_ERR(shmcap_shared_buffer_get(name, LOOKUP_TIMEOUT,
						   &region, &notifier),
			  -EPROTO);
		CHECK_NULL(region);
		CHECK_NULL(notifier);
		shmcap_name_unpublish(n);
	}
	close_all(caps, 3);
	shmcap_name_unpublish(NULL);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: shmcap_shared_buffer_get: [region, notifier], else "
	       "-EPROTO keeping nothing\n");
}

/* ------------------------------------------------------------------------
 * Bad input
 */

static void test_bad_input(void)
{
	char name[NAMELEN + 8], longest[NAMELEN + 1];
	int fds = t_count_fds();
	shmcap_cap *caps[SHMCAP_MSG_MAX_CAPS + 1], *got[2];
	shmcap_name *n = NULL;
	size_t i, ncaps;

	caps[0] = make_notifier();
	for (i = 1; i <= SHMCAP_MSG_MAX_CAPS; i++)
		caps[i] = caps[0];

	/* Names. */
	CHECK_ERR(shmcap_name_publish(NULL, caps, 1, 0600, 0, &n), -EINVAL);
	CHECK_ERR(shmcap_name_publish("", caps, 1, 0600, 0, &n), -EINVAL);
	CHECK_ERR(shmcap_name_publish("a b", caps, 1, 0600, 0, &n), -EINVAL);
	CHECK_ERR(shmcap_name_publish("a:b", caps, 1, 0600, 0, &n), -EINVAL);
	CHECK_ERR(shmcap_name_publish("a\nb", caps, 1, 0600, 0, &n), -EINVAL);
	CHECK_ERR(shmcap_name_publish("caf\xc3\xa9", caps, 1, 0600, 0, &n),
		  -EINVAL);
	CHECK_ERR(shmcap_name_publish("shmcap.mine", caps, 1, 0600, 0, &n),
		  -EINVAL);
	CHECK_ERR(shmcap_name_lookup("a b", got, 2, LOOKUP_TIMEOUT), -EINVAL);
	CHECK_ERR(shmcap_name_lookup(NULL, got, 2, LOOKUP_TIMEOUT), -EINVAL);
	CHECK_ERR(shmcap_name_lookup("", got, 2, LOOKUP_TIMEOUT), -EINVAL);
	memset(longest, 'x', sizeof(longest));
	longest[SHMCAP_PUBLISHED_NAME_MAX + 1] = '\0';
	CHECK_ERR(shmcap_name_publish(longest, caps, 1, 0600, 0, &n),
		  -ENAMETOOLONG);
	CHECK_ERR(shmcap_name_lookup(longest, got, 2, LOOKUP_TIMEOUT),
		  -ENAMETOOLONG);
	/* The longest name, with every allowed kind of character. */
	snprintf(name, sizeof(name), "t-names.%ld.Az09._/-", (long)getpid());
	memset(longest, 'y', SHMCAP_PUBLISHED_NAME_MAX);
	memcpy(longest, name, strlen(name));
	longest[SHMCAP_PUBLISHED_NAME_MAX] = '\0';
	CHECK_OK(shmcap_name_publish(longest, caps, 1, 0600, SHMCAP_NAME_THREAD,
				     &n));
	CHECK_EQ(shmcap_name_lookup(longest, got, 2, LOOKUP_TIMEOUT), 1);
	shmcap_cap_close(got[0]);
	shmcap_name_unpublish(n);
	/* Nobody publishes it. */
	CHECK_ERR(shmcap_name_lookup(name_of(name, "unknown"), got, 2,
				     LOOKUP_TIMEOUT),
		  -ENOENT);
	CHECK_ERR(shmcap_name_request(name, NULL, 0, NULL, 0, NULL, NULL, 0,
				      LOOKUP_TIMEOUT),
		  -ENOENT);

	/* Arguments. */
	name_of(name, "bad");
	CHECK_ERR(shmcap_name_publish(name, caps, 1, 0600, 0, NULL), -EINVAL);
	CHECK_ERR(shmcap_name_publish(name, caps, 1, 01000, 0, &n), -EINVAL);
	CHECK_ERR(shmcap_name_publish(name, caps, 1, 0600, 2, &n), -EINVAL);
	CHECK_ERR(shmcap_name_publish(name, NULL, 1, 0600, 0, &n), -EINVAL);
	CHECK_ERR(shmcap_name_publish(name, caps, SHMCAP_MSG_MAX_CAPS + 1, 0600,
				      0, &n),
		  -E2BIG);
	got[0] = NULL;
	CHECK_ERR(shmcap_name_publish(name, got, 1, 0600, 0, &n), -EINVAL);
	CHECK_ERR(shmcap_name_publish_fn(name, NULL, NULL, 0600, 0, &n),
		  -EINVAL);
	CHECK_ERR(shmcap_name_publish_fn("shmcap.x", server, NULL, 0600, 0, &n),
		  -EINVAL);
	CHECK_ERR(shmcap_name_publish_fn(name, server, NULL, 0600, 0, NULL),
		  -EINVAL);
	CHECK_ERR(shmcap_name_lookup(name, NULL, 2, LOOKUP_TIMEOUT), -EINVAL);
	CHECK_ERR(shmcap_name_request(name, NULL, 3, NULL, 0, NULL, NULL, 0,
				      LOOKUP_TIMEOUT),
		  -EINVAL);
	CHECK_ERR(shmcap_name_request(name, NULL, 0, got, 2, NULL, NULL, 0,
				      LOOKUP_TIMEOUT),
		  -EINVAL);
	CHECK_ERR(shmcap_name_request(name, NULL, 0, NULL, 0, &ncaps, NULL, 4,
				      LOOKUP_TIMEOUT),
		  -EINVAL);
	/* Nothing half made stays behind: the name is free. */
	CHECK_OK(shmcap_name_publish(name, caps, SHMCAP_MSG_MAX_CAPS, 0600,
				     SHMCAP_NAME_THREAD, &n));
	shmcap_name_unpublish(n);
	shmcap_cap_close(caps[0]);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: bad names and arguments refused, nothing left behind\n");
}

/* ------------------------------------------------------------------------
 * Hostile peers
 */

static socklen_t name_sockaddr(const char *name, struct sockaddr_un *sa)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1,
		     "shmcap-name-%s", name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)n);
}

static int raw_connect(const char *name)
{
	struct sockaddr_un sa;
	socklen_t len = name_sockaddr(name, &sa);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	CHECK(s >= 0);
	CHECK_EQ(connect(s, (struct sockaddr *)&sa, len), 0);
	return s;
}

/* The status a raw client got back, or 1 for end of stream. */
static int raw_status(int s)
{
	struct rep_hdr h;
	ssize_t r;

	r = recv(s, &h, sizeof(h), 0);
	if (r == 0)
		return 1;
	CHECK_EQ(r, sizeof(h));
	CHECK_EQ(h.magic, REP_MAGIC);
	CHECK_EQ(h.ncaps, 0);
	return h.status;
}

static void test_hostile_clients(void)
{
	char name[NAMELEN], junk[40];
	int fds = t_count_fds(), s[8], p[2], i, handled, total;
	struct req_hdr rq;
	shmcap_name *n;
	pid_t pid;

	name_of(name, "hostile-c");
	n = publish_pair(name, "sturdy", 0600, 0);
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	memset(&rq, 0, sizeof(rq));
	rq.magic = REQ_MAGIC;
	rq.version = 1;
	rq.op = 1;

	/* Garbage. */
	s[0] = raw_connect(name);
	memset(junk, 0xa5, sizeof(junk));
	t_raw_send(s[0], junk, sizeof(junk), NULL, 0);
	/* Connects and says nothing. */
	s[1] = raw_connect(name);
	/* Connects and hangs up. */
	s[2] = raw_connect(name);
	close(s[2]);
	/* A good header with descriptors attached: served, fds dropped. */
	s[2] = raw_connect(name);
	t_raw_send(s[2], &rq, sizeof(rq), p, 2);
	/* Length field that does not match. */
	s[3] = raw_connect(name);
	rq.len = 100;
	t_raw_send(s[3], &rq, sizeof(rq), NULL, 0);
	rq.len = 0;
	/* Unknown op, unknown version, non-zero reserved field. */
	s[4] = raw_connect(name);
	rq.op = 7;
	t_raw_send(s[4], &rq, sizeof(rq), NULL, 0);
	rq.op = 1;
	s[5] = raw_connect(name);
	rq.version = 2;
	t_raw_send(s[5], &rq, sizeof(rq), NULL, 0);
	rq.version = 1;
	s[6] = raw_connect(name);
	rq.reserved = 1;
	t_raw_send(s[6], &rq, sizeof(rq), NULL, 0);
	rq.reserved = 0;
	/* Just the first bytes of a header. */
	s[7] = raw_connect(name);
	t_raw_send(s[7], &rq, 6, NULL, 0);

	/* One dispatch handles them all and returns. */
	total = 0;
	while (total < 9) {
		handled = shmcap_name_dispatch(n, 10 * SEC);
		CHECK(handled > 0);
		total += handled;
	}
	CHECK_EQ(total, 9);
	CHECK_EQ(raw_status(s[0]), -EBADMSG);
	CHECK_EQ(raw_status(s[1]), 1); /* dropped after the grace period */
	{
		/* The good request got the capabilities. */
		char buf[200];
		ssize_t r = recv(s[2], buf, sizeof(buf), 0);

		CHECK_EQ(r, sizeof(struct rep_hdr));
	}
	for (i = 3; i < 8; i++)
		CHECK_EQ(raw_status(s[i]), -EBADMSG);
	for (i = 0; i < 8; i++)
		close(s[i]);
	close(p[0]);
	close(p[1]);

	/* More silent clients than one round takes: dispatch still returns. */
	{
		int many[BATCH_SILENT];

		for (i = 0; i < BATCH_SILENT; i++)
			many[i] = raw_connect(name);
		total = 0;
		while (total < BATCH_SILENT) {
			handled = shmcap_name_dispatch(n, 10 * SEC);
			CHECK(handled > 0);
			total += handled;
		}
		for (i = 0; i < BATCH_SILENT; i++)
			close(many[i]);
	}

	/* The name still answers properly, across processes. */
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0) {
		lookup_pair(name, "sturdy", SHMCAP_RIGHTS_REGION,
			    SHMCAP_RIGHTS_NOTIFIER);
		t_child_pass();
	}
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			CHECK_CHILD_OK(st);
			break;
		}
		CHECK_EQ(r, 0);
		CHECK_OK(shmcap_name_dispatch(n, 10 * MSEC));
	}
	shmcap_name_unpublish(n);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: hostile clients (garbage, silence, hang-ups, forged "
	       "headers, descriptors, %d silent at once) do not stall "
	       "dispatch\n",
	       BATCH_SILENT);
}

/* What the hostile server sends in each round. */
enum scene {
	S_MAGIC,       /* wrong magic */
	S_MISSING_FD,  /* ncaps 1, no descriptor */
	S_EXTRA_FD,    /* ncaps 0, one descriptor */
	S_POSITIVE,    /* status 5 */
	S_ERR_WITH_FD, /* status -EPERM with a descriptor */
	S_PIPE,	       /* a pipe claimed to be a region */
	S_LEN,	       /* len does not match */
	S_HUGE_ERR,    /* status -5000 */
	S_SHORT,       /* half a header */
	S_TOO_MANY,    /* two regions for a client that takes one */
	S_RDONLY_RW,   /* an O_RDONLY region claimed READ and WRITE */
	S_DROP,	       /* closes without answering, every time */
	S_DROP_ONCE,   /* drops the first try, answers the second */
	S_SILENT,      /* keeps the connection and never answers */
	S_COUNT
};

static void hostile_reply(int c, enum scene sc, int region, int rdonly)
{
	struct rep_hdr h;
	int fds[2] = { region, region }, pfd[2];
	size_t nfds = 0, len = sizeof(h);

	memset(&h, 0, sizeof(h));
	h.magic = REP_MAGIC;
	h.version = 1;
	switch (sc) {
	case S_MAGIC:
		h.magic = 0x12345678;
		break;
	case S_MISSING_FD:
		h.ncaps = 1;
		h.caps[0].type = SHMCAP_TYPE_REGION;
		h.caps[0].rights = SHMCAP_RIGHTS_REGION;
		break;
	case S_EXTRA_FD:
		nfds = 1;
		break;
	case S_POSITIVE:
		h.status = 5;
		break;
	case S_ERR_WITH_FD:
		h.status = -EPERM;
		h.ncaps = 1;
		h.caps[0].type = SHMCAP_TYPE_REGION;
		h.caps[0].rights = SHMCAP_RIGHTS_REGION;
		nfds = 1;
		break;
	case S_PIPE:
		CHECK_EQ(pipe(pfd), 0);
		fds[0] = pfd[0];
		h.ncaps = 1;
		h.caps[0].type = SHMCAP_TYPE_REGION;
		h.caps[0].rights = SHMCAP_RIGHTS_REGION;
		nfds = 1;
		break;
	case S_LEN:
		h.len = 9;
		break;
	case S_HUGE_ERR:
		h.status = -5000;
		break;
	case S_SHORT:
		len = 10;
		break;
	case S_TOO_MANY:
		h.ncaps = 2;
		h.caps[0].type = h.caps[1].type = SHMCAP_TYPE_REGION;
		h.caps[0].rights = h.caps[1].rights = SHMCAP_RIGHTS_REGION;
		nfds = 2;
		break;
	case S_DROP_ONCE: /* the second connection: no capabilities */
		break;
	case S_RDONLY_RW:
		fds[0] = rdonly;
		h.ncaps = 1;
		h.caps[0].type = SHMCAP_TYPE_REGION;
		h.caps[0].rights = SHMCAP_RIGHTS_REGION;
		nfds = 1;
		break;
	default:
		return;
	}
	t_raw_send(c, &h, len, fds, nfds);
	if (sc == S_PIPE) {
		close(pfd[0]);
		close(pfd[1]);
	}
}

/* The hostile server: one connection per scene (S_DROP: 3, _ONCE: 2). */
static void hostile_server(int ls, int ready)
{
	shmcap_cap *region, *ro;
	char buf[256];
	int c, sc, k;

	region = t_text_region("hostile");
	CHECK_OK(shmcap_cap_derive(region, SHMCAP_RIGHT_READ, &ro));
	write_byte(ready);
	for (sc = 0; sc < S_COUNT; sc++) {
		for (k = 0; k < (sc == S_DROP	   ? 3 :
				 sc == S_DROP_ONCE ? 2 :
						     1);
		     k++) {
			c = accept(ls, NULL, NULL);
			CHECK(c >= 0);
			if (recv(c, buf, sizeof(buf), 0) < 16)
				FAIL("hostile server: no request");
			if (sc != S_DROP_ONCE || k == 1)
				hostile_reply(c, (enum scene)sc,
					      shmcap_cap_fd(region),
					      shmcap_cap_fd(ro));
			if (sc == S_SILENT)
				/* Until the client gives up. */
				CHECK_EQ(recv(c, buf, sizeof(buf), 0), 0);
			close(c);
		}
	}
	t_child_pass();
}

static void test_hostile_server(void)
{
	static const int expect[S_COUNT] = {
		[S_MAGIC] = -EBADMSG,	    [S_MISSING_FD] = -EBADMSG,
		[S_EXTRA_FD] = -EBADMSG,    [S_POSITIVE] = -EBADMSG,
		[S_ERR_WITH_FD] = -EBADMSG, [S_PIPE] = -EBADMSG,
		[S_LEN] = -EBADMSG,	    [S_HUGE_ERR] = -EBADMSG,
		[S_SHORT] = -EBADMSG,	    [S_TOO_MANY] = -E2BIG,
		[S_RDONLY_RW] = 1,	    [S_DROP] = -ECONNRESET,
		[S_SILENT] = -ETIMEDOUT,    [S_DROP_ONCE] = 0,
	};
	char name[NAMELEN];
	struct sockaddr_un sa;
	socklen_t len;
	shmcap_cap *caps[1];
	int fds, ls, ready[2], sc, ret;
	pid_t pid;

	name_of(name, "hostile-s");
	len = name_sockaddr(name, &sa);
	ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(ls >= 0);
	CHECK_EQ(bind(ls, (struct sockaddr *)&sa, len), 0);
	CHECK_EQ(listen(ls, 8), 0);
	CHECK_EQ(pipe2(ready, O_CLOEXEC), 0);
	pid = t_fork_child(CHILD_TIMEOUT);
	if (pid == 0)
		hostile_server(ls, ready[1]);
	close(ls);
	close(ready[1]);
	read_byte(ready[0]);
	close(ready[0]);

	fds = t_count_fds();
	for (sc = 0; sc < S_COUNT; sc++) {
		caps[0] = NULL;
		ret = shmcap_name_lookup(name, caps, 1,
					 sc == S_SILENT ? 200 * MSEC :
							  LOOKUP_TIMEOUT);
		if (ret != expect[sc])
			FAIL("hostile server, scene %d: %d (%s), expected %d",
			     sc, ret, shmcap_err_name(ret), expect[sc]);
		if (sc == S_RDONLY_RW) {
			/* Rights never exceed what the descriptor allows. */
			CHECK_EQ(shmcap_cap_rights(caps[0]), SHMCAP_RIGHT_READ);
			CHECK_EQ(t_accmode(caps[0]), O_RDONLY);
			shmcap_cap_close(caps[0]);
		} else {
			CHECK_NULL(caps[0]);
		}
		CHECK_EQ(t_count_fds(), fds);
	}
	t_reap_ok(pid, CHILD_TIMEOUT);
	printf("ok: a hostile server's %d scenes: -EBADMSG, -E2BIG, "
	       "-ECONNRESET, -ETIMEDOUT, retry after a drop, no descriptor "
	       "kept\n",
	       S_COUNT);
}

/* ------------------------------------------------------------------------
 * Threads
 */

#define THREADS 4

struct looker {
	const char *name;
	int rounds;
	pthread_t t;
};

static void *look_thread(void *arg)
{
	struct looker *l = arg;
	shmcap_cap *caps[2];
	int i;

	for (i = 0; i < l->rounds; i++) {
		CHECK_EQ(shmcap_name_lookup(l->name, caps, 2, LOOKUP_TIMEOUT),
			 2);
		close_all(caps, 2);
	}
	return NULL;
}

static void test_threads(void)
{
	struct looker l[THREADS];
	char name[NAMELEN];
	int fds = t_count_fds(), i;
	shmcap_name *n;

	name_of(name, "threads");
	n = publish_pair(name, "threads", 0600, SHMCAP_NAME_THREAD);
	for (i = 0; i < THREADS; i++) {
		l[i].name = name;
		l[i].rounds = (int)t_scaled(50);
		CHECK_EQ(pthread_create(&l[i].t, NULL, look_thread, &l[i]), 0);
	}
	/* The allow list changes while the server reads it. */
	for (i = 0; i < 60; i++)
		CHECK_OK(shmcap_name_allow(
			n, i & 1 ? SHMCAP_ALLOW_UID : SHMCAP_ALLOW_GID,
			(uint32_t)(2000 + i)));
	for (i = 0; i < THREADS; i++)
		CHECK_EQ(pthread_join(l[i].t, NULL), 0);
	shmcap_name_unpublish(n);
	CHECK_EQ(t_count_fds(), fds);
	printf("ok: %d threads looking up while the allow list grows\n",
	       THREADS);
}

int main(void)
{
	int fds;

	t_watchdog(110);
	page_size = sysconf(_SC_PAGESIZE);
	CHECK(page_size > 0);
	fds = t_count_fds();
	CHECK(fds > 0);

	/* Publishers with threads are forked first, while we have none. */
	test_exists_and_killed();
	kill_during_lookup(0);
	kill_during_lookup(1);
	test_thread_basic();
	test_empty_and_reduced();
	test_dispatch();
	test_access();
	test_allow_limits();
	test_handler();
	test_shared_buffer();
	test_bad_input();
	test_hostile_clients();
	test_hostile_server();
	test_threads();

	CHECK_EQ(t_count_fds(), fds);
	return T_EXIT_PASS;
}
