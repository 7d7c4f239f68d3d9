/*  test_tasks.c - the real binaries: deadlines, exec process groups, plugins, isolation, no leaks  */
#include "tests/system/harness.h"
#include <czmq.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <jr/jr.h>

static jr_h_env_t env;

static void
s_init (void)
{
    //  The crash test must not leave core files behind.
    struct rlimit none = { 0, 0 };
    setrlimit (RLIMIT_CORE, &none);
}

static void
s_fini (void)
{
    jr_h_cleanup ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

#define S_TEXT(b) (int)(b).len, (const char *)(b).ptr

TestSuite (tasks, .init = s_init, .fini = s_fini, .timeout = 300);

//  -------------------------------------------------------------------------
//  Helpers

static const char *
s_plugin (void)
{
    static char path[512];
    const char *bin = getenv ("JR_BIN");
    snprintf (path, sizeof path, "%s/libjr-example-plugin.so", bin ? bin : ".");
    return path;
}

//  A worker with up to six extra arguments (NULL-padded).
static pid_t
s_worker (const char *label, const char *concurrency, const char *a1, const char *a2,
          const char *a3, const char *a4, const char *a5, const char *a6)
{
    return jr_h_spawn (&env, label, "jr-worker", "--broker", env.workers_ep, "--ingester",
                       env.ingester_ep, "--concurrency", concurrency, "--name", label, a1, a2, a3,
                       a4, a5, a6, NULL);
}

static void
s_pack_str (msgpack_packer *pk, const char *text)
{
    msgpack_pack_str (pk, strlen (text));
    msgpack_pack_str_body (pk, text, strlen (text));
}

//  {key: value} with one string value; caller destroys buf.
static void
s_vars1 (msgpack_sbuffer *buf, const char *key, const char *value)
{
    msgpack_packer pk;
    msgpack_sbuffer_init (buf);
    msgpack_packer_init (&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    s_pack_str (&pk, key);
    s_pack_str (&pk, value);
}

//  {argv: [...]} for exec; argv NULL-terminated.
static void
s_exec_vars (msgpack_sbuffer *buf, const char *const *argv)
{
    msgpack_packer pk;
    msgpack_sbuffer_init (buf);
    msgpack_packer_init (&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    s_pack_str (&pk, "argv");
    size_t n = 0;
    while (argv[n])
        n++;
    msgpack_pack_array (&pk, n);
    for (size_t i = 0; i < n; i++)
        s_pack_str (&pk, argv[i]);
}

//  Submit one job and wait for its stored result (owned by the caller).
static jr_job_t *
s_run (jr_client_t *client, const char *task, const msgpack_sbuffer *vars, uint32_t timeout_ms)
{
    jr_job_t job;
    jr_job_init (&job, task);
    job.vars = (jr_bytes_t){ (const uint8_t *)vars->data, vars->size };
    job.timeout_ms = timeout_ms;
    job.max_attempts = 1;  //  a retry would blur what the attempt did
    int rc = jr_client_submit (client, &job);
    CHECK (rc == 0, "submit %s: %s", task, jr_errname (rc));
    jr_job_t *result = NULL;
    rc = jr_client_wait (client, job.id, 60000, &result);
    CHECK (rc == 0, "result of %s: %s", task, jr_errname (rc));
    return result;
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

static bool
s_eq (jr_bytes_t bytes, const char *text)
{
    return bytes.len == strlen (text) && memcmp (bytes.ptr, text, bytes.len) == 0;
}

static int
s_count_fds (pid_t pid)
{
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *dir = opendir (path);
    CHECK (dir, "open %s", path);
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (entry->d_name[0] != '.')
            n++;
    closedir (dir);
    return n;
}

//  Zombie children of pid (state Z, ppid = pid) in /proc/*/stat.
static bool
s_slurp (const char *path, char *buf, size_t size)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    size_t n = fread (buf, 1, size - 1, file);
    buf[n] = 0;
    fclose (file);
    return true;
}

//  -------------------------------------------------------------------------

static void
s_sleep_past_deadline (const char *isolate)
{
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    if (isolate)
        s_worker ("w1", "2", "--isolate", isolate, NULL, NULL, NULL, NULL);
    else
        s_worker ("w1", "2", NULL, NULL, NULL, NULL, NULL, NULL);
    jr_client_t *client = jr_client_new (NULL, NULL);
    msgpack_sbuffer vars;
    s_vars1 (&vars, "ms", "10000");
    jr_job_t *r = s_run (client, "sleep", &vars, 300);
    CHECK (!r->success, "a 10 s sleep under a 300 ms deadline failed");
    CHECK (s_starts (r->error, "DEADLINE_EXCEEDED"), "error: %.*s", S_TEXT (r->error));
    int64_t ran_ms = (r->completed_us - r->started_us) / 1000;
    CHECK (ran_ms < 300 + 1000, "ended %lld ms after its start, deadline 300 ms",
           (long long)ran_ms);
    //  Its only attempt ran out of time: EXPIRED, stored and at the broker,
    //  which hears of it (DONE) once the result is stored.
    CHECK (r->state == JR_STATE_EXPIRED, "stored state %s", jr_state_name (r->state));
    int state = JR_STATE_RUNNING;
    for (int i = 0; i < 1000 && state == JR_STATE_RUNNING; i++) {
        if (i)
            jr_h_sleep_ms (10);
        CHECK (jr_client_status (client, r->id, &state, &(uint32_t){ 0 }) == 0, "status");
    }
    CHECK (state == JR_STATE_EXPIRED, "broker state %s", jr_state_name (state));
    jr_job_destroy (&r);
    msgpack_sbuffer_destroy (&vars);
    jr_client_destroy (&client);
}

Test (tasks, sleep_ends_at_its_deadline)
{
    jr_h_env_init (&env, "deadline");
    s_sleep_past_deadline (NULL);
}

Test (tasks, isolated_sleep_ends_at_its_deadline)
{
    jr_h_env_init (&env, "deadline-iso");
    s_sleep_past_deadline ("sleep");
}

Test (tasks, exec_process_group_killed_after_grace)
{
    jr_h_env_init (&env, "exec-group");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    pid_t worker = s_worker ("w1", "2", "--kill-grace", "1000", "--tasks", "exec,echo", NULL, NULL);
    jr_client_t *client = jr_client_new (NULL, NULL);

    //  The shell ignores SIGTERM, and so does its sleep (an ignored signal
    //  stays ignored across fork and exec): only SIGKILL ends them.
    char pidfile[400];
    snprintf (pidfile, sizeof pidfile, "%s/group.pid", env.dir);
    //  The group is not the shell's pid (a supervisor leads it): field 5 of
    //  /proc/$$/stat names it.
    const char *argv[] = {
        "sh",
        "-c",
        "trap '' TERM; read -r _ _ _ _ g _ < /proc/$$/stat; echo $g > \"$1\"; sleep 60",
        "sh",
        pidfile,
        NULL
    };
    msgpack_sbuffer vars;
    s_exec_vars (&vars, argv);
    jr_job_t *r = s_run (client, "exec", &vars, 500);
    CHECK (!r->success, "exec of an endless sleep under a deadline failed");
    CHECK (s_starts (r->error, "DEADLINE_EXCEEDED"), "error: %.*s", S_TEXT (r->error));
    CHECK (s_contains (r->error, "SIGKILL"), "error: %.*s", S_TEXT (r->error));
    int64_t ran_ms = (r->completed_us - r->started_us) / 1000;
    CHECK (ran_ms < 500 + 1000 + 1000, "took %lld ms", (long long)ran_ms);

    char text[64] = "";
    CHECK (s_slurp (pidfile, text, sizeof text), "the child wrote %s", pidfile);
    pid_t pgid = (pid_t)atoi (text);
    CHECK (pgid > 1, "pgid %s", text);
    //  The worker reaps the group before it reports, so it is gone by now.
    CHECK (kill (-pgid, 0) == -1 && errno == ESRCH, "process group %d still there", (int)pgid);
    CHECK (jr_h_zombies (worker) == 0, "zombie children of the worker");
    CHECK (kill (worker, 0) == 0, "worker alive");
    jr_job_destroy (&r);
    msgpack_sbuffer_destroy (&vars);
    jr_client_destroy (&client);
}

Test (tasks, isolated_crash_is_a_failure_worker_survives)
{
    jr_h_env_init (&env, "crash");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    pid_t worker = s_worker ("w1", "2", "--plugin", s_plugin (), "--isolate", "crash", NULL, NULL);
    jr_client_t *client = jr_client_new (NULL, NULL);
    msgpack_sbuffer vars;
    s_vars1 (&vars, "msg", "still here");

    jr_job_t *r = s_run (client, "crash", &vars, 10000);
    CHECK (!r->success, "crash failed");
    CHECK (s_contains (r->error, "killed by signal SIGSEGV"), "error: %.*s", S_TEXT (r->error));
    jr_job_destroy (&r);

    r = s_run (client, "echo", &vars, 10000);
    CHECK (r->success, "echo after the crash: %.*s", S_TEXT (r->error));
    CHECK (s_eq (r->payload, "still here"), "payload %.*s", S_TEXT (r->payload));
    CHECK (kill (worker, 0) == 0, "worker alive");
    CHECK (jr_h_zombies (worker) == 0, "zombie children of the worker");
    jr_job_destroy (&r);
    msgpack_sbuffer_destroy (&vars);
    jr_client_destroy (&client);
}

Test (tasks, isolated_stubborn_task_killed_after_grace)
{
    jr_h_env_init (&env, "hang");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    s_worker ("w1", "2", "--plugin", s_plugin (), "--isolate", "all", "--kill-grace", "500");
    jr_client_t *client = jr_client_new (NULL, NULL);
    msgpack_sbuffer vars;
    s_vars1 (&vars, "ms", "60000");
    jr_job_t *r = s_run (client, "hang", &vars, 300);
    CHECK (!r->success, "hang failed");
    CHECK (s_starts (r->error, "DEADLINE_EXCEEDED"), "error: %.*s", S_TEXT (r->error));
    CHECK (s_contains (r->error, "SIGKILL"), "error: %.*s", S_TEXT (r->error));
    int64_t ran_ms = (r->completed_us - r->started_us) / 1000;
    CHECK (ran_ms < 300 + 500 + 1000, "took %lld ms", (long long)ran_ms);
    jr_job_destroy (&r);
    msgpack_sbuffer_destroy (&vars);
    jr_client_destroy (&client);
}

Test (tasks, plugin_task_end_to_end)
{
    jr_h_env_init (&env, "plugin");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    s_worker ("w1", "2", "--plugin", s_plugin (), NULL, NULL, NULL, NULL);
    jr_client_t *client = jr_client_new (NULL, NULL);
    msgpack_sbuffer vars;
    s_vars1 (&vars, "text", "stressed");
    jr_job_t *r = s_run (client, "reverse", &vars, 10000);
    CHECK (r->success, "reverse: %.*s", S_TEXT (r->error));
    CHECK (s_eq (r->payload, "desserts"), "payload %.*s", S_TEXT (r->payload));
    jr_job_destroy (&r);
    msgpack_sbuffer_destroy (&vars);
    jr_client_destroy (&client);
}

Test (tasks, missing_plugin_fails_startup)
{
    jr_h_env_init (&env, "noplugin");
    pid_t worker = s_worker ("w1", "1", "--plugin", "/nonexistent.so", NULL, NULL, NULL, NULL);
    int status = 0;
    CHECK (jr_h_wait_exit (worker, 10000, &status), "worker exits by itself");
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 1, "exit code 1, status 0x%x", status);
    char path[400], log[4096];
    snprintf (path, sizeof path, "%s/w1.log", env.dir);
    CHECK (s_slurp (path, log, sizeof log), "read %s", path);
    CHECK (strstr (log, "cannot load plugin") && strstr (log, "/nonexistent.so")
               && strstr (log, "No such file"),
           "log says why: %s", log);

    //  A file that is not a plugin: no jr_plugin_init.
    char libc[] = "libc.so.6";
    worker = s_worker ("w2", "1", "--plugin", libc, NULL, NULL, NULL, NULL);
    CHECK (jr_h_wait_exit (worker, 10000, &status), "worker exits by itself");
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 1, "exit code 1, status 0x%x", status);
    snprintf (path, sizeof path, "%s/w2.log", env.dir);
    CHECK (s_slurp (path, log, sizeof log), "read %s", path);
    CHECK (strstr (log, "no jr_plugin_init"), "log says why: %s", log);
}

typedef struct {
    size_t seen, ok;
    char first_error[256];
} s_tally_t;

static bool
s_count (const jr_job_t *job, void *arg)
{
    s_tally_t *tally = arg;
    tally->seen++;
    tally->ok += job->success;
    if (!job->success && !tally->first_error[0])
        snprintf (tally->first_error, sizeof tally->first_error, "%.*s", S_TEXT (job->error));
    return true;
}

Test (tasks, thousand_execs_leave_no_fds_or_zombies)
{
    jr_h_env_init (&env, "execs");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    pid_t worker = s_worker ("w1", "16", "--tasks", "exec", NULL, NULL, NULL, NULL);
    jr_client_t *client = jr_client_new (NULL, NULL);
    const char *argv[] = { "/bin/true", NULL };
    msgpack_sbuffer vars;
    s_exec_vars (&vars, argv);

    //  One first, so the worker's connections and lazy state are in place.
    jr_job_t *r = s_run (client, "exec", &vars, 10000);
    CHECK (r->success, "warm-up exec: %.*s", S_TEXT (r->error));
    jr_job_destroy (&r);
    int fds_before = s_count_fds (worker);
    CHECK (jr_h_zombies (worker) == 0, "no zombies before");

    enum { N = 1000 };
    static jr_job_t jobs[N];
    static uint8_t ids[N][JR_ID_SIZE];
    for (int i = 0; i < N; i++) {
        jr_job_init (&jobs[i], "exec");
        jobs[i].vars = (jr_bytes_t){ (const uint8_t *)vars.data, vars.size };
        jobs[i].timeout_ms = 60000;
        jobs[i].max_attempts = 1;
        memcpy (ids[i], jobs[i].id, JR_ID_SIZE);
    }
    int rc = jr_client_submit_many (client, jobs, N, NULL);
    CHECK (rc == 0, "submit: %s", jr_errname (rc));
    s_tally_t tally = { 0 };
    rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, N, 120000, s_count,
                              &tally);
    CHECK (rc == 0, "all stored: %s, seen %zu", jr_errname (rc), tally.seen);
    CHECK (tally.ok == N, "%zu of %d succeeded, first error: %s", tally.ok, N, tally.first_error);

    //  Every child was reaped before its result was sent, and every pipe and
    //  pidfd closed: the worker holds what it held before, not one more.
    int fds_after = s_count_fds (worker);
    CHECK (fds_after == fds_before, "fds before %d, after %d", fds_before, fds_after);
    CHECK (jr_h_zombies (worker) == 0, "zombie children of the worker");
    msgpack_sbuffer_destroy (&vars);
    jr_client_destroy (&client);
}

