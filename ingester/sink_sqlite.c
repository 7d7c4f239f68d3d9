/*  sink_sqlite.c - the SQLite sink (sqlite:PATH): WAL, prepared statements, upsert fenced by attempt, attempt history  */
#include "ingester/sink.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "proto/proto.h"
#include <assert.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    sqlite3 *db;             //  the connection, owned
    sqlite3_stmt *begin;     //  BEGIN IMMEDIATE
    sqlite3_stmt *commit;    //  COMMIT
    sqlite3_stmt *rollback;  //  ROLLBACK
    sqlite3_stmt *upsert;    //  insert, or replace an older attempt
    sqlite3_stmt *attempt;   //  stored attempt of one id
    sqlite3_stmt *get;       //  one whole stored result
    sqlite3_stmt *record;    //  insert one attempt into the history
    sqlite3_stmt *history;   //  earlier attempts of one id, newest first
    bool in_txn;             //  between begin and commit/rollback
    char *path;              //  the database file, to open it again
    const char *pragma;      //  the synchronous mode, as a PRAGMA
    dev_t dev;               //  the file opened, to see it deleted or replaced
    ino_t ino;               //  with dev
    bool quiet;              //  reopening after a loss: its failures logged once
} sqlite_t;

#define S_BUSY_TIMEOUT_MS  5000
#define S_WAL_BYTES        (64 << 20)  //  WAL size that starts a checkpoint
#define S_HISTORY_MAX      20          //  attempts shown in a failed result's error
#define S_HISTORY_OWN_TEXT 30000       //  bytes kept of the stored attempt's own error
#define S_HISTORY_TEXT     1000        //  bytes kept of each earlier attempt's error

static const char *s_schema =
    "CREATE TABLE IF NOT EXISTS results ("
    " id TEXT PRIMARY KEY,"
    " task TEXT NOT NULL,"
    " vars BLOB,"
    " success INTEGER NOT NULL,"
    " payload BLOB,"
    " error TEXT,"
    " attempt INTEGER NOT NULL,"
    " worker TEXT,"
    " priority INTEGER,"
    " timeout_ms INTEGER,"
    " max_attempts INTEGER,"
    " created_us INTEGER,"
    " accepted_us INTEGER,"
    " dispatched_us INTEGER,"
    " started_us INTEGER,"
    " completed_us INTEGER,"
    " ingested_us INTEGER,"
    " state INTEGER);"
    //  Every attempt ever reported, so a failed job shows why each try
    //  failed. WITHOUT ROWID: the key is the table, no second index to write.
    "CREATE TABLE IF NOT EXISTS attempts ("
    " id TEXT NOT NULL,"
    " attempt INTEGER NOT NULL,"
    " success INTEGER,"
    " state INTEGER,"
    " error TEXT,"
    " worker TEXT,"
    " started_us INTEGER,"
    " completed_us INTEGER,"
    " PRIMARY KEY (id, attempt)) WITHOUT ROWID";

//  The WHERE makes the upsert a no-op for a resend or a stale attempt, so
//  one statement covers the common case (a new id) and fencing together.
static const char *s_upsert_sql =
    "INSERT INTO results (id, task, vars, success, payload, error, attempt, worker,"
    " priority, timeout_ms, max_attempts, created_us, accepted_us, dispatched_us,"
    " started_us, completed_us, ingested_us, state)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
    " ON CONFLICT(id) DO UPDATE SET task = excluded.task, vars = excluded.vars,"
    " success = excluded.success, payload = excluded.payload, error = excluded.error,"
    " attempt = excluded.attempt, worker = excluded.worker, priority = excluded.priority,"
    " timeout_ms = excluded.timeout_ms, max_attempts = excluded.max_attempts,"
    " created_us = excluded.created_us, accepted_us = excluded.accepted_us,"
    " dispatched_us = excluded.dispatched_us, started_us = excluded.started_us,"
    " completed_us = excluded.completed_us, ingested_us = excluded.ingested_us,"
    " state = excluded.state"
    " WHERE excluded.attempt > results.attempt";

