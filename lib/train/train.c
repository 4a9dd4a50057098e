/* train.c — the shared training loop (see bf/train.h). */
#include "bf/train.h"
#include "bf/dist.h"
#include "bf/rng.h"
#include "bf/thread.h"
#include "bf/util.h"
#include "bf/val.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const bf_schedule_names[] = {"cosine", "constant", NULL};

void bf_train_default(bf_train_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->steps = 1000;
    c->batch = 64;
    c->warmup = 0;
    c->eval_every = 0;
    c->eval_batch = 256;
    c->lr = 1e-3;
    c->clip = 1.0;
    c->schedule = BF_SCHED_COSINE;
    c->seed = 1;
}

double bf_train_lr(const bf_train_cfg *c, int step)
{
    if (step < c->warmup) return c->lr * (double)(step + 1) / (double)c->warmup;
    if (c->schedule == BF_SCHED_CONSTANT || c->steps - c->warmup <= 1) return c->lr;
    double frac = (double)(step - c->warmup) / (double)(c->steps - c->warmup - 1);
    return c->lr * (0.1 + 0.9 * 0.5 * (1.0 + cos(M_PI * frac)));
}

/* The gradient's squared norm in blocks of CLIP_BLOCK values, each summed
 * in eight partial sums, the blocks' sums then added in order: the same
 * bits for any thread count.  One running sum over every value had taken a
 * training step about 1 % of its time on one thread, an add's latency a
 * value, while the others waited. */
#define CLIP_BLOCK 16384

typedef struct {
    float *g;
    size_t n;
    double *part;   /* a block's sum of squares */
    float scale;
} clip_job;

static void clip_sums(void *ctx, size_t b0, size_t b1, int th)
{
    clip_job *j = ctx;
    (void)th;
    for (size_t b = b0; b < b1; b++) {
        size_t k = b * CLIP_BLOCK, end = k + CLIP_BLOCK < j->n ? k + CLIP_BLOCK : j->n;
        j->part[b] = bf_sum_dev_f64(j->g + k, 0.0f, end - k, 2);
    }
}

static void clip_scale(void *ctx, size_t k0, size_t k1, int th)
{
    clip_job *j = ctx;
    (void)th;
    for (size_t k = k0; k < k1; k++) j->g[k] *= j->scale;
}

double bf_grad_clip(bf_pset *ps, double max_norm)
{
    size_t nb = (ps->n + CLIP_BLOCK - 1) / CLIP_BLOCK;
    clip_job j = {ps->grads, ps->n, bf_xmalloc((nb ? nb : 1) * sizeof(double)), 1.0f};
    bf_parallel(nb, 1, clip_sums, &j);
    double ss = 0;
    for (size_t b = 0; b < nb; b++) ss += j.part[b];
    free(j.part);
    double norm = sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        j.scale = (float)(max_norm / norm);
        bf_parallel(ps->n, CLIP_BLOCK, clip_scale, &j);
    }
    return norm;
}

void bf_ema_init(bf_ema *e, const bf_pset *ps, double decay)
{
    e->n = ps->n;
    e->decay = decay;
    e->avg = bf_xmalloc((ps->n ? ps->n : 1) * sizeof(float));
    memcpy(e->avg, ps->params, ps->n * sizeof(float));
}

void bf_ema_update(bf_ema *e, const bf_pset *ps)
{
    float a = (float)e->decay, b = (float)(1.0 - e->decay);
    for (size_t k = 0; k < e->n; k++) e->avg[k] = a * e->avg[k] + b * ps->params[k];
}

void bf_ema_swap(bf_ema *e, bf_pset *ps)
{
    for (size_t k = 0; k < e->n; k++) {
        float t = e->avg[k];
        e->avg[k] = ps->params[k];
        ps->params[k] = t;
    }
}

void bf_ema_free(bf_ema *e)
{
    free(e->avg);
    e->avg = NULL;
}

void bf_batcher_init(bf_batcher *b, const bf_split *s, size_t batch, uint64_t seed)
{
    memset(b, 0, sizeof *b);
    b->s = s;
    b->batch = batch < s->rows ? batch : s->rows;
    b->rng = bf_rng_derive(seed, "batches");
    if (batch < s->rows) {
        b->perm = bf_xmalloc(s->rows * sizeof *b->perm);
        for (size_t k = 0; k < s->rows; k++) b->perm[k] = (uint32_t)k;
        bf_rng_shuffle_u32(&b->rng, b->perm, s->rows);
        b->x = bf_xmalloc(b->batch * s->T * sizeof(int32_t));
        b->y = bf_xmalloc(b->batch * s->T * sizeof(int32_t));
    }
}

