/*  exec.h - run a program in its own process group under a context: the exec task and its runner  */
#ifndef JR_WORKER_EXEC_H
#define JR_WORKER_EXEC_H
#include <jr/task.h>
#include <sys/types.h>

#define JR_EXEC_DEFAULT_GRACE_MS 2000  //  SIGTERM -> SIGKILL
#define JR_EXEC_TAIL             4096  //  bytes of stderr kept for the error text

//  What to run. The child gets stdin, stdout and stderr on pipes and no other
//  descriptor, a process group of its own (with its supervisor), default
//  signal dispositions and an empty signal mask.
typedef struct {
    const char *path;   //  program to execve (no PATH search here)
    char *const *argv;  //  NULL-terminated, argv[0] included
    char *const *envp;  //  NULL-terminated; NULL = the worker's environment
    const char *cwd;    //  working directory; NULL = the worker's
    jr_bytes_t input;   //  written to stdin, which is then closed
    jr_out_t *output;   //  stdout goes here; a refused write stops the child
    int kill_grace_ms;  //  SIGTERM, then SIGKILL this much later
} jr_child_spec_t;

//  How it ended.
typedef struct {
    int stopped;                  //  0 (it ended by itself), or why we stopped it:
                                  //  JR_EDEADLINE, JR_ECANCELLED, JR_ETOOLARGE
    bool sigkilled;               //  it outlived the grace and got SIGKILL
    int status;                   //  waitpid status of the program
    pid_t pid;                    //  the program's pid
    pid_t pgid;                   //  its process group (its supervisor's pid)
    char tail[JR_EXEC_TAIL + 1];  //  the last bytes of stderr, NUL-terminated,
                                  //  NUL bytes replaced, trailing newlines cut
} jr_child_result_t;

//  Run a child under ctx and wait for it. When ctx is done (deadline or
//  cancel) or output refuses a write, its process group gets SIGTERM, then
//  SIGKILL after the grace. When the program exits, whatever it left in its
//  process group is killed. The group is led by a supervisor process (a
//  fork of the worker that ignores SIGTERM) which SIGKILLs the whole group
//  when the worker dies, even by SIGKILL: no task outlives its worker to run
//  beside its own retry. The program and every member of its group are
//  reaped before this returns: the worker is made a child subreaper on first
//  use so orphans of the group come back to it. Processes that leave the
//  group (setsid) are not followed. Returns 0 with *result filled, or a
//  positive errno if the child could not be started (nothing to reap then).
int jr_child_run (const jr_child_spec_t *spec, jr_ctx_t *ctx, jr_child_result_t *result);

//  "exit status 3" or "killed by signal SIGSEGV (core dumped)" into buf.
void jr_child_describe (int status, char *buf, size_t size);

//  The process-wide SIGTERM -> SIGKILL grace, default JR_EXEC_DEFAULT_GRACE_MS.
//  Set at startup, before tasks run.
void jr_exec_set_kill_grace (int ms);
int jr_exec_kill_grace (void);

//  The built-in exec task. Vars:
//    argv   array of strings, required: the program and its arguments. No
//           shell: argv[0] is run directly, searched in the child's PATH
//           when it holds no '/'.
//    shell  bool: run argv[0] as `/bin/sh -c argv[0] sh argv[1]...` (so the
//           further elements are $1, $2...).
//    env    map str -> str: the child's whole environment, plus PATH (the
//           worker's, else /usr/local/bin:/usr/bin:/bin) when the map has
//           none. Without env the child inherits the worker's environment.
//    stdin  str or bin: written to the child's stdin, then closed (empty
//           stdin without it).
//    cwd    str: working directory (default: the worker's).
//  Of a var given twice the first counts; other keys are ignored.
//  stdout is the payload (over the worker's max payload: the group is killed
//  and the job fails TOO_LARGE); the last 4 KiB of stderr go into the error;
//  exit status 0 is success, anything else fails "exit status N: <stderr>"
//  or "killed by signal SIGX: <stderr>".
bool jr_task_exec (jr_ctx_t *ctx, jr_out_t *out);
#endif
