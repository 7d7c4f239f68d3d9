/*  ctx.c - the context a task runs in (deadline, cancel fd) and where it writes its output  */
#include "worker/ctx.h"
#include "common/clock.h"
#include "proto/proto.h"
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct _jr_ctx_t {
    const jr_job_t *job;     //  borrowed from the worker's run
    int64_t deadline_us;     //  monotonic; 0 = none
    _Atomic int err;         //  0 while running, else why it ended
    _Atomic int fd;          //  eventfd made on first use, written once when cancelled
    _Atomic int notify_fd;   //  the worker's eventfd for progress, or -1
    pthread_mutex_t lock;    //  guards making fd, and the progress below
    int32_t value;           //  latest progress value
    char text[JR_MAX_NOTE];  //  latest progress message, NUL-terminated
    size_t len;              //  strlen (text)
    atomic_bool pending;     //  progress changed since the last take
};

jr_ctx_t *
jr_ctx_new (const jr_job_t *job, int64_t deadline_mono_us)
{
    assert (job);
    //  Not calloc: zeroing the progress text cost more than the rest of a
    //  short task's context; every field but the text is set here.
    jr_ctx_t *self = malloc (sizeof *self);
    assert (self);
    atomic_init (&self->fd, -1);  //  most tasks never ask for it: two syscalls saved
    self->job = job;
    self->deadline_us = deadline_mono_us;
    self->value = 0;
    self->text[0] = 0;
    self->len = 0;
    atomic_init (&self->err, 0);
    atomic_init (&self->notify_fd, -1);
    pthread_mutex_init (&self->lock, NULL);
    atomic_init (&self->pending, false);
    return self;
}

void
jr_ctx_destroy (jr_ctx_t **self_p)
{
    if (self_p && *self_p) {
        int fd = atomic_load (&(*self_p)->fd);
        if (fd != -1)
            close (fd);
        pthread_mutex_destroy (&(*self_p)->lock);
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
        //  Under the lock, so a fd being made now sees err or gets written.
        pthread_mutex_lock (&self->lock);
        int fd = atomic_load (&self->fd);
        if (fd != -1) {
            uint64_t one = 1;
            //  The counter is never read, so once written the fd stays readable.
            ssize_t rc = write (fd, &one, sizeof one);
            (void)rc;
        }
        pthread_mutex_unlock (&self->lock);
    }
}

//  The cancel fd, made on first use; -1 if no descriptor is left.
static int
s_fd (jr_ctx_t *self)
{
    int fd = atomic_load (&self->fd);
    if (fd != -1)
        return fd;
    pthread_mutex_lock (&self->lock);
    fd = atomic_load (&self->fd);
    if (fd == -1 && (fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK)) != -1) {
        if (atomic_load (&self->err)) {
            uint64_t one = 1;
            ssize_t rc = write (fd, &one, sizeof one);
            (void)rc;
        }
        atomic_store (&self->fd, fd);
    }
    pthread_mutex_unlock (&self->lock);
    return fd;
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
    return s_fd ((jr_ctx_t *)self);  //  made on first use, hence the cast
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
        struct pollfd item = { .fd = jr_ctx_fd (self), .events = POLLIN };
        if (item.fd == -1)
            return JR_EINTERNAL;
        if (poll (&item, 1, wait > 60000 ? 60000 : (int)wait) == -1 && errno != EINTR)
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
//  Progress: the task's thread writes, the worker's loop takes.

void
jr_ctx_set_notify (jr_ctx_t *self, int fd)
{
    atomic_store (&self->notify_fd, fd);
}

//  The length of text cut to at most max bytes without splitting a UTF-8
//  sequence (the message is a msgpack str, shown as text by `jr status`).
static size_t
s_utf8_cut (const char *text, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t cut = max;
    //  Back up over continuation bytes to the start of the cut sequence.
    while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
        cut--;
    return cut;
}

void
jr_ctx_progress (jr_ctx_t *self, int32_t value, const char *format, ...)
{
    assert (self);
    //  One byte more than kept, so a cut can see whether it splits a sequence.
    char text[JR_MAX_NOTE + 1] = "";
    size_t len = 0;
    if (format) {
        va_list args;
        va_start (args, format);
        int n = vsnprintf (text, sizeof text, format, args);
        va_end (args);
        len = n < 0 ? 0 : (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
        len = s_utf8_cut (text, len, JR_MAX_NOTE - 1);
    }
    pthread_mutex_lock (&self->lock);
    self->value = value;
    memcpy (self->text, text, len);
    self->text[len] = 0;
    self->len = len;
    pthread_mutex_unlock (&self->lock);
    //  Wake the loop once per change it has not taken yet, not per call.
    if (!atomic_exchange (&self->pending, true)) {
        int fd = atomic_load (&self->notify_fd);
        if (fd != -1) {
            uint64_t one = 1;
            ssize_t rc = write (fd, &one, sizeof one);
            (void)rc;  //  a full counter is still readable: nothing lost
        }
    }
}

bool
jr_ctx_progress_pending (const jr_ctx_t *self)
{
    return atomic_load (&self->pending);
}

bool
jr_ctx_progress_take (jr_ctx_t *self, int32_t *value, char text[JR_MAX_NOTE], size_t *len)
{
    if (!atomic_load (&self->pending))
        return false;
    pthread_mutex_lock (&self->lock);
    //  Cleared under the lock: a report made after it sets it again.
    atomic_store (&self->pending, false);
    *value = self->value;
    memcpy (text, self->text, self->len + 1);
    *len = self->len;
    pthread_mutex_unlock (&self->lock);
    return true;
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
    return (jr_bytes_t){ self->data, self->size };
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
