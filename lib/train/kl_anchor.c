/* kl_anchor.c — the KL anchor to a frozen reference, a loss term (bf/train.h). */
#include "bf/train.h"

#include <math.h>

double bf_kl_span(const bf_model *m, const float *ref_logp, size_t k0, size_t k1)
{
    size_t V = (size_t)m->cfg.vocab;
    if (k1 <= k0) return 0;
    double kl = 0;
    for (size_t k = k0; k < k1; k++) {
        const float *lp = bf_model_target_logprobs(m, k), *rl = ref_logp + k * V;
        for (size_t c = 0; c < V; c++) kl += exp((double)rl[c]) * ((double)rl[c] - (double)lp[c]);
    }
    return kl / (double)(k1 - k0);
}

/* d/dz KL(p_ref ‖ softmax z) = softmax z − p_ref, per targeted position, over k1 − k0 */
void bf_kl_span_grad(const bf_model *m, const float *ref_logp, size_t k0, size_t k1, double weight, float *dlogits)
{
    size_t V = (size_t)m->cfg.vocab;
    if (k1 <= k0) return;
    float w = (float)(weight / (double)(k1 - k0));
    for (size_t k = k0; k < k1; k++) {
        const float *lp = bf_model_target_logprobs(m, k), *rl = ref_logp + k * V;
        float *d = dlogits + k * V;
        for (size_t c = 0; c < V; c++) d[c] += w * (expf(lp[c]) - expf(rl[c]));
    }
}

double bf_kl_anchor(const bf_model *m, const float *ref_logp)
{
    size_t M;
    bf_model_target_index(m, &M);
    return bf_kl_span(m, ref_logp, 0, M);
}

void bf_kl_anchor_grad(const bf_model *m, const float *ref_logp, double weight, float *dlogits)
{
    size_t M;
    bf_model_target_index(m, &M);
    bf_kl_span_grad(m, ref_logp, 0, M, weight, dlogits);
}
