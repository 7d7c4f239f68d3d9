/*  transport.c - every peer-facing socket: its options by role, and one receive  */
#include "proto/transport.h"
#include <assert.h>
#include <errno.h>

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
} s_role_t;

//  Fields in the order of s_role_t: name, type, sndhwm, rcvhwm, maxmsgsize,
//  heartbeat ivl, timeout, router_mandatory, linger, immediate, reconnect
//  ivl, max.
static const s_role_t s_roles[JR_SOCK_ROLES] = {
    [JR_SOCK_BROKER_CLIENTS] = { "clients", ZMQ_ROUTER, 100000, 100000, JR_MAX_FRAME, 1000, 3000, 1,
                                 1000, S_UNSET, S_UNSET, S_UNSET },
    [JR_SOCK_BROKER_WORKERS] = { "workers", ZMQ_ROUTER, 100000, 100000, JR_MAX_FRAME, 1000, 3000, 1,
                                 1000, S_UNSET, S_UNSET, S_UNSET },
    [JR_SOCK_INGESTER] = { "ingester", ZMQ_ROUTER, 100000, 100000, JR_MAX_FRAME, 1000, 3000, 1,
                           1000, S_UNSET, S_UNSET, S_UNSET },
    [JR_SOCK_WORKER_BROKER] = { "to-broker", ZMQ_DEALER, 100000, 100000, JR_MAX_FRAME, 1000, 3000,
                                S_UNSET, 0, 0, 100, 1000 },
    [JR_SOCK_WORKER_INGESTER] = { "to-ingester", ZMQ_DEALER, 100, 100000, JR_MAX_FRAME, 1000, 3000,
                                  S_UNSET, 1000, 1, 100, 1000 },
    [JR_SOCK_CLIENT] = { "client", ZMQ_DEALER, S_UNSET, S_UNSET, JR_MAX_FRAME, 1000, 3000, S_UNSET,
                         0, S_UNSET, S_UNSET, S_UNSET },
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

//  A socket of a role with all its options set, before bind or connect.
//  CurveZMQ goes here, once for every role: curve_server on the binding
//  ones, curve_serverkey and the own certificate on the connecting ones,
//  and the ZAP domain, all before the first bind or connect.
static zsock_t *
s_new (const s_role_t *role)
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
jr_transport_bind (jr_sock_role_t role, const char *endpoint)
{
    assert (role >= 0 && role < JR_SOCK_ROLES && s_roles[role].type == ZMQ_ROUTER);
    zsock_t *sock = s_new (&s_roles[role]);
    if (sock && zsock_bind (sock, "%s", endpoint) == -1)
        return s_fail (&sock);
    return sock;
}

zsock_t *
jr_transport_connect (jr_sock_role_t role, const char *endpoint)
{
    assert (role >= 0 && role < JR_SOCK_ROLES && s_roles[role].type == ZMQ_DEALER);
    zsock_t *sock = s_new (&s_roles[role]);
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
