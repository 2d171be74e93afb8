/**
 * `predict`, `export` and `loadLearner` for points and masks: points come back in pixels of the
 * original image (through the item transforms and the batch matrix, inverted), masks as class
 * indices at the model's input size plus a grey PNG, and an export predicts what its learner did.
 */
process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import "../lib/wiring";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { CategoryBlock, DataBlock, ImageBlock, MaskBlock, PointBlock, RegressionBlock } from "../lib/data/block";
import { augTransforms } from "../lib/data/augment";
import { Resize } from "../lib/data/transforms";
import { IndexSplitter } from "../lib/data/items";
import { decodeMask, maskToPng } from "../lib/data/mask";
import { Learner } from "../lib/learner/learner";
import { loadLearner } from "../lib/learner/export";
import { Interpretation } from "../lib/interpret/block-results";
import { serve } from "../lib/serve/server";
import { tempDir } from "./helpers/tmp";

async function png(file: string, w: number, h: number, seed: number): Promise<string> {
  const d = new Uint8Array(w * h * 3).map((_, i) => (i * 37 + seed * 11) % 251);
  await sharp(Buffer.from(d), { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
  return file;
}

/** A model whose output ignores its input: zero weights, the bias `out` (a Dense on the flattened picture). */
function constantModel(shape: number[], out: number[]): tf.LayersModel {
  const input = tf.input({ shape });
  const d = tf.layers.dense({ units: out.length, kernelInitializer: "zeros", biasInitializer: tf.initializers.constant({ value: 0 }) });
  const y = d.apply(tf.layers.flatten().apply(input)) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: y });
  d.setWeights([tf.zeros(d.getWeights()[0]!.shape), tf.tensor1d(out)]);
  return model;
}

test("predict gives points in pixels of the original image: a point through the validation pipeline and back lands where it started; export keeps it", async () => {
  await ready();
  const dir = tempDir("tsfast-predict-points-");
  const file = await png(path.join(dir, "wide.png"), 80, 50, 1);
  const other = await png(path.join(dir, "other.png"), 60, 70, 2);
  const pt: [number, number] = [51.25, 17.5];
  const block = new DataBlock<string[], string>({
    blocks: [ImageBlock, PointBlock],
    getY: () => [pt],
    splitter: IndexSplitter([0]),
    itemTfms: Resize(40),
    // minScale < 1: the validation batch is a centred crop, so the batch matrix is not the identity
    batchTfms: augTransforms({ size: 24, minScale: 0.6 }),
  });
  const dls = await block.dataloaders([file, other], { bs: 1 });
  let unit: number[] = [];
  for await (const b of dls.valid) {
    unit = Array.from(await b.yb.data());
    tf.dispose([b.xb, b.yb]);
  }
  assert.ok(unit.every((v) => Math.abs(v) < 1 && v !== 0), `the point is inside the crop, off centre: ${unit}`);
  const learn = new Learner(dls, constantModel([24, 24, 3], unit), { progress: false });
  assert.equal(learn.lossFunc.name, "MSELossFlat");
  const p = await learn.predict(file);
  assert.equal(p.points!.length, 1);
  assert.ok(Math.abs(p.points![0]![0] - pt[0]) < 1e-3 && Math.abs(p.points![0]![1] - pt[1]) < 1e-3, `predicted ${p.points![0]} for ${pt}`);
  assert.deepEqual(p.probs.map((v) => Number(v.toFixed(5))), unit.map((v) => Number(v.toFixed(5))));
  const out = path.join(dir, "export");
  await learn.export(out);
  const loaded = await loadLearner(out);
  const q = await loaded.predict(fs.readFileSync(file));
  assert.deepEqual(q.points, p.points);
  // the server answers with the points too (and no class ranking)
  const h = await serve(out, { port: 0 });
  try {
    const res = await fetch(`${h.url}predict`, { method: "POST", body: new Uint8Array(fs.readFileSync(file)), headers: { "Content-Type": "image/png" } });
    const json = (await res.json()) as { points: [number, number][]; top: unknown[] };
    assert.equal(res.status, 200, JSON.stringify(json));
    assert.ok(Math.abs(json.points[0]![0] - pt[0]) < 1e-3 && Math.abs(json.points[0]![1] - pt[1]) < 1e-3, JSON.stringify(json.points));
    assert.deepEqual(json.top, []);
  } finally {
    await h.close();
  }
  learn.model.dispose();
  loaded.model.dispose();
});

