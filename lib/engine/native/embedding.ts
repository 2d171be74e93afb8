/**
 * Embedding lookups and their gradient for the native engine, in plain loops over the cpu
 * backend's arrays. The cpu kernels they replace are far too slow for embeddings:
 *   - `UnsortedSegmentSum` (the gradient of `gather`) runs one Equal/Mul/Sum per segment, so an
 *     8,000-row item table costs 8,000 kernel calls per step;
 *   - `GatherV2` computes a multi-dimensional index for every element.
 * Here both are one pass over the rows touched (a batch of 64 × 50 factors: 3,200 adds).
 */
import type * as tf from "../tf";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";

type TI = tf.TensorInfo;
type KernelArgs = { inputs: Record<string, TI | undefined>; backend: MathBackendCPU; attrs?: Record<string, unknown> };
type Kernel = (args: KernelArgs) => TI | TI[];

/**
 * out[s, :] += x[r, :] for every row r with s = ids[r] in [0, numSegments) (others are dropped);
 * `out` must start zeroed. Shared with the wasm engine's `UnsortedSegmentSum`.
 */
export function addRowsBySegment(x: ArrayLike<number>, ids: ArrayLike<number>, rowSize: number, numSegments: number, out: Float32Array | Int32Array): void {
  for (let r = 0; r < ids.length; r++) {
    const s = ids[r]!;
    if (s < 0 || s >= numSegments) continue;
    const xo = r * rowSize;
    const oo = s * rowSize;
    for (let k = 0; k < rowSize; k++) out[oo + k]! += x[xo + k]!;
  }
}

const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** `GatherV2` (axis 0, no batch dims) and `UnsortedSegmentSum` for float32 data; anything else goes to `cpu(name)`. */
export function embeddingKernels(cpu: (name: string) => Kernel): Record<string, Kernel> {
  const gatherCpu = cpu("GatherV2");
  const segmentCpu = cpu("UnsortedSegmentSum");
  return {
    GatherV2: (args) => {
      const b = args.backend;
      const x = args.inputs["x"]!;
      const indices = args.inputs["indices"]!;
      const axis = Number(args.attrs?.["axis"] ?? 0);
      const batchDims = Number(args.attrs?.["batchDims"] ?? 0);
      const xv = b.data.get(x.dataId).values;
      if ((axis !== 0 && axis !== -x.shape.length) || batchDims !== 0 || !(xv instanceof Float32Array) || x.dtype !== "float32") return gatherCpu(args);
      const idx = b.data.get(indices.dataId).values as ArrayLike<number>;
      const rows = x.shape[0]!;
      const rowSize = sizeOf(x.shape.slice(1));
      for (let r = 0; r < idx.length; r++) if (!(idx[r]! >= 0 && idx[r]! < rows)) return gatherCpu(args); // the cpu kernel names the bad index
      const out = new Float32Array(idx.length * rowSize);
      for (let r = 0; r < idx.length; r++) out.set(xv.subarray(idx[r]! * rowSize, (idx[r]! + 1) * rowSize), r * rowSize);
      return b.makeTensorInfo([...indices.shape, ...x.shape.slice(1)], "float32", out);
    },
    UnsortedSegmentSum: (args) => {
      const b = args.backend;
      const x = args.inputs["x"]!;
      const ids = args.inputs["segmentIds"]!;
      const numSegments = Number(args.attrs?.["numSegments"]);
      const xv = b.data.get(x.dataId).values;
      if (!(xv instanceof Float32Array) || x.dtype !== "float32") return segmentCpu(args);
      const inner = x.shape.slice(ids.shape.length);
      const out = new Float32Array(numSegments * sizeOf(inner));
      addRowsBySegment(xv, b.data.get(ids.dataId).values as ArrayLike<number>, sizeOf(inner), numSegments, out);
      return b.makeTensorInfo([numSegments, ...inner], "float32", out);
    },
  };
}
