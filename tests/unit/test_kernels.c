/* test_kernels — every kernel level against a plain int64 reference, on
 * random and adversarial inputs, for both block layouts.  Each level the CPU
 * has is forced in turn (bf_kernel_level_set, as BF_KERNEL does). */
#include "tap.h"
#include "kernel_cases.h"

#include "bf/kernels.h"
#include "bf/quant.h"
#include "bf/ternary.h"
#include "bf/rng.h"
#include "bf/thread.h"

#include <stdlib.h>
#include <string.h>

/* the reference: Σ q·w in int64 over unpacked codes */
static void ref_dot(const int8_t *w, const int8_t *q, size_t N, size_t rows, size_t cols, size_t qstride, int64_t *out)
{
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < rows; o++) {
            int64_t s = 0;
            for (size_t i = 0; i < cols; i++) s += (int64_t)q[n * qstride + i] * w[o * cols + i];
            out[n * rows + o] = s;
        }
}

typedef enum { RANDOM, ALL_PLUS_MIN_ACT, ALL_MINUS_MIN_ACT, ALL_PLUS_MAX_ACT, SPARSE, EVERY_BYTE } pattern;

static int check(bf_dtype pack, size_t rows, size_t cols, size_t N, pattern pat, uint64_t seed, const char *what)
{
    bf_rng r;
    bf_rng_seed(&r, seed);
    int8_t *w = malloc(rows * cols + 1);
    for (size_t k = 0; k < rows * cols; k++) {
        switch (pat) {
        case ALL_PLUS_MIN_ACT: case ALL_PLUS_MAX_ACT: w[k] = 1; break;
        case ALL_MINUS_MIN_ACT: w[k] = -1; break;
        case SPARSE: w[k] = bf_rng_below(&r, 10) == 0 ? (int8_t)(bf_rng_below(&r, 2) ? 1 : -1) : 0; break;
        case EVERY_BYTE: w[k] = every_byte_weight(pack == BF_TQ1, (unsigned)(k / cols), k % cols); break;
        default: w[k] = (int8_t)((int)bf_rng_below(&r, 3) - 1);
        }
    }
    bf_tmat m;
    bf_tmat_from_codes(&m, pack, w, rows, cols, NULL, 0);
    int8_t *q = calloc(N * m.kpad + 64, 1);
    int32_t *qsum = calloc(N, sizeof *qsum);
    for (size_t n = 0; n < N; n++) {
        for (size_t i = 0; i < cols; i++) {
            int8_t v = pat == ALL_PLUS_MIN_ACT || pat == ALL_MINUS_MIN_ACT ? -128 : pat == ALL_PLUS_MAX_ACT ? 127
                                                                             : (int8_t)((int)bf_rng_below(&r, 256) - 128);
            q[n * m.kpad + i] = v;
            qsum[n] += v;
        }
    }
    int64_t *want = malloc(N * rows * sizeof *want);
    int32_t *got = malloc(N * rows * sizeof *got);
    ref_dot(w, q, N, rows, cols, m.kpad, want);
    int bad = 0;
    for (int lv = 0; lv < BF_KERNEL_NLEVELS; lv++) {
        if (!bf_kernel_level_supported((bf_kernel_level)lv)) continue;
        bf_kernel_level_set((bf_kernel_level)lv);
        memset(got, 0x5a, N * rows * sizeof *got);   /* no level passes on what the one before it wrote */
        bf_tmat_dot_i32(&m, q, qsum, N, got);
        size_t wrong = 0;
        for (size_t k = 0; k < N * rows; k++) wrong += got[k] != want[k];
        if (!ok(wrong == 0, "%s %s %zux%zu N=%zu (%s): all %zu sums exact", bf_kernel_level_name((bf_kernel_level)lv),
                pack == BF_TQ2 ? "TQ2" : "TQ1", rows, cols, N, what, N * rows))
            bad++, diag("%zu wrong; first: got %d want %lld", wrong, got[0], (long long)want[0]);
    }
    free(w); free(q); free(qsum); free(want); free(got);
    bf_tmat_free(&m);
    return bad;
}

