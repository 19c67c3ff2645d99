#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Check that the tools the build and the tests need are installed, and
# install the missing ones from Debian's packages when running as root.
#
# Usage: scripts/deps.sh [sanitize] [tsan] [clang] [bench]
#   (no argument)  cmake, make, a C compiler and libc headers, pkg-config,
#                  nm/objdump (binutils), Jansson (libjansson-dev: the
#                  shmcap command's --json), and Python's cbor2 for
#                  /usr/bin/python3 (the datum_cbor2 test)
#   sanitize       also the ASan and UBSan runtimes: a program built with
#                  -fsanitize=address,undefined must link
#   tsan           also the ThreadSanitizer runtime
#   clang          also clang (for make test-clang)
#   bench          also the benchmarks' peers: Eclipse iceoryx (the
#                  iox-roudi daemon and the C binding's headers and CMake
#                  package), for bench_channel, and gnuplot for the
#                  latency plot (bench/plot.sh)
#
# Prints nothing when everything is there. As a non-root user it prints the
# apt-get command to run and exits 1.
set -eu

want_sanitize=0
want_tsan=0
want_clang=0
want_bench=0
for arg in "$@"; do
	case $arg in
	sanitize) want_sanitize=1 ;;
	tsan) want_tsan=1 ;;
	clang) want_clang=1 ;;
	bench) want_bench=1 ;;
	*)
		echo "usage: $0 [sanitize] [tsan] [clang] [bench]" >&2
		exit 2
		;;
	esac
done

cc=${CC:-cc}
missing=()

need() { # need COMMAND PACKAGE...
	local cmd=$1
	shift
	command -v "$cmd" >/dev/null 2>&1 || missing+=("$@")
}

# Compile and link a trivial program with the given flags.
links() {
	local dir ok=1
	command -v "$cc" >/dev/null 2>&1 || return 1
	dir=$(mktemp -d "${TMPDIR:-/tmp}/shmcap-deps.XXXXXX")
	printf '#include <stdio.h>\nint main(void){return 0;}\n' >"$dir/t.c"
	"$cc" "$@" -o "$dir/t" "$dir/t.c" >/dev/null 2>&1 || ok=0
	rm -rf "$dir"
	[ "$ok" = 1 ]
}

need cmake cmake
need make make
need gcc gcc
need pkg-config pkg-config
need nm binutils
need objdump binutils
need ldd libc-bin
if ! links; then
	missing+=(gcc libc6-dev)
fi
has_jansson() {
	pkg-config --exists jansson 2>/dev/null
}
if ! has_jansson; then
	missing+=(libjansson-dev)
fi
# test/t_datum_cbor2.c runs /usr/bin/python3, never the python3 on PATH.
has_cbor2() {
	/usr/bin/python3 -c 'import cbor2' >/dev/null 2>&1
}
if ! has_cbor2; then
	missing+=(python3-cbor2)
fi
if [ "$want_sanitize" = 1 ] &&
	! links -fsanitize=address,undefined -fno-omit-frame-pointer; then
	missing+=(gcc libasan8 libubsan1)
fi
if [ "$want_tsan" = 1 ] && ! links -fsanitize=thread; then
	missing+=(gcc libtsan2)
fi
if [ "$want_clang" = 1 ]; then
	need clang clang
fi
# The CMake package that bench/CMakeLists.txt looks for (it names the
# headers and the library).
has_iceoryx_c() {
	local f
	for f in /usr/lib/cmake/iceoryx_binding_c/iceoryx_binding_cConfig.cmake \
		/usr/lib/*/cmake/iceoryx_binding_c/iceoryx_binding_cConfig.cmake; do
		[ -f "$f" ] && return 0
	done
	return 1
}
if [ "$want_bench" = 1 ]; then
	need iox-roudi iceoryx
	need gnuplot gnuplot-nox
	has_iceoryx_c || missing+=(libiceoryx-binding-c-dev)
fi

[ ${#missing[@]} -eq 0 ] && exit 0

# Each package once, in order.
packages=$(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++' | tr '\n' ' ')
packages=${packages% }
cmd="apt-get install -y --no-install-recommends $packages"

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "missing packages: $packages" >&2
	echo "install them with:" >&2
	echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive $cmd" >&2
	exit 1
fi

echo "deps: installing $packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # the package list is meant to split
apt-get install -y -qq --no-install-recommends $packages >/dev/null

# Check again: a package that installed but did not help is an error.
if [ "$want_sanitize" = 1 ] &&
	! links -fsanitize=address,undefined -fno-omit-frame-pointer; then
	echo "deps: -fsanitize=address,undefined still does not link" >&2
	exit 1
fi
if [ "$want_tsan" = 1 ] && ! links -fsanitize=thread; then
	echo "deps: -fsanitize=thread still does not link" >&2
	exit 1
fi
if ! has_cbor2; then
	echo "deps: /usr/bin/python3 still cannot import cbor2" >&2
	exit 1
fi
if ! has_jansson; then
	echo "deps: pkg-config still does not find jansson" >&2
	exit 1
fi
tools="cmake make gcc pkg-config nm"
[ "$want_clang" = 1 ] && tools="$tools clang"
[ "$want_bench" = 1 ] && tools="$tools iox-roudi"
if [ "$want_bench" = 1 ] && ! has_iceoryx_c; then
	echo "deps: the iceoryx_binding_c CMake package is still missing" >&2
	exit 1
fi
for tool in $tools; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "deps: $tool still missing" >&2
		exit 1
	fi
done
