/*  jr.h - public API of libjr: errors, the job, and the client  */
#ifndef JR_JR_H
#define JR_JR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Marks what libjr.so (and, for task.h, jr-worker) exports: the library is
//  built with hidden visibility, so an unmarked function stays internal.
//  tests/libjr_abi.sh checks that the marked ones are exactly its symbols.
#ifndef JR_EXPORT
#if defined(__GNUC__) || defined(__clang__)
#define JR_EXPORT __attribute__ ((visibility ("default")))
#else
#define JR_EXPORT
#endif
#endif

/*  Error codes. Functions return 0 or one of these (negative); the same
    numbers are the codes carried by the wire protocol.  */
#define JR_ERRORS(X)                                                                               \
    X (JR_OK, 0, "OK", "success")                                                                  \
    X (JR_EMALFORMED, -1, "MALFORMED", "malformed message")                                        \
    X (JR_ETOOLARGE, -2, "TOO_LARGE", "message or field too large")                                \
    X (JR_EVERSION, -3, "BAD_VERSION", "unsupported protocol version")                             \
    X (JR_EUNKNOWN_TYPE, -4, "UNKNOWN_TYPE", "unknown message type")                               \
    X (JR_EINVALID, -5, "INVALID", "invalid argument or field")                                    \
    X (JR_EQUEUE_FULL, -6, "QUEUE_FULL", "queue is full")                                          \
    X (JR_EUNKNOWN_PEER, -7, "UNKNOWN_PEER", "peer not known, say READY")                          \
    X (JR_ENOT_FOUND, -8, "NOT_FOUND", "no such job")                                              \
    X (JR_EDEADLINE, -9, "DEADLINE_EXCEEDED", "deadline exceeded")                                 \
    X (JR_ECANCELLED, -10, "CANCELLED", "cancelled")                                               \
    X (JR_EUNKNOWN_TASK, -11, "UNKNOWN_TASK", "unknown task")                                      \
    X (JR_ETIMEOUT, -12, "TIMEOUT", "timed out waiting for an answer")                             \
    X (JR_EIO, -13, "IO", "input/output error")                                                    \
    X (JR_ENOMEM, -14, "NO_MEMORY", "out of memory")                                               \
    X (JR_EINTERNAL, -15, "INTERNAL", "internal error")                                            \
    X (JR_ESTALE, -16, "STALE_ATTEMPT", "result of a superseded attempt")                          \
    X (JR_EDISK_FULL, -17, "DISK_FULL", "no space left to store")                                  \
    X (JR_ETASK_FAILED, -18, "TASK_FAILED", "the task reported failure")                           \
    X (JR_EFORBIDDEN, -19, "FORBIDDEN", "the peer's key may not do this")                          \
    X (JR_EHANDSHAKE, -20, "HANDSHAKE", "security handshake failed (wrong server key?)")

typedef enum {
#define JR_X_ENUM(sym, num, name, text) sym = num,
    JR_ERRORS (JR_X_ENUM)
#undef JR_X_ENUM
} jr_error_t;

//  Human text of an error code (borrowed, static).
JR_EXPORT const char *jr_strerror (int code);
//  Symbolic name of an error code, e.g. "DEADLINE_EXCEEDED" (borrowed, static).
JR_EXPORT const char *jr_errname (int code);

//  Job states.
#define JR_STATES(X)                                                                               \
    X (JR_STATE_UNKNOWN, 0, "unknown")                                                             \
    X (JR_STATE_QUEUED, 1, "queued")                                                               \
    X (JR_STATE_SCHEDULED, 2, "scheduled")                                                         \
    X (JR_STATE_RUNNING, 3, "running")                                                             \
    X (JR_STATE_SUCCEEDED, 4, "succeeded")                                                         \
    X (JR_STATE_FAILED, 5, "failed")                                                               \
    X (JR_STATE_DEAD, 6, "dead")                                                                   \
    X (JR_STATE_CANCELLED, 7, "cancelled")                                                         \
    X (JR_STATE_EXPIRED, 8, "expired")

typedef enum {
#define JR_X_ENUM(sym, num, name) sym = num,
    JR_STATES (JR_X_ENUM)
#undef JR_X_ENUM
} jr_state_t;

//  Name of a state, e.g. "running" (borrowed, static).
JR_EXPORT const char *jr_state_name (int state);

//  A run of bytes that somebody else owns.
typedef struct {
    const uint8_t *ptr;
    size_t len;
} jr_bytes_t;

#define JR_ID_SIZE 16

