/* SPDX-License-Identifier: MIT */
/*
 * probe: the shmcap objects of this host, found in /proc and /dev/shm.
 *
 * shmcap keeps no registry, so the tool reconstructs the picture from what
 * the kernel already shows (probe.h lists the sources). The scan goes
 * process by process: /proc/PID/status (command, user), /proc/PID/stat
 * (start time), /proc/PID/maps (the library, mapped regions),
 * /proc/PID/fd and fdinfo (held regions, the sockets of published names).
 * What one process shows is collected aside and committed only once all of
 * it was read, so a process that ends half way through is dropped whole
 * rather than listed with half its uses. A process whose maps the caller
 * may not read (another user's, without root) is counted in `skipped`
 * and otherwise ignored: the tool never fails because of other users.
 *
 * Regions are keyed by (device, inode): the only identity that is the same
 * in every process's view. Named regions are also taken from a listing of
 * /dev/shm, so that leftovers nobody maps appear (with no users). Each
 * region is then opened read-only once, through the first path that works
 * and still names the same inode (the name, a holder's descriptor, or a
 * mapper's map_files entry, the last for root only): fstat gives its size
 * and owner, mincore() on a read-only mapping its resident pages, and its
 * first bytes what lives inside.
 *
 * Every read is bounded: lines longer than LINE_MAX_LEN are skipped,
 * small files are read into fixed buffers, a datum is validated only up to
 * DATUM_READ_MAX bytes, and mincore() only up to RESIDENT_MAX. Odd /proc
 * content (a line that does not parse) is ignored, never trusted.
 */
#define _GNU_SOURCE
#include "probe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <shmcap.h>
#include <shmcap/abi.h>

#define MEMFD_PATH "/memfd:shmcap (deleted)"
#define SHM_PREFIX "/dev/shm/shmcap."
#define DELETED_SUFFIX " (deleted)"
#define SOCK_PREFIX "@shmcap-name-"
#define LIB_PREFIX "libshmcap.so"
#define LINE_MAX_LEN 8192
#define SMALL_FILE_MAX 16384
#define RESIDENT_MAX (1ULL << 30)
#define DATUM_READ_MAX (1u << 20)

/* A published name's socket, from /proc/net/unix. */
struct sock_name {
	unsigned long long ino;
	char name[SHMCAP_PUBLISHED_NAME_MAX + 1];
};

/* One use seen in a process, not yet committed. */
struct pending_use {
	unsigned long long dev, ino;
	int named;
	char name[256];
	int fd;
	unsigned long long addr, len;
	int writable;
	int have_stat; /* a descriptor: size, owner, mtime known */
	unsigned long long size;
	uid_t owner;
	double mtime;
};

/* What one process shows, collected before it is committed. */
struct pending {
	struct pending_use *uses;
	size_t nuses, cap;
	char **names;
	size_t nnames;
};

/* A line of /proc/PID/maps. */
struct maps_line {
	unsigned long long start, end, ino, dev;
	int writable;
	const char *path;
};

static int grow(void **arr, size_t *cap, size_t n, size_t elsize)
{
	size_t ncap;
	void *na;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	na = realloc(*arr, ncap * elsize);
	if (!na)
		return -ENOMEM;
	*arr = na;
	*cap = ncap;
	return 0;
}

/*
 * Read at most size - 1 bytes of path into buf, NUL-terminated. The
 * length, or a negative errno.
 */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t r;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (n < size - 1) {
		r = read(fd, buf + n, size - 1 - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			close(fd);
			return err;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	return (ssize_t)n;
}

static double clock_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double system_uptime(void)
{
	char buf[128];

	if (read_small("/proc/uptime", buf, sizeof(buf)) <= 0)
		return -1;
	return strtod(buf, NULL);
}

/*
 * Whether s is a region name shmcap could have made: printable ASCII other
 * than space and '/'. Anything else in /dev/shm is not shmcap's, and
 * printing it could smuggle terminal escapes into an operator's screen.
 */
static int valid_region_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++) {
		if (*s <= ' ' || *s > '~' || *s == '/')
			return 0;
	}
	return 1;
}

