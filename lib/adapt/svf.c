/* svf.c — SVF: the SVD, the weight sources (singular values, row scales),
 * the experts stream (bf/svf.h). */
#include "bf/svf.h"
#include "bf/blas.h"
#include "bf/lora.h"
#include "bf/rng.h"
#include "bf/tgroup.h"
#include "bf/util.h"

#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------------------ SVD */

double bf_svd(const float *W, size_t rows, size_t cols, int use_double, float *U, float *S, float *Vt)
{
    size_t k = rows < cols ? rows : cols, n = rows * cols;
    lapack_int info;
    if (use_double) {
        double *a = bf_xmalloc((n ? n : 1) * sizeof *a), *s = bf_xmalloc((k ? k : 1) * sizeof *s);
        size_t nu = rows * k > 0 ? rows * k : 1, nv = k * cols > 0 ? k * cols : 1;
        double *u = bf_xmalloc(nu * sizeof *u), *vt = bf_xmalloc(nv * sizeof *vt);
        for (size_t j = 0; j < n; j++) a[j] = W[j];
        info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)rows, (lapack_int)cols, a, (lapack_int)cols, s, u,
                              (lapack_int)k, vt, (lapack_int)cols);
        for (size_t j = 0; j < rows * k; j++) U[j] = (float)u[j];
        for (size_t j = 0; j < k; j++) S[j] = (float)s[j];
        for (size_t j = 0; j < k * cols; j++) Vt[j] = (float)vt[j];
        free(a); free(s); free(u); free(vt);
    } else {
        float *a = bf_xmalloc((n ? n : 1) * sizeof *a);
        memcpy(a, W, n * sizeof *a);
        info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)rows, (lapack_int)cols, a, (lapack_int)cols, S, U,
                              (lapack_int)k, Vt, (lapack_int)cols);
        free(a);
    }
    if (info != 0) return bf_err("the SVD of a [%zu, %zu] matrix failed (LAPACK info %d)", rows, cols, (int)info);
    /* the reconstruction error, in double */
    double num = 0, den = 0;
    double *row = bf_xmalloc((cols ? cols : 1) * sizeof *row);
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols; c++) row[c] = 0;
        for (size_t i = 0; i < k; i++) {
            double a = (double)U[r * k + i] * S[i];
            const float *v = Vt + i * cols;
            for (size_t c = 0; c < cols; c++) row[c] += a * v[c];
        }
        for (size_t c = 0; c < cols; c++) {
            double d = row[c] - W[r * cols + c];
            num += d * d;
            den += (double)W[r * cols + c] * W[r * cols + c];
        }
    }
    free(row);
    return den > 0 ? sqrt(num / den) : 0;
}

/* ------------------------------------------------------------- the source */

struct bf_svf_src {
    bf_wsource base;
    size_t k;                /* z's length: min(rows, cols) (svf) or rows (scales) */
    float *z, *dz;           /* into the svf's pset */
    float *U, *S, *Vt;       /* the base's SVD (svf only) */
    float *m;                /* at the last refresh [k]: sigmoid(z) (svf), or the factors exp(v) (scales) */
    double c, sm;            /* Σσ/Σ(σ⊙m), Σ(σ⊙m) at the last refresh */
    float *tmp;              /* [k, cols]: scaled Vt, or Uᵀ·dW' */
    float *base_w;           /* W as attached [rows, cols] */
    float *w_eff, *dw;       /* [rows, cols] each */
    bf_weight_below below;   /* restored on detach (the expert runs in float: no kernel form) */
    bf_weight *w;            /* the weight it sits on */
};

/* W' = c·U·diag(σ⊙m)·Vᵀ */
static int svf_refresh(bf_wsource *s, bf_model *m, bf_weight *w)
{
    bf_svf_src *v = (bf_svf_src *)s;
    double ss = 0, sm = 0;
    for (size_t i = 0; i < v->k; i++) {
        v->m[i] = (float)(1.0 / (1.0 + exp(-(double)v->z[i])));
        ss += v->S[i];
        sm += (double)v->S[i] * v->m[i];
    }
    v->sm = sm;
    v->c = sm > 0 ? ss / sm : 1.0;
    for (size_t i = 0; i < v->k; i++) {
        float f = (float)(v->c * v->S[i] * v->m[i]);
        const float *src = v->Vt + i * w->cols;
        float *dst = v->tmp + i * w->cols;
        for (size_t j = 0; j < w->cols; j++) dst[j] = f * src[j];
    }
    bf_sgemm(0, 0, w->rows, w->cols, v->k, 1.0f, v->U, v->k, v->tmp, w->cols, 0.0f, v->w_eff, w->cols);
    w->w = v->w_eff;
    return 0;
}

