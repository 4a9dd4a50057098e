#!/usr/bin/env bash
# tests/ref/check.sh — the C model's loss and gradients against an
# independent PyTorch reference of the model (tests/ref/model_ref.py).
#
#   make check-ref          (or tests/ref/check.sh after `make` and the helpers)
#
# 1. The reference itself against the test vectors: each
#    tests/vectors/model-*.bf on data-tiny.bf's val split must give the
#    golden loss (float64, to 1e-9 relative), token accuracy and exact match.
# 2. Every variant, norm rms|layer × act swiglu|gelu|relu2 × pos rope|learned
#    × tie_embed × subln (48): bf-init makes a small model (d 16, 2 layers,
#    2 heads, ff 24, its own seed), and on two data sets — modarith (add,
#    p 11: vocab 13, 4 tokens, loss on the last) and seq (reverse: vocab 256,
#    9 tokens, targets on the answer, a model ctx of 12 > 9) — bf-grad and the
#    reference take one forward and backward over the first rows as one
#    batch.  bf-init's std 0.02 gives nearly uniform attention and tiny
#    gradients, so both sides first multiply the 2-D parameters by 20 and
#    jitter the 1-D ones (norm weights, biases) by 0.3·sin(…) (bf-grad's
#    --scale-init / --jitter-1d, repeated exactly by the reference).
# 3. Ternary models (bf-quantize --keep-latent: absmean per tensor / per row,
#    threshold; TQ2 and TQ1; act_bits 8 and 0): straight-through gradients.
#    A quantizer decision can sit right on its boundary (x·s = k + 1/2
#    exactly is common at position 0, where attention returns v, a ternary
#    matrix times int8 activations), and float32 may then round it the other
#    way; the reference lists such near-ties and, when the plain comparison
#    fails, also accepts a match with some of the 8 closest taken the other
#    way (the line says which).
# 4. The test vectors' models through bf-grad too (no perturbation).
#
# Pass: loss within 1e-5 relative, and each gradient tensor within 1e-4
# relative L2 error (‖g_C − g_ref‖ / ‖g_ref‖).  The C side works in float32
# (unit roundoff 6e-8); each gradient element is a sum of tens to hundreds of
# rounded products through two blocks of norms, softmax and residuals, which
# leaves relative errors of about 1e-6 (measured: ≤ 3e-6).  1e-4 keeps a
# margin of 30× over that, while a real mistake — a wrong constant, a missing
# term, a transposed product — moves whole tensors by 1e-3 or more (RMSNorm's
# ε off by 10× already shows as 2e-4).  The reference runs in float64, so
# its own error is negligible.
#
# One line per check, then "N passed, M failed"; exit 1 on any failure.
# Environment: BF_BIN (programs, default bin/), BF_TOOLS (default
# obj/tools/), BF_VECTORS (default tests/vectors), PYTHON (default
# /usr/bin/python3: Debian's python3-torch and python3-msgpack), REF_SEED
# (added to every model's seed, default 0).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
BIN=${BF_BIN:-$TOP/bin}
TOOLS=${BF_TOOLS:-$TOP/obj/tools}
PYTHON=${PYTHON:-/usr/bin/python3}
SEED0=${REF_SEED:-0}
VECTORS=${BF_VECTORS:-$TOP/tests/vectors}
SCALE=20
JITTER=0.3

die() { echo "check-ref: $*" >&2; exit 1; }
for p in "$BIN/bf-init" "$BIN/bf-data" "$BIN/bf-quantize" "$TOOLS/bf-grad"; do
    [ -x "$p" ] || die "$p is missing: run 'make' and 'make $TOOLS/bf-grad' (or 'make check-ref')"
done
[ -f "$VECTORS/golden-metrics.json" ] || die "$VECTORS/golden-metrics.json is missing (the test vectors: tests/vectors)"
"$PYTHON" -c 'import torch, msgpack' 2>/dev/null ||
    die "$PYTHON lacks torch or msgpack (Debian: python3-torch python3-msgpack)"

