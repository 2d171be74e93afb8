"""Pretrain tsfast's offline colour backbone, then measure how it transfers to a held-out colour task.

    /usr/bin/python3 scripts/pretrain_colour.py                  # fetch the data, pretrain, transfer (as shipped)
    /usr/bin/python3 scripts/pretrain_colour.py --skip-pretrain  # transfer only (checkpoint untouched)

The data, only pictures under free licences (nothing of it ships with tsfast; the script fetches it
into --data, default $TSFAST_HOME/pretrain-colour, with npm and apt-get when it is missing):
- Google's Noto emoji, 64x64 PNG from npm `emoji-datasource-google` 16.0.0 (images Apache-2.0),
  and OpenMoji, npm `openmoji` 17.0.0 (CC BY-SA 4.0; SVG, rendered to 64x64 PNG with tsfast's
  sharp), both labelled by their Unicode emoji subgroup (`face-smiling`, `country-flag`, `sport`, ...).
  Not Apple's or Facebook's emoji: emoji-datasource says Apple's are not licensed for commercial use
  and Facebook's have no clear licence;
- the 64x64 PNG icons of Debian's `oxygen-icon-theme` (LGPL-3+), labelled by their context folder
  (`icon-apps`, `icon-devices`, `icon-mimetypes`, ...).

Held out of pretraining: every Twemoji picture (npm `emoji-datasource-twitter`, the vendor tsfast's
tests and lessons use), so the transfer task below comes from a source the backbone never saw. With
`--hold-out-categories` the task's three categories are also left out of pretraining, of every vendor
(new classes as well as a new source), for an ablation (not part of the shipped checkpoint).

1. Pretrain `xresnet18({ widen: 0.5, stemSzs: [16, 16, 32], nIn: 3 })` (scripts/pretrain_models.py,
   the same layout and tensor names as tsfast's) at 64x64 with one-cycle AdamW; augmentation:
   alpha composited onto white or a random colour, random zoom-crop, rotation and flip. Every 10th
   picture is held out to measure accuracy.
2. Save checkpoints/colour-xresnet18-small.safetensors with tsfast metadata (test/models-colour.test.ts
   checks that tsfast computes PyTorch's logits from it).
3. Transfer, the recipe of lesson 1 on your own colour folder: the 508 Twemoji pictures of three
   categories (animals & nature, food & drink, travel & places), one class folder each, a seeded 20 % validation split; fastai's
   `fine_tune(3)` at base lr 1e-2, batch 16, fastai's head, against the same network from scratch
   with `fit_one_cycle(4)` at 1e-2. Also with 20 training pictures per class. Results go to
   checkpoints/colour-xresnet18-small.results.json (summarised in checkpoints/MODEL_CARD.md).

Fixed seeds; the shipped checkpoint was made with the defaults (40 epochs, 2 threads).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from pretrain_models import ResNet, save_safetensors, load_safetensors  # noqa: E402
from pretrain_fmnist import make_learner_model, set_frozen, fit_one_cycle, accuracy, fine_tune  # noqa: E402
import pretrain_fmnist  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
NAME = "colour-xresnet18-small"
ARCH, ARCH_OPTS = "xresnet18", {"widen": 0.5, "stemSzs": [16, 16, 32]}
SIZE = 64
VENDORS = ["google"]  # emoji-datasource vendors whose images have a free licence (twitter: the transfer task)
EMOJI_VERSION = "16.0.0"
OPENMOJI_VERSION = "17.0.0"
LICENSE = "CC-BY-SA-4.0"  # the weights' licence: OpenMoji's share-alike (Noto: Apache-2.0, Oxygen: LGPL-3+)
TASK = ["Animals & Nature", "Food & Drink", "Travel & Places"]  # the transfer task's classes (Twemoji)
SKIPPED = ["Component"]  # five flat skin-tone swatches
SKIN_VARIANTS = 2  # skin-tone variants kept per emoji (they are recoloured copies)


def fetch_data(data):
    """npm's emoji packages and Debian's oxygen icons into `data`, once."""
    os.makedirs(data, exist_ok=True)
    pk = [f"emoji-datasource-{v}@{EMOJI_VERSION}" for v in VENDORS] + [f"openmoji@{OPENMOJI_VERSION}"]
    if not all(os.path.isdir(os.path.join(data, "node_modules", p.rsplit("@", 1)[0])) for p in pk):
        subprocess.run(["npm", "install", "--prefix", data, "--no-audit", "--no-fund", *pk], check=True)
    rendered = os.path.join(data, f"openmoji-{OPENMOJI_VERSION}-{SIZE}")
    if not os.path.isdir(rendered):
        # SVG → 64x64 RGBA PNG with the sharp (librsvg) tsfast uses; into a temporary folder, renamed when complete
        js = """
