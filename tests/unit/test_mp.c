/*  test_mp.c - the bounded msgpack reader against msgpack-c's packer, and vars  */
#include "common/mp.h"
#include <criterion/criterion.h>
#include <float.h>
#include <jr/task.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

//  One scratch buffer with a packer; s_reset empties it.
static msgpack_sbuffer s_buf;
static msgpack_packer s_pk;

static msgpack_packer *
s_reset (void)
{
    msgpack_sbuffer_destroy (&s_buf);
    msgpack_sbuffer_init (&s_buf);
    msgpack_packer_init (&s_pk, &s_buf, msgpack_sbuffer_write);
    return &s_pk;
}

//  A reader over an exact-size copy of what was packed (so a read past the
//  end is visible to the sanitizers). The copy lives until the next call.
static uint8_t *s_copy;

static jr_mp_t
s_reader (void)
{
    free (s_copy);
    s_copy = malloc (s_buf.size ? s_buf.size : 1);
    cr_assert (s_copy);
    if (s_buf.size)
        memcpy (s_copy, s_buf.data, s_buf.size);
    jr_mp_t r;
    jr_mp_init (&r, s_copy, s_buf.size);
    return r;
}

static void
s_done (void)
{
    msgpack_sbuffer_destroy (&s_buf);
    free (s_copy);
    s_copy = NULL;
}

TestSuite (mp, .fini = s_done);
TestSuite (vars, .fini = s_done);

