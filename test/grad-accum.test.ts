process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import { GradientAccumulation } from "../lib/learner/grad-accum";
import type { Callback } from "../lib/learner/callback";
import { toyDls } from "./helpers/learner-data";

/** flatten → dense(8) → relu → dense(2), seeded, no BatchNorm: every sample's gradient is independent of its batch. */
function mlp(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [2, 2, 1] }),
      tf.layers.dense({ units: 8, activation: "relu", kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }), biasInitializer: tf.initializers.randomNormal({ seed: 2 }) }),
      tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
    ],
  });
}

const steps = (): Callback & { n: number } => ({ n: 0, afterStep() { this.n += 1; } });

test("GradientAccumulation over 4 batches of 4 steps as one batch of 16 (Adam with weight decay, two steps)", async () => {
  await ready();
  const big = toyDls({ n: 32, bs: 16 });
  const small = toyDls({ n: 32, bs: 4 });
  const a = mlp();
  const b = mlp();
  const sa = steps();
  const sb = steps();
  await new Learner(big, a, { progress: false, lr: 0.05, wd: 0.1, cbs: [sa] }).fit(1);
  const learn = new Learner(small, b, { progress: false, lr: 0.05, wd: 0.1, cbs: [new GradientAccumulation(16), sb] });
  await learn.fit(1);
  assert.equal(sa.n, 2);
  assert.equal(sb.n, 2, "one optimizer step per 16 samples");
  let worst = 0;
  a.weights.forEach((w, i) => {
    const x = w.read().dataSync();
    const y = b.weights[i]!.read().dataSync();
    x.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - y[j]!))));
  });
  assert.ok(worst < 2e-6, `largest weight difference ${worst}`);
  // the recorded losses are each small batch's own mean loss, not the scaled one
  assert.equal(learn.recorder.losses.length, 8);
  assert.ok(learn.recorder.losses.every((l) => l > 0.3), `${learn.recorder.losses}`);
});

test("GradientAccumulation steps once the count reaches nAcc (uneven batches count samples, as fastai's)", async () => {
  await ready();
  const s = steps();
  // 20 samples in batches of 8, 8, 4; nAcc 10: the count is 8, 16 → step, 4 → no step
  await new Learner(toyDls({ n: 20, bs: 8 }), mlp(), { progress: false, cbs: [new GradientAccumulation(10), s] }).fit(1);
  assert.equal(s.n, 1);
  const learn = new Learner(toyDls({ n: 20, bs: 8 }), mlp(), { progress: false, cbs: [new GradientAccumulation(10)] });
  await learn.fit(1);
  const before = tf.memory().numTensors;
  await learn.fit(2);
  assert.equal(tf.memory().numTensors, before, "no partial sums or scaled losses left behind");
});

test("GradientAccumulation refuses an nAcc that is not a whole number ≥ 1", () => {
  assert.throws(() => new GradientAccumulation(0), /nAcc is the number of samples per optimizer step, a whole number ≥ 1; got 0/);
  assert.throws(() => new GradientAccumulation(2.5), /got 2\.5/);
});

test("an async afterLoss handler is refused in training: it runs inside the gradient computation", async () => {
  await ready();
  const learn = new Learner(toyDls({ n: 8, bs: 8 }), mlp(), { progress: false, cbs: [{ name: "Slow", afterLoss: async () => undefined }] });
  await assert.rejects(learn.fit(1), /afterLoss returned a promise: in a training step afterLoss runs inside the gradient computation, which cannot wait; make the handler synchronous \(in callback Slow\.afterLoss\)/);
});
