process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import type { Metric } from "../lib/learner/metrics";
import type { Callback } from "../lib/learner/callback";
import { accuracy, accuracyMulti, Dice, DiceMulti, errorRate, F1Score, foregroundAcc, JaccardCoeff, Precision, Recall, rmse } from "../lib/learner/metrics";

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

// 6 items, 3 classes; argmax predictions [0, 1, 2, 1, 0, 2], targets [0, 1, 1, 1, 2, 2]
const PRED = [[3, 1, 0], [0, 2, 1], [0, 1, 5], [1, 4, 0], [2, 1, 1], [0, 0, 9]];
const TARG = [0, 1, 1, 1, 2, 2];

test("accuracy and errorRate count argmax matches over the whole set", async () => {
  await ready();
  const p = tf.tensor2d(PRED);
  const t = tf.tensor1d(TARG, "int32");
  close(accuracy.compute(p, t), 4 / 6);
  close(errorRate.compute(p, t), 2 / 6);
  tf.dispose([p, t]);
});

test("Precision, Recall and F1Score follow sklearn's binary, macro, micro and weighted averages", async () => {
  await ready();
  const p = tf.tensor2d(PRED);
  const t = tf.tensor1d(TARG, "int32");
  // per class: c0 tp1 fp1 fn0; c1 tp2 fp0 fn1; c2 tp1 fp1 fn1
  // precision [1/2, 1, 1/2], recall [1, 2/3, 1/2], f1 [2/3, 4/5, 1/2], support [1, 3, 2]
  close(Precision().compute(p, t), 1);
  close(Recall().compute(p, t), 2 / 3);
  close(F1Score().compute(p, t), 0.8);
  close(Precision({ average: "macro" }).compute(p, t), (0.5 + 1 + 0.5) / 3);
  close(Recall({ average: "macro" }).compute(p, t), (1 + 2 / 3 + 0.5) / 3);
  close(F1Score({ average: "macro" }).compute(p, t), (2 / 3 + 0.8 + 0.5) / 3);
  close(F1Score({ average: "weighted" }).compute(p, t), (2 / 3 + 3 * 0.8 + 2 * 0.5) / 6);
  close(F1Score({ average: "micro" }).compute(p, t), 4 / 6);
  assert.equal(F1Score({ average: "macro" }).name, "f1_score_macro");
  tf.dispose([p, t]);
});

test("accuracyMulti thresholds sigmoid(logits); rmse over all values", async () => {
  await ready();
  // sigmoid > 0.5 ⇔ logit > 0
  const p = tf.tensor2d([[1, -1], [-2, 0.5]]);
  const t = tf.tensor2d([[1, 1], [0, 1]]);
  close(accuracyMulti().compute(p, t), 3 / 4);
  // thresh 0.7: sigmoid(1) = 0.731 → 1, sigmoid(0.5) = 0.62 → 0
  close(accuracyMulti({ thresh: 0.7 }).compute(p, t), 2 / 4);
  const a = tf.tensor1d([1, 2, 3]);
  const b = tf.tensor1d([1, 4, 0]);
  close(rmse.compute(a, b), Math.sqrt((0 + 4 + 9) / 3));
  tf.dispose([p, t, a, b]);
});

// Segmentation: 2 images of 2×3 pixels, 3 classes, channels-last logits; argmax and targets per pixel:
//   predicted  [[0, 1, 1], [2, 2, 0]]  [[1, 1, 0], [0, 2, 2]]
//   target     [[0, 1, 2], [2, 0, 0]]  [[1, 0, 0], [0, 2, 1]]
const SEG_P = [[[0, 1, 1], [2, 2, 0]], [[1, 1, 0], [0, 2, 2]]];
const SEG_T = [[[0, 1, 2], [2, 0, 0]], [[1, 0, 0], [0, 2, 1]]];
const segLogits = () => tf.oneHot(tf.tensor3d(SEG_P, [2, 2, 3], "int32"), 3).mul(5).sub(1); // [2, 2, 3, 3]

test("foregroundAcc counts pixel accuracy off the background class, or off a void code", async () => {
  await ready();
  const p = segLogits();
  const t = tf.tensor3d(SEG_T, [2, 2, 3], "int32");
  // non-0 targets: (1,1)→1 ✓, (2)→1 ✗, (2)→2 ✓ | (1)→1 ✓, (2)→2 ✓, (1)→2 ✗ : 4 of 6
  close(foregroundAcc().compute(p, t), 4 / 6);
  // with 2 as the void code: targets 0 or 1: 0→0 ✓, 1→1 ✓, 0→2 ✗, 0→0 ✓ | 1→1 ✓, 0→1 ✗, 0→0 ✓, 0→0 ✓, 1→2 ✗ : 6 of 9
  close(foregroundAcc({ bkgIdx: 2 }).compute(p, t), 6 / 9);
  close(foregroundAcc().compute(p, tf.reshape(t, [2, 2, 3, 1])), 4 / 6, 0); // [n, h, w, 1] masks too
  assert.ok(Number.isNaN(foregroundAcc().compute(p, tf.zerosLike(t))), "no foreground: NaN, as fastai");
  assert.throws(() => foregroundAcc().compute(p, tf.zeros([2, 2, 2], "int32")), /12 predicted pixels but 8 target pixels/);
  tf.dispose([p, t]);
});

