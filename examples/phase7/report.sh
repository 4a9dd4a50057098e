#!/bin/sh
# report.sh — one seed's phase 7 report from the models and logs in $OUT
# (examples/phase7/Makefile makes them): Markdown on stdout, the numbers it
# rests on in $OUT/numbers.tsv (for summary.sh), the search curves in
# $OUT/cem-curves.png when gnuplot is there.
set -eu
BIN=${BIN:-../../bin}
OUT=${OUT:-out}
THREADS=${THREADS:-2}
SEED=${SEED:-1}
T="--threads $THREADS"
TASKS="copy reverse sort"
HELD="clone mirror sorted increment"
NUM=$OUT/numbers.tsv
: >"$NUM"

# ex MODEL DATA [split] [flags]: exact match on DATA's split (default val)
ex() {
    m=$1 d=$2 s=${3:-val}
    shift 2; [ $# -gt 0 ] && shift
    "$BIN"/bf-eval --json $T --split "$s" --data "$OUT/$d.bf" "$@" "$m" | sed -n 's/.*"exact":\([-0-9.e+]*\).*/\1/p'
}
pct() { awk -v x="$1" 'BEGIN { printf "%.1f", 100 * x }'; }
pts() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", 100 * (a - b) }'; }
# secs LOG: the last "seconds" of a --log file
secs() { tail -1 "$1" | sed -n 's/.*"seconds":\([0-9.e+-]*\).*/\1/p' | awk '{ printf "%.1f", $1 }'; }
# params STREAM: the numbers a stream holds (an expert's z, an adapter's A and B)
params() { "$BIN"/bf-eval --json "$1" | sed -n 's/.*"totals":{"params":\([0-9]*\).*/\1/p'; }
bytes() { wc -c <"$1" | tr -d ' '; }
# payload MODEL: the bytes of its tensors other than latent weights (what inference reads)
payload() { "$BIN"/bf-eval --json "$1" | tr '{' '\n' | grep '"name"' | grep -v '"name":"[^"]*\.latent"' |
    sed -n 's/.*"bytes":\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
mean3() { awk -v a="$1" -v b="$2" -v c="$3" 'BEGIN { printf "%.1f", (a + b + c) / 3 }'; }
# f32_mats MODEL: how many block matrices of MODEL are F32 (0: it runs on the integer kernels)
f32_mats() {
    "$BIN"/bf-eval --json "$1" | tr '{' '\n' | grep -c '"name":"blk\.[0-9]*\.w[qkvo123]","dtype":"F32"' || true
}
kernels() { n=$(f32_mats "$1"); if [ "$n" -eq 0 ]; then echo yes; else echo "no ($n matrices F32)"; fi; }
put() { printf '%s\t%s\n' "$1" "$2" >>"$NUM"; }

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
start=$(cat "$OUT/start")

echo "# Phase 7: experts on a float and a ternary model, and their mixtures for held-out tasks (seed $SEED)"
echo
echo "Made by \`make -C examples/phase7\` (seed $SEED) at commit $commit on $(date -u +%Y-%m-%d), $(uname -m), $cpu, $THREADS threads."
echo
echo "A model (d 64, 2 layers, 4 heads) learns a mixture of copy, reverse and sort, each row led by its instruction"
echo "(\`bf-data seq --tasks copy,reverse,sort\`, 3000 rows), for only a few hundred steps so that it is imperfect; its"
echo "ternary version is quantized and trained through the quantizer (phase 4). Every expert adapts all seven block"
echo "matrices and is trained for one task on 1000 rows with its instruction (Adam 1e-2, $(tail -1 "$OUT/tsc-copy.log" | sed -n 's/.*"step":\([0-9]*\).*/\1/p') steps). Exact match on 200"
echo "held-out rows of each task (teacher-forced, every answer token right)."
echo
echo "Two kinds of expert on the ternary model:"
echo
echo "- **SVF** (\`bf-svf train\`, the seed's route): a z per singular value of each matrix's dequantized weights"
echo "  \`scale·codes\`; applied, W' is float32 (\`--keep-f32\`), or its change is added to the latent weights and"
echo "  quantized again with the tensor's own rule (\"re-quantized\")."
echo "- **ternary** (\`bf-svf train --kind scales\`): a log-factor per output row, \`W' = diag(exp(v))·scale·codes\`;"
echo "  applied, the codes stay and each row gets its own scale, so the model stays ternary and runs on the integer"
echo "  kernels."
echo

# ---- the ternary model: an expert per task
for t in $TASKS; do
    eval "B_$t=\$(ex \"\$OUT/tern.bf\" $t)"
    eval "F_$t=\$(ex \"\$OUT/a-tsvf-$t.bf\" $t)"
    eval "Q_$t=\$(ex \"\$OUT/rq-$t.bf\" $t)"
    eval "S_$t=\$(ex \"\$OUT/a-tsc-$t.bf\" $t)"
    for k in B F Q S; do eval "put $k.$t \$${k}_$t"; done
done
row() {   # label letter params expert-bytes model-bytes seconds kernels
    line="| $1 |"
    for t in $TASKS; do eval "v=\$${2}_$t"; line="$line $(pct "$v")% |"; done
    echo "$line $3 | $4 | $5 | $6 | $7 |"
}
ssecs() { mean3 "$(secs "$OUT/$1-copy.log")" "$(secs "$OUT/$1-reverse.log")" "$(secs "$OUT/$1-sort.log")"; }
echo "## The ternary model: an expert per task (val exact match on the expert's own task)"
echo
echo "| model | copy | reverse | sort | numbers per expert | expert bytes | model bytes, no latents | training s | integer kernels |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
row "ternary base" B "" "" "$(payload "$OUT/tern.bf")" "$(secs "$OUT/tern.log")" "$(kernels "$OUT/tern.bf")"
row "SVF expert, W' in F32 (the seed's route)" F "$(params "$OUT/tsvf-copy.bf")" "$(bytes "$OUT/tsvf-copy.bf")" \
    "$(payload "$OUT/a-tsvf-copy.bf")" "$(ssecs tsvf)" "$(kernels "$OUT/a-tsvf-copy.bf")"
row "SVF expert, re-quantized" Q "$(params "$OUT/tsvf-copy.bf")" "$(bytes "$OUT/tsvf-copy.bf")" \
    "$(payload "$OUT/rq-copy.bf")" "$(ssecs tsvf)" "$(kernels "$OUT/rq-copy.bf")"
row "ternary expert (a scale per row)" S "$(params "$OUT/tsc-copy.bf")" "$(bytes "$OUT/tsc-copy.bf")" \
    "$(payload "$OUT/a-tsc-copy.bf")" "$(ssecs tsc)" "$(kernels "$OUT/a-tsc-copy.bf")"
echo
echo "Bytes: the copy expert's stream, and the tensors of the model with it applied other than latent weights (what"
echo "inference reads; each task's are the same size). Training seconds: the mean of the three experts' own clocks"
echo "(their --log); the base's are bf-ste-train's."
echo

# ---- held-out tasks
label_of() { case $1 in clone) echo 'Clone: (copy)';; mirror) echo 'Mirror: (reverse)';; sorted) echo 'Sorted: (sort)';; increment) echo 'Increment: (no expert knows it)';; esac; }
for h in $HELD; do
    eval "HB_$h=\$(ex \"\$OUT/tern.bf\" $h)"
    eval "FB_$h=\$(ex \"\$OUT/tern.bf\" $h train)"
    put "held.base.$h" "$(ex "$OUT/tern.bf" "$h")"
    put "few.base.$h" "$(ex "$OUT/tern.bf" "$h" train)"
    for m in tsvf-uni tsvf-cem tsc-uni tsc-cem; do
        k=$(echo "$m" | tr - _)
        eval "H_${k}_$h=\$(ex \"\$OUT/a-$m-$h.bf\" $h)"
        eval "W_${k}_$h=\$(ex \"\$OUT/a-$m-$h.bf\" $h train)"
        eval "put held.$m.$h \$H_${k}_$h"
        eval "put few.$m.$h \$W_${k}_$h"
    done
