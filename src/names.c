/* SPDX-License-Identifier: MIT */
/*
 * Names: capabilities published under a name and looked up by any actor.
 *
 * Overview: a published name is a SOCK_SEQPACKET Unix socket listening in
 * the abstract namespace at "\0shmcap-name-NAME" (the address length
 * counts no trailing NUL). The kernel keeps abstract names unique, so a
 * second publisher of a live name fails in bind() (EADDRINUSE, reported
 * as -EEXIST), and it drops the name the moment the socket closes: when
 * the publisher unpublishes, exits or is killed. There is no file to clean
 * up and no daemon that could hold stale entries.
 *
 * A lookup connects, sends one request message and reads one reply
 * message, then both sides close. A connection rather than datagrams for
 * two reasons: the server learns the client's credentials from the
 * connection (SO_PEERCRED, SO_PEERGROUPS, recorded by the kernel at
 * connect()), and a client waiting for its answer sees the end of the
 * connection at once if the publisher dies meanwhile, so it reports
 * -ESRCH instead of sleeping until its timeout. SEQPACKET keeps the
 * message boundaries that a byte stream would lose.
 *
 * Wire format (host byte order: both ends run on one host). Request, one
 * message of 16 + len bytes, no descriptors:
 *
 *   offset size  field
 *   0      4     magic    0x51524e53 ("SNRQ" little-endian)
 *   4      2     version  1
 *   6      2     op       1 (request)
 *   8      4     len      bytes of request data that follow, <= 65536
 *   12     4     reserved 0
 *   16     len   request data (given to the publisher's handler)
 *
 * Reply, one message of 144 + len bytes, with ncaps descriptors as
 * SCM_RIGHTS:
 *
 *   offset size  field
 *   0      4     magic    0x50524e53 ("SNRP" little-endian)
 *   4      2     version  1
 *   6      2     ncaps    number of descriptors, <= 16 (0 if status < 0)
 *   8      4     status   0, or a negative errno (then len is 0)
 *   12     4     len      bytes of reply data that follow, <= 65536
 *   16     128   caps[16] { u32 type; u32 rights; } for descriptor i;
 *                         entries past ncaps are 0
 *   144    len   reply data
 *
 * The reply header has a fixed size for the reason given in transfer.c:
 * recvmsg() fills the first buffer completely before the second.
 *
 * Access rule: the server reads the client's effective uid and gid and
 * its supplementary groups from the connection and applies the mode bits
 * as shm_open() would (shmcap__rule_rights()); the capabilities it sends
 * are derived down to what the rule allows, so the kernel enforces the
 * result (a READ-only region travels as an O_RDONLY descriptor).
 *
 * Neither side trusts the other. The server validates every request
 * field, closes any descriptor a client sends, waits at most GRACE_NS for
 * a request to arrive so that a silent client cannot stall it, and sends
 * its reply without blocking. The client validates the reply header
 * against what arrived, checks each descriptor's kind and open mode
 * (shmcap__cap_adopt) and closes every descriptor on every error.
 *
 * A client dropped without an answer (the server closed the connection, or
 * dropped it because the request came after the grace period) connects
 * again: if nobody listens any more the publisher has ended (-ESRCH); if
 * the name lives, the request is sent again, at most ATTEMPTS times in
 * all.
 *
 * The same endpoint serves map-from-actor grants (grant.c) under another
 * address, "\0shmcap-actor-ID": shmcap__endpoint_publish() and
 * shmcap__endpoint_call() take the full abstract address.
 *
 * Thread safety: the lists of allowed ids are guarded by a mutex, because
 * shmcap_name_allow() may run while the serving thread checks a client.
 * Everything else the server reads is fixed before the name is listened
 * on. One thread at a time serves a name: its own thread, or the caller
 * of shmcap_name_dispatch().
 *
 * fork(): the child inherits the listening socket, so the name lives while
 * any process holds it (close-on-exec: an exec'd program does not). The
 * serving thread is not copied; a child may serve the name with
 * shmcap_name_dispatch() if it was published without a thread (a
 * pre-forked worker model), and shmcap_name_unpublish() in a child only
 * closes the child's copies.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#define REQ_MAGIC 0x51524e53u /* "SNRQ" */
#define REP_MAGIC 0x50524e53u /* "SNRP" */
#define NAME_VERSION 1
#define OP_REQUEST 1
#define NAME_PREFIX "shmcap-name-"
#define RESERVED_PREFIX "shmcap."
#define ALLOW_MAX 64
/* Connections accepted and served together in one round. */
#define BATCH_MAX 64
/* How long the server waits for the request of a connected client. */
#define GRACE_NS ((int64_t)50 * 1000000)
/* Connections a client makes before giving up on a server that drops it. */
#define ATTEMPTS 3

