/* bf/trm.h — recursive reasoning (part: reason): the Tiny Recursive Model
 * of "Less is More: Recursive Reasoning with Tiny Networks"
 * (Jolicoeur-Martineau 2025) on a recursive bitforge model (cfg.rec_n > 0,
 * bf-init --recursion n,T,sup; bitforge(7)).
 *
 * x = embedding(input); the answer state y and the latent z start as rec.y0
 * and rec.z0 (each row, each position) and are carried from one supervision
 * step to the next, detached.
 *   one recursion:        n times z ← net(x + y + z), then y ← net(y + z)
 *   a supervision step:   T − 1 recursions without gradient, one with it
 *                         (backward through its n + 1 net calls, into the
 *                         embedding, every block weight, and rec.y0/rec.z0
 *                         when the step starts from them, i.e. T = 1 at the
 *                         first step); loss = cross-entropy of
 *                         head(out_norm(y)) at the targets + the halting
 *                         head's binary cross-entropy against "every target
 *                         of the row predicted right"
 *   training:             a rolling batch of B puzzles, one optimizer
 *                         step a supervision step; a puzzle whose halting
 *                         logit is > 0, or that has had sup steps, leaves
 *                         and the next puzzle takes its row (from rec.y0,
 *                         rec.z0), so every step sees B rows; the training
 *                         loop's --steps are optimizer steps
 *   evaluation:           a row stops at the first step whose halting
 *                         probability passes P (or after max_steps); exact
 *                         match = every blank predicted right. */
#ifndef BF_TRM_H
#define BF_TRM_H

#include "bf/data.h"
#include "bf/model.h"
#include "bf/optim.h"
#include "bf/train.h"

typedef struct {
    bf_model *m;
    int B, T, grad;            /* sized for up to B rows of T; grad: n+1 activation sets */
    float *x, *y, *z;          /* [B·T, D] the embedding and the two states */
    float *in, *dx, *dy, *dz, *din;
    float *target, *logit;     /* [B] halting target and logit of the last step */
    int *row_targets, *row_correct;   /* [B] of the last step */
    double *row_loss;          /* [B] Σ cross-entropy of each row's targets, last step */
    unsigned char *start;      /* [B] the row's y, z are rec.y0, rec.z0 (reset, no step since) */
    double last_ce, last_bce;
    /* > 0: a step's means are over this many targets and rows, not its own
     * (a job's rank holding part of the batch: the ranks' losses then add
     * up to the batch's) */
    size_t over_targets, over_rows;
} bf_trm;

/* For up to B rows of T positions; grad: supervision steps with a backward
 * (not on a model set up for inference).  -1 (bf_err) on a model without
 * recursion, a bad size, or no memory. */
int bf_trm_init(bf_trm *r, bf_model *m, int B, int T, int grad);
void bf_trm_free(bf_trm *r);
/* The states of B rows back to rec.y0, rec.z0. */
void bf_trm_reset(bf_trm *r, int B);
/* The states of row b back to rec.y0, rec.z0 (a new puzzle in that row). */
void bf_trm_reset_row(bf_trm *r, int b);
/* One supervision step on B rows x, tgt [B·T] (tgt −1: no loss there).
 * With grad, adds d(loss)/d(params) to m->grads (the caller zeroes them)
 * through every source.  Returns loss = cross-entropy + halting BCE, NaN
 * with bf_err on failure; per-row results stay in r. */
double bf_trm_step(bf_trm *r, const int32_t *x, const int32_t *tgt, int B, int grad);
#define BF_TRM_TABLE 5          /* exact match after 1, 2, 4, 8, 16 steps */
extern const int bf_trm_table_steps[BF_TRM_TABLE];

typedef struct {
    size_t rows, targets;
    double loss, token_acc, exact;   /* at each row's halting step */
    double mean_steps;               /* supervision steps a row used */
    double exact_at[BF_TRM_TABLE];   /* every row run to that many steps, no halting; −1 beyond max_steps */
} bf_trm_metrics;

/* Evaluates B rows at a time: each row stops at the first step whose halting
 * probability is above halt_p (1: never) or at max_steps.  table: also run
 * every batch to max_steps for exact_at (else a batch ends when its rows
 * have all stopped).  -1 (bf_err) on failure. */
int bf_trm_eval(bf_model *m, const bf_split *s, int batch, double halt_p, int max_steps, int table,
                bf_trm_metrics *out);

/* Solves B puzzles x [B·T] (token 0 a blank): supervision steps until each
 * row's halting probability passes halt_p (1: never) or max_steps; out
 * [B·T] is the puzzle with each blank filled by the most likely token (the
 * first on ties, as evaluation scores it: 0 leaves the blank) at the row's
 * last step, steps [B] the steps it used.  -1 (bf_err) on failure. */
int bf_trm_solve(bf_model *m, const int32_t *x, int B, double halt_p, int max_steps, int32_t *out, int *steps);
/* bf_train for a recursive model: deep supervision as above, c->steps
 * optimizer steps (supervision steps), evaluation with halting at 0.5 and
 * up to the model's sup steps (res->val), c->ema, the step hook.  mean_steps
 * (may be NULL): supervision steps a finished training puzzle had, on average. */
int bf_trm_train(bf_model *m, const bf_dataset *d, bf_optim *opt, const bf_train_cfg *c, bf_train_result *res,
                 double *mean_steps);

#endif
