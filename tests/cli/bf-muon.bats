#!/usr/bin/env bats
# bf-muon (bf-muon(1), bitforge(7)): help, usage errors, bad data, defaults,
# --preset phase5, STE mode (--ste), the KL anchor (--kl, --ref), QK-clip,
# codes that change only through the latent weights, determinism, output,
# hostile streams.
#
# Families: 0x help and version, 1x usage errors, 2x bad input, 3x training
# and flags, 4x STE mode and the preset, 5x the KL anchor and QK-clip,
# 6x determinism and output, 9x hostile streams.

load helpers

# modarith p 7 (vocab 9, ctx 4), a float model, and its ternary version with latents
small() {
    bf-data modarith --p 7 -o d.bf
    bf-init --like d.bf --d 32 --heads 2 --layers 1 -o m.bf
    bf-quantize --keep-latent m.bf >q.bf
}

# dtypes FILE: "name dtype numel" lines of a stream
dtypes() { bf-tstat "$1" | awk '{ print $1, $2, $3 }'; }

# ---------------------------------------------------------------- 0x help

@test "muon-01 --help prints usage on stdout and exits 0" {
    run3 bf-muon --help
    [[ $status -eq 0 && ! -s $T/err ]]
    grep -q '^usage: bf-muon' "$T/out"
    local f
    for f in --muon-lr --kl --ref --qk-clip --ste --preset phase5 --data --steps --batch --lr --wd --warmup \
        --schedule --clip --eval-every --stop-exact --log --grokfast --momentum --ns-steps --fallback --fallback-lr \
        --strip --seed --threads --output --quiet --progress --help --version; do
        grep -q -- "$f" "$T/out" || fail "--help does not mention $f"
    done
}

@test "muon-02 -h is --help; --version prints the version" {
    run -0 bf-muon -h
    assert_line --index 0 --partial 'usage: bf-muon'
    prints_version bf-muon
}

# ---------------------------------------------------------- 1x usage errors

@test "muon-10 bad numbers, choices and combinations are usage errors" {
    small
    local line
    local -a args
    for line in '--ste maybe' '--preset phase6' '--qk-clip 0' '--qk-clip x' '--kl -1' '--muon-lr x' '--lr -1' \
        '--ref m.bf' '--grokfast-window 5' '--grokfast off --grokfast-alpha 0.9' '--opt adamw' '--fallback lion' \
        '--fallback sgd --beta1 0.5' '--momentum 1' '--ns-steps -1' '--steps x' '--bogus' 'm.bf' '--strip=yes'; do
        read -ra args <<<"$line"
        run3 bf-muon --data d.bf --steps 1 "${args[@]}" m.bf
        [[ $status -eq 2 ]] || fail "bf-muon $line: exit status $status, want 2 ($stderr)"
        [[ -z $(one_line_reason "$T/err" bf-muon) ]] || fail "bf-muon $line: stderr is not one line: $stderr"
        [[ ! -s $T/out ]] || fail "bf-muon $line: wrote to stdout"
    done
    run3 bf-muon m.bf
    assert_usage_error bf-muon
    [[ $stderr == *--data* ]]
    run3 bf-muon --data d.bf --ref m.bf m.bf
    [[ $stderr == *--kl* ]]
}

# ------------------------------------------------------------ 2x bad input

data_error() {
    run3 bf-muon "$@" --steps 2 -q -o out.bf
    assert_data_error bf-muon
    [[ ! -s $T/out && ! -e out.bf ]] || fail "bf-muon $*: left output"
}

@test "muon-20 wrong kinds, wrong vocab, rows beyond ctx, an empty train split: exit 1, one line" {
    small
    data_error --data m.bf m.bf
    [[ $stderr == *"'model'"* ]]
    data_error --data d.bf d.bf
    [[ $stderr == *"'data'"* ]]
    bf-init --vocab 10 --ctx 4 --d 16 --heads 2 --layers 1 -o v.bf
    data_error --data d.bf v.bf
    [[ $stderr == *vocab* ]]
    bf-init --vocab 9 --ctx 3 --d 16 --heads 2 --layers 1 -o c.bf
    data_error --data d.bf c.bf
    [[ $stderr == *ctx* ]]
    bf-data modarith --p 7 --frac 0 -o e.bf
    data_error --data e.bf m.bf
    [[ $stderr == *empty* ]]
    bf-poke blk.0.wk 3 nan m.bf >bad.bf
    data_error --data d.bf bad.bf
    [[ $stderr == *"'blk.0.wk'"* ]]
}

