/* SPDX-License-Identifier: MIT */
/*
 * Description: version and error-name functions
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <shmcap.h>

#include "helpers.h"

int main(void)
{
	char want[32];
	const char *text;

	t_watchdog(30);

	/* The library matches the header it was tested with. */
	CHECK_EQ(shmcap_version(), SHMCAP_VERSION_HEX);
	snprintf(want, sizeof(want), "%d.%d.%d", SHMCAP_VERSION_MAJOR,
		 SHMCAP_VERSION_MINOR, SHMCAP_VERSION_PATCH);
	CHECK_STR_EQ(shmcap_version_string(), want);

	CHECK_STR_EQ(shmcap_err_name(-EINVAL), "EINVAL");
	CHECK_STR_EQ(shmcap_err_name(-ENOENT), "ENOENT");
	text = shmcap_strerror(-EINVAL);
	CHECK_NOTNULL(text);
	CHECK(text[0] != '\0');
	CHECK(strcmp(text, "unknown error") != 0);

	/* Unknown values. */
	CHECK_STR_EQ(shmcap_err_name(12345), "UNKNOWN");
	CHECK_STR_EQ(shmcap_err_name(-12345), "UNKNOWN");
	CHECK_STR_EQ(shmcap_strerror(-12345), "unknown error");

	/* A positive value is taken as its negation. */
	CHECK_STR_EQ(shmcap_err_name(EINVAL), "EINVAL");
	CHECK_STR_EQ(shmcap_strerror(EINVAL), shmcap_strerror(-EINVAL));
	CHECK_STR_EQ(shmcap_strerror(ENOENT), shmcap_strerror(-ENOENT));

	return T_EXIT_PASS;
}
