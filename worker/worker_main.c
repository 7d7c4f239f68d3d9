/*  worker_main.c - jr-worker: its flags (config.c) to a jr_worker_t, run until a signal  */
#include "common/fdlimit.h"
#include "common/http.h"
#include "common/log.h"
#include "common/notify.h"
#include "proto/proto.h"
#include "worker/config.h"
#include "worker/exec.h"
#include "worker/isolate.h"
#include "worker/plugin.h"
#include "worker/worker.h"
#include <czmq.h>
#include <signal.h>
#include <stdio.h>

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
    jr_worker_args_t args;
    int rc = jr_worker_args_parse (&args, argc, argv);
    if (rc)
        return rc;
    jr_log_init (args.run_task ? "worker-task" : "worker", args.verbose    ? JR_LOG_DEBUG
                                                           : args.run_task ? JR_LOG_WARN
                                                                           : JR_LOG_INFO);
    //  Plugins first: --tasks and --isolate may name their tasks.
    if (jr_plugins_load (args.plugins) != 0)
        return 1;
    if (args.run_task)
        return jr_isolate_child_main ();
    if (!jr_http_addr_ok (args.metrics))
        return 2;
    jr_exec_set_kill_grace (args.kill_grace_ms);
    jr_isolate_set_plugins (args.plugins);
    if (args.isolate && s_isolate (args.isolate) != 0)
        return 2;
    //  Our handler, not czmq's (a flag it sets once): every signal counts.
    jr_keys_t *keys = NULL;
    if (jr_keys_setup (args.keys, JR_ROLE_WORKER, &keys) != 0)
        return 2;
    args.worker.keys = keys;
    jr_notify_catch_reload ();  //  from now on a SIGHUP (a reload) never ends the process
    jr_fd_limit_raise ();
    zsys_handler_set (NULL);
    zsys_init ();
    jr_worker_t *worker = jr_worker_new (&args.worker);
    if (!worker) {
        jr_keys_destroy (&keys);
        return 2;
    }
    jr_http_t *http = NULL;
    int served = jr_http_metrics (args.metrics, jr_worker_metrics (worker), &http);
    if (served) {
        jr_worker_destroy (&worker);
        jr_keys_destroy (&keys);
        return served;
    }
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
    jr_http_destroy (&http);
    jr_worker_destroy (&worker);
    jr_keys_destroy (&keys);
    return 0;
}
