#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The guided tour run by `make demo`: the seed examples (ChorusOS, L4Re,
# POSIX, Vicare; examples/README.md), then shmcap's own, each with a line
# saying what it shows, and a quick benchmark table. Under a minute.
# Usage: examples/demo.sh BUILD_DIR
set -euo pipefail

build=${1:-build}
bin="$build/examples"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmcap-demo.XXXXXX")
bg=
trap '[ -n "$bg" ] && kill "$bg" 2>/dev/null; rm -rf "$tmp"' EXIT

step() {
	printf '\n\033[1m== %s\033[0m\n' "$1"
	shift
	printf '%s\n' "$@" | fold -s -w 76 | sed 's/^/   /'
	echo
}

# run_pair SERVER CLIENT NAME [INPUT]: start SERVER NAME in the background,
# wait for its first line (it is then ready), run CLIENT NAME (with INPUT
# on its standard input), then wait for the server to finish.
run_pair() {
	local server=$1 client=$2 name=$3 input=${4-} line
	rm -f "$tmp/out"
	mkfifo "$tmp/out"
	"$bin/$server" "$name" >"$tmp/out" &
	bg=$!
	exec 3<"$tmp/out"
	IFS= read -r line <&3
	echo "$line"
	if [ -n "$input" ]; then
		printf '%s' "$input" | "$bin/$client" "$name"
		echo
	else
		"$bin/$client" "$name"
	fi
	cat <&3
	exec 3<&-
	wait "$bg"
	bg=
}

step "chorus_privilege: user and supervisor actors (ChorusOS Example 5-1)" \
	"An actor asks its own privilege. Supervisor actors share one address layout, so raw pointers are valid in all of them; only root may start one when the host is in secure mode."
"$bin/chorus_privilege"
"$bin/chorus_privilege" --supervisor

step "chorus_spawn: an actor creates an actor (ChorusOS Example 5-3)" \
	"shmcap_spawn starts a program with a pidfd from the same system call (no pid-reuse race) and named capabilities at known descriptors. The aid printed is the child's pid."
"$bin/chorus_spawn"

step "chorus_rgnmap: map a region from another actor (ChorusOS Example 7-2)" \
	"The first actor grants a 3-page region; the actor it spawns maps one page of it by address (rgnMapFromActor), prints what it finds, answers, and posts a semaphore that lives in the region. With --supervisor no mapping step is needed: the address itself is valid in both."
"$bin/chorus_rgnmap"
"$bin/chorus_rgnmap" --supervisor

step "l4re_server + l4re_client: a named shared buffer and a doorbell (L4Re)" \
	"The server publishes a buffer and a notifier under a name (an abstract socket: gone when the server ends, no daemon); the client looks it up, reads, writes back and rings."
run_pair l4re_server l4re_client "shm-demo-$$"

step "posix_writer + posix_reader: lines through a named region (POSIX shm)" \
	"The seed's reader polls with sleep and never ends; here both sides sleep on semaphores inside a mode-0666 named region, the reader stops when the writer's input ends (or on Ctrl-C), and the region is unlinked."
run_pair posix_reader posix_writer "posix_demo_$$" \
	$'first line\nsecond line\n'

step "fork_int, fork_bytes, fork_datum: parent and child across fork (Vicare)" \
	"An anonymous shared region survives fork: the child adds 1000 to 234, adds 100 to each of ten bytes, and writes a structured datum (CBOR) that the parent reads in place and prints."
"$bin/fork_int"
"$bin/fork_bytes"
"$bin/fork_datum"

step "share_region: two processes share a region by capability transfer" \
	"The parent creates an anonymous region (a sealed memfd: no name, no leftovers), writes into it and sends the child two capabilities over a Unix socket: one READ+WRITE, one READ-only. The kernel itself refuses to map the READ-only one for writing."
"$bin/share_region"

step "token_pass: a capability passed as text through argv" \
	"The parent issues a one-shot token; a new program resolves it by asking the issuer, which checks a 128-bit key and the caller's uid, then maps the region."
"$bin/token_pass"

step "robust_mutex: semaphores and a mutex inside the shared memory" \
	"Two processes play ping-pong with semaphores that live in a region (waiters watch the shared word briefly before sleeping, so a round trip costs a cache-line exchange, not two kernel wake-ups). Then the child is killed with SIGKILL while it holds a mutex: the parent's next lock returns EOWNERDEAD instead of deadlocking."
"$bin/robust_mutex"

if [ -x "$build/bench/bench_channel" ]; then
	step "A quick benchmark: 64-byte messages between two processes" \
		"Blocking round trips (microseconds; smaller is better) and one-way throughput (millions of messages per second), shmcap's channel against a pipe, a Unix socketpair and a raw futex, in one short run. 'make bench' runs the full suite with iceoryx and more peers (about 4 minutes)."
	"$build/bench/bench_channel" --quick \
		--bench chan_pingpong_block,chan_tput \
		--impl shmcap,pipe,socketpair,futex |
		grep -E '^(bench|chan_)'
fi

printf '\nNamed regions left in /dev/shm: %s\n' \
	"$(ls /dev/shm 2>/dev/null | grep -c '^shmcap\.' || true)"