@test "muon-21 --ste on with a float model, --ste off with a ternary one: exit 1, one line" {
    small
    data_error --data d.bf --ste on m.bf
    [[ $stderr == *--ste* && $stderr == *ternary* ]]
    data_error --data d.bf --ste off q.bf
    [[ $stderr == *--ste* && $stderr == *ternary* ]]
    # the matching cases work
    bf-muon --data d.bf --steps 1 --ste on -q q.bf | bf-eval >/dev/null
    bf-muon --data d.bf --steps 1 --ste off -q m.bf | bf-eval >/dev/null
}

@test "muon-22 a bad --ref: missing, another vocab, a data stream: exit 1 naming it" {
    small
    data_error --data d.bf --kl 0.1 --ref "$T/missing.bf" m.bf
    [[ $stderr == *missing.bf* ]]
    bf-init --vocab 10 --ctx 4 --d 32 --heads 2 --layers 1 -o v.bf
    data_error --data d.bf --kl 0.1 --ref v.bf m.bf
    [[ $stderr == *v.bf* && $stderr == *vocab* ]]
    data_error --data d.bf --kl 0.1 --ref d.bf m.bf
    [[ $stderr == *"'data'"* ]]
}

# --------------------------------------------------------- 3x training, flags

@test "muon-30 runs with its defaults (Muon, Grokfast EMA, lr 0.02) and lowers the train loss" {
    small
    bf-muon --data d.bf --steps 20 --log l.log m.bf >t.bf
    lt "$(loss_of t.bf d.bf)" "$(awk -v b="$(loss_of m.bf d.bf)" 'BEGIN { print 0.8 * b }')"
    [[ $(jget '$j->{lr}' <(head -n 1 l.log)) == 0.02 ]]
    # every tensor still F32, the same names and shapes
    diff <(dtypes m.bf) <(dtypes t.bf)
    grep -aq bf-muon t.bf
}

@test "muon-31 --muon-lr and --lr are the same setting; --grokfast off (plain Muon) differs from the default" {
    small
    bf-muon --data d.bf --steps 5 --muon-lr 0.01 --threads 1 -q m.bf | bf-tstat >a
    bf-muon --data d.bf --steps 5 --lr 0.01 --threads 1 -q m.bf | bf-tstat >b
    diff a b
    bf-muon --data d.bf --steps 5 --lr 0.03 --threads 1 -q m.bf | bf-tstat >c
    ! diff -q a c >/dev/null
    bf-muon --data d.bf --steps 5 --grokfast off --threads 1 -q m.bf | bf-tstat >e
    bf-muon --data d.bf --steps 5 --threads 1 -q m.bf | bf-tstat >f
    bf-muon --data d.bf --steps 5 --grokfast ema --threads 1 -q m.bf | bf-tstat >g
    ! diff -q e f >/dev/null
    diff f g
}

@test "muon-32 --momentum, --ns-steps, --fallback, --fallback-lr each change the result" {
    small
    local base h args
    base=$(bf-muon --data d.bf --steps 5 --threads 1 -q m.bf | bf-tstat | awk '{ print $8 }' | tr '\n' ' ')
    for args in '--momentum 0.5' '--ns-steps 2' '--fallback sgd' '--fallback-lr 1e-2'; do
        # shellcheck disable=SC2086
        h=$(bf-muon --data d.bf --steps 5 --threads 1 -q $args m.bf | bf-tstat | awk '{ print $8 }' | tr '\n' ' ')
        [[ $h != "$base" ]] || fail "$args changed nothing"
    done
}

@test "muon-33 --fallback-lr is the fallback's own lr: 0 freezes embeddings, head and norms; Muon's lr 0 freezes the rest" {
    small
    bf-tstat m.bf >s
    local name
    # --fallback-lr 0: only the block matrices move (or 0 is refused as a usage error)
    run3 bf-muon --data d.bf --steps 5 --fallback-lr 0 --threads 1 -q m.bf
    if [[ $status -ne 2 ]]; then
        [[ $status -eq 0 ]] || fail "--fallback-lr 0: exit status $status: $stderr"
        bf-tstat "$T/out" >z
        for name in tok_emb head out_norm.w blk.0.attn_norm.w; do
            [[ $(hash z $name) == "$(hash s $name)" ]] || fail "$name moved with --fallback-lr 0"
        done
        [[ $(hash z blk.0.wq) != "$(hash s blk.0.wq)" ]]
    fi
    # --lr 0 (Muon's): the block matrices stay, the fallback trains at --fallback-lr
    bf-muon --data d.bf --steps 5 --lr 0 --fallback-lr 1e-2 --threads 1 -q m.bf | bf-tstat >y
    for name in blk.0.wq blk.0.w2; do
        [[ $(hash y $name) == "$(hash s $name)" ]] || fail "$name moved with Muon's lr 0"
    done
    [[ $(hash y tok_emb) != "$(hash s tok_emb)" ]] || fail "tok_emb did not move with --lr 0 --fallback-lr 1e-2"
}

