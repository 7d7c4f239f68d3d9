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
//  A page of the table in id order, for LIST: calls fn (in no order) for
//  every job whose id (as bytes) is after `after` (NULL = from the first)
//  and at most a bound the table chooses: it reads about budget slots, or
//  fewer once fn returns false, and the jobs that probing put past them.
//  Returns true if that reached the last id, else false and the bound
//  (every job up to it was seen). The table must not change meanwhile.
bool jr_jobtab_range (const jr_jobtab_t *self, const uint8_t *after, size_t budget,
                      bool (*fn) (jr_bjob_t *job, void *arg), void *arg, uint8_t bound[JR_ID_SIZE]);
#endif
