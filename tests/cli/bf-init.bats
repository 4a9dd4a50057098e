#!/usr/bin/env bats
# bf-init (bf-init(1), bitforge(7)): options, usage errors, pipes, -o atomicity,
# determinism, the terminal, every model flag as bf-eval --json reports it,
# and the initialization statistics (bf-tstat, tests/tools/bf-tstat.c).
#
# Families: 0x help and version, 1x usage errors, 2x streams, 3x -o
# atomicity, 4x determinism, 5x-6x model flags, 7x initialization.

load helpers

# a small model: every test that needs "some model" uses these flags
SMALL=(--vocab 11 --ctx 6 --d 16 --heads 2 --layers 2 --ff 24)

# init_json ARGS…: bf-init ARGS | bf-eval --json into $T/j.json
init_json() {
    bf-init "$@" >"$T/m.bf"
    bf-eval --json "$T/m.bf" >"$T/j.json"
}

# has_tensor NAME SHAPE: $T/j.json lists NAME with shape SHAPE ("a,b")
has_tensor() {
    local got
    got=$(jshape "$1" "$T/j.json")
    [[ $got == "$2" ]] || fail "tensor '$1': shape '$got', want '$2'"
}

no_tensor() {
    ! jnames "$T/j.json" | grep -qx -- "$1" || fail "tensor '$1' should be absent"
}

# tstat STATS NAME FIELD: a field of the bf-tstat line for NAME in the file
# STATS (numel 3, mean 4, std 5, min 6, max 7, payload hash 8)
tstat() { awk -v n="$2" -v f="$3" '$1 == n { print $f }' "$1"; }

# near X WANT TOL: |X - WANT| <= TOL
near() { awk -v x="$1" -v w="$2" -v t="$3" 'BEGIN { d = x - w; if (d < 0) d = -d; exit !(d <= t) }'; }

# ---------------------------------------------------------------- 0x help

@test "init-01 --help prints usage on stdout and exits 0" {
    run3 bf-init --help
    [[ $status -eq 0 ]]
    [[ ! -s $T/err ]]
    grep -q '^usage: bf-init' "$T/out"
    local f
    for f in --vocab --ctx --like --d --layers --heads --ff --norm --act --pos --tie --subln --act-bits --seed \
        --output --quiet --help --version; do
        grep -q -- "$f" "$T/out" || fail "--help does not mention $f"
    done
}

@test "init-02 -h is --help, also after other options" {
    run -0 bf-init -h
    assert_line --partial 'usage: bf-init'
    run -0 bf-init --vocab 5 --ctx 4 -h
    assert_line --partial 'usage: bf-init'
}

@test "init-03 --version prints the version and exits 0" {
    prints_version bf-init
}

# ---------------------------------------------------------- 1x usage errors

# usage_cases ARGS-LINE…: each line, split into words, must be a usage error
usage_cases() {
    local line
    local -a args
    for line in "$@"; do
        read -ra args <<<"$line"
        run3 bf-init "${args[@]}"
        [[ $status -eq 2 ]] || fail "bf-init $line: exit status $status, want 2 ($stderr)"
        [[ -z $(one_line_reason "$T/err" bf-init) ]] || fail "bf-init $line: stderr is not one line: $stderr"
        [[ ! -s $T/out ]] || fail "bf-init $line: wrote to stdout"
    done
}

@test "init-10 no size given is a usage error" {
    usage_cases '' '--vocab 5' '--ctx 5' '--d 16'
    [[ $stderr == *"--vocab"* ]]
}

@test "init-11 bad numbers are usage errors naming the option" {
    usage_cases '--vocab 0 --ctx 4' '--vocab abc --ctx 4' '--vocab 5 --ctx -1' '--vocab 5 --ctx 4x' \
        '--vocab 99999999999999999999 --ctx 4' '--vocab 5 --ctx 4 --d 0' '--vocab 5 --ctx 4 --layers 0' \
        '--vocab 5 --ctx 4 --ff 0' '--vocab 5 --ctx 4 --heads 0' '--vocab 5 --ctx 4 --seed -1' \
        '--vocab 5 --ctx 4 --seed x'
    run3 bf-init --vocab 5 --ctx 4 --d 0
    [[ $stderr == *"--d"* && $stderr == *"'0'"* ]]
}

