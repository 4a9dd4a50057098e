/* ternary.c — TQ2/TQ1 packing, unpacking and validation. */
#include "bf/ternary.h"
#include "bf/util.h"

#include <string.h>

uint64_t bf_ternary_row_bytes(bf_dtype dt, uint64_t cols)
{
    if (dt == BF_TQ2) return cols / 4 + (cols % 4 != 0);
    if (dt == BF_TQ1) return cols / 5 + (cols % 5 != 0);
    return 0;
}

void bf_ternary_pack_row(bf_dtype dt, const int8_t *w, uint64_t cols, uint8_t *out)
{
    uint64_t nb = bf_ternary_row_bytes(dt, cols);
    memset(out, 0, nb);
    if (dt == BF_TQ2) {
        for (uint64_t k = 0; k < cols; k++)
            out[k / 4] |= (uint8_t)((w[k] + 1) << (2 * (k % 4)));
    } else {
        for (uint64_t b = 0; b < nb; b++) {
            unsigned v = 0, mul = 1;
            for (uint64_t i = 0; i < 5 && 5 * b + i < cols; i++, mul *= 3)
                v += (unsigned)(w[5 * b + i] + 1) * mul;
            out[b] = (uint8_t)v;
        }
    }
}

void bf_ternary_unpack_row(bf_dtype dt, const uint8_t *in, uint64_t cols, int8_t *w)
{
    if (dt == BF_TQ2) {
        for (uint64_t k = 0; k < cols; k++)
            w[k] = (int8_t)(((in[k / 4] >> (2 * (k % 4))) & 3) - 1);
    } else {
        for (uint64_t k = 0; k < cols; k += 5) {
            unsigned v = in[k / 5];
            for (uint64_t i = 0; i < 5 && k + i < cols; i++, v /= 3)
                w[k + i] = (int8_t)(v % 3) - 1;
        }
    }
}

int bf_ternary_validate(bf_dtype dt, const uint8_t *p, uint64_t nbytes)
{
    for (uint64_t k = 0; k < nbytes; k++) {
        uint8_t b = p[k];
        if (dt == BF_TQ2) {
            /* a code of 3 has both bits of its pair set */
            if (b & (b >> 1) & 0x55)
                return bf_err("invalid TQ2 code 3 in payload byte %llu", (unsigned long long)k);
        } else if (b >= 243) {
            return bf_err("invalid TQ1 byte %u at payload byte %llu", b, (unsigned long long)k);
        }
    }
    return 0;
}

void bf_ternary_count(bf_dtype dt, const uint8_t *p, uint64_t rows, uint64_t cols, uint64_t counts[3])
{
    uint64_t rb = bf_ternary_row_bytes(dt, cols);
    int8_t buf[4096];
    counts[0] = counts[1] = counts[2] = 0;
    for (uint64_t r = 0; r < rows; r++) {
        /* unpack in slices that start on a byte boundary (multiples of 20 cols) */
        for (uint64_t c0 = 0; c0 < cols; c0 += 4000) {
            uint64_t n = cols - c0 < 4000 ? cols - c0 : 4000;
            uint64_t boff = dt == BF_TQ2 ? c0 / 4 : c0 / 5;
            bf_ternary_unpack_row(dt, p + r * rb + boff, n, buf);
            for (uint64_t c = 0; c < n; c++) counts[buf[c] + 1]++;
        }
    }
}
