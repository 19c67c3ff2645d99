/* Description: anonymous regions: create, seals, grow, seal, map, offsets */
/* SPDX-License-Identifier: MIT */
/*
 * Usage: t_region [ITERATIONS]
 *
 * ITERATIONS is the size of the create/map/unmap/close stress loop at the
 * end (default 1000): CI runs it small, a benchmark may run it large.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* F_GET_SEALS, MAP_FIXED_NOREPLACE */
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"

static uint64_t page;

/* The named region of test_seal(), removed at exit whatever happens. */
static char named_name[SHMCAP_NAME_MAX + 1];
static pid_t main_pid;

static void unlink_named(void)
{
	if (getpid() == main_pid && named_name[0])
		(void)shmcap_region_unlink(named_name);
}

/* Whether every page of [addr, addr + len) is mapped. */
static int is_mapped(const void *addr, size_t len)
{
	return msync((void *)(uintptr_t)addr, len, MS_ASYNC) == 0;
}

/* An address at which len bytes are free now (nothing else runs). */
static void *free_area(size_t len)
{
	void *p =
		mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	CHECK_EQ(munmap(p, len), 0);
	return p;
}

static int raw_seals(const shmcap_cap *cap)
{
	int seals = fcntl(shmcap_cap_fd(cap), F_GET_SEALS);

	CHECK(seals >= 0);
	return seals;
}

static void check_zero(const void *p, uint64_t len)
{
	const unsigned char *b = p;
	uint64_t i;

	for (i = 0; i < len; i++)
		if (b[i] != 0)
			FAIL("byte %llu of a new region is %u, not 0",
			     (unsigned long long)i, b[i]);
}

static void test_create(void)
{
	static const struct {
		uint64_t ask, pages;
	} sizes[] = { { 1, 1 },	   { 4095, 1 },	  { 4096, 1 },
		      { 4097, 2 }, { 65536, 16 }, { 100000, 25 } };
	shmcap_cap *cap;
	shmcap_map *m;
	size_t i;
	int fd, ret;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		/* The table assumes 4 KiB pages; compute for any size. */
		uint64_t want = (sizes[i].ask + page - 1) / page * page;

		cap = NULL;
		CHECK_OK(shmcap_region_create(sizes[i].ask, 0, &cap));
		CHECK_NOTNULL(cap);
		CHECK_EQ(t_region_size(cap), want);
		if (page == 4096)
			CHECK_EQ(t_region_size(cap), sizes[i].pages * page);
		CHECK_EQ(shmcap_cap_type(cap), SHMCAP_TYPE_REGION);
		CHECK_EQ(shmcap_cap_rights(cap), SHMCAP_RIGHTS_REGION);
		fd = shmcap_cap_fd(cap);
		CHECK(fd >= 0);
		CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		CHECK_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
		/* Sealed: not UNSEALED; fixed size: not GROWABLE. */
		CHECK_EQ(shmcap_region_flags(cap), 0);

		/* Zero-filled, all the way to the rounded end. */
		CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_READ,
					   &m));
		CHECK_EQ(shmcap_map_size(m), want);
		CHECK_EQ(shmcap_map_region_offset(m), 0);
		CHECK_EQ((uintptr_t)shmcap_map_addr(m) % page, 0);
		check_zero(shmcap_map_addr(m), want);
		shmcap_map_unmap(m);
		shmcap_cap_close(cap);
	}

	/* Resizable: GROWABLE, still sealed (not UNSEALED). */
	CHECK_OK(shmcap_region_create(1, SHMCAP_REGION_RESIZABLE, &cap));
	CHECK_EQ(shmcap_region_flags(cap), SHMCAP_REGION_GROWABLE);
	CHECK_EQ(t_region_size(cap), page);
	shmcap_cap_close(cap);

	/*
	 * The largest size accepted is accepted: a sparse memfd costs no
	 * memory until touched. Refusing it for lack of memory would be
	 * legitimate, refusing it as too big would not.
	 */
	cap = NULL;
	ret = shmcap_region_create(SHMCAP_REGION_SIZE_MAX, 0, &cap);
	if (ret == -ENOMEM || ret == -ENOSPC) {
		printf("note: a region of SHMCAP_REGION_SIZE_MAX bytes: %s\n",
		       shmcap_err_name(ret));
	} else {
		CHECK_OK(ret);
		CHECK_EQ(t_region_size(cap), SHMCAP_REGION_SIZE_MAX);
		shmcap_cap_close(cap);
	}
}

