"""PyTorch + torchvision side of bench/e2e.ts: lesson 1's recipe end to end, on the same files.

What is timed: from building the datasets and DataLoaders to the end of the last validation pass,
i.e. model construction, every JPEG decoded from disk each epoch, the per-item transforms, the
training steps and validation with the error rate. Python's start and `import torch` are not.

The recipe, written to match tsfast's lesson-1 calls (read from tsfast's sources, not from fastai):
- Data: the train/valid file lists bench/e2e.ts wrote (tsfast's `RandomSplitter(0.2, seed)` split),
  labels = parent folder names in the given vocab order. Decoded with PIL each epoch (no cache),
  DataLoader with `--workers` persistent worker processes, train shuffled with the last partial
  batch dropped, valid at the same batch size.
- `Resize(presize)` (method crop): shorter side to `presize`, then a random square crop on train,
  centred on valid.
- `augTransforms({ size })` with its defaults (minScale 1, so the whole square is resampled to
  `size`): horizontal flip p 0.5, rotation up to 10 degrees and zoom 1-1.1 (p 0.75), perspective warp
  0.2 (p 0.75), brightness and contrast 0.2 (p 0.75). Valid: the square resized to `size` only.
  Pixels in [0, 1] without Normalize: with `pretrained: false`, visionLearner adds none.
- Model: torchvision resnet18 (random init) cut before its pooling, plus fastai's head as tsfast's
  `createHead` builds it: concat pool (max, avg) → flatten → BN → dropout 0.25 → linear 1024→512 (no
  bias) → ReLU → BN → dropout 0.5 → linear 512→classes (no bias). Three parameter groups as
  `visionSplit`: stem + layer1 + layer2 | layer3 + layer4 | head.
- `fineTune(epochs)` with `fineTuneDefaults`: freeze (body frozen except its BatchNorm layers,
  trainBn), one-cycle 1 epoch at lr slice(2e-3) = [2e-4, 2e-4, 2e-3], pctStart 0.99, div 25; then
  unfreeze, one-cycle `epochs` epochs at slice(1e-5, 1e-3) = [1e-5, 1e-4, 1e-3], pctStart 0.3, div 5;
  divFinal 1e5, momentum 0.95 → 0.85 → 0.95, cosine pieces, set before every batch at
  position = batches done / batches of the call (fastai's ParamScheduler).
- Optimizer: fastai's Adam = torch AdamW, betas (mom, 0.99), eps 1e-5, decoupled wd 0.01, no weight
  decay on BatchNorm parameters (wdBnBias false; the convolutions and linears have no bias). One
  optimizer for both phases, as the Learner keeps its own.
- Loss: cross-entropy (mean); metric: error rate over the validation set after each epoch.

usage: /usr/bin/python3 bench/e2e_torch.py --split split.json --bs 64 --size 128 --presize 160
       --epochs 1 --threads 2 --workers 2 [--seed 0]
Prints one JSON line: seconds, per-epoch seconds (train, of which waiting for data, and valid), the
final valid loss and error rate.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
from PIL import Image

from train_equivalence_torch import combined_cos  # fastai's one-cycle cosine, already ported there
from torch.utils.data import DataLoader, Dataset


class Files(Dataset):
    """(path, label) pairs, each image decoded from disk on every access."""

    def __init__(self, items, tfm):
        self.items, self.tfm = items, tfm

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        p, y = self.items[i]
        with Image.open(p) as im:
            x = self.tfm(im.convert("RGB"))
        return x, y


class ConcatPool(nn.Module):
    """fastai's AdaptiveConcatPool2d: global max and average, concatenated (max first)."""

    def forward(self, x):
        return torch.cat([F.adaptive_max_pool2d(x, 1), F.adaptive_avg_pool2d(x, 1)], 1)


def make_model(n_out):
    body = torchvision.models.resnet18(weights=None)
    body = nn.Sequential(*list(body.children())[:-2])  # cut before avgpool and fc
    nf = 512
    head = nn.Sequential(
        ConcatPool(), nn.Flatten(),
        nn.BatchNorm1d(2 * nf), nn.Dropout(0.25), nn.Linear(2 * nf, 512, bias=False), nn.ReLU(inplace=True),
        nn.BatchNorm1d(512), nn.Dropout(0.5), nn.Linear(512, n_out, bias=False),
    )
    for m in head.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
    model = nn.Sequential(body, head)
    # visionSplit's groups: stem (conv1, bn1, relu, maxpool) + layer1 + layer2 | layer3 + layer4 | head
    groups = [list(body[:6].modules()), list(body[6:].modules()), list(head.modules())]
    return model, groups


def is_norm(m):
    return isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))


def param_groups(groups, wd):
    """Per layer group: parameters with weight decay, then the BatchNorm ones without (wdBnBias false)."""
    out = []
    for g, mods in enumerate(groups):
        decay, no_decay = [], []
        for m in mods:
            for p in m.parameters(recurse=False):
                (no_decay if is_norm(m) or p.ndim == 1 else decay).append(p)
        out.append({"params": decay, "weight_decay": wd, "layer_group": g})
        out.append({"params": no_decay, "weight_decay": 0.0, "layer_group": g})
    return out


