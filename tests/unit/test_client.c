/*  test_client.c - libjr's client and the jr CLI against a fake broker and ingester in-process  */
#include "cli/json.h"
#include "common/clock.h"
#include "proto/proto.h"
#include "tests/fakes/fake_router.h"
#include <criterion/criterion.h>
#include <czmq.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SEEN   4096
#define MAX_EVENTS 1024

//  -------------------------------------------------------------------------
//  A fake broker: answers SUBMIT with ACCEPTED (task "bad" refused, task
//  "error" gets an ERROR for the whole message), can ignore the first
//  SUBMITs, and answers STATUS, CANCEL, RETRY and LIST from a table of the
//  jobs it accepted (or the test put there; state 0 there = running). The
//  id s_odd_id gets a mark with code INVALID; refuse (if set)
//  answers CANCEL, RETRY and LIST with an ERROR of that code. The test
//  reads the counters after zactor_destroy has joined the thread.

typedef struct {
    int drop;                                //  SUBMITs to ignore first
    int submits;                             //  SUBMITs seen
    uint32_t batch_max;                      //  most jobs in one SUBMIT
    size_t jobs_seen;                        //  jobs in all SUBMITs
    uint8_t first_ids[8][JR_ID_SIZE];        //  first job id of the first SUBMITs
    uint64_t tags[8];                        //  tags of the first SUBMITs
    uint8_t accepted[MAX_SEEN][JR_ID_SIZE];  //  ids accepted, for STATUS
    int states[MAX_SEEN];                    //  their states, 0 = running
    size_t naccepted;
    int statuses;                 //  STATUS requests seen
    int refuse;                   //  ERROR code for CANCEL, RETRY, LIST
    int cancels, retries, lists;  //  requests seen
    int list_code;                //  the state last listed
    uint8_t noted[JR_ID_SIZE];    //  the id with progress (if note_text set)
    int32_t note_value;           //  its progress
    const char *note_text;        //  NULL: STATE carries no notes, tasks, workers
} broker_t;

static const uint8_t s_odd_id[JR_ID_SIZE] = { 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE,
                                              0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE };

//  Index of an id in the fake's table, or -1.
static int
s_known (broker_t *self, const uint8_t *id)
{
    for (size_t i = 0; i < self->naccepted; i++)
        if (memcmp (self->accepted[i], id, JR_ID_SIZE) == 0)
            return (int)i;
    return -1;
}

//  CANCEL, RETRY and LIST, answered by STATE as the real broker does.
static void
s_broker_manage (broker_t *self, jr_fake_router_t *fake)
{
    const jr_msg_t *in = fake->msg;
    jr_msg_t *out = fake->out;
    self->cancels += in->type == JR_MSG_CANCEL;
    self->retries += in->type == JR_MSG_RETRY;
    self->lists += in->type == JR_MSG_LIST;
    if (self->refuse) {
        jr_fake_router_send_error (fake, in->tag, self->refuse, "refused");
        return;
    }
    jr_msg_reset (out, JR_MSG_STATE);
    out->tag = in->tag;
    if (in->type == JR_MSG_LIST) {
        self->list_code = in->code;
        if (in->code <= JR_STATE_UNKNOWN) {
            jr_fake_router_send_error (fake, in->tag, JR_EINVALID, "no such state to list");
            return;
        }
        for (size_t i = 0; i < self->naccepted; i++)
            if ((self->states[i] ? self->states[i] : JR_STATE_RUNNING) == in->code)
                jr_msg_add_mark (out, self->accepted[i], 3, in->code);
    }
    for (uint32_t m = 0; m < in->nmarks && in->type != JR_MSG_LIST; m++) {
        int i = s_known (self, in->marks[m].id);
        int state = JR_STATE_UNKNOWN;
        if (memcmp (in->marks[m].id, s_odd_id, JR_ID_SIZE) == 0)
            state = JR_EINVALID;
        else if (i >= 0) {
            int *now = &self->states[i];
            if (*now == 0)
                *now = JR_STATE_RUNNING;
            if (in->type == JR_MSG_CANCEL
                && (*now == JR_STATE_QUEUED || *now == JR_STATE_SCHEDULED
                    || *now == JR_STATE_RUNNING))
                *now = JR_STATE_CANCELLED;
            if (in->type == JR_MSG_RETRY && *now == JR_STATE_DEAD)
                *now = JR_STATE_QUEUED;
            state = *now;
        }
        jr_msg_add_mark (out, in->marks[m].id, 0, state);
    }
    jr_fake_router_send (fake, out);
}

static bool
s_task_is (const jr_job_t *job, const char *name)
{
    return job->task.len == strlen (name) && memcmp (job->task.ptr, name, job->task.len) == 0;
}

static void
s_broker_handle (jr_fake_router_t *fake, void *arg)
{
    broker_t *self = arg;
    const jr_msg_t *in = fake->msg;
    jr_msg_t *out = fake->out;
    if (in->type == JR_MSG_SUBMIT) {
        if (self->submits < 8) {
            memcpy (self->first_ids[self->submits], in->jobs[0].id, JR_ID_SIZE);
            self->tags[self->submits] = in->tag;
        }
        self->submits++;
        self->jobs_seen += in->njobs;
        if (in->njobs > self->batch_max)
            self->batch_max = in->njobs;
        if (self->drop > 0) {
            self->drop--;
            return;
        }
        for (uint32_t i = 0; i < in->njobs; i++)
            if (s_task_is (&in->jobs[i], "error")) {
                jr_fake_router_send_error (fake, in->tag, JR_EQUEUE_FULL, "queue is full");
                return;
            }
        jr_msg_reset (out, JR_MSG_ACCEPTED);
        out->tag = in->tag;
        for (uint32_t i = 0; i < in->njobs; i++) {
            int code = s_task_is (&in->jobs[i], "bad") ? JR_EUNKNOWN_TASK : 0;
            jr_msg_add_mark (out, in->jobs[i].id, 0, code);
            if (code == 0 && self->naccepted < MAX_SEEN)
                memcpy (self->accepted[self->naccepted++], in->jobs[i].id, JR_ID_SIZE);
        }
        jr_fake_router_send (fake, out);
    }
    else if (in->type == JR_MSG_STATUS) {
        self->statuses++;
        jr_msg_reset (out, JR_MSG_STATE);
        out->tag = in->tag;
        for (uint32_t m = 0; m < in->nmarks; m++) {
            int i = s_known (self, in->marks[m].id);
            int state = i < 0             ? JR_STATE_UNKNOWN
                        : self->states[i] ? self->states[i]
                                          : JR_STATE_RUNNING;
            jr_msg_add_mark (out, in->marks[m].id, i >= 0 ? 2 : 0, state);
            if (self->note_text) {  //  one note per mark, empty = no progress
                bool noted = memcmp (in->marks[m].id, self->noted, JR_ID_SIZE) == 0;
                const char *text = noted ? self->note_text : "";
                jr_msg_add_note (out, noted ? self->note_value : 0,
                                 (jr_bytes_t){ (const uint8_t *)text, strlen (text) });
                //  and the task and worker of each, "" where none
                const char *task = i < 0 ? "" : "sleep";
                const char *worker = state == JR_STATE_RUNNING ? "w1@node-1" : "";
                jr_msg_add_task (out, (jr_bytes_t){ (const uint8_t *)task, strlen (task) });
                jr_msg_add_worker (out, (jr_bytes_t){ (const uint8_t *)worker, strlen (worker) });
            }
        }
        jr_fake_router_send (fake, out);
    }
    else if (in->type == JR_MSG_CANCEL || in->type == JR_MSG_RETRY || in->type == JR_MSG_LIST)
        s_broker_manage (self, fake);
}

