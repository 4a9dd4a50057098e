#!/usr/bin/env bats
# bf-bake (bf-bake(1)): help, usage errors, what a bake writes (a model every
# program reads, or an adapter stream), that it learns (the KL to the
# prompted teacher falls), determinism, --steps 0 leaves the model as it
# was, ternary models (through the quantizer: the merged model is the
# student; --full; --merge latent), --keep retention, pursuit and
# checkpoints, hostile input.
#
# Families: 0x help and version, 1x usage, 2x baking, 3x outputs, 9x hostile.

load helpers

# a tiny model for the prompted mixture, and unprompted reverse rows
setup_file() {
    cd "$BATS_FILE_TMPDIR" || return 1
    bf-data seq --tasks copy,reverse --min-len 2 --max-len 4 --n-train 400 --n-val 40 -o mix.bf
    bf-data seq --task reverse --min-len 2 --max-len 4 --n-train 200 --n-val 30 --seed 3 -o rev.bf
    bf-init --like mix.bf --d 16 --layers 1 --heads 2 --ff 32 -o init.bf
    bf-ste-train -q --data mix.bf --steps 60 --lr 1e-2 --threads 2 -o m.bf init.bf
    bf-quantize --keep-latent m.bf -o q.bf
}

F() { echo "$BATS_FILE_TMPDIR/$1"; }

@test "bake-01 --help prints usage on stdout and exits 0; --version" {
    run3 bf-bake --help
    [[ $status -eq 0 && ! -s $T/err ]]
    grep -q '^usage: bf-bake' "$T/out"
    for f in --prompt --data --rank --alpha --targets --samples --pursuit --adapter-out --checkpoint; do
        grep -q -- "$f" "$T/out" || fail "--help does not mention $f"
    done
    prints_version bf-bake
}

@test "bake-10 usage errors exit 2 with one line and no output" {
    for args in "--data $(F rev.bf)" "--prompt x" "--prompt x --data $(F rev.bf) --rank 0" \
                "--prompt x --data $(F rev.bf) --targets wq,nope" "--prompt x --data $(F rev.bf) --checkpoint p" \
                "--prompt x --data $(F rev.bf) --adapter-out --pursuit 1" "--prompt x --data $(F rev.bf) --bogus"; do
        run3 bf-bake $args "$(F m.bf)"
        assert_usage_error bf-bake
        [[ ! -s $T/out ]] || fail "$args: output on stdout"
    done
}

@test "bake-12 the method's flags: usage errors exit 2 with one line" {
    for args in "--full --lora" "--full --adapter-out" "--full --rank 4" "--full --merge latent" "--merge bogus" \
                "--keep-weight -1" "--schedule bogus" "--full --checkpoint p --every 2"; do
        run3 bf-bake --prompt x --data "$(F rev.bf)" $args "$(F q.bf)"
        assert_usage_error bf-bake
    done
}

@test "bake-11 refuses a terminal" {
    refuses_terminal bf-bake --prompt "Reverse: " --data "$(F rev.bf)" "$(F m.bf)"
}

@test "bake-20 a bake writes a model every program reads, and the KL to the teacher falls" {
    run3 bf-bake -q --prompt "Reverse: " --data "$(F rev.bf)" --steps 40 --lr 1e-2 --threads 2 --log log.jsonl -o b.bf "$(F m.bf)"
    [[ $status -eq 0 ]] || fail "$stderr"
    bf-eval --data "$(F rev.bf)" b.bf >/dev/null
    [[ $(wc -l <log.jsonl) -eq 40 ]]
    first=$(head -1 log.jsonl | jget '$j->{kl}')
    last=$(tail -5 log.jsonl | while read -r l; do jget '$j->{kl}' <<<"$l"; done | sort -g | tail -1)
    lt "$last" "$first" || fail "KL $first -> $last (the worst of the last 5)"
    tail -1 log.jsonl | jget '$j->{val_exact}' >/dev/null
    grep -aq bf-bake b.bf   # the lineage names it
}

@test "bake-21 same inputs, seed and threads: the same bytes; another seed: others" {
    for k in 1 2; do bf-bake -q --prompt "Reverse: " --data "$(F rev.bf)" --steps 8 --threads 2 "$(F m.bf)" >o$k.bf; done
    cmp o1.bf o2.bf
    bf-bake -q --prompt "Reverse: " --data "$(F rev.bf)" --steps 8 --threads 2 --seed 9 "$(F m.bf)" >o3.bf
    ! cmp -s o1.bf o3.bf
}