@test "init-12 bad choices are usage errors listing the choices" {
    usage_cases '--vocab 5 --ctx 4 --norm batch' '--vocab 5 --ctx 4 --act tanh' '--vocab 5 --ctx 4 --pos alibi' \
        '--vocab 5 --ctx 4 --act-bits 4'
    run3 bf-init --vocab 5 --ctx 4 --act tanh
    [[ $stderr == *swiglu* && $stderr == *gelu* && $stderr == *relu2* && $stderr == *"'tanh'"* ]]
}

@test "init-13 heads that do not divide d are a usage error" {
    usage_cases '--vocab 5 --ctx 4 --d 16 --heads 3'
}

@test "init-14 unknown options, missing values and stray arguments are usage errors" {
    usage_cases '--vocab 5 --ctx 4 --bogus' '--vocab 5 --ctx 4 -x' '--vocab 5 --ctx' '--vocab 5 --ctx 4 extra' \
        '--vocab 5 --ctx 4 --tie=yes'
}

@test "init-15 --like with --vocab or --ctx is a usage error" {
    usage_cases "--like $VECTORS/data-tiny.bf --vocab 5" "--like $VECTORS/data-tiny.bf --ctx 5"
}

# --------------------------------------------------------------- 2x streams

@test "init-20 a stream through a pipe into bf-eval" {
    local st=0
    bf-init "${SMALL[@]}" 2>"$T/err1" | bf-eval >"$T/out" 2>"$T/err2" || st=$?
    [[ $st -eq 0 && ! -s $T/err1 && ! -s $T/err2 ]] || fail "status $st: $(cat "$T/err1" "$T/err2")"
    grep -q '^kind: model' "$T/out"
    grep -q '^total ' "$T/out"
}

@test "init-21 -o FILE writes the same tensors as stdout, and nothing on stdout" {
    run3 bf-init "${SMALL[@]}" -o "$T/a.bf"
    [[ $status -eq 0 && ! -s $T/out && ! -s $T/err ]]
    bf-init "${SMALL[@]}" >"$T/b.bf"
    diff <(bf-tstat "$T/a.bf") <(bf-tstat "$T/b.bf")
    # the header records how the file was made
    bf-eval --json "$T/a.bf" >"$T/j.json"
    [[ $(jget '$j->{kind}' "$T/j.json") == model ]]
}

@test "init-22 the header's lineage records the tool, version and arguments" {
    bf-init "${SMALL[@]}" --seed 7 -o m.bf
    # bf-eval --json shows meta, not lineage: read the raw header's strings
    grep -aq 'bf-init' m.bf
    grep -aq -- '--seed' m.bf
    grep -aq "$(bf-init --version | awk '{ print $3 }')" m.bf
}

@test "init-23 refuses to write a stream to a terminal (exit 2), but -o works there" {
    refuses_terminal bf-init "${SMALL[@]}"
    local st=0
    script -qec "$BF_BIN/bf-init ${SMALL[*]} -o $T/m.bf" /dev/null </dev/null >"$T/tty.out" 2>&1 || st=$?
    [[ $st -eq 0 && ! -s $T/tty.out ]] || fail "-o FILE on a terminal: status $st: $(cat "$T/tty.out")"
    bf-eval "$T/m.bf" >/dev/null
}

@test "init-24 a reader that goes away (EPIPE) ends bf-init quietly with status 1" {
    local -a st
    # about 1 MB: more than a pipe holds
    bf-init --vocab 2000 --ctx 8 --d 64 --heads 2 --layers 1 2>"$T/err" | head -c 100 >/dev/null
    st=("${PIPESTATUS[@]}")
    [[ ${st[0]} -eq 1 ]] || fail "exit status ${st[0]}, want 1"
    [[ ! -s $T/err ]] || fail "stderr: $(<"$T/err")"
}

@test "init-25 --quiet and -q are accepted and print nothing" {
    run3 bf-init "${SMALL[@]}" -q -o m.bf
    [[ $status -eq 0 && ! -s $T/err ]]
    run3 bf-init "${SMALL[@]}" --quiet -o m.bf
    [[ $status -eq 0 && ! -s $T/err ]]
}

# ------------------------------------------------------- 3x -o atomicity

# no_temp DIR: no temporary file of the writer is left in DIR
no_temp() {
    local left
    left=$(find "${1:-$T}" -maxdepth 1 -name '.*.tmp*')
    [[ -z $left ]] || fail "temporary files left: $left"
}

@test "init-30 a failing run (bad --like input) leaves no file and no temporary file" {
    bf-mkbad flipped-bit >bad.bf
    run3 bf-init --like bad.bf -o m.bf
    assert_data_error bf-init
    [[ $stderr == *checksum* ]]
    [[ ! -e m.bf ]]
    no_temp
}

