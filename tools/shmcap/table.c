/* SPDX-License-Identifier: MIT */
/*
 * What the listings (shmcap ps, ls, gc) share: aligned tables, user
 * names, and seconds for --json.
 *
 * A table is an array of nrows * ncols malloc'd strings, row by row, the
 * first row the header. Every column is as wide as its widest cell plus
 * two spaces, like ps(1); the last column is not padded, so a long
 * command line or user list does not leave trailing blanks. Widths count
 * UTF-8 code points, not bytes: ps cuts an id with "…" (three bytes, one
 * column), and region or command names may hold any UTF-8 text.
 *
 * Both listings come from a /proc scan that skips the processes the
 * caller may not inspect; the table ends with how many there were, so an
 * unprivileged user knows the listing is partial.
 *
 * Seconds (uptime, age) go to --json rounded to milliseconds: they come
 * from clock readings taken at slightly different times, so the digits
 * beyond say nothing, and a value like 0.010000000000218279 only makes
 * the output harder to read. cli_json_print() prints reals with 15
 * significant digits, enough for any such value to come out as written.
 * The rounding is done by hand, not with round(3), so the tool needs no
 * libm.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_user_name(uid_t uid, char *buf, size_t size)
{
	struct passwd *pw;

	if (uid == (uid_t)-1) {
		snprintf(buf, size, "?");
		return;
	}
	pw = getpwuid(uid);
	if (pw && pw->pw_name)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "%u", (unsigned int)uid);
}

/* Display width of a UTF-8 string: its code points. */
static size_t width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

char **cli_table_new(const char *const *head, size_t nrows, size_t ncols)
{
	char **cells = calloc(nrows * ncols, sizeof(*cells));
	size_t c;

	if (!cells)
		return NULL;
	for (c = 0; c < ncols; c++) {
		cells[c] = strdup(head[c]);
		if (!cells[c]) {
			cli_table_free(cells, nrows, ncols);
			return NULL;
		}
	}
	return cells;
}

void cli_table_free(char **cells, size_t nrows, size_t ncols)
{
	size_t i;

	for (i = 0; cells && i < nrows * ncols; i++)
		free(cells[i]);
	free(cells);
}

int cli_table_print(char *const *cells, size_t nrows, size_t ncols,
		    size_t skipped)
{
	size_t *w = calloc(ncols ? ncols : 1, sizeof(*w));
	size_t r, c, pad;

	if (!w)
		return CLI_FAIL;
	for (r = 0; r < nrows; r++) {
		for (c = 0; c < ncols; c++) {
			size_t n = width(cells[r * ncols + c]);

			if (n > w[c])
				w[c] = n;
		}
	}
	for (r = 0; r < nrows; r++) {
		for (c = 0; c < ncols; c++) {
			const char *cell = cells[r * ncols + c];

			fputs(cell, stdout);
			if (c + 1 == ncols)
				break;
			for (pad = width(cell); pad < w[c] + 2; pad++)
				putchar(' ');
		}
		putchar('\n');
	}
	free(w);
	if (skipped)
		printf("(%zu process%s could not be inspected)\n", skipped,
		       skipped == 1 ? "" : "es");
	return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
}

json_t *cli_json_seconds(double seconds)
{
	double ms = seconds * 1000;

	/* Beyond 2^53 ms (285,000 years) a double has no fraction left. */
	if (!(ms > -9007199254740992.0 && ms < 9007199254740992.0))
		return json_real(seconds);
	ms = (double)(long long)(ms + (ms < 0 ? -0.5 : 0.5));
	return json_real(ms / 1000);
}
