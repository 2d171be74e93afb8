process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import { CancelFitException, CancelBatchException, NonFiniteLossError, type Callback } from "../lib/learner/callback";
import { accuracy } from "../lib/learner/metrics";
import { SGD, slice } from "../lib/learner/optimizer";
import { EarlyStoppingCallback, CSVLogger, SaveModelCallback } from "../lib/learner/callbacks";
import { toyDls, toyModel } from "./helpers/learner-data";
import { tempDir } from "./helpers/tmp";

const tmp = () => tempDir("tsfast-learner-");


test("fit lowers the validation loss, records one row per epoch and leaks no tensors", async () => {
  await ready();
  const dls = toyDls();
  const { model } = toyModel();
  const learn = new Learner(dls, model, { metrics: accuracy, progress: false, lr: 1e-2 });
  await learn.fit(1);
  const before = tf.memory().numTensors;
  await learn.fit(3);
  assert.equal(tf.memory().numTensors, before, "tensor count after fit");
  assert.equal(learn.recorder.values.length, 3);
  assert.equal(learn.recorder.losses.length, 3 * dls.train.length);
  const v = learn.recorder.values;
  assert.ok(v[2]![1]! < v[0]![1]!, `valid loss fell: ${v.map((r) => r[1])}`);
  assert.ok(v[2]![2]! >= 0.7, `accuracy ${v[2]![2]}`);
  assert.deepEqual(learn.recorder.metricNames, ["epoch", "train_loss", "valid_loss", "accuracy", "time"]);
  // validate() agrees with the recorded validation loss of the last epoch (no training since)
  const [vl, acc] = await learn.validate();
  assert.ok(Math.abs(vl! - v[2]![1]!) < 1e-5, `${vl} vs ${v[2]![1]}`);
  assert.ok(Math.abs(acc! - v[2]![2]!) < 1e-9);
});

test("validate() works with a loss given as a plain function (no per-item form) and equals the recorded validation loss", async () => {
  await ready();
  const dls = toyDls({ n: 48, bs: 16 });
  const { model } = toyModel();
  // lesson 10's situation: a loss written by hand as (pred, targ) => scalar
  const meanSquaredLogit = (pred: tf.Tensor, targ: tf.Tensor) => tf.tidy(() => tf.mean(tf.square(tf.sub(pred.slice([0, 1], [-1, 1]).squeeze(), targ.cast("float32")))));
  const learn = new Learner(dls, model, { lossFunc: meanSquaredLogit, metrics: accuracy, progress: false, optFunc: SGD, lr: 0.1 });
  await learn.fit(1);
  const [vl, acc] = await learn.validate();
  const recorded = learn.recorder.values[0]!;
  assert.ok(Math.abs(vl! - recorded[1]!) < 1e-6, `${vl} vs ${recorded[1]}`);
  assert.equal(acc, recorded[2]);
});

test("callbacks see events in fastai's order and sorted by order", async () => {
  await ready();
  const dls = toyDls({ n: 32, bs: 16 });
  const seen: string[] = [];
  const mk = (tag: string, order: number): Callback => ({
    order,
    beforeFit: () => void seen.push(`${tag}:beforeFit`),
    beforeEpoch: () => void seen.push(`${tag}:beforeEpoch`),
    beforeTrain: () => void seen.push(`${tag}:beforeTrain`),
    beforeBatch: (l) => void seen.push(`${tag}:beforeBatch:${l.training ? "t" : "v"}`),
    afterPred: () => void seen.push(`${tag}:afterPred`),
    afterLoss: () => void seen.push(`${tag}:afterLoss`),
    beforeBackward: () => void seen.push(`${tag}:beforeBackward`),
    afterBackward: () => void seen.push(`${tag}:afterBackward`),
    beforeStep: () => void seen.push(`${tag}:beforeStep`),
    afterStep: () => void seen.push(`${tag}:afterStep`),
    afterBatch: async () => void seen.push(`${tag}:afterBatch`),
    afterTrain: () => void seen.push(`${tag}:afterTrain`),
    beforeValidate: () => void seen.push(`${tag}:beforeValidate`),
    afterValidate: () => void seen.push(`${tag}:afterValidate`),
    afterEpoch: () => void seen.push(`${tag}:afterEpoch`),
    afterFit: () => void seen.push(`${tag}:afterFit`),
  });
  const learn = new Learner(dls, toyModel().model, { progress: false, cbs: [mk("B", 5), mk("A", -5)] });
  await learn.fit(1);
  const a = seen.filter((s) => s.startsWith("A:"));
  assert.deepEqual(a, [
    "A:beforeFit", "A:beforeEpoch", "A:beforeTrain",
    ...Array(2).fill(["A:beforeBatch:t", "A:afterPred", "A:afterLoss", "A:beforeBackward", "A:afterBackward", "A:beforeStep", "A:afterStep", "A:afterBatch"]).flat(),
    "A:afterTrain", "A:beforeValidate",
    "A:beforeBatch:v", "A:afterPred", "A:afterLoss", "A:afterBatch",
    "A:afterValidate", "A:afterEpoch", "A:afterFit",
  ]);
  assert.equal(seen[0], "A:beforeFit");
  assert.equal(seen[1], "B:beforeFit");
});

