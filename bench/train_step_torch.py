#!/usr/bin/python3
"""train_step_torch.py -- the PyTorch side of bench/train-step.

    train_step_torch.py --model MODEL.bf --data DATA.bf --batch B
                        --warmup W --steps N [--threads 2] [--lr X] [--wd X] [--clip X]

Builds the transformer of MODEL's header (bitforge(7), bf-init(1)) in
float32 on the CPU with MODEL's weights, and trains it like `bf-ste-train
--schedule constant`: batches of B rows drawn from DATA's train split in shuffled
epochs, mean cross-entropy over targeted positions, forward, backward,
global L2 gradient clipping to X, AdamW (betas 0.9/0.95, eps 1e-8, decoupled
weight decay on 2-D parameters only), constant learning rate.  W warm-up
steps, then N timed steps; prints one JSON object: seconds per step,
tokens per step, the first and last losses.  Uses Debian's python3-torch
and python3-msgpack (run with /usr/bin/python3).
"""

import argparse
import json
import math
import sys
import time

import msgpack
import numpy as np
import torch
import torch.nn.functional as F


def read_stream(path):
    """(header, {name: numpy array}) of a tensor stream (F32 and I32 only)."""
    up = msgpack.Unpacker(open(path, "rb"), raw=False, max_bin_len=1 << 31)
    header = up.unpack()
    out = {}
    for obj in up:
        if obj.get("end") is True:
            return header, out
        want, chunks = obj["nbytes"], []
        while want > 0:
            c = up.unpack()
            chunks.append(c)
            want -= len(c)
        dt = {"F32": "<f4", "I32": "<i4"}[obj["dtype"]]
        out[obj["name"]] = np.frombuffer(b"".join(chunks), dtype=dt).reshape(obj["shape"])
    sys.exit("%s: no trailer" % path)


