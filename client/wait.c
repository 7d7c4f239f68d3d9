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

int
jr_client_wait_many (jr_client_t *self, const uint8_t (*ids)[JR_ID_SIZE], size_t n, int timeout_ms,
                     jr_result_fn *fn, void *arg)
{
    assert (self);
    assert (ids || n == 0);
    assert (n < UINT32_MAX);
    idset_t set;
    s_idset_init (&set, ids, n);
    zsock_t *sock = jr_client_ingester (self);
    int64_t deadline_us =
        timeout_ms < 0 ? INT64_MAX : jr_clock_mono_us () + (int64_t)timeout_ms * 1000;
    size_t nfetches = (set.count + JR_CLIENT_FETCH_IDS - 1) / JR_CLIENT_FETCH_IDS;
    fetch_t *fetches = calloc (nfetches ? nfetches : 1, sizeof *fetches);
    uint32_t *order = malloc ((set.count ? set.count : 1) * sizeof *order);
    assert (fetches && order);
    for (uint32_t i = 0; i < set.count; i++) {
        order[i] = i;
        set.fetch_of[i] = i / JR_CLIENT_FETCH_IDS;
    }
    long wait = s_wait_left (deadline_us);
    for (size_t f = 0; f < nfetches && sock; f++) {
        fetch_t *fetch = &fetches[f];
        fetch->ids = order + f * JR_CLIENT_FETCH_IDS;
        fetch->count = fetch->waiting =
            (uint32_t)(f + 1 < nfetches ? JR_CLIENT_FETCH_IDS
                                        : set.count - f * JR_CLIENT_FETCH_IDS);
        fetch->tag = ++self->tag;
        s_fetch_send (self, sock, fetch, &set, wait);  //  even at timeout 0: one look
    }
    uint32_t left = set.count;
    bool stopped = false, cancelled = false, silent = false;
    while (sock && left > 0 && !stopped) {
        int64_t next = INT64_MAX;
        for (size_t f = 0; f < nfetches; f++)
            if (fetches[f].tag && fetches[f].timer_us < next)
                next = fetches[f].timer_us;
        if (next == INT64_MAX)
            break;  //  every round ended: the rest did not come in time
        //  A new connection: whatever the old ingester had parked is lost.
        if (self->monitor && zsock_events (self->monitor) & ZMQ_POLLIN
            && jr_client_reconnected (self))
            for (size_t f = 0; f < nfetches; f++)
                if (fetches[f].tag)
                    fetches[f].timer_us = jr_clock_mono_us ();
        if (jr_client_poll (sock, self->monitor, next)) {
            zmq_msg_t frame;
            int rc;
            while (!stopped && (rc = jr_client_recv (self, sock, &frame)) != JR_ETIMEOUT) {
                jr_msg_t *in = self->in;
                if (rc)
                    continue;
                fetch_t *fetch = s_fetch_by_tag (fetches, nfetches, in->tag);
                if (in->type == JR_MSG_RESULTS) {
                    //  A result is a result, whichever FETCH it answers.
                    for (uint32_t j = 0; j < in->njobs && !stopped; j++) {
                        uint32_t i = s_idset_find (&set, in->jobs[j].id);
                        if (i == UINT32_MAX || set.state[i] == ID_DONE)
                            continue;
                        if (set.state[i] == ID_WAITING)
                            fetches[set.fetch_of[i]].waiting--;
                        fetches[set.fetch_of[i]].fed = true;
                        set.state[i] = ID_DONE;
                        left--;
                        if (fn && !fn (&in->jobs[j], arg))
                            stopped = true;
                    }
                    if (fetch && !fetch->paused) {
                        if (!fetch->heard)  //  the rest must come when the wait ends
                            fetch->timer_us = fetch->sent_us + (int64_t)fetch->wait_ms * 1000
                                              + jr_client_answer_wait_us (self, 1);
                        fetch->heard = true;
                        for (uint32_t m = 0; m < in->nmarks; m++) {
                            uint32_t i = s_idset_find (&set, in->marks[m].id);
                            //  code 0 = pending; anything else ends this round for it
                            if (i == UINT32_MAX || in->marks[m].code == 0
                                || set.state[i] != ID_WAITING || &fetches[set.fetch_of[i]] != fetch)
                                continue;
                            set.state[i] =
                                in->marks[m].code == JR_ETOOLARGE ? ID_AGAIN : ID_MISSING;
                            fetch->waiting--;
                        }
                    }
                }
                else if (in->type == JR_MSG_ERROR && fetch) {
                    int code = jr_client_error_code (in);
                    if (code != JR_EQUEUE_FULL && code != JR_EINTERNAL && code != JR_EIO
                        && code != JR_EDISK_FULL) {
                        //  The ingester will refuse this FETCH every time.
                        zmq_msg_close (&frame);
                        free (fetches);
                        free (order);
                        s_idset_free (&set);
                        return code;
                    }
                    for (uint32_t i = 0; i < fetch->count; i++)
                        if (set.state[fetch->ids[i]] == ID_WAITING)
                            set.state[fetch->ids[i]] = ID_MISSING;
                    fetch->waiting = 0;
                    fetch->heard = fetch->paused = true;
                    fetch->timer_us = jr_clock_mono_us () + JR_CLIENT_ERROR_PAUSE * 1000;
                }
                zmq_msg_close (&frame);
            }
            //  Rounds that ended now (all in or reported missing) go again.
            for (size_t f = 0; f < nfetches && !stopped; f++)
                if (fetches[f].tag && fetches[f].heard && !fetches[f].paused
                    && fetches[f].waiting == 0)
                    s_fetch_round (self, sock, &fetches[f], &set, deadline_us);
        }
        if (zsys_interrupted) {
            cancelled = true;
            break;
        }
        int64_t now = jr_clock_mono_us ();
        for (size_t f = 0; f < nfetches && !stopped; f++) {
            fetch_t *fetch = &fetches[f];
            if (!fetch->tag || now < fetch->timer_us)
                continue;
            if (fetch->heard)  //  the ingester forgot us, or an ERROR pause ended
                s_fetch_round (self, sock, fetch, &set, deadline_us);
            else {
                //  Unanswered: ask again while the deadline allows. Past it
                //  we stop, having given the ingester one answer-wait.
                long again = s_wait_left (deadline_us);
                if (again >= 0)
                    s_fetch_send (self, sock, fetch, &set, again);
                else {
                    fetch->tag = 0;
                    silent = true;
                }
            }
        }
    }
    if (silent)
        jr_client_ingester_close (self);
    free (fetches);
    free (order);
    s_idset_free (&set);
    if (!sock)
        return JR_EINVALID;
    if (cancelled)
        return JR_ECANCELLED;
    return stopped || left == 0 ? 0 : JR_ETIMEOUT;
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
