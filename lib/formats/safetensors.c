/* safetensors.c — model streams to and from safetensors files, and the
 * bitforge ↔ Hugging Face llama tensor names (bf/interop.h, bf-export(1),
 * bf-import(1)).
 *
 * A safetensors file: an 8-byte little-endian header size N, N bytes of
 * JSON (an object: each tensor's dtype, shape and [begin, end) data
 * offsets, plus an optional "__metadata__" object of strings), then the
 * data section, which the tensors cover exactly. */
#include "bf/interop.h"
#include "bf/config.h"
#include "bf/tgroup.h"
#include "bf/ternary.h"
#include "bf/util.h"
#include "bf/bytes.h"
#include "bf/json.h"
#include "bf/val.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ names */

static const char *const layer_map[][2] = {
    {"attn_norm.w", "input_layernorm.weight"},
    {"attn_norm.b", "input_layernorm.bias"},
    {"wq", "self_attn.q_proj.weight"},
    {"wk", "self_attn.k_proj.weight"},
    {"wv", "self_attn.v_proj.weight"},
    {"attn_sub_norm.w", "self_attn.attn_sub_norm.weight"},
    {"wo", "self_attn.o_proj.weight"},
    {"mlp_norm.w", "post_attention_layernorm.weight"},
    {"mlp_norm.b", "post_attention_layernorm.bias"},
    {"w1", "mlp.gate_proj.weight"},
    {"w3", "mlp.up_proj.weight"},
    {"ffn_sub_norm.w", "mlp.ffn_sub_norm.weight"},
    {"w2", "mlp.down_proj.weight"},
};
static const char *const global_map[][2] = {
    {"tok_emb", "model.embed_tokens.weight"},
    {"pos_emb", "model.embed_positions.weight"},
    {"out_norm.w", "model.norm.weight"},
    {"out_norm.b", "model.norm.bias"},
    {"head", "lm_head.weight"},
};
#define NLAYER_MAP (sizeof layer_map / sizeof layer_map[0])
#define NGLOBAL_MAP (sizeof global_map / sizeof global_map[0])

/* "PREFIX<digits>.REST": the layer number (no leading zeros, below 2^20)
 * and *rest; -1 if name does not start so. */
static long layer_of(const char *name, const char *prefix, const char **rest)
{
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0) return -1;
    const char *d = name + pl;
    if (*d < '0' || *d > '9' || (d[0] == '0' && d[1] >= '0' && d[1] <= '9')) return -1;
    long l = 0;
    while (*d >= '0' && *d <= '9') {
        l = l * 10 + (*d++ - '0');
        if (l >= 1 << 20) return -1;
    }
    if (*d != '.') return -1;
    *rest = d + 1;
    return l;
}

/* Maps name from column `from` of the tables to column 1 - from. */
static int map_name(const char *name, int from, char *out)
{
    static const char *const prefix[2] = {"blk.", "model.layers."};
    const char *rest;
    long l = layer_of(name, prefix[from], &rest);
    int n = -1;
    if (l >= 0) {
        for (size_t k = 0; k < NLAYER_MAP; k++)
            if (strcmp(rest, layer_map[k][from]) == 0) {
                n = snprintf(out, BF_MAX_NAME + 1, "%s%ld.%s", prefix[1 - from], l, layer_map[k][1 - from]);
                break;
            }
    } else {
        for (size_t k = 0; k < NGLOBAL_MAP; k++)
            if (strcmp(name, global_map[k][from]) == 0) {
                n = snprintf(out, BF_MAX_NAME + 1, "%s", global_map[k][1 - from]);
                break;
            }
    }
    if (n < 0 || n > BF_MAX_NAME)
        return from ? bf_err("'%s' is not a tensor name of the hf convention", name)
                    : bf_err("'%s' has no Hugging Face llama name", name);
    return 0;
}

int bf_name_to_hf(const char *bf, char *out)
{
    const char *part;
    size_t len = bf_tgroup_split_name(bf, &part);
    if (!len) return map_name(bf, 0, out);
    char base[BF_MAX_NAME + 1];
    memcpy(base, bf, len);
    base[len] = 0;
    if (map_name(base, 0, out)) return bf_err("'%s' has no Hugging Face llama name", bf);
    size_t ol = strlen(out);
    if (ol < 7 || strcmp(out + ol - 7, ".weight") != 0 || ol + 1 + strlen(part) > BF_MAX_NAME)
        return bf_err("'%s' has no Hugging Face name", bf);
    out[ol] = '_';   /* q_proj.weight_scale */
    memcpy(out + ol + 1, part, strlen(part) + 1);
    return 0;
}

