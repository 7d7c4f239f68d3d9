/*  test_ingester.c - the ingester in-process: RESULT/ACK, fencing, states, attempt history, FETCH, bad input  */
#include "common/clock.h"
#include "common/log.h"
#include "ingester/ingester.h"
#include "proto/proto.h"
#include "tests/fakes/fake_peer.h"
#include <criterion/criterion.h>
#include <czmq.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>

#define S_TIMEOUT_MS 5000  //  only a bound that turns a hang into a failure

static char s_dir[64];
static char s_db[128];
static jr_ingester_t *s_ingester;
static pthread_t s_thread;
static zsock_t *s_worker;  //  DEALER playing a worker
static zsock_t *s_client;  //  DEALER playing a client
static jr_msg_t *s_out;    //  what the fakes send

//  Vars of every test job: the msgpack map {"a": 1}.
static const uint8_t s_vars[] = { 0x81, 0xa1, 'a', 0x01 };

static void *
s_run (void *arg)
{
    jr_ingester_run (arg);
    return NULL;
}

//  Start an ingester on a fresh database; pre_sql (if not NULL) runs on it
//  first, to stand for a database an older version left.
static int s_fetch_bytes;  //  0 = the default answer budget

static void
s_start_on (int batch_max, int max_waiters, const char *pre_sql)
{
    jr_log_init ("ingester", JR_LOG_WARN);
    snprintf (s_dir, sizeof s_dir, "/tmp/jr-test-ingester-XXXXXX");
    cr_assert (mkdtemp (s_dir));
    snprintf (s_db, sizeof s_db, "%s/jr.db", s_dir);
    if (pre_sql) {
        sqlite3 *db;
        cr_assert_eq (sqlite3_open (s_db, &db), SQLITE_OK);
        char *err = NULL;
        cr_assert_eq (sqlite3_exec (db, pre_sql, NULL, NULL, &err), SQLITE_OK, "%s",
                      err ? err : "");
        sqlite3_close (db);
    }
    jr_ingester_config_t cfg = { .bind = "tcp://127.0.0.1:*",
                                 .db = s_db,
                                 .sync = "normal",
                                 .batch_max = batch_max,
                                 .max_waiters = max_waiters,
                                 .fetch_bytes = s_fetch_bytes };
    s_ingester = jr_ingester_new (&cfg);
    cr_assert (s_ingester);
    cr_assert (pthread_create (&s_thread, NULL, s_run, s_ingester) == 0);
    s_out = jr_msg_new ();
    s_worker = jr_fake_dealer (jr_ingester_endpoint (s_ingester));
    s_client = jr_fake_dealer (jr_ingester_endpoint (s_ingester));
}

static void
s_start (int batch_max, int max_waiters)
{
    s_start_on (batch_max, max_waiters, NULL);
}

static void
setup (void)
{
    s_start (0, 0);
}

static void
teardown (void)
{
    zsock_destroy (&s_worker);
    zsock_destroy (&s_client);
    jr_msg_destroy (&s_out);
    if (s_ingester) {
        jr_ingester_stop (s_ingester);
        pthread_join (s_thread, NULL);
        jr_ingester_destroy (&s_ingester);
    }
    const char *suffixes[] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        char path[160];
        snprintf (path, sizeof path, "%s%s", s_db, suffixes[i]);
        unlink (path);
    }
    rmdir (s_dir);
}

//  -------------------------------------------------------------------------
//  Helpers

static jr_bytes_t
s_text (const char *text)
{
    return (jr_bytes_t){ (const uint8_t *)text, strlen (text) };
}

static void
s_job (jr_job_t *job, uint32_t attempt, const char *payload)
{
    jr_job_init (job, "echo");
    job->attempt = attempt;
    job->success = true;
    job->vars = (jr_bytes_t){ s_vars, sizeof s_vars };
    job->payload = s_text (payload);
    job->worker = s_text ("w1@host");
    job->priority = -3;
    job->timeout_ms = 1500;
    job->max_attempts = 4;
    job->accepted_us = job->created_us + 1;
    job->dispatched_us = job->created_us + 2;
    job->started_us = job->created_us + 3;
    job->completed_us = job->created_us + 4;
}

//  Send results and check the one ACK: a mark per job with the given codes.
static void
s_store (const jr_job_t *jobs, size_t n, const int32_t *codes)
{
    jr_fake_result (s_worker, s_out, jobs, n);
    jr_msg_t *ack = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (s_worker, ack, JR_MSG_ACK, S_TIMEOUT_MS);
    cr_assert_eq (ack->nmarks, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq (memcmp (ack->marks[i].id, jobs[i].id, JR_ID_SIZE), 0);
        cr_assert_eq (ack->marks[i].attempt, jobs[i].attempt);
        cr_assert_eq (ack->marks[i].code, codes ? codes[i] : 0, "mark %zu code %s", i,
                      jr_errname (ack->marks[i].code));
    }
    zframe_destroy (&frame);
    jr_msg_destroy (&ack);
}

static sqlite3 *
s_db_open (void)
{
    sqlite3 *db;
    cr_assert_eq (sqlite3_open (s_db, &db), SQLITE_OK);
    sqlite3_busy_timeout (db, S_TIMEOUT_MS);
    return db;
}

//  Rows stored for an id (all rows for NULL).
static int
s_db_count (const jr_job_t *job)
{
    sqlite3 *db = s_db_open ();
    sqlite3_stmt *st;
    char id[37] = "";
    if (job)
        jr_id_format (job->id, id);
    cr_assert_eq (sqlite3_prepare_v2 (db,
                                      job ? "SELECT count(*) FROM results WHERE id = ?1"
                                          : "SELECT count(*) FROM results",
                                      -1, &st, NULL),
                  SQLITE_OK);
    if (job)
        sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
    cr_assert_eq (sqlite3_step (st), SQLITE_ROW);
    int count = sqlite3_column_int (st, 0);
    sqlite3_finalize (st);
    sqlite3_close (db);
    return count;
}

//  The stored attempt and payload (as text) of an id.
static void
s_db_row (const jr_job_t *job, int64_t *attempt, char *payload, size_t size)
{
    sqlite3 *db = s_db_open ();
    sqlite3_stmt *st;
    char id[37];
    jr_id_format (job->id, id);
    cr_assert_eq (sqlite3_prepare_v2 (db, "SELECT attempt, payload FROM results WHERE id = ?1", -1,
                                      &st, NULL),
                  SQLITE_OK);
    sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
    cr_assert_eq (sqlite3_step (st), SQLITE_ROW);
    *attempt = sqlite3_column_int64 (st, 0);
    snprintf (payload, size, "%.*s", sqlite3_column_bytes (st, 1),
              (const char *)sqlite3_column_blob (st, 1));
    sqlite3_finalize (st);
    sqlite3_close (db);
}

