/* SPDX-License-Identifier: MIT */
/*
 * Tokens: printable capabilities, resolved by asking their issuer.
 *
 * Overview: an issuer is a SOCK_DGRAM Unix socket bound in the abstract
 * namespace to "shmcap-issuer-INSTANCE", INSTANCE being 128 random bits
 * written as 32 hex digits. Abstract names need no file and vanish with the
 * socket, so a token whose issuer died finds nobody (ECONNREFUSED) and
 * resolves to -ESRCH; a reused pid never answers for a dead issuer, since
 * the name does not contain the pid.
 *
 * A resolver binds its own socket to a kernel-chosen abstract name
 * (autobind), sends a request and waits for the reply, which carries the
 * descriptor as SCM_RIGHTS. Datagrams keep the issuer stateless towards
 * clients: a client that sends a request and vanishes costs one reply sent
 * with MSG_DONTWAIT, never a blocked issuer.
 *
 * Checks: the issuer reads the requester's uid from SCM_CREDENTIALS (filled
 * in by the kernel), compares the 128-bit key in constant time and answers
 * with a status. The resolver accepts a reply only from the issuer's address,
 * from the uid written in the token, and echoing its request's nonce.
 *
 * Wire format (host byte order, both ends on one host):
 *
 *   request, 40 bytes            reply, 32 bytes (+ SCM_RIGHTS if granted)
 *   0  u32 magic "SCRQ"          0  u32 magic "SCRP"
 *   4  u16 version 1             4  u16 version 1
 *   6  u16 op (1 = resolve)      6  u16 reserved
 *   8  u64 token id              8  i32 status (0 or -errno)
 *   16 u8[16] key                12 u32 type
 *   32 u64 nonce                 16 u32 rights
 *                                20 u32 reserved
 *                                24 u64 nonce
 *
 * Thread safety: the table of tokens is guarded by a mutex, because the
 * serving thread (SHMCAP_ISSUER_THREAD) and the owner's issue/revoke calls
 * run concurrently. Without a thread, dispatch runs in the caller's thread.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */

#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#define REQ_MAGIC 0x51524353u /* "SCRQ" */
#define REP_MAGIC 0x50524353u /* "SCRP" */
#define TOK_VERSION 1
#define OP_RESOLVE 1
#define KEY_LEN 16
#define INST_LEN 16
#define NAME_PREFIX "shmcap-issuer-"
#define TOKEN_PREFIX "shmcap:1:"

struct req {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint64_t id;
	uint8_t key[KEY_LEN];
	uint64_t nonce;
};

struct rep {
	uint32_t magic;
	uint16_t version;
	uint16_t reserved;
	int32_t status;
	uint32_t type;
	uint32_t rights;
	uint32_t reserved2;
	uint64_t nonce;
};

_Static_assert(sizeof(struct req) == 40, "request layout");
_Static_assert(offsetof(struct req, nonce) == 32, "request layout");
_Static_assert(sizeof(struct rep) == 32, "reply layout");
_Static_assert(offsetof(struct rep, nonce) == 24, "reply layout");

struct entry {
	uint64_t id;
	uint8_t key[KEY_LEN];
	uint32_t flags;
	shmcap_cap *cap;
};

struct shmcap_issuer {
	int sock;
	int stop; /* eventfd that ends the thread, or -1 */
	int threaded;
	pthread_t thread;
	pthread_mutex_t lock;
	uint8_t instance[INST_LEN];
	uint32_t euid;
	uint64_t next_id; /* ids below it were issued; 0 is never used */
	struct entry *v;
	size_t n, alloc;
};

/* A parsed token. */
struct token {
	uint32_t uid;
	uint8_t instance[INST_LEN];
	uint64_t id;
	uint8_t key[KEY_LEN];
};

