/*  ingester.c - the ingester's loop: drain, store one batch, ACK after commit, answer FETCH  */
#include "ingester/ingester.h"
#include "common/clock.h"
#include "common/fdlimit.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/mp.h"
#include "common/notify.h"
#include "ingester/sink.h"
#include "proto/auth.h"
#include "ingester/writer.h"
#include "proto/transport.h"
#include <czmq.h>
#include <stdatomic.h>

#define S_POLL_MS      100               //  longest sleep, so expiries and stop run
#define S_STATS_US     (10 * 1000000LL)  //  stats line period
#define S_JOB_OVERHEAD 160               //  msgpack bytes of a job besides its byte fields
#define S_FRAMES       4                 //  RESULTS frames the budget of one answer fills

typedef struct _fetch_t fetch_t;

//  A FETCH with ids still pending: it gets RESULTS as they are stored, and
//  NOT_FOUND for the rest at its deadline.
struct _fetch_t {
    uint8_t peer[256];           //  routing id of the client (libzmq caps it at 255)
    size_t peer_size;            //  its length
    int64_t deadline_us;         //  monotonic
    uint8_t (*ids)[JR_ID_SIZE];  //  ids parked for this fetch
    bool *pending;               //  per id: still waiting
    uint32_t nids;               //  ids parked
    uint32_t npending;           //  ids still waiting
    jr_msg_t *out;               //  RESULTS being filled this turn
    size_t out_size;             //  its approximate encoded size
    size_t spent;                //  bytes of jobs answered so far, against fetch_bytes
    bool dirty;                  //  out has jobs to send at the end of the turn
    fetch_t *prev, *next;        //  in the ingester's list of fetches
};

//  One fetch waiting for one id; an id's waiters form a list.
typedef struct _waiter_t {
    fetch_t *fetch;          //  who waits
    uint32_t index;          //  which of its ids
    struct _waiter_t *next;  //  next waiter for the same id
} waiter_t;

//  The item of the parked hash (id -> waiters), so the head can change in place.
typedef struct {
    waiter_t *head;
    uint64_t turn;  //  turn in which a non-final result of this id was stored
} parked_t;

//  The ingester's figures, in its registry (prefix jr_ingester): the stats
//  line shows each counter's change over the interval, the gauge's value.
typedef struct {
    jr_counter_t *stored, *dup, *stale, *invalid;  //  results, by what the sink made of them
    jr_counter_t *acks;                            //  ACK messages sent
    jr_counter_t *malformed;                       //  messages not [routing id, body], dropped
    jr_counter_t *bad;                             //  ERRORs dropped, and messages refused with one
    jr_counter_t *fetches, *served, *expired;      //  FETCHes; results they got; ids timed out
    jr_counter_t *sendfail;                        //  sends that failed (peer gone)
    jr_counter_t *batchfail;                       //  batches whose commit failed
    jr_counter_t *commits;                         //  transactions that stored results
    jr_counter_t *unread;                          //  replies dropped, their peer read too little
    jr_gauge_t *parked;                            //  ids parked by fetches that wait
    jr_auth_counters_t auth;                       //  refusals of the keys
} stats_t;

struct _jr_ingester_t {
    zsock_t *router;             //  the one socket, for workers and clients
    void *handle;                //  its libzmq handle
    char endpoint[256];          //  as bound (port resolved)
    jr_sink_t *sink;             //  the writer's while it stores a batch, else the loop's
    jr_writer_t *writer;         //  stores one batch at a time
    jr_batch_t batches[2];       //  one filling, one in the writer (or both idle)
    jr_batch_t *filling;         //  drained into now
    jr_batch_t *writing;         //  in the writer, or NULL
    int batch_max;               //  results per transaction
    size_t max_waiters;          //  bound on parked ids
    size_t fetch_bytes;          //  bytes of jobs in the answer to one FETCH
    size_t frame_bytes;          //  a RESULTS is sent before it grows past this
    uint32_t *seen;              //  open hash of the mark indices of one FETCH, for duplicates
    size_t cap_seen;             //  its allocated slots
    atomic_bool stopping;        //  set by jr_ingester_stop
    jr_msg_t *reply;             //  reused for ACK and immediate RESULTS
    jr_job_t **found;            //  copies of stored results for one reply
    size_t nfound, cap_found;    //  in use, allocated
    jr_job_t **reread;           //  stored results re-read for waiters this turn
    size_t nreread, cap_reread;  //  in use, allocated
    uint64_t turn;               //  turns so far
    zhashx_t *parked;            //  id -> parked_t
    size_t nwaiters;             //  parked ids over all fetches
    fetch_t *fetches;            //  all fetches with pending ids
    fetch_t **dirty;             //  fetches with RESULTS to send this turn
    size_t ndirty, cap_dirty;    //  in use, allocated
    int64_t next_expiry_us;      //  earliest fetch deadline, or INT64_MAX
    int64_t next_stats_us;       //  when the next stats line is due
    jr_auth_t *auth;             //  the ZAP handler, with keys; NULL without
    jr_metrics_t *metrics;       //  the registry the stats line reads
    stats_t stats;               //  its metrics, owned by it
    jr_budgets_t *budgets;       //  what each peer has unread
};

