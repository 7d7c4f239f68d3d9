/*  broker.c - the broker's event loop: accept jobs, dispatch by credit, track workers  */
#include "broker/broker.h"
#include "broker/jobtab.h"
#include "broker/queue.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/proto.h"
#include <czmq.h>
#include <stdatomic.h>

#define JR_MAX_TASKS 65535    //  distinct task names the broker tracks
#define JR_MAX_ROUTING_ID 255 //  libzmq's own limit
#define JR_DRAIN_MAX 1000     //  messages read per socket per loop turn
#define JR_MAX_SLOTS 10000    //  credit one worker may hold

typedef struct {
    char *name;            //  task name
    jr_queue_t queue;      //  waiting jobs
    uint32_t workers;      //  connected workers that serve it
} s_task_t;

//  A connected worker, as the broker sees it.
struct _jr_worker_t {
    uint8_t rid[JR_MAX_ROUTING_ID];  //  ZeroMQ routing id
    size_t rid_len;
    char name[JR_MAX_NAME + 1];      //  its own name, for logs
    uint16_t *tasks;                 //  tasks it serves
    uint32_t ntasks;
    uint32_t credit;                 //  jobs we may still send it
    uint32_t capacity;               //  executors it has in all
    uint32_t running;                //  jobs dispatched and not DONE
    jr_bjob_t *running_head;         //  those jobs
    int64_t last_recv;               //  mono us, any message from it
    int64_t last_send;               //  mono us, any message to it
    jr_msg_t *batch;                 //  DISPATCH being built
};

typedef struct {
    uint64_t accepted, refused, dispatched, done, requeued, malformed, stale;
} s_stats_t;

struct _jr_broker_t {
    jr_broker_config_t config;
    zsock_t *clients;           //  ROUTER
    zsock_t *workers_sock;      //  ROUTER
    jr_jobtab_t *jobs;          //  every job we hold
    s_task_t *tasks;            //  by index
    uint32_t ntasks;
    zhashx_t *task_index;       //  name -> index + 1
    jr_worker_t **workers;      //  connected workers
    uint32_t nworkers, cap_workers;
    uint32_t rr;                //  round-robin start for dispatch
    bool dirty;                 //  queues or credit changed since dispatch
    uint64_t seq;               //  arrival counter
    jr_msg_t *in;               //  decoded input (reused)
    jr_msg_t *out;              //  reply being built (reused)
    s_stats_t stats, logged;    //  counters, and as of the last stats line
    int64_t next_stats;         //  mono us
    atomic_bool stop;
};

//  -------------------------------------------------------------------------
//  Sockets

static zsock_t *
s_router (const char *endpoint, const char *role)
{
    zsock_t *sock = zsock_new (ZMQ_ROUTER);
    assert (sock);
    zsock_set_router_mandatory (sock, 1);
    zsock_set_maxmsgsize (sock, JR_MAX_FRAME + 1024);
    zsock_set_sndhwm (sock, 100000);
    zsock_set_rcvhwm (sock, 100000);
    zsock_set_linger (sock, 1000);
    zsock_set_heartbeat_ivl (sock, 1000);
    zsock_set_heartbeat_timeout (sock, 3000);
    if (zsock_bind (sock, "%s", endpoint) == -1) {
        jr_error ("endpoint=%s role=%s: cannot bind: %s", endpoint, role, zmq_strerror (errno));
        zsock_destroy (&sock);
    }
    return sock;
}

