/*  config.c - what an operator tells jr-worker: flags and environment, defaults and limits, --task-timeout rules  */
#include "worker/config.h"
#include "common/log.h"
#include "common/opts.h"
#include "proto/proto.h"
#include <assert.h>
#include <czmq.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <unistd.h>

#define S_STR(x)  #x
#define S_XSTR(x) S_STR (x)  //  a macro's value as a string literal

//  -------------------------------------------------------------------------
//  Flags

enum {
    O_BROKER,
    O_INGESTER,
    O_CONCURRENCY,
    O_PREFETCH,
    O_NAME,
    O_TASKS,
    O_PLUGIN,
    O_ISOLATE,
    O_TASK_TIMEOUT,
    O_KILL_GRACE,
    O_MAX_PAYLOAD,
    O_GRACE,
    O_BACKLOG,
    O_VERBOSE,
    O_RUN_TASK,
    O_KEYS,
    O_HEALTH_FILE,
    O_METRICS,
    O_COUNT
};

int
jr_worker_args_parse (jr_worker_args_t *args, int argc, char **argv)
{
    assert (args);
    jr_opt_t opts[] = {
        { "broker", "JR_WORKER_BROKER", JR_WORKER_DEFAULT_BROKER, "broker endpoint for workers" },
        { "ingester", "JR_INGESTER", JR_WORKER_DEFAULT_INGESTER, "ingester endpoint" },
        { "concurrency", "JR_CONCURRENCY", NULL, "tasks run at once (default: number of cores)" },
        { "prefetch", "JR_PREFETCH", "0",
          "jobs taken beyond --concurrency, to start the moment a task ends; their"
          " deadlines run while they wait (for short tasks)" },
        { "name", "JR_WORKER_NAME", NULL, "worker name (default: <host>-<pid>)" },
        { "tasks", "JR_WORKER_TASKS", NULL,
          "comma-separated tasks to serve (default: all but exec, which runs programs)" },
        { "plugin", "JR_WORKER_PLUGINS", NULL, "comma-separated task plugins (.so) to load" },
        { "isolate", "JR_WORKER_ISOLATE", NULL,
          "comma-separated tasks (or all) to run in a child process" },
        { "task-timeout", "JR_TASK_TIMEOUT", NULL,
          "NAME=MS[,NAME=MS...]: deadline of jobs of a task sent without one (*=MS: any task)" },
        { "kill-grace", "JR_KILL_GRACE_MS", "2000",
          "ms from SIGTERM to SIGKILL for exec and isolated tasks" },
        { "max-payload", "JR_MAX_PAYLOAD", "16777216", "largest payload of one job, bytes" },
        { "grace", "JR_GRACE_MS", "10000",
          "ms a SIGTERM lets running jobs finish before handing them back" },
        { "backlog", "JR_BACKLOG", S_XSTR (JR_WORKER_DEFAULT_BACKLOG),
          "results waiting for the ingester's ACK before no new job is taken" },
        { "verbose", NULL, NULL, "log at debug level", true },
        { "run-task", NULL, NULL, "internal: run one job from stdin (for --isolate)", true, NULL,
          true },
        { "keys", "JR_KEYS", NULL, "CurveZMQ keys folder (docs/operations.md, Keys)" },
        { "health-file", "JR_WORKER_HEALTH_FILE", NULL,
          "file touched (at most once a second) whenever the broker is heard" },
        { "metrics", NULL, NULL,
          "serve Prometheus metrics at http://HOST:PORT/metrics (off by default), e.g. "
          "127.0.0.1:9103" },
    };
    static_assert (sizeof opts / sizeof opts[0] == O_COUNT, "one enum value per flag");
    int nargs = jr_opts_parse_config (argc, argv, opts, O_COUNT, "jr-worker [options]");
    if (nargs > 1) {
        jr_opts_error ("unexpected argument '%s' (see --help)", argv[1]);
        return 2;
    }
    *args = (jr_worker_args_t){ .plugins = opts[O_PLUGIN].value,
                                .verbose = opts[O_VERBOSE].value != NULL,
                                .run_task = opts[O_RUN_TASK].value != NULL,
                                .keys = opts[O_KEYS].value,
                                .metrics = opts[O_METRICS].value };
    if (args->run_task)
        return 0;  //  the child reads its job from stdin, not these values
    args->isolate = opts[O_ISOLATE].value;
    args->kill_grace_ms = (int)jr_opts_int (&opts[O_KILL_GRACE], 0, 3600 * 1000);
    args->worker = (jr_worker_config_t){
        .broker = opts[O_BROKER].value,
        .ingester = opts[O_INGESTER].value,
        .name = opts[O_NAME].value,
        .tasks = opts[O_TASKS].value,
        .task_timeouts = opts[O_TASK_TIMEOUT].value,
        .max_payload = (size_t)jr_opts_int (&opts[O_MAX_PAYLOAD], 1, JR_MAX_PAYLOAD),
        .backlog = (size_t)jr_opts_int (&opts[O_BACKLOG], 1, 10000000),
        .prefetch = (int)jr_opts_int (&opts[O_PREFETCH], 0, JR_WORKER_MAX_PREFETCH),
        .health_file = opts[O_HEALTH_FILE].value,
    };
    if (opts[O_CONCURRENCY].value)
        args->worker.concurrency =
            (int)jr_opts_int (&opts[O_CONCURRENCY], 1, JR_WORKER_MAX_CONCURRENCY);
    long grace = jr_opts_int (&opts[O_GRACE], 0, 24L * 3600 * 1000);
    args->worker.grace_ms = grace ? (int)grace : -1;  //  0: hand back at once
    return 0;
}

