/*  worker.c - the worker's loop: READY, DISPATCH, CANCEL, RESULT/ACK with resend, DONE, drain  */
#include "worker/worker.h"
#include "common/clock.h"
#include "common/fdlimit.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/notify.h"
#include "proto/transport.h"
#include "worker/config.h"
#include "worker/ctx.h"
#include "worker/executor.h"
#include "worker/outbox.h"
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_STATS_US       (10 * 1000000LL)  //  stats line period
#define S_LINK_REOPEN_US (5 * 1000000LL)   //  a refused ingester link is made anew this often
#define S_STOP_FLUSH_US  (2 * 1000000LL)   //  how long a stop waits for ACKs
#define S_RECV_BURST     1000              //  messages read per socket per turn
#define S_MAX_TURN_MS    1000              //  longest poll, so stop flags are seen
#define S_PROGRESS_US    (200 * 1000LL)    //  PROGRESS of one attempt at most this often
#define S_HEALTH_US      (1000 * 1000LL)   //  the health file is touched at most this often

//  Where the worker is in its life. A drain (SIGTERM, jr_worker_drain) says
//  BYE and lets running jobs finish for up to the grace; then, or at a second
//  drain, what still runs is cancelled and handed back (DONE code QUEUED),
//  and the worker waits a little for the ACKs it still needs, then exits.
//
//  phase         event                      action                        next
//  ACTIVE        drain asked                BYE                           DRAINING
//  DRAINING      grace over / drain again   cancel and hand back running  HANDING_BACK
//  DRAINING      nothing held, DONE sent    -                             (exit)
//  HANDING_BACK  nothing held, DONE sent    -                             (exit)
//  HANDING_BACK  flush time over            hand back what is held        (exit)
//  any but ACTIVE  DISPATCH                 hand each job back at once    same
//  any but ACTIVE  READY sent               BYE again                     same
typedef enum {
    S_ACTIVE,        //  taking jobs
    S_DRAINING,      //  BYE said, running jobs may finish until the grace ends
    S_HANDING_BACK,  //  running jobs cancelled; waiting for ACKs, then exit
} s_phase_t;

//  The worker's figures, in its registry (prefix jr_worker): the stats line
//  shows each counter's change over the interval, each gauge's value.
typedef struct {
    jr_counter_t *succeeded;    //  attempts that ended in success
    jr_counter_t *failed;       //  attempts that ended otherwise, or never ran
    jr_counter_t *resent;       //  results sent again, no ACK in time
    jr_counter_t *handed_back;  //  jobs given back to the broker unrun or stopped
    jr_gauge_t *running;        //  jobs in executors or waiting for one
    jr_gauge_t *unacked;        //  results waiting for the ingester's ACK
} s_stats_t;

//  A job in an executor: the running list holds these.
typedef struct {
    jr_run_t *run;           //  owned by the executor until it comes back
    bool cancelled;          //  by a CANCEL from the broker: ends CANCELLED
    bool handed_back;        //  cancelled by a drain: DONE QUEUED, no result
    int64_t progress_us;     //  monotonic, last PROGRESS sent; 0 = never
    char note[JR_MAX_NOTE];  //  its message, which the PROGRESS points into
} s_slot_t;

struct _jr_worker_t {
    char *broker_ep;  //  endpoints (owned copies)
    char *ingester_ep;
    char *name;       //  worker name
    char *host;       //  gethostname
    char *ident;      //  "name@host", stamped on results
    int concurrency;  //  executor threads, the most jobs running at once
    int slots;        //  jobs held at once: concurrency + prefetch
    int64_t heartbeat_us;
    int64_t liveness_us;
    int64_t grace_us;  //  how long a drain lets running jobs finish
    size_t max_payload;
    zlistx_t *served;              //  task names (char *) served, NULL = all registered
    jr_task_timeouts_t *timeouts;  //  --task-timeout: deadlines of jobs sent without one

    jr_link_t to_broker;      //  DEALER, recreated when the broker goes silent
    jr_link_t to_ingester;    //  DEALER
    const jr_keys_t *keys;    //  CurveZMQ, or NULL
    int64_t next_link_us;     //  when the links' handshakes are looked at next
    int64_t link_said_us[2];  //  when a handshake failure of each was last logged
    int64_t link_reopen_us;   //  when the refused ingester link was last made anew
    int wake_fd;              //  eventfd written by jr_worker_drain and _stop
    atomic_uint drains;       //  drains asked: 1 = with grace, 2 or more = now
    jr_executor_t *executor;

    jr_msg_t *in;         //  last decoded message (views into its frame)
    jr_msg_t *out;        //  message being built
    jr_msg_t *done;       //  DONE marks not yet sent
    jr_msg_t *freed;      //  FREE marks not yet sent
    jr_msg_t *progress;   //  PROGRESS being built
    zlistx_t *running;    //  s_slot_t of runs in executors
    jr_outbox_t *outbox;  //  results not ACKed by the ingester yet

    bool need_ready;           //  send READY at the end of this turn
    bool broker_heard;         //  something arrived since the last (re)connect
    int64_t last_tx_us;        //  last send to the broker (monotonic)
    int64_t last_rx_us;        //  last receive from the broker (monotonic)
    int64_t next_deadline_us;  //  nearest deadline of a running job, 0 = none
    int64_t next_progress_us;  //  when held-back progress may go, 0 = none waits

    s_phase_t phase;         //  see the table above
    int64_t phase_until_us;  //  end of the grace, or of the last flush
    bool ingester_blocked;   //  results wait for the ingester to take more

    jr_metrics_t *metrics;  //  the registry the stats line reads
    s_stats_t stats;        //  its metrics, owned by it
    int64_t next_stats_us;

    char *health_file;    //  --health-file: touched when the broker is heard, or NULL
    int64_t health_us;    //  when it was last touched (monotonic), 0 = never
    bool health_failing;  //  a touch failed and was logged: quiet until one works
};

//  Jobs the worker holds: running, or finished and waiting for their ACK.
static size_t
s_held (const jr_worker_t *self)
{
    return zlistx_size (self->running) + jr_outbox_size (self->outbox);
}

