/*  test_ingester.c - the real jr-ingester: a read-only database, a FETCH that asks too much  */
#include "proto/proto.h"
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static jr_h_env_t env;

static void
s_fini (void)
{
    jr_h_cleanup ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (ingester, .fini = s_fini, .timeout = 120);

//  Started on a database it may not write, the ingester would ACK nothing
//  for ever; it must refuse to start, saying which file. The database is
//  a real one (made by the ingester itself), made read-only for the
//  unprivileged user the ingester then runs as (root writes any file).
Test (ingester, refuses_to_start_on_a_read_only_database)
{
    jr_h_env_init (&env, "ingester-ro");
    pid_t pid = jr_h_ingester (&env);
    CHECK (jr_h_stop (pid, SIGTERM, 10000), "first ingester stops");
    CHECK (chmod (env.db, 0444) == 0, "chmod db");
    CHECK (chmod (env.dir, 0777) == 0, "chmod dir");
    char shm[320];
    snprintf (shm, sizeof shm, "%s-shm", env.db);
    chmod (shm, 0666);  //  if it is left, so a reader may use it
    char bin[512];
    jr_h_bin (bin, sizeof bin, "jr-ingester");
    char *const argv[] = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin,
                           "--bind",  env.ingester_ep, "--db",          env.db,           NULL };
    pid = jr_h_spawn_argv (&env, "ingester-ro", argv);
    int status = 0;
    CHECK (jr_h_wait_exit (pid, 20000, &status), "the ingester exits by itself");
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) != 0, "with a failure status (%d)", status);
    char *log = jr_h_log (&env, "ingester-ro");
    CHECK (strstr (log, env.db) && strstr (log, "read-only"), "the log names the file: %s", log);
    free (log);
}

//  Peak resident memory of a process in kB (VmHWM), -1 if unreadable.
static long
s_peak_kb (pid_t pid)
{
    char path[64], line[256];
    snprintf (path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *file = fopen (path, "r");
    long kb = -1;
    while (file && fgets (line, sizeof line, file))
        if (strncmp (line, "VmHWM:", 6) == 0)
            kb = atol (line + 6);
    if (file)
        fclose (file);
    return kb;
}

//  One reply on a DEALER, decoded into msg (the frame backs its views).
static zframe_t *
s_reply (zsock_t *sock, jr_msg_t *msg)
{
    zframe_t *frame = zframe_recv (sock);
    CHECK (frame, "an answer from the ingester");
    CHECK (jr_msg_decode (msg, zframe_data (frame), zframe_size (frame)) == 0, "decodes");
    return frame;
}

//  Store one result with a 1 MB payload through sock; its id in id.
static void
s_store_big (zsock_t *sock, uint8_t id[JR_ID_SIZE])
{
    static uint8_t payload[1 << 20];
    memset (payload, 'r', sizeof payload);
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_RESULT);
    jr_job_t *job = jr_msg_add_job (msg);
    jr_job_init (job, "echo");
    job->attempt = 1;
    job->success = true;
    job->state = JR_STATE_SUCCEEDED;
    job->payload = (jr_bytes_t){ payload, sizeof payload };
    memcpy (id, job->id, JR_ID_SIZE);
    CHECK (jr_msg_send (msg, zsock_resolve (sock), NULL, 0) == 0, "send RESULT");
    zframe_t *frame = s_reply (sock, msg);
    CHECK (msg->type == JR_MSG_ACK && msg->nmarks == 1 && msg->marks[0].code == 0, "stored");
    zframe_destroy (&frame);
    jr_msg_destroy (&msg);
}

//  A real ingester holding one 1 MB result: its pid, a DEALER to it, the id.
static pid_t
s_ingester_with_big (zsock_t **sock_p, uint8_t id[JR_ID_SIZE])
{
    pid_t pid = jr_h_ingester (&env);
    zsock_t *sock = zsock_new_dealer (env.ingester_ep);
    CHECK (sock, "dealer");
    zsock_set_rcvtimeo (sock, 20000);  //  only a bound that turns a hang into a failure
    s_store_big (sock, id);
    *sock_p = sock;
    return pid;
}

