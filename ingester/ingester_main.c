/*  ingester_main.c - jr-ingester: flags, then the ingester's loop until SIGINT/SIGTERM  */
#include "common/fdlimit.h"
#include "common/http.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/opts.h"
#include "ingester/ingester.h"
#include <czmq.h>

int
main (int argc, char **argv)
{
    jr_log_init ("ingester", JR_LOG_INFO);
    jr_opt_t opts[] = {
        { "bind", "JR_INGESTER_BIND", NULL,
          "endpoint for workers and clients (default tcp://*:5572 with --keys, else "
          "tcp://127.0.0.1:5572)",
          false, NULL },
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
        { "keys", "JR_KEYS", NULL, "CurveZMQ keys folder (docs/operations.md, Keys)", false, NULL },
        { "insecure", "JR_INSECURE", NULL, "listen beyond this host without keys", true, NULL },
        { "verbose", NULL, NULL, "log every event (debug)", true, NULL },
        { "metrics", NULL, NULL,
          "serve Prometheus metrics at http://HOST:PORT/metrics (off by default), e.g. "
          "127.0.0.1:9102",
          false, NULL },
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]);
    int nargs = jr_opts_parse_config (argc, argv, opts, nopts, "jr-ingester [options]");
    if (nargs > 1) {
        jr_opts_error ("unexpected argument '%s' (see --help)", argv[1]);
        return 2;
    }
    jr_log_init ("ingester", opts[7].value ? JR_LOG_DEBUG : JR_LOG_INFO);
    if (!jr_http_addr_ok (opts[8].value))
        return 2;
    jr_keys_t *keys = NULL;
    if (jr_keys_setup (opts[5].value, JR_ROLE_INGESTER, &keys) != 0)
        return 2;
    const char *bind = opts[0].value ? opts[0].value : keys ? "tcp://*:5572" : JR_INGESTER_BIND;
    if (!jr_keys_bind_ok (keys, opts[6].value != NULL, bind))
        return 2;
    jr_ingester_config_t cfg = {
        .bind = bind,
        .keys = keys,
        .sink = opts[1].value,
        .db = opts[2].value,
        .sync = opts[3].value,
        .batch_max = (int)jr_opts_int (&opts[4], 1, 1000000),
    };
    //  czmq's handler sets zsys_interrupted on SIGINT/SIGTERM; the loop then
    //  finishes its batch and the destructor closes the database cleanly.
    jr_notify_catch_reload ();  //  from now on a SIGHUP (a reload) never ends the process
    jr_fd_limit_raise ();
    zsys_init ();
    jr_ingester_t *ingester = jr_ingester_new (&cfg);
    if (!ingester) {
        jr_opts_error ("cannot start (see the error above)");
        return 1;
    }
    jr_http_t *http = NULL;
    int rc = jr_http_metrics (opts[8].value, jr_ingester_metrics (ingester), &http);
    if (rc) {
        jr_ingester_destroy (&ingester);
        jr_keys_destroy (&keys);
        return rc;
    }
    rc = jr_ingester_run (ingester);
    jr_http_destroy (&http);
    jr_ingester_destroy (&ingester);
    jr_keys_destroy (&keys);
    return rc == 0 ? 0 : 1;
}
