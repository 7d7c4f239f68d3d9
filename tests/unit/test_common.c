/*  test_common.c - errors, states, jobs, ids, clocks and flags  */
#include "common/crc32c.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/opts.h"
#include <criterion/criterion.h>
#include <jr/jr.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  -------------------------------------------------------------------------
//  Errors and states

Test (error, every_code_has_a_name_and_text)
{
    struct {
        int code;
        const char *name;
        const char *text;
    } table[] = {
#define X(sym, num, name, text) { sym, name, text },
        JR_ERRORS (X)
#undef X
    };
    size_t n = sizeof table / sizeof table[0];
    cr_assert_geq (n, 19);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq (table[i].code, -(int)i, "codes are 0, -1, -2, ... in order");
        cr_assert_str_eq (jr_errname (table[i].code), table[i].name);
        cr_assert_str_eq (jr_strerror (table[i].code), table[i].text);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq (table[i].name, table[j].name, "names are unique");
    }
    //  The wire numbers are fixed: spot checks against PROTOCOL.md.
    cr_assert_str_eq (jr_errname (0), "OK");
    cr_assert_str_eq (jr_errname (-3), "BAD_VERSION");
    cr_assert_str_eq (jr_errname (-7), "UNKNOWN_PEER");
    cr_assert_str_eq (jr_errname (-16), "STALE_ATTEMPT");
    cr_assert_str_eq (jr_errname (JR_EDEADLINE), "DEADLINE_EXCEEDED");
    cr_assert_str_eq (jr_strerror (JR_ENOT_FOUND), "no such job");
    //  Unknown codes still give text.
    cr_assert_str_eq (jr_errname (42), "UNKNOWN_ERROR");
    cr_assert_str_eq (jr_errname (-1000), "UNKNOWN_ERROR");
    cr_assert_str_eq (jr_strerror (-1000), "unknown error");
    cr_assert_str_eq (jr_strerror (1), "unknown error");
}

Test (error, state_names)
{
    static const char *names[] = { "unknown", "queued", "scheduled", "running", "succeeded",
                                   "failed",  "dead",   "cancelled", "expired" };
    for (int s = 0; s < 9; s++)
        cr_assert_str_eq (jr_state_name (s), names[s]);
    cr_assert_eq (JR_STATE_RUNNING, 3);
    cr_assert_eq (JR_STATE_EXPIRED, 8);
    cr_assert_str_eq (jr_state_name (-1), "unknown");
    cr_assert_str_eq (jr_state_name (9), "unknown");
}

//  -------------------------------------------------------------------------
//  Jobs and ids

Test (job, init)
{
    jr_job_t a, b;
    int64_t before = jr_clock_wall_us ();
    jr_job_init (&a, "echo");
    jr_job_init (&b, "echo");
    int64_t after = jr_clock_wall_us ();
    cr_assert (memcmp (a.id, b.id, JR_ID_SIZE) != 0, "ids are random");
    cr_assert_eq (a.id[6] >> 4, 4, "UUID version 4");
    cr_assert_eq (a.id[8] & 0xc0, 0x80, "RFC 4122 variant");
    cr_assert_eq (a.task.len, 4);
    cr_assert (memcmp (a.task.ptr, "echo", 4) == 0);
    cr_assert (a.created_us >= before && a.created_us <= after);
    cr_assert_eq (a.attempt, 0);
    cr_assert_eq (a.vars.len, 0);
    cr_assert_eq (a.priority, 0);
    jr_job_init (&a, NULL);
    cr_assert_eq (a.task.len, 0);
}

