/*  sink.h - where the ingester stores results (SQLite today), one transaction per batch  */
#ifndef JR_INGESTER_SINK_H
#define JR_INGESTER_SINK_H
#include <jr/jr.h>

typedef struct _jr_sink_t jr_sink_t;

//  What jr_sink_put did with one result (besides negative error codes).
typedef enum {
    JR_SINK_STORED = 0,     //  new row, or a newer attempt replaced the row
    JR_SINK_DUPLICATE = 1,  //  the same attempt is already stored: row unchanged
} jr_sink_put_t;

//  Open or create the database at path with a synchronous mode ("full",
//  "normal", "off"). Returns the sink the caller owns, or NULL with a logged
//  error (also when the database is read-only).
jr_sink_t *jr_sink_new (const char *path, const char *sync);
//  Close the database (a pending transaction is rolled back); nulls the pointer.
void jr_sink_destroy (jr_sink_t **self_p);
//  Start a write transaction. 0, JR_EIO or JR_EDISK_FULL. If the file at
//  the path is no longer the one open (deleted or replaced), it first logs
//  that once and opens the path again (creating an empty database there);
//  JR_EIO while that fails.
int jr_sink_begin (jr_sink_t *self);
//  Record one attempt in the history (INSERT OR IGNORE into attempts, stale
//  attempts too) and upsert it as the job's result, fenced by attempt, with
//  its state, inside the transaction. Returns
//  JR_SINK_STORED, JR_SINK_DUPLICATE, JR_ESTALE (an older attempt than the
//  stored one: not stored), or JR_EIO / JR_EDISK_FULL (the transaction must
//  be rolled back).
int jr_sink_put (jr_sink_t *self, const jr_job_t *job);
//  Commit the transaction: 0, JR_EIO or JR_EDISK_FULL (then roll back).
int jr_sink_commit (jr_sink_t *self);
//  Roll back the transaction, if any.
void jr_sink_rollback (jr_sink_t *self);
//  Look up a stored result. On 0, *job_p gets a copy the caller owns (free
//  with jr_job_destroy) with the row's state (rows from before the state
//  column: SUCCEEDED or FAILED by success). When the row failed and earlier
//  attempts are recorded, its error is the history, one line per attempt,
//  oldest first: "attempt N (worker): error" (at most 20 lines, below
//  JR_MAX_TEXT). JR_ENOT_FOUND, or JR_EIO (also while the database is lost).
int jr_sink_get (jr_sink_t *self, const uint8_t id[JR_ID_SIZE], jr_job_t **job_p);
//  The database's last error message (borrowed, until the next call).
const char *jr_sink_errmsg (jr_sink_t *self);
#endif