/* g = diag(Uᵀ·dW'·V); dz from the product rule through c */
static void svf_backward(bf_wsource *s, bf_model *m, bf_weight *w)
{
    bf_svf_src *v = (bf_svf_src *)s;
    bf_sgemm(1, 0, v->k, w->cols, w->rows, 1.0f, v->U, v->k, v->dw, w->cols, 0.0f, v->tmp, w->cols);
    double *g = bf_xmalloc(v->k * sizeof *g), dot = 0;
    for (size_t i = 0; i < v->k; i++) {
        const float *a = v->tmp + i * w->cols, *b = v->Vt + i * w->cols;
        double d = 0;
        for (size_t j = 0; j < w->cols; j++) d += (double)a[j] * b[j];
        g[i] = d;
        dot += (double)v->S[i] * v->m[i] * d;
    }
    for (size_t i = 0; i < v->k; i++) {
        double dm = v->c * v->S[i] * g[i] - (v->sm > 0 ? v->c * v->S[i] / v->sm * dot : 0);
        v->dz[i] += (float)(dm * v->m[i] * (1.0 - v->m[i]));
    }
    free(g);
}

static void svf_zero_grad(bf_wsource *s, bf_model *m, bf_weight *w)
{
    bf_svf_src *v = (bf_svf_src *)s;
    memset(v->dw, 0, w->rows * w->cols * sizeof(float));
    memset(v->dz, 0, v->k * sizeof(float));
}

static void svf_free(bf_wsource *s)
{
    bf_svf_src *v = (bf_svf_src *)s;
    if (v->below.src && v->below.src->ops->free) v->below.src->ops->free(v->below.src);
    bf_aligned_free(v->U);
    bf_aligned_free(v->S);
    bf_aligned_free(v->Vt);
    bf_aligned_free(v->m);
    bf_aligned_free(v->tmp);
    bf_aligned_free(v->base_w);
    bf_aligned_free(v->w_eff);
    bf_aligned_free(v->dw);
    free(v);
}

static const bf_wsource_ops svf_ops = {"svf", svf_refresh, svf_backward, svf_zero_grad, svf_free};

/* W'[r, :] = exp(v_r)·W[r, :]; m holds the factors */
static int scales_refresh(bf_wsource *s, bf_model *m, bf_weight *w)
{
    bf_svf_src *v = (bf_svf_src *)s;
    for (size_t r = 0; r < w->rows; r++) {
        float a = expf(v->z[r]);
        const float *src = v->base_w + r * w->cols;
        float *dst = v->w_eff + r * w->cols;
        v->m[r] = a;
        for (size_t c = 0; c < w->cols; c++) dst[c] = a * src[c];
    }
    w->w = v->w_eff;
    return 0;
}

/* dv_r = a_r·Σ_c dW'[r, c]·W[r, c] */
static void scales_backward(bf_wsource *s, bf_model *m, bf_weight *w)
{
    bf_svf_src *v = (bf_svf_src *)s;
    for (size_t r = 0; r < w->rows; r++) {
        const float *g = v->dw + r * w->cols, *b = v->base_w + r * w->cols;
        double d = 0;
        for (size_t c = 0; c < w->cols; c++) d += (double)g[c] * b[c];
        v->dz[r] += (float)(d * v->m[r]);
    }
}

static const bf_wsource_ops scales_ops = {"svf-scales", scales_refresh, scales_backward, svf_zero_grad, svf_free};

const char *bf_svf_form_name(bf_svf_form f) { return f == BF_SVF_FORM_SCALES ? "scales" : "svf"; }

int bf_svf_form_parse(const char *name, bf_svf_form *f)
{
    if (!strcmp(name, "svf")) *f = BF_SVF_FORM_SVF;
    else if (!strcmp(name, "scales")) *f = BF_SVF_FORM_SCALES;
    else return bf_err("'%.64s' is not an expert form (svf or scales)", name);
    return 0;
}

