/* bake.c — prompt baking: a LoRA student learns the prompted teacher (bf/bake.h). */
#include "bf/bake.h"
#include "bf/optim.h"
#include "bf/train.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void bf_bake_default(bf_bake_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->steps = 200;
    c->batch = 32;
    c->eval_batch = 256;
    c->lr = 1e-3;
    c->clip = 1.0;
    c->max_new = 32;
    c->questions = 256;
    c->temperature = 1.0;
    c->seed = 1;
}

/* The teacher's log-probabilities at the rows' targeted positions, reading
 * the prompt first: rows [B, T] become [B, P+T] with no target on the prompt.
 * The targeted positions keep their order, so row k of ref_logp [M, V]
 * matches the student's k-th targeted position on the bare rows. */
static int teacher_logp(bf_model *teacher, const int32_t *prompt, int P, const int32_t *x, const int32_t *y, int B, int T,
                        int32_t *bx, int32_t *by, float *ref_logp, size_t *M)
{
    size_t W = (size_t)(P + T);
    for (int b = 0; b < B; b++) {
        int32_t *rx = bx + (size_t)b * W, *ry = by + (size_t)b * W;
        memcpy(rx, prompt, (size_t)P * sizeof *rx);
        memcpy(rx + P, x + (size_t)b * T, (size_t)T * sizeof *rx);
        for (int t = 0; t < P; t++) ry[t] = -1;
        memcpy(ry + P, y + (size_t)b * T, (size_t)T * sizeof *ry);
    }
    if (isnan(bf_model_forward(teacher, bx, by, B, (int)W)))   /* (a forward that could not run has said why) */
        return teacher->last_targets ? bf_err("the teacher's loss is not finite") : -1;
    bf_model_target_index(teacher, M);
    if (*M) memcpy(ref_logp, bf_model_target_logprobs(teacher, 0), *M * (size_t)teacher->cfg.vocab * sizeof(float));
    return 0;
}

int bf_bake_eval(bf_model *m, bf_model *teacher, const int32_t *prompt, int P, const bf_split *s, int batch, double *kl,
                 bf_metrics *out)
{
    size_t T = s->T, V = (size_t)m->cfg.vocab, W = (size_t)P + T;
    int32_t *bx = bf_xmalloc((size_t)batch * W * sizeof *bx), *by = bf_xmalloc((size_t)batch * W * sizeof *by);
    float *ref = bf_xmalloc((size_t)batch * T * V * sizeof *ref);
    double sum = 0;
    size_t total = 0;
    int rc = 0;
    bf_tally t = {0};   /* the model's own metrics from the same forwards */
    for (size_t r0 = 0; r0 < s->rows && !rc; r0 += (size_t)batch) {
        int B = (int)(s->rows - r0 < (size_t)batch ? s->rows - r0 : (size_t)batch);
        size_t M;
        if (teacher_logp(teacher, prompt, P, s->x + r0 * T, s->y + r0 * T, B, (int)T, bx, by, ref, &M)) { rc = -1; break; }
        double l = bf_model_forward(m, s->x + r0 * T, s->y + r0 * T, B, (int)T);
        if (isnan(l) && m->last_targets == 0) { rc = -1; break; }
        sum += bf_kl_anchor(m, ref) * (double)M;
        total += M;
        bf_tally_batch(&t, m, l, B);
    }
    free(bx);
    free(by);
    free(ref);
    if (rc) return -1;
    *kl = total ? sum / (double)total : 0;
    bf_tally_done(&t, s->rows, out);
    return 0;
}

/* Teacher trajectories: for each of up to nq train questions, `samples`
 * continuations; the rows [n, T] carry targets on the sampled tokens. */
static int sample_pool(bf_model *teacher, const bf_bake_cfg *c, const bf_split *s, bf_rows *pool)
{
    size_t T = s->T, nq = s->rows < (size_t)c->questions ? s->rows : (size_t)c->questions;
    int ctx = teacher->cfg.ctx;
    int32_t *prefix = bf_xmalloc(((size_t)c->P + T + 1) * sizeof *prefix);
    int32_t *out = bf_xmalloc((size_t)c->samples * (size_t)ctx * sizeof *out);
    int *len = bf_xmalloc((size_t)c->samples * sizeof *len);
    bf_rng rng = bf_rng_derive(c->seed, "bake.samples");
    int rc = 0;
    for (size_t q = 0; q < nq && !rc; q++) {
        const int32_t *x = s->x + q * T, *y = s->y + q * T;
        size_t first = 0;   /* the question: the row up to its first answer position */
        while (first < T && y[first] < 0) first++;
        if (first == T) continue;
        size_t qlen = first + 1;
        int max_new = c->max_new;
        if ((size_t)max_new > T + 1 - qlen) max_new = (int)(T + 1 - qlen);   /* the row's width */
        if (c->P + (int)qlen + max_new > ctx) max_new = ctx - c->P - (int)qlen;
        if (max_new < 1) continue;
        memcpy(prefix, c->prompt, (size_t)c->P * sizeof *prefix);
        memcpy(prefix + c->P, x, qlen * sizeof *prefix);
        int W = c->P + (int)qlen + max_new;
        if (bf_model_generate(teacher, prefix, c->P + (int)qlen, c->samples, max_new, c->temperature, &rng, '\n', out, len)) {
            rc = -1;
            break;
        }
        for (int k = 0; k < c->samples; k++) {
            const int32_t *seq = out + (size_t)k * (size_t)W + c->P;   /* without the prompt */
            size_t L = (size_t)(len[k] - c->P);
            int32_t *rx = bf_rows_add(pool), *ry = pool->y + (pool->rows - 1) * T;
            for (size_t t = 0; t + 1 < L && t < T; t++) {
                rx[t] = seq[t];
                if (t + 1 >= qlen) ry[t] = seq[t + 1];
            }
        }
    }
    free(prefix);
    free(out);
    free(len);
    return rc;
}

