/* bf/svf.h — singular-value fine-tuning: SVF experts as a weight source,
 * their stream, their training and the search over their mixtures (part:
 * adapt; bf-svf(1)).
 *
 * SVD.  Each adapted block matrix W [out, in] is factored once, when the
 * source is attached, from the weight the model computes with at that moment
 * (a float parameter, or a ternary matrix's scale·codes: SVF on a ternary
 * model adapts its dequantized weights): W = U·diag(σ)·Vᵀ with U [out, k],
 * σ [k] (descending), Vᵀ [k, in], k = min(out, in), by LAPACK's divide and
 * conquer SVD in double precision, rounded to float afterwards.
 *
 * The source.  Each adapted matrix has a vector z [k]; with m = sigmoid(z),
 *     W' = c·U·diag(σ⊙m)·Vᵀ,   c = Σσ / Σ(σ⊙m)
 * so any uniform m gives W back (up to the SVD's rounding).  The backward
 * maps dL/dW' onto z: with g_i = u_iᵀ·dW'·v_i,
 *     dL/dm_i = c·σ_i·g_i − (c·σ_i / Σ(σ⊙m))·Σ_j σ_j·m_j·g_j
 *     dL/dz_i = dL/dm_i·m_i·(1 − m_i).
 * The z vectors ("W.svf_z" [k]) form a bf_pset of their own; the base stays
 * frozen.  A new z is 0.1 + 0.01·N(0,1), from derive(seed, "svf.W").
 *
 * Row scales (form "scales"): the other kind of expert, for ternary models.
 * Each adapted matrix [rows, cols] has a vector v [rows] of log-factors;
 * with a_r = exp(v_r),
 *     W'[r, :] = a_r·W[r, :]
 * (for a ternary matrix W = scale·codes, so W' = diag(a)·scale·codes: the
 * codes stay, each row gets a scale of its own, and the applied model runs
 * on the integer kernels).  dL/dv_r = a_r·Σ_c dW'[r, c]·W[r, c].  A new v is
 * 0: the expert starts as the base itself.  The log makes a factor positive
 * (a code's sign never flips), makes the step relative to the factor, and
 * makes a mixture Σ α_k·v_k a weighted geometric mean of the experts'
 * factors; α = 0 is the base.  A factor outside e^±BF_SVF_MAX_LOG_SCALE is
 * refused when read (exp would overflow float past 88).
 *
 * Stream (bf-stream(5)): kind "experts"; meta {base: hex XXH3-64 digest of
 * the base model's tensors (bf_tset_digest), targets: [the adapted matrices'
 * names, in the model's order], experts: [names], form: "svf" | "scales"
 * (absent: svf)}; tensors "NAME/W.svf_z" F32 [k] (svf) or
 * "NAME/W.log_scale" F32 [rows] (scales), expert by expert, each in the
 * targets' order.  Reading one checks the form, the digest, the names, the
 * lengths and that every value is finite (and, for scales, within bounds). */
#ifndef BF_SVF_H
#define BF_SVF_H

#include <stdint.h>

#include "bf/data.h"
#include "bf/model.h"
#include "bf/stream.h"
#include "bf/train.h"

/* An SVD of W [rows, cols] (row-major): U [rows, k], S [k], Vt [k, cols],
 * k = min(rows, cols), in double (use_double) or single precision.
 * Returns the relative reconstruction error ‖U·diag(S)·Vt − W‖_F / ‖W‖_F
 * (in double; 0 for a zero W), or -1 with bf_err when LAPACK fails. */
double bf_svd(const float *W, size_t rows, size_t cols, int use_double, float *U, float *S, float *Vt);

typedef struct bf_svf_src bf_svf_src;

typedef enum { BF_SVF_FORM_SVF, BF_SVF_FORM_SCALES } bf_svf_form;
#define BF_SVF_MAX_LOG_SCALE 16.0