//  Read one [routing id, body] message without blocking. Returns 1 with the
//  body in *body (caller closes), 0 if nothing is waiting, -1 if a message
//  of another shape arrived (dropped and counted).
static int
s_recv (jr_broker_t *self, zsock_t *sock, uint8_t *rid, size_t *rid_len, zmq_msg_t *body)
{
    void *handle = zsock_resolve (sock);
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    if (zmq_msg_recv (&frame, handle, ZMQ_DONTWAIT) == -1) {
        zmq_msg_close (&frame);
        return 0;
    }
    *rid_len = zmq_msg_size (&frame);
    if (*rid_len > JR_MAX_ROUTING_ID)
        *rid_len = JR_MAX_ROUTING_ID;
    memcpy (rid, zmq_msg_data (&frame), *rid_len);
    int parts = 1;
    bool more = zmq_msg_more (&frame);
    zmq_msg_close (&frame);
    zmq_msg_init (body);
    while (more) {
        zmq_msg_close (body);
        zmq_msg_init (body);
        if (zmq_msg_recv (body, handle, 0) == -1)
            break;
        parts++;
        more = zmq_msg_more (body);
    }
    if (parts == 2)
        return 1;
    zmq_msg_close (body);
    self->stats.malformed++;
    jr_debug ("parts=%d: dropped a message that is not [routing id, body]", parts);
    return -1;
}

//  -------------------------------------------------------------------------
//  Tasks and workers

//  Index of a task by name, created on first use; -1 when the table is full
//  or the name is not acceptable.
static int
s_task (jr_broker_t *self, jr_bytes_t name)
{
    char key[JR_MAX_NAME + 1];
    if (name.len == 0 || name.len > JR_MAX_NAME || memchr (name.ptr, 0, name.len))
        return -1;
    memcpy (key, name.ptr, name.len);
    key[name.len] = 0;
    uintptr_t found = (uintptr_t) zhashx_lookup (self->task_index, key);
    if (found)
        return (int) found - 1;
    if (self->ntasks == JR_MAX_TASKS)
        return -1;
    if ((self->ntasks & (self->ntasks - 1)) == 0) {  //  grow at powers of two
        size_t cap = self->ntasks ? self->ntasks * 2 : 8;
        self->tasks = realloc (self->tasks, cap * sizeof *self->tasks);
        assert (self->tasks);
    }
    s_task_t *task = &self->tasks[self->ntasks];
    memset (task, 0, sizeof *task);
    task->name = strdup (key);
    zhashx_insert (self->task_index, key, (void *) (uintptr_t) (self->ntasks + 1));
    return (int) self->ntasks++;
}

static jr_worker_t *
s_worker_find (jr_broker_t *self, const uint8_t *rid, size_t rid_len)
{
    for (uint32_t i = 0; i < self->nworkers; i++) {
        jr_worker_t *w = self->workers[i];
        if (w->rid_len == rid_len && memcmp (w->rid, rid, rid_len) == 0)
            return w;
    }
    return NULL;
}

static void
s_running_link (jr_worker_t *w, jr_bjob_t *job)
{
    job->worker = w;
    job->prev = NULL;
    job->next = w->running_head;
    if (w->running_head)
        w->running_head->prev = job;
    w->running_head = job;
    w->running++;
}

static void
s_running_unlink (jr_bjob_t *job)
{
    jr_worker_t *w = job->worker;
    if (job->prev)
        job->prev->next = job->next;
    else
        w->running_head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    job->prev = job->next = NULL;
    job->worker = NULL;
    w->running--;
}

static void
s_enqueue (jr_broker_t *self, jr_bjob_t *job)
{
    job->state = JR_STATE_QUEUED;
    jr_queue_push (&self->tasks[job->task].queue, job);
    self->dirty = true;
}

//  Forget a worker; every job it was running goes back to its queue and
//  will be dispatched again with the next attempt number.
static void
s_worker_forget (jr_broker_t *self, jr_worker_t *w, const char *why)
{
    uint32_t requeued = 0;
    while (w->running_head) {
        jr_bjob_t *job = w->running_head;
        s_running_unlink (job);
        s_enqueue (self, job);
        requeued++;
    }
    self->stats.requeued += requeued;
    for (uint32_t i = 0; i < w->ntasks; i++)
        self->tasks[w->tasks[i]].workers--;
    for (uint32_t i = 0; i < self->nworkers; i++)
        if (self->workers[i] == w) {
            self->workers[i] = self->workers[--self->nworkers];
            break;
        }
    jr_warn ("worker=%s requeued=%u: worker forgotten: %s", w->name, requeued, why);
    jr_msg_destroy (&w->batch);
    free (w->tasks);
    free (w);
}

