/*  test_chaos.c - exactly-once storage of accepted jobs while processes are killed, paused and damaged  */
#include "tests/system/chaos.h"
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static jr_h_env_t env;

static void
s_fini (void)
{
    jr_h_cleanup ();
}

#define CHECK(cond, ...) JR_H_CHECK (&env, cond, __VA_ARGS__)

TestSuite (chaos, .fini = s_fini, .timeout = 240);

//  Count, print and assert: every accepted id stored exactly once.
static void
s_check_stored (const ch_set_t *set, const char *what, int64_t start_us)
{
    ch_count_t c;
    CHECK (ch_count (env.db, set, &c), "cannot read %s", env.db);
    ch_print (what, &c, ch_since (start_us));
    CHECK (c.accepted == set->n, "%s: only %zu of %zu jobs were ever accepted", what, c.accepted,
           set->n);
    CHECK (ch_exactly_once (&c),
           "%s: accepted %zu stored %lld distinct %lld missing %zu twice %zu unexpected %lld", what,
           c.accepted, (long long)c.rows, (long long)c.distinct, c.missing, c.twice,
           (long long)c.unexpected);
}

static void
s_check_load (const ch_load_t *load, const char *what)
{
    printf ("chaos: %s: submit resends of whole chunks %zu, results seen %zu, wait %s;"
            " wait_many returned %.1f s after the last result was stored\n",
            what, load->resubmits, load->seen, jr_errname (load->wait_rc),
            ch_wait_lag (env.db, load));
    fflush (stdout);
    double lag = ch_wait_lag (env.db, load);
    if (lag > 5)
        printf ("chaos: NOTE: %s: the client noticed the last stored result %.1f s late"
                " (a FETCH parked in an ingester that died is only re-sent when its wait"
                " would have ended)\n",
                what, lag);
    CHECK (load->wait_rc == 0, "%s: wait_many: %s after %zu results", what,
           jr_strerror (load->wait_rc), load->seen);
}

//  1. The broker is killed with SIGKILL every 2 s and restarted on the same
//     ports and journal while 20,000 jobs are submitted and run.
Test (chaos, broker_sigkill_every_2s)
{
    int64_t start = zclock_usecs ();
    jr_h_env_init (&env, "chaos-broker");
    jr_h_ingester (&env);
    pid_t broker = jr_h_broker (&env, NULL);
    jr_h_worker (&env, "w1", 2, NULL);
    jr_h_worker (&env, "w2", 2, NULL);
    jr_h_worker (&env, "w3", 2, NULL);
    ch_set_t set;
    ch_set_init (&set, 20000, CH_MIX, 0, 0);
    ch_load_t load = { .broker = env.clients_ep,
                       .ingester = env.ingester_ep,
                       .set = &set,
                       .chunk = 500,
                       .pace_ms = 300,
                       .answer_ms = 1000 };
    ch_load_start (&load);
    int kills = 0;
    while (!ch_load_sleep (&load, 2000) && kills < 30) {
        CHECK (jr_h_stop (broker, SIGKILL, 5000), "broker did not die");
        broker = jr_h_broker (&env, NULL);
        kills++;
    }
    ch_load_join (&load);
    printf ("chaos: broker kills: %d SIGKILLs, all submitted after %.1f s\n", kills,
            (double)(load.submitted_us - start) / 1e6);
    s_check_load (&load, "broker kills");
    CHECK (kill (broker, 0) == 0, "broker alive at the end");
    CHECK (kills >= 3, "only %d kills happened during the load", kills);
    s_check_stored (&set, "broker kills", start);
    ch_set_free (&set);
}

//  2. A random worker of three is killed with SIGKILL every second and a
//     new one started.
Test (chaos, worker_sigkill_every_1s)
{
    int64_t start = zclock_usecs ();
    jr_h_env_init (&env, "chaos-worker");
    jr_h_ingester (&env);
    jr_h_broker (&env, "--liveness=1000");
    pid_t workers[3];
    int started = 0;
    char label[32];
    for (int i = 0; i < 3; i++) {
        snprintf (label, sizeof label, "w%d", started++);
        workers[i] = jr_h_worker (&env, label, 2, NULL);
    }
    ch_set_t set;
    ch_set_init (&set, 20000, CH_MIX, 0, 0);
    ch_load_t load = { .broker = env.clients_ep,
                       .ingester = env.ingester_ep,
                       .set = &set,
                       .chunk = 1000,
                       .pace_ms = 400 };
    ch_load_start (&load);
    int kills = 0;
    srand ((unsigned)start);
    while (!ch_load_sleep (&load, 1000) && kills < 60) {
        int victim = rand () % 3;
        CHECK (jr_h_stop (workers[victim], SIGKILL, 5000), "worker did not die");
        snprintf (label, sizeof label, "w%d", started++);
        workers[victim] = jr_h_worker (&env, label, 2, NULL);
        kills++;
    }
    ch_load_join (&load);
    printf ("chaos: worker kills: %d SIGKILLs, %d workers started in all\n", kills, started);
    s_check_load (&load, "worker kills");
    CHECK (kills >= 5, "only %d kills happened during the load", kills);
    s_check_stored (&set, "worker kills", start);
    ch_set_free (&set);
}

