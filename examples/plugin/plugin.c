/*  plugin.c - an example task plugin: reverse, crash and hang (jr-worker --plugin libjr-example-plugin.so)  */
#include <jr/task.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

//  payload = var text, bytes reversed
static bool
s_reverse (jr_ctx_t *ctx, jr_out_t *out)
{
    jr_bytes_t text = { NULL, 0 };
    if (jr_vars_bytes (jr_ctx_vars (ctx), "text", &text) == JR_EINVALID) {
        jr_out_errorf (out, "INVALID: var text must be a string or binary");
        return false;
    }
    if (text.len == 0)
        return true;
    unsigned char *copy = malloc (text.len);
    if (!copy)
        abort ();
    for (size_t i = 0; i < text.len; i++)
        copy[i] = text.ptr[text.len - 1 - i];
    int rc = jr_out_write (out, copy, text.len);
    free (copy);
    return rc == 0;
}

//  Dies of SIGSEGV: run it with --isolate crash, or it takes the worker along.
static bool
s_crash (jr_ctx_t *ctx, jr_out_t *out)
{
    (void)ctx;
    (void)out;
    //  The default action, even where a sanitizer installed a handler.
    signal (SIGSEGV, SIG_DFL);
    raise (SIGSEGV);
    return false;
}

//  Ignores its context and SIGTERM for var ms milliseconds (default forever):
//  only SIGKILL of an isolated run stops it.
static bool
s_hang (jr_ctx_t *ctx, jr_out_t *out)
{
    (void)out;
    int64_t ms = -1;
    jr_vars_int (jr_ctx_vars (ctx), "ms", &ms);
    signal (SIGTERM, SIG_IGN);
    for (int64_t slept = 0; ms < 0 || slept < ms; slept += 10) {
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep (&ts, NULL);
    }
    return true;
}

int
jr_plugin_init (void)
{
    if (jr_task_register ("reverse", s_reverse) || jr_task_register ("crash", s_crash)
        || jr_task_register ("hang", s_hang))
        return -1;
    return 0;
}
