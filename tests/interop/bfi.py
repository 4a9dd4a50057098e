"""bfi.py -- what the interop checks share: running the bf-* programs, the
models and data they are checked on (made once per run in $BF_INTEROP_WORK),
reading data streams, a numpy reference of the model, and llama.cpp's loss
through llama-cpp-python's low-level API.

Environment: BF_BIN (the programs, default bin/ of the repository),
BF_INTEROP_WORK (a scratch directory, made by tests/interop/run.sh)."""

import ctypes
import json
import math
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BF_BIN", os.path.join(ROOT, "bin"))
WORK = os.environ.get("BF_INTEROP_WORK", "/tmp")

failures = []


def check(ok, what):
    print(("ok     " if ok else "FAILED ") + what)
    sys.stdout.flush()
    if not ok:
        failures.append(what)


def finish():
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)


def bf(*args, out=None):
    """Runs bin/bf-NAME ARGS; returns stdout (bytes), raises on failure."""
    prog = os.path.join(BIN, args[0])
    r = subprocess.run([prog] + [str(a) for a in args[1:]], capture_output=True)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(map(str, args)), r.returncode, r.stderr.decode().strip()))
    return r.stdout


def w(name):
    return os.path.join(WORK, name)


def eval_loss(model, data, *extra):
    j = json.loads(bf("bf-eval", "--json", "--data", data, "--split", "val", *extra, model))
    return j["loss"]


# ------------------------------------------------------------------ models

def models():
    """A byte-level text data set and a model trained on it a little (d 256,
    2 layers: rows of 256 for the TQ blocks), in F32 and ternary (TQ2 per
    tensor, TQ1 per row).  Made once; returns the paths."""
    p = {k: w(k + ".bf") for k in ("text", "f32", "tq2", "tq1")}
    if all(os.path.exists(v) for v in p.values()):
        return p
    corpus = w("corpus.txt")
    with open(corpus, "w") as f:
        for page in sorted(os.listdir(os.path.join(ROOT, "man", "man1"))):
            with open(os.path.join(ROOT, "man", "man1", page), errors="replace") as g:
                f.write(g.read())
    bf("bf-data", "text", "--file", corpus, "--ctx", 64, "-o", p["text"])
    bf("bf-init", "--like", p["text"], "--d", 256, "--layers", 2, "--heads", 4, "--ff", 512, "-o", w("init.bf"))
    bf("bf-ste-train", "-q", "--data", p["text"], "--steps", 60, "--batch", 16, "--lr", "3e-3", w("init.bf"), "-o", p["f32"])
    bf("bf-quantize", "--keep-latent", p["f32"], "-o", w("q.bf"))
    bf("bf-ste-train", "-q", "--data", p["text"], "--steps", 30, "--batch", 16, "--lr", "1e-3", "--strip", w("q.bf"), "-o", p["tq2"])
    bf("bf-quantize", "--pack", "tq1", "--per-row", p["f32"], "-o", p["tq1"])
    return p


def read_stream(path, raw_bytes=False):
    """{name: numpy array} of a bf stream's plain tensors (I32/F32); with
    raw_bytes, {name: (dtype, shape, payload bytes)} of every tensor."""
    import msgpack
    with open(path, "rb") as f:
        raw = f.read()
    up = msgpack.Unpacker(raw=False, max_bin_len=1 << 31, strict_map_key=False)
    up.feed(raw)
    objs = iter(up)
    next(objs)
    out = {}
    for obj in objs:
        if obj.get("end") is True:
            break
        chunks, got = [], 0
        while got < obj["nbytes"]:
            c = next(objs)
            chunks.append(c)
            got += len(c)
        dt = {"I32": "<i4", "F32": "<f4"}.get(obj["dtype"])
        if raw_bytes:
            out[obj["name"]] = (obj["dtype"], list(obj["shape"]), b"".join(chunks))
        elif dt:
            out[obj["name"]] = np.frombuffer(b"".join(chunks), dtype=dt).reshape(obj["shape"])
    return out


def val_rows(data):
    s = read_stream(data)
    return s["val.x"], s["val.y"]


def mean_ce(logits_rows, ys):
    """Mean cross-entropy over targeted positions: logits_rows[b] [T, V]."""
    tot, n = 0.0, 0
    for lg, y in zip(logits_rows, ys):
        lg = lg.astype(np.float64)
        m = lg.max(axis=1, keepdims=True)
        lp = lg - m - np.log(np.exp(lg - m).sum(axis=1, keepdims=True))
        for t, tgt in enumerate(y):
            if tgt >= 0:
                tot -= lp[t, tgt]
                n += 1
    return tot / max(n, 1)


# --------------------------------------------------------- numpy reference

