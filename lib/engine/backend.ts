/**
 * The backend ladder: which TensorFlow.js backend runs, and why the better ones were skipped.
 *
 * Preference, best first: tfjs-node-gpu (CUDA) → tfjs-node (libtensorflow CPU) → tsfast's native
 * CPU engine (oneDNN, compiled at install) → wasm (with tsfast's training kernels) → cpu (pure JS).
 * `TSFAST_BACKEND=<name>` forces one: `tensorflow-gpu`, `tensorflow`, `native`, `wasm`, `cpu`.
 */
import * as os from "node:os";
import * as tf from "./tf";
import { installChainedOps } from "./chained";

installChainedOps();

/** What `engineInfo()` reports. */
export interface EngineInfo {
  /** The tfjs backend name now active (`tensorflow`, `native`, `wasm`, `cpu`). */
  backend: string;
  /** The rung of the ladder chosen (`tfjs-node-gpu`, `tfjs-node`, `native`, `wasm`, `cpu`). */
  engine: EngineName;
  /** Threads the engine computes with. */
  threads: number;
  /** Why this rung was chosen: one clause per better rung that was skipped. */
  reason: string;
}

export type EngineName = "tfjs-node-gpu" | "tfjs-node" | "native" | "wasm" | "cpu";

/** A rung of the ladder: `tryInit` resolves with a tfjs backend name, or throws saying why not. */
export interface EngineRung {
  name: EngineName;
  tryInit: () => Promise<{ backend: string; threads: number }>;
}

const FORCE_ALIASES: Record<string, EngineName> = {
  "tfjs-node-gpu": "tfjs-node-gpu",
  "tensorflow-gpu": "tfjs-node-gpu",
  gpu: "tfjs-node-gpu",
  "tfjs-node": "tfjs-node",
  tensorflow: "tfjs-node",
  native: "native",
  wasm: "wasm",
  cpu: "cpu",
};

/** Threads the CPU engines use: `TSFAST_THREADS`, else every core. */
export function defaultThreads(): number {
  const env = process.env["TSFAST_THREADS"];
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`TSFAST_THREADS must be a positive integer, got "${env}"`);
    }
    return n;
  }
  return Math.max(1, os.availableParallelism ? os.availableParallelism() : os.cpus().length);
}

function firstLine(e: unknown): string {
  const code = (e as { code?: string } | null)?.code;
  if (code === "MODULE_NOT_FOUND" && e instanceof Error) {
    const m = /Cannot find module '([^']+)'/.exec(e.message);
    if (m && m[1]?.startsWith("@tensorflow/")) return `${m[1]} is not installed`;
  }
  const msg = e instanceof Error ? e.message : String(e);
  return (msg.split("\n")[0] ?? msg).slice(0, 200);
}

const rungs: EngineRung[] = [
  {
    name: "tfjs-node-gpu",
    tryInit: async () => {
      // Loading fails (missing libcudart/libcudnn) unless CUDA 11.2 + cuDNN 8.1 are installed.
      require("@tensorflow/tfjs-node-gpu");
      await tf.setBackend("tensorflow");
      return { backend: "tensorflow", threads: defaultThreads() };
    },
  },
  {
    name: "tfjs-node",
    tryInit: async () => {
      require("@tensorflow/tfjs-node");
      await tf.setBackend("tensorflow");
      return { backend: "tensorflow", threads: defaultThreads() };
    },
  },
  {
    name: "native",
    tryInit: async () => {
      // The native engine module registers itself; it throws with the reason it cannot load.
      const native = require("./native") as { initNative: () => Promise<{ backend: string; threads: number }> };
      return native.initNative();
    },
  },
  {
    name: "wasm",
    tryInit: async () => {
      const wasm = require("./wasm") as { initWasm: () => Promise<{ backend: string; threads: number }> };
      return wasm.initWasm();
    },
  },
  {
    name: "cpu",
    tryInit: async () => {
      require("@tensorflow/tfjs-backend-cpu");
      await tf.setBackend("cpu");
      return { backend: "cpu", threads: 1 };
    },
  },
];

let current: EngineInfo | undefined;
let pending: Promise<EngineInfo> | undefined;

/**
 * Choose and initialise the best available backend once; later calls return the same answer.
 * `TSFAST_BACKEND` forces a rung (an error names the valid values or why the forced one failed).
 */
export function ready(): Promise<EngineInfo> {
  if (current) return Promise.resolve(current);
  if (!pending) pending = choose();
  return pending;
}

/** The cpu backend greets Node users with advice to install tfjs-node on first use; we already chose. */
function quietCpuGreeting(): void {
  const b = tf.backend() as unknown as { firstUse?: boolean };
  if (b && typeof b.firstUse === "boolean") b.firstUse = false;
}

/**
 * Two copies of tfjs-core in one process make tensors that fail each other's `instanceof` checks
 * ("tensor was disposed", "backend not registered"). Name both paths so the user can fix imports.
 */
export function tfjsCopies(): string[] {
  const pattern = /[\\/]@tensorflow[\\/]tfjs-core[\\/]dist[\\/]tf-core\.node\.js$/;
  return Object.keys(require.cache).filter((k) => pattern.test(k));
}

async function choose(): Promise<EngineInfo> {
  const copies = tfjsCopies();
  if (copies.length > 1) {
    console.warn(
      `tsfast: ${copies.length} copies of TensorFlow.js are loaded (${copies.join(", ")}); ` +
        `import tf from "tsfast" (import { tf } from "tsfast") instead of from @tensorflow/* packages`,
    );
  }
  const info = await chooseRung();
  quietCpuGreeting();
  return info;
}

async function chooseRung(): Promise<EngineInfo> {
  const forced = process.env["TSFAST_BACKEND"];
  if (forced !== undefined && forced !== "") {
    const name = FORCE_ALIASES[forced];
    if (!name) {
      throw new Error(
        `TSFAST_BACKEND="${forced}" is not a backend; use one of ${Object.keys(FORCE_ALIASES).join(", ")}`,
      );
    }
    const rung = rungs.find((r) => r.name === name)!;
    try {
      const r = await rung.tryInit();
      current = { ...r, engine: name, reason: `forced by TSFAST_BACKEND=${forced}` };
      return current;
    } catch (e) {
      throw new Error(`TSFAST_BACKEND=${forced} was asked for but cannot start: ${firstLine(e)}`);
    }
  }
  const skipped: string[] = [];
  for (const rung of rungs) {
    try {
      const r = await rung.tryInit();
      current = { ...r, engine: rung.name, reason: skipped.length ? skipped.join("; ") : "best available" };
      return current;
    } catch (e) {
      skipped.push(`${rung.name} skipped: ${firstLine(e)}`);
    }
  }
  throw new Error(`no TensorFlow.js backend could start: ${skipped.join("; ")}`);
}

/** The engine chosen by `ready()`; throws if `ready()` has not finished yet. */
export function engineInfo(): EngineInfo {
  if (!current) throw new Error("the engine is not chosen yet: `await ready()` first");
  return current;
}

/** A one-line banner: which backend runs, on how many threads, and why. */
export function engineBanner(): string {
  const e = engineInfo();
  return `tsfast ${e.engine} engine (tfjs backend "${e.backend}", ${e.threads} thread${e.threads === 1 ? "" : "s"}) — ${e.reason}`;
}