//  3. The ingester is paused (SIGSTOP for 10 s, then SIGCONT), later killed
//     with SIGKILL and restarted on the same database, under load.
Test (chaos, ingester_paused_then_killed)
{
    int64_t start = zclock_usecs ();
    jr_h_env_init (&env, "chaos-ingester");
    pid_t ingester = jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    jr_h_worker (&env, "w1", 2, NULL);
    jr_h_worker (&env, "w2", 2, NULL);
    jr_h_worker (&env, "w3", 2, NULL);
    ch_set_t set;
    ch_set_init (&set, 20000, CH_MIX, 0, 0);
    ch_load_t load = { .broker = env.clients_ep,
                       .ingester = env.ingester_ep,
                       .set = &set,
                       .chunk = 1000,
                       .pace_ms = 800,
                       .wait_early = true };
    //  Submitting takes 16 s (20 chunks, 0.8 s apart), so the pause and the
    //  kill both land mid-load; a second client waits for all 20,000 ids
    //  from the start, across the pause and the kill.
    ch_load_start (&load);
    bool done = ch_load_sleep (&load, 1500);
    CHECK (!done, "the load ended before the ingester was paused");
    CHECK (kill (ingester, SIGSTOP) == 0, "SIGSTOP");
    int64_t paused = zclock_usecs ();
    jr_h_sleep_ms (10000);
    CHECK (kill (ingester, SIGCONT) == 0, "SIGCONT");
    printf ("chaos: ingester paused for %.1f s\n", (double)(zclock_usecs () - paused) / 1e6);
    done = ch_load_sleep (&load, 2500);
    CHECK (!done, "the load ended before the ingester was killed");
    CHECK (jr_h_stop (ingester, SIGKILL, 5000), "ingester did not die");
    int64_t killed = zclock_usecs ();
    jr_h_sleep_ms (10000);  //  down for 10 s, as paused before
    ingester = jr_h_ingester (&env);
    printf ("chaos: ingester killed, down for %.1f s, restarted %.1f s into the test\n",
            (double)(zclock_usecs () - killed) / 1e6, ch_since (start));
    ch_load_join (&load);
    s_check_load (&load, "ingester pause+kill");
    s_check_stored (&set, "ingester pause+kill", start);
    ch_set_free (&set);
}

//  -------------------------------------------------------------------------
//  5. Journal damage end to end

//  Path of the journal file with the highest sequence number.
static bool
s_last_journal (char *out, size_t size)
{
    char dir[400];
    snprintf (dir, sizeof dir, "%s/journal", env.dir);
    DIR *d = opendir (dir);
    if (!d)
        return false;
    struct dirent *entry;
    char best[300] = "";
    while ((entry = readdir (d)))
        if (strncmp (entry->d_name, "journal-", 8) == 0 && strlen (entry->d_name) > 12
            && strcmp (entry->d_name + strlen (entry->d_name) - 4, ".log") == 0
            && strcmp (entry->d_name, best) > 0)
            snprintf (best, sizeof best, "%s", entry->d_name);
    closedir (d);
    if (!*best)
        return false;
    snprintf (out, size, "%s/%s", dir, best);
    return true;
}

static uint32_t
s_le32 (const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

//  Mark in set->accepted the jobs whose ACCEPT record lies wholly before
//  `damage` in the journal file (as documented in broker/journal.c: [u32
//  body length][u32 CRC][body], body = u8 type, 16-byte id, ...). Returns
//  how many, or -1 if the file does not parse.
static int
s_survivors (const char *path, uint64_t damage, ch_set_t *set)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return -1;
    fseek (f, 0, SEEK_END);
    long size = ftell (f);
    fseek (f, 0, SEEK_SET);
    uint8_t *buf = malloc ((size_t)size + 1);
    size_t got = fread (buf, 1, (size_t)size, f);
    fclose (f);
    memset (set->accepted, 0, set->n);
    int survivors = 0;
    uint64_t pos = 0;
    while (pos + 8 <= got) {
        uint32_t body = s_le32 (buf + pos);
        if (pos + 8 + body > got)
            break;
        if (pos + 8 + body > damage)
            break;
        if (body >= 17 && buf[pos + 8] == 1) {  //  JR_REC_ACCEPT
            for (size_t i = 0; i < set->n; i++)
                if (memcmp (set->ids[i], buf + pos + 9, JR_ID_SIZE) == 0 && !set->accepted[i]) {
                    set->accepted[i] = 1;
                    survivors++;
                    break;
                }
        }
        pos += 8 + body;
    }
    free (buf);
    return survivors;
}