//  -------------------------------------------------------------------------
//  jr cancel: a running exec job's process group is stopped within 1 s; a
//  queued job never starts.

Test (tasks, cancel_running_exec_and_queued_job)
{
    jr_h_env_init (&env, "cancel");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    pid_t worker = s_worker ("w1", "1", "--tasks", "exec,echo", NULL, NULL, NULL, NULL);
    jr_client_t *client = jr_client_new (NULL, NULL);

    char pidfile[400];
    snprintf (pidfile, sizeof pidfile, "%s/cancel.pid", env.dir);
    const char *argv[] = {
        "sh", "-c",    "read -r _ _ _ _ g _ < /proc/$$/stat; echo $g > \"$1\"; exec sleep 60",
        "sh", pidfile, NULL
    };
    msgpack_sbuffer vars;
    s_exec_vars (&vars, argv);
    jr_job_t running;
    jr_job_init (&running, "exec");
    running.vars = (jr_bytes_t){ (const uint8_t *)vars.data, vars.size };
    running.timeout_ms = 60000;
    running.max_attempts = 1;
    CHECK (jr_client_submit (client, &running) == 0, "submit exec");
    //  The only executor is busy with it: this one waits in the queue.
    jr_job_t queued;
    jr_job_init (&queued, "echo");
    CHECK (jr_client_submit (client, &queued) == 0, "submit echo");

    char text[64] = "";
    for (int i = 0; i < 1000 && !s_slurp (pidfile, text, sizeof text); i++)
        jr_h_sleep_ms (10);
    pid_t pgid = (pid_t)atoi (text);
    CHECK (pgid > 1, "the exec job started (pid file %s)", pidfile);

    int state = 0;
    CHECK (jr_client_cancel (client, queued.id, &state) == 0, "cancel queued");
    CHECK (state == JR_STATE_CANCELLED, "queued job: %s", jr_state_name (state));
    int64_t asked = zclock_usecs ();
    CHECK (jr_client_cancel (client, running.id, &state) == 0, "cancel running");
    CHECK (state == JR_STATE_CANCELLED, "running job: %s", jr_state_name (state));
    while (kill (-pgid, 0) == 0 && zclock_usecs () - asked < 5000000)
        jr_h_sleep_ms (5);
    int64_t stopped_ms = (zclock_usecs () - asked) / 1000;
    printf ("tasks: cancelled exec process group gone %lld ms after jr cancel\n",
            (long long)stopped_ms);
    CHECK (kill (-pgid, 0) == -1 && errno == ESRCH, "process group %d still there", (int)pgid);
    CHECK (stopped_ms < 1000, "took %lld ms", (long long)stopped_ms);

    jr_job_t *r = NULL;
    CHECK (jr_client_wait (client, running.id, 30000, &r) == 0, "result of the cancelled job");
    CHECK (r->state == JR_STATE_CANCELLED, "state %s", jr_state_name (r->state));
    CHECK (s_starts (r->error, "CANCELLED"), "error: %.*s", S_TEXT (r->error));
    jr_job_destroy (&r);

    //  Another job after both: once it ran, the cancelled queued one has had
    //  every chance to start, and must not have.
    jr_job_t after;
    jr_job_init (&after, "echo");
    CHECK (jr_client_submit (client, &after) == 0, "submit after");
    CHECK (jr_client_wait (client, after.id, 30000, &r) == 0, "the later job ran");
    jr_job_destroy (&r);
    //  It has a stored result all the same, so waiters learn it was cancelled.
    CHECK (jr_client_wait (client, queued.id, 30000, &r) == 0, "result of the cancelled job");
    CHECK (r->state == JR_STATE_CANCELLED, "state %s", jr_state_name (r->state));
    CHECK (r->started_us == 0, "the cancelled job never ran");
    CHECK (s_starts (r->error, "CANCELLED"), "error: %.*s", S_TEXT (r->error));
    jr_job_destroy (&r);
    CHECK (jr_client_status (client, queued.id, &state, &(uint32_t){ 0 }) == 0, "status");
    CHECK (state == JR_STATE_CANCELLED, "status %s", jr_state_name (state));
    CHECK (kill (worker, 0) == 0, "worker alive");
    msgpack_sbuffer_destroy (&vars);
    jr_client_destroy (&client);
}

