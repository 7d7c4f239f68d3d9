# lib.sh - shared by the install tests: failures, free ports, a cluster of
# installed binaries on loopback, and the two example programs built outside
# the source tree. Sourced; the test sets $tmp and traps cleanup.
failed=0
pids=()
fail () { echo "FAIL: $*"; failed=1; }
die () { echo "FAIL: $*"; exit 1; }

# Stop every process we started (TERM, then KILL), the test's trap calls it.
stop_all () {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}

# A loopback TCP port nothing listens on, not handed out before.
used_ports=" "
free_port () {
    local port
    while true; do
        port=$((20000 + RANDOM % 40000))
        case "$used_ports" in *" $port "*) continue ;; esac
        [ -n "$(ss -Htln "sport = :$port")" ] && continue
        used_ports+="$port "
        echo "$port"
        return
    done
}

# Wait until something listens on 127.0.0.1:$1 (fails after 20 s).
wait_port () {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# start_cluster BINDIR PLUGIN: an ingester, a broker and a worker with the
# plugin loaded, from BINDIR, on free loopback ports; logs in $tmp/*.log.
start_cluster () {
    local bin=$1 plugin=$2
    pc=$(free_port) pw=$(free_port) pi=$(free_port)
    clients=tcp://127.0.0.1:$pc workers=tcp://127.0.0.1:$pw ingester=tcp://127.0.0.1:$pi
    "$bin/jr-ingester" --bind "$ingester" --db "$tmp/jr.db" > "$tmp/ingester.log" 2>&1 &
    pids+=($!)
    "$bin/jr-broker" --clients "$clients" --workers "$workers" --journal "$tmp/journal" \
        > "$tmp/broker.log" 2>&1 &
    pids+=($!)
    "$bin/jr-worker" --broker "$workers" --ingester "$ingester" --concurrency 2 \
        --plugin "$plugin" > "$tmp/worker.log" 2>&1 &
    pids+=($!)
    wait_port "$pi" && wait_port "$pc" && wait_port "$pw" \
        || { tail -n 20 "$tmp"/*.log; die "the cluster did not start"; }
}

# build_examples DIR SRC [PKG-CONFIG FLAGS...]: copy examples/submit.c and the
# example plugin to DIR (out of the tree) and build them with pkg-config alone.
# The plugin takes only the cflags: it resolves include/jr/task.h from the
# jr-worker that loads it, and must not pull libjr.so in.
build_examples () {
    local dir=$1 src=$2
    shift 2
    mkdir -p "$dir"
    cp "$src/examples/submit.c" "$src/examples/plugin/plugin.c" "$dir/"
    # JR_APP_CFLAGS: the sanitizers of a --sanitize build (tests/CMakeLists.txt).
    (cd "$dir" && cc ${JR_APP_CFLAGS:-} -o submit submit.c $(pkg-config --cflags --libs libjr) "$@") \
        || die "examples/submit.c does not build with pkg-config --cflags --libs libjr"
    (cd "$dir" && cc ${JR_APP_CFLAGS:-} -shared -fPIC -o plugin.so plugin.c $(pkg-config --cflags libjr)) \
        || die "the example plugin does not build with pkg-config --cflags libjr"
}

# run_clients BINDIR SUBMIT...: the example programs (each must print ten
# "ok" lines) and the jr CLI running the plugin's task; then the results
# are in the ingester's database.
run_clients () {
    local bin=$1 prog
    shift
    for prog in "$@"; do
        "$prog" "$clients" "$ingester" > "$tmp/out.txt" 2>&1 \
            || { cat "$tmp/out.txt"; fail "$prog failed against the installed cluster"; continue; }
        [ "$(grep -c ' ok: ' "$tmp/out.txt")" = 10 ] \
            || { cat "$tmp/out.txt"; fail "$prog did not get its ten echo results"; }
    done
    "$bin/jr" --broker "$clients" --ingester "$ingester" submit --wait reverse text=installed \
        > "$tmp/jr.txt" 2>&1 || { cat "$tmp/jr.txt"; fail "jr submit --wait reverse failed"; }
    grep -q dellatsni "$tmp/jr.txt" || { cat "$tmp/jr.txt"; fail "the plugin's task did not run"; }
    local want=$((10 * $# + 1)) stored
    stored=$(sqlite3 "$tmp/jr.db" "select count(*) from results where success = 1" 2>&1)
    [ "$stored" = "$want" ] || fail "$stored results stored, not $want"
}
