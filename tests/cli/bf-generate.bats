#!/usr/bin/env bats
# bf-generate (bf-generate(1)): help, usage errors, greedy continuations of
# a trained model (float, ternary on the integer kernels, with an adapter, a
# baked model on a bare row), prompts from stdin, sampling (the same seed
# the same text; top-k 1 and a tiny top-p are the argmax), stop texts,
# --escape and --json, and hostile inputs and outputs.
#
# Families: 0x help and usage, 1x greedy continuations, 2x sampling, 3x stop
# texts and output forms, 4x --sudoku, 9x hostile.

load helpers

setup_file() {
    cd "$BATS_FILE_TMPDIR" || return 1
    bf-data seq --tasks copy,reverse --min-len 2 --max-len 4 --n-train 2000 --n-val 40 -o d.bf
    bf-data seq --task reverse --min-len 2 --max-len 4 --n-train 400 --n-val 40 --seed 5 -o bare.bf
    bf-init --like d.bf --d 32 --layers 2 --heads 2 --ff 64 -o i.bf
    bf-ste-train -q --data d.bf --steps 600 --threads 1 -o f.bf i.bf
    bf-quantize --keep-latent f.bf | bf-ste-train -q --data d.bf --steps 300 --threads 1 -o t.bf
    bf-bake -q --prompt "Reverse: " --data bare.bf --lora --steps 150 --threads 1 --adapter-out -o a.bf f.bf
    bf-bake -q --prompt "Reverse: " --data bare.bf --lora --steps 150 --threads 1 -o baked.bf f.bf
}

F() { echo "$BATS_FILE_TMPDIR/$1"; }

@test "gen-01 --help names every option; --version" {
    bf-generate --help >h.txt
    for o in --max-new --temperature --top-k --top-p --stop --adapter --escape --json --seed --threads --quiet; do
        grep -q -- "$o" h.txt || fail "--help: no $o"
    done
    prints_version bf-generate
}

@test "gen-02 usage errors: exit 2, one line" {
    local bad=(
        ''
        "$(F f.bf) a b"
        "--top-k 3 $(F f.bf) x"
        "--top-p 0.5 $(F f.bf) x"
        "--temperature 1 --top-p 0 $(F f.bf) x"
        "--temperature -1 $(F f.bf) x"
        "--max-new 0 $(F f.bf) x"
        "--json --escape $(F f.bf) x"
        "--bogus $(F f.bf) x"
        "-"
    )
    for b in "${bad[@]}"; do
        # shellcheck disable=SC2086
        run3 bf-generate $b
        assert_usage_error bf-generate
    done
    run3 bf-generate --stop '' "$(F f.bf)" x
    assert_usage_error bf-generate
}

@test "gen-10 greedy: a trained model reverses and copies; only the continuation, then a newline" {
    run3 bf-generate -q "$(F f.bf)" "Reverse: 1234="
    [[ $status -eq 0 && $(<"$T/out") == 4321 && -z $stderr ]] || fail "status $status: $(<"$T/out") $stderr"
    [[ $(wc -c <"$T/out") -eq 5 ]]
    run3 bf-generate "$(F f.bf)" "Copy: 907="
    [[ $(<"$T/out") == 907 ]]
    [[ $stderr =~ ^"bf-generate: prompt 10 tokens, "[0-9.]+" tokens/s; decoding 4 tokens, "[0-9.]+" tokens/s"$ ]] || fail "$stderr"
}

