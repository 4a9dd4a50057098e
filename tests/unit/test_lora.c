/* test_lora — LoRA adapters as a weight source.
 *
 *  - the adapter's gradients (dA, dB) against central differences of the
 *    loss, directional and on the largest entries, float and ternary bases,
 *    with the tolerance of test_model_grad (2e-3 + 2e-2·|fd|: about ten times
 *    the float rounding of a central difference with h = 1e-3);
 *  - B = 0: the adapted model computes exactly the base's loss;
 *  - merging then evaluating equals evaluating with the adapter attached
 *    (float base: to rounding, relative 1e-5);
 *  - the adapter stream round trip, and the errors for another base, wrong
 *    shapes, NaN;
 *  - the same seed gives the same bytes. */
#include "tap.h"
#include "model_fixture.h"

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
        const char *label = tern ? "ternary base" : "float base";
        double base = loss(&m, x, y);
        bf_adapter a;
        ok(bf_adapter_create(&a, &m, 2, 4.0, BF_LORA_ATTN | BF_LORA_MLP, 5, 0x1234) == 0, "%s: adapter of rank 2 on every matrix", label);
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
    return tap_done();
}
