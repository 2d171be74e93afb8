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


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "fixture":
        fixture(sys.argv[2], json.loads(sys.argv[3]))
    else:
        raise SystemExit(__doc__)