def set_trainable(groups, n_frozen):
    """Freeze layer groups [0, n_frozen), their BatchNorm layers kept trainable (trainBn)."""
    for g, mods in enumerate(groups):
        for m in mods:
            for p in m.parameters(recurse=False):
                p.requires_grad_(g >= n_frozen or is_norm(m))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", required=True)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--presize", type=int, default=160)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(args.split) as f:
        split = json.load(f)
    vocab = split["vocab"]
    label = {c: i for i, c in enumerate(vocab)}

    def items(files):
        # the label is the parent folder's name, as tsfast's parentLabel
        return [(p, label[p.replace("\\", "/").split("/")[-2]]) for p in files]

    t0 = time.perf_counter()
    train_tfm = T.Compose([
        T.Resize(args.presize),
        T.RandomCrop(args.presize),
        T.Resize(args.size),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.RandomAffine(degrees=10, scale=(1.0, 1.1))], p=0.75),
        T.RandomPerspective(distortion_scale=0.2, p=0.75),
        T.RandomApply([T.ColorJitter(brightness=0.2, contrast=0.2)], p=0.75),
        T.ToTensor(),
    ])
    valid_tfm = T.Compose([T.Resize(args.presize), T.CenterCrop(args.presize), T.Resize(args.size), T.ToTensor()])
    # persistent workers (kept between epochs, as tsfast keeps its decoding and augmentation pool)
    keep = args.workers > 0
    train_dl = DataLoader(Files(items(split["train"]), train_tfm), batch_size=args.bs, shuffle=True,
                          drop_last=True, num_workers=args.workers, persistent_workers=keep)
    valid_dl = DataLoader(Files(items(split["valid"]), valid_tfm), batch_size=args.bs, shuffle=False,
                          num_workers=args.workers, persistent_workers=keep)
    model, groups = make_model(len(vocab))
    model = model.to(memory_format=torch.channels_last)
    wd = 0.01
    opt = torch.optim.AdamW(param_groups(groups, wd), lr=1e-3, betas=(0.95, 0.99), eps=1e-5, weight_decay=wd)
    loss_fn = nn.CrossEntropyLoss()
    epochs_log = []

    def validate():
        model.eval()
        loss_sum, wrong, n = 0.0, 0, 0
        with torch.no_grad():
            for xb, yb in valid_dl:
                out = model(xb.contiguous(memory_format=torch.channels_last))
                loss_sum += loss_fn(out, yb).item() * len(yb)
                wrong += (out.argmax(1) != yb).sum().item()
                n += len(yb)
        return loss_sum / n, wrong / n

    def fit_one_cycle(n_epoch, lr_max, pct_start, div, phase, div_final=1e5, moms=(0.95, 0.85, 0.95)):
        n_iter = len(train_dl)
        total = n_epoch * n_iter
        done = 0
        for epoch in range(n_epoch):
            model.train()
            te = time.perf_counter()
            wait = 0.0
            losses = []
            it = iter(train_dl)
            while True:
                tw = time.perf_counter()
                try:
                    xb, yb = next(it)
                except StopIteration:
                    break
                wait += time.perf_counter() - tw
                pos = done / total
                mom = combined_cos(pct_start, *moms, pos)
                for pg in opt.param_groups:
                    lm = lr_max[pg["layer_group"]]
                    pg["lr"] = combined_cos(pct_start, lm / div, lm, lm / div_final, pos)
                    pg["betas"] = (mom, 0.99)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb.contiguous(memory_format=torch.channels_last)), yb)
                loss.backward()
                opt.step()
                losses.append(loss.item())
                done += 1
            tv = time.perf_counter()
            valid_loss, error = validate()
            end = time.perf_counter()
            epochs_log.append({"phase": phase, "train_s": tv - te, "data_wait_s": wait, "valid_s": end - tv,
                               "train_loss": sum(losses) / max(1, len(losses)), "valid_loss": valid_loss,
                               "error_rate": error})

    # fineTune(epochs): fineTuneDefaults = baseLr 2e-3, freezeEpochs 1, lrMult 100, pctStart 0.3, div 5,
    # frozen pctStart 0.99 (frozen phase's div stays fitOneCycle's 25).
    base_lr = 2e-3
    set_trainable(groups, 2)
    fit_one_cycle(1, [base_lr / 10, base_lr / 10, base_lr], 0.99, 25, "frozen")
    base_lr /= 2
    set_trainable(groups, 0)
    lo, hi = base_lr / 100, base_lr
    step = (hi / lo) ** 0.5
    fit_one_cycle(args.epochs, [lo, lo * step, hi], 0.3, 5, "unfrozen")
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "seconds": seconds,
        "epochs": epochs_log,
        "valid_loss": epochs_log[-1]["valid_loss"],
        "error_rate": epochs_log[-1]["error_rate"],
        "n_train": len(split["train"]), "n_valid": len(split["valid"]),
        "threads": torch.get_num_threads(), "workers": args.workers, "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }), flush=True)


if __name__ == "__main__":
    main()
