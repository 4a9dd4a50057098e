/* bf-poke — a copy of a stream with one F32 value changed, or one tensor
 * left out, for the tests.
 *
 *   bf-poke NAME INDEX VALUE [STREAM]
 *   bf-poke -d NAME [STREAM]
 *
 * Copies STREAM (stdin when absent or "-") to stdout through the library
 * writer, so the result is well-formed (count, checksum, alignment), with
 * element INDEX (row-major, from 0) of the F32 tensor NAME set to VALUE
 * (strtof: "nan", "inf", "-inf", "1e30" …), or with -d, without tensor NAME.
 * It makes streams whose only defect is in their numbers or their parts,
 * such as a model holding a non-finite weight or a ternary weight without
 * its scale.  The header (kind, meta, lineage) is copied unchanged.
 * Exit status: 1 when NAME is absent (or not F32, or too short), 2 usage. */
#include "bf/stream.h"
#include "bf/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fputs("usage: bf-poke NAME INDEX VALUE [STREAM] | bf-poke -d NAME [STREAM]\n", stderr);
    return 2;
}

int main(int argc, char **argv)
{
    const char *name, *path;
    int drop = argc > 1 && strcmp(argv[1], "-d") == 0;
    unsigned long long index = 0;
    float value = 0;
    if (drop) {
        if (argc < 3 || argc > 4) return usage();
        name = argv[2];
        path = argc == 4 ? argv[3] : NULL;
    } else {
        if (argc < 4 || argc > 5) return usage();
        char *end;
        name = argv[1];
        path = argc == 5 ? argv[4] : NULL;
        index = strtoull(argv[2], &end, 10);
        if (*end || end == argv[2]) return usage();
        value = strtof(argv[3], &end);
        if (*end || end == argv[3]) return usage();
    }
    bf_reader *r = bf_reader_open(path);
    if (!r) { fprintf(stderr, "bf-poke: %s\n", bf_errmsg()); return 1; }
    bf_writer *w = bf_writer_fdopen(1);
    if (!w || bf_writer_header(w, bf_reader_header(r))) { fprintf(stderr, "bf-poke: %s\n", bf_errmsg()); return 1; }
    bf_tensor t;
    int rc, found = 0;
    while ((rc = bf_reader_next(r, &t)) == 1) {
        if (strcmp(t.name, name) == 0) {
            found = 1;
            if (drop) { bf_tensor_release(&t); continue; }
            if (t.dtype != BF_F32 || index >= bf_tensor_numel(&t)) {
                fprintf(stderr, "bf-poke: '%s' is not F32 or has no element %llu\n", t.name, index);
                bf_writer_abort(w);
                return 1;
            }
            ((float *)t.data)[index] = value;
        }
        if (bf_writer_tensor(w, &t)) { fprintf(stderr, "bf-poke: %s\n", bf_errmsg()); return 1; }
        bf_tensor_release(&t);
    }
    if (rc < 0) { fprintf(stderr, "bf-poke: %s\n", bf_errmsg()); bf_writer_abort(w); return 1; }
    if (!found) { fprintf(stderr, "bf-poke: no tensor '%s'\n", name); bf_writer_abort(w); return 1; }
    bf_reader_close(r);
    return bf_writer_close(w) ? 1 : 0;
}
