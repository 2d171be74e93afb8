"""PyTorch reference for bench/engine.ts: torchvision ResNet training and inference img/s.

Same recipe as the tfjs side: channels_last float32, 10 classes, Adam (lr 1e-3), cross-entropy,
random inputs; warm-up steps excluded; img/s from the median step time. Prints one JSON line
per config. `unet_resnet18` is bench/unet_torch.py's DynamicUnet (5 classes per pixel).

usage: /usr/bin/python3 bench/torch_ref.py --threads 2 --config resnet18:64:64:8 ...
       (config = arch:size:batch:steps)
"""
import argparse
import json
import time

import torch
import torchvision


def bench(arch, size, bs, steps, warmup):
    torch.manual_seed(0)
    x = torch.randn(bs, 3, size, size).to(memory_format=torch.channels_last)
    if arch.startswith("unet_"):
        # the U-Net port of bench/unet_torch.py, 5 classes per pixel
        from unet_torch import build
        model = build(arch[len("unet_"):], size, 5).to(memory_format=torch.channels_last)
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

    def median_step(fn):
        for _ in range(warmup):
            fn()
        ts = []
        for _ in range(steps):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return sorted(ts)[len(ts) // 2]

    model.train()
    train = bs / median_step(train_step)
    model.eval()
    with torch.no_grad():
        infer = bs / median_step(lambda: model(x).sum().item())
    return train, infer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--config", action="append", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for c in args.config:
        arch, size, bs, steps = c.split(":")
        train, infer = bench(arch, int(size), int(bs), int(steps), args.warmup)
        print(json.dumps({"config": c, "train": train, "infer": infer, "threads": torch.get_num_threads(),
                          "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
