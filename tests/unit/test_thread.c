/* test_thread.c — the thread pool's splits (bf/thread.h).
 *
 * Every task runs exactly once, for many sizes and thread counts: each
 * call marks its tasks with atomic counters, so a task run twice or never
 * shows.  bf_parallel_chunks must call fn on its fixed chunks only, a chunk
 * a call, whichever thread takes it; and a thread that the test holds back
 * must find its chunks taken by the others. */
#include "tap.h"

#include "bf/thread.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    atomic_int *runs;        /* per task: how many times it ran */
    atomic_int bad_calls;    /* chunk calls not on a chunk's bounds */
    atomic_int by_thread[8]; /* tasks each thread ran */
    size_t chunk, n;
    int slow_thread;         /* this thread sleeps before each call (-1: none) */
} job;

static void mark(void *ctx, size_t a, size_t b, int th)
{
    job *j = ctx;
    if (th == j->slow_thread) nanosleep(&(struct timespec){0, 2000000}, NULL);
    if (j->chunk && (a % j->chunk || (b != a + j->chunk && b != j->n) || b <= a)) atomic_fetch_add(&j->bad_calls, 1);
    for (size_t i = a; i < b; i++) atomic_fetch_add(&j->runs[i], 1);
    if (th >= 0 && th < 8) atomic_fetch_add(&j->by_thread[th], (int)(b - a));
}

/* Runs one split of n tasks (chunk 0: bf_parallel) and checks that every
 * task ran once and every chunk call had a chunk's bounds. */
static void check(size_t n, size_t chunk, int threads, int slow_thread)
{
    bf_threads_set(threads);
    job j = {calloc(n ? n : 1, sizeof(atomic_int)), 0, {0}, chunk, n, slow_thread};
    if (chunk) bf_parallel_chunks(n, chunk, mark, &j);
    else bf_parallel(n, 1, mark, &j);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) wrong += atomic_load(&j.runs[i]) != 1;
    ok(wrong == 0 && atomic_load(&j.bad_calls) == 0, "%s n=%zu chunk=%zu threads=%d%s: every task once%s",
       chunk ? "bf_parallel_chunks" : "bf_parallel", n, chunk, threads, slow_thread >= 0 ? ", one thread slow" : "",
       chunk ? ", on the chunks' bounds" : "");
    if (wrong || j.bad_calls) diag("%zu tasks not run exactly once, %d calls off the chunks", wrong, atomic_load(&j.bad_calls));
    if (slow_thread >= 0) {
        /* thread 1 sleeps 2 ms a chunk; of 64 chunks it would own 32 in a
         * static split, and the other thread takes most of them */
        int slow = atomic_load(&j.by_thread[slow_thread]);
        ok(slow < (int)(n / 4), "a slow thread's chunks go to the other: it ran %d of %zu tasks", slow, n);
    }
    free(j.runs);
}

int main(void)
{
    size_t sizes[] = {0, 1, 7, 31, 32, 33, 64, 100, 1000, 4099};
    int threads[] = {1, 2, 3, 5};
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            check(sizes[s], 0, threads[t], -1);
            check(sizes[s], 32, threads[t], -1);
            check(sizes[s], 1, threads[t], -1);
        }
    check(64 * 16, 16, 2, 1);
    /* the programs' --threads goes to 1024; the pool holds that many (a
     * split of 1,000 chunks over 300 threads: the static split past
     * bf_parallel_chunks' 64 shares) */
    bf_threads_set(300);
    is_int(bf_threads_get(), 300, "300 threads asked for, 300 in the pool");
    check(1000, 1, 300, -1);
    check(1000, 0, 300, -1);
    bf_threads_set(1);
    return tap_done();
}