//  -------------------------------------------------------------------------
//  A fake ingester: "stored" ids are found at once; "late" ids (and every
//  other id when answer_all) are pending, then arrive twice, 20 and 30 ms
//  later; the rest are pending until the wait ends, then NOT_FOUND.

typedef struct {
    zframe_t *peer;  //  NULL = slot free
    uint64_t tag;
    uint8_t id[JR_ID_SIZE];
    bool found;  //  a result, else a NOT_FOUND mark
    int64_t due_us;
} event_t;

typedef struct {
    uint8_t stored[16][JR_ID_SIZE];
    size_t nstored;
    uint8_t late[16][JR_ID_SIZE];
    size_t nlate;
    uint8_t scheduled[4][JR_ID_SIZE];  //  stored rows of failed attempts to be retried
    size_t nscheduled;
    bool answer_all;             //  every unknown id is late
    uint8_t appear[JR_ID_SIZE];  //  stored from FETCH number appear_at on
    int appear_at;               //  0 = no such id
    uint32_t max_wait_ms;        //  end waits early (0 = as asked)
    int fetches;                 //  FETCH requests seen
    event_t *events;             //  answers due, MAX_EVENTS; NULL between runs
} ingester_t;

static bool
s_in (uint8_t (*ids)[JR_ID_SIZE], size_t n, const uint8_t *id)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp (ids[i], id, JR_ID_SIZE) == 0)
            return true;
    return false;
}

static void
s_result_job (jr_msg_t *out, const uint8_t *id)
{
    jr_job_t *job = jr_msg_add_job (out);
    memcpy (job->id, id, JR_ID_SIZE);
    job->task = (jr_bytes_t){ (const uint8_t *)"echo", 4 };
    job->payload = (jr_bytes_t){ (const uint8_t *)"result", 6 };
    job->worker = (jr_bytes_t){ (const uint8_t *)"fake@test", 9 };
    job->state = JR_STATE_SUCCEEDED;
    job->success = true;
    job->attempt = 1;
    job->created_us = job->accepted_us = job->dispatched_us = 1;
    job->started_us = job->completed_us = job->ingested_us = 2;
}

static void
s_schedule (ingester_t *self, zframe_t *peer, uint64_t tag, const uint8_t *id, bool found,
            int64_t delay_ms)
{
    if (!self->events)
        self->events = calloc (MAX_EVENTS, sizeof *self->events);
    for (int e = 0; e < MAX_EVENTS; e++)
        if (!self->events[e].peer) {
            self->events[e] = (event_t){
                zframe_dup (peer), tag, { 0 }, found, jr_clock_mono_us () + delay_ms * 1000
            };
            memcpy (self->events[e].id, id, JR_ID_SIZE);
            return;
        }
}

//  One id of a FETCH: its result, a NOT_FOUND mark, or a pending mark with
//  the answer scheduled.
static void
s_ingester_answer (ingester_t *self, jr_fake_router_t *fake, const uint8_t *id)
{
    const jr_msg_t *in = fake->msg;
    jr_msg_t *out = fake->out;
    bool appeared = self->appear_at && self->fetches >= self->appear_at
                    && memcmp (id, self->appear, JR_ID_SIZE) == 0;
    if (appeared || s_in (self->stored, self->nstored, id))
        s_result_job (out, id);
    else if (s_in (self->scheduled, self->nscheduled, id)) {
        s_result_job (out, id);
        jr_job_t *job = &out->jobs[out->njobs - 1];
        job->state = JR_STATE_SCHEDULED;
        job->success = false;
        job->payload = (jr_bytes_t){ NULL, 0 };
        job->error = (jr_bytes_t){ (const uint8_t *)"boom", 4 };
    }
    else if (in->wait_ms == 0)
        jr_msg_add_mark (out, id, 0, JR_ENOT_FOUND);
    else if (self->answer_all || s_in (self->late, self->nlate, id)) {
        jr_msg_add_mark (out, id, 0, 0);
        s_schedule (self, fake->peer, in->tag, id, true, 20);
        s_schedule (self, fake->peer, in->tag, id, true, 30);  //  a duplicate
    }
    else {
        jr_msg_add_mark (out, id, 0, 0);
        uint32_t wait = in->wait_ms;
        if (self->max_wait_ms && wait > self->max_wait_ms)
            wait = self->max_wait_ms;
        s_schedule (self, fake->peer, in->tag, id, false, wait);
    }
}

static void
s_ingester_handle (jr_fake_router_t *fake, void *arg)
{
    ingester_t *self = arg;
    const jr_msg_t *in = fake->msg;
    if (in->type != JR_MSG_FETCH)
        return;
    self->fetches++;
    jr_msg_reset (fake->out, JR_MSG_RESULTS);
    fake->out->tag = in->tag;
    for (uint32_t m = 0; m < in->nmarks; m++)
        s_ingester_answer (self, fake, in->marks[m].id);
    jr_fake_router_send (fake, fake->out);
}

//  Send the answers that are due.
static void
s_ingester_tick (jr_fake_router_t *fake, void *arg)
{
    ingester_t *self = arg;
    int64_t now = jr_clock_mono_us ();
    for (int e = 0; self->events && e < MAX_EVENTS; e++) {
        event_t *event = &self->events[e];
        if (!event->peer || event->due_us > now)
            continue;
        jr_msg_reset (fake->out, JR_MSG_RESULTS);
        fake->out->tag = event->tag;
        if (event->found)
            s_result_job (fake->out, event->id);
        else
            jr_msg_add_mark (fake->out, event->id, 0, JR_ENOT_FOUND);
        jr_fake_router_send_to (fake, event->peer, fake->out);
        zframe_destroy (&event->peer);
    }
}

static void
s_ingester_end (void *arg)
{
    ingester_t *self = arg;
    for (int e = 0; self->events && e < MAX_EVENTS; e++)
        zframe_destroy (&self->events[e].peer);
    free (self->events);
    self->events = NULL;
}

static const jr_fake_server_t s_fake_broker = { .handle = s_broker_handle };
static const jr_fake_server_t s_fake_ingester = {
    .handle = s_ingester_handle, .tick = s_ingester_tick, .end = s_ingester_end, .tick_ms = 5
};

