/*  jobtab.c - jobs by id: linear probing with backward-shift deletion  */
#include "broker/jobtab.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct _jr_jobtab_t {
    jr_bjob_t **slots;  //  NULL = empty
    size_t mask;        //  capacity - 1, capacity a power of two
    size_t size;        //  live entries
};

//  UUIDs v4 are random, so their first bytes are already a good hash.
static size_t
s_hash (const uint8_t id[JR_ID_SIZE])
{
    uint64_t h;
    memcpy (&h, id, sizeof h);
    return (size_t)(h ^ (h >> 29));
}

jr_jobtab_t *
jr_jobtab_new (void)
{
    jr_jobtab_t *self = calloc (1, sizeof *self);
    assert (self);
    self->mask = 1023;
    self->slots = calloc (self->mask + 1, sizeof *self->slots);
    assert (self->slots);
    return self;
}

void
jr_jobtab_destroy (jr_jobtab_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jr_jobtab_t *self = *self_p;
    for (size_t i = 0; i <= self->mask; i++)
        jr_bjob_destroy (&self->slots[i]);
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
s_locate (const jr_jobtab_t *self, const uint8_t id[JR_ID_SIZE])
{
    size_t i = s_hash (id) & self->mask;
    while (self->slots[i] && memcmp (self->slots[i]->id, id, JR_ID_SIZE) != 0)
        i = (i + 1) & self->mask;
    return i;
}

jr_bjob_t *
jr_jobtab_find (const jr_jobtab_t *self, const uint8_t id[JR_ID_SIZE])
{
    return self->slots[s_locate (self, id)];
}

static void
s_grow (jr_jobtab_t *self)
{
    jr_bjob_t **old = self->slots;
    size_t old_cap = self->mask + 1;
    self->mask = old_cap * 2 - 1;
    self->slots = calloc (self->mask + 1, sizeof *self->slots);
    assert (self->slots);
    for (size_t i = 0; i < old_cap; i++)
        if (old[i])
            self->slots[s_locate (self, old[i]->id)] = old[i];
    free (old);
}

void
jr_jobtab_insert (jr_jobtab_t *self, jr_bjob_t *job)
{
    if ((self->size + 1) * 4 > (self->mask + 1) * 3)  //  keep load under 3/4
        s_grow (self);
    size_t i = s_locate (self, job->id);
    assert (self->slots[i] == NULL);
    self->slots[i] = job;
    self->size++;
}

bool
jr_jobtab_remove (jr_jobtab_t *self, const jr_bjob_t *job)
{
    size_t i = s_locate (self, job->id);
    if (!self->slots[i])
        return false;
    self->slots[i] = NULL;
    self->size--;
    //  Shift back the entries of the probe run that follows, so lookups
    //  never stop early at the hole.
    for (size_t j = (i + 1) & self->mask; self->slots[j]; j = (j + 1) & self->mask) {
        size_t home = s_hash (self->slots[j]->id) & self->mask;
        //  Move j to the hole i unless its home lies cyclically in (i, j].
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            self->slots[i] = self->slots[j];
            self->slots[j] = NULL;
            i = j;
        }
    }
    return true;
}

void
jr_jobtab_each (const jr_jobtab_t *self, void (*fn) (jr_bjob_t *job, void *arg), void *arg)
{
    for (size_t i = 0; i <= self->mask; i++)
        if (self->slots[i])
            fn (self->slots[i], arg);
}
