/* kl_anchor.c — the KL anchor to a frozen reference, a loss term (bf/train.h). */
#include "bf/train.h"

#include <math.h>

double bf_kl_anchor(const bf_model *m, const float *ref_logp)
{
    size_t M, V = (size_t)m->cfg.vocab;
    bf_model_target_index(m, &M);
    if (!M) return 0;
    double kl = 0;
    for (size_t k = 0; k < M; k++) {
        const float *lp = bf_model_target_logprobs(m, k), *rl = ref_logp + k * V;
        for (size_t c = 0; c < V; c++) kl += exp((double)rl[c]) * ((double)rl[c] - (double)lp[c]);
    }
    return kl / (double)M;
}

/* d/dz KL(p_ref ‖ softmax z) = softmax z − p_ref, per targeted position, over M */
void bf_kl_anchor_grad(const bf_model *m, const float *ref_logp, double weight, float *dlogits)
{
    size_t M, V = (size_t)m->cfg.vocab;
    bf_model_target_index(m, &M);
    float w = (float)(weight / (double)M);
    for (size_t k = 0; k < M; k++) {
        const float *lp = bf_model_target_logprobs(m, k), *rl = ref_logp + k * V;
        float *d = dlogits + k * V;
        for (size_t c = 0; c < V; c++) d[c] += w * (expf(lp[c]) - expf(rl[c]));
    }
}
