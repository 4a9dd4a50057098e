/* model_fixture.h — what the finite-difference tests of the model and its
 * weight sources share: parameters far from zero so that gradients are not
 * tiny (norm weights about 1, everything else N(0, 0.3²)), seeded. */
#ifndef BF_TEST_MODEL_FIXTURE_H
#define BF_TEST_MODEL_FIXTURE_H

#include "bf/model.h"
#include "bf/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* The gradients a weight source keeps in its own bf_pset (LoRA's A and B,
 * SVF's z) against central differences of the loss of B rows of T, for
 * each tensor: directional (a random ±1/√n direction) and on its largest
 * entry, accepted within 2e-3 + 2e-2·|fd| as test_model_grad explains.
 * Returns the failures; *worst (may be NULL) gets the largest error as a
 * share of the tolerance. */
static inline double fixture_loss(bf_model *m, const int32_t *x, const int32_t *y, int B, int T)
{
    bf_model_refresh(m);
    return bf_model_forward(m, x, y, B, T);
}

static inline int check_pset_grads(bf_model *m, bf_pset *ps, const int32_t *x, const int32_t *y, int B, int T,
                                   const char *label, double *worst)
{
    bf_model_zero_grad(m);
    memset(ps->grads, 0, ps->n * sizeof(float));
    fixture_loss(m, x, y, B, T);
    bf_model_backward(m);
    const float h = 1e-3f;
    int fails = 0;
    bf_rng r;
    bf_rng_seed(&r, 9);
    for (size_t k = 0; k < ps->np; k++) {
        const bf_param *p = &ps->p[k];
        float *w = ps->params + p->offset, *g = ps->grads + p->offset;
        float *v = malloc(p->numel * sizeof *v), unit = 1.0f / sqrtf((float)p->numel);
        double gv = 0;
        for (size_t j = 0; j < p->numel; j++) { v[j] = (bf_rng_next(&r) & 1) ? unit : -unit; gv += g[j] * v[j]; }
        for (size_t j = 0; j < p->numel; j++) w[j] += h * v[j];
        double lp = fixture_loss(m, x, y, B, T);
        for (size_t j = 0; j < p->numel; j++) w[j] -= 2 * h * v[j];
        double lm = fixture_loss(m, x, y, B, T);
        for (size_t j = 0; j < p->numel; j++) w[j] += h * v[j];
        free(v);
        double fd = (lp - lm) / (2 * h);
        double err = fabs(gv - fd) / (2e-3 + 2e-2 * fabs(fd));
        size_t best = 0;
        for (size_t j = 1; j < p->numel; j++) if (fabsf(g[j]) > fabsf(g[best])) best = j;
        float keep = w[best];
        w[best] = keep + h;
        double a1 = fixture_loss(m, x, y, B, T);
        w[best] = keep - h;
        double b1 = fixture_loss(m, x, y, B, T);
        w[best] = keep;
        double fde = (a1 - b1) / (2 * h);
        double err2 = fabs(g[best] - fde) / (2e-3 + 2e-2 * fabs(fde));
        if (err2 > err) err = err2;
        if (worst && err > *worst) *worst = err;
        if (err > 1) {
            fails++;
            diag("%s %s: directional %.6g vs %.6g; [%zu] %.6g vs %.6g", label, p->name, gv, fd, best, g[best], fde);
        }
    }
    return fails;
}

#endif
