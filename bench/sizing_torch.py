"""PyTorch reference for the "training a state-of-the-art model" lesson (issue 18; the book's chapter 7):
the effect of normalisation, progressive resizing, test-time augmentation, MixUp and label smoothing,
each against a baseline trained for the same number of epochs.

    /usr/bin/python3 bench/sizing_torch.py                     # seeds 0, 1, 2, 4 epochs (lesson 16's numbers)
    /usr/bin/python3 bench/sizing_torch.py --seeds 0 --epochs 6 # longer

The data, network and recipes the lesson runs in tsfast, in PyTorch (Debian's python3-torch):
- data: `emojiCategories()`'s folder (default $TSFAST_HOME/data/emoji-categories; `npm run datasets --
  --only emoji`): 1,906 Twemoji pictures (64×64, on white) in 9 Unicode categories, its own
  train/valid split; classes sorted by name, as tsfast's `CategoryBlock`;
- augmentation of training batches: tsfast's `augTransforms({ maxLighting: 0.1, maxZoom: 1.05,
  maxWarp: 0 })` as bench/multilabel_torch.py ports it (flip, rotation ±10°, zoom, one bilinear
  resample with reflection padding, brightness and contrast in logit space);
- network: tsfast's `xresnet18({ widen: 0.5, stemSzs: [16, 16, 32], nOut: 9 })` from scratch
  (scripts/pretrain_models.py's port: the xresnet's own pooling and linear head), a different random
  init per seed;
- training: fastai's `fit_one_cycle` (AdamW betas 0.9/0.99, eps 1e-5, wd 0.01 on weights only:
  fastai's default `wd_bn_bias=False` leaves BatchNorm and bias parameters undecayed; one-cycle
  lr warm-up over 25 % then cosine down, momentum 0.95 → 0.85 → 0.95), batch 64, lr 3e-3;
- recipes, each `epochs` epochs in all:
  - `plain`: pixels in [0, 1], no normalisation;
  - `norm`: normalised with the training set's per-channel mean and std (the lesson passes the
    same numbers to `Normalize.fromStats`);
  - `fixed` / `progressive`: fastai's progressive-resizing recipe, `fit_one_cycle(epochs // 2)` then
    `fine_tune(epochs - epochs // 2 - 1)` (a one-epoch warm-up at pct_start 0.99, then the rest at
    half the lr, div 5: a model without parameter groups is not frozen), the first phase at 64 px
    (`fixed`) or at 32 px (`progressive`: the pictures resized once, bilinear with antialiasing,
    as sharp's "linear" kernel in tsfast's `Resize(32)`), then at 64 px;
  - `mixup`: `norm` with fastai's `MixUp(0.4)` (λ ~ Beta(0.4, 0.4) per picture, max(λ, 1 − λ), a
    shuffled partner batch; the loss the λ-mix of the two targets' losses);
  - `label_smoothing`: `norm` with fastai's `LabelSmoothingCrossEntropy(0.1)`;
  - `tta`: `norm`'s model evaluated with fastai's `tta(n=4, beta=0.25)`: the mean of 4 passes with the
    training augmentation, then lerp(that, the plain prediction, 0.25).
- metric: accuracy on the validation pictures.

Prints one JSON line per seed, then a summary (min / mean / max over seeds) as the last line.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pretrain_models import ResNet  # noqa: E402
from multilabel_torch import augment_theta  # noqa: E402

ARCH, ARCH_OPTS = "xresnet18", {"widen": 0.5, "stemSzs": [16, 16, 32]}


def load_folder(folder):
    """(x float NCHW in [0, 1], class index, vocab) of `folder/{train,valid}/<class>/*.png`."""
    vocab = sorted(d for d in os.listdir(os.path.join(folder, "train")) if os.path.isdir(os.path.join(folder, "train", d)))
    out = {}
    for split in ("train", "valid"):
        xs, ys = [], []
        for ci, c in enumerate(vocab):
            d = os.path.join(folder, split, c)
            for f in sorted(os.listdir(d)):
                im = Image.open(os.path.join(d, f)).convert("RGB")
                if im.size != (64, 64):
                    im = im.resize((64, 64), Image.BILINEAR)
                xs.append(np.asarray(im, dtype=np.uint8))
                ys.append(ci)
        out[split] = (torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255, torch.tensor(ys))
    return out, vocab


def param_groups(model, wd):
    """fastai's `wd_bn_bias=False`: weight decay on the weights of convolutions and linear layers only."""
    decay, no_decay = [], []
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            (no_decay if isinstance(m, nn.modules.batchnorm._BatchNorm) or name == "bias" else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def lsce(logits, y, eps=0.1):
    """fastai's LabelSmoothingCrossEntropy(eps), per picture: (1 − eps)·NLL + eps·mean over classes of −log p."""
    logp = F.log_softmax(logits, 1)
    return (1 - eps) * F.nll_loss(logp, y, reduction="none") - eps * logp.mean(1)


def fit_one_cycle(model, x, y, epochs, lr, bs, norm, g, loss="ce", mixup=None, pct_start=0.25, div=25.0, wd=0.01):
    opt = torch.optim.AdamW(param_groups(model, wd), lr=lr, betas=(0.9, 0.99), eps=1e-5)
    steps = epochs * (len(x) // bs)  # fastai's training loader drops the last, partial batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=pct_start, div_factor=div,
                                                final_div_factor=1e5, cycle_momentum=True, base_momentum=0.85, max_momentum=0.95)
    per_pic = (lambda p, t: F.cross_entropy(p, t, reduction="none")) if loss == "ce" else lsce
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), bs):
            idx = perm[i:i + bs]
            if len(idx) < bs:
                continue
            xb, yb = augment_theta(x[idx], g)[0], y[idx]
            if norm is not None:
                xb = (xb - norm[0]) / norm[1]
            if mixup:
                lam = torch.distributions.Beta(mixup, mixup).sample((len(idx),))
                lam = torch.maximum(lam, 1 - lam)
                shuf = torch.randperm(len(idx), generator=g)
                xb = torch.lerp(xb[shuf], xb, lam[:, None, None, None])
                out = model(xb.contiguous(memory_format=torch.channels_last))
                l_ = torch.lerp(per_pic(out, yb[shuf]), per_pic(out, yb), lam).mean()
            else:
                l_ = per_pic(model(xb.contiguous(memory_format=torch.channels_last)), yb).mean()
            opt.zero_grad()
            l_.backward()
            opt.step()
            sched.step()