static const char *s_get_sql =
    "SELECT task, vars, success, payload, error, attempt, worker, priority, timeout_ms,"
    " max_attempts, created_us, accepted_us, dispatched_us, started_us, completed_us,"
    " ingested_us, state FROM results WHERE id = ?1";

//  A resend of an attempt already recorded changes nothing.
static const char *s_record_sql =
    "INSERT OR IGNORE INTO attempts (id, attempt, success, state, error, worker, started_us,"
    " completed_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

//  One more than shown, to know whether older ones were left out.
static const char *s_history_sql =
    "SELECT attempt, state, error, worker FROM attempts WHERE id = ?1 AND attempt < ?2"
    " ORDER BY attempt DESC LIMIT ?3";

//  SQLite's result code as one of ours: a full disk is worth telling apart.
static int
s_code (int rc)
{
    rc &= 0xff;
    return rc == SQLITE_FULL ? JR_EDISK_FULL : JR_EIO;
}

static int
s_exec (sqlite_t *self, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec (self->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        if (!self->quiet)
            jr_error ("sql=\"%.40s\" error=\"%s\": statement failed", sql, err ? err : "?");
        sqlite3_free (err);
        return JR_EIO;
    }
    return 0;
}

//  A database made before results had a state column gets it; its old rows
//  keep NULL there, read back as the state their success implies.
static int
s_migrate (sqlite_t *self)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2 (self->db,
                            "SELECT 1 FROM pragma_table_info('results')"
                            " WHERE name = 'state'",
                            -1, &st, NULL)
        != SQLITE_OK) {
        jr_error ("error=\"%s\": cannot read the schema", sqlite3_errmsg (self->db));
        return JR_EIO;
    }
    int rc = sqlite3_step (st);
    sqlite3_finalize (st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc != SQLITE_DONE) {
        jr_error ("error=\"%s\": cannot read the schema", sqlite3_errmsg (self->db));
        return s_code (rc);
    }
    jr_info ("table=results column=state: adding the column to an older database");
    return s_exec (self, "ALTER TABLE results ADD COLUMN state INTEGER");
}

static int
s_prepare (sqlite_t *self, const char *sql, sqlite3_stmt **stmt)
{
    if (sqlite3_prepare_v3 (self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL)
        != SQLITE_OK) {
        if (!self->quiet)
            jr_error ("error=\"%s\": cannot prepare statement", sqlite3_errmsg (self->db));
        return JR_EIO;
    }
    return 0;
}

//  The database's page size (SQLite's default if it cannot be read).
static int
s_page_size (sqlite_t *self)
{
    sqlite3_stmt *st;
    int size = 4096;
    if (sqlite3_prepare_v2 (self->db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step (st) == SQLITE_ROW && sqlite3_column_int (st, 0) > 0)
            size = sqlite3_column_int (st, 0);
        sqlite3_finalize (st);
    }
    return size;
}

//  Run a statement that returns no rows, leaving it reset for reuse.
static int
s_step_done (sqlite3_stmt *stmt)
{
    int rc = sqlite3_step (stmt);
    sqlite3_reset (stmt);
    return rc == SQLITE_DONE ? 0 : s_code (rc);
}

//  No statistics of SQLite's own allocations: by default each of them takes
//  a process-wide mutex. Only possible before SQLite's first use in the
//  process (later it is refused and changes nothing), and not while another
//  thread uses SQLite: hence once, before the first open.
static void
s_configure (void)
{
    sqlite3_config (SQLITE_CONFIG_MEMSTATUS, 0);
}

