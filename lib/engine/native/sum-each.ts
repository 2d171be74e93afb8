/**
 * The sum of many tensors' elements in one native call (the training guard's finiteness check
 * of every gradient: one sum kernel per parameter, then addN, cost ResNet-18 ~8 ms a step).
 */
import * as tf from "../tf";
import { loadAddon } from "./addon";
import type { NativeBackend } from "./pool";

/**
 * Σ of every element of `ts` on the "native" backend: each tensor summed in double and rounded to
 * float32, the sums added in float32 (as tfjs's `sum` of each then `addN`), so NaN and infinities
 * show through the same way. Undefined, doing nothing, on another backend or for a non-float32 tensor.
 */
export function nativeSumEach(ts: tf.Tensor[]): number | undefined {
  if (tf.getBackend() !== "native" || ts.some((t) => t.dtype !== "float32")) return undefined;
  const backend = tf.backend() as NativeBackend;
  const arrays = ts.map((t) => backend.data.get(t.dataId)?.values);
  if (!arrays.every((a): a is Float32Array => a instanceof Float32Array)) return undefined;
  return loadAddon().sumEach(arrays);
}
