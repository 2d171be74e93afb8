process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import {
  AwdLstmClassifierEncoder, AwdLstmLM, awdLstmLMStateDict, awdLstmStateDict, loadAwdLstmLMStateDict, maskedConcatPool,
  awdLstmLmSplit, awdLstmClasSplit, textClassifierModel, languageModel, scaleDropouts, awdLstmLmConfig,
} from "../lib/models/awd-lstm";
import { writeSafetensors, readSafetensors } from "../lib/models/safetensors";

const sizes = { vocabSz: 24, embSz: 6, nHid: 10, nLayers: 3, padToken: 1 };
const noDrop = { outputP: 0, hiddenP: 0, inputP: 0, embedP: 0, weightP: 0 };

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "same number of values");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Run bench/awd_lstm_torch.py on a spec (weights written to a temp safetensors file first). */
async function torchRef<T>(sd: Map<string, { shape: number[]; data: Float32Array | Int32Array | number[] }>, spec: Record<string, unknown>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "awd-"));
  const weights = path.join(dir, "w.safetensors");
  await writeSafetensors(weights, sd);
  fs.writeFileSync(path.join(dir, "spec.json"), JSON.stringify({ ...spec, weights, ...sizesSnake() }));
  const out = execFileSync("/usr/bin/python3", [path.join(__dirname, "..", "..", "bench", "awd_lstm_torch.py"), path.join(dir, "spec.json")], { encoding: "utf8", maxBuffer: 2 ** 28 });
  fs.rmSync(dir, { recursive: true, force: true });
  return JSON.parse(out.trim().split("\n").pop()!) as T;
}
function sizesSnake() {
  return { vocab_sz: sizes.vocabSz, emb_sz: sizes.embSz, n_hid: sizes.nHid, n_layers: sizes.nLayers, pad_token: sizes.padToken };
}

/** Our gradients by fastai name (PyTorch layouts), from `awdLstmLMStateDict`'s naming applied to the gradient values. */
function namedGrads(lm: AwdLstmLM, grads: Map<tf.Variable, tf.Tensor>): Map<string, Float32Array> {
  // swap every variable's value for its gradient, read the state dict, swap back
  const saved = new Map<tf.Variable, tf.Tensor>();
  for (const [v, g] of grads) {
    saved.set(v, v.clone());
    v.assign(g);
  }
  const sd = awdLstmLMStateDict(lm);
  for (const [v, s] of saved) v.assign(s);
  tf.dispose([...saved.values()]);
  return new Map([...sd].map(([k, t]) => [k, t.data as Float32Array]));
}

