/*  exec.c - run a program in its own process group under a context: the exec task and its runner  */
#include "worker/exec.h"
#include "common/clock.h"
#include "common/mp.h"
#include "proto/proto.h"
#include "worker/ctx.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_CHUNK        65536      //  bytes read from a pipe at once
#define S_DRAIN_US     1000000LL  //  after the exit, how long pipes may stay open
#define S_REAP_US      5000000LL  //  how long to wait for SIGKILLed group members
#define S_MAX_ARGS     65536      //  argv elements and env entries
#define S_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

static atomic_int s_grace_ms = JR_EXEC_DEFAULT_GRACE_MS;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

void
jr_exec_set_kill_grace (int ms)
{
    assert (ms >= 0);
    atomic_store (&s_grace_ms, ms);
}

int
jr_exec_kill_grace (void)
{
    return atomic_load (&s_grace_ms);
}

//  Orphans of a task's process group come back to us, not to an init that
//  may never reap them (a container's pid 1 often does not), so the group
//  can be reaped by its id.
static void
s_subreaper (void)
{
    prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

static void
s_close (int *fd)
{
    if (*fd >= 0) {
        close (*fd);
        *fd = -1;
    }
}

//  A close-on-exec pipe whose ends are both >= 3, so a dup2 onto 0, 1 or 2
//  in the child never meets itself (the worker may run with 0-2 closed).
static int
s_pipe (int fds[2])
{
    if (pipe2 (fds, O_CLOEXEC) == -1)
        return errno;
    for (int i = 0; i < 2; i++)
        if (fds[i] < 3) {
            int moved = fcntl (fds[i], F_DUPFD_CLOEXEC, 3);
            if (moved == -1) {
                int err = errno;
                close (fds[0]);
                close (fds[1]);
                fds[0] = fds[1] = -1;
                return err;
            }
            close (fds[i]);
            fds[i] = moved;
        }
    return 0;
}

static void
s_nonblock (int fd)
{
    int flags = fcntl (fd, F_GETFL);
    fcntl (fd, F_SETFL, flags | O_NONBLOCK);
}

static void
s_tail_add (char *ring, size_t *total, const char *data, size_t size)
{
    if (size > JR_EXEC_TAIL) {
        *total += size - JR_EXEC_TAIL;
        data += size - JR_EXEC_TAIL;
        size = JR_EXEC_TAIL;
    }
    for (size_t i = 0; i < size; i++)
        ring[(*total)++ % JR_EXEC_TAIL] = data[i];
}

static void
s_tail_finish (const char *ring, size_t total, jr_child_result_t *result)
{
    size_t n = total < JR_EXEC_TAIL ? total : JR_EXEC_TAIL;
    size_t start = total < JR_EXEC_TAIL ? 0 : total % JR_EXEC_TAIL;
    for (size_t i = 0; i < n; i++) {
        char c = ring[(start + i) % JR_EXEC_TAIL];
        result->tail[i] = c ? c : '?';  //  it becomes a C string
    }
    while (n > 0 && (result->tail[n - 1] == '\n' || result->tail[n - 1] == '\r'))
        n--;
    result->tail[n] = 0;
}

//  SIGKILL what is left of the group, then reap every member that came
//  back to us, a bounded while (one stuck in the kernel is left behind).
static void
s_reap_group (pid_t pgid)
{
    kill (-pgid, SIGKILL);
    int64_t until = jr_clock_mono_us () + S_REAP_US;
    while (true) {
        pid_t pid = waitpid (-pgid, NULL, WNOHANG);
        if (pid > 0)
            continue;
        if (pid == -1 && errno == EINTR)
            continue;
        if (pid == -1)
            break;  //  ECHILD: none of our children is left in the group
        if (jr_clock_mono_us () >= until)
            break;
        struct timespec ts = { 0, 1000000 };
        nanosleep (&ts, NULL);
    }
}

//  -------------------------------------------------------------------------
//  The supervisor: a fork of the worker that leads the child's process group
//  and takes the group down when the worker dies, even by SIGKILL. It gets
//  SIGTERM when its parent thread ends (PR_SET_PDEATHSIG); as that also
//  happens when one thread of a dying worker ends before the others, and as
//  a deadline sends SIGTERM to the whole group, only a new parent means the
//  worker is gone. A fork of a threaded process may make async-signal-safe
//  calls only, which is all it does. It never execs: the worker's pages it
//  shares stay shared (copied on write), about 1 MB of the worker's own.

static pid_t s_parent;  //  in a supervisor: the worker it belongs to

static void
s_on_parent_term (int sig)
{
    (void)sig;
    if (getppid () != s_parent)
        kill (0, SIGKILL);  //  the whole group, this supervisor included
}

static void __attribute__ ((noreturn)) s_supervise (pid_t parent)
{
    s_parent = parent;
    setpgid (0, 0);
    sigset_t all, all_but_term;
    sigfillset (&all);
    sigprocmask (SIG_SETMASK, &all, NULL);
    struct sigaction action = { .sa_handler = s_on_parent_term };
    sigfillset (&action.sa_mask);
    sigaction (SIGTERM, &action, NULL);
    prctl (PR_SET_PDEATHSIG, SIGTERM);
    if (getppid () != parent)  //  it died before PDEATHSIG was armed
        _exit (1);
    //  Hold none of the worker's descriptors: another task's stdin pipe
    //  must see EOF when the worker closes it.
    close_range (0, ~0U, 0);
    all_but_term = all;
    sigdelset (&all_but_term, SIGTERM);
    while (true)
        sigsuspend (&all_but_term);
}

//  Fork a supervisor; its pid is the new process group's id.
static int
s_supervisor (pid_t *pgid)
{
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid == -1)
        return errno;
    if (pid == 0)
        s_supervise (parent);
    //  Also here, so the group exists before the child is spawned into it.
    setpgid (pid, pid);
    *pgid = pid;
    return 0;
}

