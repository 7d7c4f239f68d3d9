/*  test_keys.c - keys folders, jr keygen's files, the bind rule, roles per port, and CURVE in one process  */
#include "common/ratelog.h"
#include "proto/auth.h"
#include "proto/keys.h"
#include "proto/transport.h"
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <sys/stat.h>

static char s_dir[128];

static void
s_setup (void)
{
    zsys_init ();
    snprintf (s_dir, sizeof s_dir, "/tmp/jr-test-keys-XXXXXX");
    cr_assert_not_null (mkdtemp (s_dir));
}

static void
s_teardown (void)
{
    char cmd[256];
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_dir);
    cr_assert_eq (system (cmd), 0);
}

TestSuite (keys, .init = s_setup, .fini = s_teardown, .timeout = 60);

#define s_run(...) cr_assert_eq (jr_h_sh (__VA_ARGS__), 0, "a shell command failed")

//  A whole cluster's keys under s_dir/k (deploy/keys-init.sh, as tests and
//  compose use it).
static void
s_cluster (void)
{
    const char *src = getenv ("JR_SRC"), *bin = getenv ("JR_BIN");
    cr_assert (src && bin, "JR_SRC and JR_BIN are set by ctest");
    s_run ("bash %s/deploy/keys-init.sh %s/k %s/jr 2>/dev/null", src, s_dir, bin);
}

static jr_keys_t *
s_load (const char *kind, jr_role_t as)
{
    char dir[256], err[600];
    snprintf (dir, sizeof dir, "%s/k/%s", s_dir, kind);
    jr_keys_t *keys = jr_keys_load (dir, as, err, sizeof err);
    cr_assert_not_null (keys, "%s: %s", dir, err);
    return keys;
}

static mode_t
s_mode (const char *path)
{
    struct stat st;
    cr_assert_eq (stat (path, &st), 0, "%s", path);
    return st.st_mode & 0777;
}

Test (keys, keygen_writes_a_private_secret_and_never_overwrites)
{
    char err[600], path[256];
    cr_assert_eq (jr_keys_generate (s_dir, "w1", JR_ROLE_WORKER, err, sizeof err), 0, "%s", err);
    snprintf (path, sizeof path, "%s/w1.cert_secret", s_dir);
    cr_assert_eq (s_mode (path), 0600);
    snprintf (path, sizeof path, "%s/w1.cert", s_dir);
    cr_assert_eq (s_mode (path), 0644);
    zcert_t *cert = zcert_load (path);
    cr_assert_not_null (cert);
    cr_assert_str_eq (zcert_meta (cert, "role"), "worker");
    cr_assert_str_eq (zcert_meta (cert, "name"), "w1");
    zcert_destroy (&cert);
    cr_assert_eq (jr_keys_generate (s_dir, "w1", JR_ROLE_WORKER, err, sizeof err), -1);
    cr_assert (strstr (err, "exists already"), "%s", err);
    cr_assert_eq (jr_keys_generate (s_dir, "../x", JR_ROLE_WORKER, err, sizeof err), -1);
    cr_assert_eq (jr_keys_generate (s_dir, ".hidden", JR_ROLE_WORKER, err, sizeof err), -1);
}

//  Each broken folder is refused with a message that names the file.
Test (keys, a_bad_folder_is_refused_with_the_file_named)
{
    char err[600], dir[256], secret[300];
    snprintf (dir, sizeof dir, "%s/w", s_dir);
    cr_assert_null (jr_keys_load (dir, JR_ROLE_WORKER, err, sizeof err));
    cr_assert (strstr (err, "cannot open"), "%s", err);
    s_run ("mkdir -p %s", dir);
    cr_assert_null (jr_keys_load (dir, JR_ROLE_WORKER, err, sizeof err));
    cr_assert (strstr (err, "no secret certificate") && strstr (err, "jr keygen"), "%s", err);

    cr_assert_eq (jr_keys_generate (dir, "w1", JR_ROLE_WORKER, err, sizeof err), 0, "%s", err);
    snprintf (secret, sizeof secret, "%s/w1.cert_secret", dir);
    chmod (secret, 0644);
    cr_assert_null (jr_keys_load (dir, JR_ROLE_WORKER, err, sizeof err));
    cr_assert (strstr (err, secret) && strstr (err, "chmod 600"), "%s", err);
    chmod (secret, 0640);
    cr_assert_null (jr_keys_load (dir, JR_ROLE_WORKER, err, sizeof err), "group-readable too");
    chmod (secret, 0600);

    cr_assert_null (jr_keys_load (dir, JR_ROLE_BROKER, err, sizeof err));
    cr_assert (strstr (err, "of role 'worker', not of a broker"), "%s", err);
    cr_assert_null (jr_keys_load (dir, JR_ROLE_WORKER, err, sizeof err));
    cr_assert (strstr (err, "broker.cert") && strstr (err, "copy the broker's public"), "%s", err);

    cr_assert_eq (jr_keys_generate (dir, "w2", JR_ROLE_WORKER, err, sizeof err), 0, "%s", err);
    cr_assert_null (jr_keys_load (dir, JR_ROLE_WORKER, err, sizeof err));
    cr_assert (strstr (err, "2 secret certificates"), "%s", err);

    //  Files that are no files: refused at once, not read (a FIFO would block).
    s_run ("rm -f %s/w2.cert* && mkfifo -m 644 %s/broker.cert", dir, dir);
    cr_assert_null (jr_keys_load (dir, JR_ROLE_WORKER, err, sizeof err));
    cr_assert (strstr (err, "broker.cert: not a regular file"), "%s", err);
    s_run ("rm -f %s/w1.cert_secret && mkfifo -m 600 %s/w1.cert_secret", dir, dir);
    cr_assert_null (jr_keys_load (dir, JR_ROLE_WORKER, err, sizeof err));
    cr_assert (strstr (err, "w1.cert_secret: not a regular file"), "%s", err);
}

