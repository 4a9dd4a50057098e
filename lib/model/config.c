/* config.c — model configuration: defaults, validation, meta, tensor list. */
#include "bf/config.h"
#include "bf/util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const bf_norm_names[] = {"rms", "layer", NULL};
const char *const bf_act_names[] = {"swiglu", "gelu", "relu2", NULL};
const char *const bf_pos_names[] = {"rope", "learned", NULL};
const char *const bf_attn_names[] = {"causal", "full", NULL};

void bf_config_default(bf_config *c)
{
    memset(c, 0, sizeof *c);
    c->d_model = 128;
    c->n_layer = 2;
    c->n_head = 4;
    c->norm = BF_NORM_RMS;
    c->act = BF_ACT_SWIGLU;
    c->pos = BF_POS_ROPE;
    c->act_bits = 8;
}

int bf_config_validate(const bf_config *c)
{
    if (c->vocab < 1 || c->vocab > BF_MAX_VOCAB) return bf_err("vocab %d out of range 1..%d", c->vocab, BF_MAX_VOCAB);
    if (c->ctx < 1 || c->ctx > BF_MAX_CTX) return bf_err("ctx %d out of range 1..%d", c->ctx, BF_MAX_CTX);
    if (c->d_model < 1 || c->d_model > BF_MAX_DMODEL) return bf_err("d_model %d out of range 1..%d", c->d_model, BF_MAX_DMODEL);
    if (c->n_layer < 1 || c->n_layer > BF_MAX_LAYERS) return bf_err("n_layer %d out of range 1..%d", c->n_layer, BF_MAX_LAYERS);
    if (c->n_head < 1 || c->d_model % c->n_head) return bf_err("n_head %d does not divide d_model %d", c->n_head, c->d_model);
    if (c->pos == BF_POS_ROPE && (c->d_model / c->n_head) % 2)
        return bf_err("rope needs an even head size, d_model/n_head is %d", c->d_model / c->n_head);
    if (c->d_ff < 1 || c->d_ff > BF_MAX_DFF) return bf_err("d_ff %d out of range 1..%d", c->d_ff, BF_MAX_DFF);
    if (c->act_bits != 0 && c->act_bits != 8) return bf_err("act_bits %d (must be 8 or 0)", c->act_bits);
    if (c->rec_n < 0 || c->rec_n > BF_MAX_REC || (c->rec_n && (c->rec_T < 1 || c->rec_T > BF_MAX_REC ||
                                                              c->rec_sup < 1 || c->rec_sup > BF_MAX_SUP)))
        return bf_err("recursion n %d, T %d, sup %d out of range (n, T 1..%d; sup 1..%d)", c->rec_n, c->rec_T,
                      c->rec_sup, BF_MAX_REC, BF_MAX_SUP);
    if (!c->rec_n && (c->rec_T || c->rec_sup)) return bf_err("recursion T and sup without n");
    if (bf_config_param_count(c) > BF_MAX_PARAMS) return bf_err("model of more than 2^36 parameters");
    return 0;
}

static int get_choice(const bf_val *meta, const char *key, const char *const *names, int dflt, int *out)
{
    *out = dflt;
    const bf_val *v = bf_val_get(meta, key);
    if (!v) return 0;
    if (v->type == BF_STR)
        for (int k = 0; names[k]; k++)
            if (strcmp(v->v.s.p, names[k]) == 0) { *out = k; return 0; }
    return bf_err("model meta '%s' is not one of the known values", key);
}

static int get_dim(const bf_val *meta, const char *key, int *out)
{
    int64_t v;
    int rc = bf_val_get_int(meta, key, 0, &v);
    if (rc == 1) return bf_err("model meta has no '%s'", key);
    if (rc < 0 || v < 1 || v > (1 << 30)) return bf_err("model meta '%s' is not a positive integer", key);
    *out = (int)v;
    return 0;
}