/* ---------------------------------------------------------------- the svf */

static void layout(bf_svf *s, const bf_model *m)
{
    size_t off = 0;
    s->ps.np = s->nmat;
    s->ps.p = bf_xcalloc(s->nmat ? s->nmat : 1, sizeof *s->ps.p);
    for (size_t j = 0; j < s->nmat; j++) {
        const bf_param *w = bf_model_param(m, s->mat[j]);
        bf_param *p = &s->ps.p[j];
        p->ndim = 1;
        if (s->form == BF_SVF_FORM_SCALES) {
            snprintf(p->name, sizeof p->name, "%s.log_scale", s->mat[j]);
            p->shape[0] = w->shape[0];
        } else {
            snprintf(p->name, sizeof p->name, "%s.svf_z", s->mat[j]);
            p->shape[0] = w->shape[0] < w->shape[1] ? w->shape[0] : w->shape[1];
        }
        p->numel = (size_t)p->shape[0];
        p->offset = off;
        off += (p->numel + 15) / 16 * 16;
    }
    s->ps.n = off;
    s->ps.params = bf_xcalloc(off ? off : 1, sizeof(float));
    s->ps.grads = bf_xcalloc(off ? off : 1, sizeof(float));
    s->src = bf_xcalloc(s->nmat ? s->nmat : 1, sizeof *s->src);
}

int bf_svf_create(bf_svf *s, const bf_model *m, bf_svf_form form, unsigned targets, uint64_t seed, uint64_t base_digest)
{
    memset(s, 0, sizeof *s);
    s->form = form;
    s->targets = targets;
    s->base_digest = base_digest;
    s->nmat = bf_lora_target_list(m, targets, NULL);
    if (!s->nmat) return bf_err("the model has none of the SVF targets");
    s->mat = bf_xcalloc(s->nmat, sizeof *s->mat);
    bf_lora_target_list(m, targets, s->mat);
    layout(s, m);
    for (size_t j = 0; j < s->nmat && form == BF_SVF_FORM_SVF; j++) {   /* scales: v = 0, the base */
        char label[96];
        snprintf(label, sizeof label, "svf.%s", s->mat[j]);
        bf_rng r = bf_rng_derive(seed, label);
        float *z = s->ps.params + s->ps.p[j].offset;
        for (size_t i = 0; i < s->ps.p[j].numel; i++) z[i] = (float)(0.1 + 0.01 * bf_rng_normal(&r));
    }
    return 0;
}

void bf_svf_free(bf_svf *s)
{
    free(s->ps.p);
    free(s->ps.params);
    free(s->ps.grads);
    free(s->src);
    free(s->mat);
    memset(s, 0, sizeof *s);
}

int bf_svf_attach(bf_svf *s, bf_model *m)
{
    s->svd_err = 0;
    for (size_t j = 0; j < s->nmat; j++) {
        if (s->src[j]) continue;
        bf_weight *w = bf_model_weight(m, s->mat[j]);
        if (!w) return bf_err("the model has no '%s'", s->mat[j]);
        if (!w->w) return bf_err("'%s' runs on the integer kernels only; an expert needs its float form", s->mat[j]);
        size_t rows = w->rows, cols = w->cols, k = s->ps.p[j].numel, n = rows * cols;
        int svd = s->form == BF_SVF_FORM_SVF;
        bf_svf_src *v = bf_xcalloc(1, sizeof *v);
        v->base.ops = svd ? &svf_ops : &scales_ops;
        v->k = k;
        v->z = s->ps.params + s->ps.p[j].offset;
        v->dz = s->ps.grads + s->ps.p[j].offset;
        v->m = bf_aligned_alloc(k * sizeof(float));
        v->base_w = bf_aligned_alloc(n * sizeof(float));
        v->w_eff = bf_aligned_alloc(n * sizeof(float));
        v->dw = bf_aligned_alloc(n * sizeof(float));
        if (svd) {
            v->U = bf_aligned_alloc(rows * k * sizeof(float));
            v->S = bf_aligned_alloc(k * sizeof(float));
            v->Vt = bf_aligned_alloc(k * cols * sizeof(float));
            v->tmp = bf_aligned_alloc(k * cols * sizeof(float));
        }
        if (!v->m || !v->base_w || !v->w_eff || !v->dw || (svd && (!v->U || !v->S || !v->Vt || !v->tmp))) {
            svf_free(&v->base);
            return -1;
        }
        memcpy(v->base_w, w->w, n * sizeof(float));
        memset(v->dw, 0, n * sizeof(float));
        if (svd) {
            double e = bf_svd(v->base_w, rows, cols, 1, v->U, v->S, v->Vt);
            if (e < 0) { svf_free(&v->base); return -1; }
            if (e > s->svd_err) s->svd_err = e;
        }
        v->w = w;
        bf_weight_stack(w, &v->below, &v->base, v->dw);
        v->base.ops->refresh(&v->base, m, w);
        s->src[j] = v;
    }
    return 0;
}

