/*  test_pipeline.c - the real binaries on loopback: throughput, waiting tasks, kill -9, garbage  */
#include "proto/proto.h"
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <czmq.h>
#include <msgpack.h>
#include <signal.h>
#include <sqlite3.h>
#include <jr/jr.h>

static jr_h_env_t env;

static void
s_fini (void)
{
    jr_h_cleanup ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (pipeline, .fini = s_fini, .timeout = 300);

//  A vars map {key: text, ...} from alternating keys and values.
static void
s_vars (msgpack_sbuffer *buf, int pairs, ...)
{
    msgpack_packer pk;
    msgpack_sbuffer_init (buf);
    msgpack_packer_init (&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, (size_t)pairs);
    va_list args;
    va_start (args, pairs);
    for (int i = 0; i < pairs * 2; i++) {
        const char *s = va_arg (args, const char *);
        msgpack_pack_str (&pk, strlen (s));
        msgpack_pack_str_body (&pk, s, strlen (s));
    }
    va_end (args);
}

static sqlite3 *
s_db (void)
{
    sqlite3 *db;
    CHECK (sqlite3_open_v2 (env.db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "open db");
    sqlite3_busy_timeout (db, 5000);
    return db;
}

static int64_t
s_query_int (sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt;
    CHECK (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) == SQLITE_OK, "prepare %s: %s", sql,
           sqlite3_errmsg (db));
    CHECK (sqlite3_step (stmt) == SQLITE_ROW, "step %s", sql);
    int64_t v = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    return v;
}

typedef struct {
    size_t seen, ok;
} s_tally_t;

static bool
s_count (const jr_job_t *job, void *arg)
{
    s_tally_t *tally = arg;
    tally->seen++;
    tally->ok += job->success;
    return true;
}

//  Poll the broker until a job reaches a state (false after ~20 s).
static bool
s_await_state (jr_client_t *client, const uint8_t id[JR_ID_SIZE], int want)
{
    for (int i = 0; i < 2000; i++) {
        int state = 0;
        uint32_t attempt;
        if (jr_client_status (client, id, &state, &attempt) == 0 && state == want)
            return true;
        jr_h_sleep_ms (10);
    }
    return false;
}

//  10,000 jobs through three workers, each stored once with ordered
//  timestamps; with keys, CurveZMQ on every socket.
static void
s_ten_thousand (const char *name, bool keys)
{
    jr_h_env_init (&env, name);
    if (keys)
        CHECK (jr_h_env_keys (&env), "deploy/keys-init.sh failed");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    jr_h_worker (&env, "w1", 2, NULL);
    jr_h_worker (&env, "w2", 2, NULL);
    jr_h_worker (&env, "w3", 2, NULL);

    enum { N = 10000 };
    static jr_job_t jobs[N];
    static msgpack_sbuffer vars[N];
    static uint8_t ids[N][JR_ID_SIZE];
    for (int i = 0; i < N; i++) {
        char text[64];
        snprintf (text, sizeof text, "job %d of the ten thousand", i);
        if (i % 4 == 3) {
            s_vars (&vars[i], 2, "data", text, "rounds", "10");
            jr_job_init (&jobs[i], "sha256");
        }
        else {
            s_vars (&vars[i], 1, "msg", text);
            jr_job_init (&jobs[i], "echo");
        }
        jobs[i].vars = (jr_bytes_t){ (const uint8_t *)vars[i].data, vars[i].size };
        memcpy (ids[i], jobs[i].id, JR_ID_SIZE);
    }
    jr_client_t *client = jr_client_new (env.clients_ep, env.ingester_ep);
    CHECK (client, "client");
    int64_t start = zclock_usecs ();
    int rc = jr_client_submit_many (client, jobs, N, NULL);
    CHECK (rc == 0, "submit_many: %s", jr_strerror (rc));
    s_tally_t tally = { 0 };
    rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, N, 120000, s_count,
                              &tally);
    int64_t elapsed = zclock_usecs () - start;
    CHECK (rc == 0, "wait_many: %s after %zu results", jr_strerror (rc), tally.seen);
    CHECK (tally.seen == N && tally.ok == N, "seen %zu ok %zu", tally.seen, tally.ok);
    printf ("pipeline: %d jobs over 3 workers%s in %.3f s: %.0f jobs/s\n", N,
            keys ? " over CURVE" : "", elapsed / 1e6, N / (elapsed / 1e6));

    sqlite3 *db = s_db ();
    CHECK (s_query_int (db, "SELECT count(*) FROM results") == N, "rows");
    CHECK (s_query_int (db, "SELECT count(DISTINCT id) FROM results") == N, "distinct ids");
    int64_t bad =
        s_query_int (db, "SELECT count(*) FROM results WHERE NOT ("
                         "created_us > 0 AND created_us <= accepted_us AND "
                         "accepted_us <= dispatched_us AND dispatched_us <= started_us AND "
                         "started_us <= completed_us AND completed_us <= ingested_us)");
    CHECK (bad == 0, "%lld rows with missing or unordered timestamps", (long long)bad);
    sqlite3_close (db);
    for (int i = 0; i < N; i++)
        msgpack_sbuffer_destroy (&vars[i]);
    jr_client_destroy (&client);
}

