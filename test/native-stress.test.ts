/**
 * The native engine's array pool and weight cache under random programs: seeded sequences of ops
 * that mix `tidy`, `keep`, `clone`, `dataSync`, `data()`, reshape views, contiguous-slice views,
 * variable `assign`, `dispose` and gradients, run once on the cpu backend and once on native (with
 * every recycled array poisoned with NaN), compared op by op through a fingerprint of each result
 * and, at the end, element by element.
 *
 * Every tensor has at least 16,384 floats (the pool's floor) and the filters are 3×3×64×64, so
 * arrays are recycled between ops and filters pass through the oneDNN weight cache after `assign`.
 * Tolerance: engines differ only by float32 summation order (convolutions, gradients, the
 * fingerprints' sums); elementwise ops give the same bits. We allow 1e-4 of a value's scale (at
 * least 1e-4), while a stale filter or an unwritten array is off by O(1) or NaN.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { rng } from "./helpers/learner-data";
import { maxDiff, nativeStorage, registerEngines } from "./helpers/engines";

const ACT: [number, number, number, number] = [4, 8, 8, 64]; // 16,384 floats
const FILTER: [number, number, number, number] = [3, 3, 64, 64]; // 36,864 floats

type Op =
  | { k: "conv"; a: number; f: number }
  | { k: "add" | "mul"; a: number; b: number }
  | { k: "reshape" | "clone" | "slice" | "tidyKeep" | "dataSync" | "data" | "dispose"; a: number }
  | { k: "assign"; f: number }
  | { k: "grad"; a: number; b: number; f: number };

/** A seeded program; operand indices are taken modulo the live counts when it runs. */
function program(seed: number, length: number): Op[] {
  const r = rng(seed);
  const i = () => Math.floor(r() * 1000);
  const kinds = ["conv", "conv", "add", "mul", "reshape", "clone", "slice", "tidyKeep", "dataSync", "data", "dispose", "dispose", "assign", "grad"] as const;
  return Array.from({ length }, (): Op => {
    const k = kinds[Math.floor(r() * kinds.length)]!;
    switch (k) {
      case "conv": return { k, a: i(), f: i() };
      case "add": case "mul": return { k, a: i(), b: i() };
      case "assign": return { k, f: i() };
      case "grad": return { k, a: i(), b: i(), f: i() };
      default: return { k, a: i() };
    }
  });
}

/** Values in [-1, 1) from a seed, as plain arrays so each backend builds identical tensors. */
function values(seed: number, n: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

function sumAbs(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]!);
  return s;
}

interface Trace {
  prints: number[];
  labels: string[];
  finals: Float32Array[];
}

