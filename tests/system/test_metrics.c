/*  test_metrics.c - each daemon's /metrics parses with promtool and counts what the test did  */
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static jr_h_env_t env;

static void
s_fini (void)
{
    jr_h_cleanup ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (metrics, .fini = s_fini, .timeout = 300);

//  A loopback port nothing listens on now.
static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    cr_assert (fd >= 0 && bind (fd, (struct sockaddr *)&addr, len) == 0);
    cr_assert (getsockname (fd, (struct sockaddr *)&addr, &len) == 0);
    close (fd);
    return ntohs (addr.sin_port);
}

//  Scrape http://127.0.0.1:port/metrics into dir/name.prom, check it with
//  promtool; the text (caller frees).
static char *
s_scrape (int port, const char *name)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s.prom", env.dir, name);
    CHECK (jr_h_sh ("curl -sf http://127.0.0.1:%d/metrics -o %s", port, path) == 0,
           "GET /metrics of %s", name);
    CHECK (jr_h_sh ("promtool check metrics <%s >%s.check 2>&1", path, path) == 0,
           "promtool check metrics accepts the %s's text (see %s.check)", name, path);
    FILE *file = fopen (path, "r");
    CHECK (file, "%s", path);
    char *text = calloc (1, 1 << 20);
    cr_assert (text);
    size_t len = fread (text, 1, (1 << 20) - 1, file);
    text[len] = 0;
    fclose (file);
    return text;
}

//  The value of the sample line that starts with series ("name{labels}").
static double
s_sample (const char *text, const char *series)
{
    char key[512];
    snprintf (key, sizeof key, "\n%s ", series);
    const char *at = strstr (text, key);
    return at ? strtod (at + strlen (key), NULL) : -1;
}

Test (metrics, each_daemon_serves_what_happened)
{
    jr_h_env_init (&env, "metrics");
    int broker_port = s_free_port (), worker_port = s_free_port (), ingester_port = s_free_port ();
    char addr[64], flag[80];
    snprintf (addr, sizeof addr, "127.0.0.1:%d", ingester_port);
    jr_h_spawn (&env, "ingester", "jr-ingester", "--bind", env.ingester_ep, "--db", env.db,
                "--metrics", addr, NULL);
    CHECK (jr_h_wait_port (env.port_ingester) && jr_h_wait_port (ingester_port), "ingester up");
    snprintf (flag, sizeof flag, "--metrics=127.0.0.1:%d", broker_port);
    jr_h_broker (&env, flag);
    CHECK (jr_h_wait_port (broker_port), "broker's /metrics up");
    snprintf (addr, sizeof addr, "127.0.0.1:%d", worker_port);
    jr_h_spawn (&env, "worker", "jr-worker", "--broker", env.workers_ep, "--ingester",
                env.ingester_ep, "--concurrency", "4", "--metrics", addr, NULL);
    CHECK (jr_h_wait_port (worker_port), "worker's /metrics up");

    //  1,000 jobs: 900 echo, 100 that fail for good (failed, not retried).
    char jobs[512], jr[512];
    snprintf (jobs, sizeof jobs, "%s/jobs.jsonl", env.dir);
    FILE *file = fopen (jobs, "w");
    cr_assert (file);
    for (int i = 0; i < 1000; i++)
        fprintf (file,
                 i % 10 ? "{\"task\": \"echo\", \"vars\": {\"n\": %d}}\n"
                        : "{\"task\": \"fail\", \"vars\": {\"n\": %d, \"permanent\": true}}\n",
                 i);
    fclose (file);
    jr_h_bin (jr, sizeof jr, "jr");
    int rc = jr_h_sh ("%s --broker %s --ingester %s submit --file %s --wait >%s/results.jsonl", jr,
                      env.clients_ep, env.ingester_ep, jobs, env.dir);
    CHECK (rc == 1, "all 1,000 results came, some failed: exit 1, not %d", rc);

    char *broker = s_scrape (broker_port, "broker");
    CHECK (s_sample (broker, "jr_broker_jobs_finished_total{task=\"fail\",outcome=\"failed\"}")
               == 100,
           "100 fail jobs finished failed:\n%.4000s", broker);
    CHECK (s_sample (broker, "jr_broker_jobs_finished_total{task=\"echo\",outcome=\"succeeded\"}")
               == 900,
           "900 echo jobs succeeded:\n%.4000s", broker);
    CHECK (s_sample (broker, "jr_broker_jobs_accepted_total") == 1000, "1,000 accepted");
    CHECK (s_sample (broker, "jr_broker_jobs_live") == 0, "nothing left queued or running");
    CHECK (s_sample (broker, "jr_broker_workers") >= 0, "the workers gauge is there");
    char *worker = s_scrape (worker_port, "worker");
    CHECK (s_sample (worker, "jr_worker_jobs_succeeded_total") == 900, "%.3000s", worker);
    CHECK (s_sample (worker, "jr_worker_jobs_failed_total") == 100, "%.3000s", worker);
    char *ingester = s_scrape (ingester_port, "ingester");
    CHECK (s_sample (ingester, "jr_ingester_results_stored_total") == 1000, "%.3000s", ingester);

    //  Not a path we serve, a method we do not take.
    CHECK (jr_h_sh ("test \"$(curl -s -o /dev/null -w '%%{http_code}' "
                    "http://127.0.0.1:%d/nothing)\" = 404",
                    broker_port)
               == 0,
           "404 for another path");
    CHECK (jr_h_sh ("test \"$(curl -s -o /dev/null -w '%%{http_code}' -X POST "
                    "http://127.0.0.1:%d/metrics)\" = 405",
                    broker_port)
               == 0,
           "405 for POST");
    free (broker);
    free (worker);
    free (ingester);

    //  A port in use: exit 1 and say so; not HOST:PORT: exit 2 before anything starts.
    char bin[512];
    jr_h_bin (bin, sizeof bin, "jr-ingester");
    rc = jr_h_sh ("cd %s && %s --bind tcp://127.0.0.1:%d --db in-use.db --metrics 127.0.0.1:%d "
                  "2>in-use.err",
                  env.dir, bin, s_free_port (), broker_port);
    CHECK (rc == 1, "a --metrics port in use: exit 1, not %d", rc);
    CHECK (jr_h_sh ("grep -q 'Address already in use' %s/in-use.err", env.dir) == 0,
           "the error says the address is in use");
    jr_h_bin (bin, sizeof bin, "jr-broker");
    rc = jr_h_sh ("cd %s && %s --journal bad-journal --metrics 9101 2>bad.err", env.dir, bin);
    CHECK (rc == 2, "--metrics 9101 (no host): exit 2, not %d", rc);
    CHECK (jr_h_sh ("grep -q 'is not HOST:PORT' %s/bad.err && test ! -e %s/bad-journal", env.dir,
                    env.dir)
               == 0,
           "said why, and started nothing");
}
