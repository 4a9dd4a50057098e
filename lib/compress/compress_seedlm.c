/* compress_seedlm.c — the "seedlm4" and "seedlm3" methods: blocks of
 * weights as a pseudo-random basis from a 16-bit LFSR seed times a few
 * 4-bit coefficients (bf/compress.h, bf-compress(1)).
 *
 * Member layout: u8 C, u8 P, i8 base, u8 0, then per block, bit-packed
 * least significant bit first and the last byte padded with zeros:
 *   16 bits seed (1..65535), 4 bits exponent e, P × 4-bit mantissa m
 *   (two's complement, −8..7); the block is U(seed)·(m · 2^(e + base)).
 *
 * Encoding is exhaustive: for every block and every seed, the least-squares
 * coefficients t* = (UᵀU)⁻¹Uᵀw (in double; UᵀU and its inverse come from a
 * table built once a call, they do not depend on w), then t* quantized with
 * the smallest exponent that holds it and with the one below (clipping), the
 * error of each from ‖w‖² − 2·tᵀUᵀw + tᵀUᵀUt; the least error wins, the
 * lowest seed on a tie.  A seed whose unquantized error is already no better
 * than the block's best is skipped: quantizing only adds error.  Blocks go
 * in tiles over the thread pool; a tile walks the seeds once, outer, so a
 * seed's table entry is read once for all the tile's blocks. */
#include "bf/compress.h"
#include "bf/error.h"
#include "bf/thread.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NSEEDS 65535
#define MAXC 16
#define MAXP 4
#define TILE 64
#define HEADER 4

void bf_seedlm_basis(bf_seedlm_shape sh, uint16_t seed, double *u)
{
    uint16_t x = seed;
    for (int k = 0; k < sh.c * sh.p; k++) {
        x = bf_lfsr16_step(x);
        u[k] = ((double)x - 32768.0) / 32768.0;
    }
}

static int block_bits(bf_seedlm_shape sh) { return 20 + 4 * sh.p; }

uint64_t bf_seedlm_bytes(bf_seedlm_shape sh, uint64_t n)
{
    uint64_t blocks = (n + (uint64_t)sh.c - 1) / (uint64_t)sh.c;
    return HEADER + (blocks * (uint64_t)block_bits(sh) + 7) / 8;
}

/* bit-packed fields, least significant bit first */
static void put_bits(uint8_t *p, uint64_t at, uint32_t v, int n)
{
    for (int k = 0; k < n; k++, at++)
        if (v >> k & 1) p[at >> 3] |= (uint8_t)(1u << (at & 7));
}
static uint32_t get_bits(const uint8_t *p, uint64_t at, int n)
{
    uint32_t v = 0;
    for (int k = 0; k < n; k++, at++) v |= (uint32_t)(p[at >> 3] >> (at & 7) & 1) << k;
    return v;
}

/* the inverse of the P×P matrix a (row-major) into inv; -1 if singular */
static int invert(const double *a, int p, double *inv)
{
    double m[MAXP][2 * MAXP];
    for (int i = 0; i < p; i++)
        for (int j = 0; j < 2 * p; j++) m[i][j] = j < p ? a[i * p + j] : (j - p == i);
    for (int c = 0; c < p; c++) {
        int piv = c;
        for (int r = c + 1; r < p; r++)
            if (fabs(m[r][c]) > fabs(m[piv][c])) piv = r;
        if (fabs(m[piv][c]) < 1e-9) return -1;
        if (piv != c)
            for (int j = 0; j < 2 * p; j++) { double t = m[c][j]; m[c][j] = m[piv][j]; m[piv][j] = t; }
        double d = m[c][c];
        for (int j = 0; j < 2 * p; j++) m[c][j] /= d;
        for (int r = 0; r < p; r++)
            if (r != c && m[r][c] != 0) {
                double f = m[r][c];
                for (int j = 0; j < 2 * p; j++) m[r][j] -= f * m[c][j];
            }
    }
    for (int i = 0; i < p; i++)
        for (int j = 0; j < p; j++) inv[i * p + j] = m[i][p + j];
    return 0;
}

/* Per seed (index s − 1): U (C·P), G = UᵀU (P·P), G⁻¹ (P·P), and a flag. */
typedef struct {
    bf_seedlm_shape sh;
    size_t stride;        /* doubles a seed */
    double *tab;
    uint8_t *ok;          /* 0: U is (nearly) rank-deficient; never chosen */
} table;

static void table_fill(void *ctx, size_t begin, size_t end, int thread)
{
    table *tb = ctx;
    int c = tb->sh.c, p = tb->sh.p;
    for (size_t s = begin; s < end; s++) {
        double *u = tb->tab + s * tb->stride, *g = u + c * p, *gi = g + p * p;
        bf_seedlm_basis(tb->sh, (uint16_t)(s + 1), u);
        for (int i = 0; i < p; i++)
            for (int j = 0; j < p; j++) {
                double acc = 0;
                for (int r = 0; r < c; r++) acc += u[r * p + i] * u[r * p + j];
                g[i * p + j] = acc;
            }
        tb->ok[s] = invert(g, p, gi) == 0;
    }
}

