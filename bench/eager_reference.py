#!/usr/bin/env python3
"""Eager PyTorch (Python) implementation of tern's models, trained on the same synthetic batches as
`tern bench train`: the reference a C++ trainer has to beat. The layers mirror models/seq2seq.cpp and
models/language_model.cpp (bidirectional packed encoder, Luong dot/general or Bahdanau additive attention,
input feeding as a loop of cells or one fused decoder, tied embeddings, residual layers, unequal encoder and
decoder depths, word dropout), with Adam, gradient clipping, autocast per
precision and a GradScaler for fp16. Prints one JSON row per precision.

    python3 bench/eager_reference.py configs/bench_seq2seq.yaml --precisions fp32 bf16 --batch 64
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml


class Attention(nn.Module):
    def __init__(self, kind, H):
        super().__init__()
        self.kind = kind
        if kind != "dot":
            self.w_key = nn.Linear(H, H, bias=False)
        if kind == "additive":
            self.w_query = nn.Linear(H, H, bias=False)
            self.v = nn.Linear(H, 1, bias=False)

    def keys(self, memory):
        return memory if self.kind == "dot" else self.w_key(memory)

    def forward(self, query, keys, memory, mask):  # (B,T,H), (B,S,H), (B,S,H), (B,S) -> (B,T,H), (B,T,S)
        if self.kind == "additive":
            scores = self.v(torch.tanh(self.w_query(query).unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)
        else:
            scores = torch.bmm(query, keys.transpose(1, 2))
        scores = scores.float().masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, -1)
        return torch.bmm(weights.to(memory.dtype), memory), weights


class Stack(nn.Module):
    """tern's RnnStack: one fused LSTM/GRU, or with model.residual a module a layer, y_l = y_(l-1) +
    layer_l(dropout(y_(l-1))) from layer 1 on. x: (B, T, I) or packed."""

    def __init__(self, cell, inp, hidden, layers, dropout, bidirectional=False, residual=False):
        super().__init__()
        cls = nn.LSTM if cell == "lstm" else nn.GRU
        dirs, split = 2 if bidirectional else 1, residual and layers > 1
        self.lstm, self.dropout = cell == "lstm", dropout
        self.layers = nn.ModuleList(
            [cls(inp if l == 0 else hidden * dirs, hidden, num_layers=1 if split else layers,
                 dropout=dropout if layers > 1 and not split else 0.0, bidirectional=bidirectional, batch_first=True)
             for l in range(layers if split else 1)])

    def forward(self, x, state=None):
        if len(self.layers) == 1:
            return self.layers[0](x, state)
        packed = isinstance(x, nn.utils.rnn.PackedSequence)
        y, hs, cs = x, [], []
        for l, layer in enumerate(self.layers):
            n = layer.num_layers * (2 if layer.bidirectional else 1)
            part = None if state is None else (tuple(s[l * n:(l + 1) * n] for s in state) if self.lstm
                                               else state[l * n:(l + 1) * n])
            values = y.data if packed else y
            inp = y if l == 0 else (y._replace(data=F.dropout(values, self.dropout, self.training)) if packed
                                    else F.dropout(values, self.dropout, self.training))
            out, st = layer(inp, part)
            if l > 0:
                out = out._replace(data=out.data + values) if packed else out + values
            y = out
            hs.append(st[0] if self.lstm else st)
            if self.lstm:
                cs.append(st[1])
        return y, ((torch.cat(hs), torch.cat(cs)) if self.lstm else torch.cat(hs))


def drop_words(emb, p, training):
    """tern's model.dropout_src / dropout_tgt: each token's whole embedding zeroed with probability p in training."""
    if not training or p == 0:
        return emb
    return emb * F.dropout(torch.ones(*emb.shape[:-1], 1, device=emb.device, dtype=emb.dtype), p, True)



class Seq2Seq(nn.Module):
    def __init__(self, m, V_src, V_tgt):
        super().__init__()
        E, H = m["embedding"], m["hidden"]
        Le, L = m["enc_layers"] or m["layers"], m["dec_layers"] or m["layers"]  # 0: model.layers
        self.m, self.Le, self.L, self.H = m, Le, L, H
        self.src_emb = nn.Embedding(V_src, E, padding_idx=0)
        self.tgt_emb = nn.Embedding(V_tgt, E, padding_idx=0)
        self.encoder = Stack(m["cell"], E, H // 2 if m["bidirectional"] else H, Le, m["dropout"], m["bidirectional"],
                           m["residual"])
        if m["input_feeding"]:
            Cell = nn.LSTMCell if m["cell"] == "lstm" else nn.GRUCell
            self.cells = nn.ModuleList([Cell(E + H if l == 0 else H, H) for l in range(L)])
        else:
            self.decoder = Stack(m["cell"], E, H, L, m["dropout"], residual=m["residual"])
        self.attention = Attention(m["attention"], H)
        self.combine = nn.Linear(2 * H, H, bias=False)
        self.out = nn.Linear(H, V_tgt)
        if m["tie_embeddings"]:
            self.out.weight = self.tgt_emb.weight
        self.drop = nn.Dropout(m["dropout"])

    def forward(self, src, src_len, tgt_in):
        B, S = src.shape
        emb = drop_words(self.drop(self.src_emb(src)), self.m["dropout_src"], self.training)
        packed = nn.utils.rnn.pack_padded_sequence(emb, src_len.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.encoder(packed)
        memory, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=S)
        lstm = self.m["cell"] == "lstm"
        h, c = state if lstm else (state, None)

        def initial(t):  # the decoder's (L, B, H): the encoder's final states, top layer to top layer
            if t is None:
                return t
            if self.m["bidirectional"]:
                v = t.view(self.Le, 2, B, self.H // 2)
                t = torch.cat([v[:, 0], v[:, 1]], -1)
            if self.Le > self.L:
                return t[self.Le - self.L:]
            return torch.cat([t.new_zeros(self.L - self.Le, B, self.H), t]) if self.Le < self.L else t

        h, c = initial(h), initial(c)
        mask = torch.arange(S, device=src.device).unsqueeze(0) < src_len.unsqueeze(1)
        keys = self.attention.keys(memory)
        temb = drop_words(self.drop(self.tgt_emb(tgt_in)), self.m["dropout_tgt"], self.training)
        if self.m["input_feeding"]:
            feed = torch.zeros(B, self.H, device=src.device, dtype=memory.dtype)
            hs, cs = list(h.unbind(0)), list(c.unbind(0)) if lstm else None
            steps = []
            for t in range(tgt_in.size(1)):
                x = torch.cat([temb[:, t], feed.to(temb.dtype)], -1)
                for l, cell in enumerate(self.cells):
                    inp = self.drop(x) if l > 0 else x
                    if lstm:
                        hs[l], cs[l] = cell(inp, (hs[l], cs[l]))
                    else:
                        hs[l] = cell(inp, hs[l])
                    x = hs[l] + x if self.m["residual"] and l > 0 else hs[l]
                context, _ = self.attention(x.unsqueeze(1), keys, memory, mask)
                feed = torch.tanh(self.combine(torch.cat([context, x.unsqueeze(1).to(context.dtype)], -1))).squeeze(1)
                steps.append(feed)
            htilde = torch.stack(steps, 1)
        else:
            out, _ = self.decoder(temb, (h, c) if lstm else h)
            context, _ = self.attention(out, keys, memory, mask)
            htilde = torch.tanh(self.combine(torch.cat([context, out.to(context.dtype)], -1)))
        return self.out(self.drop(htilde))


class LanguageModel(nn.Module):
    def __init__(self, m, V):
        super().__init__()
        self.emb = nn.Embedding(V, m["embedding"], padding_idx=0)
        self.rnn = Stack(m["cell"], m["embedding"], m["hidden"], m["layers"], m["dropout"], residual=m["residual"])
        self.p_words = m["dropout_tgt"]
        self.out = nn.Linear(m["hidden"], V)
        if m["tie_embeddings"]:
            self.out.weight = self.emb.weight
        self.drop = nn.Dropout(m["dropout"])

    def forward(self, src, src_len, tgt_in):
        out, _ = self.rnn(drop_words(self.drop(self.emb(tgt_in)), self.p_words, self.training))
        return self.out(self.drop(out))


DEFAULTS = {"type": "seq2seq", "cell": "lstm", "layers": 1, "embedding": 256, "hidden": 512, "bidirectional": True,
            "attention": "general", "input_feeding": True, "dropout": 0.1, "tie_embeddings": False, "residual": False,
            "dropout_src": 0.0, "dropout_tgt": 0.0, "enc_layers": 0, "dec_layers": 0}
# What this file mirrors: another value would train a different model than tern's, so it is refused.
MIRRORED = {"type": ("seq2seq", "lm"), "attention": ("dot", "general", "additive"), "share_embeddings": (False,),
            "layer_norm": (False,), "dropout_rnn": (0,), "enc_cell_depth": (1,)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--precisions", nargs="+", default=["fp32"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--src-len", type=int, default=50)
    ap.add_argument("--tgt-len", type=int, default=50)
    ap.add_argument("--src-vocab", type=int, default=16000)
    ap.add_argument("--tgt-vocab", type=int, default=16000)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    cfg = yaml.safe_load(open(a.config))
    m = {**DEFAULTS, **(cfg.get("model") or {})}
    for key, values in MIRRORED.items():
        if m.get(key, values[0]) not in values:
            raise SystemExit(f"bench/eager_reference.py: {a.config}: model.{key} {m[key]!r} is not mirrored here "
                             f"(it mirrors {', '.join(map(str, values))}): the comparison would be with another model")
    lr = (cfg.get("optim") or {}).get("lr", 1e-3)
    dev = torch.device("cuda" if torch.cuda.is_available() and (cfg.get("train") or {}).get("device", "auto") != "cpu"
                       else "cpu")
    if a.threads:
        torch.set_num_threads(a.threads)
    lm = m["type"] == "lm"
    rows = []
    for p in a.precisions:
        torch.manual_seed(1)
        model = (LanguageModel(m, a.tgt_vocab) if lm else Seq2Seq(m, a.src_vocab, a.tgt_vocab)).to(dev).train()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[p]
        scaler = torch.amp.GradScaler(dev.type, enabled=p == "fp16")

        def step():
            opt.zero_grad(set_to_none=False)
            src = None if lm else torch.randint(4, a.src_vocab, (a.batch, a.src_len))
            src_len = None if lm else torch.full((a.batch,), a.src_len)
            tgt = torch.randint(4, a.tgt_vocab, (a.batch, a.tgt_len + 1))
            if dev.type == "cuda":
                tgt = tgt.pin_memory().to(dev, non_blocking=True)
                if not lm:
                    src, src_len = src.pin_memory().to(dev, non_blocking=True), src_len.to(dev)
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                logits = model(src, src_len, tgt[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), tgt[:, 1:].reshape(-1),
                                   reduction="sum") / (a.batch * a.tgt_len)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()

        for _ in range(a.warmup):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        el = time.perf_counter() - t0
        tokens = a.batch * ((0 if lm else a.src_len) + a.tgt_len) * a.steps
        row = {"precision": p, "model": m["type"], "device": str(dev), "tokens_per_s": tokens / el,
               "step_ms": 1e3 * el / a.steps, "threads": torch.get_num_threads(), "torch": torch.__version__}
        if dev.type == "cuda":
            row["gpu"] = torch.cuda.get_device_name()
            row["peak_gpu_memory_mib"] = torch.cuda.max_memory_allocated() / 2**20
        rows.append(row)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