/* The kernel seals, seen on the raw descriptor. */
static void test_seals(void)
{
	shmcap_cap *fixed, *grow;
	int seals;

	CHECK_OK(shmcap_region_create(2 * page, 0, &fixed));
	CHECK_OK(
		shmcap_region_create(2 * page, SHMCAP_REGION_RESIZABLE, &grow));

	seals = raw_seals(fixed);
	CHECK(seals & F_SEAL_SHRINK);
	CHECK(seals & F_SEAL_GROW);
	seals = raw_seals(grow);
	CHECK(seals & F_SEAL_SHRINK);
	CHECK(!(seals & F_SEAL_GROW));

	/* A raw ftruncate cannot shrink either, nor grow the fixed one. */
	errno = 0;
	CHECK_EQ(ftruncate(shmcap_cap_fd(fixed), (off_t)page), -1);
	CHECK_EQ(errno, EPERM);
	errno = 0;
	CHECK_EQ(ftruncate(shmcap_cap_fd(fixed), 0), -1);
	CHECK_EQ(errno, EPERM);
	errno = 0;
	CHECK_EQ(ftruncate(shmcap_cap_fd(fixed), (off_t)(4 * page)), -1);
	CHECK_EQ(errno, EPERM);
	errno = 0;
	CHECK_EQ(ftruncate(shmcap_cap_fd(grow), (off_t)page), -1);
	CHECK_EQ(errno, EPERM);
	CHECK_EQ(t_region_size(fixed), 2 * page);
	CHECK_EQ(t_region_size(grow), 2 * page);

	shmcap_cap_close(fixed);
	shmcap_cap_close(grow);
}

static void test_grow(void)
{
	shmcap_cap *cap, *fixed;
	shmcap_map *m1, *m2;
	unsigned char *p1, *p2;

	CHECK_OK(shmcap_region_create(page, SHMCAP_REGION_RESIZABLE, &cap));
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_WRITE, &m1));
	CHECK_EQ(shmcap_map_size(m1), page);
	p1 = shmcap_map_addr(m1);
	p1[0] = 0xa1;
	p1[page - 1] = 0xa2;

	/* Rounded up to whole pages. */
	CHECK_OK(shmcap_region_grow(cap, 3 * page + 1));
	CHECK_EQ(t_region_size(cap), 4 * page);
	CHECK_EQ(shmcap_region_flags(cap), SHMCAP_REGION_GROWABLE);

	/* A second mapping covers the new part, which is zero. */
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL,
				   SHMCAP_MAP_READ | SHMCAP_MAP_WRITE, &m2));
	CHECK_EQ(shmcap_map_size(m2), 4 * page);
	p2 = shmcap_map_addr(m2);
	CHECK_EQ(p2[0], 0xa1);
	CHECK_EQ(p2[page - 1], 0xa2);
	check_zero(p2 + page, 3 * page);
	p2[4 * page - 1] = 0xb1;
	p2[1] = 0xb2;
	CHECK_EQ(p1[1], 0xb2);
	/* The first mapping keeps its size. */
	CHECK_EQ(shmcap_map_size(m1), page);

	/* Only the new part, by offset. */
	shmcap_map_unmap(m1);
	CHECK_OK(shmcap_region_map(cap, 3 * page, 0, NULL, SHMCAP_MAP_READ,
				   &m1));
	CHECK_EQ(shmcap_map_size(m1), page);
	CHECK_EQ(((unsigned char *)shmcap_map_addr(m1))[page - 1], 0xb1);
	shmcap_map_unmap(m1);

	/* Growing to the current size or less does nothing. */
	CHECK_OK(shmcap_region_grow(cap, 4 * page));
	CHECK_OK(shmcap_region_grow(cap, 4 * page - 1));
	CHECK_OK(shmcap_region_grow(cap, page));
	CHECK_OK(shmcap_region_grow(cap, 0));
	CHECK_EQ(t_region_size(cap), 4 * page);
	CHECK_EQ(p2[4 * page - 1], 0xb1);

	/* Beyond the largest size. */
	CHECK_ERR(shmcap_region_grow(cap, SHMCAP_REGION_SIZE_MAX + 1), -EFBIG);
	CHECK_ERR(shmcap_region_grow(cap, UINT64_MAX), -EFBIG);
	CHECK_ERR(shmcap_region_grow(cap, (uint64_t)SIZE_MAX), -EFBIG);
	CHECK_EQ(t_region_size(cap), 4 * page);
	shmcap_map_unmap(m2);
	shmcap_cap_close(cap);

	/* A fixed region does not grow, but "growing" it smaller is fine. */
	CHECK_OK(shmcap_region_create(2 * page, 0, &fixed));
	CHECK_ERR(shmcap_region_grow(fixed, 3 * page), -EPERM);
	CHECK_ERR(shmcap_region_grow(fixed, 2 * page + 1), -EPERM);
	CHECK_OK(shmcap_region_grow(fixed, 2 * page));
	CHECK_OK(shmcap_region_grow(fixed, page));
	CHECK_ERR(shmcap_region_grow(fixed, SHMCAP_REGION_SIZE_MAX + 1),
		  -EFBIG);
	CHECK_EQ(t_region_size(fixed), 2 * page);
	CHECK_ERR(shmcap_region_grow(NULL, page), -EINVAL);
	shmcap_cap_close(fixed);
}

