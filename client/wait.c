/*  wait.c - results from the ingester: one fetched now, or many waited for with parked FETCHes  */
#include "client/client.h"

#define JR_CLIENT_FETCH_IDS   10000  //  ids in one FETCH
#define JR_CLIENT_FETCH_WAIT  30000  //  longest wait asked of the ingester, ms
#define JR_CLIENT_ERROR_PAUSE 200    //  pause before re-FETCH after an ERROR, ms

int
jr_client_result (jr_client_t *self, const uint8_t id[JR_ID_SIZE], jr_job_t **result_p)
{
    assert (self);
    assert (id);
    assert (result_p);
    *result_p = NULL;
    if (!jr_client_ingester (self))
        return JR_EINVALID;
    jr_msg_reset (self->out, JR_MSG_FETCH);
    self->out->wait_ms = 0;
    jr_msg_add_mark (self->out, id, 0, 0);
    zmq_msg_t frame;
    int rc = jr_client_request (self, &self->ingester, &frame);
    if (rc)
        return rc;
    rc = JR_ENOT_FOUND;
    if (self->in->type != JR_MSG_RESULTS)
        rc = JR_EMALFORMED;
    for (uint32_t i = 0; i < self->in->njobs && rc == JR_ENOT_FOUND; i++)
        if (memcmp (self->in->jobs[i].id, id, JR_ID_SIZE) == 0) {
            *result_p = jr_job_dup (&self->in->jobs[i]);
            rc = *result_p ? 0 : JR_ENOMEM;
        }
    zmq_msg_close (&frame);
    return rc;
}

//  wait_many keeps each distinct id once, found through an open hash.
//  ID_AGAIN: stored, but past the byte budget of the ingester's answer.
enum { ID_WAITING, ID_MISSING, ID_AGAIN, ID_DONE };

typedef struct {
    uint64_t tag;      //  tag of the current FETCH; 0 = finished
    uint32_t *ids;     //  indices into the distinct ids
    uint32_t count;    //  ids this FETCH asked for
    uint32_t waiting;  //  of those, neither arrived nor reported missing
    bool heard;        //  the ingester answered this tag at least once
    bool paused;       //  after an ERROR: ask again when the timer ends
    bool fed;          //  this round brought at least one result
    int sends;         //  sends of this tag
    uint32_t wait_ms;  //  the wait asked of the ingester
    int64_t sent_us;   //  when last sent
    int64_t timer_us;  //  resend if unheard, else end the round, at this time
} fetch_t;

typedef struct {
    const uint8_t **ids;  //  distinct ids (borrowed from the caller)
    uint8_t *state;       //  ID_WAITING, ID_MISSING or ID_DONE, per id
    uint32_t *fetch_of;   //  which fetch_t asks for each id
    uint32_t count;       //  distinct ids
    uint32_t *slots;      //  hash table of indices, UINT32_MAX = empty
    size_t mask;          //  table size - 1
} idset_t;

static size_t
s_id_hash (const uint8_t *id, size_t mask)
{
    uint64_t a, b;
    memcpy (&a, id, 8);
    memcpy (&b, id + 8, 8);
    return (size_t)(((a ^ b) * 0x9e3779b97f4a7c15ull) >> 17) & mask;
}

static uint32_t
s_idset_find (const idset_t *set, const uint8_t *id)
{
    for (size_t h = s_id_hash (id, set->mask);; h = (h + 1) & set->mask) {
        uint32_t i = set->slots[h];
        if (i == UINT32_MAX || memcmp (set->ids[i], id, JR_ID_SIZE) == 0)
            return i;
    }
}

static void
s_idset_init (idset_t *set, const uint8_t (*ids)[JR_ID_SIZE], size_t n)
{
    size_t size = 16;
    while (size < 2 * n)
        size *= 2;
    set->mask = size - 1;
    set->slots = malloc (size * sizeof *set->slots);
    set->ids = malloc ((n ? n : 1) * sizeof *set->ids);
    set->state = calloc (n ? n : 1, 1);
    set->fetch_of = malloc ((n ? n : 1) * sizeof *set->fetch_of);
    assert (set->slots && set->ids && set->state && set->fetch_of);
    memset (set->slots, 0xff, size * sizeof *set->slots);
    set->count = 0;
    for (size_t i = 0; i < n; i++) {
        size_t h = s_id_hash (ids[i], set->mask);
        while (set->slots[h] != UINT32_MAX && memcmp (set->ids[set->slots[h]], ids[i], JR_ID_SIZE))
            h = (h + 1) & set->mask;
        if (set->slots[h] == UINT32_MAX) {
            set->ids[set->count] = ids[i];
            set->slots[h] = set->count++;
        }
    }
}

