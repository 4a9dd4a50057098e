/* test_svf — SVF experts as a weight source (bf/svf.h).
 *
 *  - the SVD: relative reconstruction error ‖U·diag(σ)·Vᵀ − W‖/‖W‖ of the
 *    single- and double-precision LAPACK routes on the test model's
 *    matrices; the double route (the one the source uses) within 1e-6: its
 *    factors are exact to double rounding and then rounded to float, each
 *    entry to 2^-24 relative, so the product carries a few float roundings
 *    (about 1e-7 for these sizes), 1e-6 leaving a margin of ten;
 *  - dz against central differences of the loss, directional and on the
 *    largest entry, float and ternary bases, at a z that is far from uniform,
 *    with test_lora's tolerance (2e-3 + 2e-2·|fd|);
 *  - a uniform m (every z equal) leaves the loss at the base's, relative 1e-5;
 *  - applying the expert (W' written into a float model) computes what the
 *    attached source does; the re-quantized ternary model is still finite;
 *  - the experts stream: round trip, and the errors for another base, a wrong
 *    length, NaN, a matrix the model does not have;
 *  - the same seed gives the same bytes (z and W');
 *  - row scales (form scales) on a float base, a ternary absmean base with
 *    int8 activations and a ternary threshold base with a latent: v = 0 is
 *    the base bit for bit; dv against central differences (same tolerance;
 *    float activations only: int8 ones make the loss a step function);
 *    the applied stream keeps the codes, has exp(v_r)·scale_r per row (1e-6,
 *    one float product), computes what the attached source does (1e-5), on
 *    the integer kernels too (1e-4: int32 sums times a scale against float
 *    products); a per-row rule's latent is scaled with it and re-quantizes
 *    to the same model, a per-tensor rule's is left out; the stream records
 *    its form, and svf and scales experts are not read or mixed as each
 *    other. */
#include "tap.h"
#include "model_fixture.h"

#include "bf/lora.h"
#include "bf/model.h"
#include "bf/rng.h"
#include "bf/svf.h"
#include "bf/tgroup.h"
#include "bf/thread.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define B 3
#define T 5
#define V 11

static void make(bf_model *m, int act_bits)
{
    bf_config c;
    bf_config_default(&c);
    c.vocab = V; c.ctx = 6; c.d_model = 8; c.n_layer = 2; c.n_head = 2; c.d_ff = 12; c.act_bits = act_bits;
    bf_model_create(m, &c);
    init_params(m, 17);
}

static void make_ternary(bf_model *m)
{
    bf_qspec q = {BF_Q_ABSMEAN, 0, 0, BF_TQ2};
    for (size_t k = 0; k < m->np; k++)
        if (m->p[k].is_block_matrix) bf_model_set_ternary(m, bf_model_weight(m, m->p[k].name), &q);
}

static double loss(bf_model *m, const int32_t *x, const int32_t *y)
{
    bf_model_refresh(m);
    return bf_model_forward(m, x, y, B, T);
}

static void randomize_z(bf_svf *s, uint64_t seed)
{
    bf_rng r;
    bf_rng_seed(&r, seed);
    for (size_t j = 0; j < s->ps.np; j++)
        for (size_t k = 0; k < s->ps.p[j].numel; k++) s->ps.params[s->ps.p[j].offset + k] = (float)(1.5 * bf_rng_normal(&r));
}

