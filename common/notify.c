/*  notify.c - a daemon's word to its service manager (sd_notify), and SIGHUP as a reload request  */
#include "common/notify.h"
#include "common/log.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#ifdef JR_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

//  One state line and the rest; sd_notify keeps $NOTIFY_SOCKET, so a worker's
//  exec children inherit it, but systemd takes only the main pid's word
//  (NotifyAccess=main, the default).
static void
s_notify (const char *state, const char *status)
{
#ifdef JR_HAVE_SYSTEMD
    char text[512];
    snprintf (text, sizeof text, "%s%s%s%s", state ? state : "", state && status ? "\n" : "",
              status ? "STATUS=" : "", status ? status : "");
    int rc = sd_notify (0, text);
    if (rc < 0)
        jr_warn ("state=%s error=%d: cannot notify the service manager", state ? state : "STATUS",
                 -rc);
    else if (rc > 0)
        jr_debug ("state=%s: told the service manager", state ? state : "STATUS");
#else
    (void)state;
    (void)status;
#endif
}

void
jr_notify_ready (const char *status)
{
    s_notify ("READY=1", status);
}

void
jr_notify_status (const char *status)
{
    if (status)
        s_notify (NULL, status);
}

void
jr_notify_reloading (void)
{
    s_notify ("RELOADING=1", "reloading");
}

void
jr_notify_stopping (void)
{
    s_notify ("STOPPING=1", "stopping");
}

static atomic_uint s_reloads;
static pthread_once_t s_caught = PTHREAD_ONCE_INIT;

static void
s_on_hup (int signum)
{
    (void)signum;
    atomic_fetch_add (&s_reloads, 1);
}

static void
s_catch (void)
{
    //  SA_RESTART: a write in progress goes on; poll still returns EINTR.
    struct sigaction action = { .sa_handler = s_on_hup, .sa_flags = SA_RESTART };
    sigemptyset (&action.sa_mask);
    sigaction (SIGHUP, &action, NULL);
}

void
jr_notify_catch_reload (void)
{
    pthread_once (&s_caught, s_catch);
}

unsigned
jr_notify_reloads (void)
{
    return atomic_load (&s_reloads);
}
