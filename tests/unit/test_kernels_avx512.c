/* test_kernels_avx512 — the AVX-512 kernels' source, compiled here against
 * SIMDe's portable implementation of the intrinsics, against a plain int64
 * reference.  This checks the kernels' logic (block pairs, lone last blocks,
 * digit planes, int16 chains and their flushes, activation offsets) on any
 * machine.  The native build runs in test_kernels on CPUs that have AVX-512,
 * and in tests/emu/kernels-emu.bats (make check-emu) on emulated ones.
 * Both variants are checked: AVX-512BW (maddubs, int16 partial sums) and
 * VNNI (dpbusd into int32). */
#include "tap.h"
#include "kernel_cases.h"

#if __has_include(<simde/x86/avx512.h>)
#define BF_AVX512_EMULATED 1
#include "../../lib/kernels/kernels_avx512.c"

#include "bf/kernels.h"
#include "bf/rng.h"

#include <stdlib.h>
#include <string.h>

typedef int32_t (*row_fn)(const uint8_t *, const int8_t *, size_t);

static const struct {
    const char *name;
    row_fn tq2, tq1;
} variants[] = {
    {"avx512", bf_emu_row_dot_tq2_avx512, bf_emu_row_dot_tq1_avx512},
    {"avx512vnni", bf_emu_row_dot_tq2_avx512vnni, bf_emu_row_dot_tq1_avx512vnni},
};

typedef enum { RANDOM, PLUS_MIN, MINUS_MIN, PLUS_MAX, EVERY_BYTE } pattern;

static int8_t weight(pattern pat, bf_dtype pack, size_t o, size_t i, bf_rng *r)
{
    switch (pat) {
    case PLUS_MIN: case PLUS_MAX: return 1;
    case MINUS_MIN: return -1;
    case EVERY_BYTE: return every_byte_weight(pack == BF_TQ1, (unsigned)o, i);   /* row o: the digits of o */
    default: return (int8_t)((int)bf_rng_below(r, 3) - 1);
    }
}

static int8_t activation(pattern pat, bf_rng *r)
{
    return pat == PLUS_MIN || pat == MINUS_MIN ? -128 : pat == PLUS_MAX ? 127 : (int8_t)((int)bf_rng_below(r, 256) - 128);
}

/* Each row of a packed matrix through every variant's row kernel: Σ code·q
 * must equal Σ (w+1)·q exactly. */
static void check_rows(bf_dtype pack, size_t rows, size_t cols, pattern pat, uint64_t seed, const char *what)
{
    bf_rng r;
    bf_rng_seed(&r, seed);
    int8_t *w = malloc(rows * cols);
    for (size_t k = 0; k < rows * cols; k++) w[k] = weight(pat, pack, k / cols, k % cols, &r);
    bf_tmat m;
    bf_tmat_from_codes(&m, pack, w, rows, cols, NULL, 0);
    int8_t *q = calloc(m.kpad + 64, 1);
    for (size_t i = 0; i < cols; i++) q[i] = activation(pat, &r);
    size_t B = pack == BF_TQ1 ? 160 : 128;
    int8_t *qp = calloc(m.kpad + 64, 1);   /* the kernels' pair layout */
    bf_emu_pair_acts(q, B, m.kpad / B, qp);
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
        row_fn f = pack == BF_TQ1 ? variants[v].tq1 : variants[v].tq2;
        size_t wrong = 0;
        int64_t first_want = 0;
        int32_t first_got = 0;
        for (size_t o = 0; o < rows; o++) {
            int64_t want = 0;
            for (size_t i = 0; i < cols; i++) want += (int64_t)(w[o * cols + i] + 1) * q[i];
            int32_t got = f(m.blocks + o * m.row_bytes, qp, m.kpad / B);
            if (got != want && !wrong++) first_want = want, first_got = got;
        }
        if (!ok(wrong == 0, "%s %s %zux%zu (%zu blocks, %s): all rows exact", variants[v].name, pack == BF_TQ1 ? "TQ1" : "TQ2",
                rows, cols, m.kpad / B, what))
            diag("%zu wrong; first: got %d want %lld", wrong, first_got, (long long)first_want);
    }
    free(w);
    free(q);
    free(qp);
    bf_tmat_free(&m);
}

int main(void)
{
    bf_dtype packs[2] = {BF_TQ2, BF_TQ1};
    for (int p = 0; p < 2; p++) {
        bf_dtype pk = packs[p];
        size_t B = pk == BF_TQ1 ? 160 : 128;
        /* every block count to 9: pairs, a lone last block, the 4-block loop and its tails */
        for (size_t nb = 1; nb <= 9; nb++) check_rows(pk, 5, nb * B - (nb % 3), RANDOM, 100 + nb, "random");
        check_rows(pk, 3, 1, RANDOM, 6, "one column");
        check_rows(pk, 3, 4096, PLUS_MIN, 1, "all +1 x -128");
        check_rows(pk, 3, 11008, PLUS_MIN, 2, "all +1 x -128");
        check_rows(pk, 3, 11008, MINUS_MIN, 3, "all -1 x -128");
        check_rows(pk, 3, 11008, PLUS_MAX, 4, "all +1 x 127");
        check_rows(pk, pk == BF_TQ1 ? 243 : 256, 5 * B, EVERY_BYTE, 5, "every byte value");
    }
    return tap_done();
}

#else
int main(void)
{
    printf("1..0 # SKIP SIMDe headers (Debian libsimde-dev) are not installed\n");
    return 0;
}
#endif
