/*  metrics.c - counters, gauges and histograms by name, for stats lines and Prometheus  */
#include "common/metrics.h"
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct _s_family_t s_family_t;

//  What every metric starts with, so a family can list them all.
typedef struct _s_series_t {
    s_family_t *family;
    char *value;               //  label value, or NULL
    char *value2;              //  second label's value, or NULL
    struct _s_series_t *next;  //  next metric of the family
    uint64_t logged;           //  count as of the last stats line
    double logged_sum;         //  sum as of the last stats line (histograms)
} s_series_t;

struct _jr_counter_t {
    s_series_t series;
    _Atomic uint64_t value;
};

struct _jr_gauge_t {
    s_series_t series;
    _Atomic int64_t value;
};

struct _jr_histogram_t {
    s_series_t series;
    _Atomic double sum;
    _Atomic uint64_t buckets[];  //  per bound, then +Inf; not cumulative
};

//  All metrics of one name.
struct _s_family_t {
    jr_metric_type_t type;
    char *name;      //  exposed: prefix_name[_total]
    char *key;       //  stats line: name as registered
    char *help;      //
    char *label;     //  label name, or NULL
    char *label2;    //  second label name, or NULL
    double scale;    //  gauges: exposed value = value * scale
    double *bounds;  //  histograms
    size_t nbounds;  //
    s_series_t *head, *tail;
};

struct _jr_metrics_t {
    pthread_mutex_t lock;  //  registration against reading (updates need none)
    char *prefix;
    s_family_t **families;  //  in registration order
    size_t nfamilies;
};

static char *
s_strdup (const char *text)
{
    if (!text)
        return NULL;
    char *copy = strdup (text);
    assert (copy);
    return copy;
}

static bool
s_same (const char *a, const char *b)
{
    return a == b || (a && b && strcmp (a, b) == 0);
}

//  Prometheus names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names without ':'.
static bool
s_valid_name (const char *name, bool colon)
{
    if (!name || !*name || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
              || *c == '_' || (colon && *c == ':')))
            return false;
    return true;
}

jr_metrics_t *
jr_metrics_new (const char *prefix)
{
    assert (s_valid_name (prefix, true));
    jr_metrics_t *self = calloc (1, sizeof *self);
    assert (self);
    self->prefix = s_strdup (prefix);
    pthread_mutex_init (&self->lock, NULL);
    return self;
}

void
jr_metrics_destroy (jr_metrics_t **self_p)
{
    jr_metrics_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nfamilies; i++) {
        s_family_t *family = self->families[i];
        s_series_t *series = family->head;
        while (series) {
            s_series_t *next = series->next;
            free (series->value);
            free (series->value2);
            free (series);
            series = next;
        }
        free (family->name);
        free (family->key);
        free (family->help);
        free (family->label);
        free (family->label2);
        free (family->bounds);
        free (family);
    }
    free (self->families);
    free (self->prefix);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

//  -------------------------------------------------------------------------
//  Registration

//  The labels of one registration.
typedef struct {
    const char *label, *value;    //  first label, or NULLs
    const char *label2, *value2;  //  second label, or NULLs
} s_labels_t;

static s_family_t *
s_family (jr_metrics_t *self, jr_metric_type_t type, const char *name, const char *help,
          const s_labels_t *labels)
{
    for (size_t i = 0; i < self->nfamilies; i++) {
        s_family_t *family = self->families[i];
        if (strcmp (family->key, name) == 0) {
            assert (family->type == type && s_same (family->help, help)
                    && s_same (family->label, labels->label)
                    && s_same (family->label2, labels->label2));
            return family;
        }
    }
    s_family_t *family = calloc (1, sizeof *family);
    assert (family);
    family->type = type;
    family->key = s_strdup (name);
    family->help = s_strdup (help);
    family->label = s_strdup (labels->label);
    family->label2 = s_strdup (labels->label2);
    family->scale = 1;
    const char *suffix = type == JR_METRIC_COUNTER ? "_total" : "";
    size_t len = strlen (self->prefix) + 1 + strlen (name) + strlen (suffix) + 1;
    family->name = malloc (len);
    assert (family->name);
    snprintf (family->name, len, "%s_%s%s", self->prefix, name, suffix);
    self->families = realloc (self->families, (self->nfamilies + 1) * sizeof (void *));
    assert (self->families);
    self->families[self->nfamilies++] = family;
    return family;
}

