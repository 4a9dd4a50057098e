/* test_vmath — bf_v8_exp and bf_v8_erf (bf/vmath.h) against libm in double
 * over a dense grid, plus the clamps and the exact points.
 *
 * Tolerances: exp within 3·2^-23 relative (the header's 2 ulp for the
 * polynomial, one more for the rounding of p·2^n); erf within 2.7e-7
 * absolute (the approximation's 1.5e-7 plus float rounding of terms near 1,
 * where an ulp is 1.2e-7). */
#include "tap.h"

#include "bf/vmath.h"

#include <math.h>

static void eval8(bf_v8f (*f)(bf_v8f), const float *x, float *y)
{
    bf_v8_store(y, f(bf_v8_load(x)));
}

static bf_v8f vexp(bf_v8f x) { return bf_v8_exp(x); }
static bf_v8f verf(bf_v8f x) { return bf_v8_erf(x); }

int main(void)
{
    /* exp on [-87, 88]: 2^20 points plus every integer */
    double worst = 0, worst_at = 0;
    size_t npts = 1u << 20;
    for (size_t k = 0; k < npts; k += 8) {
        float x[8], y[8];
        for (int l = 0; l < 8; l++) x[l] = -87.0f + 175.0f * (float)(k + (size_t)l) / (float)npts;
        eval8(vexp, x, y);
        for (int l = 0; l < 8; l++) {
            double want = exp((double)x[l]), rel = fabs(y[l] - want) / want;
            if (rel > worst) { worst = rel; worst_at = x[l]; }
        }
    }
    ok(worst <= 3.0 * ldexp(1.0, -23), "exp over [-87, 88]: worst relative error %.3g at %.6g (≤ 3 ulp)", worst, worst_at);
    float z[8] = {0, 1, -1, 88, -87, 0.5f, -0.5f, 10}, e[8];
    eval8(vexp, z, e);
    ok(e[0] == 1.0f, "exp(0) = 1 exactly (%.9g)", e[0]);
    ok(fabs(e[1] - M_E) / M_E < 2.5e-7 && fabs(e[2] - 1 / M_E) * M_E < 2.5e-7, "exp(±1)");
    float big[8] = {100, 1000, INFINITY, -100, -1000, -INFINITY, 89, -88}, eb[8];
    eval8(vexp, big, eb);
    ok(isfinite(eb[0]) && eb[0] == eb[1] && eb[1] == eb[2] && eb[0] == eb[6], "above 88: clamped to exp(88), finite (%.6g)", eb[0]);
    ok(eb[3] > 0 && eb[3] == eb[4] && eb[4] == eb[5] && eb[3] == eb[7], "below -87: clamped to exp(-87) > 0 (%.6g)", eb[3]);

    /* erf on [-6, 6] */
    worst = 0;
    for (size_t k = 0; k < npts; k += 8) {
        float x[8], y[8];
        for (int l = 0; l < 8; l++) x[l] = -6.0f + 12.0f * (float)(k + (size_t)l) / (float)npts;
        eval8(verf, x, y);
        for (int l = 0; l < 8; l++) {
            double err = fabs(y[l] - erf((double)x[l]));
            if (err > worst) { worst = err; worst_at = x[l]; }
        }
    }
    ok(worst <= 2.7e-7, "erf over [-6, 6]: worst absolute error %.3g at %.6g (≤ 2.7e-7)", worst, worst_at);
    float w[8] = {0, -0.0f, 1e-30f, -1e-30f, 30, -30, INFINITY, -INFINITY}, ew[8];
    eval8(verf, w, ew);
    ok(ew[0] == 0 && ew[1] == 0 && fabsf(ew[2]) < 1e-7f && fabsf(ew[3]) < 1e-7f, "erf near 0 is 0 (to 1e-7)");
    ok(ew[4] == 1.0f && ew[5] == -1.0f && ew[6] == 1.0f && ew[7] == -1.0f, "erf(±30) and erf(±inf) = ±1");
    /* odd: erf(-x) = -erf(x) bit for bit */
    int odd = 1;
    for (int k = 0; k < 4096; k++) {
        float x[8], nx[8], y[8], ny[8];
        for (int l = 0; l < 8; l++) { x[l] = (float)(k * 8 + l) / 4096.0f; nx[l] = -x[l]; }
        eval8(verf, x, y);
        eval8(verf, nx, ny);
        for (int l = 0; l < 8; l++) odd &= y[l] == -ny[l];
    }
    ok(odd, "erf is odd, bit for bit");
    return tap_done();
}