@test "init-31 a failing run does not clobber an existing file" {
    echo precious >m.bf
    bf-mkbad trunc-payload >bad.bf
    run3 bf-init --like bad.bf -o m.bf
    assert_data_error bf-init
    [[ $(<m.bf) == precious ]]
    run3 bf-init --vocab 5 --ctx 4 --heads 7 -o m.bf
    [[ $status -eq 2 && $(<m.bf) == precious ]]
    no_temp
}

@test "init-32 a successful run replaces an existing file whole, with the umask's mode" {
    echo precious >m.bf
    local st=0
    (umask 022 && bf-init "${SMALL[@]}" -o m.bf) || st=$?
    [[ $st -eq 0 ]]
    bf-eval m.bf >/dev/null
    [[ $(stat -c %a m.bf) == 644 ]] || fail "mode $(stat -c %a m.bf), want 644"
    no_temp
    # a path with a directory part: the temporary file goes beside the target
    mkdir sub
    bf-init "${SMALL[@]}" -o sub/n.bf
    bf-eval sub/n.bf >/dev/null
    no_temp sub
}

@test "init-33 -o into a missing directory fails with one line, exit 1" {
    run3 bf-init "${SMALL[@]}" -o "$T/no/such/dir/m.bf"
    assert_data_error bf-init
    [[ $stderr == *"no/such/dir/m.bf"* ]]
}

@test "init-34 a run killed mid-write leaves neither the file nor its temporary file" {
    # about 80 MB of model; the temporary file has bytes once tok_emb (16 MB)
    # is written, and the four blocks after it take a while to draw
    bf-init --vocab 8000 --ctx 8 --d 512 --heads 8 --layers 4 --tie -o m.bf 2>"$T/err" &
    local pid=$! k st=0 tmp
    for ((k = 0; k < 1000; k++)); do
        tmp=$(compgen -G "$T/.m.bf.tmp*") && [[ -s $tmp ]] && break
        sleep 0.005
    done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || st=$?
    [[ $st -ne 0 ]] || skip "bf-init finished before the signal came"
    [[ $st -eq 143 ]] || fail "exit status $st, want 143 (SIGTERM): $(<"$T/err")"
    [[ ! -e m.bf ]]
    no_temp
}

# ------------------------------------------------------ 4x determinism

@test "init-40 the same seed gives byte-identical streams (stdout and -o)" {
    bf-init "${SMALL[@]}" --seed 42 >a.bf
    bf-init "${SMALL[@]}" --seed 42 >b.bf
    cmp a.bf b.bf
    mkdir x y
    (cd x && bf-init "${SMALL[@]}" --seed 42 -o m.bf)
    (cd y && bf-init "${SMALL[@]}" --seed 42 -o m.bf)
    cmp x/m.bf y/m.bf
}

@test "init-41 different seeds give different weights, and the same norms" {
    bf-init "${SMALL[@]}" --seed 1 >a.bf
    bf-init "${SMALL[@]}" --seed 2 >b.bf
    ! cmp -s a.bf b.bf
    bf-tstat a.bf >a
    bf-tstat b.bf >b
    local name
    for name in tok_emb blk.0.wq blk.1.w2 head; do
        [[ $(tstat a "$name" 8) != "$(tstat b "$name" 8)" ]] || fail "$name is the same under seeds 1 and 2"
    done
    [[ $(tstat a out_norm.w 8) == "$(tstat b out_norm.w 8)" ]]
}

@test "init-42 the default seed is 1" {
    bf-init "${SMALL[@]}" >a.bf
    bf-init "${SMALL[@]}" --seed 1 >b.bf
    diff <(bf-tstat a.bf) <(bf-tstat b.bf)
}

@test "init-43 a tensor's values depend on the seed and its name only" {
    bf-init --vocab 11 --ctx 6 --d 16 --heads 2 --layers 1 | bf-tstat >a
    bf-init --vocab 11 --ctx 6 --d 16 --heads 2 --layers 3 | bf-tstat >b
    local name
    for name in tok_emb blk.0.wq blk.0.w1 head; do
        [[ $(tstat a "$name" 8) == "$(tstat b "$name" 8)" ]] || fail "$name changed with --layers"
    done
}

# ------------------------------------------------------- 5x-6x model flags

