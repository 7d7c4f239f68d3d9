/*  json.c - a strict JSON parser that writes msgpack, and a msgpack-to-JSON printer  */
#include "cli/json.h"
#include "common/lifecycle.h"
#include "common/mp.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

//  -------------------------------------------------------------------------
//  UTF-8

//  Length of the well-formed UTF-8 sequence at p, or 0. Strict: no overlong
//  forms, no surrogates, nothing above U+10FFFF (RFC 3629).
static size_t
s_utf8_seq (const uint8_t *p, size_t left)
{
    uint8_t b = p[0];
    if (b < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (b >= 0xc2 && b <= 0xdf)
        len = 2, cp = b & 0x1f;
    else if (b >= 0xe0 && b <= 0xef)
        len = 3, cp = b & 0x0f;
    else if (b >= 0xf0 && b <= 0xf4)
        len = 4, cp = b & 0x07;
    else
        return 0;
    if (left < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
        || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static bool
s_utf8_valid (jr_bytes_t s)
{
    for (size_t i = 0; i < s.len;) {
        size_t n = s_utf8_seq (s.ptr + i, s.len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

static size_t
s_utf8_put (uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

//  -------------------------------------------------------------------------
//  JSON -> msgpack: recursive descent straight into the output buffer

typedef struct {
    const char *start;     //  first byte, to report line and column
    const char *pos;       //  next byte to read
    const char *end;       //  one past the last byte
    msgpack_sbuffer *out;  //  where msgpack goes
    msgpack_packer pk;     //  packer writing to out
    int depth;             //  containers open around pos
    bool failed;           //  the first error is kept
    char *err;             //  caller's message buffer, or NULL
    size_t errlen;         //  its size
    char *text;            //  scratch for decoded strings
    size_t text_len, text_cap;
} parser_t;

static bool s_value (parser_t *self);

static bool __attribute__ ((format (printf, 2, 3))) s_fail (parser_t *self, const char *format, ...)
{
    if (self->failed)
        return false;
    self->failed = true;
    if (!self->err || !self->errlen)
        return false;
    int line = 1, column = 1;
    for (const char *p = self->start; p < self->pos && p < self->end; p++) {
        if (*p == '\n')
            line++, column = 1;
        else
            column++;
    }
    int n = snprintf (self->err, self->errlen, "line %d column %d: ", line, column);
    if (n >= 0 && (size_t)n < self->errlen) {
        va_list args;
        va_start (args, format);
        vsnprintf (self->err + n, self->errlen - (size_t)n, format, args);
        va_end (args);
    }
    return false;
}

//  Names the byte at pos for an error message.
static bool
s_unexpected (parser_t *self, const char *wanted)
{
    if (self->pos >= self->end)
        return s_fail (self, "unexpected end of input, expected %s", wanted);
    unsigned char c = (unsigned char)*self->pos;
    if (c >= 0x20 && c < 0x7f)
        return s_fail (self, "unexpected '%c', expected %s", c, wanted);
    return s_fail (self, "unexpected byte 0x%02x, expected %s", c, wanted);
}

static void
s_ws (parser_t *self)
{
    while (self->pos < self->end
           && (*self->pos == ' ' || *self->pos == '\t' || *self->pos == '\n' || *self->pos == '\r'))
        self->pos++;
}

static void
s_text_add (parser_t *self, const char *data, size_t len)
{
    if (self->text_len + len > self->text_cap) {
        size_t cap = self->text_cap ? self->text_cap : 64;
        while (cap < self->text_len + len)
            cap *= 2;
        self->text = realloc (self->text, cap);
        assert (self->text);
        self->text_cap = cap;
    }
    memcpy (self->text + self->text_len, data, len);
    self->text_len += len;
}

static bool
s_hex4 (parser_t *self, uint32_t *value)
{
    if (self->end - self->pos < 4)
        return s_fail (self, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = self->pos[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return s_fail (self, "bad hex digit in \\u escape");
        v = (v << 4) | (uint32_t)d;
    }
    self->pos += 4;
    *value = v;
    return true;
}

//  A string into self->text (not packed: keys and values share this).
static bool
s_string (parser_t *self)
{
    assert (*self->pos == '"');
    self->pos++;
    self->text_len = 0;
    while (true) {
        if (self->pos >= self->end)
            return s_fail (self, "unterminated string");
        unsigned char c = (unsigned char)*self->pos;
        if (c == '"') {
            self->pos++;
            return true;
        }
        if (c < 0x20)
            return s_fail (self, "control character 0x%02x in string (escape it)", c);
        if (c >= 0x80) {
            size_t n = s_utf8_seq ((const uint8_t *)self->pos, (size_t)(self->end - self->pos));
            if (!n)
                return s_fail (self, "invalid UTF-8 in string");
            s_text_add (self, self->pos, n);
            self->pos += n;
            continue;
        }
        if (c != '\\') {
            s_text_add (self, self->pos++, 1);
            continue;
        }
        self->pos++;
        if (self->pos >= self->end)
            return s_fail (self, "unterminated string");
        char e = *self->pos++;
        const char *plain = NULL;
        switch (e) {
            case '"': plain = "\""; break;
            case '\\': plain = "\\"; break;
            case '/': plain = "/"; break;
            case 'b': plain = "\b"; break;
            case 'f': plain = "\f"; break;
            case 'n': plain = "\n"; break;
            case 'r': plain = "\r"; break;
            case 't': plain = "\t"; break;
            case 'u': break;
            default: self->pos--; return s_fail (self, "bad escape '\\%c'", e);
        }
        if (plain) {
            s_text_add (self, plain, 1);
            continue;
        }
        uint32_t cp;
        if (!s_hex4 (self, &cp))
            return false;
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return s_fail (self, "lone low surrogate \\u%04x", cp);
        if (cp >= 0xd800 && cp <= 0xdbff) {
            //  UTF-16 pair: the high half must be followed by a low half.
            uint32_t low;
            if (self->end - self->pos < 2 || self->pos[0] != '\\' || self->pos[1] != 'u')
                return s_fail (self, "high surrogate \\u%04x without a low one", cp);
            self->pos += 2;
            if (!s_hex4 (self, &low))
                return false;
            if (low < 0xdc00 || low > 0xdfff)
                return s_fail (self, "high surrogate \\u%04x followed by \\u%04x", cp, low);
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        }
        char utf8[4];
        s_text_add (self, utf8, s_utf8_put (cp, utf8));
    }
}

static bool
s_digits (parser_t *self)
{
    const char *from = self->pos;
    while (self->pos < self->end && *self->pos >= '0' && *self->pos <= '9')
        self->pos++;
    return self->pos > from;
}

static bool
s_number (parser_t *self)
{
    const char *from = self->pos;
    bool integer = true;
    if (*self->pos == '-')
        self->pos++;
    if (self->pos < self->end && *self->pos == '0')
        self->pos++;  //  no leading zeros: "0" stands alone
    else if (!s_digits (self))
        return s_unexpected (self, "a digit");
    if (self->pos < self->end && *self->pos == '.') {
        integer = false;
        self->pos++;
        if (!s_digits (self))
            return s_unexpected (self, "a digit after '.'");
    }
    if (self->pos < self->end && (*self->pos == 'e' || *self->pos == 'E')) {
        integer = false;
        self->pos++;
        if (self->pos < self->end && (*self->pos == '+' || *self->pos == '-'))
            self->pos++;
        if (!s_digits (self))
            return s_unexpected (self, "a digit in the exponent");
    }
    char buf[512];  //  strtoX want a terminated string
    size_t len = (size_t)(self->pos - from);
    if (len >= sizeof buf) {
        self->pos = from;
        return s_fail (self, "number too long");
    }
    memcpy (buf, from, len);
    buf[len] = 0;
    if (integer) {
        errno = 0;
        long long v = strtoll (buf, NULL, 10);
        if (!errno) {
            msgpack_pack_int64 (&self->pk, v);
            return true;
        }
        if (buf[0] != '-') {
            errno = 0;
            unsigned long long u = strtoull (buf, NULL, 10);
            if (!errno) {
                msgpack_pack_uint64 (&self->pk, u);
                return true;
            }
        }
        //  Beyond 64 bits: keep it, as a double, like most JSON readers.
    }
    double d = strtod (buf, NULL);
    if (!isfinite (d)) {
        self->pos = from;
        return s_fail (self, "number out of range");
    }
    msgpack_pack_double (&self->pk, d);
    return true;
}

static bool
s_literal (parser_t *self, const char *word)
{
    size_t len = strlen (word);
    if ((size_t)(self->end - self->pos) < len || memcmp (self->pos, word, len) != 0)
        return s_unexpected (self, "a value");
    self->pos += len;
    return true;
}

//  A container's count is known only at its end, so its header goes in as
//  a 5-byte placeholder, then is rewritten in the shortest form.
static size_t
s_open (parser_t *self)
{
    size_t mark = self->out->size;
    msgpack_sbuffer_write (self->out, "\0\0\0\0\0", 5);
    return mark;
}

static void
s_close (parser_t *self, size_t mark, uint32_t count, bool is_map)
{
    uint8_t hdr[5];
    size_t hlen;
    if (count < 16) {
        hdr[0] = (uint8_t)((is_map ? 0x80 : 0x90) | count);
        hlen = 1;
    }
    else if (count <= 0xffff) {
        hdr[0] = is_map ? 0xde : 0xdc;
        hdr[1] = (uint8_t)(count >> 8), hdr[2] = (uint8_t)count;
        hlen = 3;
    }
    else {
        hdr[0] = is_map ? 0xdf : 0xdd;
        for (int i = 0; i < 4; i++)
            hdr[1 + i] = (uint8_t)(count >> (24 - 8 * i));
        hlen = 5;
    }
    char *base = self->out->data + mark;
    memmove (base + hlen, base + 5, self->out->size - mark - 5);
    memcpy (base, hdr, hlen);
    self->out->size -= 5 - hlen;
}

static bool
s_container (parser_t *self, bool is_map)
{
    if (++self->depth > JR_JSON_MAX_DEPTH)
        return s_fail (self, "nesting deeper than %d", JR_JSON_MAX_DEPTH);
    char closer = is_map ? '}' : ']';
    self->pos++;
    size_t mark = s_open (self);
    uint32_t count = 0;
    s_ws (self);
    if (self->pos < self->end && *self->pos == closer)
        self->pos++;
    else
        while (true) {
            if (count == UINT32_MAX)
                return s_fail (self, "too many elements");
            if (is_map) {
                s_ws (self);
                if (self->pos >= self->end || *self->pos != '"')
                    return s_unexpected (self, "a string key");
                if (!s_string (self))
                    return false;
                msgpack_pack_str (&self->pk, self->text_len);
                msgpack_pack_str_body (&self->pk, self->text, self->text_len);
                s_ws (self);
                if (self->pos >= self->end || *self->pos != ':')
                    return s_unexpected (self, "':'");
                self->pos++;
            }
            if (!s_value (self))
                return false;
            count++;
            s_ws (self);
            if (self->pos < self->end && *self->pos == ',') {
                self->pos++;
                continue;
            }
            if (self->pos < self->end && *self->pos == closer) {
                self->pos++;
                break;
            }
            return s_unexpected (self, is_map ? "',' or '}'" : "',' or ']'");
        }
    s_close (self, mark, count, is_map);
    self->depth--;
    return true;
}

static bool
s_value (parser_t *self)
{
    s_ws (self);
    if (self->pos >= self->end)
        return s_unexpected (self, "a value");
    switch (*self->pos) {
        case '{': return s_container (self, true);
        case '[': return s_container (self, false);
        case '"':
            if (!s_string (self))
                return false;
            msgpack_pack_str (&self->pk, self->text_len);
            msgpack_pack_str_body (&self->pk, self->text, self->text_len);
            return true;
        case 't':
            if (!s_literal (self, "true"))
                return false;
            msgpack_pack_true (&self->pk);
            return true;
        case 'f':
            if (!s_literal (self, "false"))
                return false;
            msgpack_pack_false (&self->pk);
            return true;
        case 'n':
            if (!s_literal (self, "null"))
                return false;
            msgpack_pack_nil (&self->pk);
            return true;
        default:
            if (*self->pos == '-' || (*self->pos >= '0' && *self->pos <= '9'))
                return s_number (self);
            return s_unexpected (self, "a value");
    }
}

int
jr_json_to_msgpack (const char *json, size_t len, msgpack_sbuffer *out, char *err, size_t errlen)
{
    assert (json || len == 0);
    assert (out);
    parser_t self = {
        .start = json, .pos = json, .end = json + len, .out = out, .err = err, .errlen = errlen
    };
    msgpack_packer_init (&self.pk, out, msgpack_sbuffer_write);
    if (err && errlen)
        err[0] = 0;
    size_t size_before = out->size;
    bool ok = s_value (&self);
    if (ok) {
        s_ws (&self);
        if (self.pos < self.end)
            ok = s_unexpected (&self, "end of input");
    }
    free (self.text);
    if (!ok) {
        out->size = size_before;  //  drop the partial value
        return JR_EINVALID;
    }
    return 0;
}

//  -------------------------------------------------------------------------
//  msgpack -> JSON. JSON has no bytes, so a str or bin value prints as a
//  JSON string when it is valid UTF-8 (the usual case: payloads and vars
//  are mostly text) and otherwise as "base64:" followed by standard padded
//  base64. Text that itself starts with "base64:" is thus ambiguous; we
//  accept that for readable output. An ext prints as {"ext":type,
//  "data":"base64:..."}, a non-string map key as the string of its JSON,
//  NaN and infinities as null.

static void
s_base64 (jr_bytes_t b, FILE *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < b.len; i += 3) {
        uint32_t v = (uint32_t)b.ptr[i] << 16;
        if (i + 1 < b.len)
            v |= (uint32_t)b.ptr[i + 1] << 8;
        if (i + 2 < b.len)
            v |= b.ptr[i + 2];
        fputc (alphabet[(v >> 18) & 63], out);
        fputc (alphabet[(v >> 12) & 63], out);
        fputc (i + 1 < b.len ? alphabet[(v >> 6) & 63] : '=', out);
        fputc (i + 2 < b.len ? alphabet[v & 63] : '=', out);
    }
}

void
jr_json_print_bytes (jr_bytes_t bytes, FILE *out)
{
    fputc ('"', out);
    if (!s_utf8_valid (bytes)) {
        fputs ("base64:", out);
        s_base64 (bytes, out);
        fputc ('"', out);
        return;
    }
    for (size_t i = 0; i < bytes.len; i++) {
        uint8_t c = bytes.ptr[i];
        switch (c) {
            case '"': fputs ("\\\"", out); break;
            case '\\': fputs ("\\\\", out); break;
            case '\b': fputs ("\\b", out); break;
            case '\f': fputs ("\\f", out); break;
            case '\n': fputs ("\\n", out); break;
            case '\r': fputs ("\\r", out); break;
            case '\t': fputs ("\\t", out); break;
            default:
                if (c < 0x20 || c == 0x7f)
                    fprintf (out, "\\u%04x", c);
                else
                    fputc (c, out);
        }
    }
    fputc ('"', out);
}

static void
s_print_double (double d, FILE *out)
{
    if (!isfinite (d)) {
        fputs ("null", out);
        return;
    }
    //  The shortest of %.15g and %.17g that reads back to the same double.
    char buf[40];
    snprintf (buf, sizeof buf, "%.15g", d);
    if (strtod (buf, NULL) != d)
        snprintf (buf, sizeof buf, "%.17g", d);
    fputs (buf, out);
    //  Keep it a float on the way back in: 1.0 must not become the int 1.
    if (!strpbrk (buf, ".eE"))
        fputs (".0", out);
}

static void s_print (jr_mp_t *reader, FILE *out);

static void
s_print_ext (jr_bytes_t span, FILE *out)
{
    uint8_t b = span.ptr[0];
    size_t skip;
    if (b >= 0xd4 && b <= 0xd8)
        skip = 1;
    else
        skip = 1 + ((size_t)1 << (b - 0xc7));
    int8_t type = (int8_t)span.ptr[skip];
    fprintf (out, "{\"ext\":%d,\"data\":\"base64:", type);
    s_base64 ((jr_bytes_t){ span.ptr + skip + 1, span.len - skip - 1 }, out);
    fputs ("\"}", out);
}

static void
s_print (jr_mp_t *reader, FILE *out)
{
    //  The caller checked the whole value with jr_mp_skip: reads succeed.
    jr_bytes_t b;
    uint32_t n;
    switch (jr_mp_peek (reader)) {
        case JR_MP_NIL:
            jr_mp_nil (reader);
            fputs ("null", out);
            break;
        case JR_MP_BOOL: {
            bool v = false;
            jr_mp_bool (reader, &v);
            fputs (v ? "true" : "false", out);
            break;
        }
        case JR_MP_INT:
            if (*reader->pos == 0xcf) {
                uint64_t u = 0;
                jr_mp_uint (reader, &u);
                fprintf (out, "%llu", (unsigned long long)u);
            }
            else {
                int64_t i = 0;
                jr_mp_int (reader, &i);
                fprintf (out, "%lld", (long long)i);
            }
            break;
        case JR_MP_FLOAT: {
            double d = 0;
            jr_mp_float (reader, &d);
            s_print_double (d, out);
            break;
        }
        case JR_MP_STR:
        case JR_MP_BIN:
            if (jr_mp_bytes (reader, &b))
                jr_json_print_bytes (b, out);
            break;
        case JR_MP_ARRAY:
            if (!jr_mp_array (reader, &n))
                break;
            fputc ('[', out);
            for (uint32_t i = 0; i < n; i++) {
                if (i)
                    fputc (',', out);
                s_print (reader, out);
            }
            fputc (']', out);
            break;
        case JR_MP_MAP:
            if (!jr_mp_map (reader, &n))
                break;
            fputc ('{', out);
            for (uint32_t i = 0; i < n; i++) {
                if (i)
                    fputc (',', out);
                jr_mp_kind_t kind = jr_mp_peek (reader);
                if (kind == JR_MP_STR || kind == JR_MP_BIN)
                    s_print (reader, out);
                else {
                    //  JSON keys are strings: use the key's own JSON text.
                    char *text = NULL;
                    size_t size = 0;
                    FILE *mem = open_memstream (&text, &size);
                    assert (mem);
                    s_print (reader, mem);
                    fclose (mem);
                    jr_json_print_bytes ((jr_bytes_t){ (const uint8_t *)text, size }, out);
                    free (text);
                }
                fputc (':', out);
                s_print (reader, out);
            }
            fputc ('}', out);
            break;
        case JR_MP_EXT:
            if (jr_mp_skip (reader, &b))
                s_print_ext (b, out);
            break;
        default: break;
    }
}

void
jr_msgpack_to_json (jr_bytes_t mp, FILE *out)
{
    jr_mp_t check;
    jr_mp_init (&check, mp.ptr, mp.len);
    if (!jr_mp_skip (&check, NULL) || jr_mp_left (&check) != 0) {
        fputs ("null", out);
        return;
    }
    jr_mp_t reader;
    jr_mp_init (&reader, mp.ptr, mp.len);
    s_print (&reader, out);
}

void
jr_json_print_job (const jr_job_t *job, FILE *out)
{
    char id[37];
    jr_id_format (job->id, id);
    //  The ingester stores the final state; older rows may only say success.
    const char *state = jr_state_name (jr_result_state (job->state, job->success));
    fprintf (out, "{\"id\":\"%s\",\"task\":", id);
    jr_json_print_bytes (job->task, out);
    fprintf (out, ",\"state\":\"%s\",\"success\":%s,\"attempt\":%u,\"worker\":", state,
             job->success ? "true" : "false", job->attempt);
    jr_json_print_bytes (job->worker, out);
    fputs (",\"payload\":", out);
    jr_json_print_bytes (job->payload, out);
    fputs (",\"error\":", out);
    jr_json_print_bytes (job->error, out);
    fputs (",\"vars\":", out);
    if (job->vars.len)
        jr_msgpack_to_json (job->vars, out);
    else
        fputs ("{}", out);
    fprintf (out,
             ",\"metrics\":{\"created_us\":%lld,\"accepted_us\":%lld,\"dispatched_us\":%lld,"
             "\"started_us\":%lld,\"completed_us\":%lld,\"ingested_us\":%lld}}",
             (long long)job->created_us, (long long)job->accepted_us, (long long)job->dispatched_us,
             (long long)job->started_us, (long long)job->completed_us, (long long)job->ingested_us);
}