int bf_svf_refresh(bf_svf *s, bf_model *m)
{
    for (size_t j = 0; j < s->nmat; j++)
        if (s->src[j] && s->src[j]->base.ops->refresh(&s->src[j]->base, m, s->src[j]->w)) return -1;
    return 0;
}

void bf_svf_detach(bf_svf *s, bf_model *m)
{
    for (size_t j = 0; j < s->nmat; j++) {
        bf_svf_src *v = s->src[j];
        if (!v) continue;
        bf_weight *w = bf_model_weight(m, s->mat[j]);
        bf_weight_unstack(w, &v->below);
        svf_free(&v->base);
        s->src[j] = NULL;
    }
}

/* out's ternary group `name` with row r's scale times exp(v_r): the same
 * codes, a scale per row (an absmean rule becomes per row); the latent's
 * rows scaled too where the rule is per row, left out where it is not. */
static int scale_group(bf_tset *out, const char *name, const float *v)
{
    bf_tgroup g;
    if (bf_tgroup_find(&g, out, name)) return -1;
    size_t rows = g.rows, cols = g.cols;
    int row_rule = g.q.method == BF_Q_THRESHOLD || g.q.per_row;
    int8_t *codes = bf_xmalloc(rows * cols);
    float *scale = bf_xmalloc(rows * sizeof *scale);
    float *lat = g.latent && row_rule ? bf_xmalloc(rows * cols * sizeof *lat) : NULL;
    int rc = 0;
    for (size_t r = 0; r < rows; r++) {
        float a = expf(v[r]);
        bf_tgroup_codes_row(&g, r, codes + r * cols);
        scale[r] = a * bf_tgroup_row_scale(&g, r);
        if (!isfinite(scale[r])) rc = bf_err("'%s': the expert makes row %zu's scale not finite", name, r);
        if (lat)
            for (size_t c = 0; c < cols; c++) lat[r * cols + c] = a * ((const float *)g.latent->data)[r * cols + c];
    }
    bf_qspec q = g.q;
    if (q.method == BF_Q_ABSMEAN) q.per_row = 1;
    bf_tensor nt[3];
    if (!rc && bf_tgroup_make(nt, name, &q, codes, scale, rows, cols, lat)) rc = -1;
    if (!rc) {   /* the new group where the old one was */
        bf_tset t = {0};
        size_t L = strlen(name);
        for (size_t i = 0; i < out->n; i++) {
            bf_tensor *x = &out->t[i];
            const char *part;
            size_t base_len = bf_tgroup_split_name(x->name, &part);
            if (!strcmp(x->name, name)) {
                for (int k = 0; k < 3; k++)
                    if (nt[k].name[0]) *bf_tset_add(&t) = nt[k];
            } else if (!(base_len == L && !strncmp(x->name, name, L))) {
                *bf_tset_add(&t) = *x;
                continue;
            }
            bf_tensor_release(x);
        }
        free(out->t);
        *out = t;
    }
    free(codes);
    free(scale);
    free(lat);
    return rc;
}