int main(void)
{
    bf_threads_set(2);
    bf_dtype packs[2] = {BF_TQ2, BF_TQ1};
    for (int p = 0; p < 2; p++) {
        bf_dtype pk = packs[p];
        /* the overflow cases: every product at its extreme, over long rows */
        check(pk, 3, 4096, 2, ALL_PLUS_MIN_ACT, 1, "all +1 x -128, K 4096");
        check(pk, 3, 11008, 2, ALL_PLUS_MIN_ACT, 2, "all +1 x -128, K 11008");
        check(pk, 3, 11008, 1, ALL_MINUS_MIN_ACT, 3, "all -1 x -128, K 11008");
        check(pk, 3, 4096, 1, ALL_PLUS_MAX_ACT, 4, "all +1 x 127, K 4096");
        /* rows of many of the VNNI TQ1 kernel's chunks (512 blocks, 81,920
         * weights): at the extremes, 256 times a lane's sum over a row of
         * 600,000 leaves the int32 range, which that kernel's sums would
         * without their chunks; and at random, with an odd block last */
        check(pk, 2, 600000, 1, ALL_PLUS_MAX_ACT, 13, "all +1 x 127, K 600000");
        check(pk, 2, 600000, 1, ALL_MINUS_MIN_ACT, 14, "all -1 x -128, K 600000");
        check(pk, 3, 164000, 2, RANDOM, 15, "random, K 164000");
        /* the batched path: whole tiles of rows, activation rows in pairs and one left over */
        check(pk, 16, 11008, 5, ALL_PLUS_MIN_ACT, 5, "batch, all +1 x -128, K 11008");
        check(pk, 16, 11008, 5, ALL_PLUS_MAX_ACT, 6, "batch, all +1 x 127, K 11008");
        /* longer batches at the extremes: three panels (an odd one paired with itself), N % 4 left over */
        check(pk, 17, 11008, 17, ALL_PLUS_MAX_ACT, 11, "batch of 17, all +1 x 127, K 11008");
        check(pk, 17, 4096, 16, ALL_PLUS_MIN_ACT, 12, "batch of 16, all +1 x -128, K 4096");
        /* shapes: tails, one row, one column, blocks exactly, batches */
        size_t shapes[][3] = {{1, 1, 1}, {1, 7, 1}, {5, 1, 3}, {1, 129, 2}, {17, 161, 5}, {33, 300, 17},
                              {64, 128, 1}, {64, 160, 1}, {40, 1000, 20}, {1, 4097, 3},
                              /* rows the batch kernels take in chunks of K, odd rows, N % 4 left over */
                              {9, 13001, 6}, {9, 13001, 17},
                              /* batches long enough to be split by activation rows, N % 4 left over */
                              {40, 300, 263}, {157, 200, 515}};
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            check(pk, shapes[s][0], shapes[s][1], shapes[s][2], RANDOM, 10 + s, "random");
        check(pk, 50, 777, 4, SPARSE, 99, "sparse");
        /* matrix-vector products over 3 and 5 threads: each share's rows
         * taken from both ends, shares that end mid-group, empty ones */
        for (int th = 3; th <= 5; th += 2) {
            const char *what = th == 3 ? "gemv, 3 threads" : "gemv, 5 threads";
            bf_threads_set(th);
            check(pk, 1001, 200, 1, RANDOM, 40 + th, what);
            check(pk, 203, 129, 3, RANDOM, 50 + th, what);
            check(pk, 64, 64, 1, RANDOM, 60 + th, what);
        }
        bf_threads_set(2);
        check(pk, pk == BF_TQ1 ? 243 : 256, 320, 1, EVERY_BYTE, 7, "every byte value");
        check(pk, pk == BF_TQ1 ? 243 : 256, 320, 5, EVERY_BYTE, 7, "every byte value");
    }
    /* repacking from a canonical payload equals repacking from codes: a
     * row shorter than a block, and rows of whole blocks and a tail */
    for (size_t c = 0; c < 2; c++) {
        size_t rows = 9, cols = c ? 700 : 37;
        int8_t *w = malloc(rows * cols);
        bf_rng r;
        bf_rng_seed(&r, 5 + c);
        for (size_t k = 0; k < rows * cols; k++) w[k] = (int8_t)((int)bf_rng_below(&r, 3) - 1);
        for (int p = 0; p < 2; p++) {
            size_t per = packs[p] == BF_TQ2 ? 4 : 5, rb = (cols + per - 1) / per;
            uint8_t *packed = calloc(rows * rb, 1);
            for (size_t o = 0; o < rows; o++)
                for (size_t k = 0; k < cols; k++) {
                    unsigned code = (unsigned)(w[o * cols + k] + 1);
                    if (packs[p] == BF_TQ2) packed[o * rb + k / 4] |= (uint8_t)(code << (2 * (k % 4)));
                    else {
                        unsigned mul = 1;
                        for (size_t i = 0; i < k % 5; i++) mul *= 3;
                        packed[o * rb + k / 5] += (uint8_t)(code * mul);
                    }
                }
            bf_tmat a, b;
            bf_tmat_from_codes(&a, packs[p], w, rows, cols, NULL, 0);
            /* the stream's unpacking, row by row into the kernels' layout: the model's load */
            int8_t *row = malloc(cols);
            bf_tmat_alloc(&b, packs[p], rows, cols, NULL, 0);
            for (size_t o = 0; o < rows; o++) {
                bf_ternary_unpack_row(packs[p], packed + o * rb, cols, row);
                bf_tmat_set_row(&b, o, row);
            }
            free(row);
            ok(a.row_bytes == b.row_bytes && memcmp(a.blocks, b.blocks, rows * a.row_bytes) == 0 &&
                   memcmp(a.code_sum, b.code_sum, rows * sizeof *a.code_sum) == 0,
               "%s, %zu columns: repacked from the stream layout = repacked from codes", packs[p] == BF_TQ2 ? "TQ2" : "TQ1",
               cols);
            /* the batch kernels' panels hold each code where bf/kernels.h
             * says, the padding (past cols, and the last panel's rows past
             * rows) as zero weights */
            size_t pbytes = a.kpad / 16 * 32, wrong = 0;
            for (size_t o = 0; o < (rows + 7) / 8 * 8; o++)
                for (size_t k = 0; k < a.kpad; k++) {
                    unsigned want = o < rows && k < cols ? (unsigned)(w[o * cols + k] + 1) : 1u;
                    unsigned got = b.panels[o / 8 * pbytes + 32 * (k / 16) + 4 * (o % 8) + k % 4] >> (2 * (k % 16 / 4)) & 3u;
                    wrong += got != want;
                }
            ok(wrong == 0 && memcmp(a.panels, b.panels, (rows + 7) / 8 * pbytes) == 0,
               "%s, %zu columns: every code in its place in the panels", packs[p] == BF_TQ2 ? "TQ2" : "TQ1", cols);
            bf_tmat_free(&a);
            bf_tmat_free(&b);
            free(packed);
        }
        free(w);
    }
    /* the float path: y = scale·acc/s matches the fake-quantized float product */
    {
        size_t rows = 20, cols = 300, N = 7;
        int8_t *w = malloc(rows * cols);
        float *x = malloc(N * cols * sizeof *x), scale[20], *y = malloc(N * rows * sizeof *y);
        bf_rng r;
        bf_rng_seed(&r, 8);
        for (size_t k = 0; k < rows * cols; k++) w[k] = (int8_t)((int)bf_rng_below(&r, 3) - 1);
        for (size_t k = 0; k < N * cols; k++) x[k] = (float)bf_rng_normal(&r);
        for (size_t o = 0; o < rows; o++) scale[o] = 0.01f * (float)(o + 1);
        bf_tmat m;
        bf_tmat_from_codes(&m, BF_TQ2, w, rows, cols, scale, 1);
        int8_t *q = malloc(N * m.kpad);
        float inv_s[7];
        int32_t qsum[7];
        bf_quant_rows_i8(x, N, cols, m.kpad, q, inv_s, qsum, NULL);
        bf_tmat_forward(&m, q, inv_s, qsum, N, y, 0);
        free(q);
        double worst = 0;
        for (size_t n = 0; n < N; n++) {
            float mx = 0;
            for (size_t i = 0; i < cols; i++) mx = fmaxf(mx, fabsf(x[n * cols + i]));
            float s = 127.0f / fmaxf(mx, 1e-5f);
            for (size_t o = 0; o < rows; o++) {
                double acc = 0;
                for (size_t i = 0; i < cols; i++) {
                    float v = roundf(x[n * cols + i] * s);
                    v = v > 127 ? 127 : v < -128 ? -128 : v;
                    acc += (double)(v / s) * (scale[o] * w[o * cols + i]);
                }
                worst = fmax(worst, fabs(acc - y[n * rows + o]) / (fabs(acc) + 1e-3));
            }
        }
        ok(worst < 1e-5, "integer forward = fake-quantized float product (worst relative %.2g)", worst);
        bf_tmat_free(&m);
        free(w); free(x); free(y);
    }
    /* the float outputs are the same bits at every level: each level forms
     * (scale·acc)·(1/s) as the scalar one does, whether it writes an output
     * alone or eight in a vector (emit_tile_avx2); with a scale per row and
     * one per tensor, writing and accumulating */
    /* matrix-vector; a batch split by rows: 2 groups of 4 and 3 rows past
     * them; one split by activation rows (parts of 64), 3 rows past them */
    static const size_t Ns[] = {1, 3, 11, 259};
    for (int ni = 0; ni < 4; ni++)
    for (int per_row = 0; per_row < 2; per_row++)
        for (int accumulate = 0; accumulate < 2; accumulate++) {
            size_t rows = 157, cols = 300, N = Ns[ni];   /* 2 tiles and 29 rows: vectors of eight and 5 rows past them */
            int8_t *w = malloc(rows * cols);
            float *x = malloc(N * cols * sizeof *x), *scale = malloc(rows * sizeof *scale);
            float *y0 = malloc(N * rows * sizeof *y0), *y = malloc(N * rows * sizeof *y);
            bf_rng r;
            bf_rng_seed(&r, 9 + (uint64_t)(2 * per_row + accumulate));
            for (size_t k = 0; k < rows * cols; k++) w[k] = (int8_t)((int)bf_rng_below(&r, 3) - 1);
            for (size_t k = 0; k < N * cols; k++) x[k] = (float)bf_rng_normal(&r);
            for (size_t o = 0; o < rows; o++) scale[o] = (float)(0.5 + bf_rng_uniform(&r));
            for (int pk = 0; pk < 2; pk++) {
                bf_tmat m;
                bf_tmat_from_codes(&m, packs[pk], w, rows, cols, scale, per_row);
                int8_t *q = malloc(N * m.kpad);
                float inv_s[259];
                int32_t qsum[259];
                bf_quant_rows_i8(x, N, cols, m.kpad, q, inv_s, qsum, NULL);
                for (int lv = 0; lv < BF_KERNEL_NLEVELS; lv++) {
                    if (!bf_kernel_level_supported((bf_kernel_level)lv)) continue;
                    bf_kernel_level_set((bf_kernel_level)lv);
                    float *out = lv == 0 ? y0 : y;
                    for (size_t k = 0; k < N * rows; k++) out[k] = (float)k * 0.25f;
                    bf_tmat_forward(&m, q, inv_s, qsum, N, out, accumulate);
                    if (lv)
                        ok(memcmp(y0, y, N * rows * sizeof *y) == 0, "%s %s N=%zu float outputs = scalar's, bit for bit (%s scale, %s)",
                           bf_kernel_level_name((bf_kernel_level)lv), packs[pk] == BF_TQ2 ? "TQ2" : "TQ1", N,
                           per_row ? "row" : "tensor", accumulate ? "accumulating" : "writing");
                }
                free(q);
                bf_tmat_free(&m);
            }
            free(w); free(x); free(scale); free(y0); free(y);
        }
    return tap_done();
}
