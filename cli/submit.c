/*  submit.c - jr submit: one job from the command line, or one per JSON line of a file  */
#include "cli/cli.h"
#include "cli/json.h"
#include "common/mp.h"
#include "proto/proto.h"
#include <czmq.h>

#define JR_CLI_FILE_CHUNK 10000  //  jobs submitted at a time, then their lines printed

//  Build the vars map from key=value (a string) and key:=JSON (any value).
static void
s_vars_from_args (char **args, int nargs, msgpack_sbuffer *vars)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, vars, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, (size_t)nargs);
    for (int i = 0; i < nargs; i++) {
        const char *arg = args[i];
        const char *eq = strchr (arg, '=');
        if (!eq) {
            jr_cli_error ("'%s' is not key=value or key:=JSON", arg);
            exit (EXIT_USAGE);
        }
        bool typed = eq > arg && eq[-1] == ':';
        size_t keylen = (size_t)(eq - arg) - (typed ? 1 : 0);
        if (keylen == 0) {
            jr_cli_error ("'%s' has an empty key", arg);
            exit (EXIT_USAGE);
        }
        msgpack_pack_str (&pk, keylen);
        msgpack_pack_str_body (&pk, arg, keylen);
        const char *value = eq + 1;
        if (!typed) {
            msgpack_pack_str (&pk, strlen (value));
            msgpack_pack_str_body (&pk, value, strlen (value));
            continue;
        }
        char err[256];
        if (jr_json_to_msgpack (value, strlen (value), vars, err, sizeof err)) {
            jr_cli_error ("bad JSON for '%.*s': %s", (int)keylen, arg, err);
            exit (EXIT_USAGE);
        }
    }
}

typedef struct {
    int32_t priority;  //  defaults from the flags, per line overridable
    uint32_t timeout_ms;
    uint32_t max_attempts;
} defaults_t;

//  What is wrong with a --file line: the field (or NULL for the line as a
//  whole) and what.
typedef struct {
    char field[64];
    char what[256];
} problem_t;

static bool __attribute__ ((format (printf, 3, 4)))
s_problem (problem_t *problem, jr_bytes_t field, const char *format, ...)
{
    snprintf (problem->field, sizeof problem->field, "%.*s", (int)(field.len < 60 ? field.len : 60),
              field.ptr ? (const char *)field.ptr : "");
    va_list args;
    va_start (args, format);
    vsnprintf (problem->what, sizeof problem->what, format, args);
    va_end (args);
    return false;
}

