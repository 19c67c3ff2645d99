#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Description: install the build into a temporary prefix and use it the way
# a user would: a program built with pkg-config, a CMake project with
# find_package(shmcap), and a check that the library exports only shmcap_*
# symbols.
#
# Usage: install_test.sh SOURCE_DIR BUILD_DIR [CC]
# Exit 0 passes, 1 fails, 77 skips (sanitizer builds).
set -eu

if [ $# -lt 2 ]; then
	echo "usage: $0 SOURCE_DIR BUILD_DIR [CC]" >&2
	exit 2
fi
src=$1
build=$2
cc=${3:-cc}
cmake=${CMAKE:-cmake}

if [ -n "${SHMCAP_SANITIZE:-}" ]; then
	echo "skipped: sanitizer build (${SHMCAP_SANITIZE}) is not for installing"
	exit 77
fi
for tool in pkg-config nm "$cmake" "$cc"; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "FAIL: $tool not found (scripts/deps.sh installs it)" >&2
		exit 1
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmcap-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

# Run a command quietly, showing its output only when it fails.
quiet() {
	if ! "$@" >"$tmp/log" 2>&1; then
		cat "$tmp/log" >&2
		echo "FAIL: $*" >&2
		exit 1
	fi
}

echo "== install $build into $prefix"
quiet "$cmake" --install "$build" --prefix "$prefix"

lib=$(find "$prefix" -name libshmcap.so -print -quit)
if [ -z "$lib" ]; then
	echo "FAIL: libshmcap.so not installed" >&2
	exit 1
fi
libdir=$(dirname "$lib")
for f in include/shmcap.h include/shmcap/version.h; do
	if [ ! -f "$prefix/$f" ]; then
		echo "FAIL: $f not installed" >&2
		exit 1
	fi
done
for f in "$libdir/libshmcap.a" "$libdir/pkgconfig/shmcap.pc" \
	 "$libdir/cmake/shmcap/shmcapConfig.cmake" \
	 "$libdir/cmake/shmcap/shmcapConfigVersion.cmake"; do
	if [ ! -f "$f" ]; then
		echo "FAIL: ${f#"$prefix"/} not installed" >&2
		exit 1
	fi
done
for page in "$src"/man/*.[137]; do
	[ -f "$page" ] || continue
	name=$(basename "$page")
	if [ ! -f "$prefix/share/man/man${name##*.}/$name" ]; then
		echo "FAIL: man page $name not installed" >&2
		exit 1
	fi
done

echo "== exported symbols of ${lib#"$prefix"/}"
soname=$(objdump -p "$lib" 2>/dev/null | awk '$1 == "SONAME" { print $2 }')
echo "SONAME $soname"
case $soname in
libshmcap.so.[0-9]*.[0-9]*) ;;
*)
	echo "FAIL: unexpected SONAME '$soname'" >&2
	exit 1
	;;
esac
# Lines are "VALUE TYPE NAME@@VERSION", or "VALUE A VERSION" for the
# version node itself.
nm -D --defined-only "$lib" >"$tmp/symbols"
bad=$(awk '$2 != "A" {
	name = $3; version = name
	sub(/@.*/, "", name); sub(/^[^@]*@+/, "", version)
	if (name !~ /^shmcap_/ || name ~ /^shmcap__/ || version !~ /^SHMCAP_/)
		print $2, $3
}' "$tmp/symbols")
if [ -n "$bad" ]; then
	echo "FAIL: exported symbols outside the shmcap_ namespace or unversioned:" >&2
	echo "$bad" >&2
	exit 1
fi
nfuncs=$(awk '$2 == "T" || $2 == "W" || $2 == "i"' "$tmp/symbols" | wc -l)
if [ "$nfuncs" -eq 0 ]; then
	echo "FAIL: no exported functions" >&2
	exit 1
fi
echo "$nfuncs functions exported, all shmcap_* and versioned"

cat >"$tmp/consumer.c" <<'EOF'
/* Uses the installed library as a program outside the project would. */
#include <errno.h>
#include <stdio.h>

#include <shmcap.h>

static int fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s (%s)\n", what, shmcap_strerror(err),
		shmcap_err_name(err));
	return 1;
}

int main(void)
{
	shmcap_cap *cap = NULL;
	shmcap_map *map = NULL;
	volatile unsigned char *p;
	int ret;

	printf("shmcap %s\n", shmcap_version_string());
	if (shmcap_version() != SHMCAP_VERSION_HEX)
		return fail("version differs from the header", -EINVAL);
	ret = shmcap_region_create(4096, 0, &cap);
	if (ret < 0)
		return fail("shmcap_region_create", ret);
	ret = shmcap_region_map(cap, 0, 4096, NULL,
				SHMCAP_MAP_READ | SHMCAP_MAP_WRITE, &map);
	if (ret < 0)
		return fail("shmcap_region_map", ret);
	p = shmcap_map_addr(map);
	if (p == NULL || shmcap_map_size(map) < 4096)
		return fail("shmcap_map_addr", -EINVAL);
	p[0] = 0x5a;
	p[4095] = 0xa5;
	if (p[0] != 0x5a || p[4095] != 0xa5)
		return fail("read back", -EIO);
	shmcap_map_unmap(map);
	shmcap_cap_close(cap);
	printf("region of 4096 bytes created, mapped, written, read: ok\n");
	return 0;
}
EOF

echo "== build with pkg-config: $cc \$(pkg-config --cflags --libs shmcap)"
export PKG_CONFIG_PATH=$libdir/pkgconfig
pkg-config --exact-version="$(pkg-config --modversion shmcap)" shmcap
flags=$(pkg-config --cflags --libs shmcap)
echo "pkg-config: $flags"
quiet "$cc" -std=c11 -Wall -Wextra -Werror -o "$tmp/consumer-pc" \
	"$tmp/consumer.c" $flags
echo "== run it"
LD_LIBRARY_PATH=$libdir "$tmp/consumer-pc"
loaded=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/consumer-pc" |
	awk '/libshmcap/ { print $3 }')
case $loaded in
"$libdir"/*) ;;
*)
	echo "FAIL: the program loaded '$loaded', not the installed library" >&2
	exit 1
	;;
esac

echo "== build with CMake: find_package(shmcap 0.1 REQUIRED)"
mkdir "$tmp/proj"
cp "$tmp/consumer.c" "$tmp/proj/consumer.c"
cat >"$tmp/proj/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.25)
project(shmcap_consumer C)
# While the major version is 0, another minor version must not be accepted.
find_package(shmcap 0.2 QUIET)
if(shmcap_FOUND)
  message(FATAL_ERROR "find_package(shmcap 0.2) accepted version ${shmcap_VERSION}")
endif()
unset(shmcap_DIR CACHE)
find_package(shmcap 0.1 REQUIRED)
message(STATUS "found shmcap ${shmcap_VERSION} in ${shmcap_DIR}")
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE shmcap::shmcap)
add_executable(consumer_static consumer.c)
target_link_libraries(consumer_static PRIVATE shmcap::shmcap_static)
EOF
quiet "$cmake" -S "$tmp/proj" -B "$tmp/proj/build" \
	-DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc"
grep -- '-- found shmcap' "$tmp/log" || true
quiet "$cmake" --build "$tmp/proj/build"
echo "== run the shared and the static build"
LD_LIBRARY_PATH=$libdir "$tmp/proj/build/consumer"
"$tmp/proj/build/consumer_static"

echo "install test: ok"
