/* SPDX-License-Identifier: MIT */
/*
 * shmcap dump: hex and text dump of a region range, with a decoded view
 * of a channel's control part or of a datum frame.
 *
 *   shmcap dump NAME|AID[:N] [--offset OFF] [--length LEN]
 *               [--channel] [--datum] [--json]
 *
 * NAME is a published name (shmcap_name_lookup(); the first region among
 * its capabilities) or, when nobody publishes NAME, a named region
 * (/dev/shm/shmcap.NAME). "name:NAME" forces the published name and
 * "named:NAME" the named region, as in `shmcap run --cap`, for a name
 * that is both or looks like an AID. AID is an actor (pid or
 * 32-hex-digit id); :N picks the Nth (from 0) of the regions it maps or
 * holds, in the order `shmcap ls` lists regions (named ones by name, then
 * anonymous ones), the first by default. The regions of an actor are
 * found by the probe (probe.h): through /proc/PID/fd and
 * /proc/PID/map_files, which only the actor's user (or root) may open.
 *
 * The region is read with pread(2) from a read-only descriptor, not
 * mapped: a named region may be truncated by anyone who may write it,
 * and a mapping would then kill this command with SIGBUS; pread just
 * returns fewer bytes. Everything read is data from a possibly hostile
 * writer: every field used to decode it is range-checked first (the
 * channel's geometry against the region's size, slot counts against the
 * slot array, a datum's length prefix against the bytes that exist), and
 * the datum is decoded by shmcap_datum_format(), which validates the
 * whole frame first.
 *
 * Output: hexdump -C style lines (offsets are region offsets; a run of
 * identical lines shows as "*"), then the decoded view: with --channel
 * the channel's control part (needs the channel magic at offset 0), with
 * --datum the frame at OFF, with neither whatever is recognised (the
 * channel magic at offset 0, a datum that validates at OFF). --json: one
 * object with the bytes in hex and the decoded views.
 *
 * This file also holds cli_regions_open(), which stat shares.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "probe.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <shmcap.h>

#define CMD "dump"
#define DEFAULT_LEN 256
#define DUMP_MAX (64ull << 20)	/* most bytes dumped at once */
#define DATUM_MAX (16ull << 20) /* largest frame decoded */
/* How long a published name's publisher has to answer a lookup. */
#define LOOKUP_TIMEOUT_NS (5 * 1000000000ll)

static void usage(FILE *f)
{
	fprintf(f, "usage: shmcap dump NAME|AID[:N] "
		   "[--offset OFF] [--length LEN]\n"
		   "                   [--channel] [--datum] [--json]\n"
		   "Hex dump of a region range and a decoded "
		   "view of a channel or\n"
		   "datum. NAME: a published name, else a "
		   "named region (name:NAME\n"
		   "forces the published name, named:NAME the "
		   "region); AID: a pid or\n"
		   "actor id, :N its Nth region (from 0) in "
		   "`shmcap ls` order.\n"
		   "  -o, --offset OFF  where to start "
		   "(default 0; K/M/G allowed)\n"
		   "  -l, --length LEN  how many bytes "
		   "(default 256, up to the end)\n"
		   "  -c, --channel     decode the channel control part\n"
		   "  -d, --datum       decode the datum frame at OFF\n"
		   "  -j, --json        one JSON object\n"
		   "  -h, --help        this text\n");
}

