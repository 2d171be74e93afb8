"""PyTorch reference for lesson 9 (notebooks/09_collab.ipynb): collaborative filtering on MovieLens, fastai's recipe.

    /usr/bin/python3 bench/collab_torch.py                          # EmbeddingDotBias and EmbeddingNN, 3 seeds
    /usr/bin/python3 bench/collab_torch.py --models dot --seeds 0 --epochs 1

The same data, models and recipe as the lesson, in PyTorch (Debian's python3-torch), written from
fastai's collab.py / tabular/model.py / layers.py (fastai itself is not installable here):
- data: `movieLens()`'s ratings.csv (default $TSFAST_HOME/data/movielens/ratings.csv; build it with
  `npm run datasets -- --only movielens`), users `userId`, items `title`, ratings `rating`;
  the split is tsfast's `RandomSplitter(0.2, 42)` reproduced exactly (its mulberry32 generator is
  ported below), vocabularies from the training rows with `#na#` at 0 (fastai's Categorify);
- models: fastai's `EmbeddingDotBias(n_factors=50, y_range=(0, 5.5))` and
  `EmbeddingNN(emb_szs by emb_sz_rule, layers=[100, 50], y_range=(0, 5.5))` (the course's `use_nn=True`
  call; TabularModel with `lin_first=True`, fastai's BatchNorm init), embeddings trunc_normal std 0.01;
- training: fastai's `fit_one_cycle(5, 5e-3, wd=0.1)`: cosine one-cycle lr (div 25, div_final 1e5,
  pct_start 0.25) and momentum 0.95→0.85→0.95, fastai's Adam with decoupled weight decay (`true_wd`:
  `torch.optim.AdamW`, betas (mom, 0.99), eps 1e-5) on every parameter but BatchNorm's and Linear
  biases (fastai's `wd_bn_bias=False`); MSE loss; batch 64, shuffled each epoch;
- reported: validation MSE (fastai's valid loss) after each epoch, and seconds per training epoch.

Prints one JSON object per run, then a summary (min / mean / max over seeds) as the last line.
"""
import argparse
import csv
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_equivalence_torch import combined_cos  # noqa: E402  fastai's one-cycle schedule


# ---------------------------------------------------------------- tsfast's Rng (mulberry32), for the same split
def _imul(a, b):
    return ((a & 0xFFFFFFFF) * (b & 0xFFFFFFFF)) & 0xFFFFFFFF


def _hash_seed(seed):
    h = int(math.floor(seed)) & 0xFFFFFFFF
    frac = int(math.floor((seed - math.floor(seed)) * 4294967296)) & 0xFFFFFFFF
    h = _imul(h ^ 0x9E3779B9, 0x85EBCA6B) ^ frac
    h ^= h >> 13
    h = _imul(h, 0xC2B2AE35)
    h ^= h >> 16
    return h & 0xFFFFFFFF


