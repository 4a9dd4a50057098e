/* optim.c — SGD, Adam, AdamW, Muon and the Grokfast filter (bf/optim.h). */
#include "bf/optim.h"
#include "bf/dist.h"
#include "bf/blas.h"
#include "bf/thread.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const bf_optim_names[] = {"adamw", "adam", "sgd", "muon", NULL};
const char *const bf_grokfast_names[] = {"off", "ema", "ma", NULL};

void bf_optim_default(bf_optim_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->kind = BF_OPTIM_ADAMW;
    c->lr = 1e-3;
    c->beta1 = 0.9;
    c->beta2 = 0.95;
    c->eps = 1e-8;
    c->momentum = 0.95;
    c->ns_steps = 5;
    c->fallback = BF_OPTIM_ADAMW;
    c->fallback_lr = -1;   /* the same as lr */
    c->grokfast = BF_GROKFAST_OFF;
    c->gf_alpha = 0.98;
    c->gf_lambda = 2.0;
    c->gf_window = 100;
}

static int uses_muon(const bf_optim *o, const bf_param *p) { return o->cfg.kind == BF_OPTIM_MUON && p->is_block_matrix; }

void bf_optim_init(bf_optim *o, const bf_pset *m, const bf_optim_cfg *c)
{
    memset(o, 0, sizeof *o);
    o->cfg = *c;
    size_t n = m->n;
    o->n = n;
    bf_optim_kind base = c->kind == BF_OPTIM_MUON ? c->fallback : c->kind;
    if (base != BF_OPTIM_SGD) {
        o->m = bf_xcalloc(n, sizeof(float));
        o->v = bf_xcalloc(n, sizeof(float));
    }
    if (c->kind == BF_OPTIM_MUON) {
        o->mom = bf_xcalloc(n, sizeof(float));
        size_t big = 0;
        for (size_t k = 0; k < m->np; k++)
            if (m->p[k].is_block_matrix) {
                size_t r = m->p[k].shape[0], cc = m->p[k].shape[1], s = r < cc ? r : cc;
                size_t need = 2 * r * cc + 3 * s * s;
                if (need > big) big = need;
            }
        o->ns_work_len = big;
        o->ns_work = bf_xmalloc((big ? big : 1) * sizeof(float));
    }
    if (c->grokfast == BF_GROKFAST_EMA) o->gf_h = bf_xcalloc(n, sizeof(float));
    if (c->grokfast == BF_GROKFAST_MA) {
        o->gf_ring = bf_xcalloc((size_t)c->gf_window * n, sizeof(float));
        o->gf_sum = bf_xcalloc(n, sizeof(double));
    }
}

void bf_optim_free(bf_optim *o)
{
    free(o->m);
    free(o->v);
    free(o->mom);
    free(o->ns_shared);
    free(o->gf_h);
    free(o->gf_ring);
    free(o->gf_sum);
    free(o->ns_work);
    memset(o, 0, sizeof *o);
}

void bf_grokfast_apply(bf_optim *o, float *g, size_t n)
{
    const bf_optim_cfg *c = &o->cfg;
    if (c->grokfast == BF_GROKFAST_EMA) {
        float a = (float)c->gf_alpha, lam = (float)c->gf_lambda;
        for (size_t j = 0; j < n; j++) {
            o->gf_h[j] = a * o->gf_h[j] + (1.0f - a) * g[j];
            g[j] += lam * o->gf_h[j];
        }
    } else if (c->grokfast == BF_GROKFAST_MA) {
        /* a ring of the last w gradients and their running sum (in double,
         * so that adding and removing over many steps does not drift) */
        size_t w = (size_t)c->gf_window, slot = (size_t)(o->gf_seen % c->gf_window);
        float *old = o->gf_ring + slot * n;
        int full = o->gf_seen >= c->gf_window;
        for (size_t j = 0; j < n; j++) {
            if (full) o->gf_sum[j] -= old[j];
            o->gf_sum[j] += g[j];
            old[j] = g[j];
        }
        o->gf_seen++;
        if (o->gf_seen >= c->gf_window) {
            double lam = c->gf_lambda / (double)w;
            for (size_t j = 0; j < n; j++) g[j] += (float)(lam * o->gf_sum[j]);
        }
    }
}

