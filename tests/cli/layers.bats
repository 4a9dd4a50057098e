#!/usr/bin/env bats
# The library's parts keep to their arrows (lib/layers, scripts/check-layers,
# docs/ARCHITECTURE.md), and the library never prints or exits.

load helpers

top() { cd "$BATS_TEST_DIRNAME/../.." && pwd; }

# a copy of what check-layers reads, to break on purpose
copy_tree() {
    mkdir -p "$BATS_TEST_TMPDIR/t"
    cp -r "$(top)/lib" "$(top)/include" "$(top)/scripts" "$BATS_TEST_TMPDIR/t/"
    rm -f "$BATS_TEST_TMPDIR/t/lib/libbf.a"
}

@test "layers-01 the library keeps to its arrows" {
    run "$(top)/scripts/check-layers"
    assert_success
    assert_output ""
}

@test "layers-02 an include across a forbidden arrow fails, naming file, line and arrow" {
    copy_tree
    sed -i '0,/#include "bf\/ternary.h"/s//#include "bf\/ternary.h"\n#include "bf\/model.h"/' "$BATS_TEST_TMPDIR/t/lib/stream/tensor.c"
    run "$BATS_TEST_TMPDIR/t/scripts/check-layers" "$BATS_TEST_TMPDIR/t"
    assert_failure
    assert_output --regexp '^check-layers: lib/stream/tensor\.c:[0-9]+: stream may not use model \(includes "bf/model\.h"\)$'
}

@test "layers-03 the kernels may not see the stream; a public header is checked by its own part" {
    copy_tree
    sed -i 's|#include "bf/dtype.h"|#include "bf/tensor.h"|' "$BATS_TEST_TMPDIR/t/include/bf/kernels.h"
    run "$BATS_TEST_TMPDIR/t/scripts/check-layers" "$BATS_TEST_TMPDIR/t"
    assert_failure
    assert_output --partial 'include/bf/kernels.h:'
    assert_output --partial 'kernels may not use stream'
}

@test "layers-04 a print or an exit in the library fails" {
    copy_tree
    printf 'static void f(void) { fprintf(stderr, "x"); }\n' >>"$BATS_TEST_TMPDIR/t/lib/quant/quant.c"
    printf 'static void g(void) { exit(1); }\n' >>"$BATS_TEST_TMPDIR/t/lib/model/eval.c"
    run "$BATS_TEST_TMPDIR/t/scripts/check-layers" "$BATS_TEST_TMPDIR/t"
    assert_failure
    assert_output --partial 'lib/quant/quant.c'
    assert_output --partial 'lib/model/eval.c'
    assert_output --partial 'does not print or exit'
}

@test "layers-05 a header of no part, a folder of no part, an include from elsewhere: each fails" {
    copy_tree
    : >"$BATS_TEST_TMPDIR/t/include/bf/stray.h"
    mkdir "$BATS_TEST_TMPDIR/t/lib/extra"
    sed -i '0,/#include "bf\/util.h"/s//#include "bf\/util.h"\n#include "..\/kernels\/kernels_avx512.h"/' "$BATS_TEST_TMPDIR/t/lib/quant/quant.c"
    run "$BATS_TEST_TMPDIR/t/scripts/check-layers" "$BATS_TEST_TMPDIR/t"
    assert_failure
    assert_output --partial 'include/bf/stray.h belongs to no part'
    assert_output --partial 'lib/extra: a folder that is no part'
    assert_output --partial 'from outside its own folder'
}

@test "layers-06 option tables and usage text are the programs': no getopt in the library" {
    run grep -rln 'getopt\|struct option' "$(top)/lib" "$(top)/include"
    assert_failure
}

# One forbidden arrow for each part that holds methods: the check names it.
forbid() {   # forbid FILE HEADER ARROW: FILE (under lib/) gains #include "bf/HEADER"
    copy_tree
    sed -i "0,/#include \"bf\//s//#include \"bf\/$2\"\n#include \"bf\//" "$BATS_TEST_TMPDIR/t/lib/$1"
    run "$BATS_TEST_TMPDIR/t/scripts/check-layers" "$BATS_TEST_TMPDIR/t"
    assert_failure
    assert_output --regexp "^check-layers: lib/${1//./\\.}:[0-9]+: $3 \(includes \"bf/${2//./\\.}\"\)$"
}

@test "layers-07 data generators may not use the model" {
    forbid data/tasks.c model.h 'data may not use model'
}

@test "layers-08 file formats may not use training" {
    forbid formats/gguf.c train.h 'formats may not use train'
}

@test "layers-09 the archive's codecs may not use the model" {
    forbid compress/compress_rans.c config.h 'compress may not use model'
}

@test "layers-10 adaptation may not use recursive reasoning or the formats" {
    forbid adapt/lora.c trm.h 'adapt may not use reason'
    forbid adapt/svf.c interop.h 'adapt may not use formats'
}

@test "layers-11 recursive reasoning may not use adaptation or the archive" {
    forbid reason/trm.c lora.h 'reason may not use adapt'
    forbid reason/trm.c compress.h 'reason may not use compress'
}

@test "layers-12 no circle of files in the built library" {
    run "$(top)/scripts/check-cycles" "$BF_BIN/../lib/libbf.a"
    assert_success
    assert_output ""
}

@test "layers-13 a circle of files fails, naming it" {
    cd "$BATS_TEST_TMPDIR"
    printf 'int b(void);\nint a(void) { return b(); }\n' >a.c
    printf 'int c(void);\nint b(void) { return c(); }\n' >b.c
    printf 'int a(void);\nint c(void) { return a(); }\n' >c.c
    printf 'int d(void) { return 0; }\n' >d.c
    cc -c a.c b.c c.c d.c
    ar rcs circle.a a.o b.o c.o d.o
    run "$(top)/scripts/check-cycles" circle.a
    assert_failure
    assert_output --regexp '^check-cycles: a circle of files: ([abc])\.c -> ([abc])\.c -> ([abc])\.c -> \1\.c$'
}
