"""PyTorch reference for bench/engine.ts: torchvision ResNet training and inference img/s.

Same recipe as the tfjs side: channels_last float32, 10 classes, Adam (lr 1e-3), cross-entropy,
random inputs; warm-up steps excluded; img/s from the median step time. Prints one JSON line
per config. `unet_resnet18` is bench/unet_torch.py's DynamicUnet (5 classes per pixel).

usage: /usr/bin/python3 bench/torch_ref.py --threads 2 --config resnet18:64:64:8 ...
       (config = arch:size:batch:steps)
       /usr/bin/python3 bench/torch_ref.py --threads 2 --serve resnet18:64:64
       (a server for bench/alternate.ts: reads "train N" or "infer N" a line on stdin and answers
       {"times": [seconds of each of N steps]}, so that the two sides' steps can run in turns)
"""
import argparse
import json
import sys
import time

import torch
import torchvision


def build(arch, size, bs):
    """The model, one batch, and its train and inference steps (each returns a Python float)."""
    torch.manual_seed(0)
    x = torch.randn(bs, 3, size, size).to(memory_format=torch.channels_last)
    if arch.startswith("unet_"):
        # the U-Net port of bench/unet_torch.py, 5 classes per pixel
        from unet_torch import build as build_unet
        model = build_unet(arch[len("unet_"):], size, 5).to(memory_format=torch.channels_last)
        y = torch.randint(0, 5, (bs, size, size))
    else:
        model = getattr(torchvision.models, arch)(num_classes=10).to(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (bs,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    def infer_step():
        with torch.no_grad():
            return model(x).sum().item()

    return model, train_step, infer_step


def timed(fn, n):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def bench(arch, size, bs, steps, warmup):
    model, train_step, infer_step = build(arch, size, bs)

    def median_step(fn):
        timed(fn, warmup)
        return sorted(timed(fn, steps))[steps // 2]

    model.train()
    train = bs / median_step(train_step)
    model.eval()
    infer = bs / median_step(infer_step)
    return train, infer


def serve(config):
    """Answers "train N" / "infer N" on stdin with the N steps' seconds, until stdin closes."""
    arch, size, bs = config.split(":")[:3]
    model, train_step, infer_step = build(arch, int(size), int(bs))
    for line in sys.stdin:
        words = line.split()
        if len(words) != 2 or words[0] not in ("train", "infer") or not words[1].isdigit():
            print(json.dumps({"error": f"unknown command {line.strip()!r} (train N | infer N)"}), flush=True)
            continue
        model.train(words[0] == "train")
        ts = timed(train_step if words[0] == "train" else infer_step, int(words[1]))
        print(json.dumps({"times": ts}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--config", action="append")
    ap.add_argument("--serve", metavar="ARCH:SIZE:BATCH")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.serve:
        serve(args.serve)
        return
    if not args.config:
        ap.error("give --config arch:size:batch:steps (one or more) or --serve arch:size:batch")
    for c in args.config:
        arch, size, bs, steps = c.split(":")
        train, infer = bench(arch, int(size), int(bs), int(steps), args.warmup)
        print(json.dumps({"config": c, "train": train, "infer": infer, "threads": torch.get_num_threads(),
                          "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
