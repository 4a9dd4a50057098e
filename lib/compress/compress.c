/* compress.c — model archives: each tensor through its method, members in a
 * tar through libarchive, and the manifest that describes them
 * (bf/compress.h, bf-compress(1)). */
#include "bf/compress.h"
#include "bf/error.h"
#include "bf/rng.h"
#include "bf/ternary.h"
#include "bf/tgroup.h"
#include "bf/util.h"
#include "bf/bytes.h"
#include "bf/json.h"
#include "bf/val.h"

#include <archive.h>
#include <archive_entry.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[BF_CZ_NMETHODS] = {
    "raw", "tq2", "tq1", "entropy", "f32", "f16", "int8", "seedlm4", "seedlm3", "vq"};

const char *bf_cz_method_name(bf_cz_method m) { return m < BF_CZ_NMETHODS ? method_names[m] : "?"; }

int bf_cz_method_parse(const char *s, bf_cz_method *m)
{
    for (int k = 0; k < BF_CZ_NMETHODS; k++)
        if (strcmp(s, method_names[k]) == 0) { *m = (bf_cz_method)k; return 0; }
    return bf_err("unknown method '%s'", s);
}

int bf_cz_method_ternary(bf_cz_method m) { return m == BF_CZ_TQ2 || m == BF_CZ_TQ1 || m == BF_CZ_ENTROPY; }
int bf_cz_method_float(bf_cz_method m) { return m >= BF_CZ_F32 && m <= BF_CZ_VQ; }
int bf_cz_method_lossless(bf_cz_method m) { return m <= BF_CZ_F32; }

const char *bf_cz_codec_name(bf_cz_codec c) { return c == BF_CZ_ZSTD ? "zstd" : "xz"; }

static int is_float_dtype(bf_dtype dt) { return dt == BF_F32 || dt == BF_F16 || dt == BF_BF16; }

static uint64_t numel_of(int ndim, const uint64_t *shape)
{
    uint64_t n = 1;
    for (int k = 0; k < ndim; k++) n *= shape[k];
    return n;
}

/* int8's rows: the first dim (one row for a scalar or an empty shape) */
static void rows_cols(int ndim, const uint64_t *shape, uint64_t *rows, uint64_t *cols)
{
    uint64_t n = numel_of(ndim, shape);
    *rows = ndim >= 1 ? shape[0] : 1;
    *cols = *rows ? n / *rows : 0;
}

/* The member size a method gives dtype × shape: exactly *lo, or (entropy)
 * from *lo to *hi.  -1 when the method does not fit the dtype. */
static int member_size(bf_cz_method m, bf_dtype dt, int ndim, const uint64_t *shape, uint64_t *lo, uint64_t *hi)
{
    uint64_t n = numel_of(ndim, shape), rows, cols, nbytes;
    if (bf_tensor_size(dt, ndim, shape, &nbytes)) return -1;
    if (bf_cz_method_ternary(m) != bf_dtype_is_ternary(dt) || bf_cz_method_float(m) != is_float_dtype(dt) ||
        (m == BF_CZ_RAW && (bf_dtype_is_ternary(dt) || is_float_dtype(dt))))
        return bf_err("method %s does not fit a %s tensor", bf_cz_method_name(m), bf_dtype_name(dt));
    *lo = *hi = 0;
    switch (m) {
    case BF_CZ_RAW: *lo = nbytes; break;
    case BF_CZ_TQ2: case BF_CZ_TQ1:
        *lo = shape[0] * bf_ternary_row_bytes(m == BF_CZ_TQ2 ? BF_TQ2 : BF_TQ1, shape[1]);
        break;
    case BF_CZ_ENTROPY: *lo = bf_rans_bound(0); *hi = bf_rans_bound(n); return 0;
    case BF_CZ_F32: *lo = n * 4; break;
    case BF_CZ_F16: *lo = n * 2; break;
    case BF_CZ_INT8: rows_cols(ndim, shape, &rows, &cols); *lo = bf_int8_bytes(rows, cols); break;
    case BF_CZ_SEEDLM4: *lo = bf_seedlm_bytes(BF_SEEDLM4, n); break;
    case BF_CZ_SEEDLM3: *lo = bf_seedlm_bytes(BF_SEEDLM3, n); break;
    case BF_CZ_VQ: *lo = bf_vq_bytes(n); break;
    default: return bf_err("unknown method");
    }
    *hi = *lo;
    return 0;
}

/* ------------------------------------------------------- one tensor, coded */

static int to_codes(const bf_tensor *t, int8_t *codes)
{
    uint64_t rows = t->shape[0], cols = t->shape[1], rb = bf_ternary_row_bytes(t->dtype, cols);
    for (uint64_t r = 0; r < rows; r++) bf_ternary_unpack_row(t->dtype, (const uint8_t *)t->data + r * rb, cols, codes + r * cols);
    return 0;
}