static bool
s_line_u32 (jr_mp_t *reader, uint32_t *out)
{
    int64_t v;
    if (jr_mp_peek (reader) != JR_MP_INT || !jr_mp_int (reader, &v) || v < 0 || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

#define JR_CLI_LINE_FIELDS "task, vars, priority, deadline_ms (or timeout_ms), max_attempts, id"

//  Turn one line's msgpack (a JSON object) into a job whose views point
//  into that msgpack. True, or false with what is wrong in *problem.
static bool
s_job_from_line (jr_bytes_t mp, const defaults_t *defaults, jr_job_t *job, problem_t *problem)
{
    static const jr_bytes_t none = { NULL, 0 };
    memset (job, 0, sizeof *job);
    job->priority = defaults->priority;
    job->timeout_ms = defaults->timeout_ms;
    job->max_attempts = defaults->max_attempts;
    jr_mp_t reader;
    jr_mp_init (&reader, mp.ptr, mp.len);
    uint32_t n;
    if (jr_mp_peek (&reader) != JR_MP_MAP || !jr_mp_map (&reader, &n))
        return s_problem (problem, none, "not a JSON object");
    enum { TASK = 1, VARS = 2, PRIORITY = 4, DEADLINE = 8, ATTEMPTS = 16, ID = 32 };
    unsigned seen = 0;
    for (uint32_t i = 0; i < n; i++) {
        jr_bytes_t key;
        if (!jr_mp_str (&reader, &key))
            return s_problem (problem, none, "a key that is not a string");
#define KEY(k) (key.len == strlen (k) && memcmp (key.ptr, k, key.len) == 0)
        unsigned bit = KEY ("task")                                ? TASK
                       : KEY ("vars")                              ? VARS
                       : KEY ("priority")                          ? PRIORITY
                       : KEY ("deadline_ms") || KEY ("timeout_ms") ? DEADLINE
                       : KEY ("max_attempts")                      ? ATTEMPTS
                       : KEY ("id")                                ? ID
                                                                   : 0;
        if (!bit)
            return s_problem (problem, key, "unknown (the fields: %s)", JR_CLI_LINE_FIELDS);
        if (seen & bit)
            return s_problem (problem, key, "given twice%s",
                              bit == DEADLINE ? " (deadline_ms and timeout_ms are one field)" : "");
        seen |= bit;
        if (bit == TASK) {
            if (jr_mp_peek (&reader) != JR_MP_STR || !jr_mp_str (&reader, &job->task))
                return s_problem (problem, key, "must be a string");
            if (job->task.len == 0)
                return s_problem (problem, key, "must not be empty");
            if (job->task.len > JR_MAX_NAME)
                return s_problem (problem, key, "longer than %d bytes", JR_MAX_NAME);
        }
        else if (bit == VARS) {
            if (jr_mp_nil (&reader))
                job->vars = none;
            else if (jr_mp_peek (&reader) != JR_MP_MAP || !jr_mp_skip (&reader, &job->vars))
                return s_problem (problem, key, "must be an object");
            else if (job->vars.len > JR_MAX_VARS)
                return s_problem (problem, key, "larger than %d bytes", JR_MAX_VARS);
        }
        else if (bit == PRIORITY) {
            int64_t v;
            if (jr_mp_peek (&reader) != JR_MP_INT || !jr_mp_int (&reader, &v) || v < INT32_MIN
                || v > INT32_MAX)
                return s_problem (problem, key, "must be an integer from %d to %d", INT32_MIN,
                                  INT32_MAX);
            job->priority = (int32_t)v;
        }
        else if (bit == DEADLINE || bit == ATTEMPTS) {
            if (!s_line_u32 (&reader, bit == DEADLINE ? &job->timeout_ms : &job->max_attempts))
                return s_problem (problem, key, "must be an integer from 0 to %u", UINT32_MAX);
        }
        else {
            //  Lets a rerun of the same file resubmit idempotently.
            jr_bytes_t text;
            char buf[37];
            if (jr_mp_peek (&reader) != JR_MP_STR || !jr_mp_str (&reader, &text) || text.len != 36)
                return s_problem (problem, key, "must be a UUID string");
            memcpy (buf, text.ptr, 36);
            buf[36] = 0;
            if (jr_id_parse (buf, job->id))
                return s_problem (problem, key, "must be a UUID string");
        }
#undef KEY
    }
    if (!(seen & TASK))
        return s_problem (problem, (jr_bytes_t){ (const uint8_t *)"task", 4 }, "missing");
    return true;
}

//  One input line of --file, as read and checked.
typedef struct {
    char *mp;      //  the line's msgpack, which job points into; NULL: blank or bad
    jr_job_t job;  //  valid if mp
    bool bad;      //  a line that did not parse or check
    int code;      //  the broker's answer: 0 accepted, else why not
} line_t;

//  Print the stdout lines of lines[from..to): the id, '-' or nothing.
static void
s_print_lines (const line_t *lines, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        if (lines[i].mp && lines[i].code == 0) {
            char id[37];
            jr_id_format (lines[i].job.id, id);
            puts (id);
        }
        else
            puts (lines[i].mp || lines[i].bad ? "-" : "");
    }
    fflush (stdout);
}

//  Read and check every line of path; false if it cannot be read.
static bool
s_read_lines (const char *path, const char *name, const defaults_t *defaults, line_t **lines_p,
              size_t *count_p, size_t *bad_p)
{
    FILE *file = strcmp (path, "-") == 0 ? stdin : fopen (path, "r");
    if (!file) {
        jr_cli_error ("cannot open %s: %s", path, strerror (errno));
        return false;
    }
    line_t *lines = NULL;
    size_t count = 0, cap_lines = 0, bad = 0;
    char *text = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline (&text, &cap, file)) != -1) {
        if (count == cap_lines) {
            cap_lines = cap_lines ? 2 * cap_lines : 1024;
            lines = realloc (lines, cap_lines * sizeof *lines);
            assert (lines);
        }
        line_t *line = &lines[count++];
        memset (line, 0, sizeof *line);
        if ((ssize_t)strspn (text, " \t\r\n") == len)
            continue;  //  blank: skipped, an empty output line
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
            len--;
        msgpack_sbuffer mp;
        msgpack_sbuffer_init (&mp);
        char err[256];
        problem_t problem = { "", "" };
        bool ok = false;
        if (jr_json_to_msgpack (text, (size_t)len, &mp, err, sizeof err))
            //  A line is one line of JSON: its "line 1 column C" is the column.
            snprintf (problem.what, sizeof problem.what, "%s",
                      strncmp (err, "line 1 ", 7) == 0 ? err + 7 : err);
        else
            ok = s_job_from_line ((jr_bytes_t){ (const uint8_t *)mp.data, mp.size }, defaults,
                                  &line->job, &problem);
        if (!ok) {
            if (problem.field[0])
                jr_cli_error ("%s:%zu: field %s: %s", name, count, problem.field, problem.what);
            else
                jr_cli_error ("%s:%zu: %s", name, count, problem.what);
            msgpack_sbuffer_destroy (&mp);
            line->bad = true;
            bad++;
            continue;
        }
        line->mp = msgpack_sbuffer_release (&mp);
    }
    bool failed = ferror (file);
    if (failed)
        jr_cli_error ("cannot read %s: %s", path, strerror (errno));
    free (text);
    if (file != stdin)
        fclose (file);
    *lines_p = lines;
    *count_p = count;
    *bad_p = bad;
    return !failed;
}

