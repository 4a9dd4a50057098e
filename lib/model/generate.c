/* generate.c — sampling continuations through the key/value cache (bf/model.h). */
#include "bf/model.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* a token's weight and index, for ordering by probability */
typedef struct {
    double w;
    size_t c;
} ranked;

static int by_weight(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->w != y->w) return x->w < y->w ? 1 : -1;
    return x->c < y->c ? -1 : x->c > y->c;
}

int32_t bf_sample(const float *lp, size_t V, const bf_sampler *s, bf_rng *rng, double *scratch)
{
    size_t best = 0;
    for (size_t c = 1; c < V; c++) if (lp[c] > lp[best]) best = c;
    if (s->temperature <= 0) return (int32_t)best;
    /* p ∝ exp((lp − max)/τ), summed in double in token order */
    double *w = scratch, sum = 0;
    for (size_t c = 0; c < V; c++) sum += w[c] = exp(((double)lp[c] - (double)lp[best]) / s->temperature);
    int cut_k = s->top_k > 0 && (size_t)s->top_k < V, cut_p = s->top_p < 1;
    if (cut_k || cut_p) {   /* the tokens by probability; those past either cut weigh 0 */
        ranked *r = (ranked *)(scratch + V);
        for (size_t c = 0; c < V; c++) r[c] = (ranked){w[c], c};
        qsort(r, V, sizeof *r, by_weight);
        size_t keep = cut_k ? (size_t)s->top_k : V;
        if (cut_p) {
            double acc = 0;
            size_t n = 0;
            while (n < keep && acc < s->top_p * sum) acc += r[n++].w;
            keep = n ? n : 1;
        }
        for (size_t k = keep; k < V; k++) w[r[k].c] = 0;
        sum = 0;
        for (size_t c = 0; c < V; c++) sum += w[c];
    }
    double u = bf_rng_uniform(rng) * sum, acc = 0;
    for (size_t c = 0; c < V; c++) {
        acc += w[c];
        if (u < acc) return (int32_t)c;
    }
    return (int32_t)best;   /* u at the very top of the rounding */
}

/* A token from log-probabilities lp[V] at a temperature (0: argmax). */
static int32_t draw(const float *lp, size_t V, double temperature, bf_rng *rng, double *w)
{
    bf_sampler s = {temperature, 0, 1};
    return bf_sample(lp, V, &s, rng, w);
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
    double *w = bf_xmalloc(V * sizeof *w);   /* draw: no top-k or top-p, V doubles */
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

int bf_decoder_begin(bf_decoder *d, bf_model *m, const int32_t *prompt, int P)
{
    memset(d, 0, sizeof *d);
    if (P < 1 || P > m->cfg.ctx) return bf_err("a prompt of %d tokens does not fit the context of %d", P, m->cfg.ctx);
    if (bf_model_cache_begin(m, 1)) return -1;
    /* a target at the last position only, so that its log-probabilities are made */
    int32_t *y = bf_xmalloc((size_t)P * sizeof *y);
    for (int t = 0; t < P; t++) y[t] = t == P - 1 ? 0 : -1;
    double loss = bf_model_forward_cached(m, prompt, y, 1, P, 0);
    free(y);
    if (isnan(loss) && m->last_targets == 0) return -1;
    d->m = m;
    d->pos = P;
    d->pending = -1;
    d->scratch = bf_xmalloc(3 * (size_t)m->cfg.vocab * sizeof *d->scratch);
    return 0;
}

int bf_decoder_next(bf_decoder *d, const bf_sampler *s, bf_rng *rng, int32_t *tok)
{
    bf_model *m = d->m;
    if (d->pending >= 0) {
        if (d->pos >= m->cfg.ctx) return bf_err("the context of %d tokens is full", m->cfg.ctx);
        int32_t y = 0;
        double loss = bf_model_forward_cached(m, &d->pending, &y, 1, 1, d->pos);
        if (isnan(loss) && m->last_targets == 0) return -1;
        d->pos++;
    }
    *tok = bf_sample(bf_model_target_logprobs(m, 0), (size_t)m->cfg.vocab, s, rng, d->scratch);
    d->pending = *tok;
    return 0;
}

void bf_decoder_end(bf_decoder *d)
{
    free(d->scratch);
    memset(d, 0, sizeof *d);
}
