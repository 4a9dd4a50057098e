/* ternary.c — TQ2/TQ1 packing, unpacking and validation: the one owner of
 * the stream's ternary byte layout (bf/ternary.h). */
#include "bf/ternary.h"
#include "bf/util.h"

#include <pthread.h>
#include <string.h>

/* the weights (w = code - 1) of every packed byte value: TQ2 holds four
 * 2-bit codes, low bits first; TQ1 five base-3 digits, lowest first */
static int8_t tq2_weights[256][4], tq1_weights[243][5];
static pthread_once_t weights_once = PTHREAD_ONCE_INIT;

static void weights_init(void)
{
    for (unsigned v = 0; v < 256; v++)
        for (unsigned s = 0; s < 4; s++) tq2_weights[v][s] = (int8_t)((int)((v >> (2 * s)) & 3u) - 1);
    for (unsigned v = 0; v < 243; v++)
        for (unsigned s = 0, x = v; s < 5; s++, x /= 3) tq1_weights[v][s] = (int8_t)((int)(x % 3) - 1);
}

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
    pthread_once(&weights_once, weights_init);
    /* whole bytes through the tables (a loaded model's rows go through here),
     * the last, partial byte slot by slot */
    if (dt == BF_TQ2) {
        uint64_t k = 0;
        for (; k + 4 <= cols; k += 4) memcpy(w + k, tq2_weights[in[k / 4]], 4);
        for (; k < cols; k++) w[k] = (int8_t)(((in[k / 4] >> (2 * (k % 4))) & 3) - 1);
    } else {
        uint64_t k = 0;
        /* a byte of 243 or more is invalid (bf_ternary_validate); never read past the table */
        for (; k + 5 <= cols; k += 5) memcpy(w + k, tq1_weights[in[k / 5] < 243 ? in[k / 5] : 0], 5);
        for (unsigned v = k < cols ? in[k / 5] : 0; k < cols; k++, v /= 3) w[k] = (int8_t)(v % 3) - 1;
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
