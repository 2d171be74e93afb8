/**
 * lib/engine/backprop.ts: the backward pass disposes each op's saved tensors and output gradients
 * once used, and the gradients stay exactly what they were.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { earlyReleaseInstalled } from "../lib/engine/backprop";

/** `pattern` repeated to 3 × 2¹⁴ values: above the size from which ops are released early (RELEASE_MIN_SIZE). */
const N = 3 * (1 << 14);
const big = (pattern: number[]) => tf.tensor1d(Array.from({ length: N }, (_, i) => pattern[i % pattern.length]!));
/** Whether every value of `t` is `pattern` repeated. */
function isPattern(t: tf.Tensor, pattern: number[]): boolean {
  const v = t.dataSync();
  return v.length === N && v.every((x, i) => x === pattern[i % pattern.length]);
}

type Custom = (...args: unknown[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] };
const custom = (f: Custom) => tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...xs: tf.Tensor[]) => tf.Tensor;

before(async () => {
  await ready(); // installs the early release, whichever engine runs
  assert.ok(earlyReleaseInstalled());
});

/** An op y = k·x whose gradient reports, when it runs, whether `watch()`'s tensor is disposed yet. */
function scaled(k: number, seen: boolean[], watch: () => tf.Tensor | undefined, keep: (t: tf.Tensor) => void) {
  return custom((...args) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const s = tf.mul(x, 1); // a saved forward tensor, as an activation
    save([s]);
    return {
      value: tf.mul(x, k),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        keep(saved[0]!);
        const w = watch();
        if (w) seen.push(w.isDisposed);
        return tf.mul(dy, k);
      },
    };
  });
}

test("an op's saved tensors are gone by the time an earlier op's gradient runs; the gradient is unchanged", () => {
  const seen: boolean[] = [];
  const kept: tf.Tensor[] = [];
  // walk order: f3's gradient, then f2's, then f1's; f1 and f2 look at f3's saved tensor
  const f3 = scaled(5, seen, () => undefined, (t) => kept.push(t));
  const f2 = scaled(3, seen, () => kept[0], () => {});
  const f1 = scaled(2, seen, () => kept[0], () => {});
  const x = big([1, -2, 0.5]);
  const g = tf.grad((v: tf.Tensor) => tf.sum(f3(f2(f1(v)))))(x);
  // d/dx sum(30 x) = 30 for every element
  assert.ok(isPattern(g, [30]));
  // disposed when the walk reaches f2 (tfjs has stored f3's input gradient by then); before, they
  // lived to the end of the backward pass: [false, false]
  assert.deepEqual(seen, [true, true]);
  tf.dispose([g, x]);
});

test("a gradient handed on unchanged, handed to two inputs, or that is a saved tensor, is not disposed early", () => {
  // straight-through: the gradient of round() taken as the identity, returning dy itself
  const ste = custom((x) => ({ value: tf.round(x as tf.Tensor), gradFunc: (dy) => dy }));
  const x = big([0.25, 1.75, -3]);
  const g1 = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(ste(ste(v)), 3)))(x);
  assert.ok(isPattern(g1, [3]));
  // one dy object returned for both inputs, both fed by x: d/dx (2x + 3x) = 5
  const twin = custom((a, b) => ({ value: tf.add(a as tf.Tensor, b as tf.Tensor), gradFunc: (dy) => [dy, dy] }));
  const g2 = tf.grad((v: tf.Tensor) => tf.sum(twin(tf.mul(v, 2), tf.mul(v, 3))))(x);
  assert.ok(isPattern(g2, [5]));
  // a gradient that is the op's saved tensor itself: d/dx sum(x²/2) = x, through a multiply by 1 first
  const half = custom((...args) => {
    const [v, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([v]);
    return { value: tf.mul(tf.square(v), 0.5), gradFunc: (_dy, saved) => saved[0]! }; // dy is 1 here
  });
  const g3 = tf.grad((v: tf.Tensor) => tf.sum(half(tf.mul(v, 1))))(x);
  assert.ok(isPattern(g3, [0.25, 1.75, -3]));
  tf.dispose([x, g1, g2, g3]);
});

