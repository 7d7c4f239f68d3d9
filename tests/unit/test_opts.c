/*  test_opts.c - flags, environment (canonical names, legacy aliases), config files, booleans  */
#include "common/opts.h"
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

//  The flags of a made-up daemon "jr-test": canonical variables JR_TEST_*.
enum { O_BIND, O_DB, O_SLOTS, O_VERBOSE, O_QUIET, O_INTERNAL, O_COUNT };

static const char *s_vars[] = { "JR_TEST_BIND",    "JR_TEST_DB",      "JR_TEST_SLOTS",
                                "JR_TEST_VERBOSE", "JR_TEST_QUIET",   "JR_TEST_INTERNAL",
                                "JR_TEST_CONFIG",  "LEGACY_BIND",     "LEGACY_SLOTS",
                                "LEGACY_VERBOSE",  "JR_TEST_PRIORITY" };

static char s_dir[64];  //  this test's temp folder: config files, captured output

static void
s_init (void)
{
    for (size_t i = 0; i < sizeof s_vars / sizeof s_vars[0]; i++)
        unsetenv (s_vars[i]);
    strcpy (s_dir, "/tmp/jr-test-opts-XXXXXX");
    cr_assert_not_null (mkdtemp (s_dir));
}

static void
s_fini (void)
{
    char command[128];
    snprintf (command, sizeof command, "rm -rf '%s'", s_dir);
    cr_assert_eq (system (command), 0);
}

TestSuite (opts, .init = s_init, .fini = s_fini);

static void
s_opts (jr_opt_t opts[O_COUNT])
{
    jr_opt_t def[O_COUNT] = {
        { "bind", "LEGACY_BIND", "tcp://*:1", "endpoint" },
        { "db", NULL, NULL, "database path" },
        { "slots", "LEGACY_SLOTS", "4", "executors" },
        { "verbose", "LEGACY_VERBOSE", NULL, "trace", true },
        { "quiet", NULL, NULL, "say less", true },
        { "internal", NULL, NULL, "internal: not from env or file", true, NULL, true },
    };
    memcpy (opts, def, sizeof def);
}

//  A file in the test's folder with this text; its path (static).
static const char *
s_file (const char *name, const char *text)
{
    static char path[128];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *file = fopen (path, "w");
    cr_assert_not_null (file);
    fputs (text, file);
    fclose (file);
    return path;
}

//  Parse "jr-test" and the given arguments (NULL-terminated) as a daemon.
static int
s_parse (jr_opt_t opts[O_COUNT], ...)
{
    static char *argv[32];
    int argc = 0;
    argv[argc++] = "jr-test";
    va_list ap;
    va_start (ap, opts);
    for (const char *arg; (arg = va_arg (ap, const char *));)
        argv[argc++] = (char *)arg;
    va_end (ap);
    argv[argc] = NULL;
    s_opts (opts);
    return jr_opts_parse_config (argc, argv, opts, O_COUNT, "jr-test [options]");
}

//  What a parse that exits does: run it in a child, its exit status, its
//  stdout and stderr (each at most 4 KiB, static).
static bool s_then_int;  //  S_RUN also reads --slots as an integer

typedef struct {
    int status;
    char out[4096];
    char err[4096];
} s_run_t;

static void
s_slurp (const char *path, char *buffer, size_t size)
{
    FILE *file = fopen (path, "r");
    cr_assert_not_null (file);
    size_t n = fread (buffer, 1, size - 1, file);
    buffer[n] = 0;
    fclose (file);
}

