"""check_gguf.py -- bf-export's GGUF files through gguf, llama.cpp's own
Python reader: every tensor there with llama.cpp's name, type and shape, the
key/values llama.cpp's loader reads with the types it checks, and every
value what the stream stands for (TQ blocks dequantized by gguf's own code
equal scale·codes up to the scale's rounding to F16; q and k rows permuted
for llama's rope)."""

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as QT, GGUFValueType as VT
from gguf.quants import dequantize

import bfi
from safetensors.numpy import load_file

p = bfi.models()


def expect_names(cfg):
    names = ["token_embd.weight"]
    for l in range(cfg["n_layer"]):
        for n in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"):
            names.append("blk.%d.%s.weight" % (l, n))
    names.append("output_norm.weight")
    if not cfg["tie_embed"]:
        names.append("output.weight")
    return names


GG = {"token_embd": "tok_emb", "output_norm": "out_norm.w", "output": "head", "attn_norm": "attn_norm.w",
      "attn_q": "wq", "attn_k": "wk", "attn_v": "wv", "attn_output": "wo", "ffn_norm": "mlp_norm.w",
      "ffn_gate": "w1", "ffn_up": "w3", "ffn_down": "w2"}


def bf_name(gg):
    parts = gg.split(".")
    if parts[0] == "blk":
        return "blk.%s.%s" % (parts[1], GG[parts[2]])
    return GG[parts[0]]


def unpermute(wt, hd):
    """Rows of a permuted q/k matrix back in the stream's order."""
    rows = wt.shape[0]
    out = np.empty_like(wt)
    for r in range(rows):
        h, k = divmod(r, hd)
        out[h * hd + (k % 2) * (hd // 2) + k // 2] = wt[r]
    return out


for model, kind in ((p["tq2"], "tq2_0"), (p["tq1"], "tq1_0"), (p["tq2"], "f16"), (p["f32"], "f32")):
    out = bfi.w("check-%s-%s.gguf" % (model.split("/")[-1][:-3], kind))
    bfi.bf("bf-export", "--format", "gguf", "--type", kind, model, "-o", out)
    # the values the stream stands for, as F32 with bitforge's names
    ref_st = bfi.w("ref.st")
    bfi.bf("bf-dequant", model, "-o", bfi.w("ref.bf"))
    bfi.bf("bf-export", "--format", "safetensors", bfi.w("ref.bf"), "-o", ref_st)
    ref = load_file(ref_st)
    import json
    from safetensors import safe_open
    with safe_open(ref_st, "np") as f:
        cfg = json.loads(f.metadata()["bitforge.config"])
    hd = cfg["d_model"] // cfg["n_head"]

    r = GGUFReader(out)
    label = "%s as %s" % (model.split("/")[-1], kind)
    kv = {f.name: f for f in r.fields.values()}
    want_kv = {"general.architecture": VT.STRING, "general.alignment": VT.UINT32, "llama.context_length": VT.UINT32,
               "llama.embedding_length": VT.UINT32, "llama.block_count": VT.UINT32, "llama.feed_forward_length": VT.UINT32,
               "llama.attention.head_count": VT.UINT32, "llama.attention.head_count_kv": VT.UINT32,
               "llama.rope.dimension_count": VT.UINT32, "llama.rope.freq_base": VT.FLOAT32,
               "llama.attention.layer_norm_rms_epsilon": VT.FLOAT32, "llama.vocab_size": VT.UINT32,
               "tokenizer.ggml.model": VT.STRING}
    bad = [k for k, t in want_kv.items() if k not in kv or kv[k].types[0] != t]
    bfi.check(not bad, "%s: key/values with llama.cpp's types %s" % (label, bad or ""))
    vals = {k: kv[k].contents() for k in want_kv if k in kv}
    bfi.check(vals.get("general.architecture") == "llama" and vals.get("llama.embedding_length") == cfg["d_model"] and
              vals.get("llama.vocab_size") == cfg["vocab"] and vals.get("llama.context_length") == cfg["ctx"] and
              vals.get("tokenizer.ggml.model") == "none" and r.alignment == 32,
              "%s: architecture, sizes, alignment 32, tokenizer none" % label)
    names = [t.name for t in r.tensors]
    bfi.check(names == expect_names(cfg), "%s: %d tensors with llama.cpp's names in order" % (label, len(names)))
    worst, bad_types = 0.0, []
    for t in r.tensors:
        bn = bf_name(t.name)
        want = ref[bn]
        matrix = t.name.startswith("blk.") and want.ndim == 2
        want_type = {"tq2_0": QT.TQ2_0, "tq1_0": QT.TQ1_0, "f16": QT.F16, "f32": QT.F32}[kind] if matrix else QT.F32
        shape = [int(x) for x in t.shape]
        if t.tensor_type != want_type or shape != list(reversed(want.shape)):
            bad_types.append("%s %s %s" % (t.name, t.tensor_type.name, shape))
            continue
        got = dequantize(t.data, t.tensor_type).reshape(want.shape).astype(np.float32)
        if t.name.endswith(("attn_q.weight", "attn_k.weight")):
            got = unpermute(got, hd)
        m = np.abs(want).max()
        err = float(np.abs(got - want).max() / (m if m else 1))
        worst = max(worst, err)
    bfi.check(not bad_types, "%s: every tensor's type and shape %s" % (label, bad_types[:3] or ""))
    tol = 0.0 if kind == "f32" else 1e-3
    bfi.check(worst <= tol, "%s: values = the stream's (max relative error %.2g, allowed %g)" % (label, worst, tol))

bfi.finish()