/* Published names: letters, digits and "._-/" (shmcap_name_publish). */
static int valid_published_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._-/", *s)))
			return 0;
	}
	return 1;
}

/* Replace what a terminal would interpret (control bytes) with '?'. */
static void printable(char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			*s = '?';
	}
}

/* A region path: 1 anonymous, 2 named (name set), 0 not a region. */
static int classify(const char *path, char *name, size_t size)
{
	size_t n, plen = strlen(SHM_PREFIX), slen = strlen(DELETED_SUFFIX);

	if (strcmp(path, MEMFD_PATH) == 0)
		return 1;
	if (strncmp(path, SHM_PREFIX, plen) != 0)
		return 0;
	n = strlen(path);
	/* An unlinked named region has lost its name: anonymous now. */
	if (n >= slen && strcmp(path + n - slen, DELETED_SUFFIX) == 0)
		return 1;
	if (n - plen == 0 || n - plen >= size ||
	    !valid_region_name(path + plen))
		return 0;
	memcpy(name, path + plen, n - plen + 1);
	return 2;
}

/* Parse a maps line in place (the newline removed). 0 or -1. */
static int parse_maps_line(char *line, struct maps_line *m)
{
	char perms[8];
	unsigned long long off;
	unsigned int maj, min;
	int pos = 0;
	size_t n = strlen(line);

	if (n && line[n - 1] == '\n')
		line[n - 1] = '\0';
	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &m->start, &m->end,
		   perms, &off, &maj, &min, &m->ino, &pos) != 7)
		return -1;
	if (pos <= 0 || (size_t)pos > strlen(line))
		pos = (int)strlen(line);
	m->dev = (unsigned long long)makedev(maj, min);
	m->writable = strlen(perms) > 1 && perms[1] == 'w';
	m->path = line + pos;
	return 0;
}

static int lib_path(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return strncmp(base, LIB_PREFIX, strlen(LIB_PREFIX)) == 0;
}

/* The published-name sockets of /proc/net/unix. */
static int read_sockets(struct sock_name **out, size_t *nout)
{
	struct sock_name *s = NULL;
	size_t n = 0, cap = 0, plen = strlen(SOCK_PREFIX);
	char *line = NULL;
	size_t lsize = 0;
	ssize_t len;
	FILE *f;

	*out = NULL;
	*nout = 0;
	f = fopen("/proc/net/unix", "re");
	if (!f)
		return 0; /* no names to find: not an error */
	while ((len = getline(&line, &lsize, f)) > 0) {
		unsigned long long ino;
		const char *path;
		int pos = 0;
		size_t nl;

		if (len > LINE_MAX_LEN)
			continue;
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %llu %n", &ino,
			   &pos) != 1 ||
		    pos <= 0)
			continue;
		path = line + pos;
		if (strncmp(path, SOCK_PREFIX, plen) != 0)
			continue;
		nl = strlen(path + plen);
		if (nl == 0 || nl > SHMCAP_PUBLISHED_NAME_MAX ||
		    !valid_published_name(path + plen))
			continue;
		if (grow((void **)&s, &cap, n, sizeof(*s)) < 0) {
			free(line);
			free(s);
			fclose(f);
			return -ENOMEM;
		}
		s[n].ino = ino;
		memcpy(s[n].name, path + plen, nl + 1);
		n++;
	}
	free(line);
	fclose(f);
	*out = s;
	*nout = n;
	return 0;
}

static void pending_clear(struct pending *pd)
{
	size_t i;

	for (i = 0; i < pd->nnames; i++)
		free(pd->names[i]);
	free(pd->names);
	free(pd->uses);
	memset(pd, 0, sizeof(*pd));
}

static struct pending_use *pending_add(struct pending *pd)
{
	struct pending_use *u;

	if (grow((void **)&pd->uses, &pd->cap, pd->nuses, sizeof(*u)) < 0)
		return NULL;
	u = &pd->uses[pd->nuses++];
	memset(u, 0, sizeof(*u));
	u->fd = -1;
	u->owner = (uid_t)-1;
	u->size = PROBE_UNKNOWN;
	return u;
}

