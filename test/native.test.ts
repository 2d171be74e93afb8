/**
 * The native engine's kernels agree with the pure-JS cpu backend (forward and gradients, on
 * seeded random inputs including strides, padding, dilation and broadcast edge cases), its
 * gradients agree with finite differences, and training does not leak tensors or memory.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as v8 from "node:v8";
import * as vm from "node:vm";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import * as tf from "../lib/engine/tf";
import { initNative } from "../lib/engine/native";
import { defaultThreads } from "../lib/engine/backend";
import { NativeAdamOptimizer } from "../lib/engine/native/optimizer";
import { EQUAL_MASK, RELU_GRAD } from "../lib/engine/native/kernels";
import { defaultPoolLimit, type NativeBackend } from "../lib/engine/native/pool";
import { nativeSumEach } from "../lib/engine/native/sum-each";
import { loadAddon, OMP_SPINS, renewToken } from "../lib/engine/native/addon";
import { movingAverage } from "../lib/engine/native/batchnorm";

// A real collection before each RSS reading (without --expose-gc, `global.gc` is undefined and
// RSS depends on when V8 happens to collect).
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

const nativeStorage = () => tf.engine().findBackend("native") as unknown as NativeBackend;

type Fn = () => tf.Tensor | tf.Tensor[];

// Inputs are plain arrays so each backend builds its own tensors from identical numbers.
let seed = 1;
function rnd(shape: number[], lo = -1, hi = 1): () => tf.Tensor {
  const t = tf.tidy(() => tf.randomUniform(shape, lo, hi, "float32", seed++));
  const data = t.dataSync().slice();
  t.dispose();
  return () => tf.tensor(data, shape, "float32");
}

function runOn(backend: string, fn: Fn): Float32Array[] {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const out = fn();
    return (Array.isArray(out) ? out : [out]).map((t) => t.dataSync().slice() as Float32Array);
  });
}

/** Run `fn` on cpu and on native; assert every output matches within atol + rtol * |cpu|. */
function agree(name: string, fn: Fn, atol = 1e-4, rtol = 1e-4, want = runOn("cpu", fn)): void {
  const got = runOn("native", fn);
  assert.equal(got.length, want.length, `${name}: number of outputs`);
  want.forEach((w, i) => {
    const g = got[i]!;
    assert.equal(g.length, w.length, `${name}: output ${i} size`);
    for (let j = 0; j < w.length; j++) {
      const a = g[j]!, b = w[j]!;
      if (Number.isNaN(b)) {
        assert.ok(Number.isNaN(a), `${name}: output ${i}[${j}] should be NaN, got ${a}`);
        continue;
      }
      assert.ok(Math.abs(a - b) <= atol + rtol * Math.abs(b), `${name}: output ${i}[${j}] native ${a} vs cpu ${b}`);
    }
  });
}

/** Value and gradients of sum(f(inputs) * r) with respect to every input. */
function withGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, ...inputs: (() => tf.Tensor)[]): Fn {
  return () => {
    const xs = inputs.map((mk) => mk());
    const y = f(...xs);
    const r = tf.tidy(() => tf.randomUniform(y.shape, -1, 1, "float32", 7));
    const g = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), r)))(xs);
    return [y, ...g];
  };
}

/** The names of the kernels `fn` runs, in order. */
function kernelNames(fn: () => void): string[] {
  const seen: string[] = [];
  const engine = tf.engine();
  const run = engine.runKernel.bind(engine);
  engine.runKernel = ((name: string, ...rest: unknown[]) => (seen.push(name), (run as (...a: unknown[]) => unknown)(name, ...rest))) as typeof run;
  try {
    fn();
  } finally {
    engine.runKernel = run;
  }
  return seen;
}

before(async () => {
  require("@tensorflow/tfjs-backend-cpu");
  const info = await initNative();
  assert.equal(info.backend, "native");
  assert.equal(info.threads, defaultThreads(), "the engine uses TSFAST_THREADS or every core");
});

test("every cpu kernel is also registered for the native backend", () => {
  const cpu = tf.getKernelsForBackend("cpu").map((k) => k.kernelName).sort();
  const native = tf.getKernelsForBackend("native").map((k) => k.kernelName).filter((n) => n !== RELU_GRAD && n !== EQUAL_MASK).sort();
  assert.deepEqual(native, cpu);
});

test("conv2d and its input/filter gradients match cpu across strides, padding and dilation", () => {
  const cases: [number[], number[], number | [number, number], "same" | "valid" | number, number][] = [
    [[2, 9, 9, 3], [3, 3, 3, 5], 1, "same", 1],
    [[2, 9, 9, 3], [3, 3, 3, 5], 2, "same", 1],
    [[1, 10, 7, 4], [3, 2, 4, 6], [2, 1], "valid", 1],
    [[2, 11, 11, 2], [7, 7, 2, 4], 2, "same", 1],
    [[2, 6, 6, 8], [1, 1, 8, 4], 2, "valid", 1],
    [[1, 8, 8, 3], [3, 3, 3, 2], 1, 1, 1],
    [[1, 7, 7, 2], [3, 3, 2, 3], 2, "valid", 1],
  ];
  for (const [xs, ws, s, p, d] of cases) {
    agree(`conv2d x${xs} w${ws} s${s} ${p}`, withGrads((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, s, p), rnd(xs), rnd(ws)), 2e-4, 2e-4);
  }
  const dx = rnd([2, 9, 9, 3]), dw = rnd([3, 3, 3, 4]);
  agree("conv2d dilation 2", () => tf.conv2d(dx() as tf.Tensor4D, dw() as tf.Tensor4D, 1, "same", "NHWC", 2));
});

