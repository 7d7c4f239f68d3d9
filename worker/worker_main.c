/*  worker_main.c - jr-worker: flags and environment to a jr_worker_t, run until a signal  */
#include "common/log.h"
#include "common/opts.h"
#include "worker/worker.h"
#include <czmq.h>
#include <stdio.h>

int
main (int argc, char **argv)
{
    jr_opt_t opts[] = {
        {"broker", "JR_WORKER_BROKER", JR_WORKER_DEFAULT_BROKER, "broker endpoint for workers"},
        {"ingester", "JR_INGESTER", JR_WORKER_DEFAULT_INGESTER, "ingester endpoint"},
        {"concurrency", "JR_CONCURRENCY", NULL, "tasks run at once (default: number of cores)"},
        {"name", "JR_WORKER_NAME", NULL, "worker name (default: <host>-<pid>)"},
        {"tasks", "JR_WORKER_TASKS", NULL, "comma-separated tasks to serve (default: all)"},
        {"verbose", NULL, NULL, "log at debug level", true},
    };
    enum { O_BROKER, O_INGESTER, O_CONCURRENCY, O_NAME, O_TASKS, O_VERBOSE, O_COUNT };
    int args = jr_opts_parse (argc, argv, opts, O_COUNT, "jr-worker [options]");
    if (args > 1) {
        fprintf (stderr, "error: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    jr_log_init ("worker", opts[O_VERBOSE].value ? JR_LOG_DEBUG : JR_LOG_INFO);
    jr_worker_config_t cfg = {
        .broker = opts[O_BROKER].value,
        .ingester = opts[O_INGESTER].value,
        .name = opts[O_NAME].value,
        .tasks = opts[O_TASKS].value,
    };
    if (opts[O_CONCURRENCY].value)
        cfg.concurrency = (int) jr_opts_int (&opts[O_CONCURRENCY], 1, 4096);
    //  czmq's handler sets zsys_interrupted on SIGINT and SIGTERM; the loop
    //  then stops taking jobs, cancels what runs and flushes its results.
    zsys_init ();
    jr_worker_t *worker = jr_worker_new (&cfg);
    if (!worker)
        return 2;
    jr_worker_run (worker);
    jr_worker_destroy (&worker);
    return 0;
}
