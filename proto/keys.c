/*  keys.c - a process's CurveZMQ keys: its own certificate, the servers' public ones, and who may connect  */
#include "proto/keys.h"
#include "common/log.h"
#include "common/opts.h"
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>

struct _jr_keys_t {
    char *dir;               //  the folder, as given
    zcert_t *own;            //  this process's certificate, secret included
    jr_role_t role;          //  of own
    char *server[JR_ROLES];  //  Z85 public keys of BROKER and INGESTER (clients only)
    char *file[JR_ROLES];    //  their files, for messages
};

static const char *s_role_names[JR_ROLES] = { "none",   "broker", "ingester",
                                              "worker", "client", "admin" };

const char *
jr_role_name (jr_role_t role)
{
    assert (role >= 0 && role < JR_ROLES);
    return s_role_names[role];
}

jr_role_t
jr_role_parse (const char *name)
{
    for (int r = JR_ROLE_BROKER; name && r < JR_ROLES; r++)
        if (strcmp (name, s_role_names[r]) == 0)
            return (jr_role_t)r;
    return JR_ROLE_NONE;
}

static void s_say (char *err, size_t err_size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_say (char *err, size_t err_size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_size, format, args);
    va_end (args);
}

//  The one NAME.cert_secret of dir, as the path without "_secret" (which
//  zcert_load wants: it reads the secret file beside it). Caller frees.
static char *
s_own_path (const char *dir, char *err, size_t err_size)
{
    DIR *d = opendir (dir);
    if (!d) {
        s_say (err, err_size, "%s: cannot open the keys folder: %s", dir, strerror (errno));
        return NULL;
    }
    char *found = NULL;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (d))) {
        size_t len = strlen (entry->d_name);
        if (len > 7 && strcmp (entry->d_name + len - 7, "_secret") == 0 && count++ == 0)
            found = zsys_sprintf ("%s/%.*s", dir, (int)(len - 7), entry->d_name);
    }
    closedir (d);
    if (count == 1)
        return found;
    zstr_free (&found);
    if (count == 0)
        s_say (err, err_size,
               "%s: no secret certificate (NAME.cert_secret) in the keys folder; make one with "
               "'jr keygen --role ROLE NAME --out %s'",
               dir, dir);
    else
        s_say (err, err_size, "%s: %d secret certificates in the keys folder; keep exactly one",
               dir, count);
    return NULL;
}

//  Load own certificate: its secret file must be for its owner's eyes only.
static zcert_t *
s_load_own (const char *path, char *err, size_t err_size)
{
    char *secret = zsys_sprintf ("%s_secret", path);
    struct stat st;
    zcert_t *cert = NULL;
    if (stat (secret, &st) != 0)
        s_say (err, err_size, "%s: %s", secret, strerror (errno));
    else if (!S_ISREG (st.st_mode))
        s_say (err, err_size, "%s: not a regular file", secret);
    else if (st.st_mode & (S_IRWXG | S_IRWXO))
        s_say (err, err_size,
               "%s: the secret key is readable by group or others (mode %04o); run "
               "'chmod 600 %s'",
               secret, (unsigned)(st.st_mode & 07777), secret);
    else if (!(cert = zcert_load (path)) || zcert_secret_txt (cert)[0] == 0
             || strcmp (zcert_secret_txt (cert), "0000000000000000000000000000000000000000") == 0) {
        zcert_destroy (&cert);
        s_say (err, err_size, "%s: not a readable certificate with a secret key", secret);
    }
    zstr_free (&secret);
    return cert;
}

//  The public key of one server's certificate, DIR/NAME.cert.
static int
s_load_server (jr_keys_t *self, jr_role_t server, char *err, size_t err_size)
{
    char *path = zsys_sprintf ("%s/%s.cert", self->dir, jr_role_name (server));
    self->file[server] = path;
    struct stat st;
    if (stat (path, &st) != 0 || access (path, R_OK) != 0) {
        s_say (err, err_size,
               "%s: %s; copy the %s's public certificate here (from its keys folder)", path,
               strerror (errno), jr_role_name (server));
        return -1;
    }
    if (!S_ISREG (st.st_mode)) {
        s_say (err, err_size, "%s: not a regular file", path);
        return -1;
    }
    zcert_t *cert = zcert_load (path);
    if (!cert) {
        s_say (err, err_size, "%s: not a readable certificate", path);
        return -1;
    }
    self->server[server] = strdup (zcert_public_txt (cert));
    zcert_destroy (&cert);
    return 0;
}

//  True if a certificate of role may serve a process loaded as as.
static bool
s_role_fits (jr_role_t role, jr_role_t as)
{
    return role == as || (as == JR_ROLE_CLIENT && role == JR_ROLE_ADMIN);
}