int bf_svf_apply(bf_svf *s, bf_model *m, int keep_f32, int keep_latent, bf_tset *out)
{
    memset(out, 0, sizeof *out);
    if (bf_svf_attach(s, m) || bf_svf_refresh(s, m)) return -1;
    /* W' and W of each matrix, before the sources go */
    float **wp = bf_xcalloc(s->nmat, sizeof *wp), **wb = bf_xcalloc(s->nmat, sizeof *wb);
    int *tern = bf_xcalloc(s->nmat, sizeof *tern);
    for (size_t j = 0; j < s->nmat; j++) {
        bf_weight *w = bf_model_weight(m, s->mat[j]);
        size_t n = w->rows * w->cols;
        wp[j] = bf_xmalloc(n * sizeof(float));
        wb[j] = bf_xmalloc(n * sizeof(float));
        memcpy(wp[j], s->src[j]->w_eff, n * sizeof(float));
        memcpy(wb[j], s->src[j]->base_w, n * sizeof(float));
        tern[j] = s->src[j]->below.src != NULL;
    }
    bf_svf_detach(s, m);
    int rc = 0;
    for (size_t j = 0; j < s->nmat && !rc; j++) {
        bf_weight *w = bf_model_weight(m, s->mat[j]);
        float *param = m->params + w->param->offset;
        size_t n = w->rows * w->cols;
        if (!tern[j]) {
            memcpy(param, wp[j], n * sizeof(float));
        } else if (!keep_f32 && s->form == BF_SVF_FORM_SVF) {
            for (size_t i = 0; i < n; i++) param[i] += wp[j][i] - wb[j][i];
            if (w->src->ops->refresh(w->src, m, w)) rc = -1;   /* quantized again, the tensor's own rule */
        }
    }
    if (!rc && bf_model_to_tset(m, keep_latent, out)) rc = -1;
    if (!rc && !keep_f32 && s->form == BF_SVF_FORM_SCALES)
        for (size_t j = 0; j < s->nmat && !rc; j++)
            if (tern[j] && scale_group(out, s->mat[j], s->ps.params + s->ps.p[j].offset)) {
                bf_tset_release(out);
                rc = -1;
            }
    if (!rc && keep_f32) {   /* ternary groups of adapted matrices become F32 W' */
        bf_tset t = {0};
        for (size_t i = 0; i < out->n; i++) {
            bf_tensor *x = &out->t[i];
            const char *part;
            size_t base_len = bf_tgroup_split_name(x->name, &part);
            int hit = -1;
            for (size_t j = 0; j < s->nmat; j++) {
                size_t L = strlen(s->mat[j]);
                if (tern[j] && (!strcmp(x->name, s->mat[j]) || (base_len == L && !strncmp(x->name, s->mat[j], L)))) hit = (int)j;
            }
            if (hit < 0) { *bf_tset_add(&t) = *x; continue; }
            int is_codes = !strcmp(x->name, s->mat[hit]);
            if (is_codes) {
                bf_weight *w = bf_model_weight(m, s->mat[hit]);
                uint64_t shp[2] = {w->rows, w->cols};
                bf_tensor *f = bf_tset_add(&t);
                if (bf_tensor_init(f, s->mat[hit], BF_F32, 2, shp)) rc = -1;
                else memcpy(f->data, wp[hit], w->rows * w->cols * sizeof(float));
            }
            bf_tensor_release(x);
        }
        free(out->t);
        *out = t;
        if (rc) bf_tset_release(out);
    }
    for (size_t j = 0; j < s->nmat; j++) { free(wp[j]); free(wb[j]); }
    free(wp);
    free(wb);
    free(tern);
    return rc;
}

/* ---------------------------------------------------------------- stream */

int bf_svf_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > 63) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

int bf_experts_to_tset(const bf_svf *s, const char *const *names, const float *const *z, size_t nexp, bf_header *h,
                       bf_tset *out)
{
    memset(out, 0, sizeof *out);
    for (size_t e = 0; e < nexp; e++)
        if (!bf_svf_name_ok(names[e])) return bf_err("'%.64s' is not an expert name (1-63 of A-Z a-z 0-9 _ . -)", names[e]);
    bf_header_init(h, "experts");
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)s->base_digest);
    bf_val_set(h->meta, "base", bf_val_str(hex));
    bf_val *t = bf_val_arr();
    for (size_t j = 0; j < s->nmat; j++) bf_val_push(t, bf_val_str(s->mat[j]));
    bf_val_set(h->meta, "targets", t);
    bf_val *x = bf_val_arr();
    for (size_t e = 0; e < nexp; e++) bf_val_push(x, bf_val_str(names[e]));
    bf_val_set(h->meta, "experts", x);
    bf_val_set(h->meta, "form", bf_val_str(bf_svf_form_name(s->form)));
    for (size_t e = 0; e < nexp; e++)
        for (size_t j = 0; j < s->nmat; j++) {
            const bf_param *p = &s->ps.p[j];
            char name[BF_MAX_NAME + 1];
            snprintf(name, sizeof name, "%s/%s", names[e], p->name);
            bf_tensor *y = bf_tset_add(out);
            if (bf_tensor_init(y, name, BF_F32, 1, p->shape)) { bf_tset_release(out); bf_header_release(h); return -1; }
            memcpy(y->data, z[e] + p->offset, p->numel * sizeof(float));
        }
    return 0;
}