int bf_cz_encode(bf_cz_method m, const bf_tensor *t, uint64_t seed, uint8_t **out, size_t *len, double *entropy)
{
    uint64_t lo, hi, n = bf_tensor_numel(t);
    *out = NULL;
    *len = 0;
    if (entropy) *entropy = NAN;
    if (member_size(m, t->dtype, t->ndim, t->shape, &lo, &hi)) return bf_err_context("'%s': ", t->name);
    uint8_t *p = bf_aligned_alloc(hi ? hi : 1);
    if (!p) return -1;
    int rc = 0;
    if (m == BF_CZ_RAW) {
        memcpy(p, t->data, lo);
    } else if (bf_cz_method_ternary(m)) {
        int8_t *codes = bf_aligned_alloc(n ? n : 1);
        if (!codes) { bf_aligned_free(p); return -1; }
        to_codes(t, codes);
        if (m == BF_CZ_ENTROPY) {
            uint64_t c[3] = {0, 0, 0};
            for (uint64_t i = 0; i < n; i++) c[codes[i] + 1]++;
            if (entropy) *entropy = bf_code_entropy(c);
            lo = bf_rans_encode(codes, n, p);
        } else {
            bf_dtype dt = m == BF_CZ_TQ2 ? BF_TQ2 : BF_TQ1;
            uint64_t cols = t->shape[1], rb = bf_ternary_row_bytes(dt, cols);
            for (uint64_t r = 0; r < t->shape[0]; r++) bf_ternary_pack_row(dt, codes + r * cols, cols, p + r * rb);
        }
        bf_aligned_free(codes);
    } else {
        float *x = bf_aligned_alloc(n ? n * sizeof(float) : 1);
        if (!x) { bf_aligned_free(p); return -1; }
        bf_tensor_to_f32(t, x);
        for (uint64_t i = 0; i < n; i++)
            if (!isfinite(x[i])) { rc = bf_err("'%s' holds a non-finite value", t->name); break; }
        uint64_t rows, cols;
        rows_cols(t->ndim, t->shape, &rows, &cols);
        if (rc == 0) switch (m) {
        case BF_CZ_F32: for (uint64_t i = 0; i < n; i++) { uint32_t u; memcpy(&u, &x[i], 4); bf_put_le32(p + 4 * i, u); } break;
        case BF_CZ_F16: for (uint64_t i = 0; i < n; i++) bf_put_le16(p + 2 * i, bf_f32_to_f16(x[i])); break;
        case BF_CZ_INT8: bf_int8_encode(x, rows, cols, p); break;
        case BF_CZ_SEEDLM4: rc = bf_seedlm_encode(BF_SEEDLM4, x, n, p); break;
        case BF_CZ_SEEDLM3: rc = bf_seedlm_encode(BF_SEEDLM3, x, n, p); break;
        case BF_CZ_VQ: {
            bf_rng r = bf_rng_derive(seed, t->name);
            rc = bf_vq_encode(x, n, bf_rng_next(&r), p);
            break;
        }
        default: rc = bf_err("unknown method");
        }
        bf_aligned_free(x);
    }
    if (rc) { bf_aligned_free(p); return -1; }
    *out = p;
    *len = (size_t)lo;
    return 0;
}

