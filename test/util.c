/* SPDX-License-Identifier: MIT */
/*
 * Helpers that several tests share; see util.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <shmcap.h>

#include "helpers.h"
#include "util.h"

#define SEC ((int64_t)1000000000)

/* ------------------------------------------------------------------------
 * Numbers and time
 */

uint64_t t_rng_state;

uint64_t t_rng_seed(void)
{
	t_rng_state = (uint64_t)t_now_ns() ^ ((uint64_t)getpid() << 32);
	if (!t_rng_state)
		t_rng_state = 1;
	return t_rng_state;
}

uint64_t t_rng_seed_env(void)
{
	t_rng_seed();
	if (getenv("T_SEED"))
		t_rng_state = strtoull(getenv("T_SEED"), NULL, 10);
	printf("seed %llu\n", (unsigned long long)t_rng_state);
	return t_rng_state;
}

uint64_t t_rnd(void)
{
	t_rng_state ^= t_rng_state >> 12;
	t_rng_state ^= t_rng_state << 25;
	t_rng_state ^= t_rng_state >> 27;
	return t_rng_state * 0x2545f4914f6cdd1dull;
}

double t_scale_factor(void)
{
	const char *env = getenv("SHMCAP_TEST_SCALE");
	char *end;
	double f;

	if (!env || !*env)
		return 1.0;
	f = strtod(env, &end);
	if (*end || !(f > 0))
		FAIL("SHMCAP_TEST_SCALE=\"%s\" is not a positive number", env);
	return f;
}

unsigned long t_scaled(unsigned long dflt)
{
	double f = t_scale_factor() * (double)dflt;

	return f < 1 ? 1 : (unsigned long)f;
}

void t_sleep_ns(int64_t ns)
{
	struct timespec ts = { (time_t)(ns / SEC), (long)(ns % SEC) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int64_t t_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* ------------------------------------------------------------------------
 * Regions and capabilities
 */

void *t_region_new(uint64_t size, shmcap_cap **region, shmcap_map **map)
{
	CHECK_OK(shmcap_region_create(size, 0, region));
	CHECK_OK(shmcap_region_map(*region, 0, 0, NULL, SHMCAP_MAP_WRITE, map));
	return shmcap_map_addr(*map);
}

void t_region_free(shmcap_cap *region, shmcap_map *map)
{
	shmcap_map_unmap(map);
	shmcap_cap_close(region);
}

void *t_remap(shmcap_cap *region, shmcap_map **map)
{
	shmcap_map *old = *map;

	CHECK_OK(shmcap_region_map(region, 0, 0, NULL, SHMCAP_MAP_WRITE, map));
	CHECK(shmcap_map_addr(*map) != shmcap_map_addr(old));
	shmcap_map_unmap(old);
	return shmcap_map_addr(*map);
}

shmcap_cap *t_text_region(const char *text)
{
	long page = sysconf(_SC_PAGESIZE);
	shmcap_cap *cap;
	shmcap_map *m;

	CHECK(page > 0);
	CHECK_OK(shmcap_region_create((uint64_t)page, 0, &cap));
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_WRITE, &m));
	memcpy(shmcap_map_addr(m), text, strlen(text) + 1);
	shmcap_map_unmap(m);
	return cap;
}

void t_check_text_region(const shmcap_cap *cap, const char *text)
{
	shmcap_map *m;

	CHECK_EQ(shmcap_cap_type(cap), SHMCAP_TYPE_REGION);
	CHECK_OK(shmcap_region_map(cap, 0, 0, NULL, SHMCAP_MAP_READ, &m));
	CHECK_STR_EQ((const char *)shmcap_map_addr(m), text);
	shmcap_map_unmap(m);
}

uint64_t t_region_size(const shmcap_cap *cap)
{
	uint64_t size = 0;

	CHECK_OK(shmcap_region_size(cap, &size));
	return size;
}

int t_accmode(const shmcap_cap *cap)
{
	int fl = fcntl(shmcap_cap_fd(cap), F_GETFL);

	CHECK(fl >= 0);
	return fl & O_ACCMODE;
}

