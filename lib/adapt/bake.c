/* bake.c — prompt baking: a LoRA student, or the model itself, learns the prompted teacher (bf/bake.h). */
#include "bf/bake.h"
#include "bf/dist.h"
#include "bf/optim.h"
#include "bf/train.h"
#include "bf/util.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

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
    c->keep.weight = 1.0;
    c->schedule = BF_SCHED_CONSTANT;
}

static double bake_lr(const bf_bake_cfg *c, int step)
{
    bf_train_cfg t;
    bf_train_default(&t);
    t.lr = c->lr;
    t.steps = c->steps;
    t.warmup = c->warmup;
    t.schedule = c->schedule;
    return bf_train_lr(&t, step);
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
        if (P) memcpy(rx, prompt, (size_t)P * sizeof *rx);   /* (no prompt: the keep rows) */
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

int bf_bake_eval_keep(bf_model *m, const bf_bake_keep *k, bf_model *ref, int batch, double *kl, bf_metrics *out)
{
    double kl_sum = 0, loss = 0, tok = 0, exact = 0;
    size_t rows = 0, targets = 0;
    for (int j = 0; j < k->n; j++) {
        const bf_split *v = &k->sets[j]->val;
        if (!v->rows) continue;
        double kj;
        bf_metrics mj;
        if (bf_bake_eval(m, ref, NULL, 0, v, batch, &kj, &mj)) return -1;
        kl_sum += kj * (double)mj.targets;
        loss += mj.loss * (double)mj.targets;
        tok += mj.token_acc * (double)mj.targets;
        exact += mj.exact * (double)mj.rows;
        rows += mj.rows;
        targets += mj.targets;
    }
    *kl = targets ? kl_sum / (double)targets : 0;
    out->rows = rows;
    out->targets = targets;
    out->loss = targets ? loss / (double)targets : 0;
    out->token_acc = targets ? tok / (double)targets : 0;
    out->exact = rows ? exact / (double)rows : 0;
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

/* What a step trains: the adapter's A and B, or (full baking) the model's
 * own matrices of a mask, the others' gradients cleared before the step. */
typedef struct {
    bf_adapter *a;
    bf_pset ps;                /* the trained tensors (full: a subset of the model's, in its block) */
    bf_weight **w;             /* full: their weights, whose sources a step refreshes */
    bf_param *frozen;          /* full: the model's other tensors */
    size_t nfrozen;
} bake_params;

static int params_init(bake_params *bp, bf_model *m, bf_adapter *a, unsigned full)
{
    memset(bp, 0, sizeof *bp);
    bp->a = a;
    if (a) { bp->ps = a->ps; return 0; }
    char (*names)[64] = NULL;
    size_t n = bf_lora_target_list(m, full, NULL);
    if (!n) return bf_err("the model has none of the matrices to train");
    names = bf_xcalloc(n, sizeof *names);
    bf_lora_target_list(m, full, names);
    bp->ps = bf_model_pset(m);
    bp->ps.p = bf_xcalloc(n, sizeof *bp->ps.p);
    bp->ps.np = 0;
    bp->w = bf_xcalloc(n, sizeof *bp->w);
    for (size_t j = 0; j < n; j++) bp->w[j] = bf_model_weight(m, names[j]);
    bp->frozen = bf_xcalloc(m->np, sizeof *bp->frozen);
    for (size_t k = 0; k < m->np; k++) {
        int on = 0;
        for (size_t j = 0; j < n && !on; j++) on = !strcmp(m->p[k].name, names[j]);
        if (on) bp->ps.p[bp->ps.np++] = m->p[k];
        else bp->frozen[bp->nfrozen++] = m->p[k];
    }
    free(names);
    return 0;
}

static void params_free(bake_params *bp)
{
    if (!bp->a) free(bp->ps.p);
    free(bp->w);
    free(bp->frozen);
}

/* The student's weights anew from what was trained: the adapter's, or the
 * trained matrices' own sources (the frozen ones stay as they are). */
static int params_refresh(bake_params *bp, bf_model *m)
{
    if (bp->a) return bf_adapter_refresh(bp->a, m);
    for (size_t k = 0; k < bp->ps.np; k++) {
        bf_weight *w = bp->w[k];
        if (w->src && w->src->ops->refresh(w->src, m, w)) return -1;
    }
    return 0;
}

static void params_mask(bake_params *bp, bf_model *m)
{
    for (size_t k = 0; k < bp->nfrozen; k++) memset(m->grads + bp->frozen[k].offset, 0, bp->frozen[k].numel * sizeof(float));
}

/* Two batches as one: rows a [Ba, Ta] then rows b [Bb, Tb], each padded to
 * the wider (token 0, no target).  The targeted positions keep their order:
 * a's first, then b's. */
static void stack_rows(const int32_t *xa, const int32_t *ya, int Ba, int Ta, const int32_t *xb, const int32_t *yb, int Bb,
                       int Tb, int W, int32_t *x, int32_t *y)
{
    for (int r = 0; r < Ba + Bb; r++) {
        int b = r >= Ba, T = b ? Tb : Ta;
        const int32_t *sx = b ? xb + (size_t)(r - Ba) * Tb : xa + (size_t)r * Ta;
        const int32_t *sy = b ? yb + (size_t)(r - Ba) * Tb : ya + (size_t)r * Ta;
        int32_t *dx = x + (size_t)r * W, *dy = y + (size_t)r * W;
        memcpy(dx, sx, (size_t)T * sizeof *dx);
        memcpy(dy, sy, (size_t)T * sizeof *dy);
        for (int t = T; t < W; t++) { dx[t] = 0; dy[t] = -1; }
    }
}

/* The settings that shape a bake, as "key value" words: a state resumes
 * only under the same ones (the prompt, the keep sets and the trained
 * tensors' layout by their digests). */
static void bake_config(const bf_bake_cfg *c, const bf_adapter *a, const bf_pset *ps, char *out, size_t cap)
{
    uint64_t keep = XXH3_64bits(NULL, 0);
    for (int j = 0; j < c->keep.n; j++) keep ^= bf_split_digest(&c->keep.sets[j]->train) + (uint64_t)j;
    snprintf(out, cap,
             "prompt %016" PRIx64 " steps %d batch %d lr %.17g clip %.17g samples %d max_new %d questions %d"
             " temperature %.17g seed %" PRIu64 " warmup %d schedule %s full %u keep %d keep_sets %016" PRIx64
             " keep_weight %.17g keep_ref %d params %016" PRIx64 " rank %d alpha %.17g through_quant %d strength %.17g"
             " on_nan %s",
             XXH3_64bits(c->prompt, (size_t)c->P * sizeof *c->prompt), c->steps, c->batch, c->lr, c->clip, c->samples,
             c->max_new, c->questions, c->temperature, c->seed, c->warmup, bf_schedule_names[c->schedule], c->full,
             c->keep.n, keep, c->keep.weight, c->keep.ref != NULL, bf_pset_digest(ps), a ? a->rank : 0,
             a ? a->alpha : 0, a ? a->through_quant : 0, a ? a->strength : 0, c->skip_nonfinite ? "skip" : "stop");
}

typedef struct {
    bf_pset *ps;
    bf_optim *opt;
    bf_batcher *data_b, *pool_b, *keep_b;   /* pool_b NULL without trajectories; keep_b [nkeep] */
    int nkeep;
} bake_run;

/* Every piece of a bake's state (bf_state: saved or restored alike). */
static void bake_pieces(bf_state *s, void *run)
{
    bake_run *u = run;
    char name[32];
    bf_state_floats(s, "params", u->ps->params, u->ps->n);
    bf_state_optim(s, "optim", u->opt);
    bf_state_batcher(s, "batches", u->data_b);
    if (u->pool_b) bf_state_batcher(s, "pool", u->pool_b);
    for (int j = 0; j < u->nkeep; j++) {
        snprintf(name, sizeof name, "keep%d", j + 1);
        bf_state_batcher(s, name, &u->keep_b[j]);
    }
}

int bf_bake(bf_model *student, bf_adapter *a, bf_model *teacher, const bf_dataset *d, const bf_bake_cfg *c,
            bf_bake_hook hook, void *hook_ctx)
{
    const bf_split *tr = &d->train;
    if (!tr->rows) return bf_err("the train split is empty");
    if (c->P + (int)tr->T > teacher->cfg.ctx)
        return bf_err("the prompt (%d tokens) and rows of %zu do not fit the teacher's context of %d", c->P, tr->T,
                      teacher->cfg.ctx);
    const bf_bake_keep *kp = &c->keep;
    bf_model *kref = kp->ref ? kp->ref : teacher;
    size_t Tk = 0;
    for (int j = 0; j < kp->n; j++) {
        if (!kp->sets[j]->train.rows) return bf_err("keep set %d has no train rows", j + 1);
        if (kp->sets[j]->train.T > Tk) Tk = kp->sets[j]->train.T;
    }
    bake_params bp;
    if (params_init(&bp, student, a, c->full)) return -1;
    size_t T = tr->T, V = (size_t)student->cfg.vocab, W = T > Tk ? T : Tk;
    bf_rows pool;
    bf_rows_init(&pool, T);
    if (c->samples > 0 && sample_pool(teacher, c, tr, &pool)) { bf_rows_free(&pool); params_free(&bp); return -1; }
    bf_split pool_split = {pool.x, pool.y, pool.rows, T};

    bf_optim_cfg oc;
    bf_optim_default(&oc);
    oc.kind = BF_OPTIM_ADAM;
    oc.lr = c->lr;
    oc.beta2 = 0.999;
    bf_optim opt;
    bf_optim_init(&opt, &bp.ps, &oc);
    bf_batcher data_b, pool_b, *keep_b = kp->n ? bf_xcalloc((size_t)kp->n, sizeof *keep_b) : NULL;
    bf_batcher_init(&data_b, tr, (size_t)c->batch, c->seed);
    if (pool.rows) bf_batcher_init(&pool_b, &pool_split, (size_t)c->batch, c->seed ^ 0x5a5a5a5aULL);
    for (int j = 0; j < kp->n; j++) bf_batcher_init(&keep_b[j], &kp->sets[j]->train, (size_t)c->batch, c->seed + 101 * (uint64_t)(j + 1));
    size_t bmax = (size_t)c->batch, wide = (size_t)c->P + W;
    int32_t *bx = bf_xmalloc(bmax * wide * sizeof *bx), *by = bf_xmalloc(bmax * wide * sizeof *by);
    int32_t *sx = kp->n ? bf_xmalloc(2 * bmax * W * sizeof *sx) : NULL, *sy = kp->n ? bf_xmalloc(2 * bmax * W * sizeof *sy) : NULL;
    float *ref = bf_xmalloc(bmax * (T + Tk) * V * sizeof *ref);
    double t0 = bf_now();
    int rc = 0, step0 = 0;
    char config[1024];
    uint64_t data_digest = 0;
    if (c->ckpt) {
        bake_config(c, a, &bp.ps, config, sizeof config);
        data_digest = bf_split_digest(tr);
    }
    bake_run run = {&bp.ps, &opt, &data_b, pool.rows ? &pool_b : NULL, keep_b, kp->n};
    if (bf_checkpoint_resume(c->ckpt, config, data_digest, c->steps, bake_pieces, &run, &step0)) rc = -1;
    for (int step = step0; step < c->steps && !rc; step++) {
        const int32_t *x, *y;
        int use_pool = pool.rows && (step & 1);
        bf_batcher *bt = use_pool ? &pool_b : &data_b;
        bf_batcher_next(bt, &x, &y);
        /* in a job (bf/dist.h), this rank's share of the batch's rows and of the keep batch's */
        size_t lo, hi;
        if (bf_train_share_rows((int)bt->batch, &lo, &hi)) { rc = -1; break; }
        x += lo * T;
        y += lo * T;
        int B = (int)(hi - lo), Bk = 0, Wf = (int)T;
        size_t M, Mk = 0;
        if (bf_dist_agree(teacher_logp(teacher, c->prompt, c->P, x, y, B, (int)T, bx, by, ref, &M))) { rc = -1; break; }
        if (kp->n) {   /* this step's keep batch, after the bake batch */
            bf_batcher *kb = &keep_b[step % kp->n];
            const bf_split *ks = kb->s;
            const int32_t *kx, *ky;
            bf_batcher_next(kb, &kx, &ky);
            size_t klo, khi;
            if (bf_train_share_rows((int)kb->batch, &klo, &khi)) { rc = -1; break; }
            kx += klo * ks->T;
            ky += klo * ks->T;
            Bk = (int)(khi - klo);
            if (bf_dist_agree(teacher_logp(kref, NULL, 0, kx, ky, Bk, (int)ks->T, bx, by, ref + M * V, &Mk))) { rc = -1; break; }
            Wf = (int)(T > ks->T ? T : ks->T);
            stack_rows(x, y, B, (int)T, kx, ky, Bk, (int)ks->T, Wf, sx, sy);
            x = sx;
            y = sy;
        }
        if (params_refresh(&bp, student)) { rc = -1; break; }
        bf_model_zero_grad(student);
        double kl = NAN, kkl = NAN, gn = NAN;
        /* a step that cannot be taken: stop, or with skip_nonfinite pass it by */
        double fl = bf_model_forward(student, x, y, B + Bk, Wf);
        /* the forward could not run (it said why), on any rank */
        if (bf_dist_agree(isnan(fl) && !student->last_targets ? -1 : 0)) { rc = -1; break; }
        double bad = isnan(fl);   /* on any rank */
        if (bf_dist_sum_doubles(&bad, 1)) { rc = -1; break; }
        int skip = bad > 0;
        if (skip && !c->skip_nonfinite) { rc = bf_err("the student's loss is not finite at step %d", step + 1); break; }
        if (!skip) {
            /* each KL is a mean over the whole batch's targets: a rank's
             * share of the positions weighs in as its count over the total */
            kl = bf_kl_span(student, ref, 0, M);
            kkl = bf_kl_span(student, ref, M, M + Mk);
            double wb = 1, wk = 1;
            if (bf_dist_size() > 1) {
                double v[4] = {kl * (double)M, (double)M, kkl * (double)Mk, (double)Mk};
                if (bf_dist_sum_doubles(v, 4)) { rc = -1; break; }
                kl = v[1] > 0 ? v[0] / v[1] : 0;
                kkl = v[3] > 0 ? v[2] / v[3] : 0;
                wb = v[1] > 0 ? (double)M / v[1] : 0;
                wk = v[3] > 0 ? (double)Mk / v[3] : 0;
            }
            float *dl = bf_model_dlogits(student);
            if (dl) {   /* the KLs alone: no cross-entropy on the data's answers */
                memset(dl, 0, (M + Mk) * V * sizeof *dl);
                bf_kl_span_grad(student, ref, 0, M, wb, dl);
                bf_kl_span_grad(student, ref, M, M + Mk, kp->weight * wk, dl);
            }
            if (bf_dist_agree(bf_model_backward(student))) { rc = -1; break; }
            if (!a) params_mask(&bp, student);
            if (bf_train_share_grads(&bp.ps, 1.0)) { rc = -1; break; }
            gn = bf_grad_clip(&bp.ps, c->clip);
            skip = !isfinite(gn);
            if (skip && !c->skip_nonfinite) {
                rc = bf_err("the %s gradient is not finite at step %d", a ? "adapter's" : "model's", step + 1);
                break;
            }
        }
        double lr = bake_lr(c, step);
        if (!skip && bf_optim_step(&opt, &bp.ps, lr)) { rc = -1; break; }
        bf_bake_step s = {step + 1, c->steps, kl, lr, gn, 0, kkl, 0, 0, {0}, 0, {0}, skip};
        int last = step + 1 == c->steps;
        if (d->val.rows && ((c->eval_every > 0 && (step + 1) % c->eval_every == 0) || last)) {
            if (params_refresh(&bp, student) ||
                bf_bake_eval(student, teacher, c->prompt, c->P, &d->val, c->eval_batch, &s.val_kl, &s.val) ||
                (kp->n && bf_bake_eval_keep(student, kp, kref, c->eval_batch, &s.keep_val_kl, &s.keep_val))) {
                rc = -1;
                break;
            }
            s.evaluated = 1;
        }
        s.seconds = bf_now() - t0;
        if (hook) hook(hook_ctx, &s);
        if (bf_checkpoint_after(c->ckpt, config, data_digest, step + 1, c->steps, "step", bake_pieces, &run)) { rc = -1; break; }
    }
    if (!rc && params_refresh(&bp, student)) rc = -1;
    free(bx);
    free(by);
    free(sx);
    free(sy);
    free(ref);
    bf_batcher_free(&data_b);
    if (pool.rows) bf_batcher_free(&pool_b);
    for (int j = 0; j < kp->n; j++) bf_batcher_free(&keep_b[j]);
    free(keep_b);
    bf_rows_free(&pool);
    bf_optim_free(&opt);
    params_free(&bp);
    return rc;
}
