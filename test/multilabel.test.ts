process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import { loadLearner } from "../lib/learner/export";
import { BCEWithLogitsLossFlat } from "../lib/learner/losses";
import { accuracyMulti, F1Score, F1ScoreMulti, PrecisionMulti, RecallMulti } from "../lib/learner/metrics";
import { ArrayLoader } from "./helpers/learner-data";

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

// 4 items, 3 labels. Probabilities, and at thresh 0.5 the predicted sets:
//   item 0 [0.9, 0.1, 0.6 ] -> {0, 2}   true {0}
//   item 1 [0.2, 0.8, 0.7 ] -> {1, 2}   true {1, 2}
//   item 2 [0.7, 0.3, 0.1 ] -> {0}      true {2}
//   item 3 [0.4, 0.55, 0.05] -> {1}     true {0, 1, 2}
const PROBS = [[0.9, 0.1, 0.6], [0.2, 0.8, 0.7], [0.7, 0.3, 0.1], [0.4, 0.55, 0.05]];
const TARG = [[1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 1, 1]];
const logit = (p: number) => Math.log(p / (1 - p));

test("F1ScoreMulti, PrecisionMulti and RecallMulti follow sklearn's macro, micro, weighted and samples averages", async () => {
  await ready();
  const p = tf.tensor2d(PROBS);
  const t = tf.tensor2d(TARG);
  const o = { sigmoid: false } as const;
  // per label: 0: tp1 fp1 fn1 (f1 1/2, p 1/2, r 1/2, support 2); 1: tp2 (1, 1, 1, support 2);
  //            2: tp1 fp1 fn2 (f1 2/5, p 1/2, r 1/3, support 3)
  close(F1ScoreMulti(o).compute(p, t), (0.5 + 1 + 0.4) / 3); // fastai's default: macro
  close(PrecisionMulti(o).compute(p, t), (0.5 + 1 + 0.5) / 3);
  close(RecallMulti(o).compute(p, t), (0.5 + 1 + 1 / 3) / 3);
  close(F1ScoreMulti({ ...o, average: "weighted" }).compute(p, t), (0.5 * 2 + 1 * 2 + 0.4 * 3) / 7);
  // pooled: tp 4, fp 2, fn 3
  close(F1ScoreMulti({ ...o, average: "micro" }).compute(p, t), 8 / 13);
  close(PrecisionMulti({ ...o, average: "micro" }).compute(p, t), 4 / 6);
  close(RecallMulti({ ...o, average: "micro" }).compute(p, t), 4 / 7);
  // per item: f1 [2/3, 1, 0, 1/2], precision [1/2, 1, 0, 1], recall [1, 1, 0, 1/3]
  close(F1ScoreMulti({ ...o, average: "samples" }).compute(p, t), (2 / 3 + 1 + 0 + 0.5) / 4);
  close(PrecisionMulti({ ...o, average: "samples" }).compute(p, t), (0.5 + 1 + 0 + 1) / 4);
  close(RecallMulti({ ...o, average: "samples" }).compute(p, t), (1 + 1 + 0 + 1 / 3) / 4);
  // a lower threshold, 0.15: predicted {0, 2}, {0, 1, 2}, {0, 1}, {0, 1} -> per item f1 [2/3, 4/5, 0, 4/5]
  close(F1ScoreMulti({ ...o, average: "samples", thresh: 0.15 }).compute(p, t), (2 / 3 + 0.8 + 0 + 0.8) / 4);
  assert.equal(F1ScoreMulti({ average: "samples" }).name, "f1_score_samples");
  assert.equal(F1ScoreMulti().name, "f1_score_macro");
  tf.dispose([p, t]);
});

test("the multi-label metrics take logits by default (sigmoid first), as the Learner's validation passes them", async () => {
  await ready();
  const logits = tf.tensor2d(PROBS.map((r) => r.map(logit)));
  const t = tf.tensor2d(TARG);
  close(F1ScoreMulti({ average: "samples" }).compute(logits, t), (2 / 3 + 1 + 0 + 0.5) / 4);
  close(F1ScoreMulti().compute(logits, t), (0.5 + 1 + 0.4) / 3);
  // the single-label F1Score reads multi-hot targets the same way (its macro equals F1ScoreMulti's)
  close(F1Score({ average: "macro" }).compute(logits, t), (0.5 + 1 + 0.4) / 3);
  // accuracyMulti: right (item, label) pairs 2 + 3 + 1 + 1 of 12
  close(accuracyMulti().compute(logits, t), 7 / 12);
  close(accuracyMulti({ sigmoid: false }).compute(tf.sigmoid(logits), t), 7 / 12);
  tf.dispose([logits, t]);
});

