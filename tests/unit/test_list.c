/*  test_list.c - the job table in pages for LIST: each id once, while the table changes  */
#include "broker/jobtab.h"
#include <criterion/criterion.h>
#include <stdlib.h>

//  -------------------------------------------------------------------------
//  The job table's pages: (after, bound] ranges of ids, checked against
//  every job the table holds, while it grows and loses jobs between pages.

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

static jr_bjob_t *
s_job (const uint8_t *prefix, size_t prefix_len)
{
    jr_job_t job;
    jr_job_init (&job, "t");  //  a random id
    if (prefix_len)
        memcpy (job.id, prefix, prefix_len);
    return jr_bjob_new (&job, 0);
}

static int
s_cmp_id (const uint8_t *a, const uint8_t *b)
{
    return memcmp (a, b, JR_ID_SIZE);
}

//  Page through the table with a small budget; between pages add `grow`
//  jobs and drop every drop-th one. Checks that each page holds exactly the
//  jobs of its range, that ranges follow each other, and that the jobs held
//  all along are seen exactly once.
static void
s_page_through (size_t n, const uint8_t *prefix, size_t prefix_len, size_t budget, size_t grow,
                size_t drop)
{
    jr_jobtab_t *tab = jr_jobtab_new ();
    size_t cap = n + 200 * grow + 16;
    s_world_t world = { calloc (cap, sizeof (void *)), 0, calloc (cap, sizeof (void *)), 0 };
    bool *stable = calloc (cap, sizeof *stable);  //  held from the first page to the last
    int *times = calloc (cap, sizeof *times);     //  how often a job was seen
    cr_assert (world.jobs && world.seen && stable && times);
    for (size_t i = 0; i < n; i++) {
        world.jobs[world.njobs] = s_job (prefix, i % 3 == 0 ? prefix_len : 0);
        stable[world.njobs++] = true;
        jr_jobtab_insert (tab, world.jobs[world.njobs - 1]);
    }
    uint8_t after[JR_ID_SIZE], bound[JR_ID_SIZE];
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
            if (!job || (!first && s_cmp_id (job->id, after) <= 0)
                || (!end && s_cmp_id (job->id, bound) > 0))
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
            cr_assert (first || s_cmp_id (bound, after) > 0, "ranges move on");
            memcpy (after, bound, JR_ID_SIZE);
        }
        first = false;
        //  The table changes between pages: new jobs (growing it), and
        //  some leave.
        for (size_t g = 0; g < grow && world.njobs < cap; g++) {
            world.jobs[world.njobs] = s_job (prefix, g % 2 ? prefix_len : 0);
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
    s_page_through (3000, NULL, 0, 256, 40, 97);
}

//  Ids of one prefix share a home and a long probe run, here at the very
//  end of the table, so the run wraps around to its first slots.
Test (jobtab_range, a_crowded_home_that_wraps_around_the_end, .timeout = 60)
{
    static const uint8_t top[] = { 0xFF, 0xFF, 0xFF, 0xF0 };
    s_page_through (2000, top, sizeof top, 100, 25, 31);
    static const uint8_t low[] = { 0x00, 0x00, 0x00, 0x01 };
    s_page_through (2000, low, sizeof low, 100, 0, 0);
}

Test (jobtab_range, empty_table_and_a_budget_larger_than_it)
{
    jr_jobtab_t *tab = jr_jobtab_new ();
    uint8_t bound[JR_ID_SIZE];
    s_world_t world = { NULL, 0, calloc (16, sizeof (void *)), 0 };
    cr_assert (jr_jobtab_range (tab, NULL, 1 << 20, s_collect, &world, bound));
    cr_assert_eq (world.nseen, 0);
    jr_jobtab_insert (tab, s_job (NULL, 0));
    cr_assert (jr_jobtab_range (tab, NULL, 1 << 20, s_collect, &world, bound));
    cr_assert_eq (world.nseen, 1);
    //  After the highest possible id there is nothing.
    uint8_t last[JR_ID_SIZE];
    memset (last, 0xFF, sizeof last);
    world.nseen = 0;
    cr_assert (jr_jobtab_range (tab, last, 1 << 20, s_collect, &world, bound));
    cr_assert_eq (world.nseen, 0);
    free (world.seen);
    jr_jobtab_destroy (&tab);
}
