/* SPDX-License-Identifier: MIT */
/*
 * The shmcap command: what its subcommands share.
 *
 * Each subcommand is a function cmd_NAME(argc, argv) in cmd_NAME.c, with
 * argv[0] the subcommand's name; it parses its own options (getopt_long;
 * every one accepts --help and, where it lists, --json) and returns an
 * exit code below. main.c holds the table of subcommands.
 *
 * Exit codes, the same for every subcommand:
 *   0  success
 *   1  the operation failed (a system error, a corrupt object ...)
 *   2  bad usage (unknown option, missing or malformed argument)
 *   3  not found (no such actor, name or region)
 *   4  permission denied
 * `shmcap run --wait` instead exits with the program's status (128 + the
 * signal number when a signal ended it), as shells do.
 */
#ifndef SHMCAP_CLI_H
#define SHMCAP_CLI_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include <shmcap.h>

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2
#define CLI_NOTFOUND 3
#define CLI_PERM 4

int cmd_run(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_kill(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_gc(int argc, char **argv);

/* "shmcap: CMD: message\n" on stderr (printf format). */
void cli_warn(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Bad usage: "shmcap: CMD: message" and the command's usage on stderr;
 * returns CLI_USAGE.
 */
int cli_usage_error(const char *cmd, void (*print_usage)(FILE *),
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The exit code for a negative errno value: -ENOENT/-ESRCH 3, -EACCES/-EPERM 4, else 1. */
int cli_exit_for(int err);

/*
 * Print a JSON value (an array of objects, one per row, for listings) on
 * stdout, compact, one line (reals with 15 significant digits), and free
 * it. 0, or CLI_FAIL if it could not be written.
 */
int cli_json_print(json_t *v);

/*
 * Open the actor an AID argument names: a decimal pid, or the 32 hex
 * digits of an actor id, found by looking at every process in /proc.
 * Returns the pid and the capability in *out (may be NULL), -EINVAL if
 * text is not an AID, -ESRCH if no such actor lives. (cmd_kill.c)
 */
int cli_aid_open(const char *text, shmcap_cap **out);

/* A region to read: a read-only descriptor, a label and its size. */
struct cli_region {
	int fd;
	char label[192];
	unsigned long long size;
};

/*
 * The regions a NAME|AID[:N] argument names (all of an actor's with all
 * set, else the first or the Nth), opened read-only into a new array.
 * 0 or a negative errno (reported with cmd). (cmd_dump.c)
 */
int cli_regions_open(const char *cmd, const char *arg, int all,
		     struct cli_region **out, size_t *n);
void cli_regions_close(struct cli_region *r, size_t n);

/* pread until len bytes or the end: the bytes read, or -errno. */
int cli_pread_all(int fd, void *buf, size_t len, unsigned long long off);

/*
 * Print a channel's control part (ctrl, len bytes, copied out of a region
 * of region_size bytes) for humans, or into *json when json is not NULL;
 * detail adds the slots. 0, or CLI_FAIL for a corrupt one. (cmd_stat.c)
 */
int cli_channel_print(const void *ctrl, size_t len,
		      unsigned long long region_size, int detail,
		      json_t **json);

/* uid's user name, or the number when it has none, "?" for (uid_t)-1. */
void cli_user_name(uid_t uid, char *buf, size_t size);

/*
 * Aligned tables for the listings (table.c): nrows * ncols malloc'd
 * strings, row by row, the first row the header. cli_table_new() makes
 * one with the header filled in and the other cells NULL (NULL if out of
 * memory); cli_table_print() prints it in columns, then a line saying how
 * many processes were skipped if any: CLI_OK or CLI_FAIL; cli_table_free()
 * frees it and every cell that is not NULL.
 */
char **cli_table_new(const char *const *head, size_t nrows, size_t ncols);
int cli_table_print(char *const *cells, size_t nrows, size_t ncols,
		    size_t skipped);
void cli_table_free(char **cells, size_t nrows, size_t ncols);

/*
 * A number of seconds for --json, rounded to milliseconds: the values
 * come from clocks with more noise than that, and 0.010000000000218279
 * says nothing 0.01 does not.
 */
json_t *cli_json_seconds(double seconds);

/* "3d 04:05:06", "04:05:06" or "5.2s": an age or uptime in seconds. */
void cli_fmt_age(double seconds, char *buf, size_t size);

/* "4.0 KiB", "1.5 MiB" ... */
void cli_fmt_bytes(unsigned long long n, char *buf, size_t size);

#endif /* SHMCAP_CLI_H */
