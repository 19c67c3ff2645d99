/* SPDX-License-Identifier: MIT */
/*
 * Capabilities: a descriptor, the type of object behind it and the rights
 * its holder has.
 *
 * Rights are enforced by the kernel where the kernel can: a region
 * capability without WRITE always holds an O_RDONLY descriptor (made by
 * re-opening /proc/self/fd/N read-only, the only way Linux offers to get a
 * descriptor with fewer access modes), so mmap(PROT_WRITE), mprotect,
 * write and ftruncate on it fail whatever the holder does. The library
 * checks the rights again before each operation to give a clear error.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

int shmcap__cap_new(int fd, uint32_t type, uint32_t rights, shmcap_cap **out)
{
	shmcap_cap *cap = calloc(1, sizeof(*cap));

	if (!cap) {
		close(fd);
		return -ENOMEM;
	}
	cap->fd = fd;
	cap->type = type;
	cap->rights = rights;
	*out = cap;
	return 0;
}

int shmcap__fd_is_anon(int fd, const char *kind)
{
	char path[32], link[64], want[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return 0;
	link[n] = '\0';
	snprintf(want, sizeof(want), "anon_inode:[%s]", kind);
	return strcmp(link, want) == 0;
}

int shmcap__reopen_rdonly(int fd)
{
	char path[32];
	int ro;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	return ro < 0 ? shmcap__neg_errno() : ro;
}

int shmcap__region_adopt(int fd, uint32_t claimed_rights, shmcap_cap **out)
{
	uint32_t allowed;
	struct stat st;
	int mode, ro;

	/*
	 * Only shmem files (memfd, POSIX shm) answer F_GET_SEALS; anything
	 * else (a pipe, a disk file, a device) is not a region.
	 */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    fcntl(fd, F_GET_SEALS) < 0)
		goto bad;
	mode = fcntl(fd, F_GETFL);
	if (mode < 0)
		goto bad;
	switch (mode & O_ACCMODE) {
	case O_RDONLY:
		allowed = SHMCAP_RIGHT_READ;
		break;
	case O_RDWR:
		allowed = SHMCAP_RIGHT_READ | SHMCAP_RIGHT_WRITE;
		break;
	default:
		goto bad;
	}
	claimed_rights &= allowed;
	if (!(claimed_rights & SHMCAP_RIGHT_READ))
		goto bad;
	if (!(claimed_rights & SHMCAP_RIGHT_WRITE) &&
	    (allowed & SHMCAP_RIGHT_WRITE)) {
		/* Keep the invariant: no WRITE right, no writable fd. */
		ro = shmcap__reopen_rdonly(fd);
		close(fd);
		if (ro < 0)
			return ro;
		fd = ro;
	}
	return shmcap__cap_new(fd, SHMCAP_TYPE_REGION, claimed_rights, out);
bad:
	close(fd);
	return -EBADMSG;
}

int shmcap__cap_adopt(int fd, uint32_t type, uint32_t claimed_rights,
		      shmcap_cap **out)
{
	switch (type) {
	case SHMCAP_TYPE_REGION:
		return shmcap__region_adopt(fd, claimed_rights, out);
	case SHMCAP_TYPE_NOTIFIER:
		return shmcap__notifier_adopt(fd, claimed_rights, out);
	case SHMCAP_TYPE_ACTOR:
		return shmcap__actor_adopt(fd, claimed_rights, out);
	default:
		close(fd);
		return -EBADMSG;
	}
}

int shmcap__random(void *buf, size_t len)
{
	unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return shmcap__neg_errno();
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

SHMCAP_EXPORT int shmcap_cap_type(const shmcap_cap *cap)
{
	return cap ? (int)cap->type : -EINVAL;
}

SHMCAP_EXPORT unsigned int shmcap_cap_rights(const shmcap_cap *cap)
{
	return cap ? cap->rights : 0;
}

SHMCAP_EXPORT int shmcap_cap_fd(const shmcap_cap *cap)
{
	return cap ? cap->fd : -EINVAL;
}

SHMCAP_EXPORT int shmcap_cap_derive(const shmcap_cap *cap, unsigned int rights,
				    shmcap_cap **out)
{
	int fd, ret;

	if (!cap || !out || !rights ||
	    (rights & ~(SHMCAP_RIGHTS_REGION | SHMCAP_RIGHTS_NOTIFIER)))
		return -EINVAL;
	if (rights & ~cap->rights)
		return -EPERM;
	/* A region is always readable: WRITE alone names no usable cap. */
	if (cap->type == SHMCAP_TYPE_REGION && !(rights & SHMCAP_RIGHT_READ))
		return -EINVAL;
	if ((cap->rights & SHMCAP_RIGHT_WRITE) &&
	    !(rights & SHMCAP_RIGHT_WRITE)) {
		fd = shmcap__reopen_rdonly(cap->fd);
		if (fd < 0)
			return fd;
	} else {
		fd = fcntl(cap->fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return shmcap__neg_errno();
	}
	ret = shmcap__cap_new(fd, cap->type, rights, out);
	if (ret == 0 && cap->type == SHMCAP_TYPE_ACTOR)
		shmcap__actor_copy(*out, cap);
	return ret;
}

SHMCAP_EXPORT void shmcap_cap_close(shmcap_cap *cap)
{
	if (!cap)
		return;
	close(cap->fd);
	free(cap);
}