//  journal_mode answers with the mode it got: a memory db cannot do WAL.
static int
s_wal (sqlite_t *self)
{
    sqlite3_stmt *wal = NULL;
    if (s_prepare (self, "PRAGMA journal_mode=WAL", &wal))
        return JR_EIO;
    int rc = sqlite3_step (wal);
    if (rc != SQLITE_ROW) {
        if (!self->quiet)
            jr_error ("db=%s error=\"%s\": cannot open database", self->path,
                      sqlite3_errmsg (self->db));
        sqlite3_finalize (wal);
        return s_code (rc);
    }
    const char *mode = (const char *)sqlite3_column_text (wal, 0);
    if (!mode || strcmp (mode, "wal") != 0)
        jr_warn ("db=%s journal_mode=%s: WAL not available", self->path, mode ? mode : "?");
    sqlite3_finalize (wal);
    return 0;
}

//  Finalize the statements and close the connection; the sink stays, to
//  open again.
static void s_sink_rollback (void *impl);

static void
s_close (sqlite_t *self)
{
    if (self->in_txn)
        s_sink_rollback (self);
    sqlite3_stmt **stmts[] = { &self->begin,   &self->commit, &self->rollback, &self->upsert,
                               &self->attempt, &self->get,    &self->record,   &self->history };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        sqlite3_finalize (*stmts[i]);
        *stmts[i] = NULL;
    }
    if (self->db && sqlite3_close (self->db) != SQLITE_OK)
        jr_error ("error=\"%s\": cannot close database", sqlite3_errmsg (self->db));
    self->db = NULL;
}

//  Results that cannot be stored must stop the ingester at its start, not
//  fail every batch later: SQLite opens a file it may not write read-only.
static int
s_writable (sqlite_t *self)
{
    if (sqlite3_db_readonly (self->db, "main") != 1)
        return 0;
    if (!self->quiet)
        jr_error ("db=%s: the database is read-only (file or filesystem not writable), cannot"
                  " store results",
                  self->path);
    return JR_EIO;
}

//  Open (or create) the database at the sink's path and prepare everything;
//  0, or JR_EIO with the connection closed.
static int
s_open (sqlite_t *self)
{
    //  NOMUTEX: one thread at a time uses a connection (the ingester hands
    //  it between its loop and its writer), so SQLite need not lock each call.
    int rc =
        sqlite3_open_v2 (self->path, &self->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (!self->quiet)
            jr_error ("db=%s error=\"%s\": cannot open database", self->path,
                      self->db ? sqlite3_errmsg (self->db) : sqlite3_errstr (rc));
        s_close (self);
        return JR_EIO;
    }
    sqlite3_busy_timeout (self->db, S_BUSY_TIMEOUT_MS);
    //  A new database gets 16 KiB pages (an existing one keeps its own): the
    //  id index then has a quarter of the pages and a level less, and a
    //  commit writes fewer, larger WAL frames. bench/run, 200k jobs, A/B in
    //  turn: ingester CPU per job 7-18% lower; with fsync always 10-17% more
    //  jobs/s. Set before WAL, which fixes the page size.
    if (s_writable (self) || s_exec (self, "PRAGMA page_size=16384") || s_wal (self)) {
        s_close (self);
        return JR_EIO;
    }
    //  The id index takes random UUID keys, so an insert lands on any page
    //  of it and nearly every row dirties a page of its own. Kept in memory,
    //  an insert reads nothing from the file; and a checkpoint every 64 MiB
    //  of WAL instead of SQLite's 1000 frames copies each hot page into the
    //  database once per many commits: bench/run went from 52-69k to 80-93k
    //  jobs/s with this alone.
    char checkpoint[64];
    snprintf (checkpoint, sizeof checkpoint, "PRAGMA wal_autocheckpoint=%d",
              S_WAL_BYTES / s_page_size (self));
    if (s_exec (self, self->pragma) || s_exec (self, "PRAGMA cache_size=-65536")
        || s_exec (self, checkpoint) || s_exec (self, s_schema) || s_migrate (self)
        || s_prepare (self, "BEGIN IMMEDIATE", &self->begin)
        || s_prepare (self, "COMMIT", &self->commit)
        || s_prepare (self, "ROLLBACK", &self->rollback)
        || s_prepare (self, s_upsert_sql, &self->upsert)
        || s_prepare (self, "SELECT attempt FROM results WHERE id = ?1", &self->attempt)
        || s_prepare (self, s_get_sql, &self->get) || s_prepare (self, s_record_sql, &self->record)
        || s_prepare (self, s_history_sql, &self->history)) {
        if (!self->quiet)
            jr_error ("db=%s: cannot open database", self->path);
        s_close (self);
        return JR_EIO;
    }
    //  Which file this is, so a deletion or a replacement is seen (an
    //  in-memory database has none: dev and ino stay 0 and are not checked).
    struct stat st;
    self->dev = 0;
    self->ino = 0;
    if (stat (self->path, &st) == 0) {
        self->dev = st.st_dev;
        self->ino = st.st_ino;
    }
    return 0;
}