test("convolutions with small outputs run oneDNN's direct jit kernel, chosen by shape alone (TSFAST_SMALL_CONV_JIT=0 keeps brgconv), with cpu's numbers and the same bits call after call", () => {
  const addon = loadAddon();
  // convParams' layout: N, H, W, C, KH, KW, O, OH, OW, strides, dilations, pads (top, left, bottom, right), groups
  const params = (n: number, h: number, c: number, o: number, k: number, s: number, pad: number) => {
    const oh = Math.floor((h + 2 * pad - k) / s) + 1;
    return Int32Array.from([n, h, h, c, k, k, o, oh, oh, s, s, 1, 1, pad, pad, pad, pad, 1]);
  };
  const small = [params(32, 4, 512, 512, 3, 1, 1), params(64, 2, 512, 512, 3, 1, 1), params(8, 8, 256, 512, 3, 2, 1), params(8, 4, 64, 128, 1, 2, 0)];
  const large = [params(32, 8, 256, 256, 3, 1, 1), params(8, 4, 128, 128, 3, 1, 1), params(4, 4, 512, 512, 3, 1, 1), params(8, 7, 512, 512, 3, 1, 1)];
  if (/\bavx512f\b/.test(fs.readFileSync("/proc/cpuinfo", "utf8"))) {
    for (const p of small) assert.equal(addon.convForwardImpl(p), "jit:avx512_core", `[${p}]`);
    for (const p of large) assert.equal(addon.convForwardImpl(p), "brgconv:avx512_core", `[${p}]`);
    const off = spawnSync(process.execPath, ["-e", `const a = require(${JSON.stringify(require.resolve("../lib/engine/native/addon"))}).loadAddon(); console.log(a.convForwardImpl(Int32Array.from([${small[0]!.join(",")}])))`], {
      env: { ...process.env, TSFAST_SMALL_CONV_JIT: "0" },
      encoding: "utf8",
    });
    assert.equal(off.stdout.trim(), "brgconv:avx512_core", off.stderr);
  }
  // tfjs's cpu kernel sums each output in doubles and rounds once, so it is all but exact here (2,304 terms a value).
  const x = rnd([8, 4, 4, 256]), w = rnd([3, 3, 256, 256], -0.1, 0.1);
  const conv = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same");
  agree("conv2d with 4×4 outputs from 256 channels", withGrads(conv, x, w), 2e-5, 2e-5);
  const once = runOn("native", () => conv(x(), w()))[0]!, again = runOn("native", () => conv(x(), w()))[0]!;
  assert.deepEqual(Buffer.from(again.buffer), Buffer.from(once.buffer), "the same convolution twice gave different bits");
});

test("a convolution keeps a reordered copy of weights asked for twice with the same contents, and none of weights that change at every call (training)", () => {
  const addon = loadAddon();
  // A shape no other test uses, so these primitives' copies are the only change to the total.
  const xs = rnd([2, 10, 10, 48]);
  const mk = (k: number) => rnd([3, 3, 48, 80], -k, k);
  const w1 = mk(1);
  const held0 = addon.heldWeightCopies();
  // A training step's convolution: one forward and one backward-data pass, each reordering the weights.
  const step = (w: () => tf.Tensor): Fn => () => {
    const f = w();
    const r = tf.tidy(() => tf.randomUniform([2, 10, 10, 80], -1, 1, "float32", 11));
    return tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, "same"), r)))(xs());
  };
  // Training: new weights at every step: the numbers are cpu's every time and no copy stays.
  for (const k of [1, 2, 3]) agree(`training step ${k}`, step(mk(k)), 3e-4, 3e-4);
  assert.equal(addon.heldWeightCopies(), held0, "copies of weights that changed at every call stayed");
  // Inference: the same weight tensor three times: the second call keeps the copy, the third uses it.
  const w = tf.tidy(() => w1());
  tf.setBackend("native");
  const x = tf.tidy(() => xs());
  const outs = [0, 1, 2].map(() => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same"));
  const kept = addon.heldWeightCopies() - held0;
  assert.ok(kept > 0 && kept <= 3 * 3 * 48 * 80 * 4 * 1.5, `kept ${kept} bytes after three calls with the same weights`);
  const want = runOn("cpu", () => tf.conv2d(xs() as tf.Tensor4D, w1() as tf.Tensor4D, 1, "same"))[0]!;
  for (const o of outs) agree("inference", () => o.clone(), 3e-4, 3e-4, [want]);
  // Written in place (a fused optimizer's update): a new token, so the copy is refilled, not reused.
  tf.setBackend("native");
  const storage = nativeStorage().data.get(w.dataId)!.values as Float32Array;
  storage.fill(0.01);
  renewToken(storage);
  const after = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same");
  const ref = runOn("cpu", () => tf.conv2d(xs() as tf.Tensor4D, tf.fill([3, 3, 48, 80], 0.01) as tf.Tensor4D, 1, "same"))[0]!;
  agree("after an in-place write", () => after.clone(), 3e-4, 3e-4, [ref]);
  tf.setBackend("native");
  tf.dispose([...outs, after, x, w]);
});

test("fused conv2d with bias and relu/relu6/sigmoid/elu matches cpu", () => {
  for (const activation of ["linear", "relu", "relu6", "sigmoid", "elu"] as const) {
    agree(`fused conv2d ${activation}`, withGrads(
      (x, w, b) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 1, pad: "same", bias: b, activation }),
      rnd([2, 6, 6, 3]), rnd([3, 3, 3, 4]), rnd([4])), 2e-4, 2e-4);
  }
});

test("a convolution without bias or activation computes its input's gradient only when asked (a first layer's image needs none), with the same numbers", () => {
  tf.setBackend("native");
  const x = rnd([2, 12, 12, 3])(), w0 = rnd([5, 5, 3, 4])(), w1 = rnd([3, 3, 4, 2])();
  const wv = tf.variable(w0), w1v = tf.variable(w1);
  const loss = () => {
    const h = tf.fused.conv2d({ x: x as tf.Tensor4D, filter: wv as tf.Tensor4D, strides: 2, pad: "valid" });
    return tf.sum(tf.square(tf.fused.conv2d({ x: tf.relu(h) as tf.Tensor4D, filter: w1v as tf.Tensor4D, strides: 1, pad: "same" })));
  };
  let got: Float32Array[] = [];
  const names = kernelNames(() => {
    const { grads } = tf.variableGrads(loss as () => tf.Scalar, [wv, w1v]);
    got = [grads[wv.name]!.dataSync().slice() as Float32Array, grads[w1v.name]!.dataSync().slice() as Float32Array];
    tf.dispose(Object.values(grads));
  });
  // one input gradient (the second conv's, which the first conv's filter needs), two filter gradients
  assert.equal(names.filter((n) => n === "Conv2DBackpropInput").length, 1, names.join(" "));
  assert.equal(names.filter((n) => n === "Conv2DBackpropFilter").length, 2);
  // the cpu backend takes tfjs's own fused op and custom gradient: the same gradients
  tf.setBackend("cpu");
  const xc = tf.tensor(x.dataSync(), x.shape), wc = tf.variable(tf.tensor(w0.dataSync(), w0.shape)), w1c = tf.variable(tf.tensor(w1.dataSync(), w1.shape));
  const { grads } = tf.variableGrads(() => {
    const h = tf.fused.conv2d({ x: xc as tf.Tensor4D, filter: wc as tf.Tensor4D, strides: 2, pad: "valid" });
    return tf.sum(tf.square(tf.fused.conv2d({ x: tf.relu(h) as tf.Tensor4D, filter: w1c as tf.Tensor4D, strides: 1, pad: "same" })));
  }, [wc, w1c]);
  [grads[wc.name]!, grads[w1c.name]!].forEach((g, k) => {
    const ref = g.dataSync();
    ref.forEach((v, i) => assert.ok(Math.abs(v - got[k]![i]!) < 2e-4 * (1 + Math.abs(v)), `filter ${k} grad[${i}] ${got[k]![i]} vs cpu ${v}`));
  });
  tf.dispose([xc, wc, w1c, ...Object.values(grads)]);
  tf.setBackend("native");
  tf.dispose([x, w0, w1, wv, w1v]);
});

