"""PyTorch side of bench/learner-fit.ts: tsfast's Learner epoch, written as the loop a PyTorch user writes.

torchvision ResNet (channels-last, 10 classes), random in-memory images shuffled each epoch, AdamW as
fastai's Adam (betas (0.9, 0.99), eps 1e-5, weight decay 0.01 except on BatchNorm weights and biases),
two parameter groups (the body at lr/10, the final layer at lr), fastai's one-cycle schedule
(bench/train_equivalence_torch.py's `combined_cos`, lr and beta1 set before every batch), `loss.item()` per
batch, then validation under `no_grad`. The first epoch is warm-up; prints the second's seconds.

usage: /usr/bin/python3 bench/learner_fit_torch.py --arch resnet18 --size 64 --bs 64 --batches 8 --valid-batches 2
       add --serve for a server (bench/alternate.ts): it reads "epoch N" a line on stdin and answers
       {"times": [seconds of each of N epochs], "images": training + validation images an epoch}
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
from train_equivalence_torch import combined_cos  # noqa: E402


def one_cycle(pos, lr_max):
    """fastai's fit_one_cycle defaults: pct_start 0.25, div 25, div_final 1e5, moms (0.95, 0.85, 0.95)."""
    return combined_cos(0.25, lr_max / 25, lr_max, lr_max / 25 / 1e5, pos), combined_cos(0.25, 0.95, 0.85, 0.95, pos)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--valid-batches", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--serve", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models, a.arch)(num_classes=10).to(memory_format=torch.channels_last)
    xt = torch.randn(a.bs * a.batches, 3, a.size, a.size).to(memory_format=torch.channels_last)
    yt = torch.randint(0, 10, (a.bs * a.batches,))
    xv = torch.randn(a.bs * a.valid_batches, 3, a.size, a.size).to(memory_format=torch.channels_last)
    yv = torch.randint(0, 10, (a.bs * a.valid_batches,))

    groups = []
    for names in ([n for n, _ in model.named_parameters() if not n.startswith("fc.")], ["fc.weight", "fc.bias"]):
        params = dict(model.named_parameters())
        decay = [params[n] for n in names if params[n].ndim > 1]
        no_decay = [params[n] for n in names if params[n].ndim <= 1]  # BatchNorm weights and biases
        groups.append([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}])
    lr_scale = [0.1, 1.0]
    opt = torch.optim.AdamW([g for pair in groups for g in pair], lr=a.lr, betas=(0.9, 0.99), eps=1e-5)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch():
        model.train()
        order = torch.randperm(xt.shape[0])
        for i in range(a.batches):
            lr, mom = one_cycle(i / a.batches, a.lr)
            for j, g in enumerate(opt.param_groups):
                g["lr"] = lr * lr_scale[j // 2]
                g["betas"] = (mom, 0.99)
            idx = order[i * a.bs:(i + 1) * a.bs]
            xb, yb = xt[idx].contiguous(memory_format=torch.channels_last), yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            loss.item()
        model.eval()
        total = 0.0
        with torch.no_grad():
            for i in range(a.valid_batches):
                total += loss_fn(model(xv[i * a.bs:(i + 1) * a.bs]), yv[i * a.bs:(i + 1) * a.bs]).item()
        return total

    images = a.bs * (a.batches + a.valid_batches)
    if a.serve:
        for line in sys.stdin:
            words = line.split()
            if len(words) != 2 or words[0] != "epoch" or not words[1].isdigit():
                print(json.dumps({"error": f"unknown command {line.strip()!r} (epoch N)"}), flush=True)
                continue
            ts = []
            for _ in range(int(words[1])):
                t0 = time.perf_counter()
                valid_loss = epoch()
                ts.append(time.perf_counter() - t0)
                assert math.isfinite(valid_loss)
            print(json.dumps({"times": ts, "images": images}), flush=True)
        return
    epoch()
    t0 = time.perf_counter()
    valid_loss = epoch()
    secs = time.perf_counter() - t0
    assert math.isfinite(valid_loss)
    print(json.dumps({"epoch_s": secs, "images": images, "threads": torch.get_num_threads(),
                      "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