//  -------------------------------------------------------------------------
//  The parked hash: 16-byte binary keys.

static size_t
s_id_hash (const void *key)
{
    //  Ids are random UUIDs, but fold all of them so crafted ones spread too.
    uint64_t a, b;
    memcpy (&a, key, 8);
    memcpy (&b, (const uint8_t *)key + 8, 8);
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xFF51AFD7ED558CCDull;
    return (size_t)(h ^ (h >> 32));
}

static int
s_id_compare (const void *a, const void *b)
{
    return memcmp (a, b, JR_ID_SIZE);
}

static void *
s_id_dup (const void *key)
{
    void *copy = malloc (JR_ID_SIZE);
    assert (copy);
    memcpy (copy, key, JR_ID_SIZE);
    return copy;
}

static void
s_id_free (void **key_p)
{
    free (*key_p);
    *key_p = NULL;
}

static void
s_parked_free (void **item_p)
{
    parked_t *parked = *item_p;
    while (parked->head) {
        waiter_t *next = parked->head->next;
        free (parked->head);
        parked->head = next;
    }
    free (parked);
    *item_p = NULL;
}

//  -------------------------------------------------------------------------
//  Construction

//  The sink the config names: sink as a URL, or db (the alias) as a SQLite file.
static jr_sink_t *
s_sink_new (jr_ingester_config_t *c)
{
    if (c->sink && c->db) {
        jr_error ("sink=%s db=%s: give one of them (db=PATH means sink=sqlite:PATH)", c->sink,
                  c->db);
        return NULL;
    }
    if (c->sink)
        return jr_sink_new (c->sink, c->sync);
    c->db = c->db ? c->db : JR_INGESTER_DB;
    return jr_sink_open (&jr_sink_sqlite, c->db, c->sync);
}

//  One counter of the ingester's registry.
static jr_counter_t *
s_counter (jr_ingester_t *self, const char *name, const char *help)
{
    return jr_metrics_counter (self->metrics, name, help, NULL, NULL);
}

//  The ingester's registry, in the order of the stats line.
static void
s_metrics_new (jr_ingester_t *self)
{
    self->metrics = jr_metrics_new ("jr_ingester");
    stats_t *s = &self->stats;
    s->stored = s_counter (self, "results_stored", "results stored");
    s->dup = s_counter (self, "results_dup", "results of an attempt already stored");
    s->stale = s_counter (self, "results_stale", "results of an attempt older than the stored");
    s->invalid = s_counter (self, "results_invalid", "results refused as INVALID");
    s->acks = s_counter (self, "acks_sent", "ACK messages sent");
    s->malformed = s_counter (self, "messages_malformed", "messages not [routing id, body]");
    s->bad = s_counter (self, "messages_bad", "messages refused, and ERRORs dropped");
    s->fetches = s_counter (self, "fetches", "FETCH messages answered");
    s->served = s_counter (self, "fetches_served", "stored results sent to fetches");
    s->expired = s_counter (self, "fetches_expired", "fetched ids not stored in time");
    s->sendfail = s_counter (self, "sends_failed", "sends that failed");
    s->batchfail = s_counter (self, "batches_failed", "batches whose commit failed");
    s->commits = s_counter (self, "commits", "transactions that stored results");
    s->unread =
        s_counter (self, "replies_unread", "replies dropped: their peer had too many unread");
    s->parked = jr_metrics_gauge (self->metrics, "fetches_parked",
                                  "ids parked by fetches that wait for them", NULL, NULL);
    jr_auth_counters_init (&s->auth, self->metrics);
}

