"""Replay a tsfast trace of lesson 7 (bench/segmentation-trace.ts) in PyTorch: same initial weights, same batches.

    /usr/bin/python3 bench/segmentation_replay.py /tmp/segtrace [--split resnet] [--frozen-lr same] [--wd-all]

The U-Net (bench/unet_torch.py's DynamicUnet over the shipped xresnet18 encoder) starts from the trace's
init.safetensors, sees exactly the batches tsfast saw (train.safetensors, in order, already normalised
and augmented) and is trained with fastai's `fine_tune(epochs, base_lr)` written out here:
- frozen phase: `fit_one_cycle(1, slice(base_lr), pct_start=0.99)`: per-group lr [base_lr/10, base_lr/10,
  base_lr] (only BatchNorm trains in the frozen groups), div 25;
- `base_lr /= 2`, unfreeze (Adam state cleared), `fit_one_cycle(epochs, slice(base_lr/100, base_lr),
  pct_start=0.3, div=5)`: lrs spread geometrically over the groups (even_mults);
- one-cycle: lr cosine lr_max/div -> lr_max over pct_start, cosine -> lr_max/1e5; beta1 0.95 -> 0.85 -> 0.95;
  set before each batch at pos = step / total_steps;
- fastai's Adam (= AdamW): betas (mom, 0.99), eps 1e-5, decoupled wd 0.01, none on BatchNorm and bias
  parameters (wd_bn_bias=False);
- groups as fastai's `_xresnet_split` (stem | layer1..4 | decoder), as tsfast's `unetSplit` for xresnet.
Options switch to the choices of bench/segmentation_torch.py, to measure each one:
`--split resnet` (stem..layer2 | layer3..4 | decoder), `--frozen-lr same` (base_lr for every group in
the frozen phase), `--wd-all` (decay on every parameter).

Prints per-step |loss difference| against tsfast's, the first steps side by side, per-group lr
differences, then the metrics on the trace's validation batches (tsfast's next to them).
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.dirname(__file__))
from pretrain_models import ResNet, load_safetensors  # noqa: E402
from pretrain_colour import ARCH, ARCH_OPTS  # noqa: E402
from unet_torch import ENCODER_NAMES, DynamicUnet  # noqa: E402
from segmentation_torch import seg_metrics  # noqa: E402


def build(init_path, n_out, size):
    sd, _ = load_safetensors(init_path)
    pre = ResNet(ARCH, n_in=3, n_out=10, widen=ARCH_OPTS["widen"], stem_szs=ARCH_OPTS["stemSzs"])
    model = DynamicUnet(nn.Sequential(*[getattr(pre, k) for k in ENCODER_NAMES]), n_out, (size, size))
    mapped = {}
    for k, v in sd.items():
        head = k.split(".", 1)[0]
        if head in ENCODER_NAMES:
            k = f"0.{ENCODER_NAMES.index(head)}.{k.split('.', 1)[1]}"
        mapped[f"layers.{k}"] = v
    model.load_state_dict(mapped)
    return model


def groups_of(model, split):
    named = list(model.named_parameters())
    if split == "resnet":
        g0 = ("layers.0.0.", "layers.0.1.", "layers.0.4.", "layers.0.5.")
        g1 = ("layers.0.6.", "layers.0.7.")
    else:
        g0 = ("layers.0.0.", "layers.0.1.")
        g1 = ("layers.0.4.", "layers.0.5.", "layers.0.6.", "layers.0.7.")
    gs = [[], [], []]
    for n, p in named:
        gs[0 if n.startswith(g0) else 1 if n.startswith(g1) else 2].append((n, p))
    return gs


def no_wd_names(model):
    out = set()
    for mn, m in model.named_modules():
        for pn, p in m.named_parameters(recurse=False):
            if isinstance(m, nn.modules.batchnorm._BatchNorm) or pn == "bias":
                out.add(f"{mn}.{pn}")
    return out


def cos(a, b, pos):
    return a + (1 + math.cos(math.pi * (1 - pos))) * (b - a) / 2


def one_cycle(lr_max, pct, div, pos, moms=(0.95, 0.85, 0.95)):
    if pos < pct:
        p = pos / pct
        return [cos(l / div, l, p) for l in lr_max], cos(moms[0], moms[1], p)
    p = (pos - pct) / (1 - pct)
    return [cos(l, l / 1e5, p) for l in lr_max], cos(moms[1], moms[2], p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--split", default="xresnet", choices=["xresnet", "resnet"])
    ap.add_argument("--frozen-lr", default="slice", choices=["slice", "same"])
    ap.add_argument("--wd-all", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--show", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with open(os.path.join(args.trace, "trace.json")) as f:
        trace = json.load(f)
    steps = trace["steps"]
    tb, _ = load_safetensors(os.path.join(args.trace, "train.safetensors"))
    vb, _ = load_safetensors(os.path.join(args.trace, "valid.safetensors"))
    init_sd, _ = load_safetensors(os.path.join(args.trace, "init.safetensors"))
    last = max((k for k in init_sd if k[0].isdigit()), key=lambda k: int(k.split(".")[0]))
    n_out = init_sd[last.rsplit(".", 1)[0] + ".weight"].shape[0]
    size = tb["x0"].shape[-1]
    model = build(os.path.join(args.trace, "init.safetensors"), n_out, size).to(memory_format=torch.channels_last)
    gs = groups_of(model, args.split)
    nowd = set() if args.wd_all else no_wd_names(model)
    bn_names = {f"{mn}.{pn}" for mn, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                for pn, _ in m.named_parameters(recurse=False)}
    epochs, base_lr = trace["epochs"], trace["lr"]
    n_frozen = len(steps) // (epochs + 1)
    phases = [(0, n_frozen, [base_lr / 10, base_lr / 10, base_lr] if args.frozen_lr == "slice" else [base_lr] * 3, 0.99, 25.0, True),
              (n_frozen, len(steps), [base_lr / 2 / 100, base_lr / 2 / 10, base_lr / 2], 0.3, 5.0, False)]
    diffs, lr_diffs = [], []
    for start, end, lr_max, pct, div, frozen in phases:
        params = []
        for gi, g in enumerate(gs):
            for n, p in g:
                p.requires_grad_(not frozen or gi == 2 or n in bn_names)
            params.append({"params": [p for n, p in g if p.requires_grad and n not in nowd], "gi": gi, "weight_decay": 0.01})
            params.append({"params": [p for n, p in g if p.requires_grad and n in nowd], "gi": gi, "weight_decay": 0.0})
        opt = torch.optim.AdamW([g for g in params if g["params"]], betas=(0.9, 0.99), eps=1e-5)
        total = end - start
        model.train()
        for i in range(start, end):
            lrs, mom = one_cycle(lr_max, pct, div, (i - start) / total)
            for g in opt.param_groups:
                g["lr"] = lrs[g["gi"]]
                g["betas"] = (mom, 0.99)
            theirs = [h["lr"] for h in steps[i]["hypers"]]
            lr_diffs.append(max(abs(a - b) / b for a, b in zip(lrs, theirs)))
            xb = tb[f"x{i}"].contiguous(memory_format=torch.channels_last)
            yb = tb[f"y{i}"].long()
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            d = loss.item() - steps[i]["loss"]
            diffs.append(d)
            if i - start < args.show or i == end - 1:
                print(f"step {i:4d}  torch {loss.item():.5f}  tsfast {steps[i]['loss']:.5f}  diff {d:+.5f}  lrs {['%.3g' % l for l in lrs]} mom {mom:.3f}", flush=True)
    model.eval()
    preds, targs = [], []
    with torch.no_grad():
        k = 0
        while f"x{k}" in vb:
            preds.append(model(vb[f"x{k}"].contiguous(memory_format=torch.channels_last)).argmax(1))
            targs.append(vb[f"y{k}"].long())
            k += 1
    acc, dice = seg_metrics(torch.cat(preds), torch.cat(targs), n_out)
    q = lambda a, b: sum(abs(v) for v in diffs[a:b]) / max(1, len(diffs[a:b]))  # noqa: E731
    print(json.dumps({"options": vars(args), "torch": {"foreground_acc": round(acc, 4), "dice_multi": round(dice, 4)},
                      "tsfast": {"foreground_acc": trace["foregroundAcc"], "dice_multi": trace["dice"]},
                      "mean_abs_loss_diff": {"steps 0-9": q(0, 10), "frozen": q(0, n_frozen), "unfrozen": q(n_frozen, len(diffs))},
                      "mean_loss": {"torch_last40": sum(steps[i]["loss"] + diffs[i] for i in range(len(diffs) - 40, len(diffs))) / 40,
                                    "tsfast_last40": sum(s["loss"] for s in steps[-40:]) / 40},
                      "max_rel_lr_diff": max(lr_diffs)}), flush=True)


if __name__ == "__main__":
    main()
