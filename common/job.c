/*  job.c - making, copying and naming jobs  */
#include "common/clock.h"
#include <jr/jr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

void
jr_job_init (jr_job_t *job, const char *task)
{
    memset (job, 0, sizeof *job);
    uuid_generate_random (job->id);
    job->task = (jr_bytes_t){ (const uint8_t *)task, task ? strlen (task) : 0 };
    job->created_us = jr_clock_wall_us ();
}

static void
s_copy (jr_bytes_t *field, uint8_t **cursor)
{
    if (field->len)
        memcpy (*cursor, field->ptr, field->len);
    field->ptr = *cursor;
    *cursor += field->len;
}

jr_job_t *
jr_job_dup (const jr_job_t *job)
{
    size_t extra =
        job->task.len + job->vars.len + job->payload.len + job->error.len + job->worker.len;
    jr_job_t *copy = malloc (sizeof *copy + extra);
    if (!copy)
        return NULL;
    *copy = *job;
    uint8_t *cursor = (uint8_t *)(copy + 1);
    s_copy (&copy->task, &cursor);
    s_copy (&copy->vars, &cursor);
    s_copy (&copy->payload, &cursor);
    s_copy (&copy->error, &cursor);
    s_copy (&copy->worker, &cursor);
    return copy;
}

void
jr_job_destroy (jr_job_t **job_p)
{
    if (job_p && *job_p) {
        free (*job_p);
        *job_p = NULL;
    }
}

void
jr_id_format (const uint8_t id[JR_ID_SIZE], char out[37])
{
    uuid_unparse_lower (id, out);
}

int
jr_id_parse (const char *text, uint8_t id[JR_ID_SIZE])
{
    return text && strlen (text) == 36 && uuid_parse (text, id) == 0 ? 0 : JR_EINVALID;
}
