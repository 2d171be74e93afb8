/**
 * Loading the compiled addon (`native/build/Release/tsfast_native.node`) and its typed surface.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** The functions the C++ addon exports; every array argument is used in place, without copies. */
export interface NativeAddon {
  setThreads(n: number): number;
  getThreads(): number;
  version(): string;
  /**
   * y = act(conv(x, w) + bias), or with `scale` (one per output channel) y = act(conv(x, w·scale) + bias), the
   * scaled weights cached (one copy per `owner`, a number naming the layer); with `sum`, y's own contents are
   * added before the activation (y written in place).
   */
  conv2d(x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array, p: Int32Array, act: number, wToken: number, scale?: Float32Array | null, sum?: boolean, owner?: number): void;
  /** Bytes of reordered weight copies the convolutions keep between calls (see native/src/conv.cc). */
  heldWeightCopies(): number;
  /** The oneDNN implementation a forward convolution with these parameters (see convParams) runs. */
  convForwardImpl(params: Int32Array): string;
  conv2dBackpropInput(dy: Float32Array, w: Float32Array, dx: Float32Array, p: Int32Array, wToken: number): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, p: Int32Array): void;
  pool(x: Float32Array, y: Float32Array, p: Int32Array): void;
  poolGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, p: Int32Array): void;
  matmul(a: Float32Array, b: Float32Array, c: Float32Array, p: Int32Array): void;
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, outShape: Int32Array, aShape: Int32Array, bShape: Int32Array): void;
  unary(op: number, x: Float32Array, out: Float32Array, alpha: number): void;
  reduce(op: number, x: Float32Array, out: Float32Array, outer: number, red: number, inner: number): void;
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  /** AdamW in one pass; with `wOut`/`mOut`/`vOut` (each null for in place) the new values go there and the inputs stay. */
  adam(w: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, h: Float64Array, wOut?: Float32Array | null, mOut?: Float32Array | null, vOut?: Float32Array | null): void;
  transpose(x: Float32Array, out: Float32Array, shape: Int32Array, perm: Int32Array): void;
  slicePad(x: Float32Array, out: Float32Array, srcShape: Int32Array, dstShape: Int32Array, offset: Int32Array, fill: number): void;
  tile(x: Float32Array, out: Float32Array, xShape: Int32Array, outShape: Int32Array): void;
  bnStats(x: Float32Array, mean: Float32Array, variance: Float32Array, channels: number): void;
  bnBackward(x: Float32Array, dy: Float32Array, mean: Float32Array, invstd: Float32Array, gamma: Float32Array,
    dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, channels: number, reluOut?: Float32Array): void;
  reluGrad(dy: Float32Array, x: Float32Array, dx: Float32Array): void;
  /** Each array's sum (double, rounded to float32), added in float32: tfjs's sum of each, then addN. */
  sumEach(arrays: Float32Array[]): number;
  scaleShift(x: Float32Array, out: Float32Array, scale: Float32Array, shift: Float32Array, channels: number, relu?: boolean): void;
}

/** Where `scripts/build-native.mjs` puts the addon and, when it could not build, its reason. */
export function nativeDir(): string {
  // dist/lib/engine/native/addon.js and lib/engine/native/addon.ts are both 3-4 levels down.
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, "native", "binding.gyp"))) return path.join(dir, "native");
    dir = path.dirname(dir);
  }
  throw new Error("native addon not built: native/binding.gyp not found above " + __dirname);
}

let cached: NativeAddon | undefined;

/** How many times an idle OpenMP thread spins before it sleeps, unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT (see `loadAddon`). */
export const OMP_SPINS = 1000;

/** Load the addon once, or throw a one-line reason (the build script's marker when it skipped). */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const dir = nativeDir();
  const file = path.join(dir, "build", "Release", "tsfast_native.node");
  if (!fs.existsSync(file)) {
    const marker = path.join(dir, "build-skipped.txt");
    const why = fs.existsSync(marker)
      ? fs.readFileSync(marker, "utf8").split("\n")[0]
      : "run `node scripts/build-native.mjs` (needs g++, make, libdnnl-dev)";
    throw new Error(`native addon not built: ${why}`);
  }
  // OpenMP threads that finish a parallel region spin-wait for the next one by default (300,000 spins,
  // about 8 ms here). When other work shares the cores (data workers, other processes), the spinning
  // threads steal them: an epoch of a small net took 10.2 s instead of 6.7 s beside two busy processes.
  // Sleeping at once costs the other way: a training step runs hundreds of parallel regions a few
  // microseconds apart, and each then wakes its threads through the kernel (ResNet-18's Learner epoch
  // at 128 px: 4.51-4.89 s passive, 4.48-4.53 s with the short spin). So the threads spin 1,000 times
  // (about 25 µs here, a pause instruction each: longer than the gap between two kernels of a step),
  // then sleep. Beside two busy processes that epoch of a small net took as long as passive (2.6-2.7 s
  // against 2.6-2.8 s; 10,000 spins: 2.9-3.4 s). libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once,
  // when the addon loads it: they are set for that moment only (a user's own setting of either wins),
  // so that child processes (PyTorch in the benches) keep their own defaults.
  const userPolicy = process.env["OMP_WAIT_POLICY"];
  const userSpin = process.env["GOMP_SPINCOUNT"];
  const ours = userPolicy === undefined && userSpin === undefined;
  if (ours) {
    process.env["OMP_WAIT_POLICY"] = "PASSIVE";
    process.env["GOMP_SPINCOUNT"] = String(OMP_SPINS);
  }
  try {
    cached = require(file) as NativeAddon;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`native addon failed to load: ${msg.split("\n")[0]}`);
  } finally {
    if (ours) {
      delete process.env["OMP_WAIT_POLICY"];
      delete process.env["GOMP_SPINCOUNT"];
    }
  }
  return cached;
}

const tokens = new WeakMap<Float32Array, number>();
let nextToken = 1;

/**
 * A number naming this weight array's current contents, never reused: the addon caches weights
 * reordered for oneDNN under it. Whoever writes into an array in place must `renewToken` it.
 */
export function weightToken(a: Float32Array): number {
  let t = tokens.get(a);
  if (t === undefined) {
    t = nextToken++;
    tokens.set(a, t);
  }
  return t;
}

/** Forget an array's token after changing it in place (its cached reorders become stale). */
export function renewToken(a: Float32Array): void {
  tokens.delete(a);
}
