/* rng.c — SplitMix64 and the distributions built on it (see bf/rng.h). */
#include "bf/rng.h"

#include <math.h>
#include <string.h>
#include <xxhash.h>

#define GAMMA 0x9e3779b97f4a7c15ULL

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void bf_rng_seed(bf_rng *r, uint64_t seed)
{
    r->state = mix64(seed);
    r->has_spare = 0;
    r->spare = 0;
}

bf_rng bf_rng_derive(uint64_t seed, const char *label)
{
    bf_rng r;
    bf_rng_seed(&r, seed ^ mix64(XXH3_64bits(label, strlen(label))));
    return r;
}

uint64_t bf_rng_next(bf_rng *r) { return mix64(r->state += GAMMA); }

bf_rng bf_rng_split(bf_rng *r)
{
    bf_rng c;
    bf_rng_seed(&c, bf_rng_next(r));
    return c;
}

double bf_rng_uniform(bf_rng *r) { return (double)(bf_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t bf_rng_below(bf_rng *r, uint64_t n)
{
    /* rejection on the top of the range keeps every value equally likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = bf_rng_next(r); while (x >= limit);
    return x % n;
}

double bf_rng_normal(bf_rng *r)
{
    if (r->has_spare) { r->has_spare = 0; return r->spare; }
    double u1, u2;
    do u1 = bf_rng_uniform(r); while (u1 <= 0.0);
    u2 = bf_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

void bf_rng_shuffle_u32(bf_rng *r, uint32_t *a, uint64_t n)
{
    for (uint64_t k = n; k > 1; k--) {
        uint64_t j = bf_rng_below(r, k);
        uint32_t t = a[k - 1];
        a[k - 1] = a[j];
        a[j] = t;
    }
}
