/* SPDX-License-Identifier: MIT */
/*
 * shmcap ps: the actors on this host.
 *
 *   shmcap ps [--long] [--json]
 *
 * One line per actor (a process that maps libshmcap, maps or holds a
 * shmcap region, or publishes a shmcap name; see probe.h): its 128-bit id,
 * its aid (pid), user, privilege, uptime, how many regions it uses, the
 * names it publishes and its command. In the table the id is cut to its
 * last 12 hex digits, the ones that tell actors apart (the leading ones
 * are the same for every actor of a boot), unless --long asks for all 32;
 * --json gives it whole, with everything else, for scripts. Processes
 * the caller may not inspect are left out and counted in a last line.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "probe.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmcap.h>

#define CMD "ps"
#define NCOLS 8

static void usage(FILE *f)
{
	fprintf(f, "usage: shmcap ps [--long] [--json]\n"
		   "List the actors on this host: id, aid, user, privilege,\n"
		   "uptime, regions used, names published, command.\n"
		   "  -l, --long  show the whole 128-bit id\n"
		   "  --json      one JSON array, an object per actor\n"
		   "  --help      this text\n");
}

static const char *priv_name(int priv)
{
	switch (priv) {
	case SHMCAP_PRIV_USER:
		return "user";
	case SHMCAP_PRIV_SUPERVISOR:
		return "supervisor";
	default:
		return NULL;
	}
}

static char *names_joined(const struct probe_proc *pr)
{
	size_t i, len = 2;
	char *s;

	for (i = 0; i < pr->nnames; i++)
		len += strlen(pr->names[i]) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (i = 0; i < pr->nnames; i++) {
		if (i)
			strcat(s, ",");
		strcat(s, pr->names[i]);
	}
	if (pr->nnames == 0)
		strcpy(s, "-");
	return s;
}

static int print_json(const struct probe *p)
{
	json_t *arr = json_array();
	size_t i, j;
	char user[64];

	if (!arr)
		return CLI_FAIL;
	for (i = 0; i < p->nprocs; i++) {
		const struct probe_proc *pr = &p->procs[i];
		const char *priv = priv_name(pr->privilege);
		json_t *names = json_array(), *o;

		if (!names)
			goto fail;
		for (j = 0; j < pr->nnames; j++)
			json_array_append_new(names, json_string(pr->names[j]));
		cli_user_name(pr->uid, user, sizeof(user));
		o = json_pack("{s:o,s:i,s:i,s:s,s:o,s:o,s:b,s:I,s:o,s:s}", "id",
			      pr->id[0] ? json_string(pr->id) : json_null(),
			      "aid", (int)pr->pid, "uid", (int)pr->uid, "user",
			      user, "privilege",
			      priv ? json_string(priv) : json_null(), "uptime",
			      pr->uptime >= 0 ? cli_json_seconds(pr->uptime) :
						json_null(),
			      "links_lib", pr->links_lib, "regions",
			      (json_int_t)pr->nregions, "names", names,
			      "command", pr->comm);
		if (!o || json_array_append_new(arr, o) < 0)
			goto fail;
	}
	return cli_json_print(arr);
fail:
	json_decref(arr);
	cli_warn(CMD, "out of memory");
	return CLI_FAIL;
}

static int print_table(const struct probe *p, int full_id)
{
	static const char *const head[NCOLS] = { "ID",	  "AID",    "USER",
						 "PRIV",  "UPTIME", "REGIONS",
						 "NAMES", "COMMAND" };
	size_t nrows = p->nprocs + 1, r, c;
	char **cells = cli_table_new(head, nrows, NCOLS);
	int ret = CLI_FAIL;

	if (!cells)
		goto out;
	for (r = 1; r < nrows; r++) {
		const struct probe_proc *pr = &p->procs[r - 1];
		const char *priv = priv_name(pr->privilege);
		char **row = cells + r * NCOLS, buf[64];

		if (pr->id[0] && (full_id || strlen(pr->id) <= 12))
			snprintf(buf, sizeof(buf), "%s", pr->id);
		else if (pr->id[0])
			snprintf(buf, sizeof(buf), "\u2026%s",
				 pr->id + strlen(pr->id) - 12);
		else
			snprintf(buf, sizeof(buf), "-");
		row[0] = strdup(buf);
		snprintf(buf, sizeof(buf), "%d", (int)pr->pid);
		row[1] = strdup(buf);
		cli_user_name(pr->uid, buf, sizeof(buf));
		row[2] = strdup(buf);
		row[3] = strdup(priv ? priv : "?");
		if (pr->uptime >= 0)
			cli_fmt_age(pr->uptime, buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "?");
		row[4] = strdup(buf);
		snprintf(buf, sizeof(buf), "%zu", pr->nregions);
		row[5] = strdup(buf);
		row[6] = names_joined(pr);
		row[7] = strdup(pr->comm);
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

int cmd_ps(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "long", no_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct probe p;
	int json = 0, full_id = 0, c, r, ret;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+ljh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			full_id = 1;
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
	if (optind < argc) {
		return cli_usage_error(CMD, usage, "unexpected argument '%s'",
				       argv[optind]);
	}
	r = probe_scan(&p);
	if (r < 0) {
		cli_warn(CMD, "cannot scan /proc: %s", strerror(-r));
		return cli_exit_for(r);
	}
	ret = json ? print_json(&p) : print_table(&p, full_id);
	probe_free(&p);
	return ret;
}
