/*  ctx.h - worker-side constructors of jr_ctx_t and jr_out_t (task.h is the task's view)  */
#ifndef JR_WORKER_CTX_H
#define JR_WORKER_CTX_H
#include <jr/task.h>
#include "proto/proto.h"

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

//  An eventfd (borrowed: it must outlive the context) to write 1 to when
//  progress becomes pending (once per take, not once per jr_ctx_progress),
//  so the worker's loop wakes to send it. -1 (the default) for none.
void jr_ctx_set_notify (jr_ctx_t *self, int fd);
//  True if the task reported progress since the last take. Thread-safe.
bool jr_ctx_progress_pending (const jr_ctx_t *self);
//  The latest progress, if pending: copies value and text (NUL-terminated,
//  *len bytes without the NUL) and clears pending. False if nothing new.
//  Thread-safe.
bool jr_ctx_progress_take (jr_ctx_t *self, int32_t *value, char text[JR_MAX_NOTE], size_t *len);

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
