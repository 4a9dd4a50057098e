/* fuzz_common.h — what the harnesses of stream kinds share: reading a stream
 * in memory into a set, and the tiny fixed model that adapters and experts
 * are checked against (tests/fuzz/README). */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include "bf/config.h"
#include "bf/error.h"
#include "bf/model.h"
#include "bf/rng.h"
#include "bf/stream.h"
#include "bf/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A finding: what broke, and the library's last message, then abort. */
static inline void fuzz_fail(const char *what)
{
    fprintf(stderr, "finding: %s (last message: %s)\n", what, bf_errmsg());
    abort();
}

/* The header and every tensor the reader hands out, whether or not the
 * trailer then checks out: each tensor passed the reader's own checks, and
 * a payload the fuzzer changed must still reach the checker under test (the
 * trailer's XXH3-64 would otherwise turn away nearly every such change;
 * fuzz_reader is the trailer's harness).  0, or -1 when the stream header
 * does not read. */
static inline int fuzz_read_set(const uint8_t *data, size_t size, bf_header *h, bf_tset *s)
{
    memset(s, 0, sizeof *s);
    bf_reader *r = bf_reader_memopen(data, size, "fuzz");
    if (!r) return -1;
    bf_header_copy(h, bf_reader_header(r));
    bf_tensor t;
    while (bf_reader_next(r, &t) == 1) *bf_tset_add(s) = t;
    bf_reader_close(r);
    return 0;
}

/* The model adapters and experts are checked against: vocab 256 (bytes, so
 * that bf-bake's prompts fit), ctx 16, d 8, 2 layers of 2 heads, SwiGLU of
 * 16, float weights N(0, 0.02²) from the seed 1 and each tensor's name.
 * Its digest is what a stream made for it names as its base.  With
 * BF_FUZZ_MODEL=FILE in the environment it is also written to FILE, for the
 * programs that make the seed corpora. */
static inline void fuzz_model(bf_model *m, uint64_t *digest)
{
    bf_config c;
    bf_config_default(&c);
    c.vocab = 256;
    c.ctx = 16;
    c.d_model = 8;
    c.n_layer = 2;
    c.n_head = 2;
    c.d_ff = 16;
    c.act = BF_ACT_SWIGLU;
    if (bf_config_validate(&c)) goto fail;
    bf_header h;
    bf_header_init(&h, "model");
    bf_config_to_meta(&c, h.meta);
    size_t n;
    bf_param_spec *spec = bf_config_params(&c, &n);
    bf_tset s = {0};
    for (size_t k = 0; k < n; k++) {
        bf_tensor *t = bf_tset_add(&s);
        if (bf_tensor_init(t, spec[k].name, BF_F32, spec[k].ndim, spec[k].shape)) goto fail;
        float *x = t->data;
        bf_rng rng = bf_rng_derive(1, spec[k].name);
        for (uint64_t j = 0; j < bf_tensor_numel(t); j++)
            x[j] = spec[k].init == BF_INIT_NORMAL ? (float)(0.02 * bf_rng_normal(&rng))
                 : spec[k].init == BF_INIT_ONE    ? 1.0f
                 : spec[k].init == BF_INIT_CONST  ? (float)spec[k].std
                                                  : 0.0f;
    }
    free(spec);
    if (bf_model_from_tset(m, &h, &s)) goto fail;
    *digest = bf_tset_digest(&s);
    const char *out = getenv("BF_FUZZ_MODEL");
    if (out && bf_write_all(out, &h, &s)) goto fail;
    bf_tset_release(&s);
    bf_header_release(&h);
    return;
fail:
    fprintf(stderr, "fuzz_model: %s\n", bf_errmsg());
    abort();
}

#endif
