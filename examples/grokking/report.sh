#!/bin/sh
# report.sh OUT "METHODS" "SEEDS" — steps to 95% val exact match, per run
# (the first evaluation at or above 0.95), from the runs' JSON-line logs.
set -eu
out=$1 methods=$2 seeds=$3

# steps to 95%, or ">N" (N = last step logged) when the run never got there
steps_to() {
    awk -F'[,:{}]' '{
        step = ""; ex = "";
        for (i = 1; i < NF; i++) { if ($i == "\"step\"") step = $(i+1); if ($i == "\"val_exact\"") ex = $(i+1) }
        if (ex != "" && ex + 0 >= 0.95 && !hit) { hit = step }
        last = step
    } END { if (hit) print hit; else print ">" last }' "$1"
}

printf "%-14s" "method"
for s in $seeds; do printf " %9s" "seed $s"; done
printf " %9s %9s\n" "median" "vs adam"
base=""
for m in $methods; do
    printf "%-14s" "$m"
    vals=""
    for s in $seeds; do
        f=$out/$m-$s.log
        if [ -f "$f" ]; then v=$(steps_to "$f"); else v="-"; fi
        printf " %9s" "$v"
        vals="$vals $v"
    done
    med=$(echo $vals | tr ' ' '\n' | grep -v '^-$' | sed 's/^>//' | sort -n | awk '{a[NR]=$1} END { if (NR) print a[int((NR+1)/2)]; else print "-" }')
    censored=$(echo $vals | tr ' ' '\n' | grep -c '^>' || true)
    if [ "$m" = adam ]; then base=$med; base_censored=$censored; fi
    ratio="-"
    if [ -n "$base" ] && [ "$med" != "-" ] && [ "$base" != "-" ]; then ratio=$(awk -v b="$base" -v m="$med" 'BEGIN { printf "x%.1f", b / m }'); fi
    # a baseline that did not finish makes every speed-up a lower bound (not for itself)
    [ "$m" != adam ] && [ "${base_censored:-0}" -gt 0 ] && [ "$ratio" != "-" ] && ratio=">=$ratio"
    [ "$censored" -gt 0 ] && med=">=$med"
    printf " %9s %9s\n" "$med" "$ratio"
done
echo "(steps to 95% val exact match; '>N': not reached by step N; median over seeds)"