done
echo "## Held-out tasks: mixtures searched on 32 few-shot rows"
echo
echo "Each task's instruction is one the model never saw; the operation is one an expert knows, except"
echo "increment's. Each cell: exact match on the 200 held-out rows (on the 32 few-shot rows the search saw)."
echo
echo "| model | $(for h in $HELD; do printf '%s | ' "$(label_of "$h")"; done | sed 's/ | $//') |"
echo "| --- | ---: | ---: | ---: | ---: |"
hrow() {   # label key(base|tsvf_uni|…)
    line="| $1 |"
    for h in $HELD; do
        if [ "$2" = base ]; then eval "a=\$HB_$h b=\$FB_$h"; else eval "a=\$H_${2}_$h b=\$W_${2}_$h"; fi
        line="$line $(pct "$a")% ($(pct "$b")%) |"
    done
    echo "$line"
}
hrow "ternary base" base
hrow "SVF experts (F32), uniform mixture" tsvf_uni
hrow "SVF experts (F32), CEM mixture" tsvf_cem
hrow "ternary experts, uniform mixture" tsc_uni
hrow "ternary experts, CEM mixture" tsc_cem
echo
echo "The uniform mixture is alpha 1/3 for each expert; the CEM ran $(wc -l <"$OUT/tsc-cem-clone.log") iterations of 32 candidates, the"
echo "first generation holding the uniform mixture, each expert alone and the base, so that its answer is never"
echo "worse on the few-shot rows than any of them. Fitness: exact match on the few-shot rows, ties to the lower loss."
echo