static bool
s_valid_label (const char *label, const char *value)
{
    return label ? s_valid_name (label, false) && value && strcmp (label, "le") != 0 : !value;
}

//  The family's metric with these label values, or a new one of size
//  bytes. Called with the lock held.
static s_series_t *
s_series_locked (jr_metrics_t *self, jr_metric_type_t type, const char *name, const char *help,
                 const s_labels_t *labels, size_t size)
{
    assert (s_valid_name (name, true) && help);
    assert (s_valid_label (labels->label, labels->value)
            && s_valid_label (labels->label2, labels->value2)
            && (labels->label || !labels->label2));
    assert (type == JR_METRIC_COUNTER
                ? strlen (name) < 6 || strcmp (name + strlen (name) - 6, "_total") != 0
                : true);  //  the suffix is ours to add
    s_family_t *family = s_family (self, type, name, help, labels);
    for (s_series_t *series = family->head; series; series = series->next)
        if (s_same (series->value, labels->value) && s_same (series->value2, labels->value2))
            return series;
    s_series_t *series = calloc (1, size);
    assert (series);
    series->family = family;
    series->value = s_strdup (labels->value);
    series->value2 = s_strdup (labels->value2);
    if (family->tail)
        family->tail->next = series;
    else
        family->head = series;
    family->tail = series;
    return series;
}

static s_series_t *
s_series (jr_metrics_t *self, jr_metric_type_t type, const char *name, const char *help,
          const s_labels_t *labels, size_t size)
{
    pthread_mutex_lock (&self->lock);
    s_series_t *series = s_series_locked (self, type, name, help, labels, size);
    pthread_mutex_unlock (&self->lock);
    return series;
}

jr_counter_t *
jr_metrics_counter (jr_metrics_t *self, const char *name, const char *help, const char *label,
                    const char *value)
{
    return jr_metrics_counter2 (self, name, help, label, value, NULL, NULL);
}

jr_counter_t *
jr_metrics_counter2 (jr_metrics_t *self, const char *name, const char *help, const char *label,
                     const char *value, const char *label2, const char *value2)
{
    s_labels_t labels = { label, value, label2, value2 };
    return (jr_counter_t *)s_series (self, JR_METRIC_COUNTER, name, help, &labels,
                                     sizeof (jr_counter_t));
}

jr_gauge_t *
jr_metrics_gauge (jr_metrics_t *self, const char *name, const char *help, const char *label,
                  const char *value)
{
    return jr_metrics_gauge_scaled (self, name, help, label, value, 1);
}

jr_gauge_t *
jr_metrics_gauge_scaled (jr_metrics_t *self, const char *name, const char *help, const char *label,
                         const char *value, double scale)
{
    s_labels_t labels = { label, value, NULL, NULL };
    pthread_mutex_lock (&self->lock);
    s_series_t *series =
        s_series_locked (self, JR_METRIC_GAUGE, name, help, &labels, sizeof (jr_gauge_t));
    if (series == series->family->head)
        series->family->scale = scale;
    assert (series->family->scale == scale);
    pthread_mutex_unlock (&self->lock);
    return (jr_gauge_t *)series;
}

