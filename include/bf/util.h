/* bf/util.h — allocation and small helpers (part: support).
 *
 * Small allocations (bf_x*) that fail go to the out-of-memory hook of
 * bf/log.h: they are bounded by validated sizes, so failing there means the
 * machine is out.  Large ones (bf_aligned_alloc, bf_pages_alloc) return NULL
 * with the library's message set (bf/error.h), for the caller to report. */
#ifndef BF_UTIL_H
#define BF_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "bf/error.h"

void *bf_xmalloc(size_t n);
void *bf_xcalloc(size_t n, size_t size);
void *bf_xrealloc(void *p, size_t n);
char *bf_xstrdup(const char *s);

/* 64-byte-aligned memory for tensor payloads; NULL (and bf_err) on failure. */
void *bf_aligned_alloc(size_t n);
void bf_aligned_free(void *p);
/* Scratch memory reused across calls: *buf (64-byte aligned, *cap bytes)
 * grown to at least n bytes, its old contents not kept; NULL (and bf_err)
 * on failure, with *buf freed.  Kept in _Thread_local variables, a
 * thread's scratch outlives its calls, so that a model's many products do
 * not each map, fault in and zero fresh pages. */
void *bf_aligned_scratch(void **buf, size_t *cap, size_t n);
/* Zeroed, page-aligned memory straight from the kernel: pages cost nothing
 * until first written, so a block that may never be touched (the gradients
 * of a model that is only evaluated) takes no memory.  NULL (with the
 * library's message) when the mapping fails; free with bf_pages_free(p, n). */
void *bf_pages_alloc(size_t n);
void bf_pages_free(void *p, size_t n);

/* Overflow-checked arithmetic: return 0 on success, -1 on overflow. */
static inline int bf_mul_u64(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_mul_overflow(a, b, out) ? -1 : 0; }
static inline int bf_add_u64(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_add_overflow(a, b, out) ? -1 : 0; }

/* Fixed-order sums in double, the same bits for the same inputs wherever
 * they run: eight partial sums added in a fixed tree, and Σ (x[i] − mu)^p
 * (p = 1 or 2) in eight interleaved partial sums (squares of 1e20 stay
 * finite) — the norms' row sums and the gradient's norm. */
static inline double bf_sum8_f64(const double acc[8])
{
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static inline __attribute__((always_inline)) double bf_sum_dev_f64(const float *x, float mu, size_t n, int p)
{
    double acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            double d = x[i + k] - mu;
            acc[k] += p == 2 ? d * d : d;
        }
    for (; i < n; i++) {
        double d = x[i] - mu;
        acc[i & 7] += p == 2 ? d * d : d;
    }
    return bf_sum8_f64(acc);
}

double bf_now(void);  /* monotonic seconds */
/* strerror(e) with a lower-case first letter, for one-line messages. */
const char *bf_strerror(int e);

#endif
