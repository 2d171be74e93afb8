/**
 * `Tile` for the wasm backend by block copies. Training hits it in every batch-norm gradient
 * (tfjs tiles the per-channel statistics to the activation's full shape), where the stock kernel's
 * per-element index arithmetic took ~10% of a ResNet step; here each output block is one memcpy.
 */
import * as tf from "../tf";
import { asWasm, KernelArgs } from "./backend";

let stockTile: tf.KernelConfig | undefined;
const stockSetUp = new WeakSet<object>();

/** Keep the stock kernel for string tensors, which do not live on the wasm heap. */
export function rememberStockTile(): void {
  if (stockTile) return;
  const k = tf.getKernel("Tile", "wasm");
  if (k && k.kernelFunc !== tile) stockTile = k;
}

/**
 * out[i0, …, iR] = x[i0 mod s0, …, iR mod sR]. Built outside-in: for each input index of axis d,
 * lay down the sub-block for axes > d, then repeat the whole axis-d block reps[d] − 1 times.
 */
export function tile(args: KernelArgs): tf.TensorInfo {
  const b = asWasm(args.backend);
  const x = args.inputs["x"]!;
  const reps = (args.attrs as { reps: number[] }).reps;
  if (x.dtype === "string" || x.dtype === "complex64") {
    const k = stockTile;
    if (!k) throw new Error(`Tile on wasm: ${x.dtype} tensors need the stock kernel, which is not available`);
    if (k.setupFunc && !stockSetUp.has(args.backend as object)) {
      k.setupFunc(args.backend as tf.KernelBackend);
      stockSetUp.add(args.backend as object);
    }
    return k.kernelFunc(args as never) as tf.TensorInfo;
  }
  const shape = x.shape;
  const rank = shape.length;
  const outShape = shape.map((s, i) => s * reps[i]!);
  const out = b.makeOutput(outShape, x.dtype);
  const size = outShape.reduce((a, s) => a * s, 1);
  if (size === 0) return out;
  const src = b.typedArrayFromHeap(x);
  const dst = b.typedArrayFromHeap(out);
  if (rank === 0) {
    dst[0] = src[0]!;
    return out;
  }
  // Element strides of x and of out, per axis.
  const inStride = new Array<number>(rank).fill(1);
  const outStride = new Array<number>(rank).fill(1);
  for (let d = rank - 2; d >= 0; d--) {
    inStride[d] = inStride[d + 1]! * shape[d + 1]!;
    outStride[d] = outStride[d + 1]! * outShape[d + 1]!;
  }
  const fill = (d: number, inOff: number, outOff: number): void => {
    const n = shape[d]!;
    if (d === rank - 1) {
      dst.set(src.subarray(inOff, inOff + n), outOff);
    } else {
      for (let i = 0; i < n; i++) fill(d + 1, inOff + i * inStride[d]!, outOff + i * outStride[d]!);
    }
    const block = n * outStride[d]!;
    for (let r = 1; r < reps[d]!; r++) dst.copyWithin(outOff + r * block, outOff, outOff + block);
  };
  fill(0, 0, 0);
  return out;
}
