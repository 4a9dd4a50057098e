/* bf/thread.h — a small pool of threads for the library's loops (part: support).
 *
 * The library's loops (attention, norms, softmax, quantizers, the integer
 * kernels) and its float products (bf/blas.h, OpenBLAS called on one
 * thread a part) go through this pool.  bf_parallel splits work
 * statically — thread t of n takes tasks [t·N/n, (t+1)·N/n) — so a given
 * thread count always splits the same way.  bf_parallel_chunks splits it
 * into fixed chunks that a thread done with its own takes from the others:
 * the same chunks for any thread count and timing, for loops whose chunks'
 * results do not depend on which thread runs them.  An idle worker spins
 * some tens of microseconds, so that back-to-back loops (a decoded token's
 * matrix products) start at once, then yields its core a while, then
 * sleeps on a condition variable. */
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
/* Runs fn over [0, n) in the chunks [c·chunk, (c+1)·chunk) (the last one
 * shorter), one call each; returns when all are done.  Thread t takes the
 * chunks of its share [t·C/p, (t+1)·C/p) (C chunks, p threads) from the
 * front, then the others' from their backs, so that a thread the machine
 * slows down does not hold the rest waiting.  One chunk, or one thread,
 * runs on the caller; more than 64 threads split the chunks statically. */
void bf_parallel_chunks(size_t n, size_t chunk, bf_range_fn fn, void *ctx);
/* A min_per_thread for tasks of `work` elementary operations each: enough
 * tasks that a thread gets some 16k operations, below which waking it costs
 * more than it saves. */
size_t bf_parallel_grain(size_t work);

#endif
