/*  queue.c - binary heap of jobs by priority (high first), then arrival  */
#include "broker/queue.h"
#include <assert.h>
#include <stdlib.h>

bool
jr_queue_before (const jr_bjob_t *a, const jr_bjob_t *b)
{
    return a->priority != b->priority ? a->priority > b->priority : a->seq < b->seq;
}

static bool
s_before (const jr_queue_entry_t *a, const jr_queue_entry_t *b)
{
    return a->first != b->first ? a->first < b->first : a->seq < b->seq;
}

static void
s_up (jr_queue_t *self, size_t i)
{
    jr_queue_entry_t entry = self->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!s_before (&entry, &self->heap[parent]))
            break;
        self->heap[i] = self->heap[parent];
        i = parent;
    }
    self->heap[i] = entry;
}

static void
s_down (jr_queue_t *self, size_t i)
{
    jr_queue_entry_t entry = self->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size && s_before (&self->heap[child + 1], &self->heap[child]))
            child++;
        if (!s_before (&self->heap[child], &entry))
            break;
        self->heap[i] = self->heap[child];
        i = child;
    }
    self->heap[i] = entry;
}

void
jr_queue_push (jr_queue_t *self, jr_bjob_t *job)
{
    if (self->size == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 64;
        self->heap = realloc (self->heap, self->cap * sizeof *self->heap);
        assert (self->heap);
    }
    self->heap[self->size++] =
        (jr_queue_entry_t){ self->by_due ? job->due_us : -(int64_t)job->priority, job->seq, job };
    s_up (self, self->size - 1);
}

jr_bjob_t *
jr_queue_peek (const jr_queue_t *self)
{
    return self->size ? self->heap[0].job : NULL;
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
    jr_bjob_t *job = self->heap[0].job;
    s_take (self, 0);
    return job;
}

bool
jr_queue_remove (jr_queue_t *self, const jr_bjob_t *job)
{
    for (size_t i = 0; i < self->size; i++)
        if (self->heap[i].job == job) {
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
