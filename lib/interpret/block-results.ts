/**
 * `showResults` for targets other than classes (points, masks, numbers): the first validation
 * items twice, the target and then the prediction, each drawn by its block (points as markers,
 * masks in colour over the image). The blocks decode the model's output (`decodeOutput`).
 */
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import { showCellGrid, type Batch, type DataLoaders } from "../data/loader";
import type { ShowCell } from "../data/blocks";
import type { Loss } from "../learner/losses";

/** What `showBlockResults` needs of a learner. */
export interface BlockResultsLearner {
  dls: unknown;
  model: tf.LayersModel;
  lossFunc: Loss;
}

/** The cells `showBlockResults` draws: for each of the first `maxN` validation items, [target, prediction]. */
export async function blockResultCells(learn: BlockResultsLearner, maxN = 6): Promise<[ShowCell, ShowCell][]> {
  await ready();
  const dls = learn.dls as DataLoaders;
  const target = dls.targetBlock;
  if (!target || typeof dls.showCells !== "function") throw new Error("showResults: this learner's DataLoaders have no blocks to draw with");
  const blocks = dls.valid.source.blocks;
  const out: [ShowCell, ShowCell][] = [];
  for await (const b of dls.valid.new({ shuffle: false, bs: maxN })) {
    const n = Math.min(maxN, b.xb.shape[0]);
    const pred = tf.tidy(() => {
      const act = learn.lossFunc.activation(learn.model.apply(b.xb, { training: false }) as tf.Tensor);
      const thresh = (learn.lossFunc as { thresh?: number }).thresh;
      return target.decodeOutput ? target.decodeOutput(act, b.yb.shape, thresh) : tf.reshape(act, b.yb.shape);
    });
    try {
      const actual = await dls.showCells([...b.xs, ...b.ys], n, blocks);
      const predicted = await dls.showCells([...b.xs, pred], n, blocks);
      actual.forEach((c, i) => {
        c.titles.unshift("actual");
        predicted[i]!.titles.unshift("predicted");
        out.push([c, predicted[i]!]);
      });
    } finally {
      tf.dispose([pred, ...b.xs, ...b.ys]);
    }
    break;
  }
  return out;
}

/** Show the first `maxN` validation items as target / prediction pairs (two columns of pairs by default). */
export async function showBlockResults(learn: BlockResultsLearner, opts: { maxN?: number; size?: number; ncols?: number } = {}): Promise<void> {
  const pairs = await blockResultCells(learn, opts.maxN ?? 6);
  await showCellGrid(pairs.flat(), { ncols: opts.ncols ?? 4, ...(opts.size === undefined ? {} : { size: opts.size }) });
}

/** One item of `blockTopLosses`: its index in the validation set, its loss, and [target, prediction] cells. */
export interface BlockTopLoss {
  index: number;
  item: string;
  loss: number;
  cells: [ShowCell, ShowCell];
}

/** Each validation item's loss (the learner's loss, averaged over the item's values: points, pixels, labels). */
async function itemLosses(learn: BlockResultsLearner, dl: AsyncIterable<Batch>): Promise<number[]> {
  const losses: number[] = [];
  for await (const b of dl) {
    const l = tf.tidy(() => {
      const out = learn.model.apply(b.xb, { training: false }) as tf.Tensor;
      return tf.mean(tf.reshape(learn.lossFunc.forward(out, b.yb, "none"), [b.xb.shape[0], -1]), -1);
    });
    losses.push(...(await l.data()));
    tf.dispose([l, ...b.xs, ...b.ys]);
  }
  return losses;
}

/**
 * The `k` validation items with the highest loss, worst first, each drawn as target and prediction
 * by its blocks (fastai's `plot_top_losses` for points, masks, multi-label and numbers).
 */
