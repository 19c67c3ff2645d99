#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Run shmcap's benchmarks: every bench_* program in BUILD_DIR/bench, the
# steady semaphore bench once more with both processes on one core and
# once with neither pinned, and the channels' blocking round trip
# unpinned.
#
#   bench/run.sh BUILD_DIR            the full suite (3-4 minutes)
#   bench/run.sh BUILD_DIR --quick    a smoke test (a few seconds)
#   bench/run.sh BUILD_DIR --spin-sweep "0 5000 20000 50000"
#                                     tune the spin budget: the semaphore
#                                     benches with shmcap once per budget
#                                     (shmcap_spin_set(), rows named
#                                     shmcap@spin=NS) beside futex and spin
#   bench/run.sh BUILD_DIR [...] -- ARGS...
#                                     ARGS go to every program (e.g.
#                                     --runs 5, --impl shmcap,futex)
#
# Prints the machine and the exact command first, then each program's
# table and target checks. Results are JSON lines in
# bench/results/latest.jsonl (rewritten by every full run; commit it with
# the change it measures), bench/results/spin_sweep.jsonl for a sweep, or
# BUILD_DIR/bench/quick.jsonl for --quick, so that a smoke test leaves the
# source tree alone.
#
# Exit status: 0 if every benchmark ran, 1 if one failed, 2 on bad usage
# or a missing build. A missed target does not fail the run (targets are
# measurements, printed as PASS/MISS); pass -- --strict to make it.
#
# SHMCAP_SPIN_NS in the environment reaches the programs (the library reads
# it) and is recorded in every result.
set -euo pipefail

usage() {
	echo "usage: $0 BUILD_DIR [--quick] [--spin-sweep LIST] [-- PROGRAM-ARGS...]" >&2
	exit 2
}

cmdline="$0 $*"
[ $# -ge 1 ] || usage
build=$1
shift
quick=0
sweep=
extra=()
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--spin-sweep)
		[ $# -ge 2 ] || usage
		sweep=$(echo "$2" | tr ',' ' ')
		shift
		;;
	--) shift; extra=("$@"); break ;;
	*) usage ;;
	esac
	shift
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bindir=$build/bench
if [ ! -x "$bindir/bench_sem" ]; then
	echo "$0: no benchmarks in $bindir; build first (cmake --build $build)" >&2
	exit 2
fi

args=()
if [ $quick = 1 ]; then
	args+=(--quick)
	results=$bindir/quick.jsonl
elif [ -n "$sweep" ]; then
	results=$here/results/spin_sweep.jsonl
else
	results=$here/results/latest.jsonl
fi
mkdir -p "$(dirname "$results")"
# Written aside and moved into place at the end: an interrupted run leaves
# the previous results alone.
tmp=$results.tmp
: >"$tmp"
trap 'rm -f "$tmp" "$tmp.raw"' EXIT

# --- Header: what runs where -------------------------------------------------

cache=$build/CMakeCache.txt
model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)
hv=$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor: *//p' | head -n1)
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$cache" 2>/dev/null || true)
sanitize=$(sed -n 's/^SHMCAP_SANITIZE:[A-Z]*=//p' "$cache" 2>/dev/null || true)
commit=$(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$here/.." status --porcelain -- src include 2>/dev/null)" ]; then
	commit="$commit (src/ or include/ modified)"
fi

echo "# command:  $cmdline"
echo "# date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# machine:  ${model:-unknown}, $(nproc) CPUs${hv:+, $hv guest}"
echo "# kernel:   $(uname -sr)"
echo "# build:    $build (${btype:-unknown build type}${sanitize:+, sanitizers $sanitize}), commit $commit"
echo "# spin:     SHMCAP_SPIN_NS=${SHMCAP_SPIN_NS:-unset (library default)}"
echo "# results:  $results"
case $btype in
Release | RelWithDebInfo) ;;
*) echo "# WARNING: not an optimised build (${btype:-none}): numbers are not representative" ;;
esac
[ -z "$sanitize" ] || echo "# WARNING: sanitizers on: numbers are not representative"

