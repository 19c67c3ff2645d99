/* SPDX-License-Identifier: MIT */
/*
 * Actors: identity, actor capabilities, spawning with named capabilities.
 *
 * Identity. An actor's id is 16 bytes: the first 8 bytes of the kernel's
 * boot id (random at each boot) and 8 bytes, big-endian, that name the
 * process within the boot. Where the kernel keeps pidfds on pidfs (6.9 and
 * later) the latter is the pidfd's inode number, which pidfs gives each
 * struct pid from a 64-bit counter and never reuses within a boot; it is
 * the same seen from every process and every pid namespace. Elsewhere it
 * is the process's start time in clock ticks times 2^22 plus its pid (pids
 * are below 2^22): two processes with one pid cannot start in the same
 * tick. The start time comes from /proc/PID/stat, which may name another
 * process if the pid was reused, so the pidfd is checked afterwards to
 * still name a process that has not been reaped: then the pid could not
 * have changed hands in between.
 *
 * The caller's own id is cached, keyed by its pid and dropped in a child
 * of fork() (pthread_atfork), since a child is another actor.
 *
 * Actor capabilities hold a pidfd. Liveness is POLLIN on it (the kernel
 * reports it once the process is a zombie), signals go through
 * pidfd_send_signal() and waiting through waitid(P_PIDFD), so a reused pid
 * is never signalled or reaped by mistake. Only the parent can reap: for
 * another actor's pidfd waitid() says ECHILD and the wait reports status
 * -1. A reaped child's status is kept in the capability, as the kernel
 * forgets it.
 *
 * Spawning. shmcap_spawn() clones with CLONE_VM | CLONE_VFORK | CLONE_PIDFD,
 * like posix_spawn() but with our own child code: the child shares the
 * parent's memory (no page tables copied, so spawning costs the same
 * whatever the parent's size), the parent sleeps until the child has
 * executed the program or failed, and the pidfd comes back from the same
 * system call that made the child, so no other process can ever be mistaken
 * for it. The child runs on a stack of its own, in the parent's memory and
 * with the parent's thread-local storage, so it may only make raw system
 * calls: no allocation, no lock, no sanitizer bookkeeping (its function is
 * excluded from instrumentation). Everything it needs -- the environment,
 * the paths to try, the descriptor plan -- is built by the parent first.
 *
 * In the child, signal handlers the parent installed are reset to SIG_DFL
 * before the parent's signal mask (all blocked around clone()) is restored,
 * so no handler of the parent ever runs in the child on the parent's
 * memory. Capability i becomes descriptor 3 + i: the parent first moves
 * every source descriptor below 3 + n to a number at or above it, so that
 * no dup3() overwrites a source still needed; close_range() then closes
 * every other descriptor. The child writes its pid over the placeholders
 * in SHMCAP_CAPS (and in the privilege layer's strings), so that a list
 * that reaches a later program through a plain fork and exec is seen to be
 * stale. If the exec fails, the child stores errno where the parent reads
 * it and exits; the parent reaps it and returns the error.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#include "atomic.h"

#if defined(__SANITIZE_THREAD__)
#define ACTOR_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ACTOR_TSAN 1
#endif
#endif
#ifdef ACTOR_TSAN
#include <dlfcn.h>
#endif

#ifndef PID_FS_MAGIC
#define PID_FS_MAGIC 0x50494446
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
/* Numbers shared by every architecture since Linux 5.1. */
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/*
 * PIDFD_GET_INFO (Linux 6.13): the pid of a pidfd's process in the
 * caller's pid namespace. /proc/self/fdinfo gives it in the namespace of
 * the /proc mount instead, which differs in a child pid namespace that did
 * not mount its own /proc.
 */
struct actor_pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid;
	uint32_t ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
};
_Static_assert(sizeof(struct actor_pidfd_info) == 64, "PIDFD_INFO_SIZE_VER0");
#define ACTOR_PIDFD_GET_INFO _IOWR(0xFF, 11, struct actor_pidfd_info)
#define ACTOR_PIDFD_INFO_PID 1u

/* Longest capability name in shmcap_spawn(), in bytes. */
#define SPAWN_NAME_MAX 63
/* The child's stack, and the guard page below it. */
#define SPAWN_STACK_SIZE (64 * 1024)

/* syscall(2) reads its arguments as long: pass them so. */
static int sys_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, (long)pid, 0L);
}

static int sys_pidfd_signal(int fd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, (long)fd, (long)sig, NULL,
			    0L);
}

/* ------------------------------------------------------------------------
 * Identity
 */

/* Read a small file into buf (NUL-terminated); its length or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return shmcap__neg_errno();
	while (len < size - 1) {
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = shmcap__neg_errno();
			close(fd);
			return err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The boot id's first 8 bytes, read once (it changes only at boot). */
static uint64_t boot_prefix;
static uint32_t boot_known;

static int boot_id_prefix(uint64_t *out)
{
	char text[64];
	uint64_t v = 0;
	ssize_t n;
	int i, digits = 0, h;

	/* Acquire: pairs with the release store below. */
	if (load32(&boot_known, ORDER_ACQUIRE)) {
		*out = load64(&boot_prefix, ORDER_RELAXED);
		return 0;
	}
	n = read_small("/proc/sys/kernel/random/boot_id", text, sizeof(text));
	if (n < 0)
		return n == -ENOENT ? -ENOENT : -EIO;
	/* The UUID form: 8-4-4-4-12 hex digits; the first 16 digits. */
	if (n < 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' ||
	    text[23] != '-')
		return -EIO;
	for (i = 0; i < 36 && digits < 16; i++) {
		if (text[i] == '-')
			continue;
		h = hex_value(text[i]);
		if (h < 0)
			return -EIO;
		v = v << 4 | (uint64_t)h;
		digits++;
	}
	/* Racing first callers store the same value. */
	store64(&boot_prefix, v, ORDER_RELAXED);
	store32(&boot_known, 1, ORDER_RELEASE);
	*out = v;
	return 0;
}

