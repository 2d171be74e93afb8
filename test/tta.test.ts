process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import type { BatchLike, DataLoaderLike } from "../lib/learner/contracts";
import { TensorDataLoader } from "../lib/data/tensors";
import { ImageDataLoaders } from "../lib/data/factories";
import { augTransforms } from "../lib/data/augment";
import { Resize } from "../lib/data/transforms";
import * as path from "node:path";
import { gradientFolder } from "./fixtures/data/make";

/**
 * A loader whose "training transform" adds the pass number: a training-mode copy yields x + 1 on its
 * first epoch, x + 2 on its second, ...; in validation mode x itself. Like the data floor's loaders,
 * `new({ train: true })` gives the training transforms on the same items.
 */
class ShiftLoader implements DataLoaderLike {
  private epoch = 0;
  readonly made: { train?: boolean; shuffle?: boolean }[] = [];
  constructor(
    readonly xs: number[][],
    readonly ys: number[],
    readonly bs: number,
    readonly train = false,
  ) {}
  get length(): number {
    return Math.ceil(this.xs.length / this.bs);
  }
  new(opts: { train?: boolean; shuffle?: boolean }): ShiftLoader {
    this.made.push(opts);
    return new ShiftLoader(this.xs, this.ys, this.bs, opts.train ?? this.train);
  }
  async *[Symbol.asyncIterator](): AsyncIterator<BatchLike> {
    const shift = this.train ? ++this.epoch : 0;
    for (let i = 0; i < this.xs.length; i += this.bs) {
      const x = this.xs.slice(i, i + this.bs);
      yield { xb: tf.tensor2d(x.map((r) => r.map((v) => v + shift))), yb: tf.tensor1d(this.ys.slice(i, i + this.bs), "int32") };
    }
  }
}

const softmax = (p: number[]) => {
  const m = Math.max(...p);
  const e = p.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

test("tta averages n passes with the TRAINING transforms and blends them with the plain pass: lerp(mean(aug), plain, beta), as fastai", async () => {
  await ready();
  const xs = [[0.5, -1], [2, 0.25], [-0.75, 1.5], [0, 0], [1, 1]];
  const ys = [0, 1, 1, 0, 1];
  const valid = new ShiftLoader(xs, ys, 2);
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [2] })] });
  const [W, b] = [[[0.3, -0.2, 0.1], [-0.4, 0.5, 0.2]], [0.05, -0.1, 0]];
  model.layers[0]!.setWeights([tf.tensor2d(W), tf.tensor1d(b)]);
  const learn = new Learner({ train: valid, valid }, model, { progress: false });
  const probs = (x: number[], k: number) => softmax(b.map((bb, j) => bb + (x[0]! + k) * W[0]![j]! + (x[1]! + k) * W[1]![j]!));
  const before = tf.memory().numTensors;
  const r = await learn.tta({ n: 3 });
  assert.deepEqual(r.preds.shape, [5, 3]);
  assert.deepEqual(Array.from(r.targs.dataSync()), ys);
  const got = r.preds.arraySync();
  xs.forEach((x, i) => {
    const aug = [1, 2, 3].map((k) => probs(x, k));
    const want = [0, 1, 2].map((j) => 0.75 * ((aug[0]![j]! + aug[1]![j]! + aug[2]![j]!) / 3) + 0.25 * probs(x, 0)[j]!);
    want.forEach((v, j) => assert.ok(Math.abs(got[i]![j]! - v) < 1e-6, `item ${i} class ${j}: ${got[i]![j]} vs ${v}`));
  });
  // fastai's dl.new(shuffled=False, drop_last=False), training transforms for the passes, validation ones for the plain pass
  assert.deepEqual(valid.made, [{ train: true, shuffle: false, dropLast: false }, { train: false, shuffle: false, dropLast: false }]);
  // beta 1 is the plain prediction; useMax the element-wise max of all passes
  const plain = await learn.tta({ n: 2, beta: 1 });
  plain.preds.arraySync().forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - probs(xs[i]!, 0)[j]!) < 1e-6)));
  const mx = await learn.tta({ n: 2, useMax: true });
  mx.preds.arraySync().forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - Math.max(probs(xs[i]!, 0)[j]!, probs(xs[i]!, 1)[j]!, probs(xs[i]!, 2)[j]!)) < 1e-6)));
  tf.dispose([r.preds, r.targs, plain.preds, plain.targs, mx.preds, mx.targs]);
  assert.equal(tf.memory().numTensors, before);
});

