/*  test_transport.c - socket options by role, the one receive, and the decode rule  */
#include "proto/transport.h"
#include <criterion/criterion.h>
#include <czmq.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_WAIT_MS 10000  //  longest wait for a message that must come

//  -------------------------------------------------------------------------
//  Helpers

//  A ROUTER of a role on a fresh loopback port; *endpoint gets its address.
static zsock_t *
s_bound (jr_sock_role_t role, char *endpoint, size_t size)
{
    zsock_t *sock = jr_transport_bind (role, "tcp://127.0.0.1:*", NULL);
    cr_assert_not_null (sock);
    char *last = zsock_last_endpoint (sock);  //  ours to free
    snprintf (endpoint, size, "%s", last);
    zstr_free (&last);
    return sock;
}

//  True once the socket has a message to read, within S_WAIT_MS.
static bool
s_readable (zsock_t *sock)
{
    zmq_pollitem_t item = { zsock_resolve (sock), 0, ZMQ_POLLIN, 0 };
    return zmq_poll (&item, 1, S_WAIT_MS) == 1;
}

//  Send an encoded message of a type (no fields) as one frame.
static void
s_send_type (zsock_t *sock, int type)
{
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, type);
    cr_assert_eq (jr_msg_send (msg, zsock_resolve (sock), NULL, 0), 0);
    jr_msg_destroy (&msg);
}

//  Send a frame of size bytes, all 'x'; more: another frame follows.
static void
s_send_bytes (zsock_t *sock, size_t size, bool more)
{
    zmq_msg_t frame;
    cr_assert_eq (zmq_msg_init_size (&frame, size), 0);
    memset (zmq_msg_data (&frame), 'x', size);
    int rc = zmq_msg_send (&frame, zsock_resolve (sock), more ? ZMQ_SNDMORE : 0);
    cr_assert_eq (rc, (int)size);
}

//  -------------------------------------------------------------------------
//  Options: what each role sets, read back from libzmq

typedef struct {
    jr_sock_role_t role;
    int type, sndhwm, rcvhwm, maxmsgsize, hb_ivl, hb_timeout, linger, immediate, reconnect,
        reconnect_max;
} s_expect_t;

//  The table of transport.h: values as each component set them before, but
//  MAXMSGSIZE, the protocol's limit on every role (PROTOCOL.md section 1).
static const s_expect_t s_expected[] = {
    { JR_SOCK_BROKER_CLIENTS, ZMQ_ROUTER, 100000, 100000, JR_MAX_FRAME, 1000, 3000, 1000, 0, 100,
      0 },
    { JR_SOCK_BROKER_WORKERS, ZMQ_ROUTER, 100000, 100000, JR_MAX_FRAME, 1000, 3000, 1000, 0, 100,
      0 },
    { JR_SOCK_INGESTER, ZMQ_ROUTER, 100000, 100000, JR_MAX_FRAME, 1000, 3000, 1000, 0, 100, 0 },
    { JR_SOCK_WORKER_BROKER, ZMQ_DEALER, 100000, 100000, JR_MAX_FRAME, 1000, 3000, 0, 0, 100,
      1000 },
    { JR_SOCK_WORKER_INGESTER, ZMQ_DEALER, 100, 100000, JR_MAX_FRAME, 1000, 3000, 1000, 1, 100,
      1000 },
    //  The client leaves HWMs and linger as czmq makes them (zsys: 1000, 0).
    { JR_SOCK_CLIENT, ZMQ_DEALER, 1000, 1000, JR_MAX_FRAME, 1000, 3000, 0, 0, 100, 0 },
    { JR_SOCK_CLIENT_INGESTER, ZMQ_DEALER, 1000, 1000, JR_MAX_FRAME, 1000, 3000, 0, 0, 100, 0 },
};

Test (transport, every_role_has_its_options)
{
    cr_assert_eq (sizeof s_expected / sizeof s_expected[0], JR_SOCK_ROLES);
    for (size_t i = 0; i < JR_SOCK_ROLES; i++) {
        const s_expect_t *e = &s_expected[i];
        char endpoint[64];
        zsock_t *sock = e->type == ZMQ_ROUTER
                            ? s_bound (e->role, endpoint, sizeof endpoint)
                            : jr_transport_connect (e->role, "tcp://127.0.0.1:9", NULL);
        cr_assert_not_null (sock);
        const char *name = jr_transport_role_name (e->role);
        cr_assert_eq (zsock_type (sock), e->type, "%s", name);
        cr_assert_eq (zsock_sndhwm (sock), e->sndhwm, "%s", name);
        cr_assert_eq (zsock_rcvhwm (sock), e->rcvhwm, "%s", name);
        cr_assert_eq (zsock_maxmsgsize (sock), e->maxmsgsize, "%s", name);
        cr_assert_eq (zsock_heartbeat_ivl (sock), e->hb_ivl, "%s", name);
        cr_assert_eq (zsock_heartbeat_timeout (sock), e->hb_timeout, "%s", name);
        cr_assert_eq (zsock_linger (sock), e->linger, "%s", name);
        cr_assert_eq (zsock_immediate (sock), e->immediate, "%s", name);
        cr_assert_eq (zsock_reconnect_ivl (sock), e->reconnect, "%s", name);
        cr_assert_eq (zsock_reconnect_ivl_max (sock), e->reconnect_max, "%s", name);
        zsock_destroy (&sock);
    }
}

