/**
 * lib/engine/lean-forward.ts: a tfjs-layers model's forward pass disposes each intermediate tensor
 * once its readers have run, in training too, and the outputs and gradients stay exactly tfjs-layers'.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { leanForwardInstalled, setConvBnFusion, withTfjsCall } from "../lib/engine/lean-forward";
import { hookOutput } from "../lib/learner/hooks";

before(async () => {
  await ready(); // installs the lean forward pass, whichever engine runs
  assert.ok(leanForwardInstalled());
  // the walk's bookkeeping is compared bit for bit with tfjs-layers' own: no convolution + BatchNorm fused
  // into one (on the native engine; its numbers differ at rounding level: conv-bn-fusion.test.ts)
  setConvBnFusion(undefined);
});

/**
 * A small residual net with what the walk must get right: a tensor read by three layers (the
 * block's input), an identity layer handing its input on unchanged ("linear" returns the same
 * tensor) to two readers, a nested Sequential, a second model output taken from the middle.
 */
function net(): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotNormal({ seed });
  const x = tf.input({ shape: [8, 8, 3] });
  const c1 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", kernelInitializer: init(1), name: "c1" }).apply(x) as tf.SymbolicTensor;
  const b1 = tf.layers.batchNormalization({ name: "b1" }).apply(c1) as tf.SymbolicTensor;
  const r1 = tf.layers.reLU({ name: "r1" }).apply(b1) as tf.SymbolicTensor;
  const same = tf.layers.activation({ activation: "linear", name: "same" }).apply(r1) as tf.SymbolicTensor;
  const c2 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", kernelInitializer: init(2), name: "c2" }).apply(same) as tf.SymbolicTensor;
  const c3 = tf.layers.conv2d({ filters: 4, kernelSize: 1, kernelInitializer: init(3), name: "c3" }).apply(r1) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: "sum" }).apply([c2, c3, same]) as tf.SymbolicTensor;
  const inner = tf.sequential({
    name: "inner",
    layers: [
      tf.layers.reLU({ inputShape: [8, 8, 4] }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 5, kernelInitializer: init(4) }),
    ],
  });
  const out = inner.apply(sum) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: [out, r1] });
}

function lossOf(model: tf.LayersModel, x: tf.Tensor): () => tf.Scalar {
  return () => {
    const [out, mid] = model.apply(x, { training: true }) as tf.Tensor[];
    return tf.add(tf.sum(tf.square(out!)), tf.mul(tf.mean(mid!), 0.5)) as tf.Scalar;
  };
}

/** Run `f` noting the bytes of tensor data held when `layer` is called (late in the forward pass). */
function bytesAt<T>(model: tf.LayersModel, layer: string, f: () => T): { result: T; bytes: number } {
  const target = model.getLayer(layer) as unknown as { call: (...a: unknown[]) => unknown };
  const call = target.call;
  let bytes = 0;
  target.call = function (...a: unknown[]) {
    bytes = tf.memory().numBytes;
    return call.apply(this, a);
  };
  try {
    return { result: f(), bytes };
  } finally {
    target.call = call;
  }
}

test("training: the loss and every gradient are tfjs-layers' own, bit for bit, with less held at the end of the forward pass", () => {
  const model = net();
  const x = tf.randomNormal([2, 8, 8, 3], 0, 1, "float32", 7);
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const { result: lean, bytes: leanBytes } = bytesAt(model, "inner", () => tf.variableGrads(lossOf(model, x), vars));
  const { result: plain, bytes: tfjsBytes } = withTfjsCall(() => bytesAt(model, "inner", () => tf.variableGrads(lossOf(model, x), vars)));
  assert.equal(lean.value.dataSync()[0], plain.value.dataSync()[0]);
  for (const v of vars) {
    assert.deepEqual(Array.from(lean.grads[v.name]!.dataSync()), Array.from(plain.grads[v.name]!.dataSync()), v.name);
  }
  // When the nested model runs, the lean walk has let go of what nothing saved: b1's output (r1 saves
  // its own output, b1 its input), and c2's and c3's (the sum saves neither): three [2, 8, 8, 4]
  // float32 tensors, 2 KiB each.
  assert.ok(tfjsBytes - leanBytes >= 3 * 2 * 8 * 8 * 4 * 4, `lean ${leanBytes} B, tfjs-layers ${tfjsBytes} B when "inner" runs`);
  tf.dispose([lean.value, plain.value, ...Object.values(lean.grads), ...Object.values(plain.grads), x]);
});

