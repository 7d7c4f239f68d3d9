/*  jr_bench.c - jr-bench: the reference workload through libjr (throughput, latency, memory, replay)  */
#include "bench/percentile.h"
#include "bench/refjob.h"
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <jr/jr.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *s_usage =
    "usage: jr-bench COMMAND [--broker EP] [--ingester EP] [--jobs N] [--db PATH] [--id UUID]\n"
    "                [--timeout-ms MS]\n"
    "commands:\n"
    "  free-port     print a free TCP port on 127.0.0.1\n"
    "  throughput    submit_many N reference jobs, wait_many their results\n"
    "                (--db: watch the ingester's database, read-only, for the\n"
    "                results' rows and check them there, instead of fetching\n"
    "                them through the ingester with wait_many; --timeout-ms bounds it)\n"
    "  latency       N jobs one at a time: submit, then wait for the stored result\n"
    "  submit        submit_many N reference jobs and wait for nothing (memory run)\n"
    "  status-wait   ask the broker for --id until it says QUEUED\n"
    "Every command prints one line of key=value pairs.\n";

typedef struct {
    const char *command;
    const char *broker;
    const char *ingester;
    size_t jobs;
    const char *db;
    const char *id;
    int timeout_ms;
} s_args_t;

static int64_t
s_wall_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
s_mono_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  CPU seconds this process used so far (all threads).
static double
s_cpu_self (void)
{
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
           + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

//  -------------------------------------------------------------------------
//  The reference jobs: one allocation of vars for all of them.

typedef struct {
    jr_job_t *jobs;
    uint8_t *vars;
    uint8_t (*ids)[JR_ID_SIZE];
    size_t n;
} s_batch_t;

static void
s_batch_make (s_batch_t *b, size_t n, uint32_t first)
{
    b->n = n;
    b->jobs = calloc (n ? n : 1, sizeof *b->jobs);
    b->vars = malloc ((n ? n : 1) * BENCH_VARS_LEN);
    b->ids = malloc ((n ? n : 1) * JR_ID_SIZE);
    assert (b->jobs && b->vars && b->ids);
    for (size_t i = 0; i < n; i++) {
        uint8_t *vars = b->vars + i * BENCH_VARS_LEN;
        bench_vars (vars, first + (uint32_t)i);
        jr_job_init (&b->jobs[i], "echo");
        b->jobs[i].vars = (jr_bytes_t){ vars, BENCH_VARS_LEN };
        memcpy (b->ids[i], b->jobs[i].id, JR_ID_SIZE);
    }
}

static void
s_batch_free (s_batch_t *b)
{
    free (b->jobs);
    free (b->vars);
    free (b->ids);
}

static jr_client_t *
s_client (const s_args_t *a)
{
    jr_client_t *client = jr_client_new (a->broker, a->ingester);
    if (!client) {
        fprintf (stderr, "jr-bench: bad endpoint\n");
        exit (2);
    }
    return client;
}

//  -------------------------------------------------------------------------
//  throughput

typedef struct {
    size_t seen, failed, bad_payload;
    int64_t last_ingested_us;  //  the latest stored stamp seen
    int64_t first_ingested_us;
} s_tally_t;

static bool
s_tally (const jr_job_t *job, void *arg)
{
    s_tally_t *t = arg;
    t->seen++;
    if (!job->success)
        t->failed++;
    if (job->payload.len != BENCH_MSG_LEN)
        t->bad_payload++;
    if (job->ingested_us > t->last_ingested_us)
        t->last_ingested_us = job->ingested_us;
    if (!t->first_ingested_us || job->ingested_us < t->first_ingested_us)
        t->first_ingested_us = job->ingested_us;
    return true;
}

//  Rows in the ingester's table: rowids only grow, and nothing is deleted
//  from a benchmark's fresh database, so the largest is the count. -1 on error.
static int64_t
s_rows (sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2 (db, "SELECT max(rowid) FROM results", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int64_t rows = sqlite3_step (st) == SQLITE_ROW ? sqlite3_column_int64 (st, 0) : -1;
    sqlite3_finalize (st);
    return rows;
}

//  The same tally from the rows stored after rowid rows0, read from the
//  database instead of fetched through the ingester.
static int
s_tally_db (sqlite3 *db, int64_t rows0, s_tally_t *t)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2 (db,
                            "SELECT count(*), count(*) - total(success),"
                            " count(*) - total(length(payload) = ?2), max(ingested_us),"
                            " min(ingested_us) FROM results WHERE rowid > ?1",
                            -1, &st, NULL)
        != SQLITE_OK)
        return JR_EIO;
    sqlite3_bind_int64 (st, 1, rows0);
    sqlite3_bind_int (st, 2, BENCH_MSG_LEN);
    int rc = JR_EIO;
    if (sqlite3_step (st) == SQLITE_ROW) {
        t->seen = (size_t)sqlite3_column_int64 (st, 0);
        t->failed = (size_t)sqlite3_column_int64 (st, 1);
        t->bad_payload = (size_t)sqlite3_column_int64 (st, 2);
        t->last_ingested_us = sqlite3_column_int64 (st, 3);
        t->first_ingested_us = sqlite3_column_int64 (st, 4);
        rc = 0;
    }
    sqlite3_finalize (st);
    return rc;
}

