/**
 * `PaddedConv2D` and `PaddedMaxPool2D` (lib/models/layers.ts): PyTorch's symmetric padding inside
 * the kernel. Checked by hand on tiny inputs, and against the layers they replace in tsfast's
 * ResNets (`ZeroPadding2D` + a `valid` conv or max pool, same weights) on every engine, forward and
 * gradients; then through JSON and in a ResNet.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { PaddedConv2D, PaddedMaxPool2D } from "../lib/models/layers";
import { resnet18 } from "../lib/models/archs";
import { maxDiff as diffOf, registerEngines } from "./helpers/engines";

/** Largest |a − b| over two tensors of one size. */
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => diffOf(a.dataSync(), b.dataSync()).diff;

let engines: string[] = [];
before(async () => {
  engines = await registerEngines();
});

test("by hand: a 3×3 stride-2 conv with pad 1 sums the 2×2 image; the max pool's padding never wins, as PyTorch's -inf", async () => {
  for (const e of engines) {
    await tf.setBackend(e);
    const conv = new PaddedConv2D({ filters: 1, kernelSize: 3, strides: 2, pad: 1, useBias: false, kernelInitializer: "ones" });
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    // one output: the window over rows and columns -1..1 covers the four pixels
    assert.deepEqual(Array.from((conv.apply(x) as tf.Tensor).dataSync()), [10], e);
    const pool = new PaddedMaxPool2D({ poolSize: 3, strides: 2, pad: 1 });
    const neg = tf.tensor4d([-1, -2, -3, -4, -5, -6, -7, -8, -9], [1, 3, 3, 1]);
    // out 2×2, windows over rows and columns {-1..1} and {1..3}: maxima of {-1,-2,-4,-5}, {-2,-3,-5,-6},
    // {-4,-5,-7,-8}, {-5,-6,-8,-9}; every window holds a padded position, so zero padding gives 0s
    assert.deepEqual(Array.from((pool.apply(neg) as tf.Tensor).dataSync()), [-1, -2, -4, -5], e);
    tf.dispose([x, neg]);
    conv.dispose();
  }
});

/** The same net twice: padded layers, and ZeroPadding2D + valid layers given its weights. */
function twins(): { padded: tf.LayersModel; reference: tf.LayersModel } {
  const pIn = tf.input({ shape: [13, 10, 3] });
  const c1 = new PaddedConv2D({ filters: 8, kernelSize: 7, strides: 2, pad: 3, useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) });
  const pool = new PaddedMaxPool2D({ poolSize: 3, strides: 2, pad: 1 });
  const c2 = new PaddedConv2D({ filters: 5, kernelSize: 3, strides: 2, pad: 1, useBias: true, activation: "relu", kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }), biasInitializer: tf.initializers.randomNormal({ seed: 3 }) });
  // a ReLU before the pool: there zero padding and -inf padding agree, as after a ResNet's stem
  let g = tf.layers.reLU().apply(c1.apply(pIn)) as tf.SymbolicTensor;
  g = c2.apply(pool.apply(g)) as tf.SymbolicTensor;
  const padded = tf.model({ inputs: pIn, outputs: g });

  const rIn = tf.input({ shape: [13, 10, 3] });
  const pad = (p: number, t: tf.SymbolicTensor) => tf.layers.zeroPadding2d({ padding: p }).apply(t) as tf.SymbolicTensor;
  const r1 = tf.layers.conv2d({ filters: 8, kernelSize: 7, strides: 2, padding: "valid", useBias: false });
  const rPool = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: "valid" });
  const r2 = tf.layers.conv2d({ filters: 5, kernelSize: 3, strides: 2, padding: "valid", useBias: true, activation: "relu" });
  let h = tf.layers.reLU().apply(r1.apply(pad(3, rIn))) as tf.SymbolicTensor;
  h = r2.apply(pad(1, rPool.apply(pad(1, h)) as tf.SymbolicTensor)) as tf.SymbolicTensor;
  const reference = tf.model({ inputs: rIn, outputs: h });
  reference.setWeights(padded.getWeights());
  return { padded, reference };
}