//  -------------------------------------------------------------------------
//  Defaults and limits

int
jr_worker_config_resolve (const jr_worker_config_t *cfg, jr_worker_config_t *out)
{
    jr_worker_config_t c = cfg ? *cfg : (jr_worker_config_t){ 0 };
    if (c.concurrency < 0 || c.prefetch < 0 || c.heartbeat_ms < 0 || c.liveness_ms < 0
        || c.resend_ms < 0) {
        jr_error ("concurrency, prefetch, heartbeat, liveness and resend must not be negative");
        return -1;
    }
    if (c.concurrency > JR_WORKER_MAX_CONCURRENCY || c.prefetch > JR_WORKER_MAX_PREFETCH) {
        jr_error ("concurrency=%d prefetch=%d: at most %d and %d", c.concurrency, c.prefetch,
                  JR_WORKER_MAX_CONCURRENCY, JR_WORKER_MAX_PREFETCH);
        return -1;
    }
    if (c.name && strlen (c.name) > JR_MAX_NAME) {
        jr_error ("name is longer than %d bytes", JR_MAX_NAME);
        return -1;
    }
    c.broker = c.broker && *c.broker ? c.broker : JR_WORKER_DEFAULT_BROKER;
    c.ingester = c.ingester && *c.ingester ? c.ingester : JR_WORKER_DEFAULT_INGESTER;
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    c.concurrency = c.concurrency ? c.concurrency : (cores > 0 ? (int)cores : 1);
    c.heartbeat_ms = c.heartbeat_ms ? c.heartbeat_ms : 1000;
    c.liveness_ms = c.liveness_ms ? c.liveness_ms : 5000;
    c.resend_ms = c.resend_ms ? c.resend_ms : 2000;
    c.backlog = c.backlog ? c.backlog : JR_WORKER_DEFAULT_BACKLOG;
    c.grace_ms = c.grace_ms < 0 ? -1 : c.grace_ms ? c.grace_ms : 10000;
    c.max_payload =
        c.max_payload && c.max_payload < JR_MAX_PAYLOAD ? c.max_payload : JR_MAX_PAYLOAD;
    *out = c;
    return 0;
}

