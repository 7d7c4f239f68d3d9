/*  transport.h - every peer-facing socket: its options by role, and one receive  */
#ifndef JR_PROTO_TRANSPORT_H
#define JR_PROTO_TRANSPORT_H
#include "proto/keys.h"
#include "proto/proto.h"
#include <czmq.h>

//  The role of a socket names its owner and its peer, and fixes its
//  options. Values as each component set them before this module (-: not
//  set, the libzmq default; czmq: zsock_new's, from zsys: 1000 HWM, linger
//  0), but for MAXMSGSIZE: F, JR_MAX_FRAME, on every role now (the DEALERs
//  had 1 KiB more).
//
//  role                    type   side    snd/rcv HWM     MAXMSG  HB ivl/tmo  MANDATORY  linger  IMMEDIATE  reconnect ivl/max
//  JR_SOCK_BROKER_CLIENTS  ROUTER bind    100000/100000   F       1000/3000   1          1000    -          -
//  JR_SOCK_BROKER_WORKERS  ROUTER bind    100000/100000   F       1000/3000   1          1000    -          -
//  JR_SOCK_INGESTER        ROUTER bind    100000/100000   F       1000/3000   1          1000    -          -
//  JR_SOCK_WORKER_BROKER   DEALER connect 100000/100000   F       1000/3000   -          0 (1)   0          100/1000
//  JR_SOCK_WORKER_INGESTER DEALER connect 100/100000      F       1000/3000   -          1000    1          100/1000
//  JR_SOCK_CLIENT          DEALER connect czmq/czmq       F       1000/3000   -          0       -          -
//
//  JR_SOCK_CLIENT_INGESTER: as JR_SOCK_CLIENT, to the ingester.
//
//  (1) the worker raises it to 500 ms just before it destroys the socket,
//      so a last DONE may leave; that stays the worker's.
//  Every role has the protocol's limit (PROTOCOL.md section 1): no peer
//  sends a body over JR_MAX_FRAME, so a larger frame is a broken peer, and
//  libzmq drops it with its connection before it costs memory. IMMEDIATE on
//  the worker's ingester socket makes a send fail while the ingester is
//  down, so results wait in the worker's backlog, not in the socket.
typedef enum {
    JR_SOCK_BROKER_CLIENTS,   //  broker: clients connect here (:5570)
    JR_SOCK_BROKER_WORKERS,   //  broker: workers connect here (:5571)
    JR_SOCK_INGESTER,         //  ingester: workers and clients connect here (:5572)
    JR_SOCK_WORKER_BROKER,    //  worker -> broker
    JR_SOCK_WORKER_INGESTER,  //  worker -> ingester
    JR_SOCK_CLIENT,           //  client -> broker
    JR_SOCK_CLIENT_INGESTER,  //  client -> ingester
    JR_SOCK_ROLES
} jr_sock_role_t;

//  Short name of a role, e.g. "clients" (borrowed, static).
const char *jr_transport_role_name (jr_sock_role_t role);

//  A ROUTER of a binding role, bound to endpoint. With keys it is a CURVE
//  server with this process's certificate and the role's name as its ZAP
//  domain (asserts that the ZAP handler of proto/auth.h runs: without it
//  libzmq would admit any key). Returns a socket the caller owns, or NULL
//  with errno set (the caller logs why). Asserts the role binds.
zsock_t *jr_transport_bind (jr_sock_role_t role, const char *endpoint, const jr_keys_t *keys);
//  A DEALER of a connecting role, connecting to endpoint. With keys it is
//  a CURVE client with this process's certificate and the public key of
//  the server the role connects to. Returns a socket the caller owns, or
//  NULL with errno set (a bad endpoint). Asserts the role connects.
zsock_t *jr_transport_connect (jr_sock_role_t role, const char *endpoint, const jr_keys_t *keys);

//  -------------------------------------------------------------------------
//  Roles of peers (section 6 of PROTOCOL.md, "Keys and roles")

