/*  auth.c - the ZAP handler of a server with keys: which keys get in, on which port, as what role  */
#include "proto/auth.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/ratelog.h"
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_RELOAD_MS    5000   //  a folder is read again at least this often
#define S_LOG_MS       60000  //  one line per peer per minute
#define S_WATCHES      8      //  sockets watched at most (a broker has 2)

struct _jr_auth_t {
    char *dir;                       //  the keys folder it serves
    int refs;                        //  jr_auth_new calls not yet destroyed
    zactor_t *actor;                 //  the handler
    atomic_uint_fast64_t refused;    //  handshakes refused, both kinds
    atomic_uint_fast64_t forbidden;  //  messages refused by role
    zsock_t *zap;                    //  the bound ZAP socket, until the handler takes it
    pthread_mutex_t log_lock;        //  of log: servers of several threads may share this
    jr_ratelog_t log;                //  forbidden messages, by peer
};

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static jr_auth_t *s_shared;  //  the process's one handler, under s_lock

//  -------------------------------------------------------------------------
//  The allowed keys of one role: DIR/allow/ROLE/*.cert

typedef struct {
    char *path;             //  the folder
    bool present;           //  it existed when read
    struct timespec mtime;  //  its mtime then: a file added or removed changes it
    ino_t ino;              //  and its inode, in case it was replaced
    int64_t read_ms;        //  when it was read
    zhashx_t *keys;         //  Z85 public key -> name
} s_folder_t;

static void
s_folder_read (s_folder_t *self, const struct stat *st, int64_t now_ms)
{
    zhashx_purge (self->keys);
    self->present = st != NULL;
    self->mtime = st ? st->st_mtim : (struct timespec){ 0, 0 };
    self->ino = st ? st->st_ino : 0;
    self->read_ms = now_ms;
    DIR *dir = st ? opendir (self->path) : NULL;
    struct dirent *entry;
    while (dir && (entry = readdir (dir))) {
        size_t len = strlen (entry->d_name);
        if (entry->d_name[0] == '.'
            || (len > 7 && strcmp (entry->d_name + len - 7, "_secret") == 0))
            continue;
        char *file = zsys_sprintf ("%s/%s", self->path, entry->d_name);
        char *secret = zsys_sprintf ("%s_secret", file);
        struct stat fst, sst;
        //  zcert_load reads FILE_secret first when there is one: a secret in
        //  allow/ has no business there (and a FIFO would block us).
        bool plain = stat (file, &fst) == 0 && S_ISREG (fst.st_mode) && lstat (secret, &sst) != 0;
        zstr_free (&secret);
        zcert_t *cert = plain ? zcert_load (file) : NULL;
        if (cert) {
            const char *name = zcert_meta (cert, "name");
            //  Of two files with one key the first counts.
            zhashx_insert (self->keys, zcert_public_txt (cert),
                           (void *)(name ? name : entry->d_name));
        }
        else
            jr_warn ("file=%s: not a certificate, skipped", file);
        zcert_destroy (&cert);
        zstr_free (&file);
    }
    if (dir)
        closedir (dir);
    jr_debug ("folder=%s keys=%zu: read the allowed keys", self->path, zhashx_size (self->keys));
}

//  The folder as it is on disk now, read again if it changed.
static void
s_folder_fresh (s_folder_t *self, int64_t now_ms)
{
    struct stat st;
    bool present = stat (self->path, &st) == 0;
    bool same = present == self->present
                && (!present
                    || (st.st_ino == self->ino && st.st_mtim.tv_sec == self->mtime.tv_sec
                        && st.st_mtim.tv_nsec == self->mtime.tv_nsec));
    if (!same || now_ms - self->read_ms >= S_RELOAD_MS)
        s_folder_read (self, present ? &st : NULL, now_ms);
}

//  -------------------------------------------------------------------------
//  The handler's thread

typedef struct {
    jr_auth_t *auth;
    zsock_t *zap;                       //  REP, bound at S_ZAP_ENDPOINT
    s_folder_t folders[JR_ROLES];       //  by role (worker, client, admin)
    zsock_t *watches[S_WATCHES];        //  monitors of server sockets
    jr_sock_role_t watched[S_WATCHES];  //  their roles
    int nwatches;
    zpoller_t *poller;  //  pipe, zap and the watches
    jr_ratelog_t log;   //  of refusals, by peer
} s_handler_t;

//  A refusal: counted always, logged once a minute per peer.
static void
s_refused (s_handler_t *self, const char *peer, const char *port, const char *what)
{
    atomic_fetch_add (&self->auth->refused, 1);
    uint64_t held = 0;
    if (jr_ratelog_allow (&self->log, peer, jr_clock_mono_us () / 1000, &held))
        jr_warn ("peer=%s port=%s held=%llu: refused a connection: %s", peer, port,
                 (unsigned long long)held, what);
}

