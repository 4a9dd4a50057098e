/* blas_panels.c — the library's own float product for a training step's
 * forward products and input gradients: C = α·A·op(B) + β·C with A not
 * transposed (positions × features against a weight matrix), at least
 * PANELS_MMIN rows, op(B)'s copy at most PANELS_MAX_BYTES.
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
 * tasks (a block of rows against a group of panels), each thread taking its
 * own share of them, then what is left of another's (bf_parallel_chunks).
 *
 * The micro-kernel holds a 6 × 16 tile of C in twelve registers: per k two
 * loads of the panel, six broadcasts of A, twelve fused multiply-adds
 * (AVX2 and FMA, chosen at run time).  gcc 12 at -O2 (objdump): the loop is
 * 24 instructions, 2 vmovaps, 6 vbroadcastss from memory, 12 vfmadd231ps
 * and four integer steps; nothing on the stack.  Every element of C is one
 * fused sum over k in order (carried between passes of KC values of k),
 * whichever thread takes its block, so the bits do not depend on the thread
 * count.
 *
 * Measured in lm's and lm256's training (bf-ste-train, 2 threads, float),
 * the clock read around every product this file takes, whole runs in turn
 * with OpenBLAS's split and with this: lm (30 steps, three pairs) 55.4,
 * 57.7, 62.0 → 63.6, 63.2, 68.1 flops a clock tick; lm256 (10 steps, three
 * pairs, its 1024-long rows included) 67.2, 67.4, 63.3 → 66.8, 66.0, 68.3.
 * (Alternating the two call by call inside one run measured them level:
 * 0.997 of the time over lm's products.)  A weight gradient (A transposed,
 * K the positions) stays with OpenBLAS: copied strip by strip a pass, it
 * ran at five sixths of OpenBLAS's rate in lm's step. */
#include "blas_panels.h"

#include "bf/thread.h"
#include "bf/util.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PANELS_X86 1
#endif

#define PANELS_MMIN 96    /* rows: fewer go to OpenBLAS */
#define PANELS_MAX_BYTES (8u << 20)   /* op(B)'s copy at most (an output layer of 16k words at d 128) */
#define KC 256            /* k a pass: a panel's slice (256 × 16 floats, 16 KiB) stays in L1 */
#define BLOCK_ROWS 48     /* eight micro-kernel rows of six, fewer when tasks are few */
#define GROUP_BYTES (128u << 10)   /* panel slices a task: 128 KiB, a quarter of L2 */
#define MR 6
#define NR 16
#define TILE (MR * NR)    /* a tile's partial sums between passes */

