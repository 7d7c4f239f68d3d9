/*  test_proto.c - the codec: round trips of every message, refusals, print, send  */
#include "proto/proto.h"
#include "common/mp.h"
#include <criterion/criterion.h>
#include <czmq.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

//  -------------------------------------------------------------------------
//  Helpers: views on static text, fillers, field-by-field comparison

#define B(lit) ((jr_bytes_t){ (const uint8_t *)(lit), sizeof (lit) - 1 })

static uint8_t s_big_payload[70000];  //  bin32 on the wire
static uint8_t s_mid_payload[3000];   //  bin16
static char s_long_task[JR_MAX_NAME + 2];
static uint8_t s_vars[256];  //  {"name": "ada", "n": -42, ...}
static size_t s_vars_len;

//  Packs the vars map used by the jobs below, once per process.
static void
s_setup (void)
{
    for (size_t i = 0; i < sizeof s_big_payload; i++)
        s_big_payload[i] = (uint8_t)(i * 7 + 3);
    for (size_t i = 0; i < sizeof s_mid_payload; i++)
        s_mid_payload[i] = (uint8_t)(255 - i % 251);
    memset (s_long_task, 't', sizeof s_long_task - 1);
    s_long_task[sizeof s_long_task - 1] = 0;

    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5);
    msgpack_pack_str_with_body (&pk, "name", 4);
    msgpack_pack_str_with_body (&pk, "ada", 3);
    msgpack_pack_str_with_body (&pk, "n", 1);
    msgpack_pack_int64 (&pk, -42);
    msgpack_pack_str_with_body (&pk, "list", 4);
    msgpack_pack_array (&pk, 3);
    msgpack_pack_uint64 (&pk, UINT64_MAX);
    msgpack_pack_double (&pk, 2.5);
    msgpack_pack_map (&pk, 1);
    msgpack_pack_str_with_body (&pk, "x", 1);
    msgpack_pack_nil (&pk);
    msgpack_pack_str_with_body (&pk, "bin", 3);
    msgpack_pack_bin_with_body (&pk, "\x00\x01\x02", 3);
    msgpack_pack_str_with_body (&pk, "ok", 2);
    msgpack_pack_true (&pk);
    cr_assert_leq (buf.size, sizeof s_vars);
    memcpy (s_vars, buf.data, buf.size);
    s_vars_len = buf.size;
    msgpack_sbuffer_destroy (&buf);
}

static void
s_make_id (uint8_t id[JR_ID_SIZE], unsigned seed)
{
    for (int i = 0; i < JR_ID_SIZE; i++)
        id[i] = (uint8_t)(seed * 31 + (unsigned)i * 7 + 1);
}

//  A job with every field set; `big` adds payloads of bin16 and bin32 size.
static void
s_fill_job (jr_job_t *job, unsigned i, bool big)
{
    s_make_id (job->id, i);
    job->task = i == 4 ? (jr_bytes_t){ (const uint8_t *)s_long_task, JR_MAX_NAME } : B ("sha256");
    job->vars = i % 2 ? (jr_bytes_t){ s_vars, s_vars_len } : (jr_bytes_t){ NULL, 0 };
    job->priority = i == 3 ? INT32_MIN : -(int32_t)i * 1000 + 7;
    job->timeout_ms = i == 3 ? UINT32_MAX : 1500 + i;
    job->max_attempts = 5 + i;
    job->attempt = i == 2 ? UINT32_MAX : 1 + i;
    job->state = (int32_t)(i % 9);
    job->success = i % 2 == 0;
    if (big && i == 2)
        job->payload = (jr_bytes_t){ s_mid_payload, sizeof s_mid_payload };
    else if (big && i == 3)
        job->payload = (jr_bytes_t){ s_big_payload, sizeof s_big_payload };
    else
        job->payload = B ("\x00\xff payload \x01");
    job->error = i % 2 ? B ("task failed: exit status 3") : B ("");
    job->worker = B ("worker-7@node-3.example.org");
    job->created_us = i == 3 ? INT64_MIN : 1700000000000000 + i;
    job->accepted_us = i == 3 ? INT64_MAX : 1700000000000100 + i;
    job->dispatched_us = -1;
    job->started_us = 1700000000000300 + i;
    job->completed_us = 4294967296LL + i;
    job->ingested_us = 0;
}

//  Fill every field of the type's field set with non-trivial values.
static void
s_fill (jr_msg_t *msg, int type, bool big)
{
    unsigned fields = jr_msg_fields (type);
    jr_msg_reset (msg, type);
    if (fields & F_TAG)
        msg->tag = UINT64_MAX - 12345;
    if (fields & F_CODE)
        msg->code = JR_ESTALE;
    if (fields & F_TEXT)
        msg->text = B ("refused: stale attempt \xe2\x9c\x93");
    if (fields & F_NAME)
        msg->name = B ("worker-7");
    if (fields & F_HOST)
        msg->host = B ("node-3.example.org");
    if (fields & F_TASKS) {
        jr_msg_add_task (msg, B ("echo"));
        jr_msg_add_task (msg, B ("sleep"));
        jr_msg_add_task (msg, (jr_bytes_t){ (const uint8_t *)s_long_task, JR_MAX_NAME });
        jr_msg_add_task (msg, B (""));
    }
    if (fields & F_SLOTS)
        msg->slots = 4000000000u;
    if (fields & F_WAIT)
        msg->wait_ms = 30000;
    if (fields & F_JOBS)
        for (unsigned i = 0; i < 5; i++)
            s_fill_job (jr_msg_add_job (msg), i, big);
    if (fields & F_MARKS)
        for (unsigned i = 0; i < 40; i++) {
            uint8_t id[JR_ID_SIZE];
            s_make_id (id, 100 + i);
            int32_t code = i % 2 ? -(int32_t)(i % 19) : (int32_t)(i % 9);
            jr_msg_add_mark (msg, id, i == 39 ? UINT32_MAX : i * 1000 + 1, code);
        }
}

static void
s_assert_bytes (jr_bytes_t a, jr_bytes_t b, const char *what)
{
    cr_assert_eq (a.len, b.len, "%s: length %zu != %zu", what, a.len, b.len);
    if (a.len)
        cr_assert (memcmp (a.ptr, b.ptr, a.len) == 0, "%s: bytes differ", what);
}

