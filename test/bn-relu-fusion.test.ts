/**
 * BatchNorm + ReLU as one op in training and inference, and a residual Add + ReLU in inference, on the
 * native engine (native/relu-fusion.ts, asked by the forward walk in lean-forward.ts): the same bits as
 * the layers apart (outputs, loss, every gradient, the moving statistics), only where nothing else sees
 * the fused layer's output, never around a hook, and in inference never while a gradient is recorded.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { initNative } from "../lib/engine/native";
import { leanForwardInstalled, setReluFusion } from "../lib/engine/lean-forward";
import { nativeReluFusion } from "../lib/engine/native/relu-fusion";
import { hookOutput } from "../lib/learner/hooks";

before(async () => {
  await ready(); // installs the forward walk that asks for the fusion
  await initNative();
  await tf.setBackend("native");
  assert.ok(leanForwardInstalled());
});

const init = (seed: number) => tf.initializers.glorotNormal({ seed });
const conv = (name: string, seed: number, x: tf.SymbolicTensor) =>
  tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", kernelInitializer: init(seed), name }).apply(x) as tf.SymbolicTensor;
// gamma from -1 to 1 so that some channels come out mostly negative (the ReLU's zeros matter)
const bn = (name: string, x: tf.SymbolicTensor) =>
  tf.layers.batchNormalization({ name, gammaInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: name.length }) }).apply(x) as tf.SymbolicTensor;

/**
 * What the walk must tell apart: conv → BN → ReLU (fusible; the ReLU's output is also a model output),
 * BN → Activation("relu") (fusible), BN → ReLU(maxValue 6) (not: a capped ReLU), a BN whose output a
 * ReLU and an add both read (not), one whose output a ReLU (a model output, so the nearest reader to
 * the outputs) and a conv both read (not), and a BN that is a model output itself (not).
 */
function net(): tf.LayersModel {
  const x = tf.input({ shape: [6, 6, 3] });
  const r1 = tf.layers.reLU({ name: "r1" }).apply(bn("b1", conv("c1", 1, x))) as tf.SymbolicTensor;
  const r2 = tf.layers.activation({ activation: "relu", name: "r2" }).apply(bn("b2", conv("c2", 2, r1))) as tf.SymbolicTensor;
  const r3 = tf.layers.reLU({ maxValue: 6, name: "r3" }).apply(bn("b3", conv("c3", 3, r2))) as tf.SymbolicTensor;
  const b4 = bn("b4", conv("c4", 4, r3));
  const r4 = tf.layers.reLU({ name: "r4" }).apply(b4) as tf.SymbolicTensor;
  const b6 = bn("b6", conv("c6", 7, r2));
  const r6 = tf.layers.reLU({ name: "r6" }).apply(b6) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: "sum" }).apply([r4, b4, conv("c7", 8, b6)]) as tf.SymbolicTensor;
  const b5 = bn("b5", conv("c5", 5, sum));
  const head = tf.layers.dense({ units: 3, kernelInitializer: init(6), name: "head" }).apply(tf.layers.globalAveragePooling2d({}).apply(b5)) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: [head, r1, b5, r6] });
}

interface Run { loss: number; grads: Float32Array[]; weights: Float32Array[]; relus: number }

/** One training forward and backward pass from the given weights; `relus`: the Relu kernels it ran. */
async function run(model: tf.LayersModel, start: tf.Tensor[], x: tf.Tensor): Promise<Run> {
  model.setWeights(start);
  let out: { value: tf.Scalar; grads: tf.NamedTensorMap } | undefined;
  const info = await tf.profile(() => {
    out = tf.variableGrads(() => {
      const [head, r1, b5, r6] = model.apply(x, { training: true }) as tf.Tensor[];
      return tf.addN([tf.sum(tf.square(head!)), tf.mul(tf.mean(r1!), 0.5), tf.mul(tf.mean(tf.abs(b5!)), 0.25), tf.mean(r6!)]) as tf.Scalar;
    }, model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val));
  });
  const res: Run = {
    loss: out!.value.dataSync()[0]!,
    grads: model.trainableWeights.map((w) => out!.grads[(w as unknown as { val: tf.Variable }).val.name]!.dataSync().slice() as Float32Array),
    // the moving statistics the forward pass updated, with the (unchanged) weights
    weights: model.getWeights().map((w) => w.dataSync().slice() as Float32Array),
    relus: info.kernels.filter((k) => k.name === "Relu").length,
  };
  tf.dispose([out!.value, ...Object.values(out!.grads)]);
  return res;
}

