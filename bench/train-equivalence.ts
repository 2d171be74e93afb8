/**
 * Issue 12's table, re-run in one invocation: the same small conv net, data and recipe trained on
 * each tsfast engine (each in its own process) and on PyTorch (bench/train_equivalence_torch.py),
 * reading the same PNG folders.
 *
 *   data   2,000 Fashion-MNIST training images + 500 validation images (a seeded choice from the
 *          official train and test files), written once as PNG class folders in a temp dir
 *   net    3 × (conv 3×3 stride 2, no bias → BatchNorm(momentum 0.9, eps 1e-5) → ReLU), 16/32/64
 *          filters → global average pool → dense 10; seeded Glorot-uniform kernels
 *   recipe ImageDataLoaders.fromFolder(dir, { bs: 64, seed: 1 }) (grey PNGs decode to 3 equal
 *          channels in [0, 1], no normalisation), Learner with CrossEntropyLossFlat + accuracy,
 *          fitOneCycle(5, { lrMax: 3e-3 }) (fastai's AdamW: 0.9/0.99, eps 1e-5, wd 0.01 on
 *          kernels only)
 *
 * usage: node dist/bench/train-equivalence.js [--engines native,native-nopool,wasm,torch]
 *        [--epochs 5] [--threads 2] [--bn-momentum 0.9] [--pool-epoch] [--only-pool-epoch]
 *
 * `--bn-momentum 0.99` (tfjs-layers' default) trains the tsfast engines with that BatchNorm momentum
 * instead (PyTorch is skipped: its table row would no longer be the same net).
 *
 * `--pool-epoch` adds issue 12's `Learner` timing of the native array pool: resnet18 at 96 px,
 * 1,280 training images (Fashion-MNIST PNGs resized), batch 32, two epochs with the pool on and
 * off, each in its own process, printed side by side.
 *
 * The machines are shared and noisy: seconds are only comparable within one run (the ratio
 * column), never across runs.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { engineInfo, ready } from "../lib/engine/backend";
import { loadFashionMnist, FASHION_MNIST_FOLDERS, type ImageArraySplit } from "../lib/data/datasets/mnist";
import { encodePng } from "../lib/data/datasets/png";
import { Rng } from "../lib/data/random";
import { ImageDataLoaders } from "../lib/data/factories";
import { Resize } from "../lib/data/transforms";
import { Learner } from "../lib/learner/learner";
import { CrossEntropyLossFlat } from "../lib/learner/losses";
import { accuracy } from "../lib/learner/metrics";
import { resnet18 } from "../lib/models/archs";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};

/** What a child (one engine) or the PyTorch script prints as its last JSON line. */
interface RunResult {
  engine: string;
  validAccuracy: number;
  trainLoss: number;
  validLoss: number;
  /** Wall seconds of each epoch (training + validation). */
  epochSeconds: number[];
  banner?: string;
  error?: string;
}

// ---------------------------------------------------------------- data

/** Write `picked` images of `split` as `<dir>/<class folder>/<index>.png`. */
function writePngs(split: ImageArraySplit, picked: number[], dir: string): void {
  const px = split.rows * split.cols;
  for (const f of FASHION_MNIST_FOLDERS) fs.mkdirSync(path.join(dir, f), { recursive: true });
  for (const i of picked) {
    const png = encodePng(split.images.subarray(i * px, (i + 1) * px), split.cols, split.rows, 1);
    fs.writeFileSync(path.join(dir, FASHION_MNIST_FOLDERS[split.labels[i]!]!, `${String(i).padStart(5, "0")}.png`), png);
  }
}

/** `nTrain` training and `nValid` validation images, a seeded choice, as `train/`/`valid/` class folders. */
function writeFmnistFolders(dir: string, nTrain: number, nValid: number, seed: number): void {
  const { train, test } = loadFashionMnist();
  const rng = new Rng(seed);
  writePngs(train, rng.permutation(train.n).slice(0, nTrain), path.join(dir, "train"));
  writePngs(test, rng.permutation(test.n).slice(0, nValid), path.join(dir, "valid"));
}

// ---------------------------------------------------------------- one engine (child process)