struct req_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t len;
	uint32_t reserved;
};

struct rep_cap {
	uint32_t type;
	uint32_t rights;
};

struct rep_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t ncaps;
	int32_t status;
	uint32_t len;
	struct rep_cap caps[SHMCAP_MSG_MAX_CAPS];
};

_Static_assert(sizeof(struct req_hdr) == 16, "request layout");
_Static_assert(offsetof(struct req_hdr, len) == 8, "request layout");
_Static_assert(sizeof(struct rep_hdr) == 144, "reply layout");
_Static_assert(offsetof(struct rep_hdr, status) == 8, "reply layout");
_Static_assert(offsetof(struct rep_hdr, caps) == 16, "reply layout");
_Static_assert(sizeof(gid_t) == sizeof(uint32_t), "SO_PEERGROUPS entries");

/* Room for the descriptors of the largest reply. */
#define CMSG_ROOM CMSG_SPACE(sizeof(int) * SHMCAP_MSG_MAX_CAPS)

struct shmcap_name {
	int sock;     /* listening, non-blocking */
	int stop;     /* eventfd that ends the thread, or -1 */
	int threaded; /* a thread serves it */
	pid_t owner;  /* the process that published it (fork: see above) */
	pthread_t thread;
	pthread_mutex_t lock; /* guards the allow lists */
	unsigned int mode;
	uint32_t euid, egid;
	uint32_t uids[ALLOW_MAX], gids[ALLOW_MAX];
	size_t nuids, ngids;
	/* What is published: fixed capabilities, or a handler. */
	shmcap_cap *caps[SHMCAP_MSG_MAX_CAPS];
	size_t ncaps;
	shmcap__endpoint_fn fn;
	shmcap_name_fn user_fn;
	void *arg;
	/* Scratch space of the serving thread. */
	uint8_t *req_buf, *rep_buf;
	uint32_t *groups;
	size_t groups_alloc;
};

/* ------------------------------------------------------------------------
 * The access rule
 */

static int id_listed(const uint32_t *v, size_t n, uint32_t id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] == id)
			return 1;
	return 0;
}

static int group_match(const struct shmcap__rule *r,
		       const struct shmcap__client *c)
{
	size_t i;

	if (c->peer.gid == r->gid || id_listed(r->gids, r->ngids, c->peer.gid))
		return 1;
	for (i = 0; i < c->ngroups; i++)
		if (c->groups[i] == r->gid ||
		    id_listed(r->gids, r->ngids, c->groups[i]))
			return 1;
	return 0;
}

unsigned int shmcap__rule_rights(const struct shmcap__rule *r,
				 const struct shmcap__client *c)
{
	unsigned int bits, mask;

	if (c->peer.uid == 0)
		bits = 7;
	else if (c->peer.uid == r->uid ||
		 id_listed(r->uids, r->nuids, c->peer.uid))
		bits = r->mode >> 6;
	else if (group_match(r, c))
		bits = r->mode >> 3;
	else
		bits = r->mode;
	if (!(bits & 4))
		return 0;
	mask = SHMCAP_RIGHT_READ | SHMCAP_RIGHT_WAIT;
	if (bits & 2)
		mask |= SHMCAP_RIGHT_WRITE | SHMCAP_RIGHT_SIGNAL;
	return mask;
}

/* -EACCES if mask would leave one of caps[0..n) without a usable right. */
static int rule_check(shmcap_cap *const *caps, size_t n, unsigned int mask)
{
	unsigned int r;
	size_t i;

	for (i = 0; i < n; i++) {
		r = caps[i]->rights & mask;
		if (!r || (caps[i]->type == SHMCAP_TYPE_REGION &&
			   !(r & SHMCAP_RIGHT_READ)))
			return -EACCES;
	}
	return 0;
}