static int pending_add_name(struct pending *pd, const char *name)
{
	char **nn;
	size_t i;

	for (i = 0; i < pd->nnames; i++) {
		if (strcmp(pd->names[i], name) == 0)
			return 0;
	}
	nn = realloc(pd->names, (pd->nnames + 1) * sizeof(*nn));
	if (!nn)
		return -ENOMEM;
	pd->names = nn;
	nn[pd->nnames] = strdup(name);
	if (!nn[pd->nnames])
		return -ENOMEM;
	pd->nnames++;
	return 0;
}

/*
 * The regions pid maps, and whether it maps the library. -EACCES when the
 * caller may not look, -ESRCH when it has gone, -ENOMEM.
 */
static int scan_maps(pid_t pid, struct pending *pd, int *links_lib)
{
	char path[64], name[256];
	char *line = NULL;
	size_t lsize = 0;
	ssize_t len;
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == EACCES || errno == EPERM ? -EACCES : -ESRCH;
	errno = 0;
	while ((len = getline(&line, &lsize, f)) > 0) {
		struct maps_line m;
		struct pending_use *u;
		int kind;

		if (len > LINE_MAX_LEN || parse_maps_line(line, &m) < 0)
			continue;
		if (lib_path(m.path)) {
			*links_lib = 1;
			continue;
		}
		kind = classify(m.path, name, sizeof(name));
		if (!kind)
			continue;
		u = pending_add(pd);
		if (!u) {
			ret = -ENOMEM;
			break;
		}
		u->dev = m.dev;
		u->ino = m.ino;
		u->named = kind == 2;
		if (u->named)
			snprintf(u->name, sizeof(u->name), "%s", name);
		u->addr = m.start;
		u->len = m.end - m.start;
		u->writable = m.writable;
	}
	if (!ret && ferror(f))
		ret = errno == EACCES || errno == EPERM ? -EACCES : -ESRCH;
	free(line);
	fclose(f);
	return ret;
}

/* The flags of pid's descriptor fd (fdinfo), or -1. */
static long fd_flags(pid_t pid, const char *fd)
{
	char path[320], buf[1024];
	const char *s;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)pid, fd);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	s = strstr(buf, "flags:");
	if (!s)
		return -1;
	return strtol(s + 6, NULL, 8);
}

/*
 * The regions pid holds descriptors of, and the names it publishes.
 * -EACCES, -ESRCH or -ENOMEM.
 */
static int scan_fds(pid_t pid, struct pending *pd,
		    const struct sock_name *socks, size_t nsocks)
{
	char path[64], link[320], name[256], fdpath[320];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return errno == EACCES || errno == EPERM ? -EACCES : -ESRCH;
	while ((de = readdir(d)) != NULL) {
		struct pending_use *u;
		unsigned long long ino;
		struct stat st;
		ssize_t n;
		long flags;
		size_t i;
		int kind;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (nsocks && sscanf(link, "socket:[%llu]", &ino) == 1) {
			for (i = 0; i < nsocks; i++) {
				if (socks[i].ino != ino)
					continue;
				ret = pending_add_name(pd, socks[i].name);
				if (ret < 0)
					goto out;
			}
			continue;
		}
		kind = classify(link, name, sizeof(name));
		if (!kind)
			continue;
		snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd/%s", (int)pid,
			 de->d_name);
		if (stat(fdpath, &st) < 0)
			continue; /* closed meanwhile */
		u = pending_add(pd);
		if (!u) {
			ret = -ENOMEM;
			goto out;
		}
		u->dev = (unsigned long long)st.st_dev;
		u->ino = (unsigned long long)st.st_ino;
		u->named = kind == 2;
		if (u->named)
			snprintf(u->name, sizeof(u->name), "%s", name);
		u->fd = atoi(de->d_name);
		flags = fd_flags(pid, de->d_name);
		u->writable = flags >= 0 && (flags & O_ACCMODE) == O_RDWR;
		u->have_stat = 1;
		u->size = (unsigned long long)st.st_size;
		u->owner = st.st_uid;
		u->mtime = (double)st.st_mtim.tv_sec +
			   (double)st.st_mtim.tv_nsec / 1e9;
	}
