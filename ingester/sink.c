/*  sink.c - the sink kinds by URL scheme, and the calls that go through a sink's table  */
#include "ingester/sink.h"
#include "common/log.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

//  A new kind of store is one file with its table, and one line here.
static const jr_sink_ops_t *const s_kinds[] = {
    &jr_sink_sqlite,
};

struct _jr_sink_t {
    const jr_sink_ops_t *ops;  //  the kind, static
    void *impl;                //  the store's own state, owned
};

const jr_sink_ops_t *
jr_sink_lookup (const char *url, const char **where_p)
{
    assert (url && where_p);
    const char *colon = strchr (url, ':');
    if (!colon || colon == url || colon[1] == 0)
        return NULL;
    size_t len = (size_t)(colon - url);
    for (size_t i = 0; i < sizeof s_kinds / sizeof s_kinds[0]; i++)
        if (strlen (s_kinds[i]->scheme) == len && memcmp (s_kinds[i]->scheme, url, len) == 0) {
            *where_p = colon + 1;
            return s_kinds[i];
        }
    return NULL;
}

jr_sink_t *
jr_sink_new (const char *url, const char *sync)
{
    assert (url && sync);
    const char *where = NULL;
    const jr_sink_ops_t *ops = jr_sink_lookup (url, &where);
    if (ops)
        return jr_sink_open (ops, where, sync);
    const char *colon = strchr (url, ':');
    if (!colon || colon == url)
        jr_error ("sink=%s: must be SCHEME:WHERE, e.g. sqlite:jr.db", url);
    else if (colon[1] == 0)
        jr_error ("sink=%s: nothing after the scheme, e.g. sqlite:jr.db", url);
    else
        jr_error ("sink=%s scheme=%.*s: unknown sink scheme (known: sqlite)", url,
                  (int)(colon - url), url);
    return NULL;
}

jr_sink_t *
jr_sink_open (const jr_sink_ops_t *ops, const char *where, const char *sync)
{
    assert (ops && where && sync);
    void *impl = ops->open (where, sync);
    if (!impl)
        return NULL;
    jr_sink_t *self = calloc (1, sizeof *self);
    assert (self);
    self->ops = ops;
    self->impl = impl;
    return self;
}

const jr_sink_ops_t *
jr_sink_ops (jr_sink_t *self)
{
    return self->ops;
}

void
jr_sink_destroy (jr_sink_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        (*self_p)->ops->close ((*self_p)->impl);
        free (*self_p);
        *self_p = NULL;
    }
}

int
jr_sink_begin (jr_sink_t *self)
{
    return self->ops->begin (self->impl);
}

int
jr_sink_put (jr_sink_t *self, const jr_job_t *job)
{
    return self->ops->put (self->impl, job);
}

int
jr_sink_commit (jr_sink_t *self)
{
    return self->ops->commit (self->impl);
}

void
jr_sink_rollback (jr_sink_t *self)
{
    self->ops->rollback (self->impl);
}

int
jr_sink_get (jr_sink_t *self, const uint8_t id[JR_ID_SIZE], jr_job_t **job_p)
{
    return self->ops->get (self->impl, id, job_p);
}

const char *
jr_sink_errmsg (jr_sink_t *self)
{
    return self->ops->errmsg (self->impl);
}
