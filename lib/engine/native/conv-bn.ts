/**
 * A convolution, the BatchNormalization that alone reads it and, when one alone reads that, the plain
 * ReLU after it, as one oneDNN convolution in inference (issue 19: inference ≥ 1.1× PyTorch); or, in a
 * residual block, the convolution, its BatchNorm, the Add that alone reads that and the ReLU after the Add.
 *
 * In inference a BatchNorm is a per-channel affine map, y = x·a + c with a = γ/√(var + ε) and
 * c = β − mean·a, so conv(x, w)·a + c = conv(x, w·a) + c: the convolution runs on its weights times a
 * per output channel, with c (plus its own bias times a) as its bias and the ReLU as oneDNN's post-op,
 * as `fuseBatchNorm(model)` folds a copy. Here the model's weights are never touched: a and c are computed
 * from the layer's statistics at each call (C values), and the native convolution makes w·a in the same
 * reorder that puts the weights into oneDNN's layout, keeping that copy for the next call only while both
 * the weights (their array's token, renewed on every write) and a (compared value by value) are the same.
 *
 * Taken only where every layer's own call would compute the same thing up to rounding: the native
 * engine; not in training; while no gradient is being recorded (Grad-CAM through a model in inference
 * mode runs the layers apart: this pass has no gradient); a float32 NHWC input; a convolution whose call
 * is a registered plain one (conv-layers.ts) and a BatchNorm whose call is the one `installNativeBatchNorm`
 * installed, over the last axis, neither hooked. Anything else returns undefined and the walk runs the
 * layers one by one. `TSFAST_FUSE_CONV_BN=0` turns it off.
 */
import * as tf from "../tf";
import { loadAddon, renewToken, weightToken } from "./addon";
import { plainBatchNorm } from "./batchnorm";
import { convInfo, convParams } from "./kernels";
import { plainConvPad, type ConvLayerLike } from "../conv-layers";
import type { Residual } from "../lean-forward";
import type { NativeBackend } from "./pool";

