/*  test_writer.c - the ingester's writer thread: a batch stored in one transaction, codes per result  */
#include "common/log.h"
#include "ingester/writer.h"
#include <criterion/criterion.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

static char s_dir[64];
static char s_db[128];
static jr_sink_t *s_sink;
static jr_writer_t *s_writer;
static jr_batch_t s_batch;

static void
s_setup (void)
{
    jr_log_init ("ingester", JR_LOG_ERROR);
    snprintf (s_dir, sizeof s_dir, "/tmp/jr-test-writer-XXXXXX");
    cr_assert (mkdtemp (s_dir));
    snprintf (s_db, sizeof s_db, "%s/jr.db", s_dir);
    s_sink = jr_sink_open (&jr_sink_sqlite, s_db, "off");
    cr_assert (s_sink);
    s_writer = jr_writer_new (s_sink);
    cr_assert (s_writer);
}

static void
s_teardown (void)
{
    jr_writer_destroy (&s_writer);
    cr_assert_null (s_writer);
    jr_batch_free (&s_batch);
    jr_sink_destroy (&s_sink);
    char cmd[160];
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_dir);
    cr_assert_eq (system (cmd), 0);
}

//  One RESULT entry of n jobs with ids first..first+n-1 and the given attempt.
static jr_entry_t *
s_add_result (uint8_t first, uint32_t n, uint32_t attempt)
{
    jr_entry_t *entry = jr_batch_next (&s_batch);
    zmq_msg_init (&entry->peer);
    zmq_msg_init (&entry->body);
    jr_msg_reset (entry->msg, JR_MSG_RESULT);
    entry->codes = realloc (entry->codes, n * sizeof *entry->codes);
    cr_assert (entry->codes);
    entry->cap_codes = n;
    for (uint32_t i = 0; i < n; i++) {
        jr_job_t *job = jr_msg_add_job (entry->msg);
        jr_job_init (job, "echo");
        memset (job->id, 0, JR_ID_SIZE);
        job->id[0] = (uint8_t)(first + i);
        job->id[6] = 0x40;  //  a version-4 shape, not that the sink cares
        job->attempt = attempt;
        job->success = true;
        job->state = JR_STATE_SUCCEEDED;
        entry->codes[i] = 0;
    }
    s_batch.nentries++;
    s_batch.njobs += n;
    s_batch.nput += n;
    return entry;
}

static jr_batch_t *
s_store (void)
{
    jr_writer_submit (s_writer, &s_batch);
    struct pollfd pfd = { jr_writer_fd (s_writer), POLLIN, 0 };
    cr_assert_eq (poll (&pfd, 1, 5000), 1, "the writer never said it was done");
    jr_batch_t *done = jr_writer_take (s_writer);
    cr_assert_eq (done, &s_batch);
    cr_assert_null (jr_writer_take (s_writer), "one batch is taken once");
    return done;
}

TestSuite (writer, .init = s_setup, .fini = s_teardown);

Test (writer, stores_a_batch_and_marks_each_result)
{
    jr_entry_t *a = s_add_result (1, 3, 1);
    jr_entry_t *b = s_add_result (10, 2, 1);
    b->codes[1] = JR_EINVALID;  //  refused before the writer: left alone
    s_batch.nput--;
    jr_batch_t *done = s_store ();
    cr_assert_eq (done->rc, 0);
    cr_assert_eq (done->nstored, 4);
    for (int i = 0; i < 3; i++)
        cr_assert_eq (a->codes[i], JR_STORED);
    cr_assert_eq (b->codes[0], JR_STORED);
    cr_assert_eq (b->codes[1], JR_EINVALID);
    uint8_t id[JR_ID_SIZE] = { 11 };
    id[6] = 0x40;
    jr_job_t *job = NULL;
    cr_assert_eq (jr_sink_get (s_sink, id, &job), JR_ENOT_FOUND, "a refused result is not stored");
    id[0] = 2;
    cr_assert_eq (jr_sink_get (s_sink, id, &job), 0);
    cr_assert_eq (job->attempt, 1);
    jr_job_destroy (&job);
}

Test (writer, resends_are_duplicates_and_older_attempts_stale)
{
    s_add_result (1, 2, 2);
    s_store ();
    jr_batch_clear (&s_batch);
    jr_entry_t *again = s_add_result (1, 1, 2);
    jr_entry_t *older = s_add_result (2, 1, 1);
    jr_batch_t *done = s_store ();
    cr_assert_eq (done->rc, 0);
    cr_assert_eq (done->nstored, 0);
    cr_assert_eq (done->ndup, 1);
    cr_assert_eq (done->nstale, 1);
    cr_assert_eq (again->codes[0], 0, "a duplicate is ACKed as stored, not stored again");
    cr_assert_eq (older->codes[0], JR_ESTALE);
}

Test (writer, a_batch_without_results_commits_nothing)
{
    jr_entry_t *entry = jr_batch_next (&s_batch);
    zmq_msg_init (&entry->peer);
    zmq_msg_init (&entry->body);
    jr_msg_reset (entry->msg, JR_MSG_FETCH);
    s_batch.nentries++;
    jr_batch_t *done = s_store ();
    cr_assert_eq (done->rc, 0);
    cr_assert_eq (done->nstored + done->ndup + done->nstale, 0);
}

Test (writer, destroy_waits_for_the_batch_being_stored)
{
    s_add_result (1, 200, 1);
    jr_writer_submit (s_writer, &s_batch);
    jr_writer_destroy (&s_writer);  //  joins after the transaction
    uint8_t id[JR_ID_SIZE] = { 200 };
    id[6] = 0x40;
    jr_job_t *job = NULL;
    cr_assert_eq (jr_sink_get (s_sink, id, &job), 0, "the last result of the batch is stored");
    jr_job_destroy (&job);
}

Test (writer, wait_returns_the_stored_batch)
{
    s_add_result (1, 50, 1);
    jr_writer_submit (s_writer, &s_batch);
    jr_batch_t *done = jr_writer_wait (s_writer);
    cr_assert_eq (done, &s_batch);
    cr_assert_eq (done->nstored, 50);
    cr_assert_null (jr_writer_wait (s_writer), "nothing more to wait for");
}
