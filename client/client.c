/*  client.c - libjr client: submit, status, cancel, retry, list at the broker; results from the ingester  */
#include "common/clock.h"
#include "common/mp.h"
#include "proto/proto.h"
#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>

#define JR_CLIENT_TIMEOUT     5000       //  default wait for an answer, ms
#define JR_CLIENT_RESENDS     3          //  resends of an unanswered request
#define JR_CLIENT_BACKOFF     100        //  extra wait before resend k is 100 * (2^k - 1) ms
#define JR_CLIENT_BATCH_JOBS  1000       //  jobs in one SUBMIT
#define JR_CLIENT_BATCH_BYTES (4 << 20)  //  encoded size of one SUBMIT, roughly
#define JR_CLIENT_IN_FLIGHT   8          //  SUBMITs awaiting ACCEPTED at once
#define JR_CLIENT_FETCH_IDS   10000      //  ids in one FETCH
#define JR_CLIENT_FETCH_WAIT  30000      //  longest wait asked of the ingester, ms
#define JR_CLIENT_ERROR_PAUSE 200        //  pause before re-FETCH after an ERROR, ms
#define JR_PENDING            1          //  per-job code while unanswered (codes are <= 0)

struct _jr_client_t {
    char *broker_ep;    //  where SUBMIT and STATUS go
    char *ingester_ep;  //  where FETCH goes
    zsock_t *broker;    //  DEALER, connected on first use
    zsock_t *ingester;  //  DEALER, connected on first use
    zsock_t *monitor;   //  PAIR: the ingester socket's connection events
    int connects;       //  connections made by the ingester socket so far
    int timeout_ms;     //  wait for an answer before a resend
    uint64_t tag;       //  last request tag used
    jr_msg_t *out;      //  request being built
    jr_msg_t *in;       //  last reply decoded
};

//  -------------------------------------------------------------------------
//  Endpoints and sockets

//  A syntax check only, so a typo fails at jr_client_new and not at the
//  first request; libzmq still has the last word when we connect.
static bool
s_endpoint_ok (const char *endpoint)
{
    static const char *transports[] = { "tcp",  "ipc", "inproc", "ws",   "wss", "tipc",
                                        "vmci", "pgm", "epgm",   "norm", "udp" };
    const char *sep = strstr (endpoint, "://");
    if (!sep || sep == endpoint || sep[3] == 0 || strlen (endpoint) > 1024)
        return false;
    size_t tlen = (size_t)(sep - endpoint);
    bool known = false;
    for (size_t i = 0; i < sizeof transports / sizeof transports[0]; i++)
        if (strlen (transports[i]) == tlen && memcmp (transports[i], endpoint, tlen) == 0)
            known = true;
    if (!known)
        return false;
    if (tlen == 3 && memcmp (endpoint, "tcp", 3) == 0) {
        //  host:port, port numeric (a client connects, it never binds "*")
        const char *addr = sep + 3;
        const char *colon = strrchr (addr, ':');
        if (!colon || colon == addr || colon[1] == 0 || strlen (colon + 1) > 5)
            return false;
        for (const char *p = colon + 1; *p; p++)
            if (*p < '0' || *p > '9')
                return false;
        long port = strtol (colon + 1, NULL, 10);
        return port > 0 && port <= 65535;
    }
    return true;
}

static zsock_t *
s_connect (const char *endpoint)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock)
        return NULL;
    //  Unsent requests die with the socket: every request is resent on
    //  silence, so nothing relies on linger.
    zsock_set_linger (sock, 0);
    zsock_set_maxmsgsize (sock, JR_MAX_FRAME + 1024);
    //  Notice a dead link in seconds, not at the next TCP timeout.
    zsock_set_heartbeat_ivl (sock, 1000);
    zsock_set_heartbeat_timeout (sock, 3000);
    if (zsock_connect (sock, "%s", endpoint) == -1) {
        zsock_destroy (&sock);
        return NULL;
    }
    return sock;
}

static zsock_t *
s_broker (jr_client_t *self)
{
    if (!self->broker)
        self->broker = s_connect (self->broker_ep);
    return self->broker;
}

