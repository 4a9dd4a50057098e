/* fuzz_rans — libFuzzer harness for the entropy coder (bf_rans_decode,
 * bf_rans_encode; bf/compress.h, lib/compress/compress_rans.c), the method
 * bf-compress uses for ternary codes by default.
 *
 * Each input is used twice.  As a member: its first 4 bytes (little-endian)
 * give the number of codes n (modulo 2^16, so that the codes' memory stays
 * small), the rest is decoded as an entropy member of n codes, which must
 * either fail or give n codes in {-1, 0, +1} from exactly those bytes.  As
 * codes: every byte b of the input is the code b mod 3 - 1; they are
 * encoded (at most bf_rans_bound(n) bytes, the bound written past being
 * caught by ASan) and decoded again, which must give them back; the member
 * less its last byte must then be refused.  A finding is any crash,
 * sanitizer report, leak, timeout, a broken round trip or a cut member
 * accepted.
 *
 *   make fuzz FUZZ_SECONDS=20
 *   build-fuzz/fuzz_rans CRASH-FILE               (replay one input)
 *
 * The seed corpus, tests/fuzz/corpus/fuzz_rans/, holds the entropy members
 * of ok-xz-entropy.bfz in fuzz_archive's corpus (a tiny ternary model's
 * seven matrices, with their code counts in front), and the 10 bytes of
 * an empty member (n 0):
 *
 *   D=tests/fuzz/corpus/fuzz_rans      (e.tar: a scratch file)
 *   xz -dc tests/fuzz/corpus/fuzz_archive/ok-xz-entropy.bfz >e.tar
 *   python3 - e.tar $D <<'EOF'
 *   import json, struct, sys, tarfile
 *   tar = tarfile.open(sys.argv[1])
 *   for e in json.load(tar.extractfile('manifest.json'))['tensors']:
 *       if e['method'] == 'entropy':
 *           n = e['shape'][0] * e['shape'][1]
 *           open('%s/ok-%s' % (sys.argv[2], e['name']), 'wb').write(struct.pack('<I', n) + tar.extractfile(e['member']).read())
 *   EOF
 *   printf '\0\0\0\0\0\0\0\200\0\0\0\0\200\0' >$D/ok-empty */
#include "bf/compress.h"
#include "bf/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what)
{
    fprintf(stderr, "finding: %s (last message: %s)\n", what, bf_errmsg());
    abort();
}

static void as_member(const uint8_t *data, size_t size)
{
    if (size < 4) return;
    uint64_t n = (uint64_t)data[0] | (uint64_t)data[1] << 8;   /* the two higher bytes are ignored */
    int8_t *codes = malloc(n ? n : 1);
    if (!codes) abort();
    memset(codes, 0x55, n);
    if (bf_rans_decode(data + 4, size - 4, codes, n) == 0)
        for (uint64_t k = 0; k < n; k++)
            if (codes[k] < -1 || codes[k] > 1) fail("a decoded code outside -1..1");
    free(codes);
}

static void round_trip(const uint8_t *data, size_t size)
{
    uint64_t n = size;
    int8_t *codes = malloc(n ? n : 1), *back = malloc(n ? n : 1);
    uint8_t *out = malloc(bf_rans_bound(n));
    if (!codes || !back || !out) abort();
    for (uint64_t k = 0; k < n; k++) codes[k] = (int8_t)(data[k] % 3) - 1;
    size_t len = bf_rans_encode(codes, n, out);
    if (len > bf_rans_bound(n)) fail("the encoder wrote past its bound");
    if (bf_rans_decode(out, len, back, n)) fail("an encoded member does not decode");
    if (n && memcmp(codes, back, n)) fail("an encoded member decodes to other codes");
    if (bf_rans_decode(out, len - 1, back, n) == 0) fail("a member less its last byte decodes");
    free(codes);
    free(back);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    as_member(data, size);
    round_trip(data, size);
    return 0;
}
