/*  test_broker.c - the broker's job table, queues, and its conversation with fake peers  */
#include "broker/broker.h"
#include "broker/jobtab.h"
#include "broker/queue.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/proto.h"
#include "tests/fakes/fake_peer.h"
#include <criterion/criterion.h>
#include <czmq.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

Test (jobtab, insert_find_remove_many)
{
    jr_jobtab_t *tab = jr_jobtab_new ();
    enum { N = 50000 };
    static jr_bjob_t *recs[N];
    for (int i = 0; i < N; i++) {
        jr_job_t job;
        jr_job_init (&job, "t");
        recs[i] = jr_bjob_new (&job, 0);
        jr_jobtab_insert (tab, recs[i]);
    }
    cr_assert_eq (jr_jobtab_size (tab), N);
    for (int i = 0; i < N; i++)
        cr_assert_eq (jr_jobtab_find (tab, recs[i]->id), recs[i]);
    for (int i = 0; i < N; i += 2) {
        cr_assert (jr_jobtab_remove (tab, recs[i]));
        cr_assert_not (jr_jobtab_remove (tab, recs[i]));
        jr_bjob_destroy (&recs[i]);
    }
    cr_assert_eq (jr_jobtab_size (tab), N / 2);
    for (int i = 1; i < N; i += 2)
        cr_assert_eq (jr_jobtab_find (tab, recs[i]->id), recs[i], "lost %d after removals", i);
    uint8_t absent[JR_ID_SIZE] = { 1, 2, 3 };
    cr_assert_null (jr_jobtab_find (tab, absent));
    jr_jobtab_destroy (&tab);
}

//  Ids that share their first 8 bytes share a hash: one long probe run,
//  told apart by the rest of the id, across growth and removals.
Test (jobtab, same_hash_ids_stay_apart)
{
    jr_jobtab_t *tab = jr_jobtab_new ();
    enum { N = 3000 };
    static jr_bjob_t *recs[N];
    for (int i = 0; i < N; i++) {
        jr_job_t job;
        jr_job_init (&job, "t");
        memset (job.id, 0xAB, 8);
        job.id[14] = (uint8_t)(i >> 8);
        job.id[15] = (uint8_t)i;
        recs[i] = jr_bjob_new (&job, 0);
        jr_jobtab_insert (tab, recs[i]);
    }
    for (int i = 0; i < N; i += 3) {
        cr_assert (jr_jobtab_remove (tab, recs[i]));
        jr_bjob_destroy (&recs[i]);
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq (jr_jobtab_find (tab, recs[i] ? recs[i]->id : (uint8_t[JR_ID_SIZE]){ 0 }),
                      recs[i], "id %d", i);
    uint8_t absent[JR_ID_SIZE];
    memset (absent, 0xAB, sizeof absent);
    cr_assert_null (jr_jobtab_find (tab, absent));
    jr_jobtab_destroy (&tab);
}

Test (queue, delayed_by_not_before_then_arrival)
{
    jr_queue_t queue = { .by_due = true };
    int64_t at[] = { 30, 10, 20, 10, 5 };
    jr_bjob_t *recs[5];
    for (int i = 0; i < 5; i++) {
        jr_job_t job;
        jr_job_init (&job, "t");
        job.priority = 9 - i;  //  ignored by this order
        recs[i] = jr_bjob_new (&job, 0);
        recs[i]->seq = (uint64_t)i;
        recs[i]->due_us = at[i];
        jr_queue_push (&queue, recs[i]);
    }
    cr_assert_eq (jr_queue_peek (&queue), recs[4]);
    int order[] = { 4, 1, 3, 2, 0 };
    for (int i = 0; i < 5; i++)
        cr_assert_eq (jr_queue_pop (&queue), recs[order[i]], "position %d", i);
    cr_assert_null (jr_queue_peek (&queue));
    for (int i = 0; i < 5; i++)
        jr_bjob_destroy (&recs[i]);
    jr_queue_free (&queue);
}

Test (queue, priority_then_arrival)
{
    jr_queue_t queue = { 0 };
    int prios[] = { 0, 5, 0, 5, -1, 9, 0 };
    jr_bjob_t *recs[7];
    for (int i = 0; i < 7; i++) {
        jr_job_t job;
        jr_job_init (&job, "t");
        job.priority = prios[i];
        recs[i] = jr_bjob_new (&job, 0);
        recs[i]->seq = (uint64_t)i;
        jr_queue_push (&queue, recs[i]);
    }
    cr_assert (jr_queue_remove (&queue, recs[6]));
    int order[] = { 5, 1, 3, 0, 2, 4 };
    for (int i = 0; i < 6; i++)
        cr_assert_eq (jr_queue_pop (&queue), recs[order[i]], "position %d", i);
    cr_assert_null (jr_queue_pop (&queue));
    for (int i = 0; i < 7; i++)
        jr_bjob_destroy (&recs[i]);
    jr_queue_free (&queue);
}

//  -------------------------------------------------------------------------
//  A broker on a thread, with a fake worker and client over inproc.

static jr_broker_t *s_broker;
//  Endpoints new for each start: a restarted broker must not race the
//  previous one's sockets, which libzmq closes in the background.
static char s_clients[64], s_workers[64];
static pthread_t s_thread;

static void *
s_run (void *arg)
{
    jr_broker_run (arg);
    return NULL;
}

//  The tests' broker: quick heartbeats and retries, inproc endpoints.
static jr_broker_config_t
s_config (int liveness_ms, const char *journal)
{
    jr_broker_config_t config = JR_BROKER_CONFIG_DEFAULT;
    config.journal = journal;
    config.retry_base_ms = 1;
    config.retry_max_ms = 1;
    static int starts;
    starts++;
    snprintf (s_clients, sizeof s_clients, "inproc://clients-%d", starts);
    snprintf (s_workers, sizeof s_workers, "inproc://workers-%d", starts);
    config.clients = s_clients;
    config.workers = s_workers;
    config.heartbeat_ms = 100;
    config.liveness_ms = liveness_ms;
    return config;
}

static void
s_launch (const jr_broker_config_t *config)
{
    jr_log_init ("broker", JR_LOG_WARN);
    s_broker = jr_broker_new (config);
    cr_assert_not_null (s_broker);
    pthread_create (&s_thread, NULL, s_run, s_broker);
}

static void
s_start_with (int liveness_ms, const char *journal)
{
    jr_broker_config_t config = s_config (liveness_ms, journal);
    s_launch (&config);
}

static void
s_start (int liveness_ms)
{
    s_start_with (liveness_ms, NULL);
}

static void
s_stop (void)
{
    jr_broker_stop (s_broker);
    pthread_join (s_thread, NULL);
    jr_broker_destroy (&s_broker);
}

Test (broker, dispatch_never_exceeds_credit)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_fake_submit (client, msg, 5, 0, "echo");
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", 2);
    jr_mark_t first;
    cr_assert_eq (jr_fake_drain_dispatch (worker, msg, 300, &first), 2);
    //  Each DONE gives one credit back.
    jr_msg_reset (msg, JR_MSG_DONE);
    jr_msg_add_mark (msg, first.id, first.attempt, JR_STATE_SUCCEEDED);
    jr_fake_send (worker, msg);
    cr_assert_eq (jr_fake_drain_dispatch (worker, msg, 300, NULL), 1);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

Test (broker, free_gives_the_slot_back_once)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_fake_submit (client, msg, 5, 0, "echo");
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", 1);
    jr_mark_t first;
    cr_assert_eq (jr_fake_drain_dispatch (worker, msg, 300, &first), 1);
    //  Out of its executor, the result not stored yet: the slot comes back.
    jr_msg_reset (msg, JR_MSG_FREE);
    jr_msg_add_mark (msg, first.id, first.attempt, 0);
    jr_fake_send (worker, msg);
    jr_fake_send (worker, msg);  //  said twice, counted once
    jr_mark_t second;
    cr_assert_eq (jr_fake_drain_dispatch (worker, msg, 300, &second), 1);
    //  Its DONE later gives nothing more: the second job still runs.
    jr_msg_reset (msg, JR_MSG_DONE);
    jr_msg_add_mark (msg, first.id, first.attempt, JR_STATE_SUCCEEDED);
    jr_fake_send (worker, msg);
    cr_assert_eq (jr_fake_drain_dispatch (worker, msg, 300, NULL), 0);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

Test (broker, higher_priority_first_and_unserved_task_waits)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_fake_submit (client, msg, 1, 0, "echo");
    jr_fake_submit (client, msg, 1, 0, "other");
    jr_fake_submit (client, msg, 1, 9, "echo");
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", 1);
    zframe_t *frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->njobs, 1);
    cr_assert_eq (msg->jobs[0].priority, 9);
    cr_assert_eq (msg->jobs[0].attempt, 1);
    cr_assert_gt (msg->jobs[0].dispatched_us, 0);
    zframe_destroy (&frame);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

