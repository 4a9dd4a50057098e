#!/bin/bash
# report.sh — the lineage example's report (Markdown on stdout): every
# stream of the chain evaluated with bf-eval, the archive's size, and the
# last stream's lineage.  Environment: BIN OUT THREADS CHAIN (the Makefile).
set -euo pipefail
: "${BIN:?}" "${OUT:?}" "${CHAIN:?}"
. "$(dirname "$0")/../report-lib.sh"
ev() { "$BIN/bf-eval" --threads "$THREADS" --json --data "$1" "$2"; }

declare -A what=(
    [s0-init]="phase 0: a fresh model"
    [s1-f32]="phase 0: trained in float on the prompted mixture"
    [s2-tern]="phase 4: quantized (absmean, TQ2), trained straight through"
    [s3-muon]="phase 5: MuonGrokfast (the seed's preset at a trained model's Muon lr, 1e-3), STE mode"
    [s4-baked]="phase 5: \"Reverse: \" baked in through the quantizer, the mixture kept"
    [s5-ab]="phase 6: an A/B cycle of \"Reverse: \" and \"Sort: \" half-bakes, the mixture kept"
    [s6-f32]="phase 7: dequantized (scale·codes to F32)"
    [s7-svf]="phase 7: SVF experts' CEM mixture applied"
    [s8-final]="phase 8: compressed and back"
    [t7-tern]="phase 7, ternary route (from \`s5-ab.bf\`): ternary experts' CEM mixture applied, still ternary"
    [t8-final]="phase 8, ternary route: compressed and back"
)

rows=""
for s in $CHAIN; do
    f=$OUT/$s.bf
    tool=$("$BIN/bf-eval" --lineage --json "$f" | j '$j->{lineage}[-1]{tool}')
    bytes=$(stat -c %s "$f")
    ev "$OUT/mix.bf" "$f" >"$OUT/$s.mix.json"
    mx=$(j '$j->{exact}' <"$OUT/$s.mix.json")
    rv=$(ev "$OUT/rev.bf" "$f" | j '$j->{exact}')
    rows+="| ${what[$s]} | \`$s.bf\` | $tool | $bytes | $(pct "$mx") | $(pct "$rv") |"$'\n'
    eval "mix_${s//-/_}=$mx rev_${s//-/_}=$rv"
done
mix_seed=$(ev "$OUT/mix.bf" "$OUT/x-muon-seed.bf" | j '$j->{exact}')
MUON_STEPS_RUN=$(perl -MJSON::PP -ne 'my $x = decode_json($_); $s = $x->{step}; END { print $s // 0 }' "$OUT/s3-muon.log")
# the chain's goals after phase 6, against the phase-4 ternary model
goal_mix=$(awk -v a="$mix_s5_ab" -v b="$mix_s2_tern" 'BEGIN { printf "%.1f%% of it: %s", 100 * a / b, (a >= 0.95 * b) ? "met" : "not met" }')
goal_rev=$(awk -v a="$rev_s5_ab" 'BEGIN { printf "%.1f%%: %s", 100 * a, (a >= 0.8) ? "met" : "not met" }')
arch=$(stat -c %s "$OUT/s8.bfz")
tarch=$(stat -c %s "$OUT/t8.bfz")
tratio=$(j 'sprintf "%.2f", $j->{ratio_f32}' <"$OUT/t8.json")
f32=$(stat -c %s "$OUT/s1-f32.bf")
ratio=$(j 'sprintf "%.2f", $j->{ratio_f32}' <"$OUT/s8.json")
ab=$(grep -c . "$OUT/s5-ab.log")
kept=$(perl -MJSON::PP -ne 'my $x = decode_json($_); $k++ if $x->{decision} eq "kept"; END { print $k // 0 }' "$OUT/s5-ab.log")
l8=$(j '$j->{loss}' <"$OUT/s8-final.mix.json")   # the chain's last stream, evaluated above
l9=$(ev "$OUT/mix.bf" "$OUT/s9-import.bf" | j '$j->{loss}')
same=$(awk -v a="$l8" -v b="$l9" 'BEGIN { print (a == b) ? "the same" : "different" }')
now=$(date +%s)
start=$(cat "$OUT/start")

