/*  dispatch.c - dispatch by credit, in batches bounded by count and bytes  */
#include "broker/internal.h"

//  The task with the best waiting job among those a worker serves.
static jr_btask_t *
s_best_task (jr_broker_t *self, jr_worker_t *w)
{
    jr_btask_t *best = NULL;
    for (uint32_t i = 0; i < w->ntasks; i++) {
        jr_btask_t *task = &self->tasks[w->tasks[i]];
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
    jr_broker_running_link (w, job);
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
        jr_broker_running_unlink (job);
        job->attempt--;  //  it never left
        jr_broker_enqueue (self, job);
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
        jr_counter_add (self->stats.dispatched, w->batch->njobs);
        w->last_send = jr_clock_mono_us ();
        return;
    }
    s_undo_batch (self, w);
    if (rc == JR_EUNKNOWN_PEER)
        jr_broker_worker_forget (self, w, "its connection is gone");
    else
        jr_warn ("worker=%s code=%s: dispatch postponed", w->name, jr_errname (rc));
}

//  Hand queued jobs to workers with credit: one job per worker per round,
//  so work spreads over all workers that serve a task. The dispatch records
//  are written before the jobs leave, so a restarted broker knows which
//  attempt numbers are taken.
void
jr_broker_dispatch (jr_broker_t *self)
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
            jr_btask_t *task = s_best_task (self, w);
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
    if (jr_broker_flush (self)) {
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