static void test_seal(void)
{
	shmcap_cap *cap, *named;
	shmcap_map *m;
	int ret;

	CHECK_OK(shmcap_region_create(page, SHMCAP_REGION_RESIZABLE, &cap));
	CHECK_OK(shmcap_region_grow(cap, 2 * page));
	CHECK_OK(shmcap_region_seal(cap));
	CHECK_EQ(shmcap_region_flags(cap), 0);
	CHECK(raw_seals(cap) & F_SEAL_GROW);
	CHECK(raw_seals(cap) & F_SEAL_SHRINK);
	CHECK_ERR(shmcap_region_grow(cap, 3 * page), -EPERM);
	CHECK_EQ(t_region_size(cap), 2 * page);
	/* Sealing again, or sealing a region created fixed, succeeds. */
	CHECK_OK(shmcap_region_seal(cap));
	/* Still mappable, at its final size. */
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_WRITE, &m));
	CHECK_EQ(shmcap_map_size(m), 2 * page);
	shmcap_map_unmap(m);
	shmcap_cap_close(cap);

	CHECK_OK(shmcap_region_create(page, 0, &cap));
	CHECK_OK(shmcap_region_seal(cap));
	CHECK_EQ(shmcap_region_flags(cap), 0);
	shmcap_cap_close(cap);

	CHECK_ERR(shmcap_region_seal(NULL), -EINVAL);

	/*
	 * A resizable region on which another holder of the WRITE right
	 * added F_SEAL_SEAL by hand: it can still grow, but no longer be
	 * sealed.
	 */
	CHECK_OK(shmcap_region_create(page, SHMCAP_REGION_RESIZABLE, &cap));
	CHECK_EQ(fcntl(shmcap_cap_fd(cap), F_ADD_SEALS, F_SEAL_SEAL), 0);
	CHECK_ERR(shmcap_region_seal(cap), -EPERM);
	CHECK_EQ(shmcap_region_flags(cap), SHMCAP_REGION_GROWABLE);
	CHECK_OK(shmcap_region_grow(cap, 2 * page));
	CHECK_EQ(t_region_size(cap), 2 * page);
	shmcap_cap_close(cap);

	/* A named region cannot be sealed. */
	t_unique_name(named_name, sizeof(named_name), "region");
	ret = shmcap_region_create_named(named_name, page, 0600, &named);
	CHECK_OK(ret);
	CHECK(shmcap_region_flags(named) & SHMCAP_REGION_UNSEALED);
	CHECK_ERR(shmcap_region_seal(named), -EOPNOTSUPP);
	CHECK(shmcap_region_flags(named) & SHMCAP_REGION_UNSEALED);
	shmcap_cap_close(named);
	CHECK_OK(shmcap_region_unlink(named_name));
	named_name[0] = '\0';
}

