/*  submit.c - jr_client_submit_many: jobs pipelined to the broker in batches until each is ACCEPTED  */
#include "client/client.h"
#include "common/mp.h"

#define JR_CLIENT_BATCH_JOBS  1000       //  jobs in one SUBMIT
#define JR_CLIENT_BATCH_BYTES (4 << 20)  //  encoded size of one SUBMIT, roughly
#define JR_CLIENT_IN_FLIGHT   8          //  SUBMITs awaiting ACCEPTED at once
#define JR_PENDING            1          //  per-job code while unanswered (codes are <= 0)

//  What a decoder on the other side would refuse, refused here first.
static int
s_check_job (const jr_job_t *job)
{
    if (job->task.len == 0 || job->task.len > JR_MAX_NAME || !job->task.ptr)
        return JR_EINVALID;
    if (job->vars.len > JR_MAX_VARS || job->payload.len > JR_MAX_PAYLOAD
        || job->error.len > JR_MAX_TEXT || job->worker.len > 2 * JR_MAX_NAME)
        return JR_ETOOLARGE;
    if (job->vars.len) {
        if (!job->vars.ptr)
            return JR_EINVALID;
        jr_mp_t reader;
        jr_mp_init (&reader, job->vars.ptr, job->vars.len);
        if (jr_mp_peek (&reader) != JR_MP_MAP || !jr_mp_skip (&reader, NULL)
            || jr_mp_left (&reader) != 0)
            return JR_EINVALID;
    }
    return 0;
}

//  Upper bound of a job's encoded size, to bound a SUBMIT in bytes.
static size_t
s_job_size (const jr_job_t *job)
{
    return 128 + job->task.len + job->vars.len + job->payload.len + job->error.len
           + job->worker.len;
}

typedef struct {
    uint64_t tag;       //  0 = slot free
    size_t *jobs;       //  indices into the caller's jobs
    size_t count;       //  jobs in this batch
    size_t left;        //  of those, not answered yet
    int sends;          //  times sent so far
    int64_t resend_us;  //  resend, or give up, at this monotonic time
} batch_t;

//  (Re)send the unanswered jobs of a batch under its tag.
static void
s_batch_send (jr_client_t *self, zsock_t *sock, batch_t *batch, jr_job_t *jobs, int *res)
{
    jr_msg_reset (self->out, JR_MSG_SUBMIT);
    self->out->tag = batch->tag;
    for (size_t i = 0; i < batch->count; i++)
        if (res[batch->jobs[i]] == JR_PENDING)
            *jr_msg_add_job (self->out) = jobs[batch->jobs[i]];
    batch->sends++;
    batch->resend_us = jr_clock_mono_us () + jr_client_answer_wait_us (self, batch->sends);
    //  A send that fails (high-water mark) is resent when its time comes.
    int rc = jr_msg_send (self->out, zsock_resolve (sock), NULL, 0);
    if (rc == JR_ETOOLARGE) {
        for (size_t i = 0; i < batch->count; i++)
            if (res[batch->jobs[i]] == JR_PENDING)
                res[batch->jobs[i]] = JR_ETOOLARGE;
        batch->tag = 0;
    }
}

static batch_t *
s_batch_by_tag (batch_t *batches, uint64_t tag)
{
    for (int b = 0; b < JR_CLIENT_IN_FLIGHT; b++)
        if (batches[b].tag && batches[b].tag == tag)
            return &batches[b];
    return NULL;
}

//  Settle the jobs of a batch from an ACCEPTED or ERROR reply.
static void
s_batch_answer (batch_t *batch, const jr_msg_t *reply, jr_job_t *jobs, int *res)
{
    if (reply->type == JR_MSG_ERROR) {
        for (size_t i = 0; i < batch->count; i++)
            if (res[batch->jobs[i]] == JR_PENDING)
                res[batch->jobs[i]] = jr_client_error_code (reply);
        batch->tag = 0;
        return;
    }
    for (uint32_t m = 0; m < reply->nmarks; m++) {
        const jr_mark_t *mark = &reply->marks[m];
        //  Marks come in job order as a rule; search only when they do not.
        size_t hit = batch->count;
        if (m < batch->count && memcmp (jobs[batch->jobs[m]].id, mark->id, JR_ID_SIZE) == 0)
            hit = m;
        else
            for (size_t i = 0; i < batch->count; i++)
                if (memcmp (jobs[batch->jobs[i]].id, mark->id, JR_ID_SIZE) == 0) {
                    hit = i;
                    break;
                }
        if (hit == batch->count || res[batch->jobs[hit]] != JR_PENDING)
            continue;
        res[batch->jobs[hit]] = mark->code > 0 ? JR_EINTERNAL : mark->code;
        batch->left--;
    }
    //  Jobs a reply left out stay pending and go again at the resend.
    if (batch->left == 0)
        batch->tag = 0;
}

//  Give each job an id and a creation time if it has none, and its
//  starting code: JR_PENDING, or why it cannot be sent.
static void
s_prepare (jr_job_t *jobs, size_t n, int *res)
{
    static const uint8_t zero_id[JR_ID_SIZE];
    for (size_t i = 0; i < n; i++) {
        jr_job_t *job = &jobs[i];
        if (memcmp (job->id, zero_id, JR_ID_SIZE) == 0) {
            jr_job_t fresh;
            jr_job_init (&fresh, NULL);
            memcpy (job->id, fresh.id, JR_ID_SIZE);
        }
        if (job->created_us == 0)
            job->created_us = jr_clock_wall_us ();
        res[i] = s_check_job (job);
        if (res[i] == 0)
            res[i] = JR_PENDING;
    }
}