test("inference and a nested model give tfjs-layers' outputs; nothing leaks", () => {
  const model = net();
  const x = tf.randomNormal([3, 8, 8, 3], 0, 1, "float32", 8);
  const before = tf.memory().numTensors;
  const lean = model.apply(x, { training: false }) as tf.Tensor[];
  const plain = withTfjsCall(() => model.apply(x, { training: false }) as tf.Tensor[]);
  lean.forEach((t, i) => assert.deepEqual(Array.from(t.dataSync()), Array.from(plain[i]!.dataSync())));
  tf.dispose([...lean, ...plain]);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose(x);
});

test("predict and predictOnBatch run the walk batch by batch, with tfjs-layers' executor's outputs, shapes and errors; nothing leaks", () => {
  const model = net();
  const x = tf.randomNormal([5, 8, 8, 3], 0, 1, "float32", 10);
  const bits = (ts: tf.Tensor | tf.Tensor[]) => (Array.isArray(ts) ? ts : [ts]).map((t) => ({ shape: t.shape, v: Array.from(t.dataSync()) }));
  // a Sequential model (predict goes through its inner model) with one output
  const seq = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [4], kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }) }), tf.layers.reLU()] });
  const xs = tf.randomNormal([7, 4], 0, 1, "float32", 11);
  const before = tf.memory().numTensors;
  // the models' call (the walk) runs once per batch for the model and once for its nested Sequential
  const container = Object.getPrototypeOf(tf.LayersModel.prototype) as { call: (...a: unknown[]) => unknown };
  const call = container.call;
  let walks = 0;
  container.call = function (...a: unknown[]) {
    walks++;
    return call.apply(this, a);
  };
  try {
    tf.dispose(model.predict(x, { batchSize: 2 }) as tf.Tensor[]);
  } finally {
    container.call = call;
  }
  assert.equal(walks, 2 * 3, "5 rows in batches of 2: three batches, each through the model and the nested one");
  for (const batchSize of [2, 5, 32]) {
    const got = model.predict(x, { batchSize }) as tf.Tensor[];
    const plain = withTfjsCall(() => model.predict(x, { batchSize }) as tf.Tensor[]);
    assert.deepEqual(bits(got), bits(plain), `batchSize ${batchSize}`);
    tf.dispose([...got, ...plain]);
  }
  const one = model.predictOnBatch(x) as tf.Tensor[];
  const onePlain = withTfjsCall(() => model.predictOnBatch(x) as tf.Tensor[]);
  assert.deepEqual(bits(one), bits(onePlain));
  tf.dispose([...one, ...onePlain]);
  const s1 = seq.predict(xs, { batchSize: 3 }) as tf.Tensor;
  const s2 = withTfjsCall(() => seq.predict(xs, { batchSize: 3 }) as tf.Tensor);
  assert.deepEqual(bits(s1), bits(s2));
  tf.dispose([s1, s2]);
  assert.equal(tf.memory().numTensors, before);
  // one batch: still a new tensor, as tfjs-layers' concat gives, not one a hook keeps (its func returns the output itself)
  const keeper = hookOutput(model, "inner", { func: (o) => o });
  const single = model.predict(x) as tf.Tensor[];
  assert.notEqual(single[0], keeper.stored);
  tf.dispose(single);
  assert.ok(!keeper.stored!.isDisposed, "disposing predict's output left the hook's tensor alone");
  keeper.remove();
  tf.dispose(keeper.stored!);
  const wrong = tf.zeros([2, 8, 8, 4]);
  assert.throws(() => model.predict(wrong), /expected input\d+ to have shape \[null,8,8,3\]/);
  wrong.dispose();
  tf.dispose([x, xs]);
  seq.dispose();
});

test("a hook's stored output and the model's outputs survive; the layer's own output is what was disposed", () => {
  const model = net();
  const x = tf.randomNormal([2, 8, 8, 3], 0, 1, "float32", 9);
  const hook = hookOutput(model, "b1");
  let b1Out: tf.Tensor | undefined;
  const layer = model.getLayer("b1") as unknown as { call: (...a: unknown[]) => tf.Tensor };
  const call = layer.call;
  layer.call = function (...a: unknown[]) {
    b1Out = call.apply(this, a);
    return b1Out;
  };
  const grads = tf.variableGrads(lossOf(model, x), model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val));
  layer.call = call;
  assert.ok(b1Out?.isDisposed, "b1's output should be disposed once r1 has read it");
  assert.ok(hook.stored && !hook.stored.isDisposed);
  assert.deepEqual(hook.stored.shape, [2, 8, 8, 4]);
  hook.remove();
  tf.dispose([grads.value, ...Object.values(grads.grads), x]);
});
