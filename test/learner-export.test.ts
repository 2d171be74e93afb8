process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import { loadLearner, type ExportMeta } from "../lib/learner/export";
import { setInferencePreparer } from "../lib/learner/predict";
import { toyDls, toyModel } from "./helpers/learner-data";
import { tempDir } from "./helpers/tmp";

const tmp = () => tempDir("tsfast-export-");

/** A custom layer with no weights (like the models floor's pooling layers): multiplies by `factor`. */
class TimesLayer extends tf.layers.Layer {
  static className = "TestTimesLayer";
  readonly factor: number;
  constructor(cfg: { factor: number; name?: string }) {
    super(cfg);
    this.factor = cfg.factor;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.mul(Array.isArray(inputs) ? inputs[0]! : inputs, this.factor));
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), factor: this.factor };
  }
}
tf.serialization.registerClass(TimesLayer);

function modelWithCustomLayer(): tf.LayersModel {
  const { model } = toyModel();
  const out = new TimesLayer({ factor: 3 }).apply(model.outputs[0]!) as tf.SymbolicTensor;
  return tf.model({ inputs: model.inputs, outputs: out });
}

test("export → loadLearner gives identical predictions, with custom layers, vocab and inference spec", async () => {
  await ready();
  const dir = tmp();
  const dls = toyDls();
  const learn = new Learner(dls, modelWithCustomLayer(), { progress: false, path: dir });
  await learn.fit(1);
  await learn.export("export");
  assert.deepEqual(fs.readdirSync(dir).sort(), ["export"], "no temp folders left behind");
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "export", "tsfast.json"), "utf8")) as ExportMeta;
  assert.equal(meta.format, "tsfast-export");
  assert.equal(meta.version, 1);
  assert.ok(meta.layerClasses.includes("TestTimesLayer"));
  const inf = await loadLearner(path.join(dir, "export"));
  assert.deepEqual(inf.vocab, ["neg", "pos"]);
  assert.deepEqual(inf.dls.vocab, ["neg", "pos"]);
  const x = tf.tensor3d([0.5, -0.2, 0.9, 0.1], [2, 2, 1]);
  const a = await learn.predict(x);
  const b = await inf.predict(x);
  assert.deepEqual(b, a);
  assert.equal(a.label, a.index === 1 ? "pos" : "neg");
  assert.ok(Math.abs(a.probs.reduce((s, p) => s + p, 0) - 1) < 1e-6);
  // file inputs go through the data floor's prepareInferenceBatch with the saved spec
  const seen: unknown[] = [];
  setInferencePreparer(async (spec, inputs) => {
    seen.push(spec, inputs);
    return tf.tensor4d([0.5, -0.2, 0.9, 0.1], [1, 2, 2, 1]);
  });
  const c = await inf.predict("some/file.png");
  assert.deepEqual(seen, [{ kind: "toy" }, ["some/file.png"]]);
  assert.deepEqual(c, a);
  // a batch of inputs gives the same answers as one at a time; nothing leaks
  const before = tf.memory().numTensors;
  const xb = tf.tensor4d([0.5, -0.2, 0.9, 0.1, -1, -1, -1, 0.5], [2, 2, 2, 1]);
  const many = await inf.predictBatch(xb);
  assert.equal(many.length, 2);
  assert.deepEqual(many[0], a);
  xb.dispose();
  await inf.predict(x);
  assert.equal(tf.memory().numTensors, before);
  // exporting again replaces the artifact atomically
  await learn.export("export");
  assert.deepEqual(fs.readdirSync(dir).sort(), ["export"]);
  x.dispose();
  inf.model.dispose();
});

test("loadLearner rejects truncated, foreign, newer-format and unregistered-layer exports with clear errors", async () => {
  await ready();
  const dir = tmp();
  const learn = new Learner(toyDls(), toyModel().model, { progress: false, path: dir });
  await learn.export("good");
  const copy = (name: string) => {
    fs.cpSync(path.join(dir, "good"), path.join(dir, name), { recursive: true });
    return path.join(dir, name);
  };
  const editMeta = (d: string, f: (m: Record<string, unknown>) => void) => {
    const p = path.join(d, "tsfast.json");
    const m = JSON.parse(fs.readFileSync(p, "utf8")) as Record<string, unknown>;
    f(m);
    fs.writeFileSync(p, JSON.stringify(m));
  };
  const truncated = copy("truncated");
  const w = fs.readFileSync(path.join(truncated, "weights.bin"));
  fs.writeFileSync(path.join(truncated, "weights.bin"), w.subarray(0, w.length - 8));
  await assert.rejects(loadLearner(truncated), /weights\.bin has \d+ bytes but the export recorded \d+; the file is truncated/);
  const foreign = copy("foreign");
  editMeta(foreign, (m) => (m["format"] = "something-else"));
  await assert.rejects(loadLearner(foreign), /holds format "something-else", not "tsfast-export"/);
  const newer = copy("newer");
  editMeta(newer, (m) => (m["version"] = 99));
  await assert.rejects(loadLearner(newer), /version 99, newer than this tsfast reads \(1\); upgrade tsfast/);
  await assert.rejects(loadLearner(path.join(dir, "nothing-here")), /tsfast\.json is missing — this folder is not a tsfast export/);
  const badJson = copy("badjson");
  fs.writeFileSync(path.join(badJson, "tsfast.json"), "{\"format\": \"tsfast-exp");
  await assert.rejects(loadLearner(badJson), /is not valid JSON .*truncated or corrupted/);
  const unknown = copy("unknown");
  editMeta(unknown, (m) => (m["layerClasses"] = ["Dense", "NoSuchPoolLayer"]));
  await assert.rejects(loadLearner(unknown), /layer class\(es\) NoSuchPoolLayer that are not registered/);
});

