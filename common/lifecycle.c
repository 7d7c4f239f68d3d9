/*  lifecycle.c - a job's states, which end it for whom, and its moves (state x event)  */
#include "common/lifecycle.h"

//  Short names, so the table reads as one. __: the event does not apply.
#define __ -1
#define UK JR_STATE_UNKNOWN
#define QU JR_STATE_QUEUED
#define SC JR_STATE_SCHEDULED
#define RU JR_STATE_RUNNING
#define SU JR_STATE_SUCCEEDED
#define FA JR_STATE_FAILED
#define DE JR_STATE_DEAD
#define CA JR_STATE_CANCELLED
#define EX JR_STATE_EXPIRED
#define CQ JR_STATE_CANCEL_QUEUED
#define CR JR_STATE_CANCEL_RUNNING

//  What the broker does (PROTOCOL.md 6.1, 6.2). A cancelled job is held
//  until a worker stores its CANCELLED record: whatever else ends its
//  attempt sends it back to the cancelled queue (CQ) for that record.
static const signed char s_next[JR_LIFECYCLE_STATES][JR_EVENT_COUNT] = {
    //       acc dis uns dsu dfa dsc dde dca dex hbk lea wrk can rty due fgt
    [UK] = { QU, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __ },
    [QU] = { __, RU, __, __, __, __, __, __, __, __, __, __, CQ, __, __, __ },
    [SC] = { __, __, __, __, __, __, __, __, __, __, __, __, CQ, __, QU, __ },
    [RU] = { __, __, QU, SU, FA, SC, DE, CA, EX, QU, QU, QU, CR, __, __, __ },
    [SU] = { __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, UK },
    [FA] = { __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, UK },
    [DE] = { __, __, __, __, __, __, __, __, __, __, __, __, CQ, QU, __, UK },
    [CA] = { __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, UK },
    [EX] = { __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, UK },
    [CQ] = { __, CR, __, __, __, __, __, __, __, __, __, __, __, __, __, __ },
    [CR] = { __, __, CQ, CQ, CQ, CQ, CQ, CA, CQ, CQ, CQ, CQ, __, __, __, __ },
};

int
jr_lifecycle_next (int state, int event)
{
    if (state < 0 || state >= JR_LIFECYCLE_STATES || event < 0 || event >= JR_EVENT_COUNT)
        return -1;
    return s_next[state][event];
}

int
jr_lifecycle_told (int state)
{
    return state == CQ || state == CR ? CA : state;
}

int
jr_lifecycle_done_event (int code)
{
    switch (code) {
        case SU: return JR_EVENT_DONE_SUCCEEDED;
        case SC: return JR_EVENT_DONE_SCHEDULED;
        case DE: return JR_EVENT_DONE_DEAD;
        case CA: return JR_EVENT_DONE_CANCELLED;
        case EX: return JR_EVENT_DONE_EXPIRED;
        case QU: return JR_EVENT_HANDED_BACK;
        default: return JR_EVENT_DONE_FAILED;  //  FAILED, and a code that ends nothing well
    }
}

const char *
jr_event_name (int event)
{
    switch (event) {
#define JR_X_CASE(sym, num, name)                                                                  \
    case num: return name;
        JR_EVENTS (JR_X_CASE)
#undef JR_X_CASE
    }
    return "?";
}

bool
jr_state_final_for_broker (int state)
{
    return state == SU || state == FA || state == CA || state == EX;
}

bool
jr_state_ends_wait (int state)
{
    return jr_state_final_for_broker (state) || state == DE;
}

bool
jr_state_held (int state)
{
    return state == QU || state == SC || state == RU || state == DE;
}

bool
jr_state_no_result (int state)
{
    return state == QU || state == RU;
}

int
jr_attempt_state (const jr_job_t *result, bool cancelled, bool deadline, bool permanent)
{
    if (result->success)
        return SU;
    if (cancelled)
        return CA;
    uint32_t max_attempts = result->max_attempts ? result->max_attempts : 1;
    bool last = result->attempt >= max_attempts;
    if (deadline && last)
        return EX;
    if (permanent)
        return FA;
    return last ? DE : SC;
}

int
jr_result_state (int state, bool success)
{
    if (state > UK && state <= EX)
        return state;
    return success ? SU : FA;
}
