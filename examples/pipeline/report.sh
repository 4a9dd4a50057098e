#!/bin/sh
# report.sh — the pipeline's report (out/report.md): each phase's table, then
# the seed documents' claims with the value measured, a verdict and the
# command that reproduces it.  Reads what the phases left in their out/
# folders; writes Markdown on stdout.  Every number comes from those files.
set -eu
OUT=${OUT:-out}
EX=..
. "$(dirname "$0")/../report-lib.sh"
THREADS=${THREADS:-2}
SUB=${SUB:-out}
# the phases' tables shown: the one run's, or with SEEDS the first seed's
BODY=${BODY:-$SUB}
P4=$EX/phase4/$BODY/table.txt P5=$EX/phase5/$BODY/table.txt
P56=$EX/phase56/$BODY/report.md P7=$EX/phase7/$BODY/report.md P8=$EX/phase8/$BODY/table.md
CH=$EX/lineage/$BODY/report.md TRMC=$EX/trm/$BODY/core.md TRMN=$EX/trm/$BODY/core.txt

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
start=$(cat "$OUT/.start" 2>/dev/null || date +%s)
# how the run was made: phases at a time and threads each (the Makefile wrote them at the start)
how=$(awk '{ printf "%d phase%s at a time, %d thread%s each", $1, ($1 == 1 ? "" : "s"), $2, ($2 == 1 ? "" : "s") }' "$OUT/.how" 2>/dev/null || echo "threads: $THREADS")
# the end: the newest of the phases' reports (so that remaking the report later keeps the run's time)
end=$(stat -c %Y "$CH" "$P4" "$P5" "$TRMC" "$P56" "$P7" "$P8" 2>/dev/null | sort -n | tail -1)
end=${end:-$(date +%s)}
# plots: training curves from the chain's and TRM's --log files (loss
# against step), and phase 8's exact match against compression ratio, when
# gnuplot is there; a line of the report for each
plots() {
    command -v gnuplot >/dev/null 2>&1 || { echo "(no plots: gnuplot is not installed)"; echo; return 0; }
    local L=$EX/lineage/$BODY T=$EX/trm/$BODY f
    for f in "$L/s1-f32" "$L/s2-tern" "$L/s3-muon" "$T/rec" "$T/recq" "$T/plain"; do
        [ -s "$f.log" ] && log_curve "$f.log" "$f.curve"
    done
    gnuplot -e "set terminal png size 900,450; set output '$OUT/curves-chain.png'; set logscale y;
        set xlabel 'optimizer step'; set ylabel 'training loss'; set title 'the chain: float, ternary (STE), MuonGrokfast';
        plot '$L/s1-f32.curve' w l t 'phase 0 float', '$L/s2-tern.curve' w l t 'phase 4 ternary STE',
             '$L/s3-muon.curve' w l t 'phase 5 MuonGrokfast (with the KL anchor)'" &&
    gnuplot -e "set terminal png size 900,450; set output '$OUT/curves-trm.png'; set logscale y;
        set xlabel 'optimizer step'; set ylabel 'training loss'; set title '4x4 sudoku';
        plot '$T/plain.curve' w l t 'one pass', '$T/rec.curve' w l t 'TRM float (CE + halting BCE)',
             '$T/recq.curve' w l t 'TRM ternary'" || return 0
    [ -s "$EX/phase8/$BODY/exact-vs-ratio.png" ] && cp "$EX/phase8/$BODY/exact-vs-ratio.png" "$OUT/"
    echo "Training curves (from the \`--log\` files): ![the chain](curves-chain.png) ![TRM](curves-trm.png)"
    [ -s "$OUT/exact-vs-ratio.png" ] && echo "Exact match against compression ratio (phase 8): ![exact vs ratio](exact-vs-ratio.png)"
    echo
}