static void
s_assert_job (const jr_job_t *a, const jr_job_t *b)
{
    cr_assert (memcmp (a->id, b->id, JR_ID_SIZE) == 0, "job id");
    s_assert_bytes (a->task, b->task, "task");
    s_assert_bytes (a->vars, b->vars, "vars");
    cr_assert_eq (a->priority, b->priority);
    cr_assert_eq (a->timeout_ms, b->timeout_ms);
    cr_assert_eq (a->max_attempts, b->max_attempts);
    cr_assert_eq (a->attempt, b->attempt);
    cr_assert_eq (a->state, b->state);
    cr_assert_eq (a->success, b->success);
    s_assert_bytes (a->payload, b->payload, "payload");
    s_assert_bytes (a->error, b->error, "error");
    s_assert_bytes (a->worker, b->worker, "worker");
    cr_assert_eq (a->created_us, b->created_us);
    cr_assert_eq (a->accepted_us, b->accepted_us);
    cr_assert_eq (a->dispatched_us, b->dispatched_us);
    cr_assert_eq (a->started_us, b->started_us);
    cr_assert_eq (a->completed_us, b->completed_us);
    cr_assert_eq (a->ingested_us, b->ingested_us);
}

//  Compares the fields of the type's field set, as the codec should.
static void
s_assert_msg (const jr_msg_t *a, const jr_msg_t *b)
{
    cr_assert_eq (a->type, b->type);
    unsigned fields = jr_msg_fields (a->type);
    if (fields & F_TAG)
        cr_assert_eq (a->tag, b->tag);
    if (fields & F_CODE)
        cr_assert_eq (a->code, b->code);
    if (fields & F_TEXT)
        s_assert_bytes (a->text, b->text, "text");
    if (fields & F_NAME)
        s_assert_bytes (a->name, b->name, "name");
    if (fields & F_HOST)
        s_assert_bytes (a->host, b->host, "host");
    cr_assert_eq (a->ntasks, b->ntasks);
    for (uint32_t i = 0; i < a->ntasks; i++)
        s_assert_bytes (a->tasks[i], b->tasks[i], "task name");
    if (fields & F_SLOTS)
        cr_assert_eq (a->slots, b->slots);
    if (fields & F_WAIT)
        cr_assert_eq (a->wait_ms, b->wait_ms);
    cr_assert_eq (a->njobs, b->njobs);
    for (uint32_t i = 0; i < a->njobs; i++)
        s_assert_job (&a->jobs[i], &b->jobs[i]);
    cr_assert_eq (a->nmarks, b->nmarks);
    for (uint32_t i = 0; i < a->nmarks; i++) {
        cr_assert (memcmp (a->marks[i].id, b->marks[i].id, JR_ID_SIZE) == 0, "mark id");
        cr_assert_eq (a->marks[i].attempt, b->marks[i].attempt);
        cr_assert_eq (a->marks[i].code, b->marks[i].code);
    }
    cr_assert_eq (a->nnotes, b->nnotes);
    for (uint32_t i = 0; i < a->nnotes; i++) {
        cr_assert_eq (a->notes[i].value, b->notes[i].value);
        s_assert_bytes (a->notes[i].text, b->notes[i].text, "note");
    }
    if (fields & F_TASK)
        s_assert_bytes (a->task, b->task, "task");
    if (fields & F_LIMIT)
        cr_assert_eq (a->limit, b->limit);
    cr_assert_eq (a->nworkers, b->nworkers);
    for (uint32_t i = 0; i < a->nworkers; i++)
        s_assert_bytes (a->workers[i], b->workers[i], "worker");
    if (fields & F_CURSOR)
        s_assert_bytes (a->cursor, b->cursor, "cursor");
}

//  Decode from an exact-size private copy, so a read past the end is a
//  real out-of-bounds read that the sanitizers see.
static int
s_decode (jr_msg_t *msg, const void *data, size_t size)
{
    uint8_t *copy = malloc (size ? size : 1);
    cr_assert (copy);
    if (size)
        memcpy (copy, data, size);
    int rc = jr_msg_decode (msg, copy, size);
    free (copy);
    return rc;
}

//  A scratch packer for hand-made (mostly broken) messages.
static msgpack_sbuffer s_buf;
static msgpack_packer s_pk;

static msgpack_packer *
s_begin (uint32_t n, uint64_t sig, uint64_t version, uint64_t type)
{
    msgpack_sbuffer_destroy (&s_buf);
    msgpack_sbuffer_init (&s_buf);
    msgpack_packer_init (&s_pk, &s_buf, msgpack_sbuffer_write);
    msgpack_pack_array (&s_pk, n);
    msgpack_pack_uint64 (&s_pk, sig);
    msgpack_pack_uint64 (&s_pk, version);
    msgpack_pack_uint64 (&s_pk, type);
    return &s_pk;
}

//  Decodes what the scratch packer holds (into a fresh message).
static int
s_end (jr_msg_t **msg_p)
{
    jr_msg_t *msg = jr_msg_new ();
    int rc = s_decode (msg, s_buf.data, s_buf.size);
    if (msg_p)
        *msg_p = msg;
    else
        jr_msg_destroy (&msg);
    return rc;
}

static void
s_pack_raw (msgpack_packer *pk, const void *data, size_t size)
{
    //  str_body appends raw bytes without a header
    msgpack_pack_str_body (pk, data, size);
}

//  A job array by hand: nfields elements (18 is valid), an id of idlen
//  bytes, raw vars bytes (NULL = nil), a task of tasklen bytes.
static void
s_pack_job (msgpack_packer *pk, uint32_t nfields, size_t idlen, const void *vars, size_t varslen,
            size_t tasklen)
{
    static const uint8_t id[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17 };
    char *task = malloc (tasklen + 1);
    memset (task, 'x', tasklen);
    msgpack_pack_array (pk, nfields);
    for (uint32_t f = 0; f < nfields; f++) {
        switch (f) {
            case 0: msgpack_pack_bin_with_body (pk, id, idlen); break;
            case 1: msgpack_pack_str_with_body (pk, task, tasklen); break;
            case 2:
                if (vars)
                    s_pack_raw (pk, vars, varslen);
                else
                    msgpack_pack_nil (pk);
                break;
            case 3: msgpack_pack_int32 (pk, -1); break;
            case 4:
            case 5:
            case 6: msgpack_pack_uint32 (pk, 1); break;
            case 7: msgpack_pack_int32 (pk, JR_STATE_RUNNING); break;
            case 8: msgpack_pack_true (pk); break;
            case 9: msgpack_pack_bin_with_body (pk, "p", 1); break;
            case 10:
            case 11: msgpack_pack_str_with_body (pk, "", 0); break;
            default: msgpack_pack_int64 (pk, (int64_t)f); break;
        }
    }
    free (task);
}

//  A SUBMIT around one hand-made job: the decoder's verdict, or for a
//  SUBMIT that decodes, the broker's check of its job (an over-limit job is
//  refused alone, not the whole SUBMIT).
static int
s_submit_with_job (uint32_t nfields, size_t idlen, const void *vars, size_t varslen, size_t tasklen)
{
    msgpack_packer *pk = s_begin (5, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_SUBMIT);
    msgpack_pack_uint64 (pk, 9);
    msgpack_pack_array (pk, 1);
    s_pack_job (pk, nfields, idlen, vars, varslen, tasklen);
    jr_msg_t *msg;
    int rc = s_end (&msg);
    if (rc == 0)
        rc = jr_job_check (&msg->jobs[0]);
    jr_msg_destroy (&msg);
    return rc;
}

