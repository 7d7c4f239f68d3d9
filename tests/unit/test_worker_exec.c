/*  test_worker_exec.c - the exec task and its runner, and isolated tasks, run directly (no sockets)  */
#include "common/clock.h"
#include "proto/proto.h"
#include "worker/ctx.h"
#include "worker/exec.h"
#include "worker/executor.h"
#include "worker/isolate.h"
#include "worker/tasks.h"
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <msgpack.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_MAX (1 << 20)  //  payload limit unless a test says otherwise

//  -------------------------------------------------------------------------
//  Helpers

typedef struct {
    const char **argv;  //  NULL-terminated
    const char **env;   //  name, value, ..., NULL; NULL = no env var
    const char *input;  //  stdin; NULL = none
    size_t input_len;   //  0 = strlen (input)
    const char *cwd;
    bool shell;
    const char *extra_key;  //  one more string var, to check it is ignored
} s_cmd_t;

static void
s_str (msgpack_packer *pk, const char *text)
{
    msgpack_pack_str (pk, strlen (text));
    msgpack_pack_str_body (pk, text, strlen (text));
}

//  The vars of an exec job; caller frees ptr.
static jr_bytes_t
s_vars (const s_cmd_t *cmd)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    size_t nkeys = (cmd->argv != NULL) + (cmd->env != NULL) + (cmd->input != NULL)
                   + (cmd->cwd != NULL) + cmd->shell + (cmd->extra_key != NULL);
    msgpack_pack_map (&pk, nkeys);
    if (cmd->extra_key) {
        s_str (&pk, cmd->extra_key);
        s_str (&pk, "ignored");
    }
    if (cmd->argv) {
        size_t n = 0;
        while (cmd->argv[n])
            n++;
        s_str (&pk, "argv");
        msgpack_pack_array (&pk, n);
        for (size_t i = 0; i < n; i++)
            s_str (&pk, cmd->argv[i]);
    }
    if (cmd->env) {
        size_t n = 0;
        while (cmd->env[n])
            n++;
        s_str (&pk, "env");
        msgpack_pack_map (&pk, n / 2);
        for (size_t i = 0; i < n; i++)
            s_str (&pk, cmd->env[i]);
    }
    if (cmd->input) {
        size_t len = cmd->input_len ? cmd->input_len : strlen (cmd->input);
        s_str (&pk, "stdin");
        msgpack_pack_bin (&pk, len);
        msgpack_pack_bin_body (&pk, cmd->input, len);
    }
    if (cmd->cwd) {
        s_str (&pk, "cwd");
        s_str (&pk, cmd->cwd);
    }
    if (cmd->shell) {
        s_str (&pk, "shell");
        msgpack_pack_true (&pk);
    }
    return (jr_bytes_t){ (const uint8_t *)buf.data, buf.size };
}

//  Run a job of task through jr_run_* as an executor does; result owned.
static jr_job_t *
s_run (const char *task, jr_bytes_t vars, uint32_t timeout_ms, size_t max_payload)
{
    jr_job_t job;
    jr_job_init (&job, task);
    job.vars = vars;
    job.timeout_ms = timeout_ms;
    job.attempt = 1;
    job.state = JR_STATE_RUNNING;
    jr_task_fn *fn = jr_tasks_find (job.task);
    cr_assert (fn, "task %s registered", task);
    jr_run_t *run = jr_run_new (&job, fn, max_payload);
    cr_assert (run);
    jr_run_execute (run);
    jr_job_t *result = jr_run_result (run, "test@host");
    jr_run_destroy (&run);
    return result;
}

static jr_job_t *
s_exec (const s_cmd_t *cmd, uint32_t timeout_ms, size_t max_payload)
{
    jr_bytes_t vars = s_vars (cmd);
    jr_job_t *result = s_run ("exec", vars, timeout_ms, max_payload);
    free ((void *)vars.ptr);
    return result;
}

static bool
s_eq (jr_bytes_t bytes, const char *text)
{
    return bytes.len == strlen (text) && memcmp (bytes.ptr, text, bytes.len) == 0;
}

static bool
s_starts (jr_bytes_t bytes, const char *text)
{
    return bytes.len >= strlen (text) && memcmp (bytes.ptr, text, strlen (text)) == 0;
}

