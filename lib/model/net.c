/* net.c — the pieces of a recursive model (bf/model.h, "The pieces a
 * recursion is made of"): the post-norm block stack as a function called
 * many times, each call's activations in one of several sets (slots); the
 * embedding, the readout and the halting head.  The recursion itself is in
 * lib/reason/trm.c.
 *
 * A post-norm block, for x [N,D]:
 *   r1 = x + wo(attn(x));          h1 = attn_norm(r1)
 *   r2 = h1 + w2(act(w1 h1, w3 h1)); out = mlp_norm(r2)
 * (with subln, an RMSNorm right before wo and before w2, as in forward.c).
 * The weights go through the same door as forward.c's: bf_weight's w, dw,
 * tm and quant_input. */
#include "model_internal.h"
#include "ops.h"
#include "bf/quant.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float *x, *xq;                      /* [N,D] the layer's input (attention reads it) and its int8 copy */
    float *q, *k, *v, *att, *ao;        /* att [B,H,T,T] */
    float *ao_rstd, *aon, *aonq;        /* subln [N], [N,D]; the int8 copy of wo's input */
    float *r1, *r1_mean, *r1_rstd;      /* x + wo(…) and its norm's statistics */
    float *h1, *h1q;                    /* attn_norm(r1): the MLP's input and residual */
    float *u, *g, *a, *a_rstd, *an, *anq;   /* [N,F] */
    float *r2, *r2_mean, *r2_rstd;      /* h1 + w2(…); the layer's output is mlp_norm(r2) */
} net_layer;

struct bf_net {
    int Bmax, T, slots;
    void *block;
    size_t block_bytes;
    net_layer *L;                       /* [slots · n_layer] */
    int *slot_B;                        /* rows of each slot's last forward (0: none) */
    float *rope_cos, *rope_sin;         /* [ctx, hd/2] */
    /* backward scratch */
    float *dh, *dr, *dn, *dq, *dk, *dv, *dao, *dsub, *du, *dg, *da, *dan;
    /* readout and halting */
    float *fn, *fn_mean, *fn_rstd, *fsel, *logp, *dlogits, *dfsel;
    int32_t *tidx;
    float *ymean;                       /* [B,D] */
    bf_i8_rows i8;                      /* the integer kernels' input */
};

static void layout(const bf_model *m, bf_net *n, carver *c)
{
    const bf_config *g = &m->cfg;
    size_t N = (size_t)n->Bmax * (size_t)n->T, D = (size_t)g->d_model, F = (size_t)g->d_ff, H = (size_t)g->n_head;
    size_t V = (size_t)g->vocab, hd = D / H, half = hd / 2 ? hd / 2 : 1;
    for (int s = 0; s < n->slots * g->n_layer; s++) {
        net_layer *L = &n->L[s];
        L->x = carve(c, N * D);
        L->xq = carve(c, N * D);
        L->q = carve(c, N * D);
        L->k = carve(c, N * D);
        L->v = carve(c, N * D);
        L->att = carve(c, (size_t)n->Bmax * H * (size_t)n->T * (size_t)n->T);
        L->ao = carve(c, N * D);
        L->ao_rstd = g->subln ? carve(c, N) : NULL;
        L->aon = g->subln ? carve(c, N * D) : L->ao;
        L->aonq = carve(c, N * D);
        L->r1 = carve(c, N * D);
        L->r1_mean = carve(c, N);
        L->r1_rstd = carve(c, N);
        L->h1 = carve(c, N * D);
        L->h1q = carve(c, N * D);
        L->u = carve(c, N * F);
        L->g = carve(c, N * F);
        L->a = carve(c, N * F);
        L->a_rstd = g->subln ? carve(c, N) : NULL;
        L->an = g->subln ? carve(c, N * F) : L->a;
        L->anq = carve(c, N * F);
        L->r2 = carve(c, N * D);
        L->r2_mean = carve(c, N);
        L->r2_rstd = carve(c, N);
    }
    n->rope_cos = carve(c, (size_t)g->ctx * half);
    n->rope_sin = carve(c, (size_t)g->ctx * half);
    n->fn = carve(c, N * D);
    n->fn_mean = carve(c, N);
    n->fn_rstd = carve(c, N);
    n->fsel = carve(c, N * D);
    n->logp = carve(c, N * V);
    n->tidx = (int32_t *)carve(c, N);
    n->ymean = carve(c, (size_t)n->Bmax * D);
    if (m->inference) return;   /* no backward: no gradient scratch */
    n->dh = carve(c, N * D);
    n->dr = carve(c, N * D);
    n->dn = carve(c, N * D);
    n->dq = carve(c, N * D);
    n->dk = carve(c, N * D);
    n->dv = carve(c, N * D);
    n->dao = carve(c, N * D);
    n->dsub = carve(c, N * D);
    n->du = carve(c, N * F);
    n->dg = carve(c, N * F);
    n->da = carve(c, N * F);
    n->dan = carve(c, N * F);
    n->dlogits = carve(c, N * V);
    n->dfsel = carve(c, N * D);
}

