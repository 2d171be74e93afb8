/**
 * The embedding kernels on every engine (gather, its gradient through UnsortedSegmentSum, the
 * identity transpose the gradient makes) against the cpu backend, and the native engine's fused
 * Adam step against the op-by-op steppers.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { Adam } from "../lib/learner/optimizer";
import { maxDiff, registerEngines } from "./helpers/engines";

let engines: string[] = [];
before(async () => {
  engines = await registerEngines();
});

/** Forward and gradient of an embedding lookup with repeated indices, on `backend`. */
async function lookup(backend: string): Promise<{ out: Float32Array; grad: Float32Array; perm: Float32Array }> {
  await tf.setBackend(backend);
  const table = tf.tensor2d(Array.from({ length: 7 * 3 }, (_, i) => Math.sin(i)), [7, 3]);
  const idx = tf.tensor1d([4, 0, 4, 6, 2, 4], "int32");
  const up = tf.tensor2d(Array.from({ length: 6 * 3 }, (_, i) => Math.cos(i)), [6, 3]);
  const f = (t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), up));
  const grad = tf.grad(f)(table);
  const out = tf.gather(table, idx);
  const perm = tf.transpose(table, [0, 1]);
  const res = { out: out.dataSync() as Float32Array, grad: grad.dataSync() as Float32Array, perm: perm.dataSync() as Float32Array };
  tf.dispose([table, idx, up, grad, out, perm]);
  return res;
}

test("gather, its gradient (rows of repeated indices summed) and the identity transpose agree on every engine", async () => {
  const ref = await lookup("cpu");
  // by hand: row 4 of the gradient = up rows 0 + 2 + 5; rows 1, 3, 5 get nothing
  for (let k = 0; k < 3; k++) {
    assert.ok(Math.abs(ref.grad[4 * 3 + k]! - (Math.cos(k) + Math.cos(6 + k) + Math.cos(15 + k))) < 1e-6);
    assert.equal(ref.grad[1 * 3 + k], 0);
  }
  for (const e of engines.filter((n) => n !== "cpu")) {
    const got = await lookup(e);
    for (const key of ["out", "grad", "perm"] as const) assert.ok(maxDiff(got[key], ref[key]).diff < 1e-6, `${e} ${key}`);
  }
  await tf.setBackend("cpu");
});

/** Three Adam steps (decoupled wd on the first parameter only) on `backend`; the parameters after. */
async function adamSteps(backend: string): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const a = tf.variable(tf.tensor2d(Array.from({ length: 40 }, (_, i) => Math.sin(i)), [8, 5]));
  const b = tf.variable(tf.tensor1d([0.5, -0.25, 1]));
  const opt = Adam([{ variable: a, doWd: true }, { variable: b, doWd: false }], { lr: 0.01, wd: 0.1 });
  for (let s = 0; s < 3; s++) {
    const ga = tf.tensor2d(Array.from({ length: 40 }, (_, i) => Math.cos(i * (s + 1))), [8, 5]);
    const gb = tf.tensor1d([s, -1, 0.5 * s]);
    opt.setHyper("mom", 0.9 - 0.02 * s);
    opt.step(new Map<tf.Variable, tf.Tensor>([[a, ga], [b, gb]]));
    tf.dispose([ga, gb]);
  }
  const out = [a.dataSync() as Float32Array, b.dataSync() as Float32Array].map((x) => Float32Array.from(x));
  const st = opt.stateDict();
  assert.equal(st.params[0]!.step, 3);
  assert.deepEqual(Object.keys(st.params[0]!.tensors).sort(), ["gradAvg", "sqrAvg"]);
  for (const p of st.params) Object.values(p.tensors).forEach((t) => t.dispose());
  opt.dispose();
  tf.dispose([a, b]);
  return out;
}

test("Adam on the native engine (one fused pass) equals the op-by-op steppers, with and without weight decay", async (t) => {
  if (!engines.includes("native")) return t.skip("the native engine is not built here");
  const ref = await adamSteps("cpu");
  const got = await adamSteps("native");
  ref.forEach((r, i) => assert.ok(maxDiff(got[i]!, r).diff < 1e-6, `parameter ${i}: ${maxDiff(got[i]!, r).diff}`));
  await tf.setBackend("cpu");
});
