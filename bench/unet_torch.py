"""PyTorch port of fastai's DynamicUnet over a torchvision ResNet body: tsfast's U-Net reference.

The same architecture as lib/models/unet.ts, written in plain PyTorch after fastai's
vision/models/unet.py (DynamicUnet, UnetBlock, PixelShuffle_ICNR, icnr_init, ResizeToOrig,
SelfAttention, ResBlock, ConvLayer with norm_type=None by default). One documented difference from
fastai, shared with tsfast: SelfAttention's 1x1 convs have no spectral normalisation.

State-dict keys are fastai's (`1.weight` the BatchNorm after the encoder, `3.0.0.weight`,
`4.shuf.0.0.weight`, ...), except the encoder (`0.<child>.`), which `tsfast_state_dict` renames to
torchvision's names, as tsfast's encoder is named.

usage:
  /usr/bin/python3 bench/unet_torch.py fixture OUT_DIR TAG:ARCH:SIZE:BATCH:N_OUT[:opt,...] ...
      seeded random weights (random BatchNorm stats, non-zero self-attention gamma) + an input and
      the eval-mode output: OUT_DIR/TAG.safetensors (tsfast names) and OUT_DIR/TAG.io.safetensors
      (`x` NCHW, `y` NCHW). Options: blur, sa (self-attention), batch (norm_type Batch), bottle,
      yrange, nocross; grads: also the train-mode loss against random `masks`, every parameter's
      gradient in float64 as OUT_DIR/TAG.grads.safetensors (a state dict, tsfast names), and
      `torch32_err`: per tensor, max |float32 grad - float64 grad| / max |float64 grad|, sorted.
The engine bench times this model's training as `bench/torch_ref.py --config unet_resnet18:...`.
"""
import os
import sys

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from pretrain_models import save_safetensors  # noqa: E402

ENCODER_NAMES = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]


