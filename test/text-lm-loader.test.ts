process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { LMDataLoader, lmDataLoaders } from "../lib/text/lm-loader";
import { Learner } from "../lib/learner/learner";
import { CrossEntropyLossFlat } from "../lib/learner/losses";
import { accuracy } from "../lib/learner/metrics";

async function batches(dl: LMDataLoader): Promise<{ x: number[][]; y: number[][] }[]> {
  const out: { x: number[][]; y: number[][] }[] = [];
  for await (const { xb, yb } of dl) {
    assert.equal(xb.dtype, "int32");
    out.push({ x: xb.arraySync(), y: yb.arraySync() });
    tf.dispose([xb, yb]);
  }
  return out;
}

test("LMDataLoader cuts the stream into bs contiguous rows, targets shifted by one, a shorter last batch (hand-checked)", async () => {
  await ready();
  // 22 tokens 0..21 in two documents, bs 3, seqLen 3:
  // corpus = 21 (22 - 1, a multiple of 3), 7 tokens per row: rows start at 0, 7 and 14;
  // ceil(7 / 3) = 3 batches, the last one 7 - 6 = 1 token long.
  const docs = [Array.from({ length: 10 }, (_, i) => i), Array.from({ length: 12 }, (_, i) => 10 + i)];
  const dl = new LMDataLoader(docs, { bs: 3, seqLen: 3 });
  assert.equal(dl.rowLen, 7);
  assert.equal(dl.length, 3);
  assert.equal(dl.lastLen, 1);
  assert.equal(dl.n, 9);
  const before = tf.memory().numTensors;
  const got = await batches(dl);
  assert.deepEqual(got, [
    { x: [[0, 1, 2], [7, 8, 9], [14, 15, 16]], y: [[1, 2, 3], [8, 9, 10], [15, 16, 17]] },
    { x: [[3, 4, 5], [10, 11, 12], [17, 18, 19]], y: [[4, 5, 6], [11, 12, 13], [18, 19, 20]] },
    { x: [[6], [13], [20]], y: [[7], [14], [21]] },
  ]);
  assert.equal(tf.memory().numTensors, before, "nothing kept once the batches are disposed");
  assert.deepEqual(await batches(dl), got, "without shuffle every epoch is the same");
  // One flat stream gives the same batches as the documents it concatenates.
  assert.deepEqual(await batches(new LMDataLoader(Int32Array.from({ length: 22 }, (_, i) => i), { bs: 3, seqLen: 3 })), got);
  // seqLen dividing the row length: no short batch (22 tokens, bs 3, seqLen 7 → one batch of 7).
  const whole = await batches(new LMDataLoader(docs, { bs: 3, seqLen: 7 }));
  assert.deepEqual(whole.map((b) => b.x), [[[0, 1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12, 13], [14, 15, 16, 17, 18, 19, 20]]]);
});

test("LMDataLoader with shuffle: documents reordered and the stream rotated each epoch, seeded, rows still contiguous", async () => {
  await ready();
  const docs = [[100, 101, 102], [200, 201, 202, 203], [300, 301], [400, 401, 402, 403, 404]];
  const total = 14;
  const epochs = async (seed: number) => {
    const dl = new LMDataLoader(docs, { bs: 2, seqLen: 3, shuffle: true, seed });
    const out: { stream: number[]; got: { x: number[][]; y: number[][] }[] }[] = [];
    for (let e = 0; e < 6; e++) {
      const got = await batches(dl);
      out.push({ stream: [...dl.stream!], got });
      assert.equal(got.length, dl.length, "same number of batches every epoch");
    }
    return out;
  };
  const a = await epochs(7);
  assert.deepEqual(await epochs(7), a, "same seed, same epochs");
  assert.notDeepEqual(await epochs(8), a, "another seed, other epochs");
  const streams = new Set(a.map((e) => e.stream.join(",")));
  assert.ok(streams.size > 1, "the stream changes between epochs");
  for (const { stream, got } of a) {
    assert.deepEqual([...stream].sort((p, q) => p - q), docs.flat().sort((p, q) => p - q), "every token once");
    // The stream is a rotation of the documents in some order: cut it where it wraps and each document is whole.
    const doubled = [...stream, ...stream];
    for (const d of docs) assert.ok(doubled.join(",").includes(d.join(",")), `document ${d} stays whole`);
    // Layout against the epoch's stream: row r reads stream[r*6 ...] (corpus 12, rowLen 6, batches of 3 and 3).
    const rowLen = Math.floor((total - 1) / 2);
    got.forEach((b, bi) =>
      b.x.forEach((row, r) => {
        const st = r * rowLen + bi * 3;
        assert.deepEqual(row, stream.slice(st, st + row.length));
        assert.deepEqual(b.y[r], stream.slice(st + 1, st + row.length + 1));
      }),
    );
  }
});

test("LMDataLoader refuses a corpus too small for bs, and bad options, with a message naming them", () => {
  assert.throws(() => new LMDataLoader([1, 2, 3], { bs: 4 }), /3 tokens are too few for bs 4/);
  assert.throws(() => new LMDataLoader([1, 2, 3], { seqLen: 0 }), /seqLen must be a positive integer, got 0/);
});

test("a Learner trains on lmDataLoaders: per-position cross-entropy and accuracy, shorter last batch included", async () => {
  await ready();
  // A stream where the next token is always (token + 1) mod 8: an embedding + dense model learns it exactly.
  const stream = Array.from({ length: 8 * 40 + 1 }, (_, i) => i % 8);
  const dls = lmDataLoaders(stream, stream.slice(0, 8 * 10 + 7), { bs: 4, seqLen: 5, seed: 1, vocab: ["a", "b", "c", "d", "e", "f", "g", "h"] });
  assert.ok(dls.valid.lastLen !== dls.valid.seqLen, "the validation loader ends with a shorter batch");
  const model = tf.sequential({
    layers: [tf.layers.embedding({ inputDim: 8, outputDim: 8, inputShape: [null as unknown as number] }), tf.layers.dense({ units: 8 })],
  });
  const learn = new Learner(dls, model, { lossFunc: CrossEntropyLossFlat(), metrics: accuracy, progress: false });
  await learn.fit(4, 3e-2);
  const [loss, acc] = await learn.validate();
  assert.equal(acc, 1, `accuracy over every position should be 1, got ${acc}`);
  assert.ok(loss! < 0.3, `validation loss ${loss}`);
  learn.dispose();
  model.dispose();
});
