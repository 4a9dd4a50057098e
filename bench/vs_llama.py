"""vs_llama.py MODEL.gguf DATA.bf MODE ROWS -- llama.cpp's side of
bench/vs-llama: the val rows of DATA through MODEL with llama-cpp-python's C
API on 2 threads, timed after loading; prints "tokens seconds loss".

MODE prompt: each row's 64 tokens in one batch (logits at every position,
as bf-eval computes them); MODE decode: one token a batch through the
key/value cache, the cache cleared between rows.

vs_llama.py MODEL.gguf PROMPT-BYTES generate NEW -- greedy generation as
bf-generate does it: the prompt in one batch, then NEW tokens, each the
argmax (the first on ties) of the last logits, fed back one a batch; prints
"NEW decode-seconds prompt-seconds TOKENS" (TOKENS comma-separated)."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "interop"))
import bfi  # noqa: E402

path, data, mode, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if mode == "generate":
    import numpy as np
    prompt = list(data.encode("latin-1"))
    m = bfi.Llama(path, 64, threads=2, kv_f32=False)
    m.decode(prompt, 0, want_logits=False)   # warm up
    m.clear()
    t0 = time.perf_counter()
    m.decode(prompt, 0, want_logits=False)
    logits = bfi.np.ctypeslib.as_array(m.L.llama_get_logits_ith(m.ctx, len(prompt) - 1), shape=(m.n_vocab,))
    t1 = time.perf_counter()
    toks = []
    for i in range(rows):
        tok = int(np.argmax(logits))
        toks.append(tok)
        if i + 1 == rows:
            break
        logits = m.decode([tok], len(prompt) + i)[0]
    t2 = time.perf_counter()
    m.close()
    print(rows, "%.6f" % (t2 - t1), "%.6f" % (t1 - t0), ",".join(map(str, toks)))
    sys.exit(0)
xs, ys = bfi.val_rows(data)
xs, ys = xs[:rows], ys[:rows]
T = xs.shape[1]
m = bfi.Llama(path, T, threads=2, kv_f32=False)   # llama.cpp's defaults: F16 key/value cache
m.row_logits(xs[0])   # warm up
logits = []
t0 = time.perf_counter()
for x in xs:
    m.clear()
    if mode == "prompt":
        logits.append(m.decode(x, 0))
    else:
        logits.append(__import__("numpy").concatenate([m.decode([t], i) for i, t in enumerate(x)]))
secs = time.perf_counter() - t0
m.close()
print(len(xs) * T, "%.6f" % secs, "%.6f" % bfi.mean_ce(logits, ys))