def conv_layer(ni, nf, ks=3, act=True, norm=None, xtra=None, init="he"):
    """fastai's ConvLayer: conv (bias only without norm) -> BatchNorm (norm 'batch'/'batchzero') -> ReLU -> xtra."""
    conv = nn.Conv2d(ni, nf, ks, padding=(ks - 1) // 2, bias=norm is None)
    if init == "he":
        nn.init.kaiming_normal_(conv.weight)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
    layers = [conv]
    if norm is not None:
        bn = nn.BatchNorm2d(nf)
        if norm == "batchzero":
            nn.init.zeros_(bn.weight)
        layers.append(bn)
    if act:
        layers.append(nn.ReLU())
    if xtra is not None:
        layers.append(xtra)
    return nn.Sequential(*layers)


def icnr_init(w, scale=2):
    """fastai's icnr_init: one kaiming-normal filter per output channel, repeated for its scale**2 sub-pixels."""
    nf, ni, h, k = w.shape
    base = nn.init.kaiming_normal_(torch.zeros(nf // scale ** 2, ni, h, k))
    return base.repeat_interleave(scale ** 2, dim=0)


class PixelShuffleICNR(nn.Sequential):
    """fastai's PixelShuffle_ICNR(ni, nf, blur) with norm_type None/batch: ConvLayer 1x1 -> PixelShuffle -> blur."""

    def __init__(self, ni, nf=None, blur=False, norm=None):
        nf = ni if nf is None else nf
        layers = [conv_layer(ni, nf * 4, ks=1, norm=norm), nn.PixelShuffle(2)]
        with torch.no_grad():
            layers[0][0].weight.copy_(icnr_init(layers[0][0].weight))
            if layers[0][0].bias is not None:
                layers[0][0].bias.zero_()
        if blur:
            layers += [nn.ReplicationPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, stride=1)]
        super().__init__(*layers)


class SelfAttention(nn.Module):
    """fastai's SelfAttention, without spectral norm on query/key/value."""

    def __init__(self, n):
        super().__init__()
        self.query = conv1d(n, n // 8)
        self.key = conv1d(n, n // 8)
        self.value = conv1d(n, n)
        self.gamma = nn.Parameter(torch.tensor([0.0]))

    def forward(self, x):
        size = x.size()
        x = x.view(*size[:2], -1)
        f, g, h = self.query(x), self.key(x), self.value(x)
        beta = F.softmax(torch.bmm(f.transpose(1, 2), g), dim=1)
        o = self.gamma * torch.bmm(h, beta) + x
        return o.view(*size).contiguous()


def conv1d(ni, nf):
    return nn.Sequential(nn.Conv1d(ni, nf, 1, bias=False))


class UnetBlock(nn.Module):
    """fastai's UnetBlock: shuffle up, resize to the skip, cat with BN(skip), ReLU, two ConvLayers."""

    def __init__(self, up_in_c, x_in_c, final_div=True, blur=False, self_attention=False, norm=None):
        super().__init__()
        self.shuf = PixelShuffleICNR(up_in_c, up_in_c // 2, blur=blur, norm=norm)
        self.bn = nn.BatchNorm2d(x_in_c)
        ni = up_in_c // 2 + x_in_c
        nf = ni if final_div else ni // 2
        self.conv1 = conv_layer(ni, nf, norm=norm)
        self.conv2 = conv_layer(nf, nf, norm=norm, xtra=SelfAttention(nf) if self_attention else None)
        self.relu = nn.ReLU()

    def forward(self, up_in, s):
        up_out = self.shuf(up_in)
        if s.shape[-2:] != up_out.shape[-2:]:
            up_out = F.interpolate(up_out, s.shape[-2:], mode="nearest")
        return self.conv2(self.conv1(self.relu(torch.cat([up_out, self.bn(s)], dim=1))))


class ResBlock(nn.Module):
    """fastai's ResBlock(1, ni, nf) as DynamicUnet builds it (idpath keeps fastai's default BatchNorm)."""

    def __init__(self, ni, nf, norm=None):
        super().__init__()
        norm2 = "batchzero" if norm == "batch" else norm
        self.convpath = nn.Sequential(conv_layer(ni, nf, norm=norm), conv_layer(nf, nf, act=False, norm=norm2))
        self.idpath = nn.Sequential(conv_layer(ni, nf, ks=1, act=False, norm="batch")) if ni != nf else nn.Sequential()
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.convpath(x) + self.idpath(x))


class DynamicUnet(nn.Module):
    """fastai's DynamicUnet on an nn.Sequential encoder; children kept in fastai's Sequential indices."""

    def __init__(self, encoder, n_out, img_size, blur=False, blur_final=True, self_attention=False,
                 y_range=None, last_cross=True, bottle=False, norm=None):
        super().__init__()
        self.y_range = y_range
        with torch.no_grad():
            encoder.eval()
            x = torch.zeros(1, 3, *img_size)
            sizes = []
            for child in encoder:
                x = child(x)
                sizes.append(x.shape)
        widths = [s[-1] for s in sizes]
        self.sz_chg = [i for i in range(len(widths) - 1) if widths[i] != widths[i + 1]][::-1]
        ni = sizes[-1][1]
        layers = [encoder, nn.BatchNorm2d(ni), nn.ReLU(), nn.Sequential(conv_layer(ni, ni * 2, norm=norm), conv_layer(ni * 2, ni, norm=norm))]
        up_c = ni
        for i, idx in enumerate(self.sz_chg):
            not_final = i != len(self.sz_chg) - 1
            blk = UnetBlock(up_c, sizes[idx][1], final_div=not_final, blur=blur and (not_final or blur_final),
                            self_attention=self_attention and i == len(self.sz_chg) - 3, norm=norm)
            layers.append(blk)
            up_c = blk.conv2[0].out_channels
        ni = up_c
        self.n_blocks = len(self.sz_chg)
        self.final_shuf = tuple(sizes[0][-2:]) != tuple(img_size)
        if self.final_shuf:
            layers.append(PixelShuffleICNR(ni, norm=norm))
        layers.append(nn.Identity())  # ResizeToOrig (no parameters)
        self.last_cross = last_cross
        if last_cross:
            layers.append(nn.Identity())  # MergeLayer(dense=True)
            ni += 3
            layers.append(ResBlock(ni, ni // 2 if bottle else ni, norm=norm))
            ni = ni // 2 if bottle else ni
        layers.append(conv_layer(ni, n_out, ks=1, act=False, norm=norm, init="default"))
        self.layers = nn.ModuleList(layers)

    def state_dict_fastai(self):
        """The state dict with fastai's keys (`<index>.<...>`)."""
        return {k[len("layers."):]: v for k, v in self.state_dict().items()}

    def forward(self, inp):
        L = self.layers
        skips = {}
        x = inp
        for i, child in enumerate(L[0]):
            x = child(x)
            skips[i] = x
        x = L[3](L[2](L[1](x)))
        k = 4
        for idx in self.sz_chg:
            x = L[k](x, skips[idx])
            k += 1
        if self.final_shuf:
            x = L[k](x)
            k += 1
        if x.shape[-2:] != inp.shape[-2:]:
            x = F.interpolate(x, inp.shape[-2:], mode="nearest")
        k += 1
        if self.last_cross:
            x = torch.cat([x, inp], dim=1)
            x = L[k + 1](x)
            k += 2
        x = L[k](x)
        if self.y_range is not None:
            lo, hi = self.y_range
            x = torch.sigmoid(x) * (hi - lo) + lo
        return x


def resnet_encoder(arch):
    m = getattr(torchvision.models, arch)()
    return nn.Sequential(*list(m.children())[:-2])


def tsfast_state_dict(model):
    """fastai keys, the encoder's `0.<i>.` renamed to torchvision's names (as tsfast names its encoder)."""
    out = {}
    for k, v in model.state_dict_fastai().items():
        if k.startswith("0."):
            _, i, rest = k.split(".", 2)
            k = f"{ENCODER_NAMES[int(i)]}.{rest}"
        out[k] = v
    return out


def build(arch, size, n_out, opts=()):
    return DynamicUnet(resnet_encoder(arch), n_out, (size, size), blur="blur" in opts, self_attention="sa" in opts,
                       y_range=(-1.0, 2.0) if "yrange" in opts else None, last_cross="nocross" not in opts,
                       bottle="bottle" in opts, norm="batch" if "batch" in opts else None)


def fixture(out, spec):
    tag, arch, size, bs, n_out, *rest = spec.split(":")
    opts = rest[0].split(",") if rest else []
    size, bs, n_out = int(size), int(bs), int(n_out)
    torch.manual_seed(0)
    model = build(arch, size, n_out, opts)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.7)  # self-attention switched on
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        model.train()
        for _ in range(2):
            model(torch.randn(2, 3, size, size) * 1.5 + 0.3)
        model.eval()
        x = torch.rand(bs, 3, size, size)
        y = model(x)
    sd = tsfast_state_dict(model)
    save_safetensors(os.path.join(out, f"{tag}.safetensors"), sd)
    io = {"x": x, "y": y}
    if "grads" in opts:
        # train mode (batch statistics): the pixel cross-entropy against random masks and its
        # gradient for every parameter, saved as a state dict (buffers copied) so it loads like weights
        # ReLU nets sit near kinks, so float32 gradients carry rounding noise; the reference is
        # float64, and PyTorch's own float32 error against it (`torch32_err`) calibrates the test
        masks = torch.randint(0, n_out, (bs, size, size))
        named = {f"layers.{k}": v for k, v in model.state_dict_fastai().items()}
        model.train()
        grads = {}
        for dt in (torch.float32, torch.float64):
            m = model.to(dt)
            m.zero_grad()
            loss = F.cross_entropy(m(x.to(dt)), masks)
            loss.backward()
            grads[dt] = {name: p.grad.detach().clone() for name, p in m.named_parameters()}
            if dt == torch.float32:
                io["loss"] = loss.detach().reshape(1)
        g32, g64 = grads[torch.float32], grads[torch.float64]
        errs = [((g32[n] - g64[n]).abs().max() / g64[n].abs().max().clamp_min(1e-30)).item() for n in g64]
        io.update(masks=masks.float(), torch32_err=torch.tensor(sorted(errs)))
        gsd = {k: (g64[n].float() if n in g64 else named[n]) for k, n in zip(sd.keys(), named.keys())}
        save_safetensors(os.path.join(out, f"{tag}.grads.safetensors"), gsd)
    save_safetensors(os.path.join(out, f"{tag}.io.safetensors"), io)


def main():
    torch.set_num_threads(2)
    if len(sys.argv) < 3 or sys.argv[1] != "fixture":
        sys.exit(__doc__)
    for spec in sys.argv[3:]:
        fixture(sys.argv[2], spec)


if __name__ == "__main__":
    main()
