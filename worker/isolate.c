/*  isolate.c - run an in-process task in a child process: `jr-worker --run-task` and its caller  */
#include "worker/isolate.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mp.h"
#include "proto/proto.h"
#include "worker/ctx.h"
#include "worker/exec.h"
#include "worker/tasks.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_REQUEST_MAX (JR_MAX_VARS + 64 * 1024)  //  vars, name and the rest

static char *s_exe;      //  binary to start; NULL = /proc/self/exe
static char *s_plugins;  //  --plugin list for the child, or NULL

static void
s_set (char **field, const char *value)
{
    free (*field);
    *field = value && *value ? strdup (value) : NULL;
    assert (!value || !*value || *field);
}

void
jr_isolate_set_exe (const char *exe)
{
    s_set (&s_exe, exe);
}

void
jr_isolate_set_plugins (const char *plugins)
{
    s_set (&s_plugins, plugins);
}

static void
s_pack_str (msgpack_packer *pk, const char *text)
{
    size_t len = strlen (text);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, text, len);
}

static void
s_pack_bin (msgpack_packer *pk, jr_bytes_t bytes)
{
    msgpack_pack_bin (pk, bytes.len);
    if (bytes.len)
        msgpack_pack_bin_body (pk, bytes.ptr, bytes.len);
}

static bool
s_key_is (jr_bytes_t key, const char *name)
{
    return key.len == strlen (name) && memcmp (key.ptr, name, key.len) == 0;
}

//  -------------------------------------------------------------------------
//  The worker's side

typedef struct {
    bool success, too_large, permanent;
    jr_bytes_t payload;
    jr_bytes_t error;  //  ptr NULL: none
} s_reply_t;

static bool
s_reply_decode (jr_bytes_t data, s_reply_t *reply)
{
    memset (reply, 0, sizeof *reply);
    jr_mp_t mp;
    jr_mp_init (&mp, data.ptr, data.len);
    uint32_t n;
    bool seen_success = false;
    if (!jr_mp_map (&mp, &n))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        jr_bytes_t key;
        if (!jr_mp_str (&mp, &key))
            return false;
        bool ok;
        if (s_key_is (key, "success"))
            ok = seen_success = jr_mp_bool (&mp, &reply->success);
        else if (s_key_is (key, "payload"))
            ok = jr_mp_bytes (&mp, &reply->payload);
        else if (s_key_is (key, "error"))
            ok = jr_mp_nil (&mp) || jr_mp_str (&mp, &reply->error);
        else if (s_key_is (key, "too_large"))
            ok = jr_mp_bool (&mp, &reply->too_large);
        else if (s_key_is (key, "permanent"))
            ok = jr_mp_bool (&mp, &reply->permanent);
        else
            ok = jr_mp_skip (&mp, NULL);
        if (!ok)
            return false;
    }
    return seen_success && jr_mp_left (&mp) == 0;
}

