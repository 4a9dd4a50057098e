/* test_quant — the ternary weight quantizers and the int8 activation
 * quantizer against a scalar reference written from bf-quantize(1) and
 * bf-ste-train(1), on random and adversarial matrices. */
#include "tap.h"

#include "bf/kernels.h"
#include "bf/quant.h"
#include "bf/rng.h"
#include "bf/thread.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* bf-quantize(1)'s rules, in double where the rule sums */
static void ref_absmean(const float *w, size_t rows, size_t cols, int per_row, int8_t *codes, float *scale)
{
    size_t groups = per_row ? rows : 1, per = per_row ? cols : rows * cols;
    for (size_t g = 0; g < groups; g++) {
        double s = 0;
        for (size_t k = 0; k < per; k++) s += fabs((double)w[g * per + k]);
        float gamma = (float)(s / (double)per);
        if (gamma < 1e-5f) gamma = 1e-5f;
        for (size_t k = 0; k < per; k++) {
            float r = roundf(w[g * per + k] / gamma);
            codes[g * per + k] = (int8_t)(r > 1 ? 1 : r < -1 ? -1 : r);
        }
        scale[g] = gamma;
    }
}

static void ref_threshold(const float *w, size_t rows, size_t cols, float tau, int8_t *codes, float *scale)
{
    for (size_t r = 0; r < rows; r++) {
        double s = 0, kept = 0;
        size_t nk = 0;
        for (size_t c = 0; c < cols; c++) s += fabs((double)w[r * cols + c]);
        float alpha = (float)(s / (double)cols);
        for (size_t c = 0; c < cols; c++) {
            float x = w[r * cols + c];
            int8_t code = fabsf(x) > tau * alpha ? (x > 0 ? 1 : -1) : 0;
            codes[r * cols + c] = code;
            if (code) { kept += fabsf(x); nk++; }
        }
        scale[r] = nk ? (float)(kept / (double)nk) : 0.0f;
    }
}

static int same(const int8_t *a, const int8_t *b, size_t n) { return memcmp(a, b, n) == 0; }

static void check_case(const char *what, const float *w, size_t rows, size_t cols)
{
    size_t n = rows * cols;
    int8_t *c1 = malloc(n + 1), *c2 = malloc(n + 1);
    float *s1 = malloc((rows + 1) * sizeof(float)), *s2 = malloc((rows + 1) * sizeof(float));
    for (int per_row = 0; per_row < 2; per_row++) {
        bf_qspec q = {BF_Q_ABSMEAN, 0, per_row, BF_TQ2};
        bf_quant_weights(&q, w, rows, cols, c1, s1);
        ref_absmean(w, rows, cols, per_row, c2, s2);
        size_t ns = per_row ? rows : 1;
        ok(same(c1, c2, n) && memcmp(s1, s2, ns * sizeof(float)) == 0, "absmean%s %s %zux%zu: codes and scales",
           per_row ? " per row" : "", what, rows, cols);
    }
    float taus[] = {0.05f, 0.1f, 0.7f};
    for (int t = 0; t < 3; t++) {
        bf_qspec q = {BF_Q_THRESHOLD, taus[t], 1, BF_TQ2};
        bf_quant_weights(&q, w, rows, cols, c1, s1);
        ref_threshold(w, rows, cols, taus[t], c2, s2);
        int sc = 1;
        for (size_t r = 0; r < rows; r++) sc &= fabsf(s1[r] - s2[r]) <= 1e-6f * fabsf(s2[r]);
        ok(same(c1, c2, n) && sc, "threshold %.2f %s %zux%zu: codes and scales", taus[t], what, rows, cols);
    }
    free(c1); free(c2); free(s1); free(s2);
}

