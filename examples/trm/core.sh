#!/bin/bash
# core.sh — the pipeline's excerpt of the TRM example: the one-pass, float
# TRM and ternary TRM models of the 4x4 experiment evaluated (OUT/NAME.json,
# which report.sh reads too), as a Markdown
# table on stdout and one line of numbers in OUT/core.txt for the claims
# table (float exact, ternary exact, one-pass exact, float training s,
# float steps).  Environment: BIN OUT THREADS REC (set by the Makefile).
set -euo pipefail
: "${BIN:?}" "${OUT:?}"
. "$(dirname "$0")/../report-lib.sh"
for m in plain rec recq; do "$BIN/bf-eval" --threads "$THREADS" --json --data "$OUT/s4.bf" "$OUT/$m.bf" >"$OUT/$m.json"; done
get() { j "$2" <"$OUT/$1.json"; }
row() {
    printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$(steps_of "$OUT/$2.log")" "$(train_s "$OUT/$2.log")" "$(pct "$(get "$2" '$j->{exact}')")" \
        "$(get "$2" '$j->{mean_steps} // 1')" \
        "$(get "$2" 'my $v = $j->{exact_at_steps}{16}; defined $v ? sprintf("%.1f%%", 100 * $v) : "-"')"
}
echo "$(get rec '$j->{exact}') $(get recq '$j->{exact}') $(get plain '$j->{exact}') $(train_s "$OUT/rec.log") $(steps_of "$OUT/rec.log")" >"$OUT/core.txt"
cat <<MD
4x4 sudoku (\`bf-data sudoku --size 4 --holes 10-11 --augment 10\`,
$(j '$j->{tensors}[2]{shape}[0]' < <("$BIN/bf-eval" --json "$OUT/s4.bf")) val puzzles); d 64, 2 blocks, 4 heads; AdamW 2e-3; TRM \`--recursion $REC\`
(n, T, sup) trained with deep supervision; the ternary TRM quantized at
initialization, trained straight through, evaluated on the integer kernels.
Val exact halts at P 0.5.  The ablations, the seed's ternary mitigations
and 6x6 puzzles: \`make -C examples/trm\` (examples/trm/results/REPORT.md).

| model | optimizer steps | train s | val exact | mean steps | exact after 16 steps |
| --- | --- | --- | --- | --- | --- |
$(row "one pass (the same blocks)" plain)
$(row "TRM float" rec)
$(row "TRM ternary (integer kernels)" recq)
MD