test("the caller's dy survives, and second derivatives are still right", () => {
  const x = big([1, 2, -1]);
  const dy = big([1, 10, 100]);
  const g = tf.grad((v: tf.Tensor) => tf.mul(tf.relu(v), 4))(x, dy);
  assert.ok(isPattern(g, [4, 40, 0]));
  assert.equal(dy.isDisposed, false);
  assert.ok(isPattern(dy, [1, 10, 100]));
  // d²/dx² x³ = 6x
  const g2 = tf.grad(tf.grad((v: tf.Tensor) => tf.pow(v, 3)))(x);
  assert.ok(isPattern(g2, [6, 12, -6]));
  tf.dispose([x, dy, g, g2]);
});

test("no tensor leaks from a training step's gradients", () => {
  const w = tf.variable(tf.tensor2d([[0.5, -1], [2, 0.25]]));
  const x = tf.tensor2d([[1, 2], [3, 4]]);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(tf.relu(tf.matMul(x, w)))));
    tf.dispose([value, ...Object.values(grads)]);
  }
  assert.equal(tf.memory().numTensors, before);
  // d/dW sum(relu(xW)²) = xᵀ (2·relu(xW) ⊙ [xW > 0]); xW = [[4.5, -0.5], [9.5, -2]]
  const { grads } = tf.variableGrads(() => tf.sum(tf.square(tf.relu(tf.matMul(x, w)))));
  assert.deepEqual(Array.from(grads[w.name]!.dataSync()), [1 * 9 + 3 * 19, 0, 2 * 9 + 4 * 19, 0]);
  tf.dispose([w, x, ...Object.values(grads)]);
  // the same at a size whose ops are released early, against the formula computed without tf.grad
  const wb = tf.variable(tf.randomNormal([128, 128], 0, 1, "float32", 1));
  const xb = tf.randomNormal([128, 128], 0, 1, "float32", 2);
  const n0 = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    const { value, grads: gs } = tf.variableGrads(() => tf.sum(tf.square(tf.relu(tf.matMul(xb, wb)))));
    tf.dispose([value, ...Object.values(gs)]);
  }
  assert.equal(tf.memory().numTensors, n0);
  const { value, grads: gb } = tf.variableGrads(() => tf.sum(tf.square(tf.relu(tf.matMul(xb, wb)))));
  const want = tf.tidy(() => tf.matMul(xb, tf.mul(tf.relu(tf.matMul(xb, wb)), 2), true, false));
  const got = gb[wb.name]!.dataSync(), ref = want.dataSync();
  assert.ok(got.every((v, i) => Math.abs(v - ref[i]!) <= 1e-3 * (1 + Math.abs(ref[i]!))));
  tf.dispose([wb, xb, value, want, ...Object.values(gb)]);
});

test("a same-shape Add keeps neither input for the backward pass; a broadcasting Add keeps tfjs's gradient", () => {
  const storage = () => (tf.backend() as unknown as { data: { has(id: object): boolean } }).data;
  let aId: object | undefined;
  const alive: boolean[] = [];
  const probe = custom((v) => ({
    value: tf.mul(v as tf.Tensor, 1),
    gradFunc: (dy) => {
      alive.push(storage().has(aId!));
      return tf.mul(dy, 1);
    },
  }));
  const x = big([1, 2, 3]);
  const b = big([10, 20, 30]);
  const g = tf.grad((v: tf.Tensor) => {
    const a = tf.mul(v, 2); // only the Add reads it
    aId = a.dataId;
    return tf.sum(probe(tf.add(a, b)));
  })(x);
  assert.ok(isPattern(g, [2]));
  assert.deepEqual(alive, [false]); // tfjs's Add kept it until the backward pass ended: [true]
  // broadcast: d/dp sum((p + q) ⊙ w) = w, d/dq = w's column sums
  const p = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
  const q = tf.tensor1d([0.5, -1, 2]);
  const w = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
  const [dp, dq] = tf.grads((pp: tf.Tensor, qq: tf.Tensor) => tf.sum(tf.mul(tf.add(pp, qq), w)))([p, q]);
  assert.deepEqual(Array.from(dp!.dataSync()), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(dq!.dataSync()), [5, 7, 9]);
  tf.dispose([x, b, g, p, q, w, dp!, dq!]);
});
