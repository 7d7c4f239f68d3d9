/*  jr_main.c - the jr command line: submit jobs, wait for them, read results and states, cancel, list, retry  */
#include "cli/json.h"
#include "common/mp.h"
#include "common/opts.h"
#include "proto/proto.h"
#include <czmq.h>

//  Exit codes: 0 done (and the job succeeded), 1 failed or refused, 2 bad
//  usage, 3 timed out.
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 3 };

#define JR_CLI_FILE_CHUNK 10000  //  lines read, then submitted, at a time

//  The flags every command takes.
#define GLOBAL_OPTS                                                                                \
    { "broker", "JR_BROKER", JR_DEFAULT_BROKER, "broker endpoint", false, NULL },                  \
    {                                                                                              \
        "ingester", "JR_INGESTER", JR_DEFAULT_INGESTER, "ingester endpoint", false, NULL           \
    }

static int
s_exit_code (int rc)
{
    return rc == JR_ETIMEOUT ? EXIT_TIMEOUT : EXIT_FAILED;
}

static void
s_report (const char *what, int rc)
{
    fprintf (stderr, "jr: %s: %s (%s)\n", what, jr_errname (rc), jr_strerror (rc));
}

//  A flag of the running command by name; every name asked for is in its
//  row of s_commands.
static const jr_opt_t *
s_opt (const jr_opt_t *opts, const char *name)
{
    for (; opts->name; opts++)
        if (strcmp (opts->name, name) == 0)
            return opts;
    assert (!"a command asked for a flag it does not have");
    return NULL;
}

//  A client on --broker and --ingester, answers awaited for the flag named
//  answer.
static jr_client_t *
s_client (const jr_opt_t *opts, const char *answer)
{
    const char *broker = s_opt (opts, "broker")->value;
    const char *ingester = s_opt (opts, "ingester")->value;
    jr_client_t *client = jr_client_new (broker, ingester);
    if (!client) {
        fprintf (stderr, "jr: bad endpoint: --broker %s --ingester %s\n", broker, ingester);
        exit (EXIT_USAGE);
    }
    jr_client_set_timeout (client, (int)jr_opts_int (s_opt (opts, answer), 1, INT_MAX));
    return client;
}

static int
s_parse_id (const char *text, uint8_t id[JR_ID_SIZE])
{
    if (jr_id_parse (text, id)) {
        fprintf (stderr, "jr: '%s' is not a job id (a UUID)\n", text);
        exit (EXIT_USAGE);
    }
    return 0;
}

//  -------------------------------------------------------------------------
//  Results printed as they come

typedef struct {
    size_t failed;   //  results with success false
    size_t printed;  //  results printed
} printer_t;

static bool
s_print_result (const jr_job_t *job, void *arg)
{
    printer_t *printer = arg;
    jr_json_print_job (job, stdout);
    fputc ('\n', stdout);
    fflush (stdout);
    printer->printed++;
    if (!job->success)
        printer->failed++;
    return true;
}

