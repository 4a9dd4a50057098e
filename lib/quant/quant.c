/* quant.c — ternary weight and int8 activation quantizers (bf/quant.h). */
#include "bf/quant.h"
#include "bf/thread.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


void bf_quant_weights(const bf_qspec *q, const float *w, size_t rows, size_t cols, int8_t *codes, float *scale)
{
    if (q->method == BF_Q_THRESHOLD) {
        for (size_t r = 0; r < rows; r++) {
            const float *x = w + r * cols;
            double sum = 0;
            for (size_t c = 0; c < cols; c++) sum += fabsf(x[c]);
            float alpha = cols ? (float)(sum / (double)cols) : 0.0f, cut = q->tau * alpha;
            double kept = 0;
            size_t nk = 0;
            for (size_t c = 0; c < cols; c++) {
                float a = fabsf(x[c]);
                int8_t code = a > cut ? (x[c] > 0 ? 1 : -1) : 0;
                codes[r * cols + c] = code;
                if (code) { kept += a; nk++; }
            }
            scale[r] = nk ? (float)(kept / (double)nk) : 0.0f;
        }
        return;
    }
    /* absmean: mean|W| over the tensor or each row, summed in double */
    size_t groups = q->per_row ? rows : 1, per = q->per_row ? cols : rows * cols;
    for (size_t g = 0; g < groups; g++) {
        const float *x = w + g * per;
        double sum = 0;
        for (size_t k = 0; k < per; k++) sum += fabsf(x[k]);
        float gamma = per ? (float)(sum / (double)per) : 0.0f;
        if (gamma < 1e-5f) gamma = 1e-5f;
        /* clamp(round(t), -1, 1) with roundf's halves away from zero, as
         * two compares: no library call, and the loop vectorizes (a call
         * to roundf a weight was 2.4% of a ternary lm256 step,
         * bench/train-profile) */
        for (size_t k = 0; k < per; k++) {
            float t = x[k] / gamma;
            codes[g * per + k] = (int8_t)((t >= 0.5f) - (t <= -0.5f));
        }
        scale[g] = gamma;
    }
}

void bf_quant_scaled(const bf_qspec *q, const int8_t *codes, const float *scale, size_t rows, size_t cols, float *w_eff)
{
    size_t ns = bf_qspec_nscales(q, rows);
    for (size_t r = 0; r < rows; r++) {
        float s = scale[ns == 1 ? 0 : r];
        for (size_t c = 0; c < cols; c++) w_eff[r * cols + c] = s * (float)codes[r * cols + c];
    }
}

void bf_quant_fake(const bf_qspec *q, const float *w, size_t rows, size_t cols, float *w_eff)
{
    size_t ns = bf_qspec_nscales(q, rows);
    size_t n = rows * cols;
    int8_t *codes = bf_xmalloc(n ? n : 1);
    float *scale = bf_xmalloc(ns * sizeof *scale);
    bf_quant_weights(q, w, rows, cols, codes, scale);
    bf_quant_scaled(q, codes, scale, rows, cols, w_eff);
    free(codes);
    free(scale);
}

void bf_quant_preimage(const bf_qspec *q, const int8_t *codes, const float *scale, size_t rows, size_t cols, float *w)
{
    size_t ns = bf_qspec_nscales(q, rows), per = ns == 1 ? rows * cols : cols;
    for (size_t g = 0; g < ns; g++) {
        const int8_t *c = codes + g * per;
        float v = scale[g];
        if (q->method != BF_Q_THRESHOLD) {
            size_t nz = 0;
            for (size_t k = 0; k < per; k++) nz += c[k] != 0;
            if (nz) v = (float)((double)scale[g] * (double)per / (double)nz);
        }
        for (size_t k = 0; k < per; k++) w[g * per + k] = v * (float)c[k];
    }
}

/* roundf (half away from zero) for |x| < 2^22, without a library call:
 * adding the float just below 0.5 carries exactly when x's fraction is at
 * least one half, and the conversion truncates toward zero. */
static inline int32_t round_away(float x) { return (int32_t)(x + copysignf(0.49999997f, x)); }

#ifdef __x86_64__
#include <immintrin.h>

static int have_avx2 = -1;   /* set by the first bf_quant_rows_i8 or bf_quant_acts */

/* The codes of a row's first cols − cols mod 32 values, 32 at a time, with
 * the scalar loop's operations: round_away(x·s) (the truncating conversion
 * gives INT_MIN for NaN, as the scalar one does on x86), clamped in int32,
 * packed to bytes.  Adds the codes to *total; returns how many it made. */
