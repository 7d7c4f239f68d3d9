/*  clients.c - the client conversation: SUBMIT, STATUS, CANCEL, RETRY, LIST, and the commit of replies  */
#include "broker/internal.h"

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
    jr_breply_t *reply = &self->replies[self->nreplies++];
    memcpy (reply->rid, rid, rid_len);
    reply->rid_len = rid_len;
    reply->msg = msg;
}

//  -------------------------------------------------------------------------
//  What each client has unread, so one that never reads cannot pile up
//  replies in our memory

//  Forget clients with nothing unread that we have not answered for a
//  while; libzmq frees what a departed client left unread.
void
jr_broker_budgets_sweep (jr_broker_t *self)
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
        jr_counter_inc (self->stats.unread);
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
    int task = jr_broker_task (self, job->task);
    if (task < 0)
        return JR_EQUEUE_FULL;  //  the task table is full
    jr_bjob_t *rec = jr_bjob_new (job, (uint16_t)task);
    jr_broker_task_hold (self, (uint32_t)task);
    rec->attempt = 0;
    rec->accepted_us = now;
    rec->seq = ++self->seq;
    if (rec->max_attempts == 0)
        rec->max_attempts = self->config.max_attempts;
    rec->state = JR_STATE_UNKNOWN;  //  until the journal has it
    jr_jobtab_insert (self->jobs, rec);
    self->live++;
    self->queued_bytes += rec->vars_len;
    jr_broker_log_accept (self, rec, true);
    if (self->npending == self->cap_pending) {
        self->cap_pending = self->cap_pending ? self->cap_pending * 2 : 1024;
        self->pending = realloc (self->pending, self->cap_pending * sizeof (void *));
        assert (self->pending);
    }
    self->pending[self->npending++] = rec;
    jr_counter_inc (self->stats.accepted);
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
            jr_counter_inc (self->stats.refused);
        jr_msg_add_mark (out, job->id, 0, code);
    }
    s_reply_later (self, rid, rid_len, out);
}

//  The state a client is told: a cancelled job is CANCELLED from the moment
//  the cancel is journaled, though it is held until its record is stored.
static int
s_told_state (const jr_bjob_t *job)
{
    return job ? jr_lifecycle_told (jr_broker_lc (job)) : JR_STATE_UNKNOWN;
}

static void
s_on_status (jr_broker_t *self, jr_msg_t *out)
{
    jr_msg_t *in = self->in;
    for (uint32_t i = 0; i < in->nmarks; i++) {
        jr_bjob_t *job = jr_jobtab_find (self->jobs, in->marks[i].id);
        jr_msg_add_mark (out, in->marks[i].id, job ? job->attempt : 0, s_told_state (job));
        //  A finished job keeps only its id and outcome: its task is "".
        const char *task_name =
            job && job->task != JR_NO_TASK && s_told_state (job) ? self->tasks[job->task].name : "";
        jr_msg_add_task (out, (jr_bytes_t){ (const uint8_t *)task_name, strlen (task_name) });
        const char *worker =
            job && job->state == JR_STATE_RUNNING && job->worker ? job->worker->name : "";
        jr_msg_add_worker (out, (jr_bytes_t){ (const uint8_t *)worker, strlen (worker) });
        jr_progress_t *p = job ? job->progress : NULL;
        jr_btask_t *task = s_told_state (job) == JR_STATE_QUEUED ? &self->tasks[job->task] : NULL;
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
        jr_counter_inc (self->stats.unread);
    if (rc == JR_ETOOLARGE)  //  long names on many marks: asking again would not help
        jr_msg_send_error (zsock_resolve (self->clients), rid, rid_len, self->in->tag, JR_ETOOLARGE,
                           "the answer passes the frame limit: ask for fewer ids");
    else if (rc)  //  the client asks again after its timeout
        jr_debug ("code=%s: cannot answer a client", jr_errname (rc));
}

//  True if a CANCEL changes this job: it is held and not already ending.
static bool
s_cancellable (const jr_bjob_t *job)
{
    return job && jr_lifecycle_next (jr_broker_lc (job), JR_EVENT_CANCEL) >= 0;
}

//  Write the records a request promises, before anything changes: what
//  this turn already holds is committed first, so a failed write undoes
//  only these records, and a refused request changes nothing.
static int
s_journal_first (jr_broker_t *self, jr_rec_type_t type, bool (*applies) (const jr_bjob_t *))
{
    if (!self->journal)
        return 0;
    jr_broker_commit (self);
    jr_msg_t *in = self->in;
    for (uint32_t i = 0; i < in->nmarks; i++) {
        jr_bjob_t *job = jr_jobtab_find (self->jobs, in->marks[i].id);
        if (!applies (job))
            continue;
        if (type == JR_REC_ACCEPT) {
            jr_bjob_t copy = *job;
            copy.max_attempts = job->attempt + 1;
            jr_broker_log_accept (self, &copy, true);
        }
        else {
            jr_rec_t rec = { .type = (int)type, .attempt = job->attempt };
            memcpy (rec.id, job->id, JR_ID_SIZE);
            jr_journal_append (self->journal, &rec, true);
        }
    }
    int rc = jr_broker_flush (self);
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
                jr_broker_send_cancel (self, job->worker, job);
            else {
                jr_broker_detach (self, job);  //  from the queue it is in before the cancel
                jr_broker_enqueue_cancelled (self, job);
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
    return job && jr_lifecycle_next (jr_broker_lc (job), JR_EVENT_RETRY) >= 0;
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
            jr_broker_enqueue (self, job);
        }
        jr_msg_add_mark (out, in->marks[i].id, job ? job->attempt : 0, s_told_state (job));
    }
    return 0;
}

