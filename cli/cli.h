/*  cli.h - what the jr commands share: exit codes, flags by name, the client, results printed  */
#ifndef JR_CLI_CLI_H
#define JR_CLI_CLI_H
#include "common/opts.h"
#include <jr/jr.h>

//  Exit codes: 0 done (and the job succeeded), 1 failed or refused, 2 bad
//  usage, 3 timed out.
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 3 };

//  The exit code of a failed request: EXIT_TIMEOUT or EXIT_FAILED.
int jr_cli_exit_code (int rc);
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
//  flag named answer says. Exits EXIT_USAGE on a bad endpoint.
jr_client_t *jr_cli_client (const jr_opt_t *opts, const char *answer);
//  Parse a job id argument; exits EXIT_USAGE if it is not one.
void jr_cli_parse_id (const char *text, uint8_t id[JR_ID_SIZE]);

//  Results printed as they come, one JSON line each.
typedef struct {
    size_t failed;   //  results with success false
    size_t printed;  //  results printed
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
#endif
