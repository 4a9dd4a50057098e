/* compress_internal.h — what the files of the archive code share
 * (lib/methods/compress*.c; bf/compress.h is the public side). */
#ifndef BF_COMPRESS_INTERNAL_H
#define BF_COMPRESS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bf/json.h"
#include "bf/val.h"

/* The manifest is JSON: bf/json.h (bf_buf, bf_json_write, bf_json_parse). */

/* Little-endian fields. */
static inline void bf_cz_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline uint16_t bf_cz_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline void bf_cz_put_u32(uint8_t *p, uint32_t v) { for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> 8 * k); }
static inline uint32_t bf_cz_get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

#endif
