/*  fuzz_msg.c - libFuzzer target: decode any body; what decodes must round-trip  */
#include "proto/proto.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  Abort (a crash libFuzzer reports) when an invariant breaks; asserts may
//  be compiled out, this may not.
#define s_check(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf (stderr, "fuzz_msg: %s:%d: %s\n", __FILE__, __LINE__, #cond);                  \
            abort ();                                                                              \
        }                                                                                          \
    } while (0)

static bool
s_same (jr_bytes_t a, jr_bytes_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp (a.ptr, b.ptr, a.len) == 0);
}

static void
s_check_job (const jr_job_t *a, const jr_job_t *b)
{
    s_check (memcmp (a->id, b->id, JR_ID_SIZE) == 0);
    s_check (s_same (a->task, b->task));
    s_check (s_same (a->vars, b->vars));
    s_check (a->priority == b->priority && a->timeout_ms == b->timeout_ms);
    s_check (a->max_attempts == b->max_attempts && a->attempt == b->attempt);
    s_check (a->state == b->state && a->success == b->success);
    s_check (s_same (a->payload, b->payload));
    s_check (s_same (a->error, b->error));
    s_check (s_same (a->worker, b->worker));
    s_check (a->created_us == b->created_us && a->accepted_us == b->accepted_us);
    s_check (a->dispatched_us == b->dispatched_us && a->started_us == b->started_us);
    s_check (a->completed_us == b->completed_us && a->ingested_us == b->ingested_us);
}

static void
s_check_msg (const jr_msg_t *a, const jr_msg_t *b)
{
    s_check (a->type == b->type);
    unsigned fields = jr_msg_fields (a->type);
    s_check (!(fields & F_TAG) || a->tag == b->tag);
    s_check (!(fields & F_CODE) || a->code == b->code);
    s_check (!(fields & F_TEXT) || s_same (a->text, b->text));
    s_check (!(fields & F_NAME) || s_same (a->name, b->name));
    s_check (!(fields & F_HOST) || s_same (a->host, b->host));
    s_check (!(fields & F_SLOTS) || a->slots == b->slots);
    s_check (!(fields & F_WAIT) || a->wait_ms == b->wait_ms);
    s_check (a->ntasks == b->ntasks && a->njobs == b->njobs && a->nmarks == b->nmarks);
    for (uint32_t i = 0; i < a->ntasks; i++)
        s_check (s_same (a->tasks[i], b->tasks[i]));
    for (uint32_t i = 0; i < a->njobs; i++)
        s_check_job (&a->jobs[i], &b->jobs[i]);
    for (uint32_t i = 0; i < a->nmarks; i++) {
        s_check (memcmp (a->marks[i].id, b->marks[i].id, JR_ID_SIZE) == 0);
        s_check (a->marks[i].attempt == b->marks[i].attempt);
        s_check (a->marks[i].code == b->marks[i].code);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  Kept between inputs, as a server keeps its message between decodes.
    static jr_msg_t *first, *second;
    if (!first) {
        first = jr_msg_new ();
        second = jr_msg_new ();
    }
    bool error = jr_msg_is_error (data, size);
    int rc = jr_msg_decode (first, data, size);
    s_check (rc <= 0);
    s_check (rc != 0 || error == (first->type == JR_MSG_ERROR));  //  agree when it decodes
    char line[1024];
    jr_msg_print (first, line, sizeof line);  //  also for half-decoded messages
    s_check (strlen (line) < sizeof line);
    if (rc != 0)
        return 0;
    s_check (first->type > 0 && first->type < JR_MSG_COUNT);
    for (uint32_t i = 0; i < first->njobs; i++)  //  a SUBMIT's jobs are checked by the broker
        s_check (jr_job_check (&first->jobs[i]) == 0 || first->type == JR_MSG_SUBMIT);

    //  Whatever decodes encodes, in canonical form, and decodes to the same.
    uint8_t *encoded;
    size_t encoded_size = jr_msg_encode (first, &encoded);
    if (!encoded) {
        //  Only a body near the limit may grow past it when re-encoded
        //  (a str id becomes a bin id one byte longer).
        s_check (size > JR_MAX_FRAME / 2);
        return 0;
    }
    s_check (jr_msg_decode (second, encoded, encoded_size) == 0);
    s_check_msg (first, second);
    uint8_t *again;
    size_t again_size = jr_msg_encode (second, &again);
    s_check (again && again_size == encoded_size);
    s_check (memcmp (again, encoded, encoded_size) == 0);
    free (again);
    free (encoded);
    return 0;
}
