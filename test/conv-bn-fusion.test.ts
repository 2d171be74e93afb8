/**
 * A convolution + the BatchNorm (+ ReLU) after it as one convolution in inference on the native engine
 * (native/conv-bn.ts, asked by the forward walk in lean-forward.ts), with a residual block's add (and its
 * ReLU) written into the identity's array where nothing else can see it: the layers' numbers to rounding,
 * checked by hand and against the layers run apart and the cpu engine; never stale after the weights or
 * the statistics change (by `setWeights`, by a training step in place); never in training, under a
 * gradient, around a hook or a replaced call.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { getConvBnFusion, leanForwardInstalled, setConvBnFusion, withTfjsCall } from "../lib/engine/lean-forward";
import { bnScaleShift, convBnCall } from "../lib/engine/native/conv-bn";
import { loadAddon } from "../lib/engine/native/addon";
import { NativeAdamOptimizer } from "../lib/engine/native/optimizer";
import { resnet18 } from "../lib/models/archs";
import { hookOutput } from "../lib/learner/hooks";
import { maxDiff, nativeBuilt, registerEngines } from "./helpers/engines";

const skip = nativeBuilt() ? false : "the native engine is not built here";

before(async () => {
  if (skip) return;
  await registerEngines();
  assert.ok(leanForwardInstalled());
  assert.equal(getConvBnFusion(), convBnCall, "the native engine installs the fusion");
  await tf.setBackend("native");
});

/** The kernels one inference call runs, by name, and its outputs' values. */
async function inference(model: tf.LayersModel, x: tf.Tensor, how: "predict" | "apply" = "predict"): Promise<{ kernels: Record<string, number>; outs: Float32Array[] }> {
  let outs: Float32Array[] = [];
  const info = await tf.profile(() => {
    const y = (how === "predict" ? model.predict(x, { batchSize: x.shape[0] }) : model.apply(x, { training: false })) as tf.Tensor | tf.Tensor[];
    outs = (Array.isArray(y) ? y : [y]).map((t) => t.dataSync().slice() as Float32Array);
    tf.dispose(y);
  });
  const kernels: Record<string, number> = {};
  for (const k of info.kernels) kernels[k.name] = (kernels[k.name] ?? 0) + 1;
  return { kernels, outs };
}

/** The same call with the fusion off (each layer's own kernels). */
async function apart(model: tf.LayersModel, x: tf.Tensor, how: "predict" | "apply" = "predict") {
  const fusion = getConvBnFusion();
  setConvBnFusion(undefined);
  try {
    return await inference(model, x, how);
  } finally {
    setConvBnFusion(fusion);
  }
}

function close(got: Float32Array, want: Float32Array, what: string, tol = 1e-5): void {
  const { diff, scale } = maxDiff(got, want);
  assert.ok(diff <= tol * Math.max(1, scale), `${what}: differs by ${diff} (scale ${scale})`);
}

/** Statistics and affine weights far from a fresh layer's, so a wrong fold shows. */
function randomStatistics(model: tf.LayersModel, seed: number): void {
  for (const l of model.layers) {
    if (l.getClassName() !== "BatchNormalization") continue;
    const ws = l.getWeights();
    l.setWeights(ws.map((w, i) => (i === 3 ? tf.randomUniform(w.shape, 0.5, 2, "float32", seed++) : tf.randomNormal(w.shape, 0, 0.5, "float32", seed++))));
  }
}

test("bnScaleShift by hand: γ 4, β 0.5, mean 1, var 3, ε 1, conv bias 0.25 → a = 2, c = 0.5 − 2 + 0.5 = −1", { skip }, () => {
  const one = (v: number) => Float32Array.of(v);
  const f = bnScaleShift(1, one(1), one(3), one(0.5), one(4), 1, one(0.25))!;
  assert.deepEqual([f.a[0], f.c[0]], [2, -1]);
  // no γ, β or bias: a = 1/√(var + ε), c = −mean·a
  const g = bnScaleShift(2, Float32Array.of(1, -2), Float32Array.of(3, 0), undefined, undefined, 1)!;
  assert.deepEqual(Array.from(g.a), [0.5, 1]);
  assert.deepEqual(Array.from(g.c), [-0.5, 2]);
  assert.equal(bnScaleShift(2, one(1), Float32Array.of(1, 1), undefined, undefined, 1), undefined, "a mean of the wrong length");
});