jr_ingester_t *
jr_ingester_new (const jr_ingester_config_t *cfg)
{
    jr_ingester_config_t c = cfg ? *cfg : (jr_ingester_config_t){ 0 };
    c.bind = c.bind ? c.bind : JR_INGESTER_BIND;
    c.sync = c.sync ? c.sync : JR_INGESTER_SYNC;
    c.batch_max = c.batch_max ? c.batch_max : JR_INGESTER_BATCH;
    c.max_waiters = c.max_waiters ? c.max_waiters : JR_INGESTER_MAX_WAITERS;
    c.fetch_bytes = c.fetch_bytes ? c.fetch_bytes : JR_INGESTER_FETCH_BYTES;
    if (c.batch_max < 1 || c.max_waiters < 1 || c.fetch_bytes < 1) {
        jr_error ("batch=%d max_waiters=%d fetch_bytes=%d: must be positive", c.batch_max,
                  c.max_waiters, c.fetch_bytes);
        return NULL;
    }
    jr_ingester_t *self = calloc (1, sizeof *self);
    assert (self);
    self->batch_max = c.batch_max;
    self->max_waiters = (size_t)c.max_waiters;
    self->fetch_bytes = (size_t)c.fetch_bytes;
    self->frame_bytes = self->fetch_bytes / S_FRAMES;
    //  Room for two whole FETCH answers, so a client that reads loses none.
    self->budgets = jr_budgets_new (2 * self->fetch_bytes + JR_MAX_PAYLOAD);
    atomic_init (&self->stopping, false);
    s_metrics_new (self);
    self->next_expiry_us = INT64_MAX;
    self->next_stats_us = jr_clock_mono_us () + S_STATS_US;
    self->reply = jr_msg_new ();
    self->parked = zhashx_new ();
    assert (self->parked);
    zhashx_set_key_hasher (self->parked, s_id_hash);
    zhashx_set_key_comparator (self->parked, s_id_compare);
    zhashx_set_key_duplicator (self->parked, s_id_dup);
    zhashx_set_key_destructor (self->parked, s_id_free);
    zhashx_set_destructor (self->parked, s_parked_free);

    self->filling = &self->batches[0];
    self->sink = s_sink_new (&c);
    if (!self->sink) {
        jr_ingester_destroy (&self);
        return NULL;
    }
    self->writer = jr_writer_new (self->sink);
    //  Its options are the transport's ingester role: ROUTER_MANDATORY, so a
    //  vanished peer fails the send; exactly the protocol's frame limit; a
    //  linger so ACKs queued at shutdown still get a second to leave.
    char err[512];
    if (c.keys && !(self->auth = jr_auth_new (c.keys, err, sizeof err))) {
        jr_error ("%s", err);
        jr_ingester_destroy (&self);
        return NULL;
    }
    self->router = jr_transport_bind (JR_SOCK_INGESTER, c.bind, c.keys);
    if (!self->router) {
        jr_error ("bind=%s error=\"%s\": cannot bind", c.bind, zmq_strerror (zmq_errno ()));
        jr_ingester_destroy (&self);
        return NULL;
    }
    if (self->auth && jr_auth_watch (self->auth, self->router, JR_SOCK_INGESTER) != 0)
        jr_warn ("bind=%s: cannot watch its handshakes; refusals before ZAP go uncounted", c.bind);
    self->handle = zsock_resolve (self->router);
    size_t size = sizeof self->endpoint;
    if (zmq_getsockopt (self->handle, ZMQ_LAST_ENDPOINT, self->endpoint, &size) != 0)
        snprintf (self->endpoint, sizeof self->endpoint, "%s", c.bind);
    jr_info ("bind=%s sink=%s:%s sync=%s batch=%d keys=%s: listening", self->endpoint,
             jr_sink_ops (self->sink)->scheme, c.sink ? strchr (c.sink, ':') + 1 : c.db, c.sync,
             c.batch_max, c.keys ? jr_keys_dir (c.keys) : "(none)");
    return self;
}

static void
s_fetch_destroy (jr_ingester_t *self, fetch_t *fetch)
{
    if (fetch->prev)
        fetch->prev->next = fetch->next;
    else
        self->fetches = fetch->next;
    if (fetch->next)
        fetch->next->prev = fetch->prev;
    jr_msg_destroy (&fetch->out);
    free (fetch->ids);
    free (fetch->pending);
    free (fetch);
}

void
jr_ingester_destroy (jr_ingester_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        jr_ingester_t *self = *self_p;
        //  Parked clients hear nothing: they time out and ask again.
        while (self->fetches)
            s_fetch_destroy (self, self->fetches);
        zhashx_destroy (&self->parked);
        jr_writer_destroy (&self->writer);  //  waits for a batch being stored
        jr_batch_free (&self->batches[0]);
        jr_batch_free (&self->batches[1]);
        free (self->found);
        while (self->nreread)
            jr_job_destroy (&self->reread[--self->nreread]);
        free (self->reread);
        free (self->dirty);
        free (self->seen);
        jr_msg_destroy (&self->reply);
        zsock_destroy (&self->router);
        jr_auth_destroy (&self->auth);        //  after the socket it answers for
        jr_budgets_destroy (&self->budgets);  //  frames libzmq still holds keep theirs
        jr_sink_destroy (&self->sink);
        jr_metrics_destroy (&self->metrics);
        free (self);
        *self_p = NULL;
    }
}

void
jr_ingester_stop (jr_ingester_t *self)
{
    atomic_store (&self->stopping, true);
}

jr_metrics_t *
jr_ingester_metrics (jr_ingester_t *self)
{
    return self->metrics;
}

const char *
jr_ingester_endpoint (jr_ingester_t *self)
{
    return self->endpoint;
}

//  -------------------------------------------------------------------------
//  Sending

