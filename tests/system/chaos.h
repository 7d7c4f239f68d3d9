/*  chaos.h - shared parts of the chaos tests: job sets, a load thread, the exactly-once check  */
#ifndef JR_CHAOS_H
#define JR_CHAOS_H
//  Header-only (static functions) so that each test executable, built from
//  its one test_*.c by tests/system/CMakeLists.txt, gets them without a
//  change to the build.
#include "tests/system/harness.h"
#include <czmq.h>
#include <dirent.h>
#include <msgpack.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jr/jr.h>

//  Kinds of job sets.
enum {
    CH_ECHO,   //  echo, msg = "job <i>" padded to arg bytes (arg 0: no padding)
    CH_MIX,    //  every other job sleeps 1..5 ms, the rest echo
    CH_SLEEP,  //  sleep arg ms, timeout 30 s; the first two jobs sleep ms2 (if set)
    CH_FAIL    //  fail with error "boom <i>"
};

typedef struct {
    size_t n;                    //  jobs in the set
    jr_job_t *jobs;              //  ids made here, kept across resubmits
    msgpack_sbuffer *vars;       //  each job's vars map
    uint8_t (*ids)[JR_ID_SIZE];  //  copies of the ids
    int *codes;                  //  last answer per job
    uint8_t *accepted;           //  1 once a submit answered code 0
} ch_set_t;

static inline void
ch_vars_pack (msgpack_sbuffer *buf, const char *key, const char *value, const char *key2,
              const char *value2)
{
    msgpack_packer pk;
    msgpack_sbuffer_init (buf);
    msgpack_packer_init (&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, key2 ? 2 : 1);
    msgpack_pack_str (&pk, strlen (key));
    msgpack_pack_str_body (&pk, key, strlen (key));
    msgpack_pack_str (&pk, strlen (value));
    msgpack_pack_str_body (&pk, value, strlen (value));
    if (key2) {
        msgpack_pack_str (&pk, strlen (key2));
        msgpack_pack_str_body (&pk, key2, strlen (key2));
        msgpack_pack_str (&pk, strlen (value2));
        msgpack_pack_str_body (&pk, value2, strlen (value2));
    }
}

//  A set of n jobs of one kind; arg and ms2 as the kinds above say.
static inline void
ch_set_init (ch_set_t *set, size_t n, int kind, int arg, int ms2)
{
    memset (set, 0, sizeof *set);
    set->n = n;
    set->jobs = calloc (n, sizeof *set->jobs);
    set->vars = calloc (n, sizeof *set->vars);
    set->ids = calloc (n, JR_ID_SIZE);
    set->codes = calloc (n, sizeof *set->codes);
    set->accepted = calloc (n, 1);
    if (!set->jobs || !set->vars || !set->ids || !set->codes || !set->accepted)
        abort ();
    char text[4096];
    for (size_t i = 0; i < n; i++) {
        jr_job_t *job = &set->jobs[i];
        if (kind == CH_ECHO || (kind == CH_MIX && i % 2 == 0)) {
            size_t len = (size_t)snprintf (text, sizeof text, "job %zu", i);
            for (; len < (size_t)arg && len < sizeof text - 1; len++)
                text[len] = (char)('a' + len % 26);
            text[len] = 0;
            ch_vars_pack (&set->vars[i], "msg", text, NULL, NULL);
            jr_job_init (job, "echo");
        }
        else if (kind == CH_MIX) {
            snprintf (text, sizeof text, "%zu", 1 + i % 5);
            ch_vars_pack (&set->vars[i], "ms", text, NULL, NULL);
            jr_job_init (job, "sleep");
        }
        else if (kind == CH_SLEEP) {
            snprintf (text, sizeof text, "%d", ms2 && i < 2 ? ms2 : arg);
            ch_vars_pack (&set->vars[i], "ms", text, NULL, NULL);
            jr_job_init (job, "sleep");
            job->timeout_ms = 30000;
        }
        else {
            snprintf (text, sizeof text, "boom %zu", i);
            ch_vars_pack (&set->vars[i], "error", text, NULL, NULL);
            jr_job_init (job, "fail");
        }
        job->vars = (jr_bytes_t){ (const uint8_t *)set->vars[i].data, set->vars[i].size };
        memcpy (set->ids[i], job->id, JR_ID_SIZE);
    }
}

static inline void
ch_set_free (ch_set_t *set)
{
    for (size_t i = 0; i < set->n; i++)
        msgpack_sbuffer_destroy (&set->vars[i]);
    free (set->jobs);
    free (set->vars);
    free (set->ids);
    free (set->codes);
    free (set->accepted);
    memset (set, 0, sizeof *set);
}

static inline size_t
ch_set_accepted (const ch_set_t *set)
{
    size_t n = 0;
    for (size_t i = 0; i < set->n; i++)
        n += set->accepted[i];
    return n;
}

//  -------------------------------------------------------------------------
//  Load: submit in chunks (a chunk that did not come back all accepted goes
//  again, whole, with the same ids), then wait for the accepted ones. Runs
//  in a thread so that the test's main thread can break things meanwhile;
//  processes are started by the main thread only, since PDEATHSIG follows
//  the thread that forked.