__attribute__((target("avx2"))) static size_t codes_avx2(const float *a, size_t cols, float s, int8_t *o, int32_t *total)
{
    const __m256 vs = _mm256_set1_ps(s), half = _mm256_set1_ps(0.49999997f), sign = _mm256_set1_ps(-0.0f);
    const __m256i lo = _mm256_set1_epi32(-128), hi = _mm256_set1_epi32(127), order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i sum = _mm256_setzero_si256();
    size_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        __m256i v[4];
        for (int k = 0; k < 4; k++) {
            __m256 x = _mm256_mul_ps(_mm256_loadu_ps(a + c + 8 * k), vs);
            x = _mm256_add_ps(x, _mm256_or_ps(_mm256_and_ps(x, sign), half));   /* x + copysign(0.49999997, x) */
            v[k] = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvttps_epi32(x), lo), hi);
            sum = _mm256_add_epi32(sum, v[k]);
        }
        /* packs work within 128-bit halves: the dword order afterwards is
         * 0 4 1 5 2 6 3 7 (groups of four bytes), put back by one permute */
        __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        _mm256_storeu_si256((__m256i *)(o + c), _mm256_permutevar8x32_epi32(b, order));
    }
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    *total += _mm_cvtsi128_si32(t);
    return c;
}
#endif

/* One row: q[c] = clamp(round(x[c]·s), -128, 127); returns s, sets *sum = Σ q.
 * The largest |x| in eight lanes (a max is exact in any order), so that the
 * loop vectorizes. */
static inline __attribute__((always_inline)) float quant_row_i8(const float *a, size_t cols, int8_t *o, int32_t *sum)
{
    float m[8] = {0};
    size_t c = 0;
    for (; c + 8 <= cols; c += 8)
        for (int k = 0; k < 8; k++) {
            float v = fabsf(a[c + k]);
            m[k] = v > m[k] ? v : m[k];
        }
    for (; c < cols; c++) {
        float v = fabsf(a[c]);
        m[0] = v > m[0] ? v : m[0];
    }
    float mx = 0;
    for (int k = 0; k < 8; k++) mx = m[k] > mx ? m[k] : mx;
    float s = 127.0f / (mx > 1e-5f ? mx : 1e-5f);
    int32_t total = 0;
    c = 0;
#ifdef __x86_64__
    if (have_avx2) c = codes_avx2(a, cols, s, o, &total);
#endif
    for (; c < cols; c++) {
        int32_t v = round_away(a[c] * s);
        v = v > 127 ? 127 : v < -128 ? -128 : v;
        o[c] = (int8_t)v;
        total += v;
    }
    *sum = total;
    return s;
}

#ifdef __x86_64__
#define QUANT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define QUANT_CLONES
#endif

/* A row's codes back in float, x_q = q/s: divided by s, not multiplied by
 * 1/s, the rounding the model's numbers were measured with.  Eight at a
 * time, with q and o apart (an int8_t may alias anything), so that the
 * compiler makes vectors of it; a division is exactly rounded either way.
 * One at a time, the divisions had taken 4.5 % of a ternary grok training
 * step (perf). */
static inline __attribute__((always_inline)) void float_row(const int8_t *restrict q, size_t d, float s, float *restrict o)
{
    size_t c = 0;
    for (; c + 8 <= d; c += 8)
        for (int k = 0; k < 8; k++) o[c + k] = (float)q[c + k] / s;
    for (; c < d; c++) o[c] = (float)q[c] / s;
}

typedef struct {
    const float *x;
    size_t cols, kpad;
    int8_t *q;             /* bf_quant_rows_i8: the rows, kpad apart */
    float *inv_s, *xq;     /* xq: the float rows (bf_quant_acts; bf_quant_rows_i8's when asked) */
    int32_t *qsum;
} rows_job;

/* Rows are independent: split over the pool, each gets the same bits. */
QUANT_CLONES static void rows_i8(void *ctx, size_t r0, size_t r1, int th)
{
    const rows_job *j = ctx;
    for (size_t n = r0; n < r1; n++) {
        int8_t *o = j->q + n * j->kpad;
        float s = quant_row_i8(j->x + n * j->cols, j->cols, o, &j->qsum[n]);
        memset(o + j->cols, 0, j->kpad - j->cols);
        j->inv_s[n] = 1.0f / s;
        if (j->xq) float_row(o, j->cols, s, j->xq + n * j->cols);
    }
}

QUANT_CLONES static void rows_acts(void *ctx, size_t r0, size_t r1, int th)
{
    const rows_job *j = ctx;
    size_t d = j->cols;
    int8_t *q = bf_xmalloc(d ? d : 1);
    for (size_t r = r0; r < r1; r++) {
        int32_t sum;
        float s = quant_row_i8(j->x + r * d, d, q, &sum);
        float_row(q, d, s, j->xq + r * d);
    }
    free(q);
}

static void find_avx2(void)
{
#ifdef __x86_64__
    if (have_avx2 < 0) have_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
}

void bf_quant_rows_i8(const float *x, size_t N, size_t cols, size_t kpad, int8_t *q, float *inv_s, int32_t *qsum,
                      float *xq)
{
    find_avx2();
    rows_job j = {x, cols, kpad, q, inv_s, xq, qsum};
    bf_parallel(N, bf_parallel_grain(cols), rows_i8, &j);
}

void bf_quant_acts(const float *x, size_t n, size_t d, float *xq)
{
    find_avx2();
    rows_job j = {x, d, 0, NULL, NULL, xq, NULL};
    bf_parallel(n, bf_parallel_grain(d), rows_acts, &j);
}
