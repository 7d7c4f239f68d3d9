#!/usr/bin/env bash
# deploy/keys-init.sh - make the keys of a whole cluster once: one folder per
# process kind under DIR, as every jobrunner process reads it (--keys):
#   DIR/broker/    broker.cert_secret, allow/{worker,client,admin}/
#   DIR/ingester/  ingester.cert_secret, allow/{worker,client,admin}/
#   DIR/worker/    worker.cert_secret, broker.cert, ingester.cert
#   DIR/client/    client.cert_secret, broker.cert, ingester.cert
#   DIR/admin/     admin.cert_secret, broker.cert, ingester.cert
# Does nothing if DIR/broker exists already (so a compose one-shot service
# may run it on every start). Usage: keys-init.sh DIR [JR]
#   JR  the jr binary (default: jr on PATH)
set -euo pipefail
dir=${1:?usage: keys-init.sh DIR [JR]}
jr=${2:-jr}
if [ -e "$dir/broker" ]; then
  echo "keys-init: $dir/broker exists; keeping the keys there" >&2
  exit 0
fi
# The new keys are made in a hidden folder inside DIR, so the last step is a
# rename on one filesystem (DIR may be a volume: a container's / is not).
umask 077
mkdir -p "$dir"
work=$(mktemp -d "${dir%/}/.new.XXXXXX")
trap 'rm -rf "$work"' EXIT
for role in broker ingester worker client admin; do
  "$jr" keygen --role "$role" "$role" --out "$work/$role" >/dev/null
done
for server in broker ingester; do
  for role in worker client admin; do
    mkdir -p "$work/$server/allow/$role"
    cp "$work/$role/$role.cert" "$work/$server/allow/$role/"
  done
done
for peer in worker client admin; do
  cp "$work/broker/broker.cert" "$work/ingester/ingester.cert" "$work/$peer/"
done
chmod -R go-w "$work"
find "$work" -name '*.cert' -exec chmod 644 {} +
find "$work" -type d -exec chmod 755 {} +
for role in broker ingester worker client admin; do
  mv "$work/$role" "$dir/$role"
done
echo "keys-init: keys in $dir/{broker,ingester,worker,client,admin}" >&2
