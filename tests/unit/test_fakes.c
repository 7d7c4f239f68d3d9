/*  test_fakes.c - the shared fake peers do what the tests that use them assume  */
#include "tests/fakes/fake_peer.h"
#include "tests/fakes/fake_router.h"
#include <criterion/criterion.h>
#include <jr/task.h>
#include <string.h>
#include <unistd.h>

//  A ROUTER playing the broker, and a DEALER it has heard from.
typedef struct {
    zsock_t *router, *dealer;
    jr_msg_t *msg;
    zframe_t *peer;  //  the dealer's routing id
} s_pair_t;

static int s_pairs;

static zmsg_t *
s_router_recv (s_pair_t *self, int type)
{
    zsock_set_rcvtimeo (self->router, 2000);
    zmsg_t *zmsg = zmsg_recv (self->router);
    cr_assert_not_null (zmsg);
    cr_assert_eq (zmsg_size (zmsg), 2);
    zframe_t *body = zmsg_last (zmsg);
    cr_assert_eq (jr_msg_decode (self->msg, zframe_data (body), zframe_size (body)), 0);
    cr_assert_eq (self->msg->type, type, "got %s", jr_msg_name (self->msg->type));
    return zmsg;
}

static void
s_router_send (s_pair_t *self, const jr_msg_t *msg)
{
    cr_assert_eq (jr_msg_send (msg, zsock_resolve (self->router), zframe_data (self->peer),
                               zframe_size (self->peer)),
                  0);
}

static void
s_pair_up (s_pair_t *self)
{
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "inproc://fakes-%d", ++s_pairs);
    self->router = zsock_new_router (endpoint);
    self->dealer = zsock_new_dealer (endpoint);
    cr_assert (self->router && self->dealer);
    self->msg = jr_msg_new ();
    jr_msg_t hello = { .type = JR_MSG_HEARTBEAT };
    jr_fake_send (self->dealer, &hello);
    zmsg_t *zmsg = s_router_recv (self, JR_MSG_HEARTBEAT);
    self->peer = zframe_dup (zmsg_first (zmsg));
    zmsg_destroy (&zmsg);
}

static void
s_pair_down (s_pair_t *self)
{
    zframe_destroy (&self->peer);
    jr_msg_destroy (&self->msg);
    zsock_destroy (&self->dealer);
    zsock_destroy (&self->router);
}

static void
s_heartbeat (s_pair_t *self)
{
    jr_msg_t hb = { .type = JR_MSG_HEARTBEAT };
    s_router_send (self, &hb);
}

Test (fakes, expect_skips_heartbeats_and_answers_them_only_when_alive)
{
    s_pair_t pair;
    s_pair_up (&pair);
    jr_msg_t *msg = jr_msg_new ();
    for (int alive = 1; alive >= 0; alive--) {
        s_heartbeat (&pair);
        s_heartbeat (&pair);
        jr_msg_reset (msg, JR_MSG_STATE);
        msg->tag = 40 + (uint64_t)alive;
        s_router_send (&pair, msg);
        zframe_t *frame = jr_fake_expect_ex (pair.dealer, msg, JR_MSG_STATE, 2000, alive);
        cr_assert_not_null (frame);
        cr_assert_eq (msg->tag, 40 + (uint64_t)alive);
        zframe_destroy (&frame);
        //  A marker after: what comes before it is what the fake answered.
        jr_msg_reset (msg, JR_MSG_FREE);
        jr_fake_send (pair.dealer, msg);
        for (int i = 0; alive && i < 2; i++) {
            zmsg_t *zmsg = s_router_recv (&pair, JR_MSG_HEARTBEAT);
            zmsg_destroy (&zmsg);
        }
        zmsg_t *zmsg = s_router_recv (&pair, JR_MSG_FREE);
        zmsg_destroy (&zmsg);
    }
    //  Nothing of the type: NULL once the time is up.
    cr_assert_null (jr_fake_expect (pair.dealer, msg, JR_MSG_STATE, 50));
    jr_msg_destroy (&msg);
    s_pair_down (&pair);
}

