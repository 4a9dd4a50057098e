/* bf/model.h — the transformer (part: model): parameters, weight sources,
 * forward, backward.  The model itself is described in bitforge(7); the
 * parts and arrows of the library in docs/ARCHITECTURE.md.
 *
 * llm.c's layout: every parameter lives in one contiguous block (`params`),
 * the gradients in a second block of the same layout (`grads`), and every
 * activation the backward needs in one block sized for (batch, ctx).  The
 * parameters are also reachable as a typed per-layer struct, built once when
 * the model is made, so the forward never looks a name up.
 *
 * Weights through one door: forward and backward compute with each block
 * matrix's *effective* weight W_eff (bf_weight.w) and add the gradient
 * dL/dW_eff to bf_weight.dw; they do not know where a matrix came from.  A
 * weight *source* makes W_eff from its own parameters (refresh) and maps the
 * gradient back onto them (backward).  Two sources are built in:
 *   plain F32:  W_eff = W, dW = dW_eff (no copy: w and dw are the parameter
 *               and its gradient);
 *   ternary:    W_eff = scale·Q(W_latent), dW_latent = dW_eff (the straight-
 *               through estimator: the quantizer passes the gradient as is);
 *               inputs pass through the int8 activation quantizer when
 *               act_bits is 8, their gradient straight through too.  On the
 *               integer kernels (inference) it is the same source without
 *               gradients: w is NULL and tm holds the repacked codes.
 * Other sources (LoRA, SVF) set a weight's `src`, `w` and `dw` the same way. */
#ifndef BF_MODEL_H
#define BF_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "bf/config.h"
#include "bf/kernels.h"
#include "bf/qspec.h"
#include "bf/rng.h"
#include "bf/stream.h"

typedef struct {             /* a parameter tensor, in stream order */
    char name[64];
    int ndim;
    uint64_t shape[2];
    size_t offset, numel;    /* into params / grads */
    int is_block_matrix;     /* blk.*.w{q,k,v,o,1,2,3}: Muon's matrices, the ternary layers */
} bf_param;

/* Trainable tensors and their gradients: what an optimizer sees.  A model's
 * parameters are one (bf_model_pset); a weight source with parameters of its
 * own (a LoRA adapter) makes another in the same layout. */
typedef struct {
    bf_param *p;             /* np tensors, each at p[k].offset in params and grads */
    size_t np;
    float *params, *grads;   /* n floats each */
    size_t n;
} bf_pset;

typedef struct bf_model bf_model;
typedef struct bf_weight bf_weight;
typedef struct bf_wsource bf_wsource;

typedef struct {
    const char *kind;        /* "ternary", "lora", … */
    /* Makes w->w (or w->tm) from the source's parameters; -1 and bf_err on failure. */
    int (*refresh)(bf_wsource *s, bf_model *m, bf_weight *w);
    /* After a backward: maps w->dw onto the source's own gradients (NULL: dw is them). */
    void (*backward)(bf_wsource *s, bf_model *m, bf_weight *w);
    /* Zeroes w->dw when it is a buffer of the source's own (NULL: dw lies in m->grads). */
    void (*zero_grad)(bf_wsource *s, bf_model *m, bf_weight *w);
    void (*free)(bf_wsource *s);
} bf_wsource_ops;

struct bf_wsource {          /* sources embed this as their first member */
    const bf_wsource_ops *ops;
};

/* One block matrix as forward and backward see it: y = x·W_effᵀ, [out, in]. */
struct bf_weight {
    size_t rows, cols;
    float *w;                /* W_eff [rows, cols]; NULL when it runs on the integer kernels */
    float *dw;               /* the backward adds dL/dW_eff here; NULL: no gradient */
    const bf_tmat *tm;       /* W_eff's integer-kernel form (int8 × ternary), or NULL:
                              * whichever source makes w sets it */
    int quant_input;         /* its input passes through int8 activations */
    bf_param *param;         /* its own parameter: W, or the ternary latent */
    bf_wsource *src;         /* NULL: plain F32 */
};

typedef struct {             /* a norm's weight (and LayerNorm's bias), with gradients */
    float *w, *b, *dw, *db;  /* b, db NULL for RMSNorm; all NULL for an absent norm */
} bf_norm_params;

typedef struct {
    bf_norm_params attn_norm, attn_sub_norm, mlp_norm, ffn_sub_norm;   /* sub norms: subln only */
    bf_weight wq, wk, wv, wo, w1, w3, w2;                              /* w3: not with gelu */
} bf_layer;