static void s_sink_close (void *impl);

static void *
s_sink_open (const char *path, const char *sync)
{
    assert (path && sync);
    const char *pragma = NULL;
    if (strcmp (sync, "full") == 0)
        pragma = "PRAGMA synchronous=FULL";
    else if (strcmp (sync, "normal") == 0)
        pragma = "PRAGMA synchronous=NORMAL";
    else if (strcmp (sync, "off") == 0)
        pragma = "PRAGMA synchronous=OFF";
    else {
        jr_error ("sync=%s: must be full, normal or off", sync);
        return NULL;
    }
    sqlite_t *self = calloc (1, sizeof *self);
    assert (self);
    self->path = strdup (path);
    assert (self->path);
    self->pragma = pragma;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once (&once, s_configure);
    if (s_open (self)) {
        s_sink_close (self);
        return NULL;
    }
    return self;
}

static void
s_sink_close (void *impl)
{
    sqlite_t *self = impl;
    s_close (self);
    free (self->path);
    free (self);
}

//  Whether the file at the path is still the one open. A database deleted
//  (or replaced) under a running ingester would take commits into a file
//  nobody can read again: see it before each transaction, one stat.
static bool
s_same_file (const sqlite_t *self)
{
    struct stat st;
    if (self->ino == 0 && self->dev == 0)
        return true;
    return stat (self->path, &st) == 0 && st.st_dev == self->dev && st.st_ino == self->ino;
}

//  A lost database is closed and opened again at its path: the file put
//  back, or a new empty one. Until that works each transaction fails.
static int
s_recover (sqlite_t *self)
{
    if (self->db && s_same_file (self))
        return 0;
    if (self->db) {
        jr_error ("db=%s: the database file was deleted or replaced under the ingester;"
                  " opening the path again, storing nothing until that works",
                  self->path);
        s_close (self);
    }
    self->quiet = true;
    int rc = s_open (self);
    self->quiet = false;
    if (rc == 0)
        jr_warn ("db=%s: database open again (a new, empty one if the file was gone)", self->path);
    return rc;
}

static int
s_sink_begin (void *impl)
{
    sqlite_t *self = impl;
    assert (!self->in_txn);
    int rc = s_recover (self);
    if (rc)
        return rc;
    rc = s_step_done (self->begin);
    self->in_txn = rc == 0;
    return rc;
}

static int
s_sink_commit (void *impl)
{
    sqlite_t *self = impl;
    assert (self->in_txn);
    int rc = s_step_done (self->commit);
    if (rc == 0)
        self->in_txn = false;
    return rc;
}

static void
s_sink_rollback (void *impl)
{
    sqlite_t *self = impl;
    //  After some errors SQLite has already rolled back; that is fine.
    if (self->db && sqlite3_get_autocommit (self->db) == 0 && s_step_done (self->rollback) != 0)
        jr_error ("error=\"%s\": rollback failed", sqlite3_errmsg (self->db));
    self->in_txn = false;
}