test("AwdLstmLM gives fastai's AWD-LSTM logits over three batches (state carried, batch sizes 3, 3, 2) and its gradients on the last, same weights (PyTorch port)", async () => {
  await ready();
  const lm = new AwdLstmLM({ ...sizes, ...noDrop, seed: 5 });
  const model = lm.asModel();
  const rows = (bs: number, seed: number) => Array.from({ length: bs }, (_, r) => Array.from({ length: 5 }, (_, t) => ((r * 7 + t * 5 + seed * 3) % sizes.vocabSz)));
  const batches = [rows(3, 0), rows(3, 1), rows(2, 2)];
  batches[2]![0]![2] = 1; // a pad token in the last batch: no gradient into its embedding row through the encoder
  const targets = batches.map((b) => b.map((r) => r.map((v) => (v + 1) % sizes.vocabSz)));
  const logits: number[] = [];
  let grads = new Map<tf.Variable, tf.Tensor>();
  let loss = 0;
  for (const [i, b] of batches.entries()) {
    const x = tf.tensor2d(b, undefined, "int32");
    if (i < batches.length - 1) {
      logits.push(...(model.apply(x, { training: false }) as tf.Tensor).dataSync());
      continue;
    }
    const vars = lm.trainableWeights.map((w) => w.read() as tf.Variable);
    const y = tf.tensor2d(targets[i]!, undefined, "int32");
    const r = tf.variableGrads(() => {
      const out = model.apply(x, { training: false }) as tf.Tensor;
      logits.push(...out.dataSync());
      return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(y, [-1]), sizes.vocabSz), tf.reshape(out, [-1, sizes.vocabSz])) as tf.Scalar;
    }, vars);
    loss = r.value.dataSync()[0]!;
    grads = new Map(vars.map((v) => [v, r.grads[v.name]!]));
  }
  const ref = await torchRef<{ logits: number[]; loss: number; grads: Record<string, number[]> }>(awdLstmLMStateDict(lm), { kind: "lm", batches, targets });
  const dl = maxDiff(logits, ref.logits);
  assert.ok(dl < 1e-4, `logits differ by ${dl}`);
  assert.ok(Math.abs(loss - ref.loss) < 1e-5, `loss ${loss} vs ${ref.loss}`);
  const ours = namedGrads(lm, grads);
  const names = Object.keys(ref.grads).sort();
  assert.deepEqual(names, ["0.encoder.weight", ...[0, 1, 2].flatMap((l) => [`0.rnns.${l}.module.bias_hh_l0`, `0.rnns.${l}.module.bias_ih_l0`, `0.rnns.${l}.module.weight_ih_l0`, `0.rnns.${l}.weight_hh_l0_raw`]), "1.decoder.bias"].sort());
  let worst = 0;
  for (const n of names) worst = Math.max(worst, maxDiff(ours.get(n)!, ref.grads[n]!));
  assert.ok(worst < 1e-5, `gradients differ by up to ${worst}`);
  console.log(`AWD-LSTM LM vs PyTorch: logits ${dl.toExponential(2)}, gradients ${worst.toExponential(2)}`);
});

test("AwdLstmClassifierEncoder pools as fastai's SentenceEncoder + masked_concat_pool (pad-first chunks, rows starting late, maxLen cut) with the same gradients", async () => {
  await ready();
  const enc = new AwdLstmClassifierEncoder({ ...sizes, ...noDrop, bptt: 4, maxLen: 8, seed: 2 });
  // lengths 10, 5, 2 padded as fastai's pad_input_chunk(seq_len=4): whole pad chunks first, the remainder after
  const t = (n: number, o: number) => Array.from({ length: n }, (_, i) => 2 + ((i * 5 + o) % 22));
  const P = (n: number) => Array.from({ length: n }, () => 1);
  const ids = [t(10, 0), [...P(4), ...t(5, 3), ...P(1)], [...P(8), ...t(2, 7)]];
  const probe = Array.from({ length: 3 }, (_, r) => Array.from({ length: 3 * sizes.embSz }, (_, j) => Math.sin(r * 31 + j)));
  const vars = enc.trainableWeights.map((w) => w.read() as tf.Variable);
  let pooled: Float32Array = new Float32Array();
  const r = tf.variableGrads(() => {
    const p = enc.forward(tf.tensor2d(ids, undefined, "int32"), false);
    pooled = p.dataSync() as Float32Array;
    return tf.sum(tf.mul(p, tf.tensor2d(probe))) as tf.Scalar;
  }, vars);
  const ref = await torchRef<{ pooled: number[]; grads: Record<string, number[]> }>(awdLstmStateDict(enc.encoder), { kind: "clas", batches: [ids], probe, bptt: 4, max_len: 8 });
  const dp = maxDiff(pooled, ref.pooled);
  assert.ok(dp < 1e-5, `pooled outputs differ by ${dp}`);
  // our gradients in fastai's names: the same swap as above
  const saved = vars.map((v) => v.clone());
  vars.forEach((v) => v.assign(r.grads[v.name]!));
  const ours = awdLstmStateDict(enc.encoder);
  vars.forEach((v, i) => v.assign(saved[i]!));
  let worst = 0;
  for (const [n, g] of Object.entries(ref.grads)) worst = Math.max(worst, maxDiff(ours.get(n)!.data as Float32Array, g));
  assert.ok(worst < 1e-5, `gradients differ by up to ${worst}`);
  console.log(`AWD-LSTM classifier encoder vs PyTorch: pooled ${dp.toExponential(2)}, gradients ${worst.toExponential(2)}`);
});

