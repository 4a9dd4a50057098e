/* fuzz_reader — libFuzzer harness for the stream reader (bf-stream(5),
 * its READER LIMITS above all).
 *
 * Each input is read as a whole stream in memory (bf_reader_memopen: the
 * reader's one parser over a window that is never refilled, with the size
 * known as a regular file's is, so declared payload sizes are checked
 * against the bytes left before anything is allocated).  Every tensor is
 * read and released; the trailer is checked, and the reader must stay at
 * the end after it.  A finding is any crash, sanitizer report, leak,
 * timeout or large allocation (make fuzz runs with -rss_limit_mb=2048).
 * The pipe path (payload memory that grows as bytes arrive) is the same
 * parser fed by read(); tests/unit/test_stream.c reads every stream and
 * every cut of one through a file, a pipe and memory alike.
 *
 *   make fuzz FUZZ_SECONDS=20
 *   build-fuzz/fuzz_reader CRASH-FILE            (replay one input)
 *
 * The seed corpus, tests/fuzz/corpus/fuzz_reader/ (about 100 KB), holds the
 * test vectors (tests/vectors, as vec-*), three tiny bf-init models
 * (init-*), bf-mkbad's well-formed streams (ok-*) and its hostile cases
 * (bad-*) but for the three larger than -max_len, of which it keeps the
 * first bytes:
 *
 *   D=tests/fuzz/corpus/fuzz_reader
 *   for c in $(obj/tools/bf-mkbad list); do obj/tools/bf-mkbad $c >$D/bad-$c.bf; done
 *   for c in $(obj/tools/bf-mkbad list-valid); do obj/tools/bf-mkbad $c >$D/ok-$c.bf; done */
#include "bf/stream.h"
#include "bf/tensor.h"
#include "bf/util.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bf_reader *r = bf_reader_memopen(data, size, "fuzz");
    if (!r) return 0;
    const bf_header *h = bf_reader_header(r);
    if (!h->meta || !h->lineage || !h->kind[0]) abort();   /* the reader promises these */
    bf_tensor t;
    int rc;
    while ((rc = bf_reader_next(r, &t)) == 1) {
        if (t.nbytes && !t.data) abort();
        if (t.ndim < 0 || t.ndim > BF_MAX_DIMS || !t.name[0]) abort();
        uint64_t want;
        if (bf_tensor_size(t.dtype, t.ndim, t.shape, &want) || want != t.nbytes) abort();
        /* a payload comes from the input's own bytes: it cannot be longer */
        if (t.nbytes > size || bf_reader_offset(r) > size) abort();
        /* touch the payload's ends, so ASan sees a short allocation */
        if (t.nbytes) {
            volatile unsigned char *p = t.data;
            (void)p[0];
            (void)p[t.nbytes - 1];
        }
        bf_tensor_release(&t);
    }
    if (rc == 0 && (bf_reader_offset(r) != size || bf_reader_next(r, &t) != 0)) abort();   /* whole, and stays at the end */
    bf_reader_close(r);
    return 0;
}
