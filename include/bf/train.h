/* bf/train.h — the training loop that every training program shares.
 *
 * Batches: when the batch is at least the train split's size, every step
 * uses the whole split in order; otherwise the rows are visited in epochs,
 * each a fresh permutation drawn from the seed ("batches" stream), batch
 * after batch.  Learning rate: linear warm-up over `warmup` steps, then
 * constant, or cosine from lr down to lr/10 at the last step.  Gradients
 * are clipped to a global L2 norm of `clip` (0: no clipping).  On ternary
 * models the forward re-quantizes the latent weights every step (STE). */
#ifndef BF_TRAIN_H
#define BF_TRAIN_H

#include <stdio.h>

#include "bf/data.h"
#include "bf/model.h"
#include "bf/optim.h"

typedef enum { BF_SCHED_COSINE, BF_SCHED_CONSTANT } bf_schedule;
extern const char *const bf_schedule_names[];

typedef struct {
    int steps, batch, warmup, eval_every, eval_batch;
    double lr, clip;
    bf_schedule schedule;
    double stop_exact;         /* > 0: stop once val exact match reaches it (checked at evaluations) */
    uint64_t seed;
    FILE *log;                 /* JSON lines, or NULL */
    int progress;              /* draw a progress line on stderr */
    double kl;                 /* > 0: loss += kl·KL(p_ref ‖ p_θ) against kl_ref */
    bf_model *kl_ref;          /* the frozen reference */
    double qk_clip;            /* > 0: MuonClip threshold τ after each step */
} bf_train_cfg;

typedef struct {
    int steps_done;
    double last_loss, seconds;
    int evaluated;             /* a val evaluation happened */
    bf_metrics val;            /* the last one */
    int stopped_early;
    double last_kl;
    long qk_clipped;          /* head clips over the run */
} bf_train_result;

/* A per-step hook for optimizers with their own update (Muon …): when set,
 * it replaces bf_optim_step. */
typedef void (*bf_step_fn)(void *ctx, bf_model *m, double lr, int step);

void bf_train_default(bf_train_cfg *c);
double bf_train_lr(const bf_train_cfg *c, int step);
double bf_grad_clip(bf_model *m, double max_norm);   /* returns the norm before clipping */
int bf_train(bf_model *m, const bf_dataset *d, bf_optim *opt, bf_step_fn step_fn, void *step_ctx,
             const bf_train_cfg *c, bf_train_result *res);

#endif
