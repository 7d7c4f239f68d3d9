/*  demo_main.c - jr-demo: submit a batch of mixed jobs, wait for every result, summarise  */
#include "common/opts.h"
#include <jr/jr.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    size_t seen, succeeded, failed;
    int64_t *queue_wait, *run_time, *ingest_lag, *end_to_end;  //  microseconds
} s_summary_t;

static bool
s_collect (const jr_job_t *job, void *arg)
{
    s_summary_t *s = arg;
    s->queue_wait[s->seen] = job->dispatched_us - job->accepted_us;
    s->run_time[s->seen] = job->completed_us - job->started_us;
    s->ingest_lag[s->seen] = job->ingested_us - job->completed_us;
    s->end_to_end[s->seen] = job->ingested_us - job->created_us;
    s->seen++;
    if (job->success)
        s->succeeded++;
    else
        s->failed++;
    return true;
}

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void
s_row (const char *name, int64_t *v, size_t n)
{
    qsort (v, n, sizeof *v, s_cmp);
    printf ("  %-12s p50 %9.3f ms   p99 %9.3f ms\n", name, v[n / 2] / 1000.0,
            v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1000.0);
}

static void
s_pack_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

int
main (int argc, char **argv)
{
    jr_opt_t opts[] = {
        { "broker", "JR_BROKER", JR_DEFAULT_BROKER, "broker endpoint for clients" },
        { "ingester", "JR_INGESTER", JR_DEFAULT_INGESTER, "ingester endpoint" },
        { "jobs", "JR_DEMO_JOBS", "1000", "how many jobs" },
        { "wait", "JR_DEMO_WAIT_MS", "120000", "how long to wait for all results, ms" },
    };
    jr_opts_parse (argc, argv, opts, 4, "jr-demo [options]");
    size_t n = (size_t)jr_opts_int (&opts[2], 1, 10000000);
    int wait_ms = (int)jr_opts_int (&opts[3], 1, 86400000);
    jr_client_t *client = jr_client_new (opts[0].value, opts[1].value);
    if (!client) {
        fprintf (stderr, "jr-demo: bad endpoint\n");
        return 2;
    }
    //  A mix: 60% echo, 30% sha256 (CPU work), 10% failing on purpose.
    jr_job_t *jobs = calloc (n, sizeof *jobs);
    msgpack_sbuffer *vars = calloc (n, sizeof *vars);
    uint8_t (*ids)[JR_ID_SIZE] = calloc (n, JR_ID_SIZE);
    for (size_t i = 0; i < n; i++) {
        msgpack_packer pk;
        msgpack_sbuffer_init (&vars[i]);
        msgpack_packer_init (&pk, &vars[i], msgpack_sbuffer_write);
        char text[64];
        snprintf (text, sizeof text, "job %zu", i);
        if (i % 10 < 6) {
            jr_job_init (&jobs[i], "echo");
            msgpack_pack_map (&pk, 1);
            s_pack_str (&pk, "msg");
            s_pack_str (&pk, text);
        }
        else if (i % 10 < 9) {
            jr_job_init (&jobs[i], "sha256");
            msgpack_pack_map (&pk, 2);
            s_pack_str (&pk, "data");
            s_pack_str (&pk, text);
            s_pack_str (&pk, "rounds");
            msgpack_pack_int (&pk, 1000);
        }
        else {
            jr_job_init (&jobs[i], "fail");
            msgpack_pack_map (&pk, 1);
            s_pack_str (&pk, "error");
            s_pack_str (&pk, "failing on purpose");
            //  One attempt: with the default three, the retries' backoff
            //  (seconds) would be most of what the summary shows.
            jobs[i].max_attempts = 1;
        }
        jobs[i].vars = (jr_bytes_t){ (const uint8_t *)vars[i].data, vars[i].size };
        memcpy (ids[i], jobs[i].id, JR_ID_SIZE);
    }
    struct timespec t0, t1;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    int rc = jr_client_submit_many (client, jobs, n, NULL);
    if (rc) {
        fprintf (stderr, "jr-demo: submit failed: %s\n", jr_strerror (rc));
        return 1;
    }
    s_summary_t s = { 0 };
    s.queue_wait = calloc (n, sizeof (int64_t));
    s.run_time = calloc (n, sizeof (int64_t));
    s.ingest_lag = calloc (n, sizeof (int64_t));
    s.end_to_end = calloc (n, sizeof (int64_t));
    rc =
        jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, n, wait_ms, s_collect, &s);
    clock_gettime (CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf ("\njobs: %zu submitted, %zu stored in %.2f s (%.0f jobs/s)\n", n, s.seen, secs,
            (double)s.seen / secs);
    printf ("outcome: %zu succeeded, %zu failed, %zu missing\n", s.succeeded, s.failed, n - s.seen);
    if (s.seen) {
        s_row ("queue wait", s.queue_wait, s.seen);
        s_row ("run time", s.run_time, s.seen);
        s_row ("ingest lag", s.ingest_lag, s.seen);
        s_row ("end to end", s.end_to_end, s.seen);
    }
    for (size_t i = 0; i < n; i++)
        msgpack_sbuffer_destroy (&vars[i]);
    free (vars), free (jobs), free (ids);
    free (s.queue_wait), free (s.run_time), free (s.ingest_lag), free (s.end_to_end);
    jr_client_destroy (&client);
    if (rc) {
        fprintf (stderr, "jr-demo: %s waiting for results\n", jr_strerror (rc));
        return 1;
    }
    return 0;
}
