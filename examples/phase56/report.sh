#!/bin/sh
# report.sh — the phases 5–6 report from the models and logs in $OUT
# (examples/phase56/Makefile makes them).  Markdown on stdout.
set -eu
BIN=${BIN:-../../bin}
OUT=${OUT:-out}
THREADS=${THREADS:-2}
T="--threads $THREADS"

# j KEY < JSON: one number from bf-eval --json
j() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p"; }
# ev FLAGS... MODEL: bf-eval --json
ev() { "$BIN"/bf-eval --json $T "$@"; }
pct() { awk -v x="$1" 'BEGIN { printf "%.1f", 100 * x }'; }
num() { awk -v x="$1" 'BEGIN { printf "%.4f", x }'; }

REV=$OUT/rev.bf
BAKE_STEPS_RUN=$(sed -n 's/.*"step":\([0-9]*\),.*/\1/p' "$OUT/bake-tern.log" | tail -1)
# exact on bare reverse rows, and the KL to the base reading "Reverse: "
bare() {   # [flags] MODEL -> "exact kl"
    out=$(ev --data "$REV" --compare "$OUT/f32.bf" --ref-prompt "Reverse: " "$@")
    echo "$(echo "$out" | j exact) $(echo "$out" | j kl)"
}
bare_t() {   # the same against the ternary base, all in float (--fake-quant)
    out=$(ev --fake-quant --data "$REV" --compare "$OUT/tern.bf" --ref-prompt "Reverse: " "$@")
    echo "$(echo "$out" | j exact) $(echo "$out" | j kl)"
}
prompted() { ev --data "$OUT/$1-p.bf" ${3-} "$2" | j exact; }   # task model [flags]

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
start=$(stat -c %Y "$OUT/mix.bf")
end=$(stat -c %Y $(ls -t "$OUT"/*.bf | head -1))   # the last model made
echo "# Phases 5–6: prompt baking, half-baking, A/B cycles"
echo
echo "Made by \`make -C examples/phase56 results\` at commit $commit on $(date -u +%Y-%m-%d), $(uname -m), $cpu, $THREADS threads;"
echo "$(( end - start )) s from the first data set to the last model."
echo
echo "A model (d 96, 2 layers, 4 heads) learns a mixture of copy, reverse and sort, each row led by its instruction"
echo "(\`bf-data seq --tasks copy,reverse,sort\`); its phase-4 ternary version is quantized and trained through the"
echo "quantizer. Baking \"Reverse: \" (\`bf-bake\`: LoRA rank 8 on all block matrices, Adam 3e-3, batch 32) should make it"
echo "reverse bare rows (\`3141=1413\`, no instruction). Held-out rows: 200 reverse, 200 sort and 200 copy rows; exact"
echo "match under teacher forcing; KL = KL(base reading \"Reverse: \" ‖ model reading the bare row), mean over answer positions."
echo

set -- $(bare "$OUT/f32.bf"); b_e=$1 b_kl=$2
t_e=$(prompted reverse "$OUT/f32.bf")
echo "## Float model"
echo
echo "| model | bare reverse: exact | KL to prompted teacher | copy (prompted) | sort (prompted) |"
echo "| --- | ---: | ---: | ---: | ---: |"
echo "| base, prompted (the target) | $(pct "$t_e")% | 0 | $(pct "$(prompted copy "$OUT/f32.bf")")% | $(pct "$(prompted sort "$OUT/f32.bf")")% |"
echo "| base, bare | $(pct "$b_e")% | $(num "$b_kl") | | |"
for m in "baked (data rows)|f32-s1" "baked (data rows + sampled trajectories)|baked-samples" "baked, then pursuit ×2 (3 × $(sed -n 's/.*"step":\([0-9]*\),.*/\1/p' "$OUT/bake-pursuit.log" | sort -n | tail -1) steps)|baked-pursuit"; do
    label=${m%|*} f=$OUT/${m#*|}.bf
    set -- $(bare "$f")
    echo "| $label | $(pct "$1")% | $(num "$2") | $(pct "$(prompted copy "$f")")% | $(pct "$(prompted sort "$f")")% |"
    [ "${m#*|}" = f32-s1 ] && baked_e=$1
done
echo
recovery=$(awk -v a="$baked_e" -v b="$t_e" 'BEGIN { printf "%.1f", (b > 0 ? 100 * a / b : 0) }')
echo "Baking recovers $recovery% of the prompted base's exact match on bare rows (the target: at least 95%)."
echo

set -- $(bare_t "$OUT/tern.bf"); tb_e=$1 tb_kl=$2
tt_e=$(prompted reverse "$OUT/tern.bf" --fake-quant)
set -- $(bare_t --adapter "$OUT/ad-tern.bf" "$OUT/tern.bf"); tu_e=$1 tu_kl=$2
set -- $(bare_t "$OUT/tern-s1.bf"); tm_e=$1 tm_kl=$2
echo "## Ternary model (phase 4), in float arithmetic (\`--fake-quant\`) so that all rows compare"
echo
echo "| model | bare reverse: exact | KL to prompted ternary teacher | copy (prompted) | sort (prompted) |"
echo "| --- | ---: | ---: | ---: | ---: |"
echo "| ternary base, prompted | $(pct "$tt_e")% | 0 | $(pct "$(prompted copy "$OUT/tern.bf" --fake-quant)")% | $(pct "$(prompted sort "$OUT/tern.bf" --fake-quant)")% |"
echo "| ternary base, bare | $(pct "$tb_e")% | $(num "$tb_kl") | | |"
echo "| ternary baked, LoRA unmerged | $(pct "$tu_e")% | $(num "$tu_kl") | | |"
echo "| ternary baked, merged and re-quantized | $(pct "$tm_e")% | $(num "$tm_kl") | $(pct "$(prompted copy "$OUT/tern-s1.bf" --fake-quant)")% | $(pct "$(prompted sort "$OUT/tern-s1.bf" --fake-quant)")% |"

# bitforge's procedure: through the quantizer, the mixture kept
set -- $(bare_t "$OUT/tern-keep.bf"); tk_e=$1 tk_kl=$2
set -- $(bare_t --adapter "$OUT/ad-tern-q.bf" "$OUT/tern.bf"); tqu_e=$1 tqu_kl=$2
set -- $(bare_t "$OUT/tern-q-s1.bf"); tqm_e=$1 tqm_kl=$2
kl_sm=$(ev --fake-quant --data "$REV" --compare "$OUT/tern-q-s1.bf" --adapter "$OUT/ad-tern-q.bf" "$OUT/tern.bf" | j kl)
secs() { sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' "$1" | tail -1; }
echo "| bitforge: \`--full --keep\` (the default for a ternary model), merged = trained | $(pct "$tk_e")% | $(num "$tk_kl") | $(pct "$(prompted copy "$OUT/tern-keep.bf" --fake-quant)")% | $(pct "$(prompted sort "$OUT/tern-keep.bf" --fake-quant)")% |"
echo "| bitforge: \`--lora --keep\` through the quantizer, the student | $(pct "$tqu_e")% | $(num "$tqu_kl") | $(pct "$(prompted copy "$OUT/tern.bf" "--fake-quant --adapter $OUT/ad-tern-q.bf")")% | $(pct "$(prompted sort "$OUT/tern.bf" "--fake-quant --adapter $OUT/ad-tern-q.bf")")% |"
echo "| bitforge: \`--lora --keep\`, merged and re-quantized | $(pct "$tqm_e")% | $(num "$tqm_kl") | $(pct "$(prompted copy "$OUT/tern-q-s1.bf" --fake-quant)")% | $(pct "$(prompted sort "$OUT/tern-q-s1.bf" --fake-quant)")% |"
echo
echo "The first four rows are the seed's procedure (the adapter on the frozen scale·codes in float, merged into the latent"
echo "and quantized again: \`--merge latent\`, constant rate); the last three bitforge's: trained through the quantizer, so that"
echo "what is written is what was trained (KL(student ‖ merged) on the bare val rows: $kl_sm), with the prompted mixture's rows"
echo "kept (\`--keep\`, KL to the phase-4 model). The prompted reverse rows of the baked models: seed's merged"
echo "$(pct "$(prompted reverse "$OUT/tern-s1.bf" --fake-quant)")%, \`--full --keep\` $(pct "$(prompted reverse "$OUT/tern-keep.bf" --fake-quant)")%, \`--lora --keep\` merged $(pct "$(prompted reverse "$OUT/tern-q-s1.bf" --fake-quant)")%."
echo
echo "| bake of the ternary model | steps | seconds | bytes written |"
echo "| --- | ---: | ---: | ---: |"
echo "| seed's: LoRA rank 8, \`--adapter-out\` | $BAKE_STEPS_RUN | $(secs "$OUT/bake-tern.log") | $(stat -c %s "$OUT/ad-tern.bf") (the adapter) |"
echo "| bitforge: \`--full --keep\` | $BAKE_STEPS_RUN | $(secs "$OUT/bake-tern-keep.log") | $(stat -c %s "$OUT/tern-keep.bf") (the model) |"
echo "| bitforge: \`--lora --keep\`, \`--adapter-out\` | $BAKE_STEPS_RUN | $(secs "$OUT/bake-tern-q.log") | $(stat -c %s "$OUT/ad-tern-q.bf") (the adapter) |"
echo
echo "(A \`--keep\` step runs a second batch, of the kept rows, beside the baked one.)"
echo

# bf-bake's defaults for a ternary model: the goals a user of it can hold it to
steps600=$("$BIN"/bf-eval --lineage "$OUT/tern-600.bf" | tail -1 | sed -n 's/.*--steps \([0-9]*\).*/\1/p')
set -- $(bare_t "$OUT/tern-600.bf"); d_e=$1
echo "### bf-bake's defaults on the ternary model"
echo
echo "\`bf-bake --prompt \"Reverse: \" --data rev.bf --keep mix.bf --targets all --steps $steps600 -o out.bf tern.bf\` (otherwise"
echo "the defaults for a ternary model: \`--full\`, Adam 1e-3, cosine, batch 32), against the prompted ternary base:"
echo
echo "| rows | before (the base) | after | after / before | goal |"
echo "| --- | ---: | ---: | ---: | --- |"
goal() { awk -v a="$1" -v b="$2" -v g="$3" 'BEGIN { r = b > 0 ? a / b : 0; printf "%.1f%% | at least %d%%: %s", 100 * r, 100 * g, (r >= g ? "met" : "not met") }'; }
echo "| bare reverse (before: the base reading \"Reverse: \") | $(pct "$tt_e")% | $(pct "$d_e")% | $(goal "$d_e" "$tt_e" 0.9) |"
for task in copy sort; do
    b=$(prompted $task "$OUT/tern.bf" --fake-quant) a=$(prompted $task "$OUT/tern-600.bf" --fake-quant)
    echo "| $task (prompted) | $(pct "$b")% | $(pct "$a")% | $(goal "$a" "$b" 0.95) |"
done
b=$(prompted reverse "$OUT/tern.bf" --fake-quant) a=$(prompted reverse "$OUT/tern-600.bf" --fake-quant)
echo "| reverse (prompted: the baked task with its instruction) | $(pct "$b")% | $(pct "$a")% | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f%%", (b > 0 ? 100 * a / b : 0) }') | none (shown: what baking the bare form costs the prompted one) |"
echo
echo "With \`--full\` the model written is the model trained; an adapter through the quantizer gives the same identity (above:"
echo "KL(student ‖ merged) $kl_sm)."
echo

echo "## Half-baking: strength s of the merge (\`bf-halfbake --adapter A --strength s\`)"
echo
echo "| s | float: exact | float: KL | ternary: exact | ternary: KL |"
echo "| ---: | ---: | ---: | ---: | ---: |"
for s in 0 0.25 0.5 0.75 1; do
    set -- $(bare "$OUT/f32-s$s.bf"); fe=$1 fk=$2
    set -- $(bare_t "$OUT/tern-s$s.bf")
    echo "| $s | $(pct "$fe")% | $(num "$fk") | $(pct "$1")% | $(num "$2") |"
done
echo
echo "## Half-baking: baking steps (the float adapter's checkpoints, unmerged)"
echo
echo "| steps | exact | KL |"
echo "| ---: | ---: | ---: |"
for ck in $(ls "$OUT"/ck-*.bf | sed 's/.*ck-\([0-9]*\)\.bf/\1/' | sort -n); do
    set -- $(bare --adapter "$OUT/ck-$ck.bf" "$OUT/f32.bf")
    echo "| $ck | $(pct "$1")% | $(num "$2") |"
done
echo

# ihb_table PREFIX: the iterated half-bakes' table; sets means, the prompted
# three's mean exact match after each iteration
ihb_table() {
    prefix=$1
    echo "| iteration | bare reverse | reverse (prompted) | copy (prompted) | sort (prompted) | mean of the prompted three |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
    means=""
    for i in 0 1 2 3 4 5; do
        f=$OUT/$prefix-$i.bf
        set -- $(bare_t "$f")
        r=$(prompted reverse "$f" --fake-quant) c=$(prompted copy "$f" --fake-quant) s=$(prompted sort "$f" --fake-quant)
        m=$(awk -v a="$r" -v b="$c" -v d="$s" 'BEGIN { printf "%.6f", (a + b + d) / 3 }')
        means="$means $m"
        echo "| $i | $(pct "$1")% | $(pct "$r")% | $(pct "$c")% | $(pct "$s")% | $(pct "$m")% |"
    done
    echo
}
# ihb_summary: from the last ihb_table's means, in points, the fall an
# iteration on average, after the last, and in the worst iteration
ihb_summary() {
    echo "$means" | awk '{ w = 0; for (i = 2; i <= NF; i++) if ($(i-1) - $i > w) w = $(i-1) - $i
        printf "%.2f %.2f %.2f\n", 100 * ($1 - $NF) / (NF - 1), 100 * ($1 - $NF), 100 * w }'
}
echo "## Five iterated half-bakes of the ternary model: the seed's procedure (bake, merge at 0.5 into the latent, quantize again)"
echo
ihb_table ihb
set -- $(ihb_summary); per_iter=$1 after5=$2
echo "The prompted tasks' mean exact match falls by $per_iter points an iteration on average, $after5 points after 5"
echo "(negative: it rises)."
echo
echo "## Five iterated half-bakes of the ternary model: bitforge's (through the quantizer at 0.5, the mixture kept against the phase-4 model)"
echo
ihb_table ihbk
set -- $(ihb_summary); per_iter_k=$1 after5_k=$2 worst_k=$3
echo "The prompted tasks' mean exact match falls by $per_iter_k points an iteration on average ($worst_k in the worst"
echo "iteration), $after5_k points after 5 (negative: it rises)."
echo

echo "## One A/B cycle on the float model (Reverse / Sort, half strength, plateau 1)"
echo
echo '```'
cat "$OUT/ab.txt"
echo '```'
echo

echo "## The seed documents' claims"
echo
echo "| claim | seed | measured | verdict |"
echo "| --- | --- | --- | --- |"
gain=$(awk -v u="$tu_e" -v p="$tt_e" 'BEGIN { printf "%+.1f", 100 * (u - p) }')
rq=$(awk -v m="$tm_e" -v u="$tu_e" 'BEGIN { printf "%+.1f", 100 * (m - u) }')
v1=$(awk -v g="$gain" 'BEGIN { print (g >= 1.5 ? "holds" : "does not hold") }')
v2=$(awk -v r="$rq" 'BEGIN { print (r >= -0.5 ? "holds (no worse than -0.5)" : "does not hold") }')
v3=$(awk -v p="$per_iter" 'BEGIN { print (p <= 0.3 ? "holds" : "does not hold") }')
v4=$(awk -v a="$after5" 'BEGIN { print (a < 2 ? "holds" : "does not hold") }')
gain_k=$(awk -v u="$tk_e" -v p="$tt_e" 'BEGIN { printf "%+.1f", 100 * (u - p) }')
rq_k=$(awk -v m="$tqm_e" -v u="$tqu_e" 'BEGIN { printf "%+.1f", 100 * (m - u) }')
v1k=$(awk -v g="$gain_k" 'BEGIN { print (g >= 1.5 ? "holds" : "does not hold") }')
v2k=$(awk -v r="$rq_k" -v k="$kl_sm" 'BEGIN { print (r >= -0.5 ? "holds (no worse than -0.5; KL(student ‖ merged) " k ")" : "does not hold") }')
v3k=$(awk -v p="$per_iter_k" 'BEGIN { print (p <= 0.3 ? "holds" : "does not hold") }')
v4k=$(awk -v a="$after5_k" 'BEGIN { print (a < 2 ? "holds" : "does not hold") }')
echo "| baking a prompt into a ternary model gains accuracy (the seed's procedure) | +1.5% | $gain points (unmerged baked, bare rows, against the prompted base) | $v1 |"
echo "| baking a prompt into a ternary model gains accuracy (bitforge: \`bf-bake --keep\`, through the quantizer) | +1.5% | $gain_k points (the baked model, bare rows, against the prompted base) | $v1k |"
echo "| re-quantizing the baked ternary model costs (the seed's procedure) | -0.5% | $rq points (merged and re-quantized against unmerged) | $v2 |"
echo "| re-quantizing the baked ternary model costs (bitforge: an adapter through the quantizer) | -0.5% | $rq_k points (merged and re-quantized against the student) | $v2k |"
echo "| each half-bake iteration costs (the seed's procedure) | 0.3% | $per_iter points of the prompted tasks' mean exact match | $v3 |"
echo "| each half-bake iteration costs (bitforge: \`bf-halfbake --keep\`) | 0.3% | $per_iter_k points of the prompted tasks' mean exact match (worst iteration $worst_k) | $v3k |"
echo "| five half-bake iterations cost (the seed's procedure) | < 2% | $after5 points | $v4 |"
echo "| five half-bake iterations cost (bitforge: \`bf-halfbake --keep\`) | < 2% | $after5_k points | $v4k |"
echo "| baking recovers the prompted accuracy without the prompt (float) | — | $recovery% of it | $(awk -v r="$recovery" 'BEGIN { print (r >= 95 ? "holds (>= 95%)" : "does not hold (< 95%)") }') |"
