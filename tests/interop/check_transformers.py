"""check_transformers.py -- a bitforge model in Hugging Face transformers:
bf-export --format safetensors --names hf --config writes the pair that
LlamaForCausalLM loads (config.json and model.safetensors in one folder);
on the same token ids its log-probabilities agree with bf-eval --logprobs.

The float model: every log-probability within 1e-4 (float32 on both sides,
summed in different orders).  The ternary model, dequantized on export
(scale * codes in F32): transformers computes with float activations where
bitforge quantizes them to int8 in its ternary layers, so only the losses
are compared, loosely, and the gap is printed.  A model Llama cannot
express is refused by the exporter with one line.

Runs under a Python with torch and transformers (tests/interop/run.sh gives
it $BF_HF_PY; scripts/deps-interop makes one)."""

import json
import os
import subprocess

import numpy as np
import torch
import transformers

import bfi

torch.set_num_threads(2)
p = bfi.models()
xs, ys = bfi.val_rows(p["text"])
xs, ys = xs[:16], ys[:16]


def hf_logprobs(model_path, folder):
    os.makedirs(folder, exist_ok=True)
    bfi.bf("bf-export", "--format", "safetensors", "--names", "hf", "--config", os.path.join(folder, "config.json"),
           "-o", os.path.join(folder, "model.safetensors"), model_path)
    m = transformers.LlamaForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")
    m.eval()
    with torch.no_grad():
        logits = m(torch.tensor(xs.astype(np.int64))).logits
    return torch.log_softmax(logits.double(), dim=-1).numpy()


def bf_logprobs(model_path, *extra):
    out = bfi.w("lp.bf")
    bfi.bf("bf-eval", "--data", p["text"], "--batch", 16, *extra, "--logprobs", out, model_path)
    return bfi.read_stream(out)["logprobs"][:16].astype(np.float64)


def loss(lp):
    tot, n = 0.0, 0
    for row, y in zip(lp, ys):
        for t, tgt in enumerate(y):
            if tgt >= 0:
                tot -= row[t, tgt]
                n += 1
    return tot / n


# 1. the float model: log-probabilities
hf = hf_logprobs(p["f32"], bfi.w("hf-f32"))
bf = bf_logprobs(p["f32"])
diff = float(np.abs(hf - bf).max())
with open(bfi.w("hf-f32/config.json")) as f:
    cfg = json.load(f)
bfi.check(hf.shape == bf.shape and diff <= 1e-4 and cfg["model_type"] == "llama",
          "transformers %s loads the float export (LlamaForCausalLM): log-probabilities of %d rows x %d positions "
          "agree with bf-eval's, max abs difference %.2e (at most 1e-4); loss %.6f against %.6f"
          % (transformers.__version__, hf.shape[0], hf.shape[1], diff, loss(hf), loss(bf)))

# 2. the ternary model, dequantized: float activations against int8 ones
hf = hf_logprobs(p["tq2"], bfi.w("hf-tq2"))
bf_int = bf_logprobs(p["tq2"])
bf_fq = bf_logprobs(p["tq2"], "--fake-quant")
bfi.check(abs(loss(hf) - loss(bf_int)) <= 0.05 * loss(bf_int),
          "transformers runs the ternary export (scale*codes in F32): loss %.6f against bf-eval's %.6f on the integer "
          "kernels (int8 activations; within 5%%) and %.6f with --fake-quant (float activations)"
          % (loss(hf), loss(bf_int), loss(bf_fq)))

# 3. what Llama cannot express: one line from the exporter
odd = bfi.w("learned.bf")
bfi.bf("bf-init", "--like", p["text"], "--d", 32, "--layers", 1, "--heads", 2, "--pos", "learned", "-o", odd)
r = subprocess.run([os.path.join(bfi.BIN, "bf-export"), "--format", "safetensors", "--names", "hf", "--config",
                    bfi.w("odd.json"), "-o", bfi.w("odd.safetensors"), odd], capture_output=True)
err = r.stderr.decode()
bfi.check(r.returncode == 1 and err.count("\n") == 1 and "learned positions" in err
          and not os.path.exists(bfi.w("odd.json")) and not os.path.exists(bfi.w("odd.safetensors")),
          "a model with learned positions is refused with one line: %s" % err.strip())
bfi.finish()
