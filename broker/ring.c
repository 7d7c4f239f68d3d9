/*  ring.c - ids in arrival order, to forget the oldest  */
#include "broker/ring.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

void
jr_ring_init (jr_ring_t *ring, size_t cap)
{
    ring->cap = cap ? cap : 1;
    ring->ids = calloc (ring->cap, JR_ID_SIZE);
    assert (ring->ids);
}

//  Add an id; when full, the oldest id is copied to out and true returned.
bool
jr_ring_push (jr_ring_t *ring, const uint8_t id[JR_ID_SIZE], uint8_t out[JR_ID_SIZE])
{
    bool evicted = false;
    if (ring->size == ring->cap) {
        memcpy (out, ring->ids[ring->head], JR_ID_SIZE);
        ring->head = (ring->head + 1) % ring->cap;
        ring->size--;
        evicted = true;
    }
    memcpy (ring->ids[(ring->head + ring->size) % ring->cap], id, JR_ID_SIZE);
    ring->size++;
    return evicted;
}

const uint8_t *
jr_ring_oldest (const jr_ring_t *ring)
{
    return ring->size ? ring->ids[ring->head] : NULL;
}

void
jr_ring_pop (jr_ring_t *ring)
{
    ring->head = (ring->head + 1) % ring->cap;
    ring->size--;
}
