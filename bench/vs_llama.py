"""vs_llama.py MODEL.gguf DATA.bf MODE ROWS -- llama.cpp's side of
bench/vs-llama: the val rows of DATA through MODEL with llama-cpp-python's C
API on 2 threads, timed after loading; prints "tokens seconds loss".

MODE prompt: each row's 64 tokens in one batch (logits at every position,
as bf-eval computes them); MODE decode: one token a batch through the
key/value cache, the cache cleared between rows."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "interop"))
import bfi  # noqa: E402

path, data, mode, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
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
