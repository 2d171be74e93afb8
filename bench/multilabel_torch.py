"""PyTorch reference for lesson 5 (notebooks/05_multilabel.ipynb): multi-label scenes, fastai's recipe.

    /usr/bin/python3 bench/multilabel_torch.py                       # 3 seeds, fine-tuned and from scratch
    /usr/bin/python3 bench/multilabel_torch.py --seeds 0 --no-scratch

The same data, network and recipe as the lesson, in PyTorch (Debian's python3-torch):
- data: `emojiScenes()`'s `labels.csv` (default $TSFAST_HOME/data/emoji-scenes; build it with
  `npm run datasets -- --only scenes`), the `is_valid` column as the split (1,600 / 400), labels
  space-delimited, the vocabulary sorted as tsfast's `MultiCategoryBlock` sorts it; each 128 px scene
  resized once to 64 px (bilinear with antialiasing, as sharp's "linear" kernel in tsfast's `Resize(64)`);
- augmentation on training batches, tsfast's `augTransforms({ size: 64, maxLighting: 0.1, maxZoom: 1.05,
  maxWarp: 0 })` drawn the same way: horizontal flip (p 0.5), rotation U(-10°, 10°) (p 0.75), zoom
  U(1, 1.05) about a random centre (p 0.75), one bilinear resample with reflection padding
  (`affine_grid(align_corners=True)`); brightness and contrast in logit space (p 0.75 each);
- network: checkpoints/colour-xresnet18-small.safetensors (the shipped colour network), its body, fastai's
  head (concat pool, BatchNorm, dropout, 512 hidden) with 9 outputs, normalised with the checkpoint's
  statistics (scripts/pretrain_fmnist.py's helpers, the ones the shipped checkpoints were made with);
- training: fastai's `fine_tune(epochs, base_lr)`: one frozen one-cycle epoch, then `epochs` unfrozen with
  discriminative learning rates; AdamW, batch `bs`; loss `binary_cross_entropy_with_logits` (fastai's
  `BCEWithLogitsLossFlat`). From scratch: the same network with random weights, `fit_one_cycle(epochs + 1)`
  at `base_lr`;
- metrics on the 400 validation scenes, from sigmoid probabilities: fastai's `accuracy_multi` at
  `thresh` and over a threshold sweep, and sklearn's F1 (average "samples" and "macro"), as
  `F1ScoreMulti` computes them.

Prints one JSON object per run, then a summary (min / mean / max over seeds) as the last line.
"""
import argparse
import csv
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from pretrain_models import ResNet, load_safetensors  # noqa: E402
from pretrain_fmnist import make_learner_model, fine_tune, fit_one_cycle, set_frozen  # noqa: E402
from pretrain_colour import NAME, ARCH, ARCH_OPTS  # noqa: E402


def load_scenes(folder, size):
    """(x float NCHW in [0, 1], multi-hot y, is_valid, vocab) from labels.csv and images/."""
    with open(os.path.join(folder, "labels.csv")) as f:
        rows = list(csv.DictReader(f))
    vocab = sorted({lab for r in rows for lab in r["labels"].split(" ") if lab})
    xs = []
    for r in rows:
        im = Image.open(os.path.join(folder, "images", r["fname"])).convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        xs.append(np.asarray(im, dtype=np.uint8))
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255
    y = torch.zeros(len(rows), len(vocab))
    for i, r in enumerate(rows):
        for lab in r["labels"].split(" "):
            if lab:
                y[i, vocab.index(lab)] = 1
    valid = torch.tensor([r["is_valid"].strip().lower() in ("true", "1", "yes") for r in rows])
    return x, y, valid, vocab


def logit(x):
    x = x.clamp(1e-7, 1 - 1e-7)
    return torch.log(x / (1 - x))