/* X ← aX + (bA + cA²)X, A = XXᵀ, on X = G/‖G‖_F, with X wide (rows ≤ cols). */
static void ns_wide(float *X, size_t r, size_t c, int steps, float *work)
{
    const float a = 3.4445f, b = -4.7750f, cc = 2.0315f;
    float *A = work, *Bm = A + r * r, *Y = Bm + r * r;   /* A, B: [r,r]; Y: [r,c] */
    for (int s = 0; s < steps; s++) {
        bf_sgemm(0, 1, r, r, c, 1.0f, X, c, X, c, 0.0f, A, r);              /* A = X·Xᵀ */
        memcpy(Bm, A, r * r * sizeof(float));
        bf_sgemm(0, 0, r, r, r, cc, A, r, A, r, b, Bm, r);                  /* B = b·A + c·A·A */
        memcpy(Y, X, r * c * sizeof(float));
        bf_sgemm(0, 0, r, c, r, 1.0f, Bm, r, X, c, a, Y, c);                /* Y = a·X + B·X */
        memcpy(X, Y, r * c * sizeof(float));
    }
}

void bf_newton_schulz(const float *G, size_t rows, size_t cols, int steps, float *O)
{
    size_t s = rows < cols ? rows : cols, n = rows * cols;
    float *X = bf_xmalloc((n + 2 * s * s + n) * sizeof(float) + 64);
    float *work = X + n;
    double ss = 0;
    for (size_t k = 0; k < n; k++) ss += (double)G[k] * G[k];
    float inv = (float)(1.0 / (sqrt(ss) + 1e-7));
    int tall = rows > cols;
    if (tall) {   /* X = Gᵀ/‖G‖, [cols, rows] */
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++) X[j * rows + i] = G[i * cols + j] * inv;
        ns_wide(X, cols, rows, steps, work);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++) O[i * cols + j] = X[j * rows + i];
    } else {
        for (size_t k = 0; k < n; k++) X[k] = G[k] * inv;
        ns_wide(X, rows, cols, steps, work);
        memcpy(O, X, n * sizeof(float));
    }
    free(X);
}

typedef struct {
    float *w, *m, *v;
    const float *g;
    bf_optim_kind kind;
    float wd, lr, b1, b2, eps, a1, a2;
} adam_job;

/* Elements [i0, i1): each on its own, so any split gives the same bits. */
static void adam_range(void *ctx, size_t i0, size_t i1, int th)
{
    const adam_job *j = ctx;
    float *restrict w = j->w, *restrict mm = j->m, *restrict vv = j->v;
    const float *restrict g = j->g;
    float wd = j->wd, flr = j->lr, b1 = j->b1, b2 = j->b2, eps = j->eps, a1 = j->a1, a2 = j->a2;
    int adam = j->kind == BF_OPTIM_ADAM, adamw = j->kind == BF_OPTIM_ADAMW;
    for (size_t i = i0; i < i1; i++) {
        float gj = adam ? g[i] + wd * w[i] : g[i];
        mm[i] = b1 * mm[i] + (1.0f - b1) * gj;
        vv[i] = b2 * vv[i] + (1.0f - b2) * gj * gj;
        float upd = (mm[i] * a1) / (sqrtf(vv[i] * a2) + eps);
        if (adamw) w[i] -= flr * wd * w[i];
        w[i] -= flr * upd;
    }
}

/* SGD, Adam and AdamW on one parameter; Adam's elementwise loop over the
 * thread pool (a step of a model of a million parameters spent 2 % of its
 * time here on one thread), from 4096 elements a thread: at 16384, d 128's
 * square matrices, a quarter of lm's parameters, went on one thread. */
static void adam_like(const bf_optim *o, bf_optim_kind kind, const bf_param *p, float *w, const float *g, float *mm,
                      float *vv, double lr)
{
    const bf_optim_cfg *c = &o->cfg;
    float wd = p->ndim == 2 ? (float)c->wd : 0.0f, flr = (float)lr;
    if (kind == BF_OPTIM_SGD) {
        for (size_t j = 0; j < p->numel; j++) w[j] -= flr * (g[j] + wd * w[j]);
        return;
    }
    double bc1 = 1.0 - pow(c->beta1, (double)o->t), bc2 = 1.0 - pow(c->beta2, (double)o->t);
    adam_job j = {w, mm, vv, g, kind, wd, flr, (float)c->beta1, (float)c->beta2, (float)c->eps,
                  (float)(1.0 / bc1), (float)(1.0 / bc2)};
    bf_parallel(p->numel, 4096, adam_range, &j);
}