test("by hand: conv (kernel 2, bias 0.25, 1×1) → BatchNorm (γ 4, β 0.5, mean 1, var 3, ε 1) → ReLU is relu(4x − 0.5 − 1 + 0.5)", { skip }, async () => {
  const input = tf.input({ shape: [1, 4, 1] });
  const conv = tf.layers.conv2d({ filters: 1, kernelSize: 1, kernelInitializer: tf.initializers.constant({ value: 2 }), biasInitializer: tf.initializers.constant({ value: 0.25 }) });
  const bn = tf.layers.batchNormalization({ epsilon: 1 });
  const model = tf.model({ inputs: input, outputs: tf.layers.reLU().apply(bn.apply(conv.apply(input))) as tf.SymbolicTensor });
  bn.setWeights([tf.tensor1d([4]), tf.tensor1d([0.5]), tf.tensor1d([1]), tf.tensor1d([3])]);
  const x = tf.tensor4d([1, 0, -1, 0.5], [1, 1, 4, 1]);
  // (2x + 0.25 − 1)·2 + 0.5 = 4x − 1, then the ReLU
  const fused = await inference(model, x);
  assert.deepEqual(Array.from(fused.outs[0]!), [3, 0, 0, 1]);
  assert.equal(fused.kernels["FusedBatchNorm"], undefined, "no BatchNorm kernel ran");
  assert.equal(fused.kernels["Relu"], undefined, "no Relu kernel ran");
  const sep = await apart(model, x);
  assert.deepEqual(Array.from(sep.outs[0]!), [3, 0, 0, 1]);
  assert.equal(sep.kernels["FusedBatchNorm"], 1);
  tf.dispose(x);
  model.dispose();
});

test("ResNet-18: predict fuses all 20 conv + BatchNorm pairs, 9 ReLUs and the 8 residual adds with theirs; the layers' numbers apart and on the cpu engine; the same bits again", { skip }, async () => {
  const model = await resnet18({ nOut: 7, inputShape: [32, 32, 3] });
  randomStatistics(model, 10);
  const x = tf.randomNormal([3, 32, 32, 3], 0, 1, "float32", 3);
  const fused = await inference(model, x);
  const sep = await apart(model, x);
  assert.equal(sep.kernels["FusedBatchNorm"], 20);
  assert.equal(fused.kernels["FusedBatchNorm"], undefined, "every BatchNorm ran inside its convolution");
  assert.equal(sep.kernels["Relu"], 17);
  assert.equal(fused.kernels["Relu"], undefined, "the stem's, each block's first and each residual sum's ReLU ran inside a convolution");
  assert.equal(sep.kernels["Add"], 8);
  assert.equal(fused.kernels["Add"], undefined, "each block's residual add ran inside its last convolution");
  close(fused.outs[0]!, sep.outs[0]!, "fused against the layers apart");
  const cpu = await (async () => {
    await tf.setBackend("cpu");
    try {
      return tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync().slice() as Float32Array);
    } finally {
      await tf.setBackend("native");
    }
  })();
  close(fused.outs[0]!, cpu, "fused against the cpu engine");
  // the second and third calls use the kept scaled weights: the same bits
  for (let i = 0; i < 2; i++) assert.deepEqual((await inference(model, x)).outs[0], fused.outs[0]);
  // Learner-style validation (model.apply, training false) and tfjs-layers' own executor's numbers
  const viaApply = await inference(model, x, "apply");
  assert.deepEqual(viaApply.outs[0], fused.outs[0]);
  const tfjs = withTfjsCall(() => tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync().slice() as Float32Array));
  close(fused.outs[0]!, tfjs, "fused against tfjs-layers' executor");
  tf.dispose(x);
  model.dispose();
});

