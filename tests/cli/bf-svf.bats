#!/usr/bin/env bats
# bf-svf (bf-svf(1)): help, usage errors, what train, mix and apply write
# (experts streams, an adapter, models every program reads), determinism,
# a uniform z leaves the model as it was, ternary models, hostile input.
#
# Families: 0x help and version, 1x usage, 2x train (24-25: row scales, 26:
# the search's first generation), 3x mix and apply, 9x hostile.

load helpers

setup_file() {
    cd "$BATS_FILE_TMPDIR" || return 1
    bf-data seq --tasks copy,reverse --min-len 2 --max-len 4 --n-train 400 --n-val 40 -o mix.bf
    bf-data seq --task reverse --prompt "Reverse: " --min-len 2 --max-len 4 --n-train 200 --n-val 30 --seed 3 -o rev.bf
    bf-data seq --task copy --prompt "Copy: " --min-len 2 --max-len 4 --n-train 200 --n-val 30 --seed 4 -o copy.bf
    bf-init --like mix.bf --d 16 --layers 1 --heads 2 --ff 32 -o init.bf
    bf-ste-train -q --data mix.bf --steps 60 --lr 1e-2 --threads 2 -o m.bf init.bf
    bf-quantize --keep-latent m.bf -o q.bf
    bf-svf train -q --data rev.bf --steps 20 --lr 1e-2 --name rev --threads 2 -o rev-e.bf m.bf
    bf-svf train -q --data copy.bf --steps 20 --lr 1e-2 --name copy --threads 2 -o copy-e.bf m.bf
}

F() { echo "$BATS_FILE_TMPDIR/$1"; }

@test "svf-01 --help prints usage on stdout and exits 0; --version" {
    run3 bf-svf --help
    [[ $status -eq 0 && ! -s $T/err ]]
    grep -q '^usage: bf-svf train' "$T/out"
    for f in --data --name --kind --method --targets --kl --experts --per-layer --iterations --expert --keep-f32; do
        grep -q -- "$f" "$T/out" || fail "--help does not mention $f"
    done
    prints_version bf-svf
}

@test "svf-10 usage errors exit 2 with one line and no output" {
    local d=$(F rev.bf)
    for args in "" "bogus" "train" "mix --data $d" "mix --experts x" "apply" "train --data $d --kl 0.1" \
                "train --data $d --rank 2" "train --data $d --per-layer" "apply --expert x --data $d" \
                "train --data $d --name a/b" "train --data $d --method nope" "train --data $d --targets wz" \
                "mix --experts a --data $d --elite 40" "train --data $d --bogus" "train --data $d --method lora --name x"; do
        run3 bf-svf $args "$(F m.bf)"
        assert_usage_error bf-svf
        [[ ! -s $T/out ]] || fail "$args: output on stdout"
    done
}

@test "svf-11 refuses a terminal" {
    refuses_terminal bf-svf train --data "$(F rev.bf)" "$(F m.bf)"
}

@test "svf-20 train writes an experts stream: kind, meta, z of w1 w3 w2; the log; the applied model reads" {
    run3 bf-svf train -q --data "$(F rev.bf)" --steps 12 --name r1 --threads 2 --log log.jsonl -o e.bf "$(F m.bf)"
    [[ $status -eq 0 ]] || fail "$stderr"
    bf-eval --json e.bf >e.json
    [[ $(jget '$j->{kind}' e.json) == experts ]]
    [[ $(jnames e.json | tr '\n' ' ') == "r1/blk.0.w1.svf_z r1/blk.0.w3.svf_z r1/blk.0.w2.svf_z " ]]
    [[ $(jshape r1/blk.0.w1.svf_z e.json) == 16 ]]
    [[ $(jmeta base e.json) =~ ^[0-9a-f]{16}$ ]]
    [[ $(jget '$j->{meta}{experts}' e.json) == '["r1"]' ]]
    [[ $(wc -l <log.jsonl) -eq 12 ]]
    tail -1 log.jsonl | jget '$j->{val_exact}' >/dev/null
    bf-svf apply --expert e.bf -o a.bf "$(F m.bf)"
    bf-eval --data "$(F rev.bf)" a.bf >/dev/null
    grep -aq bf-svf a.bf
}

