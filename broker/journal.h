/*  journal.h - the broker's append-only log of job state changes, with replay and compaction  */
#ifndef JR_BROKER_JOURNAL_H
#define JR_BROKER_JOURNAL_H
#include <jr/jr.h>

typedef enum { JR_FSYNC_ALWAYS, JR_FSYNC_BATCH, JR_FSYNC_NEVER } jr_fsync_t;

typedef enum {
    JR_REC_ACCEPT = 1,    //  a job entered the broker (all its fields)
    JR_REC_DISPATCH = 2,  //  an attempt was handed to a worker
    JR_REC_STATE = 3,     //  the job moved to `state` (at_us: when, or not-before)
    JR_REC_CANCEL = 4,    //  a client cancelled the job; it ends once its record is stored
} jr_rec_type_t;

//  One record. Byte views point into the journal's buffers: copy to keep.
typedef struct {
    int type;  //  jr_rec_type_t
    uint8_t id[JR_ID_SIZE];
    uint32_t attempt;
    int state;         //  STATE: jr_state_t
    int64_t at_us;     //  STATE: wall time (not-before for SCHEDULED)
    int32_t priority;  //  ACCEPT: the job's fields
    uint32_t timeout_ms;
    uint32_t max_attempts;
    int64_t created_us;
    int64_t accepted_us;
    jr_bytes_t task;
    jr_bytes_t vars;
} jr_rec_t;

typedef void (jr_replay_fn) (const jr_rec_t *rec, void *arg);

typedef struct _jr_journal_t jr_journal_t;

//  Open (creating) the journal in dir and replay it through fn, oldest
//  record first. A torn or corrupt record ends the replay: it is reported,
//  the file is cut there and later files are set aside, and every complete
//  record before it counts. NULL, with the reason logged, if the directory
//  cannot be used.
jr_journal_t *jr_journal_open (const char *dir, jr_fsync_t mode, int batch_ms, jr_replay_fn *fn,
                               void *arg);
//  Flush, sync and close; nulls the pointer. A compaction under way is
//  abandoned (its writer killed): the files it would replace stay.
void jr_journal_close (jr_journal_t **self_p);
//  Buffer a record for the next flush. A durable record is one a client was
//  promised (accept, cancel, retry): with --fsync always the flush that
//  writes it also fdatasyncs. Others (dispatch, done, requeue) are written
//  at the same time but need no sync of their own: losing them to a power
//  cut only makes a job run again, which the ingester's fencing absorbs.
void jr_journal_append (jr_journal_t *self, const jr_rec_t *rec, bool durable);
//  Write what is buffered (one write), then sync as the policy says. 0, or
//  JR_EDISK_FULL / JR_EIO with nothing of it left on disk: the buffer is
//  kept and the caller decides (refuse new jobs, retry later).
int jr_journal_flush (jr_journal_t *self);
//  Drop the buffered records that a failed flush left (after the caller
//  undid what they described).
void jr_journal_discard (jr_journal_t *self);
//  True if records wait in the buffer.
bool jr_journal_pending (const jr_journal_t *self);
//  Bytes in all journal files.
uint64_t jr_journal_size (const jr_journal_t *self);
//  Writes the live state through jr_journal_append, in the snapshot writer.
typedef void (jr_snapshot_fn) (jr_journal_t *journal, void *arg);

//  True when the files hold so much history that a snapshot should replace
//  them, no compaction runs, and none failed in the last seconds.
bool jr_journal_wants_compaction (const jr_journal_t *self);
//  Start a compaction: fork a writer that runs fn on its copy of the
//  caller's memory and writes what fn appends to a snapshot file, while
//  the caller goes on appending to a new file. 0, or an error code with
//  nothing changed but the current file (logged once per failure episode).
int jr_journal_compact_begin (jr_journal_t *self, jr_snapshot_fn *fn, void *arg);
//  Call now and then while compacting (never blocks). When the writer is
//  done and the snapshot synced, it replaces the older files. 1 when a
//  compaction completed, 0 while one runs or none does, or an error code
//  (the older files are kept; logged once per failure episode).
int jr_journal_compact_poll (jr_journal_t *self);
//  True while a snapshot writer runs.
bool jr_journal_compacting (const jr_journal_t *self);
//  For tests: called by the snapshot writer before it writes, to make a
//  compaction last as long as a test needs. NULL for none.
void jr_journal_set_snapshot_hook (void (*hook) (void));
//  Failure injection for tests: the next n writes fail with this errno.
void jr_journal_fail_writes (jr_journal_t *self, int n, int err);
#endif
