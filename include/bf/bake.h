/* bf/bake.h — prompt baking (part: adapt; bf-bake(1)).
 *
 * Teacher: a model that reads the prompt u before each row.  Student: the
 * same base plus a LoRA adapter (bf/lora.h), reading the row alone.  The
 * loss at each answer position of a row is the full-vocabulary
 *     KL(p_teacher(· | u, row prefix) ‖ p_student(· | row prefix)),
 * the mean over positions; its gradient with respect to the student's logits
 * is (p_student − p_teacher)/M, carried by the model's backward to the
 * adapter only (the base stays frozen), and Adam (bias-corrected, β 0.9 and
 * 0.999, no decay) steps A and B, at a learning rate that is constant or
 * follows bf_train_lr's warm-up and cosine.  Rows come from the data's train split
 * and, with samples > 0, from trajectories the teacher samples itself: for
 * each of up to `questions` train rows, the question (the row up to its first
 * answer position) continued by the teacher with the prompt, `samples` times
 * at `temperature`, up to `max_new` tokens or a newline; then data batches
 * and trajectory batches take turns.
 *
 * On ternary matrices the adapter trains through the quantizer (bf/lora.h):
 * the student computes what a merge will write.  Without an adapter (a NULL
 * adapter: full baking) the student's own parameters of the `full` matrices
 * are trained, straight through on ternary ones, the rest frozen.
 *
 * Retention: rows whose behaviour must not change (keep.sets, read as they
 * are, their own instructions kept) add, in every step, a batch whose loss
 * is KL(p_ref(· | row prefix) ‖ p_student(· | row prefix)) at their targeted
 * positions, ref the model they are kept from, weighted by keep.weight:
 *     loss = KL_bake + λ·KL_keep
 * (each a mean over its own positions).  The two batches run as one forward,
 * rows padded to the wider of the two (a causal model's positions do not see
 * the padding after them), one keep set after the other, step by step. */
#ifndef BF_BAKE_H
#define BF_BAKE_H

#include "bf/data.h"
#include "bf/lora.h"
#include "bf/model.h"
#include "bf/train.h"

typedef struct {
    const bf_dataset *const *sets;   /* n data sets: train rows to keep, val rows to measure */
    int n;
    bf_model *ref;             /* the behaviour kept (NULL: the teacher, reading no prompt) */
    double weight;             /* λ (default 1) */
} bf_bake_keep;

typedef struct {
    const int32_t *prompt;     /* P tokens */
    int P;
    int steps, batch, eval_every, eval_batch;
    double lr, clip;
    int samples, max_new, questions;
    double temperature;
    uint64_t seed;
    int warmup;                /* the learning rate as bf_train_lr gives it: warm-up steps, */
    bf_schedule schedule;      /* then constant or cosine (to a tenth) */
    unsigned full;             /* no adapter: the matrices trained (bf/lora.h's mask) */
    bf_bake_keep keep;
    const bf_checkpoint *ckpt; /* states to save and one to resume from (bf/train.h), or NULL */
    int skip_nonfinite;        /* a step whose student loss or gradient is not finite: 0 stops the
                                * bake with an error naming it; 1 passes it by (no update) */
} bf_bake_cfg;

typedef struct {
    int step, steps;
    double kl, lr, grad_norm, seconds;
    double keep_kl;            /* this step's keep batch (0 without keep sets) */
    int evaluated;             /* val: the student's metrics and KL at this step */
    double val_kl;
    bf_metrics val;
    double keep_val_kl;        /* and the keep sets' val rows, all together */
    bf_metrics keep_val;
    int skipped;               /* passed by: its loss or gradient was not finite (skip_nonfinite) */
} bf_bake_step;

typedef void (*bf_bake_hook)(void *ctx, const bf_bake_step *s);

void bf_bake_default(bf_bake_cfg *c);

/* Bakes: the student carries the attached adapter a (trained in place), or,
 * with a NULL, its own matrices c->full are trained; the teacher is a
 * separate model (the base, or an earlier baked model for prompt pursuit)
 * that is only read.  hook (may be NULL) sees every step. */
int bf_bake(bf_model *student, bf_adapter *a, bf_model *teacher, const bf_dataset *d, const bf_bake_cfg *c,
            bf_bake_hook hook, void *hook_ctx);

/* KL(teacher with the prompt ‖ model without it), mean over a split's answer
 * positions, and the model's own metrics on the split (no prompt).  With P 0
 * (prompt NULL) it compares two models on the same rows (bf-eval --compare). */
int bf_bake_eval(bf_model *m, bf_model *teacher, const int32_t *prompt, int P, const bf_split *s, int batch, double *kl,
                 bf_metrics *out);
/* The same over the keep sets' val rows, ref reading them as they are: KL
 * and metrics over all of them together (rows and targets summed). */
int bf_bake_eval_keep(bf_model *m, const bf_bake_keep *k, bf_model *ref, int batch, double *kl, bf_metrics *out);

#endif
