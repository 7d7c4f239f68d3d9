/*  sha256.h - SHA-256 (FIPS 180-4), streaming and one-shot, no dependencies  */
#ifndef JR_WORKER_SHA256_H
#define JR_WORKER_SHA256_H
#include <stddef.h>
#include <stdint.h>

#define JR_SHA256_SIZE 32  //  digest bytes
#define JR_SHA256_HEX  65  //  hex digest with its NUL

//  Streaming state; lives on the caller's stack, no allocation.
typedef struct {
    uint32_t h[8];      //  chaining value
    uint64_t bytes;     //  message length so far
    uint8_t block[64];  //  partial block
    size_t used;        //  bytes in block
} jr_sha256_t;

void jr_sha256_init (jr_sha256_t *self);
void jr_sha256_update (jr_sha256_t *self, const void *data, size_t size);
//  Finish and write the digest; the state must be re-initialised to reuse.
void jr_sha256_final (jr_sha256_t *self, uint8_t digest[JR_SHA256_SIZE]);
//  One-shot digest of a buffer.
void jr_sha256 (const void *data, size_t size, uint8_t digest[JR_SHA256_SIZE]);
//  Lower-case hex of a digest, NUL-terminated.
void jr_sha256_hex (const uint8_t digest[JR_SHA256_SIZE], char hex[JR_SHA256_HEX]);
#endif