typedef enum { S_TRUNCATE, S_FLIP } s_damage_t;

static void
s_journal_damage (s_damage_t how, const char *what)
{
    int64_t start = zclock_usecs ();
    jr_h_env_init (&env, how == S_TRUNCATE ? "chaos-jtrunc" : "chaos-jflip");
    jr_h_ingester (&env);
    pid_t broker = jr_h_broker (&env, NULL);
    enum { N = 1000 };
    ch_set_t set;
    ch_set_init (&set, N, CH_ECHO, 0, 0);
    jr_client_t *client = jr_client_new (env.clients_ep, env.ingester_ep);
    CHECK (client, "client");
    int rc = jr_client_submit_many (client, set.jobs, N, set.codes);
    CHECK (rc == 0, "submit: %s", jr_strerror (rc));
    CHECK (jr_h_stop (broker, SIGTERM, 10000), "broker did not stop on SIGTERM");

    char path[600];
    CHECK (s_last_journal (path, sizeof path), "no journal file in %s/journal", env.dir);
    struct stat st;
    CHECK (stat (path, &st) == 0 && st.st_size > 0, "empty journal %s", path);
    uint64_t size = (uint64_t)st.st_size, damage;
    if (how == S_TRUNCATE) {
        damage = size - 5;
        CHECK (truncate (path, (off_t)damage) == 0, "truncate");
    }
    else {
        damage = size / 2;
        int fd = open (path, O_RDWR);
        uint8_t byte;
        CHECK (fd >= 0 && pread (fd, &byte, 1, (off_t)damage) == 1, "read %s", path);
        byte ^= 0x40;
        CHECK (pwrite (fd, &byte, 1, (off_t)damage) == 1, "write %s", path);
        close (fd);
    }
    int survivors = s_survivors (path, damage, &set);
    CHECK (survivors > 0, "no whole record before the damage in %s", path);
    printf ("chaos: %s: %s size %llu damaged at %llu; %d of %d ACCEPT records whole before it\n",
            what, strrchr (path, '/') + 1, (unsigned long long)size, (unsigned long long)damage,
            survivors, N);

    broker = jr_h_broker (&env, NULL);
    CHECK (jr_h_wait_port (env.port_clients), "broker did not restart");
    jr_h_sleep_ms (100);
    int cuts = ch_log_count (&env, "broker.log", "torn or corrupt record");
    ch_log_grep (&env, "broker.log", "torn or corrupt record", 3);
    ch_log_grep (&env, "broker.log", "jobs restored", 3);
    CHECK (cuts == 1, "the broker log reports %d cuts, not 1", cuts);
    int queued = 0, unknown = 0, other = 0;
    for (int i = 0; i < N; i++) {
        int state = -1;
        uint32_t attempt;
        rc = jr_client_status (client, set.ids[i], &state, &attempt);
        CHECK (rc == 0, "status: %s", jr_strerror (rc));
        if (set.accepted[i])
            CHECK (state == JR_STATE_QUEUED, "job %d before the damage is %s, not queued", i,
                   jr_state_name (state));
        queued += state == JR_STATE_QUEUED;
        unknown += state == JR_STATE_UNKNOWN;
        other += state != JR_STATE_QUEUED && state != JR_STATE_UNKNOWN;
    }
    printf ("chaos: %s: after restart queued %d unknown %d other %d\n", what, queued, unknown,
            other);
    CHECK (queued == survivors && other == 0, "queued %d survivors %d other %d", queued, survivors,
           other);
    if (how == S_TRUNCATE)
        CHECK (survivors > 990, "only %d jobs survived a cut of 5 bytes", survivors);

    jr_h_worker (&env, "w1", 2, NULL);
    jr_h_worker (&env, "w2", 2, NULL);
    uint8_t (*ids)[JR_ID_SIZE] = calloc (N, JR_ID_SIZE);
    size_t n = 0;
    for (int i = 0; i < N; i++)
        if (set.accepted[i])
            memcpy (ids[n++], set.ids[i], JR_ID_SIZE);
    rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, n, 60000, NULL, NULL);
    free (ids);
    CHECK (rc == 0, "wait for the survivors: %s", jr_strerror (rc));
    jr_h_sleep_ms (500);  //  anything else that would run has run by now
    ch_count_t c;
    CHECK (ch_count (env.db, &set, &c), "db");
    ch_print (what, &c, ch_since (start));
    CHECK (ch_exactly_once (&c), "%s: survivors %zu stored %lld missing %zu unexpected %lld", what,
           c.accepted, (long long)c.rows, c.missing, (long long)c.unexpected);
    jr_client_destroy (&client);
    ch_set_free (&set);
}