//  An endpoint where nobody listens: a TCP port bound but not listening, so
//  connects are refused and no other test running at the same time can
//  take the port (a port bound and closed could be). Close the returned
//  descriptor at the end of the test.
static int
s_dead_endpoint (char *endpoint, size_t size)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    cr_assert (fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = 0 };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    cr_assert_eq (bind (fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t len = sizeof addr;
    cr_assert_eq (getsockname (fd, (struct sockaddr *)&addr, &len), 0);
    snprintf (endpoint, size, "tcp://127.0.0.1:%d", ntohs (addr.sin_port));
    return fd;
}

static void
s_vars (msgpack_sbuffer *buf, const char *json)
{
    msgpack_sbuffer_init (buf);
    cr_assert_eq (jr_json_to_msgpack (json, strlen (json), buf, NULL, 0), 0);
}

//  -------------------------------------------------------------------------

Test (client, new_endpoints)
{
    cr_assert_null (jr_client_new ("nonsense", NULL));
    cr_assert_null (jr_client_new ("tcp://127.0.0.1", NULL));
    cr_assert_null (jr_client_new ("tcp://127.0.0.1:notaport", NULL));
    cr_assert_null (jr_client_new ("tcp://127.0.0.1:70000", NULL));
    cr_assert_null (jr_client_new ("bogus://x", NULL));
    cr_assert_null (jr_client_new (NULL, "tcp://:5"));
    setenv ("JR_BROKER", "not an endpoint", 1);
    cr_assert_null (jr_client_new (NULL, NULL));
    setenv ("JR_BROKER", "tcp://127.0.0.1:5999", 1);
    jr_client_t *client = jr_client_new (NULL, NULL);
    cr_assert_not_null (client);
    jr_client_destroy (&client);
    cr_assert_null (client);
    jr_client_destroy (&client);  //  idempotent
    client = jr_client_new ("ipc:///tmp/jr-test-broker", "inproc://ingester");
    cr_assert_not_null (client);
    jr_client_destroy (&client);
    unsetenv ("JR_BROKER");
}

Test (client, submit_one)
{
    broker_t fake = { 0 };
    char ep[64];
    zactor_t *broker = jr_fake_serve (&s_fake_broker, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (ep, NULL);
    msgpack_sbuffer vars;
    s_vars (&vars, "{\"msg\":\"hello\"}");
    jr_job_t job = { 0 };
    job.task = (jr_bytes_t){ (const uint8_t *)"echo", 4 };
    job.vars = (jr_bytes_t){ (const uint8_t *)vars.data, vars.size };
    cr_assert_eq (jr_client_submit (client, &job), 0);
    static const uint8_t zero[JR_ID_SIZE];
    cr_assert_neq (memcmp (job.id, zero, JR_ID_SIZE), 0, "an id was made");
    cr_assert_gt (job.created_us, 0);
    //  an id given is kept
    uint8_t mine[JR_ID_SIZE];
    jr_id_parse ("1b4e28ba-2fa1-41d2-883f-0016d3cca427", mine);
    jr_job_init (&job, "echo");
    memcpy (job.id, mine, JR_ID_SIZE);
    cr_assert_eq (jr_client_submit (client, &job), 0);
    cr_assert_eq (memcmp (job.id, mine, JR_ID_SIZE), 0);
    jr_client_destroy (&client);
    zactor_destroy (&broker);
    cr_assert_eq (fake.submits, 2);
    cr_assert_eq (memcmp (fake.first_ids[1], mine, JR_ID_SIZE), 0);
    msgpack_sbuffer_destroy (&vars);
}

Test (client, resend_keeps_the_id)
{
    broker_t fake = { .drop = 1 };
    char ep[64];
    zactor_t *broker = jr_fake_serve (&s_fake_broker, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (ep, NULL);
    jr_client_set_timeout (client, 200);
    jr_job_t job;
    jr_job_init (&job, "echo");
    cr_assert_eq (jr_client_submit (client, &job), 0);
    jr_client_destroy (&client);
    zactor_destroy (&broker);
    //  Two sends at least (a slow machine may need a third), all alike.
    cr_assert_geq (fake.submits, 2, "the lost SUBMIT was sent again");
    for (int i = 0; i < fake.submits && i < 8; i++) {
        cr_assert_eq (memcmp (fake.first_ids[i], job.id, JR_ID_SIZE), 0, "with the same id");
        cr_assert_eq (fake.tags[i], fake.tags[0], "and the same tag");
    }
}

Test (client, submit_many_batches_and_codes)
{
    broker_t fake = { 0 };
    char ep[64];
    zactor_t *broker = jr_fake_serve (&s_fake_broker, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (ep, NULL);
    size_t n = 2500;
    jr_job_t *jobs = calloc (n, sizeof *jobs);
    int *codes = calloc (n, sizeof *codes);
    for (size_t i = 0; i < n; i++)
        jr_job_init (&jobs[i], "echo");
    jobs[1700].task = (jr_bytes_t){ (const uint8_t *)"bad", 3 };
    //  vars that are not one msgpack map never leave the client
    uint8_t not_a_map[] = { 0x93, 1, 2, 3 };
    uint8_t trailing[] = { 0x80, 0x01 };
    uint8_t truncated[] = { 0x81, 0xa1, 'a' };
    jobs[10].vars = (jr_bytes_t){ not_a_map, sizeof not_a_map };
    jobs[11].vars = (jr_bytes_t){ trailing, sizeof trailing };
    jobs[12].vars = (jr_bytes_t){ truncated, sizeof truncated };
    jobs[13].task = (jr_bytes_t){ NULL, 0 };
    int rc = jr_client_submit_many (client, jobs, n, codes);
    cr_assert_eq (rc, JR_EINVALID, "the first error, in job order");
    for (size_t i = 0; i < n; i++) {
        int want = i >= 10 && i <= 13 ? JR_EINVALID : i == 1700 ? JR_EUNKNOWN_TASK : 0;
        cr_assert_eq (codes[i], want, "job %zu: %d", i, codes[i]);
    }
    jr_client_destroy (&client);
    zactor_destroy (&broker);
    cr_assert_eq (fake.jobs_seen, n - 4);
    cr_assert_eq (fake.submits, 3, "2496 jobs in batches of up to 1,000");
    cr_assert_leq (fake.batch_max, 1000);
    free (jobs);
    free (codes);
}

Test (client, error_reply_fails_the_batch)
{
    broker_t fake = { 0 };
    char ep[64];
    zactor_t *broker = jr_fake_serve (&s_fake_broker, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (ep, NULL);
    jr_job_t jobs[3];
    jr_job_init (&jobs[0], "echo");
    jr_job_init (&jobs[1], "error");
    jr_job_init (&jobs[2], "echo");
    int codes[3];
    cr_assert_eq (jr_client_submit_many (client, jobs, 3, codes), JR_EQUEUE_FULL);
    for (int i = 0; i < 3; i++)
        cr_assert_eq (codes[i], JR_EQUEUE_FULL);
    jr_client_destroy (&client);
    zactor_destroy (&broker);
}

Test (client, unreachable_broker_times_out)
{
    char ep[64];
    int hold = s_dead_endpoint (ep, sizeof ep);
    jr_client_t *client = jr_client_new (ep, ep);
    jr_client_set_timeout (client, 50);
    jr_job_t job;
    jr_job_init (&job, "echo");
    cr_assert_eq (jr_client_submit (client, &job), JR_ETIMEOUT);
    int state = -1;
    cr_assert_eq (jr_client_status (client, job.id, &state, NULL), JR_ETIMEOUT);
    jr_job_t *result = NULL;
    cr_assert_eq (jr_client_result (client, job.id, &result), JR_ETIMEOUT);
    cr_assert_null (result);
    cr_assert_eq (jr_client_wait (client, job.id, 100, &result), JR_ETIMEOUT);
    cr_assert_null (result);
    cr_assert_eq (jr_client_cancel (client, job.id, &state), JR_ETIMEOUT);
    cr_assert_eq (jr_client_retry (client, job.id, &state), JR_ETIMEOUT);
    cr_assert_eq (jr_client_list (client, JR_STATE_DEAD, NULL, NULL), JR_ETIMEOUT);
    jr_client_destroy (&client);
    close (hold);
}

Test (client, status)
{
    broker_t fake = { 0 };
    char ep[64];
    zactor_t *broker = jr_fake_serve (&s_fake_broker, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (ep, NULL);
    jr_job_t job;
    jr_job_init (&job, "echo");
    cr_assert_eq (jr_client_submit (client, &job), 0);
    int state = -1;
    uint32_t attempt = 99;
    cr_assert_eq (jr_client_status (client, job.id, &state, &attempt), 0);
    cr_assert_eq (state, JR_STATE_RUNNING);
    cr_assert_eq (attempt, 2);
    uint8_t other[JR_ID_SIZE] = { 1, 2, 3 };
    cr_assert_eq (jr_client_status (client, other, &state, &attempt), 0);
    cr_assert_eq (state, JR_STATE_UNKNOWN);
    jr_client_destroy (&client);
    zactor_destroy (&broker);
    cr_assert_eq (fake.statuses, 2);
}

typedef struct {
    uint8_t seen[16][JR_ID_SIZE];
    int calls;
    int stop_after;  //  return false after this many calls (0 = never)
} collector_t;

static bool
s_collect (const jr_job_t *job, void *arg)
{
    collector_t *self = arg;
    for (int i = 0; i < self->calls; i++)
        cr_assert_neq (memcmp (self->seen[i], job->id, JR_ID_SIZE), 0, "a job came twice");
    cr_assert_lt (self->calls, 16);
    memcpy (self->seen[self->calls++], job->id, JR_ID_SIZE);
    cr_assert_eq (job->payload.len, 6);
    cr_assert_eq (memcmp (job->payload.ptr, "result", 6), 0);
    return !(self->stop_after && self->calls >= self->stop_after);
}

static void
s_fill_ids (uint8_t (*ids)[JR_ID_SIZE], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        jr_job_t job;
        jr_job_init (&job, "x");
        memcpy (ids[i], job.id, JR_ID_SIZE);
    }
}

Test (client, wait_many_found_then_pending)
{
    ingester_t fake = { .nstored = 2, .nlate = 2 };
    s_fill_ids (fake.stored, 2);
    s_fill_ids (fake.late, 2);
    uint8_t ids[5][JR_ID_SIZE];
    memcpy (ids[0], fake.stored[0], JR_ID_SIZE);
    memcpy (ids[1], fake.late[0], JR_ID_SIZE);
    memcpy (ids[2], fake.stored[1], JR_ID_SIZE);
    memcpy (ids[3], fake.late[1], JR_ID_SIZE);
    memcpy (ids[4], fake.late[1], JR_ID_SIZE);  //  asked twice, reported once
    char ep[64];
    zactor_t *ingester = jr_fake_serve (&s_fake_ingester, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (NULL, ep);
    collector_t got = { 0 };
    int rc =
        jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, 5, 20000, s_collect, &got);
    cr_assert_eq (rc, 0);
    cr_assert_eq (got.calls, 4, "each distinct id once");
    jr_client_destroy (&client);
    zactor_destroy (&ingester);
    cr_assert_eq (fake.fetches, 1, "pending ids come without asking again");
}

Test (client, wait_many_times_out_and_refetches)
{
    ingester_t fake = { .nstored = 1 };
    s_fill_ids (fake.stored, 1);
    uint8_t ids[2][JR_ID_SIZE];
    memcpy (ids[0], fake.stored[0], JR_ID_SIZE);
    s_fill_ids (&ids[1], 1);  //  never stored
    char ep[64];
    zactor_t *ingester = jr_fake_serve (&s_fake_ingester, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (NULL, ep);
    collector_t got = { 0 };
    int rc =
        jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, 2, 300, s_collect, &got);
    cr_assert_eq (rc, JR_ETIMEOUT);
    cr_assert_eq (got.calls, 1);
    cr_assert_eq (memcmp (got.seen[0], ids[0], JR_ID_SIZE), 0);
    jr_client_destroy (&client);
    zactor_destroy (&ingester);
    cr_assert_geq (fake.fetches, 1);
}

Test (client, wait_many_refetch_finds_later_results)
{
    //  The first FETCH's wait ends with NOT_FOUND; the re-FETCH finds it.
    ingester_t fake = { .appear_at = 2, .max_wait_ms = 50 };
    s_fill_ids (&fake.appear, 1);
    char ep[64];
    zactor_t *ingester = jr_fake_serve (&s_fake_ingester, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (NULL, ep);
    collector_t got = { 0 };
    int rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE]) & fake.appear, 1, 20000,
                                  s_collect, &got);
    cr_assert_eq (rc, 0);
    cr_assert_eq (got.calls, 1);
    jr_client_destroy (&client);
    zactor_destroy (&ingester);
    cr_assert_eq (fake.fetches, 2);
}

Test (client, result_found_or_not)
{
    ingester_t fake = { 0 };
    uint8_t ids[1][JR_ID_SIZE];
    s_fill_ids (ids, 1);
    char ep[64];
    zactor_t *ingester = jr_fake_serve (&s_fake_ingester, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (NULL, ep);
    //  wait=0 answers NOT_FOUND at once: the id is not there yet
    jr_job_t *job = NULL;
    cr_assert_eq (jr_client_result (client, ids[0], &job), JR_ENOT_FOUND);
    cr_assert_null (job);
    jr_client_destroy (&client);
    zactor_destroy (&ingester);
    //  now stored: result finds it
    memcpy (fake.stored[0], ids[0], JR_ID_SIZE);
    fake.nstored = 1;
    ingester = jr_fake_serve (&s_fake_ingester, &fake, ep, sizeof ep);
    client = jr_client_new (NULL, ep);
    cr_assert_eq (jr_client_result (client, ids[0], &job), 0);
    cr_assert_not_null (job);
    cr_assert_eq (memcmp (job->id, ids[0], JR_ID_SIZE), 0);
    cr_assert_eq (job->payload.len, 6);
    cr_assert_eq (memcmp (job->payload.ptr, "result", 6), 0);
    cr_assert_eq (job->worker.len, 9);
    jr_job_destroy (&job);
    cr_assert_null (job);
    jr_client_destroy (&client);
    zactor_destroy (&ingester);
}

Test (client, wait_many_stops_when_told)
{
    ingester_t fake = { .nstored = 3 };
    s_fill_ids (fake.stored, 3);
    char ep[64];
    zactor_t *ingester = jr_fake_serve (&s_fake_ingester, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (NULL, ep);
    collector_t got = { .stop_after = 1 };
    int rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])fake.stored, 3, -1,
                                  s_collect, &got);
    cr_assert_eq (rc, 0);
    cr_assert_eq (got.calls, 1);
    jr_client_destroy (&client);
    zactor_destroy (&ingester);
}

Test (client, wait_one)
{
    ingester_t fake = { .nlate = 1 };
    s_fill_ids (fake.late, 1);
    char ep[64];
    zactor_t *ingester = jr_fake_serve (&s_fake_ingester, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (NULL, ep);
    jr_job_t *job = NULL;
    cr_assert_eq (jr_client_wait (client, fake.late[0], -1, &job), 0);
    cr_assert_not_null (job);
    cr_assert_eq (memcmp (job->id, fake.late[0], JR_ID_SIZE), 0);
    cr_assert_eq (job->state, JR_STATE_SUCCEEDED);
    cr_assert_eq (job->task.len, 4);
    cr_assert_eq (memcmp (job->task.ptr, "echo", 4), 0);
    jr_job_destroy (&job);
    jr_client_destroy (&client);
    zactor_destroy (&ingester);
}

//  -------------------------------------------------------------------------
//  Cancel, retry, list

//  Put a job in the fake broker's table (before the fake starts).
static void
s_preset (broker_t *fake, uint8_t id[JR_ID_SIZE], int state)
{
    s_fill_ids ((uint8_t (*)[JR_ID_SIZE])id, 1);
    memcpy (fake->accepted[fake->naccepted], id, JR_ID_SIZE);
    fake->states[fake->naccepted++] = state;
}

Test (client, cancel)
{
    broker_t fake = { 0 };
    uint8_t queued[JR_ID_SIZE], running[JR_ID_SIZE], done[JR_ID_SIZE], dead[JR_ID_SIZE],
        unknown[JR_ID_SIZE];
    s_preset (&fake, queued, JR_STATE_QUEUED);
    s_preset (&fake, running, JR_STATE_RUNNING);
    s_preset (&fake, done, JR_STATE_SUCCEEDED);
    s_preset (&fake, dead, JR_STATE_DEAD);
    s_fill_ids (&unknown, 1);
    char ep[64];
    zactor_t *broker = jr_fake_serve (&s_fake_broker, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (ep, NULL);
    int state = -1;
    cr_assert_eq (jr_client_cancel (client, queued, &state), 0);
    cr_assert_eq (state, JR_STATE_CANCELLED);
    cr_assert_eq (jr_client_cancel (client, running, &state), 0);
    cr_assert_eq (state, JR_STATE_CANCELLED, "a running job is being stopped");
    cr_assert_eq (jr_client_cancel (client, queued, &state), 0);
    cr_assert_eq (state, JR_STATE_CANCELLED, "cancelling twice is harmless");
    cr_assert_eq (jr_client_cancel (client, done, &state), 0);
    cr_assert_eq (state, JR_STATE_SUCCEEDED, "too late: the state it has");
    cr_assert_eq (jr_client_cancel (client, dead, &state), 0);
    cr_assert_eq (state, JR_STATE_DEAD);
    cr_assert_eq (jr_client_cancel (client, unknown, &state), 0);
    cr_assert_eq (state, JR_STATE_UNKNOWN);
    cr_assert_eq (jr_client_cancel (client, done, NULL), 0, "state may be NULL");
    //  the cancelled job now says so
    uint32_t attempt;
    cr_assert_eq (jr_client_status (client, running, &state, &attempt), 0);
    cr_assert_eq (state, JR_STATE_CANCELLED);
    jr_client_destroy (&client);
    zactor_destroy (&broker);
    cr_assert_eq (fake.cancels, 7);
}

Test (client, retry)
{
    broker_t fake = { 0 };
    uint8_t dead[JR_ID_SIZE], running[JR_ID_SIZE], unknown[JR_ID_SIZE];
    s_preset (&fake, dead, JR_STATE_DEAD);
    s_preset (&fake, running, JR_STATE_RUNNING);
    s_fill_ids (&unknown, 1);
    char ep[64];
    zactor_t *broker = jr_fake_serve (&s_fake_broker, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (ep, NULL);
    int state = -1;
    cr_assert_eq (jr_client_retry (client, dead, &state), 0);
    cr_assert_eq (state, JR_STATE_QUEUED);
    cr_assert_eq (jr_client_retry (client, dead, &state), 0);
    cr_assert_eq (state, JR_STATE_QUEUED, "no longer dead: its state now");
    cr_assert_eq (jr_client_retry (client, running, &state), 0);
    cr_assert_eq (state, JR_STATE_RUNNING);
    cr_assert_eq (jr_client_retry (client, unknown, &state), 0);
    cr_assert_eq (state, JR_STATE_UNKNOWN);
    jr_client_destroy (&client);
    zactor_destroy (&broker);
    cr_assert_eq (fake.retries, 4);
}

typedef struct {
    uint8_t ids[8][JR_ID_SIZE];
    uint32_t attempts[8];
    int calls;
    int stop_after;  //  return false after this many calls (0 = never)
} id_list_t;

static bool
s_collect_id (const uint8_t id[JR_ID_SIZE], uint32_t attempt, void *arg)
{
    id_list_t *self = arg;
    cr_assert_lt (self->calls, 8);
    memcpy (self->ids[self->calls], id, JR_ID_SIZE);
    self->attempts[self->calls++] = attempt;
    return !(self->stop_after && self->calls >= self->stop_after);
}

Test (client, list)
{
    broker_t fake = { 0 };
    uint8_t dead[3][JR_ID_SIZE], queued[JR_ID_SIZE];
    for (int i = 0; i < 3; i++)
        s_preset (&fake, dead[i], JR_STATE_DEAD);
    s_preset (&fake, queued, JR_STATE_QUEUED);
    char ep[64];
    zactor_t *broker = jr_fake_serve (&s_fake_broker, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (ep, NULL);
    id_list_t got = { 0 };
    cr_assert_eq (jr_client_list (client, JR_STATE_DEAD, s_collect_id, &got), 0);
    cr_assert_eq (got.calls, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq (memcmp (got.ids[i], dead[i], JR_ID_SIZE), 0);
        cr_assert_eq (got.attempts[i], 3);
    }
    got = (id_list_t){ 0 };
    cr_assert_eq (jr_client_list (client, JR_STATE_QUEUED, s_collect_id, &got), 0);
    cr_assert_eq (got.calls, 1);
    cr_assert_eq (memcmp (got.ids[0], queued, JR_ID_SIZE), 0);
    got = (id_list_t){ 0 };
    cr_assert_eq (jr_client_list (client, JR_STATE_CANCELLED, s_collect_id, &got), 0);
    cr_assert_eq (got.calls, 0, "an empty list is a list");
    got = (id_list_t){ .stop_after = 1 };
    cr_assert_eq (jr_client_list (client, JR_STATE_DEAD, s_collect_id, &got), 0);
    cr_assert_eq (got.calls, 1, "the callback stops it");
    cr_assert_eq (jr_client_list (client, JR_STATE_DEAD, NULL, NULL), 0);
    //  the broker's ERROR for a state it does not list
    cr_assert_eq (jr_client_list (client, JR_STATE_UNKNOWN, s_collect_id, &got), JR_EINVALID);
    //  refused here, never sent
    cr_assert_eq (jr_client_list (client, -1, s_collect_id, &got), JR_EINVALID);
    jr_client_destroy (&client);
    zactor_destroy (&broker);
    cr_assert_eq (fake.lists, 6);
    cr_assert_eq (fake.list_code, JR_STATE_UNKNOWN);
}

Test (client, cancel_retry_list_map_errors)
{
    broker_t fake = { .refuse = JR_EINTERNAL };
    uint8_t id[JR_ID_SIZE];
    s_preset (&fake, id, JR_STATE_DEAD);
    char ep[64];
    zactor_t *broker = jr_fake_serve (&s_fake_broker, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (ep, NULL);
    int state = -1;
    cr_assert_eq (jr_client_cancel (client, id, &state), JR_EINTERNAL);
    cr_assert_eq (jr_client_retry (client, id, &state), JR_EINTERNAL);
    id_list_t got = { 0 };
    cr_assert_eq (jr_client_list (client, JR_STATE_DEAD, s_collect_id, &got), JR_EINTERNAL);
    cr_assert_eq (got.calls, 0);
    jr_client_destroy (&client);
    zactor_destroy (&broker);

    //  a mark with a negative code refuses that id
    fake = (broker_t){ 0 };
    broker = jr_fake_serve (&s_fake_broker, &fake, ep, sizeof ep);
    client = jr_client_new (ep, NULL);
    state = -1;
    cr_assert_eq (jr_client_cancel (client, s_odd_id, &state), JR_EINVALID);
    cr_assert_eq (state, JR_STATE_UNKNOWN);
    cr_assert_eq (jr_client_retry (client, s_odd_id, &state), JR_EINVALID);
    jr_client_destroy (&client);
    zactor_destroy (&broker);
}

Test (client, progress)
{
    broker_t fake = { .note_value = 1234, .note_text = "slept 1234 of 3000 ms" };
    uint8_t running[JR_ID_SIZE], quiet[JR_ID_SIZE], unknown[JR_ID_SIZE];
    s_preset (&fake, running, JR_STATE_RUNNING);
    s_preset (&fake, quiet, JR_STATE_RUNNING);
    s_fill_ids (&unknown, 1);
    memcpy (fake.noted, running, JR_ID_SIZE);
    char ep[64];
    zactor_t *broker = jr_fake_serve (&s_fake_broker, &fake, ep, sizeof ep);
    jr_client_t *client = jr_client_new (ep, NULL);
    int state = -1;
    uint32_t attempt = 0;
    int32_t value = -1;
    char text[JR_MAX_NOTE];
    cr_assert_eq (jr_client_progress (client, running, &state, &attempt, &value, text, sizeof text),
                  0);
    cr_assert_eq (state, JR_STATE_RUNNING);
    cr_assert_eq (attempt, 2);
    cr_assert_eq (value, 1234);
    cr_assert_str_eq (text, "slept 1234 of 3000 ms");
    //  Cut to the caller's buffer.
    char small[6];
    cr_assert_eq (jr_client_progress (client, running, NULL, NULL, NULL, small, sizeof small), 0);
    cr_assert_str_eq (small, "slept");
    //  An empty note: running, no progress yet.
    cr_assert_eq (jr_client_progress (client, quiet, &state, &attempt, &value, text, sizeof text),
                  0);
    cr_assert_eq (state, JR_STATE_RUNNING);
    cr_assert_eq (value, 0);
    cr_assert_str_eq (text, "");
    cr_assert_eq (jr_client_progress (client, unknown, &state, &attempt, &value, text, sizeof text),
                  0);
    cr_assert_eq (state, JR_STATE_UNKNOWN);
    cr_assert_eq (value, 0);
    //  Status is unchanged by notes.
    cr_assert_eq (jr_client_status (client, running, &state, &attempt), 0);
    cr_assert_eq (state, JR_STATE_RUNNING);
    jr_client_destroy (&client);
    zactor_destroy (&broker);
    cr_assert_eq (fake.statuses, 5);

    //  A broker that sends no notes at all: no progress, no error.
    broker_t old = { 0 };
    s_preset (&old, running, JR_STATE_RUNNING);
    broker = jr_fake_serve (&s_fake_broker, &old, ep, sizeof ep);
    client = jr_client_new (ep, NULL);
    value = -1;
    strcpy (text, "stale");
    cr_assert_eq (jr_client_progress (client, running, &state, &attempt, &value, text, sizeof text),
                  0);
    cr_assert_eq (state, JR_STATE_RUNNING);
    cr_assert_eq (value, 0);
    cr_assert_str_eq (text, "");
    jr_client_destroy (&client);
    zactor_destroy (&broker);
}

//  -------------------------------------------------------------------------
//  The jr CLI, run as a process against the fakes

static bool
s_cli (char *path, size_t size)
{
    const char *bin = getenv ("JR_BIN");
    if (!bin)
        return false;
    snprintf (path, size, "%s/jr", bin);
    return access (path, X_OK) == 0;
}

//  Run a shell command; its stdout and stderr go to out. Returns the exit status.
static int __attribute__ ((format (printf, 3, 4)))
s_run (char *out, size_t size, const char *format, ...)
{
    char command[1024];
    va_list args;
    va_start (args, format);
    vsnprintf (command, sizeof command, format, args);
    va_end (args);
    strncat (command, " 2>&1", sizeof command - strlen (command) - 1);
    FILE *pipe = popen (command, "r");
    cr_assert (pipe);
    size_t n = fread (out, 1, size - 1, pipe);
    out[n] = 0;
    int status = pclose (pipe);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

Test (client, cli)
{
    char jr[512];
    if (!s_cli (jr, sizeof jr))
        cr_skip_test ("the jr binary is not built ($JR_BIN)");
    broker_t bfake = { 0 };
    ingester_t ifake = { .answer_all = true };
    char bep[64], iep[64], dead[64];
    zactor_t *broker = jr_fake_serve (&s_fake_broker, &bfake, bep, sizeof bep);
    zactor_t *ingester = jr_fake_serve (&s_fake_ingester, &ifake, iep, sizeof iep);
    int hold = s_dead_endpoint (dead, sizeof dead);
    char out[8192];

    //  submit and wait: global flags before and after the command
    int rc = s_run (out, sizeof out,
                    "%s --broker %s submit --ingester %s --wait --priority 3 "
                    "echo msg=hi 'n:=3' 'l:=[1,\"x\"]'",
                    jr, bep, iep);
    cr_assert_eq (rc, 0, "%s", out);
    cr_assert (strstr (out, "\"state\":\"succeeded\""), "%s", out);
    cr_assert (strstr (out, "\"payload\":\"result\""), "%s", out);
    char id[37];
    memcpy (id, out, 36);
    id[36] = 0;
    uint8_t raw[JR_ID_SIZE];
    cr_assert_eq (jr_id_parse (id, raw), 0, "the id comes first: %s", out);

    //  status of an accepted, unfinished job: the ingester has none, the
    //  broker says (this one names no task: null)
    rc = s_run (out, sizeof out, "%s status %s --broker %s --ingester %s", jr, id, bep, iep);
    cr_assert_eq (rc, 0, "%s", out);
    char want[128];
    snprintf (want, sizeof want,
              "{\"id\":\"%s\",\"state\":\"running\",\"attempt\":2,\"task\":null}", id);
    cr_assert (strstr (out, want), "%s", out);

    //  bad JSON in a typed var
    rc = s_run (out, sizeof out, "%s --broker %s submit echo 'n:={' ", jr, bep);
    cr_assert_eq (rc, 2, "%s", out);
    cr_assert (strstr (out, "bad JSON"), "%s", out);

    //  a refused job
    rc = s_run (out, sizeof out, "%s --broker %s submit bad", jr, bep);
    cr_assert_eq (rc, 1, "%s", out);
    cr_assert (strstr (out, "UNKNOWN_TASK"), "%s", out);

    //  an unreachable broker is a timeout
    rc = s_run (out, sizeof out, "JR_TIMEOUT=50 %s --broker %s submit echo", jr, dead);
    cr_assert_eq (rc, 3, "%s", out);

    //  --file: one job per line, a bad line reported by number and skipped
    char path[] = "/tmp/jr-test-client-XXXXXX";
    int fd = mkstemp (path);
    cr_assert (fd >= 0);
    const char *lines = "{\"task\":\"echo\",\"vars\":{\"msg\":\"one\"}}\n"
                        "{\"task\":\"echo\",\"vars\":[1]}\n"
                        "\n"
                        "{\"task\":\"echo\",\"priority\":5,\"timeout_ms\":100}\n"
                        "{\"task\":\"echo\",\"colour\":\"red\"}\n"
                        "{\"task\":\n";
    cr_assert_eq (write (fd, lines, strlen (lines)), (ssize_t)strlen (lines));
    close (fd);
    //  all or nothing: no line submitted, each bad one named by FILE:LINE and field
    rc = s_run (out, sizeof out, "%s --broker %s submit --file %s", jr, bep, path);
    cr_assert_eq (rc, 2, "%s", out);
    char want_line[400];
    snprintf (want_line, sizeof want_line, "%s:2: field vars: must be an object", path);
    cr_assert (strstr (out, want_line), "%s", out);
    snprintf (want_line, sizeof want_line, "%s:5: field colour: unknown", path);
    cr_assert (strstr (out, want_line), "%s", out);
    snprintf (want_line, sizeof want_line, "%s:6: column", path);
    cr_assert (strstr (out, want_line), "%s", out);
    snprintf (want_line, sizeof want_line, "%s:1:", path);
    cr_assert_null (strstr (out, want_line), "%s", out);
    cr_assert (strstr (out, "nothing submitted"), "%s", out);
    //  --keep-going: the good lines, one stdout line per input line
    rc = s_run (out, sizeof out, "(%s --broker %s submit --keep-going --file %s 2>/dev/null)", jr,
                bep, path);
    cr_assert_eq (rc, 1, "%s", out);
    int ids = 0, nlines = 0;
    for (char *line = out, *end; (end = strchr (line, '\n')); line = end + 1, nlines++) {
        *end = 0;
        bool is_id = strlen (line) == 36 && jr_id_parse (line, raw) == 0;
        ids += is_id;
        if (nlines == 0 || nlines == 3)
            cr_assert (is_id, "line %d: %s", nlines + 1, line);
        else if (nlines == 2)
            cr_assert_str_eq (line, "", "a blank line in, an empty line out");
        else
            cr_assert_str_eq (line, "-", "line %d", nlines + 1);
    }
    cr_assert_eq (nlines, 6);
    cr_assert_eq (ids, 2);
    //  and from stdin
    rc = s_run (out, sizeof out, "head -1 %s | %s --broker %s submit --file -", path, jr, bep);
    cr_assert_eq (rc, 0, "%s", out);
    unlink (path);

    //  result of an id nobody stored
    rc = s_run (out, sizeof out, "%s --ingester %s result 1b4e28ba-2fa1-41d2-883f-0016d3cca427", jr,
                iep);
    cr_assert_eq (rc, 4, "%s", out);
    cr_assert (strstr (out, "no result for 1b4e28ba-2fa1-41d2-883f-0016d3cca427"), "%s", out);

    //  help and usage errors
    rc = s_run (out, sizeof out, "%s --help", jr);
    cr_assert_eq (rc, 0, "%s", out);
    cr_assert (strstr (out, "submit"), "%s", out);
    rc = s_run (out, sizeof out, "%s result --help", jr);
    cr_assert_eq (rc, 0, "%s", out);
    rc = s_run (out, sizeof out, "%s frobnicate", jr);
    cr_assert_eq (rc, 2, "%s", out);
    rc = s_run (out, sizeof out, "%s status not-an-id", jr);
    cr_assert_eq (rc, 2, "%s", out);

    close (hold);
    zactor_destroy (&broker);
    zactor_destroy (&ingester);
}

//  Each flag a command's --help lists must be found where `jr --help` says
//  flags may go, before the command: one that takes a value (shown "--name
//  V") must have its value skipped, a switch must not. Run jr FLAG [1]
//  COMMAND --help; it must print that command's usage.
static void
s_check_flags (const char *jr, const char *command)
{
    char usage[8192], out[8192], want[128];
    int rc = s_run (usage, sizeof usage, "%s %s --help", jr, command);
    cr_assert_eq (rc, 0, "%s", usage);
    snprintf (want, sizeof want, "usage: jr %s", command);
    cr_assert (strncmp (usage, want, strlen (want)) == 0, "%s", usage);
    int flags = 0;
    for (char *line = strstr (usage, "\n  --"); line; line = strstr (line + 1, "\n  --")) {
        char name[64];
        if (sscanf (line, "\n  --%63s", name) != 1 || strcmp (name, "help") == 0)
            continue;
        bool valued = strncmp (line + 5 + strlen (name), " V ", 3) == 0;
        rc = s_run (out, sizeof out, "%s --%s %s %s --help", jr, name, valued ? "1" : "", command);
        cr_assert_eq (rc, 0, "jr --%s %s: %s", name, command, out);
        cr_assert (strncmp (out, want, strlen (want)) == 0, "jr --%s %s: %s", name, command, out);
        flags++;
    }
    cr_assert_gt (flags, 1, "%s",
                  usage);  //  keygen has two; the others --broker, --ingester, --keys, their own
}

//  jr's commands and flags come from one table: every command `jr --help`
//  lists runs, with every flag it lists.
Test (client, cli_command_table)
{
    char jr[512];
    if (!s_cli (jr, sizeof jr))
        cr_skip_test ("the jr binary is not built ($JR_BIN)");
    char help[8192];
    int rc = s_run (help, sizeof help, "%s --help", jr);
    cr_assert_eq (rc, 0, "%s", help);
    char *list = strstr (help, "commands:\n");
    cr_assert (list, "%s", help);
    char *after = strstr (list, "\n\n");  //  the list ends at a blank line
    if (after)
        after[1] = 0;
    char last[64] = "";
    int commands = 0;
    for (char *line = strstr (list, "\n  "); line; line = strstr (line + 1, "\n  ")) {
        char name[64];
        if (sscanf (line, "\n  %63s", name) != 1 || strcmp (name, last) == 0)
            continue;  //  submit has two lines
        s_check_flags (jr, name);
        snprintf (last, sizeof last, "%s", name);
        commands++;
    }
    cr_assert_eq (commands, 9, "%s", help);
    rc = s_run (help, sizeof help, "%s help", jr);
    cr_assert_eq (rc, 0, "%s", help);
}

Test (client, cli_cancel_list_retry_status)
{
    char jr[512];
    if (!s_cli (jr, sizeof jr))
        cr_skip_test ("the jr binary is not built ($JR_BIN)");
    broker_t bfake = { 0 };
    ingester_t ifake = { .nstored = 1, .nscheduled = 2 };
    uint8_t queued[JR_ID_SIZE], done[JR_ID_SIZE], dead[2][JR_ID_SIZE], retried[JR_ID_SIZE],
        unknown[JR_ID_SIZE];
    s_preset (&bfake, queued, JR_STATE_QUEUED);
    s_preset (&bfake, done, JR_STATE_SUCCEEDED);
    s_preset (&bfake, dead[0], JR_STATE_DEAD);
    s_preset (&bfake, dead[1], JR_STATE_DEAD);
    //  stored as a failed attempt to be retried; the broker has it running again
    s_preset (&bfake, retried, JR_STATE_RUNNING);
    memcpy (ifake.scheduled[0], retried, JR_ID_SIZE);
    s_fill_ids (&ifake.scheduled[1], 1);  //  scheduled, and the broker knows nothing
    s_fill_ids (ifake.stored, 1);         //  finished and forgotten by the broker
    s_fill_ids (&unknown, 1);
    char bep[64], iep[64];
    zactor_t *broker = jr_fake_serve (&s_fake_broker, &bfake, bep, sizeof bep);
    zactor_t *ingester = jr_fake_serve (&s_fake_ingester, &ifake, iep, sizeof iep);
    char out[8192], want[256], id[37], id2[37];
    int rc;
#define JR_RUN(...) s_run (out, sizeof out, __VA_ARGS__)

    //  cancel
    jr_id_format (queued, id);
    rc = JR_RUN ("%s cancel %s --broker %s --ingester %s", jr, id, bep, iep);
    cr_assert_eq (rc, 0, "%s", out);
    snprintf (want, sizeof want, "{\"id\":\"%s\",\"state\":\"cancelled\"}\n", id);
    cr_assert_str_eq (out, want);
    jr_id_format (done, id);
    rc = JR_RUN ("%s --broker %s --ingester %s cancel %s", jr, bep, iep, id);
    cr_assert_eq (rc, 1, "%s", out);
    snprintf (want, sizeof want, "job %s already succeeded", id);
    cr_assert (strstr (out, want), "%s", out);
    jr_id_format (ifake.stored[0], id);
    rc = JR_RUN ("%s --broker %s --ingester %s cancel %s", jr, bep, iep, id);
    cr_assert_eq (rc, 1, "%s", out);
    snprintf (want, sizeof want, "job %s already succeeded", id);
    cr_assert (strstr (out, want), "the ingester knows how it ended: %s", out);
    jr_id_format (unknown, id);
    rc = JR_RUN ("%s --broker %s --ingester %s cancel %s", jr, bep, iep, id);
    cr_assert_eq (rc, 4, "%s", out);
    cr_assert (strstr (out, "not known"), "%s", out);
    rc = JR_RUN ("%s cancel", jr);
    cr_assert_eq (rc, 2, "%s", out);
    rc = JR_RUN ("%s cancel not-an-id", jr);
    cr_assert_eq (rc, 2, "%s", out);
    rc = JR_RUN ("%s cancel %s %s", jr, id, id);
    cr_assert_eq (rc, 2, "%s", out);

    //  list: flags before or after the command
    rc = JR_RUN ("%s list --state dead --broker %s", jr, bep);
    cr_assert_eq (rc, 0, "%s", out);
    jr_id_format (dead[0], id);
    jr_id_format (dead[1], id2);
    snprintf (want, sizeof want, "%s\n%s\n", id, id2);
    cr_assert_str_eq (out, want);
    rc = JR_RUN ("%s --state=dead --broker %s list", jr, bep);
    cr_assert_eq (rc, 0, "%s", out);
    cr_assert_str_eq (out, want);
    rc = JR_RUN ("%s --broker %s --state cancelled list", jr, bep);
    cr_assert_eq (rc, 0, "%s", out);
    jr_id_format (queued, id);
    snprintf (want, sizeof want, "%s\n", id);
    cr_assert_str_eq (out, want, "the job cancelled above");
    rc = JR_RUN ("%s --broker %s list --state expired", jr, bep);
    cr_assert_eq (rc, 0, "%s", out);
    cr_assert_str_eq (out, "");
    rc = JR_RUN ("%s list --broker %s", jr, bep);
    cr_assert_eq (rc, 2, "%s", out);
    cr_assert (strstr (out, "--state"), "%s", out);
    rc = JR_RUN ("%s list --state bogus --broker %s", jr, bep);
    cr_assert_eq (rc, 2, "%s", out);
    cr_assert (strstr (out, "not a state"), "%s", out);
    rc = JR_RUN ("%s list --state unknown --broker %s", jr, bep);
    cr_assert_eq (rc, 2, "%s", out);
    rc = JR_RUN ("%s list dead --broker %s", jr, bep);
    cr_assert_eq (rc, 2, "%s", out);
    rc = JR_RUN ("%s list --help", jr);
    cr_assert_eq (rc, 0, "%s", out);

    //  retry
    jr_id_format (dead[0], id);
    rc = JR_RUN ("%s retry %s --broker %s", jr, id, bep);
    cr_assert_eq (rc, 0, "%s", out);
    snprintf (want, sizeof want, "{\"id\":\"%s\",\"state\":\"queued\"}\n", id);
    cr_assert_str_eq (out, want);
    jr_id_format (done, id);
    rc = JR_RUN ("%s retry %s --broker %s", jr, id, bep);
    cr_assert_eq (rc, 1, "%s", out);
    cr_assert (strstr (out, "not dead (it is succeeded)"), "%s", out);
    jr_id_format (unknown, id);
    rc = JR_RUN ("%s retry %s --broker %s", jr, id, bep);
    cr_assert_eq (rc, 4, "%s", out);
    rc = JR_RUN ("%s retry", jr);
    cr_assert_eq (rc, 2, "%s", out);

    //  status of a stored SCHEDULED row: the broker's word (the task the
    //  row's, as this broker names none; no worker, as it names none)
    jr_id_format (retried, id);
    rc = JR_RUN ("%s status %s --broker %s --ingester %s", jr, id, bep, iep);
    cr_assert_eq (rc, 0, "%s", out);
    snprintf (want, sizeof want,
              "{\"id\":\"%s\",\"state\":\"running\",\"attempt\":2,\"task\":\"echo\"}\n", id);
    cr_assert (strstr (out, want), "%s", out);
    //  the broker does not know it: the row's
    jr_id_format (ifake.scheduled[1], id);
    rc = JR_RUN ("%s status %s --broker %s --ingester %s", jr, id, bep, iep);
    cr_assert_eq (rc, 0, "%s", out);
    snprintf (want, sizeof want,
              "{\"id\":\"%s\",\"state\":\"scheduled\",\"attempt\":1,\"task\":\"echo\","
              "\"worker\":\"fake@test\"}\n",
              id);
    cr_assert (strstr (out, want), "%s", out);
    //  a final row: the ingester's word
    jr_id_format (ifake.stored[0], id);
    rc = JR_RUN ("%s status %s --broker %s --ingester %s", jr, id, bep, iep);
    cr_assert_eq (rc, 0, "%s", out);
    snprintf (want, sizeof want,
              "{\"id\":\"%s\",\"state\":\"succeeded\",\"attempt\":1,\"task\":\"echo\","
              "\"worker\":\"fake@test\"}\n",
              id);
    cr_assert (strstr (out, want), "%s", out);
    //  result shows the row's state by name
    jr_id_format (retried, id);
    rc = JR_RUN ("%s result %s --ingester %s", jr, id, iep);
    cr_assert_eq (rc, 1, "a failed attempt: %s", out);
    cr_assert (strstr (out, "\"state\":\"scheduled\""), "%s", out);
    cr_assert (strstr (out, "\"error\":\"boom\""), "%s", out);
#undef JR_RUN
    zactor_destroy (&broker);
    zactor_destroy (&ingester);
}

//  jr status shows a running job's progress, and nothing more without one.
Test (client, cli_status_progress)
{
    char jr[512];
    if (!s_cli (jr, sizeof jr))
        cr_skip_test ("the jr binary is not built ($JR_BIN)");
    broker_t bfake = { .note_value = 42, .note_text = "copying \"a\"\tto b" };
    ingester_t ifake = { 0 };
    uint8_t running[JR_ID_SIZE], quiet[JR_ID_SIZE], queued[JR_ID_SIZE];
    s_preset (&bfake, running, JR_STATE_RUNNING);
    s_preset (&bfake, quiet, JR_STATE_RUNNING);
    s_preset (&bfake, queued, JR_STATE_QUEUED);
    memcpy (bfake.noted, running, JR_ID_SIZE);
    char bep[64], iep[64];
    zactor_t *broker = jr_fake_serve (&s_fake_broker, &bfake, bep, sizeof bep);
    zactor_t *ingester = jr_fake_serve (&s_fake_ingester, &ifake, iep, sizeof iep);
    char out[8192], want[256], id[37];

    jr_id_format (running, id);
    int rc = s_run (out, sizeof out, "%s status %s --broker %s --ingester %s", jr, id, bep, iep);
    cr_assert_eq (rc, 0, "%s", out);
    snprintf (want, sizeof want,
              "{\"id\":\"%s\",\"state\":\"running\",\"attempt\":2,\"task\":\"sleep\","
              "\"worker\":\"w1@node-1\",\"progress\":{\"value\":42,\"message\":\"copying "
              "\\\"a\\\"\\tto b\"}}\n",
              id);
    cr_assert_str_eq (out, want);

    jr_id_format (quiet, id);
    rc = s_run (out, sizeof out, "%s status %s --broker %s --ingester %s", jr, id, bep, iep);
    cr_assert_eq (rc, 0, "%s", out);
    snprintf (want, sizeof want,
              "{\"id\":\"%s\",\"state\":\"running\",\"attempt\":2,\"task\":\"sleep\","
              "\"worker\":\"w1@node-1\"}\n",
              id);
    cr_assert_str_eq (out, want);

    jr_id_format (queued, id);
    rc = s_run (out, sizeof out, "%s status %s --broker %s --ingester %s", jr, id, bep, iep);
    cr_assert_eq (rc, 0, "%s", out);
    snprintf (want, sizeof want,
              "{\"id\":\"%s\",\"state\":\"queued\",\"attempt\":2,\"task\":\"sleep\"}\n", id);
    cr_assert_str_eq (out, want);
    zactor_destroy (&broker);
    zactor_destroy (&ingester);
}
