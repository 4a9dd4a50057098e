/* model_fixture.h — what the finite-difference tests of the model and its
 * weight sources share: parameters far from zero so that gradients are not
 * tiny (norm weights about 1, everything else N(0, 0.3²)), seeded. */
#ifndef BF_TEST_MODEL_FIXTURE_H
#define BF_TEST_MODEL_FIXTURE_H

#include "bf/model.h"
#include "bf/rng.h"

static inline void init_params(bf_model *m, uint64_t seed)
{
    bf_rng r;
    bf_rng_seed(&r, seed);
    for (size_t k = 0; k < m->np; k++) {
        bf_param *p = &m->p[k];
        float *x = m->params + p->offset;
        for (size_t j = 0; j < p->numel; j++)
            x[j] = p->ndim == 1 ? (float)(1.0 + 0.2 * bf_rng_normal(&r)) : (float)(0.3 * bf_rng_normal(&r));
    }
}

#endif
