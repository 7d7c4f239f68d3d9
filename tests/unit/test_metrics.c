/*  test_metrics.c - counters, gauges, histograms, the stats line and the exposition text  */
#include "common/metrics.h"
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

Test (metrics, counter_counts_and_one_name_with_one_label_is_one_counter)
{
    jr_metrics_t *metrics = jr_metrics_new ("jr_test");
    jr_counter_t *all = jr_metrics_counter (metrics, "jobs", "Jobs.", NULL, NULL);
    cr_assert_eq (jr_counter_value (all), 0);
    jr_counter_inc (all);
    jr_counter_add (all, 41);
    cr_assert_eq (jr_counter_value (all), 42);
    cr_assert_eq (jr_metrics_counter (metrics, "jobs", "Jobs.", NULL, NULL), all);
    jr_counter_t *echo = jr_metrics_counter (metrics, "runs", "Runs.", "task", "echo");
    jr_counter_t *sleep = jr_metrics_counter (metrics, "runs", "Runs.", "task", "sleep");
    cr_assert_neq (echo, sleep);
    cr_assert_eq (jr_metrics_counter (metrics, "runs", "Runs.", "task", "echo"), echo);
    jr_counter_inc (echo);
    cr_assert_eq (jr_counter_value (echo), 1);
    cr_assert_eq (jr_counter_value (sleep), 0);
    jr_metrics_destroy (&metrics);
    cr_assert_null (metrics);
    jr_metrics_destroy (&metrics);  //  idempotent
}

Test (metrics, gauge_is_set_and_moved_both_ways)
{
    jr_metrics_t *metrics = jr_metrics_new ("jr_test");
    jr_gauge_t *live = jr_metrics_gauge (metrics, "live", "Live jobs.", NULL, NULL);
    jr_gauge_set (live, 5);
    jr_gauge_add (live, -7);
    cr_assert_eq (jr_gauge_value (live), -2);
    jr_gauge_set (live, INT64_MAX);
    cr_assert_eq (jr_gauge_value (live), INT64_MAX);
    jr_metrics_destroy (&metrics);
}

//  le is inclusive: a value equal to a bound is counted in that bound's bucket.
Test (metrics, histogram_bucket_boundaries_are_inclusive_and_cumulative)
{
    jr_metrics_t *metrics = jr_metrics_new ("jr");
    double bounds[] = { 0.1, 1, 10 };
    jr_histogram_t *h =
        jr_metrics_histogram (metrics, "run_seconds", "Run time.", NULL, NULL, bounds, 3);
    double values[] = { -1, 0, 0.1, 0.10000000000000002, 1, 10, 10.5, INFINITY };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        jr_histogram_observe (h, values[i]);
    cr_assert_eq (jr_histogram_count (h), 8);
    char text[1024];
    jr_metrics_expose (metrics, text, sizeof text);
    cr_assert_str_eq (text, "# HELP jr_run_seconds Run time.\n"
                            "# TYPE jr_run_seconds histogram\n"
                            "jr_run_seconds_bucket{le=\"0.1\"} 3\n"
                            "jr_run_seconds_bucket{le=\"1\"} 5\n"
                            "jr_run_seconds_bucket{le=\"10\"} 6\n"
                            "jr_run_seconds_bucket{le=\"+Inf\"} 8\n"
                            "jr_run_seconds_sum +Inf\n"
                            "jr_run_seconds_count 8\n");
    jr_metrics_destroy (&metrics);
}

Test (metrics, histogram_sum_and_count)
{
    jr_metrics_t *metrics = jr_metrics_new ("jr");
    double bounds[] = { 0.5 };
    jr_histogram_t *h =
        jr_metrics_histogram (metrics, "wait_seconds", "Wait.", "task", "echo", bounds, 1);
    cr_assert_eq (
        jr_metrics_histogram (metrics, "wait_seconds", "Wait.", "task", "echo", bounds, 1), h);
    jr_histogram_observe (h, 0.25);
    jr_histogram_observe (h, 2);
    cr_assert_eq (jr_histogram_count (h), 2);
    cr_assert_eq (jr_histogram_sum (h), 2.25);
    jr_metrics_destroy (&metrics);
}

