/*  progress.h - a progress bar on stderr for long CLI work, only when stderr is a terminal  */
#ifndef JR_CLI_PROGRESS_H
#define JR_CLI_PROGRESS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  One bar: "submitted 1,200/10,000  12% [###.....]  5,400/s  ETA 2s".
//  Drawn on stderr, at most 10 times a second, only if stderr is a
//  terminal (and $JR_PROGRESS is not "0"); otherwise every call is a no-op,
//  so scripts and logs see nothing of it.
typedef struct {
    const char *what;  //  the verb shown: "submitted", "results"
    size_t total;      //  what there is to do
    size_t done;       //  what is done
    int64_t start_us;  //  monotonic, at jr_progress_start
    int64_t drawn_us;  //  monotonic, when last drawn
    bool on;           //  stderr is a terminal
    bool shown;        //  the bar is on the screen now
} jr_progress_t;

//  Start a bar of total steps (no bar for fewer than 2).
void jr_progress_start (jr_progress_t *self, const char *what, size_t total);
//  n more steps done; redraws when 100 ms passed since the last drawing.
void jr_progress_add (jr_progress_t *self, size_t n);
//  Take the bar off the screen before writing a line to a terminal stdout
//  (the next jr_progress_add draws it again).
void jr_progress_hide (jr_progress_t *self);
//  Draw the bar as it ends and go to the next line.
void jr_progress_end (jr_progress_t *self);
#endif
