/* fuzz_adapter — libFuzzer harness for the LoRA adapter reader
 * (bf_adapter_from_tset, bf/lora.h; what bf-eval --adapter and bf-halfbake
 * --adapter read).
 *
 * Each input is read as a stream in memory (fuzz_read_set: the header and
 * every tensor the reader hands out, the trailer's checksum not required, so
 * that changed payload values reach the checker) and checked as an adapter
 * for a tiny fixed model built once in LLVMFuzzerInitialize (fuzz_common.h).
 * An adapter that is accepted is written back (bf_adapter_to_tset) and read
 * again: that must succeed and give the same rank, alpha, targets, merge
 * rule and values, bit for bit.  A refused one must keep no memory.  A
 * finding is any crash, sanitizer report, leak, timeout, large allocation or
 * broken round trip.
 *
 *   make fuzz FUZZ_SECONDS=20
 *   build-fuzz/fuzz_adapter CRASH-FILE            (replay one input)
 *
 * The seed corpus, tests/fuzz/corpus/fuzz_adapter/, holds adapters that
 * bf-bake --adapter-out made for the fixed model (ok-*: ranks 1 and 2, attn,
 * mlp and all targets, merge quant and latent), copies of them with a
 * non-finite value, a tensor left out or the trailer cut off, and an
 * adapter for another model (bad-*):
 *
 *   D=tests/fuzz/corpus/fuzz_adapter      (m.bf, d.bf, o.bf: scratch files)
 *   BF_FUZZ_MODEL=m.bf build-fuzz/fuzz_adapter -runs=0      # the fixed model
 *   bin/bf-data seq --task reverse --n-train 8 --n-val 4 --min-len 2 --max-len 3 >d.bf
 *   bake() { bin/bf-bake --lora --adapter-out --prompt 'R: ' --data d.bf --steps 2 --batch 4 "$@"; }
 *   bake --rank 2 --targets attn m.bf >$D/ok-attn-r2.bf
 *   bake --rank 1 --targets mlp m.bf >$D/ok-mlp-r1.bf
 *   bake --rank 2 --targets all --merge latent m.bf >$D/ok-all-latent.bf
 *   obj/tools/bf-poke blk.0.wq.lora_b 3 nan $D/ok-attn-r2.bf >$D/bad-nan.bf
 *   obj/tools/bf-poke -d blk.1.w2.lora_a $D/ok-all-latent.bf >$D/bad-missing.bf
 *   head -c -20 $D/ok-mlp-r1.bf >$D/bad-no-trailer.bf
 *   bin/bf-init --vocab 256 --ctx 16 --d 8 --layers 2 --heads 2 --ff 16 >o.bf
 *   bake --rank 2 --targets attn o.bf >$D/bad-other-base.bf */
#include "fuzz_common.h"

#include "bf/lora.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bf_model model;
static uint64_t digest;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_model(&model, &digest);
    return 0;
}

static int same(const bf_adapter *a, const bf_adapter *b)
{
    if (a->rank != b->rank || a->alpha != b->alpha || a->targets != b->targets || a->through_quant != b->through_quant ||
        a->nmat != b->nmat || a->ps.n != b->ps.n || a->ps.np != b->ps.np)
        return 0;
    for (size_t k = 0; k < a->nmat; k++)
        if (strcmp(a->mat[k], b->mat[k])) return 0;
    return memcmp(a->ps.params, b->ps.params, a->ps.n * sizeof(float)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bf_header h;
    bf_tset s;
    if (fuzz_read_set(data, size, &h, &s)) return 0;
    bf_adapter a;
    if (bf_adapter_from_tset(&a, &h, &s, &model, digest) == 0) {
        bf_header h2;
        bf_tset s2;
        bf_adapter b;
        if (bf_adapter_to_tset(&a, &h2, &s2)) fuzz_fail("an accepted adapter does not write");
        if (bf_adapter_from_tset(&b, &h2, &s2, &model, digest)) fuzz_fail("an accepted adapter, written, does not read back");
        if (!same(&a, &b)) fuzz_fail("an accepted adapter reads back changed");
        bf_adapter_free(&b);
        bf_tset_release(&s2);
        bf_header_release(&h2);
        bf_adapter_free(&a);
    } else if (a.mat || a.ps.p || a.ps.params || a.ps.grads || a.src) {
        fuzz_fail("a refused adapter keeps memory");   /* its fields may say how far it got; its memory is gone */
    }
    bf_tset_release(&s);
    bf_header_release(&h);
    return 0;
}
