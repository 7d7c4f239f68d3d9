/*  test_lifecycle.c - the job's moves against PROTOCOL.md 5.1 and 6.1-6.2, row by row  */
#include "common/lifecycle.h"
#include <criterion/criterion.h>
#include <string.h>

//  One move the spec states: from a state, on an event, to a state.
typedef struct {
    int from, event, to;
    const char *why;  //  where the spec says so
} s_move_t;

//  Every allowed move, as the spec says it. Whatever is not listed here
//  must be refused by the table (checked below).
static const s_move_t s_moves[] = {
    //  6.1 SUBMIT: "Code 0: the job is durably journaled and queued".
    { JR_STATE_UNKNOWN, JR_EVENT_ACCEPT, JR_STATE_QUEUED, "6.1 SUBMIT" },
    //  6.2 Credits: each dispatched job runs as attempt + 1.
    { JR_STATE_QUEUED, JR_EVENT_DISPATCH, JR_STATE_RUNNING, "6.2 DISPATCH" },
    //  A dispatch that never left goes back as it was ("it never left").
    { JR_STATE_RUNNING, JR_EVENT_UNSENT, JR_STATE_QUEUED, "dispatch undone" },
    //  6.2 Result states: DONE codes.
    { JR_STATE_RUNNING, JR_EVENT_DONE_SUCCEEDED, JR_STATE_SUCCEEDED, "6.2 DONE SUCCEEDED" },
    { JR_STATE_RUNNING, JR_EVENT_DONE_FAILED, JR_STATE_FAILED, "6.2 DONE FAILED" },
    { JR_STATE_RUNNING, JR_EVENT_DONE_SCHEDULED, JR_STATE_SCHEDULED, "6.2: queued after backoff" },
    { JR_STATE_RUNNING, JR_EVENT_DONE_DEAD, JR_STATE_DEAD, "5.1 dead: kept, RETRY requeues" },
    { JR_STATE_RUNNING, JR_EVENT_DONE_CANCELLED, JR_STATE_CANCELLED, "6.2 CANCELLED final" },
    { JR_STATE_RUNNING, JR_EVENT_DONE_EXPIRED, JR_STATE_EXPIRED, "5.1 expired: final" },
    //  6.2 DONE code QUEUED: handed back, requeued at once.
    { JR_STATE_RUNNING, JR_EVENT_HANDED_BACK, JR_STATE_QUEUED, "5.1 queued as a DONE code" },
    //  6.2 CANCEL: a lease that ran out queues the job again.
    { JR_STATE_RUNNING, JR_EVENT_LEASE_LOST, JR_STATE_QUEUED, "6.2 lease" },
    //  6.2 READY: a replaced worker's jobs are requeued; so are a lost one's.
    { JR_STATE_RUNNING, JR_EVENT_WORKER_LOST, JR_STATE_QUEUED, "6.2 READY, heartbeats" },
    //  6.2 SCHEDULED: queued again after the backoff.
    { JR_STATE_SCHEDULED, JR_EVENT_RETRY_DUE, JR_STATE_QUEUED, "6.2 backoff over" },
    //  6.1 RETRY: "A dead job is queued again for one more attempt".
    { JR_STATE_DEAD, JR_EVENT_RETRY, JR_STATE_QUEUED, "6.1 RETRY" },
    //  6.1 CANCEL: "A queued, scheduled or dead job is taken out of its
    //  queue at once"; it waits for a worker to store its CANCELLED record.
    { JR_STATE_QUEUED, JR_EVENT_CANCEL, JR_STATE_CANCEL_QUEUED, "6.1 CANCEL queued" },
    { JR_STATE_SCHEDULED, JR_EVENT_CANCEL, JR_STATE_CANCEL_QUEUED, "6.1 CANCEL scheduled" },
    { JR_STATE_DEAD, JR_EVENT_CANCEL, JR_STATE_CANCEL_QUEUED, "6.1 CANCEL dead" },
    //  "a running one is stopped through its worker".
    { JR_STATE_RUNNING, JR_EVENT_CANCEL, JR_STATE_CANCEL_RUNNING, "6.1 CANCEL running" },
    //  "the broker hands the job to the next worker with a free slot ...
    //  as a DISPATCH whose job has state CANCELLED".
    { JR_STATE_CANCEL_QUEUED, JR_EVENT_DISPATCH, JR_STATE_CANCEL_RUNNING, "6.1 record dispatch" },
    { JR_STATE_CANCEL_RUNNING, JR_EVENT_UNSENT, JR_STATE_CANCEL_QUEUED, "record dispatch undone" },
    //  "a running job's [record] comes from the worker that stops it".
    { JR_STATE_CANCEL_RUNNING, JR_EVENT_DONE_CANCELLED, JR_STATE_CANCELLED, "6.1 record stored" },
    //  "The same happens when the running attempt does not end CANCELLED
    //  (its worker handed it back, or it succeeded or failed before the
    //  cancel reached it)": the record is dispatched again.
    { JR_STATE_CANCEL_RUNNING, JR_EVENT_DONE_SUCCEEDED, JR_STATE_CANCEL_QUEUED, "6.1 superseded" },
    { JR_STATE_CANCEL_RUNNING, JR_EVENT_DONE_FAILED, JR_STATE_CANCEL_QUEUED, "6.1 superseded" },
    { JR_STATE_CANCEL_RUNNING, JR_EVENT_DONE_SCHEDULED, JR_STATE_CANCEL_QUEUED, "6.1 superseded" },
    { JR_STATE_CANCEL_RUNNING, JR_EVENT_DONE_DEAD, JR_STATE_CANCEL_QUEUED, "6.1 superseded" },
    { JR_STATE_CANCEL_RUNNING, JR_EVENT_DONE_EXPIRED, JR_STATE_CANCEL_QUEUED, "6.1 superseded" },
    { JR_STATE_CANCEL_RUNNING, JR_EVENT_HANDED_BACK, JR_STATE_CANCEL_QUEUED, "6.1 handed back" },
    { JR_STATE_CANCEL_RUNNING, JR_EVENT_LEASE_LOST, JR_STATE_CANCEL_QUEUED, "record still due" },
    { JR_STATE_CANCEL_RUNNING, JR_EVENT_WORKER_LOST, JR_STATE_CANCEL_QUEUED, "record still due" },
    //  6.1 STATUS: the broker remembers the last finished jobs, then
    //  forgets them; dead ones are bounded by count and age.
    { JR_STATE_SUCCEEDED, JR_EVENT_FORGET, JR_STATE_UNKNOWN, "6.1 remembered ids" },
    { JR_STATE_FAILED, JR_EVENT_FORGET, JR_STATE_UNKNOWN, "6.1 remembered ids" },
    { JR_STATE_CANCELLED, JR_EVENT_FORGET, JR_STATE_UNKNOWN, "6.1 remembered ids" },
    { JR_STATE_EXPIRED, JR_EVENT_FORGET, JR_STATE_UNKNOWN, "6.1 remembered ids" },
    { JR_STATE_DEAD, JR_EVENT_FORGET, JR_STATE_UNKNOWN, "dead kept, bounded" },
};
#define S_MOVES (sizeof s_moves / sizeof s_moves[0])

