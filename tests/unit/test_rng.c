/* test_rng.c — the SplitMix64 generator and its distributions (bf/rng.h).
 *
 * Statistical checks use fixed seeds, so each is deterministic; their
 * thresholds are set where a correct generator would fail with a
 * probability of about 1e-6 or less (5 standard errors, or a chi-square
 * quantile at z = 5), while the mistakes they guard against (modulo bias,
 * a wrong Box–Muller constant, a biased shuffle) move the statistic far
 * past them. */
#include "tap.h"

#include "bf/rng.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define N 1000000

/* The documented finalizer, written out again. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Upper quantile of chi-square with df degrees of freedom at normal score z
 * (Wilson–Hilferty); z = 5 is a tail probability of about 3e-7. */
static double chi2_crit(int df, double z)
{
    double a = 2.0 / (9.0 * df);
    double c = 1 - a + z * sqrt(a);
    return df * c * c * c;
}

static double chi2(const uint64_t *counts, int k, double expect_each)
{
    double x = 0;
    for (int i = 0; i < k; i++) {
        double d = (double)counts[i] - expect_each;
        x += d * d / expect_each;
    }
    return x;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_known_answers(void)
{
    /* SplitMix64 from state 0: the reference implementation's first outputs */
    bf_rng r;
    memset(&r, 0, sizeof r);
    uint64_t a = bf_rng_next(&r), b = bf_rng_next(&r), c = bf_rng_next(&r);
    ok(a == 0xe220a8397b1dcdafULL && b == 0x6e789e6aa1b965f4ULL && c == 0x06c45d188009454fULL,
       "state 0 gives SplitMix64's reference outputs e220a8397b1dcdaf 6e789e6aa1b965f4 06c45d188009454f");
    /* seed(s) sets state mix64(s) */
    bf_rng_seed(&r, 42);
    ok(r.state == mix64(42) && r.has_spare == 0, "bf_rng_seed(42) sets the state to mix64(42)");
    a = bf_rng_next(&r);
    b = bf_rng_next(&r);
    ok(a == 0x989b3f130a063869ULL && b == 0x290db4bf2570ded7ULL, "seed 42 gives 989b3f130a063869 290db4bf2570ded7");
    /* derive(seed, label) = seed(seed ^ mix64(xxh3(label))) */
    bf_rng d = bf_rng_derive(42, "blk.0.wq");
    uint64_t want = mix64(42 ^ mix64(XXH3_64bits("blk.0.wq", 8)));
    ok(d.state == want && d.has_spare == 0, "bf_rng_derive follows its documented formula");
    /* uniform = (next >> 11) * 2^-53 */
    bf_rng u1, u2;
    bf_rng_seed(&u1, 7);
    bf_rng_seed(&u2, 7);
    int bad = 0;
    for (int k = 0; k < 1000; k++)
        if (bf_rng_uniform(&u1) != (double)(bf_rng_next(&u2) >> 11) * 0x1.0p-53) bad++;
    is_int(bad, 0, "uniform is the top 53 bits of next() times 2^-53");
}

static void test_determinism(void)
{
    bf_rng a, b, c;
    bf_rng_seed(&a, 123456789);
    bf_rng_seed(&b, 123456789);
    bf_rng_seed(&c, 123456790);
    int diff = 0, same_c = 0;
    for (int k = 0; k < 100000; k++) {
        uint64_t x = bf_rng_next(&a), y = bf_rng_next(&b), z = bf_rng_next(&c);
        diff += x != y;
        same_c += x == z;
    }
    is_int(diff, 0, "same seed, same 10^5 outputs");
    is_int(same_c, 0, "seed + 1 gives a different sequence (no output in the same place)");
    /* every distribution is deterministic too, including the cached normal */
    bf_rng_seed(&a, 99);
    bf_rng_seed(&b, 99);
    int dd = 0;
    for (int k = 0; k < 10000; k++) {
        if (bf_rng_normal(&a) != bf_rng_normal(&b)) dd++;
        if (bf_rng_uniform(&a) != bf_rng_uniform(&b)) dd++;
        if (bf_rng_below(&a, 1000 + (uint64_t)k) != bf_rng_below(&b, 1000 + (uint64_t)k)) dd++;
    }
    is_int(dd, 0, "normal, uniform and below repeat exactly under the same seed");
}

static void test_derive(void)
{
    static const char *labels[] = {"a", "b", "ab", "tok_emb", "blk.0.wq", "blk.0.wk", "blk.1.wq", "data.split", ""};
    enum { L = sizeof labels / sizeof labels[0], M = 20000 };
    uint64_t *all = malloc(sizeof *all * L * M);
    for (int i = 0; i < L; i++) {
        bf_rng r = bf_rng_derive(2024, labels[i]);
        for (int k = 0; k < M; k++) all[i * M + k] = bf_rng_next(&r);
    }
    /* the same seed and label give the same stream, whenever it is made */
    bf_rng again = bf_rng_derive(2024, "blk.0.wq");
    int same = 1;
    for (int k = 0; k < M; k++) same &= bf_rng_next(&again) == all[4 * M + k];
    ok(same, "derive(seed, label) is the same stream each time");
    /* different labels: no output shared between any two streams' first 20000 (no overlap, no shift) */
    qsort(all, (size_t)L * M, sizeof *all, cmp_u64);
    int dup = 0;
    for (size_t k = 1; k < (size_t)L * M; k++) dup += all[k] == all[k - 1];
    is_int(dup, 0, "%d labels give streams that share none of their first %d outputs", L, M);
    free(all);
    /* and uncorrelated: |r| of paired uniforms below 5/sqrt(N) (r's standard error is 1/sqrt(N)) */
    bf_rng x = bf_rng_derive(2024, "blk.0.wq"), y = bf_rng_derive(2024, "blk.0.wk");
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (int k = 0; k < N; k++) {
        double u = bf_rng_uniform(&x), v = bf_rng_uniform(&y);
        sx += u; sy += v; sxx += u * u; syy += v * v; sxy += u * v;
    }
    double cov = sxy / N - (sx / N) * (sy / N);
    double corr = cov / sqrt((sxx / N - (sx / N) * (sx / N)) * (syy / N - (sy / N) * (sy / N)));
    is_near(corr, 0, 5 / sqrt(N), "streams of labels wq and wk are uncorrelated (r = %.2e)", corr);
    /* the seed matters as much as the label */
    bf_rng s1 = bf_rng_derive(1, "x"), s2 = bf_rng_derive(2, "x"), s0;
    bf_rng_seed(&s0, 1);
    ok(bf_rng_next(&s1) != bf_rng_next(&s2), "derive(1, x) differs from derive(2, x)");
    s1 = bf_rng_derive(1, "x");
    ok(bf_rng_next(&s1) != bf_rng_next(&s0), "derive(1, x) differs from seed(1)");
    /* split: a child stream, and the parent advanced by one step */
    bf_rng p, q;
    bf_rng_seed(&p, 5);
    bf_rng_seed(&q, 5);
    bf_rng child = bf_rng_split(&p);
    uint64_t first = bf_rng_next(&q);
    ok(p.state == q.state, "split advances the parent by exactly one output");
    bf_rng want;
    bf_rng_seed(&want, first);
    ok(child.state == want.state, "the child is seeded with the parent's next output");
    int eq = 0;
    for (int k = 0; k < 10000; k++) eq += bf_rng_next(&child) == bf_rng_next(&p);
    is_int(eq, 0, "child and parent streams differ");
}

static void test_below(void)
{
    static const uint64_t ns[] = {2, 7, 10, 1000};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        uint64_t n = ns[i];
        uint64_t *cnt = calloc(n, sizeof *cnt);
        bf_rng r = bf_rng_derive(77, "below");
        int out = 0;
        for (int k = 0; k < N; k++) {
            uint64_t x = bf_rng_below(&r, n);
            if (x >= n) out++;
            else cnt[x]++;
        }
        double x2 = chi2(cnt, (int)n, (double)N / (double)n), crit = chi2_crit((int)n - 1, 5);
        is_int(out, 0, "below(%llu): every draw in [0, n)", (unsigned long long)n);
        ok(x2 < crit, "below(%llu): chi-square %.1f < %.1f on 10^6 draws (df %llu)", (unsigned long long)n, x2, crit,
           (unsigned long long)(n - 1));
        free(cnt);
    }
    /* a range of 2/3 of 2^64: plain `next % n` would make the lower half of
     * [0, n) twice as likely as the upper half; six equal bins show it */
    uint64_t n = 0xaaaaaaaaaaaaaaaaULL;
    uint64_t cnt[6] = {0};
    bf_rng r = bf_rng_derive(77, "below.big");
    int out = 0;
    for (int k = 0; k < N; k++) {
        uint64_t x = bf_rng_below(&r, n);
        if (x >= n) { out++; continue; }
        cnt[(unsigned)((unsigned __int128)x * 6 / n)]++;
    }
    double x2 = chi2(cnt, 6, N / 6.0), crit = chi2_crit(5, 5);
    is_int(out, 0, "below(2/3 * 2^64): every draw in [0, n)");
    ok(x2 < crit, "below(2/3 * 2^64): no modulo bias, chi-square %.1f < %.1f over six bins", x2, crit);
    bf_rng one = bf_rng_derive(1, "one");
    int nz = 0;
    for (int k = 0; k < 1000; k++) nz += bf_rng_below(&one, 1) != 0;
    is_int(nz, 0, "below(1) is always 0");
    bf_rng top = bf_rng_derive(1, "top");
    uint64_t hi = 0;
    for (int k = 0; k < 1000; k++) {
        uint64_t x = bf_rng_below(&top, UINT64_MAX);
        if (x > hi) hi = x;
    }
    ok(hi > UINT64_MAX / 2 && hi < UINT64_MAX, "below(2^64-1) covers the top of its range");
}