int shmcap__rule_limit(shmcap_cap **caps, size_t n, unsigned int mask)
{
	shmcap_cap *d;
	size_t i;
	int ret;

	ret = rule_check(caps, n, mask);
	if (ret < 0)
		return ret;
	for (i = 0; i < n; i++) {
		if (!(caps[i]->rights & ~mask))
			continue;
		ret = shmcap_cap_derive(caps[i], caps[i]->rights & mask, &d);
		if (ret < 0)
			return ret;
		shmcap_cap_close(caps[i]);
		caps[i] = d;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Addresses and names
 */

int shmcap__abstract_addr(const char *address, struct sockaddr_un *sa,
			  socklen_t *len)
{
	size_t n = strlen(address);

	if (n == 0)
		return -EINVAL;
	if (n > sizeof(sa->sun_path) - 1)
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	/* sun_path[0] stays '\0': the abstract namespace. */
	memcpy(sa->sun_path + 1, address, n);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	return 0;
}

/*
 * Check a published name and build its address "shmcap-name-NAME" into
 * buf (room for SHMCAP_PUBLISHED_NAME_MAX + 13 bytes).
 */
static int name_address(const char *name, char *buf)
{
	size_t i, len;
	char c;

	if (!name)
		return -EINVAL;
	len = strnlen(name, SHMCAP_PUBLISHED_NAME_MAX + 1);
	if (len == 0)
		return -EINVAL;
	if (len > SHMCAP_PUBLISHED_NAME_MAX)
		return -ENAMETOOLONG;
	for (i = 0; i < len; i++) {
		c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-' || c == '/'))
			return -EINVAL;
	}
	memcpy(buf, NAME_PREFIX, strlen(NAME_PREFIX));
	memcpy(buf + strlen(NAME_PREFIX), name, len + 1);
	return 0;
}

_Static_assert(sizeof(NAME_PREFIX) + SHMCAP_PUBLISHED_NAME_MAX <=
		       sizeof(((struct sockaddr_un *)0)->sun_path),
	       "a published name fits an abstract address");

#define NAME_ADDR_SIZE (sizeof(NAME_PREFIX) + SHMCAP_PUBLISHED_NAME_MAX)

/* ------------------------------------------------------------------------
 * Server
 */

/*
 * The client's credentials on connection fd: effective uid and gid and pid
 * at connect() time, and its supplementary groups (none on kernels before
 * 4.13, which lack SO_PEERGROUPS: only the primary gid then counts).
 */
static int client_creds(shmcap_name *n, int fd, struct shmcap__client *c)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	uint32_t *v;
	int tries;

	memset(c, 0, sizeof(*c));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return shmcap__neg_errno();
	c->peer.pid = (int32_t)uc.pid;
	c->peer.uid = (uint32_t)uc.uid;
	c->peer.gid = (uint32_t)uc.gid;
	/* The groups are fixed at connect(): a second try always fits. */
	for (tries = 0; tries < 2; tries++) {
		len = (socklen_t)(n->groups_alloc * sizeof(uint32_t));
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, n->groups,
			       &len) == 0) {
			c->groups = n->groups;
			c->ngroups = len / sizeof(uint32_t);
			return 0;
		}
		if (errno == ENOPROTOOPT)
			return 0;
		if (errno != ERANGE)
			return shmcap__neg_errno();
		v = realloc(n->groups, len);
		if (!v)
			return -ENOMEM;
		n->groups = v;
		n->groups_alloc = len / sizeof(uint32_t);
	}
	return -EAGAIN;
}

/* Send the reply; a client that went away is not an error of ours. */
static void send_reply(int fd, int status, shmcap_cap *const *caps,
		       size_t ncaps, const void *data, size_t len)
{
	union {
		char buf[CMSG_ROOM];
		struct cmsghdr align;
	} ctl;
	struct rep_hdr hdr;
	struct msghdr msg;
	struct iovec iov[2];
	struct cmsghdr *c;
	size_t i;
	int fds[SHMCAP_MSG_MAX_CAPS];

	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = REP_MAGIC;
	hdr.version = NAME_VERSION;
	hdr.status = status;
	if (status < 0) {
		ncaps = 0;
		len = 0;
	}
	hdr.ncaps = (uint16_t)ncaps;
	hdr.len = (uint32_t)len;
	for (i = 0; i < ncaps; i++) {
		hdr.caps[i].type = caps[i]->type;
		hdr.caps[i].rights = caps[i]->rights;
		fds[i] = caps[i]->fd;
	}
	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = (void *)data;
	iov[1].iov_len = len;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
	if (ncaps) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * ncaps);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * ncaps);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * ncaps);
	}
	while (sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
	       errno == EINTR)
		;
}

static void close_caps(shmcap_cap **caps, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		shmcap_cap_close(caps[i]);
		caps[i] = NULL;
	}
}

/*
 * Call the handler and make its answer safe to send: a status in range,
 * capabilities where it said, limited to mask. Returns the number of
 * capabilities in caps, or the status to send (caps then all closed).
 */
