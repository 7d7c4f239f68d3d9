/*  queue.h - one task's waiting jobs: a binary heap by priority, then arrival  */
#ifndef JR_BROKER_QUEUE_H
#define JR_BROKER_QUEUE_H
#include "broker/job.h"

//  A heap entry carries its job's sort key, so sifting compares within the
//  array instead of reading two jobs scattered over the heap per level.
typedef struct {
    int64_t first;   //  -priority, or not-before time for the delayed queue
    uint64_t seq;    //  arrival order, breaks ties
    jr_bjob_t *job;  //
} jr_queue_entry_t;

typedef struct {
    jr_queue_entry_t *heap;  //  heap[0] comes out next
    size_t size;
    size_t cap;
    bool by_due;  //  false: priority, then arrival; true: not-before, then arrival
} jr_queue_t;

//  The key is taken now: a queued job's priority and due_us must not change.
void jr_queue_push (jr_queue_t *self, jr_bjob_t *job);
//  The job that runs next, or NULL.
jr_bjob_t *jr_queue_peek (const jr_queue_t *self);
jr_bjob_t *jr_queue_pop (jr_queue_t *self);
//  Remove a given job (linear search; for rare events such as a DONE that
//  overtook a requeue). False if absent.
bool jr_queue_remove (jr_queue_t *self, const jr_bjob_t *job);
//  True if a runs before b: priority, then arrival.
bool jr_queue_before (const jr_bjob_t *a, const jr_bjob_t *b);
void jr_queue_free (jr_queue_t *self);
#endif
