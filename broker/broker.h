/*  broker.h - the broker: keeps the queues and hands jobs to workers by credit  */
#ifndef JR_BROKER_H
#define JR_BROKER_H
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *clients;       //  ROUTER endpoint for clients
    const char *workers;       //  ROUTER endpoint for workers
    int heartbeat_ms;          //  heartbeat to each worker when idle
    int liveness_ms;           //  a worker silent this long is forgotten
    size_t max_jobs;           //  queued + running; more gets QUEUE_FULL
} jr_broker_config_t;

#define JR_BROKER_CONFIG_DEFAULT                                                        \
    {"tcp://*:5570", "tcp://*:5571", 1000, 5000, 10000000}

typedef struct _jr_broker_t jr_broker_t;

//  Bind both endpoints. NULL, with the reason logged, if it cannot.
jr_broker_t *jr_broker_new (const jr_broker_config_t *config);
void jr_broker_destroy (jr_broker_t **self_p);
//  Serve until SIGINT/SIGTERM (zsys_interrupted) or jr_broker_stop. Returns 0.
int jr_broker_run (jr_broker_t *self);
//  Ask a running broker to return from jr_broker_run (any thread).
void jr_broker_stop (jr_broker_t *self);
#endif
