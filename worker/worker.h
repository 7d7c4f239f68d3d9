/*  worker.h - jr-worker: takes jobs from the broker, runs them, sends results to the ingester  */
#ifndef JR_WORKER_WORKER_H
#define JR_WORKER_WORKER_H
#include <stddef.h>
#include <jr/task.h>
#include "common/metrics.h"
#include "proto/keys.h"
#include "worker/tasks.h"

#define JR_WORKER_DEFAULT_BROKER   "tcp://127.0.0.1:5571"
#define JR_WORKER_DEFAULT_INGESTER "tcp://127.0.0.1:5572"
//  Results waiting for the ingester's ACK before the worker takes no new job.
//  An ACK waits for a commit, so under load a worker has (its rate x commit
//  time) results out: at 60k jobs/s and 20-60 ms, up to 3600. At 4096 the
//  workers of bench/run kept stopping for ACKs (103k jobs/s against 119-133k).
#define JR_WORKER_DEFAULT_BACKLOG 16384
#define JR_WORKER_MAX_CONCURRENCY 4096  //  threads
#define JR_WORKER_MAX_PREFETCH    4096  //  jobs held beyond them

//  Zero or NULL fields take their defaults.
typedef struct {
    const char *broker;         //  endpoint, default JR_WORKER_DEFAULT_BROKER
    const char *ingester;       //  endpoint, default JR_WORKER_DEFAULT_INGESTER
    int concurrency;            //  executor threads, default the number of cores
    int prefetch;               //  jobs held beyond concurrency, waiting for a thread,
                                //  default 0. Their deadlines run while they wait
    const char *name;           //  default "<host>-<pid>"
    int heartbeat_ms;           //  HEARTBEAT to the broker when idle this long, default 1000
    int liveness_ms;            //  reconnect when the broker is silent this long, default 5000
    int resend_ms;              //  resend results not ACKed this long, default 2000
    int grace_ms;               //  a drain lets running jobs finish this long, default
                                //  10000; negative = no grace (hand back at once)
    size_t max_payload;         //  per result, default and ceiling JR_MAX_PAYLOAD (16 MiB)
    size_t backlog;             //  results waiting for the ingester's ACK before no new job
                                //  is taken, default JR_WORKER_DEFAULT_BACKLOG
    const char *tasks;          //  comma-separated names to serve, default all registered
    const char *task_timeouts;  //  "NAME=MS[,NAME=MS...]": the deadline of a job of that
                                //  task with timeout_ms 0; "*=MS" for every other task;
                                //  MS 0 = none. Default none
    const jr_keys_t *keys;      //  CurveZMQ on both sockets; NULL = none
    const char *health_file;    //  touched (created if missing) at most once a second
                                //  when the broker is heard; NULL = none
} jr_worker_config_t;

typedef struct _jr_worker_t jr_worker_t;

//  Create a worker and connect its sockets (cfg borrowed, may be NULL).
//  Returns NULL, with an error logged, on a bad endpoint or value, or a task
//  in cfg->tasks or cfg->task_timeouts that is not registered.
jr_worker_t *jr_worker_new (const jr_worker_config_t *cfg);
//  Run the event loop until a drain ends: jr_worker_drain, jr_worker_stop,
//  or zsys_interrupted (a first drain) when czmq's signal handler is left
//  installed. Every job the worker held is reported DONE to the broker
//  before it returns: with its result's state once the ingester ACKed it,
//  or handed back (code QUEUED) when it was stopped or its result was not
//  ACKed in time. Returns 0, or -1 if jobs had to be handed back at exit
//  for want of an ACK or because a task did not stop (they run again
//  elsewhere: at least once).
int jr_worker_run (jr_worker_t *self);
//  Ask for a drain; safe from any thread or a signal handler. The first
//  call says BYE to the broker (no more jobs), lets running jobs finish for
//  up to grace_ms, reporting them as usual, then cancels what still runs
//  and hands it back (DONE code QUEUED, no result to the ingester), waits
//  up to 2 s for outstanding ACKs, and makes jr_worker_run return. A second
//  call skips what is left of the grace.
void jr_worker_drain (jr_worker_t *self);
//  A drain without grace: like two calls of jr_worker_drain. Same safety.
void jr_worker_stop (jr_worker_t *self);
//  Destroy a worker that is not running; nulls the pointer.
void jr_worker_destroy (jr_worker_t **self_p);
//  The worker's metrics (prefix jr_worker), which its stats line reads;
//  borrowed, for as long as the worker lives.
jr_metrics_t *jr_worker_metrics (jr_worker_t *self);
//  "name@host" as it appears in results (borrowed).
const char *jr_worker_ident (const jr_worker_t *self);
#endif
