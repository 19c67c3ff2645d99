/* SPDX-License-Identifier: MIT */
/*
 * shmcap run: start an actor with named capabilities (ChorusOS arun).
 *
 *   shmcap run [--cap NAME=SPEC]... [--wait] [--supervisor] [--json]
 *              PROG [ARGS...]
 *
 * Each --cap makes or finds a capability and passes it to PROG under NAME,
 * where the program finds it with shmcap_env_cap(NAME) (or simply uses
 * descriptor 3, 4 ... in --cap order, see shmcap_spawn()). SPEC is
 *
 *   anon:SIZE        a new anonymous region of SIZE bytes (K, M, G:
 *                    binary multiples), READ and WRITE
 *   named:NAME       the existing named region /dev/shm/shmcap.NAME, READ
 *                    and WRITE if its mode bits allow it, else READ only
 *   name:PUBLISHED   every capability published under PUBLISHED
 *                    (shmcap_name_lookup()): the first as NAME, the
 *                    others as NAME.1, NAME.2 ... in the publisher's order
 *   notifier         a new notifier (SIGNAL and WAIT)
 *
 * PROG is looked for in PATH when it has no '/' (SHMCAP_SPAWN_PATH). The
 * options are parsed POSIXLY ("+"): everything from PROG on belongs to the
 * program. The command prints "aid PID id HEX" (or a JSON object) and,
 * with --wait, waits for the program and exits with its status, 128 + N
 * when signal N ended it, as shells do. Meanwhile SIGINT and SIGQUIT are
 * ignored (the terminal sends them to the program too, as for system())
 * and SIGTERM and SIGHUP are passed on to the program through its pidfd,
 * so that stopping the wrapper stops what it runs.
 *
 * Without --wait the program is left running, reparented when this
 * command exits; it is an actor like any other (shmcap ps, shmcap kill).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmcap.h>

#define CMD "run"
#define NAME_LEN_MAX 63 /* shmcap_spawn()'s limit on a capability name */
#define LOOKUP_TIMEOUT_NS (5 * (int64_t)1000000000)

struct run_caps {
	char *names[SHMCAP_SPAWN_MAX_CAPS];
	shmcap_cap *caps[SHMCAP_SPAWN_MAX_CAPS];
	const char *what[SHMCAP_SPAWN_MAX_CAPS]; /* "anon", "named" ... */
	size_t n;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmcap run [--cap NAME=SPEC]... [--wait] [--supervisor]"
		" [--json]\n"
		"                  PROG [ARGS...]\n"
		"Start PROG as an actor with named "
		"capabilities; print its aid.\n"
		"SPEC: anon:SIZE (new region, SIZE with K/M/G), named:NAME\n"
		"      (/dev/shm/shmcap.NAME), "
		"name:PUBLISHED (every capability\n"
		"      published: NAME, NAME.1, ...), notifier (a new one)\n"
		"  -c, --cap NAME=SPEC  pass a capability "
		"as NAME (repeatable)\n"
		"  -w, --wait           wait and exit with PROG's status\n"
		"                       (128+N if signal N ended it)\n"
		"  -s, --supervisor     start a supervisor actor\n"
		"  -j, --json           print {\"aid\":PID,\"id\":HEX,...}\n"
		"  -h, --help           this text\n");
}

/*
 * A size with an optional K, M or G (binary) suffix, also KiB/MiB/GiB.
 * 0 on success, -EINVAL if malformed, zero or out of range.
 */
static int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v, mul = 1;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno)
		return -EINVAL;
	if (*end) {
		switch (toupper((unsigned char)*end)) {
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
		end++;
		if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)
			end += strlen(end);
		if (*end)
			return -EINVAL;
	}
	if (v == 0 || v > SHMCAP_REGION_SIZE_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

/* The rule shmcap_spawn() applies, checked first for a usage error. */
static int valid_cap_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > NAME_LEN_MAX || strncmp(s, "shmcap.", 7) == 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && !strchr("._-/", s[i]))
			return 0;
	}
	return 1;
}

