/*  jobs.c - jr wait, result, status, cancel, retry, list: what the ingester and broker say of jobs  */
#include "cli/cli.h"
#include "cli/json.h"
#include "client/client.h"
#include "common/lifecycle.h"
#include "proto/proto.h"
#include <czmq.h>

int
jr_cli_wait (jr_opt_t *opts, int nargs, char **argv)
{
    if (nargs < 3) {
        jr_cli_error ("wait needs at least one ID");
        return EXIT_USAGE;
    }
    size_t n = (size_t)nargs - 2;
    uint8_t (*ids)[JR_ID_SIZE] = malloc (n * sizeof *ids);
    assert (ids);
    for (size_t i = 0; i < n; i++)
        jr_cli_parse_id (argv[2 + i], ids[i]);
    int wait_timeout = (int)jr_opts_int (jr_cli_opt (opts, "wait-timeout"), -1, INT_MAX);
    jr_client_t *client = jr_cli_client (opts, "answer-timeout");
    int rc = jr_cli_reach (client, opts, JR_CLI_INGESTER);
    if (rc) {
        jr_cli_client_done (&client);
        free (ids);
        return rc;
    }
    jr_progress_t progress;
    jr_progress_start (&progress, "results", n);
    jr_cli_printer_t printer = { .progress = &progress };
    rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, n, wait_timeout,
                              jr_cli_print_result, &printer);
    jr_progress_end (&progress);
    jr_cli_client_done (&client);
    free (ids);
    if (rc == JR_ETIMEOUT && printer.printed < n)
        jr_cli_error ("%zu of %zu results did not come in --wait-timeout %d ms",
                      n - printer.printed, n, wait_timeout);
    else if (rc)
        jr_cli_report (client, "waiting for results", rc);
    if (rc)
        return jr_cli_exit_code (rc);
    return printer.failed ? EXIT_FAILED : EXIT_OK;
}

int
jr_cli_result (jr_opt_t *opts, int nargs, char **argv)
{
    if (nargs != 3) {
        jr_cli_error ("result needs one ID");
        return EXIT_USAGE;
    }
    uint8_t id[JR_ID_SIZE];
    jr_cli_parse_id (argv[2], id);
    jr_client_t *client = jr_cli_client (opts, "answer-timeout");
    int rc = jr_cli_reach (client, opts, JR_CLI_INGESTER);
    if (rc) {
        jr_cli_client_done (&client);
        return rc;
    }
    jr_job_t *job = NULL;
    rc = jr_client_result (client, id, &job);
    jr_cli_client_done (&client);
    if (rc == JR_ENOT_FOUND) {
        jr_cli_error ("no result for %s (not finished, or not a job)", argv[2]);
        return EXIT_NOT_FOUND;
    }
    if (rc) {
        jr_cli_report (client, "asking the ingester", rc);
        return jr_cli_exit_code (rc);
    }
    jr_json_print_job (job, stdout);
    fputc ('\n', stdout);
    int result = job->success ? EXIT_OK : EXIT_FAILED;
    jr_job_destroy (&job);
    return result;
}

//  Print a text as a JSON string, or null when it is empty.
static void
s_print_text_or_null (const char *text)
{
    if (*text)
        jr_json_print_bytes ((jr_bytes_t){ (const uint8_t *)text, strlen (text) }, stdout);
    else
        fputs ("null", stdout);
}

