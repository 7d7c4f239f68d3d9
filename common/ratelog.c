/*  ratelog.c - say a thing about a peer at most once a period, and count what was held back  */
#include "common/ratelog.h"
#include <string.h>

void
jr_ratelog_init (jr_ratelog_t *self, int64_t period_ms)
{
    memset (self, 0, sizeof *self);
    self->period_ms = period_ms;
}

//  FNV-1a, never 0 (0 marks a free slot).
static uint64_t
s_hash (const char *key)
{
    uint64_t hash = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        hash = (hash ^ *p) * 1099511628211ULL;
    return hash ? hash : 1;
}

bool
jr_ratelog_allow (jr_ratelog_t *self, const char *key, int64_t now_ms, uint64_t *held)
{
    uint64_t hash = s_hash (key);
    jr_ratelog_slot_t *slot = &self->slots[hash % JR_RATELOG_SLOTS];
    if (slot->hash == hash && now_ms - slot->said_ms < self->period_ms) {
        slot->held++;
        return false;
    }
    //  A free slot, one whose period is over, or another key's: say it.
    if (held)
        *held = slot->hash == hash ? slot->held : 0;
    *slot = (jr_ratelog_slot_t){ hash, now_ms, 0 };
    return true;
}
