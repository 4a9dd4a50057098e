/* bf/quant.h — the quantizers of DESIGN §4: ternary weights and int8 activations.
 *
 * absmean (BitNet b1.58):  γ = max(mean|W|, 1e-5)  (per tensor, or per row)
 *                          code = clamp(roundf(W/γ), -1, 1),  scale = γ
 * threshold (the seed's):  per row, α = mean|W_row|; code = sign(w) where
 *                          |w| > τ·α, else 0; scale = mean |w| over the row's
 *                          non-zero codes (the least-squares scale), 0 if none
 * activations (int8):      per row, s = 127 / max(max|x|, 1e-5),
 *                          x_q = clamp(roundf(x·s), -128, 127) / s */
#ifndef BF_QUANT_H
#define BF_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "bf/tensor.h"
#include "bf/val.h"

typedef enum { BF_Q_NONE, BF_Q_ABSMEAN, BF_Q_THRESHOLD } bf_qmethod;

typedef struct {
    bf_qmethod method;
    float tau;        /* threshold */
    int per_row;      /* absmean: one scale per row; threshold: always per row */
    bf_dtype pack;    /* BF_TQ2 or BF_TQ1 */
} bf_qspec;

/* Scales the rule produces: 1, or rows. */
size_t bf_qspec_nscales(const bf_qspec *q, size_t rows);
/* codes[rows·cols] in {-1,0,1}, scale[nscales]. */
void bf_quant_weights(const bf_qspec *q, const float *w, size_t rows, size_t cols, int8_t *codes, float *scale);
/* w_eff = scale·codes, in place of the forward's view of the weight. */
void bf_quant_fake(const bf_qspec *q, const float *w, size_t rows, size_t cols, float *w_eff);
/* x_q for n rows of width d (in-place allowed). */
void bf_quant_acts(const float *x, size_t n, size_t d, float *xq);

/* The ternary tensor meta {"method", "threshold", "per_row"} and back. */
bf_val *bf_qspec_meta(const bf_qspec *q);
int bf_qspec_from_meta(const bf_val *meta, bf_dtype pack, size_t nscales, size_t rows, bf_qspec *q);

#endif