Test (job, dup_is_deep_and_independent)
{
    char task[] = "sha256";
    uint8_t vars[] = { 0x81, 0xa1, 'k', 0x2a };
    uint8_t payload[300];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)i;
    char error[] = "boom";
    char worker[] = "w1@host";
    jr_job_t job;
    jr_job_init (&job, task);
    job.vars = (jr_bytes_t){ vars, sizeof vars };
    job.payload = (jr_bytes_t){ payload, sizeof payload };
    job.error = (jr_bytes_t){ (const uint8_t *)error, strlen (error) };
    job.worker = (jr_bytes_t){ (const uint8_t *)worker, strlen (worker) };
    job.priority = -3;
    job.attempt = 2;
    job.state = JR_STATE_FAILED;
    job.ingested_us = 77;

    jr_job_t *copy = jr_job_dup (&job);
    cr_assert (copy);
    //  Scribble over every original; the copy does not change.
    memset (task, 'X', strlen (task));
    memset (vars, 0, sizeof vars);
    memset (payload, 0xee, sizeof payload);
    memset (error, 'X', strlen (error));
    memset (worker, 'X', strlen (worker));
    memset (job.id, 0, JR_ID_SIZE);
    cr_assert (memcmp (copy->task.ptr, "sha256", 6) == 0);
    cr_assert_eq (copy->vars.len, 4);
    cr_assert_eq (copy->vars.ptr[3], 0x2a);
    cr_assert_eq (copy->payload.len, 300);
    for (size_t i = 0; i < 300; i++)
        cr_assert_eq (copy->payload.ptr[i], (uint8_t)i);
    cr_assert (memcmp (copy->error.ptr, "boom", 4) == 0);
    cr_assert (memcmp (copy->worker.ptr, "w1@host", 7) == 0);
    cr_assert_eq (copy->priority, -3);
    cr_assert_eq (copy->attempt, 2);
    cr_assert_eq (copy->state, JR_STATE_FAILED);
    cr_assert_eq (copy->ingested_us, 77);
    cr_assert_neq (copy->id[6] >> 4, 0, "id copied before it was zeroed");
    //  Views point into the copy's own allocation.
    const uint8_t *lo = (const uint8_t *)copy;
    cr_assert (copy->task.ptr > lo && copy->payload.ptr > lo);
    //  A copy of a copy, then freeing the first.
    jr_job_t *again = jr_job_dup (copy);
    jr_job_destroy (&copy);
    cr_assert_null (copy);
    jr_job_destroy (&copy);  //  idempotent
    cr_assert (memcmp (again->task.ptr, "sha256", 6) == 0);
    cr_assert_eq (again->payload.ptr[299], (uint8_t)299);
    jr_job_destroy (&again);
    jr_job_destroy (NULL);
}

Test (job, dup_of_empty_job)
{
    jr_job_t job;
    memset (&job, 0, sizeof job);
    jr_job_t *copy = jr_job_dup (&job);
    cr_assert (copy);
    cr_assert_eq (copy->task.len, 0);
    cr_assert_eq (copy->vars.len, 0);
    cr_assert_eq (copy->payload.len, 0);
    jr_job_destroy (&copy);
}

Test (id, format_and_parse)
{
    for (int i = 0; i < 100; i++) {
        jr_job_t job;
        jr_job_init (&job, "x");
        char text[37];
        jr_id_format (job.id, text);
        cr_assert_eq (strlen (text), 36);
        cr_assert_eq (text[8], '-');
        cr_assert_eq (text[14], '4', "version nibble in text");
        for (const char *p = text; *p; p++)
            cr_assert (*p == '-' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'),
                       "lower case hex: %s", text);
        uint8_t back[JR_ID_SIZE];
        cr_assert_eq (jr_id_parse (text, back), 0);
        cr_assert (memcmp (back, job.id, JR_ID_SIZE) == 0);
    }
    static const uint8_t known[JR_ID_SIZE] = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef,
                                               0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07 };
    char text[37];
    jr_id_format (known, text);
    cr_assert_str_eq (text, "12345678-9abc-4def-8001-020304050607");
    uint8_t id[JR_ID_SIZE];
    cr_assert_eq (jr_id_parse ("12345678-9ABC-4DEF-8001-020304050607", id), 0,
                  "upper case is accepted");
    cr_assert (memcmp (id, known, JR_ID_SIZE) == 0);
}

