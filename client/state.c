/*  state.c - requests about jobs the broker holds, answered by STATE: status, progress, cancel, retry, list  */
#include "client/client.h"

//  jr.h cannot use the protocol's constants: its buffers must fit them.
_Static_assert(sizeof ((jr_status_t *)0)->task == JR_MAX_NAME + 1, "a task name");
_Static_assert(sizeof ((jr_status_t *)0)->worker == JR_MAX_WORKER + 1, "a STATE's worker");
_Static_assert(sizeof ((jr_status_t *)0)->message == JR_MAX_NOTE + 1, "a note");

//  Copy a byte view into a NUL-terminated buffer, cut to fit.
static void
s_copy_text (char *text, size_t text_size, jr_bytes_t from)
{
    if (!text || !text_size)
        return;
    size_t len = from.len < text_size - 1 ? from.len : text_size - 1;
    if (len)
        memcpy (text, from.ptr, len);
    text[len] = 0;
}

//  A request about one id (STATUS, CANCEL, RETRY), answered by STATE: its
//  mark, and the task, note and worker that come with it ("" and value 0
//  when the broker sent none: not known, no progress, not running).
static int
s_one_request (jr_client_t *self, int type, const uint8_t id[JR_ID_SIZE], jr_status_t *info)
{
    assert (self);
    assert (id);
    memset (info, 0, sizeof *info);
    if (!jr_client_broker (self))
        return JR_EINVALID;
    jr_msg_reset (self->out, type);
    jr_msg_add_mark (self->out, id, 0, 0);
    zmq_msg_t frame;
    int rc = jr_client_request (self, &self->broker, &frame);
    if (rc)
        return rc;
    jr_msg_t *in = self->in;
    if (in->type == JR_MSG_STATE) {
        for (uint32_t i = 0; i < in->nmarks; i++)
            if (memcmp (in->marks[i].id, id, JR_ID_SIZE) == 0) {
                info->state = in->marks[i].code;
                info->attempt = in->marks[i].attempt;
                //  Notes, tasks and workers are parallel to marks.
                info->value = i < in->nnotes ? in->notes[i].value : 0;
                s_copy_text (info->message, sizeof info->message,
                             i < in->nnotes ? in->notes[i].text : (jr_bytes_t){ NULL, 0 });
                s_copy_text (info->task, sizeof info->task,
                             i < in->ntasks ? in->tasks[i] : (jr_bytes_t){ NULL, 0 });
                s_copy_text (info->worker, sizeof info->worker,
                             i < in->nworkers ? in->workers[i] : (jr_bytes_t){ NULL, 0 });
            }
    }
    else
        rc = JR_EMALFORMED;
    zmq_msg_close (&frame);
    return rc;
}

int
jr_client_status_info (jr_client_t *self, const uint8_t id[JR_ID_SIZE], jr_status_t *info)
{
    assert (info);
    return s_one_request (self, JR_MSG_STATUS, id, info);
}

//  Whether a request's outputs are written: as before jr_status_t, not
//  when no STATE came back (no socket, no answer, an ERROR).
static bool
s_answered (int rc)
{
    return rc == 0 || rc == JR_EMALFORMED;
}

int
jr_client_status (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int *state, uint32_t *attempt)
{
    jr_status_t info;
    int rc = s_one_request (self, JR_MSG_STATUS, id, &info);
    if (state && s_answered (rc))
        *state = info.state;
    if (attempt && s_answered (rc))
        *attempt = info.attempt;
    return rc;
}

int
jr_client_progress (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int *state, uint32_t *attempt,
                    int32_t *value, char *text, size_t text_size)
{
    jr_status_t info;
    int rc = s_one_request (self, JR_MSG_STATUS, id, &info);
    if (!s_answered (rc))
        return rc;
    if (state)
        *state = info.state;
    if (attempt)
        *attempt = info.attempt;
    if (value)
        *value = info.value;
    s_copy_text (text, text_size,
                 (jr_bytes_t){ (const uint8_t *)info.message, strlen (info.message) });
    return rc;
}

//  -------------------------------------------------------------------------
//  Cancel, retry, list: one request to the broker, answered by STATE

//  CANCEL or RETRY of one id. A mark with a negative code is the broker
//  refusing that id.
static int
s_mark_request (jr_client_t *self, int type, const uint8_t id[JR_ID_SIZE], int *state)
{
    jr_status_t info;
    int rc = s_one_request (self, type, id, &info);
    int found = info.state;
    if (rc == 0 && found < 0) {
        rc = found;
        found = JR_STATE_UNKNOWN;
    }
    if (state)
        *state = found;
    return rc;
}

int
jr_client_cancel (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int *state)
{
    return s_mark_request (self, JR_MSG_CANCEL, id, state);
}

int
jr_client_retry (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int *state)
{
    return s_mark_request (self, JR_MSG_RETRY, id, state);
}

int
jr_client_list_page (jr_client_t *self, int state, const char *task, uint32_t limit,
                     const uint8_t *cursor, jr_id_fn *fn, void *arg, uint8_t next[JR_CURSOR_SIZE],
                     bool *more)
{
    assert (self);
    assert (next && more);
    *more = false;
    size_t task_len = task ? strlen (task) : 0;
    if (state < 0 || limit > JR_MAX_LIST || task_len > JR_MAX_NAME)
        return JR_EINVALID;
    if (!jr_client_broker (self))
        return JR_EINVALID;
    jr_msg_reset (self->out, JR_MSG_LIST);
    self->out->code = state;
    self->out->task = (jr_bytes_t){ (const uint8_t *)task, task_len };
    self->out->limit = limit;
    self->out->cursor = (jr_bytes_t){ cursor, cursor ? JR_CURSOR_SIZE : 0 };
    zmq_msg_t frame;
    int rc = jr_client_request (self, &self->broker, &frame);
    if (rc)
        return rc;
    if (self->in->type == JR_MSG_STATE) {
        //  Read the cursor first: fn may make requests that reuse self->in.
        if (self->in->cursor.len == JR_CURSOR_SIZE) {
            memcpy (next, self->in->cursor.ptr, JR_CURSOR_SIZE);
            *more = true;
        }
        for (uint32_t i = 0; i < self->in->nmarks; i++)
            if (fn && !fn (self->in->marks[i].id, self->in->marks[i].attempt, arg))
                break;
    }
    else
        rc = JR_EMALFORMED;
    zmq_msg_close (&frame);
    return rc;
}

//  What jr_client_list's pages pass on: whether the caller's fn stopped.
typedef struct {
    jr_id_fn *fn;
    void *arg;
    bool stopped;
} s_all_t;

static bool
s_all_one (const uint8_t id[JR_ID_SIZE], uint32_t attempt, void *arg)
{
    s_all_t *all = arg;
    if (all->fn && !all->fn (id, attempt, all->arg))
        all->stopped = true;
    return !all->stopped;
}

int
jr_client_list (jr_client_t *self, int state, jr_id_fn *fn, void *arg)
{
    assert (self);
    s_all_t all = { fn, arg, false };
    uint8_t cursor[JR_CURSOR_SIZE] = { 0 }, next[JR_CURSOR_SIZE] = { 0 };
    bool first = true, more = true;
    int rc = 0;
    while (rc == 0 && more && !all.stopped) {
        rc = jr_client_list_page (self, state, NULL, 0, first ? NULL : cursor, s_all_one, &all,
                                  next, &more);
        memcpy (cursor, next, sizeof cursor);
        first = false;
    }
    return rc;
}
