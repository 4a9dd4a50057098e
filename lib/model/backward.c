/* backward.c — d(loss)/d(everything) of the last forward (bf/model.h).
 * Each op's backward lives beside its forward in ops.c; this file walks the
 * blocks in reverse.  Every block matrix's gradient goes to its weight's dw
 * (dL/dW_eff); its source maps it onto its own parameters at the end. */
#include "model_internal.h"
#include "ops.h"
#include "bf/util.h"

#include <math.h>
#include <string.h>

float *bf_model_dlogits(bf_model *m)
{
    bf_acts *a = m->acts;
    if (!a || !a->M) return NULL;
    bf_op_xent_grad(a->dlogits, a->logp, a->y, a->tidx, a->M, (size_t)m->cfg.vocab, (float)a->M);
    a->dlogits_ready = 1;
    return a->dlogits;
}

int bf_model_backward(bf_model *m)
{
    if (m->inference) return bf_err("a backward on a model set up for inference");
    const bf_config *g = &m->cfg;
    bf_acts *a = m->acts;
    if (!a || !a->M) return 0;
    if (a->last_cached) return bf_err("a backward after a cached forward");
    size_t N = a->N, T = (size_t)a->T, B = (size_t)a->B, M = a->M;
    size_t D = (size_t)g->d_model, F = (size_t)g->d_ff, H = (size_t)g->n_head, hd = D / H, V = (size_t)g->vocab;
    int ln = g->norm == BF_NORM_LAYER;
    if (!a->dlogits_ready) bf_model_dlogits(m);   /* the cross-entropy alone */
    a->dlogits_ready = 0;

    /* logits = fsel·headᵀ: d(head) and d(fsel), scattered back to the rows */
    float *dfn_sel = a->dq;   /* [M,D], free until the attention backward */
    bf_op_matmul_bwd(dfn_sel, 0, m->dhead, a->dlogits, a->fsel, m->head, M, D, V);
    float *dfn = a->dn;
    bf_op_copy(dfn, NULL, N * D);
    for (size_t k = 0; k < M; k++) memcpy(dfn + (size_t)a->tidx[k] * D, dfn_sel + k * D, D * sizeof(float));

    float *dh = a->dh;
    bf_op_copy(dh, NULL, N * D);
    bf_op_norm_bwd(dh, m->out_norm.dw, m->out_norm.db, dfn, a->h_out, m->out_norm.w, a->fn_mean, a->fn_rstd, N, D, ln);

    for (int l = g->n_layer - 1; l >= 0; l--) {
        layer_acts *L = &a->L[l];
        bf_layer *P = &m->layer[l];

        /* MLP: dh flows to h_mid unchanged, and through w2, act, w1/w3, norm */
        float *dan = L->an != L->a ? a->dan : a->da;
        bf_linear_bwd(&P->w2, dan, 0, dh, L->an, L->anq, N);
        if (g->subln) {
            bf_op_copy(a->da, NULL, N * F);
            bf_op_norm_bwd(a->da, P->ffn_sub_norm.dw, NULL, dan, L->a, P->ffn_sub_norm.w, NULL, L->a_rstd, N, F, 0);
        }
        bf_op_act_bwd(L->u, L->g, a->da, a->du, a->dg, N * F, g->act);
        bf_linear_bwd(&P->w1, a->dn, 0, a->du, L->n2, L->n2q, N);
        if (g->act != BF_ACT_GELU) bf_linear_bwd(&P->w3, a->dn, 1, a->dg, L->n2, L->n2q, N);
        bf_op_norm_bwd(dh, P->mlp_norm.dw, P->mlp_norm.db, a->dn, L->h_mid, P->mlp_norm.w, L->n2_mean, L->n2_rstd, N, D,
                       ln);

        /* attention */
        float *daon = g->subln ? a->dsub : a->dao;
        bf_linear_bwd(&P->wo, daon, 0, dh, L->aon, L->aonq, N);
        if (g->subln) {
            bf_op_copy(a->dao, NULL, N * D);
            bf_op_norm_bwd(a->dao, P->attn_sub_norm.dw, NULL, daon, L->ao, P->attn_sub_norm.w, NULL, L->ao_rstd, N, D, 0);
        }
        bf_op_attn aj = {L->q, L->k, L->v, L->att, NULL, a->dq, a->dk, a->dv, a->dao, B, T, D, H, hd, NULL, T, 0, 0};
        aj.full = g->attn == BF_ATTN_FULL;
        bf_op_attention_bwd(&aj);
        if (g->pos == BF_POS_ROPE) {
            bf_op_rope(a->dq, a->rope_cos, a->rope_sin, N, T, D, hd, 0, 1);
            bf_op_rope(a->dk, a->rope_cos, a->rope_sin, N, T, D, hd, 0, 1);
        }
        bf_linear_bwd(&P->wq, a->dn, 0, a->dq, L->n1, L->n1q, N);
        bf_linear_bwd(&P->wk, a->dn, 1, a->dk, L->n1, L->n1q, N);
        bf_linear_bwd(&P->wv, a->dn, 1, a->dv, L->n1, L->n1q, N);
        bf_op_norm_bwd(dh, P->attn_norm.dw, P->attn_norm.db, a->dn, L->h_in, P->attn_norm.w, L->n1_mean, L->n1_rstd, N, D,
                       ln);
    }

    /* embeddings, in row order */
    for (size_t n = 0; n < N; n++) {
        float *dt = m->dtok_emb + (size_t)a->x[n] * D, *dr = dh + n * D;
        for (size_t c = 0; c < D; c++) dt[c] += dr[c];
        if (m->dpos_emb) {
            float *dp = m->dpos_emb + (n % T) * D;
            for (size_t c = 0; c < D; c++) dp[c] += dr[c];
        }
    }

    /* each source maps dL/dW_eff onto its own parameters */
    for (int l = 0; l < g->n_layer; l++) {
        bf_weight *w[BF_LAYER_WEIGHTS];
        int n = bf_layer_weights(&m->layer[l], w);
        for (int k = 0; k < n; k++)
            if (w[k]->src && w[k]->src->ops->backward) w[k]->src->ops->backward(w[k]->src, m, w[k]);
    }
    return 0;
}