//  The same job in a DISPATCH, which the decoder refuses whole.
static int
s_dispatch_with_job (size_t varslen, const void *vars, size_t tasklen)
{
    msgpack_packer *pk = s_begin (4, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_DISPATCH);
    msgpack_pack_array (pk, 1);
    s_pack_job (pk, JR_JOB_FIELDS, JR_ID_SIZE, vars, varslen, tasklen);
    return s_end (NULL);
}

//  Vars {"k": [[[...nil...]]]} with `depth` nested arrays.
static size_t
s_deep_vars (uint8_t *out, size_t max, int depth)
{
    size_t n = 0;
    cr_assert_lt ((size_t)depth + 4, max);
    out[n++] = 0x81;  //  map of one
    out[n++] = 0xa1;  //  fixstr "k"
    out[n++] = 'k';
    for (int i = 0; i < depth; i++)
        out[n++] = 0x91;  //  array of one
    out[n++] = 0xc0;
    return n;
}

TestSuite (proto, .init = s_setup);

//  -------------------------------------------------------------------------
//  Model

Test (proto, model)
{
    cr_assert_str_eq (jr_msg_name (JR_MSG_SUBMIT), "SUBMIT");
    cr_assert_str_eq (jr_msg_name (JR_MSG_ERROR), "ERROR");
    cr_assert_str_eq (jr_msg_name (0), "UNKNOWN");
    cr_assert_str_eq (jr_msg_name (JR_MSG_COUNT), "UNKNOWN");
    cr_assert_str_eq (jr_msg_name (-1), "UNKNOWN");
    cr_assert_eq (jr_msg_fields (0), 0);
    cr_assert_eq (jr_msg_fields (JR_MSG_COUNT), 0);
    cr_assert_eq (jr_msg_fields (JR_MSG_HEARTBEAT), 0);
    cr_assert_eq (jr_msg_fields (JR_MSG_ERROR), F_TAG | F_CODE | F_TEXT);
    for (int type = 1; type < JR_MSG_COUNT; type++) {
        cr_assert_str_neq (jr_msg_name (type), "UNKNOWN", "type %d has no name", type);
        cr_assert (type == JR_MSG_HEARTBEAT || type == JR_MSG_BYE || jr_msg_fields (type),
                   "type %d", type);
    }
}

//  -------------------------------------------------------------------------
//  Round trips

Test (proto, roundtrip_every_type)
{
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_t *copy = jr_msg_new ();
    for (int type = 1; type < JR_MSG_COUNT; type++) {
        for (int big = 0; big < 2; big++) {
            s_fill (msg, type, big);
            uint8_t *data;
            size_t size = jr_msg_encode (msg, &data);
            cr_assert (data && size > 0, "%s encodes", jr_msg_name (type));
            int rc = jr_msg_decode (copy, data, size);
            cr_assert_eq (rc, 0, "%s decodes: %s", jr_msg_name (type), jr_errname (rc));
            s_assert_msg (msg, copy);
            //  Encoding what was decoded gives the same bytes.
            uint8_t *again;
            size_t again_size = jr_msg_encode (copy, &again);
            cr_assert_eq (again_size, size);
            cr_assert (memcmp (again, data, size) == 0, "%s re-encodes", jr_msg_name (type));
            free (again);
            free (data);
        }
    }
    jr_msg_destroy (&msg);
    jr_msg_destroy (&copy);
    cr_assert_null (msg);
    jr_msg_destroy (&msg);  //  idempotent
}

Test (proto, roundtrip_empty_arrays)
{
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_t *copy = jr_msg_new ();
    for (int type = 1; type < JR_MSG_COUNT; type++) {
        jr_msg_reset (msg, type);
        uint8_t *data;
        size_t size = jr_msg_encode (msg, &data);
        cr_assert (data);
        cr_assert_eq (jr_msg_decode (copy, data, size), 0, "%s", jr_msg_name (type));
        s_assert_msg (msg, copy);
        free (data);
    }
    jr_msg_destroy (&msg);
    jr_msg_destroy (&copy);
}

Test (proto, roundtrip_large_batch)
{
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_t *copy = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_RESULT);
    for (unsigned i = 0; i < 5000; i++)
        s_fill_job (jr_msg_add_job (msg), i, false);
    uint8_t *data;
    size_t size = jr_msg_encode (msg, &data);
    cr_assert (data);
    cr_assert_eq (jr_msg_decode (copy, data, size), 0);
    s_assert_msg (msg, copy);
    free (data);
    jr_msg_destroy (&msg);
    jr_msg_destroy (&copy);
}

Test (proto, heartbeat_bytes)
{
    jr_msg_t msg = { .type = JR_MSG_HEARTBEAT };
    uint8_t *data;
    size_t size = jr_msg_encode (&msg, &data);
    static const uint8_t want[] = { 0x93, 0xcd, 0x4a, 0x52, 0x03, 0x08 };
    cr_assert_eq (size, sizeof want);
    cr_assert (memcmp (data, want, size) == 0);
    free (data);
}

Test (proto, decode_reuses_message)
{
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_t *other = jr_msg_new ();
    s_fill (msg, JR_MSG_RESULTS, false);
    uint8_t *data;
    size_t size = jr_msg_encode (msg, &data);
    cr_assert_eq (jr_msg_decode (other, data, size), 0);
    cr_assert_eq (other->njobs, 5);
    free (data);
    s_fill (msg, JR_MSG_READY, false);
    size = jr_msg_encode (msg, &data);
    cr_assert_eq (jr_msg_decode (other, data, size), 0);
    cr_assert_eq (other->type, JR_MSG_READY);
    cr_assert_eq (other->njobs, 0);
    cr_assert_eq (other->nmarks, 0);
    cr_assert_eq (other->ntasks, 4);
    free (data);
    jr_msg_destroy (&msg);
    jr_msg_destroy (&other);
}

//  -------------------------------------------------------------------------
//  Refusals