//  Every send goes through here: a failure is counted, never fatal. The
//  worker resends unACKed results and the client asks again.
static void
s_send (jr_ingester_t *self, const jr_msg_t *msg, const void *peer, size_t peer_size)
{
    jr_budget_t *budget = jr_budgets_get (self->budgets, peer, peer_size);
    int rc = jr_msg_send_counted (msg, self->handle, peer, peer_size, budget);
    if (rc == JR_EQUEUE_FULL)
        jr_counter_inc (self->stats.unread);  //  it asks again after its timeout
    else if (rc) {
        jr_counter_inc (self->stats.sendfail);
        jr_debug ("msg=%s code=%s: send failed", jr_msg_name (msg->type), jr_errname (rc));
    }
}

static size_t
s_job_size (const jr_job_t *job)
{
    return S_JOB_OVERHEAD + job->task.len + job->vars.len + job->payload.len + job->error.len
           + job->worker.len;
}

//  Whether a job still fits in the byte budget of an answer that has spent
//  this much; the first job always does, so every answer makes progress.
static bool
s_fits (const jr_ingester_t *self, size_t spent, const jr_job_t *job)
{
    return spent == 0 || spent + s_job_size (job) <= self->fetch_bytes;
}

//  Append a job to a RESULTS; if the frame would grow too large, what is
//  there goes first and the job starts the next RESULTS with the same tag.
static void
s_results_add (jr_ingester_t *self, jr_msg_t *out, size_t *out_size, const void *peer,
               size_t peer_size, const jr_job_t *job)
{
    size_t size = s_job_size (job);
    if (out->njobs && *out_size + size > self->frame_bytes) {
        s_send (self, out, peer, peer_size);
        uint64_t tag = out->tag;
        jr_msg_reset (out, JR_MSG_RESULTS);
        out->tag = tag;
        *out_size = 0;
    }
    *jr_msg_add_job (out) = *job;
    *out_size += size;
}

//  -------------------------------------------------------------------------
//  Parked fetches

static void
s_park (jr_ingester_t *self, fetch_t *fetch, const uint8_t id[JR_ID_SIZE])
{
    uint32_t index = fetch->nids++;
    memcpy (fetch->ids[index], id, JR_ID_SIZE);
    fetch->pending[index] = true;
    fetch->npending++;
    self->nwaiters++;
    parked_t *parked = zhashx_lookup (self->parked, id);
    if (!parked) {
        parked = calloc (1, sizeof *parked);
        assert (parked);
        zhashx_insert (self->parked, id, parked);
    }
    waiter_t *waiter = malloc (sizeof *waiter);
    assert (waiter);
    *waiter = (waiter_t){ fetch, index, parked->head };
    parked->head = waiter;
}

static void
s_unpark (jr_ingester_t *self, fetch_t *fetch, uint32_t index)
{
    parked_t *parked = zhashx_lookup (self->parked, fetch->ids[index]);
    assert (parked);
    for (waiter_t **w = &parked->head; *w; w = &(*w)->next)
        if ((*w)->fetch == fetch && (*w)->index == index) {
            waiter_t *gone = *w;
            *w = gone->next;
            free (gone);
            break;
        }
    fetch->pending[index] = false;
    fetch->npending--;
    self->nwaiters--;
    if (!parked->head)
        zhashx_delete (self->parked, fetch->ids[index]);
}

static fetch_t *
s_fetch_new (jr_ingester_t *self, const void *peer, size_t peer_size, uint64_t tag,
             int64_t deadline_us, uint32_t max_ids)
{
    fetch_t *fetch = calloc (1, sizeof *fetch);
    assert (fetch);
    assert (peer_size <= sizeof fetch->peer);
    memcpy (fetch->peer, peer, peer_size);
    fetch->peer_size = peer_size;
    fetch->deadline_us = deadline_us;
    fetch->ids = malloc ((size_t)max_ids * JR_ID_SIZE);
    fetch->pending = calloc (max_ids, sizeof *fetch->pending);
    assert (fetch->ids && fetch->pending);
    fetch->out = jr_msg_new ();
    jr_msg_reset (fetch->out, JR_MSG_RESULTS);
    fetch->out->tag = tag;
    fetch->next = self->fetches;
    if (self->fetches)
        self->fetches->prev = fetch;
    self->fetches = fetch;
    if (deadline_us < self->next_expiry_us)
        self->next_expiry_us = deadline_us;
    return fetch;
}

