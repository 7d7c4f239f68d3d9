/*  opts.c - command-line flags with environment fallbacks  */
#include "common/opts.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
jr_opts_usage (const jr_opt_t *opts, int nopts, const char *usage)
{
    printf ("usage: %s\n\noptions:\n", usage);
    for (int i = 0; i < nopts; i++) {
        char flag[64];
        snprintf (flag, sizeof flag, "--%s%s", opts[i].name, opts[i].is_bool ? "" : " V");
        printf ("  %-22s %s", flag, opts[i].help);
        if (opts[i].env)
            printf (" [$%s]", opts[i].env);
        if (opts[i].def && !opts[i].is_bool)
            printf (" (default %s)", opts[i].def);
        printf ("\n");
    }
    printf ("  %-22s %s\n", "--help", "show this help");
}

int
jr_opts_parse (int argc, char **argv, jr_opt_t *opts, int nopts, const char *usage)
{
    for (int i = 0; i < nopts; i++) {
        const char *env = opts[i].env ? getenv (opts[i].env) : NULL;
        opts[i].value = env && *env ? env : opts[i].def;
    }
    int kept = 1;
    bool flags_done = false;
    for (int a = 1; a < argc; a++) {
        char *arg = argv[a];
        if (flags_done || strncmp (arg, "--", 2) != 0 || arg[2] == 0) {
            if (!flags_done && strcmp (arg, "--") == 0) {
                flags_done = true;
                continue;
            }
            argv[kept++] = arg;
            continue;
        }
        if (strcmp (arg, "--help") == 0) {
            jr_opts_usage (opts, nopts, usage);
            exit (0);
        }
        char *eq = strchr (arg, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen (arg + 2);
        jr_opt_t *opt = NULL;
        for (int i = 0; i < nopts; i++)
            if (strlen (opts[i].name) == len && strncmp (opts[i].name, arg + 2, len) == 0)
                opt = &opts[i];
        if (!opt) {
            fprintf (stderr, "error: unknown flag %s (see --help)\n", arg);
            exit (2);
        }
        if (opt->is_bool)
            opt->value = "1";
        else if (eq)
            opt->value = eq + 1;
        else if (a + 1 < argc)
            opt->value = argv[++a];
        else {
            fprintf (stderr, "error: flag --%s needs a value\n", opt->name);
            exit (2);
        }
    }
    argv[kept] = NULL;
    return kept;
}

long
jr_opts_int (const jr_opt_t *opt, long min, long max)
{
    if (!opt->value) {
        fprintf (stderr, "error: --%s is required\n", opt->name);
        exit (2);
    }
    char *end;
    errno = 0;
    long v = strtol (opt->value, &end, 10);
    if (errno || *end || end == opt->value || v < min || v > max) {
        fprintf (stderr, "error: --%s must be an integer from %ld to %ld, not '%s'\n", opt->name,
                 min, max, opt->value);
        exit (2);
    }
    return v;
}
