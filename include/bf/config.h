/* bf/config.h — a model's configuration (part: model; bitforge(7)) and its tensors.
 *
 * The configuration lives in a model stream's header meta; this module reads
 * and validates it, writes it back, and lists the tensors a configuration
 * has: names, shapes, and how bf-init initializes them. */
#ifndef BF_CONFIG_H
#define BF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "bf/dataset.h"
#include "bf/val.h"

typedef enum { BF_NORM_RMS, BF_NORM_LAYER } bf_norm_kind;
typedef enum { BF_ACT_SWIGLU, BF_ACT_GELU, BF_ACT_RELU2 } bf_act_kind;
typedef enum { BF_POS_ROPE, BF_POS_LEARNED } bf_pos_kind;
typedef enum { BF_ATTN_CAUSAL, BF_ATTN_FULL } bf_attn_kind;

extern const char *const bf_norm_names[];   /* NULL-ended, in enum order */
extern const char *const bf_act_names[];
extern const char *const bf_pos_names[];
extern const char *const bf_attn_names[];   /* "causal", "full" */

typedef struct {
    int vocab, ctx, d_model, n_layer, n_head, d_ff;
    bf_norm_kind norm;
    bf_act_kind act;
    bf_pos_kind pos;
    int tie_embed, subln, act_bits;
    bf_attn_kind attn;       /* full: no mask (puzzles); the meta key only when not causal */
    /* recursion (TRM, bf/trm.h): rec_n 0 = off (no meta key).  On: the blocks
     * are post-norm, h = norm(h + attn(h)); h = norm(h + mlp(h)), and the
     * model has rec.y0, rec.z0 [D], halt.w [1,D], halt.b [1]; one recursion
     * is rec_n latent updates z = net(x+y+z) then y = net(y+z); a
     * supervision step is rec_T recursions; up to rec_sup steps. */
    int rec_n, rec_T, rec_sup;
} bf_config;

/* Limits that keep every size computation far from overflow (the vocab
 * and ctx limits are the data's too: bf/dataset.h). */
#define BF_MAX_DMODEL (1 << 16)
#define BF_MAX_LAYERS 1024
#define BF_MAX_DFF (1 << 20)
#define BF_MAX_PARAMS (1ULL << 36)
#define BF_MAX_REC 64         /* rec_n and rec_T */
#define BF_MAX_SUP 1024       /* rec_sup */

void bf_config_default(bf_config *c);
int bf_config_validate(const bf_config *c);                 /* -1 and bf_err */
int bf_config_from_meta(const bf_val *meta, bf_config *c);  /* reads and validates */
void bf_config_to_meta(const bf_config *c, bf_val *meta);   /* sets the keys in meta */

typedef enum { BF_INIT_NORMAL, BF_INIT_ONE, BF_INIT_ZERO, BF_INIT_CONST } bf_init_kind;

typedef struct {
    char name[64];
    int ndim;
    uint64_t shape[2];
    bf_init_kind init;
    double std;          /* BF_INIT_NORMAL; BF_INIT_CONST: the value */
    int is_block_matrix; /* one of blk.*.w{q,k,v,o,1,2,3}: the ternary layers */
} bf_param_spec;

/* The configuration's tensors in stream order; *n set.  Caller frees. */
bf_param_spec *bf_config_params(const bf_config *c, size_t *n);
uint64_t bf_config_param_count(const bf_config *c);

#endif
