#!/usr/bin/python3
"""model_ref.py -- an independent PyTorch reference of the model: the
transformer bitforge(7) describes, with the tensors bf-init(1) names and
the quantizers of bf-quantize(1) and bf-ste-train(1).

Written from the model's description, not from the C sources: it reads
tensor streams with python3-msgpack, rebuilds the transformer in float64
with torch, and takes the loss and its gradients with autograd.  It is
the yardstick for tests/tools/bf-grad (the C library's forward and
backward) in tests/ref/check.sh.

    model_ref.py grad MODEL --data DATA [--split S] [--rows N]
                 [--scale-init X] [--jitter-1d X]
        prints {"loss", "targets", "grads"} like bf-grad
    model_ref.py metrics MODEL --data DATA [--split S]
        prints {"loss", "token_acc", "exact"} over the split
    model_ref.py check [--golden DIR] [--cases FILE]
        the checks of tests/ref/check.sh (see there); exit 1 on a failure

Every variant of section 4: norm rms|layer, act swiglu|gelu|relu2, pos
rope|learned, tie_embed, subln; and ternary block matrices (TQ2/TQ1 with
W.scale, optional W.latent) with the absmean or threshold rule and the
int8 activation quantizer (act_bits 8), straight-through in the backward.
"""

import argparse
import itertools
import json
import math
import sys

import msgpack
import numpy as np
import torch

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)

try:  # the trailer's XXH3-64 is verified when python3-xxhash is installed
    import xxhash
except ImportError:
    xxhash = None


# ---------------------------------------------------------------- streams

class StreamError(Exception):
    pass


NP_DTYPES = {"F32": "<f4", "F16": "<f2", "I8": "i1", "U8": "u1", "I32": "<i4", "I64": "<i8"}