//  One integer a query about an id gives (-1 for SQL NULL).
static int64_t
s_db_int (const char *sql, const jr_job_t *job)
{
    sqlite3 *db = s_db_open ();
    sqlite3_stmt *st;
    char id[37];
    jr_id_format (job->id, id);
    cr_assert_eq (sqlite3_prepare_v2 (db, sql, -1, &st, NULL), SQLITE_OK, "%s",
                  sqlite3_errmsg (db));
    sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
    cr_assert_eq (sqlite3_step (st), SQLITE_ROW, "%s", sql);
    int64_t value = sqlite3_column_type (st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64 (st, 0);
    sqlite3_finalize (st);
    sqlite3_close (db);
    return value;
}

static void
s_db_exec (const char *sql)
{
    sqlite3 *db = s_db_open ();
    char *err = NULL;
    cr_assert_eq (sqlite3_exec (db, sql, NULL, NULL, &err), SQLITE_OK, "%s", err ? err : "");
    sqlite3_close (db);
}

static bool
s_bytes_eq (jr_bytes_t bytes, const void *data, size_t size)
{
    return bytes.len == size && (size == 0 || memcmp (bytes.ptr, data, size) == 0);
}

static void
s_assert_same (const jr_job_t *got, const jr_job_t *want)
{
    cr_assert_eq (memcmp (got->id, want->id, JR_ID_SIZE), 0);
    cr_assert (s_bytes_eq (got->task, want->task.ptr, want->task.len));
    cr_assert (s_bytes_eq (got->vars, want->vars.ptr, want->vars.len));
    cr_assert (s_bytes_eq (got->payload, want->payload.ptr, want->payload.len));
    cr_assert (s_bytes_eq (got->error, want->error.ptr, want->error.len));
    cr_assert (s_bytes_eq (got->worker, want->worker.ptr, want->worker.len));
    cr_assert_eq (got->attempt, want->attempt);
    cr_assert_eq (got->success, want->success);
    cr_assert_eq (got->state, want->success ? JR_STATE_SUCCEEDED : JR_STATE_FAILED);
    cr_assert_eq (got->priority, want->priority);
    cr_assert_eq (got->timeout_ms, want->timeout_ms);
    cr_assert_eq (got->max_attempts, want->max_attempts);
    cr_assert_eq (got->created_us, want->created_us);
    cr_assert_eq (got->accepted_us, want->accepted_us);
    cr_assert_eq (got->dispatched_us, want->dispatched_us);
    cr_assert_eq (got->started_us, want->started_us);
    cr_assert_eq (got->completed_us, want->completed_us);
    cr_assert_gt (got->ingested_us, 0);
}

TestSuite (ingester, .init = setup, .fini = teardown, .timeout = 60);
//  Tests that start the ingester themselves, with a non-default config.
TestSuite (ingester_tuned, .fini = teardown, .timeout = 60);

//  -------------------------------------------------------------------------
//  RESULT and ACK

Test (ingester, stores_a_batch_and_acks_each_job)
{
    jr_job_t jobs[3];
    for (int i = 0; i < 3; i++)
        s_job (&jobs[i], 1, "out");
    jobs[1].vars = (jr_bytes_t){ NULL, 0 };
    jobs[2].success = false;
    jobs[2].error = s_text ("boom");
    s_store (jobs, 3, NULL);
    cr_assert_eq (s_db_count (NULL), 3);

    sqlite3 *db = s_db_open ();
    sqlite3_stmt *st;
    cr_assert_eq (sqlite3_prepare_v2 (db,
                                      "SELECT id, task, vars, success, error, worker, ingested_us"
                                      " FROM results WHERE id = ?1",
                                      -1, &st, NULL),
                  SQLITE_OK);
    for (int i = 0; i < 3; i++) {
        char id[37];
        jr_id_format (jobs[i].id, id);
        sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
        cr_assert_eq (sqlite3_step (st), SQLITE_ROW);
        cr_assert_str_eq ((const char *)sqlite3_column_text (st, 0), id);
        cr_assert_str_eq ((const char *)sqlite3_column_text (st, 1), "echo");
        if (i == 1)
            cr_assert_eq (sqlite3_column_type (st, 2), SQLITE_NULL);
        else
            cr_assert_eq (memcmp (sqlite3_column_blob (st, 2), s_vars, sizeof s_vars), 0);
        cr_assert_eq (sqlite3_column_int (st, 3), i == 2 ? 0 : 1);
        cr_assert_str_eq ((const char *)sqlite3_column_text (st, 4), i == 2 ? "boom" : "");
        cr_assert_str_eq ((const char *)sqlite3_column_text (st, 5), "w1@host");
        cr_assert_gt (sqlite3_column_int64 (st, 6), 0);
        sqlite3_reset (st);
    }
    sqlite3_finalize (st);
    sqlite3_close (db);
}

Test (ingester, resend_of_same_attempt_keeps_one_unchanged_row)
{
    jr_job_t job;
    s_job (&job, 1, "first");
    s_store (&job, 1, NULL);
    job.payload = s_text ("second");
    s_store (&job, 1, NULL);  //  ACK 0: the worker may forget it
    cr_assert_eq (s_db_count (&job), 1);
    int64_t attempt;
    char payload[32];
    s_db_row (&job, &attempt, payload, sizeof payload);
    cr_assert_eq (attempt, 1);
    cr_assert_str_eq (payload, "first");
}

Test (ingester, stale_attempt_refused_and_newer_attempt_replaces)
{
    jr_job_t job;
    s_job (&job, 2, "two");
    s_store (&job, 1, NULL);
    job.attempt = 1;
    job.payload = s_text ("one");
    int32_t stale = JR_ESTALE;
    s_store (&job, 1, &stale);
    int64_t attempt;
    char payload[32];
    s_db_row (&job, &attempt, payload, sizeof payload);
    cr_assert_eq (attempt, 2);
    cr_assert_str_eq (payload, "two");

    job.attempt = 3;
    job.payload = s_text ("three");
    s_store (&job, 1, NULL);
    s_db_row (&job, &attempt, payload, sizeof payload);
    cr_assert_eq (attempt, 3);
    cr_assert_str_eq (payload, "three");
    cr_assert_eq (s_db_count (NULL), 1);
}

Test (ingester, two_attempts_in_one_message_keep_the_newer)
{
    jr_job_t jobs[3];
    s_job (&jobs[0], 2, "two");
    jobs[1] = jobs[0];
    jobs[1].attempt = 1;
    jobs[1].payload = s_text ("one");
    jobs[2] = jobs[0];
    jobs[2].attempt = 3;
    jobs[2].payload = s_text ("three");
    int32_t codes[] = { 0, JR_ESTALE, 0 };
    s_store (jobs, 3, codes);
    int64_t attempt;
    char payload[32];
    s_db_row (&jobs[0], &attempt, payload, sizeof payload);
    cr_assert_eq (attempt, 3);
    cr_assert_str_eq (payload, "three");
}

Test (ingester, invalid_jobs_refused_others_stored)
{
    jr_job_t jobs[3];
    for (int i = 0; i < 3; i++)
        s_job (&jobs[i], 1, "x");
    jobs[0].task = s_text ("");
    jobs[2].attempt = 0;
    int32_t codes[] = { JR_EINVALID, 0, JR_EINVALID };
    s_store (jobs, 3, codes);
    cr_assert_eq (s_db_count (NULL), 1);
    cr_assert_eq (s_db_count (&jobs[1]), 1);
}

Test (ingester, many_messages_all_acked_one_row_each)
{
    enum { MESSAGES = 20, PER = 100 };
    static jr_job_t jobs[MESSAGES][PER];
    for (int m = 0; m < MESSAGES; m++) {
        for (int i = 0; i < PER; i++)
            s_job (&jobs[m][i], 1, "bulk");
        jr_fake_result (s_worker, s_out, jobs[m], PER);
    }
    jr_msg_t *ack = jr_msg_new ();
    size_t acked = 0;
    for (int m = 0; m < MESSAGES; m++) {
        zframe_t *frame = jr_fake_recv (s_worker, ack, JR_MSG_ACK, S_TIMEOUT_MS);
        for (uint32_t i = 0; i < ack->nmarks; i++)
            cr_assert_eq (ack->marks[i].code, 0);
        acked += ack->nmarks;
        zframe_destroy (&frame);
    }
    jr_msg_destroy (&ack);
    cr_assert_eq (acked, MESSAGES * PER);
    cr_assert_eq (s_db_count (NULL), MESSAGES * PER);
}

Test (ingester_tuned, small_batch_limit_spreads_over_turns)
{
    s_start (3, 0);
    enum { N = 10 };
    jr_job_t jobs[N];
    for (int i = 0; i < N; i++) {
        s_job (&jobs[i], 1, "small");
        jr_fake_result (s_worker, s_out, &jobs[i], 1);
    }
    jr_msg_t *ack = jr_msg_new ();
    for (int i = 0; i < N; i++) {
        zframe_t *frame = jr_fake_recv (s_worker, ack, JR_MSG_ACK, S_TIMEOUT_MS);
        cr_assert_eq (ack->nmarks, 1);
        cr_assert_eq (memcmp (ack->marks[0].id, jobs[i].id, JR_ID_SIZE), 0);
        zframe_destroy (&frame);
    }
    jr_msg_destroy (&ack);
    cr_assert_eq (s_db_count (NULL), N);
}

//  A failing transaction (here a trigger standing in for a broken disk)
//  stores nothing and ACKs each result with IO, so the worker keeps it; the
//  resend after the cause is gone is stored and ACKed.
Test (ingester, failed_batch_acks_io_and_resend_succeeds)
{
    jr_fake_ingester_sync (s_worker, s_out, 1,
                           S_TIMEOUT_MS);  //  the schema exists once the ingester answered
    s_db_exec ("CREATE TRIGGER fail BEFORE INSERT ON results WHEN NEW.task = 'poison'"
               " BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    jr_job_t jobs[2];
    s_job (&jobs[0], 1, "good");
    s_job (&jobs[1], 1, "bad");
    jobs[1].task = s_text ("poison");
    int32_t io[] = { JR_EIO, JR_EIO };
    s_store (jobs, 2, io);
    cr_assert_eq (s_db_count (NULL), 0);

    s_db_exec ("DROP TRIGGER fail");
    s_store (jobs, 2, NULL);
    cr_assert_eq (s_db_count (NULL), 2);
}

static void
s_unlink_db (void)
{
    const char *suffixes[] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        char path[160];
        snprintf (path, sizeof path, "%s%s", s_db, suffixes[i]);
        unlink (path);
    }
}

//  A database deleted under the ingester took commits into a file nobody
//  could read again. The ingester sees it before the next transaction and
//  opens the path again: a new, empty database gets what comes next.
Test (ingester, deleted_database_is_seen_and_made_anew)
{
    jr_job_t jobs[2];
    s_job (&jobs[0], 1, "before");
    s_job (&jobs[1], 1, "after");
    s_store (&jobs[0], 1, NULL);
    s_unlink_db ();
    s_store (&jobs[1], 1, NULL);
    cr_assert_eq (s_db_count (&jobs[1]), 1, "stored in the file at the path");
    cr_assert_eq (s_db_count (&jobs[0]), 0, "gone with the deleted file");
}

//  While the path cannot be opened (here its directory is gone) every
//  result is answered IO, so workers keep it; once it can, it is stored.
Test (ingester, lost_database_answers_io_until_its_path_opens_again)
{
    jr_job_t jobs[2];
    s_job (&jobs[0], 1, "before");
    s_job (&jobs[1], 1, "lost");
    s_store (&jobs[0], 1, NULL);
    s_unlink_db ();
    cr_assert_eq (rmdir (s_dir), 0);
    int32_t io = JR_EIO;
    s_store (&jobs[1], 1, &io);
    s_store (&jobs[1], 1, &io);  //  a resend: still not stored
    cr_assert_eq (mkdir (s_dir, 0700), 0);
    s_store (&jobs[1], 1, NULL);
    cr_assert_eq (s_db_count (&jobs[1]), 1);
}

//  -------------------------------------------------------------------------
//  FETCH

Test (ingester, fetch_now_returns_found_and_not_found)
{
    jr_job_t jobs[3];
    for (int i = 0; i < 3; i++)
        s_job (&jobs[i], 1, "fetched");
    jobs[1].success = false;
    jobs[1].error = s_text ("went wrong");
    s_store (jobs, 2, NULL);  //  jobs[2] never stored

    jr_fake_fetch (s_client, s_out, 42, jobs, 3, 0);
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->tag, 42);
    cr_assert_eq (msg->njobs, 2);
    s_assert_same (&msg->jobs[0], &jobs[0]);
    s_assert_same (&msg->jobs[1], &jobs[1]);
    cr_assert_eq (msg->nmarks, 1);
    cr_assert_eq (memcmp (msg->marks[0].id, jobs[2].id, JR_ID_SIZE), 0);
    cr_assert_eq (msg->marks[0].code, JR_ENOT_FOUND);
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);
}