test("CancelBatchException from afterLoss skips the step; CancelFitException stops cleanly", async () => {
  await ready();
  const dls = toyDls({ n: 32, bs: 16 });
  const { model } = toyModel();
  const w0 = model.weights.map((w) => Array.from(w.read().dataSync()));
  const learn = new Learner(dls, model, { progress: false, cbs: [{ afterLoss: (l) => { if (l.training) throw new CancelBatchException(); } }] });
  await learn.fit(1);
  // the handler throws inside the gradient computation: the forward pass's saved tensors are still freed
  const live = tf.memory().numTensors;
  await learn.fit(1);
  assert.equal(tf.memory().numTensors, live, "a cancelled batch leaks nothing");
  const cancelAfterPred = new Learner(dls, toyModel().model, { progress: false, cbs: [{ afterPred: (l) => { if (l.training) throw new CancelBatchException(); } }] });
  await cancelAfterPred.fit(1);
  const live2 = tf.memory().numTensors;
  await cancelAfterPred.fit(1);
  assert.equal(tf.memory().numTensors, live2, "nor one cancelled after the prediction");
  // only BN moving statistics may change (forward pass in training mode); gradient-trained weights stay
  const trainedNames = model.trainableWeights.map((w) => w.originalName);
  model.weights.forEach((w, i) => {
    if (trainedNames.includes(w.originalName)) assert.deepEqual(Array.from(w.read().dataSync()), w0[i], w.originalName);
  });
  let epochs = 0;
  const learn2 = new Learner(dls, toyModel().model, { progress: false, cbs: [{ order: 60, afterEpoch: () => { epochs++; if (epochs === 2) throw new CancelFitException(); } }] });
  await learn2.fit(5);
  assert.equal(learn2.recorder.values.length, 2);
});

test("an exception thrown mid-epoch leaves the learner usable and fit callable again", async () => {
  await ready();
  const dls = toyDls();
  const learn = new Learner(dls, toyModel().model, { progress: false });
  await learn.fit(1);
  const before = tf.memory().numTensors;
  let armed = true;
  const boom: Callback = { afterStep: (l) => { if (armed && l.iter === 1) throw new Error("user interrupt"); } };
  learn.addCbs([boom]);
  await assert.rejects(learn.fit(2), /user interrupt \(in callback callback\.afterStep\)/);
  assert.equal(learn.training, false);
  assert.equal(tf.memory().numTensors, before, "no tensors leaked by the interrupted fit");
  armed = false;
  // two overlapping fits on one learner are refused
  const first = learn.fit(1);
  await assert.rejects(learn.fit(1), /already training/);
  await first;
  await learn.fit(1);
  assert.equal(learn.recorder.values.length, 1);
  assert.equal(tf.memory().numTensors, before);
});

