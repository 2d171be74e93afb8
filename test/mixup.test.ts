process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import { SGD } from "../lib/learner/optimizer";
import { BCEWithLogitsLossFlat } from "../lib/learner/losses";
import { CutMix, MixUp, cutMixBox, sampleBeta } from "../lib/learner/mixup";
import { Rng } from "../lib/data/random";
import type { Callback } from "../lib/learner/callback";
import type { DataLoadersLike } from "../lib/learner/contracts";
import { ArrayLoader, rng } from "./helpers/learner-data";

/** One batch of `bs` h×w×1 images with labels 0..c-1, training and validation alike. */
function imageDls(bs: number, h: number, w: number, c = 3, multi = false): DataLoadersLike & { train: ArrayLoader } {
  const r = rng(3);
  const xs = Array.from({ length: bs }, () => Array.from({ length: h * w }, () => Math.round((r() * 2 - 1) * 100) / 100));
  const ys = multi ? xs.map((_, i) => Array.from({ length: c }, (_, j) => ((i + j) % 2 === 0 ? 1 : 0))) : xs.map((_, i) => i % c);
  const train = new ArrayLoader(xs, ys, bs, [h, w, 1], multi);
  return { train, valid: new ArrayLoader(xs, ys, bs, [h, w, 1], multi), c, isMultiLabel: multi };
}

/** flatten → dense(c), seeded: logits = x·W + b. */
function linearModel(inputs: number, c = 3): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.flatten({ inputShape: [inputs, 1, 1] }));
  m.add(tf.layers.dense({ units: c, kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }), biasInitializer: tf.initializers.randomNormal({ seed: 6 }) }));
  return m;
}

/** What a training batch looked like to the loss: mixed inputs, targets, logits and the loss. */
function spy(): Callback & { seen: { x: number[][]; y: unknown[]; pred: number[][]; loss: number }[] } {
  const seen: { x: number[][]; y: unknown[]; pred: number[][]; loss: number }[] = [];
  return {
    order: 50,
    runValid: false,
    seen,
    afterLoss: (l) => {
      seen.push({
        x: (l.xb!.reshape([l.xb!.shape[0]!, -1]).arraySync() as number[][]),
        y: l.yb!.arraySync() as unknown[],
        pred: l.pred!.arraySync() as number[][],
        loss: l.lossGrad!.dataSync()[0]!,
      });
    },
  };
}

