/*  transport.c - every peer-facing socket: its options by role, and one receive  */
#include "proto/transport.h"
#include "proto/auth.h"
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>

#define S_UNSET -1  //  option left as zsock_new made it

//  One row per role: the table of transport.h, in code.
typedef struct {
    const char *name;
    int type;  //  ZMQ_ROUTER binds, ZMQ_DEALER connects
    int sndhwm, rcvhwm;
    int maxmsgsize;
    int heartbeat_ivl, heartbeat_timeout;
    int router_mandatory;
    int linger;
    int immediate;
    int reconnect_ivl, reconnect_ivl_max;
    jr_role_t server;  //  whose public key a connecting role needs
} s_role_t;

//  Fields in the order of s_role_t: name, type, sndhwm, rcvhwm, maxmsgsize,
//  heartbeat ivl, timeout, router_mandatory, linger, immediate, reconnect
//  ivl, max, server.
static const s_role_t s_roles[JR_SOCK_ROLES] = {
    [JR_SOCK_BROKER_CLIENTS] = { "clients", ZMQ_ROUTER, 100000, 100000, JR_MAX_FRAME, 1000, 3000, 1,
                                 1000, S_UNSET, S_UNSET, S_UNSET },
    [JR_SOCK_BROKER_WORKERS] = { "workers", ZMQ_ROUTER, 100000, 100000, JR_MAX_FRAME, 1000, 3000, 1,
                                 1000, S_UNSET, S_UNSET, S_UNSET },
    [JR_SOCK_INGESTER] = { "ingester", ZMQ_ROUTER, 100000, 100000, JR_MAX_FRAME, 1000, 3000, 1,
                           1000, S_UNSET, S_UNSET, S_UNSET },
    [JR_SOCK_WORKER_BROKER] = { "to-broker", ZMQ_DEALER, 100000, 100000, JR_MAX_FRAME, 1000, 3000,
                                S_UNSET, 0, 0, 100, 1000, JR_ROLE_BROKER },
    [JR_SOCK_WORKER_INGESTER] = { "to-ingester", ZMQ_DEALER, 100, 100000, JR_MAX_FRAME, 1000, 3000,
                                  S_UNSET, 1000, 1, 100, 1000, JR_ROLE_INGESTER },
    [JR_SOCK_CLIENT] = { "client", ZMQ_DEALER, S_UNSET, S_UNSET, JR_MAX_FRAME, 1000, 3000, S_UNSET,
                         0, S_UNSET, S_UNSET, S_UNSET, JR_ROLE_BROKER },
    [JR_SOCK_CLIENT_INGESTER] = { "client-ingester", ZMQ_DEALER, S_UNSET, S_UNSET, JR_MAX_FRAME,
                                  1000, 3000, S_UNSET, 0, S_UNSET, S_UNSET, S_UNSET,
                                  JR_ROLE_INGESTER },
};

const char *
jr_transport_role_name (jr_sock_role_t role)
{
    assert (role >= 0 && role < JR_SOCK_ROLES);
    return s_roles[role].name;
}

//  Set one int option unless the role leaves it alone.
static void
s_set (void *handle, int option, int value)
{
    if (value == S_UNSET)
        return;
    int rc = zmq_setsockopt (handle, option, &value, sizeof value);
    assert (rc == 0);  //  the table names options libzmq 4.3 has
}

//  CurveZMQ, once for every role, before the first bind or connect: the
//  own certificate on both sides; on a binding role curve_server and the
//  role's name as ZAP domain, on a connecting one the server's key.
static void
s_curve (zsock_t *sock, const s_role_t *role, const jr_keys_t *keys)
{
    zcert_apply (jr_keys_own (keys), sock);
    if (role->type == ZMQ_ROUTER) {
        assert (jr_auth_running ());  //  without a ZAP handler libzmq admits any key
        zsock_set_zap_domain (sock, role->name);
        zsock_set_curve_server (sock, 1);
    }
    else {
        const char *server = jr_keys_server (keys, role->server);
        assert (server);  //  jr_keys_load loads both servers' keys for a connecting process
        zsock_set_curve_serverkey (sock, server);
    }
}

