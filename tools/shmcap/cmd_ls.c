/* SPDX-License-Identifier: MIT */
/*
 * shmcap ls: every shmcap region on this host that the caller may see.
 *
 *   shmcap ls [--json]
 *
 * One line per region (probe.h finds them: memfds named "shmcap" in the
 * processes' mappings and descriptors, /dev/shm/shmcap.NAME files): its
 * name or "(anon)", size, resident memory, what lives at its start, the
 * processes using it with their rights ("1234(rw),5678(r)": rw when any
 * of its mappings or descriptors allows writing), owner and age. A named
 * region that no live process maps or holds shows "(unused)": what
 * `shmcap gc` would remove. --json gives every use separately (pid and
 * descriptor, or pid and address range) for scripts.
 *
 * Other users' processes are skipped, never an error: an anonymous region
 * only they use does not appear, and a named one shows fewer users; the
 * table ends with how many processes could not be inspected. So a caller
 * other than root who sees no user of a named region cannot call it
 * unused: it shows "(none seen)" ("unused": null in JSON) instead.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "probe.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "ls"
#define NCOLS 7

/* 1 unused, 0 used, -1 cannot tell (users the caller cannot see). */
static int unused_state(const struct probe *p, const struct probe_region *r)
{
	if (r->nusers)
		return 0;
	return geteuid() == 0 || p->skipped == 0 ? 1 : -1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmcap ls [--json]\n"
		"List the shmcap regions on this host: name, size, resident\n"
		"memory, content, users (pid and rights), owner, age.\n"
		"  --json   one JSON array, an object per region\n"
		"  --help   this text\n");
}

/* "1234(rw),5678(r)", or "(unused)"; malloc'd. Uses are sorted by proc. */
static char *users_text(const struct probe *p, size_t ri)
{
	size_t i, len = 0, cap = 64;
	char *s = malloc(cap), *ns;

	if (!s)
		return NULL;
	s[0] = '\0';
	for (i = 0; i < p->nuses; i++) {
		const struct probe_use *u = &p->uses[i];
		int w = 0;
		size_t j;
		char item[32];
		int n;

		if (u->region != ri)
			continue;
		if (i > 0 && p->uses[i - 1].region == ri &&
		    p->uses[i - 1].proc == u->proc)
			continue;
		for (j = i; j < p->nuses && p->uses[j].region == ri &&
			    p->uses[j].proc == u->proc;
		     j++)
			w |= p->uses[j].writable;
		n = snprintf(item, sizeof(item), "%s%d(%s)", len ? "," : "",
			     (int)p->procs[u->proc].pid, w ? "rw" : "r");
		if (len + (size_t)n + 1 > cap) {
			cap = (len + (size_t)n + 1) * 2;
			ns = realloc(s, cap);
			if (!ns) {
				free(s);
				return NULL;
			}
			s = ns;
		}
		memcpy(s + len, item, (size_t)n + 1);
		len += (size_t)n;
	}
	if (!len) {
		free(s);
		s = strdup(unused_state(p, &p->regions[ri]) > 0 ?
				   "(unused)" :
				   "(none seen)");
	}
	return s;
}

static json_t *num_or_null(unsigned long long v)
{
	return v == PROBE_UNKNOWN ? json_null() : json_integer((json_int_t)v);
}

