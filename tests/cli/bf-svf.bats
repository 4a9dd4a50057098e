#!/usr/bin/env bats
# bf-svf (bf-svf(1)): help, usage errors, what train, mix and apply write
# (experts streams, an adapter, models every program reads), determinism,
# a uniform z leaves the model as it was, ternary models, hostile input.
#
# Families: 0x help and version, 1x usage, 2x train, 3x mix and apply, 9x hostile.

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
    for f in --data --name --method --targets --kl --experts --per-layer --iterations --expert --keep-f32; do
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

@test "svf-91 every bf-mkbad case as the model (a pipe) or the data (a file): exit 1, one matching line, no output" {
    quick hostile_each pipe model "bf-svf train --steps 1 -q --data $(F rev.bf) {}"
    quick hostile_each file data "bf-svf train --steps 1 -q --data {} $(F m.bf)"
    quick hostile_each pipe model "bf-svf apply --expert $(F rev-e.bf) {}"
}
