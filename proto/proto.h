/*  proto.h - the jobrunner wire protocol: message model, codec, printing  */
#ifndef JR_PROTO_H
#define JR_PROTO_H
#include <jr/jr.h>
#include <stdatomic.h>
#include <stdio.h>

#define JR_PROTO_SIGNATURE 0x4A52  //  "JR"
#define JR_PROTO_VERSION   3

//  Limits every decoder enforces (and every socket's ZMQ_MAXMSGSIZE).
#define JR_MAX_FRAME   (64 << 20)  //  one message body
#define JR_MAX_ITEMS   100000      //  jobs, marks or tasks in one message
#define JR_MAX_NAME    256         //  task, worker and host names
#define JR_MAX_VARS    (1 << 20)   //  one job's vars map
#define JR_MAX_PAYLOAD (16 << 20)  //  one job's payload
#define JR_MAX_TEXT    65536       //  error texts
#define JR_JOB_FIELDS  18          //  elements of a job array on the wire
#define JR_MARK_FIELDS 3           //  elements of a mark array on the wire
#define JR_MAX_NOTE    256         //  a progress message
#define JR_MAX_WORKER  513         //  a STATE's worker: name@host, 2 * JR_MAX_NAME + 1
#define JR_MAX_LIST    100000      //  ids in one LIST answer: the largest limit
#define JR_LIST_CURSOR 20          //  a LIST cursor, if not empty: 4-byte hash, 16-byte id

_Static_assert(JR_LIST_CURSOR == JR_CURSOR_SIZE, "libjr's cursor is the wire's");

//  Field kinds, in wire order. A message carries a subset.
#define JR_FIELDS(X)                                                                               \
    X (F_TAG, 0, "tag")                                                                            \
    X (F_CODE, 1, "code")                                                                          \
    X (F_TEXT, 2, "text")                                                                          \
    X (F_NAME, 3, "name")                                                                          \
    X (F_HOST, 4, "host")                                                                          \
    X (F_TASKS, 5, "tasks")                                                                        \
    X (F_SLOTS, 6, "slots")                                                                        \
    X (F_WAIT, 7, "wait")                                                                          \
    X (F_JOBS, 8, "jobs")                                                                          \
    X (F_MARKS, 9, "marks")                                                                        \
    X (F_CAPACITY, 10, "capacity")                                                                 \
    X (F_NOTES, 11, "notes")                                                                       \
    X (F_TASK, 12, "task")                                                                         \
    X (F_LIMIT, 13, "limit")                                                                       \
    X (F_WORKERS, 14, "workers")                                                                   \
    X (F_CURSOR, 15, "cursor")
enum {
#define X(sym, bit, name) sym = 1u << bit,
    JR_FIELDS (X)
#undef X
};

typedef enum {
    JR_MSG_NONE = 0,
#define X(name, id, fields, doc) JR_MSG_##name = id,
#include "proto/messages.def"
#undef X
    JR_MSG_COUNT
} jr_msg_type_t;

//  (id, attempt, code): acknowledgements and lookups of single jobs.
typedef struct {
    uint8_t id[JR_ID_SIZE];
    uint32_t attempt;
    int32_t code;  //  a jr_error_t (negative) or a jr_state_t, per message
} jr_mark_t;

//  A task's progress: a number and a short message (value 0, "" = none).
typedef struct {
    int32_t value;
    jr_bytes_t text;
} jr_note_t;

