#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages jobrunner builds and tests with.
# Does nothing when they are all present; needs root (or sudo) otherwise.
set -euo pipefail
packages=(build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev uuid-dev
          libsqlite3-dev sqlite3 libcriterion-dev iproute2 nftables procps jq
          docker-compose)   # tests/compose: docker-compose config (brings python3, python3-yaml)
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
