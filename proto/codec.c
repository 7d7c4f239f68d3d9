/*  codec.c - encode, decode and print messages, all driven by messages.def  */
#include "proto/proto.h"
#include <stdatomic.h>
#include "common/mp.h"
#include <assert.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static const struct {
    const char *name;
    unsigned fields;
} s_model[JR_MSG_COUNT] = {
#define X(name, id, fields, doc) [id] = { #name, fields },
#include "proto/messages.def"
#undef X
};

const char *
jr_msg_name (int type)
{
    return type > 0 && type < JR_MSG_COUNT ? s_model[type].name : "UNKNOWN";
}

unsigned
jr_msg_fields (int type)
{
    return type > 0 && type < JR_MSG_COUNT ? s_model[type].fields : 0;
}

jr_msg_t *
jr_msg_new (void)
{
    jr_msg_t *self = calloc (1, sizeof *self);
    assert (self);
    return self;
}

void
jr_msg_destroy (jr_msg_t **self_p)
{
    if (self_p && *self_p) {
        jr_msg_t *self = *self_p;
        free (self->tasks);
        free (self->jobs);
        free (self->marks);
        free (self->notes);
        free (self->workers);
        free (self);
        *self_p = NULL;
    }
}

void
jr_msg_reset (jr_msg_t *self, int type)
{
    jr_bytes_t *tasks = self->tasks;
    jr_job_t *jobs = self->jobs;
    jr_mark_t *marks = self->marks;
    jr_note_t *notes = self->notes;
    jr_bytes_t *workers = self->workers;
    uint32_t ct = self->cap_tasks, cj = self->cap_jobs, cm = self->cap_marks;
    uint32_t cn = self->cap_notes, cw = self->cap_workers;
    memset (self, 0, sizeof *self);
    self->type = type;
    self->tasks = tasks, self->cap_tasks = ct;
    self->jobs = jobs, self->cap_jobs = cj;
    self->marks = marks, self->cap_marks = cm;
    self->notes = notes, self->cap_notes = cn;
    self->workers = workers, self->cap_workers = cw;
}

//  Make room for `want` elements of `size` bytes; aborts on OOM.
static void *
s_reserve (void *array, uint32_t *cap, uint32_t want, size_t size)
{
    if (want <= *cap)
        return array;
    uint32_t next = *cap ? *cap : 16;
    while (next < want)
        next *= 2;
    array = realloc (array, (size_t)next * size);
    assert (array);
    *cap = next;
    return array;
}

jr_job_t *
jr_msg_add_job (jr_msg_t *self)
{
    self->jobs = s_reserve (self->jobs, &self->cap_jobs, self->njobs + 1, sizeof *self->jobs);
    jr_job_t *job = &self->jobs[self->njobs++];
    memset (job, 0, sizeof *job);
    return job;
}

jr_mark_t *
jr_msg_add_mark (jr_msg_t *self, const uint8_t id[JR_ID_SIZE], uint32_t attempt, int32_t code)
{
    self->marks = s_reserve (self->marks, &self->cap_marks, self->nmarks + 1, sizeof *self->marks);
    jr_mark_t *mark = &self->marks[self->nmarks++];
    memcpy (mark->id, id, JR_ID_SIZE);
    mark->attempt = attempt;
    mark->code = code;
    return mark;
}

void
jr_msg_add_note (jr_msg_t *self, int32_t value, jr_bytes_t text)
{
    self->notes = s_reserve (self->notes, &self->cap_notes, self->nnotes + 1, sizeof *self->notes);
    self->notes[self->nnotes++] = (jr_note_t){ value, text };
}

void
jr_msg_add_task (jr_msg_t *self, jr_bytes_t name)
{
    self->tasks = s_reserve (self->tasks, &self->cap_tasks, self->ntasks + 1, sizeof *self->tasks);
    self->tasks[self->ntasks++] = name;
}

void
jr_msg_add_worker (jr_msg_t *self, jr_bytes_t name)
{
    self->workers =
        s_reserve (self->workers, &self->cap_workers, self->nworkers + 1, sizeof *self->workers);
    self->workers[self->nworkers++] = name;
}

//  -------------------------------------------------------------------------
//  Encoding

