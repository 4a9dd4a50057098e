/* blas_panels.c — the float product for short rows: C = α·A·op(B) + β·C with
 * A not transposed and K ≤ PANELS_KMAX, the shape of a training step's
 * forward products (positions × features against a weight matrix, K the
 * model's width) and of its input gradients.
 *
 * Why not OpenBLAS there: bf_sgemm split such a product into one
 * cblas_sgemm a thread, and OpenBLAS copied both operands into its packed
 * layouts in every call: each thread its own copy of all of op(B), and its
 * rows of A, whose K floats a row then meet only N/16 micro-kernel calls.
 * In lm's step (d 128) that copying was 12-14 % of all samples, and the two
 * threads' halves, fixed in advance, finished apart by 11 % of the
 * products' time on this shared machine (a clock read where each half ends,
 * 40 steps).  Here op(B) is copied once, the threads sharing the work, into
 * panels of 16 columns; A's rows are read in place; and the work goes in
 * tasks (a block of rows against a group of panels) that the threads take
 * from a shared counter until none is left.
 *
 * The micro-kernel holds a 6 × 16 tile of C in twelve registers: per k two
 * loads of the panel, six broadcasts of A, twelve fused multiply-adds
 * (AVX2 and FMA, chosen at run time).  gcc 12 at -O2 (objdump): the loop is
 * exactly those 20 instructions, 2 vmovaps, 6 vbroadcastss from memory and
 * 12 vfmadd231ps, with four integer steps; nothing on the stack.  Every
 * element of C is one fused sum over k in order, whichever thread takes its
 * block, so the bits do not depend on the thread count.
 *
 * Measured in lm's and lm256's training (bf-ste-train, 2 threads, float),
 * the clock read around every product this file would take, whole runs in
 * turn with OpenBLAS's split and with this: lm (30 steps, four pairs) 56.2,
 * 56.5, 62.6, 58.4 → 64.8, 60.8, 63.0, 66.9 flops a clock tick; lm256 (10
 * steps, three pairs) 64.7, 64.1, 64.2 → 63.0, 71.1, 65.8.  (Alternating
 * the two call by call inside one run measured them level: 0.997 of the
 * time over lm's products.) */
#include "blas_panels.h"

#include "bf/thread.h"
#include "bf/util.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PANELS_X86 1
#endif

#define PANELS_KMAX 512   /* a panel (K × 16 floats, 32 KiB at 512) stays in L1/L2 */
#define PANELS_MMIN 192   /* rows enough for four blocks */
#define PANELS_MAX_BYTES (8u << 20)   /* op(B)'s copy at most (an output layer of 16k words at d 128) */
#define BLOCK_ROWS 48     /* eight micro-kernel rows of six */
#define GROUP_BYTES (128u << 10)   /* panels a task: 128 KiB, a quarter of L2 */
#define MR 6
#define NR 16

#ifdef PANELS_X86
typedef struct {
    int tb;
    size_t M, N, K, lda, ldb, ldc, npanel;
    float alpha, beta;
    const float *A, *B;
    float *C, *P;
    size_t next_task;    /* the next task to take (atomic) */
} job;

/* Panels [p0, p1) of op(B) [K, N]: panel p, row k holds op(B)[k, 16p … 16p + 15],
 * zeros past column N. */
static void panels_pack(void *ctx, size_t p0, size_t p1, int th)
{
    (void)th;
    const job *j = ctx;
    for (size_t p = p0; p < p1; p++) {
        float *dst = j->P + p * j->K * NR;
        size_t n0 = p * NR, nc = j->N - n0 < NR ? j->N - n0 : NR;
        if (j->tb) {   /* op(B)[k, n] = B[n, k] */
            for (size_t k = 0; k < j->K; k++)
                for (size_t c = 0; c < NR; c++) dst[k * NR + c] = c < nc ? j->B[(n0 + c) * j->ldb + k] : 0.0f;
        } else {
            for (size_t k = 0; k < j->K; k++) {
                memcpy(dst + k * NR, j->B + k * j->ldb + n0, nc * sizeof *dst);
                memset(dst + k * NR + nc, 0, (NR - nc) * sizeof *dst);
            }
        }
    }
}

/* One row of the tile out: c[0 … nc) = α·(lo, hi) + β·c (c not read for β = 0). */
__attribute__((target("avx2,fma"))) static inline void panels_emit_row(float *c, size_t nc, __m256 lo, __m256 hi,
                                                                        float alpha, float beta)
{
    const __m256 va = _mm256_set1_ps(alpha);
    lo = _mm256_mul_ps(va, lo);
    hi = _mm256_mul_ps(va, hi);
    if (nc == NR) {
        if (beta != 0.0f) {
            const __m256 vb = _mm256_set1_ps(beta);
            lo = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), lo);
            hi = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), hi);
        }
        _mm256_storeu_ps(c, lo);
        _mm256_storeu_ps(c + 8, hi);
        return;
    }
    float t[NR];
    _mm256_storeu_ps(t, lo);
    _mm256_storeu_ps(t + 8, hi);
    for (size_t n = 0; n < nc; n++) c[n] = beta != 0.0f ? fmaf(beta, c[n], t[n]) : t[n];   /* fused, as above */
}

