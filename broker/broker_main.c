/*  broker_main.c - jr-broker: flags, signals, run  */
#include "broker/broker.h"
#include "common/log.h"
#include "common/opts.h"
#include <czmq.h>

int
main (int argc, char **argv)
{
    jr_opt_t opts[] = {
        {"clients", "JR_BROKER_CLIENTS", "tcp://*:5570", "endpoint clients connect to"},
        {"workers", "JR_BROKER_WORKERS", "tcp://*:5571", "endpoint workers connect to"},
        {"heartbeat", "JR_HEARTBEAT_MS", "1000", "heartbeat interval to workers, ms"},
        {"liveness", "JR_LIVENESS_MS", "5000", "forget a worker silent this long, ms"},
        {"max-jobs", "JR_MAX_JOBS", "10000000", "jobs held at most; more get QUEUE_FULL"},
        {"verbose", "JR_VERBOSE", NULL, "log every event (debug)", true},
    };
    int nopts = sizeof opts / sizeof opts[0];
    int args = jr_opts_parse (argc, argv, opts, nopts, "jr-broker [options]");
    if (args > 1) {
        fprintf (stderr, "jr-broker: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    jr_broker_config_t config = JR_BROKER_CONFIG_DEFAULT;
    config.clients = opts[0].value;
    config.workers = opts[1].value;
    config.heartbeat_ms = (int) jr_opts_int (&opts[2], 10, 60000);
    config.liveness_ms = (int) jr_opts_int (&opts[3], 100, 600000);
    config.max_jobs = (size_t) jr_opts_int (&opts[4], 1, 1000000000);
    jr_log_init ("broker", opts[5].value ? JR_LOG_DEBUG : JR_LOG_INFO);
    zsys_init ();
    zsys_set_logstream (NULL);
    jr_broker_t *broker = jr_broker_new (&config);
    if (!broker) {
        fprintf (stderr, "jr-broker: cannot start (see the log above)\n");
        return 1;
    }
    jr_broker_run (broker);
    jr_broker_destroy (&broker);
    jr_info ("broker stopped");
    return 0;
}