//  Reads back one int written by a fixed-width packer; checks the tag byte.
#define CHECK_INT(packer, value, tag)                                                              \
    do {                                                                                           \
        packer (s_reset (), value);                                                                \
        cr_assert_eq (s_buf.data[0] & 0xff, (tag)&0xff, #packer " tag %02x",                       \
                      s_buf.data[0] & 0xff);                                                       \
        jr_mp_t r = s_reader ();                                                                   \
        cr_assert_eq (jr_mp_peek (&r), JR_MP_INT);                                                 \
        int64_t v;                                                                                 \
        cr_assert (jr_mp_int (&r, &v), #packer " " #value);                                        \
        cr_assert_eq (v, (int64_t)(value), #packer ": %lld", (long long)v);                        \
        cr_assert_eq (jr_mp_left (&r), 0);                                                         \
        r = s_reader ();                                                                           \
        jr_bytes_t span;                                                                           \
        cr_assert (jr_mp_skip (&r, &span));                                                        \
        cr_assert_eq (span.len, s_buf.size);                                                       \
    } while (0)

Test (mp, ints_of_every_width)
{
    CHECK_INT (msgpack_pack_uint64, 0, 0x00);
    CHECK_INT (msgpack_pack_uint64, 127, 0x7f);
    CHECK_INT (msgpack_pack_int64, -1, 0xff);
    CHECK_INT (msgpack_pack_int64, -32, 0xe0);
    CHECK_INT (msgpack_pack_fix_uint8, 200, 0xcc);
    CHECK_INT (msgpack_pack_fix_uint16, 60000, 0xcd);
    CHECK_INT (msgpack_pack_fix_uint32, 4000000000u, 0xce);
    CHECK_INT (msgpack_pack_fix_uint64, INT64_MAX, 0xcf);
    CHECK_INT (msgpack_pack_fix_int8, -100, 0xd0);
    CHECK_INT (msgpack_pack_fix_int8, 100, 0xd0);
    CHECK_INT (msgpack_pack_fix_int16, -30000, 0xd1);
    CHECK_INT (msgpack_pack_fix_int32, -2000000000, 0xd2);
    CHECK_INT (msgpack_pack_fix_int64, INT64_MIN, 0xd3);
    CHECK_INT (msgpack_pack_fix_int64, INT64_MAX, 0xd3);
    //  And the minimal forms msgpack-c picks by itself.
    CHECK_INT (msgpack_pack_int64, -33, 0xd0);
    CHECK_INT (msgpack_pack_int64, -129, 0xd1);
    CHECK_INT (msgpack_pack_int64, -32769, 0xd2);
    CHECK_INT (msgpack_pack_int64, -2147483649LL, 0xd3);
    CHECK_INT (msgpack_pack_int64, 255, 0xcc);
    CHECK_INT (msgpack_pack_int64, 65535, 0xcd);
    CHECK_INT (msgpack_pack_int64, 4294967295LL, 0xce);
    CHECK_INT (msgpack_pack_int64, 4294967296LL, 0xcf);
}

Test (mp, uint64_max_needs_uint)
{
    msgpack_pack_uint64 (s_reset (), UINT64_MAX);
    jr_mp_t r = s_reader ();
    int64_t i;
    cr_assert_not (jr_mp_int (&r, &i), "does not fit an int64");
    cr_assert_eq (r.err, JR_EMALFORMED);
    r = s_reader ();
    uint64_t u;
    cr_assert (jr_mp_uint (&r, &u));
    cr_assert_eq (u, UINT64_MAX);
    //  jr_mp_uint takes every non-negative width and refuses negatives.
    msgpack_pack_fix_uint16 (s_reset (), 513);
    r = s_reader ();
    cr_assert (jr_mp_uint (&r, &u));
    cr_assert_eq (u, 513);
    msgpack_pack_fix_int64 (s_reset (), 7);
    r = s_reader ();
    cr_assert (jr_mp_uint (&r, &u));
    cr_assert_eq (u, 7);
    msgpack_pack_int64 (s_reset (), -1);
    r = s_reader ();
    cr_assert_not (jr_mp_uint (&r, &u));
    cr_assert_eq (r.err, JR_EMALFORMED);
}

Test (mp, floats)
{
    msgpack_packer *pk = s_reset ();
    msgpack_pack_float (pk, 1.5f);
    msgpack_pack_double (pk, -DBL_MAX);
    msgpack_pack_double (pk, 0.1);
    cr_assert_eq (s_buf.data[0] & 0xff, 0xca);
    cr_assert_eq (s_buf.data[5] & 0xff, 0xcb);
    jr_mp_t r = s_reader ();
    double d;
    cr_assert_eq (jr_mp_peek (&r), JR_MP_FLOAT);
    cr_assert (jr_mp_float (&r, &d));
    cr_assert_eq (d, 1.5);
    cr_assert (jr_mp_float (&r, &d));
    cr_assert_eq (d, -DBL_MAX);
    cr_assert (jr_mp_float (&r, &d));
    cr_assert_eq (d, 0.1);
    cr_assert_eq (jr_mp_left (&r), 0);
    r = s_reader ();
    cr_assert (jr_mp_skip (&r, NULL));
    cr_assert (jr_mp_skip (&r, NULL));
    cr_assert (jr_mp_skip (&r, NULL));
    cr_assert_eq (jr_mp_left (&r), 0);
    //  A float is not an int, and an int is not a float.
    r = s_reader ();
    int64_t i;
    cr_assert_not (jr_mp_int (&r, &i));
    msgpack_pack_int64 (s_reset (), 3);
    r = s_reader ();
    cr_assert_not (jr_mp_float (&r, &d));
}

//  A str or bin of `len` bytes, read back as a view.
static void
s_check_blob (size_t len, bool bin, uint8_t tag)
{
    uint8_t *body = malloc (len + 1);
    for (size_t i = 0; i < len; i++)
        body[i] = (uint8_t)(i * 13);
    msgpack_packer *pk = s_reset ();
    if (bin)
        msgpack_pack_bin_with_body (pk, body, len);
    else
        msgpack_pack_str_with_body (pk, body, len);
    cr_assert_eq (s_buf.data[0] & 0xff, tag, "len %zu: tag %02x", len, s_buf.data[0] & 0xff);
    jr_mp_t r = s_reader ();
    cr_assert_eq (jr_mp_peek (&r), bin ? JR_MP_BIN : JR_MP_STR);
    jr_bytes_t view;
    cr_assert (jr_mp_bytes (&r, &view));
    cr_assert_eq (view.len, len);
    cr_assert (len == 0 || memcmp (view.ptr, body, len) == 0);
    cr_assert (view.ptr >= s_copy && view.ptr + view.len <= s_copy + s_buf.size);
    cr_assert_eq (jr_mp_left (&r), 0);
    //  str reads only strings
    r = s_reader ();
    cr_assert_eq (jr_mp_str (&r, &view), !bin);
    if (bin)
        cr_assert_eq (r.err, JR_EMALFORMED);
    //  skip covers the whole value
    r = s_reader ();
    jr_bytes_t span;
    cr_assert (jr_mp_skip (&r, &span));
    cr_assert_eq (span.len, s_buf.size);
    //  every truncation fails
    for (size_t cut = 0; cut < s_buf.size; cut += 1 + cut / 3) {
        jr_mp_init (&r, s_copy, cut);
        cr_assert_not (jr_mp_bytes (&r, &view), "len %zu cut %zu", len, cut);
        jr_mp_init (&r, s_copy, cut);
        cr_assert_not (jr_mp_skip (&r, NULL));
    }
    free (body);
}

Test (mp, strings_and_binaries)
{
    s_check_blob (0, false, 0xa0);
    s_check_blob (5, false, 0xa5);
    s_check_blob (31, false, 0xbf);
    s_check_blob (32, false, 0xd9);
    s_check_blob (255, false, 0xd9);
    s_check_blob (1000, false, 0xda);
    s_check_blob (70000, false, 0xdb);
    s_check_blob (0, true, 0xc4);
    s_check_blob (200, true, 0xc4);
    s_check_blob (1000, true, 0xc5);
    s_check_blob (70000, true, 0xc6);
}

//  An array or map of n small ints; reads the header and the items back.
static void
s_check_container (uint32_t n, bool map, uint8_t tag)
{
    msgpack_packer *pk = s_reset ();
    if (map)
        msgpack_pack_map (pk, n);
    else
        msgpack_pack_array (pk, n);
    for (uint32_t i = 0; i < n * (map ? 2 : 1); i++)
        msgpack_pack_uint32 (pk, i % 100);
    cr_assert_eq (s_buf.data[0] & 0xff, tag, "n %u: tag %02x", n, s_buf.data[0] & 0xff);
    jr_mp_t r = s_reader ();
    cr_assert_eq (jr_mp_peek (&r), map ? JR_MP_MAP : JR_MP_ARRAY);
    uint32_t count;
    cr_assert (map ? jr_mp_map (&r, &count) : jr_mp_array (&r, &count));
    cr_assert_eq (count, n);
    for (uint32_t i = 0; i < n * (map ? 2 : 1); i++) {
        int64_t v;
        cr_assert (jr_mp_int (&r, &v));
        cr_assert_eq (v, i % 100);
    }
    cr_assert_eq (jr_mp_left (&r), 0);
    //  The other kind of container is refused.
    r = s_reader ();
    cr_assert_not (map ? jr_mp_array (&r, &count) : jr_mp_map (&r, &count));
    r = s_reader ();
    jr_bytes_t span;
    cr_assert (jr_mp_skip (&r, &span));
    cr_assert_eq (span.len, s_buf.size);
    cr_assert_eq ((const uint8_t *)span.ptr, s_copy);
}

Test (mp, arrays_and_maps)
{
    s_check_container (0, false, 0x90);
    s_check_container (15, false, 0x9f);
    s_check_container (16, false, 0xdc);
    s_check_container (65535, false, 0xdc);
    s_check_container (65536, false, 0xdd);
    s_check_container (0, true, 0x80);
    s_check_container (15, true, 0x8f);
    s_check_container (16, true, 0xde);
    s_check_container (70000, true, 0xdf);
}

Test (mp, ext_nil_bool)
{
    //  fixext 1, 2, 4, 8, 16 and ext 8, 16, 32
    static const size_t lens[] = { 1, 2, 4, 8, 16, 3, 300, 70000 };
    static const uint8_t tags[] = { 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xc7, 0xc8, 0xc9 };
    static uint8_t body[70000];
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        msgpack_packer *pk = s_reset ();
        msgpack_pack_ext_with_body (pk, body, lens[i], 7);
        msgpack_pack_nil (pk);
        cr_assert_eq (s_buf.data[0] & 0xff, tags[i], "ext %zu", lens[i]);
        jr_mp_t r = s_reader ();
        cr_assert_eq (jr_mp_peek (&r), JR_MP_EXT);
        jr_bytes_t span;
        cr_assert (jr_mp_skip (&r, &span), "ext %zu", lens[i]);
        cr_assert_eq (span.len, s_buf.size - 1);
        cr_assert (jr_mp_nil (&r));
        cr_assert_eq (jr_mp_left (&r), 0);
        //  An ext is nothing but skippable.
        r = s_reader ();
        int64_t v;
        cr_assert_not (jr_mp_int (&r, &v));
        //  Truncated exts are refused.
        for (size_t cut = 0; cut < s_buf.size - 1; cut += 1 + cut / 4) {
            jr_mp_init (&r, s_copy, cut);
            cr_assert_not (jr_mp_skip (&r, NULL), "ext %zu cut %zu", lens[i], cut);
        }
    }

    msgpack_packer *pk = s_reset ();
    msgpack_pack_nil (pk);
    msgpack_pack_true (pk);
    msgpack_pack_false (pk);
    msgpack_pack_uint32 (pk, 1);
    jr_mp_t r = s_reader ();
    cr_assert_eq (jr_mp_peek (&r), JR_MP_NIL);
    cr_assert (jr_mp_nil (&r));
    cr_assert_eq (jr_mp_peek (&r), JR_MP_BOOL);
    cr_assert_not (jr_mp_nil (&r), "true is not nil");
    cr_assert_eq (r.err, 0, "and that is no error");
    bool flag;
    cr_assert (jr_mp_bool (&r, &flag));
    cr_assert (flag);
    cr_assert (jr_mp_bool (&r, &flag));
    cr_assert_not (flag);
    cr_assert_not (jr_mp_bool (&r, &flag), "1 is not a bool");
    cr_assert_eq (r.err, JR_EMALFORMED);
}

Test (mp, peek_every_byte)
{
    //  Every first byte maps to exactly the family the spec gives it.
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        jr_mp_t r;
        jr_mp_init (&r, &byte, 1);
        jr_mp_kind_t want;
        if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3))
            want = JR_MP_INT;
        else if (b <= 0x8f || b == 0xde || b == 0xdf)
            want = JR_MP_MAP;
        else if (b <= 0x9f || b == 0xdc || b == 0xdd)
            want = JR_MP_ARRAY;
        else if (b <= 0xbf || (b >= 0xd9 && b <= 0xdb))
            want = JR_MP_STR;
        else if (b == 0xc0)
            want = JR_MP_NIL;
        else if (b == 0xc1)
            want = JR_MP_BAD;
        else if (b <= 0xc3)
            want = JR_MP_BOOL;
        else if (b <= 0xc6)
            want = JR_MP_BIN;
        else if (b <= 0xc9 || (b >= 0xd4 && b <= 0xd8))
            want = JR_MP_EXT;
        else
            want = JR_MP_FLOAT;  //  0xca, 0xcb
        cr_assert_eq (jr_mp_peek (&r), want, "byte %02x", b);
        //  A one-byte input: skip must never read past it.
        jr_mp_skip (&r, NULL);
    }
    jr_mp_t r;
    static const uint8_t none[1];
    jr_mp_init (&r, none, 0);
    cr_assert_eq (jr_mp_peek (&r), JR_MP_END);
    cr_assert_not (jr_mp_skip (&r, NULL));
    cr_assert_eq (jr_mp_peek (&r), JR_MP_BAD, "failed reader");
}