//  -------------------------------------------------------------------------
//  Clients

static void
s_on_submit (jr_broker_t *self, const uint8_t *rid, size_t rid_len)
{
    jr_msg_t *in = self->in, *out = self->out;
    jr_msg_reset (out, JR_MSG_ACCEPTED);
    out->tag = in->tag;
    int64_t now = jr_clock_wall_us ();
    for (uint32_t i = 0; i < in->njobs; i++) {
        const jr_job_t *job = &in->jobs[i];
        int code = 0;
        int task = -1;
        if (jr_jobtab_find (self->jobs, job->id))
            code = 0;  //  already ours: submitting again is harmless
        else if ((task = s_task (self, job->task)) < 0)
            code = JR_EINVALID;
        else if (jr_jobtab_size (self->jobs) >= self->config.max_jobs)
            code = JR_EQUEUE_FULL;
        else {
            jr_bjob_t *rec = jr_bjob_new (job, (uint16_t) task);
            rec->attempt = 0;
            rec->accepted_us = now;
            rec->seq = ++self->seq;
            jr_jobtab_insert (self->jobs, rec);
            s_enqueue (self, rec);
            self->stats.accepted++;
        }
        if (code)
            self->stats.refused++;
        jr_msg_add_mark (out, job->id, 0, code);
    }
    int rc = jr_msg_send (out, zsock_resolve (self->clients), rid, rid_len);
    if (rc)  //  the jobs stay accepted; a client that resubmits gets code 0
        jr_warn ("jobs=%u: cannot answer SUBMIT: %s", in->njobs, jr_strerror (rc));
}

static void
s_on_status (jr_broker_t *self, const uint8_t *rid, size_t rid_len)
{
    jr_msg_t *in = self->in, *out = self->out;
    jr_msg_reset (out, JR_MSG_STATE);
    out->tag = in->tag;
    for (uint32_t i = 0; i < in->nmarks; i++) {
        jr_bjob_t *job = jr_jobtab_find (self->jobs, in->marks[i].id);
        jr_msg_add_mark (out, in->marks[i].id, job ? job->attempt : 0,
                         job ? job->state : JR_STATE_UNKNOWN);
    }
    jr_msg_send (out, zsock_resolve (self->clients), rid, rid_len);
}

static void
s_client_turn (jr_broker_t *self)
{
    uint8_t rid[JR_MAX_ROUTING_ID];
    size_t rid_len;
    zmq_msg_t body;
    void *sock = zsock_resolve (self->clients);
    for (int n = 0; n < JR_DRAIN_MAX; n++) {
        int got = s_recv (self, self->clients, rid, &rid_len, &body);
        if (got == 0)
            break;
        if (got < 0)
            continue;
        int rc = jr_msg_decode (self->in, zmq_msg_data (&body), zmq_msg_size (&body));
        if (rc == 0 && self->in->type == JR_MSG_SUBMIT)
            s_on_submit (self, rid, rid_len);
        else if (rc == 0 && self->in->type == JR_MSG_STATUS)
            s_on_status (self, rid, rid_len);
        else {
            self->stats.malformed++;
            const char *why = rc ? jr_strerror (rc) : "not a client request";
            jr_debug ("code=%s: refused a client message: %s", jr_errname (rc ? rc : JR_EUNKNOWN_TYPE), why);
            jr_msg_send_error (sock, rid, rid_len, self->in->tag, rc ? rc : JR_EUNKNOWN_TYPE, why);
        }
        zmq_msg_close (&body);
    }
}

//  -------------------------------------------------------------------------
//  Workers

