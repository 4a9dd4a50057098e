/* svf_train.c — training SVF experts (or a LoRA adapter) by gradient or
 * REINFORCE, and the cross-entropy-method search over mixtures (bf/svf.h). */
#include "bf/dist.h"
#include "bf/svf.h"
#include "bf/optim.h"
#include "bf/train.h"
#include "bf/util.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

void bf_svf_train_default(bf_svf_train_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->method = BF_SVF_GRAD;
    c->steps = 200;
    c->batch = 32;
    c->eval_batch = 256;
    c->lr = 2e-3;
    c->clip = 1e-3;
    c->kl = 0;
    c->max_new = 32;
    c->seed = 1;
}

/* REINFORCE rows: each question of the batch continued by one sample of m;
 * bx/by [B, T] get the question and the sampled answer (targets on the
 * answer), r[b] the reward (0 for a row with no question). */
static int sample_rows(bf_model *m, const int32_t *x, const int32_t *y, int B, size_t T, int max_new_cfg, bf_rng *rng,
                       int32_t *bx, int32_t *by, double *r, double *mean_r)
{
    int ctx = m->cfg.ctx;
    int32_t *out = bf_xmalloc((size_t)ctx * sizeof *out);
    int len, n = 0;
    double sum = 0;
    for (int b = 0; b < B; b++) {
        const int32_t *rx = x + (size_t)b * T, *ry = y + (size_t)b * T;
        int32_t *ox = bx + (size_t)b * T, *oy = by + (size_t)b * T;
        for (size_t t = 0; t < T; t++) { ox[t] = rx[t]; oy[t] = -1; }
        r[b] = 0;
        size_t first = 0;
        while (first < T && ry[first] < 0) first++;
        if (first == T) continue;
        size_t qlen = first + 1, alen = 0;
        while (first + alen < T && ry[first + alen] >= 0) alen++;
        int max_new = max_new_cfg;
        if ((size_t)max_new > T + 1 - qlen) max_new = (int)(T + 1 - qlen);
        if ((int)qlen + max_new > ctx) max_new = ctx - (int)qlen;
        if (max_new < 1) continue;
        if (bf_model_generate(m, rx, (int)qlen, 1, max_new, 1.0, rng, '\n', out, &len)) { free(out); return -1; }
        size_t L = (size_t)len, got = L - qlen;
        int same = got == alen;
        for (size_t i = 0; same && i < alen; i++) same = out[qlen + i] == ry[first + i];
        r[b] = same ? 1.0 : -1.0;
        for (size_t t = 0; t + 1 < L && t < T; t++) {
            ox[t] = out[t];
            if (t + 1 >= qlen) oy[t] = out[t + 1];
        }
        for (size_t t = L; t < T; t++) ox[t] = 0;
        sum += r[b];
        n++;
    }
    free(out);
    *mean_r = n ? sum / n : 0;
    return 0;
}

typedef struct {
    bf_pset *ps;
    bf_optim *opt;
    bf_batcher *bt;
    bf_rng *rng;
} train_run;

/* Every piece of a training run's state (bf_state: saved or restored alike). */
static void train_pieces(bf_state *s, void *run)
{
    train_run *u = run;
    bf_state_floats(s, "params", u->ps->params, u->ps->n);
    bf_state_optim(s, "optim", u->opt);
    bf_state_batcher(s, "batches", u->bt);
    bf_state_rng(s, "reinforce", u->rng);
}