# Other work on the machine skews everything (a busy vCPU does not halt, so
# wake-ups get faster, and preemption adds millisecond tails): measure how
# busy the CPUs are for half a second before starting.
cpu_busy() {
	local a b
	a=($(sed -n 's/^cpu  //p' /proc/stat))
	sleep 0.5
	b=($(sed -n 's/^cpu  //p' /proc/stat))
	awk -v u=$((b[0] + b[1] + b[2] + b[5] + b[6] + b[7] - a[0] - a[1] - a[2] - a[5] - a[6] - a[7])) \
		-v i=$((b[3] + b[4] - a[3] - a[4])) \
		'BEGIN { printf "%.0f\n", (u + i > 0) ? 100 * u / (u + i) : 0 }'
}
busy=$(cpu_busy 2>/dev/null || echo "?")
echo "# load:     CPUs ${busy}% busy before the run (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
if [ "$busy" != "?" ] && [ "$busy" -gt 10 ]; then
	echo "# WARNING: other work is running: numbers are not representative"
fi

# --- Helpers -------------------------------------------------------------------

failed=0

run() {
	echo
	echo "\$ $*"
	if ! "$@"; then
		failed=1
	fi
}

# --- The programs ------------------------------------------------------------

start=$(date +%s)

if [ -n "$sweep" ]; then
	# Every shmcap implementation once per budget, interleaved with the
	# peers' runs in one program, so that all see the same machine.
	spins=$(echo $sweep | tr ' ' ',')
	run "$bindir/bench_sem" "${args[@]}" --json "$tmp" --spin "$spins" \
		--impl shmcap,futex,spin "${extra[@]}"
	run "$bindir/bench_sem" "${args[@]}" --json "$tmp" --spin "$spins" \
		--bench sem_pingpong --same-core --impl shmcap,futex \
		"${extra[@]}"
else
	# The known families first, in this order, then any other bench_*.
	progs=()
	for name in bench_sem bench_notifier; do
		[ -x "$bindir/$name" ] && progs+=("$bindir/$name")
	done
	for prog in "$bindir"/bench_*; do
		case " ${progs[*]} " in *" $prog "*) continue ;; esac
		[ -x "$prog" ] && [ -f "$prog" ] && progs+=("$prog")
	done
	# Every round-trip sample, for the latency plot (bench/plot.sh).
	raw=$tmp.raw
	: >"$raw"
	for prog in "${progs[@]}"; do
		run "$prog" "${args[@]}" --json "$tmp" --raw "$raw" "${extra[@]}"
	done

	# Both processes on one core: spinning only delays the peer there.
	# Busy spinning (the spin peer) is left out: it would starve the
	# other side.
	run "$bindir/bench_sem" "${args[@]}" --json "$tmp" \
		--bench sem_pingpong --same-core --impl shmcap,futex,posix_sem \
		"${extra[@]}"
	# Not pinned, as most programs run: the library may choose its spin
	# budget from the CPU affinity, and the kernel may put both processes
	# on one CPU.
	run "$bindir/bench_sem" "${args[@]}" --json "$tmp" \
		--bench sem_pingpong --unpinned "${extra[@]}"
	# The channels' blocking round trip unpinned as well (busy-polling
	# peers unpinned may share a CPU and starve each other).
	if [ -x "$bindir/bench_channel" ]; then
		run "$bindir/bench_channel" "${args[@]}" --json "$tmp" \
			--bench chan_pingpong_block --unpinned "${extra[@]}"
	fi
fi

mv "$tmp" "$results"
trap - EXIT

# The latency distributions of the main round trips, as a PNG next to the
# results (full runs only; needs gnuplot, which make bench installs).
if [ -n "${raw:-}" ] && [ -s "$raw" ]; then
	if [ $quick = 0 ] && command -v gnuplot >/dev/null; then
		bash "$here/plot.sh" "$raw" "$(dirname "$results")/latency.png" \
			sem_pingpong chan_pingpong chan_pingpong_block \
			chan_pingpong_idle notifier_pingpong cap_lookup ||
			failed=1
	fi
	rm -f "$raw"
fi

echo
echo "# done in $(($(date +%s) - start)) s; results in $results"
if [ $failed = 1 ]; then
	echo "# some benchmarks FAILED (see above)"
	exit 1
fi
exit 0
