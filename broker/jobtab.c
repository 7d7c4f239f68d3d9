/*  jobtab.c - jobs by id: linear probing with backward-shift deletion, slots in hash order  */
#include "broker/jobtab.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

//  Each slot keeps 32 bits of its job's hash beside the pointer, so a probe
//  compares within the table and reads a job (a cache miss, the jobs being
//  spread over memory) only when the hash matches; moving entries back on a
//  removal needs no job at all.
//  A job's home slot is the top bits of its hash, so the table is in hash
//  order (but for the runs of linear probing): a range of hashes is a range
//  of slots, which lets LIST walk it in pages (jr_jobtab_range).
typedef struct {
    uint32_t hash;   //  the job's hash, jr_jobtab_hash (id)
    jr_bjob_t *job;  //  NULL = empty
} s_slot_t;

struct _jr_jobtab_t {
    s_slot_t *slots;  //  one cache line holds four: a probe run is read at once
    size_t mask;      //  capacity - 1, capacity a power of two (at most 2^32)
    unsigned shift;   //  32 - log2 (capacity): home = hash >> shift
    size_t size;      //  live entries
};

//  Ids are the clients': v4 UUIDs are random, but a client may as well send
//  v7 UUIDs (the first 48 bits a millisecond clock: every id of a minute
//  shares its first 4 bytes) or counters. Homing by raw id bytes would put
//  all of those on one home and make each probe O(n), so every byte goes
//  through murmur3's 64-bit finalizer (an invertible mix: halves that differ
//  anywhere give different inputs). Constants are fixed, no per-process
//  seed: LIST cursors carry hashes and must stay valid across a restart.
static uint64_t
s_fmix64 (uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static uint64_t
s_load64 (const uint8_t *p)  //  big-endian, so the hash is the same on any host
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

uint32_t
jr_jobtab_hash (const uint8_t id[JR_ID_SIZE])
{
    return (uint32_t)(s_fmix64 (s_load64 (id) ^ s_fmix64 (s_load64 (id + 8))) >> 32);
}

void
jr_jobtab_pos (const uint8_t id[JR_ID_SIZE], uint8_t pos[JR_JOBTAB_POS_SIZE])
{
    uint32_t hash = jr_jobtab_hash (id);
    pos[0] = (uint8_t)(hash >> 24), pos[1] = (uint8_t)(hash >> 16);
    pos[2] = (uint8_t)(hash >> 8), pos[3] = (uint8_t)hash;
    memcpy (pos + 4, id, JR_ID_SIZE);
}

//  A position's hash, from its first 4 bytes.
static uint32_t
s_pojr_jobtab_hash (const uint8_t *pos)
{
    return (uint32_t)pos[0] << 24 | (uint32_t)pos[1] << 16 | (uint32_t)pos[2] << 8 | pos[3];
}

static size_t
s_home (const jr_jobtab_t *self, uint32_t hash)
{
    return self->shift == 32 ? 0 : hash >> self->shift;
}

static void
s_alloc (jr_jobtab_t *self, size_t capacity)
{
    assert (capacity <= (size_t)UINT32_MAX + 1);
    self->mask = capacity - 1;
    self->shift = 32;
    while (((size_t)1 << (32 - self->shift)) < capacity)
        self->shift--;
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
    size_t i = s_home (self, hash);
    while (self->slots[i].job
           && (self->slots[i].hash != hash || memcmp (self->slots[i].job->id, id, JR_ID_SIZE) != 0))
        i = (i + 1) & self->mask;
    return i;
}

jr_bjob_t *
jr_jobtab_find (const jr_jobtab_t *self, const uint8_t id[JR_ID_SIZE])
{
    return self->slots[s_locate (self, id, jr_jobtab_hash (id))].job;
}

static void
s_grow (jr_jobtab_t *self)
{
    s_slot_t *old = self->slots;
    size_t capacity = self->mask + 1;
    s_alloc (self, capacity * 2);
    for (size_t i = 0; i < capacity; i++)
        if (old[i].job) {
            size_t j = s_home (self, old[i].hash);
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
    uint32_t hash = jr_jobtab_hash (job->id);
    size_t i = s_locate (self, job->id, hash);
    assert (self->slots[i].job == NULL);
    self->slots[i] = (s_slot_t){ hash, job };
    self->size++;
}

bool
jr_jobtab_remove (jr_jobtab_t *self, const jr_bjob_t *job)
{
    size_t i = s_locate (self, job->id, jr_jobtab_hash (job->id));
    if (!self->slots[i].job)
        return false;
    self->slots[i].job = NULL;
    self->size--;
    //  Shift back the entries of the probe run that follows, so lookups
    //  never stop early at the hole.
    for (size_t j = (i + 1) & self->mask; self->slots[j].job; j = (j + 1) & self->mask) {
        size_t home = s_home (self, self->slots[j].hash);
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

//  A job is in the range [h0, h1) of home slots, and after the position
//  `after` (a job of a later home has a larger hash: it is after).
static bool
s_in_range (const jr_jobtab_t *self, const s_slot_t *slot, size_t h0, size_t h1,
            const uint8_t *after)
{
    size_t home = s_home (self, slot->hash);
    if (home < h0 || home >= h1)
        return false;
    if (home > h0 || !after)
        return true;
    uint32_t hash = s_pojr_jobtab_hash (after);
    return slot->hash != hash ? slot->hash > hash
                              : memcmp (slot->job->id, after + 4, JR_ID_SIZE) > 0;
}

bool
jr_jobtab_range (const jr_jobtab_t *self, const uint8_t *after, size_t budget,
                 bool (*fn) (jr_bjob_t *job, void *arg), void *arg,
                 uint8_t bound[JR_JOBTAB_POS_SIZE])
{
    size_t capacity = self->mask + 1;
    size_t h0 = after ? s_home (self, s_pojr_jobtab_hash (after)) : 0;
    //  Home slots h0, h0 + 1, ... in turn, while the budget lasts and fn
    //  wants more. A job lives at or after its home, in one run of full
    //  slots; one found before its home wrapped around the end of the
    //  table, and belongs to the last homes (seen below, if at all).
    size_t p = h0, seen = 0;
    bool more = true;
    while (p < capacity && more && seen < budget) {
        const s_slot_t *slot = &self->slots[p];
        if (slot->job && s_in_range (self, slot, h0, p + 1, after))
            more = fn (slot->job, arg);
        p++, seen++;
    }
    //  Homes [h0, p) are closed: the jobs of the last ones that were pushed
    //  past p by probing follow, up to the next empty slot (wrapping).
    size_t h1 = p;
    for (size_t q = p; self->slots[q & self->mask].job; q++) {
        const s_slot_t *slot = &self->slots[q & self->mask];
        bool wrapped = s_home (self, slot->hash) > (q & self->mask);
        if ((q < capacity) != wrapped && s_in_range (self, slot, h0, h1, after))
            fn (slot->job, arg);
    }
    if (h1 == capacity)
        return true;
    //  The last position of home h1 - 1 (its largest hash, any id): the
    //  next range starts after it, whatever size the table has by then.
    uint32_t last = (uint32_t)((((uint64_t)h1) << self->shift) - 1);
    bound[0] = (uint8_t)(last >> 24), bound[1] = (uint8_t)(last >> 16);
    bound[2] = (uint8_t)(last >> 8), bound[3] = (uint8_t)last;
    memset (bound + 4, 0xFF, JR_ID_SIZE);
    return false;
}

size_t
jr_jobtab_longest_run (const jr_jobtab_t *self)
{
    size_t longest = 0;
    for (size_t i = 0; i <= self->mask; i++)
        if (self->slots[i].job) {
            size_t run = ((i - s_home (self, self->slots[i].hash)) & self->mask) + 1;
            longest = run > longest ? run : longest;
        }
    return longest;
}