int bf_svf_train(bf_model *m, bf_pset *ps, int (*refresh)(void *, bf_model *), void *refresh_ctx, bf_model *base,
                 const bf_dataset *d, const bf_svf_train_cfg *c, bf_svf_hook hook, void *hook_ctx)
{
    const bf_split *tr = &d->train;
    if (!tr->rows) return bf_err("the train split is empty");
    if (c->method == BF_SVF_REINFORCE && c->kl > 0 && !base) return bf_err("the KL term needs the base model");
    size_t T = tr->T, V = (size_t)m->cfg.vocab;
    bf_optim_cfg oc;
    bf_optim_default(&oc);
    oc.kind = BF_OPTIM_ADAM;
    oc.lr = c->lr;
    oc.beta2 = 0.999;
    bf_optim opt;
    bf_optim_init(&opt, ps, &oc);
    bf_batcher bt;
    bf_batcher_init(&bt, tr, (size_t)c->batch, c->seed);
    size_t bmax = bt.batch;
    int32_t *bx = NULL, *by = NULL;
    float *ref = NULL;
    double *r = NULL;
    bf_rng rng = bf_rng_derive(c->seed, "svf.reinforce");
    if (c->method == BF_SVF_REINFORCE) {
        bx = bf_xmalloc(bmax * T * sizeof *bx);
        by = bf_xmalloc(bmax * T * sizeof *by);
        ref = bf_xmalloc(bmax * T * V * sizeof *ref);
        r = bf_xmalloc(bmax * sizeof *r);
    }
    double t0 = bf_now();
    int rc = 0, step0 = 0;
    char config[512];
    uint64_t data_digest = 0;
    if (c->ckpt) {
        snprintf(config, sizeof config,
                 "method %s steps %d batch %d lr %.17g clip %.17g kl %.17g max_new %d seed %" PRIu64 " eval_every %d params %016" PRIx64,
                 c->method == BF_SVF_REINFORCE ? "reinforce" : "grad", c->steps, c->batch, c->lr, c->clip, c->kl, c->max_new,
                 c->seed, c->eval_every, bf_pset_digest(ps));
        data_digest = bf_split_digest(tr);
    }
    train_run run = {ps, &opt, &bt, &rng};
    if (bf_checkpoint_resume(c->ckpt, config, data_digest, c->steps, train_pieces, &run, &step0)) rc = -1;
    for (int step = step0; step < c->steps && !rc; step++) {
        const int32_t *x, *y;
        bf_batcher_next(&bt, &x, &y);
        int B = (int)bt.batch;
        /* in a job (bf/dist.h), this rank's rows [lo, hi) of the batch */
        size_t lo, hi;
        if (bf_train_share_rows(B, &lo, &hi)) { rc = -1; break; }
        int Bs = (int)(hi - lo);
        bf_svf_step st = {step + 1, c->steps, 0, 0, 0, 0, 0, 0, {0}, 0};
        if (refresh(refresh_ctx, m)) { rc = -1; break; }
        if (c->method == BF_SVF_GRAD) {
            bf_model_zero_grad(m);
            memset(ps->grads, 0, ps->n * sizeof(float));
            double w;
            st.loss = bf_model_forward(m, x + lo * T, y + lo * T, Bs, (int)T);
            /* the forward could not run (it said why), on any rank */
            if (bf_dist_agree(isnan(st.loss) && !m->last_targets ? -1 : 0)) { rc = -1; break; }
            if (bf_train_share_mean(&st.loss, m->last_targets, &w)) { rc = -1; break; }
            st.skipped = isnan(st.loss);
            if (st.skipped && !c->skip_nonfinite) { rc = bf_err("the loss is not finite at step %d", step + 1); break; }
            if (!st.skipped && (bf_dist_agree(bf_model_backward(m)) || bf_train_share_grads(ps, w))) { rc = -1; break; }
        } else {
            /* every rank samples every row (the generator's draws stay the
             * same on all), then takes the loss on its share */
            if (sample_rows(m, x, y, B, T, c->max_new, &rng, bx, by, r, &st.reward)) { rc = -1; break; }
            const int32_t *sx = bx + lo * T, *sy = by + lo * T;
            const double *sr = r + lo;
            size_t M = 0;
            int frc = 0;
            if (c->kl > 0) {
                if (isnan(bf_model_forward(base, sx, sy, Bs, (int)T)))
                    frc = base->last_targets ? bf_err("the base model's loss is not finite at step %d", step + 1) : -1;
                bf_model_target_index(base, &M);
                if (!frc && M) memcpy(ref, bf_model_target_logprobs(base, 0), M * V * sizeof *ref);
            }
            if (bf_dist_agree(frc)) { rc = -1; break; }
            bf_model_zero_grad(m);
            memset(ps->grads, 0, ps->n * sizeof(float));
            double fl = bf_model_forward(m, sx, sy, Bs, (int)T);
            if (bf_dist_agree(isnan(fl) && !m->last_targets ? -1 : 0)) { rc = -1; break; }   /* it said why */
            double bad = isnan(fl);   /* on any rank */
            if (bf_dist_sum_doubles(&bad, 1)) { rc = -1; break; }
            st.skipped = bad > 0;
            if (st.skipped && !c->skip_nonfinite) { rc = bf_err("the loss is not finite at step %d", step + 1); break; }
            size_t Mm = 0;
            const int32_t *idx = st.skipped ? NULL : bf_model_target_index(m, &Mm);
            if (!st.skipped) {
                /* the policy term is over the batch's B rows; the KL a mean over its targets */
                double pg = 0, kl = 0, w = 1;
                for (size_t k = 0; k < Mm; k++) {
                    size_t b = (size_t)idx[k] / T;
                    pg -= sr[b] * bf_model_target_logprobs(m, k)[sy[idx[k]]];
                }
                if (c->kl > 0 && Mm) kl = bf_kl_anchor(m, ref);
                double v[3] = {pg, kl * (double)Mm, (double)Mm};
                if (bf_dist_size() > 1) {
                    if (bf_dist_sum_doubles(v, 3)) { rc = -1; break; }
                    w = v[2] > 0 ? (double)Mm / v[2] : 0;
                    kl = v[2] > 0 ? v[1] / v[2] : 0;
                }
                if (v[2] > 0) {
                    st.loss = v[0] / B;
                    if (c->kl > 0) {
                        st.kl = kl;
                        st.loss += c->kl * st.kl;
                    }
                }
                float *dl = Mm ? bf_model_dlogits(m) : NULL;   /* (softmax − onehot)/M at each target */
                for (size_t k = 0; k < Mm; k++) {
                    float f = (float)(sr[(size_t)idx[k] / T] * (double)Mm / B);
                    for (size_t v2 = 0; v2 < V; v2++) dl[k * V + v2] *= f;
                }
                if (c->kl > 0 && Mm) bf_kl_anchor_grad(m, ref, c->kl * w, dl);
                if (bf_dist_agree(Mm ? bf_model_backward(m) : 0) || bf_train_share_grads(ps, 1.0)) { rc = -1; break; }
            }
        }
        if (!st.skipped) {
            st.grad_norm = bf_grad_clip(ps, c->clip);
            st.skipped = !isfinite(st.grad_norm);
            if (st.skipped && !c->skip_nonfinite) { rc = bf_err("the gradient is not finite at step %d", step + 1); break; }
        }
        if (st.skipped) st.grad_norm = NAN;
        else if (bf_optim_step(&opt, ps, c->lr)) { rc = -1; break; }
        int last = step + 1 == c->steps;
        if (d->val.rows && ((c->eval_every > 0 && (step + 1) % c->eval_every == 0) || last)) {
            if (refresh(refresh_ctx, m) || bf_eval_split(m, &d->val, c->eval_batch, &st.val)) { rc = -1; break; }
            st.evaluated = 1;
        }
        st.seconds = bf_now() - t0;
        if (hook) hook(hook_ctx, &st);
        if (bf_checkpoint_after(c->ckpt, config, data_digest, step + 1, c->steps, "step", train_pieces, &run)) { rc = -1; break; }
    }
    if (!rc && refresh(refresh_ctx, m)) rc = -1;
    free(bx);
    free(by);
    free(ref);
    free(r);
    bf_batcher_free(&bt);
    bf_optim_free(&opt);
    return rc;
}

