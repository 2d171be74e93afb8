/**
 * The collaborative-filtering row of `npm run bench`: `EmbeddingDotBias` (50 factors, yRange
 * [0, 5.5]) on MovieLens, batch 64, trained by tsfast's `Learner` (MSE, fastai's Adam with wd 0.1)
 * against bench/collab_torch.py's port trained by `torch.optim.AdamW`, the same number of batches,
 * run one after the other in the same invocation. The first `WARMUP` batches are not timed on
 * either side; the epoch time is the timed batches' time scaled to a full epoch (1,251 batches).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { Learner } from "../lib/learner/learner";
import { MSELossFlat } from "../lib/learner/losses";
import { CollabDataLoaders } from "../lib/collab/data";
import { embeddingDotBias } from "../lib/models/collab";
import { tsfastPath } from "../lib/data/external";
import type { BatchLike, DataLoaderLike } from "../lib/learner/contracts";
import { batchTimer } from "./batch-timer";

const WARMUP = 20;

/** The first `n` batches of `dl`. */
function firstBatches(dl: DataLoaderLike, n: number): DataLoaderLike {
  return {
    length: Math.min(n, dl.length),
    async *[Symbol.asyncIterator](): AsyncIterator<BatchLike> {
      let k = 0;
      for await (const b of dl) {
        if (k++ >= n) {
          tf.dispose([b.xb, b.yb]);
          break;
        }
        yield b;
      }
    },
  };
}

export interface CollabBench {
  batches: number;
  epochBatches: number;
  tsfastEpochS?: number;
  torchEpochS?: number;
  note?: string;
}

/** Time `batches` training batches on both sides (see the module note). */
export async function collabBench(threads: number, batches: number): Promise<CollabBench> {
  const csv = path.join(tsfastPath("data"), "movielens", "ratings.csv");
  if (!fs.existsSync(csv)) return { batches, epochBatches: 0, note: `no ${csv}: run npm run datasets -- --only movielens` };
  const dls = CollabDataLoaders.fromCsv(csv, { itemName: "title", bs: 64 });
  const epochBatches = dls.train.length;
  const out: CollabBench = { batches, epochBatches };
  try {
    const stdout = execFileSync(
      "/usr/bin/python3",
      [path.join(__dirname, "..", "..", "bench", "collab_torch.py"), "--csv", csv, "--models", "dot", "--seeds", "0", "--epochs", "1", "--threads", String(threads), "--max-batches", String(batches), "--warmup", String(WARMUP)],
      { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
    );
    const run = JSON.parse(stdout.split("\n").find((l) => l.startsWith('{"model"'))!) as { epoch_s: number[] };
    out.torchEpochS = (run.epoch_s[0]! / (batches - WARMUP)) * epochBatches;
  } catch (e) {
    out.note = `PyTorch reference failed: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`;
  }
  const model = embeddingDotBias(50, dls.users.size, dls.items.size, { yRange: [0, 5.5] });
  const timer = batchTimer(WARMUP, batches);
  const learn = new Learner({ train: firstBatches(dls.train, batches), valid: firstBatches(dls.valid, 1), targetKind: "regression" }, model, {
    lossFunc: MSELossFlat(),
    wd: 0.1,
    progress: false,
    cbs: timer.cb,
  });
  await learn.fit(1, 5e-3);
  out.tsfastEpochS = (timer.seconds() / (batches - WARMUP)) * epochBatches;
  model.dispose();
  return out;
}
