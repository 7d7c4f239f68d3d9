/*  isolate.h - run an in-process task in a child process: `jr-worker --run-task` and its caller  */
#ifndef JR_WORKER_ISOLATE_H
#define JR_WORKER_ISOLATE_H
#include <jr/task.h>

//  An isolated task never runs in a fork of the (multi-threaded) worker:
//  the worker starts its own binary again in a hidden mode, `--run-task`
//  (with the same --plugin list), in a process group of its own, as the
//  exec task runs a program (see exec.h for deadline, cancel, SIGTERM,
//  SIGKILL and reaping). On its stdin the child reads one request, a
//  msgpack map:
//    task str, vars bin, id bin(16), attempt uint, timeout_ms uint (the
//    time left, 0 = none), max_payload uint
//  runs the task under a context with that deadline (SIGTERM cancels it),
//  and writes one msgpack map on its stdout:
//    success bool, payload bin, error str|nil, too_large bool, permanent bool
//  What the task itself prints to stdout goes to stderr instead; the last
//  4 KiB of stderr come back in the error of a child that crashed.

//  Process-wide settings, made at startup before any task runs (strings
//  are copied). exe: the binary to start, default "/proc/self/exe";
//  plugins: the --plugin list to hand on, NULL for none.
void jr_isolate_set_exe (const char *exe);
void jr_isolate_set_plugins (const char *plugins);

//  A task function that runs the ctx's job (by its task name) isolated.
bool jr_task_isolated (jr_ctx_t *ctx, jr_out_t *out);

//  The body of `jr-worker --run-task`, once plugins are loaded: the request
//  on stdin, the reply on stdout (fd 1 then points to stderr, for the
//  task's own prints). Returns the process exit code: 0 when a reply was
//  written, else 1 with a message on stderr.
int jr_isolate_child_main (void);
#endif
