/* Description: shmcap-test-peer, the program multi-process tests exec */
/* SPDX-License-Identifier: MIT */
/*
 * A test forks, clears FD_CLOEXEC on its end of a shmcap_socketpair() in
 * the child (the library makes every descriptor close-on-exec) and execs
 *
 *   shmcap-test-peer MODE ARGS...
 *
 * The peer does one job and exits 0 if every check passed, 1 otherwise
 * with a line on stderr saying what failed (the CHECK macros of helpers.h).
 * Modes:
 *
 *   recv-ro FD     receive one message with one region capability that
 *                  must have READ only; the data is the text the region
 *                  must start with. Then show that the kernel refuses
 *                  every way of writing through the descriptor: a
 *                  writable shmcap mapping, a raw mmap(PROT_WRITE), an
 *                  mprotect(PROT_WRITE) of a raw read-only mapping,
 *                  write(2), pwrite(2), ftruncate(2), and (when not
 *                  root) re-opening /proc/self/fd/N for writing. Replies
 *                  "ro-ok" on FD.
 *   recv-rw FD     receive one message with one READ and WRITE capability;
 *                  write "peer PID: DATA" (NUL-terminated) at offset 0 of
 *                  the region and reply "ack PID" on FD.
 *   echo FD        receive messages until end of stream and send each one
 *                  back unchanged, capabilities included; every message's
 *                  sender must be the parent (pid, uid, gid).
 *   hold FD        receive one READ and WRITE capability, map it, write
 *                  the message's data (NUL-terminated) at offset 0, reply
 *                  "held", then sleep until killed, keeping the mapping.
 *   resolve TOKEN [ERRNAME]
 *                  shmcap_token_resolve(TOKEN) with a 5 s timeout; print
 *                  "result OK" or "result ERRNAME", and on success
 *                  "rights N" and "content TEXT" (the region's first
 *                  string). Exit 0 iff the outcome is the expected one
 *                  ("OK", the default, or the ERRNAME given).
 *
 * Modes for programs started by shmcap_spawn() (test/t_spawn.c):
 *
 *   env-caps N [NAME TYPE RIGHTS TEXT]...
 *                  the descriptors open must be exactly 0, 1, 2 and 3 ..
 *                  2 + N, none close-on-exec; then each NAME must be found
 *                  by shmcap_env_cap() with that TYPE and RIGHTS (decimal),
 *                  and the descriptors become close-on-exec. A region
 *                  must start with TEXT; with WRITE the peer writes
 *                  "child:TEXT" at offset 1024, without it a writable
 *                  mapping must be refused. A notifier with WAIT must
 *                  have TEXT signals pending; with SIGNAL the peer signals
 *                  it once. An actor (TEXT "parent") must be the parent,
 *                  with the id the parent's pid gives. An unknown name
 *                  gives -ENOENT.
 *   env-stale NAME shmcap_env_cap(NAME) must give -ENOENT: the list names
 *                  another process.
 *   env-fork-stale NAME
 *                  fork; the child executes this program in mode env-stale
 *                  NAME with the same environment. Exit with its result.
 *   env-exec-same NAME TYPE
 *                  execute this program again, in the same process, in
 *                  mode env-one NAME TYPE.
 *   env-one NAME TYPE
 *                  shmcap_env_cap(NAME) must succeed with that TYPE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"

/* Longest message data the peer handles. */
#define PEER_DATA_MAX SHMCAP_MSG_MAX_DATA

static unsigned char data[PEER_DATA_MAX + 1];

__attribute__((noreturn)) static void usage(void)
{
	fprintf(stderr,
		"usage: shmcap-test-peer recv-ro FD | recv-rw FD | echo FD | "
		"hold FD | resolve TOKEN [ERRNAME] | "
		"env-caps N [NAME TYPE RIGHTS TEXT]... | env-stale NAME | "
		"env-fork-stale NAME | env-exec-same NAME TYPE | "
		"env-one NAME TYPE\n");
	exit(T_EXIT_FAIL);
}