Test (mp, skip_spans)
{
    //  [1, {"a": [true, nil], "b": bin}, "x", 2.5] then a trailing 7.
    msgpack_packer *pk = s_reset ();
    msgpack_pack_array (pk, 4);
    msgpack_pack_int32 (pk, 1);
    msgpack_pack_map (pk, 2);
    msgpack_pack_str_with_body (pk, "a", 1);
    msgpack_pack_array (pk, 2);
    msgpack_pack_true (pk);
    msgpack_pack_nil (pk);
    msgpack_pack_str_with_body (pk, "b", 1);
    msgpack_pack_bin_with_body (pk, "\x01\x02", 2);
    msgpack_pack_str_with_body (pk, "x", 1);
    msgpack_pack_double (pk, 2.5);
    size_t whole = s_buf.size;
    msgpack_pack_int32 (pk, 7);
    jr_mp_t r = s_reader ();
    jr_bytes_t span;
    cr_assert (jr_mp_skip (&r, &span));
    cr_assert_eq (span.ptr, s_copy);
    cr_assert_eq (span.len, whole);
    int64_t v;
    cr_assert (jr_mp_int (&r, &v));
    cr_assert_eq (v, 7);
    //  Inside: skip the 1, then the map is a span of its own.
    r = s_reader ();
    uint32_t n;
    cr_assert (jr_mp_array (&r, &n));
    cr_assert (jr_mp_skip (&r, NULL));
    cr_assert (jr_mp_skip (&r, &span));
    cr_assert_eq (span.ptr, s_copy + 2);
    cr_assert_eq (span.ptr[0], 0x82);
    jr_bytes_t s;
    cr_assert (jr_mp_str (&r, &s));
    cr_assert_eq (s.len, 1);
    cr_assert_eq (s.ptr[0], 'x');
}