@test "svf-21 same inputs, seed and threads: the same bytes; another seed: others" {
    for k in 1 2; do bf-svf train -q --data "$(F rev.bf)" --steps 6 --threads 2 "$(F m.bf)" >o$k.bf; done
    cmp o1.bf o2.bf
    bf-svf train -q --data "$(F rev.bf)" --steps 6 --threads 2 --seed 9 "$(F m.bf)" >o3.bf
    ! cmp -s o1.bf o3.bf
    for k in 1 2; do bf-svf mix -q --experts "$(F rev-e.bf),$(F copy-e.bf)" --data "$(F rev.bf)" --iterations 2 --threads 2 "$(F m.bf)" >x$k.bf; done
    cmp x1.bf x2.bf
}

@test "svf-22 a uniform z (every entry equal) leaves the model's loss as it was" {
    cp "$(F rev-e.bf)" u.bf
    for w in w1 w3 w2; do for i in $(seq 0 15); do bf-poke "rev/blk.0.$w.svf_z" "$i" 0.7 u.bf >u2.bf && mv u2.bf u.bf; done; done
    bf-svf apply --expert u.bf -o a.bf "$(F m.bf)"
    rel_close "$(loss_of a.bf "$(F rev.bf)" val)" "$(loss_of "$(F m.bf)" "$(F rev.bf)" val)" 1e-5
}

@test "svf-23 --method reinforce with --kl, and --method lora (an adapter bf-eval attaches)" {
    bf-svf train -q --data "$(F rev.bf)" --method reinforce --kl 0.1 --steps 4 --batch 8 --max-new 8 --log rl.jsonl \
        -o rl.bf "$(F m.bf)"
    [[ $(wc -l <rl.jsonl) -eq 4 ]]
    head -1 rl.jsonl | jget '$j->{reward}' | grep -Eq '^-?[0-9.e+-]+$'
    bf-svf apply --expert rl.bf "$(F m.bf)" >a.bf
    bf-eval --data "$(F rev.bf)" a.bf >/dev/null
    bf-svf train -q --data "$(F rev.bf)" --method lora --rank 1 --targets wq --steps 4 -o lo.bf "$(F m.bf)"
    [[ $(bf-eval --json lo.bf | jget '$j->{kind}') == adapter ]]
    bf-eval --data "$(F rev.bf)" --adapter lo.bf "$(F m.bf)" >/dev/null
}

@test "svf-24 --kind scales on a ternary model: a log-factor per row; apply keeps the codes, scales each row, runs on the integer kernels" {
    run3 bf-svf train -q --kind scales --targets all --data "$(F rev.bf)" --steps 8 --lr 1e-2 --name r --threads 2 \
        -o se.bf "$(F q.bf)"
    [[ $status -eq 0 ]] || fail "$stderr"
    bf-eval --json se.bf >se.json
    [[ $(jmeta form se.json) == scales ]]
    [[ $(jshape r/blk.0.w1.log_scale se.json) == 32 && $(jshape r/blk.0.wq.log_scale se.json) == 16 ]]
    bf-svf apply --expert se.bf -o t.bf "$(F q.bf)"
    for w in blk.0.wq blk.0.w1 blk.0.w2; do
        cmp <(bf-dump "$w" t.bf) <(bf-dump "$w" "$(F q.bf)") || fail "$w: the codes changed"
        [[ $(bf-dump -m "$w" t.bf) == *'"per_row":true'* ]] || fail "$w: $(bf-dump -m "$w" t.bf)"
    done
    [[ $(jshape blk.0.w1.scale <(bf-eval --json t.bf)) == 32 ]]
    # the per-tensor rule's latent cannot carry per-row scales: left out
    ! bf-eval --json t.bf | jnames | grep -qx blk.0.w1.latent
    # the scale of row r is exp(v_r) times the base's
    perl -e '@v = split " ", `bf-dump r/blk.0.w2.log_scale se.bf`; $s = (split " ", `bf-dump blk.0.w2.scale '"$(F q.bf)"'`)[0];
        @t = split " ", `bf-dump blk.0.w2.scale t.bf`; for $r (0..$#v) { $w = exp($v[$r]) * $s;
        abs($t[$r] - $w) <= 1e-6 * abs($w) or die "row $r: $t[$r], want $w\n" }'
    # the integer kernels and the float forward agree; the expert changed the model
    rel_close "$(loss_of t.bf "$(F rev.bf)" val)" "$(bf-eval --fake-quant --data "$(F rev.bf)" --json t.bf | jget '$j->{loss}')" 1e-4
    [[ $(loss_of t.bf "$(F rev.bf)" val) != "$(loss_of "$(F q.bf)" "$(F rev.bf)" val)" ]]
    # --keep-f32: the adapted matrices as F32
    bf-svf apply --keep-f32 --expert se.bf -o f.bf "$(F q.bf)"
    [[ $(bf-eval --json f.bf | jget 'map { $_->{dtype} } grep { $_->{name} eq "blk.0.w1" } @{$j->{tensors}}') == F32 ]]
    rel_close "$(loss_of f.bf "$(F rev.bf)" val)" "$(bf-eval --fake-quant --data "$(F rev.bf)" --json t.bf | jget '$j->{loss}')" 1e-4
    # a float model: W' = diag(exp(v))·W in F32; the same bytes twice
    for k in 1 2; do bf-svf train -q --kind scales --data "$(F rev.bf)" --steps 4 --threads 2 "$(F m.bf)" >fe$k.bf; done
    cmp fe1.bf fe2.bf
    bf-svf apply --expert fe1.bf "$(F m.bf)" | bf-eval --data "$(F rev.bf)" >/dev/null
}