//  A slot holds a job from dispatch until its run ends: an executor, or a
//  place in the executor's queue (prefetch). A result waiting for its ACK
//  holds none, up to a bounded backlog; past it the ingester is behind and
//  we take nothing new.
static uint32_t
s_free_slots (const jr_worker_t *self)
{
    if (jr_outbox_full (self->outbox))
        return 0;
    size_t running = zlistx_size (self->running);
    return running < (size_t)self->slots ? (uint32_t)(self->slots - running) : 0;
}

//  A DONE mark for a result the ingester settled. Each gives the broker one
//  slot back, up to the capacity READY announced: jobs held across a
//  reconnect were not counted free in READY, so their DONE restores them.
static void
s_report_done (jr_worker_t *self, const jr_job_t *job)
{
    jr_msg_add_mark (self->done, job->id, job->attempt, job->state);
}

//  Give a job back to the broker unrun (or stopped): DONE with code QUEUED,
//  and nothing to the ingester. The broker queues it again at once.
static void
s_hand_back (jr_worker_t *self, const jr_job_t *job, const char *why)
{
    char id[37];
    jr_id_format (job->id, id);
    jr_info ("id=%s task=%.*s attempt=%u why=\"%s\": job handed back", id, (int)job->task.len,
             (const char *)job->task.ptr, job->attempt, why);
    jr_msg_add_mark (self->done, job->id, job->attempt, JR_STATE_QUEUED);
    jr_counter_inc (self->stats.handed_back);
}

//  Take ownership of a finished job's result; it goes out this turn.
static void
s_result_add (jr_worker_t *self, jr_job_t *job)
{
    jr_counter_inc (job->success ? self->stats.succeeded : self->stats.failed);
    jr_job_t *old = jr_outbox_add (self->outbox, job);
    if (old) {
        //  The same attempt dispatched twice: the newer result supersedes
        //  the older, whose DONE goes now so the broker's credit stays exact.
        char id[37];
        jr_id_format (job->id, id);
        jr_warn ("id=%s attempt=%u: same attempt dispatched twice, older result replaced", id,
                 job->attempt);
        s_report_done (self, old);
        jr_job_destroy (&old);
    }
}

//  -------------------------------------------------------------------------
//  Sockets

static int
s_send_broker (jr_worker_t *self, const jr_msg_t *msg)
{
    int rc = jr_msg_send (msg, zsock_resolve (self->to_broker.sock), NULL, 0);
    if (rc == 0)
        self->last_tx_us = jr_clock_mono_us ();
    return rc;
}

//  "Send me nothing more; I report DONE for all I hold."
static void
s_send_bye (jr_worker_t *self)
{
    jr_msg_t bye = { .type = JR_MSG_BYE };
    int rc = s_send_broker (self, &bye);
    if (rc)
        jr_warn ("broker=%s error=%s: BYE not sent", self->broker_ep, jr_errname (rc));
    else
        jr_info ("broker=%s running=%zu unacked=%zu: bye sent", self->broker_ep,
                 zlistx_size (self->running), jr_outbox_size (self->outbox));
}

static void
s_send_ready (jr_worker_t *self)
{
    jr_msg_t *msg = self->out;
    jr_msg_reset (msg, JR_MSG_READY);
    msg->name = (jr_bytes_t){ (const uint8_t *)self->name, strlen (self->name) };
    msg->host = (jr_bytes_t){ (const uint8_t *)self->host, strlen (self->host) };
    //  Without a list, whatever is registered now (plugins may have added
    //  some), but exec: it runs any program, so only a list turns it on.
    size_t ntasks = self->served ? zlistx_size (self->served) : jr_tasks_count ();
    const char *task = self->served ? zlistx_first (self->served) : NULL;
    for (size_t i = 0; i < ntasks; i++) {
        if (!self->served)
            task = jr_tasks_name (i);
        if (self->served || strcmp (task, "exec") != 0)
            jr_msg_add_task (msg, (jr_bytes_t){ (const uint8_t *)task, strlen (task) });
        if (self->served)
            task = zlistx_next (self->served);
    }
    bool active = self->phase == S_ACTIVE;
    msg->slots = active ? s_free_slots (self) : 0;
    msg->capacity = active ? (uint32_t)self->slots : 0;
    int rc = s_send_broker (self, msg);
    if (rc) {
        jr_warn ("broker=%s error=%s: READY not sent, will retry", self->broker_ep,
                 jr_errname (rc));
        return;
    }
    self->need_ready = false;
    jr_info ("broker=%s slots=%u tasks=%zu: ready sent", self->broker_ep, msg->slots, ntasks);
    if (!active)
        s_send_bye (self);  //  a new view of us: tell it again we are leaving
}

//  The broker may have lost its view of us (it restarted, or expired us, or
//  we reconnected under a new routing id): what we hold earns no credit.
static void
s_forgotten (jr_worker_t *self)
{
    self->need_ready = true;
}

static void
s_reconnect (jr_worker_t *self)
{
    jr_warn ("broker=%s silent_ms=%lld: reconnecting", self->broker_ep,
             (long long)((jr_clock_mono_us () - self->last_rx_us) / 1000));
    jr_link_close (&self->to_broker);
    int rc = jr_link_open (&self->to_broker, JR_SOCK_WORKER_BROKER, self->broker_ep, self->keys);
    assert (rc == 0);  //  the endpoint was accepted once already
    self->last_rx_us = jr_clock_mono_us ();
    self->broker_heard = false;
    s_forgotten (self);
    //  The broker may have given up on us and sent our jobs elsewhere: held
    //  ones no thread started go back rather than run late.
    jr_executor_sweep (self->executor, true);
}

//  -------------------------------------------------------------------------
//  From the broker

static bool
s_eq_name (const char *name, jr_bytes_t bytes)
{
    return strlen (name) == bytes.len && memcmp (name, bytes.ptr, bytes.len) == 0;
}

//  A job that could not run: its failed result goes to the ingester.
static void
s_fail_job (jr_worker_t *self, const jr_job_t *job, const char *error, bool permanent)
{
    jr_job_t *result = jr_result_failed (job, self->ident, error);
    result->state = jr_attempt_state (result, false, false, permanent);
    char id[37];
    jr_id_format (job->id, id);
    jr_info ("id=%s task=%.*s attempt=%u state=%s error=\"%s\": job failed", id, (int)job->task.len,
             (const char *)job->task.ptr, job->attempt, jr_state_name (result->state), error);
    s_result_add (self, result);
}

