/*  progress.c - a progress bar on stderr for long CLI work, only when stderr is a terminal  */
#include "cli/progress.h"
#include "common/clock.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JR_PROGRESS_EVERY_US 100000  //  redraw at most this often
#define JR_PROGRESS_WIDTH    20      //  characters of the bar itself

void
jr_progress_start (jr_progress_t *self, const char *what, size_t total)
{
    const char *env = getenv ("JR_PROGRESS");
    memset (self, 0, sizeof *self);
    self->what = what;
    self->total = total;
    self->on = total > 1 && isatty (STDERR_FILENO) && !(env && strcmp (env, "0") == 0);
    self->start_us = jr_clock_mono_us ();
}

//  "1.2k" style is hard to read in a count that changes; digits with
//  thousands separators are not: 12,345.
static void
s_count (char *out, size_t size, size_t n)
{
    char digits[32];
    int len = snprintf (digits, sizeof digits, "%zu", n);
    size_t at = 0;
    for (int i = 0; i < len && at + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            out[at++] = ',';
        out[at++] = digits[i];
    }
    out[at] = '\0';
}

//  Seconds as "42s", "3m05s", "1h02m".
static void
s_duration (char *out, size_t size, double seconds)
{
    long s = (long)(seconds + 0.5);
    if (s < 60)
        snprintf (out, size, "%lds", s);
    else if (s < 3600)
        snprintf (out, size, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf (out, size, "%ldh%02ldm", s / 3600, s % 3600 / 60);
}

static void
s_draw (jr_progress_t *self, int64_t now)
{
    double elapsed = (double)(now - self->start_us) / 1e6;
    double rate = elapsed > 0 ? (double)self->done / elapsed : 0;
    size_t filled = self->total ? self->done * JR_PROGRESS_WIDTH / self->total : 0;
    char bar[JR_PROGRESS_WIDTH + 1], done[32], total[32], eta[48] = "?";
    for (size_t i = 0; i < JR_PROGRESS_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[JR_PROGRESS_WIDTH] = '\0';
    s_count (done, sizeof done, self->done);
    s_count (total, sizeof total, self->total);
    if (self->done >= self->total)
        s_duration (eta, sizeof eta, 0);
    else if (rate > 0)
        s_duration (eta, sizeof eta, (double)(self->total - self->done) / rate);
    //  \r and "erase to end of line": the bar is redrawn in place.
    fprintf (stderr, "\r\033[K%s %s/%s %3zu%% [%s] %.0f/s ETA %s", self->what, done, total,
             self->total ? self->done * 100 / self->total : 100, bar, rate, eta);
    fflush (stderr);
    self->drawn_us = now;
    self->shown = true;
}

void
jr_progress_add (jr_progress_t *self, size_t n)
{
    self->done += n;
    if (!self->on)
        return;
    int64_t now = jr_clock_mono_us ();
    if (!self->shown || now - self->drawn_us >= JR_PROGRESS_EVERY_US)
        s_draw (self, now);
}

void
jr_progress_hide (jr_progress_t *self)
{
    if (!self->on || !self->shown)
        return;
    fputs ("\r\033[K", stderr);
    fflush (stderr);
    self->shown = false;
}

void
jr_progress_end (jr_progress_t *self)
{
    if (!self->on)
        return;
    s_draw (self, jr_clock_mono_us ());
    fputc ('\n', stderr);
    fflush (stderr);
    self->on = false;
}