//  A stored result in a final state reaches every fetch parked on its id.
//  Called with the last stored result of each id first (see s_acknowledge).
static void
s_notify (jr_ingester_t *self, const jr_job_t *job)
{
    parked_t *parked = zhashx_lookup (self->parked, job->id);
    if (!parked || parked->turn == self->turn)
        return;  //  nobody waits, or a later attempt stored this turn is not final
    if (!jr_state_ends_wait (job->state)) {  //  SCHEDULED: another attempt follows
        parked->turn = self->turn;
        return;
    }
    if (!job->success && job->attempt > 1) {
        //  Waiters get what FETCH would give: the row, its error the history.
        jr_job_t *stored;
        if (jr_sink_get (self->sink, job->id, &stored) == 0) {
            if (self->nreread == self->cap_reread) {
                self->cap_reread = self->cap_reread ? self->cap_reread * 2 : 16;
                self->reread = realloc (self->reread, self->cap_reread * sizeof *self->reread);
                assert (self->reread);
            }
            self->reread[self->nreread++] = stored;
            job = stored;
        }
    }
    for (waiter_t *w = parked->head; w; w = w->next) {
        fetch_t *fetch = w->fetch;
        fetch->pending[w->index] = false;
        fetch->npending--;
        self->nwaiters--;
        if (s_fits (self, fetch->spent, job)) {
            fetch->spent += s_job_size (job);
            s_results_add (self, fetch->out, &fetch->out_size, fetch->peer, fetch->peer_size, job);
            jr_counter_inc (self->stats.served);
        }
        else  //  over the answer's budget: the client asks again
            jr_msg_add_mark (fetch->out, job->id, 0, JR_ETOOLARGE);
        if (!fetch->dirty) {
            fetch->dirty = true;
            if (self->ndirty == self->cap_dirty) {
                self->cap_dirty = self->cap_dirty ? self->cap_dirty * 2 : 64;
                self->dirty = realloc (self->dirty, self->cap_dirty * sizeof *self->dirty);
                assert (self->dirty);
            }
            self->dirty[self->ndirty++] = fetch;
        }
    }
    zhashx_delete (self->parked, job->id);
}

//  Send what the stored results of this turn gave parked fetches; the views
//  point into this turn's frames, so this runs before they are closed.
static void
s_flush_dirty (jr_ingester_t *self)
{
    for (size_t i = 0; i < self->ndirty; i++) {
        fetch_t *fetch = self->dirty[i];
        s_send (self, fetch->out, fetch->peer, fetch->peer_size);
        uint64_t tag = fetch->out->tag;
        jr_msg_reset (fetch->out, JR_MSG_RESULTS);
        fetch->out->tag = tag;
        fetch->out_size = 0;
        fetch->dirty = false;
        if (fetch->npending == 0)
            s_fetch_destroy (self, fetch);
    }
    self->ndirty = 0;
}

//  Fetches past their deadline get NOT_FOUND for the ids still missing.
static void
s_expire (jr_ingester_t *self)
{
    int64_t now = jr_clock_mono_us ();
    if (now < self->next_expiry_us)
        return;
    self->next_expiry_us = INT64_MAX;
    fetch_t *next;
    for (fetch_t *fetch = self->fetches; fetch; fetch = next) {
        next = fetch->next;
        if (fetch->deadline_us > now) {
            if (fetch->deadline_us < self->next_expiry_us)
                self->next_expiry_us = fetch->deadline_us;
            continue;
        }
        for (uint32_t i = 0; i < fetch->nids; i++)
            if (fetch->pending[i]) {
                s_unpark (self, fetch, i);
                jr_msg_add_mark (fetch->out, fetch->ids[i], 0, JR_ENOT_FOUND);
                jr_counter_inc (self->stats.expired);
            }
        s_send (self, fetch->out, fetch->peer, fetch->peer_size);
        s_fetch_destroy (self, fetch);
    }
}

//  -------------------------------------------------------------------------
//  One turn: drain, store, ACK, answer fetches

//  Receive one whole message into the next entry of the filling batch.
//  Returns false when nothing is left.
static bool
s_recv_one (jr_ingester_t *self)
{
    jr_batch_t *batch = self->filling;
    jr_entry_t *entry = jr_batch_next (batch);
    int got = jr_transport_recv (self->handle, &entry->peer, &entry->body);
    if (got == 0) {
        jr_entry_close (entry);
        return false;  //  EAGAIN: drained; EINTR: the loop looks at its flags
    }
    if (got < 0) {
        jr_counter_inc (self->stats.malformed);
        jr_debug ("dropped a message that is not [routing-id, body]");
        jr_entry_close (entry);
        return true;
    }
    const void *peer = zmq_msg_data (&entry->peer);
    size_t peer_size = zmq_msg_size (&entry->peer);
    jr_msg_t *msg = entry->msg;
    int rc = jr_transport_decode (msg, &entry->body, true);
    if (rc == JR_TRANSPORT_SILENT) {
        jr_counter_inc (self->stats.bad);
        jr_debug ("size=%zu: dropped an ERROR (never answered)", zmq_msg_size (&entry->body));
        jr_entry_close (entry);
        return true;
    }
    const char *why = jr_strerror (rc);
    if (rc == 0 && !jr_auth_permits (self->auth, JR_SOCK_INGESTER, msg->type, &entry->body)) {
        rc = JR_EFORBIDDEN;
        why = msg->type == JR_MSG_RESULT ? "only worker keys may send RESULT"
                                         : "only client and admin keys may FETCH";
    }
    else if (rc == 0 && msg->type != JR_MSG_RESULT && msg->type != JR_MSG_FETCH) {
        rc = JR_EINVALID;
        why = "the ingester takes RESULT and FETCH only";
        msg->tag = 0;  //  as the spec's Refusal rule says: no tag of another conversation
    }
    else if (rc == 0 && msg->type == JR_MSG_FETCH && msg->nmarks > JR_INGESTER_MAX_FETCH) {
        rc = JR_ETOOLARGE;
        why = "more than 10000 ids in one FETCH";
    }
    if (rc) {
        jr_counter_inc (self->stats.bad);
        jr_debug ("size=%zu code=%s: refused a message", zmq_msg_size (&entry->body),
                  jr_errname (rc));
        jr_msg_send_error (self->handle, peer, peer_size, msg->tag, rc, why);
        jr_entry_close (entry);
        return true;
    }
    if (msg->type == JR_MSG_RESULT && entry->cap_codes < msg->njobs) {
        entry->codes = realloc (entry->codes, msg->njobs * sizeof *entry->codes);
        assert (entry->codes);
        entry->cap_codes = msg->njobs;
    }
    batch->nentries++;
    if (msg->type == JR_MSG_RESULT)
        batch->njobs += msg->njobs;
    return true;
}

