/**
 * End to end, lesson-style (issue 19, performance round 2, item 2): lesson 1's recipe on real files,
 * timed whole, against PyTorch + torchvision doing the same recipe (bench/e2e_torch.py) in the same run.
 *
 * tsfast side, through the public API as lesson 1 calls it:
 *   ImageDataLoaders.fromFolder(dir, { validPct: 0.2, seed, itemTfms: Resize(presize),
 *                                      batchTfms: augTransforms({ size }), bs })
 *   visionLearner(dls, resnet18, { pretrained: false, metrics: errorRate })
 *   learn.fineTune(epochs)   // 1 frozen epoch of the head, then `epochs` unfrozen ones
 * What is measured: wall time from building the loaders to the end of fineTune (the files checked,
 * the model built, every JPEG decoded from disk each epoch (no cache), augmentation, training, and
 * validation with the error rate after each epoch). Loading the engine (`ready()`) is not counted,
 * as PyTorch's side does not count Python's start and `import torch`.
 * Both sides start from random weights: pretrained weights would need the internet.
 *
 * The data: `n` JPEGs at photo sizes in 4 class folders (bench/photo-folder.ts, "jpeg"). tsfast's
 * split is written to a JSON file that the PyTorch side reads, so both train and validate on
 * exactly the same files.
 *
 * usage: node dist/bench/e2e.js [--n 2000] [--bs 64] [--size 128] [--presize 160] [--epochs 1]
 *                               [--seed 42] [--workers 2] [--only tsfast|torch]
 * The ratio printed is tsfast's wall time over PyTorch's (issue 19's target: <= 1.0).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  ImageDataLoaders,
  Resize,
  augTransforms,
  visionLearner,
  resnet18,
  errorRate,
  ready,
  engineBanner,
  defaultThreads,
  type Learner,
} from "../lib/index";
import { makeFolder } from "./photo-folder";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
if (only !== undefined && only !== "tsfast" && only !== "torch") throw new Error(`--only must be tsfast or torch, got ${only}`);

interface EpochLog {
  phase: string;
  train_s: number;
  data_wait_s: number;
  /** Of data_wait_s, the wait for the epoch's first batch (the loader starts decoding when the epoch starts); tsfast only. */
  first_wait_s?: number;
  valid_s: number;
  valid_loss: number;
  error_rate: number;
}

/**
 * Times each epoch of a fit: training (and, within it, the time between one batch's end and the
 * next one's start: waiting for the loader), validation, and the epoch's valid loss and error rate.
 */
class PhaseTimer {
  name = "PhaseTimer";
  order = 100;
  readonly epochs: EpochLog[] = [];
  phase = "";
  private t = { train: 0, valid: 0, lastBatchEnd: 0, wait: 0, firstWait: -1, trainS: 0 };
  beforeTrain(): void {
    this.t.train = performance.now();
    this.t.lastBatchEnd = this.t.train;
    this.t.wait = 0;
    this.t.firstWait = -1;
  }
  beforeBatch(learn: Learner): void {
    if (!learn.training) return;
    const w = performance.now() - this.t.lastBatchEnd;
    this.t.wait += w;
    if (this.t.firstWait < 0) this.t.firstWait = w;
  }
  afterBatch(learn: Learner): void {
    if (learn.training) this.t.lastBatchEnd = performance.now();
  }
  afterTrain(): void {
    this.t.trainS = (performance.now() - this.t.train) / 1000;
  }
  beforeValidate(): void {
    this.t.valid = performance.now();
  }
  afterEpoch(learn: Learner): void {
    this.epochs.push({
      phase: this.phase,
      train_s: this.t.trainS,
      data_wait_s: this.t.wait / 1000,
      first_wait_s: Math.max(0, this.t.firstWait) / 1000,
      valid_s: (performance.now() - this.t.valid) / 1000,
      valid_loss: learn.validLoss ?? NaN,
      error_rate: learn.metricValues?.[0] ?? NaN,
    });
  }
  afterFit(): void {
    // fineTune's first fit is the frozen one; the next is unfrozen
    this.phase = "unfrozen";
  }
}

interface SideResult {
  seconds: number;
  build_s?: number;
  epochs: EpochLog[];
  error_rate: number;
  n_train?: number;
  n_valid?: number;
}

function loaderOpts(seed: number, presize: number, size: number, bs: number) {
  return {
    validPct: 0.2,
    seed,
    itemTfms: Resize(presize),
    batchTfms: augTransforms({ size }),
    bs,
    cache: false as const, // the default, spelled out: every epoch decodes the files from disk
  };
}

function writeSplit(file: string, vocab: string[], train: string[], valid: string[]): void {
  fs.writeFileSync(file, JSON.stringify({ vocab, train, valid }));
}

