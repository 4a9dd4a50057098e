/* quant.c — ternary weight and int8 activation quantizers (bf/quant.h). */
#include "bf/quant.h"
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

void bf_quant_fake(const bf_qspec *q, const float *w, size_t rows, size_t cols, float *w_eff)
{
    size_t ns = bf_qspec_nscales(q, rows);
    size_t n = rows * cols;
    int8_t *codes = bf_xmalloc(n ? n : 1);
    float *scale = bf_xmalloc(ns * sizeof *scale);
    bf_quant_weights(q, w, rows, cols, codes, scale);
    for (size_t r = 0; r < rows; r++) {
        float s = scale[ns == 1 ? 0 : r];
        for (size_t c = 0; c < cols; c++) w_eff[r * cols + c] = s * (float)codes[r * cols + c];
    }
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

/* One row: q[c] = clamp(round(x[c]·s), -128, 127); returns s, sets *sum = Σ q. */
static inline float quant_row_i8(const float *a, size_t cols, int8_t *o, int32_t *sum)
{
    float mx = 0;
    for (size_t c = 0; c < cols; c++) {
        float v = fabsf(a[c]);
        mx = v > mx ? v : mx;
    }
    float s = 127.0f / (mx > 1e-5f ? mx : 1e-5f);
    int32_t total = 0;
    for (size_t c = 0; c < cols; c++) {
        int32_t v = round_away(a[c] * s);
        v = v > 127 ? 127 : v < -128 ? -128 : v;
        o[c] = (int8_t)v;
        total += v;
    }
    *sum = total;
    return s;
}

void bf_quant_rows_i8(const float *x, size_t N, size_t cols, size_t kpad, int8_t *q, float *inv_s, int32_t *qsum)
{
    for (size_t n = 0; n < N; n++) {
        int8_t *o = q + n * kpad;
        float s = quant_row_i8(x + n * cols, cols, o, &qsum[n]);
        memset(o + cols, 0, kpad - cols);
        inv_s[n] = 1.0f / s;
    }
}

void bf_quant_acts(const float *x, size_t n, size_t d, float *xq)
{
    int8_t *q = bf_xmalloc(d ? d : 1);
    for (size_t r = 0; r < n; r++) {
        int32_t sum;
        float s = quant_row_i8(x + r * d, d, q, &sum), *o = xq + r * d;
        /* divided by s, not multiplied by 1/s: the rounding the model's
         * numbers were measured with */
        for (size_t c = 0; c < d; c++) o[c] = (float)q[c] / s;
    }
    free(q);
}
