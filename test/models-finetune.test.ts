/**
 * visionLearner + fineTune from the shipped digits-0-4 checkpoint on digits 5-9 with 20 labels per
 * class (the model card's transfer task), with the real Learner, on the wasm backend (with tsfast's training kernels).
 */
process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] || "wasm";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { xresnet18 } from "../lib/models/archs";
import { accuracy } from "../lib/learner/metrics";
import { modelSummary } from "../lib/learner/summary";
import { visionLearner, visionSplit } from "../lib/models/vision";
import { loadMnistDigits, mnistSplit, subset, ROOT, type ImageSet } from "./fixtures/models/digits";

/** A seeded shuffle (mulberry32) so epochs differ but runs repeat. */
function shuffled(n: number, seed: number): number[] {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx;
}

/** In-memory DataLoaders with the data floor's shape (train/valid loaders, vocab, Normalize batch tfm). */
function arrayDls(train: ImageSet, valid: ImageSet, bs: number) {
  let norm: { mean: number[]; std: number[] } | undefined;
  let epoch = 0;
  const loader = (s: ImageSet, shuffle: boolean) => ({
    n: s.n,
    bs,
    length: Math.ceil(s.n / bs),
    async *[Symbol.asyncIterator]() {
      const order = shuffle ? shuffled(s.n, 1000 + epoch++) : Array.from({ length: s.n }, (_, i) => i);
      for (let i = 0; i < s.n; i += bs) {
        const b = subset(s, order.slice(i, i + bs));
        const xb = tf.tidy(() => {
          const x = tf.tensor4d(b.x, [b.n, 28, 28, 1]);
          return norm ? tf.div(tf.sub(x, norm.mean[0]!), norm.std[0]!) : x;
        }) as tf.Tensor4D;
        yield { xb, yb: tf.tensor1d(b.y, "int32") };
      }
    },
  });
  const dls = {
    train: loader(train, true),
    valid: loader(valid, false),
    vocab: ["5", "6", "7", "8", "9"],
    c: 5,
    isMultiLabel: false,
    get normalize() {
      return norm;
    },
    addBatchTfm(t: { type: "Normalize"; mean: number[]; std: number[] }) {
      norm = { mean: t.mean, std: t.std };
    },
    async oneBatch() {
      for await (const b of dls.train) return b;
      throw new Error("empty");
    },
  };
  return dls;
}

test("visionLearner + fineTune(1) from the shipped checkpoint reaches the model card's accuracy on digits 5-9", async () => {
  await ready();
  const card = JSON.parse(readFileSync(path.join(ROOT, "checkpoints", "digits04-xresnet18-tiny.results.json"), "utf8")) as {
    transfer: { runs: { fine_tune_epochs: number; pretrained_acc_valid_small: number }[] };
  };
  const runs = card.transfer.runs.filter((r) => r.fine_tune_epochs === 1);
  const cardAcc = Math.min(...runs.map((r) => r.pretrained_acc_valid_small));
  const digits = loadMnistDigits();
  // 40 validation digits per class (not the card's 100) keep this test short on the pure-JS backend
  const { train, valid } = mnistSplit(digits.y, 20, 40);
  const five = (idx: number[]) => idx.filter((i) => digits.y[i]! >= 5);
  const relabel = (s: ImageSet): ImageSet => ({ ...s, y: s.y.map((v) => v - 5) });
  const dls = arrayDls(relabel(subset(digits, five(train))), relabel(subset(digits, five(valid))), 16);
  const learn = await visionLearner(dls, xresnet18, { pretrained: "digits04-xresnet18-tiny", metrics: accuracy, progress: false });
  assert.equal(dls.normalize?.mean.length, 1, "visionLearner added the checkpoint's 1-channel stats");
  const groups = visionSplit(learn.model);
  assert.match(modelSummary(learn.model, groups), /Model frozen up to parameter group #2/);
  const t0 = Date.now();
  await learn.fineTune(1);
  const [loss, acc] = await learn.validate();
  console.log(`fineTune(1): valid loss ${loss}, accuracy ${acc} (model card: ${cardAcc}), ${(Date.now() - t0) / 1000} s`);
  assert.match(modelSummary(learn.model, groups), /Model unfrozen/);
  assert.ok(acc! >= cardAcc - 0.06, `accuracy ${acc} vs the model card's ${cardAcc}`);
  learn.freeze();
  assert.match(modelSummary(learn.model, groups), /Group 1: [\d,]+ params, frozen except/);
});