/* Start time of pid in clock ticks (field 22 of /proc/PID/stat). */
static int proc_start_time(int32_t pid, uint64_t *ticks)
{
	char path[48], buf[1024], *p, *end;
	unsigned long long v;
	ssize_t n;
	int field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	/* The command name (field 2) may hold anything, even ") ". */
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p++;
	/* p is at the space before field 3. */
	for (field = 3; field <= 22; field++) {
		if (*p != ' ')
			return -EIO;
		p++;
		if (field == 22)
			break;
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
	}
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno || end == p || (*end != ' ' && *end != '\n' && *end))
		return -EIO;
	*ticks = v;
	return 0;
}

/*
 * The id's last 8 bytes for the process behind pidfd, whose pid in our
 * namespace is pid (0 if unknown). -ESRCH if it cannot be known: no
 * pidfs, and the process is gone or its pid unknown.
 */
static int actor_serial(int pidfd, int32_t pid, uint64_t *serial)
{
	struct statfs sfs;
	struct stat st;
	uint64_t ticks = 0;
	int ret;

	if (fstatfs(pidfd, &sfs) == 0 && sfs.f_type == PID_FS_MAGIC) {
		if (fstat(pidfd, &st) < 0)
			return shmcap__neg_errno();
		*serial = (uint64_t)st.st_ino;
		return 0;
	}
	if (pid <= 0)
		return -ESRCH;
	ret = proc_start_time(pid, &ticks);
	if (ret < 0)
		return ret;
	/*
	 * If the process was not yet reaped after the read, it held pid all
	 * along, so the file we read was its own.
	 */
	if (sys_pidfd_signal(pidfd, 0) < 0 && errno == ESRCH)
		return -ESRCH;
	*serial = ticks << 22 | (uint64_t)pid;
	return 0;
}

static void id_store(uint8_t id[16], uint64_t boot, uint64_t serial)
{
	int i;

	for (i = 0; i < 8; i++) {
		id[i] = (uint8_t)(boot >> (56 - 8 * i));
		id[8 + i] = (uint8_t)(serial >> (56 - 8 * i));
	}
}

/* The caller's id, cached for the pid it was computed in. */
static uint32_t self_pid;
static uint64_t self_serial;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

/* A child of fork() is another actor: forget the parent's id. */
static void self_forget(void)
{
	store32(&self_pid, 0, ORDER_RELAXED);
}

static void self_register(void)
{
	pthread_atfork(NULL, NULL, self_forget);
}

static int self_id(int32_t pid, uint8_t id[16])
{
	uint64_t boot, serial = 0;
	int ret, fd;

	ret = boot_id_prefix(&boot);
	if (ret < 0)
		return ret;
	/* Acquire: pairs with the release store of self_pid below. */
	if (load32(&self_pid, ORDER_ACQUIRE) == (uint32_t)pid) {
		serial = load64(&self_serial, ORDER_RELAXED);
	} else {
		pthread_once(&self_once, self_register);
		fd = sys_pidfd_open(pid);
		if (fd >= 0) {
			ret = actor_serial(fd, pid, &serial);
			close(fd);
		} else if (errno == ENOSYS) {
			/* Before Linux 5.3; we cannot be reaped meanwhile. */
			ret = proc_start_time(pid, &serial);
			serial = serial << 22 | (uint64_t)pid;
		} else {
			return shmcap__neg_errno();
		}
		if (ret < 0)
			return ret == -ENOENT || ret == -EMFILE ? ret : -EIO;
		/* Racing threads of one process store the same value. */
		store64(&self_serial, serial, ORDER_RELAXED);
		store32(&self_pid, (uint32_t)pid, ORDER_RELEASE);
	}
	id_store(id, boot, serial);
	return 0;
}

SHMCAP_EXPORT int shmcap_self(shmcap_actor_id *id)
{
	int32_t pid = (int32_t)getpid();
	int ret;

	if (id) {
		ret = self_id(pid, id->bytes);
		if (ret < 0)
			return ret;
	}
	return pid;
}

SHMCAP_EXPORT int shmcap_actor_id_format(const shmcap_actor_id *id, char *buf,
					 size_t size)
{
	static const char digits[] = "0123456789abcdef";
	int i;

	if (!id || !buf)
		return -EINVAL;
	if (size < SHMCAP_ACTOR_ID_TEXT)
		return -ENOSPC;
	for (i = 0; i < 16; i++) {
		buf[2 * i] = digits[id->bytes[i] >> 4];
		buf[2 * i + 1] = digits[id->bytes[i] & 15];
	}
	buf[32] = '\0';
	return 32;
}