out:
	closedir(d);
	return ret;
}

/* Command name, effective uid, uptime. -ESRCH if it has gone. */
static int scan_status(pid_t pid, struct probe_proc *pr, double uptime)
{
	char path[64], buf[SMALL_FILE_MAX];
	char *s, *e;
	long ticks = sysconf(_SC_CLK_TCK);
	unsigned int ruid, euid;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return -ESRCH;
	s = strstr(buf, "Name:\t");
	if (s) {
		s += 6;
		e = strchr(s, '\n');
		if (e)
			*e = '\0';
		snprintf(pr->comm, sizeof(pr->comm), "%s", s);
		printable(pr->comm);
		if (e)
			*e = '\n';
	}
	s = strstr(buf, "\nUid:\t");
	if (!s || sscanf(s + 6, "%u %u", &ruid, &euid) != 2)
		return -ESRCH;
	pr->uid = (uid_t)euid;

	pr->uptime = -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return -ESRCH;
	s = strrchr(buf, ')');
	if (!s || ticks <= 0 || uptime < 0)
		return 0;
	/* Field 2 ends at s; field 22 (starttime) is 20 fields later. */
	s++;
	for (i = 0; i < 20 && s; i++) {
		s = strchr(s, ' ');
		if (s)
			s++;
	}
	if (s) {
		unsigned long long start = strtoull(s, NULL, 10);
		double up = uptime - (double)start / (double)ticks;

		pr->uptime = up < 0 ? 0 : up;
	}
	return 0;
}

static long find_region(const struct probe *p, unsigned long long dev,
			unsigned long long ino)
{
	size_t i;

	for (i = 0; i < p->nregions; i++) {
		if (p->regions[i].dev == dev && p->regions[i].ino == ino)
			return (long)i;
	}
	return -1;
}

static long add_region(struct probe *p, size_t *cap, unsigned long long dev,
		       unsigned long long ino)
{
	struct probe_region *r;
	long i = find_region(p, dev, ino);

	if (i >= 0)
		return i;
	if (grow((void **)&p->regions, cap, p->nregions, sizeof(*r)) < 0)
		return -ENOMEM;
	r = &p->regions[p->nregions];
	memset(r, 0, sizeof(*r));
	r->dev = dev;
	r->ino = ino;
	r->size = PROBE_UNKNOWN;
	r->resident = PROBE_UNKNOWN;
	r->owner = (uid_t)-1;
	r->age = -1;
	return (long)p->nregions++;
}

struct caps {
	size_t procs, regions, uses;
};

/* Commit a process's pending uses and names as the actor pr. */
static int commit(struct probe *p, struct caps *c, struct probe_proc *pr,
		  struct pending *pd, double now)
{
	size_t i, pi = p->nprocs;

	if (grow((void **)&p->procs, &c->procs, p->nprocs, sizeof(*pr)) < 0)
		return -ENOMEM;
	for (i = 0; i < pd->nuses; i++) {
		struct pending_use *u = &pd->uses[i];
		struct probe_region *r;
		struct probe_use *pu;
		long ri = add_region(p, &c->regions, u->dev, u->ino);

		if (ri < 0)
			return (int)ri;
		r = &p->regions[ri];
		if (u->named && !r->named) {
			r->named = 1;
			snprintf(r->name, sizeof(r->name), "%s", u->name);
		}
		if (u->have_stat) {
			r->size = u->size;
			r->owner = u->owner;
			r->age = now - u->mtime;
			if (r->age < 0)
				r->age = 0;
		}
		if (grow((void **)&p->uses, &c->uses, p->nuses, sizeof(*pu)) <
		    0)
			return -ENOMEM;
		pu = &p->uses[p->nuses++];
		pu->region = (size_t)ri;
		pu->proc = pi;
		pu->fd = u->fd;
		pu->addr = u->fd < 0 ? u->addr : 0;
		pu->len = u->fd < 0 ? u->len : 0;
		pu->writable = u->writable;
	}
	pr->names = pd->names;
	pr->nnames = pd->nnames;
	pd->names = NULL;
	pd->nnames = 0;
	p->procs[p->nprocs++] = *pr;
	return 0;
}

