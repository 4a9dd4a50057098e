# helpers.bash — shared setup for the bats files (load helpers).
#
# Environment (set by `make test`; defaults let a bats file run by hand from
# the repository):
#   BF_BIN     the programs under test (bin/ or build-asan/bin/)
#   BF_TOOLS   compiled tests/tools/*.c helpers (obj/tools/)
#   BF_VECTORS the test vectors (tests/vectors in the repository)
#
# Every test runs in its own empty temporary directory, $T (also the current
# directory), which bats removes afterwards.

bats_require_minimum_version 1.5.0

bf_load_lib() {
    local d
    for d in ${BATS_LIB_PATH//:/ } /usr/lib/bats /usr/local/lib/bats /usr/share/bats; do
        if [[ -f $d/$1/load.bash ]]; then
            # shellcheck disable=SC1090
            source "$d/$1/load.bash"
            return 0
        fi
    done
    echo "helpers.bash: $1 not found (Debian: apt-get install $1)" >&2
    return 1
}
bf_load_lib bats-support
bf_load_lib bats-assert

_bf_root=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
BF_BIN=${BF_BIN:-$_bf_root/bin}
BF_TOOLS=${BF_TOOLS:-$_bf_root/obj/tools}
BF_VECTORS=${BF_VECTORS:-$_bf_root/tests/vectors}
VECTORS=$BF_VECTORS
export BF_BIN BF_TOOLS BF_VECTORS
PATH=$BF_BIN:$BF_TOOLS:$PATH

bf_setup() {
    T=$BATS_TEST_TMPDIR
    cd "$T" || return 1
}

setup() { bf_setup; }

# run3 CMD…: runs CMD with stdout in $T/out (binary-safe) and stderr in
# $T/err; sets $status and $stderr (the text of stderr).  Never fails itself.
run3() {
    status=0
    "$@" >"$T/out" 2>"$T/err" || status=$?
    stderr=$(<"$T/err")
}

# one_line_reason FILE PROG: prints why FILE is not exactly one message line
# "PROG: …" ending in a newline, free of control characters; nothing if it
# is.  Pure bash: the hostile table calls it hundreds of times.
one_line_reason() {
    local LC_ALL=C text= body nl
    IFS= read -r -d '' text <"$1" || true
    nl=${text//[!$'\n']/}
    body=${text%$'\n'}
    if [[ -z $text ]]; then echo "nothing on stderr"
    elif [[ ${#nl} -ne 1 ]]; then echo "${#nl} lines, not 1"
    elif [[ $text != *$'\n' ]]; then echo "no newline at the end"
    elif [[ $body =~ [[:cntrl:]] ]]; then echo "control characters in the line"
    elif [[ $body != "$2: "* ]]; then echo "does not start with '$2: '"
    fi
}

# assert_one_error PROG: $T/err (from run3) is exactly one "PROG: …" line.
assert_one_error() {
    local why
    why=$(one_line_reason "$T/err" "$1")
    [[ -z $why ]] || fail "stderr is not one '$1:' line ($why): $(head -c 600 "$T/err")"
}

# assert_usage_error PROG: exit status 2 and one message line.
assert_usage_error() {
    [[ $status -eq 2 ]] || fail "exit status $status, want 2; stderr: $stderr"
    assert_one_error "$1"
}

# assert_data_error PROG: exit status 1 and one message line.
assert_data_error() {
    [[ $status -eq 1 ]] || fail "exit status $status, want 1; stderr: $stderr"
    assert_one_error "$1"
}

# jget PERL-EXPR [FILE]: evaluates PERL-EXPR with $j bound to the JSON document
# in FILE (default stdin); prints scalars as they are, lists one per line,
# anything else as canonical JSON.  E.g. jget '$j->{totals}{params}' <x.json
# rel_close A B TOL: |A − B| ≤ TOL·|B|
rel_close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(d <= t * m) }'; }

# prints_version PROG: `PROG --version` exits 0, writes nothing on stderr and
# "PROG (bitforge) X.Y.Z" on stdout ($T/out)
prints_version() {
    run3 "$1" --version
    [[ $status -eq 0 && ! -s $T/err ]]
    grep -Eqx "$1 \(bitforge\) [0-9]+\.[0-9]+\.[0-9]+" "$T/out"
}

# refuses_terminal PROG ARG...: PROG ARG... with stdout on a terminal exits 2
# with the one line "PROG: refusing to write a binary stream to a terminal…"
# (in tty.out); skips where script(1) is missing
refuses_terminal() {
    command -v script >/dev/null || skip "script (util-linux) is needed for a terminal"
    local prog=$1 st=0
    shift
    script -qec "$BF_BIN/$prog $(printf '%q ' "$@")" /dev/null </dev/null >tty.out 2>&1 || st=$?
    [[ $st -eq 2 ]] || fail "exit status $st, want 2: $(cat tty.out)"
    grep -q "^$prog: refusing to write a binary stream to a terminal" tty.out
    [[ $(tr -d '\r' <tty.out | grep -c '') -eq 1 ]] || fail "more than one line: $(cat -A tty.out)"
}

# lt A B: A < B (numbers)
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# loss_of MODEL DATA [SPLIT] (default train), exact_of MODEL DATA [SPLIT]
# (default val): bf-eval's loss and exact match
loss_of() { bf-eval --data "$2" --split "${3:-train}" --json "$1" | jget '$j->{loss}'; }
exact_of() { bf-eval --data "$2" --split "${3:-val}" --json "$1" | jget '$j->{exact}'; }

# hash FILE NAME: the payload hash of tensor NAME in bf-tstat output FILE
hash() { awk -v n="$2" '$1 == n { print $8 }' "$1"; }

jget() {
    perl -MJSON::PP -e '
        local $/;
        my $j = JSON::PP->new->decode(scalar <STDIN>);
        my @r = eval $ARGV[0];
        die "jget: $@" if $@;
        for my $r (@r) {
            $r = ref $r eq "JSON::PP::Boolean" ? ($r ? "true" : "false")
               : ref $r ? JSON::PP->new->canonical->encode($r) : $r // "null";
            print "$r\n";
        }' "$1" <"${2:-/dev/stdin}"
}

# Reading a bf-eval --json document (stdin):
#   tensor_names             the tensor names, one per line
#   tensor_shape NAME        "d0,d1,…" ("" for a scalar), nothing if absent
#   meta_of KEY              the header meta value
jnames() { jget 'map { $_->{name} } @{$j->{tensors}}' "$@"; }
jshape() { jget 'map { join ",", @{$_->{shape}} } grep { $_->{name} eq "'"$1"'" } @{$j->{tensors}}' "${@:2}"; }
jmeta() { jget '$j->{meta}{"'"$1"'"}' "${@:2}"; }

# usec VAR: sets VAR to the wall clock in microseconds (no subshell)
usec() { local t=$EPOCHREALTIME; printf -v "$1" '%s' "$((10#${t/./}))"; }

# quick CMD…: runs CMD (a shell function with loops) in a subshell without
# bats's DEBUG trap, which otherwise costs about half a millisecond for every
# command a loop runs.  Failures still fail the test.
quick() { ( trap - DEBUG; "$@" ); }

# as_model: stdin to stdout, a bf-mkbad stream (kind "data") made a "model"
# stream of the same length: "kind":"data" becomes "model" and the meta's
# "task":"hostile" gives up a letter, so every offset, the padding and the
# trailer stay valid.  A stream without both (a broken stream header) passes
# unchanged.  Lets programs that need a model meet every hostile case.
as_model() {
    perl -0777 -pe 'my ($k, $t) = ("\xa4kind\xa4data", "\xa4task\xa7hostile");
        if (index($_, $k) >= 0 && index($_, $k) < 64 && index($_, $t) >= 0 && index($_, $t) < 128) {
            substr($_, index($_, $t), length $t) = "\xa4task\xa6hostil";
            substr($_, index($_, $k), length $k) = "\xa4kind\xa5model";
        }'
}

# hostile_each MODE KIND TEMPLATE [streaming]: hostile.bats's table for one
# command line (its first word the program).  Every bf-mkbad case, as a KIND
# stream (data or model), goes where {} is in TEMPLATE: "-" with the case on
# stdin (MODE pipe) or a path (MODE file).  Each must exit 1 with one line
# "PROG: …" matching the case's expected message, within 2 s and 256 MiB
# (GNU time), and leave stdout empty or, for a streaming program, without a
# valid trailer.  Fails once, listing every violation.
hostile_each() {
    local mode=$1 kind=$2 tpl=$3 streaming=${4-} kase why w st t0 t1 msg dir=$BATS_FILE_TMPDIR/hostile-$2
    local -a words argv reason fails=()
    read -ra words <<<"$tpl"
    if [[ ! -e $dir/.done ]]; then   # the cases, made once per file
        mkdir -p "$dir"
        for kase in $(bf-mkbad list); do
            if [[ $kind == model ]]; then bf-mkbad "$kase" | as_model >"$dir/$kase"; else bf-mkbad "$kase" >"$dir/$kase"; fi
        done
        touch "$dir/.done"
    fi
    while IFS=$'\t' read -r kase why; do
        argv=(timeout -k 1 5)
        [[ -x /usr/bin/time ]] && argv=(/usr/bin/time -q -f %M -o "$T/rss" "${argv[@]}")
        for w in "${words[@]}"; do
            [[ $w == '{}' ]] && { [[ $mode == pipe ]] && w=- || w=$dir/$kase; }
            argv+=("$w")
        done
        st=0
        usec t0
        if [[ $mode == pipe ]]; then "${argv[@]}" <"$dir/$kase" >"$T/out" 2>"$T/err" || st=$?
        else "${argv[@]}" </dev/null >"$T/out" 2>"$T/err" || st=$?; fi
        usec t1
        reason=()
        [[ $st -eq 1 ]] || reason+=("exit status $st")
        w=$(one_line_reason "$T/err" "${words[0]}")
        [[ -z $w ]] || reason+=("stderr: $w")
        IFS= read -r -d '' msg <"$T/err" || true
        [[ $msg =~ $why ]] || reason+=("message does not match /$why/")
        if [[ -s $T/out ]]; then
            if [[ -z $streaming ]]; then reason+=("$(stat -c %s "$T/out") bytes on stdout")
            elif bf-eval "$T/out" >/dev/null 2>&1; then reason+=("its partial output is a valid stream"); fi
        fi
        ((t1 - t0 < 2000000)) || reason+=("took $(((t1 - t0) / 1000)) ms")
        if [[ -s $T/rss ]]; then
            read -r w <"$T/rss" || true
            [[ $w =~ ^[0-9]+$ ]] && ((w < 256 * 1024)) || reason+=("peak memory '$w' KiB")
        fi
        ((${#reason[@]} == 0)) ||
            fails+=("$kase ($mode, $kind): $(IFS=';'; echo "${reason[*]}") -- $(head -c 200 "$T/err" | tr '\n' '|')")
    done < <(bf-mkbad why)
    if ((${#fails[@]})); then
        printf '# %s\n' "${fails[@]}" >&2
        fail "'$tpl': ${#fails[@]} violation(s)"
    fi
}
