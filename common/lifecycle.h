/*  lifecycle.h - a job's states, which end it for whom, and its moves (state x event)  */
#ifndef JR_LIFECYCLE_H
#define JR_LIFECYCLE_H
#include <jr/jr.h>

//  Two states of the broker's own after jr_state_t's: a job whose cancel is
//  journaled (clients are told CANCELLED) but whose CANCELLED record is not
//  stored yet (PROTOCOL.md 6.1 CANCEL). Today's broker says so with
//  job->cancel on a QUEUED or RUNNING job.
#define JR_STATE_CANCEL_QUEUED  9   //  waits for any worker to store its record
#define JR_STATE_CANCEL_RUNNING 10  //  its worker is stopping it
#define JR_LIFECYCLE_STATES     11

//  What happens to a job the broker holds. DONE_* and HANDED_BACK are the
//  codes of a DONE mark from the worker running that very attempt (marks of
//  any other attempt or worker are dropped before the table).
#define JR_EVENTS(X)                                                                               \
    X (JR_EVENT_ACCEPT, 0, "accept")                 /*  a SUBMIT is journaled  */                 \
    X (JR_EVENT_DISPATCH, 1, "dispatch")             /*  sent to a worker, attempt + 1  */         \
    X (JR_EVENT_UNSENT, 2, "unsent")                 /*  that dispatch never left: undone  */      \
    X (JR_EVENT_DONE_SUCCEEDED, 3, "done_succeeded") /*  DONE code SUCCEEDED  */                   \
    X (JR_EVENT_DONE_FAILED, 4, "done_failed")       /*  FAILED, or a code no state  */            \
    X (JR_EVENT_DONE_SCHEDULED, 5, "done_scheduled") /*  failed, attempts left  */                 \
    X (JR_EVENT_DONE_DEAD, 6, "done_dead")           /*  failed, attempts used up  */              \
    X (JR_EVENT_DONE_CANCELLED, 7, "done_cancelled") /*  a CANCEL stopped it  */                   \
    X (JR_EVENT_DONE_EXPIRED, 8, "done_expired")     /*  deadline on the last attempt  */          \
    X (JR_EVENT_HANDED_BACK, 9, "handed_back")       /*  DONE code QUEUED: not run  */             \
    X (JR_EVENT_LEASE_LOST, 10, "lease_lost")        /*  its lease ran out  */                     \
    X (JR_EVENT_WORKER_LOST, 11, "worker_lost")      /*  its worker is forgotten  */               \
    X (JR_EVENT_CANCEL, 12, "cancel")                /*  a client's CANCEL is journaled  */        \
    X (JR_EVENT_RETRY, 13, "retry")                  /*  a client's RETRY is journaled  */         \
    X (JR_EVENT_RETRY_DUE, 14, "retry_due")          /*  its backoff is over  */                   \
    X (JR_EVENT_FORGET, 15, "forget")                /*  out of the remembered ids  */

typedef enum {
#define JR_X_ENUM(sym, num, name) sym = num,
    JR_EVENTS (JR_X_ENUM)
#undef JR_X_ENUM
        JR_EVENT_COUNT
} jr_job_event_t;

//  The state a job moves to on an event, or -1 if the event does not apply
//  to that state (the job stays as it is; a CANCEL or RETRY is answered
//  with the state, a SUBMIT of a known id with 0). JR_STATE_UNKNOWN as a
//  result means the broker no longer holds the job.
int jr_lifecycle_next (int state, int event);
//  The state a client is told of a job in this state (STATUS, CANCEL,
//  RETRY replies): CANCELLED for both cancel states, else the state.
int jr_lifecycle_told (int state);
//  The event a DONE mark's code stands for.
int jr_lifecycle_done_event (int code);
//  Name of an event, e.g. "lease_lost" (borrowed, static); "?" if none.
const char *jr_event_name (int event);

//  Final for the broker: the job is finished and only its id is kept
//  (SUCCEEDED, FAILED, CANCELLED, EXPIRED). DEAD is not: it is held for
//  LIST and RETRY.
bool jr_state_final_for_broker (int state);
//  The end of a wait for a result (ingester FETCH waiters, the CLI):
//  SUCCEEDED, FAILED, DEAD, CANCELLED, EXPIRED. A SCHEDULED result is
//  stored, but another attempt follows.
bool jr_state_ends_wait (int state);
//  The states the broker holds jobs in and LIST serves: QUEUED, SCHEDULED,
//  RUNNING, DEAD.
bool jr_state_held (int state);

//  The state a worker gives an attempt that ended (PROTOCOL.md 6.2, result
//  states): SUCCEEDED; CANCELLED when a CANCEL stopped it; EXPIRED when its
//  deadline stopped the last attempt; FAILED when permanent; else
//  SCHEDULED while attempts are left, DEAD after the last (max_attempts 0
//  counts as 1).
int jr_attempt_state (const jr_job_t *result, bool cancelled, bool deadline, bool permanent);
//  True for the states a result can never have (QUEUED, RUNNING): the
//  ingester refuses such a RESULT with INVALID. Any other value is stored,
//  as jr_result_state reads it.
bool jr_state_no_result (int state);
//  The state of a stored result: its own when it is a state, else (a
//  worker or a row that set none) what its success says.
int jr_result_state (int state, bool success);
#endif