bool
jr_task_isolated (jr_ctx_t *ctx, jr_out_t *out)
{
    const jr_job_t *job = jr_ctx_job (ctx);
    int64_t left = jr_ctx_time_left_ms (ctx);
    msgpack_sbuffer request;
    msgpack_sbuffer_init (&request);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &request, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 6);
    s_pack_str (&pk, "task");
    msgpack_pack_str (&pk, job->task.len);
    msgpack_pack_str_body (&pk, job->task.ptr, job->task.len);
    s_pack_str (&pk, "vars");
    s_pack_bin (&pk, job->vars);
    s_pack_str (&pk, "id");
    s_pack_bin (&pk, (jr_bytes_t){ job->id, JR_ID_SIZE });
    s_pack_str (&pk, "attempt");
    msgpack_pack_uint32 (&pk, job->attempt);
    s_pack_str (&pk, "timeout_ms");
    msgpack_pack_uint64 (&pk, left == INT64_MAX ? 0 : (uint64_t)(left > 0 ? left : 1));
    s_pack_str (&pk, "max_payload");
    msgpack_pack_uint64 (&pk, jr_out_max (out));

    char *argv[] = { s_exe ? s_exe : "/proc/self/exe", "--run-task", "--plugin", s_plugins, NULL };
    if (!s_plugins)
        argv[2] = NULL;
    //  Room for the payload, the error text and the map around them.
    jr_out_t *reply_out = jr_out_new (jr_out_max (out) + JR_MAX_TEXT + 4096);
    jr_child_spec_t spec = {
        .path = argv[0],
        .argv = argv,
        .input = { (const uint8_t *)request.data, request.size },
        .output = reply_out,
        .kill_grace_ms = jr_exec_kill_grace (),
    };
    jr_child_result_t *res = malloc (sizeof *res);
    assert (res);
    int rc = jr_child_run (&spec, ctx, res);
    msgpack_sbuffer_destroy (&request);

    bool success = false;
    char how[96];
    jr_child_describe (res->status, how, sizeof how);
    const char *sep = res->tail[0] ? ": " : "";
    s_reply_t reply;
    if (rc)
        jr_out_errorf (out, "INTERNAL: cannot start the isolated task runner %s: %s", argv[0],
                       strerror (rc));
    else if (res->stopped)
        jr_out_errorf (out, "isolated task stopped with SIGTERM%s (%s)%s%s",
                       res->sigkilled ? ", then SIGKILL" : "", how, sep, res->tail);
    else if (WIFEXITED (res->status) && WEXITSTATUS (res->status) == 0
             && s_reply_decode (jr_out_payload (reply_out), &reply)) {
        success = reply.success;
        if (jr_out_write (out, reply.payload.ptr, reply.payload.len) != 0 || reply.too_large) {
            //  The child's out refused a write: make ours refuse too (a write
            //  of SIZE_MAX bytes is always refused, before any copy), so the
            //  result says TOO_LARGE as for a task run in process.
            jr_out_write (out, NULL, SIZE_MAX);
            success = false;
        }
        if (reply.error.ptr)
            jr_out_errorf (out, "%.*s", (int)reply.error.len, (const char *)reply.error.ptr);
        if (reply.permanent)
            jr_out_permanent (out);
    }
    else
        jr_out_errorf (out, "isolated task %s%s%s%s", how,
                       WIFSIGNALED (res->status) ? "" : " without a result", sep, res->tail);
    free (res);
    jr_out_destroy (&reply_out);
    return success;
}

//  -------------------------------------------------------------------------
//  The child's side: jr-worker --run-task

static jr_ctx_t *s_child_ctx;  //  for the SIGTERM handler

static void
s_on_term (int sig)
{
    (void)sig;
    //  An atomic compare-exchange and a write(): safe in a handler.
    if (s_child_ctx)
        jr_ctx_cancel (s_child_ctx, JR_ECANCELLED);
}

static bool
s_read_all (int fd, msgpack_sbuffer *buf, size_t max)
{
    char chunk[65536];
    while (true) {
        ssize_t got = read (fd, chunk, sizeof chunk);
        if (got == 0)
            return true;
        if (got == -1 && errno == EINTR)
            continue;
        if (got == -1 || buf->size + (size_t)got > max)
            return false;
        msgpack_sbuffer_write (buf, chunk, (size_t)got);
    }
}

static bool
s_write_all (int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t put = write (fd, data, size);
        if (put == -1 && errno == EINTR)
            continue;
        if (put <= 0)
            return false;
        data += put;
        size -= (size_t)put;
    }
    return true;
}

typedef struct {
    jr_bytes_t task, vars, id;
    uint64_t attempt, timeout_ms, max_payload;
} s_request_t;

static bool
s_request_decode (const msgpack_sbuffer *buf, s_request_t *req)
{
    memset (req, 0, sizeof *req);
    jr_mp_t mp;
    jr_mp_init (&mp, buf->data, buf->size);
    uint32_t n;
    if (!jr_mp_map (&mp, &n))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        jr_bytes_t key;
        if (!jr_mp_str (&mp, &key))
            return false;
        bool ok;
        if (s_key_is (key, "task"))
            ok = jr_mp_str (&mp, &req->task);
        else if (s_key_is (key, "vars"))
            ok = jr_mp_bytes (&mp, &req->vars);
        else if (s_key_is (key, "id"))
            ok = jr_mp_bytes (&mp, &req->id) && req->id.len == JR_ID_SIZE;
        else if (s_key_is (key, "attempt"))
            ok = jr_mp_uint (&mp, &req->attempt) && req->attempt <= UINT32_MAX;
        else if (s_key_is (key, "timeout_ms"))
            ok = jr_mp_uint (&mp, &req->timeout_ms) && req->timeout_ms <= UINT32_MAX;
        else if (s_key_is (key, "max_payload"))
            ok = jr_mp_uint (&mp, &req->max_payload);
        else
            ok = jr_mp_skip (&mp, NULL);
        if (!ok)
            return false;
    }
    return req->task.len > 0 && jr_mp_left (&mp) == 0;
}

