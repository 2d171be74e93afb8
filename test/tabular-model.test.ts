/**
 * `tabularModel` / `tabularLearner` (fastai's TabularModel): the parameter count and, for the same
 * weights, the outputs of the PyTorch port in bench/tabular_torch.py; training on each engine
 * without leaking tensors; `predict` on row objects (a missing column is an error naming it, an
 * unseen category becomes `#na#`); export and `loadLearner` carry the procs' state.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { readSafetensors } from "../lib/models/safetensors";
import { loadWeights } from "../lib/models/weights";
import { tabularLearner, tabularModel } from "../lib/models/tabular";
import { loadLearner } from "../lib/learner/export";
import { accuracy } from "../lib/learner/metrics";
import { frameFromRows, type Cell } from "../lib/tabular/frame";
import { Categorify, FillMissing, Normalize } from "../lib/tabular/procs";
import { TabularDataLoaders } from "../lib/tabular/data";
import { Rng } from "../lib/data/random";
import { maxDiff, registerEngines } from "./helpers/engines";
import { tempDir } from "./helpers/tmp";
import "../lib/wiring";
import { serve } from "../lib/serve/server";

const PY = "/usr/bin/python3";
const PORT = path.join(__dirname, "..", "..", "bench", "tabular_torch.py");
const dir = tempDir("tsfast-tabmodel-");

let engines: string[] = [];
before(async () => {
  engines = (await registerEngines()).filter((e) => e !== "cpu");
});
after(() => tf.setBackend("cpu"));

interface Spec {
  tag: string;
  emb_szs: [number, number][];
  n_cont: number;
  out_sz: number;
  layers: number[];
  y_range?: [number, number];
  bs?: number;
}

function torchFixture(spec: Spec): { params: number } {
  try {
    const out = execFileSync(PY, [PORT, "fixture", dir, JSON.stringify(spec)], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return JSON.parse(out.trim().split("\n").pop()!) as { params: number };
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`the PyTorch port failed (needs Debian python3-torch at ${PY}): ${err.stderr ?? err.message}`);
  }
}

/** max |tsfast − PyTorch| / max |PyTorch| for `spec` on `engine`, after checking the parameter count. */
async function compare(spec: Spec, engine: string): Promise<number> {
  await tf.setBackend(engine);
  const { params } = torchFixture(spec);
  const model = tabularModel(spec.emb_szs, spec.n_cont, spec.out_sz, { layers: spec.layers, yRange: spec.y_range });
  const ours = model.trainableWeights.reduce((a, w) => a + w.shape.reduce<number>((p, d) => p * (d ?? 1), 1), 0);
  assert.equal(ours, params, `trainable parameters: tsfast ${ours}, PyTorch ${params}`);
  await loadWeights(model, path.join(dir, `${spec.tag}.safetensors`));
  const io = await readSafetensors(path.join(dir, `${spec.tag}.io.safetensors`));
  const x = io.tensors.get("x")!;
  const want = io.tensors.get("y")!;
  const got = tf.tidy(() => (model.predict(tf.tensor(x.data, x.shape)) as tf.Tensor).dataSync());
  model.dispose();
  const { diff: err, scale } = maxDiff(got, want.data);
  assert.ok(scale > 0.01, `the reference output is not trivial (max |y| ${scale})`);
  console.log(`# tabular ${spec.tag} on ${engine}: ${params} parameters, max |tsfast - torch| ${err.toExponential(2)}, relative ${(err / scale).toExponential(2)}`);
  return err / scale;
}

test("TabularModel matches the PyTorch port of fastai's: parameter count and eval outputs to 1e-4 (3 categoricals, 4 continuous, 2 hidden layers)", async () => {
  const spec: Spec = { tag: "cls", emb_szs: [[5, 4], [3, 3], [17, 8]], n_cont: 4, out_sz: 3, layers: [20, 10], bs: 16 };
  for (const e of engines) assert.ok((await compare(spec, e)) < 1e-4);
});

test("TabularModel with yRange (SigmoidRange), one categorical, one hidden layer, matches the port", async () => {
  const spec: Spec = { tag: "reg", emb_szs: [[4, 3]], n_cont: 2, out_sz: 1, layers: [8], y_range: [-1, 3] };
  for (const e of engines) assert.ok((await compare(spec, e)) < 1e-4);
});

