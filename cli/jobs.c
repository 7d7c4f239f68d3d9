/*  jobs.c - jr wait, result, status, cancel, retry, list: what the ingester and broker say of jobs  */
#include "cli/cli.h"
#include "cli/json.h"
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
    jr_cli_printer_t printer = { 0 };
    rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, n, wait_timeout,
                              jr_cli_print_result, &printer);
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

int
jr_cli_status (jr_opt_t *opts, int nargs, char **argv)
{
    if (nargs != 3) {
        fprintf (stderr, "jr: status needs one ID\n");
        return EXIT_USAGE;
    }
    uint8_t id[JR_ID_SIZE];
    jr_cli_parse_id (argv[2], id);
    jr_client_t *client = jr_cli_client (opts, "answer-timeout");
    //  A stored result is final; only then is the broker's word needed.
    jr_job_t *job = NULL;
    int state = JR_STATE_UNKNOWN;
    uint32_t attempt = 0;
    int32_t value = 0;
    char message[JR_MAX_NOTE + 1] = "";
    int rc = jr_client_result (client, id, &job);
    if (rc == 0) {
        state = jr_result_state (job->state, job->success);  //  older rows: success only
        attempt = job->attempt;
        jr_job_destroy (&job);
        if (!jr_state_ends_wait (state)) {
            //  A failed attempt to be retried: the broker holds the job and
            //  knows what it does now. If it cannot say, the row still can.
            int now = JR_STATE_UNKNOWN;
            uint32_t now_attempt = 0;
            int32_t now_value = 0;
            char now_message[JR_MAX_NOTE + 1] = "";
            int brc = jr_client_progress (client, id, &now, &now_attempt, &now_value, now_message,
                                          sizeof now_message);
            if (brc)
                jr_cli_report (client, "asking the broker", brc);
            else if (now != JR_STATE_UNKNOWN) {
                state = now;
                attempt = now_attempt;
                value = now_value;
                memcpy (message, now_message, sizeof message);
            }
        }
    }
    else {
        if (rc != JR_ENOT_FOUND)
            jr_cli_report (client, "asking the ingester", rc);
        rc = jr_client_progress (client, id, &state, &attempt, &value, message, sizeof message);
    }
    jr_cli_client_done (&client);
    if (rc) {
        jr_cli_report (client, "asking the broker", rc);
        return jr_cli_exit_code (rc);
    }
    printf ("{\"id\":\"%s\",\"state\":\"%s\",\"attempt\":%u", argv[2], jr_state_name (state),
            attempt);
    if (state == JR_STATE_RUNNING && (value != 0 || message[0])) {
        printf (",\"progress\":{\"value\":%d,\"message\":", (int)value);
        jr_json_print_bytes ((jr_bytes_t){ (const uint8_t *)message, strlen (message) }, stdout);
        fputc ('}', stdout);
    }
    else if (state == JR_STATE_QUEUED && message[0]) {  //  why it waits
        fputs (",\"note\":", stdout);
        jr_json_print_bytes ((jr_bytes_t){ (const uint8_t *)message, strlen (message) }, stdout);
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

static bool
s_print_id (const uint8_t id[JR_ID_SIZE], uint32_t attempt, void *arg)
{
    (void)attempt;
    (void)arg;
    char text[37];
    jr_id_format (id, text);
    puts (text);
    return true;
}

int
jr_cli_list (jr_opt_t *opts, int nargs, char **argv)
{
    (void)argv;  //  list takes no arguments besides its flags
    if (nargs != 2) {
        fprintf (stderr, "jr: list takes no arguments besides --state\n");
        return EXIT_USAGE;
    }
    const char *name = jr_cli_opt (opts, "state")->value;
    if (!name) {
        fprintf (stderr, "jr: list needs --state STATE\n");
        return EXIT_USAGE;
    }
    int state = JR_STATE_UNKNOWN;
    for (int s = JR_STATE_UNKNOWN + 1; s <= JR_STATE_EXPIRED; s++)
        if (strcmp (name, jr_state_name (s)) == 0)
            state = s;
    if (state == JR_STATE_UNKNOWN) {
        fprintf (stderr, "jr: '%s' is not a state; one of:", name);
        for (int s = JR_STATE_UNKNOWN + 1; s <= JR_STATE_EXPIRED; s++)
            fprintf (stderr, " %s", jr_state_name (s));
        fputc ('\n', stderr);
        return EXIT_USAGE;
    }
    jr_client_t *client = jr_cli_client (opts, "answer-timeout");
    int rc = jr_client_list (client, state, s_print_id, NULL);
    jr_cli_client_done (&client);
    fflush (stdout);
    if (rc) {
        jr_cli_report (client, "asking the broker", rc);
        return jr_cli_exit_code (rc);
    }
    return EXIT_OK;
}