//  n nested arrays around a nil.
static size_t
s_nest (uint8_t *out, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = 0x91;
    out[n] = 0xc0;
    return (size_t)n + 1;
}

Test (mp, skip_depth_limit)
{
    uint8_t buf[200];
    jr_mp_t r;
    size_t len = s_nest (buf, JR_MP_MAX_DEPTH);
    jr_mp_init (&r, buf, len);
    cr_assert (jr_mp_skip (&r, NULL), "%d levels are allowed", JR_MP_MAX_DEPTH);
    len = s_nest (buf, JR_MP_MAX_DEPTH + 1);
    jr_mp_init (&r, buf, len);
    cr_assert_not (jr_mp_skip (&r, NULL));
    cr_assert_eq (r.err, JR_ETOOLARGE);
    len = s_nest (buf, 150);
    jr_mp_init (&r, buf, len);
    cr_assert_not (jr_mp_skip (&r, NULL));
    cr_assert_eq (r.err, JR_ETOOLARGE);
}

Test (mp, sticky_errors)
{
    msgpack_packer *pk = s_reset ();
    msgpack_pack_str_with_body (pk, "abc", 3);
    msgpack_pack_int32 (pk, 5);
    msgpack_pack_nil (pk);
    jr_mp_t r = s_reader ();
    int64_t v;
    cr_assert_not (jr_mp_int (&r, &v), "a str is not an int");
    cr_assert_eq (r.err, JR_EMALFORMED);
    cr_assert_eq (jr_mp_left (&r), 0, "a failed reader has nothing left");
    //  Nothing that would succeed on a fresh reader succeeds now.
    jr_bytes_t s;
    cr_assert_not (jr_mp_str (&r, &s));
    cr_assert_not (jr_mp_skip (&r, NULL));
    cr_assert_not (jr_mp_nil (&r));
    cr_assert_eq (jr_mp_peek (&r), JR_MP_BAD);
    //  The first error stays.
    cr_assert_not (jr_mp_fail (&r, JR_ETOOLARGE));
    cr_assert_eq (r.err, JR_EMALFORMED);
    //  A caller's own limit fails a fresh reader with its code.
    r = s_reader ();
    cr_assert (jr_mp_str (&r, &s));
    cr_assert_not (jr_mp_fail (&r, JR_ETOOLARGE));
    cr_assert_eq (r.err, JR_ETOOLARGE);
    cr_assert_not (jr_mp_int (&r, &v));
    cr_assert_eq (r.err, JR_ETOOLARGE);
}

