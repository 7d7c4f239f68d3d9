/*  broker.c - the broker's event loop: accept, journal, dispatch by credit, leases, retries  */
#include "broker/broker.h"
#include "broker/jobtab.h"
#include "broker/queue.h"
#include "common/clock.h"
#include "common/fdlimit.h"
#include "common/log.h"
#include "proto/proto.h"
#include <czmq.h>
#include <stdatomic.h>

#define JR_MAX_TASKS      65535       //  distinct task names the broker tracks
#define JR_NO_TASK        65535       //  a job's task when it holds none (finished)
#define JR_READY_TASKS    1024        //  tasks one READY may name
#define JR_UNSERVED_LOGS  10          //  unserved tasks logged per stats period
#define JR_MAX_ROUTING_ID 255         //  libzmq's own limit
#define JR_DRAIN_MAX      1000        //  messages read per socket per loop turn
#define JR_MAX_SLOTS      10000       //  credit one worker may hold
#define JR_MAX_LIST       100000      //  ids in one LIST answer
#define JR_PEER_BYTES     (64 << 20)  //  replies one client may have unread
#define JR_BATCH_BYTES    (8 << 20)   //  a DISPATCH stops growing past this
#define JR_JOB_OVERHEAD   128         //  a job's encoded bytes beyond task and vars

typedef struct {
    char *name;         //  task name
    jr_queue_t queue;   //  waiting jobs
    uint32_t workers;   //  connected workers that serve it
    uint32_t refs;      //  held jobs (not finished) and workers that use it
    uint32_t seen;      //  the READY that named it last, to drop repeats
    bool spare;         //  on the spare list: reusable once refs is 0
    bool warned;        //  logged that no worker serves it, since one did
    char *note;         //  "no worker serves task NAME": name points into it
    uint16_t note_len;  //  of it, cut to what a note may carry
} s_task_t;

#define S_UNSERVED "no worker serves task "  //  the STATUS note of such jobs

//  A connected worker, as the broker sees it.
struct _jr_worker_t {
    uint8_t rid[JR_MAX_ROUTING_ID];  //  ZeroMQ routing id
    size_t rid_len;
    char name[2 * JR_MAX_NAME + 2];  //  name@host, for logs
    uint16_t *tasks;                 //  tasks it serves
    uint32_t ntasks;
    uint32_t credit;          //  jobs we may still send it
    uint32_t capacity;        //  job slots it has in all
    uint32_t running;         //  jobs dispatched and not DONE
    uint32_t freed;           //  of those, out of their slots (FREE)
    bool draining;            //  said BYE: nothing more for it
    jr_bjob_t *running_head;  //  those jobs
    int64_t last_recv;        //  mono us, any message from it
    int64_t last_send;        //  mono us, any message to it
    jr_msg_t *batch;          //  DISPATCH being built
    size_t batch_bytes;       //  its encoded size, about
};

//  Ids in arrival order, to forget the oldest finished or dead jobs.
typedef struct {
    uint8_t (*ids)[JR_ID_SIZE];
    size_t cap, head, size;
} s_ring_t;

//  A reply that waits for the journal: sent once its records are written.
typedef struct {
    uint8_t rid[JR_MAX_ROUTING_ID];
    size_t rid_len;
    jr_msg_t *msg;
} s_reply_t;

typedef struct {
    uint64_t accepted, refused, dispatched, done, requeued, retried, dead, cancelled, expired,
        malformed, stale, unread;  //  unread: replies dropped, their client read too little
} s_stats_t;

struct _jr_broker_t {
    jr_broker_config_t config;
    zsock_t *clients;       //  ROUTER
    zsock_t *workers_sock;  //  ROUTER
    jr_journal_t *journal;  //  NULL when running without one
    jr_jobtab_t *jobs;      //  every job we hold, live or remembered
    size_t live;            //  jobs not finished
    uint64_t queued_bytes;  //  vars of the jobs held with their vars
    s_task_t *tasks;        //  by index
    uint32_t ntasks;
    zhashx_t *task_index;   //  name -> index + 1
    jr_queue_t delayed;     //  scheduled retries, by not-before
    jr_queue_t cancelled;   //  cancelled jobs waiting for a worker to store their record
    s_ring_t finished;      //  finished ids, oldest first
    s_ring_t dead;          //  dead ids, oldest first
    jr_worker_t **workers;  //  connected workers
    uint32_t nworkers, cap_workers;
    uint32_t rr;          //  round-robin start for dispatch
    bool dirty;           //  queues or credit changed since dispatch
    uint64_t seq;         //  arrival counter
    jr_bjob_t **pending;  //  accepted this turn, not yet journaled
    size_t npending, cap_pending;
    s_reply_t *replies;  //  replies waiting for the journal
    size_t nreplies, cap_replies;
    jr_msg_t **msg_pool;  //  spare messages for replies
    size_t npool;
    jr_msg_t *in;           //  decoded input (reused)
    jr_budgets_t *budgets;  //  what each client has unread
    jr_bjob_t **replayed;   //  jobs made by replay, in journal order
    size_t nreplayed, cap_replayed;
    int replay_task;          //  task of the last ACCEPT replayed, a cache
    size_t replay_lost;       //  accepted jobs replay found no task entry for
    s_stats_t stats, logged;  //  counters, and as of the last stats line
    int64_t next_stats;       //  mono us
    int64_t next_sweep;       //  mono us, of budgets
    atomic_bool stop;
    uint16_t *spare;     //  task entries that may have no refs, newest last
    uint32_t nspare;     //
    uint32_t ready_seq;  //  READYs seen, to drop repeated names in one
    jr_msg_t *status;    //  STATE answering a STATUS, sent at once
    uint32_t unserved;   //  unserved tasks logged since the last stats line
};

static void s_commit (jr_broker_t *self);

static bool
s_final (int state)
{
    return state == JR_STATE_SUCCEEDED || state == JR_STATE_FAILED || state == JR_STATE_CANCELLED
           || state == JR_STATE_EXPIRED;
}

//  -------------------------------------------------------------------------
//  Rings of ids

static void
s_ring_init (s_ring_t *ring, size_t cap)
{
    ring->cap = cap ? cap : 1;
    ring->ids = calloc (ring->cap, JR_ID_SIZE);
    assert (ring->ids);
}

//  Add an id; when full, the oldest id is copied to out and true returned.
static bool
s_ring_push (s_ring_t *ring, const uint8_t id[JR_ID_SIZE], uint8_t out[JR_ID_SIZE])
{
    bool evicted = false;
    if (ring->size == ring->cap) {
        memcpy (out, ring->ids[ring->head], JR_ID_SIZE);
        ring->head = (ring->head + 1) % ring->cap;
        ring->size--;
        evicted = true;
    }
    memcpy (ring->ids[(ring->head + ring->size) % ring->cap], id, JR_ID_SIZE);
    ring->size++;
    return evicted;
}

static const uint8_t *
s_ring_oldest (const s_ring_t *ring)
{
    return ring->size ? ring->ids[ring->head] : NULL;
}

static void
s_ring_pop (s_ring_t *ring)
{
    ring->head = (ring->head + 1) % ring->cap;
    ring->size--;
}

//  -------------------------------------------------------------------------
//  Sockets