static void
s_bind_text (sqlite3_stmt *stmt, int col, jr_bytes_t text)
{
    //  An empty view may have a NULL pointer, which SQLite would store as NULL.
    sqlite3_bind_text (stmt, col, text.len ? (const char *)text.ptr : "", (int)text.len,
                       SQLITE_STATIC);
}

static int
s_sink_put (void *impl, const jr_job_t *job)
{
    sqlite_t *self = impl;
    assert (self->in_txn);
    char id[37];
    jr_id_format (job->id, id);
    //  History first: even a stale attempt happened and is worth showing.
    //  A first attempt that succeeded has no history beyond its row, and it
    //  is the common case: it costs one B-tree insert less.
    sqlite3_stmt *st = self->record;
    if (job->attempt > 1 || !job->success) {
        sqlite3_bind_text (st, 1, id, 36, SQLITE_STATIC);
        sqlite3_bind_int64 (st, 2, job->attempt);
        sqlite3_bind_int (st, 3, job->success ? 1 : 0);
        sqlite3_bind_int (st, 4, job->state);
        s_bind_text (st, 5, job->error);
        s_bind_text (st, 6, job->worker);
        sqlite3_bind_int64 (st, 7, job->started_us);
        sqlite3_bind_int64 (st, 8, job->completed_us);
        int rc = s_step_done (st);
        sqlite3_clear_bindings (st);
        if (rc)
            return rc;
    }

    st = self->upsert;
    sqlite3_bind_text (st, 1, id, 36, SQLITE_STATIC);
    s_bind_text (st, 2, job->task);
    if (job->vars.len)
        sqlite3_bind_blob (st, 3, job->vars.ptr, (int)job->vars.len, SQLITE_STATIC);
    else
        sqlite3_bind_null (st, 3);
    sqlite3_bind_int (st, 4, job->success ? 1 : 0);
    if (job->payload.len)
        sqlite3_bind_blob (st, 5, job->payload.ptr, (int)job->payload.len, SQLITE_STATIC);
    else
        sqlite3_bind_zeroblob (st, 5, 0);
    s_bind_text (st, 6, job->error);
    sqlite3_bind_int64 (st, 7, job->attempt);
    s_bind_text (st, 8, job->worker);
    sqlite3_bind_int64 (st, 9, job->priority);
    sqlite3_bind_int64 (st, 10, job->timeout_ms);
    sqlite3_bind_int64 (st, 11, job->max_attempts);
    sqlite3_bind_int64 (st, 12, job->created_us);
    sqlite3_bind_int64 (st, 13, job->accepted_us);
    sqlite3_bind_int64 (st, 14, job->dispatched_us);
    sqlite3_bind_int64 (st, 15, job->started_us);
    sqlite3_bind_int64 (st, 16, job->completed_us);
    sqlite3_bind_int64 (st, 17, job->ingested_us);
    sqlite3_bind_int (st, 18, job->state);
    int rc = s_step_done (st);
    sqlite3_clear_bindings (st);  //  the views die with the batch
    if (rc)
        return rc;
    if (sqlite3_changes (self->db) == 1)
        return JR_SINK_STORED;

    //  Nothing changed: the stored attempt is the same (a resend) or newer.
    sqlite3_bind_text (self->attempt, 1, id, 36, SQLITE_STATIC);
    int step = sqlite3_step (self->attempt);
    int64_t stored = step == SQLITE_ROW ? sqlite3_column_int64 (self->attempt, 0) : -1;
    sqlite3_reset (self->attempt);
    if (step != SQLITE_ROW)
        return s_code (step);
    return stored == (int64_t)job->attempt ? JR_SINK_DUPLICATE : JR_ESTALE;
}

static jr_bytes_t
s_column_bytes (sqlite3_stmt *stmt, int col, bool text)
{
    const void *ptr =
        text ? (const void *)sqlite3_column_text (stmt, col) : sqlite3_column_blob (stmt, col);
    int len = sqlite3_column_bytes (stmt, col);
    return (jr_bytes_t){ ptr, ptr ? (size_t)len : 0 };
}