function smallNet(bnMomentum: number): tf.LayersModel {
  const input = tf.input({ shape: [28, 28, 3] });
  let h: tf.SymbolicTensor = input;
  [16, 32, 64].forEach((filters, i) => {
    h = tf.layers.conv2d({
      filters, kernelSize: 3, strides: 2, padding: "same", useBias: false,
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 + i }),
    }).apply(h) as tf.SymbolicTensor;
    h = tf.layers.batchNormalization({ momentum: bnMomentum, epsilon: 1e-5 }).apply(h) as tf.SymbolicTensor;
    h = tf.layers.reLU().apply(h) as tf.SymbolicTensor;
  });
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** Times each epoch (training + validation), as the Recorder's `time` column but unrounded. */
function epochTimer(): { times: number[]; beforeEpoch(): void; afterEpoch(): void } {
  let t0 = 0n;
  const times: number[] = [];
  return {
    times,
    beforeEpoch: () => { t0 = process.hrtime.bigint(); },
    afterEpoch: () => { times.push(Number(process.hrtime.bigint() - t0) / 1e9); },
  };
}

async function child(): Promise<void> {
  const kind = opt("--child", "small");
  const dir = opt("--dir", "");
  const epochs = Number(opt("--epochs", "5"));
  await ready();
  const info = engineInfo();
  const timer = epochTimer();
  let learn: Learner;
  if (kind === "small") {
    const dls = await ImageDataLoaders.fromFolder(dir, { bs: 64, seed: 1 });
    learn = new Learner(dls, smallNet(Number(opt("--bn-momentum", "0.9"))), { lossFunc: CrossEntropyLossFlat(), metrics: [accuracy], progress: false, cbs: [timer] });
    await learn.fitOneCycle(epochs, { lrMax: 3e-3 });
  } else {
    const dls = await ImageDataLoaders.fromFolder(dir, { bs: 32, seed: 1, itemTfms: Resize(96) });
    const model = await resnet18({ nOut: 10, inputShape: [96, 96, 3] });
    learn = new Learner(dls, model, { lossFunc: CrossEntropyLossFlat(), metrics: [accuracy], progress: false, cbs: [timer] });
    await learn.fitOneCycle(epochs, { lrMax: 1e-3 });
  }
  const last = learn.recorder.values[learn.recorder.values.length - 1]!;
  const res: RunResult = {
    engine: process.env["TSFAST_BENCH_LABEL"] ?? info.engine,
    trainLoss: last[0]!, validLoss: last[1]!, validAccuracy: last[2]!,
    epochSeconds: timer.times,
    banner: `${info.engine}, ${info.threads} threads, pool ${process.env["TSFAST_NATIVE_POOL"] === "0" ? "off" : "on"}`,
  };
  console.log(JSON.stringify(res));
}

// ---------------------------------------------------------------- driver

const ENGINES: Record<string, Record<string, string>> = {
  native: { TSFAST_BACKEND: "native", TSFAST_NATIVE_POOL: "1" },
  "native-nopool": { TSFAST_BACKEND: "native", TSFAST_NATIVE_POOL: "0" },
  wasm: { TSFAST_BACKEND: "wasm" },
  cpu: { TSFAST_BACKEND: "cpu" },
};

function lastJson(stdout: string): RunResult {
  const line = stdout.split("\n").filter((l) => l.startsWith("{")).pop();
  if (!line) throw new Error(`no result line in:\n${stdout.slice(-2000)}`);
  return JSON.parse(line) as RunResult;
}

function runChild(label: string, kind: string, dir: string, epochs: number, threads: number): RunResult {
  const extra = kind === "small" ? ["--bn-momentum", opt("--bn-momentum", "0.9")] : [];
  const env = { ...process.env, ...ENGINES[label], TSFAST_THREADS: String(threads), TSFAST_BENCH_LABEL: label };
  try {
    const out = execFileSync(process.execPath, [__filename, "--child", kind, "--dir", dir, "--epochs", String(epochs), ...extra], {
      env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 26,
    });
    return lastJson(out);
  } catch (e) {
    return { engine: label, validAccuracy: NaN, trainLoss: NaN, validLoss: NaN, epochSeconds: [], error: (e instanceof Error ? e.message : String(e)).split("\n")[0] };
  }
}