/** Run `ops` on the current backend: a fingerprint after each op, and every live tensor at the end. */
async function run(ops: Op[], seed: number): Promise<Trace> {
  const size = ACT.reduce((a, b) => a * b, 1);
  const fsize = FILTER.reduce((a, b) => a * b, 1);
  const weights = tf.tensor(values(seed + 1, size), [size]), fweights = tf.tensor(values(seed + 2, fsize), [fsize]);
  const acts: tf.Tensor[] = [0, 1, 2].map((j) => tf.tensor(values(seed + 10 + j, size), ACT));
  const filters = [0, 1].map((j) => tf.tidy(() => tf.variable(tf.tensor(values(seed + 20 + j, fsize, 0.05), FILTER))));
  const prints: number[] = [], labels: string[] = [];
  const record = (label: string, v: number) => { prints.push(v); labels.push(label); };
  const print = (label: string, t: tf.Tensor) => {
    const fp = tf.tidy(() => tf.sum(tf.mul(tf.reshape(t, [-1]), t.size === size ? weights : fweights)));
    record(label, fp.dataSync()[0]!);
    fp.dispose();
  };
  const pick = (n: number) => acts[n % acts.length]!;
  const conv = (x: tf.Tensor, w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same");
  for (const [n, op] of ops.entries()) {
    const label = `op ${n} (${op.k})`;
    let out: tf.Tensor | undefined;
    switch (op.k) {
      case "conv": out = tf.tidy(() => tf.tanh(conv(pick(op.a), filters[op.f % 2]!))); break;
      case "add": out = tf.tidy(() => tf.tanh(tf.add(pick(op.a), pick(op.b)))); break;
      case "mul": out = tf.mul(pick(op.a), pick(op.b)); break;
      case "reshape": { // a view of the same storage, changed and viewed back
        const v = tf.reshape(pick(op.a), [4, 64, 64]);
        const w = tf.sigmoid(v);
        out = tf.reshape(w, ACT);
        v.dispose();
        w.dispose();
        break;
      }
      case "clone": out = tf.clone(pick(op.a)); break;
      case "slice": { // contiguous slices are views of the input's buffer
        const x = pick(op.a);
        out = tf.tidy(() => tf.concat([tf.slice(x, [2, 0, 0, 0], [2, 8, 8, 64]), tf.slice(x, [0, 0, 0, 0], [2, 8, 8, 64])]));
        break;
      }
      case "tidyKeep": {
        let kept: tf.Tensor | undefined;
        out = tf.tidy(() => {
          const a = tf.relu(pick(op.a));
          kept = tf.keep(tf.neg(a));
          return tf.sub(a, tf.mul(pick(op.a + 1), 0.5));
        });
        acts.push(kept!);
        break;
      }
      case "dataSync": record(label, sumAbs(pick(op.a).dataSync())); break;
      case "data": record(label, sumAbs(await pick(op.a).data() as Float32Array)); break;
      case "dispose":
        if (acts.length > 2) acts.splice(op.a % acts.length, 1)[0]!.dispose();
        break;
      case "assign": { // the Learner's pattern: a new value from ops, assigned; the old array is recycled
        const f = filters[op.f % 2]!;
        tf.tidy(() => f.assign(tf.sub(f, tf.mul(tf.tanh(tf.mul(f, 7)), 0.01))));
        print(label, f);
        break;
      }
      case "grad": {
        const f = filters[op.f % 2]!, x = pick(op.a), r = pick(op.b);
        tf.tidy(() => {
          const g = tf.grad((w: tf.Tensor) => tf.sum(tf.mul(conv(x, w), r)))(f);
          f.assign(tf.sub(f, tf.mul(tf.tanh(g), 0.01)));
        });
        print(label, f);
        break;
      }
    }
    if (out) {
      acts.push(out);
      print(label, out);
    }
  }
  const finals = [...acts, ...filters].map((t) => t.dataSync().slice() as Float32Array);
  [...acts, ...filters, weights, fweights].forEach((t) => t.dispose());
  return { prints, labels, finals };
}

let engines: string[] = [];
before(async () => {
  engines = await registerEngines();
});

for (const seed of [1, 2, 3]) {
  test(`random program ${seed} (60 ops) gives the same results op by op on native (pool on, poisoned) as on cpu`, async (t) => {
    if (!engines.includes("native")) return t.skip("the native engine is not built on this machine");
    const ops = program(seed, 60);
    await tf.setBackend("cpu");
    const before = tf.memory().numTensors;
    const want = await run(ops, seed);
    assert.equal(tf.memory().numTensors, before, "the program leaks no tensor on cpu");
    await tf.setBackend("native");
    nativeStorage().setPooling(true, { poison: true });
    const reused = nativeStorage().reused;
    let got: Trace;
    try {
      got = await run(ops, seed);
    } finally {
      nativeStorage().setPooling(true);
    }
    assert.ok(nativeStorage().reused > reused, "the program made the pool recycle arrays");
    assert.equal(got.prints.length, want.prints.length);
    got.prints.forEach((g, i) => {
      const w = want.prints[i]!;
      assert.ok(Math.abs(g - w) <= 1e-3 + 1e-4 * Math.abs(w), `${want.labels[i]}: fingerprint native ${g} vs cpu ${w}`);
    });
    got.finals.forEach((g, i) => {
      const { diff, scale } = maxDiff(g, want.finals[i]!);
      assert.ok(diff <= 1e-4 * Math.max(1, scale), `live tensor ${i} at the end: largest difference ${diff} (scale ${scale})`);
    });
  });
}