jr_keys_t *
jr_keys_load (const char *dir, jr_role_t as, char *err, size_t err_size)
{
    assert (dir && as >= JR_ROLE_BROKER && as <= JR_ROLE_CLIENT);
    jr_keys_t *self = calloc (1, sizeof *self);
    assert (self);
    self->dir = strdup (dir);
    char *path = s_own_path (dir, err, err_size);
    self->own = path ? s_load_own (path, err, err_size) : NULL;
    if (!self->own) {
        zstr_free (&path);
        jr_keys_destroy (&self);
        return NULL;
    }
    const char *meta = zcert_meta (self->own, "role");
    self->role = meta ? jr_role_parse (meta) : as;
    if (!s_role_fits (self->role, as)) {
        s_say (err, err_size, "%s_secret: a certificate of role '%s', not of a %s", path, meta,
               jr_role_name (as));
        zstr_free (&path);
        jr_keys_destroy (&self);
        return NULL;
    }
    zstr_free (&path);
    if (as == JR_ROLE_WORKER || as == JR_ROLE_CLIENT)
        if (s_load_server (self, JR_ROLE_BROKER, err, err_size) != 0
            || s_load_server (self, JR_ROLE_INGESTER, err, err_size) != 0)
            jr_keys_destroy (&self);
    return self;
}

void
jr_keys_destroy (jr_keys_t **self_p)
{
    assert (self_p);
    jr_keys_t *self = *self_p;
    if (!self)
        return;
    zcert_destroy (&self->own);
    for (int r = 0; r < JR_ROLES; r++) {
        free (self->server[r]);
        free (self->file[r]);
    }
    free (self->dir);
    free (self);
    *self_p = NULL;
}

const char *
jr_keys_dir (const jr_keys_t *self)
{
    return self->dir;
}

zcert_t *
jr_keys_own (const jr_keys_t *self)
{
    return self->own;
}

jr_role_t
jr_keys_role (const jr_keys_t *self)
{
    return self->role;
}

const char *
jr_keys_server (const jr_keys_t *self, jr_role_t server)
{
    assert (server == JR_ROLE_BROKER || server == JR_ROLE_INGESTER);
    return self->server[server];
}

const char *
jr_keys_server_file (const jr_keys_t *self, jr_role_t server)
{
    assert (server == JR_ROLE_BROKER || server == JR_ROLE_INGESTER);
    return self->file[server] ? self->file[server] : "(none)";
}

int
jr_keys_generate (const char *dir, const char *name, jr_role_t role, char *err, size_t err_size)
{
    assert (role > JR_ROLE_NONE && role < JR_ROLES);
    if (!name[0] || strchr (name, '/') || name[0] == '.') {
        s_say (err, err_size, "'%s': a key's name is a plain file name (no '/', no leading '.')",
               name);
        return -1;
    }
    if (zsys_dir_create ("%s", dir) != 0) {
        s_say (err, err_size, "%s: cannot create the folder: %s", dir, strerror (errno));
        return -1;
    }
    char *path = zsys_sprintf ("%s/%s.cert", dir, name);
    char *secret = zsys_sprintf ("%s_secret", path);
    int rc = -1;
    if (access (path, F_OK) == 0 || access (secret, F_OK) == 0)
        s_say (err, err_size, "%s: exists already; remove it first, or choose another name",
               access (path, F_OK) == 0 ? path : secret);
    else {
        zcert_t *cert = zcert_new ();
        assert (cert);
        zcert_set_meta (cert, "name", "%s", name);
        zcert_set_meta (cert, "role", "%s", jr_role_name (role));
        mode_t old =
            umask (077);  //  the secret file is never readable by others, not even at first
        rc = zcert_save (cert, path);
        umask (old);
        if (rc == 0)
            rc = chmod (path, 0644) == 0 && chmod (secret, 0600) == 0 ? 0 : -1;
        if (rc != 0)
            s_say (err, err_size, "%s: cannot write: %s", path, strerror (errno));
        zcert_destroy (&cert);
    }
    zstr_free (&path);
    zstr_free (&secret);
    return rc;
}

bool
jr_endpoint_is_local (const char *endpoint)
{
    if (strncmp (endpoint, "ipc://", 6) == 0 || strncmp (endpoint, "inproc://", 9) == 0)
        return true;
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6;
    const char *colon = strrchr (host, ':');
    size_t len = colon ? (size_t)(colon - host) : strlen (host);
    static const char *local[] = { "localhost", "[::1]", "lo" };
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        if (len == strlen (local[i]) && strncmp (host, local[i], len) == 0)
            return true;
    //  127.0.0.0/8, written as digits and dots only
    if (len < 4 || strncmp (host, "127.", 4) != 0)
        return false;
    for (size_t i = 4; i < len; i++)
        if (!(host[i] == '.' || (host[i] >= '0' && host[i] <= '9')))
            return false;
    return true;
}

int
jr_keys_setup (const char *dir, jr_role_t as, jr_keys_t **keys)
{
    *keys = NULL;
    if (!dir || !*dir)
        return 0;
    char err[600];
    *keys = jr_keys_load (dir, as, err, sizeof err);
    if (*keys)
        return 0;
    jr_opts_error ("%s", err);
    return -1;
}

bool
jr_keys_bind_ok (const jr_keys_t *keys, bool insecure, const char *endpoint)
{
    if (keys || jr_endpoint_is_local (endpoint))
        return true;
    if (insecure) {
        jr_warn ("endpoint=%s: listening beyond this host WITHOUT KEYS (--insecure): anybody who "
                 "reaches it may submit, take jobs or store results",
                 endpoint);
        return true;
    }
    jr_opts_error ("%s: will not listen beyond this host without keys; give --keys DIR "
                   "(CurveZMQ, see docs/operations.md), or --insecure to let anybody who reaches "
                   "the port in",
                   endpoint);
    return false;
}
