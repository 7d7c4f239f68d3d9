/*  queue.c - binary heap of jobs by priority (high first), then arrival  */
#include "broker/queue.h"
#include <assert.h>
#include <stdlib.h>

bool
jr_queue_before (const jr_bjob_t *a, const jr_bjob_t *b)
{
    return a->priority != b->priority ? a->priority > b->priority : a->seq < b->seq;
}

bool
jr_queue_due_before (const jr_bjob_t *a, const jr_bjob_t *b)
{
    return a->at_us != b->at_us ? a->at_us < b->at_us : a->seq < b->seq;
}

static bool
s_before (const jr_queue_t *self, const jr_bjob_t *a, const jr_bjob_t *b)
{
    return self->before ? self->before (a, b) : jr_queue_before (a, b);
}

static void
s_up (jr_queue_t *self, size_t i)
{
    jr_bjob_t *job = self->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!s_before (self, job, self->heap[parent]))
            break;
        self->heap[i] = self->heap[parent];
        i = parent;
    }
    self->heap[i] = job;
}

static void
s_down (jr_queue_t *self, size_t i)
{
    jr_bjob_t *job = self->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size && s_before (self, self->heap[child + 1], self->heap[child]))
            child++;
        if (!s_before (self, self->heap[child], job))
            break;
        self->heap[i] = self->heap[child];
        i = child;
    }
    self->heap[i] = job;
}

void
jr_queue_push (jr_queue_t *self, jr_bjob_t *job)
{
    if (self->size == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 64;
        self->heap = realloc (self->heap, self->cap * sizeof *self->heap);
        assert (self->heap);
    }
    self->heap[self->size++] = job;
    s_up (self, self->size - 1);
}

jr_bjob_t *
jr_queue_peek (const jr_queue_t *self)
{
    return self->size ? self->heap[0] : NULL;
}

static void
s_take (jr_queue_t *self, size_t i)
{
    self->size--;
    if (i == self->size)
        return;
    self->heap[i] = self->heap[self->size];
    s_down (self, i);
    s_up (self, i);
}

jr_bjob_t *
jr_queue_pop (jr_queue_t *self)
{
    if (!self->size)
        return NULL;
    jr_bjob_t *job = self->heap[0];
    s_take (self, 0);
    return job;
}

bool
jr_queue_remove (jr_queue_t *self, const jr_bjob_t *job)
{
    for (size_t i = 0; i < self->size; i++)
        if (self->heap[i] == job) {
            s_take (self, i);
            return true;
        }
    return false;
}

void
jr_queue_free (jr_queue_t *self)
{
    free (self->heap);
    self->heap = NULL;
    self->size = self->cap = 0;
}