jr_histogram_t *
jr_metrics_histogram (jr_metrics_t *self, const char *name, const char *help, const char *label,
                      const char *value, const double *bounds, size_t nbounds)
{
    assert (bounds && nbounds);
    for (size_t i = 0; i < nbounds; i++)
        assert (isfinite (bounds[i]) && (i == 0 || bounds[i - 1] < bounds[i]));
    size_t size = sizeof (jr_histogram_t) + (nbounds + 1) * sizeof (_Atomic uint64_t);
    s_labels_t labels = { label, value, NULL, NULL };
    pthread_mutex_lock (&self->lock);
    s_series_t *series = s_series_locked (self, JR_METRIC_HISTOGRAM, name, help, &labels, size);
    s_family_t *family = series->family;
    if (!family->bounds) {
        family->bounds = malloc (nbounds * sizeof *bounds);
        assert (family->bounds);
        memcpy (family->bounds, bounds, nbounds * sizeof *bounds);
        family->nbounds = nbounds;
    }
    assert (family->nbounds == nbounds
            && memcmp (family->bounds, bounds, nbounds * sizeof *bounds) == 0);
    pthread_mutex_unlock (&self->lock);
    return (jr_histogram_t *)series;
}

//  -------------------------------------------------------------------------
//  Updates: relaxed atomics, as each figure stands alone

void
jr_counter_add (jr_counter_t *self, uint64_t n)
{
    atomic_fetch_add_explicit (&self->value, n, memory_order_relaxed);
}

void
jr_counter_inc (jr_counter_t *self)
{
    atomic_fetch_add_explicit (&self->value, 1, memory_order_relaxed);
}

uint64_t
jr_counter_value (const jr_counter_t *self)
{
    return atomic_load_explicit (&self->value, memory_order_relaxed);
}

void
jr_gauge_set (jr_gauge_t *self, int64_t value)
{
    atomic_store_explicit (&self->value, value, memory_order_relaxed);
}

void
jr_gauge_add (jr_gauge_t *self, int64_t delta)
{
    atomic_fetch_add_explicit (&self->value, delta, memory_order_relaxed);
}

int64_t
jr_gauge_value (const jr_gauge_t *self)
{
    return atomic_load_explicit (&self->value, memory_order_relaxed);
}

void
jr_histogram_observe (jr_histogram_t *self, double value)
{
    const s_family_t *family = self->series.family;
    size_t i = 0;
    while (i < family->nbounds && !(value <= family->bounds[i]))
        i++;  //  NaN fails every test and lands in +Inf
    atomic_fetch_add_explicit (&self->buckets[i], 1, memory_order_relaxed);
    double sum = atomic_load_explicit (&self->sum, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit (&self->sum, &sum, sum + value,
                                                   memory_order_relaxed, memory_order_relaxed))
        ;
}

//  The count is the buckets' total, so it always equals the +Inf bucket.
uint64_t
jr_histogram_count (const jr_histogram_t *self)
{
    uint64_t count = 0;
    for (size_t i = 0; i <= self->series.family->nbounds; i++)
        count += atomic_load_explicit (&self->buckets[i], memory_order_relaxed);
    return count;
}

double
jr_histogram_sum (const jr_histogram_t *self)
{
    return atomic_load_explicit (&self->sum, memory_order_relaxed);
}

//  -------------------------------------------------------------------------
//  Reading

static void
s_view (s_series_t *series, jr_metric_view_t *view)
{
    const s_family_t *family = series->family;
    *view = (jr_metric_view_t){ .name = family->name,
                                .key = family->key,
                                .help = family->help,
                                .label = family->label,
                                .value = series->value,
                                .label2 = family->label2,
                                .value2 = series->value2,
                                .type = family->type };
    if (family->type == JR_METRIC_COUNTER)
        view->count = jr_counter_value ((jr_counter_t *)series);
    else if (family->type == JR_METRIC_GAUGE)
        view->gauge = jr_gauge_value ((jr_gauge_t *)series);
    else {
        view->count = jr_histogram_count ((jr_histogram_t *)series);
        view->sum = jr_histogram_sum ((jr_histogram_t *)series);
    }
    view->delta = view->count - series->logged;
}