int main(void)
{
    bf_threads_set(2);
    int32_t x[B * T], y[B * T];
    bf_rng r;
    bf_rng_seed(&r, 3);
    for (int k = 0; k < B * T; k++) {
        x[k] = (int32_t)bf_rng_below(&r, V);
        y[k] = (k % 4 == 3) ? -1 : (int32_t)bf_rng_below(&r, V);
    }

    /* the SVD, single and double precision, on every block matrix */
    {
        bf_model m;
        make(&m, 0);
        double es = 0, ed = 0;
        for (size_t k = 0; k < m.np; k++) {
            if (!m.p[k].is_block_matrix) continue;
            size_t rows = m.p[k].shape[0], cols = m.p[k].shape[1], kk = rows < cols ? rows : cols;
            float *U = malloc(rows * kk * sizeof *U), *S = malloc(kk * sizeof *S), *Vt = malloc(kk * cols * sizeof *Vt);
            double a = bf_svd(m.params + m.p[k].offset, rows, cols, 0, U, S, Vt);
            double b = bf_svd(m.params + m.p[k].offset, rows, cols, 1, U, S, Vt);
            if (a > es) es = a;
            if (b > ed) ed = b;
            int desc = 1;
            for (size_t i = 1; i < kk; i++) desc &= S[i] <= S[i - 1];
            if (!desc) diag("%s: singular values not descending", m.p[k].name);
            free(U); free(S); free(Vt);
        }
        diag("SVD relative error, largest over the matrices: float %.3g, double %.3g", es, ed);
        ok(ed <= 1e-6 && es <= 1e-5, "SVD reconstruction: double %.2g <= 1e-6, float %.2g <= 1e-5", ed, es);
        bf_model_free(&m);
    }

    for (int tern = 0; tern < 2; tern++) {
        const char *label = tern ? "ternary base" : "float base";
        bf_model m;
        make(&m, 0);
        if (tern) make_ternary(&m);
        double base = loss(&m, x, y);
        bf_svf s;
        ok(bf_svf_create(&s, &m, BF_SVF_FORM_SVF, BF_LORA_ATTN | BF_LORA_MLP, 5, 0x1234) == 0 && s.nmat == 14, "%s: z on all 14 matrices", label);
        int arc = bf_svf_attach(&s, &m);
        ok(arc == 0 && s.svd_err < 1e-6, "%s: attached (largest SVD error %.2g)", label, s.svd_err);
        for (size_t k = 0; k < s.ps.n; k++) s.ps.params[k] = 0.3f;   /* padding too: harmless */
        bf_svf_refresh(&s, &m);
        double uni = loss(&m, x, y);
        ok(fabs(uni - base) <= 1e-5 * fabs(base), "%s: uniform m: loss %.8f, the base's %.8f", label, uni, base);
        for (size_t k = 0; k < s.ps.n; k++) s.ps.params[k] = -2.0f;
        double uni2 = loss(&m, x, y);
        ok(fabs(uni2 - base) <= 1e-5 * fabs(base), "%s: another uniform m: loss %.8f", label, uni2);
        randomize_z(&s, 8);
        double adapted = loss(&m, x, y);
        ok(fabs(adapted - base) > 1e-4, "%s: a non-uniform m changes the loss (%.6f -> %.6f)", label, base, adapted);
        double worst = 0;
        int fails = check_pset_grads(&m, &s.ps, x, y, B, T, label, &worst);
        is_int(fails, 0, "%s: dz matches central differences (worst error %.3f of the tolerance)",
               label, worst);
        double gsum = 0;
        for (size_t k = 0; k < m.np; k++)
            if (m.p[k].is_block_matrix)
                for (size_t j = 0; j < m.p[k].numel; j++) gsum += fabs(m.grads[m.p[k].offset + j]);
        ok(gsum == 0, "%s: the frozen base matrices receive no gradient", label);
        bf_tset out;
        float *zkeep = malloc(s.ps.n * sizeof *zkeep);
        memcpy(zkeep, s.ps.params, s.ps.n * sizeof *zkeep);
        bf_header h;
        bf_header_init(&h, "model");
        bf_config_to_meta(&m.cfg, h.meta);
        if (!tern) {
            ok(bf_svf_apply(&s, &m, 0, 0, &out) == 0, "float: applied");
            bf_model m2;
            ok(bf_model_from_tset(&m2, &h, &out) == 0, "float: the applied tensors make a model");
            double applied = loss(&m2, x, y);
            ok(fabs(applied - adapted) <= 1e-5 * fabs(adapted), "float: applied %.7f = attached %.7f", applied, adapted);
            bf_model_free(&m2);
            bf_tset_release(&out);
        } else {
            bf_svf_detach(&s, &m);
            ok(loss(&m, x, y) == base, "ternary: detached, the base again");
            ok(bf_svf_apply(&s, &m, 1, 0, &out) == 0, "ternary: applied, W' kept in F32");
            bf_model m2;
            ok(bf_model_from_tset(&m2, &h, &out) == 0, "ternary, F32 W': the tensors make a model");
            double applied = loss(&m2, x, y);
            ok(fabs(applied - adapted) <= 1e-5 * fabs(adapted), "ternary, F32 W': %.7f = attached %.7f", applied, adapted);
            bf_model_free(&m2);
            bf_tset_release(&out);
            memcpy(s.ps.params, zkeep, s.ps.n * sizeof *zkeep);
            ok(bf_svf_apply(&s, &m, 0, 1, &out) == 0, "ternary: applied and re-quantized");
            ok(bf_model_from_tset(&m2, &h, &out) == 0, "ternary, re-quantized: the tensors make a model");
            double rq = loss(&m2, x, y);
            ok(isfinite(rq), "ternary, re-quantized: loss %.5f (attached %.5f, base %.5f)", rq, adapted, base);
            bf_model_free(&m2);
            bf_tset_release(&out);
        }
        free(zkeep);
        bf_header_release(&h);
        bf_svf_free(&s);
        bf_model_free(&m);
    }

    /* row scales (form scales): float base, ternary base with int8
     * activations (absmean per tensor), ternary base with the threshold rule
     * (per row) and a latent */
    for (int variant = 0; variant < 3; variant++) {
        static const char *const labels[] = {"scales, float base", "scales, ternary absmean", "scales, ternary threshold"};
        const char *label = labels[variant];
        bf_model m;
        make(&m, variant == 1 ? 8 : 0);
        bf_qspec q = {variant == 2 ? BF_Q_THRESHOLD : BF_Q_ABSMEAN, 0.5f, variant == 2, BF_TQ2};
        if (variant)
            for (size_t k = 0; k < m.np; k++)
                if (m.p[k].is_block_matrix) bf_model_set_ternary(&m, bf_model_weight(&m, m.p[k].name), &q);
        double base = loss(&m, x, y);
        bf_tset bt;
        bf_model_to_tset(&m, 0, &bt);
        bf_svf s;
        int crc = bf_svf_create(&s, &m, BF_SVF_FORM_SCALES, BF_LORA_ATTN | BF_LORA_MLP, 5, 0x1234);
        if (crc) { ok(0, "%s: bf_svf_create: %s", label, bf_errmsg()); return tap_done(); }
        ok(s.nmat == 14 && s.ps.p[4].numel == 12 && !strcmp(s.ps.p[4].name, "blk.0.w1.log_scale"),
           "%s: a log-factor per row of 14 matrices (w1: %s [%zu])", label, s.ps.p[4].name, s.ps.p[4].numel);
        /* v = 0: W' is the base's W_eff, bit for bit, and so is the loss,
         * except where the base runs on the integer kernels (the ternary
         * matrices with int8 activations: exact integer sums, then the
         * scales), and W' is a float product of the same numbers */
        size_t nsnap = 0, snap_len = 0;
        for (size_t k = 0; k < m.np; k++)
            if (m.p[k].is_block_matrix) snap_len += m.p[k].numel;
        float *snap = malloc(snap_len * sizeof *snap);
        for (size_t k = 0; k < m.np; k++)
            if (m.p[k].is_block_matrix) {
                memcpy(snap + nsnap, bf_model_weight(&m, m.p[k].name)->w, m.p[k].numel * sizeof *snap);
                nsnap += m.p[k].numel;
            }
        int attached = bf_svf_attach(&s, &m) == 0, same_w = 1;
        nsnap = 0;
        for (size_t k = 0; k < m.np; k++)
            if (m.p[k].is_block_matrix) {
                same_w &= memcmp(snap + nsnap, bf_model_weight(&m, m.p[k].name)->w, m.p[k].numel * sizeof *snap) == 0;
                nsnap += m.p[k].numel;
            }
        free(snap);
        double at_zero = loss(&m, x, y);
        ok(attached && same_w, "%s: v = 0 makes W' the base's W_eff, bit for bit", label);
        if (variant == 1)
            ok(fabs(at_zero - base) <= 1e-6 * fabs(base), "%s: v = 0, the base's loss (%.9f, on the kernels %.9f)", label,
               at_zero, base);
        else
            ok(at_zero == base, "%s: v = 0 is the base's loss, bit for bit", label);
        bf_rng rr;
        bf_rng_seed(&rr, 21);
        for (size_t j = 0; j < s.ps.np; j++)
            for (size_t k = 0; k < s.ps.p[j].numel; k++) s.ps.params[s.ps.p[j].offset + k] = (float)(0.4 * bf_rng_normal(&rr));
        double adapted = loss(&m, x, y);
        ok(fabs(adapted - base) > 1e-4, "%s: other factors change the loss (%.6f -> %.6f)", label, base, adapted);
        if (variant != 1) {   /* int8 activations make the loss a step function: no differences to compare with */
            double worst = 0;
            int fails = check_pset_grads(&m, &s.ps, x, y, B, T, label, &worst);
            is_int(fails, 0, "%s: dv matches central differences (worst error %.3f of the tolerance)", label, worst);
        } else {
            bf_model_zero_grad(&m);
            memset(s.ps.grads, 0, s.ps.n * sizeof(float));
            loss(&m, x, y);
            bf_model_backward(&m);
            double gn = 0;
            for (size_t k = 0; k < s.ps.n; k++) gn += (double)s.ps.grads[k] * s.ps.grads[k];
            ok(isfinite(gn) && gn > 0, "%s: gradients reach v through int8 activations (norm %.3g)", label, sqrt(gn));
        }
        double gsum = 0;
        for (size_t k = 0; k < m.np; k++)
            if (m.p[k].is_block_matrix)
                for (size_t j = 0; j < m.p[k].numel; j++) gsum += fabs(m.grads[m.p[k].offset + j]);
        ok(gsum == 0, "%s: the frozen base matrices receive no gradient", label);
        bf_header h;
        bf_header_init(&h, "model");
        bf_config_to_meta(&m.cfg, h.meta);
        bf_tset out;
        float *v = malloc(s.ps.n * sizeof *v);
        memcpy(v, s.ps.params, s.ps.n * sizeof *v);
        ok(bf_svf_apply(&s, &m, 0, 1, &out) == 0, "%s: applied", label);
        bf_model m2;
        ok(bf_model_from_tset(&m2, &h, &out) == 0, "%s: the applied tensors make a model", label);
        double applied = bf_model_forward(&m2, x, y, B, T);   /* the stream's weights, before any refresh */
        ok(fabs(applied - adapted) <= 1e-5 * fabs(adapted), "%s: applied %.7f = attached %.7f", label, applied, adapted);
        bf_model_free(&m2);
        if (variant) {
            bf_tgroup g, g0;
            int found = bf_tgroup_find(&g, &out, "blk.1.w2") == 0 && bf_tgroup_find(&g0, &bt, "blk.1.w2") == 0;
            ok(found && g.nscales == g.rows && g.q.per_row && g.codes->nbytes == g0.codes->nbytes &&
                   !memcmp(g.codes->data, g0.codes->data, g.codes->nbytes),
               "%s: the same codes, a scale per row (%zu of %zu)", label, found ? g.nscales : 0, found ? g.rows : 0);
            const float *v2 = v + s.ps.p[13].offset;   /* blk.1.w2 */
            double rel = 0;
            for (size_t row = 0; found && row < g.rows; row++) {
                double want = exp((double)v2[row]) * bf_tgroup_row_scale(&g0, row);
                rel = fmax(rel, fabs(bf_tgroup_row_scale(&g, row) - want) / want);
            }
            ok(found && rel <= 1e-6, "%s: row r's scale is exp(v_r) times the base's (relative error %.2g)", label, rel);
            if (variant == 1) {   /* per tensor: no latent carries these scales */
                ok(!bf_tset_find(&out, "blk.1.w2.latent"), "%s: the per-tensor latent is left out", label);
                int lrc = bf_model_load_for_inference(&m2, &h, &out);
                bf_weight *iw = lrc ? NULL : bf_model_weight(&m2, "blk.1.w2");
                ok(iw && iw->tm && !iw->w, "%s: loads on the integer kernels (no float weight)", label);
                double ik = bf_model_forward(&m2, x, y, B, T);
                /* int32 sums times a per-row scale against float products of
                 * scale·code and q/s: a few float roundings per output */
                ok(fabs(ik - adapted) <= 1e-4 * fabs(adapted), "%s: integer kernels %.7f, attached %.7f", label, ik, adapted);
                bf_model_free(&m2);
            } else {              /* per row: the latent's rows scaled, it quantizes to the same group */
                ok(bf_tset_find(&out, "blk.1.w2.latent") != NULL, "%s: the latent is kept", label);
                bf_model_from_tset(&m2, &h, &out);
                double rq = loss(&m2, x, y);   /* refreshed: quantized again from the latent */
                ok(fabs(rq - adapted) <= 1e-5 * fabs(adapted), "%s: re-quantized from the latent %.7f = attached %.7f", label, rq,
                   adapted);
                bf_model_free(&m2);
            }
        }
        bf_tset_release(&out);
        bf_header_release(&h);   /* the model's header; the experts' comes next */
        /* the stream: form, bounds, no mixing with svf experts */
        const char *names[1] = {"rows"};
        const float *zs[1] = {v};
        bf_experts e;
        bf_svf_form f;
        unsigned mask;
        ok(bf_experts_to_tset(&s, names, zs, 1, &h, &out) == 0 && bf_experts_layout(&h, &f, &mask) == 0 &&
               f == BF_SVF_FORM_SCALES && mask == (BF_LORA_ATTN | BF_LORA_MLP) &&
               !strcmp(bf_val_get_str(h.meta, "form"), "scales"),
           "%s: the stream says its form and targets", label);
        ok(bf_experts_from_tset(&e, &h, &out, &s) == 0 && !memcmp(e.z, v, s.ps.n * sizeof *v), "%s: read back", label);
        bf_svf o;
        bf_svf_create(&o, &m, BF_SVF_FORM_SVF, BF_LORA_ATTN | BF_LORA_MLP, 5, 0x1234);
        bf_experts e2;
        int rc = bf_experts_from_tset(&e2, &h, &out, &o);
        ok(rc == -1 && strstr(bf_errmsg(), "form 'scales', not 'svf'"), "%s: read as svf experts: %s", label, bf_errmsg());
        e2 = e;
        e2.form = BF_SVF_FORM_SVF;
        bf_experts all = {0};
        bf_experts_join(&all, &e);
        rc = bf_experts_join(&all, &e2);
        ok(rc == -1 && strstr(bf_errmsg(), "do not mix"), "%s: joined with svf experts: %s", label, bf_errmsg());
        bf_experts_free(&all);
        bf_experts_free(&e);
        ((float *)out.t[1].data)[0] = 17.0f;
        rc = bf_experts_from_tset(&e, &h, &out, &s);
        ok(rc == -1 && strstr(bf_errmsg(), "beyond"), "%s: a factor of e^17: %s", label, bf_errmsg());
        bf_svf_free(&o);
        bf_tset_release(&out);
        bf_header_release(&h);
        bf_tset_release(&bt);
        free(v);
        bf_svf_free(&s);
        bf_model_free(&m);
    }

    /* the stream, and determinism */
    {
        bf_model m;
        make(&m, 8);
        bf_svf a, b;
        bf_svf_create(&a, &m, BF_SVF_FORM_SVF, BF_LORA_MLP, 11, 0xabcdef);
        bf_svf_create(&b, &m, BF_SVF_FORM_SVF, BF_LORA_MLP, 11, 0xabcdef);
        ok(a.ps.n == b.ps.n && memcmp(a.ps.params, b.ps.params, a.ps.n * sizeof(float)) == 0, "same seed, same z");
        bf_svf_attach(&a, &m);
        size_t nw = bf_model_weight(&m, a.mat[0])->rows * bf_model_weight(&m, a.mat[0])->cols;
        float *w1 = malloc(nw * sizeof *w1);
        memcpy(w1, bf_model_weight(&m, a.mat[0])->w, nw * sizeof *w1);
        bf_svf_detach(&a, &m);
        bf_svf_attach(&b, &m);
        ok(memcmp(w1, bf_model_weight(&m, b.mat[0])->w, nw * sizeof *w1) == 0, "attached twice: W' the same bytes");
        bf_svf_detach(&b, &m);
        free(w1);
        randomize_z(&a, 4);
        const char *names[1] = {"task-1"};
        const float *zs[1] = {a.ps.params};
        bf_header h;
        bf_tset t;
        ok(bf_experts_to_tset(&a, names, zs, 1, &h, &t) == 0 && t.n == 6, "to a stream: z of 6 matrices");
        ok(!strcmp(t.t[0].name, "task-1/blk.0.w1.svf_z"), "tensor names: %s", t.t[0].name);
        bf_experts e;
        int rc;
        ok(bf_experts_from_tset(&e, &h, &t, &b) == 0 && e.nexp == 1 && memcmp(e.z, a.ps.params, a.ps.n * sizeof(float)) == 0,
           "back from the stream, the same values");
        double alpha[1] = {1.0};
        bf_svf_mix(&b, &e, alpha, 0);
        ok(memcmp(b.ps.params, a.ps.params, a.ps.n * sizeof(float)) == 0, "a mixture with alpha 1 is the expert");
        bf_experts_free(&e);
        b.base_digest = 0xabcdee;
        rc = bf_experts_from_tset(&e, &h, &t, &b);
        ok(rc == -1 && strstr(bf_errmsg(), "another base"), "another base: %s", bf_errmsg());
        b.base_digest = 0xabcdef;
        ((float *)t.t[3].data)[1] = NAN;
        rc = bf_experts_from_tset(&e, &h, &t, &b);
        ok(rc == -1 && strstr(bf_errmsg(), "non-finite"), "NaN: %s", bf_errmsg());
        t.t[3].shape[0] = 5;
        rc = bf_experts_from_tset(&e, &h, &t, &b);
        ok(rc == -1 && strstr(bf_errmsg(), "is not F32"), "wrong length: %s", bf_errmsg());
        bf_val *tg = bf_val_arr();
        for (size_t j = 0; j < 6; j++) bf_val_push(tg, bf_val_str(j == 2 ? "blk.0.wz" : b.mat[j]));
        bf_val_set(h.meta, "targets", tg);
        rc = bf_experts_from_tset(&e, &h, &t, &b);
        ok(rc == -1 && strstr(bf_errmsg(), "blk.0.wz"), "unknown matrix: %s", bf_errmsg());
        ok(!bf_svf_name_ok("a/b") && !bf_svf_name_ok("") && bf_svf_name_ok("mix"), "expert names");
        bf_tset_release(&t);
        bf_header_release(&h);
        /* int8 activations on a ternary base: finite, gradients reach z */
        bf_qspec q = {BF_Q_ABSMEAN, 0, 0, BF_TQ1};
        for (size_t k = 0; k < m.np; k++)
            if (m.p[k].is_block_matrix) bf_model_set_ternary(&m, bf_model_weight(&m, m.p[k].name), &q);
        bf_svf_attach(&a, &m);
        bf_model_zero_grad(&m);
        double l8 = loss(&m, x, y);
        bf_model_backward(&m);
        double gn = 0;
        for (size_t k = 0; k < a.ps.n; k++) gn += (double)a.ps.grads[k] * a.ps.grads[k];
        ok(isfinite(l8) && gn > 0, "ternary base, int8 activations: loss %.4f, gradients reach z", l8);
        bf_svf_free(&a);
        bf_svf_free(&b);
        bf_model_free(&m);
    }
    return tap_done();
}
