/**
 * visionLearner's pieces without the Learner: fastai's head against PyTorch, the 3-group split,
 * the summary, normalisation stats, weight save/load round trips and mismatch errors.
 */
process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] || "wasm";
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { resnet18, xresnet18 } from "../lib/models/archs";
import { createVisionModel, statsForChannels, visionLearner, visionSplit } from "../lib/models/vision";
import { modelSummary } from "../lib/learner/summary";
import { loadWeights, saveWeights } from "../lib/models/weights";
import { readSafetensors } from "../lib/models/safetensors";
import { simpleCnn } from "../lib/models/blocks";
import { AdaptiveConcatPool2d } from "../lib/models/layers";
import { maxDiff as compare } from "./helpers/compare";

const dir = mkdtempSync(path.join(os.tmpdir(), "tsfast-vision-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const TINY = { widen: 0.25, stemSzs: [16, 16, 32] };

/** Largest |a − b| (Infinity on NaN); empty or mismatched arrays are refused. */
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => compare(a, b).diff;

test("fastai's head (concat pool, BN, dropout, bias-free linears) matches PyTorch logits", async () => {
  await ready();
  const fixture = path.join(__dirname, "..", "..", "test", "fixtures", "models", "make_torch_fixture.py");
  execFileSync("/usr/bin/python3", [fixture, dir, "lrn:learner:32:3:1:10"], { stdio: "pipe" });
  const { model } = await createVisionModel(xresnet18, 10, { pretrained: false, nIn: 1, archOptions: TINY });
  await loadWeights(model, path.join(dir, "lrn.safetensors"));
  const io = await readSafetensors(path.join(dir, "lrn.io.safetensors"));
  const x = io.tensors.get("x")!;
  const got = tf.tidy(() => (model.predict(tf.transpose(tf.tensor(x.data, x.shape), [0, 2, 3, 1])) as tf.Tensor).dataSync());
  const want = io.tensors.get("logits")!.data;
  assert.ok(maxDiff(got, want) < 1e-4, `max |tsfast - torch| = ${maxDiff(got, want)}`);
  const names = model.layers.filter((l) => l.name.startsWith("head.")).map((l) => `${l.name}:${l.getClassName()}`);
  assert.deepEqual(names, [
    "head.0:AdaptiveConcatPool2d", "head.1:Flatten", "head.2:BatchNormalization", "head.3:Dropout", "head.4:Dense",
    "head.5:ReLU", "head.6:BatchNormalization", "head.7:Dropout", "head.8:Dense",
  ]);
  model.dispose();
});

test("visionSplit gives fastai's three groups for resnet and xresnet", async () => {
  const r = (await createVisionModel(resnet18, 5, { pretrained: false })).model;
  const [g0, g1, g2] = visionSplit(r);
  assert.ok(g0!.some((l) => l.name === "conv1") && g0!.some((l) => l.name === "layer2.1.conv2"));
  assert.ok(!g0!.some((l) => l.name.startsWith("layer3")));
  assert.ok(g1!.some((l) => l.name === "layer3.0.conv1") && g1!.every((l) => /^layer[34]\./.test(l.name)));
  assert.ok(g2!.every((l) => l.name.startsWith("head.")) && g2!.length === 9);
  const x = (await createVisionModel(xresnet18, 5, { pretrained: false, archOptions: TINY })).model;
  const [s0, s1] = visionSplit(x);
  assert.ok(s0!.some((l) => l.name === "conv1.6") && !s0!.some((l) => l.name.startsWith("layer")));
  assert.ok(s1!.some((l) => l.name === "layer1.0.conv1"));
  r.dispose();
  x.dispose();
});

test("modelSummary reports frozen and trainable groups", async () => {
  const { model } = await createVisionModel(xresnet18, 3, { pretrained: false, archOptions: TINY, nIn: 1 });
  const groups = visionSplit(model);
  // freeze the body, keep BatchNorm trainable, as Learner.freeze() does with trainBn
  for (const g of groups.slice(0, 2)) for (const l of g) l.trainable = l.getClassName() === "BatchNormalization";
  const s = modelSummary(model, groups);
  assert.match(s, /Group 0: [\d,]+ params, frozen except [\d,]+ \(BatchNorm\)/);
  assert.match(s, /Group 2: [\d,]+ params, trainable/);
  assert.match(s, /Model frozen up to parameter group #2/);
  assert.match(s, /head\.8\s+Dense\s+\[bs, 3\]\s+1,536\s+True\s+2/);
  assert.match(s, /conv1\.0\s+PaddedConv2D\s+\[bs, bs, bs, 16\]\s+144\s+False\s+0/);
  for (const g of groups) for (const l of g) l.trainable = true;
  const u = modelSummary(model, groups);
  assert.match(u, /Model unfrozen/);
  const total = model.trainableWeights.reduce((a, w) => a + w.shape.reduce((x: number, y) => x * (y ?? 1), 1), 0);
  assert.match(u, new RegExp(`Total trainable params: ${total.toLocaleString("en-US")}`));
  model.dispose();
});

test("statsForChannels repeats 1-channel stats and averages RGB stats for grayscale", () => {
  assert.deepEqual(statsForChannels({ mean: [0.5], std: [0.25] }, 3), { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
  const g = statsForChannels({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }, 1);
  assert.ok(Math.abs(g.mean[0]! - 0.449) < 1e-9 && Math.abs(g.std[0]! - 0.226) < 1e-9);
});

test("saveWeights → loadWeights round-trips a model exactly (F32) and to half precision (F16)", async () => {
  const a = await xresnet18({ nIn: 1, nOut: 4, ...TINY, seed: 1 });
  const b = await xresnet18({ nIn: 1, nOut: 4, ...TINY, seed: 2 });
  const x = tf.randomUniform([2, 32, 32, 1], 0, 1, "float32", 3);
  await saveWeights(a, path.join(dir, "a.safetensors"), { metadata: { note: "hi" } });
  const meta = await loadWeights(b, path.join(dir, "a.safetensors"));
  assert.equal(meta["note"], "hi");
  const ya = (a.predict(x) as tf.Tensor).dataSync();
  assert.ok(maxDiff(ya, (b.predict(x) as tf.Tensor).dataSync()) === 0);
  await saveWeights(a, path.join(dir, "a16.safetensors"), { dtype: "F16" });
  const c = await xresnet18({ nIn: 1, nOut: 4, ...TINY, seed: 3 });
  await loadWeights(c, path.join(dir, "a16.safetensors"));
  const d = maxDiff(ya, (c.predict(x) as tf.Tensor).dataSync());
  assert.ok(d > 0 && d < 5e-2, `F16 weights change logits by ${d}`);
  tf.dispose([x, a, b, c] as unknown as tf.Tensor[]);
});

test("loading weights of another architecture fails naming missing, unexpected and mis-shaped tensors", async () => {
  const small = await resnet18({ nIn: 1, nOut: 4, widen: 0.25 });
  await saveWeights(small, path.join(dir, "r18.safetensors"));
  const other = await xresnet18({ nIn: 1, nOut: 4, ...TINY });
  const before = other.getLayer("layer1.0.conv1").getWeights()[0]!.dataSync().slice();
  await assert.rejects(loadWeights(other, path.join(dir, "r18.safetensors")), (e: Error) => {
    assert.match(e.message, /r18\.safetensors do not match the model "xresnet18"; nothing was loaded/);
    assert.match(e.message, /missing from the file \(\d+\): conv1\.0\.weight/);
    assert.match(e.message, /in the file but not in the model \(\d+\): conv1\.weight/);
    assert.match(e.message, /shape mismatch/);
    return true;
  });
  assert.deepEqual(other.getLayer("layer1.0.conv1").getWeights()[0]!.dataSync(), before, "nothing was loaded");
  await assert.rejects(resnet18({ weights: path.join(dir, "r18.safetensors") }), /shape mismatch \(\d+\): conv1\.weight: file \[16, 1, 7, 7\], model \[64, 1, 7, 7\]/);
  await assert.rejects(resnet18({ weights: path.join(dir, "nope.safetensors") }), /resnet18 weights: the file .*nope\.safetensors does not exist/);
});

test("a 3-channel stem loads into a 1-channel model by summing its filters (fastai's rule)", async () => {
  const rgb = await resnet18({ nOut: 4, widen: 0.25, seed: 5 });
  await saveWeights(rgb, path.join(dir, "rgb.safetensors"));
  const gray = await resnet18({ weights: path.join(dir, "rgb.safetensors"), nIn: 1, widen: 0.25 });
  const g = tf.randomUniform([1, 40, 40, 1], 0, 1, "float32", 9);
  const yGray = (gray.predict(g) as tf.Tensor).dataSync();
  const yRgb = (rgb.predict(tf.tile(g, [1, 1, 1, 3])) as tf.Tensor).dataSync();
  assert.ok(maxDiff(yGray, yRgb) < 1e-4, `gray vs replicated RGB differ by ${maxDiff(yGray, yRgb)}`);
});

test("a 1-channel checkpoint takes RGB copies of gray images with the same result (filters spread / 3)", async () => {
  const gray = await xresnet18({ weights: "digits04-xresnet18-tiny" });
  const rgb = await xresnet18({ weights: "digits04-xresnet18-tiny", nIn: 3 });
  const g = tf.randomUniform([2, 28, 28, 1], 0, 1, "float32", 11);
  const d = maxDiff((gray.predict(g) as tf.Tensor).dataSync(), (rgb.predict(tf.tile(g, [1, 1, 1, 3])) as tf.Tensor).dataSync());
  assert.ok(d < 1e-4, `gray vs RGB copies differ by ${d}`);
});

test("a checkpoint's metadata restores widen/stemSzs and its normalisation stats", async () => {
  const m = await xresnet18({ nIn: 1, nOut: 10, ...TINY });
  await saveWeights(m, path.join(dir, "ck.safetensors"), {
    metadata: { "tsfast.arch": "xresnet18", "tsfast.arch_options": JSON.stringify(TINY), "tsfast.mean": "[0.3]", "tsfast.std": "[0.4]" },
  });
  const { model, stats } = await createVisionModel(xresnet18, 2, { pretrained: path.join(dir, "ck.safetensors"), nIn: 1 });
  assert.deepEqual(stats, { mean: [0.3], std: [0.4] });
  assert.equal(model.outputs[0]!.shape[1], 2);
  await assert.rejects(resnet18({ weights: path.join(dir, "ck.safetensors") }), /holds a xresnet18 checkpoint, not resnet18/);
});

test("pretrained: true offline fails with a message saying what to do", async () => {
  const home = process.env["TSFAST_HOME"];
  process.env["TSFAST_HOME"] = dir;
  const saved = globalThis.fetch;
  globalThis.fetch = (async () => { throw new TypeError("fetch failed", { cause: new Error("getaddrinfo ENOTFOUND huggingface.co") }); }) as typeof fetch;
  try {
    await assert.rejects(resnet18({ weights: true }), /could not download https:\/\/huggingface\.co\/timm\/resnet18\.tv_in1k.*ENOTFOUND.*pass its path/s);
  } finally {
    globalThis.fetch = saved;
    if (home === undefined) delete process.env["TSFAST_HOME"];
    else process.env["TSFAST_HOME"] = home;
  }
});

test("a model with the head saves to tfjs JSON and reloads (custom layers are registered)", async () => {
  const { model } = await createVisionModel(xresnet18, 3, { pretrained: false, archOptions: TINY, nIn: 1, yRange: [0, 5] });
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
  }));
  const back = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
  assert.ok(back.layers.some((l) => l instanceof AdaptiveConcatPool2d));
  const x = tf.randomUniform([2, 32, 32, 1], 0, 1, "float32", 4);
  const y1 = (model.predict(x) as tf.Tensor).dataSync();
  const y2 = (back.predict(x) as tf.Tensor).dataSync();
  assert.ok(maxDiff(y1, y2) < 1e-6);
  assert.ok(Array.from(y1).every((v) => v > 0 && v < 5), "SigmoidRange keeps outputs in yRange");
});

test("simpleCnn maps 28 px grayscale to class logits", () => {
  const m = simpleCnn();
  const y = m.predict(tf.zeros([2, 28, 28, 1])) as tf.Tensor;
  assert.deepEqual(y.shape, [2, 10]);
});

test("visionLearner adds the checkpoint's stats to the data and builds a frozen Learner", async () => {
  const m = await xresnet18({ nIn: 1, nOut: 10, ...TINY });
  await saveWeights(m, path.join(dir, "ck2.safetensors"), {
    metadata: { "tsfast.arch": "xresnet18", "tsfast.arch_options": JSON.stringify(TINY), "tsfast.mean": "[0.3]", "tsfast.std": "[0.4]" },
  });
  const added: unknown[] = [];
  const empty = { length: 0, async *[Symbol.asyncIterator]() {} };
  const dls = {
    train: empty,
    valid: empty,
    c: 4,
    isMultiLabel: false,
    addBatchTfm: (t: unknown) => added.push(t),
    oneBatch: async () => ({ xb: tf.zeros([2, 32, 32, 1]), yb: tf.zeros([2], "int32") }),
  };
  const learn = await visionLearner(dls, xresnet18, { pretrained: path.join(dir, "ck2.safetensors"), progress: false });
  assert.deepEqual(added, [{ type: "Normalize", mean: [0.3], std: [0.4] }]);
  assert.equal(learn.model.outputs[0]!.shape[1], 4);
  assert.equal(learn.model.getLayer("layer1.0.conv1").trainable, false, "the body is frozen");
  assert.equal(learn.model.getLayer("layer1.0.bn1").trainable, true, "BatchNorm keeps training (trainBn)");
  assert.equal(learn.model.getLayer("head.8").trainable, true, "the head trains");
  learn.unfreeze();
  assert.equal(learn.model.getLayer("layer1.0.conv1").trainable, true);
});

test("weights from a URL download once into $TSFAST_HOME/models and are checked against their sha256", async () => {
  const http = await import("node:http");
  const { createHash } = await import("node:crypto");
  const { readFileSync, existsSync } = await import("node:fs");
  const m = await resnet18({ nIn: 1, nOut: 3, widen: 0.25, seed: 7 });
  const file = path.join(dir, "served.safetensors");
  await saveWeights(m, file);
  const body = readFileSync(file);
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits++;
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  const home = process.env["TSFAST_HOME"];
  process.env["TSFAST_HOME"] = path.join(dir, "home");
  try {
    const url = `http://127.0.0.1:${port}/w/served.safetensors`;
    const a = await resnet18({ weights: url, widen: 0.25 });
    const b = await resnet18({ weights: url, widen: 0.25 });
    assert.equal(hits, 1, "the second load comes from the cache");
    assert.ok(existsSync(path.join(dir, "home", "models", `127.0.0.1_${port}_w_served.safetensors`)));
    const x = tf.randomUniform([1, 32, 32, 1], 0, 1, "float32", 1);
    assert.equal(maxDiff((a.predict(x) as tf.Tensor).dataSync(), (m.predict(x) as tf.Tensor).dataSync()), 0);
    assert.equal(b.outputs[0]!.shape[1], 3);
    const { resolveWeightsFile } = await import("../lib/models/pretrained");
    const good = createHash("sha256").update(body).digest("hex");
    assert.equal(await resolveWeightsFile(url, { sha256: good }), path.join(dir, "home", "models", `127.0.0.1_${port}_w_served.safetensors`));
    await assert.rejects(resolveWeightsFile(`http://127.0.0.1:${port}/other.safetensors`, { sha256: "0".repeat(64) }), /has sha256 [0-9a-f]{64}, expected 0{64}/);
  } finally {
    server.close();
    if (home === undefined) delete process.env["TSFAST_HOME"];
    else process.env["TSFAST_HOME"] = home;
  }
});

test("loading weights and predicting leave no tensors behind", async () => {
  const { model } = await createVisionModel(xresnet18, 3, { pretrained: false, archOptions: TINY, nIn: 1 });
  await saveWeights(model, path.join(dir, "mem.safetensors"));
  const x = tf.zeros([2, 32, 32, 1]);
  tf.dispose(model.predict(x));
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    await loadWeights(model, path.join(dir, "mem.safetensors"));
    tf.dispose(model.predict(x));
  }
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  model.dispose();
});
