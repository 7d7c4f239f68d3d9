/*  executor.c - threads that run tasks; finished runs come back through a queue and an eventfd  */
#include "worker/executor.h"
#include "common/clock.h"
#include "common/lifecycle.h"
#include "proto/proto.h"
#include "worker/ctx.h"
#include "worker/isolate.h"
#include "worker/tasks.h"
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

jr_run_t *
jr_run_new (const jr_job_t *job, jr_task_fn *fn, size_t max_payload)
{
    return jr_run_new_timeout (job, fn, max_payload, 0);
}

jr_run_t *
jr_run_new_timeout (const jr_job_t *job, jr_task_fn *fn, size_t max_payload,
                    uint32_t default_timeout_ms)
{
    jr_run_t *self = calloc (1, sizeof *self);
    assert (self);
    self->job = jr_job_dup (job);
    assert (self->job);
    self->timeout_ms = job->timeout_ms ? job->timeout_ms : default_timeout_ms;
    int64_t deadline = 0;
    if (self->timeout_ms > 0)
        deadline = jr_clock_mono_us () + (int64_t)self->timeout_ms * 1000;
    self->ctx = jr_ctx_new (self->job, deadline);
    if (!self->ctx) {
        jr_job_destroy (&self->job);
        free (self);
        return NULL;
    }
    self->out = jr_out_new (max_payload);
    //  An isolated task runs in a child; this thread waits for it there.
    self->fn = jr_tasks_isolated (job->task) ? jr_task_isolated : fn;
    return self;
}

void
jr_run_destroy (jr_run_t **self_p)
{
    if (self_p && *self_p) {
        jr_run_t *self = *self_p;
        jr_ctx_destroy (&self->ctx);
        jr_out_destroy (&self->out);
        jr_job_destroy (&self->job);
        free (self);
        *self_p = NULL;
    }
}

void
jr_run_execute (jr_run_t *self)
{
    self->started_us = jr_clock_wall_us ();
    //  Cancelled or out of time while it waited for a thread (prefetch): it
    //  does not start, and its result says why.
    self->success = !jr_ctx_done (self->ctx) && self->fn (self->ctx, self->out);
    self->completed_us = jr_clock_wall_us ();
}

static jr_job_t *
s_result (const jr_job_t *job, bool success, jr_bytes_t payload, const char *error,
          const char *worker, int64_t started_us, int64_t completed_us)
{
    jr_job_t result = *job;
    result.success = success;
    result.state = jr_result_state (JR_STATE_UNKNOWN, success);  //  the loop sets the attempt's
    result.payload = payload;
    error = error ? error : "";
    result.error = (jr_bytes_t){ (const uint8_t *)error, strlen (error) };
    result.worker = (jr_bytes_t){ (const uint8_t *)worker, strlen (worker) };
    result.started_us = started_us;
    result.completed_us = completed_us;
    jr_job_t *copy = jr_job_dup (&result);
    assert (copy);
    return copy;
}

jr_job_t *
jr_result_failed (const jr_job_t *job, const char *worker, const char *error)
{
    int64_t now = jr_clock_wall_us ();
    return s_result (job, false, (jr_bytes_t){ NULL, 0 }, error, worker, now, now);
}

//  The task's own text, without a "<NAME>: " prefix the worker adds anyway.
static const char *
s_detail (const char *task_error, int why)
{
    const char *name = jr_errname (why);
    size_t len = strlen (name);
    if (task_error && strncmp (task_error, name, len) == 0
        && strncmp (task_error + len, ": ", 2) == 0)
        return task_error + len + 2;
    return task_error;
}

