/* test_lora — LoRA adapters as a weight source.
 *
 *  - the adapter's gradients (dA, dB) against central differences of the
 *    loss, directional and on the largest entries, float and ternary bases,
 *    with the tolerance of test_model_grad (2e-3 + 2e-2·|fd|: about ten times
 *    the float rounding of a central difference with h = 1e-3);
 *  - B = 0: the adapted model computes exactly the base's loss;
 *  - merging then evaluating equals evaluating with the adapter attached
 *    (float base: to rounding, relative 1e-5);
 *  - through the quantizer (a ternary base's default): the student's W_eff
 *    is what a merge writes, bit for bit (the same codes and scales, the same
 *    loss: KL(student ‖ merged) = 0), at strength 1 and at 0.5; at B = 0 its
 *    dA and dB are the float path's (the gradient passes straight through);
 *  - a ternary matrix read without its latent starts from a pre-image of its
 *    codes: its first re-quantization gives the stream's codes again;
 *  - the adapter stream round trip, and the errors for another base, wrong
 *    shapes, NaN;
 *  - the same seed gives the same bytes. */
#include "tap.h"
#include "model_fixture.h"

#include "bf/kernels.h"
#include "bf/lora.h"
#include "bf/model.h"
#include "bf/rng.h"
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

static double loss(bf_model *m, const int32_t *x, const int32_t *y)
{
    bf_model_refresh(m);
    return bf_model_forward(m, x, y, B, T);
}