int bf_name_from_hf(const char *hf, char *out)
{
    static const char *const parts[] = {"scale", "latent"};
    size_t n = strlen(hf);
    for (int k = 0; k < 2; k++) {
        size_t pl = strlen(".weight_") + strlen(parts[k]);
        if (n > pl && strncmp(hf + n - pl, ".weight_", 8) == 0 && strcmp(hf + n - pl + 8, parts[k]) == 0) {
            char base[BF_MAX_NAME + 1];
            memcpy(base, hf, n - pl + 7);   /* up to and including ".weight" */
            base[n - pl + 7] = 0;
            if (map_name(base, 1, out)) return bf_err("'%s' is not a tensor name of the hf convention", hf);
            size_t ol = strlen(out);
            if (ol + 1 + strlen(parts[k]) > BF_MAX_NAME) return bf_err("'%s': name too long", hf);
            out[ol] = '.';
            memcpy(out + ol + 1, parts[k], strlen(parts[k]) + 1);
            return 0;
        }
    }
    return map_name(hf, 1, out);
}

/* ------------------------------------------------------------------ dtypes */

/* safetensors' dtypes and their element sizes; bitforge reads the first seven. */
static const struct { const char *name; unsigned size; int bf; } st_dtypes[] = {
    {"F32", 4, BF_F32}, {"F16", 2, BF_F16}, {"BF16", 2, BF_BF16}, {"I8", 1, BF_I8}, {"U8", 1, BF_U8},
    {"I32", 4, BF_I32}, {"I64", 8, BF_I64},
    {"BOOL", 1, -1}, {"F8_E5M2", 1, -1}, {"F8_E4M3", 1, -1}, {"F8_E8M0", 1, -1}, {"I16", 2, -1}, {"U16", 2, -1},
    {"U32", 4, -1}, {"F64", 8, -1}, {"U64", 8, -1},
};
#define NST_DTYPES (sizeof st_dtypes / sizeof st_dtypes[0])

static int st_dtype(const char *s)
{
    for (size_t k = 0; k < NST_DTYPES; k++)
        if (strcmp(s, st_dtypes[k].name) == 0) return (int)k;
    return -1;
}

/* ------------------------------------------------------------------ writer */

typedef struct {
    char name[BF_MAX_NAME + 1];   /* in the file */
    const char *dtype;
    int ndim;
    uint64_t shape[BF_MAX_DIMS];
    uint8_t *data;                /* owned when own */
    uint64_t nbytes;
    int own;
} out_tensor;

typedef struct {
    out_tensor *t;
    size_t n, cap;
} out_list;

static out_tensor *out_add(out_list *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->t = bf_xrealloc(l->t, l->cap * sizeof *l->t);
    }
    memset(&l->t[l->n], 0, sizeof *l->t);
    return &l->t[l->n++];
}

static void out_release(out_list *l)
{
    for (size_t k = 0; k < l->n; k++)
        if (l->t[k].own) free(l->t[k].data);
    free(l->t);
}

static int file_name(const bf_st_opts *o, const char *name, char *out)
{
    if (o->names == BF_NAMES_HF) return bf_name_to_hf(name, out);
    snprintf(out, BF_MAX_NAME + 1, "%s", name);
    return 0;
}

/* n floats of src into dst as dt (F32, F16, BF16). */
static void put_floats(bf_dtype dt, const float *src, size_t n, uint8_t *dst)
{
    if (dt == BF_F32) { memcpy(dst, src, n * 4); return; }
    for (size_t k = 0; k < n; k++) {
        bf_put_le16(dst + 2 * k, dt == BF_F16 ? bf_f32_to_f16(src[k]) : bf_f32_to_bf16(src[k]));
    }
}

/* A float tensor in o->float_dtype: as it is when already so, else converted. */
static int add_float(out_list *l, const bf_st_opts *o, const bf_tensor *t, const char *fname, bf_dtype want)
{
    out_tensor *ot = out_add(l);
    snprintf(ot->name, sizeof ot->name, "%s", fname);
    ot->ndim = t->ndim;
    memcpy(ot->shape, t->shape, sizeof ot->shape);
    ot->dtype = bf_dtype_name(want);
    if (t->dtype == want) {
        ot->data = t->data;
        ot->nbytes = t->nbytes;
        return 0;
    }
    uint64_t n = bf_tensor_numel(t);
    float *f = bf_aligned_alloc(n ? n * 4 : 4);
    if (!f) return -1;
    if (bf_tensor_to_f32(t, f)) { bf_aligned_free(f); return -1; }
    ot->nbytes = n * bf_dtype_size(want);
    ot->data = malloc(ot->nbytes ? ot->nbytes : 1);
    if (!ot->data) { bf_aligned_free(f); return bf_err("out of memory for '%s'", t->name); }
    ot->own = 1;
    put_floats(want, f, n, ot->data);
    bf_aligned_free(f);
    (void)o;
    return 0;
}

