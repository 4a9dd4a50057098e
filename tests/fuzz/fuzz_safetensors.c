/* fuzz_safetensors — libFuzzer harness for the safetensors reader
 * (bf_st_parse, bf-import(1)'s rules).
 *
 * Each input is parsed as a safetensors file, the configuration completed
 * as bf-import --heads 1 --ctx 4 would.  What parses is written back
 * (bitforge names, ternary packed, floats as F32) and parsed again: that
 * must succeed and give the same tensors, byte for byte (F16 and BF16
 * ones: the same values as F32).  A finding is any crash, sanitizer
 * report, leak, timeout or large allocation.
 *
 *   make fuzz FUZZ_SECONDS=20
 *   build-fuzz/fuzz_safetensors CRASH-FILE      (replay one input)
 *
 * The seed corpus, tests/fuzz/corpus/fuzz_safetensors/, holds tiny models
 * exported every way (ok-*) and the hostile cases of tests/tools/bf-mkbadst.c
 * (bad-*):
 *
 *   D=tests/fuzz/corpus/fuzz_safetensors
 *   for c in $(obj/tools/bf-mkbadst list); do obj/tools/bf-mkbadst $c >$D/bad-$c; done */
#include "bf/interop.h"
#include "bf/stream.h"
#include "bf/tensor.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* a and b hold the same values: the same bytes, or a's F16/BF16 values as b's F32 */
static int same(const bf_tensor *a, const bf_tensor *b)
{
    if (strcmp(a->name, b->name)) return 0;
    if (a->dtype == b->dtype) return a->nbytes == b->nbytes && (!a->nbytes || memcmp(a->data, b->data, a->nbytes) == 0);
    if ((a->dtype != BF_F16 && a->dtype != BF_BF16) || b->dtype != BF_F32) return 0;
    uint64_t n = bf_tensor_numel(a);
    if (b->nbytes != 4 * n) return 0;
    float *x = malloc(n ? 4 * n : 4);
    if (!x || bf_tensor_to_f32(a, x)) abort();
    const float *y = b->data;
    int ok = 1;
    for (uint64_t k = 0; k < n && ok; k++) ok = x[k] == y[k] || (isnan(x[k]) && isnan(y[k]));
    free(x);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bf_st_import_opts o = {.names = BF_NAMES_AUTO, .n_head = 1, .ctx = 4, .act = -1, .act_bits = -1};
    bf_header h;
    bf_tset s;
    if (bf_st_parse(data, size, "fuzz", &o, &h, &s)) {
        if (s.n) abort();   /* nothing is handed out on failure */
        bf_header_release(&h);
        return 0;
    }
    bf_st_opts w = {.names = BF_NAMES_BITFORGE, .float_dtype = BF_F32, .packed = 1};
    uint8_t *buf;
    size_t len;
    if (bf_st_write(&h, &s, &w, &buf, &len) == 0) {
        bf_header h2;
        bf_tset s2;
        if (bf_st_parse(buf, len, "again", &o, &h2, &s2)) abort();
        if (s2.n != s.n) abort();
        for (size_t k = 0; k < s.n; k++)
            if (!same(&s.t[k], &s2.t[k])) abort();
        bf_tset_release(&s2);
        bf_header_release(&h2);
        free(buf);
    }
    bf_tset_release(&s);
    bf_header_release(&h);
    return 0;
}
