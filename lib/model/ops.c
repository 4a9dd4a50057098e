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

/* the row and element loops, built for AVX2 and for any x86-64, chosen at
 * load (their vectors are eight floats) */
#ifdef __x86_64__
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

/* eight partial sums added in a fixed tree */
static inline float sum8(const float acc[8])
{
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
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
    return sum8(acc);
}

/* y += a·x over n floats, eight at a time (y and x apart, and a trip count
 * in whole vectors: what the compiler needs to use vectors) */
static inline __attribute__((always_inline)) void axpy_f32(float *restrict y, float a, const float *restrict x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) y[i + k] += a * x[i + k];
    for (; i < n; i++) y[i] += a * x[i];
}

/* max of x[0 … n−1], eight lanes at a time (max is exact in any order) */
static inline __attribute__((always_inline)) float max_f32(const float *x, size_t n)
{
    float m[8];
    for (int k = 0; k < 8; k++) m[k] = -INFINITY;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
    for (; i < n; i++) m[i & 7] = x[i] > m[i & 7] ? x[i] : m[i & 7];
    float mx = m[0];
    for (int k = 1; k < 8; k++) mx = m[k] > mx ? m[k] : mx;
    return mx;
}

/* Σ x[0 … n−1] in eight interleaved partial sums, in a fixed order */
static inline __attribute__((always_inline)) float sum_f32(const float *x, size_t n)
{
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += x[i + k];
    for (; i < n; i++) acc[i & 7] += x[i];
    return sum8(acc);
}


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

/* RMSNorm y = x·w/sqrt(mean(x²)+ε); LayerNorm y = (x-μ)·w/sqrt(σ²+ε) + b.
 * The row's sums in eight partial sums, the loops eight lanes at a time: a
 * norm of d 128 had cost a training step as much as its attention's
 * softmax, one element at a time.  The sums stay in double, so that a row
 * of huge values (1e20: its squares overflow a float) still normalizes. */
CLONES static void norm_rows(void *ctx, size_t r0, size_t r1, int th)
{
    norm_job *j = ctx;
    size_t D = j->D, D8 = D / 8 * 8;
    for (size_t r = r0; r < r1; r++) {
        const float *x = j->x + r * D;
        float *y = j->y + r * D;
        float mu = j->layer ? (float)(bf_sum_dev_f64(x, 0.0f, D, 1) / (double)D) : 0.0f;
        float rstd = (float)(1.0 / sqrt(bf_sum_dev_f64(x, mu, D, 2) / (double)D + EPS));
        if (j->mean) j->mean[r] = mu;
        j->rstd[r] = rstd;
        size_t c;
        for (c = 0; c < D8; c += 8)
            for (int k = 0; k < 8; k++) y[c + k] = (x[c + k] - mu) * rstd * j->w[c + k];
        for (; c < D; c++) y[c] = (x[c] - mu) * rstd * j->w[c];
        if (j->b) {
            for (c = 0; c < D8; c += 8)
                for (int k = 0; k < 8; k++) y[c + k] += j->b[c + k];
            for (; c < D; c++) y[c] += j->b[c];
        }
    }
}

void bf_op_norm(float *y, const float *x, const float *w, const float *b, float *mean, float *rstd, size_t N,
                     size_t D, int layer)
{
    norm_job j = {y, layer ? mean : NULL, rstd, x, w, b, D, layer};
    bf_parallel(N, 64, norm_rows, &j);
}

typedef struct {
    float *dx, *dw, *db;
    const float *dy, *x, *w, *mean, *rstd;
    size_t N, D;
    int layer;
} normb_job;

