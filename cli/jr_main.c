/*  jr_main.c - the jr command line: its commands and their flags in one table, and the dispatch  */
#include "cli/cli.h"
#include <czmq.h>

//  The flags every command that talks to a server takes.
#define GLOBAL_OPTS                                                                                \
    { "broker", "JR_BROKER", JR_DEFAULT_BROKER, "broker endpoint", false, NULL },                  \
        { "ingester", "JR_INGESTER", JR_DEFAULT_INGESTER, "ingester endpoint", false, NULL },      \
        { "keys", "JR_KEYS", NULL, "CurveZMQ keys folder (a client or admin key)", false, NULL },  \
    {                                                                                              \
        "connect-timeout", "JR_CONNECT_TIMEOUT", "3000",                                           \
            "give up on a server not reached (no connection and handshake) in this long, ms",      \
            false, NULL                                                                            \
    }

//  How long to wait for a server's answer: one name in every command.
#define ANSWER_OPT                                                                                 \
    {                                                                                              \
        "answer-timeout", "JR_TIMEOUT", "5000",                                                    \
            "wait for each answer of a server this long, ms, before a resend (3 resends, "         \
            "so a silent server is given up on after about 4 x this + 1.1 s)",                     \
            false, NULL                                                                            \
    }

//  The commands: from this one table come `jr --help`, each command's
//  flags and --help, the dispatch, and which flags take a value.

