/*  test_fdlimit.c - every daemon raises its soft descriptor limit to the hard one at start  */
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

static jr_h_env_t env;

static void
s_fini (void)
{
    jr_h_cleanup ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (fdlimit, .fini = s_fini, .timeout = 60);

//  The soft and hard "Max open files" of a process, from /proc/PID/limits.
static bool
s_limits (pid_t pid, unsigned long *soft, unsigned long *hard)
{
    char path[64], line[256];
    snprintf (path, sizeof path, "/proc/%d/limits", (int)pid);
    FILE *file = fopen (path, "r");
    bool found = false;
    while (file && !found && fgets (line, sizeof line, file))
        found = sscanf (line, "Max open files %lu %lu", soft, hard) == 2;
    if (file)
        fclose (file);
    return found;
}

//  True once the process's soft limit equals its hard one (it starts with
//  the soft limit it inherited; a worker has no port to wait for).
static bool
s_raised (pid_t pid)
{
    unsigned long soft = 0, hard = 0;
    for (int i = 0; i < 500; i++) {
        if (s_limits (pid, &soft, &hard) && soft == hard)
            return true;
        jr_h_sleep_ms (10);
    }
    printf ("pid %d: soft %lu, hard %lu\n", (int)pid, soft, hard);
    return false;
}

Test (fdlimit, daemons_raise_the_soft_limit_to_the_hard_one)
{
    jr_h_env_init (&env, "fdlimit");
    struct rlimit saved, low;
    CHECK (getrlimit (RLIMIT_NOFILE, &saved) == 0, "getrlimit");
    CHECK (saved.rlim_max > 256, "a hard limit above 256 (it is %lu)",
           (unsigned long)saved.rlim_max);
    //  Children inherit the low soft limit; the hard one stays.
    low = (struct rlimit){ 256, saved.rlim_max };
    CHECK (setrlimit (RLIMIT_NOFILE, &low) == 0, "lower the soft limit");
    pid_t ingester = jr_h_ingester (&env);
    pid_t broker = jr_h_broker (&env, NULL);
    pid_t worker = jr_h_worker (&env, "w", 1, "echo");
    CHECK (setrlimit (RLIMIT_NOFILE, &saved) == 0, "restore the soft limit");
    CHECK (s_raised (ingester), "jr-ingester raised its soft limit");
    CHECK (s_raised (broker), "jr-broker raised its soft limit");
    CHECK (s_raised (worker), "jr-worker raised its soft limit");
}