int bf_st_write(const bf_header *h, const bf_tset *s, const bf_st_opts *o, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (strcmp(h->kind, "model") != 0) return bf_err("a stream of kind '%s', not a model", h->kind);
    if (o->float_dtype != BF_F32 && o->float_dtype != BF_F16 && o->float_dtype != BF_BF16)
        return bf_err("safetensors floats are F32, F16 or BF16");
    out_list l = {0};
    bf_val *tern = bf_val_map();
    int rc = -1;
    char fname[BF_MAX_NAME + 1];
    for (size_t k = 0; k < s->n; k++) {
        const bf_tensor *t = &s->t[k];
        const char *part;
        size_t blen = bf_tgroup_split_name(t->name, &part);
        if (blen) {   /* W.scale / W.latent of a ternary W: with W */
            char base[BF_MAX_NAME + 1];
            memcpy(base, t->name, blen);
            base[blen] = 0;
            const bf_tensor *w = bf_tset_find(s, base);
            if (w && bf_dtype_is_ternary(w->dtype)) continue;
        }
        if (file_name(o, t->name, fname)) goto out;
        if (!bf_dtype_is_ternary(t->dtype)) {
            int is_float = t->dtype == BF_F32 || t->dtype == BF_F16 || t->dtype == BF_BF16;
            if (!is_float) {   /* integers as they are */
                out_tensor *ot = out_add(&l);
                snprintf(ot->name, sizeof ot->name, "%s", fname);
                ot->dtype = bf_dtype_name(t->dtype);
                ot->ndim = t->ndim;
                memcpy(ot->shape, t->shape, sizeof ot->shape);
                ot->data = t->data;
                ot->nbytes = t->nbytes;
            } else if (add_float(&l, o, t, fname, o->float_dtype)) goto out;
            continue;
        }
        bf_tgroup g;
        if (bf_tgroup_find(&g, s, t->name)) goto out;
        if (!o->packed) {   /* scale·codes */
            bf_tensor f;
            if (bf_tensor_init(&f, t->name, BF_F32, 2, t->shape)) goto out;
            bf_tgroup_dequant(&g, f.data);
            int e = add_float(&l, o, &f, fname, o->float_dtype);
            if (!e && l.t[l.n - 1].data == f.data) {   /* keep F32 bytes past f's release */
                out_tensor *ot = &l.t[l.n - 1];
                ot->data = malloc(ot->nbytes ? ot->nbytes : 1);
                if (!ot->data) e = bf_err("out of memory for '%s'", t->name);
                else { memcpy(ot->data, f.data, ot->nbytes); ot->own = 1; }
            }
            bf_tensor_release(&f);
            if (e) goto out;
            continue;
        }
        /* packed: the stream's bytes as U8 [rows, row_bytes], scale and latent F32 */
        out_tensor *ot = out_add(&l);
        snprintf(ot->name, sizeof ot->name, "%s", fname);
        ot->dtype = "U8";
        ot->ndim = 2;
        ot->shape[0] = g.rows;
        ot->shape[1] = bf_ternary_row_bytes(t->dtype, g.cols);
        ot->data = t->data;
        ot->nbytes = t->nbytes;
        bf_val *d = bf_val_map();
        bf_val_set(d, "dtype", bf_val_str(bf_dtype_name(t->dtype)));
        bf_val *sh = bf_val_arr();
        bf_val_push(sh, bf_val_int((int64_t)g.rows));
        bf_val_push(sh, bf_val_int((int64_t)g.cols));
        bf_val_set(d, "shape", sh);
        if (t->meta) bf_val_set(d, "meta", bf_val_clone(t->meta));
        bf_val_set(tern, fname, d);
        const bf_tensor *parts[2] = {g.scale, g.latent};
        for (int p = 0; p < 2; p++) {
            if (!parts[p]) continue;
            if (file_name(o, parts[p]->name, fname)) goto out;
            if (add_float(&l, o, parts[p], fname, BF_F32)) goto out;
        }
    }

    /* the header: metadata, then each tensor with its offsets */
    bf_buf j = {0};
    bf_buf_str(&j, "{\"__metadata__\":{\"format\":\"pt\",\"bitforge.config\":");
    bf_buf v = {0};
    if (bf_json_write(&v, h->meta)) { free(j.p); free(v.p); goto out; }
    bf_json_quote(&j, (const char *)v.p, v.n);
    if (tern->v.a.n) {
        v.n = 0;
        if (bf_json_write(&v, tern)) { free(j.p); free(v.p); goto out; }
        bf_buf_str(&j, ",\"bitforge.ternary\":");
        bf_json_quote(&j, (const char *)v.p, v.n);
    }
    free(v.p);
    bf_buf_str(&j, "}");
    uint64_t off = 0;
    for (size_t k = 0; k < l.n; k++) {
        out_tensor *ot = &l.t[k];
        char num[64];
        bf_buf_str(&j, ",");
        bf_json_quote(&j, ot->name, strlen(ot->name));
        bf_buf_str(&j, ":{\"dtype\":\"");
        bf_buf_str(&j, ot->dtype);
        bf_buf_str(&j, "\",\"shape\":[");
        for (int d = 0; d < ot->ndim; d++) {
            snprintf(num, sizeof num, "%s%llu", d ? "," : "", (unsigned long long)ot->shape[d]);
            bf_buf_str(&j, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + ot->nbytes));
        bf_buf_str(&j, num);
        off += ot->nbytes;
    }
    bf_buf_str(&j, "}");
    while (j.n % 8) bf_buf_put(&j, " ", 1);   /* the data section 8-byte aligned */
    if (j.n > BF_ST_MAX_HEADER) { free(j.p); bf_err("the header would be %zu bytes, above safetensors' limit", j.n); goto out; }
    size_t total = 8 + j.n + (size_t)off;
    uint8_t *b = malloc(total);
    if (!b) { free(j.p); bf_err("out of memory for a %zu-byte file", total); goto out; }
    bf_put_le64(b, (uint64_t)j.n);
    memcpy(b + 8, j.p, j.n);
    size_t at = 8 + j.n;
    for (size_t k = 0; k < l.n; k++) {
        if (l.t[k].nbytes) memcpy(b + at, l.t[k].data, l.t[k].nbytes);
        at += l.t[k].nbytes;
    }
    free(j.p);
    *buf = b;
    *len = total;
    rc = 0;
out:
    bf_val_free(tern);
    out_release(&l);
    return rc;
}

