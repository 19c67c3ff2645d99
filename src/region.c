/* SPDX-License-Identifier: MIT */
/*
 * Regions and mappings.
 *
 * Overview: an anonymous region is a memfd named "shmcap" (so tools find
 * it in /proc/PID/maps as "/memfd:shmcap"), created with MFD_NOEXEC_SEAL
 * where the kernel has it, sized, made mode 0444 and sealed:
 *
 *   F_SEAL_SHRINK  always: a mapping of the region can never lose pages
 *                  under a peer, so no peer can make another fault with
 *                  SIGBUS;
 *   F_SEAL_GROW    and F_SEAL_SEAL unless SHMCAP_REGION_RESIZABLE, or later
 *                  by shmcap_region_seal().
 *
 * Mode 0444 means that nobody but root can turn a read-only descriptor
 * into a writable one by re-opening /proc/self/fd/N, while anyone holding
 * a descriptor can still derive a read-only one.
 *
 * A named region is a POSIX shm object "/shmcap.NAME". tmpfs cannot seal
 * it, so mapping one needs SHMCAP_MAP_UNSEALED (see shmcap.h).
 *
 * Implementation notes: sizes are rounded up to whole pages so that every
 * byte of every mapped page lies inside the file. A mapping's size is
 * checked against the region's size at map time; for a sealed region that
 * check stays true for ever.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif


/* Round size up to whole pages; -EFBIG above SHMCAP_REGION_SIZE_MAX. */
static int region_round(uint64_t size, uint64_t *rounded)
{
	uint64_t page = shmcap__page_size();

	if (size > SHMCAP_REGION_SIZE_MAX)
		return -EFBIG;
	*rounded = (size + page - 1) & ~(page - 1);
	return 0;
}

static int region_check(const shmcap_cap *cap)
{
	return cap && cap->type == SHMCAP_TYPE_REGION ? 0 : -EINVAL;
}

/*
 * Build "/shmcap.NAME" into path after checking NAME: 1 to SHMCAP_NAME_MAX
 * printable ASCII bytes, no '/'.
 */
static int region_path(const char *name, char *path, size_t size)
{
	size_t i, len;

	if (!name)
		return -EINVAL;
	len = strnlen(name, SHMCAP_NAME_MAX + 1);
	if (len == 0)
		return -EINVAL;
	if (len > SHMCAP_NAME_MAX)
		return -ENAMETOOLONG;
	for (i = 0; i < len; i++)
		if (name[i] <= ' ' || name[i] > '~' || name[i] == '/')
			return -EINVAL;
	snprintf(path, size, "/shmcap.%s", name);
	return 0;
}

