/*  fuzz_vars.c - libFuzzer target: the msgpack reader and the vars helpers  */
#include "common/mp.h"
#include <jr/task.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define s_check(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf (stderr, "fuzz_vars: %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
            abort ();                                                                              \
        }                                                                                          \
    } while (0)

static const uint8_t *s_lo, *s_hi;  //  the input: every view must lie inside

static void
s_check_view (jr_bytes_t view)
{
    s_check (view.len == 0 || (view.ptr >= s_lo && view.ptr + view.len <= s_hi));
}

//  Reads one value with the typed reader its first byte calls for; a value
//  that skips must also read.
static void
s_read_typed (const jr_mp_t *at, bool skipped)
{
    jr_mp_t r = *at;
    jr_bytes_t b;
    int64_t i;
    uint64_t u;
    double d;
    bool flag;
    uint32_t n;
    bool ok = true;
    switch (jr_mp_peek (&r)) {
        case JR_MP_INT: {
            jr_mp_t r2 = r;
            ok = jr_mp_int (&r, &i) || jr_mp_uint (&r2, &u);
            break;
        }
        case JR_MP_FLOAT: ok = jr_mp_float (&r, &d); break;
        case JR_MP_BOOL: ok = jr_mp_bool (&r, &flag); break;
        case JR_MP_NIL: ok = jr_mp_nil (&r); break;
        case JR_MP_STR:
            ok = jr_mp_str (&r, &b);
            if (ok)
                s_check_view (b);
            break;
        case JR_MP_BIN:
            ok = jr_mp_bytes (&r, &b);
            if (ok)
                s_check_view (b);
            break;
        case JR_MP_ARRAY: ok = jr_mp_array (&r, &n) && n <= jr_mp_left (&r); break;
        case JR_MP_MAP: ok = jr_mp_map (&r, &n) && (uint64_t)n * 2 <= jr_mp_left (&r); break;
        default: return;
    }
    if (skipped)
        s_check (ok);
    s_check (r.pos <= r.end);
}

//  Every str key of the top-level map (if it is one) is looked up.
static void
s_lookup_keys (jr_bytes_t vars)
{
    jr_mp_t r;
    jr_mp_init (&r, vars.ptr, vars.len);
    uint32_t n;
    if (!jr_mp_map (&r, &n))
        return;
    for (uint32_t k = 0; k < n && k < 64; k++) {
        jr_bytes_t key;
        if (!jr_mp_str (&r, &key) || !jr_mp_skip (&r, NULL))
            return;
        char name[64];
        if (key.len >= sizeof name || memchr (key.ptr, 0, key.len))
            continue;
        memcpy (name, key.ptr, key.len);
        name[key.len] = 0;
        jr_bytes_t out;
        int64_t v;
        int rc = jr_vars_bytes (vars, name, &out);
        s_check (rc == 0 || rc == JR_EINVALID);  //  present, so never NOT_FOUND
        if (rc == 0)
            s_check_view (out);
        rc = jr_vars_int (vars, name, &v);
        s_check (rc == 0 || rc == JR_EINVALID);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_lo = data;
    s_hi = data + size;

    //  The input as a run of values: each skip is a span inside the input.
    jr_mp_t r;
    jr_mp_init (&r, data, size);
    while (jr_mp_left (&r) > 0) {
        jr_mp_t before = r;
        jr_bytes_t span;
        bool skipped = jr_mp_skip (&r, &span);
        s_read_typed (&before, skipped);
        if (!skipped) {
            s_check (r.err == JR_EMALFORMED || r.err == JR_ETOOLARGE);
            s_check (jr_mp_left (&r) == 0);
            break;
        }
        s_check (span.len > 0 && span.ptr == before.pos);
        s_check_view (span);
    }

    //  The input as a job's vars.
    jr_bytes_t vars = { data, size };
    static const char *keys[] = { "", "a", "n", "name", "timeout", "argv" };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        jr_bytes_t out;
        int64_t v;
        int rc = jr_vars_bytes (vars, keys[k], &out);
        s_check (rc == 0 || rc == JR_ENOT_FOUND || rc == JR_EINVALID);
        if (rc == 0)
            s_check_view (out);
        rc = jr_vars_int (vars, keys[k], &v);
        s_check (rc == 0 || rc == JR_ENOT_FOUND || rc == JR_EINVALID);
    }
    s_lookup_keys (vars);
    return 0;
}