Test (mp, counts_larger_than_input)
{
    jr_mp_t r;
    uint32_t n;
    //  array32 of 1000 with 10 bytes after the header
    static const uint8_t arr[] = { 0xdd, 0x00, 0x00, 0x03, 0xe8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
    jr_mp_init (&r, arr, sizeof arr);
    cr_assert_not (jr_mp_array (&r, &n));
    cr_assert_eq (r.err, JR_EMALFORMED);
    //  exactly enough bytes for the count is accepted (one per element)
    static const uint8_t arr3[] = { 0x93, 1, 2, 3 };
    jr_mp_init (&r, arr3, sizeof arr3);
    cr_assert (jr_mp_array (&r, &n));
    cr_assert_eq (n, 3);
    jr_mp_init (&r, arr3, 3);
    cr_assert_not (jr_mp_array (&r, &n));
    //  a map entry needs two bytes
    static const uint8_t map3[] = { 0x83, 1, 2, 3, 4, 5, 6 };
    jr_mp_init (&r, map3, sizeof map3);
    cr_assert (jr_mp_map (&r, &n));
    cr_assert_eq (n, 3);
    jr_mp_init (&r, map3, 6);
    cr_assert_not (jr_mp_map (&r, &n));
    //  the largest counts in the smallest inputs
    static const uint8_t huge_arr[] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0 };
    static const uint8_t huge_map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0 };
    static const uint8_t huge_str[] = { 0xdb, 0xff, 0xff, 0xff, 0xff, 'a' };
    static const uint8_t huge_bin[] = { 0xc6, 0xff, 0xff, 0xff, 0xff, 'a' };
    static const uint8_t huge_ext[] = { 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 'a' };
    static const uint8_t short_16[] = { 0xdc, 0x00 };
    jr_mp_init (&r, huge_arr, sizeof huge_arr);
    cr_assert_not (jr_mp_array (&r, &n));
    jr_mp_init (&r, huge_map, sizeof huge_map);
    cr_assert_not (jr_mp_map (&r, &n));
    jr_bytes_t b;
    jr_mp_init (&r, huge_str, sizeof huge_str);
    cr_assert_not (jr_mp_str (&r, &b));
    jr_mp_init (&r, huge_bin, sizeof huge_bin);
    cr_assert_not (jr_mp_bytes (&r, &b));
    jr_mp_init (&r, huge_ext, sizeof huge_ext);
    cr_assert_not (jr_mp_skip (&r, NULL));
    jr_mp_init (&r, short_16, sizeof short_16);
    cr_assert_not (jr_mp_array (&r, &n));
    const uint8_t *all[] = { huge_arr, huge_map, huge_str, huge_bin, huge_ext };
    size_t sizes[] = { sizeof huge_arr, sizeof huge_map, sizeof huge_str, sizeof huge_bin,
                       sizeof huge_ext };
    for (int i = 0; i < 5; i++) {
        jr_mp_init (&r, all[i], sizes[i]);
        cr_assert_not (jr_mp_skip (&r, NULL), "input %d", i);
        cr_assert_eq (r.err, JR_EMALFORMED);
    }
}