static void
s_pack_str (msgpack_packer *pk, jr_bytes_t s)
{
    msgpack_pack_str (pk, s.len);
    msgpack_pack_str_body (pk, s.ptr, s.len);
}

static void
s_pack_bin (msgpack_packer *pk, const void *data, size_t len)
{
    msgpack_pack_bin (pk, len);
    msgpack_pack_bin_body (pk, data, len);
}

static void
s_pack_job (msgpack_packer *pk, const jr_job_t *job)
{
    msgpack_pack_array (pk, JR_JOB_FIELDS);
    s_pack_bin (pk, job->id, JR_ID_SIZE);
    s_pack_str (pk, job->task);
    if (job->vars.len)  //  already msgpack: copied through, never re-encoded
        msgpack_pack_str_body (pk, job->vars.ptr, job->vars.len);
    else
        msgpack_pack_nil (pk);
    msgpack_pack_int32 (pk, job->priority);
    msgpack_pack_uint32 (pk, job->timeout_ms);
    msgpack_pack_uint32 (pk, job->max_attempts);
    msgpack_pack_uint32 (pk, job->attempt);
    msgpack_pack_int32 (pk, job->state);
    if (job->success)
        msgpack_pack_true (pk);
    else
        msgpack_pack_false (pk);
    s_pack_bin (pk, job->payload.ptr, job->payload.len);
    s_pack_str (pk, job->error);
    s_pack_str (pk, job->worker);
    msgpack_pack_int64 (pk, job->created_us);
    msgpack_pack_int64 (pk, job->accepted_us);
    msgpack_pack_int64 (pk, job->dispatched_us);
    msgpack_pack_int64 (pk, job->started_us);
    msgpack_pack_int64 (pk, job->completed_us);
    msgpack_pack_int64 (pk, job->ingested_us);
}

size_t
jr_msg_encode (const jr_msg_t *self, uint8_t **data_p)
{
    unsigned fields = jr_msg_fields (self->type);
    assert (self->type > 0 && self->type < JR_MSG_COUNT);
    //  Raw vars are copied through as they are: every decoder checked them
    //  (and libjr checks what users give it), so the hot path does not again.
    *data_p = NULL;
    if (self->njobs > JR_MAX_ITEMS || self->nmarks > JR_MAX_ITEMS || self->ntasks > JR_MAX_ITEMS
        || self->nnotes > JR_MAX_ITEMS || self->nworkers > JR_MAX_ITEMS)
        return 0;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 3 + (size_t)__builtin_popcount (fields));
    msgpack_pack_uint16 (&pk, JR_PROTO_SIGNATURE);
    msgpack_pack_uint8 (&pk, JR_PROTO_VERSION);
    msgpack_pack_uint8 (&pk, (uint8_t)self->type);
    if (fields & F_TAG)
        msgpack_pack_uint64 (&pk, self->tag);
    if (fields & F_CODE)
        msgpack_pack_int32 (&pk, self->code);
    if (fields & F_TEXT)
        s_pack_str (&pk, self->text);
    if (fields & F_NAME)
        s_pack_str (&pk, self->name);
    if (fields & F_HOST)
        s_pack_str (&pk, self->host);
    if (fields & F_TASKS) {
        msgpack_pack_array (&pk, self->ntasks);
        for (uint32_t i = 0; i < self->ntasks; i++)
            s_pack_str (&pk, self->tasks[i]);
    }
    if (fields & F_SLOTS)
        msgpack_pack_uint32 (&pk, self->slots);
    if (fields & F_WAIT)
        msgpack_pack_uint32 (&pk, self->wait_ms);
    if (fields & F_JOBS) {
        msgpack_pack_array (&pk, self->njobs);
        for (uint32_t i = 0; i < self->njobs; i++)
            s_pack_job (&pk, &self->jobs[i]);
    }
    if (fields & F_MARKS) {
        msgpack_pack_array (&pk, self->nmarks);
        for (uint32_t i = 0; i < self->nmarks; i++) {
            const jr_mark_t *m = &self->marks[i];
            msgpack_pack_array (&pk, JR_MARK_FIELDS);
            s_pack_bin (&pk, m->id, JR_ID_SIZE);
            msgpack_pack_uint32 (&pk, m->attempt);
            msgpack_pack_int32 (&pk, m->code);
        }
    }
    if (fields & F_CAPACITY)
        msgpack_pack_uint32 (&pk, self->capacity);
    if (fields & F_NOTES) {
        msgpack_pack_array (&pk, self->nnotes);
        for (uint32_t i = 0; i < self->nnotes; i++) {
            msgpack_pack_array (&pk, 2);
            msgpack_pack_int32 (&pk, self->notes[i].value);
            s_pack_str (&pk, self->notes[i].text);
        }
    }
    if (fields & F_TASK)
        s_pack_str (&pk, self->task);
    if (fields & F_LIMIT)
        msgpack_pack_uint32 (&pk, self->limit);
    if (fields & F_WORKERS) {
        msgpack_pack_array (&pk, self->nworkers);
        for (uint32_t i = 0; i < self->nworkers; i++)
            s_pack_str (&pk, self->workers[i]);
    }
    if (fields & F_CURSOR)
        s_pack_bin (&pk, self->cursor.ptr, self->cursor.len);
    if (buf.size > JR_MAX_FRAME) {
        msgpack_sbuffer_destroy (&buf);
        *data_p = NULL;
        return 0;
    }
    *data_p = (uint8_t *)buf.data;
    return buf.size;
}