static int add_cap(struct run_caps *rc, const char *name, shmcap_cap *cap,
		   const char *what)
{
	size_t i;

	if (rc->n >= SHMCAP_SPAWN_MAX_CAPS) {
		cli_warn(CMD, "more than %d capabilities",
			 SHMCAP_SPAWN_MAX_CAPS);
		shmcap_cap_close(cap);
		return CLI_USAGE;
	}
	if (!valid_cap_name(name)) {
		cli_warn(CMD,
			 "bad capability name '%s' (1 to %d letters, digits"
			 " or ._-/, not shmcap.*)",
			 name, NAME_LEN_MAX);
		shmcap_cap_close(cap);
		return CLI_USAGE;
	}
	for (i = 0; i < rc->n; i++) {
		if (strcmp(rc->names[i], name) == 0) {
			cli_warn(CMD, "capability name '%s' given twice", name);
			shmcap_cap_close(cap);
			return CLI_USAGE;
		}
	}
	rc->names[rc->n] = strdup(name);
	if (!rc->names[rc->n]) {
		cli_warn(CMD, "out of memory");
		shmcap_cap_close(cap);
		return CLI_FAIL;
	}
	rc->caps[rc->n] = cap;
	rc->what[rc->n] = what;
	rc->n++;
	return CLI_OK;
}

/* One --cap NAME=SPEC: make or find its capabilities. */
static int parse_cap(struct run_caps *rc, const char *arg)
{
	const char *eq = strchr(arg, '=');
	shmcap_cap *found[SHMCAP_MSG_MAX_CAPS];
	char name[NAME_LEN_MAX + 16];
	const char *spec;
	shmcap_cap *cap = NULL;
	uint64_t size;
	int ret, i, n;

	if (!eq || eq == arg || (size_t)(eq - arg) > NAME_LEN_MAX) {
		cli_warn(CMD, "bad --cap '%s': expected NAME=SPEC", arg);
		return CLI_USAGE;
	}
	snprintf(name, sizeof(name), "%.*s", (int)(eq - arg), arg);
	spec = eq + 1;

	if (strncmp(spec, "anon:", 5) == 0) {
		if (parse_size(spec + 5, &size) < 0) {
			cli_warn(CMD,
				 "bad size in '%s' (a number with K, M or G"
				 ", at most 1T)",
				 spec);
			return CLI_USAGE;
		}
		ret = shmcap_region_create(size, 0, &cap);
		if (ret < 0) {
			cli_warn(CMD, "anonymous region of %llu bytes: %s",
				 (unsigned long long)size,
				 shmcap_strerror(ret));
			return cli_exit_for(ret);
		}
		return add_cap(rc, name, cap, "anon");
	}
	if (strncmp(spec, "named:", 6) == 0) {
		if (!spec[6]) {
			cli_warn(CMD, "bad --cap '%s': no region name", arg);
			return CLI_USAGE;
		}
		ret = shmcap_region_open_named(spec + 6, SHMCAP_RIGHTS_REGION,
					       &cap);
		/* A region the caller may only read is passed read-only. */
		if (ret == -EACCES)
			ret = shmcap_region_open_named(spec + 6,
						       SHMCAP_RIGHT_READ, &cap);
		if (ret < 0) {
			cli_warn(CMD, "named region '%s': %s", spec + 6,
				 shmcap_strerror(ret));
			return ret == -EINVAL || ret == -ENAMETOOLONG ?
				       CLI_USAGE :
				       cli_exit_for(ret);
		}
		return add_cap(rc, name, cap, "named");
	}
	if (strncmp(spec, "name:", 5) == 0) {
		if (!spec[5]) {
			cli_warn(CMD, "bad --cap '%s': no published name", arg);
			return CLI_USAGE;
		}
		n = shmcap_name_lookup(spec + 5, found, SHMCAP_MSG_MAX_CAPS,
				       LOOKUP_TIMEOUT_NS);
		if (n < 0) {
			cli_warn(CMD, "published name '%s': %s", spec + 5,
				 shmcap_strerror(n));
			return n == -EINVAL || n == -ENAMETOOLONG ?
				       CLI_USAGE :
				       cli_exit_for(n);
		}
		ret = CLI_OK;
		for (i = 0; i < n; i++) {
			char sub[sizeof(name) + 16];

			if (ret != CLI_OK) {
				shmcap_cap_close(found[i]);
				continue;
			}
			if (i == 0)
				snprintf(sub, sizeof(sub), "%s", name);
			else
				snprintf(sub, sizeof(sub), "%s.%d", name, i);
			ret = add_cap(rc, sub, found[i], "name");
		}
		if (n == 0)
			cli_warn(CMD,
				 "'%s' is published with no capability; "
				 "nothing passed as %s",
				 spec + 5, name);
		return ret;
	}
	if (strcmp(spec, "notifier") == 0) {
		ret = shmcap_notifier_create(&cap);
		if (ret < 0) {
			cli_warn(CMD, "notifier: %s", shmcap_strerror(ret));
			return cli_exit_for(ret);
		}
		return add_cap(rc, name, cap, "notifier");
	}
	cli_warn(CMD,
		 "bad capability spec '%s' (anon:SIZE, named:NAME, "
		 "name:PUBLISHED or notifier)",
		 spec);
	return CLI_USAGE;
}