//  -------------------------------------------------------------------------
//  Prefetch: the worker holds jobs beyond its threads, so the next starts
//  the moment a task ends; a held job's deadline runs while it waits.

static void
s_submit_sleep (jr_client_t *client, jr_job_t *job, msgpack_sbuffer *vars, uint32_t timeout_ms)
{
    jr_job_init (job, "sleep");
    job->vars = (jr_bytes_t){ (const uint8_t *)vars->data, vars->size };
    job->timeout_ms = timeout_ms;
    job->max_attempts = 1;
    CHECK (jr_client_submit (client, job) == 0, "submit sleep");
}

Test (tasks, prefetch_holds_jobs_runs_them_one_at_a_time)
{
    jr_h_env_init (&env, "prefetch");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    s_worker ("w1", "1", "--prefetch", "2", NULL, NULL, NULL, NULL);
    jr_client_t *client = jr_client_new (NULL, NULL);
    msgpack_sbuffer vars;
    s_vars1 (&vars, "ms", "300");
    jr_job_t jobs[3];
    for (int i = 0; i < 3; i++)
        s_submit_sleep (client, &jobs[i], &vars, 10000);
    jr_job_t *r[3];
    for (int i = 0; i < 3; i++) {
        CHECK (jr_client_wait (client, jobs[i].id, 30000, &r[i]) == 0, "result %d", i);
        CHECK (r[i]->success, "job %d: %.*s", i, S_TEXT (r[i]->error));
    }
    //  One thread: the runs follow each other, in the order they came.
    for (int i = 1; i < 3; i++)
        CHECK (r[i]->started_us >= r[i - 1]->completed_us, "run %d overlaps run %d", i, i - 1);
    //  All three were held at once: the last came before the first ended.
    CHECK (r[2]->dispatched_us < r[0]->completed_us,
           "the third job was dispatched %lld us after the first ended",
           (long long)(r[2]->dispatched_us - r[0]->completed_us));
    for (int i = 0; i < 3; i++)
        jr_job_destroy (&r[i]);

    //  A held job whose deadline passes before a thread is free never starts,
    //  and fails at its deadline, not when the thread comes free.
    jr_job_t slow, late;
    msgpack_sbuffer_destroy (&vars);
    s_vars1 (&vars, "ms", "600");
    s_submit_sleep (client, &slow, &vars, 10000);
    msgpack_sbuffer_destroy (&vars);
    s_vars1 (&vars, "ms", "10");
    s_submit_sleep (client, &late, &vars, 200);
    jr_job_t *rs = NULL, *rl = NULL;
    CHECK (jr_client_wait (client, slow.id, 30000, &rs) == 0, "result of the slow job");
    CHECK (jr_client_wait (client, late.id, 30000, &rl) == 0, "result of the late job");
    CHECK (rs->success, "slow job: %.*s", S_TEXT (rs->error));
    CHECK (!rl->success && s_starts (rl->error, "DEADLINE_EXCEEDED"), "late job: %.*s",
           S_TEXT (rl->error));
    CHECK (rl->completed_us < rs->completed_us,
           "the late job failed %lld us after the slow one ended",
           (long long)(rl->completed_us - rs->completed_us));
    CHECK (rl->completed_us - rl->started_us < 100000, "the late job ran for %lld us",
           (long long)(rl->completed_us - rl->started_us));
    jr_job_destroy (&rs);
    jr_job_destroy (&rl);
    msgpack_sbuffer_destroy (&vars);
    jr_client_destroy (&client);
}

