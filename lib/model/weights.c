/* weights.c — the built-in weight sources (bf/model.h, "weights through one
 * door"): plain F32 and ternary, straight-through or on the integer kernels. */
#include "model_internal.h"
#include "bf/kernels.h"
#include "bf/quant.h"
#include "bf/util.h"

#include <stdlib.h>
#include <string.h>

int bf_layer_weights(bf_layer *L, bf_weight *out[BF_LAYER_WEIGHTS])
{
    bf_weight *all[BF_LAYER_WEIGHTS] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w1, &L->w3, &L->w2};
    int n = 0;
    for (int k = 0; k < BF_LAYER_WEIGHTS; k++)
        if (all[k]->param) out[n++] = all[k];
    return n;
}

void bf_weight_stack(bf_weight *w, bf_weight_below *below, bf_wsource *s, float *dw)
{
    *below = (bf_weight_below){w->src, w->w, w->dw, w->tm};
    w->src = s;
    w->dw = dw;
    w->tm = NULL;
}

void bf_weight_unstack(bf_weight *w, bf_weight_below *below)
{
    w->src = below->src;
    w->w = below->w;
    w->dw = below->dw;
    w->tm = below->tm;
    below->src = NULL;
}

/* ------------------------------------------------------------- ternary */

static void drop_stored(bf_ternary_src *t)
{
    free(t->codes);
    free(t->scales);
    t->codes = NULL;
    t->scales = NULL;
}

/* Whether a ternary matrix that trains runs its forward products on the
 * integer kernels: they are the int8 × ternary products the straight-
 * through forward computes in float (the same numbers, the sums exact
 * before the scales), where the activations are int8 and the kernels are
 * faster than sgemm (every level but the scalar one).  The backward stays
 * in float, on W_eff and the activations' float copy. */
int bf_model_trains_on_kernels(const bf_model *m)
{
    return m->cfg.act_bits == 8 && !m->float_products && bf_kernel_level_get() != BF_KERNEL_SCALAR;
}

/* The kernels' form from codes and scales, laid out on first use. */
static int set_kernel_form(const bf_qspec *q, size_t rows, size_t cols, const int8_t *codes, const float *scale,
                           bf_tmat **tm, float **tm_scale)
{
    size_t ns = bf_qspec_nscales(q, rows);
    if (!*tm) {
        *tm_scale = bf_xmalloc(ns * sizeof(float));
        *tm = bf_xcalloc(1, sizeof **tm);
        if (bf_tmat_alloc(*tm, q->pack, rows, cols, *tm_scale, ns > 1)) return -1;
    }
    memcpy(*tm_scale, scale, ns * sizeof(float));
    for (size_t r = 0; r < rows; r++) bf_tmat_set_row(*tm, r, codes + r * cols);
    return 0;
}

int bf_ternary_form(const bf_model *m, const bf_qspec *q, const float *latent, size_t rows, size_t cols, float *w_eff,
                    bf_tmat **tm, float **tm_scale)
{
    if (!*tm && !bf_model_trains_on_kernels(m)) {
        bf_quant_fake(q, latent, rows, cols, w_eff);
        return 0;
    }
    size_t n = rows * cols, ns = bf_qspec_nscales(q, rows);
    int8_t *codes = bf_xmalloc(n ? n : 1);
    float *scale = bf_xmalloc(ns * sizeof *scale);
    bf_quant_weights(q, latent, rows, cols, codes, scale);
    bf_quant_scaled(q, codes, scale, rows, cols, w_eff);
    int rc = set_kernel_form(q, rows, cols, codes, scale, tm, tm_scale);
    free(codes);
    free(scale);
    return rc;
}

void bf_ternary_form_free(bf_tmat **tm, float **tm_scale)
{
    if (*tm) bf_tmat_free(*tm);
    free(*tm);
    free(*tm_scale);
    *tm = NULL;
    *tm_scale = NULL;
}

/* W_eff = scale·Q(latent), re-quantized from the latent with the tensor's own
 * rule (and the kernels' form with it, when it has one or trains on them);
 * the stream's codes are dropped (the latent rules from now on).  The
 * gradient needs no mapping: dw is the latent's gradient (straight through). */
