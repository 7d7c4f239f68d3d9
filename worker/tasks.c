/*  tasks.c - built-in tasks (echo, sleep, fail, sha256, exec) and the name -> function registry  */
#include "worker/tasks.h"
#include "common/clock.h"
#include "common/mp.h"
#include "proto/proto.h"
#include "worker/exec.h"
#include "worker/sha256.h"
#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;  //  owned
    size_t len;  //  strlen (name)
    jr_task_fn *fn;
    bool isolated;  //  runs in a child process (--isolate)
} s_entry_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static s_entry_t *s_table;
static size_t s_count, s_cap;
static bool s_isolate_all;  //  --isolate all

static s_entry_t *
s_lookup (const uint8_t *name, size_t len)
{
    for (size_t i = 0; i < s_count; i++)
        if (s_table[i].len == len && memcmp (s_table[i].name, name, len) == 0)
            return &s_table[i];
    return NULL;
}

static int
s_add (const char *name, jr_task_fn *fn)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > JR_MAX_NAME || !fn)
        return JR_EINVALID;
    pthread_mutex_lock (&s_lock);
    int rc = 0;
    if (s_lookup ((const uint8_t *)name, len))
        rc = JR_EINVALID;
    else {
        if (s_count == s_cap) {
            s_cap = s_cap ? s_cap * 2 : 16;
            s_table = realloc (s_table, s_cap * sizeof *s_table);
            assert (s_table);
        }
        s_table[s_count].name = strdup (name);
        assert (s_table[s_count].name);
        s_table[s_count].len = len;
        s_table[s_count].fn = fn;
        s_table[s_count].isolated = false;
        s_count++;
    }
    pthread_mutex_unlock (&s_lock);
    return rc;
}

//  Built-ins register on first use of the registry, so no init call is needed.
static void
s_builtins (void)
{
    s_add ("echo", jr_task_echo);
    s_add ("sleep", jr_task_sleep);
    s_add ("fail", jr_task_fail);
    s_add ("sha256", jr_task_sha256);
    s_add ("exec", jr_task_exec);
}

int
jr_tasks_register (const char *name, jr_task_fn *fn)
{
    pthread_once (&s_once, s_builtins);
    return s_add (name, fn);
}

int
jr_task_register (const char *name, jr_task_fn *fn)
{
    return jr_tasks_register (name, fn);
}

int
jr_tasks_set_isolated (const char *name)
{
    pthread_once (&s_once, s_builtins);
    pthread_mutex_lock (&s_lock);
    int rc = 0;
    if (strcmp (name, "all") == 0)
        s_isolate_all = true;
    else {
        s_entry_t *entry = s_lookup ((const uint8_t *)name, strlen (name));
        if (entry)
            entry->isolated = true;
        else
            rc = JR_ENOT_FOUND;
    }
    pthread_mutex_unlock (&s_lock);
    return rc;
}

bool
jr_tasks_isolated (jr_bytes_t name)
{
    //  exec runs its program in a child process group already.
    if (name.len == 4 && memcmp (name.ptr, "exec", 4) == 0)
        return false;
    pthread_once (&s_once, s_builtins);
    pthread_mutex_lock (&s_lock);
    s_entry_t *entry = s_lookup (name.ptr, name.len);
    bool isolated = entry && (s_isolate_all || entry->isolated);
    pthread_mutex_unlock (&s_lock);
    return isolated;
}

jr_task_fn *
jr_tasks_find (jr_bytes_t name)
{
    pthread_once (&s_once, s_builtins);
    pthread_mutex_lock (&s_lock);
    s_entry_t *entry = s_lookup (name.ptr, name.len);
    jr_task_fn *fn = entry ? entry->fn : NULL;
    pthread_mutex_unlock (&s_lock);
    return fn;
}

size_t
jr_tasks_count (void)
{
    pthread_once (&s_once, s_builtins);
    pthread_mutex_lock (&s_lock);
    size_t count = s_count;
    pthread_mutex_unlock (&s_lock);
    return count;
}

const char *
jr_tasks_name (size_t index)
{
    pthread_once (&s_once, s_builtins);
    pthread_mutex_lock (&s_lock);
    const char *name = index < s_count ? s_table[index].name : NULL;
    pthread_mutex_unlock (&s_lock);
    return name;
}

//  -------------------------------------------------------------------------
//  Built-in tasks

static jr_bytes_t
s_vars (jr_ctx_t *ctx)
{
    return jr_ctx_job (ctx)->vars;
}

//  Bad vars fail the same way on every attempt: no retry (FAILED, not DEAD).
static bool
s_refuse (jr_out_t *out)
{
    jr_out_permanent (out);
    return false;
}