//  A drain lets the running job finish and hands the held ones back at once:
//  they run on another worker, not here during the grace.
Test (tasks, drain_hands_back_prefetched_jobs_at_once)
{
    jr_h_env_init (&env, "prefetch-drain");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    pid_t w1 = s_worker ("w1", "1", "--prefetch", "2", "--grace", "30000", NULL, NULL);
    jr_client_t *client = jr_client_new (NULL, NULL);
    msgpack_sbuffer vars;
    s_vars1 (&vars, "ms", "1000");
    jr_job_t jobs[3];
    for (int i = 0; i < 3; i++)
        s_submit_sleep (client, &jobs[i], &vars, 30000);
    for (int i = 0; i < 3; i++) {
        int state = JR_STATE_UNKNOWN;
        for (int t = 0; t < 1000 && state != JR_STATE_RUNNING; t++) {
            if (t)
                jr_h_sleep_ms (10);
            CHECK (jr_client_status (client, jobs[i].id, &state, &(uint32_t){ 0 }) == 0, "status");
        }
        CHECK (state == JR_STATE_RUNNING, "job %d held by w1: %s", i, jr_state_name (state));
    }
    jr_h_sleep_ms (200);  //  the first one is in its sleep
    CHECK (kill (w1, SIGTERM) == 0, "SIGTERM");
    s_worker ("w2", "1", NULL, NULL, NULL, NULL, NULL, NULL);
    for (int i = 0; i < 3; i++) {
        jr_job_t *r = NULL;
        CHECK (jr_client_wait (client, jobs[i].id, 30000, &r) == 0, "result %d", i);
        CHECK (r->success, "job %d: %.*s", i, S_TEXT (r->error));
        const char *want = i == 0 ? "w1@" : "w2@";
        CHECK (s_starts (r->worker, want), "job %d ran on %.*s, not %s", i, S_TEXT (r->worker),
               want);
        jr_job_destroy (&r);
    }
    int status = 0;
    CHECK (jr_h_wait_exit (w1, 10000, &status), "w1 exited once its running job ended");
    msgpack_sbuffer_destroy (&vars);
    jr_client_destroy (&client);
}