Test (broker, silent_worker_is_forgotten_and_its_job_requeued)
{
    s_start (300);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_fake_submit (client, msg, 1, 0, "echo");
    zsock_t *silent = jr_fake_worker (s_workers, msg, "echo", 1);
    zframe_t *frame = jr_fake_expect_ex (silent, msg, JR_MSG_DISPATCH, 2000, false);
    cr_assert_not_null (frame);
    zframe_destroy (&frame);
    zsock_t *other = jr_fake_worker (s_workers, msg, "echo", 1);
    frame = jr_fake_expect (other, msg, JR_MSG_DISPATCH, 5000);
    cr_assert_not_null (frame, "the job never came back");
    cr_assert_eq (msg->jobs[0].attempt, 2);
    zframe_destroy (&frame);
    //  The forgotten worker is told to introduce itself again.
    jr_msg_reset (msg, JR_MSG_HEARTBEAT);
    jr_fake_send (silent, msg);
    frame = jr_fake_expect_ex (silent, msg, JR_MSG_ERROR, 2000, false);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->code, JR_EUNKNOWN_PEER);
    zframe_destroy (&frame);
    zsock_destroy (&silent);
    zsock_destroy (&other);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

Test (broker, malformed_and_status)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    zsock_send (client, "b", "\x93\x01\x02", (size_t)3);
    zframe_t *frame = jr_fake_expect (client, msg, JR_MSG_ERROR, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->code, JR_EMALFORMED);
    zframe_destroy (&frame);
    jr_fake_submit (client, msg, 1, 0, "echo");
    uint8_t id[JR_ID_SIZE];
    memcpy (id, msg->marks[0].id, JR_ID_SIZE);
    jr_msg_reset (msg, JR_MSG_STATUS);
    msg->tag = 3;
    jr_msg_add_mark (msg, id, 0, 0);
    jr_msg_add_mark (msg, (uint8_t[JR_ID_SIZE]){ 9 }, 0, 0);
    jr_fake_send (client, msg);
    frame = jr_fake_expect (client, msg, JR_MSG_STATE, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->nmarks, 2);
    cr_assert_eq (msg->marks[0].code, JR_STATE_QUEUED);
    cr_assert_eq (msg->marks[1].code, JR_STATE_UNKNOWN);
    zframe_destroy (&frame);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  -------------------------------------------------------------------------
//  With a journal: restarts, idempotent submit, retries, dead jobs, cancel

static char s_dir[64];

static void
s_journal_dir (void)
{
    strcpy (s_dir, "/tmp/jr-broker-XXXXXX");
    cr_assert_not_null (mkdtemp (s_dir));
}

Test (broker_journal, restart_requeues_running_with_next_attempt)
{
    s_journal_dir ();
    s_start_with (5000, s_dir);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_fake_submit (client, msg, 3, 0, "echo");
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", 1);
    zframe_t *frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_not_null (frame);
    uint8_t running[JR_ID_SIZE];
    memcpy (running, msg->jobs[0].id, JR_ID_SIZE);
    zframe_destroy (&frame);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    s_stop ();

    s_start_with (5000, s_dir);
    cr_assert_eq (jr_broker_live (s_broker), 3);
    client = zsock_new_dealer (s_clients);
    int state;
    uint32_t attempt;
    jr_fake_status (client, msg, running, JR_MSG_STATUS, &state, &attempt);
    cr_assert_eq (state, JR_STATE_QUEUED);
    worker = jr_fake_worker (s_workers, msg, "echo", 1);
    frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_not_null (frame);
    //  The job that was running before goes first (arrival order), as attempt 2.
    cr_assert (memcmp (msg->jobs[0].id, running, JR_ID_SIZE) == 0);
    cr_assert_eq (msg->jobs[0].attempt, 2);
    zframe_destroy (&frame);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

Test (broker_journal, same_id_three_times_is_one_job)
{
    s_journal_dir ();
    s_start_with (5000, s_dir);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_job_t job;
    jr_job_init (&job, "echo");
    for (int round = 0; round < 3; round++) {
        jr_msg_reset (msg, JR_MSG_SUBMIT);
        *jr_msg_add_job (msg) = job;
        jr_fake_send (client, msg);
        zframe_t *frame = jr_fake_expect (client, msg, JR_MSG_ACCEPTED, 2000);
        cr_assert_not_null (frame);
        cr_assert_eq (msg->marks[0].code, 0);
        zframe_destroy (&frame);
        if (round == 1) {  //  run it between the second and third submit
            zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", 4);
            frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 2000);
            cr_assert_not_null (frame);
            cr_assert_eq (msg->njobs, 1);
            zframe_destroy (&frame);
            jr_fake_done (worker, msg, job.id, 1, JR_STATE_SUCCEEDED);
            int state;
            uint32_t attempt;
            do
                jr_fake_status (client, msg, job.id, JR_MSG_STATUS, &state, &attempt);
            while (state != JR_STATE_SUCCEEDED);
            zsock_destroy (&worker);
        }
    }
    cr_assert_eq (jr_broker_live (s_broker), 0, "the third submit made no new job");
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

Test (broker_journal, failures_retry_then_dead_then_retry_and_cancel)
{
    s_journal_dir ();
    s_start_with (5000, s_dir);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_fake_submit (client, msg, 1, 0, "echo");
    uint8_t id[JR_ID_SIZE];
    memcpy (id, msg->marks[0].id, JR_ID_SIZE);
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", 1);
    for (uint32_t attempt = 1; attempt <= 3; attempt++) {
        zframe_t *frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 5000);
        cr_assert_not_null (frame, "attempt %u never came", attempt);
        cr_assert_eq (msg->jobs[0].attempt, attempt);
        cr_assert_eq (msg->jobs[0].max_attempts, 3);
        zframe_destroy (&frame);
        jr_fake_done (worker, msg, id, attempt, attempt < 3 ? JR_STATE_SCHEDULED : JR_STATE_DEAD);
    }
    int state;
    uint32_t attempt;
    do
        jr_fake_status (client, msg, id, JR_MSG_STATUS, &state, &attempt);
    while (state != JR_STATE_DEAD);
    jr_msg_reset (msg, JR_MSG_LIST);
    msg->code = JR_STATE_DEAD;
    jr_fake_send (client, msg);
    zframe_t *frame = jr_fake_expect (client, msg, JR_MSG_STATE, 2000);
    cr_assert_eq (msg->nmarks, 1);
    cr_assert (memcmp (msg->marks[0].id, id, JR_ID_SIZE) == 0);
    zframe_destroy (&frame);
    //  Dead survives a restart.
    zsock_destroy (&worker);
    zsock_destroy (&client);
    s_stop ();
    s_start_with (5000, s_dir);
    client = zsock_new_dealer (s_clients);
    jr_fake_status (client, msg, id, JR_MSG_STATUS, &state, &attempt);
    cr_assert_eq (state, JR_STATE_DEAD);
    //  jr retry: once more, as attempt 4.
    jr_fake_status (client, msg, id, JR_MSG_RETRY, &state, &attempt);
    cr_assert_eq (state, JR_STATE_QUEUED);
    worker = jr_fake_worker (s_workers, msg, "echo", 1);
    frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->jobs[0].attempt, 4);
    zframe_destroy (&frame);
    //  Cancel while it runs: the worker is told, and the job ends cancelled.
    jr_fake_status (client, msg, id, JR_MSG_CANCEL, &state, &attempt);
    cr_assert_eq (state, JR_STATE_CANCELLED);
    frame = jr_fake_expect (worker, msg, JR_MSG_CANCEL, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->marks[0].attempt, 4);
    zframe_destroy (&frame);
    //  The worker and the broker stop before its DONE arrives: after the
    //  restart the job is still cancelled, and its CANCELLED record goes to
    //  the next worker as a new attempt that is stored, not run.
    zsock_destroy (&worker);
    zsock_destroy (&client);
    s_stop ();
    s_start_with (5000, s_dir);
    client = zsock_new_dealer (s_clients);
    jr_fake_status (client, msg, id, JR_MSG_STATUS, &state, &attempt);
    cr_assert_eq (state, JR_STATE_CANCELLED);
    worker = jr_fake_worker (s_workers, msg, "other", 1);
    frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_not_null (frame, "the cancelled job's record goes to any worker");
    cr_assert_eq (msg->jobs[0].attempt, 5);
    cr_assert_eq (msg->jobs[0].state, JR_STATE_CANCELLED);
    zframe_destroy (&frame);
    jr_fake_done (worker, msg, id, 5, JR_STATE_CANCELLED);
    jr_fake_status (client, msg, id, JR_MSG_STATUS, &state, &attempt);  //  after the DONE
    cr_assert_eq (state, JR_STATE_CANCELLED);
    cr_assert_eq (jr_broker_live (s_broker), 0);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    s_stop ();
    //  ... and stays cancelled after a restart.
    s_start_with (5000, s_dir);
    client = zsock_new_dealer (s_clients);
    jr_fake_status (client, msg, id, JR_MSG_STATUS, &state, &attempt);
    cr_assert_eq (state, JR_STATE_CANCELLED);
    cr_assert_eq (jr_broker_live (s_broker), 0);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