test("Dice, DiceMulti and JaccardCoeff match hand-counted overlaps", async () => {
  await ready();
  const p = segLogits();
  const t = tf.tensor3d(SEG_T, [2, 2, 3], "int32");
  // class 0: predicted 4, target 6, both 4; class 1: predicted 4, target 3, both 2; class 2: predicted 4, target 3, both 2
  close(Dice().compute(p, t), (2 * 2) / (4 + 3));
  close(JaccardCoeff().compute(p, t), 2 / (4 + 3 - 2));
  close(DiceMulti().compute(p, t), ((2 * 4) / 10 + (2 * 2) / 7 + (2 * 2) / 7) / 3);
  // a class in neither predictions nor targets is left out of DiceMulti's mean
  const p4 = tf.concat([p, tf.fill([2, 2, 3, 1], -9)], -1);
  close(DiceMulti().compute(p4, t), ((2 * 4) / 10 + (2 * 2) / 7 + (2 * 2) / 7) / 3);
  tf.dispose([p, t, p4]);
});

test("additive metrics: per-batch sums and counts over uneven batches give compute's value over all items; the Learner's validation and validate() agree with getPreds", async () => {
  await ready();
  const { perplexity, MetricTotals } = await import("../lib/learner/metrics");
  // a language model's shape: [n, seq, vocab] logits, [n, seq] targets, batches of 3, 3 and 1 rows
  const pred = tf.randomNormal([7, 5, 6], 0, 2, "float32", 11);
  const targ = tf.randomUniform([7, 5], 0, 6, "int32", 12);
  const rows = [[0, 3], [3, 3], [6, 1]] as const;
  const multi = accuracyMulti({ thresh: 0.3 });
  for (const m of [accuracy, errorRate, perplexity, rmse, multi]) {
    assert.ok(m.additive, `${m.name} is additive`);
    const [p, t] = m === rmse ? [tf.reshape(pred, [7, 30]), tf.randomNormal([7, 30], 0, 1, "float32", 13)] : m === multi ? [tf.reshape(pred, [7, 30]), tf.randomUniform([7, 30], 0, 2, "int32", 14)] : [pred, targ];
    const totals = new MetricTotals([m]);
    for (const [b, n] of rows) totals.add(tf.slice(p, b, n), tf.slice(t, b, n));
    const [got] = totals.values();
    const want = m.compute(p, t);
    assert.ok(Math.abs(got! - want) < 1e-5 * Math.max(1, Math.abs(want)), `${m.name}: batches ${got} vs all ${want}`);
  }
  assert.equal(new MetricTotals([accuracy, perplexity]).keepsPreds, false, "no predictions kept for these");
  assert.equal(new MetricTotals([accuracy, F1Score()]).keepsPreds, true, "F1 needs them all");
  assert.throws(() => new MetricTotals([F1Score()]).values(), /no predictions were kept/);

  // through a Learner: validation (in fit and validate()) equals the metrics over getPreds
  const { Learner } = await import("../lib/learner/learner");
  const { tensorDataLoaders } = await import("../lib/data/tensors");
  const x = tf.randomNormal([20, 4], 0, 1, "float32", 15);
  const y = tf.randomUniform([20], 0, 3, "int32", 16);
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) })] });
  const learn = new Learner(tensorDataLoaders([x, y], [x, y], { bs: 6, shuffle: false }), model, { metrics: [accuracy, perplexity, F1Score({ average: "macro" })], progress: false });
  await learn.fit(1, 1e-2);
  const { preds, targs } = await learn.getPreds({ act: false });
  const want = [accuracy.compute(preds, targs), perplexity.compute(preds, targs), F1Score({ average: "macro" }).compute(preds, targs)];
  const inFit = learn.metricValues!;
  const fromValidate = (await learn.validate()).slice(1);
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(inFit[i]! - want[i]!) < 1e-5, `fit's metric ${i}: ${inFit[i]} vs ${want[i]}`);
    assert.ok(Math.abs(fromValidate[i]! - want[i]!) < 1e-5, `validate's metric ${i}: ${fromValidate[i]} vs ${want[i]}`);
  }
  tf.dispose([preds, targs]);
  learn.dispose();

  // memory: with additive metrics only, validation holds no tensor per batch; with F1, two per batch (preds, targets)
  const grows = async (metrics: Metric[]) => {
    const seen: number[] = [];
    const m2 = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3 })] });
    const l2 = new Learner(tensorDataLoaders([x, y], [x, y], { bs: 6, shuffle: false }), m2, {
      metrics, progress: false, cbs: { afterBatch: (l: { training: boolean }) => void (!l.training && seen.push(tf.memory().numTensors)) } as unknown as Callback,
    });
    await l2.fit(1, 1e-2);
    l2.dispose();
    return seen.slice(1).map((n, i) => n - seen[i]!);
  };
  assert.deepEqual(await grows([accuracy, perplexity]), [0, 0, 0]);
  assert.deepEqual(await grows([accuracy, F1Score()]), [2, 2, 2]);
});
