/*  refjob.h - the reference job of the benchmarks, byte for byte the same for jobrunner and beanstalkd  */
#ifndef JR_BENCH_REFJOB_H
#define JR_BENCH_REFJOB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

//  vars = {"n": <uint32>, "msg": <64 chars>} as msgpack, always 78 bytes; the
//  built-in echo task answers with msg, so the payload is 64 bytes.
#define BENCH_MSG_LEN  64
#define BENCH_VARS_LEN (1 + 2 + 5 + 4 + 2 + BENCH_MSG_LEN)

//  Encode the vars of job n into out (BENCH_VARS_LEN bytes).
static inline void
bench_vars (uint8_t out[BENCH_VARS_LEN], uint32_t n)
{
    uint8_t *p = out;
    *p++ = 0x82;              //  fixmap, 2 pairs
    *p++ = 0xa1, *p++ = 'n';  //  "n"
    *p++ = 0xce;              //  uint32, big-endian
    *p++ = (uint8_t)(n >> 24), *p++ = (uint8_t)(n >> 16);
    *p++ = (uint8_t)(n >> 8), *p++ = (uint8_t)n;
    *p++ = 0xa3, *p++ = 'm', *p++ = 's', *p++ = 'g';  //  "msg"
    *p++ = 0xd9, *p++ = BENCH_MSG_LEN;                //  str8
    //  A payload that differs per job, as real ones do.
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < BENCH_MSG_LEN; i++)
        p[i] = i < 8 ? (uint8_t)digits[(n >> (28 - 4 * i)) & 15] : (uint8_t)('a' + (i + n) % 26);
}

//  Where msg lies inside vars made by bench_vars (what a worker's echo
//  would find): NULL if the bytes are not such a map.
static inline const uint8_t *
bench_vars_msg (const uint8_t *vars, size_t len)
{
    static const uint8_t key[] = { 0xa3, 'm', 's', 'g', 0xd9, BENCH_MSG_LEN };
    if (len != BENCH_VARS_LEN || vars[0] != 0x82 || memcmp (vars + 8, key, sizeof key) != 0)
        return NULL;
    return vars + 8 + sizeof key;
}

#endif
