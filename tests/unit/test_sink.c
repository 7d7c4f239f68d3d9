/*  test_sink.c - sinks by URL scheme: lookup, the SQLite entry, the ingester's --sink and its --db alias  */
#include "common/log.h"
#include "ingester/ingester.h"
#include "ingester/sink.h"
#include "proto/proto.h"
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static jr_h_env_t env;

static void
s_init (void)
{
    jr_log_init ("ingester", JR_LOG_ERROR);
    jr_h_env_init (&env, "sink");
}

static void
s_fini (void)
{
    jr_h_cleanup ();
    cr_assert_eq (chdir ("/"), 0);  //  a test may have moved into the dir
    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", env.dir);
    cr_assert_eq (system (cmd), 0);
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (sink, .init = s_init, .fini = s_fini, .timeout = 60);

Test (sink, lookup_finds_sqlite_and_keeps_the_rest_verbatim)
{
    const char *where = NULL;
    cr_assert_eq (jr_sink_lookup ("sqlite:/var/lib/jr.db", &where), &jr_sink_sqlite);
    cr_assert_str_eq (where, "/var/lib/jr.db");
    //  Only the first colon ends the scheme: a path may hold more.
    cr_assert_eq (jr_sink_lookup ("sqlite:a:b.db", &where), &jr_sink_sqlite);
    cr_assert_str_eq (where, "a:b.db");
    cr_assert_str_eq (jr_sink_sqlite.scheme, "sqlite");
}

Test (sink, lookup_refuses_unknown_missing_or_empty_parts)
{
    const char *bad[] = {
        "postgres://host/db", "jr.db",         "/tmp/jr.db",   ":jr.db", "sqlite:",
        "sqlit:jr.db",        "sqlitex:jr.db", "SQLITE:jr.db", ""
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *where = "untouched";
        cr_assert_null (jr_sink_lookup (bad[i], &where), "'%s' names no sink", bad[i]);
        cr_assert_str_eq (where, "untouched", "'%s' leaves where alone", bad[i]);
    }
}

Test (sink, new_by_url_stores_and_reads_through_the_table)
{
    char url[400];
    snprintf (url, sizeof url, "sqlite:%s/by-url.db", env.dir);
    cr_assert_null (jr_sink_new ("bogus:x", "off"));
    cr_assert_null (jr_sink_new (url, "sometimes"), "the store's own checks still apply");
    jr_sink_t *sink = jr_sink_new (url, "off");
    cr_assert (sink);
    cr_assert_eq (jr_sink_ops (sink), &jr_sink_sqlite);
    jr_job_t job;
    jr_job_init (&job, "echo");
    job.attempt = 1;
    job.success = true;
    job.state = JR_STATE_SUCCEEDED;
    cr_assert_eq (jr_sink_begin (sink), 0);
    cr_assert_eq (jr_sink_put (sink, &job), JR_SINK_STORED);
    cr_assert_eq (jr_sink_commit (sink), 0);
    jr_job_t *stored = NULL;
    cr_assert_eq (jr_sink_get (sink, job.id, &stored), 0);
    cr_assert_eq (stored->state, JR_STATE_SUCCEEDED);
    jr_job_destroy (&stored);
    jr_sink_destroy (&sink);
    cr_assert_null (sink);
    jr_sink_destroy (&sink);
    cr_assert_eq (access (url + strlen ("sqlite:"), F_OK), 0, "the file is where the URL says");
}

//  The config: sink as a URL, db as its alias, not both, no unknown scheme.
Test (sink, ingester_takes_sink_or_db_alias_but_not_both)
{
    char url[400], db[400];
    snprintf (url, sizeof url, "sqlite:%s/url.db", env.dir);
    snprintf (db, sizeof db, "%s/alias.db", env.dir);
    jr_ingester_config_t cfg = { .bind = "tcp://127.0.0.1:*", .sink = url, .sync = "off" };
    jr_ingester_t *ingester = jr_ingester_new (&cfg);
    cr_assert (ingester);
    jr_ingester_destroy (&ingester);
    cr_assert_eq (access (url + strlen ("sqlite:"), F_OK), 0);
    cfg.sink = NULL;
    cfg.db = db;
    ingester = jr_ingester_new (&cfg);
    cr_assert (ingester);
    jr_ingester_destroy (&ingester);
    cr_assert_eq (access (db, F_OK), 0);
    cfg.sink = url;
    cr_assert_null (jr_ingester_new (&cfg), "sink and db together are refused");
    cfg.db = NULL;
    cfg.sink = "postgres://localhost/jr";
    cr_assert_null (jr_ingester_new (&cfg), "an unknown scheme is refused");
}

//  Neither given: sqlite:jr.db in the working directory, as before.
Test (sink, ingester_default_is_jr_db_here)
{
    cr_assert_eq (chdir (env.dir), 0);
    jr_ingester_config_t cfg = { .bind = "tcp://127.0.0.1:*", .sync = "off" };
    jr_ingester_t *ingester = jr_ingester_new (&cfg);
    cr_assert (ingester);
    jr_ingester_destroy (&ingester);
    cr_assert_eq (access (JR_INGESTER_DB, F_OK), 0);
}

//  The real binary: an unknown scheme stops it at start, naming the scheme.
Test (sink, jr_ingester_refuses_an_unknown_scheme_by_name)
{
    pid_t pid = jr_h_spawn (&env, "unknown", "jr-ingester", "--bind", env.ingester_ep, "--sink",
                            "mongodb:jr", NULL);
    int status = 0;
    CHECK (jr_h_wait_exit (pid, 20000, &status), "the ingester exits by itself");
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) != 0, "with a failure status (%d)", status);
    char *log = jr_h_log (&env, "unknown");
    CHECK (strstr (log, "scheme=mongodb") && strstr (log, "unknown sink scheme"),
           "the log names the scheme: %s", log);
    free (log);
}

//  The real binary with --sink sqlite:PATH serves, and --db still does.
Test (sink, jr_ingester_starts_with_sink_url_and_with_db)
{
    char url[400];
    snprintf (url, sizeof url, "sqlite:%s", env.db);
    pid_t pid =
        jr_h_spawn (&env, "url", "jr-ingester", "--bind", env.ingester_ep, "--sink", url, NULL);
    CHECK (jr_h_wait_port (env.port_ingester), "listening with --sink");
    CHECK (jr_h_stop (pid, SIGTERM, 10000), "stops");
    CHECK (access (env.db, F_OK) == 0, "the database is at the URL's path");
    char *log = jr_h_log (&env, "url");
    CHECK (strstr (log, url), "the log names the sink: %s", log);
    free (log);
    pid = jr_h_spawn (&env, "both", "jr-ingester", "--bind", env.ingester_ep, "--sink", url, "--db",
                      env.db, NULL);
    int status = 0;
    CHECK (jr_h_wait_exit (pid, 20000, &status), "both flags: the ingester exits by itself");
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) != 0, "with a failure status (%d)", status);
    pid = jr_h_ingester (&env);  //  the harness's own way: --db
    CHECK (jr_h_stop (pid, SIGTERM, 10000), "stops");
}
