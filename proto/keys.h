/*  keys.h - a process's CurveZMQ keys: its own certificate, the servers' public ones, and who may connect  */
#ifndef JR_PROTO_KEYS_H
#define JR_PROTO_KEYS_H
#include <czmq.h>
#include <stdbool.h>

//  Every process reads one folder (--keys DIR or $JR_KEYS), laid out the same
//  way everywhere (docs/operations.md, "Keys"):
//
//    DIR/NAME.cert_secret     this process's own certificate (mode 0600 or
//                             stricter; any NAME, exactly one such file)
//    DIR/broker.cert          the broker's public certificate   (workers, clients)
//    DIR/ingester.cert        the ingester's public certificate (workers, clients)
//    DIR/allow/ROLE/*.cert    servers: the public certificates admitted in
//                             ROLE (worker, client, admin); re-read on change
//
//  Certificates are czmq's zcert files, as `jr keygen` writes them, with
//  the metadata name and role.

//  The role of a key. NONE: no keys configured (trusted loopback).
typedef enum {
    JR_ROLE_NONE,
    JR_ROLE_BROKER,
    JR_ROLE_INGESTER,
    JR_ROLE_WORKER,
    JR_ROLE_CLIENT,
    JR_ROLE_ADMIN,
    JR_ROLES
} jr_role_t;

//  Name of a role, e.g. "worker" (borrowed, static); "none" for NONE.
const char *jr_role_name (jr_role_t role);
//  The role of a name, or JR_ROLE_NONE if it names none.
jr_role_t jr_role_parse (const char *name);

typedef struct _jr_keys_t jr_keys_t;

//  Load the folder for a process of role as (BROKER, INGESTER, WORKER, or
//  CLIENT, which takes a client or an admin certificate). Servers need
//  their own certificate; workers and clients also the two servers' public
//  ones. Returns what the caller owns, or NULL with a message in err that
//  names the file and says what to do: no or several secret files, a
//  secret file readable by group or others, a certificate of another role,
//  a missing server certificate, an unreadable file.
jr_keys_t *jr_keys_load (const char *dir, jr_role_t as, char *err, size_t err_size);
//  Destroy; nulls the pointer.
void jr_keys_destroy (jr_keys_t **self_p);
//  The folder (borrowed).
const char *jr_keys_dir (const jr_keys_t *self);
//  This process's certificate (borrowed).
zcert_t *jr_keys_own (const jr_keys_t *self);
//  The role of this process's certificate (CLIENT or ADMIN for clients).
jr_role_t jr_keys_role (const jr_keys_t *self);
//  The public key, Z85 text, of server (BROKER or INGESTER); NULL if not
//  loaded (servers load none). Borrowed.
const char *jr_keys_server (const jr_keys_t *self, jr_role_t server);
//  The path of server's public certificate, for messages (borrowed).
const char *jr_keys_server_file (const jr_keys_t *self, jr_role_t server);

//  Write a new certificate pair DIR/NAME.cert and DIR/NAME.cert_secret
//  (mode 0600, never readable by others, even for a moment), with metadata
//  name and role. Refuses to overwrite either file. Returns 0, or -1 with
//  a message in err.
int jr_keys_generate (const char *dir, const char *name, jr_role_t role, char *err,
                      size_t err_size);

//  True if endpoint can only be reached from this host: tcp on 127.0.0.0/8,
//  [::1] or localhost; ipc; inproc.
bool jr_endpoint_is_local (const char *endpoint);

//  For a process's main: the keys of dir for a process of role as, or none
//  if dir is NULL or empty. Returns 0 (*keys set, NULL without keys), or -1
//  after it printed why to stderr.
int jr_keys_setup (const char *dir, jr_role_t as, jr_keys_t **keys);
//  For a server's main, the bind rule: with keys anything goes; without
//  them a non-local endpoint needs insecure, and then logs a warning.
//  Returns true if endpoint may be bound; otherwise false after it printed
//  a message naming --keys and --insecure to stderr.
bool jr_keys_bind_ok (const jr_keys_t *keys, bool insecure, const char *endpoint);
#endif
