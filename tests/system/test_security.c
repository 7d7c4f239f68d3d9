/*  test_security.c - a cluster with keys: who is refused, that what they sent did nothing, unsafe starts  */
#include "proto/keys.h"
#include "proto/transport.h"
#include "tests/fakes/fake_peer.h"
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <jr/jr.h>

static jr_h_env_t env;

static void
s_fini (void)
{
    jr_h_cleanup ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (security, .fini = s_fini, .timeout = 240);

#define s_sh(...) CHECK (jr_h_sh (__VA_ARGS__) == 0, "a shell command failed")

//  A cluster with keys: ingester, broker and one worker of echo and sleep.
static void
s_cluster (const char *name)
{
    jr_h_env_init (&env, name);
    CHECK (jr_h_env_keys (&env), "deploy/keys-init.sh failed");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    jr_h_worker (&env, "w1", 2, "echo,sleep");
}

//  A libjr client with the keys of kind ("client", "admin", or a folder
//  made by s_key_dir; NULL: none).
static jr_client_t *
s_client (const char *kind)
{
    jr_client_t *client = jr_client_new (env.clients_ep, env.ingester_ep);
    CHECK (client, "client");
    char dir[400] = "";
    if (kind && kind[0] == '/')
        snprintf (dir, sizeof dir, "%s", kind);
    else if (kind)
        jr_h_keys_of (&env, kind, dir, sizeof dir);
    CHECK (jr_client_set_keys (client, kind ? dir : NULL) == 0, "keys %s: %s", dir,
           jr_client_error (client));
    jr_client_set_timeout (client, 3000);
    return client;
}

//  A new client key folder NAME under the test's dir, with the servers'
//  public certificates; listed on both servers when allowed.
static void
s_key_dir (const char *name, bool allowed, char *dir, size_t size)
{
    snprintf (dir, size, "%s/%s", env.dir, name);
    char err[600];
    CHECK (jr_keys_generate (dir, name, JR_ROLE_CLIENT, err, sizeof err) == 0, "%s", err);
    s_sh ("cp %s/client/broker.cert %s/client/ingester.cert %s/", env.keys, env.keys, dir);
    if (allowed)
        s_sh ("cp %s/%s.cert %s/broker/allow/client/ && cp %s/%s.cert %s/ingester/allow/client/",
              dir, name, env.keys, dir, name, env.keys);
}

//  An echo job that has not been submitted yet.
static void
s_job (jr_job_t *job, const char *task)
{
    jr_job_init (job, task);
}

//  The job's state at the broker, asked with the admin key.
static int
s_state (const uint8_t id[JR_ID_SIZE])
{
    jr_client_t *admin = s_client ("admin");
    int state = -1;
    uint32_t attempt;
    int rc = jr_client_status (admin, id, &state, &attempt);
    CHECK (rc == 0, "status: %s (%s)", jr_strerror (rc), jr_client_error (admin));
    jr_client_destroy (&admin);
    return state;
}

//  A new echo job submitted with the keys of kind (as s_client) is refused
//  with want, the client's error saying says (unless NULL), and the broker
//  does not know it; its id goes to job.
static void
s_refused_submit (const char *kind, int want, const char *says, jr_job_t *job, const char *what)
{
    jr_client_t *bad = s_client (kind);
    jr_client_set_timeout (bad, 60000);  //  a refusal comes at once, not at the timeout
    s_job (job, "echo");
    int rc = jr_client_submit (bad, job);
    CHECK (rc == want, "%s: %s", what, jr_errname (rc));
    CHECK (!says || strstr (jr_client_error (bad), says), "%s: %s", what, jr_client_error (bad));
    jr_client_destroy (&bad);
    CHECK (s_state (job->id) == JR_STATE_UNKNOWN, "%s: the broker has the job", what);
}

//  Rows the ingester stored for an id.
static int64_t
s_rows (const uint8_t id[JR_ID_SIZE])
{
    sqlite3 *db;
    CHECK (sqlite3_open_v2 (env.db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "db");
    sqlite3_busy_timeout (db, 5000);
    sqlite3_stmt *stmt;
    CHECK (sqlite3_prepare_v2 (db, "SELECT count(*) FROM results WHERE id = ?", -1, &stmt, NULL)
               == SQLITE_OK,
           "prepare");
    char text[37];
    jr_id_format (id, text);
    sqlite3_bind_text (stmt, 1, text, -1, SQLITE_STATIC);
    CHECK (sqlite3_step (stmt) == SQLITE_ROW, "step");
    int64_t n = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return n;
}

//  Rows holding the forgers' payload, "forged".
static int64_t
s_forged_rows (void)
{
    sqlite3 *db;
    CHECK (sqlite3_open_v2 (env.db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "db");
    sqlite3_busy_timeout (db, 5000);
    sqlite3_stmt *stmt;
    CHECK (sqlite3_prepare_v2 (
               db, "SELECT count(*) FROM results WHERE CAST(payload AS TEXT) = 'forged'", -1, &stmt,
               NULL)
               == SQLITE_OK,
           "prepare");
    CHECK (sqlite3_step (stmt) == SQLITE_ROW, "step");
    int64_t n = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return n;
}

//  A raw DEALER of a transport role with the keys of kind loaded as as:
//  a peer that speaks the protocol, whatever its key allows.
static void
s_raw (jr_link_t *link, jr_sock_role_t role, const char *endpoint, const char *kind, jr_role_t as,
       jr_keys_t **keys)
{
    char dir[400], err[600];
    jr_h_keys_of (&env, kind, dir, sizeof dir);
    *keys = jr_keys_load (dir, as, err, sizeof err);
    CHECK (*keys, "%s", err);
    CHECK (jr_link_open (link, role, endpoint, *keys) == 0, "connect");
}

//  The link's handshake fails with code within 5 s.
static void
s_expect_refused (jr_link_t *link, int code, const char *what)
{
    for (int i = 0; i < 500 && !jr_link_check (link); i++)
        zclock_sleep (10);
    CHECK (link->failure == code, "%s: %s", what, jr_errname (link->failure));
}

//  The next reply on a raw socket is ERROR FORBIDDEN.
static void
s_expect_forbidden (zsock_t *sock, jr_msg_t *msg, const char *what)
{
    zframe_t *frame = jr_fake_expect (sock, msg, JR_MSG_ERROR, 5000);
    CHECK (frame, "%s: no ERROR", what);
    CHECK (msg->code == JR_EFORBIDDEN, "%s: code %s", what, jr_errname (msg->code));
    zframe_destroy (&frame);
}

Test (security, refused_peers_change_nothing)
{
    s_cluster ("refused");
    //  The cluster works for the keys it lists.
    jr_client_t *client = s_client ("client");
    jr_job_t ok;
    s_job (&ok, "echo");
    CHECK (jr_client_submit (client, &ok) == 0, "submit: %s", jr_client_error (client));
    jr_job_t *result = NULL;
    CHECK (jr_client_wait (client, ok.id, 30000, &result) == 0, "wait");
    CHECK (result->success, "echo");
    jr_job_destroy (&result);

    //  An unknown key, no keys at all (the NULL mechanism), the wrong server key.
    char stranger[400], wrong[400];
    s_key_dir ("stranger", false, stranger, sizeof stranger);
    jr_job_t j1, j2, j3, j4, j5;
    s_refused_submit (stranger, JR_EFORBIDDEN, "refused our key", &j1, "unknown key");
    s_refused_submit (NULL, JR_EHANDSHAKE, NULL, &j2, "no keys");
    snprintf (wrong, sizeof wrong, "%s/wrong-server", env.dir);
    s_sh ("cp -a %s/client %s && cp %s/ingester/ingester.cert %s/broker.cert", env.keys, wrong,
          env.keys, wrong);
    s_refused_submit (wrong, JR_EHANDSHAKE, "broker.cert", &j3, "wrong server key");

    //  A key revoked while the cluster runs: its file removed.
    char second[400];
    s_key_dir ("second", true, second, sizeof second);
    jr_client_t *c2 = s_client (second);
    s_job (&j4, "echo");
    CHECK (jr_client_submit (c2, &j4) == 0, "listed: %s", jr_client_error (c2));
    jr_client_destroy (&c2);
    s_sh ("rm %s/broker/allow/client/second.cert", env.keys);
    s_refused_submit (second, JR_EFORBIDDEN, NULL, &j5, "revoked");

    jr_msg_t *msg = jr_msg_new ();
    jr_keys_t *keys = NULL;
    jr_link_t raw;
    //  A client key on the workers' port: refused at the handshake, its
    //  READY never arrives, so it gets no job.
    s_raw (&raw, JR_SOCK_WORKER_BROKER, env.workers_ep, "client", JR_ROLE_CLIENT, &keys);
    const char *tasks[] = { "only-raw" };
    jr_fake_ready (raw.sock, msg, "intruder", tasks, 1, 10);
    jr_job_t j6;
    s_job (&j6, "only-raw");
    CHECK (jr_client_submit (client, &j6) == 0, "submit j6");
    s_expect_refused (&raw, JR_EFORBIDDEN, "a client key on the workers' port");
    zframe_t *frame = jr_fake_expect (raw.sock, msg, JR_MSG_DISPATCH, 1000);
    CHECK (!frame, "a client key on the workers' port got a job");
    CHECK (s_state (j6.id) == JR_STATE_QUEUED, "j6 left the queue");
    jr_link_close (&raw);
    jr_keys_destroy (&keys);

    //  A client or an admin key sending RESULT to the ingester (a port they
    //  may use): refused per message, not stored; the admin's forges j6.
    jr_job_t forged;
    s_job (&forged, "echo");
    forged.success = true;
    forged.attempt = 1;
    forged.payload = (jr_bytes_t){ (const uint8_t *)"forged", 6 };
    jr_job_t forged6 = forged;
    memcpy (forged6.id, j6.id, JR_ID_SIZE);
    const char *forgers[] = { "client", "admin" };
    for (int f = 0; f < 2; f++) {
        s_raw (&raw, JR_SOCK_CLIENT_INGESTER, env.ingester_ep, forgers[f], JR_ROLE_CLIENT, &keys);
        jr_fake_result (raw.sock, msg, f ? &forged6 : &forged, 1);
        s_expect_forbidden (raw.sock, msg, forgers[f]);
        jr_link_close (&raw);
        jr_keys_destroy (&keys);
    }
    //  A worker key fetching results: refused per message.
    s_raw (&raw, JR_SOCK_CLIENT_INGESTER, env.ingester_ep, "worker", JR_ROLE_WORKER, &keys);
    jr_fake_fetch (raw.sock, msg, 3, &ok, 1, 0);
    s_expect_forbidden (raw.sock, msg, "FETCH with a worker key");
    jr_link_close (&raw);
    jr_keys_destroy (&keys);

    //  A worker key submitting: the clients' port refuses it at the handshake.
    s_raw (&raw, JR_SOCK_CLIENT, env.clients_ep, "worker", JR_ROLE_WORKER, &keys);
    jr_msg_reset (msg, JR_MSG_SUBMIT);
    msg->tag = 9;
    jr_job_t *j8 = jr_msg_add_job (msg);
    jr_job_init (j8, "echo");
    uint8_t j8_id[JR_ID_SIZE];
    memcpy (j8_id, j8->id, JR_ID_SIZE);
    jr_fake_send (raw.sock, msg);
    s_expect_refused (&raw, JR_EFORBIDDEN, "a worker key on the clients' port");
    CHECK (!jr_fake_expect (raw.sock, msg, JR_MSG_ACCEPTED, 1000),
           "a worker key's SUBMIT answered");
    jr_link_close (&raw);
    jr_keys_destroy (&keys);
    CHECK (s_state (j8_id) == JR_STATE_UNKNOWN, "the worker key's job is there");

    //  A client cancelling: refused, the job stays; the admin may.
    int state = 0;
    int rc = jr_client_cancel (client, j6.id, &state);
    CHECK (rc == JR_EFORBIDDEN, "client cancel: %s", jr_errname (rc));
    CHECK (s_state (j6.id) == JR_STATE_QUEUED, "the client's cancel took effect");
    jr_client_t *admin = s_client ("admin");
    CHECK (jr_client_cancel (admin, j6.id, &state) == 0, "admin cancel");
    CHECK (state == JR_STATE_CANCELLED, "admin cancel: %s", jr_state_name (state));
    jr_client_destroy (&admin);

    //  Stored: the good jobs, and nothing that a refused peer sent.
    CHECK (jr_client_wait (client, j4.id, 30000, &result) == 0, "j4 stored");
    jr_job_destroy (&result);
    CHECK (s_rows (ok.id) == 1 && s_rows (j4.id) == 1, "good jobs stored once");
    CHECK (s_forged_rows () == 0, "a forged result was stored");
    const uint8_t *refused[] = { j1.id, j2.id, j3.id, j5.id, j8_id, forged.id };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        CHECK (s_rows (refused[i]) == 0, "refused job %zu has a row", i);
    char *log = jr_h_log (&env, "broker");
    CHECK (strstr (log, "refused a connection"), "the broker logged no refused handshake");
    CHECK (strstr (log, "refused a message (FORBIDDEN)"), "the broker logged no FORBIDDEN");
    CHECK (!strstr (log, "worker=intruder"), "the intruder was taken for a worker");
    free (log);
    jr_msg_destroy (&msg);
    jr_client_destroy (&client);
}

//  A worker whose key is listed only after it started joins both servers
//  without a restart (libzmq gives up on a refused connection by itself).
Test (security, a_worker_admitted_later_joins_without_a_restart)
{
    s_cluster ("later");
    char dir[400], err[600];
    snprintf (dir, sizeof dir, "%s/w9", env.dir);
    CHECK (jr_keys_generate (dir, "w9", JR_ROLE_WORKER, err, sizeof err) == 0, "%s", err);
    s_sh ("cp %s/worker/broker.cert %s/worker/ingester.cert %s/", env.keys, env.keys, dir);
    char bin[512];
    jr_h_bin (bin, sizeof bin, "jr-worker");
    char *argv[] = { bin,
                     "--keys",
                     dir,
                     "--broker",
                     env.workers_ep,
                     "--ingester",
                     env.ingester_ep,
                     "--tasks",
                     "sha256",
                     "--name",
                     "w9",
                     NULL };
    jr_h_spawn_argv (&env, "w9", argv);
    jr_client_t *client = s_client ("client");
    jr_job_t job;
    s_job (&job, "sha256");
    CHECK (jr_client_submit (client, &job) == 0, "submit");
    jr_h_sleep_ms (2000);
    CHECK (s_state (job.id) == JR_STATE_QUEUED, "the unlisted worker took the job");
    char *log = jr_h_log (&env, "w9");
    CHECK (strstr (log, "code=FORBIDDEN"), "the refused worker did not say why");
    free (log);
    //  Listed at the ingester first: its link there was refused first.
    s_sh ("cp %s/w9.cert %s/ingester/allow/worker/ && cp %s/w9.cert %s/broker/allow/worker/", dir,
          env.keys, dir, env.keys);
    jr_job_t *result = NULL;
    int rc = jr_client_wait (client, job.id, 60000, &result);
    CHECK (rc == 0, "the admitted worker's result: %s", jr_strerror (rc));
    CHECK (result->success && result->attempt == 1, "stored on attempt %u", result->attempt);
    jr_job_destroy (&result);
    jr_client_destroy (&client);
}

//  Run a daemon that must refuse to start: exit 2, its log saying each of
//  the words given (NULL-terminated after argv's NULL).
static void
s_refuses (const char *label, char *const argv[], const char *const words[])
{
    pid_t pid = jr_h_spawn_argv (&env, label, argv);
    int status = 0;
    CHECK (jr_h_wait_exit (pid, 10000, &status), "%s did not exit", label);
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 2, "%s: status %d", label, status);
    char *log = jr_h_log (&env, label);
    for (int i = 0; words[i]; i++)
        CHECK (strstr (log, words[i]), "%s: no '%s' in: %s", label, words[i], log);
    free (log);
}

Test (security, unsafe_starts_are_refused)
{
    jr_h_env_init (&env, "unsafe");
    CHECK (jr_h_env_keys (&env), "deploy/keys-init.sh failed");
    char broker[512], ingester[512], worker[512], dir[400], secret[500];
    jr_h_bin (broker, sizeof broker, "jr-broker");
    jr_h_bin (ingester, sizeof ingester, "jr-ingester");
    jr_h_bin (worker, sizeof worker, "jr-worker");
    //  A secret key others may read, on a worker and on a broker.
    const char *kinds[] = { "worker", "broker" };
    for (int k = 0; k < 2; k++) {
        snprintf (dir, sizeof dir, "%s/open-%s", env.dir, kinds[k]);
        s_sh ("cp -a %s/%s %s", env.keys, kinds[k], dir);
        snprintf (secret, sizeof secret, "%s/%s.cert_secret", dir, kinds[k]);
        CHECK (chmod (secret, 0644) == 0, "chmod");
        char *argv_w[] = { worker, "--keys", dir, "--broker", env.workers_ep, NULL };
        char journal[500];
        snprintf (journal, sizeof journal, "%s/j", env.dir);
        char *argv_b[] = { broker,      "--keys",       dir,         "--clients", env.clients_ep,
                           "--workers", env.workers_ep, "--journal", journal,     NULL };
        const char *words[] = { secret, "chmod 600", NULL };
        s_refuses (kinds[k], k == 0 ? argv_w : argv_b, words);
    }
    //  A wide address without keys and without --insecure.
    env.keys[0] = 0;  //  the harness gives no $JR_KEYS from here on
    char wide[64], wide2[64];
    snprintf (wide, sizeof wide, "tcp://*:%d", env.port_clients);
    snprintf (wide2, sizeof wide2, "tcp://0.0.0.0:%d", env.port_ingester);
    unsetenv ("JR_KEYS");
    char *argv_b[] = { broker, "--clients", wide, "--workers", env.workers_ep, NULL };
    const char *words[] = { "--keys", "--insecure", wide, NULL };
    s_refuses ("wide-broker", argv_b, words);
    char *argv_i[] = { ingester, "--bind", wide2, "--db", env.db, NULL };
    const char *words_i[] = { "--keys", "--insecure", wide2, NULL };
    s_refuses ("wide-ingester", argv_i, words_i);
    //  With --insecure it starts, and says so.
    char *argv_ok[] = { ingester, "--bind", wide2, "--db", env.db, "--insecure", NULL };
    pid_t pid = jr_h_spawn_argv (&env, "insecure", argv_ok);
    CHECK (jr_h_wait_port (env.port_ingester), "the --insecure ingester is not listening");
    char *log = jr_h_log (&env, "insecure");
    CHECK (strstr (log, "WARN") && strstr (log, "WITHOUT KEYS"), "no warning: %s", log);
    free (log);
    CHECK (jr_h_stop (pid, SIGTERM, 10000), "stop");
}

//  -------------------------------------------------------------------------
//  Refused peers hammering the ports while real work goes on

typedef struct {
    size_t n;
    int submit_rc, wait_rc;
    size_t ok;
} load_t;

static bool
s_count_ok (const jr_job_t *job, void *arg)
{
    load_t *load = arg;
    load->ok += job->success;
    return true;
}

static void *
s_load (void *arg)
{
    load_t *load = arg;
    jr_client_t *client = jr_client_new (env.clients_ep, env.ingester_ep);  //  $JR_KEYS: client
    jr_job_t *jobs = calloc (load->n, sizeof *jobs);
    uint8_t (*ids)[JR_ID_SIZE] = calloc (load->n, JR_ID_SIZE);
    for (size_t i = 0; i < load->n; i++) {
        jr_job_init (&jobs[i], "echo");
        memcpy (ids[i], jobs[i].id, JR_ID_SIZE);
    }
    //  In small batches, so the load spans the hammering.
    for (size_t i = 0; i < load->n && load->submit_rc == 0; i += 100)
        load->submit_rc =
            jr_client_submit_many (client, jobs + i, load->n - i < 100 ? load->n - i : 100, NULL);
    load->wait_rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, load->n,
                                         120000, s_count_ok, load);
    free (jobs);
    free (ids);
    jr_client_destroy (&client);
    return NULL;
}

Test (security, refused_connections_do_not_disturb_traffic)
{
    s_cluster ("hammer");
    jr_h_worker (&env, "w2", 2, "echo");
    char stranger[400];
    s_key_dir ("stranger", false, stranger, sizeof stranger);
    char err[600];
    jr_keys_t *bad = jr_keys_load (stranger, JR_ROLE_CLIENT, err, sizeof err);
    CHECK (bad, "%s", err);
    load_t load = { .n = 5000 };
    pthread_t thread;
    CHECK (pthread_create (&thread, NULL, s_load, &load) == 0, "thread");
    //  1,000 refused attempts, each to its end (the handshake failed):
    //  unknown keys and keyless peers in turn, on all three ports.
    const char *endpoints[] = { env.clients_ep, env.workers_ep, env.ingester_ep };
    jr_msg_t *msg = jr_msg_new ();
    int refused = 0;
    for (int i = 0; i < 1000; i++) {
        jr_link_t link;
        CHECK (jr_link_open (&link, JR_SOCK_CLIENT, endpoints[i % 3], i % 2 ? bad : NULL) == 0,
               "link");
        jr_msg_reset (msg, JR_MSG_STATUS);
        msg->tag = (uint64_t)i + 1;
        jr_msg_send (msg, zsock_resolve (link.sock), NULL, 0);
        //  Its end: a refusal (a cut handshake is one, though the link
        //  calls it a failure only after a few in a row).
        for (int w = 0; w < 2500 && !jr_link_check (&link) && !link.drops; w++)
            zclock_sleep (2);
        refused += link.failure != 0 || link.drops > 0;
        if (!link.failure && !link.drops)
            printf ("security: attempt %d (%s, %s) saw no failure, connects %d\n", i,
                    i % 3 == 0   ? "clients"
                    : i % 3 == 1 ? "workers"
                                 : "ingester",
                    i % 2 ? "unknown key" : "no keys", link.connects);
        jr_link_close (&link);
    }
    jr_msg_destroy (&msg);
    jr_keys_destroy (&bad);
    pthread_join (thread, NULL);
    CHECK (refused == 1000, "only %d of 1000 attempts saw their handshake fail", refused);
    CHECK (load.submit_rc == 0, "submit: %s", jr_strerror (load.submit_rc));
    CHECK (load.wait_rc == 0 && load.ok == load.n, "wait: %s, %zu of %zu ok",
           jr_strerror (load.wait_rc), load.ok, load.n);
    //  Counted in the stats line (every 10 s), logged once a minute per peer.
    bool counted = false;
    for (int i = 0; i < 150 && !counted; i++) {
        char *log = jr_h_log (&env, "broker");
        const char *line = strstr (log, "handshakes_refused=");
        counted = line && atoi (line + strlen ("handshakes_refused=")) > 0;
        free (log);
        if (!counted)
            jr_h_sleep_ms (100);
    }
    CHECK (counted, "the broker's stats did not count the refused handshakes");
    char *log = jr_h_log (&env, "broker");
    int lines = 0;
    for (const char *p = log; (p = strstr (p, "refused a connection")); p++)
        lines++;
    free (log);
    CHECK (lines >= 1 && lines <= 4, "%d log lines for 667 refusals at the broker", lines);
}