static int run_handler(shmcap_name *n, const struct shmcap__client *client,
		       size_t req_len, unsigned int mask, shmcap_cap **caps,
		       size_t *reply_len)
{
	size_t i, count;
	int ret;

	memset(caps, 0, sizeof(*caps) * SHMCAP_MSG_MAX_CAPS);
	*reply_len = SHMCAP_MSG_MAX_DATA;
	if (n->user_fn)
		ret = n->user_fn(n->arg, &client->peer, n->req_buf, req_len,
				 caps, SHMCAP_MSG_MAX_CAPS, n->rep_buf,
				 reply_len);
	else
		ret = n->fn(n->arg, client, n->req_buf, req_len, caps,
			    SHMCAP_MSG_MAX_CAPS, n->rep_buf, reply_len);
	/* A handler's bug must not reach the client as a bogus answer. */
	if (ret > SHMCAP_MSG_MAX_CAPS || ret <= -4096 ||
	    (ret >= 0 && *reply_len > SHMCAP_MSG_MAX_DATA))
		ret = -EIO;
	count = ret > 0 ? (size_t)ret : 0;
	for (i = 0; i < count; i++)
		if (!caps[i])
			ret = -EIO;
	if (ret >= 0)
		ret = shmcap__rule_limit(caps, count, mask);
	/* Whatever was filled in beyond the count, or on an error, goes. */
	for (i = ret < 0 ? 0 : count; i < SHMCAP_MSG_MAX_CAPS; i++) {
		shmcap_cap_close(caps[i]);
		caps[i] = NULL;
	}
	return ret < 0 ? ret : (int)count;
}

/* Read the request on connection fd and answer it. */
static void serve_conn(shmcap_name *n, int fd)
{
	shmcap_cap *caps[SHMCAP_MSG_MAX_CAPS];
	shmcap_cap *const *send_caps = caps;
	struct shmcap__client client;
	struct shmcap__msg_in in;
	struct shmcap__rule rule;
	struct req_hdr rq;
	struct iovec iov[2];
	size_t ncaps = 0, reply_len = 0, i;
	unsigned int mask;
	int status, owned = 0;
	ssize_t r;

	iov[0].iov_base = &rq;
	iov[0].iov_len = sizeof(rq);
	iov[1].iov_base = n->req_buf;
	iov[1].iov_len = SHMCAP_MSG_MAX_DATA;
	r = shmcap__recv_msg(fd, iov, 2, MSG_DONTWAIT | MSG_TRUNC, &in);
	/* Requests carry no descriptors. */
	shmcap__close_fds(in.fds, in.nfds);
	if (r <= 0)
		return; /* gone, or nothing sent: drop it */
	if ((size_t)r < sizeof(rq) || rq.magic != REQ_MAGIC ||
	    rq.version != NAME_VERSION || rq.op != OP_REQUEST ||
	    rq.reserved != 0 || rq.len > SHMCAP_MSG_MAX_DATA ||
	    rq.len != (size_t)r - sizeof(rq)) {
		send_reply(fd, -EBADMSG, NULL, 0, NULL, 0);
		return;
	}
	status = client_creds(n, fd, &client);
	if (status < 0)
		goto reply;

	rule.mode = n->mode;
	rule.uid = n->euid;
	rule.gid = n->egid;
	rule.uids = n->uids;
	rule.gids = n->gids;
	pthread_mutex_lock(&n->lock);
	rule.nuids = n->nuids;
	rule.ngids = n->ngids;
	mask = shmcap__rule_rights(&rule, &client);
	pthread_mutex_unlock(&n->lock);
	if (!mask) {
		status = -EACCES;
		goto reply;
	}

	if (n->fn || n->user_fn) {
		status =
			run_handler(n, &client, rq.len, mask, caps, &reply_len);
		if (status < 0)
			goto reply;
		ncaps = (size_t)status;
		owned = 1;
		status = 0;
		goto reply;
	}
	status = rule_check(n->caps, n->ncaps, mask);
	if (status < 0)
		goto reply;
	/* Send the stored capabilities themselves if the rule takes nothing. */
	for (i = 0; i < n->ncaps; i++)
		if (n->caps[i]->rights & ~mask)
			break;
	if (i == n->ncaps) {
		send_caps = n->caps;
		ncaps = n->ncaps;
		goto reply;
	}
	for (i = 0; i < n->ncaps; i++) {
		status = shmcap_cap_derive(n->caps[i],
					   n->caps[i]->rights & mask, &caps[i]);
		if (status < 0) {
			close_caps(caps, i);
			goto reply;
		}
	}
	ncaps = n->ncaps;
	owned = 1;
reply:
	send_reply(fd, status, send_caps, ncaps, n->rep_buf, reply_len);
	if (owned)
		close_caps(caps, ncaps);
}

/*
 * Accept the connections waiting (up to BATCH_MAX) and answer each whose
 * request arrives within GRACE_NS; drop the others. Returns how many were
 * handled, or -errno if accept() failed before any.
 */
