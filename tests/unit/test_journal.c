/*  test_journal.c - the broker's journal: round trip, torn and corrupt tails, compaction, full and read-only disks  */
#include "broker/broker.h"
#include "broker/journal.h"
#include "common/log.h"
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    int n;
    jr_rec_t last;
    char last_task[64];
    int accepts, dispatches, states;
} s_seen_t;

static void
s_count (const jr_rec_t *rec, void *arg)
{
    s_seen_t *seen = arg;
    seen->n++;
    seen->last = *rec;
    if (rec->type == JR_REC_ACCEPT) {
        seen->accepts++;
        snprintf (seen->last_task, sizeof seen->last_task, "%.*s", (int)rec->task.len,
                  (const char *)rec->task.ptr);
    }
    seen->dispatches += rec->type == JR_REC_DISPATCH;
    seen->states += rec->type == JR_REC_STATE;
}

static char s_dir[64];

static void
s_setup (void)
{
    jr_log_init ("test", JR_LOG_ERROR);
    strcpy (s_dir, "/tmp/jr-journal-XXXXXX");
    cr_assert_not_null (mkdtemp (s_dir));
}

static void
s_teardown (void)
{
    umount2 (s_dir, MNT_DETACH);  //  a read-only test that failed half way
    chmod (s_dir, 0755);
    char cmd[128];
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_dir);
    cr_assert_eq (system (cmd), 0);
}

TestSuite (journal, .init = s_setup, .fini = s_teardown);

static void
s_write_jobs (int n)
{
    s_seen_t seen = { 0 };
    jr_journal_t *j = jr_journal_open (s_dir, JR_FSYNC_ALWAYS, 100, s_count, &seen);
    cr_assert_not_null (j);
    for (int i = 0; i < n; i++) {
        jr_rec_t rec = { .type = JR_REC_ACCEPT,
                         .priority = -i,
                         .timeout_ms = 500,
                         .max_attempts = 3,
                         .created_us = 1000 + i,
                         .accepted_us = 2000 + i,
                         .task = { (const uint8_t *)"echo", 4 },
                         .vars = { (const uint8_t *)"\x81\xa1k\xa1v", 5 } };
        rec.id[0] = (uint8_t)i;
        rec.id[1] = (uint8_t)(i >> 8);
        jr_journal_append (j, &rec, true);
        rec.type = JR_REC_DISPATCH;
        rec.attempt = 1;
        jr_journal_append (j, &rec, false);
        cr_assert_eq (jr_journal_flush (j), 0);  //  one record pair per flush
    }
    jr_journal_close (&j);
}

//  The one journal file of the test directory.
static void
s_file (char *path, size_t size)
{
    snprintf (path, size, "%s/journal-%016d.log", s_dir, 1);
}

Test (journal, round_trip)
{
    s_write_jobs (100);
    s_seen_t seen = { 0 };
    jr_journal_t *j = jr_journal_open (s_dir, JR_FSYNC_NEVER, 100, s_count, &seen);
    cr_assert_not_null (j);
    cr_assert_eq (seen.accepts, 100);
    cr_assert_eq (seen.dispatches, 100);
    cr_assert_str_eq (seen.last_task, "echo");
    cr_assert_eq (seen.last.attempt, 1);
    cr_assert_eq (seen.last.id[0], 99);
    jr_journal_close (&j);
}

Test (journal, torn_tail_keeps_every_complete_record)
{
    s_write_jobs (50);
    char path[256];
    s_file (path, sizeof path);
    struct stat st;
    cr_assert_eq (stat (path, &st), 0);
    //  Cut in the middle of the last record.
    cr_assert_eq (truncate (path, st.st_size - 7), 0);
    s_seen_t seen = { 0 };
    jr_journal_t *j = jr_journal_open (s_dir, JR_FSYNC_NEVER, 100, s_count, &seen);
    cr_assert_not_null (j);
    cr_assert_eq (seen.accepts, 50);
    cr_assert_eq (seen.dispatches, 49, "the torn dispatch is dropped");
    jr_journal_close (&j);
    printf ("journal: torn tail: %d of 100 records kept\n", seen.n);
    //  The damaged file was cut: a second open reads the same, cleanly.
    s_seen_t again = { 0 };
    j = jr_journal_open (s_dir, JR_FSYNC_NEVER, 100, s_count, &again);
    cr_assert_eq (again.n, seen.n);
    jr_journal_close (&j);
}

