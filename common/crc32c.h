/*  crc32c.h - CRC-32C (Castagnoli), to detect torn or corrupt records on disk  */
#ifndef JR_CRC32C_H
#define JR_CRC32C_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t jr_crc32c (uint32_t crc, const void *data, size_t size);
#endif