//  payload = var msg
bool
jr_task_echo (jr_ctx_t *ctx, jr_out_t *out)
{
    jr_bytes_t msg = { NULL, 0 };
    int rc = jr_vars_bytes (s_vars (ctx), "msg", &msg);
    if (rc == JR_EINVALID) {
        jr_out_errorf (out, "INVALID: var msg must be a string or binary");
        return s_refuse (out);
    }
    return jr_out_write (out, msg.ptr, msg.len) == 0;
}

//  Sleeps var ms milliseconds, through the context so deadline and cancel cut
//  it short, reporting progress every 100 ms (value = ms slept so far).
bool
jr_task_sleep (jr_ctx_t *ctx, jr_out_t *out)
{
    int64_t ms = 0;
    int rc = jr_vars_int (s_vars (ctx), "ms", &ms);
    if (rc == JR_EINVALID || ms < 0) {
        jr_out_errorf (out, "INVALID: var ms must be a non-negative integer");
        return s_refuse (out);
    }
    //  In steps of 100 ms, each reported as progress: value = ms slept so far.
    const int64_t longest = 100LL * 365 * 86400 * 1000;  //  as jr_ctx_sleep: no overflow
    if (ms > longest)
        ms = longest;
    int64_t start = jr_clock_mono_us (), end = start + ms * 1000;
    for (int64_t now = start; now < end; now = jr_clock_mono_us ()) {
        int64_t step = (end - now + 999) / 1000;
        rc = jr_ctx_sleep (ctx, step < 100 ? step : 100);
        if (rc) {
            jr_out_errorf (out, "%s: interrupted sleep of %lld ms", jr_errname (rc), (long long)ms);
            return false;
        }
        int64_t slept = (jr_clock_mono_us () - start) / 1000;
        slept = slept < ms ? slept : ms;
        jr_ctx_progress (ctx, slept < INT32_MAX ? (int32_t)slept : INT32_MAX,
                         "slept %lld of %lld ms", (long long)slept, (long long)ms);
    }
    char text[48];
    int n = snprintf (text, sizeof text, "slept %lld", (long long)ms);
    return jr_out_write (out, text, (size_t)n) == 0;
}

//  A yes/no var: msgpack true, a non-zero integer, or the text "true" or "1".
static bool
s_var_true (jr_bytes_t vars, const char *key)
{
    int64_t number;
    jr_bytes_t text;
    if (jr_vars_int (vars, key, &number) == 0)
        return number != 0;
    if (jr_vars_bytes (vars, key, &text) == 0)
        return text.len == 4 && memcmp (text.ptr, "true", 4) == 0;
    bool value;
    return jr_vars_bool (vars, key, &value) == 0 && value;
}

//  Always fails, with var error as the error text; var permanent (true or
//  1) says the failure is not worth retrying.
bool
jr_task_fail (jr_ctx_t *ctx, jr_out_t *out)
{
    jr_bytes_t text;
    if (jr_vars_bytes (s_vars (ctx), "error", &text) == 0)
        jr_out_errorf (out, "%.*s", (int)text.len, (const char *)text.ptr);
    else
        jr_out_errorf (out, "failed on purpose");
    if (s_var_true (s_vars (ctx), "permanent"))
        jr_out_permanent (out);
    return false;
}

//  Hex SHA-256 of var data, then of that digest, rounds times in all: a
//  CPU-bound task whose length the caller controls.
bool
jr_task_sha256 (jr_ctx_t *ctx, jr_out_t *out)
{
    jr_bytes_t data = { NULL, 0 };
    int64_t rounds = 1;
    if (jr_vars_bytes (s_vars (ctx), "data", &data) == JR_EINVALID) {
        jr_out_errorf (out, "INVALID: var data must be a string or binary");
        return s_refuse (out);
    }
    int rc = jr_vars_int (s_vars (ctx), "rounds", &rounds);
    if (rc == JR_EINVALID || rounds < 1) {
        jr_out_errorf (out, "INVALID: var rounds must be a positive integer");
        return s_refuse (out);
    }
    uint8_t digest[JR_SHA256_SIZE];
    jr_sha256 (data.ptr ? data.ptr : (const uint8_t *)"", data.len, digest);
    for (int64_t i = 1; i < rounds; i++) {
        //  Looking at the clock every round would cost more than the hash.
        if ((i & 1023) == 0 && jr_ctx_done (ctx)) {
            jr_out_errorf (out, "%s: after %lld of %lld rounds", jr_errname (jr_ctx_err (ctx)),
                           (long long)i, (long long)rounds);
            return false;
        }
        jr_sha256 (digest, sizeof digest, digest);
    }
    char hex[JR_SHA256_HEX];
    jr_sha256_hex (digest, hex);
    return jr_out_write (out, hex, 64) == 0;
}
