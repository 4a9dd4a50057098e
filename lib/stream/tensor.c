/* tensor.c — dtypes, payload memory, conversions, tensor sets. */

#include "bf/tensor.h"
#include "bf/ternary.h"
#include "bf/log.h"
#include "bf/util.h"

#include <xxhash.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const struct { const char *name; size_t size; } dtypes[BF_NDTYPES] = {
    [BF_F32] = {"F32", 4}, [BF_F16] = {"F16", 2}, [BF_BF16] = {"BF16", 2}, [BF_I8] = {"I8", 1}, [BF_U8] = {"U8", 1},
    [BF_I32] = {"I32", 4}, [BF_I64] = {"I64", 8}, [BF_TQ2] = {"TQ2", 0}, [BF_TQ1] = {"TQ1", 0},
};

const char *bf_dtype_name(bf_dtype dt) { return dt < BF_NDTYPES ? dtypes[dt].name : "?"; }
size_t bf_dtype_size(bf_dtype dt) { return dtypes[dt].size; }
int bf_dtype_is_ternary(bf_dtype dt) { return dt == BF_TQ2 || dt == BF_TQ1; }

int bf_dtype_parse(const char *s, bf_dtype *out)
{
    for (int k = 0; k < BF_NDTYPES; k++)
        if (strcmp(s, dtypes[k].name) == 0) { *out = (bf_dtype)k; return 0; }
    return -1;
}

int bf_tensor_size(bf_dtype dt, int ndim, const uint64_t *shape, uint64_t *nbytes)
{
    if (ndim < 0 || ndim > BF_MAX_DIMS) return bf_err("%d dims (at most %d)", ndim, BF_MAX_DIMS);
    if (bf_dtype_is_ternary(dt)) {
        if (ndim != 2) return bf_err("%s tensor needs 2 dims, has %d", bf_dtype_name(dt), ndim);
        uint64_t row = bf_ternary_row_bytes(dt, shape[1]);
        if (bf_mul_u64(shape[0], row, nbytes)) return bf_err("shape overflows");
        return 0;
    }
    uint64_t n = dtypes[dt].size;
    for (int k = 0; k < ndim; k++)
        if (bf_mul_u64(n, shape[k], &n)) return bf_err("shape overflows");
    *nbytes = n;
    return 0;
}

uint64_t bf_tensor_numel(const bf_tensor *t)
{
    uint64_t n = 1;
    for (int k = 0; k < t->ndim; k++) n *= t->shape[k];
    return n;
}

#define MAP_THRESHOLD (1u << 20)   /* payloads this large are mappings that can grow */

int bf_payload_alloc(bf_tensor *t, size_t n)
{
    t->mapped = 0;
    if (n >= MAP_THRESHOLD) {
        void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return bf_err("cannot allocate %zu bytes: %s", n, bf_strerror(errno));
        t->data = p;
        t->mapped = n;
        return 0;
    }
    t->data = bf_aligned_alloc(n);
    if (!t->data) return -1;
    memset(t->data, 0, n);
    return 0;
}

void bf_payload_free(bf_tensor *t)
{
    if (t->mapped) munmap(t->data, t->mapped);
    else bf_aligned_free(t->data);
    t->data = NULL;
    t->mapped = 0;
}

int bf_payload_grow(bf_tensor *t, size_t n)
{
    if (!t->mapped || n <= t->mapped) return 0;
    void *p = mremap(t->data, t->mapped, n, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) return bf_err("cannot allocate %zu bytes: %s", n, bf_strerror(errno));
    t->data = p;
    t->mapped = n;
    return 0;
}

int bf_tensor_init(bf_tensor *t, const char *name, bf_dtype dt, int ndim, const uint64_t *shape)
{
    memset(t, 0, sizeof *t);
    size_t len = strlen(name);
    if (len == 0 || len > BF_MAX_NAME) return bf_err("tensor name of %zu bytes (1 to %d)", len, BF_MAX_NAME);
    memcpy(t->name, name, len + 1);
    if (ndim < 0 || ndim > BF_MAX_DIMS) return bf_err("'%s' has %d dims (at most %d)", name, ndim, BF_MAX_DIMS);
    t->dtype = dt;
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    if (bf_tensor_size(dt, ndim, shape, &t->nbytes)) return -1;
    if (t->nbytes > SIZE_MAX / 2) return bf_err("'%s' is too large", name);
    return bf_payload_alloc(t, (size_t)t->nbytes);
}

void bf_tensor_release(bf_tensor *t)
{
    if (t->data) bf_payload_free(t);
    bf_val_free(t->meta);
    t->meta = NULL;
}