static void hex_encode(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode exactly 2n lowercase hex digits at *s; advance *s. */
static int hex_decode(const char **s, uint8_t *out, size_t n)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		hi = hex_digit((*s)[2 * i]);
		if (hi < 0)
			return -EINVAL;
		lo = hex_digit((*s)[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*s += 2 * n;
	return 0;
}

/* Decode a decimal number without sign or leading zeros, <= max. */
static int dec_decode(const char **s, uint64_t max, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;

	if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9'))
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (max - (uint64_t)(*p - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	*s = p;
	return 0;
}

static int token_parse(const char *text, struct token *t)
{
	const char *p = text;
	uint64_t v;

	if (!text || strnlen(text, SHMCAP_TOKEN_MAX) >= SHMCAP_TOKEN_MAX ||
	    strncmp(p, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0)
		return -EINVAL;
	p += strlen(TOKEN_PREFIX);
	if (dec_decode(&p, UINT32_MAX, &v) < 0 || *p++ != ':')
		return -EINVAL;
	t->uid = (uint32_t)v;
	if (hex_decode(&p, t->instance, INST_LEN) < 0 || *p++ != ':')
		return -EINVAL;
	if (dec_decode(&p, UINT64_MAX, &t->id) < 0 || t->id == 0 ||
	    *p++ != ':')
		return -EINVAL;
	if (hex_decode(&p, t->key, KEY_LEN) < 0 || *p != '\0')
		return -EINVAL;
	return 0;
}

/* The issuer's abstract address; returns the address length. */
static socklen_t issuer_addr(const uint8_t *instance, struct sockaddr_un *sa)
{
	char address[sizeof(NAME_PREFIX) + 2 * INST_LEN];
	socklen_t len = 0;

	memcpy(address, NAME_PREFIX, sizeof(NAME_PREFIX) - 1);
	hex_encode(address + sizeof(NAME_PREFIX) - 1, instance, INST_LEN);
	/* A fixed-size name that always fits. */
	(void)shmcap__abstract_addr(address, sa, &len);
	return len;
}

/* Constant-time comparison, so the time taken does not leak the key. */
static int key_equal(const uint8_t *a, const uint8_t *b)
{
	uint8_t d = 0;
	size_t i;

	for (i = 0; i < KEY_LEN; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

/* Index of the entry with id, or -1. Caller holds the lock. */
static ssize_t entry_find(const shmcap_issuer *iss, uint64_t id)
{
	size_t i;

	for (i = 0; i < iss->n; i++)
		if (iss->v[i].id == id)
			return (ssize_t)i;
	return -1;
}

/* Drop entry i and its capability. Caller holds the lock. */
static void entry_remove(shmcap_issuer *iss, size_t i)
{
	shmcap_cap_close(iss->v[i].cap);
	iss->v[i] = iss->v[--iss->n];
}

/*
 * Decide the answer to a request from uid. On success *fd is the descriptor
 * to send and *remove tells that the entry must go once it is sent.
 * Caller holds the lock.
 */
static int decide(shmcap_issuer *iss, const struct req *rq, uint32_t uid,
		  struct rep *rp, int *fd, ssize_t *remove)
{
	const struct entry *e;
	ssize_t i;

	*fd = -1;
	*remove = -1;
	if (rq->op != OP_RESOLVE)
		return -EBADMSG;
	i = entry_find(iss, rq->id);
	if (i < 0)
		return rq->id != 0 && rq->id < iss->next_id ? -EKEYREVOKED
							   : -ENOENT;
	e = &iss->v[i];
	if (!key_equal(e->key, rq->key))
		return -EACCES;
	if (!(e->flags & SHMCAP_TOKEN_ANY_UID) && uid != iss->euid)
		return -EACCES;
	rp->type = e->cap->type;
	rp->rights = e->cap->rights;
	*fd = e->cap->fd;
	if (e->flags & SHMCAP_TOKEN_ONCE)
		*remove = i;
	return 0;
}

/*
 * Answer one waiting request. Returns 1 if one was handled (granted,
 * refused or dropped as malformed), 0 if none waited, or -errno.
 */
static int serve_one(shmcap_issuer *iss)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} out;
	struct shmcap__msg_in in;
	struct msghdr msg;
	struct cmsghdr *c;
	struct iovec iov;
	struct req rq;
	struct rep rp;
	ssize_t r, remove;
	int fd;

	iov.iov_base = &rq;
	iov.iov_len = sizeof(rq);
	r = shmcap__recv_msg(iss->sock, &iov, 1, MSG_DONTWAIT, &in);
	if (r < 0)
		return r == -EAGAIN ? 0 : (int)r;
	/* Requests carry no descriptors: close any sent. */
	shmcap__close_fds(in.fds, in.nfds);
	/* Unanswerable: malformed, or from an unbound (nameless) socket. */
	if ((size_t)r != sizeof(rq) || (in.msg_flags & MSG_TRUNC) ||
	    rq.magic != REQ_MAGIC || rq.version != TOK_VERSION ||
	    !in.have_cred || in.fromlen <= sizeof(sa_family_t))
		return 1;

	memset(&rp, 0, sizeof(rp));
	rp.magic = REP_MAGIC;
	rp.version = TOK_VERSION;
	rp.nonce = rq.nonce;
	pthread_mutex_lock(&iss->lock);
	rp.status = decide(iss, &rq, in.uid, &rp, &fd, &remove);

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = &rp;
	iov.iov_len = sizeof(rp);
	msg.msg_name = &in.from;
	msg.msg_namelen = in.fromlen;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd >= 0) {
		memset(&out, 0, sizeof(out));
		msg.msg_control = out.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	/*
	 * A one-shot token is spent only if the reply went out; a client
	 * whose queue is full may ask again.
	 */
	if (sendmsg(iss->sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0 &&
	    remove >= 0)
		entry_remove(iss, (size_t)remove);
	pthread_mutex_unlock(&iss->lock);
	return 1;
}

/* Answer everything that waits now. Returns how many were answered. */
static int serve_all(shmcap_issuer *iss)
{
	int n = 0, r;

	while ((r = serve_one(iss)) > 0)
		n++;
	return r < 0 && n == 0 ? r : n;
}

static void *issuer_thread(void *arg)
{
	shmcap_issuer *iss = arg;
	struct pollfd p[2] = {
		{ .fd = iss->sock, .events = POLLIN },
		{ .fd = iss->stop, .events = POLLIN },
	};

	for (;;) {
		if (poll(p, 2, -1) < 0)
			continue; /* EINTR: signals are blocked, but be safe */
		if (p[1].revents)
			break;
		if (p[0].revents)
			serve_all(iss);
	}
	return NULL;
}

SHMCAP_EXPORT int shmcap_issuer_create(unsigned int flags,
				       shmcap_issuer **out)
{
	struct sockaddr_un sa;
	sigset_t all, old;
	shmcap_issuer *iss;
	int on = 1, ret, tries;
	socklen_t len;

	if (!out || (flags & ~SHMCAP_ISSUER_THREAD))
		return -EINVAL;
	iss = calloc(1, sizeof(*iss));
	if (!iss)
		return -ENOMEM;
	iss->stop = -1;
	iss->euid = (uint32_t)geteuid();
	iss->next_id = 1;
	pthread_mutex_init(&iss->lock, NULL);
	iss->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			   0);
	if (iss->sock < 0) {
		ret = shmcap__neg_errno();
		goto fail;
	}
	if (setsockopt(iss->sock, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) <
	    0) {
		ret = shmcap__neg_errno();
		goto fail_sock;
	}
	/* A clash of 128 random bits means a broken generator; retry once. */
	for (tries = 0;; tries++) {
		ret = shmcap__random(iss->instance, INST_LEN);
		if (ret < 0)
			goto fail_sock;
		len = issuer_addr(iss->instance, &sa);
		if (bind(iss->sock, (struct sockaddr *)&sa, len) == 0)
			break;
		if (errno != EADDRINUSE || tries > 0) {
			ret = shmcap__neg_errno();
			goto fail_sock;
		}
	}
	if (flags & SHMCAP_ISSUER_THREAD) {
		iss->stop = eventfd(0, EFD_CLOEXEC);
		if (iss->stop < 0) {
			ret = shmcap__neg_errno();
			goto fail_sock;
		}
		/* The thread must never take the application's signals. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		ret = -pthread_create(&iss->thread, NULL, issuer_thread, iss);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (ret < 0)
			goto fail_stop;
		iss->threaded = 1;
	}
	*out = iss;
	return 0;

fail_stop:
	close(iss->stop);
fail_sock:
	close(iss->sock);
fail:
	pthread_mutex_destroy(&iss->lock);
	free(iss);
	return ret;
}

SHMCAP_EXPORT void shmcap_issuer_destroy(shmcap_issuer *iss)
{
	uint64_t one = 1;

	if (!iss)
		return;
	if (iss->threaded) {
		while (write(iss->stop, &one, sizeof(one)) < 0 &&
		       errno == EINTR)
			;
		pthread_join(iss->thread, NULL);
	}
	if (iss->stop >= 0)
		close(iss->stop);
	close(iss->sock);
	while (iss->n > 0)
		entry_remove(iss, iss->n - 1);
	free(iss->v);
	pthread_mutex_destroy(&iss->lock);
	free(iss);
}

SHMCAP_EXPORT int shmcap_issuer_fd(const shmcap_issuer *iss)
{
	return iss ? iss->sock : -EINVAL;
}

SHMCAP_EXPORT int shmcap_issuer_dispatch(shmcap_issuer *iss,
					 int64_t timeout_ns)
{
	struct pollfd p;
	int64_t deadline;
	int r;

	if (!iss || iss->threaded)
		return -EINVAL;
	deadline = shmcap__deadline(timeout_ns);
	p.fd = iss->sock;
	p.events = POLLIN;
	r = poll(&p, 1, shmcap__poll_ms(deadline));
	if (r < 0)
		return shmcap__neg_errno();
	return r == 0 ? 0 : serve_all(iss);
}

SHMCAP_EXPORT int shmcap_token_issue(shmcap_issuer *iss, const shmcap_cap *cap,
				     unsigned int flags, char *buf,
				     size_t size)
{
	char inst[2 * INST_LEN + 1], key[2 * KEY_LEN + 1];
	struct entry e, *v;
	int n, ret;

	if (!iss || !cap || !buf ||
	    (flags & ~(SHMCAP_TOKEN_ONCE | SHMCAP_TOKEN_ANY_UID)))
		return -EINVAL;
	ret = shmcap__random(e.key, KEY_LEN);
	if (ret < 0)
		return ret;
	ret = shmcap_cap_derive(cap, cap->rights, &e.cap);
	if (ret < 0)
		return ret;
	e.flags = flags;

	pthread_mutex_lock(&iss->lock);
	e.id = iss->next_id;
	hex_encode(inst, iss->instance, INST_LEN);
	hex_encode(key, e.key, KEY_LEN);
	n = snprintf(buf, size, TOKEN_PREFIX "%" PRIu32 ":%s:%" PRIu64 ":%s",
		     iss->euid, inst, e.id, key);
	if (n < 0 || (size_t)n >= size) {
		ret = -ENOSPC;
		goto fail;
	}
	if (iss->n == iss->alloc) {
		size_t alloc = iss->alloc ? 2 * iss->alloc : 8;

		v = realloc(iss->v, alloc * sizeof(*v));
		if (!v) {
			ret = -ENOMEM;
			goto fail;
		}
		iss->v = v;
		iss->alloc = alloc;
	}
	iss->v[iss->n++] = e;
	iss->next_id++;
	pthread_mutex_unlock(&iss->lock);
	return n;

fail:
	pthread_mutex_unlock(&iss->lock);
	if (size)
		buf[0] = '\0';
	shmcap_cap_close(e.cap);
	return ret;
}

SHMCAP_EXPORT int shmcap_token_revoke(shmcap_issuer *iss, const char *token)
{
	struct token t;
	ssize_t i;
	int ret;

	if (!iss)
		return -EINVAL;
	ret = token_parse(token, &t);
	if (ret < 0)
		return ret;
	if (memcmp(t.instance, iss->instance, INST_LEN) != 0)
		return -ENOENT;
	pthread_mutex_lock(&iss->lock);
	i = entry_find(iss, t.id);
	if (i < 0)
		ret = t.id < iss->next_id ? -EKEYREVOKED : -ENOENT;
	else if (!key_equal(iss->v[i].key, t.key))
		ret = -ENOENT;
	else
		entry_remove(iss, (size_t)i);
	pthread_mutex_unlock(&iss->lock);
	return ret;
}

/* Wait for the reply to rq on sock; take ownership of a granted fd. */
static int resolve_wait(int sock, const struct token *t,
			const struct sockaddr_un *want, socklen_t wantlen,
			uint64_t nonce, int64_t deadline, shmcap_cap **out)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	struct shmcap__msg_in in;
	struct iovec iov;
	struct rep rp;
	ssize_t got;
	int r;

	for (;;) {
		r = poll(&p, 1, shmcap__poll_ms(deadline));
		if (r < 0)
			return shmcap__neg_errno();
		if (r == 0)
			return -ETIMEDOUT;
		iov.iov_base = &rp;
		iov.iov_len = sizeof(rp);
		got = shmcap__recv_msg(sock, &iov, 1, MSG_DONTWAIT, &in);
		if (got == -EAGAIN || got == -EINTR)
			continue;
		if (got < 0)
			return (int)got;
		/*
		 * Anyone may send to our autobound address; only the
		 * issuer's own reply to this request counts.
		 */
		if (in.fromlen != wantlen || memcmp(&in.from, want, wantlen) ||
		    !in.have_cred || in.uid != t->uid ||
		    (size_t)got != sizeof(rp) || rp.magic != REP_MAGIC ||
		    rp.version != TOK_VERSION || rp.nonce != nonce) {
			shmcap__close_fds(in.fds, in.nfds);
			continue;
		}
		if (rp.status < 0 || in.nfds != 1) {
			shmcap__close_fds(in.fds, in.nfds);
			if (rp.status < 0 && rp.status > -4096)
				return rp.status;
			return -EBADMSG;
		}
		return shmcap__cap_adopt(in.fds[0], rp.type, rp.rights, out);
	}
}

/*
 * Send the request. A full queue at the issuer blocks the sender in the
 * kernel (not in a sleep loop) until there is room or the deadline passes.
 */
static int resolve_send(int sock, const struct req *rq,
			const struct sockaddr_un *sa, socklen_t len,
			int64_t deadline)
{
	struct timeval tv = { 0, 0 };
	int64_t left;
	int flags = MSG_NOSIGNAL;

	if (deadline != INT64_MAX) {
		left = deadline - shmcap__now_ns();
		if (left <= 0) {
			flags |= MSG_DONTWAIT;
		} else {
			/* Rounded up to whole microseconds, and carried
			 * into tv_sec so that tv_usec stays below 10^6
			 * (setsockopt refuses it with EDOM otherwise). */
			left = (left + 999) / 1000;
			tv.tv_sec = left / 1000000;
			tv.tv_usec = left % 1000000;
			if (setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv,
				       sizeof(tv)) < 0)
				return shmcap__neg_errno();
		}
	}
	while (sendto(sock, rq, sizeof(*rq), flags, (const struct sockaddr *)sa,
		      len) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == ECONNREFUSED || errno == ENOENT)
			return -ESRCH;
		if (errno == EAGAIN)
			return -ETIMEDOUT;
		return shmcap__neg_errno();
	}
	return 0;
}

SHMCAP_EXPORT int shmcap_token_resolve(const char *token, int64_t timeout_ns,
				       shmcap_cap **out)
{
	struct sockaddr_un sa, self;
	int64_t deadline;
	struct token t;
	struct req rq;
	socklen_t len;
	int sock, on = 1, ret;

	if (!out)
		return -EINVAL;
	ret = token_parse(token, &t);
	if (ret < 0)
		return ret;
	deadline = shmcap__deadline(timeout_ns);

	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return shmcap__neg_errno();
	/* Autobind: the kernel picks a unique abstract name for replies. */
	memset(&self, 0, sizeof(self));
	self.sun_family = AF_UNIX;
	if (bind(sock, (struct sockaddr *)&self, sizeof(sa_family_t)) < 0 ||
	    setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0) {
		ret = shmcap__neg_errno();
		goto out;
	}
	memset(&rq, 0, sizeof(rq));
	rq.magic = REQ_MAGIC;
	rq.version = TOK_VERSION;
	rq.op = OP_RESOLVE;
	rq.id = t.id;
	memcpy(rq.key, t.key, KEY_LEN);
	ret = shmcap__random(&rq.nonce, sizeof(rq.nonce));
	if (ret < 0)
		goto out;
	len = issuer_addr(t.instance, &sa);
	ret = resolve_send(sock, &rq, &sa, len, deadline);
	if (ret < 0)
		goto out;
	ret = resolve_wait(sock, &t, &sa, len, rq.nonce, deadline, out);
out:
	close(sock);
	return ret;
}