int bf_cz_decode(bf_cz_method m, const uint8_t *in, size_t len, bf_tensor *t)
{
    uint64_t lo, hi, n = bf_tensor_numel(t);
    if (member_size(m, t->dtype, t->ndim, t->shape, &lo, &hi)) return -1;
    if (len < lo || len > hi) return bf_err("%s member of %zu bytes, not %llu", bf_cz_method_name(m), len, (unsigned long long)lo);
    if (m == BF_CZ_RAW) {
        memcpy(t->data, in, len);
        return 0;
    }
    if (bf_cz_method_ternary(m)) {
        int8_t *codes = bf_aligned_alloc(n ? n : 1);
        if (!codes) return -1;
        uint64_t rows = t->shape[0], cols = t->shape[1];
        int rc = 0;
        if (m == BF_CZ_ENTROPY) rc = bf_rans_decode(in, len, codes, n);
        else {
            bf_dtype dt = m == BF_CZ_TQ2 ? BF_TQ2 : BF_TQ1;
            uint64_t rb = bf_ternary_row_bytes(dt, cols);
            rc = bf_ternary_validate(dt, in, len);
            for (uint64_t r = 0; rc == 0 && r < rows; r++) bf_ternary_unpack_row(dt, in + r * rb, cols, codes + r * cols);
        }
        if (rc == 0) {
            uint64_t rb = bf_ternary_row_bytes(t->dtype, cols);
            for (uint64_t r = 0; r < rows; r++) bf_ternary_pack_row(t->dtype, codes + r * cols, cols, (uint8_t *)t->data + r * rb);
        }
        bf_aligned_free(codes);
        return rc;
    }
    float *x = t->dtype == BF_F32 ? t->data : bf_aligned_alloc(n ? n * sizeof(float) : 1);
    if (!x) return -1;
    uint64_t rows, cols;
    rows_cols(t->ndim, t->shape, &rows, &cols);
    int rc = 0;
    switch (m) {
    case BF_CZ_F32: for (uint64_t i = 0; i < n; i++) { uint32_t u = bf_get_le32(in + 4 * i); memcpy(&x[i], &u, 4); } break;
    case BF_CZ_F16: for (uint64_t i = 0; i < n; i++) x[i] = bf_f16_to_f32(bf_get_le16(in + 2 * i)); break;
    case BF_CZ_INT8: rc = bf_int8_decode(in, len, x, rows, cols); break;
    case BF_CZ_SEEDLM4: rc = bf_seedlm_decode(BF_SEEDLM4, in, len, x, n); break;
    case BF_CZ_SEEDLM3: rc = bf_seedlm_decode(BF_SEEDLM3, in, len, x, n); break;
    case BF_CZ_VQ: rc = bf_vq_decode(in, len, x, n); break;
    default: rc = bf_err("unknown method");
    }
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        float v = x[i];
        if (t->dtype == BF_F16) { uint16_t h = bf_f32_to_f16(v); ((uint16_t *)t->data)[i] = h; v = bf_f16_to_f32(h); }
        else if (t->dtype == BF_BF16) { uint16_t h = bf_f32_to_bf16(v); ((uint16_t *)t->data)[i] = h; v = bf_bf16_to_f32(h); }
        if (!isfinite(v)) rc = bf_err("%s member: value %llu is not finite", bf_cz_method_name(m), (unsigned long long)i);
    }
    if (x != t->data) bf_aligned_free(x);
    return rc;
}

/* ------------------------------------------------------------- compressing */

/* the W of X.scale or X.latent, when W is a ternary tensor of s */
static const bf_tensor *group_owner(const bf_tset *s, const char *name, const char **part)
{
    size_t len = bf_tgroup_split_name(name, part);
    if (!len) return NULL;
    char w[BF_MAX_NAME + 1];
    memcpy(w, name, len);
    w[len] = 0;
    const bf_tensor *t = bf_tset_find(s, w);
    return t && bf_dtype_is_ternary(t->dtype) ? t : NULL;
}

static int choose(const bf_tset *s, const bf_tensor *t, const bf_cz_opts *o, int *matched, bf_cz_method *m)
{
    const char *part = NULL;
    int is_scale = group_owner(s, t->name, &part) && strcmp(part, "scale") == 0;
    if (bf_dtype_is_ternary(t->dtype)) *m = o->ternary;
    else if (is_scale) *m = BF_CZ_F32;
    else if (is_float_dtype(t->dtype)) *m = t->ndim >= 2 ? o->flt : o->flt == BF_CZ_F32 ? BF_CZ_F32 : BF_CZ_F16;
    else *m = BF_CZ_RAW;
    for (size_t k = 0; k < o->nrules; k++)
        if (fnmatch(o->rules[k].pattern, t->name, 0) == 0) {
            matched[k] = 1;
            *m = o->rules[k].method;
        }
    if (is_scale && *m != BF_CZ_F32) return bf_err("'%s' is a ternary weight's scale: only f32 keeps it exact", t->name);
    uint64_t lo, hi;
    if (member_size(*m, t->dtype, t->ndim, t->shape, &lo, &hi)) return bf_err_context("'%s': ", t->name);
    return 0;
}

static la_ssize_t to_buf(struct archive *a, void *ctx, const void *p, size_t n)
{
    (void)a;
    bf_buf_put(ctx, p, n);
    return (la_ssize_t)n;
}

static int la_fail(struct archive *a, const char *what)
{
    const char *e = archive_error_string(a);
    return bf_err("%s: %s", what, e ? e : "libarchive failed");
}

/* the bytes p[0..n) take compressed alone by the codec */
static int alone_size(bf_cz_codec c, const uint8_t *p, size_t n, uint64_t *out)
{
    uint8_t *z;
    size_t len;
    if (bf_cz_pack(c, p, n, &z, &len)) return -1;
    free(z);
    *out = len;
    return 0;
}

static int add_member(struct archive *a, const char *name, const uint8_t *p, size_t n)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)n);
    archive_entry_set_mtime(e, 0, 0);
    int rc = archive_write_header(a, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK) return la_fail(a, name);
    for (size_t at = 0; at < n;) {
        size_t chunk = n - at < ((size_t)1 << 30) ? n - at : ((size_t)1 << 30);
        la_ssize_t w = archive_write_data(a, p + at, chunk);
        if (w <= 0) return la_fail(a, name);
        at += (size_t)w;
    }
    return 0;
}

