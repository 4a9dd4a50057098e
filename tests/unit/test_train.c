/* test_train — the optimizers and the training loop against their known
 * properties: exact SGD steps, Adam's first step, decoupled vs coupled decay,
 * the schedule's end points, clipping, whole-split batches, determinism. */
#include "tap.h"

#include "bf/data.h"
#include "bf/model.h"
#include "bf/optim.h"
#include "bf/rng.h"
#include "bf/thread.h"
#include "bf/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void make_model(bf_model *m, int vocab, uint64_t seed)
{
    bf_config c;
    bf_config_default(&c);
    c.vocab = vocab; c.ctx = 6; c.d_model = 16; c.n_layer = 2; c.n_head = 2; c.d_ff = 32;
    bf_model_create(m, &c);
    bf_rng r;
    bf_rng_seed(&r, seed);
    for (size_t k = 0; k < m->np; k++) {
        float *x = m->params + m->p[k].offset;
        for (size_t j = 0; j < m->p[k].numel; j++)
            x[j] = m->p[k].ndim == 1 ? 1.0f : (float)(0.02 * bf_rng_normal(&r));
    }
}

/* A small in-memory data set: rows of T=6 random tokens, all targeted. */
static void make_data(bf_dataset *d, int vocab, size_t rows, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    d->vocab = vocab;
    d->ctx = 6;
    int32_t *x = malloc(rows * 6 * sizeof *x), *y = malloc(rows * 6 * sizeof *y);
    bf_rng r;
    bf_rng_seed(&r, seed);
    for (size_t k = 0; k < rows * 6; k++) {
        x[k] = (int32_t)bf_rng_below(&r, (uint64_t)vocab);
        y[k] = (int32_t)bf_rng_below(&r, (uint64_t)vocab);
    }
    d->train = (bf_split){x, y, rows, 6};
    d->val = (bf_split){x, y, rows, 6};
}

static void free_data(bf_dataset *d)
{
    free((void *)d->train.x);
    free((void *)d->train.y);
}

