/*  cli.c - what the jr commands share: exit codes, flags by name, the client, results printed  */
#include "cli/cli.h"
#include "cli/json.h"
#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int
jr_cli_exit_code (int rc)
{
    return rc == JR_ETIMEOUT ? EXIT_TIMEOUT : EXIT_FAILED;
}

//  The last words of the client jr_cli_client_done destroyed.
static char s_detail[512];

void
jr_cli_client_done (jr_client_t **client_p)
{
    if (*client_p)
        snprintf (s_detail, sizeof s_detail, "%s", jr_client_error (*client_p));
    jr_client_destroy (client_p);
}

void
jr_cli_report (const jr_client_t *client, const char *what, int rc)
{
    fprintf (stderr, "jr: %s: %s (%s)\n", what, jr_errname (rc), jr_strerror (rc));
    const char *detail = client ? jr_client_error (client) : s_detail;
    if (*detail && (rc == JR_EFORBIDDEN || rc == JR_EHANDSHAKE || rc == JR_ETIMEOUT))
        fprintf (stderr, "jr: %s\n", detail);
}

//  A flag of the running command by name; every name asked for is in its
//  row of s_commands.
const jr_opt_t *
jr_cli_opt (const jr_opt_t *opts, const char *name)
{
    for (; opts->name; opts++)
        if (strcmp (opts->name, name) == 0)
            return opts;
    assert (!"a command asked for a flag it does not have");
    return NULL;
}

//  A client on --broker and --ingester, answers awaited for the flag named
//  answer.
jr_client_t *
jr_cli_client (const jr_opt_t *opts, const char *answer)
{
    const char *broker = jr_cli_opt (opts, "broker")->value;
    const char *ingester = jr_cli_opt (opts, "ingester")->value;
    const char *keys = jr_cli_opt (opts, "keys")->value;
    //  keys is --keys or $JR_KEYS: set here, so a bad folder gets its own message.
    unsetenv ("JR_KEYS");
    jr_client_t *client = jr_client_new (broker, ingester);
    if (!client) {
        fprintf (stderr, "jr: bad endpoint: --broker %s --ingester %s\n", broker, ingester);
        exit (EXIT_USAGE);
    }
    if (keys && jr_client_set_keys (client, keys) != 0) {
        fprintf (stderr, "jr: %s\n", jr_client_error (client));
        exit (EXIT_USAGE);
    }
    jr_client_set_timeout (client, (int)jr_opts_int (jr_cli_opt (opts, answer), 1, INT_MAX));
    return client;
}

void
jr_cli_parse_id (const char *text, uint8_t id[JR_ID_SIZE])
{
    if (jr_id_parse (text, id)) {
        fprintf (stderr, "jr: '%s' is not a job id (a UUID)\n", text);
        exit (EXIT_USAGE);
    }
}

bool
jr_cli_print_result (const jr_job_t *job, void *arg)
{
    jr_cli_printer_t *printer = arg;
    jr_json_print_job (job, stdout);
    fputc ('\n', stdout);
    fflush (stdout);
    printer->printed++;
    if (!job->success)
        printer->failed++;
    return true;
}
