"""PyTorch port of fastai's TabularModel (fastai/tabular/model.py, layers.py), the reference for tsfast's.

The classes below are fastai's code with the fastai imports removed: `Embedding` (truncated normal,
std 0.01), `BatchNorm` (weight 1, bias 1e-3), `LinBnDrop` (lin_first as TabularModel uses it),
`TabularModel` (`SigmoidRange` is keypoints_torch.py's).

usage:
  tabular_torch.py fixture OUT_DIR SPEC_JSON
      SPEC_JSON = {"tag", "emb_szs": [[n, w], ...], "n_cont", "out_sz", "layers", "y_range"?, "bs"}
      writes OUT_DIR/TAG.safetensors (the weights, tsfast names: embeds.i.embeddings,
      layers.i.lin.weight, layers.i.bn.weight, ...), OUT_DIR/TAG.io.safetensors (x: the packed
      [bs, n_cat + n_cont] input, y: the eval-mode output) and prints {"params": count}.
  tabular_torch.py train CSV CONFIG_JSON   (the lesson's recipe: see `train`)
  tabular_torch.py bench CONFIG_JSON       (epoch time on a synthetic table: see `bench`)
"""
import json
import math
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from pretrain_models import save_safetensors  # noqa: E402
sys.path.insert(0, os.path.dirname(__file__))
from keypoints_torch import SigmoidRange  # noqa: E402


def trunc_normal_(x, mean=0.0, std=1.0):
    return x.normal_().fmod_(2).mul_(std).add_(mean)


class Embedding(nn.Embedding):
    def __init__(self, ni, nf, std=0.01):
        super().__init__(ni, nf)
        trunc_normal_(self.weight.data, std=std)


def BatchNorm(nf):
    bn = nn.BatchNorm1d(nf)
    with torch.no_grad():
        bn.bias.fill_(1e-3)
        bn.weight.fill_(1.0)
    return bn


class LinBnDrop(nn.Sequential):
    def __init__(self, n_in, n_out, bn=True, p=0.0, act=None, lin_first=False):
        layers = [BatchNorm(n_out if lin_first else n_in)] if bn else []
        if p != 0:
            layers.append(nn.Dropout(p))
        lin = [nn.Linear(n_in, n_out, bias=not bn)]
        if act is not None:
            lin.append(act)
        layers = lin + layers if lin_first else layers + lin
        super().__init__(*layers)


class TabularModel(nn.Module):
    def __init__(self, emb_szs, n_cont, out_sz, layers, ps=None, embed_p=0.0, y_range=None, use_bn=True, bn_final=False, bn_cont=True):
        super().__init__()
        ps = ps if ps is not None else [0] * len(layers)
        if not isinstance(ps, (list, tuple)):
            ps = [ps] * len(layers)
        self.embeds = nn.ModuleList([Embedding(ni, nf) for ni, nf in emb_szs])
        self.emb_drop = nn.Dropout(embed_p)
        self.bn_cont = nn.BatchNorm1d(n_cont) if bn_cont and n_cont else None
        n_emb = sum(e.embedding_dim for e in self.embeds)
        self.n_emb, self.n_cont = n_emb, n_cont
        sizes = [n_emb + n_cont] + list(layers) + [out_sz]
        actns = [nn.ReLU(inplace=True) for _ in range(len(sizes) - 2)] + [None]
        _layers = [LinBnDrop(sizes[i], sizes[i + 1], bn=use_bn and (i != len(actns) - 1 or bn_final), p=p, act=a, lin_first=True)
                   for i, (p, a) in enumerate(zip(list(ps) + [0.0], actns))]
        if y_range is not None:
            _layers.append(SigmoidRange(*y_range))
        self.layers = nn.Sequential(*_layers)

    def forward(self, x_cat, x_cont=None):
        if self.n_emb != 0:
            x = [e(x_cat[:, i]) for i, e in enumerate(self.embeds)]
            x = torch.cat(x, 1)
            x = self.emb_drop(x)
        if self.n_cont != 0:
            if self.bn_cont is not None:
                x_cont = self.bn_cont(x_cont)
            x = torch.cat([x, x_cont], 1) if self.n_emb != 0 else x_cont
        return self.layers(x)


def split_packed(model, x):
    """tsfast packs [cats as floats, conts] in one matrix; fastai's forward takes them apart."""
    n_cat = len(model.embeds)
    return x[:, :n_cat].long(), x[:, n_cat:]