//  -------------------------------------------------------------------------
//  Progress: a running sleep reports how far it got, which the client sees
//  through the broker while the job runs; then the job completes.

Test (tasks, sleep_progress_seen_while_running)
{
    jr_h_env_init (&env, "progress");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    s_worker ("w1", "1", NULL, NULL, NULL, NULL, NULL, NULL);
    jr_client_t *client = jr_client_new (NULL, NULL);
    msgpack_sbuffer vars;
    s_vars1 (&vars, "ms", "3000");
    jr_job_t job;
    jr_job_init (&job, "sleep");
    job.vars = (jr_bytes_t){ (const uint8_t *)vars.data, vars.size };
    job.timeout_ms = 60000;
    job.max_attempts = 1;
    CHECK (jr_client_submit (client, &job) == 0, "submit sleep");

    //  Poll until progress shows; give up only when the job is no longer
    //  waiting or running (then it ran without our ever seeing progress).
    int state = JR_STATE_QUEUED;
    uint32_t attempt = 0;
    int32_t value = 0;
    char text[256] = "";
    bool seen = false;
    for (int polls = 0; !seen && polls < 6000; polls++) {
        int rc = jr_client_progress (client, job.id, &state, &attempt, &value, text, sizeof text);
        CHECK (rc == 0, "status: %s", jr_errname (rc));
        seen = state == JR_STATE_RUNNING && value > 0;
        if (!seen && state != JR_STATE_QUEUED && state != JR_STATE_SCHEDULED
            && state != JR_STATE_RUNNING)
            break;
        if (!seen)
            jr_h_sleep_ms (20);
    }
    CHECK (seen, "no progress while running; last state %s value %d", jr_state_name (state),
           (int)value);
    printf ("tasks: progress of a running sleep: attempt=%u value=%d message=\"%s\"\n", attempt,
            (int)value, text);
    char want[64];
    snprintf (want, sizeof want, "slept %d of 3000 ms", (int)value);
    CHECK (strcmp (text, want) == 0, "message \"%s\", expected \"%s\"", text, want);
    CHECK (attempt == 1, "attempt %u", attempt);

    jr_job_t *r = NULL;
    int rc = jr_client_wait (client, job.id, 60000, &r);
    CHECK (rc == 0, "result of the sleep: %s", jr_errname (rc));
    CHECK (r->success && r->state == JR_STATE_SUCCEEDED, "state %s error %.*s",
           jr_state_name (r->state), S_TEXT (r->error));
    CHECK (s_eq (r->payload, "slept 3000"), "payload %.*s", S_TEXT (r->payload));
    jr_job_destroy (&r);
    msgpack_sbuffer_destroy (&vars);
    jr_client_destroy (&client);
}