@test "init-50 defaults: d 128, 2 layers, 4 heads, ff 4·d, rms, swiglu, rope, untied" {
    init_json --vocab 20 --ctx 8
    [[ $(jget '$j->{kind}' j.json) == model ]]
    jget 'map { my $v = $j->{meta}{$_}; "$_=" . (ref $v ? ($v ? "true" : "false") : $v) } sort keys %{$j->{meta}}' \
        j.json >meta
    diff - meta <<EOF
act=swiglu
act_bits=8
arch=transformer
ctx=8
d_ff=512
d_model=128
n_head=4
n_layer=2
norm=rms
pos=rope
subln=false
tie_embed=false
vocab=20
EOF
    has_tensor tok_emb 20,128
    has_tensor blk.0.attn_norm.w 128
    has_tensor blk.1.wq 128,128
    has_tensor blk.1.wo 128,128
    has_tensor blk.0.w1 512,128
    has_tensor blk.0.w3 512,128
    has_tensor blk.0.w2 128,512
    has_tensor out_norm.w 128
    has_tensor head 20,128
    no_tensor pos_emb
    no_tensor blk.2.wq
    [[ $(jnames j.json | wc -l) -eq 21 ]]
    [[ $(jget '$j->{totals}{params}' j.json) -eq $((2 * 20 * 128 + 2 * (2 * 128 + 4 * 128 * 128 + 3 * 512 * 128) + 128)) ]]
}

@test "init-51 --vocab and --ctx set the embedding, the head and the meta" {
    init_json --vocab 37 --ctx 9 --d 16 --heads 2
    has_tensor tok_emb 37,16
    has_tensor head 37,16
    [[ $(jmeta vocab j.json) == 37 && $(jmeta ctx j.json) == 9 ]]
    init_json --vocab 37 --ctx 9 --d 16 --heads 2 --pos learned
    has_tensor pos_emb 9,16
}

@test "init-52 --d sets the width of every tensor" {
    init_json --vocab 5 --ctx 4 --d 24 --heads 2
    has_tensor tok_emb 5,24
    has_tensor blk.0.wk 24,24
    has_tensor blk.0.w1 96,24
    has_tensor blk.1.mlp_norm.w 24
    [[ $(jmeta d_model j.json) == 24 && $(jmeta d_ff j.json) == 96 ]]
}

@test "init-53 --layers sets the number of blocks" {
    init_json --vocab 5 --ctx 4 --d 8 --heads 2 --layers 3
    has_tensor blk.2.wv 8,8
    no_tensor blk.3.wv
    [[ $(jmeta n_layer j.json) == 3 ]]
    [[ $(jnames j.json | grep -c '^blk\..*\.wq$') -eq 3 ]]
}

@test "init-54 --heads is recorded in the meta and leaves the shapes alone" {
    init_json --vocab 5 --ctx 4 --d 16 --heads 8
    [[ $(jmeta n_head j.json) == 8 ]]
    jget 'map { "$_->{name} @{$_->{shape}}" } @{$j->{tensors}}' j.json >a
    init_json --vocab 5 --ctx 4 --d 16 --heads 1
    [[ $(jmeta n_head j.json) == 1 ]]
    jget 'map { "$_->{name} @{$_->{shape}}" } @{$j->{tensors}}' j.json >b
    diff a b
}

@test "init-55 --ff sets the MLP width" {
    init_json --vocab 5 --ctx 4 --d 8 --heads 2 --ff 20
    has_tensor blk.0.w1 20,8
    has_tensor blk.0.w3 20,8
    has_tensor blk.0.w2 8,20
    [[ $(jmeta d_ff j.json) == 20 ]]
}

@test "init-56 --norm layer adds the biases" {
    init_json --vocab 5 --ctx 4 --d 8 --heads 2 --norm layer
    [[ $(jmeta norm j.json) == layer ]]
    has_tensor blk.0.attn_norm.b 8
    has_tensor blk.1.mlp_norm.b 8
    has_tensor out_norm.b 8
    init_json --vocab 5 --ctx 4 --d 8 --heads 2 --norm rms
    [[ $(jmeta norm j.json) == rms ]]
    no_tensor blk.0.attn_norm.b
    no_tensor out_norm.b
}

@test "init-57 --act gelu has no w3; swiglu and relu2 have it" {
    local act
    for act in swiglu relu2; do
        init_json --vocab 5 --ctx 4 --d 8 --heads 2 --act $act
        [[ $(jmeta act j.json) == "$act" ]]
        has_tensor blk.0.w3 32,8
    done
    init_json --vocab 5 --ctx 4 --d 8 --heads 2 --act gelu
    [[ $(jmeta act j.json) == gelu ]]
    no_tensor blk.0.w3
    has_tensor blk.0.w1 32,8
}

