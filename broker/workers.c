/*  workers.c - the worker registry and conversation: READY, DONE, FREE, PROGRESS, heartbeats, leases  */
#include "broker/internal.h"

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

void
jr_broker_running_link (jr_worker_t *w, jr_bjob_t *job)
{
    job->worker = w;
    job->prev = NULL;
    job->next = w->running_head;
    if (w->running_head)
        w->running_head->prev = job;
    w->running_head = job;
    w->running++;
}

void
jr_broker_running_unlink (jr_bjob_t *job)
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

void
jr_broker_send_cancel (jr_broker_t *self, jr_worker_t *w, const jr_bjob_t *job)
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
void
jr_broker_worker_forget (jr_broker_t *self, jr_worker_t *w, const char *why)
{
    uint32_t requeued = w->running;
    while (w->running_head)
        jr_broker_requeue (self, w->running_head);
    for (uint32_t i = 0; i < w->ntasks; i++) {
        jr_btask_t *task = &self->tasks[w->tasks[i]];
        task->workers--;
        if (task->queue.size)  //  its jobs, requeued above among them, now wait
            jr_broker_unserved (self, task);
        jr_broker_task_release (self, w->tasks[i]);
    }
    for (uint32_t i = 0; i < self->nworkers; i++)
        if (self->workers[i] == w) {
            self->workers[i] = self->workers[--self->nworkers];
            break;
        }
    if (requeued || w->state != JR_PEER_DRAINING)
        jr_warn ("worker=%s requeued=%u: worker forgotten: %s", w->name, requeued, why);
    else
        jr_info ("worker=%s: worker left after draining", w->name);
    jr_msg_destroy (&w->batch);
    free (w->tasks);
    free (w);
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
        int t = jr_broker_task (self, in->tasks[i]);
        if (t < 0 || self->tasks[t].seen == seq)
            continue;
        self->tasks[t].seen = seq;
        self->tasks[t].warned = false;
        jr_broker_task_hold (self, (uint32_t)t);
        self->tasks[t].workers++;
        w->tasks[w->ntasks++] = (uint16_t)t;
    }
}

static void
s_on_ready (jr_broker_t *self, jr_worker_t *w, const uint8_t *rid, size_t rid_len)
{
    jr_msg_t *in = self->in;
    if (w)  //  it reconnected or restarted: start over with what it says now
        jr_broker_worker_forget (self, w, "it said READY again");
    if (s_ready_refused (self, rid, rid_len))
        return;
    w = calloc (1, sizeof *w);
    assert (w);
    w->state = JR_PEER_ACTIVE;
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
        jr_counter_inc (self->stats.stale);
        return;
    }
    //  The move is the lifecycle table's; a cancelled job whose attempt did
    //  not end CANCELLED waits for its CANCELLED record (CANCEL_QUEUED).
    int next = jr_lifecycle_next (jr_broker_lc (job), jr_lifecycle_done_event (mark->code));
    if (jr_state_final_for_broker (next))
        jr_broker_finish (self, job, next, true);
    else if (next == JR_STATE_DEAD)
        jr_broker_make_dead (self, job);
    else if (next == JR_STATE_SCHEDULED)
        jr_broker_schedule (self, job);
    else if (next == JR_STATE_QUEUED || next == JR_STATE_CANCEL_QUEUED)
        jr_broker_requeue (self, job);
    else
        jr_counter_inc (self->stats.stale);  //  no move from here: the table says so
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
    if (w->state == JR_PEER_DRAINING && w->running == 0)
        jr_broker_worker_forget (self, w, "drained");
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

//  A message from a connection that has not said READY (the broker
//  restarted, or forgot it): it must say READY.
static void
s_say_ready (jr_broker_t *self, jr_worker_t *w, const uint8_t *rid, size_t rid_len)
{
    (void)w;
    jr_msg_send_error (zsock_resolve (self->workers_sock), rid, rid_len, 0, JR_EUNKNOWN_PEER,
                       "say READY");
}

