/* lora.c — LoRA adapters as a weight source (bf/lora.h). */
#include "bf/lora.h"
#include "bf/blas.h"
#include "bf/quant.h"
#include "bf/rng.h"
#include "bf/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const bf_lora_target_names[] = {"wq", "wk", "wv", "wo", "w1", "w3", "w2", NULL};

int bf_lora_targets_parse(const char *list, unsigned *mask)
{
    *mask = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        unsigned bit = 0;
        if (n == 4 && !strncmp(p, "attn", 4)) bit = BF_LORA_ATTN;
        else if (n == 3 && !strncmp(p, "mlp", 3)) bit = BF_LORA_MLP;
        else if (n == 3 && !strncmp(p, "all", 3)) bit = BF_LORA_ATTN | BF_LORA_MLP;
        else
            for (int k = 0; k < 7; k++)
                if (n == 2 && !strncmp(p, bf_lora_target_names[k], 2)) bit = 1u << k;
        if (!bit) return bf_err("unknown LoRA target '%.*s' (wq wk wv wo w1 w3 w2, attn, mlp, all)", (int)(n > 32 ? 32 : n), p);
        *mask |= bit;
        p += n;
        if (*p == ',') p++;
    }
    return *mask ? 0 : bf_err("no LoRA target given");
}

/* ------------------------------------------------------------- the source */

struct bf_lora_src {
    bf_wsource base;
    float scale;             /* α/r */
    size_t r;
    float *A, *B, *dA, *dB;  /* into the adapter's pset */
    float *base_w;           /* the frozen base, [rows, cols]: a ternary matrix's latent when through_q */
    float *w_eff, *dw;       /* [rows, cols] each */
    int through_q;           /* W_eff = Q(base + scale·B·A) with rule q */
    bf_qspec q;
    float *sum;              /* [rows, cols]: base + scale·B·A before Q */
    bf_tmat *tm;             /* through_q, on a model that trains on the kernels: W_eff's kernel form */
    float *tm_scale;
    bf_weight_below below;   /* what the weight was before, restored on detach */
    bf_weight *w;            /* the weight it sits on */
};

/* The scale of B·A at strength s: s·α/r, computed once here so that the
 * student and a merge at the strength it was trained at add the same floats. */
static float ba_scale(const bf_adapter *a, double strength) { return (float)(strength * a->alpha / (double)a->rank); }

/* out += scale·B·A over a [rows, cols] matrix: the one product a student's
 * refresh and a merge both make */
static void add_ba(size_t rows, size_t cols, size_t r, float scale, const float *B, const float *A, float *out)
{
    bf_sgemm(0, 0, rows, cols, r, scale, B, r, A, cols, 1.0f, out, cols);
}

/* W_eff = W_base + s·(α/r)·B·A, or Q(L + s·(α/r)·B·A) through the quantizer */
static int lora_refresh(bf_wsource *s, bf_model *m, bf_weight *w)
{
    bf_lora_src *l = (bf_lora_src *)s;
    float *out = l->through_q ? l->sum : l->w_eff;
    memcpy(out, l->base_w, w->rows * w->cols * sizeof(float));
    add_ba(w->rows, w->cols, l->r, l->scale, l->B, l->A, out);
    w->w = l->w_eff;
    w->tm = NULL;
    if (!l->through_q) return 0;
    /* a ternary matrix again: on the integer kernels where the model trains on them */
    int rc = bf_ternary_form(m, &l->q, l->sum, w->rows, w->cols, l->w_eff, &l->tm, &l->tm_scale);
    w->tm = l->tm;
    return rc;
}

/* dB += (α/r)·dW·Aᵀ;  dA += (α/r)·Bᵀ·dW */
static void lora_backward(bf_wsource *s, bf_model *m, bf_weight *w)
{
    bf_lora_src *l = (bf_lora_src *)s;
    bf_sgemm(0, 1, w->rows, l->r, w->cols, l->scale, l->dw, w->cols, l->A, w->cols, 1.0f, l->dB, l->r);
    bf_sgemm(1, 0, l->r, w->cols, w->rows, l->scale, l->B, l->r, l->dw, w->cols, 1.0f, l->dA, w->cols);
}

/* dW_eff, and this matrix's dA and dB */
static void lora_zero_grad(bf_wsource *s, bf_model *m, bf_weight *w)
{
    bf_lora_src *l = (bf_lora_src *)s;
    memset(l->dw, 0, w->rows * w->cols * sizeof(float));
    memset(l->dA, 0, l->r * w->cols * sizeof(float));
    memset(l->dB, 0, w->rows * l->r * sizeof(float));
}

