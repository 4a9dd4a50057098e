/* thread.c — a static-partition thread pool (see bf/thread.h). */
#include "bf/thread.h"
#include "bf/util.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define MAX_THREADS 1024   /* the programs' --threads takes 1 to 1024 */

static struct {
    int n;                      /* threads taking work, including the caller */
    int created;                /* threads that exist, including the caller */
    pthread_t tid[MAX_THREADS];
    unsigned long born[MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    atomic_ulong gen;           /* bumped for every job */
    atomic_int pending;         /* workers still running the job */
    int sleepers;               /* workers waiting on go (under mu) */
    int caller_waits;           /* the caller waiting on done (under mu) */
    int active;                 /* threads taking part in the job */
    bf_range_fn fn;
    void *ctx;
    size_t total;
} pool = {.n = 1, .created = 1, .mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

/* A thread that finds nothing to do spins SPIN pauses (52 µs on an AMD
 * EPYC, 26 ns a pause), then yields its core YIELDS times (some 0.55 ms when
 * nothing else wants it), and only then sleeps.  Jobs come back to back when
 * decoding (one per matrix of a layer), and in training between serial
 * parts (the loss, clipping, a ternary matrix's re-quantization) longer than
 * a short spin; a sleeping worker takes about 15 µs to wake.  Going to sleep
 * after the pauses alone, a worker slept and woke some fifty times a grok
 * training step (perf stat: 1435-1845 context switches in 30 steps); with
 * the yields, grok's float and ternary steps went 0.0728 → 0.0712 s and
 * 0.0706 → 0.0645 s, lm's float step 0.175 → 0.158 s (medians of four and
 * three runs in turn).  Yielding rather than spinning on leaves the core to
 * other processes on a busy machine (make -j, the test suite). */
#define SPIN 2000
#define YIELDS 1000

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* One round of waiting: whether to go on waiting before sleeping. */
static inline int keep_waiting(int round)
{
    if (round < SPIN) relax();
    else if (round < SPIN + YIELDS) sched_yield();
    else return 0;
    return 1;
}

static void run_share(int t)
{
    size_t a = pool.total * (size_t)t / (size_t)pool.active, b = pool.total * (size_t)(t + 1) / (size_t)pool.active;
    if (a < b) pool.fn(pool.ctx, a, b, t);
}

static void *worker(void *arg)
{
    int t = (int)(size_t)arg;
    pthread_mutex_lock(&pool.mu);
    unsigned long seen = pool.born[t];   /* the job count when this thread was made */
    pthread_mutex_unlock(&pool.mu);
    for (;;) {
        unsigned long g;
        for (int spin = 0; (g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen; spin++) {
            if (keep_waiting(spin)) continue;
            pthread_mutex_lock(&pool.mu);
            pool.sleepers++;
            while (atomic_load_explicit(&pool.gen, memory_order_acquire) == seen) pthread_cond_wait(&pool.go, &pool.mu);
            pool.sleepers--;
            pthread_mutex_unlock(&pool.mu);
        }
        seen = g;
        if (t < pool.active) run_share(t);
        if (atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool.mu);
            if (pool.caller_waits) pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.mu);
        }
    }
    return NULL;
}

void bf_threads_set(int n)
{
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    /* workers are made as needed and kept; a smaller n leaves some idle */
    pthread_mutex_lock(&pool.mu);
    for (int t = pool.created; t < n; t++) {
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pool.born[t] = pool.gen;
        int rc = pthread_create(&pool.tid[t], &at, worker, (void *)(size_t)t);
        pthread_attr_destroy(&at);
        if (rc) { n = t; break; }
        pool.created = t + 1;
    }
    pool.n = n;
    pthread_mutex_unlock(&pool.mu);
}

int bf_threads_get(void) { return pool.n; }

void bf_parallel(size_t n, size_t min_per_thread, bf_range_fn fn, void *ctx)
{
    if (!n) return;
    if (min_per_thread < 1) min_per_thread = 1;
    size_t want = n / min_per_thread;
    int active = want < (size_t)pool.n ? (int)(want ? want : 1) : pool.n;
    if (active <= 1) { fn(ctx, 0, n, 0); return; }
    /* the job is written before gen is bumped (release); a worker reads it
     * after it sees the new gen (acquire) */
    pool.fn = fn;
    pool.ctx = ctx;
    pool.total = n;
    pool.active = active;
    atomic_store_explicit(&pool.pending, pool.created - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool.gen, 1, memory_order_release);
    pthread_mutex_lock(&pool.mu);   /* a worker going to sleep checks gen under mu */
    if (pool.sleepers) pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.mu);
    run_share(0);
    for (int spin = 0; atomic_load_explicit(&pool.pending, memory_order_acquire); spin++) {
        if (keep_waiting(spin)) continue;
        pthread_mutex_lock(&pool.mu);
        pool.caller_waits = 1;
        while (atomic_load_explicit(&pool.pending, memory_order_acquire)) pthread_cond_wait(&pool.done, &pool.mu);
        pool.caller_waits = 0;
        pthread_mutex_unlock(&pool.mu);
    }
}

