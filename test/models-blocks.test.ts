process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { ConvLayer, Flatten, LinBnDrop, PoolFlatten, ResBlock, sequential, simpleCnn } from "../lib/models/blocks";
import { Learner } from "../lib/learner/learner";
import { bnMomentumWarning } from "../lib/learner/params";
import { toyDls } from "./helpers/learner-data";

function stats(t: tf.Tensor): { mean: number; std: number; maxAbs: number } {
  const d = t.dataSync();
  let s = 0, s2 = 0, m = 0;
  for (const v of d) {
    s += v;
    s2 += v * v;
    m = Math.max(m, Math.abs(v));
  }
  const mean = s / d.length;
  return { mean, std: Math.sqrt(s2 / d.length - mean * mean), maxAbs: m };
}

function layerConfig(model: tf.LayersModel, name: string): tf.serialization.ConfigDict {
  return model.getLayer(name).getConfig();
}

test("ConvLayer is conv → BatchNorm (PyTorch momentum and eps, beta 1e-3) → ReLU, with PyTorch's padding at stride 2", async () => {
  await ready();
  const m = sequential([ConvLayer(3, 8, { stride: 2 }), ConvLayer(8, 4, { ks: 5 })], { inputShape: [7, 7, 3] });
  const names = m.layers.map((l) => l.name);
  assert.deepEqual(names, ["input", "0.conv", "0.bn", "0.relu", "1.conv", "1.bn", "1.relu"]);
  // stride 2 pads inside the convolution (PyTorch's symmetric padding); stride 1 is tfjs's "same"
  assert.deepEqual(m.layers.slice(1).map((l) => l.getClassName()), ["PaddedConv2D", "BatchNormalization", "ReLU", "Conv2D", "BatchNormalization", "ReLU"]);
  const y = m.predict(tf.ones([2, 7, 7, 3])) as tf.Tensor;
  assert.deepEqual(y.shape, [2, 4, 4, 4], "PyTorch: floor((7 + 2·1 − 3)/2) + 1 = 4, then 'same' 5×5");
  const bn = layerConfig(m, "0.bn");
  assert.equal(bn["momentum"], 0.9);
  assert.equal(bn["epsilon"], 1e-5);
  assert.equal(layerConfig(m, "0.conv")["useBias"], false, "no conv bias before BatchNorm");
  const [gamma, beta] = m.getLayer("0.bn").getWeights();
  assert.deepEqual([...gamma!.dataSync()], Array(8).fill(1));
  assert.ok([...beta!.dataSync()].every((v) => Math.abs(v - 1e-3) < 1e-9), "fastai's BatchNorm starts beta at 1e-3");
  tf.dispose([y]);
  m.dispose();
});

test("ConvLayer's init: Kaiming-uniform before a ReLU (std √(2/fanIn)), PyTorch's default without one (std 1/√(3·fanIn))", async () => {
  await ready();
  const m = sequential([ConvLayer(64, 128), ConvLayer(128, 128, { act: null, bn: false })], { inputShape: [4, 4, 64], seed: 3 });
  const fanIn1 = 3 * 3 * 64;
  const w1 = stats(m.getLayer("0.conv").getWeights()[0]!);
  assert.ok(Math.abs(w1.std / Math.sqrt(2 / fanIn1) - 1) < 0.02, `relu conv std ${w1.std} vs ${Math.sqrt(2 / fanIn1)}`);
  assert.ok(w1.maxAbs <= Math.sqrt(6 / fanIn1) && Math.abs(w1.mean) < 0.002, "uniform within ±√(6/fanIn), mean 0");
  const fanIn2 = 3 * 3 * 128;
  const [w2, b2] = m.getLayer("1.conv").getWeights();
  const s2 = stats(w2!);
  assert.ok(Math.abs(s2.std / (1 / Math.sqrt(3 * fanIn2)) - 1) < 0.02, `plain conv std ${s2.std} vs ${1 / Math.sqrt(3 * fanIn2)}`);
  const sb = stats(b2!);
  assert.ok(sb.std > 0.004 && sb.std < 0.02, `a conv bias without BatchNorm starts as N(0, 0.01): std ${sb.std}`);
  // The same seed builds the same weights.
  const again = sequential([ConvLayer(64, 128), ConvLayer(128, 128, { act: null, bn: false })], { inputShape: [4, 4, 64], seed: 3 });
  assert.deepEqual(again.getLayer("1.conv").getWeights()[0]!.dataSync(), w2!.dataSync());
  m.dispose();
  again.dispose();
});