//  The worse of two exit codes: a server's trouble over a job's.
static int
s_worse (int result, int rc)
{
    if (rc == EXIT_OK)
        return result;
    if (result == EXIT_OK || result == EXIT_FAILED)
        return rc;
    return result;
}

//  Free what s_read_lines made.
static void
s_free_lines (line_t *lines, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free (lines[i].mp);
    free (lines);
}

static int
s_submit_file (jr_opt_t *opts, const char *path, const defaults_t *defaults, bool wait,
               int wait_timeout, bool keep_going)
{
    const char *name = strcmp (path, "-") == 0 ? "stdin" : path;
    line_t *lines = NULL;
    size_t count = 0, bad = 0;
    if (!s_read_lines (path, name, defaults, &lines, &count, &bad)) {
        s_free_lines (lines, count);
        return EXIT_USAGE;
    }
    if (bad && !keep_going) {
        jr_cli_error ("%s: %zu bad line%s: nothing submitted (--keep-going submits the good ones)",
                      name, bad, bad == 1 ? "" : "s");
        s_free_lines (lines, count);
        return EXIT_USAGE;
    }
    int result = bad ? EXIT_FAILED : EXIT_OK;
    size_t good = 0;
    for (size_t i = 0; i < count; i++)
        good += lines[i].mp != NULL;
    if (good == 0) {  //  nothing to submit: no server needed
        s_print_lines (lines, 0, count);
        s_free_lines (lines, count);
        return result;
    }
    jr_client_t *client = jr_cli_client (opts, "answer-timeout");
    int rc = jr_cli_reach (client, opts, JR_CLI_BROKER | (wait ? JR_CLI_INGESTER : 0));
    if (rc) {
        jr_cli_client_done (&client);
        s_free_lines (lines, count);
        return rc;
    }
    //  Submit chunk by chunk, printing each chunk's lines once answered.
    jr_job_t *jobs = malloc (JR_CLI_FILE_CHUNK * sizeof *jobs);
    size_t *of = malloc (JR_CLI_FILE_CHUNK * sizeof *of);
    int *codes = malloc (JR_CLI_FILE_CHUNK * sizeof *codes);
    assert (jobs && of && codes);
    uint8_t (*ids)[JR_ID_SIZE] = NULL;
    size_t nids = 0, printed = 0;
    jr_progress_t progress;
    jr_progress_start (&progress, "submitted", good);
    for (size_t at = 0; at < count;) {
        size_t n = 0;
        for (; at < count && n < JR_CLI_FILE_CHUNK; at++)
            if (lines[at].mp) {
                of[n] = at;
                jobs[n++] = lines[at].job;
            }
        jr_client_submit_many (client, jobs, n, codes);
        jr_progress_add (&progress, n);
        for (size_t i = 0; i < n; i++) {
            line_t *line = &lines[of[i]];
            line->code = codes[i];
            memcpy (line->job.id, jobs[i].id, JR_ID_SIZE);  //  made by the client if none
            if (codes[i] == 0) {
                if (wait) {
                    ids = realloc (ids, (nids + 1) * sizeof *ids);
                    assert (ids);
                    memcpy (ids[nids++], jobs[i].id, JR_ID_SIZE);
                }
                continue;
            }
            char id[37];
            jr_id_format (jobs[i].id, id);
            jr_progress_hide (&progress);
            const char *detail = codes[i] == JR_ETIMEOUT ? jr_client_error (client) : "";
            jr_cli_error ("%s:%zu: job %s not accepted: %s (%s)%s%s", name, of[i] + 1, id,
                          jr_errname (codes[i]), jr_strerror (codes[i]), *detail ? ": " : "",
                          detail);
            result = s_worse (result, jr_cli_exit_code (codes[i]));
        }
        if (isatty (STDOUT_FILENO))
            jr_progress_hide (&progress);
        s_print_lines (lines, printed, at);
        printed = at;
    }
    jr_progress_end (&progress);
    free (jobs);
    free (of);
    free (codes);
    s_free_lines (lines, count);
    if (wait && nids) {
        jr_cli_printer_t printer = { .progress = &progress };
        jr_progress_start (&progress, "results", nids);
        rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, nids, wait_timeout,
                                  jr_cli_print_result, &printer);
        jr_progress_end (&progress);
        if (rc == JR_ETIMEOUT && printer.printed < nids)
            jr_cli_error ("%zu of %zu results did not come in --wait-timeout %d ms",
                          nids - printer.printed, nids, wait_timeout);
        else if (rc)
            jr_cli_report (client, "waiting for results", rc);
        result = s_worse (result, rc ? jr_cli_exit_code (rc) : EXIT_OK);
        if (printer.failed)
            result = s_worse (result, EXIT_FAILED);
    }
    free (ids);
    jr_cli_client_done (&client);
    return result;
}

