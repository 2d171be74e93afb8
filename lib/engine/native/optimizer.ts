/**
 * Adam / AdamW as one native pass over each parameter (the op-by-op tfjs Adam makes ~12 full
 * passes and as many temporary tensors per parameter per step).
 */
import * as tf from "../tf";
import { loadAddon, renewToken } from "./addon";
import type { NativeBackend } from "./pool";

/**
 * A variable's storage to update in place: storage the variable owns alone (one reference, no view,
 * never read out) is updated in place and its weight token renewed (see pool.ts). Anything else — a
 * still-alive initial value, a slice that views it, an array a user got from dataSync — is copied,
 * updated and assigned.
 */
function writableArray(backend: NativeBackend, t: tf.Variable): { arr: Float32Array; commit: () => void } {
  const d = backend.data.get(t.dataId);
  const vals = d.values as Float32Array;
  if (d.refCount === 1 && backend.isExclusive(vals)) return { arr: vals, commit: () => renewToken(vals) };
  const copy = backend.alloc(t.size);
  copy.set(backend.readSync(t.dataId) as Float32Array);
  return { arr: copy, commit: () => t.assign(tf.tensor(copy, t.shape, "float32")) };
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
  const w = writableArray(backend, p), ms = writableArray(backend, m), vs = writableArray(backend, v);
  loadAddon().adam(w.arr, ms.arr, vs.arr, backend.data.get(g.dataId).values as Float32Array, hs);
  tf.tidy(() => [w, ms, vs].forEach((s) => s.commit()));
  return true;
}

interface AdamState {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
}

/**
 * `tf.AdamOptimizer` whose step runs natively on the "native" backend (bit-for-bit the same update
 * order as tfjs's Adam up to float rounding), with optional decoupled weight decay (AdamW).
 * On any other backend it takes tfjs's own path (plus the decay step when `weightDecay` is set).
 */
export class NativeAdamOptimizer extends tf.AdamOptimizer {
  /** Decoupled weight decay (AdamW): `w -= lr * weightDecay * w` each step; default 0 (plain Adam). */
  weightDecay: number;

  constructor(learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7, weightDecay = 0) {
    super(learningRate, beta1, beta2, epsilon);
    this.weightDecay = weightDecay;
  }

  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer["applyGradients"]>[0]): void {
    const pairs = Array.isArray(variableGradients)
      ? variableGradients.map((v) => [v.name, v.tensor] as const)
      : Object.entries(variableGradients as tf.NamedTensorMap);
    const allF32 = pairs.every(([name, g]) => tf.engine().registeredVariables[name]?.dtype === "float32" && (!g || g.dtype === "float32"));
    if (tf.getBackend() !== "native" || !allF32) {
      if (this.weightDecay !== 0) this.decayOpByOp(pairs);
      super.applyGradients(variableGradients);
      return;
    }
    const st = this as unknown as AdamState;
    const backend = tf.backend() as NativeBackend;
    const addon = loadAddon();
    const c1 = 1 - (st.accBeta1.dataSync()[0] ?? 0);
    const c2 = 1 - (st.accBeta2.dataSync()[0] ?? 0);
    const h = Float64Array.from([this.learningRate, this.beta1, this.beta2, this.epsilon, c1, c2, this.weightDecay]);
    const writable = (t: tf.Variable) => writableArray(backend, t);
    pairs.forEach(([name, grad], i) => {
      const value = tf.engine().registeredVariables[name]!;
      st.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      st.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      if (!grad) return;
      const w = writable(value), m = writable(st.accumulatedFirstMoment[i]!.variable), v = writable(st.accumulatedSecondMoment[i]!.variable);
      addon.adam(w.arr, m.arr, v.arr, backend.data.get(grad.dataId).values as Float32Array, h);
      tf.tidy(() => [w, m, v].forEach((s) => s.commit()));
    });
    tf.tidy(() => {
      st.accBeta1.assign(tf.mul(st.accBeta1, this.beta1));
      st.accBeta2.assign(tf.mul(st.accBeta2, this.beta2));
    });
    this.incrementIterations();
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