Test (chaos, journal_truncated_mid_record)
{
    s_journal_damage (S_TRUNCATE, "journal truncated");
}

Test (chaos, journal_flipped_byte)
{
    s_journal_damage (S_FLIP, "journal flipped byte");
}

//  -------------------------------------------------------------------------

static bool
s_await_state (jr_client_t *client, const uint8_t id[JR_ID_SIZE], int want, uint32_t *attempt)
{
    for (int i = 0; i < 2000; i++) {
        int state = 0;
        if (jr_client_status (client, id, &state, attempt) == 0 && state == want)
            return true;
        jr_h_sleep_ms (10);
    }
    return false;
}

static int64_t
s_attempts_of (const uint8_t id[JR_ID_SIZE])
{
    char text[37], sql[128];
    jr_id_format (id, text);
    snprintf (sql, sizeof sql, "SELECT count(*) FROM attempts WHERE id = '%s'", text);
    sqlite3 *db;
    if (sqlite3_open_v2 (env.db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout (db, 5000);
    int64_t n = ch_query_int (db, sql);
    sqlite3_close (db);
    return n;
}

//  6. One id submitted before, during and after its run runs once.
Test (chaos, same_id_three_times_runs_once)
{
    int64_t start = zclock_usecs ();
    jr_h_env_init (&env, "chaos-sameid");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    jr_client_t *client = jr_client_new (env.clients_ep, env.ingester_ep);
    ch_set_t set;
    ch_set_init (&set, 1, CH_SLEEP, 1000, 0);
    jr_job_t *job = &set.jobs[0];
    uint32_t attempt = 0;
    //  Before: no worker yet, the job waits; submit it twice.
    CHECK (jr_client_submit (client, job) == 0, "first submit");
    CHECK (jr_client_submit (client, job) == 0, "submit while queued");
    CHECK (s_await_state (client, job->id, JR_STATE_QUEUED, &attempt), "not queued");
    jr_h_worker (&env, "w1", 2, NULL);
    //  During.
    CHECK (s_await_state (client, job->id, JR_STATE_RUNNING, &attempt), "never ran");
    CHECK (jr_client_submit (client, job) == 0, "submit while running");
    jr_job_t *result = NULL;
    CHECK (jr_client_wait (client, job->id, 30000, &result) == 0, "result");
    jr_job_destroy (&result);
    //  After.
    CHECK (jr_client_submit (client, job) == 0, "submit after the run");
    jr_h_sleep_ms (2000);
    int state = 0;
    CHECK (jr_client_status (client, job->id, &state, &attempt) == 0, "status");
    CHECK (jr_client_result (client, job->id, &result) == 0, "result after");
    int64_t runs = s_attempts_of (job->id);
    set.accepted[0] = 1;
    ch_count_t c;
    CHECK (ch_count (env.db, &set, &c), "db");
    printf (
        "chaos: same id x4: broker state %s attempt %u, stored attempt %u, runs recorded %lld\n",
        jr_state_name (state), attempt, result->attempt, (long long)runs);
    ch_print ("same id x4", &c, ch_since (start));
    CHECK (state == JR_STATE_SUCCEEDED && attempt == 1, "broker: %s attempt %u",
           jr_state_name (state), attempt);
    CHECK (result->attempt == 1 && result->success, "stored attempt %u", result->attempt);
    //  The ingester keeps an attempt history only for failures and retries:
    //  a first attempt that succeeded and nothing else means one run.
    CHECK (runs == 0, "the ingester recorded %lld other runs", (long long)runs);
    CHECK (ch_exactly_once (&c), "rows %lld", (long long)c.rows);
    jr_job_destroy (&result);
    jr_client_destroy (&client);
    ch_set_free (&set);
}

//  7. A job that always fails ends dead after max_attempts, with the
//     history of its attempts in the stored error.
Test (chaos, always_failing_job_ends_dead_with_history)
{
    int64_t start = zclock_usecs ();
    jr_h_env_init (&env, "chaos-dead");
    jr_h_ingester (&env);
    jr_h_broker (&env, "--retry-base=50");
    jr_h_worker (&env, "w1", 2, NULL);
    jr_client_t *client = jr_client_new (env.clients_ep, env.ingester_ep);
    ch_set_t set;
    ch_set_init (&set, 1, CH_FAIL, 0, 0);
    set.jobs[0].max_attempts = 3;
    CHECK (jr_client_submit (client, &set.jobs[0]) == 0, "submit");
    set.accepted[0] = 1;
    uint32_t attempt = 0;
    CHECK (s_await_state (client, set.ids[0], JR_STATE_DEAD, &attempt), "never dead");
    jr_job_t *result = NULL;
    for (int i = 0; i < 500; i++) {  //  the last attempt's result may trail the DEAD state
        if (jr_client_result (client, set.ids[0], &result) == 0 && result->attempt >= 3)
            break;
        jr_job_destroy (&result);
        jr_h_sleep_ms (10);
    }
    CHECK (result, "no stored result");
    printf ("chaos: dead job: broker attempt %u, stored attempt %u success %d, error:\n%.*s\n",
            attempt, result->attempt, result->success, (int)result->error.len,
            (const char *)result->error.ptr);
    char *error = strndup ((const char *)result->error.ptr, result->error.len);
    CHECK (attempt == 3, "broker says attempt %u", attempt);
    CHECK (result->attempt == 3 && !result->success, "stored attempt %u", result->attempt);
    CHECK (strstr (error, "attempt 1 (") && strstr (error, "attempt 2 (")
               && strstr (error, "attempt 3 ("),
           "the error lacks an attempt history: %s", error);
    int booms = 0;
    for (const char *p = error; (p = strstr (p, "boom 0")); p++)
        booms++;
    CHECK (booms == 3, "the error shows %d of the 3 attempts' errors", booms);
    ch_count_t c;
    CHECK (ch_count (env.db, &set, &c), "db");
    ch_print ("dead job", &c, ch_since (start));
    CHECK (ch_exactly_once (&c) && c.runs == 3, "rows %lld runs %lld", (long long)c.rows,
           (long long)c.runs);
    free (error);
    jr_job_destroy (&result);
    jr_client_destroy (&client);
    ch_set_free (&set);
}

//  -------------------------------------------------------------------------

static bool
s_worker_has_flag (const char *flag)
{
    char cmd[600], bin[512];
    jr_h_bin (bin, sizeof bin, "jr-worker");
    snprintf (cmd, sizeof cmd, "'%s' --help 2>&1", bin);
    FILE *p = popen (cmd, "r");
    if (!p)
        return false;
    char line[512];
    bool found = false;
    while (fgets (line, sizeof line, p))
        found = found || strstr (line, flag) != NULL;
    pclose (p);
    return found;
}

//  8. A worker that gets SIGTERM mid-load drains: nothing is lost, and
//     what it hands back runs elsewhere at once, not after a lease.
Test (chaos, worker_sigterm_drains_and_hands_back)
{
    int64_t start = zclock_usecs ();
    jr_h_env_init (&env, "chaos-drain");
    jr_h_ingester (&env);
    jr_h_broker (&env, NULL);
    bool has_grace = s_worker_has_flag ("--grace ");
    int grace_ms = has_grace ? 500 : 10000;  //  10 s: jr_worker_config_t's default
    if (!has_grace)
        printf ("chaos: drain: jr-worker has no --grace flag; using its default grace of 10 s\n");
    char bin[512];
    jr_h_bin (bin, sizeof bin, "jr-worker");
    char grace[16];
    snprintf (grace, sizeof grace, "%d", grace_ms);
    char *argv[] = { bin,
                     "--broker",
                     env.workers_ep,
                     "--ingester",
                     env.ingester_ep,
                     "--concurrency",
                     "4",
                     "--name",
                     "victim",
                     has_grace ? "--grace" : NULL,
                     grace,
                     NULL };
    pid_t victim = jr_h_spawn_argv (&env, "victim", argv);
    //  Two jobs outlast the grace; the victim takes them while it is alone,
    //  so it holds them at the SIGTERM and must hand them back. The other
    //  200 sleep 200 ms. Timeout 30 s: a lease would run 40 s.
    ch_set_t set;
    ch_set_init (&set, 202, CH_SLEEP, 200, grace_ms + 5000);
    jr_client_t *client = jr_client_new (env.clients_ep, env.ingester_ep);
    CHECK (jr_client_submit_many (client, set.jobs, 2, set.codes) == 0, "submit the long jobs");
    uint32_t attempt;
    for (int i = 0; i < 2; i++)
        CHECK (s_await_state (client, set.ids[i], JR_STATE_RUNNING, &attempt), "long job idle");
    jr_h_worker (&env, "other", 4, NULL);
    //  All 202 (the first two again: same ids, accepted once).
    ch_load_t load = {
        .broker = env.clients_ep, .ingester = env.ingester_ep, .set = &set, .chunk = 202
    };
    ch_load_start (&load);
    CHECK (!ch_load_sleep (&load, 2000), "the load ended before the SIGTERM");
    int64_t term_wall = zclock_time () * 1000;
    int64_t term = zclock_usecs ();
    CHECK (kill (victim, SIGTERM) == 0, "SIGTERM");
    bool exited = false;
    for (int i = 0; i < (grace_ms + 5000) / 10 && !exited; i++) {
        if (waitpid (victim, NULL, WNOHANG) == victim)
            exited = true;
        else
            jr_h_sleep_ms (10);
    }
    double exit_s = (double)(zclock_usecs () - term) / 1e6;
    if (exited)
        jr_h_forget (victim);
    CHECK (exited, "the victim did not exit within grace + 5 s");
    ch_load_join (&load);
    s_check_load (&load, "drain");
    s_check_stored (&set, "drain", start);
    //  Handed back: stored with attempt 2 or more (their first attempt was
    //  the victim's). How long after the SIGTERM was the last one stored?
    jr_client_destroy (&client);
    sqlite3 *db;
    CHECK (sqlite3_open_v2 (env.db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "db");
    int64_t handed = ch_query_int (db, "SELECT count(*) FROM results WHERE attempt > 1");
    int64_t last = ch_query_int (db, "SELECT coalesce(max(ingested_us), 0) FROM results"
                                     " WHERE attempt > 1");
    int64_t by_victim =
        ch_query_int (db, "SELECT count(*) FROM results WHERE worker LIKE 'victim@%'");
    sqlite3_close (db);
    double last_s = handed ? (double)(last - term_wall) / 1e6 : 0;
    printf ("chaos: drain: victim exited %.2f s after SIGTERM (grace %d ms); it stored %lld,"
            " handed back %lld, last handed-back job stored %.2f s after the SIGTERM\n",
            exit_s, grace_ms, (long long)by_victim, (long long)handed, last_s);
    ch_log_grep (&env, "broker.log", "victim", 10);
    ch_log_grep (&env, "victim.log", "draining", 5);
    ch_log_grep (&env, "victim.log", "hand", 5);
    CHECK (ch_log_count (&env, "broker.log", "worker draining") >= 1,
           "the broker log does not say the worker drained");
    CHECK (ch_log_count (&env, "broker.log", "no heartbeat") == 0,
           "the broker forgot a worker for want of heartbeats");
    CHECK (handed >= 2, "the victim handed back %lld jobs, not its 2 long ones", (long long)handed);
    {
        //  Handed back at the end of the grace, they run again at once
        //  (grace + 5 s).
        CHECK (last_s < (2 * grace_ms + 5000) / 1000.0 + 3.0,
               "handed-back jobs waited %.1f s: a lease, not a hand-back", last_s);
    }
    ch_set_free (&set);
}

//  9. The journal stays bounded: 200,000 jobs through with --fsync never.
Test (chaos, journal_bounded_after_200k_jobs, .timeout = 400)
{
    int64_t start = zclock_usecs ();
    jr_h_env_init (&env, "chaos-journal");
    jr_h_ingester (&env);
    jr_h_broker (&env, "--fsync=never");
    jr_h_worker (&env, "w1", 64, "echo");
    jr_h_worker (&env, "w2", 64, "echo");
    //  A 300-byte message makes each job's records about 450 bytes, so
    //  200,000 jobs write about 90 MB: past the 64 MiB mark, so the broker
    //  must compact at least once.
    enum { N = 200000, WAVE = 10000 };
    ch_set_t set;
    ch_set_init (&set, N, CH_ECHO, 300, 0);
    jr_client_t *client = jr_client_new (env.clients_ep, env.ingester_ep);
    //  In waves, so few jobs are live at any time: a snapshot then holds
    //  little more than the remembered ids, and the compaction threshold
    //  stays at its 64 MiB floor.
    char dir[400];
    snprintf (dir, sizeof dir, "%s/journal", env.dir);
    int files;
    uint64_t peak = 0;  //  largest journal seen between waves
    for (int off = 0; off < N; off += WAVE) {
        int rc = jr_client_submit_many (client, set.jobs + off, WAVE, set.codes + off);
        CHECK (rc == 0, "submit wave at %d: %s", off, jr_strerror (rc));
        memset (set.accepted + off, 1, WAVE);
        rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])set.ids + off, WAVE,
                                  120000, NULL, NULL);
        CHECK (rc == 0, "wait wave at %d: %s", off, jr_strerror (rc));
        uint64_t now = ch_dir_size (dir, &files);
        peak = now > peak ? now : peak;
    }
    double run_s = ch_since (start);
    jr_h_sleep_ms (300);  //  a compaction check runs every 100 ms
    uint64_t size = ch_dir_size (dir, &files);
    peak = size > peak ? size : peak;
    int compactions = ch_log_count (&env, "broker.log", "journal compacted");
    ch_log_grep (&env, "broker.log", "journal compacted", 5);
    //  Bound: the broker compacts when the journal passes max(64 MiB, 4 x the
    //  last snapshot). A snapshot is the remembered ids (--remember 100,000 x
    //  a 38-byte STATE record = 3.8 MB) plus the live jobs (at most a wave,
    //  10,000 x 377 bytes = 3.8 MB), so 4 x snapshot < 64 MiB and the
    //  threshold stays 64 MiB. Past it, the next check (every 100 ms) compacts;
    //  at most one wave's records (10,000 x 444 bytes = 4.4 MB) land in
    //  between. 64 MiB + 4.4 MB + 7.6 MB (a snapshot, as slack) < 76 MiB.
    uint64_t bound = (64ull + 4 + 8) << 20;
    printf ("chaos: journal: %d jobs in %.1f s (%.0f jobs/s); journal now %llu bytes (%.1f MiB)"
            " in %d files, largest seen between waves %.1f MiB, %d compactions; bound %.0f MiB;"
            " without compaction about %.0f MiB\n",
            N, run_s, N / run_s, (unsigned long long)size, size / 1048576.0, files,
            peak / 1048576.0, compactions, bound / 1048576.0, N * 444.0 / 1048576.0);
    ch_count_t c;
    CHECK (ch_count (env.db, &set, &c), "db");
    ch_print ("journal 200k", &c, ch_since (start));
    CHECK (ch_exactly_once (&c), "stored %lld missing %zu", (long long)c.rows, c.missing);
    CHECK (compactions >= 1, "90 MB of records and no compaction");
    CHECK (peak < bound, "journal reached %llu bytes >= bound %llu", (unsigned long long)peak,
           (unsigned long long)bound);
    jr_client_destroy (&client);
    ch_set_free (&set);
}