test("never stale: after new statistics, new weights (setWeights) and a training step that updates the weights in place, predict is the layers' again", { skip }, async () => {
  const model = await resnet18({ nOut: 5, inputShape: [32, 32, 3] });
  randomStatistics(model, 20);
  const x = tf.randomNormal([4, 32, 32, 3], 0, 1, "float32", 4);
  const check = async (what: string) => {
    const f = await inference(model, x);
    await inference(model, x); // a second call keeps the scaled copies; a third uses them
    const again = await inference(model, x);
    assert.deepEqual(again.outs[0], f.outs[0], `${what}: the kept copies give the first call's bits`);
    close(f.outs[0]!, (await apart(model, x)).outs[0]!, what);
    return f.outs[0]!;
  };
  const first = await check("fresh");
  // the statistics of one BatchNorm change: its convolution's kept copy must not serve
  randomStatistics(model, 40);
  const second = await check("new statistics");
  assert.notDeepEqual(second, first);
  // new kernels for every convolution
  for (const l of model.layers) {
    if (!l.getClassName().includes("Conv2D")) continue;
    l.setWeights(l.getWeights().map((w, i) => (i === 0 ? tf.randomNormal(w.shape, 0, 0.05, "float32", 7) : w)));
  }
  const third = await check("new kernels");
  assert.notDeepEqual(third, second);
  // new arrays for the same layers: their new scaled copies replace the old ones (one kept copy per layer; the
  // fused calls alone here, as the layers apart keep copies of their own)
  let held = 0;
  for (const seed of [8, 9, 10]) {
    for (const l of model.layers) {
      if (!l.getClassName().includes("Conv2D")) continue;
      l.setWeights(l.getWeights().map((w, i) => (i === 0 ? tf.randomNormal(w.shape, 0, 0.05, "float32", seed) : w)));
    }
    for (let i = 0; i < 3; i++) await inference(model, x);
    if (seed === 8) held = loadAddon().heldWeightCopies();
    else assert.equal(loadAddon().heldWeightCopies(), held, `new kernels (${seed}): the kept copies did not pile up`);
  }
  // a training step: the native Adam writes the weights in place
  const opt = new NativeAdamOptimizer(1e-2, 0.9, 0.999, 1e-8);
  const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3], "int32"), 5);
  for (let i = 0; i < 2; i++) {
    opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor), false);
  }
  const fourth = await check("after two training steps");
  assert.notDeepEqual(fourth, third);
  tf.dispose([x, y]);
  opt.dispose();
  model.dispose();
});

/**
 * What must stay apart: conv c2's output read twice (by its BatchNorm and an add), conv c3 with its own
 * ReLU; and what fuses without the ReLU: c4 → b4 whose output a ReLU and the add read; b5, a model output.
 */
function net(): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotNormal({ seed });
  const conv = (name: string, seed: number, x: tf.SymbolicTensor, activation?: "relu") =>
    tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", kernelInitializer: init(seed), name, activation }).apply(x) as tf.SymbolicTensor;
  const bn = (name: string, x: tf.SymbolicTensor) =>
    tf.layers.batchNormalization({ name, gammaInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: name.length }) }).apply(x) as tf.SymbolicTensor;
  const x = tf.input({ shape: [6, 6, 3] });
  const r1 = tf.layers.reLU({ name: "r1" }).apply(bn("b1", conv("c1", 1, x))) as tf.SymbolicTensor;
  const c2 = conv("c2", 2, r1);
  const b2 = bn("b2", c2);
  const b3 = bn("b3", conv("c3", 3, b2, "relu"));
  const b4 = bn("b4", conv("c4", 4, b3));
  const r4 = tf.layers.reLU({ name: "r4" }).apply(b4) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: "sum" }).apply([r4, b4, c2]) as tf.SymbolicTensor;
  const b5 = bn("b5", conv("c5", 5, sum));
  return tf.model({ inputs: x, outputs: [b5, r1] });
}

