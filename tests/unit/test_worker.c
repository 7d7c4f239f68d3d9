/*  test_worker.c - worker: ctx, sha256, built-in tasks, executor, protocol against fake peers  */
#include "common/clock.h"
#include "common/metrics.h"
#include "proto/proto.h"
#include "tests/fakes/fake_router.h"
#include "worker/ctx.h"
#include "worker/executor.h"
#include "worker/sha256.h"
#include "worker/tasks.h"
#include "worker/worker.h"
#include <criterion/criterion.h>
#include <czmq.h>
#include <msgpack.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_WAIT_MS 10000  //  generous: a slow machine must never fail a test

//  -------------------------------------------------------------------------
//  Helpers

//  A vars map from "key", "s:value" | "i:number" | "b:true" pairs; caller
//  frees ptr.
static jr_bytes_t
s_vars (int npairs, ...)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, (size_t)npairs);
    va_list args;
    va_start (args, npairs);
    for (int i = 0; i < npairs; i++) {
        const char *key = va_arg (args, const char *);
        const char *value = va_arg (args, const char *);
        msgpack_pack_str (&pk, strlen (key));
        msgpack_pack_str_body (&pk, key, strlen (key));
        if (value[0] == 'i')
            msgpack_pack_int64 (&pk, strtoll (value + 2, NULL, 10));
        else if (value[0] == 'b') {
            if (strcmp (value + 2, "true") == 0)
                msgpack_pack_true (&pk);
            else
                msgpack_pack_false (&pk);
        }
        else {
            msgpack_pack_str (&pk, strlen (value + 2));
            msgpack_pack_str_body (&pk, value + 2, strlen (value + 2));
        }
    }
    va_end (args);
    return (jr_bytes_t){ (const uint8_t *)buf.data, buf.size };
}

static void
s_job (jr_job_t *job, const char *task, jr_bytes_t vars, uint32_t timeout_ms)
{
    jr_job_init (job, task);
    job->vars = vars;
    job->timeout_ms = timeout_ms;
    job->attempt = 1;
    job->accepted_us = job->created_us + 1;
    job->dispatched_us = job->created_us + 2;
    job->state = JR_STATE_RUNNING;
}

static bool
s_eq (jr_bytes_t bytes, const char *text)
{
    return bytes.len == strlen (text) && memcmp (bytes.ptr, text, bytes.len) == 0;
}

static bool
s_starts (jr_bytes_t bytes, const char *text)
{
    return bytes.len >= strlen (text) && memcmp (bytes.ptr, text, strlen (text)) == 0;
}

//  Run a registered task directly with a context, the way an executor does.
static bool
s_run_task (const char *task, jr_bytes_t vars, jr_out_t *out)
{
    jr_job_t job;
    s_job (&job, task, vars, 0);
    jr_task_fn *fn = jr_tasks_find (job.task);
    cr_assert (fn, "task %s registered", task);
    jr_ctx_t *ctx = jr_ctx_new (&job, 0);
    cr_assert (ctx);
    bool ok = fn (ctx, out);
    jr_ctx_destroy (&ctx);
    return ok;
}

static void
s_hex (const char *text, size_t len, char hex[JR_SHA256_HEX])
{
    uint8_t digest[JR_SHA256_SIZE];
    jr_sha256 (text, len, digest);
    jr_sha256_hex (digest, hex);
}

//  -------------------------------------------------------------------------
//  Context and output

Test (worker_ctx, deadline_by_clock)
{
    jr_job_t job;
    s_job (&job, "echo", (jr_bytes_t){ NULL, 0 }, 0);
    jr_ctx_t *ctx = jr_ctx_new (&job, jr_clock_mono_us () + 10 * 1000000LL);
    cr_assert (ctx);
    cr_assert_eq (jr_ctx_job (ctx), &job);
    cr_assert_not (jr_ctx_done (ctx));
    cr_assert_eq (jr_ctx_err (ctx), 0);
    cr_assert_gt (jr_ctx_time_left_ms (ctx), 0);
    //  Move time instead of waiting for it.
    jr_clock_mono_shift_us (11 * 1000000LL);
    cr_assert (jr_ctx_done (ctx));
    cr_assert_eq (jr_ctx_err (ctx), JR_EDEADLINE);
    cr_assert_eq (jr_ctx_time_left_ms (ctx), 0);
    cr_assert_eq (jr_ctx_sleep (ctx, 60000), JR_EDEADLINE);
    jr_ctx_destroy (&ctx);
    cr_assert_null (ctx);
    jr_ctx_destroy (&ctx);
}

Test (worker_ctx, no_deadline)
{
    jr_job_t job;
    s_job (&job, "echo", (jr_bytes_t){ NULL, 0 }, 0);
    jr_ctx_t *ctx = jr_ctx_new (&job, 0);
    cr_assert_eq (jr_ctx_time_left_ms (ctx), INT64_MAX);
    cr_assert_eq (jr_ctx_sleep (ctx, 1), 0);
    cr_assert_eq (jr_ctx_sleep (ctx, 0), 0);
    cr_assert_not (jr_ctx_done (ctx));
    jr_ctx_destroy (&ctx);
}

Test (worker_ctx, sleep_bounded_by_deadline)
{
    jr_job_t job;
    s_job (&job, "sleep", (jr_bytes_t){ NULL, 0 }, 0);
    //  A minute-long sleep under a short deadline returns with the deadline.
    jr_ctx_t *ctx = jr_ctx_new (&job, jr_clock_mono_us () + 20 * 1000);
    cr_assert_eq (jr_ctx_sleep (ctx, 60000), JR_EDEADLINE);
    cr_assert_eq (jr_ctx_err (ctx), JR_EDEADLINE);
    jr_ctx_destroy (&ctx);
}

static void *
s_sleeper (void *arg)
{
    intptr_t rc = jr_ctx_sleep (arg, 60000);
    return (void *)rc;
}

Test (worker_ctx, cancel_wakes_sleep)
{
    jr_job_t job;
    s_job (&job, "sleep", (jr_bytes_t){ NULL, 0 }, 0);
    jr_ctx_t *ctx = jr_ctx_new (&job, 0);
    pthread_t thread;
    pthread_create (&thread, NULL, s_sleeper, ctx);
    zclock_sleep (20);  //  not needed for correctness: a cancel first also ends the sleep
    jr_ctx_cancel (ctx, JR_ECANCELLED);
    void *rc;
    pthread_join (thread, &rc);
    cr_assert_eq ((intptr_t)rc, JR_ECANCELLED);
    jr_ctx_destroy (&ctx);
}

Test (worker_ctx, fd_readable_after_cancel)
{
    jr_job_t job;
    s_job (&job, "echo", (jr_bytes_t){ NULL, 0 }, 0);
    jr_ctx_t *ctx = jr_ctx_new (&job, 0);
    struct pollfd item = { .fd = jr_ctx_fd (ctx), .events = POLLIN };
    cr_assert_eq (poll (&item, 1, 0), 0);
    jr_ctx_cancel (ctx, JR_ECANCELLED);
    jr_ctx_cancel (ctx, JR_EDEADLINE);  //  the first reason wins
    cr_assert_eq (poll (&item, 1, 0), 1);
    cr_assert_eq (poll (&item, 1, 0), 1);  //  stays readable
    cr_assert (jr_ctx_done (ctx));
    cr_assert_eq (jr_ctx_err (ctx), JR_ECANCELLED);
    jr_ctx_destroy (&ctx);
}

Test (worker_ctx, out_limit_and_error)
{
    jr_out_t *out = jr_out_new (8);
    cr_assert_null (jr_out_error (out));
    cr_assert_eq (jr_out_write (out, "hello", 5), 0);
    cr_assert_eq (jr_out_write (out, "abc", 3), 0);
    cr_assert_eq (jr_out_write (out, "x", 1), JR_ETOOLARGE);
    cr_assert_eq (jr_out_err (out), JR_ETOOLARGE);
    cr_assert (s_eq (jr_out_payload (out), "helloabc"));
    jr_out_errorf (out, "first %d", 1);
    jr_out_errorf (out, "second %s", "two");
    cr_assert_str_eq (jr_out_error (out), "second two");
    jr_out_destroy (&out);
    cr_assert_null (out);

    //  A huge error text is cut to what the wire accepts.
    out = jr_out_new (8);
    char *big = malloc (JR_MAX_TEXT * 2);
    memset (big, 'e', JR_MAX_TEXT * 2 - 1);
    big[JR_MAX_TEXT * 2 - 1] = 0;
    jr_out_errorf (out, "%s", big);
    cr_assert_lt (strlen (jr_out_error (out)), JR_MAX_TEXT);
    free (big);
    jr_out_destroy (&out);
}

//  -------------------------------------------------------------------------
//  SHA-256

