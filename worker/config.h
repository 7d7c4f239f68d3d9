/*  config.h - what an operator tells jr-worker: flags and environment, defaults and limits, --task-timeout rules  */
#ifndef JR_WORKER_CONFIG_H
#define JR_WORKER_CONFIG_H
#include "worker/worker.h"
#include <stdbool.h>

//  Everything jr-worker's flags set. Strings are borrowed from argv, the
//  environment or static defaults.
typedef struct {
    jr_worker_config_t worker;  //  for jr_worker_new
    const char *plugins;        //  --plugin: task plugins (.so) to load first, or NULL
    const char *isolate;        //  --isolate: tasks (or "all") run in a child, or NULL
    int kill_grace_ms;          //  --kill-grace: SIGTERM to SIGKILL for exec and isolated tasks
    bool verbose;               //  --verbose: log at debug level
    bool run_task;              //  --run-task: be the child of an isolated task
    const char *keys;           //  --keys: CurveZMQ keys folder, or NULL
    const char *metrics;        //  --metrics: HOST:PORT of /metrics, or NULL
} jr_worker_args_t;

//  Parse jr-worker's flags (each falls back to its environment variable,
//  then its line of the --config file, then its default) into *args.
//  Returns 0, or 2 after a message on stderr for an argument that is not a
//  flag. Like jr_opts_parse_config it prints usage and exits 0 on --help,
//  --version or --print-config, and exits 2 with a message on an unknown
//  flag, a bad config file or a value out of range.
int jr_worker_args_parse (jr_worker_args_t *args, int argc, char **argv);

//  A worker config with every default filled in (cfg NULL: all defaults):
//  broker, ingester, concurrency (the number of cores), heartbeat_ms,
//  liveness_ms, resend_ms, backlog, max_payload (at most JR_MAX_PAYLOAD) and
//  grace_ms (-1 for none) as jr_worker_new uses them; name is left as given.
//  Returns 0, or -1 with an error logged for a negative or too large value
//  or a name too long.
int jr_worker_config_resolve (const jr_worker_config_t *cfg, jr_worker_config_t *out);

typedef struct _jr_task_timeouts_t jr_task_timeouts_t;

//  The rules of --task-timeout, "NAME=MS[,NAME=MS...]" with "*=MS" for
//  every other task (spec NULL: none). Returns what the caller owns, or NULL
//  with an error logged: bad syntax, a task not registered, a name given
//  twice.
jr_task_timeouts_t *jr_task_timeouts_new (const char *spec);
//  Destroy the rules; nulls the pointer.
void jr_task_timeouts_destroy (jr_task_timeouts_t **self_p);
//  The deadline in ms of a job of this task sent with timeout_ms 0 (0 = none).
uint32_t jr_task_timeouts_ms (const jr_task_timeouts_t *self, jr_bytes_t task);
#endif