test("depthwise conv2d and its gradients match cpu", () => {
  agree("depthwise s1", withGrads((x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same"), rnd([2, 7, 7, 3]), rnd([3, 3, 3, 2])), 2e-4, 2e-4);
  agree("depthwise s2 valid", withGrads((x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, "valid"), rnd([1, 9, 9, 4]), rnd([3, 3, 4, 1])), 2e-4, 2e-4);
});

test("max and average pooling and their gradients match cpu", () => {
  for (const [f, s, p] of [[3, 2, "same"], [2, 2, "valid"], [3, 1, "same"], [3, 2, "valid"]] as const) {
    agree(`maxPool ${f}/${s} ${p}`, withGrads((x) => tf.maxPool(x as tf.Tensor4D, f, s, p), rnd([2, 9, 9, 3])));
    agree(`avgPool ${f}/${s} ${p}`, withGrads((x) => tf.avgPool(x as tf.Tensor4D, f, s, p), rnd([2, 9, 9, 3])));
  }
});

test("matMul, batched and broadcast matMul, and fused matMul match cpu", () => {
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
    const a = ta ? [7, 5] : [5, 7], b = tb ? [3, 7] : [7, 3];
    agree(`matMul ${ta} ${tb}`, withGrads((x, y) => tf.matMul(x, y, ta, tb), rnd(a), rnd(b)));
  }
  agree("batched matMul", withGrads((x, y) => tf.matMul(x, y), rnd([4, 5, 6]), rnd([4, 6, 3])));
  const ba = rnd([4, 5, 6]), bb = rnd([1, 6, 3]);
  agree("broadcast matMul", () => tf.matMul(ba(), bb()));
  agree("fused matMul bias relu", withGrads((x, y, b) => tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, bias: b, activation: "relu" }), rnd([6, 8]), rnd([8, 4]), rnd([4])));
  // A·Bᵀ with few rows in A (an LSTM's hidden gradient at batch 16) and a million multiply-adds or more is computed as
  // (B·Aᵀ)ᵀ: plain, batched, broadcast either side
  agree("matMul A·Bᵀ, 16 rows", withGrads((x, y) => tf.matMul(x, y, false, true), rnd([16, 256]), rnd([320, 256])));
  const ta = rnd([2, 8, 256]), tb = rnd([2, 512, 256]);
  agree("batched matMul A·Bᵀ, 8 rows", () => tf.matMul(ta(), tb(), false, true));
  const sa = rnd([1, 8, 256]), sb = rnd([3, 512, 256]), sc = rnd([3, 8, 256]), sd = rnd([1, 512, 256]);
  agree("broadcast matMul A·Bᵀ (A shared)", () => tf.matMul(sa(), sb(), false, true));
  agree("broadcast matMul A·Bᵀ (B shared)", () => tf.matMul(sc(), sd(), false, true));
});

test("binary ops with broadcasting match cpu", () => {
  const shapes: [number[], number[]][] = [
    [[2, 3, 4, 5], [2, 3, 4, 5]], [[2, 3, 4, 5], [5]], [[2, 3, 4, 5], [4, 1]], [[2, 3, 4, 5], []],
    [[1, 3, 1, 5], [2, 1, 4, 1]], [[5], [3, 1]], [[], [2, 3]], [[3, 1], [1, 1]],
  ];
  const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ["add", tf.add], ["sub", tf.sub], ["mul", tf.mul], ["div", tf.div], ["maximum", tf.maximum],
    ["minimum", tf.minimum], ["squaredDifference", tf.squaredDifference],
  ];
  for (const [as, bs] of shapes) {
    for (const [name, op] of ops) {
      // tfjs's own Maximum/Minimum/SquaredDifference gradients do not reduce broadcast axes: check them unbroadcast.
      const grads = !["maximum", "minimum", "squaredDifference"].includes(name) || as.join() === bs.join();
      agree(`${name} ${as} ${bs}`, grads ? withGrads(op, rnd(as), rnd(bs, 0.5, 2)) : withGrads((a) => op(a, tf.tensor(0.3)), rnd(as)));
    }
    const pa = rnd(as, 0.1, 2), pb = rnd(bs), ma = rnd(as, -5, 5), mb = rnd(bs, 0.5, 2);
    agree(`pow ${as} ${bs}`, () => tf.pow(pa(), pb()));
    agree(`mod ${as} ${bs}`, () => tf.mod(ma(), mb()));
  }
  const n1 = rnd([3, 4]), n2 = rnd([3, 4]), n3 = rnd([3, 4]);
  agree("addN", () => tf.addN([n1(), n2(), n3()]));
  agree("int32 add falls back to cpu", () => tf.cast(tf.add(tf.tensor([1, 2, 3], [3], "int32"), tf.tensor([4], [1], "int32")), "float32"));
  agree("NaN propagates through maximum", () => tf.maximum(tf.tensor([NaN, 1, 2]), tf.tensor([0, NaN, 1])));
});

test("unary ops and their gradients match cpu", () => {
  const ops: [string, (x: tf.Tensor) => tf.Tensor, number, number][] = [
    ["relu", tf.relu, -2, 2], ["relu6", tf.relu6, -2, 8], ["neg", tf.neg, -2, 2], ["exp", tf.exp, -2, 2],
    ["log", tf.log, 0.1, 3], ["sqrt", tf.sqrt, 0.1, 3], ["rsqrt", tf.rsqrt, 0.1, 3], ["square", tf.square, -2, 2],
    ["abs", tf.abs, -2, 2], ["sigmoid", tf.sigmoid, -4, 4], ["tanh", tf.tanh, -3, 3], ["reciprocal", tf.reciprocal, 0.5, 3],
    ["elu", tf.elu, -3, 3], ["softplus", tf.softplus, -20, 20], ["leakyRelu", (x) => tf.leakyRelu(x, 0.1), -2, 2],
    ["log1p", tf.log1p, -0.5, 2], ["expm1", tf.expm1, -2, 2], ["sin", tf.sin, -3, 3], ["cos", tf.cos, -3, 3],
    ["floor", tf.floor, -3, 3], ["ceil", tf.ceil, -3, 3], ["sign", tf.sign, -3, 3], ["step", (x) => tf.step(x, 0.3), -2, 2],
  ];
  for (const [name, op, lo, hi] of ops) agree(name, withGrads(op, rnd([3, 50], lo, hi)), 1e-5, 1e-5);
});