Test (worker_sha256, known_vectors)
{
    char hex[JR_SHA256_HEX];
    s_hex ("abc", 3, hex);
    cr_assert_str_eq (hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    s_hex ("", 0, hex);
    cr_assert_str_eq (hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    s_hex (two_blocks, strlen (two_blocks), hex);
    cr_assert_str_eq (hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test (worker_sha256, streaming_matches_one_shot)
{
    //  A million 'a', fed in uneven pieces that straddle block edges.
    char *data = malloc (1000000);
    memset (data, 'a', 1000000);
    jr_sha256_t state;
    jr_sha256_init (&state);
    size_t pos = 0, step = 1;
    while (pos < 1000000) {
        size_t n = step < 1000000 - pos ? step : 1000000 - pos;
        jr_sha256_update (&state, data + pos, n);
        pos += n;
        step = step * 7 % 131 + 1;
    }
    uint8_t digest[JR_SHA256_SIZE];
    jr_sha256_final (&state, digest);
    char hex[JR_SHA256_HEX];
    jr_sha256_hex (digest, hex);
    cr_assert_str_eq (hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    //  Lengths around the padding boundary (55, 56, 64 bytes) agree both ways.
    for (size_t len = 50; len < 70; len++) {
        char one[JR_SHA256_HEX], two[JR_SHA256_HEX];
        s_hex (data, len, one);
        jr_sha256_init (&state);
        for (size_t i = 0; i < len; i++)
            jr_sha256_update (&state, data + i, 1);
        jr_sha256_final (&state, digest);
        jr_sha256_hex (digest, two);
        cr_assert_str_eq (one, two, "len %zu", len);
    }
    free (data);
}

//  -------------------------------------------------------------------------
//  Built-in tasks through the registry

Test (worker_tasks, registry)
{
    cr_assert_geq (jr_tasks_count (), 4);
    const char *want[] = { "echo", "sleep", "fail", "sha256" };
    for (int i = 0; i < 4; i++) {
        bool found = false;
        for (size_t k = 0; k < jr_tasks_count (); k++)
            found |= strcmp (jr_tasks_name (k), want[i]) == 0;
        cr_assert (found, "%s listed", want[i]);
    }
    cr_assert_null (jr_tasks_find ((jr_bytes_t){ (const uint8_t *)"nope", 4 }));
    cr_assert_null (jr_tasks_find ((jr_bytes_t){ (const uint8_t *)"ech", 3 }));
    cr_assert_eq (jr_tasks_register ("echo", jr_task_fail), JR_EINVALID);
    cr_assert_eq (jr_tasks_register ("", jr_task_fail), JR_EINVALID);
    cr_assert_eq (jr_tasks_register ("mine", jr_task_fail), 0);
    cr_assert_eq (jr_tasks_find ((jr_bytes_t){ (const uint8_t *)"mine", 4 }), jr_task_fail);
}

Test (worker_tasks, echo)
{
    jr_bytes_t vars = s_vars (1, "msg", "s:hello");
    jr_out_t *out = jr_out_new (1024);
    cr_assert (s_run_task ("echo", vars, out));
    cr_assert (s_eq (jr_out_payload (out), "hello"));
    jr_out_destroy (&out);
    //  No vars at all: an empty payload.
    out = jr_out_new (1024);
    cr_assert (s_run_task ("echo", (jr_bytes_t){ NULL, 0 }, out));
    cr_assert_eq (jr_out_payload (out).len, 0);
    jr_out_destroy (&out);
    free ((void *)vars.ptr);
}

Test (worker_tasks, sleep)
{
    jr_bytes_t vars = s_vars (1, "ms", "i:5");
    jr_out_t *out = jr_out_new (1024);
    cr_assert (s_run_task ("sleep", vars, out));
    cr_assert (s_eq (jr_out_payload (out), "slept 5"));
    jr_out_destroy (&out);
    free ((void *)vars.ptr);

    vars = s_vars (1, "ms", "s:nonsense");
    out = jr_out_new (1024);
    cr_assert_not (s_run_task ("sleep", vars, out));
    cr_assert (strstr (jr_out_error (out), "INVALID"));
    jr_out_destroy (&out);
    free ((void *)vars.ptr);
}

Test (worker_tasks, fail)
{
    jr_out_t *out = jr_out_new (1024);
    cr_assert_not (s_run_task ("fail", (jr_bytes_t){ NULL, 0 }, out));
    cr_assert_str_eq (jr_out_error (out), "failed on purpose");
    jr_out_destroy (&out);
    jr_bytes_t vars = s_vars (1, "error", "s:boom");
    out = jr_out_new (1024);
    cr_assert_not (s_run_task ("fail", vars, out));
    cr_assert_str_eq (jr_out_error (out), "boom");
    jr_out_destroy (&out);
    free ((void *)vars.ptr);
}

Test (worker_tasks, sha256)
{
    jr_bytes_t vars = s_vars (1, "data", "s:abc");
    jr_out_t *out = jr_out_new (1024);
    cr_assert (s_run_task ("sha256", vars, out));
    cr_assert (s_eq (jr_out_payload (out),
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    jr_out_destroy (&out);
    free ((void *)vars.ptr);

    //  rounds = 3: digest of digest of digest.
    uint8_t digest[JR_SHA256_SIZE];
    jr_sha256 ("abc", 3, digest);
    jr_sha256 (digest, sizeof digest, digest);
    jr_sha256 (digest, sizeof digest, digest);
    char hex[JR_SHA256_HEX];
    jr_sha256_hex (digest, hex);
    vars = s_vars (2, "data", "s:abc", "rounds", "i:3");
    out = jr_out_new (1024);
    cr_assert (s_run_task ("sha256", vars, out));
    cr_assert (s_eq (jr_out_payload (out), hex));
    jr_out_destroy (&out);
    free ((void *)vars.ptr);

    vars = s_vars (1, "rounds", "i:0");
    out = jr_out_new (1024);
    cr_assert_not (s_run_task ("sha256", vars, out));
    jr_out_destroy (&out);
    free ((void *)vars.ptr);
}

//  What PROTOCOL.md section 10 says of each built-in's defaults and refusals.
Test (worker_tasks, documented_defaults_and_refusals)
{
    const struct {
        const char *task;
        jr_bytes_t vars;
        bool success;
        const char *text;  //  the payload on success, the start of the error else
    } cases[] = {
        { "sha256",
          { NULL, 0 },
          true,
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { "sleep", { NULL, 0 }, true, "slept 0" },
        { "sleep", s_vars (1, "ms", "s:5"), true, "slept 5" },
        { "echo", s_vars (1, "msg", "i:5"), false, "INVALID: var msg" },
        { "sleep", s_vars (1, "ms", "i:-1"), false, "INVALID: var ms" },
        { "sleep", s_vars (1, "ms", "s: 5"), false, "INVALID: var ms" },
        { "sha256", s_vars (1, "data", "i:1"), false, "INVALID: var data" },
        { "sha256", s_vars (1, "rounds", "s:x"), false, "INVALID: var rounds" },
        { "fail", s_vars (1, "error", "i:1"), false, "failed on purpose" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jr_out_t *out = jr_out_new (1024);
        bool ok = s_run_task (cases[i].task, cases[i].vars, out);
        cr_assert_eq (ok, cases[i].success, "case %zu (%s): %s", i, cases[i].task,
                      jr_out_error (out));
        if (ok)
            cr_assert (s_eq (jr_out_payload (out), cases[i].text), "case %zu: payload %.*s", i,
                       (int)jr_out_payload (out).len, (const char *)jr_out_payload (out).ptr);
        else
            cr_assert (strncmp (jr_out_error (out), cases[i].text, strlen (cases[i].text)) == 0,
                       "case %zu: error %s", i, jr_out_error (out));
        //  Bad vars fail the same way on every attempt: not worth a retry.
        bool refused = strncmp (cases[i].text, "INVALID", 7) == 0;
        cr_assert_eq (jr_out_is_permanent (out), refused, "case %zu: permanent", i);
        jr_out_destroy (&out);
        free ((void *)cases[i].vars.ptr);
    }
}

//  A key that is not a string names no var: it is skipped, wherever it
//  stands in the map, by every reader (issue 10, item 17).
Test (worker_tasks, vars_skip_keys_that_are_not_strings)
{
    //  {1: 2, [3]: nil, "msg": "x", "ms": 7, "permanent": true}
    static const uint8_t map[] = { 0x85, 0x01, 0x02, 0x91, 0x03, 0xc0, 0xa3, 'm',  's',
                                   'g',  0xa1, 'x',  0xa2, 'm',  's',  0x07, 0xa9, 'p',
                                   'e',  'r',  'm',  'a',  'n',  'e',  'n',  't',  0xc3 };
    jr_bytes_t vars = { map, sizeof map };
    jr_bytes_t msg;
    int64_t ms = 0;
    cr_assert_eq (jr_vars_bytes (vars, "msg", &msg), 0);
    cr_assert (s_eq (msg, "x"));
    cr_assert_eq (jr_vars_int (vars, "ms", &ms), 0);
    cr_assert_eq (ms, 7);
    cr_assert_eq (jr_vars_bytes (vars, "none", &msg), JR_ENOT_FOUND);

    jr_out_t *out = jr_out_new (1024);
    cr_assert (s_run_task ("echo", vars, out), "echo: %s", jr_out_error (out));
    cr_assert (s_eq (jr_out_payload (out), "x"));
    jr_out_destroy (&out);
    out = jr_out_new (1024);
    cr_assert_not (s_run_task ("fail", vars, out));
    cr_assert (jr_out_is_permanent (out), "permanent: true after a non-string key");
    jr_out_destroy (&out);

    //  {1: 2, "argv": ["true"]}
    static const uint8_t exec_map[] = { 0x82, 0x01, 0x02, 0xa4, 'a', 'r', 'g',
                                        'v',  0x91, 0xa4, 't',  'r', 'u', 'e' };
    out = jr_out_new (1024);
    cr_assert (s_run_task ("exec", (jr_bytes_t){ exec_map, sizeof exec_map }, out), "exec: %s",
               jr_out_error (out));
    jr_out_destroy (&out);
}

//  -------------------------------------------------------------------------
//  Runs and the executor

Test (worker_run, deadline_result)
{
    jr_bytes_t vars = s_vars (1, "ms", "i:60000");
    jr_job_t job;
    s_job (&job, "sleep", vars, 20);
    jr_run_t *run = jr_run_new (&job, jr_task_sleep, 1024);
    jr_run_execute (run);
    jr_job_t *result = jr_run_result (run, "w@h");
    cr_assert_not (result->success);
    cr_assert_eq (result->state, JR_STATE_FAILED);
    //  One prefix, then the task's own words.
    const char *want = "DEADLINE_EXCEEDED: timeout_ms=20; interrupted sleep of 60000 ms";
    cr_assert (s_eq (result->error, want), "%.*s", (int)result->error.len,
               (const char *)result->error.ptr);
    cr_assert (s_eq (result->worker, "w@h"));
    cr_assert_eq (result->dispatched_us, job.dispatched_us);
    cr_assert_neq (result->started_us, 0);
    cr_assert_neq (result->completed_us, 0);
    cr_assert_eq (memcmp (result->id, job.id, JR_ID_SIZE), 0);
    jr_job_destroy (&result);
    jr_run_destroy (&run);
    cr_assert_null (run);
    free ((void *)vars.ptr);
}

Test (worker_run, payload_too_large)
{
    jr_bytes_t vars = s_vars (1, "msg", "s:hello");
    jr_job_t job;
    s_job (&job, "echo", vars, 0);
    jr_run_t *run = jr_run_new (&job, jr_task_echo, 3);
    jr_run_execute (run);
    jr_job_t *result = jr_run_result (run, "w@h");
    cr_assert_not (result->success);
    cr_assert (s_starts (result->error, "TOO_LARGE"));
    jr_job_destroy (&result);
    jr_run_destroy (&run);
    free ((void *)vars.ptr);
}

static atomic_int s_calls;

static bool
s_counted (jr_ctx_t *ctx, jr_out_t *out)
{
    (void)ctx;
    (void)out;
    atomic_fetch_add (&s_calls, 1);
    return true;
}

//  A prefetched run can be cancelled, or run out of time, while it waits
//  for a thread: then its task is never called, and its result says why.
Test (worker_run, run_ended_before_its_start_does_not_start)
{
    jr_bytes_t vars = s_vars (1, "msg", "s:x");
    jr_job_t job;
    s_job (&job, "echo", vars, 0);
    jr_run_t *run = jr_run_new (&job, s_counted, 1024);
    jr_ctx_cancel (run->ctx, JR_ECANCELLED);
    jr_run_execute (run);
    jr_job_t *result = jr_run_result (run, "w@h");
    cr_assert_eq (atomic_load (&s_calls), 0);
    cr_assert_not (result->success);
    cr_assert (s_starts (result->error, "CANCELLED"), "%.*s", (int)result->error.len,
               (const char *)result->error.ptr);
    jr_job_destroy (&result);
    jr_run_destroy (&run);

    s_job (&job, "echo", vars, 1);
    run = jr_run_new (&job, s_counted, 1024);
    zclock_sleep (5);
    jr_run_execute (run);
    result = jr_run_result (run, "w@h");
    cr_assert_eq (atomic_load (&s_calls), 0);
    cr_assert_not (result->success);
    cr_assert (s_starts (result->error, "DEADLINE_EXCEEDED"), "%.*s", (int)result->error.len,
               (const char *)result->error.ptr);
    jr_job_destroy (&result);
    jr_run_destroy (&run);

    s_job (&job, "echo", vars, 0);
    run = jr_run_new (&job, s_counted, 1024);
    jr_run_execute (run);
    cr_assert (run->success);
    cr_assert_eq (atomic_load (&s_calls), 1);
    jr_run_destroy (&run);
    free ((void *)vars.ptr);
}

static atomic_bool s_in_task;

//  Holds its thread until its context ends.
static bool
s_block (jr_ctx_t *ctx, jr_out_t *out)
{
    (void)out;
    atomic_store (&s_in_task, true);
    while (!jr_ctx_done (ctx))
        zclock_sleep (1);
    return false;
}

//  A run waiting for a thread whose context ends is swept back unrun, and
//  a sweep of all takes back every waiting run, unstamped; the run a thread
//  has is left to its task.
Test (worker_run, executor_sweeps_back_waiting_runs)
{
    jr_executor_t *executor = jr_executor_new (1);
    jr_bytes_t vars = s_vars (1, "msg", "s:x");
    jr_job_t job;
    s_job (&job, "echo", vars, 0);
    jr_run_t *busy = jr_run_new (&job, s_block, 1024);
    jr_run_t *ended = jr_run_new (&job, s_counted, 1024);
    jr_run_t *held = jr_run_new (&job, s_counted, 1024);
    jr_executor_submit (executor, busy);
    jr_executor_submit (executor, ended);
    jr_executor_submit (executor, held);
    int64_t until = zclock_mono () + S_WAIT_MS;
    while (!atomic_load (&s_in_task) && zclock_mono () < until)
        zclock_sleep (1);
    cr_assert (atomic_load (&s_in_task), "the thread took the first run");
    cr_assert_eq (jr_executor_sweep (executor, false), 0, "nothing has ended");
    jr_ctx_cancel (ended->ctx, JR_ECANCELLED);
    cr_assert_eq (jr_executor_sweep (executor, false), 1);
    jr_run_t *back = jr_executor_take (executor);
    cr_assert_eq (back, ended);
    cr_assert_null (back->next);
    cr_assert_not (back->success);
    cr_assert_neq (back->started_us, 0, "stamped: its result says why it ended");
    jr_run_destroy (&back);

    cr_assert_eq (jr_executor_sweep (executor, true), 1, "the busy run is the thread's");
    back = jr_executor_take (executor);
    cr_assert_eq (back, held);
    cr_assert_null (back->next);
    cr_assert_eq (back->started_us, 0, "never started");
    jr_run_destroy (&back);

    //  The thread is still in its task; it comes back once cancelled.
    jr_ctx_cancel (busy->ctx, JR_ECANCELLED);
    back = NULL;
    until = zclock_mono () + S_WAIT_MS;
    while (!back && zclock_mono () < until) {
        struct pollfd item = { .fd = jr_executor_fd (executor), .events = POLLIN };
        poll (&item, 1, 100);
        back = jr_executor_take (executor);
    }
    cr_assert_eq (back, busy);
    cr_assert_null (back->next);
    jr_run_destroy (&back);
    cr_assert_eq (atomic_load (&s_calls), 0, "no waiting run's task was called");
    jr_executor_destroy (&executor, 1000);
    free ((void *)vars.ptr);
}

Test (worker_run, executor_returns_every_run)
{
    jr_executor_t *executor = jr_executor_new (3);
    jr_bytes_t vars = s_vars (1, "msg", "s:x");
    int n = 20, back = 0;
    for (int i = 0; i < n; i++) {
        jr_job_t job;
        s_job (&job, "echo", vars, 0);
        jr_executor_submit (executor, jr_run_new (&job, jr_task_echo, 1024));
    }
    int64_t until = zclock_mono () + S_WAIT_MS;
    while (back < n && zclock_mono () < until) {
        struct pollfd item = { .fd = jr_executor_fd (executor), .events = POLLIN };
        poll (&item, 1, 100);
        jr_run_t *run = jr_executor_take (executor);
        while (run) {
            jr_run_t *next = run->next;
            cr_assert (run->success);
            cr_assert (s_eq (jr_out_payload (run->out), "x"));
            jr_run_destroy (&run);
            back++;
            run = next;
        }
    }
    cr_assert_eq (back, n);
    jr_executor_destroy (&executor, 1000);
    cr_assert_null (executor);
    free ((void *)vars.ptr);
}

//  -------------------------------------------------------------------------
//  The protocol, against a fake broker and a fake ingester (ROUTERs)

//  The worker's name, unique to the test's process: fakes bind ephemeral
//  ports on a shared machine, so strangers (other tests' clients and workers
//  finding a port reused) may talk to them; only our worker is listened to.
static char s_name[32];

typedef struct {
    jr_worker_t *worker;
    pthread_t thread;
    int rc;
} s_running_t;

static void *
s_worker_thread (void *arg)
{
    s_running_t *self = arg;
    self->rc = jr_worker_run (self->worker);
    return NULL;
}

static void
s_start (s_running_t *self, jr_fake_router_t *broker, jr_fake_router_t *ingester,
         jr_worker_config_t cfg)
{
    cfg.broker = broker->endpoint;
    cfg.ingester = ingester->endpoint;
    snprintf (s_name, sizeof s_name, "tw-%d", (int)getpid ());
    cfg.name = s_name;
    self->worker = jr_worker_new (&cfg);
    cr_assert (self->worker);
    pthread_create (&self->thread, NULL, s_worker_thread, self);
}

static int
s_stop (s_running_t *self)
{
    jr_worker_stop (self->worker);
    pthread_join (self->thread, NULL);
    jr_worker_destroy (&self->worker);
    return self->rc;
}

//  Receive RESULT messages until n distinct results arrived; copies them.
static void
s_collect_results (jr_fake_router_t *ingester, jr_job_t **results, int n)
{
    int got = 0;
    while (got < n) {
        cr_assert (jr_fake_router_expect (ingester, JR_MSG_RESULT, S_WAIT_MS), "RESULT %d of %d",
                   got + 1, n);
        for (uint32_t i = 0; i < ingester->msg->njobs; i++) {
            const jr_job_t *job = &ingester->msg->jobs[i];
            bool seen = false;
            for (int k = 0; k < got; k++)
                seen |= memcmp (results[k]->id, job->id, JR_ID_SIZE) == 0;
            if (!seen) {
                cr_assert_lt (got, n);
                results[got++] = jr_job_dup (job);
            }
        }
    }
}

static jr_job_t *
s_find (jr_job_t **results, int n, const uint8_t id[JR_ID_SIZE])
{
    for (int i = 0; i < n; i++)
        if (memcmp (results[i]->id, id, JR_ID_SIZE) == 0)
            return results[i];
    cr_assert_fail ("result not found");
    return NULL;
}

//  Receive DONE messages until n marks arrived; marks copied into out.
static void
s_collect_done (jr_fake_router_t *broker, jr_mark_t *out, int n)
{
    int got = 0;
    while (got < n) {
        cr_assert (jr_fake_router_expect (broker, JR_MSG_DONE, S_WAIT_MS), "DONE mark %d of %d",
                   got + 1, n);
        for (uint32_t i = 0; i < broker->msg->nmarks; i++) {
            cr_assert_lt (got, n, "more DONE marks than results");
            out[got++] = broker->msg->marks[i];
        }
    }
}

static bool
s_has_task (const jr_msg_t *ready, const char *name)
{
    for (uint32_t i = 0; i < ready->ntasks; i++)
        if (s_eq (ready->tasks[i], name))
            return true;
    return false;
}

Test (worker_protocol, dispatch_result_ack_done, .timeout = 60)
{
    jr_fake_router_t broker, ingester;
    jr_fake_router_init (&broker, s_name);
    jr_fake_router_init (&ingester, s_name);
    s_running_t w;
    s_start (&w, &broker, &ingester,
             (jr_worker_config_t){
                 .concurrency = 4, .heartbeat_ms = 200, .liveness_ms = 60000, .resend_ms = 60000 });

    cr_assert (jr_fake_router_expect (&broker, JR_MSG_READY, S_WAIT_MS));
    cr_assert (s_eq (broker.msg->name, s_name));
    cr_assert_gt (broker.msg->host.len, 0);
    cr_assert_eq (broker.msg->slots, 4);
    for (const char **t = (const char *[]){ "echo", "sleep", "fail", "sha256", NULL }; *t; t++)
        cr_assert (s_has_task (broker.msg, *t), "READY lists %s", *t);

    jr_bytes_t v_echo = s_vars (1, "msg", "s:hello");
    jr_bytes_t v_fail = s_vars (1, "error", "s:boom");
    jr_bytes_t v_sleep = s_vars (1, "ms", "i:60000");
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_DISPATCH);
    s_job (jr_msg_add_job (msg), "echo", v_echo, 0);
    s_job (jr_msg_add_job (msg), "fail", v_fail, 0);
    s_job (jr_msg_add_job (msg), "sleep", v_sleep, 100);  //  deadline well before 60 s
    jr_job_t sent[3];
    memcpy (sent, msg->jobs, sizeof sent);
    jr_fake_router_send (&broker, msg);

    jr_job_t *results[3];
    s_collect_results (&ingester, results, 3);
    char host[256];
    gethostname (host, sizeof host);
    char ident[300];
    snprintf (ident, sizeof ident, "%s@%s", s_name, host);

    jr_job_t *echo = s_find (results, 3, sent[0].id);
    cr_assert (echo->success);
    cr_assert_eq (echo->state, JR_STATE_SUCCEEDED);
    cr_assert (s_eq (echo->payload, "hello"));
    cr_assert (s_eq (echo->worker, ident));
    cr_assert_eq (echo->attempt, 1);
    cr_assert_eq (echo->dispatched_us, sent[0].dispatched_us);
    cr_assert_eq (echo->accepted_us, sent[0].accepted_us);
    cr_assert_neq (echo->started_us, 0);
    cr_assert_neq (echo->completed_us, 0);

    //  max_attempts 0 counts as 1: a failed first attempt is the last.
    jr_job_t *fail = s_find (results, 3, sent[1].id);
    cr_assert_not (fail->success);
    cr_assert_eq (fail->state, JR_STATE_DEAD);
    cr_assert (s_eq (fail->error, "boom"));

    jr_job_t *slept = s_find (results, 3, sent[2].id);
    cr_assert_not (slept->success);
    cr_assert_eq (slept->state, JR_STATE_EXPIRED, "its only attempt ran out of time");
    cr_assert (s_starts (slept->error, "DEADLINE_EXCEEDED"), "error: %.*s", (int)slept->error.len,
               (const char *)slept->error.ptr);

    //  No DONE before the ACK: credit comes back only for stored results.
    jr_msg_reset (msg, JR_MSG_ACK);
    for (int i = 0; i < 3; i++)
        jr_msg_add_mark (msg, sent[i].id, 1, 0);
    jr_fake_router_send (&ingester, msg);

    jr_mark_t marks[3];
    s_collect_done (&broker, marks, 3);
    for (int i = 0; i < 3; i++) {
        jr_job_t *result = s_find (results, 3, marks[i].id);
        cr_assert_eq (marks[i].attempt, 1);
        cr_assert_eq (marks[i].code, result->state);
    }

    cr_assert_eq (s_stop (&w), 0);
    for (int i = 0; i < 3; i++)
        jr_job_destroy (&results[i]);
    jr_msg_destroy (&msg);
    free ((void *)v_echo.ptr);
    free ((void *)v_fail.ptr);
    free ((void *)v_sleep.ptr);
    jr_fake_router_destroy (&broker);
    jr_fake_router_destroy (&ingester);
}

Test (worker_protocol, resend_until_acked, .timeout = 60)
{
    jr_fake_router_t broker, ingester;
    jr_fake_router_init (&broker, s_name);
    jr_fake_router_init (&ingester, s_name);
    s_running_t w;
    s_start (&w, &broker, &ingester,
             (jr_worker_config_t){ .concurrency = 2, .liveness_ms = 60000, .resend_ms = 100 });
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_READY, S_WAIT_MS));

    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_DISPATCH);
    jr_job_t *job = jr_msg_add_job (msg);
    s_job (job, "echo", (jr_bytes_t){ NULL, 0 }, 0);
    job->attempt = 3;
    uint8_t id[JR_ID_SIZE];
    memcpy (id, job->id, JR_ID_SIZE);
    jr_fake_router_send (&broker, msg);

    //  Not ACKed: it comes again, and again.
    for (int i = 0; i < 3; i++) {
        cr_assert (jr_fake_router_expect (&ingester, JR_MSG_RESULT, S_WAIT_MS), "send %d", i + 1);
        cr_assert_eq (ingester.msg->njobs, 1);
        cr_assert_eq (memcmp (ingester.msg->jobs[0].id, id, JR_ID_SIZE), 0);
        cr_assert_eq (ingester.msg->jobs[0].attempt, 3);
    }
    //  An ACK for another attempt, or one saying "not stored", changes nothing.
    jr_msg_reset (msg, JR_MSG_ACK);
    jr_msg_add_mark (msg, id, 2, 0);
    jr_msg_add_mark (msg, id, 3, JR_EDISK_FULL);
    jr_msg_add_mark (msg, id, 3, JR_EIO);
    jr_fake_router_send (&ingester, msg);
    cr_assert (jr_fake_router_expect (&ingester, JR_MSG_RESULT, S_WAIT_MS));
    cr_assert_eq (memcmp (ingester.msg->jobs[0].id, id, JR_ID_SIZE), 0);

    jr_msg_reset (msg, JR_MSG_ACK);
    jr_msg_add_mark (msg, id, 3, 0);
    jr_fake_router_send (&ingester, msg);
    jr_mark_t mark;
    s_collect_done (&broker, &mark, 1);
    cr_assert_eq (memcmp (mark.id, id, JR_ID_SIZE), 0);
    cr_assert_eq (mark.attempt, 3);
    cr_assert_eq (mark.code, JR_STATE_SUCCEEDED);

    //  Resends in flight may still arrive; a second ACK must not make a
    //  second DONE. Drain, ACK again, and check that no DONE follows.
    while (jr_fake_router_expect (&ingester, JR_MSG_RESULT, 500))
        ;
    jr_fake_router_send (&ingester, msg);
    cr_assert_not (jr_fake_router_expect (&broker, JR_MSG_DONE, 500));

    cr_assert_eq (s_stop (&w), 0);
    jr_msg_destroy (&msg);
    jr_fake_router_destroy (&broker);
    jr_fake_router_destroy (&ingester);
}

Test (worker_protocol, unknown_task_and_stale_ack, .timeout = 60)
{
    jr_fake_router_t broker, ingester;
    jr_fake_router_init (&broker, s_name);
    jr_fake_router_init (&ingester, s_name);
    s_running_t w;
    s_start (&w, &broker, &ingester,
             (jr_worker_config_t){ .concurrency = 1, .liveness_ms = 60000, .resend_ms = 60000 });
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_READY, S_WAIT_MS));
    cr_assert_eq (broker.msg->slots, 1);

    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_DISPATCH);
    s_job (jr_msg_add_job (msg), "no-such-task", (jr_bytes_t){ NULL, 0 }, 0);
    uint8_t id[JR_ID_SIZE];
    memcpy (id, msg->jobs[0].id, JR_ID_SIZE);
    jr_fake_router_send (&broker, msg);

    cr_assert (jr_fake_router_expect (&ingester, JR_MSG_RESULT, S_WAIT_MS));
    cr_assert_eq (ingester.msg->njobs, 1);
    const jr_job_t *result = &ingester.msg->jobs[0];
    cr_assert_not (result->success);
    cr_assert (s_eq (result->error, "UNKNOWN_TASK: no-such-task"));

    //  A STALE_ATTEMPT ACK settles the result too: DONE, and no resend.
    jr_msg_reset (msg, JR_MSG_ACK);
    jr_msg_add_mark (msg, id, 1, JR_ESTALE);
    jr_fake_router_send (&ingester, msg);
    jr_mark_t mark;
    s_collect_done (&broker, &mark, 1);
    cr_assert_eq (memcmp (mark.id, id, JR_ID_SIZE), 0);
    cr_assert_eq (mark.code, JR_STATE_FAILED);

    cr_assert_eq (s_stop (&w), 0);
    jr_msg_destroy (&msg);
    jr_fake_router_destroy (&broker);
    jr_fake_router_destroy (&ingester);
}

//  A metric's value by its stats-line key; the test fails if there is none.
static int64_t
s_metric (jr_metrics_t *metrics, const char *key)
{
    int64_t value;
    cr_assert (jr_metrics_value (metrics, key, &value), "metric %s", key);
    return value;
}

//  The stats line's figures live in the worker's registry: a success, a
//  failure, a resend, and a result never ACKed that goes back at exit.
Test (worker_protocol, figures_in_its_metrics, .timeout = 60)
{
    jr_fake_router_t broker, ingester;
    jr_fake_router_init (&broker, s_name);
    jr_fake_router_init (&ingester, s_name);
    s_running_t w;
    s_start (&w, &broker, &ingester,
             (jr_worker_config_t){ .concurrency = 1, .liveness_ms = 60000, .resend_ms = 100 });
    jr_metrics_t *metrics = jr_worker_metrics (w.worker);
    cr_assert_eq (s_metric (metrics, "jobs_succeeded"), 0);
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_READY, S_WAIT_MS));

    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_DISPATCH);
    s_job (jr_msg_add_job (msg), "echo", (jr_bytes_t){ NULL, 0 }, 0);
    s_job (jr_msg_add_job (msg), "no-such-task", (jr_bytes_t){ NULL, 0 }, 0);
    jr_job_t sent[2];
    memcpy (sent, msg->jobs, sizeof sent);
    jr_fake_router_send (&broker, msg);
    jr_job_t *results[2];
    s_collect_results (&ingester, results, 2);
    cr_assert (jr_fake_router_expect (&ingester, JR_MSG_RESULT, S_WAIT_MS),
               "a resend, for want of an ACK");

    jr_msg_reset (msg, JR_MSG_ACK);
    jr_msg_add_mark (msg, sent[0].id, 1, 0);
    jr_fake_router_send (&ingester, msg);
    jr_mark_t mark;
    s_collect_done (&broker, &mark, 1);
    cr_assert_eq (memcmp (mark.id, sent[0].id, JR_ID_SIZE), 0);

    jr_worker_stop (w.worker);
    pthread_join (w.thread, NULL);
    cr_assert_eq (w.rc, -1, "the failed result was never ACKed");
    cr_assert_eq (s_metric (metrics, "jobs_succeeded"), 1);
    cr_assert_eq (s_metric (metrics, "jobs_failed"), 1);
    cr_assert_geq (s_metric (metrics, "results_resent"), 1);
    cr_assert_eq (s_metric (metrics, "jobs_handed_back"), 1);
    cr_assert_eq (s_metric (metrics, "jobs_running"), 0);
    cr_assert_eq (s_metric (metrics, "results_unacked"), 0, "handed back at exit");
    jr_worker_destroy (&w.worker);
    for (int i = 0; i < 2; i++)
        jr_job_destroy (&results[i]);
    jr_msg_destroy (&msg);
    jr_fake_router_destroy (&broker);
    jr_fake_router_destroy (&ingester);
}