@test "init-58 --pos learned adds pos_emb; rope has none" {
    init_json --vocab 5 --ctx 7 --d 8 --heads 2 --pos learned
    [[ $(jmeta pos j.json) == learned ]]
    has_tensor pos_emb 7,8
    init_json --vocab 5 --ctx 7 --d 8 --heads 2 --pos rope
    [[ $(jmeta pos j.json) == rope ]]
    no_tensor pos_emb
}

@test "init-59 --tie drops the head" {
    init_json --vocab 5 --ctx 4 --d 8 --heads 2 --tie
    [[ $(jmeta tie_embed j.json) == true ]]
    no_tensor head
    has_tensor tok_emb 5,8
}

@test "init-60 --subln adds the sub-norms before wo and w2" {
    init_json --vocab 5 --ctx 4 --d 8 --heads 2 --ff 12 --subln
    [[ $(jmeta subln j.json) == true ]]
    has_tensor blk.0.attn_sub_norm.w 8
    has_tensor blk.1.ffn_sub_norm.w 12
    # in forward order: right before wo and w2
    jnames j.json | grep -A1 -x 'blk.0.attn_sub_norm.w' | tail -n 1 | grep -qx blk.0.wo
    jnames j.json | grep -A1 -x 'blk.0.ffn_sub_norm.w' | tail -n 1 | grep -qx blk.0.w2
}

@test "init-61 --act-bits 0 and 8 are recorded in the meta" {
    init_json --vocab 5 --ctx 4 --d 8 --heads 2 --act-bits 0
    [[ $(jmeta act_bits j.json) == 0 ]]
    init_json --vocab 5 --ctx 4 --d 8 --heads 2 --act-bits 8
    [[ $(jmeta act_bits j.json) == 8 ]]
}

@test "init-62 --like DATA takes vocab and ctx from a data stream, also from stdin" {
    init_json --like "$VECTORS/data-tiny.bf" --d 16 --heads 2 --pos learned
    [[ $(jmeta vocab j.json) == 20 && $(jmeta ctx j.json) == 8 ]]
    has_tensor tok_emb 20,16
    has_tensor pos_emb 8,16
    bf-init --like - --d 16 --heads 2 <"$VECTORS/data-tiny.bf" | bf-eval --json >k.json
    [[ $(jmeta vocab k.json) == 20 && $(jmeta ctx k.json) == 8 ]]
}

@test "init-65 --like a puzzle's data (targets at their own position, not the next token) sets full attention, learned positions and std 0.125 unless given" {
    bf-data sudoku --size 4 --n-train 30 --n-val 5 -o s.bf
    bf-init --like s.bf --d 32 --heads 2 -o p.bf
    bf-eval --json p.bf >p.json
    [[ $(jmeta attn p.json) == full && $(jmeta pos p.json) == learned ]]
    has_tensor_in() { jget 'map { $_->{name} } @{$j->{tensors}}' "$1" | grep -qx "$2"; }
    has_tensor_in p.json pos_emb
    rel_close "$(awk '$1 == "blk.0.wq" { print $5 }' <(bf-tstat p.bf))" 0.125 0.1
    # what is given stays
    bf-init --like s.bf --d 32 --heads 2 --attn causal --pos rope --std 0.02 | bf-eval --json >g.json
    [[ $(jmeta attn g.json) != full && $(jmeta pos g.json) == rope ]]
    # next-token rows (seq, modarith) keep the language model's defaults
    bf-data seq --task reverse --min-len 2 --max-len 4 --n-train 30 --n-val 5 -o q.bf
    bf-data modarith --p 11 -o a.bf
    for d in q.bf a.bf; do
        bf-init --like $d --d 32 --heads 2 | bf-eval --json >l.json
        [[ $(jmeta attn l.json) != full && $(jmeta pos l.json) == rope ]] || fail "$d: $(jmeta attn l.json) $(jmeta pos l.json)"
    done
}

@test "init-63 --like refuses a model stream and a missing file with one line, exit 1" {
    run3 bf-init --like "$VECTORS/ternary.bf"
    assert_data_error bf-init
    [[ $stderr == *"'model'"* ]]
    run3 bf-init --like "$T/missing.bf"
    assert_data_error bf-init
    [[ $stderr == *missing.bf* ]]
    [[ ! -s $T/out ]]
}