Test (pipeline, ten_thousand_jobs_three_workers_stored_once)
{
    s_ten_thousand ("10k", false);
}

Test (pipeline, ten_thousand_jobs_over_curve_on_every_socket)
{
    s_ten_thousand ("10k-curve", true);
    //  Every hop was a CURVE one: each process started with its keys.
    char *log = jr_h_log (&env, "broker");
    CHECK (strstr (log, "keys=") && !strstr (log, "keys=(none)"), "the broker ran without keys");
    free (log);
    const char *others[] = { "ingester", "w1", "w2", "w3" };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        log = jr_h_log (&env, others[i]);
        CHECK (strstr (log, "keys=") && !strstr (log, "keys=(none)"), "%s ran without keys",
               others[i]);
        free (log);
    }
}

Test (pipeline, job_for_unserved_task_waits_for_a_worker)
{
    jr_h_env_init (&env, "wait");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    jr_h_worker (&env, "echo-only", 1, "echo");
    jr_client_t *client = jr_client_new (env.clients_ep, env.ingester_ep);
    msgpack_sbuffer vars;
    s_vars (&vars, 1, "data", "abc");
    jr_job_t job;
    jr_job_init (&job, "sha256");
    job.vars = (jr_bytes_t){ (const uint8_t *)vars.data, vars.size };
    CHECK (jr_client_submit (client, &job) == 0, "submit");
    //  Nobody serves sha256: it must stay queued, and nothing gets stored.
    for (int i = 0; i < 10; i++) {
        int state;
        uint32_t attempt;
        CHECK (jr_client_status (client, job.id, &state, &attempt) == 0, "status");
        CHECK (state == JR_STATE_QUEUED, "state %s", jr_state_name (state));
        jr_h_sleep_ms (100);
    }
    jr_job_t *result = NULL;
    CHECK (jr_client_result (client, job.id, &result) == JR_ENOT_FOUND, "no result yet");
    jr_h_worker (&env, "hasher", 1, "sha256");
    CHECK (jr_client_wait (client, job.id, 30000, &result) == 0, "result once served");
    CHECK (result->success, "success");
    CHECK (result->payload.len == 64
               && memcmp (result->payload.ptr, "ba7816bf8f01cfea414140de5dae2223", 32) == 0,
           "sha256 of abc");
    CHECK (result->worker.len >= 6 && memcmp (result->worker.ptr, "hasher", 6) == 0,
           "ran on hasher");
    jr_job_destroy (&result);
    msgpack_sbuffer_destroy (&vars);
    jr_client_destroy (&client);
}

Test (pipeline, worker_killed_mid_job_runs_again_elsewhere)
{
    jr_h_env_init (&env, "kill");
    jr_h_ingester (&env);
    jr_h_broker (&env, "--liveness=1000");
    pid_t victim = jr_h_worker (&env, "victim", 1, NULL);
    jr_client_t *client = jr_client_new (env.clients_ep, env.ingester_ep);
    msgpack_sbuffer vars;
    s_vars (&vars, 1, "ms", "1500");
    jr_job_t job;
    jr_job_init (&job, "sleep");
    job.vars = (jr_bytes_t){ (const uint8_t *)vars.data, vars.size };
    job.timeout_ms = 30000;
    CHECK (jr_client_submit (client, &job) == 0, "submit");
    CHECK (s_await_state (client, job.id, JR_STATE_RUNNING), "job never ran");
    CHECK (jr_h_stop (victim, SIGKILL, 5000), "kill -9 the worker");
    jr_h_worker (&env, "rescuer", 1, NULL);
    jr_job_t *result = NULL;
    CHECK (jr_client_wait (client, job.id, 60000, &result) == 0, "result after the kill");
    CHECK (result->success, "success");
    CHECK (result->attempt == 2, "attempt %u", result->attempt);
    CHECK (result->worker.len >= 7 && memcmp (result->worker.ptr, "rescuer", 7) == 0,
           "ran on rescuer");
    jr_job_destroy (&result);
    sqlite3 *db = s_db ();
    CHECK (s_query_int (db, "SELECT count(*) FROM results") == 1, "stored once");
    sqlite3_close (db);
    msgpack_sbuffer_destroy (&vars);
    jr_client_destroy (&client);
}

