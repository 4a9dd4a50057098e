/* bench/compress.c — SeedLM's seed search, timed (bench/compress-seedlm).
 *
 *   compress seedlm C P N THREADS   bf_seedlm_encode on N N(0,1) weights:
 *       prints seconds, seed_blocks_s (seeds tried a second, summed over
 *       blocks), mb_min (MB of F32 weights a minute), the relative error and
 *       cpu_per_wall (CPU seconds of all threads over wall seconds: the
 *       parallelism the machine actually granted)
 *   compress naive C P BLOCKS       the reference: the same search written
 *       plainly, one block and one seed at a time, U and its least-squares
 *       matrix made for each (block, seed) pair, every seed quantized —
 *       the rule without the table, the tiles or the bound
 */
#include "bf/compress.h"
#include "bf/rng.h"
#include "bf/thread.h"
#include "bf/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU seconds of the whole process, all threads */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *normal_weights(uint64_t n)
{
    float *w = malloc(n * sizeof(float));
    bf_rng r = bf_rng_derive(1, "bench-seedlm");
    for (uint64_t i = 0; i < n; i++) w[i] = (float)bf_rng_normal(&r);
    return w;
}

static double rel_error(int c, const float *w, const float *hat, uint64_t n)
{
    double acc = 0;
    uint64_t blocks = 0;
    for (uint64_t b = 0; b * (uint64_t)c < n; b++) {
        double e = 0, s = 0;
        for (int i = 0; i < c && b * (uint64_t)c + (uint64_t)i < n; i++) {
            uint64_t k = b * (uint64_t)c + (uint64_t)i;
            e += ((double)w[k] - hat[k]) * ((double)w[k] - hat[k]);
            s += (double)w[k] * w[k];
        }
        if (s > 0) { acc += e / s; blocks++; }
    }
    return sqrt(acc / (double)blocks);
}

static int seedlm(int c, int p, uint64_t n, int threads)
{
    bf_threads_set(threads);
    float *w = normal_weights(n), *hat = malloc(n * sizeof(float));
    bf_seedlm_shape sh = {c, p};
    uint8_t *m = malloc(bf_seedlm_bytes(sh, n));
    double t0 = bf_now(), c0 = cpu_now();
    if (bf_seedlm_encode(sh, w, n, m)) { fprintf(stderr, "compress: %s\n", bf_errmsg()); return 1; }
    double dt = bf_now() - t0, cpu = cpu_now() - c0;
    bf_seedlm_decode(sh, m, bf_seedlm_bytes(sh, n), hat, n);
    uint64_t blocks = (n + (uint64_t)c - 1) / (uint64_t)c;
    printf("seconds=%.3f cpu_per_wall=%.2f seed_blocks_s=%.4g mb_min=%.4g error=%.4f\n", dt, cpu / dt,
           65535.0 * (double)blocks / dt, (double)n * 4 / 1e6 / dt * 60, rel_error(c, w, hat, n));
    return 0;
}

/* the plain search: per block, per seed, U, UᵀU, its inverse, t*, every
 * exponent's quantization and its error against w itself */
static int naive(int c, int p, uint64_t blocks)
{
    float *w = normal_weights(blocks * (uint64_t)c);
    float amax = 0;
    for (uint64_t i = 0; i < blocks * (uint64_t)c; i++) amax = fmaxf(amax, fabsf(w[i]));
    int base = (int)ceil(log2(amax)) - 12;
    double t0 = bf_now(), sink = 0;
    for (uint64_t b = 0; b < blocks; b++) {
        const float *x = w + b * (uint64_t)c;
        double best = INFINITY;
        for (int s = 1; s <= 65535; s++) {
            double u[16 * 4], g[16], gi[16], bt[4], t[4];
            bf_seedlm_basis((bf_seedlm_shape){c, p}, (uint16_t)s, u);
            for (int i = 0; i < p; i++)
                for (int j = 0; j < p; j++) {
                    g[i * p + j] = 0;
                    for (int r = 0; r < c; r++) g[i * p + j] += u[r * p + i] * u[r * p + j];
                }
            /* Gauss-Jordan on [G | I] */
            double a[4][8];
            for (int i = 0; i < p; i++)
                for (int j = 0; j < 2 * p; j++) a[i][j] = j < p ? g[i * p + j] : (j - p == i);
            int singular = 0;
            for (int col = 0; col < p && !singular; col++) {
                int piv = col;
                for (int r = col + 1; r < p; r++) if (fabs(a[r][col]) > fabs(a[piv][col])) piv = r;
                if (fabs(a[piv][col]) < 1e-9) { singular = 1; break; }
                for (int j = 0; j < 2 * p; j++) { double tmp = a[col][j]; a[col][j] = a[piv][j]; a[piv][j] = tmp; }
                double d = a[col][col];
                for (int j = 0; j < 2 * p; j++) a[col][j] /= d;
                for (int r = 0; r < p; r++)
                    if (r != col) { double f = a[r][col]; for (int j = 0; j < 2 * p; j++) a[r][j] -= f * a[col][j]; }
            }
            if (singular) continue;
            for (int i = 0; i < p; i++) for (int j = 0; j < p; j++) gi[i * p + j] = a[i][p + j];
            for (int j = 0; j < p; j++) { bt[j] = 0; for (int i = 0; i < c; i++) bt[j] += u[i * p + j] * x[i]; }
            for (int i = 0; i < p; i++) { t[i] = 0; for (int j = 0; j < p; j++) t[i] += gi[i * p + j] * bt[j]; }
            for (int e = 0; e < 16; e++) {
                double step = ldexp(1.0, e + base), err = 0;
                for (int i = 0; i < c; i++) {
                    double y = 0;
                    for (int j = 0; j < p; j++) {
                        double q = nearbyint(t[j] / step);
                        q = q < -8 ? -8 : q > 7 ? 7 : q;
                        y += u[i * p + j] * q * step;
                    }
                    err += (x[i] - y) * (x[i] - y);
                }
                if (err < best) best = err;
            }
        }
        sink += best;
    }
    double dt = bf_now() - t0;
    printf("seconds=%.3f seed_blocks_s=%.4g sink=%g\n", dt, 65535.0 * (double)blocks / dt, sink);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "seedlm") == 0)
        return seedlm(atoi(argv[2]), atoi(argv[3]), strtoull(argv[4], NULL, 10), atoi(argv[5]));
    if (argc == 5 && strcmp(argv[1], "naive") == 0) return naive(atoi(argv[2]), atoi(argv[3]), strtoull(argv[4], NULL, 10));
    fputs("usage: compress seedlm C P N THREADS | compress naive C P BLOCKS\n", stderr);
    return 2;
}
