/* SPDX-License-Identifier: MIT */
/*
 * l4re_client: obtain a shared buffer and a doorbell from a server by
 * name (the L4Re shared-dataspace example, client side). See
 * l4re_server.c.
 *
 * The client looks up the name ("shm" unless given as the argument) and
 * receives a region and a notifier, maps the region anywhere, prints the
 * server's greeting, writes its own reply, rings the notifier and unmaps.
 */
#define _GNU_SOURCE
#include <shmcap.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define SECOND 1000000000LL

static int fail(const char *what, int err)
{
	fprintf(stderr, "l4re_client: %s: %s\n", what, shmcap_strerror(err));
	return 1;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "shm";
	shmcap_cap *region, *irq;
	shmcap_map *m;
	char *buf;
	int err;

	/* L4Re's get_cap("shm") and get_shared_buffer(ds, irq) in one. */
	err = shmcap_shared_buffer_get(name, 5 * SECOND, &region, &irq);
	if (err == -ENOENT)
		fprintf(stderr, "l4re_client: start l4re_server first\n");
	if (err < 0)
		return fail("get the shared buffer", err);

	/* Attach anywhere (L4Re's Search_addr), writable. */
	err = shmcap_region_map(region, 0, 0, NULL, SHMCAP_MAP_WRITE, &m);
	if (err < 0)
		return fail("map", err);
	buf = shmcap_map_addr(m);
	/* %.*s: never read past the mapping, whatever the server wrote. */
	printf("Content: %.*s\n", (int)shmcap_map_size(m), buf);

	printf("Setting new content in shared memory\n");
	memset(buf, 0, shmcap_map_size(m));
	strcpy(buf, "Hello from client, too!");
	/*
	 * The seed cleans the data cache here. Linux keeps caches coherent
	 * between processes; what must not happen is the compiler or the
	 * CPU moving the writes after the doorbell. The system call in
	 * shmcap_notifier_signal() already orders them; the fence says so.
	 */
	atomic_thread_fence(memory_order_release);

	err = shmcap_notifier_signal(irq);
	if (err < 0)
		return fail("signal", err);

	shmcap_map_unmap(m);
	shmcap_cap_close(irq);
	shmcap_cap_close(region);
	return 0;
}
