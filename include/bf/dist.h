/* bf/dist.h — several processes that train or evaluate one model together
 * (data parallelism), as a launcher such as mpirun started them (part:
 * support).
 *
 * The library never starts or joins a job: a program that runs under one
 * hands it the job's collective operations once, early (bf_dist_set), and
 * from then on the library's loops share their work.  Every rank runs the
 * same program on the same inputs and settings; a rank takes its share of
 * each batch's rows, the ranks sum their gradients, and every rank applies
 * the same update, so every rank holds the same parameters, bit for bit.
 * Without bf_dist_set (or with a job of one) every call below is the
 * single-process case: shares are everything, sums change nothing.
 *
 * Every operation is collective: each rank calls it, in the same order,
 * with the same sizes.  Each returns 0, or -1 and bf_err. */
#ifndef BF_DIST_H
#define BF_DIST_H

#include <stddef.h>

typedef struct {
    int rank, size;
    void *ctx;
    /* x[k] ← Σ over ranks of x[k], added in rank order (rank 0's first), so
     * every rank gets the same bits and reruns of a job of the same size
     * give the same sums */
    int (*sum_floats)(void *ctx, float *x, size_t n);
    int (*sum_doubles)(void *ctx, double *x, size_t n);
    /* x[k] ← max over ranks */
    int (*max_floats)(void *ctx, float *x, size_t n);
    /* all ← every rank's len bytes of mine, in rank order (size·len bytes) */
    int (*gather)(void *ctx, const void *mine, size_t len, void *all);
    /* buf ← root's len bytes */
    int (*bcast)(void *ctx, void *buf, size_t len, int root);
} bf_dist;

/* The job's operations (copied), or NULL: one process. */
void bf_dist_set(const bf_dist *d);
int bf_dist_rank(void);
int bf_dist_size(void);

/* This rank's share [*lo, *hi) of n items: contiguous, in rank order, sizes
 * differing by one at most (n/size, the first n%size ranks one more). */
void bf_dist_share(size_t n, size_t *lo, size_t *hi);
/* How many of n items rank r's share holds (rank 0's is the largest): what
 * a rank reading gathered shares in rank order steps by. */
size_t bf_dist_share_size(size_t n, int r);

int bf_dist_sum_floats(float *x, size_t n);
int bf_dist_sum_doubles(double *x, size_t n);
int bf_dist_max_floats(float *x, size_t n);
/* The wall time spent in the two sums so far (waiting for the other ranks
 * included) and the bytes summed (a rank's own, n·size of element). */
void bf_dist_sum_stats(double *seconds, unsigned long long *bytes);
int bf_dist_gather(const void *mine, size_t len, void *all);
int bf_dist_bcast(void *buf, size_t len, int root);

/* Whether every rank succeeded: rc is this rank's result (0 or -1, with
 * bf_err set on failure).  -1 on every rank when any failed, each with the
 * message of the lowest failing rank; 0 otherwise.  A loop calls it where a
 * rank could fail alone (its share's forward), so that no rank goes on to
 * wait for one that has stopped. */
int bf_dist_agree(int rc);
/* Whether a bf_dist_agree has returned -1: every rank then stops with the
 * same message (a program lets rank 0 alone say it). */
int bf_dist_failed_together(void);

#endif
