/* thread.c — a static-partition thread pool (see bf/thread.h). */
#include "bf/thread.h"
#include "bf/util.h"

#include <pthread.h>
#include <stdlib.h>

#define MAX_THREADS 256

static struct {
    int n;                      /* threads taking work, including the caller */
    int created;                /* threads that exist, including the caller */
    pthread_t tid[MAX_THREADS];
    unsigned long born[MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long gen;          /* bumped for every job */
    int pending;                /* workers still running the job */
    int active;                 /* threads taking part in the job */
    bf_range_fn fn;
    void *ctx;
    size_t total;
} pool = {.n = 1, .created = 1, .mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

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
        pthread_mutex_lock(&pool.mu);
        while (pool.gen == seen) pthread_cond_wait(&pool.go, &pool.mu);
        seen = pool.gen;
        int mine = t < pool.active;
        pthread_mutex_unlock(&pool.mu);
        if (mine) run_share(t);
        pthread_mutex_lock(&pool.mu);
        if (--pool.pending == 0) pthread_cond_signal(&pool.done);
        pthread_mutex_unlock(&pool.mu);
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
    pthread_mutex_lock(&pool.mu);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.total = n;
    pool.active = active;
    pool.pending = pool.created - 1;
    pool.gen++;
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.mu);
    run_share(0);
    pthread_mutex_lock(&pool.mu);
    while (pool.pending) pthread_cond_wait(&pool.done, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
}