function assertSameBits(a: Float32Array[], b: Float32Array[], what: string): void {
  assert.equal(a.length, b.length);
  a.forEach((arr, i) => {
    const j = arr.findIndex((v, k) => !Object.is(v, b[i]![k]));
    assert.equal(j, -1, `${what} ${i}, element ${j}: ${arr[j]} fused vs ${b[i]![j]} apart`);
  });
}

/** Run `f` on a fresh `net()`, its starting weights and a random batch (seeded), disposing them and putting the fusion back after. */
async function withNet(seed: number, batch: number, f: (model: tf.LayersModel, start: tf.Tensor[], x: tf.Tensor) => Promise<void>): Promise<void> {
  const model = net();
  const start = model.getWeights().map((w) => w.clone());
  const x = tf.randomNormal([batch, 6, 6, 3], 0, 1, "float32", seed);
  try {
    await f(model, start, x);
  } finally {
    setReluFusion(nativeReluFusion);
    tf.dispose([x, ...start]);
    model.dispose();
  }
}

test("BatchNorm + ReLU fused in training gives the layers' bits apart, and fuses only the plain ReLUs that alone read a BatchNorm", async () => {
  const model = net();
  const start = model.getWeights().map((w) => w.clone());
  // a NaN and exact zeros in the input: they go through both paths alike
  const xv = tf.randomNormal([5, 6, 6, 3], 0, 1, "float32", 9).dataSync().slice();
  xv[7] = NaN;
  xv.fill(0, 20, 40);
  const x = tf.tensor(xv, [5, 6, 6, 3]);
  const clean = tf.randomNormal([5, 6, 6, 3], 0, 1, "float32", 10);
  try {
    for (const input of [clean, x]) {
      setReluFusion(nativeReluFusion);
      const fused = await run(model, start, input);
      setReluFusion(undefined);
      const apart = await run(model, start, input);
      setReluFusion(nativeReluFusion);
      assert.ok(Object.is(fused.loss, apart.loss), `loss ${fused.loss} vs ${apart.loss}`);
      assertSameBits(fused.grads, apart.grads, "gradient");
      assertSameBits(fused.weights, apart.weights, "weight or moving statistic");
      // apart, all five run the Relu kernel (r2, an Activation layer, runs the same; r3 clips after it);
      // fused, r3 (capped), r4 (whose BatchNorm the add reads too) and r6 (whose BatchNorm c7 reads too)
      assert.equal(apart.relus, 5, "r1, r2, r3, r4 and r6 run the Relu kernel apart");
      assert.equal(fused.relus, 3, "only r3, r4 and r6 run the Relu kernel when fused");
    }
    // inference fuses too, with the moving statistics (more in the inference tests below)
    setReluFusion(nativeReluFusion);
    const inf = tf.tidy(() => (model.predict(clean) as tf.Tensor[]).map((t) => t.dataSync().slice() as Float32Array));
    setReluFusion(undefined);
    const infApart = tf.tidy(() => (model.predict(clean) as tf.Tensor[]).map((t) => t.dataSync().slice() as Float32Array));
    assertSameBits(inf, infApart, "inference output");
  } finally {
    setReluFusion(nativeReluFusion);
    tf.dispose([x, clean, ...start]);
    model.dispose();
  }
});

