/*  test_broker.c - the broker's job table, queues, and its conversation with fake peers  */
#include "broker/broker.h"
#include "broker/jobtab.h"
#include "broker/queue.h"
#include "common/log.h"
#include "proto/proto.h"
#include <criterion/criterion.h>
#include <czmq.h>
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
        recs[i]->at_us = at[i];
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

static void
s_start_with (int liveness_ms, const char *journal)
{
    jr_log_init ("broker", JR_LOG_WARN);
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
    s_broker = jr_broker_new (&config);
    cr_assert_not_null (s_broker);
    pthread_create (&s_thread, NULL, s_run, s_broker);
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

static void
s_send (zsock_t *sock, jr_msg_t *msg)
{
    cr_assert_eq (jr_msg_send (msg, zsock_resolve (sock), NULL, 0), 0);
}

//  Receive the next message of a type within timeout_ms. Heartbeats are
//  skipped, and answered when the socket plays a live worker.
static zframe_t *
s_expect_ex (zsock_t *sock, jr_msg_t *msg, int type, int timeout_ms, bool alive)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    for (;;) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return NULL;
        zsock_set_rcvtimeo (sock, (int)left);
        zframe_t *frame = zframe_recv (sock);
        if (!frame)
            return NULL;
        cr_assert_eq (jr_msg_decode (msg, zframe_data (frame), zframe_size (frame)), 0);
        if (msg->type == type)
            return frame;
        zframe_destroy (&frame);
        if (msg->type != JR_MSG_HEARTBEAT)
            cr_assert_fail ("expected %s, got %s", jr_msg_name (type), jr_msg_name (msg->type));
        if (alive) {
            jr_msg_t hb = { .type = JR_MSG_HEARTBEAT };
            s_send (sock, &hb);
        }
    }
}

static zframe_t *
s_expect (zsock_t *sock, jr_msg_t *msg, int type, int timeout_ms)
{
    return s_expect_ex (sock, msg, type, timeout_ms, true);
}

static zsock_t *
s_worker (jr_msg_t *msg, const char *task, uint32_t slots)
{
    zsock_t *sock = zsock_new_dealer (s_workers);
    jr_msg_reset (msg, JR_MSG_READY);
    msg->name = (jr_bytes_t){ (const uint8_t *)"fake", 4 };
    msg->host = (jr_bytes_t){ (const uint8_t *)"test", 4 };
    msg->slots = slots;
    msg->capacity = slots;
    jr_msg_add_task (msg, (jr_bytes_t){ (const uint8_t *)task, strlen (task) });
    s_send (sock, msg);
    return sock;
}

static void
s_submit (zsock_t *client, jr_msg_t *msg, int n, int priority, const char *task)
{
    jr_msg_reset (msg, JR_MSG_SUBMIT);
    msg->tag = 7;
    for (int i = 0; i < n; i++) {
        jr_job_t *job = jr_msg_add_job (msg);
        jr_job_init (job, task);
        job->priority = priority;
    }
    s_send (client, msg);
    zframe_t *reply = s_expect (client, msg, JR_MSG_ACCEPTED, 2000);
    cr_assert_not_null (reply);
    cr_assert_eq (msg->tag, 7);
    cr_assert_eq (msg->nmarks, (uint32_t)n);
    for (int i = 0; i < n; i++)
        cr_assert_eq (msg->marks[i].code, 0);
    zframe_destroy (&reply);
}

//  Count jobs dispatched to a worker until it has been quiet for quiet_ms.
static int
s_drain_dispatch (zsock_t *worker, jr_msg_t *msg, int quiet_ms, jr_mark_t *first)
{
    int n = 0;
    zframe_t *frame;
    while ((frame = s_expect (worker, msg, JR_MSG_DISPATCH, quiet_ms))) {
        if (n == 0 && first && msg->njobs)
            jr_msg_add_mark (msg, msg->jobs[0].id, msg->jobs[0].attempt, 0), *first = msg->marks[0];
        n += (int)msg->njobs;
        zframe_destroy (&frame);
    }
    return n;
}