# a phase's report without its first heading line, headings one level down
body() { sed '1{/^# /d}' "$1" | sed 's/^## /### /'; }
have() { [ -s "$1" ] || { echo "(not run: $1 is missing)"; return 1; }; }
# row FILE PATTERN: the first line of FILE matching PATTERN
row() { grep -m1 -- "$2" "$1" 2>/dev/null || true; }
pct_of() { echo "$1" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /%$/) p = $i } END { print p }'; }

echo "# bitforge pipeline report"
echo
echo "Made by \`make pipeline${FAST:+ FAST=1}\` at commit $commit on $(date -u +%Y-%m-%d), $(uname -m), $cpu, $how;"
echo "wall time $(( end - start )) s (from the first phase to the last phase's report). Each phase's own report is below,"
echo "then the claims table."
echo
echo "## The chain — one model through phases 0 to 8 (examples/lineage)"
echo
if have "$CH"; then body "$CH" | sed '/^- commit/d; /^- machine/d' | cat -s | sed '1{/^$/d}'; fi
echo
plots
echo "## Phase 4 — ternary weights (examples/phase4)"
echo
if have "$P4"; then echo '```'; cat "$P4"; echo '```'; fi
echo
echo "## Phase 5 — MuonGrokfast on the ternary model (examples/phase5)"
echo
if have "$P5"; then echo '```'; cat "$P5"; echo '```'; fi
echo
echo "## Phase 5 — recursive reasoning (examples/trm)"
echo
if have "$TRMC"; then cat "$TRMC"; fi
echo
echo "## Phases 5–6 — prompt baking, half-baking, A/B cycles (examples/phase56)"
echo
if have "$P56"; then body "$P56" | sed '/^## The seed documents/,$d; /^### The seed documents/,$d'; fi
echo
echo "## Phase 7 — experts: SVF in float32 and ternary ones with a scale per row (examples/phase7)"
echo
if have "$P7"; then
    # the search curves beside this report (make report copies them next to REPORT.md)
    if [ -f "$(dirname "$P7")/cem-curves.png" ]; then cp "$(dirname "$P7")/cem-curves.png" "$OUT/"; fi
    body "$P7"
fi
echo
SZ=$EX/sizes/$BODY/report.md
echo "## Sizes at the seed's scale (examples/sizes)"
echo
if have "$SZ"; then body "$SZ" | sed '/^- commit/d; /^- machine/d'; fi
echo
echo "## Phase 8 — compression (examples/phase8)"
echo
if have "$P8"; then body "$P8" | sed "s|(exact-vs-ratio.png)|(../phase8/$BODY/exact-vs-ratio.png)|"; fi
echo