/* The descriptor number in text, which must name an open socket. */
static int parse_fd(const char *text)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < 0 || v > 1 << 20)
		FAIL("bad descriptor number \"%s\"", text);
	if (fcntl((int)v, F_GETFD) < 0)
		FAIL("descriptor %ld is not open (FD_CLOEXEC not cleared?)", v);
	return (int)v;
}

/*
 * Receive one message with exactly one region capability on sock; the data
 * is NUL-terminated in data[]. Returns the data length.
 */
static size_t recv_one(int sock, shmcap_cap **cap, shmcap_peer *peer)
{
	shmcap_cap *caps[SHMCAP_MSG_MAX_CAPS];
	size_t ncaps = 99;
	int ret;

	ret = shmcap_recv(sock, caps, SHMCAP_MSG_MAX_CAPS, &ncaps, data,
			  PEER_DATA_MAX, peer, 0);
	CHECK_OK(ret);
	CHECK_EQ(ncaps, 1);
	CHECK_EQ(shmcap_cap_type(caps[0]), SHMCAP_TYPE_REGION);
	CHECK_EQ(peer->pid, getppid());
	data[ret] = '\0';
	*cap = caps[0];
	return (size_t)ret;
}

static void reply(int sock, const char *text)
{
	CHECK_OK(shmcap_send(sock, NULL, 0, text, strlen(text), 0));
}

static int mode_recv_ro(int sock)
{
	long page = sysconf(_SC_PAGESIZE);
	shmcap_cap *cap, *rw;
	shmcap_map *m;
	shmcap_peer peer;
	uint64_t size;
	size_t len;
	void *p;
	int fd;

	len = recv_one(sock, &cap, &peer);
	CHECK_EQ(shmcap_cap_rights(cap), SHMCAP_RIGHT_READ);
	fd = shmcap_cap_fd(cap);
	CHECK_OK(fd);
	/* The invariant behind kernel enforcement: a read-only descriptor. */
	CHECK_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	CHECK_OK(shmcap_region_size(cap, &size));
	CHECK(size >= (uint64_t)page && size > len);

	/* Reading works and shows what the sender wrote. */
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_READ, &m));
	CHECK(memcmp(shmcap_map_addr(m), data, len + 1) == 0);

	/* The library refuses, and says why. */
	CHECK_ERR(shmcap_region_map(cap, 0, 0, NULL,
				    SHMCAP_MAP_READ | SHMCAP_MAP_WRITE, &m),
		  -EACCES);
	CHECK_ERR(shmcap_cap_derive(cap, SHMCAP_RIGHTS_REGION, &rw), -EPERM);
	CHECK_ERR(shmcap_region_grow(cap, size * 2), -EACCES);
	CHECK_ERR(shmcap_region_seal(cap), -EACCES);

	/* The kernel refuses whatever is done with the raw descriptor. */
	errno = 0;
	p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED)
		FAIL("mmap(PROT_READ|PROT_WRITE, MAP_SHARED) of a READ-only "
		     "capability succeeded");
	CHECK_EQ(errno, EACCES);

	p = mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		FAIL("mmap(PROT_READ) failed: %s", strerror(errno));
	errno = 0;
	if (mprotect(p, (size_t)page, PROT_READ | PROT_WRITE) == 0)
		FAIL("mprotect(PROT_WRITE) of a read-only shared mapping "
		     "succeeded");
	CHECK_EQ(errno, EACCES);
	CHECK_EQ(munmap(p, (size_t)page), 0);

	errno = 0;
	if (write(fd, "x", 1) >= 0)
		FAIL("write(2) on a READ-only capability succeeded");
	CHECK_EQ(errno, EBADF);
	errno = 0;
	if (pwrite(fd, "x", 1, 0) >= 0)
		FAIL("pwrite(2) on a READ-only capability succeeded");
	CHECK_EQ(errno, EBADF);
	errno = 0;
	if (ftruncate(fd, (off_t)size * 2) == 0)
		FAIL("ftruncate(2) on a READ-only capability succeeded");
	CHECK(errno == EINVAL || errno == EBADF);

	/*
	 * The region's mode bits (0444) refuse a writable re-open to anyone
	 * but root, who may do anything to the creator anyway.
	 */
	if (geteuid() != 0) {
		char path[64];
		int w;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		errno = 0;
		w = open(path, O_RDWR | O_CLOEXEC);
		if (w >= 0)
			FAIL("re-opening %s for writing succeeded", path);
		CHECK_EQ(errno, EACCES);
	}

	/* Nothing above changed the region. */
	CHECK(memcmp(shmcap_map_addr(m), data, len + 1) == 0);
	CHECK_OK(shmcap_region_size(cap, &size));
	shmcap_map_unmap(m);
	shmcap_cap_close(cap);
	reply(sock, "ro-ok");
	return T_EXIT_PASS;
}

