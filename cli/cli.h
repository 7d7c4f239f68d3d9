/*  cli.h - what the jr commands share: exit codes, flags by name, the client, results printed  */
#ifndef JR_CLI_CLI_H
#define JR_CLI_CLI_H
#include "cli/progress.h"
#include "common/opts.h"
#include <jr/jr.h>

//  Exit codes, the same for every command (jr --help and docs/cli.md show
//  this table):
//    0  done: the request succeeded (and the job, where one was waited for)
//    1  a job failed, or the server refused the request (or a job of it)
//    2  bad usage: an unknown flag, a bad value, a bad --file line
//    3  a server could not be reached, or did not answer (or the result did
//       not come) in the time its flag gives
//    4  not found: no such job (jr result, cancel, retry, status)
//    5  forbidden: the server refused our key, or the secure handshake failed
enum {
    EXIT_OK = 0,
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,
    EXIT_UNREACHABLE = 3,
    EXIT_NOT_FOUND = 4,
    EXIT_FORBIDDEN = 5,
};
#define EXIT_TIMEOUT EXIT_UNREACHABLE  //  the old name: no answer in time

//  The exit code of a failed request: EXIT_UNREACHABLE for a timeout,
//  EXIT_NOT_FOUND, EXIT_FORBIDDEN for a refused key or handshake, else
//  EXIT_FAILED.
int jr_cli_exit_code (int rc);
//  Print "jr: error: " and the message on stderr: the one style of every
//  error jr prints.
void jr_cli_error (const char *format, ...) __attribute__ ((format (printf, 1, 2)));
//  Say on stderr what failed and why: with the client's own words (a
//  refused key, a failed handshake), also when jr_cli_client_done has
//  destroyed it (client NULL) since.
void jr_cli_report (const jr_client_t *client, const char *what, int rc);
//  Destroy a client of jr_cli_client, keeping its last error for jr_cli_report.
void jr_cli_client_done (jr_client_t **client_p);
//  A flag of the running command by name; every name asked for is in the
//  command's row of s_commands (jr_main.c), else it asserts.
const jr_opt_t *jr_cli_opt (const jr_opt_t *opts, const char *name);
//  A client on --broker and --ingester, answers awaited for as long as the
//  flag named answer says (--answer-timeout). Exits EXIT_USAGE on a bad
//  endpoint.
jr_client_t *jr_cli_client (const jr_opt_t *opts, const char *answer);
//  The servers a command talks to, for jr_cli_reach.
enum { JR_CLI_BROKER = 1, JR_CLI_INGESTER = 2 };
//  Connect to the servers of mask (JR_CLI_BROKER, JR_CLI_INGESTER) and wait
//  up to --connect-timeout for each handshake, so one that cannot be
//  reached is said at once and by its endpoint. Returns EXIT_OK, or the
//  exit code after saying why on stderr (EXIT_UNREACHABLE, EXIT_FORBIDDEN).
int jr_cli_reach (jr_client_t *client, const jr_opt_t *opts, unsigned mask);
//  Parse a job id argument; exits EXIT_USAGE if it is not one.
void jr_cli_parse_id (const char *text, uint8_t id[JR_ID_SIZE]);

//  Results printed as they come, one JSON line each.
typedef struct {
    size_t failed;            //  results with success false
    size_t printed;           //  results printed
    jr_progress_t *progress;  //  counts each result, or NULL
} jr_cli_printer_t;
//  A jr_result_fn: prints the job, counts it in the jr_cli_printer_t arg.
bool jr_cli_print_result (const jr_job_t *job, void *arg);

//  The commands, run by main once their flags are parsed (the rows of
//  s_commands): argv[1] is the command, argv[2..nargs-1] its arguments.
//  Each returns the exit code.
int jr_cli_submit (jr_opt_t *opts, int nargs, char **argv);
int jr_cli_wait (jr_opt_t *opts, int nargs, char **argv);
int jr_cli_result (jr_opt_t *opts, int nargs, char **argv);
int jr_cli_status (jr_opt_t *opts, int nargs, char **argv);
int jr_cli_cancel (jr_opt_t *opts, int nargs, char **argv);
int jr_cli_retry (jr_opt_t *opts, int nargs, char **argv);
int jr_cli_keygen (jr_opt_t *opts, int nargs, char **argv);
int jr_cli_list (jr_opt_t *opts, int nargs, char **argv);
int jr_cli_ping (jr_opt_t *opts, int nargs, char **argv);
#endif
