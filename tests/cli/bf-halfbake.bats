#!/usr/bin/env bats
# bf-halfbake (bf-halfbake(1)): help and usage, a merge at a strength (0 and
# 1 against bf-eval --adapter), iterated half-bakes and an A/B cycle with
# their logs and tables, determinism, adapters for another base refused.
#
# Families: 0x help, 1x usage, 2x merging, 3x half-bakes and A/B, 9x bad input.

load helpers

setup_file() {
    cd "$BATS_FILE_TMPDIR" || return 1
    bf-data seq --tasks copy,reverse,sort --min-len 2 --max-len 4 --n-train 400 --n-val 40 -o mix.bf
    bf-data seq --task reverse --min-len 2 --max-len 4 --n-train 200 --n-val 30 --seed 3 -o rev.bf
    bf-data seq --task sort --min-len 2 --max-len 4 --n-train 200 --n-val 30 --seed 4 -o sort.bf
    bf-init --like mix.bf --d 16 --layers 1 --heads 2 --ff 32 -o init.bf
    bf-ste-train -q --data mix.bf --steps 60 --lr 1e-2 --threads 2 -o m.bf init.bf
    bf-bake -q --prompt "Reverse: " --data rev.bf --steps 20 --lr 1e-2 --adapter-out -o a.bf m.bf
    bf-init --like mix.bf --d 16 --layers 1 --heads 2 --ff 32 --seed 2 -o other.bf
}

F() { echo "$BATS_FILE_TMPDIR/$1"; }

@test "halfbake-01 --help and --version" {
    run3 bf-halfbake --help
    [[ $status -eq 0 && ! -s $T/err ]]
    grep -q '^usage: bf-halfbake' "$T/out"
    prints_version bf-halfbake
}

@test "halfbake-10 usage errors exit 2 with one line" {
    for args in "" "--prompt x" "--adapter $(F a.bf) --prompt x" "--prompt x --data $(F rev.bf) --prompt-b y" \
                "--adapter $(F a.bf) --iterations 2" "--prompt x --data $(F rev.bf) --iterations 0"; do
        run3 bf-halfbake $args "$(F m.bf)"
        assert_usage_error bf-halfbake
    done
}

@test "halfbake-20 strength 1 computes as the adapter attached; strength 0 as the base (float model)" {
    bf-halfbake --adapter "$(F a.bf)" --strength 1 "$(F m.bf)" >s1.bf
    rel_close "$(loss_of s1.bf "$(F rev.bf)" val)" "$(bf-eval --json --data "$(F rev.bf)" --adapter "$(F a.bf)" "$(F m.bf)" | jget '$j->{loss}')" 1e-5
    bf-halfbake --adapter "$(F a.bf)" --strength 0 "$(F m.bf)" >s0.bf
    [[ $(loss_of s0.bf "$(F rev.bf)" val) == $(loss_of "$(F m.bf)" "$(F rev.bf)" val) ]]
}

@test "halfbake-21 strength 0.5 lies between (loss), and the result is deterministic" {
    bf-halfbake --adapter "$(F a.bf)" --strength 0.5 "$(F m.bf)" >h1.bf
    bf-halfbake --adapter "$(F a.bf)" --strength 0.5 "$(F m.bf)" >h2.bf
    cmp h1.bf h2.bf
    bf-eval --data "$(F rev.bf)" h1.bf >/dev/null
}

@test "halfbake-30 iterated half-bakes: N log lines, a table with N+1 rows, the same bytes twice" {
    for k in 1 2; do   # the same command line (lineage), in two folders
        mkdir r$k && (cd r$k && bf-halfbake --prompt "Reverse: " --data "$(F rev.bf)" --iterations 2 --steps 5 --threads 2 \
            --log l.jsonl "$(F m.bf)" >o.bf 2>t.txt)
    done
    cmp r1/o.bf r2/o.bf
    [[ $(wc -l <r1/l.jsonl) -eq 2 && $(jget '$j->{decision}' <(head -1 r1/l.jsonl)) == kept ]]
    [[ $(grep -c '' r1/t.txt) -eq 4 ]]   # header, start, two iterations
}

@test "halfbake-31 an A/B cycle logs each decision and the set it baked" {
    bf-halfbake -q --prompt "Reverse: " --data "$(F rev.bf)" --prompt-b "Sort: " --data-b "$(F sort.bf)" --iterations 3 \
        --plateau 1 --steps 5 --log ab.jsonl "$(F m.bf)" >ab.bf
    [[ $(wc -l <ab.jsonl) -eq 3 ]]
    while read -r l; do
        d=$(jget '$j->{decision}' <<<"$l"); s=$(jget '$j->{set}' <<<"$l")
        [[ $d == kept || $d == dropped ]] && [[ $s == A || $s == B ]] || fail "bad line: $l"
        jget '$j->{exact_B}' <<<"$l" >/dev/null
    done <ab.jsonl
}

@test "halfbake-90 an adapter for another base, a missing adapter, data of another vocab: exit 1, one line" {
    run3 bf-halfbake --adapter "$(F a.bf)" "$(F other.bf)"
    assert_data_error bf-halfbake
    [[ $stderr == *"another base"* ]]
    run3 bf-halfbake --adapter nowhere.bf "$(F m.bf)"
    assert_data_error bf-halfbake
    bf-data modarith --p 7 -o mod.bf
    run3 bf-halfbake --prompt x --data mod.bf "$(F m.bf)"
    assert_data_error bf-halfbake
}
