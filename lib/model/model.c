/* model.c — the DESIGN §4 transformer: layout, forward, backward.
 *
 * Shapes in comments: N = B·T rows (token positions), D = d_model,
 * F = d_ff, H = n_head, hd = D/H, V = vocab, M = targeted positions.
 * Weights are [out, in] and a linear layer is y = x·Wᵀ. */
#include "bf/model.h"
#include "bf/blas.h"
#include "bf/kernels.h"
#include "bf/ternary.h"
#include "bf/thread.h"
#include "bf/util.h"
#include "bf/vmath.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-5f

typedef struct {
    float *h_in;                  /* [N,D] residual entering the block */
    float *n1, *n1_mean, *n1_rstd; /* [N,D], [N], [N] attention norm */
    float *n1q;                   /* [N,D] int8-quantized n1 (ternary consumers) */
    float *q, *k, *v;             /* [N,D] q and k after RoPE */
    float *att;                   /* [B,H,T,T] softmax probabilities */
    float *ao;                    /* [N,D] attention output, heads concatenated */
    float *ao_rstd, *aon, *aonq;  /* subln: [N], [N,D]; quantized [N,D] */
    float *h_mid;                 /* [N,D] residual after attention */
    float *n2, *n2_mean, *n2_rstd, *n2q;
    float *u, *g;                 /* [N,F] w1 and w3 outputs (gelu: g holds Φ(u)) */
    float *a;                     /* [N,F] activation output */
    float *a_rstd, *an, *anq;     /* subln [N], [N,F]; quantized [N,F] */
} layer_acts;

struct bf_acts {
    size_t block_bytes;
    size_t cap_rows, N;
    int B, T;
    void *block;
    layer_acts *L;
    float *h_out, *fn, *fn_mean, *fn_rstd;   /* [N,D] final residual and out_norm */
    float *fsel;                              /* [M,D] out_norm rows at targets */
    float *logp;                              /* [M,V] log-probabilities */
    int32_t *x, *y, *tidx;                    /* [N], [N], [M] */
    size_t M;
    float *rope_cos, *rope_sin;               /* [ctx, hd/2] */
    /* backward scratch */
    float *dh, *dn, *dq, *dk, *dv, *dao, *dsub, *du, *dg, *da, *dan, *dfsel;
    /* key/value cache for incremental decoding: layer l's keys at
     * kv_block + 2·l·(kv_B·ctx·D), its values right after, each [kv_B, ctx, D] */
    float *kv_block;
    int kv_B;
};

/* ---------------------------------------------------------------- layout */

static int site_quantized(const bf_model *m, const bf_param *const *consumers, int n)
{
    if (m->cfg.act_bits != 8) return 0;
    for (int k = 0; k < n; k++)
        if (consumers[k] && consumers[k]->q.method != BF_Q_NONE) return 1;
    return 0;
}

int bf_model_create(bf_model *m, const bf_config *c)
{
    memset(m, 0, sizeof *m);
    if (bf_config_validate(c)) return -1;
    m->cfg = *c;
    size_t n;
    bf_param_spec *spec = bf_config_params(c, &n);
    m->p = bf_xcalloc(n, sizeof *m->p);
    m->np = n;
    size_t off = 0;
    for (size_t k = 0; k < n; k++) {
        bf_param *p = &m->p[k];
        memcpy(p->name, spec[k].name, sizeof p->name);
        p->ndim = spec[k].ndim;
        p->shape[0] = spec[k].shape[0];
        p->shape[1] = spec[k].shape[1];
        p->numel = (size_t)p->shape[0] * (p->ndim == 2 ? (size_t)p->shape[1] : 1);
        p->offset = off;
        p->is_block_matrix = spec[k].is_block_matrix;
        off += (p->numel + 15) / 16 * 16;   /* every parameter 64-byte aligned */
    }
    free(spec);
    m->n_params = off;
    /* zero pages: an evaluated model never touches its gradients */
    m->params = bf_pages_alloc(off * sizeof(float));
    m->grads = bf_pages_alloc(off * sizeof(float));
    if (!m->params || !m->grads) { bf_model_free(m); return -1; }
    for (size_t k = 0; k < n; k++) m->p[k].fwd = m->params + m->p[k].offset;
    return 0;
}

bf_param *bf_model_param(const bf_model *m, const char *name)
{
    for (size_t k = 0; k < m->np; k++)
        if (strcmp(m->p[k].name, name) == 0) return &m->p[k];
    return NULL;
}

int bf_model_is_quantized(const bf_model *m)
{
    for (size_t k = 0; k < m->np; k++)
        if (m->p[k].q.method != BF_Q_NONE) return 1;
    return 0;
}

static float *lookup(const bf_model *m, float *base, const char *fmt, int l)
{
    char name[64];
    snprintf(name, sizeof name, fmt, l);
    bf_param *p = bf_model_param(m, name);
    return p ? base + p->offset : NULL;
}

bf_layer_params bf_model_layer(const bf_model *m, float *base, int l)
{
    bf_layer_params L;
    L.attn_norm_w = lookup(m, base, "blk.%d.attn_norm.w", l);
    L.attn_norm_b = lookup(m, base, "blk.%d.attn_norm.b", l);
    L.wq = lookup(m, base, "blk.%d.wq", l);
    L.wk = lookup(m, base, "blk.%d.wk", l);
    L.wv = lookup(m, base, "blk.%d.wv", l);
    L.wo = lookup(m, base, "blk.%d.wo", l);
    L.attn_sub_norm_w = lookup(m, base, "blk.%d.attn_sub_norm.w", l);
    L.mlp_norm_w = lookup(m, base, "blk.%d.mlp_norm.w", l);
    L.mlp_norm_b = lookup(m, base, "blk.%d.mlp_norm.b", l);
    L.w1 = lookup(m, base, "blk.%d.w1", l);
    L.w3 = lookup(m, base, "blk.%d.w3", l);
    L.w2 = lookup(m, base, "blk.%d.w2", l);
    L.ffn_sub_norm_w = lookup(m, base, "blk.%d.ffn_sub_norm.w", l);
    return L;
}

static bf_param *layer_param(const bf_model *m, int l, const char *what)
{
    char name[64];
    snprintf(name, sizeof name, "blk.%d.%s", l, what);
    return bf_model_param(m, name);
}