@test "gen-11 prompts from stdin: one line out for each line in, '-' the same" {
    printf 'Reverse: 12=\nCopy: 56=\nReverse: 987=\n' >p.txt
    bf-generate -q "$(F f.bf)" <p.txt >a.txt
    printf '21\n56\n789\n' | cmp - a.txt
    bf-generate -q "$(F f.bf)" - <p.txt | cmp - a.txt
    # the last line without its newline is a prompt too
    printf 'Reverse: 12=' | bf-generate -q "$(F f.bf)" | cmp - <(printf '21\n')
    # an empty line has nothing to continue: an empty line out keeps the lines in step
    printf 'Reverse: 12=\n\nCopy: 56=\n' | bf-generate -q "$(F f.bf)" | cmp - <(printf '21\n\n56\n')
    [[ $(printf '\n' | bf-generate -q --json "$(F f.bf)" | jget '$j->{stopped}') == empty ]]
}

@test "gen-12 a ternary model on the integer kernels: the answer, the same bytes on 1 and 2 threads" {
    [[ $(bf-generate -q --threads 1 "$(F t.bf)" "Reverse: 1234=") == 4321 ]]
    bf-generate -q --threads 1 --temperature 1 --seed 4 "$(F t.bf)" <<<"Reverse: 31=" >one.txt
    bf-generate -q --threads 2 --temperature 1 --seed 4 "$(F t.bf)" <<<"Reverse: 31=" | cmp - one.txt
}

@test "gen-13 a baked model reverses the bare row; the input model does not; the adapter attached does as the merge" {
    [[ $(bf-generate -q "$(F f.bf)" "1234=") != 4321 ]]
    [[ $(bf-generate -q "$(F baked.bf)" "1234=") == 4321 ]]
    printf '12=\n987=\n5566=\n3141=\n' >bare.txt
    bf-generate -q "$(F baked.bf)" <bare.txt >merged.txt
    bf-generate -q --adapter "$(F a.bf)" "$(F f.bf)" <bare.txt | cmp - merged.txt
}

@test "gen-20 sampling: a seed gives the same text; seeds differ; top-k 1 and a tiny top-p are the argmax" {
    yes 'Reverse: 1234=' | head -20 >p.txt
    bf-generate -q --temperature 3 --seed 7 "$(F f.bf)" <p.txt >s7.txt
    bf-generate -q --temperature 3 --seed 7 "$(F f.bf)" <p.txt | cmp - s7.txt
    bf-generate -q --temperature 3 --seed 8 "$(F f.bf)" <p.txt >s8.txt
    ! cmp -s s7.txt s8.txt || fail "seeds 7 and 8 gave the same 20 samples at temperature 3"
    # 20 draws at temperature 3 are not all the greedy answer
    [[ $(sort -u s7.txt | wc -l) -gt 1 ]]
    bf-generate -q "$(F f.bf)" <p.txt >greedy.txt
    bf-generate -q --temperature 3 --top-k 1 --seed 7 "$(F f.bf)" <p.txt | cmp - greedy.txt
    bf-generate -q --temperature 3 --top-p 1e-6 --seed 7 "$(F f.bf)" <p.txt | cmp - greedy.txt
}

@test "gen-30 --stop: ends before the text (several may be given); --max-new caps the length" {
    [[ $(bf-generate -q --stop 2 "$(F f.bf)" "Reverse: 1234=") == 43 ]]
    [[ $(bf-generate -q --stop 32 --stop 1 "$(F f.bf)" "Reverse: 1234=") == 4 ]]
    [[ $(bf-generate -q --max-new 2 "$(F f.bf)" "Reverse: 1234=") == 43 ]]
    # with a stop that never comes, the newline is part of the text
    bf-generate -q --stop zz --max-new 6 "$(F f.bf)" "Reverse: 12=" | head -c 3 | cmp - <(printf '21\n')
}

