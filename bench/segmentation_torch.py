"""PyTorch reference for lesson 7 (notebooks/07_segmentation.ipynb): fastai's U-Net recipe on the scenes.

    /usr/bin/python3 bench/segmentation_torch.py --seeds 0 1 2 3 4 --threads 1

The same data, network and recipe as the lesson, in PyTorch (Debian's python3-torch):
- data: the first `--n` scenes of `emojiScenes()` (default $TSFAST_HOME/data/emoji-scenes, sorted by file
  name), `masks/<name>` the class of every pixel (codes.txt, background 0), the `is_valid` column of
  `labels.csv` the split; each 128 px scene resized once to 64 px (bilinear), its mask nearest-neighbour;
- augmentation: lesson 5's (bench/multilabel_torch.py: flip, +-10 deg, zoom up to 1.05, lighting 0.1);
  the mask goes through the same matrix, nearest-neighbour, never lit;
- network: fastai's DynamicUnet (bench/unet_torch.py) over the encoder of the shipped colour network
  (checkpoints/colour-xresnet18-small.safetensors), normalised with its statistics; parameter groups
  as fastai's U-Net split for an xresnet (`_xresnet_split`: stem | layer1..layer4 | decoder), as tsfast's `unetSplit`;
- training: fastai's `fine_tune(epochs, base_lr)`, by default `fine_tune(5, 5e-3)` (one frozen epoch, then five
  unfrozen; the first `fine_tune(3)` left some data streams far from converged, the notebook's among them), with
  the pixel cross-entropy (`CrossEntropyLossFlat(axis=1)`), to the letter (`fine_tune(..., fastai_exact=True)`):
  the frozen epoch's `slice(base_lr)` gives the frozen groups' BatchNorm base_lr/10, no weight decay on
  BatchNorm and bias parameters, the last incomplete batch dropped.
  `--legacy` gives the first version's recipe, which differed in those three points and in the split
  (stem..layer2 | layer3..layer4 | decoder, torchvision ResNet's);
- metrics on the validation scenes: fastai's `foreground_acc` (pixels whose true class is not the
  background, share predicted right) and `DiceMulti` (each class's 2|P∩T| / (|P| + |T|) over all
  validation pixels, averaged over the classes present).

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
from pretrain_fmnist import fine_tune  # noqa: E402
from pretrain_colour import ARCH, ARCH_OPTS  # noqa: E402
from multilabel_torch import augment_theta, scene_parser, shipped_colour  # noqa: E402
from unet_torch import ENCODER_NAMES, DynamicUnet  # noqa: E402


def load_masks(folder, size, n):
    """(x float NCHW in [0, 1], masks long [n, h, w], is_valid, codes) for the first n scenes."""
    with open(os.path.join(folder, "labels.csv")) as f:
        valid_names = {r["fname"] for r in csv.DictReader(f) if r["is_valid"].strip().lower() in ("true", "1", "yes")}
    with open(os.path.join(folder, "codes.txt")) as f:
        codes = [c.strip() for c in f if c.strip()]
    names = sorted(os.listdir(os.path.join(folder, "images")))[:n]
    xs, ms = [], []
    for name in names:
        im = Image.open(os.path.join(folder, "images", name)).convert("RGB")
        m = Image.open(os.path.join(folder, "masks", name))
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
            m = m.resize((size, size), Image.NEAREST)
        xs.append(np.asarray(im, dtype=np.uint8))
        ms.append(np.asarray(m, dtype=np.int64))
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255
    valid = torch.tensor([name in valid_names for name in names])
    return x, torch.from_numpy(np.stack(ms)), valid, codes


def augment_masks(x, g, m):
    """Lesson 5's augmentation; each mask resampled through its image's matrix, nearest-neighbour."""
    out, theta = augment_theta(x, g)
    grid = F.affine_grid(theta, [x.shape[0], 1, *x.shape[2:]], align_corners=True)
    moved = F.grid_sample(m[:, None].float(), grid, mode="nearest", padding_mode="reflection", align_corners=True)
    return out, moved[:, 0].round().long()


augment_masks.moves_targets = True


def unet_groups(model):
    """fastai's U-Net split for an xresnet body (`_xresnet_split`, as tsfast's `unetSplit`): stem | stages | the decoder."""
    enc = model.layers[0]
    return [list(enc[:2].parameters()), list(enc[2:].parameters()), [p for layer in model.layers[1:] for p in layer.parameters()]]


def unet_groups_resnet(model):
    """The split of the first version (`--legacy`): torchvision ResNet's, stem..layer2 | layer3, layer4 | the decoder."""
    enc = model.layers[0]
    return [list(enc[:6].parameters()), list(enc[6:].parameters()), [p for layer in model.layers[1:] for p in layer.parameters()]]


@torch.no_grad()
def predict_classes(model, xs, norm, bs=100):
    model.eval()
    return torch.cat([model(((xs[i:i + bs] - norm[0]) / norm[1]).contiguous(memory_format=torch.channels_last)).argmax(1)
                      for i in range(0, len(xs), bs)])


def seg_metrics(p, t, n_classes, bkg=0):
    fg = t != bkg
    acc = (p[fg] == t[fg]).float().mean().item()
    dices = []
    for c in range(n_classes):
        a, b = p == c, t == c
        union = a.sum().item() + b.sum().item()
        if union > 0:
            dices.append(2 * (a & b).sum().item() / union)
    return acc, sum(dices) / len(dices)


def main():
    ap = scene_parser("emoji-scenes", 5, 16)
    ap.add_argument("--n", type=int, default=800, help="the first n scenes (by file name)")
    ap.add_argument("--legacy", action="store_true",
                    help="the first version's recipe (0.902-0.931 with --epochs 3): ResNet split, base_lr for every group while frozen, "
                         "weight decay on BatchNorm and biases, the last batch of 2 kept")
    ap.set_defaults(lr=5e-3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, m, valid, codes = load_masks(args.data, args.size, args.n)
    sd, norm, n_pre = shipped_colour()
    xtr, mtr, xva, mva = x[~valid], m[~valid], x[valid], m[valid]
    runs = []
    for seed in args.seeds:
        torch.manual_seed(100 + seed)
        pre = ResNet(ARCH, n_in=3, n_out=n_pre, widen=ARCH_OPTS["widen"], stem_szs=ARCH_OPTS["stemSzs"])
        pre.load_state_dict(sd)
        encoder = nn.Sequential(*[getattr(pre, k) for k in ENCODER_NAMES])
        model = DynamicUnet(encoder, len(codes), (args.size, args.size)).to(memory_format=torch.channels_last)
        t0 = time.time()
        fine_tune(model, xtr, mtr, args.epochs, args.lr, args.bs, norm, seed=seed, aug=augment_masks,
                  groups_fn=unet_groups_resnet if args.legacy else unet_groups, fastai_exact=not args.legacy)
        acc, dice = seg_metrics(predict_classes(model, xva, norm), mva, len(codes))
        run = {"seed": seed, "foreground_acc": round(acc, 4), "dice_multi": round(dice, 4), "seconds": round(time.time() - t0)}
        print(json.dumps(run), flush=True)
        runs.append(run)
    summary = {"recipe": f"size {args.size}, bs {args.bs}, fine_tune({args.epochs}, base_lr={args.lr}){' (legacy)' if args.legacy else ''}, pixel cross-entropy, "
                         f"lesson 5's augmentation; {len(xtr)} train / {len(xva)} valid scenes"}
    for k in ("foreground_acc", "dice_multi"):
        v = [r[k] for r in runs]
        summary[k] = [min(v), round(sum(v) / len(v), 4), max(v)]
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