static int print_json(const struct probe *p)
{
	json_t *arr = json_array();
	char owner[64];
	size_t i, j;

	if (!arr)
		goto fail;
	for (i = 0; i < p->nregions; i++) {
		const struct probe_region *r = &p->regions[i];
		json_t *users = json_array(), *o;

		if (!users)
			goto fail;
		for (j = 0; j < p->nuses; j++) {
			const struct probe_use *u = &p->uses[j];
			const struct probe_proc *pr = &p->procs[u->proc];
			json_t *uo;

			if (u->region != i)
				continue;
			if (u->fd >= 0)
				uo = json_pack("{s:i,s:s,s:i,s:b}", "pid",
					       (int)pr->pid, "command",
					       pr->comm, "fd", u->fd,
					       "writable", u->writable);
			else
				uo = json_pack("{s:i,s:s,s:I,s:I,s:b}", "pid",
					       (int)pr->pid, "command",
					       pr->comm, "addr",
					       (json_int_t)u->addr, "len",
					       (json_int_t)u->len, "writable",
					       u->writable);
			if (!uo || json_array_append_new(users, uo) < 0) {
				json_decref(users);
				goto fail;
			}
		}
		cli_user_name(r->owner, owner, sizeof(owner));
		o = json_pack(
			"{s:o,s:b,s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:i,"
			"s:o,s:o}",
			"name", r->named ? json_string(r->name) : json_null(),
			"named", r->named, "dev", (json_int_t)r->dev, "ino",
			(json_int_t)r->ino, "size", num_or_null(r->size),
			"resident", num_or_null(r->resident), "content",
			r->content[0] ? json_string(r->content) : json_null(),
			"owner",
			r->owner == (uid_t)-1 ?
				json_null() :
				json_integer((json_int_t)r->owner),
			"owner_name",
			r->owner == (uid_t)-1 ? json_null() :
						json_string(owner),
			"age",
			r->age >= 0 ? cli_json_seconds(r->age) : json_null(),
			"unused",
			unused_state(p, r) < 0 ?
				json_null() :
				json_boolean(unused_state(p, r)),
			"nusers", r->nusers, "path",
			r->path[0] ? json_string(r->path) : json_null(),
			"users", users);
		if (!o || json_array_append_new(arr, o) < 0)
			goto fail;
	}
	return cli_json_print(arr);
fail:
	json_decref(arr);
	cli_warn(CMD, "out of memory");
	return CLI_FAIL;
}

static int print_table(const struct probe *p)
{
	static const char *const head[NCOLS] = { "NAME",    "SIZE",  "RSS",
						 "CONTENT", "USERS", "OWNER",
						 "AGE" };
	size_t nrows = p->nregions + 1, r, c;
	char **cells = cli_table_new(head, nrows, NCOLS);
	int ret = CLI_FAIL;

	if (!cells)
		goto out;
	for (r = 1; r < nrows; r++) {
		const struct probe_region *rg = &p->regions[r - 1];
		char **row = cells + r * NCOLS, buf[64];

		row[0] = strdup(rg->named ? rg->name : "(anon)");
		if (rg->size != PROBE_UNKNOWN)
			cli_fmt_bytes(rg->size, buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "?");
		row[1] = strdup(buf);
		if (rg->resident != PROBE_UNKNOWN)
			cli_fmt_bytes(rg->resident, buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "?");
		row[2] = strdup(buf);
		row[3] = strdup(rg->content[0] ? rg->content : "-");
		row[4] = users_text(p, r - 1);
		cli_user_name(rg->owner, buf, sizeof(buf));
		row[5] = strdup(buf);
		if (rg->age >= 0)
			cli_fmt_age(rg->age, buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "?");
		row[6] = strdup(buf);
		for (c = 0; c < NCOLS; c++) {
			if (!row[c])
				goto out;
		}
	}
	ret = cli_table_print(cells, nrows, NCOLS, p->skipped);
	cli_table_free(cells, nrows, NCOLS);
	return ret;
out:
	cli_warn(CMD, "out of memory");
	cli_table_free(cells, nrows, NCOLS);
	return ret;
}

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct probe p;
	int json = 0, c, r, ret;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+jh", opts, NULL)) != -1) {
		switch (c) {
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
	if (optind < argc) {
		return cli_usage_error(CMD, usage, "unexpected argument '%s'",
				       argv[optind]);
	}
	r = probe_scan(&p);
	if (r < 0) {
		cli_warn(CMD, "cannot scan /proc: %s", strerror(-r));
		return cli_exit_for(r);
	}
	ret = json ? print_json(&p) : print_table(&p);
	probe_free(&p);
	return ret;
}