Test (proto, refuses_bad_signature)
{
    s_begin (3, 0x4A53, JR_PROTO_VERSION, JR_MSG_HEARTBEAT);
    cr_assert_eq (s_end (NULL), JR_EMALFORMED);
    s_begin (3, 0, JR_PROTO_VERSION, JR_MSG_HEARTBEAT);
    cr_assert_eq (s_end (NULL), JR_EMALFORMED);
    //  The signature as a string is not the signature.
    msgpack_sbuffer_destroy (&s_buf);
    msgpack_sbuffer_init (&s_buf);
    msgpack_packer_init (&s_pk, &s_buf, msgpack_sbuffer_write);
    msgpack_pack_array (&s_pk, 4);
    msgpack_pack_str_with_body (&s_pk, "JR", 2);
    msgpack_pack_uint8 (&s_pk, 1);
    msgpack_pack_uint8 (&s_pk, JR_MSG_HEARTBEAT);
    cr_assert_eq (s_end (NULL), JR_EMALFORMED);
    //  Not an array at all.
    static const uint8_t map[] = {
        0x84, 0xcd, 0x4a, 0x52, JR_PROTO_VERSION, 0x08, 0xc0, 0xc0, 0xc0
    };
    jr_msg_t *msg = jr_msg_new ();
    cr_assert_eq (s_decode (msg, map, sizeof map), JR_EMALFORMED);
    //  An array too short for the header.
    static const uint8_t two[] = { 0x92, 0xcd, 0x4a, 0x52, JR_PROTO_VERSION };
    cr_assert_eq (s_decode (msg, two, sizeof two), JR_EMALFORMED);
    jr_msg_destroy (&msg);
}

Test (proto, refuses_bad_version)
{
    s_begin (3, JR_PROTO_SIGNATURE, JR_PROTO_VERSION + 1, JR_MSG_HEARTBEAT);
    cr_assert_eq (s_end (NULL), JR_EVERSION);
    s_begin (3, JR_PROTO_SIGNATURE, JR_PROTO_VERSION - 1, JR_MSG_HEARTBEAT);
    cr_assert_eq (s_end (NULL), JR_EVERSION);
    s_begin (3, JR_PROTO_SIGNATURE, 0, JR_MSG_HEARTBEAT);
    cr_assert_eq (s_end (NULL), JR_EVERSION);
    s_begin (3, JR_PROTO_SIGNATURE, 257, JR_MSG_HEARTBEAT);
    cr_assert_eq (s_end (NULL), JR_EVERSION);
    //  Version is checked before the type and the field count.
    s_begin (3, JR_PROTO_SIGNATURE, JR_PROTO_VERSION + 1, 200);
    cr_assert_eq (s_end (NULL), JR_EVERSION);
}

Test (proto, refuses_unknown_type)
{
    s_begin (3, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, 0);
    cr_assert_eq (s_end (NULL), JR_EUNKNOWN_TYPE);
    s_begin (3, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_COUNT);
    cr_assert_eq (s_end (NULL), JR_EUNKNOWN_TYPE);
    s_begin (3, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, 255);
    cr_assert_eq (s_end (NULL), JR_EUNKNOWN_TYPE);
    s_begin (3, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, UINT64_MAX);
    cr_assert_eq (s_end (NULL), JR_EUNKNOWN_TYPE);
}

Test (proto, refuses_wrong_field_count)
{
    for (int type = 1; type < JR_MSG_COUNT; type++) {
        jr_msg_t *msg = jr_msg_new ();
        s_fill (msg, type, false);
        uint8_t *data;
        size_t size = jr_msg_encode (msg, &data);
        //  One field more: bump the fixarray count and append a nil.
        cr_assert_eq (data[0] & 0xf0, 0x90);
        uint8_t *more = malloc (size + 1);
        memcpy (more, data, size);
        more[0]++;
        more[size] = 0xc0;
        cr_assert_eq (s_decode (msg, more, size + 1), JR_EMALFORMED, "%s +1", jr_msg_name (type));
        //  One field fewer: same bytes, the count says one less (the last
        //  field is then trailing, which is refused as well).
        data[0]--;
        cr_assert_eq (s_decode (msg, data, size), JR_EMALFORMED, "%s -1", jr_msg_name (type));
        free (more);
        free (data);
        jr_msg_destroy (&msg);
    }
}

Test (proto, refuses_truncation_at_every_byte)
{
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_t *out = jr_msg_new ();
    for (int type = 1; type < JR_MSG_COUNT; type++) {
        s_fill (msg, type, false);
        uint8_t *data;
        size_t size = jr_msg_encode (msg, &data);
        for (size_t cut = 0; cut < size; cut++) {
            int rc = s_decode (out, data, cut);
            cr_assert_lt (rc, 0, "%s cut at %zu of %zu decoded", jr_msg_name (type), cut, size);
        }
        cr_assert_eq (s_decode (out, data, size), 0);
        free (data);
    }
    jr_msg_destroy (&msg);
    jr_msg_destroy (&out);
}

Test (proto, refuses_trailing_bytes)
{
    jr_msg_t *msg = jr_msg_new ();
    for (int type = 1; type < JR_MSG_COUNT; type++) {
        s_fill (msg, type, false);
        uint8_t *data;
        size_t size = jr_msg_encode (msg, &data);
        uint8_t *longer = malloc (size + 8);
        memcpy (longer, data, size);
        memset (longer + size, 0, 8);
        for (size_t extra = 1; extra <= 8; extra++)
            cr_assert_eq (s_decode (msg, longer, size + extra), JR_EMALFORMED, "%s +%zu",
                          jr_msg_name (type), extra);
        free (longer);
        free (data);
    }
    jr_msg_destroy (&msg);
}

Test (proto, refuses_bad_jobs)
{
    //  The hand-made job is valid as such...
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, NULL, 0, 4), 0);
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, s_vars, s_vars_len, 4), 0);
    //  ...but not with 17 or 19 elements, or an id of 15 or 17 bytes.
    cr_assert_eq (s_submit_with_job (17, JR_ID_SIZE, NULL, 0, 4), JR_EMALFORMED);
    cr_assert_eq (s_submit_with_job (19, JR_ID_SIZE, NULL, 0, 4), JR_EMALFORMED);
    cr_assert_eq (s_submit_with_job (0, JR_ID_SIZE, NULL, 0, 4), JR_EMALFORMED);
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, 15, NULL, 0, 4), JR_EMALFORMED);
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, 17, NULL, 0, 4), JR_EMALFORMED);
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, 0, NULL, 0, 4), JR_EMALFORMED);
    //  A job that is not an array.
    msgpack_packer *pk = s_begin (5, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_SUBMIT);
    msgpack_pack_uint64 (pk, 9);
    msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 0);
    cr_assert_eq (s_end (NULL), JR_EMALFORMED);
}

