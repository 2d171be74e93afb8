"""PyTorch reference for tsfast's class activation maps (lib/interpret/cam.ts), as the fastai book's
chapter 18 computes them, on a tsfast ResNet checkpoint (scripts/pretrain_models.py's ResNet, the
same architecture and weights, safetensors).

usage:
  /usr/bin/python3 bench/cam_torch.py CHECKPOINT.safetensors < input.json
input.json: {"x": NHWC input (one picture, normalised as the model expects), "target": class index,
             "layers": ["layer4.1", "layer3.1", ...]} (PyTorch module paths)
prints one JSON line: {"logits": [...], "cam": [[...]], "gradcam": {layer: [[...]]}}
  cam     = einsum('k,khw->hw', fc.weight[target], features(x)[0])      (the book's CAM, no bias)
  gradcam = sum_k mean_hw(d logit[target] / d A)[k] * A[k]              (the book's Grad-CAM, no ReLU)
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from pretrain_models import ResNet, load_safetensors  # noqa: E402

torch.set_num_threads(1)


def main():
    sd, meta = load_safetensors(sys.argv[1])
    o = json.loads(meta["tsfast.arch_options"])
    m = ResNet(meta.get("tsfast.arch", "xresnet18"), n_in=o.get("nIn", 3), n_out=o["nOut"], widen=o["widen"], stem_szs=o["stemSzs"])
    m.load_state_dict(sd)
    m.eval()
    req = json.loads(sys.stdin.read())
    x = torch.tensor(req["x"], dtype=torch.float32).permute(0, 3, 1, 2)
    t = req["target"]
    with torch.no_grad():
        act = m.features(x)
        logits = m(x)[0]
        cam = torch.einsum("k,khw->hw", m.fc.weight[t], act[0])
    gradcam = {}
    for name in req["layers"]:
        module = m.get_submodule(name)
        stored = {}

        def fwd(_m, _i, out):
            out.retain_grad()
            stored["a"] = out

        h = module.register_forward_hook(fwd)
        out = m(x)
        h.remove()
        out[0, t].backward()
        a = stored["a"]
        w = a.grad[0].mean(dim=(1, 2), keepdim=True)
        gradcam[name] = (w * a[0]).sum(0).detach().tolist()
        m.zero_grad()
    print(json.dumps({"logits": logits.tolist(), "cam": cam.tolist(), "gradcam": gradcam}))


if __name__ == "__main__":
    main()
