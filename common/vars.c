/*  vars.c - reading a job's vars (one msgpack map) by key, in place  */
#include "common/mp.h"
#include <jr/task.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

//  Position a reader on the value of `key`: 0, JR_ENOT_FOUND or JR_EINVALID.
static int
s_find (jr_bytes_t vars, const char *key, jr_mp_t *reader)
{
    jr_mp_init (reader, vars.ptr, vars.len);
    uint32_t n;
    if (vars.len == 0)
        return JR_ENOT_FOUND;
    if (!jr_mp_map (reader, &n))
        return JR_EINVALID;
    size_t keylen = strlen (key);
    for (uint32_t i = 0; i < n; i++) {
        //  A key that is not a string names no var: skip it with its value.
        jr_bytes_t k = { NULL, 0 };
        bool named = jr_mp_peek (reader) == JR_MP_STR;
        if (!(named ? jr_mp_str (reader, &k) : jr_mp_skip (reader, NULL)))
            return JR_EINVALID;
        if (named && k.len == keylen && memcmp (k.ptr, key, keylen) == 0)
            return 0;
        if (!jr_mp_skip (reader, NULL))
            return JR_EINVALID;
    }
    return JR_ENOT_FOUND;
}

int
jr_vars_bytes (jr_bytes_t vars, const char *key, jr_bytes_t *out)
{
    jr_mp_t reader;
    int rc = s_find (vars, key, &reader);
    if (rc)
        return rc;
    return jr_mp_bytes (&reader, out) ? 0 : JR_EINVALID;
}

int
jr_vars_int (jr_bytes_t vars, const char *key, int64_t *out)
{
    jr_mp_t reader;
    int rc = s_find (vars, key, &reader);
    if (rc)
        return rc;
    if (jr_mp_peek (&reader) == JR_MP_STR) {
        jr_bytes_t text;
        jr_mp_str (&reader, &text);
        char buf[32];
        if (text.len == 0 || text.len >= sizeof buf)
            return JR_EINVALID;
        memcpy (buf, text.ptr, text.len);
        buf[text.len] = 0;
        char *end;
        errno = 0;
        long long v = strtoll (buf, &end, 10);
        //  strtoll skips leading blanks and clamps on overflow: refuse both
        if (*end || errno == ERANGE || !(buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9')))
            return JR_EINVALID;
        *out = v;
        return 0;
    }
    return jr_mp_int (&reader, out) ? 0 : JR_EINVALID;
}

int
jr_vars_bool (jr_bytes_t vars, const char *key, bool *out)
{
    jr_mp_t reader;
    int rc = s_find (vars, key, &reader);
    if (rc)
        return rc;
    return jr_mp_bool (&reader, out) ? 0 : JR_EINVALID;
}