//  The job. Byte fields are borrowed views: into a decoded message, or into
//  the same allocation as the job when a function returns a job you own.
typedef struct {
    uint8_t id[JR_ID_SIZE];  //  UUID v4, made by the client
    jr_bytes_t task;         //  task name, UTF-8, not NUL-terminated
    jr_bytes_t vars;         //  one msgpack map, raw bytes (empty = no vars)
    int32_t priority;        //  higher runs first; ties run in arrival order
    uint32_t timeout_ms;     //  deadline of one attempt; 0 = worker default
    uint32_t max_attempts;   //  0 = broker default
    uint32_t attempt;        //  1 for the first run
    int32_t state;           //  jr_state_t
    bool success;            //  what the task returned
    jr_bytes_t payload;      //  the task's output
    jr_bytes_t error;        //  error text when !success
    jr_bytes_t worker;       //  "name@host" of the worker that ran it
    int64_t created_us;      //  client clock, wall, microseconds since epoch
    int64_t accepted_us;     //  broker, when journaled and acknowledged
    int64_t dispatched_us;   //  broker, when sent to a worker
    int64_t started_us;      //  worker, task start
    int64_t completed_us;    //  worker, task end
    int64_t ingested_us;     //  ingester, when stored
} jr_job_t;

//  Fill a fresh job: new UUID v4, task name (borrowed), created_us = now.
JR_EXPORT void jr_job_init (jr_job_t *job, const char *task);
//  Deep copy of a job in a single allocation; caller owns, free with
//  jr_job_destroy. Returns NULL if out of memory.
JR_EXPORT jr_job_t *jr_job_dup (const jr_job_t *job);
//  Free a job returned by jr_job_dup or by the client; nulls the pointer.
JR_EXPORT void jr_job_destroy (jr_job_t **job_p);
//  Canonical UUID text (37 bytes with the NUL) of an id.
JR_EXPORT void jr_id_format (const uint8_t id[JR_ID_SIZE], char out[37]);
//  Parse canonical UUID text; 0 or JR_EINVALID.
JR_EXPORT int jr_id_parse (const char *text, uint8_t id[JR_ID_SIZE]);

//  Read a var of a job's msgpack map (jr_job_t.vars, or jr_ctx_vars in a
//  task). Strings and binaries give bytes; integers accept any msgpack
//  integer (and a decimal string for _int); _bool takes a msgpack bool only.
//  Keys that are not strings are skipped.
//  Return 0, JR_ENOT_FOUND, or JR_EINVALID on a wrong type.
JR_EXPORT int jr_vars_bytes (jr_bytes_t vars, const char *key, jr_bytes_t *out);
JR_EXPORT int jr_vars_int (jr_bytes_t vars, const char *key, int64_t *out);
JR_EXPORT int jr_vars_bool (jr_bytes_t vars, const char *key, bool *out);

//  ------------------------------------------------------------------------
//  The client: talks to the broker (submit, status, cancel, retry, list) and the ingester
//  (results). Not thread-safe: one client per thread.

typedef struct _jr_client_t jr_client_t;

#define JR_DEFAULT_BROKER   "tcp://127.0.0.1:5570"
#define JR_DEFAULT_INGESTER "tcp://127.0.0.1:5572"

//  Create a client. NULL endpoints mean $JR_BROKER / $JR_INGESTER, then the
//  defaults above. With $JR_KEYS set it uses that keys folder (see
//  jr_client_set_keys). Returns NULL on a bad endpoint, or keys that do not
//  load.
JR_EXPORT jr_client_t *jr_client_new (const char *broker, const char *ingester);
//  Use the CurveZMQ keys folder dir (NULL: none): this client's own
//  certificate (a client or admin key) and the public certificates
//  broker.cert and ingester.cert (docs/operations.md, "Keys"). Takes
//  effect on the next request. Returns 0, or JR_EINVALID with the reason
//  in jr_client_error (the keys in use stay).
JR_EXPORT int jr_client_set_keys (jr_client_t *self, const char *dir);
//  What went wrong last, for a message: the endpoint and the reason (a
//  refused key, a failed handshake, no answer); "" if nothing did.
//  Borrowed, valid until the next call on self.
JR_EXPORT const char *jr_client_error (const jr_client_t *self);
//  Destroy a client; nulls the pointer.
JR_EXPORT void jr_client_destroy (jr_client_t **self_p);
//  How long to wait for an answer from the broker, default 5000 ms.
JR_EXPORT void jr_client_set_timeout (jr_client_t *self, int timeout_ms);

//  Submit one job and wait until the broker accepts it. The job's id is set
//  if all zero, created_us if 0. Returns 0 or an error code.
JR_EXPORT int jr_client_submit (jr_client_t *self, jr_job_t *job);
//  Submit n jobs pipelined in batches; codes[i] (if not NULL) gets each
//  job's answer. Returns 0 if all were accepted, else the first error.
JR_EXPORT int jr_client_submit_many (jr_client_t *self, jr_job_t *jobs, size_t n, int *codes);

//  Called by jr_client_wait_many for each stored result (job borrowed for
//  the call only). Return false to stop waiting.
typedef bool (jr_result_fn) (const jr_job_t *job, void *arg);
//  Wait until the results of all n ids are stored, or timeout_ms passes
//  (-1 = forever). Returns 0 when all arrived, JR_ETIMEOUT otherwise.
JR_EXPORT int jr_client_wait_many (jr_client_t *self, const uint8_t (*ids)[JR_ID_SIZE], size_t n,
                                   int timeout_ms, jr_result_fn *fn, void *arg);
//  Wait for one job's result; *result_p gets a job the caller owns.
JR_EXPORT int jr_client_wait (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int timeout_ms,
                              jr_job_t **result_p);