/* The named regions of /dev/shm, used or not. */
static int scan_shm(struct probe *p, struct caps *c, double now)
{
	struct dirent *de;
	DIR *d = opendir("/dev/shm");
	int ret = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		struct probe_region *r;
		struct stat st;
		long ri;

		if (strncmp(de->d_name, "shmcap.", 7) != 0 ||
		    !valid_region_name(de->d_name + 7) ||
		    strlen(de->d_name + 7) >= sizeof(r->name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) <
			    0 ||
		    !S_ISREG(st.st_mode))
			continue;
		ri = add_region(p, &c->regions, (unsigned long long)st.st_dev,
				(unsigned long long)st.st_ino);
		if (ri < 0) {
			ret = (int)ri;
			break;
		}
		r = &p->regions[ri];
		r->named = 1;
		snprintf(r->name, sizeof(r->name), "%s", de->d_name + 7);
		r->size = (unsigned long long)st.st_size;
		r->owner = st.st_uid;
		r->age = now - ((double)st.st_mtim.tv_sec +
				(double)st.st_mtim.tv_nsec / 1e9);
		if (r->age < 0)
			r->age = 0;
	}
	closedir(d);
	return ret;
}

/* Open path read-only if it is still the file (dev, ino); -1 if not. */
static int open_same(const char *path, unsigned long long dev,
		     unsigned long long ino, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) ||
	    (unsigned long long)st->st_dev != dev ||
	    (unsigned long long)st->st_ino != ino) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Open region ri through the first path that works; its path in r->path. */
static int open_region(const struct probe *p, size_t ri, struct stat *st)
{
	struct probe_region *r = &p->regions[ri];
	size_t i;
	int fd, pass;

	if (r->named) {
		snprintf(r->path, sizeof(r->path), SHM_PREFIX "%s", r->name);
		if (strlen(SHM_PREFIX) + strlen(r->name) < sizeof(r->path)) {
			fd = open_same(r->path, r->dev, r->ino, st);
			if (fd >= 0)
				return fd;
		}
	}
	/* Descriptors first: map_files needs CAP_SYS_ADMIN. */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < p->nuses; i++) {
			const struct probe_use *u = &p->uses[i];
			pid_t pid = p->procs[u->proc].pid;

			if (u->region != ri || (pass == 0) != (u->fd >= 0))
				continue;
			if (pass == 0)
				snprintf(r->path, sizeof(r->path),
					 "/proc/%d/fd/%d", (int)pid, u->fd);
			else
				snprintf(r->path, sizeof(r->path),
					 "/proc/%d/map_files/%llx-%llx",
					 (int)pid, u->addr, u->addr + u->len);
			fd = open_same(r->path, r->dev, r->ino, st);
			if (fd >= 0)
				return fd;
		}
	}
	r->path[0] = '\0';
	return -1;
}

static unsigned long long resident_bytes(int fd, unsigned long long size)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned long long n = 0;
	unsigned char *vec;
	size_t pages, i;
	void *a;

	if (size == 0)
		return 0;
	if (size > RESIDENT_MAX || page <= 0)
		return PROBE_UNKNOWN;
	pages = (size_t)((size + (unsigned long long)page - 1) /
			 (unsigned long long)page);
	a = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED)
		return PROBE_UNKNOWN;
	vec = malloc(pages);
	if (!vec || mincore(a, (size_t)size, vec) < 0) {
		free(vec);
		munmap(a, (size_t)size);
		return PROBE_UNKNOWN;
	}
	for (i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	munmap(a, (size_t)size);
	return n * (unsigned long long)page;
}