static bool
s_contains (jr_bytes_t bytes, const char *text)
{
    return bytes.len >= strlen (text) && memmem (bytes.ptr, bytes.len, text, strlen (text));
}

#define S_TEXT(b) (int)(b).len, (const char *)(b).ptr

static int
s_count_fds (void)
{
    DIR *dir = opendir ("/proc/self/fd");
    cr_assert (dir);
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (entry->d_name[0] != '.')
            n++;
    closedir (dir);
    return n - 1;  //  the one opendir holds
}

//  Children of this process that are zombies.
static char s_dir[64];

static void
s_setup (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/jr-exec-XXXXXX");
    cr_assert (mkdtemp (s_dir));
    //  A crash test must not leave core files behind.
    struct rlimit none = { 0, 0 };
    setrlimit (RLIMIT_CORE, &none);
}

static void
s_teardown (void)
{
    char cmd[128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    if (system (cmd) != 0)
        fprintf (stderr, "cannot remove %s\n", s_dir);
}

TestSuite (worker_exec, .init = s_setup, .fini = s_teardown, .timeout = 60);

//  -------------------------------------------------------------------------
//  The exec task

Test (worker_exec, stdout_is_the_payload)
{
    const char *argv[] = { "printf", "hello %s", "world", NULL };
    jr_job_t *r = s_exec (&(s_cmd_t){ .argv = argv, .extra_key = "other" }, 0, S_MAX);
    cr_assert (r->success, "error: %.*s", S_TEXT (r->error));
    cr_assert (s_eq (r->payload, "hello world"));
    cr_assert_eq (r->error.len, 0);
    cr_assert_eq (r->state, JR_STATE_SUCCEEDED);
    jr_job_destroy (&r);
}

Test (worker_exec, no_shell_unless_asked)
{
    //  Without a shell the metacharacters are plain bytes.
    const char *argv[] = { "echo", "$HOME; `id`", NULL };
    jr_job_t *r = s_exec (&(s_cmd_t){ .argv = argv }, 0, S_MAX);
    cr_assert (r->success);
    cr_assert (s_eq (r->payload, "$HOME; `id`\n"));
    jr_job_destroy (&r);
    //  With one, argv[0] is the script and the rest its $1, $2.
    const char *script[] = { "echo \"$1-$2\" | tr a-z A-Z", "ab", "cd", NULL };
    r = s_exec (&(s_cmd_t){ .argv = script, .shell = true }, 0, S_MAX);
    cr_assert (r->success, "error: %.*s", S_TEXT (r->error));
    cr_assert (s_eq (r->payload, "AB-CD\n"), "payload %.*s", S_TEXT (r->payload));
    jr_job_destroy (&r);
}

Test (worker_exec, stdin_written_then_closed)
{
    const char *argv[] = { "cat", NULL };
    jr_job_t *r = s_exec (&(s_cmd_t){ .argv = argv, .input = "line one\nline two\n" }, 0, S_MAX);
    cr_assert (r->success);
    cr_assert (s_eq (r->payload, "line one\nline two\n"));
    jr_job_destroy (&r);

    //  More than a pipe holds each way: writing and reading interleave.
    size_t big = 3 << 20;
    char *data = malloc (big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)('a' + i % 26);
    r = s_exec (&(s_cmd_t){ .argv = argv, .input = data, .input_len = big }, 0, 4 << 20);
    cr_assert (r->success, "error: %.*s", S_TEXT (r->error));
    cr_assert_eq (r->payload.len, big);
    cr_assert (memcmp (r->payload.ptr, data, big) == 0);
    jr_job_destroy (&r);

    //  A program that reads none of it: no SIGPIPE for the worker.
    const char *none[] = { "true", NULL };
    r = s_exec (&(s_cmd_t){ .argv = none, .input = data, .input_len = big }, 0, S_MAX);
    cr_assert (r->success, "error: %.*s", S_TEXT (r->error));
    free (data);
    jr_job_destroy (&r);

    //  Without stdin the program reads end of file at once.
    r = s_exec (&(s_cmd_t){ .argv = argv }, 0, S_MAX);
    cr_assert (r->success);
    cr_assert_eq (r->payload.len, 0);
    jr_job_destroy (&r);
}

Test (worker_exec, env_is_exactly_the_map_plus_path)
{
    const char *argv[] = { "env", NULL };
    const char *env[] = { "FOO", "bar baz", "EMPTY", "", NULL };
    jr_job_t *r = s_exec (&(s_cmd_t){ .argv = argv, .env = env }, 0, S_MAX);
    cr_assert (r->success, "error: %.*s", S_TEXT (r->error));
    cr_assert (s_contains (r->payload, "FOO=bar baz\n"));
    cr_assert (s_contains (r->payload, "EMPTY=\n"));
    cr_assert (s_contains (r->payload, "PATH="));
    int lines = 0;
    for (size_t i = 0; i < r->payload.len; i++)
        lines += r->payload.ptr[i] == '\n';
    cr_assert_eq (lines, 3, "env: %.*s", S_TEXT (r->payload));
    jr_job_destroy (&r);

    //  A PATH in the map is the one used, for the search too.
    const char *own[] = { "PATH", "/nowhere", NULL };
    r = s_exec (&(s_cmd_t){ .argv = argv, .env = own }, 0, S_MAX);
    cr_assert_not (r->success);
    cr_assert (s_contains (r->error, "not found in PATH"), "error: %.*s", S_TEXT (r->error));
    jr_job_destroy (&r);
    const char *abs[] = { "/usr/bin/env", NULL };
    r = s_exec (&(s_cmd_t){ .argv = abs, .env = own }, 0, S_MAX);
    cr_assert (r->success);
    cr_assert (s_eq (r->payload, "PATH=/nowhere\n"), "env: %.*s", S_TEXT (r->payload));
    jr_job_destroy (&r);

    //  Without env, the worker's environment.
    setenv ("JR_TEST_INHERITED", "yes", 1);
    r = s_exec (&(s_cmd_t){ .argv = argv }, 0, S_MAX);
    cr_assert (s_contains (r->payload, "JR_TEST_INHERITED=yes\n"));
    jr_job_destroy (&r);
}

Test (worker_exec, cwd)
{
    const char *argv[] = { "pwd", NULL };
    jr_job_t *r = s_exec (&(s_cmd_t){ .argv = argv, .cwd = s_dir }, 0, S_MAX);
    cr_assert (r->success);
    char want[80];
    snprintf (want, sizeof want, "%s\n", s_dir);
    cr_assert (s_eq (r->payload, want), "pwd: %.*s", S_TEXT (r->payload));
    jr_job_destroy (&r);

    r = s_exec (&(s_cmd_t){ .argv = argv, .cwd = "/no/such/dir" }, 0, S_MAX);
    cr_assert_not (r->success);
    cr_assert (s_contains (r->error, "is not a directory"), "error: %.*s", S_TEXT (r->error));
    jr_job_destroy (&r);
}

Test (worker_exec, exit_status_and_stderr_tail)
{
    const char *argv[] = { "sh", "-c", "echo partial; echo 'it broke' >&2; exit 3", NULL };
    jr_job_t *r = s_exec (&(s_cmd_t){ .argv = argv }, 0, S_MAX);
    cr_assert_not (r->success);
    cr_assert_eq (r->state, JR_STATE_FAILED);
    cr_assert (s_eq (r->error, "exit status 3: it broke"), "error: %.*s", S_TEXT (r->error));
    cr_assert (s_eq (r->payload, "partial\n"));
    jr_job_destroy (&r);

    //  Only the last 4 KiB of a long stderr are kept.
    const char *longer[] = { "sh", "-c",
                             "head -c 100000 /dev/zero | tr '\\0' x >&2; "
                             "echo THE-END >&2; exit 1",
                             NULL };
    r = s_exec (&(s_cmd_t){ .argv = longer }, 0, S_MAX);
    cr_assert_not (r->success);
    cr_assert (s_starts (r->error, "exit status 1: xxxx"), "error: %.*s", S_TEXT (r->error));
    cr_assert (r->error.len > 4000 && r->error.len <= 4096 + 20, "len %zu", r->error.len);
    cr_assert (s_contains (r->error, "xxxxTHE-END"));
    cr_assert_eq (r->error.ptr[r->error.len - 1], 'D');
    jr_job_destroy (&r);

    const char *quiet[] = { "false", NULL };
    r = s_exec (&(s_cmd_t){ .argv = quiet }, 0, S_MAX);
    cr_assert (s_eq (r->error, "exit status 1"), "error: %.*s", S_TEXT (r->error));
    jr_job_destroy (&r);
}

Test (worker_exec, killed_by_signal)
{
    const char *argv[] = { "sh", "-c", "echo dying >&2; kill -SEGV $$", NULL };
    jr_job_t *r = s_exec (&(s_cmd_t){ .argv = argv }, 0, S_MAX);
    cr_assert_not (r->success);
    cr_assert (s_starts (r->error, "killed by signal SIGSEGV"), "error: %.*s", S_TEXT (r->error));
    cr_assert (s_contains (r->error, ": dying"));
    jr_job_destroy (&r);
}

Test (worker_exec, max_payload_kills_the_child)
{
    //  yes(1) writes forever: only the limit stops it.
    const char *argv[] = { "yes", NULL };
    jr_job_t *r = s_exec (&(s_cmd_t){ .argv = argv }, 0, 100000);
    cr_assert_not (r->success);
    cr_assert (s_starts (r->error, "TOO_LARGE"), "error: %.*s", S_TEXT (r->error));
    cr_assert_leq (r->payload.len, 100000);
    jr_job_destroy (&r);

    //  Exactly the limit is fine.
    const char *exact[] = { "head", "-c", "100000", "/dev/zero", NULL };
    r = s_exec (&(s_cmd_t){ .argv = exact }, 0, 100000);
    cr_assert (r->success, "error: %.*s", S_TEXT (r->error));
    cr_assert_eq (r->payload.len, 100000);
    jr_job_destroy (&r);
}

static pid_t
s_read_pid (const char *file)
{
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen (file, "r");
        int pid = 0;
        if (f) {
            int n = fscanf (f, "%d", &pid);
            fclose (f);
            if (n == 1 && pid > 0)
                return pid;
        }
        usleep (10000);
    }
    return 0;
}

