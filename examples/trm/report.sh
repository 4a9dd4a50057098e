#!/bin/bash
# report.sh — evaluates the models of the TRM example and writes the report
# (Markdown on stdout; out/curves.png when gnuplot is there).  Environment:
# BIN OUT THREADS PLAIN_STEPS TRM_STEPS REC (set by the Makefile).
set -euo pipefail
: "${BIN:?}" "${OUT:?}"
. "$(dirname "$0")/../report-lib.sh"
ev() {   # data model name [bf-eval options]: OUT/name.json
    local data=$1 model=$2 name=$3
    shift 3
    "$BIN/bf-eval" --threads "$THREADS" --json --data "$data" "$@" "$model" >"$OUT/$name.json"
}
params() { "$BIN/bf-eval" --json "$1" | j '$j->{totals}{params}'; }
get() { j "$2" <"$OUT/$1.json"; }

S4=$OUT/s4.bf S6=$OUT/s6.bf
# plain, rec and recq: evaluated by core.sh already (OUT/NAME.json)
for m in t1n1 t3n6 ema muon muon005; do ev "$S4" "$OUT/$m.bf" "$m"; done
ev "$S6" "$OUT/plain6.bf" plain6
ev "$S6" "$OUT/rec6.bf" rec6
ev "$S4" "$OUT/recq.bf" recq_fq --fake-quant
for m in rec recq; do
    ev "$S4" "$OUT/$m.bf" "${m}_h90" --halt 0.9
    ev "$S4" "$OUT/$m.bf" "${m}_h95" --halt 0.95
    ev "$S4" "$OUT/$m.bf" "${m}_h95k32" --halt 0.95 --max-steps 32
done

# row LABEL RUN JSON: | label | params | steps | train s | exact | cell acc | mean steps | exact after 1/2/4/8/16 |
row() {
    local at
    at=$(get "$3" 'join " / ", map { my $v = $j->{exact_at_steps}{$_}; defined $v ? sprintf("%.1f%%", 100 * $v) : "-" } 1, 2, 4, 8, 16' 2>/dev/null || true)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$(params "$OUT/$2.bf")" "$(steps_of "$OUT/$2.log")" "$(train_s "$OUT/$2.log")" \
        "$(pct "$(get "$3" '$j->{exact}')")" "$(pct "$(get "$3" '$j->{token_acc}')")" \
        "$(get "$3" '$j->{mean_steps} // "1"')" "${at:--}"
}
# hrow LABEL JSON: | label | halt | max steps | exact | mean steps |
hrow() {
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$(get "$2" '$j->{halt}')" "$(get "$2" '$j->{max_steps}')" \
        "$(pct "$(get "$2" '$j->{exact}')")" "$(get "$2" '$j->{mean_steps}')"
}

fe=$(get rec '$j->{exact}') te=$(get recq '$j->{exact}') pe=$(get plain '$j->{exact}')
fe16=$(get rec '$j->{exact_at_steps}{16}') te16=$(get recq '$j->{exact_at_steps}{16}')
rs=$(train_s "$OUT/rec.log") rsteps=$(steps_of "$OUT/rec.log")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "undefined" }'; }
verdict=$(awk -v a="$te" -v b="$fe" 'BEGIN { if (b <= 0) print "not measurable here: the float model solves no puzzle";
    else if (a / b >= 0.95) print "holds in this run";
    else print "does not hold in this run" }')
done_when=$(awk -v e="$fe" -v s="$rs" -v n="$rsteps" -v p="$pe" 'BEGIN {
    printf "%s (val exact %.1f%%, bar 95%%) in %d optimizer steps (bar 1,500) and %.1f s of training (bar 150 s); ",
        (e >= 0.95 && n <= 1500 && s <= 150) ? "met" : "not met", 100 * e, n, s
    printf "the one-pass model %.1f points below (bar 10): %s", 100 * (e - p), (e - p >= 0.10) ? "met" : "not met" }')

if command -v gnuplot >/dev/null 2>&1; then
    for m in plain rec recq t3n6 muon005; do
        log_curve "$OUT/$m.log" "$OUT/$m.curve"
    done
    gnuplot -e "set terminal png size 900,500; set output '$OUT/curves.png'; set logscale y; set xlabel 'optimizer step';
        set ylabel 'training loss (recursive: cross-entropy + halting BCE)'; set key top right;
        plot '$OUT/plain.curve' w l t 'one pass', '$OUT/rec.curve' w l t 'TRM float', '$OUT/recq.curve' w l t 'TRM ternary',
             '$OUT/t3n6.curve' w l t 'TRM T 3 n 6', '$OUT/muon005.curve' w l t 'TRM MuonGrokfast (Muon lr 0.005)'" 2>/dev/null || true
