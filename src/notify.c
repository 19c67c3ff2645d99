/* SPDX-License-Identifier: MIT */
/*
 * Notifiers: doorbells between actors, L4Re's IRQ objects on an eventfd.
 *
 * Signal adds one to the eventfd's counter; wait takes the whole counter
 * (several signals before a wait are one wake-up, and the count says how
 * many). The descriptor is readable while signals are pending, so it fits
 * poll, epoll and any event loop as it is.
 *
 * Rights: SIGNAL and WAIT are advisory. An eventfd has no read-only or
 * write-only form, and Linux cannot re-open one through /proc, so every
 * holder of the descriptor could do both with raw read(2)/write(2). The
 * library refuses the operation a capability lacks; the kernel does not.
 *
 * Reads use preadv2(RWF_NOWAIT) rather than relying on O_NONBLOCK: the
 * file status flags belong to the open file description shared with every
 * peer holding the descriptor, and a peer could clear them to make our
 * read block past its timeout. Writes cannot do the same (eventfd refuses
 * RWF_NOWAIT on writes), and a write blocks when the counter is at its
 * maximum, 2^64 - 2, and O_NONBLOCK is off, both of which a hostile holder
 * can arrange. So signal first polls for POLLOUT without waiting: a counter
 * at its maximum is a doorbell already ringing, and nothing is written.
 * Only a peer that fills the counter between the poll and the write, a
 * window of a few hundred nanoseconds, can still make a signal wait for a
 * waiter to drain it.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>

static int notifier_check(const shmcap_cap *n, uint32_t right)
{
	if (!n || n->type != SHMCAP_TYPE_NOTIFIER)
		return -EINVAL;
	return n->rights & right ? 0 : -EACCES;
}

/*
 * Whether fd is an eventfd, in about 2 us. Descriptors without a file
 * type in st_mode are anonymous inodes (eventfd, signalfd, timerfd,
 * epoll, inotify ...); of those only an eventfd accepts a write(2) of 8
 * bytes, and writing the value 0 changes nothing: the counter stays, and
 * the write cannot block, since the kernel blocks a write only when the
 * counter would pass 2^64 - 2 and adding 0 never does. A kernel that gives
 * anonymous inodes a file type takes the exact, slower path.
 */
static int is_eventfd(int fd)
{
	const uint64_t zero = 0;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return 0;
	if ((st.st_mode & S_IFMT) != 0)
		return shmcap__fd_is_anon(fd, "eventfd");
	return write(fd, &zero, sizeof(zero)) == (ssize_t)sizeof(zero);
}

int shmcap__notifier_adopt(int fd, uint32_t claimed_rights, shmcap_cap **out)
{
	claimed_rights &= SHMCAP_RIGHTS_NOTIFIER;
	if (!claimed_rights || !is_eventfd(fd)) {
		close(fd);
		return -EBADMSG;
	}
	return shmcap__cap_new(fd, SHMCAP_TYPE_NOTIFIER, claimed_rights, out);
}

SHMCAP_EXPORT int shmcap_notifier_create(shmcap_cap **out)
{
	int fd;

	if (!out)
		return -EINVAL;
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return shmcap__neg_errno();
	return shmcap__cap_new(fd, SHMCAP_TYPE_NOTIFIER, SHMCAP_RIGHTS_NOTIFIER,
			       out);
}

SHMCAP_EXPORT int shmcap_notifier_signal(shmcap_cap *n)
{
	struct pollfd p;
	uint64_t one = 1;
	ssize_t r;
	int ret = notifier_check(n, SHMCAP_RIGHT_SIGNAL);

	if (ret < 0)
		return ret;
	p.fd = n->fd;
	p.events = POLLOUT;
	ret = poll(&p, 1, 0);
	if (ret < 0)
		return shmcap__neg_errno();
	if (p.revents & POLLNVAL)
		return -EBADF;
	if (ret == 0 || !(p.revents & POLLOUT))
		return 0; /* the counter is full: already ringing */
	do
		r = write(n->fd, &one, sizeof(one));
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno != EAGAIN)
		return shmcap__neg_errno();
	return 0;
}

SHMCAP_EXPORT int shmcap_notifier_wait(shmcap_cap *n, int64_t timeout_ns)
{
	struct pollfd p;
	int64_t deadline;
	uint64_t count;
	ssize_t r;
	int ret = notifier_check(n, SHMCAP_RIGHT_WAIT);

	if (ret < 0)
		return ret;
	deadline = shmcap__deadline(timeout_ns);
	p.fd = n->fd;
	p.events = POLLIN;
	for (;;) {
		r = preadv2(n->fd, &(struct iovec){ &count, sizeof(count) }, 1,
			    -1, RWF_NOWAIT);
		if (r == sizeof(count))
			return count > INT_MAX ? INT_MAX : (int)count;
		if (r >= 0)
			return -EBADMSG;
		if (errno != EAGAIN && errno != EINTR)
			return shmcap__neg_errno();
		ret = poll(&p, 1, shmcap__poll_ms(deadline));
		if (ret < 0 && errno != EINTR)
			return shmcap__neg_errno();
		if (ret == 0)
			return -ETIMEDOUT;
	}
}