static int
s_throughput (const s_args_t *a)
{
    s_batch_t b;
    s_batch_make (&b, a->jobs, 0);
    jr_client_t *client = s_client (a);
    sqlite3 *db = NULL;
    int64_t rows0 = 0;
    if (a->db
        && (sqlite3_open_v2 (a->db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK
            || (rows0 = s_rows (db)) < 0)) {
        fprintf (stderr, "jr-bench: cannot read %s: %s\n", a->db, sqlite3_errmsg (db));
        return 1;
    }
    double cpu0 = s_cpu_self ();
    int64_t t0 = s_wall_us ();
    int64_t m0 = s_mono_us ();
    for (size_t i = 0; i < b.n; i++)
        b.jobs[i].created_us = t0;
    int rc = jr_client_submit_many (client, b.jobs, b.n, NULL);
    int64_t m_submitted = s_mono_us ();
    if (rc) {
        fprintf (stderr, "jr-bench: submit failed: %s\n", jr_strerror (rc));
        return 1;
    }
    int64_t rows = rows0, until = m0 + (int64_t)a->timeout_ms * 1000;
    while (db && rows >= 0 && rows < rows0 + (int64_t)b.n && s_mono_us () < until) {
        usleep (2000);
        rows = s_rows (db);
    }
    double cpu1 = s_cpu_self ();
    s_tally_t tally = { 0 };
    int wait_rc = db ? s_tally_db (db, rows0, &tally)
                     : jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])b.ids, b.n,
                                            600000, s_tally, &tally);
    sqlite3_close (db);
    if (!db)
        cpu1 = s_cpu_self ();  //  the wait was the run's end
    int64_t m1 = s_mono_us ();
    if (!a->db)
        cpu1 = s_cpu_self ();  //  the wait was the run's end
    s_tally_t *t = &tally;
    double secs = (double)(t->last_ingested_us - t0) / 1e6;
    printf ("throughput jobs=%zu stored=%zu failed=%zu bad_payload=%zu secs=%.3f rate=%.0f"
            " submit_secs=%.3f wait_returned_secs=%.3f client_cpu=%.3f\n",
            b.n, t->seen, t->failed, t->bad_payload, secs, secs > 0 ? (double)t->seen / secs : 0,
            (double)(m_submitted - m0) / 1e6, (double)(m1 - m0) / 1e6, cpu1 - cpu0);
    jr_client_destroy (&client);
    s_batch_free (&b);
    if (wait_rc || t->seen != a->jobs) {
        fprintf (stderr, "jr-bench: %s waiting for results (%zu of %zu)\n", jr_strerror (wait_rc),
                 t->seen, a->jobs);
        return 1;
    }
    return 0;
}

//  -------------------------------------------------------------------------
//  latency

static int
s_latency (const s_args_t *a)
{
    s_batch_t b;
    s_batch_make (&b, a->jobs, 0);
    jr_client_t *client = s_client (a);
    int64_t *stored = calloc (b.n ? b.n : 1, sizeof *stored);  //  submit -> stored
    int64_t *seen = calloc (b.n ? b.n : 1, sizeof *seen);      //  submit -> wait returned
    assert (stored && seen);
    for (size_t i = 0; i < b.n; i++) {
        jr_job_t *job = &b.jobs[i];
        job->created_us = s_wall_us ();
        int64_t m0 = s_mono_us ();
        int rc = jr_client_submit (client, job);
        jr_job_t *result = NULL;
        if (rc == 0)
            rc = jr_client_wait (client, job->id, 10000, &result);
        if (rc) {
            fprintf (stderr, "jr-bench: job %zu: %s\n", i, jr_strerror (rc));
            return 1;
        }
        seen[i] = s_mono_us () - m0;
        stored[i] = result->ingested_us - job->created_us;
        jr_job_destroy (&result);
    }
    bench_pct_t st = bench_percentiles (stored, b.n), se = bench_percentiles (seen, b.n);
    printf ("latency jobs=%zu p50_us=%lld p99_us=%lld client_p50_us=%lld client_p99_us=%lld\n", b.n,
            (long long)st.p50, (long long)st.p99, (long long)se.p50, (long long)se.p99);
    free (stored);
    free (seen);
    jr_client_destroy (&client);
    s_batch_free (&b);
    return 0;
}

