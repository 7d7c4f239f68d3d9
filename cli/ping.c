/*  ping.c - jr ping broker|ingester: is that server up and serving? asked through the protocol  */
#include "cli/cli.h"
#include "client/client.h"

//  One probe, one send: an empty STATUS to the broker (answered by STATE),
//  an empty FETCH with wait 0 to the ingester (answered by RESULTS); both
//  are valid messages (PROTOCOL.md 6.5, "Health checks"). Not resent: a
//  healthcheck wants the truth of now, and its caller retries.
static int
s_probe (jr_client_t *self, bool ingester, int answer_ms)
{
    jr_link_t *link = ingester ? &self->ingester : &self->broker;
    jr_msg_reset (self->out, ingester ? JR_MSG_FETCH : JR_MSG_STATUS);
    self->out->wait_ms = 0;
    self->out->tag = ++self->tag;
    int rc = jr_msg_send (self->out, zsock_resolve (link->sock), NULL, 0);
    if (rc)
        return rc;
    int64_t until = jr_clock_mono_us () + (int64_t)answer_ms * 1000;
    while (jr_client_poll (link->sock, link->watch, until) || jr_clock_mono_us () < until) {
        if ((rc = jr_client_link_failed (self, link)))
            return rc;
        zmq_msg_t frame;
        while ((rc = jr_client_recv (self, link->sock, &frame)) != JR_ETIMEOUT) {
            if (rc)
                return rc;  //  an answer we cannot read: not serving us
            bool ours = self->in->tag == self->out->tag;
            int type = self->in->type;
            int code = type == JR_MSG_ERROR ? jr_client_error_code (self->in) : 0;
            zmq_msg_close (&frame);
            if (!ours)
                continue;
            if (type == JR_MSG_ERROR)
                return code;
            return type == (ingester ? JR_MSG_RESULTS : JR_MSG_STATE) ? 0 : JR_EMALFORMED;
        }
    }
    return JR_ETIMEOUT;
}

int
jr_cli_ping (jr_opt_t *opts, int nargs, char **argv)
{
    if (nargs != 3 || (strcmp (argv[2], "broker") != 0 && strcmp (argv[2], "ingester") != 0)) {
        jr_cli_error ("ping needs one server: broker or ingester (see jr ping --help)");
        return EXIT_USAGE;
    }
    bool ingester = strcmp (argv[2], "ingester") == 0;
    const char *endpoint = jr_cli_opt (opts, ingester ? "ingester" : "broker")->value;
    int answer_ms = (int)jr_opts_int (jr_cli_opt (opts, "answer-timeout"), 1, INT_MAX);
    jr_client_t *client = jr_cli_client (opts, "answer-timeout");
    int64_t start = jr_clock_mono_us ();
    int result = jr_cli_reach (client, opts, ingester ? JR_CLI_INGESTER : JR_CLI_BROKER);
    if (result == EXIT_OK) {
        int rc = s_probe (client, ingester, answer_ms);
        if (rc == 0)
            printf ("%s %s: ok (%.1f ms)\n", argv[2], endpoint,
                    (double)(jr_clock_mono_us () - start) / 1000.0);
        else if (rc == JR_ETIMEOUT)
            jr_cli_error ("the %s at %s did not answer in %d ms", argv[2], endpoint, answer_ms);
        else if (rc == JR_EFORBIDDEN || rc == JR_EHANDSHAKE)
            jr_cli_error ("%s", jr_client_error (client));
        else
            jr_cli_error ("the %s at %s answered %s (%s)", argv[2], endpoint, jr_errname (rc),
                          jr_strerror (rc));
        //  An ERROR answer still proves it is up, but not serving us.
        result = rc == JR_ETIMEOUT ? EXIT_UNREACHABLE : jr_cli_exit_code (rc);
    }
    jr_cli_client_done (&client);
    return result;
}