/* Standard normal CDF. */
static double phi(double x) { return 0.5 * erfc(-x / sqrt(2)); }

static void test_normal(void)
{
    bf_rng r = bf_rng_derive(31337, "normal");
    double *x = malloc(sizeof *x * N);
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0, tail = 0, lag = 0;
    int bad = 0;
    for (int k = 0; k < N; k++) {
        x[k] = bf_rng_normal(&r);
        if (!isfinite(x[k])) bad++;
    }
    for (int k = 0; k < N; k++) {
        double v = x[k];
        s1 += v; s2 += v * v; s3 += v * v * v; s4 += v * v * v * v;
        tail += fabs(v) > 2;
        if (k & 1) lag += v * x[k - 1];   /* the pair from one Box–Muller step */
    }
    is_int(bad, 0, "normal: 10^6 finite draws");
    double mean = s1 / N, var = s2 / N - mean * mean;
    /* Tolerances are 5 standard errors of each estimate over N = 10^6 draws:
     *   mean:            sd 1/sqrt(N)                = 1.0e-3
     *   variance:        sd sqrt(2/N)                = 1.4e-3   (Var x^2 = 2)
     *   third moment:    sd sqrt(15/N)               = 3.9e-3   (E x^6 = 15)
     *   fourth moment:   sd sqrt((105 - 9)/N)        = 9.8e-3   (E x^8 = 105)
     *   P(|x| > 2):      sd sqrt(p(1-p)/N), p=0.0455 = 2.1e-4
     *   pair product:    sd 1/sqrt(N/2)              = 1.4e-3 */
    is_near(mean, 0, 5 / sqrt(N), "normal: mean %.5f is 0 within 5 standard errors", mean);
    is_near(var, 1, 5 * sqrt(2.0 / N), "normal: variance %.5f is 1 within 5 standard errors", var);
    is_near(s3 / N, 0, 5 * sqrt(15.0 / N), "normal: third moment %.5f is 0", s3 / N);
    is_near(s4 / N, 3, 5 * sqrt(96.0 / N), "normal: fourth moment %.4f is 3", s4 / N);
    double p2 = 2 * phi(-2);
    is_near(tail / N, p2, 5 * sqrt(p2 * (1 - p2) / N), "normal: P(|x| > 2) = %.5f is %.5f", tail / N, p2);
    is_near(lag / (N / 2), 0, 5 / sqrt(N / 2.0), "normal: the two values of a Box-Muller pair are uncorrelated");
    /* Kolmogorov-Smirnov against the normal CDF: sqrt(N)·D above 1.95 has p < 0.001 */
    qsort(x, N, sizeof *x, cmp_d);
    double dmax = 0;
    for (int k = 0; k < N; k += 1) {
        double f = phi(x[k]);
        double d1 = fabs(f - (double)k / N), d2 = fabs(f - (double)(k + 1) / N);
        if (d1 > dmax) dmax = d1;
        if (d2 > dmax) dmax = d2;
    }
    ok(sqrt(N) * dmax < 1.95, "normal: Kolmogorov-Smirnov sqrt(N)*D = %.3f < 1.95", sqrt(N) * dmax);
    free(x);

    /* uniform: [0, 1), mean 1/2 and variance 1/12 within 5 standard errors,
     * (sd of the mean sqrt(1/12/N), of the variance sqrt(1/180/N)) */
    bf_rng u = bf_rng_derive(31337, "uniform");
    double m1 = 0, m2 = 0, lo = 1, hi = 0;
    int grid = 0;
    for (int k = 0; k < N; k++) {
        double v = bf_rng_uniform(&u);
        m1 += v;
        m2 += (v - 0.5) * (v - 0.5);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        if (v * 0x1.0p53 != floor(v * 0x1.0p53)) grid++;
    }
    ok(lo >= 0 && hi < 1, "uniform: every draw in [0, 1)");
    is_int(grid, 0, "uniform: every draw a multiple of 2^-53");
    is_near(m1 / N, 0.5, 5 * sqrt(1.0 / 12 / N), "uniform: mean %.5f", m1 / N);
    is_near(m2 / N, 1.0 / 12, 5 * sqrt(1.0 / 180 / N), "uniform: variance %.6f", m2 / N);
}

