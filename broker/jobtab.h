/*  jobtab.h - the broker's jobs by id: open addressing, no per-entry allocation  */
#ifndef JR_BROKER_JOBTAB_H
#define JR_BROKER_JOBTAB_H
#include "broker/job.h"

typedef struct _jr_jobtab_t jr_jobtab_t;

jr_jobtab_t *jr_jobtab_new (void);
//  Destroys the table and every job in it.
void jr_jobtab_destroy (jr_jobtab_t **self_p);
size_t jr_jobtab_size (const jr_jobtab_t *self);
jr_bjob_t *jr_jobtab_find (const jr_jobtab_t *self, const uint8_t id[JR_ID_SIZE]);
//  Insert a job whose id is not in the table (asserted). Takes no ownership
//  until jr_jobtab_destroy.
void jr_jobtab_insert (jr_jobtab_t *self, jr_bjob_t *job);
//  Remove a job from the table (not freed); false if absent.
bool jr_jobtab_remove (jr_jobtab_t *self, const jr_bjob_t *job);
//  Call fn for every job (in no order); the table must not change meanwhile.
void jr_jobtab_each (const jr_jobtab_t *self, void (*fn) (jr_bjob_t *job, void *arg), void *arg);
//  A job's hash: all 16 bytes of its id mixed (fixed constants, no seed,
//  so it is the same in every broker process). The table homes jobs by its
//  top bits, so it is in hash order (but for the runs of linear probing).
uint32_t jr_jobtab_hash (const uint8_t id[JR_ID_SIZE]);

//  A position in the table's order, (hash, id): the hash big-endian, then
//  the id, so positions compare as bytes (memcmp). LIST's cursor is one.
#define JR_JOBTAB_POS_SIZE (4 + JR_ID_SIZE)
void jr_jobtab_pos (const uint8_t id[JR_ID_SIZE], uint8_t pos[JR_JOBTAB_POS_SIZE]);

//  A page of the table in (hash, id) order, for LIST: calls fn (in no
//  order) for every job whose position is after `after` (NULL = from the
//  first) and at most a bound the table chooses: it reads about budget
//  slots, or fewer once fn returns false, and the jobs that probing put past
//  them. Returns true if that reached the end, else false and the bound
//  (every job up to it was seen): the last position of a hash value, its id
//  part 16 x 0xFF. The table must not change meanwhile.
bool jr_jobtab_range (const jr_jobtab_t *self, const uint8_t *after, size_t budget,
                      bool (*fn) (jr_bjob_t *job, void *arg), void *arg,
                      uint8_t bound[JR_JOBTAB_POS_SIZE]);

//  The most slots a lookup of a job in the table reads (the longest
//  distance of a job from its home slot, plus one); 0 if empty. O(capacity):
//  for tests, which check that ids that share their first bytes do not pile
//  up on one home.
size_t jr_jobtab_longest_run (const jr_jobtab_t *self);
#endif