int bf_bake(bf_model *student, bf_adapter *a, bf_model *teacher, const bf_dataset *d, const bf_bake_cfg *c,
            bf_bake_hook hook, void *hook_ctx)
{
    const bf_split *tr = &d->train;
    if (!tr->rows) return bf_err("the train split is empty");
    if (c->P + (int)tr->T > teacher->cfg.ctx)
        return bf_err("the prompt (%d tokens) and rows of %zu do not fit the teacher's context of %d", c->P, tr->T,
                      teacher->cfg.ctx);
    size_t T = tr->T, V = (size_t)student->cfg.vocab;
    bf_rows pool;
    bf_rows_init(&pool, T);
    if (c->samples > 0 && sample_pool(teacher, c, tr, &pool)) { bf_rows_free(&pool); return -1; }
    bf_split pool_split = {pool.x, pool.y, pool.rows, T};

    bf_optim_cfg oc;
    bf_optim_default(&oc);
    oc.kind = BF_OPTIM_ADAM;
    oc.lr = c->lr;
    oc.beta2 = 0.999;
    bf_optim opt;
    bf_optim_init(&opt, &a->ps, &oc);
    bf_batcher data_b, pool_b;
    bf_batcher_init(&data_b, tr, (size_t)c->batch, c->seed);
    if (pool.rows) bf_batcher_init(&pool_b, &pool_split, (size_t)c->batch, c->seed ^ 0x5a5a5a5aULL);
    size_t bmax = (size_t)c->batch;
    int32_t *bx = bf_xmalloc(bmax * ((size_t)c->P + T) * sizeof *bx), *by = bf_xmalloc(bmax * ((size_t)c->P + T) * sizeof *by);
    float *ref = bf_xmalloc(bmax * T * V * sizeof *ref);
    double t0 = bf_now();
    int rc = 0;
    for (int step = 0; step < c->steps; step++) {
        const int32_t *x, *y;
        int use_pool = pool.rows && (step & 1);
        bf_batcher *bt = use_pool ? &pool_b : &data_b;
        bf_batcher_next(bt, &x, &y);
        int B = (int)bt->batch;
        size_t M;
        if (teacher_logp(teacher, c->prompt, c->P, x, y, B, (int)T, bx, by, ref, &M)) { rc = -1; break; }
        if (bf_adapter_refresh(a, student)) { rc = -1; break; }
        bf_model_zero_grad(student);
        if (isnan(bf_model_forward(student, x, y, B, (int)T))) {
            rc = student->last_targets ? bf_err("the student's loss is not finite at step %d", step + 1) : -1;
            break;
        }
        double kl = bf_kl_anchor(student, ref);
        float *dl = bf_model_dlogits(student);
        if (dl) {   /* the KL alone: no cross-entropy on the data's answers */
            memset(dl, 0, M * V * sizeof *dl);
            bf_kl_anchor_grad(student, ref, 1.0, dl);
        }
        if (bf_model_backward(student)) { rc = -1; break; }
        double gn = bf_grad_clip(&a->ps, c->clip);
        if (!isfinite(gn)) { rc = bf_err("the adapter's gradient is not finite at step %d", step + 1); break; }
        bf_optim_step(&opt, &a->ps, c->lr);
        bf_bake_step s = {step + 1, c->steps, kl, c->lr, gn, 0, 0, 0, {0}};
        int last = step + 1 == c->steps;
        if (d->val.rows && ((c->eval_every > 0 && (step + 1) % c->eval_every == 0) || last)) {
            if (bf_adapter_refresh(a, student) ||
                bf_bake_eval(student, teacher, c->prompt, c->P, &d->val, c->eval_batch, &s.val_kl, &s.val)) {
                rc = -1;
                break;
            }
            s.evaluated = 1;
        }
        s.seconds = bf_now() - t0;
        if (hook) hook(hook_ctx, &s);
    }
    if (!rc && bf_adapter_refresh(a, student)) rc = -1;
    free(bx);
    free(by);
    free(ref);
    bf_batcher_free(&data_b);
    if (pool.rows) bf_batcher_free(&pool_b);
    bf_rows_free(&pool);
    bf_optim_free(&opt);
    return rc;
}