//  A job LIST found, copied out so the sort reads no job records.
typedef struct {
    uint8_t pos[JR_JOBTAB_POS_SIZE];  //  its position in the table's order: hash, then id
    uint32_t attempt;
} s_found_t;

//  A LIST page being collected: the jobs of the range that match.
typedef struct {
    int state;         //  wanted
    int task;          //  wanted task index, or -1 for any
    uint32_t limit;    //  ids the page may hold
    s_found_t *found;  //  matching jobs, in no order yet
    size_t nfound, cap_found;
} s_list_t;

static bool
s_list_one (jr_bjob_t *job, void *arg)
{
    s_list_t *list = arg;
    if (job->state == list->state && !job->cancel && (list->task < 0 || job->task == list->task)) {
        if (list->nfound == list->cap_found) {
            list->cap_found = list->cap_found ? list->cap_found * 2 : 1024;
            list->found = realloc (list->found, list->cap_found * sizeof *list->found);
            assert (list->found);
        }
        s_found_t *found = &list->found[list->nfound++];
        jr_jobtab_pos (job->id, found->pos);
        found->attempt = job->attempt;
    }
    return list->nfound < list->limit;
}

//  By hash, then id: the table's order, which LIST pages follow (ids are
//  the clients' and may be time-ordered; the hash spreads them).
static int
s_by_pos (const void *a, const void *b)
{
    return memcmp (((const s_found_t *)a)->pos, ((const s_found_t *)b)->pos, JR_JOBTAB_POS_SIZE);
}

static_assert (JR_JOBTAB_POS_SIZE == JR_LIST_CURSOR, "a LIST cursor is a job table position");

//  One page of LIST: the matching ids after the cursor, in (hash, id) order, from
//  at most about JR_LIST_SCAN slots of the job table, so one LIST costs
//  the loop a bounded time however many jobs it holds (PROTOCOL.md 6.1).
static void
s_on_list (jr_broker_t *self, jr_msg_t *out)
{
    jr_msg_t *in = self->in;
    s_list_t list = { in->code, -1, in->limit ? in->limit : JR_MAX_LIST, NULL, 0, 0 };
    uint8_t *next = self->list_at;  //  the reply borrows it until it is sent
    bool end = true;
    if (in->task.len) {
        char key[JR_MAX_NAME + 1];
        memcpy (key, in->task.ptr, in->task.len);
        key[in->task.len] = 0;
        uintptr_t found =
            memchr (key, 0, in->task.len) ? 0 : (uintptr_t)zhashx_lookup (self->task_index, key);
        if (!found)
            return;  //  no job has that task: an empty last page
        list.task = (int)found - 1;
    }
    end = jr_jobtab_range (self->jobs, in->cursor.len ? in->cursor.ptr : NULL, JR_LIST_SCAN,
                           s_list_one, &list, next);
    if (list.nfound)  //  found is NULL when nothing matched, and qsort wants a pointer
        qsort (list.found, list.nfound, sizeof *list.found, s_by_pos);
    size_t n = list.nfound < list.limit ? list.nfound : list.limit;
    for (size_t i = 0; i < n; i++)
        jr_msg_add_mark (out, list.found[i].pos + 4, list.found[i].attempt, list.state);
    if (n < list.nfound) {  //  the rest of the range comes after the last job sent
        memcpy (next, list.found[n - 1].pos, JR_LIST_CURSOR);
        end = false;
    }
    if (!end)
        out->cursor = (jr_bytes_t){ next, JR_LIST_CURSOR };
    free (list.found);
}

bool
jr_broker_client_message (jr_broker_t *self, const uint8_t *rid, size_t rid_len, int type)
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
    if (type == JR_MSG_LIST && !jr_state_held (self->in->code)) {
        jr_msg_send_error (zsock_resolve (self->clients), rid, rid_len, self->in->tag, JR_EINVALID,
                           "LIST serves queued, scheduled, running and dead");
        return true;
    }
    if (type == JR_MSG_LIST && self->in->limit > JR_MAX_LIST) {
        jr_msg_send_error (zsock_resolve (self->clients), rid, rid_len, self->in->tag, JR_EINVALID,
                           "LIST limit is 1 to 100000 (0 = 100000)");
        return true;
    }
    jr_msg_t *out = s_reply_msg (self, JR_MSG_STATE, self->in->tag);
    int rc = 0;
    if (type == JR_MSG_CANCEL)
        rc = s_on_cancel (self, out);
    else if (type == JR_MSG_RETRY)
        rc = s_on_retry (self, out);
    else
        s_on_list (self, out);
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
//  Commit: make this turn's records durable, then answer

void
jr_broker_commit (jr_broker_t *self)
{
    int rc = jr_broker_flush (self);
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
            jr_broker_drop (self, self->pending[i]);
            self->live--;
        }
        jr_warn ("jobs=%zu code=%s: refused jobs the journal could not store", self->npending,
                 jr_errname (rc));
    }
    else
        for (size_t i = 0; i < self->npending; i++)
            jr_broker_enqueue (self, self->pending[i]);
    self->npending = 0;
    for (size_t i = 0; i < self->nreplies; i++)
        s_answer (self, self->replies[i].rid, self->replies[i].rid_len, self->replies[i].msg);
    self->nreplies = 0;
}