def tensor_nbytes(dtype, shape):
    numel = 1
    for s in shape:
        numel *= s
    if dtype in NP_DTYPES:
        return numel * np.dtype(NP_DTYPES[dtype]).itemsize
    if dtype == "BF16":
        return numel * 2
    if dtype in ("TQ2", "TQ1"):
        if len(shape) != 2:
            raise StreamError("ternary tensor needs 2 dims")
        per = 4 if dtype == "TQ2" else 5
        return shape[0] * ((shape[1] + per - 1) // per)
    raise StreamError("unknown dtype %r" % dtype)


def read_stream(path):
    """(header map, {name: (dtype, shape, payload bytes, meta)}) in stream order."""
    with open(path, "rb") as f:
        raw = f.read()
    up = msgpack.Unpacker(raw=False, max_bin_len=1 << 31, strict_map_key=False)
    up.feed(raw)
    objs = iter(up)
    try:
        header = next(objs)
    except StopIteration:
        raise StreamError("%s: empty stream" % path)
    if not isinstance(header, dict) or next(iter(header), None) != "bf" or header["bf"] != 1:
        raise StreamError("%s: not a bf stream" % path)
    tensors = {}
    payload = []
    for obj in objs:
        if not isinstance(obj, dict):
            raise StreamError("%s: a payload where a tensor header belongs" % path)
        if obj.get("end") is True:
            if obj.get("count") != len(tensors):
                raise StreamError("%s: trailer count %r, %d tensors" % (path, obj.get("count"), len(tensors)))
            if xxhash is not None and obj.get("xxh3") != xxhash.xxh3_64_intdigest(b"".join(payload)):
                raise StreamError("%s: checksum mismatch" % path)
            rest = list(objs)
            if rest:
                raise StreamError("%s: data after the trailer" % path)
            return header, tensors
        name, dtype, shape, nbytes = obj["name"], obj["dtype"], list(obj["shape"]), obj["nbytes"]
        if name in tensors:
            raise StreamError("%s: duplicate tensor %r" % (path, name))
        if tensor_nbytes(dtype, shape) != nbytes:
            raise StreamError("%s: %r: nbytes %d disagrees with its shape" % (path, name, nbytes))
        chunks, got = [], 0
        while got < nbytes:
            try:
                c = next(objs)
            except StopIteration:
                raise StreamError("%s: %r: payload ends early" % (path, name))
            if not isinstance(c, bytes):
                raise StreamError("%s: %r: payload is not bin" % (path, name))
            chunks.append(c)
            got += len(c)
        if got != nbytes:
            raise StreamError("%s: %r: payload of %d bytes, want %d" % (path, name, got, nbytes))
        data = b"".join(chunks)
        payload.append(data)
        tensors[name] = (dtype, shape, data, obj.get("meta"))
    raise StreamError("%s: no trailer (truncated stream)" % path)


def ternary_codes(dtype, shape, data):
    rows, cols = shape
    b = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    if dtype == "TQ2":
        per = (cols + 3) // 4
        b = b.reshape(rows, per)
        c = np.stack([(b >> (2 * j)) & 3 for j in range(4)], axis=2).reshape(rows, per * 4)[:, :cols]
        if (c == 3).any():
            raise StreamError("invalid TQ2 code 3")
    else:
        per = (cols + 4) // 5
        b = b.reshape(rows, per)
        if (b >= 243).any():
            raise StreamError("invalid TQ1 byte")
        c = np.stack([(b // 3 ** j) % 3 for j in range(5)], axis=2).reshape(rows, per * 5)[:, :cols]
    return (c - 1).astype(np.float32)


def to_array(dtype, shape, data):
    """Values as a numpy array (float32 for float dtypes); ternary: codes."""
    if dtype in ("TQ2", "TQ1"):
        return ternary_codes(dtype, shape, data)
    if dtype == "BF16":
        u = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
        return u.view(np.float32).reshape(shape)
    a = np.frombuffer(data, dtype=NP_DTYPES[dtype]).reshape(shape)
    return a.astype(np.float32) if dtype in ("F16",) else a.copy()


# ---------------------------------------------------------------- models

DEFAULTS = {"norm": "rms", "act": "swiglu", "pos": "rope", "tie_embed": False, "subln": False, "act_bits": 8}
BLOCK_MATRICES = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")


class Model:
    """Parameters as float32 numpy arrays by name (the latent values of
    ternary matrices), in the stream's order, plus each ternary matrix's
    quantizer rule."""

    def __init__(self, path):
        header, ts = read_stream(path)
        if header.get("kind") != "model":
            raise StreamError("%s: kind %r, want model" % (path, header.get("kind")))
        meta = dict(DEFAULTS)
        meta.update(header["meta"])
        if meta.get("arch", "transformer") != "transformer":
            raise StreamError("%s: arch %r" % (path, meta.get("arch")))
        if "recursion" in header["meta"]:
            raise StreamError("%s: recursive models are not covered" % path)
        self.cfg = meta
        self.params = {}      # name -> float32 array (the trainable value)
        self.qrule = {}       # name -> (method, tau, per_row) for ternary matrices
        order = []
        for name, (dtype, shape, data, tmeta) in ts.items():
            base = name
            for suf in (".scale", ".latent"):
                if name.endswith(suf) and name[: -len(suf)] in ts:
                    base = name[: -len(suf)]
            if base not in order:
                order.append(base)
        for name in order:
            dtype, shape, data, tmeta = ts[name]
            if dtype in ("TQ2", "TQ1"):
                codes = to_array(dtype, shape, data)
                if name + ".scale" not in ts:
                    raise StreamError("%s: %r has no scale" % (path, name))
                scale = to_array(*ts[name + ".scale"][:3]).reshape(-1)
                tmeta = tmeta or {}
                method = tmeta.get("method", "absmean")
                rule = (method, float(tmeta.get("threshold", 0.0)), bool(tmeta.get("per_row", scale.size > 1)))
                self.qrule[name] = rule
                if name + ".latent" in ts:
                    self.params[name] = to_array(*ts[name + ".latent"][:3]).astype(np.float32)
                else:
                    s = scale.reshape(-1, 1) if scale.size > 1 else scale.reshape(1, 1)
                    self.params[name] = (s * codes).astype(np.float32)
            else:
                a = to_array(dtype, shape, data)
                self.params[name] = a.astype(np.float32)
        self.names = order

    def perturb(self, scale_init, jitter):
        """bf-grad's --scale-init and --jitter-1d, in the same float arithmetic."""
        for name in self.names:
            v = self.params[name]
            k = sum(name.encode())
            if v.ndim == 2 and scale_init != 1:
                self.params[name] = (v.astype(np.float64) * scale_init).astype(np.float32)
            if v.ndim == 1 and jitter != 0:
                j = np.array([jitter * math.sin(1.0 + 0.7 * i + 1.3 * k) for i in range(v.size)], dtype=np.float64)
                self.params[name] = (v + j.astype(np.float32)).astype(np.float32)


def round_half_away(x):
    """C's roundf, in float64 (float32's x + 0.5 can round up by itself)."""
    x = x.double()
    return torch.sign(x) * torch.floor(torch.abs(x) + 0.5)


# Quantizer decisions right at a boundary.  The C side computes in float32
# and we in float64, so a value within rounding of a boundary may land on
# either side there -- and exact ties are common: at position 0 attention
# returns v exactly, a ternary matrix times int8 activations, whose ratios
# are ratios of integers, so x*s = k + 1/2 happens.  The tracker numbers the
# quantizers' calls in forward order and records every decision closer to
# its boundary than REL_SLACK*|value| (+ ABS_SLACK for activations, in
# units of x*s; generous: float32 inputs differ from float64 by about 1e-6
# relative, and a weight's boundary moves with the float32 mean |W|); the
# checker may then re-run
# the reference with some of those decisions taken the other way and accept
# the C result if it matches one such resolution of the near-ties.
REL_SLACK = 2e-5
ABS_SLACK = 1e-4


class Decisions:
    def __init__(self, flip=()):
        self.call = 0
        self.near = []          # (closeness < 1, call, flat index, description)
        self.flip = set(flip)   # (call, flat index) to take the other way

    def next_call(self):
        self.call += 1
        return self.call

    def see(self, call, kind, v, boundary, abs_slack):
        """v, boundary: float64 tensors; returns the flat indices to flip."""
        r = ((v - boundary).abs() / (REL_SLACK * v.abs() + abs_slack)).reshape(-1)
        for i in torch.nonzero(r < 1).reshape(-1).tolist():
            self.near.append((float(r[i]), call, i, "%s call %d element %d: %.7g vs boundary %.7g" % (
                kind, call, i, float(v.reshape(-1)[i]), float(torch.as_tensor(boundary).expand_as(v).reshape(-1)[i]))))
        return [i for (c, i) in self.flip if c == call]


def toggle_codes(codes, w, idx):
    """Ternary codes with the decisions at flat indices idx taken the other
    way: a non-zero code becomes 0, a zero code sign(w)."""
    c = codes.reshape(-1).clone()
    ws = torch.sign(w).reshape(-1)
    for i in idx:
        c[i] = 0 if c[i] != 0 else ws[i]
    return c.reshape(codes.shape)


def quant_weight(w, rule, dec=None):
    """The forward's weight scale*codes from latent w (float64, no gradient)."""
    method, tau, per_row = rule
    a = w.abs()
    call = dec.next_call() if dec else 0
    if method == "absmean":
        g = a.mean(dim=1, keepdim=True) if per_row else a.mean()
        g = torch.clamp(g, min=1e-5)
        codes = torch.clamp(round_half_away(w / g), -1, 1)
        if dec:
            codes = toggle_codes(codes, w, dec.see(call, "weight", a / g, torch.full_like(a, 0.5), 0.0))
        return g * codes
    if method == "threshold":
        alpha = a.mean(dim=1, keepdim=True)
        codes = torch.where(a > tau * alpha, torch.sign(w), torch.zeros_like(w))
        if dec:
            codes = toggle_codes(codes, w, dec.see(call, "weight", a, (tau * alpha).expand_as(a), 0.0))
        nz = (codes != 0).sum(dim=1, keepdim=True)
        s = torch.where(nz > 0, (a * (codes != 0)).sum(dim=1, keepdim=True) / nz.clamp(min=1), torch.zeros_like(alpha))
        return s * codes
    raise ValueError("unknown quantizer %r" % method)


def quant_acts(x, dec=None):
    """int8 absmax per token (last dim): s = 127/max(max|x|, 1e-5),
    x_q = clamp(round(x*s), -128, 127)/s, with s and x*s in float32 as the
    specification's arithmetic."""
    xf = x.detach().float()
    m = torch.clamp(xf.abs().amax(dim=-1, keepdim=True), min=1e-5)
    s = 127.0 / m
    xs = (xf * s).double()
    q = round_half_away(xs)
    if dec:
        call = dec.next_call()
        a = xs.abs()
        fl = a.floor()
        idx = dec.see(call, "activation", a, fl + 0.5, ABS_SLACK)
        if idx:
            q = q.reshape(-1).clone()
            for i in idx:   # the other integer next to the tie
                ai = float(a.reshape(-1)[i])
                other = math.floor(ai) if ai >= math.floor(ai) + 0.5 else math.floor(ai) + 1
                q[i] = math.copysign(other, float(xs.reshape(-1)[i]))
            q = q.reshape(xs.shape)
    q = torch.clamp(q, -128, 127) / s.double()
    return q.to(x.dtype)


def ste(x, xq):
    """Forward xq, gradient straight through to x."""
    return x + (xq - x).detach()


def rmsnorm(x, w):
    return x * w / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + 1e-5)


def layernorm(x, w, b):
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    return (x - mu) * w / torch.sqrt(var + 1e-5) + b


def rope(x, T):
    """Rotate-half RoPE, base 10000, on x [B, H, T, hd]: element i of the
    first half pairs with element i of the second half at angle
    t * 10000^(-2i/hd)."""
    hd = x.shape[-1]
    half = hd // 2
    inv = torch.tensor([10000.0 ** (-2.0 * i / hd) for i in range(half)])
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]   # [T, half]
    c, s = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


def forward(model, P, x, y, dec=None):
    """Mean cross-entropy over targeted positions, the logits and the number
    of targets.  P: name -> float64 leaf tensors; x, y: int64 [B, T]; dec:
    a Decisions tracker for the quantizers (ternary models)."""
    cfg = model.cfg
    B, T = x.shape
    d, H = cfg["d_model"], cfg["n_head"]
    hd = d // H
    quant_act = cfg["act_bits"] == 8
    qcache = {}   # one activation quantization per input, shared by wq/wk/wv and w1/w3

    def norm(h, prefix):
        if cfg["norm"] == "layer":
            return layernorm(h, P[prefix + ".w"], P[prefix + ".b"])
        return rmsnorm(h, P[prefix + ".w"])

    def linear(h, name):
        w = P[name]
        if name in model.qrule:
            w = ste(w, quant_weight(w.detach(), model.qrule[name], dec))
            if quant_act:
                if id(h) not in qcache:
                    qcache[id(h)] = (h, ste(h, quant_acts(h, dec)))
                h = qcache[id(h)][1]
        return h @ w.t()

    h = P["tok_emb"][x]
    if cfg["pos"] == "learned":
        h = h + P["pos_emb"][:T][None]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(cfg["n_layer"]):
        p = "blk.%d." % l
        a = norm(h, p + "attn_norm")
        q = linear(a, p + "wq").view(B, T, H, hd).transpose(1, 2)
        k = linear(a, p + "wk").view(B, T, H, hd).transpose(1, 2)
        v = linear(a, p + "wv").view(B, T, H, hd).transpose(1, 2)
        if cfg["pos"] == "rope":
            q, k = rope(q, T), rope(k, T)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, d)
        if cfg["subln"]:
            o = rmsnorm(o, P[p + "attn_sub_norm.w"])
        h = h + linear(o, p + "wo")
        a = norm(h, p + "mlp_norm")
        g = linear(a, p + "w1")
        if cfg["act"] == "swiglu":
            u = torch.nn.functional.silu(g) * linear(a, p + "w3")
        elif cfg["act"] == "relu2":
            u = torch.relu(g) ** 2 * linear(a, p + "w3")
        elif cfg["act"] == "gelu":
            u = 0.5 * g * (1.0 + torch.erf(g / math.sqrt(2.0)))
        else:
            raise ValueError("unknown act %r" % cfg["act"])
        if cfg["subln"]:
            u = rmsnorm(u, P[p + "ffn_sub_norm.w"])
        h = h + linear(u, p + "w2")
    h = norm(h, "out_norm")
    head = P["tok_emb"] if cfg["tie_embed"] else P["head"]
    logits = h @ head.t()
    sel = y.reshape(-1) != -1
    n = int(sel.sum())
    lp = torch.log_softmax(logits.reshape(B * T, -1), dim=-1)
    if n == 0:
        return torch.zeros(()), logits, 0
    loss = -lp[sel, y.reshape(-1)[sel]].mean()
    return loss, logits, n


def load_split(path, split, rows=None):
    header, ts = read_stream(path)
    if header.get("kind") != "data":
        raise StreamError("%s: kind %r, want data" % (path, header.get("kind")))
    x = to_array(*ts[split + ".x"][:3]).astype(np.int64)
    y = to_array(*ts[split + ".y"][:3]).astype(np.int64)
    if rows is not None:
        if rows > x.shape[0]:
            raise StreamError("%s: %d rows wanted, the %s split has %d" % (path, rows, split, x.shape[0]))
        x, y = x[:rows], y[:rows]
    return torch.from_numpy(x), torch.from_numpy(y)


def grad(model_path, data_path, split="train", rows=None, scale_init=1.0, jitter=0.0):
    """(loss, targets, {name: float64 numpy gradient} in the model's order,
    near-ties: the quantizer decisions within rounding of their boundary)."""
    return grad_with(load_case(model_path, data_path, split, rows, scale_init, jitter))


def load_case(model_path, data_path, split, rows, scale_init, jitter):
    m = Model(model_path)
    m.perturb(scale_init, jitter)
    x, y = load_split(data_path, split, rows)
    return m, x, y


def grad_with(case, flip=()):
    m, x, y = case
    P = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in m.params.items()}
    dec = Decisions(flip)
    loss, _, n = forward(m, P, x, y, dec)
    if n:
        loss.backward()
    g = {k: (P[k].grad.numpy() if P[k].grad is not None else np.zeros(P[k].shape)) for k in m.names}
    return float(loss), n, g, sorted(dec.near)