def fine_tune(model, x, y, epochs, lr, bs, norm, g):
    """fastai's fine_tune on a model with one parameter group (nothing to freeze)."""
    fit_one_cycle(model, x, y, 1, lr, bs, norm, g, pct_start=0.99)
    fit_one_cycle(model, x, y, epochs, lr / 2, bs, norm, g, pct_start=0.3, div=5.0)


@torch.no_grad()
def probs(model, x, norm, aug_g=None, bs=500):
    model.eval()
    out = []
    for i in range(0, len(x), bs):
        xb = x[i:i + bs]
        if aug_g is not None:
            xb = augment_theta(xb, aug_g)[0]
        if norm is not None:
            xb = (xb - norm[0]) / norm[1]
        out.append(F.softmax(model(xb.contiguous(memory_format=torch.channels_last)), 1))
    return torch.cat(out)


def acc(p, y):
    return (p.argmax(1) == y).float().mean().item()


def new_model(n_out, seed):
    torch.manual_seed(seed)
    return ResNet(ARCH, n_in=3, n_out=n_out, widen=ARCH_OPTS["widen"], stem_szs=ARCH_OPTS["stemSzs"]).to(memory_format=torch.channels_last)


def run_seed(data, n_out, seed, epochs, lr, bs):
    (xt, yt), (xv, yv) = data["train"], data["valid"]
    stats = (xt.mean((0, 2, 3))[None, :, None, None], xt.std((0, 2, 3))[None, :, None, None])
    res = {"seed": seed, "norm_stats": {"mean": stats[0].flatten().tolist(), "std": stats[1].flatten().tolist()}}
    t0 = time.time()
    for name, norm, loss, mixup in (("plain", None, "ce", None), ("norm", stats, "ce", None),
                                    ("mixup", stats, "ce", 0.4), ("label_smoothing", stats, "lsce", None)):
        m = new_model(n_out, seed)
        fit_one_cycle(m, xt, yt, epochs, lr, bs, norm, torch.Generator().manual_seed(seed), loss=loss, mixup=mixup)
        p = probs(m, xv, norm)
        res[name] = acc(p, yv)
        if name == "norm":
            g = torch.Generator().manual_seed(1000 + seed)
            aug = torch.stack([probs(m, xv, norm, aug_g=g) for _ in range(4)]).mean(0)
            res["tta"] = acc(torch.lerp(aug, p, 0.25), yv)
    small = F.interpolate(xt, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    first = epochs // 2
    for name, x1 in (("fixed", xt), ("progressive", small)):
        m = new_model(n_out, seed)
        g = torch.Generator().manual_seed(seed)
        fit_one_cycle(m, x1, yt, first, lr, bs, stats, g)
        fine_tune(m, xt, yt, epochs - first - 1, lr, bs, stats, g)
        res[name] = acc(probs(m, xv, stats), yv)
    res["seconds"] = round(time.time() - t0, 1)
    return res


def main():
    home = os.environ.get("TSFAST_HOME", os.path.join(os.path.expanduser("~"), ".tsfast"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", default=os.path.join(home, "data", "emoji-categories"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=4)  # the lesson's: 6 recipes of 4 epochs fit its CI budget on 2 cores
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.epochs < 3:
        sys.exit("--epochs must be at least 3 (the progressive recipe needs a first phase, a warm-up epoch and one more)")
    torch.set_num_threads(a.threads)
    data, vocab = load_folder(a.folder)
    runs = []
    for s in a.seeds:
        r = run_seed(data, len(vocab), s, a.epochs, a.lr, a.bs)
        print(json.dumps(r), flush=True)
        runs.append(r)
    keys = ["plain", "norm", "tta", "mixup", "label_smoothing", "fixed", "progressive"]
    print(json.dumps({"summary": {k: {"min": min(r[k] for r in runs), "mean": sum(r[k] for r in runs) / len(runs),
                                      "max": max(r[k] for r in runs)} for k in keys},
                      "epochs": a.epochs, "lr": a.lr, "bs": a.bs, "n_train": len(data["train"][1]), "n_valid": len(data["valid"][1])}))


if __name__ == "__main__":
    main()
