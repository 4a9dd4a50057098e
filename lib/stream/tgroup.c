/* tgroup.c — the ternary-tensor group W / W.scale / W.latent (bf/tgroup.h). */
#include "bf/tgroup.h"
#include "bf/ternary.h"
#include "bf/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bf_tgroup_part_name(char *out, const char *w, const char *part)
{
    int n = snprintf(out, BF_MAX_NAME + 1, "%s.%s", w, part);
    return n < 0 || n > BF_MAX_NAME ? bf_err("'%s' is too long a name to add .%s", w, part) : 0;
}

size_t bf_tgroup_split_name(const char *name, const char **part)
{
    static const char *const parts[] = {"scale", "latent"};
    size_t n = strlen(name);
    for (int k = 0; k < 2; k++) {
        size_t len = strlen(parts[k]) + 1;   /* ".scale" */
        if (n > len && name[n - len] == '.' && strcmp(name + n - len + 1, parts[k]) == 0) {
            if (part) *part = parts[k];
            return n - len;
        }
    }
    return 0;
}

static int all_finite(const float *v, size_t n)
{
    for (size_t j = 0; j < n; j++)
        if (!isfinite(v[j])) return 0;
    return 1;
}

int bf_tgroup_check(bf_tgroup *g, const bf_tensor *codes, const bf_tensor *scale, const bf_tensor *latent)
{
    memset(g, 0, sizeof *g);
    if (!bf_dtype_is_ternary(codes->dtype) || codes->ndim != 2) return bf_err("'%s' is not a ternary matrix", codes->name);
    g->codes = codes;
    g->rows = codes->shape[0];
    g->cols = codes->shape[1];
    if (!scale) return bf_err("ternary '%s' has no F32 '%s.scale'", codes->name, codes->name);
    if (scale->dtype != BF_F32 || scale->ndim != 1 || (scale->shape[0] != 1 && scale->shape[0] != g->rows))
        return bf_err("'%s' is not an F32 scale of 1 or %zu entries", scale->name, g->rows);
    g->scale = scale;
    g->nscales = scale->shape[0];
    if (!all_finite(scale->data, g->nscales)) return bf_err("'%s' holds a non-finite value", scale->name);
    if (bf_qspec_from_meta(codes->meta, codes->dtype, g->nscales, g->rows, &g->q))
        return bf_err_context("'%s': ", codes->name);
    if (latent) {
        if (latent->dtype != BF_F32 || latent->ndim != 2 || latent->shape[0] != g->rows || latent->shape[1] != g->cols)
            return bf_err("'%s' is not F32 of the weight's shape", latent->name);
        if (!all_finite(latent->data, g->rows * g->cols)) return bf_err("'%s' holds a non-finite value", latent->name);
        g->latent = latent;
    }
    return 0;
}

int bf_tgroup_find(bf_tgroup *g, const bf_tset *s, const char *name)
{
    char nm[BF_MAX_NAME + 1];
    const bf_tensor *codes = bf_tset_find(s, name), *scale = NULL, *latent = NULL;
    if (!codes) return bf_err("no tensor '%s'", name);
    if (bf_tgroup_part_name(nm, name, "scale") == 0) scale = bf_tset_find(s, nm);
    if (bf_tgroup_part_name(nm, name, "latent") == 0) latent = bf_tset_find(s, nm);
    return bf_tgroup_check(g, codes, scale, latent);
}

void bf_tgroup_codes_row(const bf_tgroup *g, size_t r, int8_t *codes)
{
    size_t rb = bf_ternary_row_bytes(g->codes->dtype, g->cols);
    bf_ternary_unpack_row(g->codes->dtype, (const uint8_t *)g->codes->data + r * rb, g->cols, codes);
}