static int ternary_refresh(bf_wsource *s, bf_model *m, bf_weight *w)
{
    bf_ternary_src *t = (bf_ternary_src *)s;
    if (t->tm && !w->w) return 0;   /* on the kernels only: nothing to re-make */
    drop_stored(t);
    w->w = t->w_eff;
    int rc = bf_ternary_form(m, &t->q, m->params + w->param->offset, w->rows, w->cols, t->w_eff, &t->tm, &t->tm_scale);
    w->tm = t->tm;
    return rc;
}

static void ternary_free(bf_wsource *s)
{
    bf_ternary_src *t = (bf_ternary_src *)s;
    drop_stored(t);
    bf_aligned_free(t->w_eff);
    bf_ternary_form_free(&t->tm, &t->tm_scale);
    free(t);
}

static const bf_wsource_ops ternary_ops = {"ternary", ternary_refresh, NULL, NULL, ternary_free};

bf_ternary_src *bf_ternary_src_of(const bf_weight *w)
{
    return w->src && w->src->ops == &ternary_ops ? (bf_ternary_src *)w->src : NULL;
}

const bf_qspec *bf_weight_qspec(const bf_weight *w)
{
    const bf_ternary_src *t = bf_ternary_src_of(w);
    return t ? &t->q : NULL;
}

static bf_ternary_src *ternary_new(bf_model *m, bf_weight *w, const bf_qspec *q)
{
    bf_ternary_src *t = bf_xcalloc(1, sizeof *t);
    t->base.ops = &ternary_ops;
    t->q = *q;
    w->src = &t->base;
    w->quant_input = m->cfg.act_bits == 8;
    return t;
}

int bf_model_set_ternary(bf_model *m, bf_weight *w, const bf_qspec *q)
{
    if (!w->param || !w->param->is_block_matrix) return bf_err("only block matrices can be ternary");
    if (w->src) return bf_err("'%s' has a weight source already", w->param->name);
    bf_ternary_src *t = ternary_new(m, w, q);
    t->w_eff = bf_aligned_alloc(w->rows * w->cols * sizeof(float));
    if (!t->w_eff) return -1;
    w->w = t->w_eff;
    return ternary_refresh(&t->base, m, w);
}

int bf_ternary_src_load(bf_model *m, bf_weight *w, const bf_tgroup *g, int for_kernels)
{
    size_t rows = w->rows, cols = w->cols, ns = g->nscales;
    bf_ternary_src *t = ternary_new(m, w, &g->q);
    if (for_kernels) {
        /* the stream's codes straight into the kernels' layout, row by row;
         * the float parameter is never written (zero pages, no memory) */
        t->tm_scale = bf_xmalloc(ns * sizeof(float));
        memcpy(t->tm_scale, g->scale->data, ns * sizeof(float));
        t->tm = bf_xcalloc(1, sizeof *t->tm);
        if (bf_tmat_alloc(t->tm, g->q.pack, rows, cols, t->tm_scale, ns > 1)) return -1;
        int8_t *row = bf_xmalloc(cols ? cols : 1);
        for (size_t r = 0; r < rows; r++) {
            bf_tgroup_codes_row(g, r, row);
            bf_tmat_set_row(t->tm, r, row);
        }
        free(row);
        w->tm = t->tm;
        w->w = NULL;
        w->dw = NULL;
        return 0;
    }
    /* The forward's view is the stream's scale·codes, exactly, whatever the
     * latent would re-quantize to.  Without a latent the parameter is a
     * pre-image of the codes under the rule (bf_quant_preimage), so that
     * training, a merge or an adapter trained through the quantizer starts
     * from the matrix the stream holds (absmean would otherwise shrink
     * scale·codes' scale at the first re-quantization). */
    float *param = m->params + w->param->offset;
    t->codes = bf_xmalloc(rows * cols > 0 ? rows * cols : 1);
    t->scales = bf_xmalloc(ns * sizeof(float));
    memcpy(t->scales, g->scale->data, ns * sizeof(float));
    for (size_t r = 0; r < rows; r++) bf_tgroup_codes_row(g, r, t->codes + r * cols);
    if (g->latent) memcpy(param, g->latent->data, rows * cols * sizeof(float));
    else bf_quant_preimage(&g->q, t->codes, t->scales, rows, cols, param);
    t->w_eff = bf_aligned_alloc(rows * cols * sizeof(float));
    if (!t->w_eff) return -1;
    bf_tgroup_dequant(g, t->w_eff);
    w->w = t->w_eff;
    if (!bf_model_trains_on_kernels(m)) return 0;
    if (set_kernel_form(&t->q, rows, cols, t->codes, t->scales, &t->tm, &t->tm_scale)) return -1;
    w->tm = t->tm;
    return 0;
}