Test (mp, truncated_numbers)
{
    msgpack_packer *pk = s_reset ();
    msgpack_pack_fix_uint64 (pk, 1);
    jr_mp_t r;
    for (size_t cut = 0; cut < 9; cut++) {
        int64_t v;
        uint64_t u;
        jr_mp_init (&r, s_buf.data, cut);
        cr_assert_not (jr_mp_int (&r, &v));
        jr_mp_init (&r, s_buf.data, cut);
        cr_assert_not (jr_mp_uint (&r, &u));
    }
    pk = s_reset ();
    msgpack_pack_double (pk, 1.0);
    for (size_t cut = 0; cut < 9; cut++) {
        double d;
        jr_mp_init (&r, s_buf.data, cut);
        cr_assert_not (jr_mp_float (&r, &d));
        cr_assert_eq (r.err, JR_EMALFORMED);
    }
}

//  -------------------------------------------------------------------------
//  vars

//  {"name": "ada", "blob": bin, "n": 42, "neg": -5, "big": 2^63-1,
//   "text_n": "123", "bad_n": "12x", "f": 1.5, "nested": {"n": 1},
//   "after": "found"}
static jr_bytes_t
s_vars (void)
{
    msgpack_packer *pk = s_reset ();
    msgpack_pack_map (pk, 11);
    msgpack_pack_str_with_body (pk, "name", 4);
    msgpack_pack_str_with_body (pk, "ada", 3);
    msgpack_pack_str_with_body (pk, "blob", 4);
    msgpack_pack_bin_with_body (pk, "\x00\x01", 2);
    msgpack_pack_str_with_body (pk, "n", 1);
    msgpack_pack_int32 (pk, 42);
    msgpack_pack_str_with_body (pk, "neg", 3);
    msgpack_pack_fix_int16 (pk, -5);
    msgpack_pack_str_with_body (pk, "big", 3);
    msgpack_pack_int64 (pk, INT64_MAX);
    msgpack_pack_str_with_body (pk, "text_n", 6);
    msgpack_pack_str_with_body (pk, "-123", 4);
    msgpack_pack_str_with_body (pk, "bad_n", 5);
    msgpack_pack_str_with_body (pk, "12x", 3);
    msgpack_pack_str_with_body (pk, "f", 1);
    msgpack_pack_double (pk, 1.5);
    msgpack_pack_str_with_body (pk, "nested", 6);
    msgpack_pack_map (pk, 1);
    msgpack_pack_str_with_body (pk, "n", 1);
    msgpack_pack_int32 (pk, 1);
    msgpack_pack_str_with_body (pk, "empty", 5);
    msgpack_pack_str_with_body (pk, "", 0);
    msgpack_pack_str_with_body (pk, "after", 5);
    msgpack_pack_str_with_body (pk, "found", 5);
    jr_mp_t r = s_reader ();
    (void)r;
    return (jr_bytes_t){ s_copy, s_buf.size };
}