/* ------------------------------------------------------------------ reader */

typedef struct {
    char *name;          /* in the file */
    int dt;              /* index into st_dtypes */
    int ndim;
    uint64_t shape[BF_MAX_DIMS];
    uint64_t begin, end;
    size_t order;        /* position in the header */
} in_tensor;

static void free_entries(in_tensor *t, size_t nt)
{
    for (size_t k = 0; k < nt; k++) free(t[k].name);
    free(t);
}

static int cmp_name(const void *a, const void *b) { return strcmp(((const in_tensor *)a)->name, ((const in_tensor *)b)->name); }
static int cmp_begin(const void *a, const void *b)
{
    const in_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int get_u64(const bf_val *v, uint64_t *out)
{
    if (v->type == BF_INT && v->v.i >= 0) { *out = (uint64_t)v->v.i; return 0; }
    if (v->type == BF_UINT) { *out = v->v.u; return 0; }
    return -1;
}

/* One tensor entry {dtype, shape, data_offsets} into t. */
static int tensor_entry(const char *label, const char *name, const bf_val *e, uint64_t data_len, in_tensor *t)
{
    if (e->type != BF_MAP) return bf_err("%s: '%s' is not an object", label, name);
    const char *dt = bf_val_get_str(e, "dtype");
    const bf_val *sh = bf_val_get(e, "shape"), *of = bf_val_get(e, "data_offsets");
    if (!dt) return bf_err("%s: '%s' has no dtype string", label, name);
    if ((t->dt = st_dtype(dt)) < 0) return bf_err("%s: '%s' has the unknown dtype '%s'", label, name, dt);
    if (!sh || sh->type != BF_ARR) return bf_err("%s: '%s' has no shape array", label, name);
    if (sh->v.a.n > BF_MAX_DIMS) return bf_err("%s: '%s' has %zu dimensions, at most %d", label, name, sh->v.a.n, BF_MAX_DIMS);
    t->ndim = (int)sh->v.a.n;
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (get_u64(&sh->v.a.items[d], &t->shape[d]))
            return bf_err("%s: '%s' has a shape entry that is not a non-negative integer", label, name);
        if (bf_mul_u64(numel, t->shape[d], &numel)) return bf_err("%s: '%s': its size overflows", label, name);
    }
    uint64_t nbytes;
    if (bf_mul_u64(numel, st_dtypes[t->dt].size, &nbytes)) return bf_err("%s: '%s': its size overflows", label, name);
    if (!of || of->type != BF_ARR || of->v.a.n != 2 || get_u64(&of->v.a.items[0], &t->begin) ||
        get_u64(&of->v.a.items[1], &t->end))
        return bf_err("%s: '%s' has no data_offsets [begin, end] of non-negative integers", label, name);
    if (t->begin > t->end || t->end > data_len)
        return bf_err("%s: '%s' has data_offsets [%llu, %llu] outside the %llu bytes of data", label, name,
                      (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)data_len);
    if (t->end - t->begin != nbytes)
        return bf_err("%s: '%s' has %llu bytes of data, its dtype and shape need %llu", label, name,
                      (unsigned long long)(t->end - t->begin), (unsigned long long)nbytes);
    return 0;
}

