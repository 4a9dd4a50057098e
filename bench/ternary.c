/* ternary — matrix-vector and matrix-matrix products: OpenBLAS F32 against
 * bitforge's TQ2 and TQ1 integer kernels, measured in the same run.
 *
 *   ternary gemv ROWS COLS THREADS [cached]    G weights/s for sgemv, TQ2, TQ1
 *   ternary gemm ROWS COLS BATCH THREADS
 *
 * Prints one line: name=value pairs.  Every figure is the median of REPS
 * timed runs, each long enough (≥ 0.15 s).  For the memory-bound gemv the
 * weights are cycled through copies that together exceed the last-level
 * cache (64 MiB), so each product streams its weights from memory; with
 * `cached` one copy is used, which measures the kernels' compute rate when
 * the weights fit in cache.  gemv also times a plain read of the TQ2 copies
 * on the same threads (read_gbs): the bandwidth a kernel could draw at
 * best. */
#include "bf/kernels.h"
#include "bf/quant.h"
#include "bf/rng.h"
#include "bf/thread.h"
#include "bf/util.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPS 7
#define LLC_BYTES (64u << 20)

typedef void (*run_fn)(void *ctx, int copy);

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* calls of fn (cycling over `copies`) that take at least 0.15 s */
static int calibrate(run_fn fn, void *ctx, int copies)
{
    fn(ctx, 0);   /* warm-up */
    int iters = 1;
    for (;;) {
        double t0 = bf_now();
        for (int i = 0; i < iters; i++) fn(ctx, i % copies);
        if (bf_now() - t0 > 0.15 || iters > (1 << 20)) return iters;
        iters *= 2;
    }
}

/* Median seconds per call of each of n functions, timed in turn within each
 * of REPS rounds: a slow spell of the machine (another tenant, a frequency
 * change) falls on every function alike rather than on one, so the ratios
 * between them hold better than their absolute rates. */
static void time_interleaved(int n, run_fn *fns, void *ctx, const int *copies, double *out)
{
    int iters[8];
    double t[8][REPS];
    for (int f = 0; f < n; f++) iters[f] = calibrate(fns[f], ctx, copies[f]);
    for (int r = 0; r < REPS; r++)
        for (int f = 0; f < n; f++) {
            double t0 = bf_now();
            for (int i = 0; i < iters[f]; i++) fns[f](ctx, i % copies[f]);
            t[f][r] = (bf_now() - t0) / iters[f];
        }
    for (int f = 0; f < n; f++) {
        qsort(t[f], REPS, sizeof(double), cmp_d);
        out[f] = t[f][REPS / 2];
    }
}

typedef struct {
    size_t rows, cols, batch;
    float **wf;          /* F32 copies [rows, cols] */
    bf_tmat *tq2, *tq1;  /* copies */
    float *x, *y;
    int8_t *q;           /* x as int8 rows, [batch, kpad] */
    float *inv_s;
    int32_t *qsum;
} bench;

static void run_sgemv(void *ctx, int c)
{
    bench *b = ctx;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)b->rows, (int)b->cols, 1.0f, b->wf[c], (int)b->cols, b->x, 1, 0.0f,
                b->y, 1);
}
static void run_sgemm(void *ctx, int c)
{
    bench *b = ctx;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b->batch, (int)b->rows, (int)b->cols, 1.0f, b->x,
                (int)b->cols, b->wf[c], (int)b->cols, 0.0f, b->y, (int)b->rows);
}
/* a ternary product as the model runs one: quantize x to int8, then the kernel */
static void run_tmat(bench *b, const bf_tmat *m)
{
    bf_quant_rows_i8(b->x, b->batch, b->cols, m->kpad, b->q, b->inv_s, b->qsum, NULL);
    if (bf_tmat_forward(m, b->q, b->inv_s, b->qsum, b->batch, b->y, 0)) {
        fprintf(stderr, "ternary: %s\n", bf_errmsg());
        exit(1);
    }
}
static void run_tq2(void *ctx, int c) { run_tmat(ctx, &((bench *)ctx)->tq2[c]); }
static void run_tq1(void *ctx, int c) { run_tmat(ctx, &((bench *)ctx)->tq1[c]); }

/* the plain read: a sum of each thread's rows of the TQ2 copy, split as the
 * kernel splits them; four sums keep the loads independent */
typedef struct {
    const bf_tmat *m;
    uint64_t sum[256];
} read_job;

/* 32-byte loads (AVX2 where the CPU has it), as the kernels load */
typedef uint64_t u64x4 __attribute__((vector_size(32), aligned(32)));
#if defined(__x86_64__)
__attribute__((target_clones("avx2", "default")))
#endif
static void read_rows(void *ctx, size_t r0, size_t r1, int th)
{
    read_job *j = ctx;
    const u64x4 *p = (const u64x4 *)(j->m->blocks + r0 * j->m->row_bytes);
    size_t n = (r1 - r0) * j->m->row_bytes / sizeof(u64x4);
    u64x4 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) s0 += p[i], s1 += p[i + 1], s2 += p[i + 2], s3 += p[i + 3];
    for (; i < n; i++) s0 += p[i];
    u64x4 s = s0 ^ s1 ^ s2 ^ s3;
    j->sum[th] += s[0] ^ s[1] ^ s[2] ^ s[3];
}
static void run_read(void *ctx, int c)
{
    bench *b = ctx;
    read_job j = {&b->tq2[c], {0}};
    bf_parallel(b->rows, 16, read_rows, &j);
    if (j.sum[0] == 42) putchar(' ');   /* keeps the sums */
}

