/**
 * Class activation maps against PyTorch: the shipped colour xresnet18, one Twemoji picture, CAM at the
 * body's end and Grad-CAM at two layers, computed by bench/cam_torch.py with the same weights.
 */
process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] || "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { archMeta, xresnet18 } from "../lib/models/archs";
import { shippedCheckpoint, SHIPPED_COLOUR } from "../lib/models/pretrained";
import { camFor, camPng, showCam } from "../lib/interpret/cam";
import { ImageDataLoaders } from "../lib/data/factories";
import { Resize } from "../lib/data/transforms";
import { visionLearner } from "../lib/models/vision";
import "../lib/wiring"; // predict's (and camFor's) preprocessing of a file path, as tsfast's entry point wires it
import { gradientFolder } from "./fixtures/data/make";

const ROOT = path.resolve(__dirname, "..", "..");

/** A Twemoji picture (64 px RGBA, alpha over white), normalised with the checkpoint's stats: NHWC [1, 64, 64, 3]. */
async function picture(mean: number[], std: number[]): Promise<tf.Tensor4D> {
  const pkg = path.dirname(require.resolve("emoji-datasource-twitter/package.json"));
  const file = path.join(pkg, "img", "twitter", "64", "1f415.png"); // a dog
  assert.ok(fs.existsSync(file), file);
  const { data } = await sharp(file).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const x = new Float32Array(64 * 64 * 3);
  for (let p = 0; p < 64 * 64; p++) {
    const a = data[p * 4 + 3]! / 255;
    for (let c = 0; c < 3; c++) x[p * 3 + c] = ((data[p * 4 + c]! / 255) * a + (1 - a) - mean[c]!) / std[c]!;
  }
  return tf.tensor4d(x, [1, 64, 64, 3]);
}

/** max |a − b| over two maps, and max |b|. */
function diff(a: number[][], b: number[][]): { err: number; scale: number } {
  assert.deepEqual([a.length, a[0]!.length], [b.length, b[0]!.length], "map shapes");
  let err = 0;
  let scale = 0;
  a.forEach((row, i) => row.forEach((v, j) => {
    err = Math.max(err, Math.abs(v - b[i]![j]!));
    scale = Math.max(scale, Math.abs(b[i]![j]!));
  }));
  return { err, scale };
}

test("CAM and Grad-CAM of the shipped colour xresnet18 match PyTorch's with the same weights to 1e-4", async () => {
  await ready();
  const file = shippedCheckpoint(SHIPPED_COLOUR);
  const model = await xresnet18({ weights: file });
  const { mean, std } = archMeta(model)!.stats!;
  const x = await picture(mean, std);
  const learn = { model, dls: {} };
  const before = tf.memory().numTensors;
  const cam = await camFor(learn, x, { method: "cam" });
  const g4 = await camFor(learn, x, { layer: "layer4.1.relu", target: cam.target });
  const g3 = await camFor(learn, x, { layer: "layer3.1.relu", target: cam.target });
  assert.equal(tf.memory().numTensors, before, "camFor leaks no tensors and leaves no hook behind");
  assert.equal(cam.layer, "layer4.1.relu", "CAM's default layer is the body's end");
  assert.deepEqual([cam.map.length, cam.map[0]!.length], [2, 2], "64 px / 32");
  assert.deepEqual([g3.map.length, g3.map[0]!.length], [4, 4]);
  const input = { x: x.arraySync(), target: cam.target, layers: ["layer4.1", "layer3.1"] };
  const out = execFileSync("/usr/bin/python3", [path.join(ROOT, "bench", "cam_torch.py"), file], { input: JSON.stringify(input), encoding: "utf8", maxBuffer: 1 << 26 });
  const ref = JSON.parse(out.trim().split("\n").pop()!) as { logits: number[]; cam: number[][]; gradcam: Record<string, number[][]> };
  assert.equal(cam.target, ref.logits.indexOf(Math.max(...ref.logits)), "the predicted class is PyTorch's");
  const report: string[] = [];
  for (const [name, ours, theirs] of [["CAM", cam.map, ref.cam], ["Grad-CAM layer4.1", g4.map, ref.gradcam["layer4.1"]!], ["Grad-CAM layer3.1", g3.map, ref.gradcam["layer3.1"]!]] as const) {
    const { err, scale } = diff(ours, theirs);
    report.push(`${name}: max |diff| ${err.toExponential(2)}, max |map| ${scale.toExponential(2)}`);
    assert.ok(scale > 1e-3, `${name}: a map that is not all zeros`);
    assert.ok(err <= 1e-4, `${name}: max |diff| ${err} over a map of scale ${scale}`);
  }
  console.log(report.join("\n"));
  // the book's observation: at the body's end, Grad-CAM is CAM up to the pooling's 1/(h·w)
  const { err } = diff(g4.map.map((r) => r.map((v) => v * 4)), cam.map);
  assert.ok(err < 1e-4 * 10, `Grad-CAM × 4 vs CAM at the body's end: ${err}`);
  const { png } = await camPng(learn, x, { method: "cam" });
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.width, meta.height], [64, 64], "the overlay is the picture's size");
  x.dispose();
});

test("camFor names what to fix: an unknown layer lists the layers it can map; a layer that is not a map, a bad class, CAM on a mismatched layer", async () => {
  await ready();
  const model = await xresnet18({ weights: shippedCheckpoint(SHIPPED_COLOUR) });
  const learn = { model, dls: { vocab: Array.from({ length: model.outputs[0]!.shape[1]! }, (_, i) => `c${i}`) } };
  const x = tf.zeros([1, 32, 32, 3]);
  await assert.rejects(camFor(learn, x, { layer: "layer9" }), /camFor: the model has no layer "layer9"; layers it can map: .*layer4\.1\.relu/);
  await assert.rejects(camFor(learn, x, { layer: "fc" }), /layer "fc" outputs \[,\d+\], not a \[batch, height, width, channels\] map/);
  await assert.rejects(camFor(learn, x, { target: "cat" }), /no class "cat"; the classes are c0, c1/);
  await assert.rejects(camFor(learn, x, { target: 5000 }), /target 5000 is not a class index/);
  await assert.rejects(camFor(learn, x, { method: "cam", layer: "layer3.1.relu" }), /CAM weighs the 128 channels of layer "layer3\.1\.relu" by the last linear layer "fc", which takes 256 inputs/);
  x.dispose();
});

test("camFor and showCam take a file path through the learner's validation pipeline (a visionLearner on a folder)", async () => {
  await ready();
  const root = await gradientFolder("tsfast-cam-", 40, 2, 5);
  const dls = await ImageDataLoaders.fromFolder(root, { itemTfms: Resize(64), bs: 2 });
  const file = path.join(root, "valid", "b", "0.png");
  const learn = await visionLearner(dls, xresnet18, { pretrained: false, progress: false, archOptions: { widen: 0.25 } });
  assert.equal((await camFor(learn, file)).layer, "layer4.1.relu", "the default layer is the body's end, not the head's pooled 1×1 output");
  const cam = await camFor(learn, file, { target: "b" });
  assert.equal(cam.target, 1);
  assert.equal(cam.label, "b");
  assert.deepEqual([cam.map.length, cam.map[0]!.length], [2, 2], "64 px through a body of stride 32");
  const { png } = await camPng(learn, file, { alpha: 0.6 });
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.width, meta.height, meta.channels], [64, 64, 3], "the overlay is the model's input");
  const shown = await showCam(learn, file);
  assert.equal(shown.method, "gradcam");
  await assert.rejects(camPng(learn, file, { alpha: 2 }), /alpha is the heat map's weight, between 0 and 1; got 2/);
});