//  -------------------------------------------------------------------------
//  --task-timeout

//  One task's deadline.
typedef struct {
    char *name;   //  owned
    uint32_t ms;  //  0 = none
} s_rule_t;

struct _jr_task_timeouts_t {
    zlistx_t *rules;              //  s_rule_t, per task
    uint32_t default_timeout_ms;  //  "*=MS": every task without its own, 0 = none
};

static void
s_rule_free (void **item)
{
    s_rule_t *rule = *item;
    if (rule) {
        free (rule->name);
        free (rule);
        *item = NULL;
    }
}

static bool
s_eq_name (const char *name, jr_bytes_t bytes)
{
    return strlen (name) == bytes.len && memcmp (name, bytes.ptr, bytes.len) == 0;
}

//  One "NAME=MS" item (cut in place) of spec; 0, or -1 with an error logged.
static int
s_parse_rule (jr_task_timeouts_t *self, const char *spec, char *item, bool *have_default)
{
    char *equals = strchr (item, '=');
    char *end = NULL;
    errno = 0;
    unsigned long long ms = equals ? strtoull (equals + 1, &end, 10) : 0;
    if (!equals || equals == item || !isdigit ((unsigned char)equals[1]) || *end || errno
        || ms > UINT32_MAX) {
        jr_error ("task-timeout=\"%s\": expected NAME=MS (MS from 0 to %u), got \"%s\"", spec,
                  UINT32_MAX, item);
        return -1;
    }
    *equals = 0;
    if (strcmp (item, "*") == 0) {
        if (*have_default) {
            jr_error ("task-timeout=\"%s\": * given twice", spec);
            return -1;
        }
        *have_default = true;
        self->default_timeout_ms = (uint32_t)ms;
        return 0;
    }
    jr_bytes_t name = { (const uint8_t *)item, strlen (item) };
    if (!jr_tasks_find (name)) {
        jr_error ("task-timeout=\"%s\" task=%s: no such task", spec, item);
        return -1;
    }
    for (s_rule_t *rule = zlistx_first (self->rules); rule; rule = zlistx_next (self->rules))
        if (strcmp (rule->name, item) == 0) {
            jr_error ("task-timeout=\"%s\" task=%s: given twice", spec, item);
            return -1;
        }
    s_rule_t *rule = calloc (1, sizeof *rule);
    assert (rule);
    rule->name = strdup (item);
    assert (rule->name);
    rule->ms = (uint32_t)ms;
    zlistx_add_end (self->rules, rule);
    return 0;
}

jr_task_timeouts_t *
jr_task_timeouts_new (const char *spec)
{
    jr_task_timeouts_t *self = calloc (1, sizeof *self);
    assert (self);
    self->rules = zlistx_new ();
    assert (self->rules);
    zlistx_set_destructor (self->rules, s_rule_free);
    if (!spec)
        return self;
    char *list = strdup (spec), *save = NULL;
    assert (list);
    bool have_default = false;
    int rc = 0;
    for (char *item = strtok_r (list, ", ", &save); item && rc == 0;
         item = strtok_r (NULL, ", ", &save))
        rc = s_parse_rule (self, spec, item, &have_default);
    free (list);
    if (rc)
        jr_task_timeouts_destroy (&self);
    return self;
}

void
jr_task_timeouts_destroy (jr_task_timeouts_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zlistx_destroy (&(*self_p)->rules);
        free (*self_p);
        *self_p = NULL;
    }
}

uint32_t
jr_task_timeouts_ms (const jr_task_timeouts_t *self, jr_bytes_t task)
{
    zlistx_t *rules = self->rules;
    for (s_rule_t *rule = zlistx_first (rules); rule; rule = zlistx_next (rules))
        if (s_eq_name (rule->name, task))
            return rule->ms;
    return self->default_timeout_ms;
}