//  -------------------------------------------------------------------------
//  submit

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
                result = s_exit_code (codes[i]);
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
        printer_t printer = { 0 };
        int rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, nids,
                                      wait_timeout, s_print_result, &printer);
        if (rc) {
            s_report ("waiting for results", rc);
            result = s_exit_code (rc);
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

static int
s_cmd_submit (jr_opt_t *opts, int nargs, char **argv)
{
    //  argv[0] is "jr", argv[1] "submit"
    defaults_t defaults = {
        .priority = (int32_t)jr_opts_int (s_opt (opts, "priority"), INT32_MIN, INT32_MAX),
        .timeout_ms = (uint32_t)jr_opts_int (s_opt (opts, "timeout"), 0, UINT32_MAX),
        .max_attempts = (uint32_t)jr_opts_int (s_opt (opts, "max-attempts"), 0, UINT32_MAX),
    };
    bool wait = s_opt (opts, "wait")->value != NULL;
    int wait_timeout = (int)jr_opts_int (s_opt (opts, "wait-timeout"), -1, INT_MAX);
    if (s_opt (opts, "file")->value) {
        if (nargs > 2) {
            fprintf (stderr, "jr: --file takes no TASK or vars (see jr submit --help)\n");
            return EXIT_USAGE;
        }
        jr_client_t *client = s_client (opts, "answer-timeout");
        int rc = s_submit_file (client, s_opt (opts, "file")->value, &defaults, wait, wait_timeout);
        jr_client_destroy (&client);
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
    jr_client_t *client = s_client (opts, "answer-timeout");
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
        fprintf (stderr, "jr: job %s not accepted: %s (%s)\n", id, jr_errname (rc),
                 jr_strerror (rc));
        result = s_exit_code (rc);
    }
    else {
        printf ("%s\n", id);
        fflush (stdout);
        if (wait) {
            jr_job_t *done = NULL;
            rc = s_wait_one (client, job.id, wait_timeout, &done);
            if (rc) {
                s_report ("waiting for the result", rc);
                result = s_exit_code (rc);
            }
            else {
                jr_json_print_job (done, stdout);
                fputc ('\n', stdout);
                result = done->success ? EXIT_OK : EXIT_FAILED;
                jr_job_destroy (&done);
            }
        }
    }
    jr_client_destroy (&client);
    msgpack_sbuffer_destroy (&vars);
    return result;
}

//  -------------------------------------------------------------------------
//  wait, result, status

static int
s_cmd_wait (jr_opt_t *opts, int nargs, char **argv)
{
    if (nargs < 3) {
        fprintf (stderr, "jr: wait needs at least one ID\n");
        return EXIT_USAGE;
    }
    size_t n = (size_t)nargs - 2;
    uint8_t (*ids)[JR_ID_SIZE] = malloc (n * sizeof *ids);
    assert (ids);
    for (size_t i = 0; i < n; i++)
        s_parse_id (argv[2 + i], ids[i]);
    jr_client_t *client = s_client (opts, "timeout");
    printer_t printer = { 0 };
    int rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, n,
                                  (int)jr_opts_int (s_opt (opts, "wait-timeout"), -1, INT_MAX),
                                  s_print_result, &printer);
    jr_client_destroy (&client);
    free (ids);
    if (rc) {
        s_report ("waiting for results", rc);
        return s_exit_code (rc);
    }
    return printer.failed ? EXIT_FAILED : EXIT_OK;
}

static int
s_cmd_result (jr_opt_t *opts, int nargs, char **argv)
{
    if (nargs != 3) {
        fprintf (stderr, "jr: result needs one ID\n");
        return EXIT_USAGE;
    }
    uint8_t id[JR_ID_SIZE];
    s_parse_id (argv[2], id);
    jr_client_t *client = s_client (opts, "timeout");
    jr_job_t *job = NULL;
    int rc = jr_client_result (client, id, &job);
    jr_client_destroy (&client);
    if (rc == JR_ENOT_FOUND) {
        fprintf (stderr, "jr: no result for %s\n", argv[2]);
        return EXIT_FAILED;
    }
    if (rc) {
        s_report ("asking the ingester", rc);
        return s_exit_code (rc);
    }
    jr_json_print_job (job, stdout);
    fputc ('\n', stdout);
    jr_job_destroy (&job);
    return EXIT_OK;
}

//  The state of a stored result (rows of older ingesters say only success).
static int
s_row_state (const jr_job_t *job)
{
    if (job->state > JR_STATE_UNKNOWN)
        return job->state;
    return job->success ? JR_STATE_SUCCEEDED : JR_STATE_FAILED;
}

//  A state from which a job moves no more (unless a dead one is retried).
static bool
s_finished (int state)
{
    return state == JR_STATE_SUCCEEDED || state == JR_STATE_FAILED || state == JR_STATE_DEAD
           || state == JR_STATE_CANCELLED || state == JR_STATE_EXPIRED;
}

