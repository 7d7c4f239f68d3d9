/*  moves.c - job moves between queues, workers, retries and ends, with their journal records  */
#include "broker/internal.h"

//  A job's state in the lifecycle table (common/lifecycle.h): a cancelled
//  job still held is CANCEL_QUEUED or CANCEL_RUNNING.
int
jr_broker_lc (const jr_bjob_t *job)
{
    if (!job->cancel)
        return job->state;
    return job->state == JR_STATE_RUNNING ? JR_STATE_CANCEL_RUNNING : JR_STATE_CANCEL_QUEUED;
}

//  -------------------------------------------------------------------------
//  Journal records

void
jr_broker_log_state (jr_broker_t *self, const jr_bjob_t *job, bool durable)
{
    if (!self->journal)
        return;
    jr_rec_t rec = {
        .type = JR_REC_STATE, .attempt = job->attempt, .state = job->state, .at_us = job->at_us
    };
    memcpy (rec.id, job->id, JR_ID_SIZE);
    jr_journal_append (self->journal, &rec, durable);
}

void
jr_broker_log_accept (jr_broker_t *self, const jr_bjob_t *job, bool durable)
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

int
jr_broker_flush (jr_broker_t *self)
{
    return self->journal ? jr_journal_flush (self->journal) : 0;
}

//  The queue a waiting job belongs in: its task's, or for a cancelled one
//  the queue any worker takes from first, to store its CANCELLED record.
static jr_queue_t *
s_queue_of (jr_broker_t *self, const jr_bjob_t *job)
{
    return job->cancel ? &self->cancelled : &self->tasks[job->task].queue;
}

//  Take a job out of whatever holds it (a worker, a queue, the delay heap).
void
jr_broker_detach (jr_broker_t *self, jr_bjob_t *job)
{
    if (job->state == JR_STATE_RUNNING && job->worker)
        jr_broker_running_unlink (job);
    else if (job->state == JR_STATE_QUEUED)
        jr_queue_remove (s_queue_of (self, job), job);
    else if (job->state == JR_STATE_SCHEDULED) {
        jr_queue_remove (&self->delayed, job);
        job->due_us = 0;  //  it was the retry time, not a lease
    }
}

void
jr_broker_enqueue (jr_broker_t *self, jr_bjob_t *job)
{
    job->state = JR_STATE_QUEUED;
    jr_queue_push (s_queue_of (self, job), job);
    if (!job->cancel)
        jr_broker_unserved (self, &self->tasks[job->task]);
    self->dirty = true;
}

//  A cancelled job waits for any worker to store its CANCELLED record.
void
jr_broker_enqueue_cancelled (jr_broker_t *self, jr_bjob_t *job)
{
    job->cancel = true;
    jr_broker_enqueue (self, job);
}

//  Let go of a job record entirely.
void
jr_broker_drop (jr_broker_t *self, jr_bjob_t *job)
{
    jr_broker_job_release (self, job);
    jr_jobtab_remove (self->jobs, job);
    self->queued_bytes -= job->vars_len;
    jr_bjob_destroy (&job);
}

//  Keep only the id and the outcome of a finished job, so a resubmitted id
//  is recognised; the oldest remembered ids are forgotten.
void
jr_broker_remember (jr_broker_t *self, jr_bjob_t *job)
{
    jr_broker_job_release (self, job);  //  nothing reads a finished job's task
    jr_jobtab_remove (self->jobs, job);
    self->queued_bytes -= job->vars_len;
    jr_bjob_t *small = realloc (job, sizeof *job);
    assert (small);
    small->vars_len = 0;
    jr_jobtab_insert (self->jobs, small);
    uint8_t old[JR_ID_SIZE];
    if (jr_ring_push (&self->finished, small->id, old)) {
        jr_bjob_t *gone = jr_jobtab_find (self->jobs, old);
        if (gone && jr_state_final_for_broker (gone->state))
            jr_broker_drop (self, gone);
    }
}

//  The job has its final outcome.
void
jr_broker_finish (jr_broker_t *self, jr_bjob_t *job, int state, bool journal)
{
    jr_broker_detach (self, job);
    jr_broker_count_finished (self, job->task, state);
    job->state = (uint8_t)state;
    job->at_us = jr_clock_wall_us ();
    job->cancel = false;
    self->live--;
    if (journal)
        jr_broker_log_state (self, job, false);
    if (state == JR_STATE_CANCELLED)
        jr_counter_inc (self->stats.cancelled);
    else
        jr_counter_inc (self->stats.done);
    jr_broker_remember (self, job);
}

void
jr_broker_make_dead (jr_broker_t *self, jr_bjob_t *job)
{
    jr_broker_detach (self, job);
    jr_broker_count_finished (self, job->task, JR_STATE_DEAD);
    job->state = JR_STATE_DEAD;
    job->at_us = jr_clock_wall_us ();
    jr_broker_log_state (self, job, false);
    jr_counter_inc (self->stats.dead);
    uint8_t old[JR_ID_SIZE];
    if (jr_ring_push (&self->dead, job->id, old)) {
        jr_bjob_t *gone = jr_jobtab_find (self->jobs, old);
        if (gone && gone->state == JR_STATE_DEAD) {
            jr_broker_drop (self, gone);
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

void
jr_broker_schedule (jr_broker_t *self, jr_bjob_t *job)
{
    jr_broker_detach (self, job);
    job->state = JR_STATE_SCHEDULED;
    int64_t delay = s_backoff_us (self, job->attempt);
    job->at_us = jr_clock_wall_us () + delay;  //  for the journal, across restarts
    job->due_us = jr_clock_mono_us ()
                  + delay;  //  what the timer follows: steps of the wall clock do not move it
    jr_queue_push (&self->delayed, job);
    jr_broker_log_state (self, job, false);
    jr_counter_inc (self->stats.retried);
}

//  Put a running job back in its queue (worker lost, lease over, handed
//  back): its next dispatch is the next attempt. A job cancelled meanwhile
//  goes to the cancelled queue, for its record.
void
jr_broker_requeue (jr_broker_t *self, jr_bjob_t *job)
{
    jr_broker_detach (self, job);
    jr_broker_enqueue (self, job);
    jr_counter_inc (self->stats.requeued);
}