#define S_RUN(run, ...)                                                                            \
    do {                                                                                           \
        char out_[160], err_[160];                                                                 \
        snprintf (out_, sizeof out_, "%s/stdout", s_dir);                                          \
        snprintf (err_, sizeof err_, "%s/stderr", s_dir);                                          \
        fflush (NULL);                                                                             \
        pid_t pid_ = fork ();                                                                      \
        cr_assert_geq (pid_, 0);                                                                   \
        if (pid_ == 0) {                                                                           \
            if (!freopen (out_, "w", stdout) || !freopen (err_, "w", stderr))                      \
                _exit (99);                                                                        \
            jr_opt_t opts_[O_COUNT];                                                               \
            s_parse (opts_, __VA_ARGS__);                                                          \
            if (s_then_int)                                                                        \
                jr_opts_int (&opts_[O_SLOTS], 1, 64);                                              \
            fflush (NULL);                                                                         \
            _exit (100); /*  did not exit by itself  */                                            \
        }                                                                                          \
        int status_;                                                                               \
        cr_assert_eq (waitpid (pid_, &status_, 0), pid_);                                          \
        (run)->status = WIFEXITED (status_) ? WEXITSTATUS (status_) : -1;                          \
        s_slurp (out_, (run)->out, sizeof (run)->out);                                             \
        s_slurp (err_, (run)->err, sizeof (run)->err);                                             \
    } while (0)

//  The child's stderr is this one line (after any a sanitizer wrote: the
//  child of a threaded test process may get a note from LeakSanitizer).
#define S_ERR_IS(run, want)                                                                        \
    do {                                                                                           \
        const char *want_ = (want);                                                                \
        size_t n_ = strlen ((run)->err), w_ = strlen (want_);                                      \
        cr_assert (n_ >= w_ && strcmp ((run)->err + n_ - w_, want_) == 0                           \
                       && (n_ == w_ || (run)->err[n_ - w_ - 1] == '\n'),                           \
                   "stderr '%s', want '%s'", (run)->err, want_);                                   \
    } while (0)

//  -------------------------------------------------------------------------
//  Names

Test (opts, canonical_names_follow_the_program_and_the_flag)
{
    char name[64];
    jr_opts_env_name (name, sizeof name, "jr-broker", "journal");
    cr_assert_str_eq (name, "JR_BROKER_JOURNAL");
    jr_opts_env_name (name, sizeof name, "jr-worker", "task-timeout");
    cr_assert_str_eq (name, "JR_WORKER_TASK_TIMEOUT");
    jr_opts_env_name (name, sizeof name, "jr", "broker");
    cr_assert_str_eq (name, "JR_BROKER");
    jr_opts_env_name (name, 8, "jr-ingester", "sink");
    cr_assert_str_eq (name, "JR_INGE", "cut to fit, still terminated");
}

Test (opts, booleans)
{
    const char *on[] = { "1", "true", "TRUE", "yes", "Yes", "on", "ON" };
    const char *off[] = { "0", "false", "False", "no", "NO", "off", "Off" };
    const char *bad[] = { "", "2", "y", "n", "enable", "true ", "-1" };
    for (size_t i = 0; i < 7; i++) {
        cr_assert_eq (jr_opts_bool (on[i]), 1, "%s", on[i]);
        cr_assert_eq (jr_opts_bool (off[i]), 0, "%s", off[i]);
        cr_assert_eq (jr_opts_bool (bad[i]), -1, "%s", bad[i]);
    }
}

//  -------------------------------------------------------------------------
//  Precedence

Test (opts, defaults_when_nothing_is_given)
{
    jr_opt_t opts[O_COUNT];
    cr_assert_eq (s_parse (opts, NULL), 1);
    cr_assert_str_eq (opts[O_BIND].value, "tcp://*:1");
    cr_assert_eq (opts[O_BIND].source, JR_OPT_DEFAULT);
    cr_assert_null (opts[O_DB].value);
    cr_assert_null (opts[O_VERBOSE].value);
    cr_assert_eq (jr_opts_int (&opts[O_SLOTS], 1, 64), 4);
}

