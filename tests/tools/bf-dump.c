/* bf-dump — one tensor's values as text, for the tests.
 *
 *   bf-dump [-x] NAME [STREAM]   the values of tensor NAME
 *   bf-dump -m NAME [STREAM]     NAME's tensor-header meta as JSON (null: none)
 *
 * (stdin when STREAM is absent or "-").  Values print one line per row of
 * the last dimension (a 0-dim or 1-dim tensor is one line), separated by
 * spaces: integers in decimal, F32/F16/BF16 as %.9g (with -x, F32 as the 8
 * hex digits of its bits, so that comparisons are bit for bit), ternary
 * tensors as their codes -1/0/1.  The whole stream is read and verified.
 * Exit status: 1 when NAME is absent or the stream is bad, 2 usage. */
#include "bf/stream.h"
#include "bf/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int hex = 0, meta = 0, c;
    while ((c = getopt(argc, argv, "xm")) != -1) {
        if (c == 'x') hex = 1;
        else if (c == 'm') meta = 1;
        else goto usage;
    }
    if (optind >= argc || argc - optind > 2) goto usage;
    const char *want = argv[optind], *path = argc - optind == 2 ? argv[optind + 1] : NULL;
    bf_reader *r = bf_reader_open(path);
    if (!r) { fprintf(stderr, "bf-dump: %s\n", bf_errmsg()); return 1; }
    bf_tensor t;
    int rc, found = 0;
    while ((rc = bf_reader_next(r, &t)) == 1) {
        if (strcmp(t.name, want) != 0) { bf_tensor_release(&t); continue; }
        found = 1;
        if (meta) {
            if (t.meta) bf_val_json(stdout, t.meta);
            else fputs("null", stdout);
            putchar('\n');
            bf_tensor_release(&t);
            continue;
        }
        uint64_t n = bf_tensor_numel(&t), per = t.ndim ? t.shape[t.ndim - 1] : 1;
        const void *d = t.data;
        float *f = NULL;
        if (t.dtype == BF_F16 || t.dtype == BF_BF16 || bf_dtype_is_ternary(t.dtype)) {
            f = bf_xmalloc((size_t)(n ? n : 1) * sizeof *f);
            if (bf_tensor_to_f32(&t, f)) { fprintf(stderr, "bf-dump: %s\n", bf_errmsg()); return 1; }
        }
        for (uint64_t k = 0; k < n; k++) {
            switch (t.dtype) {
            case BF_F32: {
                float v = ((const float *)d)[k];
                if (hex) { uint32_t b; memcpy(&b, &v, 4); printf("%08x", b); }
                else printf("%.9g", v);
                break;
            }
            case BF_I8: printf("%d", ((const int8_t *)d)[k]); break;
            case BF_U8: printf("%u", ((const uint8_t *)d)[k]); break;
            case BF_I32: printf("%d", ((const int32_t *)d)[k]); break;
            case BF_I64: printf("%lld", (long long)((const int64_t *)d)[k]); break;
            default:
                if (bf_dtype_is_ternary(t.dtype)) printf("%d", (int)f[k]);
                else printf("%.9g", f[k]);
            }
            putchar(per && (k + 1) % per == 0 ? '\n' : ' ');
        }
        if (n == 0 || per == 0) putchar('\n');
        free(f);
        bf_tensor_release(&t);
    }
    if (rc < 0) { fprintf(stderr, "bf-dump: %s\n", bf_errmsg()); return 1; }
    bf_reader_close(r);
    if (!found) { fprintf(stderr, "bf-dump: no tensor '%s'\n", want); return 1; }
    return fflush(stdout) ? 1 : 0;
usage:
    fputs("usage: bf-dump [-x|-m] NAME [STREAM]\n", stderr);
    return 2;
}