static int serve_batch(shmcap_name *n)
{
	struct pollfd p[BATCH_MAX];
	int64_t deadline;
	int k = 0, left, handled = 0, fd, r, i, err = 0;

	while (k < BATCH_MAX) {
		fd = accept4(n->sock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				err = shmcap__neg_errno();
			break;
		}
		p[k].fd = fd;
		p[k].events = POLLIN;
		p[k].revents = 0;
		k++;
	}
	if (k == 0)
		return err;

	/* One grace period for the whole batch: silent clients cost it once. */
	deadline = shmcap__deadline(GRACE_NS);
	left = k;
	while (left > 0) {
		r = poll(p, (nfds_t)k, shmcap__poll_ms(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (i = 0; i < k; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			serve_conn(n, p[i].fd);
			close(p[i].fd);
			p[i].fd = -1;
			left--;
			handled++;
		}
	}
	for (i = 0; i < k; i++) {
		if (p[i].fd < 0)
			continue;
		close(p[i].fd);
		handled++;
	}
	return handled;
}

static void *name_thread(void *arg)
{
	shmcap_name *n = arg;
	struct pollfd p[2] = {
		{ .fd = n->sock, .events = POLLIN },
		{ .fd = n->stop, .events = POLLIN },
	};

	for (;;) {
		if (poll(p, 2, -1) < 0)
			continue; /* EINTR: signals are blocked, but be safe */
		if (p[1].revents)
			break;
		if (p[0].revents && serve_batch(n) < 0)
			/* Out of descriptors: breathe instead of spinning. */
			poll(&p[1], 1, 10);
	}
	return NULL;
}

/* Free n and what it holds; join its thread only if it is ours. */
static void name_free(shmcap_name *n, int join)
{
	uint64_t one = 1;

	if (!n)
		return;
	if (n->threaded && join) {
		while (write(n->stop, &one, sizeof(one)) < 0 && errno == EINTR)
			;
		pthread_join(n->thread, NULL);
	}
	if (n->stop >= 0)
		close(n->stop);
	if (n->sock >= 0)
		close(n->sock);
	close_caps(n->caps, n->ncaps);
	free(n->req_buf);
	free(n->rep_buf);
	free(n->groups);
	/* In a forked child the mutex may be a copy held by a lost thread. */
	if (join)
		pthread_mutex_destroy(&n->lock);
	free(n);
}

/*
 * Create the name: bound and listening at address, served by a thread if
 * flags ask. caps are copied. Exactly one of caps (ncaps may be 0), fn and
 * user_fn is used.
 */
static int name_create(const char *address, shmcap_cap *const *caps,
		       size_t ncaps, shmcap__endpoint_fn fn,
		       shmcap_name_fn user_fn, void *arg, unsigned int mode,
		       unsigned int flags, shmcap_name **out)
{
	struct sockaddr_un sa;
	sigset_t all, old;
	shmcap_name *n;
	socklen_t salen;
	size_t i;
	int ret;

	if (!out || (mode & ~0777u) || (flags & ~SHMCAP_NAME_THREAD))
		return -EINVAL;
	if (ncaps > SHMCAP_MSG_MAX_CAPS)
		return -E2BIG;
	if (ncaps && !caps)
		return -EINVAL;
	for (i = 0; i < ncaps; i++)
		if (!caps[i])
			return -EINVAL;
	ret = shmcap__abstract_addr(address, &sa, &salen);
	if (ret < 0)
		return ret;

	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->sock = -1;
	n->stop = -1;
	n->owner = getpid();
	n->mode = mode;
	n->euid = (uint32_t)geteuid();
	n->egid = (uint32_t)getegid();
	n->fn = fn;
	n->user_fn = user_fn;
	n->arg = arg;
	pthread_mutex_init(&n->lock, NULL);
	n->req_buf = malloc(SHMCAP_MSG_MAX_DATA);
	n->rep_buf = malloc(SHMCAP_MSG_MAX_DATA);
	if (!n->req_buf || !n->rep_buf) {
		ret = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < ncaps; i++) {
		ret = shmcap_cap_derive(caps[i], caps[i]->rights, &n->caps[i]);
		if (ret < 0)
			goto fail;
		n->ncaps++;
	}
	n->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
			 0);
	if (n->sock < 0) {
		ret = shmcap__neg_errno();
		goto fail;
	}
	if (bind(n->sock, (struct sockaddr *)&sa, salen) < 0) {
		ret = errno == EADDRINUSE ? -EEXIST : shmcap__neg_errno();
		goto fail;
	}
	if (listen(n->sock, SOMAXCONN) < 0) {
		ret = shmcap__neg_errno();
		goto fail;
	}
	if (flags & SHMCAP_NAME_THREAD) {
		n->stop = eventfd(0, EFD_CLOEXEC);
		if (n->stop < 0) {
			ret = shmcap__neg_errno();
			goto fail;
		}
		/* The thread must never take the application's signals. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		ret = -pthread_create(&n->thread, NULL, name_thread, n);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (ret < 0)
			goto fail;
		n->threaded = 1;
	}
	*out = n;
	return 0;

fail:
	name_free(n, 1);
	return ret;
}

int shmcap__endpoint_publish(const char *address, shmcap__endpoint_fn fn,
			     void *arg, unsigned int mode, unsigned int flags,
			     shmcap_name **out)
{
	if (!address || !fn)
		return -EINVAL;
	return name_create(address, NULL, 0, fn, NULL, arg, mode, flags, out);
}

void shmcap__endpoint_abandon(shmcap_name *n)
{
	name_free(n, 0);
}

/* -EINVAL for names in the reserved "shmcap." space, else as name_address. */
static int publish_address(const char *name, char *buf)
{
	int ret = name_address(name, buf);

	if (ret < 0)
		return ret;
	if (strncmp(name, RESERVED_PREFIX, strlen(RESERVED_PREFIX)) == 0)
		return -EINVAL;
	return 0;
}

SHMCAP_EXPORT int shmcap_name_publish(const char *name, shmcap_cap *const *caps,
				      size_t ncaps, unsigned int mode,
				      unsigned int flags, shmcap_name **out)
{
	char address[NAME_ADDR_SIZE];
	int ret;

	ret = publish_address(name, address);
	if (ret < 0)
		return ret;
	return name_create(address, caps, ncaps, NULL, NULL, NULL, mode, flags,
			   out);
}

SHMCAP_EXPORT int shmcap_name_publish_fn(const char *name, shmcap_name_fn fn,
					 void *arg, unsigned int mode,
					 unsigned int flags, shmcap_name **out)
{
	char address[NAME_ADDR_SIZE];
	int ret;

	ret = publish_address(name, address);
	if (ret < 0)
		return ret;
	if (!fn)
		return -EINVAL;
	return name_create(address, NULL, 0, NULL, fn, arg, mode, flags, out);
}

SHMCAP_EXPORT int shmcap_name_allow(shmcap_name *n, int kind, uint32_t id)
{
	uint32_t *v;
	size_t *count;
	int ret = 0;

	if (!n)
		return -EINVAL;
	if (kind == SHMCAP_ALLOW_UID) {
		v = n->uids;
		count = &n->nuids;
	} else if (kind == SHMCAP_ALLOW_GID) {
		v = n->gids;
		count = &n->ngids;
	} else {
		return -EINVAL;
	}
	pthread_mutex_lock(&n->lock);
	if (id_listed(v, *count, id))
		goto out;
	if (n->nuids + n->ngids >= ALLOW_MAX) {
		ret = -ENOSPC;
		goto out;
	}
	v[(*count)++] = id;
out:
	pthread_mutex_unlock(&n->lock);
	return ret;
}

SHMCAP_EXPORT int shmcap_name_fd(const shmcap_name *n)
{
	return n ? n->sock : -EINVAL;
}

SHMCAP_EXPORT int shmcap_name_dispatch(shmcap_name *n, int64_t timeout_ns)
{
	struct pollfd p;
	int r;

	if (!n || n->threaded)
		return -EINVAL;
	p.fd = n->sock;
	p.events = POLLIN;
	r = poll(&p, 1, shmcap__poll_ms(shmcap__deadline(timeout_ns)));
	if (r < 0)
		return shmcap__neg_errno();
	if (r == 0)
		return 0;
	return serve_batch(n);
}

SHMCAP_EXPORT void shmcap_name_unpublish(shmcap_name *n)
{
	if (!n)
		return;
	name_free(n, n->owner == getpid());
}

/* ------------------------------------------------------------------------
 * Client
 */

/*
 * Connect to sa. Returns the socket, -ENOENT if nobody listens there, or
 * -ETIMEDOUT if the listener's queue stayed full until the deadline.
 */
static int call_connect(const struct sockaddr_un *sa, socklen_t salen,
			int64_t deadline)
{
	struct timeval tv;
	int64_t left = 0, us;
	int sock, ret;

	for (;;) {
		if (deadline != INT64_MAX) {
			left = deadline - shmcap__now_ns();
			if (left < 0)
				left = 0;
		}
		/* The deadline has passed: try once without blocking. */
		sock = socket(AF_UNIX,
			      SOCK_SEQPACKET | SOCK_CLOEXEC |
				      (deadline != INT64_MAX && left == 0 ?
					       SOCK_NONBLOCK :
					       0),
			      0);
		if (sock < 0)
			return shmcap__neg_errno();
		if (deadline != INT64_MAX && left > 0) {
			/* A full listen queue blocks connect() and send(). */
			/* Rounded up, but tv_usec must stay below 10^6. */
			us = (left + 999) / 1000;
			tv.tv_sec = (time_t)(us / 1000000);
			tv.tv_usec = (suseconds_t)(us % 1000000);
			if (setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv,
				       sizeof(tv)) < 0) {
				ret = shmcap__neg_errno();
				close(sock);
				return ret;
			}
		}
		if (connect(sock, (const struct sockaddr *)sa, salen) == 0)
			return sock;
		ret = errno;
		close(sock);
		if (ret == EINTR)
			continue;
		if (ret == ECONNREFUSED || ret == ENOENT)
			return -ENOENT;
		if (ret == EAGAIN)
			return -ETIMEDOUT;
		return -ret;
	}
}

/* The pid of the process that listens at the other end of sock. */
static int server_pid(int sock, int32_t *pid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return shmcap__neg_errno();
	*pid = (int32_t)uc.pid;
	return 0;
}

static int call_send(int sock, const struct shmcap__call *c, int *dropped)
{
	struct req_hdr rq;
	struct msghdr msg;
	struct iovec iov[2];

	memset(&rq, 0, sizeof(rq));
	rq.magic = REQ_MAGIC;
	rq.version = NAME_VERSION;
	rq.op = OP_REQUEST;
	rq.len = (uint32_t)c->req_len;
	iov[0].iov_base = &rq;
	iov[0].iov_len = sizeof(rq);
	iov[1].iov_base = (void *)c->req;
	iov[1].iov_len = c->req_len;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EPIPE || errno == ECONNRESET) {
			*dropped = 1;
			return 0;
		}
		return errno == EAGAIN ? -ETIMEDOUT : shmcap__neg_errno();
	}
	return 0;
}

