/* bf-tstat — statistics of every tensor in a stream, for the tests.
 *
 *   bf-tstat [STREAM]     (stdin when absent or "-")
 *
 * One line per tensor, in stream order:
 *
 *   NAME DTYPE NUMEL MEAN STD MIN MAX XXH3
 *
 * over the values as F32 (ternary tensors: their codes -1/0/+1), the
 * population standard deviation, accumulated in double; XXH3 is the 64-bit
 * hash of the payload bytes in hex.  An empty tensor prints 0 for the
 * statistics.  Errors: one line on stderr, exit 1. */
#include "bf/stream.h"
#include "bf/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>

int main(int argc, char **argv)
{
    if (argc > 2) {
        fputs("usage: bf-tstat [STREAM]\n", stderr);
        return 2;
    }
    bf_reader *r = bf_reader_open(argc == 2 ? argv[1] : NULL);
    if (!r) {
        fprintf(stderr, "bf-tstat: %s\n", bf_errmsg());
        return 1;
    }
    bf_tensor t;
    int rc;
    while ((rc = bf_reader_next(r, &t)) == 1) {
        uint64_t n = bf_tensor_numel(&t);
        double mean = 0, sd = 0, lo = 0, hi = 0;
        if (n) {
            float *x = bf_xmalloc((size_t)n * sizeof *x);
            if (bf_tensor_to_f32(&t, x)) {
                fprintf(stderr, "bf-tstat: %s\n", bf_errmsg());
                return 1;
            }
            double s = 0, ss = 0;
            lo = hi = x[0];
            for (uint64_t k = 0; k < n; k++) {
                s += x[k];
                if (x[k] < lo) lo = x[k];
                if (x[k] > hi) hi = x[k];
            }
            mean = s / (double)n;
            for (uint64_t k = 0; k < n; k++) ss += (x[k] - mean) * (x[k] - mean);
            sd = sqrt(ss / (double)n);
            free(x);
        }
        printf("%s %s %llu %.9g %.9g %.9g %.9g %016llx\n", t.name, bf_dtype_name(t.dtype), (unsigned long long)n,
               mean, sd, lo, hi, (unsigned long long)XXH3_64bits(t.data, (size_t)t.nbytes));
        bf_tensor_release(&t);
    }
    if (rc < 0) {
        fprintf(stderr, "bf-tstat: %s\n", bf_errmsg());
        return 1;
    }
    bf_reader_close(r);
    return fflush(stdout) ? 1 : 0;
}