//  ZAP metadata: name length (1 byte), name, value length (4 bytes, big endian), value.
static zframe_t *
s_metadata (const char *name, const char *value)
{
    size_t nlen = strlen (name), vlen = strlen (value);
    zframe_t *frame = zframe_new (NULL, 1 + nlen + 4 + vlen);
    uint8_t *p = zframe_data (frame);
    *p++ = (uint8_t)nlen;
    memcpy (p, name, nlen);
    p += nlen;
    for (int shift = 24; shift >= 0; shift -= 8)
        *p++ = (uint8_t)(vlen >> shift);
    memcpy (p, value, vlen);
    return frame;
}

//  The role a key has on a port, or NONE; *name gets its name.
static jr_role_t
s_lookup (s_handler_t *self, jr_sock_role_t port, const char *key, const char **name)
{
    unsigned admits = jr_transport_admits (port);
    int64_t now_ms = jr_clock_mono_us () / 1000;
    //  admin before client: a key in both folders is an admin
    static const jr_role_t order[] = { JR_ROLE_ADMIN, JR_ROLE_CLIENT, JR_ROLE_WORKER };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (!(admits & (1u << order[i])))
            continue;
        s_folder_fresh (&self->folders[order[i]], now_ms);
        *name = zhashx_lookup (self->folders[order[i]].keys, key);
        if (*name)
            return order[i];
    }
    return JR_ROLE_NONE;
}