test("sum, mean, max, min and prod over leading, trailing, middle and scattered axes match cpu", () => {
  const axesList: (number | number[] | undefined)[] = [undefined, 0, -1, [0, 1, 2], [1, 2], [0, 2], 1];
  for (const axis of axesList) {
    for (const keepDims of [false, true]) {
      agree(`sum ${axis} ${keepDims}`, withGrads((x) => tf.sum(x, axis, keepDims), rnd([4, 5, 6, 3])), 1e-4, 1e-4);
      agree(`mean ${axis} ${keepDims}`, withGrads((x) => tf.mean(x, axis, keepDims), rnd([4, 5, 6, 3])));
      const mx = rnd([4, 5, 6, 3]), pr = rnd([2, 3, 4, 2], 0.5, 1.5);
      agree(`max ${axis}`, () => tf.max(mx(), axis, keepDims));
      agree(`min ${axis}`, () => tf.min(mx(), axis, keepDims));
      agree(`prod ${axis}`, () => tf.prod(pr(), axis, keepDims), 1e-4, 1e-4);
    }
  }
  const big = rnd([16, 32, 32, 16]);
  agree("large BatchNorm-like reduction", () => tf.sum(big(), [0, 1, 2]), 1e-2, 1e-4);
});

test("max's gradient (a concat-pool head's spatial max) matches cpu bit for bit, ties and NaN included, without tfjs's JavaScript equal", () => {
  // values on a coarse grid, so many elements tie for the max; one NaN
  const tied = (shape: number[]) => {
    const base = rnd(shape, -3, 3)();
    const v = Float32Array.from(base.dataSync(), (x) => Math.round(x));
    base.dispose();
    v[5] = NaN;
    return () => tf.tensor(v, shape, "float32");
  };
  for (const [shape, axes, keepDims] of [[[2, 5, 4, 3], [1, 2], false], [[2, 5, 4, 3], [1, 2], true], [[4, 6], -1, false], [[3, 4, 5], [0], false]] as const) {
    agree(`max over ${axes} of [${shape}] keepDims ${keepDims}`, withGrads((x) => tf.max(x, axes as number | number[], keepDims), tied([...shape])), 0, 0);
  }
  const seen = kernelNames(() => runOn("native", withGrads((x) => tf.max(x, [1, 2]), rnd([2, 5, 4, 3]))));
  assert.ok(seen.includes(EQUAL_MASK) && !seen.includes("Equal"), seen.join(" "));
});

test("reductions split over threads stay right when OpenMP gives fewer threads than asked (max, min, prod of a few long columns)", () => {
  // OMP_THREAD_LIMIT=1 under OMP_NUM_THREADS=4: the split path plans 4 partials and gets 1 thread.
  // The unused partials must hold the reduction's identity, not 0 (which once made max of negatives 0).
  const script = `
process.env.TSFAST_BACKEND = "native";
const t = require(${JSON.stringify(path.join(__dirname, "..", "lib", "index.js"))});
(async () => {
  await t.ready();
  const tf = t.tf, n = 200000, c = 3;
  const neg = new Float32Array(n * c).map((_v, i) => -1 - (i % 7) * 0.5);        // max -1, min -4
  const pos = new Float32Array(n * c).map((_v, i) => 1 + (i % 7) * 0.5);         // min 1, max 4
  const pow2 = new Float32Array(n * c).map((_v, i) => (Math.floor(i / c) % 2 ? 0.5 : 2)); // product exactly 1
  const r = (x, f) => Array.from(f(tf.tensor2d(x, [n, c]), 0).dataSync());
  console.log(JSON.stringify({ backend: tf.getBackend(), max: r(neg, tf.max), min: r(pos, tf.min), prod: r(pow2, tf.prod), sum: r(pow2, tf.sum) }));
})();`;
  const env = { ...process.env, OMP_NUM_THREADS: "4", OMP_THREAD_LIMIT: "1", TSFAST_THREADS: "4" };
  const res = spawnSync(process.execPath, ["-e", script], { env, encoding: "utf8", timeout: 60_000 });
  assert.equal(res.status, 0, res.stderr);
  const got = JSON.parse(res.stdout.trim().split("\n").pop()!) as Record<string, unknown>;
  assert.deepEqual(got, { backend: "native", max: [-1, -1, -1], min: [1, 1, 1], prod: [1, 1, 1], sum: [250000, 250000, 250000] });
});

test("softmax, logSoftmax, transpose, slice, split, concat, pad and tile match cpu", () => {
  agree("softmax", withGrads((x) => tf.softmax(x), rnd([6, 10], -5, 5)));
  agree("logSoftmax", withGrads((x) => tf.logSoftmax(x), rnd([6, 10], -5, 5)));
  agree("transpose", withGrads((x) => tf.transpose(x, [0, 3, 1, 2]), rnd([2, 3, 4, 5])));
  const t2 = rnd([7, 9]), sc = rnd([4, 5]), pc = rnd([3, 4]);
  agree("transpose 2d", () => tf.transpose(t2()));
  agree("slice middle", withGrads((x) => tf.slice(x, [0, 1, 1, 0], [2, 2, 3, 4]), rnd([2, 4, 5, 4])));
  agree("slice contiguous", () => tf.slice(sc(), [1, 0], [2, 5]));
  agree("pad", withGrads((x) => tf.pad(x, [[0, 0], [1, 2], [3, 0], [0, 1]]), rnd([2, 3, 4, 2])));
  agree("pad constant", () => tf.pad(pc(), [[1, 1], [2, 0]], 0.5));
  // a channel concat's gradient is a SplitV (the U-Net's skips)
  agree("split channels", withGrads((x) => tf.concat(tf.split(x, [3, 2, 5], 3).map((p, i) => tf.mul(p, i + 1)), 3), rnd([2, 3, 4, 10])));
  agree("split rows", () => tf.stack(tf.split(sc(), 2, 0).map((p) => tf.sum(p))));
  agree("tile", withGrads((x) => tf.tile(x, [2, 1, 3]), rnd([2, 3, 4])));
});

test("unstack along every axis, and stack's gradient (an unstack), match cpu", () => {
  const x = rnd([3, 4, 5]);
  for (const axis of [0, 1, 2, -1]) agree(`unstack axis ${axis}`, () => tf.unstack(x(), axis));
  agree("stack axis 1 with gradients", withGrads((a, c) => tf.stack([a, c, tf.mul(a, c)], 1), rnd([4, 6]), rnd([4, 6])));
});

test("gather's gradient (UnsortedSegmentSum: embeddings, repeated and 2-d ids) matches cpu", () => {
  const table = rnd([7, 5]);
  const ids = [3, 0, 3, 6, 3, 1];
  agree("gather rows", withGrads((t) => tf.gather(t, tf.tensor1d(ids, "int32")), table));
  agree("gather 2-d ids", withGrads((t) => tf.gather(t, tf.tensor2d([[1, 1, 2], [6, 0, 1]], [2, 3], "int32")), table));
  agree("segment sum", () => tf.unsortedSegmentSum(table(), tf.tensor1d([2, 2, 0, 9, -1, 4, 2], "int32"), 5));
});