/* When the model is freed with the adapter attached: the inner source too. */
static void lora_free(bf_wsource *s)
{
    bf_lora_src *l = (bf_lora_src *)s;
    if (l->below.src && l->below.src->ops->free) l->below.src->ops->free(l->below.src);
    bf_aligned_free(l->base_w);
    bf_aligned_free(l->w_eff);
    bf_aligned_free(l->dw);
    bf_aligned_free(l->sum);
    bf_ternary_form_free(&l->tm, &l->tm_scale);
    free(l);
}

static const bf_wsource_ops lora_ops = {"lora", lora_refresh, lora_backward, lora_zero_grad, lora_free};

/* ------------------------------------------------------------ the adapter */

int bf_lora_targets_from_meta(const bf_val *meta, const char *what, unsigned *mask)
{
    const bf_val *t = bf_val_get(meta, "targets");
    if (!t || t->type != BF_ARR || !t->v.a.n) return bf_err("%s meta has no 'targets'", what);
    unsigned targets = 0;
    for (size_t k = 0; k < t->v.a.n; k++) {
        const bf_val *e = &t->v.a.items[k];
        int l;
        char kind[8];
        if (e->type != BF_STR || sscanf(e->v.s.p, "blk.%d.%7s", &l, kind) != 2)
            return bf_err("%s target %zu is not a block matrix name", what, k);
        unsigned bit = 0;
        for (int j = 0; j < 7; j++)
            if (!strcmp(kind, bf_lora_target_names[j])) bit = 1u << j;
        if (!bit) return bf_err("%s target '%.64s' is not a block matrix", what, e->v.s.p);
        targets |= bit;
    }
    *mask = targets;
    return 0;
}

size_t bf_lora_target_list(const bf_model *m, unsigned targets, char (*names)[64])
{
    size_t n = 0;
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (int k = 0; k < 7; k++) {
            if (!(targets & (1u << k))) continue;
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s", l, bf_lora_target_names[k]);
            if (!bf_model_param(m, name)) continue;   /* w3 with gelu */
            if (names) memcpy(names[n], name, sizeof name);
            n++;
        }
    return n;
}

/* Registry, value and gradient blocks for the matrices' A and B. */
static int layout(bf_adapter *a, const bf_model *m)
{
    size_t n = a->nmat, off = 0;
    a->ps.np = 2 * n;
    a->ps.p = bf_xcalloc(2 * n, sizeof *a->ps.p);
    for (size_t k = 0; k < n; k++) {
        const bf_param *w = bf_model_param(m, a->mat[k]);
        uint64_t shp[2][2] = {{(uint64_t)a->rank, w->shape[1]}, {w->shape[0], (uint64_t)a->rank}};
        for (int j = 0; j < 2; j++) {
            bf_param *p = &a->ps.p[2 * k + j];
            snprintf(p->name, sizeof p->name, "%s.%s", a->mat[k], j ? "lora_b" : "lora_a");
            p->ndim = 2;
            p->shape[0] = shp[j][0];
            p->shape[1] = shp[j][1];
            p->numel = (size_t)(shp[j][0] * shp[j][1]);
            p->offset = off;
            off += (p->numel + 15) / 16 * 16;
        }
    }
    a->ps.n = off;
    a->ps.params = bf_aligned_alloc((off ? off : 1) * sizeof(float));
    a->ps.grads = bf_aligned_alloc((off ? off : 1) * sizeof(float));
    if (!a->ps.params || !a->ps.grads) return -1;
    memset(a->ps.params, 0, (off ? off : 1) * sizeof(float));
    memset(a->ps.grads, 0, (off ? off : 1) * sizeof(float));
    a->src = bf_xcalloc(n ? n : 1, sizeof *a->src);
    return 0;
}

static int check_shape(const bf_model *m, int rank, unsigned targets, double alpha)
{
    if (!(alpha > 0) || !isfinite(alpha) || alpha > 1e6) return bf_err("LoRA alpha must be in (0, 1e6]");
    if (rank < 1) return bf_err("LoRA rank must be at least 1");
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (int k = 0; k < 7; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s", l, bf_lora_target_names[k]);
            const bf_param *p = (targets & (1u << k)) ? bf_model_param(m, name) : NULL;
            if (p && ((uint64_t)rank > p->shape[0] || (uint64_t)rank > p->shape[1]))
                return bf_err("LoRA rank %d exceeds '%s' [%llu, %llu]", rank, name, (unsigned long long)p->shape[0],
                              (unsigned long long)p->shape[1]);
        }
    return 0;
}

