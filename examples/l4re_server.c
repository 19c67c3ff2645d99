/* SPDX-License-Identifier: MIT */
/*
 * l4re_server: share a buffer and a doorbell with a client under a name
 * (the L4Re shared-dataspace example, server side). See l4re_client.c.
 *
 * The server creates a one-page region with a greeting in it and a
 * notifier, and publishes both under a name ("shm" unless given as the
 * argument). A client that looks the name up receives the two
 * capabilities, as L4Re's get_shared_buffer(ds, irq) hands out a
 * dataspace and an IRQ. The server then sleeps on the notifier until the
 * client rings it and prints what the client wrote.
 *
 * The name is an abstract socket that vanishes the moment the server
 * ends, however it ends: no file, no daemon, nothing to clean up.
 */
#define _GNU_SOURCE
#include <shmcap.h>

#include <stdio.h>
#include <string.h>

static int fail(const char *what, int err)
{
	fprintf(stderr, "l4re_server: %s: %s\n", what, shmcap_strerror(err));
	return 1;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "shm";
	shmcap_cap *caps[2], *region, *irq;
	shmcap_name *pub;
	shmcap_map *m;
	char *buf;
	int err;

	/* The buffer: one page, with a greeting for the client. */
	err = shmcap_region_create(4096, 0, &region);
	if (err < 0)
		return fail("create", err);
	err = shmcap_region_map(region, 0, 0, NULL, SHMCAP_MAP_WRITE, &m);
	if (err < 0)
		return fail("map", err);
	buf = shmcap_map_addr(m);
	strcpy(buf, "Hello from server!");

	/* The doorbell the client rings when it has written. */
	err = shmcap_notifier_create(&irq);
	if (err < 0)
		return fail("notifier", err);

	/*
	 * Publish the region then the notifier, the order in which
	 * shmcap_shared_buffer_get() expects them. 0600: only this user may
	 * look the name up; it gets read and write rights. A background
	 * thread answers the lookups while the main thread waits.
	 */
	caps[0] = region;
	caps[1] = irq;
	err = shmcap_name_publish(name, caps, 2, 0600, SHMCAP_NAME_THREAD,
				  &pub);
	if (err < 0)
		return fail("publish", err);
	printf("Server: published \"%s\", waiting for a client\n", name);
	fflush(stdout);

	/* Sleep until the client rings (no polling). */
	err = shmcap_notifier_wait(irq, SHMCAP_FOREVER);
	if (err < 0)
		return fail("wait", err);
	/* %.*s: the client could have left no NUL in the page. */
	printf("Server: the client wrote \"%.*s\"\n", (int)shmcap_map_size(m),
	       buf);

	shmcap_name_unpublish(pub);
	shmcap_cap_close(irq);
	shmcap_map_unmap(m);
	shmcap_cap_close(region);
	return 0;
}
