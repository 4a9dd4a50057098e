"""check_safetensors.py -- bf-export's safetensors files load in the
safetensors library with the stream's values, and files the library writes
import: a model with Hugging Face names written by safetensors.numpy
(random weights, no bitforge metadata) imports and gives the numpy
reference's loss; an exported model rewritten by the library comes back
with the same tensors."""

import json

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

import bfi

p = bfi.models()
ref = bfi.read_stream(p["f32"])

# 1. exported files load, with the stream's values and bitforge's metadata
for names in ("bitforge", "hf"):
    out = bfi.w("exp-%s.safetensors" % names)
    bfi.bf("bf-export", "--format", "safetensors", "--names", names, p["f32"], "-o", out)
    got = load_file(out)
    with safe_open(out, "np") as f:
        meta = f.metadata()
    cfg = json.loads(meta["bitforge.config"])
    same = len(got) == len(ref)
    if names == "bitforge":
        same = same and all(np.array_equal(got[n], ref[n]) for n in ref)
    else:
        same = same and np.array_equal(got["model.embed_tokens.weight"], ref["tok_emb"]) and \
            np.array_equal(got["model.layers.1.self_attn.q_proj.weight"], ref["blk.1.wq"]) and \
            np.array_equal(got["model.layers.0.mlp.down_proj.weight"], ref["blk.0.w2"])
    bfi.check(same and cfg["d_model"] == 256 and meta.get("format") == "pt",
              "safetensors loads the %s-named export: %d tensors, the stream's values, bitforge.config" % (names, len(got)))

out = bfi.w("exp-packed.safetensors")
bfi.bf("bf-export", "--format", "safetensors", "--ternary", "packed", p["tq2"], "-o", out)
got = load_file(out)
with safe_open(out, "np") as f:
    tern = json.loads(f.metadata()["bitforge.ternary"])
bfi.check(got["blk.0.wq"].dtype == np.uint8 and tern["blk.0.wq"]["dtype"] == "TQ2" and "blk.0.wq.scale" in got,
          "safetensors loads the packed ternary export (U8 codes, F32 scale, bitforge.ternary)")

# 2. rewritten by the library (its own header layout and order): the same tensors back
for name in ("exp-bitforge.safetensors", "exp-packed.safetensors"):
    src = bfi.w(name)
    with safe_open(src, "np") as f:
        meta = f.metadata()
    re_st = bfi.w("re-" + name)
    save_file(load_file(src), re_st, metadata=meta)
    bfi.bf("bf-import", "--format", "safetensors", src, "-o", bfi.w("a.bf"))
    bfi.bf("bf-import", "--format", "safetensors", re_st, "-o", bfi.w("b.bf"))
    a, b = bfi.read_stream(bfi.w("a.bf"), True), bfi.read_stream(bfi.w("b.bf"), True)
    bfi.check(list(a.items()) == list(b.items()) and len(a) > 20,
              "%s rewritten by safetensors.numpy imports to the same tensors" % name)

# 3. a model PyTorch-style code wrote: HF names, no metadata; numpy's loss
rng = np.random.default_rng(7)
V, d, L, H, F, T = 256, 64, 2, 4, 128, 64
P = {"tok_emb": rng.normal(0, 0.5, (V, d)), "out_norm.w": 1 + 0.1 * rng.normal(size=d), "head": rng.normal(0, 0.2, (V, d))}
for l in range(L):
    b = "blk.%d." % l
    P[b + "attn_norm.w"] = 1 + 0.1 * rng.normal(size=d)
    P[b + "mlp_norm.w"] = 1 + 0.1 * rng.normal(size=d)
    for n, shp in (("wq", (d, d)), ("wk", (d, d)), ("wv", (d, d)), ("wo", (d, d)), ("w1", (F, d)), ("w3", (F, d)),
                   ("w2", (d, F))):
        P[b + n] = rng.normal(0, 0.3 / np.sqrt(shp[1]) * 3, shp)
P = {k: v.astype(np.float32) for k, v in P.items()}
hf = {"model.embed_tokens.weight": "tok_emb", "model.norm.weight": "out_norm.w", "lm_head.weight": "head"}
for l in range(L):
    for a, b in (("input_layernorm", "attn_norm.w"), ("post_attention_layernorm", "mlp_norm.w"),
                 ("self_attn.q_proj", "wq"), ("self_attn.k_proj", "wk"), ("self_attn.v_proj", "wv"),
                 ("self_attn.o_proj", "wo"), ("mlp.gate_proj", "w1"), ("mlp.up_proj", "w3"), ("mlp.down_proj", "w2")):
        hf["model.layers.%d.%s.weight" % (l, a)] = "blk.%d.%s" % (l, b)
torch_file = bfi.w("torchlike.safetensors")
save_file({h: P[b] for h, b in hf.items()}, torch_file)
bfi.bf("bf-import", "--format", "safetensors", "--heads", H, "--ctx", T, torch_file, "-o", bfi.w("torchlike.bf"))
xs, ys = bfi.val_rows(p["text"])
want = bfi.np_loss(P, {"d_model": d, "n_head": H, "n_layer": L, "tie_embed": False}, xs, ys)
got = bfi.eval_loss(bfi.w("torchlike.bf"), p["text"])
rel = abs(got - want) / want
bfi.check(rel <= 1e-5, "a safetensors.numpy model (hf names, no metadata) imports: bf-eval loss %.6f, numpy %.6f, "
          "relative %.2g (allowed 1e-5)" % (got, want, rel))

bfi.finish()
