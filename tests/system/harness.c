/*  harness.c - start the real binaries on loopback for tests, and always clean up  */
#include "tests/system/harness.h"
#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t s_procs[JR_H_MAX_PROCS];
static int s_nprocs;
//  Chaos tests start and stop processes from a helper thread too.
static pthread_mutex_t s_procs_lock = PTHREAD_MUTEX_INITIALIZER;

//  Remember a child so cleanup kills it; a slot freed by jr_h_stop is used
//  again, so a test that restarts processes often stays within the table.
static void
s_track (pid_t pid)
{
    pthread_mutex_lock (&s_procs_lock);
    int slot = -1;
    for (int i = 0; i < s_nprocs && slot < 0; i++)
        if (s_procs[i] == 0)
            slot = i;
    if (slot < 0 && s_nprocs < JR_H_MAX_PROCS)
        slot = s_nprocs++;
    if (slot >= 0)
        s_procs[slot] = pid;
    else
        fprintf (stderr, "harness: more than %d processes, pid %d not tracked\n", JR_H_MAX_PROCS,
                 (int)pid);
    pthread_mutex_unlock (&s_procs_lock);
}

int
jr_h_sh (const char *format, ...)
{
    char cmd[2048];
    va_list args;
    va_start (args, format);
    vsnprintf (cmd, sizeof cmd, format, args);
    va_end (args);
    int rc = system (cmd);
    return rc == -1 ? -1 : WEXITSTATUS (rc);
}

void
jr_h_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
        ;
}

static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    bind (fd, (struct sockaddr *)&addr, sizeof addr);
    socklen_t len = sizeof addr;
    getsockname (fd, (struct sockaddr *)&addr, &len);
    close (fd);
    return ntohs (addr.sin_port);
}

//  The test's directory, removed by jr_h_cleanup (a failing CHECK has shown
//  the logs by then) unless $JR_KEEP_TEST_DIRS is set.
static char s_test_dir[256];

void
jr_h_env_init (jr_h_env_t *env, const char *name)
{
    memset (env, 0, sizeof *env);
    snprintf (env->dir, sizeof env->dir, "/tmp/jr-test-%s-XXXXXX", name);
    if (!mkdtemp (env->dir))
        abort ();
    snprintf (s_test_dir, sizeof s_test_dir, "%s", env->dir);
    env->port_clients = s_free_port ();
    do
        env->port_workers = s_free_port ();
    while (env->port_workers == env->port_clients);
    do
        env->port_ingester = s_free_port ();
    while (env->port_ingester == env->port_clients || env->port_ingester == env->port_workers);
    snprintf (env->clients_ep, sizeof env->clients_ep, "tcp://127.0.0.1:%d", env->port_clients);
    snprintf (env->workers_ep, sizeof env->workers_ep, "tcp://127.0.0.1:%d", env->port_workers);
    snprintf (env->ingester_ep, sizeof env->ingester_ep, "tcp://127.0.0.1:%d", env->port_ingester);
    snprintf (env->db, sizeof env->db, "%s/results.db", env->dir);
    setenv ("JR_BROKER", env->clients_ep, 1);
    setenv ("JR_INGESTER", env->ingester_ep, 1);
    unsetenv ("JR_KEYS");  //  a test before may have used keys
}

bool
jr_h_env_keys (jr_h_env_t *env)
{
    snprintf (env->keys, sizeof env->keys, "%s/keys", env->dir);
    char jr[512], cmd[2048];
    jr_h_bin (jr, sizeof jr, "jr");
    const char *src = getenv ("JR_SRC");
    snprintf (cmd, sizeof cmd, "bash %s/deploy/keys-init.sh %s %s 2>/dev/null", src ? src : ".",
              env->keys, jr);
    if (system (cmd) != 0)
        return false;
    char client[400];
    jr_h_keys_of (env, "client", client, sizeof client);
    setenv ("JR_KEYS", client, 1);
    return true;
}

void
jr_h_keys_of (const jr_h_env_t *env, const char *kind, char *out, size_t size)
{
    snprintf (out, size, "%s/%s", env->keys, kind);
}

