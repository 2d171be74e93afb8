/**
 * Conv nets train on the wasm backend with tsfast's kernels: no tensor leaks over 50 steps, and a
 * ResNet-style net and a depthwise-separable net learn real Fashion-MNIST.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { initWasm } from "../lib/engine/wasm";
import { readFashionMnist } from "./helpers/fashion-mnist";

/** Seeded initialisers, so that each run trains the same nets. */
let seed = 0;
const init = () => tf.initializers.heNormal({ seed: ++seed });

function convBn(x: tf.SymbolicTensor, filters: number, kernelSize: number, strides: number, relu = true): tf.SymbolicTensor {
  let y = tf.layers.conv2d({ filters, kernelSize, strides, padding: "same", useBias: false, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor;
  // momentum 0.8: the running variance starts at 1, far above the real one, and these tests take
  // only ~40 steps (0.8^40 ≈ 1e-4 of the start value is left; tfjs's default 0.99 would leave 67%).
  y = tf.layers.batchNormalization({ momentum: 0.8 }).apply(y) as tf.SymbolicTensor;
  return relu ? (tf.layers.reLU().apply(y) as tf.SymbolicTensor) : y;
}

/** A basic residual block: two 3×3 conv-BN, plus a 1×1 strided conv-BN shortcut when the shape changes. */
function resBlock(x: tf.SymbolicTensor, filters: number, strides: number): tf.SymbolicTensor {
  const y = convBn(convBn(x, filters, 3, strides), filters, 3, 1, false);
  const shortcut = strides !== 1 || x.shape[3] !== filters ? convBn(x, filters, 1, strides, false) : x;
  return tf.layers.reLU().apply(tf.layers.add().apply([y, shortcut])) as tf.SymbolicTensor;
}

function resnetStyle(size: number, widths: number[]): tf.LayersModel {
  const input = tf.input({ shape: [size, size, 1] });
  let x = convBn(input, widths[0]!, 3, 1);
  widths.forEach((w, i) => (x = resBlock(x, w, i === 0 ? 1 : 2)));
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 10, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** MobileNet-style: depthwise 3×3 + BN + ReLU6, then pointwise 1×1 conv-BN-ReLU. */
function depthwiseNet(size: number): tf.LayersModel {
  const input = tf.input({ shape: [size, size, 1] });
  let x = convBn(input, 16, 3, 2);
  for (const [filters, strides] of [
    [32, 1],
    [64, 2],
  ] as const) {
    x = tf.layers.depthwiseConv2d({ kernelSize: 3, strides, padding: "same", useBias: false, depthwiseInitializer: init() }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.batchNormalization({ momentum: 0.8 }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.reLU({ maxValue: 6 }).apply(x) as tf.SymbolicTensor;
    x = convBn(x, filters, 1, 1);
  }
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 10, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** One optimiser step on softmax cross-entropy; returns the batch loss. */
function step(model: tf.LayersModel, opt: tf.Optimizer, xb: tf.Tensor, yb: tf.Tensor): number {
  const loss = opt.minimize(
    () => tf.losses.softmaxCrossEntropy(tf.oneHot(yb as tf.Tensor1D, 10), model.apply(xb, { training: true }) as tf.Tensor),
    true,
  ) as tf.Scalar;
  const v = loss.dataSync()[0]!;
  loss.dispose();
  return v;
}

before(async () => {
  await initWasm();
});

test("50 wasm training steps of a conv/BN/depthwise/residual net leave no tensor or buffer behind", () => {
  const input = tf.input({ shape: [12, 12, 3] });
  let x = resBlock(convBn(input, 8, 3, 2), 16, 2);
  x = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: "same" }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 10 }).apply(x) as tf.SymbolicTensor });
  const opt = tf.train.adam(1e-3);
  const xb = tf.randomUniform([4, 12, 12, 3], 0, 1, "float32", 1);
  const yb = tf.tensor1d([1, 2, 3, 4], "int32");
  step(model, opt, xb, yb); // creates the optimiser's slots
  const tensors = tf.memory().numTensors;
  const buffers = tf.backend().numDataIds();
  for (let i = 0; i < 50; i++) step(model, opt, xb, yb);
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(tf.backend().numDataIds(), buffers);
  tf.dispose([xb, yb]);
  opt.dispose();
  model.layers.forEach((l) => l.dispose());
});

/** Fashion-MNIST's pixel mean and standard deviation, applied in place. */
function normalize<T extends { images: Float32Array }>(d: T): T {
  for (let i = 0; i < d.images.length; i++) d.images[i] = (d.images[i]! - 0.286) / 0.353;
  return d;
}

/** Train on `nTrain` real images for `epochs`, then measure accuracy on 1,000 test images. */
function trainFashion(model: tf.LayersModel, nTrain: number, epochs: number, bs: number, lr: number) {
  const t0 = Date.now();
  const train = normalize(readFashionMnist("train", nTrain));
  const valid = normalize(readFashionMnist("t10k", 1000));
  const opt = tf.train.adam(lr);
  const losses: number[] = [];
  for (let e = 0; e < epochs; e++) {
    for (let i = 0; i + bs <= nTrain; i += bs) {
      const xb = tf.tensor4d(train.images.subarray(i * 784, (i + bs) * 784), [bs, 28, 28, 1]);
      const yb = tf.tensor1d(train.labels.subarray(i, i + bs), "int32");
      losses.push(step(model, opt, xb, yb));
      tf.dispose([xb, yb]);
    }
  }
  let correct = 0;
  for (let i = 0; i < 1000; i += 250) {
    const pred = tf.tidy(() =>
      tf.argMax(model.apply(tf.tensor4d(valid.images.subarray(i * 784, (i + 250) * 784), [250, 28, 28, 1])) as tf.Tensor, 1),
    );
    const p = pred.dataSync();
    for (let k = 0; k < 250; k++) if (p[k] === valid.labels[i + k]) correct++;
    pred.dispose();
  }
  opt.dispose();
  const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  const seconds = (Date.now() - t0) / 1000;
  return { first: mean(losses.slice(0, 5)), last: mean(losses.slice(-5)), accuracy: correct / 1000, seconds };
}

test("a ResNet-style net (residual blocks, BN, strided convs) learns Fashion-MNIST on wasm", () => {
  tf.engine().startScope();
  const r = trainFashion(resnetStyle(28, [8, 16, 32]), 2560, 1, 64, 3e-3);
  tf.engine().endScope();
  console.log(`resnet-style: loss ${r.first.toFixed(3)} -> ${r.last.toFixed(3)}, accuracy ${r.accuracy}, ${r.seconds.toFixed(1)} s`);
  assert.ok(r.last < 0.6 * r.first, `loss only went from ${r.first} to ${r.last}`);
  assert.ok(r.accuracy > 0.5, `accuracy ${r.accuracy} (chance is 0.1)`);
});

test("a depthwise-separable (MobileNet-style) net learns Fashion-MNIST on wasm", () => {
  tf.engine().startScope();
  const r = trainFashion(depthwiseNet(28), 2560, 2, 64, 5e-3);
  tf.engine().endScope();
  console.log(`depthwise: loss ${r.first.toFixed(3)} -> ${r.last.toFixed(3)}, accuracy ${r.accuracy}, ${r.seconds.toFixed(1)} s`);
  assert.ok(r.last < 0.6 * r.first, `loss only went from ${r.first} to ${r.last}`);
  assert.ok(r.accuracy > 0.5, `accuracy ${r.accuracy} (chance is 0.1)`);
});