//  A job cancelled before it ran comes only for its record: it is stored
//  as CANCELLED, never run, whether or not this worker serves its task.
static void
s_record_cancelled (jr_worker_t *self, const jr_job_t *job)
{
    jr_job_t *result = jr_result_failed (job, self->ident, "CANCELLED: cancelled before it ran");
    result->state = JR_STATE_CANCELLED;
    result->started_us = result->completed_us = 0;  //  it never ran
    s_result_add (self, result);
}

//  The task for a name, if this worker serves it.
static jr_task_fn *
s_task (jr_worker_t *self, jr_bytes_t name)
{
    if (self->served) {
        const char *task = zlistx_first (self->served);
        while (task && !s_eq_name (task, name))
            task = zlistx_next (self->served);
        if (!task)
            return NULL;
    }
    else if (s_eq_name ("exec", name))
        return NULL;  //  never served unless listed
    return jr_tasks_find (name);
}

static void
s_dispatch (jr_worker_t *self, const jr_msg_t *msg)
{
    for (uint32_t i = 0; i < msg->njobs; i++) {
        const jr_job_t *job = &msg->jobs[i];
        jr_task_fn *fn = s_task (self, job->task);
        char error[JR_MAX_NAME + 64];
        if (self->phase != S_ACTIVE)
            //  Sent before the broker read our BYE.
            s_hand_back (self, job, "worker is draining");
        else if (job->state == JR_STATE_CANCELLED)
            s_record_cancelled (self, job);
        else if (!fn) {
            snprintf (error, sizeof error, "UNKNOWN_TASK: %.*s", (int)job->task.len,
                      (const char *)job->task.ptr);
            s_fail_job (self, job, error, true);
        }
        else if (zlistx_size (self->running) >= (size_t)self->slots)
            //  Past our credit: every slot is taken.
            s_hand_back (self, job, "no free slot");
        else {
            jr_run_t *run = jr_run_new_timeout (job, fn, self->max_payload,
                                                jr_task_timeouts_ms (self->timeouts, job->task));
            if (!run) {
                s_fail_job (self, job, "INTERNAL: no context for the task (descriptor limit?)",
                            false);
                continue;
            }
            s_slot_t *slot = malloc (sizeof *slot);  //  note[] is written before read
            assert (slot);
            slot->run = run;
            slot->cancelled = slot->handed_back = false;
            slot->progress_us = 0;
            run->handle = zlistx_add_end (self->running, slot);
            jr_ctx_set_notify (run->ctx, self->wake_fd);
            int64_t deadline = jr_ctx_deadline (run->ctx);
            if (deadline && (!self->next_deadline_us || deadline < self->next_deadline_us))
                self->next_deadline_us = deadline;
            if (jr_log_enabled (JR_LOG_DEBUG)) {
                char id[37];
                jr_id_format (job->id, id);
                jr_debug ("id=%s task=%.*s attempt=%u: job taken", id, (int)job->task.len,
                          (const char *)job->task.ptr, job->attempt);
            }
            jr_executor_submit (self->executor, run);
        }
    }
}

//  The running slot of one attempt, or NULL.
static s_slot_t *
s_running_find (jr_worker_t *self, const uint8_t id[JR_ID_SIZE], uint32_t attempt)
{
    for (s_slot_t *slot = zlistx_first (self->running); slot; slot = zlistx_next (self->running))
        if (slot->run->job->attempt == attempt && memcmp (slot->run->job->id, id, JR_ID_SIZE) == 0)
            return slot;
    return NULL;
}

//  Stop attempts the broker cancelled, the way a deadline stops them; what
//  does not run here (finished, or never ours) needs nothing.
static void
s_cancel (jr_worker_t *self, const jr_msg_t *msg)
{
    for (uint32_t i = 0; i < msg->nmarks; i++) {
        const jr_mark_t *mark = &msg->marks[i];
        char id[37];
        jr_id_format (mark->id, id);
        s_slot_t *slot = s_running_find (self, mark->id, mark->attempt);
        if (!slot) {
            jr_debug ("id=%s attempt=%u: cancel of an attempt not running ignored", id,
                      mark->attempt);
            continue;
        }
        jr_info ("id=%s attempt=%u: cancelling at the broker's request", id, mark->attempt);
        slot->cancelled = true;
        jr_ctx_cancel (slot->run->ctx, JR_ECANCELLED);
    }
    //  What was still waiting for a thread (prefetch) comes back unrun.
    jr_executor_sweep (self->executor, false);
}

static void
s_broker_message (jr_worker_t *self, zmq_msg_t *frame)
{
    jr_msg_t *msg = self->in;
    int rc = jr_transport_decode (msg, frame, false);
    if (rc) {
        jr_warn ("broker=%s error=%s size=%zu: bad message from broker ignored", self->broker_ep,
                 jr_errname (rc), zmq_msg_size (frame));
        return;
    }
    switch (msg->type) {
        case JR_MSG_DISPATCH: s_dispatch (self, msg); break;
        case JR_MSG_CANCEL: s_cancel (self, msg); break;
        case JR_MSG_HEARTBEAT: break;
        case JR_MSG_ERROR:
            if (msg->code == JR_EUNKNOWN_PEER) {
                if (!self->need_ready)
                    jr_info ("broker=%s: broker does not know us, sending READY", self->broker_ep);
                s_forgotten (self);
            }
            else
                jr_warn ("broker=%s code=%s text=\"%.*s\": error from broker", self->broker_ep,
                         jr_errname (msg->code), (int)msg->text.len, (const char *)msg->text.ptr);
            break;
        default:
            jr_warn ("broker=%s type=%s: unexpected message ignored", self->broker_ep,
                     jr_msg_name (msg->type));
    }
}