Test (broker, dispatch_never_exceeds_credit)
{
    s_start (5000);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    s_submit (client, msg, 5, 0, "echo");
    zsock_t *worker = s_worker (msg, "echo", 2);
    jr_mark_t first;
    cr_assert_eq (s_drain_dispatch (worker, msg, 300, &first), 2);
    //  Each DONE gives one credit back.
    jr_msg_reset (msg, JR_MSG_DONE);
    jr_msg_add_mark (msg, first.id, first.attempt, JR_STATE_SUCCEEDED);
    s_send (worker, msg);
    cr_assert_eq (s_drain_dispatch (worker, msg, 300, NULL), 1);
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
    s_submit (client, msg, 5, 0, "echo");
    zsock_t *worker = s_worker (msg, "echo", 1);
    jr_mark_t first;
    cr_assert_eq (s_drain_dispatch (worker, msg, 300, &first), 1);
    //  Out of its executor, the result not stored yet: the slot comes back.
    jr_msg_reset (msg, JR_MSG_FREE);
    jr_msg_add_mark (msg, first.id, first.attempt, 0);
    s_send (worker, msg);
    s_send (worker, msg);  //  said twice, counted once
    jr_mark_t second;
    cr_assert_eq (s_drain_dispatch (worker, msg, 300, &second), 1);
    //  Its DONE later gives nothing more: the second job still runs.
    jr_msg_reset (msg, JR_MSG_DONE);
    jr_msg_add_mark (msg, first.id, first.attempt, JR_STATE_SUCCEEDED);
    s_send (worker, msg);
    cr_assert_eq (s_drain_dispatch (worker, msg, 300, NULL), 0);
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
    s_submit (client, msg, 1, 0, "echo");
    s_submit (client, msg, 1, 0, "other");
    s_submit (client, msg, 1, 9, "echo");
    zsock_t *worker = s_worker (msg, "echo", 1);
    zframe_t *frame = s_expect (worker, msg, JR_MSG_DISPATCH, 2000);
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
    s_submit (client, msg, 1, 0, "echo");
    zsock_t *silent = s_worker (msg, "echo", 1);
    zframe_t *frame = s_expect_ex (silent, msg, JR_MSG_DISPATCH, 2000, false);
    cr_assert_not_null (frame);
    zframe_destroy (&frame);
    zsock_t *other = s_worker (msg, "echo", 1);
    frame = s_expect (other, msg, JR_MSG_DISPATCH, 5000);
    cr_assert_not_null (frame, "the job never came back");
    cr_assert_eq (msg->jobs[0].attempt, 2);
    zframe_destroy (&frame);
    //  The forgotten worker is told to introduce itself again.
    jr_msg_reset (msg, JR_MSG_HEARTBEAT);
    s_send (silent, msg);
    frame = s_expect_ex (silent, msg, JR_MSG_ERROR, 2000, false);
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
    zframe_t *frame = s_expect (client, msg, JR_MSG_ERROR, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->code, JR_EMALFORMED);
    zframe_destroy (&frame);
    s_submit (client, msg, 1, 0, "echo");
    uint8_t id[JR_ID_SIZE];
    memcpy (id, msg->marks[0].id, JR_ID_SIZE);
    jr_msg_reset (msg, JR_MSG_STATUS);
    msg->tag = 3;
    jr_msg_add_mark (msg, id, 0, 0);
    jr_msg_add_mark (msg, (uint8_t[JR_ID_SIZE]){ 9 }, 0, 0);
    s_send (client, msg);
    frame = s_expect (client, msg, JR_MSG_STATE, 2000);
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

static void
s_status (zsock_t *client, jr_msg_t *msg, const uint8_t id[JR_ID_SIZE], int type, int *state,
          uint32_t *attempt)
{
    jr_msg_reset (msg, type);
    msg->tag = 11;
    jr_msg_add_mark (msg, id, 0, 0);
    s_send (client, msg);
    zframe_t *frame = s_expect (client, msg, JR_MSG_STATE, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->nmarks, 1);
    *state = msg->marks[0].code;
    *attempt = msg->marks[0].attempt;
    zframe_destroy (&frame);
}

static void
s_done (zsock_t *worker, jr_msg_t *msg, const uint8_t id[JR_ID_SIZE], uint32_t attempt, int code)
{
    jr_msg_reset (msg, JR_MSG_DONE);
    jr_msg_add_mark (msg, id, attempt, code);
    s_send (worker, msg);
}

Test (broker_journal, restart_requeues_running_with_next_attempt)
{
    s_journal_dir ();
    s_start_with (5000, s_dir);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *client = zsock_new_dealer (s_clients);
    s_submit (client, msg, 3, 0, "echo");
    zsock_t *worker = s_worker (msg, "echo", 1);
    zframe_t *frame = s_expect (worker, msg, JR_MSG_DISPATCH, 2000);
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
    s_status (client, msg, running, JR_MSG_STATUS, &state, &attempt);
    cr_assert_eq (state, JR_STATE_QUEUED);
    worker = s_worker (msg, "echo", 1);
    frame = s_expect (worker, msg, JR_MSG_DISPATCH, 2000);
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
        s_send (client, msg);
        zframe_t *frame = s_expect (client, msg, JR_MSG_ACCEPTED, 2000);
        cr_assert_not_null (frame);
        cr_assert_eq (msg->marks[0].code, 0);
        zframe_destroy (&frame);
        if (round == 1) {  //  run it between the second and third submit
            zsock_t *worker = s_worker (msg, "echo", 4);
            frame = s_expect (worker, msg, JR_MSG_DISPATCH, 2000);
            cr_assert_not_null (frame);
            cr_assert_eq (msg->njobs, 1);
            zframe_destroy (&frame);
            s_done (worker, msg, job.id, 1, JR_STATE_SUCCEEDED);
            int state;
            uint32_t attempt;
            do
                s_status (client, msg, job.id, JR_MSG_STATUS, &state, &attempt);
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
    s_submit (client, msg, 1, 0, "echo");
    uint8_t id[JR_ID_SIZE];
    memcpy (id, msg->marks[0].id, JR_ID_SIZE);
    zsock_t *worker = s_worker (msg, "echo", 1);
    for (uint32_t attempt = 1; attempt <= 3; attempt++) {
        zframe_t *frame = s_expect (worker, msg, JR_MSG_DISPATCH, 5000);
        cr_assert_not_null (frame, "attempt %u never came", attempt);
        cr_assert_eq (msg->jobs[0].attempt, attempt);
        cr_assert_eq (msg->jobs[0].max_attempts, 3);
        zframe_destroy (&frame);
        s_done (worker, msg, id, attempt, attempt < 3 ? JR_STATE_SCHEDULED : JR_STATE_DEAD);
    }
    int state;
    uint32_t attempt;
    do
        s_status (client, msg, id, JR_MSG_STATUS, &state, &attempt);
    while (state != JR_STATE_DEAD);
    jr_msg_reset (msg, JR_MSG_LIST);
    msg->code = JR_STATE_DEAD;
    s_send (client, msg);
    zframe_t *frame = s_expect (client, msg, JR_MSG_STATE, 2000);
    cr_assert_eq (msg->nmarks, 1);
    cr_assert (memcmp (msg->marks[0].id, id, JR_ID_SIZE) == 0);
    zframe_destroy (&frame);
    //  Dead survives a restart.
    zsock_destroy (&worker);
    zsock_destroy (&client);
    s_stop ();
    s_start_with (5000, s_dir);
    client = zsock_new_dealer (s_clients);
    s_status (client, msg, id, JR_MSG_STATUS, &state, &attempt);
    cr_assert_eq (state, JR_STATE_DEAD);
    //  jr retry: once more, as attempt 4.
    s_status (client, msg, id, JR_MSG_RETRY, &state, &attempt);
    cr_assert_eq (state, JR_STATE_QUEUED);
    worker = s_worker (msg, "echo", 1);
    frame = s_expect (worker, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->jobs[0].attempt, 4);
    zframe_destroy (&frame);
    //  Cancel while it runs: the worker is told, and the job ends cancelled.
    s_status (client, msg, id, JR_MSG_CANCEL, &state, &attempt);
    cr_assert_eq (state, JR_STATE_CANCELLED);
    frame = s_expect (worker, msg, JR_MSG_CANCEL, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->marks[0].attempt, 4);
    zframe_destroy (&frame);
    s_done (worker, msg, id, 4, JR_STATE_CANCELLED);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    s_stop ();
    //  ... and stays cancelled after a restart.
    s_start_with (5000, s_dir);
    client = zsock_new_dealer (s_clients);
    s_status (client, msg, id, JR_MSG_STATUS, &state, &attempt);
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
    s_submit (client, msg, 2, 0, "echo");
    uint8_t first[JR_ID_SIZE], second[JR_ID_SIZE];
    memcpy (first, msg->marks[0].id, JR_ID_SIZE);
    memcpy (second, msg->marks[1].id, JR_ID_SIZE);
    int state;
    uint32_t attempt;
    s_status (client, msg, first, JR_MSG_CANCEL, &state, &attempt);
    cr_assert_eq (state, JR_STATE_CANCELLED);
    zsock_t *worker = s_worker (msg, "echo", 4);
    zframe_t *frame = s_expect (worker, msg, JR_MSG_DISPATCH, 2000);
    cr_assert_eq (msg->njobs, 1, "the cancelled job is not dispatched");
    cr_assert (memcmp (msg->jobs[0].id, second, JR_ID_SIZE) == 0);
    zframe_destroy (&frame);
    //  The worker drains and hands the job back: it is queued again at once.
    jr_msg_reset (msg, JR_MSG_BYE);
    s_send (worker, msg);
    s_done (worker, msg, second, 1, JR_STATE_QUEUED);
    zsock_t *other = s_worker (msg, "echo", 1);
    frame = s_expect (other, msg, JR_MSG_DISPATCH, 2000);
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
    s_submit (client, msg, 1, 0, "late");
    zsock_t *worker = s_worker (msg, "none", 1);
    zframe_t *frame = s_expect_ex (worker, msg, JR_MSG_HEARTBEAT, 2000, false);
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