//  A task that runs until the test opens the gate (or its context ends).
static atomic_bool s_gate;
static atomic_bool s_gate_started;  //  set when a gate task starts

static bool
s_task_gate (jr_ctx_t *ctx, jr_out_t *out)
{
    atomic_store (&s_gate_started, true);
    while (!atomic_load (&s_gate))
        if (jr_ctx_sleep (ctx, 5) != 0) {
            jr_out_errorf (out, "gate closed");
            return false;
        }
    return jr_out_write (out, "open", 4) == 0;
}

Test (worker_protocol, unknown_peer_ready_counts_held_jobs, .timeout = 60)
{
    cr_assert_eq (jr_tasks_register ("gate", s_task_gate), 0);
    jr_fake_router_t broker, ingester;
    jr_fake_router_init (&broker, s_name);
    jr_fake_router_init (&ingester, s_name);
    s_running_t w;
    s_start (&w, &broker, &ingester,
             (jr_worker_config_t){ .concurrency = 2, .liveness_ms = 60000, .resend_ms = 60000 });
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_READY, S_WAIT_MS));
    cr_assert_eq (broker.msg->slots, 2);
    cr_assert (s_has_task (broker.msg, "gate"));

    //  One job running, then the broker says it does not know us.
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_DISPATCH);
    s_job (jr_msg_add_job (msg), "gate", (jr_bytes_t){ NULL, 0 }, 0);
    uint8_t id[JR_ID_SIZE];
    memcpy (id, msg->jobs[0].id, JR_ID_SIZE);
    jr_fake_router_send (&broker, msg);
    jr_msg_reset (msg, JR_MSG_ERROR);
    msg->code = JR_EUNKNOWN_PEER;
    msg->text = (jr_bytes_t){ (const uint8_t *)"say READY", 9 };
    jr_fake_router_send (&broker, msg);

    //  READY again, advertising only the free slot out of a capacity of 2:
    //  the DONE of the held job gives the broker its slot back.
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_READY, S_WAIT_MS));
    cr_assert_eq (broker.msg->slots, 1);
    cr_assert_eq (broker.msg->capacity, 2);

    atomic_store (&s_gate, true);
    cr_assert (jr_fake_router_expect (&ingester, JR_MSG_RESULT, S_WAIT_MS));
    cr_assert (ingester.msg->jobs[0].success);
    jr_msg_reset (msg, JR_MSG_ACK);
    jr_msg_add_mark (msg, id, 1, 0);
    jr_fake_router_send (&ingester, msg);
    jr_mark_t mark;
    s_collect_done (&broker, &mark, 1);
    cr_assert (memcmp (mark.id, id, JR_ID_SIZE) == 0);

    cr_assert_eq (s_stop (&w), 0);
    jr_msg_destroy (&msg);
    jr_fake_router_destroy (&broker);
    jr_fake_router_destroy (&ingester);
}

