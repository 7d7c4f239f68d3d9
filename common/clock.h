/*  clock.h - wall and monotonic time in microseconds, one injectable source  */
#ifndef JR_CLOCK_H
#define JR_CLOCK_H
#include <stdint.h>

//  Wall clock, microseconds since the epoch (for metrics stored with jobs).
int64_t jr_clock_wall_us (void);
//  Monotonic clock, microseconds (for deadlines, leases, heartbeats).
int64_t jr_clock_mono_us (void);
//  Tests may shift the monotonic clock forward to expire leases at once.
void jr_clock_mono_shift_us (int64_t delta);
//  Tests may step the wall clock, as an operator or NTP would.
void jr_clock_wall_shift_us (int64_t delta);
#endif