#define JR_CLI_UNSERVED_MS 3000  //  --wait asks the broker why after this long

//  jr_client_wait, but a job still without a result after a few seconds is
//  looked up: if it waits for a worker of its task, say so once on stderr.
static int
s_wait_one (jr_client_t *client, const uint8_t id[JR_ID_SIZE], int timeout_ms, jr_job_t **done)
{
    if (timeout_ms >= 0 && timeout_ms <= JR_CLI_UNSERVED_MS)
        return jr_client_wait (client, id, timeout_ms, done);
    int rc = jr_client_wait (client, id, JR_CLI_UNSERVED_MS, done);
    if (rc != JR_ETIMEOUT)
        return rc;
    int state = 0;
    char note[JR_MAX_NOTE + 1];
    static const char unserved[] = "no worker serves task ";
    if (jr_client_progress (client, id, &state, NULL, NULL, note, sizeof note) == 0
        && state == JR_STATE_QUEUED && strncmp (note, unserved, strlen (unserved)) == 0) {
        char text[37];
        jr_id_format (id, text);
        fprintf (stderr, "jr: job %s is queued: %s\n", text, note);
    }
    return jr_client_wait (client, id, timeout_ms < 0 ? -1 : timeout_ms - JR_CLI_UNSERVED_MS, done);
}