/*
 * Read and check the reply. Returns the reply's length, or the server's
 * status, or -errno; sets *dropped if the server closed without answering.
 */
static int call_read(int sock, struct shmcap__call *c, int *dropped)
{
	struct shmcap__msg_in in;
	struct rep_hdr hdr;
	struct iovec iov[2];
	size_t i;
	ssize_t r;
	int ret;

	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = c->reply;
	iov[1].iov_len = c->reply_size;
	r = shmcap__recv_msg(sock, iov, 2, MSG_DONTWAIT | MSG_TRUNC, &in);
	if (r == -ECONNRESET || r == -EPIPE || (r == 0 && in.nfds == 0)) {
		*dropped = 1;
		return 0;
	}
	if (r < 0)
		return (int)r;
	ret = -EBADMSG;
	if (in.excess || (in.msg_flags & MSG_CTRUNC) ||
	    (size_t)r < sizeof(hdr) || hdr.magic != REP_MAGIC ||
	    hdr.version != NAME_VERSION || hdr.ncaps != in.nfds ||
	    hdr.len > SHMCAP_MSG_MAX_DATA || hdr.len != (size_t)r - sizeof(hdr))
		goto fail;
	if (hdr.status != 0) {
		if (hdr.status < 0 && hdr.status > -4096 && in.nfds == 0 &&
		    hdr.len == 0)
			ret = hdr.status;
		goto fail;
	}
	if (in.nfds > c->max_caps) {
		ret = -E2BIG;
		goto fail;
	}
	if (hdr.len > c->reply_size && !c->discard_excess) {
		ret = -EMSGSIZE;
		goto fail;
	}
	for (i = 0; i < in.nfds; i++) {
		ret = shmcap__cap_adopt(in.fds[i], hdr.caps[i].type,
					hdr.caps[i].rights, &c->caps[i]);
		if (ret < 0) {
			/* fds[i] is closed; undo caps[0..i), close the rest. */
			shmcap__close_fds(in.fds + i + 1, in.nfds - i - 1);
			close_caps(c->caps, i);
			return ret;
		}
	}
	c->ncaps = in.nfds;
	return (int)(hdr.len < c->reply_size ? hdr.len : c->reply_size);

fail:
	shmcap__close_fds(in.fds, in.nfds);
	return ret;
}