Test (ingester, fetch_waits_then_result_is_delivered)
{
    jr_job_t jobs[2];
    s_job (&jobs[0], 1, "later");
    s_job (&jobs[1], 1, "later too");
    jr_fake_fetch (s_client, s_out, 7, jobs, 2, 60000);
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->tag, 7);
    cr_assert_eq (msg->njobs, 0);
    cr_assert_eq (msg->nmarks, 2);
    cr_assert_eq (msg->marks[0].code, 0);  //  pending
    cr_assert_eq (msg->marks[1].code, 0);
    zframe_destroy (&frame);

    for (int i = 0; i < 2; i++) {
        s_store (&jobs[i], 1, NULL);
        frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
        cr_assert_eq (msg->tag, 7);
        cr_assert_eq (msg->njobs, 1);
        cr_assert_eq (msg->nmarks, 0);
        s_assert_same (&msg->jobs[0], &jobs[i]);
        zframe_destroy (&frame);
    }
    jr_msg_destroy (&msg);
    //  Nothing stays parked: a later store of another attempt reaches no one.
    jobs[0].attempt = 2;
    s_store (&jobs[0], 1, NULL);
    jr_fake_ingester_sync (s_client, s_out, 8, S_TIMEOUT_MS);
}

Test (ingester, two_clients_wait_for_the_same_id)
{
    zsock_t *other = jr_fake_dealer (jr_ingester_endpoint (s_ingester));
    jr_job_t job;
    s_job (&job, 1, "shared");
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *clients[] = { s_client, other };
    for (int c = 0; c < 2; c++) {
        jr_fake_fetch (clients[c], s_out, 100 + (uint64_t)c, &job, 1, 60000);
        zframe_t *frame = jr_fake_recv (clients[c], msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
        cr_assert_eq (msg->marks[0].code, 0);
        zframe_destroy (&frame);
    }
    s_store (&job, 1, NULL);
    for (int c = 0; c < 2; c++) {
        zframe_t *frame = jr_fake_recv (clients[c], msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
        cr_assert_eq (msg->tag, 100 + (uint64_t)c);
        cr_assert_eq (msg->njobs, 1);
        s_assert_same (&msg->jobs[0], &job);
        zframe_destroy (&frame);
    }
    jr_msg_destroy (&msg);
    zsock_destroy (&other);
}

//  The deadline runs on the monotonic clock, which the test moves forward
//  instead of waiting.
Test (ingester, fetch_wait_expires_with_not_found)
{
    jr_job_t jobs[2];
    s_job (&jobs[0], 1, "stored");
    s_job (&jobs[1], 1, "never");
    s_store (&jobs[0], 1, NULL);
    jr_fake_fetch (s_client, s_out, 9, jobs, 2, 60000);
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->njobs, 1);
    cr_assert_eq (msg->nmarks, 1);
    cr_assert_eq (msg->marks[0].code, 0);
    zframe_destroy (&frame);

    jr_clock_mono_shift_us (61 * 1000000LL);
    frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->tag, 9);
    cr_assert_eq (msg->njobs, 0);
    cr_assert_eq (msg->nmarks, 1);
    cr_assert_eq (memcmp (msg->marks[0].id, jobs[1].id, JR_ID_SIZE), 0);
    cr_assert_eq (msg->marks[0].code, JR_ENOT_FOUND);
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);

    //  Expired means forgotten: storing it now answers no one.
    s_store (&jobs[1], 1, NULL);
    jr_fake_ingester_sync (s_client, s_out, 10, S_TIMEOUT_MS);
}