static size_t pread_full(int fd, void *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;

	while (n < len) {
		r = pread(fd, (char *)buf + n, len - n, (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	return n;
}

/* What lives at the start of the region, by magic number. */
static void detect_content(int fd, unsigned long long size, char *out,
			   size_t outsize)
{
	unsigned char head[16];
	uint32_t magic, dlen;
	uint16_t kind;
	size_t n = pread_full(fd, head, sizeof(head));
	shmcap_datum_reader *rd = NULL;
	void *frame;

	out[0] = '\0';
	if (n < 8)
		return;
	memcpy(&magic, head, 4);
	memcpy(&kind, head + 6, 2);
	if (magic == SHMCAP_CHANNEL_MAGIC) {
		if (kind == SHMCAP_CHANNEL_SPSC)
			snprintf(out, outsize, "channel-spsc");
		else if (kind == SHMCAP_CHANNEL_MPSC)
			snprintf(out, outsize, "channel-mpsc");
		else if (kind == SHMCAP_CHANNEL_BROADCAST)
			snprintf(out, outsize, "channel-broadcast");
		else
			snprintf(out, outsize, "channel");
		return;
	}
	if (magic == SHMCAP_SEM_MAGIC) {
		snprintf(out, outsize, "semaphore");
		return;
	}
	if (magic == SHMCAP_MUTEX_MAGIC) {
		snprintf(out, outsize, "mutex");
		return;
	}
	if (magic == SHMCAP_COND_MAGIC) {
		snprintf(out, outsize, "cond");
		return;
	}
	/* A datum frame: a little-endian length, then that many bytes. */
	dlen = (uint32_t)head[0] | (uint32_t)head[1] << 8 |
	       (uint32_t)head[2] << 16 | (uint32_t)head[3] << 24;
	if (dlen == 0 || dlen > DATUM_READ_MAX - 4 ||
	    (unsigned long long)dlen + 4 > size)
		return;
	frame = malloc((size_t)dlen + 4);
	if (!frame)
		return;
	if (pread_full(fd, frame, (size_t)dlen + 4) == (size_t)dlen + 4 &&
	    shmcap_datum_reader_new(frame, (size_t)dlen + 4, &rd) == 0) {
		snprintf(out, outsize, "datum");
		shmcap_datum_reader_free(rd);
	}
	free(frame);
}

static void inspect_regions(struct probe *p, double now)
{
	size_t i;

	for (i = 0; i < p->nregions; i++) {
		struct probe_region *r = &p->regions[i];
		struct stat st;
		int fd = open_region(p, i, &st);

		if (fd < 0)
			continue;
		r->size = (unsigned long long)st.st_size;
		r->owner = st.st_uid;
		r->age = now - ((double)st.st_mtim.tv_sec +
				(double)st.st_mtim.tv_nsec / 1e9);
		if (r->age < 0)
			r->age = 0;
		r->resident = resident_bytes(fd, r->size);
		detect_content(fd, r->size, r->content, sizeof(r->content));
		close(fd);
	}
}

static void identify_actors(struct probe *p)
{
	size_t i;

	for (i = 0; i < p->nprocs; i++) {
		struct probe_proc *pr = &p->procs[i];
		shmcap_actor_id id;
		shmcap_cap *cap = NULL;
		int r;

		pr->id[0] = '\0';
		pr->privilege = -1;
		if (shmcap_actor_open(pr->pid, NULL, &cap) < 0)
			continue;
		if (shmcap_actor_id_of(cap, &id) == 0 &&
		    shmcap_actor_id_format(&id, pr->id, sizeof(pr->id)) < 0)
			pr->id[0] = '\0';
		r = shmcap_privilege(cap);
		pr->privilege = r < 0 ? -1 : r;
		shmcap_cap_close(cap);
	}
}

/* Sorting: procs by pid; regions named first by name, then by inode. */
static int cmp_proc(const void *a, const void *b, void *arg)
{
	const struct probe *p = arg;
	pid_t x = p->procs[*(const size_t *)a].pid;
	pid_t y = p->procs[*(const size_t *)b].pid;

	return (x > y) - (x < y);
}

static int cmp_region(const void *a, const void *b, void *arg)
{
	const struct probe *p = arg;
	const struct probe_region *x = &p->regions[*(const size_t *)a];
	const struct probe_region *y = &p->regions[*(const size_t *)b];

	if (x->named != y->named)
		return y->named - x->named;
	if (x->named)
		return strcmp(x->name, y->name);
	if (x->dev != y->dev)
		return (x->dev > y->dev) - (x->dev < y->dev);
	return (x->ino > y->ino) - (x->ino < y->ino);
}

static int cmp_use(const void *a, const void *b)
{
	const struct probe_use *x = a, *y = b;

	if (x->region != y->region)
		return (x->region > y->region) - (x->region < y->region);
	if (x->proc != y->proc)
		return (x->proc > y->proc) - (x->proc < y->proc);
	if (x->fd != y->fd)
		return (x->fd > y->fd) - (x->fd < y->fd);
	return (x->addr > y->addr) - (x->addr < y->addr);
}

/*
 * Sort the n elements of size bytes at base with cmp (given p), leaving
 * in inv[old index] each one's new index, so that the indexes the uses
 * hold can be renumbered. perm and tmp are scratch space for n elements.
 */
static void sort_renumber(void *base, size_t n, size_t size,
			  int (*cmp)(const void *, const void *, void *),
			  struct probe *p, size_t *perm, size_t *inv, void *tmp)
{
	size_t i;

	if (n == 0)
		return;
	for (i = 0; i < n; i++)
		perm[i] = i;
	qsort_r(perm, n, sizeof(*perm), cmp, p);
	for (i = 0; i < n; i++) {
		memcpy((char *)tmp + i * size, (char *)base + perm[i] * size,
		       size);
		inv[perm[i]] = i;
	}
	memcpy(base, tmp, n * size);
}

static int sort_all(struct probe *p)
{
	size_t n = p->nprocs > p->nregions ? p->nprocs : p->nregions;
	size_t *perm, *inv, i;
	void *tmp;

	if (n == 0)
		return 0;
	perm = calloc(n, sizeof(*perm));
	inv = calloc(n, sizeof(*inv));
	tmp = malloc(n *
		     (sizeof(struct probe_region) > sizeof(struct probe_proc) ?
			      sizeof(struct probe_region) :
			      sizeof(struct probe_proc)));
	if (!perm || !inv || !tmp) {
		free(perm);
		free(inv);
		free(tmp);
		return -ENOMEM;
	}

	sort_renumber(p->procs, p->nprocs, sizeof(*p->procs), cmp_proc, p, perm,
		      inv, tmp);
	for (i = 0; i < p->nuses; i++)
		p->uses[i].proc = inv[p->uses[i].proc];
	sort_renumber(p->regions, p->nregions, sizeof(*p->regions), cmp_region,
		      p, perm, inv, tmp);
	for (i = 0; i < p->nuses; i++)
		p->uses[i].region = inv[p->uses[i].region];

	if (p->nuses)
		qsort(p->uses, p->nuses, sizeof(*p->uses), cmp_use);
	for (i = 0; i < p->nuses; i++) {
		const struct probe_use *u = &p->uses[i];

		if (i > 0 && u->region == u[-1].region && u->proc == u[-1].proc)
			continue;
		p->regions[u->region].nusers++;
		p->procs[u->proc].nregions++;
	}
	free(perm);
	free(inv);
	free(tmp);
	return 0;
}

static int pid_entry(const char *s, pid_t *pid)
{
	char *end;
	long v;

	if (*s < '1' || *s > '9')
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end || errno || v <= 0 || v > INT32_MAX)
		return 0;
	*pid = (pid_t)v;
	return 1;
}

/*
 * Is pid this process, or another run of the shmcap command (the same
 * executable)? Neither is an actor: a `shmcap ls` that has a region open
 * for a moment to read its first bytes must not make a concurrent
 * `shmcap gc` think the region is in use.
 */
static int is_tool(pid_t pid)
{
	static dev_t dev;
	static ino_t ino;
	static int known = -1;
	char path[32];
	struct stat st;

	if (pid == getpid())
		return 1;
	if (known < 0) {
		known = stat("/proc/self/exe", &st) == 0;
		dev = st.st_dev;
		ino = st.st_ino;
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	return known && stat(path, &st) == 0 && st.st_dev == dev &&
	       st.st_ino == ino;
}

int probe_scan(struct probe *p)
{
	struct sock_name *socks = NULL;
	struct pending pd = { 0 };
	struct caps c = { 0, 0, 0 };
	size_t nsocks = 0;
	double now = clock_now(), uptime = system_uptime();
	struct dirent *de;
	DIR *d;
	int ret;

	memset(p, 0, sizeof(*p));
	d = opendir("/proc");
	if (!d)
		return -ENOENT;
	ret = read_sockets(&socks, &nsocks);
	if (ret < 0)
		goto fail;
	while ((de = readdir(d)) != NULL) {
		struct probe_proc pr;
		pid_t pid;
		int lib = 0, r;

		if (!pid_entry(de->d_name, &pid) || is_tool(pid))
			continue;
		memset(&pr, 0, sizeof(pr));
		pr.pid = pid;
		if (scan_status(pid, &pr, uptime) < 0)
			continue;
		r = scan_maps(pid, &pd, &lib);
		if (r == 0)
			r = scan_fds(pid, &pd, socks, nsocks);
		if (r == -ENOMEM) {
			ret = r;
			goto fail;
		}
		if (r == -EACCES)
			p->skipped++;
		if (r == 0 && (lib || pd.nuses || pd.nnames)) {
			pr.links_lib = lib;
			ret = commit(p, &c, &pr, &pd, now);
			if (ret < 0)
				goto fail;
		}
		pending_clear(&pd);
	}
	closedir(d);
	d = NULL;
	free(socks);
	socks = NULL;
	ret = scan_shm(p, &c, now);
	if (ret < 0)
		goto fail;
	ret = sort_all(p);
	if (ret < 0)
		goto fail;
	inspect_regions(p, now);
	identify_actors(p);
	return 0;
fail:
	pending_clear(&pd);
	if (d)
		closedir(d);
	free(socks);
	probe_free(p);
	return ret;
}

void probe_free(struct probe *p)
{
	size_t i, j;

	for (i = 0; i < p->nprocs; i++) {
		for (j = 0; j < p->procs[i].nnames; j++)
			free(p->procs[i].names[j]);
		free(p->procs[i].names);
	}
	free(p->procs);
	free(p->regions);
	free(p->uses);
	memset(p, 0, sizeof(*p));
}

long probe_find_proc(const struct probe *p, pid_t pid)
{
	size_t i;

	for (i = 0; i < p->nprocs; i++) {
		if (p->procs[i].pid == pid)
			return (long)i;
	}
	return -1;
}

long probe_find_named(const struct probe *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nregions; i++) {
		if (p->regions[i].named &&
		    strcmp(p->regions[i].name, name) == 0)
			return (long)i;
	}
	return -1;
}

long probe_count_uses(unsigned long long dev, unsigned long long ino)
{
	struct pending pd = { 0 };
	struct dirent *de;
	long n = 0;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return -ENOENT;
	while ((de = readdir(d)) != NULL) {
		pid_t pid;
		size_t i;
		int lib = 0, r;

		if (!pid_entry(de->d_name, &pid) || is_tool(pid))
			continue;
		r = scan_maps(pid, &pd, &lib);
		if (r == 0)
			r = scan_fds(pid, &pd, NULL, 0);
		if (r == -ENOMEM) {
			pending_clear(&pd);
			closedir(d);
			return r;
		}
		for (i = 0; r == 0 && i < pd.nuses; i++) {
			if (pd.uses[i].dev == dev && pd.uses[i].ino == ino)
				n++;
		}
		pending_clear(&pd);
	}
	closedir(d);
	return n;
}