test("maskedConcatPool by hand: last real token, max and mean over unpadded positions only", async () => {
  await ready();
  // a text of 3 tokens padded to 6 as pad_input_chunk(seq_len=2) pads: one whole pad chunk first, the remainder (1) last:
  // [pad, pad, 2, 5, 9, pad] → pads in the last bptt = 1 → last = position 6 − 1 − 1 = 4 (value 9); max 9; mean 16/3
  const out = tf.tensor3d([[[100], [100], [2], [5], [9], [-7]]]);
  const mask = tf.tensor2d([[true, true, false, false, false, true]], undefined, "bool");
  const got = Array.from(maskedConcatPool(out, mask, 2).dataSync());
  assert.ok(maxDiff(got, [9, 9, 16 / 3]) < 1e-6, `got ${got}`);
});

test("dropouts while training: EmbeddingDropout drops whole words (scaled), RNNDropout keeps one mask across time, WeightDropout changes the recurrence; none at inference", async () => {
  await ready();
  const lm = new AwdLstmLM({ ...sizes, ...noDrop, embedP: 0.5, seed: 3 });
  const ids = tf.tensor2d([[4, 4, 5, 6, 4, 7, 8, 9]], undefined, "int32");
  const plain = lm.encoder.embed(ids, false).arraySync() as number[][][];
  const dropped = lm.encoder.embed(ids, true).arraySync() as number[][][];
  let zeroed = 0;
  dropped[0]!.forEach((row, t) => {
    const k = row[0]! / plain[0]![t]![0]!;
    assert.ok(Math.abs(k) < 1e-6 || Math.abs(k - 2) < 1e-5, `a word is either dropped or scaled by 1/(1-0.5), got ×${k}`);
    row.forEach((v, j) => assert.ok(Math.abs(v - k * plain[0]![t]![j]!) < 1e-5, "the whole row shares its fate"));
    if (Math.abs(k) < 1e-6) zeroed++;
  });
  assert.ok(zeroed > 0 && zeroed < 8, `some but not all words dropped (${zeroed})`);
  // the three positions of word 4 share their mask
  const fate = [0, 1, 4].map((t) => Math.abs(dropped[0]![t]![0]!) < 1e-9);
  assert.ok(fate.every((f) => f === fate[0]), "one mask per word, not per position");

  const { rnnDropout } = await import("../lib/models/awd-lstm");
  const x = tf.ones([2, 6, 5]);
  const y = rnnDropout(lm, x, 0.5, true).arraySync() as number[][][];
  for (const seq of y) for (const step of seq) assert.deepEqual(step, seq[0], "the same mask at every time step");
  assert.equal(rnnDropout(lm, x, 0.5, false), x, "no dropout at inference");

  const wd = new AwdLstmLM({ ...sizes, ...noDrop, weightP: 0.9, seed: 4 });
  const seqIds = tf.tensor2d([[2, 3, 4, 5, 6]], undefined, "int32");
  const a = (wd.forward(seqIds, false) as tf.Tensor).dataSync();
  wd.reset();
  const b = (wd.forward(seqIds, false) as tf.Tensor).dataSync();
  wd.reset();
  const c = (wd.forward(seqIds, true) as tf.Tensor).dataSync();
  assert.ok(maxDiff(a, b) < 1e-7, "inference is deterministic");
  assert.ok(maxDiff(a, c) > 1e-3, "weight dropout changes the training forward");
});