//  1,000 bad messages of several kinds to one ROUTER endpoint.
static void
s_garbage (const char *endpoint)
{
    zsock_t *sock = zsock_new_dealer (endpoint);
    zsock_set_sndhwm (sock, 0);
    zsock_set_linger (sock, 5000);
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_SUBMIT);
    jr_job_t *job = jr_msg_add_job (msg);
    jr_job_init (job, "echo");
    uint8_t *valid;
    size_t valid_size = jr_msg_encode (msg, &valid);
    uint8_t noise[512];
    for (int i = 0; i < 1000; i++) {
        for (size_t k = 0; k < sizeof noise; k++)
            noise[k] = (uint8_t)rand ();
        switch (i % 5) {
            case 0: zsock_send (sock, "b", noise, (size_t)(rand () % 512)); break;
            case 1: zsock_send (sock, "b", valid, (size_t)rand () % valid_size); break;
            case 2: zsock_send (sock, "bb", valid, valid_size, noise, (size_t)8); break;
            case 3: {  //  huge declared counts in few bytes
                uint8_t bomb[] = { 0x94, 0xcd, 0x4a, 0x52, JR_PROTO_VERSION, 0x01, 0xdd,
                                   0xff, 0xff, 0xff, 0xff };
                zsock_send (sock, "b", bomb, sizeof bomb);
                break;
            }
            case 4: zsock_send (sock, "b", "", (size_t)0); break;
        }
    }
    //  Oversized frames: libzmq drops the connection; later ones reconnect.
    size_t huge_size = JR_MAX_FRAME + 4096;
    uint8_t *huge = calloc (1, huge_size);
    for (int i = 0; i < 2; i++) {
        zsock_t *big = zsock_new_dealer (endpoint);
        zsock_set_linger (big, 5000);
        zsock_send (big, "b", huge, huge_size);
        zsock_destroy (&big);
    }
    free (huge);
    free (valid);
    jr_msg_destroy (&msg);
    zsock_destroy (&sock);
}

Test (pipeline, garbage_to_every_router_then_normal_traffic)
{
    jr_h_env_init (&env, "garbage");
    pid_t ingester = jr_h_ingester (&env);
    pid_t broker = jr_h_broker (&env, NULL);
    pid_t worker = jr_h_worker (&env, "w", 2, NULL);
    s_garbage (env.clients_ep);
    s_garbage (env.workers_ep);
    s_garbage (env.ingester_ep);
    CHECK (kill (ingester, 0) == 0 && kill (broker, 0) == 0 && kill (worker, 0) == 0, "all alive");
    jr_client_t *client = jr_client_new (env.clients_ep, env.ingester_ep);
    msgpack_sbuffer vars;
    s_vars (&vars, 1, "msg", "still here");
    jr_job_t job;
    jr_job_init (&job, "echo");
    job.vars = (jr_bytes_t){ (const uint8_t *)vars.data, vars.size };
    CHECK (jr_client_submit (client, &job) == 0, "submit after garbage");
    jr_job_t *result = NULL;
    CHECK (jr_client_wait (client, job.id, 30000, &result) == 0, "result after garbage");
    CHECK (result->payload.len == 10 && memcmp (result->payload.ptr, "still here", 10) == 0,
           "echo");
    jr_job_destroy (&result);
    CHECK (kill (ingester, 0) == 0 && kill (broker, 0) == 0 && kill (worker, 0) == 0, "all alive");
    msgpack_sbuffer_destroy (&vars);
    jr_client_destroy (&client);
}
