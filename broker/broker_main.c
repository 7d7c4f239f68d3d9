/*  broker_main.c - jr-broker: flags, signals, run  */
#include "broker/broker.h"
#include "common/fdlimit.h"
#include "common/http.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/opts.h"
#include "proto/keys.h"
#include <czmq.h>

int
main (int argc, char **argv)
{
    jr_opt_t opts[] = {
        { "clients", "JR_BROKER_CLIENTS", NULL,
          "endpoint clients connect to (default tcp://*:5570 with --keys, else "
          "tcp://127.0.0.1:5570)" },
        { "workers", "JR_BROKER_WORKERS", NULL,
          "endpoint workers connect to (default tcp://*:5571 with --keys, else "
          "tcp://127.0.0.1:5571)" },
        { "journal", "JR_JOURNAL", "./jr-journal", "journal directory" },
        { "fsync", "JR_FSYNC", "always", "always | batch | never: when accepted jobs are synced" },
        { "fsync-interval", "JR_FSYNC_INTERVAL_MS", "100", "sync interval for --fsync batch, ms" },
        { "heartbeat", "JR_HEARTBEAT_MS", "1000", "heartbeat interval to workers, ms" },
        { "liveness", "JR_LIVENESS_MS", "5000", "forget a worker silent this long, ms" },
        { "lease-grace", "JR_LEASE_GRACE_MS", "10000",
          "a running job's lease: its timeout plus this, ms" },
        { "retry-base", "JR_RETRY_BASE_MS", "1000",
          "first retry delay (doubles per attempt, with jitter), ms" },
        { "retry-max", "JR_RETRY_MAX_MS", "300000", "longest retry delay, ms" },
        { "max-attempts", "JR_MAX_ATTEMPTS", "3", "attempts for jobs that do not say" },
        { "max-jobs", "JR_MAX_JOBS", "10000000", "live jobs at most; more get QUEUE_FULL" },
        { "max-dead", "JR_MAX_DEAD", "100000", "dead jobs kept at most" },
        { "dead-ttl", "JR_DEAD_TTL_S", "604800", "dead jobs kept this long at most, s" },
        { "remember", "JR_REMEMBER", "100000",
          "finished ids kept so a resubmit does not run again" },
        { "max-queued-bytes", "JR_MAX_QUEUED_BYTES", "2147483648",
          "bytes of vars the live jobs may hold; more get QUEUE_FULL" },
        { "verbose", "JR_VERBOSE", NULL, "log every event (debug)", true },
        { "keys", "JR_KEYS", NULL, "CurveZMQ keys folder (docs/operations.md, Keys)" },
        { "insecure", "JR_INSECURE", NULL, "listen beyond this host without keys", true },
        { "metrics", NULL, NULL,
          "serve Prometheus metrics at http://HOST:PORT/metrics (off by default), e.g. "
          "127.0.0.1:9101" },
    };
    int nopts = sizeof opts / sizeof opts[0];
    int args = jr_opts_parse_config (argc, argv, opts, nopts, "jr-broker [options]");
    if (args > 1) {
        jr_opts_error ("unexpected argument '%s' (see --help)", argv[1]);
        return 2;
    }
    jr_log_init ("broker", opts[16].value ? JR_LOG_DEBUG : JR_LOG_INFO);
    if (!jr_http_addr_ok (opts[19].value))
        return 2;
    jr_keys_t *keys = NULL;
    if (jr_keys_setup (opts[17].value, JR_ROLE_BROKER, &keys) != 0)
        return 2;
    jr_broker_config_t config = JR_BROKER_CONFIG_DEFAULT;
    config.keys = keys;
    config.clients = opts[0].value ? opts[0].value : keys ? "tcp://*:5570" : config.clients;
    config.workers = opts[1].value ? opts[1].value : keys ? "tcp://*:5571" : config.workers;
    if (!jr_keys_bind_ok (keys, opts[18].value != NULL, config.clients)
        || !jr_keys_bind_ok (keys, opts[18].value != NULL, config.workers))
        return 2;
    config.journal = opts[2].value;
    const char *fsync = opts[3].value;
    if (strcmp (fsync, "always") == 0)
        config.fsync = JR_FSYNC_ALWAYS;
    else if (strcmp (fsync, "batch") == 0)
        config.fsync = JR_FSYNC_BATCH;
    else if (strcmp (fsync, "never") == 0)
        config.fsync = JR_FSYNC_NEVER;
    else {
        jr_opts_error ("--fsync must be always, batch or never, not '%s'", fsync);
        return 2;
    }
    config.fsync_ms = (int)jr_opts_int (&opts[4], 1, 60000);
    config.heartbeat_ms = (int)jr_opts_int (&opts[5], 10, 60000);
    config.liveness_ms = (int)jr_opts_int (&opts[6], 100, 600000);
    config.lease_grace_ms = (int)jr_opts_int (&opts[7], 0, 3600000);
    config.retry_base_ms = (int)jr_opts_int (&opts[8], 1, 3600000);
    config.retry_max_ms = (int)jr_opts_int (&opts[9], 1, 86400000);
    config.max_attempts = (uint32_t)jr_opts_int (&opts[10], 1, 1000);
    config.max_jobs = (size_t)jr_opts_int (&opts[11], 1, 1000000000);
    config.max_dead = (size_t)jr_opts_int (&opts[12], 1, 100000000);
    config.dead_ttl_s = (int)jr_opts_int (&opts[13], 1, 365 * 86400);
    config.remember = (size_t)jr_opts_int (&opts[14], 1, 100000000);
    config.max_queued_bytes = (uint64_t)jr_opts_int (&opts[15], 1 << 20, INT64_MAX);
    jr_notify_catch_reload ();  //  from now on a SIGHUP (a reload) never ends the process
    jr_fd_limit_raise ();
    zsys_init ();
    zsys_set_logstream (NULL);
    jr_broker_t *broker = jr_broker_new (&config);
    if (!broker) {
        jr_opts_error ("cannot start (see the log above)");
        return 1;
    }
    jr_http_t *http = NULL;
    int rc = jr_http_metrics (opts[19].value, jr_broker_metrics (broker), &http);
    if (rc) {
        jr_broker_destroy (&broker);
        jr_keys_destroy (&keys);
        return rc;
    }
    jr_broker_run (broker);
    jr_http_destroy (&http);
    jr_broker_destroy (&broker);
    jr_keys_destroy (&keys);
    jr_info ("broker stopped");
    return 0;
}