/* Wait for the reply on sock, or for the server to end. */
static int call_wait(int sock, struct shmcap__call *c, int64_t deadline,
		     int *dropped)
{
	struct pollfd p[2] = {
		{ .fd = sock, .events = POLLIN },
		{ .fd = c->watch_fd, .events = POLLIN },
	};
	nfds_t np = c->watch_fd >= 0 ? 2 : 1;
	int r;

	for (;;) {
		r = poll(p, np, shmcap__poll_ms(deadline));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return shmcap__neg_errno();
		}
		if (r == 0)
			return -ETIMEDOUT;
		/* A reply that came before the server ended still counts. */
		if (p[0].revents) {
			r = call_read(sock, c, dropped);
			if (r != -EAGAIN)
				return r;
			continue;
		}
		if (np == 2 && p[1].revents)
			return -ESRCH;
	}
}

int shmcap__endpoint_call(struct shmcap__call *c)
{
	struct sockaddr_un sa;
	socklen_t salen;
	int64_t deadline;
	int32_t pid;
	int attempt, sock, ret, dropped;

	c->ncaps = 0;
	if (c->req_len > SHMCAP_MSG_MAX_DATA)
		return -EMSGSIZE;
	ret = shmcap__abstract_addr(c->address, &sa, &salen);
	if (ret < 0)
		return ret;
	deadline = shmcap__deadline(c->timeout_ns);
	for (attempt = 0;; attempt++) {
		sock = call_connect(&sa, salen, deadline);
		if (sock == -ENOENT)
			/* After a drop: the publisher has gone meanwhile. */
			return attempt ? -ESRCH : c->absent_err;
		if (sock < 0)
			return sock;
		if (c->server_pid) {
			ret = server_pid(sock, &pid);
			if (ret == 0 && pid != c->server_pid)
				/* Someone else holds the address. */
				ret = attempt ? -ESRCH : c->absent_err;
			if (ret < 0) {
				close(sock);
				return ret;
			}
		}
		dropped = 0;
		ret = call_send(sock, c, &dropped);
		if (ret == 0 && !dropped)
			ret = call_wait(sock, c, deadline, &dropped);
		close(sock);
		if (!dropped)
			return ret;
		if (attempt + 1 >= ATTEMPTS)
			return -ECONNRESET;
	}
}

