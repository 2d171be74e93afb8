/**
 * BatchNorm + ReLU as one op in training on the native engine (native/batchnorm.ts, asked by the forward
 * walk in lean-forward.ts): the same bits as the two layers apart (loss, every gradient, the moving
 * statistics), only where nothing else sees the BatchNorm's output, and never around a hook.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { initNative } from "../lib/engine/native";
import { leanForwardInstalled, setReluFusion } from "../lib/engine/lean-forward";
import { batchNormReluCall } from "../lib/engine/native/batchnorm";
import { hookOutput } from "../lib/learner/hooks";

before(async () => {
  await ready(); // installs the forward walk that asks for the fusion
  await initNative();
  await tf.setBackend("native");
  assert.ok(leanForwardInstalled());
});

/**
 * What the walk must tell apart: conv → BN → ReLU (fusible; the ReLU's output is also a model output),
 * BN → Activation("relu") (fusible), BN → ReLU(maxValue 6) (not: a capped ReLU), a BN whose output a
 * ReLU and an add both read (not), one whose output a ReLU (a model output, so the nearest reader to
 * the outputs) and a conv both read (not), and a BN that is a model output itself (not).
 */
function net(): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotNormal({ seed });
  const conv = (name: string, seed: number, x: tf.SymbolicTensor) =>
    tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", kernelInitializer: init(seed), name }).apply(x) as tf.SymbolicTensor;
  // gamma from -1 to 1 so that some channels come out mostly negative (the ReLU's zeros matter)
  const bn = (name: string, x: tf.SymbolicTensor) =>
    tf.layers.batchNormalization({ name, gammaInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: name.length }) }).apply(x) as tf.SymbolicTensor;
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
    setReluFusion(batchNormReluCall);
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
      setReluFusion(batchNormReluCall);
      const fused = await run(model, start, input);
      setReluFusion(undefined);
      const apart = await run(model, start, input);
      setReluFusion(batchNormReluCall);
      assert.ok(Object.is(fused.loss, apart.loss), `loss ${fused.loss} vs ${apart.loss}`);
      assertSameBits(fused.grads, apart.grads, "gradient");
      assertSameBits(fused.weights, apart.weights, "weight or moving statistic");
      // apart, all five run the Relu kernel (r2, an Activation layer, runs the same; r3 clips after it);
      // fused, r3 (capped), r4 (whose BatchNorm the add reads too) and r6 (whose BatchNorm c7 reads too)
      assert.equal(apart.relus, 5, "r1, r2, r3, r4 and r6 run the Relu kernel apart");
      assert.equal(fused.relus, 3, "only r3, r4 and r6 run the Relu kernel when fused");
    }
    // inference is untouched: BatchNorm uses its moving statistics there
    setReluFusion(batchNormReluCall);
    const inf = tf.tidy(() => (model.predict(clean) as tf.Tensor[]).map((t) => t.dataSync().slice() as Float32Array));
    setReluFusion(undefined);
    const infApart = tf.tidy(() => (model.predict(clean) as tf.Tensor[]).map((t) => t.dataSync().slice() as Float32Array));
    assertSameBits(inf, infApart, "inference output");
  } finally {
    setReluFusion(batchNormReluCall);
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
      setReluFusion(batchNormReluCall);
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
