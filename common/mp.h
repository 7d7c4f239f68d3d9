/*  mp.h - a bounded, allocation-free msgpack reader over borrowed bytes  */
#ifndef JR_MP_H
#define JR_MP_H
#include <jr/jr.h>

//  Reads msgpack in place. Every declared count is checked against the bytes
//  left before it is believed, so no input can make it allocate or read out
//  of bounds. The first failure sticks: later calls return false and `err`
//  keeps JR_EMALFORMED (or JR_ETOOLARGE from a caller's limit).
typedef struct {
    const uint8_t *pos;  //  next byte to read
    const uint8_t *end;  //  one past the last byte
    int err;             //  0 or the first error
} jr_mp_t;

#define JR_MP_MAX_DEPTH 32  //  nesting allowed inside a skipped value

void jr_mp_init (jr_mp_t *self, const void *data, size_t size);
//  Fail the reader with code (keeps the first error); returns false.
bool jr_mp_fail (jr_mp_t *self, int code);
//  Bytes left unread.
size_t jr_mp_left (const jr_mp_t *self);
//  An array or map header; each element needs at least one byte (a map
//  entry two), so counts larger than the input are refused.
bool jr_mp_array (jr_mp_t *self, uint32_t *count);
bool jr_mp_map (jr_mp_t *self, uint32_t *count);
bool jr_mp_uint (jr_mp_t *self, uint64_t *value);
bool jr_mp_int (jr_mp_t *self, int64_t *value);
bool jr_mp_bool (jr_mp_t *self, bool *value);
//  True and consumes a nil if the next value is nil.
bool jr_mp_nil (jr_mp_t *self);
//  A str (or, for _bytes, a str or bin) as a view into the input.
bool jr_mp_str (jr_mp_t *self, jr_bytes_t *value);
bool jr_mp_bytes (jr_mp_t *self, jr_bytes_t *value);
//  Skip one whole value (any type, nesting up to JR_MP_MAX_DEPTH); its raw
//  bytes go to span if not NULL.
bool jr_mp_skip (jr_mp_t *self, jr_bytes_t *span);
//  The next byte's msgpack family without consuming it.
typedef enum {
    JR_MP_NIL,
    JR_MP_BOOL,
    JR_MP_INT,
    JR_MP_FLOAT,
    JR_MP_STR,
    JR_MP_BIN,
    JR_MP_ARRAY,
    JR_MP_MAP,
    JR_MP_EXT,
    JR_MP_END,
    JR_MP_BAD
} jr_mp_kind_t;
jr_mp_kind_t jr_mp_peek (const jr_mp_t *self);
//  Reads a float or double as double.
bool jr_mp_float (jr_mp_t *self, double *value);
#endif
