/*  test_service.c - what a service manager sees: journal lock, sd_notify, SIGHUP reload, health file  */
#include "tests/system/harness.h"
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static jr_h_env_t env;

static void
s_fini (void)
{
    jr_h_cleanup ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (service, .fini = s_fini, .timeout = 120);

//  One job through the cluster of env with the jr binary; its exit status.
static int
s_submit_echo (const char *label)
{
    char jr[512];
    jr_h_bin (jr, sizeof jr, "jr");
    return jr_h_sh ("%s --broker %s --ingester %s submit --wait echo msg=hi > %s/%s.log 2>&1", jr,
                    env.clients_ep, env.ingester_ep, env.dir, label);
}

Test (service, second_broker_on_a_journal_refuses_to_start)
{
    jr_h_env_init (&env, "service-lock");
    jr_h_ingester (&env);
    pid_t first = jr_h_broker (&env, NULL);
    jr_h_worker (&env, "w", 1, NULL);
    CHECK (s_submit_echo ("cli-before") == 0, "the first broker serves");

    //  Other ports, the same journal: only the lock stops it.
    jr_h_env_t other;
    jr_h_env_init (&other, "service-lock-ports");
    char journal[512];
    snprintf (journal, sizeof journal, "%s/journal", env.dir);
    pid_t second = jr_h_spawn (&env, "broker2", "jr-broker", "--clients", other.clients_ep,
                               "--workers", other.workers_ep, "--journal", journal, NULL);
    int status = 0;
    CHECK (jr_h_wait_exit (second, 20000, &status), "the second broker did not stop");
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) != 0,
           "the second broker exits non-zero (status 0x%x)", status);
    char *log = jr_h_log (&env, "broker2");
    char said[64];
    snprintf (said, sizeof said, "pid %d", (int)first);
    bool named = strstr (log, said) != NULL;
    free (log);
    CHECK (named, "the refusal names the holder's pid (%s)", said);
    jr_h_sh ("rm -rf %s", other.dir);

    CHECK (kill (first, 0) == 0, "the first broker still runs");
    CHECK (s_submit_echo ("cli-after") == 0, "the first broker still serves");
    //  Its lock goes with it: a broker after it starts on the journal.
    CHECK (jr_h_stop (first, SIGTERM, 20000), "the first broker stops");
    pid_t third = jr_h_broker (&env, NULL);
    CHECK (kill (third, 0) == 0 && s_submit_echo ("cli-third") == 0,
           "a broker after the first takes the journal");
    jr_h_cleanup ();
}

//  -------------------------------------------------------------------------
//  sd_notify: a datagram socket playing systemd's $NOTIFY_SOCKET

static int
s_notify_socket (const char *path)
{
    int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK (fd >= 0, "socket: %s", strerror (errno));
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    CHECK (strlen (path) < sizeof addr.sun_path, "path too long: %s", path);
    strcpy (addr.sun_path, path);
    unlink (path);
    CHECK (bind (fd, (struct sockaddr *)&addr, sizeof addr) == 0, "bind %s: %s", path,
           strerror (errno));
    struct timeval tv = { .tv_sec = 1 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

//  Wait up to 20 s for a datagram that holds want; true if one came.
static bool
s_notified (int fd, const char *want)
{
    for (int tries = 0; tries < 20; tries++) {
        char text[1024];
        ssize_t n = recv (fd, text, sizeof text - 1, 0);
        if (n < 0)
            continue;
        text[n] = 0;
        if (strstr (text, want))
            return true;
    }
    return false;
}

//  Start a daemon with $NOTIFY_SOCKET set; its socket in *fd.
static pid_t
s_spawn_notified (const char *which, int *fd)
{
    char path[400];
    snprintf (path, sizeof path, "%s/%s.notify", env.dir, which);
    *fd = s_notify_socket (path);
    setenv ("NOTIFY_SOCKET", path, 1);
    pid_t pid = strcmp (which, "broker") == 0     ? jr_h_broker (&env, NULL)
                : strcmp (which, "ingester") == 0 ? jr_h_ingester (&env)
                                                  : jr_h_worker (&env, "worker", 1, NULL);
    unsetenv ("NOTIFY_SOCKET");
    return pid;
}

//  Times needle occurs in a process's log.
static int
s_in_log (const char *label, const char *needle)
{
    char *log = jr_h_log (&env, label);
    int n = 0;
    for (const char *at = log; (at = strstr (at, needle)); at += strlen (needle))
        n++;
    free (log);
    return n;
}

//  Whether needle shows up in a process's log within 10 s: a loop sees a
//  SIGHUP at its next turn (at most its poll timeout, 1 s for the worker).
static bool
s_log_says (const char *label, const char *needle)
{
    for (int waited = 0; waited < 10000; waited += 50, jr_h_sleep_ms (50))
        if (s_in_log (label, needle) >= 1)
            return true;
    return false;
}

Test (service, daemons_notify_ready_reload_and_stopping)
{
    jr_h_env_init (&env, "service-notify");
    CHECK (jr_h_env_keys (&env), "keys-init.sh failed");
    const char *daemons[] = { "ingester", "broker", "worker" };
    int fds[3];
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        pids[i] = s_spawn_notified (daemons[i], &fds[i]);
        CHECK (s_notified (fds[i], "READY=1"), "%s: no READY=1", daemons[i]);
    }
    //  SIGHUP: the servers read their allowed keys again and stay; so does
    //  the worker, which has nothing to read.
    for (int i = 0; i < 3; i++) {
        CHECK (kill (pids[i], SIGHUP) == 0, "kill");
        if (i < 2) {
            CHECK (s_notified (fds[i], "RELOADING=1"), "%s: no RELOADING=1", daemons[i]);
            CHECK (s_notified (fds[i], "READY=1"), "%s: no READY=1 after the reload", daemons[i]);
        }
    }
    CHECK (s_log_says ("worker", "reload asked (SIGHUP)"), "the worker said it was asked");
    for (int i = 0; i < 3; i++)
        CHECK (kill (pids[i], 0) == 0, "%s: SIGHUP ended it", daemons[i]);
    CHECK (s_in_log ("broker", "allowed keys read again") == 1, "the broker read its keys again");
    CHECK (s_in_log ("ingester", "allowed keys read again") == 1,
           "the ingester read its keys again");
    CHECK (s_in_log ("worker", "reload asked (SIGHUP)") == 1, "the worker said it once");
    CHECK (s_submit_echo ("cli") == 0, "the cluster serves after the reloads");
    //  SIGTERM: STOPPING=1, then a clean exit.
    for (int i = 2; i >= 0; i--) {
        CHECK (kill (pids[i], SIGTERM) == 0, "kill");
        CHECK (s_notified (fds[i], "STOPPING=1"), "%s: no STOPPING=1", daemons[i]);
        int status = 0;
        CHECK (jr_h_wait_exit (pids[i], 30000, &status), "%s did not exit", daemons[i]);
        CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0, "%s: exit status 0x%x", daemons[i],
               status);
        close (fds[i]);
    }
    jr_h_cleanup ();
}

