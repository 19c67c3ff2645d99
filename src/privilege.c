/* SPDX-License-Identifier: MIT */
/* Privilege: placeholder until supervisor groups land. */
#include "internal.h" /* first: it defines _GNU_SOURCE */

#include <stdlib.h>
#include <string.h>

int shmcap__group_place(const shmcap_cap *region, uint64_t offset,
			uint64_t length, void *addr, unsigned int flags,
			void **where)
{
	(void)region;
	(void)offset;
	(void)length;
	(void)addr;
	(void)flags;
	*where = NULL;
	return 0;
}

int shmcap__privilege_spawn_extra(unsigned int flags,
				  struct shmcap__spawn_extra *x)
{
	memset(x, 0, sizeof(*x));
	return (flags & SHMCAP_SPAWN_SUPERVISOR) ? -ENOSYS : 0;
}

void shmcap__spawn_extra_free(struct shmcap__spawn_extra *x)
{
	for (size_t i = 0; i < x->ncaps; i++)
		shmcap_cap_close(x->caps[i]);
	for (size_t i = 0; i < x->nenv; i++)
		free(x->env[i]);
	memset(x, 0, sizeof(*x));
}
