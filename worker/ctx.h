/*  ctx.h - worker-side constructors of jr_ctx_t and jr_out_t (task.h is the task's view)  */
#ifndef JR_WORKER_CTX_H
#define JR_WORKER_CTX_H
#include <jr/task.h>

//  A context for one attempt of job (borrowed: it must outlive the context),
//  ending at deadline_mono_us on jr_clock_mono_us (0 = no deadline). Returns
//  NULL if no eventfd could be made (descriptor limit).
jr_ctx_t *jr_ctx_new (const jr_job_t *job, int64_t deadline_mono_us);
//  Destroy a context; nulls the pointer. Idempotent.
void jr_ctx_destroy (jr_ctx_t **self_p);
//  End the context with code (JR_ECANCELLED or JR_EDEADLINE) and wake the
//  task through its fd. The first reason wins; thread-safe.
void jr_ctx_cancel (jr_ctx_t *self, int code);
//  jr_ctx_deadline (task.h) gives the deadline passed to jr_ctx_new.

//  An output that refuses payload beyond max bytes.
jr_out_t *jr_out_new (size_t max);
//  The limit given to jr_out_new.
size_t jr_out_max (const jr_out_t *self);
//  Destroy an output; nulls the pointer. Idempotent.
void jr_out_destroy (jr_out_t **self_p);
//  The payload written so far (borrowed, valid until the next write).
jr_bytes_t jr_out_payload (const jr_out_t *self);
//  The error text, or NULL if the task set none (borrowed).
const char *jr_out_error (const jr_out_t *self);
//  0, or JR_ETOOLARGE once a write was refused.
int jr_out_err (const jr_out_t *self);
//  True once the task called jr_out_permanent.
bool jr_out_is_permanent (const jr_out_t *self);
#endif
