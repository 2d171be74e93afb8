/**
 * The layers the native engine runs together with the plain ReLU that alone reads their output (the
 * forward walk in lean-forward.ts asks, see `setReluFusion`):
 *   - a BatchNormalization, in training and in inference (native/batchnorm.ts);
 *   - a two-input Add (a residual block's sum), in inference: max(0, a + b) in one pass, Add's and then
 *     Relu's bits. Only while no gradient is being recorded (the fused pass has none: Grad-CAM through
 *     a model in inference mode runs the two apart), and only for tfjs-layers' own Add call.
 */
import * as tf from "../tf";
import { loadAddon } from "./addon";
import { ADD_RELU } from "./kernels";
import { batchNormReluCall, gradientsRecorded } from "./batchnorm";
import type { NativeBackend } from "./pool";

/** tfjs-layers' Add: its call (Merge's) and its sum, as a layer has them unless something replaced them. */
const addProto = Object.getPrototypeOf(tf.layers.add({})) as { call: unknown; mergeFunction: unknown };

/** An Add layer's inference call and the ReLU after it as one native pass, or undefined to run them apart. */
export function addReluCall(layer: unknown, xs: tf.Tensor[], kwargs: Record<string, unknown> | undefined): tf.Tensor | undefined {
  const add = layer as { call: unknown; mergeFunction: unknown; _callHook?: unknown };
  if (add.call !== addProto.call || add.mergeFunction !== addProto.mergeFunction || add._callHook != null) return undefined;
  if (kwargs?.["training"] === true || gradientsRecorded() || tf.getBackend() !== "native" || xs.length !== 2) return undefined;
  const [a, b] = xs as [tf.Tensor, tf.Tensor];
  if (a.dtype !== "float32" || b.dtype !== "float32" || a.size === 0 || !tf.util.arraysEqual(a.shape, b.shape)) return undefined;
  const backend = tf.backend() as NativeBackend;
  const av = backend.data.get(a.dataId).values, bv = backend.data.get(b.dataId).values;
  if (!(av instanceof Float32Array) || !(bv instanceof Float32Array)) return undefined;
  const out = backend.alloc(a.size);
  const shape = Int32Array.from([a.size]);
  loadAddon().binary(ADD_RELU, av, bv, out, shape, shape, shape);
  return tf.tensor(out, a.shape, "float32");
}

/** The fusion `initNative` installs in the forward walk: by the layer's class, BatchNorm or Add. */
export function nativeReluFusion(layer: unknown, xs: tf.Tensor[], kwargs: Record<string, unknown> | undefined): tf.Tensor | undefined {
  const name = (layer as { getClassName(): string }).getClassName();
  if (name === "BatchNormalization") return xs.length === 1 ? batchNormReluCall(layer, xs[0]!, kwargs) : undefined;
  if (name === "Add") return addReluCall(layer, xs, kwargs);
  return undefined;
}
