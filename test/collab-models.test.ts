/** EmbeddingDotBias / EmbeddingNN against hand computations and PyTorch ports of fastai's modules; collabLearner's predict, export and load. */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import "../lib/wiring";
import { CollabDataLoaders } from "../lib/collab/data";
import { frameFromRows } from "../lib/tabular/frame";
import { collabLearner, embeddingDotBias, embeddingNN, ColumnEmbedding } from "../lib/models/collab";
import { embSzRule } from "../lib/models/tabular";
import { modelStateDict } from "../lib/models/weights";
import { loadLearner } from "../lib/learner/export";
import { torchJson } from "./helpers/torch";
import { tempDir } from "./helpers/tmp";

before(ready);

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

test("EmbeddingDotBias: Σ u·i + biases, through sigmoid_range, equals the hand computation; the tables are exposed by name", () => {
  const model = embeddingDotBias(2, 3, 4, { yRange: [0, 5.5] });
  model.getLayer("u_weight").setWeights([tf.tensor2d([[0, 0], [1, 2], [-1, 0.5]])]);
  model.getLayer("i_weight").setWeights([tf.tensor2d([[0, 0], [3, -1], [0.5, 0.5], [2, 2]])]);
  model.getLayer("u_bias").setWeights([tf.tensor2d([[0], [0.1], [-0.2]])]);
  model.getLayer("i_bias").setWeights([tf.tensor2d([[0], [0.3], [0], [-0.5]])]);
  const x = tf.tensor2d([[1, 1], [2, 3], [1, 2]], [3, 2], "int32");
  const out = Array.from((model.predict(x) as tf.Tensor).dataSync());
  // user 1 · item 1 = 1·3 + 2·(−1) = 1, + 0.1 + 0.3 = 1.4; user 2 · item 3 = −2 + 1 = −1, − 0.2 − 0.5 = −1.7;
  // user 1 · item 2 = 0.5 + 1 = 1.5, + 0.1 + 0 = 1.6
  const want = [1.4, -1.7, 1.6].map((v) => sigmoid(v) * 5.5);
  out.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-5, `row ${i}: ${v} vs ${want[i]}`));
  assert.deepEqual(model.uWeight.shape, [3, 2]);
  assert.deepEqual(model.iBias!.shape, [4, 1]);
  assert.deepEqual(Array.from(model.iBias!.dataSync()), [0, 0.3, 0, -0.5].map(Math.fround));
  const plain = embeddingDotBias(2, 3, 4);
  plain.setWeights(model.getWeights());
  const raw = Array.from((plain.predict(x) as tf.Tensor).dataSync());
  [1.4, -1.7, 1.6].forEach((v, i) => assert.ok(Math.abs(raw[i]! - v) < 1e-5));
  tf.dispose([x]);
});

test("embeddings start as fastai's: normal of std 0.01 truncated at 2 std; emb_sz_rule as fastai's", () => {
  const model = embeddingDotBias(50, 600, 400, { seed: 3 });
  const w = Array.from(model.iWeight.dataSync());
  const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
  assert.ok(Math.abs(std - 0.0088) < 0.0005, `std ${std} (a ±2σ-truncated normal of σ 0.01 has std 0.0088)`);
  assert.ok(w.every((v) => Math.abs(v) <= 0.02 + 1e-7));
  // fastai: min(600, round(1.6 * n_cat**0.56))
  assert.equal(embSzRule(672), 61);
  assert.equal(embSzRule(8206), 249);
  assert.equal(embSzRule(3), 3);
  assert.equal(embSzRule(10 ** 7), 600);
});

/** tsfast's weights as JSON for PyTorch, then PyTorch's outputs on the same inputs (bench/collab_torch.py's modules). */
function torchOutputs(model: tf.LayersModel, kind: string, ctor: string, x: number[][], train: boolean): number[] {
  const sd: Record<string, { shape: number[]; data: number[] }> = {};
  for (const [k, v] of modelStateDict(model)) sd[k] = { shape: v.shape, data: Array.from(v.data as ArrayLike<number>) };
  return torchJson<number[]>(`
import sys; sys.path.insert(0, "bench")
from collab_torch import EmbeddingDotBias, EmbeddingNN
sd = ${JSON.stringify(sd)}
m = ${ctor}
m.load_state_dict({k: torch.tensor(v["data"], dtype=torch.int64 if k.endswith("num_batches_tracked") else torch.float32).reshape(v["shape"]) for k, v in sd.items()})
m.train(${train ? "True" : "False"})
with torch.no_grad(): out = m(torch.tensor(${JSON.stringify(x)}))
print(json.dumps(out.reshape(-1).tolist()))  # ${kind}`);
}