Test (proto, refuses_vars_that_are_not_a_map)
{
    static const uint8_t array[] = { 0x91, 0x01 };
    static const uint8_t str[] = { 0xa3, 'a', 'b', 'c' };
    static const uint8_t integer[] = { 0x2a };
    static const uint8_t bin[] = { 0xc4, 0x01, 0x00 };
    static const uint8_t reserved[] = { 0xc1 };
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, array, sizeof array, 4),
                  JR_EMALFORMED);
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, str, sizeof str, 4), JR_EMALFORMED);
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, integer, sizeof integer, 4),
                  JR_EMALFORMED);
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, bin, sizeof bin, 4), JR_EMALFORMED);
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, reserved, sizeof reserved, 4),
                  JR_EMALFORMED);
    //  A map whose body is broken: a key without its value.
    static const uint8_t half[] = { 0x82, 0xa1, 'a', 0x01, 0xa1, 'b' };
    cr_assert_lt (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, half, sizeof half, 4), 0);
    //  An empty map is a map.
    static const uint8_t empty[] = { 0x80 };
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, empty, sizeof empty, 4), 0);
}

Test (proto, refuses_huge_declared_counts)
{
    jr_msg_t *msg = jr_msg_new ();
    //  The whole body: an array of 2^32-1 elements in 10 bytes.
    static const uint8_t outer[] = {
        0xdd, 0xff, 0xff, 0xff, 0xff, 0xcd, 0x4a, 0x52, JR_PROTO_VERSION, 0x08
    };
    cr_assert_eq (s_decode (msg, outer, sizeof outer), JR_EMALFORMED);
    //  The jobs of a SUBMIT, marks of an ACK, tasks of a READY.
    static const uint8_t jobs[] = { 0x95, 0xcd, 0x4a, 0x52, JR_PROTO_VERSION, 0x01, 0x00, 0xdd,
                                    0xff, 0xff, 0xff, 0xff };
    cr_assert_eq (s_decode (msg, jobs, sizeof jobs), JR_EMALFORMED);
    cr_assert_leq (msg->cap_jobs, 16, "allocated %u jobs", msg->cap_jobs);
    static const uint8_t marks[] = { 0x94, 0xcd, 0x4a, 0x52, JR_PROTO_VERSION, 0x0a, 0xdd,
                                     0xff, 0xff, 0xff, 0xff };
    cr_assert_eq (s_decode (msg, marks, sizeof marks), JR_EMALFORMED);
    cr_assert_leq (msg->cap_marks, 16);
    static const uint8_t tasks[] = { 0x97, 0xcd, 0x4a, 0x52, JR_PROTO_VERSION,
                                     0x05, 0xa0, 0xa0, 0xdd, 0xff,
                                     0xff, 0xff, 0xff, 0x00 };
    cr_assert_eq (s_decode (msg, tasks, sizeof tasks), JR_EMALFORMED);
    cr_assert_leq (msg->cap_tasks, 16);
    //  A str32 and a bin32 that claim 4 GiB.
    static const uint8_t text[] = { 0x96, 0xcd, 0x4a, 0x52, JR_PROTO_VERSION,
                                    0x0d, 0x00, 0xff, 0xdb, 0xff,
                                    0xff, 0xff, 0xff, 'x' };
    cr_assert_eq (s_decode (msg, text, sizeof text), JR_EMALFORMED);
    //  Vars: a map32 of 2^32-1 pairs.
    static const uint8_t vars[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 };
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, vars, sizeof vars, 4),
                  JR_EMALFORMED);
    jr_msg_destroy (&msg);
}

Test (proto, refuses_more_items_than_the_limit)
{
    //  READY with JR_MAX_ITEMS + 1 task names of one byte each: present in
    //  full, but over the limit.
    msgpack_packer *pk = s_begin (8, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_READY);
    msgpack_pack_str_with_body (pk, "w", 1);
    msgpack_pack_str_with_body (pk, "h", 1);
    msgpack_pack_array (pk, JR_MAX_ITEMS + 1);
    for (int i = 0; i < JR_MAX_ITEMS + 1; i++)
        msgpack_pack_str_with_body (pk, "a", 1);
    msgpack_pack_uint32 (pk, 1);
    msgpack_pack_uint32 (pk, 1);
    cr_assert_eq (s_end (NULL), JR_ETOOLARGE);
    //  Exactly JR_MAX_ITEMS is fine.
    pk = s_begin (8, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_READY);
    msgpack_pack_str_with_body (pk, "w", 1);
    msgpack_pack_str_with_body (pk, "h", 1);
    msgpack_pack_array (pk, JR_MAX_ITEMS);
    for (int i = 0; i < JR_MAX_ITEMS; i++)
        msgpack_pack_str_with_body (pk, "a", 1);
    msgpack_pack_uint32 (pk, 1);
    msgpack_pack_uint32 (pk, 1);
    jr_msg_t *msg;
    cr_assert_eq (s_end (&msg), 0);
    cr_assert_eq (msg->ntasks, JR_MAX_ITEMS);
    jr_msg_destroy (&msg);
}

Test (proto, refuses_long_names)
{
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, NULL, 0, JR_MAX_NAME), 0);
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, NULL, 0, JR_MAX_NAME + 1),
                  JR_ETOOLARGE);
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, NULL, 0, 100000), JR_ETOOLARGE);
    cr_assert_eq (s_dispatch_with_job (0, NULL, JR_MAX_NAME), 0);
    cr_assert_eq (s_dispatch_with_job (0, NULL, JR_MAX_NAME + 1), JR_ETOOLARGE);

    //  READY: worker name, host and task names.
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_t *out = jr_msg_new ();
    jr_bytes_t long_name = { (const uint8_t *)s_long_task, JR_MAX_NAME + 1 };
    for (int which = 0; which < 3; which++) {
        s_fill (msg, JR_MSG_READY, false);
        if (which == 0)
            msg->name = long_name;
        else if (which == 1)
            msg->host = long_name;
        else
            jr_msg_add_task (msg, long_name);
        uint8_t *data;
        size_t size = jr_msg_encode (msg, &data);
        cr_assert_eq (s_decode (out, data, size), JR_ETOOLARGE, "field %d", which);
        free (data);
    }
    //  ERROR text over JR_MAX_TEXT.
    char *text = malloc (JR_MAX_TEXT + 1);
    memset (text, 'e', JR_MAX_TEXT + 1);
    s_fill (msg, JR_MSG_ERROR, false);
    msg->text = (jr_bytes_t){ (const uint8_t *)text, JR_MAX_TEXT + 1 };
    uint8_t *data;
    size_t size = jr_msg_encode (msg, &data);
    cr_assert_eq (s_decode (out, data, size), JR_ETOOLARGE);
    free (data);
    msg->text.len = JR_MAX_TEXT;
    size = jr_msg_encode (msg, &data);
    cr_assert_eq (s_decode (out, data, size), 0);
    free (data);
    free (text);
    jr_msg_destroy (&msg);
    jr_msg_destroy (&out);
}