//  A small registry, its text exact: order, suffixes, labels, escaping.
Test (metrics, exposition_text_is_exact)
{
    jr_metrics_t *metrics = jr_metrics_new ("jr_broker");
    jr_counter_add (jr_metrics_counter (metrics, "jobs_accepted", "Jobs accepted.", NULL, NULL), 3);
    jr_gauge_set (jr_metrics_gauge (metrics, "workers", "Connected workers.", NULL, NULL), 2);
    jr_counter_t *echo =
        jr_metrics_counter (metrics, "jobs_done", "Jobs done, by task.", "task", "echo");
    jr_counter_t *odd =
        jr_metrics_counter (metrics, "jobs_done", "Jobs done, by task.", "task", "a\"b\\c\nd");
    jr_counter_add (echo, 10);
    jr_counter_inc (odd);
    double bounds[] = { 0.005, 2.5 };
    jr_histogram_t *h = jr_metrics_histogram (metrics, "queue_wait_seconds", "Wait in \\queue\n.",
                                              "task", "echo", bounds, 2);
    jr_histogram_observe (h, 0.001);
    jr_histogram_observe (h, 3);
    const char *want = "# HELP jr_broker_jobs_accepted_total Jobs accepted.\n"
                       "# TYPE jr_broker_jobs_accepted_total counter\n"
                       "jr_broker_jobs_accepted_total 3\n"
                       "# HELP jr_broker_workers Connected workers.\n"
                       "# TYPE jr_broker_workers gauge\n"
                       "jr_broker_workers 2\n"
                       "# HELP jr_broker_jobs_done_total Jobs done, by task.\n"
                       "# TYPE jr_broker_jobs_done_total counter\n"
                       "jr_broker_jobs_done_total{task=\"echo\"} 10\n"
                       "jr_broker_jobs_done_total{task=\"a\\\"b\\\\c\\nd\"} 1\n"
                       "# HELP jr_broker_queue_wait_seconds Wait in \\\\queue\\n.\n"
                       "# TYPE jr_broker_queue_wait_seconds histogram\n"
                       "jr_broker_queue_wait_seconds_bucket{task=\"echo\",le=\"0.005\"} 1\n"
                       "jr_broker_queue_wait_seconds_bucket{task=\"echo\",le=\"2.5\"} 1\n"
                       "jr_broker_queue_wait_seconds_bucket{task=\"echo\",le=\"+Inf\"} 2\n"
                       "jr_broker_queue_wait_seconds_sum{task=\"echo\"} 3.001\n"
                       "jr_broker_queue_wait_seconds_count{task=\"echo\"} 2\n";
    char text[2048];
    size_t len = jr_metrics_expose (metrics, text, sizeof text);
    cr_assert_str_eq (text, want);
    cr_assert_eq (len, strlen (want));
    //  Too small a buffer: a NUL-terminated prefix, and the length it needs.
    char small[16];
    cr_assert_eq (jr_metrics_expose (metrics, small, sizeof small), strlen (want));
    cr_assert_eq (strlen (small), sizeof small - 1);
    cr_assert_eq (strncmp (small, want, sizeof small - 1), 0);
    cr_assert_eq (jr_metrics_expose (metrics, NULL, 0), strlen (want));
    jr_metrics_destroy (&metrics);
}

//  Numbers as Prometheus' own clients print them (Go's shortest 'g').
Test (metrics, exposition_numbers_are_shortest_round_trip)
{
    jr_metrics_t *metrics = jr_metrics_new ("jr");
    double bounds[] = { 1e-05, 0.0001, 0.1, 0.25, 100, 123456, 1e+06, 1234567 };
    jr_histogram_t *h =
        jr_metrics_histogram (metrics, "size_bytes", "Size.", NULL, NULL, bounds, 8);
    jr_histogram_observe (h, 0.1);
    jr_histogram_observe (h, 0.2);
    char text[2048];
    jr_metrics_expose (metrics, text, sizeof text);
    const char *les[] = { "1e-05",  "0.0001", "0.1",          "0.25", "100",
                          "123456", "1e+06",  "1.234567e+06", "+Inf" };
    for (size_t i = 0; i < sizeof les / sizeof les[0]; i++) {
        char want[64];
        snprintf (want, sizeof want, "{le=\"%s\"}", les[i]);
        cr_assert (strstr (text, want), "no %s in %s", want, text);
    }
    cr_assert (strstr (text, "jr_size_bytes_sum 0.30000000000000004\n"), "%s", text);
    jr_metrics_destroy (&metrics);
}