Test (broker_journal, cancel_queued_never_runs_and_bye_hands_back)
{
    s_journal_dir ();
    s_start_with (5000, s_dir);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_fake_submit (client, msg, 2, 0, "echo");
    uint8_t first[JR_ID_SIZE], second[JR_ID_SIZE];
    memcpy (first, msg->marks[0].id, JR_ID_SIZE);
    memcpy (second, msg->marks[1].id, JR_ID_SIZE);
    int state;
    uint32_t attempt;
    jr_fake_status (client, msg, first, JR_MSG_CANCEL, &state, &attempt);
    cr_assert_eq (state, JR_STATE_CANCELLED);
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", 4);
    zframe_t *frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_eq (msg->njobs, 2, "got %u, first state %d", msg->njobs, msg->jobs[0].state);
    //  The cancelled job comes first, only to be stored as CANCELLED.
    cr_assert (memcmp (msg->jobs[0].id, first, JR_ID_SIZE) == 0);
    cr_assert_eq (msg->jobs[0].state, JR_STATE_CANCELLED);
    cr_assert (memcmp (msg->jobs[1].id, second, JR_ID_SIZE) == 0);
    cr_assert_eq (msg->jobs[1].state, JR_STATE_RUNNING);
    zframe_destroy (&frame);
    jr_fake_done (worker, msg, first, 1, JR_STATE_CANCELLED);
    //  The worker drains and hands the job back: it is queued again at once.
    jr_msg_reset (msg, JR_MSG_BYE);
    jr_fake_send (worker, msg);
    jr_fake_done (worker, msg, second, 1, JR_STATE_QUEUED);
    zsock_t *other = jr_fake_worker (s_workers, msg, "echo", 1);
    frame = jr_fake_expect (other, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_not_null (frame);
    cr_assert (memcmp (msg->jobs[0].id, second, JR_ID_SIZE) == 0);
    cr_assert_eq (msg->jobs[0].attempt, 2);
    zframe_destroy (&frame);
    zsock_destroy (&worker);
    zsock_destroy (&other);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  -------------------------------------------------------------------------
//  Hostile or buggy peers: each test fails on a broker without its guard

Test (broker_guard, done_from_a_peer_that_does_not_hold_the_attempt_changes_nothing)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    enum { N = 50 };
    uint8_t ids[N][JR_ID_SIZE];
    cr_assert_eq (jr_fake_submit_ids (client, msg, N, "echo", 0, ids), N);
    //  A connection that never said READY, and a worker that serves another
    //  task, each claim every queued job succeeded, at attempts 0 and 1.
    zsock_t *stranger = zsock_new_dealer (s_workers);
    zsock_t *other = jr_fake_worker (s_workers, msg, "other", 1);
    for (uint32_t attempt = 0; attempt < 2; attempt++) {
        jr_msg_reset (msg, JR_MSG_DONE);
        for (int i = 0; i < N; i++)
            jr_msg_add_mark (msg, ids[i], attempt, JR_STATE_SUCCEEDED);
        jr_fake_send (stranger, msg);
        jr_fake_send (other, msg);
    }
    zframe_t *frame = jr_fake_expect (stranger, msg, JR_MSG_ERROR, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->code, JR_EUNKNOWN_PEER);
    zframe_destroy (&frame);
    for (int i = 0; i < N; i++) {
        int state;
        uint32_t attempt;
        jr_fake_status (client, msg, ids[i], JR_MSG_STATUS, &state, &attempt);
        cr_assert_eq (state, JR_STATE_QUEUED, "job %d ended by a peer that never held it", i);
    }
    //  The real worker still gets every job.
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", N);
    cr_assert_eq (jr_fake_drain_dispatch (worker, msg, 500, NULL), N);
    //  Another worker claims the attempts the real one holds.
    jr_msg_reset (msg, JR_MSG_DONE);
    for (int i = 0; i < N; i++)
        jr_msg_add_mark (msg, ids[i], 1, JR_STATE_SUCCEEDED);
    jr_fake_send (other, msg);
    zclock_sleep (100);
    for (int i = 0; i < N; i++) {
        int state;
        uint32_t attempt;
        jr_fake_status (client, msg, ids[i], JR_MSG_STATUS, &state, &attempt);
        cr_assert_eq (state, JR_STATE_RUNNING, "job %d ended by a worker that does not hold it", i);
    }
    zsock_destroy (&worker);
    zsock_destroy (&other);
    zsock_destroy (&stranger);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

Test (broker_guard, invalid_and_over_limit_jobs_get_their_own_marks)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    char long_task[JR_MAX_NAME + 2];
    memset (long_task, 't', sizeof long_task - 1);
    long_task[sizeof long_task - 1] = 0;
    jr_msg_reset (msg, JR_MSG_SUBMIT);
    msg->tag = 8;
    const char *tasks[] = { "echo", "echo", "echo", long_task, "echo" };
    for (int i = 0; i < 5; i++)
        jr_job_init (jr_msg_add_job (msg), tasks[i]);
    memset (msg->jobs[1].id, 0, JR_ID_SIZE);  //  nil id
    msg->jobs[2].created_us = 0;              //  no stamp; [3]: 257 bytes
    jr_fake_send (client, msg);
    zframe_t *frame = jr_fake_expect (client, msg, JR_MSG_ACCEPTED, 2000);
    cr_assert_not_null (frame, "the whole SUBMIT was refused");
    cr_assert_eq (msg->tag, 8);
    cr_assert_eq (msg->nmarks, 5);
    int want[] = { 0, JR_EINVALID, JR_EINVALID, JR_ETOOLARGE, 0 };
    for (int i = 0; i < 5; i++)
        cr_assert_eq (msg->marks[i].code, want[i], "job %d: %d", i, msg->marks[i].code);
    zframe_destroy (&frame);
    cr_assert_eq (jr_broker_live (s_broker), 2);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

Test (broker_guard, queued_bytes_are_bounded)
{
    jr_broker_config_t config = s_config (5000, NULL);
    config.max_queued_bytes = 3 << 20;
    s_launch (&config);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    cr_assert_eq (jr_fake_submit_ids (client, msg, 5, "echo", JR_MAX_VARS, NULL), 3);
    cr_assert_eq (msg->marks[3].code, JR_EQUEUE_FULL);
    cr_assert_eq (jr_fake_submit_ids (client, msg, 1, "echo", 100, NULL), 0, "still full");
    //  One job done: room for one more.
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", 1);
    jr_mark_t first;
    cr_assert_eq (jr_fake_drain_dispatch (worker, msg, 300, &first), 1);
    jr_fake_done (worker, msg, first.id, first.attempt, JR_STATE_SUCCEEDED);
    int accepted = 0;
    for (int tries = 0; tries < 50 && !accepted; tries++)
        accepted = jr_fake_submit_ids (client, msg, 1, "echo", JR_MAX_VARS, NULL);
    cr_assert_eq (accepted, 1);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

Test (broker_guard, dispatch_batches_are_bounded_by_bytes)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    enum { N = 400 };  //  400 x 200 KB: more than one frame holds
    for (int i = 0; i < N / 100; i++)
        cr_assert_eq (jr_fake_submit_ids (client, msg, 100, "echo", 200 << 10, NULL), 100);
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", 512);
    int got = 0, batches = 0;
    zframe_t *frame;
    while (got < N && (frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 5000))) {
        cr_assert_lt (zframe_size (frame), JR_MAX_FRAME);
        got += (int)msg->njobs;
        batches++;
        zframe_destroy (&frame);
    }
    cr_assert_eq (got, N, "dispatched %d of %d", got, N);
    cr_assert_gt (batches, 1);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  Process CPU time, us.
static int64_t
s_cpu_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

Test (broker_guard, idle_with_queued_jobs_and_no_worker)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_fake_submit_ids (client, msg, 10, "echo", 0, NULL);
    zclock_sleep (200);
    int64_t cpu = s_cpu_us ();
    zclock_sleep (1000);
    cpu = s_cpu_us () - cpu;
    cr_assert_lt (cpu, 300000, "the broker spun: %" PRId64 " us of CPU in 1 s idle", cpu);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

Test (broker_guard, retry_timer_ignores_wall_clock_steps)
{
    jr_broker_config_t config = s_config (5000, NULL);
    config.retry_base_ms = config.retry_max_ms = 500;
    s_launch (&config);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    uint8_t id[1][JR_ID_SIZE];
    jr_fake_submit_ids (client, msg, 1, "echo", 0, id);
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", 1);
    cr_assert_eq (jr_fake_drain_dispatch (worker, msg, 200, NULL), 1);
    jr_fake_done (worker, msg, id[0], 1, JR_STATE_SCHEDULED);
    int state;
    uint32_t attempt;
    do
        jr_fake_status (client, msg, id[0], JR_MSG_STATUS, &state, &attempt);
    while (state == JR_STATE_RUNNING);
    cr_assert_eq (state, JR_STATE_SCHEDULED);
    jr_clock_wall_shift_us (-3600LL * 1000000);  //  the clock steps back an hour
    zframe_t *frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 5000);
    jr_clock_wall_shift_us (3600LL * 1000000);
    cr_assert_not_null (frame, "the retry waits for the wall clock");
    cr_assert_eq (msg->jobs[0].attempt, 2);
    zframe_destroy (&frame);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

Test (broker_guard, errors_are_never_answered_and_strays_are_invalid)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    zsock_t *worker = zsock_new_dealer (s_workers);
    jr_msg_t error = { .type = JR_MSG_ERROR, .tag = 4, .code = JR_EINVALID };
    jr_fake_send (client, &error);
    jr_fake_send (worker, &error);
    //  An ERROR of another version, which does not decode, is not answered
    //  either: [0x4A52, 1, ERROR, 4, INVALID, ""].
    static const uint8_t old[] = { 0x96, 0xcd, 0x4a, 0x52, 0x01, 0x0d, 0x04, 0xfb, 0xa0 };
    zsock_send (client, "b", old, sizeof old);
    zsock_send (worker, "b", old, sizeof old);
    //  A FETCH has no business on the client socket: INVALID, and tag 0,
    //  not the tag of another conversation.
    jr_msg_reset (msg, JR_MSG_FETCH);
    msg->tag = 99;
    jr_fake_send (client, msg);
    zframe_t *frame = jr_fake_expect (client, msg, JR_MSG_ERROR, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->code, JR_EINVALID, "an ERROR was answered, or: %s", jr_errname (msg->code));
    cr_assert_eq (msg->tag, 0, "tag %" PRIu64, msg->tag);
    zframe_destroy (&frame);
    jr_msg_reset (msg, JR_MSG_HEARTBEAT);
    jr_fake_send (worker, msg);
    frame = jr_fake_expect (worker, msg, JR_MSG_ERROR, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->code, JR_EUNKNOWN_PEER, "the ERROR was answered: %s",
                  jr_errname (msg->code));
    zframe_destroy (&frame);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

static long
s_rss_kb (void)
{
    FILE *f = fopen ("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets (line, sizeof line, f))
        if (sscanf (line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose (f);
    return kb;
}

Test (broker_guard, a_client_that_never_reads_cannot_pile_up_replies)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    for (int i = 0; i < 10; i++)
        jr_fake_submit_ids (client, msg, 10000, "echo", 0, NULL);
    long before = s_rss_kb ();
    zsock_t *lazy = zsock_new_dealer (s_clients);
    zsock_set_rcvhwm (lazy, 0);  //  no limit of its own: only the broker's holds
    jr_msg_reset (msg, JR_MSG_LIST);
    msg->code = JR_STATE_QUEUED;
    for (int i = 0; i < 300; i++)  //  300 answers of 100000 ids: 690 MB unbounded
        jr_fake_send (lazy, msg);
    //  The broker reads its peers in turn: once it answers the last of as
    //  many small LISTs from another client, it has read all of these.
    msg->code = JR_STATE_SCHEDULED;
    for (int i = 0; i <= 300; i++) {
        msg->tag = i == 300 ? 99 : 1;
        jr_fake_send (client, msg);
    }
    zframe_t *frame;
    while ((frame = jr_fake_expect (client, msg, JR_MSG_STATE, 30000)) && msg->tag != 99)
        zframe_destroy (&frame);
    cr_assert_not_null (frame);
    zframe_destroy (&frame);
    long grown_mb = (s_rss_kb () - before) / 1024;
    cr_assert_lt (grown_mb, 300, "unread replies took %ld MB", grown_mb);
    zsock_destroy (&lazy);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  A journal on a small tmpfs of its own, to fill; false where mounting is
//  not allowed (not root).
static bool
s_small_disk (char *dir)
{
    strcpy (dir, "/tmp/jr-full-XXXXXX");
    cr_assert_not_null (mkdtemp (dir));
    char cmd[128];
    snprintf (cmd, sizeof cmd, "mount -t tmpfs -o size=4m tmpfs %s 2>/dev/null", dir);
    if (system (cmd) == 0)
        return true;
    rmdir (dir);
    *dir = 0;
    return false;
}

static void
s_fill_disk (const char *dir, bool full)
{
    char cmd[160];
    if (full)
        snprintf (cmd, sizeof cmd, "dd if=/dev/zero of=%s/filler bs=64k 2>/dev/null; true", dir);
    else
        snprintf (cmd, sizeof cmd, "rm -f %s/filler", dir);
    cr_assert_eq (system (cmd), 0);
}

static char s_mounted[64];

//  Runs even when the test fails: the broker stops, and the mount goes.
static void
s_unmount (void)
{
    if (s_broker)
        s_stop ();
    char cmd[256];
    snprintf (cmd, sizeof cmd, "(umount %s || umount -l %s) && rmdir %s", s_mounted, s_mounted,
              s_mounted);
    if (*s_mounted && system (cmd) != 0)
        fprintf (stderr, "cannot unmount %s\n", s_mounted);
}

Test (broker_guard, a_cancel_the_journal_refused_changes_nothing, .fini = s_unmount)
{
    char *dir = s_mounted;
    if (!s_small_disk (dir))
        cr_skip_test ("needs root to mount a small tmpfs");
    s_start_with (5000, dir);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    enum { N = 200 };  //  their cancel records fill more than the page the journal ends in
    uint8_t ids[N][JR_ID_SIZE];
    cr_assert_eq (jr_fake_submit_ids (client, msg, N, "echo", 0, ids), N);
    s_fill_disk (dir, true);
    jr_msg_reset (msg, JR_MSG_CANCEL);
    msg->tag = 21;
    for (int i = 0; i < N; i++)
        jr_msg_add_mark (msg, ids[i], 0, 0);
    jr_fake_send (client, msg);
    zframe_t *frame = jr_fake_expect (client, msg, JR_MSG_ERROR, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->code, JR_EDISK_FULL);
    cr_assert_eq (msg->tag, 21);
    zframe_destroy (&frame);
    s_fill_disk (dir, false);
    for (int restarted = 0; restarted < 2; restarted++) {
        for (int i = 0; i < N; i++) {
            int state;
            uint32_t attempt;
            jr_fake_status (client, msg, ids[i], JR_MSG_STATUS, &state, &attempt);
            cr_assert_eq (state, JR_STATE_QUEUED, "job %d: state %d", i, state);
        }
        zsock_destroy (&client);
        s_stop ();
        s_start_with (5000, dir);
        client = zsock_new_dealer (s_clients);
    }
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", N);
    cr_assert_eq (jr_fake_drain_dispatch (worker, msg, 300, NULL), N);
    cr_assert_eq (msg->jobs[0].state, JR_STATE_RUNNING);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

Test (broker_guard, an_oversized_frame_drops_the_connection_unanswered)
{
    jr_broker_config_t config = s_config (5000, NULL);
    int port = 20000 + (int)(getpid () % 20000);
    char endpoint[64], connect[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    snprintf (connect, sizeof connect, "tcp://127.0.0.1:%d", port);
    config.clients = endpoint;
    s_launch (&config);
    zsock_t *client = zsock_new_dealer (connect);
    size_t size = JR_MAX_FRAME + 1;
    uint8_t *big = calloc (1, size);
    big[0] = 0x93;  //  whatever it holds, it is too large to read
    zframe_t *frame = zframe_new (big, size);
    free (big);
    cr_assert_eq (zframe_send (&frame, client, 0), 0);
    jr_msg_t *msg = jr_msg_new ();
    zsock_set_rcvtimeo (client, 1500);
    frame = zframe_recv (client);
    cr_assert_null (frame, "an oversized frame was answered (%zu bytes)",
                    frame ? zframe_size (frame) : 0);
    //  The connection comes back, and serves.
    jr_fake_submit (client, msg, 1, 0, "echo");
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  -------------------------------------------------------------------------
//  LIST serves the states the broker holds jobs in; resubmits change nothing

//  LIST(code): the STATE's marks, or the ERROR's code as a negative count.
static int
s_list (zsock_t *client, jr_msg_t *msg, int state)
{
    jr_msg_reset (msg, JR_MSG_LIST);
    msg->tag = 21;
    msg->code = state;
    jr_fake_send (client, msg);
    int64_t deadline = zclock_mono () + 2000;
    zframe_t *frame = NULL;
    while (!frame && zclock_mono () < deadline) {
        zsock_set_rcvtimeo (client, 2000);
        frame = zframe_recv (client);
    }
    cr_assert_not_null (frame);
    cr_assert_eq (jr_msg_decode (msg, zframe_data (frame), zframe_size (frame)), 0);
    zframe_destroy (&frame);
    cr_assert_eq (msg->tag, 21);
    if (msg->type == JR_MSG_ERROR)
        return msg->code;
    cr_assert_eq (msg->type, JR_MSG_STATE);
    return (int)msg->nmarks;
}

Test (broker, list_refuses_states_it_does_not_hold)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_fake_submit (client, msg, 2, 0, "echo");
    uint8_t done[JR_ID_SIZE];
    memcpy (done, msg->marks[0].id, JR_ID_SIZE);
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", 1);
    zframe_t *frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_not_null (frame);
    cr_assert (memcmp (msg->jobs[0].id, done, JR_ID_SIZE) == 0);
    zframe_destroy (&frame);
    jr_fake_done (worker, msg, done, 1, JR_STATE_SUCCEEDED);
    //  The second job runs now: the first is finished (remembered only).
    frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_not_null (frame);
    zframe_destroy (&frame);
    cr_assert_eq (s_list (client, msg, JR_STATE_RUNNING), 1);
    cr_assert_eq (s_list (client, msg, JR_STATE_QUEUED), 0);
    cr_assert_eq (s_list (client, msg, JR_STATE_SCHEDULED), 0);
    cr_assert_eq (s_list (client, msg, JR_STATE_DEAD), 0);
    int refused[] = {
        0, -1, 1000, JR_STATE_SUCCEEDED, JR_STATE_FAILED, JR_STATE_CANCELLED, JR_STATE_EXPIRED
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        cr_assert_eq (s_list (client, msg, refused[i]), JR_EINVALID, "state %d", refused[i]);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

Test (broker, resubmit_with_other_task_and_vars_changes_nothing)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    static const uint8_t first_vars[] = { 0x81, 0xA1, 'a', 0x01 };  //  {"a": 1}
    static const uint8_t other_vars[] = { 0x81, 0xA1, 'b', 0x02 };  //  {"b": 2}
    jr_job_t job;
    jr_job_init (&job, "echo");
    for (int round = 0; round < 2; round++) {
        jr_msg_reset (msg, JR_MSG_SUBMIT);
        jr_job_t *out = jr_msg_add_job (msg);
        *out = job;
        if (round == 1)
            out->task = (jr_bytes_t){ (const uint8_t *)"other", 5 };
        out->vars = round == 0 ? (jr_bytes_t){ first_vars, sizeof first_vars }
                               : (jr_bytes_t){ other_vars, sizeof other_vars };
        jr_fake_send (client, msg);
        zframe_t *frame = jr_fake_expect (client, msg, JR_MSG_ACCEPTED, 2000);
        cr_assert_not_null (frame);
        cr_assert_eq (msg->marks[0].code, 0, "round %d", round);
        zframe_destroy (&frame);
    }
    cr_assert_eq (jr_broker_live (s_broker), 1);
    //  A worker of the new task gets nothing; one of the first gets the first vars.
    zsock_t *other = jr_fake_worker (s_workers, msg, "other", 1);
    cr_assert_eq (jr_fake_drain_dispatch (other, msg, 300, NULL), 0);
    zsock_t *echo = jr_fake_worker (s_workers, msg, "echo", 1);
    zframe_t *frame = jr_fake_expect (echo, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->njobs, 1);
    cr_assert (memcmp (msg->jobs[0].id, job.id, JR_ID_SIZE) == 0);
    cr_assert_eq (msg->jobs[0].task.len, 4);
    cr_assert_eq (msg->jobs[0].vars.len, sizeof first_vars);
    cr_assert (memcmp (msg->jobs[0].vars.ptr, first_vars, sizeof first_vars) == 0);
    zframe_destroy (&frame);
    zsock_destroy (&echo);
    zsock_destroy (&other);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  -------------------------------------------------------------------------
//  The task table: bounded READYs, entries nothing uses are reused

static char s_names[1100][32];

//  A worker announcing n tasks named prefix-0 ... prefix-(n-1), each told
//  copies times.
static zsock_t *
s_worker_many (jr_msg_t *msg, const char *prefix, int n, int copies, uint32_t slots)
{
    zsock_t *sock = zsock_new_dealer (s_workers);
    const char **tasks = calloc ((size_t)(copies * n), sizeof *tasks);
    cr_assert_not_null (tasks);
    for (int i = 0; i < n; i++)
        snprintf (s_names[i], sizeof s_names[i], "%.16s-%d", prefix, i);
    for (int i = 0; i < copies * n; i++)
        tasks[i] = s_names[i % n];
    jr_fake_ready (sock, msg, "many", tasks, (size_t)(copies * n), slots);
    free (tasks);
    return sock;
}

//  Submit n jobs of tasks prefix-0 ... prefix-(n-1); the codes go to codes.
static void
s_submit_many (zsock_t *client, jr_msg_t *msg, const char *prefix, int n, int *codes,
               uint8_t (*ids)[JR_ID_SIZE])
{
    jr_msg_reset (msg, JR_MSG_SUBMIT);
    msg->tag = 8;
    for (int i = 0; i < n; i++) {
        snprintf (s_names[i], sizeof s_names[i], "%.16s-%d", prefix, i);
        jr_job_init (jr_msg_add_job (msg), s_names[i]);
    }
    jr_fake_send (client, msg);
    zframe_t *reply = jr_fake_expect (client, msg, JR_MSG_ACCEPTED, 5000);
    cr_assert_not_null (reply);
    cr_assert_eq (msg->nmarks, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        codes[i] = msg->marks[i].code;
        memcpy (ids[i], msg->marks[i].id, JR_ID_SIZE);
    }
    zframe_destroy (&reply);
}

Test (broker, ready_with_too_many_tasks_is_refused)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *worker = s_worker_many (msg, "t", 1025, 1, 1);
    zframe_t *frame = jr_fake_expect (worker, msg, JR_MSG_ERROR, 2000);
    cr_assert_not_null (frame, "a READY of 1025 tasks was taken");
    cr_assert_eq (msg->code, JR_EINVALID);
    zframe_destroy (&frame);
    zsock_destroy (&worker);
    //  1024 are served.
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_fake_submit (client, msg, 1, 0, "t-1023");
    worker = s_worker_many (msg, "t", 1024, 1, 1);
    frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->njobs, 1);
    zframe_destroy (&frame);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  More distinct task names over time than the table holds (65535): those
//  of workers gone and of jobs finished are given to new names, those of
//  jobs still held are not.
Test (broker, task_entries_nothing_uses_are_reused, .timeout = 60)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_fake_submit (client, msg, 1, 0, "keep");
    static int codes[1000];
    static uint8_t ids[1000][JR_ID_SIZE];
    char prefix[32];
    for (int round = 0; round < 50; round++) {
        //  A worker of 512 new tasks (each named twice) comes and goes.
        snprintf (prefix, sizeof prefix, "w%d", round);
        zsock_t *worker = s_worker_many (msg, prefix, 512, 2, 0);
        jr_msg_reset (msg, JR_MSG_BYE);
        jr_fake_send (worker, msg);
        jr_msg_reset (msg, JR_MSG_HEARTBEAT);
        jr_fake_send (worker, msg);
        zframe_t *frame = jr_fake_expect (worker, msg, JR_MSG_ERROR, 2000);
        cr_assert_not_null (frame, "round %d: the worker was not forgotten", round);
        cr_assert_eq (msg->code, JR_EUNKNOWN_PEER);
        zframe_destroy (&frame);
        zsock_destroy (&worker);
        //  1000 jobs of new tasks are accepted, then cancelled.
        snprintf (prefix, sizeof prefix, "s%d", round);
        s_submit_many (client, msg, prefix, 1000, codes, ids);
        jr_msg_reset (msg, JR_MSG_CANCEL);
        msg->tag = 9;
        for (int i = 0; i < 1000; i++) {
            cr_assert_eq (codes[i], 0, "round %d job %d refused", round, i);
            jr_msg_add_mark (msg, ids[i], 0, 0);
        }
        jr_fake_send (client, msg);
        frame = jr_fake_expect (client, msg, JR_MSG_STATE, 5000);
        cr_assert_not_null (frame);
        cr_assert_eq (msg->marks[0].code, JR_STATE_CANCELLED);
        zframe_destroy (&frame);
    }
    //  The queued job kept its task through all that. The cancelled jobs'
    //  records come first (to be stored, not run), then it.
    zsock_t *worker = jr_fake_worker (s_workers, msg, "keep", 10000);
    jr_msg_t *done = jr_msg_new ();
    bool kept = false;
    while (!kept) {
        zframe_t *frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 5000);
        cr_assert_not_null (frame, "the queued job never came");
        jr_msg_reset (done, JR_MSG_DONE);
        for (uint32_t i = 0; i < msg->njobs; i++) {
            jr_job_t *job = &msg->jobs[i];
            if (job->state == JR_STATE_CANCELLED)
                jr_msg_add_mark (done, job->id, job->attempt, JR_STATE_CANCELLED);
            else {
                cr_assert_eq (job->task.len, 4);
                cr_assert (memcmp (job->task.ptr, "keep", 4) == 0);
                kept = true;
            }
        }
        jr_fake_send (worker, done);
        zframe_destroy (&frame);
    }
    jr_msg_destroy (&done);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  -------------------------------------------------------------------------
//  Jobs of a task no worker serves wait, and STATUS says why

//  STATUS of one id: its state, and its note's text in text.
static int
s_status_note (zsock_t *client, jr_msg_t *msg, const uint8_t id[JR_ID_SIZE], char *text,
               size_t size)
{
    jr_msg_reset (msg, JR_MSG_STATUS);
    msg->tag = 12;
    jr_msg_add_mark (msg, id, 0, 0);
    jr_fake_send (client, msg);
    zframe_t *frame = jr_fake_expect (client, msg, JR_MSG_STATE, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->nmarks, 1);
    cr_assert_eq (msg->nnotes, 1);
    cr_assert_eq (msg->notes[0].value, 0);
    snprintf (text, size, "%.*s", (int)msg->notes[0].text.len,
              (const char *)msg->notes[0].text.ptr);
    int state = msg->marks[0].code;
    zframe_destroy (&frame);
    return state;
}

Test (broker, status_says_no_worker_serves_the_task)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_fake_submit (client, msg, 1, 0, "nobody");
    uint8_t id[JR_ID_SIZE];
    memcpy (id, msg->marks[0].id, JR_ID_SIZE);
    char text[300];
    cr_assert_eq (s_status_note (client, msg, id, text, sizeof text), JR_STATE_QUEUED);
    cr_assert_str_eq (text, "no worker serves task nobody");
    //  A worker of that task with no free slot: the job waits for a slot.
    zsock_t *worker = jr_fake_worker (s_workers, msg, "nobody", 0);
    do
        cr_assert_eq (s_status_note (client, msg, id, text, sizeof text), JR_STATE_QUEUED);
    while (*text);
    //  It leaves: nobody serves the task again.
    jr_msg_reset (msg, JR_MSG_BYE);
    jr_fake_send (worker, msg);
    do
        cr_assert_eq (s_status_note (client, msg, id, text, sizeof text), JR_STATE_QUEUED);
    while (!*text);
    cr_assert_str_eq (text, "no worker serves task nobody");
    //  A note carries at most 256 bytes: a long name is cut, whole UTF-8
    //  characters only ("x" then 127 2-byte "é": 22 + 1 + 2 * 116 = 255).
    static char longest[JR_MAX_NAME + 1] = "x";
    for (int i = 0; i < 127; i++)
        memcpy (longest + 1 + 2 * i, "\xc3\xa9", 2);
    jr_fake_submit (client, msg, 1, 0, longest);
    memcpy (id, msg->marks[0].id, JR_ID_SIZE);
    cr_assert_eq (s_status_note (client, msg, id, text, sizeof text), JR_STATE_QUEUED);
    cr_assert_eq (strlen (text), 255);
    cr_assert (strncmp (text, "no worker serves task x\xc3\xa9", 25) == 0);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  A retried job without a deadline has no lease on its next attempt: the
//  retry time it waited for is not taken for one.
Test (broker_guard, a_retried_job_without_deadline_keeps_its_next_attempt)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    uint8_t id[1][JR_ID_SIZE];
    jr_fake_submit_ids (client, msg, 1, "echo", 0, id);  //  timeout_ms 0
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", 1);
    cr_assert_eq (jr_fake_drain_dispatch (worker, msg, 200, NULL), 1);
    jr_fake_done (worker, msg, id[0], 1, JR_STATE_SCHEDULED);
    zframe_t *frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->jobs[0].attempt, 2);
    zframe_destroy (&frame);
    //  Heartbeat for a while: no CANCEL comes, the attempt stays current.
    frame = jr_fake_expect (worker, msg, JR_MSG_CANCEL, 500);
    cr_assert_null (frame, "attempt 2 was cancelled as if its lease ran out");
    int state;
    uint32_t attempt;
    jr_fake_status (client, msg, id[0], JR_MSG_STATUS, &state, &attempt);
    cr_assert_eq (state, JR_STATE_RUNNING);
    cr_assert_eq (attempt, 2);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  A cancelled running job that its worker hands back, or whose attempt
//  failed before the cancel reached it, still gets a CANCELLED record.
Test (broker_guard, a_cancelled_job_handed_back_still_gets_its_record)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    uint8_t ids[2][JR_ID_SIZE];
    jr_fake_submit_ids (client, msg, 2, "echo", 0, ids);
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", 2);
    cr_assert_eq (jr_fake_drain_dispatch (worker, msg, 200, NULL), 2);
    int state;
    uint32_t attempt;
    for (int i = 0; i < 2; i++) {
        jr_fake_status (client, msg, ids[i], JR_MSG_CANCEL, &state, &attempt);
        cr_assert_eq (state, JR_STATE_CANCELLED);
    }
    for (int i = 0; i < 2; i++) {  //  the worker is told to stop both
        zframe_t *frame = jr_fake_expect (worker, msg, JR_MSG_CANCEL, 2000);
        cr_assert_not_null (frame);
        zframe_destroy (&frame);
    }
    jr_fake_done (worker, msg, ids[0], 1, JR_STATE_QUEUED);     //  handed back, nothing stored
    jr_fake_done (worker, msg, ids[1], 1, JR_STATE_SCHEDULED);  //  stored SCHEDULED
    int records = 0;
    while (records < 2) {
        zframe_t *frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 2000);
        cr_assert_not_null (frame, "a cancelled job ended without its CANCELLED record");
        for (uint32_t i = 0; i < msg->njobs; i++, records++) {
            cr_assert_eq (msg->jobs[i].state, JR_STATE_CANCELLED);
            cr_assert_eq (msg->jobs[i].attempt, 2);
        }
        zframe_destroy (&frame);
    }
    //  Waiting for their records, they are CANCELLED to STATUS and in no LIST.
    jr_fake_status (client, msg, ids[0], JR_MSG_STATUS, &state, &attempt);
    cr_assert_eq (state, JR_STATE_CANCELLED);
    cr_assert_eq (s_list (client, msg, JR_STATE_QUEUED), 0);
    cr_assert_eq (s_list (client, msg, JR_STATE_RUNNING), 0);
    for (int i = 0; i < 2; i++)
        jr_fake_done (worker, msg, ids[i], 2, JR_STATE_CANCELLED);
    for (int tries = 0; tries < 100 && jr_broker_live (s_broker); tries++)
        zclock_sleep (10);
    cr_assert_eq (jr_broker_live (s_broker), 0);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  Replay frees the task entries of jobs that finished, as the live broker
//  did: a journal that saw more distinct task names over time than the
//  table holds still brings back every accepted job.
Test (broker_guard, replay_of_many_task_names_loses_no_job, .timeout = 120)
{
    s_journal_dir ();
    s_start_with (5000, s_dir);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    enum { N = 35000, BATCH = 5000 };
    static uint8_t ids[BATCH][JR_ID_SIZE];
    static char tasks[BATCH][32];  //  a job's task is a view: each its own buffer
    //  N jobs of distinct tasks are cancelled and their records stored ...
    zsock_t *worker = jr_fake_worker (s_workers, msg, "none", 10000);
    for (int b = 0; b < N / BATCH; b++) {
        jr_msg_reset (msg, JR_MSG_SUBMIT);
        for (int i = 0; i < BATCH; i++) {
            snprintf (tasks[i], sizeof tasks[i], "gone-%d", b * BATCH + i);
            jr_job_init (jr_msg_add_job (msg), tasks[i]);
            memcpy (ids[i], msg->jobs[i].id, JR_ID_SIZE);
        }
        jr_fake_send (client, msg);
        zframe_t *frame = jr_fake_expect (client, msg, JR_MSG_ACCEPTED, 5000);
        cr_assert_not_null (frame);
        zframe_destroy (&frame);
        jr_msg_reset (msg, JR_MSG_CANCEL);
        for (int i = 0; i < BATCH; i++)
            jr_msg_add_mark (msg, ids[i], 0, 0);
        jr_fake_send (client, msg);
        frame = jr_fake_expect (client, msg, JR_MSG_STATE, 5000);
        cr_assert_not_null (frame);
        zframe_destroy (&frame);
        for (int got = 0; got < BATCH;) {
            frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 5000);
            cr_assert_not_null (frame);
            jr_msg_t *done = jr_msg_new ();
            jr_msg_reset (done, JR_MSG_DONE);
            for (uint32_t i = 0; i < msg->njobs; i++, got++)
                jr_msg_add_mark (done, msg->jobs[i].id, msg->jobs[i].attempt, JR_STATE_CANCELLED);
            jr_fake_send (worker, done);
            jr_msg_destroy (&done);
            zframe_destroy (&frame);
        }
    }
    for (int tries = 0; tries < 500 && jr_broker_live (s_broker); tries++)
        zclock_sleep (10);
    cr_assert_eq (jr_broker_live (s_broker), 0);
    zsock_destroy (&worker);
    //  ... then N more of new names wait in the queue.
    for (int b = 0; b < N / BATCH; b++) {
        jr_msg_reset (msg, JR_MSG_SUBMIT);
        for (int i = 0; i < BATCH; i++) {
            snprintf (tasks[i], sizeof tasks[i], "kept-%d", b * BATCH + i);
            jr_job_init (jr_msg_add_job (msg), tasks[i]);
        }
        jr_fake_send (client, msg);
        zframe_t *frame = jr_fake_expect (client, msg, JR_MSG_ACCEPTED, 5000);
        cr_assert_not_null (frame);
        for (uint32_t i = 0; i < msg->nmarks; i++)
            cr_assert_eq (msg->marks[i].code, 0);
        zframe_destroy (&frame);
    }
    zsock_destroy (&client);
    s_stop ();
    s_start_with (5000, s_dir);
    cr_assert_eq (jr_broker_live (s_broker), N, "replay kept %zu of %d", jr_broker_live (s_broker),
                  N);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  -------------------------------------------------------------------------
//  Compaction beside the loop

static int s_started[2], s_release[2];  //  pipes: snapshot writer -> test, test -> writer

//  The snapshot writer says it started, then waits for the test's word.
static void
s_slow_snapshot (void)
{
    char byte = 1;
    if (write (s_started[1], &byte, 1) != 1 || read (s_release[0], &byte, 1) != 1)
        return;
}

static void
s_replay_nothing (const jr_rec_t *rec, void *arg)
{
    (void)rec;
    (void)arg;
}

//  A journal of n queued jobs with 1 MB of vars each.
static void
s_big_journal (int n)
{
    enum { SIZE = 1000000 };
    uint8_t *vars = calloc (1, SIZE + 8);
    cr_assert_not_null (vars);
    memcpy (vars, "\x81\xa1k\xc6", 4);  //  {"k": bin32}
    vars[4] = SIZE >> 24, vars[5] = (SIZE >> 16) & 0xff, vars[6] = (SIZE >> 8) & 0xff,
    vars[7] = SIZE & 0xff;
    jr_journal_t *journal = jr_journal_open (s_dir, JR_FSYNC_NEVER, 100, s_replay_nothing, NULL);
    cr_assert_not_null (journal);
    for (int i = 0; i < n; i++) {
        jr_job_t job;
        jr_job_init (&job, "big");
        jr_rec_t rec = { .type = JR_REC_ACCEPT,
                         .max_attempts = 3,
                         .task = { (const uint8_t *)"big", 3 },
                         .vars = { vars, SIZE + 8 } };
        memcpy (rec.id, job.id, JR_ID_SIZE);
        jr_journal_append (journal, &rec, false);
        cr_assert_eq (jr_journal_flush (journal), 0);
    }
    jr_journal_close (&journal);
    free (vars);
}

static bool
s_exists (uint64_t seq)
{
    char path[128];
    snprintf (path, sizeof path, "%s/journal-%016llu.log", s_dir, (unsigned long long)seq);
    return access (path, F_OK) == 0;
}

//  A compaction of 80 MB of live jobs, held up in its snapshot writer:
//  meanwhile the broker accepts a job and heartbeats a worker, and after
//  it the journal holds both the snapshot and that job.
Test (broker_journal, compaction_leaves_the_loop_running, .timeout = 60)
{
    s_journal_dir ();
    s_big_journal (80);  //  past 64 MiB: the first timer tick compacts
    cr_assert_eq (pipe (s_started), 0);
    cr_assert_eq (pipe (s_release), 0);
    jr_journal_set_snapshot_hook (s_slow_snapshot);
    s_start_with (5000, s_dir);
    struct pollfd started = { s_started[0], POLLIN, 0 };
    cr_assert_eq (poll (&started, 1, 10000), 1, "no compaction started");
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_fake_submit (client, msg, 1, 0, "late");
    zsock_t *worker = jr_fake_worker (s_workers, msg, "none", 1);
    zframe_t *frame = jr_fake_expect_ex (worker, msg, JR_MSG_HEARTBEAT, 2000, false);
    cr_assert_not_null (frame, "no heartbeat while the snapshot is written");
    zframe_destroy (&frame);
    cr_assert (s_exists (1), "the old journal stays until the snapshot is complete");
    char byte = 1;
    cr_assert_eq (write (s_release[1], &byte, 1), 1);
    while (s_exists (1))  //  the test's timeout bounds this
        usleep (10000);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    s_stop ();
    jr_journal_set_snapshot_hook (NULL);
    s_start_with (5000, s_dir);
    cr_assert_eq (jr_broker_live (s_broker), 81, "the snapshot and the job accepted meanwhile");
    jr_msg_destroy (&msg);
    s_stop ();
    char cmd[128];  //  80 MB: not left in /tmp
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_dir);
    cr_assert_eq (system (cmd), 0);
}

//  -------------------------------------------------------------------------
//  STATUS says task and worker; LIST pages in id order, each id once

//  What STATUS says of one id.
typedef struct {
    int state;
    uint32_t attempt;
    char task[JR_MAX_NAME + 1];
    char worker[JR_MAX_WORKER + 1];
} s_status_t;

static s_status_t
s_status (zsock_t *client, jr_msg_t *msg, const uint8_t id[JR_ID_SIZE])
{
    jr_msg_reset (msg, JR_MSG_STATUS);
    msg->tag = 31;
    jr_msg_add_mark (msg, id, 0, 0);
    jr_fake_send (client, msg);
    zframe_t *frame = jr_fake_expect (client, msg, JR_MSG_STATE, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->nmarks, 1);
    cr_assert_eq (msg->ntasks, 1, "one task per mark");
    cr_assert_eq (msg->nworkers, 1, "one worker per mark");
    cr_assert_eq (msg->nnotes, 1, "one note per mark");
    cr_assert_eq (msg->cursor.len, 0);
    s_status_t status = { msg->marks[0].code, msg->marks[0].attempt, "", "" };
    snprintf (status.task, sizeof status.task, "%.*s", (int)msg->tasks[0].len,
              (const char *)msg->tasks[0].ptr);
    snprintf (status.worker, sizeof status.worker, "%.*s", (int)msg->workers[0].len,
              (const char *)msg->workers[0].ptr);
    zframe_destroy (&frame);
    return status;
}

Test (broker_list, status_says_task_and_worker)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    jr_fake_submit (client, msg, 2, 0, "echo");
    uint8_t ids[2][JR_ID_SIZE];
    memcpy (ids[0], msg->marks[0].id, JR_ID_SIZE);
    memcpy (ids[1], msg->marks[1].id, JR_ID_SIZE);
    s_status_t s = s_status (client, msg, ids[0]);
    cr_assert_eq (s.state, JR_STATE_QUEUED);
    cr_assert_str_eq (s.task, "echo");
    cr_assert_str_eq (s.worker, "", "not running: no worker");
    //  One slot: one runs there, the other waits.
    zsock_t *worker = jr_fake_worker (s_workers, msg, "echo", 1);
    zframe_t *frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->njobs, 1);
    int running = memcmp (msg->jobs[0].id, ids[0], JR_ID_SIZE) == 0 ? 0 : 1;
    uint32_t attempt = msg->jobs[0].attempt;
    zframe_destroy (&frame);
    s = s_status (client, msg, ids[running]);
    cr_assert_eq (s.state, JR_STATE_RUNNING);
    cr_assert_eq (s.attempt, attempt);
    cr_assert_str_eq (s.task, "echo");
    cr_assert_str_eq (s.worker, "fake@test");
    s = s_status (client, msg, ids[1 - running]);
    cr_assert_eq (s.state, JR_STATE_QUEUED);
    cr_assert_str_eq (s.worker, "");
    //  Finished: the broker remembers the id and outcome, not the task.
    jr_fake_done (worker, msg, ids[running], attempt, JR_STATE_SUCCEEDED);
    do
        s = s_status (client, msg, ids[running]);
    while (s.state == JR_STATE_RUNNING);
    cr_assert_eq (s.state, JR_STATE_SUCCEEDED);
    cr_assert_eq (s.attempt, attempt);
    cr_assert_str_eq (s.task, "");
    cr_assert_str_eq (s.worker, "");
    //  Unknown: all empty.
    uint8_t unknown[JR_ID_SIZE] = { 9, 9, 9 };
    s = s_status (client, msg, unknown);
    cr_assert_eq (s.state, JR_STATE_UNKNOWN);
    cr_assert_str_eq (s.task, "");
    cr_assert_str_eq (s.worker, "");
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  One LIST page: the marks' ids appended to ids, the next cursor in next
//  (true if there is one); an ERROR fails the test unless refused is set.
static bool
s_page (zsock_t *client, jr_msg_t *msg, int state, const char *task, uint32_t limit,
        const uint8_t *cursor, size_t cursor_len, uint8_t (*ids)[JR_ID_SIZE], size_t *nids,
        uint8_t next[JR_LIST_CURSOR], int *refused)
{
    jr_msg_reset (msg, JR_MSG_LIST);
    msg->tag = 41;
    msg->code = state;
    msg->task = (jr_bytes_t){ (const uint8_t *)task, strlen (task) };
    msg->limit = limit;
    msg->cursor = (jr_bytes_t){ cursor, cursor_len };
    jr_fake_send (client, msg);
    zsock_set_rcvtimeo (client, 5000);
    zframe_t *frame = zframe_recv (client);
    cr_assert_not_null (frame, "no answer to LIST");
    cr_assert_eq (jr_msg_decode (msg, zframe_data (frame), zframe_size (frame)), 0);
    cr_assert_eq (msg->tag, 41);
    if (msg->type == JR_MSG_ERROR) {
        cr_assert (refused, "LIST refused: %s", jr_errname (msg->code));
        *refused = msg->code;
        zframe_destroy (&frame);
        return false;
    }
    cr_assert_eq (msg->type, JR_MSG_STATE);
    cr_assert_leq (msg->nmarks, limit ? limit : JR_MAX_LIST);
    cr_assert_eq (msg->ntasks + msg->nnotes + msg->nworkers, 0, "LIST has marks only");
    uint8_t pos[JR_LIST_CURSOR], last[JR_LIST_CURSOR];
    for (uint32_t i = 0; i < msg->nmarks; i++) {
        cr_assert_eq (msg->marks[i].code, state);
        jr_jobtab_pos (msg->marks[i].id, pos);
        if (i)  //  in the table's order: hash, then id
            cr_assert_lt (memcmp (last, pos, sizeof pos), 0);
        if (cursor_len)  //  after the cursor
            cr_assert_gt (memcmp (pos, cursor, sizeof pos), 0);
        memcpy (last, pos, sizeof last);
        memcpy (ids[(*nids)++], msg->marks[i].id, JR_ID_SIZE);
    }
    cr_assert (msg->cursor.len == 0 || msg->cursor.len == JR_LIST_CURSOR);
    bool more = msg->cursor.len != 0;
    if (more)
        memcpy (next, msg->cursor.ptr, JR_LIST_CURSOR);
    if (more && msg->nmarks) {  //  the next page starts at the last job sent, or the bound past it
        static const uint8_t ff[JR_ID_SIZE] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                                0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
        int cmp = memcmp (next, last, sizeof last);
        cr_assert (cmp == 0 || (cmp > 0 && memcmp (next + 4, ff, JR_ID_SIZE) == 0),
                   "the cursor is the last job's position or the end of a hash");
    }
    zframe_destroy (&frame);  //  the views of msg point into it
    return more;
}

static int
s_by_id (const void *a, const void *b)
{
    return memcmp (a, b, JR_ID_SIZE);
}

static bool
s_has (uint8_t (*ids)[JR_ID_SIZE], size_t n, const uint8_t id[JR_ID_SIZE])
{
    return bsearch (id, ids, n, JR_ID_SIZE, s_by_id) != NULL;
}

Test (broker_list, pages_of_one_task_each_id_once_while_jobs_come_and_go, .timeout = 60)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    enum { N = 2500, LIMIT = 1000, MORE = 200 };
    static uint8_t bulk[N][JR_ID_SIZE], seen[N + 4 * MORE][JR_ID_SIZE];
    jr_fake_submit_ids (client, msg, N, "bulk", 0, bulk);
    jr_fake_submit (client, msg, 300, 0, "other");
    //  The ids we cancel midway: they leave QUEUED.
    static uint8_t gone[N][JR_ID_SIZE];
    size_t ngone = 0, nseen = 0;
    uint8_t cursor[JR_LIST_CURSOR], next[JR_LIST_CURSOR];
    bool more = true, first = true;
    int pages = 0;
    while (more) {
        size_t before = nseen;
        more = s_page (client, msg, JR_STATE_QUEUED, "bulk", LIMIT, cursor,
                       first ? 0 : JR_LIST_CURSOR, seen, &nseen, next, NULL);
        pages++;
        cr_assert (nseen - before == LIMIT || !more, "a full page, or the last");
        memcpy (cursor, next, sizeof cursor);
        first = false;
        //  Between pages: new jobs of the task arrive, and some queued ones
        //  are cancelled (both before and after the cursor).
        jr_fake_submit (client, msg, MORE, 0, "bulk");
        jr_msg_reset (msg, JR_MSG_CANCEL);
        msg->tag = 51;
        for (int i = pages; i < N; i += 97) {
            jr_msg_add_mark (msg, bulk[i], 0, 0);
            memcpy (gone[ngone++], bulk[i], JR_ID_SIZE);
        }
        jr_fake_send (client, msg);
        zframe_t *frame = jr_fake_expect (client, msg, JR_MSG_STATE, 2000);
        cr_assert_not_null (frame);
        zframe_destroy (&frame);
        cr_assert_lt (pages, 50);
    }
    cr_assert_geq (pages, 3, "2500 ids by 1000 take three pages at least");
    //  No id twice; every job queued all along exactly once; only bulk jobs.
    qsort (seen, nseen, JR_ID_SIZE, s_by_id);
    for (size_t i = 1; i < nseen; i++)
        cr_assert_neq (memcmp (seen[i - 1], seen[i], JR_ID_SIZE), 0, "an id listed twice");
    qsort (gone, ngone, JR_ID_SIZE, s_by_id);
    size_t stayed = 0;
    for (size_t i = 0; i < N; i++)
        if (!s_has (gone, ngone, bulk[i])) {
            cr_assert (s_has (seen, nseen, bulk[i]), "job %zu queued all along, not listed", i);
            stayed++;
        }
    cr_assert_gt (stayed, N / 2);
    cr_assert_leq (nseen, N + (size_t)pages * MORE);
    //  Another task's page holds its own jobs only; an unknown task none.
    size_t nother = 0;
    static uint8_t other[400][JR_ID_SIZE];
    cr_assert_not (
        s_page (client, msg, JR_STATE_QUEUED, "other", 0, NULL, 0, other, &nother, next, NULL));
    cr_assert_eq (nother, 300);
    for (size_t i = 0; i < nother; i++)
        cr_assert_not (s_has (seen, nseen, other[i]));
    nother = 0;
    cr_assert_not (
        s_page (client, msg, JR_STATE_QUEUED, "nobody", 0, NULL, 0, other, &nother, next, NULL));
    cr_assert_eq (nother, 0);
    //  Any task: all of them, in one page of the maximum.
    static uint8_t all[N + 4000][JR_ID_SIZE];
    size_t nall = 0;
    cr_assert_not (s_page (client, msg, JR_STATE_QUEUED, "", 0, NULL, 0, all, &nall, next, NULL));
    cr_assert_gt (nall, N);
    //  A limit over the maximum is INVALID.
    int refused = 0;
    s_page (client, msg, JR_STATE_QUEUED, "", JR_MAX_LIST + 1, NULL, 0, all, &nall, next, &refused);
    cr_assert_eq (refused, JR_EINVALID);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  Ids as a UUID v7 client makes them in one millisecond (the same first 8
//  bytes, a counter after) and sequential ones: the broker pages them like
//  random ids, each once, in (hash, id) order.
static void
s_submit_made (zsock_t *client, jr_msg_t *msg, uint8_t (*ids)[JR_ID_SIZE], size_t n)
{
    for (size_t at = 0; at < n;) {
        jr_msg_reset (msg, JR_MSG_SUBMIT);
        msg->tag = 6;
        size_t batch = 0;
        for (; batch < 1000 && at + batch < n; batch++) {
            jr_job_t *job = jr_msg_add_job (msg);
            jr_job_init (job, "made");
            memcpy (job->id, ids[at + batch], JR_ID_SIZE);
        }
        jr_fake_send (client, msg);
        zframe_t *reply = jr_fake_expect (client, msg, JR_MSG_ACCEPTED, 5000);
        cr_assert_not_null (reply);
        cr_assert_eq (msg->nmarks, batch);
        for (uint32_t i = 0; i < msg->nmarks; i++)
            cr_assert_eq (msg->marks[i].code, 0);
        zframe_destroy (&reply);
        at += batch;
    }
}

Test (broker_list, time_ordered_and_sequential_ids_page_each_once, .timeout = 60)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    enum { N = 3000, LIMIT = 700 };
    static uint8_t made[2 * N][JR_ID_SIZE], seen[2 * N][JR_ID_SIZE];
    static const uint8_t v7[8] = { 0x01, 0x93, 0x8a, 0x5c, 0x2e, 0x41, 0x70, 0x00 };
    for (size_t i = 0; i < N; i++) {
        memcpy (made[i], v7, sizeof v7);  //  v7: one tick, a counter in the last bytes
        made[i][8] = 0x80;
        made[i][14] = (uint8_t)(i >> 8), made[i][15] = (uint8_t)i;
        made[N + i][14] = (uint8_t)((i + 1) >> 8),
                 made[N + i][15] = (uint8_t)(i + 1);  //  1, 2, ...
    }
    s_submit_made (client, msg, made, 2 * N);
    uint8_t cursor[JR_LIST_CURSOR], next[JR_LIST_CURSOR];
    size_t nseen = 0;
    int pages = 0;
    for (bool more = true; more; pages++) {
        more = s_page (client, msg, JR_STATE_QUEUED, "made", LIMIT, cursor,
                       pages ? JR_LIST_CURSOR : 0, seen, &nseen, next, NULL);
        memcpy (cursor, next, sizeof cursor);
        cr_assert_lt (pages, 100);
    }
    cr_assert_geq (pages, 2 * N / LIMIT);
    cr_assert_eq (nseen, 2 * N, "%zu ids listed of %d", nseen, 2 * N);
    qsort (seen, nseen, JR_ID_SIZE, s_by_id);
    qsort (made, 2 * N, JR_ID_SIZE, s_by_id);
    for (size_t i = 0; i < nseen; i++)
        cr_assert_eq (memcmp (seen[i], made[i], JR_ID_SIZE), 0, "id %zu: listed once each", i);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  A bad cursor, sent by hand: the broker answers MALFORMED with the tag.
Test (broker_list, a_bad_cursor_is_malformed)
{
    s_start (5000);
    zsock_t *client = zsock_new_dealer (s_clients);
    //  LIST(tag 8, QUEUED, "", 0, bin of 3 bytes)
    static const uint8_t body[] = { 0x98,        0xcd, 0x4a, 0x52, JR_PROTO_VERSION,
                                    JR_MSG_LIST, 0x08, 0x01, 0xa0, 0x00,
                                    0xc4,        0x03, 0x01, 0x02, 0x03 };
    zsock_send (client, "b", body, sizeof body);
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_expect (client, msg, JR_MSG_ERROR, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->tag, 8);
    cr_assert_eq (msg->code, JR_EMALFORMED);
    zframe_destroy (&frame);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}

//  A STATUS whose answer cannot fit one frame (a long task, worker and
//  note on every mark) is refused TOO_LARGE, not left unanswered.
Test (broker_list, a_status_answer_over_the_frame_limit_is_too_large, .timeout = 60)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    static char task[JR_MAX_NAME + 1], name[JR_MAX_NAME + 1], note[JR_MAX_NOTE];
    memset (task, 't', JR_MAX_NAME);
    memset (name, 'n', JR_MAX_NAME);
    memset (note, 'p', JR_MAX_NOTE - 1);
    jr_fake_submit (client, msg, 1, 0, task);
    uint8_t id[JR_ID_SIZE];
    memcpy (id, msg->marks[0].id, JR_ID_SIZE);
    zsock_t *worker = jr_fake_dealer (s_workers);
    const char *tasks[] = { task };
    jr_fake_ready (worker, msg, name, tasks, 1, 1);
    zframe_t *frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_not_null (frame);
    uint32_t attempt = msg->jobs[0].attempt;
    zframe_destroy (&frame);
    jr_msg_reset (msg, JR_MSG_PROGRESS);
    jr_msg_add_mark (msg, id, attempt, 0);
    jr_msg_add_note (msg, 1, (jr_bytes_t){ (const uint8_t *)note, strlen (note) });
    jr_fake_send (worker, msg);
    s_status_t s;
    do
        s = s_status (client, msg, id);
    while (msg->notes[0].text.len == 0);
    cr_assert_eq (strlen (s.worker), JR_MAX_NAME + 5, "name@test");
    //  JR_MAX_ITEMS marks of that id: about 820 bytes each in the answer.
    jr_msg_reset (msg, JR_MSG_STATUS);
    msg->tag = 77;
    for (int i = 0; i < JR_MAX_ITEMS; i++)
        jr_msg_add_mark (msg, id, 0, 0);
    jr_fake_send (client, msg);
    frame = jr_fake_expect (client, msg, JR_MSG_ERROR, 10000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->tag, 77);
    cr_assert_eq (msg->code, JR_ETOOLARGE);
    zframe_destroy (&frame);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    jr_msg_destroy (&msg);
    s_stop ();
}
