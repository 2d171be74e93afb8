process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] ?? "cpu";
process.env["TSFAST_DATA_WORKERS"] = "1";
import { test } from "node:test";
import assert from "node:assert/strict";
import { markAsUntransferable } from "node:worker_threads";
import { applyBatchTfms, augTransforms, imagenetStats, Normalize } from "../lib/data/augment";
import { Rng } from "../lib/data/random";
import { markOwned, runBatchTfms } from "../lib/data/workers";

const img = (seed: number) => {
  const data = new Uint8Array(20 * 14 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 7) & 255;
  return { data, width: 20, height: 14 };
};

test("a data worker gets fresh decodes moved, others copied (a cache's, native memory), and computes the main thread's batch", async () => {
  const tfms = [...augTransforms({ size: 12, minScale: 0.7 }), Normalize.fromStats(...imagenetStats)];
  const fresh = markOwned(img(1));
  const pinned = markOwned(img(2)); // memory Node cannot move (as sharp's output): copied, not detached
  markAsUntransferable(pinned.data.buffer);
  const cached = img(3); // not marked: a cache's image stays usable
  const copies = [fresh, pinned, cached].map((im) => ({ ...im, data: im.data.slice() }));
  const want = applyBatchTfms(copies, tfms, true, new Rng(5));
  const got = await runBatchTfms([fresh, pinned, cached], tfms, true, 5);
  assert.deepEqual(Array.from(got.data), Array.from(want.data));
  assert.deepEqual(got.shape, [3, 12, 12, 3]);
  assert.equal(fresh.data.byteLength, 0, "a fresh decode is moved to the worker");
  assert.equal(pinned.data.byteLength, 20 * 14 * 3);
  assert.equal(cached.data.byteLength, 20 * 14 * 3);
  // A second batch with the cache's image: it is still there to copy.
  const again = await runBatchTfms([cached], tfms, false, 6);
  assert.deepEqual(Array.from(again.data), Array.from(applyBatchTfms([copies[2]!], tfms, false, new Rng(6)).data));
});
