/* compress_float.c — the "int8" and "vq" methods (bf/compress.h,
 * bf-compress(1)).
 *
 * int8 member: rows × F32 scale (absmax/127 of the row), then rows·cols
 * int8 values round(w/scale); a row of zeros has scale 0.
 *
 * vq member: u16 k, u8 dim (BF_VQ_DIM), u8 0, k·dim F16 codebook entries,
 * then one index byte a vector of dim consecutive values (row-major, the last
 * vector padded with zeros).  k = min(BF_VQ_K, vectors).  The codebook is
 * k-means: k-means++ seeding (bf/rng.h), BF_VQ_ITERS Lloyd iterations (sums
 * in double in vector order; an empty cluster keeps its centre), centres
 * rounded to F16 and every vector assigned once more to the rounded ones.
 * Assignments go over the thread pool, each vector to one thread, so the
 * bytes do not depend on the thread count. */
#include "bf/compress.h"
#include "bf/error.h"
#include "bf/rng.h"
#include "bf/tensor.h"
#include "bf/thread.h"
#include "bf/util.h"
#include "bf/bytes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void put_f32(uint8_t *p, float f) { uint32_t u; memcpy(&u, &f, 4); bf_put_le32(p, u); }
static float get_f32(const uint8_t *p) { uint32_t u = bf_get_le32(p); float f; memcpy(&f, &u, 4); return f; }

/* ------------------------------------------------------------------- int8 */

uint64_t bf_int8_bytes(uint64_t rows, uint64_t cols) { return rows * 4 + rows * cols; }