SHMCAP_EXPORT int shmcap_actor_id_parse(const char *text, shmcap_actor_id *id)
{
	uint8_t bytes[16];
	int i, hi, lo;

	if (!text || !id)
		return -EINVAL;
	for (i = 0; i < 16; i++) {
		hi = hex_value(text[2 * i]);
		if (hi < 0)
			return -EINVAL;
		lo = hex_value(text[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	if (text[32] != '\0')
		return -EINVAL;
	memcpy(id->bytes, bytes, sizeof(bytes));
	return 0;
}

/* ------------------------------------------------------------------------
 * Actor capabilities
 */

/* Fill in cap's id, or leave it unknown and say why. */
static int actor_fill_id(shmcap_cap *cap)
{
	uint64_t boot, serial;
	int ret;

	ret = boot_id_prefix(&boot);
	if (ret == 0)
		ret = actor_serial(cap->fd, cap->pid, &serial);
	if (ret < 0)
		return ret;
	id_store(cap->id, boot, serial);
	cap->have_id = 1;
	return 0;
}

void shmcap__actor_copy(shmcap_cap *dst, const shmcap_cap *src)
{
	dst->pid = src->pid;
	dst->have_id = src->have_id;
	memcpy(dst->id, src->id, sizeof(dst->id));
	/* Relaxed: a snapshot; the status itself is a value, not a flag. */
	store64(&dst->waited, load64(&src->waited, ORDER_RELAXED),
		ORDER_RELAXED);
}

static int actor_check(const shmcap_cap *actor, uint32_t right)
{
	if (!actor || actor->type != SHMCAP_TYPE_ACTOR)
		return -EINVAL;
	return (actor->rights & right) == right ? 0 : -EACCES;
}

/* Whether fd is a pidfd: on pidfs, or an anonymous inode named so. */
static int is_pidfd(int fd)
{
	struct statfs sfs;

	if (fstatfs(fd, &sfs) < 0)
		return 0;
	if (sfs.f_type == PID_FS_MAGIC)
		return 1;
	return shmcap__fd_is_anon(fd, "pidfd");
}

/*
 * The pid of the process behind pidfd in our pid namespace: > 0, or 0 if
 * it has been reaped or lives outside our namespace.
 */
static int32_t pidfd_pid(int fd)
{
	struct actor_pidfd_info info;
	char path[48], buf[512], *p, *end;
	long v;

	memset(&info, 0, sizeof(info));
	info.mask = ACTOR_PIDFD_INFO_PID;
	if (ioctl(fd, ACTOR_PIDFD_GET_INFO, &info) == 0)
		return info.tgid > 0 && info.tgid <= INT32_MAX ?
			       (int32_t)info.tgid :
			       0;
	if (errno == ESRCH)
		return 0;
	/* Before Linux 6.13: the "Pid:" line of the descriptor's fdinfo. */
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return 0;
	p = strstr(buf, "\nPid:");
	if (!p)
		return 0;
	errno = 0;
	v = strtol(p + 5, &end, 10);
	if (errno || end == p + 5 || v <= 0 || v > INT32_MAX)
		return 0; /* -1: reaped; 0: not in /proc's namespace */
	return (int32_t)v;
}

int shmcap__actor_adopt(int fd, uint32_t claimed_rights, shmcap_cap **out)
{
	shmcap_cap *cap;
	int fl, ret;

	claimed_rights &= SHMCAP_RIGHTS_ACTOR;
	fl = fcntl(fd, F_GETFL);
	/* O_EXCL marks a pidfd of one thread (PIDFD_THREAD): not an actor. */
	if (!claimed_rights || fl < 0 || (fl & O_EXCL) || !is_pidfd(fd)) {
		close(fd);
		return -EBADMSG;
	}
	ret = shmcap__cap_new(fd, SHMCAP_TYPE_ACTOR, claimed_rights, &cap);
	if (ret < 0)
		return ret;
	/*
	 * A process that ended and was reaped is still an actor, just one
	 * that no longer runs: the capability reports it so (alive 0,
	 * signal -ESRCH). Its pid is then unknown, and so is its id where
	 * the kernel has no pidfs.
	 */
	cap->pid = pidfd_pid(fd);
	(void)actor_fill_id(cap);
	*out = cap;
	return 0;
}

SHMCAP_EXPORT int shmcap_actor_self(shmcap_cap **out)
{
	shmcap_cap *cap;
	int32_t pid;
	int fd, ret;

	if (!out)
		return -EINVAL;
	pid = (int32_t)getpid();
	fd = sys_pidfd_open(pid);
	if (fd < 0)
		return shmcap__neg_errno();
	ret = shmcap__cap_new(fd, SHMCAP_TYPE_ACTOR, SHMCAP_RIGHTS_ACTOR, &cap);
	if (ret < 0)
		return ret;
	cap->pid = pid;
	ret = self_id(pid, cap->id);
	if (ret < 0) {
		shmcap_cap_close(cap);
		return ret;
	}
	cap->have_id = 1;
	*out = cap;
	return 0;
}

SHMCAP_EXPORT int shmcap_actor_open(int32_t pid, const shmcap_actor_id *expect,
				    shmcap_cap **out)
{
	shmcap_cap *cap;
	int fd, ret;

	if (pid < 1 || !out)
		return -EINVAL;
	fd = sys_pidfd_open(pid);
	if (fd < 0) {
		/* EINVAL, ENOENT: pid names a thread, not a process. */
		if (errno == EINVAL || errno == ENOENT)
			return -ESRCH;
		return shmcap__neg_errno();
	}
	ret = shmcap__cap_new(fd, SHMCAP_TYPE_ACTOR, SHMCAP_RIGHTS_ACTOR, &cap);
	if (ret < 0)
		return ret;
	cap->pid = pid;
	/*
	 * Without pidfs the id needs /proc/PID/stat, which is gone if the
	 * process has just been reaped (-ESRCH: no such actor any more).
	 */
	ret = actor_fill_id(cap);
	if (ret < 0) {
		shmcap_cap_close(cap);
		return ret;
	}
	if (expect && memcmp(expect->bytes, cap->id, sizeof(cap->id)) != 0) {
		shmcap_cap_close(cap);
		return -ESRCH;
	}
	*out = cap;
	return 0;
}

SHMCAP_EXPORT int shmcap_actor_pid(const shmcap_cap *actor)
{
	if (!actor || actor->type != SHMCAP_TYPE_ACTOR)
		return -EINVAL;
	return actor->pid > 0 ? actor->pid : -ESRCH;
}

SHMCAP_EXPORT int shmcap_actor_id_of(const shmcap_cap *actor,
				     shmcap_actor_id *id)
{
	if (!actor || actor->type != SHMCAP_TYPE_ACTOR || !id)
		return -EINVAL;
	if (!actor->have_id)
		return -ESRCH;
	memcpy(id->bytes, actor->id, sizeof(id->bytes));
	return 0;
}

/* 1 if the process behind pidfd has ended (zombie or gone), 0, or -errno. */
static int pidfd_ended(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n;

	n = poll(&p, 1, 0);
	if (n < 0)
		return shmcap__neg_errno();
	if (n == 1 && (p.revents & POLLNVAL))
		return -EBADF;
	return n == 1 && (p.revents & (POLLIN | POLLHUP)) ? 1 : 0;
}

SHMCAP_EXPORT int shmcap_actor_alive(const shmcap_cap *actor)
{
	int ret = actor_check(actor, SHMCAP_RIGHT_WAIT);

	if (ret < 0)
		return ret;
	ret = pidfd_ended(actor->fd);
	return ret < 0 ? ret : !ret;
}

SHMCAP_EXPORT int shmcap_actor_signal(const shmcap_cap *actor, int sig)
{
	int ret = actor_check(actor, SHMCAP_RIGHT_SIGNAL);

	if (ret < 0)
		return ret;
	if (sig < 0 || sig >= NSIG)
		return -EINVAL;
	/*
	 * The kernel accepts signals for a zombie and drops them; for us it
	 * has ended. One that ends right after this check gets the signal
	 * dropped just the same.
	 */
	ret = pidfd_ended(actor->fd);
	if (ret < 0)
		return ret;
	if (ret)
		return -ESRCH;
	return sys_pidfd_signal(actor->fd, sig) < 0 ? shmcap__neg_errno() : 0;
}

/* A wait status (as waitpid() gives it) from waitid()'s siginfo. */
static int wait_status(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED:
		return (si->si_status & 0xff) << 8;
	case CLD_KILLED:
		return si->si_status & 0x7f;
	case CLD_DUMPED:
		return (si->si_status & 0x7f) | 0x80;
	default:
		return -1;
	}
}

SHMCAP_EXPORT int shmcap_actor_wait(shmcap_cap *actor, int64_t timeout_ns,
				    int *status)
{
	const struct timespec pause_ts = { 0, 1000000 };
	struct pollfd p;
	int64_t deadline;
	uint64_t waited;
	siginfo_t si;
	int n, ret;

	ret = actor_check(actor, SHMCAP_RIGHT_WAIT);
	if (ret < 0)
		return ret;
	deadline = shmcap__deadline(timeout_ns);
	for (;;) {
		/* Acquire: pairs with the release store after waitid(). */
		waited = load64(&actor->waited, ORDER_ACQUIRE);
		if (waited) {
			if (status)
				*status = (int)(uint32_t)waited;
			return 0;
		}
		p.fd = actor->fd;
		p.events = POLLIN;
		p.revents = 0;
		n = poll(&p, 1, shmcap__poll_ms(deadline));
		if (n < 0)
			return shmcap__neg_errno();
		if (n == 0)
			return -ETIMEDOUT;
		if (p.revents & POLLNVAL)
			return -EBADF;
		/*
		 * Ended. WNOHANG, because a pidfd made with PIDFD_NONBLOCK by
		 * whoever shares it would turn a blocking waitid() into
		 * EAGAIN anyway.
		 */
		memset(&si, 0, sizeof(si));
		n = waitid((idtype_t)P_PIDFD, (id_t)actor->fd, &si,
			   WEXITED | WNOHANG);
		if (n < 0 && errno == ECHILD) {
			/* Not ours to reap, or reaped by another first. */
			waited = load64(&actor->waited, ORDER_ACQUIRE);
			if (status)
				*status = waited ? (int)(uint32_t)waited : -1;
			return 0;
		}
		if (n < 0 && errno != EAGAIN)
			return shmcap__neg_errno();
		if (n == 0 && si.si_pid != 0) {
			waited = (uint64_t)1 << 32 | (uint32_t)wait_status(&si);
			store64(&actor->waited, waited, ORDER_RELEASE);
			if (status)
				*status = wait_status(&si);
			return 0;
		}
		/*
		 * Ended but not yet waitable by us (a tracer sees it first):
		 * look again shortly, within the deadline.
		 */
		if (deadline != INT64_MAX && shmcap__now_ns() >= deadline)
			return -ETIMEDOUT;
		nanosleep(&pause_ts, NULL);
	}
}

/* ------------------------------------------------------------------------
 * Spawning: the child
 */

/*
 * The kernel's struct sigaction for rt_sigaction(2), on the architectures
 * where it is handler, flags, restorer, mask (x86, arm, arm64, riscv,
 * powerpc, s390, loongarch).
 */
#if defined(__mips__) || defined(__alpha__) || defined(__sparc__) ||           \
	defined(__hppa__)
#error "shmcap: the kernel's sigaction layout of this architecture is not known"
#endif
struct actor_ksigaction {
	unsigned long handler;
	unsigned long flags;
	unsigned long restorer;
	uint64_t mask;
};

/* What the child needs, all prepared by the parent. */
struct spawn_args {
	char *const *paths; /* programs to try in turn (PATH search) */
	size_t npaths;
	char *const *argv;
	char *const *envp;
	char **holders; /* SHMCAP__PID_HOLDER places to write the pid at */
	size_t nholders;
	const int *src; /* capability i comes from src[i], each >= 3 + nfds */
	size_t nfds;
	sigset_t oldmask; /* the parent's mask, for the program */
	volatile int err; /* set by the child if it fails: its errno */
};

/*
 * The child shares the parent's memory and thread pointer, so sanitizer
 * instrumentation would update the parent thread's state from another
 * process: keep it out of this function, which calls nothing but raw
 * system calls through syscall(2).
 */
#if defined(__clang__)
/* Clang 14 honours the first for ThreadSanitizer only, the second for
 * everything but its function entry and exit hooks: both. */
#if __has_attribute(disable_sanitizer_instrumentation)
#define SPAWN_CHILD_ATTRS                                                      \
	__attribute__((noinline, disable_sanitizer_instrumentation,            \
		       no_sanitize("address", "thread", "undefined")))
#else
#define SPAWN_CHILD_ATTRS                                                      \
	__attribute__((noinline, no_sanitize("address", "thread", "undefined")))
#endif
#else
#define SPAWN_CHILD_ATTRS                                                      \
	__attribute__((noinline, no_sanitize_address, no_sanitize_thread,      \
		       no_sanitize_undefined))
#endif

/* Errors after which execvp() tries the next directory of PATH. */
#define SPAWN_TRY_NEXT(e)                                                      \
	((e) == ENOENT || (e) == ESTALE || (e) == ENOTDIR || (e) == ENODEV ||  \
	 (e) == ETIMEDOUT)

SPAWN_CHILD_ATTRS static int spawn_child(void *arg)
{
	struct spawn_args *a = arg;
	struct actor_ksigaction ks;
	volatile char *holder;
	unsigned long long lim[2];
	char digits[10];
	long pid, fd, max;
	int sig, k, err = 0, eacces = 0;
	size_t i;

	/*
	 * No handler of the parent may run here: reset every caught signal
	 * to its default while all are still blocked. Ignored ones stay
	 * ignored, as across execve().
	 */
	for (sig = 1; sig <= 64; sig++) {
		if (syscall(SYS_rt_sigaction, (long)sig, NULL, &ks, 8L) != 0)
			continue;
		if (ks.handler == (unsigned long)SIG_DFL ||
		    ks.handler == (unsigned long)SIG_IGN)
			continue;
		ks.handler = (unsigned long)SIG_DFL;
		ks.flags = 0;
		ks.restorer = 0;
		ks.mask = 0;
		syscall(SYS_rt_sigaction, (long)sig, &ks, NULL, 8L);
	}

	pid = syscall(SYS_getpid);
	for (k = 9; k >= 0; k--, pid /= 10)
		digits[k] = (char)('0' + pid % 10);
	/* volatile: a plain loop could become a call to memcpy(). */
	for (i = 0; i < a->nholders; i++) {
		holder = a->holders[i];
		for (k = 0; k < 10; k++)
			holder[k] = digits[k];
	}

	for (i = 0; i < a->nfds; i++) {
		if (syscall(SYS_dup3, (long)a->src[i], (long)(3 + i), 0L) < 0) {
			err = errno;
			goto fail;
		}
	}
	if (syscall(SYS_close_range, (long)(3 + a->nfds), (long)~0U, 0L) < 0) {
		/* Before Linux 5.9: close them one by one. */
		max = 65536;
		if (syscall(SYS_prlimit64, 0L, (long)RLIMIT_NOFILE, NULL,
			    lim) == 0 &&
		    lim[0] < (1u << 20))
			max = (long)lim[0];
		for (fd = (long)(3 + a->nfds); fd < max; fd++)
			syscall(SYS_close, fd);
	}

	syscall(SYS_rt_sigprocmask, (long)SIG_SETMASK, &a->oldmask, NULL, 8L);
	for (i = 0; i < a->npaths; i++) {
		syscall(SYS_execve, a->paths[i], a->argv, a->envp);
		err = errno;
		if (err == EACCES)
			eacces = 1;
		else if (!SPAWN_TRY_NEXT(err))
			goto fail;
	}
	/* As execvp(): EACCES if any directory refused, else the last. */
	if (eacces)
		err = EACCES;
	if (!err)
		err = ENOENT;
fail:
	a->err = err ? err : EIO;
	syscall(SYS_exit_group, 127L);
	return 127;
}

/* ------------------------------------------------------------------------
 * Spawning: the parent
 */

typedef int (*clone_fn_t)(int (*)(void *), void *, int, void *, ...);

/*
 * ThreadSanitizer intercepts clone() and treats it as fork(), resetting
 * its own state in the child; with CLONE_VM that state is the parent's.
 * Its builds call the C library's clone() past the interceptor.
 */
static clone_fn_t spawn_clone(void)
{
#ifdef ACTOR_TSAN
	static clone_fn_t real;
	clone_fn_t fn = __atomic_load_n(&real, __ATOMIC_RELAXED);

	void *sym;

	if (!fn) {
		sym = dlsym(RTLD_NEXT, "clone");
		if (sym)
			memcpy(&fn, &sym, sizeof(fn));
		else
			fn = clone;
		__atomic_store_n(&real, fn, __ATOMIC_RELAXED);
	}
	return fn;
#else
	return clone;
#endif
}

/* Letters, digits and "._-/", 1 to max bytes. */
static int name_valid(const char *name, size_t max)
{
	size_t i;
	char c;

	for (i = 0; name[i]; i++) {
		c = name[i];
		if (i >= max)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-' || c == '/'))
			return 0;
	}
	return i > 0;
}

static int reserved_name(const char *name)
{
	return strncmp(name, "shmcap.", 7) == 0;
}

static int spawn_check_caps(const char *const names[], shmcap_cap *const caps[],
			    size_t ncaps)
{
	size_t i, j;

	if (ncaps > SHMCAP_SPAWN_MAX_CAPS)
		return -E2BIG;
	if (ncaps && (!names || !caps))
		return -EINVAL;
	for (i = 0; i < ncaps; i++) {
		if (!caps[i] || !names[i] || caps[i]->fd < 0 ||
		    !name_valid(names[i], SPAWN_NAME_MAX) ||
		    reserved_name(names[i]))
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (strcmp(names[i], names[j]) == 0)
				return -EINVAL;
	}
	return 0;
}

/* Everything shmcap_spawn() allocates, freed in one place. */
struct spawn_plan {
	char **env;
	char *caps_var;
	char **paths;
	char *path_buf;
	char **holders;
	int *src;
	int *moved; /* 1 where src[i] is our own copy, to close */
	size_t nsrc;
	void *stack;
	size_t stack_len;
};

static void spawn_plan_free(struct spawn_plan *p)
{
	size_t i;

	for (i = 0; i < p->nsrc; i++)
		if (p->moved && p->moved[i])
			close(p->src[i]);
	free(p->env);
	free(p->caps_var);
	free(p->paths);
	free(p->path_buf);
	free(p->holders);
	free(p->src);
	free(p->moved);
	if (p->stack)
		munmap(p->stack, p->stack_len);
}

/* The "NAME=" part of an environment string, for comparisons. */
static size_t env_name_len(const char *s)
{
	const char *eq = strchr(s, '=');

	return eq ? (size_t)(eq - s) + 1 : strlen(s);
}

/*
 * The child's environment: the given one without the variables the
 * library sets (SHMCAP_CAPS, SHMCAP_PRIVILEGE and any the privilege layer
 * supplies), then caps_var, then the privilege layer's strings.
 */
static int spawn_build_env(struct spawn_plan *p, char *const envp[],
			   const struct shmcap__spawn_extra *x)
{
	size_t n = 0, k = 0, i, j, len;
	int drop;

	while (envp[n])
		n++;
	p->env = calloc(n + 2 + x->nenv, sizeof(char *));
	if (!p->env)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		len = env_name_len(envp[i]);
		drop = strncmp(envp[i], "SHMCAP_CAPS=", len) == 0 ||
		       strncmp(envp[i], "SHMCAP_PRIVILEGE=", len) == 0;
		for (j = 0; j < x->nenv && !drop; j++)
			if (env_name_len(x->env[j]) == len &&
			    strncmp(envp[i], x->env[j], len) == 0)
				drop = 1;
		if (!drop)
			p->env[k++] = envp[i];
	}
	p->env[k++] = p->caps_var;
	for (j = 0; j < x->nenv; j++)
		p->env[k++] = x->env[j];
	p->env[k] = NULL;
	return 0;
}

/* "SHMCAP_CAPS=@@@@@@@@@@;NAME:FD:TYPE:RIGHTS,..." for the n caps. */
static int spawn_build_caps_var(struct spawn_plan *p, const char *const names[],
				shmcap_cap *const caps[], size_t n)
{
	size_t i, size = sizeof("SHMCAP_CAPS=" SHMCAP__PID_HOLDER ";");
	char *s;
	int len;

	for (i = 0; i < n; i++)
		size += strlen(names[i]) + 40;
	p->caps_var = malloc(size);
	if (!p->caps_var)
		return -ENOMEM;
	s = p->caps_var;
	s += sprintf(s, "SHMCAP_CAPS=" SHMCAP__PID_HOLDER ";");
	for (i = 0; i < n; i++) {
		len = sprintf(s, "%s%s:%zu:%u:%u", i ? "," : "", names[i],
			      3 + i, caps[i]->type, caps[i]->rights);
		s += len;
	}
	return 0;
}

/* Every SHMCAP__PID_HOLDER in caps_var and in x's strings. */
static int spawn_find_holders(struct spawn_plan *p,
			      const struct shmcap__spawn_extra *x,
			      size_t *count)
{
	const size_t hl = sizeof(SHMCAP__PID_HOLDER) - 1;
	size_t n = 0, i, room = 1;
	char *s;

	for (i = 0; i < x->nenv; i++)
		for (s = strstr(x->env[i], SHMCAP__PID_HOLDER); s;
		     s = strstr(s + hl, SHMCAP__PID_HOLDER))
			room++;
	p->holders = calloc(room, sizeof(char *));
	if (!p->holders)
		return -ENOMEM;
	p->holders[n++] = p->caps_var + strlen("SHMCAP_CAPS=");
	for (i = 0; i < x->nenv; i++)
		for (s = strstr(x->env[i], SHMCAP__PID_HOLDER); s;
		     s = strstr(s + hl, SHMCAP__PID_HOLDER))
			p->holders[n++] = s;
	*count = n;
	return 0;
}

/*
 * The paths to try: file itself, or with SHMCAP_SPAWN_PATH and no '/' in
 * it, file in each directory of the caller's PATH ("/bin:/usr/bin" if
 * unset; an empty entry is the current directory), as execvp() does.
 */
static int spawn_build_paths(struct spawn_plan *p, const char *file,
			     unsigned int flags, size_t *count)
{
	const char *path, *dir, *end;
	size_t flen, n = 0, dlen, room;
	char *w;

	if (!(flags & SHMCAP_SPAWN_PATH) || strchr(file, '/')) {
		p->paths = calloc(2, sizeof(char *));
		if (!p->paths)
			return -ENOMEM;
		p->paths[0] = (char *)file;
		*count = 1;
		return 0;
	}
	if (!*file)
		return -ENOENT;
	path = getenv("PATH");
	if (!path)
		path = "/bin:/usr/bin";
	flen = strlen(file);
	/* One entry more than there are colons, and the NULL. */
	room = 2;
	for (dir = path; *dir; dir++)
		room += *dir == ':';
	p->paths = calloc(room, sizeof(char *));
	p->path_buf = malloc(strlen(path) + room * (flen + 2));
	if (!p->paths || !p->path_buf)
		return -ENOMEM;
	w = p->path_buf;
	for (dir = path;; dir = end + 1) {
		end = strchr(dir, ':');
		if (!end)
			end = dir + strlen(dir);
		dlen = (size_t)(end - dir);
		/* Longer than PATH_MAX: execvp() skips such entries. */
		if (dlen + flen + 2 <= PATH_MAX) {
			p->paths[n++] = w;
			if (dlen) {
				memcpy(w, dir, dlen);
				w += dlen;
				*w++ = '/';
			}
			memcpy(w, file, flen + 1);
			w += flen + 1;
		}
		if (!*end)
			break;
	}
	if (!n)
		return -ENOENT;
	*count = n;
	return 0;
}

/*
 * Source descriptors for the n caps: each >= 3 + n, moving those below
 * (our copies are close-on-exec, and closed after the spawn).
 */
static int spawn_move_sources(struct spawn_plan *p, shmcap_cap *const caps[],
			      size_t n)
{
	size_t i;
	int fd;

	p->src = calloc(n ? n : 1, sizeof(int));
	p->moved = calloc(n ? n : 1, sizeof(int));
	if (!p->src || !p->moved)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		fd = caps[i]->fd;
		if (fd >= (int)(3 + n)) {
			p->src[p->nsrc++] = fd;
			continue;
		}
		fd = fcntl(fd, F_DUPFD_CLOEXEC, (int)(3 + n));
		if (fd < 0)
			return shmcap__neg_errno();
		p->moved[p->nsrc] = 1;
		p->src[p->nsrc++] = fd;
	}
	return 0;
}