void bf_tgroup_dequant(const bf_tgroup *g, float *out)
{
    /* codes as floats, then times the row's scale: the bits of scale·code */
    bf_tensor_to_f32(g->codes, out);
    for (size_t r = 0; r < g->rows; r++) {
        float sv = bf_tgroup_row_scale(g, r);
        for (size_t j = 0; j < g->cols; j++) out[r * g->cols + j] *= sv;
    }
}

int bf_tgroup_make(bf_tensor out[3], const char *name, const bf_qspec *q, const int8_t *codes, const float *scale,
                   size_t rows, size_t cols, const float *latent)
{
    memset(out, 0, 3 * sizeof *out);
    char nm[BF_MAX_NAME + 1];
    uint64_t shape[2] = {rows, cols}, sshape[1] = {bf_qspec_nscales(q, rows)};
    if (bf_tgroup_part_name(nm, name, latent ? "latent" : "scale")) return -1;
    if (bf_tensor_init(&out[0], name, q->pack, 2, shape)) return -1;
    size_t rb = bf_ternary_row_bytes(q->pack, cols);
    for (size_t r = 0; r < rows; r++) bf_ternary_pack_row(q->pack, codes + r * cols, cols, (uint8_t *)out[0].data + r * rb);
    out[0].meta = bf_qspec_to_meta(q);
    bf_tgroup_part_name(nm, name, "scale");
    if (bf_tensor_init(&out[1], nm, BF_F32, 1, sshape)) { bf_tensor_release(&out[0]); return -1; }
    memcpy(out[1].data, scale, sshape[0] * sizeof(float));
    if (latent) {
        bf_tgroup_part_name(nm, name, "latent");
        if (bf_tensor_init(&out[2], nm, BF_F32, 2, shape)) {
            bf_tensor_release(&out[0]);
            bf_tensor_release(&out[1]);
            return -1;
        }
        memcpy(out[2].data, latent, rows * cols * sizeof(float));
    }
    return 0;
}

bf_val *bf_qspec_to_meta(const bf_qspec *q)
{
    bf_val *m = bf_val_map();
    bf_val_set(m, "method", bf_val_str(q->method == BF_Q_THRESHOLD ? "threshold" : "absmean"));
    if (q->method == BF_Q_THRESHOLD) bf_val_set(m, "threshold", bf_val_float(q->tau));
    bf_val_set(m, "per_row", bf_val_bool(q->method == BF_Q_THRESHOLD || q->per_row));
    return m;
}

int bf_qspec_from_meta(const bf_val *meta, bf_dtype pack, size_t nscales, size_t rows, bf_qspec *q)
{
    memset(q, 0, sizeof *q);
    q->pack = pack;
    q->method = BF_Q_ABSMEAN;
    const char *method = meta ? bf_val_get_str(meta, "method") : NULL;
    if (method && strcmp(method, "threshold") == 0) {
        double tau;
        if (bf_val_get_num(meta, "threshold", 0, &tau) != 0 || !(tau >= 0) || tau > 1e6)
            return bf_err("threshold tensor without a valid 'threshold'");
        q->method = BF_Q_THRESHOLD;
        q->tau = (float)tau;
        q->per_row = 1;
    } else if (method && strcmp(method, "absmean") != 0) {
        return bf_err("unknown quantization method '%.32s'", method);
    }
    /* the scale tensor's length says whether the scale is per row */
    if (nscales != 1 && nscales != rows) return bf_err("scale has %zu entries, not 1 or %zu", nscales, rows);
    if (q->method == BF_Q_ABSMEAN) q->per_row = nscales != 1 || rows == 1 ? (nscales == rows && rows > 1) : 0;
    if (q->method == BF_Q_ABSMEAN && meta) {
        int pr;
        if (bf_val_get_bool(meta, "per_row", q->per_row, &pr) == 0 && rows > 1 && pr != (nscales == rows))
            return bf_err("meta per_row disagrees with the scale's length");
        if (rows == 1 && bf_val_get_bool(meta, "per_row", 0, &pr) == 0) q->per_row = pr;
    }
    return 0;
}