Test (opts, flag_over_env_over_file_over_default)
{
    const char *path = s_file ("a.conf", "bind = tcp://file:1\n"
                                         "db = /file.db\n"
                                         "slots = 8\n");
    setenv ("JR_TEST_DB", "/env.db", 1);
    setenv ("JR_TEST_SLOTS", "16", 1);
    jr_opt_t opts[O_COUNT];
    cr_assert_eq (s_parse (opts, "--config", path, "--slots=32", NULL), 1);
    cr_assert_str_eq (opts[O_BIND].value, "tcp://file:1", "file over default");
    cr_assert_eq (opts[O_BIND].source, JR_OPT_FILE);
    cr_assert_str_eq (opts[O_BIND].origin, path);
    cr_assert_eq (opts[O_BIND].line, 1);
    cr_assert_str_eq (opts[O_DB].value, "/env.db", "env over file");
    cr_assert_eq (opts[O_DB].source, JR_OPT_ENV);
    cr_assert_str_eq (opts[O_DB].origin, "JR_TEST_DB");
    cr_assert_eq (jr_opts_int (&opts[O_SLOTS], 1, 64), 32, "flag over env");
    cr_assert_eq (opts[O_SLOTS].source, JR_OPT_FLAG);
}

Test (opts, config_from_the_environment)
{
    setenv ("JR_TEST_CONFIG", s_file ("b.conf", "db = /b.db\n"), 1);
    jr_opt_t opts[O_COUNT];
    s_parse (opts, NULL);
    cr_assert_str_eq (opts[O_DB].value, "/b.db");
    const char *other = s_file ("c.conf", "db = /c.db\n");
    s_parse (opts, "--config", other, NULL);
    cr_assert_str_eq (opts[O_DB].value, "/c.db", "--config over $JR_TEST_CONFIG");
}

Test (opts, legacy_alias_and_canonical_wins)
{
    setenv ("LEGACY_BIND", "tcp://legacy:1", 1);
    jr_opt_t opts[O_COUNT];
    s_parse (opts, NULL);
    cr_assert_str_eq (opts[O_BIND].value, "tcp://legacy:1");
    cr_assert_str_eq (opts[O_BIND].origin, "LEGACY_BIND");
    setenv ("JR_TEST_BIND", "tcp://canonical:1", 1);
    s_parse (opts, NULL);
    cr_assert_str_eq (opts[O_BIND].value, "tcp://canonical:1");
    cr_assert_str_eq (opts[O_BIND].origin, "JR_TEST_BIND");
    setenv ("JR_TEST_BIND", "", 1);
    s_parse (opts, NULL);
    cr_assert_str_eq (opts[O_BIND].value, "tcp://legacy:1", "an empty variable is unset");
}

Test (opts, the_cli_has_variables_only_where_its_table_names_one)
{
    setenv ("JR_TEST_DB", "/env.db", 1);
    setenv ("LEGACY_BIND", "tcp://legacy:1", 1);
    setenv ("JR_TEST_SLOTS", "9", 1);
    jr_opt_t opts[O_COUNT];
    s_opts (opts);
    char a0[] = "jr-test";
    char *argv[] = { a0, NULL };
    jr_opts_parse (1, argv, opts, O_COUNT, "jr-test cmd [flags]");
    cr_assert_null (opts[O_DB].value, "no env in the row: no variable");
    cr_assert_str_eq (opts[O_BIND].value, "tcp://legacy:1");
    cr_assert_str_eq (opts[O_SLOTS].value, "9", "the canonical name of a row with env");
}

//  -------------------------------------------------------------------------
//  Booleans