SHMCAP_EXPORT int shmcap_region_create(uint64_t size, unsigned int flags,
				       shmcap_cap **out)
{
	unsigned int seals = F_SEAL_SHRINK;
	uint64_t rounded;
	int fd, ret;

	if (!out || size == 0 || (flags & ~SHMCAP_REGION_RESIZABLE))
		return -EINVAL;
	ret = region_round(size, &rounded);
	if (ret < 0)
		return ret;

	fd = memfd_create("shmcap",
			  MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
	if (fd < 0 && errno == EINVAL) /* kernel before 6.3 */
		fd = memfd_create("shmcap", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return shmcap__neg_errno();
	if (!(flags & SHMCAP_REGION_RESIZABLE))
		seals |= F_SEAL_GROW | F_SEAL_SEAL;
	if (ftruncate(fd, (off_t)rounded) < 0 || fchmod(fd, 0444) < 0 ||
	    fcntl(fd, F_ADD_SEALS, seals) < 0) {
		ret = shmcap__neg_errno();
		close(fd);
		return ret;
	}
	return shmcap__cap_new(fd, SHMCAP_TYPE_REGION, SHMCAP_RIGHTS_REGION,
			       out);
}

SHMCAP_EXPORT int shmcap_region_create_named(const char *name, uint64_t size,
					     unsigned int mode,
					     shmcap_cap **out)
{
	char path[SHMCAP_NAME_MAX + 16];
	uint64_t rounded;
	int fd, ret;

	ret = region_path(name, path, sizeof(path));
	if (ret < 0)
		return ret;
	if (!out || size == 0 || (mode & ~0777u))
		return -EINVAL;
	ret = region_round(size, &rounded);
	if (ret < 0)
		return ret;

	/*
	 * Created with mode 0 and given its real mode only once it has its
	 * size, so that a process racing to open it cannot see it empty.
	 */
	fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0)
		return shmcap__neg_errno();
	if (ftruncate(fd, (off_t)rounded) < 0 || fchmod(fd, mode) < 0) {
		ret = shmcap__neg_errno();
		shm_unlink(path);
		close(fd);
		return ret;
	}
	ret = shmcap__cap_new(fd, SHMCAP_TYPE_REGION, SHMCAP_RIGHTS_REGION,
			      out);
	if (ret < 0)
		shm_unlink(path);
	return ret;
}

SHMCAP_EXPORT int shmcap_region_open_named(const char *name,
					   unsigned int rights,
					   shmcap_cap **out)
{
	char path[SHMCAP_NAME_MAX + 16];
	int fd, ret, oflag;

	ret = region_path(name, path, sizeof(path));
	if (ret < 0)
		return ret;
	if (!out)
		return -EINVAL;
	if (rights == SHMCAP_RIGHT_READ)
		oflag = O_RDONLY;
	else if (rights == SHMCAP_RIGHTS_REGION)
		oflag = O_RDWR;
	else
		return -EINVAL;
	fd = shm_open(path, oflag | O_CLOEXEC, 0);
	if (fd < 0)
		return shmcap__neg_errno();
	return shmcap__cap_new(fd, SHMCAP_TYPE_REGION, rights, out);
}

SHMCAP_EXPORT int shmcap_region_unlink(const char *name)
{
	char path[SHMCAP_NAME_MAX + 16];
	int ret;

	ret = region_path(name, path, sizeof(path));
	if (ret < 0)
		return ret;
	return shm_unlink(path) < 0 ? shmcap__neg_errno() : 0;
}

SHMCAP_EXPORT int shmcap_region_size(const shmcap_cap *region, uint64_t *size)
{
	struct stat st;

	if (region_check(region) < 0 || !size)
		return -EINVAL;
	if (fstat(region->fd, &st) < 0)
		return shmcap__neg_errno();
	*size = (uint64_t)st.st_size;
	return 0;
}

SHMCAP_EXPORT int shmcap_region_flags(const shmcap_cap *region)
{
	int seals, flags = 0;

	if (region_check(region) < 0)
		return -EINVAL;
	seals = fcntl(region->fd, F_GET_SEALS);
	if (seals < 0)
		return shmcap__neg_errno();
	if (!(seals & F_SEAL_SHRINK))
		flags |= SHMCAP_REGION_UNSEALED;
	if (!(seals & F_SEAL_GROW))
		flags |= SHMCAP_REGION_GROWABLE;
	return flags;
}

SHMCAP_EXPORT int shmcap_region_grow(shmcap_cap *region, uint64_t new_size)
{
	uint64_t rounded, size;
	int ret;

	if (region_check(region) < 0)
		return -EINVAL;
	if (!(region->rights & SHMCAP_RIGHT_WRITE))
		return -EACCES;
	ret = region_round(new_size, &rounded);
	if (ret < 0)
		return ret;
	ret = shmcap_region_size(region, &size);
	if (ret < 0)
		return ret;
	if (rounded <= size)
		return 0;
	/*
	 * Another process may grow the region at the same moment; ftruncate
	 * to a size below the current one is refused by F_SEAL_SHRINK on an
	 * anonymous region, so the race cannot shrink it.
	 */
	if (ftruncate(region->fd, (off_t)rounded) < 0)
		return shmcap__neg_errno();
	return 0;
}

SHMCAP_EXPORT int shmcap_region_seal(shmcap_cap *region)
{
	int seals;

	if (region_check(region) < 0)
		return -EINVAL;
	if (!(region->rights & SHMCAP_RIGHT_WRITE))
		return -EACCES;
	seals = fcntl(region->fd, F_GET_SEALS);
	if (seals < 0)
		return shmcap__neg_errno();
	if (!(seals & F_SEAL_SHRINK))
		return -EOPNOTSUPP;
	if (seals & F_SEAL_GROW)
		return 0;
	if (fcntl(region->fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return shmcap__neg_errno();
	return 0;
}

SHMCAP_EXPORT int shmcap_region_map(const shmcap_cap *region,
				    uint64_t offset, uint64_t length,
				    void *addr, unsigned int flags,
				    shmcap_map **out)
{
	const unsigned int known = SHMCAP_MAP_READ | SHMCAP_MAP_WRITE |
				   SHMCAP_MAP_FIXED | SHMCAP_MAP_UNSEALED;
	uint64_t page = shmcap__page_size(), size;
	int prot = PROT_READ, mflags = MAP_SHARED, seals, ret;
	struct stat st;
	shmcap_map *m;
	void *where;
	void *p;

	if (region_check(region) < 0 || !out || (flags & ~known))
		return -EINVAL;
	if ((offset & (page - 1)) ||
	    ((flags & SHMCAP_MAP_FIXED) && (!addr || ((uintptr_t)addr &
						      (page - 1)))))
		return -EINVAL;
	if (!(region->rights & SHMCAP_RIGHT_READ))
		return -EACCES;
	if (flags & SHMCAP_MAP_WRITE) {
		if (!(region->rights & SHMCAP_RIGHT_WRITE))
			return -EACCES;
		prot |= PROT_WRITE;
	}
	if (!(flags & SHMCAP_MAP_UNSEALED)) {
		seals = fcntl(region->fd, F_GET_SEALS);
		if (seals < 0)
			return shmcap__neg_errno();
		if (!(seals & F_SEAL_SHRINK))
			return -EPERM;
	}
	if (fstat(region->fd, &st) < 0)
		return shmcap__neg_errno();
	size = (uint64_t)st.st_size;
	if (length == 0) {
		if (offset >= size)
			return -ERANGE;
		length = size - offset;
	}
	if (offset + length < offset)
		return -EOVERFLOW;
	if (offset + length > size)
		return -ERANGE;
	if (length > SIZE_MAX)
		return -ENOMEM;
	ret = shmcap__group_place(region, offset, length, addr, flags, &where);
	if (ret < 0)
		return ret;
	if (ret > 0) {
		/* A supervisor maps where its group placed the region. */
		addr = where;
		flags |= SHMCAP_MAP_FIXED;
	}

	m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (flags & SHMCAP_MAP_FIXED)
		mflags |= MAP_FIXED_NOREPLACE;
	p = mmap(addr, (size_t)length, prot, mflags, region->fd,
		 (off_t)offset);
	if (p == MAP_FAILED) {
		ret = shmcap__neg_errno();
		free(m);
		return ret;
	}
	/* Kernels before 4.17 treat MAP_FIXED_NOREPLACE as a mere hint. */
	if ((flags & SHMCAP_MAP_FIXED) && p != addr) {
		munmap(p, (size_t)length);
		free(m);
		return -EEXIST;
	}
	m->addr = p;
	m->size = length;
	m->region_offset = offset;
	m->prot = prot;
	m->dev = st.st_dev;
	m->ino = st.st_ino;
	m->grant = NULL;
	*out = m;
	return 0;
}

SHMCAP_EXPORT void shmcap_map_unmap(shmcap_map *m)
{
	if (!m)
		return;
	if (m->grant)
		shmcap__grant_drop(m);
	munmap(m->addr, (size_t)m->size);
	free(m);
}

SHMCAP_EXPORT void *shmcap_map_addr(const shmcap_map *m)
{
	return m ? m->addr : NULL;
}

SHMCAP_EXPORT uint64_t shmcap_map_size(const shmcap_map *m)
{
	return m ? m->size : 0;
}

SHMCAP_EXPORT uint64_t shmcap_map_region_offset(const shmcap_map *m)
{
	return m ? m->region_offset : 0;
}

SHMCAP_EXPORT int shmcap_map_ptr(const shmcap_map *m, shmcap_off off,
				 uint64_t len, void **ptr)
{
	if (!m || !ptr)
		return -EINVAL;
	/* Written so that no sum can wrap: off <= size, then len fits. */
	if (off > m->size || len > m->size - off)
		return -ERANGE;
	*ptr = (char *)m->addr + off;
	return 0;
}

SHMCAP_EXPORT int shmcap_map_off(const shmcap_map *m, const void *ptr,
				 uint64_t len, shmcap_off *off)
{
	uintptr_t base, p;

	if (!m || !ptr || !off)
		return -EINVAL;
	base = (uintptr_t)m->addr;
	p = (uintptr_t)ptr;
	if (p < base || p - base > m->size || len > m->size - (p - base))
		return -ERANGE;
	*off = p - base;
	return 0;
}