test("predict gives a mask of class indices at the model's input size and its PNG; export and loadLearner predict the same", async () => {
  await ready();
  const dir = tempDir("tsfast-predict-mask-");
  // three vertical stripes: red, green, blue
  const files = [0, 1, 2].map((k) => path.join(dir, `s${k}.png`));
  const stripes = new Uint8Array(20 * 16 * 3);
  for (let p = 0; p < 20 * 16; p++) stripes[3 * p + Math.min(2, Math.floor(((p % 20) * 3) / 20))] = 200;
  for (const f of files) await sharp(Buffer.from(stripes), { raw: { width: 20, height: 16, channels: 3 } }).png().toFile(f);
  const mask = path.join(dir, "m.png");
  fs.writeFileSync(mask, await maskToPng({ data: new Uint8Array(20 * 16).map((_, i) => i % 3), width: 20, height: 16 }));
  const codes = ["background", "sky", "road"];
  const block = new DataBlock<string[], string>({ blocks: [ImageBlock, MaskBlock({ codes })], getY: () => mask, splitter: IndexSplitter([2]), itemTfms: Resize(12) });
  const dls = await block.dataloaders(files, { bs: 2 });
  // a 1×1 convolution whose class k scores channel k: the argmax is the stripe's colour
  const input = tf.input({ shape: [12, 12, 3] });
  const conv = tf.layers.conv2d({ filters: 3, kernelSize: 1 });
  const model = tf.model({ inputs: input, outputs: conv.apply(input) as tf.SymbolicTensor });
  conv.setWeights([tf.reshape(tf.eye(3), [1, 1, 3, 3]), tf.zeros([3])]);
  const learn = new Learner(dls, model, { progress: false });
  assert.equal(learn.lossFunc.name, "CrossEntropyLossFlat");
  const p = await learn.predict(files[2]!);
  const m = p.mask!;
  assert.equal(m.width, 12);
  assert.equal(m.height, 12);
  assert.equal(m.indices.length, 144);
  // the indices are the argmax of the model's per-pixel scores
  const x = await (async () => {
    for await (const b of dls.valid) {
      const s = tf.tidy(() => tf.argMax(model.predict(b.xb) as tf.Tensor, -1));
      const v = Array.from(await s.data());
      tf.dispose([s, b.xb, b.yb]);
      return v;
    }
    return [];
  })();
  assert.deepEqual(m.indices, x);
  assert.deepEqual([...new Set(m.indices)].sort(), [0, 1, 2], "the three stripes");
  const row = m.indices.slice(0, 12);
  assert.ok(row[0] === 0 && row[11] === 2 && row.every((v, i) => i === 0 || v >= row[i - 1]!), `a row crosses red, green, blue: ${row}`);
  const back = await decodeMask(Buffer.from(m.png, "base64"));
  assert.deepEqual(Array.from(back.data), m.indices, "the PNG holds the same indices");
  assert.ok(Math.abs(p.probs.reduce((a, b) => a + b, 0) - 1) < 1e-9, "class shares sum to 1");
  assert.equal(p.label, codes[p.index]);
  const out = path.join(dir, "export");
  await learn.export(out);
  const q = await (await loadLearner(out)).predict(fs.readFileSync(files[2]!));
  assert.deepEqual(q.mask, p.mask);
  // nothing but background: the label is the background, not the first other class
  conv.setWeights([tf.zeros([1, 1, 3, 3]), tf.tensor1d([5, 0, 0])]);
  const bg = await learn.predict(files[2]!);
  assert.deepEqual([bg.label, bg.index, bg.probs.map((v) => Number(v.toFixed(9)))], ["background", 0, [1, 0, 0]]);
  model.dispose();
});

test("a grey learner predicts from one grey channel after export too", async () => {
  await ready();
  const dir = tempDir("tsfast-predict-grey-");
  const files = [0, 1].map((k) => path.join(dir, `g${k}.png`));
  for (const [k, f] of files.entries()) await png(f, 8, 8, k);
  const block = new DataBlock<string[], string>({ blocks: [ImageBlock({ cls: "grey" }), CategoryBlock], getY: (f) => String(files.indexOf(f)), splitter: IndexSplitter([1]) });
  const dls = await block.dataloaders([...files, ...files], { bs: 2 });
  // class 1's score is the mean grey level, class 0's is 0.4
  const input = tf.input({ shape: [8, 8, 1] });
  const pooled = tf.layers.globalAveragePooling2d({}).apply(input) as tf.SymbolicTensor;
  const d = tf.layers.dense({ units: 2 });
  const model = tf.model({ inputs: input, outputs: d.apply(pooled) as tf.SymbolicTensor });
  d.setWeights([tf.tensor2d([[0, 1]]), tf.tensor1d([0.4, 0])]);
  const learn = new Learner(dls, model, { progress: false });
  const p = await learn.predict(files[0]!);
  // PIL's luminance of each pixel (what a grey ImageBlock decodes), averaged
  const rgb = await sharp(files[0]!).raw().toBuffer();
  let sum = 0;
  for (let i = 0; i < rgb.length; i += 3) sum += Math.round((rgb[i]! * 299 + rgb[i + 1]! * 587 + rgb[i + 2]! * 114) / 1000);
  const mean = sum / (rgb.length / 3) / 255;
  const want = [Math.exp(0.4), Math.exp(mean)].map((e, _, a) => e / (Math.exp(0.4) + Math.exp(mean)));
  p.probs.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-5, `probs ${p.probs} vs ${want}`));
  const out = path.join(dir, "export");
  await learn.export(out);
  const q = await (await loadLearner(out)).predict(fs.readFileSync(files[0]!));
  assert.deepEqual(q.probs, p.probs);
  model.dispose();
});