static bf_val *method_params(bf_cz_method m, const bf_tensor *t, const bf_cz_opts *o, double entropy)
{
    bf_val *p = bf_val_map();
    uint64_t rows, cols;
    switch (m) {
    case BF_CZ_TQ2: case BF_CZ_TQ1: bf_val_set(p, "codes_a_byte", bf_val_int(m == BF_CZ_TQ2 ? 4 : 5)); break;
    case BF_CZ_ENTROPY:
        bf_val_set(p, "coder", bf_val_str("rans"));
        bf_val_set(p, "prob_bits", bf_val_int(BF_RANS_PROB_BITS));
        bf_val_set(p, "entropy_bits", bf_val_float(entropy));
        break;
    case BF_CZ_INT8:
        rows_cols(t->ndim, t->shape, &rows, &cols);
        bf_val_set(p, "rows", bf_val_int((int64_t)rows));
        bf_val_set(p, "scale", bf_val_str("f32 absmax/127 a row"));
        break;
    case BF_CZ_SEEDLM4: case BF_CZ_SEEDLM3: {
        bf_seedlm_shape sh = m == BF_CZ_SEEDLM4 ? BF_SEEDLM4 : BF_SEEDLM3;
        bf_val_set(p, "block", bf_val_int(sh.c));
        bf_val_set(p, "coefficients", bf_val_int(sh.p));
        bf_val_set(p, "mantissa_bits", bf_val_int(4));
        bf_val_set(p, "exponent_bits", bf_val_int(4));
        bf_val_set(p, "lfsr_taps", bf_val_str("0,1,3,12"));
        break;
    }
    case BF_CZ_VQ:
        bf_val_set(p, "dim", bf_val_int(BF_VQ_DIM));
        bf_val_set(p, "k", bf_val_int((int64_t)((bf_tensor_numel(t) + BF_VQ_DIM - 1) / BF_VQ_DIM < BF_VQ_K ? (bf_tensor_numel(t) + BF_VQ_DIM - 1) / BF_VQ_DIM : BF_VQ_K)));
        bf_val_set(p, "codebook", bf_val_str("f16"));
        bf_val_set(p, "iterations", bf_val_int(BF_VQ_ITERS));
        bf_val_set(p, "seed", bf_val_int((int64_t)(o->seed & INT64_MAX)));
        break;
    default: break;
    }
    return p;
}

static int counts_as_param(const bf_tset *s, const bf_tensor *t)
{
    const char *part;
    return !group_owner(s, t->name, &part);
}