//  Refuse what no retry can fix, so the worker drops it instead of resending.
static int
s_validate (const jr_job_t *job)
{
    static const uint8_t nil_id[JR_ID_SIZE] = { 0 };
    if (job->task.len == 0 || job->attempt == 0 || memcmp (job->id, nil_id, JR_ID_SIZE) == 0
        || jr_state_no_result (job->state)) {
        char id[37];
        jr_id_format (job->id, id);
        jr_warn ("id=%s attempt=%u task_len=%zu state=%s: result refused (empty task, attempt 0,"
                 " nil id, or a state no result can have)",
                 id, job->attempt, job->task.len, jr_state_name (job->state));
        return JR_EINVALID;
    }
    return 0;
}

//  Before the writer: refuse what no retry can fix, stamp the rest.
static void
s_prepare (jr_batch_t *batch)
{
    int64_t now = jr_clock_wall_us ();
    for (size_t e = 0; e < batch->nentries; e++) {
        jr_entry_t *entry = batch->entries[e];
        if (entry->msg->type != JR_MSG_RESULT)
            continue;
        for (uint32_t i = 0; i < entry->msg->njobs; i++) {
            jr_job_t *job = &entry->msg->jobs[i];
            entry->codes[i] = s_validate (job);
            if (entry->codes[i] == 0) {
                job->ingested_us = now;
                //  A worker that sets no state (or one newer than ours): its success.
                job->state = jr_result_state (job->state, job->success);
                batch->nput++;
            }
        }
    }
}

//  After the writer: ACK what the commit made durable and wake the fetches
//  parked on it. A failed batch stored nothing: its results are answered
//  with the failure's code (IO, DISK_FULL), so their workers keep them and
//  resend.
static void
s_acknowledge (jr_ingester_t *self, jr_batch_t *batch)
{
    if (batch->rc)
        jr_counter_inc (self->stats.batchfail);
    else {
        jr_counter_add (self->stats.stored, batch->nstored);
        jr_counter_add (self->stats.dup, batch->ndup);
        jr_counter_add (self->stats.stale, batch->nstale);
        jr_counter_add (self->stats.commits, batch->nput > 0);
    }
    for (size_t e = 0; e < batch->nentries; e++) {
        jr_entry_t *entry = batch->entries[e];
        jr_msg_t *msg = entry->msg;
        if (msg->type != JR_MSG_RESULT)
            continue;
        jr_msg_reset (self->reply, JR_MSG_ACK);
        for (uint32_t i = 0; i < msg->njobs; i++) {
            int32_t code = entry->codes[i] == JR_STORED ? 0 : entry->codes[i];
            if (batch->rc && code != JR_EINVALID)
                code = batch->rc;
            if (code == JR_EINVALID)
                jr_counter_inc (self->stats.invalid);
            jr_msg_add_mark (self->reply, msg->jobs[i].id, msg->jobs[i].attempt, code);
        }
        s_send (self, self->reply, zmq_msg_data (&entry->peer), zmq_msg_size (&entry->peer));
        jr_counter_inc (self->stats.acks);
    }
    //  Backwards, so when one batch stored two attempts of an id, the later
    //  one, which is the row that stays, decides whether waiters wake.
    if (self->nwaiters && batch->nstored && !batch->rc)
        for (size_t e = batch->nentries; e-- > 0;) {
            jr_entry_t *entry = batch->entries[e];
            if (entry->msg->type != JR_MSG_RESULT)
                continue;
            for (uint32_t i = entry->msg->njobs; i-- > 0;)
                if (entry->codes[i] == JR_STORED)
                    s_notify (self, &entry->msg->jobs[i]);
        }
}

