/*  job.c - the broker's record of one job  */
#include "broker/job.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

jr_bjob_t *
jr_bjob_new (const jr_job_t *job, uint16_t task)
{
    jr_bjob_t *self = calloc (1, sizeof *self + job->vars.len);
    assert (self);
    memcpy (self->id, job->id, JR_ID_SIZE);
    self->created_us = job->created_us;
    self->priority = job->priority;
    self->timeout_ms = job->timeout_ms;
    self->max_attempts = job->max_attempts;
    self->attempt = job->attempt;
    self->task = task;
    self->vars_len = (uint32_t)job->vars.len;
    if (job->vars.len)
        memcpy (self->vars, job->vars.ptr, job->vars.len);
    return self;
}

void
jr_bjob_destroy (jr_bjob_t **self_p)
{
    if (self_p && *self_p) {
        free ((*self_p)->progress);
        free (*self_p);
        *self_p = NULL;
    }
}