test("the padded layers compute what ZeroPadding2D + valid layers compute, forward and backward, on every engine", async () => {
  for (const e of engines) {
    await tf.setBackend(e);
    const { padded, reference } = twins();
    const x = tf.randomNormal([2, 13, 10, 3], 0, 1, "float32", 7);
    const w = tf.randomNormal([2, 2, 2, 5], 0, 1, "float32", 8);
    // out: 13×10 → conv 7/2/3 → 7×5 → pool 3/2/1 → 4×3 → conv 3/2/1 → 2×2
    const run = (m: tf.LayersModel) =>
      tf.variableGrads(() => tf.sum(tf.mul(m.apply(tf.mul(x, 1), { training: true }) as tf.Tensor, w)), m.trainableWeights.map((v) => (v as unknown as { val: tf.Variable }).val));
    const a = run(padded), b = run(reference);
    const ya = padded.predict(x) as tf.Tensor, yb = reference.predict(x) as tf.Tensor;
    assert.deepEqual(ya.shape, [2, 2, 2, 5]);
    assert.ok(maxDiff(ya, yb) < 1e-5, `${e}: outputs differ by ${maxDiff(ya, yb)}`);
    assert.ok(Math.abs(a.value.dataSync()[0]! - b.value.dataSync()[0]!) < 1e-4, e);
    const ga = Object.values(a.grads), gb = Object.values(b.grads);
    assert.equal(ga.length, 3);
    ga.forEach((g, i) => assert.ok(maxDiff(g, gb[i]!) < 1e-4, `${e}: gradient ${i} differs by ${maxDiff(g, gb[i]!)}`));
    tf.dispose([x, w, ya, yb, a.value, b.value, ...ga, ...gb]);
    padded.dispose();
    reference.dispose();
  }
});

test("a model with the padded layers goes through JSON and back with the same outputs; ResNet-18 uses them, named as torchvision", async () => {
  await tf.setBackend("cpu");
  const model = await resnet18({ nOut: 4, inputShape: [32, 32, 3] });
  const classes = model.layers.map((l) => l.getClassName());
  assert.equal(classes.filter((c) => c === "PaddedConv2D").length, 4); // the stem and three stride-2 3×3s
  assert.equal(classes.filter((c) => c === "PaddedMaxPool2D").length, 1);
  assert.ok(!classes.includes("ZeroPadding2D"));
  assert.ok(model.getLayer("layer2.0.conv1") instanceof PaddedConv2D);
  const json = model.toJSON(null, false) as unknown as object;
  const again = await tf.models.modelFromJSON({ modelTopology: json } as unknown as tf.io.ModelJSON);
  again.setWeights(model.getWeights());
  const x = tf.randomNormal([2, 32, 32, 3], 0, 1, "float32", 9);
  const y1 = model.predict(x) as tf.Tensor, y2 = again.predict(x) as tf.Tensor;
  assert.deepEqual(y1.shape, [2, 4]);
  assert.equal(maxDiff(y1, y2), 0);
  tf.dispose([x, y1, y2]);
  model.dispose();
  again.dispose();
});

test("bad padded-layer arguments name what to fix", () => {
  assert.throws(() => new PaddedConv2D({ filters: 2, kernelSize: 3, pad: -1 }), /pad must be an integer >= 0/);
  assert.throws(() => new PaddedConv2D({ filters: 2, kernelSize: 3, pad: 1, dataFormat: "channelsFirst" }), /only channelsLast/);
  assert.throws(() => new PaddedMaxPool2D({ poolSize: 3, strides: 2, pad: 2 }), /at most half of poolSize/);
  assert.throws(() => new PaddedMaxPool2D({ poolSize: 0, strides: 2, pad: 0 }), /poolSize must be an integer >= 1/);
});
