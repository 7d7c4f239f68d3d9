/*  test_client_json.c - the jr CLI's JSON <-> msgpack conversion  */
#include "cli/json.h"
#include "common/mp.h"
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

//  JSON text of a msgpack value, in a malloc'd string.
static char *
s_to_json (const void *mp, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream (&text, &len);
    cr_assert (mem);
    jr_msgpack_to_json ((jr_bytes_t){ mp, size }, mem);
    fclose (mem);
    return text;
}

//  JSON in, msgpack, JSON out: must equal `expected`.
static void
s_round_trip (const char *json, const char *expected)
{
    msgpack_sbuffer mp;
    msgpack_sbuffer_init (&mp);
    char err[200];
    int rc = jr_json_to_msgpack (json, strlen (json), &mp, err, sizeof err);
    cr_assert_eq (rc, 0, "parse of %s failed: %s", json, err);
    char *back = s_to_json (mp.data, mp.size);
    cr_assert_str_eq (back, expected, "%s gave %s, expected %s", json, back, expected);
    free (back);
    msgpack_sbuffer_destroy (&mp);
}

static void
s_rejected (const char *json, size_t len)
{
    msgpack_sbuffer mp;
    msgpack_sbuffer_init (&mp);
    msgpack_sbuffer_write (&mp, "keep", 4);  //  what was there must stay
    char err[200] = "";
    int rc = jr_json_to_msgpack (json, len, &mp, err, sizeof err);
    cr_assert_eq (rc, JR_EINVALID, "'%.*s' was accepted", (int)len, json);
    cr_assert (strlen (err) > 0, "no message for '%.*s'", (int)len, json);
    cr_assert (strncmp (err, "line ", 5) == 0, "message without a position: %s", err);
    cr_assert_eq (mp.size, 4, "partial output left behind for '%.*s'", (int)len, json);
    msgpack_sbuffer_destroy (&mp);
}

Test (client_json, round_trips)
{
    s_round_trip ("{\"a\":1,\"b\":[true,false,null],\"c\":\"x\"}",
                  "{\"a\":1,\"b\":[true,false,null],\"c\":\"x\"}");
    s_round_trip ("  [ 1 , -2 ,\n\t3 ]  ", "[1,-2,3]");
    s_round_trip ("{}", "{}");
    s_round_trip ("[]", "[]");
    s_round_trip ("[[],{}]", "[[],{}]");
    s_round_trip ("\"\"", "\"\"");
    s_round_trip ("0", "0");
    s_round_trip ("-0", "0");
    s_round_trip ("9223372036854775807", "9223372036854775807");
    s_round_trip ("-9223372036854775808", "-9223372036854775808");
    s_round_trip ("18446744073709551615", "18446744073709551615");
    s_round_trip ("1.5", "1.5");
    s_round_trip ("-0.25", "-0.25");
    s_round_trip ("0.1", "0.1");
    s_round_trip ("1e3", "1000.0");  //  stays a float
    s_round_trip ("2.0", "2.0");
    s_round_trip ("1E-2", "0.01");
    s_round_trip ("123456789012345678901234567890", "1.2345678901234568e+29");
    s_round_trip ("{\"k\":{\"n\":{\"m\":[1,{\"z\":\"y\"}]}}}",
                  "{\"k\":{\"n\":{\"m\":[1,{\"z\":\"y\"}]}}}");
    s_round_trip ("{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2}");  //  kept as sent
}

Test (client_json, compact_msgpack)
{
    msgpack_sbuffer mp;
    msgpack_sbuffer_init (&mp);
    cr_assert_eq (jr_json_to_msgpack ("{\"a\":1}", 7, &mp, NULL, 0), 0);
    cr_assert_eq (mp.size, 4);
    cr_assert_eq (memcmp (mp.data,
                          "\x81\xa1"
                          "a\x01",
                          4),
                  0);
    msgpack_sbuffer_clear (&mp);
    //  20 elements need the 16-bit array header
    const char *big = "[0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9]";
    cr_assert_eq (jr_json_to_msgpack (big, strlen (big), &mp, NULL, 0), 0);
    cr_assert_eq (mp.size, 23);
    cr_assert_eq ((uint8_t)mp.data[0], 0xdc);
    cr_assert_eq ((uint8_t)mp.data[2], 20);
    //  and the whole thing is one value the bounded reader accepts
    jr_mp_t reader;
    jr_mp_init (&reader, mp.data, mp.size);
    cr_assert (jr_mp_skip (&reader, NULL));
    cr_assert_eq (jr_mp_left (&reader), 0);
    //  a large integer is a msgpack int, not a float
    msgpack_sbuffer_clear (&mp);
    cr_assert_eq (jr_json_to_msgpack ("70000", 5, &mp, NULL, 0), 0);
    jr_mp_init (&reader, mp.data, mp.size);
    int64_t v;
    cr_assert (jr_mp_int (&reader, &v));
    cr_assert_eq (v, 70000);
    msgpack_sbuffer_destroy (&mp);
}

