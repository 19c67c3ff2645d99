#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The guided tour run by `make demo`: each example with a line saying what
# it shows. Usage: examples/demo.sh BUILD_DIR
set -euo pipefail

build=${1:-build}
bin="$build/examples"

step() {
	printf '\n\033[1m== %s\033[0m\n' "$1"
	shift
	printf '%s\n' "$@" | fold -s -w 76 | sed 's/^/   /'
	echo
}

step "share_region: two processes share a region by capability transfer" \
	"The parent creates an anonymous region (a sealed memfd: no name, no leftovers), writes into it and sends the child two capabilities over a Unix socket: one READ+WRITE, one READ-only. The kernel itself refuses to map the READ-only one for writing."
"$bin/share_region"

step "token_pass: a capability passed as text through argv" \
	"The parent issues a one-shot token; a new program resolves it by asking the issuer, which checks a 128-bit key and the caller's uid, then maps the region."
"$bin/token_pass"

step "robust_mutex: semaphores and a mutex inside the shared memory" \
	"Two processes play ping-pong with semaphores that live in a region (waiters watch the shared word briefly before sleeping, so a round trip costs a cache-line exchange, not two kernel wake-ups). Then the child is killed with SIGKILL while it holds a mutex: the parent's next lock returns EOWNERDEAD instead of deadlocking."
"$bin/robust_mutex"

printf '\nNamed regions in /dev/shm now: %s (the examples use anonymous ones only)\n' \
	"$(ls /dev/shm 2>/dev/null | grep -c '^shmcap\.' || true)"
