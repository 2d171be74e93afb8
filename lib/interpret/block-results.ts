/**
 * `showResults` for targets other than classes (points, masks, numbers): the first validation
 * items twice, the target and then the prediction, each drawn by its block (points as markers,
 * masks in colour over the image). The blocks decode the model's output (`decodeOutput`).
 */
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import { showCellGrid, type DataLoaders } from "../data/loader";
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
