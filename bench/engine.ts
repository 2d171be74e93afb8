/**
 * Engine benchmark: ResNet (and U-Net) training and inference img/s on each tfjs backend, side by
 * side with PyTorch (bench/torch_ref.py) run in the same invocation on the same number of threads.
 * The U-Net row is `createUnetModel(resnet18, 5, size)` against bench/unet_torch.py's port,
 * 5 classes per pixel.
 *
 * The tabular row (bench/tabular.ts) times a `tabularLearner` epoch on a 100k-row table against
 * bench/tabular_torch.py.
 * The collab row (bench/collab.ts): EmbeddingDotBias, 50 factors, batch 64 on MovieLens, epoch time
 * against bench/collab_torch.py in the same run, on the engine that is active (native by default).
 * The LSTM row (bench/lstm.ts): a language model's training tokens/s against PyTorch's nn.LSTM.
 * The Learner and trainOnBatch rows (bench/learner-fit.ts): a whole `fitOneCycle` epoch of tsfast's
 * `Learner` against PyTorch's hand-written loop of the same recipe, and tfjs-layers `trainOnBatch` with
 * `tf.train.adam` against PyTorch's raw Adam step, at the native ResNet configurations, each in a fresh
 * child process.
 * The memory row (bench/memory.ts): peak resident memory of training ResNet-34 at 128 px, batch 32,
 * tsfast (native engine) against PyTorch, each in a fresh child process.
 * The data pipeline, lesson 1 end to end and the wasm depthwise rows (bench/script-rows.ts): bench/data.ts,
 * bench/e2e.ts and bench/depthwise-wasm.ts, each run whole in a child process, their ratios in one table each.
 *
 * usage: node dist/bench/engine.js [--quick] [--backends native,wasm,cpu] [--only resnet18|resnet34|unet_resnet18|learner|tabular|collab|lstm|awd_lstm|memory|data|e2e|depthwise]
 * A training step is forward + backward + Adam; warm-up steps are excluded, and img/s comes from
 * the median step time on both sides (the machines are shared: means swing with other load). On the
 * native engine the two sides' steps (and the Learner rows' epochs) run in turns, PyTorch as a server
 * (bench/alternate.ts), so that a slow spell of the machine falls on both.
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { defaultThreads, ready } from "../lib/engine/backend";
import { resnet18, resnet34 } from "../lib/models/archs";
import { createUnetModel } from "../lib/models/unet";
import { getConvBnFusion, setConvBnFusion } from "../lib/engine/lean-forward";
import { NativeAdamOptimizer } from "../lib/engine/native/optimizer";
import { TABULAR_BS, TABULAR_ROWS, tabularEpochSeconds, torchTabularEpochSeconds } from "./tabular";
import { collabBench } from "./collab";
import { awdLstmBench, AWD_LSTM_BENCH, lstmBench, LSTM_BENCH, type LstmBench } from "./lstm";
import { memoryBench, MEMORY_BENCH } from "./memory";
import { validBatches } from "./learner-fit";
import { alternate, LineServer, median, timeSync, type Side } from "./alternate";
import { dataRow, depthwiseRows, e2eRow } from "./script-rows";

interface Config { arch: "resnet18" | "resnet34" | "unet_resnet18"; size: number; bs: number; steps: number }
interface Result { train?: number; infer?: number; inferApart?: number; note?: string }

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const backendsArg = args[args.indexOf("--backends") + 1];
const backends = args.includes("--backends") && backendsArg ? backendsArg.split(",") : ["native", "wasm", "cpu"];
const WARMUP = 2;
/** The native inference rows' rounds per training step of the config (see runNativeAndTorch). */
const INFER_ROUNDS_PER_STEP = 3;
const onlyArg = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined;
const ONLY = ["resnet18", "resnet34", "unet_resnet18", "learner", "tabular", "collab", "lstm", "awd_lstm", "memory", "data", "e2e", "depthwise"];
if (args.includes("--only") && (onlyArg === undefined || !ONLY.includes(onlyArg))) {
  console.error(`bench: --only takes one of ${ONLY.join(", ")} (got ${onlyArg === undefined ? "nothing" : `'${onlyArg}'`})`);
  process.exit(2);
}
const allConfigs: Config[] = quick
  ? [{ arch: "resnet18", size: 64, bs: 64, steps: 3 }]
  : [
      { arch: "resnet18", size: 64, bs: 64, steps: 8 },
      { arch: "resnet18", size: 128, bs: 32, steps: 6 },
      { arch: "resnet34", size: 64, bs: 64, steps: 4 },
      { arch: "resnet34", size: 128, bs: 32, steps: 4 },
      { arch: "unet_resnet18", size: 128, bs: 8, steps: 3 },
    ];