int bf_config_from_meta(const bf_val *meta, bf_config *c)
{
    bf_config_default(c);
    const char *arch = bf_val_get_str(meta, "arch");
    if (!arch || strcmp(arch, "transformer") != 0) return bf_err("model meta 'arch' is not \"transformer\"");
    if (get_dim(meta, "vocab", &c->vocab) || get_dim(meta, "ctx", &c->ctx) || get_dim(meta, "d_model", &c->d_model) ||
        get_dim(meta, "n_layer", &c->n_layer) || get_dim(meta, "n_head", &c->n_head) || get_dim(meta, "d_ff", &c->d_ff))
        return -1;
    int k;
    if (get_choice(meta, "norm", bf_norm_names, BF_NORM_RMS, &k)) return -1;
    c->norm = (bf_norm_kind)k;
    if (get_choice(meta, "act", bf_act_names, BF_ACT_SWIGLU, &k)) return -1;
    c->act = (bf_act_kind)k;
    if (get_choice(meta, "pos", bf_pos_names, BF_POS_ROPE, &k)) return -1;
    c->pos = (bf_pos_kind)k;
    if (get_choice(meta, "attn", bf_attn_names, BF_ATTN_CAUSAL, &k)) return -1;
    c->attn = (bf_attn_kind)k;
    if (bf_val_get_bool(meta, "tie_embed", 0, &c->tie_embed) < 0) return bf_err("model meta 'tie_embed' is not a bool");
    if (bf_val_get_bool(meta, "subln", 0, &c->subln) < 0) return bf_err("model meta 'subln' is not a bool");
    int64_t ab;
    if (bf_val_get_int(meta, "act_bits", 8, &ab) < 0 || (ab != 0 && ab != 8)) return bf_err("model meta 'act_bits' must be 8 or 0");
    c->act_bits = (int)ab;
    const bf_val *rec = bf_val_get(meta, "recursion");
    if (rec) {   /* {n, T, sup}: all three, positive integers */
        static const char *const keys[3] = {"n", "T", "sup"};
        int *dst[3] = {&c->rec_n, &c->rec_T, &c->rec_sup};
        if (rec->type != BF_MAP) return bf_err("model meta 'recursion' is not a map {n, T, sup}");
        for (int j = 0; j < 3; j++) {
            int64_t v;
            if (bf_val_get_int(rec, keys[j], 0, &v) != 0 || v < 1 || v > (j == 2 ? BF_MAX_SUP : BF_MAX_REC))
                return bf_err("model meta 'recursion' needs '%s' in 1..%d", keys[j], j == 2 ? BF_MAX_SUP : BF_MAX_REC);
            *dst[j] = (int)v;
        }
    }
    return bf_config_validate(c);
}

void bf_config_to_meta(const bf_config *c, bf_val *meta)
{
    bf_val_set(meta, "arch", bf_val_str("transformer"));
    bf_val_set(meta, "vocab", bf_val_int(c->vocab));
    bf_val_set(meta, "ctx", bf_val_int(c->ctx));
    bf_val_set(meta, "d_model", bf_val_int(c->d_model));
    bf_val_set(meta, "n_layer", bf_val_int(c->n_layer));
    bf_val_set(meta, "n_head", bf_val_int(c->n_head));
    bf_val_set(meta, "d_ff", bf_val_int(c->d_ff));
    bf_val_set(meta, "norm", bf_val_str(bf_norm_names[c->norm]));
    bf_val_set(meta, "act", bf_val_str(bf_act_names[c->act]));
    bf_val_set(meta, "pos", bf_val_str(bf_pos_names[c->pos]));
    /* written only when not the default, so causal models keep their bytes */
    if (c->attn != BF_ATTN_CAUSAL) bf_val_set(meta, "attn", bf_val_str(bf_attn_names[c->attn]));
    bf_val_set(meta, "tie_embed", bf_val_bool(c->tie_embed));
    bf_val_set(meta, "subln", bf_val_bool(c->subln));
    bf_val_set(meta, "act_bits", bf_val_int(c->act_bits));
    if (c->rec_n) {   /* only on recursive models: the others keep their bytes */
        bf_val *r = bf_val_map();
        bf_val_set(r, "n", bf_val_int(c->rec_n));
        bf_val_set(r, "T", bf_val_int(c->rec_T));
        bf_val_set(r, "sup", bf_val_int(c->rec_sup));
        bf_val_set(meta, "recursion", r);
    }
}

typedef struct {
    bf_param_spec *p;
    size_t n, cap;
} speclist;

static void add(speclist *l, bf_init_kind init, double std, int is_block, int ndim, uint64_t d0, uint64_t d1,
                const char *fmt, int layer)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 32;
        l->p = bf_xrealloc(l->p, l->cap * sizeof *l->p);
    }
    bf_param_spec *s = &l->p[l->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, fmt, layer);
    s->ndim = ndim;
    s->shape[0] = d0;
    s->shape[1] = d1;
    s->init = init;
    s->std = std;
    s->is_block_matrix = is_block;
}

