/**
 * The shipped colour backbone (checkpoints/colour-xresnet18-small.safetensors): it loads with its own
 * architecture options and stats, tsfast computes PyTorch's logits from it on Twemoji pictures it
 * never saw, and `pretrained: "shipped"` picks it for colour data and the digits network for grey.
 */
process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] || "wasm";
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { archMeta, resnet34, xresnet18 } from "../lib/models/archs";
import { shippedCheckpoint, SHIPPED_COLOUR, SHIPPED_GREY } from "../lib/models/pretrained";
import { createVisionModel, isGreyBatch, visionLearner } from "../lib/models/vision";
import { ImageDataLoaders } from "../lib/data/factories";
import { Resize } from "../lib/data/transforms";
import { maxDiff } from "./helpers/compare";

const ROOT = path.resolve(__dirname, "..", "..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-colour-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Every 25th Twemoji picture (no Twemoji was used in pretraining) of the transfer task's categories, sorted by file. */
function heldOutPictures(): string[] {
  const pkg = path.dirname(require.resolve("emoji-datasource-twitter/package.json"));
  const results = JSON.parse(fs.readFileSync(path.join(ROOT, "checkpoints", `${SHIPPED_COLOUR}.results.json`), "utf8"));
  const held: string[] = results.task_categories;
  assert.ok(Array.isArray(held) && held.length === 3, "the results file names the transfer task's categories");
  const entries = JSON.parse(fs.readFileSync(path.join(pkg, "emoji.json"), "utf8")) as { image: string; category: string }[];
  return entries
    .filter((e) => held.includes(e.category))
    .map((e) => path.join(pkg, "img", "twitter", "64", e.image))
    .filter((f) => fs.existsSync(f))
    .sort()
    .filter((_f, i) => i % 25 === 0);
}

test("the colour checkpoint gives PyTorch's logits on Twemoji pictures it never saw", async () => {
  await ready();
  const file = shippedCheckpoint(SHIPPED_COLOUR);
  const model = await xresnet18({ weights: file });
  const meta = archMeta(model)!;
  assert.equal(meta.options.nIn, 3);
  assert.equal(meta.options.widen, 0.5);
  const { mean, std } = meta.stats!;
  assert.equal(mean.length, 3);
  const files = heldOutPictures();
  assert.ok(files.length >= 15, `${files.length} pictures`);
  // RGBA as stored (PNG is lossless, so PIL reads the same bytes), alpha over white in float, as the script does
  const x = new Float32Array(files.length * 64 * 64 * 3);
  for (const [n, f] of files.entries()) {
    const { data, info } = await sharp(f).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [64, 64, 4]);
    for (let p = 0; p < 64 * 64; p++) {
      const a = data[p * 4 + 3]! / 255;
      for (let c = 0; c < 3; c++) x[(n * 4096 + p) * 3 + c] = ((data[p * 4 + c]! / 255) * a + (1 - a) - mean[c]!) / std[c]!;
    }
  }
  const logits = tf.tidy(() => model.predict(tf.tensor4d(x, [files.length, 64, 64, 3])) as tf.Tensor);
  const ours = Array.from(logits.dataSync());
  logits.dispose();
  const py = `
import sys, json, numpy as np, torch
from PIL import Image
sys.path.insert(0, ${JSON.stringify(path.join(ROOT, "scripts"))})
from pretrain_models import ResNet, load_safetensors
torch.set_num_threads(1)
sd, meta = load_safetensors(${JSON.stringify(file)})
o = json.loads(meta["tsfast.arch_options"])
m = ResNet("xresnet18", n_in=3, n_out=o["nOut"], widen=o["widen"], stem_szs=o["stemSzs"]); m.load_state_dict(sd); m.eval()
files = json.loads(sys.stdin.read())
x = torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGBA"), dtype=np.float32) / 255 for f in files])).permute(0, 3, 1, 2)
x = x[:, :3] * x[:, 3:] + (1 - x[:, 3:])
x = (x - torch.tensor(json.loads(meta["tsfast.mean"]))[None, :, None, None]) / torch.tensor(json.loads(meta["tsfast.std"]))[None, :, None, None]
with torch.no_grad(): print(json.dumps(m(x).flatten().tolist()))`;
  const theirs = JSON.parse(execFileSync("/usr/bin/python3", ["-c", py], { input: JSON.stringify(files), encoding: "utf8", maxBuffer: 1 << 26 })) as number[];
  assert.equal(ours.length, theirs.length);
  const { diff, scale } = maxDiff(ours, theirs);
  assert.ok(diff <= 1e-4 * Math.max(scale, 1), `max |tsfast - PyTorch| = ${diff} (logits up to ${scale})`);
});

test('pretrained: "shipped" takes the colour network for colour pictures and the digits network for grey ones', async () => {
  await ready();
  const pkg = path.dirname(require.resolve("emoji-datasource-twitter/package.json"));
  const pics = fs.readdirSync(path.join(pkg, "img", "twitter", "64")).sort().slice(0, 8);
  for (const kind of ["colour", "grey"] as const) {
    for (const cls of ["a", "b"]) {
      fs.mkdirSync(path.join(tmp, kind, cls), { recursive: true });
      for (const [i, f] of pics.entries()) {
        let img = sharp(path.join(pkg, "img", "twitter", "64", f)).flatten({ background: "#ffffff" });
        if (kind === "grey") img = img.grayscale();
        await img.png().toFile(path.join(tmp, kind, cls, `${i}.png`));
      }
    }
    const dls = await ImageDataLoaders.fromFolder(path.join(tmp, kind), { validPct: 0.25, itemTfms: Resize(32), bs: 4 });
    const b = await dls.oneBatch({ valid: true });
    assert.equal(isGreyBatch(b.xb), kind === "grey");
    tf.dispose([b.xb, b.yb]);
    const learn = await visionLearner(dls, xresnet18, { pretrained: "shipped" });
    const want = kind === "grey" ? SHIPPED_GREY : SHIPPED_COLOUR;
    assert.equal(path.basename(archMeta(learn.model)!.weightsSource!), `${want}.safetensors`);
    // a Normalize the user added first (per-channel ImageNet stats) does not make grey look colour
    const dls2 = await ImageDataLoaders.fromFolder(path.join(tmp, kind), { validPct: 0.25, itemTfms: Resize(32), bs: 4 });
    dls2.addBatchTfm({ type: "Normalize", mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    const learn2 = await visionLearner(dls2, xresnet18, { pretrained: "shipped" });
    assert.equal(path.basename(archMeta(learn2.model)!.weightsSource!), `${want}.safetensors`, "with the user's Normalize");
    // the same network from scratch, as lesson 1 builds it
    const scratch = await visionLearner(dls, xresnet18, { pretrained: false, archOptions: archMeta(learn.model)!.options });
    assert.equal(scratch.model.countParams(), learn.model.countParams());
  }
  const dls = await ImageDataLoaders.fromFolder(path.join(tmp, "colour"), { validPct: 0.25, itemTfms: Resize(32), bs: 4 });
  await assert.rejects(visionLearner(dls, resnet34, { pretrained: "shipped" }), /the shipped checkpoints are xresnet18s: use xresnet18 .* or pretrained: true for resnet34/);
  await assert.rejects(createVisionModel(xresnet18, 2, { pretrained: "shipped" }), /only visionLearner sees; name the checkpoint instead \("colour-xresnet18-small" or "digits04-xresnet18-tiny"\)/);
});
