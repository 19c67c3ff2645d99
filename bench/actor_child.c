/* SPDX-License-Identifier: MIT */
/*
 * actor_child: the program bench_actor starts, once per sample.
 *
 *   actor_child shmcap   signal the notifier passed under the name "bell"
 *   actor_child sock     write one message to descriptor 3
 *
 * Both modes are the same binary, linked to libshmcap, so that loading it
 * costs every implementation alike and the bench compares only how the
 * program is started and how its first message travels.
 */
#include <string.h>
#include <unistd.h>

#include <shmcap.h>

int main(int argc, char **argv)
{
	shmcap_cap *bell;

	if (argc == 2 && strcmp(argv[1], "shmcap") == 0) {
		if (shmcap_env_cap("bell", &bell) < 0)
			return 2;
		if (shmcap_notifier_signal(bell) < 0)
			return 3;
		shmcap_cap_close(bell);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "sock") == 0)
		return write(3, "hi", 2) == 2 ? 0 : 4;
	return 1;
}
