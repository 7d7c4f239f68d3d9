/*  zmq_floor.c - jr-zmq-floor: what three ZeroMQ hops cost here when no stage does any work  */
//  Four processes in a ring over TCP loopback, shaped like a job's path:
//  client -> broker -> worker -> ingester, and back to the client for the
//  next round. One 150-byte message in flight. It prints the p50 and p99 of
//  client send to ingester receive: the span of bench/run's latency row,
//  with nothing done at any stage. Our latency cannot go below it.
#include "bench/percentile.h"
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_STAGES   4     //  client, broker, worker, ingester
#define S_SIZE     150   //  bytes per message, about a small job's
#define S_WARMUP   100   //  rounds not counted
#define S_RECV_MS  5000  //  a stage silent this long has failed
#define S_OFF_SENT 0     //  client's send time, monotonic ns
#define S_OFF_SEEN 8     //  last stage's receive time, monotonic ns
#define S_OFF_STOP 16    //  1: forward once more, then exit

static int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

//  Stages started by the client, killed on its way out (none in a stage).
static pid_t s_children[S_STAGES];

static void
s_kill_children (void)
{
    for (int k = 1; k < S_STAGES; k++)
        if (s_children[k] > 0) {
            kill (s_children[k], SIGKILL);
            waitpid (s_children[k], NULL, 0);
        }
}

//  A PULL bound to a free loopback port; its endpoint goes into ep.
static void *
s_pull (void *ctx, char *ep, size_t size)
{
    void *pull = zmq_socket (ctx, ZMQ_PULL);
    int ms = S_RECV_MS, zero = 0;
    zmq_setsockopt (pull, ZMQ_RCVTIMEO, &ms, sizeof ms);
    zmq_setsockopt (pull, ZMQ_LINGER, &zero, sizeof zero);
    if (!pull || zmq_bind (pull, "tcp://127.0.0.1:*") != 0
        || zmq_getsockopt (pull, ZMQ_LAST_ENDPOINT, ep, &size) != 0) {
        fprintf (stderr, "jr-zmq-floor: cannot bind: %s\n", zmq_strerror (errno));
        s_kill_children ();
        exit (1);
    }
    return pull;
}

static void *
s_push (void *ctx, const char *ep)
{
    void *push = zmq_socket (ctx, ZMQ_PUSH);
    int linger = 1000;  //  the stop message must get through before the exit
    zmq_setsockopt (push, ZMQ_LINGER, &linger, sizeof linger);
    if (!push || zmq_connect (push, ep) != 0) {
        fprintf (stderr, "jr-zmq-floor: cannot connect to %s: %s\n", ep, zmq_strerror (errno));
        s_kill_children ();
        exit (1);
    }
    return push;
}

//  Stages 1..3: pass every message on; the last stamps when it saw it.
static int
s_stage (int stage, const char *next, int report_fd)
{
    void *ctx = zmq_ctx_new ();
    char ep[256];
    void *pull = s_pull (ctx, ep, sizeof ep);
    dprintf (report_fd, "%s\n", ep);
    close (report_fd);
    void *push = s_push (ctx, next);
    uint8_t buf[S_SIZE];
    while (true) {
        int n = zmq_recv (pull, buf, sizeof buf, 0);
        if (n != S_SIZE)
            break;  //  the client went away, or something else: done
        if (stage == S_STAGES - 1) {
            int64_t now = s_now_ns ();
            memcpy (buf + S_OFF_SEEN, &now, 8);
        }
        zmq_send (push, buf, sizeof buf, 0);
        if (buf[S_OFF_STOP])
            break;
    }
    zmq_close (pull);
    zmq_close (push);
    zmq_ctx_term (ctx);
    return 0;
}