Test (keys, a_cluster_from_keys_init_loads_for_every_kind)
{
    s_cluster ();
    jr_keys_t *keys = s_load ("broker", JR_ROLE_BROKER);
    cr_assert_null (jr_keys_server (keys, JR_ROLE_BROKER), "servers load no server keys");
    jr_keys_destroy (&keys);
    jr_keys_destroy (&keys);  //  idempotent
    keys = s_load ("admin", JR_ROLE_CLIENT);
    cr_assert_eq (jr_keys_role (keys), JR_ROLE_ADMIN);
    jr_keys_t *broker = s_load ("broker", JR_ROLE_BROKER);
    cr_assert_str_eq (jr_keys_server (keys, JR_ROLE_BROKER),
                      zcert_public_txt (jr_keys_own (broker)));
    jr_keys_destroy (&broker);
    jr_keys_destroy (&keys);
    keys = s_load ("worker", JR_ROLE_WORKER);
    cr_assert_eq (jr_keys_role (keys), JR_ROLE_WORKER);
    jr_keys_destroy (&keys);
}

Test (keys, only_local_endpoints_bind_without_keys)
{
    const char *local[] = {
        "tcp://127.0.0.1:5570", "tcp://127.1.2.3:1", "tcp://localhost:5", "tcp://[::1]:5570",
        "tcp://lo:5570",        "ipc:///tmp/x",      "inproc://x"
    };
    const char *wide[] = { "tcp://*:5570",      "tcp://0.0.0.0:5570", "tcp://10.0.0.1:5570",
                           "tcp://eth0:5570",   "tcp://127.0.0.1x:1", "tcp://127.evil.com:1",
                           "ws://127.0.0.1:80", "tcp://[::]:5570" };
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
        cr_assert (jr_endpoint_is_local (local[i]), "%s", local[i]);
        cr_assert (jr_keys_bind_ok (NULL, false, local[i]), "%s", local[i]);
    }
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++) {
        cr_assert_not (jr_endpoint_is_local (wide[i]), "%s", wide[i]);
        cr_assert_not (jr_keys_bind_ok (NULL, false, wide[i]), "%s", wide[i]);
        cr_assert (jr_keys_bind_ok (NULL, true, wide[i]), "--insecure: %s", wide[i]);
    }
}

Test (keys, ratelog_says_a_key_once_per_period_and_counts_the_rest)
{
    static jr_ratelog_t log;
    jr_ratelog_init (&log, 60000);
    uint64_t held = 99;
    cr_assert (jr_ratelog_allow (&log, "10.0.0.1", 1000, &held));
    cr_assert_eq (held, 0);
    for (int i = 0; i < 1000; i++)
        cr_assert_not (jr_ratelog_allow (&log, "10.0.0.1", 1000 + i, NULL));
    cr_assert (jr_ratelog_allow (&log, "10.0.0.2", 2000, NULL), "another peer is said");
    cr_assert_not (jr_ratelog_allow (&log, "10.0.0.1", 60999, NULL));
    cr_assert (jr_ratelog_allow (&log, "10.0.0.1", 61000, &held), "a minute later");
    cr_assert_eq (held, 1001);
}