@test "bake-22 --steps 0: B stays zero, the merged model computes as the base did" {
    bf-bake -q --prompt "Reverse: " --data "$(F rev.bf)" --steps 0 -o z.bf "$(F m.bf)"
    [[ $(loss_of z.bf "$(F rev.bf)" val) == $(loss_of "$(F m.bf)" "$(F rev.bf)" val) ]]
}

@test "bake-23 sampled trajectories and pursuit: two rounds in the log" {
    bf-bake -q --prompt "Reverse: " --data "$(F rev.bf)" --steps 6 --samples 2 --max-new 6 --questions 8 --pursuit 1 \
        --log p.jsonl -o p.bf "$(F m.bf)"
    [[ $(jget '$j->{round}' <(head -1 p.jsonl)) == 0 && $(jget '$j->{round}' <(tail -1 p.jsonl)) == 1 ]]
    bf-eval --data "$(F rev.bf)" p.bf >/dev/null
}

@test "bake-30 --adapter-out writes the adapter stream: kind, meta, A and B of each target" {
    bf-bake -q --prompt "Reverse: " --data "$(F rev.bf)" --steps 3 --rank 2 --targets wq,w2 --adapter-out -o a.bf "$(F m.bf)"
    bf-eval --json a.bf >a.json
    [[ $(jget '$j->{kind}' a.json) == adapter ]]
    [[ $(jnames a.json | tr '\n' ' ') == "blk.0.wq.lora_a blk.0.wq.lora_b blk.0.w2.lora_a blk.0.w2.lora_b " ]]
    [[ $(jshape blk.0.wq.lora_a a.json) == 2,16 && $(jshape blk.0.w2.lora_b a.json) == 16,2 ]]
    [[ $(jmeta rank a.json) == 2 && $(jmeta base a.json) =~ ^[0-9a-f]{16}$ ]]
}

@test "bake-31 --checkpoint PFX --every N: the adapter at those steps" {
    bf-bake -q --prompt "Reverse: " --data "$(F rev.bf)" --steps 6 --checkpoint ck --every 3 -o c.bf "$(F m.bf)"
    [[ -f ck-3.bf && -f ck-6.bf && ! -e ck-4.bf ]]
    [[ $(bf-eval --json ck-6.bf | jget '$j->{kind}') == adapter ]]
}

@test "bake-32 a ternary model: baked, merged and quantized again, still ternary with its latent" {
    bf-bake -q --prompt "Reverse: " --data "$(F rev.bf)" --steps 10 --lr 1e-2 -o t.bf "$(F q.bf)"
    bf-eval --json t.bf >t.json
    [[ $(jget 'map { $_->{dtype} } grep { $_->{name} eq "blk.0.wq" } @{$j->{tensors}}' t.json) == TQ2 ]]
    jnames t.json | grep -qx blk.0.wq.latent
    bf-eval --data "$(F rev.bf)" t.bf >/dev/null
}

@test "bake-33 a ternary model through the quantizer: the merged model is the trained student" {
    # an adapter (--lora), merged: the log's last evaluation is the student's;
    # the written model gives the same exact match and loss (integer kernels)
    bf-bake -q --lora --prompt "Reverse: " --data "$(F rev.bf)" --targets all --steps 12 --lr 2e-2 --threads 2 \
        --log s.jsonl -o s.bf "$(F q.bf)"
    rel_close "$(tail -1 s.jsonl | jget '$j->{val_loss}')" "$(loss_of s.bf "$(F rev.bf)" val)" 1e-4
    [[ $(tail -1 s.jsonl | jget '$j->{val_exact}') == $(bf-eval --json --data "$(F rev.bf)" s.bf | jget '$j->{exact}') ]]
    # the codes moved: the adapter reached the written model
    ! cmp -s <(bf-dump blk.0.wq "$(F q.bf)") <(bf-dump blk.0.wq s.bf)
}