/* The header's walk: each entry checked as it comes, in the header's order,
 * its offsets against the data before the next entry is looked at.  The
 * whole header is parsed first (bf_json_each: jansson parses all of it,
 * then hands out one entry at a time as a bf_val, released once checked; a
 * tensor keeps only its in_tensor), rather than walked by hand a key at a
 * time with jansson for each value: that would keep JSON syntax (keys,
 * ':' and ',') in this file, for a saving only on headers of very many
 * entries, which already cost less than the worst header of one entry
 * (lib/support/json.c has the figures).  So a syntax error anywhere now
 * comes before a bad entry earlier in the header.  A name cannot repeat:
 * the parse refuses a repeated key. */
typedef struct {
    const char *label;
    uint64_t data_len;
    in_tensor *t;
    size_t cnt, cap;
    bf_val *meta;
} header_walk;

static int header_entry(void *ctx, const char *key, bf_val *v)
{
    header_walk *w = ctx;
    if (strcmp(key, "__metadata__") == 0) {
        int bad = v->type != BF_MAP;
        for (size_t k = 0; !bad && k < v->v.a.n; k++)
            if (v->v.a.items[k].type != BF_STR) bad = 1;
        if (bad) {
            bf_val_free(v);
            return bf_err("%s: __metadata__ is not an object of strings", w->label);
        }
        w->meta = v;
        return 0;
    }
    if (w->cnt == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->t = bf_xrealloc(w->t, w->cap * sizeof *w->t);
    }
    in_tensor *t = &w->t[w->cnt];
    memset(t, 0, sizeof *t);
    t->name = bf_xstrdup(key);
    t->order = w->cnt++;
    int e = tensor_entry(w->label, key, v, w->data_len, t);
    bf_val_free(v);
    return e;
}

/* Parses the header: tensors into *out (sorted by name), metadata into *meta. */
/* data_len UINT64_MAX: not known yet; *covered (may be NULL) is then the
 * size of the data section the offsets describe. */
static int parse_header(const char *label, const char *js, size_t n, uint64_t data_len, in_tensor **out, size_t *nt,
                        bf_val **meta, uint64_t *covered)
{
    char pl[BF_MAX_NAME + 64];
    snprintf(pl, sizeof pl, "%s: JSON header", label);
    header_walk w = {.label = label, .data_len = data_len};
    int rc = -1;
    if (n == 0 || js[0] != '{') { bf_err("%s: the JSON header does not start with '{'", label); goto out; }
    if (bf_json_each(js, n, pl, header_entry, &w)) goto out;
    /* contiguous: sorted by offset, each begins where the one before ends */
    if (w.cnt) qsort(w.t, w.cnt, sizeof *w.t, cmp_begin);
    uint64_t at = 0;
    for (size_t k = 0; k < w.cnt; k++) {
        if (w.t[k].begin != at)
            { bf_err("%s: '%s' begins at data offset %llu, not %llu: %s", label, w.t[k].name, (unsigned long long)w.t[k].begin,
                     (unsigned long long)at, w.t[k].begin > at ? "a hole before it" : "it overlaps another"); goto out; }
        at = w.t[k].end;
    }
    if (covered) *covered = at;
    if (data_len != UINT64_MAX && at != data_len)
        { bf_err("%s: the tensors cover %llu of the %llu bytes of data", label, (unsigned long long)at, (unsigned long long)data_len); goto out; }
    if (w.cnt) qsort(w.t, w.cnt, sizeof *w.t, cmp_name);
    rc = 0;
out:
    if (rc) {
        free_entries(w.t, w.cnt);
        bf_val_free(w.meta);
        w.meta = NULL;
        w.t = NULL;
        w.cnt = 0;
    }
    *meta = w.meta;
    *out = w.t;
    *nt = w.cnt;
    return rc;
}

/* Moves tensor `name` from src to the end of dst; -1 if src has none. */
static int move_tensor(bf_tset *dst, bf_tset *src, const char *name)
{
    bf_tensor *t = bf_tset_find(src, name);
    if (!t) return -1;
    *bf_tset_add(dst) = *t;
    size_t k = (size_t)(t - src->t);
    memmove(&src->t[k], &src->t[k + 1], (src->n - k - 1) * sizeof *t);
    src->n--;
    return 0;
}

static in_tensor *find_in(in_tensor *t, size_t n, const char *name)
{
    in_tensor key = {.name = (char *)name};
    if (!n) return NULL;
    return bsearch(&key, t, n, sizeof *t, cmp_name);
}

/* Whether the file's names are bitforge's: a tensor named tok_emb. */
static bf_names detect_names(in_tensor *t, size_t n)
{
    if (find_in(t, n, "tok_emb")) return BF_NAMES_BITFORGE;
    if (find_in(t, n, "model.embed_tokens.weight")) return BF_NAMES_HF;
    return BF_NAMES_BITFORGE;
}