W=$(mktemp -d "${TMPDIR:-/tmp}/check-ref.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM
CASES=$W/cases.tsv
: >"$CASES"

"$BIN/bf-data" modarith --op add --p 11 --frac 0.5 --seed 1 -o "$W/modarith.bf"
"$BIN/bf-data" seq --task reverse --min-len 2 --max-len 4 --n-train 32 --n-val 8 --seed 1 -o "$W/seq.bf"

# case VARIANT DATANAME MODEL DATA SPLIT ROWS SCALE JITTER: run bf-grad, record the case
n=0
case_() {
    local json=$W/grad-$n.json
    n=$((n + 1))
    "$TOOLS/bf-grad" --data "$4" --split "$5" --rows "$6" --scale-init "$7" --jitter-1d "$8" "$3" >"$json" ||
        echo "check-ref: bf-grad failed on $1 ($2)" >&2   # the reference then reports the case as failed
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$json" >>"$CASES"
}

k=0
for norm in rms layer; do
    for act in swiglu gelu relu2; do
        for pos in rope learned; do
            for tie in 0 1; do
                for subln in 0 1; do
                    k=$((k + 1))
                    seed=$((SEED0 + 100 + k))
                    flags=(--norm "$norm" --act "$act" --pos "$pos" --d 16 --layers 2 --heads 2 --ff 24 --seed "$seed")
                    [ "$tie" = 1 ] && flags+=(--tie)
                    [ "$subln" = 1 ] && flags+=(--subln)
                    label=$(printf 'norm=%-5s act=%-6s pos=%-7s tie=%s subln=%s seed=%-4s' "$norm" "$act" "$pos" "$tie" "$subln" "$seed")
                    "$BIN/bf-init" --like "$W/modarith.bf" "${flags[@]}" -o "$W/m$k-a.bf"
                    "$BIN/bf-init" --vocab 256 --ctx 12 "${flags[@]}" -o "$W/m$k-s.bf"
                    case_ "$label" modarith "$W/m$k-a.bf" "$W/modarith.bf" train 16 $SCALE $JITTER
                    case_ "$label" seq "$W/m$k-s.bf" "$W/seq.bf" train 12 $SCALE $JITTER
                done
            done
        done
    done
done

# ternary block matrices, straight through (norm/act/pos vary with the rule)
t=0
while IFS='|' read -r init quant; do
    t=$((t + 1))
    seed=$((SEED0 + 200 + t))
    label=$(printf 'ternary %-40s | %-40s seed=%-4s' "$init" "$quant" "$seed")
    # shellcheck disable=SC2086
    "$BIN/bf-init" --like "$W/modarith.bf" --d 16 --layers 2 --heads 2 --ff 24 --seed "$seed" $init |
        "$BIN/bf-quantize" --keep-latent $quant -o "$W/t$t-a.bf"
    # shellcheck disable=SC2086
    "$BIN/bf-init" --vocab 256 --ctx 12 --d 16 --layers 2 --heads 2 --ff 24 --seed "$seed" $init |
        "$BIN/bf-quantize" --keep-latent $quant -o "$W/t$t-s.bf"
    case_ "$label" modarith "$W/t$t-a.bf" "$W/modarith.bf" train 8 $SCALE $JITTER
    case_ "$label" seq "$W/t$t-s.bf" "$W/seq.bf" train 4 $SCALE $JITTER
done <<'EOF'
--act-bits 8|--method absmean
--act-bits 0|--method absmean
--act-bits 8|--method absmean --per-row --pack tq1
--act-bits 8|--method threshold --threshold 0.5
--act-bits 0|--method threshold --threshold 0.5 --pack tq1
--act-bits 8 --norm layer --act gelu --pos learned --tie --subln|--method absmean --per-row
EOF

# the test vectors' models through the C side as well
for f in "$VECTORS"/model-*.bf; do
    [ -e "$f" ] || continue
    case_ "vector $(basename "$f" .bf)" data-tiny "$f" "$VECTORS/data-tiny.bf" val 6 1 0
done

"$PYTHON" "$HERE/model_ref.py" check --golden "$VECTORS" --cases "$CASES"
