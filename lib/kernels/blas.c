/* blas.c — row-block-parallel sgemm (see bf/blas.h). */
#include "bf/blas.h"
#include "blas_panels.h"
#include "bf/thread.h"

#include <cblas.h>
#include <string.h>

typedef struct {
    int ta, tb;
    size_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int split_n;   /* split the columns of C instead of its rows */
} job;

static void run(void *ctx, size_t i0, size_t i1, int th)
{
    const job *j = ctx;
    if (!j->split_n) {
        /* rows i0..i1 of C come from rows (or, transposed, columns) of A */
        const float *A = j->ta ? j->A + i0 : j->A + i0 * j->lda;
        bf_sgemm_serial(j->ta, j->tb, i1 - i0, j->N, j->K, j->alpha, A, j->lda, j->B, j->ldb, j->beta,
                        j->C + i0 * j->ldc, j->ldc);
    } else if (j->M == 1 && j->K) {
        /* one row of C is a matrix-vector product: sgemv streams the weights
         * once, where sgemm would first copy them into its packed panels.
         * C[0, n] = α·Σ_k A[0, k]·op(B)[k, n] + β·C[0, n]; A's row is strided
         * by lda when A is stored transposed. */
        int incx = j->ta ? (int)j->lda : 1;
        if (j->tb)   /* op(B) = Bᵀ: rows i0..i1 of B [N, K] */
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(i1 - i0), (int)j->K, j->alpha, j->B + i0 * j->ldb,
                        (int)j->ldb, j->A, incx, j->beta, j->C + i0, 1);
        else         /* B [K, N]: columns i0..i1 */
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)j->K, (int)(i1 - i0), j->alpha, j->B + i0, (int)j->ldb, j->A,
                        incx, j->beta, j->C + i0, 1);
    } else {
        const float *B = j->tb ? j->B + i0 * j->ldb : j->B + i0;
        bf_sgemm_serial(j->ta, j->tb, j->M, i1 - i0, j->K, j->alpha, j->A, j->lda, B, j->ldb, j->beta, j->C + i0, j->ldc);
    }
}

void bf_sgemm(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
              const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    if (!M || !N) return;
    /* the library's own product where it serves (blas_panels.c): a training
     * step's products, positions against a weight matrix */
    if (bf_sgemm_panels(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
    job j = {transA, transB, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C, 0};
    /* split the longer side of C; keep at least ~16k multiply-adds a block */
    j.split_n = N > M;
    size_t len = j.split_n ? N : M, other = (j.split_n ? M : N) * (K ? K : 1);
    size_t min_rows = bf_parallel_grain(other);
    bf_parallel(len, min_rows < 8 ? 8 : min_rows, run, &j);
}

void bf_sgemm_serial(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    if (!M || !N) return;
    /* OpenBLAS (0.3.21, the Haswell and Zen kernels) meets β = 0 by clearing
     * C one float a store before its kernel adds into it: in lm's training
     * step (d 128, so K is 128 in most products) that pass was 4.5 % of all
     * samples.  C's rows are cleared here with the C library's vector stores
     * instead, and the product runs with β = 1: the kernel then adds α·A·B
     * to zeros, as it did after OpenBLAS's own clearing, so the bits are the
     * same, and C's old contents (NaN included) are still never read. */
    if (beta == 0.0f) {
        for (size_t r = 0; r < M; r++) memset(C + r * ldc, 0, N * sizeof *C);
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}
