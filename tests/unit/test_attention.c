/* test_attention.c — the attention op (lib/model/ops.c) against a scalar
 * reference in double: full and causal masks, cached queries (pos0 > 0),
 * head widths that are and are not multiples of the eight-lane vectors,
 * rows shorter and longer than a vector; the same bits for any thread count.
 *
 * Tolerance: the op sums in float and takes exponentials with bf/vmath.h's
 * bf_v8_exp (≤ 2 ulp); probabilities of a row sum to 1 within a few ulp, so
 * outputs of |v| ≤ 1 agree with the double reference to 2e-6 absolute. */
#include "tap.h"

#include "../../lib/model/ops.h"
#include "bf/rng.h"
#include "bf/thread.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float uniform(bf_rng *r) { return (float)((double)bf_rng_next(r) / 18446744073709551616.0 * 2.0 - 1.0); }

/* out[b, t, h] = Σ_s softmax_s(q·k_s/√hd) v_s over the keys query t sees */
static void reference(const bf_op_attn *j, double *out, double *prob)
{
    for (size_t b = 0; b < j->B; b++)
        for (size_t h = 0; h < j->H; h++)
            for (size_t t = 0; t < j->T; t++) {
                size_t n = j->full ? j->T : j->pos0 + t + 1;
                double *p = prob + ((b * j->H + h) * j->T + t) * j->T;
                double mx = -INFINITY, sum = 0;
                double *sc = malloc(n * sizeof *sc);
                for (size_t s = 0; s < n; s++) {
                    double d = 0;
                    for (size_t i = 0; i < j->hd; i++)
                        d += (double)j->q[(b * j->T + t) * j->D + h * j->hd + i] *
                             (double)j->k[(b * j->kT + s) * j->D + h * j->hd + i];
                    sc[s] = d / sqrt((double)j->hd);
                    if (sc[s] > mx) mx = sc[s];
                }
                for (size_t s = 0; s < n; s++) sum += (sc[s] = exp(sc[s] - mx));
                for (size_t s = 0; s < j->T; s++) p[s] = s < n && n <= j->T ? sc[s] / sum : 0;
                for (size_t i = 0; i < j->hd; i++) {
                    double o = 0;
                    for (size_t s = 0; s < n; s++) o += sc[s] / sum * (double)j->v[(b * j->kT + s) * j->D + h * j->hd + i];
                    out[(b * j->T + t) * j->D + h * j->hd + i] = o;
                }
                free(sc);
            }
}