Test (journal, flipped_byte_stops_replay_there)
{
    s_write_jobs (50);
    char path[256];
    s_file (path, sizeof path);
    struct stat st;
    cr_assert_eq (stat (path, &st), 0);
    //  Flip a byte inside a record about two thirds in.
    int fd = open (path, O_RDWR);
    off_t at = st.st_size * 2 / 3;
    uint8_t b;
    cr_assert_eq (pread (fd, &b, 1, at), 1);
    b ^= 0x40;
    cr_assert_eq (pwrite (fd, &b, 1, at), 1);
    close (fd);
    s_seen_t seen = { 0 };
    jr_journal_t *j = jr_journal_open (s_dir, JR_FSYNC_NEVER, 100, s_count, &seen);
    cr_assert_not_null (j);
    cr_assert_gt (seen.n, 50, "records before the damage are kept");
    cr_assert_lt (seen.n, 100, "records from the damage on are not replayed");
    printf ("journal: flipped byte: %d of 100 records kept\n", seen.n);
    jr_journal_close (&j);
}

//  A snapshot of one job, as the broker's writer would append it.
static void
s_snapshot_one (jr_journal_t *journal, void *arg)
{
    (void)arg;
    jr_rec_t rec = { .type = JR_REC_ACCEPT, .task = { (const uint8_t *)"echo", 4 } };
    rec.id[0] = 7;
    jr_journal_append (journal, &rec, false);
}

//  Poll until the compaction under way ends; its result.
static int
s_compact_wait (jr_journal_t *j)
{
    int rc;
    while ((rc = jr_journal_compact_poll (j)) == 0)  //  the test's timeout bounds this
        usleep (1000);
    return rc;
}

Test (journal, compaction_replaces_history)
{
    s_write_jobs (200);
    s_seen_t seen = { 0 };
    jr_journal_t *j = jr_journal_open (s_dir, JR_FSYNC_ALWAYS, 100, s_count, &seen);
    uint64_t before = jr_journal_size (j);
    cr_assert_eq (jr_journal_compact_begin (j, s_snapshot_one, NULL), 0);
    cr_assert (jr_journal_compacting (j));
    cr_assert_eq (s_compact_wait (j), 1);
    cr_assert_not (jr_journal_compacting (j));
    cr_assert_lt (jr_journal_size (j), before);
    jr_journal_close (&j);
    s_seen_t after = { 0 };
    j = jr_journal_open (s_dir, JR_FSYNC_ALWAYS, 100, s_count, &after);
    cr_assert_eq (after.n, 1, "only the snapshot is replayed");
    jr_journal_close (&j);
}

//  The journal as a kill -9 would leave it now: a copy of the directory,
//  replayed.
static s_seen_t
s_replay_copy (void)
{
    char cmd[512], copy[80];
    snprintf (copy, sizeof copy, "%s/crash", s_dir);
    snprintf (cmd, sizeof cmd, "rm -rf %s && mkdir %s && cp %s/journal-* %s/", copy, copy, s_dir,
              copy);
    cr_assert_eq (system (cmd), 0);
    s_seen_t seen = { 0 };
    jr_journal_t *j = jr_journal_open (copy, JR_FSYNC_NEVER, 100, s_count, &seen);
    cr_assert_not_null (j);
    jr_journal_close (&j);
    return seen;
}

static int s_started[2], s_release[2];  //  pipes: snapshot writer -> test, test -> writer

static void
s_slow_snapshot (void)
{
    char byte = 1;
    if (write (s_started[1], &byte, 1) != 1 || read (s_release[0], &byte, 1) != 1)
        return;
}

//  Start a compaction whose writer waits for a byte on s_release.
static void
s_begin_held (jr_journal_t *j)
{
    cr_assert_eq (pipe (s_started), 0);
    cr_assert_eq (pipe (s_release), 0);
    jr_journal_set_snapshot_hook (s_slow_snapshot);
    cr_assert_eq (jr_journal_compact_begin (j, s_snapshot_one, NULL), 0);
    char byte;
    cr_assert_eq (read (s_started[0], &byte, 1), 1, "the writer started");
}

