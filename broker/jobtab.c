/*  jobtab.c - jobs by id: linear probing with backward-shift deletion  */
#include "broker/jobtab.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

//  Each slot keeps 32 bits of its job's hash beside the pointer, so a probe
//  compares within the table and reads a job (a cache miss, the jobs being
//  spread over memory) only when the hash matches; moving entries back on a
//  removal needs no job at all.
typedef struct {
    uint32_t hash;   //  the low 32 bits of the job's hash
    jr_bjob_t *job;  //  NULL = empty
} s_slot_t;

struct _jr_jobtab_t {
    s_slot_t *slots;  //  one cache line holds four: a probe run is read at once
    size_t mask;      //  capacity - 1, capacity a power of two (at most 2^32)
    size_t size;      //  live entries
};

//  UUIDs v4 are random, so their first bytes are already a good hash.
static uint32_t
s_hash (const uint8_t id[JR_ID_SIZE])
{
    uint64_t h;
    memcpy (&h, id, sizeof h);
    return (uint32_t)(h ^ (h >> 29));
}

static void
s_alloc (jr_jobtab_t *self, size_t capacity)
{
    assert (capacity <= (size_t)UINT32_MAX + 1);
    self->mask = capacity - 1;
    self->slots = calloc (capacity, sizeof *self->slots);
    assert (self->slots);
}

jr_jobtab_t *
jr_jobtab_new (void)
{
    jr_jobtab_t *self = calloc (1, sizeof *self);
    assert (self);
    s_alloc (self, 1024);
    return self;
}

void
jr_jobtab_destroy (jr_jobtab_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jr_jobtab_t *self = *self_p;
    for (size_t i = 0; i <= self->mask; i++)
        jr_bjob_destroy (&self->slots[i].job);
    free (self->slots);
    free (self);
    *self_p = NULL;
}

size_t
jr_jobtab_size (const jr_jobtab_t *self)
{
    return self->size;
}

static size_t
s_locate (const jr_jobtab_t *self, const uint8_t id[JR_ID_SIZE], uint32_t hash)
{
    size_t i = hash & self->mask;
    while (self->slots[i].job
           && (self->slots[i].hash != hash || memcmp (self->slots[i].job->id, id, JR_ID_SIZE) != 0))
        i = (i + 1) & self->mask;
    return i;
}

jr_bjob_t *
jr_jobtab_find (const jr_jobtab_t *self, const uint8_t id[JR_ID_SIZE])
{
    return self->slots[s_locate (self, id, s_hash (id))].job;
}

static void
s_grow (jr_jobtab_t *self)
{
    s_slot_t *old = self->slots;
    size_t capacity = self->mask + 1;
    s_alloc (self, capacity * 2);
    for (size_t i = 0; i < capacity; i++)
        if (old[i].job) {
            size_t j = old[i].hash & self->mask;
            while (self->slots[j].job)
                j = (j + 1) & self->mask;
            self->slots[j] = old[i];
        }
    free (old);
}

void
jr_jobtab_insert (jr_jobtab_t *self, jr_bjob_t *job)
{
    if ((self->size + 1) * 4 > (self->mask + 1) * 3)  //  keep load under 3/4
        s_grow (self);
    uint32_t hash = s_hash (job->id);
    size_t i = s_locate (self, job->id, hash);
    assert (self->slots[i].job == NULL);
    self->slots[i] = (s_slot_t){ hash, job };
    self->size++;
}

bool
jr_jobtab_remove (jr_jobtab_t *self, const jr_bjob_t *job)
{
    size_t i = s_locate (self, job->id, s_hash (job->id));
    if (!self->slots[i].job)
        return false;
    self->slots[i].job = NULL;
    self->size--;
    //  Shift back the entries of the probe run that follows, so lookups
    //  never stop early at the hole.
    for (size_t j = (i + 1) & self->mask; self->slots[j].job; j = (j + 1) & self->mask) {
        size_t home = self->slots[j].hash & self->mask;
        //  Move j to the hole i unless its home lies cyclically in (i, j].
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            self->slots[i] = self->slots[j];
            self->slots[j].job = NULL;
            i = j;
        }
    }
    return true;
}

void
jr_jobtab_each (const jr_jobtab_t *self, void (*fn) (jr_bjob_t *job, void *arg), void *arg)
{
    for (size_t i = 0; i <= self->mask; i++)
        if (self->slots[i].job)
            fn (self->slots[i].job, arg);
}