test("a NaN loss stops training naming epoch, batch and lr, with the last state that gave a finite loss", async () => {
  await ready();
  const dls = toyDls();
  const { model } = toyModel();
  const learn = new Learner(dls, model, { progress: false });
  await learn.fit(1);
  let snap: number[][] = [];
  // poison batch 2 of epoch 1 with a NaN input; batch 1 was the last to give a finite loss, so the
  // state it started from comes back (issue 20: the state before the failing step may be broken)
  const poison: Callback = {
    order: -100,
    beforeBatch: (l) => {
      if (l.training && l.epoch === 1 && l.iter === 1) snap = model.weights.map((w) => Array.from(w.read().dataSync()));
      if (l.training && l.epoch === 1 && l.iter === 2) {
        const bad = tf.fill(l.xb!.shape, NaN);
        l.xb!.dispose();
        l.xb = bad;
      }
    },
  };
  await assert.rejects(learn.fit(3, 1e-3, { cbs: [poison] }), (e: unknown) => {
    assert.ok(e instanceof NonFiniteLossError);
    assert.match(e.message, /epoch 1, batch 2 \(lr 1\.000e-3\)/);
    return true;
  });
  model.weights.forEach((w, i) => assert.deepEqual(Array.from(w.read().dataSync()), snap[i], w.originalName));
  await learn.fit(1); // still usable
});

test("freeze leaves body weights unchanged while BN parameters and statistics still move", async () => {
  await ready();
  const dls = toyDls();
  const { model, body, head } = toyModel();
  const learn = new Learner(dls, model, { progress: false, splitter: () => [body, head], lr: 1e-2 });
  learn.freeze();
  const dense1 = body[1]!;
  const bn = body[2]!;
  const d1 = dense1.getWeights().map((w) => Array.from(w.dataSync()));
  const bn0 = bn.getWeights().map((w) => Array.from(w.dataSync()));
  const h0 = head[0]!.getWeights().map((w) => Array.from(w.dataSync()));
  await learn.fit(1);
  assert.deepEqual(dense1.getWeights().map((w) => Array.from(w.dataSync())), d1, "frozen dense unchanged");
  const bn1 = bn.getWeights().map((w) => Array.from(w.dataSync()));
  assert.equal(bn1.length, 4); // gamma, beta, moving mean, moving variance
  // (finite first: NaN weights would differ from the start too)
  bn1.forEach((w, i) => assert.ok(w.every(Number.isFinite) && w.some((v, k) => v !== bn0[i]![k]), `BN weight ${i} moved: ${w}`));
  const h1 = head[0]!.getWeights().map((w) => Array.from(w.dataSync()));
  assert.ok(h1.every((w) => w.every(Number.isFinite)) && h1.some((w, i) => w.some((v, k) => v !== h0[i]![k])), "head moved");
  // trainBn: false freezes BN gamma/beta too (statistics still update, as in PyTorch train mode)
  const m2 = toyModel();
  const l2 = new Learner(dls, m2.model, { progress: false, splitter: () => [m2.body, m2.head], trainBn: false });
  l2.freeze();
  const g0 = m2.body[2]!.getWeights().map((w) => Array.from(w.dataSync()));
  await l2.fit(1);
  const g1 = m2.body[2]!.getWeights().map((w) => Array.from(w.dataSync()));
  assert.deepEqual(g1.slice(0, 2), g0.slice(0, 2));
  assert.ok(g1[2]!.every(Number.isFinite) && g1[2]!.some((v, k) => v !== g0[2]![k]), "moving mean still updates");
  learn.unfreeze();
  await learn.fit(1);
  const d2 = dense1.getWeights().map((w) => Array.from(w.dataSync()));
  assert.ok(d2.every((w) => w.every(Number.isFinite)) && d2.some((w, i) => w.some((v, k) => v !== d1[i]![k])), "unfrozen dense moves");
});