test("ConvLayer's Kaiming init keeps the activations' scale through 20 ReLU convs without BatchNorm", async () => {
  await ready();
  // 1×1 convs: no zero padding at the borders to shrink the activations, only the init at work.
  const x = tf.randomNormal([4, 8, 8, 64], 0, 1, "float32", 5);
  const kaiming = sequential(
    Array.from({ length: 20 }, () => ConvLayer(64, 64, { ks: 1, bn: false, bias: false })),
    { inputShape: [8, 8, 64], seed: 1 },
  );
  const yK = kaiming.predict(x) as tf.Tensor;
  const rmsK = Math.sqrt(stats(yK).std ** 2 + stats(yK).mean ** 2);
  assert.ok(rmsK > 0.3 && rmsK < 3, `after 20 Kaiming ReLU layers the RMS stays near 1: ${rmsK}`);
  tf.dispose([x, yK]);
  kaiming.dispose();
});

test("ResBlock: stride-2 shapes, the shortcut pools then 1×1-convs, and the block starts as relu(identity + beta)", async () => {
  await ready();
  const m = sequential([ResBlock(8, 16, { stride: 2 })], { inputShape: [9, 9, 8] });
  const y = m.predict(tf.randomNormal([2, 9, 9, 8], 0, 1, "float32", 1)) as tf.Tensor;
  assert.deepEqual(y.shape, [2, 5, 5, 16], "ceil(9/2) = 5, as PyTorch's AvgPool2d(2, ceil_mode=True)");
  const names = m.layers.map((l) => l.name);
  for (const n of ["0.convpath.0.conv", "0.convpath.1.bn", "0.idpath.pool", "0.idpath.conv.conv", "0.add", "0.relu"]) {
    assert.ok(names.includes(n), `${n} in [${names.join(", ")}]`);
  }
  assert.deepEqual([...m.getLayer("0.convpath.1.bn").getWeights()[0]!.dataSync()], Array(16).fill(0), "the residual branch's last BatchNorm starts at gamma 0");
  tf.dispose(y);
  m.dispose();
  // Same channels, stride 1: no shortcut layers, and at init (inference) the output is relu(x + 1e-3).
  const id = sequential([ResBlock(4, 4)], { inputShape: [5, 5, 4] });
  assert.ok(!id.layers.some((l) => l.name.includes("idpath")));
  const x = tf.randomNormal([1, 5, 5, 4], 0, 1, "float32", 2);
  const out = (id.predict(x) as tf.Tensor).dataSync();
  const want = tf.relu(tf.add(x, 1e-3)).dataSync();
  out.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-5, `[${i}] ${v} vs ${want[i]}`));
  x.dispose();
  id.dispose();
});

test("LinBnDrop is BatchNorm → dropout → linear (no bias after BatchNorm), with PyTorch's Linear init", async () => {
  await ready();
  const m = sequential([Flatten(), LinBnDrop(48, 20, { p: 0.25, act: "relu" }), LinBnDrop(20, 5, { bn: false })], { inputShape: [4, 4, 3] });
  assert.deepEqual(
    m.layers.map((l) => l.name),
    ["input", "0", "1.bn", "1.drop", "1.lin", "1.relu", "2.lin"],
  );
  assert.equal(layerConfig(m, "1.lin")["useBias"], false);
  assert.equal(layerConfig(m, "2.lin")["useBias"], true);
  const w = stats(m.getLayer("1.lin").getWeights()[0]!);
  assert.ok(w.maxAbs <= 1 / Math.sqrt(48) && w.std > 0.8 / Math.sqrt(3 * 48), `uniform ±1/√48: std ${w.std}`);
  const y = m.predict(tf.ones([3, 4, 4, 3])) as tf.Tensor;
  assert.deepEqual(y.shape, [3, 5]);
  tf.dispose(y);
  m.dispose();
});