Test (transport, role_names)
{
    cr_assert_str_eq (jr_transport_role_name (JR_SOCK_BROKER_CLIENTS), "clients");
    cr_assert_str_eq (jr_transport_role_name (JR_SOCK_BROKER_WORKERS), "workers");
    cr_assert_str_eq (jr_transport_role_name (JR_SOCK_INGESTER), "ingester");
    for (int i = 0; i < JR_SOCK_ROLES; i++)
        for (int j = 0; j < i; j++)
            cr_assert_str_neq (jr_transport_role_name (i), jr_transport_role_name (j));
}

//  ROUTER_MANDATORY has no getter: a send to a peer that is not there
//  must fail loudly on every ROUTER role.
Test (transport, routers_refuse_unknown_peers)
{
    jr_sock_role_t routers[] = { JR_SOCK_BROKER_CLIENTS, JR_SOCK_BROKER_WORKERS, JR_SOCK_INGESTER };
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_HEARTBEAT);
    for (size_t i = 0; i < 3; i++) {
        char endpoint[64];
        zsock_t *router = s_bound (routers[i], endpoint, sizeof endpoint);
        cr_assert_eq (jr_msg_send (msg, zsock_resolve (router), "nobody", 6), JR_EUNKNOWN_PEER);
        zsock_destroy (&router);
    }
    jr_msg_destroy (&msg);
}

Test (transport, bad_endpoints_give_null_and_errno)
{
    errno = 0;
    cr_assert_null (jr_transport_bind (JR_SOCK_INGESTER, "tcp://no-such-host-jr:1", NULL));
    cr_assert_neq (errno, 0);
    errno = 0;
    cr_assert_null (jr_transport_connect (JR_SOCK_CLIENT, "bogus://x", NULL));
    cr_assert_neq (errno, 0);
    char endpoint[64];
    zsock_t *first = s_bound (JR_SOCK_BROKER_CLIENTS, endpoint, sizeof endpoint);
    cr_assert_null (jr_transport_bind (JR_SOCK_BROKER_WORKERS, endpoint, NULL), "port in use");
    cr_assert_eq (errno, EADDRINUSE);
    zsock_destroy (&first);
}

//  With IMMEDIATE a DEALER whose peer is not there takes nothing; the
//  worker's broker socket queues (its messages are resent anyway).
Test (transport, immediate_where_it_matters)
{
    //  A port bound and never listened on: connects to it are refused, and
    //  nothing else can take it meanwhile (a probe ROUTER closed just now
    //  may still listen: zmq_close is asynchronous).
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    cr_assert (fd >= 0 && bind (fd, (struct sockaddr *)&addr, len) == 0
               && getsockname (fd, (struct sockaddr *)&addr, &len) == 0);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", ntohs (addr.sin_port));
    zsock_t *results = jr_transport_connect (JR_SOCK_WORKER_INGESTER, endpoint, NULL);
    zsock_t *broker = jr_transport_connect (JR_SOCK_WORKER_BROKER, endpoint, NULL);
    cr_assert (results && broker);
    cr_assert_eq (zsock_events (results) & ZMQ_POLLOUT, 0);
    cr_assert_eq (zmq_send (zsock_resolve (results), "x", 1, ZMQ_DONTWAIT), -1);
    cr_assert_eq (zmq_errno (), EAGAIN);
    cr_assert_eq (zmq_send (zsock_resolve (broker), "x", 1, ZMQ_DONTWAIT), 1);
    zsock_destroy (&results);
    zsock_destroy (&broker);
    close (fd);
}

//  -------------------------------------------------------------------------
//  Receive

Test (transport, nothing_waiting)
{
    char endpoint[64];
    zsock_t *router = s_bound (JR_SOCK_INGESTER, endpoint, sizeof endpoint);
    zmq_msg_t rid, body;
    cr_assert_eq (jr_transport_recv (zsock_resolve (router), &rid, &body), 0);
    cr_assert_eq (zmq_msg_size (&rid), 0);
    cr_assert_eq (zmq_msg_size (&body), 0);
    zmq_msg_close (&rid);
    zmq_msg_close (&body);
    zsock_destroy (&router);
}

