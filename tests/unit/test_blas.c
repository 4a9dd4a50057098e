/* test_blas — bf_sgemm (row blocks or column blocks over the pool, sgemv for
 * a single row, the panels' own product with A not transposed) against a
 * double-precision scalar product, for every transpose, shapes that take
 * each path, α/β, padded leading dimensions and 1 and 2 threads; and the
 * panels' product bit for bit against its scalar form.
 *
 * Tolerance: each element is a K-term float sum; its rounding error is at
 * most about K·2⁻²⁴ times Σ|a·b|, so the test bounds the error by
 * 4·K·2⁻²⁴·Σ|a·b| + 1e-6·|β·c| — loose enough for any summation order,
 * tight enough that a wrong element, stride or block is off by O(1). */
#include "tap.h"

#include "bf/blas.h"
#include "bf/rng.h"
#include "bf/thread.h"
#include "bf/util.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *randm(bf_rng *r, size_t n)
{
    float *p = bf_xmalloc((n ? n : 1) * sizeof *p);
    for (size_t k = 0; k < n; k++) p[k] = (float)bf_rng_normal(r);
    return p;
}

/* element (i, k) of op(A) where A is stored row-major with leading dimension lda */
static double at(const float *A, size_t lda, int trans, size_t i, size_t k)
{
    return trans ? A[k * lda + i] : A[i * lda + k];
}

static int check(int ta, int tb, size_t M, size_t N, size_t K, float alpha, float beta, int threads, bf_rng *r)
{
    size_t pad = 3;   /* leading dimensions larger than the rows they hold */
    size_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t arows = ta ? K : M, brows = tb ? N : K;
    float *A = randm(r, arows * lda), *B = randm(r, brows * ldb), *C = randm(r, M * ldc);
    float *C0 = bf_xmalloc(M * ldc * sizeof *C0);
    memcpy(C0, C, M * ldc * sizeof *C0);
    if (beta == 0.0f)   /* C is not read: NaN there must not reach the product */
        for (size_t i = 0; i < M; i++)
            for (size_t n = 0; n < N; n++) C[i * ldc + n] = NAN;
    bf_threads_set(threads);
    bf_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < M && !bad; i++) {
        for (size_t n = 0; n < N; n++) {
            double s = 0, mag = 0;
            for (size_t k = 0; k < K; k++) {
                double p = at(A, lda, ta, i, k) * at(B, ldb, tb, k, n);
                s += p;
                mag += fabs(p);
            }
            double want = alpha * s + beta * (double)C0[i * ldc + n];
            double tol = 4.0 * (double)(K + 1) * ldexp(1.0, -24) * fabs(alpha) * mag + 1e-6 * fabs(beta * C0[i * ldc + n]) + 1e-30;
            double err = fabs((double)C[i * ldc + n] - want);
            if (err / tol > worst) worst = err / tol;
            if (err > tol) { bad = 1; break; }
        }
        /* the padding after each row of C is not touched */
        for (size_t n = N; n < ldc; n++)
            if (C[i * ldc + n] != C0[i * ldc + n]) bad = 1;
    }
    ok(!bad, "ta %d tb %d M %zu N %zu K %zu alpha %g beta %g threads %d (worst error %.2f of tolerance)", ta, tb, M, N, K,
       alpha, beta, threads, worst);
    free(A);
    free(B);
    free(C);
    free(C0);
    return bad;
}

/* β = 0 (bf_sgemm clears C itself and runs OpenBLAS with β = 1): on one
 * thread, where the product is one block, the bits are those of one
 * cblas_sgemm with β = 0 over NaN, and the padding after each row is left
 * alone.  (Over two threads the blocks' edges fall elsewhere, and
 * OpenBLAS's edge kernels round differently: check() covers that case.) */
static void check_cleared(int ta, int tb, size_t M, size_t N, size_t K, int serial, bf_rng *r)
{
    size_t pad = 5, lda = (ta ? M : K), ldb = (tb ? K : N), ldc = N + pad;
    float *A = randm(r, (ta ? K : M) * lda), *B = randm(r, (tb ? N : K) * ldb);
    float *C = bf_xmalloc(M * ldc * sizeof *C), *want = bf_xmalloc(M * ldc * sizeof *want);
    for (size_t k = 0; k < M * ldc; k++) C[k] = want[k] = NAN;
    bf_threads_set(1);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
                0.75f, A, (int)lda, B, (int)ldb, 0.0f, want, (int)ldc);
    if (serial) bf_sgemm_serial(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, 0.0f, C, ldc);
    else bf_sgemm(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, 0.0f, C, ldc);
    int same = 1;
    for (size_t i = 0; i < M; i++)
        for (size_t n = 0; n < ldc; n++)
            if (n < N ? memcmp(&C[i * ldc + n], &want[i * ldc + n], sizeof *C) != 0 : !isnan(C[i * ldc + n])) same = 0;
    ok(same, "beta 0 over NaN, %s: ta %d tb %d M %zu N %zu K %zu: cblas_sgemm's bits, padding untouched",
       serial ? "serial" : "pooled", ta, tb, M, N, K);
    free(A);
    free(B);
    free(C);
    free(want);
}