Test (ingester_tuned, parked_ids_are_bounded)
{
    s_start (0, 2);
    jr_job_t jobs[3];
    for (int i = 0; i < 3; i++)
        s_job (&jobs[i], 1, "bounded");
    jr_fake_fetch (s_client, s_out, 5, jobs, 3, 60000);
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->nmarks, 3);
    cr_assert_eq (msg->marks[0].code, 0);
    cr_assert_eq (msg->marks[1].code, 0);
    cr_assert_eq (msg->marks[2].code, JR_ENOT_FOUND);
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);
}

Test (ingester, fetch_of_too_many_ids_is_refused)
{
    enum { N = JR_INGESTER_MAX_FETCH + 1 };
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_FETCH);
    msg->tag = 11;
    uint8_t id[JR_ID_SIZE] = { 1 };
    for (int i = 0; i < N; i++)
        jr_msg_add_mark (msg, id, 0, 0);
    cr_assert_eq (jr_msg_send (msg, zsock_resolve (s_client), NULL, 0), 0);
    zframe_t *frame = jr_fake_recv (s_client, msg, JR_MSG_ERROR, S_TIMEOUT_MS);
    cr_assert_eq (msg->tag, 11);
    cr_assert_eq (msg->code, JR_ETOOLARGE);
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);
}

//  A FETCH naming one big result 2,000 times gets it once, not 2,000 times
//  (it made a 2 GB answer of a 1 MB row).
Test (ingester, repeated_id_in_a_fetch_is_answered_once)
{
    static char payload[64 * 1024];
    memset (payload, 'p', sizeof payload - 1);
    jr_job_t job;
    s_job (&job, 1, payload);
    s_store (&job, 1, NULL);
    enum { N = 2000 };
    static jr_job_t same[N];
    for (int i = 0; i < N; i++)
        same[i] = job;
    jr_fake_fetch (s_client, s_out, 12, same, N, 0);
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->tag, 12);
    cr_assert_eq (msg->njobs, 1);
    cr_assert_eq (msg->nmarks, 0);
    cr_assert_lt (zframe_size (frame), 2 * sizeof payload);
    s_assert_same (&msg->jobs[0], &job);
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);
    jr_fake_ingester_sync (s_client, s_out, 13, S_TIMEOUT_MS);  //  and nothing more came for tag 12
}

//  Receive the RESULTS of one tag until each of n distinct ids came once,
//  as a job or as a mark that is not pending. Counts jobs and marks by
//  code in got[]: [0] jobs, [1] NOT_FOUND, [2] TOO_LARGE, [3] pending.
static void
s_recv_answer (const jr_job_t *ids, size_t n, uint64_t tag, size_t max_frame, int got[4],
               bool *too_large)
{
    bool *seen = calloc (n, sizeof *seen);
    cr_assert (seen);
    size_t left = n;
    memset (got, 0, 4 * sizeof *got);
    jr_msg_t *msg = jr_msg_new ();
    while (left) {
        zframe_t *frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
        cr_assert_eq (msg->tag, tag);
        cr_assert_leq (zframe_size (frame), max_frame, "frame of %zu bytes", zframe_size (frame));
        for (uint32_t k = 0; k < msg->njobs + msg->nmarks; k++) {
            const uint8_t *id = k < msg->njobs ? msg->jobs[k].id : msg->marks[k - msg->njobs].id;
            int code = k < msg->njobs ? 1 : msg->marks[k - msg->njobs].code;
            size_t i = 0;
            while (i < n && memcmp (ids[i].id, id, JR_ID_SIZE) != 0)
                i++;
            cr_assert_lt (i, n, "an id nobody asked for");
            cr_assert_not (seen[i], "id %zu answered twice", i);
            seen[i] = code != 0;  //  a pending id comes again
            left -= code != 0;
            got[code == 1 ? 0 : code == JR_ENOT_FOUND ? 1 : code == JR_ETOOLARGE ? 2 : 3]++;
            if (too_large)
                too_large[i] = code == JR_ETOOLARGE;
        }
        zframe_destroy (&frame);
    }
    jr_msg_destroy (&msg);
    free (seen);
}

enum { S_BIG = 50000, S_NBIG = 8 };  //  payloads that overrun a 256 KiB budget

static void
s_start_budget (jr_job_t *jobs, char *payload)
{
    s_fetch_bytes = 256 * 1024;  //  so RESULTS frames of 64 KiB
    s_start (0, 0);
    s_fetch_bytes = 0;
    memset (payload, 'b', S_BIG);
    payload[S_BIG] = 0;
    for (int i = 0; i < S_NBIG; i++)
        s_job (&jobs[i], 1, payload);
}