Test (worker_protocol, silent_broker_reconnect, .timeout = 60)
{
    jr_fake_router_t broker, ingester;
    jr_fake_router_init (&broker, s_name);
    jr_fake_router_init (&ingester, s_name);
    s_running_t w;
    s_start (&w, &broker, &ingester,
             (jr_worker_config_t){ .concurrency = 1, .heartbeat_ms = 50, .liveness_ms = 300 });
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_READY, S_WAIT_MS));
    zframe_t *first = zframe_dup (broker.peer);
    //  The fake broker never answers: the worker gives up on the connection
    //  and says READY again from a new socket (a new routing id).
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_READY, S_WAIT_MS));
    cr_assert_not (zframe_eq (first, broker.peer));
    cr_assert_eq (broker.msg->slots, 1);
    zframe_destroy (&first);
    cr_assert_eq (s_stop (&w), 0);
    jr_fake_router_destroy (&broker);
    jr_fake_router_destroy (&ingester);
}

Test (worker_protocol, stop_hands_back, .timeout = 60)
{
    atomic_store (&s_gate, false);
    cr_assert_eq (jr_tasks_register ("gate", s_task_gate), 0);
    jr_fake_router_t broker, ingester;
    jr_fake_router_init (&broker, s_name);
    jr_fake_router_init (&ingester, s_name);
    s_running_t w;
    s_start (&w, &broker, &ingester,
             (jr_worker_config_t){ .concurrency = 1, .liveness_ms = 60000, .resend_ms = 60000 });
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_READY, S_WAIT_MS));
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_DISPATCH);
    s_job (jr_msg_add_job (msg), "gate", (jr_bytes_t){ NULL, 0 }, 0);
    uint8_t id[JR_ID_SIZE];
    memcpy (id, msg->jobs[0].id, JR_ID_SIZE);
    jr_fake_router_send (&broker, msg);
    zclock_sleep (50);  //  let it start; if it has not, it is handed back all the same

    //  A stop is a drain without grace: BYE, then the job comes back unrun
    //  (DONE code QUEUED) and no result reaches the ingester.
    jr_worker_stop (w.worker);
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_BYE, S_WAIT_MS));
    jr_mark_t mark;
    s_collect_done (&broker, &mark, 1);
    cr_assert_eq (memcmp (mark.id, id, JR_ID_SIZE), 0);
    cr_assert_eq (mark.code, JR_STATE_QUEUED);
    pthread_join (w.thread, NULL);
    cr_assert_eq (w.rc, 0);  //  everything reported before exit
    cr_assert_not (jr_fake_router_expect (&ingester, JR_MSG_RESULT, 200));
    jr_worker_destroy (&w.worker);
    jr_msg_destroy (&msg);
    jr_fake_router_destroy (&broker);
    jr_fake_router_destroy (&ingester);
}