static void
s_on_ready (jr_broker_t *self, jr_worker_t *w, const uint8_t *rid, size_t rid_len)
{
    jr_msg_t *in = self->in;
    if (w)  //  it reconnected or restarted: start over with what it says now
        s_worker_forget (self, w, "it said READY again");
    w = calloc (1, sizeof *w);
    assert (w);
    memcpy (w->rid, rid, rid_len);
    w->rid_len = rid_len;
    snprintf (w->name, sizeof w->name, "%.*s@%.*s", (int) in->name.len, (const char *) in->name.ptr,
              (int) in->host.len, (const char *) in->host.ptr);
    w->tasks = calloc (in->ntasks + 1, sizeof *w->tasks);
    assert (w->tasks);
    for (uint32_t i = 0; i < in->ntasks; i++) {
        int t = s_task (self, in->tasks[i]);
        bool seen = false;
        for (uint32_t k = 0; k < w->ntasks; k++)
            seen = seen || w->tasks[k] == t;
        if (t >= 0 && !seen) {
            w->tasks[w->ntasks++] = (uint16_t) t;
            self->tasks[t].workers++;
        }
    }
    //  A DISPATCH must stay a valid message however many slots are claimed.
    w->capacity = in->capacity < JR_MAX_SLOTS ? in->capacity : JR_MAX_SLOTS;
    w->credit = in->slots < w->capacity ? in->slots : w->capacity;
    w->last_recv = w->last_send = jr_clock_mono_us ();
    w->batch = jr_msg_new ();
    if (self->nworkers == self->cap_workers) {
        self->cap_workers = self->cap_workers ? self->cap_workers * 2 : 16;
        self->workers = realloc (self->workers, self->cap_workers * sizeof *self->workers);
        assert (self->workers);
    }
    self->workers[self->nworkers++] = w;
    self->dirty = true;
    jr_info ("worker=%s slots=%u capacity=%u tasks=%u: worker ready", w->name, w->credit,
             w->capacity, w->ntasks);
}

//  A job's attempt ended and its result is stored: the job leaves the broker.
static void
s_on_done (jr_broker_t *self, jr_worker_t *w)
{
    jr_msg_t *in = self->in;
    for (uint32_t i = 0; i < in->nmarks; i++) {
        const jr_mark_t *mark = &in->marks[i];
        jr_bjob_t *job = jr_jobtab_find (self->jobs, mark->id);
        if (!job || job->attempt != mark->attempt)
            self->stats.stale++;  //  a late DONE of an attempt we replaced
        else {
            if (job->state == JR_STATE_RUNNING)
                s_running_unlink (job);
            else
                jr_queue_remove (&self->tasks[job->task].queue, job);
            jr_jobtab_remove (self->jobs, job);
            jr_bjob_destroy (&job);
            self->stats.done++;
        }
        //  One DONE per dispatched job: each gives its slot back, even for a
        //  job held across a reconnect (READY did not count it as free), up
        //  to the worker's capacity.
        if (w && w->credit + w->running < w->capacity) {
            w->credit++;
            self->dirty = true;
        }
    }
}

static void
s_worker_turn (jr_broker_t *self)
{
    uint8_t rid[JR_MAX_ROUTING_ID];
    size_t rid_len;
    zmq_msg_t body;
    void *sock = zsock_resolve (self->workers_sock);
    for (int n = 0; n < JR_DRAIN_MAX; n++) {
        int got = s_recv (self, self->workers_sock, rid, &rid_len, &body);
        if (got == 0)
            break;
        if (got < 0)
            continue;
        int rc = jr_msg_decode (self->in, zmq_msg_data (&body), zmq_msg_size (&body));
        jr_worker_t *w = s_worker_find (self, rid, rid_len);
        if (w)
            w->last_recv = jr_clock_mono_us ();
        int type = rc == 0 ? self->in->type : JR_MSG_NONE;
        if (type == JR_MSG_READY)
            s_on_ready (self, w, rid, rid_len);
        else if (type == JR_MSG_DONE) {
            s_on_done (self, w);
            if (!w)
                jr_msg_send_error (sock, rid, rid_len, 0, JR_EUNKNOWN_PEER, "say READY");
        }
        else if (type == JR_MSG_HEARTBEAT) {
            if (!w)
                jr_msg_send_error (sock, rid, rid_len, 0, JR_EUNKNOWN_PEER, "say READY");
        }
        else {
            self->stats.malformed++;
            const char *why = rc ? jr_strerror (rc) : "not a worker message";
            jr_debug ("code=%s: refused a worker message: %s", jr_errname (rc ? rc : JR_EUNKNOWN_TYPE), why);
            jr_msg_send_error (sock, rid, rid_len, self->in->tag, rc ? rc : JR_EUNKNOWN_TYPE, why);
        }
        zmq_msg_close (&body);
    }
}