def tsfast_state_dict(model):
    """The state dict under tsfast's layer names (embeds.i.embeddings, layers.i.lin / layers.i.bn)."""
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        parts = k.split(".")
        if parts[0] == "embeds":
            k = f"embeds.{parts[1]}.embeddings"
        elif parts[0] == "layers":
            sub = model.layers[int(parts[1])][int(parts[2])]
            part = "lin" if isinstance(sub, nn.Linear) else "bn"
            k = ".".join(["layers", parts[1], part] + parts[3:])
        out[k] = v
    return out


def fixture(out, spec):
    torch.manual_seed(0)
    emb_szs = [tuple(e) for e in spec["emb_szs"]]
    y_range = tuple(spec["y_range"]) if spec.get("y_range") else None
    model = TabularModel(emb_szs, spec["n_cont"], spec["out_sz"], spec["layers"], y_range=y_range)
    bs = spec.get("bs", 8)

    def batch(n):
        cats = torch.stack([torch.randint(0, ni, (n,)) for ni, _ in emb_szs], 1).float() if emb_szs else torch.zeros(n, 0)
        return torch.cat([cats, torch.randn(n, spec["n_cont"]) * 2 + 0.5], 1)

    with torch.no_grad():
        # non-trivial BatchNorm state: running statistics from a few training batches, random affine weights
        model.train()
        for _ in range(3):
            model(*split_packed(model, batch(16)))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        model.eval()
        x = batch(bs)
        y = model(*split_packed(model, x))
    tag = spec["tag"]
    save_safetensors(os.path.join(out, f"{tag}.safetensors"), tsfast_state_dict(model))
    save_safetensors(os.path.join(out, f"{tag}.io.safetensors"), {"x": x, "y": y})
    print(json.dumps({"params": sum(p.numel() for p in model.parameters())}))


NA = {"", "NA", "N/A", "NaN", "nan", "null", "NULL", "?", "#N/A"}


def read_csv(path):
    """Columns of a CSV as lists of strings, missing markers as None (as tsfast's readCsv)."""
    import csv
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    head, body = rows[0], [r for r in rows[1:] if r]
    return {h: [None if r[j].strip() in NA else r[j] for r in body] for j, h in enumerate(head)}


def median(xs):
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def procs(cols, cat_names, cont_names, train):
    """fastai's FillMissing (median, _na columns), Categorify (train vocab, #na# = 0), Normalize (train mean, std ddof 0 + 1e-7)."""
    n = len(next(iter(cols.values())))
    cat_names, conts = list(cat_names), {}
    for c in cont_names:
        v = [None if x is None else float(x) for x in cols[c]]
        tv = [v[i] for i in train if v[i] is not None]
        med = median(tv)
        if any(v[i] is None for i in train):
            cols[c + "_na"] = ["True" if x is None else "False" for x in v]
            cat_names.append(c + "_na")
        conts[c] = [med if x is None else x for x in v]
    cats, sizes = [], []
    for c in cat_names:
        vocab = {k: i + 1 for i, k in enumerate(sorted({cols[c][i] for i in train if cols[c][i] is not None}))}
        cats.append([vocab.get(x, 0) for x in cols[c]])
        sizes.append(len(vocab) + 1)  # #na# counted, as tsfast's ColumnVocab
    for c in cont_names:
        tv = [conts[c][i] for i in train]
        mean = sum(tv) / len(tv)
        std = math.sqrt(sum((x - mean) ** 2 for x in tv) / len(tv)) + 1e-7
        conts[c] = [(x - mean) / std for x in conts[c]]
    x_cat = torch.tensor(cats, dtype=torch.long).T.reshape(n, len(cats))
    x_cont = torch.tensor([conts[c] for c in cont_names], dtype=torch.float32).T.reshape(n, len(cont_names))
    return x_cat, x_cont, sizes, cat_names


def emb_sz_rule(n_cat):
    return min(600, round(1.6 * n_cat ** 0.56))


def one_cycle(pct, lr_max, div=25.0, div_final=1e5, pct_start=0.25):
    """fastai's fit_one_cycle schedule: cosine warm-up to lr_max, cosine anneal to lr_max/div_final; momentum 0.95→0.85→0.95."""
    def cos(a, b, p):
        return a + (b - a) * (1 - math.cos(math.pi * p)) / 2
    if pct < pct_start:
        p = pct / pct_start
        return cos(lr_max / div, lr_max, p), cos(0.95, 0.85, p)
    p = (pct - pct_start) / (1 - pct_start)
    return cos(lr_max, lr_max / div_final, p), cos(0.85, 0.95, p)


