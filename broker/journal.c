/*  journal.c - append-only files of checksummed records, group commit, replay, compaction  */
#include "broker/journal.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/log.h"
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

//  On disk a record is [u32 body length][u32 CRC-32C of body][body], all
//  little-endian. Body: u8 type, 16-byte id, u32 attempt, then by type:
//  ACCEPT   i32 priority, u32 timeout_ms, u32 max_attempts, i64 created_us,
//           i64 accepted_us, u16 task length, task, u32 vars length, vars
//  DISPATCH, CANCEL nothing more
//  STATE    u8 state, i64 at_us
//  Files are named journal-<16 digit sequence>.log and replayed in order.
//  A snapshot is written as journal-<seq>.snap by a forked child, from its
//  copy-on-write view of the broker, while the broker goes on in the file
//  after it (seq + 1); once synced it is renamed to .log and the files
//  before it are removed. Until then the old files hold everything.
#define S_HEADER      8
#define S_MAX_BODY    (64 + 65536 + (1u << 20) + 4096)
#define S_MIN_COMPACT (64ull << 20)
#define S_SNAP_CHUNK  (1u << 20)      //  the snapshot writer writes this much at once
#define S_RETRY_US    (10 * 1000000)  //  a failed compaction waits this long

struct _jr_journal_t {
    char *dir;               //  the journal directory
    jr_fsync_t mode;         //  when to fdatasync
    int64_t batch_us;        //  --fsync batch interval
    int fd;                  //  current file
    uint64_t seq;            //  its sequence number
    uint64_t file_size;      //  bytes in the current file
    uint64_t older_size;     //  bytes in older files
    uint64_t snapshot_size;  //  size of the last snapshot file
    uint8_t *buf;            //  records not yet written
    size_t len, cap;
    bool durable;           //  buffer holds a record a client waits on
    bool unsynced;          //  written but not yet synced
    int64_t last_sync;      //  mono us
    uint64_t compact_from;  //  first file seq that a snapshot replaces
    int fail_n, fail_err;   //  injected write failures
    pid_t child;            //  the snapshot writer, 0 = none
    uint64_t snap_seq;      //  the snapshot it writes
    int snap_err;           //  in the writer: the first write error
    bool in_child;          //  this is the writer: appends go to the snapshot
    bool compact_failing;   //  a compaction error was logged: quiet until one works
    int64_t retry_at;       //  mono us: no compaction before
    int lock_fd;            //  DIR/lock, flocked while open: one broker per journal
};

static void (*s_snapshot_hook) (void);