static void test_map_where(void)
{
	shmcap_cap *cap;
	shmcap_map *m, *m2;
	unsigned char *guard;
	void *hint, *area;
	size_t len = 2 * page;

	CHECK_OK(shmcap_region_create(len, 0, &cap));

	/* Anywhere. */
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_WRITE, &m));
	CHECK_NOTNULL(shmcap_map_addr(m));
	CHECK_EQ((uintptr_t)shmcap_map_addr(m) % page, 0);
	CHECK_EQ(shmcap_map_size(m), len);
	((unsigned char *)shmcap_map_addr(m))[0] = 0x11;
	shmcap_map_unmap(m);

	/* At a free address given as a hint: normally honoured. */
	hint = free_area(len);
	CHECK_OK(shmcap_region_map(cap, 0, 0, hint, SHMCAP_MAP_READ, &m));
	CHECK_EQ(((unsigned char *)shmcap_map_addr(m))[0], 0x11);
	if (shmcap_map_addr(m) != hint)
		printf("note: hint %p not honoured (got %p)\n", hint,
		       shmcap_map_addr(m));
	shmcap_map_unmap(m);

	/* An unaligned hint is only a hint: no error. */
	hint = free_area(len);
	CHECK_OK(shmcap_region_map(cap, 0, 0, (char *)hint + 1, SHMCAP_MAP_READ,
				   &m));
	CHECK_EQ((uintptr_t)shmcap_map_addr(m) % page, 0);
	shmcap_map_unmap(m);

	/* Exactly at a free address. */
	hint = free_area(len);
	CHECK_OK(shmcap_region_map(cap, 0, 0, hint,
				   SHMCAP_MAP_WRITE | SHMCAP_MAP_FIXED, &m));
	CHECK(shmcap_map_addr(m) == hint);
	CHECK_EQ(((unsigned char *)hint)[0], 0x11);

	/*
	 * Over that mapping: -EEXIST, exactly on it and on part of it, and
	 * it is left intact.
	 */
	((unsigned char *)hint)[0] = 0x22;
	((unsigned char *)hint)[len - 1] = 0x23;
	CHECK_ERR(shmcap_region_map(cap, 0, 0, hint,
				    SHMCAP_MAP_READ | SHMCAP_MAP_FIXED, &m2),
		  -EEXIST);
	CHECK_ERR(shmcap_region_map(cap, 0, page, (char *)hint + page,
				    SHMCAP_MAP_FIXED, &m2),
		  -EEXIST);
	CHECK_EQ(((unsigned char *)hint)[0], 0x22);
	CHECK_EQ(((unsigned char *)hint)[len - 1], 0x23);
	((unsigned char *)hint)[0] = 0x24;
	CHECK_EQ(((unsigned char *)hint)[0], 0x24);
	shmcap_map_unmap(m);

	/*
	 * Over a private anonymous page that is not the library's: the
	 * free page before it stays free and the byte written survives.
	 */
	area = free_area(3 * page);
	guard = mmap((char *)area + page, page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(guard != MAP_FAILED);
	CHECK(guard == (unsigned char *)area + page);
	guard[0] = 0x5a;
	guard[page - 1] = 0x5b;
	CHECK_ERR(shmcap_region_map(cap, 0, len, area,
				    SHMCAP_MAP_WRITE | SHMCAP_MAP_FIXED, &m2),
		  -EEXIST);
	CHECK_ERR(shmcap_region_map(cap, 0, page, guard,
				    SHMCAP_MAP_WRITE | SHMCAP_MAP_FIXED, &m2),
		  -EEXIST);
	CHECK(!is_mapped(area, page));
	CHECK(is_mapped(guard, page));
	CHECK_EQ(guard[0], 0x5a);
	CHECK_EQ(guard[page - 1], 0x5b);
	/* A hint on an occupied address goes elsewhere, replacing nothing. */
	CHECK_OK(shmcap_region_map(cap, 0, page, guard, SHMCAP_MAP_READ, &m2));
	CHECK(shmcap_map_addr(m2) != guard);
	CHECK_EQ(guard[0], 0x5a);
	CHECK_EQ(((unsigned char *)shmcap_map_addr(m2))[0], 0x24);
	shmcap_map_unmap(m2);
	CHECK_EQ(munmap(guard, page), 0);

	/* Bad fixed addresses. */
	CHECK_ERR(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_FIXED, &m2),
		  -EINVAL);
	hint = free_area(len);
	CHECK_ERR(shmcap_region_map(cap, 0, 0, (char *)hint + 1,
				    SHMCAP_MAP_FIXED, &m2),
		  -EINVAL);
	CHECK_ERR(shmcap_region_map(cap, 0, 0, (char *)hint + page / 2,
				    SHMCAP_MAP_FIXED, &m2),
		  -EINVAL);
	CHECK(!is_mapped(hint, len));

	shmcap_cap_close(cap);
}