# seeds_summary FILE N: FILE holds "k<TAB>row" for seeds k = 1..N; prints
# one row a claim (in seed 1's order): the claim's value (the first number
# of its measured column) as the mean over the seeds and their range, and
# the verdict when every seed gives the same ("holds", "does not hold", …),
# else "holds on k of N".
seeds_summary() {
    awk -F'\t' -v N="$2" '
    function trim(x) { sub(/^ +/, "", x); sub(/ +$/, "", x); return x }
    function kind(v) { v = trim(v); if (v ~ /^holds/) return "holds"; if (v ~ /^does not hold/) return "does not hold";
                       if (v ~ /^supported/) return "supported"; return v }
    {
        n = split($2, col, " [|] ")
        claim = trim(substr(col[1], 3)); seedv = col[2]; meas = col[3]; verd = col[4]; repro = col[5]; sub(/ [|]$/, "", repro)
        if (!(claim in seen)) { seen[claim] = 1; order[++nc] = claim; sv[claim] = seedv; m1[claim] = meas; v1[claim] = verd; rp[claim] = repro }
        if (match(meas, /[-+]?[0-9]*[.]?[0-9]+/)) { x = substr(meas, RSTART, RLENGTH) + 0; sum[claim] += x; cnt[claim]++
            if (!(claim in lo) || x < lo[claim]) lo[claim] = x; if (!(claim in hi) || x > hi[claim]) hi[claim] = x }
        runs[claim]++; k = kind(verd); if (k == "holds") holds[claim]++
        if (!((claim, k) in nk)) kinds[claim] = kinds[claim] (kinds[claim] == "" ? "" : "\034") k
        nk[claim, k]++
        if (claim in vk && vk[claim] != k) mixed[claim] = 1; vk[claim] = k
    }
    # the verdicts of a claim whose seeds disagree
    function split_verdict(c,    n, ks, i, out, yesno) {
        n = split(kinds[c], ks, "\034"); yesno = 1
        for (i = 1; i <= n; i++) if (ks[i] != "holds" && ks[i] != "does not hold") yesno = 0
        if (yesno) return sprintf("holds on %d of %d seeds", holds[c] + 0, N)
        for (i = 1; i <= n; i++) out = out (i > 1 ? "; " : "") sprintf("%s (%d of %d seeds)", ks[i], nk[c, ks[i]], N)
        return out
    }
    END {
        for (i = 1; i <= nc; i++) {
            c = order[i]
            val = cnt[c] ? sprintf("mean %.4g over %d seeds (from %.4g to %.4g); seed 1: %s", sum[c] / cnt[c], cnt[c], lo[c], hi[c], m1[c]) : m1[c]
            verdict = mixed[c] || runs[c] < N ? split_verdict(c) : v1[c]
            printf "| %s | %s | %s | %s | %s |\n", c, sv[c], val, verdict, rp[c]
        }
    }' "$1"
}

