#!/usr/bin/env bats
# Pipelines (bitforge(7), README): the README's example run as written
# (with small step counts), bitforge(7)'s phase 4-5 pipeline on a small
# model, the lineage a pipeline leaves, failures that propagate loudly down
# a pipe, and readers that go away (EPIPE).
#
# Families: 0x the documented pipelines, 1x lineage and round trips,
# 2x failures down a pipe, 3x EPIPE, 4x make pipeline FAST=1.

load helpers

# readme_block: the README's example after "They compose:", as a script
readme_block() {
    awk '/They compose:/ { on = 1; next }
         on && /^    / { print substr($0, 5); seen = 1; next }
         on && seen && /^[^ ]/ { exit }' "$_bf_root/README.md"
}

# tools_in FILE: the programs of the stream header's lineage, in order
tools_in() { head -c 65536 "$1" | grep -ao 'bf-\(init\|data\|ste-train\|quantize\|dequant\|muon\|eval\)' | tr '\n' ' '; }

# ------------------------------------------------- 0x the documented pipelines

@test "pipe-01 the README's example pipeline runs end to end (small step counts)" {
    readme_block >readme.sh
    local p
    for p in 'bf-data seq' 'bf-init --like' 'bf-ste-train' 'bf-quantize --keep-latent' 'bf-eval tern.bf' 'bf-eval --data'; do
        grep -q -- "$p" readme.sh || fail "the README's example no longer has '$p': $(cat readme.sh)"
    done
    # the same commands with 10 and 8 steps instead of hundreds
    sed -E -e 's/--steps 400/--steps 10/' -e 's/--steps [0-9]+/--steps 8/' readme.sh >run.sh
    ! grep -Eq -- '--steps [0-9]{3}' run.sh
    run3 bash -eo pipefail run.sh
    [[ $status -eq 0 ]] || fail "status $status: $stderr"
    [[ ! -s $T/err ]] || fail "stderr: $stderr"
    # bf-eval tern.bf: the table; bf-eval --data: the metrics line
    grep -q '^kind: model' "$T/out"
    grep -Eq '^blk\.0\.wq +TQ2 +64x64 ' "$T/out"
    grep -Eq '^blk\.1\.w2 +TQ2 +64x256 ' "$T/out"
    grep -q '^ratio to F32: ' "$T/out"
    grep -Eq '^split val +rows 200 +targets [0-9]+ +loss [0-9.]+ +token_acc [0-9.]+ +exact [0-9.]+$' "$T/out"
    # the model kept its latents for further training
    [[ $(bf-tstat tern.bf | grep -c '\.latent ') -eq 14 ]]
}

@test "pipe-02 bitforge(7)'s pipeline: bf-muon in float, then quantize and train through the quantizer, then evaluate" {
    bf-data modarith --op mul --p 97 >grok.bf
    bf-init --vocab 99 --ctx 4 --d 32 --layers 2 --heads 4 >base.bf
    bf-muon --data grok.bf --steps 5 -q <base.bf >fp32.bf
    local st=0
    bf-quantize --keep-latent <fp32.bf | bf-ste-train --data grok.bf --steps 5 -q >tern.bf || st=$?
    [[ $st -eq 0 ]]
    bf-eval --data grok.bf --json tern.bf >m.json
    [[ $(jget '$j->{rows}' m.json) -eq $((97 * 96 - 97 * 96 / 2)) ]]
    jget '$j->{loss} > 0 && $j->{exact} >= 0 && $j->{exact} <= 1 ? "ok" : "bad"' m.json | grep -qx ok
    [[ $(bf-eval --json tern.bf | jget 'scalar grep { $_->{dtype} eq "TQ2" } @{$j->{tensors}}') -eq 14 ]]
    # phase 5 on the ternary model, then the deployment form
    bf-muon --data grok.bf --preset phase5 --steps 3 -q tern.bf | bf-ste-train --data grok.bf --steps 2 --strip -q |
        bf-eval --json >d.json
    [[ $(jget 'scalar grep { $_->{name} =~ /\.latent$/ } @{$j->{tensors}}' d.json) -eq 0 ]]
    jget '$j->{totals}{ratio_to_f32} > 1 ? "ok" : "bad"' d.json | grep -qx ok
}

# --------------------------------------------------- 1x lineage, round trips

