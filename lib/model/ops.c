/* ops.c — the model's operations, forward and backward (ops.h): products
 * through cblas_sgemm, the rest as loops over the thread pool. */
#include "ops.h"
#include "bf/blas.h"
#include "bf/thread.h"
#include "bf/util.h"
#include "bf/vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-5f


/* out[N,R] = in[N,K] · W[R,K]ᵀ (+ out when accumulate) */
void bf_op_matmul(float *out, const float *in, const float *W, size_t N, size_t K, size_t R, int accumulate)
{
    bf_sgemm(0, 1, N, R, K, 1.0f, in, K, W, K, accumulate ? 1.0f : 0.0f, out, R);
}

void bf_op_matmul_bwd(float *din, int din_accumulate, float *dW, const float *dout, const float *in, const float *W,
                   size_t N, size_t K, size_t R)
{
    if (dW) bf_sgemm(1, 0, R, K, N, 1.0f, dout, R, in, K, 1.0f, dW, K);
    if (din) bf_sgemm(0, 0, N, K, R, 1.0f, dout, R, W, K, din_accumulate ? 1.0f : 0.0f, din, K);
}

typedef struct {
    float *y, *mean, *rstd;
    const float *x, *w, *b;
    size_t D;
    int layer;
} norm_job;

/* RMSNorm y = x·w/sqrt(mean(x²)+ε); LayerNorm y = (x-μ)·w/sqrt(σ²+ε) + b */
static void norm_rows(void *ctx, size_t r0, size_t r1, int th)
{
    norm_job *j = ctx;
    size_t D = j->D;
    for (size_t r = r0; r < r1; r++) {
        const float *x = j->x + r * D;
        float *y = j->y + r * D;
        double mu = 0, ss = 0;
        if (j->layer) {
            for (size_t c = 0; c < D; c++) mu += x[c];
            mu /= (double)D;
        }
        for (size_t c = 0; c < D; c++) { double d = x[c] - mu; ss += d * d; }
        float rstd = (float)(1.0 / sqrt(ss / (double)D + EPS)), m = (float)mu;
        if (j->mean) j->mean[r] = m;
        j->rstd[r] = rstd;
        for (size_t c = 0; c < D; c++) y[c] = (x[c] - m) * rstd * j->w[c] + (j->b ? j->b[c] : 0.0f);
    }
}

void bf_op_norm(float *y, const float *x, const float *w, const float *b, float *mean, float *rstd, size_t N,
                     size_t D, int layer)
{
    norm_job j = {y, layer ? mean : NULL, rstd, x, w, b, D, layer};
    bf_parallel(N, 64, norm_rows, &j);
}

typedef struct {
    float *dx;
    const float *dy, *x, *w, *mean, *rstd;
    size_t D;
    int layer;
} normb_job;

static void norm_bwd_rows(void *ctx, size_t r0, size_t r1, int th)
{
    normb_job *j = ctx;
    size_t D = j->D;
    for (size_t r = r0; r < r1; r++) {
        const float *x = j->x + r * D, *dy = j->dy + r * D;
        float *dx = j->dx + r * D, rstd = j->rstd[r], mu = j->mean ? j->mean[r] : 0.0f;
        /* g = dy·w, x̂ = (x-μ)·rstd:
         *   rms:   dx = rstd·(g − x̂·mean(g·x̂))
         *   layer: dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) */
        double sg = 0, sgx = 0;
        for (size_t c = 0; c < D; c++) {
            double g = (double)dy[c] * j->w[c], xh = (double)(x[c] - mu) * rstd;
            sg += g;
            sgx += g * xh;
        }
        float mg = j->layer ? (float)(sg / (double)D) : 0.0f, mgx = (float)(sgx / (double)D);
        for (size_t c = 0; c < D; c++) {
            float g = dy[c] * j->w[c], xh = (x[c] - mu) * rstd;
            dx[c] += rstd * (g - mg - xh * mgx);
        }
    }
}

/* dx += ∂/∂x; dw += Σ dy·x̂; db += Σ dy (the sums over rows in row order) */
void bf_op_norm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, const float *mean,
                     const float *rstd, size_t N, size_t D, int layer)
{
    normb_job j = {dx, dy, x, w, layer ? mean : NULL, rstd, D, layer};
    bf_parallel(N, 64, norm_bwd_rows, &j);
    for (size_t r = 0; r < N; r++) {
        const float *xr = x + r * D, *dyr = dy + r * D;
        float mu = layer ? mean[r] : 0.0f;
        for (size_t c = 0; c < D; c++) dw[c] += dyr[c] * (xr[c] - mu) * rstd[r];
        if (db)
            for (size_t c = 0; c < D; c++) db[c] += dyr[c];
    }
}