Test (proto, refuses_deep_vars)
{
    uint8_t vars[128];
    size_t len = s_deep_vars (vars, sizeof vars, JR_MP_MAX_DEPTH - 1);
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, vars, len, 4), 0);
    len = s_deep_vars (vars, sizeof vars, JR_MP_MAX_DEPTH + 1);
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, vars, len, 4), JR_ETOOLARGE);
    len = s_deep_vars (vars, sizeof vars, 100);
    cr_assert_eq (s_submit_with_job (JR_JOB_FIELDS, JR_ID_SIZE, vars, len, 4), JR_ETOOLARGE);
}

Test (proto, refuses_out_of_range_numbers)
{
    //  slots over uint32
    msgpack_packer *pk = s_begin (7, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_READY);
    msgpack_pack_str_with_body (pk, "w", 1);
    msgpack_pack_str_with_body (pk, "h", 1);
    msgpack_pack_array (pk, 0);
    msgpack_pack_uint64 (pk, (uint64_t)UINT32_MAX + 1);
    cr_assert_eq (s_end (NULL), JR_EMALFORMED);
    //  negative slots
    pk = s_begin (7, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_READY);
    msgpack_pack_str_with_body (pk, "w", 1);
    msgpack_pack_str_with_body (pk, "h", 1);
    msgpack_pack_array (pk, 0);
    msgpack_pack_int64 (pk, -1);
    cr_assert_eq (s_end (NULL), JR_EMALFORMED);
    //  code over int32, and a code that is not an integer
    pk = s_begin (6, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_ERROR);
    msgpack_pack_uint64 (pk, 1);
    msgpack_pack_int64 (pk, (int64_t)INT32_MIN - 1);
    msgpack_pack_str_with_body (pk, "", 0);
    cr_assert_eq (s_end (NULL), JR_EMALFORMED);
    pk = s_begin (6, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_ERROR);
    msgpack_pack_uint64 (pk, 1);
    msgpack_pack_double (pk, -3.0);
    msgpack_pack_str_with_body (pk, "", 0);
    cr_assert_eq (s_end (NULL), JR_EMALFORMED);
    //  negative tag
    pk = s_begin (6, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_ERROR);
    msgpack_pack_int64 (pk, -1);
    msgpack_pack_int32 (pk, JR_EINVALID);
    msgpack_pack_str_with_body (pk, "", 0);
    cr_assert_eq (s_end (NULL), JR_EMALFORMED);
    //  a mark of two elements
    pk = s_begin (4, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_ACK);
    msgpack_pack_array (pk, 1);
    msgpack_pack_array (pk, 2);
    msgpack_pack_bin_with_body (pk, "0123456789abcdef", JR_ID_SIZE);
    msgpack_pack_uint32 (pk, 1);
    cr_assert_eq (s_end (NULL), JR_EMALFORMED);
    //  a mark with an id of 15 bytes
    pk = s_begin (4, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_ACK);
    msgpack_pack_array (pk, 1);
    msgpack_pack_array (pk, 3);
    msgpack_pack_bin_with_body (pk, "0123456789abcde", 15);
    msgpack_pack_uint32 (pk, 1);
    msgpack_pack_int32 (pk, 0);
    cr_assert_eq (s_end (NULL), JR_EMALFORMED);
}

Test (proto, refused_request_keeps_its_tag)
{
    //  An ERROR whose code is a string: refused, but the tag was read so
    //  the reply can carry it.
    msgpack_packer *pk = s_begin (6, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_ERROR);
    msgpack_pack_uint64 (pk, 4242);
    msgpack_pack_str_with_body (pk, "bad", 3);
    msgpack_pack_str_with_body (pk, "", 0);
    jr_msg_t *msg;
    cr_assert_eq (s_end (&msg), JR_EMALFORMED);
    cr_assert_eq (msg->tag, 4242);
    jr_msg_destroy (&msg);
    //  Even with a wrong field count.
    pk = s_begin (5, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_STATUS);
    msgpack_pack_uint64 (pk, 77);
    cr_assert_eq (s_end (&msg), JR_EMALFORMED);
    cr_assert_eq (msg->tag, 77);
    jr_msg_destroy (&msg);
}

Test (proto, refuses_oversized_body)
{
    jr_msg_t *msg = jr_msg_new ();
    static const uint8_t heartbeat[] = { 0x93, 0xcd, 0x4a, 0x52, JR_PROTO_VERSION, 0x08 };
    //  The size check comes first: the bytes past the heartbeat are not read.
    cr_assert_eq (jr_msg_decode (msg, heartbeat, (size_t)JR_MAX_FRAME + 1), JR_ETOOLARGE);
    cr_assert_eq (jr_msg_decode (msg, heartbeat, sizeof heartbeat), 0);
    //  Nothing at all (a zero-length frame arrives as NULL, 0 from some APIs).
    cr_assert_eq (jr_msg_decode (msg, NULL, 0), JR_EMALFORMED);
    jr_msg_destroy (&msg);
}

Test (proto, encode_refuses_oversized)
{
    //  Five payloads of 16 MiB each make a body over JR_MAX_FRAME.
    size_t big = JR_MAX_PAYLOAD;
    uint8_t *payload = calloc (1, big);
    cr_assert (payload);
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_RESULT);
    for (int i = 0; i < 5; i++) {
        jr_job_t *job = jr_msg_add_job (msg);
        job->payload = (jr_bytes_t){ payload, big };
    }
    uint8_t *data = (uint8_t *)1;
    cr_assert_eq (jr_msg_encode (msg, &data), 0);
    cr_assert_null (data);
    cr_assert_eq (jr_msg_send (msg, NULL, NULL, 0), JR_ETOOLARGE);
    jr_msg_destroy (&msg);
    free (payload);
}

//  -------------------------------------------------------------------------
//  Printing

Test (proto, print_names_every_type)
{
    jr_msg_t *msg = jr_msg_new ();
    char line[8192];
    for (int type = 1; type < JR_MSG_COUNT; type++) {
        s_fill (msg, type, false);
        jr_msg_print (msg, line, sizeof line);
        cr_assert (strstr (line, jr_msg_name (type)), "'%s' lacks the name", line);
        cr_assert_lt (strlen (line), sizeof line);
    }
    s_fill (msg, JR_MSG_ERROR, false);
    jr_msg_print (msg, line, sizeof line);
    cr_assert (strstr (line, "STALE_ATTEMPT"), "%s", line);
    cr_assert (strstr (line, "tag=18446744073709539270"), "%s", line);
    s_fill (msg, JR_MSG_READY, false);
    jr_msg_print (msg, line, sizeof line);
    cr_assert (strstr (line, "tasks=echo,sleep"), "%s", line);
    jr_msg_destroy (&msg);
}

