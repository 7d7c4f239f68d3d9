/*  sink.h - where the ingester stores results: an operations table per kind of store, picked by URL scheme  */
#ifndef JR_INGESTER_SINK_H
#define JR_INGESTER_SINK_H
#include <jr/jr.h>

typedef struct _jr_sink_t jr_sink_t;

//  What jr_sink_put did with one result (besides negative error codes).
typedef enum {
    JR_SINK_STORED = 0,     //  new row, or a newer attempt replaced the row
    JR_SINK_DUPLICATE = 1,  //  the same attempt is already stored: row unchanged
} jr_sink_put_t;

//  One kind of store. Each is one file holding one const table, listed in
//  sink.c; impl is the store's own state. The meaning of each operation is
//  that of the jr_sink_ function of the same verb below.
typedef struct {
    const char *scheme;                                   //  "sqlite" in "sqlite:PATH"
    void *(*open) (const char *where, const char *sync);  //  NULL with a logged error
    void (*close) (void *impl);                           //  rolls back a pending transaction
    int (*begin) (void *impl);
    int (*put) (void *impl, const jr_job_t *job);
    int (*commit) (void *impl);
    void (*rollback) (void *impl);
    int (*get) (void *impl, const uint8_t id[JR_ID_SIZE], jr_job_t **job_p);
    const char *(*errmsg) (void *impl);
} jr_sink_ops_t;

//  The SQLite sink (sink_sqlite.c): where is the database file.
extern const jr_sink_ops_t jr_sink_sqlite;

//  The store a URL "scheme:WHERE" names. Returns its table and sets *where_p
//  to the text after the colon (borrowed from url), or NULL when the URL has
//  no scheme, an unknown one or nothing after the colon.
const jr_sink_ops_t *jr_sink_lookup (const char *url, const char **where_p);
//  Open the store a URL names (see jr_sink_lookup) with a synchronous mode
//  ("full", "normal", "off"). Returns the sink the caller owns, or NULL with
//  a logged error naming the scheme when it is unknown, or the store's error.
jr_sink_t *jr_sink_new (const char *url, const char *sync);
//  Open a store of a known kind at where (for SQLite: the database file,
//  created if missing; NULL also when it is read-only). As jr_sink_new.
jr_sink_t *jr_sink_open (const jr_sink_ops_t *ops, const char *where, const char *sync);
//  The sink's kind (borrowed, static).
const jr_sink_ops_t *jr_sink_ops (jr_sink_t *self);
//  Close the store (a pending transaction is rolled back); nulls the pointer.
void jr_sink_destroy (jr_sink_t **self_p);
//  Start a write transaction. 0, JR_EIO or JR_EDISK_FULL. SQLite: if the
//  file at the path is no longer the one open (deleted or replaced), it first
//  logs that once and opens the path again (creating an empty database
//  there); JR_EIO while that fails.
int jr_sink_begin (jr_sink_t *self);
//  Record one attempt in the history (stale attempts too) and upsert it as
//  the job's result, fenced by attempt, with its state, inside the
//  transaction. Returns JR_SINK_STORED, JR_SINK_DUPLICATE, JR_ESTALE (an
//  older attempt than the stored one: not stored), or JR_EIO / JR_EDISK_FULL
//  (the transaction must be rolled back).
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
//  JR_MAX_TEXT). JR_ENOT_FOUND, or JR_EIO (also while the store is lost).
int jr_sink_get (jr_sink_t *self, const uint8_t id[JR_ID_SIZE], jr_job_t **job_p);
//  The store's last error message (borrowed, until the next call).
const char *jr_sink_errmsg (jr_sink_t *self);
#endif