//  -------------------------------------------------------------------------
//  Decoding: every type, count and size is checked; views point into data.

static bool
s_str (jr_mp_t *r, jr_bytes_t *out, size_t max)
{
    if (!jr_mp_str (r, out))
        return false;
    return out->len <= max || jr_mp_fail (r, JR_ETOOLARGE);
}

static bool
s_u32 (jr_mp_t *r, uint32_t *out)
{
    uint64_t v;
    if (!jr_mp_uint (r, &v))
        return false;
    if (v > UINT32_MAX)
        return jr_mp_fail (r, JR_EMALFORMED);
    *out = (uint32_t)v;
    return true;
}

static bool
s_i32 (jr_mp_t *r, int32_t *out)
{
    int64_t v;
    if (!jr_mp_int (r, &v))
        return false;
    if (v < INT32_MIN || v > INT32_MAX)
        return jr_mp_fail (r, JR_EMALFORMED);
    *out = (int32_t)v;
    return true;
}

static bool
s_id (jr_mp_t *r, uint8_t id[JR_ID_SIZE])
{
    jr_bytes_t b;
    if (!jr_mp_bytes (r, &b))
        return false;
    if (b.len != JR_ID_SIZE)
        return jr_mp_fail (r, JR_EMALFORMED);
    memcpy (id, b.ptr, JR_ID_SIZE);
    return true;
}

static bool
s_count (jr_mp_t *r, uint32_t *n)
{
    if (!jr_mp_array (r, n))
        return false;
    return *n <= JR_MAX_ITEMS || jr_mp_fail (r, JR_ETOOLARGE);
}

int
jr_job_check (const jr_job_t *job)
{
    if (job->task.len > JR_MAX_NAME || job->vars.len > JR_MAX_VARS
        || job->payload.len > JR_MAX_PAYLOAD || job->error.len > JR_MAX_TEXT
        || job->worker.len > JR_MAX_NAME * 2)
        return JR_ETOOLARGE;
    return 0;
}

//  A job's fields are read whatever their size (the frame bounds them);
//  their limits are checked by jr_job_check.
static bool
s_job (jr_mp_t *r, jr_job_t *job)
{
    uint32_t n;
    if (!jr_mp_array (r, &n))
        return false;
    if (n != JR_JOB_FIELDS)
        return jr_mp_fail (r, JR_EMALFORMED);
    if (!s_id (r, job->id) || !jr_mp_str (r, &job->task))
        return false;
    if (jr_mp_nil (r))
        job->vars = (jr_bytes_t){ NULL, 0 };
    else {
        if (jr_mp_peek (r) != JR_MP_MAP)
            return jr_mp_fail (r, JR_EMALFORMED);
        if (!jr_mp_skip (r, &job->vars))
            return false;
    }
    int64_t *stamps[] = { &job->created_us, &job->accepted_us,  &job->dispatched_us,
                          &job->started_us, &job->completed_us, &job->ingested_us };
    if (!s_i32 (r, &job->priority) || !s_u32 (r, &job->timeout_ms) || !s_u32 (r, &job->max_attempts)
        || !s_u32 (r, &job->attempt) || !s_i32 (r, &job->state) || !jr_mp_bool (r, &job->success)
        || !jr_mp_bytes (r, &job->payload) || !jr_mp_str (r, &job->error)
        || !jr_mp_str (r, &job->worker))
        return false;
    for (int i = 0; i < 6; i++)
        if (!jr_mp_int (r, stamps[i]))
            return false;
    return true;
}

