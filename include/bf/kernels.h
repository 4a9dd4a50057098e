/* bf/kernels.h — ternary × int8 matrix products with int32 accumulation.
 *
 *   y[n, o] = scale[o] / s[n] · Σ_i q[n, i] · w[o, i]
 *
 * q: int8 activations (absmax per row: q = clamp(round(x·s), -128, 127));
 * w: ternary codes in {-1, 0, +1} from a TQ2 or TQ1 payload.  The sum is an
 * exact int32: |Σ| ≤ 128·K, far below 2^31 for any K a model can have; no
 * 16-bit partial sum is ever formed. */
#ifndef BF_KERNELS_H
#define BF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "bf/tensor.h"

typedef struct bf_tmat_s {
    size_t rows, cols;         /* [out, in] */
    bf_dtype pack;             /* the stream's packing: TQ2 or TQ1 */
    const float *scale;        /* [rows] or [1] */
    int per_row;
    int8_t *codes;             /* unpacked [rows, cols] codes in the kernel's layout */
} bf_tmat;

/* Builds the kernel's layout from a canonical packed payload. */
int bf_tmat_init(bf_tmat *m, bf_dtype pack, const uint8_t *packed, size_t rows, size_t cols, const float *scale, int per_row);
/* From codes already unpacked ([rows, cols] in {-1,0,1}). */
int bf_tmat_from_codes(bf_tmat *m, const int8_t *codes, size_t rows, size_t cols, const float *scale, int per_row);
void bf_tmat_free(bf_tmat *m);

/* x [N, cols] float → q int8 and inv_s[n] = 1/s (the absmax rule above). */
void bf_quant_rows_i8(const float *x, size_t N, size_t cols, int8_t *q, float *inv_s);
/* acc[N, rows] = q · wᵀ exactly (int32). */
void bf_tmat_dot_i32(const bf_tmat *m, const int8_t *q, size_t N, int32_t *acc);
/* y[N, rows] (+)= scale · acc · inv_s */
void bf_tmat_gemm(const bf_tmat *m, const int8_t *q, const float *inv_s, size_t N, float *y, int accumulate);

#endif