test("batchNorm and tfjs-layers BatchNormalization training forward, gradients and moving stats match cpu", () => {
  const bx = rnd([2, 4, 4, 3]), bm = rnd([3]), bv = rnd([3], 0.5, 2), bo = rnd([3]), bs = rnd([3]);
  agree("batchNorm inference", () => tf.batchNorm(bx(), bm(), bv(), bo(), bs(), 1e-3));
  const xs = rnd([4, 5, 5, 6], 1, 4), w = rnd([4, 5, 5, 6]);
  agree("BatchNormalization layer (training)", () => {
    const layer = tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 });
    const x = xs(), r = w();
    layer.build(x.shape);
    const f = (a: tf.Tensor) => tf.sum(tf.mul(tf.square(layer.apply(a, { training: true }) as tf.Tensor), r));
    const { value, grads } = tf.variableGrads(() => f(x) as tf.Scalar);
    const dx = tf.grad(f)(x);
    return [value, dx, ...Object.values(grads), ...layer.getWeights()];
  }, 1e-3, 1e-4);
});

test("BatchNorm's moving average in one loop gives tfjs-layers' three float32 ops bit for bit", () => {
  tf.setBackend("native");
  for (const momentum of [0.9, 0.99, 0.1, 0.999]) {
    tf.tidy(() => {
      const v = tf.randomUniform([300], -3, 3, "float32", 21);
      const b = tf.randomNormal([300], 0, 2, "float32", 22);
      const got = movingAverage(v, b, momentum).dataSync();
      const want = tf.sub(v, tf.mul(tf.sub(v, b), 1 - momentum)).dataSync();
      assert.deepEqual(Array.from(got), Array.from(want), `momentum ${momentum}`);
    });
  }
});

test("native conv2d gradients agree with central finite differences", () => {
  tf.setBackend("native");
  tf.tidy(() => {
    const x = rnd([1, 6, 6, 2])(), w = rnd([3, 3, 2, 3])(), r = rnd([1, 3, 3, 3])();
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same"), r));
    const [gx, gw] = tf.grads(f)([x, w]);
    const eps = 1e-2;
    for (const [which, t, g] of [[0, x, gx!], [1, w, gw!]] as const) {
      const base = t.dataSync(), grad = g.dataSync();
      for (const i of [0, 5, 11, base.length - 1]) {
        const plus = base.slice(), minus = base.slice();
        plus[i] = plus[i]! + eps;
        minus[i] = minus[i]! - eps;
        const fp = which === 0 ? f(tf.tensor(plus, t.shape), w) : f(x, tf.tensor(plus, t.shape));
        const fm = which === 0 ? f(tf.tensor(minus, t.shape), w) : f(x, tf.tensor(minus, t.shape));
        const numeric = (fp.dataSync()[0]! - fm.dataSync()[0]!) / (2 * eps);
        assert.ok(Math.abs(numeric - grad[i]!) < 1e-2 + 1e-2 * Math.abs(numeric), `d/d${which === 0 ? "x" : "w"}[${i}]: analytic ${grad[i]} vs numeric ${numeric}`);
      }
    }
  });
});

test("fused native Adam/AdamW matches tfjs Adam and decays weights like AdamW", () => {
  const w0 = rnd([40, 7])(), target = rnd([40, 7])();
  const w0v = w0.dataSync().slice(), tv = target.dataSync().slice();
  const train = (backend: string, opt: tf.Optimizer) => {
    tf.setBackend(backend);
    const w = tf.variable(tf.tensor(w0v, [40, 7]));
    const t = tf.tensor(tv, [40, 7]);
    for (let i = 0; i < 25; i++) opt.minimize(() => tf.sum(tf.square(tf.sub(w, t))));
    const out = w.dataSync().slice();
    w.dispose();
    t.dispose();
    opt.dispose();
    return out;
  };
  const ref = train("cpu", tf.train.adam(0.01));
  const got = train("native", new NativeAdamOptimizer(0.01));
  ref.forEach((v, i) => assert.ok(Math.abs(v - got[i]!) < 1e-5, `adam w[${i}] ${got[i]} vs ${v}`));
  // tfjs's own tf.train.adam (what model.compile + trainOnBatch steps with) takes the same native pass on "native"
  let plain: Float32Array = new Float32Array();
  const names = kernelNames(() => (plain = train("native", tf.train.adam(0.01)) as Float32Array));
  assert.ok(!names.includes("Sqrt"), "tf.train.adam on native ran tfjs's op-by-op update");
  ref.forEach((v, i) => assert.ok(Math.abs(v - plain[i]!) < 1e-5, `tf.train.adam on native w[${i}] ${plain[i]} vs cpu ${v}`));
  // AdamW with no gradient signal (target == w) only decays: w * (1 - lr * wd)^steps.
  tf.setBackend("native");
  const w = tf.variable(tf.tensor(w0v, [40, 7]));
  const opt = new NativeAdamOptimizer(0.1, 0.9, 0.999, 1e-8, 0.5);
  for (let i = 0; i < 3; i++) opt.applyGradients({ [w.name]: tf.zerosLike(w) });
  const decayed = w.dataSync();
  w0v.forEach((v, i) => assert.ok(Math.abs(decayed[i]! - v * 0.95 ** 3) < 1e-6));
  w.dispose();
  opt.dispose();
});

test("native Adam on a variable whose storage someone else holds (a guard's snapshot, a user's array) leaves that storage as it was and gives the in-place numbers", () => {
  tf.setBackend("native");
  const n = 50_000; // above the threads' threshold
  const w0 = rnd([n])(), g0 = rnd([n])();
  const w0v = w0.dataSync().slice(), gv = g0.dataSync().slice();
  const run = (holdClone: boolean) => {
    const w = tf.variable(tf.tensor(w0v.slice(), [n]));
    const opt = new NativeAdamOptimizer(0.01, 0.9, 0.99, 1e-5, 0.1);
    const snaps: tf.Tensor[] = [];
    for (let i = 0; i < 3; i++) {
      if (holdClone) snaps.push(w.clone()); // shares w's storage, as TrainingGuard.snapshot does
      const g = tf.tensor(gv, [n]);
      opt.applyGradients([{ name: w.name, tensor: g }]);
      g.dispose();
    }
    const out = w.dataSync().slice();
    const held = snaps.map((t) => t.dataSync().slice());
    tf.dispose([w, ...snaps]);
    opt.dispose();
    return { out, held };
  };
  const inPlace = run(false), outOfPlace = run(true);
  assert.deepEqual(outOfPlace.out, inPlace.out);
  assert.deepEqual(outOfPlace.held[0], w0v, "the snapshot taken before the first step still holds the starting weights");
  assert.notDeepEqual(outOfPlace.held[1], outOfPlace.held[0]);
  // the weights after 3 steps differ from the start (the kernel did run), by hand for element 0: AdamW's first step moves by lr·(sign(g) + wd·w)
  assert.ok(Math.abs(outOfPlace.held[1]![0]! - (w0v[0]! * (1 - 0.01 * 0.1) - 0.01 * gv[0]! / (Math.abs(gv[0]!) + 1e-5))) < 1e-6);
  tf.dispose([w0, g0]);
});