/** Whether tfjs is recording operations for a gradient right now (`tf.grad`, `variableGrads`, a custom gradient's forward). */
export function gradientsRecorded(): boolean {
  return (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;
}

/**
 * The per-channel scale a and shift c of a BatchNorm in inference, y = x·a + c, with a convolution's
 * bias b folded in: a = γ/√(var + ε), c = β − mean·a + b·a, each computed in doubles from the float32
 * values and stored as float32. A missing γ is 1, β and b 0. Undefined when an array has another length.
 */
export function bnScaleShift(C: number, mean: Float32Array, variance: Float32Array, beta: Float32Array | undefined, gamma: Float32Array | undefined, eps: number, bias?: Float32Array): { a: Float32Array; c: Float32Array } | undefined {
  if (mean.length !== C || variance.length !== C || (beta && beta.length !== C) || (gamma && gamma.length !== C) || (bias && bias.length !== C)) return undefined;
  const a = new Float32Array(C), c = new Float32Array(C);
  for (let i = 0; i < C; i++) {
    const s = (gamma ? gamma[i]! : 1) / Math.sqrt(variance[i]! + eps);
    a[i] = s;
    c[i] = (beta ? beta[i]! : 0) - mean[i]! * s + (bias ? bias[i]! * s : 0);
  }
  return { a, c };
}

/**
 * A number naming the layer's kernel variable for its life (tfjs's variable id, never reused): the native
 * convolution keeps one scaled copy per such owner, replacing it when the weights or the scale change.
 */
function kernelOwner(l: ConvLayerLike): number {
  return (l.kernel as unknown as { id: number }).id + 1;
}

/** tfjs-layers' Add: its call (Merge's) and its sum, as a layer has them unless something replaced them. */
const addProto = Object.getPrototypeOf(tf.layers.add({})) as { call: unknown; mergeFunction: unknown };

/**
 * Whether the residual Add can run inside the convolution: tfjs-layers' own Add call, not hooked, and the
 * other input a float32 array of the output's shape that nothing else can see. Its storage's reference
 * count is 1 (not a reshape's or a clone's, not a hook's kept copy), and the native storage calls the
 * array exclusive (pool.ts: made by the engine, the only array on its buffer, never read out with
 * `dataSync`/`data`, no view of it stored). So writing the sum into it changes nothing anyone else holds
 * (the walk has checked that no layer reads it after the Add), and `x` cannot lie on the same memory.
 */
function residualFits(r: Residual, shape: number[], backend: NativeBackend): boolean {
  const add = r.add as { call: unknown; mergeFunction: unknown; _callHook?: unknown; activityRegularizer?: unknown };
  if (add.call !== addProto.call || add.mergeFunction !== addProto.mergeFunction || add._callHook != null || add.activityRegularizer != null) return false;
  const t = r.into;
  if (t.dtype !== "float32" || !tf.util.arraysEqual(t.shape, shape)) return false;
  const data = backend.data.get(t.dataId) as { values?: tf.backend_util.BackendValues; refCount?: number } | undefined;
  return data?.refCount === 1 && backend.isExclusive(data.values);
}

/**
 * The output of `conv` then `bn` (then a ReLU when `relu`) on `x` in inference as one native convolution,
 * or undefined to run the layers apart (see the module's comment for when). With `residual` (the Add that
 * alone reads the BatchNorm, see lean-forward.ts) the Add (and its ReLU) too where `residualFits`: oneDNN
 * adds the other input's values in place (its sum post-op) and `residual.into` itself is returned.
 */
export function convBnCall(conv: unknown, bn: unknown, x: tf.Tensor, relu: boolean, kwargs: Record<string, unknown> | undefined, residual?: Residual): tf.Tensor | undefined {
  if (kwargs?.["training"] === true || gradientsRecorded() || tf.getBackend() !== "native" || x.dtype !== "float32" || x.rank !== 4 || x.size === 0) return undefined;
  const pad = plainConvPad(conv);
  const norm = plainBatchNorm(bn, 4);
  if (pad === undefined || !norm) return undefined;
  const cl = conv as ConvLayerLike;
  // tfjs's conv2d refuses strides and dilations both above 1; a layer's activity regularizer is refused in apply
  if (cl.strides.some((v) => v > 1) && cl.dilationRate.some((v) => v > 1)) return undefined;
  if ((conv as { activityRegularizer?: unknown }).activityRegularizer != null || (bn as { activityRegularizer?: unknown }).activityRegularizer != null) return undefined;
  const backend = tf.backend() as NativeBackend;
  const vals = (t: tf.Tensor | undefined) => (t ? backend.data.get(t.dataId).values : undefined);
  const kernel = cl.kernel!.read();
  if (kernel.rank !== 4 || kernel.dtype !== "float32") return undefined;
  const arrays = [x, kernel, cl.bias?.read(), norm.movingMean.read(), norm.movingVariance.read(), norm.beta?.read(), norm.gamma?.read()].map(vals);
  if (!arrays.every((v) => v === undefined || v instanceof Float32Array)) return undefined;
  const [xv, wv, bv, mv, vv, betav, gv] = arrays as (Float32Array | undefined)[];
  const ci = convInfo(x.shape, kernel.shape, { strides: cl.strides, pad, dilations: cl.dilationRate }, false);
  const p = convParams(ci, 1);
  if (!p || ci.inChannels !== x.shape[3]) return undefined;
  const f = bnScaleShift(ci.outChannels, mv!, vv!, betav, gv, norm.epsilon, bv);
  if (!f) return undefined;
  if (residual && residualFits(residual, ci.outShape, backend)) {
    const into = backend.data.get(residual.into.dataId).values as Float32Array;
    loadAddon().conv2d(xv!, wv!, f.c, into, p, residual.relu ? 1 : 0, weightToken(wv!), f.a, true, kernelOwner(cl));
    renewToken(into); // written in place (addon.ts): no reorder cached for its old contents may serve the new
    return residual.into;
  }
  const y = backend.alloc(ci.outShape.reduce((s, d) => s * d, 1));
  loadAddon().conv2d(xv!, wv!, f.c, y, p, relu ? 1 : 0, weightToken(wv!), f.a, false, kernelOwner(cl));
  return tf.tensor(y, ci.outShape, "float32");
}
