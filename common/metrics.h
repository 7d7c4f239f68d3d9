/*  metrics.h - counters, gauges and histograms by name, for stats lines and Prometheus  */
#ifndef JR_METRICS_H
#define JR_METRICS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  One registry per process. Registration and reading (each, line, expose)
//  take the registry's lock, so an HTTP thread may expose while the loop
//  registers; the updates below are lock-free and allocation-free atomics,
//  safe from any thread (the worker's executors bump counters too).
typedef struct _jr_metrics_t jr_metrics_t;
typedef struct _jr_counter_t jr_counter_t;      //  monotonic, uint64
typedef struct _jr_gauge_t jr_gauge_t;          //  int64, set or moved
typedef struct _jr_histogram_t jr_histogram_t;  //  fixed buckets, count and sum

typedef enum { JR_METRIC_COUNTER, JR_METRIC_GAUGE, JR_METRIC_HISTOGRAM } jr_metric_type_t;

//  prefix ("jr_broker") starts every exposed name, joined by '_'.
jr_metrics_t *jr_metrics_new (const char *prefix);
//  Frees the registry and every metric in it; nulls *self_p.
void jr_metrics_destroy (jr_metrics_t **self_p);

//  Register a metric, or find the one already registered under the same
//  name and label value. name is snake_case without prefix or suffix: a
//  counter "jobs_accepted" is exposed as "<prefix>_jobs_accepted_total" and
//  shown as "jobs_accepted" on the stats line. A histogram's name ends in
//  its base unit ("job_run_seconds"); its bounds are upper bounds (le),
//  strictly increasing, copied. label is a label name ("task") with value
//  its value, or both NULL; every metric of one name has the same type,
//  help, label name and bounds (asserted). The registry owns the result.
jr_counter_t *jr_metrics_counter (jr_metrics_t *self, const char *name, const char *help,
                                  const char *label, const char *value);
jr_gauge_t *jr_metrics_gauge (jr_metrics_t *self, const char *name, const char *help,
                              const char *label, const char *value);
//  A counter with two labels (task, outcome); label2 needs label.
jr_counter_t *jr_metrics_counter2 (jr_metrics_t *self, const char *name, const char *help,
                                   const char *label, const char *value, const char *label2,
                                   const char *value2);
//  A gauge set in small units and exposed times scale (set in ms, scale
//  0.001: a "_seconds" gauge). Every gauge of one name has the same scale.
jr_gauge_t *jr_metrics_gauge_scaled (jr_metrics_t *self, const char *name, const char *help,
                                     const char *label, const char *value, double scale);
jr_histogram_t *jr_metrics_histogram (jr_metrics_t *self, const char *name, const char *help,
                                      const char *label, const char *value, const double *bounds,
                                      size_t nbounds);

void jr_counter_add (jr_counter_t *self, uint64_t n);
void jr_counter_inc (jr_counter_t *self);
uint64_t jr_counter_value (const jr_counter_t *self);
void jr_gauge_set (jr_gauge_t *self, int64_t value);
void jr_gauge_add (jr_gauge_t *self, int64_t delta);
int64_t jr_gauge_value (const jr_gauge_t *self);
//  Counts value in the first bucket whose bound is >= value (else +Inf).
void jr_histogram_observe (jr_histogram_t *self, double value);
uint64_t jr_histogram_count (const jr_histogram_t *self);
double jr_histogram_sum (const jr_histogram_t *self);

//  One metric as read now. Strings are borrowed from the registry.
typedef struct {
    const char *name;    //  exposed name, with prefix and suffix
    const char *key;     //  stats-line name: without prefix and suffix
    const char *help;    //
    const char *label;   //  label name, or NULL
    const char *value;   //  label value, or NULL
    const char *label2;  //  second label name, or NULL
    const char *value2;  //  its value, or NULL
    jr_metric_type_t type;
    uint64_t count;  //  counter's value, or histogram's observations
    uint64_t delta;  //  count's increase since the last stats line
    int64_t gauge;   //  gauge's value
    double sum;      //  histogram's sum of observations
} jr_metric_view_t;

typedef void (jr_metrics_fn) (const jr_metric_view_t *view, void *arg);
//  Calls fn for every metric, in registration order, with the lock held:
//  fn must not register.
void jr_metrics_each (jr_metrics_t *self, jr_metrics_fn *fn, void *arg);

//  The value of the metrics of one stats-line key (a counter's count, a
//  gauge's value, a histogram's count), summed over their labels, in *value.
//  False if no metric has that key.
bool jr_metrics_value (jr_metrics_t *self, const char *key, int64_t *value);

//  The stats line, the same in every process: "key=N ..." with each counter
//  and histogram (key_count, key_sum) as its change since the previous line,
//  each gauge as its value, metrics of one name summed over their labels.
//  Writes at most size bytes, NUL included (truncating like snprintf), and
//  starts the next interval. Returns true when a counter or histogram moved,
//  so a quiet process can skip the line.
bool jr_metrics_line (jr_metrics_t *self, char *buf, size_t size);

//  Latency bounds in seconds, 100 µs to 5 min, for every _seconds histogram.
extern const double jr_metrics_latency_bounds[];
#define JR_METRICS_LATENCY_N 19

//  Prometheus text exposition format 0.0.4: HELP and TYPE per name, then
//  each metric; histograms as cumulative _bucket{le=...}, _sum, _count.
//  Writes at most size bytes, NUL included; returns the length the whole
//  text needs without the NUL (as snprintf does), so a caller can grow.
size_t jr_metrics_expose (jr_metrics_t *self, char *buf, size_t size);
#endif
