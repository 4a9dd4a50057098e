#!/bin/sh
# Prints the phase 4 table from the models in $OUT.
set -eu
BIN=${BIN:-../../bin}
OUT=${OUT:-out}
THREADS=${THREADS:-2}
D=$OUT/data.bf

# loss, exact match: from bf-eval's one-line summary
metrics() {
    "$BIN"/bf-eval --data "$D" --threads "$THREADS" "$@" |
        awk '{ for (i = 1; i < NF; i++) { if ($i == "loss") l = $(i+1); if ($i == "exact") e = $(i+1) } }
             END { printf "%9.4f %8.1f%%", l, 100 * e }'
}
# bytes of the whole stream's tensors, and of the block matrices (with scales)
sizes() {
    "$BIN"/bf-eval "$1" | awk '
        $1 == "total" { total = $3 }
        $1 ~ /^blk\.[0-9]+\.w[qkvo123](\.scale)?$/ { blk += $5 }
        END { printf "%s %s", total, blk }'
}

f32=$(sizes "$OUT/f32.bf")
f32_total=${f32% *}
f32_blk=${f32#* }

row() {  # label file [eval flags]
    label=$1 file=$2
    shift 2
    printf "%-34s %s\n" "$label" "$(metrics "$@" "$file")"
}

echo "Phase 4 — reverse 3–6 digits, val split, exact match under teacher forcing"
echo
printf "%-34s %9s %9s\n" "model" "val loss" "exact"
row "F32 (trained)" "$OUT/f32.bf"
row "PTQ absmean (TQ2)" "$OUT/ptq-absmean.bf"
row "PTQ threshold tau=0.05" "$OUT/ptq-thr05.bf"
row "PTQ threshold tau=0.1" "$OUT/ptq-thr1.bf"
row "PTQ threshold tau=0.2" "$OUT/ptq-thr2.bf"
row "STE-trained ternary (int kernels)" "$OUT/ste.bf"
row "STE-trained ternary (fake quant)" "$OUT/ste.bf" --fake-quant
row "STE -> dequant --from codes" "$OUT/ste-dq-codes.bf"
row "STE -> dequant --from latent" "$OUT/ste-dq-latent.bf"
echo
printf "%-34s %12s %8s %14s %8s\n" "stream" "bytes" "ratio" "block bytes" "ratio"
for m in f32:F32 ste-deploy:"ternary TQ2, no latents" ste-tq1:"ternary TQ1, no latents" ste:"ternary TQ2 + latents"; do
    f=${m%%:*} label=${m#*:}
    s=$(sizes "$OUT/$f.bf")
    t=${s% *} b=${s#* }
    awk -v l="$label" -v t="$t" -v b="$b" -v ft="$f32_total" -v fb="$f32_blk" \
        'BEGIN { printf "%-34s %12d %7.2fx %14d %7.2fx\n", l, t, ft / t, b, fb / b }'
done
