/*  test_list.c - the job table in pages for LIST: each id once, while the table changes  */
#include "broker/jobtab.h"
#include <criterion/criterion.h>
#include <stdlib.h>

//  -------------------------------------------------------------------------
//  The job table's pages: (after, bound] ranges of positions (hash, id),
//  checked against every job the table holds, while it grows and loses jobs
//  between pages.

typedef struct {
    jr_bjob_t **jobs;  //  the table's jobs, as the test knows them
    size_t njobs;
    jr_bjob_t **seen;  //  what one page gave
    size_t nseen;
} s_world_t;

static bool
s_collect (jr_bjob_t *job, void *arg)
{
    s_world_t *world = arg;
    world->seen[world->nseen++] = job;
    return true;
}

//  How the test makes ids: the i-th id of a kind.
typedef void (s_id_fn) (size_t i, uint8_t id[JR_ID_SIZE]);

static void
s_random_id (size_t i, uint8_t id[JR_ID_SIZE])
{
    (void)i;
    jr_job_t job;
    jr_job_init (&job, "t");  //  a random v4 id
    memcpy (id, job.id, JR_ID_SIZE);
}

//  A random id whose hash has its top 8 bits all 1 (or all 0): all on the
//  last (first) 1/256 of the homes, so their runs are long and one wraps
//  around the end of the table.
static void
s_top_id (size_t i, uint8_t id[JR_ID_SIZE])
{
    do
        s_random_id (i, id);
    while (jr_jobtab_hash (id) >> 24 != 0xFF);
}

static void
s_low_id (size_t i, uint8_t id[JR_ID_SIZE])
{
    do
        s_random_id (i, id);
    while (jr_jobtab_hash (id) >> 24 != 0);
}

//  As a UUID v7 client makes them within one millisecond tick: the same
//  first 8 bytes (48-bit clock, version, a fixed rand_a), then a counter.
static void
s_v7_id (size_t i, uint8_t id[JR_ID_SIZE])
{
    static const uint8_t head[8] = { 0x01, 0x93, 0x8a, 0x5c, 0x2e, 0x41, 0x70, 0x00 };
    memcpy (id, head, sizeof head);
    id[8] = 0x80;  //  the variant bits
    for (int k = 15; k > 8; k--, i >>= 8)
        id[k] = (uint8_t)i;
}

//  Sequential: the ids 1, 2, 3, ... as 128-bit big-endian numbers.
static void
s_seq_id (size_t i, uint8_t id[JR_ID_SIZE])
{
    memset (id, 0, JR_ID_SIZE);
    i++;
    for (int k = 15; k >= 8; k--, i >>= 8)
        id[k] = (uint8_t)i;
}

static jr_bjob_t *
s_job (s_id_fn *make, size_t i)
{
    jr_job_t job;
    jr_job_init (&job, "t");
    make (i, job.id);
    return jr_bjob_new (&job, 0);
}

//  A job's position against a page's edge, as the table orders them.
static int
s_cmp_pos (const jr_bjob_t *job, const uint8_t *pos)
{
    uint8_t mine[JR_JOBTAB_POS_SIZE];
    jr_jobtab_pos (job->id, mine);
    return memcmp (mine, pos, JR_JOBTAB_POS_SIZE);
}