Test (worker_protocol, bad_endpoint)
{
    cr_assert_null (jr_worker_new (&(jr_worker_config_t){ .broker = "nonsense://x" }));
    cr_assert_null (jr_worker_new (&(jr_worker_config_t){ .ingester = "tcp://" }));
}

Test (worker_protocol, serves_only_listed_tasks, .timeout = 60)
{
    cr_assert_null (jr_worker_new (&(jr_worker_config_t){ .tasks = "echo,no-such-task" }));
    cr_assert_null (jr_worker_new (&(jr_worker_config_t){ .tasks = " , " }));
    jr_fake_router_t broker, ingester;
    jr_fake_router_init (&broker, s_name);
    jr_fake_router_init (&ingester, s_name);
    s_running_t w;
    s_start (&w, &broker, &ingester,
             (jr_worker_config_t){ .concurrency = 1, .liveness_ms = 60000, .tasks = "echo" });
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_READY, S_WAIT_MS));
    cr_assert_eq (broker.msg->ntasks, 1);
    cr_assert (s_has_task (broker.msg, "echo"));

    //  A registered task it was not asked to serve is refused like an unknown one.
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_DISPATCH);
    s_job (jr_msg_add_job (msg), "sleep", (jr_bytes_t){ NULL, 0 }, 0);
    jr_fake_router_send (&broker, msg);
    cr_assert (jr_fake_router_expect (&ingester, JR_MSG_RESULT, S_WAIT_MS));
    cr_assert (s_eq (ingester.msg->jobs[0].error, "UNKNOWN_TASK: sleep"));
    jr_msg_reset (msg, JR_MSG_ACK);
    jr_msg_add_mark (msg, ingester.msg->jobs[0].id, 1, 0);
    jr_fake_router_send (&ingester, msg);
    jr_mark_t mark;
    s_collect_done (&broker, &mark, 1);

    cr_assert_eq (s_stop (&w), 0);
    jr_msg_destroy (&msg);
    jr_fake_router_destroy (&broker);
    jr_fake_router_destroy (&ingester);
}

//  -------------------------------------------------------------------------
//  Reliability: result states, CANCEL, drain, ingester outage

static void
s_ack (jr_fake_router_t *ingester, const uint8_t id[JR_ID_SIZE], uint32_t attempt, int code)
{
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_ACK);
    jr_msg_add_mark (msg, id, attempt, code);
    jr_fake_router_send (ingester, msg);
    jr_msg_destroy (&msg);
}