/* The configuration from the file's metadata, or from its shapes and o. */
static int make_config(const char *label, const bf_val *meta, const bf_st_import_opts *o, bf_tset *s, bf_config *c)
{
    const char *js = meta ? bf_val_get_str(meta, "bitforge.config") : NULL;
    if (js) {
        char pl[BF_MAX_NAME + 64];
        snprintf(pl, sizeof pl, "%s: bitforge.config", label);
        bf_val *v = bf_json_parse(js, strlen(js), pl);
        if (!v) return -1;
        int e = v->type != BF_MAP ? 1 : bf_config_from_meta(v, c) ? 2 : 0;
        bf_val_free(v);
        if (e == 1) return bf_err("%s: bitforge.config is not an object", label);
        if (e == 2) return bf_err_context("%s: bitforge.config: ", label);
    } else {
        bf_config_default(c);
        const bf_tensor *emb = bf_tset_find(s, "tok_emb");
        if (!emb || emb->ndim != 2) return bf_err("%s: no 2-dimensional token embedding (tok_emb, model.embed_tokens.weight)", label);
        c->vocab = (int)(emb->shape[0] > BF_MAX_VOCAB ? BF_MAX_VOCAB + 1 : emb->shape[0]);
        c->d_model = (int)(emb->shape[1] > BF_MAX_DMODEL ? BF_MAX_DMODEL + 1 : emb->shape[1]);
        char nm[64];
        int L = 0;
        for (;; L++) {
            snprintf(nm, sizeof nm, "blk.%d.attn_norm.w", L);
            if (!bf_tset_find(s, nm) || L > BF_MAX_LAYERS) break;
        }
        c->n_layer = L;
        const bf_tensor *w1 = bf_tset_find(s, "blk.0.w1");
        if (w1 && w1->ndim == 2) c->d_ff = (int)(w1->shape[0] > BF_MAX_DFF ? BF_MAX_DFF + 1 : w1->shape[0]);
        c->norm = bf_tset_find(s, "blk.0.attn_norm.b") ? BF_NORM_LAYER : BF_NORM_RMS;
        const bf_tensor *pe = bf_tset_find(s, "pos_emb");
        c->pos = pe ? BF_POS_LEARNED : BF_POS_ROPE;
        c->act = bf_tset_find(s, "blk.0.w3") ? BF_ACT_SWIGLU : BF_ACT_GELU;
        c->subln = bf_tset_find(s, "blk.0.attn_sub_norm.w") != NULL;
        c->tie_embed = bf_tset_find(s, "head") == NULL;
        c->ctx = pe && pe->ndim == 2 ? (int)(pe->shape[0] > BF_MAX_CTX ? BF_MAX_CTX + 1 : pe->shape[0]) : 0;
        if (!o->n_head) return bf_err("%s: no bitforge.config in the metadata: the head count must be given (--heads)", label);
        if (!o->ctx && !c->ctx) return bf_err("%s: no bitforge.config in the metadata: the context must be given (--ctx)", label);
    }
    if (o->n_head) c->n_head = o->n_head;
    if (o->ctx) c->ctx = o->ctx;
    if (o->act >= 0) c->act = (bf_act_kind)o->act;
    if (o->act_bits >= 0) c->act_bits = o->act_bits;
    if (bf_config_validate(c)) return bf_err_context("%s: ", label);
    return 0;
}

int bf_st_header_len(const uint8_t *buf, const char *label, uint64_t *hn)
{
    *hn = bf_get_le64(buf);
    if (*hn > BF_ST_MAX_HEADER)
        return bf_err("%s: a header of %llu bytes, above the limit of %u", label, (unsigned long long)*hn, BF_ST_MAX_HEADER);
    return 0;
}

int bf_st_data_len(const uint8_t *buf, size_t len, const char *label, uint64_t *data_len)
{
    uint64_t hn;
    if (len < 8) return bf_err("%s: %zu bytes, too short for a safetensors file", label, len);
    if (bf_st_header_len(buf, label, &hn)) return -1;
    if (hn > len - 8) return bf_err("%s: a header of %llu bytes, but %zu after the size", label, (unsigned long long)hn, len - 8);
    in_tensor *t;
    size_t nt;
    bf_val *meta;
    if (parse_header(label, (const char *)buf + 8, (size_t)hn, UINT64_MAX, &t, &nt, &meta, data_len)) return -1;
    free_entries(t, nt);
    bf_val_free(meta);
    return 0;
}

