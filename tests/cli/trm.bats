#!/usr/bin/env bats
# Recursive models (TRM) across the programs: bf-init --recursion, deep
# supervision in bf-ste-train and bf-muon (--ema), bf-eval --halt and
# --max-steps, the ternary path (bf-quantize, STE, integer kernels), same
# seed same bytes, and hostile recursion meta.

load helpers

# a tiny 4x4 sudoku set and a tiny recursive model for it
mk() {
    bf-data sudoku --size 4 --holes 6-8 --n-train 64 --n-val 16 --seed 3 -o "$T/s.bf"
    bf-init --like "$T/s.bf" --d 16 --heads 2 --layers 2 --ff 32 --attn full --pos learned --recursion 2,2,3 "$@" -o "$T/r.bf"
}

@test "trm-01 bf-init --recursion: the meta map and the four tensors" {
    mk
    bf-eval --json "$T/r.bf" >"$T/j.json"
    [[ $(jget '$j->{meta}{recursion}{n}' "$T/j.json") == 2 ]]
    [[ $(jget '$j->{meta}{recursion}{T}' "$T/j.json") == 2 ]]
    [[ $(jget '$j->{meta}{recursion}{sup}' "$T/j.json") == 3 ]]
    [[ $(jshape rec.y0 "$T/j.json") == 16 && $(jshape rec.z0 "$T/j.json") == 16 ]]
    [[ $(jshape halt.w "$T/j.json") == 1,16 && $(jshape halt.b "$T/j.json") == 1 ]]
    bf-init --like "$T/s.bf" --d 16 --heads 2 --attn full -o "$T/p.bf"
    bf-eval --json "$T/p.bf" >"$T/p.json"
    [[ -z $(jget '$j->{meta}{recursion} // ""' "$T/p.json") ]] || fail "a plain model has a recursion key"
}

@test "trm-02 bf-init --recursion refuses bad values (usage, exit 2)" {
    for bad in 0,2,3 2,0,3 2,2,0 65,1,1 1,65,1 1,1,1025 2,2 2,2,3,4 a,b,c 2,2,3x; do
        run3 bf-init --vocab 5 --ctx 16 --recursion "$bad"
        assert_usage_error bf-init
    done
}

@test "trm-03 training: deep supervision, --ema, same seed same bytes" {
    mk
    bf-ste-train -q --threads 2 --data "$T/s.bf" --steps 6 --batch 16 --lr 3e-3 --ema 0.9 "$T/r.bf" >"$T/a.bf"
    bf-ste-train -q --threads 2 --data "$T/s.bf" --steps 6 --batch 16 --lr 3e-3 --ema 0.9 "$T/r.bf" >"$T/b.bf"
    cmp "$T/a.bf" "$T/b.bf"
    bf-ste-train -q --threads 2 --data "$T/s.bf" --steps 6 --batch 16 --lr 3e-3 --ema 0.9 --log "$T/log" "$T/r.bf" >/dev/null
    [[ $(wc -l <"$T/log") -eq 6 ]] || fail "want 6 log lines (optimizer steps)"
    bf-ste-train -q --threads 2 --data "$T/s.bf" --steps 6 --batch 16 --lr 3e-3 -o "$T/c.bf" "$T/r.bf"
    ! cmp -s "$T/a.bf" "$T/c.bf" || fail "--ema changed nothing"
    bf-muon -q --threads 2 --data "$T/s.bf" --steps 4 --batch 16 --ema 0.99 -o "$T/m.bf" "$T/r.bf"
    bf-eval --json "$T/m.bf" | jget '$j->{meta}{recursion}{n}' | grep -qx 2
}

@test "trm-04 bf-eval: --halt, --max-steps, the steps table" {
    mk
    bf-ste-train -q --data "$T/s.bf" --steps 4 --batch 16 -o "$T/a.bf" "$T/r.bf"
    bf-eval --json --data "$T/s.bf" --halt 1 --max-steps 2 "$T/a.bf" >"$T/e.json"
    [[ $(jget '$j->{mean_steps}' "$T/e.json") == 2 ]]
    [[ -n $(jget '$j->{exact_at_steps}{2}' "$T/e.json") ]]
    [[ -z $(jget '$j->{exact_at_steps}{4} // ""' "$T/e.json") ]]
    bf-eval --json --data "$T/s.bf" --halt 0 "$T/a.bf" >"$T/h.json"
    [[ $(jget '$j->{mean_steps}' "$T/h.json") == 1 ]]
    bf-eval --data "$T/s.bf" "$T/a.bf" | grep -q "exact without halting"
    run3 bf-eval --halt 0.9 "$T/a.bf"
    assert_usage_error bf-eval
    run3 bf-eval --data "$T/s.bf" --halt 2 "$T/a.bf"
    assert_usage_error bf-eval
    bf-init --like "$T/s.bf" --d 16 --heads 2 -o "$T/p.bf"
    run3 bf-eval --data "$T/s.bf" --halt 0.9 "$T/p.bf"
    assert_data_error bf-eval
    run3 bf-eval --data "$T/s.bf" --incremental "$T/a.bf"
    assert_data_error bf-eval
}

@test "trm-05 ternary: quantize, train straight through, evaluate on the integer kernels" {
    mk
    bf-quantize -o "$T/q.bf" "$T/r.bf"
    bf-ste-train -q --data "$T/s.bf" --steps 4 --batch 16 -o "$T/t.bf" "$T/q.bf"
    bf-eval --json --data "$T/s.bf" "$T/t.bf" >"$T/k.json"
    bf-eval --json --data "$T/s.bf" --fake-quant "$T/t.bf" >"$T/f.json"
    [[ -n $(jget '$j->{exact}' "$T/k.json") && -n $(jget '$j->{exact}' "$T/f.json") ]]
    bf-eval --json "$T/t.bf" | jget 'map { $_->{dtype} } grep { $_->{name} eq "blk.0.wq" } @{$j->{tensors}}' | grep -qx TQ2
}

@test "trm-06 a broken recursion meta: exit 1, one line" {
    mk
    perl -0777 -pe 's/\xa1n\x02/\xa1n\x00/' "$T/r.bf" >"$T/bad1.bf"
    perl -0777 -pe 's/\xa1T\x02/\xa1T\x7f/' "$T/r.bf" >"$T/bad2.bf"
    for f in bad1 bad2; do
        ! cmp -s "$T/r.bf" "$T/$f.bf" || fail "$f: the edit did not apply"
        run3 bf-eval --data "$T/s.bf" "$T/$f.bf"
        assert_data_error bf-eval
        [[ $stderr == *recursion* ]] || fail "$f: $stderr"
        run3 bf-ste-train -q --data "$T/s.bf" --steps 1 "$T/$f.bf"
        assert_data_error bf-ste-train
    done
    run3 bf-ste-train -q --data "$T/s.bf" --steps 1 --kl 0.1 "$T/r.bf"
    [[ $status -ne 0 ]]
}