static const s_move_t *
s_spec_move (int from, int event)
{
    for (size_t i = 0; i < S_MOVES; i++)
        if (s_moves[i].from == from && s_moves[i].event == event)
            return &s_moves[i];
    return NULL;
}

Test (lifecycle, every_move_the_spec_states)
{
    for (size_t i = 0; i < S_MOVES; i++) {
        const s_move_t *m = &s_moves[i];
        cr_assert_eq (jr_lifecycle_next (m->from, m->event), m->to, "%s: %s on %s", m->why,
                      jr_state_name (m->from), jr_event_name (m->event));
    }
}

//  Row by row: each state refuses every event the spec gives it no move for.
Test (lifecycle, nothing_else_moves)
{
    for (int state = 0; state < JR_LIFECYCLE_STATES; state++)
        for (int event = 0; event < JR_EVENT_COUNT; event++) {
            const s_move_t *m = s_spec_move (state, event);
            int next = jr_lifecycle_next (state, event);
            cr_assert_eq (next, m ? m->to : -1, "state %d on %s", state, jr_event_name (event));
        }
}

Test (lifecycle, out_of_range_is_refused)
{
    cr_assert_eq (jr_lifecycle_next (-1, JR_EVENT_ACCEPT), -1);
    cr_assert_eq (jr_lifecycle_next (JR_LIFECYCLE_STATES, JR_EVENT_ACCEPT), -1);
    cr_assert_eq (jr_lifecycle_next (JR_STATE_QUEUED, -1), -1);
    cr_assert_eq (jr_lifecycle_next (JR_STATE_QUEUED, JR_EVENT_COUNT), -1);
    cr_assert_str_eq (jr_event_name (JR_EVENT_COUNT), "?");
    cr_assert_str_eq (jr_event_name (-1), "?");
}