bf_param_spec *bf_config_params(const bf_config *c, size_t *n)
{
    speclist l = {0};
    uint64_t V = (uint64_t)c->vocab, T = (uint64_t)c->ctx, D = (uint64_t)c->d_model, F = (uint64_t)c->d_ff;
    double s = 0.02, sp = 0.02 / sqrt(2.0 * c->n_layer);   /* residual projections wo, w2 */
    int ln = c->norm == BF_NORM_LAYER;
    add(&l, BF_INIT_NORMAL, s, 0, 2, V, D, "tok_emb", 0);
    if (c->pos == BF_POS_LEARNED) add(&l, BF_INIT_NORMAL, s, 0, 2, T, D, "pos_emb", 0);
    for (int i = 0; i < c->n_layer; i++) {
        add(&l, BF_INIT_ONE, 0, 0, 1, D, 0, "blk.%d.attn_norm.w", i);
        if (ln) add(&l, BF_INIT_ZERO, 0, 0, 1, D, 0, "blk.%d.attn_norm.b", i);
        add(&l, BF_INIT_NORMAL, s, 1, 2, D, D, "blk.%d.wq", i);
        add(&l, BF_INIT_NORMAL, s, 1, 2, D, D, "blk.%d.wk", i);
        add(&l, BF_INIT_NORMAL, s, 1, 2, D, D, "blk.%d.wv", i);
        if (c->subln) add(&l, BF_INIT_ONE, 0, 0, 1, D, 0, "blk.%d.attn_sub_norm.w", i);
        add(&l, BF_INIT_NORMAL, sp, 1, 2, D, D, "blk.%d.wo", i);
        add(&l, BF_INIT_ONE, 0, 0, 1, D, 0, "blk.%d.mlp_norm.w", i);
        if (ln) add(&l, BF_INIT_ZERO, 0, 0, 1, D, 0, "blk.%d.mlp_norm.b", i);
        add(&l, BF_INIT_NORMAL, s, 1, 2, F, D, "blk.%d.w1", i);
        if (c->act != BF_ACT_GELU) add(&l, BF_INIT_NORMAL, s, 1, 2, F, D, "blk.%d.w3", i);
        if (c->subln) add(&l, BF_INIT_ONE, 0, 0, 1, F, 0, "blk.%d.ffn_sub_norm.w", i);
        add(&l, BF_INIT_NORMAL, sp, 1, 2, D, F, "blk.%d.w2", i);
    }
    add(&l, BF_INIT_ONE, 0, 0, 1, D, 0, "out_norm.w", 0);
    if (ln) add(&l, BF_INIT_ZERO, 0, 0, 1, D, 0, "out_norm.b", 0);
    if (!c->tie_embed) add(&l, BF_INIT_NORMAL, s, 0, 2, V, D, "head", 0);
    if (c->rec_n) {
        /* the states' starts: N(0, 1), the scale of a post-normed state (not
         * scaled by bf-init --std); the halting head starts at logit -5
         * (p ≈ 0.007), so that training first sees every supervision step */
        add(&l, BF_INIT_NORMAL, 1.0, 0, 1, D, 0, "rec.y0", 0);
        add(&l, BF_INIT_NORMAL, 1.0, 0, 1, D, 0, "rec.z0", 0);
        add(&l, BF_INIT_NORMAL, s, 0, 2, 1, D, "halt.w", 0);
        add(&l, BF_INIT_CONST, -5.0, 0, 1, 1, 0, "halt.b", 0);
    }
    *n = l.n;
    return l.p;
}

uint64_t bf_config_param_count(const bf_config *c)
{
    /* computed in double first: the limits keep the exact sum below 2^53 */
    double V = c->vocab, T = c->ctx, D = c->d_model, F = c->d_ff, L = c->n_layer;
    int ln = c->norm == BF_NORM_LAYER;
    double per = 4 * D * D + D * (ln ? 4 : 2) + F * D * (c->act == BF_ACT_GELU ? 2 : 3) + (c->subln ? D + F : 0);
    double n = V * D + (c->pos == BF_POS_LEARNED ? T * D : 0) + L * per + D * (ln ? 2 : 1) + (c->tie_embed ? 0 : V * D) +
               (c->rec_n ? 3 * D + 1 : 0);
    return n > 1e19 ? UINT64_MAX : (uint64_t)n;
}