int
jr_cli_status (jr_opt_t *opts, int nargs, char **argv)
{
    if (nargs != 3) {
        jr_cli_error ("status needs one ID");
        return EXIT_USAGE;
    }
    uint8_t id[JR_ID_SIZE];
    jr_cli_parse_id (argv[2], id);
    jr_client_t *client = jr_cli_client (opts, "answer-timeout");
    int connect_ms = (int)jr_opts_int (jr_cli_opt (opts, "connect-timeout"), 1, INT_MAX);
    //  A stored result is final; only then is the broker's word needed.
    //  Either server may be away: the other may still know.
    jr_job_t *job = NULL;
    jr_status_t info;
    memset (&info, 0, sizeof info);
    int rc = jr_client_reach (client, true, connect_ms);
    if (rc == 0)
        rc = jr_client_result (client, id, &job);
    if (rc == 0) {
        info.state = jr_result_state (job->state, job->success);  //  older rows: success only
        info.attempt = job->attempt;
        snprintf (info.task, sizeof info.task, "%.*s", (int)job->task.len,
                  (const char *)job->task.ptr);
        snprintf (info.worker, sizeof info.worker, "%.*s", (int)job->worker.len,
                  (const char *)job->worker.ptr);
        jr_job_destroy (&job);
        if (!jr_state_ends_wait (info.state)) {
            //  A failed attempt to be retried: the broker holds the job and
            //  knows what it does now. If it cannot say, the row still can.
            jr_status_t now;
            int brc = jr_client_reach (client, false, connect_ms);
            if (brc == 0)
                brc = jr_client_status_info (client, id, &now);
            if (brc)
                jr_cli_report (client, "asking the broker", brc);
            else if (now.state != JR_STATE_UNKNOWN) {
                if (!now.task[0])  //  the broker may keep only the id
                    memcpy (now.task, info.task, sizeof now.task);
                info = now;
            }
        }
    }
    else {
        if (rc != JR_ENOT_FOUND)
            jr_cli_report (client, "asking the ingester", rc);
        rc = jr_client_reach (client, false, connect_ms);
        if (rc == 0)
            rc = jr_client_status_info (client, id, &info);
    }
    jr_cli_client_done (&client);
    if (rc) {
        jr_cli_report (client, "asking the broker", rc);
        return jr_cli_exit_code (rc);
    }
    if (info.state == JR_STATE_UNKNOWN) {
        jr_cli_error ("job %s is not known to the broker or the ingester", argv[2]);
        return EXIT_NOT_FOUND;
    }
    printf ("{\"id\":\"%s\",\"state\":\"%s\",\"attempt\":%u,\"task\":", argv[2],
            jr_state_name (info.state), info.attempt);
    s_print_text_or_null (info.task);
    if (info.worker[0]) {  //  where it runs, or (a stored result) where it ran
        fputs (",\"worker\":", stdout);
        s_print_text_or_null (info.worker);
    }
    if (info.state == JR_STATE_RUNNING && (info.value != 0 || info.message[0])) {
        printf (",\"progress\":{\"value\":%d,\"message\":", (int)info.value);
        jr_json_print_bytes ((jr_bytes_t){ (const uint8_t *)info.message, strlen (info.message) },
                             stdout);
        fputc ('}', stdout);
    }
    else if (info.state == JR_STATE_QUEUED && info.message[0]) {  //  why it waits
        fputs (",\"note\":", stdout);
        jr_json_print_bytes ((jr_bytes_t){ (const uint8_t *)info.message, strlen (info.message) },
                             stdout);
    }
    fputs ("}\n", stdout);
    return EXIT_OK;
}

//  -------------------------------------------------------------------------
//  cancel, list, retry

//  Parse the one ID of a command that takes exactly one.
static void
s_one_id (int nargs, char **argv, const char *command, uint8_t id[JR_ID_SIZE])
{
    if (nargs != 3) {
        jr_cli_error ("%s needs one ID", command);
        exit (EXIT_USAGE);
    }
    jr_cli_parse_id (argv[2], id);
}

static void
s_print_state (const char *id, int state)
{
    printf ("{\"id\":\"%s\",\"state\":\"%s\"}\n", id, jr_state_name (state));
}

int
jr_cli_cancel (jr_opt_t *opts, int nargs, char **argv)
{
    uint8_t id[JR_ID_SIZE];
    s_one_id (nargs, argv, "cancel", id);
    jr_client_t *client = jr_cli_client (opts, "answer-timeout");
    int rc = jr_cli_reach (client, opts, JR_CLI_BROKER);
    if (rc) {
        jr_cli_client_done (&client);
        return rc;
    }
    int state = JR_STATE_UNKNOWN;
    rc = jr_client_cancel (client, id, &state);
    if (rc == 0 && state == JR_STATE_UNKNOWN) {
        //  The broker forgets finished jobs: the ingester may know how it ended.
        jr_job_t *job = NULL;
        if (jr_client_result (client, id, &job) == 0) {
            int stored = jr_result_state (job->state, job->success);
            if (jr_state_ends_wait (stored))
                state = stored;
            jr_job_destroy (&job);
        }
    }
    jr_cli_client_done (&client);
    if (rc) {
        jr_cli_report (client, "asking the broker", rc);
        return jr_cli_exit_code (rc);
    }
    if (state == JR_STATE_CANCELLED) {
        s_print_state (argv[2], state);
        return EXIT_OK;
    }
    if (state == JR_STATE_UNKNOWN) {
        jr_cli_error ("job %s is not known", argv[2]);
        return EXIT_NOT_FOUND;
    }
    if (jr_state_ends_wait (state))
        jr_cli_error ("job %s already %s", argv[2], jr_state_name (state));
    else
        jr_cli_error ("job %s is %s, not cancelled", argv[2], jr_state_name (state));
    return EXIT_FAILED;
}

int
jr_cli_retry (jr_opt_t *opts, int nargs, char **argv)
{
    uint8_t id[JR_ID_SIZE];
    s_one_id (nargs, argv, "retry", id);
    jr_client_t *client = jr_cli_client (opts, "answer-timeout");
    int rc = jr_cli_reach (client, opts, JR_CLI_BROKER);
    if (rc) {
        jr_cli_client_done (&client);
        return rc;
    }
    int state = JR_STATE_UNKNOWN;
    rc = jr_client_retry (client, id, &state);
    jr_cli_client_done (&client);
    if (rc) {
        jr_cli_report (client, "asking the broker", rc);
        return jr_cli_exit_code (rc);
    }
    if (state == JR_STATE_QUEUED) {
        s_print_state (argv[2], state);
        return EXIT_OK;
    }
    if (state == JR_STATE_UNKNOWN) {
        jr_cli_error ("job %s is not known to the broker", argv[2]);
        return EXIT_NOT_FOUND;
    }
    jr_cli_error ("job %s is not dead (it is %s)", argv[2], jr_state_name (state));
    return EXIT_FAILED;
}

