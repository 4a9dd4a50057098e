/* fuzz_experts — libFuzzer harness for the experts reader (bf/svf.h:
 * bf_experts_layout, then bf_experts_from_tset against the bf_svf that
 * bf_svf_create makes for that form and those targets; what bf-svf mix and
 * bf-svf apply read).
 *
 * Each input is read as a stream in memory (fuzz_read_set: the header and
 * every tensor the reader hands out, the trailer's checksum not required, so
 * that changed payload values reach the checker).  Its layout (form "svf" or
 * "scales", targets) gives the bf_svf of a tiny fixed model built once in
 * LLVMFuzzerInitialize (fuzz_common.h), as bf-svf does; the stream is read
 * against a bf_svf of each form, and only the form it names may accept it.
 * Experts that are accepted are written back (bf_experts_to_tset, all of
 * them) and read again: that must succeed with the same form, names and
 * values, bit for bit.  A finding is any crash, sanitizer report, leak,
 * timeout, large allocation or broken round trip.
 *
 *   make fuzz FUZZ_SECONDS=20
 *   build-fuzz/fuzz_experts CRASH-FILE            (replay one input)
 *
 * The seed corpus, tests/fuzz/corpus/fuzz_experts/, holds experts that
 * bf-svf train made for the fixed model (ok-*: both forms, mlp, attn and all
 * targets, expert names e1, e2, s1, s2), copies of them with a non-finite
 * value, a log-factor beyond ±16 or a tensor left out, and experts for
 * another model (bad-*):
 *
 *   D=tests/fuzz/corpus/fuzz_experts      (m.bf, d.bf, o.bf: scratch files)
 *   BF_FUZZ_MODEL=m.bf build-fuzz/fuzz_experts -runs=0      # the fixed model
 *   bin/bf-data seq --task reverse --n-train 8 --n-val 4 --min-len 2 --max-len 3 >d.bf
 *   train() { bin/bf-svf train --data d.bf --steps 2 --batch 4 -q "$@"; }
 *   train --name e1 m.bf >$D/ok-svf-mlp.bf
 *   train --name e2 --targets attn m.bf >$D/ok-svf-attn.bf
 *   train --kind scales --name s1 m.bf >$D/ok-scales-mlp.bf
 *   train --kind scales --name s2 --targets all m.bf >$D/ok-scales-all.bf
 *   obj/tools/bf-poke e1/blk.1.w3.svf_z 2 nan $D/ok-svf-mlp.bf >$D/bad-nan.bf
 *   obj/tools/bf-poke s1/blk.0.w2.log_scale 5 17 $D/ok-scales-mlp.bf >$D/bad-scale-17.bf
 *   obj/tools/bf-poke -d e2/blk.1.wk.svf_z $D/ok-svf-attn.bf >$D/bad-missing.bf
 *   bin/bf-init --vocab 256 --ctx 16 --d 8 --layers 2 --heads 2 --ff 16 >o.bf
 *   train --kind scales --name o1 o.bf >$D/bad-other-base.bf */
#include "fuzz_common.h"

#include "bf/svf.h"

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

static int same(const bf_experts *a, const bf_experts *b)
{
    if (a->form != b->form || a->base_digest != b->base_digest || a->nmat != b->nmat || a->nexp != b->nexp || a->n != b->n)
        return 0;
    for (size_t k = 0; k < a->nmat; k++)
        if (strcmp(a->mat[k], b->mat[k])) return 0;
    for (size_t k = 0; k < a->nexp; k++)
        if (strcmp(a->name[k], b->name[k])) return 0;
    return memcmp(a->z, b->z, a->nexp * a->n * sizeof(float)) == 0;
}

/* What was accepted under s, written back and read again. */
static void round_trip(const bf_experts *e, bf_svf *s)
{
    const char **names = malloc(e->nexp * sizeof *names);
    const float **z = malloc(e->nexp * sizeof *z);
    if (!names || !z) abort();
    for (size_t k = 0; k < e->nexp; k++) {
        names[k] = e->name[k];
        z[k] = e->z + k * e->n;
    }
    bf_header h;
    bf_tset t;
    bf_experts back;
    if (bf_experts_to_tset(s, names, z, e->nexp, &h, &t)) fuzz_fail("accepted experts do not write");
    bf_svf_form form;
    unsigned targets;
    if (bf_experts_layout(&h, &form, &targets) || form != s->form || targets != s->targets)
        fuzz_fail("accepted experts, written, name another layout");
    if (bf_experts_from_tset(&back, &h, &t, s)) fuzz_fail("accepted experts, written, do not read back");
    if (!same(e, &back)) fuzz_fail("accepted experts read back changed");
    bf_experts_free(&back);
    bf_tset_release(&t);
    bf_header_release(&h);
    free(names);
    free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bf_header h;
    bf_tset t;
    if (fuzz_read_set(data, size, &h, &t)) return 0;
    bf_svf_form form;
    unsigned targets;
    if (bf_experts_layout(&h, &form, &targets) == 0) {
        static const bf_svf_form forms[2] = {BF_SVF_FORM_SVF, BF_SVF_FORM_SCALES};
        for (int f = 0; f < 2; f++) {
            bf_svf s;
            if (bf_svf_create(&s, &model, forms[f], targets, 1, digest)) {
                if (s.mat || s.ps.params || s.src) fuzz_fail("a refused layout keeps memory");
                continue;
            }
            bf_experts e;
            if (bf_experts_from_tset(&e, &h, &t, &s) == 0) {
                if (forms[f] != form) fuzz_fail("experts read under a form their stream does not name");
                round_trip(&e, &s);
                bf_experts_free(&e);
            } else if (e.mat || e.name || e.z) {
                fuzz_fail("refused experts keep memory");
            }
            bf_svf_free(&s);
        }
    }
    bf_tset_release(&t);
    bf_header_release(&h);
    return 0;
}
