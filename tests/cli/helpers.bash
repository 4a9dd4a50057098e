# helpers.bash — shared setup for the bats files (load helpers).
#
# Environment (set by `make test`; defaults let a bats file run by hand from
# the repository):
#   BF_BIN     the programs under test (bin/ or build-asan/bin/)
#   BF_TOOLS   compiled tests/tools/*.c helpers (obj/tools/)
#   BF_SHARED  the shared folder holding DESIGN.md and vectors/
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
BF_SHARED=${BF_SHARED:-$(cd "$_bf_root/../shared" 2>/dev/null && pwd)}
VECTORS=$BF_SHARED/vectors
export BF_BIN BF_TOOLS BF_SHARED
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