typedef struct {
    table *tb;
    const float *w;
    uint64_t n, nblocks;
    int base;
    uint8_t *out;
} enc_job;

/* quantizes t with exponent e (0..15): mantissas into m; returns the error
 * ‖w‖² − 2·tqᵀb + tqᵀ·G·tq */
static double quant_err(int p, const double *t, int e, int base, double ww, const double *b, const double *g, int *m)
{
    double step = ldexp(1.0, e + base), tq[MAXP];
    for (int i = 0; i < p; i++) {
        double r = nearbyint(t[i] / step);
        if (r < -8) r = -8;
        if (r > 7) r = 7;
        m[i] = (int)r;
        tq[i] = r * step;
    }
    double err = ww;
    for (int i = 0; i < p; i++) {
        double gt = 0;
        for (int j = 0; j < p; j++) gt += g[i * p + j] * tq[j];
        err += tq[i] * (gt - 2 * b[i]);
    }
    return err;
}

/* One tile of TILE blocks (zero blocks past the end), for every seed.  The
 * blocks sit component-major so that the least-squares step runs over the
 * tile's blocks in vector lanes; c and p are constants where it is inlined. */
static inline __attribute__((always_inline)) void encode_tile(enc_job *J, size_t tile, const int c, const int p)
{
    table *tb = J->tb;
    const int bits = block_bits(tb->sh);
    double wt[MAXC][TILE], ww[TILE], best[TILE], bj[MAXP][TILE], tj[MAXP][TILE], els[TILE];
    int bseed[TILE], be[TILE], bm[TILE][MAXP];
    uint64_t b0 = (uint64_t)tile * TILE, nb = J->nblocks - b0 < TILE ? J->nblocks - b0 : TILE;
    for (int k = 0; k < TILE; k++) {
        ww[k] = 0;
        for (int i = 0; i < c; i++) {
            uint64_t at = (b0 + (uint64_t)k) * (uint64_t)c + (uint64_t)i;
            wt[i][k] = (uint64_t)k < nb && at < J->n ? (double)J->w[at] : 0.0;
            ww[k] += wt[i][k] * wt[i][k];
        }
        /* the all-zero coefficients: error ‖w‖², seed 1 */
        best[k] = ww[k];
        bseed[k] = 1;
        be[k] = 0;
        for (int i = 0; i < p; i++) bm[k][i] = 0;
    }
    for (size_t s = 0; s < NSEEDS; s++) {
        if (!tb->ok[s]) continue;
        const double *u = tb->tab + s * tb->stride, *g = u + c * p, *gi = g + p * p;
        for (int j = 0; j < p; j++) {
            for (int k = 0; k < TILE; k++) bj[j][k] = 0;
            for (int i = 0; i < c; i++) {
                double uij = u[i * p + j];
                for (int k = 0; k < TILE; k++) bj[j][k] += uij * wt[i][k];
            }
        }
        for (int k = 0; k < TILE; k++) els[k] = ww[k];
        for (int i = 0; i < p; i++) {
            for (int k = 0; k < TILE; k++) tj[i][k] = 0;
            for (int j = 0; j < p; j++) {
                double gij = gi[i * p + j];
                for (int k = 0; k < TILE; k++) tj[i][k] += gij * bj[j][k];
            }
            for (int k = 0; k < TILE; k++) els[k] -= tj[i][k] * bj[i][k];
        }
        for (int k = 0; k < TILE; k++) {
            /* the least-squares error bounds the quantized one */
            if (!(els[k] < best[k])) continue;
            double b[MAXP], t[MAXP], amax = 0;
            for (int i = 0; i < p; i++) {
                b[i] = bj[i][k];
                t[i] = tj[i][k];
                if (fabs(t[i]) > amax) amax = fabs(t[i]);
            }
            /* the smallest exponent whose mantissas hold t: |t|/step ≤ 7.5 */
            int e = 0;
            if (amax > 0) {
                e = (int)ceil(log2(amax / 7.0)) - J->base;
                if (e < 0) e = 0;
                while (e > 0 && amax <= 7.0 * ldexp(1.0, e - 1 + J->base)) e--;
                while (e < 15 && amax > 7.5 * ldexp(1.0, e + J->base)) e++;
            }
            int m[MAXP];
            for (int cand = e; cand >= e - 1 && cand >= 0; cand--) {
                double err = quant_err(p, t, cand, J->base, ww[k], b, g, m);
                if (err < best[k]) {
                    best[k] = err;
                    bseed[k] = (int)s + 1;
                    be[k] = cand;
                    memcpy(bm[k], m, sizeof m);
                }
            }
        }
    }
    for (uint64_t k = 0; k < nb; k++) {
        uint64_t at = (uint64_t)HEADER * 8 + (b0 + k) * (uint64_t)bits;
        put_bits(J->out, at, (uint32_t)bseed[k], 16);
        put_bits(J->out, at + 16, (uint32_t)be[k], 4);
        for (int i = 0; i < p; i++) put_bits(J->out, at + 20 + 4 * (uint64_t)i, (uint32_t)bm[k][i] & 15u, 4);
    }
}