jr_job_t *
jr_run_result (const jr_run_t *self, const char *worker)
{
    char *text = NULL;
    bool success = self->success;
    int why = jr_ctx_err (self->ctx);
    const char *task_error = jr_out_error (self->out);
    if (why)
        task_error = s_detail (task_error, why);
    //  A deadline is a promise to the broker: past it, even a task that
    //  claims success has failed, so the attempt is never reported twice.
    if (why == JR_EDEADLINE) {
        success = false;
        if (asprintf (&text, "DEADLINE_EXCEEDED: timeout_ms=%u%s%s%s", self->timeout_ms,
                      self->job->timeout_ms ? "" : " (task default)", task_error ? "; " : "",
                      task_error ? task_error : "")
            < 0)
            abort ();
    }
    else if (why == JR_ECANCELLED && !success) {
        if (asprintf (&text, "CANCELLED%s%s", task_error ? ": " : "", task_error ? task_error : "")
            < 0)
            abort ();
    }
    else if (jr_out_err (self->out) == JR_ETOOLARGE) {
        success = false;
        if (asprintf (&text, "TOO_LARGE: payload over the worker's limit (%zu bytes kept)%s%s",
                      jr_out_payload (self->out).len, task_error ? "; " : "",
                      task_error ? task_error : "")
            < 0)
            abort ();
    }
    else if (!success && !task_error) {
        text = strdup ("TASK_FAILED: the task reported failure without a reason");
        assert (text);
    }
    if (text && strlen (text) >= JR_MAX_TEXT)
        text[JR_MAX_TEXT - 1] = 0;  //  the wire refuses longer texts
    const char *error = text ? text : task_error;
    jr_job_t *result =
        s_result (self->job, success, jr_out_payload (self->out), success ? NULL : error, worker,
                  self->started_us, self->completed_us);
    free (text);
    return result;
}

//  -------------------------------------------------------------------------

//  Wake-ups are the cost of a thread pool when tasks are short: a thread that
//  finishes a run takes the next one without sleeping, and at most one
//  sleeping thread is being woken at any time. The woken one wakes the next
//  if work is still waiting, so long tasks fan out over every thread within
//  a few wake-up latencies while a stream of short ones is run by as few
//  threads as keep up with it.
struct _jr_executor_t {
    pthread_mutex_t lock;        //  guards everything below but fd
    pthread_cond_t wake;         //  signals a queued run or stop
    pthread_cond_t exit;         //  signals a thread that left its loop
    jr_run_t *todo, *todo_tail;  //  runs waiting for a thread
    jr_run_t *done, *done_tail;  //  finished runs waiting for the loop
    size_t sleeping;             //  threads waiting on wake
    bool waking;                 //  a signal to wake is on its way
    size_t exited;               //  threads that left their loop
    bool stop;                   //  threads exit when todo is empty
    size_t nthreads;
    pthread_t *threads;
    int fd;  //  eventfd, readable while done is not empty
};

static void
s_push (jr_run_t **head, jr_run_t **tail, jr_run_t *run)
{
    run->next = NULL;
    if (*tail)
        (*tail)->next = run;
    else
        *head = run;
    *tail = run;
}

//  Called with the lock held: wake one sleeping thread for waiting work,
//  unless one is already being woken.
static void
s_wake_one (jr_executor_t *self)
{
    if (self->todo && self->sleeping && !self->waking) {
        self->waking = true;
        pthread_cond_signal (&self->wake);
    }
}

//  Called with the lock held: a finished run for the loop.
static void
s_finish (jr_executor_t *self, jr_run_t *run)
{
    bool was_empty = self->done == NULL;
    s_push (&self->done, &self->done_tail, run);
    if (was_empty) {
        //  One wake-up per batch is enough: the loop takes them all.
        uint64_t one = 1;
        ssize_t rc = write (self->fd, &one, sizeof one);
        (void)rc;
    }
}