@test "init-64 the vectors' three models: same meta, names and shapes as bf-init makes" {
    local v args
    for v in "$VECTORS"/model-*.bf; do
        bf-eval --json "$v" >want.json
        # the vector's own configuration, as bf-init flags
        args=$(jget 'my $m = $j->{meta};
            join " ", "--vocab", $m->{vocab}, "--ctx", $m->{ctx}, "--d", $m->{d_model}, "--layers", $m->{n_layer},
                "--heads", $m->{n_head}, "--ff", $m->{d_ff}, "--norm", $m->{norm}, "--act", $m->{act},
                "--pos", $m->{pos}, "--act-bits", $m->{act_bits},
                ($m->{tie_embed} ? "--tie" : ()), ($m->{subln} ? "--subln" : ())' want.json)
        # shellcheck disable=SC2086
        bf-init $args | bf-eval --json >got.json
        # tensors are found by name: the order in the stream is free
        local shapes='(sort(map { "$_->{name} $_->{dtype} " . join(",", @{$_->{shape}}) } @{$j->{tensors}}),
            JSON::PP->new->canonical->encode($j->{meta}))'
        diff <(jget "$shapes" want.json) <(jget "$shapes" got.json) || fail "$(basename "$v"): bf-init $args differs"
    done
}

# ------------------------------------------------------ 7x initialization

@test "init-70 matrices and embeddings are N(0, 0.02²)" {
    bf-init --vocab 4096 --ctx 64 --d 256 --heads 4 --layers 2 --pos learned >m.bf
    bf-tstat m.bf >s
    local name n mean sd lo hi want
    for name in tok_emb pos_emb head blk.0.wq blk.0.wk blk.1.wv blk.0.w1 blk.1.w3 blk.0.wo blk.1.w2; do
        read -r n mean sd lo hi < <(awk -v n="$name" '$1 == n { print $3, $4, $5, $6, $7 }' s)
        [[ -n $n ]] || fail "no tensor $name"
        want=0.02
        [[ $name == *.wo || $name == *.w2 ]] && want=0.01   # 0.02/sqrt(2·2 layers)
        near "$sd" $want 0.0004 || fail "$name ($n values): std $sd, want $want"
        near "$mean" 0 0.0005 || fail "$name: mean $mean, want 0"
        near "$lo" 0 0.13 && near "$hi" 0 0.13 || fail "$name: range [$lo, $hi] beyond 6.5 std"
    done
}

@test "init-71 wo and w2 are N(0, (0.02/sqrt(2·layers))²), the other matrices keep 0.02" {
    # 8 layers: 0.02/sqrt(16) = 0.005 (2 layers are checked in init-70)
    bf-init --vocab 16 --ctx 4 --d 128 --heads 4 --layers 8 --ff 1024 | bf-tstat >s
    local name sd
    for name in blk.0.wo blk.7.wo blk.3.w2 blk.7.w2; do
        sd=$(tstat s $name 5)
        near "$sd" 0.005 0.00015 || fail "$name with 8 layers: std $sd, want 0.005"
    done
    for name in blk.7.wq blk.7.w1; do
        sd=$(tstat s $name 5)
        near "$sd" 0.02 0.0006 || fail "$name with 8 layers: std $sd, want 0.02"
    done
}

@test "init-72 norm weights are 1 and biases 0" {
    bf-init --vocab 16 --ctx 4 --d 32 --heads 4 --layers 2 --norm layer --subln >m.bf
    bf-tstat m.bf >s
    local line
    while read -r line; do
        set -- $line
        case $1 in
        *_norm.w | *sub_norm.w) [[ $6 == 1 && $7 == 1 ]] || fail "$1 in [$6, $7], want all 1" ;;
        *_norm.b) [[ $6 == 0 && $7 == 0 ]] || fail "$1 in [$6, $7], want all 0" ;;
        esac
    done <s
    [[ $(grep -c '_norm\.b ' s) -eq 5 ]]
}

@test "init-73 every tensor is F32" {
    init_json --vocab 5 --ctx 4 --d 8 --heads 2 --norm layer --pos learned --subln
    [[ $(jget 'scalar grep { $_->{dtype} ne "F32" } @{$j->{tensors}}' j.json) -eq 0 ]]
    [[ $(jget '$j->{totals}{bits_per_weight}' j.json) == 32 ]]
}