@test "muon-34 --strip drops the latents of a ternary model" {
    small
    bf-muon --data d.bf --steps 3 --threads 1 -q q.bf >full.bf
    bf-muon --data d.bf --steps 3 --threads 1 -q --strip q.bf >strip.bf
    [[ $(bf-tstat strip.bf | grep -c '\.latent ') -eq 0 ]]
    diff <(bf-tstat full.bf | grep -v '\.latent ') <(bf-tstat strip.bf)
}

# --------------------------------------------------- 4x STE mode, the preset

@test "muon-40 --preset phase5 on a ternary model: STE mode, the output stays ternary, the preset's settings" {
    small
    bf-muon --data d.bf --preset phase5 --steps 4 --log p.log -q q.bf >t.bf
    diff <(dtypes q.bf) <(dtypes t.bf)
    [[ $(bf-eval --json t.bf | jget 'scalar grep { $_->{dtype} eq "TQ2" } @{$j->{tensors}}') -eq 7 ]]
    # Muon's lr 0.01 and the KL anchor (0.2) in the log
    [[ $(jget '$j->{lr}' <(head -n 1 p.log)) == 0.01 ]]
    [[ $(jget 'defined $j->{kl} ? "kl" : "none"' <(head -n 1 p.log)) == kl ]]
    # the latents moved
    [[ $(hash <(bf-tstat q.bf) blk.0.w1.latent) != "$(hash <(bf-tstat t.bf) blk.0.w1.latent)" ]]
    # explicit flags win over the preset
    bf-muon --data d.bf --preset phase5 --muon-lr 0.03 --kl 0 --steps 2 --log e.log -q q.bf >/dev/null
    [[ $(jget '$j->{lr}' <(head -n 1 e.log)) == 0.03 ]]
    [[ $(jget 'defined $j->{kl} ? "kl" : "none"' <(head -n 1 e.log)) == none ]]
}

@test "muon-41 --preset phase5 on a float model trains in float" {
    small
    bf-muon --data d.bf --preset phase5 --steps 3 -q m.bf >t.bf
    diff <(dtypes m.bf) <(dtypes t.bf)
}

@test "muon-42 STE: the codes change only through the latents (re-quantizing W.latent with the tensor's rule gives W)" {
    small
    local args
    for args in '' '--per-row --pack tq1' '--method threshold --threshold 0.4'; do
        # shellcheck disable=SC2086
        bf-quantize --keep-latent $args m.bf >qq.bf
        bf-muon --data d.bf --steps 6 --lr 0.05 -q qq.bf >t.bf
        # training moved some codes ...
        [[ $(hash <(bf-tstat qq.bf) blk.0.w1) != "$(hash <(bf-tstat t.bf) blk.0.w1)" ]] ||
            fail "quantize $args: no code of blk.0.w1 moved"
        # ... and they are exactly the quantization of the latents
        # shellcheck disable=SC2086
        bf-dequant --from latent t.bf | bf-quantize $args >r.bf
        diff <(bf-tstat t.bf | grep -v '\.latent ') <(bf-tstat r.bf) || fail "quantize $args: W is not its latent's quantization"
    done
}

# ------------------------------------------------ 5x the KL anchor, QK-clip

@test "muon-50 --kl anchors to the input model: KL 0 at the first step, logged with the key kl" {
    small
    bf-muon --data d.bf --steps 3 --kl 0.5 --log k.log -q m.bf >t.bf
    [[ $(jget '$j->{kl}' <(head -n 1 k.log)) == 0 ]]
    lt 0 "$(jget '$j->{kl}' <(tail -n 1 k.log))"
    # without --kl, no kl key
    bf-muon --data d.bf --steps 2 --log n.log -q m.bf >/dev/null
    [[ $(jget 'exists $j->{kl} ? 1 : 0' <(head -n 1 n.log)) == 0 ]]
    # the anchor changes the result
    bf-muon --data d.bf --steps 3 --threads 1 -q m.bf | bf-tstat >a
    bf-muon --data d.bf --steps 3 --kl 5 --threads 1 -q m.bf | bf-tstat >b
    ! diff -q a b >/dev/null
}

@test "muon-51 --kl with --ref: KL to another model from the first step; --ref equal to the input gives KL 0" {
    small
    bf-init --like d.bf --d 32 --heads 2 --layers 1 --seed 9 -o r.bf
    bf-muon --data d.bf --steps 2 --kl 0.5 --ref r.bf --log r.log -q m.bf >/dev/null
    lt 0 "$(jget '$j->{kl}' <(head -n 1 r.log))"
    bf-muon --data d.bf --steps 2 --kl 0.5 --ref m.bf --log s.log -q m.bf >/dev/null
    [[ $(jget '$j->{kl}' <(head -n 1 s.log)) == 0 ]]
    # a ternary reference, as its stream gives it, for a ternary model: KL 0 at
    # the start up to rounding (the reference runs on the integer kernels, the
    # model in float with the same int8 activations: sums in another order)
    bf-muon --data d.bf --steps 2 --kl 0.5 --ref q.bf --log t.log -q q.bf >/dev/null
    lt "$(jget '$j->{kl}' <(head -n 1 t.log))" 1e-7
}