/* Reap the child of a failed spawn, which has exited or is exiting. */
static void spawn_reap(int pidfd, pid_t pid)
{
	siginfo_t si;
	int r;

	do
		r = pidfd >= 0 ? waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si,
					WEXITED) :
				 waitid(P_PID, (id_t)pid, &si, WEXITED);
	while (r < 0 && errno == EINTR);
}

SHMCAP_EXPORT int shmcap_spawn(const char *file, char *const argv[],
			       char *const envp[], const char *const names[],
			       shmcap_cap *const caps[], size_t ncaps,
			       unsigned int flags, shmcap_cap **actor)
{
	static char *const no_env[] = { NULL }; /* after clearenv() */
	const char *all_names[SHMCAP_SPAWN_MAX_CAPS + SHMCAP__EXTRA_MAX];
	shmcap_cap *all_caps[SHMCAP_SPAWN_MAX_CAPS + SHMCAP__EXTRA_MAX];
	struct shmcap__spawn_extra x;
	struct spawn_plan plan;
	struct spawn_args a;
	shmcap_cap *cap = NULL;
	sigset_t all;
	size_t n, i;
	long page;
	int ret, pidfd = -1, clone_errno;
	pid_t pid;
	char *top;

	if (!file || !argv ||
	    (flags & ~(SHMCAP_SPAWN_PATH | SHMCAP_SPAWN_SUPERVISOR)))
		return -EINVAL;
	ret = spawn_check_caps(names, caps, ncaps);
	if (ret < 0)
		return ret;
	ret = shmcap__privilege_spawn_extra(flags, &x);
	if (ret < 0)
		return ret;

	memset(&plan, 0, sizeof(plan));
	memset(&a, 0, sizeof(a));
	ret = -EINVAL;
	if (x.ncaps > SHMCAP__EXTRA_MAX ||
	    x.nenv > sizeof(x.env) / sizeof(x.env[0]))
		goto out;
	n = 0;
	for (i = 0; i < ncaps; i++, n++) {
		all_names[n] = names[i];
		all_caps[n] = caps[i];
	}
	for (i = 0; i < x.ncaps; i++, n++) {
		if (!x.caps[i] || !x.names[i] ||
		    !name_valid(x.names[i], SPAWN_NAME_MAX))
			goto out;
		all_names[n] = x.names[i];
		all_caps[n] = x.caps[i];
	}

	if (!envp)
		envp = environ ? environ : no_env;
	ret = spawn_build_caps_var(&plan, all_names, all_caps, n);
	if (ret == 0)
		ret = spawn_build_env(&plan, envp, &x);
	if (ret == 0)
		ret = spawn_find_holders(&plan, &x, &a.nholders);
	if (ret == 0)
		ret = spawn_build_paths(&plan, file, flags, &a.npaths);
	if (ret == 0)
		ret = spawn_move_sources(&plan, all_caps, n);
	if (ret < 0)
		goto out;
	if (actor) {
		/* Allocated now: nothing may fail once the child runs. */
		ret = shmcap__cap_new(-1, SHMCAP_TYPE_ACTOR,
				      SHMCAP_RIGHTS_ACTOR, &cap);
		if (ret < 0)
			goto out;
	}
	page = sysconf(_SC_PAGESIZE);
	plan.stack_len = SPAWN_STACK_SIZE + (size_t)page;
	plan.stack = mmap(NULL, plan.stack_len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (plan.stack == MAP_FAILED) {
		plan.stack = NULL;
		ret = -ENOMEM;
		goto out;
	}
	/* A guard page: an overflow faults instead of writing below. */
	if (mprotect(plan.stack, (size_t)page, PROT_NONE) < 0) {
		ret = shmcap__neg_errno();
		goto out;
	}
	top = (char *)plan.stack + plan.stack_len;

	a.paths = plan.paths;
	a.argv = argv;
	a.envp = plan.env;
	a.holders = plan.holders;
	a.src = plan.src;
	a.nfds = n;
	a.err = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &a.oldmask);
	pid = spawn_clone()(spawn_child, top,
			    CLONE_PIDFD | CLONE_VM | CLONE_VFORK | SIGCHLD, &a,
			    &pidfd, NULL, NULL);
	clone_errno = errno;
	pthread_sigmask(SIG_SETMASK, &a.oldmask, NULL);

	if (pid < 0) {
		/* EINVAL: a kernel without CLONE_PIDFD that checks flags. */
		ret = clone_errno == EINVAL ? -ENOSYS : -clone_errno;
		goto out;
	}
	if (a.err) {
		spawn_reap(pidfd, pid);
		ret = -a.err;
		goto out_pidfd;
	}
	if (pidfd < 0) {
		/* Before Linux 5.2 the flag is ignored: no pidfd, no spawn. */
		kill(pid, SIGKILL);
		spawn_reap(-1, pid);
		ret = -ENOSYS;
		goto out;
	}
	if (cap) {
		cap->fd = pidfd;
		cap->pid = pid;
		(void)actor_fill_id(cap);
		*actor = cap;
		cap = NULL;
		pidfd = -1;
	}
	ret = pid;
out_pidfd:
	if (pidfd >= 0)
		close(pidfd);
out:
	free(cap);
	spawn_plan_free(&plan);
	shmcap__spawn_extra_free(&x);
	return ret;
}

