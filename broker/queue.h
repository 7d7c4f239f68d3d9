/*  queue.h - one task's waiting jobs: a binary heap by priority, then arrival  */
#ifndef JR_BROKER_QUEUE_H
#define JR_BROKER_QUEUE_H
#include "broker/job.h"

//  Orders two jobs: true if a comes out before b.
typedef bool (jr_queue_order_fn) (const jr_bjob_t *a, const jr_bjob_t *b);

typedef struct {
    jr_bjob_t **heap;  //  heap[0] comes out next
    size_t size;
    size_t cap;
    jr_queue_order_fn *before;  //  NULL: jr_queue_before (priority, arrival)
} jr_queue_t;

void jr_queue_push (jr_queue_t *self, jr_bjob_t *job);
//  The job that runs next, or NULL.
jr_bjob_t *jr_queue_peek (const jr_queue_t *self);
jr_bjob_t *jr_queue_pop (jr_queue_t *self);
//  Remove a given job (linear search; for rare events such as a DONE that
//  overtook a requeue). False if absent.
bool jr_queue_remove (jr_queue_t *self, const jr_bjob_t *job);
//  True if a runs before b: priority, then arrival.
bool jr_queue_before (const jr_bjob_t *a, const jr_bjob_t *b);
//  True if a is due before b (delayed jobs, by not-before time).
bool jr_queue_due_before (const jr_bjob_t *a, const jr_bjob_t *b);
void jr_queue_free (jr_queue_t *self);
#endif