//  Counters and histograms say what changed since the last line, gauges what
//  they are; one name's labels are summed; a quiet interval says so.
Test (metrics, stats_line_says_the_change_since_the_last_line)
{
    jr_metrics_t *metrics = jr_metrics_new ("jr_worker");
    jr_counter_t *done = jr_metrics_counter (metrics, "done", "Done.", NULL, NULL);
    jr_counter_t *echo = jr_metrics_counter (metrics, "runs", "Runs.", "task", "echo");
    jr_counter_t *sleep = jr_metrics_counter (metrics, "runs", "Runs.", "task", "sleep");
    jr_gauge_t *running = jr_metrics_gauge (metrics, "running", "Running.", NULL, NULL);
    double bounds[] = { 1 };
    jr_histogram_t *h =
        jr_metrics_histogram (metrics, "run_seconds", "Run.", NULL, NULL, bounds, 1);
    char line[256];
    cr_assert_not (jr_metrics_line (metrics, line, sizeof line));
    cr_assert_str_eq (line, "done=0 runs=0 running=0 run_seconds_count=0 run_seconds_sum=0");
    jr_counter_add (done, 3);
    jr_counter_inc (echo);
    jr_counter_add (sleep, 2);
    jr_gauge_set (running, 4);
    jr_histogram_observe (h, 0.5);
    cr_assert (jr_metrics_line (metrics, line, sizeof line));
    cr_assert_str_eq (line, "done=3 runs=3 running=4 run_seconds_count=1 run_seconds_sum=0.5");
    jr_counter_inc (done);
    cr_assert (jr_metrics_line (metrics, line, sizeof line));
    cr_assert_str_eq (line, "done=1 runs=0 running=4 run_seconds_count=0 run_seconds_sum=0");
    //  A gauge alone does not make an interval busy; totals stay cumulative.
    jr_gauge_set (running, 1);
    cr_assert_not (jr_metrics_line (metrics, line, sizeof line));
    cr_assert_str_eq (line, "done=0 runs=0 running=1 run_seconds_count=0 run_seconds_sum=0");
    cr_assert_eq (jr_counter_value (done), 4);
    //  A histogram moving alone is news too; a short buffer truncates.
    jr_histogram_observe (h, 2);
    char short_line[8];
    cr_assert (jr_metrics_line (metrics, short_line, sizeof short_line));
    cr_assert_str_eq (short_line, "done=0 ");
    jr_metrics_destroy (&metrics);
}

typedef struct {
    int n;
    uint64_t count[2];  //  counter, histogram
    int64_t gauge;
    char keys[256];
} s_seen_t;

static void
s_each (const jr_metric_view_t *view, void *arg)
{
    s_seen_t *seen = arg;
    seen->n++;
    strcat (seen->keys, view->name);
    strcat (seen->keys, view->value ? view->value : "");
    strcat (seen->keys, " ");
    if (view->type == JR_METRIC_COUNTER) {
        seen->count[0] += view->count;
        cr_assert_eq (view->delta, view->count);
    }
    else if (view->type == JR_METRIC_HISTOGRAM) {
        seen->count[1] = view->count;
        cr_assert_eq (view->sum, 1.5);
    }
    else
        seen->gauge = view->gauge;
}

Test (metrics, each_visits_every_metric_in_registration_order)
{
    jr_metrics_t *metrics = jr_metrics_new ("jr");
    jr_counter_add (jr_metrics_counter (metrics, "a", "A.", "task", "x"), 2);
    jr_gauge_set (jr_metrics_gauge (metrics, "b", "B.", NULL, NULL), -3);
    jr_counter_add (jr_metrics_counter (metrics, "a", "A.", "task", "y"), 5);
    double bounds[] = { 1 };
    jr_histogram_observe (jr_metrics_histogram (metrics, "c_seconds", "C.", NULL, NULL, bounds, 1),
                          1.5);
    s_seen_t seen = { 0 };
    jr_metrics_each (metrics, s_each, &seen);
    cr_assert_eq (seen.n, 4);
    cr_assert_str_eq (seen.keys, "jr_a_totalx jr_a_totaly jr_b jr_c_seconds ");
    cr_assert_eq (seen.count[0], 7);
    cr_assert_eq (seen.count[1], 1);
    cr_assert_eq (seen.gauge, -3);
    jr_metrics_destroy (&metrics);
}

//  Executor threads bump the same counter and histogram: no update is lost.
enum { S_THREADS = 4, S_BUMPS = 200000 };

typedef struct {
    jr_counter_t *counter;
    jr_histogram_t *histogram;
    jr_gauge_t *gauge;
} s_shared_t;

static void *
s_bump (void *arg)
{
    s_shared_t *shared = arg;
    for (int i = 0; i < S_BUMPS; i++) {
        jr_counter_inc (shared->counter);
        jr_histogram_observe (shared->histogram, (i & 1) ? 0.5 : 2);
        jr_gauge_add (shared->gauge, 1);
    }
    return NULL;
}

