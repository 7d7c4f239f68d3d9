/*  broker.c - the broker's event loop: sockets, the turn, timers, start and stop  */
#include "broker/internal.h"
#include "common/notify.h"

//  -------------------------------------------------------------------------
//  Sockets

static zsock_t *
s_router (jr_broker_t *self, jr_sock_role_t role, const char *endpoint)
{
    zsock_t *sock = jr_transport_bind (role, endpoint, self->config.keys);
    if (!sock)
        jr_error ("endpoint=%s role=%s: cannot bind: %s", endpoint, jr_transport_role_name (role),
                  zmq_strerror (errno));
    else if (self->auth && jr_auth_watch (self->auth, sock, role) != 0)
        jr_warn ("endpoint=%s: cannot watch its handshakes; refusals before ZAP go uncounted",
                 endpoint);
    return sock;
}

//  Handles a decoded message (type NONE if it did not decode); false if it
//  has no business here, and is refused.
typedef bool (jr_broker_handler_fn) (jr_broker_t *self, const uint8_t *rid, size_t rid_len,
                                     int type);

//  Read what one socket has (up to JR_DRAIN_MAX messages) and hand each to
//  on_message; refusals get an ERROR with the decoder's code.
static void
s_drain (jr_broker_t *self, zsock_t *sock, jr_sock_role_t port, jr_broker_handler_fn *on_message)
{
    const char *role = jr_transport_role_name (port);
    void *handle = zsock_resolve (sock);
    zmq_msg_t rid, body;
    for (int n = 0; n < JR_DRAIN_MAX; n++) {
        int got = jr_transport_recv (handle, &rid, &body);
        if (got == 0)
            break;
        const uint8_t *id = zmq_msg_data (&rid);
        size_t id_len = zmq_msg_size (&rid);
        int rc = got < 0 ? got : jr_transport_decode (self->in, &body, true);
        if (rc == JR_TRANSPORT_SILENT || got < 0) {
            jr_counter_inc (self->stats.malformed);  //  an ERROR is never answered
            jr_debug ("role=%s: dropped %s", role,
                      got < 0 ? "a message of other frames" : "an ERROR");
        }
        else if (rc == 0 && !jr_auth_permits (self->auth, port, self->in->type, &body))
            jr_msg_send_error (handle, id, id_len, self->in->tag, JR_EFORBIDDEN,
                               "this key's role may not send this message here");
        else if (!on_message (self, id, id_len, rc == 0 ? self->in->type : JR_MSG_NONE)) {
            jr_counter_inc (self->stats.malformed);
            int code = rc ? rc : JR_EINVALID;
            const char *why = rc ? jr_strerror (rc) : "not for this socket";
            jr_debug ("role=%s code=%s: refused a message: %s", role, jr_errname (code), why);
            //  A stray message's tag belongs to another conversation: 0.
            jr_msg_send_error (handle, id, id_len, rc ? self->in->tag : 0, code, why);
        }
        zmq_msg_close (&body);
        zmq_msg_close (&rid);
    }
}

static void
s_timers (jr_broker_t *self)
{
    int64_t wall = jr_clock_wall_us (), mono = jr_clock_mono_us ();
    jr_bjob_t *job;
    while ((job = jr_queue_peek (&self->delayed)) && job->due_us <= mono) {
        jr_queue_pop (&self->delayed);
        job->due_us = 0;  //  it was the retry time, not a lease
        jr_broker_enqueue (self, job);
    }
    //  Dead jobs past their time are forgotten, oldest first.
    const uint8_t *oldest;
    int64_t ttl_us = (int64_t)self->config.dead_ttl_s * 1000000;
    while ((oldest = jr_ring_oldest (&self->dead))) {
        job = jr_jobtab_find (self->jobs, oldest);
        if (job && job->state == JR_STATE_DEAD && wall - job->at_us < ttl_us)
            break;
        jr_ring_pop (&self->dead);
        if (job && job->state == JR_STATE_DEAD) {
            jr_broker_drop (self, job);
            self->live--;
        }
    }
}

