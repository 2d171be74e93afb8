/**
 * The learner never keeps a broken model and a refused call changes nothing (issue 20, items 4
 * and 5): a NaN stop or a divergence restores the last finite state (weights, BatchNorm statistics,
 * optimizer state); `predict` refuses NaN; a second `fit`/`fitOneCycle`/`fineTune`/`lrFind` while
 * one runs is refused before it touches the learning rate, the frozen groups or the weights.
 * Tiny dense models on the cpu backend, a few batches each.
 */
process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import { NonFiniteLossError, TrainingDivergedError, type Callback } from "../lib/learner/callback";
import { disposeState } from "../lib/learner/optimizer";
import { toyDls, toyModel } from "./helpers/learner-data";

/** Every weight's values (BatchNorm moving statistics included). */
function weightsOf(model: tf.LayersModel): number[][] {
  return model.weights.map((w) => Array.from(w.read().dataSync()));
}

function allFinite(xs: number[][]): boolean {
  return xs.every((x) => x.every(Number.isFinite));
}

/** A callback recording the weights at the start of every training batch of the fit, by batch. */
function recordBatches(model: tf.LayersModel): Callback & { seen: Map<string, number[][]> } {
  const seen = new Map<string, number[][]>();
  return {
    order: -100,
    seen,
    beforeBatch: (l) => {
      if (l.training) seen.set(`${l.epoch}/${l.iter}`, weightsOf(model));
    },
  };
}

test("fit(1, 1e5) stops and restores the last finite state: weights, BatchNorm statistics and optimizer state; predict still answers", async () => {
  await ready();
  const { model } = toyModel();
  const learn = new Learner(toyDls(), model, { progress: false });
  const rec = recordBatches(model);
  let stop: NonFiniteLossError | undefined;
  await assert.rejects(learn.fit(1, 1e5, { cbs: [rec] }), (e: unknown) => {
    assert.ok(e instanceof NonFiniteLossError, String(e));
    stop = e;
    return true;
  });
  // The state restored is the one the last accepted batch started from (the fit's start for batch 0).
  const key = `${stop!.epoch}/${Math.max(0, stop!.batch - 1)}`;
  const expected = rec.seen.get(key);
  assert.ok(expected, `no weights recorded for ${key}`);
  assert.ok(allFinite(expected), "the recorded state is finite"); // else NaN weights would equal it
  assert.deepEqual(weightsOf(model), expected);
  const st = learn.opt!.stateDict();
  try {
    for (const p of st.params) for (const t of Object.values(p.tensors)) assert.ok(Array.from(t.dataSync()).every(Number.isFinite));
  } finally {
    disposeState(st);
  }
  const pred = await learn.predict(tf.zeros([2, 2, 1]));
  assert.ok(pred.probs.every(Number.isFinite), `predict returned ${pred.probs}`);
  await learn.fit(1, 1e-3); // and it trains on
  assert.ok(allFinite(weightsOf(model)));
});

test("fitOneCycle with lrMax 1e3 is stopped as divergence, not finished with exploded weights", async () => {
  await ready();
  const { model } = toyModel();
  const learn = new Learner(toyDls({ n: 128 }), model, { progress: false });
  await assert.rejects(learn.fitOneCycle(2, { lrMax: 1e3 }), (e: unknown) => {
    assert.ok(e instanceof NonFiniteLossError, String(e));
    assert.match((e as Error).message, /restored to the last state that gave a finite loss/);
    return true;
  });
  const ws = weightsOf(model);
  assert.ok(allFinite(ws));
  const biggest = Math.max(...ws.flat().map(Math.abs));
  assert.ok(biggest < 1e6, `a weight of ${biggest} was kept`);
  const [validLoss] = await learn.validate();
  assert.ok(Number.isFinite(validLoss) && validLoss! < 1e6, `validation loss ${validLoss}`); // the issue saw 1.2e15
});

test("a NaN gradient with a finite loss stops training (TrainingDivergedError) and restores the weights", async () => {
  await ready();
  const { model } = toyModel();
  // CE plus 0·sqrt(|p − p|): the value is CE's, the gradient of sqrt at 0 makes every gradient NaN.
  const ce = (p: tf.Tensor, t: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.cast(t, "int32"), 2), p);
  const lossFunc = (p: tf.Tensor, t: tf.Tensor) => tf.add(ce(p, t), tf.mul(tf.mean(tf.sqrt(tf.abs(tf.sub(p, p)))), 0));
  const learn = new Learner(toyDls(), model, { progress: false, lossFunc });
  const start = weightsOf(model);
  await assert.rejects(learn.fit(1, 1e-3), (e: unknown) => {
    assert.ok(e instanceof TrainingDivergedError, String(e));
    assert.match((e as Error).message, /a gradient is NaN or infinite/);
    return true;
  });
  assert.deepEqual(weightsOf(model), start);
});

test("predict refuses to answer with NaN probabilities", async () => {
  await ready();
  const { model } = toyModel();
  const learn = new Learner(toyDls(), model, { progress: false });
  const w = model.weights[0]!;
  const nan = tf.fill(w.shape as number[], NaN);
  w.write(nan);
  nan.dispose();
  await assert.rejects(learn.predict(tf.zeros([2, 2, 1])), /NaN or infinite values .* no label can be trusted/);
});

test("a refused fitOneCycle, fineTune or lrFind changes nothing in the fit that runs", async () => {
  await ready();
  const { model, body, head } = toyModel();
  const learn = new Learner(toyDls(), model, { progress: false, splitter: () => [body, head] });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let paused!: () => void;
  const atPause = new Promise<void>((r) => (paused = r));
  const hold: Callback = {
    beforeBatch: async (l) => {
      if (l.training && l.iter === 1) {
        paused();
        await gate;
      }
    },
  };
  const running = learn.fit(1, 1e-6, { cbs: [hold] });
  try {
    await atPause;
    const trainable = model.trainableWeights.length;
    const lrs = () => learn.opt!.hypers.map((h) => h.lr);
    await assert.rejects(learn.fitOneCycle(1, { lrMax: 10 }), /fitOneCycle: this learner is already training/);
    assert.deepEqual(lrs(), [1e-6, 1e-6]);
    await assert.rejects(learn.fineTune(1), /fineTune: this learner is already training/);
    assert.equal(model.trainableWeights.length, trainable, "fineTune froze layers of the running fit");
    assert.deepEqual(lrs(), [1e-6, 1e-6]);
    const before = weightsOf(model);
    await assert.rejects(learn.lrFind({ showPlot: false }), /lrFind: this learner is already training/);
    assert.deepEqual(weightsOf(model), before);
  } finally {
    release();
    await running;
  }
});