//  An answer bigger than its budget comes in frames under the budget's
//  quarter (or one job alone), every id once; past the budget, ids are
//  marked TOO_LARGE and a second FETCH of those gets them.
Test (ingester_tuned, answer_is_split_and_bounded_each_id_once)
{
    static char payload[S_BIG + 1];
    jr_job_t jobs[S_NBIG + 1];
    s_start_budget (jobs, payload);
    s_store (jobs, S_NBIG, NULL);
    s_job (&jobs[S_NBIG], 1, "");  //  never stored
    jr_job_t ask[2 * (S_NBIG + 1)];
    for (int i = 0; i < 2 * (S_NBIG + 1); i++)
        ask[i] = jobs[i % (S_NBIG + 1)];  //  each id twice
    jr_fake_fetch (s_client, s_out, 40, ask, 2 * (S_NBIG + 1), 0);
    int got[4];
    bool again[S_NBIG + 1];
    s_recv_answer (jobs, S_NBIG + 1, 40, 64 * 1024 + S_BIG + 1024, got, again);
    cr_assert_eq (got[0], 5, "five jobs of 50 kB fit 256 KiB, got %d", got[0]);
    cr_assert_eq (got[2], 4, "the three others and the unknown id: ask again");
    jr_fake_ingester_sync (s_client, s_out, 41, S_TIMEOUT_MS);  //  the answer was complete

    jr_job_t rest[S_NBIG + 1];
    size_t nrest = 0;
    for (int i = 0; i <= S_NBIG; i++)
        if (again[i])
            rest[nrest++] = jobs[i];
    jr_fake_fetch (s_client, s_out, 42, rest, nrest, 0);
    s_recv_answer (rest, nrest, 42, 64 * 1024 + S_BIG + 1024, got, NULL);
    cr_assert_eq (got[0], 3);
    cr_assert_eq (got[1], 1, "the unknown id: NOT_FOUND");
}

//  Parked ids stored in one turn are bounded the same way: what does not
//  fit is marked TOO_LARGE (the client asks again), the rest come as jobs.
Test (ingester_tuned, parked_answer_is_bounded_each_id_once)
{
    static char payload[S_BIG + 1];
    jr_job_t jobs[S_NBIG];
    s_start_budget (jobs, payload);
    jr_fake_fetch (s_client, s_out, 50, jobs, S_NBIG, 60000);
    int got[4];
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->nmarks, S_NBIG);
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);
    s_store (jobs, S_NBIG, NULL);
    s_recv_answer (jobs, S_NBIG, 50, 64 * 1024 + S_BIG + 1024, got, NULL);
    cr_assert_eq (got[0], 5);
    cr_assert_eq (got[2], 3);
    jr_fake_ingester_sync (s_client, s_out, 51, S_TIMEOUT_MS);
}

static bool
s_count (const jr_job_t *job, void *arg)
{
    (void)job;
    (*(int *)arg)++;
    return true;
}

//  libjr's wait follows the rule: it reads every RESULTS of a tag and asks
//  again for ids marked TOO_LARGE, even with no time left to wait.
Test (ingester_tuned, client_gets_every_result_of_a_split_answer)
{
    static char payload[S_BIG + 1];
    jr_job_t jobs[S_NBIG];
    s_start_budget (jobs, payload);
    s_store (jobs, S_NBIG, NULL);
    uint8_t ids[S_NBIG][JR_ID_SIZE];
    for (int i = 0; i < S_NBIG; i++)
        memcpy (ids[i], jobs[i].id, JR_ID_SIZE);
    jr_client_t *client = jr_client_new ("tcp://127.0.0.1:1", jr_ingester_endpoint (s_ingester));
    cr_assert (client);
    int count = 0;
    cr_assert_eq (jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, S_NBIG, 0,
                                       s_count, &count),
                  0);
    cr_assert_eq (count, S_NBIG);
    count = 0;
    cr_assert_eq (jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, S_NBIG, 5000,
                                       s_count, &count),
                  0);
    cr_assert_eq (count, S_NBIG);
    jr_client_destroy (&client);
}

//  -------------------------------------------------------------------------
//  Bad input

Test (ingester, garbage_gets_error_and_ingester_still_works)
{
    zstr_send (s_worker, "not msgpack at all");
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (s_worker, msg, JR_MSG_ERROR, S_TIMEOUT_MS);
    cr_assert_eq (msg->code, JR_EMALFORMED);
    zframe_destroy (&frame);

    zframe_t *empty = zframe_new_empty ();
    zframe_send (&empty, s_worker, 0);
    frame = jr_fake_recv (s_worker, msg, JR_MSG_ERROR, S_TIMEOUT_MS);
    cr_assert_eq (msg->code, JR_EMALFORMED);
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);

    jr_job_t job;
    s_job (&job, 1, "after garbage");
    s_store (&job, 1, NULL);
}

Test (ingester, message_not_for_ingester_gets_error)
{
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_SUBMIT);
    msg->tag = 3;
    cr_assert_eq (jr_msg_send (msg, zsock_resolve (s_client), NULL, 0), 0);
    zframe_t *frame = jr_fake_recv (s_client, msg, JR_MSG_ERROR, S_TIMEOUT_MS);
    cr_assert_eq (msg->tag, 0, "ERROR(0, INVALID), as section 6 says");
    cr_assert_eq (msg->code, JR_EINVALID, "decodes, but has no business here: INVALID");
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);
}

//  Two peers that answered each other's ERRORs would loop for ever.
Test (ingester, error_is_never_answered)
{
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_ERROR);
    msg->tag = 5;
    msg->code = JR_EMALFORMED;
    msg->text = s_text ("what was that");
    cr_assert_eq (jr_msg_send (msg, zsock_resolve (s_client), NULL, 0), 0);
    //  An ERROR of another version (2) is an ERROR all the same.
    const uint8_t v2[] = { 0x96, 0xcd, 0x4a, 0x52, 0x02, 0x0d, 0x05, 0xff, 0xa1, 'x' };
    zframe_t *other = zframe_new (v2, sizeof v2);
    cr_assert_eq (zframe_send (&other, s_client, 0), 0);
    jr_fake_ingester_sync (s_client, s_out, 6,
                           S_TIMEOUT_MS);  //  the next reply is the FETCH's: no ERROR came back
    jr_msg_destroy (&msg);
}

//  libzmq drops a frame over JR_MAX_FRAME and resets the connection, as the
//  spec says; the ingester never sees it, so no ERROR comes, and the DEALER
//  (which reconnects by itself) and any other connection are served after.
Test (ingester, oversized_frame_resets_the_connection_without_error)
{
    zframe_t *big = zframe_new (NULL, (size_t)JR_MAX_FRAME + 1);
    memset (zframe_data (big), 0xc0, zframe_size (big));
    cr_assert_eq (zframe_send (&big, s_worker, 0), 0);
    //  What follows the big frame on the old connection may die with it: ask
    //  until an answer comes. The first reply must be that answer.
    zsock_set_rcvtimeo (s_worker, 500);
    jr_job_t probe;
    s_job (&probe, 1, "");
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = NULL;
    for (int k = 0; k < 40 && !frame; k++) {
        jr_fake_fetch (s_worker, s_out, 100 + (uint64_t)k, &probe, 1, 0);
        frame = zframe_recv (s_worker);
    }
    cr_assert (frame, "the DEALER is served again after the reset");
    cr_assert_eq (jr_msg_decode (msg, zframe_data (frame), zframe_size (frame)), 0);
    cr_assert_eq (msg->type, JR_MSG_RESULTS, "got %s, not an answer to FETCH",
                  jr_msg_name (msg->type));
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);
    zsock_t *next = jr_fake_dealer (jr_ingester_endpoint (s_ingester));
    jr_fake_ingester_sync (next, s_out, 200, S_TIMEOUT_MS);
    zsock_destroy (&next);
}

