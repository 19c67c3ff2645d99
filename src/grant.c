/* SPDX-License-Identifier: MIT */
/* Grants: placeholder until map-from-actor lands. */
#include "internal.h" /* first: it defines _GNU_SOURCE */

void shmcap__grant_drop(shmcap_map *m)
{
	m->grant = NULL;
}
