/*  ring.h - ids in arrival order, to forget the oldest  */
#ifndef JR_BROKER_RING_H
#define JR_BROKER_RING_H
#include <jr/jr.h>
#include <stdbool.h>
#include <stddef.h>

//  Ids in arrival order, to forget the oldest finished or dead jobs.
typedef struct {
    uint8_t (*ids)[JR_ID_SIZE];
    size_t cap, head, size;
} jr_ring_t;

void jr_ring_init (jr_ring_t *ring, size_t cap);
bool jr_ring_push (jr_ring_t *ring, const uint8_t id[JR_ID_SIZE], uint8_t out[JR_ID_SIZE]);
const uint8_t *jr_ring_oldest (const jr_ring_t *ring);
void jr_ring_pop (jr_ring_t *ring);
#endif
