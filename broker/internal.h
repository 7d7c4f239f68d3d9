/*  internal.h - the broker's state and the functions its files share (not installed)  */
#ifndef JR_BROKER_INTERNAL_H
#define JR_BROKER_INTERNAL_H
#include "broker/broker.h"
#include "broker/jobtab.h"
#include "broker/queue.h"
#include "broker/ring.h"
#include "common/clock.h"
#include "common/fdlimit.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "common/metrics.h"
#include "proto/auth.h"
#include "proto/proto.h"
#include "proto/transport.h"
#include <czmq.h>
#include <stdatomic.h>

#define JR_MAX_TASKS      65535       //  distinct task names the broker tracks
#define JR_NO_TASK        65535       //  a job's task when it holds none (finished)
#define JR_READY_TASKS    1024        //  tasks one READY may name
#define JR_UNSERVED_LOGS  10          //  unserved tasks logged per stats period
#define JR_MAX_ROUTING_ID 255         //  libzmq's own limit
#define JR_DRAIN_MAX      1000        //  messages read per socket per loop turn
#define JR_MAX_SLOTS      10000       //  credit one worker may hold
#define JR_LIST_SCAN      262144      //  job table slots one LIST page reads, about
#define JR_PEER_BYTES     (64 << 20)  //  replies one client may have unread
#define JR_BATCH_BYTES    (8 << 20)   //  a DISPATCH stops growing past this
#define JR_JOB_OVERHEAD   128         //  a job's encoded bytes beyond task and vars

typedef struct {
    char *name;         //  task name
    jr_queue_t queue;   //  waiting jobs
    uint32_t workers;   //  connected workers that serve it
    uint32_t refs;      //  held jobs (not finished) and workers that use it
    uint32_t seen;      //  the READY that named it last, to drop repeats
    bool spare;         //  on the spare list: reusable once refs is 0
    bool warned;        //  logged that no worker serves it, since one did
    char *note;         //  "no worker serves task NAME": name points into it
    uint16_t note_len;  //  of it, cut to what a note may carry
    bool labelled;      //  its metrics carry its name, not "_other"
    bool counted;       //  labelled was decided (on its first finished job)
    jr_counter_t
        *finished[JR_STATE_EXPIRED + 1];  //  jobs_finished{task,outcome}, made on first use
} jr_btask_t;
#define JR_METRIC_TASKS 1000  //  task label values at most; later tasks count as "_other"

#define S_UNSERVED "no worker serves task "  //  the STATUS note of such jobs

//  Where a worker's conversation stands (the table in workers.c).
typedef enum {
    JR_PEER_UNKNOWN,   //  no READY on this connection
    JR_PEER_ACTIVE,    //  said READY: takes jobs within its credit
    JR_PEER_DRAINING,  //  said BYE: gets nothing more, forgotten once it holds nothing
    JR_PEER_STATES
} jr_peer_state_t;

//  A connected worker, as the broker sees it.
struct _jr_worker_t {
    uint8_t rid[JR_MAX_ROUTING_ID];  //  ZeroMQ routing id
    size_t rid_len;
    char name[2 * JR_MAX_NAME + 2];  //  name@host, for logs
    uint16_t *tasks;                 //  tasks it serves
    uint32_t ntasks;
    uint32_t credit;          //  jobs we may still send it
    uint32_t capacity;        //  job slots it has in all
    uint32_t running;         //  jobs dispatched and not DONE
    uint32_t freed;           //  of those, out of their slots (FREE)
    jr_peer_state_t state;    //  ACTIVE, or DRAINING once it said BYE: nothing more for it
    jr_bjob_t *running_head;  //  those jobs
    int64_t last_recv;        //  mono us, any message from it
    int64_t last_send;        //  mono us, any message to it
    jr_msg_t *batch;          //  DISPATCH being built
    size_t batch_bytes;       //  its encoded size, about
};

//  A reply that waits for the journal: sent once its records are written.
typedef struct {
    uint8_t rid[JR_MAX_ROUTING_ID];
    size_t rid_len;
    jr_msg_t *msg;
} jr_breply_t;

//  The broker's figures, in its metrics registry (common/metrics.h), which
//  the stats line reads; names in jr_broker_new.
typedef struct {
    jr_counter_t *accepted, *refused, *dispatched, *done, *requeued, *retried, *dead, *cancelled,
        *expired, *malformed, *stale, *unread;  //  unread: replies dropped, unread by their client
    jr_auth_counters_t auth;                    //  refusals of the keys
    jr_gauge_t *live, *workers, *journal_bytes;
    uint32_t task_labels;  //  task label values registered, up to JR_METRIC_TASKS
} jr_bstats_t;