static void
s_accept (jr_journal_t *j, uint8_t id)
{
    jr_rec_t rec = { .type = JR_REC_ACCEPT, .task = { (const uint8_t *)"echo", 4 } };
    rec.id[0] = id;
    rec.id[15] = 0xee;
    jr_journal_append (j, &rec, true);
    cr_assert_eq (jr_journal_flush (j), 0);
}

//  A kill -9 while the snapshot is written, and after it is installed:
//  both times every accepted job is replayed.
Test (journal, kill_during_compaction_loses_nothing)
{
    s_write_jobs (200);
    s_seen_t seen = { 0 };
    jr_journal_t *j = jr_journal_open (s_dir, JR_FSYNC_ALWAYS, 100, s_count, &seen);
    s_begin_held (j);
    for (int i = 0; i < 10; i++)  //  accepted while the snapshot is written
        s_accept (j, (uint8_t)i);
    cr_assert_eq (jr_journal_compact_poll (j), 0, "the writer still waits");
    s_seen_t crash = s_replay_copy ();
    cr_assert_eq (crash.accepts, 210, "the old files and the new one hold everything");
    cr_assert_eq (write (s_release[1], "", 1), 1);
    cr_assert_eq (s_compact_wait (j), 1);
    s_accept (j, 10);
    crash = s_replay_copy ();
    cr_assert_eq (crash.accepts, 1 + 11, "the snapshot, then what came after it");
    cr_assert_eq (crash.dispatches, 0, "the history is gone");
    jr_journal_set_snapshot_hook (NULL);
    jr_journal_close (&j);
}

//  A broker that stops while the writer runs: the writer is killed, its
//  half snapshot removed, and the old files replay everything.
Test (journal, close_during_compaction_keeps_the_old_files)
{
    s_write_jobs (100);
    s_seen_t seen = { 0 };
    jr_journal_t *j = jr_journal_open (s_dir, JR_FSYNC_ALWAYS, 100, s_count, &seen);
    s_begin_held (j);
    s_accept (j, 1);
    jr_journal_close (&j);
    jr_journal_set_snapshot_hook (NULL);
    char cmd[160];
    snprintf (cmd, sizeof cmd, "ls %s | grep -q snap", s_dir);
    cr_assert_neq (system (cmd), 0, "no half snapshot left behind");
    s_seen_t after = { 0 };
    j = jr_journal_open (s_dir, JR_FSYNC_NEVER, 100, s_count, &after);
    cr_assert_eq (after.accepts, 101);
    cr_assert_eq (after.dispatches, 100);
    jr_journal_close (&j);
}

static void
s_writer_dies (void)
{
    raise (SIGKILL);
}

Test (journal, snapshot_writer_killed_keeps_the_old_files)
{
    s_write_jobs (100);
    s_seen_t seen = { 0 };
    jr_journal_t *j = jr_journal_open (s_dir, JR_FSYNC_ALWAYS, 100, s_count, &seen);
    jr_journal_set_snapshot_hook (s_writer_dies);
    cr_assert_eq (jr_journal_compact_begin (j, s_snapshot_one, NULL), 0);
    s_accept (j, 1);
    cr_assert_eq (s_compact_wait (j), JR_EIO);
    cr_assert_not (jr_journal_wants_compaction (j), "a failed compaction waits before a retry");
    jr_journal_set_snapshot_hook (NULL);
    jr_journal_close (&j);
    s_seen_t after = { 0 };
    j = jr_journal_open (s_dir, JR_FSYNC_NEVER, 100, s_count, &after);
    cr_assert_eq (after.accepts, 101);
    cr_assert_eq (after.dispatches, 100);
    jr_journal_close (&j);
    char cmd[160];
    snprintf (cmd, sizeof cmd, "ls %s | grep -q snap", s_dir);
    cr_assert_neq (system (cmd), 0, "no half snapshot left behind");
}

