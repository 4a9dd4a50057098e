/* bf/bake.h — prompt baking (part: adapt; bf-bake(1)).
 *
 * Teacher: a model that reads the prompt u before each row.  Student: the
 * same base plus a LoRA adapter (bf/lora.h), reading the row alone.  The
 * loss at each answer position of a row is the full-vocabulary
 *     KL(p_teacher(· | u, row prefix) ‖ p_student(· | row prefix)),
 * the mean over positions; its gradient with respect to the student's logits
 * is (p_student − p_teacher)/M, carried by the model's backward to the
 * adapter only (the base stays frozen), and Adam (bias-corrected, β 0.9 and
 * 0.999, no decay) steps A and B.  Rows come from the data's train split
 * and, with samples > 0, from trajectories the teacher samples itself: for
 * each of up to `questions` train rows, the question (the row up to its first
 * answer position) continued by the teacher with the prompt, `samples` times
 * at `temperature`, up to `max_new` tokens or a newline; then data batches
 * and trajectory batches take turns. */
#ifndef BF_BAKE_H
#define BF_BAKE_H

#include "bf/data.h"
#include "bf/lora.h"
#include "bf/model.h"

typedef struct {
    const int32_t *prompt;     /* P tokens */
    int P;
    int steps, batch, eval_every, eval_batch;
    double lr, clip;
    int samples, max_new, questions;
    double temperature;
    uint64_t seed;
} bf_bake_cfg;

typedef struct {
    int step, steps;
    double kl, lr, grad_norm, seconds;
    int evaluated;             /* val: the student's metrics and KL at this step */
    double val_kl;
    bf_metrics val;
} bf_bake_step;

typedef void (*bf_bake_hook)(void *ctx, const bf_bake_step *s);

void bf_bake_default(bf_bake_cfg *c);

/* Bakes: the student carries the attached adapter a (trained in place); the
 * teacher is a separate model (the base, or an earlier baked model for
 * prompt pursuit) that is only read.  hook (may be NULL) sees every step. */
int bf_bake(bf_model *student, bf_adapter *a, bf_model *teacher, const bf_dataset *d, const bf_bake_cfg *c,
            bf_bake_hook hook, void *hook_ctx);

/* KL(teacher with the prompt ‖ model without it), mean over a split's answer
 * positions, and the model's own metrics on the split (no prompt).  With P 0
 * (prompt NULL) it compares two models on the same rows (bf-eval --compare). */
int bf_bake_eval(bf_model *m, bf_model *teacher, const int32_t *prompt, int P, const bf_split *s, int batch, double *kl,
                 bf_metrics *out);

#endif