function runTorch(dir: string, epochs: number, threads: number): RunResult {
  const script = path.join(__dirname, "..", "..", "bench", "train_equivalence_torch.py");
  try {
    const out = execFileSync("/usr/bin/python3", [script, "--dir", dir, "--epochs", String(epochs), "--threads", String(threads)], {
      encoding: "utf8", stdio: ["ignore", "pipe", "inherit"],
    });
    return lastJson(out);
  } catch (e) {
    return { engine: "pytorch", validAccuracy: NaN, trainLoss: NaN, validLoss: NaN, epochSeconds: [], error: (e instanceof Error ? e.message : String(e)).split("\n")[0] };
  }
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

async function main(): Promise<void> {
  const bnMomentum = Number(opt("--bn-momentum", "0.9"));
  const engines = opt("--engines", "native,native-nopool,wasm,torch").split(",").filter((e) => bnMomentum === 0.9 || e !== "torch");
  const epochs = Number(opt("--epochs", "5"));
  const threads = Number(opt("--threads", "2"));
  const onlyPool = args.includes("--only-pool-epoch");
  const t0 = Date.now();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-train-eq-"));
  try {
    if (!onlyPool) {
      const dir = path.join(root, "fmnist-2000");
      writeFmnistFolders(dir, 2000, 500, 12);
      console.log(`train-equivalence: 2,000 + 500 Fashion-MNIST PNGs in ${dir}; ${epochs} epochs, ${threads} threads, BatchNorm momentum ${bnMomentum}; one process per engine`);
      const rows: RunResult[] = [];
      for (const e of engines) {
        const r = e === "torch" ? runTorch(dir, epochs, threads) : runChild(e, "small", dir, epochs, threads);
        rows.push(r);
        console.log(`  ${r.engine}: ${r.error ?? `valid accuracy ${(r.validAccuracy * 100).toFixed(1)} %, train loss ${r.trainLoss.toFixed(3)}, epochs ${r.epochSeconds.map((s) => s.toFixed(1)).join("/")} s (${r.banner ?? ""})`}`);
      }
      const torch = rows.find((r) => r.engine === "pytorch");
      const ref = torch && !torch.error ? mean(torch.epochSeconds) : undefined;
      console.log("\n| engine | valid accuracy | final train loss | valid loss | seconds/epoch | time / PyTorch's |");
      console.log("|---|---|---|---|---|---|");
      for (const r of rows) {
        if (r.error) { console.log(`| ${r.engine} | failed: ${r.error} | | | | |`); continue; }
        const s = mean(r.epochSeconds);
        console.log(`| ${r.engine} | ${(r.validAccuracy * 100).toFixed(1)} % | ${r.trainLoss.toFixed(3)} | ${r.validLoss.toFixed(3)} | ${s.toFixed(1)} | ${ref ? (s / ref).toFixed(2) + "×" : "-"} |`);
      }
      const acc = (name: string) => rows.find((r) => r.engine === name && !r.error)?.validAccuracy;
      const nat = acc("native");
      for (const other of ["wasm", "pytorch"]) {
        const o = acc(other);
        if (nat !== undefined && o !== undefined) {
          const gap = Math.abs(nat - o) * 100;
          console.log(`native vs ${other}: ${gap.toFixed(1)} points ${gap <= 2 ? "(within 2)" : "(MORE THAN 2 points apart)"}`);
        }
      }
    }
    if (onlyPool || args.includes("--pool-epoch")) {
      const dir = path.join(root, "fmnist-1280");
      writeFmnistFolders(dir, 1280, 128, 13);
      const pe = Number(opt("--pool-epochs", "2"));
      console.log(`\npool on/off: resnet18 at 96 px (Fashion-MNIST PNGs resized), 1,280 training + 128 validation images, batch 32, ${pe} epochs, ${threads} threads`);
      const on = runChild("native", "resnet", dir, pe, threads);
      const off = runChild("native-nopool", "resnet", dir, pe, threads);
      console.log("\n| native array pool | seconds per epoch (train + valid), epoch by epoch | valid accuracy |");
      console.log("|---|---|---|");
      for (const [name, r] of [["on", on], ["off", off]] as const) {
        console.log(`| ${name} | ${r.error ?? r.epochSeconds.map((s) => s.toFixed(1)).join(" / ")} | ${r.error ? "" : (r.validAccuracy * 100).toFixed(1) + " %"} |`);
      }
      if (!on.error && !off.error) {
        const lastOn = on.epochSeconds[on.epochSeconds.length - 1]!, lastOff = off.epochSeconds[off.epochSeconds.length - 1]!;
        console.log(`last epoch: pool off takes ${(lastOff / lastOn).toFixed(2)}× as long as pool on`);
      }
    }
  } finally {
    if (!args.includes("--keep")) fs.rmSync(root, { recursive: true, force: true });
    else console.log(`kept ${root}`);
  }
  console.log(`\ntrain-equivalence took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

if (args.includes("--child")) {
  child().catch((e) => { console.error(e); process.exit(1); });
} else {
  void main();
}