/* IEEE half precision: 1 sign, 5 exponent, 10 mantissa bits. */
float bf_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | (man << 13);
    else if (exp) bits = sign | ((exp + 112) << 23) | (man << 13);
    else if (!man) bits = sign;
    else {  /* subnormal: normalize */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t bf_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00;             /* NaN */
    if (ax >= 0x477ff000u) return sign | 0x7c00;            /* overflow to inf (rounds past 65504) */
    if (ax < 0x38800000u) {                                 /* subnormal or zero in half */
        float a;
        memcpy(&a, &ax, 4);
        /* scale so the half's subnormal unit (2^-24) becomes 1, round to even */
        float r = nearbyintf(a * 16777216.0f);
        return sign | (uint16_t)r;
    }
    uint32_t mant_odd = (ax >> 13) & 1;
    ax += 0x0fff + mant_odd;                                /* round to nearest even */
    return sign | (uint16_t)(((ax >> 13) - (112u << 10)) & 0x7fff);
}

float bf_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t bf_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

int bf_tensor_to_f32(const bf_tensor *t, float *out)
{
    uint64_t n = bf_tensor_numel(t);
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case BF_F32: memcpy(out, p, n * 4); break;
    case BF_F16: for (uint64_t k = 0; k < n; k++) { uint16_t h; memcpy(&h, p + 2 * k, 2); out[k] = bf_f16_to_f32(h); } break;
    case BF_BF16: for (uint64_t k = 0; k < n; k++) { uint16_t h; memcpy(&h, p + 2 * k, 2); out[k] = bf_bf16_to_f32(h); } break;
    case BF_I8: for (uint64_t k = 0; k < n; k++) out[k] = (float)((const int8_t *)p)[k]; break;
    case BF_U8: for (uint64_t k = 0; k < n; k++) out[k] = (float)p[k]; break;
    case BF_I32: for (uint64_t k = 0; k < n; k++) { int32_t v; memcpy(&v, p + 4 * k, 4); out[k] = (float)v; } break;
    case BF_I64: for (uint64_t k = 0; k < n; k++) { int64_t v; memcpy(&v, p + 8 * k, 8); out[k] = (float)v; } break;
    case BF_TQ2: case BF_TQ1: {
        uint64_t rows = t->shape[0], cols = t->shape[1];
        if (!rows || !cols) break;   /* empty: nothing to convert, nothing to allocate */
        size_t rb = bf_ternary_row_bytes(t->dtype, cols);
        int8_t *row = bf_xmalloc(cols ? cols : 1);
        for (uint64_t r = 0; r < rows; r++) {
            bf_ternary_unpack_row(t->dtype, p + r * rb, cols, row);
            for (uint64_t c = 0; c < cols; c++) out[r * cols + c] = row[c];
        }
        free(row);
        break;
    }
    default: return bf_err("cannot convert dtype %d", (int)t->dtype);
    }
    return 0;
}

bf_tensor *bf_tset_find(const bf_tset *s, const char *name)
{
    for (size_t k = 0; k < s->n; k++)
        if (strcmp(s->t[k].name, name) == 0) return &s->t[k];
    return NULL;
}

bf_tensor *bf_tset_add(bf_tset *s)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->t = bf_xrealloc(s->t, s->cap * sizeof *s->t);
    }
    bf_tensor *t = &s->t[s->n++];
    memset(t, 0, sizeof *t);
    return t;
}

void bf_tset_remove(bf_tset *s, const char *name)
{
    bf_tensor *t = bf_tset_find(s, name);
    if (!t) return;
    bf_tensor_release(t);
    size_t k = (size_t)(t - s->t);
    memmove(&s->t[k], &s->t[k + 1], (s->n - k - 1) * sizeof *t);
    s->n--;
}

void bf_tset_release(bf_tset *s)
{
    for (size_t k = 0; k < s->n; k++) bf_tensor_release(&s->t[k]);
    free(s->t);
    memset(s, 0, sizeof *s);
}

uint64_t bf_tset_digest(const bf_tset *s)
{
    XXH3_state_t *st = XXH3_createState();
    if (!st) bf_out_of_memory();
    XXH3_64bits_reset(st);
    for (size_t k = 0; k < s->n; k++) {
        const bf_tensor *t = &s->t[k];
        uint64_t head[2 + BF_MAX_DIMS] = {(uint64_t)t->dtype, (uint64_t)t->ndim};
        for (int d = 0; d < t->ndim; d++) head[2 + d] = t->shape[d];
        XXH3_64bits_update(st, t->name, strlen(t->name) + 1);
        XXH3_64bits_update(st, head, sizeof head);
        if (t->data) XXH3_64bits_update(st, t->data, t->nbytes);
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}
