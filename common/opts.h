/*  opts.h - command-line flags, each with environment variables, a config file line and a default  */
#ifndef JR_OPTS_H
#define JR_OPTS_H
#include <stdbool.h>
#include <stddef.h>

//  Where a flag's value came from.
typedef enum {
    JR_OPT_DEFAULT,  //  the row's def (or unset)
    JR_OPT_FILE,     //  a line of the --config file
    JR_OPT_ENV,      //  an environment variable
    JR_OPT_FLAG      //  the command line
} jr_opt_source_t;

//  One flag: --name VALUE (or --name=VALUE), else $env, else a line of the
//  --config file, else def. A flag with is_bool takes no value on the
//  command line (--name=false turns it off) and sets "1"; off is NULL.
//  value receives a borrowed string (argv, environ, the file's text, kept
//  until exit, or def).
//
//  Environment: the canonical variable is the program name and the flag
//  in upper case, '-' -> '_' (jr-broker --journal: JR_BROKER_JOURNAL). env,
//  when it names another variable, is a legacy alias of it; the canonical
//  one wins when both are set. With jr_opts_parse_config (the daemons) every
//  flag but a flag_only one has its canonical variable; with jr_opts_parse
//  (the CLI) only a flag whose row names env has one. An empty variable
//  counts as unset.
typedef struct {
    const char *name;        //  without the leading dashes
    const char *env;         //  legacy environment variable, or NULL
    const char *def;         //  default, or NULL
    const char *help;        //  one line
    bool is_bool;            //  a switch without a value
    const char *value;       //  result
    bool flag_only;          //  internal: neither environment nor config file
    jr_opt_source_t source;  //  result: where value came from
    const char *origin;      //  result: the variable's name or the file's path (borrowed)
    int line;                //  result: the file's line, for JR_OPT_FILE
} jr_opt_t;

//  Parse argv. The program is the first word of usage (error prefix
//  "PROGRAM: error: ", the environment names, --version). Prints usage and
//  exits 0 on --help or -h; prints "PROGRAM VERSION" and exits 0 on
//  --version; prints a message and exits 2 on an unknown flag, a missing
//  value or a bad boolean. Arguments that are not flags are moved to the
//  front of argv; returns their count (argv[0] kept).
int jr_opts_parse (int argc, char **argv, jr_opt_t *opts, int nopts, const char *usage);
//  jr_opts_parse for a daemon, and also --config FILE ($PROGRAM_CONFIG):
//  lines "name = value" read under the environment and the flags (exits 2
//  naming the file, line and key on an unknown key or a line without '=',
//  naming the path and the errno text on a file it cannot read), and
//  --print-config: print every flag's effective value and its source, exit 0.
int jr_opts_parse_config (int argc, char **argv, jr_opt_t *opts, int nopts, const char *usage);
//  The value of a flag as an integer in [min, max]; exits 2 with a message
//  naming the flag (and where the value came from) otherwise.
long jr_opts_int (const jr_opt_t *opt, long min, long max);
//  Print usage (the usage line, then every flag with its variables and
//  default).
void jr_opts_usage (const jr_opt_t *opts, int nopts, const char *usage);
//  Print "PROGRAM: error: " and the message to stderr (a newline added).
void jr_opts_error (const char *format, ...) __attribute__ ((format (printf, 1, 2)));
//  The program of the last jr_opts_parse (borrowed), else the name this
//  process was started as.
const char *jr_opts_program (void);
//  "PROGRAM VERSION" on stdout, the version of the CMake project.
void jr_opts_print_version (const char *program);
//  "on" or "off" from a boolean text: 1/true/yes/on -> 1, 0/false/no/off ->
//  0 (any case), anything else -1.
int jr_opts_bool (const char *text);
//  The canonical environment variable of a program's flag into out (size
//  bytes): JR_BROKER_JOURNAL for "jr-broker", "journal".
void jr_opts_env_name (char *out, size_t size, const char *program, const char *flag);
#endif