cat <<MD
# One model through phases 0 to 8

- commit $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); $THREADS threads
- wall time: $((now - start)) s (\`make -C examples/lineage\`)

Each step reads the stream the step before wrote (examples/lineage/Makefile).
The model: d 64, 2 layers, 4 heads, on \`bf-data seq --tasks copy,reverse,sort\`
(each row led by its instruction).  "Mixture val exact": the mixture's
held-out rows, instruction included; "bare reverse rows": held-out rows
with no instruction, which only a model with "Reverse: " baked in should
reverse.  Integer kernels for the ternary streams.

| step | stream | program | bytes | mixture val exact | bare "reverse" rows exact |
| --- | --- | --- | --- | --- | --- |
${rows%$'\n'}

The goals after phase 6 (\`s5-ab.bf\`), against the phase-4 ternary model
(\`s2-tern.bf\`):

| goal | measured |
| --- | --- |
| mixture val exact at least 95% of phase 4's | $(pct "$mix_s5_ab") against $(pct "$mix_s2_tern"), $goal_mix |
| bare "reverse" rows at least 80% exact | $goal_rev |

MuonGrokfast on the phase-4 model ($MUON_STEPS_RUN steps): the seed's preset (\`--preset phase5\`, Muon lr 0.01)
leaves $(pct "$mix_seed") mixture val exact, $(awk -v a="$mix_seed" -v b="$mix_s2_tern" 'BEGIN { printf "%.1f", 100 * a / b }')% of the phase-4 model's; \`--preset phase5-finetune\`
(the same at Muon lr 1e-3, the chain's step) leaves $(pct "$mix_s3_muon"), $(awk -v a="$mix_s3_muon" -v b="$mix_s2_tern" 'BEGIN { printf "%.1f", 100 * a / b }')% of it (\`muon: seed $mix_seed finetune $mix_s3_muon phase4 $mix_s2_tern\`).

The A/B cycle ran $ab half-bakes and kept $kept of them (each kept only
when the mean exact match over both sets' bare rows and the kept mixture
rows improves):

\`\`\`
$(cat "$OUT/s5-ab.txt")
\`\`\`

The archive
(\`bf-compress\`, defaults: f16 floats, xz) is $arch bytes, $(awk -v a="$arch" -v b="$f32" 'BEGIN { printf "%.2f", b / a }')× smaller
than the phase-0 float stream ($f32 bytes); bf-compress's own ratio to F32:
${ratio}×.

The two ends of phase 8 (the F32 route dequantizes for phase 7, the ternary
route does not):

| route | stream | mixture val exact | bare "reverse" rows exact | archive bytes | × smaller than phase 0's F32 stream |
| --- | --- | --- | --- | --- | --- |
| F32: dequantized, SVF experts | \`s8-final.bf\` | $(pct "$mix_s8_final") | $(pct "$rev_s8_final") | $arch | $(awk -v a="$arch" -v b="$f32" 'BEGIN { printf "%.2f", b / a }') |
| ternary: experts with a scale per row | \`t8-final.bf\` | $(pct "$mix_t8_final") | $(pct "$rev_t8_final") | $tarch | $(awk -v a="$tarch" -v b="$f32" 'BEGIN { printf "%.2f", b / a }') |

(\`routes: f32 $mix_s8_final $rev_s8_final $arch ternary $mix_t8_final $rev_t8_final $tarch\`; bf-compress's own ratio
to F32 for the ternary archive: ${tratio}×.)

Out of bitforge and back: \`bf-export --format gguf\` wrote $(stat -c %s "$OUT/s8.gguf") bytes
(llama.cpp's format), \`bf-export --format safetensors\` $(stat -c %s "$OUT/s8.safetensors") bytes, and
\`bf-import\` read the safetensors file back into a model whose mixture val
loss is $same: $l9 against $l8 (\`interop: $same\`).

The last stream's lineage (\`bf-eval --lineage $OUT/s8-final.bf\`):

\`\`\`
$("$BIN/bf-eval" --lineage "$OUT/s8-final.bf")
\`\`\`
MD
