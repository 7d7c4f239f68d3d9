/*  fake_peer.c - a DEALER playing a client, worker or ingester's peer in unit tests  */
#include "tests/fakes/fake_peer.h"
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

zsock_t *
jr_fake_dealer (const char *endpoint)
{
    zsock_t *sock = zsock_new_dealer (endpoint);
    cr_assert_not_null (sock, "a DEALER on %s", endpoint);
    return sock;
}

void
jr_fake_send (zsock_t *sock, const jr_msg_t *msg)
{
    cr_assert_eq (jr_msg_send (msg, zsock_resolve (sock), NULL, 0), 0);
}

zframe_t *
jr_fake_expect_ex (zsock_t *sock, jr_msg_t *msg, int type, int timeout_ms, bool alive)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    for (;;) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return NULL;
        zsock_set_rcvtimeo (sock, (int)left);
        zframe_t *frame = zframe_recv (sock);
        if (!frame)
            return NULL;
        cr_assert_not (zframe_more (frame), "a message is one frame");
        cr_assert_eq (jr_msg_decode (msg, zframe_data (frame), zframe_size (frame)), 0);
        if (msg->type == type)
            return frame;
        zframe_destroy (&frame);
        if (msg->type != JR_MSG_HEARTBEAT)
            cr_assert_fail ("expected %s, got %s", jr_msg_name (type), jr_msg_name (msg->type));
        if (alive) {
            jr_msg_t hb = { .type = JR_MSG_HEARTBEAT };
            jr_fake_send (sock, &hb);
        }
    }
}

zframe_t *
jr_fake_expect (zsock_t *sock, jr_msg_t *msg, int type, int timeout_ms)
{
    return jr_fake_expect_ex (sock, msg, type, timeout_ms, true);
}

zframe_t *
jr_fake_recv (zsock_t *sock, jr_msg_t *msg, int type, int timeout_ms)
{
    zframe_t *frame = jr_fake_expect (sock, msg, type, timeout_ms);
    cr_assert (frame, "no %s within %d ms", jr_msg_name (type), timeout_ms);
    return frame;
}

void
jr_fake_ready (zsock_t *sock, jr_msg_t *msg, const char *name, const char *const *tasks,
               size_t ntasks, uint32_t slots)
{
    jr_msg_reset (msg, JR_MSG_READY);
    msg->name = (jr_bytes_t){ (const uint8_t *)name, strlen (name) };
    msg->host = (jr_bytes_t){ (const uint8_t *)"test", 4 };
    msg->slots = slots;
    msg->capacity = slots;
    for (size_t i = 0; i < ntasks; i++)
        jr_msg_add_task (msg, (jr_bytes_t){ (const uint8_t *)tasks[i], strlen (tasks[i]) });
    jr_fake_send (sock, msg);
}

zsock_t *
jr_fake_worker (const char *endpoint, jr_msg_t *msg, const char *task, uint32_t slots)
{
    zsock_t *sock = jr_fake_dealer (endpoint);
    jr_fake_ready (sock, msg, "fake", &task, 1, slots);
    return sock;
}

void
jr_fake_submit (zsock_t *client, jr_msg_t *msg, int n, int priority, const char *task)
{
    jr_msg_reset (msg, JR_MSG_SUBMIT);
    msg->tag = 7;
    for (int i = 0; i < n; i++) {
        jr_job_t *job = jr_msg_add_job (msg);
        jr_job_init (job, task);
        job->priority = priority;
    }
    jr_fake_send (client, msg);
    zframe_t *reply = jr_fake_expect (client, msg, JR_MSG_ACCEPTED, 2000);
    cr_assert_not_null (reply);
    cr_assert_eq (msg->tag, 7);
    cr_assert_eq (msg->nmarks, (uint32_t)n);
    for (int i = 0; i < n; i++)
        cr_assert_eq (msg->marks[i].code, 0);
    zframe_destroy (&reply);
}