const ce = (p: number[], y: number) => {
  const m = Math.max(...p);
  return Math.log(p.reduce((s, v) => s + Math.exp(v - m), 0)) + m - p[y]!;
};
const softmax = (p: number[]) => {
  const m = Math.max(...p);
  const e = p.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test("MixUp mixes each image with its partner by max(λ, 1 − λ) and the loss is the λ-mix of both targets' losses; the gradient step follows that loss", async () => {
  await ready();
  const bs = 4;
  const dls = imageDls(bs, 2, 2);
  const x0 = dls.train.xs;
  const y0 = dls.train.ys as number[];
  const lam = [0.2, 0.9, 0.5, 0.65]; // drawn λ; fastai keeps max(λ, 1 − λ)
  const lamUsed = [0.8, 0.9, 0.5, 0.65];
  const perm = [2, 0, 3, 1];
  const model = linearModel(4);
  // reshape input 2×2×1 → the model flattens
  const input = tf.input({ shape: [2, 2, 1] });
  const flat = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
  const dense = model.layers[1]!;
  const net = tf.model({ inputs: input, outputs: dense.apply(flat) as tf.SymbolicTensor });
  const [W0, b0] = dense.getWeights().map((t) => t.arraySync()) as [number[][], number[]];
  const s = spy();
  const learn = new Learner(dls, net, { progress: false, optFunc: SGD, lr: 0.5, cbs: [new MixUp({ draw: () => ({ lam, perm }) }), s] });
  await learn.fit(1);
  const seen = s.seen[0]!;
  // 1. the inputs: λ·x + (1 − λ)·x[perm]
  const xMix = x0.map((x, i) => x.map((v, j) => lamUsed[i]! * v + (1 - lamUsed[i]!) * x0[perm[i]!]![j]!));
  seen.x.forEach((row, i) => row.forEach((v, j) => close(v, xMix[i]![j]!, 1e-6, `x[${i}][${j}]`)));
  assert.deepEqual(seen.y, y0, "class-index targets are not mixed");
  // 2. the logits are those of the mixed inputs
  const logits = xMix.map((x) => b0.map((b, k) => b + x.reduce((acc, v, j) => acc + v * W0[j]![k]!, 0)));
  seen.pred.forEach((row, i) => row.forEach((v, k) => close(v, logits[i]![k]!, 1e-5, `pred[${i}][${k}]`)));
  // 3. loss = mean(λ·CE(p, y) + (1 − λ)·CE(p, y[perm]))
  const want = logits.reduce((acc, p, i) => acc + lamUsed[i]! * ce(p, y0[i]!) + (1 - lamUsed[i]!) * ce(p, y0[perm[i]!]!), 0) / bs;
  close(seen.loss, want, 1e-5, "mixed loss");
  close(learn.recorder.losses[0]!, want, 1e-5, "recorded loss");
  // 4. SGD stepped on that loss: dL/dlogit = (softmax − (λ·onehot(y) + (1 − λ)·onehot(y[perm]))) / bs
  const dlog = logits.map((p, i) => softmax(p).map((q, k) => (q - lamUsed[i]! * (k === y0[i] ? 1 : 0) - (1 - lamUsed[i]!) * (k === y0[perm[i]!] ? 1 : 0)) / bs));
  const [W1, b1] = dense.getWeights().map((t) => t.arraySync()) as [number[][], number[]];
  W1.forEach((row, j) => row.forEach((v, k) => close(v, W0[j]![k]! - 0.5 * xMix.reduce((acc, x, i) => acc + x[j]! * dlog[i]![k]!, 0), 1e-5, `W[${j}][${k}]`)));
  b1.forEach((v, k) => close(v, b0[k]! - 0.5 * dlog.reduce((acc, d) => acc + d[k]!, 0), 1e-5, `b[${k}]`));
  // validation is un-mixed: the validation loss is the plain cross-entropy of the new weights
  const plain = x0.map((x) => b1.map((b, k) => b + x.reduce((acc, v, j) => acc + v * W1[j]![k]!, 0)));
  close(learn.recorder.values[0]![1]!, plain.reduce((a, p, i) => a + ce(p, y0[i]!), 0) / bs, 1e-5, "validation loss on un-mixed data");
});

test("MixUp on multi-hot targets (BCE, no yInt) mixes the targets as fastai does", async () => {
  await ready();
  const dls = imageDls(2, 2, 2, 3, true);
  const y0 = dls.train.ys as number[][];
  const s = spy();
  const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [2, 2, 1] }), tf.layers.dense({ units: 3 })] });
  const learn = new Learner(dls, model, { progress: false, lossFunc: BCEWithLogitsLossFlat(), cbs: [new MixUp({ draw: () => ({ lam: [0.7, 0.1], perm: [1, 0] }) }), s] });
  await learn.fit(1);
  const lamUsed = [0.7, 0.9];
  const want = y0.map((y, i) => y.map((v, k) => lamUsed[i]! * v + (1 - lamUsed[i]!) * y0[1 - i]![k]!));
  (s.seen[0]!.y as number[][]).forEach((row, i) => row.forEach((v, k) => close(v, want[i]![k]!, 1e-6, `y[${i}][${k}]`)));
});