typedef struct {
    //  in
    const char *broker, *ingester;  //  endpoints
    ch_set_t *set;
    size_t chunk;     //  jobs per submit_many
    int pace_ms;      //  pause between chunks
    int answer_ms;    //  jr_client_set_timeout, 0 = default
    int give_up_ms;   //  stop resubmitting a chunk after this
    int wait_ms;      //  jr_client_wait_many timeout
    bool wait_early;  //  wait for all ids from the start, in a second
                      //  thread, while the chunks are still being sent
    //  out
    size_t resubmits;               //  chunks sent again
    size_t seen;                    //  results seen by wait_many
    int submit_rc, wait_rc;         //  last submit's and the wait's code
    int64_t submitted_us, done_us;  //  zclock_usecs, when all were accepted / seen
    int64_t done_wall_us;           //  wall clock, when wait_many returned
    atomic_bool done;
    pthread_t thread;
} ch_load_t;

static inline bool
ch_seen (const jr_job_t *job, void *arg)
{
    (void)job;
    ((ch_load_t *)arg)->seen++;
    return true;
}

//  Wait for ids: all of the set (wait_early), or those accepted.
static inline void
ch_load_wait (ch_load_t *load, jr_client_t *client, bool all)
{
    ch_set_t *set = load->set;
    size_t n = 0;
    uint8_t (*ids)[JR_ID_SIZE] = calloc (set->n + 1, JR_ID_SIZE);
    for (size_t i = 0; i < set->n; i++)
        if (all || set->accepted[i])
            memcpy (ids[n++], set->ids[i], JR_ID_SIZE);
    load->wait_rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, n,
                                         load->wait_ms, ch_seen, load);
    load->done_us = zclock_usecs ();
    load->done_wall_us = zclock_time () * 1000;
    free (ids);
}

static inline void *
ch_load_early_waiter (void *arg)
{
    ch_load_t *load = arg;
    jr_client_t *client = jr_client_new (load->broker, load->ingester);
    if (client) {
        ch_load_wait (load, client, true);
        jr_client_destroy (&client);
    }
    else
        load->wait_rc = JR_EINVALID;
    return NULL;
}

static inline void *
ch_load_run (void *arg)
{
    ch_load_t *load = arg;
    ch_set_t *set = load->set;
    jr_client_t *client = jr_client_new (load->broker, load->ingester);
    if (!client) {
        load->submit_rc = JR_EINVALID;
        atomic_store (&load->done, true);
        return NULL;
    }
    pthread_t waiter;
    if (load->wait_early && pthread_create (&waiter, NULL, ch_load_early_waiter, load))
        abort ();
    if (load->answer_ms)
        jr_client_set_timeout (client, load->answer_ms);
    for (size_t off = 0; off < set->n; off += load->chunk) {
        size_t k = set->n - off < load->chunk ? set->n - off : load->chunk;
        int64_t give_up = zclock_mono () + load->give_up_ms;
        for (;;) {
            load->submit_rc = jr_client_submit_many (client, set->jobs + off, k, set->codes + off);
            bool all = true;
            for (size_t i = off; i < off + k; i++) {
                if (set->codes[i] == 0)
                    set->accepted[i] = 1;
                all = all && set->codes[i] == 0;
            }
            if (all || zclock_mono () > give_up)
                break;
            load->resubmits++;
            jr_h_sleep_ms (100);
        }
        if (load->pace_ms)
            jr_h_sleep_ms (load->pace_ms);
    }
    load->submitted_us = zclock_usecs ();
    if (load->wait_early)
        pthread_join (waiter, NULL);
    else
        ch_load_wait (load, client, false);
    jr_client_destroy (&client);
    atomic_store (&load->done, true);
    return NULL;
}

static inline void
ch_load_start (ch_load_t *load)
{
    atomic_store (&load->done, false);
    if (!load->chunk)
        load->chunk = 1000;
    if (!load->give_up_ms)
        load->give_up_ms = 60000;
    if (!load->wait_ms)
        load->wait_ms = 120000;
    if (pthread_create (&load->thread, NULL, ch_load_run, load))
        abort ();
}

//  Sleep up to ms, returning early (true) once the load is done.
static inline bool
ch_load_sleep (ch_load_t *load, int ms)
{
    for (int slept = 0; slept < ms; slept += 20) {
        if (atomic_load (&load->done))
            return true;
        jr_h_sleep_ms (20);
    }
    return atomic_load (&load->done);
}

static inline void
ch_load_join (ch_load_t *load)
{
    pthread_join (load->thread, NULL);
}

//  -------------------------------------------------------------------------
//  The check: one row per accepted id, none missing, none twice.

typedef struct {
    size_t accepted;     //  ids the broker accepted
    int64_t rows;        //  count(*) of results
    int64_t distinct;    //  count(DISTINCT id)
    size_t missing;      //  accepted ids without a row
    size_t twice;        //  accepted ids with more than one row
    int64_t unexpected;  //  rows of ids never accepted
    int64_t reruns;      //  rows whose stored attempt is above 1
    int64_t runs;        //  attempts recorded by the ingester (every run)
} ch_count_t;

