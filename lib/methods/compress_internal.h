/* compress_internal.h — what the files of the archive code share
 * (lib/methods/compress*.c; bf/compress.h is the public side). */
#ifndef BF_COMPRESS_INTERNAL_H
#define BF_COMPRESS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bf/val.h"

/* A growing byte buffer. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} bf_cz_buf;

void bf_cz_buf_put(bf_cz_buf *b, const void *p, size_t n);
void bf_cz_buf_str(bf_cz_buf *b, const char *s);

/* v as JSON text: integers as integers, floats always with a '.' or an
 * exponent (so that they read back as floats), strings escaped.  -1
 * (bf_err) for a non-finite float or binary data, which JSON cannot carry. */
int bf_cz_json_write(bf_cz_buf *b, const bf_val *v);
/* Parses exactly one JSON value from s[0..len) (nesting at most 32 deep);
 * NULL and bf_err, with the byte offset, on anything else. */
bf_val *bf_cz_json_parse(const char *s, size_t len);

/* Little-endian fields. */
static inline void bf_cz_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline uint16_t bf_cz_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline void bf_cz_put_u32(uint8_t *p, uint32_t v) { for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> 8 * k); }
static inline uint32_t bf_cz_get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

#endif