int bf_compress(const bf_header *h, const bf_tset *s, const bf_cz_opts *o, uint8_t **out, size_t *len, bf_cz_report *rep)
{
    memset(rep, 0, sizeof *rep);
    *out = NULL;
    *len = 0;
    rep->codec = o->codec;
    rep->items = bf_xcalloc(s->n ? s->n : 1, sizeof *rep->items);
    rep->n = s->n;
    uint8_t **mem = bf_xcalloc(s->n ? s->n : 1, sizeof *mem);
    int *matched = bf_xcalloc(o->nrules ? o->nrules : 1, sizeof *matched);
    bf_val *man = bf_val_map(), *tens = bf_val_arr();
    bf_buf mbuf = {0}, tbuf = {0};
    struct archive *a = NULL;
    int rc = -1;
    for (size_t k = 0; k < s->n; k++) {
        const bf_tensor *t = &s->t[k];
        bf_cz_item *it = &rep->items[k];
        snprintf(it->name, sizeof it->name, "%s", t->name);
        if (choose(s, t, o, matched, &it->method)) goto done;
        size_t n;
        if (bf_cz_encode(it->method, t, o->seed, &mem[k], &n, &it->entropy)) goto done;
        it->payload = n;
        it->numel = bf_tensor_numel(t);
        if (counts_as_param(s, t)) rep->f32_bytes += 4 * it->numel;
    }
    for (size_t k = 0; k < o->nrules; k++)
        if (!matched[k]) { bf_err("--method '%s' matches no tensor", o->rules[k].pattern); goto done; }
    /* each member's share: compressed alone, less what the codec's frame
     * costs around one byte (headers, index, check), less that byte */
    uint64_t frame;
    static const uint8_t one = 0;
    if (alone_size(o->codec, &one, 1, &frame)) goto done;
    frame = frame > 1 ? frame - 1 : 0;
    for (size_t k = 0; k < s->n; k++) {
        if (alone_size(o->codec, mem[k], rep->items[k].payload, &rep->items[k].bytes)) goto done;
        rep->items[k].bytes = rep->items[k].bytes > frame ? rep->items[k].bytes - frame : 0;
    }

    /* the manifest */
    bf_val_set(man, "format", bf_val_str("bf-compress"));
    bf_val_set(man, "version", bf_val_int(1));
    bf_val_set(man, "codec", bf_val_str(bf_cz_codec_name(o->codec)));
    bf_val_set(man, "kind", bf_val_str(h->kind));
    bf_val_set(man, "meta", h->meta ? bf_val_clone(h->meta) : bf_val_map());
    bf_val_set(man, "lineage", h->lineage ? bf_val_clone(h->lineage) : bf_val_arr());
    bf_val_set(man, "f32_bytes", bf_val_int((int64_t)rep->f32_bytes));
    for (size_t k = 0; k < s->n; k++) {
        const bf_tensor *t = &s->t[k];
        const bf_cz_item *it = &rep->items[k];
        bf_val *e = bf_val_map(), *shape = bf_val_arr();
        char member[32];
        snprintf(member, sizeof member, "t/%06zu.bin", k);
        bf_val_set(e, "name", bf_val_str(t->name));
        bf_val_set(e, "dtype", bf_val_str(bf_dtype_name(t->dtype)));
        for (int d = 0; d < t->ndim; d++) bf_val_push(shape, bf_val_int((int64_t)t->shape[d]));
        bf_val_set(e, "shape", shape);
        if (t->meta) bf_val_set(e, "meta", bf_val_clone(t->meta));
        bf_val_set(e, "method", bf_val_str(bf_cz_method_name(it->method)));
        bf_val_set(e, "member", bf_val_str(member));
        bf_val_set(e, "bytes", bf_val_int((int64_t)it->payload));
        bf_val_set(e, "codec_bytes", bf_val_int((int64_t)it->bytes));
        bf_val_set(e, "bits_per_weight", bf_val_float(it->numel ? 8.0 * (double)it->payload / (double)it->numel : 0.0));
        bf_val_set(e, "params", method_params(it->method, t, o, it->entropy));
        bf_val_push(tens, e);
    }
    bf_val_set(man, "tensors", tens);
    tens = NULL;
    if (bf_json_write(&mbuf, man)) { bf_err_context("manifest: "); goto done; }
    bf_buf_put(&mbuf, "\n", 1);
    if (mbuf.n > BF_CZ_MAX_MANIFEST) { bf_err("the manifest would take %zu bytes (at most %u)", mbuf.n, BF_CZ_MAX_MANIFEST); goto done; }

    /* the tar in memory (each member's buffer released once it is in),
     * then the codec over all of it (compress_codec.c says why) */
    a = archive_write_new();
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK) { la_fail(a, "tar"); goto done; }
    archive_write_set_bytes_in_last_block(a, 1);
    if (archive_write_open(a, &tbuf, NULL, to_buf, NULL) != ARCHIVE_OK) { la_fail(a, "open"); goto done; }
    if (add_member(a, "manifest.json", mbuf.p, mbuf.n)) goto done;
    for (size_t k = 0; k < s->n; k++) {
        char member[32];
        snprintf(member, sizeof member, "t/%06zu.bin", k);
        if (add_member(a, member, mem[k], rep->items[k].payload)) goto done;
        bf_aligned_free(mem[k]);
        mem[k] = NULL;
    }
    if (archive_write_close(a) != ARCHIVE_OK) { la_fail(a, "close"); goto done; }
    if (bf_cz_pack(o->codec, tbuf.p, tbuf.n, out, len)) goto done;
    rep->total_bytes = *len;
    rc = 0;
done:
    if (a) archive_write_free(a);
    for (size_t k = 0; k < s->n; k++) bf_aligned_free(mem[k]);
    free(mem);
    free(matched);
    bf_val_free(man);
    bf_val_free(tens);
    free(mbuf.p);
    free(tbuf.p);
    return rc;
}

void bf_cz_report_release(bf_cz_report *r)
{
    free(r->items);
    memset(r, 0, sizeof *r);
}

bf_val *bf_cz_report_json(const bf_cz_report *r)
{
    bf_val *v = bf_val_map(), *arr = bf_val_arr();
    bf_val_set(v, "codec", bf_val_str(bf_cz_codec_name(r->codec)));
    bf_val_set(v, "total_bytes", bf_val_int((int64_t)r->total_bytes));
    bf_val_set(v, "f32_bytes", bf_val_int((int64_t)r->f32_bytes));
    bf_val_set(v, "ratio_f32", bf_val_float(r->total_bytes ? (double)r->f32_bytes / (double)r->total_bytes : 0));
    for (size_t k = 0; k < r->n; k++) {
        const bf_cz_item *it = &r->items[k];
        bf_val *e = bf_val_map();
        bf_val_set(e, "name", bf_val_str(it->name));
        bf_val_set(e, "method", bf_val_str(bf_cz_method_name(it->method)));
        bf_val_set(e, "bytes", bf_val_int((int64_t)it->bytes));
        bf_val_set(e, "payload_bytes", bf_val_int((int64_t)it->payload));
        bf_val_set(e, "numel", bf_val_int((int64_t)it->numel));
        bf_val_set(e, "bits_per_weight", bf_val_float(it->numel ? 8.0 * (double)it->bytes / (double)it->numel : 0.0));
        if (!isnan(it->entropy)) bf_val_set(e, "entropy_bits", bf_val_float(it->entropy));
        bf_val_push(arr, e);
    }
    bf_val_set(v, "tensors", arr);
    return v;
}

