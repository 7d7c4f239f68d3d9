/*  fake_router.c - a ROUTER playing a broker or an ingester that a peer under test connects to  */
#include "tests/fakes/fake_router.h"
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void
jr_fake_router_init_closed (jr_fake_router_t *self, const char *name)
{
    memset (self, 0, sizeof *self);
    self->name = name;
    self->msg = jr_msg_new ();
    self->out = jr_msg_new ();
}

void
jr_fake_router_init (jr_fake_router_t *self, const char *name)
{
    jr_fake_router_init_closed (self, name);
    self->sock = zsock_new (ZMQ_ROUTER);
    cr_assert (self->sock);
    int port = zsock_bind (self->sock, "tcp://127.0.0.1:*");
    cr_assert_gt (port, 0);
    snprintf (self->endpoint, sizeof self->endpoint, "tcp://127.0.0.1:%d", port);
}

int
jr_fake_listener (char endpoint[64])
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_neq (fd, -1);
    struct sockaddr_in addr = { .sin_family = AF_INET };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    cr_assert_eq (bind (fd, (struct sockaddr *)&addr, sizeof addr), 0);
    cr_assert_eq (listen (fd, 64), 0);
    cr_assert_eq (getsockname (fd, (struct sockaddr *)&addr, &len), 0);
    snprintf (endpoint, 64, "tcp://127.0.0.1:%d", ntohs (addr.sin_port));
    return fd;
}

void
jr_fake_router_open_on (jr_fake_router_t *self, int listener)
{
    cr_assert_null (self->sock, "open a closed fake only");
    self->sock = zsock_new (ZMQ_ROUTER);
    cr_assert (self->sock);
    int fd = dup (listener);
    cr_assert_neq (fd, -1);
    cr_assert_eq (zmq_setsockopt (zsock_resolve (self->sock), ZMQ_USE_FD, &fd, sizeof fd), 0);
    cr_assert_neq (zsock_bind (self->sock, "%s", self->endpoint), -1);
}

void
jr_fake_router_close (jr_fake_router_t *self)
{
    zmsg_destroy (&self->zmsg);
    zframe_destroy (&self->peer);
    zsock_destroy (&self->sock);
}

void
jr_fake_router_destroy (jr_fake_router_t *self)
{
    jr_fake_router_close (self);
    jr_msg_destroy (&self->msg);
    jr_msg_destroy (&self->out);
}

//  True if self->msg, from peer, is from the worker named self->name: a
//  READY with the name (a new connection or a reconnect), a RESULT it made,
//  or anything from the peer that sent one of those.
static bool
s_listened_to (jr_fake_router_t *self, zframe_t *peer)
{
    const jr_msg_t *msg = self->msg;
    bool ours = !self->name;
    if (self->name) {
        size_t len = strlen (self->name);
        jr_bytes_t by = msg->type == JR_MSG_RESULT && msg->njobs ? msg->jobs[0].worker
                                                                 : (jr_bytes_t){ NULL, 0 };
        ours = (msg->type == JR_MSG_READY && msg->name.len == len
                && memcmp (msg->name.ptr, self->name, len) == 0)
               || (by.len > len && memcmp (by.ptr, self->name, len) == 0 && by.ptr[len] == '@');
    }
    if (ours) {
        zframe_destroy (&self->peer);
        self->peer = zframe_dup (peer);
    }
    return ours || (self->peer && zframe_eq (self->peer, peer));
}

bool
jr_fake_router_recv (jr_fake_router_t *self, int timeout_ms)
{
    cr_assert (self->sock, "the fake is closed");
    int64_t until = zclock_mono () + timeout_ms;
    do {
        int64_t left = until - zclock_mono ();
        zsock_set_rcvtimeo (self->sock, left > 0 ? (int)left + 1 : 0);
        zmsg_destroy (&self->zmsg);
        self->zmsg = zmsg_recv (self->sock);
        if (!self->zmsg)
            return false;
        if (zmsg_size (self->zmsg) != 2)
            continue;  //  not a peer of ours: they send single frames
        zframe_t *peer = zmsg_first (self->zmsg);
        zframe_t *body = zmsg_next (self->zmsg);
        if (jr_msg_decode (self->msg, zframe_data (body), zframe_size (body)) == 0
            && s_listened_to (self, peer))
            return true;
    } while (zclock_mono () < until);
    return false;
}

bool
jr_fake_router_expect (jr_fake_router_t *self, int type, int timeout_ms)
{
    int64_t until = zclock_mono () + timeout_ms;
    while (zclock_mono () < until) {
        if (!jr_fake_router_recv (self, (int)(until - zclock_mono ())))
            return false;
        if (self->msg->type == type)
            return true;
        if (self->msg->type == JR_MSG_FREE || self->msg->type == JR_MSG_PROGRESS)
            continue;
        cr_assert_eq (self->msg->type, JR_MSG_HEARTBEAT, "expected %s, got %s", jr_msg_name (type),
                      jr_msg_name (self->msg->type));
    }
    return false;
}

void
jr_fake_router_send_to (jr_fake_router_t *self, zframe_t *peer, const jr_msg_t *msg)
{
    cr_assert (peer, "no peer to send to");
    int rc = jr_msg_send (msg, zsock_resolve (self->sock), zframe_data (peer), zframe_size (peer));
    cr_assert_eq (rc, 0);
}

void
jr_fake_router_send (jr_fake_router_t *self, const jr_msg_t *msg)
{
    jr_fake_router_send_to (self, self->peer, msg);
}

void
jr_fake_router_send_error (jr_fake_router_t *self, uint64_t tag, int code, const char *text)
{
    cr_assert (self->peer, "no peer to send to");
    jr_msg_send_error (zsock_resolve (self->sock), zframe_data (self->peer),
                       zframe_size (self->peer), tag, code, text);
}

typedef struct {
    const jr_fake_server_t *server;
    void *state;
} s_serve_t;

static void
s_serve (zsock_t *pipe, void *args)
{
    const jr_fake_server_t *server = ((s_serve_t *)args)->server;
    void *state = ((s_serve_t *)args)->state;
    jr_fake_router_t self;
    jr_fake_router_init (&self, NULL);
    zsock_signal (pipe, 0);
    zstr_send (pipe, self.endpoint);
    zpoller_t *poller = zpoller_new (pipe, self.sock, NULL);
    while (true) {
        void *which = zpoller_wait (poller, server->tick ? server->tick_ms : -1);
        if (which == pipe || (!which && zpoller_terminated (poller)))
            break;  //  $TERM or interrupted
        if (which == self.sock && jr_fake_router_recv (&self, 0))
            server->handle (&self, state);
        if (server->tick)
            server->tick (&self, state);
    }
    if (server->end)
        server->end (state);
    zpoller_destroy (&poller);
    jr_fake_router_destroy (&self);
}

zactor_t *
jr_fake_serve (const jr_fake_server_t *server, void *state, char *endpoint, size_t size)
{
    //  zactor_new returns once the actor has signalled, so args may live here.
    s_serve_t args = { server, state };
    zactor_t *actor = zactor_new (s_serve, &args);
    cr_assert (actor);
    char *at = zstr_recv (actor);
    cr_assert (at && strlen (at) < size);
    snprintf (endpoint, size, "%s", at);
    zstr_free (&at);
    return actor;
}
