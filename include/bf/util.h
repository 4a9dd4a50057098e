/* bf/util.h — allocation, the library's error message, small helpers.
 *
 * Library functions report failure by returning -1 (or NULL) after setting
 * one message with bf_err(); programs print it through bf_die() (cli.h).
 * Small allocations that fail end the program ("out of memory"): they are
 * bounded by validated sizes, so failing there means the machine is out. */
#ifndef BF_UTIL_H
#define BF_UTIL_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define BF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BF_PRINTF(a, b)
#endif

extern const char *bf_progname;   /* for messages the library prints itself */
int bf_err(const char *fmt, ...) BF_PRINTF(1, 2);  /* sets the message, returns -1 */
const char *bf_errmsg(void);

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