/* ----------------------------------------------------------------- reading */

struct bf_cz_reader {
    struct archive *a;
    char label[256];
    bf_header h;
    bf_val *man;
    const bf_val *tens;
    size_t n, next;
    int done;                /* the end was read: libarchive may not be asked again */
    uint64_t tar_budget, restored;
};

/* a name or message from the archive, safe for one line */
static void clean(char *dst, size_t cap, const char *src)
{
    size_t k = 0;
    for (; src && *src && k + 1 < cap; src++, k++) dst[k] = (*src < 0x20 || *src == 0x7f) ? '?' : *src;
    dst[k] = 0;
}

static int rfail(bf_cz_reader *r, const char *what)
{
    char e[256];
    clean(e, sizeof e, archive_error_string(r->a));
    return bf_err("%s: %s%s%s", r->label, what, *e ? ": " : "", e);
}

/* A member's memory comes in steps of this much, doubling as its bytes
 * arrive: the size its tar header declares is checked against the
 * manifest, but the bytes behind it are known only once decompressed, and
 * a header that lies must not cost an allocation the size of its lie. */
#define MEMBER_STEP ((uint64_t)1 << 16)

/* The next member must be regular and called `want`, of exactly `size` bytes;
 * its bytes into a new buffer (free it). */
static int read_member(bf_cz_reader *r, const char *want, uint64_t size, int size_known, uint8_t **out, uint64_t *outlen)
{
    struct archive_entry *e;
    int rc = archive_read_next_header(r->a, &e);
    if (rc == ARCHIVE_EOF) return bf_err("%s: the archive ends before member '%s'", r->label, want);
    if (rc != ARCHIVE_OK) return rfail(r, "not a readable bf-compress archive");
    char name[128];
    clean(name, sizeof name, archive_entry_pathname(e));
    if (!archive_entry_pathname(e) || strcmp(archive_entry_pathname(e), want) != 0)
        return bf_err("%s: member '%s' where '%s' should be", r->label, name, want);
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) || archive_entry_symlink(e) || archive_entry_sparse_count(e))
        return bf_err("%s: member '%s' is not a plain file", r->label, name);
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0) return bf_err("%s: member '%s' has no size", r->label, name);
    uint64_t got = (uint64_t)archive_entry_size(e);
    if (size_known ? got != size : got > size)
        return bf_err("%s: member '%s' holds %llu bytes, not %llu", r->label, name, (unsigned long long)got, (unsigned long long)size);
    if ((uint64_t)archive_filter_bytes(r->a, 0) > r->tar_budget)
        return bf_err("%s: more tar data than the manifest accounts for", r->label);
    if (got >= SIZE_MAX / 2) return bf_err("%s: member '%s' is too large for this machine", r->label, name);
    uint64_t cap = got < MEMBER_STEP ? got : MEMBER_STEP;
    uint8_t *p = malloc((size_t)cap + 1);
    if (!p) return bf_err("%s: member '%s': out of memory", r->label, name);
    for (uint64_t at = 0; at < got;) {
        if (at == cap) {
            cap = cap > got / 2 ? got : 2 * cap;
            uint8_t *q = realloc(p, (size_t)cap + 1);
            if (!q) { free(p); return bf_err("%s: member '%s': out of memory", r->label, name); }
            p = q;
        }
        la_ssize_t n = archive_read_data(r->a, p + at, (size_t)(cap - at));
        if (n < 0) { free(p); return rfail(r, name); }
        if (n == 0) { free(p); return bf_err("%s: member '%s' is truncated", r->label, name); }
        at += (uint64_t)n;
    }
    *out = p;
    *outlen = got;
    return 0;
}

static int64_t need_int(const bf_val *m, const char *key, int64_t lo, int64_t hi, int *bad)
{
    int64_t v;
    if (bf_val_get_int(m, key, 0, &v) != 0 || v < lo || v > hi) { *bad = 1; return 0; }
    return v;
}

