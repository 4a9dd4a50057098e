/* linear.c — the block matrices' products, for forward.c's blocks and
 * net.c's alike: y = x·W_effᵀ on the integer kernels or in float, and its
 * backward.
 *
 * A site is one activation x [N, cols] read by up to three matrices (q, k
 * and v read the attention norm's output; w1 and w3 the MLP norm's).  Where
 * the matrices quantize their input (act_bits 8), the site is quantized
 * once: into int8 rows for the matrices that run on the integer kernels,
 * and into xq = q/s, the same activations in float, for those that run in
 * float and for the backward (dW = doutᵀ·xq), both from one pass over x. */
#include "model_internal.h"
#include "ops.h"
#include "bf/quant.h"
#include "bf/util.h"

#include <string.h>

int bf_weight_on_kernels(const bf_weight *w)
{
    /* tm is the kernel form of the weight as its source makes it now: a
     * source stacked on a ternary matrix (a LoRA adapter, an SVF expert)
     * sets its own or none, and gives the one below back when it leaves */
    return w->tm && w->quant_input;
}

/* Room for N rows of kpad; -1 when memory cannot be had. */
static int room(bf_i8_rows *k, size_t N, size_t kpad)
{
    if (k->rows >= N && k->kpad >= kpad) return 0;
    bf_i8_rows_free(k);
    k->q = bf_aligned_alloc(N * kpad + 64);
    k->inv_s = bf_aligned_alloc(N * (sizeof(float) + sizeof(int32_t)));
    if (!k->q || !k->inv_s) {
        bf_i8_rows_free(k);
        return -1;
    }
    k->sum = (int32_t *)(k->inv_s + N);
    k->rows = N;
    k->kpad = kpad;
    return 0;
}

void bf_i8_rows_free(bf_i8_rows *k)
{
    bf_aligned_free(k->q);
    bf_aligned_free(k->inv_s);
    memset(k, 0, sizeof *k);
}

/* x's rows as int8 at the kernels' stride kpad (and xq when not NULL). */
static int quantize(bf_i8_rows *k, const float *x, float *xq, size_t N, size_t cols, size_t kpad)
{
    if (room(k, N, kpad)) return -1;
    bf_quant_rows_i8(x, N, cols, kpad, k->q, k->inv_s, k->sum, xq);
    k->from = x;
    k->from_N = N;
    k->from_kpad = kpad;
    return 0;
}

int bf_site_quant(const bf_model *m, bf_i8_rows *k, const bf_weight *a, const bf_weight *b, const bf_weight *c,
                  const float *x, float *xq, size_t N, size_t cols)
{
    const bf_weight *w[3] = {a, b, c};
    size_t kpad = 0;
    int float_q = 0;
    for (int j = 0; j < 3; j++) {
        if (!w[j] || !w[j]->param || !w[j]->quant_input) continue;
        if (bf_weight_on_kernels(w[j])) {
            if (!kpad) kpad = w[j]->tm->kpad;
        } else {
            float_q = 1;
        }
    }
    k->from = NULL;
    /* xq: for the float products, and for the backward of every matrix
     * that quantizes (a model that trains has a buffer of its own there) */
    int want_xq = xq != x && (float_q || (kpad && !m->inference));
    if (kpad) return quantize(k, x, want_xq ? xq : NULL, N, cols, kpad);
    if (want_xq) bf_quant_acts(x, N, cols, xq);
    return 0;
}

int bf_linear(bf_i8_rows *k, const bf_weight *w, float *out, const float *x, const float *xq, size_t N, int accumulate)
{
    if (bf_weight_on_kernels(w)) {
        /* the site's rows, unless this matrix's blocks are another width
         * (a TQ1 matrix beside TQ2 ones) */
        if ((k->from != x || k->from_N != N || k->from_kpad != w->tm->kpad) &&
            quantize(k, x, NULL, N, w->cols, w->tm->kpad))
            return -1;
        return bf_tmat_forward(w->tm, k->q, k->inv_s, k->sum, N, out, accumulate);
    }
    bf_op_matmul(out, w->quant_input ? xq : x, w->w, N, w->cols, w->rows, accumulate);
    return 0;
}

void bf_linear_bwd(const bf_weight *w, float *din, int din_accumulate, const float *dout, const float *x,
                   const float *xq, size_t N)
{
    bf_op_matmul_bwd(din, din_accumulate, w->dw, dout, w->quant_input ? xq : x, w->w, N, w->cols, w->rows);
}