Test (vars, bytes)
{
    jr_bytes_t vars = s_vars ();
    jr_bytes_t out;
    cr_assert_eq (jr_vars_bytes (vars, "name", &out), 0);
    cr_assert_eq (out.len, 3);
    cr_assert (memcmp (out.ptr, "ada", 3) == 0);
    cr_assert_eq (jr_vars_bytes (vars, "blob", &out), 0);
    cr_assert_eq (out.len, 2);
    cr_assert_eq (out.ptr[1], 1);
    cr_assert_eq (jr_vars_bytes (vars, "after", &out), 0, "found past a nested map");
    cr_assert (memcmp (out.ptr, "found", 5) == 0);
    cr_assert_eq (jr_vars_bytes (vars, "empty", &out), 0);
    cr_assert_eq (out.len, 0);
    cr_assert_eq (jr_vars_bytes (vars, "n", &out), JR_EINVALID, "an int is not bytes");
    cr_assert_eq (jr_vars_bytes (vars, "nested", &out), JR_EINVALID);
    cr_assert_eq (jr_vars_bytes (vars, "missing", &out), JR_ENOT_FOUND);
    cr_assert_eq (jr_vars_bytes (vars, "nam", &out), JR_ENOT_FOUND, "no prefix match");
    cr_assert_eq (jr_vars_bytes (vars, "names", &out), JR_ENOT_FOUND);
    cr_assert_eq (jr_vars_bytes (vars, "", &out), JR_ENOT_FOUND);
}

Test (vars, ints)
{
    jr_bytes_t vars = s_vars ();
    int64_t v;
    cr_assert_eq (jr_vars_int (vars, "n", &v), 0);
    cr_assert_eq (v, 42);
    cr_assert_eq (jr_vars_int (vars, "neg", &v), 0);
    cr_assert_eq (v, -5);
    cr_assert_eq (jr_vars_int (vars, "big", &v), 0);
    cr_assert_eq (v, INT64_MAX);
    cr_assert_eq (jr_vars_int (vars, "text_n", &v), 0, "a decimal string");
    cr_assert_eq (v, -123);
    cr_assert_eq (jr_vars_int (vars, "bad_n", &v), JR_EINVALID);
    cr_assert_eq (jr_vars_int (vars, "empty", &v), JR_EINVALID);
    cr_assert_eq (jr_vars_int (vars, "f", &v), JR_EINVALID, "a float is not an int");
    cr_assert_eq (jr_vars_int (vars, "blob", &v), JR_EINVALID);
    cr_assert_eq (jr_vars_int (vars, "missing", &v), JR_ENOT_FOUND);
}

