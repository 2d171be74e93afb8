/**
 * The training kernels tsfast adds to (or replaces in) tfjs's wasm backend.
 */
import * as tf from "../tf";
import { conv2DBackpropFilter, conv2DBackpropInput, rememberStockBackpropInput } from "./conv2d-grad";
import { depthwiseConv2dNativeBackpropFilter, depthwiseConv2dNativeBackpropInput } from "./depthwise-grad";
import { unsortedSegmentSum } from "./segment";
import { rememberStockTile, tile } from "./tile";
import { resizeNearestNeighborGradWasm } from "../resize-grad";

/** Kernel name → implementation; `replaces` marks kernels the stock backend has but runs slowly. */
export const WASM_TRAINING_KERNELS: { name: string; fn: (args: never) => tf.TensorInfo; replaces: boolean }[] = [
  { name: "Conv2DBackpropFilter", fn: conv2DBackpropFilter as never, replaces: false },
  { name: "Conv2DBackpropInput", fn: conv2DBackpropInput as never, replaces: true },
  { name: "DepthwiseConv2dNativeBackpropFilter", fn: depthwiseConv2dNativeBackpropFilter as never, replaces: false },
  { name: "DepthwiseConv2dNativeBackpropInput", fn: depthwiseConv2dNativeBackpropInput as never, replaces: false },
  { name: "UnsortedSegmentSum", fn: unsortedSegmentSum as never, replaces: false },
  { name: "Tile", fn: tile as never, replaces: true },
  // the stock kernel ignores halfPixelCenters (lib/engine/resize-grad.ts)
  { name: "ResizeNearestNeighborGrad", fn: resizeNearestNeighborGradWasm as never, replaces: true },
];

/** Register tsfast's training kernels for the `wasm` backend (idempotent). */
export function registerWasmTrainingKernels(): void {
  rememberStockBackpropInput();
  rememberStockTile();
  for (const k of WASM_TRAINING_KERNELS) {
    const existing = tf.getKernel(k.name, "wasm");
    if (existing && existing.kernelFunc === (k.fn as unknown)) continue;
    if (existing) tf.unregisterKernel(k.name, "wasm");
    tf.registerKernel({ kernelName: k.name, backendName: "wasm", kernelFunc: k.fn as unknown as tf.KernelFunc });
  }
}