const sharp = require(process.argv[1]); const fs = require("fs"), path = require("path");
const [src, dst, size] = [process.argv[2], process.argv[3], Number(process.argv[4])];
(async () => { for (const f of fs.readdirSync(src).filter((f) => f.endsWith(".svg")).sort())
  await sharp(path.join(src, f), { density: 72 * 4 }).resize(size, size).png().toFile(path.join(dst, f.replace(/\\.svg$/, ".png"))); })()
  .catch((e) => { console.error(e); process.exit(1); });"""
        tmp = rendered + ".part"
        os.makedirs(tmp, exist_ok=True)
        subprocess.run(["node", "-e", js, os.path.join(ROOT, "node_modules", "sharp"),
                        os.path.join(data, "node_modules", "openmoji", "color", "svg"), tmp, str(SIZE)], check=True)
        os.rename(tmp, rendered)
    icons = os.path.join(data, "oxygen", "usr", "share", "icons", "oxygen", "base", "64x64")
    if not os.path.isdir(icons):
        subprocess.run(["apt-get", "download", "oxygen-icon-theme"], cwd=data, check=True)
        deb = [f for f in os.listdir(data) if f.startswith("oxygen-icon-theme") and f.endswith(".deb")][0]
        subprocess.run(["dpkg-deb", "-x", deb, "oxygen"], cwd=data, check=True)
    return icons


def load_rgba(path):
    im = Image.open(path).convert("RGBA")
    if im.size != (SIZE, SIZE):
        im = im.resize((SIZE, SIZE), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def pretraining_items(data, icons, held_out):
    """(path, label) of every pretraining picture, in a fixed order; emoji categories `held_out` left out."""
    items = []
    for v in VENDORS:
        pkg = os.path.join(data, "node_modules", f"emoji-datasource-{v}")
        with open(os.path.join(pkg, "emoji.json")) as f:
            entries = json.load(f)
        for e in sorted(entries, key=lambda e: e["image"]):
            if e["category"] in held_out or e["category"] in SKIPPED or not e.get(f"has_img_{v}"):
                continue
            files = [e["image"]] + [s["image"] for s in list((e.get("skin_variations") or {}).values())[:SKIN_VARIANTS]
                                    if s.get(f"has_img_{v}")]
            for fn in files:
                p = os.path.join(pkg, "img", v, "64", fn)
                if os.path.exists(p):
                    items.append((p, e["subcategory"]))
    with open(os.path.join(data, "node_modules", "openmoji", "data", "openmoji.json")) as f:
        openmoji = json.load(f)
    rendered = os.path.join(data, f"openmoji-{OPENMOJI_VERSION}-{SIZE}")
    groups = {"smileys-emotion": "Smileys & Emotion", "people-body": "People & Body", "animals-nature": "Animals & Nature",
              "food-drink": "Food & Drink", "travel-places": "Travel & Places", "activities": "Activities",
              "objects": "Objects", "symbols": "Symbols", "flags": "Flags"}  # Unicode's groups; not OpenMoji's extras
    for e in sorted(openmoji, key=lambda e: e["hexcode"]):
        p = os.path.join(rendered, e["hexcode"] + ".png")
        if e["group"] in groups and groups[e["group"]] not in held_out and not e["skintone"] and os.path.exists(p):
            items.append((p, e["subgroups"]))
    for ctx in sorted(os.listdir(icons)):
        files = sorted(f for f in os.listdir(os.path.join(icons, ctx)) if f.endswith(".png"))
        if len(files) < 10:
            continue
        items += [(os.path.join(icons, ctx, f), f"icon-{ctx}") for f in files]
    return items


def composite(rgba, bg):
    """uint8 NHWC RGBA → float NCHW RGB in [0, 1], alpha over `bg` (N×3 in [0, 1])."""
    x = rgba.permute(0, 3, 1, 2).float() / 255
    a = x[:, 3:4]
    return x[:, :3] * a + bg[:, :, None, None] * (1 - a)


def random_affine(x, g, scale_lo, scale_span, max_angle, padding):
    """Per picture: a zoom-crop of scale_lo + U(0, scale_span), a rotation of up to ±max_angle (radians), a flip."""
    n = x.shape[0]
    s = scale_lo + scale_span * torch.rand(n, generator=g)
    ang = (torch.rand(n, generator=g) * 2 - 1) * max_angle
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    tx = (torch.rand(n, generator=g) * 2 - 1) * (1 - s)
    ty = (torch.rand(n, generator=g) * 2 - 1) * (1 - s)
    cos, sin = torch.cos(ang) * s, torch.sin(ang) * s
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def augment(rgba, g):
    """Alpha over white (half) or a random colour, then a random zoom-crop (60-100 %), ±15° and a flip."""
    n = rgba.shape[0]
    bg = torch.where(torch.rand(n, 1, generator=g) < 0.5, torch.ones(n, 3), torch.rand(n, 3, generator=g))
    return random_affine(composite(rgba, bg), g, 0.6, 0.4, math.pi / 12, "border")


def white(rgba):
    return composite(rgba, torch.ones(rgba.shape[0], 3))


def twemoji(categories):
    """(path, category) of the Twemoji pictures of `categories`, sorted by file name."""
    pkg = os.path.join(ROOT, "node_modules", "emoji-datasource-twitter")
    with open(os.path.join(pkg, "emoji.json")) as f:
        entries = json.load(f)
    out = []
    for e in sorted(entries, key=lambda e: e["image"]):
        p = os.path.join(pkg, "img", "twitter", "64", e["image"])
        if e["category"] in categories and e.get("has_img_twitter") and os.path.exists(p):
            out.append((p, e["category"]))
    return out


def pretrain(args, results):
    icons = fetch_data(args.data)
    held_out = TASK if args.hold_out_categories else []
    items = pretraining_items(args.data, icons, held_out)
    vocab = sorted({lab for _, lab in items})
    t0 = time.time()
    x = torch.from_numpy(np.stack([load_rgba(p) for p, _ in items]))
    y = torch.tensor([vocab.index(lab) for _, lab in items])
    print(f"{len(items)} pictures, {len(vocab)} classes, loaded in {time.time() - t0:.0f} s", flush=True)
    hold = torch.zeros(len(items), dtype=torch.bool)
    hold[::10] = True
    xtr, ytr, xte, yte = x[~hold], y[~hold], x[hold], y[hold]
    w = white(xtr[:2000])
    mean = [round(v, 4) for v in w.mean((0, 2, 3)).tolist()]
    std = [round(v, 4) for v in w.std((0, 2, 3)).tolist()]
    norm = (torch.tensor(mean)[None, :, None, None], torch.tensor(std)[None, :, None, None])
    torch.manual_seed(0)
    net = ResNet(ARCH, n_in=3, n_out=len(vocab), widen=ARCH_OPTS["widen"], stem_szs=ARCH_OPTS["stemSzs"]).to(memory_format=torch.channels_last)
    t0 = time.time()
    pretrain_fmnist.groups, backup = (lambda m: [list(m.parameters())]), pretrain_fmnist.groups  # one group
    fit_one_cycle(net, xtr, ytr, args.epochs, [args.pretrain_lr], 128, norm, aug=augment, wd=0.05, seed=0, verbose=True)
    pretrain_fmnist.groups = backup
    acc = accuracy(net, white(xte), yte, norm)
    n_noto = sum(1 for p, _ in items if "emoji-datasource-google" in p)
    n_open = sum(1 for p, _ in items if "openmoji" in p)
    desc = (f"{n_noto} Noto emoji (npm emoji-datasource-google {EMOJI_VERSION}, Apache-2.0) and {n_open} OpenMoji (npm openmoji "
            f"{OPENMOJI_VERSION}, CC BY-SA 4.0){'; categories ' + ', '.join(held_out) + ' left out' if held_out else ''}, and {len(items) - n_noto - n_open} icons of Debian "
            f"oxygen-icon-theme (LGPL-3+), {len(vocab)} classes; accuracy on every 10th picture, held out")
    results["held_out_categories"] = held_out
    results["pretrain"] = {"data": desc, "pictures": len(items), "classes": len(vocab), "epochs": args.epochs,
                           "lr": args.pretrain_lr, "test_accuracy": round(acc, 4), "test_pictures": int(hold.sum()),
                           "seconds": round(time.time() - t0), "stats": {"mean": mean, "std": std}}
    print(f"held-out accuracy {acc:.4f} after {args.epochs} epochs ({time.time() - t0:.0f} s)", flush=True)
    meta = {"tsfast.arch": ARCH, "tsfast.arch_options": json.dumps({**ARCH_OPTS, "nIn": 3, "nOut": len(vocab)}),
            "tsfast.mean": json.dumps(mean), "tsfast.std": json.dumps(std), "tsfast.size": str(SIZE),
            "tsfast.vocab": json.dumps(vocab), "tsfast.dataset": desc, "tsfast.test_accuracy": f"{acc:.4f}",
            "tsfast.license": LICENSE}
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_safetensors(os.path.join(args.out, f"{NAME}.safetensors"), sd, meta)


def augment_target(x, g):
    """The transfer's augmentation (on RGB already on white): random zoom-crop 75-100 %, ±10°, flip."""
    return random_affine(x, g, 0.75, 0.25, math.pi / 18, "reflection")


