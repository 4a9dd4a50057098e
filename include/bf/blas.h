/* bf/blas.h — matrix products through cblas_sgemm, split over our threads
 * (part: kernels).
 *
 * OpenBLAS runs single-threaded inside each call; the library's pool splits
 * the product into row blocks, one sgemm per thread.  On a small machine this
 * beats OpenBLAS's own threading for the model's many small products: its
 * idle threads spin between calls and steal the cores our loops need.  Each
 * output element is computed by exactly one call, so a given thread count
 * always gives the same bytes.  Products with A's rows in place
 * (not transposed, M ≥ 96, op(B) at most 8 MiB) take the
 * library's own AVX2 product instead, where the CPU has AVX2 and FMA
 * (lib/kernels/blas_panels.c). */
#ifndef BF_BLAS_H
#define BF_BLAS_H

#include <stddef.h>

/* C[M,N] = alpha·op(A)·op(B) + beta·C, row-major, like cblas_sgemm; with
 * beta = 0, C's old contents are never read (NaN there does no harm). */
void bf_sgemm(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
              const float *B, size_t ldb, float beta, float *C, size_t ldc);

/* The same product in one cblas_sgemm call on the calling thread: for a
 * pool task that owns its whole product (each (row, head) of attention). */
void bf_sgemm_serial(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, float *C, size_t ldc);

#endif
