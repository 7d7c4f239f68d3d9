/*  tasks.h - the registry of named tasks a worker serves, built-ins included  */
#ifndef JR_WORKER_TASKS_H
#define JR_WORKER_TASKS_H
#include <jr/task.h>

//  Register a task under name (copied). The built-ins (echo, sleep, fail,
//  sha256, exec) are always present. jr_task_register (task.h) is the same
//  for plugins. Returns 0, or JR_EINVALID for an empty or
//  too long name, or one already registered. Thread-safe.
int jr_tasks_register (const char *name, jr_task_fn *fn);
//  The task registered under name, or NULL. Thread-safe.
jr_task_fn *jr_tasks_find (jr_bytes_t name);
//  How many tasks are registered.
size_t jr_tasks_count (void);
//  Name of the task at index (0 .. count-1); borrowed, lives as long as the
//  process (tasks are never unregistered).
const char *jr_tasks_name (size_t index);

//  Run the task registered under name in a child process (see isolate.h);
//  "all" isolates every task but exec, whose program runs in a child
//  anyway. Set at startup, after plugins are loaded. Returns 0, or
//  JR_ENOT_FOUND for a name not registered. Thread-safe.
int jr_tasks_set_isolated (const char *name);
//  True if jobs of the task named so run isolated. Thread-safe.
bool jr_tasks_isolated (jr_bytes_t name);

//  The built-ins, also callable directly (exec is in exec.h).
bool jr_task_echo (jr_ctx_t *ctx, jr_out_t *out);
bool jr_task_sleep (jr_ctx_t *ctx, jr_out_t *out);
bool jr_task_fail (jr_ctx_t *ctx, jr_out_t *out);
bool jr_task_sha256 (jr_ctx_t *ctx, jr_out_t *out);
#endif