//  Dispatch one job from the fake broker; its id goes to id.
static void
s_dispatch_one (jr_fake_router_t *broker, const char *task, jr_bytes_t vars, uint8_t id[JR_ID_SIZE])
{
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_DISPATCH);
    s_job (jr_msg_add_job (msg), task, vars, 0);
    memcpy (id, msg->jobs[0].id, JR_ID_SIZE);
    jr_fake_router_send (broker, msg);
    jr_msg_destroy (&msg);
}

//  Wait for jr_worker_run to return by itself; its return code.
static int
s_join (s_running_t *self)
{
    pthread_join (self->thread, NULL);
    jr_worker_destroy (&self->worker);
    return self->rc;
}

static void
s_wait_gate_started (void)
{
    int64_t until = zclock_mono () + S_WAIT_MS;
    while (!atomic_load (&s_gate_started) && zclock_mono () < until)
        zclock_sleep (5);
    cr_assert (atomic_load (&s_gate_started), "the gate task started");
}

//  Expect one DONE mark, for id, with code.
static void
s_expect_done (jr_fake_router_t *broker, const uint8_t id[JR_ID_SIZE], int code)
{
    jr_mark_t mark;
    s_collect_done (broker, &mark, 1);
    cr_assert_eq (memcmp (mark.id, id, JR_ID_SIZE), 0, "DONE for the expected job");
    cr_assert_eq (mark.code, code, "DONE code %d, expected %d", mark.code, code);
}

//  Fake peers up and a worker on a thread that said READY.
static void
s_up (jr_fake_router_t *broker, jr_fake_router_t *ingester, s_running_t *w, jr_worker_config_t cfg)
{
    jr_fake_router_init (broker, s_name);
    jr_fake_router_init (ingester, s_name);
    s_start (w, broker, ingester, cfg);
    cr_assert (jr_fake_router_expect (broker, JR_MSG_READY, S_WAIT_MS));
}

static void
s_down (jr_fake_router_t *broker, jr_fake_router_t *ingester)
{
    jr_fake_router_destroy (broker);
    jr_fake_router_destroy (ingester);
}

//  A closed gate, registered for this test's process.
static void
s_gate_init (void)
{
    atomic_store (&s_gate, false);
    atomic_store (&s_gate_started, false);
    cr_assert_eq (jr_tasks_register ("gate", s_task_gate), 0);
}

Test (worker_retry, result_states, .timeout = 60)
{
    jr_fake_router_t broker, ingester;
    s_running_t w;
    s_up (&broker, &ingester, &w,
          (jr_worker_config_t){ .concurrency = 16, .liveness_ms = 60000, .resend_ms = 60000 });

    jr_bytes_t v_fail = s_vars (1, "error", "s:boom");
    jr_bytes_t v_perm = s_vars (2, "error", "s:bad input", "permanent", "b:true");
    jr_bytes_t v_perm_int = s_vars (1, "permanent", "i:1");
    jr_bytes_t v_perm_text = s_vars (1, "permanent", "s:true");
    jr_bytes_t v_not_perm = s_vars (1, "permanent", "b:false");
    jr_bytes_t v_sleep = s_vars (1, "ms", "i:60000");
    jr_bytes_t none = { NULL, 0 };
    const struct {
        const char *task;
        jr_bytes_t vars;
        uint32_t timeout_ms, attempt, max_attempts;
        int want;
    } cases[] = {
        { "fail", v_fail, 0, 1, 3, JR_STATE_SCHEDULED },  //  attempts left: retry
        { "fail", v_fail, 0, 2, 3, JR_STATE_SCHEDULED },
        { "fail", v_fail, 0, 3, 3, JR_STATE_DEAD },    //  the last one
        { "fail", v_fail, 0, 1, 0, JR_STATE_DEAD },    //  0 counts as 1
        { "fail", v_perm, 0, 1, 3, JR_STATE_FAILED },  //  not worth retrying
        { "fail", v_perm_int, 0, 1, 3, JR_STATE_FAILED },
        { "fail", v_perm_text, 0, 1, 3, JR_STATE_FAILED },
        { "fail", v_not_perm, 0, 1, 3, JR_STATE_SCHEDULED },
        { "sleep", v_sleep, 20, 1, 2, JR_STATE_SCHEDULED },  //  a deadline is retryable
        { "sleep", v_sleep, 20, 2, 2, JR_STATE_EXPIRED },    //  on its last attempt
        { "sleep", v_sleep, 20, 1, 0, JR_STATE_EXPIRED },
        { "no-such-task", none, 0, 1, 3, JR_STATE_FAILED },  //  an unknown task is not
        { "echo", none, 0, 3, 3, JR_STATE_SUCCEEDED },
    };
    enum { N = sizeof cases / sizeof cases[0] };
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_DISPATCH);
    for (int i = 0; i < N; i++) {
        jr_job_t *job = jr_msg_add_job (msg);
        s_job (job, cases[i].task, cases[i].vars, cases[i].timeout_ms);
        job->attempt = cases[i].attempt;
        job->max_attempts = cases[i].max_attempts;
    }
    jr_job_t sent[N];
    memcpy (sent, msg->jobs, sizeof sent);
    jr_fake_router_send (&broker, msg);

    jr_job_t *results[N];
    s_collect_results (&ingester, results, N);
    jr_msg_reset (msg, JR_MSG_ACK);
    for (int i = 0; i < N; i++) {
        jr_job_t *result = s_find (results, N, sent[i].id);
        cr_assert_eq (result->state, cases[i].want, "case %d (%s, attempt %u of %u): state %s", i,
                      cases[i].task, cases[i].attempt, cases[i].max_attempts,
                      jr_state_name (result->state));
        cr_assert_eq (result->success, cases[i].want == JR_STATE_SUCCEEDED);
        jr_msg_add_mark (msg, result->id, result->attempt, 0);
    }
    jr_fake_router_send (&ingester, msg);

    //  The DONE mark carries the same state: it is what the broker acts on.
    jr_mark_t marks[N];
    s_collect_done (&broker, marks, N);
    for (int i = 0; i < N; i++) {
        jr_job_t *result = s_find (results, N, marks[i].id);
        cr_assert_eq (marks[i].code, result->state);
        cr_assert_eq (marks[i].attempt, result->attempt);
    }

    cr_assert_eq (s_stop (&w), 0);
    for (int i = 0; i < N; i++)
        jr_job_destroy (&results[i]);
    jr_msg_destroy (&msg);
    free ((void *)v_fail.ptr);
    free ((void *)v_perm.ptr);
    free ((void *)v_perm_int.ptr);
    free ((void *)v_perm_text.ptr);
    free ((void *)v_not_perm.ptr);
    free ((void *)v_sleep.ptr);
    s_down (&broker, &ingester);
}

//  The sleep is a minute and the test times out in 20 s: only a cancel that
//  works lets it pass.
Test (worker_cancel, stops_the_running_attempt_only, .timeout = 20)
{
    s_gate_init ();
    jr_fake_router_t broker, ingester;
    s_running_t w;
    s_up (&broker, &ingester, &w,
          (jr_worker_config_t){ .concurrency = 2, .liveness_ms = 60000, .resend_ms = 60000 });

    jr_bytes_t v_sleep = s_vars (1, "ms", "i:60000");
    uint8_t slept[JR_ID_SIZE], gated[JR_ID_SIZE], other[JR_ID_SIZE];
    s_dispatch_one (&broker, "sleep", v_sleep, slept);
    s_dispatch_one (&broker, "gate", (jr_bytes_t){ NULL, 0 }, gated);
    jr_job_t unknown;
    jr_job_init (&unknown, "x");
    memcpy (other, unknown.id, JR_ID_SIZE);

    //  One mark hits; another names an attempt that does not run here, the
    //  last a job this worker never had: both are ignored.
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_CANCEL);
    jr_msg_add_mark (msg, slept, 1, 0);
    jr_msg_add_mark (msg, gated, 2, 0);
    jr_msg_add_mark (msg, other, 1, 0);
    jr_fake_router_send (&broker, msg);

    jr_job_t *result;
    s_collect_results (&ingester, &result, 1);
    cr_assert_eq (memcmp (result->id, slept, JR_ID_SIZE), 0);
    cr_assert_not (result->success);
    cr_assert_eq (result->state, JR_STATE_CANCELLED);
    cr_assert (s_starts (result->error, "CANCELLED"), "%.*s", (int)result->error.len,
               (const char *)result->error.ptr);
    jr_job_destroy (&result);
    s_ack (&ingester, slept, 1, 0);
    s_expect_done (&broker, slept, JR_STATE_CANCELLED);

    //  The other attempt ran on.
    atomic_store (&s_gate, true);
    s_collect_results (&ingester, &result, 1);
    cr_assert_eq (memcmp (result->id, gated, JR_ID_SIZE), 0);
    cr_assert (result->success);
    cr_assert_eq (result->state, JR_STATE_SUCCEEDED);
    jr_job_destroy (&result);
    s_ack (&ingester, gated, 1, 0);
    s_expect_done (&broker, gated, JR_STATE_SUCCEEDED);

    cr_assert_eq (s_stop (&w), 0);
    jr_msg_destroy (&msg);
    free ((void *)v_sleep.ptr);
    s_down (&broker, &ingester);
}

