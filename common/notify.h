/*  notify.h - a daemon's word to its service manager (sd_notify), and SIGHUP as a reload request  */
#ifndef JR_COMMON_NOTIFY_H
#define JR_COMMON_NOTIFY_H
#include <stdbool.h>

//  Under a systemd unit of Type=notify ($NOTIFY_SOCKET set) these tell
//  systemd where the process is; elsewhere, and in a build without
//  libsystemd, they do nothing. status is a line for `systemctl status`
//  (borrowed; NULL: none).

//  Serving: the sockets are bound (and, for the broker, the journal replayed).
void jr_notify_ready (const char *status);
//  A new status line, nothing else changed.
void jr_notify_status (const char *status);
//  A reload (SIGHUP) begins; jr_notify_ready says it ended.
void jr_notify_reloading (void);
//  The process is shutting down (draining, committing what it holds).
void jr_notify_stopping (void);

//  Make SIGHUP a reload request instead of the end of the process (its
//  default action). Idempotent, any thread. The handler only counts, so a
//  loop asks jr_notify_reloads each turn (poll returns EINTR on the signal).
void jr_notify_catch_reload (void);
//  SIGHUPs received so far. Each loop keeps the count it saw last and
//  reloads when it changed, so two servers of one process both reload.
unsigned jr_notify_reloads (void);
#endif