#define BF_LAYER_WEIGHTS 7   /* wq wk wv wo w1 w3 w2, in that order */
/* Layer l's block matrices (w3 absent with gelu): fills out, returns how many. */
int bf_layer_weights(bf_layer *L, bf_weight *out[BF_LAYER_WEIGHTS]);

typedef struct bf_acts bf_acts;
typedef struct bf_net bf_net;

struct bf_model {
    bf_config cfg;
    bf_param *p;             /* the registry, in stream order */
    size_t np;
    float *params, *grads;   /* contiguous, n_params each */
    size_t n_params;
    /* the typed view, built once: pointers into params and grads */
    bf_layer *layer;         /* [n_layer] */
    float *tok_emb, *dtok_emb;   /* [V, D] */
    float *pos_emb, *dpos_emb;   /* [ctx, D], learned positions only */
    bf_norm_params out_norm;
    float *head, *dhead;         /* [V, D]: tok_emb's when tied */
    bf_acts *acts;           /* sized by the forward on first use */
    double last_loss;
    size_t last_targets;     /* targeted positions in the last forward */
    int inference;           /* set by bf_model_use_int_kernels: no backward follows */
    int float_products;      /* set by bf_model_use_float_products: no integer kernels */
    /* with track_qk set, the forward records each (layer, head)'s largest
     * pre-softmax logit q·k/sqrt(hd) over the batch in qk_max [n_layer·n_head] */
    int track_qk;
    float *qk_max;
    /* recursive models (cfg.rec_n > 0): the states' starts [D] and the
     * halting head halt.w [1,D], halt.b [1], with gradients; NULL otherwise */
    float *rec_y0, *drec_y0, *rec_z0, *drec_z0, *halt_w, *dhalt_w, *halt_b, *dhalt_b;
    bf_net *net;             /* the block stack's activation sets (bf_model_net_begin) */
};

/* An F32 model from a configuration, parameters zero. */
int bf_model_create(bf_model *m, const bf_config *c);
/* The model's parameters as an optimizer sees them. */
bf_pset bf_model_pset(bf_model *m);
/* From a model stream: F32 (or F16/BF16) tensors become parameters; a
 * ternary group W, W.scale (and optional W.latent) becomes a ternary source
 * whose parameter is the latent, or scale·codes without one.  Until a
 * refresh, its forward sees the stream's scale·codes exactly. */
int bf_model_from_tset(bf_model *m, const bf_header *h, const bf_tset *s);
/* The same for inference on the integer kernels (bf_model_use_int_kernels
 * included): with act_bits 8, ternary matrices go from the stream straight
 * into the kernels' layout and take no float memory; no backward, no
 * writing the model back. */
int bf_model_load_for_inference(bf_model *m, const bf_header *h, const bf_tset *s);
/* Back to tensors: float parameters as F32; ternary ones as their group
 * (codes from the current latent, or the stream's if untrained), with
 * W.latent when keep_latent.  -1 when memory runs out. */
int bf_model_to_tset(const bf_model *m, int keep_latent, bf_tset *out);
void bf_model_free(bf_model *m);

/* By name, for tools and tests (the forward never looks names up). */
bf_param *bf_model_param(const bf_model *m, const char *name);
bf_weight *bf_model_weight(bf_model *m, const char *name);
int bf_model_is_quantized(const bf_model *m);   /* some weight has the ternary source */
int bf_model_has_sources(const bf_model *m);    /* some weight has a source (refresh does something) */
/* The rule of a ternary matrix (its parameter is the latent the rule
 * quantizes), or NULL for any other weight. */
const bf_qspec *bf_weight_qspec(const bf_weight *w);
/* Makes a block matrix ternary: a ternary source over its current values
 * (the latent), quantized by q at the next refresh. */
int bf_model_set_ternary(bf_model *m, bf_weight *w, const bf_qspec *q);
/* Every source makes its effective weight anew from its parameters (a loaded
 * ternary matrix drops the stream's codes: the latent rules). */
int bf_model_refresh(bf_model *m);
/* Inference on integer kernels: every ternary matrix of a model with
 * act_bits 8 runs as int8 activations × ternary codes with int32 sums.
 * No backward afterwards: the forward keeps one layer's activations, not
 * every layer's. */
int bf_model_use_int_kernels(bf_model *m);
/* Every product in float: a ternary matrix computes scale·codes with sgemm,
 * as a straight-through forward does at the scalar kernel level, instead
 * of the integer kernels a model with act_bits 8 otherwise trains on (the
 * same numbers but for rounding).  For a model loaded in float, before its
 * first forward. */
void bf_model_use_float_products(bf_model *m);
/* Whether m's ternary matrices (and adapters trained through the quantizer)
 * run their forward products on the integer kernels while it trains:
 * act_bits 8, not bf_model_use_float_products, a kernel level above scalar. */