/* ------------------------------------------------------------------------
 * The spawned actor's side: SHMCAP_CAPS
 */

struct env_entry {
	char name[SPAWN_NAME_MAX + 1];
	int fd;
	uint32_t type;
	uint32_t rights;
};

struct env_list {
	size_t n;
	struct env_entry e[];
};

/*
 * The list this process was started with, parsed and checked once: a
 * child of fork() inherits it (and the descriptors), while a program this
 * one executes starts afresh and finds its own list.
 */
static struct env_list *env_caps;

/*
 * A decimal number of 1 to 10 digits, at most max, at *s; *s is left at
 * the character after it.
 */
static int env_number(const char **s, uint64_t max, uint64_t *v)
{
	const char *p = *s;
	uint64_t x = 0;
	int digits = 0;

	while (*p >= '0' && *p <= '9' && digits < 10) {
		x = x * 10 + (uint64_t)(*p - '0');
		p++;
		digits++;
	}
	if (!digits || (*p >= '0' && *p <= '9') || x > max)
		return -EBADMSG;
	*s = p;
	*v = x;
	return 0;
}

static uint32_t env_type_rights(uint32_t type)
{
	switch (type) {
	case SHMCAP_TYPE_REGION:
		return SHMCAP_RIGHTS_REGION;
	case SHMCAP_TYPE_NOTIFIER:
		return SHMCAP_RIGHTS_NOTIFIER;
	case SHMCAP_TYPE_ACTOR:
		return SHMCAP_RIGHTS_ACTOR;
	default:
		return 0;
	}
}

