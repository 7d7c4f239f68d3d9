/*  replay.c - replay of the journal at start, and the snapshot that compacts it  */
#include "broker/internal.h"

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
        if (!jr_state_final_for_broker (job->state))
            jr_broker_log_accept (self, job, false);
        if (job->state != JR_STATE_QUEUED && job->state != JR_STATE_RUNNING)
            jr_broker_log_state (self, job, false);
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
void
jr_broker_compact (jr_broker_t *self)
{
    if (!self->journal)
        return;
    if (jr_journal_compacting (self->journal))
        jr_journal_compact_poll (self->journal);
    else if (jr_journal_wants_compaction (self->journal))
        jr_journal_compact_begin (self->journal, s_snapshot, self);
}

//  A job made by replay, kept in journal (arrival) order for jr_broker_settle.
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

void
jr_broker_replay (const jr_rec_t *rec, void *arg)
{
    jr_broker_t *self = arg;
    jr_bjob_t *job = jr_jobtab_find (self->jobs, rec->id);
    if (rec->type == JR_REC_ACCEPT) {
        if (job && jr_state_final_for_broker (job->state))
            return;
        if (!job) {
            //  Consecutive jobs mostly share a task: skip the name lookup.
            int task = self->replay_task;
            const char *last =
                task >= 0 && (uint32_t)task < self->ntasks ? self->tasks[task].name : "";
            if (strlen (last) != rec->task.len || memcmp (last, rec->task.ptr, rec->task.len))
                task = self->replay_task = jr_broker_task (self, rec->task);
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
            jr_broker_task_hold (self, (uint32_t)task);
            job->accepted_us = rec->accepted_us;
            s_replayed (self, job);
        }
        job->attempt = rec->attempt > job->attempt ? rec->attempt : job->attempt;
        job->max_attempts = rec->max_attempts;
        job->state = JR_STATE_QUEUED;
    }
    else if (rec->type == JR_REC_CANCEL && job && !jr_state_final_for_broker (job->state))
        job->cancel = true;
    else if (rec->type == JR_REC_DISPATCH && job && !jr_state_final_for_broker (job->state)) {
        job->attempt = rec->attempt > job->attempt ? rec->attempt : job->attempt;
        job->state = JR_STATE_RUNNING;
    }
    else if (rec->type == JR_REC_STATE) {
        if (!job) {
            if (!jr_state_final_for_broker (rec->state))
                return;
            jr_job_t wire = { 0 };
            memcpy (wire.id, rec->id, JR_ID_SIZE);
            job = jr_bjob_new (&wire, JR_NO_TASK);
            s_replayed (self, job);
        }
        if (jr_state_final_for_broker (job->state))
            return;
        job->state = (uint8_t)rec->state;
        job->at_us = rec->at_us;
        job->attempt = rec->attempt > job->attempt ? rec->attempt : job->attempt;
        if (jr_state_final_for_broker (job->state))
            jr_broker_job_release (self,
                                   job);  //  as the live broker did: its task entry is free again
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
void
jr_broker_settle (jr_broker_t *self)
{
    size_t counts[9] = { 0 };
    for (size_t i = 0; i < self->nreplayed; i++) {
        jr_bjob_t *job = self->replayed[i];
        counts[job->state < 9 ? job->state : 0]++;
        if (jr_state_final_for_broker (job->state))
            jr_broker_remember (self, job);
        else {
            self->live++;
            if (job->cancel)
                jr_broker_enqueue (self, job);  //  its CANCELLED record is still to be stored
            else if (job->state == JR_STATE_DEAD) {
                uint8_t old[JR_ID_SIZE];
                jr_ring_push (&self->dead, job->id, old);
            }
            else if (job->state == JR_STATE_SCHEDULED)
                s_delay_replayed (self, job);
            else
                jr_broker_enqueue (self, job);
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