//  A socket of a role with all its options set, before bind or connect.
static zsock_t *
s_new (const s_role_t *role, const jr_keys_t *keys)
{
    zsock_t *sock = zsock_new (role->type);
    if (!sock)
        return NULL;
    void *handle = zsock_resolve (sock);
    int64_t maxmsg = role->maxmsgsize;
    int rc = zmq_setsockopt (handle, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    assert (rc == 0);
    s_set (handle, ZMQ_SNDHWM, role->sndhwm);
    s_set (handle, ZMQ_RCVHWM, role->rcvhwm);
    s_set (handle, ZMQ_HEARTBEAT_IVL, role->heartbeat_ivl);
    s_set (handle, ZMQ_HEARTBEAT_TIMEOUT, role->heartbeat_timeout);
    s_set (handle, ZMQ_ROUTER_MANDATORY, role->router_mandatory);
    s_set (handle, ZMQ_LINGER, role->linger);
    s_set (handle, ZMQ_IMMEDIATE, role->immediate);
    s_set (handle, ZMQ_RECONNECT_IVL, role->reconnect_ivl);
    s_set (handle, ZMQ_RECONNECT_IVL_MAX, role->reconnect_ivl_max);
    if (keys)
        s_curve (sock, role, keys);
    return sock;
}

//  Destroy a socket that could not bind or connect, keeping that errno.
static zsock_t *
s_fail (zsock_t **sock_p)
{
    int saved = errno;
    zsock_destroy (sock_p);
    errno = saved;
    return NULL;
}

zsock_t *
jr_transport_bind (jr_sock_role_t role, const char *endpoint, const jr_keys_t *keys)
{
    assert (role >= 0 && role < JR_SOCK_ROLES && s_roles[role].type == ZMQ_ROUTER);
    zsock_t *sock = s_new (&s_roles[role], keys);
    if (sock && zsock_bind (sock, "%s", endpoint) == -1)
        return s_fail (&sock);
    return sock;
}

zsock_t *
jr_transport_connect (jr_sock_role_t role, const char *endpoint, const jr_keys_t *keys)
{
    assert (role >= 0 && role < JR_SOCK_ROLES && s_roles[role].type == ZMQ_DEALER);
    zsock_t *sock = s_new (&s_roles[role], keys);
    if (sock && zsock_connect (sock, "%s", endpoint) == -1)
        return s_fail (&sock);
    return sock;
}

int
jr_transport_recv (void *handle, zmq_msg_t *rid, zmq_msg_t *body)
{
    zmq_msg_init (body);
    if (rid)
        zmq_msg_init (rid);
    zmq_msg_t *first = rid ? rid : body;
    if (zmq_msg_recv (first, handle, ZMQ_DONTWAIT) == -1)
        return 0;  //  EAGAIN: drained; EINTR: the caller's loop looks at its flags
    //  A multipart message arrives whole: its other frames are there now.
    int frames = 1;
    bool more = zmq_msg_more (first);
    if (rid && more) {
        if (zmq_msg_recv (body, handle, ZMQ_DONTWAIT) == -1)
            more = false;
        else {
            frames++;
            more = zmq_msg_more (body);
        }
    }
    while (more) {
        zmq_msg_t extra;
        zmq_msg_init (&extra);
        more = zmq_msg_recv (&extra, handle, ZMQ_DONTWAIT) != -1 && zmq_msg_more (&extra);
        frames++;
        zmq_msg_close (&extra);
    }
    if (frames == (rid ? 2 : 1))
        return 1;
    zmq_msg_close (body);
    zmq_msg_init (body);
    if (rid) {
        zmq_msg_close (rid);
        zmq_msg_init (rid);
    }
    return JR_EMALFORMED;
}

int
jr_transport_decode (jr_msg_t *msg, zmq_msg_t *body, bool answers)
{
    const void *data = zmq_msg_data (body);
    size_t size = zmq_msg_size (body);
    if (answers && jr_msg_is_error (data, size))
        return JR_TRANSPORT_SILENT;
    return jr_msg_decode (msg, data, size);
}

//  -------------------------------------------------------------------------
//  Roles of peers

#define S_MASK(role) (1u << (role))

unsigned
jr_transport_admits (jr_sock_role_t role)
{
    switch (role) {
        case JR_SOCK_BROKER_CLIENTS: return S_MASK (JR_ROLE_CLIENT) | S_MASK (JR_ROLE_ADMIN);
        case JR_SOCK_BROKER_WORKERS: return S_MASK (JR_ROLE_WORKER);
        case JR_SOCK_INGESTER:
            return S_MASK (JR_ROLE_WORKER) | S_MASK (JR_ROLE_CLIENT) | S_MASK (JR_ROLE_ADMIN);
        default: return 0;  //  connecting roles admit nobody
    }
}

jr_sock_role_t
jr_transport_by_name (const char *domain)
{
    for (int r = 0; r < JR_SOCK_ROLES; r++)
        if (s_roles[r].type == ZMQ_ROUTER && strcmp (s_roles[r].name, domain) == 0)
            return (jr_sock_role_t)r;
    return JR_SOCK_ROLES;
}

jr_role_t
jr_transport_peer_role (zmq_msg_t *body)
{
    //  Set by our ZAP handler. libzmq puts the ZAP handler's properties
    //  before those the peer sends, so a peer cannot claim a role.
    return jr_role_parse (zmq_msg_gets (body, JR_AUTH_ROLE_PROPERTY));
}

bool
jr_transport_permits (jr_sock_role_t role, int type, jr_role_t peer)
{
    unsigned mask = jr_transport_admits (role);
    if (role == JR_SOCK_BROKER_CLIENTS && (type == JR_MSG_CANCEL || type == JR_MSG_RETRY))
        mask = S_MASK (JR_ROLE_ADMIN);
    else if (role == JR_SOCK_INGESTER && type == JR_MSG_RESULT)
        mask = S_MASK (JR_ROLE_WORKER);
    else if (role == JR_SOCK_INGESTER && type == JR_MSG_FETCH)
        mask = S_MASK (JR_ROLE_CLIENT) | S_MASK (JR_ROLE_ADMIN);
    return (mask & S_MASK (peer)) != 0;
}

//  -------------------------------------------------------------------------
//  Watching a socket's connections

zsock_t *
jr_transport_watch (zsock_t *sock, int events)
{
    static atomic_uint watches;
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "inproc://jr-watch-%d-%u", (int)getpid (),
              atomic_fetch_add (&watches, 1));
    if (zmq_socket_monitor (zsock_resolve (sock), endpoint, events) != 0)
        return NULL;
    zsock_t *watch = zsock_new_pair (endpoint);
    if (!watch)
        zmq_socket_monitor (zsock_resolve (sock), NULL, 0);
    return watch;
}