static void drop_stored(bf_param *p)
{
    free(p->codes);
    free(p->scales);
    p->codes = NULL;
    p->scales = NULL;
}

void bf_model_refresh(bf_model *m)
{
    for (size_t k = 0; k < m->np; k++) {
        bf_param *p = &m->p[k];
        if (p->q.method == BF_Q_NONE) continue;
        drop_stored(p);
        if (p->fwd == m->params + p->offset) {   /* loaded without a latent: the view was the parameter */
            p->fwd = bf_aligned_alloc(p->numel * sizeof(float));
            if (!p->fwd) { fprintf(stderr, "%s: %s\n", bf_progname, bf_errmsg()); exit(1); }
        }
        bf_quant_fake(&p->q, m->params + p->offset, p->shape[0], p->shape[1], p->fwd);
    }
}

/* A loaded ternary matrix: its forward view is the stream's scale·codes,
 * exactly, whatever the latent would re-quantize to.  Without a latent the
 * parameter itself holds scale·codes (same products, same bits), and the view
 * is the parameter until training refreshes it (bf_model_refresh). */
static int make_quantized(bf_param *p, const bf_qspec *q, const bf_tensor *codes, const float *scale, size_t ns,
                          float *param_if_same)
{
    size_t rows = p->shape[0], cols = p->shape[1];
    p->q = *q;
    p->fwd = param_if_same ? param_if_same : bf_aligned_alloc(p->numel * sizeof(float));
    if (!p->fwd) return -1;
    p->codes = bf_xmalloc(p->numel ? p->numel : 1);
    p->scales = bf_xmalloc(ns * sizeof(float));
    memcpy(p->scales, scale, ns * sizeof(float));
    size_t rb = bf_ternary_row_bytes(codes->dtype, cols);
    for (size_t r = 0; r < rows; r++) {
        bf_ternary_unpack_row(codes->dtype, (const uint8_t *)codes->data + r * rb, cols, p->codes + r * cols);
        float sv = scale[ns == 1 ? 0 : r];
        if (!param_if_same)
            for (size_t j = 0; j < cols; j++) p->fwd[r * cols + j] = sv * (float)p->codes[r * cols + j];
    }
    return 0;
}

static int load(bf_model *m, const bf_header *h, const bf_tset *s, int for_inference);

int bf_model_from_tset(bf_model *m, const bf_header *h, const bf_tset *s) { return load(m, h, s, 0); }

int bf_model_load_for_inference(bf_model *m, const bf_header *h, const bf_tset *s)
{
    if (load(m, h, s, 1)) return -1;
    return bf_model_use_int_kernels(m);
}

static int all_finite(const float *v, size_t n)
{
    for (size_t j = 0; j < n; j++)
        if (!isfinite(v[j])) return 0;
    return 1;
}

/* for_inference: a model with act_bits 8 has its ternary matrices repacked
 * straight from the stream for the integer kernels; their float parameters
 * are never written (zero pages, no memory) and nothing reads them. */
static int load(bf_model *m, const bf_header *h, const bf_tset *s, int for_inference)
{
    if (strcmp(h->kind, "model") != 0) return bf_err("a '%s' stream, not a model", h->kind);
    bf_config c;
    if (bf_config_from_meta(h->meta, &c)) return -1;
    if (bf_model_create(m, &c)) return -1;
    for (size_t k = 0; k < m->np; k++) {
        bf_param *p = &m->p[k];
        const bf_tensor *t = bf_tset_find(s, p->name);
        if (!t) { bf_err("model has no tensor '%s'", p->name); bf_model_free(m); return -1; }
        uint64_t want_rows = p->shape[0], want_cols = p->ndim == 2 ? p->shape[1] : 0;
        int shape_ok = t->ndim == p->ndim && t->shape[0] == want_rows && (p->ndim == 1 || t->shape[1] == want_cols);
        if (!shape_ok) { bf_err("tensor '%s' has the wrong shape for this model", p->name); bf_model_free(m); return -1; }
        float *dst = m->params + p->offset;
        if (bf_dtype_is_ternary(t->dtype)) {
            if (!p->is_block_matrix) { bf_model_free(m); return bf_err("tensor '%s' is ternary; only block matrices may be", p->name); }
            char nm[80];
            snprintf(nm, sizeof nm, "%s.scale", p->name);
            const bf_tensor *sc = bf_tset_find(s, nm);
            if (!sc || sc->dtype != BF_F32 || sc->ndim != 1) { bf_err("ternary '%s' has no F32 '%s'", p->name, nm); bf_model_free(m); return -1; }
            bf_qspec q;
            if (bf_qspec_from_meta(t->meta, t->dtype, sc->shape[0], want_rows, &q)) {
                char why[300];
                snprintf(why, sizeof why, "%s", bf_errmsg());
                bf_err("'%s': %s", p->name, why);
                bf_model_free(m);
                return -1;
            }
            const float *scale = sc->data;
            if (!all_finite(scale, sc->shape[0])) { bf_err("'%s' holds a non-finite value", nm); bf_model_free(m); return -1; }
            snprintf(nm, sizeof nm, "%s.latent", p->name);
            const bf_tensor *lat = bf_tset_find(s, nm);
            if (lat) {
                if (lat->dtype != BF_F32 || lat->ndim != 2 || lat->shape[0] != want_rows || lat->shape[1] != want_cols) {
                    bf_err("'%s' is not F32 of the weight's shape", nm);
                    bf_model_free(m);
                    return -1;
                }
                /* (without one, scale·codes is finite: the scales are) */
                if (!all_finite(lat->data, p->numel)) { bf_err("'%s' holds a non-finite value", p->name); bf_model_free(m); return -1; }
            }
            if (for_inference && m->cfg.act_bits == 8) {
                p->q = q;
                float *sc_own = bf_xmalloc(sc->shape[0] * sizeof(float));   /* owned by tm */
                memcpy(sc_own, scale, sc->shape[0] * sizeof(float));
                p->tm = bf_xcalloc(1, sizeof *p->tm);
                if (bf_tmat_from_packed(p->tm, t->dtype, t->data, want_rows, want_cols, sc_own, sc->shape[0] > 1)) {
                    bf_model_free(m);
                    return -1;
                }
                continue;
            }
            if (lat) memcpy(dst, lat->data, p->numel * sizeof(float));
            else {
                /* no latent: start it from scale·codes */
                bf_tensor_to_f32(t, dst);
                for (size_t r = 0; r < want_rows; r++) {
                    float sv = scale[sc->shape[0] == 1 ? 0 : r];
                    for (size_t j = 0; j < want_cols; j++) dst[r * want_cols + j] *= sv;
                }
            }
            if (make_quantized(p, &q, t, scale, sc->shape[0], lat ? NULL : dst)) { bf_model_free(m); return -1; }
            continue;
        }
        if (t->dtype != BF_F32 && t->dtype != BF_F16 && t->dtype != BF_BF16) {
            bf_err("tensor '%s' is %s; a model needs F32, F16, BF16 or ternary", p->name, bf_dtype_name(t->dtype));
            bf_model_free(m);
            return -1;
        }
        bf_tensor_to_f32(t, dst);
        if (!all_finite(dst, p->numel)) { bf_err("tensor '%s' holds a non-finite value", p->name); bf_model_free(m); return -1; }
    }
    return 0;
}