/* row r of the tile: its A element at k broadcast, times the panel's two vectors */
#define PANELS_ROW(r)                                                                                              \
    do {                                                                                                           \
        __m256 a_ = _mm256_broadcast_ss(a##r + k);                                                                 \
        c##r##0 = _mm256_fmadd_ps(a_, b0, c##r##0);                                                                \
        c##r##1 = _mm256_fmadd_ps(a_, b1, c##r##1);                                                                \
    } while (0)

/* C[0 … mr, 0 … nc) of the tile at A's row 0 and panel P (mr ≤ 6, nc ≤ 16).
 * Rows past mr repeat A's last row (their sums are not kept), so that
 * nothing past A is read.  Twelve accumulators, two panel vectors and one
 * broadcast: fifteen of the sixteen ymm registers. */
__attribute__((target("avx2,fma"))) static void panels_tile6x16(const float *A, size_t lda, size_t mr, const float *P,
                                                                size_t K, float alpha, float beta, float *C, size_t ldc,
                                                                size_t nc)
{
    const float *a0 = A, *a1 = A + (mr > 1 ? 1 : 0) * lda, *a2 = A + (mr > 2 ? 2 : mr - 1) * lda,
                *a3 = A + (mr > 3 ? 3 : mr - 1) * lda, *a4 = A + (mr > 4 ? 4 : mr - 1) * lda,
                *a5 = A + (mr > 5 ? 5 : mr - 1) * lda;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (size_t k = 0; k < K; k++, P += NR) {
        __m256 b0 = _mm256_load_ps(P), b1 = _mm256_load_ps(P + 8);
        PANELS_ROW(0);
        PANELS_ROW(1);
        PANELS_ROW(2);
        PANELS_ROW(3);
        PANELS_ROW(4);
        PANELS_ROW(5);
    }
    panels_emit_row(C, nc, c00, c01, alpha, beta);
    if (mr > 1) panels_emit_row(C + ldc, nc, c10, c11, alpha, beta);
    if (mr > 2) panels_emit_row(C + 2 * ldc, nc, c20, c21, alpha, beta);
    if (mr > 3) panels_emit_row(C + 3 * ldc, nc, c30, c31, alpha, beta);
    if (mr > 4) panels_emit_row(C + 4 * ldc, nc, c40, c41, alpha, beta);
    if (mr > 5) panels_emit_row(C + 5 * ldc, nc, c50, c51, alpha, beta);
}

/* Tasks from the shared counter until none is left.  A task is a block of
 * BLOCK_ROWS rows against a group of panels (GROUP_BYTES of them, in L2),
 * six rows at a time against each panel; consecutive tasks share a group,
 * so a thread's next task finds its panels still in cache.  (lm256's
 * 1024-wide products have 1 MiB of panels, twice a core's L2.) */
static void panels_run_tasks(void *ctx, size_t t0, size_t t1, int th)
{
    (void)t0, (void)t1, (void)th;
    job *j = ctx;
    size_t nblock = (j->M + BLOCK_ROWS - 1) / BLOCK_ROWS;
    size_t gp = GROUP_BYTES / (j->K * NR * sizeof(float)), ngroup = (j->npanel + gp - 1) / gp;
    for (;;) {
        size_t t = __atomic_fetch_add(&j->next_task, 1, __ATOMIC_RELAXED);
        if (t >= nblock * ngroup) return;
        size_t b = t % nblock, g = t / nblock;
        size_t i0 = b * BLOCK_ROWS, i1 = i0 + BLOCK_ROWS < j->M ? i0 + BLOCK_ROWS : j->M;
        size_t p1 = (g + 1) * gp < j->npanel ? (g + 1) * gp : j->npanel;
        for (size_t p = g * gp; p < p1; p++) {
            size_t n0 = p * NR, nc = j->N - n0 < NR ? j->N - n0 : NR;
            for (size_t i = i0; i < i1; i += MR)
                panels_tile6x16(j->A + i * j->lda, j->lda, i1 - i < MR ? i1 - i : MR, j->P + p * j->K * NR, j->K, j->alpha,
                         j->beta, j->C + i * j->ldc + n0, j->ldc, nc);
        }
    }
}
#endif

int bf_sgemm_panels(int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda, const float *B,
                    size_t ldb, float beta, float *C, size_t ldc)
{
#ifdef PANELS_X86
    if (K < 1 || K > PANELS_KMAX || M < PANELS_MMIN || N < NR) return 0;
    size_t npanel = (N + NR - 1) / NR, need = npanel * K * NR;
    if (need > PANELS_MAX_BYTES / sizeof(float)) return 0;   /* a copy as large as a big output layer: OpenBLAS's blocks */
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    /* the panels, kept for the next product on this thread */
    static _Thread_local float *buf;
    static _Thread_local size_t cap;
    if (need > cap) {
        bf_aligned_free(buf);
        cap = 0;
        buf = bf_aligned_alloc(need * sizeof *buf);
        if (!buf) return 0;
        cap = need;
    }
    job j = {transB, M, N, K, lda, ldb, ldc, npanel, alpha, beta, A, B, C, buf, 0};
    bf_parallel(npanel, 2, panels_pack, &j);
    int nth = bf_threads_get();
    bf_parallel((size_t)nth, 1, panels_run_tasks, &j);
    return 1;
#else
    (void)transB, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)B, (void)ldb, (void)beta, (void)C,
        (void)ldc;
    return 0;
#endif
}