int
jr_cli_submit (jr_opt_t *opts, int nargs, char **argv)
{
    //  argv[0] is "jr", argv[1] "submit"
    defaults_t defaults = {
        .priority = (int32_t)jr_opts_int (jr_cli_opt (opts, "priority"), INT32_MIN, INT32_MAX),
        .timeout_ms = (uint32_t)jr_opts_int (jr_cli_opt (opts, "deadline"), 0, UINT32_MAX),
        .max_attempts = (uint32_t)jr_opts_int (jr_cli_opt (opts, "max-attempts"), 0, UINT32_MAX),
    };
    bool wait = jr_cli_opt (opts, "wait")->value != NULL;
    bool keep_going = jr_cli_opt (opts, "keep-going")->value != NULL;
    int wait_timeout = (int)jr_opts_int (jr_cli_opt (opts, "wait-timeout"), -1, INT_MAX);
    (void)jr_opts_int (jr_cli_opt (opts, "answer-timeout"), 1, INT_MAX);  //  a usage error first
    (void)jr_opts_int (jr_cli_opt (opts, "connect-timeout"), 1, INT_MAX);
    const char *file = jr_cli_opt (opts, "file")->value;
    if (file) {
        if (nargs > 2) {
            jr_cli_error ("--file takes no TASK or vars (see jr submit --help)");
            return EXIT_USAGE;
        }
        return s_submit_file (opts, file, &defaults, wait, wait_timeout, keep_going);
    }
    if (keep_going) {
        jr_cli_error ("--keep-going goes with --file (see jr submit --help)");
        return EXIT_USAGE;
    }
    if (nargs < 3) {
        jr_cli_error ("submit needs a TASK (see jr submit --help)");
        return EXIT_USAGE;
    }
    const char *task = argv[2];
    if (!*task || strlen (task) > JR_MAX_NAME) {
        jr_cli_error ("a task name is 1 to %d bytes", JR_MAX_NAME);
        return EXIT_USAGE;
    }
    msgpack_sbuffer vars;
    msgpack_sbuffer_init (&vars);
    if (nargs > 3)
        s_vars_from_args (argv + 3, nargs - 3, &vars);
    jr_client_t *client = jr_cli_client (opts, "answer-timeout");
    int result = jr_cli_reach (client, opts, JR_CLI_BROKER | (wait ? JR_CLI_INGESTER : 0));
    if (result) {
        jr_cli_client_done (&client);
        msgpack_sbuffer_destroy (&vars);
        return result;
    }
    jr_job_t job;
    jr_job_init (&job, task);
    job.vars = (jr_bytes_t){ (const uint8_t *)vars.data, vars.size };
    job.priority = defaults.priority;
    job.timeout_ms = defaults.timeout_ms;
    job.max_attempts = defaults.max_attempts;
    int rc = jr_client_submit (client, &job);
    char id[37];
    jr_id_format (job.id, id);
    if (rc) {
        char what[80];
        snprintf (what, sizeof what, "job %s not accepted", id);
        jr_cli_report (client, what, rc);
        result = jr_cli_exit_code (rc);
    }
    else if (!wait) {
        printf ("%s\n", id);
        fflush (stdout);
    }
    else {
        //  stdout gets one JSON document, the result; the id goes to
        //  stderr, so a job waited for in vain can still be looked up.
        fprintf (stderr, "%s\n", id);
        jr_job_t *done = NULL;
        rc = s_wait_one (client, job.id, wait_timeout, &done);
        if (rc == JR_ETIMEOUT)
            jr_cli_error ("job %s: no result in --wait-timeout %d ms (jr wait %s waits on)", id,
                          wait_timeout, id);
        else if (rc)
            jr_cli_report (client, "waiting for the result", rc);
        else {
            jr_json_print_job (done, stdout);
            fputc ('\n', stdout);
            fflush (stdout);
            result = done->success ? EXIT_OK : EXIT_FAILED;
            jr_job_destroy (&done);
        }
        if (rc)
            result = jr_cli_exit_code (rc);
    }
    jr_cli_client_done (&client);
    msgpack_sbuffer_destroy (&vars);
    return result;
}