static int
s_spawn (const jr_child_spec_t *spec, pid_t pgid, int in_fd, int out_fd, int err_fd, pid_t *pid)
{
    posix_spawnattr_t attr;
    posix_spawnattr_init (&attr);
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF
                                         | POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setpgroup (&attr, pgid);
    sigset_t all, none;
    sigfillset (&all);
    sigemptyset (&none);
    posix_spawnattr_setsigdefault (&attr, &all);
    posix_spawnattr_setsigmask (&attr, &none);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, in_fd, 0);
    posix_spawn_file_actions_adddup2 (&actions, out_fd, 1);
    posix_spawn_file_actions_adddup2 (&actions, err_fd, 2);
    if (spec->cwd)
        posix_spawn_file_actions_addchdir_np (&actions, spec->cwd);
    //  Ours are close-on-exec; this also catches what a plugin leaked.
    posix_spawn_file_actions_addclosefrom_np (&actions, 3);
    int rc = posix_spawn (pid, spec->path, &actions, &attr, spec->argv,
                          spec->envp ? spec->envp : environ);
    posix_spawn_file_actions_destroy (&actions);
    posix_spawnattr_destroy (&attr);
    return rc;
}

int
jr_child_run (const jr_child_spec_t *spec, jr_ctx_t *ctx, jr_child_result_t *result)
{
    assert (spec && spec->path && spec->argv && spec->output && ctx && result);
    pthread_once (&s_once, s_subreaper);
    memset (result, 0, sizeof *result);
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
    pid_t pgid = 0, pid = 0;
    int rc = s_supervisor (&pgid);
    if (!rc)
        rc = s_pipe (in);
    if (!rc)
        rc = s_pipe (out);
    if (!rc)
        rc = s_pipe (err);
    if (!rc)
        rc = s_spawn (spec, pgid, in[0], out[1], err[1], &pid);
    s_close (&in[0]);
    s_close (&out[1]);
    s_close (&err[1]);
    int pidfd = -1;
    if (!rc) {
        pidfd = pidfd_open (pid, 0);
        if (pidfd == -1) {
            rc = errno;
            kill (-pgid, SIGKILL);
            waitpid (pid, NULL, 0);
        }
    }
    if (rc) {
        if (pgid)
            s_reap_group (pgid);  //  the supervisor, and the child if spawned
        s_close (&in[1]);
        s_close (&out[0]);
        s_close (&err[0]);
        return rc;
    }
    result->pid = pid;
    result->pgid = pgid;

    //  A child that closes stdin early must not kill the worker with SIGPIPE:
    //  the signal of a failed write goes to this thread, which blocks it.
    sigset_t pipe_set, old_mask;
    sigemptyset (&pipe_set);
    sigaddset (&pipe_set, SIGPIPE);
    pthread_sigmask (SIG_BLOCK, &pipe_set, &old_mask);

    s_nonblock (in[1]);
    s_nonblock (out[0]);
    s_nonblock (err[0]);
    size_t written = 0;
    if (spec->input.len == 0)
        s_close (&in[1]);
    char ring[JR_EXEC_TAIL];
    size_t ring_total = 0;
    char chunk[S_CHUNK];
    bool exited = false;
    int64_t kill_at = 0;      //  when SIGKILL is due (stopping), 0 = not stopping
    int64_t drain_until = 0;  //  after the exit
    const int grace_ms = spec->kill_grace_ms;

    while (true) {
        int64_t now = jr_clock_mono_us ();
        //  Once it exited by itself, its status is the answer, not the context.
        int why = result->stopped || exited ? 0 : jr_ctx_err (ctx);
        if (why) {
            result->stopped = why;
            kill (-pgid, SIGTERM);
            kill_at = now + (int64_t)grace_ms * 1000;
            s_close (&in[1]);
        }
        if (kill_at && !result->sigkilled && !exited && now >= kill_at) {
            kill (-pgid, SIGKILL);
            result->sigkilled = true;
        }
        if (exited && ((out[0] < 0 && err[0] < 0) || now >= drain_until))
            break;

        struct pollfd items[5];
        int n = 0, i_pid = -1, i_out = -1, i_err = -1, i_in = -1;
        if (!exited)
            i_pid = n, items[n++] = (struct pollfd){ pidfd, POLLIN, 0 };
        if (!result->stopped && !exited)  //  readable once done: the loop's top looks
            items[n++] = (struct pollfd){ jr_ctx_fd (ctx), POLLIN, 0 };
        if (out[0] >= 0)
            i_out = n, items[n++] = (struct pollfd){ out[0], POLLIN, 0 };
        if (err[0] >= 0)
            i_err = n, items[n++] = (struct pollfd){ err[0], POLLIN, 0 };
        if (in[1] >= 0)
            i_in = n, items[n++] = (struct pollfd){ in[1], POLLOUT, 0 };

        int64_t wait_us = 1000000;  //  a bound, so nothing can hang us for long
        if (!result->stopped && !exited) {
            int64_t left = jr_ctx_time_left_ms (ctx);
            if (left < wait_us / 1000)
                wait_us = left * 1000;
        }
        if (kill_at && !result->sigkilled && kill_at - now < wait_us)
            wait_us = kill_at - now;
        if (exited && drain_until - now < wait_us)
            wait_us = drain_until - now;
        int timeout = wait_us <= 0 ? 0 : (int)((wait_us + 999) / 1000);
        if (poll (items, (nfds_t)n, timeout) == -1) {
            if (errno == EINTR)
                continue;
            //  Cannot wait any more: stop it the hard way and clean up.
            result->stopped = result->stopped ? result->stopped : JR_EINTERNAL;
            kill (-pgid, SIGKILL);
            result->sigkilled = true;
            break;
        }
        if (i_out >= 0 && items[i_out].revents) {
            ssize_t got = read (out[0], chunk, sizeof chunk);
            if (got > 0) {
                if (jr_out_write (spec->output, chunk, (size_t)got) != 0) {
                    //  Over the limit: stop it like a deadline, keep nothing more.
                    s_close (&out[0]);
                    if (!result->stopped) {
                        result->stopped = JR_ETOOLARGE;
                        kill (-pgid, SIGTERM);
                        kill_at = jr_clock_mono_us () + (int64_t)grace_ms * 1000;
                        s_close (&in[1]);
                    }
                }
            }
            else if (got == 0 || (errno != EAGAIN && errno != EINTR))
                s_close (&out[0]);
        }
        if (i_err >= 0 && items[i_err].revents) {
            ssize_t got = read (err[0], chunk, sizeof chunk);
            if (got > 0)
                s_tail_add (ring, &ring_total, chunk, (size_t)got);
            else if (got == 0 || (errno != EAGAIN && errno != EINTR))
                s_close (&err[0]);
        }
        if (i_in >= 0 && in[1] >= 0 && items[i_in].revents) {
            ssize_t put = write (in[1], spec->input.ptr + written, spec->input.len - written);
            if (put > 0)
                written += (size_t)put;
            if ((put == -1 && errno != EAGAIN && errno != EINTR) || written == spec->input.len)
                s_close (&in[1]);  //  EPIPE: the program did not want it all
        }
        if (i_pid >= 0 && (items[i_pid].revents & POLLIN)) {
            //  It ended: whatever it left running in its group goes too
            //  (the supervisor, alive until then, keeps the group id ours).
            exited = true;
            kill (-pgid, SIGKILL);
            s_close (&in[1]);
            drain_until = jr_clock_mono_us () + S_DRAIN_US;
        }
    }
    s_close (&in[1]);
    s_close (&out[0]);
    s_close (&err[0]);
    while (waitpid (pid, &result->status, 0) == -1 && errno == EINTR)
        ;
    s_reap_group (pgid);
    close (pidfd);
    s_tail_finish (ring, ring_total, result);

    //  Forget a SIGPIPE our writes raised, then unblock it.
    struct timespec zero = { 0, 0 };
    while (sigtimedwait (&pipe_set, NULL, &zero) == SIGPIPE)
        ;
    pthread_sigmask (SIG_SETMASK, &old_mask, NULL);
    return 0;
}