test("a hook on the ReLU or on the BatchNorm keeps the two apart while it is there, and the hook sees what it saw before", async () => {
  await withNet(11, 3, async (model, start, x) => {
    // hooked before the model's first training call: once the hook goes, the pair fuses (nothing cached it apart)
    const first = hookOutput(model, "r1");
    assert.equal((await run(model, start, x)).relus, 4, "r1 hooked from the start: r1, r3, r4 and r6 run Relu");
    first.remove();
    assert.equal((await run(model, start, x)).relus, 3, "the hook removed: r1 fuses again");
    for (const layer of ["r1", "b1"]) {
      setReluFusion(undefined);
      const hookApart = hookOutput(model, layer);
      const apart = await run(model, start, x);
      const seenApart = hookApart.stored!.dataSync().slice();
      hookApart.remove();
      setReluFusion(nativeReluFusion);
      const hook = hookOutput(model, layer);
      const fused = await run(model, start, x);
      const seen = hook.stored!.dataSync().slice();
      hook.remove();
      assert.deepEqual(seen, seenApart, `the hook on ${layer} saw the same values`);
      assert.equal(fused.relus, 4, `with ${layer} hooked, r1, r3, r4 and r6 run the Relu kernel (r2 still fuses)`);
      assertSameBits(fused.grads, apart.grads, "gradient");
      assert.equal((await run(model, start, x)).relus, 3, `the hook on ${layer} removed: the pair fuses again`);
    }
    // tfjs's own call hook (setCallHook) on the Activation layer keeps it apart, and runs
    let hooked = 0;
    const r2 = model.getLayer("r2");
    r2.setCallHook(() => void hooked++);
    assert.equal((await run(model, start, x)).relus, 4, "r2 with a call hook runs Relu");
    assert.equal(hooked, 1);
    r2.clearCallHook();
    assert.equal((await run(model, start, x)).relus, 3);
  });
});

test("a BatchNorm or ReLU whose call is not tfjs-layers' own (a subclass's, a later patch) keeps the two apart", async () => {
  await withNet(12, 3, async (model, start, x) => {
    const fused = await run(model, start, x);
    assert.equal(fused.relus, 3);
    // a subclass overriding call: an object whose prototype is the layer's class with another call
    for (const name of ["b1", "r1"]) {
      const layer = model.getLayer(name) as unknown as { call: (...a: unknown[]) => unknown };
      const proto = Object.getPrototypeOf(layer) as { call: (...a: unknown[]) => unknown };
      let calls = 0;
      const sub = Object.create(proto) as { call: (...a: unknown[]) => unknown };
      sub.call = function (this: unknown, ...a: unknown[]) {
        calls++;
        return proto.call.apply(this, a);
      };
      Object.setPrototypeOf(layer, sub);
      try {
        const got = await run(model, start, x);
        assert.equal(calls, 1, `${name}'s subclass call ran`);
        assert.equal(got.relus, 4, `with ${name}'s call overridden, r1 runs Relu`);
        assertSameBits(got.grads, fused.grads, "gradient");
      } finally {
        Object.setPrototypeOf(layer, proto);
      }
    }
    assert.equal((await run(model, start, x)).relus, 3, "back to tfjs-layers' calls: fused again");
  });
});

/**
 * A residual net for inference: conv → BN → ReLU "r1" (fusible), conv → BN, then Add "s2" of it and r1 →
 * ReLU "r2" (fusible), Add "s3" → capped ReLU "r3" (not), a three-input Add "s4" → ReLU "r4" (not).
 */
function resNet(): tf.LayersModel {
  const add = (name: string, xs: tf.SymbolicTensor[]) => tf.layers.add({ name }).apply(xs) as tf.SymbolicTensor;
  const x = tf.input({ shape: [6, 6, 4] });
  const r1 = tf.layers.reLU({ name: "r1" }).apply(bn("b1", conv("c1", 1, x))) as tf.SymbolicTensor;
  const c2 = conv("c2", 2, r1);
  const r2 = tf.layers.reLU({ name: "r2" }).apply(add("s2", [bn("b2", c2), r1])) as tf.SymbolicTensor;
  const c3 = conv("c3", 3, r2);
  const r3 = tf.layers.reLU({ maxValue: 6, name: "r3" }).apply(add("s3", [c3, r2])) as tf.SymbolicTensor;
  const r4 = tf.layers.reLU({ name: "r4" }).apply(add("s4", [r3, r2, c3])) as tf.SymbolicTensor;
  const head = tf.layers.dense({ units: 3, kernelInitializer: init(6), name: "head" }).apply(tf.layers.globalAveragePooling2d({}).apply(r4)) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: head });
}