Test (id, parse_rejects)
{
    uint8_t id[JR_ID_SIZE];
    static const char *bad[] = {
        "",
        "12345678-9abc-4def-8001-02030405060",    //  35
        "12345678-9abc-4def-8001-0203040506070",  //  37
        "12345678-9abc-4def-8001-02030405060g",   //  not hex
        "123456789abc-4def-8001-0203040506070",   //  dash missing
        "12345678_9abc_4def_8001_020304050607",   //  wrong separators
        "{2345678-9abc-4def-8001-02030405060}",
        "123456789abc4def80010203040506070000",  //  no dashes at all
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq (jr_id_parse (bad[i], id), JR_EINVALID, "accepted '%s'", bad[i]);
    cr_assert_eq (jr_id_parse (NULL, id), JR_EINVALID);
}

//  -------------------------------------------------------------------------
//  Clocks

Test (clock, monotonic_and_wall)
{
    int64_t last = jr_clock_mono_us ();
    for (int i = 0; i < 100000; i++) {
        int64_t now = jr_clock_mono_us ();
        cr_assert_geq (now, last, "monotonic clock went back");
        last = now;
    }
    int64_t wall = jr_clock_wall_us ();
    int64_t secs = (int64_t)time (NULL);
    cr_assert (wall / 1000000 >= secs - 1 && wall / 1000000 <= secs + 1, "wall in us");
    //  A real sleep shows up on both clocks.
    int64_t m0 = jr_clock_mono_us (), w0 = jr_clock_wall_us ();
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    nanosleep (&ts, NULL);
    cr_assert_geq (jr_clock_mono_us () - m0, 20000);
    cr_assert_geq (jr_clock_wall_us () - w0, 15000);
}

Test (clock, shift)
{
    int64_t before = jr_clock_mono_us ();
    int64_t wall = jr_clock_wall_us ();
    jr_clock_mono_shift_us (3600LL * 1000000);
    int64_t after = jr_clock_mono_us ();
    cr_assert_geq (after - before, 3600LL * 1000000);
    cr_assert_lt (after - before, 3601LL * 1000000);
    cr_assert_lt (jr_clock_wall_us () - wall, 1000000, "the wall clock is not shifted");
    jr_clock_mono_shift_us (-3600LL * 1000000);
    cr_assert_lt (jr_clock_mono_us () - before, 1000000);
}

//  -------------------------------------------------------------------------
//  Flags

enum { OPT_BIND, OPT_DB, OPT_SLOTS, OPT_VERBOSE, OPT_COUNT };

static void
s_opts (jr_opt_t opts[OPT_COUNT])
{
    jr_opt_t def[OPT_COUNT] = {
        { "bind", "JR_TEST_BIND", "tcp://*:5572", "endpoint", false, NULL },
        { "db", "JR_TEST_DB", NULL, "database path", false, NULL },
        { "slots", "JR_TEST_SLOTS", "4", "executors", false, NULL },
        { "verbose", "JR_TEST_VERBOSE", NULL, "trace", true, NULL },
    };
    memcpy (opts, def, sizeof def);
    unsetenv ("JR_TEST_BIND");
    unsetenv ("JR_TEST_DB");
    unsetenv ("JR_TEST_SLOTS");
    unsetenv ("JR_TEST_VERBOSE");
}

Test (opts, defaults)
{
    jr_opt_t opts[OPT_COUNT];
    s_opts (opts);
    char *argv[] = { "prog", NULL };
    cr_assert_eq (jr_opts_parse (1, argv, opts, OPT_COUNT, "prog"), 1);
    cr_assert_str_eq (opts[OPT_BIND].value, "tcp://*:5572");
    cr_assert_null (opts[OPT_DB].value);
    cr_assert_eq (jr_opts_int (&opts[OPT_SLOTS], 1, 64), 4);
    cr_assert_null (opts[OPT_VERBOSE].value);
}

Test (opts, flags_env_and_precedence)
{
    jr_opt_t opts[OPT_COUNT];
    s_opts (opts);
    setenv ("JR_TEST_BIND", "tcp://*:9000", 1);
    setenv ("JR_TEST_DB", "/env/jr.db", 1);
    setenv ("JR_TEST_SLOTS", "", 1);  //  empty means unset
    char a0[] = "prog", a1[] = "--db", a2[] = "/flag/jr.db", a3[] = "first", a4[] = "--slots=16",
         a5[] = "--verbose", a6[] = "second", a7[] = "--", a8[] = "--not-a-flag";
    char *argv[] = { a0, a1, a2, a3, a4, a5, a6, a7, a8, NULL };
    int kept = jr_opts_parse (9, argv, opts, OPT_COUNT, "prog");
    cr_assert_eq (kept, 4);
    cr_assert_str_eq (argv[0], "prog");
    cr_assert_str_eq (argv[1], "first");
    cr_assert_str_eq (argv[2], "second");
    cr_assert_str_eq (argv[3], "--not-a-flag", "after -- nothing is a flag");
    cr_assert_null (argv[4]);
    cr_assert_str_eq (opts[OPT_BIND].value, "tcp://*:9000", "env over default");
    cr_assert_str_eq (opts[OPT_DB].value, "/flag/jr.db", "flag over env");
    cr_assert_eq (jr_opts_int (&opts[OPT_SLOTS], 1, 64), 16);
    cr_assert_str_eq (opts[OPT_VERBOSE].value, "1");
}

Test (opts, bool_from_env)
{
    jr_opt_t opts[OPT_COUNT];
    s_opts (opts);
    setenv ("JR_TEST_VERBOSE", "1", 1);
    setenv ("JR_TEST_SLOTS", "8", 1);
    char a0[] = "prog";
    char *argv[] = { a0, NULL };
    cr_assert_eq (jr_opts_parse (1, argv, opts, OPT_COUNT, "prog"), 1);
    cr_assert_str_eq (opts[OPT_VERBOSE].value, "1");
    cr_assert_eq (jr_opts_int (&opts[OPT_SLOTS], 1, 64), 8);
}

Test (opts, unknown_flag_exits_2, .exit_code = 2)
{
    jr_opt_t opts[OPT_COUNT];
    s_opts (opts);
    char a0[] = "prog", a1[] = "--bogus";
    char *argv[] = { a0, a1, NULL };
    jr_opts_parse (2, argv, opts, OPT_COUNT, "prog");
    cr_assert_fail ("should have exited");
}

Test (opts, prefix_is_not_a_flag, .exit_code = 2)
{
    jr_opt_t opts[OPT_COUNT];
    s_opts (opts);
    char a0[] = "prog", a1[] = "--bin=x";
    char *argv[] = { a0, a1, NULL };
    jr_opts_parse (2, argv, opts, OPT_COUNT, "prog");
    cr_assert_fail ("should have exited");
}

Test (opts, missing_value_exits_2, .exit_code = 2)
{
    jr_opt_t opts[OPT_COUNT];
    s_opts (opts);
    char a0[] = "prog", a1[] = "--db";
    char *argv[] = { a0, a1, NULL };
    jr_opts_parse (2, argv, opts, OPT_COUNT, "prog");
    cr_assert_fail ("should have exited");
}

Test (opts, help_exits_0, .exit_code = 0)
{
    jr_opt_t opts[OPT_COUNT];
    s_opts (opts);
    char a0[] = "prog", a1[] = "--help";
    char *argv[] = { a0, a1, NULL };
    jr_opts_parse (2, argv, opts, OPT_COUNT, "prog");
    cr_assert_fail ("should have exited");
}

Test (opts, int_out_of_range_exits_2, .exit_code = 2)
{
    jr_opt_t opt = { "slots", NULL, "100", "executors", false, "100" };
    jr_opts_int (&opt, 1, 64);
    cr_assert_fail ("should have exited");
}

Test (opts, int_not_a_number_exits_2, .exit_code = 2)
{
    jr_opt_t opt = { "slots", NULL, NULL, "executors", false, "4x" };
    jr_opts_int (&opt, 1, 64);
    cr_assert_fail ("should have exited");
}

Test (opts, int_required_exits_2, .exit_code = 2)
{
    jr_opt_t opt = { "slots", NULL, NULL, "executors", false, NULL };
    jr_opts_int (&opt, 1, 64);
    cr_assert_fail ("should have exited");
}

//  -------------------------------------------------------------------------
//  Log levels

Test (log, level_from_env)
{
    unsetenv ("JR_LOG_LEVEL");
    jr_log_init ("test", JR_LOG_INFO);
    cr_assert_not (jr_log_enabled (JR_LOG_DEBUG));
    cr_assert (jr_log_enabled (JR_LOG_INFO));
    setenv ("JR_LOG_LEVEL", "warn", 1);
    jr_log_init ("test", JR_LOG_DEBUG);
    cr_assert_not (jr_log_enabled (JR_LOG_INFO));
    cr_assert (jr_log_enabled (JR_LOG_ERROR));
    setenv ("JR_LOG_LEVEL", "DEBUG", 1);
    jr_log_init ("test", JR_LOG_ERROR);
    cr_assert (jr_log_enabled (JR_LOG_DEBUG));
    jr_info ("key=%d: a line", 1);
    unsetenv ("JR_LOG_LEVEL");
}

Test (crc32c, known_vectors_and_chunking)
{
    //  The check value of CRC-32C (Castagnoli) and the RFC 3720 zero vector.
    cr_assert_eq (jr_crc32c (0, "123456789", 9), 0xE3069283u);
    uint8_t zeros[32] = { 0 };
    cr_assert_eq (jr_crc32c (0, zeros, sizeof zeros), 0x8A9136AAu);
    //  Feeding it in pieces gives the same as in one go.
    const char *text = "the quick brown fox jumps over the lazy dog, twice over";
    uint32_t whole = jr_crc32c (0, text, strlen (text));
    uint32_t parts = jr_crc32c (jr_crc32c (0, text, 13), text + 13, strlen (text) - 13);
    cr_assert_eq (whole, parts);
}