test("discriminative learning rates: slice(lo, hi) spreads geometrically, slice(lr) gives lr/10 to earlier groups", async () => {
  await ready();
  const dls = toyDls();
  const { model, body, head } = toyModel();
  const learn = new Learner(dls, model, { progress: false, splitter: () => [body.slice(0, 2), body.slice(2), head] });
  learn.createOpt();
  learn.setHyper("lr", slice(1e-4, 1e-2));
  learn.opt!.hypers.forEach((h, i) => assert.ok(Math.abs(h.lr - [1e-4, 1e-3, 1e-2][i]!) < 1e-12, `${h.lr}`));
  learn.setHyper("lr", slice(3e-3));
  learn.opt!.hypers.forEach((h, i) => assert.ok(Math.abs(h.lr - [3e-4, 3e-4, 3e-3][i]!) < 1e-15, `${h.lr}`));
  // SGD with a per-group lr: the update of each group's kernel is -lr_g * grad, so lr ratios show in the steps
  const m = toyModel();
  const groups = [m.body.slice(0, 2), m.body.slice(2), m.head];
  const l2 = new Learner(dls, m.model, { progress: false, splitter: () => groups, optFunc: SGD });
  const k1 = Array.from(m.body[1]!.getWeights()[0]!.dataSync());
  const k2 = Array.from(m.head[0]!.getWeights()[0]!.dataSync());
  // one batch at lr 1e-3 / 1e-1 (2 groups apart by 100x) vs the gradient from tf.grads
  const b = (await dls.train[Symbol.asyncIterator]().next()).value as { xb: tf.Tensor; yb: tf.Tensor };
  const kv1 = m.body[1]!.weights[0]!.read() as tf.Variable;
  const kv2 = m.head[0]!.weights[0]!.read() as tf.Variable;
  const { grads } = tf.variableGrads(() => l2.lossFunc.forward(m.model.apply(b.xb, { training: true }) as tf.Tensor, b.yb) as tf.Scalar, [kv1, kv2]);
  const g1 = Array.from(grads[kv1.name]!.dataSync());
  const g2 = Array.from(grads[kv2.name]!.dataSync());
  tf.dispose([b.xb, b.yb, ...Object.values(grads)]);
  assert.ok(g1.every(Number.isFinite) && g2.every(Number.isFinite) && g2.some((g) => g !== 0), "finite, non-zero gradients");
  // That forward pass moved the BN moving statistics; the training-mode forward of the fit below
  // normalises with the batch's own statistics, so its gradients do not depend on them.
  const one = { order: 0, afterBatch: () => { throw new CancelFitException(); } };
  l2.createOpt();
  await l2.fit(1, [1e-3, 1e-2, 1e-1], { cbs: [one] });
  const k1b = Array.from(m.body[1]!.getWeights()[0]!.dataSync());
  const k2b = Array.from(m.head[0]!.getWeights()[0]!.dataSync());
  k1.forEach((w, i) => assert.ok(Math.abs(k1b[i]! - (w - 1e-3 * g1[i]!)) < 1e-6, `group 0 step ${i}`));
  k2.forEach((w, i) => assert.ok(Math.abs(k2b[i]! - (w - 1e-1 * g2[i]!)) < 1e-6, `group 2 step ${i}`));
});

test("EarlyStoppingCallback stops after `patience` epochs without improvement; CSVLogger writes each epoch", async () => {
  await ready();
  const dir = tmp();
  const dls = toyDls();
  const learn = new Learner(dls, toyModel().model, { progress: false, path: dir, metrics: accuracy });
  // lr 0: nothing improves after the first epoch
  await learn.fit(10, 0, { cbs: [new EarlyStoppingCallback({ patience: 2, minDelta: 0.05 }), new CSVLogger()] });
  assert.equal(learn.recorder.values.length, 3);
  const csv = fs.readFileSync(path.join(dir, "history.csv"), "utf8").trim().split("\n");
  assert.equal(csv[0], "epoch,train_loss,valid_loss,accuracy,time");
  assert.equal(csv.length, 4);
  assert.match(csv[1]!, /^0,[0-9.]+,[0-9.]+,[0-9.]+,\d\d:\d\d$/);
});

test("SaveModelCallback keeps the best epoch and reloads it at the end", async () => {
  await ready();
  const dir = tmp();
  const dls = toyDls();
  const { model } = toyModel();
  const learn = new Learner(dls, model, { progress: false, path: dir, lr: 1e-2 });
  let bestW: number[][] = [];
  let best = Infinity;
  const spy: Callback = { order: 55, afterEpoch: (l) => { const v = l.recorder.values.at(-1)![1]!; if (v < best) { best = v; bestW = model.weights.map((w) => Array.from(w.read().dataSync())); } } };
  await learn.fit(3, undefined, { cbs: [spy, new SaveModelCallback()] });
  assert.ok(fs.existsSync(path.join(dir, "models", "model.tsfast")));
  model.weights.forEach((w, i) => assert.deepEqual(Array.from(w.read().dataSync()), bestW[i]));
});

