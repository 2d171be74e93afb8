/**
 * The gradient of a nearest-neighbour resize on every engine: each dy pixel goes back to the one
 * input pixel the forward pass read. tfjs-backend-cpu's own kernel read dy with the input's batch
 * stride (NaN from the second picture on whenever the size changes); lib/engine/cpu-fixes.ts.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { registerEngines } from "./helpers/engines";

let engines: string[] = [];
before(async () => {
  engines = await registerEngines();
});

test("by hand: 3 rows resized to 2 read rows 0 and 1, so dx is [dy0, dy1, 0] for each of 2 pictures", async () => {
  for (const be of engines) {
    await tf.setBackend(be);
    const x = tf.zeros([2, 3, 1, 1]);
    const dy = tf.tensor4d([1, 2, 10, 20], [2, 2, 1, 1]);
    const dx = tf.grad((t: tf.Tensor) => tf.image.resizeNearestNeighbor(t as tf.Tensor4D, [2, 1]))(x, dy);
    assert.deepEqual(Array.from(dx.dataSync()), [1, 2, 0, 10, 20, 0], be);
    tf.dispose([x, dy, dx]);
  }
});

test("every engine's gradient equals dy scattered through the forward pass's own read map (batch 2, sizes up and down, corner modes)", async () => {
  const cases: [number, number, number, number, boolean, boolean][] = [
    // in h, in w, out h, out w, alignCorners, halfPixelCenters
    [66, 66, 65, 65, false, false], // the U-Net's resize at odd sizes
    [33, 17, 65, 40, false, false],
    [9, 7, 4, 11, true, false],
    [8, 9, 13, 5, false, true],
  ];
  for (const [ih, iw, oh, ow, alignCorners, halfPixelCenters] of cases) {
    const n = 2, depth = 3;
    // the read map: resize a picture whose values are their own flat pixel index
    const index = tf.tensor4d(Float32Array.from({ length: n * ih * iw }, (_, i) => i), [n, ih, iw, 1]);
    const readFrom = tf.image.resizeNearestNeighbor(index, [oh, ow], alignCorners, halfPixelCenters).dataSync();
    index.dispose();
    const dyValues = Float32Array.from({ length: n * oh * ow * depth }, (_, i) => Math.sin(i) + 0.5);
    const want = new Float64Array(n * ih * iw * depth);
    for (let p = 0; p < n * oh * ow; p++) for (let d = 0; d < depth; d++) want[readFrom[p]! * depth + d]! += dyValues[p * depth + d]!;
    for (const be of engines) {
      await tf.setBackend(be);
      const x = tf.zeros([n, ih, iw, depth]);
      const dy = tf.tensor4d(dyValues, [n, oh, ow, depth]);
      const dx = tf.grad((t: tf.Tensor) => tf.image.resizeNearestNeighbor(t as tf.Tensor4D, [oh, ow], alignCorners, halfPixelCenters))(x, dy);
      const got = dx.dataSync();
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Number.isFinite(got[i]!) ? Math.abs(got[i]! - want[i]!) : Infinity);
      assert.ok(worst < 1e-5, `${be}, ${ih}x${iw} -> ${oh}x${ow} (alignCorners ${alignCorners}, halfPixelCenters ${halfPixelCenters}): max error ${worst}`);
      tf.dispose([x, dy, dx]);
    }
  }
});