static void test_map_share(void)
{
	shmcap_cap *cap;
	shmcap_map *a, *b, *ro;
	volatile unsigned char *pa, *pb, *pr;

	CHECK_OK(shmcap_region_create(3 * page, 0, &cap));
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_WRITE, &a));
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL,
				   SHMCAP_MAP_READ | SHMCAP_MAP_WRITE, &b));
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_READ, &ro));
	pa = shmcap_map_addr(a);
	pb = shmcap_map_addr(b);
	pr = shmcap_map_addr(ro);
	CHECK(pa != pb);
	pa[0] = 1;
	CHECK_EQ(pb[0], 1);
	CHECK_EQ(pr[0], 1);
	pb[3 * page - 1] = 2;
	CHECK_EQ(pa[3 * page - 1], 2);
	CHECK_EQ(pr[3 * page - 1], 2);
	pb[page + 7] = 3;
	pa[page + 8] = 4;
	CHECK_EQ(pa[page + 7], 3);
	CHECK_EQ(pb[page + 8], 4);
	/* Unmapping one leaves the other working. */
	shmcap_map_unmap(a);
	CHECK_EQ(pb[0], 1);
	pb[0] = 5;
	CHECK_EQ(pr[0], 5);
	shmcap_map_unmap(b);
	shmcap_map_unmap(ro);
	shmcap_cap_close(cap);
}

static void test_map_offsets(void)
{
	const uint64_t size = 4 * page;
	shmcap_cap *cap;
	shmcap_map *all, *m = NULL;
	unsigned char *p;
	uint64_t i;

	CHECK_OK(shmcap_region_create(size, 0, &cap));
	CHECK_OK(shmcap_region_map(cap, 0, size, NULL, SHMCAP_MAP_WRITE, &all));
	p = shmcap_map_addr(all);
	for (i = 0; i < 4; i++)
		p[i * page] = (unsigned char)(0x40 + i);

	/* One page in the middle. */
	CHECK_OK(shmcap_region_map(cap, 2 * page, page, NULL, SHMCAP_MAP_READ,
				   &m));
	CHECK_EQ(shmcap_map_size(m), page);
	CHECK_EQ(shmcap_map_region_offset(m), 2 * page);
	CHECK_EQ(((unsigned char *)shmcap_map_addr(m))[0], 0x42);
	shmcap_map_unmap(m);

	/* Length 0: the rest of the region. */
	CHECK_OK(shmcap_region_map(cap, page, 0, NULL, SHMCAP_MAP_WRITE, &m));
	CHECK_EQ(shmcap_map_size(m), 3 * page);
	CHECK_EQ(shmcap_map_region_offset(m), page);
	CHECK_EQ(((unsigned char *)shmcap_map_addr(m))[0], 0x41);
	CHECK_EQ(((unsigned char *)shmcap_map_addr(m))[2 * page], 0x43);
	((unsigned char *)shmcap_map_addr(m))[1] = 0x99;
	CHECK_EQ(p[page + 1], 0x99);
	shmcap_map_unmap(m);
	CHECK_OK(
		shmcap_region_map(cap, 3 * page, 0, NULL, SHMCAP_MAP_READ, &m));
	CHECK_EQ(shmcap_map_size(m), page);
	shmcap_map_unmap(m);

	/* A length that is not whole pages. */
	CHECK_OK(shmcap_region_map(cap, page, 100, NULL, SHMCAP_MAP_READ, &m));
	CHECK_EQ(shmcap_map_size(m), 100);
	CHECK_EQ(((unsigned char *)shmcap_map_addr(m))[0], 0x41);
	shmcap_map_unmap(m);

	/* The exact end is in range; one byte or page more is not. */
	CHECK_OK(shmcap_region_map(cap, 0, size, NULL, SHMCAP_MAP_READ, &m));
	shmcap_map_unmap(m);
	CHECK_ERR(shmcap_region_map(cap, 0, size + 1, NULL, SHMCAP_MAP_READ,
				    &m),
		  -ERANGE);
	CHECK_ERR(shmcap_region_map(cap, page, size, NULL, SHMCAP_MAP_READ, &m),
		  -ERANGE);
	CHECK_ERR(shmcap_region_map(cap, size, 0, NULL, SHMCAP_MAP_READ, &m),
		  -ERANGE);
	CHECK_ERR(shmcap_region_map(cap, size, 1, NULL, SHMCAP_MAP_READ, &m),
		  -ERANGE);
	CHECK_ERR(shmcap_region_map(cap, 8 * page, page, NULL, SHMCAP_MAP_READ,
				    &m),
		  -ERANGE);
	CHECK_ERR(shmcap_region_map(cap, 0, UINT64_MAX, NULL, SHMCAP_MAP_READ,
				    &m),
		  -ERANGE);

	/* offset + length wraps. */
	CHECK_ERR(shmcap_region_map(cap, UINT64_MAX & ~(page - 1), page, NULL,
				    SHMCAP_MAP_READ, &m),
		  -EOVERFLOW);
	CHECK_ERR(shmcap_region_map(cap, page, UINT64_MAX, NULL,
				    SHMCAP_MAP_READ, &m),
		  -EOVERFLOW);
	CHECK_ERR(shmcap_region_map(cap, page, UINT64_MAX - page + 1, NULL,
				    SHMCAP_MAP_READ, &m),
		  -EOVERFLOW);

	/* Unaligned offsets. */
	CHECK_ERR(shmcap_region_map(cap, 1, page, NULL, SHMCAP_MAP_READ, &m),
		  -EINVAL);
	CHECK_ERR(shmcap_region_map(cap, page + page / 2, 0, NULL,
				    SHMCAP_MAP_READ, &m),
		  -EINVAL);
	CHECK_ERR(shmcap_region_map(cap, UINT64_MAX, page, NULL,
				    SHMCAP_MAP_READ, &m),
		  -EINVAL);

	shmcap_map_unmap(all);
	shmcap_cap_close(cap);
}