/* "svf" or "scales"; and back (-1 and bf_err for another name). */
const char *bf_svf_form_name(bf_svf_form f);
int bf_svf_form_parse(const char *name, bf_svf_form *f);

typedef struct {
    bf_svf_form form;          /* what an expert is: z per singular value, or a log-factor per row */
    unsigned targets;          /* BF_LORA_* bits (bf/lora.h) */
    uint64_t base_digest;
    bf_pset ps;                /* every z and its gradient */
    size_t nmat;
    char (*mat)[64];           /* the adapted matrices, in the model's order */
    bf_svf_src **src;          /* attached sources (NULL: detached) */
    double svd_err;            /* the largest relative reconstruction error at attach */
} bf_svf;

/* An expert of the given form for every target matrix of m (w3 of a GELU
 * model left out): z seeded (svf), or v = 0 (scales). */
int bf_svf_create(bf_svf *s, const bf_model *m, bf_svf_form form, unsigned targets, uint64_t seed, uint64_t base_digest);
void bf_svf_free(bf_svf *s);
/* Takes each target's current weight as the base (svf: factors it) and puts
 * the sources on; -1 when a matrix runs on the integer kernels only or LAPACK
 * fails. */
int bf_svf_attach(bf_svf *s, bf_model *m);
/* W' anew from z (after an optimizer step or a new z). */
int bf_svf_refresh(bf_svf *s, bf_model *m);
/* Takes the sources off: the model computes with its bases again. */
void bf_svf_detach(bf_svf *s, bf_model *m);
/* Detaches and writes the adapted model's tensors.  A float matrix becomes
 * W' (F32).  A ternary one: with keep_f32, W' as F32 (the adapted
 * dequantized weights).  Otherwise, form svf: its parameter (the latent, or
 * scale·codes without one) moves by W' − W and is quantized again with the
 * tensor's own rule into its ternary group (W.latent kept when keep_latent);
 * form scales: the same codes with a scale per row, a_r times the row's
 * scale (an absmean rule becomes per row, which leaves the codes as they
 * are); the latent, when kept, has its rows multiplied by a_r where the rule
 * is per row (it then quantizes to the same codes and scales) and is left
 * out where it is per tensor (no latent of that rule gives these scales;
 * training again starts from their pre-image).  The model itself is left
 * with the parameters of the svf form's route. */
int bf_svf_apply(bf_svf *s, bf_model *m, int keep_f32, int keep_latent, bf_tset *out);

/* A set of experts for one base: nexp z blocks in the layout of an bf_svf's
 * pset (ps.n floats each). */
typedef struct {
    bf_svf_form form;
    uint64_t base_digest;
    size_t nmat, nexp, n;      /* n: floats per expert, as bf_svf.ps.n */
    char (*mat)[64];
    char (*name)[64];
    float *z;                  /* [nexp][n] */
} bf_experts;

/* The experts of a stream, checked against the svf layout s (made by
 * bf_svf_create for the model they are applied to): kind, form, digest,
 * targets, names, lengths, finite values. */
int bf_experts_from_tset(bf_experts *e, const bf_header *h, const bf_tset *t, const bf_svf *s);
/* The form and target mask (BF_LORA_* bits) an experts stream's meta names,
 * so that the bf_svf to read it with can be made. */
int bf_experts_layout(const bf_header *h, bf_svf_form *form, unsigned *targets);
/* Appends the experts of b to a (same base and targets), or -1. */
int bf_experts_join(bf_experts *a, const bf_experts *b);
/* One expert: s's current z, under name. */
int bf_experts_to_tset(const bf_svf *s, const char *const *names, const float *const *z, size_t nexp, bf_header *h,
                       bf_tset *out);
/* The index of expert name (-1 and bf_err if absent). */
int bf_experts_find(const bf_experts *e, const char *name);
void bf_experts_free(bf_experts *e);
/* A valid expert name: 1 … 63 bytes of [A-Za-z0-9_.-]. */
int bf_svf_name_ok(const char *name);

