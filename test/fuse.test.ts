/**
 * `fuseBatchNorm` (lib/models/fuse.ts): BatchNorm (and a ReLU right after it) folded into the
 * convolution before it, for inference. Checked by hand on a 1×1 conv, and against the unfused model
 * (ResNet-18 with random BatchNorm statistics) on every engine; and what must not fold.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { fuseBatchNorm } from "../lib/models/fuse";
import { PaddedConv2D } from "../lib/models/layers";
import { resnet18 } from "../lib/models/archs";
import { maxDiff, registerEngines } from "./helpers/engines";

let engines: string[] = [];
before(async () => {
  engines = await registerEngines();
});

const classes = (m: tf.LayersModel) => m.layers.map((l) => l.getClassName());

test("by hand: a 1×1 conv (kernel 2) then BatchNorm (mean 1, var 3, eps 1, γ 4, β 0.5) then ReLU is one conv: kernel 4, bias −1.5, relu", async () => {
  await tf.setBackend("cpu");
  const input = tf.input({ shape: [1, 3, 1] });
  const conv = tf.layers.conv2d({ filters: 1, kernelSize: 1, useBias: false, kernelInitializer: tf.initializers.constant({ value: 2 }) });
  const bn = tf.layers.batchNormalization({ epsilon: 1 });
  const out = tf.layers.reLU().apply(bn.apply(conv.apply(input))) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  bn.setWeights([tf.tensor1d([4]), tf.tensor1d([0.5]), tf.tensor1d([1]), tf.tensor1d([3])]); // γ, β, mean, var
  const { model: fused, folded } = await fuseBatchNorm(model);
  assert.equal(folded, 1);
  assert.deepEqual(classes(fused), ["InputLayer", "Conv2D"]);
  const [k, b] = fused.layers[1]!.getWeights();
  assert.deepEqual(Array.from(k!.dataSync()), [4]); // 2 · 4/√(3 + 1)
  assert.deepEqual(Array.from(b!.dataSync()), [-1.5]); // (0 − 1) · 2 + 0.5
  // y = relu(4x − 1.5)
  const x = tf.tensor4d([1, 0, -1], [1, 1, 3, 1]);
  assert.deepEqual(Array.from((fused.predict(x) as tf.Tensor).dataSync()), [2.5, 0, 0]);
  assert.deepEqual(Array.from((model.predict(x) as tf.Tensor).dataSync()), [2.5, 0, 0]);
  assert.equal(model.layers.length, 4, "the model itself is unchanged");
  tf.dispose(x);
  model.dispose();
  fused.dispose();
});

test("a fused ResNet-18 predicts what the model predicts, on every engine; all 20 BatchNorms and the 9 ReLUs right after them are gone", async () => {
  for (const e of engines) {
    await tf.setBackend(e);
    const model = await resnet18({ nOut: 7, inputShape: [32, 32, 3] });
    // statistics far from the initial ones, so a wrong fold shows
    let seed = 10;
    for (const l of model.layers) {
      if (l.getClassName() !== "BatchNormalization") continue;
      const ws = l.getWeights();
      l.setWeights(ws.map((w, i) => (i === 3 ? tf.randomUniform(w.shape, 0.5, 2, "float32", seed++) : tf.randomNormal(w.shape, 0, 0.5, "float32", seed++))));
    }
    const { model: fused, folded } = await fuseBatchNorm(model);
    assert.equal(folded, 20, e);
    assert.ok(!classes(fused).includes("BatchNormalization"), e);
    assert.equal(classes(model).filter((c) => c === "ReLU").length - classes(fused).filter((c) => c === "ReLU").length, 9, e);
    assert.ok(fused.getLayer("layer2.0.conv1") instanceof PaddedConv2D, e);
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, "float32", 3);
    const want = model.predict(x) as tf.Tensor, got = fused.predict(x) as tf.Tensor;
    const { diff, scale } = maxDiff(got.dataSync(), want.dataSync());
    assert.ok(diff <= 1e-4 * Math.max(1, scale), `${e}: fused differs by ${diff} (scale ${scale})`);
    tf.dispose([x, want, got]);
    model.dispose();
    fused.dispose();
  }
});

test("what must not fold stays: a conv output read twice, a conv with its own activation, a BatchNorm over another axis", async () => {
  await tf.setBackend("cpu");
  const input = tf.input({ shape: [4, 4, 2] });
  const c1 = tf.layers.conv2d({ filters: 2, kernelSize: 1, useBias: false }).apply(input) as tf.SymbolicTensor;
  const twice = tf.layers.add().apply([tf.layers.batchNormalization().apply(c1) as tf.SymbolicTensor, c1]) as tf.SymbolicTensor;
  const c2 = tf.layers.conv2d({ filters: 2, kernelSize: 1, activation: "relu" }).apply(twice) as tf.SymbolicTensor;
  const own = tf.layers.batchNormalization().apply(c2) as tf.SymbolicTensor;
  const c3 = tf.layers.conv2d({ filters: 2, kernelSize: 1 }).apply(own) as tf.SymbolicTensor;
  const other = tf.layers.batchNormalization({ axis: 1 }).apply(c3) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: other });
  const { model: fused, folded } = await fuseBatchNorm(model);
  assert.equal(folded, 0);
  assert.deepEqual(classes(fused), classes(model));
  const x = tf.randomNormal([1, 4, 4, 2], 0, 1, "float32", 5);
  const a = model.predict(x) as tf.Tensor, b = fused.predict(x) as tf.Tensor;
  assert.equal(maxDiff(a.dataSync(), b.dataSync()).diff, 0);
  tf.dispose([x, a, b]);
  model.dispose();
  fused.dispose();
});