@test "bake-34 --full trains the targets themselves (the default on a ternary model); the others keep their codes" {
    bf-bake -q --full --prompt "Reverse: " --data "$(F rev.bf)" --targets wq --steps 12 --lr 2e-2 --threads 2 \
        --log f.jsonl -o f.bf "$(F q.bf)"
    ! cmp -s <(bf-dump blk.0.wq "$(F q.bf)") <(bf-dump blk.0.wq f.bf)
    for w in wk wv wo w1 w2; do cmp <(bf-dump blk.0.$w "$(F q.bf)") <(bf-dump blk.0.$w f.bf); done
    cmp <(bf-dump -x tok_emb "$(F q.bf)") <(bf-dump -x tok_emb f.bf)
    rel_close "$(tail -1 f.jsonl | jget '$j->{val_loss}')" "$(loss_of f.bf "$(F rev.bf)" val)" 1e-4
    # without --full or --lora a ternary model bakes --full: the same bytes
    bf-bake -q --prompt "Reverse: " --data "$(F rev.bf)" --targets wq --steps 12 --lr 2e-2 --threads 2 -o d.bf "$(F q.bf)"
    cmp <(bf-dump -x blk.0.wq.latent f.bf) <(bf-dump -x blk.0.wq.latent d.bf)
}

@test "bake-35 --merge latent: the seed's rule, a different model from the one through the quantizer" {
    bf-bake -q --merge latent --prompt "Reverse: " --data "$(F rev.bf)" --targets all --steps 12 --lr 2e-2 --threads 2 \
        -o l.bf "$(F q.bf)"
    bf-bake -q --lora --prompt "Reverse: " --data "$(F rev.bf)" --targets all --steps 12 --lr 2e-2 --threads 2 \
        -o s2.bf "$(F q.bf)"
    ! cmp -s l.bf s2.bf
    bf-eval --data "$(F rev.bf)" l.bf >/dev/null
}

@test "bake-36 --keep: the kept rows' KL in the log, the final table, and the model stays closer to the base on them" {
    run3 bf-bake --prompt "Reverse: " --data "$(F rev.bf)" --keep "$(F mix.bf)" --keep-weight 4 --steps 30 --lr 2e-2 \
        --threads 2 --log k.jsonl -o k.bf "$(F m.bf)"
    [[ $status -eq 0 ]] || fail "$stderr"
    [[ $(wc -l <k.jsonl) -eq 30 ]]
    head -1 k.jsonl | jget '$j->{keep_kl}' >/dev/null
    tail -1 k.jsonl | jget '$j->{keep_val_exact}' >/dev/null
    grep -q '^kept (as they are)' "$T/err" || fail "no final table row for the kept rows: $stderr"
    bf-bake -q --prompt "Reverse: " --data "$(F rev.bf)" --steps 30 --lr 2e-2 --threads 2 -o n.bf "$(F m.bf)"
    kk=$(bf-eval --json --data "$(F mix.bf)" --compare "$(F m.bf)" k.bf | jget '$j->{kl}')
    kn=$(bf-eval --json --data "$(F mix.bf)" --compare "$(F m.bf)" n.bf | jget '$j->{kl}')
    lt "$kk" "$kn" || fail "KL(base || baked) on the kept rows: $kk with --keep, $kn without"
}

@test "bake-37 --keep with data of another vocab, or an empty train split: exit 1, one line" {
    bf-data modarith --p 7 -o mod.bf
    run3 bf-bake --prompt x --data "$(F rev.bf)" --keep mod.bf "$(F m.bf)"
    assert_data_error bf-bake
    run3 bf-bake --prompt x --data "$(F rev.bf)" --keep nowhere.bf "$(F m.bf)"
    assert_data_error bf-bake
}

@test "bake-90 bad input: missing data, a data set of another vocab, a prompt too long for the context" {
    run3 bf-bake --prompt x --data nowhere.bf "$(F m.bf)"
    assert_data_error bf-bake
    bf-data modarith --p 7 -o mod.bf
    run3 bf-bake --prompt x --data mod.bf "$(F m.bf)"
    assert_data_error bf-bake
    run3 bf-bake --prompt "$(printf 'x%.0s' {1..40})" --data "$(F rev.bf)" "$(F m.bf)"
    assert_data_error bf-bake
    [[ $stderr == *"do not fit"* ]]
}

@test "bake-91 every bf-mkbad case as the model (a pipe) or the data (a file): exit 1, one matching line, no output" {
    quick hostile_each pipe model "bf-bake --prompt x --steps 1 -q --data $(F rev.bf) {}"
    quick hostile_each file data "bf-bake --prompt x --steps 1 -q --data {} $(F m.bf)"
}