Test (proto, print_truncates)
{
    jr_msg_t *msg = jr_msg_new ();
    s_fill (msg, JR_MSG_RESULTS, false);
    char line[16];
    memset (line, 'z', sizeof line);
    jr_msg_print (msg, line, 10);
    cr_assert_eq (strlen (line), 9);
    cr_assert_eq (line[10], 'z');
    line[0] = 'z';
    jr_msg_print (msg, line, 0);
    cr_assert_eq (line[0], 'z');
    jr_msg_destroy (&msg);
}

//  -------------------------------------------------------------------------
//  Sending

//  Receives one frame on a socket (with a timeout) and decodes it.
static int
s_recv_msg (zsock_t *sock, jr_msg_t *msg, zframe_t **frame_p)
{
    zframe_t *frame = zframe_recv (sock);
    cr_assert (frame, "nothing received");
    int rc = jr_msg_decode (msg, zframe_data (frame), zframe_size (frame));
    *frame_p = frame;  //  the message's views point into the frame
    return rc;
}

Test (proto, send_over_pair)
{
    zsock_t *a = zsock_new_pair ("@inproc://test-proto-pair");
    zsock_t *b = zsock_new_pair (">inproc://test-proto-pair");
    cr_assert (a && b);
    zsock_set_rcvtimeo (b, 2000);
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_t *got = jr_msg_new ();
    for (int type = 1; type < JR_MSG_COUNT; type++) {
        s_fill (msg, type, true);
        cr_assert_eq (jr_msg_send (msg, zsock_resolve (a), NULL, 0), 0);
        zframe_t *frame;
        cr_assert_eq (s_recv_msg (b, got, &frame), 0);
        cr_assert_not (zframe_more (frame), "one frame per message");
        s_assert_msg (msg, got);
        zframe_destroy (&frame);
    }
    jr_msg_destroy (&msg);
    jr_msg_destroy (&got);
    zsock_destroy (&a);
    zsock_destroy (&b);
}

Test (proto, send_dealer_router)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_mandatory (router, 1);
    zsock_set_rcvtimeo (router, 2000);
    cr_assert_eq (zsock_bind (router, "inproc://test-proto-router"), 0);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_identity (dealer, "W1");
    zsock_set_rcvtimeo (dealer, 2000);
    cr_assert_eq (zsock_connect (dealer, "inproc://test-proto-router"), 0);

    //  DEALER -> ROUTER: the router sees [routing-id, body].
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_t *got = jr_msg_new ();
    s_fill (msg, JR_MSG_READY, false);
    cr_assert_eq (jr_msg_send (msg, zsock_resolve (dealer), NULL, 0), 0);
    zmsg_t *in = zmsg_recv (router);
    cr_assert (in);
    cr_assert_eq (zmsg_size (in), 2);
    zframe_t *peer = zmsg_pop (in);
    zframe_t *body = zmsg_pop (in);
    cr_assert (zframe_streq (peer, "W1"));
    cr_assert_eq (jr_msg_decode (got, zframe_data (body), zframe_size (body)), 0);
    s_assert_msg (msg, got);
    zframe_destroy (&body);
    zmsg_destroy (&in);

    //  ROUTER -> DEALER by routing id; the dealer sees the body alone.
    s_fill (msg, JR_MSG_DISPATCH, true);
    cr_assert_eq (jr_msg_send (msg, zsock_resolve (router), zframe_data (peer), zframe_size (peer)),
                  0);
    zframe_t *frame;
    cr_assert_eq (s_recv_msg (dealer, got, &frame), 0);
    cr_assert_not (zframe_more (frame));
    s_assert_msg (msg, got);
    zframe_destroy (&frame);

    //  An ERROR with tag, code and text.
    jr_msg_send_error (zsock_resolve (router), zframe_data (peer), zframe_size (peer), 99,
                       JR_EUNKNOWN_PEER, "who are you?");
    cr_assert_eq (s_recv_msg (dealer, got, &frame), 0);
    cr_assert_eq (got->type, JR_MSG_ERROR);
    cr_assert_eq (got->tag, 99);
    cr_assert_eq (got->code, JR_EUNKNOWN_PEER);
    s_assert_bytes (got->text, B ("who are you?"), "text");
    zframe_destroy (&frame);

    //  A peer the router does not know: refused, not dropped in silence.
    cr_assert_eq (jr_msg_send (msg, zsock_resolve (router), "nobody", 6), JR_EUNKNOWN_PEER);
    //  ...and the router still works afterwards.
    cr_assert_eq (jr_msg_send (msg, zsock_resolve (router), zframe_data (peer), zframe_size (peer)),
                  0);
    cr_assert_eq (s_recv_msg (dealer, got, &frame), 0);
    zframe_destroy (&frame);

    zframe_destroy (&peer);
    jr_msg_destroy (&msg);
    jr_msg_destroy (&got);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}

Test (proto, send_without_peer_is_queue_full)
{
    //  A DEALER with no connection cannot queue anything: the send never
    //  blocks and says so.
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    jr_msg_t msg = { .type = JR_MSG_HEARTBEAT };
    cr_assert_eq (jr_msg_send (&msg, zsock_resolve (dealer), NULL, 0), JR_EQUEUE_FULL);
    zsock_destroy (&dealer);
}

//  -------------------------------------------------------------------------
//  Version 3: STATE's tasks, workers and cursor; LIST's task, limit, cursor

static jr_bytes_t
s_text_of (const char *text)
{
    return (jr_bytes_t){ (const uint8_t *)text, strlen (text) };
}

//  Encode msg, decode it into copy, and compare (copy's views die here).
static void
s_round_trip (jr_msg_t *msg, jr_msg_t *copy)
{
    uint8_t *data;
    size_t size = jr_msg_encode (msg, &data);
    cr_assert (data, "%s encodes", jr_msg_name (msg->type));
    cr_assert_eq (jr_msg_decode (copy, data, size), 0);
    s_assert_msg (msg, copy);
    free (data);
}