/* Allocation of a validated tensor fails only when memory is gone. */
static bf_tensor *add_tensor(bf_tset *out, const char *name, bf_dtype dt, int ndim, const uint64_t *shape)
{
    bf_tensor *t = bf_tset_add(out);
    if (bf_tensor_init(t, name, dt, ndim, shape)) {
        fprintf(stderr, "%s: %s\n", bf_progname, bf_errmsg());
        exit(1);
    }
    return t;
}

void bf_model_to_tset(const bf_model *m, int keep_latent, bf_tset *out)
{
    memset(out, 0, sizeof *out);
    for (size_t k = 0; k < m->np; k++) {
        const bf_param *p = &m->p[k];
        const float *src = m->params + p->offset;
        if (p->q.method == BF_Q_NONE) {
            bf_tensor *t = add_tensor(out, p->name, BF_F32, p->ndim, p->shape);
            memcpy(t->data, src, p->numel * sizeof(float));
            continue;
        }
        size_t rows = p->shape[0], cols = p->shape[1], ns = bf_qspec_nscales(&p->q, rows);
        int8_t *codes = bf_xmalloc(p->numel ? p->numel : 1);
        float *scale = bf_xmalloc(ns * sizeof(float));
        if (p->codes) {   /* untrained since loading: the stream's own codes and scales */
            memcpy(codes, p->codes, p->numel);
            memcpy(scale, p->scales, ns * sizeof(float));
        } else {
            bf_quant_weights(&p->q, src, rows, cols, codes, scale);
        }
        bf_tensor *t = add_tensor(out, p->name, p->q.pack, 2, p->shape);
        size_t rb = bf_ternary_row_bytes(p->q.pack, cols);
        for (size_t r = 0; r < rows; r++) bf_ternary_pack_row(p->q.pack, codes + r * cols, cols, (uint8_t *)t->data + r * rb);
        t->meta = bf_qspec_meta(&p->q);
        char nm[80];
        snprintf(nm, sizeof nm, "%s.scale", p->name);
        uint64_t sshape[1] = {ns};
        t = add_tensor(out, nm, BF_F32, 1, sshape);
        memcpy(t->data, scale, ns * sizeof(float));
        if (keep_latent) {
            snprintf(nm, sizeof nm, "%s.latent", p->name);
            t = add_tensor(out, nm, BF_F32, 2, p->shape);
            memcpy(t->data, src, p->numel * sizeof(float));
        }
        free(codes);
        free(scale);
    }
}

int bf_model_use_int_kernels(bf_model *m)
{
    m->inference = 1;
    if (m->acts) m->acts->B = 0;   /* lay the activations out again, without the backward's */
    for (size_t k = 0; k < m->np; k++) {
        bf_param *p = &m->p[k];
        if (p->q.method == BF_Q_NONE || p->tm) continue;
        size_t rows = p->shape[0], cols = p->shape[1], ns = bf_qspec_nscales(&p->q, rows);
        /* the stored codes as they are; else quantize the latent */
        int8_t *codes = p->codes ? p->codes : bf_xmalloc(p->numel ? p->numel : 1);
        float *scale = bf_xmalloc(ns * sizeof(float));
        if (p->codes) memcpy(scale, p->scales, ns * sizeof(float));
        else bf_quant_weights(&p->q, m->params + p->offset, rows, cols, codes, scale);
        p->tm = bf_xcalloc(1, sizeof *p->tm);
        int rc = bf_tmat_from_codes(p->tm, p->q.pack, codes, rows, cols, scale, ns > 1);
        if (codes != p->codes) free(codes);
        if (rc) return -1;   /* scale stays owned by tm (freed with the model) */
    }
    return 0;
}

void bf_model_free(bf_model *m)
{
    if (!m) return;
    for (size_t k = 0; k < m->np; k++) {
        if (m->p && m->p[k].tm) {
            free((void *)m->p[k].tm->scale);
            bf_tmat_free(m->p[k].tm);
            free(m->p[k].tm);
        }
    }
    for (size_t k = 0; k < m->np; k++) {
        if (m->params && m->p[k].fwd != m->params + m->p[k].offset) bf_aligned_free(m->p[k].fwd);
        drop_stored(&m->p[k]);
    }
    if (m->acts) {
        bf_pages_free(m->acts->block, m->acts->block_bytes);
        bf_aligned_free(m->acts->kv_block);
        free(m->acts->L);
        free(m->acts);
    }
    free(m->qk_max);
    free(m->p);
    bf_pages_free(m->params, m->n_params * sizeof(float));
    bf_pages_free(m->grads, m->n_params * sizeof(float));
    memset(m, 0, sizeof *m);
}

void bf_model_zero_grad(bf_model *m) { memset(m->grads, 0, m->n_params * sizeof(float)); }

/* ------------------------------------------------------- activation block */

typedef struct {
    float *base;
    size_t off;
} carver;

static float *carve(carver *c, size_t n)
{
    float *p = c->base ? c->base + c->off : NULL;
    c->off += (n + 15) / 16 * 16;
    return p;
}

typedef struct {   /* which inputs go through the int8 activation quantizer */
    int attn_in, o_in, mlp_in, down_in;
} layer_quant;