static int
s_cmd_status (jr_opt_t *opts, int nargs, char **argv)
{
    if (nargs != 3) {
        fprintf (stderr, "jr: status needs one ID\n");
        return EXIT_USAGE;
    }
    uint8_t id[JR_ID_SIZE];
    s_parse_id (argv[2], id);
    jr_client_t *client = s_client (opts, "timeout");
    //  A stored result is final; only then is the broker's word needed.
    jr_job_t *job = NULL;
    int state = JR_STATE_UNKNOWN;
    uint32_t attempt = 0;
    int32_t value = 0;
    char message[JR_MAX_NOTE + 1] = "";
    int rc = jr_client_result (client, id, &job);
    if (rc == 0) {
        state = s_row_state (job);
        attempt = job->attempt;
        jr_job_destroy (&job);
        if (!s_finished (state)) {
            //  A failed attempt to be retried: the broker holds the job and
            //  knows what it does now. If it cannot say, the row still can.
            int now = JR_STATE_UNKNOWN;
            uint32_t now_attempt = 0;
            int32_t now_value = 0;
            char now_message[JR_MAX_NOTE + 1] = "";
            int brc = jr_client_progress (client, id, &now, &now_attempt, &now_value, now_message,
                                          sizeof now_message);
            if (brc)
                s_report ("asking the broker", brc);
            else if (now != JR_STATE_UNKNOWN) {
                state = now;
                attempt = now_attempt;
                value = now_value;
                memcpy (message, now_message, sizeof message);
            }
        }
    }
    else {
        if (rc != JR_ENOT_FOUND)
            s_report ("asking the ingester", rc);
        rc = jr_client_progress (client, id, &state, &attempt, &value, message, sizeof message);
    }
    jr_client_destroy (&client);
    if (rc) {
        s_report ("asking the broker", rc);
        return s_exit_code (rc);
    }
    printf ("{\"id\":\"%s\",\"state\":\"%s\",\"attempt\":%u", argv[2], jr_state_name (state),
            attempt);
    if (state == JR_STATE_RUNNING && (value != 0 || message[0])) {
        printf (",\"progress\":{\"value\":%d,\"message\":", (int)value);
        jr_json_print_bytes ((jr_bytes_t){ (const uint8_t *)message, strlen (message) }, stdout);
        fputc ('}', stdout);
    }
    else if (state == JR_STATE_QUEUED && message[0]) {  //  why it waits
        fputs (",\"note\":", stdout);
        jr_json_print_bytes ((jr_bytes_t){ (const uint8_t *)message, strlen (message) }, stdout);
    }
    fputs ("}\n", stdout);
    return EXIT_OK;
}

//  -------------------------------------------------------------------------
//  cancel, list, retry

//  Parse the one ID of a command that takes exactly one.
static void
s_one_id (int nargs, char **argv, const char *command, uint8_t id[JR_ID_SIZE])
{
    if (nargs != 3) {
        fprintf (stderr, "jr: %s needs one ID\n", command);
        exit (EXIT_USAGE);
    }
    s_parse_id (argv[2], id);
}

static void
s_print_state (const char *id, int state)
{
    printf ("{\"id\":\"%s\",\"state\":\"%s\"}\n", id, jr_state_name (state));
}