int cli_pread_all(int fd, void *buf, size_t len, unsigned long long off)
{
	size_t done = 0;
	ssize_t r;

	while (done < len) {
		r = pread(fd, (char *)buf + done, len - done,
			  (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (int)done;
}

/* "123", "123:4", 32 hex digits with optional ":4". */
static int looks_like_aid(const char *s)
{
	size_t n = strcspn(s, ":"), i;
	int digits = 1;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			digits = 0;
		if (!isxdigit((unsigned char)s[i]) ||
		    isupper((unsigned char)s[i]))
			return 0;
	}
	if (!digits && n != 32)
		return 0;
	if (digits && n > 10)
		return 0;
	if (s[n] == ':') {
		if (!s[n + 1])
			return 0;
		for (i = n + 1; s[i]; i++) {
			if (!isdigit((unsigned char)s[i]))
				return 0;
		}
	}
	return 1;
}

void cli_regions_close(struct cli_region *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (r[i].fd >= 0)
			close(r[i].fd);
	}
	free(r);
}

static int fd_size(int fd, unsigned long long *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	*size = (unsigned long long)st.st_size;
	return 0;
}

static int open_named(const char *cmd, const char *name,
		      struct cli_region **out, size_t *n)
{
	struct cli_region *r;
	shmcap_cap *cap = NULL;
	int ret, fd;

	ret = shmcap_region_open_named(name, SHMCAP_RIGHT_READ, &cap);
	if (ret < 0) {
		cli_warn(cmd, "region '%s': %s", name,
			 ret == -ENOENT ? "no such named region" :
					  shmcap_strerror(ret));
		return ret == -EINVAL || ret == -ENAMETOOLONG ?
			       CLI_USAGE :
			       cli_exit_for(ret);
	}
	fd = fcntl(shmcap_cap_fd(cap), F_DUPFD_CLOEXEC, 3);
	shmcap_cap_close(cap);
	r = calloc(1, sizeof(*r));
	if (fd < 0 || !r) {
		cli_warn(cmd, "region '%s': %s", name, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(r);
		return CLI_FAIL;
	}
	r->fd = fd;
	snprintf(r->label, sizeof(r->label), "%.180s", name);
	if (fd_size(fd, &r->size) < 0)
		r->size = 0;
	*out = r;
	*n = 1;
	return CLI_OK;
}

/* open_published(): quiet, and nobody publishes the name. */
#define NOT_PUBLISHED (-1)

/*
 * The regions among the capabilities the published name holds, in their
 * order (labelled NAME, NAME.1 ... as `shmcap run --cap X=name:NAME`
 * names them); all == 0: only the first, and none is an error. An exit
 * code, errors reported with cmd; with quiet, NOT_PUBLISHED and no
 * message when nobody publishes the name (the caller tries a named
 * region then).
 */
static int open_published(const char *cmd, const char *name, int quiet, int all,
			  struct cli_region **out, size_t *n)
{
	shmcap_cap *caps[SHMCAP_MSG_MAX_CAPS];
	struct cli_region *r;
	int got, i, fd, err = 0;
	size_t k = 0;

	got = shmcap_name_lookup(name, caps, SHMCAP_MSG_MAX_CAPS,
				 LOOKUP_TIMEOUT_NS);
	if (quiet && (got == -ENOENT || got == -EINVAL || got == -ENAMETOOLONG))
		return NOT_PUBLISHED;
	if (got < 0) {
		cli_warn(cmd, "name '%s': %s", name,
			 got == -ENOENT ? "nobody publishes it" :
					  shmcap_strerror(got));
		return got == -EINVAL || got == -ENAMETOOLONG ?
			       CLI_USAGE :
			       cli_exit_for(got);
	}
	r = calloc(got ? (size_t)got : 1, sizeof(*r));
	if (!r)
		err = ENOMEM;
	for (i = 0; !err && i < got; i++) {
		if (shmcap_cap_type(caps[i]) != SHMCAP_TYPE_REGION)
			continue;
		fd = fcntl(shmcap_cap_fd(caps[i]), F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			err = errno;
			break;
		}
		r[k].fd = fd;
		if (fd_size(fd, &r[k].size) < 0)
			r[k].size = 0;
		if (i == 0)
			snprintf(r[k].label, sizeof(r[k].label), "%.180s",
				 name);
		else
			snprintf(r[k].label, sizeof(r[k].label), "%.180s.%d",
				 name, i);
		k++;
	}
	for (i = 0; i < got; i++)
		shmcap_cap_close(caps[i]);
	if (!err && !all && k == 0) {
		cli_warn(cmd, "name '%s': it holds no region", name);
		err = -1;
	}
	if (err) {
		if (err > 0)
			cli_warn(cmd, "name '%s': %s", name, strerror(err));
		cli_regions_close(r, k);
		return CLI_FAIL;
	}
	/* Only the first region: close the others. */
	while (!all && k > 1)
		close(r[--k].fd);
	*out = r;
	*n = k;
	return CLI_OK;
}

/* Whether the process pid belongs to another user than the caller. */
static int foreign(int pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d", pid);
	return geteuid() != 0 && stat(path, &st) == 0 && st.st_uid != geteuid();
}

/*
 * Without a working probe: the regions pid holds as descriptors, in
 * descriptor order. Used only when probe_scan() is not available.
 */
static int fallback_regions(int pid, struct cli_region *r, size_t max,
			    size_t *n)
{
	char dir[64], path[330], link[256];
	unsigned long long ids[2 * 64];
	struct dirent *de;
	struct stat st;
	size_t k, nids = 0;
	ssize_t len;
	DIR *d;
	int fd;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	d = opendir(dir);
	if (!d)
		return -errno;
	*n = 0;
	while ((de = readdir(d)) && *n < max && nids < 64) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = 0;
		if (strncmp(link, "/memfd:shmcap", 13) != 0 &&
		    strncmp(link, "/dev/shm/shmcap.", 16) != 0)
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		for (k = 0; k < nids; k++) {
			if (ids[2 * k] == st.st_dev &&
			    ids[2 * k + 1] == st.st_ino)
				break;
		}
		if (k < nids) {
			close(fd);
			continue;
		}
		ids[2 * nids] = st.st_dev;
		ids[2 * nids + 1] = st.st_ino;
		nids++;
		r[*n].fd = fd;
		r[*n].size = (unsigned long long)st.st_size;
		snprintf(r[*n].label, sizeof(r[*n].label), "%d:%zu %.150s", pid,
			 *n,
			 strncmp(link, "/dev/shm/", 9) == 0 ? link + 9 :
							      "(anonymous)");
		(*n)++;
	}
	closedir(d);
	return 0;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* The regions of the actor pid, in probe (ls) order. */
static int actor_regions(const char *cmd, const char *arg, int pid,
			 struct cli_region *r, size_t max, size_t *n)
{
	struct probe p;
	size_t *idx = NULL, nidx = 0, i, k;
	long proc;
	int ret, fd;

	*n = 0;
	ret = probe_scan(&p);
	if (ret == -ENOSYS) {
		probe_free(&p);
		ret = fallback_regions(pid, r, max, n);
		if (ret < 0) {
			cli_warn(cmd, "%s: %s", arg, strerror(-ret));
			return cli_exit_for(ret);
		}
		goto check;
	}
	if (ret < 0) {
		cli_warn(cmd, "looking at the host: %s", strerror(-ret));
		return cli_exit_for(ret);
	}
	proc = probe_find_proc(&p, pid);
	if (proc >= 0)
		idx = calloc(p.nuses + 1, sizeof(*idx));
	for (i = 0; proc >= 0 && idx && i < p.nuses; i++) {
		if (p.uses[i].proc != (size_t)proc ||
		    p.uses[i].region >= p.nregions)
			continue;
		for (k = 0; k < nidx; k++) {
			if (idx[k] == p.uses[i].region)
				break;
		}
		if (k == nidx)
			idx[nidx++] = p.uses[i].region;
	}
	if (idx)
		qsort(idx, nidx, sizeof(*idx), cmp_size);
	for (i = 0; i < nidx && *n < max; i++) {
		const struct probe_region *pr = &p.regions[idx[i]];

		fd = pr->path[0] ? open(pr->path, O_RDONLY | O_CLOEXEC) : -1;
		r[*n].fd = fd;
		if (fd < 0 || fd_size(fd, &r[*n].size) < 0)
			r[*n].size = pr->size == PROBE_UNKNOWN ? 0 : pr->size;
		if (pr->named)
			snprintf(r[*n].label, sizeof(r[*n].label), "%.180s",
				 pr->name);
		else
			snprintf(r[*n].label, sizeof(r[*n].label), "%d:%zu",
				 pid, i);
		(*n)++;
	}
	free(idx);
	probe_free(&p);
check:
	if (*n == 0) {
		if (foreign(pid)) {
			cli_warn(cmd, "%s: another user's actor: %s", arg,
				 strerror(EACCES));
			return CLI_PERM;
		}
		cli_warn(cmd, "%s: the actor maps or holds no shmcap region",
			 arg);
		return CLI_NOTFOUND;
	}
	return CLI_OK;
}

/*
 * Open what arg names: the regions a published name holds, a named
 * region, or the regions of an actor (all != 0: every one; else the one
 * :N picks, the first by default; a published name: its first region).
 * A bare NAME is looked up as a published name first: a channel is
 * always an anonymous region, so for stat a published name is the only
 * way to reach one by name, and a named region of the same name is still
 * reachable as named:NAME.
 * An exit code; on success *out (free with cli_regions_close()) and *n.
 * An actor's region that could not be opened has fd -1.
 */
int cli_regions_open(const char *cmd, const char *arg, int all,
		     struct cli_region **out, size_t *n)
{
	struct cli_region *r;
	char aid[48];
	long pick = -1;
	size_t max = 256, got = 0;
	const char *colon;
	int pid, ret;

	*out = NULL;
	*n = 0;
	if (strncmp(arg, "named:", 6) == 0)
		return open_named(cmd, arg + 6, out, n);
	if (strncmp(arg, "name:", 5) == 0)
		return open_published(cmd, arg + 5, 0, all, out, n);
	if (!looks_like_aid(arg)) {
		/* A published name first, else a named region. */
		ret = open_published(cmd, arg, 1, all, out, n);
		return ret == NOT_PUBLISHED ? open_named(cmd, arg, out, n) :
					      ret;
	}

	colon = strchr(arg, ':');
	snprintf(aid, sizeof(aid), "%.*s",
		 (int)(colon ? (size_t)(colon - arg) : strlen(arg)), arg);
	if (colon) {
		pick = strtol(colon + 1, NULL, 10);
		if (pick < 0 || pick > 100000) {
			cli_warn(cmd, "bad region index in '%s'", arg);
			return CLI_USAGE;
		}
	}
	pid = cli_aid_open(aid, NULL);
	if (pid < 0) {
		cli_warn(cmd, "%s: %s", aid,
			 pid == -ESRCH ? "no such actor" :
					 shmcap_strerror(pid));
		return pid == -EINVAL ? CLI_USAGE : cli_exit_for(pid);
	}
	r = calloc(max, sizeof(*r));
	if (!r) {
		cli_warn(cmd, "out of memory");
		return CLI_FAIL;
	}
	ret = actor_regions(cmd, arg, pid, r, max, &got);
	if (ret != CLI_OK) {
		cli_regions_close(r, got);
		return ret;
	}
	if (!all) {
		size_t want = pick < 0 ? 0 : (size_t)pick, i;

		if (want >= got) {
			cli_warn(cmd,
				 "%s: the actor has %zu region%s (:0 to "
				 ":%zu)",
				 arg, got, got == 1 ? "" : "s", got - 1);
			cli_regions_close(r, got);
			return CLI_NOTFOUND;
		}
		for (i = 0; i < got; i++) {
			if (i != want && r[i].fd >= 0) {
				close(r[i].fd);
				r[i].fd = -1;
			}
		}
		if (want != 0)
			r[0] = r[want];
		got = 1;
		if (r[0].fd < 0) {
			cli_warn(cmd, "%s: cannot open the region: %s", arg,
				 strerror(EACCES));
			cli_regions_close(r, got);
			return CLI_PERM;
		}
	}
	*out = r;
	*n = got;
	return CLI_OK;
}

static int parse_num(const char *s, unsigned long long *out)
{
	unsigned long long v, mul = 1;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 0:
		break;
	case 'K':
		mul = 1ull << 10;
		break;
	case 'M':
		mul = 1ull << 20;
		break;
	case 'G':
		mul = 1ull << 30;
		break;
	default:
		return -EINVAL;
	}
	if (*end && end[1])
		return -EINVAL;
	if (v > ~0ull / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

/* hexdump -C: 16 bytes a line, identical lines after the first as "*". */
static void hexdump(const unsigned char *p, size_t len, unsigned long long base)
{
	size_t i, k;
	int starred = 0;

	for (i = 0; i < len; i += 16) {
		size_t n = len - i < 16 ? len - i : 16;

		if (i >= 16 && n == 16 && memcmp(p + i, p + i - 16, 16) == 0) {
			if (!starred)
				printf("*\n");
			starred = 1;
			continue;
		}
		starred = 0;
		printf("%08llx ", base + i);
		for (k = 0; k < 16; k++) {
			if (k == 8)
				putchar(' ');
			if (k < n)
				printf(" %02x", p[i + k]);
			else
				printf("   ");
		}
		printf("  |");
		for (k = 0; k < n; k++)
			putchar(isprint(p[i + k]) && p[i + k] < 0x7f ?
					p[i + k] :
					'.');
		printf("|\n");
	}
	printf("%08llx\n", base + len);
}

static json_t *hex_json(const unsigned char *p, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char *s = malloc(2 * len + 1);
	json_t *j;
	size_t i;

	if (!s)
		return NULL;
	for (i = 0; i < len; i++) {
		s[2 * i] = digits[p[i] >> 4];
		s[2 * i + 1] = digits[p[i] & 15];
	}
	s[2 * len] = 0;
	j = json_string(s);
	free(s);
	return j;
}

/*
 * The datum frame at off: 0 and its text in *text (malloc'd), or a
 * negative errno: -ENODATA no frame fits, else the decoder's error.
 */
static int read_datum(int fd, unsigned long long size, unsigned long long off,
		      char **text, unsigned long long *flen)
{
	unsigned char lenb[4];
	unsigned long long n;
	unsigned char *frame;
	char *out;
	int ret, tlen;

	*text = NULL;
	if (off > size || size - off < 5)
		return -ENODATA;
	if (cli_pread_all(fd, lenb, 4, off) != 4)
		return -ENODATA;
	n = (unsigned long long)lenb[0] | (unsigned long long)lenb[1] << 8 |
	    (unsigned long long)lenb[2] << 16 |
	    (unsigned long long)lenb[3] << 24;
	if (n == 0 || n > size - off - 4 || n > DATUM_MAX)
		return -ENODATA;
	frame = malloc(4 + n);
	if (!frame)
		return -ENOMEM;
	ret = cli_pread_all(fd, frame, 4 + n, off);
	if (ret != (int)(4 + n)) {
		free(frame);
		return -ENODATA;
	}
	tlen = shmcap_datum_format(frame, 4 + n, NULL, 0);
	if (tlen < 0) {
		free(frame);
		return tlen;
	}
	out = malloc((size_t)tlen + 1);
	if (!out) {
		free(frame);
		return -ENOMEM;
	}
	ret = shmcap_datum_format(frame, 4 + n, out, (size_t)tlen + 1);
	free(frame);
	if (ret < 0) {
		free(out);
		return ret;
	}
	*text = out;
	*flen = 4 + n;
	return 0;
}

int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "offset", required_argument, NULL, 'o' },
		{ "length", required_argument, NULL, 'l' },
		{ "channel", no_argument, NULL, 'c' },
		{ "datum", no_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long off = 0, len = DEFAULT_LEN, flen = 0;
	int want_chan = 0, want_datum = 0, json = 0, have_len = 0, c, ret;
	unsigned char ctrl[SHMCAP_CHANNEL_CTRL_SIZE];
	struct cli_region *r = NULL;
	unsigned char *buf = NULL;
	json_t *jo = NULL, *jchan = NULL;
	char *dtext = NULL;
	size_t n = 0;
	int got, is_chan = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:l:cdjh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (parse_num(optarg, &off) < 0) {
				cli_warn(CMD, "bad offset '%s'", optarg);
				return CLI_USAGE;
			}
			break;
		case 'l':
			if (parse_num(optarg, &len) < 0) {
				cli_warn(CMD, "bad length '%s'", optarg);
				return CLI_USAGE;
			}
			have_len = 1;
			break;
		case 'c':
			want_chan = 1;
			break;
		case 'd':
			want_datum = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(stdout);
			return CLI_OK;
		default:
			usage(stderr);
			return CLI_USAGE;
		}
	}
	if (optind != argc - 1) {
		return cli_usage_error(CMD, usage,
				       optind >= argc ? "no region given" :
							"one region at a time");
	}
	ret = cli_regions_open(CMD, argv[optind], 0, &r, &n);
	if (ret != CLI_OK)
		return ret;

	/* The range: inside the region; the default length is clipped. */
	if (off > r->size || (off == r->size && r->size > 0) ||
	    (have_len && len > r->size - off)) {
		cli_warn(CMD, "range %llu+%llu outside the region (%llu bytes)",
			 off, len, r->size);
		ret = CLI_USAGE;
		goto out;
	}
	if (len > r->size - off)
		len = r->size - off;
	if (len > DUMP_MAX) {
		cli_warn(CMD, "at most %llu bytes at a time", DUMP_MAX);
		ret = CLI_USAGE;
		goto out;
	}
	buf = malloc(len ? len : 1);
	if (!buf) {
		cli_warn(CMD, "out of memory");
		ret = CLI_FAIL;
		goto out;
	}
	got = cli_pread_all(r->fd, buf, len, off);
	if (got < 0) {
		cli_warn(CMD, "%s: %s", r->label, strerror(-got));
		ret = CLI_FAIL;
		goto out;
	}
	len = (unsigned long long)got; /* shrunk meanwhile: what exists */

	/* What lives there. */
	if (r->size >= sizeof(ctrl) &&
	    cli_pread_all(r->fd, ctrl, sizeof(ctrl), 0) == (int)sizeof(ctrl)) {
		uint32_t magic;

		memcpy(&magic, ctrl, sizeof(magic));
		is_chan = magic == SHMCAP_CHANNEL_MAGIC;
	}
	if (want_chan && !is_chan) {
		cli_warn(CMD,
			 "%s: not a channel (no channel magic at offset 0)",
			 r->label);
		ret = CLI_FAIL;
		goto out;
	}
	if (want_datum || (!want_chan && !is_chan)) {
		c = read_datum(r->fd, r->size, off, &dtext, &flen);
		if (c < 0 && want_datum) {
			cli_warn(CMD, "%s: no datum frame at %llu: %s",
				 r->label, off,
				 c == -ENODATA ? "the length prefix does not "
						 "fit the region" :
						 shmcap_strerror(c));
			ret = CLI_FAIL;
			goto out;
		}
	}
	if (want_datum && !want_chan)
		is_chan = 0;

	ret = CLI_OK;
	if (json) {
		jo = json_pack("{s:s,s:I,s:I,s:I,s:o}", "region", r->label,
			       "size", (json_int_t)r->size, "offset",
			       (json_int_t)off, "length", (json_int_t)len,
			       "data", hex_json(buf, len));
		if (is_chan) {
			if (cli_channel_print(ctrl, sizeof(ctrl), r->size, 1,
					      &jchan) != 0 &&
			    want_chan)
				ret = CLI_FAIL;
			if (jo && jchan)
				json_object_set_new(jo, "channel", jchan);
		}
		if (jo && dtext)
			json_object_set_new(jo, "datum",
					    json_pack("{s:I,s:I,s:s}", "offset",
						      (json_int_t)off, "size",
						      (json_int_t)flen, "text",
						      dtext));
		if (!jo) {
			cli_warn(CMD, "out of memory");
			ret = CLI_FAIL;
			goto out;
		}
		if (cli_json_print(jo) != CLI_OK)
			ret = CLI_FAIL;
		goto out;
	}
	printf("%s: %llu bytes, showing %llu at offset %llu\n", r->label,
	       r->size, len, off);
	hexdump(buf, len, off);
	if (is_chan) {
		printf("\n");
		if (cli_channel_print(ctrl, sizeof(ctrl), r->size, 1, NULL) !=
			    0 &&
		    want_chan)
			ret = CLI_FAIL;
	}
	if (dtext)
		printf("\ndatum at offset %llu (%llu bytes):\n%s\n", off, flen,
		       dtext);
	if (fflush(stdout) != 0)
		ret = CLI_FAIL;
out:
	free(dtext);
	free(buf);
	cli_regions_close(r, n);
	return ret;
}
