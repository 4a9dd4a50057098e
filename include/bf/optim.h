/* bf/optim.h — optimizers over a model's parameter block.
 *
 *   sgd:   θ ← θ − lr·g                      (plain, no momentum; wd as L2)
 *   adam:  g ← g + wd·θ (coupled L2, as PyTorch's Adam), then Adam
 *   adamw: Adam on g, then θ ← θ − lr·wd·θ   (decoupled, Loshchilov & Hutter)
 *   Adam:  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
 *          θ ← θ − lr·(m/(1−β1ᵗ)) / (sqrt(v/(1−β2ᵗ)) + ε)
 * Weight decay applies to matrices and embeddings (2-D parameters), never
 * to norm weights and biases. */
#ifndef BF_OPTIM_H
#define BF_OPTIM_H

#include "bf/model.h"

typedef enum { BF_OPTIM_ADAMW, BF_OPTIM_ADAM, BF_OPTIM_SGD } bf_optim_kind;
extern const char *const bf_optim_names[];   /* NULL-ended, enum order */

typedef struct {
    bf_optim_kind kind;
    double wd, beta1, beta2, eps;
} bf_optim_cfg;

typedef struct {
    bf_optim_cfg cfg;
    float *m, *v;      /* moments, laid out like the parameter block */
    long t;            /* steps taken */
} bf_optim;

void bf_optim_default(bf_optim_cfg *c);
void bf_optim_init(bf_optim *o, const bf_model *m, const bf_optim_cfg *c);
void bf_optim_step(bf_optim *o, bf_model *m, double lr);
void bf_optim_free(bf_optim *o);

#endif