//  Make s_dir read-only, or writable again. Root ignores file modes, so
//  root gets a read-only bind mount in a mount namespace of its own.
static void
s_read_only (bool on)
{
    if (geteuid () != 0) {
        cr_assert_eq (chmod (s_dir, on ? 0555 : 0755), 0);
        return;
    }
    static bool unshared;
    if (!unshared && (unshare (CLONE_NEWNS) || mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)))
        cr_skip_test ("no mount namespace for a read-only folder: %s", strerror (errno));
    unshared = true;
    if (on) {
        cr_assert_eq (mount (s_dir, s_dir, NULL, MS_BIND, NULL), 0, "%s", strerror (errno));
        cr_assert_eq (mount (NULL, s_dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL), 0);
    }
    else
        cr_assert_eq (umount2 (s_dir, 0), 0);
}

//  Send stderr to a file until s_captured, which counts the lines there
//  that contain what.
static int s_saved_stderr = -1;
static FILE *s_capture;

static void
s_capture_stderr (void)
{
    s_capture = tmpfile ();
    cr_assert_not_null (s_capture);
    s_saved_stderr = dup (2);
    dup2 (fileno (s_capture), 2);
}

static int
s_captured (const char *what)
{
    dup2 (s_saved_stderr, 2);
    close (s_saved_stderr);
    rewind (s_capture);
    char line[4096];
    int n = 0;
    while (fgets (line, sizeof line, s_capture))
        n += strstr (line, what) != NULL;
    fclose (s_capture);
    return n;
}

Test (journal, read_only_folder_logs_compaction_failure_once)
{
    s_write_jobs (10);
    s_seen_t seen = { 0 };
    jr_journal_t *j = jr_journal_open (s_dir, JR_FSYNC_ALWAYS, 100, s_count, &seen);
    s_read_only (true);
    s_capture_stderr ();
    for (int i = 0; i < 5; i++)
        cr_assert_eq (jr_journal_compact_begin (j, s_snapshot_one, NULL), JR_EIO);
    cr_assert_eq (s_captured ("compaction failed"), 1, "one line for one failure episode");
    s_read_only (false);
    cr_assert_eq (jr_journal_compact_begin (j, s_snapshot_one, NULL), 0);
    cr_assert_eq (s_compact_wait (j), 1);
    s_read_only (true);
    s_capture_stderr ();
    cr_assert_eq (jr_journal_compact_begin (j, s_snapshot_one, NULL), JR_EIO);
    cr_assert_eq (s_captured ("compaction failed"), 1, "a new episode is logged again");
    s_read_only (false);
    jr_journal_close (&j);
}
Test (journal, read_only_folder_refuses_to_start)
{
    s_write_jobs (10);
    s_read_only (true);
    s_capture_stderr ();
    s_seen_t seen = { 0 };
    jr_journal_t *j = jr_journal_open (s_dir, JR_FSYNC_ALWAYS, 100, s_count, &seen);
    jr_broker_config_t config = JR_BROKER_CONFIG_DEFAULT;
    config.journal = s_dir;
    jr_broker_t *broker = jr_broker_new (&config);
    int lines = s_captured ("cannot create journal file, not starting");
    s_read_only (false);
    cr_assert_null (j);
    cr_assert_null (broker);
    cr_assert_eq (lines, 2, "each says why");
}

Test (journal, full_disk_leaves_nothing_half_written)
{
    s_write_jobs (3);
    s_seen_t seen = { 0 };
    jr_journal_t *j = jr_journal_open (s_dir, JR_FSYNC_ALWAYS, 100, s_count, &seen);
    jr_rec_t rec = { .type = JR_REC_ACCEPT, .task = { (const uint8_t *)"echo", 4 } };
    jr_journal_append (j, &rec, true);
    jr_journal_fail_writes (j, 1, ENOSPC);
    cr_assert_eq (jr_journal_flush (j), JR_EDISK_FULL);
    jr_journal_discard (j);
    cr_assert (!jr_journal_pending (j));
    jr_journal_close (&j);
    s_seen_t after = { 0 };
    j = jr_journal_open (s_dir, JR_FSYNC_ALWAYS, 100, s_count, &after);
    cr_assert_eq (after.accepts, 3, "the refused record is not there");
    jr_journal_close (&j);
}
