/*  mp.c - a bounded, allocation-free msgpack reader  */
#include "common/mp.h"
#include <assert.h>
#include <string.h>

void
jr_mp_init (jr_mp_t *self, const void *data, size_t size)
{
    //  NULL + 0 is undefined in C (UBSan aborts on it): an empty input may
    //  come as NULL, e.g. the vars of a job that has none.
    static const uint8_t empty[1];
    assert (data || size == 0);
    self->pos = size ? data : empty;
    self->end = self->pos + size;
    self->err = 0;
}

bool
jr_mp_fail (jr_mp_t *self, int code)
{
    if (!self->err)
        self->err = code;
    return false;
}

size_t
jr_mp_left (const jr_mp_t *self)
{
    return self->err ? 0 : (size_t)(self->end - self->pos);
}

static bool
s_need (jr_mp_t *self, size_t n)
{
    if (self->err)
        return false;
    if ((size_t)(self->end - self->pos) < n)
        return jr_mp_fail (self, JR_EMALFORMED);
    return true;
}

static uint64_t
s_be (const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

jr_mp_kind_t
jr_mp_peek (const jr_mp_t *self)
{
    if (self->err)
        return JR_MP_BAD;
    if (self->pos >= self->end)
        return JR_MP_END;
    uint8_t b = *self->pos;
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3))
        return JR_MP_INT;
    if (b >= 0x80 && b <= 0x8f)
        return JR_MP_MAP;
    if (b >= 0x90 && b <= 0x9f)
        return JR_MP_ARRAY;
    if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb))
        return JR_MP_STR;
    switch (b) {
        case 0xc0: return JR_MP_NIL;
        case 0xc2:
        case 0xc3: return JR_MP_BOOL;
        case 0xc4:
        case 0xc5:
        case 0xc6: return JR_MP_BIN;
        case 0xca:
        case 0xcb: return JR_MP_FLOAT;
        case 0xdc:
        case 0xdd: return JR_MP_ARRAY;
        case 0xde:
        case 0xdf: return JR_MP_MAP;
        case 0xc7:
        case 0xc8:
        case 0xc9:
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8: return JR_MP_EXT;
    }
    return JR_MP_BAD;  //  0xc1 is never used
}

//  Header of a container: fixed form in [lo, lo+15], then 16 and 32 bit.
static bool
s_container (jr_mp_t *self, uint8_t fix, uint8_t b16, uint32_t *count, size_t min_each)
{
    if (!s_need (self, 1))
        return false;
    uint8_t b = *self->pos;
    uint64_t n;
    if ((b & 0xf0) == fix) {
        n = b & 0x0f;
        self->pos += 1;
    }
    else if (b == b16 && s_need (self, 3)) {
        n = s_be (self->pos + 1, 2);
        self->pos += 3;
    }
    else if (b == b16 + 1 && s_need (self, 5)) {
        n = s_be (self->pos + 1, 4);
        self->pos += 5;
    }
    else
        return jr_mp_fail (self, JR_EMALFORMED);
    if (n * min_each > (uint64_t)(self->end - self->pos))
        return jr_mp_fail (self, JR_EMALFORMED);
    *count = (uint32_t)n;
    return true;
}

bool
jr_mp_array (jr_mp_t *self, uint32_t *count)
{
    return s_container (self, 0x90, 0xdc, count, 1);
}

bool
jr_mp_map (jr_mp_t *self, uint32_t *count)
{
    return s_container (self, 0x80, 0xde, count, 2);
}

bool
jr_mp_int (jr_mp_t *self, int64_t *value)
{
    if (!s_need (self, 1))
        return false;
    uint8_t b = *self->pos;
    if (b <= 0x7f) {
        *value = b;
        self->pos++;
        return true;
    }
    if (b >= 0xe0) {
        *value = (int8_t)b;
        self->pos++;
        return true;
    }
    static const int sizes[] = { 1, 2, 4, 8 };
    if (b >= 0xcc && b <= 0xcf) {  //  uint 8..64
        int n = sizes[b - 0xcc];
        if (!s_need (self, 1 + (size_t)n))
            return false;
        uint64_t v = s_be (self->pos + 1, n);
        if (v > INT64_MAX)
            return jr_mp_fail (self, JR_EMALFORMED);
        *value = (int64_t)v;
        self->pos += 1 + n;
        return true;
    }
    if (b >= 0xd0 && b <= 0xd3) {  //  int 8..64
        int n = sizes[b - 0xd0];
        if (!s_need (self, 1 + (size_t)n))
            return false;
        uint64_t v = s_be (self->pos + 1, n);
        int shift = 64 - 8 * n;
        *value = shift ? (int64_t)(v << shift) >> shift : (int64_t)v;
        self->pos += 1 + n;
        return true;
    }
    return jr_mp_fail (self, JR_EMALFORMED);
}

bool
jr_mp_uint (jr_mp_t *self, uint64_t *value)
{
    if (!s_need (self, 1))
        return false;
    if (*self->pos == 0xcf) {
        if (!s_need (self, 9))
            return false;
        *value = s_be (self->pos + 1, 8);
        self->pos += 9;
        return true;
    }
    int64_t v;
    if (!jr_mp_int (self, &v))
        return false;
    if (v < 0)
        return jr_mp_fail (self, JR_EMALFORMED);
    *value = (uint64_t)v;
    return true;
}

