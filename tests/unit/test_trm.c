/* test_trm — the recursion's backward (bf/trm.h) against finite differences,
 * float and ternary (straight-through), and the recursive configuration.
 *
 * A supervision step's gradient runs through its last recursion only (the
 * T − 1 before it are detached, as the states carried between steps are).
 * So the finite differences are taken of the function that gradient
 * belongs to:
 *  - T = 1: the whole step from rec.y0, rec.z0 (the gradient reaches them);
 *  - T = 2: the last recursion from the states the first one left, those
 *    states held fixed (computed once with the unperturbed parameters).
 * Checks and tolerance as test_model_grad: per tensor a random ±1/√n
 * direction and the 3 entries of largest |g|, |g − fd| ≤ 2e-3 + 2e-2·|fd|,
 * h = 1e-3; a 10% error in a gradient is caught. */
#include "tap.h"
#include "model_fixture.h"

#include "bf/config.h"
#include "bf/model.h"
#include "bf/rng.h"
#include "bf/thread.h"
#include "bf/trm.h"
#include "bf/optim.h"
#include "bf/util.h"
#include "bf/val.h"

#include <stdlib.h>
#include <string.h>

#define B 3
#define T 5
#define V 6

static int32_t X[B * T], Y[B * T];

typedef struct {
    bf_model m;
    bf_trm r;
    float *y1, *z1;   /* the states the first recursion leaves (T = 2) */
} fixture;

/* The loss the gradient belongs to, at the current parameters. */
static double loss_at(fixture *f)
{
    if (f->m.cfg.rec_T == 1) {
        bf_trm_reset(&f->r, B);
        return bf_trm_step(&f->r, X, Y, B, 0);
    }
    size_t E = (size_t)B * T * (size_t)f->m.cfg.d_model;
    int keep = f->m.cfg.rec_T;
    memcpy(f->r.y, f->y1, E * sizeof(float));
    memcpy(f->r.z, f->z1, E * sizeof(float));
    memset(f->r.start, 0, B);
    f->m.cfg.rec_T = 1;   /* one recursion, from the held states */
    double l = bf_trm_step(&f->r, X, Y, B, 0);
    f->m.cfg.rec_T = keep;
    return l;
}

/* The analytic gradient into m.grads; for T = 2 also the held states. */
static double gradient(fixture *f)
{
    size_t E = (size_t)B * T * (size_t)f->m.cfg.d_model;
    if (f->m.cfg.rec_T == 2) {
        f->m.cfg.rec_T = 1;
        bf_trm_reset(&f->r, B);
        bf_trm_step(&f->r, X, Y, B, 0);
        memcpy(f->y1, f->r.y, E * sizeof(float));
        memcpy(f->z1, f->r.z, E * sizeof(float));
        f->m.cfg.rec_T = 2;
    }
    bf_model_zero_grad(&f->m);
    bf_trm_reset(&f->r, B);
    return bf_trm_step(&f->r, X, Y, B, 1);
}

static int fixture_make(fixture *f, const bf_config *c, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    if (bf_model_create(&f->m, c)) return -1;
    init_params(&f->m, seed);
    size_t E = (size_t)B * T * (size_t)c->d_model;
    f->y1 = calloc(E, sizeof(float));
    f->z1 = calloc(E, sizeof(float));
    return 0;
}

static int fixture_ready(fixture *f) { return bf_trm_init(&f->r, &f->m, B, T, 1); }

static void fixture_free(fixture *f)
{
    bf_trm_free(&f->r);
    bf_model_free(&f->m);
    free(f->y1);
    free(f->z1);
}

