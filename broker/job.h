/*  job.h - the broker's record of one job it holds (queued or running)  */
#ifndef JR_BROKER_JOB_H
#define JR_BROKER_JOB_H
#include <jr/jr.h>

typedef struct _jr_worker_t jr_worker_t;

//  Kept small: a broker holds millions of these. The vars follow the
//  struct in the same allocation.
typedef struct _jr_bjob_t {
    uint8_t id[JR_ID_SIZE];
    uint64_t seq;           //  arrival order, breaks priority ties
    int64_t created_us;     //  client's stamp
    int64_t accepted_us;    //  ours, when accepted
    int64_t dispatched_us;  //  ours, last dispatch
    int64_t at_us;          //  wall: not-before (scheduled), end (finished, dead)
    int64_t due_us;         //  mono: lease end (running), retry time (scheduled); 0 = none
    int32_t priority;       //  higher first
    uint32_t timeout_ms;    //  per attempt
    uint32_t max_attempts;  //  0 = default
    uint32_t attempt;       //  attempts dispatched so far
    uint32_t vars_len;      //  bytes of vars after the struct
    uint16_t task;          //  index into the broker's task table
    uint8_t state;          //  jr_state_t; UNKNOWN until journaled
    bool cancel;            //  cancelled while running: do not requeue
    bool freed;             //  running, but out of its executor (FREE came)
    jr_worker_t *worker;    //  while running
    struct _jr_progress_t *progress;  //  the running attempt's last progress, or NULL
    struct _jr_bjob_t *prev;          //  in the worker's running list
    struct _jr_bjob_t *next;
    uint8_t vars[];  //  raw msgpack map
} jr_bjob_t;

//  What a running task said of its progress.
typedef struct _jr_progress_t {
    int32_t value;
    uint16_t len;
    char text[];
} jr_progress_t;

//  A new record copied from a decoded job (vars included); aborts on OOM.
jr_bjob_t *jr_bjob_new (const jr_job_t *job, uint16_t task);
void jr_bjob_destroy (jr_bjob_t **self_p);
#endif