static bool
s_fields (jr_mp_t *r, jr_msg_t *self, unsigned fields)
{
    uint32_t n;
    if ((fields & F_TAG) && !jr_mp_uint (r, &self->tag))
        return false;
    if ((fields & F_CODE) && !s_i32 (r, &self->code))
        return false;
    if ((fields & F_TEXT) && !s_str (r, &self->text, JR_MAX_TEXT))
        return false;
    if ((fields & F_NAME) && !s_str (r, &self->name, JR_MAX_NAME))
        return false;
    if ((fields & F_HOST) && !s_str (r, &self->host, JR_MAX_NAME))
        return false;
    if (fields & F_TASKS) {
        if (!s_count (r, &n))
            return false;
        for (uint32_t i = 0; i < n; i++) {
            jr_bytes_t name;
            if (!s_str (r, &name, JR_MAX_NAME))
                return false;
            jr_msg_add_task (self, name);
        }
    }
    if ((fields & F_SLOTS) && !s_u32 (r, &self->slots))
        return false;
    if ((fields & F_WAIT) && !s_u32 (r, &self->wait_ms))
        return false;
    if (fields & F_JOBS) {
        if (!s_count (r, &n))
            return false;
        //  A SUBMIT's over-limit job is refused alone, by the broker; in any
        //  other message it refuses the message.
        for (uint32_t i = 0; i < n; i++) {
            jr_job_t *job = jr_msg_add_job (self);
            if (!s_job (r, job))
                return false;
            int rc = self->type == JR_MSG_SUBMIT ? 0 : jr_job_check (job);
            if (rc)
                return jr_mp_fail (r, rc);
        }
    }
    if (fields & F_MARKS) {
        if (!s_count (r, &n))
            return false;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t k;
            jr_mark_t *m = jr_msg_add_mark (self, (uint8_t[JR_ID_SIZE]){ 0 }, 0, 0);
            if (!jr_mp_array (r, &k))
                return false;
            if (k != JR_MARK_FIELDS)
                return jr_mp_fail (r, JR_EMALFORMED);
            if (!s_id (r, m->id) || !s_u32 (r, &m->attempt) || !s_i32 (r, &m->code))
                return false;
        }
    }
    if ((fields & F_CAPACITY) && !s_u32 (r, &self->capacity))
        return false;
    if (fields & F_NOTES) {
        if (!s_count (r, &n))
            return false;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t k;
            int32_t value = 0;
            jr_bytes_t text = { 0 };
            if (!jr_mp_array (r, &k))
                return false;
            if (k != 2)
                return jr_mp_fail (r, JR_EMALFORMED);
            if (!s_i32 (r, &value) || !s_str (r, &text, JR_MAX_NOTE))
                return false;
            jr_msg_add_note (self, value, text);
        }
    }
    if ((fields & F_TASK) && !s_str (r, &self->task, JR_MAX_NAME))
        return false;
    if ((fields & F_LIMIT) && !s_u32 (r, &self->limit))
        return false;
    if (fields & F_WORKERS) {
        if (!s_count (r, &n))
            return false;
        for (uint32_t i = 0; i < n; i++) {
            jr_bytes_t name;
            if (!s_str (r, &name, JR_MAX_WORKER))
                return false;
            jr_msg_add_worker (self, name);
        }
    }
    if (fields & F_CURSOR) {
        //  Empty (from the start, or the end) or a position: hash + id.
        if (!jr_mp_bytes (r, &self->cursor))
            return false;
        if (self->cursor.len != 0 && self->cursor.len != JR_LIST_CURSOR)
            return jr_mp_fail (r, JR_EMALFORMED);
    }
    return true;
}