bool
jr_transport_event (zsock_t *watch, int *event, uint32_t *value)
{
    //  libzmq 4.x: [uint16 event, uint32 value], then [endpoint]
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    void *handle = zsock_resolve (watch);
    bool got = false;
    if (zmq_msg_recv (&frame, handle, ZMQ_DONTWAIT) == 6) {
        const uint8_t *data = zmq_msg_data (&frame);
        uint16_t ev;
        memcpy (&ev, data, 2);
        memcpy (value, data + 2, 4);
        *event = ev;
        got = true;
    }
    while (zmq_msg_more (&frame) && zmq_msg_recv (&frame, handle, ZMQ_DONTWAIT) != -1)
        ;  //  the endpoint frame
    zmq_msg_close (&frame);
    return got;
}

int
jr_link_open (jr_link_t *link, jr_sock_role_t role, const char *endpoint, const jr_keys_t *keys)
{
    assert (role >= 0 && role < JR_SOCK_ROLES && s_roles[role].type == ZMQ_DEALER);
    *link = (jr_link_t){ 0 };
    link->sock = s_new (&s_roles[role], keys);
    if (!link->sock)
        return -1;
    //  Watch before connecting: the first handshake's events are not lost.
    link->watch = jr_transport_watch (
        link->sock, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED
                        | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                        | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    if (zsock_connect (link->sock, "%s", endpoint) == -1) {
        int saved = errno;
        jr_link_close (link);
        errno = saved;
        return -1;
    }
    return 0;
}

void
jr_link_close (jr_link_t *link)
{
    if (link->sock && link->watch)
        zmq_socket_monitor (zsock_resolve (link->sock), NULL, 0);
    zsock_destroy (&link->watch);
    zsock_destroy (&link->sock);
    *link = (jr_link_t){ 0 };
}

int
jr_link_check (jr_link_t *link)
{
    int event;
    uint32_t value;
    while (link->watch && jr_transport_event (link->watch, &event, &value)) {
        if (event == ZMQ_EVENT_CONNECTED)
            link->connects++;
        else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            link->failure = link->drops = 0;
            link->handshakes++;
        }
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            //  ZAP's 400 (or 500): the server does not take our key here
            link->failure = value == 300 ? JR_EHANDSHAKE : JR_EFORBIDDEN;
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
            link->failure = JR_EHANDSHAKE;  //  a mechanism mismatch, a key that does not decrypt
        else if (++link->drops >= JR_LINK_DROPS)
            //  A CURVE server that cannot open our HELLO (a wrong server key)
            //  just closes, and one that sees our NULL greeting may close
            //  before we read its own; so may a proxy in front of a server
            //  starting up, once: only drops in a row, with no handshake
            //  between, count.
            link->failure = JR_EHANDSHAKE;
    }
    return link->failure;
}