typedef struct {
    float *x;
    const float *cos, *sin;
    size_t T, D, hd, pos0;   /* row r is at position pos0 + r % T */
    int inverse;
} rope_job;

static void rope_rows(void *ctx, size_t r0, size_t r1, int th)
{
    rope_job *j = ctx;
    size_t half = j->hd / 2;
    for (size_t r = r0; r < r1; r++) {
        size_t t = j->pos0 + r % j->T;
        const float *cs = j->cos + t * half, *sn = j->sin + t * half;
        for (size_t h = 0; h < j->D; h += j->hd) {
            float *x = j->x + r * j->D + h;
            for (size_t i = 0; i < half; i++) {
                float a = x[i], b = x[i + half], s = j->inverse ? -sn[i] : sn[i];
                x[i] = a * cs[i] - b * s;
                x[i + half] = b * cs[i] + a * s;
            }
        }
    }
}

/* Rotates q or k [N, D] in place (row r at position pos0 + r % T, heads of
 * hd); inverse rotates back (the backward of a rotation). */
void bf_op_rope(float *x, const float *cos, const float *sin, size_t N, size_t T, size_t D, size_t hd, size_t pos0,
                int inverse)
{
    rope_job j = {x, cos, sin, T, D, hd, pos0, inverse};
    bf_parallel(N, 64, rope_rows, &j);
}



/* Σ a[i]·b[i] in eight interleaved partial sums: independent chains the
 * compiler can keep in vector registers, where one running sum waits on each
 * add.  A fixed order, so the same inputs give the same bits. */
