/*  list_bench.c - what one LIST page costs a broker that holds many queued jobs  */
#include "broker/broker.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/proto.h"
#include <czmq.h>
#include <pthread.h>
#include <stdlib.h>

//  Usage: jr-list-bench [JOBS (default 1000000)] [v4|v7|seq]. Starts a
//  broker in this process (no journal, inproc), submits JOBS queued jobs of
//  task "bulk" (every 1000th of task "rare") with random v4 ids, or ids as
//  a UUID v7 client makes them in one millisecond (the same first 8 bytes,
//  a counter after), or sequential ids; then times LIST pages from a client: each
//  figure is the round trip of one page (the broker's scan, sort and
//  encoding, and the client's decoding), which is how long the page held
//  the broker's loop, at most.

static void *
s_run (void *arg)
{
    jr_broker_run (arg);
    return NULL;
}

static jr_msg_t *s_msg;

static void
s_send (zsock_t *sock, const jr_msg_t *msg)
{
    if (jr_msg_send (msg, zsock_resolve (sock), NULL, 0)) {
        fprintf (stderr, "list-bench: cannot send\n");
        exit (1);
    }
}

static zframe_t *
s_recv (zsock_t *sock)
{
    zframe_t *frame = zframe_recv (sock);
    if (!frame || jr_msg_decode (s_msg, zframe_data (frame), zframe_size (frame))) {
        fprintf (stderr, "list-bench: no answer\n");
        exit (1);
    }
    return frame;
}

//  Page through one listing; prints the pages, ids, slowest and mean page.
static void
s_walk (zsock_t *client, const char *what, int state, const char *task, uint32_t limit)
{
    uint8_t cursor[JR_CURSOR_SIZE];
    bool first = true, more = true;
    size_t pages = 0, ids = 0;
    int64_t slowest = 0, total = 0;
    while (more) {
        jr_msg_reset (s_msg, JR_MSG_LIST);
        s_msg->tag = 1;
        s_msg->code = state;
        s_msg->task = (jr_bytes_t){ (const uint8_t *)task, strlen (task) };
        s_msg->limit = limit;
        s_msg->cursor = (jr_bytes_t){ cursor, first ? 0 : JR_CURSOR_SIZE };
        int64_t start = jr_clock_mono_us ();
        s_send (client, s_msg);
        zframe_t *frame = s_recv (client);
        int64_t took = jr_clock_mono_us () - start;
        if (s_msg->type != JR_MSG_STATE) {
            fprintf (stderr, "list-bench: LIST refused\n");
            exit (1);
        }
        ids += s_msg->nmarks;
        more = s_msg->cursor.len == JR_CURSOR_SIZE;
        if (more)
            memcpy (cursor, s_msg->cursor.ptr, JR_CURSOR_SIZE);
        zframe_destroy (&frame);
        first = false;
        pages++;
        total += took;
        slowest = took > slowest ? took : slowest;
    }
    printf ("%-40s pages=%zu ids=%zu slowest_page_ms=%.1f mean_page_ms=%.1f all_ms=%.0f\n", what,
            pages, ids, slowest / 1000.0, total / 1000.0 / (double)pages, total / 1000.0);
}

int
main (int argc, char **argv)
{
    long jobs = argc > 1 ? atol (argv[1]) : 1000000;
    const char *kind = argc > 2 ? argv[2] : "v4";
    if (strcmp (kind, "v4") && strcmp (kind, "v7") && strcmp (kind, "seq")) {
        fprintf (stderr, "usage: jr-list-bench [JOBS] [v4|v7|seq]\n");
        return 2;
    }
    jr_log_init ("broker", JR_LOG_ERROR);
    zsys_init ();
    jr_broker_config_t config = JR_BROKER_CONFIG_DEFAULT;
    config.clients = "inproc://list-bench-clients";
    config.workers = "inproc://list-bench-workers";
    config.liveness_ms = 600000;
    jr_broker_t *broker = jr_broker_new (&config);
    if (!broker)
        return 1;
    pthread_t thread;
    pthread_create (&thread, NULL, s_run, broker);
    zsock_t *client = zsock_new_dealer (config.clients);
    zsock_set_rcvtimeo (client, 600000);
    s_msg = jr_msg_new ();
    int64_t start = jr_clock_mono_us ();
    for (long done = 0; done < jobs;) {
        jr_msg_reset (s_msg, JR_MSG_SUBMIT);
        s_msg->tag = 2;
        for (int i = 0; i < 10000 && done < jobs; i++, done++) {
            jr_job_t *job = jr_msg_add_job (s_msg);
            jr_job_init (job, done % 1000 ? "bulk" : "rare");
            if (*kind != 'v' || kind[1] == '7') {
                static const uint8_t v7[8] = { 0x01, 0x93, 0x8a, 0x5c, 0x2e, 0x41, 0x70, 0x00 };
                memset (job->id, 0, JR_ID_SIZE);
                if (kind[1] == '7')
                    memcpy (job->id, v7, sizeof v7), job->id[8] = 0x80;
                for (int k = 15, n = 0; k > 8; k--, n += 8)
                    job->id[k] = (uint8_t)((unsigned long)(done + 1) >> n);
            }
        }
        s_send (client, s_msg);
        zframe_destroy ((zframe_t *[]){ s_recv (client) });
    }
    printf ("submitted %ld queued jobs (%s ids) in %.1f s\n", jobs, kind,
            (jr_clock_mono_us () - start) / 1e6);
    s_walk (client, "LIST queued, limit 100000 (dense)", JR_STATE_QUEUED, "", 0);
    s_walk (client, "LIST queued, limit 1000", JR_STATE_QUEUED, "", 1000);
    s_walk (client, "LIST queued task=rare (1 in 1000)", JR_STATE_QUEUED, "rare", 0);
    s_walk (client, "LIST running (none: whole budget)", JR_STATE_RUNNING, "", 0);
    jr_msg_destroy (&s_msg);
    zsock_destroy (&client);
    jr_broker_stop (broker);
    pthread_join (thread, NULL);
    jr_broker_destroy (&broker);
    return 0;
}