void bf_net_free(bf_net *n)
{
    if (!n) return;
    bf_pages_free(n->block, n->block_bytes);
    bf_i8_rows_free(&n->i8);
    free(n->L);
    free(n->slot_B);
    free(n);
}

int bf_model_net_begin(bf_model *m, int B, int T, int slots)
{
    const bf_config *g = &m->cfg;
    if (!g->rec_n) return bf_err("the model has no recursion");
    if (B < 1 || T < 1 || T > g->ctx || slots < 1) return bf_err("net of %d rows of %d in %d slots", B, T, slots);
    bf_net *n = m->net;
    if (n && n->Bmax == B && n->T == T && n->slots == slots) return 0;
    bf_net_free(n);
    n = m->net = bf_xcalloc(1, sizeof *n);
    n->Bmax = B;
    n->T = T;
    n->slots = slots;
    n->L = bf_xcalloc((size_t)slots * (size_t)g->n_layer, sizeof *n->L);
    n->slot_B = bf_xcalloc((size_t)slots, sizeof *n->slot_B);
    carver c = {0};
    layout(m, n, &c);
    n->block_bytes = c.off * sizeof(float);
    n->block = bf_pages_alloc(n->block_bytes);
    if (!n->block) { bf_net_free(n); m->net = NULL; return -1; }
    c.base = n->block;
    c.off = 0;
    layout(m, n, &c);
    size_t D = (size_t)g->d_model, hd = D / (size_t)g->n_head, half = hd / 2;
    for (int t = 0; t < g->ctx; t++)   /* as acts.c: rotate-half, angle t·10000^(-2i/hd) */
        for (size_t i = 0; i < half; i++) {
            double th = (double)t * pow(10000.0, -2.0 * (double)i / (double)hd);
            n->rope_cos[(size_t)t * half + i] = (float)cos(th);
            n->rope_sin[(size_t)t * half + i] = (float)sin(th);
        }
    return 0;
}

static int layer_fwd(bf_model *m, bf_net *n, bf_layer *P, net_layer *L, int B, float *out)
{
    const bf_config *g = &m->cfg;
    size_t T = (size_t)n->T, N = (size_t)B * T, D = (size_t)g->d_model, F = (size_t)g->d_ff, H = (size_t)g->n_head;
    size_t hd = D / H;
    int ln = g->norm == BF_NORM_LAYER, rc = 0;
    rc |= bf_site_quant(m, &n->i8, &P->wq, &P->wk, &P->wv, L->x, L->xq, N, D);
    rc |= bf_linear(&n->i8, &P->wq, L->q, L->x, L->xq, N, 0);
    rc |= bf_linear(&n->i8, &P->wk, L->k, L->x, L->xq, N, 0);
    rc |= bf_linear(&n->i8, &P->wv, L->v, L->x, L->xq, N, 0);
    if (g->pos == BF_POS_ROPE) {
        bf_op_rope(L->q, n->rope_cos, n->rope_sin, N, T, D, hd, 0, 0);
        bf_op_rope(L->k, n->rope_cos, n->rope_sin, N, T, D, hd, 0, 0);
    }
    bf_op_attn aj = {L->q, L->k, L->v, L->att, L->ao, NULL, NULL, NULL, NULL, (size_t)B, T, D, H, hd, NULL, T, 0, 0};
    aj.full = g->attn == BF_ATTN_FULL;
    bf_op_attention(&aj);
    if (g->subln) bf_op_norm(L->aon, L->ao, P->attn_sub_norm.w, NULL, NULL, L->ao_rstd, N, D, 0);
    rc |= bf_site_quant(m, &n->i8, &P->wo, NULL, NULL, L->aon, L->aonq, N, D);
    bf_op_copy(L->r1, L->x, N * D);
    rc |= bf_linear(&n->i8, &P->wo, L->r1, L->aon, L->aonq, N, 1);
    bf_op_norm(L->h1, L->r1, P->attn_norm.w, P->attn_norm.b, L->r1_mean, L->r1_rstd, N, D, ln);

    rc |= bf_site_quant(m, &n->i8, &P->w1, &P->w3, NULL, L->h1, L->h1q, N, D);
    rc |= bf_linear(&n->i8, &P->w1, L->u, L->h1, L->h1q, N, 0);
    if (g->act != BF_ACT_GELU) rc |= bf_linear(&n->i8, &P->w3, L->g, L->h1, L->h1q, N, 0);
    bf_op_act(L->u, L->g, L->a, N * F, g->act);
    if (g->subln) bf_op_norm(L->an, L->a, P->ffn_sub_norm.w, NULL, NULL, L->a_rstd, N, F, 0);
    rc |= bf_site_quant(m, &n->i8, &P->w2, NULL, NULL, L->an, L->anq, N, F);
    bf_op_copy(L->r2, L->h1, N * D);
    rc |= bf_linear(&n->i8, &P->w2, L->r2, L->an, L->anq, N, 1);
    bf_op_norm(out, L->r2, P->mlp_norm.w, P->mlp_norm.b, L->r2_mean, L->r2_rstd, N, D, ln);
    return rc;
}