//  -------------------------------------------------------------------------
//  10. kill -9 of the broker while its snapshot writer runs, and after it
//      finished: no accepted job is lost either way.

//  A process's state letter from /proc (R, S, T, Z ...), 0 if it is gone.
static char
s_proc_state (pid_t pid)
{
    char path[64], text[512];
    snprintf (path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen (path, "r");
    size_t n = f ? fread (text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose (f);
    text[n] = 0;
    const char *end = strrchr (text, ')');
    return end && end[1] == ' ' ? end[2] : 0;
}

//  Start the broker on the test's journal and wait for its nth start.
static pid_t
s_broker_start (int nth)
{
    pid_t pid = jr_h_broker (&env, "--fsync=always");
    while (ch_log_count (&env, "broker.log", "broker listening") < nth) {
        CHECK (s_proc_state (pid) && s_proc_state (pid) != 'Z', "the broker did not start");
        jr_h_sleep_ms (10);
    }
    return pid;
}

//  Every job the broker was asked for is queued there.
static void
s_check_queued (const uint8_t (*ids)[JR_ID_SIZE], int n, const char *what)
{
    jr_client_t *client = jr_client_new (env.clients_ep, env.ingester_ep);
    int queued = 0;
    for (int i = 0; i < n; i++) {
        int state = JR_STATE_UNKNOWN;
        uint32_t attempt;
        CHECK (jr_client_status (client, ids[i], &state, &attempt) == 0, "%s: status", what);
        queued += state == JR_STATE_QUEUED;
    }
    jr_client_destroy (&client);
    printf ("chaos: %s: %d of %d accepted jobs queued after the restart\n", what, queued, n);
    CHECK (queued == n, "%s: %d of %d accepted jobs lost", what, n - queued, n);
}

//  Submit jobs i to n-1 with 1 MB vars each, their ids into ids.
static void
s_submit_big (int i, int n, uint8_t (*ids)[JR_ID_SIZE])
{
    enum { SIZE = 1000000 };
    static uint8_t vars[SIZE + 10] = { 0x81, 0xa3, 'm', 's', 'g', 0xdb };  //  {"msg": str32}
    vars[6] = SIZE >> 24, vars[7] = (SIZE >> 16) & 0xff, vars[8] = (SIZE >> 8) & 0xff;
    vars[9] = SIZE & 0xff;
    jr_client_t *client = jr_client_new (env.clients_ep, env.ingester_ep);
    for (; i < n; i++) {
        jr_job_t job;
        jr_job_init (&job, "echo");
        job.vars = (jr_bytes_t){ vars, sizeof vars };
        memcpy (ids[i], job.id, JR_ID_SIZE);
        CHECK (jr_client_submit (client, &job) == 0, "submit %d", i);
    }
    jr_client_destroy (&client);
}

//  Trace a broker just started until it forks (its first compaction), and
//  leave the child, the snapshot writer, stopped before it ran a line of
//  its own. Its pid, 0 if the broker never forked, -1 if it cannot be traced.
static pid_t
s_stop_next_fork (pid_t broker)
{
    if (ptrace (PTRACE_SEIZE, broker, 0, PTRACE_O_TRACEFORK) == -1)
        return -1;
    pid_t writer = 0;
    int status;
    while (!writer && waitpid (broker, &status, __WALL) == broker && WIFSTOPPED (status)) {
        if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_FORK << 8))) {
            unsigned long msg;
            ptrace (PTRACE_GETEVENTMSG, broker, 0, &msg);
            writer = (pid_t)msg;
            waitpid (writer, &status, __WALL);  //  its first stop, traced
            kill (writer, SIGSTOP);             //  pending: it stops as soon as it is let go
            ptrace (PTRACE_DETACH, writer, 0, 0);
            ptrace (PTRACE_DETACH, broker, 0, 0);
        }
        else  //  a signal for the broker: pass it on
            ptrace (PTRACE_CONT, broker, 0, WSTOPSIG (status));
    }
    if (!writer && (WIFEXITED (status) || WIFSIGNALED (status)))
        jr_h_forget (broker);  //  reaped here
    return writer;
}

