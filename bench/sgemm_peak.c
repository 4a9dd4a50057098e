/* sgemm_peak — OpenBLAS's cblas_sgemm throughput on this machine, the
 * yardstick for bench/train-step's "share of peak".
 *
 *   sgemm_peak [N [THREADS [REPS]]]      (defaults 1024 2 5)
 *
 * C = A·B on N×N×N single-precision matrices with OpenBLAS running THREADS
 * threads: after two warm-up products, REPS timed batches of products, each
 * batch at least 0.3 s; prints one line "GFLOPS MEDIAN BEST" (GFLOP/s of
 * 2·N³ flops a product).  Built by bench/train-step with
 * `cc -O2 sgemm_peak.c -lopenblas`; no part of libbf. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void openblas_set_num_threads(int);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1024;
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (n < 16 || n > 16384 || threads < 1 || reps < 1 || reps > 100) {
        fputs("usage: sgemm_peak [N [THREADS [REPS]]]\n", stderr);
        return 2;
    }
    openblas_set_num_threads(threads);
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    if (!a || !b || !c) {
        fputs("sgemm_peak: out of memory\n", stderr);
        return 1;
    }
    unsigned s = 12345;
    for (size_t i = 0; i < nn; i++) {
        s = s * 1103515245u + 12345u;
        a[i] = (float)((s >> 9) & 0xffff) / 65536.0f - 0.5f;
        s = s * 1103515245u + 12345u;
        b[i] = (float)((s >> 9) & 0xffff) / 65536.0f - 0.5f;
        c[i] = 0;
    }
    for (int w = 0; w < 2; w++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double flop = 2.0 * n * (double)n * n;
    double *g = malloc((size_t)reps * sizeof *g);
    for (int r = 0; r < reps; r++) {
        int k = 0;
        double t0 = now(), t;
        do {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            k++;
            t = now() - t0;
        } while (t < 0.3);
        g[r] = flop * k / t / 1e9;
    }
    qsort(g, (size_t)reps, sizeof *g, cmp);
    printf("%.2f %.2f\n", g[reps / 2], g[reps - 1]);
    free(a);
    free(b);
    free(c);
    free(g);
    return 0;
}