int t_count_maps(const char *needle)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	int n = 0;

	CHECK_NOTNULL(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

/* ------------------------------------------------------------------------
 * Children
 */

pid_t t_fork_child(int timeout_s)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		t_watchdog((unsigned int)timeout_s);
	}
	return pid;
}

void t_child_pass(void)
{
	fflush(NULL);
	_exit(T_EXIT_PASS);
}

void t_child_exit(shmcap_cap *region, shmcap_map *map)
{
	t_region_free(region, map);
	t_child_pass();
}

void t_ready_wait(const int pfd[2])
{
	char b;

	close(pfd[1]);
	CHECK(read(pfd[0], &b, 1) == 1);
	close(pfd[0]);
}

void t_reap_ok(pid_t pid, int timeout_s)
{
	int st = t_wait_child(pid, timeout_s);

	CHECK_CHILD_OK(st);
}

void t_check_killed(pid_t pid, int timeout_s)
{
	int st = t_wait_child(pid, timeout_s);

	if (st == -1)
		FAIL("child %ld was not reaped", (long)pid);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		FAIL("child %ld ended with status 0x%x, not SIGKILL", (long)pid,
		     st);
}

long t_proc_syscall(pid_t pid)
{
	char path[64], buf[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/syscall", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return (buf[0] >= '0' && buf[0] <= '9') ? strtol(buf, NULL, 10) : -1;
}

char t_proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

static int in_futex(long sc)
{
	return sc == SYS_futex;
}

static int in_poll(long sc)
{
#ifdef SYS_poll
	if (sc == SYS_poll)
		return 1;
#endif
	return sc == SYS_ppoll;
}

/*
 * Wait, polling every 50 us up to tries times, until pid sleeps in a
 * system call that in_call() accepts; fail with ended or never otherwise.
 */
static void wait_asleep_in(pid_t pid, int (*in_call)(long), int tries,
			   const char *ended, const char *never)
{
	int i;

	for (i = 0; i < tries; i++) {
		if (t_proc_state(pid) == 'S' && in_call(t_proc_syscall(pid)))
			return;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			FAIL("child %ld ended %s", (long)pid, ended);
		t_sleep_ns(50000);
	}
	FAIL("child %ld never %s", (long)pid, never);
}

void t_wait_asleep(pid_t pid)
{
	wait_asleep_in(pid, in_futex, 200000, "instead of sleeping",
		       "went to sleep in the kernel");
}

void t_wait_in_poll(pid_t pid)
{
	wait_asleep_in(pid, in_poll, 400000, "before waiting",
		       "waited for its answer");
}

/* ------------------------------------------------------------------------
 * Hand-built messages
 */

ssize_t t_sendmsg_fds(int sock, const struct sockaddr_un *sa, socklen_t salen,
		      const void *bytes, size_t len, const int *fds,
		      size_t nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * T_SEND_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg;
	struct iovec iov;
	struct cmsghdr *c;

	CHECK(nfds <= T_SEND_MAX_FDS);
	memset(&msg, 0, sizeof(msg));
	if (sa) {
		msg.msg_name = (void *)sa;
		msg.msg_namelen = salen;
	}
	iov.iov_base = (void *)bytes;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL);
}

void t_raw_send(int sock, const void *bytes, size_t len, const int *fds,
		size_t nfds)
{
	if (t_sendmsg_fds(sock, NULL, 0, bytes, len, fds, nfds) != (ssize_t)len)
		FAIL("raw sendmsg: %s", strerror(errno));
}

void t_wire_init(struct t_wire_hdr *h, size_t n, uint32_t rights,
		 size_t datalen)
{
	size_t i;

	memset(h, 0, sizeof(*h));
	h->magic = T_WIRE_MAGIC;
	h->version = T_WIRE_VERSION;
	h->ncaps = (uint16_t)n;
	h->len = (uint32_t)datalen;
	for (i = 0; i < n && i < SHMCAP_MSG_MAX_CAPS; i++) {
		h->caps[i].type = SHMCAP_TYPE_REGION;
		h->caps[i].rights = rights;
	}
}