Test (client_json, escapes)
{
    s_round_trip ("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", "\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\"");
    s_round_trip ("\"\\u0001\\u001f\\u007f\"", "\"\\u0001\\u001f\\u007f\"");
    s_round_trip ("\"\\u0041\\u0062\"", "\"Ab\"");
    //  a NUL inside a string survives
    msgpack_sbuffer mp;
    msgpack_sbuffer_init (&mp);
    cr_assert_eq (jr_json_to_msgpack ("\"a\\u0000b\"", 10, &mp, NULL, 0), 0);
    cr_assert_eq (mp.size, 4);
    cr_assert_eq (memcmp (mp.data,
                          "\xa3"
                          "a\0b",
                          4),
                  0);
    char *back = s_to_json (mp.data, mp.size);
    cr_assert_str_eq (back, "\"a\\u0000b\"");
    free (back);
    msgpack_sbuffer_destroy (&mp);
}

Test (client_json, unicode)
{
    //  two-, three- and four-byte UTF-8 from escapes; the pair is one code point
    s_round_trip ("\"\\u00e9\\u20AC\\ud83d\\ude00\"", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    //  raw UTF-8 passes through
    s_round_trip ("\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"",
                  "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
    s_round_trip ("{\"\xc3\xa9\":\"\\uFFFD\"}", "{\"\xc3\xa9\":\"\xef\xbf\xbd\"}");
}

Test (client_json, depth_limit)
{
    char deep[200];
    for (int depth = 1; depth <= JR_JSON_MAX_DEPTH + 1; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            deep[n++] = '[';
        deep[n++] = '1';
        for (int i = 0; i < depth; i++)
            deep[n++] = ']';
        msgpack_sbuffer mp;
        msgpack_sbuffer_init (&mp);
        char err[200] = "";
        int rc = jr_json_to_msgpack (deep, n, &mp, err, sizeof err);
        if (depth <= JR_JSON_MAX_DEPTH) {
            cr_assert_eq (rc, 0, "depth %d refused: %s", depth, err);
            //  everything we accept, the bounded reader can skip
            jr_mp_t reader;
            jr_mp_init (&reader, mp.data, mp.size);
            cr_assert (jr_mp_skip (&reader, NULL), "depth %d not skippable", depth);
        }
        else {
            cr_assert_eq (rc, JR_EINVALID);
            cr_assert (strstr (err, "nesting"), "message: %s", err);
        }
        msgpack_sbuffer_destroy (&mp);
    }
    //  objects count too
    char objs[400];
    size_t n = 0;
    for (int i = 0; i <= JR_JSON_MAX_DEPTH; i++)
        n += (size_t)sprintf (objs + n, "{\"k\":");
    n += (size_t)sprintf (objs + n, "1");
    for (int i = 0; i <= JR_JSON_MAX_DEPTH; i++)
        objs[n++] = '}';
    s_rejected (objs, n);
}

Test (client_json, malformed_rejected)
{
    const char *bad[] = {
        "",
        "   ",
        "{",
        "}",
        "[",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{\"a\"}",
        "{\"a\":}",
        "{a:1}",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{1:2}",
        "01",
        "-01",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "1e+",
        "0x10",
        "tru",
        "nul",
        "True",
        "NaN",
        "Infinity",
        "1e999",
        "\"abc",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"\\ud800\"",
        "\"\\ud800x\"",
        "\"\\ud800\\u0041\"",
        "\"\\udc00\"",
        "[1] x",
        "1 2",
        "\"\x01\"",
        "\"tab\tin\"",
        "\"\xff\"",
        "\"\xc0\x80\"",
        "\"\xed\xa0\x80\"",
        "'a'",
        "[1]]",
        "//c\n1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_rejected (bad[i], strlen (bad[i]));
    //  a NUL byte in the input is not whitespace
    s_rejected ("1\0", 2);

    //  the message says where and what
    msgpack_sbuffer mp;
    msgpack_sbuffer_init (&mp);
    char err[200];
    cr_assert_eq (jr_json_to_msgpack ("{\"a\":1,\n \"b\":]}", 15, &mp, err, sizeof err),
                  JR_EINVALID);
    cr_assert_str_eq (err, "line 2 column 6: unexpected ']', expected a value");
    msgpack_sbuffer_destroy (&mp);
}

Test (client_json, bytes_and_odd_values)
{
    //  bin that is text prints as text; anything else as base64 with a prefix
    uint8_t text[] = { 0xc4, 2, 'h', 'i' };
    char *json = s_to_json (text, sizeof text);
    cr_assert_str_eq (json, "\"hi\"");
    free (json);
    uint8_t blob[] = { 0xc4, 3, 0xff, 0x00, 0x01 };
    json = s_to_json (blob, sizeof blob);
    cr_assert_str_eq (json, "\"base64:/wAB\"");
    free (json);
    uint8_t blob2[] = { 0xc4, 4, 0xff, 0xfe, 0xfd, 0xfc };
    json = s_to_json (blob2, sizeof blob2);
    cr_assert_str_eq (json, "\"base64://79/A==\"");
    free (json);
    //  a map with an integer key: the key becomes its JSON text
    uint8_t intkey[] = { 0x81, 0x01, 0xa1, 'x' };
    json = s_to_json (intkey, sizeof intkey);
    cr_assert_str_eq (json, "{\"1\":\"x\"}");
    free (json);
    //  floats: a float32 and a NaN
    uint8_t f32[] = { 0x92, 0xca, 0x3f, 0xc0, 0x00, 0x00, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0 };
    json = s_to_json (f32, sizeof f32);
    cr_assert_str_eq (json, "[1.5,null]");
    free (json);
    //  fixext 1 of type 5
    uint8_t ext[] = { 0xd4, 0x05, 0x41 };
    json = s_to_json (ext, sizeof ext);
    cr_assert_str_eq (json, "{\"ext\":5,\"data\":\"base64:QQ==\"}");
    free (json);
    //  truncated or trailing bytes: not one value
    uint8_t truncated[] = { 0x92, 0x01 };
    json = s_to_json (truncated, sizeof truncated);
    cr_assert_str_eq (json, "null");
    free (json);
    uint8_t trailing[] = { 0x01, 0x02 };
    json = s_to_json (trailing, sizeof trailing);
    cr_assert_str_eq (json, "null");
    free (json);
}

Test (client_json, job_printer)
{
    msgpack_sbuffer vars;
    msgpack_sbuffer_init (&vars);
    cr_assert_eq (jr_json_to_msgpack ("{\"msg\":\"hi\",\"n\":3}", 18, &vars, NULL, 0), 0);
    jr_job_t job;
    jr_job_init (&job, "echo");
    jr_id_parse ("1b4e28ba-2fa1-41d2-883f-0016d3cca427", job.id);
    job.vars = (jr_bytes_t){ (const uint8_t *)vars.data, vars.size };
    job.state = JR_STATE_SUCCEEDED;
    job.success = true;
    job.attempt = 1;
    job.worker = (jr_bytes_t){ (const uint8_t *)"w1@host", 7 };
    job.payload = (jr_bytes_t){ (const uint8_t *)"say \"hi\"\n", 9 };
    job.created_us = 1, job.accepted_us = 2, job.dispatched_us = 3;
    job.started_us = 4, job.completed_us = 5, job.ingested_us = 6;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream (&text, &len);
    jr_json_print_job (&job, mem);
    fclose (mem);
    cr_assert_str_eq (text,
                      "{\"id\":\"1b4e28ba-2fa1-41d2-883f-0016d3cca427\",\"task\":\"echo\","
                      "\"state\":\"succeeded\",\"success\":true,\"attempt\":1,"
                      "\"worker\":\"w1@host\",\"payload\":\"say \\\"hi\\\"\\n\",\"error\":\"\","
                      "\"vars\":{\"msg\":\"hi\",\"n\":3},\"metrics\":{\"created_us\":1,"
                      "\"accepted_us\":2,\"dispatched_us\":3,\"started_us\":4,"
                      "\"completed_us\":5,\"ingested_us\":6}}");
    //  what we print, we read back
    msgpack_sbuffer mp;
    msgpack_sbuffer_init (&mp);
    char err[200];
    cr_assert_eq (jr_json_to_msgpack (text, len, &mp, err, sizeof err), 0, "%s", err);
    free (text);
    //  a failed job without a stored state, and no vars
    job.state = 0;
    job.success = false;
    job.vars = (jr_bytes_t){ NULL, 0 };
    job.error = (jr_bytes_t){ (const uint8_t *)"boom", 4 };
    mem = open_memstream (&text, &len);
    jr_json_print_job (&job, mem);
    fclose (mem);
    cr_assert (strstr (text, "\"state\":\"failed\",\"success\":false"), "%s", text);
    cr_assert (strstr (text, "\"error\":\"boom\",\"vars\":{}"), "%s", text);
    free (text);
    msgpack_sbuffer_destroy (&mp);
    msgpack_sbuffer_destroy (&vars);
}