//  One decoded or to-be-encoded message. Byte views point into the frame it
//  was decoded from, so the frame must outlive the message's use. Arrays are
//  kept between decodes to spare allocations; jr_msg_reset clears counts.
typedef struct {
    int type;           //  jr_msg_type_t
    uint64_t tag;       //  request tag echoed in the reply
    int32_t code;       //  error code (negative jr_error_t)
    jr_bytes_t text;    //  error text
    jr_bytes_t name;    //  worker name
    jr_bytes_t host;    //  worker host
    uint32_t slots;     //  free job slots
    uint32_t wait_ms;   //  how long FETCH may wait
    uint32_t capacity;  //  job slots in all (executors + prefetch)
    jr_bytes_t task;    //  LIST: only jobs of this task ("" = all)
    uint32_t limit;     //  LIST: at most this many ids (0 = JR_MAX_LIST)
    jr_bytes_t cursor;  //  LIST: ids after this position; STATE: the next page's ("" = end)
    jr_bytes_t *tasks;  //  task names (READY); the task of each mark (STATE)
    uint32_t ntasks, cap_tasks;
    jr_bytes_t *workers;  //  STATE: the worker (name@host) of each mark, "" if none
    uint32_t nworkers, cap_workers;
    jr_job_t *jobs;  //  jobs
    uint32_t njobs, cap_jobs;
    jr_mark_t *marks;  //  marks
    uint32_t nmarks, cap_marks;
    jr_note_t *notes;  //  progress notes, one per mark
    uint32_t nnotes, cap_notes;
} jr_msg_t;

jr_msg_t *jr_msg_new (void);
void jr_msg_destroy (jr_msg_t **self_p);
//  Start a new message of a type; keeps array capacity.
void jr_msg_reset (jr_msg_t *self, int type);
//  Append an element; returns a pointer to it (zeroed). Aborts on OOM.
jr_job_t *jr_msg_add_job (jr_msg_t *self);
jr_mark_t *jr_msg_add_mark (jr_msg_t *self, const uint8_t id[JR_ID_SIZE], uint32_t attempt,
                            int32_t code);
void jr_msg_add_task (jr_msg_t *self, jr_bytes_t name);
void jr_msg_add_worker (jr_msg_t *self, jr_bytes_t name);
void jr_msg_add_note (jr_msg_t *self, int32_t value, jr_bytes_t text);

//  Name of a message type, e.g. "SUBMIT" (static).
const char *jr_msg_name (int type);
//  The field set of a type (0 for an unknown type).
unsigned jr_msg_fields (int type);

//  Decode one body. Returns 0, or JR_EMALFORMED, JR_ETOOLARGE, JR_EVERSION,
//  JR_EUNKNOWN_TYPE. On failure self->tag holds the tag if it was read, so
//  the ERROR reply can carry it.
int jr_msg_decode (jr_msg_t *self, const void *data, size_t size);
//  True if a body is an ERROR of any version, decodable or not: receivers
//  never answer one, so two peers that refuse each other cannot loop.
bool jr_msg_is_error (const void *data, size_t size);
//  0, or JR_ETOOLARGE when a field of the job is over its limit (section 7
//  of PROTOCOL.md). The decoder applies it to every job except a SUBMIT's,
//  whose receiver refuses over-limit jobs one by one.
int jr_job_check (const jr_job_t *job);
//  Encode into a buffer the caller frees with free(); returns its size, or
//  0 and NULL on failure (oversized).
size_t jr_msg_encode (const jr_msg_t *self, uint8_t **data_p);

//  Send on a socket (void * of libzmq, or a zsock_t via zsock_resolve).
//  With a routing id (ROUTER), it is sent first. Never blocks: returns 0,
//  JR_EUNKNOWN_PEER (no such peer, with ZMQ_ROUTER_MANDATORY) or
//  JR_EQUEUE_FULL (high-water mark), JR_ETOOLARGE or JR_EIO.
int jr_msg_send (const jr_msg_t *self, void *socket, const void *peer, size_t peer_size);

#include "proto/budget.h"

//  jr_msg_send, with the frame counted in the budget until libzmq lets go
//  of it; JR_EQUEUE_FULL (nothing sent) when it would pass the limit.
int jr_msg_send_counted (const jr_msg_t *self, void *socket, const void *peer, size_t peer_size,
                         jr_budget_t *budget);

//  Write a one-line description to a buffer (truncated to size).
void jr_msg_print (const jr_msg_t *self, char *buf, size_t size);

//  Send an ERROR (tag, code, text) to a peer; best effort.
void jr_msg_send_error (void *socket, const void *peer, size_t peer_size, uint64_t tag, int code,
                        const char *text);
#endif
