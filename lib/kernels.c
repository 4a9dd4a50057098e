/* kernels.c — ternary × int8 products, the scalar reference (bf/kernels.h). */
#include "bf/kernels.h"
#include "bf/ternary.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int bf_tmat_from_codes(bf_tmat *m, const int8_t *codes, size_t rows, size_t cols, const float *scale, int per_row)
{
    memset(m, 0, sizeof *m);
    m->rows = rows;
    m->cols = cols;
    m->scale = scale;
    m->per_row = per_row;
    m->codes = bf_aligned_alloc((rows * cols) > 0 ? rows * cols : 1);
    if (!m->codes) return -1;
    memcpy(m->codes, codes, rows * cols);
    return 0;
}

int bf_tmat_init(bf_tmat *m, bf_dtype pack, const uint8_t *packed, size_t rows, size_t cols, const float *scale, int per_row)
{
    memset(m, 0, sizeof *m);
    m->rows = rows;
    m->cols = cols;
    m->pack = pack;
    m->scale = scale;
    m->per_row = per_row;
    m->codes = bf_aligned_alloc((rows * cols) > 0 ? rows * cols : 1);
    if (!m->codes) return -1;
    size_t rb = bf_ternary_row_bytes(pack, cols);
    for (size_t r = 0; r < rows; r++) bf_ternary_unpack_row(pack, packed + r * rb, cols, m->codes + r * cols);
    return 0;
}

void bf_tmat_free(bf_tmat *m)
{
    bf_aligned_free(m->codes);
    memset(m, 0, sizeof *m);
}

void bf_quant_rows_i8(const float *x, size_t N, size_t cols, int8_t *q, float *inv_s)
{
    for (size_t n = 0; n < N; n++) {
        const float *a = x + n * cols;
        float mx = 0;
        for (size_t c = 0; c < cols; c++) mx = fmaxf(mx, fabsf(a[c]));
        float s = 127.0f / fmaxf(mx, 1e-5f);
        for (size_t c = 0; c < cols; c++) {
            float v = roundf(a[c] * s);
            q[n * cols + c] = (int8_t)(v > 127.0f ? 127.0f : v < -128.0f ? -128.0f : v);
        }
        inv_s[n] = 1.0f / s;
    }
}

void bf_tmat_dot_i32(const bf_tmat *m, const int8_t *q, size_t N, int32_t *acc)
{
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < m->rows; o++) {
            const int8_t *w = m->codes + o * m->cols, *x = q + n * m->cols;
            int32_t s = 0;
            for (size_t i = 0; i < m->cols; i++) s += (int32_t)x[i] * (int32_t)w[i];
            acc[n * m->rows + o] = s;
        }
}

void bf_tmat_gemm(const bf_tmat *m, const int8_t *q, const float *inv_s, size_t N, float *y, int accumulate)
{
    int32_t *acc = bf_xmalloc(N * m->rows * sizeof *acc + 1);
    bf_tmat_dot_i32(m, q, N, acc);
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < m->rows; o++) {
            /* (scale · acc) / s: the same grouping as the float forward's
             * (q/s)·(scale·code) up to rounding */
            float v = m->scale[m->per_row ? o : 0] * (float)acc[n * m->rows + o] * inv_s[n];
            y[n * m->rows + o] = accumulate ? y[n * m->rows + o] + v : v;
        }
    free(acc);
}
