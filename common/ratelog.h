/*  ratelog.h - say a thing about a peer at most once a period, and count what was held back  */
#ifndef JR_RATELOG_H
#define JR_RATELOG_H
#include <stdbool.h>
#include <stdint.h>

//  A fixed table of recent keys (a peer's address, a key's name): no
//  allocation after init, so a flood of peers costs no memory. Two keys
//  that share a slot may each be said a little more often; never less.
#define JR_RATELOG_SLOTS 1024

typedef struct {
    uint64_t hash;    //  of the key, 0 = free
    int64_t said_ms;  //  when it was last said
    uint64_t held;    //  times held back since
} jr_ratelog_slot_t;

typedef struct {
    int64_t period_ms;                          //  at most once in this
    jr_ratelog_slot_t slots[JR_RATELOG_SLOTS];  //  by hash
} jr_ratelog_t;

//  Start empty, saying each key at most once per period_ms.
void jr_ratelog_init (jr_ratelog_t *self, int64_t period_ms);
//  True if key may be said now (then *held, if given, gets how many times
//  it was held back since it was last said); false: hold it back, counted.
bool jr_ratelog_allow (jr_ratelog_t *self, const char *key, int64_t now_ms, uint64_t *held);
#endif
