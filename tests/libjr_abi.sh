#!/usr/bin/env bash
# libjr_abi.sh - libjr.so exports exactly the functions of include/jr/jr.h,
# has its versioned SONAME, and installs with its symlinks; jr-worker exports
# what include/jr/task.h promises plugins.
# Usage: libjr_abi.sh CC NM READELF INCLUDE_DIR LIBJR JR_WORKER BUILD_DIR SOVERSION
set -euo pipefail
cc=$1 nm=$2 readelf=$3 include=$4 lib=$5 worker=$6 build=$7 soversion=$8
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail () { echo "FAIL: $*"; failed=1; }

# The functions a header declares, as "marked NAME" (with JR_EXPORT) or
# "unmarked NAME". The preprocessor turns JR_EXPORT into a marker word, then
# the text is cut at each ';' so a declaration wrapped over lines is one
# piece; the name is the identifier before the piece's first '('.
declared () {
    echo "#include <jr/$1>" | "$cc" -E -P -I"$include" -DJR_EXPORT=JR_EXPORT_MARK -x c - \
        | tr '\n' ' ' | tr ';' '\n' \
        | sed -nE '/^ *typedef /d
                   s/^([^(]*JR_EXPORT_MARK[^(]*[^A-Za-z0-9_(])(jr_[A-Za-z0-9_]+) *\(.*/marked \2/p
                   t
                   s/^([^(]*[^A-Za-z0-9_(])?(jr_[A-Za-z0-9_]+) *\(.*/unmarked \2/p' \
        | sort -u
}

# Every public function is marked, or hidden visibility would drop it.
for header in jr.h task.h; do
    declared "$header" > "$tmp/$header"
    [ -s "$tmp/$header" ] || fail "no function found in include/jr/$header: the parse is broken"
    while read -r _ name; do
        fail "include/jr/$header declares $name without JR_EXPORT"
    done < <(grep '^unmarked ' "$tmp/$header" || true)
done

# libjr.so: jr.h, nothing more, nothing less.
sed -n 's/^marked //p' "$tmp/jr.h" | sort -u > "$tmp/want"
"$nm" -D --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sort -u > "$tmp/have"
while read -r name; do fail "libjr.so exports $name, which include/jr/jr.h does not declare"; done \
    < <(comm -13 "$tmp/want" "$tmp/have")
while read -r name; do fail "libjr.so does not export $name, declared in include/jr/jr.h"; done \
    < <(comm -23 "$tmp/want" "$tmp/have")

# The CLI's JSON code lives in cli/, not in the library (hidden symbols
# still show in the symbol table of an unstripped build).
if "$nm" "$lib" | grep -q ' jr_json_'; then fail "libjr.so contains the CLI's JSON code"; fi

# jr-worker: task.h (with the jr.h it includes) for plugins, less the client,
# which the worker does not hold, and jr_plugin_init, the plugin's own.
sed -n 's/^marked //p' "$tmp/task.h" | grep -v '^jr_client_' | grep -vx jr_plugin_init \
    | sort -u > "$tmp/want_worker"
"$nm" -D --defined-only "$worker" | awk 'NF == 3 { print $3 }' | sort -u > "$tmp/have_worker"
while read -r name; do fail "jr-worker does not export $name, declared in include/jr/task.h"; done \
    < <(comm -23 "$tmp/want_worker" "$tmp/have_worker")

# The SONAME carries the ABI version, and an install has the usual chain
# libjr.so -> libjr.so.N -> libjr.so.N.M.P.
soname=$("$readelf" -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libjr.so.$soversion" ] || fail "SONAME is '$soname', not libjr.so.$soversion"
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log" \
    || { cat "$tmp/install.log"; fail "cmake --install failed"; }
libdir=$(dirname "$(find "$tmp/prefix" -name "libjr.so.$soversion" | head -1)")
[ -L "$libdir/libjr.so" ] && [ "$(readlink "$libdir/libjr.so")" = "libjr.so.$soversion" ] \
    || fail "installed libjr.so is not a link to libjr.so.$soversion"
real=$(readlink "$libdir/libjr.so.$soversion" || true)
[ -L "$libdir/libjr.so.$soversion" ] && [ -f "$libdir/$real" ] && [ ! -L "$libdir/$real" ] \
    || fail "installed libjr.so.$soversion is not a link to the library file"
[ -f "$tmp/prefix/include/jr/jr.h" ] && [ -f "$tmp/prefix/include/jr/task.h" ] \
    || fail "the public headers are not installed"

[ "$failed" = 0 ] && echo "libjr.so exports the $(wc -l < "$tmp/want") functions of jr.h"
exit "$failed"
