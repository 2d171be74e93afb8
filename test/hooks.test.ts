process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { ConvLayer, LinBnDrop, PoolFlatten, sequential } from "../lib/models/blocks";
import { Learner } from "../lib/learner/learner";
import { hookGrad, hookOutput, hookOutputs } from "../lib/learner/hooks";
import { ActivationStats } from "../lib/learner/activation-stats";
import { toyDls } from "./helpers/learner-data";

const smallNet = () =>
  sequential([ConvLayer(1, 4), ConvLayer(4, 8, { stride: 2 }), PoolFlatten(), LinBnDrop(8, 2)], { inputShape: [2, 2, 1], seed: 2 });

test("hookOutput keeps a copy of the layer's last output, equal to the model's own intermediate", async () => {
  await ready();
  const m = smallNet();
  const x = tf.randomNormal([3, 2, 2, 1], 0, 1, "float32", 1);
  // The intermediate the hook must see, from a model that stops there (before the hook: it shares the layer).
  const sub = tf.model({ inputs: m.inputs, outputs: m.getLayer("1.relu").output as tf.SymbolicTensor });
  const want = sub.predict(x) as tf.Tensor;
  const before = tf.memory().numTensors;
  const h = hookOutput(m, "1.relu");
  const y = m.predict(x) as tf.Tensor;
  assert.deepEqual(h.stored!.shape, [3, 1, 1, 8]);
  assert.deepEqual([...h.stored!.dataSync()], [...want.dataSync()]);
  tf.dispose(y);
  const x5 = tf.ones([5, 2, 2, 1]);
  const y2 = m.predict(x5) as tf.Tensor;
  assert.deepEqual(h.stored!.shape, [5, 1, 1, 8], "the next call replaces what was stored");
  assert.equal(h.calls, 2);
  h.remove();
  h.remove();
  tf.dispose([x5, y2]);
  assert.equal(tf.memory().numTensors, before, "remove() disposes what the hook kept; nothing leaks");
  tf.dispose([x, want]);
  const y3 = m.predict(tf.ones([1, 2, 2, 1])) as tf.Tensor;
  assert.equal(h.calls, 2, "a removed hook no longer runs");
  y3.dispose();
});

test("Hooks record every hooked layer during a Learner fit, with the right shapes and no tensor leak", async () => {
  await ready();
  const dls = toyDls({ n: 64, bs: 16 });
  const learn = new Learner(dls, smallNet(), { progress: false, lr: 1e-2 });
  await learn.fit(1); // creates the optimizer state first, so the count below compares like with like
  const before = tf.memory().numTensors;
  const shapes: number[][][] = [];
  const sizes = hookOutputs(learn.model, ["0.relu", "1.bn", "2.pool", "3.lin"]);
  await learn.fit(1, undefined, {
    cbs: [{ afterBatch: (l) => void (l.training && shapes.push(sizes.stored.map((t) => t!.shape))) }],
  });
  assert.equal(shapes.length, 4, "one record per training batch");
  for (const s of shapes) assert.deepEqual(s, [[16, 2, 2, 4], [16, 1, 1, 8], [16, 8], [16, 2]]);
  sizes.remove();
  assert.equal(tf.memory().numTensors, before);
  learn.dispose();
});

test("ActivationStats records mean, std, near-zero share and a histogram per layer and batch, and leaks nothing", async () => {
  await ready();
  const dls = toyDls({ n: 64, bs: 16 });
  const learn = new Learner(dls, smallNet(), { progress: false, lr: 1e-2 });
  await learn.fit(1);
  const before = tf.memory().numTensors;
  const stats = new ActivationStats({ layers: ["0.relu", "1.relu"] });
  await learn.fit(2, undefined, { cbs: [stats] });
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(stats.stats.map((s) => s.name), ["0.relu", "1.relu"]);
  const s0 = stats.stats[0]!;
  assert.equal(s0.mean.length, 8, "2 epochs × 4 training batches");
  assert.ok(s0.mean.every((m) => m >= 0) && s0.std.every((v) => v >= 0), "ReLU outputs");
  assert.ok(s0.nearZero.every((z) => z >= 0 && z <= 1));
  const total = s0.hist[0]!.reduce((a, b) => a + b, 0);
  assert.ok(total > 0 && total <= 16 * 2 * 2 * 4, `histogram counts ${total}`);
  assert.equal(stats.colorDimFigure("1.relu").data[0]!.z!.length, 40);
  assert.equal(stats.layerStatsFigure(0).data.length, 3);
  assert.throws(() => stats.layerStatsFigure("nope"), /no layer "nope"; it watched 0.relu, 1.relu/);
  learn.dispose();
});

test("hooking a missing layer names the layers there are; a layer takes one hook at a time", async () => {
  await ready();
  const m = smallNet();
  assert.throws(() => hookOutput(m, "relu9"), /the model has no layer "relu9"; its layers are: input, 0.conv, 0.bn, 0.relu/);
  const h = hookOutput(m, "0.conv");
  assert.throws(() => hookOutput(m, "0.conv"), /layer "0.conv" already has a hook; remove\(\) it first/);
  h.remove();
  hookOutput(m, "0.conv").remove();
  assert.throws(() => new ActivationStats({ every: 0 }), /every must be a positive integer, got 0/);
});

test("hookGrad (the book's HookBwd) keeps the gradient with respect to a layer's output, and its output; remove() restores the layer", async () => {
  await ready();
  // logits = relu(x·W1)·W2: d sum(logits[:, 1]) / d relu-output = W2[:, 1] for every item
  const input = tf.input({ shape: [3] });
  const d1 = tf.layers.dense({ units: 2, useBias: false, name: "d1" });
  const act = tf.layers.activation({ activation: "relu", name: "act" });
  const d2 = tf.layers.dense({ units: 2, useBias: false, name: "d2" });
  const m = tf.model({ inputs: input, outputs: d2.apply(act.apply(d1.apply(input))) as tf.SymbolicTensor });
  d1.setWeights([tf.tensor2d([[1, -1], [0.5, 2], [-1, 0.25]])]);
  d2.setWeights([tf.tensor2d([[0.3, -0.7], [1.5, 0.2]])]);
  const x = tf.tensor2d([[1, 2, 3], [-1, 0.5, 2]]);
  const h = hookGrad(m, "act");
  const before = tf.memory().numTensors;
  const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.slice(m.apply(xx) as tf.Tensor, [0, 1], [-1, 1])))(x);
  g.dispose();
  assert.deepEqual(h.stored!.arraySync(), [[-0.7, 0.2], [-0.7, 0.2]].map((r) => r.map(Math.fround)));
  // relu(x·W1): [1+1-3, -1+4+0.75] = [-1, 3.75] → [0, 3.75]; [-1+0.25-2, 1+1+0.5] → [0, 2.5]
  assert.deepEqual(h.output!.arraySync(), [[0, 3.75], [0, 2.5]]);
  assert.equal(tf.memory().numTensors, before + 2, "the hook holds the gradient and the output");
  h.remove();
  assert.equal(tf.memory().numTensors, before);
  hookOutput(m, "act").remove(); // the layer takes a hook again
  tf.dispose([x]);
});