bool
jr_mp_bool (jr_mp_t *self, bool *value)
{
    if (!s_need (self, 1))
        return false;
    if (*self->pos != 0xc2 && *self->pos != 0xc3)
        return jr_mp_fail (self, JR_EMALFORMED);
    *value = *self->pos++ == 0xc3;
    return true;
}

bool
jr_mp_nil (jr_mp_t *self)
{
    if (self->err || self->pos >= self->end || *self->pos != 0xc0)
        return false;
    self->pos++;
    return true;
}

bool
jr_mp_float (jr_mp_t *self, double *value)
{
    if (!s_need (self, 1))
        return false;
    uint8_t b = *self->pos;
    if (b == 0xca && s_need (self, 5)) {
        uint32_t bits = (uint32_t)s_be (self->pos + 1, 4);
        float f;
        memcpy (&f, &bits, 4);
        *value = f;
        self->pos += 5;
        return true;
    }
    if (b == 0xcb && s_need (self, 9)) {
        uint64_t bits = s_be (self->pos + 1, 8);
        memcpy (value, &bits, 8);
        self->pos += 9;
        return true;
    }
    return jr_mp_fail (self, JR_EMALFORMED);
}

//  str or bin body of a length read from `hdr` bytes after the tag.
static bool
s_body (jr_mp_t *self, int hdr, size_t fixlen, jr_bytes_t *value)
{
    if (!s_need (self, 1 + (size_t)hdr))
        return false;
    size_t len = hdr ? (size_t)s_be (self->pos + 1, hdr) : fixlen;
    self->pos += 1 + hdr;
    if (!s_need (self, len))
        return false;
    value->ptr = self->pos;
    value->len = len;
    self->pos += len;
    return true;
}

static bool
s_blob (jr_mp_t *self, jr_bytes_t *value, bool allow_bin)
{
    if (!s_need (self, 1))
        return false;
    uint8_t b = *self->pos;
    if (b >= 0xa0 && b <= 0xbf)
        return s_body (self, 0, b & 0x1f, value);
    if (b >= 0xd9 && b <= 0xdb)
        return s_body (self, 1 << (b - 0xd9), 0, value);
    if (allow_bin && b >= 0xc4 && b <= 0xc6)
        return s_body (self, 1 << (b - 0xc4), 0, value);
    return jr_mp_fail (self, JR_EMALFORMED);
}

bool
jr_mp_str (jr_mp_t *self, jr_bytes_t *value)
{
    return s_blob (self, value, false);
}

bool
jr_mp_bytes (jr_mp_t *self, jr_bytes_t *value)
{
    return s_blob (self, value, true);
}

static bool
s_skip (jr_mp_t *self, int depth)
{
    if (depth > JR_MP_MAX_DEPTH)
        return jr_mp_fail (self, JR_ETOOLARGE);
    jr_bytes_t blob;
    int64_t i;
    uint32_t n;
    double d;
    bool flag;
    switch (jr_mp_peek (self)) {
        case JR_MP_NIL: self->pos++; return true;
        case JR_MP_BOOL: return jr_mp_bool (self, &flag);
        case JR_MP_INT:
            if (*self->pos == 0xcf) {
                uint64_t u;
                return jr_mp_uint (self, &u);
            }
            return jr_mp_int (self, &i);
        case JR_MP_FLOAT: return jr_mp_float (self, &d);
        case JR_MP_STR:
        case JR_MP_BIN: return jr_mp_bytes (self, &blob);
        case JR_MP_ARRAY:
        case JR_MP_MAP: {
            bool is_map = jr_mp_peek (self) == JR_MP_MAP;
            if (!(is_map ? jr_mp_map (self, &n) : jr_mp_array (self, &n)))
                return false;
            uint64_t items = is_map ? (uint64_t)n * 2 : n;
            for (uint64_t k = 0; k < items; k++)
                if (!s_skip (self, depth + 1))
                    return false;
            return true;
        }
        case JR_MP_EXT: {
            uint8_t b = *self->pos;
            if (b >= 0xd4 && b <= 0xd8) {  //  fixext 1..16: tag, type, data
                size_t len = (size_t)1 << (b - 0xd4);
                if (!s_need (self, 2 + len))
                    return false;
                self->pos += 2 + len;
                return true;
            }
            int hdr = 1 << (b - 0xc7);
            if (!s_need (self, 2 + (size_t)hdr))
                return false;
            size_t len = (size_t)s_be (self->pos + 1, hdr);
            self->pos += 2 + hdr;
            if (!s_need (self, len))
                return false;
            self->pos += len;
            return true;
        }
        default: return jr_mp_fail (self, JR_EMALFORMED);
    }
}

bool
jr_mp_skip (jr_mp_t *self, jr_bytes_t *span)
{
    const uint8_t *start = self->pos;
    if (!s_skip (self, 0))
        return false;
    if (span)
        *span = (jr_bytes_t){ start, (size_t)(self->pos - start) };
    return true;
}