class RMSNorm(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.w


def make_norm(kind, d):
    return torch.nn.LayerNorm(d, eps=1e-5) if kind == "layer" else RMSNorm(d)


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        d, ff = c["d_model"], c["d_ff"]
        self.c = c
        self.attn_norm = make_norm(c["norm"], d)
        self.wq = torch.nn.Linear(d, d, bias=False)
        self.wk = torch.nn.Linear(d, d, bias=False)
        self.wv = torch.nn.Linear(d, d, bias=False)
        self.wo = torch.nn.Linear(d, d, bias=False)
        self.mlp_norm = make_norm(c["norm"], d)
        self.w1 = torch.nn.Linear(d, ff, bias=False)
        if c["act"] != "gelu":
            self.w3 = torch.nn.Linear(d, ff, bias=False)
        self.w2 = torch.nn.Linear(ff, d, bias=False)
        if c["subln"]:
            self.attn_sub_norm = RMSNorm(d)
            self.ffn_sub_norm = RMSNorm(ff)

    def forward(self, h, rope, mask):
        B, T, d = h.shape
        H = self.c["n_head"]
        hd = d // H
        a = self.attn_norm(h)
        q = self.wq(a).view(B, T, H, hd).transpose(1, 2)
        k = self.wk(a).view(B, T, H, hd).transpose(1, 2)
        v = self.wv(a).view(B, T, H, hd).transpose(1, 2)
        if rope is not None:
            cos, sin = rope
            q = torch.cat([q[..., :hd // 2] * cos - q[..., hd // 2:] * sin,
                           q[..., hd // 2:] * cos + q[..., :hd // 2] * sin], -1)
            k = torch.cat([k[..., :hd // 2] * cos - k[..., hd // 2:] * sin,
                           k[..., hd // 2:] * cos + k[..., :hd // 2] * sin], -1)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, d)
        if self.c["subln"]:
            o = self.attn_sub_norm(o)
        h = h + self.wo(o)
        a = self.mlp_norm(h)
        act = self.c["act"]
        if act == "gelu":
            u = F.gelu(self.w1(a))
        elif act == "swiglu":
            u = F.silu(self.w1(a)) * self.w3(a)
        else:
            u = torch.relu(self.w1(a)).square() * self.w3(a)
        if self.c["subln"]:
            u = self.ffn_sub_norm(u)
        return h + self.w2(u)


class Model(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d = c["d_model"]
        self.tok_emb = torch.nn.Embedding(c["vocab"], d)
        if c["pos"] == "learned":
            self.pos_emb = torch.nn.Parameter(torch.zeros(c["ctx"], d))
        self.blk = torch.nn.ModuleList([Block(c) for _ in range(c["n_layer"])])
        self.out_norm = make_norm(c["norm"], d)
        if not c["tie_embed"]:
            self.head = torch.nn.Linear(d, c["vocab"], bias=False)
        hd = d // c["n_head"]
        inv = 10000.0 ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2.0 / hd)
        ang = torch.arange(c["ctx"], dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)

    def forward(self, x, y):
        B, T = x.shape
        h = self.tok_emb(x)
        if self.c["pos"] == "learned":
            h = h + self.pos_emb[:T]
        rope = (self.cos[:T], self.sin[:T]) if self.c["pos"] == "rope" else None
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        for b in self.blk:
            h = b(h, rope, mask)
        h = self.out_norm(h)
        logits = h @ (self.tok_emb.weight if self.c["tie_embed"] else self.head.weight).t()
        return F.cross_entropy(logits.view(B * T, -1), y.reshape(-1), ignore_index=-1)

    def load_bf(self, tensors):
        """Weights from a bf model stream's tensors (the names bf-init(1) gives)."""
        own = dict(self.named_parameters())
        alias = {"tok_emb": "tok_emb.weight", "head": "head.weight", "pos_emb": "pos_emb"}
        for name, arr in tensors.items():
            key = alias.get(name)
            if key is None:
                parts = name.split(".")
                if parts[-1] in ("w", "b"):   # norms: .w -> weight/w, .b -> bias
                    base = ".".join(parts[:-1])
                    key = base + (".w" if base + ".w" in own else ".weight") if parts[-1] == "w" else base + ".bias"
                else:
                    key = name + ".weight"
            if key not in own:
                sys.exit("train_step_torch.py: no parameter for %r" % name)
            with torch.no_grad():
                own[key].copy_(torch.from_numpy(np.array(arr)).view_as(own[key]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.0)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    mh, mt = read_stream(a.model)
    c = {"norm": "rms", "act": "swiglu", "pos": "rope", "tie_embed": False, "subln": False}
    c.update(mh["meta"])
    _, dt = read_stream(a.data)
    X = torch.from_numpy(np.array(dt["train.x"])).long()
    Y = torch.from_numpy(np.array(dt["train.y"])).long()
    model = Model(c)
    model.load_bf(mt)
    decay = [p for p in model.parameters() if p.dim() == 2]
    rest = [p for p in model.parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": rest, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, foreach=True)
    rows = X.shape[0]
    gen = torch.Generator().manual_seed(a.seed)
    state = {"perm": torch.randperm(rows, generator=gen), "cur": 0}

    def batch():
        """The next batch: rows of a fresh permutation each epoch (bf_train's scheme)."""
        if a.batch >= rows:
            return X, Y
        parts, need = [], a.batch
        while need:
            if state["cur"] == rows:
                state["perm"], state["cur"] = torch.randperm(rows, generator=gen), 0
            take = min(need, rows - state["cur"])
            parts.append(state["perm"][state["cur"]:state["cur"] + take])
            state["cur"] += take
            need -= take
        i = torch.cat(parts)
        return X[i], Y[i]

    losses = []

    def step():
        x, y = batch()
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        losses.append(float(loss))

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    secs = time.perf_counter() - t0
    json.dump({"seconds_per_step": secs / a.steps, "steps": a.steps, "tokens_per_step": int(x_tokens(X, a.batch)),
               "first_loss": losses[0], "last_loss": losses[-1], "threads": torch.get_num_threads()}, sys.stdout)
    print()


def x_tokens(X, batch):
    return min(batch, X.shape[0]) * X.shape[1]


if __name__ == "__main__":
    main()