Test (ingester, three_frame_message_dropped_and_ingester_still_works)
{
    jr_job_t job;
    s_job (&job, 1, "framed");
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_RESULT);
    *jr_msg_add_job (msg) = job;
    uint8_t *data;
    size_t size = jr_msg_encode (msg, &data);
    cr_assert (data);
    //  A valid RESULT body, but behind an extra frame: dropped, not ACKed.
    zmsg_t *zmsg = zmsg_new ();
    zmsg_addstr (zmsg, "extra");
    zmsg_addmem (zmsg, data, size);
    cr_assert_eq (zmsg_send (&zmsg, s_worker), 0);
    free (data);
    jr_msg_destroy (&msg);

    jr_fake_ingester_sync (s_worker, s_out, 20,
                           S_TIMEOUT_MS);  //  the next reply is the FETCH's: no ACK, no ERROR
    cr_assert_eq (s_db_count (NULL), 0);
    s_store (&job, 1, NULL);
    cr_assert_eq (s_db_count (&job), 1);
}

//  A metric's value by its stats-line key; the test fails if there is none.
static int64_t
s_metric (const char *key)
{
    int64_t value;
    cr_assert (jr_metrics_value (jr_ingester_metrics (s_ingester), key, &value), "metric %s", key);
    return value;
}

//  The stats line's figures live in the ingester's registry.
Test (ingester, figures_in_its_metrics)
{
    jr_job_t jobs[3];
    for (int i = 0; i < 3; i++)
        s_job (&jobs[i], 1, "x");
    jobs[2].attempt = 0;
    int32_t codes[] = { 0, 0, JR_EINVALID };
    s_store (jobs, 3, codes);
    s_store (jobs, 1, NULL);  //  the same attempt again
    jobs[1].attempt = 2;
    s_store (&jobs[1], 1, NULL);
    jobs[1].attempt = 1;
    int32_t stale = JR_ESTALE;
    s_store (&jobs[1], 1, &stale);
    zstr_send (s_worker, "not msgpack at all");
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (s_worker, msg, JR_MSG_ERROR, S_TIMEOUT_MS);
    zframe_destroy (&frame);
    zmsg_t *zmsg = zmsg_new ();
    zmsg_addstr (zmsg, "extra");
    zmsg_addstr (zmsg, "frame");
    cr_assert_eq (zmsg_send (&zmsg, s_worker), 0);
    jr_fake_fetch (s_client, s_out, 9, jobs, 1, 0);
    frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->njobs, 1);
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);
    jr_fake_ingester_sync (s_worker, s_out, 10,
                           S_TIMEOUT_MS);  //  all of the above is handled, and counted

    cr_assert_eq (s_metric ("results_stored"), 3);
    cr_assert_eq (s_metric ("results_dup"), 1);
    cr_assert_eq (s_metric ("results_stale"), 1);
    cr_assert_eq (s_metric ("results_invalid"), 1);
    cr_assert_eq (s_metric ("acks_sent"), 4);
    cr_assert_eq (s_metric ("commits"), 4);
    cr_assert_eq (s_metric ("messages_bad"), 1);
    cr_assert_eq (s_metric ("messages_malformed"), 1);
    cr_assert_eq (s_metric ("fetches"), 2);
    cr_assert_eq (s_metric ("fetches_served"), 1);
    cr_assert_eq (s_metric ("fetches_parked"), 0);
    cr_assert_eq (s_metric ("sends_failed"), 0);
    cr_assert_eq (s_metric ("batches_failed"), 0);
}

//  -------------------------------------------------------------------------
//  Construction

Test (ingester_new, refuses_bad_config_db_and_endpoint)
{
    jr_log_init ("ingester", JR_LOG_ERROR);
    char dir[] = "/tmp/jr-test-ingester-XXXXXX";
    cr_assert (mkdtemp (dir));
    char db[96];
    snprintf (db, sizeof db, "%s/jr.db", dir);
    jr_ingester_config_t cfg = { .bind = "tcp://127.0.0.1:*", .db = db, .sync = "sometimes" };
    cr_assert_null (jr_ingester_new (&cfg));
    cfg.sync = "off";
    cfg.db = "/nonexistent-dir/jr.db";
    cr_assert_null (jr_ingester_new (&cfg));
    cfg.db = db;
    cfg.bind = "bogus://endpoint";
    cr_assert_null (jr_ingester_new (&cfg));
    cfg.bind = "tcp://127.0.0.1:*";
    cfg.batch_max = -1;
    cr_assert_null (jr_ingester_new (&cfg));
    cfg.batch_max = 0;
    jr_ingester_t *ingester = jr_ingester_new (&cfg);
    cr_assert (ingester);
    cr_assert (strncmp (jr_ingester_endpoint (ingester), "tcp://127.0.0.1:", 16) == 0);
    //  Stop before run: run returns at once.
    jr_ingester_stop (ingester);
    cr_assert_eq (jr_ingester_run (ingester), 0);
    jr_ingester_destroy (&ingester);
    jr_ingester_destroy (&ingester);  //  idempotent
    char path[128];
    const char *suffixes[] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s%s", db, suffixes[i]);
        unlink (path);
    }
    rmdir (dir);
}

//  -------------------------------------------------------------------------
//  States, attempt history, waking on final states only

//  A failed attempt of job (same id) with a state, worker and error.
static void
s_attempt (jr_job_t *job, uint32_t attempt, int state, const char *worker, const char *error)
{
    job->attempt = attempt;
    job->state = state;
    job->success = state == JR_STATE_SUCCEEDED;
    job->worker = s_text (worker);
    job->error = s_text (error);
    job->payload = s_text (job->success ? "ok" : "");
}

//  FETCH one id with wait 0 and return the stored job (copy, caller owns).
static jr_job_t *
s_fetch_now (zsock_t *sock, const jr_job_t *job, uint64_t tag)
{
    jr_fake_fetch (sock, s_out, tag, job, 1, 0);
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (sock, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->tag, tag);
    cr_assert_eq (msg->njobs, 1, "the result is stored");
    jr_job_t *copy = jr_job_dup (&msg->jobs[0]);
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);
    return copy;
}

static bool
s_error_is (const jr_job_t *job, const char *text)
{
    return s_bytes_eq (job->error, text, strlen (text));
}

