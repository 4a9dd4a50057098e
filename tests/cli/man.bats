#!/usr/bin/env bats
# The manual pages (bitforge(7) lists them): every page under man/ is mdoc
# that passes `mandoc -Tlint -Wwarning` silently, every program has its
# section 1 page, and each section 1 page mentions every long option its
# program's --help lists.

load helpers

MAN=$_bf_root/man

# pages: every manual page under man/, one per line
pages() { find "$MAN" -type f -name '*.[1-9]' | sort; }

@test "man 01: the format and overview pages exist" {
    [[ -f $MAN/man5/bf-stream.5 ]] || fail "man/man5/bf-stream.5 is missing"
    [[ -f $MAN/man7/bitforge.7 ]] || fail "man/man7/bitforge.7 is missing"
}

@test "man 02: every page passes mandoc -Tlint -Wwarning with no output" {
    command -v mandoc >/dev/null || fail "mandoc is not installed (Debian: mandoc)"
    local p out bad=
    while read -r p; do
        out=$(mandoc -Tlint -Wwarning "$p" 2>&1) || true
        [[ -z $out ]] || bad+="$out"$'\n'
    done < <(pages)
    [[ -z $bad ]] || fail "mandoc lint:"$'\n'"$bad"
}

@test "man 03: every page is mdoc, not man(7)" {
    local p bad=
    while read -r p; do
        grep -q '^\.Dd' "$p" && grep -q '^\.Dt' "$p" && ! grep -q '^\.TH' "$p" || bad+=" ${p#"$_bf_root"/}"
    done < <(pages)
    [[ -z $bad ]] || fail "not mdoc:$bad"
}

@test "man 04: every cmd/bf-*.c has man/man1/bf-*.1" {
    local c name missing=
    for c in "$_bf_root"/cmd/bf-*.c; do
        [[ -e $c ]] || continue
        name=$(basename "$c" .c)
        [[ -f $MAN/man1/$name.1 ]] || missing+=" man/man1/$name.1"
    done
    [[ -z $missing ]] || fail "missing:$missing"
}

@test "man 05: each section 1 page mentions every long option of --help" {
    local page name opt missing=
    for page in "$MAN"/man1/bf-*.1; do
        [[ -e $page ]] || continue
        name=$(basename "$page" .1)
        [[ -x $BF_BIN/$name ]] || continue
        while read -r opt; do
            grep -Eq "(^|[ ])Fl -${opt#--}( |$)" "$page" || missing+=" $name:$opt"
        done < <("$BF_BIN/$name" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
    done
    [[ -z $missing ]] || fail "options not in the page:$missing"
}
