/*  worker_stress.c - many jobs through an in-process worker and fake peers (TSan, throughput)  */
#include "common/clock.h"
#include "common/log.h"
#include "proto/proto.h"
#include "worker/worker.h"
#include <czmq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *
s_run (void *worker)
{
    jr_worker_run (worker);
    return NULL;
}

//  Receive one message from a ROUTER (waiting up to 5 s) into msg; the frame
//  goes to *zmsg_p, the routing id to *peer_p (both replaced).
static bool
s_recv (zsock_t *sock, jr_msg_t *msg, zmsg_t **zmsg_p, zframe_t **peer_p)
{
    zmsg_destroy (zmsg_p);
    *zmsg_p = zmsg_recv (sock);
    if (!*zmsg_p || zmsg_size (*zmsg_p) != 2)
        return false;
    zframe_destroy (peer_p);
    *peer_p = zframe_dup (zmsg_first (*zmsg_p));
    zframe_t *body = zmsg_next (*zmsg_p);
    return jr_msg_decode (msg, zframe_data (body), zframe_size (body)) == 0;
}

int
main (int argc, char **argv)
{
    long total = argc > 1 ? atol (argv[1]) : 20000;
    int concurrency = argc > 2 ? atoi (argv[2]) : 4;
    jr_log_init ("stress", JR_LOG_ERROR);  //  deadline warnings are expected
    zsock_t *broker = zsock_new (ZMQ_ROUTER), *ingester = zsock_new (ZMQ_ROUTER);
    int bport = zsock_bind (broker, "tcp://127.0.0.1:*");
    int iport = zsock_bind (ingester, "tcp://127.0.0.1:*");
    //  Fake peers: only a bound on each receive, so a stuck worker fails the run.
    zsock_set_rcvtimeo (broker, 5000);
    zsock_set_rcvtimeo (ingester, 5000);
    char bep[64], iep[64];
    snprintf (bep, sizeof bep, "tcp://127.0.0.1:%d", bport);
    snprintf (iep, sizeof iep, "tcp://127.0.0.1:%d", iport);
    jr_worker_t *worker = jr_worker_new (&(jr_worker_config_t){
        .broker = bep, .ingester = iep, .concurrency = concurrency, .name = "stress" });
    pthread_t thread;
    pthread_create (&thread, NULL, s_run, worker);

    jr_msg_t *in = jr_msg_new (), *out = jr_msg_new ();
    zmsg_t *zb = NULL, *zi = NULL;
    zframe_t *bpeer = NULL, *ipeer = NULL;
    if (!s_recv (broker, in, &zb, &bpeer) || in->type != JR_MSG_READY)
        return 1;
    long credit = in->slots, sent = 0, done = 0, results = 0, failed = 0;
    //  Vars {"data": "stress"} so sha256 has something to chew.
    static const uint8_t vars[] = { 0x81, 0xa4, 'd', 'a', 't', 'a', 0xa6,
                                    's',  't',  'r', 'e', 's', 's' };
    //  {"ms": 20} for sleeps cut short by a 1 ms deadline: the cancel path.
    static const uint8_t sleep_vars[] = { 0x81, 0xa2, 'm', 's', 20 };
    int64_t start = jr_clock_mono_us ();
    zpoller_t *poller = zpoller_new (broker, ingester, NULL);
    while (done < total) {
        if (credit > 0 && sent < total) {
            jr_msg_reset (out, JR_MSG_DISPATCH);
            for (; credit > 0 && sent < total; credit--, sent++) {
                jr_job_t *job = jr_msg_add_job (out);
                if (sent % 50 == 0) {
                    jr_job_init (job, "sleep");
                    job->vars = (jr_bytes_t){ sleep_vars, sizeof sleep_vars };
                    job->timeout_ms = 1;
                }
                else {
                    jr_job_init (job, sent % 3 ? "echo" : "sha256");
                    job->vars = (jr_bytes_t){ vars, sizeof vars };
                    job->timeout_ms = sent % 7 ? 0 : 5000;
                }
                job->attempt = 1;
            }
            jr_msg_send (out, zsock_resolve (broker), zframe_data (bpeer), zframe_size (bpeer));
        }
        void *which = zpoller_wait (poller, 5000);
        if (!which) {
            fprintf (stderr, "stalled: sent=%ld results=%ld done=%ld\n", sent, results, done);
            return 1;
        }
        if (which == ingester) {
            if (!s_recv (ingester, in, &zi, &ipeer) || in->type != JR_MSG_RESULT)
                return 1;
            jr_msg_reset (out, JR_MSG_ACK);
            for (uint32_t i = 0; i < in->njobs; i++) {
                failed += !in->jobs[i].success;
                jr_msg_add_mark (out, in->jobs[i].id, in->jobs[i].attempt, 0);
            }
            results += in->njobs;
            jr_msg_send (out, zsock_resolve (ingester), zframe_data (ipeer), zframe_size (ipeer));
        }
        else {
            if (!s_recv (broker, in, &zb, &bpeer))
                return 1;
            if (in->type == JR_MSG_DONE) {
                done += in->nmarks;
                credit += in->nmarks;
            }
            else if (in->type == JR_MSG_READY)
                credit = in->slots;
        }
    }
    double secs = (double)(jr_clock_mono_us () - start) / 1e6;
    printf ("%ld jobs, concurrency %d: %.2f s, %.0f jobs/s (results %ld, failed %ld)\n", total,
            concurrency, secs, (double)total / secs, results, failed);
    jr_worker_stop (worker);
    pthread_join (thread, NULL);
    jr_worker_destroy (&worker);
    zpoller_destroy (&poller);
    zmsg_destroy (&zb);
    zmsg_destroy (&zi);
    zframe_destroy (&bpeer);
    zframe_destroy (&ipeer);
    jr_msg_destroy (&in);
    jr_msg_destroy (&out);
    zsock_destroy (&broker);
    zsock_destroy (&ingester);
    return 0;
}