static void
s_idset_free (idset_t *set)
{
    free (set->slots);
    free (set->ids);
    free (set->state);
    free (set->fetch_of);
}

//  Milliseconds the ingester may wait now, or -1 once the deadline passed.
static long
s_wait_left (int64_t deadline_us)
{
    if (deadline_us == INT64_MAX)
        return JR_CLIENT_FETCH_WAIT;
    int64_t left = (deadline_us - jr_clock_mono_us ()) / 1000;
    if (left <= 0)
        return -1;
    return left < JR_CLIENT_FETCH_WAIT ? (long)left : JR_CLIENT_FETCH_WAIT;
}

//  Send (or resend, same tag) a FETCH for a fetch's waiting ids.
static void
s_fetch_send (jr_client_t *self, zsock_t *sock, fetch_t *fetch, const idset_t *set, long wait)
{
    jr_msg_reset (self->out, JR_MSG_FETCH);
    self->out->tag = fetch->tag;
    self->out->wait_ms = (uint32_t)(wait < 0 ? 0 : wait);
    for (uint32_t i = 0; i < fetch->count; i++)
        if (set->state[fetch->ids[i]] == ID_WAITING)
            jr_msg_add_mark (self->out, set->ids[fetch->ids[i]], 0, 0);
    fetch->sends++;
    fetch->heard = fetch->paused = fetch->fed = false;
    fetch->wait_ms = self->out->wait_ms;
    fetch->sent_us = jr_clock_mono_us ();
    fetch->timer_us = fetch->sent_us + jr_client_answer_wait_us (self, fetch->sends);
    jr_msg_send (self->out, zsock_resolve (sock), NULL, 0);
}

//  A FETCH round ended: ask again for its missing ids with a new tag, while
//  the deadline allows; past it, only for ids the answer had no room for
//  (TOO_LARGE), as long as each round brings results. Else it is finished.
static void
s_fetch_round (jr_client_t *self, zsock_t *sock, fetch_t *fetch, idset_t *set, int64_t deadline_us)
{
    long wait = s_wait_left (deadline_us);
    bool late = wait < 0;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < fetch->count; i++) {
        uint32_t id = fetch->ids[i];
        if (set->state[id] == ID_DONE || (late && (set->state[id] != ID_AGAIN || !fetch->fed)))
            continue;
        set->state[id] = ID_WAITING;
        fetch->ids[kept++] = id;
    }
    fetch->count = fetch->waiting = kept;
    if (kept == 0) {
        fetch->tag = 0;
        return;
    }
    fetch->tag = ++self->tag;
    fetch->sends = 0;
    s_fetch_send (self, sock, fetch, set, wait);
}

static fetch_t *
s_fetch_by_tag (fetch_t *fetches, size_t nfetches, uint64_t tag)
{
    for (size_t f = 0; f < nfetches; f++)
        if (fetches[f].tag && fetches[f].tag == tag)
            return &fetches[f];
    return NULL;
}

//  One jr_client_wait_many in progress.
typedef struct {
    jr_client_t *client;
    zsock_t *sock;        //  the ingester's; NULL if it did not connect
    idset_t set;          //  the distinct ids and where each stands
    fetch_t *fetches;     //  one per JR_CLIENT_FETCH_IDS ids
    size_t nfetches;      //  of them
    uint32_t *order;      //  the ids of every fetch, one slice each
    uint32_t left;        //  ids whose result has not arrived
    int64_t deadline_us;  //  monotonic; INT64_MAX = forever
    jr_result_fn *fn;     //  the caller's, per result
    void *arg;            //  for fn
    bool stopped;         //  fn said stop
    bool silent;          //  a FETCH went unanswered to the deadline
} waiter_t;