SHMCAP_EXPORT int shmcap_name_request(const char *name, const void *req,
				      size_t req_len, shmcap_cap **caps,
				      size_t max_caps, size_t *ncaps,
				      void *reply, size_t reply_size,
				      int64_t timeout_ns)
{
	char address[NAME_ADDR_SIZE];
	struct shmcap__call c;
	int ret;

	if (ncaps)
		*ncaps = 0;
	ret = name_address(name, address);
	if (ret < 0)
		return ret;
	if ((req_len && !req) || (max_caps && (!caps || !ncaps)) ||
	    (reply_size && !reply))
		return -EINVAL;
	if (req_len > SHMCAP_MSG_MAX_DATA)
		return -EMSGSIZE;
	memset(&c, 0, sizeof(c));
	c.address = address;
	c.absent_err = -ENOENT;
	c.watch_fd = -1;
	c.req = req;
	c.req_len = req_len;
	c.caps = caps;
	c.max_caps = max_caps;
	c.reply = reply;
	c.reply_size = reply_size;
	c.timeout_ns = timeout_ns;
	ret = shmcap__endpoint_call(&c);
	if (ret >= 0 && ncaps)
		*ncaps = c.ncaps;
	return ret;
}

SHMCAP_EXPORT int shmcap_name_lookup(const char *name, shmcap_cap **caps,
				     size_t max_caps, int64_t timeout_ns)
{
	char address[NAME_ADDR_SIZE];
	struct shmcap__call c;
	int ret;

	ret = name_address(name, address);
	if (ret < 0)
		return ret;
	if (max_caps && !caps)
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	c.address = address;
	c.absent_err = -ENOENT;
	c.watch_fd = -1;
	c.caps = caps;
	c.max_caps = max_caps;
	c.discard_excess = 1; /* a handler's reply bytes are not wanted here */
	c.timeout_ns = timeout_ns;
	ret = shmcap__endpoint_call(&c);
	return ret < 0 ? ret : (int)c.ncaps;
}

SHMCAP_EXPORT int shmcap_shared_buffer_get(const char *name, int64_t timeout_ns,
					   shmcap_cap **region,
					   shmcap_cap **notifier)
{
	shmcap_cap *caps[SHMCAP_MSG_MAX_CAPS];
	int n;

	if (!region || !notifier)
		return -EINVAL;
	*region = NULL;
	*notifier = NULL;
	n = shmcap_name_lookup(name, caps, SHMCAP_MSG_MAX_CAPS, timeout_ns);
	if (n < 0)
		return n;
	if (n != 2 || caps[0]->type != SHMCAP_TYPE_REGION ||
	    caps[1]->type != SHMCAP_TYPE_NOTIFIER) {
		close_caps(caps, (size_t)n);
		return -EPROTO;
	}
	*region = caps[0];
	*notifier = caps[1];
	return 0;
}
