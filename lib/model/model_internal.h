/* model_internal.h — what the model's files share (private to lib/model):
 * the activation block, and the built-in weight sources. */
#ifndef BF_MODEL_INTERNAL_H
#define BF_MODEL_INTERNAL_H

#include "bf/model.h"
#include "bf/tgroup.h"

/* The integer kernels' input rows (linear.c): one site's activations as
 * int8 at the kernels' stride, made once for every matrix of the site that
 * runs on the kernels. */
typedef struct {
    int8_t *q;                    /* [rows, kpad] */
    float *inv_s;                 /* [rows] 1/s */
    int32_t *sum;                 /* [rows] Σ q */
    size_t rows, kpad;            /* room */
    const float *from;            /* the site q holds (NULL: none), */
    size_t from_N, from_kpad;     /* its rows and stride */
} bf_i8_rows;

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
    size_t N;
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
    float *dh, *dn, *dq, *dk, *dv, *dao, *dsub, *du, *dg, *da, *dan;
    float *dlogits;                           /* [M,V] d(loss)/d(logits) */
    int dlogits_ready;                        /* made for the last forward (bf_model_dlogits) */
    int last_cached;                          /* the last forward ran through the cache */
    bf_i8_rows i8;                            /* the integer kernels' input */
    /* key/value cache for incremental decoding: layer l's keys at
     * kv_block + 2·l·(kv_B·ctx·D), its values right after, each [kv_B, ctx, D] */
    float *kv_block;
    int kv_B;
};

/* Carving one allocation into 64-byte-aligned buffers: a first pass with
 * base NULL measures, a second hands out pointers (acts.c, net.c). */
typedef struct {
    float *base;
    size_t off;   /* floats so far */
} carver;

static inline float *carve(carver *c, size_t n)
{
    float *p = c->base ? c->base + c->off : NULL;
    c->off += (n + 15) / 16 * 16;
    return p;
}

/* acts.c: the activation block laid out for (B, T); -1 when memory cannot be had. */
int bf_acts_ensure(bf_model *m, int B, int T);
void bf_acts_free(bf_acts *a);

/* linear.c: the block matrices' products.  Whether w runs on the integer
 * kernels (the tm its current source made, int8 input). */
int bf_weight_on_kernels(const bf_weight *w);
/* Quantizes the site x [N, cols] read by a, b, c (any may be NULL): int8
 * rows into k when one of them runs on the kernels, xq (a buffer of its own,
 * else x itself) when one runs in float on int8 activations or when the
 * model trains.  -1 when memory cannot be had. */
int bf_site_quant(const bf_model *m, bf_i8_rows *k, const bf_weight *a, const bf_weight *b, const bf_weight *c,
                  const float *x, float *xq, size_t N, size_t cols);
/* out[N, rows] (+)= x·W_effᵀ, after bf_site_quant of x's site. */
int bf_linear(bf_i8_rows *k, const bf_weight *w, float *out, const float *x, const float *xq, size_t N, int accumulate);
/* din (+)= dout·W_eff; w's dw += doutᵀ·(its input: xq where it quantizes) */
void bf_linear_bwd(const bf_weight *w, float *din, int din_accumulate, const float *dout, const float *x,
                   const float *xq, size_t N);
void bf_i8_rows_free(bf_i8_rows *k);

/* net.c: the recursive block stack's activation sets (bf_model_net_begin). */
void bf_net_free(bf_net *n);

/* weights.c: the ternary source (straight-through, or frozen on the
 * integer kernels). */
typedef struct {
    bf_wsource base;
    bf_qspec q;
    float *w_eff;            /* owned [rows, cols] scale·codes; NULL on the integer kernels only */
    int8_t *codes;           /* the stream's codes and scales as loaded, */
    float *scales;           /* until a refresh re-quantizes the latent (then NULL) */
    bf_tmat *tm;             /* integer-kernel form, or NULL */
    float *tm_scale;         /* its scales (owned) */
} bf_ternary_src;

/* A ternary source for w from a checked stream group; the parameter (latent,
 * or scale·codes without one) is filled from it.  for_kernels: straight into
 * the kernels' layout, the parameter left untouched. */
int bf_ternary_src_load(bf_model *m, bf_weight *w, const bf_tgroup *g, int for_kernels);
/* The source of w if it is ternary, else NULL. */
bf_ternary_src *bf_ternary_src_of(const bf_weight *w);
/* The current codes and scales of a ternary weight (the stream's if untrained). */
void bf_ternary_src_codes(const bf_model *m, const bf_weight *w, int8_t *codes, float *scale);

#endif