Test (worker_exec, deadline_kills_the_group)
{
    //  The shell and its background child ignore SIGTERM: only SIGKILL after
    //  the grace ends them, and both must be gone (and reaped) after.
    jr_exec_set_kill_grace (300);
    char pidfile[128], script[256];
    snprintf (pidfile, sizeof pidfile, "%s/pid", s_dir);
    snprintf (script, sizeof script,
              "trap '' TERM; sleep 30 & read -r _ _ _ _ g _ < /proc/$$/stat; echo $g > %s; "
              "echo started >&2; wait",
              pidfile);
    const char *argv[] = { "sh", "-c", script, NULL };
    int64_t start = jr_clock_mono_us ();
    jr_job_t *r = s_exec (&(s_cmd_t){ .argv = argv }, 300, S_MAX);
    int64_t took_ms = (jr_clock_mono_us () - start) / 1000;
    cr_assert_not (r->success);
    cr_assert (s_starts (r->error, "DEADLINE_EXCEEDED"), "error: %.*s", S_TEXT (r->error));
    cr_assert (s_contains (r->error, "SIGKILL"), "error: %.*s", S_TEXT (r->error));
    cr_assert (s_contains (r->error, "started"), "stderr kept: %.*s", S_TEXT (r->error));
    //  Generous: the point is that it did not wait for sleep 30.
    cr_assert_lt (took_ms, 300 + 300 + 5000);
    pid_t pgid = s_read_pid (pidfile);
    cr_assert_gt (pgid, 0);
    cr_assert_eq (kill (-pgid, 0), -1, "process group %d still there", pgid);
    cr_assert_eq (errno, ESRCH);
    cr_assert_eq (jr_h_zombies (getpid ()), 0);
    jr_job_destroy (&r);
}