#ifdef PANELS_X86
typedef struct {
    int tb;
    size_t M, N, K, lda, ldb, ldc, npanel;
    size_t block_rows, gp, ngroup;   /* a task's rows and panels; groups of panels */
    float alpha, beta;
    const float *A, *B;
    float *C, *P;
    float *part;         /* each thread's partial sums, part_len floats, when K > KC */
    size_t part_len;
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

/* row r of the tile: A[r, k] broadcast, times the panel's two vectors */
#define PANELS_ROW(r)                                                                                              \
    do {                                                                                                           \
        __m256 a_ = _mm256_broadcast_ss(ak + o##r);                                                                \
        c##r##0 = _mm256_fmadd_ps(a_, b0, c##r##0);                                                                \
        c##r##1 = _mm256_fmadd_ps(a_, b1, c##r##1);                                                                \
    } while (0)

/* A tile's sums over kn values of k: A's rows at a (row r at a + r·lda, its
 * k values one after another) against panel slice P.  The sums start
 * from `in` (TILE floats, row r at in + 16r; zero when NULL) and go to
 * `out` when this is not the last pass, else C[0 … mr, 0 … nc) gets
 * α·sum + β·C.  Rows past mr repeat the last row (their sums are not kept),
 * so that nothing past A is read.  Twelve accumulators, two panel vectors
 * and one broadcast: fifteen of the sixteen ymm registers. */
__attribute__((target("avx2,fma"))) static void panels_tile(const float *a, size_t lda, size_t mr, const float *P,
                                                            size_t kn, const float *in, float *out, float alpha,
                                                            float beta, float *C, size_t ldc, size_t nc)
{
    size_t o0 = 0, o1 = (mr > 1 ? 1 : mr - 1) * lda, o2 = (mr > 2 ? 2 : mr - 1) * lda,
           o3 = (mr > 3 ? 3 : mr - 1) * lda, o4 = (mr > 4 ? 4 : mr - 1) * lda, o5 = (mr > 5 ? 5 : mr - 1) * lda;
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (in) {
        c00 = _mm256_loadu_ps(in), c01 = _mm256_loadu_ps(in + 8), c10 = _mm256_loadu_ps(in + 16);
        c11 = _mm256_loadu_ps(in + 24), c20 = _mm256_loadu_ps(in + 32), c21 = _mm256_loadu_ps(in + 40);
        c30 = _mm256_loadu_ps(in + 48), c31 = _mm256_loadu_ps(in + 56), c40 = _mm256_loadu_ps(in + 64);
        c41 = _mm256_loadu_ps(in + 72), c50 = _mm256_loadu_ps(in + 80), c51 = _mm256_loadu_ps(in + 88);
    } else {
        c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    }
    const float *ak = a;
    for (size_t k = 0; k < kn; k++, P += NR, ak++) {
        __m256 b0 = _mm256_load_ps(P), b1 = _mm256_load_ps(P + 8);
        PANELS_ROW(0);
        PANELS_ROW(1);
        PANELS_ROW(2);
        PANELS_ROW(3);
        PANELS_ROW(4);
        PANELS_ROW(5);
    }
    if (out) {
        _mm256_storeu_ps(out, c00), _mm256_storeu_ps(out + 8, c01), _mm256_storeu_ps(out + 16, c10);
        _mm256_storeu_ps(out + 24, c11), _mm256_storeu_ps(out + 32, c20), _mm256_storeu_ps(out + 40, c21);
        _mm256_storeu_ps(out + 48, c30), _mm256_storeu_ps(out + 56, c31), _mm256_storeu_ps(out + 64, c40);
        _mm256_storeu_ps(out + 72, c41), _mm256_storeu_ps(out + 80, c50), _mm256_storeu_ps(out + 88, c51);
        return;
    }
    panels_emit_row(C, nc, c00, c01, alpha, beta);
    if (mr > 1) panels_emit_row(C + ldc, nc, c10, c11, alpha, beta);
    if (mr > 2) panels_emit_row(C + 2 * ldc, nc, c20, c21, alpha, beta);
    if (mr > 3) panels_emit_row(C + 3 * ldc, nc, c30, c31, alpha, beta);
    if (mr > 4) panels_emit_row(C + 4 * ldc, nc, c40, c41, alpha, beta);
    if (mr > 5) panels_emit_row(C + 5 * ldc, nc, c50, c51, alpha, beta);
}

/* Tasks [t0, t1): task t is block t / ngroup of rows against group
 * t % ngroup of panels, in passes of KC values of k: in a pass, each
 * panel's slice (in L1) meets the block's rows six at a time, and the sums
 * wait in the thread's `part` between passes, so each is still one sum
 * over k in order.  A thread's share of the tasks is a run of rows, every
 * group of panels: the rows it then reads or writes in the next operation,
 * split the same way (bf_parallel's halves), stay in its own cache.  Taken
 * from a shared counter instead, the tasks had scattered the rows over both
 * cores, and lm's step (bench/train-step-ab, five runs in turn against
 * OpenBLAS's split) went from 1.024 and 1.067 of the old time to 0.937. */
static void panels_run_tasks(void *ctx, size_t t0, size_t t1, int th)
{
    job *j = ctx;
    size_t br = j->block_rows, nstrip = br / MR;
    float *part = j->part ? j->part + (size_t)th * j->part_len : NULL;
    for (size_t t = t0; t < t1; t++) {
        size_t b = t / j->ngroup, g = t % j->ngroup;
        size_t i0 = b * br, i1 = i0 + br < j->M ? i0 + br : j->M;
        size_t p0 = g * j->gp, p1 = p0 + j->gp < j->npanel ? p0 + j->gp : j->npanel;
        for (size_t k0 = 0; k0 < j->K; k0 += KC) {
            size_t kn = j->K - k0 < KC ? j->K - k0 : KC;
            int first = k0 == 0, last = k0 + kn == j->K;
            for (size_t p = p0; p < p1; p++) {
                size_t n0 = p * NR, nc = j->N - n0 < NR ? j->N - n0 : NR;
                const float *P = j->P + (p * j->K + k0) * NR;
                for (size_t i = i0; i < i1; i += MR) {
                    size_t mr = i1 - i < MR ? i1 - i : MR;
                    float *pt = part ? part + ((p - p0) * nstrip + (i - i0) / MR) * TILE : NULL;
                    const float *in = first ? NULL : pt;
                    float *out = last ? NULL : pt, *C = j->C + i * j->ldc + n0;
                    panels_tile(j->A + i * j->lda + k0, j->lda, mr, P, kn, in, out, j->alpha, j->beta, C, j->ldc, nc);
                }
            }
        }
    }
}

#endif

int bf_sgemm_panels(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
#ifdef PANELS_X86
    if (transA || K < 1 || M < PANELS_MMIN || N < NR) return 0;
    size_t npanel = (N + NR - 1) / NR, need = npanel * K * NR;
    if (need > PANELS_MAX_BYTES / sizeof(float)) return 0;   /* a copy as large as a big output layer: OpenBLAS's blocks */
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    size_t nth = (size_t)bf_threads_get(), kslice = K < KC ? K : KC;
    size_t gp = GROUP_BYTES / (kslice * NR * sizeof(float)), ngroup = (npanel + gp - 1) / gp;
    /* rows a task: 48, fewer (a multiple of six) until there are tasks four times the threads */
    size_t br = BLOCK_ROWS;
    while (br > 2 * MR && (M + br - 1) / br * ngroup < 4 * nth) br -= MR;
    /* the panels and the threads' partial sums, kept for the next product on this thread */
    static _Thread_local void *panels, *parts;
    static _Thread_local size_t panels_cap, parts_cap;
    size_t part_len = K > KC ? br / MR * gp * TILE : 0;   /* a thread's partial sums */
    float *P = bf_aligned_scratch(&panels, &panels_cap, need * sizeof *P);
    float *part = part_len ? bf_aligned_scratch(&parts, &parts_cap, nth * part_len * sizeof *part) : NULL;
    if (!P || (part_len && !part)) return 0;
    job j = {transB, M, N, K, lda, ldb, ldc, npanel, br, gp, ngroup, alpha, beta, A, B, C, P, part, part_len};
    bf_parallel(npanel, 2, panels_pack, &j);
    bf_parallel_chunks((M + br - 1) / br * ngroup, 1, panels_run_tasks, &j);
    return 1;
#else
    (void)transA, (void)transB, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)B, (void)ldb,
        (void)beta, (void)C, (void)ldc;
    return 0;
#endif
}
