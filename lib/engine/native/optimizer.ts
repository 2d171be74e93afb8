/**
 * Adam / AdamW as one native pass over each parameter (the op-by-op tfjs Adam makes ~12 full
 * passes and as many temporary tensors per parameter per step).
 */
import * as tf from "../tf";
import { loadAddon, renewToken } from "./addon";
import type { NativeBackend } from "./pool";

/**
 * Where the Adam kernel reads a variable and writes its new value. Storage the variable owns alone
 * (one reference, no view, never read out) is updated in place and its weight token renewed (see
 * pool.ts). Anything else — a training guard's snapshot, a still-alive initial value, a slice that
 * views it, an array a user got from dataSync — is read where it is and the new value written to a
 * fresh array, which then becomes the variable's value: the kernel does both in one pass, as cheap
 * as in place (a copy first would read and write everything once more, and reading the old array out
 * with `readSync` would keep the pool from ever recycling it).
 */
function adamTarget(backend: NativeBackend, t: tf.Variable): { src: Float32Array; out: Float32Array | null; commit: () => void } {
  const d = backend.data.get(t.dataId);
  const vals = d.values;
  if (d.refCount === 1 && backend.isExclusive(vals)) return { src: vals, out: null, commit: () => renewToken(vals) };
  const src = vals instanceof Float32Array ? vals : Float32Array.from(backend.readSync(t.dataId) as ArrayLike<number>);
  if (src.length !== t.size) throw new Error(`Adam: the storage of ${t.name} holds ${src.length} values, its shape [${t.shape}] ${t.size}`);
  const out = backend.alloc(t.size);
  return { src, out, commit: () => t.assign(tf.tensor(out, t.shape, "float32")) };
}

/** One fused AdamW pass over `p`, `m`, `v` with gradient values `g` (in place or into fresh arrays, see `adamTarget`). */
function runAdam(backend: NativeBackend, p: tf.Variable, m: tf.Variable, v: tf.Variable, g: Float32Array, h: Float64Array): void {
  if (g.length !== p.size || m.size !== p.size || v.size !== p.size) {
    throw new Error(`Adam: ${p.name} has ${p.size} values but its gradient ${g.length} and moments ${m.size}, ${v.size}`);
  }
  const w = adamTarget(backend, p), ms = adamTarget(backend, m), vs = adamTarget(backend, v);
  loadAddon().adam(w.src, ms.src, vs.src, g, h, w.out, ms.out, vs.out);
  tf.tidy(() => [w, ms, vs].forEach((s) => s.commit()));
}

/**
 * fastai's Adam step with decoupled weight decay for one parameter in one native pass, on the
 * "native" backend: p ← p·(1 − lr·wd) − lr/(1 − mom^t) · m / (√(v/(1 − sqrMom^t)) + eps), after
 * m ← mom·m + (1 − mom)·g and v ← sqrMom·v + (1 − sqrMom)·g² (`m`, `v` updated too). Returns false,
 * doing nothing, when the backend is another or a tensor is not float32 (the caller goes op by op).
 */
export function nativeAdamStep(
  p: tf.Variable,
  m: tf.Variable,
  v: tf.Variable,
  g: tf.Tensor,
  h: { lr: number; mom: number; sqrMom: number; eps: number; wd: number; step: number },
): boolean {
  if (tf.getBackend() !== "native" || [p, m, v, g].some((t) => t.dtype !== "float32")) return false;
  const backend = tf.backend() as NativeBackend;
  if (!(backend.data.get(g.dataId).values instanceof Float32Array)) return false;
  const hs = Float64Array.from([h.lr, h.mom, h.sqrMom, h.eps, 1 - Math.pow(h.mom, h.step), 1 - Math.pow(h.sqrMom, h.step), h.wd]);
  runAdam(backend, p, m, v, backend.data.get(g.dataId).values as Float32Array, hs);
  return true;
}

interface AdamState {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  incrementIterations(): void;
}

type Grads = Parameters<tf.AdamOptimizer["applyGradients"]>[0];

/** tfjs's own `AdamOptimizer.applyGradients`, op by op (kept before `installNativeAdam` replaces it). */
const tfjsApplyGradients = tf.AdamOptimizer.prototype.applyGradients;

