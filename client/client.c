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

//  Its options are the transport's client roles: no linger (every request
//  is resent on silence, so nothing relies on it), heartbeats so a dead
//  link shows in seconds. A link's watch tells a refused key at once, and
//  tells the wait for results that the ingester connection is new: a
//  restarted ingester has forgotten the FETCHes parked in the old one.
static zsock_t *
s_connect (jr_client_t *self, jr_link_t *link, jr_sock_role_t role, const char *endpoint)
{
    if (!link->sock && jr_link_open (link, role, endpoint, self->keys) != 0)
        snprintf (self->error, sizeof self->error, "%s: cannot connect: %s", endpoint,
                  zmq_strerror (errno));
    return link->sock;
}

zsock_t *
jr_client_broker (jr_client_t *self)
{
    return s_connect (self, &self->broker, JR_SOCK_CLIENT, self->broker_ep);
}

zsock_t *
jr_client_ingester (jr_client_t *self)
{
    if (!self->ingester.sock)
        self->reconnects = 0;
    return s_connect (self, &self->ingester, JR_SOCK_CLIENT_INGESTER, self->ingester_ep);
}

bool
jr_client_reconnected (jr_client_t *self)
{
    jr_link_check (&self->ingester);
    bool again = self->ingester.connects > 1 && self->ingester.connects > self->reconnects;
    self->reconnects = self->ingester.connects;
    return again;
}

int
jr_client_link_failed (jr_client_t *self, jr_link_t *link)
{
    int code = jr_link_check (link);
    if (!code)
        return 0;
    bool to_broker = link == &self->broker;
    const char *endpoint = to_broker ? self->broker_ep : self->ingester_ep;
    if (code == JR_EFORBIDDEN)
        snprintf (self->error, sizeof self->error,
                  "%s: the %s refused our key (is our public certificate in its allow/client/ "
                  "or allow/admin/?)",
                  endpoint, to_broker ? "broker" : "ingester");
    else if (!self->keys)
        snprintf (self->error, sizeof self->error,
                  "%s: the handshake failed: the server uses keys and we have none (give --keys "
                  "DIR or $JR_KEYS), or it cut the connection again and again",
                  endpoint);
    else
        snprintf (self->error, sizeof self->error,
                  "%s: the secure handshake failed: the public key in %s is not that server's, "
                  "or the server does not use keys",
                  endpoint,
                  jr_keys_server_file (self->keys, to_broker ? JR_ROLE_BROKER : JR_ROLE_INGESTER));
    jr_link_close (link);
    return code;
}

//  czmq sets itself up on the first socket, and that is not thread-safe:
//  clients made at once on several threads would race in zsys_init.
static pthread_once_t s_zsys_once = PTHREAD_ONCE_INIT;

static void
s_zsys_init (void)
{
    zsys_init ();
}

//  The keys of dir for a client, or none for NULL; the old ones go, and
//  so do the sockets made with them.
static int
s_set_keys (jr_client_t *self, const char *dir)
{
    jr_keys_t *keys = NULL;
    if (dir && *dir
        && !(keys = jr_keys_load (dir, JR_ROLE_CLIENT, self->error, sizeof self->error)))
        return JR_EINVALID;
    jr_link_close (&self->broker);
    jr_link_close (&self->ingester);
    jr_keys_destroy (&self->keys);
    self->keys = keys;
    return 0;
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
    if (s_set_keys (self, getenv ("JR_KEYS")) != 0)
        jr_client_destroy (&self);
    return self;
}

int
jr_client_set_keys (jr_client_t *self, const char *dir)
{
    assert (self);
    return s_set_keys (self, dir);
}

const char *
jr_client_error (const jr_client_t *self)
{
    assert (self);
    return self->error;
}

void
jr_client_destroy (jr_client_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        jr_client_t *self = *self_p;
        jr_link_close (&self->broker);
        jr_link_close (&self->ingester);
        jr_keys_destroy (&self->keys);
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
jr_client_request (jr_client_t *self, jr_link_t *link, zmq_msg_t *frame)
{
    zsock_t *sock = link->sock;
    self->out->tag = ++self->tag;
    for (int sends = 1; sends <= 1 + JR_CLIENT_RESENDS; sends++) {
        int rc = jr_msg_send (self->out, zsock_resolve (sock), NULL, 0);
        if (rc == JR_ETOOLARGE)
            return rc;
        int64_t until = jr_clock_mono_us () + jr_client_answer_wait_us (self, sends);
        while (jr_client_poll (sock, link->watch, until) || jr_clock_mono_us () < until) {
            if (zsys_interrupted)
                return JR_ECANCELLED;
            if ((rc = jr_client_link_failed (self, link)))
                return rc;
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
    snprintf (self->error, sizeof self->error, "%s: no answer",
              link == &self->broker ? self->broker_ep : self->ingester_ep);
    jr_link_close (link);
    return JR_ETIMEOUT;
}

//  -------------------------------------------------------------------------
//  Reaching a server before asking it anything

int
jr_client_reach (jr_client_t *self, bool ingester, int timeout_ms)
{
    assert (self);
    assert (timeout_ms > 0);
    jr_link_t *link = ingester ? &self->ingester : &self->broker;
    const char *name = ingester ? "ingester" : "broker";
    const char *endpoint = ingester ? self->ingester_ep : self->broker_ep;
    if (!(ingester ? jr_client_ingester (self) : jr_client_broker (self)))
        return JR_EINVALID;
    int64_t until = jr_clock_mono_us () + (int64_t)timeout_ms * 1000;
    while (true) {
        int rc = jr_client_link_failed (self, link);
        if (rc)
            return rc;
        if (link->handshakes > 0 || !link->watch)
            return 0;  //  reached (or nothing to watch with: the request will tell)
        if (jr_clock_mono_us () >= until)
            break;
        jr_client_poll (link->watch, NULL, until);
    }
    if (link->connects == 0)
        snprintf (self->error, sizeof self->error,
                  "cannot reach the %s at %s (no connection in %g s)", name, endpoint,
                  timeout_ms / 1000.0);
    else
        snprintf (self->error, sizeof self->error,
                  "cannot reach the %s at %s (connected, but no handshake in %g s)", name, endpoint,
                  timeout_ms / 1000.0);
    jr_link_close (link);
    return JR_ETIMEOUT;
}