/* ------------------------------------------------------------ the mixtures */

void bf_svf_cem_default(bf_svf_cem_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->population = 32;
    c->elite = 6;   /* 20% of 32, rounded down */
    c->iterations = 50;
    c->std0 = 0.5;
    c->eval_batch = 256;
    c->seed = 1;
}

typedef struct {
    double exact, loss;
    int i;
} cand;

/* better first: higher exact match, then lower loss, then the earlier candidate */
static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->exact != y->exact) return x->exact > y->exact ? -1 : 1;
    if (x->loss != y->loss) return x->loss < y->loss ? -1 : 1;
    return x->i - y->i;
}

typedef struct {
    double *mean, *sd, *best;  /* [D] each */
    size_t D;
    double *best_exact, *best_loss;
    bf_rng *rng;
} cem_run;

/* Every piece of a search's state: the distribution, the best so far, the generator. */
static void cem_pieces(bf_state *s, void *run)
{
    cem_run *u = run;
    double b[2] = {*u->best_exact, *u->best_loss};
    bf_state_doubles(s, "mean", u->mean, u->D);
    bf_state_doubles(s, "sd", u->sd, u->D);
    bf_state_doubles(s, "best", u->best, u->D);
    bf_state_doubles(s, "best_fitness", b, 2);
    bf_state_rng(s, "cem", u->rng);
    *u->best_exact = b[0];
    *u->best_loss = b[1];
}

