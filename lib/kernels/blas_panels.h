/* blas_panels.h — the library's own float product (blas_panels.c), which
 * bf_sgemm takes in place of OpenBLAS where it serves (bf/blas.h). */
#ifndef BF_BLAS_PANELS_H
#define BF_BLAS_PANELS_H

#include <stddef.h>

/* C[M,N] = alpha·op(A)·op(B) + beta·C, row-major, over the pool; beta = 0
 * never reads C.  Returns 0 when it does not take the product (A
 * transposed, its shape, the CPU, or no memory for the panels): the caller
 * then runs it another way. */
int bf_sgemm_panels(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc);

#endif