const configs = allConfigs.filter((c) => !onlyArg || c.arch === onlyArg);
const learnerConfigs = allConfigs.filter((c): c is Config & { arch: "resnet18" | "resnet34" } => c.arch !== "unet_resnet18");
const key = (c: Config) => `${c.arch}:${c.size}:${c.bs}:${c.steps}`;

/** Seconds per step: the median of `steps` timed steps after the warm-up (robust to a busy machine). */
function time(fn: () => void, steps: number): number {
  timeSync(fn, WARMUP);
  return median(timeSync(fn, steps));
}

/**
 * A model of the config with one batch, and its steps: training, inference, and inference with the native
 * engine's fused convolutions off (`inferApart`: each convolution, BatchNorm, ReLU and residual add apart,
 * lib/engine/native/conv-bn.ts), to show what the fusion gives.
 */
interface Steps { train: () => void; infer: () => void; inferApart: () => void; dispose: () => void }

const why = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];

async function buildSteps(c: Config): Promise<Steps> {
  // tsfast's own torchvision-layout ResNet (explicit padding, as PyTorch), 10 classes; the U-Net: 5 per pixel.
  const unet = c.arch === "unet_resnet18";
  const nOut = unet ? 5 : 10;
  const model = unet
    ? (await createUnetModel(resnet18, nOut, c.size, { pretrained: false })).model
    : await (c.arch === "resnet18" ? resnet18 : resnet34)({ nOut, inputShape: [c.size, c.size, 3] });
  // On "native" the fused Adam step; elsewhere it is tfjs's own Adam.
  const opt = new NativeAdamOptimizer(1e-3, 0.9, 0.999, 1e-8);
  const x = tf.randomNormal([c.bs, c.size, c.size, 3]);
  const y = tf.oneHot(tf.randomUniform(unet ? [c.bs, c.size, c.size] : [c.bs], 0, nOut, "int32"), nOut);
  const predict = () => void tf.tidy(() => tf.sum(model.predict(x, { batchSize: c.bs }) as tf.Tensor).dataSync());
  return {
    train: () => {
      const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor), true);
      loss?.dataSync();
      loss?.dispose();
    },
    infer: predict,
    inferApart: () => {
      const fusion = getConvBnFusion();
      setConvBnFusion(undefined);
      try {
        predict();
      } finally {
        setConvBnFusion(fusion);
      }
    },
    dispose: () => {
      x.dispose();
      y.dispose();
      opt.dispose();
      model.dispose();
    },
  };
}

/** The wasm and cpu rows: one engine alone, `steps` timed steps each (no PyTorch alongside). */
async function runTf(c: Config, trainToo: boolean, steps: number): Promise<Result> {
  const s = await buildSteps(c);
  const res: Result = {};
  const note = (what: string, e: unknown) => (res.note = `${res.note ? res.note + "; " : ""}${what}: ${why(e)}`);
  try {
    if (trainToo) {
      try {
        res.train = c.bs / time(s.train, steps);
      } catch (e) {
        note("training", e);
      }
    }
    try {
      res.infer = c.bs / time(s.infer, steps);
    } catch (e) {
      note("inference", e);
    }
  } finally {
    s.dispose();
  }
  return res;
}

