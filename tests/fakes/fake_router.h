/*  fake_router.h - a ROUTER playing a broker or an ingester that a peer under test connects to  */
#ifndef JR_FAKE_ROUTER_H
#define JR_FAKE_ROUTER_H
#include "proto/proto.h"
#include <czmq.h>
#include <stdbool.h>

//  Fakes bind ephemeral ports on a shared machine, so strangers (other
//  tests' peers finding a port reused) may talk to them. A fake with a name
//  listens only to the worker of that name: the peer that said READY with
//  it or sent a RESULT made by "name@host", and whatever that peer sends.
//  Without a name it listens to everyone, the last sender being its peer.
typedef struct {
    zsock_t *sock;      //  ROUTER, NULL while closed
    char endpoint[64];  //  where it listens
    const char *name;   //  the worker listened to, NULL = anyone (borrowed)
    zmsg_t *zmsg;       //  last message received (keeps msg's views alive)
    jr_msg_t *msg;      //  last message decoded
    zframe_t *peer;     //  routing id of the peer listened to (owned copy)
    jr_msg_t *out;      //  scratch for replies, so handlers allocate nothing
} jr_fake_router_t;

//  Bind a fake on a loopback ephemeral port. name is borrowed (may be NULL).
void jr_fake_router_init (jr_fake_router_t *self, const char *name);
//  Make a fake that is closed, to open on a listener of its own.
void jr_fake_router_init_closed (jr_fake_router_t *self, const char *name);
//  A listening TCP socket on a loopback ephemeral port, held for a whole
//  test so that its port stays the test's while the fake on it is down: a
//  port let go could be bound by a test running beside, whose sockets would
//  then talk to ours. Connections that arrive while no fake is on it wait,
//  unanswered. Its endpoint goes to endpoint; the caller closes the fd.
int jr_fake_listener (char endpoint[64]);
//  Open a closed fake on a held listening socket, endpoint as set; it takes
//  a copy of listener (ZMQ_USE_FD closes what it is given).
void jr_fake_router_open_on (jr_fake_router_t *self, int listener);
//  Close the socket, forgetting the peer; endpoint and msg stay. Idempotent.
void jr_fake_router_close (jr_fake_router_t *self);
//  Close and free everything. Idempotent.
void jr_fake_router_destroy (jr_fake_router_t *self);

//  Receive the next message from the peer listened to within timeout_ms,
//  decoded into self->msg (valid until the next receive). Messages of other
//  frame counts, undecodable ones and those from strangers are skipped.
bool jr_fake_router_recv (jr_fake_router_t *self, int timeout_ms);
//  Receive until a message of type comes within timeout_ms. HEARTBEAT, FREE
//  (slots given back early: tests count DONEs) and PROGRESS are skipped;
//  any other type fails the test. False on timeout.
bool jr_fake_router_expect (jr_fake_router_t *self, int type, int timeout_ms);

//  Send msg to the peer listened to; the test fails without one, or if the
//  send is refused.
void jr_fake_router_send (jr_fake_router_t *self, const jr_msg_t *msg);
//  Send msg to a routing id kept from before.
void jr_fake_router_send_to (jr_fake_router_t *self, zframe_t *peer, const jr_msg_t *msg);
//  Answer the peer with ERROR(tag, code, text).
void jr_fake_router_send_error (jr_fake_router_t *self, uint64_t tag, int code, const char *text);

//  A fake in an actor of its own, for peers that block on their calls (the
//  client). The actor owns the fake; the test owns state, and reads it after
//  zactor_destroy has joined the actor.
typedef struct {
    void (*handle) (jr_fake_router_t *fake, void *state);  //  on each message (fake->msg, ->peer)
    void (*tick) (jr_fake_router_t *fake, void *state);    //  at least every tick_ms; may be NULL
    void (*end) (void *state);                             //  as the actor ends; may be NULL
    int tick_ms;
} jr_fake_server_t;
//  Start server (borrowed: it must outlive the actor) on state; the fake's
//  endpoint goes to endpoint.
zactor_t *jr_fake_serve (const jr_fake_server_t *server, void *state, char *endpoint, size_t size);
#endif
