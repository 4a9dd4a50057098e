/* generate.c — sampling continuations through the key/value cache (bf/model.h). */
#include "bf/model.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A token from log-probabilities lp[V] at a temperature (0: argmax). */
static int32_t draw(const float *lp, size_t V, double temperature, bf_rng *rng, double *w)
{
    size_t best = 0;
    for (size_t c = 1; c < V; c++) if (lp[c] > lp[best]) best = c;
    if (temperature <= 0) return (int32_t)best;
    /* p ∝ exp((lp − max)/τ), summed in double in token order */
    double sum = 0;
    for (size_t c = 0; c < V; c++) sum += w[c] = exp(((double)lp[c] - (double)lp[best]) / temperature);
    double u = bf_rng_uniform(rng) * sum, acc = 0;
    for (size_t c = 0; c < V; c++) {
        acc += w[c];
        if (u < acc) return (int32_t)c;
    }
    return (int32_t)best;   /* u at the very top of the rounding */
}

int bf_model_generate(bf_model *m, const int32_t *prefix, int P, int B, int max_new, double temperature, bf_rng *rng,
                      int32_t stop, int32_t *out, int *len)
{
    if (P < 1 || B < 1 || max_new < 0 || P + max_new > m->cfg.ctx)
        return bf_err("generation of %d+%d tokens does not fit the context of %d", P, max_new, m->cfg.ctx);
    size_t V = (size_t)m->cfg.vocab, W = (size_t)(P + max_new);
    if (bf_model_cache_begin(m, B)) return -1;
    int32_t *x = bf_xmalloc((size_t)B * (size_t)P * sizeof *x), *y = bf_xmalloc((size_t)B * (size_t)P * sizeof *y);
    int *done = bf_xcalloc((size_t)B, sizeof *done);
    double *w = bf_xmalloc(V * sizeof *w);
    int rc = 0;
    /* the prefix for every row; a target at the last position so that its
     * log-probabilities are made (the loss itself is not used) */
    for (int b = 0; b < B; b++) {
        memcpy(x + (size_t)b * P, prefix, (size_t)P * sizeof *x);
        memcpy(out + (size_t)b * W, prefix, (size_t)P * sizeof *out);
        for (int t = 0; t < P; t++) y[(size_t)b * P + t] = t == P - 1 ? 0 : -1;
        len[b] = P;
    }
    int pos = 0, T = P;
    for (int step = 0; step < max_new; step++) {
        if (isnan(bf_model_forward_cached(m, x, y, B, T, pos)) && m->last_targets == 0) { rc = -1; break; }
        pos += T;
        int live = 0;
        for (int b = 0; b < B; b++) {
            int32_t tok = draw(bf_model_target_logprobs(m, (size_t)b), V, temperature, rng, w);
            if (!done[b]) {
                out[(size_t)b * W + (size_t)len[b]] = tok;
                len[b]++;
                if (tok == stop) done[b] = 1;
            }
            live += !done[b];
            x[b] = tok;   /* finished rows keep feeding tokens nobody reads: the batch stays whole */
            y[b] = 0;
        }
        T = 1;
        if (!live) break;
    }
    free(x);
    free(y);
    free(done);
    free(w);
    return rc;
}