static layer_quant quant_sites(const bf_model *m, int l)
{
    const bf_param *qkv[3] = {layer_param(m, l, "wq"), layer_param(m, l, "wk"), layer_param(m, l, "wv")};
    const bf_param *o[1] = {layer_param(m, l, "wo")};
    const bf_param *up[2] = {layer_param(m, l, "w1"), layer_param(m, l, "w3")};
    const bf_param *down[1] = {layer_param(m, l, "w2")};
    layer_quant q = {site_quantized(m, qkv, 3), site_quantized(m, o, 1), site_quantized(m, up, 2),
                     site_quantized(m, down, 1)};
    return q;
}

/* One layer's buffers; a site's int8 copy only where q quantizes it. */
static void carve_layer(layer_acts *L, carver *c, layer_quant q, const bf_config *g, int B, int T)
{
    size_t N = (size_t)B * T, D = (size_t)g->d_model, F = (size_t)g->d_ff, H = (size_t)g->n_head;
    L->h_in = carve(c, N * D);
    L->n1 = carve(c, N * D);
    L->n1_mean = carve(c, N);
    L->n1_rstd = carve(c, N);
    L->n1q = q.attn_in ? carve(c, N * D) : L->n1;
    L->q = carve(c, N * D);
    L->k = carve(c, N * D);
    L->v = carve(c, N * D);
    L->att = carve(c, (size_t)B * H * T * T);
    L->ao = carve(c, N * D);
    L->ao_rstd = g->subln ? carve(c, N) : NULL;
    L->aon = g->subln ? carve(c, N * D) : L->ao;
    L->aonq = q.o_in ? carve(c, N * D) : L->aon;
    L->h_mid = carve(c, N * D);
    L->n2 = carve(c, N * D);
    L->n2_mean = carve(c, N);
    L->n2_rstd = carve(c, N);
    L->n2q = q.mlp_in ? carve(c, N * D) : L->n2;
    L->u = carve(c, N * F);
    L->g = carve(c, N * F);   /* w3·x; for gelu, Φ(u) kept for the backward */
    L->a = carve(c, N * F);
    L->a_rstd = g->subln ? carve(c, N) : NULL;
    L->an = g->subln ? carve(c, N * F) : L->a;
    L->anq = q.down_in ? carve(c, N * F) : L->an;
}

/* Lays out (or, with c->base NULL, measures) the activation block. */
static void layout_acts(const bf_model *m, bf_acts *a, carver *c, int B, int T)
{
    const bf_config *g = &m->cfg;
    size_t N = (size_t)B * T, D = (size_t)g->d_model, F = (size_t)g->d_ff, H = (size_t)g->n_head;
    size_t V = (size_t)g->vocab, hd = D / H;
    /* An inference-only model keeps no activations for a backward: every
     * layer works in layer 0's buffers, carved for the union of the layers'
     * quantized sites, then pointed per layer (h_in of layer l+1 is layer l's
     * output, written after its own h_in is last read). */
    layer_quant any = {0, 0, 0, 0};
    if (m->inference)
        for (int l = 0; l < g->n_layer; l++) {
            layer_quant q = quant_sites(m, l);
            any.attn_in |= q.attn_in;
            any.o_in |= q.o_in;
            any.mlp_in |= q.mlp_in;
            any.down_in |= q.down_in;
        }
    layer_acts shared;
    for (int l = 0; l < g->n_layer; l++) {
        layer_acts *L = &a->L[l];
        layer_quant own = quant_sites(m, l);
        if (m->inference && l > 0) {
            *L = shared;
        } else {
            carve_layer(L, c, m->inference ? any : own, g, B, T);
            shared = *L;
        }
        if (m->inference) {   /* a site this layer does not quantize reads its float input */
            if (!own.attn_in) L->n1q = L->n1;
            if (!own.o_in) L->aonq = L->aon;
            if (!own.mlp_in) L->n2q = L->n2;
            if (!own.down_in) L->anq = L->an;
        }
    }
    a->h_out = carve(c, N * D);
    a->fn = carve(c, N * D);
    a->fn_mean = carve(c, N);
    a->fn_rstd = carve(c, N);
    a->fsel = carve(c, N * D);
    a->logp = carve(c, N * V);
    a->x = (int32_t *)carve(c, N);
    a->y = (int32_t *)carve(c, N);
    a->tidx = (int32_t *)carve(c, N);
    a->rope_cos = carve(c, (size_t)g->ctx * (hd / 2 ? hd / 2 : 1));
    a->rope_sin = carve(c, (size_t)g->ctx * (hd / 2 ? hd / 2 : 1));
    if (m->inference) return;   /* no backward: no gradient scratch */
    a->dh = carve(c, N * D);
    a->dn = carve(c, N * D);
    a->dq = carve(c, N * D);
    a->dk = carve(c, N * D);
    a->dv = carve(c, N * D);
    a->dao = carve(c, N * D);
    a->dsub = carve(c, N * D);
    a->du = carve(c, N * F);
    a->dg = carve(c, N * F);
    a->da = carve(c, N * F);
    a->dan = carve(c, N * F);
    a->dfsel = carve(c, N * (V > D ? V : D));   /* dlogits [M,V], then d(fsel) [M,D] */
}

static void acts_struct(bf_model *m)
{
    if (m->acts) return;
    m->acts = bf_xcalloc(1, sizeof *m->acts);
    m->acts->L = bf_xcalloc((size_t)m->cfg.n_layer, sizeof *m->acts->L);
}

static void ensure_acts(bf_model *m, int B, int T)
{
    acts_struct(m);
    bf_acts *a = m->acts;
    if (a->block && a->B == B && a->T == T) return;
    carver c = {0};
    layout_acts(m, a, &c, B, T);
    bf_pages_free(a->block, a->block_bytes);
    /* zero pages: buffers a run never uses (the backward's, when it only
     * evaluates) take no memory */
    a->block_bytes = c.off * sizeof(float);
    a->block = bf_pages_alloc(a->block_bytes);
    if (!a->block) { fprintf(stderr, "%s: %s\n", bf_progname, bf_errmsg()); exit(1); }
    c.base = a->block;
    c.off = 0;
    layout_acts(m, a, &c, B, T);
    a->B = B;
    a->T = T;
    /* RoPE, rotate-half: pair i with i + hd/2, angle t·10000^(-2i/hd) */
    size_t hd = (size_t)(m->cfg.d_model / m->cfg.n_head), half = hd / 2;
    for (int t = 0; t < m->cfg.ctx; t++)
        for (size_t i = 0; i < half; i++) {
            double th = (double)t * pow(10000.0, -2.0 * (double)i / (double)hd);
            a->rope_cos[(size_t)t * half + i] = (float)cos(th);
            a->rope_sin[(size_t)t * half + i] = (float)sin(th);
        }
}