bool
jr_msg_is_error (const void *data, size_t size)
{
    jr_mp_t r;
    jr_mp_init (&r, data, size);
    uint32_t n;
    uint64_t sig, version, type;
    return jr_mp_array (&r, &n) && n >= 3 && jr_mp_uint (&r, &sig) && sig == JR_PROTO_SIGNATURE
           && jr_mp_uint (&r, &version) && jr_mp_uint (&r, &type) && type == JR_MSG_ERROR;
}

int
jr_msg_decode (jr_msg_t *self, const void *data, size_t size)
{
    jr_msg_reset (self, JR_MSG_NONE);
    if (size > JR_MAX_FRAME)
        return JR_ETOOLARGE;
    jr_mp_t r;
    jr_mp_init (&r, data, size);
    uint32_t n;
    uint64_t sig, version, type;
    if (!jr_mp_array (&r, &n) || n < 3 || !jr_mp_uint (&r, &sig) || sig != JR_PROTO_SIGNATURE)
        return JR_EMALFORMED;
    if (!jr_mp_uint (&r, &version))
        return JR_EMALFORMED;  //  truncated or not an integer
    if (version != JR_PROTO_VERSION)
        return JR_EVERSION;
    if (!jr_mp_uint (&r, &type))
        return JR_EMALFORMED;
    if (type == 0 || type >= JR_MSG_COUNT)
        return JR_EUNKNOWN_TYPE;
    unsigned fields = jr_msg_fields ((int)type);
    //  Peek the tag first so even a refused request's ERROR can carry it.
    if (fields & F_TAG) {
        jr_mp_t peek = r;
        uint64_t tag;
        if (jr_mp_uint (&peek, &tag))
            self->tag = tag;
    }
    if (n != 3 + (uint32_t)__builtin_popcount (fields))
        return JR_EMALFORMED;
    self->type = (int)type;
    if (!s_fields (&r, self, fields))
        return r.err ? r.err : JR_EMALFORMED;
    if (jr_mp_left (&r) != 0)
        return JR_EMALFORMED;  //  trailing bytes
    return 0;
}

//  -------------------------------------------------------------------------
//  Sending

static void
s_free (void *data, void *hint)
{
    (void)hint;
    free (data);
}

static int
s_errno_code (void)
{
    if (zmq_errno () == EHOSTUNREACH)
        return JR_EUNKNOWN_PEER;
    if (zmq_errno () == EAGAIN)
        return JR_EQUEUE_FULL;
    return JR_EIO;
}

//  A frame counted against its peer's budget until libzmq lets go of it.
typedef struct {
    jr_budget_t *budget;
    size_t size;
} s_counted_t;

static void
s_free_counted (void *data, void *hint)
{
    s_counted_t *counted = hint;  //  called by libzmq's I/O thread, maybe
    free (data);
    atomic_fetch_sub (&counted->budget->queued, counted->size);
    jr_budget_release (&counted->budget);
    free (counted);
}