test("TabularModel with only continuous columns matches the port", async () => {
  const spec: Spec = { tag: "cont", emb_szs: [], n_cont: 3, out_sz: 2, layers: [6] };
  assert.ok((await compare(spec, engines[engines.length - 1]!)) < 1e-4);
});

// A table where the class follows a categorical and a continuous column, with gaps in both.
function synthetic(n: number, seed = 0): Record<string, Cell>[] {
  const rng = new Rng(seed);
  const colours = ["red", "green", "blue", "grey"];
  return Array.from({ length: n }, () => {
    const colour = colours[rng.int(4)]!;
    const size = rng.uniform(0, 10);
    const good = (colour === "red" || colour === "blue") !== size > 5;
    return { colour: rng.next() < 0.05 ? null : colour, size: rng.next() < 0.1 ? null : size, noise: rng.uniform(-1, 1), y: good ? "good" : "bad" };
  });
}

function dlsOf(rows: Record<string, Cell>[]): TabularDataLoaders {
  return TabularDataLoaders.fromDf(frameFromRows(rows), { procs: [Categorify, FillMissing, Normalize], catNames: ["colour"], contNames: ["size", "noise"], yNames: "y", bs: 32 });
}

test("tabularLearner learns a synthetic table on each engine (accuracy ≥ 0.8) without leaking tensors; predict takes a row object", async () => {
  for (const e of engines) {
    await tf.setBackend(e);
    const dls = dlsOf(synthetic(600));
    const learn = tabularLearner(dls, { layers: [32, 16], metrics: accuracy, progress: false });
    assert.deepEqual(learn.model.getLayer("embeds.0").getWeights()[0]!.shape, [5, 4]); // #na# + 4 colours → emb_sz_rule(5) = round(1.6 · 5^0.56) = round(3.94) = 4
    await learn.fitOneCycle(1, { lrMax: 1e-2 }); // warm-up: kernels compiled, optimizer state made
    const before = tf.memory().numTensors;
    await learn.fitOneCycle(3, { lrMax: 1e-2 });
    assert.equal(tf.memory().numTensors, before, `no tensor leaked over a fit on ${e}`);
    const acc = learn.metricValues![0]!;
    console.log(`# tabularLearner on ${e}: validation accuracy ${acc.toFixed(3)}`);
    assert.ok(acc >= 0.8, `accuracy ${acc} on ${e}`);
    const p = await learn.predict({ colour: "red", size: 8.5, noise: 0 });
    assert.equal(p.label, "bad");
    assert.equal(p.row["colour"], "red");
    const unseen = await learn.predict({ colour: "purple", size: null, noise: 0.1 });
    assert.equal(unseen.row["colour"], "#na#", "an unseen category is #na#");
    assert.equal(unseen.row["size_na"], true);
    assert.ok(Math.abs((unseen.row["size"] as number) - (dls.to.procs[0] as FillMissing).medians["size"]!) < 1e-3, "a missing number is the training median");
    await assert.rejects(learn.predict({ colour: "red", noise: 0 }), /row 0 has no column "size"; the model needs colour, size, noise/);
    await assert.rejects(learn.predict({ colour: "red", size: "big", noise: 0 }), /"size" is given as continuous .* holds "big"/);
    dls.dispose();
    learn.model.dispose();
  }
});

