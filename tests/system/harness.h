/*  harness.h - start the real binaries on loopback for tests, and always clean up  */
#ifndef JR_HARNESS_H
#define JR_HARNESS_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define JR_H_MAX_PROCS 64

typedef struct {
    char dir[256];        //  temp dir: logs, database
    int port_clients;     //  broker, clients
    int port_workers;     //  broker, workers
    int port_ingester;    //  ingester
    char clients_ep[64];  //  tcp://127.0.0.1:port
    char workers_ep[64];
    char ingester_ep[64];
    char db[300];    //  SQLite file of the ingester
    char keys[300];  //  with jr_h_env_keys: the cluster's keys (deploy/keys-init.sh), else ""
} jr_h_env_t;

//  Make a temp dir and pick three free loopback ports.
void jr_h_env_init (jr_h_env_t *env, const char *name);
//  Make the keys of a whole cluster in <dir>/keys (deploy/keys-init.sh:
//  one folder per kind of process) and use them: from now on every
//  jr-broker, jr-ingester and jr-worker this env starts (also inside
//  `ip netns exec`) gets $JR_KEYS of its kind, and this process's clients
//  (jr_client_new, the jr binary) get the client key ($JR_KEYS). Returns
//  false if the script failed.
bool jr_h_env_keys (jr_h_env_t *env);
//  The keys folder of one kind ("broker", "worker", "admin", ...) in out.
void jr_h_keys_of (const jr_h_env_t *env, const char *kind, char *out, size_t size);
//  Start $JR_BIN/<bin> with args (NULL-terminated); its output goes to
//  <dir>/<label>.log. The child dies with the test process (PDEATHSIG).
pid_t jr_h_spawn (jr_h_env_t *env, const char *label, const char *bin, ...);
pid_t jr_h_broker (jr_h_env_t *env, const char *extra);
pid_t jr_h_ingester (jr_h_env_t *env);
//  A worker; tasks NULL = all built-in tasks. label names its log file.
pid_t jr_h_worker (jr_h_env_t *env, const char *label, int concurrency, const char *tasks);
//  Wait until something listens on 127.0.0.1:port (false after 10 s).
bool jr_h_wait_port (int port);
//  Send a signal to a process and wait for it to exit; true if it did.
bool jr_h_stop (pid_t pid, int sig, int timeout_ms);
//  Wait for a process started by jr_h_spawn to exit by itself, up to
//  timeout_ms; true if it did, with its waitpid status in *status.
bool jr_h_wait_exit (pid_t pid, int timeout_ms, int *status);
//  Kill every process this test started (SIGKILL) and reap them.
void jr_h_cleanup (void);
//  Run a shell command (printf-style); its exit status, or -1.
int jr_h_sh (const char *format, ...) __attribute__ ((format (printf, 1, 2)));
//  Milliseconds sleep.
void jr_h_sleep_ms (int ms);
//  Zombie children of a process (as /proc shows them), or -1 if /proc
//  cannot be read.
int jr_h_zombies (pid_t parent);
//  The whole log of a process, at most 64 KiB (caller frees), "" if there
//  is none.
char *jr_h_log (const jr_h_env_t *env, const char *label);
//  Print the tail of a process log (for failed tests).
void jr_h_dump_logs (jr_h_env_t *env);
//  Like jr_h_spawn, but argv[0] is run as given (searched in $PATH), e.g.
//  {"ip", "netns", "exec", "ns", "/path/jr-worker", ..., NULL}. PDEATHSIG
//  holds across exec, so a program that execs the next one dies with us too.
pid_t jr_h_spawn_argv (jr_h_env_t *env, const char *label, char *const argv[]);
//  Full path of a binary under $JR_BIN.
void jr_h_bin (char *out, size_t size, const char *bin);
//  Wait until something listens on host:port (IPv4 text); false after timeout_ms.
bool jr_h_wait_tcp (const char *host, int port, int timeout_ms);
//  Stop tracking a process reaped by other means (waitpid by the caller).
void jr_h_forget (pid_t pid);
//  In a Criterion test: on failure, show where the logs are and their tails,
//  then fail. Each test file defines CHECK on it with its own env.
#define JR_H_CHECK(env, cond, ...)                                                                 \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf ("test: logs in %s\n", (env)->dir);                                             \
            fflush (stdout);                                                                       \
            jr_h_dump_logs (env);                                                                  \
            cr_assert_fail (__VA_ARGS__);                                                          \
        }                                                                                          \
    } while (0)
#endif
