/*  state.c - requests about jobs the broker holds, answered by STATE: status, progress, cancel, retry, list  */
#include "client/client.h"

//  A request about one id (STATUS, CANCEL, RETRY), answered by STATE: its
//  mark, and the note that comes with it (value 0 and no text when the
//  broker sent none: no progress, or an older broker).
static int
s_one_request (jr_client_t *self, int type, const uint8_t id[JR_ID_SIZE], int *state,
               uint32_t *attempt, int32_t *value, char *text, size_t text_size)
{
    assert (self);
    assert (id);
    if (!jr_client_broker (self))
        return JR_EINVALID;
    jr_msg_reset (self->out, type);
    jr_msg_add_mark (self->out, id, 0, 0);
    zmq_msg_t frame;
    int rc = jr_client_request (self, &self->broker, &frame);
    if (rc)
        return rc;
    int found = JR_STATE_UNKNOWN;
    uint32_t found_attempt = 0;
    int32_t found_value = 0;
    jr_bytes_t found_text = { NULL, 0 };
    if (self->in->type == JR_MSG_STATE) {
        for (uint32_t i = 0; i < self->in->nmarks; i++)
            if (memcmp (self->in->marks[i].id, id, JR_ID_SIZE) == 0) {
                found = self->in->marks[i].code;
                found_attempt = self->in->marks[i].attempt;
                //  Notes are parallel to marks.
                bool noted = i < self->in->nnotes;
                found_value = noted ? self->in->notes[i].value : 0;
                found_text = noted ? self->in->notes[i].text : (jr_bytes_t){ NULL, 0 };
            }
    }
    else
        rc = JR_EMALFORMED;
    if (state)
        *state = found;
    if (attempt)
        *attempt = found_attempt;
    if (value)
        *value = found_value;
    if (text && text_size) {
        size_t len = found_text.len < text_size - 1 ? found_text.len : text_size - 1;
        if (len)
            memcpy (text, found_text.ptr, len);
        text[len] = 0;
    }
    zmq_msg_close (&frame);
    return rc;
}

int
jr_client_status (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int *state, uint32_t *attempt)
{
    return s_one_request (self, JR_MSG_STATUS, id, state, attempt, NULL, NULL, 0);
}

int
jr_client_progress (jr_client_t *self, const uint8_t id[JR_ID_SIZE], int *state, uint32_t *attempt,
                    int32_t *value, char *text, size_t text_size)
{
    return s_one_request (self, JR_MSG_STATUS, id, state, attempt, value, text, text_size);
}

//  -------------------------------------------------------------------------
//  Cancel, retry, list: one request to the broker, answered by STATE

//  CANCEL or RETRY of one id. A mark with a negative code is the broker
//  refusing that id.
static int
s_mark_request (jr_client_t *self, int type, const uint8_t id[JR_ID_SIZE], int *state)
{
    int found = JR_STATE_UNKNOWN;
    int rc = s_one_request (self, type, id, &found, NULL, NULL, NULL, 0);
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
jr_client_list (jr_client_t *self, int state, jr_id_fn *fn, void *arg)
{
    assert (self);
    if (state < 0)
        return JR_EINVALID;
    if (!jr_client_broker (self))
        return JR_EINVALID;
    jr_msg_reset (self->out, JR_MSG_LIST);
    self->out->code = state;
    zmq_msg_t frame;
    int rc = jr_client_request (self, &self->broker, &frame);
    if (rc)
        return rc;
    if (self->in->type == JR_MSG_STATE) {
        for (uint32_t i = 0; i < self->in->nmarks; i++)
            if (fn && !fn (self->in->marks[i].id, self->in->marks[i].attempt, arg))
                break;
    }
    else
        rc = JR_EMALFORMED;
    zmq_msg_close (&frame);
    return rc;
}
