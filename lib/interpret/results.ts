/**
 * `showResults`: the first images of a split with their actual and predicted labels, wrong ones
 * in red (fastai's `learn.show_results()`).
 */
import { ready } from "../engine/backend";
import { showImageGrid, tensorToPng } from "../display/image";
import { ClassificationInterpretation } from "./interpretation";
import type { InterpretableLearner } from "../learner/contracts";
import { showBlockResults, type BlockResultsLearner } from "./block-results";

/** Options of `showResults`. */
export interface ShowResultsOptions {
  /** Images to show. Default `9`. */
  maxN?: number;
  /** Split when given a learner: 0 = train, 1 = valid. Default `1`. */
  dsIdx?: number;
  /** Images per row. Default `ceil(sqrt(maxN))`. */
  ncols?: number;
  /** Side of each image in pixels. Default `160`. */
  size?: number;
}

/** One image of `showResults`'s grid. */
export interface ResultCell {
  index: number;
  actual: string;
  predicted: string;
  correct: boolean;
  /** `actual/predicted`, the caption; green when right, red when wrong. */
  title: string;
}

/** The captions `showResults` would draw for the first `maxN` items, without drawing. */
export function resultCells(interp: ClassificationInterpretation, maxN = 9): ResultCell[] {
  const n = Math.min(maxN, interp.n);
  const out: ResultCell[] = [];
  for (let i = 0; i < n; i++) {
    const actual = interp.vocab[interp.targets[i]!]!;
    const predicted = interp.vocab[interp.decoded[i]!]!;
    out.push({ index: i, actual, predicted, correct: actual === predicted, title: `${actual}/${predicted}` });
  }
  return out;
}

/**
 * Show the first `maxN` images of a split captioned `actual/predicted`, wrong predictions in red.
 * Given a learner it runs `getPreds` over the split; pass a `ClassificationInterpretation` you
 * already have to skip that pass. `resultCells` gives the captions.
 */
export async function showResults(
  source: InterpretableLearner | ClassificationInterpretation,
  opts: ShowResultsOptions = {},
): Promise<void> {
  const { maxN = 9, dsIdx = 1, size = 160 } = opts;
  await ready();
  // Points, masks, numbers: each block draws its target and the decoded prediction.
  const kind = (source as { dls?: { targetKind?: string } }).dls?.targetKind;
  if (!(source instanceof ClassificationInterpretation) && kind !== undefined && kind !== "category" && kind !== "multicategory") {
    if (dsIdx !== 1) throw new Error("showResults: for points, masks and numbers it shows the validation set (dsIdx 1)");
    return showBlockResults(source as unknown as BlockResultsLearner, { maxN, size, ...(opts.ncols === undefined ? {} : { ncols: opts.ncols }) });
  }
  const interp =
    source instanceof ClassificationInterpretation
      ? source
      : await ClassificationInterpretation.fromLearner(source, { dsIdx });
  if (!interp.dl) throw new Error("showResults needs the images: give it a learner, or an interpretation built with `dl`");
  const cells = resultCells(interp, maxN);
  const grid: { image: Buffer; title: string; color: string }[] = [];
  for (const cell of cells) {
    const img = await interp.loadImage(cell.index);
    try {
      grid.push({ image: await tensorToPng(img), title: cell.title, color: cell.correct ? "green" : "red" });
    } finally {
      img.dispose();
    }
  }
  await showImageGrid(grid, { ncols: opts.ncols ?? Math.ceil(Math.sqrt(Math.max(1, cells.length))), size });
}