//  Read up to a burst of single-frame messages from a socket.
static void
s_recv_all (jr_worker_t *self, zsock_t *sock, void (*handler) (jr_worker_t *, zmq_msg_t *),
            bool *heard)
{
    void *handle = zsock_resolve (sock);
    for (int i = 0; i < S_RECV_BURST; i++) {
        zmq_msg_t frame;
        int got = jr_transport_recv (handle, NULL, &frame);
        if (got == 0)
            break;
        if (heard)
            *heard = true;
        if (got < 0)
            jr_warn ("multi-frame message ignored");  //  our peers send one frame per message
        else
            handler (self, &frame);
        zmq_msg_close (&frame);
    }
}

//  -------------------------------------------------------------------------
//  From the ingester

//  One acknowledged result: settled (DONE follows), or not stored and kept
//  for the resend, which returns true.
static bool
s_acked (jr_worker_t *self, const jr_mark_t *mark)
{
    if (mark->code != 0 && mark->code != JR_ESTALE && mark->code != JR_EINVALID)
        //  Not stored (disk full, I/O...): the resend will retry.
        return jr_outbox_has (self->outbox, mark->id, mark->attempt);
    jr_job_t *job = jr_outbox_take (self->outbox, mark->id, mark->attempt);
    if (!job)
        return false;  //  the ACK of a resend we already had an ACK for
    if (mark->code != 0) {
        char id[37];
        jr_id_format (mark->id, id);
        jr_warn ("id=%s attempt=%u code=%s: result refused by the ingester", id, mark->attempt,
                 jr_errname (mark->code));
    }
    s_report_done (self, job);
    jr_job_destroy (&job);
    return false;
}

//  An ACK's marks; results it says were not stored are logged in one line,
//  since an ingester that lost its disk answers every result so.
static void
s_on_ack (jr_worker_t *self, const jr_msg_t *msg)
{
    const jr_mark_t *first = NULL;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < msg->nmarks; i++)
        if (s_acked (self, &msg->marks[i]) && kept++ == 0)
            first = &msg->marks[i];
    if (kept) {
        char id[37];
        jr_id_format (first->id, id);
        jr_warn ("results=%u code=%s first=%s: results not stored, will resend", kept,
                 jr_errname (first->code), id);
    }
}

static void
s_ingester_message (jr_worker_t *self, zmq_msg_t *frame)
{
    jr_msg_t *msg = self->in;
    int rc = jr_transport_decode (msg, frame, false);
    if (rc) {
        jr_warn ("ingester=%s error=%s size=%zu: bad message from ingester ignored",
                 self->ingester_ep, jr_errname (rc), zmq_msg_size (frame));
        return;
    }
    if (msg->type == JR_MSG_ACK)
        s_on_ack (self, msg);
    else if (msg->type == JR_MSG_ERROR)
        jr_warn ("ingester=%s code=%s text=\"%.*s\": error from ingester", self->ingester_ep,
                 jr_errname (msg->code), (int)msg->text.len, (const char *)msg->text.ptr);
    else
        jr_warn ("ingester=%s type=%s: unexpected message ignored", self->ingester_ep,
                 jr_msg_name (msg->type));
}

//  -------------------------------------------------------------------------
//  Executors and deadlines

static void
s_take_finished (jr_worker_t *self)
{
    jr_run_t *run = jr_executor_take (self->executor);
    while (run) {
        jr_run_t *next = run->next;
        s_slot_t *slot = zlistx_handle_item (run->handle);
        bool cancelled = slot->cancelled, handed_back = slot->handed_back;
        zlistx_delete (self->running, run->handle);
        free (slot);
        if (handed_back || run->started_us == 0) {
            //  Stopped by a drain, or swept back unstarted: it runs again
            //  elsewhere, and no result of this attempt is kept.
            s_hand_back (self, run->job,
                         handed_back ? "stopped by the drain" : "held, not started");
            jr_run_destroy (&run);
            run = next;
            continue;
        }
        jr_msg_add_mark (self->freed, run->job->id, run->job->attempt, 0);
        jr_job_t *result = jr_run_result (run, self->ident);
        int why = jr_ctx_err (run->ctx);
        //  The state the broker acts on (PROTOCOL.md 6.2): EXPIRED only for a
        //  last attempt its deadline stopped.
        result->state = jr_attempt_state (result, cancelled, why == JR_EDEADLINE,
                                          jr_out_is_permanent (run->out));
        char id[37];
        jr_id_format (result->id, id);
        if (result->success)
            jr_debug ("id=%s task=%.*s attempt=%u ms=%lld: job succeeded", id,
                      (int)result->task.len, (const char *)result->task.ptr, result->attempt,
                      (long long)((result->completed_us - result->started_us) / 1000));
        else if (why == JR_EDEADLINE && !cancelled)
            jr_warn ("id=%s task=%.*s attempt=%u state=%s timeout_ms=%u: deadline exceeded", id,
                     (int)result->task.len, (const char *)result->task.ptr, result->attempt,
                     jr_state_name (result->state), run->timeout_ms);
        else
            jr_info ("id=%s task=%.*s attempt=%u state=%s error=\"%.*s\": job failed", id,
                     (int)result->task.len, (const char *)result->task.ptr, result->attempt,
                     jr_state_name (result->state),
                     (int)(result->error.len > 200 ? 200 : result->error.len),
                     (const char *)result->error.ptr);
        s_result_add (self, result);
        jr_run_destroy (&run);
        run = next;
    }
}

//  Cancel what ran past its deadline, and find the next deadline to wake for.
static void
s_check_deadlines (jr_worker_t *self, int64_t now)
{
    if (self->next_deadline_us == 0 || now < self->next_deadline_us)
        return;
    int64_t next = 0;
    for (s_slot_t *slot = zlistx_first (self->running); slot; slot = zlistx_next (self->running)) {
        int64_t deadline = jr_ctx_deadline (slot->run->ctx);
        if (!deadline)
            continue;
        if (deadline <= now)
            jr_ctx_cancel (slot->run->ctx, JR_EDEADLINE);  //  idempotent
        else if (!next || deadline < next)
            next = deadline;
    }
    self->next_deadline_us = next;
    //  What was still waiting for a thread (prefetch) comes back unrun.
    jr_executor_sweep (self->executor, false);
}

//  -------------------------------------------------------------------------
//  To the ingester and the broker, once per turn

