/*  tasks.c - the table of task names: lookup, references, reuse, the unserved note  */
#include "broker/internal.h"

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
        jr_btask_t *task = &self->tasks[t];
        task->spare = false;
        if (task->refs == 0) {
            zhashx_delete (self->task_index, task->name);
            free (task->note);
            task->note = task->name = NULL;
            memset (task->finished, 0, sizeof task->finished);  //  the old name's
            task->counted = task->labelled = false;
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
int
jr_broker_task (jr_broker_t *self, jr_bytes_t name)
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
    jr_btask_t *task = &self->tasks[t];
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
void
jr_broker_task_hold (jr_broker_t *self, uint32_t t)
{
    self->tasks[t].refs++;
}

//  ... and stops: an entry nothing uses may be given to another name.
void
jr_broker_task_release (jr_broker_t *self, uint32_t t)
{
    assert (self->tasks[t].refs > 0);
    if (--self->tasks[t].refs == 0)
        s_task_spare (self, t);
}

//  A job leaves the broker's hands (finished, forgotten): its task goes.
void
jr_broker_job_release (jr_broker_t *self, jr_bjob_t *job)
{
    if (job->task != JR_NO_TASK)
        jr_broker_task_release (self, job->task);
    job->task = JR_NO_TASK;
}

//  Jobs wait for a worker of their task to connect; say so once, and again
//  only after a worker served the task and left. Jobs restored at start are
//  not news: workers have not connected yet.
void
jr_broker_unserved (jr_broker_t *self, jr_btask_t *task)
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

//  One more job of task t finished in state (succeeded, failed, dead,
//  cancelled, expired): jobs_finished_total{task,outcome}. The counter is
//  found once per task and state, then kept with the task.
void
jr_broker_count_finished (jr_broker_t *self, uint32_t t, int state)
{
    if (t >= self->ntasks || state < JR_STATE_SUCCEEDED || state > JR_STATE_EXPIRED)
        return;
    jr_btask_t *task = &self->tasks[t];
    if (!task->finished[state]) {
        if (!task->counted) {
            task->counted = true;
            task->labelled = task->name && self->stats.task_labels < JR_METRIC_TASKS;
            self->stats.task_labels += task->labelled;
        }
        task->finished[state] = jr_metrics_counter2 (
            self->metrics, "jobs_finished", "jobs that reached a final state, by task and outcome",
            "task", task->labelled ? task->name : "_other", "outcome", jr_state_name (state));
    }
    jr_counter_inc (task->finished[state]);
}
