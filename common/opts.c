/*  opts.c - command-line flags with environment variables, a config file and defaults  */
#include "common/opts.h"
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#ifndef JR_VERSION
#error "JR_VERSION (the CMake project's version) must be defined"
#endif

#define S_BOOLS "1/true/yes/on or 0/false/no/off"

static char s_program[64];  //  of the last parse: error prefix, variables, --version
static bool s_daemon;       //  the last parse took --config: every flag has a variable

//  -------------------------------------------------------------------------
//  Texts kept until exit: config files (values point into them) and the
//  canonical variable names (origins point at them).

typedef struct s_kept {
    struct s_kept *next;
    char text[];
} s_kept_t;

static s_kept_t *s_kept;

static void
s_kept_free (void)
{
    while (s_kept) {
        s_kept_t *next = s_kept->next;
        free (s_kept);
        s_kept = next;
    }
}

//  A copy of len bytes of text, NUL-terminated, freed at exit.
static char *
s_keep (const char *text, size_t len)
{
    if (!s_kept)
        atexit (s_kept_free);
    s_kept_t *kept = malloc (sizeof *kept + len + 1);
    if (!kept)
        abort ();
    memcpy (kept->text, text, len);
    kept->text[len] = 0;
    kept->next = s_kept;
    s_kept = kept;
    return kept->text;
}

//  -------------------------------------------------------------------------
//  Names and messages

const char *
jr_opts_program (void)
{
    return *s_program ? s_program : program_invocation_short_name;
}

void
jr_opts_error (const char *format, ...)
{
    fprintf (stderr, "%s: error: ", jr_opts_program ());
    va_list args;
    va_start (args, format);
    vfprintf (stderr, format, args);
    va_end (args);
    fprintf (stderr, "\n");
}

void
jr_opts_print_version (const char *program)
{
    printf ("%s %s\n", program, JR_VERSION);
}

int
jr_opts_bool (const char *text)
{
    static const char *on[] = { "1", "true", "yes", "on" };
    static const char *off[] = { "0", "false", "no", "off" };
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        if (strcasecmp (text, on[i]) == 0)
            return 1;
        if (strcasecmp (text, off[i]) == 0)
            return 0;
    }
    return -1;
}

void
jr_opts_env_name (char *out, size_t size, const char *program, const char *flag)
{
    assert (size > 0);
    size_t n = 0;
    for (const char *part[] = { program, "_", flag }, **p = part; p < part + 3; p++)
        for (const char *c = *p; *c && n + 1 < size; c++)
            out[n++] = *c == '-' ? '_' : (char)toupper ((unsigned char)*c);
    out[n] = 0;
}

//  The program: the first word of usage.
static void
s_set_program (const char *usage)
{
    size_t len = strcspn (usage, " \n");
    if (len >= sizeof s_program)
        len = sizeof s_program - 1;
    memcpy (s_program, usage, len);
    s_program[len] = 0;
}

//  The canonical variable of opt into out, or "" if it has none.
static void
s_canonical (const jr_opt_t *opt, char *out, size_t size)
{
    *out = 0;
    if (opt->flag_only || (!s_daemon && !opt->env))
        return;
    jr_opts_env_name (out, size, s_program, opt->name);
}

//  The legacy alias of opt, or NULL: its env unless that is the canonical one.
static const char *
s_alias (const jr_opt_t *opt, const char *canonical)
{
    return opt->env && !opt->flag_only && strcmp (opt->env, canonical) != 0 ? opt->env : NULL;
}

//  -------------------------------------------------------------------------
//  Usage

static void
s_usage_line (const char *flag, const char *help, const char *canonical, const char *alias,
              const char *def)
{
    printf ("  %-22s %s", flag, help);
    if (*canonical && alias)
        printf (" [$%s, or $%s]", canonical, alias);
    else if (*canonical)
        printf (" [$%s]", canonical);
    if (def)
        printf (" (default %s)", def);
    printf ("\n");
}