//  -------------------------------------------------------------------------
//  kill -9 of the worker: its exec and isolated children die with it, so a
//  job requeued elsewhere never runs twice at once (issue 10, item 12).

//  Process groups of the worker's children, other than the worker's own.
static int
s_child_groups (pid_t worker, pid_t *groups, int max, bool *isolated)
{
    int n = 0;
    DIR *dir = opendir ("/proc");
    CHECK (dir, "open /proc");
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        char path[300], line[512];
        snprintf (path, sizeof path, "/proc/%s/stat", entry->d_name);
        if (!s_slurp (path, line, sizeof line))
            continue;
        char *paren = strrchr (line, ')');
        char state;
        int ppid, pgid;
        if (!paren || sscanf (paren + 2, "%c %d %d", &state, &ppid, &pgid) != 3 || ppid != worker
            || pgid == getpgid (worker) || state == 'Z')
            continue;
        //  The command line of an isolated task holds --run-task.
        char cmd[512] = "";
        snprintf (path, sizeof path, "/proc/%s/cmdline", entry->d_name);
        FILE *file = fopen (path, "r");
        size_t len = file ? fread (cmd, 1, sizeof cmd - 1, file) : 0;
        if (file)
            fclose (file);
        for (size_t i = 0; i + 10 <= len; i++)
            *isolated |= memcmp (cmd + i, "--run-task", 10) == 0;
        bool known = false;
        for (int i = 0; i < n; i++)
            known |= groups[i] == pgid;
        if (!known && n < max)
            groups[n++] = pgid;
    }
    closedir (dir);
    return n;
}