void bf_ternary_src_codes(const bf_model *m, const bf_weight *w, int8_t *codes, float *scale)
{
    const bf_ternary_src *t = bf_ternary_src_of(w);
    size_t n = w->rows * w->cols, ns = bf_qspec_nscales(&t->q, w->rows);
    if (t->codes) {   /* untrained since loading: the stream's own codes and scales */
        memcpy(codes, t->codes, n);
        memcpy(scale, t->scales, ns * sizeof(float));
    } else {
        bf_quant_weights(&t->q, m->params + w->param->offset, w->rows, w->cols, codes, scale);
    }
}

/* ------------------------------------------------------- the whole model */

int bf_model_is_quantized(const bf_model *m)
{
    for (int l = 0; l < m->cfg.n_layer; l++) {
        bf_weight *w[BF_LAYER_WEIGHTS];
        int n = bf_layer_weights(&m->layer[l], w);
        for (int k = 0; k < n; k++)
            if (bf_ternary_src_of(w[k])) return 1;
    }
    return 0;
}

int bf_model_has_sources(const bf_model *m)
{
    for (int l = 0; l < m->cfg.n_layer; l++) {
        bf_weight *w[BF_LAYER_WEIGHTS];
        int n = bf_layer_weights(&m->layer[l], w);
        for (int k = 0; k < n; k++)
            if (w[k]->src) return 1;
    }
    return 0;
}

int bf_model_refresh(bf_model *m)
{
    for (int l = 0; l < m->cfg.n_layer; l++) {
        bf_weight *w[BF_LAYER_WEIGHTS];
        int n = bf_layer_weights(&m->layer[l], w);
        for (int k = 0; k < n; k++)
            if (w[k]->src && w[k]->src->ops->refresh(w[k]->src, m, w[k])) return -1;
    }
    return 0;
}

int bf_model_use_int_kernels(bf_model *m)
{
    m->inference = 1;
    if (m->acts) m->acts->B = 0;   /* lay the activations out again, without the backward's */
    if (m->cfg.act_bits != 8) return 0;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        bf_weight *w[BF_LAYER_WEIGHTS];
        int n = bf_layer_weights(&m->layer[l], w);
        for (int k = 0; k < n; k++) {
            bf_ternary_src *t = bf_ternary_src_of(w[k]);
            if (!t || t->tm) continue;
            size_t rows = w[k]->rows, cols = w[k]->cols;
            int8_t *codes = bf_xmalloc(rows * cols > 0 ? rows * cols : 1);
            float *scale = bf_xmalloc(bf_qspec_nscales(&t->q, rows) * sizeof *scale);
            bf_ternary_src_codes(m, w[k], codes, scale);
            int rc = set_kernel_form(&t->q, rows, cols, codes, scale, &t->tm, &t->tm_scale);
            free(codes);
            free(scale);
            if (rc) return -1;
            w[k]->tm = t->tm;
        }
    }
    return 0;
}

void bf_model_use_float_products(bf_model *m)
{
    m->float_products = 1;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        bf_weight *w[BF_LAYER_WEIGHTS];
        int n = bf_layer_weights(&m->layer[l], w);
        for (int k = 0; k < n; k++) {
            bf_ternary_src *t = bf_ternary_src_of(w[k]);
            if (!t || !t->tm || !w[k]->w) continue;   /* kernels only: nothing else to run on */
            bf_ternary_form_free(&t->tm, &t->tm_scale);
            w[k]->tm = NULL;
        }
    }
}