test("a tiny conv net with batch norm trains with fitOneCycle on 8×8 images and leaks no tensors", async () => {
  await ready();
  const { ArrayLoader, rng } = await import("./helpers/learner-data");
  const r = rng(3);
  // class 1: vertical stripes, class 0: horizontal stripes, plus noise (a conv + global pooling can tell)
  const make = (m: number) => {
    const xs: number[][] = [];
    const ys: number[] = [];
    for (let i = 0; i < m; i++) {
      const y = i % 2;
      ys.push(y);
      xs.push(Array.from({ length: 64 }, (_, k) => ((y === 1 ? k % 8 : Math.floor(k / 8)) % 2 ? 0.8 : 0.2) + (r() - 0.5) * 0.3));
    }
    return new ArrayLoader(xs, ys, 8, [8, 8, 1]);
  };
  const dls = { train: make(32), valid: make(16), vocab: ["horizontal", "vertical"], c: 2, isMultiLabel: false };
  const input = tf.input({ shape: [8, 8, 1] });
  let h = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", kernelInitializer: tf.initializers.heNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization().apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU().apply(h) as tf.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
  const learn = new Learner(dls, tf.model({ inputs: input, outputs: out }), { progress: false, metrics: accuracy });
  await learn.fit(1, 1e-3);
  const before = tf.memory().numTensors;
  await learn.fitOneCycle(4, { lrMax: 3e-2 });
  assert.equal(tf.memory().numTensors, before);
  const last = learn.recorder.values.at(-1)!;
  assert.ok(last[2]! >= 0.9, `accuracy ${last[2]}`);
});

test("a multi-label learner defaults to BCEWithLogitsLossFlat; getPreds gives sigmoids and predict lists labels", async () => {
  await ready();
  const { ArrayLoader, rng } = await import("./helpers/learner-data");
  const r = rng(5);
  const make = (m: number) => {
    const xs: number[][] = [];
    const ys: number[][] = [];
    for (let i = 0; i < m; i++) {
      const x = [0, 0, 0, 0].map(() => r() * 2 - 1);
      xs.push(x);
      ys.push([x[0]! > 0 ? 1 : 0, x[1]! > 0 ? 1 : 0, 0]);
    }
    return new ArrayLoader(xs, ys, 16, [2, 2, 1], true);
  };
  const dls = { train: make(64), valid: make(32), vocab: ["a", "b", "c"], c: 3, isMultiLabel: true };
  const { model } = toyModel(3);
  const learn = new Learner(dls, model, { progress: false, lr: 3e-2 });
  assert.equal(learn.lossFunc.name, "BCEWithLogitsLossFlat");
  await learn.fit(8);
  const { preds } = await learn.getPreds();
  const p = preds.dataSync();
  assert.ok(p.every((v) => v > 0 && v < 1));
  preds.dispose();
  const x = tf.tensor3d([0.9, 0.9, 0.1, 0.1], [2, 2, 1]);
  const pr = await learn.predict(x);
  x.dispose();
  assert.deepEqual(pr.labels, ["a", "b"]);
  assert.equal(pr.probs.length, 3);
});

test("trackers minimise losses and errors and maximise other metrics, as fastai's TrackerCallback", () => {
  assert.equal(new EarlyStoppingCallback().comp, "min");
  assert.equal(new EarlyStoppingCallback({ monitor: "error_rate" }).comp, "min");
  assert.equal(new EarlyStoppingCallback({ monitor: "_rmse" }).comp, "min");
  assert.equal(new EarlyStoppingCallback({ monitor: "accuracy" }).comp, "max");
  assert.equal(new SaveModelCallback({ monitor: "f1_score" }).comp, "max");
});

test("the five Cancel*Exceptions share the CancelException base, as fastai's callback/core.py keeps them", async () => {
  const { CancelException, CancelTrainException, CancelValidException, CancelEpochException, isCancel } = await import("../lib/learner/callback");
  for (const E of [CancelBatchException, CancelTrainException, CancelValidException, CancelEpochException, CancelFitException]) {
    const e = new E();
    assert.ok(e instanceof CancelException && isCancel(e), E.name);
  }
  assert.equal(isCancel(new NonFiniteLossError(0, 0, 1e-3, NaN)), false);
});
