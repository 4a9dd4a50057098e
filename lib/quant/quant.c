/* quant.c — ternary weight and int8 activation quantizers (bf/quant.h). */
#include "bf/quant.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t bf_qspec_nscales(const bf_qspec *q, size_t rows)
{
    return (q->method == BF_Q_THRESHOLD || q->per_row) ? rows : 1;
}

static float clamp1(float v) { return v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v; }

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
        for (size_t k = 0; k < per; k++) codes[g * per + k] = (int8_t)clamp1(roundf(x[k] / gamma));
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

void bf_quant_acts(const float *x, size_t n, size_t d, float *xq)
{
    for (size_t r = 0; r < n; r++) {
        const float *a = x + r * d;
        float *o = xq + r * d, m = 0;
        for (size_t c = 0; c < d; c++) {
            float v = fabsf(a[c]);
            m = v > m ? v : m;
        }
        float s = 127.0f / (m > 1e-5f ? m : 1e-5f);
        for (size_t c = 0; c < d; c++) {
            /* roundf, half away from zero: see bf_quant_rows_i8 */
            int32_t v = (int32_t)(a[c] * s + copysignf(0.49999997f, a[c] * s));
            v = v > 127 ? 127 : v < -128 ? -128 : v;
            o[c] = (float)v / s;
        }
    }
}

bf_val *bf_qspec_meta(const bf_qspec *q)
{
    bf_val *m = bf_val_map();
    bf_val_set(m, "method", bf_val_str(q->method == BF_Q_THRESHOLD ? "threshold" : "absmean"));
    if (q->method == BF_Q_THRESHOLD) bf_val_set(m, "threshold", bf_val_float(q->tau));
    bf_val_set(m, "per_row", bf_val_bool(q->method == BF_Q_THRESHOLD || q->per_row));
    return m;
}

int bf_qspec_from_meta(const bf_val *meta, bf_dtype pack, size_t nscales, size_t rows, bf_qspec *q)
{
    memset(q, 0, sizeof *q);
    q->pack = pack;
    q->method = BF_Q_ABSMEAN;
    const char *method = meta ? bf_val_get_str(meta, "method") : NULL;
    if (method && strcmp(method, "threshold") == 0) {
        double tau;
        if (bf_val_get_num(meta, "threshold", 0, &tau) != 0 || !(tau >= 0) || tau > 1e6)
            return bf_err("threshold tensor without a valid 'threshold'");
        q->method = BF_Q_THRESHOLD;
        q->tau = (float)tau;
        q->per_row = 1;
    } else if (method && strcmp(method, "absmean") != 0) {
        return bf_err("unknown quantization method '%.32s'", method);
    }
    /* the scale tensor's length says whether the scale is per row */
    if (nscales != 1 && nscales != rows) return bf_err("scale has %zu entries, not 1 or %zu", nscales, rows);
    if (q->method == BF_Q_ABSMEAN) q->per_row = nscales != 1 || rows == 1 ? (nscales == rows && rows > 1) : 0;
    if (q->method == BF_Q_ABSMEAN && meta) {
        int pr;
        if (bf_val_get_bool(meta, "per_row", q->per_row, &pr) == 0 && rows > 1 && pr != (nscales == rows))
            return bf_err("meta per_row disagrees with the scale's length");
        if (rows == 1 && bf_val_get_bool(meta, "per_row", 0, &pr) == 0) q->per_row = pr;
    }
    return 0;
}
