/*  client.h - what the parts of libjr's client share: the object, its sockets, one request  */
#ifndef JR_CLIENT_CLIENT_H
#define JR_CLIENT_CLIENT_H
#include "common/clock.h"
#include "proto/keys.h"
#include "proto/proto.h"
#include "proto/transport.h"
#include <czmq.h>

//  Internal to the client (client.c, submit.c, state.c, wait.c): none of it
//  is in include/jr/, so libjr.so does not export it.

#define JR_CLIENT_RESENDS 3  //  resends of an unanswered request

struct _jr_client_t {
    char *broker_ep;     //  where SUBMIT and STATUS go
    char *ingester_ep;   //  where FETCH goes
    jr_link_t broker;    //  DEALER and its watch, connected on first use
    jr_link_t ingester;  //  DEALER and its watch, connected on first use
    int reconnects;      //  connections of the ingester socket seen by jr_client_reconnected
    jr_keys_t *keys;     //  CurveZMQ ($JR_KEYS, jr_client_set_keys), or NULL
    char error[512];     //  what went wrong last, for jr_client_error
    int timeout_ms;      //  wait for an answer before a resend
    uint64_t tag;        //  last request tag used
    jr_msg_t *out;       //  request being built
    jr_msg_t *in;        //  last reply decoded
};

//  The broker's socket, connected on first use; NULL if it cannot connect.
zsock_t *jr_client_broker (jr_client_t *self);
//  The ingester's socket, connected on first use, with a watch of its
//  connections; NULL if it cannot connect.
zsock_t *jr_client_ingester (jr_client_t *self);
//  Read the ingester link's events; true if its socket connected again
//  (not the first time).
bool jr_client_reconnected (jr_client_t *self);
//  The code of a handshake failure on link (JR_EFORBIDDEN, JR_EHANDSHAKE,
//  with the reason in self->error), or 0.
int jr_client_link_failed (jr_client_t *self, jr_link_t *link);

//  Wait until sock (or other, which may be NULL) is readable or the
//  monotonic time `until`; true only if sock is readable.
bool jr_client_poll (zsock_t *sock, zsock_t *other, int64_t until);
//  Receive one message without blocking into frame and self->in. Returns
//  0 (the caller closes frame), JR_ETIMEOUT when nothing is queued, or a
//  decode error (the message is then dropped).
int jr_client_recv (jr_client_t *self, zsock_t *sock, zmq_msg_t *frame);
//  The code an ERROR reply stands for (never 0: the request failed).
int jr_client_error_code (const jr_msg_t *msg);
//  How long to wait after the k-th send (1-based) before resending, us.
int64_t jr_client_answer_wait_us (const jr_client_t *self, int sends);
//  One request, one reply: sends self->out with a new tag on link and
//  waits for the reply with that tag, resending on silence. On 0 self->in
//  holds the reply, decoded from frame, which the caller closes. An ERROR
//  reply gives its code, a failed handshake JR_EFORBIDDEN or JR_EHANDSHAKE,
//  silence JR_ETIMEOUT (both close link).
int jr_client_request (jr_client_t *self, jr_link_t *link, zmq_msg_t *frame);
//  Connect to the ingester (ingester true) or the broker now, and wait up
//  to timeout_ms for the handshake (TCP, then ZMTP and CURVE) to succeed.
//  Returns 0 once it did, JR_EFORBIDDEN or JR_EHANDSHAKE on a refused key
//  or a failed handshake, JR_ETIMEOUT if no handshake succeeded in time
//  (the link is then closed), JR_EINVALID if the endpoint does not connect;
//  on failure self->error names the server and the endpoint. libzmq
//  connects lazily and retries quietly: this is how a caller tells "cannot
//  reach" from "no answer" before it sends anything.
int jr_client_reach (jr_client_t *self, bool ingester, int timeout_ms);
#endif