void bf_experts_free(bf_experts *e)
{
    free(e->mat);
    free(e->name);
    free(e->z);
    memset(e, 0, sizeof *e);
}

/* The form a stream's meta names (absent: svf, the streams made before there were two). */
static int form_of(const bf_header *h, bf_svf_form *f)
{
    const bf_val *v = bf_val_get(h->meta, "form");
    if (!v) { *f = BF_SVF_FORM_SVF; return 0; }
    if (v->type != BF_STR) return bf_err("experts meta 'form' is not a string");
    return bf_svf_form_parse(v->v.s.p, f);
}

int bf_experts_layout(const bf_header *h, bf_svf_form *form, unsigned *targets)
{
    if (strcmp(h->kind, "experts") != 0) return bf_err("a '%s' stream, not experts", h->kind);
    if (form_of(h, form)) return -1;
    return bf_lora_targets_from_meta(h->meta, "experts", targets);
}

int bf_experts_from_tset(bf_experts *e, const bf_header *h, const bf_tset *t, const bf_svf *s)
{
    memset(e, 0, sizeof *e);
    if (strcmp(h->kind, "experts") != 0) return bf_err("a '%s' stream, not experts", h->kind);
    bf_svf_form form = BF_SVF_FORM_SVF;
    if (form_of(h, &form)) return -1;
    if (form != s->form)
        return bf_err("the experts are of form '%s', not '%s'", bf_svf_form_name(form), bf_svf_form_name(s->form));
    const char *base = bf_val_get_str(h->meta, "base");
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)s->base_digest);
    if (!base || strcmp(base, hex) != 0)
        return bf_err("the experts were made for another base model (its digest %.16s, this model's %s)", base ? base : "none", hex);
    const bf_val *tg = bf_val_get(h->meta, "targets"), *ex = bf_val_get(h->meta, "experts");
    if (!tg || tg->type != BF_ARR || !tg->v.a.n) return bf_err("experts meta has no 'targets'");
    if (!ex || ex->type != BF_ARR || !ex->v.a.n) return bf_err("experts meta has no 'experts'");
    if (tg->v.a.n != s->nmat) return bf_err("the experts adapt %zu matrices; %zu are asked for", tg->v.a.n, s->nmat);
    for (size_t j = 0; j < s->nmat; j++) {
        const bf_val *v = &tg->v.a.items[j];
        if (v->type != BF_STR || strcmp(v->v.s.p, s->mat[j]) != 0)
            return bf_err("the experts' target %zu is '%.64s', not the model's '%s'", j, v->type == BF_STR ? v->v.s.p : "?",
                          s->mat[j]);
    }
    if (ex->v.a.n > 4096) return bf_err("more than 4096 experts");
    if (t->n != ex->v.a.n * s->nmat) return bf_err("the stream has %zu tensors; its experts need %zu", t->n, ex->v.a.n * s->nmat);
    e->form = s->form;
    e->base_digest = s->base_digest;
    e->nmat = s->nmat;
    e->nexp = ex->v.a.n;
    e->n = s->ps.n;
    e->mat = bf_xcalloc(s->nmat, sizeof *e->mat);
    memcpy(e->mat, s->mat, s->nmat * sizeof *e->mat);
    e->name = bf_xcalloc(e->nexp, sizeof *e->name);
    e->z = bf_xcalloc(e->nexp * e->n > 0 ? e->nexp * e->n : 1, sizeof(float));
    for (size_t k = 0; k < e->nexp; k++) {
        const bf_val *v = &ex->v.a.items[k];
        if (v->type != BF_STR || !bf_svf_name_ok(v->v.s.p)) { bf_err("expert %zu has no valid name", k); goto fail; }
        for (size_t q = 0; q < k; q++)
            if (!strcmp(e->name[q], v->v.s.p)) { bf_err("expert '%s' appears twice", v->v.s.p); goto fail; }
        snprintf(e->name[k], sizeof e->name[k], "%s", v->v.s.p);
        for (size_t j = 0; j < s->nmat; j++) {
            const bf_param *p = &s->ps.p[j];
            char name[BF_MAX_NAME + 1];
            snprintf(name, sizeof name, "%s/%s", e->name[k], p->name);
            const bf_tensor *x = bf_tset_find(t, name);
            if (!x) { bf_err("the experts stream has no tensor '%s'", name); goto fail; }
            if (x->dtype != BF_F32 || x->ndim != 1 || x->shape[0] != p->shape[0]) {
                bf_err("'%s' is not F32 [%llu]", name, (unsigned long long)p->shape[0]);
                goto fail;
            }
            const float *z = x->data;
            for (size_t i = 0; i < p->numel; i++) {
                if (!isfinite(z[i])) { bf_err("'%s' holds a non-finite value", name); goto fail; }
                if (form == BF_SVF_FORM_SCALES && fabsf(z[i]) > BF_SVF_MAX_LOG_SCALE) {
                    bf_err("'%s' holds a log-factor of %g, beyond ±%g", name, z[i], BF_SVF_MAX_LOG_SCALE);
                    goto fail;
                }
            }
            memcpy(e->z + k * e->n + p->offset, z, p->numel * sizeof(float));
        }
    }
    return 0;