/** Rounds for `alternate`: at least `n`, and even, so that each side runs first as often as second. */
const evenRounds = (n: number) => n + (n % 2);

/**
 * The native rows against PyTorch (bench/torch_ref.py as a server), their steps in turns
 * (bench/alternate.ts): training first, then inference three ways (tsfast, tsfast with its fused
 * convolutions off, PyTorch).
 */
async function runNativeAndTorch(c: Config, threads: number): Promise<{ r: Result; p: Result }> {
  const s = await buildSteps(c);
  const script = path.join(__dirname, "..", "..", "bench", "torch_ref.py");
  const torch = new LineServer("PyTorch", "/usr/bin/python3", [script, "--threads", String(threads), "--serve", `${c.arch}:${c.size}:${c.bs}`]);
  const sync = (f: () => void) => (n: number) => Promise.resolve(timeSync(f, n));
  try {
    const train = await alternate({ tsfast: sync(s.train), pytorch: (n) => torch.times("train", n) }, evenRounds(c.steps), WARMUP);
    const inferSides: Record<string, Side> = { tsfast: sync(s.infer), apart: sync(s.inferApart), pytorch: (n) => torch.times("infer", n) };
    // an inference step takes a quarter of a training step or less: three times as many rounds
    const infer = await alternate(inferSides, evenRounds(INFER_ROUNDS_PER_STEP * c.steps), WARMUP);
    const img = (sec?: number) => (sec === undefined ? undefined : c.bs / sec);
    const note = [train.note, infer.note].filter(Boolean).join("; ") || undefined;
    return {
      r: { train: img(train.median.tsfast), infer: img(infer.median.tsfast), inferApart: img(infer.median.apart), note },
      p: { train: img(train.median.pytorch), infer: img(infer.median.pytorch) },
    };
  } finally {
    s.dispose();
    torch.close();
  }
}

async function useBackend(name: string): Promise<string | undefined> {
  try {
    if (name === "native") await (require("../lib/engine/native") as typeof import("../lib/engine/native")).initNative();
    else if (name === "wasm") await (require("../lib/engine/wasm") as typeof import("../lib/engine/wasm")).initWasm();
    else {
      require("@tensorflow/tfjs-backend-cpu");
      await tf.setBackend("cpu");
    }
    return undefined;
  } catch (e) {
    return (e instanceof Error ? e.message : String(e)).split("\n")[0];
  }
}

