"""PyTorch reference for notebooks/14_rnn_from_scratch.ipynb: the book's chapter 12 on HUMAN_NUMBERS.

Same data (fastai's HUMAN_NUMBERS: train.txt = 1..7,999, valid.txt = 8,001..9,999 in English words,
lines joined by " . ", split on spaces, vocabulary in order of first appearance), same models
(LMModel1..LMModel7), same batches (no shuffle; the book's group_chunks; the training set cut to
whole batches, as drop_last), same one-cycle schedule and optimizer as fastai's fit_one_cycle
(AdamW, betas (0.95→0.85→0.95, 0.99), eps 1e-5, lr from lrMax/25 up to lrMax over the first 25 %
then down to lrMax/1e5, cosine; weight decay 0.01 unless the recipe says, none on biases as
tsfast's default parameter groups), same epochs and learning rates as the notebook's RECIPES.
PyTorch's own initialisations; the notebook's modules draw the same distributions.

usage: /usr/bin/python3 bench/human_numbers_torch.py [--seeds 0 1 2] [--models 1 2 3 4 5 6 7] [--threads 1]
Prints one JSON line per model and seed: {"model": "LMModel1", "seed": 0, "accuracy": ..., "seconds": ...}.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# (epochs, lrMax, wd) per model, as the notebook's RECIPES.
RECIPES = {
    1: (4, 1e-3, 0.01),
    2: (4, 1e-3, 0.01),
    3: (10, 3e-3, 0.01),
    4: (15, 3e-3, 0.01),
    5: (15, 3e-3, 0.01),
    6: (15, 1e-2, 0.01),
    7: (15, 1e-2, 0.1),
}
BS = 64
N_HIDDEN = 64


def words(n):
    ones = "one two three four five six seven eight nine".split()
    teens = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
    tens = "twenty thirty forty fifty sixty seventy eighty ninety".split()
    out = []
    if n >= 1000:
        out += [ones[n // 1000 - 1], "thousand"]
        n %= 1000
    if n >= 100:
        out += [ones[n // 100 - 1], "hundred"]
        n %= 100
    if n >= 20:
        out.append(tens[n // 10 - 2])
        n %= 10
    if n >= 10:
        out.append(teens[n - 10])
        n = 0
    if n > 0:
        out.append(ones[n - 1])
    return " ".join(out)


def human_numbers():
    lines = [words(i) for i in range(1, 8000)] + [words(i) for i in range(8001, 10000)]
    tokens = " . ".join(lines).split(" ")
    vocab = list(dict.fromkeys(tokens))
    idx = {w: i for i, w in enumerate(vocab)}
    return vocab, [idx[t] for t in tokens]


def group_chunks(ds, bs):
    m = len(ds) // bs
    return [ds[i + m * j] for i in range(m) for j in range(bs)]


def batches(ds, bs, drop_last):
    n = (len(ds) // bs) * bs if drop_last else len(ds)
    for i in range(0, n, bs):
        chunk = ds[i:i + bs]
        yield torch.stack([c[0] for c in chunk]), torch.stack([c[1] for c in chunk]) if torch.is_tensor(chunk[0][1]) else torch.tensor([c[1] for c in chunk])


def datasets(nums, model):
    if model <= 3:
        seqs = [(torch.tensor(nums[i:i + 3]), nums[i + 3]) for i in range(0, len(nums) - 4, 3)]
    else:
        sl = 16
        seqs = [(torch.tensor(nums[i:i + sl]), torch.tensor(nums[i + 1:i + sl + 1])) for i in range(0, len(nums) - sl - 1, sl)]
    cut = int(len(seqs) * 0.8)
    train, valid = seqs[:cut], seqs[cut:]
    if model >= 3:
        train, valid = group_chunks(train, BS), group_chunks(valid, BS)
        return train, valid, True
    return train, valid, False


class LMModel1(nn.Module):
    def __init__(self, v, h):
        super().__init__()
        self.i_h, self.h_h, self.h_o = nn.Embedding(v, h), nn.Linear(h, h), nn.Linear(h, v)

    def forward(self, x):
        h = F.relu(self.h_h(self.i_h(x[:, 0])))
        h = h + self.i_h(x[:, 1])
        h = F.relu(self.h_h(h))
        h = h + self.i_h(x[:, 2])
        h = F.relu(self.h_h(h))
        return self.h_o(h)


class LMModel2(LMModel1):
    def forward(self, x):
        h = 0
        for i in range(3):
            h = h + self.i_h(x[:, i])
            h = F.relu(self.h_h(h))
        return self.h_o(h)


class LMModel3(LMModel1):
    def __init__(self, v, h):
        super().__init__(v, h)
        self.h = 0

    def forward(self, x):
        for i in range(3):
            self.h = self.h + self.i_h(x[:, i])
            self.h = F.relu(self.h_h(self.h))
        out = self.h_o(self.h)
        self.h = self.h.detach()
        return out

    def reset(self):
        self.h = 0


class LMModel4(LMModel3):
    def forward(self, x):
        outs = []
        for i in range(x.shape[1]):
            self.h = self.h + self.i_h(x[:, i])
            self.h = F.relu(self.h_h(self.h))
            outs.append(self.h_o(self.h))
        self.h = self.h.detach()
        return torch.stack(outs, dim=1)


class LMModel5(nn.Module):
    def __init__(self, v, h, n_layers):
        super().__init__()
        self.i_h = nn.Embedding(v, h)
        self.rnn = nn.RNN(h, h, n_layers, batch_first=True)
        self.h_o = nn.Linear(h, v)
        self.h = torch.zeros(n_layers, BS, h)

    def forward(self, x):
        res, h = self.rnn(self.i_h(x), self.h)
        self.h = h.detach()
        return self.h_o(res)

    def reset(self):
        self.h.zero_()


class LMModel6(nn.Module):
    def __init__(self, v, h, n_layers):
        super().__init__()
        self.i_h = nn.Embedding(v, h)
        self.rnn = nn.LSTM(h, h, n_layers, batch_first=True)
        self.h_o = nn.Linear(h, v)
        self.h = [torch.zeros(n_layers, BS, h) for _ in range(2)]

    def forward(self, x):
        res, h = self.rnn(self.i_h(x), self.h)
        self.h = [h_.detach() for h_ in h]
        return self.h_o(res)

    def reset(self):
        for h in self.h:
            h.zero_()


class LMModel7(nn.Module):
    def __init__(self, v, h, n_layers, p):
        super().__init__()
        self.i_h = nn.Embedding(v, h)
        self.rnn = nn.LSTM(h, h, n_layers, batch_first=True)
        self.drop = nn.Dropout(p)
        self.h_o = nn.Linear(h, v)
        self.h_o.weight = self.i_h.weight
        self.h = [torch.zeros(n_layers, BS, h) for _ in range(2)]
        self.raw = self.out = None

    def forward(self, x):
        raw, h = self.rnn(self.i_h(x), self.h)
        out = self.drop(raw)
        self.h = [h_.detach() for h_ in h]
        self.raw, self.out = raw, out
        return self.h_o(out)

    def reset(self):
        for h in self.h:
            h.zero_()


def build(model, v):
    if model == 1:
        return LMModel1(v, N_HIDDEN)
    if model == 2:
        return LMModel2(v, N_HIDDEN)
    if model == 3:
        return LMModel3(v, N_HIDDEN)
    if model == 4:
        return LMModel4(v, N_HIDDEN)
    if model == 5:
        return LMModel5(v, N_HIDDEN, 2)
    if model == 6:
        return LMModel6(v, N_HIDDEN, 2)
    return LMModel7(v, N_HIDDEN, 2, 0.5)


def combined_cos(pct, a, b, c, t):
    """fastai's combined_cos: cosine a→b over the first pct, then b→c."""
    def cos(s, e, p):
        return s + (1 + math.cos(math.pi * (1 - p))) * (e - s) / 2
    return cos(a, b, t / pct) if t < pct else cos(b, c, (t - pct) / (1 - pct))