CLONES static void norm_bwd_rows(void *ctx, size_t r0, size_t r1, int th)
{
    normb_job *j = ctx;
    size_t D = j->D, D8 = D / 8 * 8;
    for (size_t r = r0; r < r1; r++) {
        const float *x = j->x + r * D, *dy = j->dy + r * D;
        float *dx = j->dx + r * D, rstd = j->rstd[r], mu = j->mean ? j->mean[r] : 0.0f;
        /* g = dy·w, x̂ = (x-μ)·rstd:
         *   rms:   dx = rstd·(g − x̂·mean(g·x̂))
         *   layer: dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) */
        double sg[8] = {0}, sgx[8] = {0};
        size_t c = 0;
        for (; c < D8; c += 8)
            for (int k = 0; k < 8; k++) {
                double g = (double)dy[c + k] * j->w[c + k];
                sg[k] += g;
                sgx[k] += g * ((x[c + k] - mu) * rstd);
            }
        for (; c < D; c++) {
            double g = (double)dy[c] * j->w[c];
            sg[c & 7] += g;
            sgx[c & 7] += g * ((x[c] - mu) * rstd);
        }
        float mg = j->layer ? (float)(bf_sum8_f64(sg) / (double)D) : 0.0f, mgx = (float)(bf_sum8_f64(sgx) / (double)D);
        for (c = 0; c < D8; c += 8)
            for (int k = 0; k < 8; k++) {
                float g = dy[c + k] * j->w[c + k], xh = (x[c + k] - mu) * rstd;
                dx[c + k] += rstd * (g - mg - xh * mgx);
            }
        for (; c < D; c++) {
            float g = dy[c] * j->w[c], xh = (x[c] - mu) * rstd;
            dx[c] += rstd * (g - mg - xh * mgx);
        }
    }
}

/* dw[c] += dy[c]·(x[c] − mu)·rstd over n columns, eight at a time (one at a
 * time it had been 1 % of an lm training step, perf) */
static inline __attribute__((always_inline)) void norm_dw_run(float *restrict dw, const float *restrict dy,
                                                              const float *restrict x, float mu, float rstd, size_t n)
{
    size_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int k = 0; k < 8; k++) dw[c + k] += dy[c + k] * (x[c + k] - mu) * rstd;
    for (; c < n; c++) dw[c] += dy[c] * (x[c] - mu) * rstd;
}

/* the weights' gradients, columns [c0, c1) over every row in row order (the
 * same sums whichever thread takes a column) */
CLONES static void norm_bwd_cols(void *ctx, size_t c0, size_t c1, int th)
{
    normb_job *j = ctx;
    size_t D = j->D;
    for (size_t r = 0; r < j->N; r++) {
        const float *xr = j->x + r * D, *dyr = j->dy + r * D;
        float mu = j->mean ? j->mean[r] : 0.0f, rstd = j->rstd[r];
        norm_dw_run(j->dw + c0, dyr + c0, xr + c0, mu, rstd, c1 - c0);
        if (j->db) axpy_f32(j->db + c0, 1.0f, dyr + c0, c1 - c0);
    }
}

/* dx += ∂/∂x; dw += Σ dy·x̂; db += Σ dy (the sums over rows in row order) */
void bf_op_norm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, const float *mean,
                     const float *rstd, size_t N, size_t D, int layer)
{
    normb_job j = {dx, dw, db, dy, x, w, layer ? mean : NULL, rstd, N, D, layer};
    bf_parallel(N, 64, norm_bwd_rows, &j);
    bf_parallel(D, 32, norm_bwd_cols, &j);
}

typedef struct {
    float *x;
    const float *cos, *sin;
    size_t T, D, hd, pos0;   /* row r is at position pos0 + r % T */
    int inverse;
} rope_job;

/* (a, b) ← (a·c − b·s, b·c + a·s) with s = sg·sn, for the first n8 (a
 * multiple of 8) elements of a and b (vectors never cross a call, which
 * clang requires of a function built for two targets) */
static inline __attribute__((always_inline)) void rope_lanes8(float *a, float *b, const float *c, const float *sn,
                                                             float sg, size_t n8)
{
    for (size_t i = 0; i < n8; i += 8) {
        bf_v8f va = bf_v8_load(a + i), vb = bf_v8_load(b + i), vc = bf_v8_load(c + i), vs = bf_v8_load(sn + i) * sg;
        bf_v8_store(a + i, va * vc - vb * vs);
        bf_v8_store(b + i, vb * vc + va * vs);
    }
}