Test (transport, router_gets_routing_id_and_body)
{
    char endpoint[64];
    zsock_t *router = s_bound (JR_SOCK_BROKER_CLIENTS, endpoint, sizeof endpoint);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zmq_setsockopt (zsock_resolve (dealer), ZMQ_ROUTING_ID, "peer-1", 6);
    cr_assert_eq (zsock_connect (dealer, "%s", endpoint), 0);
    s_send_type (dealer, JR_MSG_HEARTBEAT);
    cr_assert (s_readable (router));
    zmq_msg_t rid, body;
    cr_assert_eq (jr_transport_recv (zsock_resolve (router), &rid, &body), 1);
    cr_assert_eq (zmq_msg_size (&rid), 6);
    cr_assert_arr_eq (zmq_msg_data (&rid), "peer-1", 6);
    jr_msg_t *msg = jr_msg_new ();
    cr_assert_eq (jr_transport_decode (msg, &body, true), 0);
    cr_assert_eq (msg->type, JR_MSG_HEARTBEAT);
    zmq_msg_close (&rid);
    zmq_msg_close (&body);

    //  The answer goes back to that routing id; the DEALER gets [body].
    cr_assert_eq (jr_msg_send (msg, zsock_resolve (router), "peer-1", 6), 0);
    cr_assert (s_readable (dealer));
    cr_assert_eq (jr_transport_recv (zsock_resolve (dealer), NULL, &body), 1);
    cr_assert_eq (jr_transport_decode (msg, &body, false), 0);
    cr_assert_eq (msg->type, JR_MSG_HEARTBEAT);
    zmq_msg_close (&body);
    jr_msg_destroy (&msg);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}

//  [rid, a, b] is dropped whole: the next message arrives intact.
Test (transport, three_frames_are_malformed)
{
    char endpoint[64];
    zsock_t *router = s_bound (JR_SOCK_BROKER_WORKERS, endpoint, sizeof endpoint);
    zsock_t *dealer = jr_transport_connect (JR_SOCK_WORKER_BROKER, endpoint, NULL);
    s_send_bytes (dealer, 3, true);
    s_send_bytes (dealer, 4, false);
    s_send_bytes (dealer, 5, false);
    cr_assert (s_readable (router));
    zmq_msg_t rid, body;
    cr_assert_eq (jr_transport_recv (zsock_resolve (router), &rid, &body), JR_EMALFORMED);
    cr_assert_eq (zmq_msg_size (&body), 0, "nothing of it is handed out");
    cr_assert_eq (zmq_msg_size (&rid), 0);
    cr_assert (s_readable (router));
    cr_assert_eq (jr_transport_recv (zsock_resolve (router), &rid, &body), 1);
    cr_assert_eq (zmq_msg_size (&body), 5);
    zmq_msg_close (&rid);
    zmq_msg_close (&body);
    cr_assert_eq (jr_transport_recv (zsock_resolve (router), &rid, &body), 0);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}

//  A DEALER expects [body]: two frames are malformed, and dropped whole.
Test (transport, dealer_two_frames_are_malformed)
{
    char endpoint[64];
    zsock_t *router = s_bound (JR_SOCK_INGESTER, endpoint, sizeof endpoint);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zmq_setsockopt (zsock_resolve (dealer), ZMQ_ROUTING_ID, "w", 1);
    cr_assert_eq (zsock_connect (dealer, "%s", endpoint), 0);
    s_send_type (dealer, JR_MSG_HEARTBEAT);  //  so the ROUTER knows "w"
    cr_assert (s_readable (router));
    zmq_msg_t rid, body;
    cr_assert_eq (jr_transport_recv (zsock_resolve (router), &rid, &body), 1);
    zmq_msg_close (&rid);
    zmq_msg_close (&body);
    zmq_send (zsock_resolve (router), "w", 1, ZMQ_SNDMORE);
    s_send_bytes (router, 2, true);
    s_send_bytes (router, 3, false);
    zmq_send (zsock_resolve (router), "w", 1, ZMQ_SNDMORE);
    s_send_bytes (router, 7, false);
    cr_assert (s_readable (dealer));
    cr_assert_eq (jr_transport_recv (zsock_resolve (dealer), NULL, &body), JR_EMALFORMED);
    cr_assert (s_readable (dealer));
    cr_assert_eq (jr_transport_recv (zsock_resolve (dealer), NULL, &body), 1);
    cr_assert_eq (zmq_msg_size (&body), 7);
    zmq_msg_close (&body);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}

//  The monitor's next event (two frames), or -1 after S_WAIT_MS.
static int
s_event (zsock_t *monitor)
{
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    int event = -1;
    if (zmq_msg_recv (&frame, zsock_resolve (monitor), 0) >= 2) {
        uint16_t e;
        memcpy (&e, zmq_msg_data (&frame), sizeof e);
        event = e;
        zmq_msg_recv (&frame, zsock_resolve (monitor), 0);  //  the address
    }
    zmq_msg_close (&frame);
    return event;
}

