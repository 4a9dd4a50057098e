/* gguf.c — a model stream as a GGUF version 3 file for llama.cpp
 * (bf/interop.h, bf-export(1)).
 *
 * The file: "GGUF", version 3, the tensor and key/value counts (u64), the
 * key/values (a string key, a u32 type, the value), the tensor infos (name,
 * dimension count, dimensions innermost first, ggml type, data offset),
 * zero padding to general.alignment, then the tensors' data, each padded
 * to the alignment.  Little-endian throughout.
 *
 * Ternary blocks (256 weights of one row, the row's scale as F16 `d`):
 *   TQ2_0, 66 bytes: qs[64], d.  Weight 128j + 32m + l (j < 2, m < 4,
 *          l < 32) has its code w+1 in bits 2m of qs[32j + l].
 *   TQ1_0, 54 bytes: qs[48], qh[4], d.  Five codes a byte as a base-3
 *          number with the first code most significant, stored as
 *          ceil(v·256/243): byte l < 32 holds weights l + 32n (n < 5),
 *          byte 32 + l (l < 16) weights 160 + l + 16n, and qh[l] (l < 4)
 *          weights 240 + l + 4n (n < 4, the fifth digit 0). */
#include "bf/interop.h"
#include "bf/config.h"
#include "bf/tgroup.h"
#include "bf/util.h"
#include "bf/bytes.h"
#include "bf/json.h"
#include "bf/val.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 32
#define QK 256

enum { GV_U32 = 4, GV_F32 = 6, GV_STR = 8 };

typedef struct {
    char name[96];
    const bf_tensor *src;    /* the stream's tensor (the codes for a ternary W) */
    bf_gg_type type;
    int ndim;
    uint64_t ne[2];          /* innermost first: [cols, rows] */
    uint64_t nbytes, offset;
    int permute;             /* rows reordered for llama's rope (wq, wk) */
} gg_tensor;

static void put_u32(bf_buf *b, uint32_t v)
{
    uint8_t u[4];
    bf_put_le32(u, v);
    bf_buf_put(b, u, 4);
}

static void put_u64(bf_buf *b, uint64_t v)
{
    uint8_t u[8];
    bf_put_le64(u, v);
    bf_buf_put(b, u, 8);
}

static void put_gstr(bf_buf *b, const char *s)
{
    put_u64(b, strlen(s));
    bf_buf_put(b, s, strlen(s));
}

static void kv_u32(bf_buf *b, int *n, const char *arch, const char *key, uint32_t v)
{
    char k[128];
    snprintf(k, sizeof k, key, arch);
    put_gstr(b, k);
    put_u32(b, GV_U32);
    put_u32(b, v);
    (*n)++;
}

static void kv_f32(bf_buf *b, int *n, const char *arch, const char *key, float v)
{
    char k[128];
    snprintf(k, sizeof k, key, arch);
    put_gstr(b, k);
    put_u32(b, GV_F32);
    uint32_t u;
    memcpy(&u, &v, 4);
    put_u32(b, u);
    (*n)++;
}

static void kv_str(bf_buf *b, int *n, const char *key, const char *v)
{
    put_gstr(b, key);
    put_u32(b, GV_STR);
    put_gstr(b, v);
    (*n)++;
}

static uint64_t type_row_bytes(bf_gg_type t, uint64_t cols)
{
    switch (t) {
    case BF_GG_F32: return 4 * cols;
    case BF_GG_F16: return 2 * cols;
    case BF_GG_TQ2_0: return cols / QK * 66;
    case BF_GG_TQ1_0: return cols / QK * 54;
    }
    return 0;
}

static const char *type_name(bf_gg_type t)
{
    return t == BF_GG_F32 ? "F32" : t == BF_GG_F16 ? "F16" : t == BF_GG_TQ2_0 ? "TQ2_0" : "TQ1_0";
}

/* The stream row behind output row r of a permuted q/k matrix: within each
 * head of hd rows, llama pairs rows 2i and 2i+1 where bitforge's rotate-half
 * pairs i and i + hd/2. */
static size_t src_row(size_t r, size_t hd, int permute)
{
    if (!permute) return r;
    size_t h = r / hd, k = r % hd;
    return h * hd + (k % 2) * (hd / 2) + k / 2;
}