//  A restarted ingester has forgotten the FETCHes parked in the old one,
//  so the wait must ask again when the connection is made anew: libzmq
//  tells us through a socket monitor.
static zsock_t *
s_ingester (jr_client_t *self)
{
    if (self->ingester)
        return self->ingester;
    self->ingester = s_connect (self->ingester_ep);
    if (!self->ingester)
        return NULL;
    //  A monitor left from a socket s_request dropped watches nothing now.
    zsock_destroy (&self->monitor);
    static atomic_uint monitors;
    char endpoint[80];
    snprintf (endpoint, sizeof endpoint, "inproc://jr-client-monitor-%p-%u", (void *)self,
              atomic_fetch_add (&monitors, 1));
    self->connects = 0;
    if (zmq_socket_monitor (zsock_resolve (self->ingester), endpoint, ZMQ_EVENT_CONNECTED) == 0)
        self->monitor = zsock_new_pair (endpoint);
    return self->ingester;
}

//  Read the monitor's events; true if the ingester socket connected again
//  (not the first time).
static bool
s_reconnected (jr_client_t *self)
{
    bool again = false;
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    while (self->monitor
           && zmq_msg_recv (&frame, zsock_resolve (self->monitor), ZMQ_DONTWAIT) != -1) {
        if (!zmq_msg_more (&frame))  //  the event is two frames: count at the second
            again = ++self->connects > 1 || again;
    }
    zmq_msg_close (&frame);
    return again;
}

static void
s_ingester_close (jr_client_t *self)
{
    if (self->ingester)
        zmq_socket_monitor (zsock_resolve (self->ingester), NULL, 0);
    zsock_destroy (&self->monitor);
    zsock_destroy (&self->ingester);
}

//  czmq sets itself up on the first socket, and that is not thread-safe:
//  clients made at once on several threads would race in zsys_init.
static pthread_once_t s_zsys_once = PTHREAD_ONCE_INIT;

static void
s_zsys_init (void)
{
    zsys_init ();
}

jr_client_t *
jr_client_new (const char *broker, const char *ingester)
{
    pthread_once (&s_zsys_once, s_zsys_init);
    if (!broker)
        broker = getenv ("JR_BROKER");
    if (!broker || !*broker)
        broker = JR_DEFAULT_BROKER;
    if (!ingester)
        ingester = getenv ("JR_INGESTER");
    if (!ingester || !*ingester)
        ingester = JR_DEFAULT_INGESTER;
    if (!s_endpoint_ok (broker) || !s_endpoint_ok (ingester))
        return NULL;
    jr_client_t *self = calloc (1, sizeof *self);
    assert (self);
    self->broker_ep = strdup (broker);
    self->ingester_ep = strdup (ingester);
    assert (self->broker_ep && self->ingester_ep);
    self->timeout_ms = JR_CLIENT_TIMEOUT;
    self->out = jr_msg_new ();
    self->in = jr_msg_new ();
    return self;
}

void
jr_client_destroy (jr_client_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        jr_client_t *self = *self_p;
        zsock_destroy (&self->broker);
        s_ingester_close (self);
        jr_msg_destroy (&self->out);
        jr_msg_destroy (&self->in);
        free (self->broker_ep);
        free (self->ingester_ep);
        free (self);
        *self_p = NULL;
    }
}

void
jr_client_set_timeout (jr_client_t *self, int timeout_ms)
{
    assert (self);
    assert (timeout_ms > 0);
    self->timeout_ms = timeout_ms;
}

//  -------------------------------------------------------------------------
//  Sending and receiving

static int64_t
s_now (void)
{
    return jr_clock_mono_us ();
}

//  Wait until sock is readable or the monotonic time `until`; true if
//  readable.
static bool
s_poll (zsock_t *sock, int64_t until)
{
    int64_t left = until - s_now ();
    if (left < 0)
        left = 0;
    zmq_pollitem_t item = { zsock_resolve (sock), 0, ZMQ_POLLIN, 0 };
    long ms = (long)((left + 999) / 1000);
    int rc = zmq_poll (&item, 1, ms > INT_MAX ? INT_MAX : ms);
    return rc > 0 && (item.revents & ZMQ_POLLIN);
}

