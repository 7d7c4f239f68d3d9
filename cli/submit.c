/*  submit.c - jr submit: one job from the command line, or one per JSON line of a file  */
#include "cli/cli.h"
#include "cli/json.h"
#include "common/mp.h"
#include "proto/proto.h"
#include <czmq.h>

#define JR_CLI_FILE_CHUNK 10000  //  lines read, then submitted, at a time

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
            fprintf (stderr, "jr: '%s' is not key=value or key:=JSON\n", arg);
            exit (EXIT_USAGE);
        }
        bool typed = eq > arg && eq[-1] == ':';
        size_t keylen = (size_t)(eq - arg) - (typed ? 1 : 0);
        if (keylen == 0) {
            fprintf (stderr, "jr: '%s' has an empty key\n", arg);
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
            fprintf (stderr, "jr: bad JSON for '%.*s': %s\n", (int)keylen, arg, err);
            exit (EXIT_USAGE);
        }
    }
}

typedef struct {
    int32_t priority;  //  defaults from the flags, per line overridable
    uint32_t timeout_ms;
    uint32_t max_attempts;
} defaults_t;

static bool
s_line_u32 (jr_mp_t *reader, uint32_t *out)
{
    int64_t v;
    if (!jr_mp_int (reader, &v) || v < 0 || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

//  Turn one line's msgpack (a JSON object) into a job whose views point
//  into that msgpack. Returns NULL or a message about what is wrong.
static const char *
s_job_from_line (jr_bytes_t mp, const defaults_t *defaults, jr_job_t *job)
{
    memset (job, 0, sizeof *job);
    job->priority = defaults->priority;
    job->timeout_ms = defaults->timeout_ms;
    job->max_attempts = defaults->max_attempts;
    jr_mp_t reader;
    jr_mp_init (&reader, mp.ptr, mp.len);
    uint32_t n;
    if (jr_mp_peek (&reader) != JR_MP_MAP || !jr_mp_map (&reader, &n))
        return "not a JSON object";
    for (uint32_t i = 0; i < n; i++) {
        jr_bytes_t key;
        if (!jr_mp_str (&reader, &key))
            return "bad key";
#define KEY(k) (key.len == strlen (k) && memcmp (key.ptr, k, key.len) == 0)
        if (KEY ("task")) {
            if (!jr_mp_str (&reader, &job->task) || job->task.len == 0
                || job->task.len > JR_MAX_NAME)
                return "\"task\" must be a non-empty string";
        }
        else if (KEY ("vars")) {
            if (jr_mp_nil (&reader))
                job->vars = (jr_bytes_t){ NULL, 0 };
            else if (jr_mp_peek (&reader) != JR_MP_MAP || !jr_mp_skip (&reader, &job->vars))
                return "\"vars\" must be an object";
        }
        else if (KEY ("priority")) {
            int64_t v;
            if (!jr_mp_int (&reader, &v) || v < INT32_MIN || v > INT32_MAX)
                return "\"priority\" must be a 32-bit integer";
            job->priority = (int32_t)v;
        }
        else if (KEY ("timeout_ms")) {
            if (!s_line_u32 (&reader, &job->timeout_ms))
                return "\"timeout_ms\" must be an integer from 0";
        }
        else if (KEY ("max_attempts")) {
            if (!s_line_u32 (&reader, &job->max_attempts))
                return "\"max_attempts\" must be an integer from 0";
        }
        else if (KEY ("id")) {
            //  Lets a rerun of the same file resubmit idempotently.
            jr_bytes_t text;
            char buf[37];
            if (!jr_mp_str (&reader, &text) || text.len != 36)
                return "\"id\" must be a UUID string";
            memcpy (buf, text.ptr, 36);
            buf[36] = 0;
            if (jr_id_parse (buf, job->id))
                return "\"id\" must be a UUID string";
        }
        else
            return "unknown field (task, vars, priority, timeout_ms, max_attempts, id)";
#undef KEY
    }
    if (job->task.len == 0)
        return "\"task\" is missing";
    return NULL;
}

typedef struct {
    jr_job_t *jobs;  //  parsed jobs of this chunk
    char **owned;    //  msgpack each job points into
    size_t *lines;   //  line number of each job
    size_t count;
} chunk_t;

//  Submit a chunk; print the ids accepted, keep them for --wait.
static int
s_submit_chunk (jr_client_t *client, chunk_t *chunk, uint8_t (**ids)[JR_ID_SIZE], size_t *nids,
                bool keep_ids)
{
    int result = EXIT_OK;
    int *codes = malloc ((chunk->count ? chunk->count : 1) * sizeof *codes);
    assert (codes);
    jr_client_submit_many (client, chunk->jobs, chunk->count, codes);
    for (size_t i = 0; i < chunk->count; i++) {
        char id[37];
        jr_id_format (chunk->jobs[i].id, id);
        if (codes[i] == 0) {
            printf ("%s\n", id);
            if (keep_ids) {
                *ids = realloc (*ids, (*nids + 1) * sizeof **ids);
                assert (*ids);
                memcpy ((*ids)[(*nids)++], chunk->jobs[i].id, JR_ID_SIZE);
            }
        }
        else {
            fprintf (stderr, "jr: line %zu: job %s refused: %s (%s)\n", chunk->lines[i], id,
                     jr_errname (codes[i]), jr_strerror (codes[i]));
            if (result == EXIT_OK || codes[i] == JR_ETIMEOUT)
                result = jr_cli_exit_code (codes[i]);
        }
        free (chunk->owned[i]);
    }
    fflush (stdout);
    chunk->count = 0;
    free (codes);
    return result;
}

static int
s_submit_file (jr_client_t *client, const char *path, const defaults_t *defaults, bool wait,
               int wait_timeout)
{
    FILE *file = strcmp (path, "-") == 0 ? stdin : fopen (path, "r");
    if (!file) {
        fprintf (stderr, "jr: cannot open %s: %s\n", path, strerror (errno));
        return EXIT_FAILED;
    }
    chunk_t chunk = { 0 };
    chunk.jobs = malloc (JR_CLI_FILE_CHUNK * sizeof *chunk.jobs);
    chunk.owned = malloc (JR_CLI_FILE_CHUNK * sizeof *chunk.owned);
    chunk.lines = malloc (JR_CLI_FILE_CHUNK * sizeof *chunk.lines);
    assert (chunk.jobs && chunk.owned && chunk.lines);
    uint8_t (*ids)[JR_ID_SIZE] = NULL;
    size_t nids = 0, lineno = 0;
    int result = EXIT_OK;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline (&line, &cap, file)) != -1) {
        lineno++;
        size_t skip = strspn (line, " \t\r\n");
        if ((ssize_t)skip == len)
            continue;  //  blank lines are allowed
        msgpack_sbuffer mp;
        msgpack_sbuffer_init (&mp);
        char err[256];
        const char *problem = NULL;
        jr_job_t *job = &chunk.jobs[chunk.count];
        if (jr_json_to_msgpack (line, (size_t)len, &mp, err, sizeof err))
            problem = err;
        else
            problem =
                s_job_from_line ((jr_bytes_t){ (const uint8_t *)mp.data, mp.size }, defaults, job);
        if (problem) {
            //  A line is one line of JSON: name the file's line, not "line 1".
            if (strncmp (problem, "line 1 column ", 14) == 0)
                fprintf (stderr, "jr: line %zu column %s\n", lineno, problem + 14);
            else
                fprintf (stderr, "jr: line %zu: %s\n", lineno, problem);
            msgpack_sbuffer_destroy (&mp);
            if (result == EXIT_OK)
                result = EXIT_FAILED;
            continue;
        }
        chunk.lines[chunk.count] = lineno;
        chunk.owned[chunk.count++] = msgpack_sbuffer_release (&mp);
        if (chunk.count == JR_CLI_FILE_CHUNK) {
            int rc = s_submit_chunk (client, &chunk, &ids, &nids, wait);
            if (rc != EXIT_OK && (result == EXIT_OK || rc == EXIT_TIMEOUT))
                result = rc;
        }
    }
    free (line);
    if (file != stdin)
        fclose (file);
    if (chunk.count) {
        int rc = s_submit_chunk (client, &chunk, &ids, &nids, wait);
        if (rc != EXIT_OK && (result == EXIT_OK || rc == EXIT_TIMEOUT))
            result = rc;
    }
    free (chunk.jobs);
    free (chunk.owned);
    free (chunk.lines);
    if (wait && nids) {
        jr_cli_printer_t printer = { 0 };
        int rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, nids,
                                      wait_timeout, jr_cli_print_result, &printer);
        if (rc) {
            jr_cli_report (client, "waiting for results", rc);
            result = jr_cli_exit_code (rc);
        }
        else if (printer.failed && result == EXIT_OK)
            result = EXIT_FAILED;
    }
    free (ids);
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
        .timeout_ms = (uint32_t)jr_opts_int (jr_cli_opt (opts, "timeout"), 0, UINT32_MAX),
        .max_attempts = (uint32_t)jr_opts_int (jr_cli_opt (opts, "max-attempts"), 0, UINT32_MAX),
    };
    bool wait = jr_cli_opt (opts, "wait")->value != NULL;
    int wait_timeout = (int)jr_opts_int (jr_cli_opt (opts, "wait-timeout"), -1, INT_MAX);
    if (jr_cli_opt (opts, "file")->value) {
        if (nargs > 2) {
            fprintf (stderr, "jr: --file takes no TASK or vars (see jr submit --help)\n");
            return EXIT_USAGE;
        }
        jr_client_t *client = jr_cli_client (opts, "answer-timeout");
        int rc =
            s_submit_file (client, jr_cli_opt (opts, "file")->value, &defaults, wait, wait_timeout);
        jr_cli_client_done (&client);
        return rc;
    }
    if (nargs < 3) {
        fprintf (stderr, "jr: submit needs a TASK (see jr submit --help)\n");
        return EXIT_USAGE;
    }
    const char *task = argv[2];
    if (strlen (task) > JR_MAX_NAME) {
        fprintf (stderr, "jr: task name longer than %d bytes\n", JR_MAX_NAME);
        return EXIT_USAGE;
    }
    msgpack_sbuffer vars;
    msgpack_sbuffer_init (&vars);
    if (nargs > 3)
        s_vars_from_args (argv + 3, nargs - 3, &vars);
    jr_client_t *client = jr_cli_client (opts, "answer-timeout");
    jr_job_t job;
    jr_job_init (&job, task);
    job.vars = (jr_bytes_t){ (const uint8_t *)vars.data, vars.size };
    job.priority = defaults.priority;
    job.timeout_ms = defaults.timeout_ms;
    job.max_attempts = defaults.max_attempts;
    int result = EXIT_OK;
    int rc = jr_client_submit (client, &job);
    char id[37];
    jr_id_format (job.id, id);
    if (rc) {
        char what[80];
        snprintf (what, sizeof what, "job %s not accepted", id);
        jr_cli_report (client, what, rc);
        result = jr_cli_exit_code (rc);
    }
    else {
        printf ("%s\n", id);
        fflush (stdout);
        if (wait) {
            jr_job_t *done = NULL;
            rc = s_wait_one (client, job.id, wait_timeout, &done);
            if (rc) {
                jr_cli_report (client, "waiting for the result", rc);
                result = jr_cli_exit_code (rc);
            }
            else {
                jr_json_print_job (done, stdout);
                fputc ('\n', stdout);
                result = done->success ? EXIT_OK : EXIT_FAILED;
                jr_job_destroy (&done);
            }
        }
    }
    jr_cli_client_done (&client);
    msgpack_sbuffer_destroy (&vars);
    return result;
}