/*
 * Parse "PPPPPPPPPP;NAME:FD:TYPE:RIGHTS,..." strictly. -ENOENT if PPPPPPPPPP
 * is not the caller's pid (the list was meant for another process).
 */
static int env_parse(const char *s, struct env_list **out)
{
	const size_t max = SHMCAP_SPAWN_MAX_CAPS + SHMCAP__EXTRA_MAX;
	struct env_list *list;
	struct env_entry *e;
	const char *p, *colon;
	uint64_t pid = 0, v;
	size_t i, len, room;
	int k;

	for (k = 0; k < 10; k++) {
		if (s[k] < '0' || s[k] > '9')
			return -EBADMSG;
		pid = pid * 10 + (uint64_t)(s[k] - '0');
	}
	if (s[10] != ';')
		return -EBADMSG;
	/* As many entries as commas and one, at most: no more memory. */
	room = s[11] ? 1 : 0;
	for (p = s + 11; *p && room <= max; p++)
		room += *p == ',';
	if (room > max)
		return -EBADMSG;
	list = malloc(sizeof(*list) + room * sizeof(list->e[0]));
	if (!list)
		return -ENOMEM;
	list->n = 0;
	p = s + 11;
	while (*p) {
		if (list->n == room)
			goto bad;
		e = &list->e[list->n];
		colon = strchr(p, ':');
		if (!colon)
			goto bad;
		len = (size_t)(colon - p);
		if (len == 0 || len > SPAWN_NAME_MAX)
			goto bad;
		memcpy(e->name, p, len);
		e->name[len] = '\0';
		if (!name_valid(e->name, SPAWN_NAME_MAX))
			goto bad;
		for (i = 0; i < list->n; i++)
			if (strcmp(list->e[i].name, e->name) == 0)
				goto bad;
		p = colon + 1;
		if (env_number(&p, INT_MAX, &v) || v < 3 || *p++ != ':')
			goto bad;
		e->fd = (int)v;
		if (env_number(&p, 255, &v) || !env_type_rights((uint32_t)v) ||
		    *p++ != ':')
			goto bad;
		e->type = (uint32_t)v;
		if (env_number(&p, 255, &v))
			goto bad;
		e->rights = (uint32_t)v;
		if (!e->rights || (e->rights & ~env_type_rights(e->type)))
			goto bad;
		list->n++;
		/* Entries are separated by ',', which never ends the list. */
		if (*p == ',' && p[1])
			p++;
		else if (*p)
			goto bad;
	}
	if (pid != (uint64_t)getpid()) {
		free(list);
		return -ENOENT;
	}
	*out = list;
	return 0;
bad:
	free(list);
	return -EBADMSG;
}