static void
s_send_results (jr_worker_t *self, size_t *estimate)
{
    if (self->out->njobs == 0)
        return;
    int rc = jr_msg_send (self->out, zsock_resolve (self->to_ingester.sock), NULL, 0);
    if (rc)  //  they stay in the table and go again after resend_ms
        jr_warn ("ingester=%s results=%u error=%s: RESULT not sent", self->ingester_ep,
                 self->out->njobs, jr_errname (rc));
    jr_msg_reset (self->out, JR_MSG_RESULT);
    *estimate = 64;
}

//  A view of the outbox's job joins the message: no copy of its fields.
static void
s_batch_add (jr_worker_t *self, const jr_job_t *job, size_t *estimate)
{
    size_t size =
        160 + job->task.len + job->vars.len + job->payload.len + job->error.len + job->worker.len;
    //  Keep each message well under the frame limit and the item limit.
    if (*estimate + size > JR_MAX_FRAME / 2 || self->out->njobs >= JR_MAX_ITEMS)
        s_send_results (self, estimate);
    *jr_msg_add_job (self->out) = *job;
    *estimate += size;
}

//  True if the ingester socket takes a message now. With ZMQ_IMMEDIATE it
//  does not while the ingester is down, nor at the high-water mark while it
//  does not read: results then wait here, each once, instead of a copy per
//  resend piling up in the socket. The loop polls for POLLOUT meanwhile.
static bool
s_ingester_ready (jr_worker_t *self)
{
    bool ready = (zsock_events (self->to_ingester.sock) & ZMQ_POLLOUT) != 0;
    if (!ready && !self->ingester_blocked)
        jr_warn ("ingester=%s unacked=%zu: ingester not taking results, holding them",
                 self->ingester_ep, jr_outbox_size (self->outbox));
    else if (ready && self->ingester_blocked)
        jr_info ("ingester=%s unacked=%zu: ingester taking results again", self->ingester_ep,
                 jr_outbox_size (self->outbox));
    self->ingester_blocked = !ready;
    return ready;
}

static void
s_flush_results (jr_worker_t *self, int64_t now)
{
    if (!jr_outbox_due (self->outbox, now)) {
        if (self->ingester_blocked)
            s_ingester_ready (self);  //  else POLLOUT keeps waking the loop
        return;
    }
    if (!s_ingester_ready (self))
        return;
    size_t estimate = 64;
    jr_msg_reset (self->out, JR_MSG_RESULT);
    //  Resends first, then the fresh results.
    const jr_job_t *job;
    bool resend;
    while ((job = jr_outbox_next (self->outbox, now, &resend))) {
        if (resend)
            jr_counter_inc (self->stats.resent);
        if (resend && jr_log_enabled (JR_LOG_DEBUG)) {
            char id[37];
            jr_id_format (job->id, id);
            jr_debug ("id=%s attempt=%u: result resent", id, job->attempt);
        }
        s_batch_add (self, job, &estimate);
    }
    s_send_results (self, &estimate);
}

//  Executors freed this turn give their slots back now, unless the results
//  backlog is full: then the slots come back with the DONEs instead.
static void
s_flush_free (jr_worker_t *self)
{
    jr_msg_t *freed = self->freed;
    if (freed->nmarks == 0 || jr_outbox_full (self->outbox)) {
        freed->nmarks = 0;
        return;
    }
    for (uint32_t sent = 0; sent < freed->nmarks;) {
        uint32_t n = freed->nmarks - sent < JR_MAX_ITEMS ? freed->nmarks - sent : JR_MAX_ITEMS;
        jr_msg_t chunk = { .type = JR_MSG_FREE, .marks = freed->marks + sent, .nmarks = n };
        if (s_send_broker (self, &chunk))
            break;  //  the DONEs give those slots back
        sent += n;
    }
    freed->nmarks = 0;
}

static void
s_flush_done (jr_worker_t *self)
{
    jr_msg_t *done = self->done;
    uint32_t sent = 0;
    while (sent < done->nmarks) {
        uint32_t n = done->nmarks - sent;
        if (n > JR_MAX_ITEMS)
            n = JR_MAX_ITEMS;
        jr_msg_t chunk = { .type = JR_MSG_DONE, .marks = done->marks + sent, .nmarks = n };
        int rc = s_send_broker (self, &chunk);
        if (rc) {
            jr_warn ("broker=%s marks=%u error=%s: DONE not sent, will retry", self->broker_ep, n,
                     jr_errname (rc));
            break;
        }
        sent += n;
    }
    if (sent == 0)
        return;
    memmove (done->marks, done->marks + sent, (done->nmarks - sent) * sizeof *done->marks);
    done->nmarks -= sent;
}

//  The latest progress of running attempts, each at most every
//  S_PROGRESS_US: a task may report far more often than that. Best effort:
//  a PROGRESS lost on the way is replaced by the next.
static void
s_flush_progress (jr_worker_t *self, int64_t now)
{
    self->next_progress_us = 0;
    if (self->need_ready)
        return;  //  the broker does not know us: it goes after READY
    jr_msg_t *msg = self->progress;
    jr_msg_reset (msg, JR_MSG_PROGRESS);
    for (s_slot_t *slot = zlistx_first (self->running); slot; slot = zlistx_next (self->running)) {
        jr_ctx_t *ctx = slot->run->ctx;
        if (!jr_ctx_progress_pending (ctx))
            continue;
        int64_t due = slot->progress_us + S_PROGRESS_US;
        if (slot->progress_us && now < due) {
            if (!self->next_progress_us || due < self->next_progress_us)
                self->next_progress_us = due;
            continue;
        }
        int32_t value;
        size_t len;
        if (!jr_ctx_progress_take (ctx, &value, slot->note, &len))
            continue;
        slot->progress_us = now;
        jr_msg_add_mark (msg, slot->run->job->id, slot->run->job->attempt, 0);
        jr_msg_add_note (msg, value, (jr_bytes_t){ (const uint8_t *)slot->note, len });
        if (msg->nmarks == JR_MAX_ITEMS) {
            s_send_broker (self, msg);
            jr_msg_reset (msg, JR_MSG_PROGRESS);
        }
    }
    if (msg->nmarks && s_send_broker (self, msg) == 0 && jr_log_enabled (JR_LOG_DEBUG))
        jr_debug ("broker=%s marks=%u: progress sent", self->broker_ep, msg->nmarks);
}