Test (worker_drain, running_job_finishes_late_dispatch_handed_back, .timeout = 60)
{
    s_gate_init ();
    jr_fake_router_t broker, ingester;
    s_running_t w;
    s_up (&broker, &ingester, &w,
          (jr_worker_config_t){ .concurrency = 2,
                                .heartbeat_ms = 50,
                                .liveness_ms = 60000,
                                .resend_ms = 60000,
                                .grace_ms = 60000 });
    uint8_t gated[JR_ID_SIZE], late[JR_ID_SIZE];
    s_dispatch_one (&broker, "gate", (jr_bytes_t){ NULL, 0 }, gated);
    s_wait_gate_started ();

    jr_worker_drain (w.worker);
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_BYE, S_WAIT_MS));

    //  A DISPATCH that crossed the BYE: handed back at once, never run.
    s_dispatch_one (&broker, "echo", (jr_bytes_t){ NULL, 0 }, late);
    s_expect_done (&broker, late, JR_STATE_QUEUED);
    //  Still alive for the broker while it drains.
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_HEARTBEAT, S_WAIT_MS));

    //  The running job finishes within the grace and is reported as usual.
    atomic_store (&s_gate, true);
    jr_job_t *result;
    s_collect_results (&ingester, &result, 1);
    cr_assert_eq (memcmp (result->id, gated, JR_ID_SIZE), 0, "only the job that ran");
    cr_assert (result->success);
    jr_job_destroy (&result);
    s_ack (&ingester, gated, 1, 0);
    s_expect_done (&broker, gated, JR_STATE_SUCCEEDED);

    //  Nothing held: the worker leaves by itself.
    cr_assert_eq (s_join (&w), 0);
    cr_assert_not (jr_fake_router_expect (&ingester, JR_MSG_RESULT, 200));
    s_down (&broker, &ingester);
}

//  The gate never opens: only the end of the grace (or a second drain) can
//  end the job, and the test's timeout is far below the 60 s grace.
static void
s_drain_hands_back (int grace_ms, bool drain_twice)
{
    s_gate_init ();
    jr_fake_router_t broker, ingester;
    s_running_t w;
    s_up (&broker, &ingester, &w,
          (jr_worker_config_t){
              .concurrency = 1, .liveness_ms = 60000, .resend_ms = 60000, .grace_ms = grace_ms });
    uint8_t gated[JR_ID_SIZE];
    s_dispatch_one (&broker, "gate", (jr_bytes_t){ NULL, 0 }, gated);
    s_wait_gate_started ();

    jr_worker_drain (w.worker);
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_BYE, S_WAIT_MS));
    if (drain_twice)
        jr_worker_drain (w.worker);
    s_expect_done (&broker, gated, JR_STATE_QUEUED);
    cr_assert_eq (s_join (&w), 0);
    //  Handed back, so its (cancelled) result never reaches the ingester.
    cr_assert_not (jr_fake_router_expect (&ingester, JR_MSG_RESULT, 300));
    s_down (&broker, &ingester);
}

Test (worker_drain, job_past_grace_handed_back, .timeout = 20)
{
    s_drain_hands_back (200, false);
}

Test (worker_drain, second_drain_skips_grace, .timeout = 20)
{
    s_drain_hands_back (60000, true);
}

Test (worker_ingester, down_then_up, .timeout = 60)
{
    jr_fake_router_t broker, ingester;
    jr_fake_router_init (&broker, s_name);
    jr_fake_router_init_closed (&ingester, s_name);
    int listener = jr_fake_listener (ingester.endpoint);
    jr_fake_router_open_on (&ingester, listener);
    s_running_t w;
    s_start (&w, &broker, &ingester,
             (jr_worker_config_t){
                 .concurrency = 1, .liveness_ms = 60000, .resend_ms = 100, .backlog = 1 });
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_READY, S_WAIT_MS));
    cr_assert_eq (broker.msg->slots, 1);

    //  One job through while the ingester is up.
    uint8_t first[JR_ID_SIZE], held[JR_ID_SIZE], extra[JR_ID_SIZE];
    s_dispatch_one (&broker, "echo", (jr_bytes_t){ NULL, 0 }, first);
    cr_assert (jr_fake_router_expect (&ingester, JR_MSG_RESULT, S_WAIT_MS));
    s_ack (&ingester, first, 1, 0);
    s_expect_done (&broker, first, JR_STATE_SUCCEEDED);

    //  The ingester goes away; the next result is held, so no DONE, so no
    //  credit back, for a good many resend periods.
    jr_fake_router_close (&ingester);
    s_dispatch_one (&broker, "echo", (jr_bytes_t){ NULL, 0 }, held);
    cr_assert_not (jr_fake_router_expect (&broker, JR_MSG_DONE, 1500));

    //  With its backlog (1 here) full it takes no new job: a READY counts no
    //  free slot. (A job sent anyway, before the broker knew, would run: the
    //  executor is free.)
    (void)extra;
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_ERROR);
    msg->code = JR_EUNKNOWN_PEER;
    jr_fake_router_send (&broker, msg);
    cr_assert (jr_fake_router_expect (&broker, JR_MSG_READY, S_WAIT_MS));
    cr_assert_eq (broker.msg->slots, 0);
    cr_assert_eq (broker.msg->capacity, 1);

    //  Back up: the held result arrives, then its DONE.
    jr_fake_router_open_on (&ingester, listener);
    cr_assert (jr_fake_router_expect (&ingester, JR_MSG_RESULT, S_WAIT_MS));
    cr_assert_eq (ingester.msg->njobs, 1);
    cr_assert_eq (memcmp (ingester.msg->jobs[0].id, held, JR_ID_SIZE), 0);
    s_ack (&ingester, held, 1, 0);
    s_expect_done (&broker, held, JR_STATE_SUCCEEDED);

    //  The resends of the outage did not pile up in the socket to arrive
    //  now: a naive sender would deliver one copy per resend period missed.
    int copies = 0;
    while (jr_fake_router_expect (&ingester, JR_MSG_RESULT, 300)) {
        for (uint32_t i = 0; i < ingester.msg->njobs; i++)
            cr_assert_eq (memcmp (ingester.msg->jobs[i].id, held, JR_ID_SIZE), 0);
        copies++;
    }
    cr_assert_leq (copies, 3, "%d late copies of the held result", copies);

    cr_assert_eq (s_stop (&w), 0);
    jr_msg_destroy (&msg);
    s_down (&broker, &ingester);
    close (listener);
}

//  -------------------------------------------------------------------------
//  Progress and per-task timeouts

typedef struct {
    jr_ctx_t *ctx;
    int calls;
} s_reporter_t;

static void *
s_reporter (void *arg)
{
    s_reporter_t *self = arg;
    for (int i = 1; i <= self->calls; i++)
        jr_ctx_progress (self->ctx, i, "step %d", i);
    return NULL;
}

Test (worker_ctx, progress)
{
    jr_job_t job;
    s_job (&job, "echo", (jr_bytes_t){ NULL, 0 }, 0);
    jr_ctx_t *ctx = jr_ctx_new (&job, 0);
    cr_assert (ctx);
    int32_t value = -1;
    char text[JR_MAX_NOTE];
    size_t len = 99;
    cr_assert_not (jr_ctx_progress_pending (ctx));
    cr_assert_not (jr_ctx_progress_take (ctx, &value, text, &len), "nothing reported yet");

    //  The last report wins; a take clears it.
    jr_ctx_progress (ctx, 1, "one");
    jr_ctx_progress (ctx, 42, "%d of %s", 42, "100");
    cr_assert (jr_ctx_progress_pending (ctx));
    cr_assert (jr_ctx_progress_take (ctx, &value, text, &len));
    cr_assert_eq (value, 42);
    cr_assert_str_eq (text, "42 of 100");
    cr_assert_eq (len, strlen ("42 of 100"));
    cr_assert_not (jr_ctx_progress_pending (ctx));
    cr_assert_not (jr_ctx_progress_take (ctx, &value, text, &len));

    //  Cut to 255 bytes, never inside a UTF-8 sequence.
    char long_text[600];
    memset (long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = 0;
    jr_ctx_progress (ctx, -7, "%s", long_text);
    cr_assert (jr_ctx_progress_take (ctx, &value, text, &len));
    cr_assert_eq (value, -7);
    cr_assert_eq (len, JR_MAX_NOTE - 1);
    cr_assert_eq (strlen (text), JR_MAX_NOTE - 1);
    char utf8[300] = "";
    memset (utf8, 'a', 254);
    strcpy (utf8 + 254, "\xc3\xa9tape");  //  e-acute across the cut at 255
    jr_ctx_progress (ctx, 3, "%s", utf8);
    cr_assert (jr_ctx_progress_take (ctx, &value, text, &len));
    cr_assert_eq (len, 254, "the two-byte character is dropped whole");
    jr_ctx_progress (ctx, 0, NULL);
    cr_assert (jr_ctx_progress_take (ctx, &value, text, &len));
    cr_assert_eq (value, 0);
    cr_assert_eq (len, 0);
    cr_assert_str_eq (text, "");

    //  The notify fd is written once per change not yet taken, not per call.
    int fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    cr_assert_neq (fd, -1);
    jr_ctx_set_notify (ctx, fd);
    for (int i = 0; i < 100; i++)
        jr_ctx_progress (ctx, i, "n=%d", i);
    uint64_t count = 0;
    cr_assert_eq (read (fd, &count, sizeof count), (ssize_t)sizeof count);
    cr_assert_eq (count, 1);
    cr_assert (jr_ctx_progress_take (ctx, &value, text, &len));
    cr_assert_eq (value, 99);
    jr_ctx_progress (ctx, 100, "again");
    cr_assert_eq (read (fd, &count, sizeof count), (ssize_t)sizeof count);
    cr_assert_eq (count, 1);
    cr_assert (jr_ctx_progress_take (ctx, &value, text, &len));

    //  From several threads at once (the executor's): every take is one
    //  whole report, and the last one taken is some thread's last.
    jr_ctx_set_notify (ctx, -1);
    enum { THREADS = 4, CALLS = 20000 };
    s_reporter_t reporters[THREADS];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        reporters[i] = (s_reporter_t){ ctx, CALLS };
        pthread_create (&threads[i], NULL, s_reporter, &reporters[i]);
    }
    int takes = 0;
    for (int i = 0; i < 1000; i++)
        if (jr_ctx_progress_take (ctx, &value, text, &len)) {
            char want[32];
            snprintf (want, sizeof want, "step %d", value);
            cr_assert_str_eq (text, want, "value and text from the same report");
            takes++;
        }
    for (int i = 0; i < THREADS; i++)
        pthread_join (threads[i], NULL);
    cr_assert (jr_ctx_progress_take (ctx, &value, text, &len) || takes > 0);
    cr_assert_str_eq (text, "step 20000");
    close (fd);
    jr_ctx_destroy (&ctx);
}