//  Size the duplicate filter for a FETCH of n ids and empty it.
static size_t
s_seen_reset (jr_ingester_t *self, uint32_t n)
{
    size_t size = 16;
    while (size < 2 * (size_t)n)
        size *= 2;
    if (self->cap_seen < size) {
        free (self->seen);
        self->seen = malloc (size * sizeof *self->seen);
        assert (self->seen);
        self->cap_seen = size;
    }
    memset (self->seen, 0xff, size * sizeof *self->seen);
    return size - 1;
}

//  Whether mark i of a FETCH names an id an earlier mark named; if not, it
//  is remembered. A repeated id is answered once.
static bool
s_seen_before (jr_ingester_t *self, const jr_msg_t *msg, uint32_t i, size_t mask)
{
    const uint8_t *id = msg->marks[i].id;
    for (size_t h = s_id_hash (id) & mask;; h = (h + 1) & mask) {
        uint32_t j = self->seen[h];
        if (j == UINT32_MAX) {
            self->seen[h] = i;
            return false;
        }
        if (memcmp (msg->marks[j].id, id, JR_ID_SIZE) == 0)
            return true;
    }
}

//  The stored result of an id for an answer that has spent this much:
//  0 and a copy the caller owns, JR_ENOT_FOUND (also for a job to be retried
//  when the client may wait: it waits for the final result), JR_ETOOLARGE
//  when it does not fit the budget, or a lookup error.
static int
s_lookup (jr_ingester_t *self, const uint8_t *id, bool may_wait, size_t spent, jr_job_t **job_p)
{
    *job_p = NULL;
    int rc = jr_sink_get (self->sink, id, job_p);
    if (rc == 0 && may_wait && !jr_state_ends_wait ((*job_p)->state))
        rc = JR_ENOT_FOUND;
    else if (rc == 0 && !s_fits (self, spent, *job_p))
        rc = JR_ETOOLARGE;
    if (rc && rc != JR_ENOT_FOUND && rc != JR_ETOOLARGE)
        jr_error ("code=%s error=\"%s\": lookup failed", jr_errname (rc),
                  jr_sink_errmsg (self->sink));
    if (rc)
        jr_job_destroy (job_p);
    return rc;
}

//  Answer a FETCH at once with what is stored; park the rest if it may wait.
//  Each distinct id gets one job or one mark; once the answer's byte budget
//  is spent, the ids left are marked TOO_LARGE without a lookup.
static void
s_fetch (jr_ingester_t *self, jr_entry_t *entry)
{
    const jr_msg_t *msg = entry->msg;
    const void *peer = zmq_msg_data (&entry->peer);
    size_t peer_size = zmq_msg_size (&entry->peer);
    jr_msg_t *reply = self->reply;
    jr_msg_reset (reply, JR_MSG_RESULTS);
    reply->tag = msg->tag;
    size_t reply_size = 0, spent = 0;
    bool full = false;
    fetch_t *fetch = NULL;
    bool refused = false;
    jr_counter_inc (self->stats.fetches);
    if (self->cap_found < msg->nmarks) {
        self->found = realloc (self->found, msg->nmarks * sizeof *self->found);
        assert (self->found);
        self->cap_found = msg->nmarks;
    }
    self->nfound = 0;
    size_t mask = s_seen_reset (self, msg->nmarks);
    for (uint32_t i = 0; i < msg->nmarks; i++) {
        const uint8_t *id = msg->marks[i].id;
        if (s_seen_before (self, msg, i, mask))
            continue;
        if (full) {
            jr_msg_add_mark (reply, id, 0, JR_ETOOLARGE);
            continue;
        }
        jr_job_t *job;
        int rc = s_lookup (self, id, msg->wait_ms > 0, spent, &job);
        full = rc == JR_ETOOLARGE;
        if (rc == 0) {
            self->found[self->nfound++] = job;
            spent += s_job_size (job);
            s_results_add (self, reply, &reply_size, peer, peer_size, job);
            jr_counter_inc (self->stats.served);
        }
        else if (rc != JR_ENOT_FOUND)
            jr_msg_add_mark (reply, id, 0, rc);  //  TOO_LARGE, or the lookup failed
        else if (msg->wait_ms == 0 || self->nwaiters >= self->max_waiters) {
            refused |= msg->wait_ms > 0;
            jr_msg_add_mark (reply, id, 0, JR_ENOT_FOUND);
        }
        else {
            if (!fetch)
                fetch =
                    s_fetch_new (self, peer, peer_size, msg->tag,
                                 jr_clock_mono_us () + (int64_t)msg->wait_ms * 1000, msg->nmarks);
            s_park (self, fetch, id);
            jr_msg_add_mark (reply, id, 0, 0);
        }
    }
    if (fetch)
        fetch->spent = spent;
    if (refused)
        jr_warn ("waiters=%zu: too many parked ids, answered NOT_FOUND at once", self->nwaiters);
    s_send (self, reply, peer, peer_size);
    for (size_t i = 0; i < self->nfound; i++)
        jr_job_destroy (&self->found[i]);
    self->nfound = 0;
}

