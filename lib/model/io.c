/* io.c — a model from a stream's tensors and back (bf/model.h). */
#include "model_internal.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int all_finite(const float *v, size_t n)
{
    for (size_t j = 0; j < n; j++)
        if (!isfinite(v[j])) return 0;
    return 1;
}

/* for_inference: a model with act_bits 8 has its ternary matrices repacked
 * straight from the stream for the integer kernels; their float parameters
 * are never written (zero pages, no memory) and nothing reads them. */
static int load(bf_model *m, const bf_header *h, const bf_tset *s, int for_inference)
{
    if (strcmp(h->kind, "model") != 0) return bf_err("a '%s' stream, not a model", h->kind);
    bf_config c;
    if (bf_config_from_meta(h->meta, &c)) return -1;
    if (bf_model_create(m, &c)) return -1;
    for (size_t k = 0; k < m->np; k++) {
        bf_param *p = &m->p[k];
        const bf_tensor *t = bf_tset_find(s, p->name);
        if (!t) { bf_err("model has no tensor '%s'", p->name); goto fail; }
        uint64_t want_rows = p->shape[0], want_cols = p->ndim == 2 ? p->shape[1] : 0;
        int shape_ok = t->ndim == p->ndim && t->shape[0] == want_rows && (p->ndim == 1 || t->shape[1] == want_cols);
        if (!shape_ok) { bf_err("tensor '%s' has the wrong shape for this model", p->name); goto fail; }
        if (bf_dtype_is_ternary(t->dtype)) {
            if (!p->is_block_matrix) { bf_err("tensor '%s' is ternary; only block matrices may be", p->name); goto fail; }
            bf_tgroup g;
            if (bf_tgroup_find(&g, s, p->name)) goto fail;
            if (bf_ternary_src_load(m, bf_model_weight(m, p->name), &g, for_inference && m->cfg.act_bits == 8)) goto fail;
            continue;
        }
        if (t->dtype != BF_F32 && t->dtype != BF_F16 && t->dtype != BF_BF16) {
            bf_err("tensor '%s' is %s; a model needs F32, F16, BF16 or ternary", p->name, bf_dtype_name(t->dtype));
            goto fail;
        }
        float *dst = m->params + p->offset;
        bf_tensor_to_f32(t, dst);
        if (!all_finite(dst, p->numel)) { bf_err("tensor '%s' holds a non-finite value", p->name); goto fail; }
    }
    return 0;
fail:
    bf_model_free(m);
    return -1;
}

int bf_model_from_tset(bf_model *m, const bf_header *h, const bf_tset *s) { return load(m, h, s, 0); }

int bf_model_load_for_inference(bf_model *m, const bf_header *h, const bf_tset *s)
{
    if (load(m, h, s, 1)) return -1;
    if (bf_model_use_int_kernels(m)) { bf_model_free(m); return -1; }
    return 0;
}

int bf_model_to_tset(const bf_model *m, int keep_latent, bf_tset *out)
{
    memset(out, 0, sizeof *out);
    for (size_t k = 0; k < m->np; k++) {
        const bf_param *p = &m->p[k];
        const float *src = m->params + p->offset;
        bf_weight *w = p->is_block_matrix ? bf_model_weight((bf_model *)m, p->name) : NULL;
        bf_ternary_src *t = w ? bf_ternary_src_of(w) : NULL;
        /* nothing non-finite leaves: every reader would refuse the stream */
        if ((!t || w->w) && !all_finite(src, p->numel)) { bf_err("'%s' holds a value that is not finite", p->name); goto fail; }
        if (!t) {
            bf_tensor *f = bf_tset_add(out);
            if (bf_tensor_init(f, p->name, BF_F32, p->ndim, p->shape)) goto fail;
            memcpy(f->data, src, p->numel * sizeof(float));
            continue;
        }
        if (!w->w) { bf_err("'%s' lives on the integer kernels only: a model loaded for inference is not written back", p->name); goto fail; }
        size_t ns = bf_qspec_nscales(&t->q, w->rows);
        int8_t *codes = bf_xmalloc(p->numel ? p->numel : 1);
        float *scale = bf_xmalloc(ns * sizeof(float));
        bf_ternary_src_codes(m, w, codes, scale);
        bf_tensor group[3];
        int rc = bf_tgroup_make(group, p->name, &t->q, codes, scale, w->rows, w->cols, keep_latent ? src : NULL);
        free(codes);
        free(scale);
        if (rc) goto fail;
        for (int j = 0; j < (keep_latent ? 3 : 2); j++) *bf_tset_add(out) = group[j];
    }
    return 0;
fail:
    bf_tset_release(out);
    return -1;
}
