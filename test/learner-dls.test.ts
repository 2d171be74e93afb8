process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import { TensorDataLoader } from "../lib/data/tensors";

/** Images of `size`×`size`×1, class 1 when the mean pixel is positive. */
function imageDls(size: number, n = 16, bs = 8) {
  const x = tf.randomNormal([n, size, size, 1], 0, 1, "float32", size);
  const y = tf.tidy(() => tf.cast(tf.greater(tf.mean(x, [1, 2, 3]), 0), "int32"));
  return { train: new TensorDataLoader(x, y, { bs }), valid: new TensorDataLoader(x, y, { bs }), c: 2 };
}

/** conv → global average pool → dense: any image size goes through. */
function sizeFreeModel(): tf.LayersModel {
  const input = tf.input({ shape: [null, null, 1] });
  const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", activation: "relu", kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) });
  const out = tf.layers.dense({ units: 2 }).apply(tf.layers.globalAveragePooling2d({}).apply(conv.apply(input))) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

test("learn.dls can be replaced between fits (progressive resizing): the model and optimizer state are kept and the new loader is used", async () => {
  await ready();
  const small = imageDls(8);
  const learn = new Learner(small, sizeFreeModel(), { progress: false, lr: 1e-2 });
  const sizes: number[] = [];
  learn.addCbs([{ beforeBatch: (l) => void sizes.push(l.xb!.shape[1]!) }]);
  await learn.fit(1);
  const opt = learn.opt!;
  const stepsBefore = opt.stateDict().params.map((p) => p.step);
  assert.ok(stepsBefore.every((s) => s === 2), `two steps so far: ${stepsBefore}`);
  const model = learn.model;
  sizes.length = 0;
  learn.dls = imageDls(16);
  await learn.fit(1);
  assert.deepEqual(sizes, [16, 16, 16, 16], "two training and two validation batches at the new size");
  assert.equal(learn.opt, opt, "the same optimizer");
  assert.equal(learn.model, model);
  assert.deepEqual(opt.stateDict().params.map((p) => p.step), stepsBefore.map((s) => s + 2), "Adam's step count and moments continue");
  assert.equal(learn.recorder.values.length, 1);
  const preds = await learn.getPreds();
  assert.deepEqual(preds.preds.shape, [16, 2], "getPreds reads the new validation loader");
  tf.dispose([preds.preds, preds.targs]);
});

test("learn.dls refuses data with another number of classes, or during a fit", async () => {
  await ready();
  const learn = new Learner(imageDls(8), sizeFreeModel(), { progress: false });
  assert.throws(() => (learn.dls = { ...imageDls(8), c: 3 }), /the new DataLoaders have 3 classes but the model was built for 2/);
  let refused = "";
  learn.addCbs([{ beforeBatch: (l) => { try { l.dls = imageDls(8); } catch (e) { refused = (e as Error).message; } } }]);
  await learn.fit(1);
  assert.match(refused, /learn\.dls = \.\.\.: this learner is already training/);
});