/* central differences on every A and B; returns the failures */
static void randomize_b(bf_adapter *a, uint64_t seed)
{
    bf_rng r;
    bf_rng_seed(&r, seed);
    for (size_t k = 1; k < a->ps.np; k += 2) {
        const bf_param *p = &a->ps.p[k];
        for (size_t j = 0; j < p->numel; j++) a->ps.params[p->offset + j] = (float)(0.2 * bf_rng_normal(&r));
    }
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

    unsigned all;
    ok(bf_lora_targets_parse("attn,w1,w2", &all) == 0 && all == (BF_LORA_ATTN | BF_LORA_W1 | BF_LORA_W2), "targets parse");
    unsigned bad;
    ok(bf_lora_targets_parse("wq,bogus", &bad) == -1 && strstr(bf_errmsg(), "bogus"), "an unknown target is named");

    /* float base: B = 0 leaves the loss as it is; gradients; merge = attached */
    for (int tern = 0; tern < 2; tern++) {
        bf_model m;
        make(&m, 0);
        if (tern) {
            bf_qspec q = {BF_Q_ABSMEAN, 0, 0, BF_TQ2};
            for (size_t k = 0; k < m.np; k++)
                if (m.p[k].is_block_matrix) bf_model_set_ternary(&m, bf_model_weight(&m, m.p[k].name), &q);
        }
        const char *label = tern ? "ternary base (float path)" : "float base";
        double base = loss(&m, x, y);
        bf_adapter a;
        ok(bf_adapter_create(&a, &m, 2, 4.0, BF_LORA_ATTN | BF_LORA_MLP, 5, 0x1234) == 0, "%s: adapter of rank 2 on every matrix", label);
        a.through_quant = 0;   /* the float path: W_eff = scale·codes + B·A, smooth in A and B */
        bf_adapter_attach(&a, &m);
        ok(loss(&m, x, y) == base, "%s: B = 0: the adapted model's loss is the base's, bit for bit", label);
        randomize_b(&a, 8);
        double adapted = loss(&m, x, y);
        ok(adapted != base, "%s: a non-zero B changes the loss (%.6f -> %.6f)", label, base, adapted);
        is_int(check_pset_grads(&m, &a.ps, x, y, B, T, label, NULL), 0, "%s: dA and dB match central differences", label);
        /* the base's own parameters get no gradient: the adapter's sources keep dW_eff */
        double gsum = 0;
        for (size_t k = 0; k < m.np; k++)
            if (m.p[k].is_block_matrix)
                for (size_t j = 0; j < m.p[k].numel; j++) gsum += fabs(m.grads[m.p[k].offset + j]);
        ok(gsum == 0, "%s: the frozen base matrices receive no gradient", label);
        if (!tern) {
            bf_adapter_merge(&a, &m, 1.0);
            double merged = loss(&m, x, y);
            ok(fabs(merged - adapted) <= 1e-5 * fabs(adapted), "float: merged %.7f = attached %.7f", merged, adapted);
        } else {
            bf_adapter_detach(&a, &m);
            ok(loss(&m, x, y) == base, "ternary: detached, the base again");
            bf_adapter_merge(&a, &m, 1.0);
            double merged = loss(&m, x, y);
            ok(isfinite(merged), "ternary: merged and re-quantized: loss %.5f (attached %.5f, base %.5f)", merged, adapted, base);
        }
        bf_adapter_free(&a);
        bf_model_free(&m);
    }

    /* through the quantizer: the student is what the merge writes */
    for (int half = 0; half < 2; half++) {
        double strength = half ? 0.5 : 1.0;
        bf_model m;
        make(&m, 0);
        bf_qspec q = {BF_Q_ABSMEAN, 0, half, BF_TQ2};   /* per tensor, then per row */
        for (size_t k = 0; k < m.np; k++)
            if (m.p[k].is_block_matrix) bf_model_set_ternary(&m, bf_model_weight(&m, m.p[k].name), &q);
        double base = loss(&m, x, y);
        bf_adapter a, f;
        bf_adapter_create(&a, &m, 2, 4.0, BF_LORA_ATTN | BF_LORA_MLP, 5, 0x1234);
        a.strength = strength;
        /* at B = 0, the same gradients as the float path's */
        bf_adapter_create(&f, &m, 2, 4.0, BF_LORA_ATTN | BF_LORA_MLP, 5, 0x1234);
        f.through_quant = 0;
        f.strength = strength;
        bf_adapter_attach(&f, &m);
        bf_model_zero_grad(&m);
        loss(&m, x, y);
        bf_model_backward(&m);
        bf_adapter_detach(&f, &m);
        bf_adapter_attach(&a, &m);
        bf_model_zero_grad(&m);
        ok(loss(&m, x, y) == base, "through Q, strength %.1f: B = 0 gives the base's loss", strength);
        bf_model_backward(&m);
        ok(memcmp(a.ps.grads, f.ps.grads, a.ps.n * sizeof(float)) == 0, "through Q: at B = 0, dA and dB are the float path's, bit for bit");
        bf_adapter_free(&f);
        randomize_b(&a, 8);
        double student = loss(&m, x, y);
        size_t nmat = a.nmat;
        float **weff = calloc(nmat, sizeof *weff);
        for (size_t k = 0; k < nmat; k++) {
            bf_weight *w = bf_model_weight(&m, a.mat[k]);
            weff[k] = malloc(w->rows * w->cols * sizeof(float));
            memcpy(weff[k], w->w, w->rows * w->cols * sizeof(float));
        }
        size_t M;
        bf_model_target_index(&m, &M);
        float *lp = malloc(M * V * sizeof *lp);
        memcpy(lp, bf_model_target_logprobs(&m, 0), M * V * sizeof *lp);
        bf_adapter_merge(&a, &m, strength);
        double merged = loss(&m, x, y);
        int same = 1;
        for (size_t k = 0; k < nmat; k++) {
            bf_weight *w = bf_model_weight(&m, a.mat[k]);
            same &= memcmp(weff[k], w->w, w->rows * w->cols * sizeof(float)) == 0;
            free(weff[k]);
        }
        free(weff);
        ok(same, "through Q, strength %.1f: every merged matrix is the student's W_eff, bit for bit", strength);
        ok(merged == student && memcmp(lp, bf_model_target_logprobs(&m, 0), M * V * sizeof *lp) == 0,
           "through Q, strength %.1f: the merged model's log-probabilities are the student's (KL 0; loss %.6f, base %.6f)",
           strength, merged, base);
        ok(merged != base, "through Q, strength %.1f: the adapter changed the model", strength);
        free(lp);
        bf_adapter_free(&a);
        bf_model_free(&m);
    }

    /* a ternary matrix read without its latent: its first re-quantization gives its codes again */
    {
        bf_model m, l;
        make(&m, 0);
        bf_qspec q = {BF_Q_ABSMEAN, 0, 0, BF_TQ2};
        for (size_t k = 0; k < m.np; k++)
            if (m.p[k].is_block_matrix) bf_model_set_ternary(&m, bf_model_weight(&m, m.p[k].name), &q);
        bf_model_refresh(&m);
        bf_header h;
        bf_header_init(&h, "model");
        bf_config_to_meta(&m.cfg, h.meta);
        bf_tset s;
        bf_model_to_tset(&m, 0, &s);
        ok(bf_model_from_tset(&l, &h, &s) == 0, "a ternary model without latents, read back");
        double read = loss(&l, x, y), orig = bf_model_forward(&m, x, y, B, T);
        ok(fabs(read - orig) <= 1e-5 * fabs(orig), "its first refresh keeps the model: loss %.7f against %.7f", read, orig);
        int codes_same = 1;
        for (size_t k = 0; k < m.np; k++) {
            if (!m.p[k].is_block_matrix) continue;
            const float *a = bf_model_weight(&m, m.p[k].name)->w, *b = bf_model_weight(&l, m.p[k].name)->w;
            for (size_t j = 0; j < m.p[k].numel; j++) codes_same &= (a[j] > 0) == (b[j] > 0) && (a[j] == 0) == (b[j] == 0) &&
                                                                  fabsf(a[j] - b[j]) <= 1e-6f * fabsf(a[j]);
        }
        ok(codes_same, "the same codes, the same scale to 1e-6");
        bf_tset_release(&s);
        bf_header_release(&h);
        bf_model_free(&l);
        bf_model_free(&m);
    }

    /* the adapter stream: round trip, another base, wrong shapes, NaN; same seed, same bytes */
    {
        bf_model m;
        make(&m, 8);
        bf_adapter a, b, c;
        bf_adapter_create(&a, &m, 3, 6.0, BF_LORA_ATTN, 11, 0xabcdef);
        bf_adapter_create(&c, &m, 3, 6.0, BF_LORA_ATTN, 11, 0xabcdef);
        ok(a.ps.n == c.ps.n && memcmp(a.ps.params, c.ps.params, a.ps.n * sizeof(float)) == 0, "same seed, same adapter");
        bf_adapter_free(&c);
        randomize_b(&a, 4);
        bf_header h;
        bf_tset s;
        ok(bf_adapter_to_tset(&a, &h, &s) == 0 && s.n == 2 * 4 * 2, "to a stream: A and B of 8 matrices");
        ok(bf_adapter_from_tset(&b, &h, &s, &m, 0xabcdef) == 0 && b.ps.n == a.ps.n &&
               memcmp(a.ps.params, b.ps.params, a.ps.n * sizeof(float)) == 0,
           "back from the stream, the same values");
        bf_adapter_free(&b);
        ok(bf_adapter_from_tset(&b, &h, &s, &m, 0xabcdee) == -1 && strstr(bf_errmsg(), "another base"), "another base: %s", bf_errmsg());
        ((float *)s.t[3].data)[2] = NAN;
        ok(bf_adapter_from_tset(&b, &h, &s, &m, 0xabcdef) == -1 && strstr(bf_errmsg(), "non-finite"), "NaN: %s", bf_errmsg());
        s.t[0].shape[0] = 2;
        ok(bf_adapter_from_tset(&b, &h, &s, &m, 0xabcdef) == -1 && strstr(bf_errmsg(), "is not F32"), "wrong shape: %s", bf_errmsg());
        bf_val_set(h.meta, "rank", bf_val_int(100));
        ok(bf_adapter_from_tset(&b, &h, &s, &m, 0xabcdef) == -1 && strstr(bf_errmsg(), "exceeds"), "rank too large: %s", bf_errmsg());
        bf_tset_release(&s);
        bf_header_release(&h);
        /* int8 activations on a ternary base: finite, and gradients flow to A and B */
        bf_qspec q = {BF_Q_ABSMEAN, 0, 0, BF_TQ1};
        for (size_t k = 0; k < m.np; k++)
            if (m.p[k].is_block_matrix) bf_model_set_ternary(&m, bf_model_weight(&m, m.p[k].name), &q);
        bf_adapter_attach(&a, &m);
        bf_model_zero_grad(&m);
        memset(a.ps.grads, 0, a.ps.n * sizeof(float));
        double l8 = loss(&m, x, y);
        bf_model_backward(&m);
        double gn = 0;
        for (size_t k = 0; k < a.ps.n; k++) gn += (double)a.ps.grads[k] * a.ps.grads[k];
        ok(isfinite(l8) && gn > 0, "ternary base, int8 activations: loss %.4f, gradients reach the adapter", l8);
        bf_adapter_free(&a);
        bf_model_free(&m);
    }
    /* An adapter trained through the quantizer, on a model that trains on
     * the integer kernels: W_eff = Q(L + s·B·A) runs there too, in a kernel
     * form of its own, with the float path's loss and gradients but for
     * rounding (test_model_grad explains the tolerances); detached, the
     * weights run on the base's form again. */
    if (bf_kernel_level_get() != BF_KERNEL_SCALAR) {
        bf_model mk, mf;
        bf_adapter ak, af;
        make(&mk, 8);
        make(&mf, 8);
        bf_qspec q = {BF_Q_ABSMEAN, 0, 0, BF_TQ2};
        for (size_t k = 0; k < mk.np; k++)
            if (mk.p[k].is_block_matrix) {
                bf_model_set_ternary(&mk, bf_model_weight(&mk, mk.p[k].name), &q);
                bf_model_set_ternary(&mf, bf_model_weight(&mf, mf.p[k].name), &q);
            }
        bf_model_use_float_products(&mf);
        bf_adapter_create(&ak, &mk, 2, 4.0, BF_LORA_ATTN | BF_LORA_MLP, 5, 0x1234);
        bf_adapter_create(&af, &mf, 2, 4.0, BF_LORA_ATTN | BF_LORA_MLP, 5, 0x1234);
        randomize_b(&ak, 31);
        randomize_b(&af, 31);
        const bf_tmat *base_tm[64];
        for (size_t k = 0; k < ak.nmat && k < 64; k++) base_tm[k] = bf_model_weight(&mk, ak.mat[k])->tm;
        int attached = bf_adapter_attach(&ak, &mk) == 0 && bf_adapter_attach(&af, &mf) == 0, own = 1, none = 1;
        for (size_t k = 0; k < ak.nmat && k < 64; k++) {
            const bf_tmat *t = bf_model_weight(&mk, ak.mat[k])->tm;
            own &= t != NULL && base_tm[k] != NULL && t != base_tm[k];
            none &= bf_model_weight(&mf, af.mat[k])->tm == NULL;
        }
        ok(attached && own && none, "through the quantizer: %zu adapted matrices on kernel forms of their own (none in float)",
           ak.nmat);
        double lk, lf, gerr = 0, gnorm = 0;
        bf_model *mm[2] = {&mk, &mf};
        bf_adapter *aa[2] = {&ak, &af};
        double *l2[2] = {&lk, &lf};
        for (int side = 0; side < 2; side++) {
            bf_model_zero_grad(mm[side]);
            memset(aa[side]->ps.grads, 0, aa[side]->ps.n * sizeof(float));
            *l2[side] = loss(mm[side], x, y);
            bf_model_backward(mm[side]);
        }
        for (size_t k = 0; k < ak.ps.n; k++) {
            double d = (double)ak.ps.grads[k] - af.ps.grads[k];
            gerr += d * d;
            gnorm += (double)af.ps.grads[k] * af.ps.grads[k];
        }
        ok(fabs(lk - lf) <= 1e-4 * fabs(lf) && gnorm > 0 && sqrt(gerr / gnorm) <= 1e-3,
           "through the quantizer: on the kernels loss %.7f, in float %.7f; A and B's gradients differ by %.2g (relative L2)",
           lk, lf, sqrt(gerr / gnorm));
        bf_adapter_detach(&ak, &mk);
        int back = 1;
        for (size_t k = 0; k < ak.nmat && k < 64; k++) back &= bf_model_weight(&mk, ak.mat[k])->tm == base_tm[k];
        ok(back, "detached: every matrix on the base's kernel form again");
        bf_adapter_free(&ak);
        bf_adapter_free(&af);
        bf_model_free(&mk);
        bf_model_free(&mf);
    }
    return tap_done();
}