void
jr_child_describe (int status, char *buf, size_t size)
{
    if (WIFEXITED (status))
        snprintf (buf, size, "exit status %d", WEXITSTATUS (status));
    else if (WIFSIGNALED (status)) {
        const char *name = sigabbrev_np (WTERMSIG (status));
        if (name)
            snprintf (buf, size, "killed by signal SIG%s%s", name,
                      WCOREDUMP (status) ? " (core dumped)" : "");
        else
            snprintf (buf, size, "killed by signal %d", WTERMSIG (status));
    }
    else
        snprintf (buf, size, "wait status 0x%x", (unsigned)status);
}

//  -------------------------------------------------------------------------
//  The exec task

typedef struct {
    char **argv;  //  owned, NULL-terminated
    size_t argc;
    char **envp;  //  owned, NULL-terminated; NULL = inherit
    size_t envc;
    bool has_path;     //  envp holds PATH
    char *cwd;         //  owned or NULL
    jr_bytes_t input;  //  borrowed from the vars
    bool shell;
    bool has_input, has_shell;  //  seen: of a repeated var, the first counts
} s_cmd_t;

static void
s_cmd_free (s_cmd_t *cmd)
{
    for (size_t i = 0; cmd->argv && i < cmd->argc; i++)
        free (cmd->argv[i]);
    for (size_t i = 0; cmd->envp && i < cmd->envc; i++)
        free (cmd->envp[i]);
    free (cmd->argv);
    free (cmd->envp);
    free (cmd->cwd);
}

