/**
 * Issue 19, item 1, the two rows the raw-step bench does not cover, each against PyTorch in the same run:
 *
 * 1. **Learner**: a whole `fitOneCycle(1)` epoch of tsfast's `Learner` over in-memory batches (a
 *    `TensorDataLoader`, shuffled), with its defaults: fastai's AdamW (mom 0.9, sqrMom 0.99, eps 1e-5,
 *    wd 0.01, none on BatchNorm and biases), two parameter groups (body at lr/10 via `slice`, the last
 *    layer at lr), the one-cycle schedule set every batch, the training guard, the recorder and the
 *    progress line, then the validation pass. PyTorch (bench/learner_fit_torch.py) runs the same loop by
 *    hand: AdamW over the same two groups and decay split, one-cycle hyper-parameters set per batch,
 *    `loss.item()` per batch, validation under `no_grad`.
 * 2. **trainOnBatch**: plain tfjs-layers, as a user who brings a tfjs model trains it: `model.compile`
 *    with `tf.train.adam(1e-3)`, then `await model.trainOnBatch(x, y)`; against the raw PyTorch Adam
 *    step of bench/torch_ref.py.
 *
 * The first epoch (and the first two trainOnBatch steps) are warm-up, not timed: oneDNN builds its
 * primitives there, on both sides. img/s = (training + validation images) / an epoch's seconds.
 * `npm run bench -- --only learner` runs this file as a server (`--serve`) and alternates its epochs and
 * steps with PyTorch's (bench/alternate.ts), the median of each side.
 *
 * usage: node dist/bench/learner-fit.js [--arch resnet18] [--size 64] [--bs 64] [--batches 8] --learner-only | --serve
 *        `--learner-only` times the Learner's second epoch alone (no PyTorch, no trainOnBatch), to compare
 *        settings of the same engine run after run.
 */
import * as readline from "node:readline";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { resnet18, resnet34 } from "../lib/models/archs";
import { Learner } from "../lib/learner/learner";
import { slice } from "../lib/learner/optimizer";
import { tensorDataLoaders } from "../lib/data/tensors";

export interface FitConfig {
  arch: "resnet18" | "resnet34";
  size: number;
  bs: number;
  /** Training batches per epoch (validation: a quarter of them, at least one). */
  batches: number;
}

const LR = 1e-3;
const why = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];
export const validBatches = (c: FitConfig) => Math.max(1, Math.floor(c.batches / 4));

async function build(c: FitConfig): Promise<tf.LayersModel> {
  return (c.arch === "resnet18" ? resnet18 : resnet34)({ nOut: 10, inputShape: [c.size, c.size, 3] });
}

/** A Learner over random in-memory images; `epoch()` runs one `fitOneCycle(1)` and returns its seconds. */
export async function learnerSession(c: FitConfig): Promise<{ epoch: () => Promise<number>; dispose: () => void }> {
  const model = await build(c);
  const nv = validBatches(c);
  const data = tf.tidy(() => ({
    xt: tf.randomNormal([c.bs * c.batches, c.size, c.size, 3], 0, 1, "float32", 1),
    yt: tf.randomUniform([c.bs * c.batches], 0, 10, "int32", 2),
    xv: tf.randomNormal([c.bs * nv, c.size, c.size, 3], 0, 1, "float32", 3),
    yv: tf.randomUniform([c.bs * nv], 0, 10, "int32", 4),
  }));
  const dls = { ...tensorDataLoaders([data.xt, data.yt], [data.xv, data.yv], { bs: c.bs }), c: 10 };
  // fastai's split of a ResNet: the body, then the head (here the last layer).
  const layers = model.layers;
  const learn = new Learner(dls, model, { splitter: () => [layers.slice(0, -1), layers.slice(-1)] });
  return {
    epoch: async () => {
      const t0 = process.hrtime.bigint();
      await learn.fitOneCycle(1, { lrMax: slice(LR) });
      return Number(process.hrtime.bigint() - t0) / 1e9;
    },
    dispose: () => {
      learn.opt?.dispose();
      model.dispose();
      tf.dispose(Object.values(data));
    },
  };
}

