/*  broker.h - the broker: journaled queues, dispatch by credit, leases, retries  */
#ifndef JR_BROKER_H
#define JR_BROKER_H
#include "broker/journal.h"
#include "common/metrics.h"
#include "proto/keys.h"
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *clients;        //  ROUTER endpoint for clients
    const char *workers;        //  ROUTER endpoint for workers
    int heartbeat_ms;           //  heartbeat to each worker when idle
    int liveness_ms;            //  a worker silent this long is forgotten
    size_t max_jobs;            //  live jobs at most; more get QUEUE_FULL
    const char *journal;        //  journal directory; NULL = none (tests only)
    jr_fsync_t fsync;           //  when the journal syncs
    int fsync_ms;               //  interval for JR_FSYNC_BATCH
    int lease_grace_ms;         //  a lease is the job's timeout plus this
    int retry_base_ms;          //  first retry delay; doubles per attempt
    int retry_max_ms;           //  longest retry delay
    uint32_t max_attempts;      //  for jobs that say 0
    size_t max_dead;            //  dead jobs kept at most
    int dead_ttl_s;             //  dead jobs kept this long at most
    size_t remember;            //  finished ids kept for idempotent submit
    uint64_t max_queued_bytes;  //  vars of live jobs at most; more get QUEUE_FULL
    const jr_keys_t *keys;      //  CurveZMQ on both ports; NULL = none (loopback, --insecure)
} jr_broker_config_t;

#define JR_BROKER_CONFIG_DEFAULT                                                                   \
    {                                                                                              \
        "tcp://127.0.0.1:5570", "tcp://127.0.0.1:5571", 1000, 5000, 10000000, NULL,                \
            JR_FSYNC_ALWAYS, 100, 10000, 1000, 300000, 3, 100000, 7 * 86400, 100000, 2ull << 30,   \
            NULL                                                                                   \
    }

typedef struct _jr_broker_t jr_broker_t;

//  Replay the journal and bind both endpoints. NULL, with the reason
//  logged, if it cannot.
jr_broker_t *jr_broker_new (const jr_broker_config_t *config);
//  Flush and close the journal, close the sockets; nulls the pointer.
void jr_broker_destroy (jr_broker_t **self_p);
//  The broker's metrics (prefix jr_broker), which its stats line reads and
//  --metrics serves.
jr_metrics_t *jr_broker_metrics (jr_broker_t *self);
//  Serve until SIGINT/SIGTERM (zsys_interrupted) or jr_broker_stop. Returns 0.
int jr_broker_run (jr_broker_t *self);
//  Ask a running broker to return from jr_broker_run (any thread).
void jr_broker_stop (jr_broker_t *self);
//  Live jobs (queued, scheduled, running, dead) the broker holds.
size_t jr_broker_live (const jr_broker_t *self);
#endif