def draw_theta(n, g, max_rotate=10.0, max_zoom=1.05, p_affine=0.75):
    """Each image's [2, 3] matrix (output -> source, [-1, 1], align_corners=True): flip, rotate, zoom, drawn as tsfast draws them."""
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=g)  # noqa: E731
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    ang = torch.where(torch.rand(n, generator=g) < p_affine, u(-max_rotate, max_rotate), torch.zeros(n)) * math.pi / 180
    zoom = torch.where(torch.rand(n, generator=g) < p_affine, u(1.0, max_zoom), torch.ones(n))
    s = 1 / zoom
    cx, cy = (1 - s) * (2 * torch.rand(n, generator=g) - 1), (1 - s) * (2 * torch.rand(n, generator=g) - 1)
    # output -> source: flip · rotate · zoom (tsfast's order, the matrices of lib/data/geometry.ts)
    cos, sin = torch.cos(ang), torch.sin(ang)
    return torch.stack([torch.stack([flip * cos * s, flip * sin * s, flip * (cos * cx + sin * cy)], 1),
                        torch.stack([-sin * s, cos * s, -sin * cx + cos * cy], 1)], 1)


def augment(x, g):
    """tsfast's augTransforms(size, maxLighting 0.1, maxZoom 1.05, maxWarp 0) on an NCHW batch (see the module comment)."""
    return augment_theta(x, g)[0]


def augment_theta(x, g, max_rotate=10.0, max_zoom=1.05, max_lighting=0.1, p_affine=0.75, p_lighting=0.75):
    """`augment`, also returning each image's matrix (for targets that move with the image)."""
    n = x.shape[0]
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=g)  # noqa: E731
    theta = draw_theta(n, g, max_rotate, max_zoom, p_affine)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
    b = torch.where(torch.rand(n, generator=g) < p_lighting, u(0.5 * (1 - max_lighting), 0.5 * (1 + max_lighting)), torch.full((n,), 0.5))
    lo = math.log(1 - max_lighting)
    c = torch.where(torch.rand(n, generator=g) < p_lighting, torch.exp(u(lo, -lo)), torch.ones(n))
    return torch.sigmoid((logit(out) + logit(b)[:, None, None, None]) * c[:, None, None, None]), theta


def bce(logits, y):
    return F.binary_cross_entropy_with_logits(logits, y)


@torch.no_grad()
def probabilities(model, xs, norm, bs=200):
    model.eval()
    out = []
    for i in range(0, len(xs), bs):
        xb = ((xs[i:i + bs] - norm[0]) / norm[1]).contiguous(memory_format=torch.channels_last)
        out.append(torch.sigmoid(model(xb)))
    return torch.cat(out)


def accuracy_multi(p, y, thresh):
    """fastai's accuracy_multi on probabilities: the fraction of (scene, label) pairs right."""
    return ((p > thresh).float() == y).float().mean().item()


def f1(p, y, thresh, average):
    """sklearn's f1_score on multi-hot targets, zero_division 0: "samples" per scene, "macro" per label."""
    yp = (p > thresh).float()
    axis = 1 if average == "samples" else 0
    tp, fp, fn = (yp * y).sum(axis), (yp * (1 - y)).sum(axis), ((1 - yp) * y).sum(axis)
    den = 2 * tp + fp + fn
    return torch.where(den > 0, 2 * tp / den.clamp(min=1), torch.zeros_like(den)).mean().item()


def metrics(p, y, thresh):
    sweep = [round(0.05 * k, 2) for k in range(1, 20)]
    accs = [accuracy_multi(p, y, t) for t in sweep]
    best = max(range(len(sweep)), key=lambda k: accs[k])
    return {"accuracy_multi": round(accuracy_multi(p, y, thresh), 4), "f1_samples": round(f1(p, y, thresh, "samples"), 4),
            "f1_macro": round(f1(p, y, thresh, "macro"), 4), "best_thresh": sweep[best], "best_accuracy_multi": round(accs[best], 4),
            "f1_samples_at_best": round(f1(p, y, sweep[best], "samples"), 4)}


