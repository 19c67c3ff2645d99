/* SPDX-License-Identifier: MIT */
/*
 * Transfer: capabilities and data in one message over a Unix socket.
 *
 * Overview: a message is one sendmsg(2) on a SOCK_SEQPACKET or SOCK_DGRAM
 * socket. Its descriptors travel as SCM_RIGHTS; the kernel adds the
 * sender's credentials (sent explicitly and verified by the kernel), which
 * the receiver reads as SCM_CREDENTIALS (SO_PASSCRED is switched on before
 * receiving). The bytes are a fixed
 * header followed by the caller's data:
 *
 *   offset size  field
 *   0      4     magic   0x544d4353 ("SCMT" little-endian)
 *   4      2     version 1
 *   6      2     ncaps   number of SCM_RIGHTS descriptors, <= 16
 *   8      4     len     number of data bytes after the header
 *   12     4     reserved, 0
 *   16     128   caps[16] { u32 type; u32 rights; } for descriptor i;
 *                        entries past ncaps are 0
 *   144    len   data
 *
 * The header has a fixed size because recvmsg() fills the first iovec
 * completely before the second: a variable header would let data spill
 * into it. Integers are in host byte order: both ends run on one host.
 *
 * Implementation notes: the receiver trusts nothing. It checks the header
 * against what arrived, the descriptor count against ncaps, every
 * descriptor's kind and open mode (shmcap__cap_adopt), and closes every
 * received descriptor on any error, so a hostile sender cannot make it
 * leak descriptors.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */

#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define WIRE_MAGIC 0x544d4353u
#define WIRE_VERSION 1

struct wire_cap {
	uint32_t type;
	uint32_t rights;
};

struct wire_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t ncaps;
	uint32_t len;
	uint32_t reserved;
	struct wire_cap caps[SHMCAP_MSG_MAX_CAPS];
};

_Static_assert(sizeof(struct wire_cap) == 8, "wire_cap layout");
_Static_assert(offsetof(struct wire_hdr, len) == 8, "wire_hdr layout");
_Static_assert(offsetof(struct wire_hdr, caps) == 16, "wire_hdr layout");
_Static_assert(sizeof(struct wire_hdr) == 144, "wire_hdr layout");

/* Room for the largest control message we accept, plus credentials. */
#define CMSG_ROOM                                                             \
	(CMSG_SPACE(sizeof(int) * SHMCAP_MSG_MAX_CAPS) +                     \
	 CMSG_SPACE(sizeof(struct ucred)))

static int sock_check(int sock)
{
	socklen_t len = sizeof(int);
	int type;

	if (sock < 0)
		return -EBADF;
	if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return shmcap__neg_errno();
	if (type != SOCK_SEQPACKET && type != SOCK_DGRAM)
		return -EPROTOTYPE;
	return type;
}

SHMCAP_EXPORT int shmcap_socketpair(int fds[2])
{
	int on = 1, sv[2], ret;

	if (!fds)
		return -EINVAL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return shmcap__neg_errno();
	if (setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0 ||
	    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0) {
		ret = shmcap__neg_errno();
		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	fds[0] = sv[0];
	fds[1] = sv[1];
	return 0;
}

SHMCAP_EXPORT int shmcap_send(int sock, shmcap_cap *const *caps, size_t ncaps,
			      const void *data, size_t len, unsigned int flags)
{
	union {
		char buf[CMSG_ROOM];
		struct cmsghdr align;
	} ctl;
	struct ucred cred;
	struct wire_hdr hdr;
	struct msghdr msg;
	struct iovec iov[2];
	struct cmsghdr *c;
	int *fds, ret;
	size_t i;

	if ((ncaps && !caps) || (len && !data) ||
	    (flags & ~SHMCAP_MSG_DONTWAIT))
		return -EINVAL;
	if (ncaps > SHMCAP_MSG_MAX_CAPS)
		return -E2BIG;
	if (len > SHMCAP_MSG_MAX_DATA)
		return -EMSGSIZE;
	for (i = 0; i < ncaps; i++)
		if (!caps[i])
			return -EINVAL;
	ret = sock_check(sock);
	if (ret < 0)
		return ret;

	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = WIRE_MAGIC;
	hdr.version = WIRE_VERSION;
	hdr.ncaps = (uint16_t)ncaps;
	hdr.len = (uint32_t)len;
	for (i = 0; i < ncaps; i++) {
		hdr.caps[i].type = caps[i]->type;
		hdr.caps[i].rights = caps[i]->rights;
	}
	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = (void *)data;
	iov[1].iov_len = len;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
	memset(&ctl, 0, sizeof(ctl));
	msg.msg_control = ctl.buf;
	msg.msg_controllen = CMSG_SPACE(sizeof(cred));
	/*
	 * The kernel attaches credentials by itself only if SO_PASSCRED was
	 * on when the message was sent; sending our own (which the kernel
	 * verifies) makes them arrive whatever the socket's set-up.
	 */
	cred.pid = getpid();
	cred.uid = getuid();
	cred.gid = getgid();
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_CREDENTIALS;
	c->cmsg_len = CMSG_LEN(sizeof(cred));
	memcpy(CMSG_DATA(c), &cred, sizeof(cred));
	if (ncaps) {
		msg.msg_controllen += CMSG_SPACE(sizeof(int) * ncaps);
		c = CMSG_NXTHDR(&msg, c);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * ncaps);
		fds = (int *)(void *)CMSG_DATA(c);
		for (i = 0; i < ncaps; i++)
			fds[i] = caps[i]->fd;
	}
	if (sendmsg(sock, &msg,
		    MSG_NOSIGNAL |
			    (flags & SHMCAP_MSG_DONTWAIT ? MSG_DONTWAIT : 0)) <
	    0)
		return shmcap__neg_errno();
	return 0;
}

