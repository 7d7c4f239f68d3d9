/*  ingester.h - the result ingester: RESULT batches into a sink (SQLite), ACK after commit, FETCH  */
#ifndef JR_INGESTER_H
#define JR_INGESTER_H
#include "common/metrics.h"
#include "proto/keys.h"
#include <stdint.h>

#define JR_INGESTER_BIND        "tcp://127.0.0.1:5572"  //  without keys; with them tcp://*:5572
#define JR_INGESTER_DB          "jr.db"
#define JR_INGESTER_SYNC        "full"
#define JR_INGESTER_BATCH       10000
#define JR_INGESTER_MAX_WAITERS 1000000     //  parked FETCH ids, all clients together
#define JR_INGESTER_MAX_FETCH   10000       //  ids in one FETCH
#define JR_INGESTER_FETCH_BYTES (32 << 20)  //  bytes of jobs in the answer to one FETCH

//  Configuration; a NULL string or a 0 number means the default above.
typedef struct {
    const char *bind;       //  endpoint of the ROUTER socket
    const char *sink;       //  where results go, "scheme:WHERE" (default "sqlite:" JR_INGESTER_DB)
    const char *db;         //  alias: SQLite database file, as sink "sqlite:db"; not with sink
    const char *sync;       //  the sink's synchronous mode: "full", "normal" or "off"
    int batch_max;          //  most results stored in one transaction
    int max_waiters;        //  bound on parked FETCH ids (tests make it small)
    int fetch_bytes;        //  bytes of jobs answered to one FETCH (tests make it small)
    const jr_keys_t *keys;  //  CurveZMQ on the socket; NULL = none (loopback, --insecure)
} jr_ingester_config_t;

typedef struct _jr_ingester_t jr_ingester_t;

//  Bind the socket and open the sink (a SQLite database is created if
//  missing). Returns an ingester the caller owns, or NULL with a logged error
//  if the configuration is bad (also an unknown sink scheme, or both sink and
//  db given), the endpoint cannot be bound or the sink cannot be opened.
jr_ingester_t *jr_ingester_new (const jr_ingester_config_t *cfg);
//  Finish the current batch, close socket and database; nulls the pointer.
void jr_ingester_destroy (jr_ingester_t **self_p);
//  Run the event loop until zsys_interrupted is set or jr_ingester_stop is
//  called. Returns 0 on a clean stop, JR_EIO if the socket failed.
int jr_ingester_run (jr_ingester_t *self);
//  Ask the loop to stop within one poll interval (about 100 ms). Safe from
//  a signal handler or another thread.
void jr_ingester_stop (jr_ingester_t *self);
//  The endpoint actually bound, e.g. "tcp://127.0.0.1:41234" when the
//  config asked for port * (borrowed, lives as long as the ingester).
const char *jr_ingester_endpoint (jr_ingester_t *self);
//  The ingester's metrics (prefix jr_ingester), which its stats line reads;
//  borrowed, for as long as the ingester lives.
jr_metrics_t *jr_ingester_metrics (jr_ingester_t *self);
#endif
