/**
 * Adam / AdamW as one native pass over each parameter (the op-by-op tfjs Adam makes ~12 full
 * passes and as many temporary tensors per parameter per step).
 */
import * as tf from "../tf";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { loadAddon, renewToken } from "./addon";

interface AdamState {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
}

/**
 * `tf.AdamOptimizer` whose step runs natively on the "native" backend (bit-for-bit the same update
 * order as tfjs's Adam up to float rounding), with optional decoupled weight decay (AdamW).
 * On any other backend, or when a tensor's storage is shared, it takes tfjs's own path.
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
    if (tf.getBackend() !== "native" || (this.weightDecay === 0 && !this.allInPlace(pairs, true))) {
      if (this.weightDecay !== 0 && tf.getBackend() !== "native") this.decayOpByOp(pairs);
      super.applyGradients(variableGradients);
      return;
    }
    const st = this as unknown as AdamState;
    const backend = tf.backend() as MathBackendCPU;
    const vals = (t: tf.Tensor) => backend.data.get(t.dataId).values as Float32Array;
    pairs.forEach(([name], i) => {
      const value = tf.engine().registeredVariables[name]!;
      st.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      st.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
    });
    if (!this.allInPlace(pairs, false)) {
      throw new Error("NativeAdamOptimizer: a parameter's storage is shared; cannot update it in place");
    }
    const addon = loadAddon();
    const c1 = 1 - (st.accBeta1.dataSync()[0] ?? 0);
    const c2 = 1 - (st.accBeta2.dataSync()[0] ?? 0);
    const h = Float64Array.from([this.learningRate, this.beta1, this.beta2, this.epsilon, c1, c2, this.weightDecay]);
    pairs.forEach(([name, grad], i) => {
      if (!grad) return;
      const value = tf.engine().registeredVariables[name]!;
      const m = st.accumulatedFirstMoment[i]!.variable, v = st.accumulatedSecondMoment[i]!.variable;
      const w = vals(value);
      addon.adam(w, vals(m), vals(v), vals(grad), h);
      renewToken(w);
    });
    tf.tidy(() => {
      st.accBeta1.assign(tf.mul(st.accBeta1, this.beta1));
      st.accBeta2.assign(tf.mul(st.accBeta2, this.beta2));
    });
    this.incrementIterations();
  }

  /** True when every parameter (and, once created, its moments) owns its float32 storage alone. */
  private allInPlace(pairs: readonly (readonly [string, tf.Tensor | undefined])[], checkMomentsMayBeMissing: boolean): boolean {
    const backend = tf.backend() as MathBackendCPU;
    const st = this as unknown as AdamState;
    const own = (t: tf.Tensor) => {
      const d = backend.data.get(t.dataId);
      return t.dtype === "float32" && d.values instanceof Float32Array && d.refCount === 1;
    };
    return pairs.every(([name, grad], i) => {
      const value = tf.engine().registeredVariables[name];
      if (!value || !own(value) || (grad && grad.dtype !== "float32")) return false;
      const m = st.accumulatedFirstMoment[i]?.variable, v = st.accumulatedSecondMoment[i]?.variable;
      if (!m || !v) return checkMomentsMayBeMissing;
      return own(m) && own(v);
    });
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
