#!/bin/sh
# report.sh — the phase 7 report from the models and logs in $OUT
# (examples/phase7/Makefile makes them).  Markdown on stdout.
set -eu
BIN=${BIN:-../../bin}
OUT=${OUT:-out}
THREADS=${THREADS:-2}
T="--threads $THREADS"
TASKS="copy reverse sort increment"

# ex MODEL DATA [flags]: exact match on DATA's val split
ex() { m=$1 d=$2; shift 2; "$BIN"/bf-eval --json $T --data "$OUT/$d.bf" "$@" "$m" | sed -n 's/.*"exact":\([-0-9.e+]*\).*/\1/p'; }
pct() { awk -v x="$1" 'BEGIN { printf "%.1f", 100 * x }'; }
# secs LOG: the last "seconds" of a --log file
secs() { tail -1 "$1" | sed -n 's/.*"seconds":\([0-9.e+-]*\).*/\1/p' | awk '{ printf "%.1f", $1 }'; }
# params STREAM: the numbers a stream holds (an expert's z, an adapter's A and B)
params() { "$BIN"/bf-eval --json "$1" | sed -n 's/.*"totals":{"params":\([0-9]*\).*/\1/p'; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
start=$(cat "$OUT/start")
now=$(date +%s)

echo "# Phase 7: singular-value experts (SVF), their mixtures, and ternary models"
echo
echo "Made by \`make -C examples/phase7 results\` at commit $commit on $(date -u +%Y-%m-%d), $(uname -m), $cpu, $THREADS threads;"
echo "$(( now - start )) s wall time from the first data set to this report."
echo
echo "A model (d 64, 2 layers, 4 heads) learns a mixture of copy, reverse and sort, each row led by its instruction"
echo "(\`bf-data seq --tasks copy,reverse,sort\`, 3000 rows), for only a few hundred steps so that it is imperfect; its"
echo "phase-4 ternary version is quantized and trained through the quantizer. An SVF expert (\`bf-svf train\`: z on all"
echo "seven block matrices, 896 numbers, Adam 1e-2, gradient norm clipped to 1e-3) is trained for each task on 1000"
echo "rows with its instruction. Increment is a task the model never saw: its few-shot split has 32 rows, on which"
echo "\`bf-svf mix\` scores the mixtures. Exact match on 200 held-out rows of each task (teacher-forced, every answer"
echo "token right)."
echo

row() {   # label model-file flags params seconds
    label=$1 f=$2 fl=$3 p=$4 s=$5
    line="| $label |"
    for t in $TASKS; do
        e=$(ex "$f" "$t" $fl)
        line="$line $(pct "$e")% |"
        eval "X_$(echo "$label" | tr -c 'a-zA-Z0-9\n' _)_$t=$e"
    done
    echo "$line $p | $s |"
}
key() { echo "$1" | tr -c 'a-zA-Z0-9\n' _; }
get() { eval "echo \$X_$(key "$1")_$2"; }

echo "## Exact match by model and task (val)"
echo
echo "| model | copy | reverse | sort | increment (unseen) | trainable parameters | training s |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
row "base (float)" "$OUT/base.bf" "" "$("$BIN"/bf-eval --json "$OUT/base.bf" | sed -n 's/.*"totals":{"params":\([0-9]*\).*/\1/p')" "$(secs "$OUT/base.log")"
for t in copy reverse sort; do
    row "SVF $t expert" "$OUT/app-svf-$t.bf" "" "$(params "$OUT/svf-$t.bf")" "$(secs "$OUT/svf-$t.log")"
done
row "SVF reverse, REINFORCE + KL 0.1" "$OUT/app-rl-reverse.bf" "" "$(params "$OUT/rl-reverse.bf")" "$(secs "$OUT/rl-reverse.log")"
row "LoRA reverse (rank 1, wq wk wv wo)" "$OUT/base.bf" "--adapter $OUT/lora-reverse.bf" "$(params "$OUT/lora-reverse.bf")" "$(secs "$OUT/lora-reverse.log")"
row "uniform mixture (alpha 1/3 each)" "$OUT/app-mix-uniform.bf" "" 0 0
row "CEM mixture, global alpha" "$OUT/app-mix-cem.bf" "" 3 "$(secs "$OUT/cem.log")"
row "CEM mixture, alpha per layer" "$OUT/app-mix-cem-layer.bf" "" 6 "$(secs "$OUT/cem-layer.log")"
row "ternary base" "$OUT/tern.bf" "" "" "$(secs "$OUT/tern.log")"
row "ternary + SVF reverse, W' in F32" "$OUT/tern-f32.bf" "" "$(params "$OUT/tsvf-reverse.bf")" "$(secs "$OUT/tsvf-reverse.log")"
row "ternary + SVF reverse, re-quantized" "$OUT/tern-rq.bf" "" "$(params "$OUT/tsvf-reverse.bf")" "$(secs "$OUT/tsvf-reverse.log")"
echo
echo "Training seconds: the run's own clock (its --log); the base's are bf-ste-train's. The mixtures' parameters are"
echo "their alpha (3 experts, times 2 layers per layer); the search ran 50 iterations of 32 candidates on the 32"
echo "few-shot rows. The LoRA row has 1024 parameters against the experts' 896: rank 1 on the four attention"
echo "matrices is the nearest LoRA gets (rank 1 on a 64×256 MLP matrix alone is 320 a layer)."
echo

echo "## Verdicts"
echo
for t in copy reverse sort; do
    b=$(get "base (float)" "$t") e=$(get "SVF $t expert" "$t")
    if gt "$e" "$b"; then v=yes; else v=no; fi
    echo "- SVF $t expert beats the base on $t: **$v** ($(pct "$b")% → $(pct "$e")%)."
done
b=$(get "base (float)" reverse) e=$(get "SVF reverse, REINFORCE + KL 0.1" reverse) l=$(get "LoRA reverse (rank 1, wq wk wv wo)" reverse)
if gt "$e" "$b"; then v=yes; else v=no; fi
echo "- The REINFORCE expert beats the base on reverse: **$v** ($(pct "$b")% → $(pct "$e")%); LoRA of about the same size: $(pct "$l")%."
b=$(get "base (float)" increment) u=$(get "uniform mixture (alpha 1/3 each)" increment)
c=$(get "CEM mixture, global alpha" increment) cl=$(get "CEM mixture, alpha per layer" increment)
win=$(printf 'base %s\nuniform %s\nCEM %s\nCEM-per-layer %s\n' "$b" "$u" "$c" "$cl" | sort -k2,2gr -s | head -1 | cut -d' ' -f1)
fs=$(tail -1 "$OUT/cem.log" | sed -n 's/.*"best_fitness":\([0-9.e+-]*\).*/\1/p')
alpha=$(tail -1 "$OUT/cem.log" | sed -n 's/.*"alpha":\(\[[^]]*\]\).*/\1/p')
echo "- Unseen task (increment): base $(pct "$b")%, uniform $(pct "$u")%, CEM $(pct "$c")% (per layer $(pct "$cl")%): **$win** won"
echo "  (first listed among equals). The CEM's best few-shot fitness was $(pct "$fs")% with alpha (copy, reverse, sort) = $alpha."
tb=$(get "ternary base" reverse) tf=$(get "ternary + SVF reverse, W' in F32" reverse) tq=$(get "ternary + SVF reverse, re-quantized" reverse)
gf=$(awk -v a="$tf" -v b="$tb" 'BEGIN { print a - b }') gq=$(awk -v a="$tq" -v b="$tb" 'BEGIN { print a - b }')
if ! gt "$gf" 0; then
    v="inconclusive: the expert did not lift the ternary model even in F32"
elif gt "$gq" "$(awk -v g="$gf" 'BEGIN { print g / 2 }')"; then
    v="not supported here: re-quantized, the adapted ternary model keeps more than half of the F32 gain"
else
    v="supported: the gain lives in the F32 weights; quantized again, at most half of it remains"
fi
echo "- \"SVF needs float32\": ternary reverse $(pct "$tb")%, with the expert's W' in F32 $(pct "$tf")%, re-quantized $(pct "$tq")%:"
echo "  **$v**. (Either way the SVD, the expert and W' are float: SVF on a ternary model adapts its dequantized weights.)"