static void
s_stats (jr_worker_t *self, int64_t now, bool force)
{
    if (!force && now < self->next_stats_us)
        return;
    self->next_stats_us = now + S_STATS_US;
    jr_fd_limit_check ();
    jr_gauge_set (self->stats.running, (int64_t)zlistx_size (self->running));
    jr_gauge_set (self->stats.unacked, (int64_t)jr_outbox_size (self->outbox));
    char line[512];
    if (jr_metrics_line (self->metrics, line, sizeof line) || force)
        jr_info ("%s: stats", line);
}

//  A link whose handshakes fail is logged as an error once a minute: the
//  worker keeps trying (libzmq reconnects), so a key the server adds later
//  lets it in without a restart.
static void
s_check_link (jr_worker_t *self, jr_link_t *link, int which, int64_t now)
{
    static const char *names[] = { "broker", "ingester" };
    static const jr_role_t servers[] = { JR_ROLE_BROKER, JR_ROLE_INGESTER };
    int code = jr_link_check (link);
    if (!code)
        return;
    //  libzmq gives up on a connection whose handshake was refused; the
    //  broker's link is made anew when the broker stays silent (liveness),
    //  the ingester's here, so a key admitted later lets the worker in.
    if (which == 1 && now - self->link_reopen_us >= S_LINK_REOPEN_US) {
        self->link_reopen_us = now;
        jr_link_close (link);
        int rc = jr_link_open (link, JR_SOCK_WORKER_INGESTER, self->ingester_ep, self->keys);
        assert (rc == 0);  //  the endpoint was accepted once already
    }
    if (now - self->link_said_us[which] < 60 * 1000000LL)
        return;
    self->link_said_us[which] = now;
    const char *endpoint = which ? self->ingester_ep : self->broker_ep;
    if (code == JR_EFORBIDDEN)
        jr_error ("%s=%s code=FORBIDDEN: the server refused our key; put our public certificate "
                  "in its allow/worker/ folder",
                  names[which], endpoint);
    else
        jr_error ("%s=%s code=HANDSHAKE: the handshake failed: the public key in %s is not that "
                  "server's, or the server does not use keys",
                  names[which], endpoint, jr_keys_server_file (self->keys, servers[which]));
}

static void
s_check_links (jr_worker_t *self, int64_t now)
{
    if (!self->keys || now < self->next_link_us)
        return;
    self->next_link_us = now + 1000000;
    s_check_link (self, &self->to_broker, 0, now);
    s_check_link (self, &self->to_ingester, 1, now);
}

//  -------------------------------------------------------------------------
//  The loop

static int
s_timeout_ms (const jr_worker_t *self, int64_t now)
{
    int64_t next = now + S_MAX_TURN_MS * 1000LL;
    int64_t at[] = {
        self->last_tx_us + self->heartbeat_us,
        self->last_rx_us + self->liveness_us,
        self->next_deadline_us,
        self->next_progress_us,
        self->next_stats_us,
        self->phase != S_ACTIVE ? self->phase_until_us : 0,
        self->need_ready ? now + 100000 : 0,  //  a READY that failed to go
    };
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++)
        if (at[i] && at[i] < next)
            next = at[i];
    //  While the ingester is blocked, its POLLOUT wakes us, not the resend time.
    int64_t resend_at = jr_outbox_resend_at (self->outbox);
    if (resend_at && !self->ingester_blocked && resend_at < next)
        next = resend_at;
    return next <= now ? 0 : (int)((next - now + 999) / 1000);
}

//  Drain asked (phase ACTIVE to DRAINING): no more jobs, say BYE.
static void
s_begin_drain (jr_worker_t *self, int64_t now)
{
    jr_notify_stopping ();
    self->phase = S_DRAINING;
    self->phase_until_us = now + self->grace_us;
    jr_info ("running=%zu unacked=%zu grace_ms=%lld: draining, taking no more jobs",
             zlistx_size (self->running), jr_outbox_size (self->outbox),
             (long long)(self->grace_us / 1000));
    s_send_bye (self);
    //  The grace is for running jobs: held ones no thread started go back now.
    jr_executor_sweep (self->executor, true);
}

//  Grace over or asked again (DRAINING to HANDING_BACK): stop what still
//  runs; each comes back from its executor as a hand-back, not a result.
static void
s_begin_hand_back (jr_worker_t *self, int64_t now, const char *why)
{
    self->phase = S_HANDING_BACK;
    self->phase_until_us = now + S_STOP_FLUSH_US;
    jr_info ("running=%zu unacked=%zu why=\"%s\": cancelling running jobs to hand them back",
             zlistx_size (self->running), jr_outbox_size (self->outbox), why);
    for (s_slot_t *slot = zlistx_first (self->running); slot; slot = zlistx_next (self->running)) {
        //  One the broker cancelled still ends CANCELLED: it is not to run again.
        slot->handed_back = !slot->cancelled;
        jr_ctx_cancel (slot->run->ctx, JR_ECANCELLED);
    }
    jr_executor_sweep (self->executor, false);
}

//  The phase table's drain events; true when the loop should exit.
static bool
s_check_phase (jr_worker_t *self, int64_t now)
{
    unsigned asked = atomic_load (&self->drains);
    if (zsys_interrupted && asked == 0)
        asked = 1;  //  czmq's own handler, when the process left it installed
    if (self->phase == S_ACTIVE && asked >= 1)
        s_begin_drain (self, now);
    if (self->phase == S_DRAINING && (asked >= 2 || now >= self->phase_until_us))
        s_begin_hand_back (self, now, asked >= 2 ? "asked to stop now" : "grace over");
    if (self->phase == S_ACTIVE)
        return false;
    bool settled = s_held (self) == 0 && self->done->nmarks == 0;
    return settled || (self->phase == S_HANDING_BACK && now >= self->phase_until_us);
}