//  Split the distinct ids into FETCHes and send them all.
static void
s_waiter_start (waiter_t *w, jr_client_t *self, const uint8_t (*ids)[JR_ID_SIZE], size_t n,
                int timeout_ms)
{
    w->client = self;
    s_idset_init (&w->set, ids, n);
    w->sock = jr_client_ingester (self);
    w->deadline_us = timeout_ms < 0 ? INT64_MAX : jr_clock_mono_us () + (int64_t)timeout_ms * 1000;
    w->nfetches = (w->set.count + JR_CLIENT_FETCH_IDS - 1) / JR_CLIENT_FETCH_IDS;
    w->fetches = calloc (w->nfetches ? w->nfetches : 1, sizeof *w->fetches);
    w->order = malloc ((w->set.count ? w->set.count : 1) * sizeof *w->order);
    assert (w->fetches && w->order);
    for (uint32_t i = 0; i < w->set.count; i++) {
        w->order[i] = i;
        w->set.fetch_of[i] = i / JR_CLIENT_FETCH_IDS;
    }
    long wait = s_wait_left (w->deadline_us);
    for (size_t f = 0; f < w->nfetches && w->sock; f++) {
        fetch_t *fetch = &w->fetches[f];
        fetch->ids = w->order + f * JR_CLIENT_FETCH_IDS;
        fetch->count = fetch->waiting =
            (uint32_t)(f + 1 < w->nfetches ? JR_CLIENT_FETCH_IDS
                                           : w->set.count - f * JR_CLIENT_FETCH_IDS);
        fetch->tag = ++self->tag;
        s_fetch_send (self, w->sock, fetch, &w->set, wait);  //  even at timeout 0: one look
    }
    w->left = w->set.count;
}

static void
s_waiter_free (waiter_t *w)
{
    free (w->fetches);
    free (w->order);
    s_idset_free (&w->set);
}

//  The earliest timer of a fetch still going; INT64_MAX if none is.
static int64_t
s_next_timer (const waiter_t *w)
{
    int64_t next = INT64_MAX;
    for (size_t f = 0; f < w->nfetches; f++)
        if (w->fetches[f].tag && w->fetches[f].timer_us < next)
            next = w->fetches[f].timer_us;
    return next;
}

//  A RESULTS reply: each result counts whichever FETCH it answers; the
//  marks of the FETCH it answers (fetch, may be NULL) end the round of ids
//  reported missing or too large.
static void
s_on_results (waiter_t *w, fetch_t *fetch, const jr_msg_t *in)
{
    idset_t *set = &w->set;
    for (uint32_t j = 0; j < in->njobs && !w->stopped; j++) {
        uint32_t i = s_idset_find (set, in->jobs[j].id);
        if (i == UINT32_MAX || set->state[i] == ID_DONE)
            continue;
        if (set->state[i] == ID_WAITING)
            w->fetches[set->fetch_of[i]].waiting--;
        w->fetches[set->fetch_of[i]].fed = true;
        set->state[i] = ID_DONE;
        w->left--;
        if (w->fn && !w->fn (&in->jobs[j], w->arg))
            w->stopped = true;
    }
    if (!fetch || fetch->paused)
        return;
    if (!fetch->heard)  //  the rest must come when the wait ends
        fetch->timer_us = fetch->sent_us + (int64_t)fetch->wait_ms * 1000
                          + jr_client_answer_wait_us (w->client, 1);
    fetch->heard = true;
    for (uint32_t m = 0; m < in->nmarks; m++) {
        uint32_t i = s_idset_find (set, in->marks[m].id);
        //  code 0 = pending; anything else ends this round for it
        if (i == UINT32_MAX || in->marks[m].code == 0 || set->state[i] != ID_WAITING
            || &w->fetches[set->fetch_of[i]] != fetch)
            continue;
        set->state[i] = in->marks[m].code == JR_ETOOLARGE ? ID_AGAIN : ID_MISSING;
        fetch->waiting--;
    }
}

//  An ERROR reply to a FETCH: a passing trouble pauses it, then it asks
//  again; any other code is returned, as the ingester will refuse this
//  FETCH every time.
static int
s_on_error (waiter_t *w, fetch_t *fetch, const jr_msg_t *in)
{
    int code = jr_client_error_code (in);
    if (code != JR_EQUEUE_FULL && code != JR_EINTERNAL && code != JR_EIO && code != JR_EDISK_FULL)
        return code;
    for (uint32_t i = 0; i < fetch->count; i++)
        if (w->set.state[fetch->ids[i]] == ID_WAITING)
            w->set.state[fetch->ids[i]] = ID_MISSING;
    fetch->waiting = 0;
    fetch->heard = fetch->paused = true;
    fetch->timer_us = jr_clock_mono_us () + JR_CLIENT_ERROR_PAUSE * 1000;
    return 0;
}