#define JR_CLI_MAX_FLAGS 16  //  flags of one command, with the NULL that ends them

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
      "  Prints the job's id on stdout. With --wait it prints the result\n"
      "  instead, one JSON document (id included; jr submit --wait ... | jq\n"
      "  .payload works), and the id on stderr; exit 0 if the job\n"
      "  succeeded, 1 if it failed.\n"
      "  With --file, one job per line: {\"task\": \"echo\", \"vars\": {...},\n"
      "  \"priority\": 1, \"deadline_ms\": 500, \"max_attempts\": 3, \"id\": UUID}\n"
      "  (\"timeout_ms\", the protocol's name, is deadline_ms too). Every\n"
      "  line is checked before any is submitted: a bad one is reported\n"
      "  as FILE:LINE: field NAME: ..., and nothing is submitted (exit 2)\n"
      "  unless --keep-going, which submits the good lines and exits 1.\n"
      "  stdout has one line per input line: the id, or '-' for a bad or\n"
      "  refused line, or an empty line for a blank one (skipped).\n"
      "  With --wait the results follow as JSON lines, as they come.\n"
      "  Exit codes: see jr --help",
      jr_cli_submit,
      { GLOBAL_OPTS,
        ANSWER_OPT,
        { "deadline", NULL, "0",
          "the job's deadline per attempt, ms (0 = worker default); a line's deadline_ms", false,
          NULL },
        { "priority", NULL, "0", "higher runs first", false, NULL },
        { "max-attempts", NULL, "0", "attempts before the job is dead (0 = broker default)", false,
          NULL },
        { "wait", NULL, NULL, "wait for the result and print it as JSON", true, NULL },
        { "wait-timeout", "JR_WAIT_TIMEOUT", "60000",
          "how long --wait waits for the result, ms (-1 = forever); exit 3 after", false, NULL },
        { "file", NULL, NULL, "submit one job per JSON line of FILE (- = stdin)", false, NULL },
        { "keep-going", NULL, NULL, "with --file: submit the good lines despite bad ones", true,
          NULL },
        { NULL } } },
    { "wait",
      { { "wait ID...", "wait for results, print them as JSON lines" } },
      "jr wait [flags] ID...\n"
      "  prints each result as a JSON line as it arrives; exit 0 if all\n"
      "  succeeded, 1 if any failed, 3 if not all came in --wait-timeout",
      jr_cli_wait,
      { GLOBAL_OPTS,
        ANSWER_OPT,
        { "wait-timeout", "JR_WAIT_TIMEOUT", "60000",
          "how long to wait for all, ms (-1 = forever); exit 3 after", false, NULL },
        { NULL } } },
    { "result",
      { { "result ID", "print a stored result as JSON" } },
      "jr result [flags] ID\n"
      "  prints the stored result as JSON; exit 4 if none is stored,\n"
      "  else 0 if the job succeeded, 1 if it failed",
      jr_cli_result,
      { GLOBAL_OPTS, ANSWER_OPT, { NULL } } },
    { "status",
      { { "status ID", "print a job's state, attempt, task, worker as JSON" } },
      "jr status [flags] ID\n"
      "  asks the ingester (finished jobs), then the broker (jobs\n"
      "  waiting, running, or failed and to be retried); prints\n"
      "  {\"id\",\"state\",\"attempt\",\"task\"[,\"worker\"][,\"progress\"]}: task is\n"
      "  null if no one knows it any more, worker is where it runs\n"
      "  (or ran), progress the running task's last report.\n"
      "  Exit 4 if neither the ingester nor the broker knows the id",
      jr_cli_status,
      { GLOBAL_OPTS, ANSWER_OPT, { NULL } } },
    { "cancel",
      { { "cancel ID", "cancel a queued or running job" } },
      "jr cancel [flags] ID\n"
      "  cancels a queued job, or stops a running one; exit 1 if the\n"
      "  job had already finished, 4 if no server knows it",
      jr_cli_cancel,
      { GLOBAL_OPTS, ANSWER_OPT, { NULL } } },
    { "list",
      { { "list --state STATE [--task T] [--limit N] [--cursor C]",
          "print the ids of the jobs in a state" } },
      "jr list [flags] --state STATE [--task TASK] [--limit N] [--cursor C]\n"
      "  prints the ids of the jobs the broker holds in STATE (of\n"
      "  TASK), one per line, in the broker's order, at most N (default and\n"
      "  at most 100000). If more follow, the last line on stderr is\n"
      "  'next: --cursor C': run the same command with it for the\n"
      "  next ids. Paging never prints an id twice",
      jr_cli_list,
      { GLOBAL_OPTS,
        ANSWER_OPT,
        { "state", NULL, NULL, "the state: queued, scheduled, running or dead", false, NULL },
        { "task", NULL, NULL, "only jobs of this task", false, NULL },
        { "limit", NULL, "100000", "print at most this many ids (1..100000, 0 = 100000)", false,
          NULL },
        { "cursor", NULL, NULL, "start after this cursor (from a 'next:' line)", false, NULL },
        { NULL } } },
    { "retry",
      { { "retry ID", "queue a dead job again" } },
      "jr retry [flags] ID\n"
      "  queues a dead job again and prints its new state;\n"
      "  exit 1 if it was not dead, 4 if the broker does not know it",
      jr_cli_retry,
      { GLOBAL_OPTS, ANSWER_OPT, { NULL } } },
    { "ping",
      { { "ping broker|ingester", "ask a server whether it is up and serving" } },
      "jr ping [flags] broker|ingester\n"
      "  asks the server through the protocol (an empty STATUS to the\n"
      "  broker, an empty FETCH to the ingester) and prints e.g.\n"
      "  'broker tcp://127.0.0.1:5570: ok (0.4 ms)'. Exit 0 if it\n"
      "  answered, 3 if it was not reached in --connect-timeout or did\n"
      "  not answer in --answer-timeout (one send, no resend), 5 if it\n"
      "  refused our key. For healthchecks: jr ping broker || exit 1",
      jr_cli_ping,
      { GLOBAL_OPTS,
        { "answer-timeout", "JR_TIMEOUT", "2000", "wait for the answer this long, ms", false,
          NULL },
        { NULL } } },
    { "keygen",
      { { "keygen --role ROLE NAME --out DIR", "make a key pair (CurveZMQ certificate)" } },
      "jr keygen --role ROLE NAME --out DIR\n"
      "  writes DIR/NAME.cert (public: give it to the servers, or to\n"
      "  the clients of a server) and DIR/NAME.cert_secret (mode 0600:\n"
      "  keep it on this host). ROLE: broker, ingester, worker, client\n"
      "  or admin. docs/operations.md, Keys, says where they go",
      jr_cli_keygen,
      { { "role", NULL, NULL, "broker, ingester, worker, client or admin", false, NULL },
        { "out", NULL, NULL, "the folder to write to (made if missing)", false, NULL },
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
    printf ("usage: jr [--broker EP] [--ingester EP] [--keys DIR] COMMAND [ARGS]\n"
            "       jr --version\n"
            "\n"
            "commands:\n");
    for (size_t c = 0; c < JR_CLI_COMMANDS; c++)
        for (int l = 0; l < 2 && s_commands[c].lines[l][0]; l++)
            printf ("  %-*s  %s\n", width, s_commands[c].lines[l][0], s_commands[c].lines[l][1]);
    printf ("\n"
            "Flags go before or after the command; 'jr COMMAND --help' lists them.\n"
            "Times: --connect-timeout (reach a server, default 3000 ms),\n"
            "--answer-timeout (its answer), --wait-timeout (a job's result);\n"
            "--deadline is the job's own (submit).\n"
            "\n"
            "Exit status, every command:\n"
            "  0  done (the job succeeded, where one was waited for)\n"
            "  1  a job failed, or the server refused the request\n"
            "  2  bad usage (flags, arguments, a bad --file line)\n"
            "  3  a server not reached or silent, or no result, in the time given\n"
            "  4  no such job\n"
            "  5  the server refused our key, or the secure handshake failed\n"
            "Errors go to stderr as 'jr: error: ...'. docs/cli.md has it all.\n");
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
        if (strncmp (arg, "--", 2) != 0 && strcmp (arg, "-h") != 0)
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
    //  --timeout meant the job's deadline in submit and the wait for an
    //  answer elsewhere: gone, so a script that used it learns which it meant.
    for (int a = 1; a < argc && strcmp (argv[a], "--") != 0; a++)
        if (strcmp (argv[a], "--timeout") == 0 || strncmp (argv[a], "--timeout=", 10) == 0) {
            jr_cli_error ("--timeout is gone: the job's deadline is --deadline MS, the wait for "
                          "a server's answer --answer-timeout MS, for results --wait-timeout MS");
            return EXIT_USAGE;
        }
    int cmd = s_find_command (argc, argv);
    if (!cmd) {
        bool help = false;
        for (int a = 1; a < argc; a++) {
            help |= strcmp (argv[a], "--help") == 0 || strcmp (argv[a], "-h") == 0;
            if (strcmp (argv[a], "--version") == 0) {
                jr_opts_print_version ("jr");
                return EXIT_OK;
            }
        }
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
    jr_cli_error ("unknown command '%s' (see jr --help)", name);
    return EXIT_USAGE;
}
