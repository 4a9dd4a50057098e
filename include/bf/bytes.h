/* bf/bytes.h — little-endian fields in byte buffers (part: support), as
 * the archive's codecs, GGUF and safetensors lay them out whatever the
 * machine's own byte order. */
#ifndef BF_BYTES_H
#define BF_BYTES_H

#include <stdint.h>

static inline void bf_put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void bf_put_le32(uint8_t *p, uint32_t v) { for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> 8 * k); }
static inline void bf_put_le64(uint8_t *p, uint64_t v) { for (int k = 0; k < 8; k++) p[k] = (uint8_t)(v >> 8 * k); }
static inline uint16_t bf_get_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t bf_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t bf_get_le64(const uint8_t *p) { return (uint64_t)bf_get_le32(p + 4) << 32 | bf_get_le32(p); }

#endif