@test "pipe-10 each program of a pipeline appends itself to the lineage, in order" {
    bf-data modarith --p 5 >d.bf
    bf-init --like d.bf --d 16 --heads 2 --layers 1 | bf-ste-train --data d.bf --steps 1 -q | bf-quantize --keep-latent |
        bf-muon --data d.bf --steps 1 -q | bf-dequant --from latent >out.bf
    [[ $(tools_in out.bf) == "bf-init bf-ste-train bf-quantize bf-muon bf-dequant " ]] || fail "lineage: $(tools_in out.bf)"
    [[ $(tools_in d.bf) == "bf-data " ]]
}

@test "pipe-11 quantize, dequantize the latents, quantize again: the same ternary model" {
    bf-init --vocab 11 --ctx 4 --d 24 --heads 2 --layers 2 | bf-quantize --keep-latent --per-row >q.bf
    bf-dequant --from latent q.bf | bf-quantize --keep-latent --per-row >r.bf
    diff <(bf-tstat q.bf) <(bf-tstat r.bf)
}

# ----------------------------------------------------- 2x failures down a pipe

@test "pipe-20 a stage that fails mid-stream makes the next one fail loudly, not read a short stream" {
    # 2 MB of tok_emb pass through before the bad block: the writer has flushed part of the stream
    bf-init --vocab 2000 --ctx 6 --d 256 --heads 2 --layers 2 | bf-poke blk.1.w1 7 nan >bad.bf
    local st
    st=$(set +e; bf-quantize bad.bf 2>err1 | bf-dequant 2>err2 >out.bf; echo "${PIPESTATUS[*]}")
    [[ $st == "1 1" ]] || fail "statuses $st"
    [[ $(<err1) == "bf-quantize: "*"'blk.1.w1'"* ]] || fail "$(<err1)"
    [[ $(<err2) == "bf-dequant: "*truncated* ]] || fail "$(<err2)"
    [[ $(wc -l <err2) -eq 1 ]]
    run3 bf-eval out.bf
    assert_data_error bf-eval
}

@test "pipe-21 a stage that fails before writing makes the next one fail on empty input" {
    bf-data modarith --p 5 >d.bf
    local st
    st=$(set +e; bf-init --vocab 9 --ctx 4 --d 16 --heads 2 --layers 1 | bf-ste-train --data d.bf --steps 1 -q 2>err1 |
        bf-quantize 2>err2 >out.bf; echo "${PIPESTATUS[*]}")
    [[ $st == "0 1 1" ]] || fail "statuses $st"
    [[ $(<err1) == "bf-ste-train: "*vocab* ]] || fail "$(<err1)"
    [[ $(<err2) == "bf-quantize: "*empty* ]] || fail "$(<err2)"
    [[ ! -s out.bf ]]
}

# -------------------------------------------------------------------- 3x EPIPE

@test "pipe-30 a reader that goes away ends bf-data, bf-quantize, bf-dequant, bf-ste-train and bf-muon quietly (status 1)" {
    # models of about 8 MB: more than a pipe holds
    bf-data modarith --p 5 >d.bf
    bf-init --like d.bf --d 256 --heads 2 --layers 2 -o m.bf
    bf-quantize --keep-latent m.bf >q.bf
    local cmd
    local -a st
    for cmd in 'bf-data modarith --p 97' 'bf-quantize --keep-latent m.bf' 'bf-dequant --from latent q.bf' \
        'bf-ste-train --data d.bf --steps 0 -q q.bf' 'bf-muon --data d.bf --steps 0 -q q.bf'; do
        # shellcheck disable=SC2086
        $cmd 2>err | head -c 100 >/dev/null
        st=("${PIPESTATUS[@]}")
        [[ ${st[0]} -eq 1 ]] || fail "$cmd: exit status ${st[0]}, want 1"
        [[ ! -s err ]] || fail "$cmd: stderr: $(<err)"
    done
}

# ------------------------------------------------- 4x make pipeline FAST=1