/** Seconds of the second `fitOneCycle(1)` of a Learner over random in-memory images. */
export async function learnerEpochSeconds(c: FitConfig): Promise<number> {
  const s = await learnerSession(c);
  try {
    await s.epoch();
    return await s.epoch();
  } finally {
    s.dispose();
  }
}

/** A compiled tfjs-layers ResNet (`tf.train.adam(1e-3)`); `step()` runs one `trainOnBatch` and returns its seconds. */
export async function trainOnBatchSession(c: FitConfig): Promise<{ step: () => Promise<number>; dispose: () => void }> {
  const model = await build(c);
  model.compile({ optimizer: tf.train.adam(LR), loss: (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.softmaxCrossEntropy(yt, yp) });
  const x = tf.randomNormal([c.bs, c.size, c.size, 3]);
  const y = tf.oneHot(tf.randomUniform([c.bs], 0, 10, "int32"), 10);
  return {
    step: async () => {
      const t0 = process.hrtime.bigint();
      await model.trainOnBatch(x, y);
      return Number(process.hrtime.bigint() - t0) / 1e9;
    },
    dispose: () => {
      tf.dispose([x, y]);
      model.optimizer?.dispose();
      model.dispose();
    },
  };
}

/**
 * The server bench/engine.ts alternates with PyTorch's (bench/alternate.ts): reads "epoch N" (N Learner
 * epochs) or "tob N" (N trainOnBatch steps) a line on stdin and answers {"times": [seconds each]}. Each
 * model is built on its first command and kept, except that the first "tob" lets the Learner go.
 */
async function serve(c: FitConfig): Promise<void> {
  let learner: Awaited<ReturnType<typeof learnerSession>> | undefined;
  let tob: Awaited<ReturnType<typeof trainOnBatchSession>> | undefined;
  const answer = (v: unknown) => process.stdout.write(JSON.stringify(v) + "\n");
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const [cmd, n] = line.trim().split(/\s+/);
    const count = Number(n);
    if ((cmd !== "epoch" && cmd !== "tob") || !Number.isInteger(count) || count < 1) {
      answer({ error: `unknown command '${line.trim()}' (epoch N | tob N)` });
      continue;
    }
    try {
      const times: number[] = [];
      if (cmd === "epoch") {
        learner ??= await learnerSession(c);
        for (let i = 0; i < count; i++) times.push(await learner.epoch());
      } else {
        // as run alone: the Learner is let go before trainOnBatch's model is built
        learner?.dispose();
        learner = undefined;
        tob ??= await trainOnBatchSession(c);
        for (let i = 0; i < count; i++) times.push(await tob.step());
      }
      answer({ times });
    } catch (e) {
      answer({ error: why(e) });
    }
  }
  learner?.dispose();
  tob?.dispose();
}

async function main(): Promise<void> {
  const arg = (n: string, d: string) => (process.argv.includes(`--${n}`) ? process.argv[process.argv.indexOf(`--${n}`) + 1]! : d);
  await ready();
  const c: FitConfig = { arch: arg("arch", "resnet18") as FitConfig["arch"], size: Number(arg("size", "64")), bs: Number(arg("bs", "64")), batches: Number(arg("batches", "8")) };
  if (process.argv.includes("--serve")) return serve(c);
  if (process.argv.includes("--learner-only")) {
    const seconds = await learnerEpochSeconds(c);
    console.log(JSON.stringify({ config: c, backend: tf.getBackend(), learnerEpochS: seconds, learner: (c.bs * (c.batches + validBatches(c))) / seconds }));
    return;
  }
  console.error("learner-fit: give --learner-only (the Learner's epoch alone) or --serve (for npm run bench -- --only learner)");
  process.exit(2);
}

if (require.main === module) void main();
