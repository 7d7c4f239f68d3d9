/*  executor.h - a pool of threads that run tasks and hand finished runs back to the loop  */
#ifndef JR_WORKER_EXECUTOR_H
#define JR_WORKER_EXECUTOR_H
#include <jr/task.h>

//  One attempt of one job, from dispatch to its result. The worker's loop
//  owns it except while an executor thread runs it.
typedef struct _jr_run_t jr_run_t;
struct _jr_run_t {
    jr_job_t *job;         //  owned copy of the dispatched job
    jr_task_fn *fn;        //  the task
    jr_ctx_t *ctx;         //  owned; the loop cancels it at the deadline
    jr_out_t *out;         //  owned; payload and error text
    uint32_t timeout_ms;   //  the deadline applied: the job's, else the task default
    bool success;          //  what the task returned
    int64_t started_us;    //  wall clock, set by the executor
    int64_t completed_us;  //  wall clock, set by the executor
    void *handle;          //  the worker's list handle
    jr_run_t *next;        //  executor queues
};

//  A run of a copy of job (the job may point into a frame), with a deadline
//  of job->timeout_ms from now if it is > 0, and a payload limit. Returns
//  NULL (and nothing to free) if the context could not be made.
jr_run_t *jr_run_new (const jr_job_t *job, jr_task_fn *fn, size_t max_payload);
//  The same, with default_timeout_ms (0 = none) as the deadline of a job
//  whose timeout_ms is 0 (the job keeps its 0; run->timeout_ms says which).
jr_run_t *jr_run_new_timeout (const jr_job_t *job, jr_task_fn *fn, size_t max_payload,
                              uint32_t default_timeout_ms);
//  Destroy a run and all it owns; nulls the pointer.
void jr_run_destroy (jr_run_t **self_p);
//  Run the task on the calling thread, stamping start and end; a run whose
//  context is done already (cancelled, or past its deadline) is stamped but
//  the task is not called.
void jr_run_execute (jr_run_t *self);
//  The result of a finished run as a job the caller owns (free with
//  jr_job_destroy): success, payload, error, state, worker and stamps. A run
//  whose context ended by deadline fails with "DEADLINE_EXCEEDED: ...".
jr_job_t *jr_run_result (const jr_run_t *self, const char *worker);

//  A failed result for a job that never ran (unknown task, no slot...), owned
//  by the caller.
jr_job_t *jr_result_failed (const jr_job_t *job, const char *worker, const char *error);

typedef struct _jr_executor_t jr_executor_t;

//  Start threads executor threads.
jr_executor_t *jr_executor_new (size_t threads);
//  Stop the threads after the runs they hold and join them; nulls the
//  pointer. Finished runs not taken are destroyed. A thread stuck in a task
//  that ignores its context is left behind (and the pool leaked) after
//  grace_ms, so shutdown cannot hang on it.
void jr_executor_destroy (jr_executor_t **self_p, int grace_ms);
//  Queue a run (ownership passes until it comes back from jr_executor_take).
void jr_executor_submit (jr_executor_t *self, jr_run_t *run);
//  Take back queued runs no thread has started: each whose context is done
//  (cancelled, or past its deadline while it waited for a thread), stamped
//  as run so its result says why; with all, every other one too, unstamped
//  (started_us 0: never started, to be handed back). They come back through
//  jr_executor_take at once; the task is not called. Returns how many.
size_t jr_executor_sweep (jr_executor_t *self, bool all);
//  All finished runs, oldest first, linked by next; NULL if none. Clears the fd.
jr_run_t *jr_executor_take (jr_executor_t *self);
//  Readable while finished runs wait to be taken. Borrowed.
int jr_executor_fd (const jr_executor_t *self);
#endif
