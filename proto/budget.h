/*  budget.h - bytes each peer has queued in libzmq, so a peer that never reads cannot fill memory  */
#ifndef JR_PROTO_BUDGET_H
#define JR_PROTO_BUDGET_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

//  Bytes one peer has in frames that libzmq still holds (its pipe, the
//  encoder), shared with libzmq's I/O thread; freed with its last frame.
typedef struct {
    _Atomic size_t queued;  //  bytes sent and not yet released by libzmq
    _Atomic int refs;       //  the owner's, plus one per frame in flight
    size_t limit;           //  a send that would pass it is refused
    int64_t used_us;        //  the owner's: last use, for forgetting idle peers
} jr_budget_t;

jr_budget_t *jr_budget_new (size_t limit);
//  Drop the caller's reference; nulls the pointer.
void jr_budget_release (jr_budget_t **self_p);

//  The budgets of a ROUTER's peers, by routing id; one thread uses it.
typedef struct _jr_budgets_t jr_budgets_t;

//  Each peer may have up to limit bytes queued.
jr_budgets_t *jr_budgets_new (size_t limit);
//  Frames still in libzmq keep their peer's budget alive; nulls the pointer.
void jr_budgets_destroy (jr_budgets_t **self_p);
//  A peer's budget, made on first use (borrowed: valid until a sweep).
jr_budget_t *jr_budgets_get (jr_budgets_t *self, const uint8_t *rid, size_t rid_len);
//  Forget peers with nothing queued that were not used for idle_us; call
//  it now and then (it walks every peer).
void jr_budgets_sweep (jr_budgets_t *self, int64_t idle_us);
#endif