test("only a conv read by its BatchNorm alone, without an activation of its own, fuses; model outputs stay right", { skip }, async () => {
  const model = net();
  randomStatistics(model, 30);
  const x = tf.randomNormal([2, 6, 6, 3], 0, 1, "float32", 5);
  const fused = await inference(model, x);
  const sep = await apart(model, x);
  // apart: 5 BatchNorms, ReLUs r1, r4 and c3's; fused: b2 and b3 run (c2 read twice, c3 has its ReLU), r1's ReLU fuses
  assert.equal(sep.kernels["FusedBatchNorm"], 5);
  assert.equal(fused.kernels["FusedBatchNorm"], 2);
  assert.equal(sep.kernels["Relu"]! - (fused.kernels["Relu"] ?? 0), 1, "r1 fuses; r4 (its BatchNorm read twice) runs");
  fused.outs.forEach((o, i) => close(o, sep.outs[i]!, `output ${i}`));
  tf.dispose(x);
  model.dispose();
});

test("never in training, under a gradient, on another engine, around a hook, a call hook or a replaced call", { skip }, async () => {
  const model = net();
  randomStatistics(model, 50);
  const x = tf.randomNormal([2, 6, 6, 3], 0, 1, "float32", 6);
  const bnKernels = async (f: () => void) => (await tf.profile(f)).kernels.filter((k) => k.name === "FusedBatchNorm").length;
  const predictOnce = () => tf.dispose(model.predict(x) as tf.Tensor[]);
  assert.equal(await bnKernels(predictOnce), 2);
  // training: BatchNorm uses batch statistics (the native training path, no FusedBatchNorm kernel), and the convolutions run
  const conv = async (f: () => void) => (await tf.profile(f)).kernels.filter((k) => k.name === "Conv2D" || k.name === "FusedConv2D").length;
  assert.equal(await conv(() => tf.dispose(model.apply(x, { training: true }) as tf.Tensor[])), 5);
  // under a gradient (Grad-CAM through a model in inference mode): the layers apart
  assert.equal(await bnKernels(() => tf.dispose(tf.grad((t: tf.Tensor) => tf.sum((model.apply(t, { training: false }) as tf.Tensor[])[0]!))(x))), 5);
  // a hook on a conv or its BatchNorm keeps that pair apart; the hook sees the layer's own output
  for (const name of ["c1", "b1"]) {
    const hook = hookOutput(model, name);
    assert.equal(await bnKernels(predictOnce), 3, `${name} hooked`);
    assert.equal(hook.stored?.shape.join(","), "2,6,6,4");
    hook.remove();
  }
  assert.equal(await bnKernels(predictOnce), 2, "hooks removed: fused again");
  const c4 = model.getLayer("c4");
  c4.setCallHook(() => undefined);
  assert.equal(await bnKernels(predictOnce), 3, "tfjs's call hook on c4");
  c4.clearCallHook();
  // a subclass's call on the conv
  const layer = model.getLayer("c5") as unknown as { call: (...a: unknown[]) => unknown };
  const proto = Object.getPrototypeOf(layer) as { call: (...a: unknown[]) => unknown };
  const sub = Object.create(proto) as { call: (...a: unknown[]) => unknown };
  let calls = 0;
  sub.call = function (this: unknown, ...a: unknown[]) {
    calls++;
    return proto.call.apply(this, a);
  };
  Object.setPrototypeOf(layer, sub);
  try {
    assert.equal(await bnKernels(predictOnce), 3, "c5's call replaced");
    assert.equal(calls, 1);
  } finally {
    Object.setPrototypeOf(layer, proto);
  }
  // other engines run the layers
  await tf.setBackend("cpu");
  try {
    assert.equal(await bnKernels(predictOnce), 5, "cpu");
  } finally {
    await tf.setBackend("native");
  }
  tf.dispose(x);
  model.dispose();
});

/**
 * A residual block: x → c0 → b0 → r0 (the identity) → c1 → b1 → r1 → c2 → b2, then add(b2, r0) → r2 → head.
 * `identityOut`: r0 is also a model output.
 */
