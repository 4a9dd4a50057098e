/* dist.c — the job's collective operations, or the one-process case (see
 * bf/dist.h). */
#include "bf/dist.h"
#include "bf/error.h"
#include "bf/util.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static bf_dist job;   /* size 0: no job, one process */

void bf_dist_set(const bf_dist *d)
{
    if (d && d->size > 1) job = *d;
    else memset(&job, 0, sizeof job);
}

int bf_dist_rank(void) { return job.size > 1 ? job.rank : 0; }
int bf_dist_size(void) { return job.size > 1 ? job.size : 1; }

void bf_dist_share(size_t n, size_t *lo, size_t *hi)
{
    size_t p = (size_t)bf_dist_size(), r = (size_t)bf_dist_rank(), q = n / p, e = n % p;
    *lo = r * q + (r < e ? r : e);
    *hi = *lo + bf_dist_share_size(n, (int)r);
}

size_t bf_dist_share_size(size_t n, int r)
{
    size_t p = (size_t)bf_dist_size();
    return n / p + ((size_t)r < n % p);
}

static double sum_seconds;
static unsigned long long sum_bytes;

void bf_dist_sum_stats(double *seconds, unsigned long long *bytes)
{
    *seconds = sum_seconds;
    *bytes = sum_bytes;
}

/* A sum's result, its time since t0 and its bytes counted. */
static int counted(int rc, double t0, size_t bytes)
{
    sum_seconds += bf_now() - t0;
    sum_bytes += bytes;
    return rc;
}

int bf_dist_sum_floats(float *x, size_t n)
{
    if (job.size <= 1) return 0;
    double t0 = bf_now();
    return counted(job.sum_floats(job.ctx, x, n), t0, n * sizeof *x);
}

int bf_dist_sum_doubles(double *x, size_t n)
{
    if (job.size <= 1) return 0;
    double t0 = bf_now();
    return counted(job.sum_doubles(job.ctx, x, n), t0, n * sizeof *x);
}
int bf_dist_max_floats(float *x, size_t n) { return job.size > 1 ? job.max_floats(job.ctx, x, n) : 0; }

int bf_dist_gather(const void *mine, size_t len, void *all)
{
    if (job.size > 1) return job.gather(job.ctx, mine, len, all);
    if (len) memmove(all, mine, len);
    return 0;
}

int bf_dist_bcast(void *buf, size_t len, int root) { return job.size > 1 ? job.bcast(job.ctx, buf, len, root) : 0; }

#define MAX_RANKS 4096

static int failed_together;   /* bf_dist_agree has returned -1 */

int bf_dist_failed_together(void) { return failed_together; }

int bf_dist_agree(int rc)
{
    if (job.size <= 1) return rc ? -1 : 0;
    if (job.size > MAX_RANKS) return bf_err("a job of %d ranks (at most %d)", job.size, MAX_RANKS);
    int32_t mine = rc ? 1 : 0, all[MAX_RANKS];
    if (job.gather(job.ctx, &mine, sizeof mine, all)) return -1;
    int first = -1;
    for (int k = 0; k < job.size && first < 0; k++)
        if (all[k]) first = k;
    if (first < 0) return 0;
    char msg[1024] = "";
    if (job.rank == first) snprintf(msg, sizeof msg, "%s", bf_errmsg());
    if (job.bcast(job.ctx, msg, sizeof msg, first)) return -1;
    msg[sizeof msg - 1] = 0;
    if (job.rank != first) bf_err("%s", msg);
    failed_together = 1;
    return -1;
}
