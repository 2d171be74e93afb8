process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { createHead } from "../lib/models/vision";

test("createHead with concatPool false, no hidden layers, no BatchNorm and no dropout is fastai's average pool → flatten → linear: logits = mean over the grid · W + b", async () => {
  await ready();
  const input = tf.input({ shape: [3, 2, 4] });
  const model = tf.model({ inputs: input, outputs: createHead(input, 2, { concatPool: false, linFtrs: [], firstBn: false, ps: 0 }) });
  assert.deepEqual(model.layers.map((l) => l.getClassName()), ["InputLayer", "AdaptiveAvgPool2d", "Flatten", "Dense"]);
  assert.deepEqual(model.layers.slice(1).map((l) => l.name), ["head.0", "head.1", "head.2"]);
  const [W, b] = model.layers[3]!.getWeights() as [tf.Tensor2D, tf.Tensor1D];
  const xs = Array.from({ length: 2 * 3 * 2 * 4 }, (_, i) => Math.sin(i) * 2);
  const x = tf.tensor4d(xs, [2, 3, 2, 4]);
  const got = (model.predict(x) as tf.Tensor).arraySync() as number[][];
  const w = W.arraySync();
  const bb = b.arraySync();
  for (let n = 0; n < 2; n++) {
    // the channel means of picture n, by hand
    const mean = [0, 1, 2, 3].map((c) => {
      let s = 0;
      for (let i = 0; i < 6; i++) s += xs[n * 24 + i * 4 + c]!;
      return s / 6;
    });
    for (let k = 0; k < 2; k++) {
      const want = bb[k]! + mean.reduce((s, m, c) => s + m * w[c]![k]!, 0);
      assert.ok(Math.abs(got[n]![k]! - want) < 1e-5, `picture ${n} class ${k}: ${got[n]![k]} vs ${want}`);
    }
  }
  // the pool is a registered layer: the model reloads from its JSON
  const again = await tf.models.modelFromJSON(model.toJSON(null, false) as never);
  assert.equal(again.layers[1]!.getClassName(), "AdaptiveAvgPool2d");
  x.dispose();
});