/* Checks entry k of the manifest's tensors; fills what a tensor needs. */
static int check_entry(bf_cz_reader *r, size_t k, bf_tensor *t, bf_cz_method *m, uint64_t *bytes)
{
    const bf_val *e = &r->tens->v.a.items[k];
    if (e->type != BF_MAP) return bf_err("%s: manifest: tensor %zu is not an object", r->label, k);
    const char *name = bf_val_get_str(e, "name"), *dt = bf_val_get_str(e, "dtype"), *meth = bf_val_get_str(e, "method"),
               *member = bf_val_get_str(e, "member");
    const bf_val *shape = bf_val_get(e, "shape"), *meta = bf_val_get(e, "meta");
    if (!name || !dt || !meth || !member || !shape)
        return bf_err("%s: manifest: tensor %zu lacks name, dtype, shape, method or member", r->label, k);
    char want[32];
    snprintf(want, sizeof want, "t/%06zu.bin", k);
    if (strcmp(member, want) != 0) return bf_err("%s: manifest: tensor %zu's member is not '%s'", r->label, k, want);
    size_t nl = strlen(name);
    if (nl == 0 || nl > BF_MAX_NAME || nl != bf_val_get(e, "name")->v.s.len) return bf_err("%s: manifest: tensor %zu has a bad name", r->label, k);
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, nl + 1);
    if (bf_dtype_parse(dt, &t->dtype)) return bf_err("%s: manifest: '%.64s' has an unknown dtype", r->label, name);
    if (bf_cz_method_parse(meth, m)) return bf_err("%s: manifest: '%.64s' has an unknown method", r->label, name);
    if (shape->type != BF_ARR || shape->v.a.n > BF_MAX_DIMS) return bf_err("%s: manifest: '%.64s' has a bad shape", r->label, name);
    t->ndim = (int)shape->v.a.n;
    for (int d = 0; d < t->ndim; d++) {
        const bf_val *x = &shape->v.a.items[d];
        if (x->type != BF_INT || x->v.i < 0) return bf_err("%s: manifest: '%.64s' has a bad shape", r->label, name);
        t->shape[d] = (uint64_t)x->v.i;
    }
    if (meta && meta->type != BF_MAP) return bf_err("%s: manifest: '%.64s' has a meta that is not an object", r->label, name);
    uint64_t nbytes, lo, hi, numel = 1;
    if (bf_tensor_size(t->dtype, t->ndim, t->shape, &nbytes)) return bf_err_context("%s: manifest: '%.64s': ", r->label, name);
    for (int d = 0; d < t->ndim; d++)
        if (bf_mul_u64(numel, t->shape[d], &numel) || numel > ((uint64_t)1 << 56))
            return bf_err("%s: manifest: '%.64s': shape overflows", r->label, name);
    t->nbytes = nbytes;
    if (member_size(*m, t->dtype, t->ndim, t->shape, &lo, &hi)) return bf_err_context("%s: manifest: '%.64s': ", r->label, name);
    int bad = 0;
    *bytes = (uint64_t)need_int(e, "bytes", 0, INT64_MAX, &bad);
    if (bad || *bytes < lo || *bytes > hi)
        return bf_err("%s: manifest: '%.64s': %s member of %s bytes does not fit its shape", r->label, name, meth, bad ? "bad" : "these");
    return 0;
}

static int strcmp_ptr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int names_unique(bf_cz_reader *r)
{
    const char **v = bf_xmalloc((r->n ? r->n : 1) * sizeof *v);
    for (size_t k = 0; k < r->n; k++) v[k] = bf_val_get_str(&r->tens->v.a.items[k], "name");
    qsort(v, r->n, sizeof *v, strcmp_ptr);
    int rc = 0;
    for (size_t k = 1; k < r->n; k++)
        if (strcmp(v[k - 1], v[k]) == 0) { rc = bf_err("%s: manifest: tensor '%.64s' appears twice", r->label, v[k]); break; }
    free(v);
    return rc;
}

static bf_cz_reader *cz_new(const char *label)
{
    bf_cz_reader *r = bf_xcalloc(1, sizeof *r);
    clean(r->label, sizeof r->label, label);
    r->a = archive_read_new();
    archive_read_support_filter_xz(r->a);
    archive_read_support_filter_zstd(r->a);
    archive_read_support_format_tar(r->a);
    return r;
}