static int check(fixture *f, const char *label, int perturb_fwd)
{
    double l0 = gradient(f);
    if (!isfinite(l0)) { diag("%s: loss %g (%s)", label, l0, bf_errmsg()); return 1000; }
    bf_model *m = &f->m;
    const float h = 1e-3f;
    int fails = 0;
    bf_rng r;
    bf_rng_seed(&r, 7);
    for (size_t k = 0; k < m->np; k++) {
        bf_param *p = &m->p[k];
        bf_weight *wt = p->is_block_matrix ? bf_model_weight(m, p->name) : NULL;
        int is_q = wt && wt->src;
        if (perturb_fwd && !is_q) continue;
        float *w = perturb_fwd ? wt->w : m->params + p->offset;
        const float *g = m->grads + p->offset;
        float *v = malloc(p->numel * sizeof *v);
        double gv = 0;
        float unit = 1.0f / sqrtf((float)p->numel);
        for (size_t j = 0; j < p->numel; j++) { v[j] = (bf_rng_next(&r) & 1) ? unit : -unit; gv += g[j] * v[j]; }
        for (size_t j = 0; j < p->numel; j++) w[j] += h * v[j];
        double lp = loss_at(f);
        for (size_t j = 0; j < p->numel; j++) w[j] -= 2 * h * v[j];
        double lm = loss_at(f);
        for (size_t j = 0; j < p->numel; j++) w[j] += h * v[j];
        free(v);
        double fd = (lp - lm) / (2 * h);
        int good = fabs(gv - fd) <= 2e-3 + 2e-2 * fabs(fd);
        size_t top[3] = {0, 0, 0};
        for (int rep = 0; rep < 3; rep++) {
            size_t best = p->numel;
            for (size_t j = 0; j < p->numel; j++) {
                int used = 0;
                for (int s = 0; s < rep; s++) used |= top[s] == j;
                if (!used && (best == p->numel || fabsf(g[j]) > fabsf(g[best]))) best = j;
            }
            top[rep] = best;
        }
        for (int rep = 0; rep < 3 && rep < (int)p->numel && good; rep++) {
            size_t idx = top[rep];
            float keep = w[idx];
            w[idx] = keep + h;
            double a = loss_at(f);
            w[idx] = keep - h;
            double b = loss_at(f);
            w[idx] = keep;
            double fde = (a - b) / (2 * h);
            if (fabs(g[idx] - fde) > 2e-3 + 2e-2 * fabs(fde)) {
                good = 0;
                diag("%s %s[%zu]: backward %.6g, finite difference %.6g", label, p->name, idx, g[idx], fde);
            }
        }
        if (!good) {
            fails++;
            diag("%s %s: directional backward %.6g, finite difference %.6g", label, p->name, gv, fd);
        }
    }
    return fails;
}

static void tiny(bf_config *c, int recT)
{
    bf_config_default(c);
    c->vocab = V; c->ctx = T; c->d_model = 8; c->n_layer = 2; c->n_head = 2; c->d_ff = 12;
    c->attn = BF_ATTN_FULL;
    c->rec_n = 2; c->rec_T = recT; c->rec_sup = 4;
}