//  Finished jobs move no more but out of memory; SUBMIT, CANCEL and RETRY
//  of one change nothing (6.1: answered 0, or with its state).
Test (lifecycle, finished_jobs_only_forget)
{
    int finals[] = { JR_STATE_SUCCEEDED, JR_STATE_FAILED, JR_STATE_CANCELLED, JR_STATE_EXPIRED };
    for (size_t i = 0; i < 4; i++)
        for (int event = 0; event < JR_EVENT_COUNT; event++)
            if (event != JR_EVENT_FORGET)
                cr_assert_eq (jr_lifecycle_next (finals[i], event), -1);
}

Test (lifecycle, finality_for_whom)
{
    //  6.2: "FAILED, DEAD, CANCELLED and EXPIRED are final (DEAD jobs are
    //  kept for LIST and RETRY)"; the broker finishes all but DEAD.
    bool broker[JR_LIFECYCLE_STATES] = { [JR_STATE_SUCCEEDED] = true,
                                         [JR_STATE_FAILED] = true,
                                         [JR_STATE_CANCELLED] = true,
                                         [JR_STATE_EXPIRED] = true };
    //  6.4 / the CLI: a waiter is done with any result but SCHEDULED.
    bool wait[JR_LIFECYCLE_STATES] = { [JR_STATE_SUCCEEDED] = true,
                                       [JR_STATE_FAILED] = true,
                                       [JR_STATE_DEAD] = true,
                                       [JR_STATE_CANCELLED] = true,
                                       [JR_STATE_EXPIRED] = true };
    //  6.1 LIST: "QUEUED (1), SCHEDULED (2), RUNNING (3) and DEAD (6)".
    bool held[JR_LIFECYCLE_STATES] = { [JR_STATE_QUEUED] = true,
                                       [JR_STATE_SCHEDULED] = true,
                                       [JR_STATE_RUNNING] = true,
                                       [JR_STATE_DEAD] = true };
    for (int s = -2; s < JR_LIFECYCLE_STATES + 2; s++) {
        bool in = s >= 0 && s < JR_LIFECYCLE_STATES;
        cr_assert_eq (jr_state_final_for_broker (s), in && broker[s], "state %d", s);
        cr_assert_eq (jr_state_ends_wait (s), in && wait[s], "state %d", s);
        cr_assert_eq (jr_state_held (s), in && held[s], "state %d", s);
    }
}

Test (lifecycle, clients_are_told_cancelled)
{
    cr_assert_eq (jr_lifecycle_told (JR_STATE_CANCEL_QUEUED), JR_STATE_CANCELLED);
    cr_assert_eq (jr_lifecycle_told (JR_STATE_CANCEL_RUNNING), JR_STATE_CANCELLED);
    for (int s = 0; s <= JR_STATE_EXPIRED; s++)
        cr_assert_eq (jr_lifecycle_told (s), s);
}

//  6.2 DONE: codes SUCCEEDED ... SCHEDULED, QUEUED = handed back; the
//  broker fails an attempt whose code is no state it acts on.
Test (lifecycle, done_codes_to_events)
{
    cr_assert_eq (jr_lifecycle_done_event (JR_STATE_SUCCEEDED), JR_EVENT_DONE_SUCCEEDED);
    cr_assert_eq (jr_lifecycle_done_event (JR_STATE_FAILED), JR_EVENT_DONE_FAILED);
    cr_assert_eq (jr_lifecycle_done_event (JR_STATE_SCHEDULED), JR_EVENT_DONE_SCHEDULED);
    cr_assert_eq (jr_lifecycle_done_event (JR_STATE_DEAD), JR_EVENT_DONE_DEAD);
    cr_assert_eq (jr_lifecycle_done_event (JR_STATE_CANCELLED), JR_EVENT_DONE_CANCELLED);
    cr_assert_eq (jr_lifecycle_done_event (JR_STATE_EXPIRED), JR_EVENT_DONE_EXPIRED);
    cr_assert_eq (jr_lifecycle_done_event (JR_STATE_QUEUED), JR_EVENT_HANDED_BACK);
    int odd[] = { JR_STATE_UNKNOWN, JR_STATE_RUNNING, 9, 99, -5 };
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq (jr_lifecycle_done_event (odd[i]), JR_EVENT_DONE_FAILED, "code %d", odd[i]);
}

