#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages jobrunner builds and tests with.
# Does nothing when they are all present; needs root (or sudo) otherwise.
set -euo pipefail
packages=(build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev uuid-dev
          libsqlite3-dev sqlite3 libcriterion-dev iproute2 nftables procps jq
          libmicrohttpd-dev prometheus curl
          libsystemd-dev help2man dpkg-dev file groff-base man-db systemd docker-compose)
# libmicrohttpd-dev: the daemons' /metrics; prometheus, curl: the tests scrape
# it and promtool checks it; jq: the CLI tests read jr's JSON; libsystemd-dev:
# sd_notify; help2man: man pages; dpkg-dev, file: cpack's dpkg-shlibdeps; groff-base, man-db, systemd:
# the install tests (groff, man -l, systemd-analyze); docker-compose (with
# python3-yaml): the compose tests validate and read the compose files.
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