Test (worker_exec, sigterm_is_enough_for_a_polite_child)
{
    jr_exec_set_kill_grace (20000);
    const char *argv[] = { "sleep", "30", NULL };
    int64_t start = jr_clock_mono_us ();
    jr_job_t *r = s_exec (&(s_cmd_t){ .argv = argv }, 200, S_MAX);
    cr_assert_not (r->success);
    cr_assert (s_starts (r->error, "DEADLINE_EXCEEDED"));
    cr_assert_not (s_contains (r->error, "SIGKILL"), "error: %.*s", S_TEXT (r->error));
    cr_assert_lt ((jr_clock_mono_us () - start) / 1000, 10000);  //  not the 20 s grace
    jr_job_destroy (&r);
}

typedef struct {
    jr_ctx_t *ctx;
    int ms;
} s_cancel_t;

static void *
s_cancel_later (void *arg)
{
    s_cancel_t *c = arg;
    usleep ((useconds_t)c->ms * 1000);
    jr_ctx_cancel (c->ctx, JR_ECANCELLED);
    return NULL;
}

Test (worker_exec, cancel_stops_it)
{
    const char *argv[] = { "sleep", "30", NULL };
    jr_bytes_t vars = s_vars (&(s_cmd_t){ .argv = argv });
    jr_job_t job;
    jr_job_init (&job, "exec");
    job.vars = vars;
    job.attempt = 1;
    jr_run_t *run = jr_run_new (&job, jr_task_exec, S_MAX);
    s_cancel_t c = { run->ctx, 200 };
    pthread_t thread;
    pthread_create (&thread, NULL, s_cancel_later, &c);
    jr_run_execute (run);
    pthread_join (thread, NULL);
    jr_job_t *r = jr_run_result (run, "test@host");
    cr_assert_not (r->success);
    cr_assert (s_starts (r->error, "CANCELLED: process group stopped"), "error: %.*s",
               S_TEXT (r->error));
    jr_job_destroy (&r);
    jr_run_destroy (&run);
    free ((void *)vars.ptr);
}