test("F1ScoreMulti counts an item with no true and no predicted label as 0 (sklearn's zero_division=0) and refuses a bad average", async () => {
  await ready();
  const p = tf.tensor2d([[0.1, 0.2], [0.9, 0.1]]);
  const t = tf.tensor2d([[0, 0], [1, 0]]);
  close(F1ScoreMulti({ sigmoid: false, average: "samples" }).compute(p, t), 0.5);
  assert.throws(() => F1ScoreMulti({ average: "binary" as never }), /average must be "macro", "micro", "weighted" or "samples", got "binary"/);
  assert.throws(() => F1ScoreMulti().compute(tf.tensor2d([[1, 2]]), tf.tensor1d([1])), /same size/);
  tf.dispose([p, t]);
});

test("BCEWithLogitsLossFlat exposes thresh, and decodes uses the value assigned to it", async () => {
  await ready();
  const loss = BCEWithLogitsLossFlat({ thresh: 0.2 });
  assert.equal(loss.thresh, 0.2);
  const probs = tf.tensor2d([[0.1, 0.3, 0.6]]);
  assert.deepEqual(loss.decodes(probs).arraySync(), [[0, 1, 1]]);
  loss.thresh = 0.5;
  assert.deepEqual(loss.decodes(probs).arraySync(), [[0, 0, 1]]);
  assert.equal(BCEWithLogitsLossFlat().thresh, 0.5);
  probs.dispose();
});

/** A multi-label Learner whose model maps the 2×2×1 input [1, 0, 0, 0] to logits [2, -1, -3] exactly. */
function fixedMultiLabelLearner(dir: string): Learner {
  const inp = tf.input({ shape: [2, 2, 1] });
  const flat = tf.layers.flatten().apply(inp) as tf.SymbolicTensor;
  const dense = tf.layers.dense({ units: 3, useBias: false, kernelInitializer: "zeros" });
  const model = tf.model({ inputs: inp, outputs: dense.apply(flat) as tf.SymbolicTensor });
  dense.setWeights([tf.tensor2d([[2, -1, -3], [0, 0, 0], [0, 0, 0], [0, 0, 0]])]);
  const xs = [[1, 0, 0, 0]];
  const ys = [[1, 1, 0]];
  const dls = {
    train: new ArrayLoader(xs, ys, 1, [2, 2, 1], true),
    valid: new ArrayLoader(xs, ys, 1, [2, 2, 1], true),
    vocab: ["cat", "dog", "fish"],
    c: 3,
    isMultiLabel: true,
    inferenceSpec: () => ({ kind: "toy" }),
  };
  return new Learner(dls, model, { progress: false, path: dir });
}

test("multi-label predict returns every label above the loss's threshold and every probability, also after export/loadLearner", async () => {
  await ready();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-multilabel-"));
  try {
    const learn = fixedMultiLabelLearner(dir);
    assert.equal(learn.lossFunc.name, "BCEWithLogitsLossFlat", "multi-label data gets BCE by default");
    const x = tf.tensor3d([1, 0, 0, 0], [2, 2, 1]);
    const sig = (v: number) => 1 / (1 + Math.exp(-v)); // 0.881, 0.269, 0.047
    let r = await learn.predict(x);
    assert.deepEqual(r.labels, ["cat"]); // default thresh 0.5
    assert.equal(r.probs.length, 3);
    r.probs.forEach((p, i) => close(p, sig([2, -1, -3][i]!), 1e-6));
    assert.equal(r.label, "cat");
    // fastai's way to use the chosen threshold: a loss with it (or learn.lossFunc.thresh = ...)
    learn.lossFunc = BCEWithLogitsLossFlat({ thresh: 0.2 });
    r = await learn.predict(x);
    assert.deepEqual(r.labels, ["cat", "dog"]);
    (learn.lossFunc as ReturnType<typeof BCEWithLogitsLossFlat>).thresh = 0.01;
    assert.deepEqual((await learn.predict(x)).labels, ["cat", "dog", "fish"]);
    (learn.lossFunc as ReturnType<typeof BCEWithLogitsLossFlat>).thresh = 0.2;
    const [batch] = await learn.predictBatch(tf.tensor4d([1, 0, 0, 0], [1, 2, 2, 1]));
    assert.deepEqual(batch!.labels, ["cat", "dog"]);
    // the threshold travels with the export
    await learn.export("export");
    const meta = JSON.parse(fs.readFileSync(path.join(dir, "export", "tsfast.json"), "utf8")) as { isMultiLabel: boolean; loss: { thresh: number; activation: string } };
    assert.equal(meta.isMultiLabel, true);
    assert.deepEqual([meta.loss.activation, meta.loss.thresh], ["sigmoid", 0.2]);
    const inf = await loadLearner(path.join(dir, "export"));
    const back = await inf.predict(x);
    assert.deepEqual(back.labels, ["cat", "dog"]);
    back.probs.forEach((p, i) => close(p, r.probs[i]!, 1e-6));
    x.dispose();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