int main(void)
{
    bf_rng r;
    bf_rng_seed(&r, 4);
    size_t shapes[][2] = {{1, 1}, {1, 7}, {3, 5}, {7, 13}, {16, 129}, {5, 161}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        size_t n = shapes[k][0] * shapes[k][1];
        float *w = malloc(n * sizeof *w);
        for (size_t j = 0; j < n; j++) w[j] = (float)(0.02 * bf_rng_normal(&r));
        check_case("random", w, shapes[k][0], shapes[k][1]);
        free(w);
    }
    /* all zeros: γ is clamped to 1e-5, every code 0 */
    {
        float w[24] = {0};
        check_case("all zeros", w, 4, 6);
        int8_t c[24];
        float s;
        bf_qspec q = {BF_Q_ABSMEAN, 0, 0, BF_TQ2};
        bf_quant_weights(&q, w, 4, 6, c, &s);
        int zero = 1;
        for (int j = 0; j < 24; j++) zero &= c[j] == 0;
        ok(zero && s == 1e-5f, "all zeros: codes 0, scale 1e-5");
    }
    /* one huge outlier: γ dominated by it, most codes 0, the outlier ±1 */
    {
        float w[40];
        for (int j = 0; j < 40; j++) w[j] = (float)(0.01 * bf_rng_normal(&r));
        w[17] = -1000.0f;
        check_case("one outlier", w, 5, 8);
    }
    /* ties at ±0.5γ: weights chosen so that w/γ is exactly ±0.5, ±1.5 (round half away) */
    {
        /* four weights: mean|w| = γ = 1 when |w| are 0.5, 0.5, 1.5, 1.5 */
        float w[8] = {0.5f, -0.5f, 1.5f, -1.5f, 0.5f, -0.5f, 1.5f, -1.5f};
        int8_t c[8];
        float s;
        bf_qspec q = {BF_Q_ABSMEAN, 0, 0, BF_TQ2};
        bf_quant_weights(&q, w, 2, 4, c, &s);
        int8_t want[8] = {1, -1, 1, -1, 1, -1, 1, -1};
        ok(s == 1.0f && same(c, want, 8), "ties at ±0.5γ round away from zero (scale %g)", s);
        check_case("ties", w, 2, 4);
    }
    /* threshold ties: |w| exactly τ·α is not kept (strict >) */
    {
        float w[4] = {1.0f, -1.0f, 2.0f, 0.0f};   /* α = 1; τ = 1: |w| > 1 keeps only the 2 */
        int8_t c[4];
        float s;
        bf_qspec q = {BF_Q_THRESHOLD, 1.0f, 1, BF_TQ2};
        bf_quant_weights(&q, w, 1, 4, c, &s);
        int8_t want[4] = {0, 0, 1, 0};
        ok(same(c, want, 4) && s == 2.0f, "threshold keeps |w| > tau·alpha only; scale is the kept mean");
    }
    /* activations: the int8 codes of the kernels' quantizer equal the float
     * quantizer's, for random rows and exact .5 ties */
    {
        size_t N = 6, K = 37;
        float *x = malloc(N * K * sizeof *x), *xq = malloc(N * K * sizeof *xq), *xq2 = malloc(N * K * sizeof *xq2), inv[6];
        int8_t *q = calloc(N * 64, 1);
        int32_t sum[6];
        for (size_t j = 0; j < N * K; j++) x[j] = (float)bf_rng_normal(&r);
        /* row 5: max 127, so s = 1 and values x.5 are exact ties */
        for (size_t j = 0; j < K; j++) x[5 * K + j] = (float)((int)j - 18) + 0.5f;
        x[5 * K] = 127.0f;
        bf_quant_acts(x, N, K, xq);
        bf_quant_rows_i8(x, N, K, 64, q, inv, sum, xq2);
        int agree = 1, tie = 1;
        for (size_t n = 0; n < N; n++)
            for (size_t j = 0; j < K; j++) {
                agree &= fabsf(xq[n * K + j] - (float)q[n * 64 + j] * inv[n]) <= 1e-6f * fabsf(xq[n * K + j]) + 1e-9f;
            }
        for (size_t j = 1; j < K; j++) tie &= q[5 * 64 + j] == (int8_t)roundf(x[5 * K + j]);
        ok(agree, "int8 activation codes agree with the float quantizer");
        ok(tie, "activation ties round half away from zero, like roundf");
        /* the float rows the kernels' pass makes beside the codes (a model
         * that trains on the kernels keeps them for its backward) */
        ok(memcmp(xq, xq2, N * K * sizeof *xq) == 0, "the int8 pass's float rows are bf_quant_acts', bit for bit");
        free(x); free(xq); free(xq2); free(q);
    }
    /* the kernels' activation rows against a plain reference (roundf of
     * x·s, clamped), at lengths around the 32-value vector loop and over
     * many rows (the rows are split over threads): codes, sums and 1/s
     * exactly, and the same bytes at 1 and 2 threads.  Rows: normal
     * values; a constant row (every code ±127); a row below the 1e-5 floor
     * of the largest value; ties at s = 1. */
    {
        static const size_t lens[] = {1, 7, 31, 32, 33, 63, 64, 65, 100, 4099};
        int all = 1, threads_agree = 1;
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            size_t K = lens[li], kpad = (K + 127) & ~(size_t)127, N = 300;
            float *x = malloc(N * K * sizeof *x), inv1[300], inv2[300];
            int8_t *q1 = malloc(N * kpad), *q2 = malloc(N * kpad);
            int32_t sum1[300], sum2[300];
            for (size_t j = 0; j < N * K; j++) x[j] = (float)(3 * bf_rng_normal(&r));
            for (size_t j = 0; j < K; j++) {
                x[1 * K + j] = j % 2 ? -2.5f : 2.5f;
                x[2 * K + j] = 1e-7f * (float)((int)j - 3);
                x[3 * K + j] = (float)((int)(j % 200) - 100) + 0.5f;
            }
            x[3 * K] = 127.0f;
            bf_threads_set(1);
            bf_quant_rows_i8(x, N, K, kpad, q1, inv1, sum1, NULL);
            bf_threads_set(2);
            bf_quant_rows_i8(x, N, K, kpad, q2, inv2, sum2, NULL);
            threads_agree &= memcmp(q1, q2, N * kpad) == 0 && memcmp(sum1, sum2, sizeof sum1) == 0 &&
                             memcmp(inv1, inv2, sizeof inv1) == 0;
            for (size_t n = 0; n < N; n++) {
                float mx = 0;
                for (size_t j = 0; j < K; j++) mx = fmaxf(mx, fabsf(x[n * K + j]));
                float sc = 127.0f / (mx > 1e-5f ? mx : 1e-5f);
                int32_t total = 0;
                for (size_t j = 0; j < kpad; j++) {
                    int32_t want = 0;
                    if (j < K) {
                        float v = roundf(x[n * K + j] * sc);
                        want = v > 127 ? 127 : v < -128 ? -128 : (int32_t)v;
                    }
                    all &= q1[n * kpad + j] == want;
                    total += want;
                }
                all &= sum1[n] == total && inv1[n] == 1.0f / sc;
            }
            free(x); free(q1); free(q2);
        }
        ok(all, "activation rows of 1 to 4099 values: codes, sums and 1/s as the plain reference's");
        ok(threads_agree, "activation rows: the same bytes at 1 and 2 threads");
    }
    /* a pre-image of codes and scales quantizes back to them: the codes
     * exactly, the scales to the rounding of a mean (relative 1e-6) */
    {
        bf_qspec rules[] = {{BF_Q_ABSMEAN, 0, 0, BF_TQ2}, {BF_Q_ABSMEAN, 0, 1, BF_TQ2}, {BF_Q_THRESHOLD, 0.7f, 1, BF_TQ2}};
        const char *names[] = {"absmean", "absmean per row", "threshold 0.7"};
        for (int k = 0; k < 3; k++) {
            size_t rows = 9, cols = 37, n = rows * cols, ns = bf_qspec_nscales(&rules[k], rows);
            float *w = malloc(n * sizeof *w), *pre = malloc(n * sizeof *pre), s1[9], s2[9];
            int8_t *c1 = malloc(n), *c2 = malloc(n);
            for (size_t j = 0; j < n; j++) w[j] = (float)(0.05 * bf_rng_normal(&r));
            bf_quant_weights(&rules[k], w, rows, cols, c1, s1);
            bf_quant_preimage(&rules[k], c1, s1, rows, cols, pre);
            bf_quant_weights(&rules[k], pre, rows, cols, c2, s2);
            int close = 1;
            for (size_t g = 0; g < ns; g++) close &= fabsf(s2[g] - s1[g]) <= 1e-6f * s1[g];
            ok(same(c1, c2, n) && close, "%s: the pre-image of codes and scales quantizes back to them", names[k]);
            /* scale·codes is no pre-image for absmean: its scale shrinks to the non-zero fraction */
            if (k == 0) {
                for (size_t j = 0; j < n; j++) pre[j] = s1[0] * (float)c1[j];
                bf_quant_weights(&rules[k], pre, rows, cols, c2, s2);
                ok(s2[0] < 0.9f * s1[0], "absmean of scale·codes shrinks the scale (%.5f -> %.5f): why the pre-image", s1[0], s2[0]);
            }
            free(w); free(pre); free(c1); free(c2);
        }
    }
    return tap_done();
}
