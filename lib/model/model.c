/* model.c — the parameter registry and the typed per-layer view of it,
 * built once (bf/model.h). */
#include "model_internal.h"
#include "bf/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bf_param *bf_model_param(const bf_model *m, const char *name)
{
    for (size_t k = 0; k < m->np; k++)
        if (strcmp(m->p[k].name, name) == 0) return &m->p[k];
    return NULL;
}

/* The parameter named fmt (with layer l), and where it and its gradient live. */
static bf_param *bind(bf_model *m, const char *fmt, int l, float **val, float **grad)
{
    char name[64];
    snprintf(name, sizeof name, fmt, l);
    bf_param *p = bf_model_param(m, name);
    if (val) *val = p ? m->params + p->offset : NULL;
    if (grad) *grad = p ? m->grads + p->offset : NULL;
    return p;
}

static void bind_norm(bf_model *m, bf_norm_params *n, const char *w_fmt, const char *b_fmt, int l)
{
    bind(m, w_fmt, l, &n->w, &n->dw);
    bind(m, b_fmt, l, &n->b, &n->db);
}

/* A block matrix starts as the plain F32 source: W_eff is the parameter. */
static void bind_weight(bf_model *m, bf_weight *w, const char *fmt, int l)
{
    memset(w, 0, sizeof *w);
    w->param = bind(m, fmt, l, &w->w, &w->dw);
    if (w->param) {
        w->rows = w->param->shape[0];
        w->cols = w->param->shape[1];
    }
}

static void build_view(bf_model *m)
{
    m->layer = bf_xcalloc((size_t)m->cfg.n_layer, sizeof *m->layer);
    for (int l = 0; l < m->cfg.n_layer; l++) {
        bf_layer *L = &m->layer[l];
        bind_norm(m, &L->attn_norm, "blk.%d.attn_norm.w", "blk.%d.attn_norm.b", l);
        bind_norm(m, &L->attn_sub_norm, "blk.%d.attn_sub_norm.w", "blk.%d.attn_sub_norm.b", l);
        bind_norm(m, &L->mlp_norm, "blk.%d.mlp_norm.w", "blk.%d.mlp_norm.b", l);
        bind_norm(m, &L->ffn_sub_norm, "blk.%d.ffn_sub_norm.w", "blk.%d.ffn_sub_norm.b", l);
        bind_weight(m, &L->wq, "blk.%d.wq", l);
        bind_weight(m, &L->wk, "blk.%d.wk", l);
        bind_weight(m, &L->wv, "blk.%d.wv", l);
        bind_weight(m, &L->wo, "blk.%d.wo", l);
        bind_weight(m, &L->w1, "blk.%d.w1", l);
        bind_weight(m, &L->w3, "blk.%d.w3", l);
        bind_weight(m, &L->w2, "blk.%d.w2", l);
    }
    bind(m, "tok_emb", 0, &m->tok_emb, &m->dtok_emb);
    bind(m, "pos_emb", 0, &m->pos_emb, &m->dpos_emb);
    bind_norm(m, &m->out_norm, "out_norm.w", "out_norm.b", 0);
    if (!bind(m, "head", 0, &m->head, &m->dhead)) {   /* tied: the embedding is the head */
        m->head = m->tok_emb;
        m->dhead = m->dtok_emb;
    }
    bind(m, "rec.y0", 0, &m->rec_y0, &m->drec_y0);
    bind(m, "rec.z0", 0, &m->rec_z0, &m->drec_z0);
    bind(m, "halt.w", 0, &m->halt_w, &m->dhalt_w);
    bind(m, "halt.b", 0, &m->halt_b, &m->dhalt_b);
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
    build_view(m);
    return 0;
}

bf_pset bf_model_pset(bf_model *m)
{
    bf_pset ps = {m->p, m->np, m->params, m->grads, m->n_params};
    return ps;
}

bf_weight *bf_model_weight(bf_model *m, const char *name)
{
    for (int l = 0; l < m->cfg.n_layer; l++) {
        bf_weight *w[BF_LAYER_WEIGHTS];
        int n = bf_layer_weights(&m->layer[l], w);
        for (int k = 0; k < n; k++)
            if (strcmp(w[k]->param->name, name) == 0) return w[k];
    }
    return NULL;
}

void bf_model_free(bf_model *m)
{
    if (!m) return;
    for (int l = 0; m->layer && l < m->cfg.n_layer; l++) {
        bf_weight *w[BF_LAYER_WEIGHTS];
        int n = bf_layer_weights(&m->layer[l], w);
        for (int k = 0; k < n; k++)
            if (w[k]->src && w[k]->src->ops->free) w[k]->src->ops->free(w[k]->src);
    }
    bf_acts_free(m->acts);
    bf_net_free(m->net);
    free(m->qk_max);
    free(m->layer);
    free(m->p);
    bf_pages_free(m->params, m->n_params * sizeof(float));
    bf_pages_free(m->grads, m->n_params * sizeof(float));
    memset(m, 0, sizeof *m);
}

void bf_model_zero_grad(bf_model *m)
{
    memset(m->grads, 0, m->n_params * sizeof(float));
    for (int l = 0; l < m->cfg.n_layer; l++) {   /* sources whose dw is a buffer of their own */
        bf_weight *w[BF_LAYER_WEIGHTS];
        int n = bf_layer_weights(&m->layer[l], w);
        for (int k = 0; k < n; k++)
            if (w[k]->src && w[k]->src->ops->zero_grad) w[k]->src->ops->zero_grad(w[k]->src, m, w[k]);
    }
}