int main(void)
{
    static const struct { size_t B, T, H, hd, pos0, kT; int full; } cases[] = {
        {2, 16, 4, 16, 0, 16, 1}, {2, 16, 4, 16, 0, 16, 0}, {3, 5, 2, 4, 0, 5, 1},  {1, 33, 3, 12, 0, 33, 0},
        {2, 9, 2, 8, 0, 9, 1},    {1, 1, 2, 16, 0, 1, 0},   {2, 1, 2, 12, 20, 24, 0}, {1, 3, 4, 6, 7, 12, 0},
        /* decoding's heads, in the cached loops (T ≤ 4) and past them (sgemm) */
        {1, 1, 4, 64, 50, 64, 0}, {2, 4, 2, 32, 13, 20, 0}, {1, 5, 2, 64, 30, 40, 0},
    };
    bf_rng r;
    bf_rng_seed(&r, 5);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t B = cases[c].B, T = cases[c].T, H = cases[c].H, hd = cases[c].hd, D = H * hd, kT = cases[c].kT;
        float *q = malloc(B * T * D * sizeof *q), *k = malloc(B * kT * D * sizeof *k), *v = malloc(B * kT * D * sizeof *v);
        for (size_t i = 0; i < B * T * D; i++) q[i] = 2 * uniform(&r);
        for (size_t i = 0; i < B * kT * D; i++) { k[i] = 2 * uniform(&r); v[i] = uniform(&r); }
        int cached = cases[c].pos0 > 0 || kT != T;
        float *att = cached ? NULL : malloc(B * H * T * T * sizeof *att);
        float *out1 = malloc(B * T * D * sizeof *out1), *out2 = malloc(B * T * D * sizeof *out2);
        double *ref = malloc(B * T * D * sizeof *ref), *prob = malloc(B * H * T * T * sizeof *prob);
        bf_op_attn j = {q, k, v, att, out1, NULL, NULL, NULL, NULL, B, T, D, H, hd, NULL, kT, cases[c].pos0, cases[c].full};
        reference(&j, ref, prob);
        bf_threads_set(1);
        bf_op_attention(&j);
        j.out = out2;
        bf_threads_set(2);
        bf_op_attention(&j);
        double err = 0, perr = 0;
        for (size_t i = 0; i < B * T * D; i++) err = fmax(err, fabs(out1[i] - ref[i]));
        for (size_t i = 0; att && i < B * H * T * T; i++) perr = fmax(perr, fabs(att[i] - prob[i]));
        char label[96];
        snprintf(label, sizeof label, "B %zu T %zu H %zu hd %zu %s%s", B, T, H, hd, cases[c].full ? "full" : "causal",
                 cached ? " cached" : "");
        ok(err <= 2e-6, "%s: output within 2e-6 of the double reference (%.2g)", label, err);
        if (att) ok(perr <= 2e-6, "%s: probabilities within 2e-6 (%.2g)", label, perr);
        ok(memcmp(out1, out2, B * T * D * sizeof *out1) == 0, "%s: 1 and 2 threads give the same bits", label);
        if (att) {
            /* the backward writes dq, dk and dv whatever they held: NaN
             * before it at 2 threads, zeros at 1, the same bits after */
            size_t nd = B * T * D;
            float *dout = malloc(nd * sizeof *dout), *g[2][3];
            for (size_t i = 0; i < nd; i++) dout[i] = uniform(&r);
            for (int run = 0; run < 2; run++) {
                for (int x = 0; x < 3; x++) {
                    g[run][x] = malloc(nd * sizeof(float));
                    for (size_t i = 0; i < nd; i++) g[run][x][i] = run ? NAN : 0.0f;
                }
                bf_op_attn jb = {q, k, v, att, NULL, g[run][0], g[run][1], g[run][2], dout, B, T, D, H, hd, NULL, T, 0,
                                 cases[c].full};
                bf_threads_set(run ? 2 : 1);
                bf_op_attention_bwd(&jb);
            }
            int same = 1;
            for (int x = 0; x < 3; x++) same &= memcmp(g[0][x], g[1][x], nd * sizeof(float)) == 0;
            ok(same, "%s: the backward's dq, dk, dv the same from zeros at 1 thread and NaN at 2", label);
            for (int run = 0; run < 2; run++)
                for (int x = 0; x < 3; x++) free(g[run][x]);
            free(dout);
        }
        free(q); free(k); free(v); free(att); free(out1); free(out2); free(ref); free(prob);
    }
    /* the check can fail: a wrong scale is caught */
    {
        size_t B = 1, T = 4, H = 1, hd = 8, D = 8;
        float q[32], k[32], v[32], out[32];
        double ref[32], prob[16];
        for (int i = 0; i < 32; i++) { q[i] = 2 * uniform(&r); k[i] = 2 * uniform(&r); v[i] = uniform(&r); }
        bf_op_attn j = {q, k, v, NULL, out, NULL, NULL, NULL, NULL, B, T, D, H, hd, NULL, T, 0, 1};
        bf_op_attention(&j);
        j.hd = 4;   /* the reference with another scale (and half the head) */
        reference(&j, ref, prob);
        double err = 0;   /* over the columns the half head's reference writes */
        for (int t = 0; t < 4; t++)
            for (int i = 0; i < 4; i++) err = fmax(err, fabs(out[t * 8 + i] - ref[t * 8 + i]));
        ok(err > 2e-6, "a different attention is told apart (%.2g)", err);
    }
    return tap_done();
}
