/* optim.c — SGD, Adam and AdamW (see bf/optim.h). */
#include "bf/optim.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const bf_optim_names[] = {"adamw", "adam", "sgd", NULL};

void bf_optim_default(bf_optim_cfg *c)
{
    c->kind = BF_OPTIM_ADAMW;
    c->wd = 0.0;
    c->beta1 = 0.9;
    c->beta2 = 0.95;
    c->eps = 1e-8;
}

void bf_optim_init(bf_optim *o, const bf_model *m, const bf_optim_cfg *c)
{
    memset(o, 0, sizeof *o);
    o->cfg = *c;
    if (c->kind != BF_OPTIM_SGD) {
        o->m = bf_xcalloc(m->n_params, sizeof(float));
        o->v = bf_xcalloc(m->n_params, sizeof(float));
    }
}

void bf_optim_free(bf_optim *o)
{
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

void bf_optim_step(bf_optim *o, bf_model *m, double lr)
{
    const bf_optim_cfg *c = &o->cfg;
    o->t++;
    double bc1 = 1.0 - pow(c->beta1, (double)o->t), bc2 = 1.0 - pow(c->beta2, (double)o->t);
    for (size_t k = 0; k < m->np; k++) {
        const bf_param *p = &m->p[k];
        float *w = m->params + p->offset, *g = m->grads + p->offset;
        float *mm = o->m ? o->m + p->offset : NULL, *vv = o->v ? o->v + p->offset : NULL;
        float wd = p->ndim == 2 ? (float)c->wd : 0.0f;
        float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
        float a1 = (float)(1.0 / bc1), a2 = (float)(1.0 / bc2), flr = (float)lr;
        switch (c->kind) {
        case BF_OPTIM_SGD:
            for (size_t j = 0; j < p->numel; j++) w[j] -= flr * (g[j] + wd * w[j]);
            break;
        case BF_OPTIM_ADAM:
        case BF_OPTIM_ADAMW:
            for (size_t j = 0; j < p->numel; j++) {
                float gj = c->kind == BF_OPTIM_ADAM ? g[j] + wd * w[j] : g[j];
                mm[j] = b1 * mm[j] + (1.0f - b1) * gj;
                vv[j] = b2 * vv[j] + (1.0f - b2) * gj * gj;
                float upd = (mm[j] * a1) / (sqrtf(vv[j] * a2) + eps);
                if (c->kind == BF_OPTIM_ADAMW) w[j] -= flr * wd * w[j];
                w[j] -= flr * upd;
            }
            break;
        }
    }
}
