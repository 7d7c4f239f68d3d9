/*  test_worker_config.c - jr-worker's flags and environment, and the --task-timeout rules  */
#include "common/log.h"
#include "proto/proto.h"
#include "worker/config.h"
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *s_envs[] = { "JR_WORKER_BROKER",  "JR_INGESTER",       "JR_CONCURRENCY",
                                "JR_PREFETCH",       "JR_WORKER_NAME",    "JR_WORKER_TASKS",
                                "JR_WORKER_PLUGINS", "JR_WORKER_ISOLATE", "JR_TASK_TIMEOUT",
                                "JR_KILL_GRACE_MS",  "JR_MAX_PAYLOAD",    "JR_GRACE_MS",
                                "JR_BACKLOG" };

//  Each test runs in its own process: what it sets in the environment stays there.
static void
s_init (void)
{
    jr_log_init ("worker", JR_LOG_ERROR);
    for (size_t i = 0; i < sizeof s_envs / sizeof s_envs[0]; i++)
        unsetenv (s_envs[i]);
}

TestSuite (worker_config, .init = s_init);

//  Parse "jr-worker" and the given arguments (NULL-terminated).
static int
s_parse (jr_worker_args_t *args, ...)
{
    static char *argv[64];
    int argc = 0;
    argv[argc++] = "jr-worker";
    va_list ap;
    va_start (ap, args);
    for (const char *arg; (arg = va_arg (ap, const char *));)
        argv[argc++] = (char *)arg;
    va_end (ap);
    argv[argc] = NULL;
    return jr_worker_args_parse (args, argc, argv);
}

Test (worker_config, defaults_are_those_of_the_help)
{
    jr_worker_args_t args;
    char *argv[] = { "jr-worker", NULL };
    cr_assert_eq (jr_worker_args_parse (&args, 1, argv), 0);
    cr_assert_str_eq (args.worker.broker, JR_WORKER_DEFAULT_BROKER);
    cr_assert_str_eq (args.worker.ingester, JR_WORKER_DEFAULT_INGESTER);
    cr_assert_eq (args.worker.concurrency, 0, "0: the number of cores");
    cr_assert_eq (args.worker.prefetch, 0);
    cr_assert_eq (args.worker.backlog, JR_WORKER_DEFAULT_BACKLOG);
    cr_assert_eq (args.worker.max_payload, JR_MAX_PAYLOAD);
    cr_assert_eq (args.worker.grace_ms, 10000);
    cr_assert_null (args.worker.name);
    cr_assert_null (args.worker.tasks);
    cr_assert_null (args.worker.task_timeouts);
    cr_assert_null (args.plugins);
    cr_assert_null (args.isolate);
    cr_assert_eq (args.kill_grace_ms, 2000);
    cr_assert_not (args.verbose);
    cr_assert_not (args.run_task);
}

Test (worker_config, flags_set_each_field)
{
    jr_worker_args_t args;
    cr_assert_eq (s_parse (&args, "--broker", "tcp://b:1", "--ingester=tcp://i:2", "--concurrency",
                           "8", "--prefetch", "3", "--name", "w1", "--tasks", "echo,sleep",
                           "--task-timeout", "sleep=5", "--plugin", "p.so", "--isolate", "all",
                           "--kill-grace", "50", "--max-payload", "1024", "--grace", "0",
                           "--backlog", "7", "--verbose", NULL),
                  0);
    cr_assert_str_eq (args.worker.broker, "tcp://b:1");
    cr_assert_str_eq (args.worker.ingester, "tcp://i:2");
    cr_assert_eq (args.worker.concurrency, 8);
    cr_assert_eq (args.worker.prefetch, 3);
    cr_assert_str_eq (args.worker.name, "w1");
    cr_assert_str_eq (args.worker.tasks, "echo,sleep");
    cr_assert_str_eq (args.worker.task_timeouts, "sleep=5");
    cr_assert_str_eq (args.plugins, "p.so");
    cr_assert_str_eq (args.isolate, "all");
    cr_assert_eq (args.kill_grace_ms, 50);
    cr_assert_eq (args.worker.max_payload, 1024);
    cr_assert_eq (args.worker.grace_ms, -1, "--grace 0: hand back at once");
    cr_assert_eq (args.worker.backlog, 7);
    cr_assert (args.verbose);
}

Test (worker_config, the_environment_fills_in_and_a_flag_wins)
{
    setenv ("JR_BACKLOG", "77", 1);
    setenv ("JR_CONCURRENCY", "5", 1);
    setenv ("JR_WORKER_BROKER", "tcp://env:1", 1);
    jr_worker_args_t args;
    cr_assert_eq (s_parse (&args, "--concurrency", "6", NULL), 0);
    cr_assert_eq (args.worker.backlog, 77);
    cr_assert_eq (args.worker.concurrency, 6);
    cr_assert_str_eq (args.worker.broker, "tcp://env:1");
}

Test (worker_config, an_argument_that_is_no_flag_is_refused)
{
    jr_worker_args_t args;
    cr_assert_eq (s_parse (&args, "--backlog", "5", "stray", NULL), 2);
}

Test (worker_config, a_value_out_of_range_exits_2, .exit_code = 2)
{
    jr_worker_args_t args;
    s_parse (&args, "--concurrency", "0", NULL);
}