void shmcap__close_fds(const int *fds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		close(fds[i]);
}

ssize_t shmcap__recv_msg(int sock, struct iovec *iov, int iovlen, int flags,
			 struct shmcap__msg_in *in)
{
	union {
		char buf[CMSG_ROOM];
		struct cmsghdr align;
	} ctl;
	struct ucred cred;
	struct msghdr msg;
	struct cmsghdr *c;
	size_t i, n;
	ssize_t r;
	int fd;

	memset(in, 0, sizeof(*in));
	memset(&msg, 0, sizeof(msg));
	msg.msg_name = &in->from;
	msg.msg_namelen = sizeof(in->from);
	msg.msg_iov = iov;
	msg.msg_iovlen = (size_t)iovlen;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	r = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
	if (r < 0)
		return shmcap__neg_errno();
	in->fromlen = msg.msg_namelen;
	in->msg_flags = msg.msg_flags;
	/* Collect every descriptor, so that the caller can close them. */
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_RIGHTS) {
			n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (i = 0; i < n; i++) {
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int),
				       sizeof(int));
				if (in->nfds < SHMCAP_MSG_MAX_CAPS) {
					in->fds[in->nfds++] = fd;
				} else {
					close(fd);
					in->excess = 1;
				}
			}
		} else if (c->cmsg_type == SCM_CREDENTIALS &&
			   c->cmsg_len >= CMSG_LEN(sizeof(cred))) {
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			in->have_cred = 1;
			in->pid = (int32_t)cred.pid;
			in->uid = (uint32_t)cred.uid;
			in->gid = (uint32_t)cred.gid;
		}
	}
	return r;
}

SHMCAP_EXPORT int shmcap_recv(int sock, shmcap_cap **caps, size_t maxcaps,
			      size_t *ncaps, void *buf, size_t size,
			      shmcap_peer *peer, unsigned int flags)
{
	struct shmcap__msg_in in;
	struct wire_hdr hdr;
	struct iovec iov[2];
	int on = 1, type, ret;
	size_t i, got;
	ssize_t r;

	if ((maxcaps && !caps) || !ncaps || (size && !buf) ||
	    (flags & ~SHMCAP_MSG_DONTWAIT))
		return -EINVAL;
	*ncaps = 0;
	type = sock_check(sock);
	if (type < 0)
		return type;
	if (peer &&
	    setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0)
		return shmcap__neg_errno();

	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = buf;
	iov[1].iov_len = size;
	r = shmcap__recv_msg(sock, iov, 2,
			     flags & SHMCAP_MSG_DONTWAIT ? MSG_DONTWAIT : 0,
			     &in);
	if (r < 0)
		return (int)r;
	if ((in.msg_flags & MSG_CTRUNC) || in.excess) {
		/* More descriptors than a message may carry: none is kept. */
		ret = -E2BIG;
		goto fail;
	}
	/*
	 * recvmsg() returns 0 both at the end of the stream and for an empty
	 * datagram, which no shmcap sender makes; only a hang-up tells.
	 */
	if (r == 0 && in.nfds == 0 && type == SOCK_SEQPACKET) {
		struct pollfd p = { .fd = sock, .events = POLLRDHUP };

		if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP)))
			return -EPIPE;
		return -EBADMSG;
	}
	if (in.msg_flags & MSG_TRUNC) {
		ret = (size_t)r >= sizeof(hdr) ? -EMSGSIZE : -EBADMSG;
		goto fail;
	}
	got = (size_t)r;
	if (got < sizeof(hdr) || hdr.magic != WIRE_MAGIC ||
	    hdr.version != WIRE_VERSION || hdr.ncaps != in.nfds ||
	    hdr.len != got - sizeof(hdr)) {
		ret = -EBADMSG;
		goto fail;
	}
	if (in.nfds > maxcaps) {
		ret = -E2BIG;
		goto fail;
	}
	for (i = 0; i < in.nfds; i++) {
		ret = shmcap__cap_adopt(in.fds[i], hdr.caps[i].type,
					hdr.caps[i].rights, &caps[i]);
		if (ret < 0) {
			/* fds[i] is closed; undo caps[0..i), close the rest. */
			shmcap__close_fds(in.fds + i + 1, in.nfds - i - 1);
			while (i-- > 0) {
				shmcap_cap_close(caps[i]);
				caps[i] = NULL;
			}
			return ret;
		}
	}
	*ncaps = in.nfds;
	if (peer) {
		peer->pid = in.have_cred ? in.pid : 0;
		peer->uid = in.have_cred ? in.uid : UINT32_MAX;
		peer->gid = in.have_cred ? in.gid : UINT32_MAX;
	}
	return (int)hdr.len;

fail:
	shmcap__close_fds(in.fds, in.nfds);
	return ret;
}
