/*  test_cli_jobs.c - jr status shows task, attempt, worker (exit 4 if unknown); jr list pages by task  */
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static jr_h_env_t env;
static char s_jr_bin[512];

static void
s_fini (void)
{
    jr_h_cleanup ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (cli_jobs, .fini = s_fini, .timeout = 180);

//  Run jr with args (a shell fragment), stdout and stderr into out and err
//  (each cut to its size); its exit status.
static int
s_jr (char *out, size_t out_size, char *err, size_t err_size, const char *args)
{
    char out_path[512], err_path[512];
    snprintf (out_path, sizeof out_path, "%s/jr.out", env.dir);
    snprintf (err_path, sizeof err_path, "%s/jr.err", env.dir);
    int rc = jr_h_sh ("%s --broker %s --ingester %s %s >%s 2>%s", s_jr_bin, env.clients_ep,
                      env.ingester_ep, args, out_path, err_path);
    const char *paths[] = { out_path, err_path };
    char *bufs[] = { out, err };
    size_t sizes[] = { out_size, err_size };
    for (int i = 0; i < 2; i++) {
        FILE *file = fopen (paths[i], "r");
        CHECK (file, "no %s", paths[i]);
        size_t len = fread (bufs[i], 1, sizes[i] - 1, file);
        bufs[i][len] = 0;
        fclose (file);
    }
    return rc;
}

//  Submit a job; its id in id.
static void
s_submit (const char *task_and_vars, char id[37])
{
    char out[256], err[1024], args[256];
    snprintf (args, sizeof args, "submit %s", task_and_vars);
    int rc = s_jr (out, sizeof out, err, sizeof err, args);
    CHECK (rc == 0 && strlen (out) >= 36, "jr submit %s: %d %s %s", task_and_vars, rc, out, err);
    memcpy (id, out, 36);
    id[36] = 0;
}

static int
s_by_text (const void *a, const void *b)
{
    return strcmp (a, b);
}

//  jr list with args, page after page (limit each) following 'next:'; the
//  ids in ids (sorted), their count returned, the pages in *pages.
static size_t
s_list_all (const char *args, int limit, char (*ids)[37], size_t max, int *pages)
{
    static char out[1 << 20];
    char err[1024], cmd[512], cursor[64] = "";
    size_t n = 0;
    *pages = 0;
    do {
        snprintf (cmd, sizeof cmd, "list %s --limit %d%s%s", args, limit,
                  *cursor ? " --cursor " : "", cursor);
        int rc = s_jr (out, sizeof out, err, sizeof err, cmd);
        CHECK (rc == 0, "jr %s: exit %d: %s", cmd, rc, err);
        (*pages)++;
        size_t on_page = 0;
        for (char *line = strtok (out, "\n"); line; line = strtok (NULL, "\n")) {
            CHECK (strlen (line) == 36, "an id a line: '%s'", line);
            CHECK (n < max, "more ids than jobs");
            memcpy (ids[n++], line, 37);
            on_page++;
        }
        CHECK (on_page <= (size_t)limit, "a page holds at most --limit ids");
        const char *next = strstr (err, "next: --cursor ");
        *cursor = 0;
        if (next) {
            CHECK (on_page == (size_t)limit, "a next cursor only after a full page: %s", err);
            snprintf (cursor, sizeof cursor, "%.40s", next + strlen ("next: --cursor "));
            //  opaque, 20 bytes in hex
            CHECK (strlen (cursor) == 40 && strspn (cursor, "0123456789abcdef") == 40,
                   "a cursor of 40 hex digits: %s", err);
        }
        CHECK (*pages < 100, "paging ends");
    } while (*cursor);
    qsort (ids, n, 37, s_by_text);
    for (size_t i = 1; i < n; i++)
        CHECK (strcmp (ids[i - 1], ids[i]) != 0, "%s listed twice", ids[i]);
    return n;
}

Test (cli_jobs, status_and_list)
{
    jr_h_env_init (&env, "cli-jobs");
    jr_h_bin (s_jr_bin, sizeof s_jr_bin, "jr");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    jr_h_worker (&env, "w1", 1, "sleep");
    char out[4096], err[4096];

    //  An id nobody knows: a message, exit 4 (not found), nothing on stdout.
    int rc = s_jr (out, sizeof out, err, sizeof err, "status 6ba7b810-9dad-41d1-80b4-00c04fd430c8");
    CHECK (rc == 4, "jr status of an unknown id exits 4, not %d: %s", rc, err);
    CHECK (strstr (err, "6ba7b810-9dad-41d1-80b4-00c04fd430c8 is not known"), "%s", err);
    CHECK (*out == 0, "nothing on stdout: %s", out);

    //  A running sleep job: its task, attempt and worker.
    char sleeper[37], args[256];
    s_submit ("sleep ms:=60000", sleeper);
    snprintf (args, sizeof args, "status %s", sleeper);
    for (int i = 0; i < 200; i++) {
        rc = s_jr (out, sizeof out, err, sizeof err, args);
        CHECK (rc == 0, "jr status: %d %s", rc, err);
        if (strstr (out, "\"state\":\"running\""))
            break;
        jr_h_sleep_ms (50);
    }
    char want[256];
    snprintf (
        want, sizeof want,
        "{\"id\":\"%s\",\"state\":\"running\",\"attempt\":1,\"task\":\"sleep\",\"worker\":\"w1@",
        sleeper);
    CHECK (strncmp (out, want, strlen (want)) == 0, "jr status of a running job: %s", out);

    //  Queued jobs of two tasks nobody serves, listed by task in pages.
    enum { N = 25, M = 7 };
    static char hashes[N][37], echoes[M][37], seen[N + M + 8][37];
    for (int i = 0; i < N; i++) {
        snprintf (args, sizeof args, "sha256 data=%d", i);
        s_submit (args, hashes[i]);
    }
    for (int i = 0; i < M; i++)
        s_submit ("echo msg=hi", echoes[i]);
    qsort (hashes, N, 37, s_by_text);
    int pages;
    size_t n = s_list_all ("--state queued --task sha256", 10, seen, N + M + 8, &pages);
    CHECK (n == N, "%zu of %d sha256 jobs listed", n, N);
    CHECK (pages == 3, "25 ids by 10: 3 pages, not %d", pages);
    for (int i = 0; i < N; i++)
        CHECK (strcmp (seen[i], hashes[i]) == 0, "job %s listed", hashes[i]);
    n = s_list_all ("--state queued --task echo", 100, seen, N + M + 8, &pages);
    CHECK (n == M && pages == 1, "%zu echo jobs in %d pages", n, pages);
    n = s_list_all ("--state queued", 1000, seen, N + M + 8, &pages);
    CHECK (n == N + M, "%zu queued jobs of any task", n);
    n = s_list_all ("--state running --task sleep", 5, seen, N + M + 8, &pages);
    CHECK (n == 1 && strcmp (seen[0], sleeper) == 0, "the running sleep job listed");
    n = s_list_all ("--state queued --task nobody", 5, seen, N + M + 8, &pages);
    CHECK (n == 0, "no job of an unknown task");

    //  A queued job's status names its task and no worker.
    snprintf (args, sizeof args, "status %s", echoes[0]);
    rc = s_jr (out, sizeof out, err, sizeof err, args);
    snprintf (want, sizeof want,
              "{\"id\":\"%s\",\"state\":\"queued\",\"attempt\":0,\"task\":\"echo\"", echoes[0]);
    CHECK (rc == 0 && strncmp (out, want, strlen (want)) == 0, "%s", out);
    CHECK (!strstr (out, "\"worker\""), "a queued job runs nowhere: %s", out);

    //  Bad flags are usage errors.
    rc = s_jr (out, sizeof out, err, sizeof err, "list --state queued --cursor nonsense");
    CHECK (rc == 2, "a bad cursor: exit %d %s", rc, err);
    //  an id is not a cursor (the broker orders by a hash of the id)
    rc = s_jr (out, sizeof out, err, sizeof err,
               "list --state queued --cursor 6ba7b810-9dad-41d1-80b4-00c04fd430c8");
    CHECK (rc == 2, "an id as the cursor: exit %d %s", rc, err);
    rc = s_jr (out, sizeof out, err, sizeof err,
               "list --state queued --cursor 00112233445566778899aabbccddeeff0011223g");
    CHECK (rc == 2, "a cursor with a non-hex digit: exit %d %s", rc, err);
    //  any 40 hex digits are a cursor: after the last position, nothing
    rc = s_jr (out, sizeof out, err, sizeof err,
               "list --state queued --cursor ffffffffffffffffffffffffffffffffffffffff");
    CHECK (rc == 0 && *out == 0 && !strstr (err, "next:"), "after the end: exit %d %s %s", rc, out,
           err);
    rc = s_jr (out, sizeof out, err, sizeof err, "list --state queued --limit 100001");
    CHECK (rc == 2, "a limit over 100000: exit %d %s", rc, err);
}
