/* bf/vmath.h — exp and erf on eight floats at a time (part: support), in the
 * compiler's generic vectors (GCC and clang vector extensions): one source that becomes
 * two SSE registers on any x86-64 and one AVX register where the caller is
 * compiled for AVX2.  No branches, no library calls.
 *
 * bf_v8_exp: e^x = 2^n · e^r with n = round(x·log2 e) and r = x − n·ln 2 in two
 *   parts (0.693359375 has few bits, so n·0.693359375 is exact, and
 *   −2.12194440e-4 carries the rest); e^r on |r| ≤ ln2/2 by the degree-7
 *   minimax polynomial of the Cephes library's expf.  Relative error ≤ 2 ulp
 *   for x in [-87, 88]; x is clamped to that range first.
 * bf_v8_erf: Abramowitz and Stegun 7.1.26, erf x = 1 − t·P(t)·e^(−x²) with
 *   t = 1/(1 + 0.3275911·|x|), absolute error ≤ 1.5e-7 (about the spacing of
 *   floats near 1); below |x| = 0.8, where that form cancels, the Maclaurin
 *   series 2/√π·(x − x³/3 + x⁵/10 − …) to x¹⁷.  Odd in x.
 * tests/unit/test_vmath.c checks both against libm in double over a dense grid. */
#ifndef BF_VMATH_H
#define BF_VMATH_H

#include <stdint.h>
#include <string.h>


typedef float bf_v8f __attribute__((vector_size(32)));
typedef int32_t bf_v8i __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) bf_v8f bf_v8_load(const float *p)
{
    bf_v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void bf_v8_store(float *p, bf_v8f v) { memcpy(p, &v, sizeof v); }

/* mask ? a : b, the mask all ones or all zeros in each lane */
static inline __attribute__((always_inline)) bf_v8f bf_v8_select(bf_v8i mask, bf_v8f a, bf_v8f b)
{
    return (bf_v8f)((mask & (bf_v8i)a) | (~mask & (bf_v8i)b));
}

static inline __attribute__((always_inline)) bf_v8f bf_v8_exp(bf_v8f x)
{
    const bf_v8f lo = {-87, -87, -87, -87, -87, -87, -87, -87}, hi = {88, 88, 88, 88, 88, 88, 88, 88};
    x = bf_v8_select(x < lo, lo, x);
    x = bf_v8_select(x > hi, hi, x);
    /* round to nearest by adding 1.5·2^23: the sum's last bit is the integer */
    bf_v8f t = x * 1.44269504088896341f + 12582912.0f;
    bf_v8f n = t - 12582912.0f;
    bf_v8f r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    bf_v8f p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    bf_v8i e = (__builtin_convertvector(n, bf_v8i) + 127) << 23;   /* 2^n, n in [-126, 127] */
    return p * (bf_v8f)e;
}

static inline __attribute__((always_inline)) bf_v8f bf_v8_erf(bf_v8f x)
{
    const bf_v8i sign = {INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN};
    bf_v8f a = (bf_v8f)((bf_v8i)x & ~sign);
    bf_v8f t = 1.0f / (a * 0.3275911f + 1.0f);
    bf_v8f p = t * 1.061405429f - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    bf_v8f y = 1.0f - p * t * bf_v8_exp(-(a * a));
    /* below 0.8, where 1 − … cancels, the Maclaurin series (error < 3e-9) */
    bf_v8f a2 = a * a;
    bf_v8f s = a2 * 1.6462114e-6f - 1.4925650e-5f;
    s = s * a2 + 1.2055332e-4f;
    s = s * a2 - 8.5483270e-4f;
    s = s * a2 + 5.2239776e-3f;
    s = s * a2 - 2.6866170e-2f;
    s = s * a2 + 1.1283792e-1f;
    s = s * a2 - 3.7612639e-1f;
    s = s * a2 + 1.1283792f;
    y = bf_v8_select(a < 0.8f, s * a, y);
    return (bf_v8f)((bf_v8i)y | ((bf_v8i)x & sign));   /* odd: the sign of x */
}

#endif