int bf_model_trains_on_kernels(const bf_model *m);
/* A ternary matrix from its latent [rows, cols] under rule q: w_eff =
 * scale·codes, and the kernels' form *tm (its scales *tm_scale, both laid
 * out on first use) when there is one already or m trains on the kernels
 * (*tm stays NULL otherwise).  For the weight sources: a source's refresh
 * sets the weight's w to w_eff and its tm to *tm.  -1 when memory cannot be
 * had; bf_ternary_form_free releases the form. */
int bf_ternary_form(const bf_model *m, const bf_qspec *q, const float *latent, size_t rows, size_t cols, float *w_eff,
                    bf_tmat **tm, float **tm_scale);
void bf_ternary_form_free(bf_tmat **tm, float **tm_scale);

/* What a weight's current source made it (its source, w, dw and kernel
 * form): a source stacked on another (a LoRA adapter, an SVF expert) keeps
 * it on attach and gives it back on detach. */
typedef struct {
    bf_wsource *src;         /* NULL: plain F32 below */
    float *w, *dw;
    const bf_tmat *tm;
} bf_weight_below;
/* Keeps w as it is in *below and puts source s on it, with dw its gradient
 * buffer; w->w and w->tm are then the new source's refresh's to set
 * (tm NULL until it does). */
void bf_weight_stack(bf_weight *w, bf_weight_below *below, bf_wsource *s, float *dw);
/* Gives w back what *below kept; below->src becomes NULL (w has it again). */
void bf_weight_unstack(bf_weight *w, bf_weight_below *below);

/* Forward on B rows of T ≤ ctx tokens: x[B·T] tokens, y[B·T] targets (-1: no
 * loss; y may be NULL for no loss).  Returns the mean cross-entropy over
 * targeted positions (0 when none) and keeps what the backward needs; NaN
 * with bf_err set when memory for the activations cannot be had. */
double bf_model_forward(bf_model *m, const int32_t *x, const int32_t *y, int B, int T);
/* Incremental decoding with a key/value cache, as generation runs: after
 * bf_model_cache_begin(m, B), calls with pos0 = 0, T₀, T₀+T₁, … feed each of
 * B rows its next positions (x, y as bf_model_forward, [B·T]); queries attend
 * to every position fed so far.  The results equal one bf_model_forward over
 * the whole rows (up to the rounding of differently shaped products).  No
 * backward follows a cached forward.  cache_begin returns -1 when out of
 * memory; a cached forward that does not match the cache returns NaN. */
int bf_model_cache_begin(bf_model *m, int B);
double bf_model_forward_cached(bf_model *m, const int32_t *x, const int32_t *y, int B, int T, int pos0);

/* The backward, in two calls so that loss terms can join in between:
 * bf_model_dlogits writes d(mean cross-entropy)/d(logits) of the last
 * forward, (softmax − onehot)/M at its M targeted positions, and returns that
 * [M, vocab] buffer (NULL when there were no targets); a loss term adds its
 * own gradient there (bf/train.h's KL anchor), or replaces it; then
 * bf_model_backward adds d(loss)/d(params) to m->grads through every source.
 * -1 (bf_err) on a model set up for inference or after a cached forward
 * (which keeps no attention probabilities). */
float *bf_model_dlogits(bf_model *m);
int bf_model_backward(bf_model *m);
void bf_model_zero_grad(bf_model *m);

/* After a forward with targets: for row b, targeted positions and how many
 * were predicted right (argmax, first maximum on ties). */
void bf_model_row_stats(const bf_model *m, int b, int *targets, int *correct);
/* After a forward: the log-probabilities at the k-th targeted position
 * (vocab floats), and the targeted positions' row·T+t indices. */
const float *bf_model_target_logprobs(const bf_model *m, size_t k);
const int32_t *bf_model_target_index(const bf_model *m, size_t *n);

/* The pieces a recursion (bf/trm.h) is made of, for recursive models
 * (cfg.rec_n > 0, whose bf_model_forward refuses): the block stack as a plain
 * function [N,D] → [N,D] with post-norm blocks, h = norm(h + wo(attn(h)));
 * h = norm(h + w2(act(w1 h, w3 h))) (attn_norm and mlp_norm are those two
 * norms), called as often as the recursion needs, each call keeping its
 * activations in one of `slots` sets so that their backwards can come later
 * in any order.  N = B·T, B ≤ the B given to bf_model_net_begin.
 *
 * bf_model_net_begin sizes the sets for up to B rows of T positions (-1 when
 * memory cannot be had); again with other sizes it lays them out anew.
 * bf_model_net_forward: out = net(in); in and out may be the same buffer.
 * bf_model_net_backward: from dout = dL/d(out) of slot's last forward, adds
 * every block parameter's gradient (block matrices to their dw) and writes
 * din = dL/d(in) (dout and din may be the same buffer).  -1 (bf_err) on a
 * model set up for inference or a slot without a forward.  The sources'
 * backward (LoRA, …) runs once after all of them: bf_model_sources_backward. */