//  The key roles a binding role admits at the handshake, as a mask of
//  1 << jr_role_t: clients: client, admin; workers: worker; ingester:
//  worker, client, admin.
unsigned jr_transport_admits (jr_sock_role_t role);
//  The binding role whose name is domain (a ZAP domain), or JR_SOCK_ROLES.
jr_sock_role_t jr_transport_by_name (const char *domain);
//  The role the ZAP handler gave the connection a body came on, or
//  JR_ROLE_NONE on a connection without keys.
jr_role_t jr_transport_peer_role (zmq_msg_t *body);
//  True if a peer of role peer may send a message of type on a binding
//  role: what the port admits, but CANCEL and RETRY on the clients' port
//  take admin, RESULT on the ingester worker, FETCH client or admin.
bool jr_transport_permits (jr_sock_role_t role, int type, jr_role_t peer);

//  -------------------------------------------------------------------------
//  Watching a socket's connections

//  A monitor of sock's events (ZMQ_EVENT_* mask): a PAIR the caller owns
//  and destroys after it stops the monitor with zmq_socket_monitor
//  (handle, NULL, 0). Call from sock's thread. NULL if libzmq refuses.
zsock_t *jr_transport_watch (zsock_t *sock, int events);
//  Read one event from a watch without blocking. Returns true with *event
//  and *value (the ZMQ_EVENT_* and its value), false if none is waiting.
bool jr_transport_event (zsock_t *watch, int *event, uint32_t *value);

//  -------------------------------------------------------------------------
//  A link: a connecting socket and a watch of its connections, so its
//  owner (a worker, a client) can tell "the server refused our key" or
//  "the handshake failed" from silence, and see reconnections.

typedef struct {
    zsock_t *sock;   //  the DEALER
    zsock_t *watch;  //  its monitor, or NULL if libzmq refused one
    int connects;    //  TCP connections made so far
    int failure;     //  code of the last handshake failure since the last success, or 0
    int drops;       //  handshakes cut without a reason since the last success
    int handshakes;  //  handshakes that succeeded: the server was reached
} jr_link_t;

//  Handshakes cut without a reason in a row that make a link's failure (a
//  single one may be a proxy in front of a server starting up).
#define JR_LINK_DROPS 3

//  Connect link->sock as jr_transport_connect does, and watch it. Returns
//  0, or -1 with errno set (a bad endpoint; link is then empty).
int jr_link_open (jr_link_t *link, jr_sock_role_t role, const char *endpoint,
                  const jr_keys_t *keys);
//  Close socket and watch; the link is empty after (closing one is harmless).
void jr_link_close (jr_link_t *link);
//  Read what the watch saw, without blocking, into connects and failure.
//  Returns failure: 0, JR_EFORBIDDEN (the server refused our key, or on
//  this port) or JR_EHANDSHAKE (the server's key we have is not its key,
//  or it does not speak CURVE).
int jr_link_check (jr_link_t *link);

//  Read one message without blocking from a libzmq socket handle (use
//  zsock_resolve). With rid (a ROUTER) the message must be [routing id,
//  body], without it (a DEALER) [body]. Returns 1: *body (and *rid) hold it,
//  zero-copy, and the caller closes them; 0: nothing waiting (or EINTR);
//  JR_EMALFORMED: a message of another number of frames arrived, and was
//  read whole and dropped. On 0 and JR_EMALFORMED *body and *rid are empty
//  messages: closing them is harmless, not closing them leaks nothing.
int jr_transport_recv (void *handle, zmq_msg_t *rid, zmq_msg_t *body);

//  Returned by jr_transport_decode to a peer that answers refusals.
#define JR_TRANSPORT_SILENT 1

//  Decode a received body into msg. Returns 0 (msg holds it, its views
//  borrow body), or the decoder's code (JR_EMALFORMED, JR_ETOOLARGE,
//  JR_EVERSION, JR_EUNKNOWN_TYPE; msg->tag then holds the tag if it was
//  read). With answers (a peer that refuses bad input with an ERROR: broker,
//  ingester) a body that is an ERROR of any version is not decoded and
//  gives JR_TRANSPORT_SILENT: it must never be answered, so two peers that
//  refuse each other cannot loop. Without answers (worker, client) an
//  ERROR decodes like any message.
int jr_transport_decode (jr_msg_t *msg, zmq_msg_t *body, bool answers);
#endif