int main(void)
{
    bf_threads_set(2);
    bf_rng r;
    bf_rng_seed(&r, 3);
    for (int k = 0; k < B * T; k++) {
        X[k] = (int32_t)bf_rng_below(&r, V);
        Y[k] = (k % 3 == 0) ? -1 : (int32_t)bf_rng_below(&r, V);
    }

    /* float: the whole step (T 1) and the last recursion (T 2), variants */
    static const struct { int recT, norm, act, pos, subln, tie; } var[] = {
        {1, BF_NORM_RMS, BF_ACT_SWIGLU, BF_POS_ROPE, 0, 0},   {2, BF_NORM_RMS, BF_ACT_SWIGLU, BF_POS_ROPE, 0, 0},
        {1, BF_NORM_LAYER, BF_ACT_GELU, BF_POS_LEARNED, 1, 1}, {2, BF_NORM_LAYER, BF_ACT_RELU2, BF_POS_LEARNED, 1, 0},
    };
    for (size_t v = 0; v < sizeof var / sizeof var[0]; v++) {
        bf_config c;
        tiny(&c, var[v].recT);
        c.norm = var[v].norm; c.act = var[v].act; c.pos = var[v].pos; c.subln = var[v].subln; c.tie_embed = var[v].tie;
        char label[96];
        snprintf(label, sizeof label, "n 2 T %d %s/%s/%s%s%s", var[v].recT, bf_norm_names[c.norm], bf_act_names[c.act],
                 bf_pos_names[c.pos], c.subln ? "/subln" : "", c.tie_embed ? "/tie" : "");
        fixture f;
        if (!ok(fixture_make(&f, &c, 11 + v) == 0 && fixture_ready(&f) == 0, "recursive model %s", label)) continue;
        is_int(check(&f, label, 0), 0, "recursion backward = finite differences: %s", label);
        bf_param *y0 = bf_model_param(&f.m, "rec.y0");
        double gy = 0;
        for (size_t j = 0; j < y0->numel; j++) gy += fabs(f.m.grads[y0->offset + j]);
        if (var[v].recT == 1) ok(gy > 0, "%s: rec.y0 gets a gradient (the step starts from it)", label);
        else ok(gy == 0, "%s: rec.y0 gets none (the recursion with gradient starts from carried states)", label);
        fixture_free(&f);
    }

    /* ternary, straight-through: the latent's gradient is d(loss)/d(W_eff) */
    for (int recT = 1; recT <= 2; recT++) {
        bf_config c;
        tiny(&c, recT);
        c.act_bits = 0;
        fixture f;
        fixture_make(&f, &c, 41);
        bf_qspec q = {.method = BF_Q_ABSMEAN, .pack = BF_TQ2};
        for (size_t k = 0; k < f.m.np; k++)
            if (f.m.p[k].is_block_matrix) bf_model_set_ternary(&f.m, bf_model_weight(&f.m, f.m.p[k].name), &q);
        bf_model_refresh(&f.m);
        fixture_ready(&f);
        char label[64];
        snprintf(label, sizeof label, "ternary n 2 T %d", recT);
        is_int(check(&f, label, 1), 0, "latent gradient = d(loss)/d(dequantized weight): %s", label);
        fixture_free(&f);
    }
    {   /* int8 activations: gradients still reach the latents, finite */
        bf_config c;
        tiny(&c, 2);
        fixture f;
        fixture_make(&f, &c, 43);
        bf_qspec q = {.method = BF_Q_ABSMEAN, .pack = BF_TQ2};
        for (size_t k = 0; k < f.m.np; k++)
            if (f.m.p[k].is_block_matrix) bf_model_set_ternary(&f.m, bf_model_weight(&f.m, f.m.p[k].name), &q);
        bf_model_refresh(&f.m);
        fixture_ready(&f);
        double l = gradient(&f);
        double norm = 0;
        bf_param *wq = bf_model_param(&f.m, "blk.0.wq");
        for (size_t j = 0; j < wq->numel; j++) norm += fabs(f.m.grads[wq->offset + j]);
        ok(isfinite(l) && norm > 0, "ternary act_bits 8: finite loss %.4f, gradient reaches blk.0.wq's latent", l);
        fixture_free(&f);
    }

    /* the check can fail: a 10% error in one gradient is caught */
    {
        bf_config c;
        tiny(&c, 1);
        fixture f;
        fixture_make(&f, &c, 5);
        fixture_ready(&f);
        gradient(&f);
        bf_param *p = bf_model_param(&f.m, "blk.1.w2");
        float *w = f.m.params + p->offset, *g = f.m.grads + p->offset;
        double gv = 0;
        for (size_t j = 0; j < p->numel; j++) gv += 1.1 * g[j];
        for (size_t j = 0; j < p->numel; j++) w[j] += 1e-3f;
        double lp = loss_at(&f);
        for (size_t j = 0; j < p->numel; j++) w[j] -= 2e-3f;
        double lm = loss_at(&f);
        double fd = (lp - lm) / 2e-3;
        ok(fabs(gv - fd) > 2e-3 + 2e-2 * fabs(fd), "a 10%% error in a gradient is caught (%.5g vs %.5g)", gv, fd);
        fixture_free(&f);
    }

    /* same inputs, same bits; the plain forward refuses; evaluation */
    {
        bf_config c;
        tiny(&c, 2);
        fixture f;
        fixture_make(&f, &c, 9);
        fixture_ready(&f);
        double a = gradient(&f), b = gradient(&f);
        ok(a == b && isfinite(a), "a supervision step gives the same loss twice (%.9g)", a);
        double lf = bf_model_forward(&f.m, X, Y, B, T);
        ok(isnan(lf), "bf_model_forward refuses a recursive model: %s", bf_errmsg());
        bf_split s = {X, Y, B, T};
        bf_trm_metrics mt;
        int erc = bf_trm_eval(&f.m, &s, 2, 1.0, 3, 1, &mt);
        ok(erc == 0 && mt.mean_steps == 3, "never halting: every row takes max-steps (%.2f)", mt.mean_steps);
        ok(mt.exact_at[0] >= 0 && mt.exact_at[1] >= 0 && mt.exact_at[2] == -1, "the table stops at max-steps");
        ok(bf_trm_eval(&f.m, &s, 2, 0.0, 3, 0, &mt) == 0 && mt.mean_steps == 1, "halting at P = 0: one step each");
        fixture_free(&f);
    }

    /* the rolling batch: a puzzle that halts, or has had sup steps, makes room
     * for the next one; mean_steps counts a finished puzzle's steps */
    for (int halts = 0; halts <= 1; halts++) {
        bf_config c;
        tiny(&c, 1);
        fixture f;
        fixture_make(&f, &c, 13);
        bf_param *hb = bf_model_param(&f.m, "halt.b"), *hw = bf_model_param(&f.m, "halt.w");
        memset(f.m.params + hw->offset, 0, hw->numel * sizeof(float));
        f.m.params[hb->offset] = halts ? 50.0f : -50.0f;
        bf_dataset d;
        memset(&d, 0, sizeof d);
        d.vocab = V;
        d.ctx = T;
        d.train = (bf_split){X, Y, B, T};
        bf_pset ps = bf_model_pset(&f.m);
        bf_optim_cfg oc;
        bf_optim_default(&oc);
        oc.kind = BF_OPTIM_SGD;
        bf_optim o;
        bf_optim_init(&o, &ps, &oc);
        bf_train_cfg tc = {0};
        tc.steps = 9;
        tc.batch = 2;
        tc.lr = 0;   /* the halting head stays as set */
        tc.eval_batch = 2;
        tc.seed = 1;
        bf_train_result res;
        double ms = -1;
        int trc = bf_trm_train(&f.m, &d, &o, &tc, &res, &ms);
        /* halting: every puzzle leaves after one step; never: after sup (4) steps, 2 rows x 2 */
        ok(trc == 0 && res.steps_done == 9 && ms == (halts ? 1.0 : 4.0),
           "rolling batch, %s: 9 optimizer steps, %.2f steps a finished puzzle (%s)", halts ? "every puzzle halts" : "none halts",
           ms, trc ? bf_errmsg() : "ok");
        bf_optim_free(&o);
        fixture_free(&f);
    }

    /* configuration: the meta key only on recursive models; bad ones refused */
    {
        bf_config c, back;
        tiny(&c, 2);
        bf_val *meta = bf_val_map();
        bf_config_to_meta(&c, meta);
        ok(bf_config_from_meta(meta, &back) == 0 && back.rec_n == 2 && back.rec_T == 2 && back.rec_sup == 4,
           "recursion {n, T, sup} round-trips through the meta");
        bf_val *rec = (bf_val *)bf_val_get(meta, "recursion");
        bf_val_set(rec, "n", bf_val_int(0));
        int frc = bf_config_from_meta(meta, &back);
        ok(frc == -1, "recursion n 0 refused: %s", bf_errmsg());
        bf_val_set(meta, "recursion", bf_val_int(3));
        frc = bf_config_from_meta(meta, &back);
        ok(frc == -1, "recursion not a map refused: %s", bf_errmsg());
        bf_val_free(meta);
        c.rec_n = c.rec_T = c.rec_sup = 0;
        meta = bf_val_map();
        bf_config_to_meta(&c, meta);
        ok(!bf_val_get(meta, "recursion"), "no 'recursion' key on a plain model");
        size_t n;
        bf_param_spec *sp = bf_config_params(&c, &n);
        ok(bf_config_param_count(&c) > 0, "plain parameter count");
        free(sp);
        bf_val_free(meta);
        tiny(&c, 2);
        sp = bf_config_params(&c, &n);
        uint64_t sum = 0;
        for (size_t k = 0; k < n; k++) sum += sp[k].shape[0] * (sp[k].ndim == 2 ? sp[k].shape[1] : 1);
        is_int((long long)sum, (long long)bf_config_param_count(&c), "the count includes rec.y0, rec.z0, halt.w, halt.b");
        free(sp);
    }
    return tap_done();
}
