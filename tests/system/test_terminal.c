/*  test_terminal.c - what jr shows on a terminal: the progress bar of submit --file and wait  */
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static jr_h_env_t env;
static char s_jr[1024];  //  the jr binary with --broker and --ingester

static void
s_fini (void)
{
    jr_h_cleanup ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (terminal, .fini = s_fini, .timeout = 300);

#define JOBS 3000

//  A file's whole text (caller frees), "" if there is none.
static char *
s_read (const char *path)
{
    FILE *file = fopen (path, "r");
    char *text = calloc (1, 1 << 22);
    cr_assert (text);
    if (file) {
        size_t len = fread (text, 1, (1 << 22) - 1, file);
        text[len] = 0;
        fclose (file);
    }
    return text;
}

//  Write a shell script of one command line to dir/name.sh; its path in out.
static void
s_script (const char *name, const char *command, char *out, size_t size)
{
    snprintf (out, size, "%s/%s.sh", env.dir, name);
    FILE *file = fopen (out, "w");
    cr_assert (file);
    fprintf (file, "exec %s\n", command);
    fclose (file);
}

static void
s_cluster (void)
{
    jr_h_env_init (&env, "terminal");
    char bin[512];
    jr_h_bin (bin, sizeof bin, "jr");
    snprintf (s_jr, sizeof s_jr, "%s --broker %s --ingester %s", bin, env.clients_ep,
              env.ingester_ep);
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    jr_h_worker (&env, "w1", 4, "echo");
}

Test (terminal, progress_bar_only_on_a_terminal)
{
    s_cluster ();
    char jobs[512], cmd[2048], sh[512];
    snprintf (jobs, sizeof jobs, "%s/jobs.jsonl", env.dir);
    FILE *file = fopen (jobs, "w");
    cr_assert (file);
    for (int i = 0; i < JOBS; i++)
        fprintf (file, "{\"task\": \"echo\", \"vars\": {\"n\": %d}}\n", i);
    fclose (file);

    //  stderr a terminal (script(1) gives the command a pty), stdout a file:
    //  the bar of the submission, then of the results, each reaching 100%.
    snprintf (cmd, sizeof cmd, "%s submit --file %s --wait >%s/tty.out", s_jr, jobs, env.dir);
    s_script ("tty", cmd, sh, sizeof sh);
    int rc = jr_h_sh ("script -qefc 'sh %s' %s/tty.typescript >/dev/null", sh, env.dir);
    CHECK (rc == 0, "jr submit --file --wait on a terminal exits 0, not %d", rc);
    snprintf (cmd, sizeof cmd, "%s/tty.typescript", env.dir);
    char *screen = s_read (cmd);
    CHECK (strstr (screen, "submitted 3,000/3,000 100% [####################]"),
           "the submission's bar ends full: %.2000s", screen);
    CHECK (strstr (screen, "results 3,000/3,000 100%"), "the results' bar ends full: %.2000s",
           screen);
    CHECK (strstr (screen, "/s ETA "), "the bar shows a rate and an ETA: %.2000s", screen);
    free (screen);
    snprintf (cmd, sizeof cmd, "%s/tty.out", env.dir);
    char *out = s_read (cmd);
    CHECK (!strchr (out, '\r') && !strstr (out, "ETA"), "nothing of the bar on stdout");
    //  The ids of the jobs, for jr wait below: the first JOBS lines.
    char *ids = calloc (1, JOBS * 37 + 1);
    cr_assert (ids);
    char *line = out;
    for (int i = 0; i < JOBS; i++) {
        CHECK (strlen (line) > 36 && line[36] == '\n', "line %d is an id: %.60s", i, line);
        memcpy (ids + i * 37, line, 36);
        ids[i * 37 + 36] = ' ';
        line += 37;
    }
    free (out);

    //  jr wait of all the ids on a terminal: its bar.
    char wait[1100], path[512];
    snprintf (wait, sizeof wait, "%s wait ", s_jr);
    char *wait_cmd = malloc (strlen (wait) + strlen (ids) + 600);
    cr_assert (wait_cmd);
    sprintf (wait_cmd, "%s%s >/dev/null", wait, ids);
    s_script ("wait", wait_cmd, sh, sizeof sh);
    rc = jr_h_sh ("script -qefc 'sh %s' %s/wait.typescript >/dev/null", sh, env.dir);
    CHECK (rc == 0, "jr wait on a terminal exits 0, not %d", rc);
    snprintf (cmd, sizeof cmd, "%s/wait.typescript", env.dir);
    screen = s_read (cmd);
    CHECK (strstr (screen, "results 3,000/3,000 100%"), "jr wait's bar ends full: %.2000s", screen);
    free (screen);

    //  Not a terminal: nothing on stderr at all, for either command.
    sprintf (wait_cmd, "%s%s >/dev/null 2>%s/wait.err", wait, ids, env.dir);
    s_script ("wait-pipe", wait_cmd, sh, sizeof sh);
    rc = jr_h_sh ("sh %s", sh);
    CHECK (rc == 0, "jr wait exits 0, not %d", rc);
    rc = jr_h_sh ("%s submit --file %s --wait >/dev/null 2>%s/submit.err", s_jr, jobs, env.dir);
    CHECK (rc == 0, "jr submit --file --wait exits 0, not %d", rc);
    const char *errs[] = { "wait.err", "submit.err" };
    for (int i = 0; i < 2; i++) {
        snprintf (path, sizeof path, "%s/%s", env.dir, errs[i]);
        char *err = s_read (path);
        CHECK (*err == 0, "%s is empty when stderr is not a terminal: %.500s", errs[i], err);
        free (err);
    }
    free (wait_cmd);
    free (ids);
}