static void put_f16(uint8_t *p, float f)
{
    bf_put_le16(p, bf_f32_to_f16(f));
}

static void pack_tq2(const int8_t *w, float d, uint8_t *out)
{
    for (int j = 0; j < 2; j++)
        for (int l = 0; l < 32; l++) {
            unsigned q = 0;
            for (int m = 0; m < 4; m++) q |= (unsigned)(w[128 * j + 32 * m + l] + 1) << (2 * m);
            out[32 * j + l] = (uint8_t)q;
        }
    put_f16(out + 64, d);
}

static uint8_t tq1_byte(const int8_t *w, int stride, int digits)
{
    unsigned v = 0;
    for (int n = 0; n < 5; n++) v = 3 * v + (n < digits ? (unsigned)(w[n * stride] + 1) : 0);
    return (uint8_t)((v * 256 + 242) / 243);
}

static void pack_tq1(const int8_t *w, float d, uint8_t *out)
{
    for (int l = 0; l < 32; l++) out[l] = tq1_byte(w + l, 32, 5);
    for (int l = 0; l < 16; l++) out[32 + l] = tq1_byte(w + 160 + l, 16, 5);
    for (int l = 0; l < 4; l++) out[48 + l] = tq1_byte(w + 240 + l, 4, 4);
    put_f16(out + 52, d);
}

/* Fills t's data at out. */
static int fill(const gg_tensor *t, const bf_tset *s, size_t hd, uint8_t *out)
{
    const bf_tensor *src = t->src;
    size_t rows = t->ndim == 2 ? t->ne[1] : 1, cols = t->ne[0];
    uint64_t rb = type_row_bytes(t->type, cols);
    if (bf_dtype_is_ternary(src->dtype)) {
        bf_tgroup g;
        if (bf_tgroup_find(&g, s, src->name)) return -1;
        int8_t *codes = bf_xmalloc(cols);
        float *f = t->type == BF_GG_F32 || t->type == BF_GG_F16 ? bf_xmalloc(cols * sizeof *f) : NULL;
        for (size_t r = 0; r < rows; r++) {
            size_t sr = src_row(r, hd, t->permute);
            bf_tgroup_codes_row(&g, sr, codes);
            float d = bf_tgroup_row_scale(&g, sr);
            uint8_t *o = out + r * rb;
            if (t->type == BF_GG_TQ2_0)
                for (size_t b = 0; b < cols / QK; b++) pack_tq2(codes + b * QK, d, o + b * 66);
            else if (t->type == BF_GG_TQ1_0)
                for (size_t b = 0; b < cols / QK; b++) pack_tq1(codes + b * QK, d, o + b * 54);
            else {
                for (size_t c = 0; c < cols; c++) f[c] = d * (float)codes[c];
                if (t->type == BF_GG_F32) memcpy(o, f, cols * 4);
                else for (size_t c = 0; c < cols; c++) put_f16(o + 2 * c, f[c]);
            }
        }
        free(codes);
        free(f);
        return 0;
    }
    uint64_t n = bf_tensor_numel(src);
    float *f = bf_aligned_alloc(n ? n * sizeof *f : 4);
    if (!f) return -1;
    if (bf_tensor_to_f32(src, f)) { bf_aligned_free(f); return -1; }
    for (size_t r = 0; r < rows; r++) {
        const float *row = f + src_row(r, hd, t->permute) * cols;
        uint8_t *o = out + r * rb;
        if (t->type == BF_GG_F32) memcpy(o, row, cols * 4);
        else for (size_t c = 0; c < cols; c++) put_f16(o + 2 * c, row[c]);
    }
    bf_aligned_free(f);
    return 0;
}