static inline float dot_f32(const float *a, const float *b, size_t n)
{
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    for (; i < n; i++) acc[i & 7] += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* The attention forward's vector parts, inlined into each build of
 * attn_fwd_tasks (vectors never cross a call, which clang requires of a
 * function built for two targets).  sc[s] = scale·Σ_i q[i]·kt[i][s] for
 * the lanes 0 … n8−1, each sum in the order i = 0 … hd−1. */
static inline __attribute__((always_inline)) void attn_scores8(float *sc, const float *q, const float *kt, size_t kpad,
                                                               size_t hd, size_t n8, float scale)
{
    for (size_t s8 = 0; s8 < n8; s8 += 8) {
        bf_v8f acc = {0};
        for (size_t i = 0; i < hd; i++) acc += q[i] * bf_v8_load(kt + i * kpad + s8);
        bf_v8_store(sc + s8, acc * scale);
    }
}

/* sc[s] = e^(sc[s] − mx) for the lanes 0 … n8−1 */
static inline __attribute__((always_inline)) void attn_exp8(float *sc, size_t n8, float mx)
{
    for (size_t s8 = 0; s8 < n8; s8 += 8) bf_v8_store(sc + s8, bf_v8_exp(bf_v8_load(sc + s8) - mx));
}

/* o[i] = Σ_s p[s]·v[s·stride + i] for i < hd, eight i at a time and the
 * last hd mod 8 one by one, each sum in the order s = 0 … n−1 */
static inline __attribute__((always_inline)) void attn_out(float *o, const float *p, const float *v, size_t stride,
                                                           size_t n, size_t hd)
{
    size_t i = 0;
    for (; i + 8 <= hd; i += 8) {
        bf_v8f acc = {0};
        for (size_t s = 0; s < n; s++) acc += p[s] * bf_v8_load(v + s * stride + i);
        bf_v8_store(o + i, acc);
    }
    for (; i < hd; i++) {
        float acc = 0;
        for (size_t s = 0; s < n; s++) acc += p[s] * v[s * stride + i];
        o[i] = acc;
    }
}

#ifdef __x86_64__
#define ATTN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ATTN_CLONES
#endif

/* One (batch, head) pair a task: softmax(q·kᵀ/√hd)·v over the keys a query
 * sees (every key of the row with full attention; 0 … pos0 + t causal).  The
 * head's keys are first copied transposed, kt[i][s], so that a query's scores
 * are hd passes over contiguous rows (vectorized over the keys, each score
 * one sum in the order i = 0 … hd−1); exponentials eight at a time through
 * bf/vmath.h.  Built for AVX2 and for any x86-64, the better chosen at start;
 * no fused multiply-adds, so both give the same bits. */
ATTN_CLONES static void attn_fwd_tasks(void *ctx, size_t t0, size_t t1, int th)
{
    bf_op_attn *j = ctx;
    size_t T = j->T, D = j->D, hd = j->hd, kT = j->kT;
    float scale = 1.0f / sqrtf((float)hd);
    size_t kpad = (kT + 7) & ~(size_t)7;
    float *kt = bf_xcalloc(hd * kpad + kpad, sizeof(float)), *sc = kt + hd * kpad;
    for (size_t task = t0; task < t1; task++) {
        size_t b = task / j->H, h = task % j->H;
        size_t nk = j->full ? T : j->pos0 + T;   /* the keys any query of the task sees */
        for (size_t s = 0; s < nk; s++) {
            const float *ks = j->k + (b * kT + s) * D + h * hd;
            for (size_t i = 0; i < hd; i++) kt[i * kpad + s] = ks[i];
        }
        float tmax = -INFINITY;
        for (size_t t = 0; t < T; t++) {
            size_t n = (j->full ? T - 1 : j->pos0 + t) + 1;   /* keys 0 … n−1 */
            size_t n8 = (n + 7) & ~(size_t)7;                 /* lanes past n are computed and ignored */
            const float *qt = j->q + (b * T + t) * D + h * hd;
            attn_scores8(sc, qt, kt, kpad, hd, n8, scale);
            float mx = -INFINITY;
            for (size_t s = 0; s < n; s++) mx = sc[s] > mx ? sc[s] : mx;
            if (mx > tmax) tmax = mx;
            attn_exp8(sc, n8, mx);
            float sum = 0;
            for (size_t s = 0; s < n; s++) sum += sc[s];
            float inv = 1.0f / sum;
            for (size_t s = 0; s < n; s++) sc[s] *= inv;
            if (j->att) {
                float *p = j->att + task * T * T + t * T;
                memcpy(p, sc, n * sizeof(float));
                for (size_t s = n; s < T; s++) p[s] = 0;
            }
            attn_out(j->out + (b * T + t) * D + h * hd, sc, j->v + b * kT * D + h * hd, D, n, hd);
        }
        if (j->task_max) j->task_max[task] = tmax;
    }
    free(kt);
}

/* dP = dout·vᵀ; dv = Pᵀ·dout; dS = P⊙(dP − rowsum(P⊙dP)); dq = dS·k/√hd; dk = dSᵀ·q/√hd */
ATTN_CLONES static void attn_bwd_tasks(void *ctx, size_t t0, size_t t1, int th)
{
    bf_op_attn *j = ctx;
    size_t T = j->T, D = j->D, hd = j->hd;
    float scale = 1.0f / sqrtf((float)hd);
    float *dp = bf_xmalloc(T * sizeof(float));
    for (size_t task = t0; task < t1; task++) {
        size_t b = task / j->H, h = task % j->H;
        const float *P = j->att + task * T * T;
        for (size_t t = 0; t < T; t++) {
            size_t last = j->full ? T - 1 : t;
            const float *p = P + t * T, *restrict dot = j->dout + (b * T + t) * D + h * hd;
            const float *restrict qt = j->q + (b * T + t) * D + h * hd;
            float *restrict dqt = j->dq + (b * T + t) * D + h * hd;
            float sum = 0;
            for (size_t s = 0; s <= last; s++) {
                const float ps = p[s], *restrict vs = j->v + (b * T + s) * D + h * hd;
                float *restrict dvs = j->dv + (b * T + s) * D + h * hd, d = dot_f32(dot, vs, hd);
                for (size_t i = 0; i < hd; i++) dvs[i] += ps * dot[i];
                dp[s] = d;
                sum += ps * d;
            }
            for (size_t s = 0; s <= last; s++) {
                float ds = p[s] * (dp[s] - sum) * scale;
                const float *restrict ks = j->k + (b * T + s) * D + h * hd;
                float *restrict dks = j->dk + (b * T + s) * D + h * hd;
                for (size_t i = 0; i < hd; i++) { dqt[i] += ds * ks[i]; dks[i] += ds * qt[i]; }
            }
        }
    }
    free(dp);
}

typedef struct {
    const float *u;
    float *g;          /* w3·x; gelu: written with Φ(u) by the forward */
    const float *da;
    float *a, *du, *dg;
    bf_act_kind act;
} act_job;

/* Element-wise activations, forward and backward, eight elements at a time
 * through bf/vmath.h (a range's tail through a padded copy, so that every
 * element gets the same arithmetic wherever a thread's range splits).  Built
 * twice, for AVX2 and for any x86-64, the better chosen when the program
 * starts; no fused multiply-adds: both do the same IEEE operations. */

static inline __attribute__((always_inline)) bf_v8f sigm8(bf_v8f x) { return 1.0f / (1.0f + bf_v8_exp(-x)); }

/* elements i … i+7 of the job's arrays, or the first n of them through tmp */
#define ACT_IN(arr, slot) (n == 8 ? bf_v8_load((arr) + i) : (memcpy(tmp[slot], (arr) + i, n * sizeof(float)), bf_v8_load(tmp[slot])))
#define ACT_OUT(arr, slot, v) \
    do { if (n == 8) bf_v8_store((arr) + i, (v)); else { bf_v8_store(tmp[slot], (v)); memcpy((arr) + i, tmp[slot], n * sizeof(float)); } } while (0)

static inline __attribute__((always_inline)) void act_fwd8(const act_job *j, size_t i, float tmp[6][8], size_t n)
{
    bf_v8f u = ACT_IN(j->u, 0);
    switch (j->act) {
    case BF_ACT_SWIGLU: ACT_OUT(j->a, 2, u * sigm8(u) * ACT_IN(j->g, 1)); break;
    case BF_ACT_RELU2: {
        bf_v8f r = bf_v8_select(u > 0.0f, u, u * 0.0f);
        ACT_OUT(j->a, 2, r * r * ACT_IN(j->g, 1));
        break;
    }
    case BF_ACT_GELU: {   /* g keeps Φ(u) for the backward */
        bf_v8f cdf = 0.5f * (1.0f + bf_v8_erf(u * (float)M_SQRT1_2));
        ACT_OUT(j->g, 1, cdf);
        ACT_OUT(j->a, 2, u * cdf);
        break;
    }
    }
}

/* swiglu: d(u·σ(u))/du = σ(u)·(1 + u·(1 − σ(u))); gelu: d(u·Φ(u))/du = Φ(u) + u·φ(u) */
static inline __attribute__((always_inline)) void act_bwd8(const act_job *j, size_t i, float tmp[6][8], size_t n)
{
    bf_v8f u = ACT_IN(j->u, 0), da = ACT_IN(j->da, 1), g = ACT_IN(j->g, 2);
    switch (j->act) {
    case BF_ACT_SWIGLU: {
        bf_v8f s = sigm8(u);
        ACT_OUT(j->du, 3, da * g * s * (1.0f + u * (1.0f - s)));
        ACT_OUT(j->dg, 4, da * u * s);
        break;
    }
    case BF_ACT_RELU2: {
        bf_v8f r = bf_v8_select(u > 0.0f, u, u * 0.0f);
        ACT_OUT(j->du, 3, da * g * 2.0f * r);
        ACT_OUT(j->dg, 4, da * r * r);
        break;
    }
    case BF_ACT_GELU:
        ACT_OUT(j->du, 3, da * (g + u * bf_v8_exp(-0.5f * u * u) * 0.3989422804014327f));
        break;
    }
}
#undef ACT_IN
#undef ACT_OUT

#ifdef __x86_64__
#define ACT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ACT_CLONES
#endif

ACT_CLONES static void act_fwd_range(void *ctx, size_t i0, size_t i1, int th)
{
    float tmp[6][8];
    for (size_t i = i0; i < i1; i += 8) act_fwd8(ctx, i, tmp, i1 - i < 8 ? i1 - i : 8);
}

ACT_CLONES static void act_bwd_range(void *ctx, size_t i0, size_t i1, int th)
{
    float tmp[6][8];
    for (size_t i = i0; i < i1; i += 8) act_bwd8(ctx, i, tmp, i1 - i < 8 ? i1 - i : 8);
}

typedef struct {
    float *logp;
    const int32_t *y, *tidx;
    size_t V;
    double *loss;   /* per row */
} lsm_job;

static void logsoftmax_rows(void *ctx, size_t r0, size_t r1, int th)
{
    lsm_job *j = ctx;
    for (size_t r = r0; r < r1; r++) {
        float *z = j->logp + r * j->V, mx = -INFINITY;
        for (size_t c = 0; c < j->V; c++) if (z[c] > mx) mx = z[c];
        double s = 0;
        for (size_t c = 0; c < j->V; c++) s += exp((double)(z[c] - mx));
        float lse = mx + (float)log(s);
        for (size_t c = 0; c < j->V; c++) z[c] -= lse;
        j->loss[r] = -(double)z[j->y[j->tidx[r]]];
    }
}

void bf_op_logsoftmax(float *logp, const int32_t *y, const int32_t *tidx, size_t M, size_t V, double *loss)
{
    lsm_job j = {logp, y, tidx, V, loss};
    bf_parallel(M, 16, logsoftmax_rows, &j);
}

void bf_op_attention(bf_op_attn *j) { bf_parallel(j->B * j->H, 1, attn_fwd_tasks, j); }

void bf_op_attention_bwd(bf_op_attn *j) { bf_parallel(j->B * j->H, 1, attn_bwd_tasks, j); }

void bf_op_act(const float *u, float *g, float *a, size_t n, bf_act_kind act)
{
    act_job j = {u, g, NULL, a, NULL, NULL, act};
    bf_parallel(n, 4096, act_fwd_range, &j);
}

void bf_op_act_bwd(const float *u, const float *g, const float *da, float *du, float *dg, size_t n, bf_act_kind act)
{
    act_job j = {u, (float *)g, da, NULL, du, dg, act};
    bf_parallel(n, 4096, act_bwd_range, &j);
}