static int
s_send (const jr_msg_t *self, void *socket, const void *peer, size_t peer_size, jr_budget_t *budget)
{
    uint8_t *data;
    size_t size = jr_msg_encode (self, &data);
    if (!data)
        return JR_ETOOLARGE;
    if (budget && atomic_load (&budget->queued) + size > budget->limit) {
        free (data);
        return JR_EQUEUE_FULL;
    }
    if (peer && zmq_send (socket, peer, peer_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
        free (data);
        return s_errno_code ();
    }
    zmq_msg_t frame;
    if (budget) {
        s_counted_t *counted = malloc (sizeof *counted);
        assert (counted);
        *counted = (s_counted_t){ budget, size };
        atomic_fetch_add (&budget->refs, 1);
        atomic_fetch_add (&budget->queued, size);
        zmq_msg_init_data (&frame, data, size, s_free_counted, counted);
    }
    else
        zmq_msg_init_data (&frame, data, size, s_free, NULL);  //  no copy
    if (zmq_msg_send (&frame, socket, ZMQ_DONTWAIT) == -1) {
        zmq_msg_close (&frame);  //  which frees and uncounts it
        return s_errno_code ();
    }
    return 0;
}

int
jr_msg_send (const jr_msg_t *self, void *socket, const void *peer, size_t peer_size)
{
    return s_send (self, socket, peer, peer_size, NULL);
}

int
jr_msg_send_counted (const jr_msg_t *self, void *socket, const void *peer, size_t peer_size,
                     jr_budget_t *budget)
{
    return s_send (self, socket, peer, peer_size, budget);
}

void
jr_msg_send_error (void *socket, const void *peer, size_t peer_size, uint64_t tag, int code,
                   const char *text)
{
    jr_msg_t msg = { .type = JR_MSG_ERROR, .tag = tag, .code = code };
    msg.text = (jr_bytes_t){ (const uint8_t *)text, strlen (text) };
    jr_msg_send (&msg, socket, peer, peer_size);
}

//  -------------------------------------------------------------------------
//  Printing

void
jr_msg_print (const jr_msg_t *self, char *buf, size_t size)
{
    unsigned fields = jr_msg_fields (self->type);
    size_t n = 0;
#define OUT(...)                                                                                   \
    do {                                                                                           \
        if (n < size) {                                                                            \
            int m = snprintf (buf + n, size - n, __VA_ARGS__);                                     \
            n += m > 0 ? (size_t)m : 0;                                                            \
        }                                                                                          \
    } while (0)
    if (size)
        buf[0] = 0;
    OUT ("%s", jr_msg_name (self->type));
    if (fields & F_TAG)
        OUT (" tag=%llu", (unsigned long long)self->tag);
    if (fields & F_CODE)
        OUT (" code=%s", jr_errname (self->code));
    if (fields & F_TEXT)
        OUT (" text=\"%.*s\"", (int)self->text.len, (const char *)self->text.ptr);
    if (fields & F_NAME)
        OUT (" name=%.*s", (int)self->name.len, (const char *)self->name.ptr);
    if (fields & F_HOST)
        OUT (" host=%.*s", (int)self->host.len, (const char *)self->host.ptr);
    if (fields & F_TASKS) {
        OUT (" tasks=");
        for (uint32_t i = 0; i < self->ntasks; i++)
            OUT ("%s%.*s", i ? "," : "", (int)self->tasks[i].len, (const char *)self->tasks[i].ptr);
    }
    if (fields & F_SLOTS)
        OUT (" slots=%u", self->slots);
    if (fields & F_WAIT)
        OUT (" wait=%u", self->wait_ms);
    if (fields & F_CAPACITY)
        OUT (" capacity=%u", self->capacity);
    if (fields & F_TASK)
        OUT (" task=%.*s", (int)self->task.len, (const char *)self->task.ptr);
    if (fields & F_LIMIT)
        OUT (" limit=%u", self->limit);
    if (fields & F_WORKERS)
        for (uint32_t i = 0; i < self->nworkers; i++)
            OUT (" worker=%.*s", (int)self->workers[i].len, (const char *)self->workers[i].ptr);
    if (fields & F_CURSOR) {
        OUT (" cursor=");
        for (size_t i = 0; i < self->cursor.len; i++)
            OUT ("%02x", self->cursor.ptr[i]);
    }
    if (fields & F_NOTES)
        for (uint32_t i = 0; i < self->nnotes; i++)
            OUT (" note=%d/\"%.*s\"", self->notes[i].value, (int)self->notes[i].text.len,
                 (const char *)self->notes[i].text.ptr);
    if (fields & F_JOBS)
        for (uint32_t i = 0; i < self->njobs; i++) {
            char id[37];
            jr_id_format (self->jobs[i].id, id);
            OUT (" job=%s/%.*s/%u", id, (int)self->jobs[i].task.len,
                 (const char *)self->jobs[i].task.ptr, self->jobs[i].attempt);
        }
    if (fields & F_MARKS)
        for (uint32_t i = 0; i < self->nmarks; i++) {
            char id[37];
            jr_id_format (self->marks[i].id, id);
            OUT (" mark=%s/%u/%d", id, self->marks[i].attempt, self->marks[i].code);
        }
#undef OUT
}