# ---- the claims
# claims SUB: the claims rows of one run (one seed), from the phases' SUB
# folders, as Markdown table rows; each row's "value" for the seeds' summary
# is the number the row gives first after its claim (value_of).
claims() {
P4=$EX/phase4/$1/table.txt P5=$EX/phase5/$1/table.txt
P56=$EX/phase56/$1/report.md P7=$EX/phase7/$1/report.md P8=$EX/phase8/$1/table.md
CH=$EX/lineage/$1/report.md TRMC=$EX/trm/$1/core.md TRMN=$EX/trm/$1/core.txt
if [ -s "$P4" ]; then
    tq2=$(row "$P4" '^ternary TQ2, no latents' | awk '{ print $(NF-2) }')
    tq2b=$(row "$P4" '^ternary TQ2, no latents' | awk '{ print $NF }')
    tq1=$(row "$P4" '^ternary TQ1, no latents' | awk '{ print $(NF-2) }')
    best8=$(grep -m1 'best ratio at < 1% loss change' "$P8" 2>/dev/null | sed 's/.*\*\*\([0-9.]*×\)\*\*.*/\1/' || true)
    v=$(echo "$tq2 $tq1" | awk '{ a = $1 + 0; b = $2 + 0; print (a >= 8.2 || b >= 8.2) ? "holds" : "does not hold for a whole model stream" }')
    echo "| BitNet b1.58 compresses a model 8.2× | 8.2× | whole stream $tq2 (TQ2), $tq1 (TQ1); block matrices alone $tq2b; bf-compress within 1% loss ${best8:-?} | $v; the block matrices alone pass it | \`make -C examples/phase4\`, \`make -C examples/phase8\` |"
    ste=$(row "$P4" '^STE-trained ternary (int kernels)')
    deq=$(row "$P4" '^STE -> dequant --from codes')
    se=$(pct_of "$ste") de=$(pct_of "$deq")
    rec=$(echo "$se $de" | tr -d '%' | awk '{ printf "%.1f", ($1 > 0 ? 100 * $2 / $1 : 0) }')
    echo "| dequantization recovers ≥ 99% of the ternary model's accuracy | ≥ 99% | $rec% ($de exact after \`bf-dequant --from codes\`, $se before; from the latents: $(pct_of "$(row "$P4" 'dequant --from latent')")) | $(echo "$rec" | awk '{ print ($1 >= 99) ? "holds (from the codes)" : "does not hold" }') | \`make -C examples/phase4\` |"
fi
if [ -s "$P5" ]; then
    b=$(row "$P5" '^before' | sed 's/.*exact \([0-9.]*\).*/\1/') a=$(row "$P5" '^after' | sed 's/.*exact \([0-9.]*\).*/\1/')
    n=$(head -1 "$P5" | sed 's/.*, \([0-9]*\) steps.*/\1/')
    echo "| MuonGrokfast works in STE mode (on a ternary model) | works | val exact $a after $n steps of \`bf-muon --preset phase5\` ($b before) | $(echo "$b $a" | awk '{ print ($2 >= $1 - 0.01) ? "holds (it trains the ternary model without losing accuracy)" : "does not hold (accuracy falls)" }') | \`make -C examples/phase5\` |"
fi
if [ -s "$CH" ] && grep -q 'muon: seed' "$CH"; then
    set -- $(grep -o 'muon: seed [0-9.e-]* finetune [0-9.e-]* phase4 [0-9.e-]*' "$CH" | awk '{ print $3, $5, $7 }')
    for which in "the seed's preset|$1|phase5" "bitforge: \`--preset phase5-finetune\`, Muon lr 1e-3|$2|phase5-finetune"; do
        label=${which%%|*}
        rest=${which#*|}
        a=${rest%%|*}
        keep=$(awk -v a="$a" -v b="$3" 'BEGIN { printf "%.1f", (b > 0 ? 100 * a / b : 0) }')
        echo "| MuonGrokfast works in STE mode (on the chain's trained ternary model; $label) | works | $keep% of the phase-4 model's mixture val exact ($(pct "$3") → $(pct "$a")) | $(echo "$keep" | awk '{ print ($1 >= 98) ? "holds (keeps at least 98%)" : "does not hold (keeps less than 98%)" }') | \`make -C examples/lineage\` |"
    done
fi
if [ -s "$TRMN" ]; then
    read -r fe te pe fs fn <"$TRMN"
    r=$(awk -v a="$te" -v b="$fe" 'BEGIN { if (b > 0) printf "%.1f", 100 * a / b; else print "-" }')
    v=$(awk -v a="$te" -v b="$fe" 'BEGIN { if (b <= 0) print "not measurable here: the float model solved no puzzle";
        else if (a / b >= 0.95) print "holds"; else print "does not hold" }')
    echo "| recursive reasoning keeps 95–98% of its accuracy on a ternary model | 95–98% | $r% (4×4 sudoku val exact: ternary $(pct "$te"), float $(pct "$fe"), one pass $(pct "$pe"); float TRM $fn steps, $fs s) | $v | \`make -C examples/trm core\` |"
else
    echo "| recursive reasoning keeps 95–98% of its accuracy on a ternary model | 95–98% | — | not measured (examples/trm did not run) | \`make -C examples/trm core\` |"
fi
if [ -s "$P56" ]; then
    grep '^| baking\|^| re-quantizing\|^| each half-bake\|^| five half-bake' "$P56" | sed 's/ |$/ | `make -C examples\/phase56` |/'
fi
if [ -s "$P7" ]; then
    # the verdict bullet, which may wrap onto the next line
    svf=$(awk '/SVF needs float32/ { p = 1 } p { printf "%s ", $0; if (++n == 2) exit }' "$P7" | sed 's/^- //; s/  */ /g')
    measured=$(echo "$svf" | sed 's/^"SVF needs float32": //; s/: \*\*.*//; s/|/\//g')
    verdict=$(echo "$svf" | sed -n 's/.*\*\*\([^*]*\)\*\*.*/\1/p' | sed 's/|/\//g')
    echo "| SVF needs float32 (dequantize first) | needs F32 | $measured | ${verdict:-see phase 7} | \`make -C examples/phase7 results\` |"
fi
if [ -s "$P8" ]; then
    lossless=$(grep -m1 'best ratio at no loss change' "$P8" | sed 's/.*\*\*\([0-9.]*×\)\*\*.*/\1/')
    onepct=$(grep -m1 'best ratio at < 1% loss change' "$P8" | sed 's/.*\*\*\([0-9.]*×\)\*\*.*/\1/')
    echo "| final compression 280× (100 MB → 0.4 MB) | 280× | $lossless lossless, $onepct within 1% loss (280× = 0.114 bits a weight) | does not hold | \`make -C examples/phase8\` |"
fi
if [ -s "$CH" ]; then
    nprog=$(sed -n '/^The last stream.s lineage/,$p' "$CH" | grep -c '^[0-9][0-9]*  bf-')
    inter=$(grep -o 'interop: [a-z ]*' "$CH" | sed 's/interop: //')
    lossi=$(grep -o 'loss is [a-z ]*: [0-9.e-]* against [0-9.e-]*' "$CH" | sed 's/.*: //')
    v=$( [ "$inter" = "the same" ] && echo "holds within bitforge in this run; for llama.cpp and PyTorch it holds for what \`make check-interop\` checks (not run by the pipeline: it needs their packages)" || echo "does not hold: the safetensors round trip changed the model" )
    echo "| \"all systems verified compatible\" | verified | the chain: $nprog program runs, each reading the stream the one before wrote (examples/lineage); bf-export to GGUF and safetensors, bf-import back: val loss $inter ($lossi); \`make check-interop\`: llama.cpp loads the GGUF exports and agrees with bf-eval's loss, PyTorch's safetensors reads the exports | $v | \`make -C examples/lineage\`, \`make check-interop\` |"
else
    echo "| \"all systems verified compatible\" | verified | — | not measurable here: the chain did not run | \`make -C examples/lineage\` |"
fi
}

echo "## The seed documents' claims"
echo
if [ "${SEEDS:-1}" -le 1 ]; then
    echo "| claim | seed | measured | verdict | reproduce |"
    echo "| --- | --- | --- | --- | --- |"
    claims "$SUB"
else
    # every seed's rows, then one row a claim: the mean and range of its
    # value over the seeds, and a verdict only where every seed agrees
    for k in $(seq 1 "$SEEDS"); do claims "$SUB-s$k" | sed "s/^/$k	/"; done >"$OUT/.claims"
    echo "Over $SEEDS seeds (\`make pipeline SEEDS=$SEEDS\`: each phase's data and initialization drawn from seeds 1 to $SEEDS):"
    echo "the value is the mean over the seeds, with the range; the verdict is one only when every seed gives it,"
    echo "otherwise \"holds on k of N\". The measured text is seed 1's."
    echo
    echo "| claim | seed | measured | verdict | reproduce |"
    echo "| --- | --- | --- | --- | --- |"
    seeds_summary "$OUT/.claims" "$SEEDS"
fi
# the seed's sizes at the seed's size: run once (examples/sizes)
SZC=$EX/sizes/$BODY/report.md
if [ -s "$SZC" ] && grep -q 'sizes: params' "$SZC"; then
    line=$(grep -o 'sizes: params [^`]*' "$SZC")
    f() { echo "$line" | sed "s/.* $1 \([^ ]*\).*/\1/"; }
    n=$(f params) a=$(f tq2) b=$(f tq1) c=$(f best1) d=$(f lossless)
    v=$(echo "$line" | sed 's/.* v82 \(.*\) best1 .*/\1/') w=$(echo "$line" | sed 's/.* v280 //')
    echo "| BitNet b1.58 compresses a model 8.2× (at the seed's size; one run) | 8.2× | ${a}× (TQ2), ${b}× (TQ1): the whole stream of a $n-parameter model | $v | \`make -C examples/sizes\` |"
    echo "| final compression 280× (100 MB → 0.4 MB; at the seed's size; one run) | 280× | ${c}× within 1% loss, ${d}× lossless, of a $n-parameter model | $w | \`make -C examples/sizes\` |"
fi
