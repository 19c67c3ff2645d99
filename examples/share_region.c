/* SPDX-License-Identifier: MIT */
/*
 * share_region: two processes share an anonymous region by passing
 * capabilities over a socket.
 *
 * The parent creates a region, writes a greeting into it and sends the
 * child two capabilities to it: one with READ and WRITE rights, one with
 * READ only. The child maps the first, reads the greeting and writes a
 * reply; it shows that the kernel refuses to map the second for writing.
 * Nothing is left behind: the region has no name and vanishes with its
 * last descriptor and mapping.
 */
#define _GNU_SOURCE
#include <shmcap.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what, int err)
{
	fprintf(stderr, "share_region: %s: %s\n", what, shmcap_strerror(err));
	return 1;
}

static int child(int sock)
{
	shmcap_cap *caps[2];
	shmcap_peer peer;
	shmcap_map *m;
	size_t ncaps;
	char note[64];
	void *raw;
	int n, err;

	n = shmcap_recv(sock, caps, 2, &ncaps, note, sizeof(note) - 1, &peer,
			0);
	if (n < 0)
		return fail("receive", n);
	if (ncaps != 2)
		return fail("receive", -EBADMSG);
	note[n] = '\0';
	printf("child:  received %zu capabilities from pid %d (uid %u): %s\n",
	       ncaps, (int)peer.pid, peer.uid, note);

	err = shmcap_region_map(caps[0], 0, 0, NULL, SHMCAP_MAP_WRITE, &m);
	if (err < 0)
		return fail("map", err);
	printf("child:  region says \"%s\"\n", (char *)shmcap_map_addr(m));
	snprintf((char *)shmcap_map_addr(m) + 512, 64,
		 "hello back from the child");

	/* The READ-only capability: shmcap refuses, and so does the kernel. */
	err = shmcap_region_map(caps[1], 0, 0, NULL, SHMCAP_MAP_WRITE, &m);
	printf("child:  writable map of the READ-only capability: %s\n",
	       shmcap_err_name(err));
	raw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
		   shmcap_cap_fd(caps[1]), 0);
	printf("child:  raw mmap(PROT_WRITE) of its descriptor: %s\n",
	       raw == MAP_FAILED ? "refused by the kernel" : "ALLOWED");

	shmcap_map_unmap(m);
	shmcap_cap_close(caps[0]);
	shmcap_cap_close(caps[1]);
	return raw == MAP_FAILED ? 0 : 1;
}

int main(void)
{
	shmcap_cap *rw, *ro, *caps[2];
	shmcap_map *m;
	int sv[2], err, status;
	pid_t pid;

	err = shmcap_region_create(4096, 0, &rw);
	if (err < 0)
		return fail("create", err);
	err = shmcap_region_map(rw, 0, 0, NULL, SHMCAP_MAP_WRITE, &m);
	if (err < 0)
		return fail("map", err);
	strcpy(shmcap_map_addr(m), "hello from the parent");
	err = shmcap_cap_derive(rw, SHMCAP_RIGHT_READ, &ro);
	if (err < 0)
		return fail("derive", err);
	err = shmcap_socketpair(sv);
	if (err < 0)
		return fail("socketpair", err);
	printf("parent: created a 4096-byte anonymous region at %p\n",
	       shmcap_map_addr(m));

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return fail("fork", -ENOMEM);
	if (pid == 0) {
		close(sv[0]);
		exit(child(sv[1]));
	}
	close(sv[1]);
	caps[0] = rw;
	caps[1] = ro;
	err = shmcap_send(sv[0], caps, 2, "read+write and read-only", 24, 0);
	if (err < 0)
		return fail("send", err);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return fail("child", -ECHILD);
	printf("parent: the child wrote \"%s\"\n",
	       (char *)shmcap_map_addr(m) + 512);

	close(sv[0]);
	shmcap_map_unmap(m);
	shmcap_cap_close(ro);
	shmcap_cap_close(rw);
	return 0;
}
