/* job.c — running under mpirun: the job's collective operations for the
 * library (bf/dist.h), over MPI when the programs are built with it (the
 * Makefile defines BF_HAVE_MPI when it finds mpicc). */
#include "cli.h"
#include "bf/dist.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The launcher's environment: OpenMPI's mpirun sets OMPI_COMM_WORLD_SIZE,
 * other launchers PMI_SIZE or PMIX_RANK. */
static int launched_as_job(void)
{
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n) n = getenv("PMI_SIZE");
    if (n) return atoi(n) > 1;
    return getenv("PMIX_RANK") != NULL;
}

#ifdef BF_HAVE_MPI
#include <mpi.h>

/* At most this many elements per MPI call, whose counts are ints. */
#define CHUNK (1u << 26)

static int mpi_fail(int rc, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "error %d", rc);
    return bf_err("MPI %s: %s", what, s);
}

/* The sum of n elements over the ranks, each element added in rank order by
 * the one rank that owns it: the n elements are cut into one part per
 * rank; every rank sends part k to rank k (all-to-all), rank k adds the
 * parts it got from ranks 0, 1, … in that order, and every rank gathers
 * the sums (all-gather).  The bytes moved are an all-reduce's, and the
 * order of the additions does not depend on MPI's choice of algorithm. */
static int sum_in_rank_order(void *x, size_t n, size_t esz, MPI_Datatype type, void (*add)(void *, const void *, size_t))
{
    int P, me;
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    int *cnt = bf_xmalloc(4 * (size_t)P * sizeof *cnt), *dsp = cnt + P, *rcnt = dsp + P, *rdsp = rcnt + P;
    size_t most = (n < CHUNK ? n : CHUNK) / (size_t)P + 1;
    unsigned char *parts = bf_xmalloc((size_t)P * most * esz);
    int rc = 0;
    for (size_t at = 0; at < n && !rc; at += CHUNK) {
        size_t len = n - at < CHUNK ? n - at : CHUNK, q = len / (size_t)P, e = len % (size_t)P;
        for (int k = 0, off = 0; k < P; k++) {
            cnt[k] = (int)(q + ((size_t)k < e));
            dsp[k] = off;
            off += cnt[k];
        }
        for (int k = 0; k < P; k++) {
            rcnt[k] = cnt[me];
            rdsp[k] = k * cnt[me];
        }
        unsigned char *base = (unsigned char *)x + at * esz;
        int r = MPI_Alltoallv(base, cnt, dsp, type, parts, rcnt, rdsp, type, MPI_COMM_WORLD);
        if (r != MPI_SUCCESS) { rc = mpi_fail(r, "all-to-all"); break; }
        for (int k = 1; k < P; k++) add(parts, parts + (size_t)k * (size_t)cnt[me] * esz, (size_t)cnt[me]);
        r = MPI_Allgatherv(parts, cnt[me], type, base, cnt, dsp, type, MPI_COMM_WORLD);
        if (r != MPI_SUCCESS) rc = mpi_fail(r, "all-gather");
    }
    free(parts);
    free(cnt);
    return rc;
}

static void add_floats(void *a, const void *b, size_t n)
{
    float *x = a;
    const float *y = b;
    for (size_t k = 0; k < n; k++) x[k] += y[k];
}

static void add_doubles(void *a, const void *b, size_t n)
{
    double *x = a;
    const double *y = b;
    for (size_t k = 0; k < n; k++) x[k] += y[k];
}

static int job_sum_floats(void *ctx, float *x, size_t n) { return sum_in_rank_order(x, n, sizeof *x, MPI_FLOAT, add_floats); }
static int job_sum_doubles(void *ctx, double *x, size_t n) { return sum_in_rank_order(x, n, sizeof *x, MPI_DOUBLE, add_doubles); }

static int job_max_floats(void *ctx, float *x, size_t n)
{
    for (size_t at = 0; at < n; at += CHUNK) {
        int r = MPI_Allreduce(MPI_IN_PLACE, x + at, (int)(n - at < CHUNK ? n - at : CHUNK), MPI_FLOAT, MPI_MAX, MPI_COMM_WORLD);
        if (r != MPI_SUCCESS) return mpi_fail(r, "all-reduce");
    }
    return 0;
}

static int job_gather(void *ctx, const void *mine, size_t len, void *all)
{
    if (len > CHUNK) return bf_err("MPI all-gather: %zu bytes a rank (at most %u)", len, CHUNK);
    int r = MPI_Allgather(mine, (int)len, MPI_BYTE, all, (int)len, MPI_BYTE, MPI_COMM_WORLD);
    return r == MPI_SUCCESS ? 0 : mpi_fail(r, "all-gather");
}

static int job_bcast(void *ctx, void *buf, size_t len, int root)
{
    for (size_t at = 0; at < len; at += CHUNK) {
        int r = MPI_Bcast((unsigned char *)buf + at, (int)(len - at < CHUNK ? len - at : CHUNK), MPI_BYTE, root, MPI_COMM_WORLD);
        if (r != MPI_SUCCESS) return mpi_fail(r, "broadcast");
    }
    return 0;
}

/* A clean exit finalizes MPI (mpirun expects it); a failing one does not,
 * so that it cannot wait for ranks that will never get there: mpirun sees
 * the status and ends the job. */
static void on_exit_finalize(int status, void *arg)
{
    if (status == 0) MPI_Finalize();
}

int bf_cli_job_begin(void)
{
    if (!launched_as_job()) return 0;
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) bf_die("MPI could not start");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    on_exit(on_exit_finalize, NULL);
    bf_dist d = {0};
    MPI_Comm_rank(MPI_COMM_WORLD, &d.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d.size);
    d.sum_floats = job_sum_floats;
    d.sum_doubles = job_sum_doubles;
    d.max_floats = job_max_floats;
    d.gather = job_gather;
    d.bcast = job_bcast;
    bf_dist_set(&d);
    return d.size;
}

#else

int bf_cli_job_begin(void)
{
    if (launched_as_job())
        bf_usage_die("started by an MPI launcher, but built without MPI (build with mpicc installed: make deps; make)");
    return 0;
}

#endif