//  The vars are a map of exactly the size asked for; ids are the jobs' own.
Test (fakes, submit_ids_sends_vars_of_the_size_asked_and_counts_accepted)
{
    s_pair_t pair;
    s_pair_up (&pair);
    jr_msg_t *msg = jr_msg_new ();
    //  The answer waits in the dealer's queue before the SUBMIT is made.
    jr_msg_reset (msg, JR_MSG_ACCEPTED);
    int codes[] = { 0, JR_EQUEUE_FULL, 0 };
    for (int i = 0; i < 3; i++)
        jr_msg_add_mark (msg, (uint8_t[JR_ID_SIZE]){ (uint8_t)i }, 0, codes[i]);
    s_router_send (&pair, msg);
    uint8_t ids[3][JR_ID_SIZE];
    cr_assert_eq (jr_fake_submit_ids (pair.dealer, msg, 3, "echo", 100, ids), 2);
    zmsg_t *zmsg = s_router_recv (&pair, JR_MSG_SUBMIT);
    cr_assert_eq (pair.msg->tag, 5);
    cr_assert_eq (pair.msg->njobs, 3);
    for (int i = 0; i < 3; i++) {
        const jr_job_t *job = &pair.msg->jobs[i];
        cr_assert_eq (memcmp (job->id, ids[i], JR_ID_SIZE), 0);
        cr_assert_eq (job->task.len, 4);
        cr_assert_eq (job->vars.len, 100);
        jr_bytes_t b;
        cr_assert_eq (jr_vars_bytes (job->vars, "b", &b), 0);
        cr_assert_eq (b.len, 92);
    }
    zmsg_destroy (&zmsg);
    jr_msg_destroy (&msg);
    s_pair_down (&pair);
}

//  Jobs counted over several DISPATCHes; the first one's mark kept.
Test (fakes, drain_dispatch_counts_every_job_and_keeps_the_first)
{
    s_pair_t pair;
    s_pair_up (&pair);
    jr_msg_t *msg = jr_msg_new ();
    uint8_t first_id[JR_ID_SIZE];
    jr_msg_reset (msg, JR_MSG_DISPATCH);
    for (int i = 0; i < 2; i++) {
        jr_job_t *job = jr_msg_add_job (msg);
        jr_job_init (job, "echo");
        job->attempt = 3 + (uint32_t)i;
        if (i == 0)
            memcpy (first_id, job->id, JR_ID_SIZE);
    }
    s_router_send (&pair, msg);
    s_heartbeat (&pair);
    jr_msg_reset (msg, JR_MSG_DISPATCH);
    jr_job_init (jr_msg_add_job (msg), "echo");
    s_router_send (&pair, msg);
    jr_mark_t first;
    cr_assert_eq (jr_fake_drain_dispatch (pair.dealer, msg, 200, &first), 3);
    cr_assert_eq (memcmp (first.id, first_id, JR_ID_SIZE), 0);
    cr_assert_eq (first.attempt, 3);
    zmsg_t *zmsg = s_router_recv (&pair, JR_MSG_HEARTBEAT);  //  a live worker answers
    zmsg_destroy (&zmsg);
    jr_msg_destroy (&msg);
    s_pair_down (&pair);
}

Test (fakes, ready_says_every_task_and_the_slots)
{
    s_pair_t pair;
    s_pair_up (&pair);
    jr_msg_t *msg = jr_msg_new ();
    const char *tasks[] = { "a", "bb", "a" };
    jr_fake_ready (pair.dealer, msg, "w1", tasks, 3, 4);
    zmsg_t *zmsg = s_router_recv (&pair, JR_MSG_READY);
    cr_assert_eq (pair.msg->ntasks, 3);
    cr_assert_eq (pair.msg->tasks[1].len, 2);
    cr_assert_eq (memcmp (pair.msg->tasks[1].ptr, "bb", 2), 0);
    cr_assert_eq (pair.msg->slots, 4);
    cr_assert_eq (pair.msg->capacity, 4);
    cr_assert_eq (memcmp (pair.msg->name.ptr, "w1", 2), 0);
    zmsg_destroy (&zmsg);
    jr_msg_destroy (&msg);
    s_pair_down (&pair);
}

//  -------------------------------------------------------------------------
//  As a worker or client of the ingester