/* ---------------------------------------------------------------- kernels */

/* out[N,R] = in[N,K] · W[R,K]ᵀ (+ out when accumulate) */
static void mm_fwd(float *out, const float *in, const float *W, size_t N, size_t K, size_t R, int accumulate)
{
    bf_sgemm(0, 1, N, R, K, 1.0f, in, K, W, K, accumulate ? 1.0f : 0.0f, out, R);
}

/* dW[R,K] += dout[N,R]ᵀ · in[N,K];  din[N,K] (+)= dout · W */
static void mm_bwd(float *din, int din_accumulate, float *dW, const float *dout, const float *in, const float *W,
                   size_t N, size_t K, size_t R)
{
    bf_sgemm(1, 0, R, K, N, 1.0f, dout, R, in, K, 1.0f, dW, K);
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

static void norm_fwd(float *y, const float *x, const float *w, const float *b, float *mean, float *rstd, size_t N,
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
static void norm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, const float *mean,
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

/* Rotates q or k in place; inverse rotates back (the backward of a rotation). */
static void rope(bf_acts *a, float *x, size_t N, size_t T, size_t D, size_t hd, size_t pos0, int inverse)
{
    rope_job j = {x, a->rope_cos, a->rope_sin, T, D, hd, pos0, inverse};
    bf_parallel(N, 64, rope_rows, &j);
}

typedef struct {
    const float *q, *k, *v;
    float *att, *out;
    float *dq, *dk, *dv;
    const float *dout;
    size_t B, T, D, H, hd;
    float *task_max;      /* [B·H] largest scaled logit, or NULL */
    /* keys and values: row (b, s) at k/v + (b·kT + s)·D; query t of a row is
     * at position pos0 + t and sees keys 0 … pos0 + t.  Without a cache kT = T
     * and pos0 = 0; with one, k and v are the cache (kT = ctx) and att is
     * NULL (no backward follows). */
    size_t kT, pos0;
} attn_job;

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

/* One (batch, head) pair a task: causal softmax(q·kᵀ/√hd)·v. */
static void attn_fwd_tasks(void *ctx, size_t t0, size_t t1, int th)
{
    attn_job *j = ctx;
    size_t T = j->T, D = j->D, hd = j->hd, kT = j->kT;
    float scale = 1.0f / sqrtf((float)hd);
    float *row = j->att ? NULL : bf_xmalloc(kT * sizeof(float));
    for (size_t task = t0; task < t1; task++) {
        size_t b = task / j->H, h = task % j->H;
        float tmax = -INFINITY;
        for (size_t t = 0; t < T; t++) {
            size_t last = j->pos0 + t;   /* the query's position: keys 0 … last */
            const float *qt = j->q + (b * T + t) * D + h * hd;
            float *p = j->att ? j->att + task * T * T + t * T : row, mx = -INFINITY;
            for (size_t s = 0; s <= last; s++) {
                p[s] = dot_f32(qt, j->k + (b * kT + s) * D + h * hd, hd) * scale;
                if (p[s] > mx) mx = p[s];
            }
            if (mx > tmax) tmax = mx;
            float sum = 0;
            for (size_t s = 0; s <= last; s++) { p[s] = expf(p[s] - mx); sum += p[s]; }
            float inv = 1.0f / sum;
            for (size_t s = 0; s <= last; s++) p[s] *= inv;
            if (j->att)
                for (size_t s = last + 1; s < T; s++) p[s] = 0;
            float *o = j->out + (b * T + t) * D + h * hd;
            for (size_t i = 0; i < hd; i++) o[i] = 0;
            for (size_t s = 0; s <= last; s++) {
                const float *vs = j->v + (b * kT + s) * D + h * hd;
                for (size_t i = 0; i < hd; i++) o[i] += p[s] * vs[i];
            }
        }
        if (j->task_max) j->task_max[task] = tmax;
    }
    free(row);
}

/* dP = dout·vᵀ; dv = Pᵀ·dout; dS = P⊙(dP − rowsum(P⊙dP)); dq = dS·k/√hd; dk = dSᵀ·q/√hd */
static void attn_bwd_tasks(void *ctx, size_t t0, size_t t1, int th)
{
    attn_job *j = ctx;
    size_t T = j->T, D = j->D, hd = j->hd;
    float scale = 1.0f / sqrtf((float)hd);
    float *dp = bf_xmalloc(T * sizeof(float));
    for (size_t task = t0; task < t1; task++) {
        size_t b = task / j->H, h = task % j->H;
        const float *P = j->att + task * T * T;
        for (size_t t = 0; t < T; t++) {
            const float *p = P + t * T, *dot = j->dout + (b * T + t) * D + h * hd;
            const float *qt = j->q + (b * T + t) * D + h * hd;
            float *dqt = j->dq + (b * T + t) * D + h * hd;
            float sum = 0;
            for (size_t s = 0; s <= t; s++) {
                const float *vs = j->v + (b * T + s) * D + h * hd;
                float *dvs = j->dv + (b * T + s) * D + h * hd, d = dot_f32(dot, vs, hd);
                for (size_t i = 0; i < hd; i++) dvs[i] += p[s] * dot[i];
                dp[s] = d;
                sum += p[s] * d;
            }
            for (size_t s = 0; s <= t; s++) {
                float ds = p[s] * (dp[s] - sum) * scale;
                const float *ks = j->k + (b * T + s) * D + h * hd;
                float *dks = j->dk + (b * T + s) * D + h * hd;
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
    double *loss;   /* per row, summed serially afterwards */
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

/* ---------------------------------------------------------------- forward */

static const float *fwd_of(const bf_model *m, int l, const char *what)
{
    bf_param *p = layer_param(m, l, what);
    return p ? p->fwd : NULL;
}

static int is_ternary(const bf_model *m, int l, const char *what)
{
    bf_param *p = layer_param(m, l, what);
    return p && p->q.method != BF_Q_NONE;
}

/* The input a matrix sees: the int8-quantized copy when it is ternary and the
 * model quantizes activations, else the float one. */
static const float *input_for(const bf_model *m, int l, const char *what, const float *x, const float *xq)
{
    return is_ternary(m, l, what) && m->cfg.act_bits == 8 ? xq : x;
}

/* The site feeding `what` runs on integer kernels: no float int8 copy needed
 * (the kernels quantize their input themselves).  All matrices of a site
 * share its quantization, so one consumer answers for the site. */
static int int_site(const bf_model *m, int l, const char *what)
{
    bf_param *p = layer_param(m, l, what);
    return p && p->tm && m->cfg.act_bits == 8;
}

/* out[N,R] (+)= x·Wᵀ for layer l's matrix `what`: on integer kernels when
 * the model runs them, else a float product with the forward's view. */
static void linear(const bf_model *m, int l, const char *what, float *out, const float *x, const float *xq, size_t N,
                   size_t K, size_t R, int accumulate)
{
    bf_param *p = layer_param(m, l, what);
    if (p->tm && m->cfg.act_bits == 8) {
        bf_tmat_forward(p->tm, x, N, out, accumulate);
        return;
    }
    mm_fwd(out, input_for(m, l, what, x, xq), p->fwd, N, K, R, accumulate);
}

int bf_model_cache_begin(bf_model *m, int B)
{
    acts_struct(m);
    bf_acts *a = m->acts;
    if (a->kv_B == B) return 0;
    size_t per = (size_t)B * (size_t)m->cfg.ctx * (size_t)m->cfg.d_model;
    bf_aligned_free(a->kv_block);
    a->kv_B = 0;
    a->kv_block = bf_aligned_alloc(2 * (size_t)m->cfg.n_layer * per * sizeof(float));
    if (!a->kv_block) return -1;
    a->kv_B = B;
    return 0;
}

/* The forward of B rows' positions pos0 … pos0+T-1.  Without the cache
 * (training, whole rows) pos0 is 0 and attention runs within the T given
 * positions; with it, keys and values go into the cache and queries see every
 * cached position up to their own. */
static double forward(bf_model *m, const int32_t *x, const int32_t *y, int B, int T, size_t pos0, int cached)
{
    const bf_config *g = &m->cfg;
    ensure_acts(m, B, T);
    bf_acts *a = m->acts;
    size_t N = (size_t)B * T, D = (size_t)g->d_model, F = (size_t)g->d_ff, H = (size_t)g->n_head, hd = D / H;
    size_t V = (size_t)g->vocab;
    int ln = g->norm == BF_NORM_LAYER;
    a->N = N;
    memcpy(a->x, x, N * sizeof *x);
    if (y) memcpy(a->y, y, N * sizeof *y);
    else for (size_t n = 0; n < N; n++) a->y[n] = -1;

    /* embeddings: h = tok_emb[x] (+ pos_emb[t]) */
    const float *tok = m->params + bf_model_param(m, "tok_emb")->offset;
    bf_param *pp = bf_model_param(m, "pos_emb");
    const float *pos = pp ? m->params + pp->offset : NULL;
    float *h = a->L[0].h_in;
    for (size_t n = 0; n < N; n++) {
        memcpy(h + n * D, tok + (size_t)x[n] * D, D * sizeof(float));
        if (pos)
            for (size_t c = 0; c < D; c++) h[n * D + c] += pos[(pos0 + n % (size_t)T) * D + c];
    }

    for (int l = 0; l < g->n_layer; l++) {
        layer_acts *L = &a->L[l];
        bf_layer_params P = bf_model_layer(m, m->params, l);
        float *next = l + 1 < g->n_layer ? a->L[l + 1].h_in : a->h_out;

        /* attention: h_mid = h_in + wo(attn(norm(h_in))) */
        norm_fwd(L->n1, L->h_in, P.attn_norm_w, P.attn_norm_b, L->n1_mean, L->n1_rstd, N, D, ln);
        if (L->n1q != L->n1 && !int_site(m, l, "wq")) bf_quant_acts(L->n1, N, D, L->n1q);
        linear(m, l, "wq", L->q, L->n1, L->n1q, N, D, D, 0);
        linear(m, l, "wk", L->k, L->n1, L->n1q, N, D, D, 0);
        linear(m, l, "wv", L->v, L->n1, L->n1q, N, D, D, 0);
        if (g->pos == BF_POS_ROPE) {
            rope(a, L->q, N, (size_t)T, D, hd, pos0, 0);
            rope(a, L->k, N, (size_t)T, D, hd, pos0, 0);
        }
        float *task_max = m->track_qk ? bf_xmalloc((size_t)B * H * sizeof(float)) : NULL;
        attn_job aj = {L->q, L->k, L->v, L->att, L->ao, NULL, NULL, NULL, NULL, (size_t)B, (size_t)T, D, H, hd, task_max,
                       (size_t)T, 0};
        if (cached) {
            size_t C = (size_t)g->ctx, per = (size_t)B * C * D;
            float *kc = a->kv_block + 2 * (size_t)l * per, *vc = kc + per;
            for (size_t b = 0; b < (size_t)B; b++) {
                memcpy(kc + (b * C + pos0) * D, L->k + b * (size_t)T * D, (size_t)T * D * sizeof(float));
                memcpy(vc + (b * C + pos0) * D, L->v + b * (size_t)T * D, (size_t)T * D * sizeof(float));
            }
            aj.k = kc;
            aj.v = vc;
            aj.att = NULL;
            aj.kT = C;
            aj.pos0 = pos0;
        }
        bf_parallel((size_t)B * H, 1, attn_fwd_tasks, &aj);
        if (task_max) {
            if (!m->qk_max) m->qk_max = bf_xcalloc((size_t)g->n_layer * H, sizeof(float));
            for (size_t hh = 0; hh < H; hh++) {
                float mx = -INFINITY;
                for (size_t bb = 0; bb < (size_t)B; bb++) mx = fmaxf(mx, task_max[bb * H + hh]);
                m->qk_max[(size_t)l * H + hh] = mx;
            }
            free(task_max);
        }
        if (g->subln) norm_fwd(L->aon, L->ao, P.attn_sub_norm_w, NULL, NULL, L->ao_rstd, N, D, 0);
        if (L->aonq != L->aon && !int_site(m, l, "wo")) bf_quant_acts(L->aon, N, D, L->aonq);
        memcpy(L->h_mid, L->h_in, N * D * sizeof(float));
        linear(m, l, "wo", L->h_mid, L->aon, L->aonq, N, D, D, 1);

        /* MLP: next = h_mid + w2(act(norm(h_mid))) */
        norm_fwd(L->n2, L->h_mid, P.mlp_norm_w, P.mlp_norm_b, L->n2_mean, L->n2_rstd, N, D, ln);
        if (L->n2q != L->n2 && !int_site(m, l, "w1")) bf_quant_acts(L->n2, N, D, L->n2q);
        linear(m, l, "w1", L->u, L->n2, L->n2q, N, D, F, 0);
        if (g->act != BF_ACT_GELU) linear(m, l, "w3", L->g, L->n2, L->n2q, N, D, F, 0);
        act_job acj = {L->u, L->g, NULL, L->a, NULL, NULL, g->act};
        bf_parallel(N * F, 4096, act_fwd_range, &acj);
        if (g->subln) norm_fwd(L->an, L->a, P.ffn_sub_norm_w, NULL, NULL, L->a_rstd, N, F, 0);
        if (L->anq != L->an && !int_site(m, l, "w2")) bf_quant_acts(L->an, N, F, L->anq);
        memcpy(next, L->h_mid, N * D * sizeof(float));
        linear(m, l, "w2", next, L->an, L->anq, N, F, D, 1);
    }

    const float *onw = m->params + bf_model_param(m, "out_norm.w")->offset;
    bf_param *onb = bf_model_param(m, "out_norm.b");
    norm_fwd(a->fn, a->h_out, onw, onb ? m->params + onb->offset : NULL, a->fn_mean, a->fn_rstd, N, D, ln);

    /* logits only where a loss is taken: M targeted rows */
    size_t M = 0;
    for (size_t n = 0; n < N; n++)
        if (a->y[n] >= 0) a->tidx[M++] = (int32_t)n;
    a->M = M;
    m->last_targets = M;
    if (!M) { m->last_loss = 0; return 0; }
    for (size_t k = 0; k < M; k++) memcpy(a->fsel + k * D, a->fn + (size_t)a->tidx[k] * D, D * sizeof(float));
    bf_param *hp = bf_model_param(m, "head");
    const float *head = hp ? m->params + hp->offset : tok;
    mm_fwd(a->logp, a->fsel, head, M, D, V, 0);
    double *rl = bf_xmalloc(M * sizeof *rl);
    lsm_job lj = {a->logp, a->y, a->tidx, V, rl};
    bf_parallel(M, 16, logsoftmax_rows, &lj);
    double loss = 0;
    for (size_t k = 0; k < M; k++) loss += rl[k];
    free(rl);
    m->last_loss = loss / (double)M;
    return m->last_loss;
}

double bf_model_forward(bf_model *m, const int32_t *x, const int32_t *y, int B, int T)
{
    return forward(m, x, y, B, T, 0, 0);
}

double bf_model_forward_cached(bf_model *m, const int32_t *x, const int32_t *y, int B, int T, int pos0)
{
    if (!m->acts || m->acts->kv_B != B || pos0 < 0 || pos0 + T > m->cfg.ctx) {
        fprintf(stderr, "%s: internal error: cached forward of %d rows at %d+%d without a matching cache\n", bf_progname, B,
                pos0, T);
        abort();
    }
    return forward(m, x, y, B, T, (size_t)pos0, 1);
}

/* --------------------------------------------------------------- backward */

static float *grad_of(const bf_model *m, int l, const char *what)
{
    bf_param *p = layer_param(m, l, what);
    return p ? m->grads + p->offset : NULL;
}

void bf_model_backward(bf_model *m)
{
    if (m->inference) {
        fprintf(stderr, "%s: internal error: a backward on a model set up for inference\n", bf_progname);
        abort();
    }
    const bf_config *g = &m->cfg;
    bf_acts *a = m->acts;
    if (!a || !a->M) return;
    size_t N = a->N, T = (size_t)a->T, B = (size_t)a->B, M = a->M;
    size_t D = (size_t)g->d_model, F = (size_t)g->d_ff, H = (size_t)g->n_head, hd = D / H, V = (size_t)g->vocab;
    int ln = g->norm == BF_NORM_LAYER;

    /* d(loss)/d(logits) = (softmax − onehot)/M at targeted rows */
    float *dlog = a->dfsel;
    for (size_t k = 0; k < M; k++) {
        const float *lp = a->logp + k * V;
        float *d = dlog + k * V;
        for (size_t c = 0; c < V; c++) d[c] = expf(lp[c]) / (float)M;
        d[a->y[a->tidx[k]]] -= 1.0f / (float)M;
        if (m->kl_weight > 0 && m->kl_ref) {
            /* d/dz KL(p_ref ‖ softmax z) = p − p_ref */
            const float *rl = m->kl_ref + k * V;
            float w = (float)(m->kl_weight / (double)M);
            for (size_t c = 0; c < V; c++) d[c] += w * (expf(lp[c]) - expf(rl[c]));
        }
    }
    bf_param *hp = bf_model_param(m, "head"), *tp = bf_model_param(m, "tok_emb");
    const float *head = m->params + (hp ? hp : tp)->offset;
    float *dhead = m->grads + (hp ? hp : tp)->offset;
    float *dfn_sel = a->dq;   /* [M,D], free until the attention backward */
    mm_bwd(dfn_sel, 0, dhead, dlog, a->fsel, head, M, D, V);
    float *dfn = a->dn;
    memset(dfn, 0, N * D * sizeof(float));
    for (size_t k = 0; k < M; k++) memcpy(dfn + (size_t)a->tidx[k] * D, dfn_sel + k * D, D * sizeof(float));

    float *dh = a->dh;
    memset(dh, 0, N * D * sizeof(float));
    bf_param *onw = bf_model_param(m, "out_norm.w"), *onb = bf_model_param(m, "out_norm.b");
    norm_bwd(dh, m->grads + onw->offset, onb ? m->grads + onb->offset : NULL, dfn, a->h_out, m->params + onw->offset,
             a->fn_mean, a->fn_rstd, N, D, ln);

    for (int l = g->n_layer - 1; l >= 0; l--) {
        layer_acts *L = &a->L[l];
        bf_layer_params P = bf_model_layer(m, m->params, l), G = bf_model_layer(m, m->grads, l);

        /* MLP: dh flows to h_mid unchanged, and through w2, act, w1/w3, norm */
        float *dan = L->an != L->a ? a->dan : a->da;
        mm_bwd(dan, 0, grad_of(m, l, "w2"), dh, input_for(m, l, "w2", L->an, L->anq), fwd_of(m, l, "w2"), N, F, D);
        if (g->subln) {
            memset(a->da, 0, N * F * sizeof(float));
            norm_bwd(a->da, G.ffn_sub_norm_w, NULL, dan, L->a, P.ffn_sub_norm_w, NULL, L->a_rstd, N, F, 0);
        }
        act_job acj = {L->u, L->g, a->da, NULL, a->du, a->dg, g->act};
        bf_parallel(N * F, 4096, act_bwd_range, &acj);
        mm_bwd(a->dn, 0, grad_of(m, l, "w1"), a->du, input_for(m, l, "w1", L->n2, L->n2q), fwd_of(m, l, "w1"), N, D, F);
        if (g->act != BF_ACT_GELU)
            mm_bwd(a->dn, 1, grad_of(m, l, "w3"), a->dg, input_for(m, l, "w3", L->n2, L->n2q), fwd_of(m, l, "w3"), N, D, F);
        norm_bwd(dh, G.mlp_norm_w, G.mlp_norm_b, a->dn, L->h_mid, P.mlp_norm_w, L->n2_mean, L->n2_rstd, N, D, ln);

        /* attention */
        float *daon = g->subln ? a->dsub : a->dao;
        mm_bwd(daon, 0, grad_of(m, l, "wo"), dh, input_for(m, l, "wo", L->aon, L->aonq), fwd_of(m, l, "wo"), N, D, D);
        if (g->subln) {
            memset(a->dao, 0, N * D * sizeof(float));
            norm_bwd(a->dao, G.attn_sub_norm_w, NULL, daon, L->ao, P.attn_sub_norm_w, NULL, L->ao_rstd, N, D, 0);
        }
        memset(a->dq, 0, N * D * sizeof(float));
        memset(a->dk, 0, N * D * sizeof(float));
        memset(a->dv, 0, N * D * sizeof(float));
        attn_job aj = {L->q, L->k, L->v, L->att, NULL, a->dq, a->dk, a->dv, a->dao, B, T, D, H, hd, NULL, T, 0};
        bf_parallel(B * H, 1, attn_bwd_tasks, &aj);
        if (g->pos == BF_POS_ROPE) {
            rope(a, a->dq, N, T, D, hd, 0, 1);
            rope(a, a->dk, N, T, D, hd, 0, 1);
        }
        mm_bwd(a->dn, 0, grad_of(m, l, "wq"), a->dq, input_for(m, l, "wq", L->n1, L->n1q), fwd_of(m, l, "wq"), N, D, D);
        mm_bwd(a->dn, 1, grad_of(m, l, "wk"), a->dk, input_for(m, l, "wk", L->n1, L->n1q), fwd_of(m, l, "wk"), N, D, D);
        mm_bwd(a->dn, 1, grad_of(m, l, "wv"), a->dv, input_for(m, l, "wv", L->n1, L->n1q), fwd_of(m, l, "wv"), N, D, D);
        norm_bwd(dh, G.attn_norm_w, G.attn_norm_b, a->dn, L->h_in, P.attn_norm_w, L->n1_mean, L->n1_rstd, N, D, ln);
    }

    /* embeddings, in row order */
    float *dtok = m->grads + tp->offset;
    bf_param *pp = bf_model_param(m, "pos_emb");
    for (size_t n = 0; n < N; n++) {
        float *dt = dtok + (size_t)a->x[n] * D, *dr = dh + n * D;
        for (size_t c = 0; c < D; c++) dt[c] += dr[c];
        if (pp) {
            float *dp = m->grads + pp->offset + (n % T) * D;
            for (size_t c = 0; c < D; c++) dp[c] += dr[c];
        }
    }
}

void bf_model_row_stats(const bf_model *m, int b, int *targets, int *correct)
{
    const bf_acts *a = m->acts;
    size_t V = (size_t)m->cfg.vocab, T = (size_t)a->T;
    *targets = *correct = 0;
    for (size_t k = 0; k < a->M; k++) {
        size_t n = (size_t)a->tidx[k];
        if (n / T != (size_t)b) continue;
        const float *lp = a->logp + k * V;
        size_t best = 0;
        for (size_t c = 1; c < V; c++) if (lp[c] > lp[best]) best = c;
        (*targets)++;
        if ((int32_t)best == a->y[n]) (*correct)++;
    }
}

const float *bf_model_target_logprobs(const bf_model *m, size_t k) { return m->acts->logp + k * (size_t)m->cfg.vocab; }

const int32_t *bf_model_target_index(const bf_model *m, size_t *n)
{
    *n = m->acts ? m->acts->M : 0;
    return m->acts ? m->acts->tidx : NULL;
}

double bf_model_kl(const bf_model *m, const float *ref_logp)
{
    const bf_acts *a = m->acts;
    size_t V = (size_t)m->cfg.vocab;
    if (!a || !a->M) return 0;
    double kl = 0;
    for (size_t k = 0; k < a->M; k++) {
        const float *lp = a->logp + k * V, *rl = ref_logp + k * V;
        for (size_t c = 0; c < V; c++) kl += exp((double)rl[c]) * ((double)rl[c] - (double)lp[c]);
    }
    return kl / (double)a->M;
}

int bf_model_qk_clip(bf_model *m, double tau)
{
    if (!m->qk_max) return 0;
    size_t H = (size_t)m->cfg.n_head, D = (size_t)m->cfg.d_model, hd = D / H;
    int clipped = 0;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        bf_layer_params P = bf_model_layer(m, m->params, l);
        for (size_t h = 0; h < H; h++) {
            float mx = m->qk_max[(size_t)l * H + h];
            if (!(mx > tau)) continue;
            float s = (float)sqrt(tau / mx);
            /* rows h·hd … (h+1)·hd of wq and wk make head h's q and k */
            for (size_t r = h * hd; r < (h + 1) * hd; r++)
                for (size_t c = 0; c < D; c++) {
                    P.wq[r * D + c] *= s;
                    P.wk[r * D + c] *= s;
                }
            clipped++;
        }
    }
    return clipped;
}
