#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Plot latency distributions from the samples the benchmarks write with
# --raw (lines "bench impl run ns"): one panel per bench, one curve per
# implementation, the share of round trips (y) that took at most x µs
# (log scale), all runs of an implementation together.
#
#   bench/plot.sh RAW_FILE OUT.png [BENCH...]
#
# Without BENCH names every bench in RAW_FILE with at least two
# implementations gets a panel. Needs gnuplot (Debian: gnuplot-nox).
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 RAW_FILE OUT.png [BENCH...]" >&2
	exit 2
fi
raw=$1
out=$2
shift 2
command -v gnuplot >/dev/null || {
	echo "$0: gnuplot not found (apt-get install gnuplot-nox)" >&2
	exit 2
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ $# -gt 0 ]; then
	# Those of the benches named that have samples in RAW_FILE.
	benches=()
	for b in "$@"; do
		awk -v b="$b" '$1 == b { found = 1; exit } END { exit !found }' \
			"$raw" && benches+=("$b")
	done
else
	mapfile -t benches < <(awk '{ print $1, $2 }' "$raw" | sort -u |
		awk '{ n[$1]++ } END { for (b in n) if (n[b] > 1) print b }' | sort)
fi
[ ${#benches[@]} -gt 0 ] || {
	echo "$0: no bench with two implementations in $raw" >&2
	exit 1
}

# One file per bench and implementation: "us fraction", at most ~400
# points of the empirical distribution (every k-th sorted sample, and the
# last).
for b in "${benches[@]}"; do
	for impl in $(awk -v b="$b" '$1 == b { print $2 }' "$raw" | sort -u); do
		awk -v b="$b" -v i="$impl" '$1 == b && $2 == i { print $4 }' "$raw" |
			sort -n |
			awk '{ v[NR] = $1 } END {
				k = int(NR / 400); if (k < 1) k = 1
				for (j = k; j <= NR; j += k)
					printf "%.4f %.5f\n", v[j] / 1000, j / NR
				if ((NR % k) != 0)
					printf "%.4f 1\n", v[NR] / 1000
			}' >"$tmp/$b@$impl.dat"
	done
done

n=${#benches[@]}
cols=$((n < 2 ? 1 : 2))
rows=$(((n + cols - 1) / cols))
{
	echo "set terminal pngcairo size $((cols * 640)),$((rows * 400)) font 'sans,10'"
	echo "set output '$out'"
	echo "set termoption noenhanced"
	echo "set multiplot layout $rows,$cols"
	echo "set logscale x"
	echo "set xlabel 'latency (µs, log scale)'"
	echo "set ylabel 'fraction of samples ≤ x'"
	echo "set yrange [0:1]"
	echo "set grid"
	echo "set key bottom right"
	for b in "${benches[@]}"; do
		echo "set title '$b'"
		plot="plot"
		sep=""
		for f in "$tmp/$b@"*.dat; do
			impl=${f##*@}
			impl=${impl%.dat}
			plot="$plot$sep '$f' using 1:2 with lines lw 2 title '$impl'"
			sep=","
		done
		echo "$plot"
	done
	echo "unset multiplot"
} >"$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
echo "$0: wrote $out (${#benches[@]} benches)"