/** The (variable name, gradient) pairs of `applyGradients`'s argument, in its order. */
function gradPairs(variableGradients: Grads): (readonly [string, tf.Tensor | undefined])[] {
  return Array.isArray(variableGradients)
    ? variableGradients.map((v) => [v.name, v.tensor] as const)
    : Object.entries(variableGradients as tf.NamedTensorMap);
}

/**
 * A `tf.AdamOptimizer`'s step as one native pass per variable, with decoupled weight decay `wd`
 * (0: tfjs's Adam), on the "native" backend: the same update, in the same order, as tfjs's op-by-op
 * Adam up to float rounding, with the same state (its moments and accBeta variables), so
 * `getWeights`/`setWeights` and a later step on another backend carry on from it. Returns false,
 * doing nothing, on another backend or when a variable or gradient is not float32.
 */
function nativeAdamApply(opt: tf.AdamOptimizer, variableGradients: Grads, wd: number): boolean {
  const pairs = gradPairs(variableGradients);
  const allF32 = pairs.every(([name, g]) => tf.engine().registeredVariables[name]?.dtype === "float32" && (!g || g.dtype === "float32"));
  if (tf.getBackend() !== "native" || !allF32) return false;
  const backend = tf.backend() as NativeBackend;
  if (!pairs.every(([, g]) => !g || backend.data.get(g.dataId)?.values instanceof Float32Array)) return false;
  const st = opt as unknown as AdamState;
  const c1 = 1 - (st.accBeta1.dataSync()[0] ?? 0);
  const c2 = 1 - (st.accBeta2.dataSync()[0] ?? 0);
  const h = Float64Array.from([st.learningRate, st.beta1, st.beta2, st.epsilon, c1, c2, wd]);
  pairs.forEach(([name, grad], i) => {
    const value = tf.engine().registeredVariables[name]!;
    st.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
    st.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
    if (!grad) return;
    runAdam(backend, value, st.accumulatedFirstMoment[i]!.variable, st.accumulatedSecondMoment[i]!.variable, backend.data.get(grad.dataId).values as Float32Array, h);
  });
  tf.tidy(() => {
    st.accBeta1.assign(tf.mul(st.accBeta1, st.beta1));
    st.accBeta2.assign(tf.mul(st.accBeta2, st.beta2));
  });
  st.incrementIterations();
  return true;
}

let adamInstalled = false;

/**
 * Make every `tf.AdamOptimizer` (what `tf.train.adam` returns, so what a user's
 * `model.compile({ optimizer: tf.train.adam(lr) })` + `fit`/`trainOnBatch` steps with) take the
 * native pass above while the "native" backend is active; elsewhere it stays tfjs's own. Installed by
 * `initNative()`. tfjs's op-by-op Adam makes ~12 full passes and as many temporary tensors per
 * variable per step.
 */
export function installNativeAdam(): void {
  if (adamInstalled) return;
  tf.AdamOptimizer.prototype.applyGradients = function (this: tf.AdamOptimizer, variableGradients: Grads): void {
    if (!nativeAdamApply(this, variableGradients, 0)) tfjsApplyGradients.call(this, variableGradients);
  };
  adamInstalled = true;
}

/**
 * `tf.AdamOptimizer` with optional decoupled weight decay (AdamW), whose step runs natively on the
 * "native" backend (see `nativeAdamApply`). On any other backend it takes tfjs's own path (plus the
 * decay step when `weightDecay` is set).
 */
export class NativeAdamOptimizer extends tf.AdamOptimizer {
  /** Decoupled weight decay (AdamW): `w -= lr * weightDecay * w` each step; default 0 (plain Adam). */
  weightDecay: number;

  constructor(learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7, weightDecay = 0) {
    super(learningRate, beta1, beta2, epsilon);
    this.weightDecay = weightDecay;
  }

  override applyGradients(variableGradients: Grads): void {
    if (nativeAdamApply(this, variableGradients, this.weightDecay)) return;
    if (this.weightDecay !== 0) this.decayOpByOp(gradPairs(variableGradients));
    tfjsApplyGradients.call(this, variableGradients);
  }

  private decayOpByOp(pairs: readonly (readonly [string, tf.Tensor | undefined])[]): void {
    tf.tidy(() => {
      for (const [name, grad] of pairs) {
        if (!grad) continue;
        const value = tf.engine().registeredVariables[name]!;
        value.assign(tf.mul(value, 1 - this.learningRate * this.weightDecay));
      }
    });
  }
}