static void free_caps(struct run_caps *rc)
{
	size_t i;

	for (i = 0; i < rc->n; i++) {
		shmcap_cap_close(rc->caps[i]);
		free(rc->names[i]);
	}
	rc->n = 0;
}

/* The program's pidfd, for passing signals on from a handler. */
static volatile sig_atomic_t child_pidfd = -1;

static void forward_signal(int sig)
{
	int saved = errno;

	if (child_pidfd >= 0)
		syscall(SYS_pidfd_send_signal, (int)child_pidfd, sig, NULL, 0);
	errno = saved;
}

/*
 * Installed after the spawn (the program must not inherit ignored
 * signals) and before the aid is printed, so that whoever reads the aid
 * line may signal this command and reach the program.
 */
static void watch_signals(shmcap_cap *actor)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	child_pidfd = shmcap_cap_fd(actor);
	sa.sa_handler = forward_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static int wait_child(shmcap_cap *actor)
{
	int ret, status = -1;

	do
		ret = shmcap_actor_wait(actor, SHMCAP_FOREVER, &status);
	while (ret == -EINTR);
	if (ret < 0) {
		cli_warn(CMD, "waiting for the program: %s",
			 shmcap_strerror(ret));
		return CLI_FAIL;
	}
	if (status == -1) {
		cli_warn(CMD, "the program's status was collected elsewhere");
		return CLI_FAIL;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return CLI_FAIL;
}

static int print_actor(shmcap_cap *actor, int pid, const struct run_caps *rc,
		       int json)
{
	char hex[SHMCAP_ACTOR_ID_TEXT] = "";
	shmcap_actor_id id;
	json_t *o, *arr;
	size_t i;
	int ret;

	ret = shmcap_actor_id_of(actor, &id);
	if (ret == 0)
		shmcap_actor_id_format(&id, hex, sizeof(hex));
	if (!json) {
		printf("aid %d id %s\n", pid, *hex ? hex : "-");
		return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
	}
	arr = json_array();
	for (i = 0; arr && i < rc->n; i++)
		json_array_append_new(arr, json_pack("{s:s,s:s}", "name",
						     rc->names[i], "spec",
						     rc->what[i]));
	o = json_pack("{s:i,s:s?,s:o}", "aid", pid, "id", *hex ? hex : NULL,
		      "caps", arr);
	if (!o) {
		cli_warn(CMD, "out of memory");
		return CLI_FAIL;
	}
	ret = cli_json_print(o);
	fflush(stdout);
	return ret;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cap", required_argument, NULL, 'c' },
		{ "wait", no_argument, NULL, 'w' },
		{ "supervisor", no_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_caps rc = { .n = 0 };
	unsigned int flags = SHMCAP_SPAWN_PATH;
	int wait = 0, json = 0, c, ret, pid;
	shmcap_cap *actor = NULL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+c:wsjh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			ret = parse_cap(&rc, optarg);
			if (ret != CLI_OK) {
				if (ret == CLI_USAGE)
					usage(stderr);
				goto out;
			}
			break;
		case 'w':
			wait = 1;
			break;
		case 's':
			flags |= SHMCAP_SPAWN_SUPERVISOR;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(stdout);
			ret = CLI_OK;
			goto out;
		default:
			usage(stderr);
			ret = CLI_USAGE;
			goto out;
		}
	}
	if (optind >= argc) {
		cli_warn(CMD, "no program given");
		usage(stderr);
		ret = CLI_USAGE;
		goto out;
	}

	/*
	 * Flush what stdio holds, so that the program does not inherit it
	 * (it shares our descriptors 0-2).
	 */
	fflush(NULL);
	pid = shmcap_spawn(argv[optind], argv + optind, NULL,
			   (const char *const *)rc.names, rc.caps, rc.n, flags,
			   &actor);
	if (pid < 0) {
		cli_warn(CMD, "%s: %s", argv[optind], strerror(-pid));
		ret = pid == -EINVAL || pid == -E2BIG	? CLI_USAGE :
		      pid == -ENOENT || pid == -ENOTDIR ? CLI_NOTFOUND :
		      pid == -EACCES || pid == -EPERM	? CLI_PERM :
							  CLI_FAIL;
		goto out;
	}
	if (wait)
		watch_signals(actor);
	ret = print_actor(actor, pid, &rc, json);
	/* The program holds its own copies now. */
	free_caps(&rc);
	if (wait)
		ret = wait_child(actor);
out:
	shmcap_cap_close(actor);
	free_caps(&rc);
	return ret;
}