int bf_st_parse(const uint8_t *buf, size_t len, const char *label, const bf_st_import_opts *o, bf_header *h,
                bf_tset *s)
{
    memset(s, 0, sizeof *s);
    bf_header_init(h, "model");
    if (len < 8) return bf_err("%s: %zu bytes, too short for a safetensors file", label, len);
    uint64_t hn = bf_get_le64(buf);
    if (hn > BF_ST_MAX_HEADER) return bf_err("%s: a header of %llu bytes, above the limit of %u", label, (unsigned long long)hn, BF_ST_MAX_HEADER);
    if (hn > len - 8) return bf_err("%s: a header of %llu bytes, but the file has %zu after the size", label, (unsigned long long)hn, len - 8);
    const uint8_t *data = buf + 8 + hn;
    uint64_t data_len = len - 8 - hn;
    in_tensor *t;
    size_t nt;
    bf_val *meta;
    if (parse_header(label, (const char *)buf + 8, (size_t)hn, data_len, &t, &nt, &meta, NULL)) return -1;
    int rc = -1;
    bf_val *tern = NULL;
    bf_names names = o->names == BF_NAMES_AUTO ? detect_names(t, nt) : o->names;
    const char *tj = meta ? bf_val_get_str(meta, "bitforge.ternary") : NULL;
    if (tj) {
        char pl[BF_MAX_NAME + 64];
        snprintf(pl, sizeof pl, "%s: bitforge.ternary", label);
        tern = bf_json_parse(tj, strlen(tj), pl);
        if (!tern) goto out;
        if (tern->type != BF_MAP) { bf_err("%s: bitforge.ternary is not an object", label); goto out; }
        for (size_t k = 0; k < tern->v.a.n; k++)
            if (!find_in(t, nt, tern->v.a.keys[k])) { bf_err("%s: bitforge.ternary names '%s', which the file does not hold", label, tern->v.a.keys[k]); goto out; }
    }
    /* tensors in the header's order for now */
    in_tensor **byorder = bf_xcalloc(nt ? nt : 1, sizeof *byorder);
    for (size_t k = 0; k < nt; k++) byorder[t[k].order] = &t[k];
    for (size_t k = 0; k < nt; k++) {
        in_tensor *it = byorder[k];
        char bname[BF_MAX_NAME + 1];
        if (names == BF_NAMES_HF) {
            if (bf_name_from_hf(it->name, bname)) { bf_err_context("%s: ", label); free(byorder); goto out; }
        } else if (strlen(it->name) > BF_MAX_NAME || !it->name[0]) {
            bf_err("%s: tensor name '%.40s…' is not 1 to %d bytes", label, it->name, BF_MAX_NAME);
            free(byorder);
            goto out;
        } else snprintf(bname, sizeof bname, "%s", it->name);
        if (bf_tset_find(s, bname)) { bf_err("%s: two tensors are named '%s'", label, bname); free(byorder); goto out; }
        if (st_dtypes[it->dt].bf < 0) {
            bf_err("%s: '%s' is %s, which bitforge does not read (F32, F16, BF16, I8, U8, I32, I64)", label, it->name,
                   st_dtypes[it->dt].name);
            free(byorder);
            goto out;
        }
        const bf_val *td = tern ? bf_val_get(tern, it->name) : NULL;
        bf_tensor *bt = bf_tset_add(s);
        if (td) {   /* packed ternary: U8 [rows, row_bytes] back to TQ2/TQ1 [rows, cols] */
            const char *dn = td->type == BF_MAP ? bf_val_get_str(td, "dtype") : NULL;
            const bf_val *sh = td->type == BF_MAP ? bf_val_get(td, "shape") : NULL;
            const bf_val *tm = td->type == BF_MAP ? bf_val_get(td, "meta") : NULL;
            bf_dtype pk;
            uint64_t shape[2];
            if (!dn || bf_dtype_parse(dn, &pk) || !bf_dtype_is_ternary(pk) || !sh || sh->type != BF_ARR || sh->v.a.n != 2 ||
                get_u64(&sh->v.a.items[0], &shape[0]) || get_u64(&sh->v.a.items[1], &shape[1]) ||
                (tm && tm->type != BF_MAP)) {
                bf_err("%s: bitforge.ternary's entry for '%s' is not {dtype: TQ2|TQ1, shape: [rows, cols], meta}", label, it->name);
                free(byorder);
                goto out;
            }
            if (st_dtypes[it->dt].bf != BF_U8 || it->ndim != 2 || it->shape[0] != shape[0] ||
                it->shape[1] != bf_ternary_row_bytes(pk, shape[1])) {
                bf_err("%s: packed '%s' is not U8 [%llu, %llu]", label, it->name, (unsigned long long)shape[0],
                       (unsigned long long)bf_ternary_row_bytes(pk, shape[1]));
                free(byorder);
                goto out;
            }
            if (bf_tensor_init(bt, bname, pk, 2, shape)) { bf_err_context("%s: ", label); free(byorder); goto out; }
            if (tm) bt->meta = bf_val_clone(tm);
        } else if (bf_tensor_init(bt, bname, (bf_dtype)st_dtypes[it->dt].bf, it->ndim, it->shape)) {
            bf_err_context("%s: ", label);
            free(byorder);
            goto out;
        }
        if (bt->nbytes != it->end - it->begin) { bf_err("%s: '%s': size mismatch", label, it->name); free(byorder); goto out; }
        if (bt->nbytes) memcpy(bt->data, data + it->begin, bt->nbytes);
        if (bf_dtype_is_ternary(bt->dtype) && bf_ternary_validate(bt->dtype, bt->data, bt->nbytes)) {
            bf_err_context("%s: '%s': ", label, it->name);
            free(byorder);
            goto out;
        }
    }
    free(byorder);

    bf_config c;
    if (make_config(label, meta, o, s, &c)) goto out;
    bf_config_to_meta(&c, h->meta);

    /* the model's tensors in its own order: every one there, nothing else */
    size_t np;
    bf_param_spec *ps = bf_config_params(&c, &np);
    bf_tset sorted = {0};
    int bad = 0;
    for (size_t k = 0; k < np && !bad; k++) {
        if (move_tensor(&sorted, s, ps[k].name)) {
            bf_err("%s: the model's tensor '%s' is missing", label, ps[k].name);
            bad = 1;
            break;
        }
        if (!bf_dtype_is_ternary(sorted.t[sorted.n - 1].dtype)) continue;
        static const char *const parts[] = {"scale", "latent"};
        for (int p = 0; p < 2; p++) {
            char nm[BF_MAX_NAME + 1];
            if (bf_tgroup_part_name(nm, ps[k].name, parts[p]) == 0) move_tensor(&sorted, s, nm);
        }
    }
    free(ps);
    if (!bad && s->n) {
        bf_err("%s: '%s' is not a tensor of this model", label, s->t[0].name);
        bad = 1;
    }
    if (bad) { bf_tset_release(&sorted); goto out; }
    bf_tset_release(s);
    *s = sorted;
    rc = 0;
out:
    bf_val_free(tern);
    bf_val_free(meta);
    free_entries(t, nt);
    if (rc) {
        bf_tset_release(s);
        bf_header_release(h);
        bf_header_init(h, "model");
    }
    return rc;
}

