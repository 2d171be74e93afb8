"""PyTorch reference for bench/train-equivalence.ts: issue 12's small conv net and recipe.

Reads the same PNG class folders as the tsfast side (`train/`, `valid/`) and mirrors it:
- input: the grey PNGs as 3 equal channels in [0, 1] (torchvision's ImageFolder converts to RGB,
  as tsfast's decoder does), no normalisation (tsfast's `fromFolder` adds none by itself);
- net: 3 x (conv 3x3 stride 2 with TensorFlow's "same" padding (extra row/column at the end), no
  bias -> BatchNorm(momentum 0.1 = tfjs 0.9, eps 1e-5) -> ReLU), 16/32/64 filters -> global average
  pool -> linear 10; Glorot-uniform kernels and zero bias, tfjs-layers' initialisers;
- optimiser: AdamW (betas 0.9/0.99, eps 1e-5, weight decay 0.01 decoupled) with weight decay on
  the conv and linear kernels only, as tsfast's Learner (no decay on batch-norm or bias
  parameters);
- schedule: fastai's one-cycle as tsfast's `fitOneCycle` computes it, set before each batch at
  position step/total_steps: lr cosine lrMax/25 -> lrMax over the first 25 %, cosine -> lrMax/1e5;
  beta1 0.95 -> 0.85 -> 0.95 on the same phases;
- batches of 64, shuffled each epoch, last incomplete training batch dropped (tsfast's default);
- "train loss" is fastai's smoothed loss (exponential average, beta 0.98, debiased) after the last
  batch, as tsfast's recorder reports it.

Prints one JSON line: engine, validAccuracy, trainLoss, validLoss, epochSeconds.
usage: /usr/bin/python3 bench/train_equivalence_torch.py --dir <folders> [--epochs 5] [--threads 2]
"""
import argparse
import json
import sys
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class ConvSame(nn.Module):
    """Conv 3x3 stride 2, no bias, with TensorFlow's "same" padding."""

    def __init__(self, cin, cout, k=3, s=2):
        super().__init__()
        self.k, self.s = k, s
        self.conv = nn.Conv2d(cin, cout, k, stride=s, padding=0, bias=False)
        nn.init.xavier_uniform_(self.conv.weight)

    def forward(self, x):
        h, w = x.shape[-2:]
        ph = max((math.ceil(h / self.s) - 1) * self.s + self.k - h, 0)
        pw = max((math.ceil(w / self.s) - 1) * self.s + self.k - w, 0)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return self.conv(x)


def small_net():
    layers = []
    cin = 3
    for cout in (16, 32, 64):
        layers += [ConvSame(cin, cout), nn.BatchNorm2d(cout, momentum=0.1, eps=1e-5), nn.ReLU()]
        cin = cout
    fc = nn.Linear(64, 10)
    nn.init.xavier_uniform_(fc.weight)
    nn.init.zeros_(fc.bias)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc)


def sched_cos(start, end, pos):
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def combined_cos(pct, start, middle, end, pos):
    if pos < pct:
        return sched_cos(start, middle, pos / pct)
    return sched_cos(middle, end, (pos - pct) / (1 - pct))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr-max", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    tfm = torchvision.transforms.ToTensor()
    train_ds = torchvision.datasets.ImageFolder(f"{args.dir}/train", transform=tfm)
    valid_ds = torchvision.datasets.ImageFolder(f"{args.dir}/valid", transform=tfm)
    g = torch.Generator().manual_seed(args.seed)
    train_dl = torch.utils.data.DataLoader(train_ds, batch_size=64, shuffle=True, drop_last=True, generator=g)
    valid_dl = torch.utils.data.DataLoader(valid_ds, batch_size=64, shuffle=False)

    model = small_net().to(memory_format=torch.channels_last)
    kernels = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    decay = [p for p in model.parameters() if any(p is k for k in kernels)]
    no_decay = [p for p in model.parameters() if not any(p is k for k in kernels)]
    assert len(decay) == 4 and len(no_decay) == 7, (len(decay), len(no_decay))
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr_max / 25, betas=(0.95, 0.99), eps=1e-5)
    loss_fn = nn.CrossEntropyLoss()
    total = args.epochs * len(train_dl)
    step = 0
    smooth, count = 0.0, 0
    times = []
    valid_loss = acc = float("nan")
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        model.train()
        for xb, yb in train_dl:
            pos = step / total
            lr = combined_cos(0.25, args.lr_max / 25, args.lr_max, args.lr_max / 1e5, pos)
            mom = combined_cos(0.25, 0.95, 0.85, 0.95, pos)
            for grp in opt.param_groups:
                grp["lr"] = lr
                grp["betas"] = (mom, 0.99)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb.to(memory_format=torch.channels_last)), yb)
            loss.backward()
            opt.step()
            count += 1
            smooth = 0.98 * smooth + 0.02 * loss.item()
            step += 1
        model.eval()
        tot_loss, correct, n = 0.0, 0, 0
        with torch.no_grad():
            for xb, yb in valid_dl:
                out = model(xb.to(memory_format=torch.channels_last))
                tot_loss += F.cross_entropy(out, yb, reduction="sum").item()
                correct += (out.argmax(1) == yb).sum().item()
                n += len(yb)
        valid_loss, acc = tot_loss / n, correct / n
        times.append(time.perf_counter() - t0)
        print(f"  pytorch epoch {len(times)}: train loss {smooth / (1 - 0.98 ** count):.3f}, valid loss {valid_loss:.3f}, "
              f"accuracy {acc:.4f}, {times[-1]:.1f} s", file=sys.stderr, flush=True)
    print(json.dumps({"engine": "pytorch", "validAccuracy": acc, "trainLoss": smooth / (1 - 0.98 ** count),
                      "validLoss": valid_loss, "epochSeconds": times,
                      "banner": f"torch {torch.__version__}, {torch.get_num_threads()} threads"}), flush=True)


if __name__ == "__main__":
    main()