//  Start stage k (its next stage's endpoint known), return its endpoint.
static void
s_start (const char *self, int k, const char *next, char *ep, size_t size)
{
    int fds[2];
    if (pipe (fds) != 0) {
        perror ("jr-zmq-floor: pipe");
        exit (1);
    }
    char stage[8], fd[16];  //  made before the fork: only exec after it
    snprintf (stage, sizeof stage, "%d", k);
    snprintf (fd, sizeof fd, "%d", fds[1]);
    pid_t pid = fork ();
    if (pid == 0) {
        close (fds[0]);
        execl (self, self, "--stage", stage, "--next", next, "--fd", fd, (char *)NULL);
        _exit (127);
    }
    close (fds[1]);
    s_children[k] = pid;
    FILE *in = fdopen (fds[0], "r");
    if (pid < 0 || !in || !fgets (ep, (int)size, in)) {
        fprintf (stderr, "jr-zmq-floor: stage %d did not start\n", k);
        s_kill_children ();
        exit (1);
    }
    fclose (in);
    ep[strcspn (ep, "\n")] = 0;
}

int
main (int argc, char **argv)
{
    long jobs = 2000;
    int stage = 0, fd = -1;
    const char *next = NULL;
    for (int i = 1; i < argc; i++) {
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (argv[i], "--jobs") == 0 && val)
            jobs = atol (val), i++;
        else if (strcmp (argv[i], "--stage") == 0 && val)
            stage = atoi (val), i++;
        else if (strcmp (argv[i], "--next") == 0 && val)
            next = val, i++;
        else if (strcmp (argv[i], "--fd") == 0 && val)
            fd = atoi (val), i++;
        else {
            fprintf (stderr, "usage: jr-zmq-floor [--jobs N]\n");
            return 2;
        }
    }
    if (stage > 0 && stage < S_STAGES && next && fd >= 0)
        return s_stage (stage, next, fd);
    if (stage != 0 || jobs < 1 || jobs > 10000000) {
        fprintf (stderr, "usage: jr-zmq-floor [--jobs N] (N from 1 to 10000000)\n");
        return 2;
    }

    //  The ring is built backwards: each stage needs its next one's port.
    void *ctx = zmq_ctx_new ();
    char ep[S_STAGES][256];
    void *pull = s_pull (ctx, ep[0], sizeof ep[0]);
    for (int k = S_STAGES - 1; k >= 1; k--)
        s_start ("/proc/self/exe", k, ep[(k + 1) % S_STAGES], ep[k], sizeof ep[k]);
    void *push = s_push (ctx, ep[1]);

    int64_t *lat = calloc ((size_t)jobs, sizeof *lat);
    if (!lat) {
        fprintf (stderr, "jr-zmq-floor: out of memory\n");
        s_kill_children ();
        return 1;
    }
    uint8_t buf[S_SIZE] = { 0 };
    int rc = 0;
    for (long i = -S_WARMUP; i < jobs && rc == 0; i++) {
        int64_t sent = s_now_ns (), seen;
        memcpy (buf + S_OFF_SENT, &sent, 8);
        if (zmq_send (push, buf, sizeof buf, 0) != S_SIZE
            || zmq_recv (pull, buf, sizeof buf, 0) != S_SIZE) {
            fprintf (stderr, "jr-zmq-floor: the ring broke: %s\n", zmq_strerror (errno));
            rc = 1;
            break;
        }
        memcpy (&seen, buf + S_OFF_SEEN, 8);
        if (i >= 0)
            lat[i] = seen - sent;
    }
    if (rc == 0) {
        buf[S_OFF_STOP] = 1;
        zmq_send (push, buf, sizeof buf, 0);
        zmq_recv (pull, buf, sizeof buf, 0);
        for (int k = 1; k < S_STAGES; k++) {
            waitpid (s_children[k], NULL, 0);
            s_children[k] = 0;
        }
        bench_pct_t pct = bench_percentiles (lat, (size_t)jobs);
        printf ("zmq-floor hops=3 jobs=%ld p50_us=%lld p99_us=%lld\n", jobs,
                (long long)(pct.p50 / 1000), (long long)(pct.p99 / 1000));
    }
    s_kill_children ();
    free (lat);
    zmq_close (pull);
    zmq_close (push);
    zmq_ctx_term (ctx);
    return rc;
}