//  What jr list prints: ids, until the limit.
typedef struct {
    long left;  //  ids still to print
} s_lister_t;

static bool
s_print_id (const uint8_t id[JR_ID_SIZE], uint32_t attempt, void *arg)
{
    (void)attempt;
    s_lister_t *lister = arg;
    char text[37];
    jr_id_format (id, text);
    puts (text);
    return --lister->left > 0;
}

//  A LIST cursor as text: its 20 bytes in hex (40 characters). It is
//  opaque (a position in the broker's order, not an id), so no dashes.
static void
s_cursor_format (const uint8_t cursor[JR_CURSOR_SIZE], char text[2 * JR_CURSOR_SIZE + 1])
{
    for (int i = 0; i < JR_CURSOR_SIZE; i++)
        snprintf (text + 2 * i, 3, "%02x", cursor[i]);
}

static int
s_hex_digit (char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

//  0, or -1 if text is not 40 hex digits.
static int
s_cursor_parse (const char *text, uint8_t cursor[JR_CURSOR_SIZE])
{
    if (strlen (text) != 2 * JR_CURSOR_SIZE)
        return -1;
    for (int i = 0; i < JR_CURSOR_SIZE; i++) {
        int hi = s_hex_digit (text[2 * i]), lo = s_hex_digit (text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        cursor[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int
jr_cli_list (jr_opt_t *opts, int nargs, char **argv)
{
    (void)argv;  //  list takes no arguments besides its flags
    if (nargs != 2) {
        jr_cli_error ("list takes no arguments besides its flags");
        return EXIT_USAGE;
    }
    const char *name = jr_cli_opt (opts, "state")->value;
    if (!name) {
        jr_cli_error ("list needs --state STATE");
        return EXIT_USAGE;
    }
    int state = JR_STATE_UNKNOWN;
    for (int s = JR_STATE_UNKNOWN + 1; s <= JR_STATE_EXPIRED; s++)
        if (strcmp (name, jr_state_name (s)) == 0)
            state = s;
    if (state == JR_STATE_UNKNOWN) {
        char states[128] = "";
        for (int s = JR_STATE_UNKNOWN + 1; s <= JR_STATE_EXPIRED; s++)
            snprintf (states + strlen (states), sizeof states - strlen (states), " %s",
                      jr_state_name (s));
        jr_cli_error ("'%s' is not a state; one of:%s", name, states);
        return EXIT_USAGE;
    }
    const char *task = jr_cli_opt (opts, "task")->value;
    if (task && strlen (task) > JR_MAX_NAME) {
        jr_cli_error ("--task: a task name has at most %d bytes", JR_MAX_NAME);
        return EXIT_USAGE;
    }
    long limit = jr_opts_int (jr_cli_opt (opts, "limit"), 0, JR_MAX_LIST);
    const char *from = jr_cli_opt (opts, "cursor")->value;
    uint8_t cursor[JR_CURSOR_SIZE];
    if (from && *from && s_cursor_parse (from, cursor)) {
        jr_cli_error ("--cursor '%s' is not a cursor (the one a 'next:' line gave)", from);
        return EXIT_USAGE;
    }
    bool started = from && *from;
    s_lister_t lister = { limit ? limit : JR_MAX_LIST };
    jr_client_t *client = jr_cli_client (opts, "answer-timeout");
    int rc = jr_cli_reach (client, opts, JR_CLI_BROKER);
    if (rc) {
        jr_cli_client_done (&client);
        return rc;
    }
    //  Pages until the limit or the last one: a page may be short (the
    //  broker bounds its work per page) without being the last.
    bool more = true;
    while (rc == 0 && more && lister.left > 0) {
        uint8_t next[JR_CURSOR_SIZE] = { 0 };
        rc = jr_client_list_page (client, state, task, (uint32_t)lister.left,
                                  started ? cursor : NULL, s_print_id, &lister, next, &more);
        memcpy (cursor, next, sizeof cursor);
        started = true;
    }
    jr_cli_client_done (&client);
    fflush (stdout);
    if (rc) {
        jr_cli_report (client, "asking the broker", rc);
        return jr_cli_exit_code (rc);
    }
    if (more) {  //  stopped at the limit: the next page starts after what was printed
        char text[2 * JR_CURSOR_SIZE + 1];
        s_cursor_format (cursor, text);
        fprintf (stderr, "next: --cursor %s\n", text);
    }
    return EXIT_OK;
}