test("CutMix pastes fastai's box of the partner image and weights the two losses by the uncovered share", async () => {
  await ready();
  const bs = 2;
  const dls = imageDls(bs, 4, 4);
  const x0 = dls.train.xs;
  const y0 = dls.train.ys as number[];
  // λ 0.75 → cut 4·√0.25 = 2 pixels, half 1; centre (1, 2) → x [0, 2), y [1, 3): 4 of 16 pixels
  assert.deepEqual(cutMixBox(4, 4, 0.75, 1, 2), [0, 1, 2, 3]);
  assert.deepEqual(cutMixBox(5, 5, 0.64, 0, 4), [0, 3, 1, 5], "clipped at the edges; round(5·0.6) = 3, half 1");
  const perm = [1, 0];
  const s = spy();
  const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3 })] });
  const learn = new Learner(dls, model, { progress: false, cbs: [new CutMix({ draw: () => ({ lam: 0.75, perm, cx: 1, cy: 2 }) }), s] });
  await learn.fit(1);
  const seen = s.seen[0]!;
  const inBox = (j: number) => {
    const r = Math.floor(j / 4);
    const c = j % 4;
    return r >= 1 && r < 3 && c >= 0 && c < 2;
  };
  seen.x.forEach((row, i) => row.forEach((v, j) => assert.equal(v, Math.fround(inBox(j) ? x0[perm[i]!]![j]! : x0[i]![j]!), `x[${i}][${j}]`)));
  const lamBox = 1 - 4 / 16;
  const want = seen.pred.reduce((acc, p, i) => acc + lamBox * ce(p, y0[i]!) + (1 - lamBox) * ce(p, y0[perm[i]!]!), 0) / bs;
  close(seen.loss, want, 1e-5, "CutMix loss");
});

test("sampleBeta draws Beta(α, α): mean 1/2, variance 1/(4(2α + 1))", () => {
  for (const a of [0.4, 1, 3]) {
    const r = new Rng(1);
    const xs = Array.from({ length: 20000 }, () => sampleBeta(r, a, a));
    const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
    const v = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
    close(mean, 0.5, 0.01, `mean at α ${a}`);
    close(v, 1 / (4 * (2 * a + 1)), 0.004, `variance at α ${a}`);
    assert.ok(xs.every((x) => x >= 0 && x <= 1));
  }
});

test("MixUp and CutMix refuse what they cannot mix, naming the fix", async () => {
  await ready();
  const dls = imageDls(2, 2, 2);
  const model = () => tf.sequential({ layers: [tf.layers.flatten({ inputShape: [2, 2, 1] }), tf.layers.dense({ units: 3 })] });
  const plainLoss = (p: tf.Tensor, t: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.cast(t, "int32"), 3), p);
  const noReduction = new Learner(dls, model(), { progress: false, lossFunc: plainLoss, cbs: [new MixUp()] });
  await assert.rejects(noReduction.fit(1), /MixUp mixes per-item losses, but the loss plainLoss has no per-item form .*CrossEntropyLossFlat\(\)/);
  const flatDls = { train: { length: 1, async *[Symbol.asyncIterator]() { yield { xb: tf.ones([2, 4]), yb: tf.tensor1d([0, 1], "int32") }; } }, valid: { length: 0, async *[Symbol.asyncIterator]() {} } };
  const dense = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [4] })] });
  await assert.rejects(new Learner(flatDls, dense, { progress: false, cbs: [new CutMix()] }).fit(1), /CutMix cuts a box out of images: the batch's inputs have shape \[2,4\]; it needs \[batch, height, width, channels\]/);
  await assert.rejects(new Learner(dls, model(), { progress: false, cbs: [new MixUp({ draw: () => ({ lam: [0.5, 0.5], perm: [0, 0] }) })] }).fit(1), /permutation of 0\.\.1, got \[0,0\]/);
  assert.throws(() => new MixUp({ alpha: 0 }), /MixUp: alpha must be a positive number, got 0/);
});

test("a fit with MixUp or CutMix leaks no tensors", async () => {
  await ready();
  const dls = imageDls(4, 4, 4);
  const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3 })] });
  const learn = new Learner(dls, model, { progress: false, cbs: [new MixUp({ seed: 1 }), new CutMix({ seed: 2 })] });
  await learn.fit(1);
  const before = tf.memory().numTensors;
  await learn.fit(2);
  assert.equal(tf.memory().numTensors, before);
});
