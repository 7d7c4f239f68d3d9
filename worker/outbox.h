/*  outbox.h - the worker's results awaiting the ingester's ACK: keyed by (id, attempt), resent in send order  */
#ifndef JR_WORKER_OUTBOX_H
#define JR_WORKER_OUTBOX_H
#include <jr/jr.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _jr_outbox_t jr_outbox_t;

//  An empty outbox: results not ACKed for resend_us (> 0) are due again, and
//  it is full at backlog (> 0) results. Returns what the caller owns.
jr_outbox_t *jr_outbox_new (int64_t resend_us, size_t backlog);
//  Destroy the outbox and every result it holds; nulls the pointer.
void jr_outbox_destroy (jr_outbox_t **self_p);
//  Results held (fresh and sent), each until its ACK.
size_t jr_outbox_size (const jr_outbox_t *self);
//  True at the backlog bound: the worker then takes no new job.
bool jr_outbox_full (const jr_outbox_t *self);
//  Take ownership of a finished job's result, fresh (never sent). If a
//  result of the same id and attempt was held, it is replaced and returned:
//  the caller owns it (free with jr_job_destroy). Else NULL.
jr_job_t *jr_outbox_add (jr_outbox_t *self, jr_job_t *job);
//  True if a result of this id and attempt is held.
bool jr_outbox_has (const jr_outbox_t *self, const uint8_t id[JR_ID_SIZE], uint32_t attempt);
//  Remove the result of this id and attempt and return it (the caller owns
//  it), or NULL if none is held: the ACK of one already settled.
jr_job_t *jr_outbox_take (jr_outbox_t *self, const uint8_t id[JR_ID_SIZE], uint32_t attempt);
//  True if something should be sent at now: a fresh result, or a sent one
//  not ACKed for resend_us.
bool jr_outbox_due (const jr_outbox_t *self, int64_t now);
//  When the oldest sent result falls due, 0 if none is sent.
int64_t jr_outbox_resend_at (const jr_outbox_t *self);
//  The next result to send at now, resends due first (oldest send first),
//  then fresh ones; NULL when none is left. Each returned counts as sent at
//  now; *resend says whether it was sent before. Borrowed: valid until the
//  result is taken.
const jr_job_t *jr_outbox_next (jr_outbox_t *self, int64_t now, bool *resend);
//  Remove any one result and return it (the caller owns it), fresh ones
//  first, then in send order; NULL when empty. To hand back what is left.
jr_job_t *jr_outbox_pop (jr_outbox_t *self);
#endif
