#!/usr/bin/env bash
# demo.sh - build jobrunner and run its main job on the embedded defaults:
# an ingester (SQLite), a broker and two workers on loopback, 1,000 mixed jobs,
# a summary of their results, then every process stopped.
# Usage: deploy/demo.sh [--jobs N] [--workers N]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=1000 workers=2
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) jobs=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    *) echo "usage: deploy/demo.sh [--jobs N] [--workers N]" >&2; exit 2 ;;
  esac
done
bash deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
bin=build/bin
run=build/demo
rm -rf "$run" && mkdir -p "$run"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
# Loopback only, on ports chosen for the demo so a running system is not disturbed.
export JR_BROKER=tcp://127.0.0.1:15570 JR_INGESTER=tcp://127.0.0.1:15572
"$bin/jr-ingester" --bind tcp://127.0.0.1:15572 --db "$run/jr.db" 2>"$run/ingester.log" & pids+=($!)
"$bin/jr-broker" --clients tcp://127.0.0.1:15570 --workers tcp://127.0.0.1:15571 \
  --journal "$run/journal" 2>"$run/broker.log" & pids+=($!)
for i in $(seq 1 "$workers"); do
  "$bin/jr-worker" --broker tcp://127.0.0.1:15571 --ingester tcp://127.0.0.1:15572 \
    --name "worker$i" 2>"$run/worker$i.log" & pids+=($!)
done
echo "demo: ingester, broker and $workers workers started; logs in $run/"
"$bin/jr-demo" --jobs "$jobs"
echo
echo "stored in $run/jr.db (table results), by task and outcome:"
sqlite3 -column -header "$run/jr.db" \
  "SELECT task, CASE success WHEN 1 THEN 'succeeded' ELSE 'failed' END AS outcome, count(*) AS jobs
     FROM results GROUP BY 1, 2 ORDER BY 1, 2"
id=$(sqlite3 "$run/jr.db" "SELECT id FROM results WHERE task = 'sha256' LIMIT 1")
echo
echo "one result, as 'jr result $id' prints it:"
"$bin/jr" result "$id"