//  -------------------------------------------------------------------------
//  --health-file

static bool
s_mtime (const char *path, struct timespec *out)
{
    struct stat st;
    if (stat (path, &st) != 0)
        return false;
    *out = st.st_mtim;
    return true;
}

static bool
s_same (struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

Test (service, worker_health_file_is_fresh_while_connected_and_stale_after)
{
    jr_h_env_init (&env, "service-health");
    char path[400];
    snprintf (path, sizeof path, "%s/health", env.dir);
    jr_h_ingester (&env);
    pid_t broker = jr_h_broker (&env, NULL);
    //  The environment variable, as a compose file would set it.
    setenv ("JR_WORKER_HEALTH_FILE", path, 1);
    pid_t worker = jr_h_worker (&env, "worker", 1, NULL);
    unsetenv ("JR_WORKER_HEALTH_FILE");
    struct timespec first, now;
    int waited = 0;
    while (!s_mtime (path, &first) && waited < 20000) {
        jr_h_sleep_ms (100);
        waited += 100;
    }
    CHECK (s_mtime (path, &first), "the worker made no health file");
    //  Broker heartbeats keep touching it.
    bool moved = false;
    for (waited = 0; !moved && waited < 20000; waited += 100) {
        jr_h_sleep_ms (100);
        moved = s_mtime (path, &now) && !s_same (now, first);
    }
    CHECK (moved, "the health file was not touched again while connected");
    CHECK (jr_h_sh ("test -n \"$(find %s -newermt '-10 seconds')\"", path) == 0,
           "the compose healthcheck passes while connected");

    CHECK (jr_h_stop (broker, SIGKILL, 10000), "kill -9 the broker");
    jr_h_sleep_ms (2000);  //  what was on its way when it died
    struct timespec before, after;
    CHECK (s_mtime (path, &before), "the health file is gone");
    jr_h_sleep_ms (3000);
    CHECK (s_mtime (path, &after) && s_same (before, after),
           "the health file was touched with no broker");
    CHECK (kill (worker, 0) == 0, "the worker waits for its broker, it does not exit");
    jr_h_cleanup ();
}

Test (service, sighup_reads_a_key_rewritten_in_place_at_once)
{
    jr_h_env_init (&env, "service-reload");
    CHECK (jr_h_env_keys (&env), "keys-init.sh failed");
    jr_h_ingester (&env);
    int fd;
    pid_t broker = s_spawn_notified ("broker", &fd);
    CHECK (s_notified (fd, "READY=1"), "broker: no READY=1");
    jr_h_worker (&env, "w", 1, NULL);
    CHECK (s_submit_echo ("cli-admitted") == 0, "the client key is admitted");
    //  The client's allowed key becomes another in place: the folder does
    //  not change, so without a reload the broker would admit the old key
    //  for up to 5 s more.
    char broker_keys[300];
    jr_h_keys_of (&env, "broker", broker_keys, sizeof broker_keys);
    CHECK (jr_h_sh ("cat %s/allow/admin/admin.cert > %s/allow/client/client.cert", broker_keys,
                    broker_keys)
               == 0,
           "cannot rewrite the client's key");
    CHECK (kill (broker, SIGHUP) == 0, "kill");
    CHECK (s_notified (fd, "READY=1"), "broker: no READY=1 after the reload");
    char jr[512];
    jr_h_bin (jr, sizeof jr, "jr");
    int rc = jr_h_sh ("timeout 10 %s --broker %s --ingester %s submit echo msg=hi > %s/%s.log 2>&1",
                      jr, env.clients_ep, env.ingester_ep, env.dir, "cli-refused");
    CHECK (rc != 0, "the old client key is still admitted after the reload");
    CHECK (s_in_log ("broker", "is not allowed here") >= 1, "the broker says it refused the key");
    CHECK (kill (broker, 0) == 0, "the broker runs");
    close (fd);
    jr_h_cleanup ();
}
