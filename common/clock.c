/*  clock.c - wall and monotonic time in microseconds  */
#include "common/clock.h"
#include <stdatomic.h>
#include <time.h>

static _Atomic int64_t s_shift, s_wall_shift;

static int64_t
s_read (clockid_t id)
{
    struct timespec ts;
    clock_gettime (id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
jr_clock_wall_us (void)
{
    return s_read (CLOCK_REALTIME) + atomic_load_explicit (&s_wall_shift, memory_order_relaxed);
}

int64_t
jr_clock_mono_us (void)
{
    return s_read (CLOCK_MONOTONIC) + atomic_load_explicit (&s_shift, memory_order_relaxed);
}

void
jr_clock_mono_shift_us (int64_t delta)
{
    atomic_fetch_add (&s_shift, delta);
}

void
jr_clock_wall_shift_us (int64_t delta)
{
    atomic_fetch_add (&s_wall_shift, delta);
}
