/*  ctx.c - the context a task runs in (deadline, cancel fd) and where it writes its output  */
#include "worker/ctx.h"
#include "common/clock.h"
#include "proto/proto.h"
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct _jr_ctx_t {
    const jr_job_t *job;   //  borrowed from the worker's run
    int64_t deadline_us;   //  monotonic; 0 = none
    _Atomic int err;       //  0 while running, else why it ended
    int fd;                //  eventfd, written once when cancelled
};

jr_ctx_t *
jr_ctx_new (const jr_job_t *job, int64_t deadline_mono_us)
{
    assert (job);
    jr_ctx_t *self = calloc (1, sizeof *self);
    assert (self);
    self->fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (self->fd == -1) {
        free (self);
        return NULL;
    }
    self->job = job;
    self->deadline_us = deadline_mono_us;
    atomic_init (&self->err, 0);
    return self;
}

void
jr_ctx_destroy (jr_ctx_t **self_p)
{
    if (self_p && *self_p) {
        close ((*self_p)->fd);
        free (*self_p);
        *self_p = NULL;
    }
}

void
jr_ctx_cancel (jr_ctx_t *self, int code)
{
    assert (code < 0);
    int expected = 0;
    if (atomic_compare_exchange_strong (&self->err, &expected, code)) {
        uint64_t one = 1;
        //  The counter is never read, so once written the fd stays readable.
        ssize_t rc = write (self->fd, &one, sizeof one);
        (void) rc;
    }
}

int64_t
jr_ctx_deadline (const jr_ctx_t *self)
{
    return self->deadline_us;
}

int
jr_ctx_err (const jr_ctx_t *self)
{
    int err = atomic_load (&self->err);
    if (err)
        return err;
    //  The deadline holds even before the worker's loop notices it passed.
    if (self->deadline_us && jr_clock_mono_us () >= self->deadline_us)
        return JR_EDEADLINE;
    return 0;
}

bool
jr_ctx_done (const jr_ctx_t *self)
{
    return jr_ctx_err (self) != 0;
}

int64_t
jr_ctx_time_left_ms (const jr_ctx_t *self)
{
    if (!self->deadline_us)
        return INT64_MAX;
    int64_t left = self->deadline_us - jr_clock_mono_us ();
    //  Rounded up, so a context that is not done never reports 0 left.
    return left > 0 ? (left + 999) / 1000 : 0;
}

int
jr_ctx_fd (const jr_ctx_t *self)
{
    return self->fd;
}

int
jr_ctx_sleep (const jr_ctx_t *self, int64_t ms)
{
    const int64_t longest = 100LL * 365 * 86400 * 1000;  //  keeps the sum below from overflowing
    ms = ms < 0 ? 0 : ms > longest ? longest : ms;
    int64_t end = jr_clock_mono_us () + ms * 1000;
    while (true) {
        int err = jr_ctx_err (self);
        if (err)
            return err;
        int64_t now = jr_clock_mono_us ();
        if (now >= end)
            return 0;
        int64_t until = end;
        if (self->deadline_us && self->deadline_us < until)
            until = self->deadline_us;
        int64_t wait = (until - now + 999) / 1000;
        struct pollfd item = {.fd = self->fd, .events = POLLIN};
        if (poll (&item, 1, wait > 60000 ? 60000 : (int) wait) == -1 && errno != EINTR)
            return JR_EINTERNAL;
    }
}

const jr_job_t *
jr_ctx_job (const jr_ctx_t *self)
{
    return self->job;
}

jr_bytes_t
jr_ctx_vars (const jr_ctx_t *self)
{
    return self->job->vars;
}

//  -------------------------------------------------------------------------

struct _jr_out_t {
    uint8_t *data;   //  payload
    size_t size;     //  bytes written
    size_t cap;      //  bytes allocated
    size_t max;      //  limit on size
    int err;         //  JR_ETOOLARGE once a write was refused
    char *error;     //  error text, or NULL
    bool permanent;  //  jr_out_permanent: the failure is not worth retrying
};

jr_out_t *
jr_out_new (size_t max)
{
    jr_out_t *self = calloc (1, sizeof *self);
    assert (self);
    self->max = max;
    return self;
}

size_t
jr_out_max (const jr_out_t *self)
{
    return self->max;
}

void
jr_out_destroy (jr_out_t **self_p)
{
    if (self_p && *self_p) {
        free ((*self_p)->data);
        free ((*self_p)->error);
        free (*self_p);
        *self_p = NULL;
    }
}

int
jr_out_write (jr_out_t *self, const void *data, size_t size)
{
    if (size > self->max - self->size) {
        self->err = JR_ETOOLARGE;
        return JR_ETOOLARGE;
    }
    if (self->size + size > self->cap) {
        size_t cap = self->cap ? self->cap : 256;
        while (cap < self->size + size)
            cap *= 2;
        self->data = realloc (self->data, cap);
        assert (self->data);
        self->cap = cap;
    }
    if (size)
        memcpy (self->data + self->size, data, size);
    self->size += size;
    return 0;
}

void
jr_out_errorf (jr_out_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *text = NULL;
    int n = vasprintf (&text, format, args);
    va_end (args);
    assert (n >= 0 && text);
    //  The wire refuses longer texts, which would make the whole result unsendable.
    if (n >= JR_MAX_TEXT)
        text[JR_MAX_TEXT - 1] = 0;
    free (self->error);
    self->error = text;
}

jr_bytes_t
jr_out_payload (const jr_out_t *self)
{
    return (jr_bytes_t) {self->data, self->size};
}

const char *
jr_out_error (const jr_out_t *self)
{
    return self->error;
}

int
jr_out_err (const jr_out_t *self)
{
    return self->err;
}

void
jr_out_permanent (jr_out_t *self)
{
    self->permanent = true;
}

bool
jr_out_is_permanent (const jr_out_t *self)
{
    return self->permanent;
}