/* After libarchive's open (rc): the manifest read and checked. */
static bf_cz_reader *cz_start(bf_cz_reader *r, int rc)
{
    uint8_t *mp = NULL;
    if (rc != ARCHIVE_OK) { rfail(r, "not a readable bf-compress archive"); goto fail; }
    r->tar_budget = (uint64_t)BF_CZ_MAX_MANIFEST + 65536;
    uint64_t mlen;
    if (read_member(r, "manifest.json", BF_CZ_MAX_MANIFEST, 0, &mp, &mlen)) goto fail;
    r->man = bf_json_parse((const char *)mp, (size_t)mlen, "manifest.json");
    free(mp);
    if (!r->man) { bf_err_context("%s: ", r->label); goto fail; }
    int64_t ver;
    const char *fmt = bf_val_get_str(r->man, "format"), *kind = bf_val_get_str(r->man, "kind");
    const bf_val *meta = bf_val_get(r->man, "meta"), *lin = bf_val_get(r->man, "lineage");
    if (r->man->type != BF_MAP || !fmt || strcmp(fmt, "bf-compress") != 0) { bf_err("%s: manifest: not a bf-compress manifest", r->label); goto fail; }
    if (bf_val_get_int(r->man, "version", 0, &ver) != 0 || ver != 1) { bf_err("%s: manifest: version is not 1", r->label); goto fail; }
    if (!kind || strlen(kind) >= sizeof r->h.kind || !*kind) { bf_err("%s: manifest: bad or missing kind", r->label); goto fail; }
    if (!meta || meta->type != BF_MAP || !lin || lin->type != BF_ARR) { bf_err("%s: manifest: meta or lineage missing", r->label); goto fail; }
    r->tens = bf_val_get(r->man, "tensors");
    if (!r->tens || r->tens->type != BF_ARR) { bf_err("%s: manifest: no tensors array", r->label); goto fail; }
    r->n = r->tens->v.a.n;
    if (r->n > BF_CZ_MAX_TENSORS) { bf_err("%s: manifest: too many tensors", r->label); goto fail; }
    /* every entry checked before any member is read; the tar may hold the
     * members, their headers and their padding, little else */
    uint64_t budget = r->tar_budget + 65536;
    for (size_t k = 0; k < r->n; k++) {
        bf_tensor t;
        bf_cz_method m;
        uint64_t bytes;
        if (check_entry(r, k, &t, &m, &bytes)) goto fail;
        if (bf_add_u64(budget, bytes + 512 + 3 * 512 + 512, &budget)) { bf_err("%s: manifest: sizes overflow", r->label); goto fail; }
    }
    if (names_unique(r)) goto fail;
    r->tar_budget = budget;
    bf_header_init(&r->h, kind);
    bf_val_free(r->h.meta);
    bf_val_free(r->h.lineage);
    r->h.meta = bf_val_clone(meta);
    r->h.lineage = bf_val_clone(lin);
    return r;
fail:
    bf_cz_close(r);
    return NULL;
}

bf_cz_reader *bf_cz_open(const char *path)
{
    int stdin_ = !path || strcmp(path, "-") == 0;
    bf_cz_reader *r = cz_new(stdin_ ? "stdin" : path);
    return cz_start(r, stdin_ ? archive_read_open_fd(r->a, 0, 65536) : archive_read_open_filename(r->a, path, 65536));
}

bf_cz_reader *bf_cz_memopen(const void *buf, size_t len, const char *label)
{
    bf_cz_reader *r = cz_new(label);
    return cz_start(r, archive_read_open_memory(r->a, buf, len));
}

const bf_header *bf_cz_header(const bf_cz_reader *r) { return &r->h; }

int bf_cz_next(bf_cz_reader *r, bf_tensor *t)
{
    memset(t, 0, sizeof *t);
    if (r->done) return 0;
    if (r->next == r->n) {
        struct archive_entry *e;
        int rc = archive_read_next_header(r->a, &e);
        if (rc == ARCHIVE_EOF) { r->done = 1; return 0; }
        if (rc != ARCHIVE_OK) return rfail(r, "after the last member");
        char name[128];
        clean(name, sizeof name, archive_entry_pathname(e));
        return bf_err("%s: member '%s' after the last tensor", r->label, name);
    }
    size_t k = r->next;
    bf_cz_method m;
    uint64_t bytes;
    bf_tensor h;
    if (check_entry(r, k, &h, &m, &bytes)) return -1;
    if (bf_add_u64(r->restored, h.nbytes, &r->restored) ||
        r->restored > BF_CZ_RESTORE_SLACK + (uint64_t)BF_CZ_MAX_EXPANSION * (uint64_t)archive_filter_bytes(r->a, -1))
        return bf_err("%s: '%.64s': the archive would restore %llu bytes from %lld, more than it may", r->label, h.name,
                      (unsigned long long)r->restored, (long long)archive_filter_bytes(r->a, -1));
    char want[32];
    snprintf(want, sizeof want, "t/%06zu.bin", k);
    uint8_t *p;
    uint64_t got;
    if (read_member(r, want, bytes, 1, &p, &got)) return -1;
    if (bf_tensor_init(t, h.name, h.dtype, h.ndim, h.shape)) { free(p); return -1; }
    int rc = bf_cz_decode(m, p, (size_t)bytes, t);
    free(p);
    if (rc) {
        bf_tensor_release(t);
        return bf_err_context("%s: '%.64s': ", r->label, h.name);
    }
    const bf_val *meta = bf_val_get(&r->tens->v.a.items[k], "meta");
    if (meta) t->meta = bf_val_clone(meta);
    r->next++;
    return 1;
}

void bf_cz_close(bf_cz_reader *r)
{
    if (!r) return;
    if (r->a) archive_read_free(r->a);
    bf_val_free(r->man);
    bf_header_release(&r->h);
    free(r);
}
