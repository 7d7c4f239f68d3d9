/*  test_config.c - the real daemons' --config, environment and flag precedence, --print-config, --version, booleans  */
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <ctype.h>
#include <czmq.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static jr_h_env_t env;

static void
s_fini (void)
{
    jr_h_cleanup ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (config, .fini = s_fini, .timeout = 120);

static const char *s_daemons[] = { "jr-broker", "jr-worker", "jr-ingester" };

//  The environment of these tests: none of the variables the tests set,
//  nor the endpoints the harness exports for clients.
static void
s_init (const char *name)
{
    jr_h_env_init (&env, name);
    const char *vars[] = { "JR_BROKER",
                           "JR_INGESTER",
                           "JR_KEYS",
                           "JR_VERBOSE",
                           "JR_BROKER_VERBOSE",
                           "JR_BROKER_CONFIG",
                           "JR_WORKER_CONFIG",
                           "JR_INGESTER_CONFIG",
                           "JR_LOG_LEVEL",
                           "JR_HEARTBEAT_MS",
                           "JR_BROKER_HEARTBEAT",
                           "JR_BROKER_LIVENESS",
                           "JR_JOURNAL",
                           "JR_WORKER_BACKLOG",
                           "JR_WORKER_KILL_GRACE",
                           "JR_KILL_GRACE_MS",
                           "JR_INGESTER_BATCH",
                           "JR_INGEST_BATCH",
                           "JR_INGESTER_SYNC",
                           "JR_SYNC",
                           "JR_WORKER_PREFETCH",
                           "JR_PREFETCH",
                           "JR_BACKLOG",
                           "JR_BROKER_RETRY_BASE",
                           "JR_INGESTER_VERBOSE" };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv (vars[i]);
}

//  A file in the test folder with this text; its path in out.
static void
s_file (char *out, size_t size, const char *name, const char *text)
{
    snprintf (out, size, "%s/%s", env.dir, name);
    FILE *file = fopen (out, "w");
    CHECK (file, "cannot write %s", out);
    fputs (text, file);
    fclose (file);
}

//  The text of a file of the test folder (the caller frees), "" if none.
static char *
s_slurp (const char *name)
{
    char path[320];
    snprintf (path, sizeof path, "%s/%s", env.dir, name);
    char *text = calloc (1, 65536);
    assert (text);
    FILE *file = fopen (path, "r");
    if (file) {
        text[fread (text, 1, 65535, file)] = 0;
        fclose (file);
    }
    return text;
}

//  Run $JR_BIN/<bin> with the arguments (one shell word list, printf-style),
//  its stdout and stderr kept in *out and *err (the caller frees); returns
//  its exit status.
static int s_run (char **out, char **err, const char *bin, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
s_run (char **out, char **err, const char *bin, const char *format, ...)
{
    char path[512], args[1024];
    jr_h_bin (path, sizeof path, bin);
    va_list ap;
    va_start (ap, format);
    vsnprintf (args, sizeof args, format, ap);
    va_end (ap);
    int rc = jr_h_sh ("%s %s >%s/run.out 2>%s/run.err </dev/null", path, args, env.dir, env.dir);
    *out = s_slurp ("run.out");
    *err = s_slurp ("run.err");
    return rc;
}

//  -------------------------------------------------------------------------
//  Precedence, as --print-config shows it

//  For one daemon: a file sets three keys; the environment overrides two of
//  them (canonical name), a flag the last; a legacy variable sets a fourth.
static void
s_precedence (const char *bin, const char *a, const char *b, const char *c, const char *legacy_key,
              const char *legacy_var)
{
    char conf[400], text[512];
    snprintf (text, sizeof text,
              "# %s, written by test_config\n"
              "%s = 11\n"
              "\n"
              "%s = 12   # overridden by the environment\n"
              "%s = \"13\"\n",
              bin, a, b, c);
    s_file (conf, sizeof conf, "precedence.conf", text);
    char var_b[64], var_c[64];
    snprintf (var_b, sizeof var_b, "%s_%s", bin, b);
    snprintf (var_c, sizeof var_c, "%s_%s", bin, c);
    for (char *v = var_b; *v; v++)
        *v = *v == '-' ? '_' : (char)toupper ((unsigned char)*v);
    for (char *v = var_c; *v; v++)
        *v = *v == '-' ? '_' : (char)toupper ((unsigned char)*v);
    setenv (var_b, "22", 1);
    setenv (var_c, "23", 1);
    setenv (legacy_var, "44", 1);
    char *out, *err;
    int rc = s_run (&out, &err, bin, "--config %s --%s=33 --print-config", conf, c);
    printf ("%s --print-config:\n%s%s", bin, out, err);
    CHECK (rc == 0, "%s --print-config: exit %d", bin, rc);
    char want[600];
    snprintf (want, sizeof want, "\n%s = 11  # file %s:2\n", a, conf);
    CHECK (strstr (out, want), "%s: want '%s'", bin, want);
    snprintf (want, sizeof want, "\n%s = 22  # env %s\n", b, var_b);
    CHECK (strstr (out, want), "%s: want '%s'", bin, want);
    snprintf (want, sizeof want, "\n%s = 33  # flag\n", c);
    CHECK (strstr (out, want), "%s: want '%s'", bin, want);
    snprintf (want, sizeof want, "\n%s = 44  # env %s\n", legacy_key, legacy_var);
    CHECK (strstr (out, want), "%s: want '%s' (a legacy name)", bin, want);
    snprintf (want, sizeof want, "# config = %s  # flag\n", conf);
    CHECK (strstr (out, want), "%s: want '%s'", bin, want);
    free (out);
    free (err);
    //  The config file from the environment; a flag still beats it.
    char var[64];
    snprintf (var, sizeof var, "%s_CONFIG", bin);
    for (char *v = var; *v; v++)
        *v = *v == '-' ? '_' : (char)toupper ((unsigned char)*v);
    setenv (var, conf, 1);
    rc = s_run (&out, &err, bin, "--print-config");
    CHECK (rc == 0, "%s --print-config: exit %d: %s", bin, rc, err);
    snprintf (want, sizeof want, "# config = %s  # env %s\n", conf, var);
    CHECK (strstr (out, want), "%s: want '%s' in\n%s", bin, want, out);
    snprintf (want, sizeof want, "\n%s = 23  # env %s\n", c, var_c);
    CHECK (strstr (out, want), "%s: want '%s' in\n%s", bin, want, out);
    free (out);
    free (err);
    unsetenv (var);
    unsetenv (var_b);
    unsetenv (var_c);
    unsetenv (legacy_var);
}

Test (config, broker_file_env_flag_precedence)
{
    s_init ("config-broker");
    s_precedence ("jr-broker", "heartbeat", "liveness", "retry-base", "lease-grace",
                  "JR_LEASE_GRACE_MS");
}

Test (config, worker_file_env_flag_precedence)
{
    s_init ("config-worker");
    s_precedence ("jr-worker", "prefetch", "backlog", "kill-grace", "grace", "JR_GRACE_MS");
}

Test (config, ingester_file_env_flag_precedence)
{
    s_init ("config-ingester");
    s_precedence ("jr-ingester", "batch", "db", "sync", "sink", "JR_SINK");
}

//  -------------------------------------------------------------------------
//  Refusals

Test (config, unknown_key_exits_2_naming_key_and_line)
{
    s_init ("config-unknown");
    char conf[400];
    s_file (conf, sizeof conf, "unknown.conf", "# fine so far\n\nverbose = false\nbogus-key = 1\n");
    for (size_t i = 0; i < 3; i++) {
        char *out, *err;
        int rc = s_run (&out, &err, s_daemons[i], "--config %s", conf);
        char want[600];
        snprintf (want, sizeof want, "%s: error: %s:4: unknown key 'bogus-key'", s_daemons[i],
                  conf);
        CHECK (rc == 2, "%s: exit %d, not 2: %s", s_daemons[i], rc, err);
        CHECK (strstr (err, want), "%s: want '%s' in '%s'", s_daemons[i], want, err);
        free (out);
        free (err);
        //  A missing file: its path and the errno text.
        rc = s_run (&out, &err, s_daemons[i], "--config %s/missing.conf", env.dir);
        snprintf (want, sizeof want, "%s: error: config file %s/missing.conf: No such file",
                  s_daemons[i], env.dir);
        CHECK (rc == 2, "%s: exit %d, not 2: %s", s_daemons[i], rc, err);
        CHECK (strstr (err, want), "%s: want '%s' in '%s'", s_daemons[i], want, err);
        free (out);
        free (err);
    }
}

Test (config, a_line_without_equals_exits_2)
{
    s_init ("config-noeq");
    char conf[400];
    s_file (conf, sizeof conf, "noeq.conf", "journal /tmp/x\n");
    char *out, *err;
    int rc = s_run (&out, &err, "jr-broker", "--config %s", conf);
    char want[600];
    snprintf (want, sizeof want, "jr-broker: error: %s:1: expected 'name = value'", conf);
    CHECK (rc == 2 && strstr (err, want), "exit %d, want '%s' in '%s'", rc, want, err);
    free (out);
    free (err);
}

//  -------------------------------------------------------------------------
//  The example files: every key, its default, and they parse

Test (config, example_files_list_every_key_with_its_default)
{
    s_init ("config-examples");
    const char *src = getenv ("JR_SRC");
    CHECK (src, "$JR_SRC names the source tree");
    for (size_t i = 0; i < 3; i++) {
        const char *bin = s_daemons[i];
        char path[512];
        jr_h_bin (path, sizeof path, bin);
        //  The keys and defaults of a clean environment, and those of the
        //  example with every key uncommented: the same, each from the file
        //  (or the default where the example leaves the value empty).
        int rc = jr_h_sh ("env -i %s --print-config | grep -v '^#' >%s/defaults", path, env.dir);
        CHECK (rc == 0, "%s --print-config", bin);
        rc = jr_h_sh ("sed -n 's/^# \\([a-z-]*\\) =/\\1 =/p' %s/deploy/conf/%s.conf >%s/all.conf",
                      src, bin, env.dir);
        CHECK (rc == 0, "uncomment deploy/conf/%s.conf", bin);
        rc = jr_h_sh ("env -i %s --config %s/all.conf --print-config | grep -v '^#'"
                      " | sed 's/  # .*//' >%s/from-file",
                      path, env.dir, env.dir);
        CHECK (rc == 0, "%s --config (deploy/conf/%s.conf uncommented) is accepted", bin, bin);
        rc = jr_h_sh ("sed 's/  # .*//' %s/defaults | diff - %s/from-file", env.dir, env.dir);
        CHECK (rc == 0,
               "deploy/conf/%s.conf lists every key with its default (deploy/conf/gen-conf.sh "
               "rewrites it)",
               bin);
        rc = jr_h_sh ("cut -d' ' -f1 %s/all.conf >%s/keys && cut -d' ' -f1 %s/defaults | diff - "
                      "%s/keys",
                      env.dir, env.dir, env.dir, env.dir);
        CHECK (rc == 0, "deploy/conf/%s.conf has every key, in the order of --help", bin);
    }
}

//  -------------------------------------------------------------------------
//  --version, -h

Test (config, version_and_help_of_every_binary)
{
    s_init ("config-version");
    const char *bins[] = { "jr-broker", "jr-worker", "jr-ingester", "jr" };
    for (size_t i = 0; i < 4; i++) {
        char *out, *err;
        int rc = s_run (&out, &err, bins[i], "--version");
        char want[64];
        snprintf (want, sizeof want, "%s %s\n", bins[i], JR_VERSION);
        CHECK (rc == 0 && strcmp (out, want) == 0, "%s --version: exit %d, '%s', want '%s'",
               bins[i], rc, out, want);
        free (out);
        free (err);
        rc = s_run (&out, &err, bins[i], "-h");
        CHECK (rc == 0 && strstr (out, "usage: "), "%s -h: exit %d, '%s'", bins[i], rc, out);
        free (out);
        free (err);
    }
    char *out, *err;
    int rc = s_run (&out, &err, "jr", "submit -h");
    CHECK (rc == 0 && strstr (out, "usage: jr submit"), "jr submit -h: exit %d, '%s'", rc, out);
    free (out);
    free (err);
}

//  -------------------------------------------------------------------------
//  Booleans: JR_VERBOSE=0 is off

//  Start a broker with this environment (NAME=VALUE, or NULL), send it a
//  message it refuses (logged at debug level) and wait for its ERROR
//  answer; true if its log has a DEBUG line.
static bool
s_broker_debugs (const char *label, const char *var, const char *value)
{
    char journal[400];
    snprintf (journal, sizeof journal, "%s/journal-%s", env.dir, label);
    if (var)
        setenv (var, value, 1);
    pid_t broker = jr_h_spawn (&env, label, "jr-broker", "--clients", env.clients_ep, "--workers",
                               env.workers_ep, "--journal", journal, NULL);
    if (var)
        unsetenv (var);
    CHECK (jr_h_wait_port (env.port_clients), "%s: the broker listens", label);
    zsock_t *dealer = zsock_new_dealer (env.clients_ep);
    CHECK (dealer, "a dealer");
    zsock_set_rcvtimeo (dealer, 10000);
    zstr_send (dealer, "not a message of the protocol");
    zmsg_t *reply = zmsg_recv (dealer);
    CHECK (reply, "%s: the broker answered the bad message", label);
    zmsg_destroy (&reply);
    zsock_destroy (&dealer);
    CHECK (jr_h_stop (broker, SIGTERM, 10000), "%s: the broker stops", label);
    char *log = jr_h_log (&env, label);
    bool debug = strstr (log, " DEBUG broker ") != NULL;
    printf ("%s (%s=%s): %s", label, var ? var : "-", var ? value : "-", log);
    free (log);
    return debug;
}

Test (config, verbose_zero_or_false_does_not_turn_debug_on)
{
    s_init ("config-verbose");
    //  The probe works: verbose on logs the refusal at debug level.
    CHECK (s_broker_debugs ("on", "JR_VERBOSE", "1"), "JR_VERBOSE=1 logs at debug level");
    CHECK (!s_broker_debugs ("zero", "JR_VERBOSE", "0"), "JR_VERBOSE=0 is off");
    CHECK (!s_broker_debugs ("false", "JR_BROKER_VERBOSE", "false"), "JR_BROKER_VERBOSE=false");
    CHECK (s_broker_debugs ("yes", "JR_BROKER_VERBOSE", "YES"), "JR_BROKER_VERBOSE=YES is on");
    //  The canonical name wins over the legacy one.
    setenv ("JR_VERBOSE", "1", 1);
    CHECK (!s_broker_debugs ("canonical", "JR_BROKER_VERBOSE", "off"),
           "JR_BROKER_VERBOSE=off beats JR_VERBOSE=1");
    unsetenv ("JR_VERBOSE");
    //  Not a boolean: refused, naming the variable.
    setenv ("JR_VERBOSE", "maybe", 1);
    char *out, *err;
    int rc = s_run (&out, &err, "jr-broker", "--journal %s/j", env.dir);
    unsetenv ("JR_VERBOSE");
    CHECK (rc == 2 && strstr (err, "jr-broker: error: $JR_VERBOSE: 'maybe' is not a boolean"),
           "exit %d: %s", rc, err);
    free (out);
    free (err);
}

//  -------------------------------------------------------------------------
//  A cluster from config files alone

Test (config, a_cluster_runs_from_config_files)
{
    s_init ("config-cluster");
    char broker_conf[400], ingester_conf[400], worker_conf[400], text[1024];
    snprintf (text, sizeof text,
              "clients = %s\nworkers = %s\njournal = %s/journal\nfsync = batch\n"
              "verbose = no\n",
              env.clients_ep, env.workers_ep, env.dir);
    s_file (broker_conf, sizeof broker_conf, "jr-broker.conf", text);
    snprintf (text, sizeof text, "bind = %s\ndb = %s\n", env.ingester_ep, env.db);
    s_file (ingester_conf, sizeof ingester_conf, "jr-ingester.conf", text);
    snprintf (text, sizeof text,
              "broker = %s\ningester = %s\nconcurrency = 1\nname = 'conf-worker'\n"
              "tasks = echo\n",
              env.workers_ep, env.ingester_ep);
    s_file (worker_conf, sizeof worker_conf, "jr-worker.conf", text);
    jr_h_spawn (&env, "broker", "jr-broker", "--config", broker_conf, NULL);
    setenv ("JR_INGESTER_CONFIG", ingester_conf, 1);
    jr_h_spawn (&env, "ingester", "jr-ingester", NULL);
    unsetenv ("JR_INGESTER_CONFIG");
    jr_h_spawn (&env, "worker", "jr-worker", "--config", worker_conf, NULL);
    CHECK (jr_h_wait_port (env.port_clients), "the broker listens on the file's endpoint");
    CHECK (jr_h_wait_port (env.port_ingester), "the ingester listens on the file's endpoint");
    char *out, *err;
    int rc = s_run (&out, &err, "jr", "--broker %s --ingester %s submit --wait echo msg=hi",
                    env.clients_ep, env.ingester_ep);
    CHECK (rc == 0, "jr submit --wait: exit %d: %s %s", rc, out, err);
    CHECK (strstr (out, "hi"), "the echo came back: %s", out);
    free (out);
    free (err);
    char *log = jr_h_log (&env, "worker");
    CHECK (strstr (log, "conf-worker"), "the worker's name came from its file");
    free (log);
}