export async function blockTopLosses(learn: BlockResultsLearner, k = 9): Promise<BlockTopLoss[]> {
  await ready();
  const dls = learn.dls as DataLoaders;
  const target = dls.targetBlock;
  if (!target || typeof dls.showCells !== "function") throw new Error("plotTopLosses: this learner's DataLoaders have no blocks to draw with");
  const dl = dls.valid.new({ shuffle: false });
  const losses = await itemLosses(learn, dl);
  // rows count the items the loader yielded (it skips unreadable ones)
  const names = dl.items.filter((_, j) => !dl.bad.has(j));
  const order = losses.map((l, i) => [l, i] as const).sort((a, b) => b[0] - a[0]).slice(0, Math.max(0, k));
  const wanted = new Map(order.map(([l, i], rank) => [i, { l, rank }]));
  const out: BlockTopLoss[] = new Array(order.length);
  const blocks = dls.valid.source.blocks;
  const thresh = (learn.lossFunc as { thresh?: number }).thresh;
  let start = 0;
  for await (const b of dl) {
    const bs = b.xb.shape[0];
    const rows = Array.from({ length: bs }, (_, r) => start + r).filter((i) => wanted.has(i));
    if (rows.length) {
      const idx = tf.tensor1d(rows.map((i) => i - start), "int32");
      const picked = [...b.xs, ...b.ys].map((t) => tf.gather(t, idx));
      const pred = tf.tidy(() => {
        const act = learn.lossFunc.activation(learn.model.apply(picked[0]!, { training: false }) as tf.Tensor);
        const y = picked[dls.nInp]!;
        return target.decodeOutput ? target.decodeOutput(act, y.shape, thresh) : tf.reshape(act, y.shape);
      });
      try {
        const actual = await dls.showCells(picked, rows.length, blocks);
        const predicted = await dls.showCells([...picked.slice(0, dls.nInp), pred], rows.length, blocks);
        rows.forEach((i, r) => {
          const { l, rank } = wanted.get(i)!;
          actual[r]!.titles.unshift("actual");
          predicted[r]!.titles.unshift(`predicted · loss ${l.toPrecision(3)}`);
          out[rank] = { index: i, item: names[i] ?? String(i), loss: l, cells: [actual[r]!, predicted[r]!] };
        });
      } finally {
        tf.dispose([idx, pred, ...picked]);
      }
    }
    tf.dispose([...b.xs, ...b.ys]);
    start += bs;
  }
  return out.filter((x) => x !== undefined);
}

/** Show `blockTopLosses` as a grid of target / prediction pairs, worst first. */
export async function plotBlockTopLosses(learn: BlockResultsLearner, k = 9, opts: { size?: number; ncols?: number } = {}): Promise<void> {
  const top = await blockTopLosses(learn, k);
  await showCellGrid(top.flatMap((t) => t.cells), { ncols: opts.ncols ?? 4, ...(opts.size === undefined ? {} : { size: opts.size }) });
}

/**
 * fastai's `Interpretation` for any target its blocks can draw (points, masks, multi-label,
 * numbers): `plotTopLosses` shows the worst validation items as target / prediction pairs.
 * (`ClassificationInterpretation` adds the confusion matrix for single-label classes.)
 */
export class Interpretation {
  private constructor(private readonly learn: BlockResultsLearner) {}

  /** Interpretation of `learn`'s validation set. */
  static async fromLearner(learn: BlockResultsLearner): Promise<Interpretation> {
    if (!(learn.dls as DataLoaders)?.targetBlock) throw new Error("Interpretation.fromLearner: this learner's DataLoaders have no blocks");
    return new Interpretation(learn);
  }

  /** The `k` validation items with the highest loss, worst first. */
  topLosses(k = 9): Promise<BlockTopLoss[]> {
    return blockTopLosses(this.learn, k);
  }

  /** Show the `k` worst validation items, target and prediction side by side. */
  plotTopLosses(k = 9, opts: { size?: number; ncols?: number } = {}): Promise<void> {
    return plotBlockTopLosses(this.learn, k, opts);
  }
}