//  As s_poll, but also wakes when other (may be NULL) is readable; true
//  only if sock is.
static bool
s_poll2 (zsock_t *sock, zsock_t *other, int64_t until)
{
    int64_t left = until - s_now ();
    if (left < 0)
        left = 0;
    zmq_pollitem_t items[] = { { zsock_resolve (sock), 0, ZMQ_POLLIN, 0 },
                               { other ? zsock_resolve (other) : NULL, 0, ZMQ_POLLIN, 0 } };
    long ms = (long)((left + 999) / 1000);
    int rc = zmq_poll (items, other ? 2 : 1, ms > INT_MAX ? INT_MAX : ms);
    return rc > 0 && (items[0].revents & ZMQ_POLLIN);
}

//  Receive one message without blocking into frame and self->in. Returns
//  0, JR_ETIMEOUT when nothing is queued, or a decode error (the message is
//  then dropped: a reply we cannot read is as good as a lost one).
static int
s_recv (jr_client_t *self, zsock_t *sock, zmq_msg_t *frame)
{
    void *handle = zsock_resolve (sock);
    zmq_msg_init (frame);
    if (zmq_msg_recv (frame, handle, ZMQ_DONTWAIT) == -1) {
        zmq_msg_close (frame);
        return JR_ETIMEOUT;
    }
    if (zmq_msg_more (frame)) {
        //  A DEALER reply is one frame: drain the rest and drop it all.
        zmq_msg_t part;
        zmq_msg_init (&part);
        while (zmq_msg_recv (&part, handle, 0) != -1 && zmq_msg_more (&part))
            ;
        zmq_msg_close (&part);
        zmq_msg_close (frame);
        return JR_EMALFORMED;
    }
    int rc = jr_msg_decode (self->in, zmq_msg_data (frame), zmq_msg_size (frame));
    if (rc)
        zmq_msg_close (frame);
    return rc;
}

//  The code an ERROR reply stands for (never 0: the request failed).
static int
s_error_code (const jr_msg_t *msg)
{
    return msg->code < 0 ? msg->code : JR_EINTERNAL;
}

//  How long to wait after the k-th send (1-based) before resending.
static int64_t
s_answer_wait_us (const jr_client_t *self, int sends)
{
    int k = sends < 1 + JR_CLIENT_RESENDS ? sends : 1 + JR_CLIENT_RESENDS;  //  no overflow
    int64_t backoff = (int64_t)JR_CLIENT_BACKOFF * ((1 << (k - 1)) - 1);
    return ((int64_t)self->timeout_ms + backoff) * 1000;
}

//  One request, one reply: sends self->out with a new tag and waits for
//  the reply with that tag, resending on silence. On 0 self->in holds the
//  reply, decoded from frame, which the caller closes. An ERROR reply
//  gives its code, silence JR_ETIMEOUT (and a fresh socket next time, so
//  stale requests queued for an absent peer are dropped).
static int
s_request (jr_client_t *self, zsock_t **sock_p, zmq_msg_t *frame)
{
    zsock_t *sock = *sock_p;
    self->out->tag = ++self->tag;
    for (int sends = 1; sends <= 1 + JR_CLIENT_RESENDS; sends++) {
        int rc = jr_msg_send (self->out, zsock_resolve (sock), NULL, 0);
        if (rc == JR_ETOOLARGE)
            return rc;
        int64_t until = s_now () + s_answer_wait_us (self, sends);
        while (s_poll (sock, until) || s_now () < until) {
            if (zsys_interrupted)
                return JR_ECANCELLED;
            while ((rc = s_recv (self, sock, frame)) != JR_ETIMEOUT) {
                if (rc)
                    continue;  //  undecodable, already dropped
                if (self->in->tag == self->out->tag) {
                    if (self->in->type != JR_MSG_ERROR)
                        return 0;
                    rc = s_error_code (self->in);
                    zmq_msg_close (frame);
                    return rc;
                }
                zmq_msg_close (frame);  //  a late reply to an older request
            }
        }
    }
    zsock_destroy (sock_p);
    return JR_ETIMEOUT;
}

//  -------------------------------------------------------------------------
//  Submit

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
    batch->resend_us = s_now () + s_answer_wait_us (self, batch->sends);
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
                res[batch->jobs[i]] = s_error_code (reply);
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

