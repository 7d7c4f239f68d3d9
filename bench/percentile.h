/*  percentile.h - p50 and p99 of latency samples, computed the same way by every benchmark  */
#ifndef JR_BENCH_PERCENTILE_H
#define JR_BENCH_PERCENTILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    int64_t p50, p99;
} bench_pct_t;

static inline int
bench_cmp_i64 (const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

//  Sort n > 0 samples in place and return their p50 and p99 (the sample at
//  rank n/2, and at n*99/100 or the last).
static inline bench_pct_t
bench_percentiles (int64_t *samples, size_t n)
{
    qsort (samples, n, sizeof *samples, bench_cmp_i64);
    size_t p99 = n * 99 / 100 < n ? n * 99 / 100 : n - 1;
    return (bench_pct_t){ samples[n / 2], samples[p99] };
}
#endif
