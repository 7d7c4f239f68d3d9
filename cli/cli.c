/*  cli.c - what the jr commands share: exit codes, flags by name, the client, results printed  */
#include "cli/cli.h"
#include "cli/json.h"
#include "client/client.h"
#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
jr_cli_exit_code (int rc)
{
    switch (rc) {
        case JR_OK: return EXIT_OK;
        case JR_ETIMEOUT: return EXIT_UNREACHABLE;
        case JR_ENOT_FOUND: return EXIT_NOT_FOUND;
        case JR_EFORBIDDEN:
        case JR_EHANDSHAKE: return EXIT_FORBIDDEN;
        default: return EXIT_FAILED;
    }
}

void
jr_cli_error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fputs ("jr: error: ", stderr);
    vfprintf (stderr, format, args);
    fputc ('\n', stderr);
    va_end (args);
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
    //  The client's words name the endpoint and the reason: better than
    //  the code's, when they are about this failure.
    const char *detail = client ? jr_client_error (client) : s_detail;
    if (*detail && (rc == JR_EFORBIDDEN || rc == JR_EHANDSHAKE || rc == JR_ETIMEOUT))
        jr_cli_error ("%s: %s (%s)", what, detail, jr_errname (rc));
    else
        jr_cli_error ("%s: %s (%s)", what, jr_errname (rc), jr_strerror (rc));
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
        jr_cli_error ("bad endpoint: --broker %s --ingester %s", broker, ingester);
        exit (EXIT_USAGE);
    }
    if (keys && jr_client_set_keys (client, keys) != 0) {
        jr_cli_error ("%s", jr_client_error (client));
        exit (EXIT_USAGE);
    }
    jr_client_set_timeout (client, (int)jr_opts_int (jr_cli_opt (opts, answer), 1, INT_MAX));
    return client;
}

int
jr_cli_reach (jr_client_t *client, const jr_opt_t *opts, unsigned mask)
{
    int timeout = (int)jr_opts_int (jr_cli_opt (opts, "connect-timeout"), 1, INT_MAX);
    for (int server = JR_CLI_BROKER; server <= JR_CLI_INGESTER; server <<= 1) {
        if (!(mask & (unsigned)server))
            continue;
        int rc = jr_client_reach (client, server == JR_CLI_INGESTER, timeout);
        if (rc) {
            const char *detail = jr_client_error (client);
            if (*detail)
                jr_cli_error ("%s", detail);
            else
                jr_cli_error ("%s: %s", jr_errname (rc), jr_strerror (rc));
            return jr_cli_exit_code (rc);
        }
    }
    return EXIT_OK;
}

void
jr_cli_parse_id (const char *text, uint8_t id[JR_ID_SIZE])
{
    if (jr_id_parse (text, id)) {
        jr_cli_error ("'%s' is not a job id (a UUID)", text);
        exit (EXIT_USAGE);
    }
}

bool
jr_cli_print_result (const jr_job_t *job, void *arg)
{
    jr_cli_printer_t *printer = arg;
    if (printer->progress && isatty (STDOUT_FILENO))
        jr_progress_hide (printer->progress);
    jr_json_print_job (job, stdout);
    fputc ('\n', stdout);
    fflush (stdout);
    printer->printed++;
    if (printer->progress)
        jr_progress_add (printer->progress, 1);
    if (!job->success)
        printer->failed++;
    return true;
}