void bf_batcher_next(bf_batcher *b, const int32_t **x, const int32_t **y)
{
    const bf_split *s = b->s;
    if (!b->perm) { *x = s->x; *y = s->y; return; }
    for (size_t k = 0; k < b->batch; k++) {
        if (b->cursor == s->rows) {   /* a new epoch, a new order */
            bf_rng_shuffle_u32(&b->rng, b->perm, s->rows);
            b->cursor = 0;
        }
        size_t r = b->perm[b->cursor++];
        memcpy(b->x + k * s->T, s->x + r * s->T, s->T * sizeof(int32_t));
        memcpy(b->y + k * s->T, s->y + r * s->T, s->T * sizeof(int32_t));
    }
    *x = b->x;
    *y = b->y;
}

void bf_batcher_free(bf_batcher *b)
{
    free(b->perm);
    free(b->x);
    free(b->y);
}

void bf_train_config_words(const bf_train_cfg *c, const bf_optim *opt, char *out, size_t cap)
{
    snprintf(out, cap,
             "steps %d batch %d warmup %d lr %.17g clip %.17g schedule %s seed %" PRIu64
             " kl %.17g qk_clip %.17g ema %.17g eval_every %d stop_exact %.17g on_nan %s",
             c->steps, c->batch, c->warmup, c->lr, c->clip, bf_schedule_names[c->schedule], c->seed, c->kl, c->qk_clip,
             c->ema, c->eval_every, c->stop_exact, c->skip_nonfinite ? "skip" : "stop");
    bf_optim_config_words(&opt->cfg, out, cap);
}

int bf_train_share_mean(double *mean, size_t targets, double *weight)
{
    *weight = 1;
    if (bf_dist_size() == 1) return 0;
    double v[2] = {targets ? *mean * (double)targets : 0, (double)targets};
    if (bf_dist_sum_doubles(v, 2)) return -1;
    *mean = v[1] > 0 ? v[0] / v[1] : 0;
    *weight = v[1] > 0 ? (double)targets / v[1] : 0;
    return 0;
}

int bf_train_share_grads(bf_pset *ps, double weight)
{
    if (bf_dist_size() == 1) return 0;
    float w = (float)weight;
    for (size_t k = 0; k < ps->n; k++) ps->grads[k] *= w;
    return bf_dist_sum_floats(ps->grads, ps->n);
}

int bf_train_share_rows(int batch, size_t *lo, size_t *hi)
{
    if (batch < bf_dist_size()) return bf_err("a batch of %d rows cannot be shared by %d ranks", batch, bf_dist_size());
    bf_dist_share((size_t)batch, lo, hi);
    return 0;
}

typedef struct {
    bf_model *m;
    bf_optim *opt;
    bf_batcher *b;
    bf_ema *ema;
    bf_train_result *res;
} train_run;

/* Every piece of a bf_train run's state (bf_state: saved or restored alike). */
static void train_pieces(bf_state *s, void *run)
{
    train_run *u = run;
    bf_train_result *res = u->res;
    int64_t qk = res->qk_clipped, ev = res->evaluated, sk = res->skipped;
    bf_state_floats(s, "params", u->m->params, u->m->n_params);
    bf_state_optim(s, "optim", u->opt);
    if (u->ema->avg) bf_state_floats(s, "ema", u->ema->avg, u->ema->n);
    bf_state_batcher(s, "batches", u->b);
    bf_state_int(s, "qk_clipped", &qk, 0, INT64_MAX);
    bf_state_int(s, "evaluated", &ev, 0, 1);
    bf_state_int(s, "skipped", &sk, 0, INT64_MAX);
    res->qk_clipped = (long)qk;
    res->evaluated = (int)ev;
    res->skipped = (long)sk;
}