//  Append at most max bytes of text, cut at a UTF-8 character boundary so
//  the result stays printable as text.
static void
s_append_cut (char *buf, size_t *len, jr_bytes_t text, size_t max)
{
    size_t n = text.len;
    if (n > max) {
        n = max;
        while (n > 0 && (text.ptr[n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy (buf + *len, text.ptr, n);
    *len += n;
    if (n < text.len) {
        memcpy (buf + *len, "...", 3);
        *len += 3;
    }
}

//  One history line: "attempt N (worker): error", or the state's name when
//  the attempt left no error text.
static void
s_append_line (char *buf, size_t *len, uint32_t attempt, jr_bytes_t worker, int state,
               jr_bytes_t error, size_t max_error)
{
    if (*len)
        buf[(*len)++] = '\n';
    *len += (size_t)sprintf (buf + *len, "attempt %u (", attempt);
    s_append_cut (buf, len, worker, 2 * JR_MAX_NAME);
    memcpy (buf + *len, "): ", 3);
    *len += 3;
    if (error.len)
        s_append_cut (buf, len, error, max_error);
    else {
        const char *name = jr_state_name (state);
        memcpy (buf + *len, name, strlen (name));
        *len += strlen (name);
    }
}

//  The error of a failed row with earlier attempts: one line per attempt,
//  oldest first, the row's own attempt last. Returns a buffer the caller
//  frees (its length in *len), or NULL when there is no earlier attempt or
//  the lookup failed (the row's own error is then shown as it is).
static char *
s_history (sqlite_t *self, const char *id, const jr_job_t *row, size_t *len)
{
    //  Worst case: every line at its cap, plus the "omitted" line; this
    //  stays below JR_MAX_TEXT, the limit of an error on the wire.
    enum { LINE = 48 + 2 * JR_MAX_NAME + 3 };
    size_t cap = 64 + S_HISTORY_MAX * LINE + (S_HISTORY_MAX - 1) * (S_HISTORY_TEXT + 3)
                 + S_HISTORY_OWN_TEXT + 3;
    _Static_assert(64 + S_HISTORY_MAX * LINE + (S_HISTORY_MAX - 1) * (S_HISTORY_TEXT + 3)
                           + S_HISTORY_OWN_TEXT + 3
                       <= JR_MAX_TEXT,
                   "the history must fit in an error field");
    sqlite3_stmt *st = self->history;
    sqlite3_bind_text (st, 1, id, 36, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 2, row->attempt);
    sqlite3_bind_int (st, 3, S_HISTORY_MAX);  //  S_HISTORY_MAX - 1 shown, one to tell
    //  Newest first from the query; kept as offsets, printed oldest first.
    struct {
        uint32_t attempt;
        int state;
        jr_bytes_t error, worker;
    } earlier[S_HISTORY_MAX];
    int n = 0, rc;
    while (n < S_HISTORY_MAX && (rc = sqlite3_step (st)) == SQLITE_ROW) {
        earlier[n].attempt = (uint32_t)sqlite3_column_int64 (st, 0);
        earlier[n].state = sqlite3_column_int (st, 1);
        //  Copies: the next step may move the column memory.
        jr_bytes_t error = s_column_bytes (st, 2, true);
        jr_bytes_t worker = s_column_bytes (st, 3, true);
        uint8_t *copy = malloc (error.len + worker.len + 1);
        assert (copy);
        if (error.len)
            memcpy (copy, error.ptr, error.len);
        if (worker.len)
            memcpy (copy + error.len, worker.ptr, worker.len);
        earlier[n].error = (jr_bytes_t){ copy, error.len };
        earlier[n].worker = (jr_bytes_t){ copy + error.len, worker.len };
        n++;
    }
    bool failed = n < S_HISTORY_MAX && rc != SQLITE_DONE;
    sqlite3_reset (st);
    sqlite3_clear_bindings (st);
    char *buf = NULL;
    if (failed)
        jr_error ("id=%s error=\"%s\": cannot read the attempt history", id,
                  sqlite3_errmsg (self->db));
    else if (n > 0) {
        buf = malloc (cap);
        assert (buf);
        *len = 0;
        int shown = n;
        if (n == S_HISTORY_MAX) {
            shown = n - 1;
            *len +=
                (size_t)sprintf (buf, "(attempts before %u not shown)", earlier[shown - 1].attempt);
        }
        for (int i = shown - 1; i >= 0; i--)
            s_append_line (buf, len, earlier[i].attempt, earlier[i].worker, earlier[i].state,
                           earlier[i].error, S_HISTORY_TEXT);
        s_append_line (buf, len, row->attempt, row->worker, row->state, row->error,
                       S_HISTORY_OWN_TEXT);
        assert (*len <= cap);
    }
    for (int i = 0; i < n; i++)
        free ((void *)earlier[i].error.ptr);
    return buf;
}

static int
s_sink_get (void *impl, const uint8_t id[JR_ID_SIZE], jr_job_t **job_p)
{
    sqlite_t *self = impl;
    if (!self->db)
        return JR_EIO;  //  lost, not open again yet
    char text[37];
    jr_id_format (id, text);
    sqlite3_stmt *st = self->get;
    sqlite3_bind_text (st, 1, text, 36, SQLITE_STATIC);
    int rc = sqlite3_step (st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset (st);
        return rc == SQLITE_DONE ? JR_ENOT_FOUND : s_code (rc);
    }
    jr_job_t job = { 0 };
    memcpy (job.id, id, JR_ID_SIZE);
    job.task = s_column_bytes (st, 0, true);
    job.vars = s_column_bytes (st, 1, false);
    job.success = sqlite3_column_int (st, 2) != 0;
    job.payload = s_column_bytes (st, 3, false);
    job.error = s_column_bytes (st, 4, true);
    job.attempt = (uint32_t)sqlite3_column_int64 (st, 5);
    job.worker = s_column_bytes (st, 6, true);
    job.priority = (int32_t)sqlite3_column_int64 (st, 7);
    job.timeout_ms = (uint32_t)sqlite3_column_int64 (st, 8);
    job.max_attempts = (uint32_t)sqlite3_column_int64 (st, 9);
    job.created_us = sqlite3_column_int64 (st, 10);
    job.accepted_us = sqlite3_column_int64 (st, 11);
    job.dispatched_us = sqlite3_column_int64 (st, 12);
    job.started_us = sqlite3_column_int64 (st, 13);
    job.completed_us = sqlite3_column_int64 (st, 14);
    job.ingested_us = sqlite3_column_int64 (st, 15);
    job.state = sqlite3_column_int (st, 16);
    //  Rows from before the state column say only success.
    job.state = jr_result_state (job.state, job.success);
    //  Built here rather than stored, so the write path pays nothing for it
    //  and the row keeps its own error.
    char *history = NULL;
    size_t history_len = 0;
    if (!job.success && job.attempt > 1) {
        history = s_history (self, text, &job, &history_len);
        if (history)
            job.error = (jr_bytes_t){ (const uint8_t *)history, history_len };
    }
    //  Column pointers die at the reset, so the caller gets a copy.
    *job_p = jr_job_dup (&job);
    sqlite3_reset (st);
    free (history);
    assert (*job_p);
    return 0;
}

static const char *
s_sink_errmsg (void *impl)
{
    sqlite_t *self = impl;
    return self->db ? sqlite3_errmsg (self->db) : "database not open";
}

const jr_sink_ops_t jr_sink_sqlite = {
    .scheme = "sqlite",
    .open = s_sink_open,
    .close = s_sink_close,
    .begin = s_sink_begin,
    .put = s_sink_put,
    .commit = s_sink_commit,
    .rollback = s_sink_rollback,
    .get = s_sink_get,
    .errmsg = s_sink_errmsg,
};