//  One ZAP request (RFC 27): version, request id, domain, address,
//  identity, mechanism, credentials; answered 200 with the role, or 400.
static void
s_on_request (s_handler_t *self)
{
    zmsg_t *request = zmsg_recv (self->zap);
    if (!request)
        return;
    char *version = zmsg_popstr (request);
    zframe_t *request_id = zmsg_pop (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    zframe_t *identity = zmsg_pop (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *credentials = zmsg_pop (request);
    jr_sock_role_t port = domain ? jr_transport_by_name (domain) : JR_SOCK_ROLES;
    const char *peer = address ? address : "?";
    const char *name = NULL;
    jr_role_t role = JR_ROLE_NONE;
    char key[41] = "";
    if (!mechanism || strcmp (mechanism, "CURVE") != 0 || port == JR_SOCK_ROLES)
        s_refused (self, peer, domain ? domain : "?", "not a CURVE handshake on a known port");
    else if (!credentials || zframe_size (credentials) != 32)
        s_refused (self, peer, domain, "a CURVE handshake without a key");
    else {
        zmq_z85_encode (key, zframe_data (credentials), 32);
        role = s_lookup (self, port, key, &name);
        if (role == JR_ROLE_NONE) {
            char what[160];
            snprintf (what, sizeof what,
                      "key %s is not allowed here (not in allow/ of a role this port takes)", key);
            s_refused (self, peer, domain, what);
        }
        else
            jr_debug ("peer=%s port=%s name=%s role=%s: admitted", peer, domain, name,
                      jr_role_name (role));
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    zmsg_append (reply, request_id ? &request_id : &(zframe_t *){ zframe_new_empty () });
    zmsg_addstr (reply, role ? "200" : "400");
    zmsg_addstr (reply, role ? "OK" : "key not allowed");
    zmsg_addstr (reply, role ? name : "");
    zframe_t *meta =
        role ? s_metadata (JR_AUTH_ROLE_PROPERTY, jr_role_name (role)) : zframe_new_empty ();
    zmsg_append (reply, &meta);
    zmsg_send (&reply, self->zap);
    zstr_free (&version);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&mechanism);
    zframe_destroy (&identity);
    zframe_destroy (&credentials);
    zframe_destroy (&request_id);
    zmsg_destroy (&request);
}

//  What a failed handshake before ZAP says about the peer.
static const char *
s_failure (uint32_t value)
{
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        return "the peer does not use keys (not CURVE)";
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
        return "the peer's handshake does not decrypt (it has a wrong server key)";
    return NULL;  //  a probe that closed, or a peer that speaks no ZMTP: not counted
}

//  Events of a watched server socket: handshakes that failed before ZAP.
static void
s_on_watch (s_handler_t *self, int i)
{
    int event;
    uint32_t value;
    while (jr_transport_event (self->watches[i], &event, &value)) {
        if (event == ZMQ_EVENT_MONITOR_STOPPED) {
            //  Its socket is closed: the slot is free for the next one.
            zpoller_remove (self->poller, self->watches[i]);
            zsock_destroy (&self->watches[i]);
            self->nwatches--;
            self->watches[i] = self->watches[self->nwatches];
            self->watched[i] = self->watched[self->nwatches];
            return;
        }
        const char *what = event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? s_failure (value) : NULL;
        if (what)
            s_refused (self, jr_transport_role_name (self->watched[i]),
                       jr_transport_role_name (self->watched[i]), what);
        else
            jr_debug ("port=%s event=%d value=0x%x: a handshake failed",
                      jr_transport_role_name (self->watched[i]), event, value);
    }
}

//  WATCH: a monitor socket to poll (the pipe hands it over); signals 0, or
//  -1 when every slot is taken (the monitor is dropped then).
static void
s_on_watch_command (s_handler_t *self, zsock_t *pipe, zmsg_t *msg)
{
    zframe_t *frame = zmsg_pop (msg);
    char *role = zmsg_popstr (msg);
    zsock_t *watch = NULL;
    if (frame && zframe_size (frame) == sizeof watch)
        memcpy (&watch, zframe_data (frame), sizeof watch);
    int rc = -1;
    if (watch && role && self->nwatches < S_WATCHES) {
        self->watches[self->nwatches] = watch;
        self->watched[self->nwatches++] = (jr_sock_role_t)atoi (role);
        zpoller_add (self->poller, watch);
        rc = 0;
    }
    else
        zsock_destroy (&watch);
    zframe_destroy (&frame);
    zstr_free (&role);
    zsock_signal (pipe, (byte)(rc ? 1 : 0));
}

static void
s_handler (zsock_t *pipe, void *args)
{
    jr_auth_t *auth = args;
    s_handler_t self = { .auth = auth, .zap = auth->zap };
    auth->zap = NULL;  //  the handler's own now
    jr_ratelog_init (&self.log, S_LOG_MS);
    for (int r = JR_ROLE_WORKER; r < JR_ROLES; r++) {
        self.folders[r].path = zsys_sprintf ("%s/allow/%s", self.auth->dir, jr_role_name (r));
        self.folders[r].keys = zhashx_new ();
        zhashx_set_duplicator (self.folders[r].keys, (zhashx_duplicator_fn *)strdup);
        zhashx_set_destructor (self.folders[r].keys, (zhashx_destructor_fn *)zstr_free);
        s_folder_read (&self.folders[r], NULL, 0);  //  read at the first handshake
        self.folders[r].read_ms = INT64_MIN / 2;
    }
    zpoller_t *poller = self.poller = zpoller_new (pipe, self.zap, NULL);
    //  It answers handshakes until its owner stops it, after its sockets:
    //  a signal must not leave a handshake without an answer.
    zpoller_set_nonstop (poller, true);
    zsock_signal (pipe, 0);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (!which && zpoller_terminated (poller))
            break;
        if (!which)
            continue;
        if (which == self.zap)
            s_on_request (&self);
        else if (which == pipe) {
            zmsg_t *msg = zmsg_recv (pipe);
            char *command = msg ? zmsg_popstr (msg) : NULL;
            bool term = !command || strcmp (command, "$TERM") == 0;
            if (command && strcmp (command, "WATCH") == 0)
                s_on_watch_command (&self, pipe, msg);
            else if (command && strcmp (command, "RELOAD") == 0) {
                int64_t now_ms = jr_clock_mono_us () / 1000;
                size_t keys = 0;
                for (int r = JR_ROLE_WORKER; r < JR_ROLES; r++) {
                    self.folders[r].read_ms = INT64_MIN / 2;
                    s_folder_fresh (&self.folders[r], now_ms);
                    keys += zhashx_size (self.folders[r].keys);
                }
                jr_info ("keys=%s allowed=%zu: allowed keys read again", self.auth->dir, keys);
                zsock_signal (pipe, 0);
            }
            zstr_free (&command);
            zmsg_destroy (&msg);
            if (term)
                break;
        }
        else
            for (int i = 0; i < self.nwatches; i++)
                if (which == self.watches[i]) {
                    s_on_watch (&self, i);
                    break;
                }
    }
    zpoller_destroy (&poller);
    for (int i = 0; i < self.nwatches; i++)
        zsock_destroy (&self.watches[i]);
    for (int r = JR_ROLE_WORKER; r < JR_ROLES; r++) {
        zhashx_destroy (&self.folders[r].keys);
        zstr_free (&self.folders[r].path);
    }
    zsock_destroy (&self.zap);
}

//  -------------------------------------------------------------------------
//  The shared handle

jr_auth_t *
jr_auth_new (const jr_keys_t *keys, char *err, size_t err_size)
{
    pthread_mutex_lock (&s_lock);
    jr_auth_t *self = s_shared;
    if (self && strcmp (self->dir, jr_keys_dir (keys)) != 0) {
        snprintf (err, err_size, "%s: this process serves the keys of %s already",
                  jr_keys_dir (keys), self->dir);
        self = NULL;
    }
    else if (self)
        self->refs++;
    else {
        zsock_t *zap = zsock_new (ZMQ_REP);
        assert (zap);
        if (zsock_bind (zap, S_ZAP_ENDPOINT) != 0) {
            snprintf (err, err_size, "cannot start the ZAP handler: %s", zmq_strerror (errno));
            zsock_destroy (&zap);
        }
        else {
            self = calloc (1, sizeof *self);
            assert (self);
            self->dir = strdup (jr_keys_dir (keys));
            self->refs = 1;
            pthread_mutex_init (&self->log_lock, NULL);
            jr_ratelog_init (&self->log, S_LOG_MS);
            s_shared = self;
            self->zap = zap;
            self->actor = zactor_new (s_handler, self);
            assert (self->actor);
        }
    }
    pthread_mutex_unlock (&s_lock);
    return self;
}

void
jr_auth_destroy (jr_auth_t **self_p)
{
    assert (self_p);
    jr_auth_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    pthread_mutex_lock (&s_lock);
    if (--self->refs == 0) {
        zactor_destroy (&self->actor);
        s_shared = NULL;
        pthread_mutex_destroy (&self->log_lock);
        free (self->dir);
        free (self);
    }
    pthread_mutex_unlock (&s_lock);
}

bool
jr_auth_running (void)
{
    pthread_mutex_lock (&s_lock);
    bool running = s_shared != NULL;
    pthread_mutex_unlock (&s_lock);
    return running;
}

int
jr_auth_watch (jr_auth_t *self, zsock_t *sock, jr_sock_role_t role)
{
    //  Not HANDSHAKE_FAILED_NO_DETAIL: a TCP probe (a health check, a port
    //  scan) that closes before it speaks is no refusal.
    zsock_t *watch =
        jr_transport_watch (sock, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_MONITOR_STOPPED);
    if (!watch)
        return -1;
    //  The pipe hands the socket to the handler's thread (a full barrier).
    zframe_t *frame = zframe_new (&watch, sizeof watch);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "WATCH");
    zmsg_append (msg, &frame);
    zmsg_addstrf (msg, "%d", (int)role);
    zmsg_send (&msg, self->actor);
    return zsock_wait (self->actor) == 0 ? 0 : -1;
}

