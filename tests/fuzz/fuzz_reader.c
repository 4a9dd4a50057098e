/* fuzz_reader — libFuzzer harness for the stream reader (bf-stream(5),
 * its READER LIMITS above all).
 *
 * Each input is read as a whole stream twice: from a memfd (a regular file,
 * so the reader knows how many bytes remain and checks declared payload sizes
 * against them) and from a pipe (no size known: payload memory has to grow as
 * bytes arrive).  Every tensor is read and released; the trailer is checked.
 * A finding is any crash, sanitizer report, leak, timeout or large
 * allocation (make fuzz runs with -rss_limit_mb=2048).
 *
 *   make fuzz FUZZ_SECONDS=20
 *   build-fuzz/fuzz_reader CRASH-FILE            (replay one input)
 *
 * The seed corpus, tests/fuzz/corpus/fuzz_reader/ (under 200 KB), holds the
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

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int memfd = -1;

static void read_all(int fd, const char *label)
{
    bf_reader *r = bf_reader_fdopen(fd, label);
    if (!r) return;
    const bf_header *h = bf_reader_header(r);
    if (!h->meta || !h->lineage || !h->kind[0]) abort();   /* the reader promises these */
    bf_tensor t;
    int rc;
    while ((rc = bf_reader_next(r, &t)) == 1) {
        if (t.nbytes && !t.data) abort();
        if (t.ndim < 0 || t.ndim > BF_MAX_DIMS || !t.name[0]) abort();
        uint64_t want;
        if (bf_tensor_size(t.dtype, t.ndim, t.shape, &want) || want != t.nbytes) abort();
        /* touch the payload's ends, so ASan sees a short allocation */
        if (t.nbytes) {
            volatile unsigned char *p = t.data;
            (void)p[0];
            (void)p[t.nbytes - 1];
        }
        bf_tensor_release(&t);
    }
    if (rc == 0 && bf_reader_next(r, &t) != 0) abort();     /* stays at the end */
    bf_reader_close(r);
}

static void from_memfd(const uint8_t *data, size_t size)
{
    if (memfd < 0) {
        memfd = memfd_create("fuzz_reader", MFD_CLOEXEC);
        if (memfd < 0) abort();
    }
    if (ftruncate(memfd, 0) || pwrite(memfd, data, size, 0) != (ssize_t)size || lseek(memfd, 0, SEEK_SET)) abort();
    read_all(memfd, "memfd");
}

static void from_pipe(const uint8_t *data, size_t size)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC)) abort();
    /* the whole input must fit the pipe, since one thread writes then reads */
    if (size > 65536 && fcntl(p[1], F_SETPIPE_SZ, (int)size) < (int)size) {
        close(p[0]);
        close(p[1]);
        return;
    }
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(p[1], data + off, size - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) abort();
        off += (size_t)n;
    }
    close(p[1]);
    read_all(p[0], "pipe");
    close(p[0]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    from_memfd(data, size);
    from_pipe(data, size);
    return 0;
}