//  Write all of buf; 0 or the errno of the failure.
static int
s_write_all (int fd, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write (fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : EIO;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

//  -------------------------------------------------------------------------
//  Little-endian encoding

static uint8_t *
s_put (uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint64_t
s_get (const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void
s_reserve (jr_journal_t *self, size_t more)
{
    if (self->len + more <= self->cap)
        return;
    size_t cap = self->cap ? self->cap : 65536;
    while (cap < self->len + more)
        cap *= 2;
    self->buf = realloc (self->buf, cap);
    assert (self->buf);
    self->cap = cap;
}

void
jr_journal_append (jr_journal_t *self, const jr_rec_t *rec, bool durable)
{
    size_t body = 1 + JR_ID_SIZE + 4;
    if (rec->type == JR_REC_ACCEPT)
        body += 4 + 4 + 4 + 8 + 8 + 2 + rec->task.len + 4 + rec->vars.len;
    else if (rec->type == JR_REC_STATE)
        body += 1 + 8;
    s_reserve (self, S_HEADER + body);
    uint8_t *start = self->buf + self->len;
    uint8_t *p = start + S_HEADER;
    *p++ = (uint8_t)rec->type;
    memcpy (p, rec->id, JR_ID_SIZE);
    p = s_put (p + JR_ID_SIZE, rec->attempt, 4);
    if (rec->type == JR_REC_ACCEPT) {
        p = s_put (p, (uint32_t)rec->priority, 4);
        p = s_put (p, rec->timeout_ms, 4);
        p = s_put (p, rec->max_attempts, 4);
        p = s_put (p, (uint64_t)rec->created_us, 8);
        p = s_put (p, (uint64_t)rec->accepted_us, 8);
        p = s_put (p, rec->task.len, 2);
        if (rec->task.len)
            memcpy (p, rec->task.ptr, rec->task.len);
        p = s_put (p + rec->task.len, rec->vars.len, 4);
        if (rec->vars.len)
            memcpy (p, rec->vars.ptr, rec->vars.len);
        p += rec->vars.len;
    }
    else if (rec->type == JR_REC_STATE) {
        *p++ = (uint8_t)rec->state;
        p = s_put (p, (uint64_t)rec->at_us, 8);
    }
    assert ((size_t)(p - start) == S_HEADER + body);
    s_put (start, body, 4);
    s_put (start + 4, jr_crc32c (0, start + S_HEADER, body), 4);
    self->len += S_HEADER + body;
    self->durable = self->durable || durable;
    if (self->in_child && self->len >= S_SNAP_CHUNK) {  //  bound the writer's memory
        if (!self->snap_err)
            self->snap_err = s_write_all (self->fd, self->buf, self->len);
        self->len = 0;
    }
}

//  Decode one body; false if it does not parse (a CRC collision or a bug).
static bool
s_decode (const uint8_t *p, size_t len, jr_rec_t *rec)
{
    memset (rec, 0, sizeof *rec);
    if (len < 1 + JR_ID_SIZE + 4)
        return false;
    const uint8_t *end = p + len;
    rec->type = *p++;
    memcpy (rec->id, p, JR_ID_SIZE);
    rec->attempt = (uint32_t)s_get (p + JR_ID_SIZE, 4);
    p += JR_ID_SIZE + 4;
    if (rec->type == JR_REC_DISPATCH || rec->type == JR_REC_CANCEL)
        return p == end;
    if (rec->type == JR_REC_STATE) {
        if (end - p != 9)
            return false;
        rec->state = *p;
        rec->at_us = (int64_t)s_get (p + 1, 8);
        return true;
    }
    if (rec->type != JR_REC_ACCEPT || end - p < 34)
        return false;
    rec->priority = (int32_t)s_get (p, 4);
    rec->timeout_ms = (uint32_t)s_get (p + 4, 4);
    rec->max_attempts = (uint32_t)s_get (p + 8, 4);
    rec->created_us = (int64_t)s_get (p + 12, 8);
    rec->accepted_us = (int64_t)s_get (p + 20, 8);
    size_t task_len = (size_t)s_get (p + 28, 2);
    p += 30;
    if ((size_t)(end - p) < task_len + 4)
        return false;
    rec->task = (jr_bytes_t){ p, task_len };
    p += task_len;
    size_t vars_len = (size_t)s_get (p, 4);
    p += 4;
    if ((size_t)(end - p) != vars_len)
        return false;
    rec->vars = (jr_bytes_t){ vars_len ? p : NULL, vars_len };
    return true;
}

//  -------------------------------------------------------------------------
//  Files

static char *
s_path_ext (const jr_journal_t *self, uint64_t seq, const char *ext)
{
    char *path = malloc (strlen (self->dir) + 64);
    assert (path);
    sprintf (path, "%s/journal-%016llu.%s", self->dir, (unsigned long long)seq, ext);
    return path;
}

static char *
s_path (const jr_journal_t *self, uint64_t seq)
{
    return s_path_ext (self, seq, "log");
}

static int
s_compare_seq (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

//  Sequence numbers of the journal files with this extension, sorted;
//  *count gets how many.
static uint64_t *
s_list (const char *dir, const char *ext, size_t *count)
{
    uint64_t *seqs = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir (dir);
    struct dirent *entry;
    while (d && (entry = readdir (d))) {
        unsigned long long seq;
        char tail[8];
        if (sscanf (entry->d_name, "journal-%16llu.%7s", &seq, tail) != 2 || strcmp (tail, ext))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            seqs = realloc (seqs, cap * sizeof *seqs);
            assert (seqs);
        }
        seqs[n++] = seq;
    }
    if (d)
        closedir (d);
    if (n)  //  qsort of NULL is undefined, even for zero items
        qsort (seqs, n, sizeof *seqs, s_compare_seq);
    *count = n;
    return seqs;
}

static void
s_sync_dir (const jr_journal_t *self)
{
    int fd = open (self->dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync (fd);
        close (fd);
    }
}

//  Replay one file; returns the offset of the first bad record, or its size.
static uint64_t
s_replay_file (const char *path, jr_replay_fn *fn, void *arg, uint64_t *records)
{
    int fd = open (path, O_RDONLY);
    if (fd < 0)
        return 0;
    struct stat st;
    fstat (fd, &st);
    uint64_t size = (uint64_t)st.st_size, pos = 0;
    const uint8_t *map = size ? mmap (NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close (fd);
    if (map == MAP_FAILED)
        return 0;
    if (map)
        madvise ((void *)map, size, MADV_SEQUENTIAL);
    jr_rec_t rec;
    while (size - pos >= S_HEADER) {
        uint64_t body = s_get (map + pos, 4);
        if (body > S_MAX_BODY || body > size - pos - S_HEADER)
            break;
        if ((uint32_t)s_get (map + pos + 4, 4) != jr_crc32c (0, map + pos + S_HEADER, body))
            break;
        if (!s_decode (map + pos + S_HEADER, body, &rec))
            break;
        fn (&rec, arg);
        (*records)++;
        pos += S_HEADER + body;
    }
    if (map)
        munmap ((void *)map, size);
    return pos;
}

//  Make seq the current file; 0 or errno.
static int
s_open_file (jr_journal_t *self, uint64_t seq)
{
    char *path = s_path (self, seq);
    int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    free (path);
    if (fd < 0)
        return errno;
    if (self->fd >= 0) {
        self->older_size += self->file_size;
        close (self->fd);
    }
    self->fd = fd;
    self->seq = seq;
    self->file_size = 0;
    s_sync_dir (self);
    return 0;
}

//  One broker per journal folder: an exclusive flock on DIR/lock, which
//  holds the holder's pid for the message of the next one. The kernel drops
//  the lock with the process, so a kill -9 leaves nothing stale. 0, or -1
//  with the reason logged.
static int
s_lock (jr_journal_t *self)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/lock", self->dir);
    self->lock_fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    bool writable = self->lock_fd != -1;
    //  A folder we cannot write: no broker can append here, so the lock
    //  guards nothing, and the journal file that cannot be made says why.
    //  A lock file we cannot open in a folder we can write (one left by
    //  root, say) is an error: skipping the lock would let two brokers in.
    if (!writable && (errno == EROFS || errno == EACCES) && access (self->dir, W_OK) == -1) {
        self->lock_fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (self->lock_fd == -1)
            return 0;
    }
    if (self->lock_fd == -1) {
        jr_error ("journal=%s path=%s: cannot open the lock file: %s", self->dir, path,
                  strerror (errno));
        return -1;
    }
    if (flock (self->lock_fd, LOCK_EX | LOCK_NB) == -1) {
        int err = errno;
        char pid[32] = "";
        ssize_t n = pread (self->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn (pid, "\n")] = 0;
        if (err == EWOULDBLOCK)
            jr_error ("journal=%s holder_pid=%s: journal in use by another broker (pid %s), "
                      "not starting",
                      self->dir, *pid ? pid : "?", *pid ? pid : "unknown");
        else
            jr_error ("journal=%s path=%s: cannot lock the journal: %s", self->dir, path,
                      strerror (err));
        return -1;
    }
    char pid[32];
    int len = snprintf (pid, sizeof pid, "%d\n", (int)getpid ());
    if (writable
        && (ftruncate (self->lock_fd, 0) == -1
            || pwrite (self->lock_fd, pid, (size_t)len, 0) != len))
        jr_warn ("journal=%s: cannot write our pid into the lock file: %s", self->dir,
                 strerror (errno));
    return 0;
}

jr_journal_t *
jr_journal_open (const char *dir, jr_fsync_t mode, int batch_ms, jr_replay_fn *fn, void *arg)
{
    if (mkdir (dir, 0755) == -1 && errno != EEXIST) {
        jr_error ("journal=%s: cannot create directory: %s", dir, strerror (errno));
        return NULL;
    }
    jr_journal_t *self = calloc (1, sizeof *self);
    assert (self);
    self->dir = strdup (dir);
    self->mode = mode;
    self->batch_us = (int64_t)batch_ms * 1000;
    self->fd = -1;
    self->lock_fd = -1;
    self->last_sync = jr_clock_mono_us ();
    if (s_lock (self) != 0) {
        jr_journal_close (&self);
        return NULL;
    }
    size_t count;
    uint64_t *seqs = s_list (dir, "snap", &count);
    for (size_t i = 0; i < count; i++) {  //  a compaction that did not finish
        char *path = s_path_ext (self, seqs[i], "snap");
        unlink (path);
        free (path);
    }
    free (seqs);
    seqs = s_list (dir, "log", &count);
    uint64_t records = 0;
    int64_t start = jr_clock_mono_us ();
    bool damaged = false;
    for (size_t i = 0; i < count; i++) {
        char *path = s_path (self, seqs[i]);
        if (damaged) {  //  keep it for a human, out of the replay
            char aside[4096];
            snprintf (aside, sizeof aside, "%s.damaged", path);
            rename (path, aside);
            jr_error ("path=%s: set aside after damage in an earlier file", aside);
            free (path);
            continue;
        }
        struct stat st;
        uint64_t size = stat (path, &st) == 0 ? (uint64_t)st.st_size : 0;
        uint64_t good = s_replay_file (path, fn, arg, &records);
        if (good < size) {
            damaged = true;
            jr_error ("path=%s offset=%llu lost_bytes=%llu: torn or corrupt record, journal "
                      "cut here; every record before it is kept",
                      path, (unsigned long long)good, (unsigned long long)(size - good));
            if (truncate (path, (off_t)good) == -1)
                jr_error ("path=%s: cannot cut the journal: %s", path, strerror (errno));
        }
        self->older_size += good;
        free (path);
    }
    uint64_t next = count ? seqs[count - 1] + 1 : 1;
    free (seqs);
    self->compact_from = next;
    int err = s_open_file (self, next);
    if (err) {
        jr_error ("journal=%s: cannot create journal file, not starting: %s", dir, strerror (err));
        jr_journal_close (&self);
        return NULL;
    }
    self->snapshot_size = 0;
    jr_info ("journal=%s files=%zu records=%llu bytes=%llu replay_ms=%lld: journal replayed", dir,
             count, (unsigned long long)records, (unsigned long long)self->older_size,
             (long long)((jr_clock_mono_us () - start) / 1000));
    return self;
}

static int
s_sync (jr_journal_t *self)
{
    if (fdatasync (self->fd) == -1) {
        jr_error ("journal=%s: fdatasync failed: %s", self->dir, strerror (errno));
        return JR_EIO;
    }
    self->unsynced = false;
    self->last_sync = jr_clock_mono_us ();
    return 0;
}

int
jr_journal_flush (jr_journal_t *self)
{
    if (self->len) {
        int err = self->fail_n > 0 ? (self->fail_n--, self->fail_err)
                                   : s_write_all (self->fd, self->buf, self->len);
        if (err) {
            //  Leave no torn record behind: cut back to what was whole.
            if (ftruncate (self->fd, (off_t)self->file_size) == -1)
                jr_error ("journal=%s: cannot cut a failed write: %s", self->dir, strerror (errno));
            jr_error ("journal=%s bytes=%zu: write failed: %s", self->dir, self->len,
                      strerror (err));
            return err == ENOSPC || err == EDQUOT ? JR_EDISK_FULL : JR_EIO;
        }
        self->file_size += self->len;
        self->len = 0;
        self->unsynced = true;
    }
    bool sync = self->unsynced
                && ((self->mode == JR_FSYNC_ALWAYS && self->durable)
                    || (self->mode != JR_FSYNC_NEVER
                        && jr_clock_mono_us () - self->last_sync >= self->batch_us));
    self->durable = false;
    return sync ? s_sync (self) : 0;
}

void
jr_journal_discard (jr_journal_t *self)
{
    self->len = 0;
    self->durable = false;
}

bool
jr_journal_pending (const jr_journal_t *self)
{
    return self->len > 0 || (self->unsynced && self->mode == JR_FSYNC_BATCH);
}

uint64_t
jr_journal_size (const jr_journal_t *self)
{
    return self->older_size + self->file_size + self->len;
}

bool
jr_journal_wants_compaction (const jr_journal_t *self)
{
    uint64_t limit =
        self->snapshot_size * 4 > S_MIN_COMPACT ? self->snapshot_size * 4 : S_MIN_COMPACT;
    return !self->child && jr_journal_size (self) > limit && jr_clock_mono_us () >= self->retry_at;
}

bool
jr_journal_compacting (const jr_journal_t *self)
{
    return self->child != 0;
}

//  Log the first failure of an episode only: a folder that stays read-only
//  must not fill the log every time the compaction is tried again.
static int
s_compact_failed (jr_journal_t *self, const char *what, const char *why)
{
    if (!self->compact_failing)
        jr_error ("journal=%s: compaction failed, %s: %s (retried quietly until it works)",
                  self->dir, what, why);
    self->compact_failing = true;
    self->retry_at = jr_clock_mono_us () + S_RETRY_US;
    return JR_EIO;
}

//  The snapshot writer: fn appends the live state, which goes to the
//  snapshot file; then sync and exit with 0 or the errno. No zmq, no log.
static void
s_snapshot_child (jr_journal_t *self, int fd, pid_t parent, jr_snapshot_fn *fn, void *arg)
{
    prctl (PR_SET_PDEATHSIG, SIGKILL);  //  nobody wants it once the broker is gone
    if (getppid () != parent)
        _exit (ECHILD);
    //  Our copy of the lock: a broker restarted after a kill -9 must not wait
    //  for this writer to die. close, not LOCK_UN, which would free the
    //  broker's lock too (one open file, shared).
    close (self->lock_fd);
    self->lock_fd = -1;
    if (s_snapshot_hook)
        s_snapshot_hook ();
    self->fd = fd;
    self->len = 0;
    self->in_child = true;
    fn (self, arg);
    int err = self->snap_err ? self->snap_err : s_write_all (fd, self->buf, self->len);
    if (!err && fdatasync (fd) == -1)
        err = errno;
    _exit (err ? (err & 0xff ? err & 0xff : EIO) : 0);
}

int
jr_journal_compact_begin (jr_journal_t *self, jr_snapshot_fn *fn, void *arg)
{
    assert (!self->child);
    int rc = jr_journal_flush (self);
    if (rc)
        return s_compact_failed (self, "cannot flush", jr_strerror (rc));
    uint64_t snap = self->seq + 1;
    char *path = s_path_ext (self, snap, "snap");
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = fd < 0 ? errno : s_open_file (self, snap + 1);
    pid_t parent = getpid ();
    int64_t start = jr_clock_mono_us ();
    pid_t pid = err ? -1 : fork ();
    if (pid == 0)
        s_snapshot_child (self, fd, parent, fn, arg);
    err = err ? err : pid < 0 ? errno : 0;
    int64_t fork_us = jr_clock_mono_us () - start;
    if (fd >= 0)
        close (fd);  //  the writer has its own
    if (err) {
        unlink (path);
        free (path);
        return s_compact_failed (self, "cannot start the snapshot", strerror (err));
    }
    free (path);
    self->child = pid;
    self->snap_seq = snap;
    self->compact_from = snap;
    jr_info ("journal=%s pid=%d fork_us=%lld: compaction started", self->dir, (int)pid,
             (long long)fork_us);
    return 0;
}

//  The snapshot is whole and synced: make it the oldest file, drop the rest.
static int
s_compact_install (jr_journal_t *self)
{
    char *snap = s_path_ext (self, self->snap_seq, "snap");
    char *path = s_path (self, self->snap_seq);
    struct stat st;
    int err = stat (snap, &st) == -1 || rename (snap, path) == -1 ? errno : 0;
    free (path);
    if (err) {
        unlink (snap);
        free (snap);
        return s_compact_failed (self, "cannot install the snapshot", strerror (err));
    }
    free (snap);
    s_sync_dir (self);
    size_t count;
    uint64_t *seqs = s_list (self->dir, "log", &count);
    for (size_t i = 0; i < count; i++)
        if (seqs[i] < self->compact_from) {
            char *old = s_path (self, seqs[i]);
            unlink (old);
            free (old);
        }
    free (seqs);
    s_sync_dir (self);
    uint64_t before = self->older_size;  //  every file the snapshot replaces
    self->older_size = self->snapshot_size = (uint64_t)st.st_size;
    if (self->compact_failing)
        jr_info ("journal=%s: compaction works again", self->dir);
    self->compact_failing = false;
    jr_info ("journal=%s before=%llu after=%llu: journal compacted", self->dir,
             (unsigned long long)before, (unsigned long long)st.st_size);
    return 0;
}

int
jr_journal_compact_poll (jr_journal_t *self)
{
    int status = 0;
    pid_t pid = self->child ? waitpid (self->child, &status, WNOHANG) : 0;
    if (pid == 0 || (pid < 0 && errno == EINTR))
        return 0;
    self->child = 0;
    if (pid > 0 && WIFEXITED (status) && WEXITSTATUS (status) == 0)
        return s_compact_install (self) ? JR_EIO : 1;
    char *snap = s_path_ext (self, self->snap_seq, "snap");
    unlink (snap);
    free (snap);
    char why[64];
    if (pid < 0)
        snprintf (why, sizeof why, "lost: %s", strerror (errno));
    else if (WIFEXITED (status))
        snprintf (why, sizeof why, "%s", strerror (WEXITSTATUS (status)));
    else
        snprintf (why, sizeof why, "killed by signal %d", WTERMSIG (status));
    return s_compact_failed (self, "the snapshot writer failed", why);
}

//  For tests: called by the snapshot writer before it writes.
void
jr_journal_set_snapshot_hook (void (*hook) (void))
{
    s_snapshot_hook = hook;
}

void
jr_journal_fail_writes (jr_journal_t *self, int n, int err)
{
    self->fail_n = n;
    self->fail_err = err;
}

void
jr_journal_close (jr_journal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jr_journal_t *self = *self_p;
    if (self->child) {  //  the old files still hold everything
        kill (self->child, SIGKILL);
        while (waitpid (self->child, NULL, 0) == -1 && errno == EINTR)
            ;
        char *snap = s_path_ext (self, self->snap_seq, "snap");
        unlink (snap);
        free (snap);
    }
    if (self->fd >= 0) {
        if (jr_journal_flush (self) == 0 && self->unsynced)
            s_sync (self);
        close (self->fd);
    }
    if (self->lock_fd >= 0)
        close (self->lock_fd);  //  the lock goes with it (the file stays: no unlink race)
    free (self->buf);
    free (self->dir);
    free (self);
    *self_p = NULL;
}
