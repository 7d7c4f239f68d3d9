/*  test_cli.c - jr as a script sees it: exit codes, stdout, --file, unreachable servers, jr ping  */
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <jr/jr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static jr_h_env_t env;

static void
s_fini (void)
{
    jr_h_cleanup ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (cli, .fini = s_fini, .timeout = 240);

//  What one run of jr gave.
typedef struct {
    int rc;           //  exit status, -1 if it did not exit
    char out[65536];  //  stdout
    char err[65536];  //  stderr
    long ms;          //  how long it took (an upper bound is asserted only
                      //  against a timeout jr states, never speed)
} run_t;

static run_t s_run;

static long
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void
s_slurp (const char *path, char *text, size_t size)
{
    text[0] = 0;
    FILE *file = fopen (path, "r");
    if (!file)
        return;
    size_t len = fread (text, 1, size - 1, file);
    text[len] = 0;
    fclose (file);
}

//  Run `jr ARGS` (a shell fragment: quoting, pipes and stdin as in sh)
//  with the env's endpoints; fills s_run.
static int __attribute__ ((format (printf, 1, 2))) s_jr (const char *format, ...)
{
    char args[4096], jr[512], cmd[8192], out[300], err[300];
    va_list ap;
    va_start (ap, format);
    vsnprintf (args, sizeof args, format, ap);
    va_end (ap);
    jr_h_bin (jr, sizeof jr, "jr");
    snprintf (out, sizeof out, "%s/jr.out", env.dir);
    snprintf (err, sizeof err, "%s/jr.err", env.dir);
    snprintf (cmd, sizeof cmd, "cd '%s' && JR=%s; %s >%s 2>%s", env.dir, jr, args, out, err);
    long start = s_now_ms ();
    int status = system (cmd);
    s_run.ms = s_now_ms () - start;
    s_run.rc = WIFEXITED (status) ? WEXITSTATUS (status) : -1;
    s_slurp (out, s_run.out, sizeof s_run.out);
    s_slurp (err, s_run.err, sizeof s_run.err);
    printf ("test: $ %s -> %d in %ld ms\n  stdout: %.300s\n  stderr: %.600s\n", args, s_run.rc,
            s_run.ms, s_run.out, s_run.err);
    fflush (stdout);
    return s_run.rc;
}

//  Write text to <dir>/name; its path in path.
static void
s_file (const char *name, const char *text, char *path, size_t size)
{
    snprintf (path, size, "%s/%s", env.dir, name);
    FILE *file = fopen (path, "w");
    CHECK (file, "cannot write %s", path);
    fputs (text, file);
    fclose (file);
}

//  Every line of stderr starts "jr: error: " (the one style), but for the
//  bare ids that submit --wait writes there.
static bool
s_errors_styled (const char *err)
{
    for (const char *line = err; *line;) {
        const char *end = strchr (line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen (line);
        uint8_t id[JR_ID_SIZE];
        char text[64] = "";
        if (len == 36) {
            memcpy (text, line, 36);
            text[36] = 0;
        }
        if (strncmp (line, "jr: error: ", 11) != 0 && !(len == 36 && jr_id_parse (text, id) == 0))
            return false;
        line += len + (end ? 1 : 0);
    }
    return true;
}

//  The cluster: broker, ingester, and (with worker) one worker of every task.
static void
s_cluster (const char *name, bool worker)
{
    jr_h_env_init (&env, name);
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    if (worker)
        jr_h_worker (&env, "w", 2, NULL);
    CHECK (jr_h_wait_port (env.port_clients) && jr_h_wait_port (env.port_ingester),
           "the servers listen");
}

Test (cli, exit_codes_and_one_json_document)
{
    s_cluster ("cli-codes", true);

    //  0: done, and stdout is exactly one JSON document, id included
    CHECK (s_jr ("$JR submit --wait echo msg=hi") == 0, "a job that succeeds exits 0");
    CHECK (s_errors_styled (s_run.err), "stderr: %s", s_run.err);
    char id[64] = "";
    sscanf (s_run.err, "%63s", id);
    uint8_t raw[JR_ID_SIZE];
    CHECK (jr_id_parse (id, raw) == 0, "the id goes to stderr: %s", s_run.err);
    CHECK (s_jr ("$JR submit --wait echo msg=hi | jq -s -e 'length == 1 and .[0].payload == \"hi\" "
                 "and (.[0].id | length) == 36'")
               == 0,
           "submit --wait | jq: one document, the payload and id in it");
    CHECK (strcmp (s_run.out, "true\n") == 0, "jq says: %s", s_run.out);
    CHECK (s_jr ("$JR submit --wait echo msg=hi 2>ids | jq -r .id >got && cmp -s ids got") == 0,
           "the id in the document is the one on stderr");
    CHECK (s_jr ("$JR submit --wait echo msg=hi | jq -r .payload") == 0, "the brief's pipeline");
    CHECK (strcmp (s_run.out, "hi\n") == 0, "jq .payload: %s", s_run.out);

    //  without --wait: the id alone on stdout
    CHECK (s_jr ("$JR submit echo msg=hi") == 0, "submit");
    CHECK (strlen (s_run.out) == 37 && s_run.out[36] == '\n', "one id line: %s", s_run.out);
    s_run.out[36] = 0;
    CHECK (jr_id_parse (s_run.out, raw) == 0, "a UUID: %s", s_run.out);

    //  1: the job failed; stdout still one document
    CHECK (s_jr ("$JR submit --wait --max-attempts 1 fail") == 1, "a failed job exits 1");
    CHECK (s_jr ("$JR submit --wait --max-attempts 1 fail | jq -s -e 'length == 1 and "
                 "(.[0].success | not)'")
               == 0,
           "one document for a failed job too");
    //  --deadline is the job's own deadline
    CHECK (s_jr ("$JR submit --wait --max-attempts 1 --deadline 200 sleep ms:=5000") == 1,
           "a job over its --deadline fails");
    CHECK (strstr (s_run.out, "\"success\":false"), "%s", s_run.out);

    //  2: usage, and --timeout names the flags that replace it
    CHECK (s_jr ("$JR submit") == 2, "submit without a task");
    CHECK (strncmp (s_run.err, "jr: error: ", 11) == 0, "%s", s_run.err);
    CHECK (s_jr ("$JR frobnicate") == 2, "an unknown command");
    CHECK (strncmp (s_run.err, "jr: error: ", 11) == 0, "%s", s_run.err);
    CHECK (s_jr ("$JR submit --timeout 500 echo") == 2, "--timeout is gone");
    CHECK (strstr (s_run.err, "--deadline") && strstr (s_run.err, "--answer-timeout")
               && strstr (s_run.err, "--wait-timeout"),
           "and says what to use: %s", s_run.err);
    CHECK (s_jr ("$JR result not-an-id") == 2, "a bad id");
    CHECK (s_jr ("$JR ping everything") == 2, "ping of no server");

    //  4: not found
    const char *nobody = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";
    CHECK (s_jr ("$JR result %s", nobody) == 4, "result of an unknown id");
    CHECK (strncmp (s_run.err, "jr: error: ", 11) == 0, "%s", s_run.err);
    CHECK (s_jr ("$JR cancel %s", nobody) == 4, "cancel of an unknown id");
    CHECK (s_jr ("$JR retry %s", nobody) == 4, "retry of an unknown id");

    //  3: no result in --wait-timeout (a task nobody serves stays queued)
    CHECK (s_jr ("$JR submit --wait --wait-timeout 500 no-such-task") == 3,
           "no result in --wait-timeout");
    CHECK (strstr (s_run.err, "jr: error: ") && strstr (s_run.err, "--wait-timeout"), "%s",
           s_run.err);
    CHECK (strcmp (s_run.out, "") == 0, "nothing on stdout: %s", s_run.out);

    //  jr ping: 0 with what answered
    CHECK (s_jr ("$JR ping broker") == 0, "ping broker");
    char want[128];
    snprintf (want, sizeof want, "broker %s: ok (", env.clients_ep);
    CHECK (strncmp (s_run.out, want, strlen (want)) == 0, "%s", s_run.out);
    CHECK (s_jr ("$JR ping ingester") == 0, "ping ingester");
    snprintf (want, sizeof want, "ingester %s: ok (", env.ingester_ep);
    CHECK (strncmp (s_run.out, want, strlen (want)) == 0, "%s", s_run.out);
}

//  The broker's state of a job, through libjr.
static int
s_broker_state (const char *id)
{
    uint8_t raw[JR_ID_SIZE];
    CHECK (jr_id_parse (id, raw) == 0, "%s", id);
    jr_client_t *client = jr_client_new (env.clients_ep, env.ingester_ep);
    CHECK (client, "a client");
    int state = -1;
    int rc = jr_client_status (client, raw, &state, NULL);
    jr_client_destroy (&client);
    CHECK (rc == 0, "the broker answers STATUS: %s", jr_errname (rc));
    return state;
}

Test (cli, file_all_or_nothing_and_keep_going)
{
    //  No worker: what is submitted stays queued, so the broker shows it.
    s_cluster ("cli-file", false);
    static const char *ids[] = {
        "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000004",
        "00000000-0000-4000-8000-000000000005",
    };
    char text[2048], path[400];
    snprintf (text, sizeof text,
              "{\"task\":\"echo\",\"id\":\"%s\",\"vars\":{\"msg\":\"one\"}}\n"
              "{\"task\":\"echo\",\"id\":\"%s\",\"priority\":5,\"deadline_ms\":1000}\n"
              "{\"task\":\"echo\",\"id\":\"%s\",\"priority\":\"high\"}\n"
              "{\"task\":\"echo\",\"id\":\"%s\",\"timeout_ms\":500,\"max_attempts\":2}\n"
              "{\"task\":\"echo\",\"id\":\"%s\"}\n",
              ids[0], ids[1], ids[2], ids[3], ids[4]);
    s_file ("jobs.jsonl", text, path, sizeof path);

    //  a bad line 3: nothing submitted, exit 2, line and field named
    CHECK (s_jr ("$JR submit --file %s", path) == 2, "a bad line: usage error");
    char want[600];
    snprintf (want, sizeof want, "jr: error: %s:3: field priority: ", path);
    CHECK (strstr (s_run.err, want), "the message names line 3 and the field: %s", s_run.err);
    for (int line = 1; line <= 5; line++) {
        snprintf (want, sizeof want, "%s:%d:", path, line);
        CHECK (line == 3 || !strstr (s_run.err, want), "only line 3 is named: %s", s_run.err);
    }
    CHECK (s_errors_styled (s_run.err), "%s", s_run.err);
    CHECK (strcmp (s_run.out, "") == 0, "no ids: %s", s_run.out);
    for (int i = 0; i < 5; i++)
        CHECK (s_broker_state (ids[i]) == JR_STATE_UNKNOWN, "job %d was not submitted", i + 1);
    //  the same from stdin names it so
    CHECK (s_jr ("$JR submit --file - <%s", path) == 2, "stdin: all or nothing too");
    CHECK (strstr (s_run.err, "jr: error: stdin:3: field priority: "), "%s", s_run.err);

    //  --keep-going: the good lines go, ids line up, '-' for the bad one
    CHECK (s_jr ("$JR submit --keep-going --file %s", path) == 1, "a bad line: exit 1");
    snprintf (want, sizeof want, "%s\n%s\n-\n%s\n%s\n", ids[0], ids[1], ids[3], ids[4]);
    CHECK (strcmp (s_run.out, want) == 0, "one stdout line per input line: %s", s_run.out);
    for (int i = 0; i < 5; i++)
        CHECK (s_broker_state (ids[i]) == (i == 2 ? JR_STATE_UNKNOWN : JR_STATE_QUEUED),
               "job %d %s", i + 1, i == 2 ? "not submitted" : "queued");

    //  a blank line is skipped, with an empty output line; all good: exit 0
    snprintf (text, sizeof text, "{\"task\":\"echo\"}\n\n{\"task\":\"echo\"}\n");
    s_file ("blank.jsonl", text, path, sizeof path);
    CHECK (s_jr ("$JR submit --file %s", path) == 0, "blank lines are no error");
    CHECK (strlen (s_run.out) == 37 + 1 + 37 && s_run.out[36] == '\n' && s_run.out[37] == '\n',
           "id, empty line, id: %s", s_run.out);

    //  each kind of bad line, named by field
    static const char *bad[][2] = {
        { "{\"vars\":{}}", "field task: missing" },
        { "{\"task\":\"\"}", "field task: must not be empty" },
        { "{\"task\":7}", "field task: must be a string" },
        { "{\"task\":\"echo\",\"vars\":[1]}", "field vars: must be an object" },
        { "{\"task\":\"echo\",\"colour\":\"red\"}", "field colour: unknown" },
        { "{\"task\":\"echo\",\"deadline_ms\":-1}", "field deadline_ms: must be an integer" },
        { "{\"task\":\"echo\",\"max_attempts\":1.5}", "field max_attempts: must be an integer" },
        { "{\"task\":\"echo\",\"priority\":4294967296}", "field priority: must be an integer" },
        { "{\"task\":\"echo\",\"timeout_ms\":1,\"deadline_ms\":2}",
          "field deadline_ms: given twice" },
        { "{\"task\":\"echo\",\"id\":\"nope\"}", "field id: must be a UUID" },
        { "[1]", "not a JSON object" },
        { "{\"task\":", "column 9: " },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf (text, sizeof text, "{\"task\":\"echo\"}\n%s\n", bad[i][0]);
        s_file ("bad.jsonl", text, path, sizeof path);
        CHECK (s_jr ("$JR submit --file %s", path) == 2, "%s", bad[i][0]);
        snprintf (want, sizeof want, "jr: error: %s:2: %s", path, bad[i][1]);
        CHECK (strstr (s_run.err, want), "%s: want '%s' in %s", bad[i][0], want, s_run.err);
    }
    //  a task name of 257 bytes
    char name[300];
    memset (name, 'a', 257);
    name[257] = 0;
    snprintf (text, sizeof text, "{\"task\":\"%s\"}\n", name);
    s_file ("long.jsonl", text, path, sizeof path);
    CHECK (s_jr ("$JR submit --file %s", path) == 2, "a long task name");
    CHECK (strstr (s_run.err, ":1: field task: longer than 256 bytes"), "%s", s_run.err);
}

//  Within the time the help states, with generous slack: an upper bound
//  on a stated timeout, not a speed.
#define SLACK_MS 2000

Test (cli, unreachable_servers_are_named_in_the_stated_time)
{
    jr_h_env_init (&env, "cli-down");  //  ports picked, nothing listens
    char want[200];
    snprintf (want, sizeof want, "jr: error: cannot reach the broker at %s", env.clients_ep);
    CHECK (s_jr ("$JR submit echo") == 3, "an unreachable broker exits 3");
    CHECK (strstr (s_run.err, want), "names the endpoint: %s", s_run.err);
    CHECK (s_run.ms < 3000 + SLACK_MS, "within the default --connect-timeout (3 s): %ld ms",
           s_run.ms);
    CHECK (s_jr ("$JR --connect-timeout 500 cancel 1b4e28ba-2fa1-41d2-883f-0016d3cca427") == 3,
           "cancel");
    CHECK (strstr (s_run.err, want), "%s", s_run.err);
    CHECK (s_run.ms < 500 + SLACK_MS, "within --connect-timeout 500: %ld ms", s_run.ms);
    CHECK (s_jr ("$JR ping broker") == 3, "ping of a broker that is down");
    CHECK (strstr (s_run.err, want), "%s", s_run.err);

    snprintf (want, sizeof want, "jr: error: cannot reach the ingester at %s", env.ingester_ep);
    CHECK (s_jr ("$JR result 1b4e28ba-2fa1-41d2-883f-0016d3cca427") == 3, "result");
    CHECK (strstr (s_run.err, want), "%s", s_run.err);
    CHECK (s_run.ms < 3000 + SLACK_MS, "%ld ms", s_run.ms);
    CHECK (s_jr ("$JR wait 1b4e28ba-2fa1-41d2-883f-0016d3cca427") == 3, "wait");
    CHECK (strstr (s_run.err, want), "%s", s_run.err);
    CHECK (s_jr ("JR_CONNECT_TIMEOUT=700 $JR ping ingester") == 3, "ping ingester");
    CHECK (strstr (s_run.err, want), "%s", s_run.err);
    CHECK (s_run.ms < 700 + SLACK_MS, "$JR_CONNECT_TIMEOUT: %ld ms", s_run.ms);

    //  a broker that accepts TCP but is stopped: connected, no handshake
    pid_t broker = jr_h_broker (&env, NULL);
    jr_h_ingester (&env);
    CHECK (jr_h_wait_port (env.port_clients) && jr_h_wait_port (env.port_ingester), "listening");
    CHECK (s_jr ("$JR ping broker") == 0, "up");
    CHECK (s_jr ("$JR ping ingester") == 0, "up");
    kill (broker, SIGSTOP);
    CHECK (s_jr ("$JR --connect-timeout 1000 submit --wait echo") == 3, "a stopped broker");
    snprintf (want, sizeof want,
              "jr: error: cannot reach the broker at %s (connected, but no "
              "handshake in 1 s)",
              env.clients_ep);
    CHECK (strstr (s_run.err, want), "%s", s_run.err);
    CHECK (s_run.ms < 1000 + SLACK_MS, "%ld ms", s_run.ms);
    CHECK (s_jr ("$JR ping broker --connect-timeout 1000") == 3, "ping of a stopped broker");
    kill (broker, SIGCONT);
    CHECK (s_jr ("$JR ping broker") == 0, "up again");
}

Test (cli, ping_and_keys)
{
    jr_h_env_init (&env, "cli-keys");
    CHECK (jr_h_env_keys (&env), "deploy/keys-init.sh failed");
    jr_h_broker (&env, NULL);
    jr_h_ingester (&env);
    CHECK (jr_h_wait_port (env.port_clients) && jr_h_wait_port (env.port_ingester), "listening");
    CHECK (s_jr ("$JR ping broker") == 0, "with the client key ($JR_KEYS)");
    CHECK (s_jr ("$JR ping ingester") == 0, "with the client key ($JR_KEYS)");
    CHECK (s_jr ("env -u JR_KEYS $JR ping broker") == 5, "no key: refused");
    CHECK (strstr (s_run.err, env.clients_ep) && strncmp (s_run.err, "jr: error: ", 11) == 0,
           "names the endpoint: %s", s_run.err);
    CHECK (s_jr ("env -u JR_KEYS $JR ping ingester") == 5, "no key: refused");
    CHECK (s_jr ("env -u JR_KEYS $JR submit echo") == 5, "submit without a key");
    CHECK (s_jr ("$JR submit echo msg=hi") == 0, "with the key it is let in");
}