Test (ingester, state_is_stored_and_returned)
{
    jr_job_t jobs[4];
    for (int i = 0; i < 4; i++)
        s_job (&jobs[i], 1, "s");
    s_attempt (&jobs[0], 1, JR_STATE_DEAD, "w1@host", "boom");
    s_attempt (&jobs[1], 1, JR_STATE_CANCELLED, "w1@host", "");
    s_attempt (&jobs[2], 1, JR_STATE_SCHEDULED, "w1@host", "flaky");
    jobs[3].state = 0;  //  a worker that sets no state: its success decides
    s_store (jobs, 4, NULL);
    const int want[] = { JR_STATE_DEAD, JR_STATE_CANCELLED, JR_STATE_SCHEDULED,
                         JR_STATE_SUCCEEDED };
    for (int i = 0; i < 4; i++) {
        cr_assert_eq (s_db_int ("SELECT state FROM results WHERE id = ?1", &jobs[i]), want[i]);
        jr_job_t *got = s_fetch_now (s_client, &jobs[i], 30 + (uint64_t)i);
        cr_assert_eq (got->state, want[i], "job %d: state %s", i, jr_state_name (got->state));
        jr_job_destroy (&got);
    }
}

Test (ingester, result_states_that_make_no_sense_are_refused_unknown_ones_derived)
{
    jr_job_t jobs[3];
    for (int i = 0; i < 3; i++)
        s_job (&jobs[i], 1, "s");
    jobs[0].state = JR_STATE_RUNNING;
    jobs[1].state = JR_STATE_QUEUED;
    jobs[2].state = 42;  //  a state from a newer table: treated as unknown
    jobs[2].success = false;
    int32_t codes[] = { JR_EINVALID, JR_EINVALID, 0 };
    s_store (jobs, 3, codes);
    cr_assert_eq (s_db_count (NULL), 1);
    cr_assert_eq (s_db_int ("SELECT state FROM results WHERE id = ?1", &jobs[2]), JR_STATE_FAILED);
}

Test (ingester, every_attempt_is_kept_and_a_failure_shows_them_all)
{
    jr_job_t job;
    s_job (&job, 1, "");
    s_attempt (&job, 1, JR_STATE_SCHEDULED, "w1@host", "boom");
    s_store (&job, 1, NULL);
    //  one attempt: its own error, no history
    jr_job_t *got = s_fetch_now (s_client, &job, 1);
    cr_assert (s_error_is (got, "boom"), "%.*s", (int)got->error.len, got->error.ptr);
    jr_job_destroy (&got);

    s_attempt (&job, 2, JR_STATE_SCHEDULED, "w2@host", "boom");
    s_store (&job, 1, NULL);
    s_store (&job, 1, NULL);  //  a resend: recorded once
    s_attempt (&job, 3, JR_STATE_DEAD, "w1@host", "boom");
    s_store (&job, 1, NULL);
    s_attempt (&job, 1, JR_STATE_SCHEDULED, "w1@host", "late boom");
    int32_t stale = JR_ESTALE;
    s_store (&job, 1, &stale);  //  a late copy of attempt 1: history unchanged

    cr_assert_eq (s_db_count (&job), 1);
    cr_assert_eq (s_db_int ("SELECT count(*) FROM attempts WHERE id = ?1", &job), 3);
    cr_assert_eq (s_db_int ("SELECT state FROM attempts WHERE id = ?1 AND attempt = 2", &job),
                  JR_STATE_SCHEDULED);
    cr_assert_eq (s_db_int ("SELECT success FROM attempts WHERE id = ?1 AND attempt = 3", &job), 0);
    cr_assert_eq (
        s_db_int ("SELECT completed_us FROM attempts WHERE id = ?1 AND attempt = 3", &job),
        job.completed_us);
    //  the row keeps its own error; FETCH shows the history
    cr_assert_eq (s_db_int ("SELECT error = 'boom' FROM results WHERE id = ?1", &job), 1);
    got = s_fetch_now (s_client, &job, 2);
    cr_assert_eq (got->attempt, 3);
    cr_assert_eq (got->state, JR_STATE_DEAD);
    const char *want = "attempt 1 (w1@host): boom\nattempt 2 (w2@host): boom\n"
                       "attempt 3 (w1@host): boom";
    cr_assert (s_error_is (got, want), "%.*s", (int)got->error.len, got->error.ptr);
    jr_job_destroy (&got);

    //  a success keeps its own (empty) error however many attempts it took
    s_attempt (&job, 4, JR_STATE_SUCCEEDED, "w2@host", "");
    s_store (&job, 1, NULL);
    got = s_fetch_now (s_client, &job, 3);
    cr_assert_eq (got->error.len, 0);
    cr_assert_eq (got->state, JR_STATE_SUCCEEDED);
    jr_job_destroy (&got);
    cr_assert_eq (s_db_int ("SELECT count(*) FROM attempts WHERE id = ?1", &job), 4);
}

Test (ingester, attempt_history_is_bounded)
{
    enum { N = 30 };
    static char big[4000];
    memset (big, 'x', sizeof big - 1);
    jr_job_t job;
    s_job (&job, 1, "");
    for (uint32_t a = 1; a <= N; a++) {
        s_attempt (&job, a, a < N ? JR_STATE_SCHEDULED : JR_STATE_DEAD, "w@h", big);
        s_store (&job, 1, NULL);
    }
    jr_job_t *got = s_fetch_now (s_client, &job, 1);
    cr_assert_leq (got->error.len, JR_MAX_TEXT);
    char *text = strndup ((const char *)got->error.ptr, got->error.len);
    cr_assert (text);
    int lines = 1;
    for (char *c = text; *c; c++)
        lines += *c == '\n';
    cr_assert_eq (lines, 21, "a note and the last 20 attempts");
    cr_assert (strncmp (text, "(attempts before 11 not shown)\nattempt 11 (w@h): xxx", 52) == 0,
               "%.80s", text);
    cr_assert (strstr (text, "xxx...\nattempt 12 (w@h): xxx"), "long errors are cut");
    cr_assert (strstr (text, "\nattempt 30 (w@h): xxx"));
    cr_assert_null (strstr (text, "attempt 10 "));
    free (text);
    jr_job_destroy (&got);
    cr_assert_eq (s_db_int ("SELECT count(*) FROM attempts WHERE id = ?1", &job), N);
}

//  The reply a client socket gets next is s_sync's: nothing else came.
Test (ingester, scheduled_result_is_stored_but_does_not_wake_waiters)
{
    jr_job_t job;
    s_job (&job, 1, "");
    jr_fake_fetch (s_client, s_out, 7, &job, 1, 60000);
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->marks[0].code, 0);  //  pending
    zframe_destroy (&frame);

    s_attempt (&job, 1, JR_STATE_SCHEDULED, "w1@host", "boom");
    s_store (&job, 1, NULL);
    jr_fake_ingester_sync (s_client, s_out, 8, S_TIMEOUT_MS);
    //  but it is there for who asks without waiting
    zsock_t *other = jr_fake_dealer (jr_ingester_endpoint (s_ingester));
    jr_job_t *got = s_fetch_now (other, &job, 1);
    cr_assert_eq (got->state, JR_STATE_SCHEDULED);
    jr_job_destroy (&got);
    zsock_destroy (&other);

    s_attempt (&job, 2, JR_STATE_SUCCEEDED, "w2@host", "");
    s_store (&job, 1, NULL);
    frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->tag, 7);
    cr_assert_eq (msg->njobs, 1);
    cr_assert_eq (msg->jobs[0].attempt, 2);
    cr_assert_eq (msg->jobs[0].state, JR_STATE_SUCCEEDED);
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);
}