static int mode_recv_rw(int sock)
{
	shmcap_peer peer;
	shmcap_cap *cap;
	shmcap_map *m;
	char text[128];

	recv_one(sock, &cap, &peer);
	CHECK_EQ(shmcap_cap_rights(cap), SHMCAP_RIGHTS_REGION);
	CHECK_EQ(fcntl(shmcap_cap_fd(cap), F_GETFL) & O_ACCMODE, O_RDWR);
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL,
				   SHMCAP_MAP_READ | SHMCAP_MAP_WRITE, &m));
	CHECK(strlen((const char *)data) <= 64);
	snprintf(text, sizeof(text), "peer %ld: %.64s", (long)getpid(),
		 (const char *)data);
	CHECK(shmcap_map_size(m) > strlen(text));
	memcpy(shmcap_map_addr(m), text, strlen(text) + 1);
	shmcap_map_unmap(m);
	shmcap_cap_close(cap);
	snprintf(text, sizeof(text), "ack %ld", (long)getpid());
	reply(sock, text);
	return T_EXIT_PASS;
}

static int mode_echo(int sock)
{
	shmcap_cap *caps[SHMCAP_MSG_MAX_CAPS];
	shmcap_peer peer;
	size_t ncaps, i;
	int ret;

	for (;;) {
		memset(&peer, 0xff, sizeof(peer));
		ncaps = 99;
		ret = shmcap_recv(sock, caps, SHMCAP_MSG_MAX_CAPS, &ncaps, data,
				  PEER_DATA_MAX, &peer, 0);
		if (ret == -EPIPE) /* end of stream */
			break;
		CHECK_OK(ret);
		CHECK_EQ(peer.pid, getppid());
		CHECK_EQ(peer.uid, getuid());
		CHECK_EQ(peer.gid, getgid());
		CHECK_OK(shmcap_send(sock, caps, ncaps, data, (size_t)ret, 0));
		for (i = 0; i < ncaps; i++)
			shmcap_cap_close(caps[i]);
	}
	return T_EXIT_PASS;
}

__attribute__((noreturn)) static void mode_hold(int sock)
{
	shmcap_peer peer;
	shmcap_cap *cap;
	shmcap_map *m;
	size_t len;

	len = recv_one(sock, &cap, &peer);
	CHECK_EQ(shmcap_cap_rights(cap), SHMCAP_RIGHTS_REGION);
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL,
				   SHMCAP_MAP_READ | SHMCAP_MAP_WRITE, &m));
	CHECK(shmcap_map_size(m) > len);
	memcpy(shmcap_map_addr(m), data, len + 1);
	reply(sock, "held");
	/* Keep cap, m and sock until SIGKILL, or the watchdog if orphaned. */
	for (;;)
		pause();
}

static int mode_resolve(const char *token, const char *expect)
{
	const char *got;
	shmcap_cap *cap = NULL;
	shmcap_map *m;
	int ret;

	ret = shmcap_token_resolve(token, (int64_t)5 * 1000000000, &cap);
	got = ret == 0 ? "OK" : shmcap_err_name(ret);
	printf("result %s\n", got);
	if (ret == 0) {
		const char *p;

		printf("rights %u\n", shmcap_cap_rights(cap));
		CHECK_EQ(shmcap_cap_type(cap), SHMCAP_TYPE_REGION);
		CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_READ,
					   &m));
		p = shmcap_map_addr(m);
		printf("content %.*s\n",
		       (int)strnlen(p, (size_t)shmcap_map_size(m)), p);
		shmcap_map_unmap(m);
		shmcap_cap_close(cap);
	}
	fflush(stdout);
	if (strcmp(got, expect) != 0) {
		fprintf(stderr, "peer resolve: got %s, expected %s\n", got,
			expect);
		return T_EXIT_FAIL;
	}
	return T_EXIT_PASS;
}