test("tta with beta null returns the mean of the augmented passes and the plain predictions unblended (fastai's (aug_preds, preds)); their lerp at 0.25 is the default call", async () => {
  await ready();
  const xs = [[0.5, -1], [2, 0.25], [-0.75, 1.5], [0, 0], [1, 1]];
  const ys = [0, 1, 1, 0, 1];
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [2] })] });
  const [W, b] = [[[0.3, -0.2, 0.1], [-0.4, 0.5, 0.2]], [0.05, -0.1, 0]];
  model.layers[0]!.setWeights([tf.tensor2d(W), tf.tensor1d(b)]);
  const probs = (x: number[], k: number) => softmax(b.map((bb, j) => bb + (x[0]! + k) * W[0]![j]! + (x[1]! + k) * W[1]![j]!));
  // a fresh loader per call, so that each call's augmented passes are epochs 1..n of its own training copy
  const learnOn = () => new Learner({ train: new ShiftLoader(xs, ys, 2), valid: new ShiftLoader(xs, ys, 2) }, model, { progress: false });
  const before = tf.memory().numTensors;
  const split = await learnOn().tta({ n: 3, beta: null });
  assert.deepEqual(split.augPreds.shape, [5, 3]);
  assert.deepEqual(split.preds.shape, [5, 3]);
  assert.deepEqual(Array.from(split.targs.dataSync()), ys);
  const aug = split.augPreds.arraySync();
  const plain = split.preds.arraySync();
  xs.forEach((x, i) => {
    const ps = [1, 2, 3].map((k) => probs(x, k));
    [0, 1, 2].forEach((j) => {
      assert.ok(Math.abs(aug[i]![j]! - (ps[0]![j]! + ps[1]![j]! + ps[2]![j]!) / 3) < 1e-6, `augPreds item ${i} class ${j}`);
      assert.ok(Math.abs(plain[i]![j]! - probs(x, 0)[j]!) < 1e-6, `preds item ${i} class ${j}`);
    });
  });
  const blended = await learnOn().tta({ n: 3 });
  const lerp = tf.tidy(() => tf.add(split.augPreds, tf.mul(tf.sub(split.preds, split.augPreds), 0.25)));
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(lerp, blended.preds))).dataSync()[0]!);
  assert.ok(diff < 1e-6, `lerp(augPreds, preds, 0.25) vs tta(): max difference ${diff}`);
  // useMax ignores beta, as fastai: one blended tensor, no augPreds
  const mx = await learnOn().tta({ n: 3, beta: null, useMax: true });
  assert.equal("augPreds" in mx, false);
  assert.deepEqual(mx.preds.shape, [5, 3]);
  tf.dispose([split.augPreds, split.preds, split.targs, blended.preds, blended.targs, lerp, mx.preds, mx.targs]);
  assert.equal(tf.memory().numTensors, before);
});

test("tta with the training transforms on a loader that has none says to pass augment: \"flip\"; bad n and beta are refused", async () => {
  await ready();
  const dl = new TensorDataLoader(tf.ones([4, 2, 2, 1]), tf.tensor1d([0, 1, 0, 1], "int32"), { bs: 2 });
  const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [2, 2, 1] }), tf.layers.dense({ units: 2 })] });
  const learn = new Learner({ train: dl, valid: dl }, model, { progress: false });
  await assert.rejects(learn.tta(), /tta: this loader has no training transforms to apply .*pass augment: "flip"/);
  const r = await learn.tta({ augment: "flip" });
  assert.deepEqual(r.preds.shape, [4, 2]);
  tf.dispose([r.preds, r.targs]);
  await assert.rejects(learn.tta({ augment: "flip", n: 0 }), /n is the number of augmented passes, a whole number ≥ 1; got 0/);
  await assert.rejects(learn.tta({ augment: "flip", beta: 1.5 }), /beta is the weight of the plain predictions, between 0 and 1, or null for both predictions unblended; got 1\.5/);
});

test("tta on ImageDataLoaders runs the training transforms (augTransforms) on the validation images: pass i is the i-th epoch of dls.valid.new({ train: true })", async () => {
  await ready();
  const root = await gradientFolder("tsfast-tta-", 16, 3, 9);
  const dls = await ImageDataLoaders.fromFolder(root, { itemTfms: Resize(16), batchTfms: augTransforms({ size: 12 }), bs: 4, seed: 1 });
  const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [12, 12, 3] }), tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })] });
  const learn = new Learner(dls, model, { progress: false });
  const r = await learn.tta({ n: 2 });
  assert.deepEqual(r.preds.shape, [6, 2]);
  // by hand: two epochs of a training-mode copy of the validation loader, then the plain predictions
  const aug = dls.valid.new({ train: true, shuffle: false, dropLast: false });
  const p0 = await learn.getPreds({ dl: aug });
  const p1 = await learn.getPreds({ dl: aug });
  const plain = await learn.getPreds();
  const want = tf.tidy(() => tf.add(tf.mul(tf.div(tf.add(p0.preds, p1.preds), 2), 0.75), tf.mul(plain.preds, 0.25)));
  const got = r.preds.dataSync();
  want.dataSync().forEach((v, i) => assert.ok(Math.abs(got[i]! - v) < 1e-6, `${got[i]} vs ${v}`));
  const moved = tf.tidy(() => tf.max(tf.abs(tf.sub(p0.preds, plain.preds))).dataSync()[0]!);
  assert.ok(moved > 1e-4, `the training transforms changed the predictions (max change ${moved})`);
  assert.deepEqual(Array.from(r.targs.dataSync()), Array.from(plain.targs.dataSync()));
  tf.dispose([r.preds, r.targs, p0.preds, p0.targs, p1.preds, p1.targs, plain.preds, plain.targs, want]);
});