/* ---------------------------------------------------------------- training */

typedef enum { BF_SVF_GRAD, BF_SVF_REINFORCE } bf_svf_method;

typedef struct {
    bf_svf_method method;
    int steps, batch, eval_every, eval_batch;
    double lr, clip;
    double kl;                 /* REINFORCE: λ of the KL term */
    int max_new;               /* REINFORCE: tokens an answer may have */
    uint64_t seed;
    const bf_checkpoint *ckpt; /* states to save and one to resume from (bf/train.h), or NULL */
    int skip_nonfinite;        /* a step whose loss or gradient is not finite: 0 stops training with an
                                * error naming it; 1 passes it by (no update) */
} bf_svf_train_cfg;

typedef struct {
    int step, steps;
    double loss, reward, kl, grad_norm, seconds;
    int evaluated;
    bf_metrics val;
    int skipped;               /* passed by: its loss or gradient was not finite (skip_nonfinite) */
} bf_svf_step;

typedef void (*bf_svf_hook)(void *ctx, const bf_svf_step *s);

void bf_svf_train_default(bf_svf_train_cfg *c);

/* Trains the parameters of ps (z, or a LoRA adapter's A and B) attached to m;
 * refresh(refresh_ctx, m) makes the adapted weights anew after each step.
 * BF_SVF_GRAD: cross-entropy on the train split's answer positions.
 * BF_SVF_REINFORCE: for each question of a batch (a train row up to its first
 * answer position) an answer sampled from m at temperature 1 (up to the row's
 * width or a newline); reward r = +1 when it equals the row's answer, else
 * −1; loss = (1/B)·Σ −r·Σ log p(answer tokens) + kl·KL(p_base ‖ p) at the
 * sampled answer positions (base: the model without the adaptation, only
 * read).  Adam (β 0.9, 0.999, no decay), gradient norm clipped to clip. */
int bf_svf_train(bf_model *m, bf_pset *ps, int (*refresh)(void *, bf_model *), void *refresh_ctx, bf_model *base,
                 const bf_dataset *d, const bf_svf_train_cfg *c, bf_svf_hook hook, void *hook_ctx);

/* ------------------------------------------------------------ the mixtures */

typedef struct {
    int population, elite, iterations, per_layer, eval_batch;
    double std0;
    uint64_t seed;
    const bf_checkpoint *ckpt; /* states to save (an iteration a step) and one to resume from, or NULL */
} bf_svf_cem_cfg;

typedef struct {
    int iteration, iterations;
    double best_fitness, best_loss, mean_fitness, seconds;
    const double *alpha;       /* the best α so far: [groups·K] */
    int groups, K;
} bf_svf_cem_step;

typedef void (*bf_svf_cem_hook)(void *ctx, const bf_svf_cem_step *s);

void bf_svf_cem_default(bf_svf_cem_cfg *c);
/* z = Σ_k α_k·z_k over the experts of e (α per layer with per_layer: matrix
 * blk.L.* takes row L of alpha [groups, K]), into s's parameters. */
void bf_svf_mix(bf_svf *s, const bf_experts *e, const double *alpha, int per_layer);
/* The cross-entropy method over α ∈ [0,1]^(groups·K): fitness = exact match
 * on split fs (ties: lower loss, then the earlier candidate).  The first
 * generation holds, before its random draws, the start itself (α = 1/K
 * each, the uniform mixture), each expert alone (α = 1 for it, 0 for the
 * others) and the base (α = 0), as many of them as the population has room
 * for, in that order: the search's answer is never worse on fs than any of
 * them.  s attached to m; on return s holds the best mixture found and
 * alpha_out [groups·K] its α. */
int bf_svf_cem(bf_model *m, bf_svf *s, const bf_experts *e, const bf_split *fs, const bf_svf_cem_cfg *c,
               double *alpha_out, bf_svf_cem_hook hook, void *hook_ctx);

#endif