//  Page through the table with a small budget; between pages add `grow`
//  jobs and drop every drop-th one. Checks that each page holds exactly the
//  jobs of its range, that ranges follow each other, and that the jobs held
//  all along are seen exactly once. Ids come from make, every third (and
//  every second added) from other if given.
static void
s_page_through (size_t n, s_id_fn *make, s_id_fn *other, size_t budget, size_t grow, size_t drop)
{
    jr_jobtab_t *tab = jr_jobtab_new ();
    size_t cap = n + 200 * grow + 16;
    s_world_t world = { calloc (cap, sizeof (void *)), 0, calloc (cap, sizeof (void *)), 0 };
    bool *stable = calloc (cap, sizeof *stable);  //  held from the first page to the last
    int *times = calloc (cap, sizeof *times);     //  how often a job was seen
    cr_assert (world.jobs && world.seen && stable && times);
    for (size_t i = 0; i < n; i++) {
        world.jobs[world.njobs] = s_job (other && i % 3 == 0 ? other : make, world.njobs);
        stable[world.njobs++] = true;
        jr_jobtab_insert (tab, world.jobs[world.njobs - 1]);
    }
    uint8_t after[JR_JOBTAB_POS_SIZE], bound[JR_JOBTAB_POS_SIZE];
    bool first = true, end = false;
    size_t pages = 0;
    while (!end) {
        world.nseen = 0;
        end = jr_jobtab_range (tab, first ? NULL : after, budget, s_collect, &world, bound);
        pages++;
        cr_assert_lt (pages, 100000, "paging does not end");
        //  The page is exactly the held jobs in (after, bound].
        size_t want = 0;
        for (size_t i = 0; i < world.njobs; i++) {
            const jr_bjob_t *job = world.jobs[i];
            if (!job || (!first && s_cmp_pos (job, after) <= 0)
                || (!end && s_cmp_pos (job, bound) > 0))
                continue;
            want++;
            size_t k = 0;
            while (k < world.nseen && world.seen[k] != job)
                k++;
            cr_assert_lt (k, world.nseen, "page %zu misses job %zu", pages, i);
            times[i]++;
        }
        cr_assert_eq (world.nseen, want, "page %zu has %zu jobs, its range %zu", pages, world.nseen,
                      want);
        if (!end) {
            cr_assert (first || memcmp (bound, after, sizeof bound) > 0, "ranges move on");
            memcpy (after, bound, sizeof after);
        }
        first = false;
        //  The table changes between pages: new jobs (growing it), and
        //  some leave.
        for (size_t g = 0; g < grow && world.njobs < cap; g++) {
            world.jobs[world.njobs] = s_job (other && g % 2 ? other : make, world.njobs);
            jr_jobtab_insert (tab, world.jobs[world.njobs++]);
        }
        for (size_t i = drop ? pages % drop : world.njobs; i < world.njobs; i += drop)
            if (world.jobs[i]) {
                cr_assert (jr_jobtab_remove (tab, world.jobs[i]));
                jr_bjob_destroy (&world.jobs[i]);
                stable[i] = false;
            }
    }
    for (size_t i = 0; i < world.njobs; i++) {
        cr_assert_leq (times[i], 1, "job %zu seen %d times", i, times[i]);
        if (stable[i])
            cr_assert_eq (times[i], 1, "job %zu held all along, seen %d times", i, times[i]);
    }
    cr_assert_gt (pages, 2, "the budget made pages");
    jr_jobtab_destroy (&tab);  //  frees the jobs still in it
    free (world.jobs);
    free (world.seen);
    free (stable);
    free (times);
}

Test (jobtab_range, random_ids_while_the_table_grows_and_shrinks, .timeout = 60)
{
    s_page_through (3000, s_random_id, NULL, 256, 40, 97);
}

//  Ids whose hashes crowd the last homes share long probe runs, one at the
//  very end of the table, so it wraps around to its first slots.
Test (jobtab_range, a_crowded_home_that_wraps_around_the_end, .timeout = 60)
{
    s_page_through (2000, s_random_id, s_top_id, 100, 25, 31);
    s_page_through (2000, s_low_id, NULL, 100, 0, 0);
}

//  Ids a client may well send: time-ordered (UUID v7) and sequential. The
//  table is in hash order, so these page like random ids: each once.
Test (jobtab_range, clustered_ids_page_each_once, .timeout = 60)
{
    s_page_through (3000, s_v7_id, NULL, 256, 40, 97);
    s_page_through (3000, s_seq_id, NULL, 256, 40, 97);
    s_page_through (3000, s_random_id, s_v7_id, 256, 40, 0);
}

