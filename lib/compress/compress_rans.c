/* compress_rans.c — the "entropy" method: a static order-0 rANS coder over
 * ternary codes (bf/compress.h, bf-compress(1)).
 *
 * Member layout (little-endian):
 *   u16 f[3]      frequencies of -1, 0, +1, summing to M = 2^15; a code
 *                 that occurs gets at least 1
 *   u32 x         the coder's final state, where decoding starts
 *   bytes         renormalization bytes, in the order the decoder reads them
 * The state x lives in [L, 2^31) with L = 2^23; decoding a code is
 *   slot = x mod M, s = the code whose [cum_s, cum_s + f_s) holds slot,
 *   x = f_s·(x div M) + slot − cum_s, then bytes shift in while x < L.
 * The encoder runs backwards from x = L, so a whole member decodes back to
 * exactly x = L with every byte used: both are checked, which catches
 * nearly any corruption besides the bounds checks on every read. */
#include "bf/compress.h"
#include "bf/error.h"
#include "bf/bytes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define M (1u << BF_RANS_PROB_BITS)
#define RANS_L (1u << 23)
#define HEADER 10

size_t bf_rans_bound(uint64_t n)
{
    /* at most two bytes a code: x_max ≥ (L / M) · 2^8 = 2^16 */
    return HEADER + (size_t)(2 * n);
}

double bf_code_entropy(const uint64_t counts[3])
{
    double n = (double)counts[0] + (double)counts[1] + (double)counts[2], h = 0;
    if (n <= 0) return 0;
    for (int k = 0; k < 3; k++)
        if (counts[k]) {
            double p = (double)counts[k] / n;
            h -= p * log2(p);
        }
    return h;
}

/* counts → frequencies summing to M, each occurring code at least 1 */
static void quantize_freqs(const uint64_t c[3], uint32_t f[3])
{
    uint64_t n = c[0] + c[1] + c[2];
    if (!n) { f[0] = 0; f[1] = M; f[2] = 0; return; }
    int64_t sum = 0;
    int big = 0;
    for (int k = 0; k < 3; k++) {
        f[k] = 0;
        if (c[k]) {
            /* c·M/n rounded; c ≤ n < 2^48 keeps c·M in 64 bits */
            uint64_t q = n < ((uint64_t)1 << 48) ? (c[k] * M + n / 2) / n : (uint64_t)((double)c[k] / (double)n * M + 0.5);
            f[k] = q ? (uint32_t)q : 1;
        }
        sum += f[k];
        if (f[k] > f[big]) big = k;
    }
    f[big] = (uint32_t)((int64_t)f[big] + ((int64_t)M - sum));
}

size_t bf_rans_encode(const int8_t *codes, uint64_t n, uint8_t *out)
{
    uint64_t c[3] = {0, 0, 0};
    for (uint64_t i = 0; i < n; i++) c[codes[i] + 1]++;
    uint32_t f[3], cum[3];
    quantize_freqs(c, f);
    cum[0] = 0;
    cum[1] = f[0];
    cum[2] = f[0] + f[1];
    size_t cap = bf_rans_bound(n);
    uint8_t *end = out + cap, *ptr = end;
    uint32_t x = RANS_L;
    for (uint64_t i = n; i-- > 0;) {
        int s = codes[i] + 1;
        uint32_t fs = f[s], xmax = ((RANS_L >> BF_RANS_PROB_BITS) << 8) * fs;
        while (x >= xmax) {
            *--ptr = (uint8_t)x;
            x >>= 8;
        }
        x = ((x / fs) << BF_RANS_PROB_BITS) + (x % fs) + cum[s];
    }
    size_t body = (size_t)(end - ptr);
    memmove(out + HEADER, ptr, body);
    for (int k = 0; k < 3; k++) bf_put_le16(out + 2 * k, (uint16_t)f[k]);
    bf_put_le32(out + 6, x);
    return HEADER + body;
}

int bf_rans_decode(const uint8_t *in, size_t len, int8_t *codes, uint64_t n)
{
    if (len < HEADER) return bf_err("entropy member of %zu bytes, shorter than its %d-byte header", len, HEADER);
    uint32_t f[3], cum[3], sum = 0;
    for (int k = 0; k < 3; k++) {
        f[k] = bf_get_le16(in + 2 * k);
        sum += f[k];
    }
    if (sum != M) return bf_err("entropy member: frequencies sum to %u, not %u", sum, M);
    cum[0] = 0;
    cum[1] = f[0];
    cum[2] = f[0] + f[1];
    uint32_t x = bf_get_le32(in + 6);
    if (x < RANS_L || x >= (1u << 31)) return bf_err("entropy member: bad initial state");
    size_t pos = HEADER;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t slot = x & (M - 1);
        int s = slot < cum[1] ? 0 : slot < cum[2] ? 1 : 2;
        codes[i] = (int8_t)(s - 1);
        x = f[s] * (x >> BF_RANS_PROB_BITS) + slot - cum[s];
        while (x < RANS_L) {
            if (pos >= len) return bf_err("entropy member: truncated (%zu bytes for %llu codes)", len, (unsigned long long)n);
            x = x << 8 | in[pos++];
        }
    }
    if (x != RANS_L || pos != len) return bf_err("entropy member: corrupt (the coder does not end where it began)");
    return 0;
}
