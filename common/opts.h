/*  opts.h - command-line flags, each with an environment variable and a default  */
#ifndef JR_OPTS_H
#define JR_OPTS_H
#include <stdbool.h>

//  One flag: --name VALUE (or --name=VALUE), else $env, else def. A flag
//  with is_bool takes no value and sets "1". value receives a borrowed
//  string (argv, environ or def).
typedef struct {
    const char *name;   //  without the leading dashes
    const char *env;    //  environment variable, or NULL
    const char *def;    //  default, or NULL
    const char *help;   //  one line
    bool is_bool;       //  a switch without a value
    const char *value;  //  result
} jr_opt_t;

//  Parse argv. Prints usage and exits 0 on --help; prints a clear message
//  and exits 2 on an unknown flag or a missing value. Arguments that are not
//  flags are moved to the front of argv; returns their count (argv[0] kept).
int jr_opts_parse (int argc, char **argv, jr_opt_t *opts, int nopts, const char *usage);
//  The value of a flag as an integer in [min, max]; exits 2 with a message
//  naming the flag otherwise.
long jr_opts_int (const jr_opt_t *opt, long min, long max);
//  Print usage (the usage line, then every flag with its env and default).
void jr_opts_usage (const jr_opt_t *opts, int nopts, const char *usage);
#endif