//  Fetch a stored result without waiting; JR_ENOT_FOUND if none yet.
JR_EXPORT int jr_client_result (jr_client_t *self, const uint8_t id[JR_ID_SIZE],
                                jr_job_t **result_p);
//  Ask the broker for a job's state (and attempt). JR_STATE_UNKNOWN if the
//  broker does not hold it (finished jobs live in the ingester).
JR_EXPORT int jr_client_status (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int *state,
                                uint32_t *attempt);
//  Like jr_client_status, plus the progress the job's task last reported
//  (jr_ctx_progress in task.h) while it runs: *value, and the message
//  copied into text (NUL-terminated, cut to text_size - 1 bytes; messages
//  are at most 255 bytes, so 256 holds any). Any output pointer may be NULL
//  (text with text_size 0). Value 0 and an empty text mean no progress (not
//  running, nothing reported yet, or a broker that does not keep progress).
//  A queued job of a task no connected worker serves has the text
//  "no worker serves task NAME" (value 0) instead.
//  Returns 0, an ERROR reply's code, or JR_ETIMEOUT.
JR_EXPORT int jr_client_progress (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int *state,
                                  uint32_t *attempt, int32_t *value, char *text, size_t text_size);
//  Cancel a job. On 0, *state (if not NULL) gets the job's state after the
//  request, as the broker says: CANCELLED if it was waiting or running (a
//  running one is being stopped), else the state it already had (e.g.
//  SUCCEEDED), or JR_STATE_UNKNOWN if the broker does not hold it. Returns
//  0, the code of the broker's ERROR reply, or JR_ETIMEOUT.
JR_EXPORT int jr_client_cancel (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int *state);
//  Queue a dead job again. On 0, *state (if not NULL) gets JR_STATE_QUEUED
//  if it was requeued, else the job's current state (it was not dead), or
//  JR_STATE_UNKNOWN. Returns 0, an ERROR reply's code, or JR_ETIMEOUT.
JR_EXPORT int jr_client_retry (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int *state);

//  Called by jr_client_list for each id (borrowed for the call only) with
//  the job's current attempt. Return false to skip the rest.
typedef bool (jr_id_fn) (const uint8_t id[JR_ID_SIZE], uint32_t attempt, void *arg);
//  List the ids of the jobs the broker holds in a state (a jr_state_t, e.g.
//  JR_STATE_DEAD), all of them, page after page (jr_client_list_page), in
//  id order, until the last page or fn returns false. Returns 0, the
//  code of the broker's ERROR reply (JR_EINVALID for a state it does not
//  list), or JR_ETIMEOUT.
JR_EXPORT int jr_client_list (jr_client_t *self, int state, jr_id_fn *fn, void *arg);

//  What the broker says of one job (jr_client_status_info). Texts are
//  NUL-terminated; "" where the broker has nothing to say.
typedef struct {
    int state;          //  a jr_state_t; JR_STATE_UNKNOWN if the broker does not hold it
    uint32_t attempt;   //  its current attempt (0 = not dispatched yet)
    char task[257];     //  its task; "" when unknown: a finished job the broker
                        //  still remembers keeps only its id and state
    char worker[514];   //  name@host of the worker it runs on, while running
    int32_t value;      //  the task's last progress while running (0 = none)
    char message[257];  //  that progress's message, or (queued) why it waits:
                        //  "no worker serves task NAME"
} jr_status_t;

//  Ask the broker for a job's state, attempt, task, worker and progress,
//  written to *info (which is zeroed first). Returns 0, an ERROR reply's
//  code, or JR_ETIMEOUT.
JR_EXPORT int jr_client_status_info (jr_client_t *self, const uint8_t id[JR_ID_SIZE],
                                     jr_status_t *info);

//  The bytes of a LIST cursor: opaque, pass back what jr_client_list_page
//  gave (it is a position in the broker's order, not an id).
#define JR_CURSOR_SIZE 20

//  One page of jr_client_list: the ids of the jobs the broker holds in a
//  state, of one task (task NULL or "" = any), that come after `cursor`
//  (JR_CURSOR_SIZE bytes, NULL = from the first), in the broker's order (by
//  a hash of the id, not by id: ids may be time-ordered), at most limit of
//  them (1..100000, 0 = 100000). fn is called for each (it may return false
//  to skip the rest of this page). On 0, *more says whether more may
//  follow; if so, next (JR_CURSOR_SIZE bytes) is the cursor of the next page.
//  A page may hold fewer than limit ids, even none, and still not be the
//  last: the broker bounds its work per page. Paging never shows one id
//  twice, and shows once every job that stays in the state all along.
//  Returns 0, an ERROR reply's code (JR_EINVALID for a state the broker
//  does not list or a limit over 100000), or JR_ETIMEOUT.
JR_EXPORT int jr_client_list_page (jr_client_t *self, int state, const char *task, uint32_t limit,
                                   const uint8_t *cursor, jr_id_fn *fn, void *arg,
                                   uint8_t next[JR_CURSOR_SIZE], bool *more);

#ifdef __cplusplus
}
#endif
#endif