int
jr_fake_submit_ids (zsock_t *client, jr_msg_t *msg, int n, const char *task, size_t vars_len,
                    uint8_t (*ids)[JR_ID_SIZE])
{
    cr_assert (vars_len == 0 || vars_len >= 8, "vars of %zu bytes cannot be a map", vars_len);
    uint8_t *vars = calloc (1, vars_len + 8);
    cr_assert_not_null (vars);
    size_t len = 0;
    if (vars_len) {  //  {"b": bin32 of the rest}
        vars[len++] = 0x81, vars[len++] = 0xa1, vars[len++] = 'b', vars[len++] = 0xc6;
        uint32_t body = (uint32_t)(vars_len - 8);
        for (int i = 3; i >= 0; i--)
            vars[len++] = (uint8_t)(body >> (8 * i));
        len += body;
    }
    jr_msg_reset (msg, JR_MSG_SUBMIT);
    msg->tag = 5;
    for (int i = 0; i < n; i++) {
        jr_job_t *job = jr_msg_add_job (msg);
        jr_job_init (job, task);
        job->vars = (jr_bytes_t){ len ? vars : NULL, len };
        if (ids)
            memcpy (ids[i], job->id, JR_ID_SIZE);
    }
    jr_fake_send (client, msg);
    free (vars);
    zframe_t *reply = jr_fake_expect (client, msg, JR_MSG_ACCEPTED, 5000);
    cr_assert_not_null (reply);
    int accepted = 0;
    for (uint32_t i = 0; i < msg->nmarks; i++)
        accepted += msg->marks[i].code == 0;
    zframe_destroy (&reply);
    return accepted;
}

void
jr_fake_status (zsock_t *client, jr_msg_t *msg, const uint8_t id[JR_ID_SIZE], int type, int *state,
                uint32_t *attempt)
{
    jr_msg_reset (msg, type);
    msg->tag = 11;
    jr_msg_add_mark (msg, id, 0, 0);
    jr_fake_send (client, msg);
    zframe_t *frame = jr_fake_expect (client, msg, JR_MSG_STATE, 2000);
    cr_assert_not_null (frame);
    cr_assert_eq (msg->nmarks, 1);
    *state = msg->marks[0].code;
    *attempt = msg->marks[0].attempt;
    zframe_destroy (&frame);
}

void
jr_fake_done (zsock_t *worker, jr_msg_t *msg, const uint8_t id[JR_ID_SIZE], uint32_t attempt,
              int code)
{
    jr_msg_reset (msg, JR_MSG_DONE);
    jr_msg_add_mark (msg, id, attempt, code);
    jr_fake_send (worker, msg);
}

int
jr_fake_drain_dispatch (zsock_t *worker, jr_msg_t *msg, int quiet_ms, jr_mark_t *first)
{
    int n = 0;
    zframe_t *frame;
    while ((frame = jr_fake_expect (worker, msg, JR_MSG_DISPATCH, quiet_ms))) {
        if (n == 0 && first && msg->njobs) {
            //  A mark copies the job's id and attempt out of the frame's views.
            jr_msg_add_mark (msg, msg->jobs[0].id, msg->jobs[0].attempt, 0);
            *first = msg->marks[0];
        }
        n += (int)msg->njobs;
        zframe_destroy (&frame);
    }
    return n;
}

void
jr_fake_result (zsock_t *worker, jr_msg_t *msg, const jr_job_t *jobs, size_t n)
{
    jr_msg_reset (msg, JR_MSG_RESULT);
    for (size_t i = 0; i < n; i++)
        *jr_msg_add_job (msg) = jobs[i];
    jr_fake_send (worker, msg);
}

void
jr_fake_fetch (zsock_t *client, jr_msg_t *msg, uint64_t tag, const jr_job_t *jobs, size_t n,
               uint32_t wait_ms)
{
    jr_msg_reset (msg, JR_MSG_FETCH);
    msg->tag = tag;
    msg->wait_ms = wait_ms;
    for (size_t i = 0; i < n; i++)
        jr_msg_add_mark (msg, jobs[i].id, 0, 0);
    jr_fake_send (client, msg);
}

void
jr_fake_ingester_sync (zsock_t *sock, jr_msg_t *msg, uint64_t tag, int timeout_ms)
{
    jr_job_t probe;
    jr_job_init (&probe, "echo");  //  a fresh id: never stored
    jr_fake_fetch (sock, msg, tag, &probe, 1, 0);
    zframe_t *frame = jr_fake_recv (sock, msg, JR_MSG_RESULTS, timeout_ms);
    cr_assert_eq (msg->tag, tag);
    cr_assert_eq (msg->njobs, 0);
    cr_assert_eq (msg->nmarks, 1);
    cr_assert_eq (msg->marks[0].code, JR_ENOT_FOUND);
    zframe_destroy (&frame);
}