Test (worker_exec, leftovers_of_the_group_are_killed_at_exit)
{
    char pidfile[128], script[256];
    snprintf (pidfile, sizeof pidfile, "%s/bg", s_dir);
    snprintf (script, sizeof script, "sleep 30 >/dev/null 2>&1 & echo $! > %s", pidfile);
    const char *argv[] = { "sh", "-c", script, NULL };
    jr_job_t *r = s_exec (&(s_cmd_t){ .argv = argv }, 0, S_MAX);
    cr_assert (r->success, "error: %.*s", S_TEXT (r->error));
    pid_t bg = s_read_pid (pidfile);
    cr_assert_gt (bg, 0);
    cr_assert_eq (kill (bg, 0), -1, "background child %d still there", bg);
    cr_assert_eq (jr_h_zombies (getpid ()), 0);
    jr_job_destroy (&r);
}

Test (worker_exec, no_descriptor_leaks)
{
    //  The child sees 0, 1 and 2 only (its own listing adds the one it reads).
    const char *argv[] = { "sh", "-c", "ls /proc/self/fd", NULL };
    jr_job_t *r = s_exec (&(s_cmd_t){ .argv = argv }, 0, S_MAX);
    cr_assert (r->success);
    cr_assert (s_eq (r->payload, "0\n1\n2\n3\n"), "fds: %.*s", S_TEXT (r->payload));
    jr_job_destroy (&r);

    const char *small[] = { "true", NULL };
    r = s_exec (&(s_cmd_t){ .argv = small }, 0, S_MAX);  //  warm up lazy state
    jr_job_destroy (&r);
    int before = s_count_fds ();
    for (int i = 0; i < 50; i++) {
        r = s_exec (&(s_cmd_t){ .argv = small, .input = "x" }, 1000 * 60, S_MAX);
        cr_assert (r->success);
        jr_job_destroy (&r);
    }
    cr_assert_eq (s_count_fds (), before);
    cr_assert_eq (jr_h_zombies (getpid ()), 0);
}