function block(identityOut: boolean, order: "bn-first" | "identity-first" = "bn-first"): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotNormal({ seed });
  const conv = (name: string, seed: number, x: tf.SymbolicTensor) =>
    tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", useBias: false, kernelInitializer: init(seed), name }).apply(x) as tf.SymbolicTensor;
  const bn = (name: string, x: tf.SymbolicTensor) => tf.layers.batchNormalization({ name }).apply(x) as tf.SymbolicTensor;
  const relu = (name: string, x: tf.SymbolicTensor) => tf.layers.reLU({ name }).apply(x) as tf.SymbolicTensor;
  const x = tf.input({ shape: [6, 6, 3] });
  const r0 = relu("r0", bn("b0", conv("c0", 1, x)));
  const b2 = bn("b2", conv("c2", 3, relu("r1", bn("b1", conv("c1", 2, r0)))));
  const sum = tf.layers.add({ name: "sum" }).apply(order === "bn-first" ? [b2, r0] : [r0, b2]) as tf.SymbolicTensor;
  const head = tf.layers.dense({ units: 3, kernelInitializer: init(4), name: "head" }).apply(tf.layers.globalAveragePooling2d({}).apply(relu("r2", sum))) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: identityOut ? [head, r0] : [head] });
}

test("a residual add runs inside the block's last convolution only where nothing else sees the identity: not a model output, not a hook's copy", { skip }, async () => {
  const x = tf.randomNormal([2, 6, 6, 3], 0, 1, "float32", 7);
  for (const order of ["bn-first", "identity-first"] as const) {
    const model = block(false, order);
    randomStatistics(model, 60);
    const fused = await inference(model, x);
    const sep = await apart(model, x);
    assert.equal(sep.kernels["Add"], 1);
    assert.equal(fused.kernels["Add"], undefined, `${order}: the add ran in c2`);
    assert.equal(fused.kernels["Relu"], undefined, `${order}: r0, r1 and r2 ran in convolutions`);
    close(fused.outs[0]!, sep.outs[0]!, order);
    // the identity (r0's output) kept by a hook: a copy shares its array, so the add runs apart and the hook's copy is r0's output
    const hook = hookOutput(model, "r0");
    const hooked = await inference(model, x);
    const seen = hook.stored!.dataSync().slice() as Float32Array;
    hook.remove();
    assert.equal(hooked.kernels["Add"], 1, `${order}: with r0 hooked the add runs`);
    close(hooked.outs[0]!, sep.outs[0]!, `${order}, r0 hooked`);
    setConvBnFusion(undefined);
    const hookApart = hookOutput(model, "r0");
    tf.dispose(model.predict(x) as tf.Tensor);
    const seenApart = hookApart.stored!.dataSync().slice() as Float32Array;
    hookApart.remove();
    setConvBnFusion(convBnCall);
    close(seen, seenApart, `${order}: what the hook kept`);
    // the identity's array read out by a hook (dataSync gives the array itself): never written over
    const reader = hookOutput<Float32Array>(model, "r0", { func: (o) => o.dataSync() as Float32Array });
    const read = await inference(model, x);
    const readValues = reader.stored!.slice();
    reader.remove();
    assert.equal(read.kernels["Add"], 1, `${order}: with r0's array read out the add runs`);
    close(readValues, seenApart, `${order}: the array the hook read out`);
    model.dispose();
  }
  // r0 a model output: never written over
  const model = block(true);
  randomStatistics(model, 70);
  const fused = await inference(model, x);
  const sep = await apart(model, x);
  assert.equal(fused.kernels["Add"], 1, "the identity is a model output: the add runs");
  fused.outs.forEach((o, i) => close(o, sep.outs[i]!, `output ${i}`));
  // under a gradient: all apart, the identity untouched
  const viaGrad = tf.tidy(() => {
    let out: tf.Tensor[] = [];
    tf.grad((t: tf.Tensor) => {
      out = model.apply(t, { training: false }) as tf.Tensor[];
      out.forEach((o) => tf.keep(o));
      return tf.sum(out[0]!);
    })(x);
    return out.map((o) => o.dataSync().slice() as Float32Array);
  });
  viaGrad.forEach((o, i) => assert.deepEqual(o, sep.outs[i], `under a gradient, output ${i} is the layers' own`));
  tf.dispose(x);
  model.dispose();
});