//  The old table homed jobs by their ids' first bytes: 200,000 ids that
//  share them (v7 within a tick, or counters) landed on one home, and every
//  insert, find and remove walked a run of up to 200,000 slots. Homed by a
//  hash of all 16 bytes they spread like random ids. A property of the
//  table, not a timing: the longest probe run stays short.
static void
s_runs_stay_short (s_id_fn *make)
{
    enum { N = 200000 };
    jr_jobtab_t *tab = jr_jobtab_new ();
    jr_bjob_t **jobs = calloc (N, sizeof *jobs);
    cr_assert (jobs);
    for (size_t i = 0; i < N; i++) {
        jobs[i] = s_job (make, i);
        jr_jobtab_insert (tab, jobs[i]);
    }
    cr_assert_eq (jr_jobtab_size (tab), N);
    size_t longest = jr_jobtab_longest_run (tab);
    //  Random homes at load 0.38 give runs of about 10 to 20; one shared
    //  home gives N.
    cr_assert_leq (longest, 64, "the longest probe run is %zu slots", longest);
    cr_assert_geq (longest, 1);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq (jr_jobtab_find (tab, jobs[i]->id), jobs[i]);
    //  Removing half keeps the runs short too (backward shifts).
    for (size_t i = 0; i < N; i += 2) {
        cr_assert (jr_jobtab_remove (tab, jobs[i]));
        jr_bjob_destroy (&jobs[i]);
    }
    cr_assert_leq (jr_jobtab_longest_run (tab), 64);
    for (size_t i = 1; i < N; i += 2)
        cr_assert_eq (jr_jobtab_find (tab, jobs[i]->id), jobs[i]);
    jr_jobtab_destroy (&tab);
    free (jobs);
}

Test (jobtab, v7_like_ids_do_not_share_a_home, .timeout = 60)
{
    s_runs_stay_short (s_v7_id);
}

Test (jobtab, sequential_ids_do_not_share_a_home, .timeout = 60)
{
    s_runs_stay_short (s_seq_id);
}

//  The hash is fixed (cursors outlive a broker process): these values are
//  the ones every broker computes, on any host.
Test (jobtab, the_hash_is_fixed)
{
    uint8_t id[JR_ID_SIZE] = { 0 };
    uint32_t zero = jr_jobtab_hash (id);
    id[15] = 1;
    uint32_t one = jr_jobtab_hash (id);
    cr_assert_neq (zero, one, "the last byte counts");
    memset (id, 0, sizeof id);
    id[0] = 1;
    cr_assert_neq (jr_jobtab_hash (id), zero, "the first byte counts");
    //  (computed apart, in Python, from the definition in PROTOCOL.md 6.1)
    cr_assert_eq (one, 0x7d6e4ac3u, "hash of id 1: %08x", one);
    static const uint8_t v7[JR_ID_SIZE] = { 0x01, 0x93, 0x8a, 0x5c, 0x2e, 0x41, 0x70, 0x00,
                                            0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01 };
    cr_assert_eq (jr_jobtab_hash (v7), 0x6a41c9fcu, "hash of a v7 id: %08x", jr_jobtab_hash (v7));
    uint8_t pos[JR_JOBTAB_POS_SIZE];
    jr_jobtab_pos (id, pos);
    uint32_t h = jr_jobtab_hash (id);
    cr_assert (pos[0] == (uint8_t)(h >> 24) && pos[3] == (uint8_t)h, "the hash, big-endian");
    cr_assert_eq (memcmp (pos + 4, id, JR_ID_SIZE), 0, "then the id");
}

Test (jobtab_range, empty_table_and_a_budget_larger_than_it)
{
    jr_jobtab_t *tab = jr_jobtab_new ();
    uint8_t bound[JR_JOBTAB_POS_SIZE];
    s_world_t world = { NULL, 0, calloc (16, sizeof (void *)), 0 };
    cr_assert (jr_jobtab_range (tab, NULL, 1 << 20, s_collect, &world, bound));
    cr_assert_eq (world.nseen, 0);
    jr_jobtab_insert (tab, s_job (s_random_id, 0));
    cr_assert (jr_jobtab_range (tab, NULL, 1 << 20, s_collect, &world, bound));
    cr_assert_eq (world.nseen, 1);
    //  After the highest possible position there is nothing.
    uint8_t last[JR_JOBTAB_POS_SIZE];
    memset (last, 0xFF, sizeof last);
    world.nseen = 0;
    cr_assert (jr_jobtab_range (tab, last, 1 << 20, s_collect, &world, bound));
    cr_assert_eq (world.nseen, 0);
    free (world.seen);
    jr_jobtab_destroy (&tab);
}