Test (fakes, result_and_fetch_send_the_jobs_asked)
{
    s_pair_t pair;
    s_pair_up (&pair);
    jr_msg_t *msg = jr_msg_new ();
    jr_job_t jobs[2];
    for (int i = 0; i < 2; i++) {
        jr_job_init (&jobs[i], "echo");
        jobs[i].attempt = 7 + (uint32_t)i;
    }
    jr_fake_result (pair.dealer, msg, jobs, 2);
    zmsg_t *zmsg = s_router_recv (&pair, JR_MSG_RESULT);
    cr_assert_eq (pair.msg->njobs, 2);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq (memcmp (pair.msg->jobs[i].id, jobs[i].id, JR_ID_SIZE), 0);
        cr_assert_eq (pair.msg->jobs[i].attempt, 7 + (uint32_t)i);
    }
    zmsg_destroy (&zmsg);
    jr_fake_fetch (pair.dealer, msg, 33, jobs, 2, 1500);
    zmsg = s_router_recv (&pair, JR_MSG_FETCH);
    cr_assert_eq (pair.msg->tag, 33);
    cr_assert_eq (pair.msg->wait_ms, 1500);
    cr_assert_eq (pair.msg->nmarks, 2);
    cr_assert_eq (memcmp (pair.msg->marks[1].id, jobs[1].id, JR_ID_SIZE), 0);
    zmsg_destroy (&zmsg);
    jr_msg_destroy (&msg);
    s_pair_down (&pair);
}

//  The sync asks with wait 0 for one id; an answer that says so passes.
Test (fakes, ingester_sync_fetches_one_unknown_id_now)
{
    s_pair_t pair;
    s_pair_up (&pair);
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_RESULTS);
    msg->tag = 9;
    jr_msg_add_mark (msg, (uint8_t[JR_ID_SIZE]){ 1 }, 0, JR_ENOT_FOUND);
    s_router_send (&pair, msg);
    jr_fake_ingester_sync (pair.dealer, msg, 9, 2000);
    zmsg_t *zmsg = s_router_recv (&pair, JR_MSG_FETCH);
    cr_assert_eq (pair.msg->tag, 9);
    cr_assert_eq (pair.msg->wait_ms, 0);
    cr_assert_eq (pair.msg->nmarks, 1);
    zmsg_destroy (&zmsg);
    jr_msg_destroy (&msg);
    s_pair_down (&pair);
}

//  -------------------------------------------------------------------------
//  ROUTERs playing a broker or an ingester

static void
s_ready (zsock_t *dealer, const char *name)
{
    jr_msg_t *msg = jr_msg_new ();
    const char *task = "echo";
    jr_fake_ready (dealer, msg, name, &task, 1, 1);
    jr_msg_destroy (&msg);
}

static void
s_done (zsock_t *dealer, uint8_t first)
{
    jr_msg_t *msg = jr_msg_new ();
    jr_fake_done (dealer, msg, (uint8_t[JR_ID_SIZE]){ first }, 1, JR_STATE_SUCCEEDED);
    jr_msg_destroy (&msg);
}

static void
s_send_type (zsock_t *dealer, int type)
{
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, type);
    jr_fake_send (dealer, msg);
    jr_msg_destroy (&msg);
}

//  A named fake hears only that worker; heartbeats, FREE and PROGRESS are
//  passed over; what it sends goes to that worker alone.
Test (fakes, router_listens_to_its_worker_only)
{
    jr_fake_router_t fake;
    jr_fake_router_init (&fake, "w1");
    zsock_t *stranger = jr_fake_dealer (fake.endpoint);
    zsock_t *ours = jr_fake_dealer (fake.endpoint);
    s_ready (stranger, "w10");
    s_done (stranger, 0xaa);
    s_ready (ours, "w1");
    cr_assert (jr_fake_router_expect (&fake, JR_MSG_READY, 2000));
    cr_assert_eq (fake.msg->name.len, 2);
    s_done (stranger, 0xbb);  //  a DONE from a stranger would fail expect (READY)
    const int passed[] = { JR_MSG_HEARTBEAT, JR_MSG_FREE, JR_MSG_PROGRESS };
    for (int i = 0; i < 3; i++)
        s_send_type (ours, passed[i]);
    s_done (ours, 0xcc);
    cr_assert (jr_fake_router_expect (&fake, JR_MSG_DONE, 2000));
    cr_assert_eq (fake.msg->marks[0].id[0], 0xcc);
    cr_assert_not (jr_fake_router_expect (&fake, JR_MSG_DONE, 100), "the strangers' DONEs unheard");

    jr_msg_reset (fake.out, JR_MSG_STATE);
    fake.out->tag = 4;
    jr_fake_router_send (&fake, fake.out);
    jr_msg_t *msg = jr_msg_new ();
    zframe_t *frame = jr_fake_recv (ours, msg, JR_MSG_STATE, 2000);
    cr_assert_eq (msg->tag, 4);
    zframe_destroy (&frame);
    zsock_set_rcvtimeo (stranger, 100);
    cr_assert_null (zframe_recv (stranger), "sent to our worker only");
    jr_msg_destroy (&msg);
    zsock_destroy (&stranger);
    zsock_destroy (&ours);
    jr_fake_router_destroy (&fake);
    jr_fake_router_destroy (&fake);  //  idempotent
}