Test (worker_exec, bad_vars_are_refused)
{
    jr_job_t *r = s_exec (&(s_cmd_t){ .extra_key = "x" }, 0, S_MAX);
    cr_assert (s_starts (r->error, "INVALID: var argv"), "error: %.*s", S_TEXT (r->error));
    jr_job_destroy (&r);
    const char *empty[] = { NULL };
    r = s_exec (&(s_cmd_t){ .argv = empty }, 0, S_MAX);
    cr_assert (s_starts (r->error, "INVALID: var argv"), "error: %.*s", S_TEXT (r->error));
    jr_job_destroy (&r);
    const char *env[] = { "A=B", "x", NULL };
    const char *argv[] = { "true", NULL };
    r = s_exec (&(s_cmd_t){ .argv = argv, .env = env }, 0, S_MAX);
    cr_assert (s_starts (r->error, "INVALID: env"), "error: %.*s", S_TEXT (r->error));
    jr_job_destroy (&r);
    const char *missing[] = { "no-such-program-jr", NULL };
    r = s_exec (&(s_cmd_t){ .argv = missing }, 0, S_MAX);
    cr_assert (s_eq (r->error, "cannot run 'no-such-program-jr': not found in PATH"), "error: %.*s",
               S_TEXT (r->error));
    jr_job_destroy (&r);
    const char *notexec[] = { "/etc/hostname", NULL };
    r = s_exec (&(s_cmd_t){ .argv = notexec }, 0, S_MAX);
    cr_assert (s_starts (r->error, "cannot run '/etc/hostname': "), "error: %.*s",
               S_TEXT (r->error));
    jr_job_destroy (&r);
}

//  A var given twice: the first counts, for every var (as for the other
//  built-ins, which read the first).
Test (worker_exec, first_of_a_repeated_var_counts)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 6);
    s_str (&pk, "argv");
    msgpack_pack_array (&pk, 1);
    s_str (&pk, "cat; echo \" $0\"");
    s_str (&pk, "shell");
    msgpack_pack_true (&pk);
    s_str (&pk, "stdin");
    s_str (&pk, "first");
    s_str (&pk, "argv");
    msgpack_pack_array (&pk, 1);
    s_str (&pk, "false");
    s_str (&pk, "stdin");
    s_str (&pk, "second");
    s_str (&pk, "shell");
    msgpack_pack_false (&pk);
    jr_job_t *r = s_run ("exec", (jr_bytes_t){ (const uint8_t *)buf.data, buf.size }, 0, S_MAX);
    cr_assert (r->success, "error: %.*s", S_TEXT (r->error));
    cr_assert (s_eq (r->payload, "first sh\n"), "payload: %.*s", S_TEXT (r->payload));
    jr_job_destroy (&r);
    msgpack_sbuffer_destroy (&buf);
}

//  -------------------------------------------------------------------------
//  Isolated tasks, through the real jr-worker binary in --run-task mode

static void
s_isolate_setup (void)
{
    s_setup ();
    const char *bin = getenv ("JR_BIN");
    cr_assert (bin, "JR_BIN is set by CTest");
    char exe[512], plugin[512];
    snprintf (exe, sizeof exe, "%s/jr-worker", bin);
    snprintf (plugin, sizeof plugin, "%s/libjr-example-plugin.so", bin);
    jr_isolate_set_exe (exe);
    jr_isolate_set_plugins (plugin);
}

TestSuite (worker_isolate, .init = s_isolate_setup, .fini = s_teardown, .timeout = 60);

static jr_job_t *
s_isolated (const char *task, const char *key, const char *value, uint32_t timeout_ms)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, key ? 1 : 0);
    if (key) {
        s_str (&pk, key);
        s_str (&pk, value);
    }
    jr_job_t job;
    jr_job_init (&job, task);
    job.vars = (jr_bytes_t){ (const uint8_t *)buf.data, buf.size };
    job.timeout_ms = timeout_ms;
    job.attempt = 1;
    //  Not registered here: the child finds it by name (builtin or plugin).
    jr_run_t *run = jr_run_new (&job, jr_task_isolated, S_MAX);
    jr_run_execute (run);
    jr_job_t *result = jr_run_result (run, "test@host");
    jr_run_destroy (&run);
    msgpack_sbuffer_destroy (&buf);
    return result;
}

Test (worker_isolate, runs_a_plugin_task)
{
    jr_job_t *r = s_isolated ("reverse", "text", "stressed", 0);
    cr_assert (r->success, "error: %.*s", S_TEXT (r->error));
    cr_assert (s_eq (r->payload, "desserts"));
    jr_job_destroy (&r);
    r = s_isolated ("echo", "msg", "hi", 5000);
    cr_assert (r->success, "error: %.*s", S_TEXT (r->error));
    cr_assert (s_eq (r->payload, "hi"));
    jr_job_destroy (&r);
    r = s_isolated ("fail", "error", "nope", 0);
    cr_assert_not (r->success);
    cr_assert (s_eq (r->error, "nope"), "error: %.*s", S_TEXT (r->error));
    jr_job_destroy (&r);
    r = s_isolated ("no-such-task", NULL, NULL, 0);
    cr_assert (s_starts (r->error, "UNKNOWN_TASK"), "error: %.*s", S_TEXT (r->error));
    jr_job_destroy (&r);
}

