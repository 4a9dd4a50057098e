/* bf/rng.h — the random generator behind every seeded result (part: support).
 *
 * SplitMix64 (Steele, Lea, Flood 2014): a 64-bit state advanced by the odd
 * constant 0x9e3779b97f4a7c15 and passed through a 64-bit finalizer.  It is
 * splittable: bf_rng_derive(seed, label) makes an independent stream for a
 * named purpose (a tensor's initialization, a data split, a thread's rows),
 * so results do not depend on the order in which streams are used, nor on
 * the number of threads.
 *
 *   derive(seed, label) = state mix64(seed ^ mix64(xxh3(label)))
 *   next()              = mix64(state += γ)
 *   uniform()           = (next() >> 11) · 2^-53          in [0, 1)
 *   normal()            = Box–Muller on two uniforms, in double precision
 */
#ifndef BF_RNG_H
#define BF_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t state;
    int has_spare;
    double spare;
} bf_rng;

void bf_rng_seed(bf_rng *r, uint64_t seed);
bf_rng bf_rng_derive(uint64_t seed, const char *label);
bf_rng bf_rng_split(bf_rng *r);                 /* a child stream; advances r */
uint64_t bf_rng_next(bf_rng *r);
double bf_rng_uniform(bf_rng *r);               /* [0, 1) */
uint64_t bf_rng_below(bf_rng *r, uint64_t n);   /* uniform in [0, n), unbiased; n > 0 */
double bf_rng_normal(bf_rng *r);                /* N(0, 1) */
void bf_rng_shuffle_u32(bf_rng *r, uint32_t *a, uint64_t n);   /* Fisher–Yates */

#endif