@test "muon-52 --qk-clip logs qk_clipped; a tiny threshold clips every head and shrinks wq and wk" {
    small
    bf-muon --data d.bf --steps 3 --qk-clip 1e-3 --log c.log --threads 1 -q m.bf >c.bf
    # 1 layer × 2 heads, both far above 1e-3 at the start; then the count over the run
    [[ $(jget '$j->{qk_clipped}' <(head -n 1 c.log)) -eq 2 ]]
    [[ $(jget '$j->{qk_clipped}' <(tail -n 1 c.log)) -ge 2 ]]
    [[ $(jget '$j->{qk_clipped}' <(tail -n 1 c.log)) -le 6 ]]
    bf-muon --data d.bf --steps 3 --qk-clip 1e9 --log h.log --threads 1 -q m.bf >h.bf
    [[ $(jget '$j->{qk_clipped}' <(tail -n 1 h.log)) -eq 0 ]]
    [[ $(jget 'exists $j->{qk_clipped} ? 1 : 0' <(bf-muon --data d.bf --steps 1 --log /dev/stdout -q -o /dev/null m.bf)) == 0 ]]
    local a b
    a=$(bf-tstat c.bf | awk '$1 == "blk.0.wq" { print $5 }')
    b=$(bf-tstat h.bf | awk '$1 == "blk.0.wq" { print $5 }')
    lt "$a" "$(awk -v b="$b" 'BEGIN { print b / 3 }')" || fail "std of wq: $a clipped, $b not"
    a=$(bf-tstat c.bf | awk '$1 == "blk.0.wk" { print $5 }')
    b=$(bf-tstat h.bf | awk '$1 == "blk.0.wk" { print $5 }')
    lt "$a" "$(awk -v b="$b" 'BEGIN { print b / 3 }')" || fail "std of wk: $a clipped, $b not"
    # a threshold that is never reached leaves the run as without it
    bf-muon --data d.bf --steps 3 --threads 1 -q m.bf | bf-tstat >n
    diff n <(bf-tstat h.bf)
}

# ------------------------------------------------ 6x determinism and output

@test "muon-60 the same seed and threads give identical bytes; another seed other bytes" {
    small
    bf-muon --data d.bf --steps 4 --batch 8 --seed 2 --threads 2 -q q.bf >a.bf
    bf-muon --data d.bf --steps 4 --batch 8 --seed 2 --threads 2 -q q.bf >b.bf
    cmp a.bf b.bf
    bf-muon --data d.bf --steps 4 --batch 8 --seed 3 --threads 2 -q q.bf >c.bf
    ! diff -q <(bf-tstat a.bf) <(bf-tstat c.bf) >/dev/null
}

@test "muon-61 a failing run leaves no file and keeps an existing one; -o /dev/null; the terminal" {
    small
    echo precious >t.bf
    run3 bf-muon --data d.bf --steps 2 --ste on -o t.bf m.bf
    assert_data_error bf-muon
    [[ $(<t.bf) == precious ]]
    [[ -z $(find . -maxdepth 1 -name '.*.tmp*') ]]
    run3 bf-muon --data d.bf --steps 2 -q -o /dev/null m.bf
    [[ $status -eq 0 && ! -s $T/err ]]
    [[ -c /dev/null ]]
    command -v script >/dev/null || skip "script (util-linux) is needed for a terminal"
    local st=0
    script -qec "$BF_BIN/bf-muon --data $T/d.bf --steps 100000 $T/m.bf" /dev/null </dev/null >tty.out 2>&1 || st=$?
    [[ $st -eq 2 ]] || fail "exit status $st, want 2: $(cat tty.out)"
    grep -q '^bf-muon: refusing to write a binary stream to a terminal' tty.out
}

# ------------------------------------------------------- 9x hostile streams

@test "muon-90 every bf-mkbad case as the model (a pipe): exit 1, one matching line, no output" {
    small
    quick hostile_each pipe model "bf-muon --steps 1 -q --data $T/d.bf {}"
}

@test "muon-91 every bf-mkbad case as --ref (a file): exit 1, one matching line, no output" {
    small
    quick hostile_each file model "bf-muon --steps 1 -q --kl 0.1 --data $T/d.bf --ref {} $T/m.bf"
}