//  Fill a free batch with the next pending jobs from *cursor, bounded in
//  count and bytes, and send it; false if no job was left to send.
static bool
s_batch_start (jr_client_t *self, zsock_t *sock, batch_t *batch, jr_job_t *jobs, size_t n, int *res,
               size_t *cursor)
{
    size_t bytes = 0;
    batch->count = 0;
    while (*cursor < n && batch->count < JR_CLIENT_BATCH_JOBS) {
        if (res[*cursor] != JR_PENDING) {
            (*cursor)++;
            continue;
        }
        size_t size = s_job_size (&jobs[*cursor]);
        if (batch->count && bytes + size > JR_CLIENT_BATCH_BYTES)
            break;
        bytes += size;
        batch->jobs[batch->count++] = (*cursor)++;
    }
    if (batch->count == 0)
        return false;
    batch->tag = ++self->tag;
    batch->left = batch->count;
    batch->sends = 0;
    s_batch_send (self, sock, batch, jobs, res);
    return true;
}

//  Batches whose answer is late: resent with the same tag and ids (the
//  broker accepts a job id once), or given up after the last resend.
//  True if one was given up.
static bool
s_batch_timers (jr_client_t *self, zsock_t *sock, batch_t *batches, jr_job_t *jobs, int *res)
{
    bool timed_out = false;
    int64_t now = jr_clock_mono_us ();
    for (int b = 0; b < JR_CLIENT_IN_FLIGHT; b++) {
        batch_t *batch = &batches[b];
        if (!batch->tag || now < batch->resend_us)
            continue;
        if (batch->sends > JR_CLIENT_RESENDS) {
            for (size_t i = 0; i < batch->count; i++)
                if (res[batch->jobs[i]] == JR_PENDING)
                    res[batch->jobs[i]] = JR_ETIMEOUT;
            batch->tag = 0;
            timed_out = true;
        }
        else
            s_batch_send (self, sock, batch, jobs, res);
    }
    return timed_out;
}

//  Settle every pending code to rc.
static void
s_settle_pending (int *res, size_t n, int rc)
{
    for (size_t i = 0; i < n; i++)
        if (res[i] == JR_PENDING)
            res[i] = rc;
}

int
jr_client_submit_many (jr_client_t *self, jr_job_t *jobs, size_t n, int *codes)
{
    assert (self);
    assert (jobs || n == 0);
    int *res = malloc ((n ? n : 1) * sizeof *res);
    assert (res);
    s_prepare (jobs, n, res);
    batch_t batches[JR_CLIENT_IN_FLIGHT] = { { 0 } };
    for (int b = 0; b < JR_CLIENT_IN_FLIGHT; b++) {
        batches[b].jobs = malloc (JR_CLIENT_BATCH_JOBS * sizeof (size_t));
        assert (batches[b].jobs);
    }
    zsock_t *sock = jr_client_broker (self);
    bool timed_out = false;
    size_t cursor = 0;
    while (sock) {
        //  Keep up to JR_CLIENT_IN_FLIGHT batches on the wire.
        for (int b = 0; b < JR_CLIENT_IN_FLIGHT && cursor < n; b++)
            if (!batches[b].tag && !s_batch_start (self, sock, &batches[b], jobs, n, res, &cursor))
                break;
        int64_t next = INT64_MAX;
        for (int b = 0; b < JR_CLIENT_IN_FLIGHT; b++)
            if (batches[b].tag && batches[b].resend_us < next)
                next = batches[b].resend_us;
        if (next == INT64_MAX)
            break;  //  nothing in flight and nothing left to send
        int failed = jr_client_link_failed (self, &self->broker);
        if (failed) {
            s_settle_pending (res, n, failed);
            sock = NULL;
            break;
        }
        if (jr_client_poll (sock, self->broker.watch, next)) {
            zmq_msg_t frame;
            int rc;
            while ((rc = jr_client_recv (self, sock, &frame)) != JR_ETIMEOUT) {
                if (rc)
                    continue;
                batch_t *batch = s_batch_by_tag (batches, self->in->tag);
                if (batch && (self->in->type == JR_MSG_ACCEPTED || self->in->type == JR_MSG_ERROR))
                    s_batch_answer (batch, self->in, jobs, res);
                zmq_msg_close (&frame);
            }
        }
        if (zsys_interrupted) {
            s_settle_pending (res, n, JR_ECANCELLED);
            break;
        }
        timed_out |= s_batch_timers (self, sock, batches, jobs, res);
    }
    if (!sock)  //  the endpoint did not connect
        s_settle_pending (res, n, JR_EINVALID);
    if (timed_out)
        jr_link_close (&self->broker);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && res[i] != 0)
            rc = res[i];
        if (codes)
            codes[i] = res[i];
    }
    for (int b = 0; b < JR_CLIENT_IN_FLIGHT; b++)
        free (batches[b].jobs);
    free (res);
    return rc;
}

int
jr_client_submit (jr_client_t *self, jr_job_t *job)
{
    int code = 0;
    int rc = jr_client_submit_many (self, job, 1, &code);
    return rc ? rc : code;
}