test("OpenMP waits with a short spin (OMP_SPINS) unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT, and the settings do not leak to child processes", () => {
  // libgomp prints the settings it read at start-up with OMP_DISPLAY_ENV=VERBOSE
  const script = `const a = require(${JSON.stringify(path.join(__dirname, "..", "lib", "engine", "native", "addon.js"))}); a.loadAddon();
console.log(JSON.stringify([process.env.OMP_WAIT_POLICY ?? null, process.env.GOMP_SPINCOUNT ?? null]));`;
  const run = (extra: Record<string, string>) => {
    const env: NodeJS.ProcessEnv = { ...process.env, OMP_DISPLAY_ENV: "VERBOSE", ...extra };
    if (!("OMP_WAIT_POLICY" in extra)) delete env["OMP_WAIT_POLICY"];
    if (!("GOMP_SPINCOUNT" in extra)) delete env["GOMP_SPINCOUNT"];
    const res = spawnSync(process.execPath, ["-e", script], { env, encoding: "utf8", timeout: 60_000 });
    assert.equal(res.status, 0, res.stderr);
    const read = (name: string) => new RegExp(`${name} = '([^']*)'`).exec(res.stderr)?.[1];
    return { policy: read("OMP_WAIT_POLICY"), spins: read("GOMP_SPINCOUNT"), after: JSON.parse(res.stdout.trim().split("\n").pop()!) as unknown };
  };
  assert.deepEqual(run({}), { policy: "PASSIVE", spins: String(OMP_SPINS), after: [null, null] });
  assert.deepEqual(run({ OMP_WAIT_POLICY: "ACTIVE" }), { policy: "ACTIVE", spins: "30000000000", after: ["ACTIVE", null] });
  assert.equal(run({ GOMP_SPINCOUNT: "7" }).spins, "7");
});

test("the native Adam kernel rounds as written: the moments one multiply-add each, every other operation once, the same bits in its vector and scalar loops, in place and into new arrays", () => {
  const adam = loadAddon().adam;
  const n = 40_003; // vector bodies on both threads, a scalar tail, and a split that is not a multiple of 16
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  const fill = (scale: number, abs = false) => Float32Array.from({ length: n }, () => (abs ? Math.abs(rand()) : rand()) * scale);
  const w = fill(1), m = fill(1e-2), v = fill(1e-4, true), g = fill(1e-1);
  const f = Math.fround;
  // fma of float32 values: the product is exact in a double; one rounding of the sum, then to float32
  // (a double rounding differs from a true fma only at an exact float midpoint, which these inputs do not hit)
  const fma = (a: number, b: number, c: number) => f(a * b + c);
  for (const hyper of [[1e-3, 0.9, 0.99, 1e-5, 0.1, 0.01, 0.01], [3e-2, 0.85, 0.999, 1e-8, 0.5, 0.3, 0]]) {
    const h = Float64Array.from(hyper);
    const [lr, b1, b2, eps, c1, c2, wd] = hyper.map(f) as [number, number, number, number, number, number, number];
    const want = [new Float32Array(n), new Float32Array(n), new Float32Array(n)] as const;
    for (let i = 0; i < n; i++) {
      const gi = g[i]!;
      const mi = fma(b1, m[i]!, f(f(1 - b1) * gi));
      const vi = fma(b2, v[i]!, f(f(f(1 - b2) * gi) * gi));
      const step = f(f(lr * f(mi / c1)) / f(f(Math.sqrt(f(vi / c2))) + eps));
      want[0][i] = f(f(w[i]! * f(1 - f(lr * wd))) - step);
      want[1][i] = mi;
      want[2][i] = vi;
    }
    // every mix of in place (null) and a separate output, the whole length in one call
    for (const separate of [[false, false, false], [true, true, true], [true, false, true], [false, true, false]]) {
      const ins = [w.slice(), m.slice(), v.slice()];
      const outs = separate.map((s) => (s ? new Float32Array(n) : null));
      adam(ins[0]!, ins[1]!, ins[2]!, g, h, outs[0]!, outs[1]!, outs[2]!);
      const got = outs.map((o, j) => o ?? ins[j]!);
      ["param", "m", "v"].forEach((name, j) => {
        const bad = got[j]!.findIndex((x, i) => !Object.is(x, want[j]![i]));
        assert.equal(bad, -1, `${name}[${bad}] ${got[j]![bad]} vs ${want[j]![bad]} (separate outputs ${separate}, hyper ${hyper})`);
      });
      if (separate[0]) assert.deepEqual(ins[0], w, "a separate output leaves its input as it was");
    }
    // the first 37 elements one at a time (the scalar loop) give the same bits as the long call
    for (let i = 0; i < 37; i++) {
      const one = [w.slice(i, i + 1), m.slice(i, i + 1), v.slice(i, i + 1)];
      adam(one[0]!, one[1]!, one[2]!, g.slice(i, i + 1), h);
      one.forEach((a, j) => assert.ok(Object.is(a[0], want[j]![i]), `element ${i} alone: ${a[0]} vs ${want[j]![i]}`));
    }
  }
});

test("nativeSumEach (the training guard's gradient check) sums many tensors as tfjs's sum + addN does, NaN and overflow included", () => {
  const shapes = [[3, 3, 16, 32], [32], [70_000], [5, 7]];
  const make = () => shapes.map((sh) => rnd(sh)());
  const viaTfjs = (ts: tf.Tensor[]) => tf.tidy(() => tf.addN(ts.map((t) => tf.sum(t))).dataSync()[0]!);
  tf.setBackend("native");
  const ts = make();
  const got = nativeSumEach(ts)!;
  tf.setBackend("cpu");
  const cpuTs = ts.map((t) => tf.tensor(t.dataSync(), t.shape));
  const want = viaTfjs(cpuTs);
  assert.equal(nativeSumEach(cpuTs), undefined, "another backend: undefined, the caller goes through tfjs");
  tf.dispose(cpuTs);
  tf.setBackend("native");
  assert.ok(Math.abs(got - want) < 1e-3, `native ${got} vs tfjs ${want}`);
  // a NaN anywhere, an infinity, and float32 overflow of one tensor's sum
  const withNaN = [...ts, tf.tensor([1, NaN, 2])];
  assert.ok(Number.isNaN(nativeSumEach(withNaN)!));
  assert.equal(nativeSumEach([...ts, tf.tensor([1, -Infinity])]), -Infinity);
  const huge = tf.fill([4], 3e38);
  assert.equal(nativeSumEach([huge]), Infinity);
  assert.equal(viaTfjs([huge]), Infinity);
  assert.equal(nativeSumEach([tf.tensor([1, 2], [2], "int32")]), undefined);
  tf.dispose([...withNaN, huge]);
});