int bf_adapter_create(bf_adapter *a, const bf_model *m, int rank, double alpha, unsigned targets, uint64_t seed,
                      uint64_t base_digest)
{
    memset(a, 0, sizeof *a);
    if (check_shape(m, rank, targets, alpha)) return -1;
    a->rank = rank;
    a->alpha = alpha;
    a->targets = targets;
    a->base_digest = base_digest;
    a->through_quant = 1;
    a->strength = 1;
    a->nmat = bf_lora_target_list(m, targets, NULL);
    if (!a->nmat) return bf_err("the model has none of the LoRA targets");
    a->mat = bf_xcalloc(a->nmat, sizeof *a->mat);
    bf_lora_target_list(m, targets, a->mat);
    if (layout(a, m)) { bf_adapter_free(a); return -1; }
    /* A uniform in ±1/sqrt(in) (a stream per matrix), B zero */
    for (size_t k = 0; k < a->nmat; k++) {
        const bf_param *pa = &a->ps.p[2 * k];
        char label[96];
        snprintf(label, sizeof label, "lora.%s", a->mat[k]);
        bf_rng r = bf_rng_derive(seed, label);
        float bound = (float)(1.0 / sqrt((double)pa->shape[1]));
        float *A = a->ps.params + pa->offset;
        for (size_t j = 0; j < pa->numel; j++) A[j] = bound * (float)(2.0 * bf_rng_uniform(&r) - 1.0);
    }
    return 0;
}

void bf_adapter_free(bf_adapter *a)
{
    free(a->ps.p);
    bf_aligned_free(a->ps.params);
    bf_aligned_free(a->ps.grads);
    free(a->src);
    free(a->mat);
    memset(a, 0, sizeof *a);
}

int bf_adapter_attach(bf_adapter *a, bf_model *m)
{
    for (size_t k = 0; k < a->nmat; k++) {
        if (a->src[k]) continue;
        bf_weight *w = bf_model_weight(m, a->mat[k]);
        if (!w) return bf_err("the model has no '%s'", a->mat[k]);
        if (!w->w) return bf_err("'%s' runs on the integer kernels only; LoRA needs its float form", a->mat[k]);
        size_t n = w->rows * w->cols;
        bf_lora_src *l = bf_xcalloc(1, sizeof *l);
        l->base.ops = &lora_ops;
        l->r = (size_t)a->rank;
        l->scale = ba_scale(a, a->strength);
        const bf_qspec *q = a->through_quant ? bf_weight_qspec(w) : NULL;
        const bf_param *pa = &a->ps.p[2 * k], *pb = &a->ps.p[2 * k + 1];
        l->A = a->ps.params + pa->offset;
        l->B = a->ps.params + pb->offset;
        l->dA = a->ps.grads + pa->offset;
        l->dB = a->ps.grads + pb->offset;
        l->base_w = bf_aligned_alloc(n * sizeof(float));
        l->w_eff = bf_aligned_alloc(n * sizeof(float));
        l->dw = bf_aligned_alloc(n * sizeof(float));
        if (q) {
            l->through_q = 1;
            l->q = *q;
            l->sum = bf_aligned_alloc(n * sizeof(float));
        }
        if (!l->base_w || !l->w_eff || !l->dw || (q && !l->sum)) { lora_free(&l->base); return -1; }
        /* the base: the latent the quantizer reads, or the weight as computed */
        memcpy(l->base_w, q ? m->params + w->param->offset : w->w, n * sizeof(float));
        memset(l->dw, 0, n * sizeof(float));
        l->w = w;
        bf_weight_stack(w, &l->below, &l->base, l->dw);
        a->src[k] = l;
        if (lora_refresh(&l->base, m, w)) return -1;
    }
    return 0;
}

int bf_adapter_refresh(bf_adapter *a, bf_model *m)
{
    for (size_t k = 0; k < a->nmat; k++)
        if (a->src[k] && lora_refresh(&a->src[k]->base, m, a->src[k]->w)) return -1;
    return 0;
}

void bf_adapter_detach(bf_adapter *a, bf_model *m)
{
    for (size_t k = 0; k < a->nmat; k++) {
        bf_lora_src *l = a->src[k];
        if (!l) continue;
        bf_weight *w = bf_model_weight(m, a->mat[k]);
        bf_weight_unstack(w, &l->below);   /* the model keeps the source below */
        lora_free(&l->base);
        a->src[k] = NULL;
    }
}

int bf_adapter_merge(bf_adapter *a, bf_model *m, double strength)
{
    bf_adapter_detach(a, m);
    float s = ba_scale(a, strength);
    for (size_t k = 0; k < a->nmat; k++) {
        bf_weight *w = bf_model_weight(m, a->mat[k]);
        const float *A = a->ps.params + a->ps.p[2 * k].offset, *B = a->ps.params + a->ps.p[2 * k + 1].offset;
        /* the parameter: the float weight, or the ternary latent (the
         * pre-image of the codes without one) */
        float *param = m->params + w->param->offset;
        add_ba(w->rows, w->cols, (size_t)a->rank, s, B, A, param);
        for (size_t j = 0; j < w->rows * w->cols; j++)
            if (!isfinite(param[j]))
                return bf_err("merged at strength %g, the adapter makes '%s' hold a value that is not finite", strength, a->mat[k]);
        if (w->src && w->src->ops->refresh(w->src, m, w)) return -1;   /* ternary: quantized again */
    }
    return 0;
}

