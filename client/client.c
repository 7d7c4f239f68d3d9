/*  client.c - libjr's client object, its sockets to broker and ingester, and one request, one reply  */
#include "client/client.h"
#include "proto/transport.h"
#include <pthread.h>
#include <stdatomic.h>

#define JR_CLIENT_TIMEOUT 5000  //  default wait for an answer, ms
#define JR_CLIENT_BACKOFF 100   //  extra wait before resend k is 100 * (2^k - 1) ms

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

//  Its options are the transport's client role: no linger (every request
//  is resent on silence, so nothing relies on it), heartbeats so a dead
//  link shows in seconds.
static zsock_t *
s_connect (const char *endpoint)
{
    return jr_transport_connect (JR_SOCK_CLIENT, endpoint);
}

zsock_t *
jr_client_broker (jr_client_t *self)
{
    if (!self->broker)
        self->broker = s_connect (self->broker_ep);
    return self->broker;
}

//  A restarted ingester has forgotten the FETCHes parked in the old one,
//  so the wait must ask again when the connection is made anew: libzmq
//  tells us through a socket monitor.
zsock_t *
jr_client_ingester (jr_client_t *self)
{
    if (self->ingester)
        return self->ingester;
    self->ingester = s_connect (self->ingester_ep);
    if (!self->ingester)
        return NULL;
    //  A monitor left from a socket jr_client_request dropped watches nothing now.
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
bool
jr_client_reconnected (jr_client_t *self)
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

void
jr_client_ingester_close (jr_client_t *self)
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
        jr_client_ingester_close (self);
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

//  Wait until sock (or other, which may be NULL) is readable or the
//  monotonic time `until`; true only if sock is readable.
bool
jr_client_poll (zsock_t *sock, zsock_t *other, int64_t until)
{
    int64_t left = until - jr_clock_mono_us ();
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
int
jr_client_recv (jr_client_t *self, zsock_t *sock, zmq_msg_t *frame)
{
    int got = jr_transport_recv (zsock_resolve (sock), NULL, frame);
    if (got == 0)
        return JR_ETIMEOUT;
    if (got < 0)
        return JR_EMALFORMED;  //  a DEALER reply is one frame: the rest is dropped
    int rc = jr_transport_decode (self->in, frame, false);
    if (rc)
        zmq_msg_close (frame);
    return rc;
}

//  The code an ERROR reply stands for (never 0: the request failed).
int
jr_client_error_code (const jr_msg_t *msg)
{
    return msg->code < 0 ? msg->code : JR_EINTERNAL;
}

//  How long to wait after the k-th send (1-based) before resending.
int64_t
jr_client_answer_wait_us (const jr_client_t *self, int sends)
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
int
jr_client_request (jr_client_t *self, zsock_t **sock_p, zmq_msg_t *frame)
{
    zsock_t *sock = *sock_p;
    self->out->tag = ++self->tag;
    for (int sends = 1; sends <= 1 + JR_CLIENT_RESENDS; sends++) {
        int rc = jr_msg_send (self->out, zsock_resolve (sock), NULL, 0);
        if (rc == JR_ETOOLARGE)
            return rc;
        int64_t until = jr_clock_mono_us () + jr_client_answer_wait_us (self, sends);
        while (jr_client_poll (sock, NULL, until) || jr_clock_mono_us () < until) {
            if (zsys_interrupted)
                return JR_ECANCELLED;
            while ((rc = jr_client_recv (self, sock, frame)) != JR_ETIMEOUT) {
                if (rc)
                    continue;  //  undecodable, already dropped
                if (self->in->tag == self->out->tag) {
                    if (self->in->type != JR_MSG_ERROR)
                        return 0;
                    rc = jr_client_error_code (self->in);
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