test("a pool filled by an earlier model's array sizes makes room for the sizes in use: their arrays are recycled again", () => {
  tf.setBackend("native");
  const storage = nativeStorage();
  const big = 1 << 16, small = 1 << 15; // floats; both above the pool's minimum
  storage.setPooling(true, { limitBytes: 4 * big * 4 });
  try {
    // an "earlier model": four arrays of one size fill the pool
    tf.dispose(tf.tidy(() => [0, 1, 2, 3].map((i) => tf.add(tf.fill([big], i), 1))));
    // the model in use: thousands of its own allocations (4,096 make a size stale), each freed at once
    const x = tf.fill([small], 1);
    for (let i = 0; i < 4200; i++) tf.add(x, i).dispose();
    const before = storage.reused;
    for (let i = 0; i < 20; i++) tf.add(x, i).dispose();
    // with the stale arrays kept, the pool stayed full and none of these were recycled
    assert.ok(storage.reused - before >= 19, `recycled ${storage.reused - before} of 20 allocations of the size in use`);
    x.dispose();
  } finally {
    storage.setPooling(true);
  }
});

test("stale arrays leave the pool even when it is not full; the pool's default size follows the machine's memory", () => {
  tf.setBackend("native");
  const storage = nativeStorage();
  const big = 1 << 16, small = 1 << 15;
  storage.setPooling(true, { limitBytes: 1 << 30 }); // room for everything: only staleness drops arrays
  try {
    tf.dispose(tf.tidy(() => [0, 1, 2, 3].map((i) => tf.add(tf.fill([big], i), 1))));
    assert.ok(storage.idleBytes >= 4 * big * 4, `an earlier model's four arrays are idle: ${storage.idleBytes} bytes`);
    const x = tf.fill([small], 1);
    // a sweep runs every 4,096 allocations and drops sizes not asked for in the last 4,096: two sweeps
    for (let i = 0; i < 8300; i++) tf.add(x, i).dispose();
    // left: the size in use (one or two arrays of it), not the 1 MiB of the earlier model's
    assert.ok(storage.idleBytes <= 2 * small * 4, `${storage.idleBytes} bytes idle after 8,300 allocations of another size`);
    x.dispose();
  } finally {
    storage.setPooling(true);
  }
  const GiB = 2 ** 30;
  assert.equal(defaultPoolLimit(8 * GiB), 2 * GiB); // a quarter of the memory
  assert.equal(defaultPoolLimit(2 * GiB), GiB); // at least 1 GiB
  assert.equal(defaultPoolLimit(64 * GiB), 4 * GiB); // at most 4 GiB
  assert.equal(defaultPoolLimit(10 * GiB + 3), 2.5 * GiB);
});

test("kernels above the pool's and the threads' thresholds (> 16,384 elements), called again with new data, match cpu with the pool on (poisoned) and off", () => {
  const storage = nativeStorage();
  const bigCases = (rep: number): [string, Fn, number?, number?][] => {
    // 20,480-element activations, a 17,280-float filter: all above the pool's floor and kPar.
    const x = rnd([2, 16, 16, 40]), w = rnd([3, 3, 40, 48], -0.2, 0.2), c = rnd([40]), y = rnd([2, 16, 16, 40]);
    const dw = rnd([3, 3, 40, 1]), a = rnd([256, 96]), b = rnd([96, 200]), sm = rnd([256, 96], -5, 5), pos = rnd([2, 16, 16, 40], 0.5, 2);
    return [
      [`conv2d + grads (${rep})`, withGrads((p, q) => tf.conv2d(p as tf.Tensor4D, q as tf.Tensor4D, 1, "same"), x, w), 5e-4, 5e-4],
      [`fused conv2d relu (${rep})`, () => tf.fused.conv2d({ x: x() as tf.Tensor4D, filter: w() as tf.Tensor4D, strides: 2, pad: "same", activation: "relu" }), 5e-4, 5e-4],
      [`depthwise + grads (${rep})`, withGrads((p, q) => tf.depthwiseConv2d(p as tf.Tensor4D, q as tf.Tensor4D, 1, "same"), x, dw), 5e-4, 5e-4],
      [`maxPool/avgPool + grads (${rep})`, withGrads((p) => tf.add(tf.maxPool(p as tf.Tensor4D, 3, 2, "same"), tf.avgPool(p as tf.Tensor4D, 2, 2, "valid")), x)],
      [`broadcast add, mul, div + grads (${rep})`, withGrads((p, q, r) => tf.div(tf.mul(tf.add(p, q), r), tf.add(r, 3)), x, c, y)],
      [`unary relu, exp, tanh, sigmoid, sqrt + grads (${rep})`, withGrads((p, q) => tf.add(tf.add(tf.relu(p), tf.exp(p)), tf.add(tf.tanh(p), tf.mul(tf.sigmoid(p), tf.sqrt(q)))), x, pos)],
      [`sum/mean/max over every layout (${rep})`, withGrads((p) => tf.add(tf.add(tf.sum(p, [0, 1, 2]), tf.mean(p, -1, true).sum()), tf.add(tf.max(p, [1, 2]).sum(), tf.sum(p, 0).sum())), x), 1e-3, 1e-4],
      [`softmax + grads (${rep})`, withGrads((p) => tf.softmax(p), sm)],
      [`matMul + grads (${rep})`, withGrads((p, q) => tf.matMul(p, q), a, b), 1e-3, 1e-4],
      [`transpose, slice, pad, tile (${rep})`, withGrads((p) => tf.add(tf.transpose(tf.pad(tf.slice(p, [0, 1, 1, 0], [2, 14, 14, 40]), [[0, 0], [1, 1], [1, 1], [0, 0]]), [0, 2, 1, 3]), tf.tile(tf.slice(p, [0, 0, 0, 0], [1, 16, 16, 40]), [2, 1, 1, 1])), x)],
      [`BatchNormalization layer, training (${rep})`, () => {
        const layer = tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 });
        const xi = x();
        layer.build(xi.shape);
        const f = (q: tf.Tensor) => tf.sum(tf.mul(tf.square(layer.apply(q, { training: true }) as tf.Tensor), y()));
        const { value, grads } = tf.variableGrads(() => f(xi) as tf.Scalar);
        return [value, tf.grad(f)(xi), ...Object.values(grads), ...layer.getWeights()];
      }, 1e-3, 1e-4],
    ];
  };
  try {
    for (const rep of [1, 2]) {
      for (const [name, fn, atol, rtol] of bigCases(rep)) {
        const want = runOn("cpu", fn);
        for (const [mode, on] of [["pool on", true], ["pool off", false]] as const) {
          storage.setPooling(on, { poison: true });
          agree(`${name}, ${mode}`, fn, atol, rtol, want);
        }
      }
    }
  } finally {
    storage.setPooling(true);
  }
});