Test (opts, boolean_variables_off_and_on)
{
    jr_opt_t opts[O_COUNT];
    setenv ("LEGACY_VERBOSE", "0", 1);
    s_parse (opts, NULL);
    cr_assert_null (opts[O_VERBOSE].value, "JR_VERBOSE=0 style: off");
    cr_assert_eq (opts[O_VERBOSE].source, JR_OPT_ENV);
    setenv ("JR_TEST_VERBOSE", "false", 1);
    setenv ("LEGACY_VERBOSE", "1", 1);
    s_parse (opts, NULL);
    cr_assert_null (opts[O_VERBOSE].value, "the canonical false wins over the alias");
    setenv ("JR_TEST_VERBOSE", "Yes", 1);
    s_parse (opts, NULL);
    cr_assert_str_eq (opts[O_VERBOSE].value, "1");
    setenv ("JR_TEST_VERBOSE", "off", 1);
    s_parse (opts, "--verbose", NULL);
    cr_assert_str_eq (opts[O_VERBOSE].value, "1", "the flag wins");
    s_parse (opts, "--verbose=no", NULL);
    cr_assert_null (opts[O_VERBOSE].value, "--flag=no turns it off");
    cr_assert_eq (opts[O_VERBOSE].source, JR_OPT_FLAG);
}

Test (opts, boolean_in_a_file)
{
    jr_opt_t opts[O_COUNT];
    s_parse (opts, "--config", s_file ("d.conf", "verbose = on\nquiet = FALSE\n"), NULL);
    cr_assert_str_eq (opts[O_VERBOSE].value, "1");
    cr_assert_null (opts[O_QUIET].value);
    cr_assert_eq (opts[O_QUIET].source, JR_OPT_FILE);
    cr_assert_eq (opts[O_QUIET].line, 2);
}

Test (opts, bad_boolean_variable_exits_2_naming_it)
{
    setenv ("LEGACY_VERBOSE", "maybe", 1);
    s_run_t run;
    S_RUN (&run, NULL);
    cr_assert_eq (run.status, 2);
    S_ERR_IS (&run, "jr-test: error: $LEGACY_VERBOSE: 'maybe' is not a boolean "
                    "(1/true/yes/on or 0/false/no/off)\n");
}

Test (opts, bad_boolean_in_a_file_exits_2_naming_file_and_line)
{
    const char *path = s_file ("e.conf", "\n# x\nverbose = 2\n");
    s_run_t run;
    S_RUN (&run, "--config", path, NULL);
    cr_assert_eq (run.status, 2);
    char want[256];
    snprintf (want, sizeof want, "jr-test: error: %s:3: verbose: '2' is not a boolean", path);
    cr_assert (strstr (run.err, want), "%s", run.err);
}

//  -------------------------------------------------------------------------
//  The file's syntax

Test (opts, comments_blanks_spaces_and_quotes)
{
    const char *path = s_file ("f.conf", "# a comment\n"
                                         "\n"
                                         "   \t\n"
                                         "  bind\t=   tcp://x:1   # after a space: a comment\n"
                                         "db = \"/a dir/#1.db\"  # quoted: kept as is\n"
                                         "slots='12'\r\n"
                                         "   # indented comment\n");
    jr_opt_t opts[O_COUNT];
    s_parse (opts, "--config", path, NULL);
    cr_assert_str_eq (opts[O_BIND].value, "tcp://x:1");
    cr_assert_eq (opts[O_BIND].line, 4);
    cr_assert_str_eq (opts[O_DB].value, "/a dir/#1.db");
    cr_assert_eq (opts[O_DB].line, 5);
    cr_assert_str_eq (opts[O_SLOTS].value, "12");
    cr_assert_eq (opts[O_SLOTS].line, 6);
}

Test (opts, a_hash_inside_a_bare_value_is_kept)
{
    jr_opt_t opts[O_COUNT];
    s_parse (opts, "--config", s_file ("g.conf", "db = /x#y.db\n"), NULL);
    cr_assert_str_eq (opts[O_DB].value, "/x#y.db");
}

Test (opts, an_empty_value_is_the_default)
{
    jr_opt_t opts[O_COUNT];
    s_parse (opts, "--config", s_file ("h.conf", "bind =\nslots = # none\n"), NULL);
    cr_assert_str_eq (opts[O_BIND].value, "tcp://*:1");
    cr_assert_eq (opts[O_BIND].source, JR_OPT_DEFAULT);
    cr_assert_str_eq (opts[O_SLOTS].value, "4");
}