fi
# the run's end: its newest model (so that remaking the report later keeps the run's time)
now=$(stat -c %Y "$OUT"/*.bf | sort -n | tail -1)
start=$(cat "$OUT/start")

cat <<MD
# TRM on sudoku: recursive float, recursive ternary, one pass; ablations; 6x6

- commit $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); $THREADS threads, one run at a time
- wall time of the whole run, from the data to the last model: $((now - start)) s (\`make -C examples/trm\`)

Data: \`bf-data sudoku --size 4 --holes 10-11 --n-train 3000 --n-val 1000
--augment 10\` (every training puzzle with 10 relabeled copies: the
reference relabeled on the fly; 12 holes would exhaust the 4x4 puzzles
distinct up to relabeling), and the same for 6x6 with 18–22 holes.  Every
model: d 64, 2 blocks, 4 heads, d_ff 256, full attention, learned
positions, init std 0.125; AdamW lr 2e-3, β (0.9, 0.95), weight decay 0.1,
50 warm-up steps, cosine, batch 64.  Recursive models: \`--recursion $REC\`
(n, T, sup) unless said, deep supervision on a rolling batch.  The ternary
model is \`bf-quantize\`d at initialization, trained straight through
(absmean, int8 activations) and evaluated on the integer kernels.  Exact
match = every blank right; "val exact" halts at P 0.5 (at most 16 steps);
the last column runs every puzzle the given number of steps without
halting.  "train s" is the training's own time (the log's seconds without
its evaluations).  A ternary model's parameters count its latent weights,
which training keeps beside the codes.

## 4x4 (the issue's experiment and its ablations)

| model | params | optimizer steps | train s | val exact | cell acc | mean steps | exact after 1 / 2 / 4 / 8 / 16 steps |
| --- | --- | --- | --- | --- | --- | --- | --- |
$(row "one pass (the same blocks, pre-norm)" plain plain)
$(row "TRM float, n 3 T 2" rec rec)
$(row "TRM ternary, n 3 T 2 (integer kernels)" recq recq)
$(row "TRM ternary, evaluated in float (--fake-quant)" recq recq_fq)
$(row "ablation: n 1 T 1" t1n1 t1n1)
$(row "ablation: n 6 T 3" t3n6 t3n6)
$(row "ablation: EMA 0.999 (the average evaluated)" ema ema)
$(row "ablation: MuonGrokfast (Muon lr 0.02, AdamW 2e-3 on the rest)" muon muon)
$(row "ablation: MuonGrokfast (Muon lr 0.005, AdamW 2e-3 on the rest)" muon005 muon005)

The issue's bar: $done_when.

The reference (an independent PyTorch implementation on this machine
class, one thread): one pass 79.7% after 3,063 steps; TRM 99.3% (16
steps), 97.5% (2), 96.9% with halting (1.26 steps) after 1,492 steps in
150 s; ternary 96.0% (16 steps), 94.5% with halting after 1,230 steps.

$( [ -f "$OUT/curves.png" ] && echo "Training loss along the runs: ![training curves](curves.png)" )

## The seed's claim, and its mitigations for ternary models

**"A ternary model keeps 95–98% of the float model's recursive-reasoning
accuracy"**: ternary/float val exact with halting = $(ratio "$te" "$fe")
($(pct "$te") / $(pct "$fe")), after 16 steps without halting $(ratio "$te16" "$fe16")
— **$verdict**.

The seed's mitigation for ternary models is to halt at P 0.95 instead of
0.9 and to allow more recursion steps:

| model | halt P | max steps | val exact | mean steps |
| --- | --- | --- | --- | --- |
$(hrow "TRM float" rec)
$(hrow "TRM float" rec_h90)
$(hrow "TRM float" rec_h95)
$(hrow "TRM float" rec_h95k32)
$(hrow "TRM ternary" recq)
$(hrow "TRM ternary" recq_h90)
$(hrow "TRM ternary" recq_h95)
$(hrow "TRM ternary" recq_h95k32)

## 6x6 (18–22 holes)

| model | params | optimizer steps | train s | val exact | cell acc | mean steps | exact after 1 / 2 / 4 / 8 / 16 steps |
| --- | --- | --- | --- | --- | --- | --- | --- |
$(row "one pass" plain6 plain6)
$(row "TRM float, n 3 T 2" rec6 rec6)

The reference: one pass 6.4%; its TRM did not start to learn within 4 minutes.

Not run here: the paper's "one-step gradient vs full backpropagation
through every recursion" ablation (bitforge trains with the one-step
gradient only).  One seed per row: differences of a few points between
rows are within what another seed could change.
MD