//  A batch is finished once stored: ACKs, then its FETCHes, which so see
//  its results and never one that could still be rolled back.
static void
s_finish (jr_ingester_t *self, jr_batch_t *batch)
{
    self->turn++;
    s_acknowledge (self, batch);
    for (size_t e = 0; e < batch->nentries; e++)
        if (batch->entries[e]->msg->type == JR_MSG_FETCH)
            s_fetch (self, batch->entries[e]);
    s_flush_dirty (self);
    while (self->nreread)
        jr_job_destroy (&self->reread[--self->nreread]);
    jr_batch_clear (batch);
}

//  While the writer is idle, what was drained goes to it (a batch without
//  results is finished at once); what arrives meanwhile fills the other
//  batch, so under load each transaction carries more results.
static void
s_kick (jr_ingester_t *self)
{
    jr_batch_t *batch = self->filling;
    if (self->writing || batch->nentries == 0)
        return;
    s_prepare (batch);
    if (batch->nput == 0) {
        s_finish (self, batch);
        return;
    }
    jr_writer_submit (self->writer, batch);
    self->writing = batch;
    self->filling = batch == &self->batches[0] ? &self->batches[1] : &self->batches[0];
}

static bool
s_room (const jr_ingester_t *self)
{
    const jr_batch_t *batch = self->filling;
    return batch->nentries < (size_t)self->batch_max && batch->njobs < (size_t)self->batch_max;
}

static void
s_written (jr_ingester_t *self)
{
    jr_batch_t *batch = jr_writer_take (self->writer);
    if (batch) {
        assert (batch == self->writing);
        self->writing = NULL;
        s_finish (self, batch);
    }
}

static void
s_stats (jr_ingester_t *self)
{
    int64_t now = jr_clock_mono_us ();
    if (now < self->next_stats_us)
        return;
    self->next_stats_us = now + S_STATS_US;
    jr_fd_limit_check ();
    jr_budgets_sweep (self->budgets, S_STATS_US);
    jr_gauge_set (self->stats.parked, (int64_t)self->nwaiters);
    jr_auth_counters_update (&self->stats.auth, self->auth);
    char line[1024];
    if (jr_metrics_line (self->metrics, line, sizeof line))
        jr_info ("%s: stats", line);
}

//  Sleep no longer than the next fetch deadline (and never over S_POLL_MS).
static long
s_timeout_ms (jr_ingester_t *self)
{
    if (self->next_expiry_us == INT64_MAX)
        return S_POLL_MS;
    int64_t left = (self->next_expiry_us - jr_clock_mono_us () + 999) / 1000;
    return left < 0 ? 0 : left > S_POLL_MS ? S_POLL_MS : (long)left;
}

int
jr_ingester_run (jr_ingester_t *self)
{
    assert (self);
    zmq_pollitem_t items[] = { { self->handle, 0, ZMQ_POLLIN, 0 },
                               { NULL, jr_writer_fd (self->writer), ZMQ_POLLIN, 0 } };
    int rc = 0;
    //  SIGHUP (systemctl reload) reads the allowed keys again, and no longer
    //  ends the process. Ready: the socket is bound, the database open.
    jr_notify_catch_reload ();
    unsigned reloads = jr_notify_reloads ();
    jr_notify_ready ("serving");
    while (!zsys_interrupted && !atomic_load (&self->stopping)) {
        if (reloads != jr_notify_reloads ()) {
            reloads = jr_notify_reloads ();
            jr_notify_reloading ();
            jr_info ("bind=%s: reload asked (SIGHUP)", self->endpoint);
            jr_auth_reload (self->auth);
            jr_notify_ready ("serving");
        }
        //  A full batch stops the reading: the socket's queue, then the
        //  workers' backlogs, hold the rest.
        items[0].events = s_room (self) ? ZMQ_POLLIN : 0;
        int n = zmq_poll (items, 2, s_timeout_ms (self));
        if (n == -1) {
            if (zmq_errno () == EINTR)
                continue;  //  a signal: the loop condition decides
            jr_error ("error=\"%s\": poll failed", zmq_strerror (zmq_errno ()));
            rc = JR_EIO;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN)
            s_written (self);
        if (items[0].revents & ZMQ_POLLIN)
            while (s_room (self) && s_recv_one (self))
                ;
        s_kick (self);
        s_expire (self);
        s_stats (self);
    }
    jr_notify_stopping ();
    //  What is being stored gets its ACKs; what was drained but not stored
    //  is dropped unACKed and the workers resend it to the next ingester.
    if (self->writing) {
        jr_batch_t *batch = jr_writer_wait (self->writer);
        self->writing = NULL;
        if (batch)
            s_finish (self, batch);
    }
    jr_info ("bind=%s parked=%zu: stopping", self->endpoint, self->nwaiters);
    return rc;
}