//  -------------------------------------------------------------------------
//  submit (memory) and status-wait (journal replay)

static int
s_submit (const s_args_t *a)
{
    s_batch_t b;
    s_batch_make (&b, a->jobs, 0);
    jr_client_t *client = s_client (a);
    int64_t m0 = s_mono_us ();
    int rc = jr_client_submit_many (client, b.jobs, b.n, NULL);
    int64_t m1 = s_mono_us ();
    char last[37] = "";
    if (b.n)
        jr_id_format (b.ids[b.n - 1], last);
    printf ("submit jobs=%zu rc=%s secs=%.3f last_id=%s\n", b.n, jr_errname (rc),
            (double)(m1 - m0) / 1e6, last);
    jr_client_destroy (&client);
    s_batch_free (&b);
    return rc ? 1 : 0;
}

static int
s_status_wait (const s_args_t *a)
{
    uint8_t id[JR_ID_SIZE];
    if (!a->id || jr_id_parse (a->id, id)) {
        fprintf (stderr, "jr-bench: status-wait needs --id UUID\n");
        return 2;
    }
    jr_client_t *client = s_client (a);
    jr_client_set_timeout (client, 200);
    int64_t m0 = s_mono_us ();
    int64_t until = m0 + (int64_t)a->timeout_ms * 1000;
    int state = JR_STATE_UNKNOWN;
    int rc = 0;
    while (s_mono_us () < until) {
        rc = jr_client_status (client, id, &state, NULL);
        if (rc == 0 && state == JR_STATE_QUEUED)
            break;
        usleep (10000);
    }
    printf ("status-wait state=%s rc=%s secs=%.3f\n", jr_state_name (state), jr_errname (rc),
            (double)(s_mono_us () - m0) / 1e6);
    jr_client_destroy (&client);
    return state == JR_STATE_QUEUED ? 0 : 1;
}

static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    if (fd == -1 || bind (fd, (struct sockaddr *)&addr, sizeof addr) == -1
        || getsockname (fd, (struct sockaddr *)&addr, &len) == -1) {
        fprintf (stderr, "jr-bench: no free port: %s\n", strerror (errno));
        return 1;
    }
    close (fd);
    printf ("%d\n", ntohs (addr.sin_port));
    return 0;
}

int
main (int argc, char **argv)
{
    s_args_t a = { .jobs = 1000, .timeout_ms = 600000 };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (arg, "--help") == 0) {
            fputs (s_usage, stdout);
            return 0;
        }
        else if (strncmp (arg, "--", 2) == 0 && !val) {
            fprintf (stderr, "jr-bench: %s needs a value\n%s", arg, s_usage);
            return 2;
        }
        else if (strcmp (arg, "--broker") == 0)
            a.broker = val, i++;
        else if (strcmp (arg, "--ingester") == 0)
            a.ingester = val, i++;
        else if (strcmp (arg, "--jobs") == 0)
            a.jobs = strtoul (val, NULL, 10), i++;
        else if (strcmp (arg, "--id") == 0)
            a.id = val, i++;
        else if (strcmp (arg, "--db") == 0)
            a.db = val, i++;
        else if (strcmp (arg, "--timeout-ms") == 0)
            a.timeout_ms = atoi (val), i++;
        else if (!a.command && arg[0] != '-')
            a.command = arg;
        else {
            fprintf (stderr, "jr-bench: unexpected argument %s\n%s", arg, s_usage);
            return 2;
        }
    }
    if (!a.command) {
        fputs (s_usage, stderr);
        return 2;
    }
    if (strcmp (a.command, "free-port") == 0)
        return s_free_port ();
    if (a.jobs == 0 || a.jobs > 100000000) {
        fprintf (stderr, "jr-bench: --jobs must be 1..100000000\n");
        return 2;
    }
    if (strcmp (a.command, "throughput") == 0)
        return s_throughput (&a);
    if (strcmp (a.command, "latency") == 0)
        return s_latency (&a);
    if (strcmp (a.command, "submit") == 0)
        return s_submit (&a);
    if (strcmp (a.command, "status-wait") == 0)
        return s_status_wait (&a);
    fprintf (stderr, "jr-bench: unknown command %s\n%s", a.command, s_usage);
    return 2;
}