def resolutions(near, k=8):
    """Sets of near-tie decisions to take the other way: every non-empty
    subset of the k closest, smallest sets first (at most 2^k - 1 re-runs)."""
    near = near[:k]
    for size in range(1, len(near) + 1):
        yield from itertools.combinations(near, size)


def metrics(model_path, data_path, split="val"):
    m = Model(model_path)
    P = {k: torch.tensor(v.astype(np.float64)) for k, v in m.params.items()}
    x, y = load_split(data_path, split)
    with torch.no_grad():
        loss, logits, n = forward(m, P, x, y)
    pred = logits.argmax(dim=-1)   # the first maximum on ties
    sel = y != -1
    right = (pred == y) & sel
    token_acc = float(right.sum()) / max(n, 1)
    rows_with = sel.any(dim=1)
    exact_rows = ((right | ~sel).all(dim=1) & rows_with)
    exact = float(exact_rows.sum()) / max(int(rows_with.sum()), 1)
    return {"loss": float(loss), "token_acc": token_acc, "exact": exact, "targets": n}


# ---------------------------------------------------------------- checks

LOSS_RTOL = 1e-5
GRAD_RTOL = 1e-4


def compare(ref_loss, ref_grads, got, loss_rtol=LOSS_RTOL, grad_rtol=GRAD_RTOL):
    """(ok, summary, worst) comparing bf-grad's JSON against the reference."""
    problems = []
    if got.get("loss") is None:
        return False, "loss is not finite", 0.0
    lerr = abs(got["loss"] - ref_loss) / max(abs(ref_loss), 1e-30)
    if lerr > loss_rtol:
        problems.append("loss %.9g vs %.9g (rel %.2g)" % (got["loss"], ref_loss, lerr))
    gg = got["grads"]
    if set(gg) != set(ref_grads):   # the same parameters, in whatever order
        problems.append("parameters %s vs %s" % (sorted(set(gg) - set(ref_grads)), sorted(set(ref_grads) - set(gg))))
    worst, worst_name = 0.0, "-"
    for name, r in ref_grads.items():
        if name not in gg:
            continue
        c = gg[name]
        if any(v is None for v in c):
            problems.append("%s: non-finite gradient" % name)
            continue
        c = np.asarray(c, dtype=np.float64).reshape(r.shape)
        rn = float(np.linalg.norm(r))
        en = float(np.linalg.norm(c - r))
        if rn == 0.0:
            err = en   # an all-zero reference gradient: compare absolutely
        else:
            err = en / rn
        if err > worst:
            worst, worst_name = err, name
        if err > grad_rtol:
            problems.append("%s: rel L2 %.3g (|ref| %.3g)" % (name, err, rn))
    summary = "loss rel %.1e, grad max rel L2 %.1e (%s)" % (lerr, worst, worst_name)
    if problems:
        return False, summary + "; " + "; ".join(problems[:4]) + ("; ..." if len(problems) > 4 else ""), worst
    return True, summary, worst