static void *
s_thread (void *arg)
{
    jr_executor_t *self = arg;
    pthread_mutex_lock (&self->lock);
    while (true) {
        if (!self->todo && !self->stop) {
            self->sleeping++;
            while (!self->todo && !self->stop) {
                pthread_cond_wait (&self->wake, &self->lock);
                self->waking = false;  //  ours, or one that found nothing
            }
            self->sleeping--;
        }
        if (!self->todo)
            break;
        jr_run_t *run = self->todo;
        self->todo = run->next;
        if (!self->todo)
            self->todo_tail = NULL;
        s_wake_one (self);
        pthread_mutex_unlock (&self->lock);

        jr_run_execute (run);

        pthread_mutex_lock (&self->lock);
        s_finish (self, run);
    }
    self->exited++;
    pthread_cond_broadcast (&self->exit);
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

jr_executor_t *
jr_executor_new (size_t threads)
{
    assert (threads > 0);
    jr_executor_t *self = calloc (1, sizeof *self);
    assert (self);
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->wake, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->exit, &attr);
    pthread_condattr_destroy (&attr);
    self->fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert (self->fd != -1);
    self->nthreads = threads;
    self->threads = calloc (threads, sizeof *self->threads);
    assert (self->threads);
    for (size_t i = 0; i < threads; i++) {
        if (pthread_create (&self->threads[i], NULL, s_thread, self) != 0)
            abort ();  //  like out of memory: nothing sensible to go on with
    }
    return self;
}

void
jr_executor_destroy (jr_executor_t **self_p, int grace_ms)
{
    if (!self_p || !*self_p)
        return;
    jr_executor_t *self = *self_p;
    *self_p = NULL;
    struct timespec until;
    clock_gettime (CLOCK_MONOTONIC, &until);
    until.tv_sec += grace_ms / 1000;
    until.tv_nsec += (long)(grace_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000)
        until.tv_sec++, until.tv_nsec -= 1000000000;

    pthread_mutex_lock (&self->lock);
    self->stop = true;
    pthread_cond_broadcast (&self->wake);
    int rc = 0;
    while (self->exited < self->nthreads && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait (&self->exit, &self->lock, &until);
    bool stuck = self->exited < self->nthreads;
    pthread_mutex_unlock (&self->lock);
    if (stuck) {
        //  A thread cannot be killed safely; leaving it (and the memory it
        //  uses) beats hanging the process on shutdown.
        for (size_t i = 0; i < self->nthreads; i++)
            pthread_detach (self->threads[i]);
        return;
    }
    for (size_t i = 0; i < self->nthreads; i++)
        pthread_join (self->threads[i], NULL);
    while (self->done) {
        jr_run_t *run = self->done;
        self->done = run->next;
        jr_run_destroy (&run);
    }
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->wake);
    pthread_cond_destroy (&self->exit);
    close (self->fd);
    free (self->threads);
    free (self);
}

void
jr_executor_submit (jr_executor_t *self, jr_run_t *run)
{
    pthread_mutex_lock (&self->lock);
    assert (!self->stop);
    s_push (&self->todo, &self->todo_tail, run);
    s_wake_one (self);
    pthread_mutex_unlock (&self->lock);
}

size_t
jr_executor_sweep (jr_executor_t *self, bool all)
{
    size_t n = 0;
    pthread_mutex_lock (&self->lock);
    jr_run_t **link = &self->todo, *prev = NULL;
    while (*link) {
        jr_run_t *run = *link;
        bool done = jr_ctx_done (run->ctx);
        if (!done && !all) {
            prev = run;
            link = &run->next;
            continue;
        }
        *link = run->next;
        if (self->todo_tail == run)
            self->todo_tail = prev;
        if (done)
            jr_run_execute (run);  //  stamps it; the task is not called
        s_finish (self, run);
        n++;
    }
    pthread_mutex_unlock (&self->lock);
    return n;
}

jr_run_t *
jr_executor_take (jr_executor_t *self)
{
    pthread_mutex_lock (&self->lock);
    jr_run_t *runs = self->done;
    self->done = self->done_tail = NULL;
    uint64_t count;
    //  Read under the lock so a wake-up for a run pushed after us is kept.
    ssize_t rc = read (self->fd, &count, sizeof count);
    (void)rc;
    pthread_mutex_unlock (&self->lock);
    return runs;
}

int
jr_executor_fd (const jr_executor_t *self)
{
    return self->fd;
}