Test (metrics, threads_bumping_one_counter_lose_nothing)
{
    jr_metrics_t *metrics = jr_metrics_new ("jr");
    double bounds[] = { 1 };
    s_shared_t shared = {
        jr_metrics_counter (metrics, "bumps", "Bumps.", NULL, NULL),
        jr_metrics_histogram (metrics, "bump_seconds", "Bumps.", NULL, NULL, bounds, 1),
        jr_metrics_gauge (metrics, "level", "Level.", NULL, NULL),
    };
    pthread_t threads[S_THREADS];
    for (int t = 0; t < S_THREADS; t++)
        cr_assert_eq (pthread_create (&threads[t], NULL, s_bump, &shared), 0);
    for (int t = 0; t < S_THREADS; t++)
        pthread_join (threads[t], NULL);
    uint64_t total = (uint64_t)S_THREADS * S_BUMPS;
    cr_assert_eq (jr_counter_value (shared.counter), total);
    cr_assert_eq (jr_gauge_value (shared.gauge), (int64_t)total);
    cr_assert_eq (jr_histogram_count (shared.histogram), total);
    //  Halves and twos: every partial sum is exact in a double.
    cr_assert_eq (jr_histogram_sum (shared.histogram), (double)total / 2 * 2.5);
    char text[1024];
    jr_metrics_expose (metrics, text, sizeof text);
    cr_assert (strstr (text, "jr_bump_seconds_bucket{le=\"1\"} 400000\n"), "%s", text);
    cr_assert (strstr (text, "jr_bumps_total 800000\n"), "%s", text);
    jr_metrics_destroy (&metrics);
}

Test (metrics, value_by_key_sums_the_labels)
{
    jr_metrics_t *metrics = jr_metrics_new ("jr_test");
    jr_counter_add (jr_metrics_counter (metrics, "runs", "Runs.", "task", "echo"), 2);
    jr_counter_add (jr_metrics_counter (metrics, "runs", "Runs.", "task", "sleep"), 3);
    jr_gauge_set (jr_metrics_gauge (metrics, "held", "Held.", NULL, NULL), -4);
    int64_t value = 99;
    cr_assert (jr_metrics_value (metrics, "runs", &value));
    cr_assert_eq (value, 5);
    cr_assert (jr_metrics_value (metrics, "held", &value));
    cr_assert_eq (value, -4);
    cr_assert_not (jr_metrics_value (metrics, "jr_test_runs_total", &value), "keys, not names");
    cr_assert_not (jr_metrics_value (metrics, "none", &value));
    cr_assert_eq (value, 0);
    jr_metrics_destroy (&metrics);
}

Test (metrics, two_labels_and_scaled_gauges_are_exposed_in_base_units)
{
    jr_metrics_t *metrics = jr_metrics_new ("jr_test");
    jr_counter_t *failed =
        jr_metrics_counter2 (metrics, "finished", "Finished.", "task", "fail", "outcome", "failed");
    jr_counter_t *ok = jr_metrics_counter2 (metrics, "finished", "Finished.", "task", "echo",
                                            "outcome", "succeeded");
    cr_assert_neq (failed, ok);
    cr_assert_eq (
        jr_metrics_counter2 (metrics, "finished", "Finished.", "task", "fail", "outcome", "failed"),
        failed);
    jr_counter_add (failed, 100);
    jr_gauge_t *oldest =
        jr_metrics_gauge_scaled (metrics, "oldest_seconds", "Oldest.", "task", "echo", 0.001);
    jr_gauge_set (oldest, 1500);
    char text[1024];
    jr_metrics_expose (metrics, text, sizeof text);
    cr_assert (strstr (text, "jr_test_finished_total{task=\"fail\",outcome=\"failed\"} 100\n"),
               "%s", text);
    cr_assert (strstr (text, "jr_test_finished_total{task=\"echo\",outcome=\"succeeded\"} 0\n"),
               "%s", text);
    cr_assert (strstr (text, "jr_test_oldest_seconds{task=\"echo\"} 1.5\n"), "%s", text);
    int64_t sum = 0;
    cr_assert (jr_metrics_value (metrics, "finished", &sum));
    cr_assert_eq (sum, 100);
    jr_metrics_destroy (&metrics);
}

typedef struct {
    jr_metrics_t *metrics;
    int rounds;
} s_register_t;

static void *
s_register (void *arg)
{
    s_register_t *job = arg;
    for (int i = 0; i < job->rounds; i++) {
        char task[32];
        snprintf (task, sizeof task, "t%d", i);
        jr_counter_inc (jr_metrics_counter (job->metrics, "runs", "Runs.", "task", task));
    }
    return NULL;
}

Test (metrics, exposing_while_another_thread_registers_is_safe)
{
    jr_metrics_t *metrics = jr_metrics_new ("jr_test");
    s_register_t job = { metrics, 2000 };
    pthread_t thread;
    cr_assert_eq (pthread_create (&thread, NULL, s_register, &job), 0);
    static char text[1 << 20];
    for (int i = 0; i < 200; i++)
        cr_assert_lt (jr_metrics_expose (metrics, text, sizeof text), sizeof text);
    pthread_join (thread, NULL);
    jr_metrics_expose (metrics, text, sizeof text);
    cr_assert (strstr (text, "jr_test_runs_total{task=\"t1999\"} 1\n"));
    jr_metrics_destroy (&metrics);
}