Test (worker_config, a_bad_environment_value_exits_2, .exit_code = 2)
{
    setenv ("JR_BACKLOG", "lots", 1);
    jr_worker_args_t args;
    char *argv[] = { "jr-worker", NULL };
    jr_worker_args_parse (&args, 1, argv);
}

//  The child of an isolated task reads its job from stdin: the parent's
//  values (it checked them, flags included) are no concern of it.
Test (worker_config, run_task_reads_only_plugins_and_verbose)
{
    setenv ("JR_BACKLOG", "lots", 1);
    jr_worker_args_t args;
    cr_assert_eq (s_parse (&args, "--run-task", "--plugin", "p.so", NULL), 0);
    cr_assert (args.run_task);
    cr_assert_str_eq (args.plugins, "p.so");
}

static uint32_t
s_ms (const jr_task_timeouts_t *rules, const char *task)
{
    return jr_task_timeouts_ms (rules, (jr_bytes_t){ (const uint8_t *)task, strlen (task) });
}

Test (worker_config, task_timeouts_per_task_and_star)
{
    jr_task_timeouts_t *rules = jr_task_timeouts_new ("sleep=100, *=150,echo=0");
    cr_assert (rules);
    cr_assert_eq (s_ms (rules, "sleep"), 100);
    cr_assert_eq (s_ms (rules, "echo"), 0, "its own 0 beats the star");
    cr_assert_eq (s_ms (rules, "fail"), 150);
    cr_assert_eq (s_ms (rules, "slee"), 150, "whole names only");
    jr_task_timeouts_destroy (&rules);
    cr_assert_null (rules);
    rules = jr_task_timeouts_new (NULL);
    cr_assert (rules);
    cr_assert_eq (s_ms (rules, "sleep"), 0, "no rules: no deadline");
    jr_task_timeouts_destroy (&rules);
    rules = jr_task_timeouts_new ("sleep=4294967295");
    cr_assert_eq (s_ms (rules, "sleep"), 4294967295u);
    jr_task_timeouts_destroy (&rules);
}

Test (worker_config, task_timeouts_refused)
{
    const char *bad[] = { "sleep",           "=5",        "sleep=",           "sleep=x",
                          "sleep=-1",        "sleep=5ms", "sleep=4294967296", "no-such-task=5",
                          "sleep=5,sleep=6", "*=1,*=2",   "sleep= 5" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_null (jr_task_timeouts_new (bad[i]), "refused: \"%s\"", bad[i]);
}

Test (worker_config, resolve_fills_every_default_once)
{
    jr_worker_config_t c;
    cr_assert_eq (jr_worker_config_resolve (NULL, &c), 0);
    cr_assert_str_eq (c.broker, JR_WORKER_DEFAULT_BROKER);
    cr_assert_str_eq (c.ingester, JR_WORKER_DEFAULT_INGESTER);
    cr_assert_geq (c.concurrency, 1);
    cr_assert_eq (c.heartbeat_ms, 1000);
    cr_assert_eq (c.liveness_ms, 5000);
    cr_assert_eq (c.resend_ms, 2000);
    cr_assert_eq (c.backlog, JR_WORKER_DEFAULT_BACKLOG);
    cr_assert_eq (c.grace_ms, 10000);
    cr_assert_eq (c.max_payload, JR_MAX_PAYLOAD);
    jr_worker_config_t again;
    cr_assert_eq (jr_worker_config_resolve (&c, &again), 0);
    //  A resolved config resolves to itself.
    cr_assert_eq (again.broker, c.broker);
    cr_assert_eq (again.concurrency, c.concurrency);
    cr_assert_eq (again.heartbeat_ms, c.heartbeat_ms);
    cr_assert_eq (again.liveness_ms, c.liveness_ms);
    cr_assert_eq (again.resend_ms, c.resend_ms);
    cr_assert_eq (again.backlog, c.backlog);
    cr_assert_eq (again.grace_ms, c.grace_ms);
    cr_assert_eq (again.max_payload, c.max_payload);
    jr_worker_config_t given = { .broker = "",
                                 .concurrency = 3,
                                 .grace_ms = -5,
                                 .max_payload = (size_t)JR_MAX_PAYLOAD * 2,
                                 .backlog = 9 };
    cr_assert_eq (jr_worker_config_resolve (&given, &c), 0);
    cr_assert_str_eq (c.broker, JR_WORKER_DEFAULT_BROKER, "empty is the default");
    cr_assert_eq (c.concurrency, 3);
    cr_assert_eq (c.grace_ms, -1, "negative: no grace");
    cr_assert_eq (c.max_payload, JR_MAX_PAYLOAD, "the ceiling");
    cr_assert_eq (c.backlog, 9);
}

Test (worker_config, resolve_refuses_negative_large_and_long)
{
    char name[JR_MAX_NAME + 2];
    memset (name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    jr_worker_config_t bad[] = {
        { .concurrency = -1 },
        { .prefetch = -1 },
        { .heartbeat_ms = -1 },
        { .liveness_ms = -1 },
        { .resend_ms = -1 },
        { .concurrency = JR_WORKER_MAX_CONCURRENCY + 1 },
        { .prefetch = JR_WORKER_MAX_PREFETCH + 1 },
        { .name = name },
    };
    jr_worker_config_t c;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq (jr_worker_config_resolve (&bad[i], &c), -1, "case %zu refused", i);
    name[JR_MAX_NAME] = 0;
    cr_assert_eq (jr_worker_config_resolve (&(jr_worker_config_t){ .name = name }, &c), 0);
}
