/* bf/thread.h — a small pool of threads for the library's own loops (part: support).
 *
 * Matrix products go through OpenBLAS's threads; the loops that are ours
 * (attention, norms, softmax, quantizers, integer kernels) go through this
 * pool.  Work is split statically — thread t of n takes tasks
 * [t·N/n, (t+1)·N/n) — so a given thread count always splits the same way
 * and results are reproducible.  An idle worker spins some tens of
 * microseconds, so that back-to-back loops (a decoded token's matrix
 * products) start at once, then sleeps on a condition variable, leaving the
 * cores to OpenBLAS between our loops. */
#ifndef BF_THREAD_H
#define BF_THREAD_H

#include <stddef.h>

/* fn(ctx, begin, end, thread): handle tasks [begin, end). */
typedef void (*bf_range_fn)(void *ctx, size_t begin, size_t end, int thread);

void bf_threads_set(int n);      /* pool size (1 = no threads); call once, early */
int bf_threads_get(void);
/* Runs fn over [0, n) split across the pool; returns when all are done.
 * min_per_thread keeps small loops on fewer threads (at least 1). */
void bf_parallel(size_t n, size_t min_per_thread, bf_range_fn fn, void *ctx);
/* A min_per_thread for tasks of `work` elementary operations each: enough
 * tasks that a thread gets some 16k operations, below which waking it costs
 * more than it saves. */
size_t bf_parallel_grain(size_t work);

#endif