/* A small decimal number from argv. */
static long parse_num(const char *text)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < 0 || v > 1 << 20)
		FAIL("bad number \"%s\"", text);
	return v;
}

/*
 * The descriptors open must be exactly 0, 1, 2 and 3 .. 2 + n, and those
 * of the capabilities must be inheritable until shmcap_env_cap() runs.
 */
static void check_inherited_fds(long n)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	long fd, seen = 0;

	CHECK_NOTNULL(dir);
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		fd = atol(de->d_name);
		if (fd == dirfd(dir))
			continue;
		if (fd < 0 || fd >= 3 + n)
			FAIL("descriptor %ld inherited (expected 0..%ld)", fd,
			     2 + n);
		seen++;
	}
	closedir(dir);
	CHECK_EQ(seen, 3 + n);
	for (fd = 3; fd < 3 + n; fd++)
		CHECK_EQ(fcntl((int)fd, F_GETFD) & FD_CLOEXEC, 0);
}

static void check_env_region(shmcap_cap *c, unsigned int rights,
			     const char *text)
{
	shmcap_map *m;
	char *p;

	CHECK_OK(shmcap_region_map(c, 0, 0, NULL, SHMCAP_MAP_READ, &m));
	p = shmcap_map_addr(m);
	CHECK(shmcap_map_size(m) >= 2048);
	CHECK(strncmp(p, text, strlen(text)) == 0);
	shmcap_map_unmap(m);
	if (rights & SHMCAP_RIGHT_WRITE) {
		CHECK_OK(shmcap_region_map(c, 0, 0, NULL, SHMCAP_MAP_WRITE,
					   &m));
		p = shmcap_map_addr(m);
		snprintf(p + 1024, 1024, "child:%s", text);
		shmcap_map_unmap(m);
	} else {
		CHECK_ERR(shmcap_region_map(c, 0, 0, NULL, SHMCAP_MAP_WRITE,
					    &m),
			  -EACCES);
	}
}

static void check_env_notifier(shmcap_cap *c, unsigned int rights,
			       const char *text)
{
	if (rights & SHMCAP_RIGHT_WAIT)
		CHECK_EQ(shmcap_notifier_wait(c, 0), parse_num(text));
	else
		CHECK_ERR(shmcap_notifier_wait(c, 0), -EACCES);
	if (rights & SHMCAP_RIGHT_SIGNAL)
		CHECK_OK(shmcap_notifier_signal(c));
	else
		CHECK_ERR(shmcap_notifier_signal(c), -EACCES);
}

static void check_env_actor(shmcap_cap *c, const char *text)
{
	shmcap_actor_id got, want;
	shmcap_cap *parent;

	CHECK_STR_EQ(text, "parent");
	CHECK_EQ(shmcap_actor_pid(c), getppid());
	CHECK_OK(shmcap_actor_id_of(c, &got));
	CHECK_OK(shmcap_actor_open(getppid(), NULL, &parent));
	CHECK_OK(shmcap_actor_id_of(parent, &want));
	CHECK(memcmp(&got, &want, sizeof(got)) == 0);
	CHECK_EQ(shmcap_actor_alive(c), 1);
	shmcap_cap_close(parent);
}