Test (keys, roles_per_port_and_message)
{
    typedef struct {
        jr_sock_role_t port;
        int type;
        jr_role_t role;
        bool ok;
    } row_t;
    const row_t rows[] = {
        { JR_SOCK_BROKER_CLIENTS, JR_MSG_SUBMIT, JR_ROLE_CLIENT, true },
        { JR_SOCK_BROKER_CLIENTS, JR_MSG_SUBMIT, JR_ROLE_ADMIN, true },
        { JR_SOCK_BROKER_CLIENTS, JR_MSG_SUBMIT, JR_ROLE_WORKER, false },
        { JR_SOCK_BROKER_CLIENTS, JR_MSG_SUBMIT, JR_ROLE_NONE, false },
        { JR_SOCK_BROKER_CLIENTS, JR_MSG_STATUS, JR_ROLE_CLIENT, true },
        { JR_SOCK_BROKER_CLIENTS, JR_MSG_LIST, JR_ROLE_CLIENT, true },
        { JR_SOCK_BROKER_CLIENTS, JR_MSG_CANCEL, JR_ROLE_CLIENT, false },
        { JR_SOCK_BROKER_CLIENTS, JR_MSG_CANCEL, JR_ROLE_ADMIN, true },
        { JR_SOCK_BROKER_CLIENTS, JR_MSG_RETRY, JR_ROLE_CLIENT, false },
        { JR_SOCK_BROKER_CLIENTS, JR_MSG_RETRY, JR_ROLE_ADMIN, true },
        { JR_SOCK_BROKER_WORKERS, JR_MSG_READY, JR_ROLE_WORKER, true },
        { JR_SOCK_BROKER_WORKERS, JR_MSG_DONE, JR_ROLE_WORKER, true },
        { JR_SOCK_BROKER_WORKERS, JR_MSG_READY, JR_ROLE_CLIENT, false },
        { JR_SOCK_BROKER_WORKERS, JR_MSG_DONE, JR_ROLE_ADMIN, false },
        { JR_SOCK_INGESTER, JR_MSG_RESULT, JR_ROLE_WORKER, true },
        { JR_SOCK_INGESTER, JR_MSG_RESULT, JR_ROLE_CLIENT, false },
        { JR_SOCK_INGESTER, JR_MSG_RESULT, JR_ROLE_ADMIN, false },
        { JR_SOCK_INGESTER, JR_MSG_FETCH, JR_ROLE_CLIENT, true },
        { JR_SOCK_INGESTER, JR_MSG_FETCH, JR_ROLE_ADMIN, true },
        { JR_SOCK_INGESTER, JR_MSG_FETCH, JR_ROLE_WORKER, false },
        { JR_SOCK_INGESTER, JR_MSG_FETCH, JR_ROLE_BROKER, false },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        cr_assert_eq (jr_transport_permits (rows[i].port, rows[i].type, rows[i].role), rows[i].ok,
                      "%s %s %s", jr_transport_role_name (rows[i].port), jr_msg_name (rows[i].type),
                      jr_role_name (rows[i].role));
    cr_assert_eq (jr_transport_by_name ("workers"), JR_SOCK_BROKER_WORKERS);
    cr_assert_eq (jr_transport_by_name ("to-broker"), JR_SOCK_ROLES,
                  "connecting roles are no domain");
}

//  -------------------------------------------------------------------------
//  CURVE in one process: the broker's clients port and its ZAP handler

//  The link's handshake outcome within timeout_ms: 1 admitted (a message
//  came through, with its role in *role), or the link's failure code.
static int
s_try (jr_link_t *link, zsock_t *server, jr_role_t *role, int timeout_ms)
{
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_STATUS);
    msg->tag = 1;
    cr_assert_eq (jr_msg_send (msg, zsock_resolve (link->sock), NULL, 0), 0);
    jr_msg_destroy (&msg);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        zmq_msg_t rid, body;
        if (jr_transport_recv (zsock_resolve (server), &rid, &body) == 1) {
            *role = jr_transport_peer_role (&body);
            zmq_msg_close (&rid);
            zmq_msg_close (&body);
            return 1;
        }
        if (jr_link_check (link))
            return link->failure;
        zclock_sleep (10);
    }
    return 0;
}

