/* bf/optim.h — optimizers over a model's parameter block (part: train;
 * bf-muon(1), bf-ste-train(1)).
 *
 *   sgd:   θ ← θ − lr·(g + wd·θ)               (plain, no momentum)
 *   adam:  g ← g + wd·θ (coupled L2, as PyTorch's Adam), then Adam
 *   adamw: Adam on g, then θ ← θ − lr·wd·θ first (decoupled, Loshchilov–Hutter)
 *   Adam:  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
 *          θ ← θ − lr·(m/(1−β1ᵗ)) / (sqrt(v/(1−β2ᵗ)) + ε)
 *   muon:  for the 2-D block matrices (blk.*.w{q,k,v,o,1,2,3}):
 *          b ← μ·b + g;  u ← g + μ·b (Nesterov);
 *          O = NS₅(u / ‖u‖_F), transposed when taller than wide, with the
 *          quintic X ← aX + (bA + cA²)X, A = XXᵀ, (a,b,c) = (3.4445, −4.7750, 2.0315);
 *          θ ← θ·(1 − lr·wd) − lr·sqrt(max(1, rows/cols))·O
 *          every other parameter takes the fallback (adamw or sgd) at
 *          fallback_lr, scaled by the same schedule as lr.
 * Grokfast (Lee et al. 2024) filters the gradient before any of them:
 *   ema: h ← α·h + (1−α)·g;  ĝ = g + λ·h
 *   ma:  ĝ = g + λ·mean(last w gradients), once w have been seen
 * Weight decay applies to 2-D parameters only, never to norms and biases. */
#ifndef BF_OPTIM_H
#define BF_OPTIM_H

#include "bf/model.h"

typedef enum { BF_OPTIM_ADAMW, BF_OPTIM_ADAM, BF_OPTIM_SGD, BF_OPTIM_MUON } bf_optim_kind;
typedef enum { BF_GROKFAST_OFF, BF_GROKFAST_EMA, BF_GROKFAST_MA } bf_grokfast_kind;
extern const char *const bf_optim_names[];      /* "adamw","adam","sgd","muon" */
extern const char *const bf_grokfast_names[];   /* "off","ema","ma" */

typedef struct {
    bf_optim_kind kind;
    double lr;                 /* the peak lr the schedule scales (muon: the Muon lr) */
    double wd, beta1, beta2, eps;
    /* Muon */
    double momentum;
    int ns_steps;
    int ns_each_rank;          /* in a job (bf/dist.h): every rank orthogonalizes every matrix, instead
                                * of one rank each (the same result; what sharing saves) */
    bf_optim_kind fallback;    /* adamw or sgd */
    double fallback_lr;        /* < 0: the same as lr */
    /* Grokfast */
    bf_grokfast_kind grokfast;
    double gf_alpha, gf_lambda;
    int gf_window;
} bf_optim_cfg;

typedef struct {
    bf_optim_cfg cfg;
    float *m, *v;              /* Adam moments, laid out like the parameters */
    float *mom;                /* Muon momentum */
    float *gf_h;               /* Grokfast EMA */
    float *gf_ring;            /* Grokfast MA: window × n_params */
    double *gf_sum;
    int gf_seen;
    float *ns_work;            /* Newton–Schulz scratch */
    size_t ns_work_len;
    float *ns_shared;          /* in a job: [n] the orthogonalized updates, each matrix's from its rank */
    long t;                    /* steps taken */
    size_t n;                  /* floats in each moment: the pset's n */
} bf_optim;

void bf_optim_default(bf_optim_cfg *c);
/* State for the tensors of ps (a model's: bf_model_pset; or an adapter's). */
void bf_optim_init(bf_optim *o, const bf_pset *ps, const bf_optim_cfg *c);
/* One step over ps with the scheduled lr (the fallback's scales alike). */
/* 0, or -1 and bf_err (in a job, when sharing Muon's matrices fails). */
int bf_optim_step(bf_optim *o, bf_pset *ps, double lr);
void bf_optim_free(bf_optim *o);

/* Newton–Schulz orthogonalization of G [rows, cols] into O (may alias G). */
void bf_newton_schulz(const float *G, size_t rows, size_t cols, int steps, float *O);
/* The Grokfast filter alone, applied to g in place (for tests). */
void bf_grokfast_apply(bf_optim *o, float *g, size_t n);

#endif