static void test_ptr_off(void)
{
	shmcap_cap *cap;
	shmcap_map *m;
	uintptr_t base;
	uint64_t size;
	shmcap_off off;
	void *ptr;

	CHECK_OK(shmcap_region_create(2 * page, 0, &cap));
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_WRITE, &m));
	base = (uintptr_t)shmcap_map_addr(m);
	size = shmcap_map_size(m);
	CHECK_EQ(size, 2 * page);

	/* In range. */
	CHECK_OK(shmcap_map_ptr(m, 0, size, &ptr));
	CHECK_EQ((uintptr_t)ptr, base);
	CHECK_OK(shmcap_map_ptr(m, 0, 0, &ptr));
	CHECK_EQ((uintptr_t)ptr, base);
	CHECK_OK(shmcap_map_ptr(m, size - 1, 1, &ptr));
	CHECK_EQ((uintptr_t)ptr, base + size - 1);
	CHECK_OK(shmcap_map_ptr(m, page, page, &ptr));
	CHECK_EQ((uintptr_t)ptr, base + page);
	*(unsigned char *)ptr = 0x77;
	CHECK_OK(shmcap_map_ptr(m, 123, 8, &ptr));
	CHECK_EQ((uintptr_t)ptr, base + 123);

	/* Out of range, including sums that wrap. */
	CHECK_ERR(shmcap_map_ptr(m, 0, size + 1, &ptr), -ERANGE);
	CHECK_ERR(shmcap_map_ptr(m, 1, size, &ptr), -ERANGE);
	CHECK_ERR(shmcap_map_ptr(m, size, 1, &ptr), -ERANGE);
	CHECK_ERR(shmcap_map_ptr(m, size + 1, 0, &ptr), -ERANGE);
	CHECK_ERR(shmcap_map_ptr(m, size - 1, 2, &ptr), -ERANGE);
	CHECK_ERR(shmcap_map_ptr(m, UINT64_MAX, 1, &ptr), -ERANGE);
	CHECK_ERR(shmcap_map_ptr(m, UINT64_MAX, 0, &ptr), -ERANGE);
	CHECK_ERR(shmcap_map_ptr(m, 1, UINT64_MAX, &ptr), -ERANGE);
	CHECK_ERR(shmcap_map_ptr(m, 0, UINT64_MAX, &ptr), -ERANGE);
	CHECK_ERR(shmcap_map_ptr(m, page, UINT64_MAX - page + 1, &ptr),
		  -ERANGE);
	CHECK_ERR(shmcap_map_ptr(m, UINT64_MAX, UINT64_MAX, &ptr), -ERANGE);
	CHECK_ERR(shmcap_map_ptr(m, (uint64_t)1 << 63, (uint64_t)1 << 63, &ptr),
		  -ERANGE);

	/* Pointer to offset: in range. */
	CHECK_OK(shmcap_map_off(m, (void *)base, size, &off));
	CHECK_EQ(off, 0);
	CHECK_OK(shmcap_map_off(m, (void *)(base + size - 1), 1, &off));
	CHECK_EQ(off, size - 1);
	CHECK_OK(shmcap_map_off(m, (void *)(base + page), page, &off));
	CHECK_EQ(off, page);
	CHECK_OK(shmcap_map_ptr(m, off, 1, &ptr));
	CHECK_EQ(*(unsigned char *)ptr, 0x77);
	CHECK_OK(shmcap_map_off(m, (void *)(base + 10), 0, &off));
	CHECK_EQ(off, 10);

	/* Before, after, straddling either end, lengths that wrap. */
	CHECK_ERR(shmcap_map_off(m, (void *)(base - 1), 1, &off), -ERANGE);
	CHECK_ERR(shmcap_map_off(m, (void *)(base - 1), 0, &off), -ERANGE);
	CHECK_ERR(shmcap_map_off(m, (void *)(base - page), 2 * page, &off),
		  -ERANGE);
	CHECK_ERR(shmcap_map_off(m, (void *)(base + size), 1, &off), -ERANGE);
	CHECK_ERR(shmcap_map_off(m, (void *)(base + size + 1), 0, &off),
		  -ERANGE);
	CHECK_ERR(shmcap_map_off(m, (void *)(base + size + page), 1, &off),
		  -ERANGE);
	CHECK_ERR(shmcap_map_off(m, (void *)(base + 1), size, &off), -ERANGE);
	CHECK_ERR(shmcap_map_off(m, (void *)base, size + 1, &off), -ERANGE);
	CHECK_ERR(shmcap_map_off(m, (void *)base, UINT64_MAX, &off), -ERANGE);
	CHECK_ERR(shmcap_map_off(m, (void *)(base + 1), UINT64_MAX, &off),
		  -ERANGE);
	CHECK_ERR(shmcap_map_off(m, (void *)UINTPTR_MAX, 1, &off), -ERANGE);
	CHECK_ERR(shmcap_map_off(m, (void *)(uintptr_t)1, 1, &off), -ERANGE);
	CHECK_ERR(shmcap_map_off(m, &off, 1, &off), -ERANGE);

	/* NULL arguments. */
	CHECK_ERR(shmcap_map_ptr(NULL, 0, 1, &ptr), -EINVAL);
	CHECK_ERR(shmcap_map_ptr(m, 0, 1, NULL), -EINVAL);
	CHECK_ERR(shmcap_map_off(NULL, (void *)base, 1, &off), -EINVAL);
	CHECK_ERR(shmcap_map_off(m, NULL, 1, &off), -EINVAL);
	CHECK_ERR(shmcap_map_off(m, (void *)base, 1, NULL), -EINVAL);

	shmcap_map_unmap(m);
	shmcap_cap_close(cap);
}