def scene_parser(folder, epochs, bs, lr_help="fine_tune's base_lr"):
    """The options the scene references share: data folder, size, epochs, lr, batch, seeds, threads."""
    ap = argparse.ArgumentParser()
    home = os.environ.get("TSFAST_HOME") or os.path.join(os.path.expanduser("~"), ".tsfast")
    ap.add_argument("--data", default=os.path.join(home, "data", folder))
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=epochs, help="fine_tune's unfrozen epochs (after 1 frozen)")
    ap.add_argument("--lr", type=float, default=1e-2, help=lr_help)
    ap.add_argument("--bs", type=int, default=bs)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    return ap


def shipped_colour():
    """The shipped colour network's weights, its normalisation (NCHW-broadcastable) and its number of pretraining classes."""
    sd, meta = load_safetensors(os.path.join(ROOT, "checkpoints", f"{NAME}.safetensors"))
    norm = tuple(torch.tensor(json.loads(meta[k]))[None, :, None, None] for k in ("tsfast.mean", "tsfast.std"))
    return sd, norm, len(json.loads(meta["tsfast.vocab"]))


def main():
    ap = scene_parser("emoji-scenes", 3, 64, "fine_tune's base_lr; from scratch: fit_one_cycle's lr_max")
    ap.add_argument("--thresh", type=float, default=0.2)
    ap.add_argument("--no-scratch", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, y, valid, vocab = load_scenes(args.data, args.size)
    sd, norm, n_pre = shipped_colour()
    xtr, ytr, xva, yva = x[~valid], y[~valid], x[valid], y[valid]
    runs = []
    for seed in args.seeds:
        torch.manual_seed(100 + seed)
        pre = ResNet(ARCH, n_in=3, n_out=n_pre, widen=ARCH_OPTS["widen"], stem_szs=ARCH_OPTS["stemSzs"])
        pre.load_state_dict(sd)
        m = make_learner_model(pre, len(vocab)).to(memory_format=torch.channels_last)
        t0 = time.time()
        fine_tune(m, xtr, ytr, args.epochs, args.lr, args.bs, norm, seed=seed, aug=augment, loss_fn=bce)
        run = {"kind": "fine_tune", "seed": seed, **metrics(probabilities(m, xva, norm), yva, args.thresh), "seconds": round(time.time() - t0)}
        print(json.dumps(run), flush=True)
        runs.append(run)
        if args.no_scratch:
            continue
        torch.manual_seed(100 + seed)
        scratch = ResNet(ARCH, n_in=3, n_out=len(vocab), widen=ARCH_OPTS["widen"], stem_szs=ARCH_OPTS["stemSzs"])
        m2 = make_learner_model(scratch, len(vocab)).to(memory_format=torch.channels_last)
        set_frozen(m2, False)
        t0 = time.time()
        fit_one_cycle(m2, xtr, ytr, args.epochs + 1, [args.lr] * 3, args.bs, norm, aug=augment, seed=seed, loss_fn=bce)
        run = {"kind": "scratch", "seed": seed, **metrics(probabilities(m2, xva, norm), yva, args.thresh), "seconds": round(time.time() - t0)}
        print(json.dumps(run), flush=True)
        runs.append(run)
    summary = {"recipe": f"size {args.size}, bs {args.bs}, fine_tune({args.epochs}, base_lr={args.lr}) vs fit_one_cycle({args.epochs + 1}, {args.lr}); "
                         f"thresh {args.thresh}; {len(xtr)} train / {len(xva)} valid scenes, {len(vocab)} labels"}
    for kind in ("fine_tune", "scratch"):
        rs = [r for r in runs if r["kind"] == kind]
        if rs:
            summary[kind] = {k: [min(r[k] for r in rs), round(sum(r[k] for r in rs) / len(rs), 4), max(r[k] for r in rs)]
                             for k in ("accuracy_multi", "f1_samples", "f1_macro", "best_accuracy_multi", "f1_samples_at_best")}
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
