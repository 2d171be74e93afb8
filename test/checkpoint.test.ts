process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import { TensorDataLoader } from "../lib/data/tensors";

/** Two dense layers of different shapes, split into two parameter groups so that `freeze` changes `model.weights`' order. */
function twoGroups(seed: number) {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 5, inputShape: [3], kernelInitializer: tf.initializers.glorotUniform({ seed }), name: "body" }),
      tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }), name: "head" }),
    ],
  });
  const dl = new TensorDataLoader(tf.ones([4, 3]), tf.tensor1d([0, 1, 0, 1], "int32"), { bs: 2 });
  return new Learner({ train: dl, valid: dl }, model, { progress: false, splitter: (m) => [[m.layers[0]!], [m.layers[1]!]] });
}

test("load matches weights by name: a checkpoint saved unfrozen loads into a frozen learner (fastai's save after fine_tune, load into a new vision_learner)", async () => {
  await ready();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-ckpt-"));
  const saved = twoGroups(1);
  saved.path = dir;
  const file = await saved.save("unfrozen");
  const want = Object.fromEntries(saved.model.weights.map((w) => [w.originalName, Array.from(w.read().dataSync())]));
  const fresh = twoGroups(7);
  fresh.path = dir;
  fresh.freeze(); // model.weights now lists the head's (trainable) weights before the body's
  assert.equal(fresh.model.weights[0]!.originalName, "head/kernel");
  await fresh.load("unfrozen");
  for (const w of fresh.model.weights) assert.deepEqual(Array.from(w.read().dataSync()), want[w.originalName], `${w.originalName} from ${file}`);
});