SHMCAP_EXPORT int shmcap_env_cap(const char *name, shmcap_cap **out)
{
	struct env_list *list, *expected = NULL;
	const char *s;
	size_t i;
	int ret, fd, fl;

	if (!name || !out)
		return -EINVAL;
	/* Acquire: pairs with the release in the exchange below. */
	list = __atomic_load_n(&env_caps, __ATOMIC_ACQUIRE);
	if (!list) {
		s = getenv("SHMCAP_CAPS");
		if (!s)
			return -ENOENT;
		ret = env_parse(s, &list);
		if (ret < 0)
			return ret;
		if (__atomic_compare_exchange_n(&env_caps, &expected, list, 0,
						__ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			/* First parse: programs we exec do not inherit them. */
			for (i = 0; i < list->n; i++) {
				fl = fcntl(list->e[i].fd, F_GETFD);
				if (fl >= 0 && !(fl & FD_CLOEXEC))
					fcntl(list->e[i].fd, F_SETFD,
					      fl | FD_CLOEXEC);
			}
		} else {
			free(list);
			list = expected;
		}
	}
	for (i = 0; i < list->n; i++)
		if (strcmp(list->e[i].name, name) == 0)
			break;
	if (i == list->n)
		return -ENOENT;
	fd = fcntl(list->e[i].fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return errno == EBADF ? -EBADMSG : shmcap__neg_errno();
	return shmcap__cap_adopt(fd, list->e[i].type, list->e[i].rights, out);
}
