/*  outbox.c - the worker's results awaiting the ingester's ACK: a table and two lists through the records  */
#include "worker/outbox.h"
#include <assert.h>
#include <czmq.h>

#define S_KEY_SIZE (JR_ID_SIZE + 4)  //  id, then attempt big-endian

//  A result sent (or about to be sent) to the ingester and not yet ACKed.
typedef struct _s_result_t s_result_t;
struct _s_result_t {
    uint8_t key[S_KEY_SIZE];  //  the results table key
    jr_job_t *job;            //  owned result
    int64_t sent_us;          //  monotonic, last send; 0 = never sent
    struct _s_list_t *list;   //  fresh or unacked, whichever holds it
    s_result_t *prev, *next;  //  its neighbours there
};

//  A list of results linked through themselves: no allocation per result.
typedef struct _s_list_t {
    s_result_t *head, *tail;
    size_t size;
} s_list_t;

struct _jr_outbox_t {
    zhashx_t *results;  //  key -> s_result_t, every result not ACKed
    s_list_t fresh;     //  results finished, never sent
    s_list_t unacked;   //  results sent, oldest send first
    int64_t resend_us;  //  a sent result not ACKed this long is due again
    size_t backlog;     //  results held at most before the worker takes no job
};

//  -------------------------------------------------------------------------
//  The results table: keyed by (id, attempt), so a stale attempt's ACK can
//  never drop a newer attempt's result.

static size_t
s_key_hash (const void *key)
{
    //  FNV-1a; ids are random, so any mixing will do.
    const uint8_t *p = key;
    size_t h = 2166136261u;
    for (int i = 0; i < S_KEY_SIZE; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static int
s_key_compare (const void *a, const void *b)
{
    return memcmp (a, b, S_KEY_SIZE);
}

static void
s_key_make (uint8_t key[S_KEY_SIZE], const uint8_t id[JR_ID_SIZE], uint32_t attempt)
{
    memcpy (key, id, JR_ID_SIZE);
    key[16] = (uint8_t)(attempt >> 24), key[17] = (uint8_t)(attempt >> 16);
    key[18] = (uint8_t)(attempt >> 8), key[19] = (uint8_t)attempt;
}

static void
s_list_unlink (s_result_t *rec)
{
    s_list_t *list = rec->list;
    if (rec->prev)
        rec->prev->next = rec->next;
    else
        list->head = rec->next;
    if (rec->next)
        rec->next->prev = rec->prev;
    else
        list->tail = rec->prev;
    list->size--;
    rec->list = NULL;
}

//  Append rec to list, taking it out of the list it is in, if any.
static void
s_list_append (s_list_t *list, s_result_t *rec)
{
    if (rec->list)
        s_list_unlink (rec);
    rec->list = list;
    rec->prev = list->tail;
    rec->next = NULL;
    if (list->tail)
        list->tail->next = rec;
    else
        list->head = rec;
    list->tail = rec;
    list->size++;
}

//  Forget a record and give its job to the caller.
static jr_job_t *
s_remove (jr_outbox_t *self, s_result_t *rec)
{
    jr_job_t *job = rec->job;
    zhashx_delete (self->results, rec->key);
    s_list_unlink (rec);
    free (rec);
    return job;
}

static s_result_t *
s_find (const jr_outbox_t *self, const uint8_t id[JR_ID_SIZE], uint32_t attempt)
{
    uint8_t key[S_KEY_SIZE];
    s_key_make (key, id, attempt);
    return zhashx_lookup (self->results, key);
}

//  -------------------------------------------------------------------------

jr_outbox_t *
jr_outbox_new (int64_t resend_us, size_t backlog)
{
    assert (resend_us > 0 && backlog > 0);
    jr_outbox_t *self = calloc (1, sizeof *self);
    assert (self);
    self->resend_us = resend_us;
    self->backlog = backlog;
    self->results = zhashx_new ();
    assert (self->results);
    zhashx_set_key_hasher (self->results, s_key_hash);
    zhashx_set_key_comparator (self->results, s_key_compare);
    zhashx_set_key_duplicator (self->results, NULL);  //  keys live in their records
    zhashx_set_key_destructor (self->results, NULL);
    return self;
}

void
jr_outbox_destroy (jr_outbox_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        jr_outbox_t *self = *self_p;
        jr_job_t *job;
        while ((job = jr_outbox_pop (self)))
            jr_job_destroy (&job);
        zhashx_destroy (&self->results);
        free (self);
        *self_p = NULL;
    }
}

size_t
jr_outbox_size (const jr_outbox_t *self)
{
    return zhashx_size (self->results);
}

bool
jr_outbox_full (const jr_outbox_t *self)
{
    return zhashx_size (self->results) >= self->backlog;
}

jr_job_t *
jr_outbox_add (jr_outbox_t *self, jr_job_t *job)
{
    assert (job);
    s_result_t *rec = calloc (1, sizeof *rec);
    assert (rec);
    s_key_make (rec->key, job->id, job->attempt);
    rec->job = job;
    s_result_t *old = zhashx_lookup (self->results, rec->key);
    jr_job_t *replaced = old ? s_remove (self, old) : NULL;
    zhashx_insert (self->results, rec->key, rec);
    s_list_append (&self->fresh, rec);
    return replaced;
}

bool
jr_outbox_has (const jr_outbox_t *self, const uint8_t id[JR_ID_SIZE], uint32_t attempt)
{
    return s_find (self, id, attempt) != NULL;
}

jr_job_t *
jr_outbox_take (jr_outbox_t *self, const uint8_t id[JR_ID_SIZE], uint32_t attempt)
{
    s_result_t *rec = s_find (self, id, attempt);
    return rec ? s_remove (self, rec) : NULL;
}

int64_t
jr_outbox_resend_at (const jr_outbox_t *self)
{
    const s_result_t *oldest = self->unacked.head;
    return oldest ? oldest->sent_us + self->resend_us : 0;
}

bool
jr_outbox_due (const jr_outbox_t *self, int64_t now)
{
    const s_result_t *oldest = self->unacked.head;
    return self->fresh.size || (oldest && oldest->sent_us + self->resend_us <= now);
}

//  The unacked list is in send order, so only its head can be due; a result
//  sent now moves to its end, where it is not due before resend_us.
const jr_job_t *
jr_outbox_next (jr_outbox_t *self, int64_t now, bool *resend)
{
    assert (resend);
    s_result_t *rec = self->unacked.head;
    *resend = rec && rec->sent_us + self->resend_us <= now;
    if (!*resend)
        rec = self->fresh.head;
    if (!rec)
        return NULL;
    rec->sent_us = now;
    s_list_append (&self->unacked, rec);
    return rec->job;
}

jr_job_t *
jr_outbox_pop (jr_outbox_t *self)
{
    s_result_t *rec = self->fresh.head ? self->fresh.head : self->unacked.head;
    return rec ? s_remove (self, rec) : NULL;
}