void
jr_opts_usage (const jr_opt_t *opts, int nopts, const char *usage)
{
    s_set_program (usage);
    printf ("usage: %s\n\noptions:\n", usage);
    for (int i = 0; i < nopts; i++) {
        char flag[64], canonical[128];
        snprintf (flag, sizeof flag, "--%s%s", opts[i].name, opts[i].is_bool ? "" : " V");
        s_canonical (&opts[i], canonical, sizeof canonical);
        s_usage_line (flag, opts[i].help, canonical, s_alias (&opts[i], canonical),
                      opts[i].is_bool ? NULL : opts[i].def);
    }
    if (s_daemon) {
        char canonical[128];
        jr_opts_env_name (canonical, sizeof canonical, s_program, "config");
        s_usage_line ("--config FILE", "read flags from FILE, lines 'name = value'", canonical,
                      NULL, NULL);
        s_usage_line ("--print-config", "print every flag's value and where it came from, exit", "",
                      NULL, NULL);
    }
    if (s_daemon)  //  jr lists it once, in jr --help, not under each command
        printf ("  %-22s %s\n", "--version", "print the version, exit");
    printf ("  %-22s %s\n", "-h, --help", "show this help");
    if (s_daemon)
        printf ("\nPrecedence: flag > environment > config file > default. A boolean\n"
                "variable or file value is " S_BOOLS ".\n");
}

//  -------------------------------------------------------------------------
//  Sources

//  Set opt from a text: a boolean is parsed (NULL when off), else borrowed.
//  Returns false for a boolean that is not one.
static bool
s_set (jr_opt_t *opt, const char *text, jr_opt_source_t source, const char *origin, int line)
{
    if (opt->is_bool) {
        int on = jr_opts_bool (text);
        if (on < 0)
            return false;
        text = on ? "1" : NULL;
    }
    opt->value = text;
    opt->source = source;
    opt->origin = origin;
    opt->line = line;
    return true;
}