//  A C string of bytes that must hold no NUL; NULL if they do.
static char *
s_cstr (jr_bytes_t bytes)
{
    if (bytes.len && memchr (bytes.ptr, 0, bytes.len))
        return NULL;
    char *text = malloc (bytes.len + 1);
    assert (text);
    if (bytes.len)
        memcpy (text, bytes.ptr, bytes.len);
    text[bytes.len] = 0;
    return text;
}

static bool
s_key_is (jr_bytes_t key, const char *name)
{
    return key.len == strlen (name) && memcmp (key.ptr, name, key.len) == 0;
}

//  Read the vars into cmd; on a bad one, an error text in out and false.
static bool
s_parse (jr_bytes_t vars, s_cmd_t *cmd, jr_out_t *out)
{
    jr_mp_t mp;
    jr_mp_init (&mp, vars.ptr, vars.len);
    uint32_t nkeys = 0;
    if (vars.len && !jr_mp_map (&mp, &nkeys)) {
        jr_out_errorf (out, "INVALID: vars must be a msgpack map");
        return false;
    }
    for (uint32_t k = 0; k < nkeys; k++) {
        //  A key that is not a string names no var: skip it with its value.
        jr_bytes_t key = { NULL, 0 };
        bool named = jr_mp_peek (&mp) == JR_MP_STR;
        if (!(named ? jr_mp_str (&mp, &key) : jr_mp_skip (&mp, NULL) && jr_mp_skip (&mp, NULL))) {
            jr_out_errorf (out, "INVALID: malformed vars");
            return false;
        }
        if (!named)
            continue;
        if (s_key_is (key, "argv") && !cmd->argv) {
            uint32_t n;
            if (!jr_mp_array (&mp, &n) || n == 0 || n > S_MAX_ARGS) {
                jr_out_errorf (out, "INVALID: var argv must be a non-empty array of strings");
                return false;
            }
            cmd->argv = calloc ((size_t)n + 1, sizeof *cmd->argv);
            assert (cmd->argv);
            for (uint32_t i = 0; i < n; i++) {
                jr_bytes_t arg;
                if (!jr_mp_str (&mp, &arg) || !(cmd->argv[i] = s_cstr (arg))) {
                    jr_out_errorf (out, "INVALID: argv[%u] must be a string without NUL", i);
                    return false;
                }
                cmd->argc++;
            }
        }
        else if (s_key_is (key, "env") && !cmd->envp) {
            uint32_t n;
            if (!jr_mp_map (&mp, &n) || n > S_MAX_ARGS) {
                jr_out_errorf (out, "INVALID: var env must be a map of strings to strings");
                return false;
            }
            cmd->envp = calloc ((size_t)n + 2, sizeof *cmd->envp);  //  PATH, NULL
            assert (cmd->envp);
            for (uint32_t i = 0; i < n; i++) {
                jr_bytes_t name, value;
                if (!jr_mp_str (&mp, &name) || !jr_mp_str (&mp, &value) || name.len == 0
                    || memchr (name.ptr, '=', name.len) || memchr (name.ptr, 0, name.len)
                    || (value.len && memchr (value.ptr, 0, value.len))) {
                    jr_out_errorf (out,
                                   "INVALID: env entry %u must be NAME (no '=', not empty) "
                                   "-> value, strings without NUL",
                                   i);
                    return false;
                }
                char *entry = malloc (name.len + value.len + 2);
                assert (entry);
                memcpy (entry, name.ptr, name.len);
                entry[name.len] = '=';
                if (value.len)
                    memcpy (entry + name.len + 1, value.ptr, value.len);
                entry[name.len + 1 + value.len] = 0;
                cmd->envp[cmd->envc++] = entry;
                if (s_key_is (name, "PATH"))
                    cmd->has_path = true;
            }
        }
        else if (s_key_is (key, "stdin") && !cmd->has_input) {
            cmd->has_input = true;
            if (!jr_mp_bytes (&mp, &cmd->input)) {
                jr_out_errorf (out, "INVALID: var stdin must be a string or binary");
                return false;
            }
        }
        else if (s_key_is (key, "cwd") && !cmd->cwd) {
            jr_bytes_t dir;
            if (!jr_mp_str (&mp, &dir) || dir.len == 0 || !(cmd->cwd = s_cstr (dir))) {
                jr_out_errorf (out, "INVALID: var cwd must be a non-empty string without NUL");
                return false;
            }
        }
        else if (s_key_is (key, "shell") && !cmd->has_shell) {
            cmd->has_shell = true;
            if (!jr_mp_bool (&mp, &cmd->shell)) {
                jr_out_errorf (out, "INVALID: var shell must be a boolean");
                return false;
            }
        }
        else if (!jr_mp_skip (&mp, NULL)) {
            jr_out_errorf (out, "INVALID: malformed vars");
            return false;
        }
    }
    if (!cmd->argv) {
        jr_out_errorf (out, "INVALID: var argv (array of strings) is required");
        return false;
    }
    return true;
}

