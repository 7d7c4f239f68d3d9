/*  test_unserved.c - a job of a task no worker serves waits, and jr submit --wait says so  */
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static jr_h_env_t env;

static void
s_fini (void)
{
    jr_h_cleanup ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (unserved, .fini = s_fini, .timeout = 120);

//  Times needle occurs in a process's log.
static int
s_count_in_log (const char *label, const char *needle)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s.log", env.dir, label);
    FILE *file = fopen (path, "r");
    CHECK (file, "no log %s", path);
    static char text[1 << 20];
    size_t len = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text[len] = 0;
    int n = 0;
    for (const char *at = text; (at = strstr (at, needle)); at += strlen (needle))
        n++;
    return n;
}

//  Run jr submit --wait TASK VAR with a wait of wait_ms; its output goes to label's log.
static pid_t
s_submit_wait (const char *label, const char *task, const char *var, const char *wait_ms)
{
    return jr_h_spawn (&env, label, "jr", "--broker", env.clients_ep, "--ingester", env.ingester_ep,
                       "submit", "--wait", "--wait-timeout", wait_ms, task, var, NULL);
}

static int
s_exit_status (pid_t pid)
{
    int status = 0;
    CHECK (jr_h_wait_exit (pid, 60000, &status), "jr did not end");
    CHECK (WIFEXITED (status), "jr died");
    return WEXITSTATUS (status);
}

Test (unserved, submit_wait_says_no_worker_serves_the_task)
{
    jr_h_env_init (&env, "unserved");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    jr_h_worker (&env, "w", 1, "echo,sleep");
    //  Two jobs of a task nobody serves, one of a task served that takes
    //  longer than the moment jr asks why it waits.
    pid_t first = s_submit_wait ("cli-first", "sha256", "data=abc", "6000");
    pid_t second = s_submit_wait ("cli-second", "sha256", "data=def", "6000");
    pid_t served = s_submit_wait ("cli-served", "sleep", "ms:=4500", "30000");
    CHECK (s_exit_status (first) == 3, "the unserved job timed out");
    CHECK (s_exit_status (second) == 3, "the unserved job timed out");
    CHECK (s_exit_status (served) == 0, "the served job succeeded");
    const char *said = "is queued: no worker serves task sha256\n";
    CHECK (s_count_in_log ("cli-first", said) == 1, "jr said why the job waits, once");
    CHECK (s_count_in_log ("cli-second", said) == 1, "jr said why the job waits, once");
    CHECK (s_count_in_log ("cli-served", "no worker serves") == 0, "nothing said when served");
    //  jr status notes why the job still waits.
    char path[512], id[64] = "";
    snprintf (path, sizeof path, "%s/cli-first.log", env.dir);
    FILE *file = fopen (path, "r");
    CHECK (file && fgets (id, sizeof id, file), "the first line is the job's id");
    fclose (file);
    id[strcspn (id, "\n")] = 0;
    pid_t status = jr_h_spawn (&env, "cli-status", "jr", "--broker", env.clients_ep, "--ingester",
                               env.ingester_ep, "status", id, NULL);
    CHECK (s_exit_status (status) == 0, "jr status");
    CHECK (s_count_in_log ("cli-status", "\"state\":\"queued\",\"attempt\":0,\"task\":\"sha256\","
                                         "\"note\":\"no worker serves task sha256\"}")
               == 1,
           "jr status shows the note");
    CHECK (s_count_in_log ("broker", "task=sha256: queued jobs for a task no connected worker "
                                     "serves")
               == 1,
           "the broker logs it once per task");
}
