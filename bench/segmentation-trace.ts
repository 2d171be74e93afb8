/**
 * Lesson 7's recipe on tsfast, traced so PyTorch can replay it (bench/segmentation_replay.py): the
 * U-Net's weights right after `unetLearner` (the random decoder included), every training batch as
 * the model saw it (normalised, augmented), every step's loss and per-group hyper-parameters, the
 * validation batches, and the metrics after `fineTune`.
 *
 *   node dist/bench/segmentation-trace.js --out /tmp/segtrace [--noaug] [--peek] [--data-only] [--seed 42] [--epochs 5] [--lr 5e-3] [--n 800]
 *
 * `--peek` calls `dls.showBatch` first, as the lesson does; `--data-only` writes one epoch of training
 * batches (after the peek) and stops.
 *
 * Writes OUT/init.safetensors (PyTorch names), OUT/train.safetensors (`x<i>` NCHW, `y<i>`),
 * OUT/valid.safetensors, OUT/trace.json (steps, metrics, seconds).
 */
import * as fs from "node:fs";
import * as nodePath from "node:path";
import * as tf from "../lib/engine/tf";
import { engineInfo, ready } from "../lib/engine/backend";
import { emojiScenes } from "../lib/data/datasets/scenes";
import { SegmentationDataLoaders } from "../lib/data/factories";
import { FuncSplitter } from "../lib/data/items";
import { Resize } from "../lib/data/transforms";
import { augTransforms } from "../lib/data/augment";
import { unetLearner } from "../lib/models/unet";
import { xresnet18 } from "../lib/models/archs";
import { foregroundAcc, DiceMulti } from "../lib/learner/metrics";
import { saveWeights } from "../lib/models/weights";
import { writeSafetensors, type SafeTensorInput } from "../lib/models/safetensors";
import type { Learner } from "../lib/learner/learner";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};

/** NHWC → NCHW float data (images) or the mask's class indices as floats. */
function toTorch(t: tf.Tensor): SafeTensorInput {
  if (t.rank === 4) {
    const x = tf.tidy(() => tf.transpose(t, [0, 3, 1, 2]));
    const out = { shape: x.shape, data: Float32Array.from(x.dataSync()), dtype: "F32" as const };
    x.dispose();
    return out;
  }
  return { shape: t.shape, data: Float32Array.from(t.dataSync()), dtype: "F32" };
}

/** One epoch of `dl` as `x<i>` / `y<i>` in a safetensors file; returns the number of batches. */
async function writeEpoch(dl: AsyncIterable<{ xb: tf.Tensor; yb: tf.Tensor }>, file: string): Promise<number> {
  const out = new Map<string, SafeTensorInput>();
  let i = 0;
  for await (const b of dl) {
    out.set(`x${i}`, toTorch(b.xb));
    out.set(`y${i}`, toTorch(b.yb));
    tf.dispose([b.xb, b.yb]);
    i++;
  }
  await writeSafetensors(file, out);
  return i;
}

async function main(): Promise<void> {
  await ready();
  const out = opt("--out", "/tmp/segtrace");
  const epochs = Number(opt("--epochs", "5"));
  const lr = Number(opt("--lr", "5e-3"));
  const n = Number(opt("--n", "800"));
  const aug = !args.includes("--noaug");
  const seed = Number(opt("--seed", "42")); // the lesson's DataLoaders seed (shuffles and augmentation)
  fs.mkdirSync(out, { recursive: true });
  const path = await emojiScenes();
  const fnames = fs.readdirSync(nodePath.join(path, "images")).filter((f) => f.endsWith(".png")).sort().slice(0, n);
  const validNames = new Set(fs.readFileSync(nodePath.join(path, "labels.csv"), "utf8").trim().split("\n").slice(1)
    .map((l) => l.split(",")).filter((r) => ["true", "1", "yes"].includes(r[r.length - 1]!.trim().toLowerCase())).map((r) => r[0]!));
  const codes = fs.readFileSync(nodePath.join(path, "codes.txt"), "utf8").split("\n").map((s) => s.trim()).filter(Boolean);
  const size = 64;
  const dls = await SegmentationDataLoaders.fromLabelFunc(
    path, fnames.map((f) => nodePath.join("images", f)), (file) => nodePath.join(path, "masks", nodePath.basename(file)),
    {
      codes: codes, bs: 16, seed: seed,
      splitter: FuncSplitter((file: string) => validNames.has(nodePath.basename(file))),
      itemTfms: Resize(size),
      ...(aug ? { batchTfms: augTransforms({ size, maxLighting: 0.1, maxZoom: 1.05, maxWarp: 0 }) } : {}),
    },
  );
  // --peek: what the lesson does before its learner (showBatch draws one training batch)
  if (args.includes("--peek")) await dls.showBatch({ maxN: 6 });
  if (args.includes("--data-only")) {
    // one epoch of training batches after the peek, for an alignment check of masks and pictures
    const n = await writeEpoch(dls.train, nodePath.join(out, "train.safetensors"));
    console.log(`${n} training batches written`);
    return;
  }
  const learn = await unetLearner(dls, xresnet18, { pretrained: "shipped", metrics: [foregroundAcc(), DiceMulti()], progress: false });
  await saveWeights(learn.model, nodePath.join(out, "init.safetensors"));
  const batches = new Map<string, SafeTensorInput>();
  const steps: { loss: number; hypers: unknown[] }[] = [];
  const epochLog: (string | number)[][] = [];
  const tracer = {
    name: "Tracer",
    order: 100,
    afterBatch(l: Learner): void {
      if (!l.training) return;
      const i = steps.length;
      batches.set(`x${i}`, toTorch(l.xb!));
      batches.set(`y${i}`, toTorch(l.yb!));
      steps.push({ loss: l.lossValue!, hypers: l.opt!.hypers.map((h) => ({ ...h })) });
    },
    afterEpoch(l: Learner): void {
      epochLog.push(l.recorder.log.slice());
    },
  };
  const t0 = Date.now();
  await learn.fineTune(epochs, { baseLr: lr, cbs: [tracer] });
  const seconds = (Date.now() - t0) / 1000;
  const [validLoss, fgAcc, dice] = await learn.validate();
  await writeEpoch(dls.valid, nodePath.join(out, "valid.safetensors"));
  await writeSafetensors(nodePath.join(out, "train.safetensors"), batches);
  const trace = { engine: engineInfo().backend, seed, aug, epochs, lr, seconds, validLoss, foregroundAcc: fgAcc, dice, epochLog, steps };
  fs.writeFileSync(nodePath.join(out, "trace.json"), JSON.stringify(trace));
  console.log(JSON.stringify({ engine: trace.engine, seed, aug, seconds, validLoss, foregroundAcc: fgAcc, dice, epochLog }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