async function runTsfast(dir: string, splitFile: string, o: { seed: number; presize: number; size: number; bs: number; epochs: number }): Promise<SideResult> {
  const timer = new PhaseTimer();
  timer.phase = "frozen";
  const t0 = performance.now();
  const dls = await ImageDataLoaders.fromFolder(dir, loaderOpts(o.seed, o.presize, o.size, o.bs));
  const learn = await visionLearner(dls, resnet18, { pretrained: false, metrics: errorRate, progress: false });
  const tBuilt = performance.now();
  await learn.fineTune(o.epochs, { cbs: [timer] });
  const seconds = (performance.now() - t0) / 1000;
  // Outside the timed part: the split, for the PyTorch side.
  writeSplit(splitFile, dls.vocab, dls.train.items, dls.valid.items);
  learn.model.dispose();
  return {
    seconds,
    build_s: (tBuilt - t0) / 1000,
    epochs: timer.epochs,
    error_rate: timer.epochs[timer.epochs.length - 1]?.error_rate ?? NaN,
    n_train: dls.train.n,
    n_valid: dls.valid.n,
  };
}

function runTorch(splitFile: string, o: { seed: number; presize: number; size: number; bs: number; epochs: number; threads: number; workers: number }): SideResult {
  const script = path.join(__dirname, "../../bench/e2e_torch.py");
  const py = spawnSync(
    "/usr/bin/python3",
    [script, "--split", splitFile, "--bs", String(o.bs), "--size", String(o.size), "--presize", String(o.presize),
      "--epochs", String(o.epochs), "--threads", String(o.threads), "--workers", String(o.workers), "--seed", "0"],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
  );
  if (py.status !== 0) throw new Error(`PyTorch side failed (exit ${py.status})`);
  return JSON.parse(py.stdout.trim().split("\n").pop()!) as SideResult;
}

function describe(who: string, r: SideResult): void {
  const phases = r.epochs
    .map((e) => `${e.phase} ${e.train_s.toFixed(1)} s train (${e.data_wait_s.toFixed(1)} s waiting for data${e.first_wait_s !== undefined ? `, ${e.first_wait_s.toFixed(1)} s of it for the first batch` : ""}) + ${e.valid_s.toFixed(1)} s valid, error ${(e.error_rate * 100).toFixed(1)} %`)
    .join("; ");
  const build = r.build_s !== undefined ? `, ${r.build_s.toFixed(1)} s to build loaders + learner` : "";
  console.log(`${who}: ${r.seconds.toFixed(1)} s total${build}; ${phases}`);
}

async function main(): Promise<void> {
  const n = arg("n", 2000);
  const bs = arg("bs", 64);
  const size = arg("size", 128);
  const presize = arg("presize", 160);
  const epochs = arg("epochs", 1);
  const seed = arg("seed", 42);
  const workers = arg("workers", 2);
  const dir = await makeFolder(n, "jpeg");
  await ready();
  const threads = defaultThreads();
  console.log(engineBanner());
  console.log(
    `e2e bench: ${n} JPEGs in ${dir}, Resize(${presize}) + augTransforms({ size: ${size} }), resnet18 from random weights ` +
      `(pretrained: false on both sides), fineTune(${epochs}) = 1 frozen + ${epochs} unfrozen epochs, bs ${bs}, ` +
      `${threads} threads, ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}`,
  );
  const splitFile = path.join(os.tmpdir(), `tsfast-bench-e2e-split-${n}-${seed}.json`);
  const o = { seed, presize, size, bs, epochs };
  let ours: SideResult | undefined;
  if (only !== "torch") {
    ours = await runTsfast(dir, splitFile, o);
    describe("tsfast", ours);
  } else {
    // Only the split is needed: build the loaders (untimed) and write it.
    const dls = await ImageDataLoaders.fromFolder(dir, loaderOpts(seed, presize, size, bs));
    writeSplit(splitFile, dls.vocab, dls.train.items, dls.valid.items);
  }
  let ref: SideResult | undefined;
  if (only !== "tsfast") {
    ref = runTorch(splitFile, { ...o, threads, workers });
    describe(`PyTorch (torchvision, DataLoader ${workers} workers, ${threads} threads)`, ref);
  }
  if (ours && ref) {
    console.log(
      `tsfast/PyTorch wall time: ${(ours.seconds / ref.seconds).toFixed(2)}x (target <= 1.0; below 1 means tsfast is faster); ` +
        `final error rate tsfast ${(ours.error_rate * 100).toFixed(1)} %, PyTorch ${(ref.error_rate * 100).toFixed(1)} % ` +
        `(random init and few epochs: they differ)`,
    );
    console.log(`load average after: ${os.loadavg()[0]!.toFixed(1)} (wall times only compare on a quiet machine)`);
  }
  console.log(JSON.stringify({ bench: "e2e", n, bs, size, presize, epochs, threads, tsfast: ours, torch: ref }));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
