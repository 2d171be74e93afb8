"""PyTorch twins of tsfast's ResNets, plus a minimal .safetensors reader/writer.

The modules are named exactly like tsfast's tfjs layers (torchvision / timm names), so a state
dict saved here loads into tsfast by lookup, and tsfast's `saveWeights` files load back here.
`deep=True` is fastai's xresnet (= timm's resnet-d): 3-conv stem, avg-pool shortcut, zero-init
last BN of each block. Used by scripts/pretrain_fmnist.py and the tests in test/models*.test.ts.
"""
import json
import struct

import numpy as np
import torch
from torch import nn

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64", torch.bfloat16: "BF16"}
NP = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "F64": np.float64, "I32": np.int32}


def save_safetensors(path, tensors, metadata=None):
    """Write {name: tensor} as .safetensors: u64 header length, JSON header, raw little-endian data."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().astype("<" + t.numpy().dtype.str[1:]).tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    """Read a .safetensors file (F32/F16/I64/...) into ({name: tensor}, metadata)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        arr = np.frombuffer(data[8 + n + a:8 + n + b], dtype=np.dtype(NP[e["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.copy()).reshape(e["shape"])
    return out, meta


def conv_bn(ni, nf, ks=3, stride=1, act=True):
    layers = [nn.Conv2d(ni, nf, ks, stride, ks // 2, bias=False), nn.BatchNorm2d(nf)]
    return layers + ([nn.ReLU(inplace=True)] if act else [])


def _downsample(ni, nf, stride, deep):
    if deep:
        pool = nn.AvgPool2d(stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
        return nn.Sequential(pool, nn.Conv2d(ni, nf, 1, bias=False), nn.BatchNorm2d(nf))
    return nn.Sequential(nn.Conv2d(ni, nf, 1, stride, bias=False), nn.BatchNorm2d(nf))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, ni, planes, stride, deep):
        super().__init__()
        self.conv1 = nn.Conv2d(ni, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if deep:
            nn.init.zeros_(self.bn2.weight)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(ni, planes, stride, deep) if stride != 1 or ni != planes else None

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(out + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, ni, planes, stride, deep):
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(ni, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        if deep:
            nn.init.zeros_(self.bn3.weight)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(ni, out, stride, deep) if stride != 1 or ni != out else None

    def forward(self, x):
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(h + idt)


CONFIGS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2], False),
    "resnet34": (BasicBlock, [3, 4, 6, 3], False),
    "resnet50": (Bottleneck, [3, 4, 6, 3], False),
    "xresnet18": (BasicBlock, [2, 2, 2, 2], True),
    "xresnet34": (BasicBlock, [3, 4, 6, 3], True),
    "xresnet50": (Bottleneck, [3, 4, 6, 3], True),
}


class ResNet(nn.Module):
    """tsfast's `resnetXX` / `xresnetXX` with options n_in, n_out, widen, stem_szs."""

    def __init__(self, arch, n_in=3, n_out=1000, widen=1.0, stem_szs=(32, 32, 64)):
        super().__init__()
        block, layers, deep = CONFIGS[arch]
        if deep:
            s0, s1, s2 = stem_szs
            self.conv1 = nn.Sequential(*conv_bn(n_in, s0, stride=2), *conv_bn(s0, s1), nn.Conv2d(s1, s2, 3, 1, 1, bias=False))
            ni = s2
        else:
            ni = round(64 * widen)
            self.conv1 = nn.Conv2d(n_in, ni, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(ni)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [max(1, round(w * widen)) for w in (64, 128, 256, 512)]
        for i, (n, w) in enumerate(zip(layers, widths)):
            blocks = []
            for j in range(n):
                blocks.append(block(ni, w, 2 if (j == 0 and i > 0) else 1, deep))
                ni = w * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.nf = ni
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(ni, n_out)

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))