def transfer(args, results, epochs=3, lr=1e-2, bs=16, seeds=(0, 1, 2, 3)):
    sd, meta = load_safetensors(os.path.join(args.out, f"{NAME}.safetensors"))
    mean, std = json.loads(meta["tsfast.mean"]), json.loads(meta["tsfast.std"])
    norm = (torch.tensor(mean)[None, :, None, None], torch.tensor(std)[None, :, None, None])
    n_pre = len(json.loads(meta["tsfast.vocab"]))
    items = twemoji(TASK)
    x = white(torch.from_numpy(np.stack([load_rgba(p) for p, _ in items])))
    y = torch.tensor([TASK.index(c) for _, c in items])
    results["task_categories"] = TASK
    results["transfer"] = {"task": f"Twemoji (npm emoji-datasource-twitter) of {', '.join(TASK)}: {len(items)} pictures, "
                                   "one class each; on white, 64x64",
                           "recipe": f"fine_tune({epochs}) at base lr {lr}, bs {bs}, vs fit_one_cycle({epochs + 1}) from scratch",
                           "runs": []}
    for setting in ("all", "20-per-class"):
        for seed in seeds:
            g = torch.Generator().manual_seed(1000 + seed)
            perm = torch.randperm(len(items), generator=g)
            nv = round(len(items) * 0.2)
            va, tr = perm[:nv], perm[nv:]
            if setting == "20-per-class":
                tr = torch.cat([tr[y[tr] == c][:20] for c in range(len(TASK))])
            torch.manual_seed(100 + seed)
            pre = ResNet(ARCH, n_in=3, n_out=n_pre, widen=ARCH_OPTS["widen"], stem_szs=ARCH_OPTS["stemSzs"])
            pre.load_state_dict(sd)
            m = make_learner_model(pre, len(TASK)).to(memory_format=torch.channels_last)
            t0 = time.time()
            fine_tune_aug(m, x[tr], y[tr], epochs, lr, bs, norm, seed)
            s_pre = time.time() - t0
            a_pre = accuracy(m, x[va], y[va], norm)
            torch.manual_seed(100 + seed)
            scratch = ResNet(ARCH, n_in=3, n_out=len(TASK), widen=ARCH_OPTS["widen"], stem_szs=ARCH_OPTS["stemSzs"])
            m2 = make_learner_model(scratch, len(TASK)).to(memory_format=torch.channels_last)
            set_frozen(m2, False)
            t0 = time.time()
            fit_one_cycle(m2, x[tr], y[tr], epochs + 1, [lr] * 3, bs, norm, aug=augment_target, seed=seed)
            s_scr = time.time() - t0
            a_scr = accuracy(m2, x[va], y[va], norm)
            run = {"setting": setting, "seed": seed, "train_pictures": len(tr), "valid_pictures": len(va),
                   "pretrained_error": round(1 - a_pre, 4), "scratch_error": round(1 - a_scr, 4),
                   "pretrained_s": round(s_pre, 1), "scratch_s": round(s_scr, 1)}
            results["transfer"]["runs"].append(run)
            print(run, flush=True)
        runs = [r for r in results["transfer"]["runs"] if r["setting"] == setting]
        mean = {k: round(sum(r[k] for r in runs) / len(runs), 4) for k in ("pretrained_error", "scratch_error")}
        results["transfer"].setdefault("mean", {})[setting] = mean
        print(setting, "mean", mean, flush=True)


