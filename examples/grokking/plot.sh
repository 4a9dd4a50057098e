#!/bin/sh
# plot.sh OUT — val exact match against steps for seed 1 of every method.
set -eu
out=$1
for f in "$out"/*-1.log; do
    m=$(basename "$f" -1.log)
    awk -F'[,:{}]' '{ step=""; ex="";
        for (i = 1; i < NF; i++) { if ($i == "\"step\"") step = $(i+1); if ($i == "\"val_exact\"") ex = $(i+1) }
        if (ex != "") print step, ex }' "$f" > "$out/$m.dat"
done
{
    echo "set terminal pngcairo size 900,540; set output '$out/grokking.png'"
    echo "set logscale x; set xlabel 'step'; set ylabel 'val exact match'; set key bottom right"
    echo "set title 'x*y mod 97, 50% train (seed 1)'"
    printf "plot "
    sep=""
    for f in "$out"/*.dat; do printf "%s'%s' using 1:2 with lines title '%s'" "$sep" "$f" "$(basename "$f" .dat)"; sep=", "; done
    echo
} | gnuplot
