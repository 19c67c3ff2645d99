/* SPDX-License-Identifier: MIT */
/*
 * shmcap gc: remove the named regions that no live process uses.
 *
 *   shmcap gc [--dry-run] [--json] [NAME...]
 *
 * Named regions (/dev/shm/shmcap.NAME) outlive their processes: an actor
 * killed before it called shmcap_region_unlink() leaves its memory behind
 * until the next reboot. gc finds, through probe.h, those no process maps
 * or holds a descriptor of, and unlinks them: those the caller may
 * remove, or only the NAMEs given. Between the scan and the unlink a
 * process may open one, so right before each unlink it looks at every
 * process again for that (device, inode) and checks that the name still
 * leads to it; a region in use is never removed. What cannot be closed is the window in which a
 * program has created a region and not yet mapped it: see shmcap(1).
 *
 * Exit status: 0 when every candidate went, 4 when some could not be
 * removed only for lack of permission, 1 when a removal failed otherwise
 * or a NAME given is in use, 3 when a NAME given does not exist. With
 * --dry-run the status is the one predicted from the owners.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "probe.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMD "gc"
#define SHM_PREFIX "/dev/shm/shmcap."

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmcap gc [--dry-run] [--json] [NAME...]\n"
		"Remove the named regions (/dev/shm/shmcap.NAME) that no "
		"live process\nmaps or holds; only the NAMEs given, if any.\n"
		"  -n, --dry-run  list what would be removed, remove nothing\n"
		"  --json         one JSON array, an object per region\n"
		"  --help         this text\n");
}

static void user_name(uid_t uid, char *buf, size_t size)
{
	struct passwd *pw = getpwuid(uid);

	if (pw && pw->pw_name)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "%u", (unsigned int)uid);
}

/* Strip "shmcap." if the user gave the file's name rather than NAME. */
static const char *arg_name(const char *a)
{
	return strncmp(a, "shmcap.", 7) == 0 && a[7] ? a + 7 : a;
}

static int wanted(const char *name, char **names, int nnames)
{
	int i;

	if (nnames == 0)
		return 1;
	for (i = 0; i < nnames; i++) {
		if (strcmp(arg_name(names[i]), name) == 0)
			return 1;
	}
	return 0;
}

/*
 * Remove region r unless it came into use or was replaced since the scan:
 * 0, or a negative errno (-EBUSY in use, -ESTALE replaced).
 */
static int remove_region(const struct probe_region *r)
{
	char path[320];
	struct stat st;
	long n;

	snprintf(path, sizeof(path), SHM_PREFIX "%s", r->name);
	n = probe_count_uses(r->dev, r->ino);
	if (n < 0)
		return (int)n;
	if (n > 0)
		return -EBUSY;
	if (lstat(path, &st) < 0)
		return -errno;
	if ((unsigned long long)st.st_dev != r->dev ||
	    (unsigned long long)st.st_ino != r->ino)
		return -ESTALE;
	if (unlink(path) < 0)
		return -errno;
	return 0;
}

/* Whether the caller may unlink a file of owner in sticky /dev/shm. */
static int may_remove(uid_t owner)
{
	struct stat st;
	uid_t me = geteuid();

	if (me == 0 || me == owner)
		return 1;
	return stat("/dev/shm", &st) == 0 && st.st_uid == me;
}

int cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int json = 0, dry = 0, c, r, i, nnames;
	int failed = 0, denied = 0, missing = 0, busy = 0;
	json_t *arr = NULL;
	char **names;
	struct probe p;
	size_t k;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+njh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			dry = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(stdout);
			return CLI_OK;
		default:
			return cli_usage_error(CMD, usage,
					       "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	names = argv + optind;
	nnames = argc - optind;
	for (i = 0; i < nnames; i++) {
		if (!*arg_name(names[i]) || strchr(names[i], '/')) {
			return cli_usage_error(
				CMD, usage, "bad region name '%s'", names[i]);
		}
	}

	r = probe_scan(&p);
	if (r < 0) {
		cli_warn(CMD, "cannot scan /proc: %s", strerror(-r));
		return cli_exit_for(r);
	}
	for (i = 0; i < nnames; i++) {
		long ri = probe_find_named(&p, arg_name(names[i]));

		if (ri < 0) {
			cli_warn(CMD, "%s: no such region", names[i]);
			missing = 1;
		} else if (p.regions[ri].nusers) {
			cli_warn(CMD, "%s: in use by %d process%s, kept",
				 names[i], p.regions[ri].nusers,
				 p.regions[ri].nusers == 1 ? "" : "es");
			busy = 1;
		}
	}
	if (json) {
		arr = json_array();
		if (!arr) {
			probe_free(&p);
			cli_warn(CMD, "out of memory");
			return CLI_FAIL;
		}
	}
	for (k = 0; k < p.nregions; k++) {
		const struct probe_region *rg = &p.regions[k];
		const char *err = NULL;
		char size[32], owner[64], age[32];
		int removed = 0;

		if (!rg->named || rg->nusers ||
		    !wanted(rg->name, names, nnames))
			continue;
		/* Other users' leftovers are theirs to remove, unless named. */
		if (!nnames && !may_remove(rg->owner))
			continue;
		if (dry) {
			if (!may_remove(rg->owner)) {
				err = strerror(EACCES);
				denied = 1;
			}
		} else {
			r = remove_region(rg);
			if (r == 0) {
				removed = 1;
			} else if (r == -EBUSY) {
				err = "in use";
				if (nnames)
					busy = 1;
			} else if (r == -ESTALE || r == -ENOENT) {
				err = "replaced or removed meanwhile";
			} else if (r == -EACCES || r == -EPERM) {
				err = strerror(-r);
				denied = 1;
			} else {
				err = strerror(-r);
				failed = 1;
			}
		}
		if (json) {
			json_t *o = json_pack(
				"{s:s,s:o,s:i,s:o,s:b,s:o}", "name", rg->name,
				"size",
				rg->size == PROBE_UNKNOWN ?
					json_null() :
					json_integer((json_int_t)rg->size),
				"owner", (int)rg->owner, "age",
				rg->age >= 0 ? cli_json_seconds(rg->age) :
					       json_null(),
				"removed", removed, "error",
				err ? json_string(err) : json_null());

			if (!o || json_array_append_new(arr, o) < 0) {
				failed = 1;
				break;
			}
			continue;
		}
		if (removed) {
			printf("removed %s\n", rg->name);
		} else if (dry && !err) {
			cli_fmt_bytes(rg->size == PROBE_UNKNOWN ? 0 : rg->size,
				      size, sizeof(size));
			user_name(rg->owner, owner, sizeof(owner));
			cli_fmt_age(rg->age >= 0 ? rg->age : 0, age,
				    sizeof(age));
			printf("would remove %s (%s, owner %s, age %s)\n",
			       rg->name, size, owner, age);
		} else if (dry) {
			printf("would fail %s: %s\n", rg->name, err);
		} else {
			cli_warn(CMD, "%s: not removed: %s", rg->name, err);
		}
	}
	probe_free(&p);
	if (json && cli_json_print(arr) != CLI_OK)
		failed = 1;
	if (!json && fflush(stdout) != 0)
		failed = 1;
	if (failed || busy)
		return CLI_FAIL;
	if (denied)
		return CLI_PERM;
	if (missing)
		return CLI_NOTFOUND;
	return CLI_OK;
}