fail:
    bf_experts_free(e);
    return -1;
}

int bf_experts_join(bf_experts *a, const bf_experts *b)
{
    if (!a->nexp) {   /* the first */
        *a = *b;
        a->mat = bf_xcalloc(b->nmat, sizeof *a->mat);
        memcpy(a->mat, b->mat, b->nmat * sizeof *a->mat);
        a->name = bf_xcalloc(b->nexp, sizeof *a->name);
        memcpy(a->name, b->name, b->nexp * sizeof *a->name);
        a->z = bf_xmalloc(b->nexp * b->n * sizeof(float));
        memcpy(a->z, b->z, b->nexp * b->n * sizeof(float));
        return 0;
    }
    if (a->form != b->form)
        return bf_err("experts of form '%s' and '%s' do not mix", bf_svf_form_name(a->form), bf_svf_form_name(b->form));
    if (a->base_digest != b->base_digest || a->nmat != b->nmat || a->n != b->n)
        return bf_err("the experts are for different bases or matrices");
    for (size_t k = 0; k < b->nexp; k++)
        for (size_t q = 0; q < a->nexp; q++)
            if (!strcmp(a->name[q], b->name[k])) return bf_err("expert '%s' appears twice", b->name[k]);
    size_t n = a->nexp + b->nexp;
    a->name = bf_xrealloc(a->name, n * sizeof *a->name);
    memcpy(a->name + a->nexp, b->name, b->nexp * sizeof *a->name);
    a->z = bf_xrealloc(a->z, n * a->n * sizeof(float));
    memcpy(a->z + a->nexp * a->n, b->z, b->nexp * b->n * sizeof(float));
    a->nexp = n;
    return 0;
}

int bf_experts_find(const bf_experts *e, const char *name)
{
    for (size_t k = 0; k < e->nexp; k++)
        if (!strcmp(e->name[k], name)) return (int)k;
    return bf_err("no expert named '%.64s'", name);
}

void bf_svf_mix(bf_svf *s, const bf_experts *e, const double *alpha, int per_layer)
{
    for (size_t j = 0; j < s->nmat; j++) {
        const bf_param *p = &s->ps.p[j];
        int L = 0;
        if (per_layer) sscanf(s->mat[j], "blk.%d.", &L);
        const double *a = alpha + (size_t)L * e->nexp;
        float *z = s->ps.params + p->offset;
        for (size_t i = 0; i < p->numel; i++) {
            double v = 0;
            for (size_t k = 0; k < e->nexp; k++) v += a[k] * e->z[k * e->n + p->offset + i];
            z[i] = (float)v;
        }
    }
}