function torchRef(threads: number, only: Config[]): Map<string, Result> {
  const out = new Map<string, Result>();
  const script = path.join(__dirname, "..", "..", "bench", "torch_ref.py");
  try {
    const stdout = execFileSync("/usr/bin/python3", [script, "--threads", String(threads), "--warmup", String(WARMUP), ...only.flatMap((c) => ["--config", key(c)])], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    for (const line of stdout.split("\n").filter((l) => l.startsWith("{"))) {
      const r = JSON.parse(line) as { config: string; train: number; infer: number };
      out.set(r.config, { train: r.train, infer: r.infer });
    }
  } catch (e) {
    const note = `PyTorch reference failed: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`;
    for (const c of only) out.set(key(c), { note });
  }
  return out;
}

async function main(): Promise<void> {
  // Settle the ladder once first, so the model builders' own `ready()` never switches backends.
  await ready();
  const threads = defaultThreads();
  const t0 = Date.now();
  console.log(`engine bench: ${threads} threads, ${quick ? "quick" : "full"} run`);
  // ---- the ResNet rows (skipped when --only names another row)
  if (configs.length > 0) {
    const rows: { config: Config; backend: string; r: Result }[] = [];
    const ref = new Map<string, Result>();
    for (const b of backends) {
      const why = await useBackend(b);
      for (const c of configs) {
        const smallest = c === configs[0];
        if (why) { rows.push({ config: c, backend: b, r: { note: why } }); continue; }
        if (b !== "native" && !smallest) continue;
        if (b === "native") {
          // PyTorch's steps alternate with ours (bench/alternate.ts), so both see the same machine load.
          const { r, p } = await runNativeAndTorch(c, threads);
          ref.set(key(c), p);
          rows.push({ config: c, backend: b, r });
          console.log(`  pytorch ${key(c)}: train ${p.train?.toFixed(1) ?? "-"} img/s, infer ${p.infer?.toFixed(1) ?? "-"} img/s`);
          console.log(`  ${b} ${key(c)}: train ${r.train?.toFixed(1) ?? "-"} img/s, infer ${r.infer?.toFixed(1) ?? "-"} img/s, fusion off ${r.inferApart?.toFixed(1) ?? "-"} img/s ${r.note ?? ""}`);
          continue;
        }
        // The JS/wasm engines are measured at the smallest config only, with one timed step.
        const r = b === "cpu"
          ? { ...(await runTf({ ...c, bs: 8 }, false, 1)), note: "batch 8, inference only (pure-JS training ~0.5 img/s)" }
          : await runTf(c, true, 1);
        rows.push({ config: c, backend: b, r });
        console.log(`  ${b} ${key(c)}: train ${r.train?.toFixed(1) ?? "-"} img/s, infer ${r.infer?.toFixed(1) ?? "-"} img/s ${r.note ?? ""}`);
      }
    }
    if (!backends.includes("native")) for (const [k, v] of torchRef(threads, configs)) ref.set(k, v);
    const fmt = (v?: number) => (v === undefined ? "-" : v.toFixed(1));
    const ratio = (a?: number, b?: number) => (a === undefined || b === undefined ? "-" : (a / b).toFixed(2) + "x");
    console.log("\n| model | px | batch | backend | train img/s | PyTorch train | ratio | infer img/s | PyTorch infer | ratio | infer, fusion off | ratio | note |");
    console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (const { config: c, backend, r } of rows) {
      const p = ref.get(key(c)) ?? {};
      console.log(`| ${c.arch} | ${c.size} | ${c.bs} | ${backend} | ${fmt(r.train)} | ${fmt(p.train)} | ${ratio(r.train, p.train)} | ${fmt(r.infer)} | ${fmt(p.infer)} | ${ratio(r.infer, p.infer)} | ${fmt(r.inferApart)} | ${ratio(r.inferApart, p.infer)} | ${r.note ?? p.note ?? ""} |`);
    }
  }
  if (!onlyArg || onlyArg === "learner") await learnerRows(threads);
  if (!onlyArg || onlyArg === "tabular") await tabularRows(threads);
  // ---- collaborative filtering (bench/collab.ts), on the first engine asked for
  if (!onlyArg || onlyArg === "collab") {
    await useBackend(backends[0]!);
    const c = await collabBench(threads, quick ? 120 : 400);
    const s = (v?: number) => (v === undefined ? "-" : v.toFixed(1));
    const speed = c.tsfastEpochS && c.torchEpochS ? `${(c.torchEpochS / c.tsfastEpochS).toFixed(2)}x` : "-";
    console.log(`\n| collab model | batch | backend | epoch s (from ${c.batches} batches) | PyTorch epoch s | speed vs PyTorch | note |`);
    console.log("|---|---|---|---|---|---|---|");
    console.log(`| EmbeddingDotBias, 50 factors | 64 | ${tf.getBackend()} | ${s(c.tsfastEpochS)} | ${s(c.torchEpochS)} | ${speed} | ${c.note ?? ""} |`);
  }
  // ---- LSTM language models (bench/lstm.ts), on the first engine asked for
  const lstmRow = async (title: string, c: typeof LSTM_BENCH, shape: string, run: () => Promise<LstmBench>) => {
    await useBackend(backends[0]!);
    const r = await run();
    const s = (v?: number) => (v === undefined ? "-" : v.toFixed(0));
    const speed = r.tsfastTokensPerS && r.torchTokensPerS ? `${(r.tsfastTokensPerS / r.torchTokensPerS).toFixed(2)}x` : "-";
    console.log(`\n| ${title} | batch × seq | backend | train tokens/s | PyTorch tokens/s | ratio | note |`);
    console.log("|---|---|---|---|---|---|---|");
    console.log(`| ${shape} | ${c.bs} × ${c.seqLen} | ${tf.getBackend()} | ${s(r.tsfastTokensPerS)} | ${s(r.torchTokensPerS)} | ${speed} | ${r.note ?? ""} |`);
  };
  if (!onlyArg || onlyArg === "lstm") {
    const c = LSTM_BENCH;
    await lstmRow("LSTM language model", c, `vocab ${c.vocab}, emb ${c.emb}, ${c.layers} × LSTM(${c.hidden})`, () => lstmBench(threads, quick ? 6 : 12));
  }
  if (!onlyArg || onlyArg === "awd_lstm") {
    const c = AWD_LSTM_BENCH;
    const title = "AWD-LSTM language model (dropouts, weight drop, tied, AR/TAR)";
    await lstmRow(title, c, `vocab ${c.vocab}, emb ${c.emb}, ${c.layers} LSTMs (${c.hidden})`, () => awdLstmBench(threads, quick ? 5 : 10));
  }
  // ---- peak memory of ResNet-34 training (bench/memory.ts): fresh child processes, native engine
  if (!onlyArg || onlyArg === "memory") {
    const c = MEMORY_BENCH;
    const m = memoryBench(threads, c);
    const mib = (kib?: number) => (kib === undefined ? "-" : (kib / 1024).toFixed(0));
    const ratio = m.tsfast.peakKiB && m.torch.peakKiB ? `${(m.tsfast.peakKiB / m.torch.peakKiB).toFixed(2)}x` : "-";
    if (m.tsfast.detail) {
      const d = Object.entries(m.tsfast.detail).map(([k, v]) => `${k} ${(v / 2 ** 20).toFixed(0)}`).join(", ");
      console.log(`  tsfast after training (MiB): ${d}`);
    }
    console.log(`\n| memory: model | px | batch | steps | tsfast peak RSS MiB | PyTorch peak RSS MiB | ratio (target <= 1) | tsfast after imports MiB | PyTorch after imports MiB | note |`);
    console.log("|---|---|---|---|---|---|---|---|---|---|");
    console.log(`| ${c.arch} train | ${c.size} | ${c.bs} | ${c.warmup} + ${c.steps} | ${mib(m.tsfast.peakKiB)} | ${mib(m.torch.peakKiB)} | ${ratio} | ${mib(m.tsfast.baselineKiB)} | ${mib(m.torch.baselineKiB)} | ${[m.tsfast.note, m.torch.note].filter(Boolean).join("; ")} |`);
  }
  // ---- issue 19's rows with a script of their own (bench/script-rows.ts), each in a fresh child process
  if (!onlyArg || onlyArg === "data") dataRow(quick);
  if (!onlyArg || onlyArg === "e2e") e2eRow(quick);
  if (!onlyArg || onlyArg === "depthwise") depthwiseRows(quick);
  console.log(`\nbench took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

// ---- the Learner and trainOnBatch rows (bench/learner-fit.ts), native engine. tsfast's side runs in a fresh
// child process (a Learner epoch in this process, after the other rows' models, engines and pooled arrays, ran
// up to a third slower), as a server, and so do PyTorch's loop and raw step: the epochs alternate with
// PyTorch's loop, then the trainOnBatch steps with PyTorch's raw Adam steps (bench/alternate.ts).
const LEARNER_ROUNDS = 4;

async function learnerRows(threads: number): Promise<void> {
  const fmt = (v?: number) => (v === undefined ? "-" : v.toFixed(1));
  const ratio = (a?: number, b?: number) => (a === undefined || b === undefined ? "-" : (a / b).toFixed(2) + "x");
  const lines = [
    `| model | px | batch | batches (train + valid) | Learner img/s (median of ${LEARNER_ROUNDS} epochs) | PyTorch loop img/s | ratio | trainOnBatch img/s | PyTorch step img/s | ratio | note |`,
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  const benchDir = path.join(__dirname, "..", "..", "bench");
  for (const c of learnerConfigs) {
    // an epoch is one timing: twice the raw rows' steps, so that it lasts a few seconds
    const fc = { arch: c.arch, size: c.size, bs: c.bs, batches: 2 * c.steps };
    const shape = ["--arch", c.arch, "--size", String(c.size), "--bs", String(c.bs)];
    const ours = new LineServer("tsfast", process.execPath, [path.join(__dirname, "learner-fit.js"), ...shape, "--batches", String(fc.batches), "--serve"], { env: { ...process.env, TSFAST_BACKEND: "native" } });
    const loop = new LineServer("PyTorch loop", "/usr/bin/python3", [path.join(benchDir, "learner_fit_torch.py"), ...shape, "--batches", String(fc.batches), "--valid-batches", String(validBatches(fc)), "--threads", String(threads), "--serve"]);
    let step: LineServer | undefined;
    const images = c.bs * (fc.batches + validBatches(fc));
    try {
      // the first epoch and the first two steps of each side are warm-up
      const fit = await alternate({ tsfast: (n) => ours.times("epoch", n), pytorch: (n) => loop.times("epoch", n) }, LEARNER_ROUNDS, 1);
      loop.close();
      const torchStep = new LineServer("PyTorch step", "/usr/bin/python3", [path.join(benchDir, "torch_ref.py"), "--threads", String(threads), "--serve", `${c.arch}:${c.size}:${c.bs}`]);
      step = torchStep;
      const tob = await alternate({ tsfast: (n) => ours.times("tob", n), pytorch: (n) => torchStep.times("train", n) }, evenRounds(c.steps), WARMUP);
      const per = (imgs: number, sec?: number) => (sec === undefined ? undefined : imgs / sec);
      const r = { learner: per(images, fit.median.tsfast), loop: per(images, fit.median.pytorch), tob: per(c.bs, tob.median.tsfast), step: per(c.bs, tob.median.pytorch) };
      const note = [fit.note, tob.note].filter(Boolean).join("; ");
      console.log(`  learner ${key(c)}: Learner ${fmt(r.learner)} vs PyTorch loop ${fmt(r.loop)} img/s; trainOnBatch ${fmt(r.tob)} vs ${fmt(r.step)} img/s ${note}`);
      lines.push(`| ${c.arch} | ${c.size} | ${c.bs} | ${fc.batches} + ${validBatches(fc)} | ${fmt(r.learner)} | ${fmt(r.loop)} | ${ratio(r.learner, r.loop)} | ${fmt(r.tob)} | ${fmt(r.step)} | ${ratio(r.tob, r.step)} | ${note} |`);
    } finally {
      for (const srv of [ours, loop, step]) srv?.close();
    }
  }
  console.log("\n" + lines.join("\n"));
}

// ---- tables: seconds per epoch of tabularLearner vs PyTorch, each backend measured right after PyTorch
async function tabularRows(threads: number): Promise<void> {
  const lines: string[] = [];
  for (const b of backends.filter((x) => x !== "cpu")) {
    const why = await useBackend(b);
    const p = torchTabularEpochSeconds(threads);
    const ours = why ? undefined : await tabularEpochSeconds();
    const ratio = ours !== undefined && p.seconds !== undefined ? `${(p.seconds / ours).toFixed(2)}x` : "-";
    console.log(`  tabular ${b}: ${ours?.toFixed(2) ?? "-"} s/epoch, PyTorch ${p.seconds?.toFixed(2) ?? "-"} s/epoch ${why ?? p.note ?? ""}`);
    lines.push(`| tabular [200, 100] | ${TABULAR_ROWS} rows | ${TABULAR_BS} | ${b} | ${ours?.toFixed(2) ?? "-"} | ${p.seconds?.toFixed(2) ?? "-"} | ${ratio} | ${why ?? p.note ?? ""} |`);
  }
  console.log("\n| model | data | batch | backend | s/epoch | PyTorch s/epoch | speed vs PyTorch | note |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const l of lines) console.log(l);
}
// ---- end tables

void main();