def fine_tune_aug(model, xs, ys, epochs, base_lr, bs, norm, seed, freeze_epochs=1, lr_mult=100):
    """fastai's fine_tune (pretrain_fmnist.fine_tune) with the transfer's augmentation."""
    fine_tune(model, xs, ys, epochs, base_lr, bs, norm, freeze_epochs=freeze_epochs, lr_mult=lr_mult, seed=seed, aug=augment_target)


def main():
    ap = argparse.ArgumentParser()
    home = os.environ.get("TSFAST_HOME") or os.path.join(os.path.expanduser("~"), ".tsfast")
    ap.add_argument("--data", default=os.path.join(home, "pretrain-colour"))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--pretrain-lr", type=float, default=4e-3)
    ap.add_argument("--out", default=os.path.join(ROOT, "checkpoints"))
    ap.add_argument("--skip-pretrain", action="store_true")
    ap.add_argument("--hold-out-categories", action="store_true", help="leave the transfer task's categories out of pretraining (the ablation)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    results_file = os.path.join(args.out, f"{NAME}.results.json")
    results = {}
    if args.skip_pretrain and os.path.exists(results_file):
        with open(results_file) as f:
            results = json.load(f)
    if not args.skip_pretrain:
        pretrain(args, results)
    transfer(args, results)
    with open(results_file, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
