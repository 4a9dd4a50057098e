/* tap.h — a minimal Test Anything Protocol producer for the C unit tests.
 *
 *   ok(cond, "name %d", i);   is_int(got, want, "name");   is_near(got, want, tol, "name");
 *   return tap_done();        prints the plan and returns the exit status
 */
#ifndef BF_TAP_H
#define BF_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

static int tap_n, tap_failed;

static int tap_vok(int cond, const char *fmt, va_list ap)
{
    tap_n++;
    if (!cond) tap_failed++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    return cond;
}

__attribute__((format(printf, 2, 3), unused)) static int ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = tap_vok(cond, fmt, ap);
    va_end(ap);
    return r;
}

__attribute__((format(printf, 3, 4), unused)) static int is_int(long long got, long long want, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = tap_vok(got == want, fmt, ap);
    va_end(ap);
    if (!r) printf("#   got %lld, want %lld\n", got, want);
    return r;
}

/* |got - want| <= tol */
__attribute__((format(printf, 4, 5), unused)) static int is_near(double got, double want, double tol, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = tap_vok(fabs(got - want) <= tol, fmt, ap);
    va_end(ap);
    if (!r) printf("#   got %.9g, want %.9g (tolerance %.3g, off by %.3g)\n", got, want, tol, fabs(got - want));
    return r;
}

__attribute__((unused)) static void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("# ");
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

static int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
