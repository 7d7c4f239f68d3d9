/*  fake_peer.h - a DEALER playing a client, worker or ingester's peer in unit tests  */
#ifndef JR_FAKE_PEER_H
#define JR_FAKE_PEER_H
#include "proto/proto.h"
#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

//  Every function here fails the running Criterion test on a broken
//  promise (a send refused, an undecodable reply, an unexpected type), so
//  the tests read as the conversation they check.

//  A new DEALER connected to endpoint. The caller destroys it.
zsock_t *jr_fake_dealer (const char *endpoint);
//  Send msg on sock, a DEALER; the test fails if it does not go.
void jr_fake_send (zsock_t *sock, const jr_msg_t *msg);

//  Receive the next message of a type within timeout_ms, decoded into msg.
//  Heartbeats are skipped, and answered when alive (a live worker); any
//  other type fails the test. Returns the frame backing msg's views, which
//  the caller destroys, or NULL on timeout.
zframe_t *jr_fake_expect_ex (zsock_t *sock, jr_msg_t *msg, int type, int timeout_ms, bool alive);
//  jr_fake_expect_ex as a live worker (or a client: brokers send clients
//  no heartbeats).
zframe_t *jr_fake_expect (zsock_t *sock, jr_msg_t *msg, int type, int timeout_ms);
//  jr_fake_expect, and the test fails if nothing of the type came in time.
zframe_t *jr_fake_recv (zsock_t *sock, jr_msg_t *msg, int type, int timeout_ms);

//  Say READY on sock as worker name, host "test", with slots (and as much
//  capacity) for ntasks tasks, in the order given (repeats kept).
void jr_fake_ready (zsock_t *sock, jr_msg_t *msg, const char *name, const char *const *tasks,
                    size_t ntasks, uint32_t slots);
//  A new DEALER on endpoint that said READY as worker "fake" for one task.
//  The caller destroys it.
zsock_t *jr_fake_worker (const char *endpoint, jr_msg_t *msg, const char *task, uint32_t slots);

//  SUBMIT n jobs of task at priority (tag 7); the test fails unless all are
//  ACCEPTED within 2 s. msg then holds the ACCEPTED: one mark per job, its id.
void jr_fake_submit (zsock_t *client, jr_msg_t *msg, int n, int priority, const char *task);
//  SUBMIT n jobs of task (tag 5) whose vars are a map of exactly vars_len
//  bytes (0 = no vars, else >= 8); their ids go to ids unless NULL. Returns
//  how many the ACCEPTED (awaited 5 s) took; msg holds it, a mark per job.
int jr_fake_submit_ids (zsock_t *client, jr_msg_t *msg, int n, const char *task, size_t vars_len,
                        uint8_t (*ids)[JR_ID_SIZE]);

//  Send a message of type (STATUS, CANCEL, RETRY) for one id (tag 11) and
//  return the STATE answer's one mark: its code in *state, its attempt in
//  *attempt. The test fails without an answer within 2 s.
void jr_fake_status (zsock_t *client, jr_msg_t *msg, const uint8_t id[JR_ID_SIZE], int type,
                     int *state, uint32_t *attempt);

//  As a worker: DONE of one mark (id, attempt, final state code).
void jr_fake_done (zsock_t *worker, jr_msg_t *msg, const uint8_t id[JR_ID_SIZE], uint32_t attempt,
                   int code);
//  As a live worker: count the jobs DISPATCHed until quiet for quiet_ms.
//  The first job's (id, attempt) goes to *first unless NULL.
int jr_fake_drain_dispatch (zsock_t *worker, jr_msg_t *msg, int quiet_ms, jr_mark_t *first);

//  As a worker: RESULT of copies of n jobs (their views borrowed).
void jr_fake_result (zsock_t *worker, jr_msg_t *msg, const jr_job_t *jobs, size_t n);
//  As a client: FETCH (tag, wait_ms) of the ids of n jobs.
void jr_fake_fetch (zsock_t *client, jr_msg_t *msg, uint64_t tag, const jr_job_t *jobs, size_t n,
                    uint32_t wait_ms);
//  FETCH, wait 0, of an id never stored, and check its RESULTS (tag, one
//  NOT_FOUND mark, awaited timeout_ms): it proves that the ingester has
//  handled everything sock sent before.
void jr_fake_ingester_sync (zsock_t *sock, jr_msg_t *msg, uint64_t tag, int timeout_ms);
#endif