static void
s_on_bye (jr_broker_t *self, jr_worker_t *w, const uint8_t *rid, size_t rid_len)
{
    (void)rid, (void)rid_len;
    w->state = JR_PEER_DRAINING;
    w->capacity = w->credit = 0;
    jr_info ("worker=%s running=%u: worker draining", w->name, w->running);
    if (w->running == 0)
        jr_broker_worker_forget (self, w, "drained");
}

static void
s_alive (jr_broker_t *self, jr_worker_t *w, const uint8_t *rid, size_t rid_len)
{
    (void)self, (void)w, (void)rid, (void)rid_len;  //  any message counts as a sign of life
}

static void
s_ready (jr_broker_t *self, jr_worker_t *w, const uint8_t *rid, size_t rid_len)
{
    s_on_ready (self, w, rid, rid_len);
}

static void
s_done (jr_broker_t *self, jr_worker_t *w, const uint8_t *rid, size_t rid_len)
{
    (void)rid, (void)rid_len;
    s_on_done (self, w);
}

static void
s_free (jr_broker_t *self, jr_worker_t *w, const uint8_t *rid, size_t rid_len)
{
    (void)rid, (void)rid_len;
    s_on_free (self, w);
}

static void
s_progress (jr_broker_t *self, jr_worker_t *w, const uint8_t *rid, size_t rid_len)
{
    (void)rid, (void)rid_len;
    s_on_progress (self, w);
}

typedef void (s_action_fn) (jr_broker_t *self, jr_worker_t *w, const uint8_t *rid, size_t rid_len);

//  The worker conversation (PROTOCOL.md 6.2): what each message does in
//  each state of its peer. A message with no row has no business here.
static const struct {
    int type;
    s_action_fn *in[JR_PEER_STATES];  //  by peer state: UNKNOWN, ACTIVE, DRAINING
} s_conversation[] = {
    { JR_MSG_READY, { s_ready, s_ready, s_ready } },
    { JR_MSG_DONE, { s_say_ready, s_done, s_done } },
    { JR_MSG_FREE, { s_say_ready, s_free, s_free } },
    { JR_MSG_PROGRESS, { s_say_ready, s_progress, s_progress } },
    { JR_MSG_HEARTBEAT, { s_say_ready, s_alive, s_alive } },
    { JR_MSG_BYE, { s_say_ready, s_on_bye, s_alive } },
};

bool
jr_broker_worker_message (jr_broker_t *self, const uint8_t *rid, size_t rid_len, int type)
{
    jr_worker_t *w = s_worker_find (self, rid, rid_len);
    if (w)
        w->last_recv = jr_clock_mono_us ();
    for (size_t i = 0; i < sizeof s_conversation / sizeof s_conversation[0]; i++)
        if (s_conversation[i].type == type) {
            s_conversation[i].in[w ? w->state : JR_PEER_UNKNOWN](self, w, rid, rid_len);
            return true;
        }
    return false;
}

void
jr_broker_heartbeats (jr_broker_t *self)
{
    int64_t now = jr_clock_mono_us ();
    jr_msg_t hb = { .type = JR_MSG_HEARTBEAT };
    for (uint32_t i = self->nworkers; i-- > 0;) {
        jr_worker_t *w = self->workers[i];
        if (now - w->last_recv > (int64_t)self->config.liveness_ms * 1000) {
            jr_broker_worker_forget (self, w, "no heartbeat");
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
                jr_broker_send_cancel (self, w, job);
                jr_counter_inc (self->stats.expired);
                jr_broker_requeue (self, job);
            }
        }
        if (now - w->last_send >= (int64_t)self->config.heartbeat_ms * 1000) {
            int rc = jr_msg_send (&hb, zsock_resolve (self->workers_sock), w->rid, w->rid_len);
            if (rc == JR_EUNKNOWN_PEER)
                jr_broker_worker_forget (self, w, "its connection is gone");
            else
                w->last_send = now;
        }
    }
}