Test (proto, state_and_list_round_trip)
{
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_t *copy = jr_msg_new ();
    uint8_t id[JR_ID_SIZE], cursor[JR_LIST_CURSOR];
    memset (id, 0x5A, sizeof id);
    memset (cursor, 0xC3, sizeof cursor);
    char worker[JR_MAX_WORKER + 1];
    memset (worker, 'w', JR_MAX_WORKER);
    worker[JR_MAX_WORKER] = 0;
    jr_msg_reset (msg, JR_MSG_STATE);
    msg->tag = 9;
    jr_msg_add_mark (msg, id, 3, JR_STATE_RUNNING);
    jr_msg_add_task (msg, s_text_of ("sleep"));
    jr_msg_add_note (msg, 7, s_text_of ("slept 7"));
    jr_msg_add_worker (msg, s_text_of (worker));  //  the longest allowed
    jr_msg_add_mark (msg, id, 0, JR_STATE_UNKNOWN);
    jr_msg_add_task (msg, s_text_of (""));
    jr_msg_add_note (msg, 0, s_text_of (""));
    jr_msg_add_worker (msg, s_text_of (""));
    msg->cursor = (jr_bytes_t){ cursor, JR_LIST_CURSOR };
    s_round_trip (msg, copy);

    jr_msg_reset (msg, JR_MSG_LIST);
    msg->tag = 10;
    msg->code = JR_STATE_QUEUED;
    msg->task = s_text_of (s_long_task + 1);  //  JR_MAX_NAME bytes: the longest allowed
    cr_assert_eq (msg->task.len, JR_MAX_NAME);
    msg->limit = JR_MAX_LIST;
    msg->cursor = (jr_bytes_t){ cursor, JR_LIST_CURSOR };
    s_round_trip (msg, copy);
    //  From the start: an empty cursor, any task
    msg->task = s_text_of ("");
    msg->cursor = (jr_bytes_t){ NULL, 0 };
    msg->limit = 0;
    s_round_trip (msg, copy);
    char line[256];
    jr_msg_print (msg, line, sizeof line);
    cr_assert (strstr (line, "LIST tag=10 code=") && strstr (line, " limit=0 cursor="), "%s", line);
    jr_msg_destroy (&msg);
    jr_msg_destroy (&copy);
}

//  LIST as a peer might send it: tag, code, task, limit, then the cursor
//  given by the caller.
static msgpack_packer *
s_list_begin (const char *task, size_t task_len, uint64_t limit)
{
    msgpack_packer *pk = s_begin (8, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_LIST);
    msgpack_pack_uint64 (pk, 44);
    msgpack_pack_int32 (pk, JR_STATE_QUEUED);
    msgpack_pack_str_with_body (pk, task, task_len);
    msgpack_pack_uint64 (pk, limit);
    return pk;
}

Test (proto, list_limits_and_bad_cursors)
{
    uint8_t bytes[JR_LIST_CURSOR + 1] = { 0 };
    //  a 20-byte cursor (hash and id), as bin or str
    cr_assert_eq (JR_LIST_CURSOR, 20);
    msgpack_pack_bin_with_body (s_list_begin ("echo", 4, 5), bytes, JR_LIST_CURSOR);
    jr_msg_t *msg;
    cr_assert_eq (s_end (&msg), 0);
    cr_assert_eq (msg->cursor.len, JR_LIST_CURSOR);
    cr_assert_eq (msg->limit, 5);
    jr_msg_destroy (&msg);
    msgpack_pack_str_with_body (s_list_begin ("echo", 4, 5), bytes, JR_LIST_CURSOR);
    cr_assert_eq (s_end (NULL), 0);
    //  a cursor of any other length is malformed, a bare id (v3's first
    //  16-byte cursor) too
    size_t bad[] = { 1, 4, JR_ID_SIZE, JR_LIST_CURSOR - 1, JR_LIST_CURSOR + 1 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msgpack_pack_bin_with_body (s_list_begin ("echo", 4, 5), bytes, bad[i]);
        cr_assert_eq (s_end (&msg), JR_EMALFORMED, "cursor of %zu bytes", bad[i]);
        cr_assert_eq (msg->tag, 44, "the ERROR can carry the tag");
        jr_msg_destroy (&msg);
    }
    //  nor is a cursor of another type
    msgpack_pack_uint32 (s_list_begin ("echo", 4, 5), 7);
    cr_assert_eq (s_end (NULL), JR_EMALFORMED);
    //  a task over JR_MAX_NAME is too large
    msgpack_pack_bin_with_body (s_list_begin (s_long_task, JR_MAX_NAME + 1, 5), bytes, 0);
    cr_assert_eq (s_end (NULL), JR_ETOOLARGE);
    //  a limit past 32 bits is malformed (past JR_MAX_LIST is the broker's INVALID)
    msgpack_pack_bin_with_body (s_list_begin ("", 0, (uint64_t)UINT32_MAX + 1), bytes, 0);
    cr_assert_eq (s_end (NULL), JR_EMALFORMED);
    msgpack_pack_bin_with_body (s_list_begin ("", 0, UINT32_MAX), bytes, 0);
    cr_assert_eq (s_end (NULL), 0);
    //  a version 2 LIST (tag and code only) is another version
    msgpack_packer *pk = s_begin (5, JR_PROTO_SIGNATURE, 2, JR_MSG_LIST);
    msgpack_pack_uint64 (pk, 1);
    msgpack_pack_int32 (pk, JR_STATE_QUEUED);
    cr_assert_eq (s_end (NULL), JR_EVERSION);
    //  and in version 3, that LIST lacks fields
    pk = s_begin (5, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_LIST);
    msgpack_pack_uint64 (pk, 1);
    msgpack_pack_int32 (pk, JR_STATE_QUEUED);
    cr_assert_eq (s_end (NULL), JR_EMALFORMED);
}

//  STATE's tasks and workers are checked like READY's names.
static void
s_state_with (const char *task, size_t task_len, const char *worker, size_t worker_len)
{
    uint8_t id[JR_ID_SIZE] = { 1 };
    msgpack_packer *pk = s_begin (9, JR_PROTO_SIGNATURE, JR_PROTO_VERSION, JR_MSG_STATE);
    msgpack_pack_uint64 (pk, 3);
    msgpack_pack_array (pk, 1);  //  tasks
    msgpack_pack_str_with_body (pk, task, task_len);
    msgpack_pack_array (pk, 1);  //  marks
    msgpack_pack_array (pk, 3);
    msgpack_pack_bin_with_body (pk, id, JR_ID_SIZE);
    msgpack_pack_uint32 (pk, 1);
    msgpack_pack_int32 (pk, JR_STATE_RUNNING);
    msgpack_pack_array (pk, 0);  //  notes
    msgpack_pack_array (pk, 1);  //  workers
    msgpack_pack_str_with_body (pk, worker, worker_len);
    msgpack_pack_bin_with_body (pk, id, 0);  //  cursor
}

Test (proto, state_names_over_their_limits)
{
    static char worker[JR_MAX_WORKER + 1];
    memset (worker, 'w', sizeof worker);
    s_state_with ("t", 1, worker, JR_MAX_WORKER);
    jr_msg_t *msg;
    cr_assert_eq (s_end (&msg), 0);
    cr_assert_eq (msg->nworkers, 1);
    cr_assert_eq (msg->workers[0].len, JR_MAX_WORKER);
    cr_assert_eq (msg->ntasks, 1);
    jr_msg_destroy (&msg);
    s_state_with ("t", 1, worker, JR_MAX_WORKER + 1);
    cr_assert_eq (s_end (NULL), JR_ETOOLARGE);
    s_state_with (s_long_task, JR_MAX_NAME + 1, "w@h", 3);
    cr_assert_eq (s_end (NULL), JR_ETOOLARGE);
}