//  Take every reply queued; then rounds that ended (all in or reported
//  missing) go again. Returns 0, or the code of an ERROR that ends the wait.
static int
s_drain (waiter_t *w)
{
    jr_client_t *self = w->client;
    zmq_msg_t frame;
    int rc;
    while (!w->stopped && (rc = jr_client_recv (self, w->sock, &frame)) != JR_ETIMEOUT) {
        if (rc)
            continue;
        fetch_t *fetch = s_fetch_by_tag (w->fetches, w->nfetches, self->in->tag);
        if (self->in->type == JR_MSG_RESULTS)
            s_on_results (w, fetch, self->in);
        else if (self->in->type == JR_MSG_ERROR && fetch)
            rc = s_on_error (w, fetch, self->in);
        zmq_msg_close (&frame);
        if (rc)
            return rc;
    }
    for (size_t f = 0; f < w->nfetches && !w->stopped; f++) {
        fetch_t *fetch = &w->fetches[f];
        if (fetch->tag && fetch->heard && !fetch->paused && fetch->waiting == 0)
            s_fetch_round (self, w->sock, fetch, &w->set, w->deadline_us);
    }
    return 0;
}

//  Fetches whose timer ran out: a round that was heard goes again (the
//  ingester forgot us, or an ERROR pause ended); an unanswered FETCH is
//  resent while the deadline allows, else given up, having had one
//  answer-wait past it.
static void
s_on_timers (waiter_t *w)
{
    int64_t now = jr_clock_mono_us ();
    for (size_t f = 0; f < w->nfetches && !w->stopped; f++) {
        fetch_t *fetch = &w->fetches[f];
        if (!fetch->tag || now < fetch->timer_us)
            continue;
        if (fetch->heard) {
            s_fetch_round (w->client, w->sock, fetch, &w->set, w->deadline_us);
            continue;
        }
        long again = s_wait_left (w->deadline_us);
        if (again >= 0)
            s_fetch_send (w->client, w->sock, fetch, &w->set, again);
        else {
            fetch->tag = 0;
            w->silent = true;
        }
    }
}

//  A new connection: whatever the old ingester had parked is lost, so
//  every FETCH still going asks again now.
static void
s_on_reconnect (waiter_t *w)
{
    jr_client_t *self = w->client;
    if (self->ingester.watch && zsock_events (self->ingester.watch) & ZMQ_POLLIN
        && jr_client_reconnected (self))
        for (size_t f = 0; f < w->nfetches; f++)
            if (w->fetches[f].tag)
                w->fetches[f].timer_us = jr_clock_mono_us ();
}

int
jr_client_wait_many (jr_client_t *self, const uint8_t (*ids)[JR_ID_SIZE], size_t n, int timeout_ms,
                     jr_result_fn *fn, void *arg)
{
    assert (self);
    assert (ids || n == 0);
    assert (n < UINT32_MAX);
    waiter_t w = { .fn = fn, .arg = arg };
    s_waiter_start (&w, self, ids, n, timeout_ms);
    bool cancelled = false;
    while (w.sock && w.left > 0 && !w.stopped) {
        int64_t next = s_next_timer (&w);
        if (next == INT64_MAX)
            break;  //  every round ended: the rest did not come in time
        s_on_reconnect (&w);
        int failed = jr_client_link_failed (self, &self->ingester);
        if (failed) {
            s_waiter_free (&w);
            return failed;
        }
        if (jr_client_poll (w.sock, self->ingester.watch, next)) {
            int rc = s_drain (&w);
            if (rc) {
                s_waiter_free (&w);
                return rc;
            }
        }
        if (zsys_interrupted) {
            cancelled = true;
            break;
        }
        s_on_timers (&w);
    }
    if (w.silent)
        jr_link_close (&self->ingester);
    s_waiter_free (&w);
    if (!w.sock)
        return JR_EINVALID;
    if (cancelled)
        return JR_ECANCELLED;
    return w.stopped || w.left == 0 ? 0 : JR_ETIMEOUT;
}

static bool
s_keep_first (const jr_job_t *job, void *arg)
{
    jr_job_t **result_p = arg;
    *result_p = jr_job_dup (job);
    return false;
}

int
jr_client_wait (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int timeout_ms,
                jr_job_t **result_p)
{
    assert (result_p);
    *result_p = NULL;
    int rc = jr_client_wait_many (self, (const uint8_t (*)[JR_ID_SIZE])id, 1, timeout_ms,
                                  s_keep_first, result_p);
    if (rc == 0 && !*result_p)
        rc = JR_ENOMEM;
    return rc;
}