//  At exit, whatever is still held goes back to the broker: a task that did
//  not stop in time (it dies with the process), a result never ACKed (it may
//  be stored anyway; the ingester keeps one per job).
static void
s_hand_back_held (jr_worker_t *self)
{
    for (s_slot_t *slot = zlistx_first (self->running); slot; slot = zlistx_next (self->running))
        s_hand_back (self, slot->run->job, "still running at exit");
    jr_job_t *job;
    while ((job = jr_outbox_pop (self->outbox))) {
        s_hand_back (self, job, "result not acknowledged at exit");
        jr_job_destroy (&job);
    }
    s_flush_done (self);
}

//  The broker was heard: touch the health file (created if missing), at
//  most once a second, so a healthcheck can ask find -newermt.
static void
s_touch_health (jr_worker_t *self, int64_t now)
{
    if (!self->health_file || (self->health_us && now - self->health_us < S_HEALTH_US))
        return;
    self->health_us = now;
    int fd = open (self->health_file, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd == -1 || futimens (fd, NULL) == -1) {
        if (!self->health_failing)
            jr_warn ("health_file=%s: cannot touch: %s", self->health_file, strerror (errno));
        self->health_failing = true;
    }
    else if (self->health_failing) {
        jr_info ("health_file=%s: touched again", self->health_file);
        self->health_failing = false;
    }
    if (fd != -1)
        close (fd);
}

int
jr_worker_run (jr_worker_t *self)
{
    assert (self);
    int64_t now = jr_clock_mono_us ();
    self->last_rx_us = now;
    self->next_stats_us = now + S_STATS_US;
    s_send_ready (self);
    //  SIGHUP must not end a worker (its default action): nothing of the
    //  worker's is read again (its keys are read at start), it says so.
    jr_notify_catch_reload ();
    unsigned reloads = jr_notify_reloads ();
    jr_notify_ready ("connecting");
    while (true) {
        now = jr_clock_mono_us ();
        if (s_check_phase (self, now))
            break;
        if (reloads != jr_notify_reloads ()) {
            reloads = jr_notify_reloads ();
            jr_info ("reload asked (SIGHUP): a worker has nothing to read again; restart it "
                     "for new flags or keys");
        }
        zmq_pollitem_t items[] = {
            { zsock_resolve (self->to_broker.sock), 0, ZMQ_POLLIN, 0 },
            { zsock_resolve (self->to_ingester.sock), 0,
              (short)(ZMQ_POLLIN | (self->ingester_blocked ? ZMQ_POLLOUT : 0)), 0 },
            { NULL, jr_executor_fd (self->executor), ZMQ_POLLIN, 0 },
            { NULL, self->wake_fd, ZMQ_POLLIN, 0 },
        };
        if (zmq_poll (items, 4, s_timeout_ms (self, now)) == -1) {
            if (zmq_errno () == EINTR)
                continue;  //  a signal: the top of the loop looks at the flags
            jr_error ("error=\"%s\": poll failed", zmq_strerror (zmq_errno ()));
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            bool heard = false;
            s_recv_all (self, self->to_broker.sock, s_broker_message, &heard);
            if (heard) {
                self->last_rx_us = jr_clock_mono_us ();
                if (!self->broker_heard) {
                    jr_info ("broker=%s: connected", self->broker_ep);
                    jr_notify_status ("connected to the broker");
                }
                self->broker_heard = true;
                s_touch_health (self, self->last_rx_us);
            }
        }
        if (items[1].revents & ZMQ_POLLIN)
            s_recv_all (self, self->to_ingester.sock, s_ingester_message, NULL);
        if (items[2].revents & ZMQ_POLLIN)
            s_take_finished (self);
        if (items[3].revents & ZMQ_POLLIN) {
            uint64_t count;
            ssize_t rc = read (self->wake_fd, &count, sizeof count);
            (void)rc;
        }
        now = jr_clock_mono_us ();
        s_check_deadlines (self, now);
        s_flush_results (self, now);
        s_flush_free (self);
        s_flush_done (self);
        s_flush_progress (self, now);
        if (now - self->last_rx_us >= self->liveness_us)
            s_reconnect (self);
        if (self->need_ready)
            s_send_ready (self);
        if (now - self->last_tx_us >= self->heartbeat_us) {
            jr_msg_t beat = { .type = JR_MSG_HEARTBEAT };
            s_send_broker (self, &beat);
            self->last_tx_us = now;  //  even if it failed: no busy retry
        }
        s_stats (self, now, false);
        s_check_links (self, now);
    }
    size_t unacked = jr_outbox_size (self->outbox), running = zlistx_size (self->running);
    if (unacked || running) {
        jr_warn ("running=%zu unacked=%zu: stopping with jobs not settled, handing them back",
                 running, unacked);
        s_hand_back_held (self);
    }
    s_stats (self, now, true);
    jr_info ("stopped");
    return unacked || running ? -1 : 0;
}

//  Count drain requests and wake the loop: only async-signal-safe calls.
static void
s_ask_drain (jr_worker_t *self, unsigned count)
{
    atomic_fetch_add (&self->drains, count);
    uint64_t one = 1;
    ssize_t rc = write (self->wake_fd, &one, sizeof one);
    (void)rc;
}

void
jr_worker_drain (jr_worker_t *self)
{
    s_ask_drain (self, 1);
}

void
jr_worker_stop (jr_worker_t *self)
{
    s_ask_drain (self, 2);
}

//  -------------------------------------------------------------------------
//  Construction

static void
s_free_name (void **item)
{
    free (*item);
    *item = NULL;
}

static char *
s_strdup (const char *text)
{
    char *copy = strdup (text);
    assert (copy);
    return copy;
}

//  The worker's registry, in the order of the stats line.
static void
s_metrics_new (jr_worker_t *self)
{
    jr_metrics_t *m = self->metrics = jr_metrics_new ("jr_worker");
    s_stats_t *s = &self->stats;
    s->succeeded = jr_metrics_counter (m, "jobs_succeeded", "attempts that succeeded", NULL, NULL);
    s->failed =
        jr_metrics_counter (m, "jobs_failed", "attempts that failed, or could not run", NULL, NULL);
    s->resent = jr_metrics_counter (m, "results_resent", "results sent again for want of an ACK",
                                    NULL, NULL);
    s->handed_back = jr_metrics_counter (
        m, "jobs_handed_back", "jobs given back to the broker unrun or stopped", NULL, NULL);
    s->running =
        jr_metrics_gauge (m, "jobs_running", "jobs held for or in an executor", NULL, NULL);
    s->unacked = jr_metrics_gauge (m, "results_unacked", "results waiting for the ingester's ACK",
                                   NULL, NULL);
}

