/* ops.h — the model's operations as plain forward/backward functions over
 * contiguous float buffers (private to lib/model).
 *
 * Shapes: N = B·T rows (token positions), D = d_model, F = d_ff, H heads of
 * hd = D/H, V = vocab, M = targeted positions.  Weights are [out, in] and a
 * linear layer is y = x·Wᵀ.  Loops that are ours run on the library's thread
 * pool with a static split, so a thread count always gives the same bytes. */
#ifndef BF_MODEL_OPS_H
#define BF_MODEL_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "bf/config.h"

/* out[N,R] = in[N,K] · W[R,K]ᵀ (+ out when accumulate) */
void bf_op_matmul(float *out, const float *in, const float *W, size_t N, size_t K, size_t R, int accumulate);
/* dW[R,K] += dout[N,R]ᵀ · in[N,K] (dW may be NULL: no weight gradient);
 * din[N,K] (+)= dout · W (din may be NULL) */
void bf_op_matmul_bwd(float *din, int din_accumulate, float *dW, const float *dout, const float *in, const float *W,
                      size_t N, size_t K, size_t R);

/* RMSNorm y = x·w/sqrt(mean(x²)+ε); LayerNorm (layer) y = (x-μ)·w/sqrt(σ²+ε) + b;
 * x, y [N,D]; mean, rstd [N] kept for the backward (mean: LayerNorm only) */
void bf_op_norm(float *y, const float *x, const float *w, const float *b, float *mean, float *rstd, size_t N, size_t D,
                int layer);
/* dx += ∂/∂x; dw += Σ dy·x̂; db += Σ dy (db may be NULL) */
void bf_op_norm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, const float *mean,
                    const float *rstd, size_t N, size_t D, int layer);

/* RoPE, rotate-half, in place on q or k [N,D]; cos/sin [ctx, hd/2] */
void bf_op_rope(float *x, const float *cos, const float *sin, size_t N, size_t T, size_t D, size_t hd, size_t pos0,
                int inverse);

typedef struct {
    const float *q, *k, *v;   /* [N,D] (k, v: the cache when cached) */
    float *att, *out;         /* att [B,H,T,T] softmax probabilities, out [N,D] */
    float *dq, *dk, *dv;      /* backward: [N,D], written */
    const float *dout;
    size_t B, T, D, H, hd;
    float *task_max;          /* [B·H] largest scaled logit, or NULL */
    /* keys and values: row (b, s) at k/v + (b·kT + s)·D; query t of a row is
     * at position pos0 + t and sees keys 0 … pos0 + t.  Without a cache kT = T
     * and pos0 = 0; with one, k and
     * v are the cache (kT = ctx) and att is NULL (no backward follows). */
    size_t kT, pos0;
    int full;                 /* no mask: every query sees every key of its row (no cache) */
} bf_op_attn;

/* softmax(q·kᵀ/√hd)·v per (row, head), causal or (full) unmasked */
void bf_op_attention(bf_op_attn *j);
/* dP = dout·vᵀ; dv = Pᵀ·dout; dS = P⊙(dP − rowsum(P⊙dP)); dq = dS·k/√hd; dk = dSᵀ·q/√hd */
void bf_op_attention_bwd(bf_op_attn *j);

/* The MLP's activation on n elements: a = silu(u)·g (swiglu), relu(u)²·g
 * (relu2), or u·Φ(u) (gelu, which writes Φ(u) into g for the backward). */
void bf_op_act(const float *u, float *g, float *a, size_t n, bf_act_kind act);
void bf_op_act_bwd(const float *u, const float *g, const float *da, float *du, float *dg, size_t n, bf_act_kind act);

/* dst[0 … n) = src (src NULL: zeros), over the pool: the residual's copies
 * and the backward's zeroed sums, [N, D] each, where one thread had made
 * them while the others waited. */
void bf_op_copy(float *dst, const float *src, size_t n);

/* Logits → log-probabilities in place, M rows of V; loss[r] = −logp at the
 * row's target y[tidx[r]]. */
void bf_op_logsoftmax(float *logp, const int32_t *y, const int32_t *tidx, size_t M, size_t V, double *loss);
/* d(mean cross-entropy)/d(logits) of those rows, the mean over count:
 * dlogits[M,V] = (exp(logp) − onehot(y[tidx[r]]))/count */
void bf_op_xent_grad(float *dlogits, const float *logp, const int32_t *y, const int32_t *tidx, size_t M, size_t V,
                     float count);

#endif