static void test_bad_input(void)
{
	shmcap_cap *cap = NULL, *out = NULL;
	shmcap_map *m = NULL;
	uint64_t size;

	/* create */
	CHECK_ERR(shmcap_region_create(0, 0, &out), -EINVAL);
	CHECK_ERR(shmcap_region_create(0, SHMCAP_REGION_RESIZABLE, &out),
		  -EINVAL);
	CHECK_ERR(shmcap_region_create(page, 0, NULL), -EINVAL);
	CHECK_ERR(shmcap_region_create(page, 0x2, &out), -EINVAL);
	CHECK_ERR(shmcap_region_create(page, SHMCAP_REGION_UNSEALED, &out),
		  -EINVAL);
	CHECK_ERR(shmcap_region_create(page, SHMCAP_REGION_GROWABLE, &out),
		  -EINVAL);
	CHECK_ERR(shmcap_region_create(page, 0x80000000u, &out), -EINVAL);
	CHECK_ERR(shmcap_region_create(page, ~0u, &out), -EINVAL);
	CHECK_ERR(shmcap_region_create((uint64_t)SIZE_MAX, 0, &out), -EFBIG);
	CHECK_ERR(shmcap_region_create(UINT64_MAX, 0, &out), -EFBIG);
	CHECK_ERR(shmcap_region_create(UINT64_MAX - page + 2, 0, &out), -EFBIG);
	CHECK_ERR(shmcap_region_create(SHMCAP_REGION_SIZE_MAX + 1, 0, &out),
		  -EFBIG);
	CHECK_ERR(shmcap_region_create(SHMCAP_REGION_SIZE_MAX + 1,
				       SHMCAP_REGION_RESIZABLE, &out),
		  -EFBIG);

	/* region getters and operations */
	CHECK_ERR(shmcap_region_size(NULL, &size), -EINVAL);
	CHECK_ERR(shmcap_region_flags(NULL), -EINVAL);
	CHECK_ERR(shmcap_region_grow(NULL, page), -EINVAL);
	CHECK_ERR(shmcap_region_seal(NULL), -EINVAL);

	CHECK_OK(shmcap_region_create(page, 0, &cap));
	CHECK_ERR(shmcap_region_size(cap, NULL), -EINVAL);

	/* map */
	CHECK_ERR(shmcap_region_map(NULL, 0, 0, NULL, SHMCAP_MAP_READ, &m),
		  -EINVAL);
	CHECK_ERR(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_READ, NULL),
		  -EINVAL);
	CHECK_ERR(shmcap_region_map(cap, 0, 0, NULL, 0x10, &m), -EINVAL);
	CHECK_ERR(shmcap_region_map(cap, 0, 0, NULL,
				    SHMCAP_MAP_READ | 0x80000000u, &m),
		  -EINVAL);
	CHECK_ERR(shmcap_region_map(cap, 0, 0, NULL, ~0u, &m), -EINVAL);
	/* Flags 0: READ is implied. */
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, 0, &m));
	CHECK_EQ(((unsigned char *)shmcap_map_addr(m))[0], 0);
	shmcap_map_unmap(m);
	shmcap_cap_close(cap);

	/* NULL capability and mapping getters. */
	CHECK_ERR(shmcap_cap_type(NULL), -EINVAL);
	CHECK_EQ(shmcap_cap_rights(NULL), 0);
	CHECK_ERR(shmcap_cap_fd(NULL), -EINVAL);
	CHECK_ERR(shmcap_cap_derive(NULL, SHMCAP_RIGHT_READ, &out), -EINVAL);
	CHECK_NULL(shmcap_map_addr(NULL));
	CHECK_EQ(shmcap_map_size(NULL), 0);
	CHECK_EQ(shmcap_map_region_offset(NULL), 0);
	shmcap_map_unmap(NULL);
	shmcap_cap_close(NULL);
}