int main(void)
{
    bf_threads_set(2);
    bf_dataset d;
    make_data(&d, 50, 12, 1);

    /* A fresh model (weights 0.02·N(0,1)) predicts nearly uniformly. */
    bf_model m;
    make_model(&m, 50, 2);
    double l0 = bf_model_forward(&m, d.train.x, d.train.y, 12, 6);
    is_near(l0, log(50.0), 0.05, "fresh model's loss %.4f is ln(vocab) %.4f", l0, log(50.0));

    /* One SGD step, lr 1, no decay, no warm-up, no clipping, whole split:
     * each parameter moves by exactly minus its gradient. */
    float *before = malloc(m.n_params * sizeof(float)), *grad = malloc(m.n_params * sizeof(float));
    memcpy(before, m.params, m.n_params * sizeof(float));
    bf_model_zero_grad(&m);
    bf_model_forward(&m, d.train.x, d.train.y, 12, 6);
    bf_model_backward(&m);
    memcpy(grad, m.grads, m.n_params * sizeof(float));
    bf_train_cfg tc;
    bf_train_default(&tc);
    tc.steps = 1; tc.batch = 1000; tc.lr = 1.0; tc.warmup = 0; tc.clip = 0;
    bf_optim_cfg oc;
    bf_optim_default(&oc);
    oc.kind = BF_OPTIM_SGD;
    bf_optim o;
    { bf_pset ps_ = bf_model_pset(&m); bf_optim_init(&o, &ps_, &oc); }
    bf_train_result res;
    ok(bf_train(&m, &d, &o, &tc, &res) == 0, "one SGD step runs");
    size_t exact = 0, moved = 0;
    for (size_t k = 0; k < m.n_params; k++) {
        exact += m.params[k] == before[k] - grad[k];
        moved += grad[k] != 0;
    }
    is_int((long long)exact, (long long)m.n_params, "every parameter moved by exactly minus its gradient");
    ok(moved > m.n_params / 2, "most gradients are non-zero (%zu of %zu)", moved, m.n_params);
    bf_optim_free(&o);

    /* Adam's first step moves each parameter by lr·sign(g) (m̂/√v̂ = g/|g|);
     * AdamW also shrinks 2-D parameters by lr·wd·θ first; Adam adds wd·θ to
     * the gradient instead. */
    for (int kind = BF_OPTIM_ADAMW; kind <= BF_OPTIM_ADAM; kind++) {
        bf_model_zero_grad(&m);
        bf_model_forward(&m, d.train.x, d.train.y, 12, 6);
        bf_model_backward(&m);
        memcpy(before, m.params, m.n_params * sizeof(float));
        memcpy(grad, m.grads, m.n_params * sizeof(float));
        oc.kind = kind; oc.wd = 0.1; oc.eps = 1e-12;
        { bf_pset ps_ = bf_model_pset(&m); bf_optim_init(&o, &ps_, &oc); }
        double lr = 1e-3;
        { bf_pset ps_ = bf_model_pset(&m); bf_optim_step(&o, &ps_, lr); }
        double worst = 0;
        for (size_t k = 0; k < m.np; k++) {
            bf_param *p = &m.p[k];
            double wd = p->ndim == 2 ? 0.1 : 0.0;
            for (size_t j = p->offset; j < p->offset + p->numel; j++) {
                double g = grad[j] + (kind == BF_OPTIM_ADAM ? wd * before[j] : 0.0);
                if (fabs(g) < 1e-6) continue;
                double want = (kind == BF_OPTIM_ADAMW ? before[j] * (1 - lr * wd) : before[j]) - lr * (g > 0 ? 1 : -1);
                double err = fabs(m.params[j] - want);
                if (err > worst) worst = err;
            }
        }
        /* float rounding of θ near 0.02–1 is below 1e-7; the update itself ~1e-3 */
        ok(worst < 2e-6, "%s first step = lr·sign(g)%s (worst error %.2g)", kind == BF_OPTIM_ADAM ? "adam" : "adamw",
           kind == BF_OPTIM_ADAM ? " with g + wd·θ" : " after decoupled decay", worst);
        bf_optim_free(&o);
    }

    /* The schedule: warm-up reaches lr at its last step; cosine ends at lr/10. */
    bf_train_default(&tc);
    tc.steps = 100; tc.warmup = 10; tc.lr = 2.0;
    is_near(bf_train_lr(&tc, 0), 0.2, 1e-12, "warm-up starts at lr/warmup");
    is_near(bf_train_lr(&tc, 9), 2.0, 1e-12, "warm-up ends at lr");
    is_near(bf_train_lr(&tc, 10), 2.0, 1e-12, "cosine starts at lr");
    is_near(bf_train_lr(&tc, 99), 0.2, 1e-12, "cosine ends at lr/10");
    tc.schedule = BF_SCHED_CONSTANT;
    is_near(bf_train_lr(&tc, 99), 2.0, 1e-12, "constant stays at lr");

    /* Clipping scales the gradient to the given global norm. */
    bf_model_zero_grad(&m);
    bf_model_forward(&m, d.train.x, d.train.y, 12, 6);
    bf_model_backward(&m);
    bf_pset ps = bf_model_pset(&m);
    double n0 = bf_grad_clip(&ps, 0), n1 = bf_grad_clip(&ps, n0 / 4), n2 = bf_grad_clip(&ps, 0);
    is_near(n1, n0, 1e-9, "clip returns the norm before clipping");
    is_near(n2, n0 / 4, n0 * 1e-5, "after clipping the norm is the limit");

    /* The norm over blocks of values, the blocks on the pool: against a
     * sum in long double, and the same bits for 1, 2 and 3 threads, for
     * lengths around the block (16384) and none at all. */
    {
        static const size_t lens[] = {0, 1, 7, 16383, 16384, 16385, 3 * 16384 + 5, 100003};
        for (size_t c = 0; c < sizeof lens / sizeof lens[0]; c++) {
            size_t n = lens[c];
            float *g = malloc((n ? n : 1) * sizeof *g), *g0 = malloc((n ? n : 1) * sizeof *g0);
            long double ref = 0;
            for (size_t k = 0; k < n; k++) {
                g0[k] = (float)((double)((k * 2654435761u) % 2001) / 1000.0 - 1.0) * (k % 97 == 0 ? 1e3f : 1.0f);
                ref += (long double)g0[k] * g0[k];
            }
            bf_pset q = {NULL, 0, NULL, g, n};
            double norm[3];
            int same = 1;
            for (int t = 1; t <= 3; t++) {
                bf_threads_set(t);
                memcpy(g, g0, n * sizeof *g);
                norm[t - 1] = bf_grad_clip(&q, 0);
                same &= memcmp(&norm[t - 1], &norm[0], sizeof norm[0]) == 0;
            }
            double want = sqrt((double)ref);
            ok(fabs(norm[0] - want) <= 1e-12 * (want > 1 ? want : 1), "clip of %zu values: the norm %.17g, in long double %.17g",
               n, norm[0], want);
            ok(same, "clip of %zu values: the same norm's bits at 1, 2 and 3 threads", n);
            if (n) {
                memcpy(g, g0, n * sizeof *g);
                bf_grad_clip(&q, want / 8);
                is_near(bf_grad_clip(&q, 0), want / 8, want * 1e-6, "clip of %zu values to an eighth: the norm after",
                        n);
            }
            free(g);
            free(g0);
        }
        bf_threads_set(2);   /* as the rest of the file runs */
    }

    /* Determinism: the same seed gives the same parameters, bit for bit;
     * another seed a different batch order and different parameters. */
    bf_model_free(&m);
    float *runs[3];
    for (int run = 0; run < 3; run++) {
        make_model(&m, 50, 2);
        bf_train_default(&tc);
        tc.steps = 20; tc.batch = 5; tc.seed = run == 2 ? 9 : 4;
        bf_optim_default(&oc);
        { bf_pset ps_ = bf_model_pset(&m); bf_optim_init(&o, &ps_, &oc); }
        bf_train(&m, &d, &o, &tc, &res);
        runs[run] = malloc(m.n_params * sizeof(float));
        memcpy(runs[run], m.params, m.n_params * sizeof(float));
        bf_optim_free(&o);
        if (run < 2) bf_model_free(&m);
    }
    ok(memcmp(runs[0], runs[1], m.n_params * sizeof(float)) == 0, "same seed, same parameters");
    ok(memcmp(runs[0], runs[2], m.n_params * sizeof(float)) != 0, "another seed, other parameters");
    for (int run = 0; run < 3; run++) free(runs[run]);

    /* Training lowers the loss on what it trains on. */
    double lb = bf_model_forward(&m, d.train.x, d.train.y, 12, 6);
    bf_train_default(&tc);
    tc.steps = 200; tc.batch = 12; tc.lr = 1e-2;
    { bf_pset ps_ = bf_model_pset(&m); bf_optim_init(&o, &ps_, &oc); }
    bf_train(&m, &d, &o, &tc, &res);
    double la = bf_model_forward(&m, d.train.x, d.train.y, 12, 6);
    ok(la < lb / 4, "200 AdamW steps memorize 12 rows: loss %.3f -> %.3f", lb, la);
    bf_optim_free(&o);

    free(before);
    free(grad);
    bf_model_free(&m);
    free_data(&d);
    return tap_done();
}