int
jr_client_submit_many (jr_client_t *self, jr_job_t *jobs, size_t n, int *codes)
{
    assert (self);
    assert (jobs || n == 0);
    int *res = malloc ((n ? n : 1) * sizeof *res);
    assert (res);
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
    batch_t batches[JR_CLIENT_IN_FLIGHT] = { { 0 } };
    for (int b = 0; b < JR_CLIENT_IN_FLIGHT; b++) {
        batches[b].jobs = malloc (JR_CLIENT_BATCH_JOBS * sizeof (size_t));
        assert (batches[b].jobs);
    }
    zsock_t *sock = s_broker (self);
    bool timed_out = false;
    size_t cursor = 0;
    while (sock) {
        //  Keep up to JR_CLIENT_IN_FLIGHT batches on the wire.
        for (int b = 0; b < JR_CLIENT_IN_FLIGHT && cursor < n; b++) {
            batch_t *batch = &batches[b];
            if (batch->tag)
                continue;
            size_t bytes = 0;
            batch->count = 0;
            while (cursor < n && batch->count < JR_CLIENT_BATCH_JOBS) {
                if (res[cursor] != JR_PENDING) {
                    cursor++;
                    continue;
                }
                size_t size = s_job_size (&jobs[cursor]);
                if (batch->count && bytes + size > JR_CLIENT_BATCH_BYTES)
                    break;
                bytes += size;
                batch->jobs[batch->count++] = cursor++;
            }
            if (batch->count == 0)
                break;
            batch->tag = ++self->tag;
            batch->left = batch->count;
            batch->sends = 0;
            s_batch_send (self, sock, batch, jobs, res);
        }
        int64_t next = INT64_MAX;
        for (int b = 0; b < JR_CLIENT_IN_FLIGHT; b++)
            if (batches[b].tag && batches[b].resend_us < next)
                next = batches[b].resend_us;
        if (next == INT64_MAX)
            break;  //  nothing in flight and nothing left to send
        if (s_poll (sock, next)) {
            zmq_msg_t frame;
            int rc;
            while ((rc = s_recv (self, sock, &frame)) != JR_ETIMEOUT) {
                if (rc)
                    continue;
                batch_t *batch = s_batch_by_tag (batches, self->in->tag);
                if (batch && (self->in->type == JR_MSG_ACCEPTED || self->in->type == JR_MSG_ERROR))
                    s_batch_answer (batch, self->in, jobs, res);
                zmq_msg_close (&frame);
            }
        }
        if (zsys_interrupted) {
            for (size_t i = 0; i < n; i++)
                if (res[i] == JR_PENDING)
                    res[i] = JR_ECANCELLED;
            break;
        }
        int64_t now = s_now ();
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
            else  //  same tag, same ids: the broker accepts a job id once
                s_batch_send (self, sock, batch, jobs, res);
        }
    }
    if (!sock)  //  the endpoint did not connect
        for (size_t i = 0; i < n; i++)
            if (res[i] == JR_PENDING)
                res[i] = JR_EINVALID;
    if (timed_out)
        zsock_destroy (&self->broker);
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

//  -------------------------------------------------------------------------
//  Status

//  A request about one id (STATUS, CANCEL, RETRY), answered by STATE: its
//  mark, and the note that comes with it (value 0 and no text when the
//  broker sent none: no progress, or an older broker).
static int
s_one_request (jr_client_t *self, int type, const uint8_t id[JR_ID_SIZE], int *state,
               uint32_t *attempt, int32_t *value, char *text, size_t text_size)
{
    assert (self);
    assert (id);
    if (!s_broker (self))
        return JR_EINVALID;
    jr_msg_reset (self->out, type);
    jr_msg_add_mark (self->out, id, 0, 0);
    zmq_msg_t frame;
    int rc = s_request (self, &self->broker, &frame);
    if (rc)
        return rc;
    int found = JR_STATE_UNKNOWN;
    uint32_t found_attempt = 0;
    int32_t found_value = 0;
    jr_bytes_t found_text = { NULL, 0 };
    if (self->in->type == JR_MSG_STATE) {
        for (uint32_t i = 0; i < self->in->nmarks; i++)
            if (memcmp (self->in->marks[i].id, id, JR_ID_SIZE) == 0) {
                found = self->in->marks[i].code;
                found_attempt = self->in->marks[i].attempt;
                //  Notes are parallel to marks.
                bool noted = i < self->in->nnotes;
                found_value = noted ? self->in->notes[i].value : 0;
                found_text = noted ? self->in->notes[i].text : (jr_bytes_t){ NULL, 0 };
            }
    }
    else
        rc = JR_EMALFORMED;
    if (state)
        *state = found;
    if (attempt)
        *attempt = found_attempt;
    if (value)
        *value = found_value;
    if (text && text_size) {
        size_t len = found_text.len < text_size - 1 ? found_text.len : text_size - 1;
        if (len)
            memcpy (text, found_text.ptr, len);
        text[len] = 0;
    }
    zmq_msg_close (&frame);
    return rc;
}