static int
s_cmd_cancel (jr_opt_t *opts, int nargs, char **argv)
{
    uint8_t id[JR_ID_SIZE];
    s_one_id (nargs, argv, "cancel", id);
    jr_client_t *client = s_client (opts, "timeout");
    int state = JR_STATE_UNKNOWN;
    int rc = jr_client_cancel (client, id, &state);
    if (rc == 0 && state == JR_STATE_UNKNOWN) {
        //  The broker forgets finished jobs: the ingester may know how it ended.
        jr_job_t *job = NULL;
        if (jr_client_result (client, id, &job) == 0) {
            if (s_finished (s_row_state (job)))
                state = s_row_state (job);
            jr_job_destroy (&job);
        }
    }
    jr_client_destroy (&client);
    if (rc) {
        s_report ("asking the broker", rc);
        return s_exit_code (rc);
    }
    if (state == JR_STATE_CANCELLED) {
        s_print_state (argv[2], state);
        return EXIT_OK;
    }
    if (state == JR_STATE_UNKNOWN)
        fprintf (stderr, "jr: job %s is not known\n", argv[2]);
    else if (s_finished (state))
        fprintf (stderr, "jr: job %s already %s\n", argv[2], jr_state_name (state));
    else
        fprintf (stderr, "jr: job %s is %s, not cancelled\n", argv[2], jr_state_name (state));
    return EXIT_FAILED;
}

static int
s_cmd_retry (jr_opt_t *opts, int nargs, char **argv)
{
    uint8_t id[JR_ID_SIZE];
    s_one_id (nargs, argv, "retry", id);
    jr_client_t *client = s_client (opts, "timeout");
    int state = JR_STATE_UNKNOWN;
    int rc = jr_client_retry (client, id, &state);
    jr_client_destroy (&client);
    if (rc) {
        s_report ("asking the broker", rc);
        return s_exit_code (rc);
    }
    if (state == JR_STATE_QUEUED) {
        s_print_state (argv[2], state);
        return EXIT_OK;
    }
    if (state == JR_STATE_UNKNOWN)
        fprintf (stderr, "jr: job %s is not known to the broker\n", argv[2]);
    else
        fprintf (stderr, "jr: job %s is not dead (it is %s)\n", argv[2], jr_state_name (state));
    return EXIT_FAILED;
}

static bool
s_print_id (const uint8_t id[JR_ID_SIZE], uint32_t attempt, void *arg)
{
    (void)attempt;
    (void)arg;
    char text[37];
    jr_id_format (id, text);
    puts (text);
    return true;
}

static int
s_cmd_list (jr_opt_t *opts, int nargs, char **argv)
{
    (void)argv;  //  list takes no arguments besides its flags
    if (nargs != 2) {
        fprintf (stderr, "jr: list takes no arguments besides --state\n");
        return EXIT_USAGE;
    }
    const char *name = s_opt (opts, "state")->value;
    if (!name) {
        fprintf (stderr, "jr: list needs --state STATE\n");
        return EXIT_USAGE;
    }
    int state = JR_STATE_UNKNOWN;
    for (int s = JR_STATE_UNKNOWN + 1; s <= JR_STATE_EXPIRED; s++)
        if (strcmp (name, jr_state_name (s)) == 0)
            state = s;
    if (state == JR_STATE_UNKNOWN) {
        fprintf (stderr, "jr: '%s' is not a state; one of:", name);
        for (int s = JR_STATE_UNKNOWN + 1; s <= JR_STATE_EXPIRED; s++)
            fprintf (stderr, " %s", jr_state_name (s));
        fputc ('\n', stderr);
        return EXIT_USAGE;
    }
    jr_client_t *client = s_client (opts, "timeout");
    int rc = jr_client_list (client, state, s_print_id, NULL);
    jr_client_destroy (&client);
    fflush (stdout);
    if (rc) {
        s_report ("asking the broker", rc);
        return s_exit_code (rc);
    }
    return EXIT_OK;
}

//  -------------------------------------------------------------------------
//  The commands: from this one table come `jr --help`, each command's
//  flags and --help, the dispatch, and which flags take a value.

#define JR_CLI_MAX_FLAGS 12  //  flags of one command, with the NULL that ends them