test("simpleCnn is ConvLayers then PoolFlatten: 28 px grayscale to 10 logits", async () => {
  await ready();
  const m = simpleCnn();
  assert.deepEqual(m.layers.slice(1, 4).map((l) => l.name), ["0.conv", "0.bn", "0.relu"]);
  const y = m.predict(tf.zeros([2, 28, 28, 1])) as tf.Tensor;
  assert.deepEqual(y.shape, [2, 10]);
  assert.ok(!m.layers.some((l) => l.name === "3.relu"), "no ReLU on the logits");
  tf.dispose(y);
  m.dispose();
});

test("bad block inputs are refused with what to fix", async () => {
  await ready();
  assert.throws(() => sequential([ConvLayer(3, 8), ConvLayer(16, 8)], { inputShape: [8, 8, 3] }), /ConvLayer "1" was made for 16 input channels \(ni\) but its input has 8/);
  assert.throws(() => sequential([LinBnDrop(10, 2)], { inputShape: [4, 4, 3] }), /LinBnDrop "0" needs \[batch, features\] input .* put Flatten\(\) before it/);
  assert.throws(() => sequential([ConvLayer(3, 8)], {} as never), /sequential needs \{ inputShape \}/);
  assert.throws(() => sequential([{} as never], { inputShape: [4] }), /item 0 is neither a block/);
  assert.throws(() => ConvLayer(3, 0), /ConvLayer: nf must be a positive integer, got 0/);
  assert.throws(() => ConvLayer(3, 8, { act: "gelu" as never }), /act must be "relu" or null, got "gelu"/);
  assert.throws(() => LinBnDrop(4, 2, { p: 1 }), /dropout p must be in \[0, 1\), got 1/);
  assert.throws(() => ResBlock(4, 4, { stride: 0 }), /stride must be a positive integer/);
  void PoolFlatten;
});

function captureWarnings<T>(f: () => Promise<T>): Promise<{ result: T; warnings: string[] }> {
  const warnings: string[] = [];
  const orig = console.warn;
  console.warn = (...a: unknown[]) => warnings.push(a.join(" "));
  return f().then(
    (result) => {
      console.warn = orig;
      return { result, warnings };
    },
    (e) => {
      console.warn = orig;
      throw e;
    },
  );
}

test("Learner warns once when a short fit meets BatchNorm at tfjs's default momentum, and says what to change", async () => {
  await ready();
  const tfjsDefault = () => {
    const input = tf.input({ shape: [2, 2, 1] });
    let h = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
    h = tf.layers.dense({ units: 4, name: "d1" }).apply(h) as tf.SymbolicTensor;
    h = tf.layers.batchNormalization({ name: "slow_bn" }).apply(h) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 2 }).apply(h) as tf.SymbolicTensor });
  };
  const dls = toyDls({ n: 32, bs: 16 });
  const learn = new Learner(dls, tfjsDefault(), { progress: false });
  const { warnings } = await captureWarnings(async () => {
    await learn.fit(1);
    await learn.fit(1);
  });
  const bnWarnings = warnings.filter((w) => /BatchNormalization/.test(w));
  assert.equal(bnWarnings.length, 1, "once per learner");
  assert.match(bnWarnings[0]!, /"slow_bn" uses momentum 0.99 .*after this fit's 2 training steps .* 98 % of their starting values/);
  assert.match(bnWarnings[0]!, /momentum 0.9 \(PyTorch's 0.1\).*ConvLayer/);
  // tsfast's blocks use PyTorch's momentum: no warning.
  const ours = sequential([Flatten(), LinBnDrop(4, 2)], { inputShape: [2, 2, 1] });
  const quiet = await captureWarnings(() => new Learner(dls, ours, { progress: false }).fit(1));
  assert.equal(quiet.warnings.filter((w) => /BatchNormalization/.test(w)).length, 0);
  // A fit long enough to forget the starting values (0.99^459 < 1 %) is not warned about either.
  const m = tfjsDefault();
  assert.match(bnMomentumWarning(m, 458) ?? "", /1 % of their starting values/);
  assert.equal(bnMomentumWarning(m, 459), undefined);
  learn.dispose();
});