void
jr_auth_reload (jr_auth_t *self)
{
    if (!self)
        return;
    zstr_send (self->actor, "RELOAD");
    zsock_wait (self->actor);
}

uint64_t
jr_auth_refused (const jr_auth_t *self)
{
    return atomic_load (&((jr_auth_t *)self)->refused);
}

bool
jr_auth_permits (jr_auth_t *self, jr_sock_role_t port, int type, zmq_msg_t *body)
{
    if (!self)
        return true;
    jr_role_t role = jr_transport_peer_role (body);
    if (jr_transport_permits (port, type, role))
        return true;
    atomic_fetch_add (&self->forbidden, 1);
    const char *name = zmq_msg_gets (body, "User-Id");
    const char *address = zmq_msg_gets (body, "Peer-Address");
    char peer[300];
    snprintf (peer, sizeof peer, "%s@%s", name ? name : "?", address ? address : "?");
    uint64_t held = 0;
    pthread_mutex_lock (&self->log_lock);
    bool say = jr_ratelog_allow (&self->log, peer, jr_clock_mono_us () / 1000, &held);
    pthread_mutex_unlock (&self->log_lock);
    if (say)
        jr_warn ("peer=%s role=%s port=%s type=%s held=%llu: refused a message (FORBIDDEN)", peer,
                 jr_role_name (role), jr_transport_role_name (port), jr_msg_name (type),
                 (unsigned long long)held);
    return false;
}

uint64_t
jr_auth_forbidden (const jr_auth_t *self)
{
    return atomic_load (&((jr_auth_t *)self)->forbidden);
}

void
jr_auth_counters_init (jr_auth_counters_t *self, jr_metrics_t *metrics)
{
    *self = (jr_auth_counters_t){ 0 };
    self->refused = jr_metrics_counter (metrics, "handshakes_refused",
                                        "connections refused at the CURVE handshake", NULL, NULL);
    self->forbidden = jr_metrics_counter (metrics, "messages_forbidden",
                                          "messages refused because of the key's role", NULL, NULL);
}

void
jr_auth_counters_update (jr_auth_counters_t *self, const jr_auth_t *auth)
{
    if (!auth)
        return;
    uint64_t now[2] = { jr_auth_refused (auth), jr_auth_forbidden (auth) };
    jr_counter_add (self->refused, now[0] - self->seen[0]);
    jr_counter_add (self->forbidden, now[1] - self->seen[1]);
    memcpy (self->seen, now, sizeof now);
}
