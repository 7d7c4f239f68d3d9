/*  budget.c - bytes each peer has queued in libzmq, so a peer that never reads cannot fill memory  */
#include "proto/budget.h"
#include "common/clock.h"
#include <assert.h>
#include <czmq.h>

struct _jr_budgets_t {
    zhashx_t *peers;  //  hex routing id -> jr_budget_t
    size_t limit;     //  of each peer
};

jr_budget_t *
jr_budget_new (size_t limit)
{
    jr_budget_t *self = calloc (1, sizeof *self);
    assert (self);
    self->limit = limit;
    atomic_init (&self->refs, 1);
    return self;
}

void
jr_budget_release (jr_budget_t **self_p)
{
    if (*self_p && atomic_fetch_sub (&(*self_p)->refs, 1) == 1)
        free (*self_p);
    *self_p = NULL;
}

static void
s_release (void **item)
{
    jr_budget_release ((jr_budget_t **)item);
}

jr_budgets_t *
jr_budgets_new (size_t limit)
{
    jr_budgets_t *self = calloc (1, sizeof *self);
    assert (self);
    self->peers = zhashx_new ();
    zhashx_set_destructor (self->peers, s_release);
    self->limit = limit;
    return self;
}

void
jr_budgets_destroy (jr_budgets_t **self_p)
{
    if (!*self_p)
        return;
    zhashx_destroy (&(*self_p)->peers);
    free (*self_p);
    *self_p = NULL;
}

jr_budget_t *
jr_budgets_get (jr_budgets_t *self, const uint8_t *rid, size_t rid_len)
{
    char key[2 * 255 + 1];  //  libzmq's routing ids are at most 255 bytes
    rid_len = rid_len < 255 ? rid_len : 255;
    for (size_t i = 0; i < rid_len; i++)
        snprintf (key + 2 * i, 3, "%02x", rid[i]);
    key[2 * rid_len] = 0;
    jr_budget_t *budget = zhashx_lookup (self->peers, key);
    if (!budget) {
        budget = jr_budget_new (self->limit);
        zhashx_insert (self->peers, key, budget);
    }
    budget->used_us = jr_clock_mono_us ();
    return budget;
}

void
jr_budgets_sweep (jr_budgets_t *self, int64_t idle_us)
{
    int64_t old = jr_clock_mono_us () - idle_us;
    zlistx_t *keys = zhashx_keys (self->peers);
    for (const char *key = zlistx_first (keys); key; key = zlistx_next (keys)) {
        jr_budget_t *budget = zhashx_lookup (self->peers, key);
        if (atomic_load (&budget->queued) == 0 && budget->used_us < old)
            zhashx_delete (self->peers, key);
    }
    zlistx_destroy (&keys);
}