/* Create, map, write, unmap and close iterations regions. */
static void test_stress(unsigned long iterations)
{
	int fds = t_count_fds();
	int maps = t_count_maps("memfd:shmcap");
	unsigned long i;

	for (i = 0; i < iterations; i++) {
		unsigned int flags = i % 2 ? SHMCAP_REGION_RESIZABLE : 0;
		uint64_t size = (i % 4 + 1) * page;
		shmcap_cap *cap, *ro;
		shmcap_map *m, *r;
		unsigned char *p;

		CHECK_OK(shmcap_region_create(size, flags, &cap));
		if (flags)
			CHECK_OK(shmcap_region_grow(cap, size + page));
		CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_WRITE,
					   &m));
		p = shmcap_map_addr(m);
		CHECK_EQ(p[0], 0);
		p[0] = (unsigned char)i;
		if (i % 8 == 0) {
			CHECK_OK(
				shmcap_cap_derive(cap, SHMCAP_RIGHT_READ, &ro));
			CHECK_OK(shmcap_region_map(ro, 0, page, NULL,
						   SHMCAP_MAP_READ, &r));
			CHECK_EQ(((unsigned char *)shmcap_map_addr(r))[0],
				 (unsigned char)i);
			shmcap_map_unmap(r);
			shmcap_cap_close(ro);
		}
		shmcap_map_unmap(m);
		shmcap_cap_close(cap);
	}
	CHECK_EQ(t_count_fds(), fds);
	CHECK_EQ(t_count_maps("memfd:shmcap"), maps);
}

int main(int argc, char **argv)
{
	unsigned long iterations = 1000;
	int fds, maps;

	t_watchdog(60);
	if (argc > 1) {
		char *end;

		errno = 0;
		iterations = strtoul(argv[1], &end, 10);
		if (errno || *end || end == argv[1]) {
			fprintf(stderr, "usage: %s [ITERATIONS]\n", argv[0]);
			return T_EXIT_FAIL;
		}
	}
	page = (uint64_t)sysconf(_SC_PAGESIZE);
	CHECK(page >= 4096 && (page & (page - 1)) == 0);
	main_pid = getpid();
	atexit(unlink_named);

	fds = t_count_fds();
	CHECK(fds > 0);
	maps = t_count_maps("memfd:shmcap");

	test_create();
	test_seals();
	test_grow();
	test_seal();
	test_map_where();
	test_map_share();
	test_map_offsets();
	test_ptr_off();
	test_bad_input();
	CHECK_EQ(t_count_fds(), fds);
	test_stress(iterations);

	/* Nothing left: no descriptor, no mapping, no file. */
	CHECK_EQ(t_count_fds(), fds);
	CHECK_EQ(t_count_maps("memfd:shmcap"), maps);
	{
		char prefix[64];

		snprintf(prefix, sizeof(prefix), "shmcap.t-region-%ld-",
			 (long)getpid());
		CHECK_EQ(t_shm_leftovers_prefix(prefix), 0);
	}
	return T_EXIT_PASS;
}
