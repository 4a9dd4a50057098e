#!/usr/bin/env bats
# make install: programs, library, headers, man pages and a pkg-config file
# land under DESTDIR/PREFIX, and a program builds against them.

load helpers

@test "install-01 make install puts every part in place" {
    top=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    dest=$BATS_TEST_TMPDIR/root
    run make -C "$top" --no-print-directory install BUILD="${BF_BUILD:-.}" PREFIX=/opt/bf DESTDIR="$dest"
    assert_success
    for p in "$top"/cmd/bf-*.c; do
        n=$(basename "$p" .c)
        [ -x "$dest/opt/bf/bin/$n" ] || fail "missing program $n"
        [ -f "$dest/opt/bf/share/man/man1/$n.1" ] || fail "missing man page $n.1"
    done
    [ -f "$dest/opt/bf/lib/libbf.a" ]
    [ -f "$dest/opt/bf/include/bf/stream.h" ]
    [ -f "$dest/opt/bf/share/man/man5/bf-stream.5" ]
    [ -f "$dest/opt/bf/share/man/man7/bitforge.7" ]
    grep -q '^prefix=/opt/bf$' "$dest/opt/bf/lib/pkgconfig/bitforge.pc"
}

@test "install-02 a program builds against the installed library through pkg-config" {
    [ "${BF_BUILD:-.}" = . ] || skip "the library under test is a sanitizer build"
    top=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    dest=$BATS_TEST_TMPDIR/root
    make -C "$top" --no-print-directory install PREFIX=/opt/bf DESTDIR="$dest" >/dev/null
    cat >"$BATS_TEST_TMPDIR/t.c" <<'C'
#include <bf/stream.h>
#include <stdio.h>
int main(int argc, char **argv)
{
    bf_header h; bf_tset s;
    if (bf_read_all(argv[1], &h, &s)) { puts(bf_errmsg()); return 1; }
    printf("%s %zu\n", h.kind, s.n);
    return 0;
}
C
    flags=$(PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_PATH="$dest/opt/bf/lib/pkgconfig" \
            pkg-config --cflags --libs --static bitforge)
    cc -o "$BATS_TEST_TMPDIR/t" "$BATS_TEST_TMPDIR/t.c" $flags
    bf-init --vocab 7 --ctx 4 --d 8 --heads 2 -o "$BATS_TEST_TMPDIR/m.bf"
    run "$BATS_TEST_TMPDIR/t" "$BATS_TEST_TMPDIR/m.bf"
    assert_success
    assert_output "model 21"
}