struct _jr_broker_t {
    jr_broker_config_t config;
    zsock_t *clients;       //  ROUTER
    zsock_t *workers_sock;  //  ROUTER
    jr_auth_t *auth;        //  the ZAP handler, with keys; NULL without
    jr_journal_t *journal;  //  NULL when running without one
    jr_jobtab_t *jobs;      //  every job we hold, live or remembered
    size_t live;            //  jobs not finished
    uint64_t queued_bytes;  //  vars of the jobs held with their vars
    jr_btask_t *tasks;      //  by index
    uint32_t ntasks;
    zhashx_t *task_index;   //  name -> index + 1
    jr_queue_t delayed;     //  scheduled retries, by not-before
    jr_queue_t cancelled;   //  cancelled jobs waiting for a worker to store their record
    jr_ring_t finished;     //  finished ids, oldest first
    jr_ring_t dead;         //  dead ids, oldest first
    jr_worker_t **workers;  //  connected workers
    uint32_t nworkers, cap_workers;
    uint32_t rr;          //  round-robin start for dispatch
    bool dirty;           //  queues or credit changed since dispatch
    uint64_t seq;         //  arrival counter
    jr_bjob_t **pending;  //  accepted this turn, not yet journaled
    size_t npending, cap_pending;
    jr_breply_t *replies;  //  replies waiting for the journal
    size_t nreplies, cap_replies;
    jr_msg_t **msg_pool;  //  spare messages for replies
    size_t npool;
    jr_msg_t *in;           //  decoded input (reused)
    jr_budgets_t *budgets;  //  what each client has unread
    jr_bjob_t **replayed;   //  jobs made by replay, in journal order
    size_t nreplayed, cap_replayed;
    int replay_task;        //  task of the last ACCEPT replayed, a cache
    size_t replay_lost;     //  accepted jobs replay found no task entry for
    jr_metrics_t *metrics;  //  every figure of this broker
    jr_bstats_t stats;      //  the broker's own, in metrics
    int64_t next_stats;     //  mono us
    int64_t next_sweep;     //  mono us, of budgets
    atomic_bool stop;
    uint16_t *spare;                  //  task entries that may have no refs, newest last
    uint32_t nspare;                  //
    uint32_t ready_seq;               //  READYs seen, to drop repeated names in one
    jr_msg_t *status;                 //  STATE answering a STATUS, sent at once
    uint8_t list_at[JR_LIST_CURSOR];  //  the cursor of the LIST reply being sent
    uint32_t unserved;                //  unserved tasks logged since the last stats line
};

//  Handles a decoded message (type NONE if it did not decode); false if it
//  has no business here, and is refused.
typedef bool (jr_broker_handler_fn) (jr_broker_t *self, const uint8_t *rid, size_t rid_len,
                                     int type);

//  moves.c: job moves
int jr_broker_lc (const jr_bjob_t *job);
void jr_broker_log_state (jr_broker_t *self, const jr_bjob_t *job, bool durable);
void jr_broker_log_accept (jr_broker_t *self, const jr_bjob_t *job, bool durable);
int jr_broker_flush (jr_broker_t *self);
void jr_broker_detach (jr_broker_t *self, jr_bjob_t *job);
void jr_broker_enqueue (jr_broker_t *self, jr_bjob_t *job);
void jr_broker_enqueue_cancelled (jr_broker_t *self, jr_bjob_t *job);
void jr_broker_drop (jr_broker_t *self, jr_bjob_t *job);
void jr_broker_remember (jr_broker_t *self, jr_bjob_t *job);
void jr_broker_finish (jr_broker_t *self, jr_bjob_t *job, int state, bool journal);
void jr_broker_make_dead (jr_broker_t *self, jr_bjob_t *job);
void jr_broker_schedule (jr_broker_t *self, jr_bjob_t *job);
void jr_broker_requeue (jr_broker_t *self, jr_bjob_t *job);

//  tasks.c: the task table
int jr_broker_task (jr_broker_t *self, jr_bytes_t name);
void jr_broker_task_hold (jr_broker_t *self, uint32_t t);
void jr_broker_task_release (jr_broker_t *self, uint32_t t);
void jr_broker_job_release (jr_broker_t *self, jr_bjob_t *job);
void jr_broker_unserved (jr_broker_t *self, jr_btask_t *task);
void jr_broker_count_finished (jr_broker_t *self, uint32_t t, int state);

//  workers.c: workers
void jr_broker_running_link (jr_worker_t *w, jr_bjob_t *job);
void jr_broker_running_unlink (jr_bjob_t *job);
void jr_broker_send_cancel (jr_broker_t *self, jr_worker_t *w, const jr_bjob_t *job);
void jr_broker_worker_forget (jr_broker_t *self, jr_worker_t *w, const char *why);
bool jr_broker_worker_message (jr_broker_t *self, const uint8_t *rid, size_t rid_len, int type);
void jr_broker_heartbeats (jr_broker_t *self);

//  clients.c: clients
void jr_broker_budgets_sweep (jr_broker_t *self);
bool jr_broker_client_message (jr_broker_t *self, const uint8_t *rid, size_t rid_len, int type);
void jr_broker_commit (jr_broker_t *self);

//  dispatch.c
void jr_broker_dispatch (jr_broker_t *self);

//  replay.c: replay and compaction
void jr_broker_compact (jr_broker_t *self);
void jr_broker_replay (const jr_rec_t *rec, void *arg);
void jr_broker_settle (jr_broker_t *self);
#endif