//  Live (not zombie) processes in any of the groups.
static int
s_alive_in (const pid_t *groups, int n)
{
    int alive = 0;
    DIR *dir = opendir ("/proc");
    CHECK (dir, "open /proc");
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        char path[300], line[512];
        snprintf (path, sizeof path, "/proc/%s/stat", entry->d_name);
        if (!s_slurp (path, line, sizeof line))
            continue;
        char *paren = strrchr (line, ')');
        char state;
        int ppid, pgid;
        if (!paren || sscanf (paren + 2, "%c %d %d", &state, &ppid, &pgid) != 3 || state == 'Z')
            continue;
        for (int i = 0; i < n; i++)
            alive += groups[i] == pgid;
    }
    closedir (dir);
    return alive;
}

Test (tasks, worker_kill9_takes_its_children_along)
{
    jr_h_env_init (&env, "kill9");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    pid_t worker = s_worker ("w1", "2", "--tasks", "exec,sleep", "--isolate", "sleep", NULL, NULL);
    jr_client_t *client = jr_client_new (NULL, NULL);

    //  A shell with a grandchild in its group, and an isolated sleep.
    char pidfile[400];
    snprintf (pidfile, sizeof pidfile, "%s/kill9.pid", env.dir);
    const char *argv[] = { "sh", "-c", "sleep 600 & echo $$ > \"$1\"; wait", "sh", pidfile, NULL };
    msgpack_sbuffer exec_vars, sleep_vars;
    s_exec_vars (&exec_vars, argv);
    s_vars1 (&sleep_vars, "ms", "600000");
    jr_job_t jobs[2];
    jr_job_init (&jobs[0], "exec");
    jobs[0].vars = (jr_bytes_t){ (const uint8_t *)exec_vars.data, exec_vars.size };
    jr_job_init (&jobs[1], "sleep");
    jobs[1].vars = (jr_bytes_t){ (const uint8_t *)sleep_vars.data, sleep_vars.size };
    for (int i = 0; i < 2; i++) {
        jobs[i].timeout_ms = 600000;
        jobs[i].max_attempts = 1;
        CHECK (jr_client_submit (client, &jobs[i]) == 0, "submit %d", i);
    }

    //  Both run: the shell wrote its pid, the isolated child is there.
    pid_t groups[16];
    int ngroups = 0;
    bool isolated = false;
    char text[64] = "";
    for (int i = 0; i < 1000 && (!isolated || !*text); i++) {
        jr_h_sleep_ms (10);
        s_slurp (pidfile, text, sizeof text);
        isolated = false;
        ngroups = s_child_groups (worker, groups, 16, &isolated);
    }
    CHECK (*text && isolated, "both tasks started (pid file '%s', isolated %d)", text, isolated);
    pid_t shell = (pid_t)atoi (text);
    CHECK (shell > 1 && getpgid (shell) > 1, "shell %d running", (int)shell);
    bool shell_seen = false;
    for (int i = 0; i < ngroups; i++)
        shell_seen |= groups[i] == getpgid (shell);
    CHECK (shell_seen, "the shell's group is one of the worker's %d", ngroups);
    int before = s_alive_in (groups, ngroups);
    CHECK (before >= 3, "shell, its sleep and the isolated child: %d processes", before);

    CHECK (jr_h_stop (worker, SIGKILL, 10000), "worker killed");
    int alive = before;
    for (int i = 0; i < 1000 && alive > 0; i++) {
        jr_h_sleep_ms (10);
        alive = s_alive_in (groups, ngroups);
    }
    //  Whatever survived must not outlive the test either.
    for (int i = 0; i < ngroups; i++)
        kill (-groups[i], SIGKILL);
    CHECK (alive == 0, "%d of %d task processes outlived the worker", alive, before);
    msgpack_sbuffer_destroy (&exec_vars);
    msgpack_sbuffer_destroy (&sleep_vars);
    jr_client_destroy (&client);
}
