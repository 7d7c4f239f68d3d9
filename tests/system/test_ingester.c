/*  test_ingester.c - the real jr-ingester on a database it cannot write  */
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static jr_h_env_t env;

static void
s_fini (void)
{
    jr_h_cleanup ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (ingester, .fini = s_fini, .timeout = 120);

//  The whole log of a process (caller frees), "" if there is none.
static char *
s_log (const char *label)
{
    char path[400];
    snprintf (path, sizeof path, "%s/%s.log", env.dir, label);
    FILE *file = fopen (path, "r");
    char *text = calloc (1, 65536);
    cr_assert (text);
    if (file) {
        size_t n = fread (text, 1, 65535, file);
        text[n] = 0;
        fclose (file);
    }
    return text;
}

//  Started on a database it may not write, the ingester would ACK nothing
//  for ever; it must refuse to start, saying which file. The database is
//  a real one (made by the ingester itself), made read-only for the
//  unprivileged user the ingester then runs as (root writes any file).
Test (ingester, refuses_to_start_on_a_read_only_database)
{
    jr_h_env_init (&env, "ingester-ro");
    pid_t pid = jr_h_ingester (&env);
    CHECK (jr_h_stop (pid, SIGTERM, 10000), "first ingester stops");
    CHECK (chmod (env.db, 0444) == 0, "chmod db");
    CHECK (chmod (env.dir, 0777) == 0, "chmod dir");
    char shm[320];
    snprintf (shm, sizeof shm, "%s-shm", env.db);
    chmod (shm, 0666);  //  if it is left, so a reader may use it
    char bin[512];
    jr_h_bin (bin, sizeof bin, "jr-ingester");
    char *const argv[] = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin,
                           "--bind",  env.ingester_ep, "--db",          env.db,           NULL };
    pid = jr_h_spawn_argv (&env, "ingester-ro", argv);
    int status = 0;
    CHECK (jr_h_wait_exit (pid, 20000, &status), "the ingester exits by itself");
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) != 0, "with a failure status (%d)", status);
    char *log = s_log ("ingester-ro");
    CHECK (strstr (log, env.db) && strstr (log, "read-only"), "the log names the file: %s", log);
    free (log);
}