//  A RESULT tells its worker by "name@host": "name" alone or a longer name
//  is someone else.
Test (fakes, router_knows_its_worker_by_its_results)
{
    jr_fake_router_t fake;
    jr_fake_router_init (&fake, "w1");
    zsock_t *dealer = jr_fake_dealer (fake.endpoint);
    jr_msg_t *msg = jr_msg_new ();
    const char *by[] = { "w1", "w10@host", "w1@host" };
    jr_job_t job;
    for (int i = 0; i < 3; i++) {
        jr_job_init (&job, "echo");
        job.attempt = (uint32_t)i;
        job.worker = (jr_bytes_t){ (const uint8_t *)by[i], strlen (by[i]) };
        jr_fake_result (dealer, msg, &job, 1);
    }
    cr_assert (jr_fake_router_expect (&fake, JR_MSG_RESULT, 2000));
    cr_assert_eq (fake.msg->jobs[0].attempt, 2);
    jr_msg_destroy (&msg);
    zsock_destroy (&dealer);
    jr_fake_router_destroy (&fake);
}

//  Closed, the port stays held; open again, the peer reconnects and is heard.
Test (fakes, router_closes_and_opens_again_on_its_listener)
{
    jr_fake_router_t fake;
    jr_fake_router_init_closed (&fake, NULL);
    int listener = jr_fake_listener (fake.endpoint);
    jr_fake_router_open_on (&fake, listener);
    zsock_t *dealer = jr_fake_dealer (fake.endpoint);
    for (int round = 0; round < 2; round++) {
        //  A send into the connection the close broke dies with it: resend.
        bool heard = false;
        for (int k = 0; k < 50 && !heard; k++) {
            s_done (dealer, (uint8_t)round);
            heard = jr_fake_router_expect (&fake, JR_MSG_DONE, 100);
        }
        cr_assert (heard, "round %d", round);
        cr_assert_eq (fake.msg->marks[0].id[0], round);
        cr_assert_not_null (fake.peer);
        jr_fake_router_close (&fake);
        cr_assert_null (fake.peer);
        jr_fake_router_open_on (&fake, listener);
    }
    zsock_destroy (&dealer);
    jr_fake_router_destroy (&fake);
    close (listener);
}

//  A served fake: handle on each message, answering its sender; tick after
//  each wake; end once, as the actor ends.
typedef struct {
    int handled, ticks, ends;
} s_served_t;

static void
s_served_handle (jr_fake_router_t *fake, void *arg)
{
    s_served_t *self = arg;
    self->handled++;
    jr_msg_reset (fake->out, JR_MSG_STATE);
    fake->out->tag = fake->msg->tag + 1;
    jr_fake_router_send (fake, fake->out);
}

static void
s_served_tick (jr_fake_router_t *fake, void *arg)
{
    (void)fake;
    ((s_served_t *)arg)->ticks++;
}

static void
s_served_end (void *arg)
{
    ((s_served_t *)arg)->ends++;
}

Test (fakes, serve_answers_each_sender_and_ends_once)
{
    static const jr_fake_server_t server = {
        .handle = s_served_handle, .tick = s_served_tick, .end = s_served_end, .tick_ms = 1000
    };
    s_served_t state = { 0 };
    char endpoint[64];
    zactor_t *actor = jr_fake_serve (&server, &state, endpoint, sizeof endpoint);
    zsock_t *a = jr_fake_dealer (endpoint);
    zsock_t *b = jr_fake_dealer (endpoint);
    jr_msg_t *msg = jr_msg_new ();
    zsock_t *socks[] = { a, b, a };
    for (int i = 0; i < 3; i++) {
        jr_msg_reset (msg, JR_MSG_STATUS);
        msg->tag = 10 * (uint64_t)i;
        jr_fake_send (socks[i], msg);
        zframe_t *frame = jr_fake_recv (socks[i], msg, JR_MSG_STATE, 2000);
        cr_assert_eq (msg->tag, 10 * (uint64_t)i + 1);
        zframe_destroy (&frame);
    }
    zactor_destroy (&actor);
    cr_assert_eq (state.handled, 3);
    cr_assert_geq (state.ticks, 3);
    cr_assert_eq (state.ends, 1);
    jr_msg_destroy (&msg);
    zsock_destroy (&a);
    zsock_destroy (&b);
}