void bf_int8_encode(const float *w, uint64_t rows, uint64_t cols, uint8_t *out)
{
    int8_t *q = (int8_t *)(out + rows * 4);
    for (uint64_t r = 0; r < rows; r++) {
        const float *x = w + r * cols;
        float amax = 0;
        for (uint64_t c = 0; c < cols; c++)
            if (fabsf(x[c]) > amax) amax = fabsf(x[c]);
        float s = amax / 127.0f;
        put_f32(out + r * 4, s);
        for (uint64_t c = 0; c < cols; c++) {
            float v = s > 0 ? nearbyintf(x[c] / s) : 0;
            q[r * cols + c] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
    }
}

int bf_int8_decode(const uint8_t *in, size_t len, float *w, uint64_t rows, uint64_t cols)
{
    if (len != bf_int8_bytes(rows, cols))
        return bf_err("int8 member of %zu bytes, not %llu", len, (unsigned long long)bf_int8_bytes(rows, cols));
    const int8_t *q = (const int8_t *)(in + rows * 4);
    for (uint64_t r = 0; r < rows; r++) {
        float s = get_f32(in + r * 4);
        if (!isfinite(s) || s < 0 || !isfinite(s * 128.0f)) return bf_err("int8 member: row %llu has a bad scale", (unsigned long long)r);
        for (uint64_t c = 0; c < cols; c++) w[r * cols + c] = (float)q[r * cols + c] * s;
    }
    return 0;
}

/* --------------------------------------------------------------------- vq */

#define D BF_VQ_DIM

static uint64_t vq_k(uint64_t n)
{
    uint64_t vecs = (n + D - 1) / D;
    return vecs < BF_VQ_K ? vecs : BF_VQ_K;
}

uint64_t bf_vq_bytes(uint64_t n)
{
    uint64_t vecs = (n + D - 1) / D;
    return 4 + vq_k(n) * D * 2 + vecs;
}

typedef struct {
    const float *x;       /* vecs × D */
    const float *cb;      /* k × D */
    size_t k;
    uint8_t *idx;
    size_t changed_by[1024];
} assign_job;

static float dist2(const float *a, const float *b)
{
    float d = 0;
    for (int j = 0; j < D; j++) d += (a[j] - b[j]) * (a[j] - b[j]);
    return d;
}

static void assign_range(void *ctx, size_t begin, size_t end, int thread)
{
    assign_job *J = ctx;
    size_t changed = 0;
    for (size_t v = begin; v < end; v++) {
        const float *x = J->x + v * D;
        size_t best = 0;
        float bd = dist2(x, J->cb);
        for (size_t c = 1; c < J->k; c++) {
            float d = dist2(x, J->cb + c * D);
            if (d < bd) { bd = d; best = c; }
        }
        if (J->idx[v] != best) changed++;
        J->idx[v] = (uint8_t)best;
    }
    J->changed_by[thread & 1023] += changed;
}

static size_t assign(assign_job *J, size_t vecs)
{
    memset(J->changed_by, 0, sizeof J->changed_by);
    bf_parallel(vecs, 256, assign_range, J);
    size_t c = 0;
    for (int t = 0; t < 1024; t++) c += J->changed_by[t];
    return c;
}

int bf_vq_encode(const float *w, uint64_t n, uint64_t seed, uint8_t *out)
{
    uint64_t vecs = (n + D - 1) / D, k = vq_k(n);
    memset(out, 0, 4);
    bf_put_le16(out, (uint16_t)k);
    out[2] = D;
    if (!vecs) return 0;
    float *x = bf_aligned_alloc(vecs * D * sizeof(float));
    if (!x) return -1;
    for (uint64_t i = 0; i < vecs * D; i++) x[i] = i < n ? w[i] : 0.0f;
    float *cb = bf_xcalloc(k * D, sizeof(float));
    double *d2 = bf_aligned_alloc(vecs * sizeof(double));
    uint8_t *idx = out + 4 + k * D * 2;
    if (!d2) { bf_aligned_free(x); free(cb); return -1; }
    /* k-means++: the first centre uniform, each next one with probability ∝ d² */
    bf_rng rng;
    bf_rng_seed(&rng, seed);
    memcpy(cb, x + bf_rng_below(&rng, vecs) * D, D * sizeof(float));
    for (uint64_t v = 0; v < vecs; v++) d2[v] = dist2(x + v * D, cb);
    for (uint64_t c = 1; c < k; c++) {
        double total = 0;
        for (uint64_t v = 0; v < vecs; v++) total += d2[v];
        uint64_t pick = bf_rng_below(&rng, vecs);
        if (total > 0) {
            double r = bf_rng_uniform(&rng) * total, acc = 0;
            for (pick = 0; pick < vecs - 1; pick++) {
                acc += d2[pick];
                if (acc > r) break;
            }
        }
        memcpy(cb + c * D, x + pick * D, D * sizeof(float));
        for (uint64_t v = 0; v < vecs; v++) {
            double d = dist2(x + v * D, cb + c * D);
            if (d < d2[v]) d2[v] = d;
        }
    }
    bf_aligned_free(d2);
    assign_job J = {.x = x, .cb = cb, .k = (size_t)k, .idx = idx};
    memset(idx, 0, vecs);
    assign(&J, vecs);
    double *sum = bf_xcalloc(k * D, sizeof(double));
    uint64_t *cnt = bf_xcalloc(k, sizeof(uint64_t));
    for (int it = 0; it < BF_VQ_ITERS; it++) {
        memset(sum, 0, k * D * sizeof(double));
        memset(cnt, 0, k * sizeof(uint64_t));
        for (uint64_t v = 0; v < vecs; v++) {
            cnt[idx[v]]++;
            for (int j = 0; j < D; j++) sum[idx[v] * D + j] += x[v * D + j];
        }
        for (uint64_t c = 0; c < k; c++)
            if (cnt[c])
                for (int j = 0; j < D; j++) cb[c * D + j] = (float)(sum[c * D + j] / (double)cnt[c]);
        if (assign(&J, vecs) == 0) break;
    }
    /* the codebook as stored, and the last assignment against it */
    for (uint64_t i = 0; i < k * D; i++) {
        uint16_t h = bf_f32_to_f16(cb[i]);
        bf_put_le16(out + 4 + 2 * i, h);
        cb[i] = bf_f16_to_f32(h);
    }
    assign(&J, vecs);
    free(sum);
    free(cnt);
    free(cb);
    bf_aligned_free(x);
    return 0;
}

int bf_vq_decode(const uint8_t *in, size_t len, float *w, uint64_t n)
{
    if (len != bf_vq_bytes(n)) return bf_err("vq member of %zu bytes, not %llu", len, (unsigned long long)bf_vq_bytes(n));
    uint64_t k = vq_k(n), vecs = (n + D - 1) / D;
    if (bf_get_le16(in) != k || in[2] != D || in[3] != 0) return bf_err("vq member: bad header");
    float cb[BF_VQ_K * D];
    for (uint64_t i = 0; i < k * D; i++) {
        cb[i] = bf_f16_to_f32(bf_get_le16(in + 4 + 2 * i));
        if (!isfinite(cb[i])) return bf_err("vq member: codebook entry %llu is not finite", (unsigned long long)(i / D));
    }
    const uint8_t *idx = in + 4 + k * D * 2;
    for (uint64_t v = 0; v < vecs; v++) {
        if (idx[v] >= k) return bf_err("vq member: index %u of vector %llu beyond the codebook's %llu", idx[v], (unsigned long long)v, (unsigned long long)k);
        for (int j = 0; j < D; j++)
            if (v * D + (uint64_t)j < n) w[v * D + (uint64_t)j] = cb[idx[v] * D + j];
    }
    return 0;
}