test("save/load restore weights and optimizer state from <path>/models/<name>.tsfast", async () => {
  await ready();
  const dir = tmp();
  const { model } = toyModel();
  const learn = new Learner(toyDls(), model, { progress: false, path: dir });
  await learn.fit(1);
  const file = await learn.save("stage1");
  assert.equal(file, path.join(dir, "models", "stage1.tsfast"));
  const w0 = model.weights.map((w) => Array.from(w.read().dataSync()));
  const st = learn.opt!.stateDict();
  const s0 = st.params.map((p) => [p.step, ...Object.values(p.tensors).map((t) => Array.from(t.dataSync()))]);
  tf.dispose(st.params.flatMap((p) => Object.values(p.tensors)));
  await learn.fit(1, 1e-2);
  await learn.load("stage1");
  model.weights.forEach((w, i) => assert.deepEqual(Array.from(w.read().dataSync()), w0[i]));
  const st2 = learn.opt!.stateDict();
  assert.deepEqual(st2.params.map((p) => [p.step, ...Object.values(p.tensors).map((t) => Array.from(t.dataSync()))]), s0);
  tf.dispose(st2.params.flatMap((p) => Object.values(p.tensors)));
  const other = new Learner(toyDls(), toyModel(3).model, { progress: false, path: dir });
  await assert.rejects(other.load("stage1"), /has shape \[8,2\] in .* but \[8,3\] in the model/);
  await assert.rejects(learn.load("nope"), /checkpoint .*nope\.tsfast does not exist/);
});

test("getPreds returns probabilities in loader order, targets, and per-item losses", async () => {
  await ready();
  const dls = toyDls();
  const learn = new Learner(dls, toyModel().model, { progress: false });
  const before = tf.memory().numTensors;
  const { preds, targs, losses } = await learn.getPreds({ withLoss: true });
  assert.deepEqual(preds.shape, [dls.valid.n, 2]);
  assert.deepEqual(Array.from(targs.dataSync()), dls.valid.ys);
  // per-item loss = −log p[target]
  const p = preds.arraySync();
  const l = losses!.dataSync();
  dls.valid.ys.forEach((y, i) => assert.ok(Math.abs(l[i]! + Math.log(p[i]![y as number]!)) < 1e-5));
  tf.dispose([preds, targs, losses!]);
  assert.equal(tf.memory().numTensors, before);
});

test("tta blends (1 − beta)·mean of augmented passes with beta·plain predictions, as fastai", async () => {
  await ready();
  const dls = toyDls();
  const learn = new Learner(dls, toyModel().model, { progress: false });
  await learn.fit(1, 1e-2);
  const plain = await learn.getPreds();
  const flipped = await learn.getPreds({ transform: (x) => tf.reverse(x, 2) });
  const before = tf.memory().numTensors;
  const r = await learn.tta({ augment: "flip" }); // n 4: flip, plain, flip, plain; beta 0.25 → 0.375·flip + 0.625·plain
  assert.equal(tf.memory().numTensors, before + 2);
  const want = tf.tidy(() => tf.add(tf.mul(flipped.preds, 0.375), tf.mul(plain.preds, 0.625)));
  const got = r.preds.dataSync();
  want.dataSync().forEach((v, i) => assert.ok(Math.abs(got[i]! - v) < 1e-6));
  const mx = await learn.tta({ augment: "flip", useMax: true });
  const wantMax = tf.maximum(flipped.preds, plain.preds);
  assert.deepEqual(Array.from(mx.preds.dataSync()), Array.from(wantMax.dataSync()));
  tf.dispose([plain.preds, plain.targs, flipped.preds, flipped.targs, r.preds, r.targs, want, mx.preds, mx.targs, wantMax]);
});