//  The kind of keys a command line runs with: that of the first jr daemon
//  it names (after `ip netns exec NS` too), or NULL.
static const char *
s_keys_kind (char *const argv[])
{
    static const char *daemons[][2] = { { "jr-broker", "broker" },
                                        { "jr-ingester", "ingester" },
                                        { "jr-worker", "worker" } };
    for (int a = 0; argv[a]; a++) {
        const char *base = strrchr (argv[a], '/');
        base = base ? base + 1 : argv[a];
        for (size_t d = 0; d < sizeof daemons / sizeof daemons[0]; d++)
            if (strcmp (base, daemons[d][0]) == 0)
                return daemons[d][1];
    }
    return NULL;
}

pid_t
jr_h_spawn (jr_h_env_t *env, const char *label, const char *bin, ...)
{
    char *argv[64];
    int argc = 0;
    char path[512];
    jr_h_bin (path, sizeof path, bin);
    argv[argc++] = path;
    va_list args;
    va_start (args, bin);
    char *arg;
    while (argc < 63 && (arg = va_arg (args, char *)))
        argv[argc++] = arg;
    va_end (args);
    argv[argc] = NULL;
    return jr_h_spawn_argv (env, label, argv);
}

pid_t
jr_h_broker (jr_h_env_t *env, const char *extra)
{
    char journal[512];
    snprintf (journal, sizeof journal, "%s/journal", env->dir);
    pid_t pid = jr_h_spawn (env, "broker", "jr-broker", "--clients", env->clients_ep, "--workers",
                            env->workers_ep, "--journal", journal, extra, NULL);
    jr_h_wait_port (env->port_clients);
    return pid;
}

pid_t
jr_h_ingester (jr_h_env_t *env)
{
    pid_t pid = jr_h_spawn (env, "ingester", "jr-ingester", "--bind", env->ingester_ep, "--db",
                            env->db, NULL);
    jr_h_wait_port (env->port_ingester);
    return pid;
}

pid_t
jr_h_worker (jr_h_env_t *env, const char *label, int concurrency, const char *tasks)
{
    char conc[16];
    snprintf (conc, sizeof conc, "%d", concurrency);
    if (tasks)
        return jr_h_spawn (env, label, "jr-worker", "--broker", env->workers_ep, "--ingester",
                           env->ingester_ep, "--concurrency", conc, "--name", label, "--tasks",
                           tasks, NULL);
    return jr_h_spawn (env, label, "jr-worker", "--broker", env->workers_ep, "--ingester",
                       env->ingester_ep, "--concurrency", conc, "--name", label, NULL);
}

bool
jr_h_wait_port (int port)
{
    for (int i = 0; i < 1000; i++) {
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = { .sin_family = AF_INET,
                                    .sin_port = htons ((uint16_t)port),
                                    .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
        int rc = connect (fd, (struct sockaddr *)&addr, sizeof addr);
        close (fd);
        if (rc == 0)
            return true;
        jr_h_sleep_ms (10);
    }
    return false;
}

bool
jr_h_stop (pid_t pid, int sig, int timeout_ms)
{
    kill (pid, sig);
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (waitpid (pid, NULL, WNOHANG) == pid) {
            pthread_mutex_lock (&s_procs_lock);
            for (int i = 0; i < s_nprocs; i++)
                if (s_procs[i] == pid)
                    s_procs[i] = 0;
            pthread_mutex_unlock (&s_procs_lock);
            return true;
        }
        jr_h_sleep_ms (10);
    }
    return false;
}

bool
jr_h_wait_exit (pid_t pid, int timeout_ms, int *status)
{
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (waitpid (pid, status, WNOHANG) == pid) {
            for (int i = 0; i < s_nprocs; i++)
                if (s_procs[i] == pid)
                    s_procs[i] = 0;
            return true;
        }
        jr_h_sleep_ms (10);
    }
    return false;
}

