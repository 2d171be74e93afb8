/**
 * Engines side by side in one process, for tests that train or compute the same thing on each and
 * compare: the cpu backend (tfjs's reference kernels), wasm with tsfast's training kernels, and the
 * native engine when this machine built it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "../../lib/engine/tf";
import { ready } from "../../lib/engine/backend";
import { initNative } from "../../lib/engine/native";
import { initWasm } from "../../lib/engine/wasm";
import type { NativeBackend } from "../../lib/engine/native/pool";
import { nativeDir } from "../../lib/engine/native/addon";
export { maxDiff } from "./compare";

/** Whether `npm ci` compiled the native engine here (it is skipped where g++/oneDNN are missing). */
export function nativeBuilt(): boolean {
  return fs.existsSync(path.join(nativeDir(), "build", "Release", "tsfast_native.node"));
}

/** Register cpu, wasm and (when built) native; returns the backend names available, cpu first. */
export async function registerEngines(): Promise<string[]> {
  // The library's `ready()` (which the Learner awaits) would pick the best engine and switch to it:
  // settle it on cpu first, so that `tf.setBackend` alone decides where each test computes.
  process.env["TSFAST_BACKEND"] = "cpu";
  await ready();
  const names = ["cpu"];
  await initWasm();
  names.push("wasm");
  if (nativeBuilt()) {
    await initNative();
    names.push("native");
  }
  await tf.setBackend("cpu");
  return names;
}

/** The native backend's storage (its pool switch); throws when native is not registered. */
export function nativeStorage(): NativeBackend {
  return tf.engine().findBackend("native") as unknown as NativeBackend;
}
