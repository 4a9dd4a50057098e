#!/bin/sh
# tests/interop/run.sh — `make check-interop`: bf-export's and bf-import's
# files checked by the real clients (tests/interop/check_*.py): gguf's
# reader, llama.cpp through llama-cpp-python, and safetensors.
#
# The Python comes from $BF_INTEROP_PY, else the environment that
# scripts/deps-interop makes, else python3; when gguf, safetensors, numpy,
# msgpack or llama_cpp cannot be imported, the checks are skipped with a
# message saying how to install them (exit 0).  BF_BIN names the programs.
set -eu
cd "$(dirname "$0")/../.."
VENV=${BF_INTEROP_VENV:-${HOME:-/tmp}/.cache/bitforge/interop-venv}
PY=${BF_INTEROP_PY:-}
if [ -z "$PY" ]; then
    if [ -x "$VENV/bin/python" ]; then PY=$VENV/bin/python; else PY=python3; fi
fi
missing=$("$PY" - <<'PYEOF' 2>/dev/null || echo "a working $PY"
import importlib
out = []
for m in ("numpy", "msgpack", "gguf", "safetensors", "llama_cpp"):
    try:
        importlib.import_module(m)
    except Exception:
        out.append(m)
print(" ".join(out))
PYEOF
)
if [ -n "$missing" ]; then
    echo "check-interop: SKIPPED: $PY lacks $missing (install them with scripts/deps-interop)"
    exit 0
fi
BF_BIN=${BF_BIN:-$PWD/bin}
BF_INTEROP_WORK=$(mktemp -d "${TMPDIR:-/tmp}/bf-interop.XXXXXX")
export BF_BIN BF_INTEROP_WORK
trap 'rm -rf "$BF_INTEROP_WORK"' EXIT INT TERM
status=0
for c in tests/interop/check_*.py; do
    [ "$c" = tests/interop/check_transformers.py ] && continue
    echo "# $c"
    "$PY" "$c" || status=1
done
# Hugging Face transformers lives in its own environment (Debian's torch;
# scripts/deps-interop): $BF_HF_PY, else that environment's python
HF_PY=${BF_HF_PY:-${BF_HF_VENV:-${HOME:-/tmp}/.cache/bitforge/hf-venv}/bin/python}
echo "# tests/interop/check_transformers.py"
if "$HF_PY" -c 'import torch, transformers, numpy, msgpack' 2>/dev/null; then
    # (transformers' warnings about torch go to a file; the checks' lines are on stdout)
    "$HF_PY" tests/interop/check_transformers.py 2>"$BF_INTEROP_WORK/hf.err" || { status=1; cat "$BF_INTEROP_WORK/hf.err"; }
else
    echo "check-interop: SKIPPED check_transformers.py: no torch and transformers in $HF_PY (scripts/deps-interop makes them)"
fi
exit $status