/* The panels' product (A not transposed, 96 ≤ M, 16 ≤ N, op(B) at most
 * 8 MiB) is each element's fused multiply-adds over k in order (in passes of 256,
 * the sums carried between them), then α·sum, then a fused β·c added: the
 * same bits as this scalar form with fmaf, on 1 and 2 threads alike; β = 0
 * over NaN, and the padding after each row untouched. */
static void check_panels(int tb, size_t M, size_t N, size_t K, float alpha, float beta, bf_rng *r)
{
    size_t pad = 5, lda = K + 2, ldb = (tb ? K : N) + 1, ldc = N + pad;
    float *A = randm(r, M * lda), *B = randm(r, (tb ? N : K) * ldb), *C0 = randm(r, M * ldc);
    float *want = bf_xmalloc(M * ldc * sizeof *want), *C = bf_xmalloc(M * ldc * sizeof *C);
    for (size_t i = 0; i < M; i++)
        for (size_t n = 0; n < ldc; n++) {
            float c = C0[i * ldc + n], s = 0.0f;
            if (n >= N) { want[i * ldc + n] = c; continue; }
            for (size_t k = 0; k < K; k++)
                s = fmaf(A[i * lda + k], tb ? B[n * ldb + k] : B[k * ldb + n], s);
            want[i * ldc + n] = beta != 0.0f ? fmaf(beta, c, alpha * s) : alpha * s;
            if (beta == 0.0f) C0[i * ldc + n] = NAN;
        }
    for (int th = 1; th <= 2; th++) {
        memcpy(C, C0, M * ldc * sizeof *C);
        bf_threads_set(th);
        bf_sgemm(0, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        ok(memcmp(C, want, M * ldc * sizeof *C) == 0, "panels: tb %d M %zu N %zu K %zu alpha %g beta %g threads %d: the "
           "scalar form's bits, padding untouched", tb, M, N, K, alpha, beta, th);
    }
    free(A);
    free(B);
    free(C0);
    free(C);
    free(want);
}

int main(void)
{
    bf_rng r;
    bf_rng_seed(&r, 7);
    /* M = 1 takes sgemv; N > M splits columns; M ≥ N splits rows; tiny ones run on one thread; with A not
     * transposed, M ≥ 96 and N ≥ 16 take the panels (the last row block, the last micro-kernel rows and the
     * last panel's columns partial; K = 513 in three passes of k), N = 15 not */
    static const size_t shapes[][3] = {{1, 300, 70},   {1, 1, 50},   {1, 257, 1},   {2, 300, 33},  {300, 2, 33},
                                       {64, 64, 64},   {7, 129, 65}, {129, 7, 65},  {1, 1000, 256}, {3, 5, 0},
                                       {197, 37, 65},  {192, 16, 1}, {250, 130, 512}, {193, 40, 513}, {250, 15, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int th = 1; th <= 2; th++) {
                    check(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, 0.0f, th, &r);
                    check(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], -0.5f, 1.0f, th, &r);
                }
    check(0, 1, 1, 4096, 512, 2.0f, 0.25f, 2, &r);
    check(0, 1, 192, 4097, 512, 1.0f, 0.0f, 2, &r);   /* op(B) past the panels' 8 MiB: OpenBLAS */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_cleared(ta, tb, 37, 70, 129, 0, &r);
            check_cleared(ta, tb, 90, 40, 600, 0, &r);   /* M below the panels' */
            check_cleared(ta, tb, 37, 70, 129, 1, &r);
            check_cleared(ta, tb, 6, 9, 0, 0, &r);
        }
    for (int tb = 0; tb < 2; tb++) {
        check_panels(tb, 197, 37, 65, 1.0f, 0.0f, &r);
        check_panels(tb, 197, 37, 65, -1.5f, 0.3f, &r);   /* β·c inexact, in full and partial panels */
        check_panels(tb, 250, 130, 512, -0.5f, 1.0f, &r);  /* two passes of k */
        check_panels(tb, 96, 16, 1, 0.75f, 0.25f, &r);
        check_panels(tb, 100, 40, 700, 1.0f, 1.0f, &r);   /* a short last pass; few rows: small blocks */
    }
    check_panels(1, 1000, 512, 128, 1.0f, 0.0f, &r);   /* lm's w1 forward: many blocks, two groups of panels */
    check_panels(0, 128, 128, 2048, 1.0f, 0.0f, &r);   /* eight passes of k */
    return tap_done();
}