void
jr_metrics_each (jr_metrics_t *self, jr_metrics_fn *fn, void *arg)
{
    pthread_mutex_lock (&self->lock);
    for (size_t i = 0; i < self->nfamilies; i++)
        for (s_series_t *series = self->families[i]->head; series; series = series->next) {
            jr_metric_view_t view;
            s_view (series, &view);
            fn (&view, arg);
        }
    pthread_mutex_unlock (&self->lock);
}

typedef struct {
    const char *key;
    int64_t value;
    bool found;
} s_lookup_t;

static void
s_lookup (const jr_metric_view_t *view, void *arg)
{
    s_lookup_t *want = arg;
    if (strcmp (view->key, want->key) == 0) {
        want->value += view->type == JR_METRIC_GAUGE ? view->gauge : (int64_t)view->count;
        want->found = true;
    }
}

bool
jr_metrics_value (jr_metrics_t *self, const char *key, int64_t *value)
{
    s_lookup_t want = { key, 0, false };
    jr_metrics_each (self, s_lookup, &want);
    *value = want.value;
    return want.found;
}

//  Appends to a fixed buffer, counting what did not fit.
typedef struct {
    char *buf;
    size_t size, len;
} s_out_t;

static void __attribute__ ((format (printf, 2, 3))) s_put (s_out_t *out, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    size_t room = out->len < out->size ? out->size - out->len : 0;
    int n = vsnprintf (room ? out->buf + out->len : NULL, room, format, args);
    va_end (args);
    assert (n >= 0);
    out->len += (size_t)n;
}

bool
jr_metrics_line (jr_metrics_t *self, char *buf, size_t size)
{
    s_out_t out = { buf, size, 0 };
    if (size)
        buf[0] = 0;
    bool moved = false;
    pthread_mutex_lock (&self->lock);
    for (size_t i = 0; i < self->nfamilies; i++) {
        const s_family_t *family = self->families[i];
        uint64_t delta = 0;
        int64_t gauge = 0;
        double sum = 0;
        for (s_series_t *series = family->head; series; series = series->next) {
            jr_metric_view_t view;
            s_view (series, &view);
            delta += view.delta;
            gauge += view.gauge;
            sum += view.sum - series->logged_sum;
            series->logged = view.count;
            series->logged_sum = view.sum;
        }
        const char *sep = out.len ? " " : "";
        if (family->type == JR_METRIC_GAUGE)
            s_put (&out, "%s%s=%" PRId64, sep, family->key, gauge);
        else if (family->type == JR_METRIC_COUNTER)
            s_put (&out, "%s%s=%" PRIu64, sep, family->key, delta);
        else
            s_put (&out, "%s%s_count=%" PRIu64 " %s_sum=%g", sep, family->key, delta, family->key,
                   sum);
        moved |= family->type != JR_METRIC_GAUGE && delta;
    }
    pthread_mutex_unlock (&self->lock);
    return moved;
}

//  -------------------------------------------------------------------------
//  Prometheus text format 0.0.4

//  The shortest text that reads back as the same double, laid out as Go's
//  strconv 'g' does (Prometheus' own clients): "10", "0.005", "1e+06".
static void
s_put_double (s_out_t *out, double value)
{
    if (isnan (value) || isinf (value)) {
        s_put (out, isnan (value) ? "NaN" : value > 0 ? "+Inf" : "-Inf");
        return;
    }
    char text[32];
    int digits = 1;
    for (; digits < 17; digits++) {
        snprintf (text, sizeof text, "%.*e", digits - 1, value);
        if (strtod (text, NULL) == value)
            break;
    }
    snprintf (text, sizeof text, "%.*e", digits - 1, value);
    int exp = atoi (strchr (text, 'e') + 1);
    if (exp >= -4 && exp < 6)
        snprintf (text, sizeof text, "%.*f", digits - 1 - exp > 0 ? digits - 1 - exp : 0, value);
    s_put (out, "%s", text);
}