int bf_svf_cem(bf_model *m, bf_svf *s, const bf_experts *e, const bf_split *fs, const bf_svf_cem_cfg *c,
               double *alpha_out, bf_svf_cem_hook hook, void *hook_ctx)
{
    if (!fs->rows) return bf_err("the few-shot split is empty");
    if (!e->nexp) return bf_err("no experts to mix");
    int K = (int)e->nexp, groups = c->per_layer ? m->cfg.n_layer : 1, P = c->population;
    int E = c->elite < 1 ? 1 : c->elite > P ? P : c->elite;
    size_t D = (size_t)groups * (size_t)K;
    double *mean = bf_xmalloc(D * sizeof *mean), *sd = bf_xmalloc(D * sizeof *sd);
    double *pop = bf_xmalloc((size_t)P * D * sizeof *pop), *best = bf_xmalloc(D * sizeof *best);
    cand *cs = bf_xmalloc((size_t)P * sizeof *cs);
    for (size_t i = 0; i < D; i++) { mean[i] = 1.0 / K; sd[i] = c->std0; best[i] = mean[i]; }
    bf_rng rng = bf_rng_derive(c->seed, "svf.cem");
    double best_exact = -1, best_loss = INFINITY, t0 = bf_now();
    int rc = 0, it0 = 0;
    char config[512];
    uint64_t data_digest = 0;
    if (c->ckpt) {
        snprintf(config, sizeof config,
                 "population %d elite %d iterations %d per_layer %d std %.17g seed %" PRIu64 " experts %016" PRIx64
                 " params %016" PRIx64,
                 P, E, c->iterations, c->per_layer, c->std0, c->seed,
                 XXH3_64bits(e->z, e->nexp * e->n * sizeof *e->z), bf_pset_digest(&s->ps));
        data_digest = bf_split_digest(fs);
    }
    cem_run run = {mean, sd, best, D, &best_exact, &best_loss, &rng};
    if (bf_checkpoint_resume(c->ckpt, config, data_digest, c->iterations, cem_pieces, &run, &it0)) rc = -1;
    /* in a job (bf/dist.h) every rank draws the whole population (the same
     * draws) and scores its share of it; the scores are then gathered */
    size_t plo, phi, R = (size_t)bf_dist_size(), most = bf_dist_share_size((size_t)P, 0);
    bf_dist_share((size_t)P, &plo, &phi);
    double *mine = bf_xcalloc(2 * most, sizeof *mine), *all = bf_xcalloc(2 * most * R, sizeof *all);
    for (int it = it0; it < c->iterations && !rc; it++) {
        double fsum = 0;
        for (int p = 0; p < P; p++) {
            double *a = pop + (size_t)p * D;
            /* the first generation: the start (uniform), each expert alone, the base; then draws */
            if (it == 0 && p <= K + 1) {
                for (size_t i = 0; i < D; i++) a[i] = p == 0 ? mean[i] : (int)(i % (size_t)K) == p - 1 ? 1.0 : 0.0;
            } else {
                for (size_t i = 0; i < D; i++) {
                    double v = mean[i] + sd[i] * bf_rng_normal(&rng);
                    a[i] = v < 0 ? 0 : v > 1 ? 1 : v;
                }
            }
            if ((size_t)p < plo || (size_t)p >= phi) continue;
            bf_svf_mix(s, e, a, c->per_layer);
            bf_metrics met;
            if (bf_svf_refresh(s, m) || bf_eval_split_alone(m, fs, c->eval_batch, &met)) { rc = -1; break; }
            mine[2 * ((size_t)p - plo)] = met.exact;
            mine[2 * ((size_t)p - plo) + 1] = met.loss;
        }
        if (bf_dist_agree(rc) || bf_dist_gather(mine, 2 * most * sizeof *mine, all)) { rc = -1; break; }
        for (size_t r = 0, p = 0; r < R; r++)   /* rank r's share, in rank order */
            for (size_t j = 0; j < bf_dist_share_size((size_t)P, (int)r); j++, p++) {
                cs[p] = (cand){all[2 * (r * most + j)], all[2 * (r * most + j) + 1], (int)p};
                fsum += cs[p].exact;
            }
        qsort(cs, (size_t)P, sizeof *cs, cand_cmp);
        if (cs[0].exact > best_exact || (cs[0].exact == best_exact && cs[0].loss < best_loss)) {
            best_exact = cs[0].exact;
            best_loss = cs[0].loss;
            memcpy(best, pop + (size_t)cs[0].i * D, D * sizeof *best);
        }
        for (size_t i = 0; i < D; i++) {
            double mu = 0, var = 0;
            for (int q = 0; q < E; q++) mu += pop[(size_t)cs[q].i * D + i];
            mu /= E;
            for (int q = 0; q < E; q++) {
                double dv = pop[(size_t)cs[q].i * D + i] - mu;
                var += dv * dv;
            }
            mean[i] = mu;
            sd[i] = sqrt(var / E);
        }
        bf_svf_cem_step st = {it + 1, c->iterations, best_exact, best_loss, fsum / P, bf_now() - t0, best, groups, K};
        if (hook) hook(hook_ctx, &st);
        if (bf_checkpoint_after(c->ckpt, config, data_digest, it + 1, c->iterations, "iteration", cem_pieces, &run)) {
            rc = -1;
            break;
        }
    }
    free(mine);
    free(all);
    if (!rc) {
        bf_svf_mix(s, e, best, c->per_layer);
        if (bf_svf_refresh(s, m)) rc = -1;
        memcpy(alpha_out, best, D * sizeof *best);
    }
    free(mean);
    free(sd);
    free(pop);
    free(best);
    free(cs);
    return rc;
}