test("dropMult scales every dropout of fastai's configs; parameter groups follow awd_lstm_lm_split / awd_lstm_clas_split", async () => {
  await ready();
  const s = scaleDropouts({ ...awdLstmLmConfig }, 0.5);
  assert.deepEqual([s.outputP, s.hiddenP, s.inputP, s.embedP, s.weightP], [0.05, 0.075, 0.125, 0.01, 0.1]);
  assert.equal(s.nHid, 1152, "sizes are not scaled");
  // as fastai's get_language_model / get_text_classifier: a dropout given in the config is scaled too
  const given = languageModel(16, { embSz: 4, nHid: 6, nLayers: 2, hiddenP: 0.3, outputP: undefined, dropMult: 0.5 }).layers[0] as AwdLstmLM;
  assert.deepEqual([given.encoder.opts.hiddenP, given.encoder.opts.inputP], [0.15, 0.125]);
  assert.equal(given.config.outputP, 0.05, "an undefined option keeps the (scaled) default");
  const lm = languageModel(16, { embSz: 4, nHid: 6, nLayers: 3 });
  const groups = awdLstmLmSplit(lm).map((g) => g.flatMap((l) => l.weights.map((w) => w.originalName)));
  assert.deepEqual(groups, [
    ["rnns_0_weight_ih_l0", "rnns_0_weight_hh_l0", "rnns_0_bias_ih_l0", "rnns_0_bias_hh_l0"],
    ["rnns_1_weight_ih_l0", "rnns_1_weight_hh_l0", "rnns_1_bias_ih_l0", "rnns_1_bias_hh_l0"],
    ["rnns_2_weight_ih_l0", "rnns_2_weight_hh_l0", "rnns_2_bias_ih_l0", "rnns_2_bias_hh_l0"],
    ["encoder_weight", "decoder_bias"],
  ]);
  const { paramGroups } = await import("../lib/learner/params");
  assert.equal(paramGroups([[lm]], false)[0]!.length, lm.weights.length, "a plain Learner's one group (no splitter) finds every parameter through the holders");
  const clas = textClassifierModel(16, 3, { embSz: 4, nHid: 6, nLayers: 3 });
  const cg = awdLstmClasSplit(clas);
  assert.equal(cg.length, 5, "embedding, three LSTMs, head");
  assert.deepEqual(cg[0]!.flatMap((l) => l.weights.map((w) => w.originalName)), ["encoder_weight"]);
  assert.ok(cg[4]!.some((l) => l.getClassName() === "BatchNormalization") && cg[4]!.some((l) => l.getClassName() === "Dense"), "the head");
  assert.deepEqual(clas.outputs[0]!.shape, [null, 3]);
});

test("an AwdLstmLM state dict written to safetensors loads back into a fresh model (fastai's names, tied decoder)", async () => {
  await ready();
  const a = new AwdLstmLM({ ...sizes, seed: 1 });
  const b = new AwdLstmLM({ ...sizes, seed: 2 });
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "awd-sd-")), "lm.safetensors");
  await writeSafetensors(file, awdLstmLMStateDict(a));
  const sd = (await readSafetensors(file)).tensors;
  assert.ok(sd.has("0.encoder_dp.emb.weight") && sd.has("1.decoder.weight"), "fastai's keys, shared embedding included");
  const x = tf.tensor2d([[2, 3, 4]], undefined, "int32");
  const before = b.forward(x, false).dataSync();
  b.reset();
  loadAwdLstmLMStateDict(b, sd, file);
  const ya = a.forward(x, false).dataSync();
  const yb = b.forward(x, false).dataSync();
  assert.ok(maxDiff(before, ya) > 1e-3, "different seeds differ before loading");
  assert.ok(maxDiff(ya, yb) < 1e-7, "same outputs after loading");
  sd.delete("0.rnns.1.module.weight_ih_l0");
  assert.throws(() => loadAwdLstmLMStateDict(b, sd, file), /has no "0\.rnns\.1\.module\.weight_ih_l0"/);
});
