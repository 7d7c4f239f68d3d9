/*  sha256.c - SHA-256 written out from FIPS 180-4, so the worker needs no OpenSSL  */
#include "worker/sha256.h"
#include <string.h>

static const uint32_t s_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

static inline uint32_t
s_rotr (uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static void
s_compress (uint32_t h[8], const uint8_t block[64])
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)block[i * 4] << 24 | (uint32_t)block[i * 4 + 1] << 16
               | (uint32_t)block[i * 4 + 2] << 8 | (uint32_t)block[i * 4 + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = s_rotr (w[i - 15], 7) ^ s_rotr (w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = s_rotr (w[i - 2], 17) ^ s_rotr (w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (s_rotr (e, 6) ^ s_rotr (e, 11) ^ s_rotr (e, 25)) + ((e & f) ^ (~e & g))
                      + s_k[i] + w[i];
        uint32_t t2 =
            (s_rotr (a, 2) ^ s_rotr (a, 13) ^ s_rotr (a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1;
        d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d;
    h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

void
jr_sha256_init (jr_sha256_t *self)
{
    static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy (self->h, iv, sizeof iv);
    self->bytes = 0;
    self->used = 0;
}

void
jr_sha256_update (jr_sha256_t *self, const void *data, size_t size)
{
    const uint8_t *p = data;
    self->bytes += size;
    if (self->used) {
        size_t take = 64 - self->used < size ? 64 - self->used : size;
        memcpy (self->block + self->used, p, take);
        self->used += take, p += take, size -= take;
        if (self->used < 64)
            return;
        s_compress (self->h, self->block);
        self->used = 0;
    }
    //  Whole blocks straight from the input, sparing a copy.
    for (; size >= 64; p += 64, size -= 64)
        s_compress (self->h, p);
    if (size)
        memcpy (self->block, p, size);
    self->used = size;
}

void
jr_sha256_final (jr_sha256_t *self, uint8_t digest[JR_SHA256_SIZE])
{
    uint64_t bits = self->bytes * 8;
    self->block[self->used++] = 0x80;
    if (self->used > 56) {
        memset (self->block + self->used, 0, 64 - self->used);
        s_compress (self->h, self->block);
        self->used = 0;
    }
    memset (self->block + self->used, 0, 56 - self->used);
    for (int i = 0; i < 8; i++)
        self->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    s_compress (self->h, self->block);
    for (int i = 0; i < 8; i++) {
        digest[i * 4] = (uint8_t)(self->h[i] >> 24);
        digest[i * 4 + 1] = (uint8_t)(self->h[i] >> 16);
        digest[i * 4 + 2] = (uint8_t)(self->h[i] >> 8);
        digest[i * 4 + 3] = (uint8_t)self->h[i];
    }
}

void
jr_sha256 (const void *data, size_t size, uint8_t digest[JR_SHA256_SIZE])
{
    jr_sha256_t state;
    jr_sha256_init (&state);
    jr_sha256_update (&state, data, size);
    jr_sha256_final (&state, digest);
}

void
jr_sha256_hex (const uint8_t digest[JR_SHA256_SIZE], char hex[JR_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < JR_SHA256_SIZE; i++) {
        hex[i * 2] = digits[digest[i] >> 4];
        hex[i * 2 + 1] = digits[digest[i] & 15];
    }
    hex[64] = 0;
}