//  The task with the best waiting job among those a worker serves.
static s_task_t *
s_best_task (jr_broker_t *self, jr_worker_t *w)
{
    s_task_t *best = NULL;
    for (uint32_t i = 0; i < w->ntasks; i++) {
        s_task_t *task = &self->tasks[w->tasks[i]];
        jr_bjob_t *head = jr_queue_peek (&task->queue);
        if (head && (!best || jr_queue_before (head, jr_queue_peek (&best->queue))))
            best = task;
    }
    return best;
}

static void
s_add_dispatch (jr_broker_t *self, jr_worker_t *w, jr_bjob_t *job, int64_t now)
{
    job->attempt++;
    job->dispatched_us = now;
    job->state = JR_STATE_RUNNING;
    s_running_link (w, job);
    w->credit--;
    jr_job_t *out = jr_msg_add_job (w->batch);
    memcpy (out->id, job->id, JR_ID_SIZE);
    const char *name = self->tasks[job->task].name;
    out->task = (jr_bytes_t) {(const uint8_t *) name, strlen (name)};
    out->vars = (jr_bytes_t) {job->vars, job->vars_len};
    out->priority = job->priority;
    out->timeout_ms = job->timeout_ms;
    out->max_attempts = job->max_attempts;
    out->attempt = job->attempt;
    out->state = JR_STATE_RUNNING;
    out->created_us = job->created_us;
    out->accepted_us = job->accepted_us;
    out->dispatched_us = job->dispatched_us;
}

//  Send a worker its batch; if the send fails, its jobs go back unharmed.
static void
s_flush_batch (jr_broker_t *self, jr_worker_t *w)
{
    if (w->batch->njobs == 0)
        return;
    int rc = jr_msg_send (w->batch, zsock_resolve (self->workers_sock), w->rid, w->rid_len);
    if (rc == 0) {
        self->stats.dispatched += w->batch->njobs;
        w->last_send = jr_clock_mono_us ();
        return;
    }
    for (uint32_t i = 0; i < w->batch->njobs; i++) {
        jr_bjob_t *job = jr_jobtab_find (self->jobs, w->batch->jobs[i].id);
        s_running_unlink (job);
        job->attempt--;  //  it never left
        s_enqueue (self, job);
        w->credit++;
    }
    if (rc == JR_EUNKNOWN_PEER)
        s_worker_forget (self, w, "its connection is gone");
    else
        jr_warn ("worker=%s code=%s: dispatch postponed", w->name, jr_errname (rc));
}

//  Hand queued jobs to workers with credit: one job per worker per round,
//  so work spreads over all workers that serve a task.
static void
s_dispatch (jr_broker_t *self)
{
    if (!self->dirty || self->nworkers == 0)
        return;
    self->dirty = false;
    int64_t now = jr_clock_wall_us ();
    for (uint32_t i = 0; i < self->nworkers; i++)
        jr_msg_reset (self->workers[i]->batch, JR_MSG_DISPATCH);
    bool progress = true;
    while (progress) {
        progress = false;
        for (uint32_t k = 0; k < self->nworkers; k++) {
            jr_worker_t *w = self->workers[(self->rr + k) % self->nworkers];
            if (w->credit == 0)
                continue;
            s_task_t *task = s_best_task (self, w);
            if (!task)
                continue;
            s_add_dispatch (self, w, jr_queue_pop (&task->queue), now);
            progress = true;
        }
    }
    self->rr++;
    //  Flushing may forget a worker (and reorder the array): walk backwards.
    for (uint32_t i = self->nworkers; i-- > 0;)
        if (i < self->nworkers)
            s_flush_batch (self, self->workers[i]);
}

