/*  writer.h - batches of drained messages, and the thread that commits their results  */
#ifndef JR_INGESTER_WRITER_H
#define JR_INGESTER_WRITER_H
#include "ingester/sink.h"
#include "proto/proto.h"
#include <zmq.h>

#define JR_STORED 1  //  an entry code: stored now, so waiters hear of it

//  One message drained from the socket. The decoded views point into its
//  body, so it lives until its batch is finished; allocated once, reused.
typedef struct {
    zmq_msg_t peer;      //  routing id
    zmq_msg_t body;      //  the frame the decoded views point into
    jr_msg_t *msg;       //  decoded RESULT or FETCH
    int32_t *codes;      //  per job of a RESULT: 0 to store, JR_STORED, or an ACK code
    uint32_t cap_codes;  //  allocated codes
} jr_entry_t;

//  The messages of one transaction: the loop fills it, the writer stores
//  its results, the loop then ACKs them and answers its FETCHes.
typedef struct {
    jr_entry_t **entries;          //  a pool; the first nentries are in use
    size_t nentries, cap_entries;  //  in use, allocated
    size_t njobs;                  //  jobs in its RESULTs
    size_t nput;                   //  of those, valid ones to store
    //  Set by the writer:
    int rc;                        //  0, or why nothing was stored
    size_t nstored, ndup, nstale;  //  what the puts did
} jr_batch_t;

//  The next unused entry (the pool grows); the caller fills it and counts
//  it in nentries.
jr_entry_t *jr_batch_next (jr_batch_t *self);
//  Close an entry's frames (an entry given up before it was counted).
void jr_entry_close (jr_entry_t *entry);
//  Close the frames of the entries in use; the pool is kept.
void jr_batch_clear (jr_batch_t *self);
//  Free the pool.
void jr_batch_free (jr_batch_t *self);

//  A thread that stores batches, one at a time, so the loop drains the
//  socket while a transaction commits (and syncs). It uses the sink only
//  between jr_writer_submit and the take of that batch; the loop may use
//  it the rest of the time (one connection, so one warm page cache).
typedef struct _jr_writer_t jr_writer_t;
//  Start the thread; the caller keeps the sink.
jr_writer_t *jr_writer_new (jr_sink_t *sink);
//  Wait for the batch being stored, stop the thread.
void jr_writer_destroy (jr_writer_t **self_p);
//  Store the valid results of batch (codes 0) in one transaction. Only
//  when no batch is in the writer; the caller keeps the batch's memory.
void jr_writer_submit (jr_writer_t *self, jr_batch_t *batch);
//  A descriptor readable once the submitted batch is stored (poll it).
int jr_writer_fd (const jr_writer_t *self);
//  The stored batch, or NULL while none is; clears the descriptor.
jr_batch_t *jr_writer_take (jr_writer_t *self);
//  Block until the submitted batch (if any) is stored; then take it.
jr_batch_t *jr_writer_wait (jr_writer_t *self);
#endif