Test (ingester, fetch_that_may_wait_parks_a_scheduled_row)
{
    jr_job_t job;
    s_job (&job, 1, "");
    s_attempt (&job, 1, JR_STATE_SCHEDULED, "w1@host", "boom");
    s_store (&job, 1, NULL);
    jr_fake_fetch (s_client, s_out, 7, &job, 1, 60000);
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->njobs, 0);
    cr_assert_eq (msg->nmarks, 1);
    cr_assert_eq (msg->marks[0].code, 0, "pending, not the scheduled row");
    zframe_destroy (&frame);

    //  the final failure wakes it, with the history as FETCH would give it
    s_attempt (&job, 2, JR_STATE_DEAD, "w2@host", "bang");
    s_store (&job, 1, NULL);
    frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->tag, 7);
    cr_assert_eq (msg->njobs, 1);
    cr_assert_eq (msg->jobs[0].state, JR_STATE_DEAD);
    cr_assert (s_error_is (&msg->jobs[0], "attempt 1 (w1@host): boom\nattempt 2 (w2@host): bang"),
               "%.*s", (int)msg->jobs[0].error.len, msg->jobs[0].error.ptr);
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);
}

//  A job cancelled while waiting for its retry never runs again: the broker
//  has a worker report it (a record-only dispatch of attempt + 1) as
//  CANCELLED, unsuccessful, with no payload and no start or end stamps.
//  That record replaces the SCHEDULED row and wakes who waits.
Test (ingester, cancelled_between_retries_replaces_scheduled_and_wakes)
{
    jr_job_t job;
    s_job (&job, 1, "");
    s_attempt (&job, 1, JR_STATE_SCHEDULED, "w1@host", "boom");
    s_store (&job, 1, NULL);
    jr_fake_fetch (s_client, s_out, 7, &job, 1, 60000);
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->njobs, 0);
    cr_assert_eq (msg->marks[0].code, 0, "pending");
    zframe_destroy (&frame);

    s_attempt (&job, 2, JR_STATE_CANCELLED, "w2@host", "");
    job.started_us = job.completed_us = 0;  //  never run
    s_store (&job, 1, NULL);
    cr_assert_eq (s_db_int ("SELECT state FROM results WHERE id = ?1", &job), JR_STATE_CANCELLED);
    cr_assert_eq (s_db_int ("SELECT attempt FROM results WHERE id = ?1", &job), 2);
    frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->tag, 7);
    cr_assert_eq (msg->njobs, 1);
    const jr_job_t *got = &msg->jobs[0];
    cr_assert_eq (got->attempt, 2);
    cr_assert_eq (got->state, JR_STATE_CANCELLED);
    cr_assert_not (got->success);
    cr_assert_eq (got->payload.len, 0);
    cr_assert_eq (got->started_us, 0);
    cr_assert_eq (got->completed_us, 0);
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);
}

//  A dead job requeued (RETRY) whose next attempt is SCHEDULED again, both
//  in one message: the row that stays is SCHEDULED, so nobody wakes.
Test (ingester, final_then_scheduled_in_one_turn_wakes_no_one)
{
    jr_job_t jobs[2];
    s_job (&jobs[0], 1, "");
    jr_fake_fetch (s_client, s_out, 7, jobs, 1, 60000);
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->marks[0].code, 0);
    zframe_destroy (&frame);
    jobs[1] = jobs[0];
    s_attempt (&jobs[0], 1, JR_STATE_DEAD, "w1@host", "boom");
    s_attempt (&jobs[1], 2, JR_STATE_SCHEDULED, "w1@host", "boom");
    s_store (jobs, 2, NULL);
    jr_fake_ingester_sync (s_client, s_out, 8, S_TIMEOUT_MS);
    cr_assert_eq (s_db_int ("SELECT state FROM results WHERE id = ?1", &jobs[0]),
                  JR_STATE_SCHEDULED);

    s_attempt (&jobs[1], 3, JR_STATE_SUCCEEDED, "w1@host", "");
    s_store (&jobs[1], 1, NULL);
    frame = jr_fake_recv (s_client, msg, JR_MSG_RESULTS, S_TIMEOUT_MS);
    cr_assert_eq (msg->tag, 7);
    cr_assert_eq (msg->jobs[0].attempt, 3);
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);
}

//  A database written before results had a state column (and before the
//  attempts table) is upgraded in place; its rows read as before.
Test (ingester_tuned, old_database_gets_the_state_column)
{
    jr_job_t old;
    s_job (&old, 1, "");
    old.success = false;
    char id[37];
    jr_id_format (old.id, id);
    char sql[1024];
    snprintf (sql, sizeof sql,
              "CREATE TABLE results (id TEXT PRIMARY KEY, task TEXT NOT NULL, vars BLOB,"
              " success INTEGER NOT NULL, payload BLOB, error TEXT, attempt INTEGER NOT NULL,"
              " worker TEXT, priority INTEGER, timeout_ms INTEGER, max_attempts INTEGER,"
              " created_us INTEGER, accepted_us INTEGER, dispatched_us INTEGER,"
              " started_us INTEGER, completed_us INTEGER, ingested_us INTEGER);"
              "INSERT INTO results VALUES ('%s', 'echo', NULL, 0, x'', 'old boom', 2,"
              " 'w@old', 0, 0, 0, 1, 2, 3, 4, 5, 6)",
              id);
    s_start_on (0, 0, sql);
    jr_fake_ingester_sync (s_client, s_out, 1, S_TIMEOUT_MS);
    cr_assert_eq (s_db_int ("SELECT state FROM results WHERE id = ?1", &old), -1);
    jr_job_t *got = s_fetch_now (s_client, &old, 2);
    cr_assert_eq (got->state, JR_STATE_FAILED);
    cr_assert_eq (got->attempt, 2);
    cr_assert (s_error_is (got, "old boom"), "no recorded history: the row's own error");
    jr_job_destroy (&got);

    s_attempt (&old, 3, JR_STATE_DEAD, "w@new", "new boom");
    s_store (&old, 1, NULL);
    cr_assert_eq (s_db_int ("SELECT state FROM results WHERE id = ?1", &old), JR_STATE_DEAD);
    got = s_fetch_now (s_client, &old, 3);
    cr_assert_eq (got->state, JR_STATE_DEAD);
    jr_job_destroy (&got);
    //  and a second open finds the column there
    jr_ingester_stop (s_ingester);
    pthread_join (s_thread, NULL);
    jr_ingester_destroy (&s_ingester);
    jr_ingester_config_t cfg = { .bind = "tcp://127.0.0.1:*", .db = s_db, .sync = "normal" };
    s_ingester = jr_ingester_new (&cfg);
    cr_assert (s_ingester);
    cr_assert (pthread_create (&s_thread, NULL, s_run, s_ingester) == 0);
}