//  A client that sends FETCHes and never reads the answers: what waits for
//  it in the ingester is bounded (about 80 MiB), not 1 MB per FETCH.
Test (ingester, a_client_that_never_reads_cannot_pile_up_answers)
{
    jr_h_env_init (&env, "ingester-unread");
    zsock_t *sock;
    uint8_t id[JR_ID_SIZE];
    pid_t pid = s_ingester_with_big (&sock, id);
    long before = s_peak_kb (pid);
    zsock_t *lazy = zsock_new (ZMQ_DEALER);
    zsock_set_rcvhwm (lazy, 1);     //  its own queue takes almost nothing,
    zsock_set_rcvbuf (lazy, 4096);  //  nor does its kernel buffer
    CHECK (zsock_connect (lazy, "%s", env.ingester_ep) == 0, "connect");
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_FETCH);
    jr_msg_add_mark (msg, id, 0, 0);
    enum { FETCHES = 600 };  //  600 answers of 1 MB each
    for (int i = 0; i < FETCHES; i++) {
        msg->tag = (uint64_t)i + 1;
        CHECK (jr_msg_send (msg, zsock_resolve (lazy), NULL, 0) == 0, "send FETCH");
    }
    //  The ingester has read them once it answers the reading client (a few
    //  rounds, as it takes its peers in turn).
    for (int round = 0; round < 5; round++) {
        msg->tag = 1000000 + (uint64_t)round;
        CHECK (jr_msg_send (msg, zsock_resolve (sock), NULL, 0) == 0, "send FETCH");
        zframe_t *frame = s_reply (sock, msg);
        CHECK (msg->type == JR_MSG_RESULTS && msg->njobs == 1, "the reading client is served");
        zframe_destroy (&frame);
        jr_msg_reset (msg, JR_MSG_FETCH);
        jr_msg_add_mark (msg, id, 0, 0);
        jr_h_sleep_ms (100);
    }
    long grown = (s_peak_kb (pid) - before) / 1024;
    CHECK (grown < 250, "unread answers took %ld MB", grown);
    zsock_destroy (&lazy);
    jr_msg_destroy (&msg);
    zsock_destroy (&sock);
}

//  One FETCH naming a 1 MB result 2,000 times made the ingester's memory go
//  from 10 MB to 2 GB. It must answer the id once, and stay small.
Test (ingester, fetch_of_one_big_result_many_times_stays_small)
{
    jr_h_env_init (&env, "ingester-fetch");
    zsock_t *sock;
    uint8_t id[JR_ID_SIZE];
    pid_t pid = s_ingester_with_big (&sock, id);
    jr_msg_t *msg = jr_msg_new ();
    long before = s_peak_kb (pid);

    enum { TIMES = 2000 };
    jr_msg_reset (msg, JR_MSG_FETCH);
    msg->tag = 1;
    for (int i = 0; i < TIMES; i++)
        jr_msg_add_mark (msg, id, 0, 0);
    CHECK (jr_msg_send (msg, zsock_resolve (sock), NULL, 0) == 0, "send FETCH");
    zframe_t *frame = s_reply (sock, msg);
    CHECK (msg->type == JR_MSG_RESULTS && msg->tag == 1, "RESULTS");
    CHECK (msg->njobs == 1 && msg->nmarks == 0, "the id once: %u jobs, %u marks", msg->njobs,
           msg->nmarks);
    CHECK (msg->jobs[0].payload.len == 1 << 20, "whole");
    zframe_destroy (&frame);
    long after = s_peak_kb (pid);
    CHECK (before > 0 && after > 0, "VmHWM readable");
    CHECK (after - before < 64 * 1024, "peak memory grew by %ld kB", after - before);
    jr_msg_destroy (&msg);
    zsock_destroy (&sock);
}