Test (vars, empty_and_not_a_map)
{
    jr_bytes_t out;
    int64_t v;
    static const uint8_t none[1];
    jr_bytes_t empty = { none, 0 };
    cr_assert_eq (jr_vars_bytes (empty, "a", &out), JR_ENOT_FOUND);
    cr_assert_eq (jr_vars_int (empty, "a", &v), JR_ENOT_FOUND);
    static const uint8_t empty_map[] = { 0x80 };
    cr_assert_eq (jr_vars_bytes ((jr_bytes_t){ empty_map, 1 }, "a", &out), JR_ENOT_FOUND);
    static const uint8_t array[] = { 0x92, 0xa1, 'a', 0x01 };
    cr_assert_eq (jr_vars_int ((jr_bytes_t){ array, sizeof array }, "a", &v), JR_EINVALID);
    //  A key that is not a string names no var, so "a" is not there.
    static const uint8_t int_key[] = { 0x81, 0x01, 0x02 };
    cr_assert_eq (jr_vars_int ((jr_bytes_t){ int_key, sizeof int_key }, "a", &v), JR_ENOT_FOUND);
    //  Truncated after a key that is not the one wanted.
    static const uint8_t cut[] = { 0x82, 0xa1, 'b', 0xcd, 0x01 };
    cr_assert_lt (jr_vars_int ((jr_bytes_t){ cut, sizeof cut }, "a", &v), 0);
    //  The key is there but its value is cut.
    static const uint8_t cut_value[] = { 0x81, 0xa1, 'a', 0xcd, 0x01, 0x02 };
    cr_assert_eq (jr_vars_int ((jr_bytes_t){ cut_value, 5 }, "a", &v), JR_EINVALID);
    cr_assert_eq (jr_vars_int ((jr_bytes_t){ cut_value, sizeof cut_value }, "a", &v), 0);
    cr_assert_eq (v, 0x0102);
}

//  Known gap (see the review note): strtoll's overflow and leading blanks
//  are accepted. Enable with the fix in common/vars.c.
Test (vars, decimal_strings_strict, .disabled = true)
{
    msgpack_packer *pk = s_reset ();
    msgpack_pack_map (pk, 3);
    msgpack_pack_str_with_body (pk, "over", 4);
    msgpack_pack_str_with_body (pk, "99999999999999999999", 20);
    msgpack_pack_str_with_body (pk, "blank", 5);
    msgpack_pack_str_with_body (pk, " 12", 3);
    msgpack_pack_str_with_body (pk, "min", 3);
    msgpack_pack_str_with_body (pk, "-9223372036854775808", 20);
    jr_mp_t r = s_reader ();
    (void)r;
    jr_bytes_t vars = { s_copy, s_buf.size };
    int64_t v;
    cr_assert_eq (jr_vars_int (vars, "over", &v), JR_EINVALID);
    cr_assert_eq (jr_vars_int (vars, "blank", &v), JR_EINVALID);
    cr_assert_eq (jr_vars_int (vars, "min", &v), 0);
    cr_assert_eq (v, INT64_MIN);
}

//  A job without vars has vars = {NULL, 0} (decoded from nil); reading it
//  must be plain NOT_FOUND, also under UBSan (NULL + 0 is undefined in C).
Test (vars, null_vars)
{
    jr_bytes_t none = { NULL, 0 };
    jr_bytes_t out;
    int64_t v;
    cr_assert_eq (jr_vars_bytes (none, "a", &out), JR_ENOT_FOUND);
    cr_assert_eq (jr_vars_int (none, "a", &v), JR_ENOT_FOUND);
    jr_mp_t r;
    jr_mp_init (&r, NULL, 0);
    cr_assert_eq (jr_mp_left (&r), 0);
    cr_assert_eq (jr_mp_peek (&r), JR_MP_END);
    cr_assert_not (jr_mp_skip (&r, NULL));
}