static void encode_tiles(void *ctx, size_t begin, size_t end, int thread)
{
    enc_job *J = ctx;
    for (size_t tile = begin; tile < end; tile++) {
        if (J->tb->sh.c == 8 && J->tb->sh.p == 3) encode_tile(J, tile, 8, 3);
        else if (J->tb->sh.c == 12 && J->tb->sh.p == 4) encode_tile(J, tile, 12, 4);
        else encode_tile(J, tile, J->tb->sh.c, J->tb->sh.p);
    }
}

int bf_seedlm_encode(bf_seedlm_shape sh, const float *w, uint64_t n, uint8_t *out)
{
    if (sh.c < 1 || sh.c > MAXC || sh.p < 1 || sh.p > MAXP) return bf_err("seedlm: unsupported block %dx%d", sh.c, sh.p);
    uint64_t bytes = bf_seedlm_bytes(sh, n);
    memset(out, 0, (size_t)bytes);
    float amax = 0;
    for (uint64_t i = 0; i < n; i++)
        if (fabsf(w[i]) > amax) amax = fabsf(w[i]);
    /* exponent 0 steps by 2^base ≈ amax/4096; exponent 15 holds 7·8·2^⌈log2 amax⌉ */
    int base = amax > 0 ? (int)ceil(log2((double)amax)) - 12 : 0;
    if (base < -128) base = -128;
    out[0] = (uint8_t)sh.c;
    out[1] = (uint8_t)sh.p;
    out[2] = (uint8_t)(int8_t)base;
    uint64_t nblocks = (n + (uint64_t)sh.c - 1) / (uint64_t)sh.c;
    if (!nblocks) return 0;
    table tb = {sh, (size_t)(sh.c * sh.p + 2 * sh.p * sh.p), NULL, NULL};
    tb.tab = bf_aligned_alloc(NSEEDS * tb.stride * sizeof(double));
    if (!tb.tab) return -1;
    tb.ok = bf_xmalloc(NSEEDS);
    bf_parallel(NSEEDS, 4096, table_fill, &tb);
    enc_job J = {&tb, w, n, nblocks, base, out};
    bf_parallel((size_t)((nblocks + TILE - 1) / TILE), 1, encode_tiles, &J);
    bf_aligned_free(tb.tab);
    free(tb.ok);
    return 0;
}

int bf_seedlm_decode(bf_seedlm_shape sh, const uint8_t *in, size_t len, float *w, uint64_t n)
{
    if (sh.c < 1 || sh.c > MAXC || sh.p < 1 || sh.p > MAXP) return bf_err("seedlm: unsupported block %dx%d", sh.c, sh.p);
    uint64_t want = bf_seedlm_bytes(sh, n);
    if (len != want) return bf_err("seedlm member of %zu bytes, not %llu", len, (unsigned long long)want);
    if (in[0] != sh.c || in[1] != sh.p || in[3] != 0) return bf_err("seedlm member: header says %ux%u, not %dx%d", in[0], in[1], sh.c, sh.p);
    int base = (int8_t)in[2];
    if (base > 100) return bf_err("seedlm member: base exponent %d out of range", base);
    const int c = sh.c, p = sh.p, bits = block_bits(sh);
    uint64_t nblocks = (n + (uint64_t)c - 1) / (uint64_t)c;
    /* the padding bits after the last block are zero */
    uint64_t used = nblocks * (uint64_t)bits;
    for (uint64_t b = used; b < (uint64_t)(len - HEADER) * 8; b++)
        if (get_bits(in + HEADER, b, 1)) return bf_err("seedlm member: nonzero padding");
    double u[MAXC * MAXP];
    for (uint64_t k = 0; k < nblocks; k++) {
        uint64_t at = (uint64_t)HEADER * 8 + k * (uint64_t)bits;
        uint32_t seed = get_bits(in, at, 16), e = get_bits(in, at + 16, 4);
        if (!seed) return bf_err("seedlm member: block %llu has seed 0", (unsigned long long)k);
        double t[MAXP], step = ldexp(1.0, (int)e + base);
        for (int i = 0; i < p; i++) {
            int m = (int)get_bits(in, at + 20 + 4 * (uint64_t)i, 4);
            t[i] = (m >= 8 ? m - 16 : m) * step;
        }
        bf_seedlm_basis(sh, (uint16_t)seed, u);
        for (int i = 0; i < c; i++) {
            uint64_t o = k * (uint64_t)c + (uint64_t)i;
            if (o >= n) break;
            double acc = 0;
            for (int j = 0; j < p; j++) acc += u[i * p + j] * t[j];
            w[o] = (float)acc;
            if (!isfinite(w[o])) return bf_err("seedlm member: block %llu decodes to a non-finite value", (unsigned long long)k);
        }
    }
    return 0;
}