Test (keys, curve_admits_listed_roles_only_and_revokes_at_once)
{
    s_cluster ();
    jr_keys_t *server_keys = s_load ("broker", JR_ROLE_BROKER);
    char err[600];
    jr_auth_t *auth = jr_auth_new (server_keys, err, sizeof err);
    cr_assert_not_null (auth, "%s", err);
    cr_assert (jr_auth_running ());
    zsock_t *server = jr_transport_bind (JR_SOCK_BROKER_CLIENTS, "tcp://127.0.0.1:*", server_keys);
    cr_assert_not_null (server);
    cr_assert_eq (jr_auth_watch (auth, server, JR_SOCK_BROKER_CLIENTS), 0);
    const char *endpoint = zsock_endpoint (server);

    jr_role_t role = JR_ROLE_NONE;
    struct {
        const char *kind;
        jr_role_t as;
        int outcome;
        jr_role_t role;
    } cases[] = {
        { "client", JR_ROLE_CLIENT, 1, JR_ROLE_CLIENT },
        { "admin", JR_ROLE_CLIENT, 1, JR_ROLE_ADMIN },
        { "worker", JR_ROLE_WORKER, JR_EFORBIDDEN, JR_ROLE_NONE },  //  not on this port
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jr_keys_t *keys = s_load (cases[i].kind, cases[i].as);
        jr_link_t link;
        cr_assert_eq (jr_link_open (&link, JR_SOCK_CLIENT, endpoint, keys), 0);
        cr_assert_eq (s_try (&link, server, &role, 5000), cases[i].outcome, "%s", cases[i].kind);
        if (cases[i].outcome == 1)
            cr_assert_eq (role, cases[i].role, "%s", cases[i].kind);
        jr_link_close (&link);
        jr_keys_destroy (&keys);
    }
    //  NULL mechanism: nothing comes through; the server counts a refusal.
    uint64_t refused = jr_auth_refused (auth);
    jr_link_t plain;
    cr_assert_eq (jr_link_open (&plain, JR_SOCK_CLIENT, endpoint, NULL), 0);
    cr_assert_eq (s_try (&plain, server, &role, 5000), JR_EHANDSHAKE);
    jr_link_close (&plain);
    for (int i = 0; i < 100 && jr_auth_refused (auth) == refused; i++)
        zclock_sleep (10);
    cr_assert_gt (jr_auth_refused (auth), refused, "the NULL handshake is counted");

    //  A wrong server key: the client's handshake fails, it does not hang.
    s_run ("cp %s/k/ingester/ingester.cert %s/k/client/broker.cert", s_dir, s_dir);
    jr_keys_t *wrong = s_load ("client", JR_ROLE_CLIENT);
    jr_link_t link;
    cr_assert_eq (jr_link_open (&link, JR_SOCK_CLIENT, endpoint, wrong), 0);
    cr_assert_eq (s_try (&link, server, &role, 5000), JR_EHANDSHAKE);
    jr_link_close (&link);
    jr_keys_destroy (&wrong);

    //  Revoked: the admin's file removed, its next connection is refused.
    jr_keys_t *admin = s_load ("admin", JR_ROLE_CLIENT);
    s_run ("rm %s/k/broker/allow/admin/admin.cert", s_dir);
    cr_assert_eq (jr_link_open (&link, JR_SOCK_CLIENT, endpoint, admin), 0);
    cr_assert_eq (s_try (&link, server, &role, 5000), JR_EFORBIDDEN);
    jr_link_close (&link);
    jr_keys_destroy (&admin);

    zsock_destroy (&server);
    jr_auth_destroy (&auth);
    cr_assert_not (jr_auth_running ());
    jr_keys_destroy (&server_keys);
}

//  A watch ends with its socket, so a server made again and again in one
//  process (tests, an embedded broker) never runs out of them.
Test (keys, watches_end_with_their_sockets)
{
    s_cluster ();
    jr_keys_t *keys = s_load ("broker", JR_ROLE_BROKER);
    char err[600];
    jr_auth_t *auth = jr_auth_new (keys, err, sizeof err);
    cr_assert_not_null (auth, "%s", err);
    for (int i = 0; i < 20; i++) {
        zsock_t *server = jr_transport_bind (JR_SOCK_INGESTER, "tcp://127.0.0.1:*", keys);
        cr_assert_not_null (server);
        cr_assert_eq (jr_auth_watch (auth, server, JR_SOCK_INGESTER), 0, "watch %d", i);
        zsock_destroy (&server);
        zclock_sleep (20);  //  the handler sees the monitor stop
    }
    jr_auth_destroy (&auth);
    jr_keys_destroy (&keys);
}

Test (keys, one_handler_per_process_shared_by_one_folder)
{
    s_cluster ();
    jr_keys_t *broker = s_load ("broker", JR_ROLE_BROKER);
    jr_keys_t *ingester = s_load ("ingester", JR_ROLE_INGESTER);
    char err[600];
    jr_auth_t *a = jr_auth_new (broker, err, sizeof err);
    jr_auth_t *b = jr_auth_new (broker, err, sizeof err);
    cr_assert (a && a == b, "the same folder shares the handler");
    cr_assert_null (jr_auth_new (ingester, err, sizeof err));
    cr_assert (strstr (err, "serves the keys of"), "%s", err);
    jr_auth_destroy (&a);
    cr_assert (jr_auth_running (), "one sharer is left");
    jr_auth_destroy (&b);
    cr_assert_not (jr_auth_running ());
    jr_keys_destroy (&broker);
    jr_keys_destroy (&ingester);
}
