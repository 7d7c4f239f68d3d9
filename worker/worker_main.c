/*  worker_main.c - jr-worker: flags and environment to a jr_worker_t, run until a signal  */
#include "common/fdlimit.h"
#include "common/log.h"
#include "common/opts.h"
#include "proto/proto.h"
#include "worker/exec.h"
#include "worker/isolate.h"
#include "worker/plugin.h"
#include "worker/worker.h"
#include <czmq.h>
#include <signal.h>
#include <stdio.h>

#define S_STR(x)  #x
#define S_XSTR(x) S_STR (x)  //  a macro's value as a string literal

//  The worker a signal drains: the first SIGTERM or SIGINT starts a drain,
//  the second skips what is left of its grace.
static jr_worker_t *s_worker;

static void
s_on_signal (int signum)
{
    (void)signum;
    if (s_worker)
        jr_worker_drain (s_worker);
}

//  --isolate: a comma-separated list of tasks, or "all".
static int
s_isolate (const char *list)
{
    char *copy = strdup (list), *save = NULL;
    assert (copy);
    int rc = 0;
    for (char *name = strtok_r (copy, ", ", &save); name && rc == 0;
         name = strtok_r (NULL, ", ", &save))
        if ((rc = jr_tasks_set_isolated (name)) != 0)
            jr_error ("task=%s: cannot isolate, no such task", name);
    free (copy);
    return rc;
}

int
main (int argc, char **argv)
{
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
        { "run-task", NULL, NULL, "internal: run one job from stdin (for --isolate)", true },
    };
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
        O_COUNT
    };
    int args = jr_opts_parse (argc, argv, opts, O_COUNT, "jr-worker [options]");
    if (args > 1) {
        fprintf (stderr, "error: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    bool run_task = opts[O_RUN_TASK].value != NULL;
    jr_log_init (run_task ? "worker-task" : "worker", opts[O_VERBOSE].value ? JR_LOG_DEBUG
                                                      : run_task            ? JR_LOG_WARN
                                                                            : JR_LOG_INFO);
    //  Plugins first: --tasks and --isolate may name their tasks.
    if (jr_plugins_load (opts[O_PLUGIN].value) != 0)
        return 1;
    if (run_task)
        return jr_isolate_child_main ();
    jr_exec_set_kill_grace ((int)jr_opts_int (&opts[O_KILL_GRACE], 0, 3600 * 1000));
    jr_isolate_set_plugins (opts[O_PLUGIN].value);
    if (opts[O_ISOLATE].value && s_isolate (opts[O_ISOLATE].value) != 0)
        return 2;
    jr_worker_config_t cfg = {
        .broker = opts[O_BROKER].value,
        .ingester = opts[O_INGESTER].value,
        .name = opts[O_NAME].value,
        .tasks = opts[O_TASKS].value,
        .task_timeouts = opts[O_TASK_TIMEOUT].value,
        .max_payload = (size_t)jr_opts_int (&opts[O_MAX_PAYLOAD], 1, JR_MAX_PAYLOAD),
        .backlog = (size_t)jr_opts_int (&opts[O_BACKLOG], 1, 10000000),
        .prefetch = (int)jr_opts_int (&opts[O_PREFETCH], 0, JR_WORKER_MAX_PREFETCH),
    };
    if (opts[O_CONCURRENCY].value)
        cfg.concurrency = (int)jr_opts_int (&opts[O_CONCURRENCY], 1, JR_WORKER_MAX_CONCURRENCY);
    long grace = jr_opts_int (&opts[O_GRACE], 0, 24L * 3600 * 1000);
    cfg.grace_ms = grace ? (int)grace : -1;  //  0: hand back at once
    //  Our handler, not czmq's (a flag it sets once): every signal counts.
    jr_fd_limit_raise ();
    zsys_handler_set (NULL);
    zsys_init ();
    jr_worker_t *worker = jr_worker_new (&cfg);
    if (!worker)
        return 2;
    s_worker = worker;
    struct sigaction action = { .sa_handler = s_on_signal };
    sigemptyset (&action.sa_mask);
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGINT, &action, NULL);
    jr_worker_run (worker);
    //  Drained: one more signal may end the last flush at once.
    signal (SIGTERM, SIG_DFL);
    signal (SIGINT, SIG_DFL);
    s_worker = NULL;
    jr_worker_destroy (&worker);
    return 0;
}
