"""check_llama.py -- llama.cpp (llama-cpp-python, 2 threads) runs
bf-export's GGUF files: the F32 export's loss on the val rows agrees with
bf-eval within 1e-3 relative, the TQ2_0 and TQ1_0 exports' within 2% of
bf-eval's and of bf-eval --fake-quant's (both are printed; llama.cpp
quantizes activations per block of 256 values (Q8_K), bitforge per token
(int8) or not at all (--fake-quant)).  A subln model goes as bitnet."""

import json

import bfi

p = bfi.models()
ctx = 64
results = {}

bfi.bf("bf-export", "--format", "gguf", "--type", "f32", p["f32"], "-o", bfi.w("f32.gguf"))
lf = bfi.llama_loss(bfi.w("f32.gguf"), p["text"], ctx)
bf = bfi.eval_loss(p["f32"], p["text"])
rel = abs(lf - bf) / bf
results["f32"] = {"llama": lf, "bf_eval": bf, "rel": rel}
bfi.check(rel <= 1e-3, "F32: llama.cpp loss %.6f, bf-eval %.6f, relative %.2g (allowed 1e-3)" % (lf, bf, rel))

for model, kind in ((p["tq2"], "tq2_0"), (p["tq1"], "tq1_0")):
    out = bfi.w("%s.gguf" % kind)
    bfi.bf("bf-export", "--format", "gguf", "--type", kind, model, "-o", out)
    lq = bfi.llama_loss(out, p["text"], ctx)
    b8 = bfi.eval_loss(model, p["text"])
    bq = bfi.eval_loss(model, p["text"], "--fake-quant")
    r8, rq = abs(lq - b8) / b8, abs(lq - bq) / bq
    results[kind] = {"llama": lq, "bf_eval": b8, "bf_eval_fake_quant": bq, "rel": r8, "rel_fake_quant": rq}
    bfi.check(r8 <= 0.02, "%s: llama.cpp loss %.6f, bf-eval %.6f, relative %.2g (allowed 0.02)" % (kind.upper(), lq, b8, r8))
    bfi.check(rq <= 0.02, "%s: llama.cpp loss %.6f, bf-eval --fake-quant %.6f, relative %.2g (allowed 0.02); closer: %s" % (
        kind.upper(), lq, bq, rq, "--fake-quant" if rq < r8 else "int8"))

# a subln model with tied embeddings runs as llama.cpp's bitnet (rotate-half rope, no permutation)
bfi.bf("bf-init", "--like", p["text"], "--d", 256, "--layers", 1, "--heads", 4, "--ff", 512, "--subln", "--tie",
       "--seed", 4, "-o", bfi.w("sub0.bf"))
bfi.bf("bf-ste-train", "-q", "--data", p["text"], "--steps", 20, "--batch", 16, "--lr", "3e-3", bfi.w("sub0.bf"),
       "-o", bfi.w("sub.bf"))
bfi.bf("bf-export", "--format", "gguf", "--type", "f32", bfi.w("sub.bf"), "-o", bfi.w("sub.gguf"))
ls = bfi.llama_loss(bfi.w("sub.gguf"), p["text"], ctx)
bs = bfi.eval_loss(bfi.w("sub.bf"), p["text"])
rel = abs(ls - bs) / bs
results["bitnet_f32"] = {"llama": ls, "bf_eval": bs, "rel": rel}
bfi.check(rel <= 1e-3, "subln as bitnet, F32: llama.cpp loss %.6f, bf-eval %.6f, relative %.2g" % (ls, bs, rel))

with open(bfi.w("llama-agreement.json"), "w") as f:
    json.dump(results, f, indent=1)
bfi.finish()
