/**
 * The memory row of `npm run bench` (issue 19, item 4): peak resident memory of training ResNet-34 at
 * 128 px, batch 32 — tsfast on the native engine against PyTorch (bench/memory_torch.py) with the
 * engine bench's recipe (10 classes, channels-last random inputs, Adam lr 1e-3, cross-entropy).
 *
 * Each side trains in a fresh child process of its own, so the peak belongs to that configuration
 * alone (the parent bench has trained other models, and Node never hands all freed memory back). Both
 * children read /proc/self/status: VmRSS right after the imports and the engine's start (what the
 * runtime costs before any model exists: Node + tfjs + the oneDNN addon, or Python + torch), and VmHWM
 * after the last step (the process's peak resident set). VmHWM rather than getrusage's maxrss
 * (`process.resourceUsage().maxRSS`), because Linux carries maxrss over from the image before exec, and
 * these children are forked from the bench's own, much larger Node process.
 *
 * The tsfast child also reports where its memory is after training, for the breakdown: tensor bytes
 * tfjs tracks (weights, Adam's two moments, inputs), the idle arrays the native backend keeps for
 * reuse (lib/engine/native/pool.ts), V8's heap and its ArrayBuffer total (live arrays plus those not
 * yet collected). Not `tf.profile`'s peakBytes: tfjs counts a buffer once per tensor that shares it
 * (clones, reshapes, saved tensors), so during a step it reads far above the memory really held.
 *
 * usage (the child; `npm run bench -- --only memory` runs both):
 *   node dist/bench/memory.js --child [--arch resnet34] [--size 128] [--bs 32] [--warmup 3] [--steps 5]
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { initNative } from "../lib/engine/native";
import { resnet18, resnet34 } from "../lib/models/archs";
import { NativeAdamOptimizer } from "../lib/engine/native/optimizer";

/** The row's configuration: issue 19 asks for ResNet-34 at 128 px, batch 32. Only the peak matters, so few steps. */
export const MEMORY_BENCH = { arch: "resnet34" as "resnet18" | "resnet34", size: 128, bs: 32, warmup: 3, steps: 5 };

/** What each child prints (KiB, as /proc reports them). */
export interface MemorySide {
  baselineKiB?: number;
  peakKiB?: number;
  endKiB?: number;
  /** tsfast only: where the memory is after training (bytes). */
  detail?: Record<string, number>;
  note?: string;
}

export interface MemoryBench {
  tsfast: MemorySide;
  torch: MemorySide;
}

/** A `Vm*` line of /proc/self/status, in KiB. */
function statusKiB(field: string): number {
  const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith(field + ":"));
  if (!line) throw new Error(`/proc/self/status has no ${field}`);
  return Number(line.split(/\s+/)[1]);
}

const why = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];

/** The last JSON line a child printed. */
function lastJson(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split("\n").filter((l) => l.startsWith("{")).pop()!) as Record<string, unknown>;
}

/** Run both children, PyTorch first (as the engine bench's rows do), each in a fresh process. */
export function memoryBench(threads: number, c = MEMORY_BENCH): MemoryBench {
  const cfg = ["--arch", c.arch, "--size", String(c.size), "--bs", String(c.bs), "--warmup", String(c.warmup), "--steps", String(c.steps)];
  const opts = { encoding: "utf8" as const, stdio: ["ignore", "pipe", "inherit"] as ["ignore", "pipe", "inherit"] };
  let torch: MemorySide;
  try {
    const out = lastJson(execFileSync("/usr/bin/python3", [path.join(__dirname, "..", "..", "bench", "memory_torch.py"), "--threads", String(threads), ...cfg], opts));
    torch = { baselineKiB: out["baseline_kib"] as number, peakKiB: out["peak_kib"] as number, endKiB: out["end_kib"] as number };
  } catch (e) {
    torch = { note: `PyTorch reference failed: ${why(e)}` };
  }
  let tsfast: MemorySide;
  try {
    // TSFAST_THREADS carries the thread count to the child, as defaultThreads() reads it.
    const env = { ...process.env, TSFAST_THREADS: String(threads) };
    tsfast = lastJson(execFileSync(process.execPath, [__filename, "--child", ...cfg], { ...opts, env })) as MemorySide;
  } catch (e) {
    tsfast = { note: `tsfast child failed: ${why(e)}` };
  }
  return { tsfast, torch };
}

/** The child: train on the native engine exactly as the engine bench's ResNet rows do, then report. */
async function child(args: string[]): Promise<void> {
  const arg = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
  const c = { arch: arg("--arch", MEMORY_BENCH.arch), size: Number(arg("--size", "128")), bs: Number(arg("--bs", "32")), warmup: Number(arg("--warmup", "3")), steps: Number(arg("--steps", "5")) };
  await ready();
  await initNative();
  const baselineKiB = statusKiB("VmRSS");

  const nOut = 10;
  const model = await (c.arch === "resnet18" ? resnet18 : resnet34)({ nOut, inputShape: [c.size, c.size, 3] });
  const opt = new NativeAdamOptimizer(1e-3, 0.9, 0.999, 1e-8);
  const x = tf.randomNormal([c.bs, c.size, c.size, 3]);
  const y = tf.oneHot(tf.randomUniform([c.bs], 0, nOut, "int32"), nOut);
  const step = () => {
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor), true);
    loss?.dataSync();
    loss?.dispose();
  };
  for (let i = 0; i < c.warmup + c.steps; i++) step();
  const peakKiB = statusKiB("VmHWM");
  const endKiB = statusKiB("VmRSS");

  // The breakdown, after the peak was read.
  const mem = process.memoryUsage();
  const backend = tf.backend() as unknown as { pooledBytes?: number };
  const detail: Record<string, number> = {
    tensorBytes: tf.memory().numBytes,
    weightBytes: model.weights.reduce((s, w) => s + w.read().size * 4, 0),
    poolIdleBytes: backend.pooledBytes ?? 0,
    v8HeapUsed: mem.heapUsed,
    arrayBuffers: mem.arrayBuffers,
  };
  console.log(JSON.stringify({ baselineKiB, peakKiB, endKiB, detail }));
}

if (require.main === module && process.argv.includes("--child")) {
  child(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