static void test_shuffle(void)
{
    enum { S = 1000 };
    uint32_t a[S], b[S];
    for (uint32_t k = 0; k < S; k++) a[k] = b[k] = k;
    bf_rng r1 = bf_rng_derive(8, "shuffle"), r2 = bf_rng_derive(8, "shuffle");
    bf_rng_shuffle_u32(&r1, a, S);
    bf_rng_shuffle_u32(&r2, b, S);
    int seen[S] = {0}, bad = 0, fixed = 0;
    for (int k = 0; k < S; k++) {
        if (a[k] >= S || seen[a[k]]++) bad++;
        fixed += a[k] == (uint32_t)k;
    }
    is_int(bad, 0, "shuffle of 1000 is a permutation: each value exactly once");
    ok(fixed < 10, "shuffle moves nearly everything (%d fixed points; about 1 expected)", fixed);
    ok(!memcmp(a, b, sizeof a), "shuffle is deterministic under the same seed");
    uint32_t one[1] = {42};
    bf_rng r3 = bf_rng_derive(8, "tiny");
    bf_rng_shuffle_u32(&r3, one, 1);
    bf_rng_shuffle_u32(&r3, one, 0);
    ok(one[0] == 42, "shuffles of 0 and 1 elements leave the array alone");
    /* all 24 orders of 4 elements equally likely: chi-square, df 23 */
    uint64_t cnt[24] = {0};
    bf_rng r4 = bf_rng_derive(8, "orders");
    enum { T = 240000 };
    for (int t = 0; t < T; t++) {
        uint32_t v[4] = {0, 1, 2, 3};
        bf_rng_shuffle_u32(&r4, v, 4);
        /* Lehmer code of the permutation */
        int code = 0;
        for (int i = 0; i < 4; i++) {
            int smaller = 0;
            for (int j = i + 1; j < 4; j++) smaller += v[j] < v[i];
            code = code * (4 - i) + smaller;
        }
        cnt[code]++;
    }
    double x2 = chi2(cnt, 24, T / 24.0), crit = chi2_crit(23, 5);
    ok(x2 < crit, "shuffle of 4: all 24 orders equally likely, chi-square %.1f < %.1f", x2, crit);
}

int main(void)
{
    test_known_answers();
    test_determinism();
    test_derive();
    test_below();
    test_normal();
    test_shuffle();
    return tap_done();
}