Test (worker_tasks, sleep_reports_progress)
{
    jr_bytes_t vars = s_vars (1, "ms", "i:250");
    jr_job_t job;
    s_job (&job, "sleep", vars, 0);
    jr_ctx_t *ctx = jr_ctx_new (&job, 0);
    jr_out_t *out = jr_out_new (1024);
    cr_assert (jr_task_sleep (ctx, out));
    cr_assert (s_eq (jr_out_payload (out), "slept 250"));
    //  The last report is the whole sleep.
    int32_t value;
    char text[JR_MAX_NOTE];
    size_t len;
    cr_assert (jr_ctx_progress_take (ctx, &value, text, &len));
    cr_assert_eq (value, 250);
    cr_assert_str_eq (text, "slept 250 of 250 ms");
    jr_out_destroy (&out);
    jr_ctx_destroy (&ctx);
    free ((void *)vars.ptr);
}

//  A long sleep sends PROGRESS to the broker, with its id and attempt, and
//  values that grow; a CANCEL then ends it.
Test (worker_protocol, progress_of_a_running_sleep, .timeout = 60)
{
    jr_fake_router_t broker, ingester;
    s_running_t w;
    s_up (&broker, &ingester, &w,
          (jr_worker_config_t){ .concurrency = 2, .liveness_ms = 60000, .resend_ms = 60000 });
    jr_bytes_t v_sleep = s_vars (1, "ms", "i:60000");
    uint8_t id[JR_ID_SIZE];
    s_dispatch_one (&broker, "sleep", v_sleep, id);

    int32_t last = 0;
    for (int seen = 0; seen < 3;) {
        cr_assert (jr_fake_router_expect (&broker, JR_MSG_PROGRESS, S_WAIT_MS), "PROGRESS %d",
                   seen + 1);
        const jr_msg_t *msg = broker.msg;
        cr_assert_gt (msg->nmarks, 0);
        cr_assert_eq (msg->nnotes, msg->nmarks, "one note per mark");
        for (uint32_t i = 0; i < msg->nmarks; i++) {
            cr_assert_eq (memcmp (msg->marks[i].id, id, JR_ID_SIZE), 0);
            cr_assert_eq (msg->marks[i].attempt, 1);
            const jr_note_t *note = &msg->notes[i];
            cr_assert_gt (note->value, last, "progress grows: %d after %d", note->value, last);
            char want[64];
            snprintf (want, sizeof want, "slept %d of 60000 ms", note->value);
            cr_assert (s_eq (note->text, want), "%.*s", (int)note->text.len,
                       (const char *)note->text.ptr);
            last = note->value;
            seen++;
        }
    }
    printf ("worker: progress of a running sleep: %d ms\n", last);

    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_CANCEL);
    jr_msg_add_mark (msg, id, 1, 0);
    jr_fake_router_send (&broker, msg);
    jr_job_t *result;
    s_collect_results (&ingester, &result, 1);
    cr_assert_eq (result->state, JR_STATE_CANCELLED);
    jr_job_destroy (&result);
    s_ack (&ingester, id, 1, 0);
    s_expect_done (&broker, id, JR_STATE_CANCELLED);
    cr_assert_eq (s_stop (&w), 0);
    jr_msg_destroy (&msg);
    free ((void *)v_sleep.ptr);
    s_down (&broker, &ingester);
}

//  --task-timeout: a job sent with timeout_ms 0 gets its task's deadline,
//  or the "*" default; a task given 0 has none; a job's own timeout wins.
Test (worker_protocol, task_timeout_default, .timeout = 60)
{
    s_gate_init ();
    jr_fake_router_t broker, ingester;
    s_running_t w;
    s_up (&broker, &ingester, &w,
          (jr_worker_config_t){ .concurrency = 4,
                                .liveness_ms = 60000,
                                .resend_ms = 60000,
                                .task_timeouts = "sleep=100, *=150,gate=0" });
    jr_bytes_t v_sleep = s_vars (1, "ms", "i:60000");
    uint8_t slept[JR_ID_SIZE], own[JR_ID_SIZE], gated[JR_ID_SIZE];
    s_dispatch_one (&broker, "sleep", v_sleep, slept);
    s_dispatch_one (&broker, "gate", (jr_bytes_t){ NULL, 0 }, gated);
    jr_msg_t *msg = jr_msg_new ();
    jr_msg_reset (msg, JR_MSG_DISPATCH);
    s_job (jr_msg_add_job (msg), "sleep", v_sleep, 120);
    memcpy (own, msg->jobs[0].id, JR_ID_SIZE);
    jr_fake_router_send (&broker, msg);

    jr_job_t *results[2];
    s_collect_results (&ingester, results, 2);
    jr_job_t *r = s_find (results, 2, slept);
    cr_assert_not (r->success);
    cr_assert_eq (r->state, JR_STATE_EXPIRED);
    cr_assert_eq (r->timeout_ms, 0, "the job keeps its own field");
    cr_assert (s_eq (r->error, "DEADLINE_EXCEEDED: timeout_ms=100 (task default); "
                               "interrupted sleep of 60000 ms"),
               "%.*s", (int)r->error.len, (const char *)r->error.ptr);
    r = s_find (results, 2, own);
    cr_assert (s_eq (r->error, "DEADLINE_EXCEEDED: timeout_ms=120; interrupted sleep of 60000 ms"),
               "%.*s", (int)r->error.len, (const char *)r->error.ptr);
    for (int i = 0; i < 2; i++)
        jr_job_destroy (&results[i]);
    //  gate=0: no deadline, though "*" says 150. It ends when let go.
    cr_assert_not (jr_fake_router_expect (&ingester, JR_MSG_RESULT, 500));
    atomic_store (&s_gate, true);
    s_collect_results (&ingester, results, 1);
    cr_assert_eq (memcmp (results[0]->id, gated, JR_ID_SIZE), 0);
    cr_assert (results[0]->success);
    jr_job_destroy (&results[0]);
    s_ack (&ingester, gated, 1, 0);
    s_ack (&ingester, slept, 1, 0);
    s_ack (&ingester, own, 1, 0);
    jr_mark_t marks[3];
    s_collect_done (&broker, marks, 3);
    cr_assert_eq (s_stop (&w), 0);
    jr_msg_destroy (&msg);
    free ((void *)v_sleep.ptr);
    s_down (&broker, &ingester);
}

//  The "*" default reaches tasks without their own entry.
Test (worker_protocol, task_timeout_star, .timeout = 60)
{
    jr_fake_router_t broker, ingester;
    s_running_t w;
    s_up (
        &broker, &ingester, &w,
        (jr_worker_config_t){
            .concurrency = 1, .liveness_ms = 60000, .resend_ms = 60000, .task_timeouts = "*=50" });
    jr_bytes_t v_sleep = s_vars (1, "ms", "i:60000");
    uint8_t id[JR_ID_SIZE];
    s_dispatch_one (&broker, "sleep", v_sleep, id);
    jr_job_t *r;
    s_collect_results (&ingester, &r, 1);
    cr_assert (s_starts (r->error, "DEADLINE_EXCEEDED: timeout_ms=50 (task default)"), "%.*s",
               (int)r->error.len, (const char *)r->error.ptr);
    jr_job_destroy (&r);
    s_ack (&ingester, id, 1, 0);
    s_expect_done (&broker, id, JR_STATE_EXPIRED);
    cr_assert_eq (s_stop (&w), 0);
    free ((void *)v_sleep.ptr);
    s_down (&broker, &ingester);
}

Test (worker_protocol, task_timeout_refused)
{
    const char *bad[] = { "sleep",           "=5",        "sleep=",           "sleep=x",
                          "sleep=-1",        "sleep=5ms", "sleep=4294967296", "no-such-task=5",
                          "sleep=5,sleep=6", "*=1,*=2",   "sleep= 5",         NULL };
    for (const char **spec = bad; *spec; spec++) {
        jr_worker_config_t cfg = { .broker = "tcp://127.0.0.1:1",
                                   .ingester = "tcp://127.0.0.1:1",
                                   .task_timeouts = *spec };
        jr_worker_t *worker = jr_worker_new (&cfg);
        cr_assert_null (worker, "refused: \"%s\"", *spec);
    }
    jr_worker_config_t cfg = { .broker = "tcp://127.0.0.1:1",
                               .ingester = "tcp://127.0.0.1:1",
                               .task_timeouts = "sleep=4294967295,echo=0,*=10" };
    jr_worker_t *worker = jr_worker_new (&cfg);
    cr_assert (worker);
    jr_worker_destroy (&worker);

    //  The binary: a message and exit 2.
    const char *bin = getenv ("JR_BIN");
    char command[600];
    snprintf (command, sizeof command, "%s/jr-worker", bin ? bin : ".");
    if (!bin || access (command, X_OK) != 0)
        return;
    snprintf (command, sizeof command,
              "%s/jr-worker --broker tcp://127.0.0.1:1 --task-timeout nope=5 2>&1", bin);
    FILE *pipe = popen (command, "r");
    cr_assert (pipe);
    char out[2048];
    size_t n = fread (out, 1, sizeof out - 1, pipe);
    out[n] = 0;
    int status = pclose (pipe);
    cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 2, "exit status %d: %s", status, out);
    cr_assert (strstr (out, "no such task"), "%s", out);
    snprintf (command, sizeof command,
              "JR_TASK_TIMEOUT=sleep=x %s/jr-worker --broker tcp://127.0.0.1:1 2>&1", bin);
    pipe = popen (command, "r");
    cr_assert (pipe);
    n = fread (out, 1, sizeof out - 1, pipe);
    out[n] = 0;
    status = pclose (pipe);
    cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 2, "exit status %d: %s", status, out);
    cr_assert (strstr (out, "expected NAME=MS"), "%s", out);
}