static jr_opt_t *
s_find (jr_opt_t *opts, int nopts, const char *name, size_t len)
{
    for (int i = 0; i < nopts; i++)
        if (strlen (opts[i].name) == len && strncmp (opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

static char *
s_trim (char *text)
{
    while (*text == ' ' || *text == '\t')
        text++;
    size_t len = strlen (text);
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\r'))
        text[--len] = 0;
    return text;
}

//  The value part of a config line, cut in place: quoted ('...' or "...",
//  taken as is) or bare (up to a '#' after a space, trimmed). NULL, with
//  *why set, if it is malformed.
static char *
s_file_value (char *text, const char **why)
{
    text = s_trim (text);
    if (*text == '"' || *text == '\'') {
        char *close = strchr (text + 1, *text);
        if (!close) {
            *why = "no closing quote";
            return NULL;
        }
        *close = 0;
        char *rest = s_trim (close + 1);
        if (*rest && *rest != '#') {
            *why = "text after the closing quote";
            return NULL;
        }
        return text + 1;
    }
    for (char *c = text; *c; c++)
        if (*c == '#' && (c == text || c[-1] == ' ' || c[-1] == '\t')) {
            *c = 0;
            break;
        }
    return s_trim (text);
}

#define S_CONFIG_MAX (1 << 20)  //  bytes of a config file at most

//  Read the config file into opts; exits 2 on any error.
static void
s_read_file (const char *path, jr_opt_t *opts, int nopts)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        jr_opts_error ("config file %s: %s", path, strerror (errno));
        exit (2);
    }
    //  A FIFO or a device (/dev/zero) would be read for ever.
    struct stat st;
    if (fstat (fileno (file), &st) == -1 || !S_ISREG (st.st_mode)) {
        jr_opts_error ("config file %s: not a regular file", path);
        exit (2);
    }
    size_t size = 0, cap = 4096;
    char *text = malloc (cap);
    for (size_t got; text && (got = fread (text + size, 1, cap - size, file)) > 0;) {
        size += got;
        if (size > S_CONFIG_MAX) {
            jr_opts_error ("config file %s: larger than %d bytes", path, S_CONFIG_MAX);
            exit (2);
        }
        if (size == cap)
            text = realloc (text, cap *= 2);
    }
    if (!text)
        abort ();
    if (ferror (file)) {
        jr_opts_error ("config file %s: %s", path, strerror (errno));
        exit (2);
    }
    fclose (file);
    char *kept = s_keep (text, size);
    free (text);
    path = s_keep (path, strlen (path));
    if (strlen (kept) != size) {
        jr_opts_error ("config file %s: not a text file (a NUL byte)", path);
        exit (2);
    }
    int *seen = calloc ((size_t)nopts, sizeof *seen);
    assert (seen);
    int number = 0;
    for (char *line = kept, *next; line; line = next) {
        next = strchr (line, '\n');
        if (next)
            *next++ = 0;
        number++;
        line = s_trim (line);
        if (!*line || *line == '#')
            continue;
        char *equals = strchr (line, '=');
        if (!equals) {
            jr_opts_error ("%s:%d: expected 'name = value', got '%s'", path, number, line);
            exit (2);
        }
        *equals = 0;
        char *key = s_trim (line);
        jr_opt_t *opt = s_find (opts, nopts, key, strlen (key));
        if (!opt || opt->flag_only) {
            jr_opts_error ("%s:%d: unknown key '%s' (the keys are the flags of --help)", path,
                           number, key);
            exit (2);
        }
        if (seen[opt - opts]) {
            jr_opts_error ("%s:%d: key '%s' given twice (also on line %d)", path, number, key,
                           seen[opt - opts]);
            exit (2);
        }
        seen[opt - opts] = number;
        const char *why = NULL;
        char *value = s_file_value (equals + 1, &why);
        if (!value) {
            jr_opts_error ("%s:%d: %s: %s", path, number, key, why);
            exit (2);
        }
        if (!*value)
            continue;  //  empty: the default, as an empty variable is unset
        if (!s_set (opt, value, JR_OPT_FILE, path, number)) {
            jr_opts_error ("%s:%d: %s: '%s' is not a boolean (" S_BOOLS ")", path, number, key,
                           value);
            exit (2);
        }
    }
    free (seen);
}

//  Set opt from its canonical variable, else its alias; exits 2 on a bad
//  boolean.
static void
s_read_env (jr_opt_t *opt)
{
    char canonical[128];
    s_canonical (opt, canonical, sizeof canonical);
    const char *names[] = { canonical, s_alias (opt, canonical) };
    for (int i = 0; i < 2; i++) {
        if (!names[i] || !*names[i])
            continue;
        const char *text = getenv (names[i]);
        if (!text || !*text)
            continue;
        const char *origin = s_keep (names[i], strlen (names[i]));
        if (!s_set (opt, text, JR_OPT_ENV, origin, 0)) {
            jr_opts_error ("$%s: '%s' is not a boolean (" S_BOOLS ")", names[i], text);
            exit (2);
        }
        return;
    }
}

//  -------------------------------------------------------------------------
//  --print-config

//  " # file PATH:LINE" and the like, for opt.
static void
s_print_source (const jr_opt_t *opt)
{
    switch (opt->source) {
        case JR_OPT_FLAG: printf ("  # flag\n"); break;
        case JR_OPT_ENV: printf ("  # env %s\n", opt->origin); break;
        case JR_OPT_FILE: printf ("  # file %s:%d\n", opt->origin, opt->line); break;
        default: printf ("  # default\n"); break;
    }
}

static void
s_print_config (const jr_opt_t *opts, int nopts, const char *config, const char *config_from)
{
    printf ("# %s %s; precedence: flag > env > file > default\n", s_program, JR_VERSION);
    if (config)
        printf ("# config = %s  # %s\n", config, config_from);
    for (int i = 0; i < nopts; i++) {
        const jr_opt_t *opt = &opts[i];
        if (opt->flag_only)
            continue;
        const char *value = opt->value;
        if (opt->is_bool)
            printf ("%s = %s", opt->name, value ? "true" : "false");
        else if (!value)
            printf ("%s =", opt->name);
        else if (!*value || strchr (value, '#') || *value == '"' || *value == '\''
                 || isspace ((unsigned char)*value)
                 || isspace ((unsigned char)value[strlen (value) - 1]))
            printf ("%s = %s%s%s", opt->name, strchr (value, '"') ? "'" : "\"", value,
                    strchr (value, '"') ? "'" : "\"");
        else
            printf ("%s = %s", opt->name, value);
        s_print_source (opt);
    }
}

//  -------------------------------------------------------------------------
//  Parsing

//  The value of a flag argument: after '=', or the next argument.
static const char *
s_flag_value (const char *name, const char *eq, int argc, char **argv, int *a)
{
    if (eq)
        return eq + 1;
    if (*a + 1 < argc)
        return argv[++*a];
    jr_opts_error ("flag --%s needs a value", name);
    exit (2);
}

static int
s_parse (int argc, char **argv, jr_opt_t *opts, int nopts, const char *usage, bool daemon)
{
    s_set_program (usage);
    s_daemon = daemon;
    for (int i = 0; i < nopts; i++) {
        opts[i].value = opts[i].is_bool ? NULL : opts[i].def;
        opts[i].source = JR_OPT_DEFAULT;
        opts[i].origin = NULL;
        opts[i].line = 0;
    }
    //  The command line first (for --help, --config and errors), applied last.
    const char **given = calloc ((size_t)nopts, sizeof *given);
    bool *is_given = calloc ((size_t)nopts, sizeof *is_given);
    assert (given && is_given);
    const char *config = NULL;
    char config_from[160] = "flag";
    bool print = false;
    int kept = 1;
    bool flags_done = false;
    for (int a = 1; a < argc; a++) {
        char *arg = argv[a];
        if (!flags_done && strcmp (arg, "-h") == 0) {
            jr_opts_usage (opts, nopts, usage);
            exit (0);
        }
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
        if (strcmp (arg, "--version") == 0) {
            jr_opts_print_version (s_program);
            exit (0);
        }
        char *eq = strchr (arg, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen (arg + 2);
        if (daemon && len == 6 && strncmp (arg + 2, "config", 6) == 0) {
            config = s_flag_value ("config", eq, argc, argv, &a);
            continue;
        }
        if (daemon && !eq && strcmp (arg + 2, "print-config") == 0) {
            print = true;
            continue;
        }
        jr_opt_t *opt = s_find (opts, nopts, arg + 2, len);
        if (!opt) {
            jr_opts_error ("unknown flag %s (see --help)", arg);
            exit (2);
        }
        if (opt->is_bool && eq && jr_opts_bool (eq + 1) < 0) {
            jr_opts_error ("%s: not a boolean (" S_BOOLS ")", arg);
            exit (2);
        }
        given[opt - opts] =
            opt->is_bool ? (eq ? eq + 1 : "1") : s_flag_value (opt->name, eq, argc, argv, &a);
        is_given[opt - opts] = true;
    }
    argv[kept] = NULL;
    if (daemon && !config) {
        char name[128];
        jr_opts_env_name (name, sizeof name, s_program, "config");
        config = getenv (name);
        config = config && *config ? config : NULL;
        if (config)
            snprintf (config_from, sizeof config_from, "env %s", name);
    }
    if (config)
        s_read_file (config, opts, nopts);
    for (int i = 0; i < nopts; i++)
        s_read_env (&opts[i]);
    for (int i = 0; i < nopts; i++)
        if (is_given[i])
            s_set (&opts[i], given[i], JR_OPT_FLAG, NULL, 0);
    free (given);
    free (is_given);
    if (print) {
        s_print_config (opts, nopts, config, config_from);
        exit (0);
    }
    return kept;
}

int
jr_opts_parse (int argc, char **argv, jr_opt_t *opts, int nopts, const char *usage)
{
    return s_parse (argc, argv, opts, nopts, usage, false);
}

int
jr_opts_parse_config (int argc, char **argv, jr_opt_t *opts, int nopts, const char *usage)
{
    return s_parse (argc, argv, opts, nopts, usage, true);
}

long
jr_opts_int (const jr_opt_t *opt, long min, long max)
{
    if (!opt->value) {
        jr_opts_error ("--%s is required", opt->name);
        exit (2);
    }
    char *end;
    errno = 0;
    long v = strtol (opt->value, &end, 10);
    if (errno || *end || end == opt->value || v < min || v > max) {
        char from[300] = "";
        if (opt->source == JR_OPT_ENV)
            snprintf (from, sizeof from, " (from $%s)", opt->origin);
        else if (opt->source == JR_OPT_FILE)
            snprintf (from, sizeof from, " (from %s:%d)", opt->origin, opt->line);
        jr_opts_error ("--%s must be an integer from %ld to %ld, not '%s'%s", opt->name, min, max,
                       opt->value, from);
        exit (2);
    }
    return v;
}