/* bf_parallel_chunks: a share a thread, of chunk indices [lo, hi) not yet
 * taken, lo | hi << 32, each on a line of its own: a thread's claims from
 * its own share stay in its cache until another thread steals. */
#define SHARES_MAX 64
struct share {
    _Alignas(64) uint64_t lohi;
};

typedef struct {
    struct share *share;
    size_t nth, n, chunk;
    bf_range_fn fn;
    void *ctx;
} chunk_job;

/* One chunk index from share s, at its front or back; 0 when none is left. */
static int share_take(struct share *s, int front, size_t *c)
{
    uint64_t v = atomic_load_explicit((_Atomic uint64_t *)&s->lohi, memory_order_relaxed);
    for (;;) {
        uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
        if (lo >= hi) return 0;
        uint64_t nv = front ? (uint64_t)(lo + 1) | (uint64_t)hi << 32 : (uint64_t)lo | (uint64_t)(hi - 1) << 32;
        if (atomic_compare_exchange_weak_explicit((_Atomic uint64_t *)&s->lohi, &v, nv, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *c = front ? lo : hi - 1;
            return 1;
        }
    }
}

static void run_chunk(const chunk_job *j, size_t c, int th)
{
    size_t a = c * j->chunk, b = a + j->chunk < j->n ? a + j->chunk : j->n;
    j->fn(j->ctx, a, b, th);
}

static void run_chunks(void *ctx, size_t t0, size_t t1, int th)
{
    const chunk_job *j = ctx;
    size_t c;
    for (size_t t = t0; t < t1; t++)
        for (size_t u = 0; u < j->nth; u++)   /* its own share from the front, then the others' from their backs */
            while (share_take(&j->share[(t + u) % j->nth], u == 0, &c)) run_chunk(j, c, th);
}

/* chunks [c0, c1), in order: the static split of more threads than shares */
static void run_chunk_range(void *ctx, size_t c0, size_t c1, int th)
{
    for (size_t c = c0; c < c1; c++) run_chunk(ctx, c, th);
}

void bf_parallel_chunks(size_t n, size_t chunk, bf_range_fn fn, void *ctx)
{
    if (!n) return;
    if (chunk < 1) chunk = 1;
    size_t nth = (size_t)pool.n, nchunk = (n + chunk - 1) / chunk;
    chunk_job j = {NULL, nth, n, chunk, fn, ctx};
    if (nth <= 1 || nchunk < 2) {
        run_chunk_range(&j, 0, nchunk, 0);
        return;
    }
    if (nth > SHARES_MAX || nchunk > UINT32_MAX) {
        bf_parallel(nchunk, 1, run_chunk_range, &j);
        return;
    }
    struct share share[SHARES_MAX];
    for (size_t t = 0; t < nth; t++)
        share[t].lohi = (uint64_t)(nchunk * t / nth) | (uint64_t)(nchunk * (t + 1) / nth) << 32;
    j.share = share;
    bf_parallel(nth < nchunk ? nth : nchunk, 1, run_chunks, &j);
}

size_t bf_parallel_grain(size_t work)
{
    if (!work) work = 1;
    return work >= 16384 ? 1 : (16384 + work - 1) / work;
}
