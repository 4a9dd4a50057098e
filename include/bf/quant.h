/* bf/quant.h — the quantizers' numerics, one of each (part: quant).
 *
 * absmean (BitNet b1.58):  γ = max(mean|W|, 1e-5)  (per tensor, or per row)
 *                          code = clamp(roundf(W/γ), -1, 1),  scale = γ
 * threshold (the seed's):  per row, α = mean|W_row|; code = sign(w) where
 *                          |w| > τ·α, else 0; scale = mean |w| over the row's
 *                          non-zero codes (the least-squares scale), 0 if none
 * activations (int8):      per row, s = 127 / max(max|x|, 1e-5),
 *                          q = clamp(roundf(x·s), -128, 127), x_q = q / s
 *
 * The int8 activation quantizer exists once: bf_quant_rows_i8 gives the
 * integer kernels their q, and bf_quant_acts gives the float forward the same
 * q divided back by s, so both paths see the same activations. */
#ifndef BF_QUANT_H
#define BF_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "bf/qspec.h"

/* codes[rows·cols] in {-1,0,1}, scale[bf_qspec_nscales]. */
void bf_quant_weights(const bf_qspec *q, const float *w, size_t rows, size_t cols, int8_t *codes, float *scale);
/* w_eff = scale·codes, the weight a straight-through forward sees:
 * bf_quant_scaled from given codes and scales, bf_quant_fake from w. */
void bf_quant_scaled(const bf_qspec *q, const int8_t *codes, const float *scale, size_t rows, size_t cols, float *w_eff);
void bf_quant_fake(const bf_qspec *q, const float *w, size_t rows, size_t cols, float *w_eff);

/* A pre-image of codes and scales under the rule: w such that
 * bf_quant_weights(q, w) gives the same codes, and the same scales to the
 * rounding of a mean.  absmean: w = γ·code/f in each scale group, f the
 * group's fraction of non-zero codes (so that mean|w| = γ and every non-zero
 * w/γ is at least 1); threshold: w = scale·code (its own pre-image while
 * τ·f < 1, as it is for every matrix the rule made).  Training a ternary
 * matrix that came without its latent starts from this, so that its first
 * re-quantization gives the matrix it came with (absmean would shrink
 * scale·code's scale to f·γ). */
void bf_quant_preimage(const bf_qspec *q, const int8_t *codes, const float *scale, size_t rows, size_t cols, float *w);

/* x [N, cols] → q [N, kpad] int8 (zero padded to kpad ≥ cols), inv_s[n] = 1/s,
 * qsum[n] = Σ q (the integer kernels' inputs); and, when xq is not NULL,
 * xq [N, cols] = q/s as bf_quant_acts makes it, from the same pass. */
void bf_quant_rows_i8(const float *x, size_t N, size_t cols, size_t kpad, int8_t *q, float *inv_s, int32_t *qsum,
                      float *xq);
/* x_q = q/s for n rows of width d (in place allowed): the same activations in float. */
void bf_quant_acts(const float *x, size_t n, size_t d, float *xq);

#endif