static void muon_step(bf_optim *o, const bf_param *p, float *w, const float *g, float *buf, double lr)
{
    const bf_optim_cfg *c = &o->cfg;
    size_t rows = p->shape[0], cols = p->shape[1], n = p->numel;
    float mu = (float)c->momentum, *u = o->ns_work + o->ns_work_len - n;
    for (size_t j = 0; j < n; j++) {
        buf[j] = mu * buf[j] + g[j];
        u[j] = g[j] + mu * buf[j];          /* Nesterov */
    }
    bf_newton_schulz(u, rows, cols, c->ns_steps, u);
    float scale = (float)(lr * sqrt(fmax(1.0, (double)rows / (double)cols)));
    float decay = (float)(1.0 - lr * c->wd);
    for (size_t j = 0; j < n; j++) w[j] = w[j] * decay - scale * u[j];
}

/* Muon in a job (bf/dist.h): every rank holds the same gradients, so
 * instead of each orthogonalizing every matrix, each matrix goes to one rank
 * (the least loaded so far, in parameter order, by its Newton–Schulz cost
 * rows·cols·min(rows, cols)), which orthogonalizes it; the ranks then sum
 * the updates, every slot taking one rank's value and zeros (exact), and
 * all apply them.  Returns -1 (bf_err) when the sum fails. */
static int muon_shared(bf_optim *o, bf_pset *m, double lr)
{
    const bf_optim_cfg *c = &o->cfg;
    int P = bf_dist_size(), me = bf_dist_rank();
    double *load = bf_xcalloc((size_t)P, sizeof *load);
    if (!o->ns_shared) o->ns_shared = bf_xmalloc((m->n ? m->n : 1) * sizeof(float));
    float *U = o->ns_shared, mu = (float)c->momentum;
    memset(U, 0, m->n * sizeof(float));
    for (size_t k = 0; k < m->np; k++) {
        const bf_param *p = &m->p[k];
        if (!uses_muon(o, p)) continue;
        size_t rows = p->shape[0], cols = p->shape[1], n = p->numel;
        int owner = 0;
        for (int r = 1; r < P; r++)
            if (load[r] < load[owner]) owner = r;
        load[owner] += (double)rows * (double)cols * (double)(rows < cols ? rows : cols);
        float *buf = o->mom + p->offset, *u = U + p->offset;
        const float *g = m->grads + p->offset;
        for (size_t j = 0; j < n; j++) {   /* every rank keeps the momentum */
            buf[j] = mu * buf[j] + g[j];
            if (owner == me) u[j] = g[j] + mu * buf[j];   /* Nesterov */
        }
        if (owner == me) bf_newton_schulz(u, rows, cols, c->ns_steps, u);
    }
    free(load);
    if (bf_dist_sum_floats(U, m->n)) return -1;
    for (size_t k = 0; k < m->np; k++) {
        const bf_param *p = &m->p[k];
        if (!uses_muon(o, p)) continue;
        size_t rows = p->shape[0], cols = p->shape[1];
        float scale = (float)(lr * sqrt(fmax(1.0, (double)rows / (double)cols)));
        float decay = (float)(1.0 - lr * c->wd), *w = m->params + p->offset, *u = U + p->offset;
        for (size_t j = 0; j < p->numel; j++) w[j] = w[j] * decay - scale * u[j];
    }
    return 0;
}

static int muon_shared_on(const bf_optim *o) { return o->cfg.kind == BF_OPTIM_MUON && bf_dist_size() > 1 && !o->cfg.ns_each_rank; }

int bf_optim_step(bf_optim *o, bf_pset *m, double lr)
{
    const bf_optim_cfg *c = &o->cfg;
    o->t++;
    if (c->grokfast != BF_GROKFAST_OFF) bf_grokfast_apply(o, m->grads, m->n);
    /* the fallback follows the same schedule: its peak times lr/peak */
    double factor = c->lr > 0 ? lr / c->lr : 1.0;
    double fb_lr = c->fallback_lr >= 0 ? c->fallback_lr * factor : lr;
    bf_optim_kind base = c->kind == BF_OPTIM_MUON ? c->fallback : c->kind;
    for (size_t k = 0; k < m->np; k++) {
        const bf_param *p = &m->p[k];
        float *w = m->params + p->offset, *g = m->grads + p->offset;
        if (uses_muon(o, p)) {
            if (!muon_shared_on(o)) muon_step(o, p, w, g, o->mom + p->offset, lr);
        } else {
            adam_like(o, base, p, w, g, o->m ? o->m + p->offset : NULL, o->v ? o->v + p->offset : NULL,
                      c->kind == BF_OPTIM_MUON ? fb_lr : lr);
        }
    }
    return muon_shared_on(o) ? muon_shared(o, m, lr) : 0;
}
