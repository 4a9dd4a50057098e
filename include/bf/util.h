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
/* Zeroed, page-aligned memory straight from the kernel: pages cost nothing
 * until first written, so a block that may never be touched (the gradients
 * of a model that is only evaluated) takes no memory.  NULL (with the
 * library's message) when the mapping fails; free with bf_pages_free(p, n). */
void *bf_pages_alloc(size_t n);
void bf_pages_free(void *p, size_t n);

/* Overflow-checked arithmetic: return 0 on success, -1 on overflow. */
static inline int bf_mul_u64(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_mul_overflow(a, b, out) ? -1 : 0; }
static inline int bf_add_u64(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_add_overflow(a, b, out) ? -1 : 0; }

double bf_now(void);  /* monotonic seconds */
/* strerror(e) with a lower-case first letter, for one-line messages. */
const char *bf_strerror(int e);

#endif
