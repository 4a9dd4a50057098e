/* fuzz_data — libFuzzer harness for data sets (bf_data_from_tset,
 * bf/dataset.h: what bf_data_load checks after reading, for every program
 * that takes --data).
 *
 * Each input is read as a stream in memory (fuzz_read_set: the header and
 * every tensor the reader hands out, the trailer's checksum not required, so
 * that changed tokens reach the checker) and loaded as a data set.  A data
 * set that is accepted must hold what the loader promises, checked here
 * again on its own: vocab and ctx in range, both splits I32 [rows, T] with
 * 1 <= T <= ctx when there are rows, every token in 0..vocab-1 and every
 * target in -1..vocab-1.  A refused one must keep no memory.  A finding is
 * any crash, sanitizer report, leak, timeout, large allocation or broken
 * promise.
 *
 *   make fuzz FUZZ_SECONDS=20
 *   build-fuzz/fuzz_data CRASH-FILE               (replay one input)
 *
 * The seed corpus, tests/fuzz/corpus/fuzz_data/, holds tiny data sets of
 * every generator (ok-*), bf-mkbad's valid stream (a "data" stream that
 * holds other tensors than the splits) and its copy with a flipped payload
 * bit (which the loader sees here, the checksum aside):
 *
 *   D=tests/fuzz/corpus/fuzz_data
 *   bin/bf-data modarith --p 5 --frac 0.5 >$D/ok-modarith.bf
 *   bin/bf-data seq --task reverse --n-train 8 --n-val 4 --min-len 2 --max-len 3 >$D/ok-seq-reverse.bf
 *   bin/bf-data seq --tasks copy,sort,increment --n-train 6 --n-val 3 --min-len 2 --max-len 3 >$D/ok-seq-tasks.bf
 *   bin/bf-data sudoku --size 4 --holes 4 --n-train 4 --n-val 2 >$D/ok-sudoku.bf
 *   printf 'the quick brown fox jumps over the lazy dog. the end.\n' >t.txt
 *   bin/bf-data text --file t.txt --ctx 8 --val-frac 0.25 >$D/ok-text.bf
 *   obj/tools/bf-mkbad valid >$D/bad-no-splits.bf
 *   obj/tools/bf-mkbad flipped-bit >$D/bad-flipped-bit.bf */
#include "fuzz_common.h"

#include "bf/dataset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_split(const bf_dataset *d, const char *name, const bf_split *sp)
{
    char nx[32], ny[32];
    snprintf(nx, sizeof nx, "%s.x", name);
    snprintf(ny, sizeof ny, "%s.y", name);
    const bf_tensor *x = bf_tset_find(&d->s, nx), *y = bf_tset_find(&d->s, ny);
    if (!x || !y || x->dtype != BF_I32 || y->dtype != BF_I32 || x->ndim != 2 || y->ndim != 2)
        fuzz_fail("an accepted split is not two I32 matrices");
    if (x->shape[0] != sp->rows || x->shape[1] != sp->T || y->shape[0] != sp->rows || y->shape[1] != sp->T ||
        (const void *)sp->x != x->data || (const void *)sp->y != y->data)
        fuzz_fail("an accepted split does not describe its tensors");
    if (sp->rows && (sp->T < 1 || sp->T > (size_t)d->ctx)) fuzz_fail("an accepted split's rows do not fit ctx");
    for (size_t k = 0; k < sp->rows * sp->T; k++)
        if (sp->x[k] < 0 || sp->x[k] >= d->vocab || sp->y[k] < -1 || sp->y[k] >= d->vocab)
            fuzz_fail("an accepted split holds a token outside the vocab");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bf_header h;
    bf_tset s;
    if (fuzz_read_set(data, size, &h, &s)) return 0;
    bf_dataset d;
    if (bf_data_from_tset("fuzz", &h, &s, &d) == 0) {
        if (strcmp(d.h.kind, "data") || d.vocab < 1 || d.vocab > BF_MAX_VOCAB || d.ctx < 1 || d.ctx > BF_MAX_CTX)
            fuzz_fail("an accepted data set has a bad kind, vocab or ctx");
        check_split(&d, "train", &d.train);
        check_split(&d, "val", &d.val);
        if (bf_data_split(&d, "train") != &d.train || bf_data_split(&d, "val") != &d.val) fuzz_fail("the splits are not found by name");
        bf_data_free(&d);
    } else if (d.s.t || d.h.meta || d.h.lineage) {
        fuzz_fail("a refused data set keeps memory");
    }
    if (s.t || s.n || h.meta || h.lineage) fuzz_fail("the loader did not take the set over");
    return 0;
}
