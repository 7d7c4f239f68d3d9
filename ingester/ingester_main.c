/*  ingester_main.c - jr-ingester: flags, then the ingester's loop until SIGINT/SIGTERM  */
#include "common/fdlimit.h"
#include "common/log.h"
#include "common/opts.h"
#include "ingester/ingester.h"
#include <czmq.h>

int
main (int argc, char **argv)
{
    jr_log_init ("ingester", JR_LOG_INFO);
    jr_opt_t opts[] = {
        { "bind", "JR_INGESTER_BIND", JR_INGESTER_BIND, "endpoint for workers and clients", false,
          NULL },
        //  No defaults here: the ingester needs to see which one was given.
        { "sink", "JR_SINK", NULL,
          "where results go, SCHEME:WHERE; schemes: sqlite:PATH (default sqlite:" JR_INGESTER_DB
          ")",
          false, NULL },
        { "db", "JR_DB", NULL, "SQLite database file, the same as --sink sqlite:PATH", false,
          NULL },
        { "sync", "JR_SYNC", JR_INGESTER_SYNC, "the sink's synchronous mode: full, normal or off",
          false, NULL },
        { "batch", "JR_INGEST_BATCH", "10000", "most results stored in one transaction", false,
          NULL },
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]);
    int nargs = jr_opts_parse (argc, argv, opts, nopts, "jr-ingester [options]");
    if (nargs > 1) {
        fprintf (stderr, "error: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    jr_ingester_config_t cfg = {
        .bind = opts[0].value,
        .sink = opts[1].value,
        .db = opts[2].value,
        .sync = opts[3].value,
        .batch_max = (int)jr_opts_int (&opts[4], 1, 1000000),
    };
    //  czmq's handler sets zsys_interrupted on SIGINT/SIGTERM; the loop then
    //  finishes its batch and the destructor closes the database cleanly.
    jr_fd_limit_raise ();
    zsys_init ();
    jr_ingester_t *ingester = jr_ingester_new (&cfg);
    if (!ingester) {
        fprintf (stderr, "jr-ingester: cannot start (see the error above)\n");
        return 1;
    }
    int rc = jr_ingester_run (ingester);
    jr_ingester_destroy (&ingester);
    return rc == 0 ? 0 : 1;
}