static void
s_heartbeats (jr_broker_t *self)
{
    int64_t now = jr_clock_mono_us ();
    jr_msg_t hb = {.type = JR_MSG_HEARTBEAT};
    for (uint32_t i = self->nworkers; i-- > 0;) {
        jr_worker_t *w = self->workers[i];
        if (now - w->last_recv > (int64_t) self->config.liveness_ms * 1000)
            s_worker_forget (self, w, "no heartbeat");
        else if (now - w->last_send >= (int64_t) self->config.heartbeat_ms * 1000) {
            int rc = jr_msg_send (&hb, zsock_resolve (self->workers_sock), w->rid, w->rid_len);
            if (rc == JR_EUNKNOWN_PEER)
                s_worker_forget (self, w, "its connection is gone");
            else
                w->last_send = now;
        }
    }
}

static void
s_log_stats (jr_broker_t *self)
{
    int64_t now = jr_clock_mono_us ();
    if (now < self->next_stats)
        return;
    self->next_stats = now + 10 * 1000000;
    if (memcmp (&self->stats, &self->logged, sizeof self->stats) == 0)
        return;
    s_stats_t *s = &self->stats;
    jr_info ("jobs=%zu workers=%u accepted=%" PRIu64 " refused=%" PRIu64 " dispatched=%" PRIu64
             " done=%" PRIu64 " requeued=%" PRIu64 " stale=%" PRIu64 " malformed=%" PRIu64 ": stats",
             jr_jobtab_size (self->jobs), self->nworkers, s->accepted, s->refused, s->dispatched,
             s->done, s->requeued, s->stale, s->malformed);
    self->logged = self->stats;
}

//  -------------------------------------------------------------------------

jr_broker_t *
jr_broker_new (const jr_broker_config_t *config)
{
    jr_broker_t *self = calloc (1, sizeof *self);
    assert (self);
    self->config = *config;
    self->clients = s_router (config->clients, "clients");
    self->workers_sock = s_router (config->workers, "workers");
    self->jobs = jr_jobtab_new ();
    self->task_index = zhashx_new ();
    self->in = jr_msg_new ();
    self->out = jr_msg_new ();
    if (!self->clients || !self->workers_sock) {
        jr_broker_destroy (&self);
        return NULL;
    }
    jr_info ("clients=%s workers=%s: broker listening", config->clients, config->workers);
    return self;
}

void
jr_broker_destroy (jr_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jr_broker_t *self = *self_p;
    while (self->nworkers)
        s_worker_forget (self, self->workers[0], "broker stopping");
    for (uint32_t i = 0; i < self->ntasks; i++) {
        jr_queue_free (&self->tasks[i].queue);
        free (self->tasks[i].name);
    }
    free (self->tasks);
    free (self->workers);
    zhashx_destroy (&self->task_index);
    jr_jobtab_destroy (&self->jobs);
    jr_msg_destroy (&self->in);
    jr_msg_destroy (&self->out);
    zsock_destroy (&self->clients);
    zsock_destroy (&self->workers_sock);
    free (self);
    *self_p = NULL;
}

void
jr_broker_stop (jr_broker_t *self)
{
    atomic_store (&self->stop, true);
}

int
jr_broker_run (jr_broker_t *self)
{
    zmq_pollitem_t items[] = {
        {zsock_resolve (self->clients), 0, ZMQ_POLLIN, 0},
        {zsock_resolve (self->workers_sock), 0, ZMQ_POLLIN, 0},
    };
    int64_t tick = jr_clock_mono_us ();
    while (!zsys_interrupted && !atomic_load (&self->stop)) {
        long wait_ms = self->dirty ? 0 : 100;
        if (zmq_poll (items, 2, wait_ms) == -1 && errno != EINTR)
            break;
        if (items[1].revents & ZMQ_POLLIN)
            s_worker_turn (self);
        if (items[0].revents & ZMQ_POLLIN)
            s_client_turn (self);
        s_dispatch (self);
        int64_t now = jr_clock_mono_us ();
        if (now - tick >= 100000) {
            tick = now;
            s_heartbeats (self);
            s_log_stats (self);
        }
    }
    jr_info ("jobs=%zu: broker stopping", jr_jobtab_size (self->jobs));
    return 0;
}