int
jr_isolate_child_main (void)
{
    //  The reply gets a descriptor of its own; fd 1 becomes stderr, so a
    //  task that prints cannot corrupt it.
    int reply_fd = fcntl (1, F_DUPFD_CLOEXEC, 3);
    if (reply_fd == -1 || dup2 (2, 1) == -1) {
        fprintf (stderr, "jr-worker: error: --run-task: cannot set up stdout: %s\n",
                 strerror (errno));
        return 1;
    }
    msgpack_sbuffer input;
    msgpack_sbuffer_init (&input);
    s_request_t req;
    if (!s_read_all (0, &input, S_REQUEST_MAX) || !s_request_decode (&input, &req)) {
        fprintf (stderr, "jr-worker: error: --run-task: bad or oversized request on stdin\n");
        msgpack_sbuffer_destroy (&input);
        return 1;
    }
    jr_job_t job = { 0 };
    memcpy (job.id, req.id.ptr ? req.id.ptr : (const uint8_t *)"", req.id.len);
    job.task = req.task;
    job.vars = req.vars;
    job.attempt = (uint32_t)req.attempt;
    job.timeout_ms = (uint32_t)req.timeout_ms;
    job.state = JR_STATE_RUNNING;
    int64_t deadline = req.timeout_ms ? jr_clock_mono_us () + (int64_t)req.timeout_ms * 1000 : 0;
    size_t max = req.max_payload && req.max_payload < JR_MAX_PAYLOAD ? (size_t)req.max_payload
                                                                     : JR_MAX_PAYLOAD;
    jr_ctx_t *ctx = jr_ctx_new (&job, deadline);
    jr_out_t *out = jr_out_new (max);
    if (!ctx) {
        fprintf (stderr, "jr-worker: error: --run-task: no context (descriptor limit?)\n");
        return 1;
    }
    s_child_ctx = ctx;
    struct sigaction action = { .sa_handler = s_on_term };
    sigemptyset (&action.sa_mask);
    sigaction (SIGTERM, &action, NULL);

    bool success = false;
    jr_task_fn *fn = jr_tasks_find (req.task);
    if (fn)
        success = fn (ctx, out);
    else
        jr_out_errorf (out, "UNKNOWN_TASK: %.*s (plugins differ?)", (int)req.task.len,
                       (const char *)req.task.ptr);

    msgpack_sbuffer reply;
    msgpack_sbuffer_init (&reply);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &reply, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5);
    s_pack_str (&pk, "success");
    if (success)
        msgpack_pack_true (&pk);
    else
        msgpack_pack_false (&pk);
    s_pack_str (&pk, "payload");
    s_pack_bin (&pk, jr_out_payload (out));
    s_pack_str (&pk, "error");
    if (jr_out_error (out))
        s_pack_str (&pk, jr_out_error (out));
    else
        msgpack_pack_nil (&pk);
    s_pack_str (&pk, "too_large");
    if (jr_out_err (out) == JR_ETOOLARGE)
        msgpack_pack_true (&pk);
    else
        msgpack_pack_false (&pk);
    s_pack_str (&pk, "permanent");
    if (jr_out_is_permanent (out))
        msgpack_pack_true (&pk);
    else
        msgpack_pack_false (&pk);
    bool sent = s_write_all (reply_fd, reply.data, reply.size);
    msgpack_sbuffer_destroy (&reply);
    sigset_t term;
    sigemptyset (&term);
    sigaddset (&term, SIGTERM);
    sigprocmask (SIG_BLOCK, &term, NULL);  //  the handler must not see ctx go
    s_child_ctx = NULL;
    jr_out_destroy (&out);
    jr_ctx_destroy (&ctx);
    msgpack_sbuffer_destroy (&input);
    close (reply_fd);
    if (!sent) {
        fprintf (stderr, "jr-worker: error: --run-task: cannot write the reply: %s\n",
                 strerror (errno));
        return 1;
    }
    return 0;
}