typedef struct {
    const char *name;                                     //  as typed: jr NAME
    const char *lines[2][2];                              //  {synopsis, what it does} for jr --help
    const char *usage;                                    //  for jr NAME --help
    int (*run) (jr_opt_t *opts, int nargs, char **argv);  //  flags parsed, argv[1] is NAME
    jr_opt_t opts[JR_CLI_MAX_FLAGS];                      //  ends at the first without a name
} command_t;

static command_t s_commands[] = {
    { "submit",
      { { "submit TASK [key=value | key:=JSON ...]", "submit a job, print its id" },
        { "submit --file FILE|-", "submit one job per JSON line" } },
      "jr submit [flags] TASK [key=value | key:=JSON ...]\n"
      "       jr submit [flags] --file FILE|-\n"
      "  key=value gives a string var, key:=JSON a typed one, e.g.\n"
      "  jr submit --wait echo msg=hello n:=3 tags:='[\"a\",\"b\"]'\n"
      "  A --file line: {\"task\": \"echo\", \"vars\": {...}, "
      "\"priority\": 1, \"timeout_ms\": 500}",
      s_cmd_submit,
      { GLOBAL_OPTS,
        { "timeout", NULL, "0", "the job's deadline per attempt, ms (0 = worker default)", false,
          NULL },
        { "priority", NULL, "0", "higher runs first", false, NULL },
        { "max-attempts", NULL, "0", "attempts before the job is dead (0 = broker default)", false,
          NULL },
        { "wait", NULL, NULL, "wait for the result and print it as JSON", true, NULL },
        { "wait-timeout", "JR_WAIT_TIMEOUT", "60000", "how long --wait waits, ms (-1 = forever)",
          false, NULL },
        { "answer-timeout", "JR_TIMEOUT", "5000", "wait for the broker's answer, ms", false, NULL },
        { "file", NULL, NULL, "submit one job per JSON line of FILE (- = stdin)", false, NULL },
        { NULL } } },
    { "wait",
      { { "wait ID...", "wait for results, print them as JSON lines" } },
      "jr wait [flags] ID...\n"
      "  prints each result as a JSON line as it arrives",
      s_cmd_wait,
      { GLOBAL_OPTS,
        { "timeout", "JR_TIMEOUT", "5000", "wait for an answer from a server, ms", false, NULL },
        { "wait-timeout", "JR_WAIT_TIMEOUT", "60000", "how long to wait for all, ms (-1 = forever)",
          false, NULL },
        { NULL } } },
    { "result",
      { { "result ID", "print a stored result as JSON" } },
      "jr result [flags] ID\n  prints the stored result as JSON",
      s_cmd_result,
      { GLOBAL_OPTS,
        { "timeout", "JR_TIMEOUT", "5000", "wait for the ingester's answer, ms", false, NULL },
        { NULL } } },
    { "status",
      { { "status ID", "print a job's state as JSON" } },
      "jr status [flags] ID\n"
      "  asks the ingester (finished jobs), then the broker (jobs\n"
      "  waiting, running, or failed and to be retried); a running\n"
      "  job shows its task's last progress",
      s_cmd_status,
      { GLOBAL_OPTS,
        { "timeout", "JR_TIMEOUT", "5000", "wait for each server's answer, ms", false, NULL },
        { NULL } } },
    { "cancel",
      { { "cancel ID", "cancel a queued or running job" } },
      "jr cancel [flags] ID\n"
      "  cancels a queued job, or stops a running one; exit 1 if the\n"
      "  job had already finished",
      s_cmd_cancel,
      { GLOBAL_OPTS,
        { "timeout", "JR_TIMEOUT", "5000", "wait for each server's answer, ms", false, NULL },
        { NULL } } },
    { "list",
      { { "list --state STATE", "print the ids of the jobs in a state" } },
      "jr list [flags] --state STATE\n"
      "  prints the ids of the jobs the broker holds in STATE,\n"
      "  one per line (at most 100,000)",
      s_cmd_list,
      { GLOBAL_OPTS,
        { "timeout", "JR_TIMEOUT", "5000", "wait for the broker's answer, ms", false, NULL },
        { "state", NULL, NULL, "the state: queued, scheduled, running or dead", false, NULL },
        { NULL } } },
    { "retry",
      { { "retry ID", "queue a dead job again" } },
      "jr retry [flags] ID\n"
      "  queues a dead job again and prints its new state;\n"
      "  exit 1 if it was not dead",
      s_cmd_retry,
      { GLOBAL_OPTS,
        { "timeout", "JR_TIMEOUT", "5000", "wait for the broker's answer, ms", false, NULL },
        { NULL } } },
};