test("a regression target predicts its numbers (after export too); a learner on two inputs cannot export", async () => {
  await ready();
  const dir = tempDir("tsfast-predict-reg-");
  const files = [0, 1].map((k) => path.join(dir, `r${k}.png`));
  for (const [k, f] of files.entries()) await png(f, 8, 8, k);
  const block = new DataBlock<string[], string>({ blocks: [ImageBlock, RegressionBlock], getY: (f) => [files.indexOf(f), 2], splitter: IndexSplitter([1]) });
  const dls = await block.dataloaders(files, { bs: 1 });
  const learn = new Learner(dls, constantModel([8, 8, 3], [0.5, -3]), { progress: false });
  const p = await learn.predict(files[0]!);
  assert.deepEqual(p.values, [0.5, -3]);
  assert.equal(p.index, -1);
  const out = path.join(dir, "export");
  await learn.export(out);
  assert.deepEqual((await (await loadLearner(out)).predict(fs.readFileSync(files[0]!))).values, [0.5, -3]);
  learn.model.dispose();
  const two = new DataBlock<string[], string>({ blocks: [ImageBlock, ImageBlock, RegressionBlock], nInp: 2, getX: [(f) => f, (f) => f], getY: () => [1], splitter: IndexSplitter([1]) });
  const tdls = await two.dataloaders(files, { bs: 1 });
  assert.throws(() => tdls.inferenceSpec(), /export and predict take one image input/);
});

test("Interpretation.plotTopLosses ranks validation items by their loss (hand-computed for points) and draws target and prediction", async () => {
  await ready();
  const dir = tempDir("tsfast-toploss-");
  const pts: [number, number][] = [[5, 5], [16, 16], [30, 2], [20, 12], [9, 28], [31, 31]];
  const files: string[] = [];
  for (const k of pts.keys()) files.push(await png(path.join(dir, `t${k}.png`), 32, 32, k));
  const block = new DataBlock<string[], string>({
    blocks: [ImageBlock, PointBlock],
    getY: (f) => [pts[files.indexOf(f)]!],
    splitter: IndexSplitter([1, 2, 3, 4, 5]),
  });
  const dls = await block.dataloaders(files, { bs: 2 });
  const learn = new Learner(dls, constantModel([32, 32, 3], [0, 0]), { progress: false });
  const interp = await Interpretation.fromLearner(learn);
  const top = await interp.topLosses(3);
  // MSE of a constant (0, 0) prediction: the mean of the point's squared coordinates in [-1, 1]
  const unit = (v: number) => (2 * (v - 0.5)) / 31 - 1;
  const want = [1, 2, 3, 4, 5].map((i) => ({ i: i - 1, l: (unit(pts[i]![0]) ** 2 + unit(pts[i]![1]) ** 2) / 2 })).sort((a, b) => b.l - a.l).slice(0, 3);
  assert.deepEqual(top.map((t) => t.index), want.map((w) => w.i));
  top.forEach((t, r) => assert.ok(Math.abs(t.loss - want[r]!.l) < 1e-5, `loss ${t.loss} vs ${want[r]!.l}`));
  assert.equal(top[0]!.item, files[want[0]!.i + 1]);
  assert.deepEqual(top[0]!.cells[0].titles, ["actual"]);
  assert.match(top[0]!.cells[1].titles[0]!, /^predicted · loss /);
  // the prediction cell has its marker at the picture's centre, the target cell at the point
  const centre = (16 * 32 + 16) * 3; // (0, 0) is pixel 15.5, drawn at 16
  assert.deepEqual(Array.from(top[0]!.cells[1].image!.data.slice(centre, centre + 3)), [1, 0, 0]);
  await interp.plotTopLosses(3);
  learn.model.dispose();
});