def check_golden(vdir):
    """The reference against the vectors' golden metrics (float64)."""
    results = []
    with open(vdir + "/golden-metrics.json") as f:
        gold = json.load(f)
    for name in sorted(gold):
        want = gold[name]
        try:
            got = metrics("%s/%s.bf" % (vdir, name), vdir + "/data-tiny.bf", "val")
            lerr = abs(got["loss"] - want["loss"]) / abs(want["loss"])
            ok = lerr <= 1e-9 and got["token_acc"] == want["token_acc"] and got["exact"] == want["exact"]
            msg = "loss %.12g (golden %.12g, rel %.1e), token_acc %.4f (%.4f), exact %.4f (%.4f)" % (
                got["loss"], want["loss"], lerr, got["token_acc"], want["token_acc"], got["exact"], want["exact"])
        except Exception as e:   # a broken vector or reader is a failure, not a crash
            ok, msg = False, "error: %s" % e
        results.append((ok, "golden %-34s" % name, msg))
    return results


def check_cases(path):
    """Cases: one line per bf-grad run, tab-separated:
    VARIANT  DATANAME  MODEL  DATA  SPLIT  ROWS  SCALE  JITTER  BFGRAD_JSON
    A variant passes when all its runs pass; one line per variant."""
    variants = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            variant, dname, model, data, split, rows, scale, jitter, jpath = line.split("\t")
            variants.setdefault(variant, []).append((dname, model, data, split, int(rows), float(scale),
                                                     float(jitter), jpath))
    results = []
    for variant, runs in variants.items():
        ok_all, parts = True, []
        for dname, model, data, split, rows, scale, jitter, jpath in runs:
            try:
                with open(jpath) as f:
                    got = json.load(f)
                case = load_case(model, data, split, rows, scale, jitter)
                loss, n, g, near = grad_with(case)
                if got.get("targets") != n:
                    ok, msg = False, "targets %s vs %d" % (got.get("targets"), n)
                else:
                    ok, msg, _ = compare(loss, g, got)
                    if not ok and near:
                        # a quantizer decision at its boundary may have gone
                        # the other way in float32: try those resolutions
                        for res in resolutions(near):
                            l2, _, g2, _ = grad_with(case, [(c, i) for (_, c, i, _) in res])
                            ok2, msg2, _ = compare(l2, g2, got)
                            if ok2:
                                ok, msg = True, "%s [%d near-tie(s), matched with %s taken the other way]" % (
                                    msg2, len(near), "; ".join(e[3] for e in res))
                                break
                        else:
                            msg += " [%d near-tie(s); no resolution of the closest %d matches]" % (len(near), min(len(near), 8))
                    elif near:
                        msg += " [%d near-tie(s), none flipped]" % len(near)
            except Exception as e:
                ok, msg = False, "error: %s" % e
            ok_all = ok_all and ok
            parts.append("%s: %s" % (dname, msg))
        results.append((ok_all, variant, " | ".join(parts)))
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grad")
    g.add_argument("model")
    g.add_argument("--data", required=True)
    g.add_argument("--split", default="train", choices=("train", "val"))
    g.add_argument("--rows", type=int)
    g.add_argument("--scale-init", type=float, default=1.0)
    g.add_argument("--jitter-1d", type=float, default=0.0)
    mt = sub.add_parser("metrics")
    mt.add_argument("model")
    mt.add_argument("--data", required=True)
    mt.add_argument("--split", default="val", choices=("train", "val"))
    c = sub.add_parser("check")
    c.add_argument("--golden")
    c.add_argument("--cases")
    a = ap.parse_args()
    if a.cmd == "grad":
        loss, n, grads, near = grad(a.model, a.data, a.split, a.rows, a.scale_init, a.jitter_1d)
        json.dump({"loss": loss, "targets": n, "near_ties": [e[3] for e in near], "grads": {k: v.reshape(-1).tolist() for k, v in grads.items()}},
                  sys.stdout)
        print()
        return 0
    if a.cmd == "metrics":
        json.dump(metrics(a.model, a.data, a.split), sys.stdout)
        print()
        return 0
    results = []
    if a.golden:
        results += check_golden(a.golden)
    if a.cases:
        results += check_cases(a.cases)
    npass = sum(1 for ok, _, _ in results if ok)
    for ok, label, msg in results:
        print("%s %s  %s" % ("ok  " if ok else "FAIL", label, msg))
    print("%d passed, %d failed" % (npass, len(results) - npass))
    sys.stdout.flush()
    return 0 if results and npass == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
