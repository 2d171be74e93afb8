"""PyTorch side of the memory row of bench/engine.ts (bench/memory.ts): peak resident memory of
training torchvision's resnet34 with the bench's recipe (channels_last float32, 10 classes, Adam
lr 1e-3, cross-entropy, random inputs), in this process alone.

Memory is read from /proc/self/status, as on the tsfast side: VmRSS right after the imports (what
Python + torch cost before any model exists) and VmHWM at the end (the peak resident set of this
process image). VmHWM rather than getrusage's ru_maxrss, because Linux carries ru_maxrss over
from the process image before exec, and this process was forked from Node.
Prints one JSON line.

usage: /usr/bin/python3 bench/memory_torch.py --threads 2 --size 128 --bs 32 --warmup 3 --steps 5
"""
import argparse
import json


def status_kib(field):
    """A `Vm*` line of /proc/self/status, in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--arch", default="resnet34")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--bs", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()

    import torch
    import torchvision
    torch.set_num_threads(args.threads)
    baseline = status_kib("VmRSS")

    torch.manual_seed(0)
    x = torch.randn(args.bs, 3, args.size, args.size).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.bs,))
    model = getattr(torchvision.models, args.arch)(num_classes=10).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for _ in range(args.warmup + args.steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"baseline_kib": baseline, "peak_kib": status_kib("VmHWM"), "end_kib": status_kib("VmRSS"),
                      "params": params, "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