int main(int argc, char **argv)
{
    if (argc < 5 || (strcmp(argv[1], "gemv") && strcmp(argv[1], "gemm")) || (!strcmp(argv[1], "gemm") && argc < 6)) {
        fprintf(stderr, "usage: ternary gemv ROWS COLS THREADS [cached] | ternary gemm ROWS COLS BATCH THREADS\n");
        return 2;
    }
    int gemm = !strcmp(argv[1], "gemm");
    bench b = {0};
    b.rows = strtoul(argv[2], NULL, 10);
    b.cols = strtoul(argv[3], NULL, 10);
    b.batch = gemm ? strtoul(argv[4], NULL, 10) : 1;
    int threads = atoi(argv[gemm ? 5 : 4]);
    openblas_set_num_threads(threads);
    bf_threads_set(threads);

    size_t n = b.rows * b.cols;
    /* F32 copies past the LLC for gemv; one copy for gemm (compute-bound) */
    int cached = argc > (gemm ? 6 : 5) && !strcmp(argv[gemm ? 6 : 5], "cached");
    int fcopies = gemm || cached ? 1 : (int)((LLC_BYTES + n * 4 - 1) / (n * 4)) + 1;
    size_t tbytes = n / 4;
    int tcopies = gemm || cached ? 1 : (int)((LLC_BYTES + tbytes - 1) / tbytes) + 1;
    int8_t *codes = bf_xmalloc(n);
    float *wf = bf_xmalloc(n * sizeof *wf), scale[1] = {0.05f};
    bf_rng r;
    bf_rng_seed(&r, 1);
    for (size_t k = 0; k < n; k++) {
        codes[k] = (int8_t)((int)bf_rng_below(&r, 3) - 1);
        wf[k] = 0.05f * codes[k];
    }
    b.wf = bf_xmalloc((size_t)fcopies * sizeof *b.wf);
    for (int c = 0; c < fcopies; c++) {
        b.wf[c] = bf_aligned_alloc(n * sizeof(float));
        memcpy(b.wf[c], wf, n * sizeof(float));
    }
    b.tq2 = bf_xcalloc((size_t)tcopies, sizeof *b.tq2);
    b.tq1 = bf_xcalloc((size_t)tcopies, sizeof *b.tq1);
    for (int c = 0; c < tcopies; c++) {
        bf_tmat_from_codes(&b.tq2[c], BF_TQ2, codes, b.rows, b.cols, scale, 0);
        bf_tmat_from_codes(&b.tq1[c], BF_TQ1, codes, b.rows, b.cols, scale, 0);
    }
    b.x = bf_aligned_alloc(b.batch * b.cols * sizeof(float));
    b.y = bf_aligned_alloc(b.batch * b.rows * sizeof(float));
    size_t kpad = b.tq1[0].kpad > b.tq2[0].kpad ? b.tq1[0].kpad : b.tq2[0].kpad;
    b.q = bf_aligned_alloc(b.batch * kpad);
    b.inv_s = bf_xmalloc(b.batch * sizeof(float));
    b.qsum = bf_xmalloc(b.batch * sizeof(int32_t));
    for (size_t k = 0; k < b.batch * b.cols; k++) b.x[k] = (float)bf_rng_normal(&r);

    run_fn fns[4] = {gemm ? run_sgemm : run_sgemv, run_tq2, run_tq1, run_read};
    int copies[4] = {fcopies, tcopies, tcopies, tcopies};
    double secs[4];
    time_interleaved(gemm ? 3 : 4, fns, &b, copies, secs);
    double tf = secs[0], t2 = secs[1], t1 = secs[2];
    double tq2_bytes = (double)b.tq2[0].rows * b.tq2[0].row_bytes;
    /* results agree: the kernels against the F32 product on the same ternary weights */
    float *yf = bf_xmalloc(b.batch * b.rows * sizeof(float));
    run_sgemm(&b, 0);
    memcpy(yf, b.y, b.batch * b.rows * sizeof(float));
    run_tq2(&b, 0);
    double err = 0, ref = 0;
    for (size_t k = 0; k < b.batch * b.rows; k++) { err = fmax(err, fabs(yf[k] - b.y[k])); ref = fmax(ref, fabs(yf[k])); }
    double work = (double)n * (double)b.batch;   /* weight uses: multiply-adds */
    printf("op=%s rows=%zu cols=%zu batch=%zu threads=%d level=%s f32_gws=%.2f tq2_gws=%.2f tq1_gws=%.2f "
           "tq2_ratio=%.2f tq1_ratio=%.2f f32_gbs=%.2f tq2_gbs=%.2f tq1_gbs=%.2f rel_err=%.2g",
           argv[1], b.rows, b.cols, b.batch, threads, bf_kernel_level_name(bf_kernel_level_get()), work / tf / 1e9,
           work / t2 / 1e9, work / t1 / 1e9, tf / t2, tf / t1, (double)n * 4 / tf / 1e9,
           tq2_bytes / t2 / 1e9, (double)b.tq1[0].rows * b.tq1[0].row_bytes / t1 / 1e9, err / (ref + 1e-30));
    if (!gemm) printf(" read_gbs=%.2f", tq2_bytes / secs[3] / 1e9);
    putchar('\n');
    return 0;
}