test("EmbeddingDotBias and EmbeddingNN (eval and training mode) give PyTorch's outputs for the same weights", () => {
  const x = [[1, 2], [3, 0], [6, 9], [2, 2], [5, 1], [0, 7]];
  const xt = tf.tensor2d(x, [x.length, 2], "int32");
  const dot = embeddingDotBias(5, 7, 10, { yRange: [0, 5.5], seed: 1 });
  // larger weights than the init, so the outputs differ visibly between rows
  dot.setWeights(dot.getWeights().map((w, k) => tf.randomNormal(w.shape, 0, 0.5, "float32", 10 + k)));
  const want = torchOutputs(dot, "dot", "EmbeddingDotBias(5, 7, 10, y_range=(0, 5.5))", x, false);
  const got = Array.from((dot.predict(xt) as tf.Tensor).dataSync());
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-5, `dot row ${i}: ${v} vs ${want[i]}`));
  const nn = embeddingNN([[7, 4], [10, 6]], [8, 5], { yRange: [0, 5.5], seed: 2 });
  // random weights everywhere, the BatchNorm running variances positive
  nn.setWeights(nn.weights.map((v, k) => {
    const r = tf.randomNormal(v.shape as number[], 0, 0.5, "float32", 20 + k);
    return /moving_variance/.test(v.originalName) ? tf.add(tf.abs(r), 0.5) : r;
  }));
  for (const train of [false, true]) {
    const ref = torchOutputs(nn, "nn", "EmbeddingNN([(7, 4), (10, 6)], [8, 5], y_range=(0, 5.5))", x, train);
    const out = Array.from((nn.apply(xt, { training: train }) as tf.Tensor).dataSync());
    out.forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) < 1e-4, `nn (training ${train}) row ${i}: ${v} vs ${ref[i]}`));
  }
  xt.dispose();
});

function tinyRatings() {
  const rows = [];
  // ratings a user bias plus an item bias explain: learnable, so the MSE must fall
  for (let k = 0; k < 240; k++) {
    const u = k % 12;
    const m = (k * 7 + Math.floor(k / 12)) % 15;
    rows.push({ user: `u${u}`, movie: `m${m}`, rating: 1 + (u % 3) + (m % 2) * 1.5 });
  }
  return CollabDataLoaders.fromDf(frameFromRows(rows), { bs: 32, seed: 3 });
}

test("collabLearner trains (MSE falls), predict({ user, item }) is the model's output, export/loadLearner keep the vocabularies; unknown ids are errors", async () => {
  const dls = tinyRatings();
  const learn = collabLearner(dls, { nFactors: 4, yRange: [0, 5.5], progress: false });
  await learn.fit(1, 0);
  const before = learn.validLoss!;
  await learn.fitOneCycle(8, { lrMax: 0.05 });
  assert.ok(learn.validLoss! < before * 0.9, `valid MSE ${learn.validLoss} after training vs ${before} before`);
  const p = await learn.predict({ user: "u3", item: "m5" });
  // by hand from the learned tables
  const u = dls.users.encode("u3");
  const i = dls.items.encode("m5");
  const uw = learn.model.uWeight.arraySync() as number[][];
  const iw = learn.model.iWeight.arraySync() as number[][];
  const res = uw[u]!.reduce((a, v, k) => a + v * iw[i]![k]!, 0) + (learn.model.uBias!.arraySync() as number[][])[u]![0]! + (learn.model.iBias!.arraySync() as number[][])[i]![0]!;
  assert.ok(Math.abs(p.values![0]! - sigmoid(res) * 5.5) < 1e-5, `${p.values![0]} vs ${sigmoid(res) * 5.5}`);
  await assert.rejects(learn.predict({ user: "nobody", item: "m5" }), /unknown user "nobody": not among the 12 values of "user"/);
  await assert.rejects(learn.predict({ user: "u3", item: "m99" }), /unknown item "m99"/);
  const many = await learn.predictBatch([{ user: "u3", item: "m5" }, { user: "u0", item: "m1" }]);
  assert.ok(Math.abs(many[0]!.values![0]! - p.values![0]!) < 1e-6);

  const dir = tempDir("tsfast-collab-export-");
  await learn.export(dir);
  const loaded = await loadLearner(dir);
  const q = await loaded.predict({ user: "u3", item: "m5" });
  assert.ok(Math.abs(q.values![0]! - p.values![0]!) < 1e-6);
  await assert.rejects(loaded.predict({ user: "u3", item: "zzz" }), /unknown item "zzz": not among the 15 values of "movie"/);
  assert.ok(loaded.model.layers.some((l) => l instanceof ColumnEmbedding));
});

test("collabLearner({ useNn: true }): EmbeddingNN with emb_sz_rule widths and layers [nFactors] by default", async () => {
  const dls = tinyRatings();
  const learn = collabLearner(dls, { useNn: true, nFactors: 6, yRange: [0, 5.5], progress: false });
  assert.deepEqual(learn.model.uWeight.shape, [13, embSzRule(13)]);
  assert.deepEqual(learn.model.iWeight.shape, [16, embSzRule(16)]);
  assert.deepEqual((learn.model.getLayer("layers.0.0") as tf.layers.Layer).getConfig()["units"], 6);
  await learn.fitOneCycle(2, { lrMax: 0.01 });
  assert.ok(Number.isFinite(learn.validLoss!));
  const p = await learn.predict({ user: "u1", item: "m2" });
  assert.ok(p.values![0]! > 0 && p.values![0]! < 5.5);
});
