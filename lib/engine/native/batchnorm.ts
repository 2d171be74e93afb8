/**
 * BatchNorm training as two native passes forward and two backward, instead of tfjs-layers'
 * moments + batchNorm graph (~6 full-size ops forward, ~15 backward, per layer per step).
 *
 * Installed by `initNative()`: tfjs-layers' `BatchNormalization.call` is wrapped so that, while the
 * "native" backend is active and the layer normalises the last axis of a float32 input in
 * training mode, it runs the fused path below; every other case runs tfjs-layers' own code.
 * Semantics match tfjs-layers: biased batch variance, moving averages updated with `momentum`.
 */
import * as tf from "../tf";
import { loadAddon } from "./addon";
import type { NativeBackend } from "./pool";

interface LayerVar { read(): tf.Tensor; write(t: tf.Tensor): void }
interface BnLayer {
  axis: number;
  epsilon: number;
  momentum: number;
  gamma: LayerVar | null;
  beta: LayerVar | null;
  movingMean: LayerVar;
  movingVariance: LayerVar;
}
type CallFn = (this: BnLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];

let installed = false;
/** The call `installNativeBatchNorm` put on BatchNormalization's prototype. */
let nativeCall: CallFn | undefined;

/** Whether the native fused path takes this BatchNormalization call (otherwise tfjs-layers' own code does). */
function nativeApplies(layer: BnLayer, x: tf.Tensor | undefined, kwargs: Record<string, unknown> | undefined): x is tf.Tensor {
  return kwargs?.["training"] === true && !!x && tf.getBackend() === "native" && x.dtype === "float32" && x.rank >= 2 &&
    (layer.axis === -1 || layer.axis === x.rank - 1) && !!layer.gamma && !!layer.beta && x.size > 0;
}

/** The fused training step of one layer: batch statistics, the moving averages updated, the output (ReLU'd when `relu`). */
function trainStep(layer: BnLayer, x: tf.Tensor, relu: boolean): tf.Tensor {
  return tf.tidy(() => {
    const { y, mean, variance } = batchNormTrain(x, layer.gamma!.read(), layer.beta!.read(), layer.epsilon, relu);
    for (const [mv, value] of [[layer.movingMean, mean], [layer.movingVariance, variance]] as const) {
      mv.write(movingAverage(mv.read(), value, layer.momentum));
    }
    return y;
  });
}

/** Wrap tfjs-layers' BatchNormalization training step with the native fused version (once). */
export function installNativeBatchNorm(): void {
  if (installed) return;
  const proto = Object.getPrototypeOf(tf.layers.batchNormalization({})) as { call: CallFn };
  const tfjsCall = proto.call;
  nativeCall = proto.call = function (this: BnLayer, inputs, kwargs) {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return nativeApplies(this, x, kwargs) ? trainStep(this, x, false) : tfjsCall.call(this, inputs, kwargs);
  };
  installed = true;
}

/**
 * A BatchNormalization layer's training call and the ReLU after it as one op (see `batchNormTrain`), or
 * undefined when the native path does not take this call (another engine, inference, another axis...)
 * or the layer's call is not the one `installNativeBatchNorm` installed (a hook wraps it, a subclass or a
 * later patch replaced it, tfjs's `setCallHook` watches it). The forward walk (lean-forward.ts) asks this
 * for each BatchNorm whose only reader is a plain ReLU.
 */
export function batchNormReluCall(layer: unknown, x: tf.Tensor, kwargs: Record<string, unknown> | undefined): tf.Tensor | undefined {
  const bn = layer as BnLayer & { call: CallFn; _callHook?: unknown };
  if (!nativeCall || bn.call !== nativeCall || bn._callHook != null) return undefined;
  return nativeApplies(bn, x, kwargs) ? trainStep(bn, x, true) : undefined;
}

/**
 * The layer as a BatchNormalization over the last axis of a rank-`rank` input whose call is the one
 * `installNativeBatchNorm` installed, not hooked (tfjs's `setCallHook`) or replaced; undefined otherwise.
 */
export function plainBatchNorm(layer: unknown, rank: number): BnLayer | undefined {
  const bn = layer as BnLayer & { call: CallFn; _callHook?: unknown };
  if (!nativeCall || bn.call !== nativeCall || bn._callHook != null) return undefined;
  return bn.axis === -1 || bn.axis === rank - 1 ? bn : undefined;
}

/**
 * tfjs-layers' moving average, v - (v - batchValue)·(1 - momentum), in float32 as its three ops compute
 * it (each step rounded to float32, the factor too), but in one loop over the channels: the three ops
 * cost a kernel call each, per statistic and per BatchNorm layer, about 5 ms of a ResNet-18 step.
 */
export function movingAverage(v: tf.Tensor, batchValue: tf.Tensor, momentum: number): tf.Tensor {
  const backend = tf.backend() as NativeBackend;
  const a = backend.data.get(v.dataId).values as Float32Array;
  const b = backend.data.get(batchValue.dataId).values as Float32Array;
  const k = Math.fround(1 - momentum);
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! - Math.fround(Math.fround(a[i]! - b[i]!) * k);
  return tf.tensor(out, v.shape, "float32");
}

/**
 * Normalise `x` over all axes but the last with batch statistics; differentiable in x, gamma, beta.
 * With `relu`, the output is max(0, ·) of it, computed in the same pass, and the gradient goes back
 * through that ReLU inside the BatchNorm's own backward passes (the ReLU's gradient is never written
 * out): the same numbers as the BatchNorm, then tfjs's ReLU with tsfast's ReLU gradient.
 */
export function batchNormTrain(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number, relu = false): { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const addon = loadAddon();
  const backend = tf.backend() as NativeBackend;
  const vals = (t: tf.Tensor) => backend.data.get(t.dataId).values as Float32Array;
  const C = x.shape[x.rank - 1]!;
  const meanV = new Float32Array(C), varV = new Float32Array(C);
  addon.bnStats(vals(x), meanV, varV, C);
  const invstdV = varV.map((v) => 1 / Math.sqrt(v + epsilon));
  const mean = tf.tensor1d(meanV), variance = tf.tensor1d(varV);
  const f = tf.customGrad((...args: unknown[]) => {
    const [xi, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const gv = vals(g), bv = vals(b);
    // 1. scale = gamma * invstd   2. shift = beta - mean * scale   3. y = x * scale + shift (then the ReLU)
    const scale = new Float32Array(C), shift = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      scale[c] = gv[c]! * invstdV[c]!;
      shift[c] = bv[c]! - meanV[c]! * scale[c]!;
    }
    const yv = backend.alloc(xi.size);
    addon.scaleShift(vals(xi), yv, scale, shift, C, relu);
    const value = tf.tensor(yv, xi.shape, "float32");
    // the ReLU's output decides where its gradient passes, as tsfast's ReLU gradient reads it
    save(relu ? [xi, g, value] : [xi, g]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, gs, ys] = saved as [tf.Tensor, tf.Tensor, tf.Tensor | undefined];
        const dx = backend.alloc(xs.size), dgamma = new Float32Array(C), dbeta = new Float32Array(C);
        addon.bnBackward(vals(xs), vals(dy), meanV, invstdV, vals(gs), dx, dgamma, dbeta, C, ys ? vals(ys) : undefined);
        return [tf.tensor(dx, xs.shape, "float32"), tf.tensor(dgamma, gs.shape, "float32"), tf.tensor(dbeta, gs.shape, "float32")];
      },
    };
  });
  const y = (f as unknown as (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor)(x, gamma, beta);
  return { y, mean, variance };
}
