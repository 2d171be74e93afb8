"""PyTorch reference for the key-points part of lesson 6 (notebooks/06_keypoints.ipynb): fastai's recipe.

    /usr/bin/python3 bench/keypoints_torch.py --seeds 0 1 2

The same data, network and recipe as the lesson, in PyTorch (Debian's python3-torch):
- data: `emojiScenes({ oneFace: true })` (default $TSFAST_HOME/data/emoji-scenes-faces; the lesson builds
  it): every scene has one face emoji, `points.csv` its centre in pixels ((0, 0) the top-left corner),
  the `is_valid` column of `labels.csv` the split; each 128 px scene resized once to 64 px (bilinear, as
  tsfast's `Resize(64)`), the point scaled with it;
- targets as tsfast's `PointBlock` makes them: corner-based pixels -> pixel centres (-0.5) -> [-1, 1] with
  -1 the first pixel centre and 1 the last (the grid of `affine_grid(align_corners=True)`);
- augmentation: lesson 5's (bench/multilabel_torch.py: flip, +-10 deg, zoom up to 1.05, lighting 0.1),
  the points moved through the inverse of each image's matrix;
- network: checkpoints/colour-xresnet18-small.safetensors, fastai's head with 2 outputs and
  `y_range=(-1, 1)` (a sigmoid scaled to the range), normalised with the checkpoint's statistics;
- training: fastai's `fine_tune(epochs, base_lr)` with MSE (fastai's `MSELossFlat`), batch `bs`;
- metric: the mean distance between predicted and true points on the validation scenes, in pixels of
  the 128 px scene.

Prints one JSON object per seed, then a summary (min / mean / max) as the last line.
"""
import csv
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.dirname(__file__))
from pretrain_models import ResNet  # noqa: E402
from pretrain_fmnist import make_learner_model, fine_tune  # noqa: E402
from pretrain_colour import ARCH, ARCH_OPTS  # noqa: E402
from multilabel_torch import augment_theta, scene_parser, shipped_colour  # noqa: E402


def load_points(folder, size):
    """(x float NCHW in [0, 1], points [n, 2] in [-1, 1], is_valid, scene side) from points.csv, labels.csv and images/."""
    with open(os.path.join(folder, "labels.csv")) as f:
        valid_names = {r["fname"] for r in csv.DictReader(f) if r["is_valid"].strip().lower() in ("true", "1", "yes")}
    with open(os.path.join(folder, "points.csv")) as f:
        rows = list(csv.DictReader(f))
    xs, ys = [], []
    side = None
    for r in rows:
        im = Image.open(os.path.join(folder, "images", r["fname"])).convert("RGB")
        side = im.size[0]
        scale = size / side
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        xs.append(np.asarray(im, dtype=np.uint8))
        ys.append([(float(r["x"]) * scale - 0.5) * 2 / (size - 1) - 1, (float(r["y"]) * scale - 0.5) * 2 / (size - 1) - 1])
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255
    valid = torch.tensor([r["fname"] in valid_names for r in rows])
    return x, torch.tensor(ys), valid, side


def augment_points(x, g, y):
    """Lesson 5's augmentation; each point goes through the inverse of its image's matrix."""
    out, theta = augment_theta(x, g)
    a, t = theta[:, :, :2], theta[:, :, 2]
    moved = torch.linalg.solve(a, (y - t).unsqueeze(-1)).squeeze(-1)
    return out, moved


augment_points.moves_targets = True


class SigmoidRange(nn.Module):
    def __init__(self, low, high):
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x):
        return torch.sigmoid(x) * (self.high - self.low) + self.low


@torch.no_grad()
def predict(model, xs, norm, bs=200):
    model.eval()
    return torch.cat([model(((xs[i:i + bs] - norm[0]) / norm[1]).contiguous(memory_format=torch.channels_last)) for i in range(0, len(xs), bs)])


def main():
    ap = scene_parser("emoji-scenes-faces", 8, 32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, y, valid, side = load_points(args.data, args.size)
    sd, norm, n_pre = shipped_colour()
    xtr, ytr, xva, yva = x[~valid], y[~valid], x[valid], y[valid]
    to_px = (args.size - 1) / 2 * side / args.size  # [-1, 1] units -> pixels of the original scene
    runs = []
    for seed in args.seeds:
        torch.manual_seed(100 + seed)
        pre = ResNet(ARCH, n_in=3, n_out=n_pre, widen=ARCH_OPTS["widen"], stem_szs=ARCH_OPTS["stemSzs"])
        pre.load_state_dict(sd)
        m = make_learner_model(pre, 2)
        m[1].append(SigmoidRange(-1, 1))
        m = m.to(memory_format=torch.channels_last)
        t0 = time.time()
        fine_tune(m, xtr, ytr, args.epochs, args.lr, args.bs, norm, seed=seed, aug=augment_points, loss_fn=F.mse_loss)
        err = ((predict(m, xva, norm) - yva).norm(dim=1) * to_px).mean().item()
        run = {"seed": seed, "mean_error_px": round(err, 3), "seconds": round(time.time() - t0)}
        print(json.dumps(run), flush=True)
        runs.append(run)
    errs = [r["mean_error_px"] for r in runs]
    print(json.dumps({"recipe": f"size {args.size}, bs {args.bs}, fine_tune({args.epochs}, base_lr={args.lr}), MSE, y_range (-1, 1); "
                                f"{len(xtr)} train / {len(xva)} valid scenes of {side} px",
                      "mean_error_px": [min(errs), round(sum(errs) / len(errs), 3), max(errs)]}), flush=True)


if __name__ == "__main__":
    main()
