/*  sink_bench.c - jr-sink-bench: the ingester's SQLite sink alone, rows per second and CPU per row  */
#include "bench/refjob.h"
#include "common/log.h"
#include "ingester/sink.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  Stores N reference results (ids made up front, so id generation is not
//  measured) in transactions of B rows into a fresh database, the way the
//  ingester's writer does. Under `valgrind --tool=callgrind` the instruction
//  count is steady from run to run, unlike bench/run's jobs/s.

static double
s_secs (clockid_t clock)
{
    struct timespec ts;
    clock_gettime (clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main (int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf (stderr, "usage: jr-sink-bench DB ROWS BATCH [full|normal|off]\n"
                         "  DB must not exist; it is removed afterwards\n");
        return 2;
    }
    const char *path = argv[1];
    long rows = atol (argv[2]), batch = atol (argv[3]);
    const char *sync = argc == 5 ? argv[4] : "off";
    if (rows < 1 || batch < 1 || access (path, F_OK) == 0) {
        fprintf (stderr, "jr-sink-bench: ROWS and BATCH must be positive, DB must not exist\n");
        return 2;
    }
    jr_log_init ("sink-bench", JR_LOG_WARN);
    jr_sink_t *sink = jr_sink_open (&jr_sink_sqlite, path, sync);
    if (!sink)
        return 1;
    jr_job_t *jobs = calloc ((size_t)rows, sizeof *jobs);
    uint8_t *vars = malloc ((size_t)rows * BENCH_VARS_LEN);
    if (!jobs || !vars)
        return 1;
    static const char worker[] = "bench1@host";
    for (long i = 0; i < rows; i++) {
        jr_job_t *job = &jobs[i];
        jr_job_init (job, "echo");
        uint8_t *v = vars + (size_t)i * BENCH_VARS_LEN;
        bench_vars (v, (uint32_t)i);
        job->vars = (jr_bytes_t){ v, BENCH_VARS_LEN };
        job->payload = (jr_bytes_t){ bench_vars_msg (v, BENCH_VARS_LEN), BENCH_MSG_LEN };
        job->worker = (jr_bytes_t){ (const uint8_t *)worker, sizeof worker - 1 };
        job->success = true;
        job->attempt = 1;
        job->state = JR_STATE_SUCCEEDED;
        job->accepted_us = job->dispatched_us = job->started_us = job->completed_us =
            job->ingested_us = job->created_us + 1;
    }
    double t0 = s_secs (CLOCK_MONOTONIC), c0 = s_secs (CLOCK_PROCESS_CPUTIME_ID);
    int rc = 0;
    for (long i = 0; i < rows && rc == 0;) {
        rc = jr_sink_begin (sink);
        for (long k = 0; k < batch && i < rows && rc == 0; k++, i++)
            rc = jr_sink_put (sink, &jobs[i]) == JR_SINK_STORED ? 0 : JR_EIO;
        if (rc == 0)
            rc = jr_sink_commit (sink);
    }
    double t1 = s_secs (CLOCK_MONOTONIC), c1 = s_secs (CLOCK_PROCESS_CPUTIME_ID);
    if (rc)
        fprintf (stderr, "jr-sink-bench: %s: %s\n", jr_strerror (rc), jr_sink_errmsg (sink));
    else
        printf ("sink rows=%ld batch=%ld sync=%s rows_per_s=%.0f cpu_us_per_row=%.2f\n", rows,
                batch, sync, (double)rows / (t1 - t0), (c1 - c0) * 1e6 / (double)rows);
    jr_sink_destroy (&sink);
    free (jobs);
    free (vars);
    char wal[4096], shm[4096];
    snprintf (wal, sizeof wal, "%s-wal", path);
    snprintf (shm, sizeof shm, "%s-shm", path);
    unlink (path), unlink (wal), unlink (shm);
    return rc ? 1 : 0;
}
