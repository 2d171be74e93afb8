"""The PIL/torchvision reference for bench/data.ts: decode + resize + augment + batch, in img/s.

Usage: /usr/bin/python3 bench/data_torch.py <folder> <epochs> <bs> <workers>
Prints one JSON line: {"imgs_per_s": ..., "n": ...}. The pipeline mirrors tsfast's presizing
recipe: Resize(460) + RandomCrop(460) per item, then a RandomResizedCrop(224, scale 0.75-1),
flip, rotate/zoom, perspective warp, brightness/contrast, ToTensor, Normalize.
"""
import json
import resource
import sys
import time

import torch
import torchvision.transforms as T
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder


def main():
    folder, epochs, bs, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(2)
    torch.manual_seed(0)
    tfm = T.Compose([
        T.Resize(460),
        T.RandomCrop(460),
        T.RandomResizedCrop(224, scale=(0.75, 1.0), ratio=(1.0, 1.0)),
        T.RandomHorizontalFlip(),
        T.RandomAffine(degrees=10, scale=(1.0, 1.1)),
        T.RandomPerspective(distortion_scale=0.2, p=0.75),
        T.ColorJitter(brightness=0.2, contrast=0.2),
        T.ToTensor(),
        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    ds = ImageFolder(folder, transform=tfm)
    dl = DataLoader(ds, batch_size=bs, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=False)
    for xb, yb in dl:  # warm-up epoch (worker start, caches)
        pass
    n = 0
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in dl:
            n += xb.shape[0]
    dt = time.perf_counter() - t0
    # Workers are joined at the end of each epoch, so their CPU time is in RUSAGE_CHILDREN.
    cpu = cpu_seconds() - cpu0
    print(json.dumps({"imgs_per_s": n / dt, "imgs_per_cpu_s": n / cpu, "n": n, "seconds": dt, "cpu_seconds": cpu}))


def cpu_seconds():
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


if __name__ == "__main__":
    main()