def np_loss(P, cfg, xs, ys):
    """The model of bitforge(7) in float64 numpy (RMSNorm, rotate-half RoPE,
    causal attention, SwiGLU, optional tied head): the mean cross-entropy.
    P: bitforge tensor names -> arrays."""
    d, H, L = cfg["d_model"], cfg["n_head"], cfg["n_layer"]
    hd = d // H
    g = {k: v.astype(np.float64) for k, v in P.items()}

    def rms(x, wt):
        return x * wt / np.sqrt((x * x).mean(axis=-1, keepdims=True) + 1e-5)

    def rope(x):   # [T, H, hd]
        T = x.shape[0]
        half = hd // 2
        inv = 10000.0 ** (-2.0 * np.arange(half) / hd)
        ang = np.arange(T)[:, None] * inv[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        a, b = x[..., :half], x[..., half:]
        return np.concatenate([a * c - b * s, b * c + a * s], axis=-1)

    rows = []
    for x in xs:
        T = len(x)
        h = g["tok_emb"][x]
        mask = np.triu(np.ones((T, T), dtype=bool), 1)
        for l in range(L):
            p = "blk.%d." % l
            a = rms(h, g[p + "attn_norm.w"])
            q = rope((a @ g[p + "wq"].T).reshape(T, H, hd))
            k = rope((a @ g[p + "wk"].T).reshape(T, H, hd))
            v = (a @ g[p + "wv"].T).reshape(T, H, hd)
            att = np.einsum("thd,shd->hts", q, k) / math.sqrt(hd)
            att[:, mask] = -np.inf
            att = np.exp(att - att.max(axis=-1, keepdims=True))
            att /= att.sum(axis=-1, keepdims=True)
            o = np.einsum("hts,shd->thd", att, v).reshape(T, d)
            h = h + o @ g[p + "wo"].T
            a = rms(h, g[p + "mlp_norm.w"])
            u = a @ g[p + "w1"].T
            u = u / (1 + np.exp(-u)) * (a @ g[p + "w3"].T)
            h = h + u @ g[p + "w2"].T
        h = rms(h, g["out_norm.w"])
        head = g["tok_emb"] if cfg.get("tie_embed") else g["head"]
        rows.append(h @ head.T)
    return mean_ce(rows, ys)


# ---------------------------------------------------------------- llama.cpp

_log_cb = None


def quiet_llama(L):
    """llama.cpp's log lines off (they go to stderr otherwise)."""
    global _log_cb
    if _log_cb is None:
        _log_cb = L.llama_log_callback(lambda level, text, user: None)
        L.llama_log_set(_log_cb, ctypes.c_void_p())


class Llama:
    """A GGUF model in llama.cpp through llama-cpp-python's C API: logits of
    whole rows, one row a batch, the key/value cache cleared between rows."""

    def __init__(self, path, n_ctx, threads=2, kv_f32=True):
        import llama_cpp as L
        self.L = L
        quiet_llama(L)
        L.llama_backend_init()
        mp = L.llama_model_default_params()
        self.model = L.llama_model_load_from_file(path.encode(), mp)
        if not self.model:
            raise RuntimeError("llama.cpp cannot load %s" % path)
        cp = L.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = n_ctx
        cp.n_ubatch = n_ctx
        cp.n_threads = threads
        cp.n_threads_batch = threads
        if kv_f32:
            cp.type_k = 0   # GGML_TYPE_F32
            cp.type_v = 0
        if hasattr(cp, "flash_attn_type"):
            cp.flash_attn_type = 0   # disabled
        elif hasattr(cp, "flash_attn"):
            cp.flash_attn = False
        self.ctx = L.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise RuntimeError("llama.cpp cannot make a context for %s" % path)
        self.n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.batch = L.llama_batch_init(n_ctx, 0, 1)

    def clear(self):
        L = self.L
        if hasattr(L, "llama_memory_clear"):
            L.llama_memory_clear(L.llama_get_memory(self.ctx), True)
        else:
            L.llama_kv_self_clear(self.ctx)

    def decode(self, tokens, pos0, want_logits=True):
        """Feeds tokens at positions pos0…; returns their logits [n, V] (or None)."""
        L, b = self.L, self.batch
        n = len(tokens)
        b.n_tokens = n
        for i, t in enumerate(tokens):
            b.token[i] = int(t)
            b.pos[i] = pos0 + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 1 if want_logits else (1 if i == n - 1 else 0)
        rc = L.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError("llama_decode returned %d" % rc)
        if not want_logits:
            return None
        ptr = L.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(ptr, shape=(n, self.n_vocab)).copy()

    def row_logits(self, tokens):
        self.clear()
        return self.decode(tokens, 0)

    def close(self):
        L = self.L
        L.llama_batch_free(self.batch)
        L.llama_free(self.ctx)
        L.llama_model_free(self.model)


def llama_loss(path, data, n_ctx, threads=2):
    xs, ys = val_rows(data)
    m = Llama(path, n_ctx, threads)
    try:
        rows = [m.row_logits(x) for x in xs]
    finally:
        m.close()
    return mean_ce(rows, ys)