def fit(cfg, x_cat, x_cont, y, cards, train, valid, n_out, seed, epochs=None):
    """tabular_learner + fit_one_cycle: AdamW (fastai's Adam: betas 0.9/0.99, eps 1e-5, wd 0.01 off BatchNorm and biases),
    cross-entropy, shuffled batches with the last partial one dropped. Returns (model, validation accuracy, seconds of each epoch)."""
    torch.manual_seed(seed)
    emb_szs = [(n, emb_sz_rule(n)) for n in cards]
    model = TabularModel(emb_szs, x_cont.shape[1], n_out, cfg.get("layers", [200, 100]))
    decay, no_decay = [], []
    for name, prm in model.named_parameters():
        (no_decay if prm.ndim == 1 else decay).append(prm)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.get("wd", 0.01)}, {"params": no_decay, "weight_decay": 0.0}],
                            betas=(0.9, 0.99), eps=1e-5)
    bs, epochs = cfg.get("bs", 64), epochs or cfg["epochs"]
    train_t = torch.tensor(train)
    n_batches = len(train) // bs if len(train) > bs else 1
    total, step, times = epochs * n_batches, 0, []
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        t0 = time.perf_counter()
        perm = train_t[torch.randperm(len(train))]
        for b in range(n_batches):
            idx = perm[b * bs:(b + 1) * bs]
            lr, mom = one_cycle(step / total, cfg["lr"])
            for g in opt.param_groups:
                g["lr"], g["betas"] = lr, (mom, 0.99)
            opt.zero_grad()
            loss = loss_fn(model(x_cat[idx], x_cont[idx]), y[idx])
            loss.backward()
            opt.step()
            step += 1
        times.append(time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        v = torch.tensor(valid)
        acc = (model(x_cat[v], x_cont[v]).argmax(1) == y[v]).float().mean().item()
    return model, acc, times


def train(csv_path, cfg):
    """The lesson's recipe on a CSV: cfg = {cat_names, cont_names, y_name, valid_idx, layers, epochs, lr, bs, seeds}.
    Rows with a missing target are dropped first (as the lesson does). Prints the accuracy of each seed and their mean."""
    torch.set_num_threads(cfg.get("threads", 2))
    cols = read_csv(csv_path)
    keep = [i for i, v in enumerate(cols[cfg["y_name"]]) if v is not None]
    cols = {k: [v[i] for i in keep] for k, v in cols.items()}
    n = len(keep)
    valid = sorted(cfg["valid_idx"])
    vs = set(valid)
    train_idx = [i for i in range(n) if i not in vs]
    x_cat, x_cont, cards, _ = procs(cols, cfg["cat_names"], cfg["cont_names"], train_idx)
    classes = sorted({cols[cfg["y_name"]][i] for i in train_idx})
    y = torch.tensor([classes.index(v) for v in cols[cfg["y_name"]]])
    accs = [fit(cfg, x_cat, x_cont, y, cards, train_idx, valid, len(classes), s)[1] for s in cfg.get("seeds", [0, 1, 2, 3, 4])]
    print(json.dumps({"accuracies": accs, "mean": sum(accs) / len(accs), "min": min(accs), "max": max(accs), "n_train": len(train_idx), "n_valid": len(valid)}))


def bench(cfg):
    """Seconds per training epoch on a synthetic table with the lesson's columns: island (3), sex (2) and the four
    `_na` flags as categoricals, four continuous columns, 3 classes; cfg = {n, bs, threads}. The last of two epochs counts."""
    torch.set_num_threads(cfg.get("threads", 2))
    g = torch.Generator().manual_seed(0)
    n = cfg.get("n", 100_000)
    y = torch.randint(0, 3, (n,), generator=g)
    cards = [4, 3, 3, 3, 3, 3]  # vocabulary sizes with #na#
    x_cat = torch.stack([torch.randint(1, c, (n,), generator=g) for c in cards], 1)
    x_cont = torch.randn(n, 4, generator=g) + y[:, None].float()
    idx = list(range(n))
    _, _, times = fit({"lr": 1e-2, "bs": cfg.get("bs", 64), "layers": [200, 100]}, x_cat, x_cont, y, cards, idx, idx[:1000], 3, 0, epochs=2)
    print(json.dumps({"epoch_s": times[-1], "n": n, "bs": cfg.get("bs", 64)}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "fixture":
        fixture(sys.argv[2], json.loads(sys.argv[3]))
    elif cmd == "train":
        train(sys.argv[2], json.loads(sys.argv[3]))
    elif cmd == "bench":
        bench(json.loads(sys.argv[2]))
    else:
        raise SystemExit(__doc__)