static inline int64_t
ch_query_int (sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt;
    int64_t v = -1;
    if (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step (stmt) == SQLITE_ROW)
        v = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    return v;
}

//  Count what the ingester stored for the accepted ids of a set; false if
//  the database cannot be read.
static inline bool
ch_count (const char *db_path, const ch_set_t *set, ch_count_t *c)
{
    memset (c, 0, sizeof *c);
    sqlite3 *db;
    if (sqlite3_open_v2 (db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return false;
    sqlite3_busy_timeout (db, 10000);
    c->rows = ch_query_int (db, "SELECT count(*) FROM results");
    c->distinct = ch_query_int (db, "SELECT count(DISTINCT id) FROM results");
    c->reruns = ch_query_int (db, "SELECT count(*) FROM results WHERE attempt > 1");
    c->runs = ch_query_int (db, "SELECT count(*) FROM attempts");
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (db, "SELECT count(*) FROM results WHERE id = ?1", -1, &stmt, NULL)
        != SQLITE_OK) {
        sqlite3_close (db);
        return false;
    }
    size_t found = 0;
    for (size_t i = 0; i < set->n; i++) {
        if (!set->accepted[i])
            continue;
        c->accepted++;
        char id[37];
        jr_id_format (set->ids[i], id);
        sqlite3_bind_text (stmt, 1, id, 36, SQLITE_TRANSIENT);
        int64_t k = sqlite3_step (stmt) == SQLITE_ROW ? sqlite3_column_int64 (stmt, 0) : 0;
        sqlite3_reset (stmt);
        if (k == 0)
            c->missing++;
        else
            found++;
        if (k > 1)
            c->twice++;
    }
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    c->unexpected = c->distinct - (int64_t)found;
    return c->rows >= 0 && c->distinct >= 0;
}

//  The line every chaos test prints.
static inline void
ch_print (const char *what, const ch_count_t *c, double seconds)
{
    printf (
        "chaos: %s: accepted %zu stored %lld duplicates %lld missing %zu"
        " (distinct %lld, unexpected %lld, stored attempt>1 %lld, runs recorded %lld) in %.1f s\n",
        what, c->accepted, (long long)c->rows,
        (long long)(c->rows - c->distinct) + (long long)c->twice, c->missing,
        (long long)c->distinct, (long long)c->unexpected, (long long)c->reruns, (long long)c->runs,
        seconds);
    fflush (stdout);
}

//  True when every accepted id has exactly one row and nothing else is stored.
static inline bool
ch_exactly_once (const ch_count_t *c)
{
    return c->missing == 0 && c->twice == 0 && c->rows == c->distinct
           && c->rows == (int64_t)c->accepted && c->unexpected == 0;
}

//  Seconds from the last result stored (max ingested_us) to the end of the
//  load's wait_many: how long the client took to notice the last result.
static inline double
ch_wait_lag (const char *db_path, const ch_load_t *load)
{
    sqlite3 *db;
    if (sqlite3_open_v2 (db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout (db, 5000);
    int64_t last = ch_query_int (db, "SELECT max(ingested_us) FROM results");
    sqlite3_close (db);
    return (double)(load->done_wall_us - last) / 1e6;
}

//  -------------------------------------------------------------------------
//  Files

//  Lines of <dir>/<file> that contain needle.
static inline int
ch_log_count (const jr_h_env_t *env, const char *file, const char *needle)
{
    char path[600];
    snprintf (path, sizeof path, "%s/%s", env->dir, file);
    FILE *f = fopen (path, "r");
    if (!f)
        return 0;
    char line[8192];
    int n = 0;
    while (fgets (line, sizeof line, f))
        n += strstr (line, needle) != NULL;
    fclose (f);
    return n;
}

//  Print the lines of a log that contain needle (at most max).
static inline void
ch_log_grep (const jr_h_env_t *env, const char *file, const char *needle, int max)
{
    char path[600];
    snprintf (path, sizeof path, "%s/%s", env->dir, file);
    FILE *f = fopen (path, "r");
    if (!f)
        return;
    char line[8192];
    while (max > 0 && fgets (line, sizeof line, f))
        if (strstr (line, needle)) {
            printf ("  %s: %s", file, line);
            max--;
        }
    fclose (f);
    fflush (stdout);
}

//  Sum of the sizes of the regular files in a directory.
static inline uint64_t
ch_dir_size (const char *path, int *files)
{
    uint64_t total = 0;
    *files = 0;
    DIR *dir = opendir (path);
    struct dirent *entry;
    while (dir && (entry = readdir (dir))) {
        char full[1024];
        struct stat st;
        snprintf (full, sizeof full, "%s/%s", path, entry->d_name);
        if (stat (full, &st) == 0 && S_ISREG (st.st_mode)) {
            total += (uint64_t)st.st_size;
            (*files)++;
        }
    }
    if (dir)
        closedir (dir);
    return total;
}

static inline double
ch_since (int64_t start_us)
{
    return (double)(zclock_usecs () - start_us) / 1e6;
}
#endif