test("export and loadLearner carry the procs' state: the loaded learner predicts raw rows as the trained one", async () => {
  await tf.setBackend(engines[engines.length - 1]!);
  const dls = dlsOf(synthetic(300, 1));
  const learn = tabularLearner(dls, { layers: [16], progress: false });
  await learn.fitOneCycle(1, { lrMax: 1e-2 });
  const out = path.join(dir, "export");
  await learn.export(out);
  const loaded = await loadLearner(out);
  const rows = [
    { colour: "green", size: 2, noise: 0.3 },
    { colour: null, size: null, noise: -0.5 },
    { colour: "never seen", size: 7, noise: 0 },
  ];
  for (const r of rows) {
    const a = await learn.predict(r);
    const b = await loaded.predict(r as never);
    assert.equal(b.label, a.label);
    b.probs.forEach((v, i) => assert.ok(Math.abs(v - a.probs[i]!) < 1e-6, `probability ${i}: ${v} vs ${a.probs[i]}`));
  }
  await assert.rejects(loaded.predict({ colour: "red" } as never), /row 0 has no column "size"/);
  const meta = loaded.meta.inferenceSpec as { kind: string; procs: { name: string }[] };
  assert.equal(meta.kind, "tabular");
  assert.deepEqual(meta.procs.map((p) => p.name), ["FillMissing", "Categorify", "Normalize"]);

  // serve(export): a JSON row in, the same prediction out; a bad row is a 422 naming the column
  const h = await serve(out, { port: 0 });
  try {
    const post = async (body: string) => {
      const res = await fetch(`${h.url}predict`, { method: "POST", headers: { "Content-Type": "application/json" }, body });
      return { status: res.status, json: (await res.json()) as { label?: string; probs?: number[]; error?: string; code?: string } };
    };
    for (const r of rows) {
      const want = await learn.predict(r);
      const got = await post(JSON.stringify(r));
      assert.equal(got.status, 200, JSON.stringify(got.json));
      assert.equal(got.json.label, want.label);
      got.json.probs!.forEach((v, i) => assert.ok(Math.abs(v - want.probs[i]!) < 1e-6));
    }
    const missing = await post(JSON.stringify({ colour: "red", noise: 1 }));
    assert.equal(missing.status, 422);
    assert.match(missing.json.error!, /no column "size"/);
    const broken = await post("{ colour: red");
    assert.equal(broken.status, 400);
    assert.equal(broken.json.code, "bad_json");
    const list = await post("[1, 2]");
    assert.equal(list.status, 400);
  } finally {
    await h.close();
  }
  // serve(learn) with broken weights: a 500 naming the cause, not a 422 blaming the row
  const w = learn.model.trainableWeights.at(-1)!;
  const kept = w.read().clone();
  w.write(tf.fill(w.shape as number[], NaN));
  const h2 = await serve(learn, { port: 0 });
  try {
    const res = await fetch(`${h2.url}predict`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(rows[0]) });
    const json = (await res.json()) as { error?: string; code?: string };
    assert.equal(res.status, 500, JSON.stringify(json));
    assert.equal(json.code, "predict_failed");
    assert.match(json.error!, /the model output NaN or infinite values/);
  } finally {
    await h2.close();
    w.write(kept);
    kept.dispose();
  }
  dls.dispose();
});

test("tabularLearner: embSzs naming a column that is not categorical is an error listing the categoricals", async () => {
  await tf.setBackend(engines[0]!);
  const dls = dlsOf(synthetic(64));
  assert.throws(() => tabularLearner(dls, { embSzs: { size: 4 } }), /embSzs names "size", which is not a categorical column; they are: colour, size_na/);
  const learn = tabularLearner(dls, { embSzs: { colour: 7 }, progress: false });
  assert.deepEqual(learn.model.getLayer("embeds.0").getWeights()[0]!.shape, [5, 7]);
  dls.dispose();
});

test("regression: yBlock regression with yRange trains with MSE, and predict returns the number", async () => {
  await tf.setBackend(engines[engines.length - 1]!);
  const rng = new Rng(3);
  const rows = Array.from({ length: 400 }, () => {
    const kind = ["a", "b"][rng.int(2)]!;
    const x = rng.uniform(0, 1);
    return { kind: kind, x: x, y: (kind === "a" ? 1 : 2) + x };
  });
  const dls = TabularDataLoaders.fromDf(frameFromRows(rows), { procs: [Categorify, Normalize], catNames: ["kind"], contNames: ["x"], yNames: "y", bs: 32 });
  assert.equal(dls.targetKind, "regression");
  const learn = tabularLearner(dls, { layers: [32], yRange: [0, 3.5], progress: false });
  assert.equal(learn.lossFunc.name, "MSELossFlat");
  await learn.fitOneCycle(8, { lrMax: 1e-2 });
  const p = await learn.predict({ kind: "b", x: 0.5 });
  assert.ok(p.values && Math.abs(p.values[0]! - 2.5) < 0.3, `predicted ${p.values} for 2.5`);
  dls.dispose();
});