//  A file that must be refused: exit 2 and a message that contains want
//  (after "jr-test: error: PATH").
static void
s_refused (const char *text, const char *want)
{
    const char *path = s_file ("bad.conf", text);
    s_run_t run;
    S_RUN (&run, "--config", path, NULL);
    cr_assert_eq (run.status, 2, "%s", run.err);
    char full[512];
    snprintf (full, sizeof full, "jr-test: error: %s%s", path, want);
    cr_assert (strstr (run.err, full), "want '%s' in '%s'", full, run.err);
}

Test (opts, unknown_key_names_file_line_and_key)
{
    s_refused ("bind = x\n\n# c\nbindd = y\n", ":4: unknown key 'bindd'");
}

Test (opts, a_line_without_equals_is_refused)
{
    s_refused ("bind = x\nslots 4\n", ":2: expected 'name = value', got 'slots 4'");
}

Test (opts, a_flag_only_key_is_unknown_in_a_file)
{
    s_refused ("internal = 1\n", ":1: unknown key 'internal'");
}

Test (opts, a_key_given_twice_is_refused)
{
    s_refused ("db = a\ndb = b\n", ":2: key 'db' given twice (also on line 1)");
}

Test (opts, an_unclosed_quote_is_refused)
{
    s_refused ("db = \"a\n", ":1: db: no closing quote");
    s_refused ("db = 'a' b\n", ":1: db: text after the closing quote");
}

Test (opts, a_missing_file_names_path_and_errno)
{
    s_run_t run;
    S_RUN (&run, "--config", "/nonexistent/jr.conf", NULL);
    cr_assert_eq (run.status, 2);
    S_ERR_IS (&run,
              "jr-test: error: config file /nonexistent/jr.conf: No such file or directory\n");
    S_RUN (&run, "--config", s_dir, NULL);
    cr_assert_eq (run.status, 2);
    cr_assert (strstr (run.err, "not a regular file"), "%s", run.err);
}

Test (opts, a_device_or_a_huge_file_is_refused)
{
    s_run_t run;
    S_RUN (&run, "--config", "/dev/zero", NULL);  //  would be read for ever
    cr_assert_eq (run.status, 2);
    S_ERR_IS (&run, "jr-test: error: config file /dev/zero: not a regular file\n");
    size_t size = (1 << 20) + 10;
    char *text = malloc (size + 1);
    cr_assert_not_null (text);
    memset (text, '#', size);
    text[size] = 0;
    const char *path = s_file ("huge.conf", text);
    free (text);
    S_RUN (&run, "--config", path, NULL);
    cr_assert_eq (run.status, 2);
    cr_assert (strstr (run.err, "huge.conf: larger than 1048576 bytes"), "%s", run.err);
}

Test (opts, the_flag_only_row_ignores_its_variable)
{
    setenv ("JR_TEST_INTERNAL", "1", 1);
    jr_opt_t opts[O_COUNT];
    s_parse (opts, NULL);
    cr_assert_null (opts[O_INTERNAL].value);
    s_parse (opts, "--internal", NULL);
    cr_assert_str_eq (opts[O_INTERNAL].value, "1");
}

//  -------------------------------------------------------------------------
//  What the program prints

Test (opts, print_config_names_each_source)
{
    const char *path = s_file ("p.conf", "bind = tcp://file:1\ndb = /file.db\nslots = 8\n");
    setenv ("JR_TEST_DB", "/env.db", 1);
    setenv ("LEGACY_SLOTS", "16", 1);
    s_run_t run;
    S_RUN (&run, "--config", path, "--slots", "32", "--print-config", NULL);
    cr_assert_eq (run.status, 0, "%s", run.err);
    char want[256];
    snprintf (want, sizeof want, "\nbind = tcp://file:1  # file %s:1\n", path);
    cr_assert (strstr (run.out, want), "%s", run.out);
    cr_assert (strstr (run.out, "\ndb = /env.db  # env JR_TEST_DB\n"), "%s", run.out);
    cr_assert (strstr (run.out, "\nslots = 32  # flag\n"), "%s", run.out);
    cr_assert (strstr (run.out, "\nverbose = false  # default\n"), "%s", run.out);
    cr_assert_null (strstr (run.out, "internal"), "no flag_only row: %s", run.out);
    snprintf (want, sizeof want, "# config = %s  # flag\n", path);
    cr_assert (strstr (run.out, want), "%s", run.out);
}

