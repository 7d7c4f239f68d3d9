/*  writer.c - batches of drained messages, and the thread that commits their results  */
#include "ingester/writer.h"
#include "common/log.h"
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

jr_entry_t *
jr_batch_next (jr_batch_t *self)
{
    if (self->nentries == self->cap_entries) {
        size_t cap = self->cap_entries ? self->cap_entries * 2 : 64;
        self->entries = realloc (self->entries, cap * sizeof *self->entries);
        assert (self->entries);
        for (size_t i = self->cap_entries; i < cap; i++) {
            self->entries[i] = calloc (1, sizeof (jr_entry_t));
            assert (self->entries[i]);
            self->entries[i]->msg = jr_msg_new ();
        }
        self->cap_entries = cap;
    }
    return self->entries[self->nentries];
}

void
jr_entry_close (jr_entry_t *entry)
{
    zmq_msg_close (&entry->peer);
    zmq_msg_close (&entry->body);
}

void
jr_batch_clear (jr_batch_t *self)
{
    for (size_t e = 0; e < self->nentries; e++)
        jr_entry_close (self->entries[e]);
    self->nentries = self->njobs = self->nput = 0;
    self->rc = 0;
    self->nstored = self->ndup = self->nstale = 0;
}

void
jr_batch_free (jr_batch_t *self)
{
    jr_batch_clear (self);
    for (size_t i = 0; i < self->cap_entries; i++) {
        jr_msg_destroy (&self->entries[i]->msg);
        free (self->entries[i]->codes);
        free (self->entries[i]);
    }
    free (self->entries);
    *self = (jr_batch_t){ 0 };
}

//  -------------------------------------------------------------------------

struct _jr_writer_t {
    jr_sink_t *sink;   //  owned, used by the thread only
    pthread_t thread;  //
    pthread_mutex_t lock;
    pthread_cond_t cond;  //  signals pending, done or stop
    jr_batch_t *pending;  //  submitted, not yet taken by the thread
    jr_batch_t *busy;     //  being stored
    jr_batch_t *done;     //  stored, not yet taken by the loop
    bool stop;
    bool failing;  //  the last batch failed: the next failures are not logged
    int fd;        //  eventfd, readable while done is set
};

//  One transaction for the batch; on failure nothing is stored, its results
//  are ACKed with the failure's code and every worker resends. A run of
//  failures (a lost database, a full disk) is logged once.
static void
s_write (jr_writer_t *self, jr_batch_t *batch)
{
    jr_sink_t *sink = self->sink;
    batch->rc = 0;
    if (batch->nput == 0)
        return;
    int rc = jr_sink_begin (sink);
    for (size_t e = 0; e < batch->nentries && rc == 0; e++) {
        jr_entry_t *entry = batch->entries[e];
        if (entry->msg->type != JR_MSG_RESULT)
            continue;
        for (uint32_t i = 0; i < entry->msg->njobs && rc == 0; i++) {
            if (entry->codes[i])
                continue;
            jr_job_t *job = &entry->msg->jobs[i];
            int put = jr_sink_put (sink, job);
            if (put == JR_SINK_STORED) {
                entry->codes[i] = JR_STORED;
                batch->nstored++;
            }
            else if (put == JR_SINK_DUPLICATE)
                batch->ndup++;
            else if (put == JR_ESTALE) {
                char id[37];
                jr_id_format (job->id, id);
                jr_info ("id=%s attempt=%u: stale result refused, a newer attempt is stored", id,
                         job->attempt);
                entry->codes[i] = JR_ESTALE;
                batch->nstale++;
            }
            else
                rc = put;
        }
    }
    if (rc == 0)
        rc = jr_sink_commit (sink);
    if (rc) {
        if (!self->failing)
            jr_error ("results=%zu code=%s error=\"%s\": batch not stored, workers will resend",
                      batch->nput, jr_errname (rc), jr_sink_errmsg (sink));
        jr_sink_rollback (sink);
        batch->rc = rc;
    }
    else if (self->failing && batch->nput)
        jr_info ("results=%zu: batches stored again", batch->nput);
    if (batch->nput)
        self->failing = rc != 0;
}

static void *
s_thread (void *arg)
{
    jr_writer_t *self = arg;
    pthread_mutex_lock (&self->lock);
    while (true) {
        while (!self->pending && !self->stop)
            pthread_cond_wait (&self->cond, &self->lock);
        if (!self->pending)
            break;
        self->busy = self->pending;
        self->pending = NULL;
        pthread_mutex_unlock (&self->lock);

        s_write (self, self->busy);

        pthread_mutex_lock (&self->lock);
        self->done = self->busy;
        self->busy = NULL;
        uint64_t one = 1;
        ssize_t rc = write (self->fd, &one, sizeof one);
        (void)rc;
        pthread_cond_broadcast (&self->cond);
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

jr_writer_t *
jr_writer_new (jr_sink_t *sink)
{
    assert (sink);
    jr_writer_t *self = calloc (1, sizeof *self);
    assert (self);
    self->sink = sink;
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->cond, NULL);
    self->fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert (self->fd != -1);
    if (pthread_create (&self->thread, NULL, s_thread, self) != 0)
        abort ();  //  like out of memory: nothing sensible to go on with
    return self;
}

void
jr_writer_destroy (jr_writer_t **self_p)
{
    assert (self_p);
    jr_writer_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    pthread_mutex_lock (&self->lock);
    self->stop = true;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->lock);
    pthread_join (self->thread, NULL);
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->cond);
    close (self->fd);
    free (self);
}

void
jr_writer_submit (jr_writer_t *self, jr_batch_t *batch)
{
    pthread_mutex_lock (&self->lock);
    assert (!self->pending && !self->busy && !self->done && !self->stop);
    self->pending = batch;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->lock);
}

int
jr_writer_fd (const jr_writer_t *self)
{
    return self->fd;
}

jr_batch_t *
jr_writer_take (jr_writer_t *self)
{
    pthread_mutex_lock (&self->lock);
    jr_batch_t *batch = self->done;
    self->done = NULL;
    uint64_t count;
    ssize_t rc = read (self->fd, &count, sizeof count);
    (void)rc;
    pthread_mutex_unlock (&self->lock);
    return batch;
}

jr_batch_t *
jr_writer_wait (jr_writer_t *self)
{
    pthread_mutex_lock (&self->lock);
    while (self->pending || self->busy)
        pthread_cond_wait (&self->cond, &self->lock);
    pthread_mutex_unlock (&self->lock);
    return jr_writer_take (self);
}