//  A body of exactly JR_MAX_FRAME arrives; one byte more resets the
//  connection and is never delivered; the peer reconnects and the next
//  message arrives.
Test (transport, oversized_frame_resets_the_connection, .timeout = 60)
{
    char endpoint[64];
    zsock_t *router = s_bound (JR_SOCK_INGESTER, endpoint, sizeof endpoint);
    cr_assert_eq (zmq_socket_monitor (zsock_resolve (router), "inproc://jr-test-transport-mon",
                                      ZMQ_EVENT_DISCONNECTED),
                  0);
    zsock_t *monitor = zsock_new_pair ("inproc://jr-test-transport-mon");
    zsock_set_rcvtimeo (monitor, S_WAIT_MS);
    zsock_t *dealer = jr_transport_connect (JR_SOCK_CLIENT, endpoint, NULL);
    zmq_msg_t rid, body;

    s_send_bytes (dealer, JR_MAX_FRAME, false);
    cr_assert (s_readable (router));
    cr_assert_eq (jr_transport_recv (zsock_resolve (router), &rid, &body), 1);
    cr_assert_eq (zmq_msg_size (&body), (size_t)JR_MAX_FRAME);
    zmq_msg_close (&rid);
    zmq_msg_close (&body);

    s_send_bytes (dealer, (size_t)JR_MAX_FRAME + 1, false);
    cr_assert_eq (s_event (monitor), ZMQ_EVENT_DISCONNECTED, "the connection is reset");
    cr_assert_eq (jr_transport_recv (zsock_resolve (router), &rid, &body), 0, "nothing delivered");

    s_send_bytes (dealer, 9, false);
    cr_assert (s_readable (router), "the peer reconnects");
    cr_assert_eq (jr_transport_recv (zsock_resolve (router), &rid, &body), 1);
    cr_assert_eq (zmq_msg_size (&body), 9, "the oversized frame never arrives");
    zmq_msg_close (&rid);
    zmq_msg_close (&body);
    zsock_destroy (&dealer);
    zmq_socket_monitor (zsock_resolve (router), NULL, 0);
    zsock_destroy (&monitor);
    zsock_destroy (&router);
}

//  -------------------------------------------------------------------------
//  Decode: the decoder's code, and an ERROR never answered

//  A body in a zmq_msg_t, as a receive would give it.
static void
s_body (zmq_msg_t *body, const jr_msg_t *msg)
{
    uint8_t *data;
    size_t size = jr_msg_encode (msg, &data);
    cr_assert_gt (size, 0);
    zmq_msg_init_size (body, size);
    memcpy (zmq_msg_data (body), data, size);
    free (data);
}

Test (transport, decode_and_the_error_rule)
{
    jr_msg_t *msg = jr_msg_new (), *in = jr_msg_new ();
    zmq_msg_t body;
    jr_msg_reset (msg, JR_MSG_ERROR);
    msg->tag = 7;
    msg->code = JR_EINVALID;
    s_body (&body, msg);
    cr_assert_eq (jr_transport_decode (in, &body, true), JR_TRANSPORT_SILENT);
    cr_assert_eq (jr_transport_decode (in, &body, false), 0, "a client reads its ERRORs");
    cr_assert_eq (in->type, JR_MSG_ERROR);
    cr_assert_eq (in->code, JR_EINVALID);
    cr_assert_eq (in->tag, 7);
    zmq_msg_close (&body);

    //  An ERROR of a version we cannot decode is still never answered.
    static const uint8_t error_v9[] = { 0x93, 0xcd, 0x4a, 0x52, 0x09, 0x0d };
    zmq_msg_init_size (&body, sizeof error_v9);
    memcpy (zmq_msg_data (&body), error_v9, sizeof error_v9);
    cr_assert_eq (jr_transport_decode (in, &body, true), JR_TRANSPORT_SILENT);
    cr_assert_eq (jr_transport_decode (in, &body, false), JR_EVERSION);
    zmq_msg_close (&body);

    zmq_msg_init_size (&body, 3);
    memcpy (zmq_msg_data (&body), "abc", 3);
    cr_assert_eq (jr_transport_decode (in, &body, true), JR_EMALFORMED);
    zmq_msg_close (&body);

    jr_msg_reset (msg, JR_MSG_STATUS);
    msg->tag = 42;
    s_body (&body, msg);
    cr_assert_eq (jr_transport_decode (in, &body, true), 0);
    cr_assert_eq (in->type, JR_MSG_STATUS);
    cr_assert_eq (in->tag, 42);
    zmq_msg_close (&body);
    jr_msg_destroy (&msg);
    jr_msg_destroy (&in);
}
