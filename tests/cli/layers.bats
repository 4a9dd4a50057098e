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