static void
s_log_stats (jr_broker_t *self)
{
    int64_t now = jr_clock_mono_us ();
    if (now < self->next_stats)
        return;
    self->next_stats = now + 10 * 1000000;
    self->unserved = 0;
    jr_fd_limit_check ();
    jr_gauge_set (self->stats.live, (int64_t)self->live);
    jr_gauge_set (self->stats.workers, self->nworkers);
    jr_gauge_set (self->stats.journal_bytes,
                  self->journal ? (int64_t)jr_journal_size (self->journal) : 0);
    jr_auth_counters_update (&self->stats.auth, self->auth);
    char line[1024];
    if (jr_metrics_line (self->metrics, line, sizeof line))
        jr_info ("%s: stats", line);
}

//  The broker's figures: counters of the last 10 s on the stats line.
static void
s_metrics_new (jr_broker_t *self)
{
    self->metrics = jr_metrics_new ("jr_broker");
    jr_metrics_t *m = self->metrics;
    jr_bstats_t *s = &self->stats;
    s->live = jr_metrics_gauge (m, "jobs_live", "jobs held and not finished", NULL, NULL);
    s->workers = jr_metrics_gauge (m, "workers", "connected workers", NULL, NULL);
    s->accepted =
        jr_metrics_counter (m, "jobs_accepted", "jobs journaled and accepted", NULL, NULL);
    s->refused = jr_metrics_counter (m, "jobs_refused", "submitted jobs refused", NULL, NULL);
    s->dispatched =
        jr_metrics_counter (m, "jobs_dispatched", "attempts sent to workers", NULL, NULL);
    s->done = jr_metrics_counter (m, "jobs_done", "jobs finished, not cancelled", NULL, NULL);
    s->requeued =
        jr_metrics_counter (m, "jobs_requeued", "attempts taken back and queued again", NULL, NULL);
    s->retried =
        jr_metrics_counter (m, "jobs_retried", "failed attempts scheduled for a retry", NULL, NULL);
    s->dead = jr_metrics_counter (m, "jobs_dead", "jobs that used up their attempts", NULL, NULL);
    s->cancelled = jr_metrics_counter (m, "jobs_cancelled", "jobs finished cancelled", NULL, NULL);
    s->expired = jr_metrics_counter (m, "leases_expired", "running attempts whose lease ran out",
                                     NULL, NULL);
    s->stale = jr_metrics_counter (
        m, "marks_stale", "DONE marks for attempts their sender does not hold", NULL, NULL);
    s->malformed = jr_metrics_counter (m, "messages_malformed",
                                       "messages refused or dropped, ERRORs included", NULL, NULL);
    s->unread = jr_metrics_counter (
        m, "replies_unread", "replies dropped: their client had too many unread", NULL, NULL);
    s->journal_bytes =
        jr_metrics_gauge (m, "journal_bytes", "bytes in the journal's files", NULL, NULL);
    jr_auth_counters_init (&s->auth, m);
}

//  -------------------------------------------------------------------------

jr_broker_t *
jr_broker_new (const jr_broker_config_t *config)
{
    jr_broker_t *self = calloc (1, sizeof *self);
    assert (self);
    self->config = *config;
    s_metrics_new (self);
    self->jobs = jr_jobtab_new ();
    self->task_index = zhashx_new ();
    self->budgets = jr_budgets_new (JR_PEER_BYTES);
    self->in = jr_msg_new ();
    self->status = jr_msg_new ();
    self->delayed.by_due = true;
    self->replay_task = -1;
    jr_ring_init (&self->finished, config->remember);
    jr_ring_init (&self->dead, config->max_dead);
    if (config->journal) {
        self->journal = jr_journal_open (config->journal, config->fsync, config->fsync_ms,
                                         jr_broker_replay, self);
        if (!self->journal) {
            jr_broker_destroy (&self);
            return NULL;
        }
        jr_broker_settle (self);
        if (self->replay_lost) {  //  cannot happen unless a bug lets the table overflow
            jr_error ("journal=%s jobs=%zu: accepted jobs need more task names than the broker"
                      " holds (%d); refusing to start rather than drop them",
                      config->journal, self->replay_lost, JR_MAX_TASKS);
            jr_broker_destroy (&self);
            return NULL;
        }
    }
    char err[512];
    if (config->keys && !(self->auth = jr_auth_new (config->keys, err, sizeof err))) {
        jr_error ("%s", err);
        jr_broker_destroy (&self);
        return NULL;
    }
    self->clients = s_router (self, JR_SOCK_BROKER_CLIENTS, config->clients);
    self->workers_sock = s_router (self, JR_SOCK_BROKER_WORKERS, config->workers);
    if (!self->clients || !self->workers_sock) {
        jr_broker_destroy (&self);
        return NULL;
    }
    jr_info ("clients=%s workers=%s journal=%s live=%zu keys=%s: broker listening", config->clients,
             config->workers, config->journal ? config->journal : "(none)", self->live,
             config->keys ? jr_keys_dir (config->keys) : "(none)");
    return self;
}

