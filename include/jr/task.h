/*  task.h - what a task sees: its context (deadline, cancel, vars) and its output  */
#ifndef JR_TASK_H
#define JR_TASK_H

#include <jr/jr.h>

#ifdef __cplusplus
extern "C" {
#endif

//  The context of one running attempt, like Go's context.Context: it carries
//  the deadline and the cancel signal, and the job's vars. Owned by the
//  worker; a task only borrows it for the duration of its call.
typedef struct _jr_ctx_t jr_ctx_t;

//  True once the attempt is cancelled or its deadline has passed.
JR_EXPORT bool jr_ctx_done (const jr_ctx_t *ctx);
//  Why it is done: 0 while running, JR_ECANCELLED or JR_EDEADLINE after.
JR_EXPORT int jr_ctx_err (const jr_ctx_t *ctx);
//  Milliseconds until the deadline (0 if passed, INT64_MAX if none).
JR_EXPORT int64_t jr_ctx_time_left_ms (const jr_ctx_t *ctx);
//  A file descriptor that becomes readable when the context is done, to put
//  in poll() beside the task's own descriptors. Borrowed.
JR_EXPORT int jr_ctx_fd (const jr_ctx_t *ctx);
//  Sleep up to ms milliseconds, waking early when the context is done.
//  Returns 0 after a full sleep, else jr_ctx_err().
JR_EXPORT int jr_ctx_sleep (const jr_ctx_t *ctx, int64_t ms);
//  The job being run (vars, attempt, id...). Borrowed.
JR_EXPORT const jr_job_t *jr_ctx_job (const jr_ctx_t *ctx);
//  The job's vars, one msgpack map (empty if none). Borrowed, like the job.
//  Read them with jr_vars_bytes, jr_vars_int and jr_vars_bool (in jr.h).
JR_EXPORT jr_bytes_t jr_ctx_vars (const jr_ctx_t *ctx);
//  The deadline in microseconds of the worker's monotonic clock
//  (CLOCK_MONOTONIC), 0 if none. Prefer jr_ctx_time_left_ms.
JR_EXPORT int64_t jr_ctx_deadline (const jr_ctx_t *ctx);

//  Report progress: a number (its meaning is the task's: percent, items
//  done, bytes...) and a short message (printf format, cut to 255 bytes on
//  a UTF-8 boundary). The last call wins; the worker sends the latest to the
//  broker at most about five times a second, and `jr status ID` shows it
//  while the job runs. Value 0 with an empty message reads as no progress.
//  Thread-safe and cheap (a format and a mutex): call it as often as you
//  like. Isolated tasks (--isolate) may call it, but their progress stays
//  in the child and is not shown.
JR_EXPORT void jr_ctx_progress (jr_ctx_t *ctx, int32_t value, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Where a task writes its result.
typedef struct _jr_out_t jr_out_t;
//  Append bytes to the payload. Returns 0 or JR_ETOOLARGE past the limit.
JR_EXPORT int jr_out_write (jr_out_t *out, const void *data, size_t size);
//  Set the error text (printf format); the last call wins.
JR_EXPORT void jr_out_errorf (jr_out_t *out, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  Say that this failure is not worth retrying (bad input, a task that can
//  never succeed): the attempt ends FAILED instead of going back to the
//  broker for a retry. No effect on a task that returns success.
JR_EXPORT void jr_out_permanent (jr_out_t *out);

//  A task: run the job described by ctx, write its payload to out, return
//  success. Must return soon after jr_ctx_done() becomes true.
typedef bool (jr_task_fn) (jr_ctx_t *ctx, jr_out_t *out);

//  Register a task under name (copied); fn lives as long as the process.
//  Plugins call it from their init function (see below). Returns 0, or
//  JR_EINVALID for an empty name, one longer than 256 bytes, or one already
//  registered. Thread-safe.
JR_EXPORT int jr_task_register (const char *name, jr_task_fn *fn);

//  A plugin is a shared object loaded with `jr-worker --plugin path.so`. It
//  exports this function, which registers its tasks and returns 0 (non-zero
//  makes the worker refuse to start). It resolves the functions of this
//  header from the jr-worker binary, so it must not link libjr itself.
JR_EXPORT int jr_plugin_init (void);

#ifdef __cplusplus
}
#endif
#endif