Test (lifecycle, event_names_are_unique)
{
    for (int e = 0; e < JR_EVENT_COUNT; e++) {
        cr_assert_str_neq (jr_event_name (e), "?");
        for (int f = 0; f < e; f++)
            cr_assert_str_neq (jr_event_name (e), jr_event_name (f));
    }
    cr_assert_str_eq (jr_event_name (JR_EVENT_LEASE_LOST), "lease_lost");
}

//  -------------------------------------------------------------------------
//  The worker's and the ingester's rules

static jr_job_t
s_result (bool success, uint32_t attempt, uint32_t max_attempts)
{
    jr_job_t job;
    memset (&job, 0, sizeof job);
    job.success = success;
    job.attempt = attempt;
    job.max_attempts = max_attempts;
    return job;
}

//  6.2 Result states and retries, rule by rule.
Test (lifecycle, attempt_states)
{
    jr_job_t ok = s_result (true, 3, 3), first = s_result (false, 1, 3),
             last = s_result (false, 3, 3), once = s_result (false, 1, 0);
    cr_assert_eq (jr_attempt_state (&ok, true, true, true), JR_STATE_SUCCEEDED, "success wins");
    cr_assert_eq (jr_attempt_state (&first, true, true, true), JR_STATE_CANCELLED);
    cr_assert_eq (jr_attempt_state (&last, true, false, false), JR_STATE_CANCELLED);
    cr_assert_eq (jr_attempt_state (&last, false, true, true), JR_STATE_EXPIRED, "last deadline");
    cr_assert_eq (jr_attempt_state (&first, false, true, false), JR_STATE_SCHEDULED,
                  "a deadline is retryable while attempts are left");
    cr_assert_eq (jr_attempt_state (&first, false, true, true), JR_STATE_FAILED);
    cr_assert_eq (jr_attempt_state (&first, false, false, true), JR_STATE_FAILED, "permanent");
    cr_assert_eq (jr_attempt_state (&last, false, false, true), JR_STATE_FAILED);
    cr_assert_eq (jr_attempt_state (&first, false, false, false), JR_STATE_SCHEDULED);
    cr_assert_eq (jr_attempt_state (&last, false, false, false), JR_STATE_DEAD);
    cr_assert_eq (jr_attempt_state (&once, false, false, false), JR_STATE_DEAD, "0 counts as 1");
    cr_assert_eq (jr_attempt_state (&once, false, true, false), JR_STATE_EXPIRED);
}

//  A stored result's state: its own, else what success says (rows of
//  older ingesters, workers that set none).
Test (lifecycle, result_states)
{
    for (int s = JR_STATE_QUEUED; s <= JR_STATE_EXPIRED; s++) {
        cr_assert_eq (jr_result_state (s, true), s);
        cr_assert_eq (jr_result_state (s, false), s);
    }
    int none[] = { JR_STATE_UNKNOWN, -1, JR_STATE_EXPIRED + 1, 1000 };
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq (jr_result_state (none[i], true), JR_STATE_SUCCEEDED);
        cr_assert_eq (jr_result_state (none[i], false), JR_STATE_FAILED);
    }
}

//  PROTOCOL.md 6.4: QUEUED or RUNNING are refused with INVALID; any other
//  value is stored (0 and unknown ones by their success).
Test (lifecycle, states_no_result_can_have)
{
    for (int s = -1; s <= JR_STATE_EXPIRED + 2; s++)
        cr_assert_eq (jr_state_no_result (s), s == JR_STATE_QUEUED || s == JR_STATE_RUNNING,
                      "state %d", s);
}
