#!/bin/sh
# summary.sh DIR... — phase 7 over seeds: the numbers each seed's report.sh
# wrote (DIR/numbers.tsv) as means and ranges, and the verdicts on the means.
# Markdown on stdout.
set -eu
[ $# -ge 1 ] || { echo "usage: summary.sh DIR..." >&2; exit 2; }
n=$#
for d in "$@"; do [ -s "$d/numbers.tsv" ] || { echo "summary.sh: $d/numbers.tsv is missing" >&2; exit 1; }; done
# stat KEY: "mean min max" of KEY's values over the seeds
stat() {
    cat $DIRS_TSV | awk -F'\t' -v k="$1" '$1 == k { v = $2 + 0; s += v; c++; if (c == 1 || v < lo) lo = v; if (c == 1 || v > hi) hi = v }
        END { if (c) printf "%.6f %.6f %.6f\n", s / c, lo, hi; else print "nan nan nan" }'
}
DIRS_TSV=$(for d in "$@"; do printf '%s/numbers.tsv ' "$d"; done)
# cell KEY: "mean% (min–max)"
cell() { stat "$1" | awk '{ printf "%.1f%% (%.1f–%.1f)", 100 * $1, 100 * $2, 100 * $3 }'; }
mean() { stat "$1" | awk '{ print $1 }'; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
pct() { awk -v x="$1" 'BEGIN { printf "%.1f", 100 * x }'; }
label_of() { case $1 in clone) echo 'Clone: (copy)';; mirror) echo 'Mirror: (reverse)';; sorted) echo 'Sorted: (sort)';; increment) echo 'Increment: (no expert knows it)';; esac; }

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "# Phase 7 over $n seeds: ternary experts against SVF, and mixtures for held-out tasks"
echo
echo "Made by \`make -C examples/phase7 results\` at commit $commit on $(date -u +%Y-%m-%d), $(uname -m), $cpu;"
echo "seeds 1 to $n (the data, the initialization, the batches and the search each from the seed). Each cell: the"
echo "mean over the seeds (their range). Seed 1's full report, with the float model's rows and the search curves,"
echo "is REPORT.md."
echo
echo "## The ternary model: an expert per task (val exact match on the expert's own task)"
echo
echo "| model | copy | reverse | sort |"
echo "| --- | ---: | ---: | ---: |"
for r in "ternary base:B" "SVF expert, W' in F32 (the seed's route):F" "SVF expert, re-quantized:Q" "ternary expert (a scale per row):S"; do
    echo "| ${r%%:*} | $(cell "${r##*:}.copy") | $(cell "${r##*:}.reverse") | $(cell "${r##*:}.sort") |"
done
echo
echo "## Held-out tasks: mixtures searched on 32 few-shot rows (held-out rows)"
echo
echo "| model | Clone: (copy) | Mirror: (reverse) | Sorted: (sort) | Increment: (no expert knows it) |"
echo "| --- | ---: | ---: | ---: | ---: |"
for r in "ternary base:base" "SVF experts (F32), uniform:tsvf-uni" "SVF experts (F32), CEM:tsvf-cem" \
         "ternary experts, uniform:tsc-uni" "ternary experts, CEM:tsc-cem"; do
    line="| ${r%%:*} |"
    for h in clone mirror sorted increment; do line="$line $(cell "held.${r##*:}.$h") |"; done
    echo "$line"
done
echo
echo "On the few-shot rows the search saw (mean over the seeds):"
echo
echo "| model | Clone: | Mirror: | Sorted: | Increment: |"
echo "| --- | ---: | ---: | ---: | ---: |"
for r in "ternary base:base" "SVF uniform:tsvf-uni" "SVF CEM:tsvf-cem" "ternary uniform:tsc-uni" "ternary CEM:tsc-cem"; do
    line="| ${r%%:*} |"
    for h in clone mirror sorted increment; do line="$line $(pct "$(mean "few.${r##*:}.$h")")% |"; done
    echo "$line"
done
echo
echo "## Verdicts (on the means over the seeds)"
echo
for t in copy reverse sort; do
    b=$(mean "B.$t") f=$(mean "F.$t") s=$(mean "S.$t")
    gf=$(awk -v a="$f" -v b="$b" 'BEGIN { print a - b }') gs=$(awk -v a="$s" -v b="$b" 'BEGIN { print a - b }')
    if gt "$gf" 0 && ! gt "$(awk -v g="$gf" 'BEGIN { print g / 2 }')" "$gs"; then v=yes; else v=no; fi
    seeds=$(cat $DIRS_TSV | awk -F'\t' '$1 == "half_ok"' | wc -l)
    echo "- Ternary $t expert gains at least half of the F32 SVF expert's gain: **$v** (mean gain: ternary"
    echo "  $(awk -v g="$gs" 'BEGIN { printf "%+.1f", 100 * g }') points, SVF in F32 $(awk -v g="$gf" 'BEGIN { printf "%+.1f", 100 * g }'), over $seeds seeds)."
done
for h in clone mirror sorted increment; do
    b=$(mean "held.base.$h")
    v=no
    for m in tsc tsvf; do
        c=$(mean "held.$m-cem.$h") u=$(mean "held.$m-uni.$h")
        if gt "$c" "$b" && gt "$c" "$u"; then
            v="yes, the $([ "$m" = tsc ] && echo ternary || echo SVF) experts' CEM mixture ($(pct "$c")% against base $(pct "$b")% and uniform $(pct "$u")%)"
            break
        fi
    done
    wins=$(cat $DIRS_TSV | awk -F'\t' -v k="held_win.$h" '$1 == k { s += $2 } END { print s + 0 }')
    echo "- $(label_of "$h"): a CEM mixture beats both the base and the uniform mixture on held-out rows, averaged over"
    echo "  $n seeds: **$v**; seeds on which one does: $wins of $n; the base's range on these rows: $(cell "held.base.$h")."
done
# gain ROUTE: the route's mean gain over the base, in points, over the three tasks
gain() {
    awk -v a="$(mean "$1.copy")" -v b="$(mean "$1.reverse")" -v c="$(mean "$1.sort")" -v x="$(mean B.copy)" \
        -v y="$(mean B.reverse)" -v z="$(mean B.sort)" 'BEGIN { printf "%+.1f", 100 * ((a - x) + (b - y) + (c - z)) / 3 }'
}
gs=$(gain S) gf=$(gain F) gq=$(gain Q)
echo "- \"SVF needs float32\": over the three tasks and $n seeds, SVF experts gain $gf points with W' in F32 and $gq"
echo "  re-quantized; ternary experts gain $gs points with the model still ternary, on the integer kernels."