//  The value of PATH in an environment block, or NULL.
static const char *
s_env_path (char *const *envp)
{
    for (size_t i = 0; envp[i]; i++)
        if (strncmp (envp[i], "PATH=", 5) == 0)
            return envp[i] + 5;
    return NULL;
}

//  The program to execve for name: itself if it holds a '/', else the first
//  executable regular file of that name in path. Caller frees; NULL if none.
static char *
s_search (const char *name, const char *path)
{
    if (strchr (name, '/'))
        return strdup (name);
    if (!*name)
        return NULL;
    const char *dir = path;
    while (true) {
        const char *end = strchr (dir, ':');
        size_t len = end ? (size_t)(end - dir) : strlen (dir);
        char *file = NULL;
        //  An empty element means the current directory, as for execvp.
        if (asprintf (&file, "%.*s%s%s", (int)len, dir, len ? "/" : "", name) < 0)
            abort ();
        struct stat st;
        if (stat (file, &st) == 0 && S_ISREG (st.st_mode) && access (file, X_OK) == 0)
            return file;
        free (file);
        if (!end)
            return NULL;
        dir = end + 1;
    }
}

bool
jr_task_exec (jr_ctx_t *ctx, jr_out_t *out)
{
    s_cmd_t cmd = { 0 };
    if (!s_parse (jr_ctx_vars (ctx), &cmd, out)) {
        s_cmd_free (&cmd);
        jr_out_permanent (out);  //  the same vars will fail the same way
        return false;
    }
    const char *worker_path = getenv ("PATH");
    if (cmd.envp && !cmd.has_path) {
        if (asprintf (&cmd.envp[cmd.envc], "PATH=%s", worker_path ? worker_path : S_DEFAULT_PATH)
            < 0)
            abort ();
        cmd.envc++;
    }
    //  shell: /bin/sh -c argv[0] sh argv[1] ...
    char **argv = cmd.argv;
    char **shell_argv = NULL;
    if (cmd.shell) {
        shell_argv = calloc (cmd.argc + 4, sizeof *shell_argv);
        assert (shell_argv);
        shell_argv[0] = "/bin/sh";
        shell_argv[1] = "-c";
        shell_argv[2] = cmd.argv[0];
        shell_argv[3] = "sh";
        for (size_t i = 1; i < cmd.argc; i++)
            shell_argv[3 + i] = cmd.argv[i];
        argv = shell_argv;
    }
    const char *path = cmd.envp ? s_env_path (cmd.envp) : worker_path;
    char *program = s_search (argv[0], path ? path : S_DEFAULT_PATH);
    bool success = false;
    struct stat st;
    if (!program)
        jr_out_errorf (out, "cannot run '%s': not found in PATH", argv[0]);
    else if (cmd.cwd && (stat (cmd.cwd, &st) != 0 || !S_ISDIR (st.st_mode)))
        jr_out_errorf (out, "cannot run '%s': cwd '%s' is not a directory", argv[0], cmd.cwd);
    else {
        jr_child_spec_t spec = {
            .path = program,
            .argv = argv,
            .envp = cmd.envp,
            .cwd = cmd.cwd,
            .input = cmd.input,
            .output = out,
            .kill_grace_ms = jr_exec_kill_grace (),
        };
        jr_child_result_t *res = malloc (sizeof *res);
        assert (res);
        int rc = jr_child_run (&spec, ctx, res);
        char how[96];
        jr_child_describe (res->status, how, sizeof how);
        const char *sep = res->tail[0] ? ": " : "";
        if (rc)
            jr_out_errorf (out, "cannot run '%s': %s", argv[0], strerror (rc));
        else if (res->stopped == JR_ETOOLARGE)
            jr_out_errorf (out, "stdout over the limit of %zu bytes, process group killed",
                           jr_out_max (out));
        else if (res->stopped)
            jr_out_errorf (out, "process group stopped with SIGTERM%s (%s)%s%s",
                           res->sigkilled ? ", then SIGKILL" : "", how, sep, res->tail);
        else if (WIFEXITED (res->status) && WEXITSTATUS (res->status) == 0)
            success = true;
        else
            jr_out_errorf (out, "%s%s%s", how, sep, res->tail);
        free (res);
    }
    free (program);
    free (shell_argv);
    s_cmd_free (&cmd);
    return success;
}