@test "gen-31 --json: one object a prompt, the same text; --escape shows the newline" {
    printf 'Reverse: 12=\nCopy: 5"\\=\n' | bf-generate -q --json "$(F f.bf)" >j.txt
    [[ $(wc -l <j.txt) -eq 2 ]]
    [[ $(head -1 j.txt | jget '$j->{text}') == 21 ]]
    [[ $(head -1 j.txt | jget '$j->{stopped}') == stop ]]
    [[ $(head -1 j.txt | jget '$j->{prompt_tokens}') == 12 ]]
    [[ $(head -1 j.txt | jget '$j->{tokens}') == 3 ]]
    [[ $(sed -n 2p j.txt | jget '$j->{prompt}') == 'Copy: 5"\=' ]]
    [[ $(bf-generate -q --json --max-new 2 "$(F f.bf)" "Reverse: 1234=" | jget '$j->{stopped}') == length ]]
    [[ $(bf-generate -q --escape --stop zz --max-new 3 "$(F f.bf)" "Reverse: 12=") == '21\x0a' ]]
}

# puzzles_of DATA: DATA's val puzzles as text, one a line ('.' a blank)
puzzles_of() { bf-dump val.x "$1" | awk '{ s = ""; for (i = 1; i <= NF; i++) s = s ($i == 0 ? "." : $i); print s }'; }

@test "gen-40 --sudoku: the val puzzles as text, solved: the right blanks and grids are bf-eval's token accuracy and exact match" {
    bf-data sudoku --size 4 --holes 8-10 --n-train 600 --n-val 100 -o s.bf
    bf-init --like s.bf --d 32 --layers 1 --heads 4 --ff 64 --recursion 2,2,6 -o r0.bf
    bf-ste-train -q --data s.bf --steps 150 --lr 3e-3 --batch 32 --threads 1 -o r.bf r0.bf
    puzzles_of s.bf >p.txt
    bf-generate -q --sudoku r.bf <p.txt >out.txt
    [[ $(wc -l <out.txt) -eq 100 ]]
    bf-eval --json --data s.bf r.bf >e.json
    # blanks right, and grids whose every blank is right, against val.y
    read -r right grids < <(paste <(cut -f1 out.txt) <(bf-dump val.y s.bf) | awk -F'\t' '{
        n = split($2, y, " "); ok = 1
        for (i = 1; i <= n; i++) if (y[i] >= 0) { if (substr($1, i, 1) == y[i]) r++; else ok = 0 }
        g += ok } END { print r + 0, g + 0 }')
    [[ $right -gt 0 ]] || fail "no blank right: train the model longer"
    [[ $right -eq $(jget 'sprintf "%.0f", $j->{token_acc} * $j->{targets}' e.json) ]] || fail "right blanks $right; bf-eval: $(<e.json)"
    [[ $grids -eq $(jget 'sprintf "%.0f", $j->{exact} * $j->{rows}' e.json) ]] || fail "grids $grids; bf-eval: $(<e.json)"
    # the steps column: at most the model's 6; 'valid' exactly where the grid breaks no rule
    awk -F'\t' '$2 < 1 || $2 > 6 || ($3 != "valid" && $3 != "invalid") { exit 1 }' out.txt
    # --halt 1 runs every puzzle to --max-steps
    bf-generate -q --sudoku --halt 1 --max-steps 3 r.bf <p.txt | awk -F'\t' '$2 != 3 { exit 1 }'
    # --json, and a puzzle as the argument: the same solution
    [[ $(bf-generate -q --sudoku --json r.bf "$(head -1 p.txt)" | jget '$j->{solution}') == $(head -1 out.txt | cut -f1) ]]
}

