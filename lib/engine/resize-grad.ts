/**
 * `ResizeNearestNeighborGrad` for every engine: tfjs 4.22's own kernels compute wrong numbers.
 * - cpu (and "native", which starts from copies of the cpu kernels): `dy` is indexed with the
 *   *input's* batch stride, so from the second picture of a batch on it reads the wrong pixels (past
 *   the end of `dy`: NaN) whenever the resize changes the size. The U-Net resizes its decoder's maps
 *   to the encoder's at odd picture sizes, and every gradient came out NaN.
 * - wasm: `halfPixelCenters` is ignored, so the gradient goes to the wrong pixels.
 * This kernel scatters each `dy` pixel to the input pixel the forward pass read (the rule of the
 * cpu `ResizeNearestNeighbor`, which the wasm one shares).
 */
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import * as tf from "./tf";
import { asWasm } from "./wasm/backend";

interface ResizeGradArgs {
  inputs: { images: tf.TensorInfo; dy: tf.TensorInfo };
  backend: unknown;
  attrs: { alignCorners?: boolean; halfPixelCenters?: boolean };
}

/** The source index the forward nearest resize reads for output index `o` (tfjs's cpu rule). */
function sourceIndex(o: number, ratio: number, inSize: number, alignCorners: boolean, halfPixelCenters: boolean): number {
  const frac = halfPixelCenters ? ratio * (o + 0.5) : ratio * o;
  const i = Math.min(inSize - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
  return halfPixelCenters ? Math.max(0, i) : i;
}

/** Add each pixel of `dy` ([n, oh, ow, depth]) into `dx` ([n, ih, iw, depth], zeroed) where the forward pass read it. */
function scatterNearest(args: ResizeGradArgs, dyValues: Float32Array, dx: Float32Array): void {
  const alignCorners = args.attrs.alignCorners ?? false;
  const halfPixelCenters = args.attrs.halfPixelCenters ?? false;
  const [batch, inH, inW, depth] = args.inputs.images.shape as [number, number, number, number];
  const [, outH, outW] = args.inputs.dy.shape as [number, number, number, number];
  const ratio = (inSize: number, outSize: number) => (alignCorners && outSize > 1 ? (inSize - 1) / (outSize - 1) : inSize / outSize);
  const rowRatio = ratio(inH, outH), colRatio = ratio(inW, outW);
  const srcCol = Array.from({ length: outW }, (_, c) => sourceIndex(c, colRatio, inW, alignCorners, halfPixelCenters));
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < outH; r++) {
      const sr = sourceIndex(r, rowRatio, inH, alignCorners, halfPixelCenters);
      const dyRow = ((b * outH + r) * outW) * depth;
      const dxRow = ((b * inH + sr) * inW) * depth;
      for (let c = 0; c < outW; c++) {
        const from = dyRow + c * depth, to = dxRow + srcCol[c]! * depth;
        for (let d = 0; d < depth; d++) dx[to + d]! += dyValues[from + d]!;
      }
    }
  }
}

/** The kernel on the cpu backend's storage (cpu and native). */
export function resizeNearestNeighborGradCpu(args: ResizeGradArgs): tf.TensorInfo {
  const backend = args.backend as MathBackendCPU;
  const { images, dy } = args.inputs;
  const dx = new Float32Array(images.shape.reduce((a, s) => a * s, 1));
  scatterNearest(args, backend.data.get(dy.dataId).values as Float32Array, dx);
  return backend.makeTensorInfo(images.shape, "float32", dx);
}

/** The kernel on the wasm heap. */
export function resizeNearestNeighborGradWasm(args: ResizeGradArgs): tf.TensorInfo {
  const b = asWasm(args.backend);
  const out = b.makeOutput(args.inputs.images.shape, "float32");
  const dx = b.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  scatterNearest(args, b.typedArrayFromHeap(args.inputs.dy) as Float32Array, dx);
  return out;
}

/** Put the right kernel in place for `backendName`: "cpu" or "native" (cpu storage), or "wasm". */
export function installResizeGrad(backendName: string): void {
  const fn = backendName === "wasm" ? resizeNearestNeighborGradWasm : resizeNearestNeighborGradCpu;
  const kernelName = "ResizeNearestNeighborGrad";
  const existing = tf.getKernel(kernelName, backendName);
  if (existing?.kernelFunc === (fn as unknown)) return;
  if (existing) tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ kernelName, backendName, kernelFunc: fn as unknown as tf.KernelFunc });
}
