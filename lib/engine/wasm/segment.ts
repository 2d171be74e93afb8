/**
 * `UnsortedSegmentSum` for the wasm backend: the gradient of `gather` (embeddings).
 *   out[s, ...] = Σ_{i : ids[i] = s} x[i, ...]   (ids outside [0, numSegments) are dropped)
 */
import * as tf from "../tf";
import { asWasm, KernelArgs } from "./backend";
import { segmentSumInto } from "../segment-sum";

/** One pass over x, adding each row into the row of its segment. */
export function unsortedSegmentSum(args: KernelArgs): tf.TensorInfo {
  const b = asWasm(args.backend);
  const x = args.inputs["x"]!;
  const ids = args.inputs["segmentIds"]!;
  const numSegments = (args.attrs as { numSegments: number }).numSegments;
  const inner = x.shape.slice(ids.shape.length);
  const rowSize = inner.reduce((a, d) => a * d, 1);
  const rows = ids.shape.reduce((a, d) => a * d, 1);
  if (x.dtype !== "float32" && x.dtype !== "int32") {
    throw new Error(`UnsortedSegmentSum on wasm: x must be float32 or int32, got ${x.dtype}`);
  }
  // Ids may arrive as float32 (e.g. from a cast-free caller); read them as plain numbers.
  const idv = b.readSync(ids.dataId) as ArrayLike<number>;
  const out = b.makeOutput([numSegments, ...inner], x.dtype);
  const xs = b.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const os = b.typedArrayFromHeap(out) as Float32Array | Int32Array;
  segmentSumInto(xs, idv, os, rows, rowSize, numSegments);
  return out;
}