@test "gen-41 --sudoku: a solved grid is 'valid'; a puzzle that is not one, and a model that is not a sudoku model: exit 1, one line" {
    bf-data sudoku --size 4 --n-train 20 --n-val 5 -o s.bf
    bf-init --like s.bf --d 16 --layers 1 --heads 2 --ff 32 --recursion 1,1,2 -o r.bf
    # a grid with no blank is its own solution; one cell changed, it breaks the rules
    [[ $(bf-generate -q --sudoku r.bf "1234 3412 2143 4321") == $'1234341221434321\t2\tvalid' ]]
    [[ $(bf-generate -q --sudoku --max-steps 1 r.bf "1234341221434331" | cut -f2,3) == $'1\tinvalid' ]]
    run3 bf-generate --sudoku r.bf "12.4"
    assert_data_error bf-generate
    [[ $stderr == "bf-generate: puzzle 1: 4 cells, not the 16 of a 4x4 grid" ]] || fail "$stderr"
    run3 bf-generate --sudoku r.bf "1234341221434321x"
    assert_data_error bf-generate
    run3 bf-generate --sudoku r.bf "5234341221434321"
    assert_data_error bf-generate
    [[ $stderr == *"'5' is neither a digit 1 to 4"* ]] || fail "$stderr"
    run3 bf-generate --sudoku "$(F f.bf)" "1234341221434321"
    assert_data_error bf-generate
    [[ $stderr == *"not a recursive model"* ]] || fail "$stderr"
    run3 bf-generate --sudoku --temperature 1 r.bf x
    assert_usage_error bf-generate
    run3 bf-generate --halt 0.3 "$(F f.bf)" x
    assert_usage_error bf-generate
}

@test "gen-90 hostile: not a model, a recursive model, bytes outside the vocab, no room, another model's adapter: exit 1, one line, nothing on stdout" {
    run3 bf-generate "$(F d.bf)" x
    assert_data_error bf-generate
    bf-data sudoku --size 4 --n-train 20 --n-val 5 -o s.bf
    bf-init --like s.bf --d 16 --layers 1 --heads 2 --ff 32 --attn full --recursion 2,2,4 -o r.bf
    run3 bf-generate r.bf 1234
    assert_data_error bf-generate
    [[ $stderr == *"recursive model"* ]]
    bf-init --vocab 64 --ctx 16 --d 16 --layers 1 --heads 2 --ff 32 -o v64.bf
    run3 bf-generate v64.bf "z"
    assert_data_error bf-generate
    [[ $stderr == *"byte 122 is outside the model's vocab of 64" ]] || fail "$stderr"
    run3 bf-generate "$(F f.bf)" "$(head -c 400 /dev/zero | tr '\0' 1)"
    assert_data_error bf-generate
    run3 bf-generate "$(F f.bf)" ""
    assert_data_error bf-generate
    bf-init --like "$(F d.bf)" --d 16 --layers 1 --heads 2 --ff 32 -o other.bf
    run3 bf-generate --adapter "$(F a.bf)" other.bf "1234="
    assert_data_error bf-generate
    [[ ! -s $T/out ]]
    head -c 100 "$(F f.bf)" >cut.bf
    run3 bf-generate cut.bf x
    assert_data_error bf-generate
}

@test "gen-91 outputs: a closed pipe ends quietly with 1; /dev/full and a closed stdout: exit 1, one line" {
    local st=0
    yes 'Reverse: 1234=' | head -2000 | bf-generate -q "$(F f.bf)" 2>err | head -c 1 >/dev/null || true
    [[ ! -s err ]] || fail "$(<err)"
    st=0
    bf-generate -q "$(F f.bf)" "Reverse: 1234=" >/dev/full 2>err || st=$?
    [[ $st -eq 1 && $(wc -l <err) -eq 1 && $(<err) == "bf-generate: write error on standard output: "* ]] || fail "status $st: $(<err)"
    st=0
    bf-generate -q "$(F f.bf)" "Reverse: 1234=" >&- 2>err || st=$?
    [[ $st -eq 1 && $(wc -l <err) -eq 1 ]] || fail "status $st: $(<err)"
}

@test "gen-92 every hostile stream as the model, through a pipe and as a file: exit 1, one line, nothing on stdout" {
    quick hostile_each pipe model 'bf-generate {} x'
    quick hostile_each file model 'bf-generate {} x'
}

@test "gen-93 a hostile adapter: exit 1, one line, nothing on stdout" {
    quick hostile_each file data "bf-generate --adapter {} $(F f.bf) x"
}
