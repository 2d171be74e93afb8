/**
 * The wasm rung: tfjs's XNNPACK wasm backend (single-threaded in Node).
 */
import * as tf from "./tf";

/** Register and select the wasm backend. */
export async function initWasm(): Promise<{ backend: string; threads: number }> {
  require("@tensorflow/tfjs-backend-wasm");
  const ok = await tf.setBackend("wasm");
  if (!ok) throw new Error("the wasm backend failed to initialise");
  return { backend: "wasm", threads: 1 };
}