Test (worker_isolate, crash_names_the_signal)
{
    jr_job_t *r = s_isolated ("crash", NULL, NULL, 0);
    cr_assert_not (r->success);
    cr_assert (s_starts (r->error, "isolated task killed by signal SIGSEGV"), "error: %.*s",
               S_TEXT (r->error));
    jr_job_destroy (&r);
    cr_assert_eq (jr_h_zombies (getpid ()), 0);
}

Test (worker_isolate, deadline_stops_a_polite_task)
{
    jr_exec_set_kill_grace (20000);
    int64_t start = jr_clock_mono_us ();
    jr_job_t *r = s_isolated ("sleep", "ms", "30000", 300);
    cr_assert_not (r->success);
    cr_assert (s_starts (r->error, "DEADLINE_EXCEEDED"), "error: %.*s", S_TEXT (r->error));
    cr_assert_lt ((jr_clock_mono_us () - start) / 1000, 10000);  //  not the grace
    jr_job_destroy (&r);
}

Test (worker_isolate, deadline_kills_a_stubborn_task)
{
    jr_exec_set_kill_grace (300);
    int64_t start = jr_clock_mono_us ();
    jr_job_t *r = s_isolated ("hang", NULL, NULL, 300);
    cr_assert_not (r->success);
    cr_assert (s_starts (r->error, "DEADLINE_EXCEEDED"), "error: %.*s", S_TEXT (r->error));
    cr_assert (s_contains (r->error, "SIGKILL"), "error: %.*s", S_TEXT (r->error));
    cr_assert_lt ((jr_clock_mono_us () - start) / 1000, 300 + 300 + 5000);
    jr_job_destroy (&r);
    cr_assert_eq (jr_h_zombies (getpid ()), 0);
}

Test (worker_isolate, payload_limit_holds)
{
    //  sha256 of a task's output is small; echo of a big msg is not.
    char *big = malloc (300001);
    memset (big, 'z', 300000);
    big[300000] = 0;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    s_str (&pk, "msg");
    s_str (&pk, big);
    jr_job_t job;
    jr_job_init (&job, "echo");
    job.vars = (jr_bytes_t){ (const uint8_t *)buf.data, buf.size };
    job.attempt = 1;
    jr_run_t *run = jr_run_new (&job, jr_task_isolated, 1000);
    jr_run_execute (run);
    jr_job_t *r = jr_run_result (run, "test@host");
    cr_assert_not (r->success);
    cr_assert (s_starts (r->error, "TOO_LARGE"), "error: %.*s", S_TEXT (r->error));
    jr_job_destroy (&r);
    jr_run_destroy (&run);
    msgpack_sbuffer_destroy (&buf);
    free (big);
}

Test (worker_isolate, registry_routes_isolated_tasks)
{
    cr_assert_eq (jr_tasks_set_isolated ("no-such-task"), JR_ENOT_FOUND);
    jr_bytes_t echo = { (const uint8_t *)"echo", 4 };
    jr_bytes_t exec = { (const uint8_t *)"exec", 4 };
    cr_assert_not (jr_tasks_isolated (echo));
    cr_assert_eq (jr_tasks_set_isolated ("echo"), 0);
    cr_assert (jr_tasks_isolated (echo));
    cr_assert_eq (jr_tasks_set_isolated ("all"), 0);
    cr_assert_not (jr_tasks_isolated (exec), "exec runs in a child anyway");
    //  jr_run_new picks the isolated runner, and it works end to end.
    jr_job_t *r = s_run ("echo", (jr_bytes_t){ (const uint8_t *)"\x81\xa3msg\xa2ok", 8 }, 0, S_MAX);
    cr_assert (r->success, "error: %.*s", S_TEXT (r->error));
    cr_assert (s_eq (r->payload, "ok"));
    jr_job_destroy (&r);
}