static zsock_t *
s_router (const char *endpoint, const char *role)
{
    zsock_t *sock = zsock_new (ZMQ_ROUTER);
    assert (sock);
    zsock_set_router_mandatory (sock, 1);
    zsock_set_maxmsgsize (sock, JR_MAX_FRAME);  //  larger: libzmq drops the connection
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

//  A reply message from the pool, reset to a type and tag.
static jr_msg_t *
s_reply_msg (jr_broker_t *self, int type, uint64_t tag)
{
    jr_msg_t *msg = self->npool ? self->msg_pool[--self->npool] : jr_msg_new ();
    jr_msg_reset (msg, type);
    msg->tag = tag;
    return msg;
}

//  Queue a reply until the journal holds what it confirms.
static void
s_reply_later (jr_broker_t *self, const uint8_t *rid, size_t rid_len, jr_msg_t *msg)
{
    if (self->nreplies == self->cap_replies) {
        self->cap_replies = self->cap_replies ? self->cap_replies * 2 : 64;
        self->replies = realloc (self->replies, self->cap_replies * sizeof *self->replies);
        self->msg_pool = realloc (self->msg_pool, self->cap_replies * sizeof *self->msg_pool);
        assert (self->replies && self->msg_pool);
    }
    s_reply_t *reply = &self->replies[self->nreplies++];
    memcpy (reply->rid, rid, rid_len);
    reply->rid_len = rid_len;
    reply->msg = msg;
}

//  -------------------------------------------------------------------------
//  Journal records

static void
s_log_state (jr_broker_t *self, const jr_bjob_t *job, bool durable)
{
    if (!self->journal)
        return;
    jr_rec_t rec = {
        .type = JR_REC_STATE, .attempt = job->attempt, .state = job->state, .at_us = job->at_us
    };
    memcpy (rec.id, job->id, JR_ID_SIZE);
    jr_journal_append (self->journal, &rec, durable);
}

static void
s_log_accept (jr_broker_t *self, const jr_bjob_t *job, bool durable)
{
    if (!self->journal)
        return;
    const char *task = self->tasks[job->task].name;
    jr_rec_t rec = { .type = JR_REC_ACCEPT,
                     .attempt = job->attempt,
                     .priority = job->priority,
                     .timeout_ms = job->timeout_ms,
                     .max_attempts = job->max_attempts,
                     .created_us = job->created_us,
                     .accepted_us = job->accepted_us,
                     .task = { (const uint8_t *)task, strlen (task) },
                     .vars = { job->vars, job->vars_len } };
    memcpy (rec.id, job->id, JR_ID_SIZE);
    jr_journal_append (self->journal, &rec, durable);
}

static int
s_flush (jr_broker_t *self)
{
    return self->journal ? jr_journal_flush (self->journal) : 0;
}

//  -------------------------------------------------------------------------
//  Tasks, workers, job moves

//  The length of text cut to at most max bytes, not inside a UTF-8 sequence.
static size_t
s_utf8_cut (const char *text, size_t len, size_t max)
{
    if (len <= max)
        return len;
    len = max;
    while (len && ((uint8_t)text[len] & 0xC0) == 0x80)
        len--;
    return len;
}

//  Put an entry on the spare list, once.
static void
s_task_spare (jr_broker_t *self, uint32_t t)
{
    if (!self->tasks[t].spare) {
        self->tasks[t].spare = true;
        self->spare[self->nspare++] = (uint16_t)t;
    }
}

//  A free entry for a new name: a spare one nothing uses any more (its old
//  name forgotten), else a new one; -1 when all are in use. Spares that
//  got used again meanwhile leave the list; their release puts them back.
static int
s_task_slot (jr_broker_t *self)
{
    while (self->nspare) {
        uint32_t t = self->spare[--self->nspare];
        s_task_t *task = &self->tasks[t];
        task->spare = false;
        if (task->refs == 0) {
            zhashx_delete (self->task_index, task->name);
            free (task->note);
            task->note = task->name = NULL;
            task->warned = false;
            return (int)t;  //  its queue is empty; its heap is kept for reuse
        }
    }
    if (self->ntasks == JR_MAX_TASKS)
        return -1;
    if ((self->ntasks & (self->ntasks - 1)) == 0) {  //  grow at powers of two
        size_t cap = self->ntasks ? self->ntasks * 2 : 8;
        self->tasks = realloc (self->tasks, cap * sizeof *self->tasks);
        self->spare = realloc (self->spare, cap * sizeof *self->spare);
        assert (self->tasks && self->spare);
    }
    memset (&self->tasks[self->ntasks], 0, sizeof *self->tasks);
    return (int)self->ntasks++;
}

//  Index of a task by name, created on first use; -1 when the table is full
//  or the name is not acceptable. The entry is the caller's to hold.
static int
s_task (jr_broker_t *self, jr_bytes_t name)
{
    char key[JR_MAX_NAME + 1];
    if (name.len == 0 || name.len > JR_MAX_NAME || memchr (name.ptr, 0, name.len))
        return -1;
    memcpy (key, name.ptr, name.len);
    key[name.len] = 0;
    uintptr_t found = (uintptr_t)zhashx_lookup (self->task_index, key);
    if (found)
        return (int)found - 1;
    int t = s_task_slot (self);
    if (t < 0)
        return -1;
    s_task_t *task = &self->tasks[t];
    task->note = malloc (strlen (S_UNSERVED) + name.len + 1);
    assert (task->note);
    task->name = stpcpy (task->note, S_UNSERVED);
    memcpy (task->name, key, name.len + 1);
    task->note_len = (uint16_t)s_utf8_cut (task->note, strlen (S_UNSERVED) + name.len, JR_MAX_NOTE);
    zhashx_insert (self->task_index, key, (void *)(uintptr_t)(t + 1));
    s_task_spare (self, (uint32_t)t);  //  nothing uses it until the caller holds it
    return t;
}

//  A job or a worker starts using a task entry.
static void
s_task_hold (jr_broker_t *self, uint32_t t)
{
    self->tasks[t].refs++;
}

//  ... and stops: an entry nothing uses may be given to another name.
static void
s_task_release (jr_broker_t *self, uint32_t t)
{
    assert (self->tasks[t].refs > 0);
    if (--self->tasks[t].refs == 0)
        s_task_spare (self, t);
}

//  A job leaves the broker's hands (finished, forgotten): its task goes.
static void
s_job_release (jr_broker_t *self, jr_bjob_t *job)
{
    if (job->task != JR_NO_TASK)
        s_task_release (self, job->task);
    job->task = JR_NO_TASK;
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
    job->due_us = 0;
    free (job->progress);  //  it belonged to that attempt
    job->progress = NULL;
    w->running--;
    if (job->freed)
        w->freed--;
    job->freed = false;
}

//  Jobs a worker runs in its executors now, as far as we know.
static uint32_t
s_executing (const jr_worker_t *w)
{
    return w->running - w->freed;
}

//  Give a worker one slot back, never past its capacity.
static void
s_credit (jr_broker_t *self, jr_worker_t *w)
{
    if (w->credit + s_executing (w) < w->capacity) {
        w->credit++;
        self->dirty = true;
    }
}

//  The queue a waiting job belongs in: its task's, or for a cancelled one
//  the queue any worker takes from first, to store its CANCELLED record.
static jr_queue_t *
s_queue_of (jr_broker_t *self, const jr_bjob_t *job)
{
    return job->cancel ? &self->cancelled : &self->tasks[job->task].queue;
}

//  Take a job out of whatever holds it (a worker, a queue, the delay heap).
static void
s_detach (jr_broker_t *self, jr_bjob_t *job)
{
    if (job->state == JR_STATE_RUNNING && job->worker)
        s_running_unlink (job);
    else if (job->state == JR_STATE_QUEUED)
        jr_queue_remove (s_queue_of (self, job), job);
    else if (job->state == JR_STATE_SCHEDULED) {
        jr_queue_remove (&self->delayed, job);
        job->due_us = 0;  //  it was the retry time, not a lease
    }
}

//  Jobs wait for a worker of their task to connect; say so once, and again
//  only after a worker served the task and left. Jobs restored at start are
//  not news: workers have not connected yet.
static void
s_unserved (jr_broker_t *self, s_task_t *task)
{
    if (task->workers || task->warned || self->replayed)
        return;
    task->warned = true;
    //  Many new names at once must not flood the log.
    if (self->unserved < JR_UNSERVED_LOGS)
        jr_warn ("task=%s: queued jobs for a task no connected worker serves", task->name);
    else if (self->unserved == JR_UNSERVED_LOGS)
        jr_warn ("more tasks that no connected worker serves: not logged for 10 s");
    self->unserved++;
}

static void
s_enqueue (jr_broker_t *self, jr_bjob_t *job)
{
    job->state = JR_STATE_QUEUED;
    jr_queue_push (s_queue_of (self, job), job);
    if (!job->cancel)
        s_unserved (self, &self->tasks[job->task]);
    self->dirty = true;
}

//  A cancelled job waits for any worker to store its CANCELLED record.
static void
s_enqueue_cancelled (jr_broker_t *self, jr_bjob_t *job)
{
    job->cancel = true;
    s_enqueue (self, job);
}

//  Let go of a job record entirely.
static void
s_drop (jr_broker_t *self, jr_bjob_t *job)
{
    s_job_release (self, job);
    jr_jobtab_remove (self->jobs, job);
    self->queued_bytes -= job->vars_len;
    jr_bjob_destroy (&job);
}

//  Keep only the id and the outcome of a finished job, so a resubmitted id
//  is recognised; the oldest remembered ids are forgotten.
static void
s_remember (jr_broker_t *self, jr_bjob_t *job)
{
    s_job_release (self, job);  //  nothing reads a finished job's task
    jr_jobtab_remove (self->jobs, job);
    self->queued_bytes -= job->vars_len;
    jr_bjob_t *small = realloc (job, sizeof *job);
    assert (small);
    small->vars_len = 0;
    jr_jobtab_insert (self->jobs, small);
    uint8_t old[JR_ID_SIZE];
    if (s_ring_push (&self->finished, small->id, old)) {
        jr_bjob_t *gone = jr_jobtab_find (self->jobs, old);
        if (gone && s_final (gone->state))
            s_drop (self, gone);
    }
}

//  The job has its final outcome.
static void
s_finish (jr_broker_t *self, jr_bjob_t *job, int state, bool journal)
{
    s_detach (self, job);
    job->state = (uint8_t)state;
    job->at_us = jr_clock_wall_us ();
    job->cancel = false;
    self->live--;
    if (journal)
        s_log_state (self, job, false);
    if (state == JR_STATE_CANCELLED)
        self->stats.cancelled++;
    else
        self->stats.done++;
    s_remember (self, job);
}

static void
s_make_dead (jr_broker_t *self, jr_bjob_t *job)
{
    s_detach (self, job);
    job->state = JR_STATE_DEAD;
    job->at_us = jr_clock_wall_us ();
    s_log_state (self, job, false);
    self->stats.dead++;
    uint8_t old[JR_ID_SIZE];
    if (s_ring_push (&self->dead, job->id, old)) {
        jr_bjob_t *gone = jr_jobtab_find (self->jobs, old);
        if (gone && gone->state == JR_STATE_DEAD) {
            s_drop (self, gone);
            self->live--;
        }
    }
}

//  Exponential backoff with jitter: half the delay fixed, half random.
static int64_t
s_backoff_us (const jr_broker_t *self, uint32_t attempt)
{
    int64_t delay = self->config.retry_base_ms;
    for (uint32_t i = 1; i < attempt && delay < self->config.retry_max_ms; i++)
        delay *= 2;
    if (delay > self->config.retry_max_ms)
        delay = self->config.retry_max_ms;
    delay *= 1000;
    return delay / 2 + (int64_t)(randof (1000) * (delay / 2) / 1000);
}

static void
s_schedule (jr_broker_t *self, jr_bjob_t *job)
{
    s_detach (self, job);
    job->state = JR_STATE_SCHEDULED;
    int64_t delay = s_backoff_us (self, job->attempt);
    job->at_us = jr_clock_wall_us () + delay;  //  for the journal, across restarts
    job->due_us = jr_clock_mono_us ()
                  + delay;  //  what the timer follows: steps of the wall clock do not move it
    jr_queue_push (&self->delayed, job);
    s_log_state (self, job, false);
    self->stats.retried++;
}

//  Put a running job back in its queue (worker lost, lease over, handed
//  back): its next dispatch is the next attempt. A job cancelled meanwhile
//  goes to the cancelled queue, for its record.
static void
s_requeue (jr_broker_t *self, jr_bjob_t *job)
{
    s_detach (self, job);
    s_enqueue (self, job);
    self->stats.requeued++;
}

static void
s_send_cancel (jr_broker_t *self, jr_worker_t *w, const jr_bjob_t *job)
{
    jr_msg_t msg = { .type = JR_MSG_CANCEL };
    jr_mark_t mark = { .attempt = job->attempt };
    memcpy (mark.id, job->id, JR_ID_SIZE);
    msg.marks = &mark;
    msg.nmarks = 1;
    if (jr_msg_send (&msg, zsock_resolve (self->workers_sock), w->rid, w->rid_len) == 0)
        w->last_send = jr_clock_mono_us ();
}

//  Forget a worker; every job it was running goes back to its queue and
//  will be dispatched again with the next attempt number.
static void
s_worker_forget (jr_broker_t *self, jr_worker_t *w, const char *why)
{
    uint32_t requeued = w->running;
    while (w->running_head)
        s_requeue (self, w->running_head);
    for (uint32_t i = 0; i < w->ntasks; i++) {
        s_task_t *task = &self->tasks[w->tasks[i]];
        task->workers--;
        if (task->queue.size)  //  its jobs, requeued above among them, now wait
            s_unserved (self, task);
        s_task_release (self, w->tasks[i]);
    }
    for (uint32_t i = 0; i < self->nworkers; i++)
        if (self->workers[i] == w) {
            self->workers[i] = self->workers[--self->nworkers];
            break;
        }
    if (requeued || !w->draining)
        jr_warn ("worker=%s requeued=%u: worker forgotten: %s", w->name, requeued, why);
    else
        jr_info ("worker=%s: worker left after draining", w->name);
    jr_msg_destroy (&w->batch);
    free (w->tasks);
    free (w);
}

//  -------------------------------------------------------------------------
//  What each client has unread, so one that never reads cannot pile up
//  replies in our memory

//  Forget clients with nothing unread that we have not answered for a
//  while; libzmq frees what a departed client left unread.
static void
s_budgets_sweep (jr_broker_t *self)
{
    int64_t now = jr_clock_mono_us ();
    if (now < self->next_sweep)
        return;
    self->next_sweep = now + 10 * 1000000;
    jr_budgets_sweep (self->budgets, 10 * 1000000);
}

//  Send a client its reply, within what it may have unread; the message
//  goes back to the pool unless it grew large (a LIST answer), so a burst
//  of big answers does not stay in memory.
static void
s_answer (jr_broker_t *self, const uint8_t *rid, size_t rid_len, jr_msg_t *msg)
{
    jr_budget_t *budget = jr_budgets_get (self->budgets, rid, rid_len);
    int sent = jr_msg_send_counted (msg, zsock_resolve (self->clients), rid, rid_len, budget);
    if (sent == JR_EQUEUE_FULL)
        self->stats.unread++;
    if (sent)  //  accepted jobs stay accepted; a client that resubmits gets code 0
        jr_debug ("code=%s: cannot answer a client", jr_errname (sent));
    if (self->npool < self->cap_replies && msg->cap_marks <= 4096)
        self->msg_pool[self->npool++] = msg;
    else
        jr_msg_destroy (&msg);
}

//  -------------------------------------------------------------------------
//  Clients

//  0 if a submitted job may be queued, else the code of its mark: fields
//  over their limits, an id or a stamp no client can have made.
static int
s_check_submit (const jr_job_t *job)
{
    static const uint8_t nil_id[JR_ID_SIZE] = { 0 };
    int rc = jr_job_check (job);
    if (rc)
        return rc;
    if (memcmp (job->id, nil_id, JR_ID_SIZE) == 0 || job->created_us <= 0 || job->task.len == 0
        || memchr (job->task.ptr, 0, job->task.len))
        return JR_EINVALID;
    return 0;
}

//  A new job, held from now on but queued only once the journal has it.
static int
s_accept (jr_broker_t *self, const jr_job_t *job, int64_t now)
{
    if (self->live >= self->config.max_jobs
        || self->queued_bytes + job->vars.len > self->config.max_queued_bytes)
        return JR_EQUEUE_FULL;
    int task = s_task (self, job->task);
    if (task < 0)
        return JR_EQUEUE_FULL;  //  the task table is full
    jr_bjob_t *rec = jr_bjob_new (job, (uint16_t)task);
    s_task_hold (self, (uint32_t)task);
    rec->attempt = 0;
    rec->accepted_us = now;
    rec->seq = ++self->seq;
    if (rec->max_attempts == 0)
        rec->max_attempts = self->config.max_attempts;
    rec->state = JR_STATE_UNKNOWN;  //  until the journal has it
    jr_jobtab_insert (self->jobs, rec);
    self->live++;
    self->queued_bytes += rec->vars_len;
    s_log_accept (self, rec, true);
    if (self->npending == self->cap_pending) {
        self->cap_pending = self->cap_pending ? self->cap_pending * 2 : 1024;
        self->pending = realloc (self->pending, self->cap_pending * sizeof (void *));
        assert (self->pending);
    }
    self->pending[self->npending++] = rec;
    self->stats.accepted++;
    return 0;
}

static void
s_on_submit (jr_broker_t *self, const uint8_t *rid, size_t rid_len)
{
    jr_msg_t *in = self->in;
    jr_msg_t *out = s_reply_msg (self, JR_MSG_ACCEPTED, in->tag);
    int64_t now = jr_clock_wall_us ();
    for (uint32_t i = 0; i < in->njobs; i++) {
        const jr_job_t *job = &in->jobs[i];
        int code = s_check_submit (job);
        jr_bjob_t *known = code ? NULL : jr_jobtab_find (self->jobs, job->id);
        if (known) {  //  submitting again is harmless: the mark says its attempt
            jr_msg_add_mark (out, job->id, known->attempt, 0);
            continue;
        }
        if (code == 0)
            code = s_accept (self, job, now);
        if (code)
            self->stats.refused++;
        jr_msg_add_mark (out, job->id, 0, code);
    }
    s_reply_later (self, rid, rid_len, out);
}

//  The state a client is told: a cancelled job is CANCELLED from the moment
//  the cancel is journaled, though it is held until its record is stored.
static int
s_told_state (const jr_bjob_t *job)
{
    if (!job)
        return JR_STATE_UNKNOWN;
    return job->cancel ? JR_STATE_CANCELLED : job->state;
}

static void
s_on_status (jr_broker_t *self, jr_msg_t *out)
{
    jr_msg_t *in = self->in;
    for (uint32_t i = 0; i < in->nmarks; i++) {
        jr_bjob_t *job = jr_jobtab_find (self->jobs, in->marks[i].id);
        jr_msg_add_mark (out, in->marks[i].id, job ? job->attempt : 0, s_told_state (job));
        jr_progress_t *p = job ? job->progress : NULL;
        s_task_t *task = s_told_state (job) == JR_STATE_QUEUED ? &self->tasks[job->task] : NULL;
        if (task && task->workers == 0)
            jr_msg_add_note (out, 0, (jr_bytes_t){ (const uint8_t *)task->note, task->note_len });
        else
            jr_msg_add_note (out, p ? p->value : 0,
                             p ? (jr_bytes_t){ (const uint8_t *)p->text, p->len }
                               : (jr_bytes_t){ 0 });
    }
}

//  STATUS waits for nothing in the journal, and its notes borrow texts (a
//  progress, a task's note) that a later message of this turn may free: it
//  is answered at once.
static void
s_status_reply (jr_broker_t *self, const uint8_t *rid, size_t rid_len)
{
    jr_msg_reset (self->status, JR_MSG_STATE);
    self->status->tag = self->in->tag;
    s_on_status (self, self->status);
    jr_budget_t *budget = jr_budgets_get (self->budgets, rid, rid_len);
    int rc =
        jr_msg_send_counted (self->status, zsock_resolve (self->clients), rid, rid_len, budget);
    if (rc == JR_EQUEUE_FULL)
        self->stats.unread++;
    if (rc)  //  the client asks again after its timeout
        jr_debug ("code=%s: cannot answer a client", jr_errname (rc));
}

//  True if a CANCEL changes this job: it is held and not already ending.
static bool
s_cancellable (const jr_bjob_t *job)
{
    return job && !job->cancel
           && (job->state == JR_STATE_QUEUED || job->state == JR_STATE_SCHEDULED
               || job->state == JR_STATE_RUNNING || job->state == JR_STATE_DEAD);
}

//  Write the records a request promises, before anything changes: what
//  this turn already holds is committed first, so a failed write undoes
//  only these records, and a refused request changes nothing.
static int
s_journal_first (jr_broker_t *self, jr_rec_type_t type, bool (*applies) (const jr_bjob_t *))
{
    if (!self->journal)
        return 0;
    s_commit (self);
    jr_msg_t *in = self->in;
    for (uint32_t i = 0; i < in->nmarks; i++) {
        jr_bjob_t *job = jr_jobtab_find (self->jobs, in->marks[i].id);
        if (!applies (job))
            continue;
        if (type == JR_REC_ACCEPT) {
            jr_bjob_t copy = *job;
            copy.max_attempts = job->attempt + 1;
            s_log_accept (self, &copy, true);
        }
        else {
            jr_rec_t rec = { .type = (int)type, .attempt = job->attempt };
            memcpy (rec.id, job->id, JR_ID_SIZE);
            jr_journal_append (self->journal, &rec, true);
        }
    }
    int rc = s_flush (self);
    if (rc)
        jr_journal_discard (self->journal);
    return rc;
}

//  A running job is stopped through its worker (the same path as a
//  deadline); any other is taken out of its queue. Either way it waits in
//  the cancelled queue (or on its worker) until a worker has stored its
//  CANCELLED record, so the ingester's waiters learn of it too.
static int
s_on_cancel (jr_broker_t *self, jr_msg_t *out)
{
    int rc = s_journal_first (self, JR_REC_CANCEL, s_cancellable);
    if (rc)
        return rc;
    jr_msg_t *in = self->in;
    for (uint32_t i = 0; i < in->nmarks; i++) {
        jr_bjob_t *job = jr_jobtab_find (self->jobs, in->marks[i].id);
        if (s_cancellable (job)) {
            if (job->state == JR_STATE_RUNNING && job->worker)
                s_send_cancel (self, job->worker, job);
            else {
                s_detach (self, job);  //  from the queue it is in before the cancel
                s_enqueue_cancelled (self, job);
            }
            job->cancel = true;
        }
        jr_msg_add_mark (out, in->marks[i].id, job ? job->attempt : 0, s_told_state (job));
    }
    return 0;
}

static bool
s_retryable (const jr_bjob_t *job)
{
    return job && job->state == JR_STATE_DEAD && !job->cancel;
}

static int
s_on_retry (jr_broker_t *self, jr_msg_t *out)
{
    int rc = s_journal_first (self, JR_REC_ACCEPT, s_retryable);
    if (rc)
        return rc;
    jr_msg_t *in = self->in;
    for (uint32_t i = 0; i < in->nmarks; i++) {
        jr_bjob_t *job = jr_jobtab_find (self->jobs, in->marks[i].id);
        if (s_retryable (job)) {
            job->max_attempts = job->attempt + 1;  //  one more try
            s_enqueue (self, job);
        }
        jr_msg_add_mark (out, in->marks[i].id, job ? job->attempt : 0, s_told_state (job));
    }
    return 0;
}

typedef struct {
    int state;
    jr_msg_t *out;
} s_list_t;

static void
s_list_one (jr_bjob_t *job, void *arg)
{
    s_list_t *list = arg;
    if (job->state == list->state && !job->cancel && list->out->nmarks < JR_MAX_LIST)
        jr_msg_add_mark (list->out, job->id, job->attempt, job->state);
}

//  The states LIST serves: those the broker holds jobs in. Finished jobs are
//  only remembered ids, so a resubmit is not run again; outcomes are the
//  ingester's to tell.
static bool
s_listable (int state)
{
    return state == JR_STATE_QUEUED || state == JR_STATE_SCHEDULED || state == JR_STATE_RUNNING
           || state == JR_STATE_DEAD;
}

//  Handles a decoded message (type NONE if it did not decode); false if it
//  has no business here, and is refused.
typedef bool (s_handler_fn) (jr_broker_t *self, const uint8_t *rid, size_t rid_len, int type);

//  Read what one socket has (up to JR_DRAIN_MAX messages) and hand each to
//  handle; refusals get an ERROR with the decoder's code.
static void
s_drain (jr_broker_t *self, zsock_t *sock, const char *role, s_handler_fn *handle)
{
    uint8_t rid[JR_MAX_ROUTING_ID];
    size_t rid_len;
    zmq_msg_t body;
    for (int n = 0; n < JR_DRAIN_MAX; n++) {
        int got = s_recv (self, sock, rid, &rid_len, &body);
        if (got == 0)
            break;
        if (got < 0)
            continue;
        bool error = jr_msg_is_error (zmq_msg_data (&body), zmq_msg_size (&body));
        int rc = error ? 0 : jr_msg_decode (self->in, zmq_msg_data (&body), zmq_msg_size (&body));
        if (error) {
            self->stats.malformed++;  //  never answered, so two peers cannot loop
            jr_debug ("role=%s: ignored an ERROR", role);
        }
        else if (!handle (self, rid, rid_len, rc == 0 ? self->in->type : JR_MSG_NONE)) {
            self->stats.malformed++;
            int code = rc ? rc : JR_EINVALID;
            const char *why = rc ? jr_strerror (rc) : "not for this socket";
            jr_debug ("role=%s code=%s: refused a message: %s", role, jr_errname (code), why);
            //  A stray message's tag belongs to another conversation: 0.
            jr_msg_send_error (zsock_resolve (sock), rid, rid_len, rc ? self->in->tag : 0, code,
                               why);
        }
        zmq_msg_close (&body);
    }
}

static bool
s_client_message (jr_broker_t *self, const uint8_t *rid, size_t rid_len, int type)
{
    if (type == JR_MSG_SUBMIT) {
        s_on_submit (self, rid, rid_len);
        return true;
    }
    if (type != JR_MSG_STATUS && type != JR_MSG_CANCEL && type != JR_MSG_RETRY
        && type != JR_MSG_LIST)
        return false;
    if (type == JR_MSG_STATUS) {
        s_status_reply (self, rid, rid_len);
        return true;
    }
    if (type == JR_MSG_LIST && !s_listable (self->in->code)) {
        jr_msg_send_error (zsock_resolve (self->clients), rid, rid_len, self->in->tag, JR_EINVALID,
                           "LIST serves queued, scheduled, running and dead");
        return true;
    }
    jr_msg_t *out = s_reply_msg (self, JR_MSG_STATE, self->in->tag);
    int rc = 0;
    if (type == JR_MSG_CANCEL)
        rc = s_on_cancel (self, out);
    else if (type == JR_MSG_RETRY)
        rc = s_on_retry (self, out);
    else {
        s_list_t list = { self->in->code, out };
        jr_jobtab_each (self->jobs, s_list_one, &list);
    }
    if (rc) {
        jr_warn ("code=%s: refused a %s the journal could not store", jr_errname (rc),
                 jr_msg_name (type));
        jr_msg_send_error (zsock_resolve (self->clients), rid, rid_len, self->in->tag, rc,
                           "the journal could not store this change");
        jr_msg_destroy (&out);
    }
    else  //  durable already (CANCEL, RETRY) or nothing to wait for
        s_answer (self, rid, rid_len, out);
    return true;
}

//  -------------------------------------------------------------------------
//  Workers

//  A READY that names more tasks than the bound is refused whole: serving
//  part of what a worker says it serves would strand the rest unnoticed.
static bool
s_ready_refused (jr_broker_t *self, const uint8_t *rid, size_t rid_len)
{
    jr_msg_t *in = self->in;
    if (in->ntasks <= JR_READY_TASKS)
        return false;
    jr_warn ("worker=%.*s@%.*s tasks=%u: READY refused, more than %d tasks", (int)in->name.len,
             (const char *)in->name.ptr, (int)in->host.len, (const char *)in->host.ptr, in->ntasks,
             JR_READY_TASKS);
    jr_msg_send_error (zsock_resolve (self->workers_sock), rid, rid_len, 0, JR_EINVALID,
                       "READY names more than 1024 tasks");
    return true;
}

//  The tasks a READY names, each once (a name said twice counts once).
static void
s_ready_tasks (jr_broker_t *self, jr_worker_t *w)
{
    jr_msg_t *in = self->in;
    uint32_t seq = ++self->ready_seq;
    w->tasks = calloc (in->ntasks + 1, sizeof *w->tasks);
    assert (w->tasks);
    for (uint32_t i = 0; i < in->ntasks; i++) {
        int t = s_task (self, in->tasks[i]);
        if (t < 0 || self->tasks[t].seen == seq)
            continue;
        self->tasks[t].seen = seq;
        self->tasks[t].warned = false;
        s_task_hold (self, (uint32_t)t);
        self->tasks[t].workers++;
        w->tasks[w->ntasks++] = (uint16_t)t;
    }
}

static void
s_on_ready (jr_broker_t *self, jr_worker_t *w, const uint8_t *rid, size_t rid_len)
{
    jr_msg_t *in = self->in;
    if (w)  //  it reconnected or restarted: start over with what it says now
        s_worker_forget (self, w, "it said READY again");
    if (s_ready_refused (self, rid, rid_len))
        return;
    w = calloc (1, sizeof *w);
    assert (w);
    memcpy (w->rid, rid, rid_len);
    w->rid_len = rid_len;
    snprintf (w->name, sizeof w->name, "%.*s@%.*s", (int)in->name.len, (const char *)in->name.ptr,
              (int)in->host.len, (const char *)in->host.ptr);
    s_ready_tasks (self, w);
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

//  One attempt ended (its result is stored) or was handed back. Only the
//  worker that holds that very attempt may end it: a mark from anyone else
//  (a stranger that learned ids from LIST, a worker whose attempt was taken
//  back) changes nothing and is counted.
static void
s_on_mark (jr_broker_t *self, jr_worker_t *w, const jr_mark_t *mark)
{
    jr_bjob_t *job = jr_jobtab_find (self->jobs, mark->id);
    if (!job || job->state != JR_STATE_RUNNING || job->worker != w
        || job->attempt != mark->attempt) {
        self->stats.stale++;
        return;
    }
    if (job->cancel && mark->code == JR_STATE_CANCELLED)
        s_finish (self, job, JR_STATE_CANCELLED, true);  //  the client was told so; now stored
    else if (job->cancel)  //  stored otherwise, or not at all: a CANCELLED record supersedes it
        s_requeue (self, job);
    else if (s_final (mark->code))
        s_finish (self, job, mark->code, true);
    else if (mark->code == JR_STATE_DEAD)
        s_make_dead (self, job);
    else if (mark->code == JR_STATE_SCHEDULED)
        s_schedule (self, job);
    else if (mark->code == JR_STATE_QUEUED)
        s_requeue (self, job);  //  handed back by a draining worker
    else
        s_finish (self, job, JR_STATE_FAILED, true);
}

static void
s_on_done (jr_broker_t *self, jr_worker_t *w)
{
    jr_msg_t *in = self->in;
    for (uint32_t i = 0; i < in->nmarks; i++) {
        //  One DONE per dispatched job gives its slot back, even for a job
        //  held across a reconnect (READY did not count it as free), unless
        //  FREE gave it back already. s_credit keeps it within capacity.
        jr_bjob_t *job = jr_jobtab_find (self->jobs, in->marks[i].id);
        bool freed = job && job->worker == w && job->freed && job->attempt == in->marks[i].attempt;
        s_on_mark (self, w, &in->marks[i]);
        if (!freed)
            s_credit (self, w);
    }
    if (w->draining && w->running == 0)
        s_worker_forget (self, w, "drained");
}

//  Attempts out of their executors: their slots come back now, while the
//  jobs stay ours (and are requeued if the worker is lost) until DONE.
static void
s_on_free (jr_broker_t *self, jr_worker_t *w)
{
    jr_msg_t *in = self->in;
    for (uint32_t i = 0; i < in->nmarks; i++) {
        jr_bjob_t *job = jr_jobtab_find (self->jobs, in->marks[i].id);
        if (!job || job->worker != w || job->attempt != in->marks[i].attempt || job->freed)
            continue;  //  done already, requeued, or said twice
        job->freed = true;
        w->freed++;
        s_credit (self, w);
    }
}

//  The latest progress of attempts running on this worker.
static void
s_on_progress (jr_broker_t *self, jr_worker_t *w)
{
    jr_msg_t *in = self->in;
    for (uint32_t i = 0; i < in->nmarks && i < in->nnotes; i++) {
        jr_bjob_t *job = jr_jobtab_find (self->jobs, in->marks[i].id);
        if (!job || job->worker != w || job->attempt != in->marks[i].attempt)
            continue;
        const jr_note_t *note = &in->notes[i];
        jr_progress_t *p = realloc (job->progress, sizeof *p + note->text.len);
        assert (p);
        p->value = note->value;
        p->len = (uint16_t)note->text.len;
        if (note->text.len)
            memcpy (p->text, note->text.ptr, note->text.len);
        job->progress = p;
    }
}

static bool
s_worker_message (jr_broker_t *self, const uint8_t *rid, size_t rid_len, int type)
{
    jr_worker_t *w = s_worker_find (self, rid, rid_len);
    if (w)
        w->last_recv = jr_clock_mono_us ();
    if (type == JR_MSG_READY) {
        s_on_ready (self, w, rid, rid_len);
        return true;
    }
    if (type != JR_MSG_HEARTBEAT && type != JR_MSG_BYE && type != JR_MSG_FREE
        && type != JR_MSG_PROGRESS && type != JR_MSG_DONE)
        return false;
    if (!w) {  //  the broker restarted, or forgot it: it must say READY
        jr_msg_send_error (zsock_resolve (self->workers_sock), rid, rid_len, 0, JR_EUNKNOWN_PEER,
                           "say READY");
        return true;
    }
    if (type == JR_MSG_DONE)
        s_on_done (self, w);
    else if (type == JR_MSG_FREE)
        s_on_free (self, w);
    else if (type == JR_MSG_PROGRESS)
        s_on_progress (self, w);
    else if (type == JR_MSG_BYE) {
        w->draining = true;
        w->capacity = w->credit = 0;
        jr_info ("worker=%s running=%u: worker draining", w->name, w->running);
        if (w->running == 0)
            s_worker_forget (self, w, "drained");
    }
    return true;
}

//  -------------------------------------------------------------------------
//  Commit: make this turn's records durable, then answer

static void
s_commit (jr_broker_t *self)
{
    int rc = s_flush (self);
    if (rc) {
        //  Nothing of this turn is on disk: refuse the jobs it accepted.
        jr_journal_discard (self->journal);
        for (size_t i = 0; i < self->nreplies; i++) {
            jr_msg_t *msg = self->replies[i].msg;
            if (msg->type != JR_MSG_ACCEPTED)
                continue;
            for (uint32_t k = 0; k < msg->nmarks; k++) {
                jr_bjob_t *job = jr_jobtab_find (self->jobs, msg->marks[k].id);
                if (msg->marks[k].code == 0 && job && job->state == JR_STATE_UNKNOWN)
                    msg->marks[k].code = rc;
            }
        }
        for (size_t i = 0; i < self->npending; i++) {
            s_drop (self, self->pending[i]);
            self->live--;
        }
        jr_warn ("jobs=%zu code=%s: refused jobs the journal could not store", self->npending,
                 jr_errname (rc));
    }
    else
        for (size_t i = 0; i < self->npending; i++)
            s_enqueue (self, self->pending[i]);
    self->npending = 0;
    for (size_t i = 0; i < self->nreplies; i++)
        s_answer (self, self->replies[i].rid, self->replies[i].rid_len, self->replies[i].msg);
    self->nreplies = 0;
}

//  -------------------------------------------------------------------------
//  Dispatch

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
    job->due_us =
        job->timeout_ms
            ? jr_clock_mono_us () + ((int64_t)job->timeout_ms + self->config.lease_grace_ms) * 1000
            : 0;  //  no deadline, no lease
    if (self->journal) {
        jr_rec_t rec = { .type = JR_REC_DISPATCH, .attempt = job->attempt };
        memcpy (rec.id, job->id, JR_ID_SIZE);
        jr_journal_append (self->journal, &rec, false);
    }
    w->batch_bytes += JR_JOB_OVERHEAD + strlen (self->tasks[job->task].name) + job->vars_len;
    jr_job_t *out = jr_msg_add_job (w->batch);
    memcpy (out->id, job->id, JR_ID_SIZE);
    const char *name = self->tasks[job->task].name;
    out->task = (jr_bytes_t){ (const uint8_t *)name, strlen (name) };
    out->vars = (jr_bytes_t){ job->vars, job->vars_len };
    out->priority = job->priority;
    out->timeout_ms = job->timeout_ms;
    out->max_attempts = job->max_attempts;
    out->attempt = job->attempt;
    out->state = job->cancel ? JR_STATE_CANCELLED : JR_STATE_RUNNING;  //  store, do not run
    out->created_us = job->created_us;
    out->accepted_us = job->accepted_us;
    out->dispatched_us = job->dispatched_us;
}

//  Put a batch's jobs back as they were before it was built.
static void
s_undo_batch (jr_broker_t *self, jr_worker_t *w)
{
    for (uint32_t i = 0; i < w->batch->njobs; i++) {
        jr_bjob_t *job = jr_jobtab_find (self->jobs, w->batch->jobs[i].id);
        s_running_unlink (job);
        job->attempt--;  //  it never left
        s_enqueue (self, job);
        w->credit++;
    }
    w->batch->njobs = 0;
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
    s_undo_batch (self, w);
    if (rc == JR_EUNKNOWN_PEER)
        s_worker_forget (self, w, "its connection is gone");
    else
        jr_warn ("worker=%s code=%s: dispatch postponed", w->name, jr_errname (rc));
}

//  Hand queued jobs to workers with credit: one job per worker per round,
//  so work spreads over all workers that serve a task. The dispatch records
//  are written before the jobs leave, so a restarted broker knows which
//  attempt numbers are taken.
static void
s_dispatch (jr_broker_t *self)
{
    if (!self->dirty)
        return;
    self->dirty = false;  //  with no worker, nothing to do until one comes
    if (self->nworkers == 0)
        return;
    int64_t now = jr_clock_wall_us ();
    for (uint32_t i = 0; i < self->nworkers; i++) {
        jr_msg_reset (self->workers[i]->batch, JR_MSG_DISPATCH);
        self->workers[i]->batch_bytes = 0;
    }
    bool progress = true;
    while (progress) {
        progress = false;
        for (uint32_t k = 0; k < self->nworkers; k++) {
            jr_worker_t *w = self->workers[(self->rr + k) % self->nworkers];
            if (w->credit == 0)
                continue;
            if (w->batch_bytes >= JR_BATCH_BYTES) {
                self->dirty = true;  //  the rest goes in the next turn's batch
                continue;
            }
            s_task_t *task = s_best_task (self, w);
            jr_queue_t *from = jr_queue_peek (&self->cancelled) ? &self->cancelled
                               : task                           ? &task->queue
                                                                : NULL;
            if (!from)
                continue;
            s_add_dispatch (self, w, jr_queue_pop (from), now);
            progress = true;
        }
    }
    self->rr++;
    if (s_flush (self)) {
        jr_journal_discard (self->journal);
        for (uint32_t i = 0; i < self->nworkers; i++)
            s_undo_batch (self, self->workers[i]);
        return;
    }
    //  Flushing may forget a worker (and reorder the array): walk backwards.
    for (uint32_t i = self->nworkers; i-- > 0;)
        if (i < self->nworkers)
            s_flush_batch (self, self->workers[i]);
}

//  -------------------------------------------------------------------------
//  Timers: heartbeats, leases, retries, forgetting, compaction

static void
s_heartbeats (jr_broker_t *self)
{
    int64_t now = jr_clock_mono_us ();
    jr_msg_t hb = { .type = JR_MSG_HEARTBEAT };
    for (uint32_t i = self->nworkers; i-- > 0;) {
        jr_worker_t *w = self->workers[i];
        if (now - w->last_recv > (int64_t)self->config.liveness_ms * 1000) {
            s_worker_forget (self, w, "no heartbeat");
            continue;
        }
        //  A lease that ran out: the worker should have reported the
        //  deadline long ago. Tell it to stop, run the job elsewhere.
        for (jr_bjob_t *job = w->running_head, *next; job; job = next) {
            next = job->next;
            if (job->due_us && now > job->due_us) {
                char id[37];
                jr_id_format (job->id, id);
                jr_warn ("id=%s attempt=%u worker=%s: lease expired, job requeued", id,
                         job->attempt, w->name);
                s_send_cancel (self, w, job);
                self->stats.expired++;
                s_requeue (self, job);
            }
        }
        if (now - w->last_send >= (int64_t)self->config.heartbeat_ms * 1000) {
            int rc = jr_msg_send (&hb, zsock_resolve (self->workers_sock), w->rid, w->rid_len);
            if (rc == JR_EUNKNOWN_PEER)
                s_worker_forget (self, w, "its connection is gone");
            else
                w->last_send = now;
        }
    }
}

static void
s_timers (jr_broker_t *self)
{
    int64_t wall = jr_clock_wall_us (), mono = jr_clock_mono_us ();
    jr_bjob_t *job;
    while ((job = jr_queue_peek (&self->delayed)) && job->due_us <= mono) {
        jr_queue_pop (&self->delayed);
        job->due_us = 0;  //  it was the retry time, not a lease
        s_enqueue (self, job);
    }
    //  Dead jobs past their time are forgotten, oldest first.
    const uint8_t *oldest;
    int64_t ttl_us = (int64_t)self->config.dead_ttl_s * 1000000;
    while ((oldest = s_ring_oldest (&self->dead))) {
        job = jr_jobtab_find (self->jobs, oldest);
        if (job && job->state == JR_STATE_DEAD && wall - job->at_us < ttl_us)
            break;
        s_ring_pop (&self->dead);
        if (job && job->state == JR_STATE_DEAD) {
            s_drop (self, job);
            self->live--;
        }
    }
}

static int
s_by_seq (const void *a, const void *b)
{
    const jr_bjob_t *x = *(jr_bjob_t *const *)a, *y = *(jr_bjob_t *const *)b;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

typedef struct {
    jr_bjob_t **jobs;
    size_t n;
} s_collect_t;

static void
s_collect (jr_bjob_t *job, void *arg)
{
    s_collect_t *all = arg;
    all->jobs[all->n++] = job;
}

//  In the snapshot writer (a fork of the broker): what is held now, in
//  arrival order so replay keeps the queues' order.
static void
s_snapshot (jr_journal_t *journal, void *arg)
{
    jr_broker_t *self = arg;
    assert (journal == self->journal);
    s_collect_t all = { calloc (jr_jobtab_size (self->jobs) + 1, sizeof (void *)), 0 };
    assert (all.jobs);
    jr_jobtab_each (self->jobs, s_collect, &all);
    qsort (all.jobs, all.n, sizeof *all.jobs, s_by_seq);
    for (size_t i = 0; i < all.n; i++) {
        jr_bjob_t *job = all.jobs[i];
        if (job->state == JR_STATE_UNKNOWN)
            continue;
        if (!s_final (job->state))
            s_log_accept (self, job, false);
        if (job->state != JR_STATE_QUEUED && job->state != JR_STATE_RUNNING)
            s_log_state (self, job, false);
        if (job->cancel) {
            jr_rec_t rec = { .type = JR_REC_CANCEL, .attempt = job->attempt };
            memcpy (rec.id, job->id, JR_ID_SIZE);
            jr_journal_append (self->journal, &rec, false);
        }
    }
    free (all.jobs);
}

//  Replace the journal's history by a snapshot, written beside the loop:
//  a compaction of gigabytes must not stall heartbeats and leases.
static void
s_compact (jr_broker_t *self)
{
    if (!self->journal)
        return;
    if (jr_journal_compacting (self->journal))
        jr_journal_compact_poll (self->journal);
    else if (jr_journal_wants_compaction (self->journal))
        jr_journal_compact_begin (self->journal, s_snapshot, self);
}

static void
s_log_stats (jr_broker_t *self)
{
    int64_t now = jr_clock_mono_us ();
    if (now < self->next_stats)
        return;
    self->next_stats = now + 10 * 1000000;
    self->unserved = 0;
    jr_fd_limit_check ();
    if (memcmp (&self->stats, &self->logged, sizeof self->stats) == 0)
        return;
    s_stats_t *s = &self->stats;
    jr_info ("live=%zu workers=%u accepted=%" PRIu64 " refused=%" PRIu64 " dispatched=%" PRIu64
             " done=%" PRIu64 " requeued=%" PRIu64 " retried=%" PRIu64 " dead=%" PRIu64
             " cancelled=%" PRIu64 " expired=%" PRIu64 " stale=%" PRIu64 " malformed=%" PRIu64
             " unread=%" PRIu64 " journal_bytes=%" PRIu64 ": stats",
             self->live, self->nworkers, s->accepted, s->refused, s->dispatched, s->done,
             s->requeued, s->retried, s->dead, s->cancelled, s->expired, s->stale, s->malformed,
             s->unread, self->journal ? jr_journal_size (self->journal) : 0);
    self->logged = self->stats;
}

//  -------------------------------------------------------------------------
//  Replay

//  A job made by replay, kept in journal (arrival) order for s_settle.
static void
s_replayed (jr_broker_t *self, jr_bjob_t *job)
{
    job->seq = ++self->seq;
    jr_jobtab_insert (self->jobs, job);
    self->queued_bytes += job->vars_len;
    if (self->nreplayed == self->cap_replayed) {
        self->cap_replayed = self->cap_replayed ? self->cap_replayed * 2 : 4096;
        self->replayed = realloc (self->replayed, self->cap_replayed * sizeof (void *));
        assert (self->replayed);
    }
    self->replayed[self->nreplayed++] = job;
}

static void
s_replay (const jr_rec_t *rec, void *arg)
{
    jr_broker_t *self = arg;
    jr_bjob_t *job = jr_jobtab_find (self->jobs, rec->id);
    if (rec->type == JR_REC_ACCEPT) {
        if (job && s_final (job->state))
            return;
        if (!job) {
            //  Consecutive jobs mostly share a task: skip the name lookup.
            int task = self->replay_task;
            const char *last =
                task >= 0 && (uint32_t)task < self->ntasks ? self->tasks[task].name : "";
            if (strlen (last) != rec->task.len || memcmp (last, rec->task.ptr, rec->task.len))
                task = self->replay_task = s_task (self, rec->task);
            if (task < 0) {
                self->replay_lost++;  //  jr_broker_new refuses to start
                return;
            }
            jr_job_t wire = { .priority = rec->priority,
                              .timeout_ms = rec->timeout_ms,
                              .max_attempts = rec->max_attempts,
                              .created_us = rec->created_us,
                              .vars = rec->vars };
            memcpy (wire.id, rec->id, JR_ID_SIZE);
            job = jr_bjob_new (&wire, (uint16_t)task);
            s_task_hold (self, (uint32_t)task);
            job->accepted_us = rec->accepted_us;
            s_replayed (self, job);
        }
        job->attempt = rec->attempt > job->attempt ? rec->attempt : job->attempt;
        job->max_attempts = rec->max_attempts;
        job->state = JR_STATE_QUEUED;
    }
    else if (rec->type == JR_REC_CANCEL && job && !s_final (job->state))
        job->cancel = true;
    else if (rec->type == JR_REC_DISPATCH && job && !s_final (job->state)) {
        job->attempt = rec->attempt > job->attempt ? rec->attempt : job->attempt;
        job->state = JR_STATE_RUNNING;
    }
    else if (rec->type == JR_REC_STATE) {
        if (!job) {
            if (!s_final (rec->state))
                return;
            jr_job_t wire = { 0 };
            memcpy (wire.id, rec->id, JR_ID_SIZE);
            job = jr_bjob_new (&wire, JR_NO_TASK);
            s_replayed (self, job);
        }
        if (s_final (job->state))
            return;
        job->state = (uint8_t)rec->state;
        job->at_us = rec->at_us;
        job->attempt = rec->attempt > job->attempt ? rec->attempt : job->attempt;
        if (s_final (job->state))
            s_job_release (self, job);  //  as the live broker did: its task entry is free again
    }
}

//  A retry journaled with its wall-clock time runs that much later from
//  now, and never later than the longest backoff (the clock may have been
//  wrong on either side of the restart).
static void
s_delay_replayed (jr_broker_t *self, jr_bjob_t *job)
{
    int64_t left = job->at_us - jr_clock_wall_us ();
    int64_t most = (int64_t)self->config.retry_max_ms * 1000;
    job->due_us = jr_clock_mono_us () + (left < 0 ? 0 : left > most ? most : left);
    jr_queue_push (&self->delayed, job);
}

//  After replay: running jobs lost their workers; put every job where it
//  belongs, oldest first.
static void
s_settle (jr_broker_t *self)
{
    size_t counts[9] = { 0 };
    for (size_t i = 0; i < self->nreplayed; i++) {
        jr_bjob_t *job = self->replayed[i];
        counts[job->state < 9 ? job->state : 0]++;
        if (s_final (job->state))
            s_remember (self, job);
        else {
            self->live++;
            if (job->cancel)
                s_enqueue (self, job);  //  its CANCELLED record is still to be stored
            else if (job->state == JR_STATE_DEAD) {
                uint8_t old[JR_ID_SIZE];
                s_ring_push (&self->dead, job->id, old);
            }
            else if (job->state == JR_STATE_SCHEDULED)
                s_delay_replayed (self, job);
            else
                s_enqueue (self, job);
        }
    }
    free (self->replayed);
    self->replayed = NULL;
    if (self->nreplayed)
        jr_info ("queued=%zu running=%zu scheduled=%zu dead=%zu finished=%zu: jobs restored",
                 counts[JR_STATE_QUEUED], counts[JR_STATE_RUNNING], counts[JR_STATE_SCHEDULED],
                 counts[JR_STATE_DEAD],
                 counts[JR_STATE_SUCCEEDED] + counts[JR_STATE_FAILED] + counts[JR_STATE_CANCELLED]);
}

//  -------------------------------------------------------------------------

jr_broker_t *
jr_broker_new (const jr_broker_config_t *config)
{
    jr_broker_t *self = calloc (1, sizeof *self);
    assert (self);
    self->config = *config;
    self->jobs = jr_jobtab_new ();
    self->task_index = zhashx_new ();
    self->budgets = jr_budgets_new (JR_PEER_BYTES);
    self->in = jr_msg_new ();
    self->status = jr_msg_new ();
    self->delayed.by_due = true;
    self->replay_task = -1;
    s_ring_init (&self->finished, config->remember);
    s_ring_init (&self->dead, config->max_dead);
    if (config->journal) {
        self->journal =
            jr_journal_open (config->journal, config->fsync, config->fsync_ms, s_replay, self);
        if (!self->journal) {
            jr_broker_destroy (&self);
            return NULL;
        }
        s_settle (self);
        if (self->replay_lost) {  //  cannot happen unless a bug lets the table overflow
            jr_error ("journal=%s jobs=%zu: accepted jobs need more task names than the broker"
                      " holds (%d); refusing to start rather than drop them",
                      config->journal, self->replay_lost, JR_MAX_TASKS);
            jr_broker_destroy (&self);
            return NULL;
        }
    }
    self->clients = s_router (config->clients, "clients");
    self->workers_sock = s_router (config->workers, "workers");
    if (!self->clients || !self->workers_sock) {
        jr_broker_destroy (&self);
        return NULL;
    }
    jr_info ("clients=%s workers=%s journal=%s live=%zu: broker listening", config->clients,
             config->workers, config->journal ? config->journal : "(none)", self->live);
    return self;
}

void
jr_broker_destroy (jr_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jr_broker_t *self = *self_p;
    //  Workers' jobs stay in the journal as dispatched: a restart requeues
    //  them. Only the memory goes here.
    for (uint32_t i = 0; i < self->nworkers; i++) {
        jr_worker_t *w = self->workers[i];
        jr_msg_destroy (&w->batch);
        free (w->tasks);
        free (w);
    }
    for (uint32_t i = 0; i < self->ntasks; i++) {
        jr_queue_free (&self->tasks[i].queue);
        free (self->tasks[i].note);
    }
    jr_queue_free (&self->delayed);
    jr_queue_free (&self->cancelled);
    free (self->tasks);
    free (self->spare);
    free (self->workers);
    free (self->pending);
    free (self->replayed);  //  left when the journal could not be opened after replay
    for (size_t i = 0; i < self->nreplies; i++)
        jr_msg_destroy (&self->replies[i].msg);
    for (size_t i = 0; i < self->npool; i++)
        jr_msg_destroy (&self->msg_pool[i]);
    free (self->replies);
    free (self->msg_pool);
    free (self->finished.ids);
    free (self->dead.ids);
    zhashx_destroy (&self->task_index);
    jr_jobtab_destroy (&self->jobs);
    jr_msg_destroy (&self->in);
    jr_msg_destroy (&self->status);
    jr_journal_close (&self->journal);
    zsock_destroy (&self->clients);
    zsock_destroy (&self->workers_sock);
    jr_budgets_destroy (&self->budgets);  //  frames libzmq still holds keep theirs
    free (self);
    *self_p = NULL;
}

void
jr_broker_stop (jr_broker_t *self)
{
    atomic_store (&self->stop, true);
}

size_t
jr_broker_live (const jr_broker_t *self)
{
    return self->live;
}

int
jr_broker_run (jr_broker_t *self)
{
    zmq_pollitem_t items[] = {
        { zsock_resolve (self->clients), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->workers_sock), 0, ZMQ_POLLIN, 0 },
    };
    int64_t tick = 0;
    while (!zsys_interrupted && !atomic_load (&self->stop)) {
        bool busy = self->dirty || (self->journal && jr_journal_pending (self->journal));
        if (zmq_poll (items, 2, busy ? 0 : 100) == -1 && errno != EINTR)
            break;
        if (items[1].revents & ZMQ_POLLIN)
            s_drain (self, self->workers_sock, "workers", s_worker_message);
        if (items[0].revents & ZMQ_POLLIN)
            s_drain (self, self->clients, "clients", s_client_message);
        s_commit (self);
        s_dispatch (self);
        int64_t now = jr_clock_mono_us ();
        if (now - tick >= 100000) {
            tick = now;
            s_heartbeats (self);
            s_timers (self);
            s_compact (self);
            s_log_stats (self);
            s_budgets_sweep (self);
        }
    }
    s_commit (self);
    jr_info ("live=%zu: broker stopping", self->live);
    return 0;
}