void
jr_h_cleanup (void)
{
    pthread_mutex_lock (&s_procs_lock);
    for (int i = 0; i < s_nprocs; i++)
        if (s_procs[i] > 0) {
            kill (s_procs[i], SIGKILL);
            waitpid (s_procs[i], NULL, 0);
            s_procs[i] = 0;
        }
    s_nprocs = 0;
    pthread_mutex_unlock (&s_procs_lock);
    if (*s_test_dir && !getenv ("JR_KEEP_TEST_DIRS")) {
        char cmd[320];
        snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_test_dir);
        if (system (cmd) != 0)
            fprintf (stderr, "harness: cannot remove %s\n", s_test_dir);
        *s_test_dir = 0;
    }
}

int
jr_h_zombies (pid_t parent)
{
    DIR *dir = opendir ("/proc");
    if (!dir)
        return -1;
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        char path[300], line[512];
        snprintf (path, sizeof path, "/proc/%s/stat", entry->d_name);
        FILE *file = fopen (path, "r");
        if (!file)
            continue;
        //  The command name may hold spaces and parentheses: parse after the last ')'.
        char *paren = fgets (line, sizeof line, file) ? strrchr (line, ')') : NULL;
        char state;
        int ppid;
        if (paren && sscanf (paren + 2, "%c %d", &state, &ppid) == 2 && ppid == parent
            && state == 'Z')
            n++;
        fclose (file);
    }
    closedir (dir);
    return n;
}

char *
jr_h_log (const jr_h_env_t *env, const char *label)
{
    char path[400];
    snprintf (path, sizeof path, "%s/%s.log", env->dir, label);
    FILE *file = fopen (path, "r");
    char *text = calloc (1, 65536);
    assert (text);
    if (file) {
        size_t n = fread (text, 1, 65535, file);
        text[n] = 0;
        fclose (file);
    }
    return text;
}

void
jr_h_dump_logs (jr_h_env_t *env)
{
    DIR *dir = opendir (env->dir);
    struct dirent *entry;
    while (dir && (entry = readdir (dir))) {
        size_t len = strlen (entry->d_name);
        if (len < 5 || strcmp (entry->d_name + len - 4, ".log"))
            continue;
        char cmd[1024];
        snprintf (cmd, sizeof cmd, "echo '--- %s'; tail -n 15 '%s/%s'", entry->d_name, env->dir,
                  entry->d_name);
        if (system (cmd) != 0)
            fprintf (stderr, "cannot show %s\n", entry->d_name);
    }
    if (dir)
        closedir (dir);
}

pid_t
jr_h_spawn_argv (jr_h_env_t *env, const char *label, char *const argv[])
{
    char log[512];
    snprintf (log, sizeof log, "%s/%s.log", env->dir, label);
    char keys[400] = "";
    const char *kind = env->keys[0] ? s_keys_kind (argv) : NULL;
    if (kind)
        jr_h_keys_of (env, kind, keys, sizeof keys);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        if (kind)
            setenv ("JR_KEYS", keys, 1);  //  `ip netns exec` keeps the environment
        int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2 (fd, 1);
        dup2 (fd, 2);
        close (fd);
        execvp (argv[0], argv);
        fprintf (stderr, "cannot exec %s: %s\n", argv[0], strerror (errno));
        _exit (127);
    }
    s_track (pid);
    return pid;
}

void
jr_h_bin (char *out, size_t size, const char *bin)
{
    const char *dir = getenv ("JR_BIN");
    snprintf (out, size, "%s/%s", dir ? dir : ".", bin);
}

bool
jr_h_wait_tcp (const char *host, int port, int timeout_ms)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
    if (inet_pton (AF_INET, host, &addr.sin_addr) != 1)
        return false;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        int rc = connect (fd, (struct sockaddr *)&addr, sizeof addr);
        close (fd);
        if (rc == 0)
            return true;
        jr_h_sleep_ms (10);
    }
    return false;
}

void
jr_h_forget (pid_t pid)
{
    pthread_mutex_lock (&s_procs_lock);
    for (int i = 0; i < s_nprocs; i++)
        if (s_procs[i] == pid)
            s_procs[i] = 0;
    pthread_mutex_unlock (&s_procs_lock);
}