static int mode_env_caps(int argc, char **argv)
{
	long n = parse_num(argv[2]), fd;
	shmcap_cap *c, *again;
	unsigned int rights;
	int i, type;

	check_inherited_fds(n);
	if ((argc - 3) % 4 != 0)
		usage();
	for (i = 3; i < argc; i += 4) {
		type = (int)parse_num(argv[i + 1]);
		rights = (unsigned int)parse_num(argv[i + 2]);
		CHECK_OK(shmcap_env_cap(argv[i], &c));
		CHECK_EQ(shmcap_cap_type(c), type);
		CHECK_EQ(shmcap_cap_rights(c), rights);
		CHECK(shmcap_cap_fd(c) >= 3 + n);
		CHECK(fcntl(shmcap_cap_fd(c), F_GETFD) & FD_CLOEXEC);
		switch (type) {
		case SHMCAP_TYPE_REGION:
			check_env_region(c, rights, argv[i + 3]);
			break;
		case SHMCAP_TYPE_NOTIFIER:
			check_env_notifier(c, rights, argv[i + 3]);
			break;
		case SHMCAP_TYPE_ACTOR:
			check_env_actor(c, argv[i + 3]);
			break;
		default:
			FAIL("unknown type %d", type);
		}
		/* Each call makes a new capability. */
		CHECK_OK(shmcap_env_cap(argv[i], &again));
		CHECK(shmcap_cap_fd(again) != shmcap_cap_fd(c));
		shmcap_cap_close(again);
		shmcap_cap_close(c);
	}
	CHECK_ERR(shmcap_env_cap("no-such-name", &c), -ENOENT);
	CHECK_ERR(shmcap_env_cap(NULL, &c), -EINVAL);
	/* Listed descriptors are close-on-exec once the list was read. */
	for (fd = 3; fd < 3 + n; fd++)
		CHECK(fcntl((int)fd, F_GETFD) & FD_CLOEXEC);
	return T_EXIT_PASS;
}

static int mode_env_one(const char *name, const char *type)
{
	shmcap_cap *c;

	CHECK_OK(shmcap_env_cap(name, &c));
	CHECK_EQ(shmcap_cap_type(c), parse_num(type));
	shmcap_cap_close(c);
	return T_EXIT_PASS;
}

static int mode_env_stale(const char *name)
{
	shmcap_cap *c = NULL;

	CHECK(getenv("SHMCAP_CAPS") != NULL);
	CHECK_ERR(shmcap_env_cap(name, &c), -ENOENT);
	CHECK_NULL(c);
	return T_EXIT_PASS;
}

static int mode_env_fork_stale(const char *name)
{
	char *args[] = { "shmcap-test-peer", "env-stale", (char *)name, NULL };
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		execve("/proc/self/exe", args, environ);
		_exit(126);
	}
	st = t_wait_child(pid, 30);
	CHECK_CHILD_OK(st);
	return T_EXIT_PASS;
}

static int mode_env_exec_same(const char *name, const char *type)
{
	char *args[] = { "shmcap-test-peer", "env-one", (char *)name,
			 (char *)type, NULL };

	fflush(NULL);
	execve("/proc/self/exe", args, environ);
	FAIL("execve: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	const char *mode;

	if (argc < 3)
		usage();
	mode = argv[1];
	/* An orphaned peer must not live for ever. */
	t_watchdog(60);

	if (strcmp(mode, "env-caps") == 0)
		return mode_env_caps(argc, argv);
	if (strcmp(mode, "env-one") == 0 && argc == 4)
		return mode_env_one(argv[2], argv[3]);
	if (strcmp(mode, "env-exec-same") == 0 && argc == 4)
		return mode_env_exec_same(argv[2], argv[3]);
	if (strcmp(mode, "env-stale") == 0 && argc == 3)
		return mode_env_stale(argv[2]);
	if (strcmp(mode, "env-fork-stale") == 0 && argc == 3)
		return mode_env_fork_stale(argv[2]);
	if (strcmp(mode, "resolve") == 0) {
		if (argc > 4)
			usage();
		return mode_resolve(argv[2], argc == 4 ? argv[3] : "OK");
	}
	if (argc != 3)
		usage();
	if (strcmp(mode, "recv-ro") == 0)
		return mode_recv_ro(parse_fd(argv[2]));
	if (strcmp(mode, "recv-rw") == 0)
		return mode_recv_rw(parse_fd(argv[2]));
	if (strcmp(mode, "echo") == 0)
		return mode_echo(parse_fd(argv[2]));
	if (strcmp(mode, "hold") == 0)
		mode_hold(parse_fd(argv[2]));
	usage();
}