#define JR_CLI_COMMANDS (sizeof s_commands / sizeof s_commands[0])

static void
s_usage_main (void)
{
    int width = 0;
    for (size_t c = 0; c < JR_CLI_COMMANDS; c++)
        for (int l = 0; l < 2 && s_commands[c].lines[l][0]; l++)
            if ((int)strlen (s_commands[c].lines[l][0]) > width)
                width = (int)strlen (s_commands[c].lines[l][0]);
    printf ("usage: jr [--broker EP] [--ingester EP] [--timeout MS] COMMAND [ARGS]\n"
            "\n"
            "commands:\n");
    for (size_t c = 0; c < JR_CLI_COMMANDS; c++)
        for (int l = 0; l < 2 && s_commands[c].lines[l][0]; l++)
            printf ("  %-*s  %s\n", width, s_commands[c].lines[l][0], s_commands[c].lines[l][1]);
    printf ("\n"
            "Flags go before or after the command; 'jr COMMAND --help' lists them.\n"
            "Exit status: 0 ok, 1 failed or refused, 2 bad usage, 3 timed out.\n");
}

//  True if --name takes a value in any command.
static bool
s_takes_value (const char *name)
{
    for (size_t c = 0; c < JR_CLI_COMMANDS; c++)
        for (const jr_opt_t *opt = s_commands[c].opts; opt->name; opt++)
            if (!opt->is_bool && strcmp (opt->name, name) == 0)
                return true;
    return false;
}

//  The command is the first argument that is neither a flag nor a flag's
//  value, so global flags may come before it.
static int
s_find_command (int argc, char **argv)
{
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp (arg, "--") == 0)
            return a + 1 < argc ? a + 1 : 0;
        if (strncmp (arg, "--", 2) != 0)
            return a;
        if (!strchr (arg, '=') && s_takes_value (arg + 2))
            a++;
    }
    return 0;
}

int
main (int argc, char **argv)
{
    //  Ctrl-C should end the CLI at once, not set czmq's interrupted flag.
    zsys_handler_set (NULL);
    int cmd = s_find_command (argc, argv);
    if (!cmd) {
        bool help = false;
        for (int a = 1; a < argc; a++)
            help |= strcmp (argv[a], "--help") == 0 || strcmp (argv[a], "-h") == 0;
        s_usage_main ();
        return help ? EXIT_OK : EXIT_USAGE;
    }
    //  Put the command in argv[1]: each command parses the rest.
    char *name = argv[cmd];
    memmove (argv + 2, argv + 1, (size_t)(cmd - 1) * sizeof *argv);
    argv[1] = name;
    for (size_t c = 0; c < JR_CLI_COMMANDS; c++) {
        command_t *command = &s_commands[c];
        if (strcmp (name, command->name) == 0) {
            int nopts = 0;
            while (command->opts[nopts].name)
                nopts++;
            int nargs = jr_opts_parse (argc, argv, command->opts, nopts, command->usage);
            return command->run (command->opts, nargs, argv);
        }
    }
    if (strcmp (name, "help") == 0) {  //  not a row: it takes no flags, it shows them
        s_usage_main ();
        return EXIT_OK;
    }
    fprintf (stderr, "jr: unknown command '%s' (see jr --help)\n", name);
    return EXIT_USAGE;
}