//  HELP escapes '\' and newline; label values also '"'.
static void
s_put_escaped (s_out_t *out, const char *text, bool quote)
{
    for (const char *c = text; *c; c++) {
        if (*c == '\\')
            s_put (out, "\\\\");
        else if (*c == '\n')
            s_put (out, "\\n");
        else if (*c == '"' && quote)
            s_put (out, "\\\"");
        else
            s_put (out, "%c", *c);
    }
}

//  name{label="value",le="bound"}; either part may be absent.
static void
s_put_sample (s_out_t *out, const s_family_t *family, const s_series_t *series, const char *suffix,
              const double *le)
{
    s_put (out, "%s%s", family->name, suffix);
    if (family->label || le)
        s_put (out, "{");
    if (family->label) {
        s_put (out, "%s=\"", family->label);
        s_put_escaped (out, series->value, true);
        s_put (out, "\"");
    }
    if (family->label2) {
        s_put (out, ",%s=\"", family->label2);
        s_put_escaped (out, series->value2, true);
        s_put (out, "\"");
    }
    if (family->label && le)
        s_put (out, ",");
    if (le) {
        s_put (out, "le=\"");
        s_put_double (out, *le);
        s_put (out, "\"");
    }
    if (family->label || le)
        s_put (out, "}");
    s_put (out, " ");
}

static void
s_put_histogram (s_out_t *out, const s_family_t *family, const s_series_t *series)
{
    const jr_histogram_t *histogram = (const jr_histogram_t *)series;
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= family->nbounds; b++) {
        cumulative += atomic_load_explicit (&histogram->buckets[b], memory_order_relaxed);
        double le = b < family->nbounds ? family->bounds[b] : INFINITY;
        s_put_sample (out, family, series, "_bucket", &le);
        s_put (out, "%" PRIu64 "\n", cumulative);
    }
    s_put_sample (out, family, series, "_sum", NULL);
    s_put_double (out, jr_histogram_sum (histogram));
    s_put (out, "\n");
    s_put_sample (out, family, series, "_count", NULL);
    s_put (out, "%" PRIu64 "\n", cumulative);
}

size_t
jr_metrics_expose (jr_metrics_t *self, char *buf, size_t size)
{
    static const char *types[] = { "counter", "gauge", "histogram" };
    s_out_t out = { buf, size, 0 };
    if (size)
        buf[0] = 0;
    pthread_mutex_lock (&self->lock);
    for (size_t i = 0; i < self->nfamilies; i++) {
        const s_family_t *family = self->families[i];
        s_put (&out, "# HELP %s ", family->name);
        s_put_escaped (&out, family->help, false);
        s_put (&out, "\n# TYPE %s %s\n", family->name, types[family->type]);
        for (s_series_t *series = family->head; series; series = series->next) {
            if (family->type == JR_METRIC_HISTOGRAM)
                s_put_histogram (&out, family, series);
            else {
                s_put_sample (&out, family, series, "", NULL);
                if (family->type == JR_METRIC_COUNTER)
                    s_put (&out, "%" PRIu64 "\n", jr_counter_value ((jr_counter_t *)series));
                else if (family->scale == 1)
                    s_put (&out, "%" PRId64 "\n", jr_gauge_value ((jr_gauge_t *)series));
                else {
                    s_put_double (&out,
                                  (double)jr_gauge_value ((jr_gauge_t *)series) * family->scale);
                    s_put (&out, "\n");
                }
            }
        }
    }
    pthread_mutex_unlock (&self->lock);
    return out.len;
}

const double jr_metrics_latency_bounds[JR_METRICS_LATENCY_N] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25,   0.5,     1,      2.5,   5,      10,    30,   60,    300,
};