int bf_gguf_write(const bf_header *h, const bf_tset *s, const bf_gg_opts *o, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (strcmp(h->kind, "model") != 0) return bf_err("a stream of kind '%s', not a model", h->kind);
    bf_config c;
    if (bf_config_from_meta(h->meta, &c)) return -1;
    if (c.norm != BF_NORM_RMS) return bf_err("gguf: llama.cpp's llama and bitnet take RMSNorm, not norm 'layer'");
    if (c.pos != BF_POS_ROPE) return bf_err("gguf: llama.cpp's llama and bitnet take RoPE, not pos 'learned'");
    if (c.act != BF_ACT_SWIGLU)
        return bf_err("gguf: llama.cpp's llama and bitnet take SwiGLU, not act '%s'", bf_act_names[c.act]);
    static const char *const known[] = {"arch", "vocab", "ctx", "d_model", "n_layer", "n_head", "d_ff", "norm", "act",
                                        "pos", "tie_embed", "subln", "act_bits", "attn", NULL};
    for (size_t k = 0; k < h->meta->v.a.n; k++) {
        int ok = 0;
        for (int j = 0; known[j] && !ok; j++) ok = strcmp(h->meta->v.a.keys[k], known[j]) == 0;
        if (!ok) return bf_err("gguf: the model's '%s' has no counterpart in llama.cpp's llama", h->meta->v.a.keys[k]);
    }
    const char *attn = bf_val_get_str(h->meta, "attn");
    if (attn && strcmp(attn, "causal") != 0) return bf_err("gguf: llama.cpp's llama and bitnet attend causally, not attn '%s'", attn);
    if (c.subln && !c.tie_embed) return bf_err("gguf: llama.cpp's bitnet has no head of its own: subln models must tie_embed");
    const char *arch = c.subln ? "bitnet" : "llama";
    int permute_qk = !c.subln;   /* bitnet's rope already rotates halves */
    size_t hd = (size_t)(c.d_model / c.n_head);
    if (o->embed != BF_GG_F32 && o->embed != BF_GG_F16) return bf_err("gguf: embeddings are F32 or F16");

    /* the tensors, in llama.cpp's names and order */
    static const char *const lnames[][2] = {
        {"attn_norm.w", "attn_norm"}, {"wq", "attn_q"}, {"wk", "attn_k"}, {"wv", "attn_v"},
        {"attn_sub_norm.w", "attn_sub_norm"}, {"wo", "attn_output"}, {"mlp_norm.w", "ffn_norm"},
        {"w1", "ffn_gate"}, {"w3", "ffn_up"}, {"ffn_sub_norm.w", "ffn_sub_norm"}, {"w2", "ffn_down"}};
    size_t cap = 3 + (size_t)c.n_layer * 11, nt = 0;
    gg_tensor *t = bf_xcalloc(cap, sizeof *t);
    int rc = -1, any_tq1 = 0, any_tq2 = 0, any_f16 = 0;
    for (int l = -1; l <= c.n_layer; l++) {
        size_t nl = l < 0 || l == c.n_layer ? 2 : sizeof lnames / sizeof lnames[0];
        for (size_t k = 0; k < nl; k++) {
            char bname[64];
            gg_tensor *g = &t[nt];
            if (l < 0) {
                if (k) continue;
                snprintf(bname, sizeof bname, "tok_emb");
                snprintf(g->name, sizeof g->name, "token_embd.weight");
            } else if (l == c.n_layer) {
                if (k == 1 && c.tie_embed) continue;
                snprintf(bname, sizeof bname, k ? "head" : "out_norm.w");
                snprintf(g->name, sizeof g->name, k ? "output.weight" : "output_norm.weight");
            } else {
                snprintf(bname, sizeof bname, "blk.%d.%s", l, lnames[k][0]);
                if (strstr(lnames[k][0], "sub_norm") && !c.subln) continue;
                snprintf(g->name, sizeof g->name, "blk.%d.%s.weight", l, lnames[k][1]);
            }
            const bf_tensor *src = bf_tset_find(s, bname);
            if (!src) { bf_err("the model's tensor '%s' is missing", bname); goto out; }
            g->src = src;
            g->ndim = src->ndim;
            if (src->ndim == 1) {
                g->ne[0] = src->shape[0];
                g->type = BF_GG_F32;
            } else if (src->ndim == 2) {
                g->ne[0] = src->shape[1];
                g->ne[1] = src->shape[0];
                int is_matrix = l >= 0 && l < c.n_layer;
                g->type = is_matrix ? o->matrix : o->embed;
                g->permute = is_matrix && permute_qk && (k == 1 || k == 2);
                if (is_matrix && (g->type == BF_GG_TQ2_0 || g->type == BF_GG_TQ1_0)) {
                    if (!bf_dtype_is_ternary(src->dtype)) {
                        bf_err("gguf: '%s' is %s, not ternary: quantize the model (bf-quantize) or export --type f16 or f32",
                               bname, bf_dtype_name(src->dtype));
                        goto out;
                    }
                    if (g->ne[0] % QK) {
                        if (!o->fallback) {
                            bf_err("gguf: '%s' has rows of %llu weights, not a multiple of 256 as %s needs (--fallback writes it F16)",
                                   bname, (unsigned long long)g->ne[0], type_name(g->type));
                            goto out;
                        }
                        g->type = BF_GG_F16;
                    }
                }
            } else {
                bf_err("'%s' has %d dimensions", bname, src->ndim);
                goto out;
            }
            if (bf_dtype_is_ternary(src->dtype) && !(l >= 0 && l < c.n_layer)) {
                bf_err("'%s' is ternary, which only block matrices may be", bname);
                goto out;
            }
            any_tq1 |= g->type == BF_GG_TQ1_0;
            any_tq2 |= g->type == BF_GG_TQ2_0;
            any_f16 |= g->type == BF_GG_F16 && g->ndim == 2 && l >= 0 && l < c.n_layer;
            g->nbytes = type_row_bytes(g->type, g->ne[0]) * (g->ndim == 2 ? g->ne[1] : 1);
            nt++;
        }
    }

    /* header and key/values */
    bf_buf b = {0};
    bf_buf_put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, nt);
    size_t kv_count_at = b.n;
    put_u64(&b, 0);
    int nkv = 0;
    kv_str(&b, &nkv, "general.architecture", arch);
    kv_str(&b, &nkv, "general.name", "bitforge");
    kv_u32(&b, &nkv, arch, "general.alignment", ALIGN);
    kv_u32(&b, &nkv, arch, "general.file_type", any_tq1 ? 36 : any_tq2 ? 37 : any_f16 ? 1 : 0);
    kv_u32(&b, &nkv, arch, "general.quantization_version", 2);
    kv_u32(&b, &nkv, arch, "%s.vocab_size", (uint32_t)c.vocab);
    kv_u32(&b, &nkv, arch, "%s.context_length", (uint32_t)c.ctx);
    kv_u32(&b, &nkv, arch, "%s.embedding_length", (uint32_t)c.d_model);
    kv_u32(&b, &nkv, arch, "%s.block_count", (uint32_t)c.n_layer);
    kv_u32(&b, &nkv, arch, "%s.feed_forward_length", (uint32_t)c.d_ff);
    kv_u32(&b, &nkv, arch, "%s.attention.head_count", (uint32_t)c.n_head);
    kv_u32(&b, &nkv, arch, "%s.attention.head_count_kv", (uint32_t)c.n_head);
    kv_u32(&b, &nkv, arch, "%s.rope.dimension_count", (uint32_t)hd);
    kv_f32(&b, &nkv, arch, "%s.rope.freq_base", 10000.0f);
    kv_f32(&b, &nkv, arch, "%s.attention.layer_norm_rms_epsilon", 1e-5f);
    kv_str(&b, &nkv, "tokenizer.ggml.model", "none");
    bf_put_le64(b.p + kv_count_at, (uint64_t)nkv);

    /* tensor infos */
    uint64_t off = 0;
    for (size_t k = 0; k < nt; k++) {
        t[k].offset = off;
        put_gstr(&b, t[k].name);
        put_u32(&b, (uint32_t)t[k].ndim);
        for (int d = 0; d < t[k].ndim; d++) put_u64(&b, t[k].ne[d]);
        put_u32(&b, (uint32_t)t[k].type);
        put_u64(&b, off);
        off += (t[k].nbytes + ALIGN - 1) / ALIGN * ALIGN;
    }
    while (b.n % ALIGN) bf_buf_put(&b, "", 1);
    size_t total = b.n + (size_t)off;
    uint8_t *out_buf = calloc(total, 1);
    if (!out_buf) { free(b.p); bf_err("out of memory for a %zu-byte file", total); goto out; }
    memcpy(out_buf, b.p, b.n);
    for (size_t k = 0; k < nt; k++)
        if (fill(&t[k], s, hd, out_buf + b.n + t[k].offset)) {
            bf_err_context("'%s': ", t[k].src->name);
            free(out_buf);
            free(b.p);
            goto out;
        }
    free(b.p);
    *buf = out_buf;
    *len = total;
    rc = 0;
out:
    free(t);
    return rc;
}