/* ---------------------------------------------------------------- stream */

int bf_adapter_to_tset(const bf_adapter *a, bf_header *h, bf_tset *out)
{
    bf_header_init(h, "adapter");
    bf_val_set(h->meta, "rank", bf_val_int(a->rank));
    bf_val_set(h->meta, "alpha", bf_val_float(a->alpha));
    bf_val *t = bf_val_arr();
    for (size_t k = 0; k < a->nmat; k++) bf_val_push(t, bf_val_str(a->mat[k]));
    bf_val_set(h->meta, "targets", t);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)a->base_digest);
    bf_val_set(h->meta, "base", bf_val_str(hex));
    bf_val_set(h->meta, "merge", bf_val_str(a->through_quant ? "quant" : "latent"));
    memset(out, 0, sizeof *out);
    for (size_t k = 0; k < a->ps.np; k++) {
        const bf_param *p = &a->ps.p[k];
        bf_tensor *x = bf_tset_add(out);
        if (bf_tensor_init(x, p->name, BF_F32, 2, p->shape)) { bf_tset_release(out); return -1; }
        memcpy(x->data, a->ps.params + p->offset, p->numel * sizeof(float));
    }
    return 0;
}

int bf_adapter_from_tset(bf_adapter *a, const bf_header *h, const bf_tset *s, const bf_model *m, uint64_t base_digest)
{
    memset(a, 0, sizeof *a);
    if (strcmp(h->kind, "adapter") != 0) return bf_err("a '%s' stream, not an adapter", h->kind);
    int64_t rank;
    double alpha;
    if (bf_val_get_int(h->meta, "rank", 0, &rank) || rank < 1 || rank > (1 << 20)) return bf_err("adapter meta has no valid 'rank'");
    if (bf_val_get_num(h->meta, "alpha", 0, &alpha)) return bf_err("adapter meta has no valid 'alpha'");
    const char *base = bf_val_get_str(h->meta, "base");
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)base_digest);
    if (!base || strcmp(base, hex) != 0)
        return bf_err("the adapter was made for another base model (its digest %.16s, this model's %s)", base ? base : "none",
                      hex);
    unsigned targets;
    if (bf_lora_targets_from_meta(h->meta, "adapter", &targets)) return -1;
    const bf_val *t = bf_val_get(h->meta, "targets");   /* checked above: an array of names */
    if (check_shape(m, (int)rank, targets, alpha)) return -1;
    a->rank = (int)rank;
    a->alpha = alpha;
    a->targets = targets;
    a->base_digest = base_digest;
    /* how it was trained on ternary matrices; adapters written before the
     * key existed were trained on scale·codes in float */
    const char *merge = bf_val_get_str(h->meta, "merge");
    if (merge && strcmp(merge, "quant") && strcmp(merge, "latent"))
        return bf_err("adapter meta 'merge' is '%.16s', not quant or latent", merge);
    a->through_quant = merge && !strcmp(merge, "quant");
    a->strength = 1;
    a->nmat = bf_lora_target_list(m, targets, NULL);
    if (a->nmat != t->v.a.n) return bf_err("adapter targets do not match the model's matrices");
    a->mat = bf_xcalloc(a->nmat, sizeof *a->mat);
    bf_lora_target_list(m, targets, a->mat);
    for (size_t k = 0; k < a->nmat; k++)
        if (strcmp(a->mat[k], t->v.a.items[k].v.s.p) != 0) {
            bf_err("adapter targets do not match the model's matrices ('%.64s')", t->v.a.items[k].v.s.p);
            goto fail;
        }
    if (layout(a, m)) goto fail;
    if (s->n != a->ps.np) { bf_err("adapter has %zu tensors; its targets need %zu", s->n, a->ps.np); goto fail; }
    for (size_t k = 0; k < a->ps.np; k++) {
        const bf_param *p = &a->ps.p[k];
        const bf_tensor *x = bf_tset_find(s, p->name);
        if (!x) { bf_err("adapter has no tensor '%s'", p->name); goto fail; }
        if (x->dtype != BF_F32 || x->ndim != 2 || x->shape[0] != p->shape[0] || x->shape[1] != p->shape[1]) {
            bf_err("'%s' is not F32 [%llu, %llu]", p->name, (unsigned long long)p->shape[0], (unsigned long long)p->shape[1]);
            goto fail;
        }
        const float *v = x->data;
        for (size_t j = 0; j < p->numel; j++)
            if (!isfinite(v[j])) { bf_err("'%s' holds a non-finite value", p->name); goto fail; }
        memcpy(a->ps.params + p->offset, v, p->numel * sizeof(float));
    }
    return 0;
fail:
    bf_adapter_free(a);
    return -1;
}