def train(model_no, vocab, nums, seed):
    torch.manual_seed(seed)
    epochs, lr_max, wd = RECIPES[model_no]
    tr, va, drop = datasets(nums, model_no)
    m = build(model_no, len(vocab))
    decay = [p for n, p in m.named_parameters() if "bias" not in n]
    no_decay = [p for n, p in m.named_parameters() if "bias" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr_max, betas=(0.95, 0.99), eps=1e-5)
    n_train = len(tr) // BS  # training batches per epoch (drop_last)
    total = epochs * n_train
    step = 0

    def loss_of(out, y, training):
        loss = F.cross_entropy(out.reshape(-1, len(vocab)), y.reshape(-1))
        if training and model_no == 7:
            loss = loss + 2 * m.out.float().pow(2).mean()
            loss = loss + 1 * (m.raw[:, 1:] - m.raw[:, :-1]).float().pow(2).mean()
        return loss

    t0 = time.time()
    for _ in range(epochs):
        m.train()
        if hasattr(m, "reset"):
            m.reset()
        for x, y in batches(tr, BS, True):
            pct = step / total
            for g in opt.param_groups:
                g["lr"] = combined_cos(0.25, lr_max / 25, lr_max, lr_max / 1e5, pct)
                g["betas"] = (combined_cos(0.25, 0.95, 0.85, 0.95, pct), 0.99)
            loss = loss_of(m(x), y, True)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        m.eval()
        if hasattr(m, "reset"):
            m.reset()
        correct = count = 0
        with torch.no_grad():
            for x, y in batches(va, BS, drop):
                pred = m(x).argmax(-1)
                correct += (pred == y).sum().item()
                count += y.numel()
        acc = correct / count
    return acc, time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    vocab, nums = human_numbers()
    assert len(nums) == 63095 and len(vocab) == 30, (len(nums), len(vocab))
    for model_no in args.models:
        for seed in args.seeds:
            acc, secs = train(model_no, vocab, nums, seed)
            print(json.dumps({"model": f"LMModel{model_no}", "seed": seed, "accuracy": round(acc, 4), "seconds": round(secs, 1)}), flush=True)


if __name__ == "__main__":
    main()