void
jr_broker_destroy (jr_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jr_broker_t *self = *self_p;
    //  Workers' jobs stay in the journal as dispatched: a restart requeues
    //  them. Only the memory goes here.
    for (uint32_t i = 0; i < self->nworkers; i++) {
        jr_worker_t *w = self->workers[i];
        jr_msg_destroy (&w->batch);
        free (w->tasks);
        free (w);
    }
    for (uint32_t i = 0; i < self->ntasks; i++) {
        jr_queue_free (&self->tasks[i].queue);
        free (self->tasks[i].note);
    }
    jr_queue_free (&self->delayed);
    jr_queue_free (&self->cancelled);
    free (self->tasks);
    free (self->spare);
    free (self->workers);
    free (self->pending);
    free (self->replayed);  //  left when the journal could not be opened after replay
    for (size_t i = 0; i < self->nreplies; i++)
        jr_msg_destroy (&self->replies[i].msg);
    for (size_t i = 0; i < self->npool; i++)
        jr_msg_destroy (&self->msg_pool[i]);
    free (self->replies);
    free (self->msg_pool);
    free (self->finished.ids);
    free (self->dead.ids);
    zhashx_destroy (&self->task_index);
    jr_jobtab_destroy (&self->jobs);
    jr_metrics_destroy (&self->metrics);
    jr_msg_destroy (&self->in);
    jr_msg_destroy (&self->status);
    jr_journal_close (&self->journal);
    zsock_destroy (&self->clients);
    zsock_destroy (&self->workers_sock);
    jr_auth_destroy (&self->auth);        //  after the sockets it answers for
    jr_budgets_destroy (&self->budgets);  //  frames libzmq still holds keep theirs
    free (self);
    *self_p = NULL;
}

void
jr_broker_stop (jr_broker_t *self)
{
    atomic_store (&self->stop, true);
}

size_t
jr_broker_live (const jr_broker_t *self)
{
    return self->live;
}

int
jr_broker_run (jr_broker_t *self)
{
    zmq_pollitem_t items[] = {
        { zsock_resolve (self->clients), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->workers_sock), 0, ZMQ_POLLIN, 0 },
    };
    int64_t tick = 0;
    //  SIGHUP (systemctl reload) reads the allowed keys again, and no longer
    //  ends the process. Ready: the journal is replayed, the sockets bound.
    jr_notify_catch_reload ();
    unsigned reloads = jr_notify_reloads ();
    jr_notify_ready ("serving");
    while (!zsys_interrupted && !atomic_load (&self->stop)) {
        if (reloads != jr_notify_reloads ()) {
            reloads = jr_notify_reloads ();
            jr_notify_reloading ();
            jr_info ("keys=%s: reload asked (SIGHUP)",
                     self->config.keys ? jr_keys_dir (self->config.keys) : "(none)");
            jr_auth_reload (self->auth);
            jr_notify_ready ("serving");
        }
        bool busy = self->dirty || (self->journal && jr_journal_pending (self->journal));
        if (zmq_poll (items, 2, busy ? 0 : 100) == -1 && errno != EINTR)
            break;
        if (items[1].revents & ZMQ_POLLIN)
            s_drain (self, self->workers_sock, JR_SOCK_BROKER_WORKERS, jr_broker_worker_message);
        if (items[0].revents & ZMQ_POLLIN)
            s_drain (self, self->clients, JR_SOCK_BROKER_CLIENTS, jr_broker_client_message);
        jr_broker_commit (self);
        jr_broker_dispatch (self);
        int64_t now = jr_clock_mono_us ();
        if (now - tick >= 100000) {
            tick = now;
            jr_broker_heartbeats (self);
            s_timers (self);
            jr_broker_compact (self);
            s_log_stats (self);
            jr_broker_budgets_sweep (self);
        }
    }
    jr_notify_stopping ();
    jr_broker_commit (self);
    jr_info ("live=%zu: broker stopping", self->live);
    return 0;
}

jr_metrics_t *
jr_broker_metrics (jr_broker_t *self)
{
    return self->metrics;
}