Test (opts, print_config_can_be_read_back)
{
    setenv ("JR_TEST_DB", "/a b/#c.db", 1);
    setenv ("JR_TEST_VERBOSE", "1", 1);
    s_run_t run;
    S_RUN (&run, "--print-config", NULL);
    cr_assert_eq (run.status, 0, "%s", run.err);
    cr_assert (strstr (run.out, "\ndb = \"/a b/#c.db\"  # env JR_TEST_DB\n"), "%s", run.out);
    const char *path = s_file ("back.conf", run.out);
    unsetenv ("JR_TEST_DB");
    unsetenv ("JR_TEST_VERBOSE");
    jr_opt_t opts[O_COUNT];
    s_parse (opts, "--config", path, NULL);
    cr_assert_str_eq (opts[O_DB].value, "/a b/#c.db");
    cr_assert_str_eq (opts[O_VERBOSE].value, "1");
    cr_assert_str_eq (opts[O_BIND].value, "tcp://*:1");
}

Test (opts, help_shows_canonical_names_and_aliases)
{
    s_run_t run;
    S_RUN (&run, "-h", NULL);
    cr_assert_eq (run.status, 0);
    cr_assert (strstr (run.out, "[$JR_TEST_BIND, or $LEGACY_BIND]"), "%s", run.out);
    cr_assert (strstr (run.out, "database path [$JR_TEST_DB]"), "%s", run.out);
    cr_assert (strstr (run.out, "--config FILE"), "%s", run.out);
    cr_assert (strstr (run.out, "[$JR_TEST_CONFIG]"), "%s", run.out);
    cr_assert_null (strstr (run.out, "JR_TEST_INTERNAL"), "%s", run.out);
    S_RUN (&run, "--help", NULL);
    cr_assert_eq (run.status, 0);
}

Test (opts, version_prints_program_and_version)
{
    s_run_t run;
    S_RUN (&run, "--version", NULL);
    cr_assert_eq (run.status, 0);
    cr_assert_str_eq (run.out, "jr-test " JR_VERSION "\n");
}

Test (opts, errors_carry_the_program_prefix)
{
    s_run_t run;
    S_RUN (&run, "--bogus", NULL);
    cr_assert_eq (run.status, 2);
    S_ERR_IS (&run, "jr-test: error: unknown flag --bogus (see --help)\n");
    S_RUN (&run, "--db", NULL);
    cr_assert_eq (run.status, 2);
    S_ERR_IS (&run, "jr-test: error: flag --db needs a value\n");
    S_RUN (&run, "--verbose=sometimes", NULL);
    cr_assert_eq (run.status, 2);
    cr_assert (strstr (run.err, "jr-test: error: --verbose=sometimes: not a boolean"), "%s",
               run.err);
}

Test (opts, a_bad_integer_names_where_it_came_from)
{
    setenv ("LEGACY_SLOTS", "4x", 1);
    s_then_int = true;
    s_run_t run;
    S_RUN (&run, NULL);
    cr_assert_eq (run.status, 2);
    S_ERR_IS (&run, "jr-test: error: --slots must be an integer from 1 to 64, not '4x' "
                    "(from $LEGACY_SLOTS)\n");
    unsetenv ("LEGACY_SLOTS");
    S_RUN (&run, "--config", s_file ("i.conf", "\nslots = 99\n"), NULL);
    cr_assert_eq (run.status, 2);
    cr_assert (strstr (run.err, "i.conf:2)"), "%s", run.err);
}
