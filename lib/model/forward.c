/* forward.c — the forward pass, whole rows or incrementally through the
 * key/value cache (bf/model.h).  The model in bitforge(7):
 *   h = tok_emb[x] (+ pos_emb[t])
 *   per block: h = h + wo(attn(norm(h)));  h = h + w2(act(norm(h)))
 *              (with subln, an RMSNorm right before wo and before w2)
 *   logits = head(out_norm(h)), only at targeted positions
 * Shapes: N = B·T rows, D = d_model, F = d_ff, H heads of hd, V = vocab,
 * M = targeted positions. */
#include "model_internal.h"
#include "ops.h"
#include "bf/quant.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int bf_model_cache_begin(bf_model *m, int B)
{
    if (m->cfg.attn == BF_ATTN_FULL) return bf_err("a model with full attention has no incremental decoding");
    if (!m->acts && bf_acts_ensure(m, B, 1)) return -1;
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

/* Attention of layer l over the rows' positions; with the cache, keys and
 * values go into it and queries see every cached position up to their own. */
static void attention(bf_model *m, int l, layer_acts *L, int B, int T, size_t pos0, int cached)
{
    const bf_config *g = &m->cfg;
    bf_acts *a = m->acts;
    size_t D = (size_t)g->d_model, H = (size_t)g->n_head, hd = D / H;
    float *task_max = m->track_qk ? bf_xmalloc((size_t)B * H * sizeof(float)) : NULL;
    bf_op_attn aj = {L->q, L->k, L->v, L->att, L->ao, NULL, NULL, NULL, NULL, (size_t)B, (size_t)T, D, H, hd, task_max,
                     (size_t)T, 0, 0};
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
    aj.full = g->attn == BF_ATTN_FULL;
    bf_op_attention(&aj);
    if (task_max) {   /* the largest logit of each head over the batch (QK-clip) */
        if (!m->qk_max) m->qk_max = bf_xcalloc((size_t)g->n_layer * H, sizeof(float));
        for (size_t hh = 0; hh < H; hh++) {
            float mx = -INFINITY;
            for (size_t bb = 0; bb < (size_t)B; bb++) mx = fmaxf(mx, task_max[bb * H + hh]);
            m->qk_max[(size_t)l * H + hh] = mx;
        }
        free(task_max);
    }
}

/* The forward of B rows' positions pos0 … pos0+T-1.  Without the cache
 * (training, whole rows) pos0 is 0 and attention runs within the T given
 * positions. */
static double forward(bf_model *m, const int32_t *x, const int32_t *y, int B, int T, size_t pos0, int cached)
{
    const bf_config *g = &m->cfg;
    m->last_targets = 0;   /* a NaN with no targets: the forward did not run */
    if (g->rec_n) {
        bf_err("a recursive model runs through its recursion (bf-eval and the training programs know it)");
        return NAN;
    }
    if (bf_acts_ensure(m, B, T)) return NAN;
    bf_acts *a = m->acts;
    size_t N = (size_t)B * T, D = (size_t)g->d_model, F = (size_t)g->d_ff, H = (size_t)g->n_head, hd = D / H;
    size_t V = (size_t)g->vocab;
    int ln = g->norm == BF_NORM_LAYER, rc = 0;
    a->N = N;
    a->dlogits_ready = 0;
    a->last_cached = cached;
    memcpy(a->x, x, N * sizeof *x);
    if (y) memcpy(a->y, y, N * sizeof *y);
    else for (size_t n = 0; n < N; n++) a->y[n] = -1;

    /* embeddings: h = tok_emb[x] (+ pos_emb[t]) */
    float *h = a->L[0].h_in;
    for (size_t n = 0; n < N; n++) {
        memcpy(h + n * D, m->tok_emb + (size_t)x[n] * D, D * sizeof(float));
        if (m->pos_emb)
            for (size_t c = 0; c < D; c++) h[n * D + c] += m->pos_emb[(pos0 + n % (size_t)T) * D + c];
    }

    for (int l = 0; l < g->n_layer; l++) {
        layer_acts *L = &a->L[l];
        bf_layer *P = &m->layer[l];
        float *next = l + 1 < g->n_layer ? a->L[l + 1].h_in : a->h_out;

        /* attention: h_mid = h_in + wo(attn(norm(h_in))) */
        bf_op_norm(L->n1, L->h_in, P->attn_norm.w, P->attn_norm.b, L->n1_mean, L->n1_rstd, N, D, ln);
        rc |= bf_site_quant(m, &a->i8, &P->wq, &P->wk, &P->wv, L->n1, L->n1q, N, D);
        rc |= bf_linear(&a->i8, &P->wq, L->q, L->n1, L->n1q, N, 0);
        rc |= bf_linear(&a->i8, &P->wk, L->k, L->n1, L->n1q, N, 0);
        rc |= bf_linear(&a->i8, &P->wv, L->v, L->n1, L->n1q, N, 0);
        if (g->pos == BF_POS_ROPE) {
            bf_op_rope(L->q, a->rope_cos, a->rope_sin, N, (size_t)T, D, hd, pos0, 0);
            bf_op_rope(L->k, a->rope_cos, a->rope_sin, N, (size_t)T, D, hd, pos0, 0);
        }
        attention(m, l, L, B, T, pos0, cached);
        if (g->subln) bf_op_norm(L->aon, L->ao, P->attn_sub_norm.w, NULL, NULL, L->ao_rstd, N, D, 0);
        rc |= bf_site_quant(m, &a->i8, &P->wo, NULL, NULL, L->aon, L->aonq, N, D);
        bf_op_copy(L->h_mid, L->h_in, N * D);
        rc |= bf_linear(&a->i8, &P->wo, L->h_mid, L->aon, L->aonq, N, 1);

        /* MLP: next = h_mid + w2(act(norm(h_mid))) */
        bf_op_norm(L->n2, L->h_mid, P->mlp_norm.w, P->mlp_norm.b, L->n2_mean, L->n2_rstd, N, D, ln);
        rc |= bf_site_quant(m, &a->i8, &P->w1, &P->w3, NULL, L->n2, L->n2q, N, D);
        rc |= bf_linear(&a->i8, &P->w1, L->u, L->n2, L->n2q, N, 0);
        if (g->act != BF_ACT_GELU) rc |= bf_linear(&a->i8, &P->w3, L->g, L->n2, L->n2q, N, 0);
        bf_op_act(L->u, L->g, L->a, N * F, g->act);
        if (g->subln) bf_op_norm(L->an, L->a, P->ffn_sub_norm.w, NULL, NULL, L->a_rstd, N, F, 0);
        rc |= bf_site_quant(m, &a->i8, &P->w2, NULL, NULL, L->an, L->anq, N, F);
        bf_op_copy(next, L->h_mid, N * D);
        rc |= bf_linear(&a->i8, &P->w2, next, L->an, L->anq, N, 1);
    }
    if (rc) return NAN;

    bf_op_norm(a->fn, a->h_out, m->out_norm.w, m->out_norm.b, a->fn_mean, a->fn_rstd, N, D, ln);

    /* logits only where a loss is taken: M targeted rows */
    size_t M = 0;
    for (size_t n = 0; n < N; n++)
        if (a->y[n] >= 0) a->tidx[M++] = (int32_t)n;
    a->M = M;
    m->last_targets = M;
    if (!M) { m->last_loss = 0; return 0; }
    for (size_t k = 0; k < M; k++) memcpy(a->fsel + k * D, a->fn + (size_t)a->tidx[k] * D, D * sizeof(float));
    bf_op_matmul(a->logp, a->fsel, m->head, M, D, V, 0);
    double *rl = bf_xmalloc(M * sizeof *rl);
    bf_op_logsoftmax(a->logp, a->y, a->tidx, M, V, rl);
    double loss = 0;   /* summed in row order: the same bits for any thread count */
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
        bf_err("cached forward of %d rows at %d+%d without a matching cache", B, pos0, T);
        return NAN;
    }
    return forward(m, x, y, B, T, (size_t)pos0, 1);
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