@test "svf-25 --kind scales: mix searches the scales experts; svf and scales experts do not mix" {
    bf-svf train -q --kind scales --targets all --data "$(F rev.bf)" --steps 6 --name rev --threads 2 -o sr.bf "$(F q.bf)"
    bf-svf train -q --kind scales --targets all --data "$(F copy.bf)" --steps 6 --name copy --threads 2 -o sc.bf "$(F q.bf)"
    bf-svf mix -q --experts sr.bf,sc.bf --data "$(F rev.bf)" --iterations 2 --population 6 --threads 2 -o sx.bf "$(F q.bf)"
    [[ $(bf-eval --json sx.bf | jmeta form) == scales ]]
    bf-svf apply --expert sx.bf "$(F q.bf)" | bf-eval --data "$(F rev.bf)" >/dev/null
    bf-svf train -q --targets all --data "$(F rev.bf)" --steps 2 --name z --threads 2 -o zq.bf "$(F q.bf)"
    run3 bf-svf mix -q --experts sr.bf,zq.bf --data "$(F rev.bf)" --iterations 1 "$(F q.bf)"
    assert_data_error bf-svf
    [[ $stderr == *"form 'svf', not 'scales'"* ]]
    run3 bf-svf train -q --kind rows --data "$(F rev.bf)" "$(F q.bf)"
    assert_usage_error bf-svf
}

@test "svf-26 mix: the first generation holds the uniform mixture, each expert alone and the base; the answer is no worse on the few-shot rows than any" {
    bf-svf mix -q --experts "$(F rev-e.bf),$(F copy-e.bf)" --data "$(F rev.bf)" --iterations 1 --population 4 --elite 2 \
        --log g.jsonl -o x.bf "$(F m.bf)"
    best=$(jget '$j->{best_fitness}' g.jsonl)
    ex=$(bf-svf mix -q --experts "$(F rev-e.bf),$(F copy-e.bf)" --data "$(F rev.bf)" --iterations 1 --population 1 --elite 1 "$(F m.bf)" |
         bf-svf apply --expert - "$(F m.bf)" | bf-eval --data "$(F rev.bf)" --split train --json | jget '$j->{exact}')
    perl -e "exit !($best >= $ex)" || fail "the uniform mixture: $ex beats the search's $best"
    # each of the four, applied and scored on the few-shot (train) split
    for e in "$(F rev-e.bf)" "$(F copy-e.bf)"; do
        bf-svf apply --expert "$e" -o a.bf "$(F m.bf)"
        ex=$(exact_of a.bf "$(F rev.bf)" train)
        perl -e "exit !($best >= $ex)" || fail "$e alone: $ex beats the search's $best"
    done
    ex=$(exact_of "$(F m.bf)" "$(F rev.bf)" train)
    perl -e "exit !($best >= $ex)" || fail "the base: $ex beats the search's $best"
}

