process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { TensorDataLoader, tensorDataLoaders } from "../lib/data/tensors";

test("TensorDataLoader batches rows in order, or shuffled with a seed (same seed, same order; every row once)", async () => {
  await ready();
  const x = tf.range(0, 10).reshape([10, 1]);
  const y = tf.range(100, 110);
  const rows = async (dl: TensorDataLoader) => {
    const out: number[][] = [];
    for await (const { xb, yb } of dl) {
      out.push([...xb.dataSync()]);
      assert.deepEqual([...yb.dataSync()], [...xb.dataSync()].map((v) => v + 100), "targets stay with their inputs");
      tf.dispose([xb, yb]);
    }
    return out;
  };
  const before = tf.memory().numTensors;
  const plain = new TensorDataLoader(x, y, { bs: 4 });
  assert.equal(plain.length, 3);
  assert.deepEqual(await rows(plain), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  const a = await rows(new TensorDataLoader(x, y, { bs: 4, shuffle: true, seed: 1 }));
  const b = await rows(new TensorDataLoader(x, y, { bs: 4, shuffle: true, seed: 1 }));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.flat(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual([...a.flat()].sort((p, q) => p - q), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(tf.memory().numTensors, before, "the loader keeps nothing once its batches are disposed");
  const dls = tensorDataLoaders([x, y], [x, y], { bs: 5, vocab: ["a", "b"] });
  assert.equal(dls.train.shuffle, true);
  assert.equal(dls.valid.shuffle, false);
  assert.equal(dls.c, 2);
  assert.throws(() => new TensorDataLoader(x, tf.zeros([3])), /x has 10 rows but y has 3/);
  assert.throws(() => new TensorDataLoader(x, y, { bs: 0 }), /bs must be a positive integer, got 0/);
});
