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
import { installEarlyRelease } from "./backprop";
import { installLeanForward } from "./lean-forward";

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

/**
 * A rung of the ladder. `start` runs synchronously: it selects the backend and returns its
 * description, returns a promise when the backend can only start asynchronously (wasm compiles
 * its module), or throws saying why this rung cannot run here.
 */
interface Rung {
  name: EngineName;
  start: () => Started | Promise<Started>;
}
interface Started {
  backend: string;
  threads: number;
}

/** Select a backend whose factory is synchronous (tfjs-node, native, cpu): `tf.setBackend` then finishes at once. */
function selectNow(backend: string): void {
  void tf.setBackend(backend);
  if (tf.getBackend() !== backend) throw new Error(`the ${backend} backend failed to initialise`);
}

const rungs: Rung[] = [
  {
    name: "tfjs-node-gpu",
    start: () => {
      // Loading fails (missing libcudart/libcudnn) unless CUDA 11.2 + cuDNN 8.1 are installed.
      require("@tensorflow/tfjs-node-gpu");
      selectNow("tensorflow");
      return { backend: "tensorflow", threads: defaultThreads() };
    },
  },
  {
    name: "tfjs-node",
    start: () => {
      require("@tensorflow/tfjs-node");
      selectNow("tensorflow");
      return { backend: "tensorflow", threads: defaultThreads() };
    },
  },
  {
    name: "native",
    start: () => {
      // The native engine module registers itself; it throws with the reason it cannot load.
      const native = require("./native") as { startNative: () => Started };
      return native.startNative();
    },
  },
  {
    name: "wasm",
    start: () => {
      const wasm = require("./wasm") as { initWasm: () => Promise<Started> };
      return wasm.initWasm();
    },
  },
  {
    name: "cpu",
    start: () => {
      require("@tensorflow/tfjs-backend-cpu");
      (require("./resize-grad") as typeof import("./resize-grad")).installResizeGrad("cpu");
      selectNow("cpu");
      return { backend: "cpu", threads: 1 };
    },
  },
];

let current: EngineInfo | undefined;
let pending: Promise<EngineInfo> | undefined;
let failure: Error | undefined;

/**
 * Walk the ladder now, synchronously, so that `tf` works the moment tsfast is imported: the first
 * op, `tf.ready()` and `ready()` all see the same engine. Only the wasm rung starts asynchronously;
 * when it is the best one, `tf.ready()` and `ready()` wait for it. `lib/index.ts` calls this on
 * import; calling it again does nothing.
 */
export function startEngine(): void {
  installEarlyRelease();
  installLeanForward();
  if (current || pending || failure) return;
  try {
    const forced = process.env["TSFAST_BACKEND"];
    if (forced !== undefined && forced !== "") startForced(forced);
    else startBest();
  } catch (e) {
    failure = e instanceof Error ? e : new Error(String(e));
  }
}

function startForced(forced: string): void {
  const name = FORCE_ALIASES[forced];
  if (!name) {
    throw new Error(`TSFAST_BACKEND="${forced}" is not a backend; use one of ${Object.keys(FORCE_ALIASES).join(", ")}`);
  }
  const why = (e: unknown) => new Error(`TSFAST_BACKEND=${forced} was asked for but cannot start: ${firstLine(e)}`);
  const reason = `forced by TSFAST_BACKEND=${forced}`;
  let r: Started | Promise<Started>;
  try {
    r = rungs.find((x) => x.name === name)!.start();
  } catch (e) {
    throw why(e);
  }
  settle(r, name, reason, (e) => {
    throw why(e);
  });
}

function startBest(skipped: string[] = [], from = 0): void {
  for (let i = from; i < rungs.length; i++) {
    const rung = rungs[i]!;
    let r: Started | Promise<Started>;
    try {
      r = rung.start();
    } catch (e) {
      skipped.push(`${rung.name} skipped: ${firstLine(e)}`);
      continue;
    }
    const reason = () => (skipped.length ? skipped.join("; ") : "best available");
    settle(r, rung.name, reason(), (e) => {
      // An asynchronous rung that fails hands over to the next rungs.
      skipped.push(`${rung.name} skipped: ${firstLine(e)}`);
      startBest(skipped, i + 1);
      return ready();
    });
    return;
  }
  throw new Error(`no TensorFlow.js backend could start: ${skipped.join("; ")}`);
}

/** Record a started rung, or, for an asynchronous one, the promise of it. */
function settle(r: Started | Promise<Started>, engine: EngineName, reason: string, onFail: (e: unknown) => Promise<EngineInfo>): void {
  if (!(r instanceof Promise)) {
    current = { ...r, engine, reason };
    quietCpuGreeting();
    return;
  }
  pending = r.then(
    (s) => {
      quietCpuGreeting();
      return (current = { ...s, engine, reason });
    },
    (e) => {
      pending = undefined;
      try {
        return onFail(e);
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err)); // later ready() calls give the same answer
        throw failure;
      }
    },
  );
  pending.catch(() => undefined); // a failure is reported by `ready()`, not as an unhandled rejection
}

/**
 * The engine, once it has started (tsfast starts it on import; see `startEngine`): the best
 * available backend, or the one `TSFAST_BACKEND` forces (an error names the valid values or why
 * the forced one failed). Later calls return the same answer.
 */
export function ready(): Promise<EngineInfo> {
  startEngine();
  if (failure) return Promise.reject(failure);
  warnCopies();
  return current ? Promise.resolve(current) : pending!;
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

let copiesChecked = false;
function warnCopies(): void {
  if (copiesChecked) return;
  copiesChecked = true;
  const copies = tfjsCopies();
  if (copies.length > 1) {
    console.warn(
      `tsfast: ${copies.length} copies of TensorFlow.js are loaded (${copies.join(", ")}); ` +
        `import tf from "tsfast" (import { tf } from "tsfast") instead of from @tensorflow/* packages`,
    );
  }
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
