/*  auth.h - the ZAP handler of a server with keys: which keys get in, on which port, as what role  */
#ifndef JR_PROTO_AUTH_H
#define JR_PROTO_AUTH_H
#include "common/metrics.h"
#include "proto/keys.h"
#include "proto/transport.h"
#include <czmq.h>

//  libzmq asks one ZAP handler per process (inproc://zeromq.zap.01) about
//  every handshake on a socket that is a CURVE server. Ours admits a CURVE
//  client whose public key is a file of DIR/allow/ROLE/ for a ROLE the
//  socket's role admits (jr_transport_admits; the ZAP domain names the
//  socket's role), and tells the socket the role: messages then carry it
//  (jr_transport_peer_role). Any other mechanism, an unknown key, a key of
//  a role the port does not take: refused (ZAP 400), counted, and logged
//  at most once a minute per peer address. A folder is read again on the
//  next handshake after it changed (a file added or removed), and at
//  least every 5 s, so removing a file refuses that key's new connections
//  at once, without a restart; connections made before stay.
//
//  Handshakes that fail before ZAP is asked (a NULL-mechanism peer, a
//  client that has the wrong server key) are seen through a monitor of
//  each watched socket, counted and logged the same way (per socket: the
//  monitor does not tell the peer).
//
//  Why not czmq's zauth: it keeps one certificate store for all sockets of
//  the process, so it cannot tell the workers' port from the clients', it
//  gives no role, its log has a line per handshake, and its store aborts
//  on two files with the same key.
typedef struct _jr_auth_t jr_auth_t;

//  The connection property (zmq_msg_gets) that holds the peer's role.
#define JR_AUTH_ROLE_PROPERTY "Jr-Role"

//  Start the handler for keys (a server's: BROKER or INGESTER). One runs
//  per process: a second call with the same folder shares it (counted),
//  with another folder fails. Returns what the caller owns, or NULL with a
//  message in err. Must run before the first bind of a CURVE server:
//  without it libzmq admits any key.
jr_auth_t *jr_auth_new (const jr_keys_t *keys, char *err, size_t err_size);
//  Stop (when the last sharer stops); nulls the pointer. Destroy the CURVE
//  servers first: on a CURVE server whose ZAP handler is gone, libzmq
//  4.3 admits any key (ZMQ_ZAP_ENFORCE_DOMAIN is a draft option).
void jr_auth_destroy (jr_auth_t **self_p);
//  True while a handler runs in this process (transport asserts it before
//  it binds a CURVE server).
bool jr_auth_running (void);
//  Count and log the handshakes that fail on sock before ZAP. Call from
//  the thread that owns sock, after it is bound. Returns 0, or -1 (libzmq
//  refused a monitor, or 8 sockets are watched already; a watch ends when
//  its socket is closed).
int jr_auth_watch (jr_auth_t *self, zsock_t *sock, jr_sock_role_t role);
//  Read every allowed-keys folder again now, not at the next change or
//  within 5 s (SIGHUP of a server: a key file rewritten in place changes
//  no folder). Returns once the handler has read them; self NULL: nothing.
void jr_auth_reload (jr_auth_t *self);
//  Handshakes refused so far, by ZAP and on watched sockets.
uint64_t jr_auth_refused (const jr_auth_t *self);

//  On a server, before it handles a decoded message of type that came in
//  body on port: true if the peer's role may send it (always, with self
//  NULL: no keys). Otherwise the refusal is counted and logged at most
//  once a minute per peer; the caller answers ERROR FORBIDDEN. Any thread.
bool jr_auth_permits (jr_auth_t *self, jr_sock_role_t port, int type, zmq_msg_t *body);
//  Messages refused so far by jr_auth_permits.
uint64_t jr_auth_forbidden (const jr_auth_t *self);

//  A server's two counters of refusals, in its registry: handshakes_refused
//  and messages_forbidden, brought up to date from the handler by update.
typedef struct {
    jr_counter_t *refused, *forbidden;  //  in the server's registry
    uint64_t seen[2];                   //  the handler's counts at the last update
} jr_auth_counters_t;

void jr_auth_counters_init (jr_auth_counters_t *self, jr_metrics_t *metrics);
//  Add what auth (NULL: nothing) counted since the last update.
void jr_auth_counters_update (jr_auth_counters_t *self, const jr_auth_t *auth);
#endif
