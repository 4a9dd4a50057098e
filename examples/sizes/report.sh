#!/bin/bash
# report.sh — the sizes example's report (Markdown on stdout): every stream
# of the chain with its bytes, its ratio to the F32 stream and its val loss
# (bf-eval --data), beside the seed's size table; the 8.2× and 280×
# verdicts; what the bytes are made of.  Environment: BIN OUT THREADS ZIPS
# FZIPS BATCH MAKECMD (the Makefile).
set -euo pipefail
: "${BIN:?}" "${OUT:?}" "${ZIPS:?}"
. "$(dirname "$0")/../report-lib.sh"
THREADS=${THREADS:-2}
FZIPS=${FZIPS:-}
BATCH=${BATCH:-?}
D=$OUT/data.bf
ev() { "$BIN/bf-eval" --threads "$THREADS" --json --data "$D" "$1"; }
loss_of() { ev "$1" | j '$j->{loss}'; }
# tensor bytes by kind from a JSON object with tensors[] (bf-eval --json,
# bf-compress --json): "matrices scales latents embeddings other total"
kinds() {
    perl -MJSON::PP -e '
        my $j = JSON::PP->new->decode(scalar <STDIN>); my %b;
        for my $t (@{$j->{tensors}}) {
            my $n = $t->{name};
            my $k = $n =~ /^blk\.\d+\.w[qkvo123]$/ ? "m" : $n =~ /\.scale$/ ? "s" : $n =~ /\.latent$/ ? "l"
                  : $n =~ /^(tok_emb|head|pos_emb)$/ ? "e" : "o";
            $b{$k} += $t->{bytes}; $b{t} += $t->{bytes};
        }
        print join(" ", map { $b{$_} // 0 } qw(m s l e o t)), "\n"'
}
# the ternary codes in a bf-compress --json report: "bits/w H" (attributed
# bytes over their weights; numel-weighted order-0 entropy, 0 if none)
codes() {
    head -n 1 "$1" | perl -MJSON::PP -e '
        my $j = decode_json(scalar <STDIN>); my ($b, $n, $h) = (0, 0, 0);
        for my $t (@{$j->{tensors}}) {
            next unless $t->{method} =~ /^(tq2|tq1|entropy)$/;
            $b += $t->{bytes}; $n += $t->{numel}; $h += ($t->{entropy_bits} // 0) * $t->{numel};
        }
        printf "%.4f %.4f\n", 8 * $b / $n, $h / $n'
}
# the share of zero codes over every ternary tensor of a stream
zeros() {
    "$BIN/bf-eval" --json "$1" | perl -MJSON::PP -e '
        my $j = decode_json(scalar <STDIN>); my ($z, $n) = (0, 0);
        for my $t (@{$j->{tensors}}) { next unless $t->{shares}; $z += $t->{shares}{0} * $t->{params}; $n += $t->{params} }
        print $n ? $z / $n : 0'
}

params=$("$BIN/bf-eval" --json "$OUT/f32.bf" | j 'my $p = 0; $p += $_->{params} for @{$j->{tensors}}; $p')
meta=$("$BIN/bf-eval" --json "$OUT/f32.bf" | j 'my $m = $j->{meta}; "vocab $m->{vocab}, ctx $m->{ctx}, d_model $m->{d_model}, $m->{n_layer} layers, $m->{n_head} heads, d_ff $m->{d_ff}, $m->{act}, $m->{pos}, $m->{norm}" . ($m->{tie_embed} ? ", tied head" : ", untied head")')
F32=$(stat -c %s "$OUT/f32.bf")
rows_tr=$("$BIN/bf-eval" --json --split train --data "$D" "$OUT/f32.bf" | j '$j->{rows}')
rows_val=$("$BIN/bf-eval" --json --data "$D" "$OUT/f32.bf" | j '$j->{rows}')
L4=$(loss_of "$OUT/tern-tq2.bf")   # the phase-4 stream, the phase-8 rows' reference

ROWS=$OUT/rows.txt
: >"$ROWS"
# row PHASE FILE SEED-MB LOSS-FILE WHAT...: one line of $ROWS, tab-separated
row() {
    local ph=$1 f=$2 seed=$3 lf=$4
    shift 4
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$ph" "$(basename "$f")" "$(stat -c %s "$f")" "$seed" "$(loss_of "$lf")" "$*" >>"$ROWS"
}
row 0 "$OUT/init.bf" - "$OUT/init.bf" "bf-init, untrained"
row 0 "$OUT/f32.bf" 100 "$OUT/f32.bf" "trained in float, $(steps_of "$OUT/f32.log") steps"
row 4 "$OUT/ptq-latent.bf" - "$OUT/ptq-latent.bf" "bf-quantize --keep-latent: TQ2 codes and F32 latents (to train on)"
row 4 "$OUT/ptq-tq2.bf" 12 "$OUT/ptq-tq2.bf" "bf-quantize: TQ2, absmean, no training"
row 4 "$OUT/ptq-tq1.bf" 12 "$OUT/ptq-tq1.bf" "bf-quantize --pack tq1: the same codes in TQ1"
row 4 "$OUT/ste.bf" - "$OUT/ste.bf" "$(steps_of "$OUT/ste.log") straight-through steps, latents kept"
row 4 "$OUT/tern-tq2.bf" 12 "$OUT/tern-tq2.bf" "**the phase-4 stream**: latents stripped, TQ2"
row 4 "$OUT/tern-tq1.bf" 12 "$OUT/tern-tq1.bf" "the same codes and scales in TQ1"
declare -A zwhat=(
    [lossless]="--float f32: codes rANS, floats exact (lossless)"
    [default]="defaults: codes rANS, floats f16, xz"
    [int8]="--float int8"
    [vq]="--float vq"
    [seedlm4]="--float seedlm4 (SeedLM, 4 bits)"
    [tq2-xz]="--ternary tq2: the TQ2 bytes under xz, floats f16"
    [tq1-xz]="--ternary tq1: the TQ1 bytes under xz, floats f16"
    [default-zstd]="defaults, --codec zstd"
)
for z in $ZIPS; do row 8 "$OUT/z-$z.bfz" 0.4 "$OUT/z-$z.d.bf" "bf-compress ${zwhat[$z]:-$z}"; done
for z in $FZIPS; do row 8f "$OUT/fz-$z.bfz" - "$OUT/fz-$z.d.bf" "bf-compress --float $z of the float model (no ternary)"; done

table=$(awk -F'\t' -v f="$F32" -v p="$params" -v l4="$L4" '{
    seed = $4 == "-" ? "" : $4 " MB";
    ph = $1 == "8f" ? "8 (float)" : $1;
    d = ($1 ~ /^8/) ? sprintf("%+.2f%%", 100 * ($5 - l4) / l4) : "";
    printf "| %s | `%s` | %s | %d | %.3f | %.2f× | %.3f | %s | %.4f | %s |\n", ph, $2, $6, $3, $3 / 1e6, f / $3, 8 * $3 / p, seed, $5, d
}' "$ROWS")

# the verdicts, from the rows
T2=$(awk -F'\t' -v f="$F32" '$2 == "tern-tq2.bf" { printf "%.2f", f / $3 }' "$ROWS")
T1=$(awk -F'\t' -v f="$F32" '$2 == "tern-tq1.bf" { printf "%.2f", f / $3 }' "$ROWS")
T2MB=$(awk -F'\t' '$2 == "tern-tq2.bf" { printf "%.2f", $3 / 1e6 }' "$ROWS")
T1MB=$(awk -F'\t' '$2 == "tern-tq1.bf" { printf "%.2f", $3 / 1e6 }' "$ROWS")
v82=$(awk -v a="$T2" -v b="$T1" 'BEGIN { if (a >= 8.2 && b >= 8.2) print "holds"; else if (b >= 8.2) print "holds for TQ1 only"; else print "does not hold" }')
best=$(awk -F'\t' -v f="$F32" -v l4="$L4" '$1 == 8 {
        r = f / $3; d = ($5 - l4) / l4; a = d < 0 ? -d : d;
        if (a < 1e-6 && r > b0) { b0 = r; n0 = $2 }
        if (a < 0.01 && r > b1) { b1 = r; n1 = $2; d1 = d }
    }
    END { printf "%.2f %s %.2f %s %+.3f\n", b0, n0, b1, n1, 100 * d1 }' "$ROWS")
set -- $best
B0=$1 N0=$2 B1=$3 N1=$4 D1=$5
v280=$(awk -v a="$B1" 'BEGIN { print (a >= 280) ? "holds" : "does not hold" }')
B1MB=$(awk -F'\t' -v n="$N1" '$2 == n { printf "%.2f", $3 / 1e6 }' "$ROWS")

# what the bytes are made of: F32, the phase-4 stream, the default archive
# (bytes attributed to each member, bf-compress(1) ACCOUNTING)
share() { awk -v x="$1" -v t="$2" 'BEGIN { printf "%.1f%%", 100 * x / t }'; }
set -- $("$BIN/bf-eval" --json "$OUT/f32.bf" | kinds)
fm=$1 fe=$4 fo=$5 ft=$6
set -- $("$BIN/bf-eval" --json "$OUT/tern-tq2.bf" | kinds)
tm=$1 ts=$2 te=$4 to=$5 tt=$6
set -- $(head -n 1 "$OUT/z-default.json" | kinds)
zm=$1 zs=$2 ze=$4 zo=$5 zt=$6
mparams=$((fm / 4)) eparams=$((fe / 4))
dom=$(awk -v m="$tm" -v e="$te" 'BEGIN { print (m > e) ? "the block matrices" : "the embeddings and head" }')

# the codes against their entropy
set -- $(codes "$OUT/z-default.json"); CB=$1 H=$2
set -- $(codes "$OUT/z-tq2-xz.json"); C2=$1
set -- $(codes "$OUT/z-tq1-xz.json"); C1=$1
Z=$(zeros "$OUT/tern-tq2.bf")
Zi=$(zeros "$OUT/ptq-tq2.bf")
ceil=$(awk -v h="$H" 'BEGIN { printf "%.1f", 32 / h }')

now=$(date +%s)
start=$(cat "$OUT/start")
f32s=$(train_s "$OUT/f32.log") stes=$(train_s "$OUT/ste.log")

cat <<MD
# The seed's size table on a model of the seed's size

- commit $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); THREADS=$THREADS; load average $(cut -d' ' -f1-3 /proc/loadavg) at the end
- wall time: $((now - start)) s (\`${MAKECMD:-make -C examples/sizes}\`), of which training $f32s s in float ($(steps_of "$OUT/f32.log") steps of $BATCH rows, $(awk -v s="$f32s" -v n="$(steps_of "$OUT/f32.log")" 'BEGIN { printf "%.2f", s / n }') s a step) and $stes s straight through ($(steps_of "$OUT/ste.log") steps, $(awk -v s="$stes" -v n="$(steps_of "$OUT/ste.log")" 'BEGIN { printf "%.2f", s / n }') s a step)

The seed documents: a model of about 25M parameters is "100 MB as F32 →
12 MB after phase 4 (ternary) → 0.4 MB after phase 8 (final compression)",
8.2× from ternary quantization and 280× in the end.  Here: $params
parameters ($meta), $F32 bytes as an F32 stream; trained on the GPL-3 text
(byte level, $rows_tr train rows, $rows_val val rows of 128 bytes) for a few
steps only, so that the codecs see trained weights: the val loss says what
each stream costs, not that this is a good language model.

Ratio = F32 stream bytes / bytes; bits/w = 8·bytes / $params parameters; MB =
10^6 bytes.  Phase 8 rows are the archives of the phase-4 stream
(\`tern-tq2.bf\`), evaluated after \`bf-compress -d\`; Δ val loss is against
the phase-4 stream (loss $L4).

| phase | stream | what | bytes | MB | ratio to F32 | bits/w | the seed's figure | val loss | Δ val loss |
| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
$table

**Verdicts at $params parameters:**
(\`sizes: params $params tq2 $T2 tq1 $T1 v82 $v82 best1 $B1 lossless $B0 v280 $v280\`)

- "8.2× from ternary quantization" (100 MB → 12 MB): **$v82** — the phase-4
  stream is $T2MB MB as TQ2, **${T2}×** smaller than F32, and $T1MB MB as TQ1,
  **${T1}×**.
- "280× final compression" (→ 0.4 MB, 0.114 bits a weight): **$v280** — the best
  archive within 1% of the phase-4 loss is \`$N1\`, $B1MB MB, **${B1}×** (Δ val
  loss $D1%), $(awk -v a="$B1" 'BEGIN { printf "%.0f", 280 / a }')× short of it; the best with the loss unchanged (|Δ| < 10^-6 of
  it) is \`$N0\`, **${B0}×**.

What the bytes are made of: $mparams of the $params parameters
($(share "$fm" "$ft") of the F32 bytes) sit in the block matrices (wq, wk,
wv, wo, w1, w2, w3), $eparams ($(share "$fe" "$ft")) in the embeddings and
head, the rest in norms.  In the phase-4 stream $dom dominate: the
ternary codes are $(share "$tm" "$tt") of its bytes, the F32 embeddings and
head $(share "$te" "$tt"), scales and norms $(share "$((ts + to))" "$tt").  In the
default archive the codes take $(share "$zm" "$zt") of the attributed bytes,
the f16 embeddings and head $(share "$ze" "$zt").

The codes: $(pct "$Z") zero after straight-through training ($(pct "$Zi") after
quantizing the float model), order-0 entropy H = $H bits a weight; the rANS
coder (\`--ternary entropy\`) stores them at $CB bits a weight, xz over the TQ2
bytes at $C2 and over the TQ1 bytes at $C1 (bytes attributed to each member,
bf-compress(1) ACCOUNTING).  No lossless coder of these codes passes
32/H = ${ceil}× on the block matrices; 280× needs 0.114 bits a weight over
every parameter, which codes reach only at about 98.7% zeros.
MD
