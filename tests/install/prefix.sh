#!/usr/bin/env bash
# prefix.sh - cmake --install into a temporary prefix has everything: the
# daemons, libjr (shared with its SONAME, and static), headers, libjr.pc,
# the CMake package, man pages, units; third-party programs build from it
# with pkg-config alone and with find_package(jobrunner), and run against a
# cluster of the installed binaries with no LD_LIBRARY_PATH.
# Usage: prefix.sh BUILD_DIR SOURCE_DIR VERSION
set -euo pipefail
build=$1 src=$2 version=$3
soversion=${version%%.*}
tmp=$(mktemp -d)
source "$src/tests/install/lib.sh"
trap 'stop_all; rm -rf "$tmp"' EXIT
unset LD_LIBRARY_PATH
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" > "$tmp/install.log" 2>&1 \
    || { cat "$tmp/install.log"; die "cmake --install failed"; }

# The files, each.
for f in bin/jr-broker bin/jr-worker bin/jr-ingester bin/jr \
         "lib/libjr.so.$version" lib/libjr.a include/jr/jr.h include/jr/task.h \
         lib/pkgconfig/libjr.pc lib/cmake/jobrunner/jobrunnerConfig.cmake \
         lib/cmake/jobrunner/jobrunnerConfigVersion.cmake lib/cmake/jobrunner/jobrunnerTargets.cmake \
         share/man/man1/jr-broker.1 share/man/man1/jr-worker.1 share/man/man1/jr-ingester.1 \
         share/man/man1/jr.1 lib/systemd/system/jr-broker.service \
         lib/systemd/system/jr-ingester.service lib/systemd/system/jr-worker.service \
         etc/default/jobrunner share/jobrunner/keys-init.sh; do
    [ -f "$prefix/$f" ] || fail "not installed: $f"
done
for conf in "$src"/deploy/conf/*.conf; do
    [ -e "$conf" ] || continue
    [ -f "$prefix/etc/jobrunner/$(basename "$conf")" ] || fail "not installed: etc/jobrunner/$(basename "$conf")"
done
grep -q "^ExecStart=$prefix/bin/jr-broker --config $prefix/etc/jobrunner/jr-broker.conf" \
    "$prefix/lib/systemd/system/jr-broker.service" || fail "the unit in the prefix does not name its binary and config"
[ "$(readlink "$prefix/lib/libjr.so")" = "libjr.so.$soversion" ] || fail "libjr.so is not a link to libjr.so.$soversion"
[ "$(readlink "$prefix/lib/libjr.so.$soversion")" = "libjr.so.$version" ] \
    || fail "libjr.so.$soversion is not a link to libjr.so.$version"
soname=$(readelf -d "$prefix/lib/libjr.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libjr.so.$soversion" ] || fail "SONAME is '$soname'"
ar t "$prefix/lib/libjr.a" > "$tmp/members"
grep -q '^client.c.o$' "$tmp/members" || fail "libjr.a holds no client"
for b in "$prefix"/bin/*; do
    ! ldd "$b" | grep 'not found' || fail "$b: a library is not found"
done

# Man pages: roff with the flags in it, that groff renders.
for page in jr-broker:--journal jr-worker:--health-file jr-ingester:--bind jr:submit; do
    name=${page%%:*} flag=${page#*:}
    file=$prefix/share/man/man1/$name.1
    grep -q '^\.TH ' "$file" || fail "$name.1 is not a man page"
    groff -man -Tutf8 "$file" 2> "$tmp/groff.err" | sed 's/.\x08//g' > "$tmp/$name.txt"
    [ -s "$tmp/groff.err" ] && { cat "$tmp/groff.err"; fail "groff complains about $name.1"; }
    grep -q -- "$flag" "$tmp/$name.txt" || fail "$name.1 does not show $flag"
done
MANPAGER=cat MANWIDTH=100 man -l "$prefix/share/man/man1/jr-broker.1" > "$tmp/man.txt" 2>&1 \
    || { cat "$tmp/man.txt"; fail "man -l jr-broker.1 failed"; }
grep -q -- --journal "$tmp/man.txt" || fail "man -l jr-broker.1 does not show --journal"

# pkg-config alone (PKG_CONFIG_PATH names the prefix); the rpath is this
# prefix's business, since it is not one the loader knows.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
pkg-config --exists --print-errors libjr || die "pkg-config does not find libjr"
[ "$(pkg-config --modversion libjr)" = "$version" ] || fail "libjr.pc has version $(pkg-config --modversion libjr)"
[[ " $(pkg-config --static --libs libjr) " == *" -lzmq "* ]] || fail "pkg-config --static does not give libzmq"
build_examples "$tmp/app" "$src" "-Wl,-rpath,$prefix/lib"

# find_package(jobrunner): jobrunner::jr and jobrunner::jr_static.
mkdir -p "$tmp/cmake-app"
cp "$src/examples/submit.c" "$tmp/cmake-app/"
cat > "$tmp/cmake-app/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.18)
project(jr_app LANGUAGES C)
find_package(jobrunner 0.1 REQUIRED)
add_executable(submit_shared submit.c)
target_link_libraries(submit_shared jobrunner::jr)
add_executable(submit_static submit.c)
target_link_libraries(submit_static jobrunner::jr_static)
CMAKE
(cmake -S "$tmp/cmake-app" -B "$tmp/cmake-app/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="${JR_APP_CFLAGS:-}" -DCMAKE_EXE_LINKER_FLAGS="${JR_APP_CFLAGS:-}" \
    && cmake --build "$tmp/cmake-app/build") > "$tmp/cmake-app.log" 2>&1 \
    || { cat "$tmp/cmake-app.log"; die "a CMake project with find_package(jobrunner) does not build"; }
readelf -d "$tmp/cmake-app/build/submit_static" > "$tmp/dynamic"
grep -q 'libjr\.so' "$tmp/dynamic" && fail "submit_static links libjr.so, not libjr.a"

start_cluster "$prefix/bin" "$tmp/app/plugin.so"
run_clients "$prefix/bin" "$tmp/app/submit" "$tmp/cmake-app/build/submit_shared" \
    "$tmp/cmake-app/build/submit_static"
[ "$failed" = 0 ] || tail -n 20 "$tmp"/*.log
[ "$failed" = 0 ] && echo "installed into a prefix: files, pkg-config, find_package, cluster all good"
exit "$failed"
