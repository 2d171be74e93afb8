/**
 * `ClassificationInterpretation`: where a trained single-label classifier is wrong — confusion
 * matrix, most-confused pairs, top losses, per-class report — from predictions computed once.
 */
import type * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import type { Figure } from "../display/plot";
import { showPlot } from "../display/plot";
import { showImageGrid, tensorToPng } from "../display/image";
import { showText } from "../display/display";
import { confusionMatrixFigure, type ConfusionMatrixFigureOptions } from "./charts";
import {
  argmax,
  classificationReportFrom,
  confusionMatrixFrom,
  mostConfusedFrom,
  topLossesFrom,
  type ClassificationReport,
} from "./report";
import type { InterpretableLearner, LoaderLike } from "../learner/contracts";
import { asLoader, loaderOf, vocabOf } from "./loaders";

/** The raw arrays an interpretation is built from (what `getPreds` gives, as plain numbers). */
export interface InterpretationData {
  /** Class names; index `k` is class `k`. */
  vocab: readonly string[];
  /** Probabilities, one row of `vocab.length` per item. */
  probs: readonly (readonly number[])[];
  /** Target class index per item. */
  targets: readonly number[];
  /** Loss per item. Default: cross-entropy `-log(probs[i][targets[i]])`. */
  losses?: readonly number[];
  /** The items (e.g. file paths) in prediction order. Default: taken from `dl`, else none. */
  items?: readonly unknown[];
  /** The loader the items came from, used to show their images. Default none. */
  dl?: LoaderLike;
  /** Which split these predictions are of: 0 = train, 1 = valid. Default `1`. */
  dsIdx?: number;
  /** Index in `dl` of each prediction's item, where some were skipped (unreadable). Default: the same index. */
  dlIndices?: readonly number[];
}

/** Options of `ClassificationInterpretation.fromLearner`. */
export interface FromLearnerOptions {
  /** Split to interpret: 0 = training set, 1 = validation set. Default `1`. */
  dsIdx?: number;
}

/** Options of `plotTopLosses`. */
export interface PlotTopLossesOptions {
  /** Rows of the grid. Default `ceil(sqrt(k))`. */
  nrows?: number;
  /** Show the largest losses (`true`) or the smallest. Default `true`. */
  largest?: boolean;
  /** Side of each image in pixels. Default `160`. */
  size?: number;
}

/** One image of `plotTopLosses`'s grid. */
export interface TopLossCell {
  index: number;
  predicted: string;
  actual: string;
  loss: number;
  /** Probability of the predicted class. */
  prob: number;
  /** `predicted/actual / loss / prob`, fastai's caption. */
  title: string;
}

/** Interpretation of a single-label classifier's predictions on one split (fastai's `ClassificationInterpretation`). */
export class ClassificationInterpretation {
  readonly vocab: readonly string[];
  readonly probs: readonly (readonly number[])[];
  readonly targets: readonly number[];
  /** Predicted class index per item (argmax of `probs`). */
  readonly decoded: readonly number[];
  readonly losses: readonly number[];
  readonly items: readonly unknown[] | undefined;
  readonly dl: LoaderLike | undefined;
  /** The split interpreted: 0 = train, 1 = valid. */
  readonly dsIdx: number;
  private readonly dlIndices: readonly number[] | undefined;

