/*  test_hosts.c - workers in two other network namespaces, over CURVE; one link cut for 10 s under load  */
#include "tests/system/chaos.h"
#include "tests/system/netns.h"
#include <criterion/criterion.h>
#include <signal.h>

static jr_h_env_t env;
static bool s_built;  //  namespaces made by this test, to remove

static void
s_fini (void)
{
    jr_h_cleanup ();  //  the workers first: they live in the namespaces
    if (s_built)
        ns_teardown ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (hosts, .fini = s_fini, .timeout = 180);

//  A worker inside namespace ns: `ip netns exec` execs jr-worker, so the
//  harness's PDEATHSIG still ties it to this test.
static pid_t
s_ns_worker (const char *ns, const char *name)
{
    char bin[512];
    jr_h_bin (bin, sizeof bin, "jr-worker");
    char *argv[] = {
        "ip",           "netns",      "exec",          (char *)ns,      bin, "--broker",
        env.workers_ep, "--ingester", env.ingester_ep, "--concurrency", "2", "--name",
        (char *)name,   NULL
    };
    return jr_h_spawn_argv (&env, name, argv);
}

Test (hosts, link_to_one_namespace_cut_for_10s)
{
    const char *why = ns_unavailable ();
    if (why) {
        printf ("hosts: skipped: %s\n", why);
        cr_skip_test ("network namespaces unavailable: %s", why);
    }
    int64_t start = zclock_usecs ();
    jr_h_env_init (&env, "hosts");
    s_built = true;
    int step = ns_setup ();
    CHECK (step == 0, "building namespaces failed at step %d", step);
    //  Ports that face other hosts take keys: every process has its own.
    CHECK (jr_h_env_keys (&env), "deploy/keys-init.sh failed");
    //  Broker and ingester in the root namespace, facing the workers on the
    //  bridge address only; clients (this test) stay on loopback for the
    //  broker and use the bridge address for the ingester.
    snprintf (env.workers_ep, sizeof env.workers_ep, "tcp://%s:%d", NS_HUB_ADDR, env.port_workers);
    snprintf (env.ingester_ep, sizeof env.ingester_ep, "tcp://%s:%d", NS_HUB_ADDR,
              env.port_ingester);
    jr_h_spawn (&env, "ingester", "jr-ingester", "--bind", env.ingester_ep, "--db", env.db, NULL);
    CHECK (jr_h_wait_tcp (NS_HUB_ADDR, env.port_ingester, 10000), "ingester not listening");
    jr_h_broker (&env, NULL);
    CHECK (jr_h_wait_tcp (NS_HUB_ADDR, env.port_workers, 10000), "broker not listening");
    CHECK (ns_can_reach ("jrc-a", NS_HUB_ADDR, env.port_workers, 5000), "jrc-a cannot reach");
    CHECK (ns_can_reach ("jrc-b", NS_HUB_ADDR, env.port_workers, 5000), "jrc-b cannot reach");
    s_ns_worker ("jrc-a", "a1");
    s_ns_worker ("jrc-a", "a2");
    s_ns_worker ("jrc-b", "b1");
    s_ns_worker ("jrc-b", "b2");

    ch_set_t set;
    ch_set_init (&set, 20000, CH_MIX, 0, 0);
    ch_load_t load = { .broker = env.clients_ep,
                       .ingester = env.ingester_ep,
                       .set = &set,
                       .chunk = 1000,
                       .pace_ms = 900 };
    ch_load_start (&load);
    CHECK (!ch_load_sleep (&load, 3000), "the load ended before the cut");
    CHECK (ns_link ("a", false) == 0, "cut the link to jrc-a");
    int64_t cut = zclock_usecs ();
    bool done_during_cut = ch_load_sleep (&load, 10000);
    CHECK (ns_link ("a", true) == 0, "restore the link to jrc-a");
    printf ("hosts: link to jrc-a down for %.1f s, from %.1f s into the test%s\n",
            (double)(zclock_usecs () - cut) / 1e6, (double)(cut - start) / 1e6,
            done_during_cut ? " (the load finished while it was down)" : "");
    int64_t restored = zclock_usecs ();
    //  The workers behind the cut come back on their own: each says READY
    //  again once its link works (it counts the broker silent, reconnects).
    bool back = false;
    for (int i = 0; i < 1500 && !back; i++) {
        back = ch_log_count (&env, "broker.log", "worker=a1@vm slots") >= 2
               && ch_log_count (&env, "broker.log", "worker=a2@vm slots") >= 2;
        if (!back)
            jr_h_sleep_ms (10);
    }
    printf ("hosts: workers of jrc-a %s %.2f s after the restore\n",
            back ? "ready again" : "NOT back", (double)(zclock_usecs () - restored) / 1e6);
    ch_load_join (&load);
    printf ("hosts: load ended %.1f s after the restore\n",
            (double)(load.done_us - restored) / 1e6);
    printf ("hosts: link cut: submit resends of whole chunks %zu, results seen %zu, wait %s;"
            " wait_many returned %.1f s after the last result was stored\n",
            load.resubmits, load.seen, jr_errname (load.wait_rc), ch_wait_lag (env.db, &load));
    ch_log_grep (&env, "broker.log", "forgotten", 6);
    ch_log_grep (&env, "broker.log", "worker ready", 12);
    ch_log_grep (&env, "a1.log", "broker", 12);
    CHECK (load.wait_rc == 0, "wait_many: %s after %zu results", jr_strerror (load.wait_rc),
           load.seen);
    ch_count_t c;
    CHECK (ch_count (env.db, &set, &c), "db");
    ch_print ("link cut", &c, ch_since (start));
    //  Where did the work go?
    sqlite3 *db;
    CHECK (sqlite3_open_v2 (env.db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "db");
    printf ("hosts: stored by a1 %lld a2 %lld b1 %lld b2 %lld\n",
            (long long)ch_query_int (db, "SELECT count(*) FROM results WHERE worker LIKE 'a1@%'"),
            (long long)ch_query_int (db, "SELECT count(*) FROM results WHERE worker LIKE 'a2@%'"),
            (long long)ch_query_int (db, "SELECT count(*) FROM results WHERE worker LIKE 'b1@%'"),
            (long long)ch_query_int (db, "SELECT count(*) FROM results WHERE worker LIKE 'b2@%'"));
    sqlite3_close (db);
    fflush (stdout);
    CHECK (back, "the workers of jrc-a did not say READY again after the link came back");
    CHECK (c.accepted == set.n, "only %zu accepted", c.accepted);
    CHECK (ch_exactly_once (&c), "accepted %zu stored %lld missing %zu unexpected %lld", c.accepted,
           (long long)c.rows, c.missing, (long long)c.unexpected);
    ch_set_free (&set);
}