int bf_model_net_forward(bf_model *m, int slot, const float *in, float *out, int B)
{
    bf_net *n = m->net;
    if (!n || slot < 0 || slot >= n->slots || B < 1 || B > n->Bmax)
        return bf_err("net forward: slot %d of %d rows without bf_model_net_begin for them", slot, B);
    int nl = m->cfg.n_layer;
    size_t N = (size_t)B * (size_t)n->T, D = (size_t)m->cfg.d_model;
    net_layer *S = &n->L[(size_t)slot * (size_t)nl];
    bf_op_copy(S[0].x, in, N * D);
    n->slot_B[slot] = 0;
    for (int l = 0; l < nl; l++)
        if (layer_fwd(m, n, &m->layer[l], &S[l], B, l + 1 < nl ? S[l + 1].x : out)) return -1;
    n->slot_B[slot] = B;
    return 0;
}

/* n->dh holds dL/d(out) of the layer; leaves dL/d(x) there. */
static void layer_bwd(bf_model *m, bf_net *n, bf_layer *P, net_layer *L, int B)
{
    const bf_config *g = &m->cfg;
    size_t T = (size_t)n->T, N = (size_t)B * T, D = (size_t)g->d_model, F = (size_t)g->d_ff, H = (size_t)g->n_head;
    size_t hd = D / H;
    int ln = g->norm == BF_NORM_LAYER;
    /* out = mlp_norm(r2) */
    bf_op_copy(n->dr, NULL, N * D);
    bf_op_norm_bwd(n->dr, P->mlp_norm.dw, P->mlp_norm.db, n->dh, L->r2, P->mlp_norm.w, L->r2_mean, L->r2_rstd, N, D, ln);
    /* r2 = h1 + w2(act(w1 h1, w3 h1)) */
    bf_op_copy(n->dn, n->dr, N * D);
    float *dan = g->subln ? n->dan : n->da;
    bf_linear_bwd(&P->w2, dan, 0, n->dr, L->an, L->anq, N);
    if (g->subln) {
        bf_op_copy(n->da, NULL, N * F);
        bf_op_norm_bwd(n->da, P->ffn_sub_norm.dw, NULL, dan, L->a, P->ffn_sub_norm.w, NULL, L->a_rstd, N, F, 0);
    }
    bf_op_act_bwd(L->u, L->g, n->da, n->du, n->dg, N * F, g->act);
    bf_linear_bwd(&P->w1, n->dn, 1, n->du, L->h1, L->h1q, N);
    if (g->act != BF_ACT_GELU) bf_linear_bwd(&P->w3, n->dn, 1, n->dg, L->h1, L->h1q, N);
    /* h1 = attn_norm(r1) */
    bf_op_copy(n->dr, NULL, N * D);
    bf_op_norm_bwd(n->dr, P->attn_norm.dw, P->attn_norm.db, n->dn, L->r1, P->attn_norm.w, L->r1_mean, L->r1_rstd, N, D,
                   ln);
    /* r1 = x + wo(attn(x)) */
    bf_op_copy(n->dh, n->dr, N * D);
    float *daon = g->subln ? n->dsub : n->dao;
    bf_linear_bwd(&P->wo, daon, 0, n->dr, L->aon, L->aonq, N);
    if (g->subln) {
        bf_op_copy(n->dao, NULL, N * D);
        bf_op_norm_bwd(n->dao, P->attn_sub_norm.dw, NULL, daon, L->ao, P->attn_sub_norm.w, NULL, L->ao_rstd, N, D, 0);
    }
    bf_op_attn aj = {L->q, L->k, L->v, L->att, NULL, n->dq, n->dk, n->dv, n->dao, (size_t)B, T, D, H, hd, NULL, T, 0, 0};
    aj.full = g->attn == BF_ATTN_FULL;
    bf_op_attention_bwd(&aj);
    if (g->pos == BF_POS_ROPE) {
        bf_op_rope(n->dq, n->rope_cos, n->rope_sin, N, T, D, hd, 0, 1);
        bf_op_rope(n->dk, n->rope_cos, n->rope_sin, N, T, D, hd, 0, 1);
    }
    bf_linear_bwd(&P->wq, n->dh, 1, n->dq, L->x, L->xq, N);
    bf_linear_bwd(&P->wk, n->dh, 1, n->dk, L->x, L->xq, N);
    bf_linear_bwd(&P->wv, n->dh, 1, n->dv, L->x, L->xq, N);
}