int bf_train(bf_model *m, const bf_dataset *d, bf_optim *opt, const bf_train_cfg *c, bf_train_result *res)
{
    memset(res, 0, sizeof *res);
    if (!d->train.rows) return bf_err("the train split is empty");
    if (c->kl > 0 && !c->kl_ref) return bf_err("a KL anchor needs a reference model");
    /* weight sources (ternary, …) make their effective weights anew each step */
    int quantized = bf_model_has_sources(m);
    bf_pset ps = bf_model_pset(m);
    bf_batcher b;
    bf_batcher_init(&b, &d->train, (size_t)c->batch, c->seed);
    double t0 = bf_now();
    int rc = 0;
    float *ref_logp = NULL;
    size_t V = (size_t)m->cfg.vocab;
    if (c->kl > 0) {
        ref_logp = bf_xmalloc(b.batch * d->train.T * V * sizeof(float));   /* (a rank's share needs less) */
        /* the reference as loaded: a ternary one keeps its stream's codes */
    }
    m->track_qk = c->qk_clip > 0;
    bf_ema ema = {0};
    if (c->ema > 0) bf_ema_init(&ema, &ps, c->ema);
    char config[1024];
    uint64_t data_digest = 0;
    int step0 = 0;
    if (c->ckpt) {
        bf_train_config_words(c, opt, config, sizeof config);
        data_digest = bf_split_digest(&d->train);
    }
    train_run run = {m, opt, &b, &ema, res};
    if (bf_checkpoint_resume(c->ckpt, config, data_digest, c->steps, train_pieces, &run, &step0)) rc = -1;
    res->steps_done = step0;
    /* in a job (bf/dist.h), this rank's rows [lo, hi) of every batch */
    size_t lo = 0, hi = b.batch, T = d->train.T;
    if (bf_train_share_rows((int)b.batch, &lo, &hi)) rc = -1;
    int Bs = (int)(hi - lo);
    for (int step = step0; step < c->steps && !rc; step++) {
        const int32_t *x, *y;
        bf_batcher_next(&b, &x, &y);
        x += lo * T;
        y += lo * T;
        if (quantized && bf_model_refresh(m)) { rc = -1; break; }
        bf_model_zero_grad(m);
        int frc = 0;
        if (ref_logp) {   /* the frozen reference's log-probabilities at the same targets */
            if (isnan(bf_model_forward(c->kl_ref, x, y, Bs, (int)T))) {
                /* a forward that could not run has said why (and ran on no target) */
                frc = c->kl_ref->last_targets ? bf_err("the reference's loss is not finite at step %d", step + 1) : -1;
            } else {
                size_t M;
                bf_model_target_index(c->kl_ref, &M);
                memcpy(ref_logp, bf_model_target_logprobs(c->kl_ref, 0), M * V * sizeof(float));
            }
        }
        double loss = frc ? NAN : bf_model_forward(m, x, y, Bs, (int)T), gnorm = NAN, weight;
        if (!frc && isnan(loss) && !m->last_targets) frc = -1;   /* the forward could not run; it said why */
        if (bf_dist_agree(frc) || bf_train_share_mean(&loss, m->last_targets, &weight)) { rc = -1; break; }
        int skip = !isfinite(loss);   /* a step that cannot be taken: stop, or with skip_nonfinite pass it by */
        if (skip && !c->skip_nonfinite) { rc = bf_err("loss is not finite at step %d", step + 1); break; }
        if (!skip) {
            float *dlogits = bf_model_dlogits(m);
            if (ref_logp) {
                double kl = bf_kl_anchor(m, ref_logp), w;
                if (bf_train_share_mean(&kl, m->last_targets, &w)) { rc = -1; break; }
                res->last_kl = kl;
                if (dlogits) bf_kl_anchor_grad(m, ref_logp, c->kl, dlogits);
            }
            if (bf_dist_agree(bf_model_backward(m)) || bf_train_share_grads(&ps, weight)) { rc = -1; break; }
            gnorm = bf_grad_clip(&ps, c->clip);
            skip = !isfinite(gnorm);
            if (skip && !c->skip_nonfinite) { rc = bf_err("gradient is not finite at step %d", step + 1); break; }
        }
        double lr = bf_train_lr(c, step);
        if (skip) {
            res->skipped++;
        } else {
            if (bf_optim_step(opt, &ps, lr)) { rc = -1; break; }
            if (c->qk_clip > 0) {   /* every rank clips by the largest logit of the whole batch */
                if (m->qk_max && bf_dist_max_floats(m->qk_max, (size_t)m->cfg.n_layer * m->cfg.n_head)) { rc = -1; break; }
                res->qk_clipped += bf_qk_clip(m, c->qk_clip);
            }
            if (ema.avg) bf_ema_update(&ema, &ps);
        }
        res->steps_done = step + 1;
        res->last_loss = loss;
        int last = step + 1 == c->steps;
        int do_eval = d->val.rows && ((c->eval_every > 0 && (step + 1) % c->eval_every == 0) || last);
        if (do_eval) {
            double te = bf_now();
            if (ema.avg) bf_ema_swap(&ema, &ps);   /* the average is what gets evaluated */
            int erc = (quantized && bf_model_refresh(m)) || bf_eval_split(m, &d->val, c->eval_batch, &res->val);
            if (ema.avg) bf_ema_swap(&ema, &ps);
            if (erc) { rc = -1; break; }
            res->evaluated = 1;
            res->eval_seconds += bf_now() - te;
        }
        if (c->on_step) {
            bf_train_step s = {step + 1, c->steps, loss, lr, gnorm, bf_now() - t0, do_eval, res};
            c->on_step(c->hook_ctx, &s);
        }
        if (do_eval && c->stop_exact > 0 && res->val.exact >= c->stop_exact) {
            res->stopped_early = !last;
            break;
        }
        if (bf_checkpoint_after(c->ckpt, config, data_digest, step + 1, c->steps, "step", train_pieces, &run)) { rc = -1; break; }
    }
    if (ema.avg) {   /* the trained model is the average */
        if (res->steps_done) bf_ema_swap(&ema, &ps);
        bf_ema_free(&ema);
    }
    if (!rc && quantized && res->steps_done && bf_model_refresh(m)) rc = -1;
    m->track_qk = 0;
    free(ref_logp);
    res->seconds = bf_now() - t0;
    bf_batcher_free(&b);
    return rc;
}