# the search curves
if command -v gnuplot >/dev/null 2>&1; then
    for f in "$OUT"/tsvf-cem-*.log "$OUT"/tsc-cem-*.log; do
        sed -n 's/.*"iteration":\([0-9]*\),"best_fitness":\([0-9.e+-]*\),.*"mean_fitness":\([0-9.e+-]*\),.*/\1 \2 \3/p' "$f" >"${f%.log}.dat"
    done
    {
        echo "set terminal pngcairo size 1000,700; set output '$OUT/cem-curves.png'"
        echo "set multiplot layout 2,2 title 'CEM on the few-shot rows (seed $SEED): best and mean fitness per iteration'"
        echo "set xlabel 'iteration'; set ylabel 'few-shot exact match'; set yrange [0:1]; set key bottom right"
        for h in $HELD; do
            echo "set title '$(label_of "$h")'"
            echo "plot '$OUT/tsvf-cem-$h.dat' using 1:2 with lines lw 2 title 'SVF best', '$OUT/tsvf-cem-$h.dat' using 1:3 with lines title 'SVF mean', '$OUT/tsc-cem-$h.dat' using 1:2 with lines lw 2 title 'ternary best', '$OUT/tsc-cem-$h.dat' using 1:3 with lines title 'ternary mean'"
        done
        echo "unset multiplot"
    } | gnuplot 2>/dev/null && { echo "![the searches' curves](cem-curves.png)"; echo; }
fi

# ---- the float model (the seed's SVF on a float model; REINFORCE; LoRA)
FT="copy reverse sort increment"
frow() {   # label model-file flags params seconds
    label=$1 f=$2 fl=$3 p=$4 s=$5
    line="| $label |"
    for t in $FT; do
        e=$(ex "$f" "$t" val $fl)
        line="$line $(pct "$e")% |"
        eval "X_$(echo "$label" | tr -c 'a-zA-Z0-9\n' _)_$t=$e"
    done
    echo "$line $p | $s |"
}
key() { echo "$1" | tr -c 'a-zA-Z0-9\n' _; }
get() { eval "echo \$X_$(key "$1")_$2"; }
echo "## The float model: SVF, REINFORCE, a LoRA of about the same size, mixtures for increment"
echo
echo "| model | copy | reverse | sort | increment | trainable parameters | training s |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
frow "base (float)" "$OUT/base.bf" "" "$(params "$OUT/base.bf")" "$(secs "$OUT/base.log")"
for t in $TASKS; do
    frow "SVF $t expert" "$OUT/app-svf-$t.bf" "" "$(params "$OUT/svf-$t.bf")" "$(secs "$OUT/svf-$t.log")"
done
frow "SVF reverse, REINFORCE + KL 0.1" "$OUT/app-rl-reverse.bf" "" "$(params "$OUT/rl-reverse.bf")" "$(secs "$OUT/rl-reverse.log")"
frow "LoRA reverse (rank 1, wq wk wv wo)" "$OUT/base.bf" "--adapter $OUT/lora-reverse.bf" "$(params "$OUT/lora-reverse.bf")" "$(secs "$OUT/lora-reverse.log")"
frow "uniform mixture (alpha 1/3 each)" "$OUT/app-mix-uniform.bf" "" 0 0
frow "CEM mixture, global alpha" "$OUT/app-mix-cem.bf" "" 3 "$(secs "$OUT/cem.log")"
frow "CEM mixture, alpha per layer" "$OUT/app-mix-cem-layer.bf" "" 6 "$(secs "$OUT/cem-layer.log")"
echo
echo "The LoRA row has 1024 parameters against the experts' 896: rank 1 on the four attention matrices is the nearest"
echo "LoRA gets (rank 1 on a 64×256 MLP matrix alone is 320 a layer). The mixtures are searched on increment's 32"
echo "few-shot rows."
echo