int
jr_client_status (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int *state, uint32_t *attempt)
{
    return s_one_request (self, JR_MSG_STATUS, id, state, attempt, NULL, NULL, 0);
}

int
jr_client_progress (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int *state, uint32_t *attempt,
                    int32_t *value, char *text, size_t text_size)
{
    return s_one_request (self, JR_MSG_STATUS, id, state, attempt, value, text, text_size);
}

//  -------------------------------------------------------------------------
//  Cancel, retry, list: one request to the broker, answered by STATE

//  CANCEL or RETRY of one id. A mark with a negative code is the broker
//  refusing that id.
static int
s_mark_request (jr_client_t *self, int type, const uint8_t id[JR_ID_SIZE], int *state)
{
    int found = JR_STATE_UNKNOWN;
    int rc = s_one_request (self, type, id, &found, NULL, NULL, NULL, 0);
    if (rc == 0 && found < 0) {
        rc = found;
        found = JR_STATE_UNKNOWN;
    }
    if (state)
        *state = found;
    return rc;
}

int
jr_client_cancel (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int *state)
{
    return s_mark_request (self, JR_MSG_CANCEL, id, state);
}

int
jr_client_retry (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int *state)
{
    return s_mark_request (self, JR_MSG_RETRY, id, state);
}

int
jr_client_list (jr_client_t *self, int state, jr_id_fn *fn, void *arg)
{
    assert (self);
    if (state < 0)
        return JR_EINVALID;
    if (!s_broker (self))
        return JR_EINVALID;
    jr_msg_reset (self->out, JR_MSG_LIST);
    self->out->code = state;
    zmq_msg_t frame;
    int rc = s_request (self, &self->broker, &frame);
    if (rc)
        return rc;
    if (self->in->type == JR_MSG_STATE) {
        for (uint32_t i = 0; i < self->in->nmarks; i++)
            if (fn && !fn (self->in->marks[i].id, self->in->marks[i].attempt, arg))
                break;
    }
    else
        rc = JR_EMALFORMED;
    zmq_msg_close (&frame);
    return rc;
}

//  -------------------------------------------------------------------------
//  Results

int
jr_client_result (jr_client_t *self, const uint8_t id[JR_ID_SIZE], jr_job_t **result_p)
{
    assert (self);
    assert (id);
    assert (result_p);
    *result_p = NULL;
    if (!s_ingester (self))
        return JR_EINVALID;
    jr_msg_reset (self->out, JR_MSG_FETCH);
    self->out->wait_ms = 0;
    jr_msg_add_mark (self->out, id, 0, 0);
    zmq_msg_t frame;
    int rc = s_request (self, &self->ingester, &frame);
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
    int64_t left = (deadline_us - s_now ()) / 1000;
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
    fetch->sent_us = s_now ();
    fetch->timer_us = fetch->sent_us + s_answer_wait_us (self, fetch->sends);
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
    zsock_t *sock = s_ingester (self);
    int64_t deadline_us = timeout_ms < 0 ? INT64_MAX : s_now () + (int64_t)timeout_ms * 1000;
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
        if (self->monitor && zsock_events (self->monitor) & ZMQ_POLLIN && s_reconnected (self))
            for (size_t f = 0; f < nfetches; f++)
                if (fetches[f].tag)
                    fetches[f].timer_us = s_now ();
        if (s_poll2 (sock, self->monitor, next)) {
            zmq_msg_t frame;
            int rc;
            while (!stopped && (rc = s_recv (self, sock, &frame)) != JR_ETIMEOUT) {
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
                                              + s_answer_wait_us (self, 1);
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
                    int code = s_error_code (in);
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
                    fetch->timer_us = s_now () + JR_CLIENT_ERROR_PAUSE * 1000;
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
        int64_t now = s_now ();
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
        s_ingester_close (self);
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