jr_worker_t *
jr_worker_new (const jr_worker_config_t *cfg)
{
    jr_worker_config_t c;
    if (jr_worker_config_resolve (cfg, &c) != 0)
        return NULL;
    jr_worker_t *self = calloc (1, sizeof *self);
    assert (self);
    char host[256] = "localhost";
    if (gethostname (host, sizeof host) != 0)
        strcpy (host, "localhost");
    host[sizeof host - 1] = 0;
    self->host = s_strdup (host);
    if (c.name && *c.name)
        self->name = s_strdup (c.name);
    else {
        char name[300];
        snprintf (name, sizeof name, "%s-%d", host, (int)getpid ());
        self->name = s_strdup (name);
    }
    if (asprintf (&self->ident, "%s@%s", self->name, self->host) < 0)
        abort ();
    self->broker_ep = s_strdup (c.broker);
    self->ingester_ep = s_strdup (c.ingester);
    self->concurrency = c.concurrency;
    self->slots = self->concurrency + c.prefetch;
    self->heartbeat_us = c.heartbeat_ms * 1000LL;
    self->liveness_us = c.liveness_ms * 1000LL;
    self->grace_us = c.grace_ms < 0 ? 0 : c.grace_ms * 1000LL;
    self->max_payload = c.max_payload;
    self->health_file = c.health_file && *c.health_file ? s_strdup (c.health_file) : NULL;
    atomic_init (&self->drains, 0);
    s_metrics_new (self);
    self->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert (self->wake_fd != -1);
    self->in = jr_msg_new ();
    self->out = jr_msg_new ();
    self->freed = jr_msg_new ();
    self->progress = jr_msg_new ();
    jr_msg_reset (self->freed, JR_MSG_FREE);
    self->done = jr_msg_new ();
    jr_msg_reset (self->done, JR_MSG_DONE);
    self->running = zlistx_new ();
    self->outbox = jr_outbox_new (c.resend_ms * 1000LL, c.backlog);

    if (c.tasks) {
        self->served = zlistx_new ();
        zlistx_set_destructor (self->served, s_free_name);
        char *list = s_strdup (c.tasks), *save = NULL;
        for (char *name = strtok_r (list, ", ", &save); name; name = strtok_r (NULL, ", ", &save)) {
            if (!jr_tasks_find ((jr_bytes_t){ (const uint8_t *)name, strlen (name) })) {
                jr_error ("task=%s: no such task", name);
                free (list);
                jr_worker_destroy (&self);
                return NULL;
            }
            zlistx_add_end (self->served, s_strdup (name));
        }
        free (list);
        if (zlistx_size (self->served) == 0) {
            jr_error ("tasks=\"%s\": no task to serve", c.tasks);
            jr_worker_destroy (&self);
            return NULL;
        }
    }

    self->timeouts = jr_task_timeouts_new (c.task_timeouts);
    if (!self->timeouts) {
        jr_worker_destroy (&self);
        return NULL;
    }

    //  Their options are the transport's roles: results wait in the outbox
    //  while the ingester is down (IMMEDIATE), and a stop may flush the last
    //  ones (linger).
    self->keys = c.keys;
    if (jr_link_open (&self->to_broker, JR_SOCK_WORKER_BROKER, self->broker_ep, c.keys) != 0
        || jr_link_open (&self->to_ingester, JR_SOCK_WORKER_INGESTER, self->ingester_ep, c.keys)
               != 0) {
        jr_error ("endpoint=%s: bad endpoint",
                  self->to_broker.sock ? self->ingester_ep : self->broker_ep);
        jr_worker_destroy (&self);
        return NULL;
    }
    self->executor = jr_executor_new ((size_t)self->concurrency);
    jr_info ("name=%s broker=%s ingester=%s concurrency=%d prefetch=%d keys=%s: connecting",
             self->ident, self->broker_ep, self->ingester_ep, self->concurrency,
             self->slots - self->concurrency, c.keys ? jr_keys_dir (c.keys) : "(none)");
    return self;
}

void
jr_worker_destroy (jr_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jr_worker_t *self = *self_p;
    *self_p = NULL;
    if (self->executor) {
        //  Runs still held by executors belong to them: cancel, let them
        //  finish, and the executor frees what comes back.
        for (s_slot_t *slot = zlistx_first (self->running); slot;
             slot = zlistx_next (self->running)) {
            //  A task that outlives us must not write to our closed wake fd.
            jr_ctx_set_notify (slot->run->ctx, -1);
            jr_ctx_cancel (slot->run->ctx, JR_ECANCELLED);
        }
        jr_executor_destroy (&self->executor, 1000);
    }
    if (self->running)
        for (s_slot_t *slot = zlistx_first (self->running); slot;
             slot = zlistx_next (self->running))
            free (slot);
    jr_outbox_destroy (&self->outbox);
    zlistx_destroy (&self->running);
    zlistx_destroy (&self->served);
    jr_task_timeouts_destroy (&self->timeouts);
    //  Give a last DONE a moment to leave: a per-stop option, not a role's.
    if (self->to_broker.sock)
        zsock_set_linger (self->to_broker.sock, 500);
    jr_link_close (&self->to_broker);
    jr_link_close (&self->to_ingester);
    jr_msg_destroy (&self->in);
    jr_msg_destroy (&self->out);
    jr_msg_destroy (&self->done);
    jr_msg_destroy (&self->freed);
    jr_msg_destroy (&self->progress);
    close (self->wake_fd);
    jr_metrics_destroy (&self->metrics);
    free (self->broker_ep);
    free (self->ingester_ep);
    free (self->name);
    free (self->host);
    free (self->ident);
    free (self->health_file);
    free (self);
}

jr_metrics_t *
jr_worker_metrics (jr_worker_t *self)
{
    return self->metrics;
}

const char *
jr_worker_ident (const jr_worker_t *self)
{
    return self->ident;
}