class Rng:
    def __init__(self, seed=42):
        self.state = _hash_seed(seed)

    def next(self):
        self.state = (self.state + 0x6D2B79F5) & 0xFFFFFFFF
        t = self.state
        t = _imul(t ^ (t >> 15), t | 1)
        t ^= (t + _imul(t ^ (t >> 7), t | 61)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    def permutation(self, n):
        out = list(range(n))
        for i in range(n - 1, 0, -1):
            j = int(self.next() * (i + 1))
            out[i], out[j] = out[j], out[i]
        return out


def random_split(n, valid_pct=0.2, seed=42):
    idx = Rng(seed).permutation(n)
    cut = int(math.floor(valid_pct * n))
    return idx[cut:], idx[:cut]


# ---------------------------------------------------------------- fastai's models
def trunc_normal_(x, std=0.01):
    "fastai's trunc_normal_: a normal folded into ±2 std."
    return x.normal_().fmod_(2).mul_(std)


class Embedding(nn.Embedding):
    "fastai's Embedding: nn.Embedding with trunc_normal std 0.01."

    def __init__(self, ni, nf, std=0.01):
        super().__init__(ni, nf)
        trunc_normal_(self.weight.data, std=std)


def sigmoid_range(x, low, high):
    return torch.sigmoid(x) * (high - low) + low


class EmbeddingDotBias(nn.Module):
    def __init__(self, n_factors, n_users, n_items, y_range=None):
        super().__init__()
        self.y_range = y_range
        self.u_weight, self.i_weight, self.u_bias, self.i_bias = [
            Embedding(*o) for o in [(n_users, n_factors), (n_items, n_factors), (n_users, 1), (n_items, 1)]
        ]

    def forward(self, x):
        users, items = x[:, 0], x[:, 1]
        dot = self.u_weight(users) * self.i_weight(items)
        res = dot.sum(1) + self.u_bias(users).squeeze() + self.i_bias(items).squeeze()
        return res if self.y_range is None else sigmoid_range(res, *self.y_range)


def emb_sz_rule(n_cat):
    return min(600, round(1.6 * n_cat ** 0.56))


def batch_norm(nf):
    "fastai's BatchNorm: weight 1, bias 1e-3."
    bn = nn.BatchNorm1d(nf)
    bn.bias.data.fill_(1e-3)
    bn.weight.data.fill_(1.0)
    return bn


class EmbeddingNN(nn.Module):
    "fastai's TabularModel(emb_szs, n_cont=0, out_sz=1, layers, y_range) with lin_first=True: what EmbeddingNN is."

    def __init__(self, emb_szs, layers, y_range=None):
        super().__init__()
        self.embeds = nn.ModuleList([Embedding(ni, nf) for ni, nf in emb_szs])
        self.y_range = y_range
        sizes = [sum(nf for _, nf in emb_szs)] + list(layers) + [1]
        mods = []
        for i in range(len(sizes) - 1):
            last = i == len(sizes) - 2
            if last:
                mods.append(nn.Sequential(nn.Linear(sizes[i], sizes[i + 1])))
            else:
                mods.append(nn.Sequential(nn.Linear(sizes[i], sizes[i + 1], bias=False), nn.ReLU(inplace=True), batch_norm(sizes[i + 1])))
        self.layers = nn.Sequential(*mods)

    def forward(self, x):
        h = torch.cat([e(x[:, i]) for i, e in enumerate(self.embeds)], 1)
        out = self.layers(h)
        return out if self.y_range is None else sigmoid_range(out, *self.y_range)


# ---------------------------------------------------------------- data and training
def read_ratings(path, user, item, rating):
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    return [r[user] for r in rows], [r[item] for r in rows], [float(r[rating]) for r in rows]


NA_VALUES = {"", "NA", "N/A", "NaN", "nan", "null", "NULL", "?", "#N/A"}  # tsfast readCsv's missing markers


def vocab(values):
    "fastai's CategoryMap: #na# at 0, then the sorted categories; missing values are not categories."
    cats = set(v for v in values if v.strip() not in NA_VALUES)
    try:
        ordered = sorted(cats, key=float)
        return ["#na#"] + ordered
    except ValueError:
        return ["#na#"] + sorted(cats)


def collab_data(path, user="userId", item="title", rating="rating", valid_pct=0.2, seed=42):
    us, its, rs = read_ratings(path, user, item, rating)
    trn, val = random_split(len(us), valid_pct, seed)
    uv, iv = vocab([us[i] for i in trn]), vocab([its[i] for i in trn])
    ui, ii = {v: k for k, v in enumerate(uv)}, {v: k for k, v in enumerate(iv)}

    def pack(idx):
        x = torch.tensor([[ui.get(us[i], 0), ii.get(its[i], 0)] for i in idx], dtype=torch.long)
        return x, torch.tensor([rs[i] for i in idx], dtype=torch.float32)

    return pack(trn), pack(val), uv, iv


def wd_groups(model, wd):
    "fastai's wd_bn_bias=False: no decay on BatchNorm parameters and Linear biases."
    no = set()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            no.update(id(p) for p in m.parameters())
        elif isinstance(m, nn.Linear) and m.bias is not None:
            no.add(id(m.bias))
    decay = [p for p in model.parameters() if id(p) not in no]
    rest = [p for p in model.parameters() if id(p) in no]
    return [{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}]


def valid_mse(model, xv, yv, bs=64):
    model.eval()
    tot = 0.0
    with torch.no_grad():
        for i in range(0, len(xv), bs):
            tot += F.mse_loss(model(xv[i:i + bs]).view(-1), yv[i:i + bs], reduction="sum").item()
    return tot / len(xv)


def fit_one_cycle(model, xt, yt, xv, yv, epochs, lr_max, wd, bs=64, seed=0, max_batches=None, warmup=0):
    opt = torch.optim.AdamW(wd_groups(model, wd), lr=lr_max / 25, betas=(0.95, 0.99), eps=1e-5)
    g = torch.Generator().manual_seed(seed)
    n_batches = math.ceil(len(xt) / bs) if max_batches is None else max_batches
    total, step = epochs * n_batches, 0
    losses, times = [], []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(xt), generator=g)
        t0 = time.perf_counter()
        for b in range(n_batches):
            if b == warmup and warmup:
                t0 = time.perf_counter()  # timing runs: the first `warmup` batches are not timed
            idx = order[b * bs:(b + 1) * bs]
            pos = step / total
            for grp in opt.param_groups:
                grp["lr"] = combined_cos(0.25, lr_max / 25, lr_max, lr_max / 1e5, pos)
                grp["betas"] = (combined_cos(0.25, 0.95, 0.85, 0.95, pos), 0.99)
            loss = F.mse_loss(model(xt[idx]).view(-1), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        times.append(time.perf_counter() - t0)
        losses.append(valid_mse(model, xv, yv))
    return losses, times


def make_model(kind, n_users, n_items, n_factors=50, layers=(100, 50), y_range=(0, 5.5)):
    if kind == "dot":
        return EmbeddingDotBias(n_factors, n_users, n_items, y_range=y_range)
    return EmbeddingNN([(n_users, emb_sz_rule(n_users)), (n_items, emb_sz_rule(n_items))], layers, y_range=y_range)


def main():
    home = os.environ.get("TSFAST_HOME") or os.path.expanduser("~/.tsfast")
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", default=os.path.join(home, "data", "movielens", "ratings.csv"))
    ap.add_argument("--item", default="title")
    ap.add_argument("--models", default="dot,nn")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-batches", type=int, default=None, help="batches per epoch (timing runs)")
    ap.add_argument("--warmup", type=int, default=0, help="batches of each epoch left out of epoch_s (timing runs)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    (xt, yt), (xv, yv), uv, iv = collab_data(args.csv, item=args.item)
    summary = {}
    for kind in args.models.split(","):
        runs = []
        for seed in [int(s) for s in args.seeds.split(",")]:
            torch.manual_seed(seed)
            model = make_model(kind, len(uv), len(iv))
            losses, times = fit_one_cycle(model, xt, yt, xv, yv, args.epochs, args.lr, args.wd, args.bs, seed, args.max_batches, args.warmup)
            run = {"model": kind, "seed": seed, "valid_mse": losses, "epoch_s": times}
            print(json.dumps(run), flush=True)
            runs.append(losses[-1])
        summary[kind] = {"min": min(runs), "mean": sum(runs) / len(runs), "max": max(runs)}
    print(json.dumps({"recipe": f"fit_one_cycle({args.epochs}, {args.lr}, wd={args.wd}), bs {args.bs}, items {args.item}",
                      "n_users": len(uv), "n_items": len(iv), "n_train": len(xt), "n_valid": len(xv), "final_valid_mse": summary}))


if __name__ == "__main__":
    main()