int bf_model_net_begin(bf_model *m, int B, int T, int slots);
int bf_model_net_forward(bf_model *m, int slot, const float *in, float *out, int B);
int bf_model_net_backward(bf_model *m, int slot, const float *dout, float *din);
void bf_model_sources_backward(bf_model *m);
/* The embedding of B rows of the net's T tokens: out[N,D] = tok_emb[x]
 * (+ pos_emb[t]); its backward adds dout to the embeddings' gradients. */
void bf_model_embed(const bf_model *m, const int32_t *x, int B, float *out);
void bf_model_embed_backward(bf_model *m, const int32_t *x, int B, const float *dout);
/* The readout of a state y[N,D]: logits = head(out_norm(y)) at the positions
 * whose target tgt[N] is ≥ 0; returns the mean cross-entropy over them (0
 * when none).  row_targets/row_correct/row_loss [B] (each may be NULL): per
 * row targeted positions, how many the argmax got right (first maximum on
 * ties) and the sum of their cross-entropies.  dy
 * (may be NULL): written with d(mean cross-entropy)/dy, the gradients of
 * out_norm and head added.  over > 0: the mean (and its gradient) is over
 * that many targets instead (a job's rank holding part of a batch). */
double bf_model_readout(bf_model *m, const float *y, const int32_t *tgt, int B, int *row_targets, int *row_correct,
                        double *row_loss, float *dy, size_t over);
/* The last readout's log-probabilities [M, V]: a row for each targeted
 * position, in the order of the positions. */
const float *bf_model_readout_logprobs(const bf_model *m);
/* The halting head: logit[b] = halt.w · mean_t y[b,t,:] + halt.b.  With
 * target [B] (0 or 1, may be NULL): returns the mean binary cross-entropy
 * of sigmoid(logit) over the rows, and with dy adds its gradient to dy and
 * to halt.w, halt.b (0 without target).  over > 0: the mean is over that
 * many rows instead. */
double bf_model_halt(bf_model *m, const float *y, int B, const float *target, float *logit, float *dy, size_t over);

/* Generation with the key/value cache: B rows that share one prefix of P
 * tokens each continue for up to max_new tokens, each token drawn from
 * softmax(logits/temperature) (temperature 0: the argmax, first maximum on
 * ties), independently per row from rng; a row stops after `stop` (−1: never).
 * out [B, P + max_new] gets the prefix and the new tokens, len[b] each row's
 * length.  P + max_new ≤ ctx.  -1 (bf_err) when memory cannot be had. */
int bf_model_generate(bf_model *m, const int32_t *prefix, int P, int B, int max_new, double temperature, bf_rng *rng,
                      int32_t stop, int32_t *out, int *len);

/* How a token is drawn from log-probabilities: temperature 0 takes the
 * argmax (first maximum on ties); otherwise p ∝ exp(lp/temperature) over
 * the top_k most likely tokens (0: all), then over the smallest set of the
 * most likely whose probability reaches top_p (nucleus sampling; 1: all),
 * ties in probability broken by the lower token. */
typedef struct {
    double temperature;
    int top_k;
    double top_p;
} bf_sampler;

/* A token from lp[V] by s, one uniform draw of rng (none at temperature 0);
 * scratch: 3·V doubles. */
int32_t bf_sample(const float *lp, size_t V, const bf_sampler *s, bf_rng *rng, double *scratch);

/* One row decoded a token at a time through the key/value cache: begin
 * runs the prompt; each next draws a token from the logits at the end
 * (after feeding the token drawn before it); at most ctx − P + 1 tokens
 * fit.  -1 and bf_err on failure. */
typedef struct {
    bf_model *m;
    int pos;                   /* tokens fed so far */
    int32_t pending;           /* the last token drawn, fed by the next call (−1: none) */
    double *scratch;
} bf_decoder;

int bf_decoder_begin(bf_decoder *d, bf_model *m, const int32_t *prompt, int P);
int bf_decoder_next(bf_decoder *d, const bf_sampler *s, bf_rng *rng, int32_t *tok);
void bf_decoder_end(bf_decoder *d);

#endif