  /** Build from raw arrays (see `InterpretationData`); checks that every length agrees. */
  constructor(data: InterpretationData) {
    const { vocab, probs, targets } = data;
    const n = targets.length;
    const c = vocab.length;
    if (probs.length !== n) throw new Error(`ClassificationInterpretation: ${probs.length} rows of probs but ${n} targets`);
    probs.forEach((row, i) => {
      if (row.length !== c) {
        throw new Error(`ClassificationInterpretation: probs row ${i} has ${row.length} values but vocab has ${c} classes`);
      }
    });
    targets.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= c) {
        throw new Error(`ClassificationInterpretation: target ${i} is ${t}, not a class index in 0..${c - 1}`);
      }
    });
    const losses = data.losses ?? probs.map((row, i) => -Math.log(Math.max(row[targets[i]!]!, 1e-12)));
    if (losses.length !== n) throw new Error(`ClassificationInterpretation: ${losses.length} losses but ${n} targets`);
    const items = data.items ?? (data.dlIndices && data.dl ? data.dlIndices.map((j) => data.dl!.items[j]) : data.dl?.items);
    if (data.dlIndices && data.dlIndices.length !== n) {
      throw new Error(`ClassificationInterpretation: ${data.dlIndices.length} dlIndices but ${n} targets`);
    }
    if (items && items.length !== n) {
      throw new Error(`ClassificationInterpretation: ${items.length} items but ${n} predictions; they must match one to one`);
    }
    this.vocab = vocab.slice();
    this.probs = probs;
    this.targets = targets.slice();
    this.decoded = probs.map((row) => argmax(row));
    this.losses = losses.slice();
    this.items = items;
    this.dl = data.dl;
    this.dsIdx = data.dsIdx ?? 1;
    this.dlIndices = data.dlIndices?.slice();
  }

  /** The image of item `i` (in prediction order) from `dl`, for showing (caller disposes). */
  async loadImage(i: number): Promise<tf.Tensor3D> {
    if (!this.dl) {
      throw new Error("showing images needs the loader: build the interpretation with `fromLearner`, or pass `dl` to the constructor");
    }
    return this.dl.loadImage(this.dlIndices ? this.dlIndices[i]! : i);
  }

  /**
   * Run `learn.getPreds({ dsIdx, withLoss: true })` once and keep its predictions, targets and
   * losses as plain arrays (the tensors are disposed here). For the training split it predicts on
   * `dl.new({ shuffle: false, dropLast: false, train: false })` so predictions line up with items.
   */
  static async fromLearner(learn: InterpretableLearner, opts: FromLearnerOptions = {}): Promise<ClassificationInterpretation> {
    const { dsIdx = 1 } = opts;
    await ready();
    const dls = learn.dls;
    if (dls.isMultiLabel) {
      throw new Error("ClassificationInterpretation is for single-label data; these DataLoaders are multi-label (isMultiLabel = true)");
    }
    const vocab = vocabOf(dls);
    const dl = loaderOf(dls, dsIdx);
    const split = dsIdx === 0 ? "train" : "valid";
    // Predictions must come in item order, with the validation transforms: the training loader is
    // shuffled and augments, so (like fastai's `dl.new(shuffle=False, drop_last=False)`) predict on a plain copy.
    let predDl = dl;
    if (dl.new && (dsIdx === 0 || dl.shuffle)) predDl = asLoader(dl.new({ shuffle: false, dropLast: false, train: false }), split);
    else if (dl.shuffle) {
      throw new Error(`the ${split} DataLoader is shuffled and has no \`new({ shuffle: false })\`, so its predictions cannot be matched to its items`);
    }
    const res = await learn.getPreds(predDl === dl ? { dsIdx, withLoss: true } : { dl: predDl, withLoss: true });
    try {
      if (res.targs.rank !== 1) {
        throw new Error(
          `ClassificationInterpretation needs one class index per item; getPreds gave targets of shape [${res.targs.shape.join(", ")}]`,
        );
      }
      const probs = (await res.preds.array()) as number[][];
      const targets = Array.from(await res.targs.data(), (v) => Math.round(v));
      const losses = res.losses ? Array.from(await res.losses.data()) : undefined;
      // Unreadable items are skipped by iteration: the predictions belong to the others, in order.
      const bad = predDl.bad ?? new Set<number>();
      const kept = dl.items.map((_, i) => i).filter((i) => !bad.has(i));
      if (kept.length !== targets.length) {
        throw new Error(
          `getPreds gave ${targets.length} predictions for the ${kept.length} readable items of the ${split} split; ` +
            "interpretation needs one per item, in item order",
        );
      }
      return new ClassificationInterpretation({
        vocab,
        probs,
        targets,
        losses,
        dl,
        dsIdx,
        ...(bad.size > 0 ? { dlIndices: kept } : {}),
      });
    } finally {
      res.preds.dispose();
      res.targs.dispose();
      res.losses?.dispose();
    }
  }

  /** Number of items interpreted. */
  get n(): number {
    return this.targets.length;
  }

  /** `cm[actual][predicted]` counts over all items, classes in vocab order. */
  confusionMatrix(): number[][] {
    return confusionMatrixFrom(this.targets, this.decoded, this.vocab.length);
  }

  /** The plotly figure `plotConfusionMatrix` draws (see `ConfusionMatrixFigureOptions`), without showing it. */
  confusionMatrixFigure(opts: ConfusionMatrixFigureOptions = {}): Figure {
    return confusionMatrixFigure(this.confusionMatrix(), this.vocab, opts);
  }

  /** Show the confusion matrix as a plotly heatmap with counts (or, with `normalize`, row fractions) in the cells. */
  plotConfusionMatrix(opts: ConfusionMatrixFigureOptions = {}): void {
    const fig = this.confusionMatrixFigure(opts);
    showPlot(fig, { width: fig.layout?.width, height: fig.layout?.height });
  }

  /** `[actual, predicted, count]` for every wrong pair seen at least `minVal` times, most frequent first. */
  mostConfused(minVal = 1): [string, string, number][] {
    return mostConfusedFrom(this.confusionMatrix(), this.vocab, minVal);
  }

  /** The `k` largest losses (all when `k` is omitted; smallest with `largest = false`) and their item indices. */
  topLosses(k?: number, largest = true): { losses: number[]; indices: number[] } {
    return topLossesFrom(this.losses, k, largest);
  }

  /** The captions of `plotTopLosses` without drawing: predicted/actual/loss/probability of the top `k`. */
  topLossCells(k = 9, largest = true): TopLossCell[] {
    const { losses, indices } = this.topLosses(k, largest);
    return indices.map((i, j) => {
      const predicted = this.vocab[this.decoded[i]!]!;
      const actual = this.vocab[this.targets[i]!]!;
      const loss = losses[j]!;
      const prob = Math.max(...this.probs[i]!);
      return { index: i, predicted, actual, loss, prob, title: `${predicted}/${actual} / ${loss.toFixed(2)} / ${prob.toFixed(2)}` };
    });
  }

  /**
   * Show the `k` items with the largest losses as an image grid, each captioned
   * `prediction/actual / loss / probability` (fastai's `plot_top_losses`); `topLossCells` gives the captions.
   */
  async plotTopLosses(k = 9, opts: PlotTopLossesOptions = {}): Promise<void> {
    const { largest = true, size = 160 } = opts;
    await ready();
    if (!this.dl) {
      throw new Error("plotTopLosses needs the images: build the interpretation with `fromLearner`, or pass `dl` to the constructor");
    }
    const cells = this.topLossCells(k, largest);
    const nrows = Math.max(1, opts.nrows ?? Math.ceil(Math.sqrt(cells.length)));
    const ncols = Math.max(1, Math.ceil(cells.length / nrows));
    const grid: { image: Buffer; title: string; color: string }[] = [];
    for (const cell of cells) {
      const img = await this.loadImage(cell.index);
      try {
        grid.push({ image: await tensorToPng(img), title: cell.title, color: cell.predicted === cell.actual ? "green" : "red" });
      } finally {
        img.dispose();
      }
    }
    await showImageGrid(grid, { ncols, size, title: "Prediction/Actual/Loss/Probability" });
  }

  /** Precision, recall, F1 and support per class, accuracy, macro and weighted averages (sklearn's `classification_report`). */
  classificationReport(opts: { digits?: number } = {}): ClassificationReport {
    return classificationReportFrom(this.confusionMatrix(), this.vocab, opts.digits ?? 2);
  }

  /** Print `classificationReport()` as sklearn lays it out, and return its numbers. */
  printClassificationReport(opts: { digits?: number } = {}): ClassificationReport {
    const report = this.classificationReport(opts);
    showText(report.text);
    return report;
  }
}
