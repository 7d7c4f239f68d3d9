#!/usr/bin/env bash
# deb.sh - cpack -G DEB builds jobrunner_VERSION_ARCH.deb with the expected
# files and control fields; dpkg -i installs it (system user, units in
# /lib/systemd/system that systemd-analyze verify accepts), a cluster runs
# from /usr/bin, and dpkg --purge leaves nothing of it. Needs root; systemd
# need not run (no unit is started).
# Usage: deb.sh BUILD_DIR SOURCE_DIR VERSION
set -euo pipefail
build=$1 src=$2 version=$3
soversion=${version%%.*}
tmp=$(mktemp -d)
source "$src/tests/install/lib.sh"
unset LD_LIBRARY_PATH
[ "$(id -u)" = 0 ] || die "needs root (dpkg -i)"
# Someone's own install is not ours to purge.
[[ "$(dpkg-query -W -f='${Status}' jobrunner 2>/dev/null || true)" == *"ok installed"* ]] \
    && die "a jobrunner package is installed already; remove it first"
# A jobrunner user that was there before is not the package's: kept.
had_user=0
getent passwd jobrunner > /dev/null && had_user=1
marker=/var/lib/jobrunner/.user-made-by-jobrunner-package
installed=0
cleanup () {
    stop_all
    [ "$installed" = 1 ] && dpkg --purge jobrunner > /dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

arch=$(dpkg --print-architecture)
deb=$tmp/deb/jobrunner_${version}_$arch.deb
(cd "$build" && cpack -G DEB -B "$tmp/deb") > "$tmp/cpack.log" 2>&1 \
    || { cat "$tmp/cpack.log"; die "cpack -G DEB failed"; }
[ -f "$deb" ] || { ls "$tmp/deb"; die "no $(basename "$deb")"; }

# Its files, each.
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' > "$tmp/files"
expected=(/usr/bin/jr-broker /usr/bin/jr-worker /usr/bin/jr-ingester /usr/bin/jr
          "/usr/lib/libjr.so.$version" "/usr/lib/libjr.so.$soversion" /usr/lib/libjr.so /usr/lib/libjr.a
          /usr/include/jr/jr.h /usr/include/jr/task.h /usr/lib/pkgconfig/libjr.pc
          /usr/lib/cmake/jobrunner/jobrunnerConfig.cmake
          /usr/lib/cmake/jobrunner/jobrunnerConfigVersion.cmake
          /usr/lib/cmake/jobrunner/jobrunnerTargets.cmake
          /usr/share/man/man1/jr-broker.1 /usr/share/man/man1/jr-worker.1
          /usr/share/man/man1/jr-ingester.1 /usr/share/man/man1/jr.1
          /lib/systemd/system/jr-broker.service /lib/systemd/system/jr-ingester.service
          /lib/systemd/system/jr-worker.service /etc/default/jobrunner
          /usr/share/jobrunner/keys-init.sh)
for conf in "$src"/deploy/conf/*.conf; do
    [ -e "$conf" ] && expected+=("/etc/jobrunner/$(basename "$conf")")
done
for f in "${expected[@]}"; do
    grep -qx -- "$f" "$tmp/files" || fail "the .deb lacks $f"
done
grep -q '^/usr/local' "$tmp/files" && fail "the .deb has files under /usr/local"

# Its control fields and conffiles.
[ "$(dpkg-deb -f "$deb" Package)" = jobrunner ] || fail "Package is not jobrunner"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "Version is not $version"
[ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || fail "Architecture is not $arch"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libczmq4 libzmq5 libuuid1 libsqlite3-0 libsystemd0 libc6; do
    [[ ", $depends," == *", $lib"[\ ,]* ]] || fail "Depends ($depends) lacks $lib"
done
dpkg-deb -I "$deb" > "$tmp/info"
grep -q 'Description:' "$tmp/info" || fail "dpkg-deb -I shows no description"
dpkg-deb --ctrl-tarfile "$deb" | tar -t > "$tmp/control"  # whole: grep -q would cut tar's pipe
for script in postinst prerm postrm; do
    grep -qx "./$script" "$tmp/control" || fail "the .deb has no $script"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles > "$tmp/conffiles"
for f in "${expected[@]}"; do
    case "$f" in /etc/*) grep -qx -- "$f" "$tmp/conffiles" || fail "$f is not a conffile" ;; esac
done

# Install: the runtime libraries are on the machine that built it.
dpkg -i "$deb" > "$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; installed=1; die "dpkg -i failed"; }
installed=1
getent passwd jobrunner > /dev/null || fail "postinst made no jobrunner user"
made_user=0
[ -e "$marker" ] && made_user=1
if [ "$had_user" = 0 ]; then
    [ "$made_user" = 1 ] || fail "postinst made the user but left no marker"
    [ "$(getent passwd jobrunner | cut -d: -f6)" = /var/lib/jobrunner ] \
        || fail "the jobrunner user is not the one postinst makes"
fi
for b in jr-broker jr-worker jr-ingester jr; do
    [ -x "/usr/bin/$b" ] || fail "/usr/bin/$b is not installed"
    ! ldd "/usr/bin/$b" | grep 'not found' || fail "/usr/bin/$b: a library is not found"
done
# Clean: systemd-analyze verify says nothing about our units.
systemd-analyze verify /lib/systemd/system/jr-broker.service /lib/systemd/system/jr-ingester.service \
    /lib/systemd/system/jr-worker.service > "$tmp/verify.log" 2>&1 \
    || { cat "$tmp/verify.log"; fail "systemd-analyze verify refuses the units"; }
grep -q 'jr-' "$tmp/verify.log" && { cat "$tmp/verify.log"; fail "systemd-analyze verify warns about the units"; }

# Third-party programs against /usr (no PKG_CONFIG_PATH, no rpath), and a
# cluster from /usr/bin.
unset PKG_CONFIG_PATH
build_examples "$tmp/app" "$src"
start_cluster /usr/bin "$tmp/app/plugin.so"
run_clients /usr/bin "$tmp/app/submit"
stop_all

# Purge: its files, its conffiles and its user are gone.
dpkg --purge jobrunner > "$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log"; fail "dpkg --purge failed"; }
installed=0
[[ "$(dpkg-query -W -f='${Status}' jobrunner 2>/dev/null || true)" == *"ok installed"* ]] \
    && fail "jobrunner is still installed"
for f in "${expected[@]}"; do
    [ -e "$f" ] || [ -L "$f" ] && fail "$f is left after the purge"
done
# (Another process on the host may add or remove a jobrunner user of its
# own meanwhile: what counts is the marker postinst left.)
if [ "$made_user" = 1 ]; then
    getent passwd jobrunner > /dev/null && fail "the jobrunner user is left after the purge"
    getent group jobrunner > /dev/null && fail "the jobrunner group is left after the purge"
elif [ "$had_user" = 1 ]; then
    getent passwd jobrunner > /dev/null || fail "the purge removed a jobrunner user it did not make"
fi
[ -e "$marker" ] && fail "the purge left its marker"
[ "$failed" = 0 ] && echo "the .deb builds, lists its files, installs, runs and purges cleanly"
exit "$failed"