int bf_model_net_backward(bf_model *m, int slot, const float *dout, float *din)
{
    if (m->inference) return bf_err("a backward on a model set up for inference");
    bf_net *n = m->net;
    if (!n || slot < 0 || slot >= n->slots || !n->slot_B[slot]) return bf_err("net backward of slot %d without its forward", slot);
    int nl = m->cfg.n_layer, B = n->slot_B[slot];
    size_t N = (size_t)B * (size_t)n->T, D = (size_t)m->cfg.d_model;
    net_layer *S = &n->L[(size_t)slot * (size_t)nl];
    bf_op_copy(n->dh, dout, N * D);
    for (int l = nl - 1; l >= 0; l--) layer_bwd(m, n, &m->layer[l], &S[l], B);
    bf_op_copy(din, n->dh, N * D);
    return 0;
}

void bf_model_sources_backward(bf_model *m)
{
    for (int l = 0; l < m->cfg.n_layer; l++) {
        bf_weight *w[BF_LAYER_WEIGHTS];
        int k = bf_layer_weights(&m->layer[l], w);
        for (int j = 0; j < k; j++)
            if (w[j]->src && w[j]->src->ops->backward) w[j]->src->ops->backward(w[j]->src, m, w[j]);
    }
}

void bf_model_embed(const bf_model *m, const int32_t *x, int B, float *out)
{
    size_t T = (size_t)m->net->T, N = (size_t)B * T, D = (size_t)m->cfg.d_model;
    for (size_t r = 0; r < N; r++) {
        memcpy(out + r * D, m->tok_emb + (size_t)x[r] * D, D * sizeof(float));
        if (m->pos_emb)
            for (size_t c = 0; c < D; c++) out[r * D + c] += m->pos_emb[(r % T) * D + c];
    }
}

void bf_model_embed_backward(bf_model *m, const int32_t *x, int B, const float *dout)
{
    size_t T = (size_t)m->net->T, N = (size_t)B * T, D = (size_t)m->cfg.d_model;
    for (size_t r = 0; r < N; r++) {   /* in row order */
        float *dt = m->dtok_emb + (size_t)x[r] * D;
        const float *dr = dout + r * D;
        for (size_t c = 0; c < D; c++) dt[c] += dr[c];
        if (m->dpos_emb) {
            float *dp = m->dpos_emb + (r % T) * D;
            for (size_t c = 0; c < D; c++) dp[c] += dr[c];
        }
    }
}

const float *bf_model_readout_logprobs(const bf_model *m) { return m->net->logp; }