test("1,000 training steps on a tiny conv net learn (the loss falls 20x) and keep tensor count and memory flat", () => {
  tf.setBackend("native");
  const input = tf.input({ shape: [8, 8, 3] });
  let h = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: "same", useBias: false }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({}).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU().apply(h) as tf.SymbolicTensor;
  h = tf.layers.maxPooling2d({ poolSize: 2 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 3 }).apply(h) as tf.SymbolicTensor });
  const opt = new NativeAdamOptimizer(1e-3);
  const x = tf.randomNormal([4, 8, 8, 3], 0, 1, "float32", 3);
  const y = tf.oneHot(tf.tensor1d([0, 1, 2, 1], "int32"), 3);
  const step = () => {
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor), true)!;
    const v = loss.dataSync()[0]!;
    loss.dispose();
    return v;
  };
  const first = step();
  // An untrained net does not know the labels: its cross-entropy is of the order of ln(3) = 1.1.
  assert.ok(first > 0.5 && first < 5, `first loss ${first} should be of the order of ln 3`);
  for (let i = 1; i < 100; i++) step();
  const tensors = tf.memory().numTensors;
  gc();
  const rss = process.memoryUsage().rss;
  let last = NaN;
  for (let i = 0; i < 900; i++) last = step();
  // Four fixed samples are memorised: the loss must fall by over 20x, and stay finite.
  assert.ok(Number.isFinite(last) && last < first / 20, `loss after 1,000 steps ${last} (first ${first})`);
  gc();
  assert.equal(tf.memory().numTensors, tensors, "tensor count grew during training");
  const grew = (process.memoryUsage().rss - rss) / 2 ** 20;
  assert.ok(grew < 64, `RSS grew by ${grew.toFixed(1)} MiB over 900 steps`);
  x.dispose();
  y.dispose();
  opt.dispose();
  model.dispose();
});

test("signals while oneDNN's GEMM runs do not corrupt the heap (oneDNN 2.x's JIT kernels point the stack into the heap): a profiler's SIGPROF on the main thread, a flood of process-directed signals on the OpenMP workers", () => {
  // Before each call into oneDNN held signals pending and the workers blocked them, this loop of the LSTM
  // classifier's products aborted in malloc ("corrupted size vs. prev_size") within 0.3 s under
  // `node --cpu-prof` (a SIGPROF every 50 µs), and often under the flood of SIGUSR2.
  const addon = JSON.stringify(path.join(__dirname, "..", "lib", "engine", "native", "addon.js"));
  const script = `
const fs = require("node:fs");
const { spawn } = require("node:child_process");
const tasks = () => fs.readdirSync("/proc/self/task");
const blocks = (t) => {
  const mask = BigInt("0x" + /SigBlk:\\s*([0-9a-f]+)/.exec(fs.readFileSync("/proc/self/task/" + t + "/status", "utf8"))[1]);
  return [2, 17, 27].every((sig) => (mask >> BigInt(sig - 1)) & 1n); // SIGINT, SIGCHLD, SIGPROF
};
const before = new Set(tasks());
const a = require(${addon}).loadAddon();
const threads = a.setThreads(Number(process.env.THREADS));
let caught = 0;
process.on("SIGUSR2", () => caught++);
// at most 400,000 signals from a shell loop; unref'd and killed at the end (a flood this long overflows libuv's
// signal pipe while this loop blocks the event loop, so the shell's exit could go unnoticed)
const sender = process.env.FLOOD === "1"
  ? spawn("sh", ["-c", "for i in $(seq 1 400000); do kill -USR2 " + process.pid + " 2>/dev/null || exit 0; done"], { stdio: "ignore" })
  : undefined;
sender?.unref();
const shapes = [[16, 2048, 512], [16, 512, 2048], [512, 2048, 16], [1152, 256, 32], [2, 2, 2]];
const bufs = shapes.map(([M, N, K]) => [new Float32Array(M * K).fill(0.5), new Float32Array(K * N).fill(0.25), new Float32Array(M * N)]);
const big = new Float32Array(1 << 20).fill(1), sum = new Float32Array(1 << 20), dims = Int32Array.from([1 << 20]);
// input 1×4×4×3, filter 3×3×3→8, output 1×2×2×8, stride 1, no padding (the layout of conv.cc's ConvP)
const convP = Int32Array.from([1, 4, 4, 3, 3, 3, 8, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0, 1]);
for (let i = 0; i < 3000; i++) {
  const s = i % shapes.length, [M, N, K] = shapes[s], [x, y, z] = bufs[s];
  a.matmul(x, y, z, Int32Array.from([1, 1, M, N, K, 0, 0]));
  if (z[0] !== K * 0.125) throw new Error("matmul gave " + z[0] + ", not " + K * 0.125);
  // a tiny convolution gradient (oneDNN runs it on a smaller team: libgomp ends the spare workers), then a large
  // elementwise op (a full team again: new workers, started by the calling thread with its mask)
  if (s === 4 && i % 50 === 4) {
    a.conv2dBackpropInput(new Float32Array(8 * 4).fill(1), new Float32Array(9 * 3 * 8).fill(1), new Float32Array(16 * 3), convP, 0);
    a.binary(0, big, big, sum, dims, dims, dims);
  }
  if (i % 8 === 0) new Float32Array(512 + (i % 300)); // JavaScript garbage between calls, as tfjs makes
}
sender?.kill("SIGKILL");
// every thread started since the addon loaded (its OpenMP workers) blocks signals; the main thread does not
const unblocked = tasks().filter((t) => !before.has(t) && !blocks(t)).length;
setTimeout(() => console.log(JSON.stringify({ threads, caught, unblocked, mainBlocks: blocks(String(process.pid)) })), 20);`;
  const runs = [
    { threads: 1, flood: false }, { threads: 2, flood: false }, { threads: 2, flood: true }, { threads: 6, flood: true },
  ];
  for (const { threads, flood } of runs) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-sigprof-"));
    const prof = flood ? [] : ["--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-interval", "50"];
    const res = spawnSync(process.execPath, [...prof, "-e", script], {
      env: { ...process.env, THREADS: String(threads), FLOOD: flood ? "1" : "0" }, encoding: "utf8", timeout: 120_000,
    });
    fs.rmSync(dir, { recursive: true, force: true });
    const what = `${threads} thread(s)${flood ? ", SIGUSR2 flood" : ", --cpu-prof"}`;
    assert.equal(res.status, 0, `${what}: ${res.signal ?? ""} ${res.stderr.slice(-500)}`);
    const got = JSON.parse(res.stdout.trim().split("\n").pop()!) as { threads: number; caught: number; unblocked: number; mainBlocks: boolean };
    assert.equal(got.threads, threads, what);
    assert.equal(got.unblocked, 0, `${what}: OpenMP workers that take signals`);
    assert.equal(got.mainBlocks, false, `${what}: the main thread takes signals between calls`);
    if (flood) assert.ok(got.caught > 0, `${what}: the signals reached their handler`);
  }
});
