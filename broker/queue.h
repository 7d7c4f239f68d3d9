/*  queue.h - one task's waiting jobs: a binary heap by priority, then arrival  */
#ifndef JR_BROKER_QUEUE_H
#define JR_BROKER_QUEUE_H
#include "broker/job.h"

typedef struct {
    jr_bjob_t **heap;  //  heap[0] runs next
    size_t size;
    size_t cap;
} jr_queue_t;

void jr_queue_push (jr_queue_t *self, jr_bjob_t *job);
//  The job that runs next, or NULL.
jr_bjob_t *jr_queue_peek (const jr_queue_t *self);
jr_bjob_t *jr_queue_pop (jr_queue_t *self);
//  Remove a given job (linear search; for rare events such as a DONE that
//  overtook a requeue). False if absent.
bool jr_queue_remove (jr_queue_t *self, const jr_bjob_t *job);
//  True if a runs before b.
bool jr_queue_before (const jr_bjob_t *a, const jr_bjob_t *b);
void jr_queue_free (jr_queue_t *self);
#endif
