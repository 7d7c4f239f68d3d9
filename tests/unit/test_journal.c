/*  test_journal.c - the broker's journal: round trip, torn and corrupt tails, compaction, full disk  */
#include "broker/journal.h"
#include "common/log.h"
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

Test (journal, compaction_replaces_history)
{
    s_write_jobs (200);
    s_seen_t seen = { 0 };
    jr_journal_t *j = jr_journal_open (s_dir, JR_FSYNC_ALWAYS, 100, s_count, &seen);
    uint64_t before = jr_journal_size (j);
    cr_assert_eq (jr_journal_compact_begin (j), 0);
    jr_rec_t rec = { .type = JR_REC_ACCEPT, .task = { (const uint8_t *)"echo", 4 } };
    rec.id[0] = 7;
    jr_journal_append (j, &rec, false);
    cr_assert_eq (jr_journal_compact_end (j), 0);
    cr_assert_lt (jr_journal_size (j), before);
    jr_journal_close (&j);
    s_seen_t after = { 0 };
    j = jr_journal_open (s_dir, JR_FSYNC_ALWAYS, 100, s_count, &after);
    cr_assert_eq (after.n, 1, "only the snapshot is replayed");
    jr_journal_close (&j);
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