@test "svf-30 mix: one expert named mix; the log has alpha per iteration" {
    bf-svf mix -q --experts "$(F rev-e.bf)" --experts "$(F copy-e.bf)" --data "$(F rev.bf)" --iterations 3 --log m.jsonl \
        -o x.bf "$(F m.bf)"
    [[ $(bf-eval --json x.bf | jget '$j->{meta}{experts}') == '["mix"]' ]]
    [[ $(wc -l <m.jsonl) -eq 3 ]]
    [[ $(tail -1 m.jsonl | jget 'scalar @{$j->{alpha}}') == 2 ]]
    tail -1 m.jsonl | jget '$j->{best_fitness}' >/dev/null
    bf-svf apply --expert x.bf "$(F m.bf)" | bf-eval --data "$(F rev.bf)" >/dev/null
    run3 bf-svf mix -q --experts "$(F rev-e.bf),$(F rev-e.bf)" --data "$(F rev.bf)" --iterations 1 "$(F m.bf)"
    assert_data_error bf-svf
    [[ $stderr == *"twice"* ]]
}

@test "svf-31 apply to a ternary model: re-quantized (still TQ2 with its latent) or --keep-f32 (F32 W')" {
    bf-svf train -q --data "$(F rev.bf)" --steps 6 --lr 1e-2 -o qe.bf "$(F q.bf)"
    bf-svf apply --expert qe.bf -o t.bf "$(F q.bf)"
    bf-eval --json t.bf >t.json
    [[ $(jget 'map { $_->{dtype} } grep { $_->{name} eq "blk.0.w1" } @{$j->{tensors}}' t.json) == TQ2 ]]
    jnames t.json | grep -qx blk.0.w1.latent
    bf-svf apply --keep-f32 --expert qe.bf -o f.bf "$(F q.bf)"
    bf-eval --json f.bf >f.json
    [[ $(jget 'map { $_->{dtype} } grep { $_->{name} eq "blk.0.w1" } @{$j->{tensors}}' f.json) == F32 ]]
    [[ $(jget 'map { $_->{dtype} } grep { $_->{name} eq "blk.0.wq" } @{$j->{tensors}}' f.json) == TQ2 ]]
    ! jnames f.json | grep -qx blk.0.w1.scale
    bf-eval --data "$(F rev.bf)" t.bf >/dev/null
    bf-eval --data "$(F rev.bf)" f.bf >/dev/null
}

@test "svf-90 hostile experts streams: another base, NaN, a tensor missing, truncated, not experts" {
    run3 bf-svf apply --expert "$(F rev-e.bf)" "$(F q.bf)"
    assert_data_error bf-svf
    [[ $stderr == *"another base"* ]]
    bf-poke rev/blk.0.w3.svf_z 5 nan "$(F rev-e.bf)" >nan.bf
    run3 bf-svf apply --expert nan.bf "$(F m.bf)"
    assert_data_error bf-svf
    [[ $stderr == *"non-finite"* ]]
    bf-poke -d rev/blk.0.w2.svf_z "$(F rev-e.bf)" >miss.bf
    run3 bf-svf apply --expert miss.bf "$(F m.bf)"
    assert_data_error bf-svf
    head -c 300 "$(F rev-e.bf)" >trunc.bf
    run3 bf-svf apply --expert trunc.bf "$(F m.bf)"
    assert_data_error bf-svf
    run3 bf-svf mix --experts "$(F m.bf)" --data "$(F rev.bf)" "$(F m.bf)"
    assert_data_error bf-svf
    [[ $stderr == *"not experts"* ]]
    run3 bf-svf apply --expert nowhere.bf "$(F m.bf)"
    assert_data_error bf-svf
    [[ ! -s $T/out ]]
}

@test "svf-92 hostile row-scales experts: a log-factor beyond 16, one not finite" {
    bf-svf train -q --kind scales --data "$(F rev.bf)" --steps 2 --name s --threads 2 -o se.bf "$(F m.bf)"
    bf-poke s/blk.0.w1.log_scale 3 17 se.bf >big.bf
    run3 bf-svf apply --expert big.bf "$(F m.bf)"
    assert_data_error bf-svf
    [[ $stderr == *"beyond"* && ! -s $T/out ]]
    bf-poke s/blk.0.w1.log_scale 3 inf se.bf >inf.bf
    run3 bf-svf mix --experts inf.bf --data "$(F rev.bf)" --iterations 1 "$(F m.bf)"
    assert_data_error bf-svf
    [[ $stderr == *"non-finite"* ]]
}

@test "svf-91 every bf-mkbad case as the model (a pipe) or the data (a file): exit 1, one matching line, no output" {
    quick hostile_each pipe model "bf-svf train --steps 1 -q --data $(F rev.bf) {}"
    quick hostile_each file data "bf-svf train --steps 1 -q --data {} $(F m.bf)"
    quick hostile_each pipe model "bf-svf apply --expert $(F rev-e.bf) {}"
}