Test (chaos, broker_sigkill_during_compaction)
{
    jr_h_env_init (&env, "chaos-snapshot");
    //  100 jobs of 1 MB that no worker takes: past 64 MiB, so a broker
    //  started on this journal compacts at once.
    enum { N = 100, LATE = 10 };
    static uint8_t ids[N + LATE][JR_ID_SIZE];
    pid_t broker = s_broker_start (1);
    s_submit_big (0, N, ids);
    CHECK (jr_h_stop (broker, SIGTERM, 10000), "the broker did not stop");
    //  Its snapshot writer is held, so the next kill lands during the
    //  compaction for certain, after 10 more jobs were accepted meanwhile.
    char journal[512];
    snprintf (journal, sizeof journal, "%s/journal", env.dir);
    broker = jr_h_spawn (&env, "broker", "jr-broker", "--clients", env.clients_ep, "--workers",
                         env.workers_ep, "--journal", journal, "--fsync=always", NULL);
    pid_t writer = s_stop_next_fork (broker);  //  traced long before it replayed 100 MB
    if (writer < 0)
        cr_skip_test ("cannot trace the broker here: %s", strerror (errno));
    CHECK (writer > 0, "the broker did not fork a snapshot writer");
    while (s_proc_state (writer) != 'T')  //  SIGSTOP takes it before it runs a line
        jr_h_sleep_ms (1);
    while (ch_log_count (&env, "broker.log", "broker listening") < 2)
        jr_h_sleep_ms (10);
    s_submit_big (N, N + LATE, ids);
    CHECK (jr_h_stop (broker, SIGKILL, 5000), "the broker did not die");
    //  Resumed, the orphan sees its broker is gone and exits.
    kill (writer, SIGCONT);
    char state;
    while ((state = s_proc_state (writer)) && state != 'Z')  //  the test's timeout bounds this
        jr_h_sleep_ms (10);
    int compacted = ch_log_count (&env, "broker.log", "journal compacted");
    broker = s_broker_start (3);
    s_check_queued ((const uint8_t (*)[JR_ID_SIZE])ids, N + LATE, "kill during compaction");
    //  This broker compacts too (the journal is still past the mark); a
    //  kill after that compaction loses nothing either.
    while (ch_log_count (&env, "broker.log", "journal compacted") == compacted)
        jr_h_sleep_ms (10);
    CHECK (jr_h_stop (broker, SIGKILL, 5000), "the broker did not die");
    s_broker_start (4);
    s_check_queued ((const uint8_t (*)[JR_ID_SIZE])ids, N + LATE, "kill after compaction");
    ch_log_grep (&env, "broker.log", "compact", 8);
}