# ---- verdicts
echo "## Verdicts"
echo
half_ok=0
for t in $TASKS; do
    eval "b=\$B_$t f=\$F_$t q=\$Q_$t s=\$S_$t"
    gf=$(awk -v a="$f" -v b="$b" 'BEGIN { print a - b }') gs=$(awk -v a="$s" -v b="$b" 'BEGIN { print a - b }')
    if gt "$gf" 0 && ge "$gs" "$(awk -v g="$gf" 'BEGIN { print g / 2 }')"; then v=yes; half_ok=$((half_ok + 1))
    elif ! gt "$gf" 0 && gt "$gs" 0; then v="yes (the F32 SVF expert gained nothing)"; half_ok=$((half_ok + 1))
    else v=no; fi
    echo "- Ternary $t expert gains at least half of the F32 SVF expert's gain: **$v** (base $(pct "$b")%; SVF in F32"
    echo "  $(pts "$f" "$b") points, re-quantized $(pts "$q" "$b"); ternary $(pts "$s" "$b"), on the integer kernels)."
done
put half_ok "$half_ok"
for h in clone mirror sorted increment; do
    eval "b=\$HB_$h"
    best="" bv=-1
    for m in tsvf tsc; do
        eval "c=\$H_${m}_cem_$h u=\$H_${m}_uni_$h"
        if gt "$c" "$b" && gt "$c" "$u"; then
            if gt "$c" "$bv"; then best=$m bv=$c; fi
        fi
    done
    eval "sc=\$H_tsvf_cem_$h su=\$H_tsvf_uni_$h tc=\$H_tsc_cem_$h tu=\$H_tsc_uni_$h"
    if [ -n "$best" ]; then
        name=$([ "$best" = tsc ] && echo ternary || echo SVF)
        v="yes, the $name experts' CEM mixture"
    else
        v=no
    fi
    put "held_win.$h" "$([ -n "$best" ] && echo 1 || echo 0)"
    echo "- $(label_of "$h"): a CEM mixture beats both the base and the uniform mixture on held-out rows: **$v** (base"
    echo "  $(pct "$b")%; SVF uniform $(pct "$su")%, CEM $(pct "$sc")%; ternary uniform $(pct "$tu")%, CEM $(pct "$tc")%)."
done
tb=$B_reverse tf=$F_reverse tq=$Q_reverse ts=$S_reverse
gf=$(awk -v a="$tf" -v b="$tb" 'BEGIN { print a - b }') gq=$(awk -v a="$tq" -v b="$tb" 'BEGIN { print a - b }')
gs_mean=$(awk -v a="$S_copy" -v b="$S_reverse" -v c="$S_sort" -v x="$B_copy" -v y="$B_reverse" -v z="$B_sort" \
    'BEGIN { printf "%+.1f", 100 * ((a - x) + (b - y) + (c - z)) / 3 }')
put ternary_gain_mean "$gs_mean"
if gt "$gf" 0 && ! gt "$gq" "$(awk -v g="$gf" 'BEGIN { print g / 2 }')"; then
    svfv="SVF's gain lives in its F32 weights: re-quantized, at most half of it remains"
else
    svfv="re-quantized, SVF keeps more than half of its F32 gain"
fi
if [ "$half_ok" -eq 3 ]; then
    v="does not hold: ternary experts (a scale per row) keep the model ternary and gain at least half as much as F32 SVF on every task; $svfv"
elif gt "$gs_mean" 0; then
    v="holds in part: ternary experts gain on the integer kernels, but less than half of F32 SVF's gain on $((3 - half_ok)) of 3 tasks; $svfv"
else
    v="holds here: ternary experts did not lift the ternary model; $svfv"
fi
echo "- \"SVF needs float32\": ternary experts $gs_mean points on average over the three tasks, the model still ternary;"
echo "  reverse: ternary $(pct "$tb")%, SVF with W' in F32 $(pct "$tf")%, SVF re-quantized $(pct "$tq")%, ternary expert $(pct "$ts")%: **$v**."
for t in $TASKS; do
    b=$(get "base (float)" "$t") e=$(get "SVF $t expert" "$t")
    if gt "$e" "$b"; then v=yes; else v=no; fi
    echo "- Float model: SVF $t expert beats the base on $t: **$v** ($(pct "$b")% → $(pct "$e")%)."
done
b=$(get "base (float)" reverse) e=$(get "SVF reverse, REINFORCE + KL 0.1" reverse) l=$(get "LoRA reverse (rank 1, wq wk wv wo)" reverse)
if gt "$e" "$b"; then v=yes; else v=no; fi
echo "- Float model: the REINFORCE expert beats the base on reverse: **$v** ($(pct "$b")% → $(pct "$e")%); LoRA of about the same size: $(pct "$l")%."
echo
echo "$(( $(date +%s) - start )) s of wall time from the first data set to this report."