CLONES static void rope_rows(void *ctx, size_t r0, size_t r1, int th)
{
    rope_job *j = ctx;
    size_t half = j->hd / 2, h8 = half / 8 * 8;
    float sg = j->inverse ? -1.0f : 1.0f;
    for (size_t r = r0; r < r1; r++) {
        size_t t = j->pos0 + r % j->T;
        const float *cs = j->cos + t * half, *sn = j->sin + t * half;
        for (size_t h = 0; h < j->D; h += j->hd) {
            float *x = j->x + r * j->D + h;
            rope_lanes8(x, x + half, cs, sn, sg, h8);
            for (size_t i = h8; i < half; i++) {
                float a = x[i], b = x[i + half], s = sg * sn[i];
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

/* s[k] = e^(s[k] − mx) for k < n8 (vectors never cross a call, which clang
 * requires of a function built for two targets) */
static inline __attribute__((always_inline)) void exp_lanes8(float *s, size_t n8, float mx)
{
    for (size_t k = 0; k < n8; k += 8) bf_v8_store(s + k, bf_v8_exp(bf_v8_load(s + k) - mx));
}

/* Row t of a task's scores s[0 … ld−1] (scaled logits for the n keys it
 * sees, then anything) → its probabilities, zero past n: the softmax, with
 * exponentials eight at a time through bf/vmath.h (ld a multiple of 8, so
 * the lanes past n stay in the row).  Returns the row's largest logit. */
CLONES static float softmax_row(float *s, size_t n, size_t ld)
{
    float mx = max_f32(s, n);
    exp_lanes8(s, (n + 7) & ~(size_t)7, mx);
    float inv = 1.0f / sum_f32(s, n);
    for (size_t k = 0; k < n; k++) s[k] *= inv;
    memset(s + n, 0, (ld - n) * sizeof *s);
    return mx;
}

/* A cached forward's task with at most this many queries (decoding's one a
 * token) makes its products in loops of its own (scores_loops,
 * outputs_loops): sgemm would first copy q, k and v into its
 * packed panels, and for one query that copy costs more than the product.
 * Decoding (bf-eval --incremental, d 1024, 8 layers, perf): the attention's
 * sgemm calls with their packing had taken 6.1 % of the samples, the loops
 * take 3.9 %. */
#define ATTN_LOOP_T 4

/* The keys query t of a task sees: 0 … keys_seen − 1 (all nk of its row
 * with full attention). */
static inline size_t keys_seen(const bf_op_attn *j, size_t nk, size_t t) { return j->full ? nk : j->pos0 + t + 1; }

/* A few queries' scaled logits S [T, ld], each over the keys it sees (the
 * lanes past them −∞, so that softmax_row's whole vectors give zero). */
CLONES static void scores_loops(const bf_op_attn *j, const float *q, const float *k, float *S, size_t nk, size_t ld,
                                float scale)
{
    for (size_t t = 0; t < j->T; t++) {
        size_t n = keys_seen(j, nk, t);
        float *s = S + t * ld;
        for (size_t c = 0; c < n; c++) s[c] = scale * dot_f32(q + t * j->D, k + c * j->D, j->hd);
        for (size_t c = n; c < ld; c++) s[c] = -INFINITY;
    }
}

/* out[t] = Σ_s P[t, s]·v[s] over the keys query t sees, in key order */
CLONES static void outputs_loops(const bf_op_attn *j, const float *P, const float *v, float *out, size_t nk, size_t ld)
{
    for (size_t t = 0; t < j->T; t++) {
        float *o = out + t * j->D;
        size_t n = keys_seen(j, nk, t);
        for (size_t i = 0; i < j->hd; i++) o[i] = 0.0f;
        for (size_t c = 0; c < n; c++) axpy_f32(o, P[t * ld + c], v + c * j->D, j->hd);
    }
}

/* One (batch, head) pair a task, its products through one-thread sgemm
 * calls or, for a cached forward's few queries, loops (the task owns them,
 * so the bits do not depend on the thread count): S = q·kᵀ/√hd over every key of the task [T, nk]; each row's
 * softmax over the keys its query sees (all of the row with full
 * attention, 0 … pos0 + t causal), zero past them; out = P·v.  The masked
 * part of the products is computed and multiplied by zero: at a row of 128
 * that costs less than leaving sgemm for a triangle. */
static void attn_fwd_tasks(void *ctx, size_t t0, size_t t1, int th)
{
    bf_op_attn *j = ctx;
    size_t T = j->T, D = j->D, hd = j->hd, kT = j->kT;
    size_t nk = j->full ? T : j->pos0 + T;   /* the keys any query of a task sees */
    size_t ld = (nk + 7) & ~(size_t)7;
    float scale = 1.0f / sqrtf((float)hd);
    float *S = bf_xmalloc(T * ld * sizeof *S);
    int loops = T <= ATTN_LOOP_T && !j->att;   /* a cached forward's few queries */
    for (size_t task = t0; task < t1; task++) {
        size_t b = task / j->H, h = task % j->H;
        const float *q = j->q + b * T * D + h * hd, *k = j->k + b * kT * D + h * hd, *v = j->v + b * kT * D + h * hd;
        float *out = j->out + b * T * D + h * hd;
        if (loops) scores_loops(j, q, k, S, nk, ld, scale);
        else bf_sgemm_serial(0, 1, T, nk, hd, scale, q, D, k, D, 0.0f, S, ld);
        float tmax = -INFINITY;
        for (size_t t = 0; t < T; t++) {
            float mx = softmax_row(S + t * ld, keys_seen(j, nk, t), ld);
            if (mx > tmax) tmax = mx;
            if (j->att) memcpy(j->att + (task * T + t) * T, S + t * ld, T * sizeof *S);   /* no cache: nk = T */
        }
        if (loops) outputs_loops(j, S, v, out, nk, ld);
        else bf_sgemm_serial(0, 0, T, hd, nk, 1.0f, S, ld, v, D, 0.0f, out, D);
        if (j->task_max) j->task_max[task] = tmax;
    }
    free(S);
}

/* dS = P⊙(dP − rowsum(P⊙dP))/√hd for one task's rows, zero where P is */
CLONES static void softmax_bwd_rows(float *dS, const float *P, size_t T, int full, float scale)
{
    for (size_t t = 0; t < T; t++) {
        size_t n = full ? T : t + 1;
        const float *p = P + t * T;
        float *d = dS + t * T, sum = dot_f32(p, d, n);
        for (size_t s = 0; s < n; s++) d[s] = p[s] * (d[s] - sum) * scale;
        memset(d + n, 0, (T - n) * sizeof *d);
    }
}

/* dP = dout·vᵀ; dv = Pᵀ·dout; dS = P⊙(dP − rowsum(P⊙dP))/√hd;
 * dq = dS·k; dk = dSᵀ·q — per task, as the forward (no cache: kT = T).
 * A task's (row, head) slices of dq, dk and dv are its own, so it writes
 * them (β = 0) where the callers had zeroed all three first, one thread
 * alone, three passes over [N, D] a layer. */
static void attn_bwd_tasks(void *ctx, size_t t0, size_t t1, int th)
{
    bf_op_attn *j = ctx;
    size_t T = j->T, D = j->D, hd = j->hd;
    float scale = 1.0f / sqrtf((float)hd);
    float *dS = bf_xmalloc(T * T * sizeof *dS);
    for (size_t task = t0; task < t1; task++) {
        size_t b = task / j->H, h = task % j->H, at = b * T * D + h * hd;
        const float *P = j->att + task * T * T;
        bf_sgemm_serial(0, 1, T, T, hd, 1.0f, j->dout + at, D, j->v + at, D, 0.0f, dS, T);
        bf_sgemm_serial(1, 0, T, hd, T, 1.0f, P, T, j->dout + at, D, 0.0f, j->dv + at, D);
        softmax_bwd_rows(dS, P, T, j->full, scale);
        bf_sgemm_serial(0, 0, T, hd, T, 1.0f, dS, T, j->k + at, D, 0.0f, j->dq + at, D);
        bf_sgemm_serial(1, 0, T, hd, T, 1.0f, dS, T, j->q + at, D, 0.0f, j->dk + at, D);
    }
    free(dS);
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

CLONES static void act_fwd_range(void *ctx, size_t i0, size_t i1, int th)
{
    float tmp[6][8];
    for (size_t i = i0; i < i1; i += 8) act_fwd8(ctx, i, tmp, i1 - i < 8 ? i1 - i : 8);
}

CLONES static void act_bwd_range(void *ctx, size_t i0, size_t i1, int th)
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

/* Σ exp(z[0 … 7] − mx), and d[0 … 7] = exp(lp[0 … 7])/m: the loss's eights
 * (vectors never cross a call of a function built for two targets, which
 * clang requires) */
static inline __attribute__((always_inline)) float exp_sum8(const float *z, float mx)
{
    float e[8];
    bf_v8_store(e, bf_v8_exp(bf_v8_load(z) - mx));
    return sum8(e);
}

static inline __attribute__((always_inline)) void exp_div8(float *d, const float *lp, float m)
{
    bf_v8_store(d, bf_v8_exp(bf_v8_load(lp)) / m);
}

/* The loss's rows, eight logits at a time: exp through bf_v8_exp (≤ 2 ulp;
 * a row's last V mod 8 through libm's expf), each eight's sum added in
 * double.  One logit at a time in double, exp and the gradient's expf had
 * taken lm's step (V 256) 2.6 % of its samples. */
CLONES static void logsoftmax_rows(void *ctx, size_t r0, size_t r1, int th)
{
    lsm_job *j = ctx;
    size_t V = j->V, V8 = V / 8 * 8;
    for (size_t r = r0; r < r1; r++) {
        float *z = j->logp + r * V, mx = max_f32(z, V);
        double s = 0;
        size_t c = 0;
        for (; c < V8; c += 8) s += (double)exp_sum8(z + c, mx);
        for (; c < V; c++) s += (double)expf(z[c] - mx);
        float lse = mx + (float)log(s);
        for (c = 0; c < V; c++) z[c] -= lse;
        j->loss[r] = -(double)z[j->y[j->tidx[r]]];
    }
}

void bf_op_logsoftmax(float *logp, const int32_t *y, const int32_t *tidx, size_t M, size_t V, double *loss)
{
    lsm_job j = {logp, y, tidx, V, loss};
    bf_parallel(M, 16, logsoftmax_rows, &j);
}

typedef struct {
    float *d;
    const float *logp;
    const int32_t *y, *tidx;
    size_t V;
    float count;
} xent_job;

/* (softmax − onehot)/count, eight at a time as the loss's rows */
CLONES static void xent_grad_rows(void *ctx, size_t r0, size_t r1, int th)
{
    const xent_job *j = ctx;
    size_t V = j->V, V8 = V / 8 * 8;
    float m = j->count;
    for (size_t r = r0; r < r1; r++) {
        const float *lp = j->logp + r * V;
        float *d = j->d + r * V;
        size_t c = 0;
        for (; c < V8; c += 8) exp_div8(d + c, lp + c, m);
        for (; c < V; c++) d[c] = expf(lp[c]) / m;
        d[j->y[j->tidx[r]]] -= 1.0f / m;
    }
}

void bf_op_xent_grad(float *dlogits, const float *logp, const int32_t *y, const int32_t *tidx, size_t M, size_t V,
                     float count)
{
    xent_job j = {dlogits, logp, y, tidx, V, count};
    bf_parallel(M, bf_parallel_grain(V * 16), xent_grad_rows, &j);
}

typedef struct {
    float *dst;
    const float *src;
} copy_job;

static void copy_range(void *ctx, size_t i0, size_t i1, int th)
{
    const copy_job *j = ctx;
    (void)th;
    if (j->src) memcpy(j->dst + i0, j->src + i0, (i1 - i0) * sizeof(float));
    else memset(j->dst + i0, 0, (i1 - i0) * sizeof(float));
}

void bf_op_copy(float *dst, const float *src, size_t n)
{
    copy_job j = {dst, src};
    bf_parallel(n, 16384, copy_range, &j);
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
