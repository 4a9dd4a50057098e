/* bf/model.h — the DESIGN §4 transformer: parameters, forward, backward.
 *
 * llm.c's layout: every parameter lives in one contiguous block (`params`),
 * the gradients in a second block of the same layout (`grads`), and every
 * activation the backward needs in one block sized for (batch, ctx).
 *
 * The quantizer hook: each block matrix (blk.*.w{q,k,v,o,1,2,3}) has a
 * `fwd` pointer — "the weight the forward should see".  For a float matrix
 * it is the parameter itself; for a ternary one it is scale·codes, refreshed
 * from the latent parameter by bf_model_refresh() before each forward.  The
 * backward writes the gradient with respect to `fwd` into the parameter's
 * gradient: the straight-through estimator, with no code of its own in the
 * model.  Inputs of ternary matrices pass through the int8 activation
 * quantizer when act_bits is 8, and their gradient passes straight through. */
#ifndef BF_MODEL_H
#define BF_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "bf/config.h"
#include "bf/quant.h"
#include "bf/stream.h"
#include "bf/tensor.h"

typedef struct {
    char name[64];
    int ndim;
    uint64_t shape[2];
    size_t offset, numel;    /* into params / grads */
    int is_block_matrix;
    bf_qspec q;              /* q.method BF_Q_NONE: a float parameter */
    float *fwd;              /* the forward's view: params+offset, or a quantized copy */
    int8_t *codes;           /* ternary as loaded: the stream's codes and scales, */
    float *scales;           /* used until training re-quantizes the latent (then NULL) */
    struct bf_tmat_s *tm;    /* integer-kernel form (bf_model_use_int_kernels), or NULL */
} bf_param;

typedef struct {             /* pointers into the parameter block (or a gradient block) */
    float *attn_norm_w, *attn_norm_b, *wq, *wk, *wv, *wo, *attn_sub_norm_w;
    float *mlp_norm_w, *mlp_norm_b, *w1, *w3, *w2, *ffn_sub_norm_w;
} bf_layer_params;

typedef struct bf_acts bf_acts;

typedef struct {
    bf_config cfg;
    bf_param *p;             /* in stream order */
    size_t np;
    float *params, *grads;   /* contiguous, n_params each */
    size_t n_params;
    bf_acts *acts;           /* sized by bf_model_forward on first use */
    double last_loss;
    size_t last_targets;     /* targeted positions in the last forward */
    /* KL anchor: when kl_weight > 0 the backward adds the gradient of
     * kl_weight·KL(p_ref ‖ p_θ), mean over targeted positions, with kl_ref the
     * reference's log-probabilities at the same positions ([M, vocab]). */
    double kl_weight;
    const float *kl_ref;
    /* QK-clip bookkeeping: with track_qk set, the forward records each
     * (layer, head)'s largest pre-softmax logit q·k/sqrt(hd) over the batch. */
    int track_qk;
    int inference;           /* set by bf_model_use_int_kernels: no backward follows */
    float *qk_max;           /* [n_layer · n_head] */
} bf_model;

/* An F32 model from a configuration, parameters zero (bf-init fills them). */
int bf_model_create(bf_model *m, const bf_config *c);
/* From a model stream: F32 (or F16/BF16) tensors become parameters; a
 * ternary W with W.scale (and optional W.latent) becomes a quantized
 * parameter whose value is the latent, or scale·codes without one. */
int bf_model_from_tset(bf_model *m, const bf_header *h, const bf_tset *s);
/* The same for inference on the integer kernels (bf_model_use_int_kernels
 * included): with act_bits 8, ternary matrices go from the stream straight
 * into the kernels' layout and take no float memory; no backward, no
 * writing the model back. */
int bf_model_load_for_inference(bf_model *m, const bf_header *h, const bf_tset *s);
/* Back to tensors: float parameters as F32; quantized ones as W (codes from
 * the current latent), W.scale and, with keep_latent, W.latent. */
void bf_model_to_tset(const bf_model *m, int keep_latent, bf_tset *out);
void bf_model_free(bf_model *m);

bf_param *bf_model_param(const bf_model *m, const char *name);
int bf_model_is_quantized(const bf_model *m);
/* Re-quantizes every ternary matrix's forward view from its latent (the
 * stored codes and scales of a loaded model are dropped: the latent rules). */
void bf_model_refresh(bf_model *m);
/* Inference on integer kernels: every ternary matrix of a model with
 * act_bits 8 runs as int8 activations × ternary codes with int32 sums.
 * No backward afterwards: the forward keeps one layer's activations, not
 * every layer's. */
int bf_model_use_int_kernels(bf_model *m);
/* Pointers of layer l into base (m->params or m->grads). */
bf_layer_params bf_model_layer(const bf_model *m, float *base, int l);

/* Forward on B rows of T ≤ ctx tokens: x[B·T] tokens, y[B·T] targets (-1: no
 * loss; y may be NULL for no loss).  Returns the mean cross-entropy over
 * targeted positions (0 when none) and keeps what the backward needs.
 * Per-row results, when wanted, come back through bf_model_row_stats. */
double bf_model_forward(bf_model *m, const int32_t *x, const int32_t *y, int B, int T);
/* Incremental decoding with a key/value cache, as generation runs: after
 * bf_model_cache_begin(m, B), calls with pos0 = 0, T₀, T₀+T₁, … feed each of
 * B rows its next positions (x, y as bf_model_forward, [B·T]); queries attend
 * to every position fed so far.  The results equal one bf_model_forward over
 * the whole rows (up to the rounding of differently shaped products).  No
 * backward follows a cached forward.  cache_begin returns -1 when out of memory. */
int bf_model_cache_begin(bf_model *m, int B);
double bf_model_forward_cached(bf_model *m, const int32_t *x, const int32_t *y, int B, int T, int pos0);
/* Adds d(loss)/d(params) of the last forward to m->grads. */
void bf_model_backward(bf_model *m);
void bf_model_zero_grad(bf_model *m);
/* After a forward with targets: for row b, targeted positions and how many
 * were predicted right (argmax, first maximum on ties). */
void bf_model_row_stats(const bf_model *m, int b, int *targets, int *correct);
/* KL(p_ref ‖ p_θ), mean over the last forward's targeted positions. */
double bf_model_kl(const bf_model *m, const float *ref_logp);
/* MuonClip: every head whose last recorded max logit exceeds tau has its
 * wq and wk rows scaled by sqrt(tau/max) (the latent weights on ternary
 * layers).  Returns the number of heads clipped. */
int bf_model_qk_clip(bf_model *m, double tau);
/* After a forward: the log-probabilities at the k-th targeted position
 * (vocab floats), and the targeted positions' row·T+t indices. */
const float *bf_model_target_logprobs(const bf_model *m, size_t k);
const int32_t *bf_model_target_index(const bf_model *m, size_t *n);

#endif
