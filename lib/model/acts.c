/* acts.c — the activation block (llm.c's one allocation for every
 * activation the backward needs), laid out for a batch of B rows of T. */
#include "model_internal.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {   /* which inputs go through the int8 activation quantizer */
    int attn_in, o_in, mlp_in, down_in;
} layer_quant;

/* A site is quantized when any matrix reading it quantizes its input (all
 * of a site's consumers then read the same int8 copy). */
static layer_quant quant_sites(const bf_model *m, int l)
{
    const bf_layer *L = &m->layer[l];
    layer_quant q = {L->wq.quant_input || L->wk.quant_input || L->wv.quant_input, L->wo.quant_input,
                     L->w1.quant_input || (L->w3.param && L->w3.quant_input), L->w2.quant_input};
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
    a->dlogits = carve(c, N * V);   /* [M,V], M ≤ N */
}

int bf_acts_ensure(bf_model *m, int B, int T)
{
    if (!m->acts) {
        m->acts = bf_xcalloc(1, sizeof *m->acts);
        m->acts->L = bf_xcalloc((size_t)m->cfg.n_layer, sizeof *m->acts->L);
    }
    bf_acts *a = m->acts;
    if (a->block && a->B == B && a->T == T) return 0;
    carver c = {0};
    layout_acts(m, a, &c, B, T);
    bf_pages_free(a->block, a->block_bytes);
    a->B = a->T = 0;
    /* zero pages: buffers a run never uses (the backward's, when it only
     * evaluates) take no memory */
    a->block_bytes = c.off * sizeof(float);
    a->block = bf_pages_alloc(a->block_bytes);
    if (!a->block) return -1;
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
    return 0;
}

void bf_acts_free(bf_acts *a)
{
    if (!a) return;
    bf_pages_free(a->block, a->block_bytes);
    bf_aligned_free(a->kv_block);
    bf_i8_rows_free(&a->i8);
    free(a->L);
    free(a);
}