int bf_st_hf_config(const bf_header *h, const bf_st_opts *o, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (strcmp(h->kind, "model") != 0) return bf_err("a stream of kind '%s', not a model", h->kind);
    if (o->names != BF_NAMES_HF) return bf_err("a Hugging Face configuration goes with hf names");
    if (o->packed) return bf_err("a Hugging Face configuration goes with float weights, not packed ternary ones");
    bf_config c;
    if (bf_config_from_meta(h->meta, &c)) return -1;
    const char *attn = bf_val_get_str(h->meta, "attn");
    const char *why = c.norm != BF_NORM_RMS     ? "LayerNorm (norm 'layer')"
                      : c.act != BF_ACT_SWIGLU  ? "an MLP other than SwiGLU"
                      : c.pos != BF_POS_ROPE    ? "learned positions"
                      : c.subln                 ? "BitNet's sub-norms"
                      : c.rec_n                 ? "recursion"
                      : attn && strcmp(attn, "causal") != 0 ? "full attention"
                                                : NULL;
    if (why) return bf_err("Hugging Face's LlamaConfig cannot express %s", why);
    bf_val *v = bf_val_map(), *arch = bf_val_arr();
    bf_val_push(arch, bf_val_str("LlamaForCausalLM"));
    bf_val_set(v, "architectures", arch);
    bf_val_set(v, "model_type", bf_val_str("llama"));
    bf_val_set(v, "vocab_size", bf_val_int(c.vocab));
    bf_val_set(v, "hidden_size", bf_val_int(c.d_model));
    bf_val_set(v, "intermediate_size", bf_val_int(c.d_ff));
    bf_val_set(v, "num_hidden_layers", bf_val_int(c.n_layer));
    bf_val_set(v, "num_attention_heads", bf_val_int(c.n_head));
    bf_val_set(v, "num_key_value_heads", bf_val_int(c.n_head));
    bf_val_set(v, "head_dim", bf_val_int(c.d_model / c.n_head));
    bf_val_set(v, "max_position_embeddings", bf_val_int(c.ctx));
    /* the model's own constants: RMSNorm's ε (lib/model/ops.c) and RoPE's
     * base, whose rotate-half pairing is transformers' too */
    bf_val_set(v, "rms_norm_eps", bf_val_float(1e-5));
    bf_val_set(v, "rope_theta", bf_val_float(10000.0));
    bf_val_set(v, "hidden_act", bf_val_str("silu"));
    bf_val_set(v, "attention_bias", bf_val_bool(0));
    bf_val_set(v, "mlp_bias", bf_val_bool(0));
    bf_val_set(v, "attention_dropout", bf_val_float(0.0));
    bf_val_set(v, "tie_word_embeddings", bf_val_bool(c.tie_embed));
    bf_val_set(v, "torch_dtype",
               bf_val_str(o->float_dtype == BF_F16 ? "float16" : o->float_dtype == BF_BF16 ? "bfloat16" : "float32"));
    bf_buf b = {0};
    int rc = bf_json_write(&b, v);
    bf_val_free(v);
    if (rc) {
        free(b.p);
        return -1;
    }
    bf_buf_put(&b, "\n", 1);
    *buf = b.p;
    *len = b.n;
    return 0;
}
