/* fuzz_archive — libFuzzer harness for the archive reader and its manifest
 * (bf_cz_memopen, bf_cz_next: what bf-compress -d reads; bf/compress.h).
 *
 * Each input is read as a bf-compress archive in memory: the manifest
 * checked, then every member decoded into a tensor by its method (raw,
 * tq2, tq1, entropy, f32, f16, int8, seedlm4, seedlm3, vq), each tensor
 * checked against what the reader promises (its payload the size its dtype
 * and shape make, both ends touched so that ASan sees a short allocation)
 * and released; an archive read to its end must stay at its end.  A
 * finding is any crash, sanitizer report, leak, timeout or large
 * allocation (make fuzz runs with -rss_limit_mb=2048; the reader may
 * restore up to BF_CZ_RESTORE_SLACK plus BF_CZ_MAX_EXPANSION times the
 * bytes read, which an input under -max_len keeps below it).
 *
 *   make fuzz FUZZ_SECONDS=20
 *   build-fuzz/fuzz_archive CRASH-FILE            (replay one input)
 *
 * The seed corpus, tests/fuzz/corpus/fuzz_archive/, holds archives of a
 * tiny ternary model under every method and both codecs (ok-*), and
 * bf-mkbadz's valid archive and its hostile cases (bad-*).  Those about the
 * codec's bytes (not an archive, empty, cut, corrupted, a 17 MiB manifest)
 * are xz as bf-mkbadz makes them; the others, and the valid one, are plain
 * tar (bf-mkbadz raw): libarchive reads an unfiltered tar too, and there the
 * fuzzer's changes reach the manifest and the members instead of failing
 * the codec's check.  A few cases whose branch another one takes already
 * are left out, for size:
 *
 *   D=tests/fuzz/corpus/fuzz_archive      (q.bf: a scratch file)
 *   bin/bf-init --vocab 16 --ctx 8 --d 8 --layers 1 --heads 2 --ff 16 | bin/bf-quantize --keep-latent >q.bf
 *   bin/bf-compress q.bf >$D/ok-xz-entropy.bfz
 *   bin/bf-compress --codec zstd --ternary tq1 --float int8 q.bf >$D/ok-zstd-tq1-int8.bfz
 *   bin/bf-compress --ternary tq2 --float f32 q.bf >$D/ok-xz-tq2-f32.bfz
 *   bin/bf-compress --float seedlm4 --method 'blk.0.w*.latent=seedlm3' q.bf >$D/ok-xz-seedlm.bfz
 *   bin/bf-compress --codec zstd --float vq q.bf >$D/ok-zstd-vq.bfz
 *   obj/tools/bf-mkbadz valid >$D/ok-mkbadz-valid.bfz
 *   obj/tools/bf-mkbadz raw valid >$D/ok-mkbadz-valid.tar
 *   codec='not-archive|empty|truncated-.*|corrupt-middle|manifest-huge'
 *   for c in $(obj/tools/bf-mkbadz list | grep -xE "$codec"); do obj/tools/bf-mkbadz $c >$D/bad-$c.bfz; done
 *   for c in $(obj/tools/bf-mkbadz list | grep -vxE "$codec|absolute|shape-float|too-many-dims|wrong-format|bytes-string"); do
 *       obj/tools/bf-mkbadz raw $c >$D/bad-$c.tar
 *   done */
#include "bf/compress.h"
#include "bf/stream.h"
#include "bf/tensor.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void fail(const char *what)
{
    fprintf(stderr, "finding: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bf_cz_reader *r = bf_cz_memopen(data, size, "fuzz");
    if (!r) return 0;
    const bf_header *h = bf_cz_header(r);
    if (!h->meta || !h->lineage || !h->kind[0]) fail("the header lacks kind, meta or lineage");
    bf_tensor t;
    int rc;
    while ((rc = bf_cz_next(r, &t)) == 1) {
        if (t.nbytes && !t.data) fail("a tensor without its payload");
        if (t.ndim < 0 || t.ndim > BF_MAX_DIMS || !t.name[0]) fail("a tensor with a bad name or shape");
        uint64_t want;
        if (bf_tensor_size(t.dtype, t.ndim, t.shape, &want) || want != t.nbytes) fail("a payload of the wrong size");
        if (t.nbytes) {
            volatile unsigned char *p = t.data;
            (void)p[0];
            (void)p[t.nbytes - 1];
        }
        bf_tensor_release(&t);
    }
    if (rc == 0 && bf_cz_next(r, &t) != 0) fail("an archive read to its end does not stay there");
    bf_cz_close(r);
    return 0;
}
