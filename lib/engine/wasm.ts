/**
 * The wasm rung: tfjs's XNNPACK wasm backend (single-threaded in Node), plus tsfast's training
 * kernels (`lib/engine/wasm/`) that the stock backend lacks or runs slowly.
 */
import * as tf from "./tf";
import { registerWasmTrainingKernels } from "./wasm/kernels";

/** Register the wasm backend with tsfast's training kernels, and select it. */
export async function initWasm(): Promise<{ backend: string; threads: number }> {
  require("@tensorflow/tfjs-backend-wasm");
  registerWasmTrainingKernels();
  const ok = await tf.setBackend("wasm");
  if (!ok) throw new Error("the wasm backend failed to initialise");
  return { backend: "wasm", threads: 1 };
}
