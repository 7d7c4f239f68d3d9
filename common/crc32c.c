/*  crc32c.c - CRC-32C: the SSE 4.2 instruction where the CPU has it, else a table  */
#include "common/crc32c.h"
#include <pthread.h>
#include <string.h>

static uint32_t s_table[256];
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static bool s_hardware;

static void
s_build (void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        s_table[i] = c;
    }
#if defined(__x86_64__)
    s_hardware = __builtin_cpu_supports ("sse4.2");
#endif
}

#if defined(__x86_64__)
//  Eight bytes per instruction: journal replay checks every record's CRC,
//  so this is most of what replay costs besides building the jobs.
__attribute__ ((target ("sse4.2"))) static uint32_t
s_crc_sse42 (uint32_t crc, const uint8_t *p, size_t size)
{
    uint64_t c = crc;
    while (size >= 8) {
        uint64_t word;
        memcpy (&word, p, 8);
        c = __builtin_ia32_crc32di (c, word);
        p += 8;
        size -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (size--)
        c32 = __builtin_ia32_crc32qi (c32, *p++);
    return c32;
}
#endif

uint32_t
jr_crc32c (uint32_t crc, const void *data, size_t size)
{
    pthread_once (&s_once, s_build);
    const uint8_t *p = data;
    crc = ~crc;
#if defined(__x86_64__)
    if (s_hardware)
        return ~s_crc_sse42 (crc, p, size);
#endif
    while (size--)
        crc = s_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}
