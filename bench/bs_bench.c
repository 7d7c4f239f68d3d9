/*  bs_bench.c - bs-bench: the reference workload on beanstalkd, over its text protocol  */
#include "bench/percentile.h"
#include "bench/refjob.h"
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

//  A job body is the 16-byte id then the reference vars; a result body is
//  the id then the 64-byte payload (what echo returns).
#define S_ID_SIZE     16
#define S_JOB_BODY    (S_ID_SIZE + BENCH_VARS_LEN)
#define S_RESULT_BODY (S_ID_SIZE + BENCH_MSG_LEN)
#define S_WINDOW      1000  //  puts sent before their replies are read
#define S_MAX_WORKERS 64
#define S_MAX_THREADS 1024  //  connections per worker process

static const char *s_usage =
    "usage: bs-bench throughput|latency --port P [--jobs N] [--workers W] [--concurrency C]\n"
    "  W worker processes, each with C connections (threads) that reserve from tube\n"
    "  'jobs', put the result to tube 'results' and delete the job; an ingester\n"
    "  connection reserves and deletes the results. Prints one key=value line.\n";

static int64_t
s_mono_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double
s_tv (struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

//  -------------------------------------------------------------------------
//  A connection with a read buffer

typedef struct {
    int fd;
    char buf[1 << 16];
    size_t head, tail;  //  unread bytes are buf[head..tail)
} s_conn_t;

static void
s_die (const char *what)
{
    fprintf (stderr, "bs-bench: %s: %s\n", what, errno ? strerror (errno) : "protocol error");
    exit (1);
}

static s_conn_t *
s_conn_new (int port)
{
    s_conn_t *c = calloc (1, sizeof *c);
    assert (c);
    c->fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_port = htons ((uint16_t)port),
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    if (c->fd == -1 || connect (c->fd, (struct sockaddr *)&addr, sizeof addr) == -1)
        s_die ("connect");
    int one = 1;  //  as ZeroMQ does on its TCP connections
    setsockopt (c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}

static void
s_conn_send (s_conn_t *c, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write (c->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            s_die ("write");
        p += n, len -= (size_t)n;
    }
}

//  Make at least `want` bytes readable in the buffer.
static void
s_conn_fill (s_conn_t *c, size_t want)
{
    assert (want <= sizeof c->buf);
    if (c->tail - c->head >= want)
        return;
    if (c->head) {
        memmove (c->buf, c->buf + c->head, c->tail - c->head);
        c->tail -= c->head, c->head = 0;
    }
    while (c->tail < want) {
        ssize_t n = read (c->fd, c->buf + c->tail, sizeof c->buf - c->tail);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            s_die ("read");
        c->tail += (size_t)n;
    }
}

//  The next reply line, NUL-terminated in place, without its \r\n.
static char *
s_conn_line (s_conn_t *c)
{
    size_t scanned = 0;
    while (true) {
        char *start = c->buf + c->head;
        size_t have = c->tail - c->head;
        for (size_t i = scanned ? scanned - 1 : 0; i + 1 < have; i++)
            if (start[i] == '\r' && start[i + 1] == '\n') {
                start[i] = 0;
                c->head += i + 2;
                return start;
            }
        scanned = have;
        if (have == sizeof c->buf)
            s_die ("reply line too long");
        s_conn_fill (c, have + 1);
    }
}

//  The next n bytes (then \r\n), valid until the next read.
static const uint8_t *
s_conn_body (s_conn_t *c, size_t n)
{
    s_conn_fill (c, n + 2);
    const uint8_t *body = (const uint8_t *)c->buf + c->head;
    if (body[n] != '\r' || body[n + 1] != '\n')
        s_die ("body not followed by CRLF");
    c->head += n + 2;
    return body;
}

static void
s_expect (s_conn_t *c, const char *prefix)
{
    char *line = s_conn_line (c);
    if (strncmp (line, prefix, strlen (prefix)) != 0) {
        fprintf (stderr, "bs-bench: expected %s, got '%s'\n", prefix, line);
        exit (1);
    }
}

//  Reserve one job: its id in *id, its body (valid until the next read).
static const uint8_t *
s_reserve_reply (s_conn_t *c, unsigned long long *id, size_t *len)
{
    char *line = s_conn_line (c);
    unsigned long long bytes;
    if (sscanf (line, "RESERVED %llu %llu", id, &bytes) != 2) {
        fprintf (stderr, "bs-bench: expected RESERVED, got '%s'\n", line);
        exit (1);
    }
    *len = (size_t)bytes;
    return s_conn_body (c, *len);
}

static void
s_watch (s_conn_t *c, const char *tube)
{
    char cmd[128];
    int n = snprintf (cmd, sizeof cmd, "watch %s\r\nignore default\r\n", tube);
    s_conn_send (c, cmd, (size_t)n);
    s_expect (c, "WATCHING");
    s_expect (c, "WATCHING");
}

static void
s_use (s_conn_t *c, const char *tube)
{
    char cmd[128];
    int n = snprintf (cmd, sizeof cmd, "use %s\r\n", tube);
    s_conn_send (c, cmd, (size_t)n);
    s_expect (c, "USING");
}

//  -------------------------------------------------------------------------
//  Worker: reserve, run echo, put the result, delete the job

static void *
s_worker_thread (void *arg)
{
    int port = (int)(intptr_t)arg;
    s_conn_t *c = s_conn_new (port);
    s_use (c, "results");
    s_watch (c, "jobs");
    char out[256 + S_RESULT_BODY];
    while (true) {
        s_conn_send (c, "reserve\r\n", 9);
        unsigned long long id;
        size_t len;
        const uint8_t *body = s_reserve_reply (c, &id, &len);
        const uint8_t *msg =
            len == S_JOB_BODY ? bench_vars_msg (body + S_ID_SIZE, len - S_ID_SIZE) : NULL;
        if (!msg)
            s_die ("job body is not a reference job");
        //  put + delete in one write: two replies, one round trip.
        int n = snprintf (out, 64, "put 1024 0 60 %d\r\n", S_RESULT_BODY);
        memcpy (out + n, body, S_ID_SIZE);
        memcpy (out + n + S_ID_SIZE, msg, BENCH_MSG_LEN);
        n += S_RESULT_BODY;
        n += snprintf (out + n, 64, "\r\ndelete %llu\r\n", id);
        s_conn_send (c, out, (size_t)n);
        s_expect (c, "INSERTED");
        s_expect (c, "DELETED");
    }
    return NULL;
}

static pid_t
s_worker_start (int port, int threads)
{
    pid_t pid = fork ();
    if (pid != 0)
        return pid;
    pthread_t t[S_MAX_THREADS];
    for (int i = 0; i < threads; i++)
        if (pthread_create (&t[i], NULL, s_worker_thread, (void *)(intptr_t)port) != 0)
            abort ();
    for (int i = 0; i < threads; i++)
        pthread_join (t[i], NULL);
    _exit (0);
}

//  -------------------------------------------------------------------------
//  Producer

static void
s_job_body (uint8_t body[S_JOB_BODY], uint32_t n)
{
    memset (body, 0, S_ID_SIZE);
    for (int i = 0; i < 4; i++)  //  an id as unique as the job number
        body[i] = (uint8_t)(n >> (24 - 8 * i));
    bench_vars (body + S_ID_SIZE, n);
}

static size_t
s_put_cmd (char *out, uint32_t n)
{
    int len = snprintf (out, 64, "put 1024 0 60 %d\r\n", S_JOB_BODY);
    s_job_body ((uint8_t *)out + len, n);
    memcpy (out + len + S_JOB_BODY, "\r\n", 2);
    return (size_t)len + S_JOB_BODY + 2;
}

//  -------------------------------------------------------------------------

typedef struct {
    int port, workers, concurrency;
    long jobs;
} s_args_t;

static void
s_stop_workers (pid_t *pids, int n, struct rusage *ru)
{
    memset (ru, 0, sizeof *ru);
    for (int i = 0; i < n; i++) {
        kill (pids[i], SIGTERM);
        struct rusage one;
        int status;
        wait4 (pids[i], &status, 0, &one);
        ru->ru_utime.tv_sec += one.ru_utime.tv_sec, ru->ru_utime.tv_usec += one.ru_utime.tv_usec;
        ru->ru_stime.tv_sec += one.ru_stime.tv_sec, ru->ru_stime.tv_usec += one.ru_stime.tv_usec;
        if (one.ru_maxrss > ru->ru_maxrss)
            ru->ru_maxrss = one.ru_maxrss;
    }
}

static int
s_throughput (const s_args_t *a)
{
    //  The ingester: a child that reserves and deletes every result, then
    //  reports when the last was deleted.
    int pipefd[2];
    if (pipe (pipefd) == -1)
        s_die ("pipe");
    pid_t ingester = fork ();
    if (ingester == 0) {
        close (pipefd[0]);
        s_conn_t *c = s_conn_new (a->port);
        s_watch (c, "results");
        s_conn_send (c, "reserve\r\n", 9);
        char cmd[64];
        for (long seen = 0; seen < a->jobs; seen++) {
            unsigned long long id;
            size_t len;
            s_reserve_reply (c, &id, &len);
            if (len != S_RESULT_BODY)
                s_die ("result of the wrong size");
            //  delete this one and ask for the next in one write
            int n = snprintf (cmd, sizeof cmd, "delete %llu\r\n%s", id,
                              seen + 1 < a->jobs ? "reserve\r\n" : "");
            s_conn_send (c, cmd, (size_t)n);
            s_expect (c, "DELETED");
        }
        int64_t done = s_mono_us ();
        if (write (pipefd[1], &done, sizeof done) != sizeof done)
            _exit (1);
        _exit (0);
    }
    close (pipefd[1]);
    pid_t workers[S_MAX_WORKERS];
    for (int i = 0; i < a->workers; i++)
        workers[i] = s_worker_start (a->port, a->concurrency);
    usleep (200000);  //  let everyone connect and watch

    struct rusage ru0, ru1;
    getrusage (RUSAGE_SELF, &ru0);
    s_conn_t *c = s_conn_new (a->port);
    s_use (c, "jobs");
    char *window = malloc ((size_t)S_WINDOW * (64 + S_JOB_BODY + 2));
    assert (window);
    int64_t t0 = s_mono_us ();
    for (long sent = 0; sent < a->jobs;) {
        size_t len = 0;
        long k = 0;
        for (; k < S_WINDOW && sent + k < a->jobs; k++)
            len += s_put_cmd (window + len, (uint32_t)(sent + k));
        s_conn_send (c, window, len);
        for (long i = 0; i < k; i++)
            s_expect (c, "INSERTED");
        sent += k;
    }
    int64_t t_put = s_mono_us ();
    getrusage (RUSAGE_SELF, &ru1);
    int64_t t_done = 0;
    if (read (pipefd[0], &t_done, sizeof t_done) != sizeof t_done)
        s_die ("ingester did not report");
    struct rusage ru_ing, ru_workers;
    int status;
    wait4 (ingester, &status, 0, &ru_ing);
    s_stop_workers (workers, a->workers, &ru_workers);
    double secs = (double)(t_done - t0) / 1e6;
    printf ("throughput jobs=%ld secs=%.3f rate=%.0f put_secs=%.3f producer_cpu=%.3f"
            " workers_cpu=%.3f ingester_cpu=%.3f workers_maxrss_kb=%ld ingester_maxrss_kb=%ld\n",
            a->jobs, secs, (double)a->jobs / secs, (double)(t_put - t0) / 1e6,
            s_tv (ru1.ru_utime) + s_tv (ru1.ru_stime) - s_tv (ru0.ru_utime) - s_tv (ru0.ru_stime),
            s_tv (ru_workers.ru_utime) + s_tv (ru_workers.ru_stime),
            s_tv (ru_ing.ru_utime) + s_tv (ru_ing.ru_stime), ru_workers.ru_maxrss,
            ru_ing.ru_maxrss);
    free (window);
    return 0;
}

static int
s_latency (const s_args_t *a)
{
    pid_t workers[S_MAX_WORKERS];
    for (int i = 0; i < a->workers; i++)
        workers[i] = s_worker_start (a->port, a->concurrency);
    s_conn_t *prod = s_conn_new (a->port);
    s_use (prod, "jobs");
    s_conn_t *ing = s_conn_new (a->port);
    s_watch (ing, "results");
    usleep (200000);
    long warmup = 20;
    int64_t *lat = calloc ((size_t)a->jobs, sizeof *lat);
    assert (lat);
    char cmd[256];
    for (long i = -warmup; i < a->jobs; i++) {
        size_t len = s_put_cmd (cmd, (uint32_t)(i + warmup));
        int64_t t0 = s_mono_us ();
        s_conn_send (prod, cmd, len);
        s_expect (prod, "INSERTED");
        s_conn_send (ing, "reserve\r\n", 9);
        unsigned long long id;
        size_t blen;
        s_reserve_reply (ing, &id, &blen);
        int64_t t1 = s_mono_us ();
        int n = snprintf (cmd, sizeof cmd, "delete %llu\r\n", id);
        s_conn_send (ing, cmd, (size_t)n);
        s_expect (ing, "DELETED");
        if (i >= 0)
            lat[i] = t1 - t0;
    }
    struct rusage ru;
    s_stop_workers (workers, a->workers, &ru);
    bench_pct_t pct = bench_percentiles (lat, (size_t)a->jobs);
    printf ("latency jobs=%ld p50_us=%lld p99_us=%lld\n", a->jobs, (long long)pct.p50,
            (long long)pct.p99);
    free (lat);
    return 0;
}

int
main (int argc, char **argv)
{
    s_args_t a = { .workers = 2, .concurrency = 2, .jobs = 1000 };
    const char *command = NULL;
    for (int i = 1; i < argc; i++) {
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (argv[i], "--help") == 0) {
            fputs (s_usage, stdout);
            return 0;
        }
        else if (strncmp (argv[i], "--", 2) == 0 && !val) {
            fprintf (stderr, "bs-bench: %s needs a value\n%s", argv[i], s_usage);
            return 2;
        }
        else if (strcmp (argv[i], "--port") == 0)
            a.port = atoi (val), i++;
        else if (strcmp (argv[i], "--jobs") == 0)
            a.jobs = atol (val), i++;
        else if (strcmp (argv[i], "--workers") == 0)
            a.workers = atoi (val), i++;
        else if (strcmp (argv[i], "--concurrency") == 0)
            a.concurrency = atoi (val), i++;
        else if (!command && argv[i][0] != '-')
            command = argv[i];
        else {
            fprintf (stderr, "bs-bench: unexpected argument %s\n%s", argv[i], s_usage);
            return 2;
        }
    }
    if (!command || a.port <= 0 || a.port > 65535 || a.jobs < 1 || a.jobs > 100000000
        || a.workers < 1 || a.workers > S_MAX_WORKERS || a.concurrency < 1
        || a.concurrency > S_MAX_THREADS) {
        fputs (s_usage, stderr);
        return 2;
    }
    signal (SIGPIPE, SIG_IGN);
    if (strcmp (command, "throughput") == 0)
        return s_throughput (&a);
    if (strcmp (command, "latency") == 0)
        return s_latency (&a);
    fputs (s_usage, stderr);
    return 2;
}