double bf_model_readout(bf_model *m, const float *y, const int32_t *tgt, int B, int *row_targets, int *row_correct,
                        double *row_loss, float *dy, size_t over)
{
    bf_net *n = m->net;
    const bf_config *g = &m->cfg;
    size_t T = (size_t)n->T, N = (size_t)B * T, D = (size_t)g->d_model, V = (size_t)g->vocab;
    int ln = g->norm == BF_NORM_LAYER;
    bf_op_norm(n->fn, y, m->out_norm.w, m->out_norm.b, n->fn_mean, n->fn_rstd, N, D, ln);
    size_t M = 0;
    for (size_t r = 0; r < N; r++)
        if (tgt[r] >= 0) n->tidx[M++] = (int32_t)r;
    if (row_targets) memset(row_targets, 0, (size_t)B * sizeof *row_targets);
    if (row_correct) memset(row_correct, 0, (size_t)B * sizeof *row_correct);
    if (row_loss) memset(row_loss, 0, (size_t)B * sizeof *row_loss);
    if (dy) bf_op_copy(dy, NULL, N * D);
    if (!M) return 0;
    float Mo = (float)(over ? over : M);   /* the mean's count */
    for (size_t k = 0; k < M; k++) memcpy(n->fsel + k * D, n->fn + (size_t)n->tidx[k] * D, D * sizeof(float));
    bf_op_matmul(n->logp, n->fsel, m->head, M, D, V, 0);
    double *rl = bf_xmalloc(M * sizeof *rl);
    bf_op_logsoftmax(n->logp, tgt, n->tidx, M, V, rl);
    double loss = 0;
    for (size_t k = 0; k < M; k++) loss += rl[k];
    for (size_t k = 0; k < M && row_loss; k++) row_loss[(size_t)n->tidx[k] / T] += rl[k];
    free(rl);
    for (size_t k = 0; k < M; k++) {
        const float *lp = n->logp + k * V;
        size_t best = 0, b = (size_t)n->tidx[k] / T;
        for (size_t c = 1; c < V; c++) if (lp[c] > lp[best]) best = c;
        if (row_targets) row_targets[b]++;
        if (row_correct && (int32_t)best == tgt[n->tidx[k]]) row_correct[b]++;
    }
    if (dy && !m->inference) {
        bf_op_xent_grad(n->dlogits, n->logp, tgt, n->tidx, M, V, Mo);
        bf_op_matmul_bwd(n->dfsel, 0, m->dhead, n->dlogits, n->fsel, m->head, M, D, V);
        float *dfn = n->dr;
        bf_op_copy(dfn, NULL, N * D);
        for (size_t k = 0; k < M; k++) memcpy(dfn + (size_t)n->tidx[k] * D, n->dfsel + k * D, D * sizeof(float));
        bf_op_norm_bwd(dy, m->out_norm.dw, m->out_norm.db, dfn, y, m->out_norm.w, n->fn_mean, n->fn_rstd, N, D, ln);
    }
    return loss / (double)Mo;
}

double bf_model_halt(bf_model *m, const float *y, int B, const float *target, float *logit, float *dy, size_t over)
{
    double Bo = (double)(over ? over : (size_t)B);   /* the mean's count */
    bf_net *n = m->net;
    size_t T = (size_t)n->T, D = (size_t)m->cfg.d_model;
    double loss = 0;
    for (size_t b = 0; b < (size_t)B; b++) {
        float *ym = n->ymean + b * D;
        for (size_t c = 0; c < D; c++) {
            double s = 0;
            for (size_t t = 0; t < T; t++) s += y[(b * T + t) * D + c];
            ym[c] = (float)(s / (double)T);
        }
        double l = m->halt_b[0];
        for (size_t c = 0; c < D; c++) l += (double)m->halt_w[c] * ym[c];
        logit[b] = (float)l;
        if (!target) continue;
        /* BCE of sigmoid(l) against t, stable: max(l,0) − l·t + log(1 + e^−|l|) */
        double t = target[b];
        loss += (l > 0 ? l : 0) - l * t + log1p(exp(-fabs(l)));
        if (!dy || m->inference) continue;
        float dl = (float)((1.0 / (1.0 + exp(-l)) - t) / Bo);
        m->dhalt_b[0] += dl;
        for (size_t c = 0; c < D; c++) m->dhalt_w[c] += dl * ym[c];
        for (size_t t2 = 0; t2 < T; t2++)
            for (size_t c = 0; c < D; c++) dy[(b * T + t2) * D + c] += dl * m->halt_w[c] / (float)T;
    }
    return target ? loss / Bo : 0;
}