@test "pipe-40 make pipeline FAST=1 runs every phase and writes a report whose every claim has a verdict and a number or a reason" {
    # a copy of examples/ without any run's outputs, so the test neither reuses nor leaves files in the tree
    mkdir ex
    tar -C "$_bf_root/examples" --exclude='./*/out' --exclude='./*/out-*' -cf - . | tar -C ex -xf -
    local t0=$SECONDS
    run3 make -s -C ex/pipeline -j2 FAST=1 THREADS=1 BIN="$BF_BIN"
    [[ $status -eq 0 ]] || fail "status $status: $(tail -n 20 "$T/err")"
    local r=ex/pipeline/out-fast/report.md
    [[ -s $r ]]
    # progress on stderr: a line a phase with the seconds elapsed, and the total
    for p in 'chain: one model' 'phase 4' 'phase 5: MuonGrokfast' 'phase 5: recursive reasoning' 'phases 5-6' 'phase 7' \
        'phase 8' 'done:'; do
        grep -Eq "^== \[[0-9]+ s\] $p" "$T/err" || fail "no progress line '$p': $(grep '^==' "$T/err")"
    done
    # every phase's section, in order, each with content
    local h prev=0 n
    for h in '## The chain' '## Phase 4 ' '## Phase 5 — MuonGrokfast' '## Phase 5 — recursive reasoning' '## Phases 5–6' \
        '## Phase 7' '## Phase 8' "## The seed documents' claims"; do
        n=$(grep -n -m1 -F -- "$h" "$r" | cut -d: -f1)
        [[ -n $n && $n -gt $prev ]] || fail "section '$h' missing or out of order"
        prev=$n
    done
    ! grep -q '(not run:' "$r" || fail "a phase did not run: $(grep '(not run:' "$r")"
    # the chain: the last stream's lineage names every program of the chain, in order
    awk '/^## The chain/ { on = 1 } /^## Phase 4 / { on = 0 } on' "$r" | grep -o '^[0-9]*  bf-[a-z-]*' | awk '{ print $2 }' |
        tr '\n' ' ' >tools
    [[ $(<tools) == "bf-init bf-ste-train bf-quantize bf-ste-train bf-muon bf-bake bf-halfbake bf-dequant bf-svf bf-compress bf-compress " ]] ||
        fail "lineage: $(<tools)"
    # the chain's ternary route beside the F32 one; phase 7's ternary experts, held-out mixtures and the search's curves
    grep -q '^| ternary: experts with a scale per row | `t8-final.bf` | [0-9.]*% |' "$r" || fail "no ternary route in the chain"
    grep -q '^| ternary expert (a scale per row) | [0-9.]*% | [0-9.]*% | [0-9.]*% | [0-9]* | [0-9]* | [0-9]* | [0-9.]* | yes |' "$r" ||
        fail "phase 7: no ternary experts' row on the integer kernels"
    grep -q '^| ternary experts, CEM mixture | [0-9.]*% ([0-9.]*%) |' "$r" || fail "phase 7: no held-out mixtures"
    if command -v gnuplot >/dev/null; then [[ -s ex/pipeline/out-fast/cem-curves.png ]] || fail "no search curves"; fi
    # the claims: every row has five cells, a verdict, and a number in "measured" unless the verdict says why not
    sed -n "/^## The seed documents' claims/,\$p" "$r" | grep '^| ' | tail -n +3 >claims
    [[ $(wc -l <claims) -ge 10 ]] || fail "$(wc -l <claims) claims: $(cat claims)"
    local line cells verdict measured
    while IFS= read -r line; do
        cells=$(awk -F' \\| ' '{ print NF }' <<<"${line#| }")
        [[ $cells -eq 5 ]] || fail "not five cells: $line"
        measured=$(awk -F' \\| ' '{ print $3 }' <<<"${line#| }")
        verdict=$(awk -F' \\| ' '{ print $4 }' <<<"${line#| }")
        [[ $verdict =~ (holds|does\ not\ hold|not\ measurable|supported) ]] || fail "no verdict: $line"
        [[ $measured =~ [0-9] || $verdict =~ not\ measurable.*: ]] || fail "no number and no reason: $line"
    done <claims
    for c in '8.2×' 'dequantization' 'MuonGrokfast' 'recursive reasoning' 'baking' 'half-bake' 'SVF' '280×' 'compatible'; do
        grep -qF -- "$c" claims || fail "no claim about '$c'"
    done
    # the FAST budget: under 3 minutes on 2 cores (generous here: shared machines), for the
    # optimized build (the sanitizer build of make check-asan runs several times slower)
    if [[ $BF_BIN == "$_bf_root/bin" ]]; then
        ((SECONDS - t0 < 400)) || fail "FAST pipeline took $((SECONDS - t0)) s"
    fi
}