/** `f`'s result as arrays, and how many Relu kernels it ran. */
async function relusOf(f: () => tf.Tensor | tf.Tensor[]): Promise<{ out: Float32Array[]; relus: number }> {
  let out: Float32Array[] = [];
  const info = await tf.profile(() => {
    out = tf.tidy(() => {
      const y = f();
      return (Array.isArray(y) ? y : [y]).map((t) => t.dataSync().slice() as Float32Array);
    });
  });
  return { out, relus: info.kernels.filter((k) => k.name === "Relu").length };
}

/** `relusOf(f)` with the fusion on, then with it off (and on again after). */
async function fusedAndApart(f: () => tf.Tensor | tf.Tensor[]): Promise<{ fused: Awaited<ReturnType<typeof relusOf>>; apart: Awaited<ReturnType<typeof relusOf>> }> {
  setReluFusion(nativeReluFusion);
  const fused = await relusOf(f);
  setReluFusion(undefined);
  try {
    return { fused, apart: await relusOf(f) };
  } finally {
    setReluFusion(nativeReluFusion);
  }
}

test("in inference, BatchNorm + ReLU and a residual Add + ReLU run as one pass each (predict and apply), with the layers' bits apart; NaN and zeros alike", async () => {
  const model = resNet();
  // trained-looking moving statistics, so that the inference BatchNorm is not the identity
  model.layers.filter((l) => l.getClassName() === "BatchNormalization").forEach((l, i) => {
    const [gamma, beta, mean, variance] = l.getWeights();
    l.setWeights([gamma!, beta!, tf.randomNormal(mean!.shape, 0, 0.5, "float32", 20 + i), tf.randomUniform(variance!.shape, 0.2, 2, "float32", 30 + i)]);
  });
  const xv = tf.randomNormal([5, 6, 6, 4], 0, 1, "float32", 13).dataSync().slice();
  xv[3] = NaN;
  xv.fill(0, 30, 60);
  const x = tf.tensor(xv, [5, 6, 6, 4]);
  try {
    for (const call of [() => model.predict(x, { batchSize: 2 }) as tf.Tensor, () => model.apply(x, { training: false }) as tf.Tensor]) {
      const { fused, apart } = await fusedAndApart(call);
      assertSameBits(fused.out, apart.out, "inference output");
      assert.ok(fused.out[0]!.some((v) => Number.isNaN(v)) && fused.out[0]!.some((v) => Number.isFinite(v)), "the NaN reached some outputs, not all");
      const batches = call.toString().includes("predict") ? 3 : 1;
      assert.equal(apart.relus, 4 * batches, "r1 to r4 run the Relu kernel apart");
      assert.equal(fused.relus, 2 * batches, "only r3 (capped) and r4 (after a three-input Add) run it fused");
    }
  } finally {
    setReluFusion(nativeReluFusion);
    x.dispose();
    model.dispose();
  }
});

test("in inference, nothing fuses while a gradient is recorded (Grad-CAM through a model in inference mode), nor around a hooked Add", async () => {
  const model = resNet();
  const x = tf.randomNormal([2, 6, 6, 4], 0, 1, "float32", 14);
  const gradOf = () => tf.grad((inp: tf.Tensor) => tf.sum(model.apply(inp, { training: false }) as tf.Tensor))(x);
  try {
    const { fused, apart } = await fusedAndApart(gradOf);
    assertSameBits(fused.out, apart.out, "input gradient");
    assert.equal(fused.relus, apart.relus, "recording a gradient: every ReLU runs its kernel");
    assert.ok(fused.out[0]!.some((v) => v !== 0), "the gradient reaches the input");
    const hook = hookOutput(model, "s2");
    const hooked = await relusOf(() => model.apply(x, { training: false }) as tf.Tensor);
    assert.equal(hook.stored!.shape.join(), "2,6,6,4");
    assert.ok(hook.stored!.dataSync().some((v) => v < 0), "the hook saw the sum before its ReLU");
    hook.remove();
    assert.equal(hooked.relus, 3, "s2 hooked: r2 runs its ReLU (r1 still fuses)");
    assert.equal((await relusOf(() => model.apply(x, { training: false }) as tf.Tensor)).relus, 2, "the hook removed: fused again");
  } finally {
    setReluFusion(nativeReluFusion);
    x.dispose();
    model.dispose();
  }
});
