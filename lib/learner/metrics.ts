/**
 * Metrics computed over the whole validation set at once (not averaged per batch), from the model's
 * raw outputs (logits) and the targets.
 */
import * as tf from "../engine/tf";

/** A metric: a name and its value over all predictions (logits) and targets of a dataset. */
export interface Metric {
  /** Column name in the training table (`accuracy`, `error_rate`, ...). */
  readonly name: string;
  /** The value over every prediction and target. */
  compute(pred: tf.Tensor, targ: tf.Tensor): number;
  /**
   * A metric that is a function of a sum over items (a mean, a rate, a root mean square): one batch's sum
   * and count, and the value from the totals, equal to `compute` over all the items. The Learner then
   * validates batch by batch without keeping every batch's predictions (a language model's logits over its
   * vocabulary would take gigabytes), as fastai's `AvgMetric` does. Without it, predictions are kept
   * (fastai's `AccumMetric`: F1, precision, Dice, ...).
   */
  readonly additive?: {
    batch(pred: tf.Tensor, targ: tf.Tensor): [sum: number, count: number];
    value(sum: number, count: number): number;
  };
}

/** Running totals of a list of metrics over batches: additive ones are summed, the others get the kept predictions. */
export class MetricTotals {
  private readonly sums: number[];
  private readonly counts: number[];
  /** Whether some metric needs every prediction (not additive). */
  readonly keepsPreds: boolean;
  constructor(readonly metrics: readonly Metric[]) {
    this.sums = metrics.map(() => 0);
    this.counts = metrics.map(() => 0);
    this.keepsPreds = metrics.some((m) => !m.additive);
  }
  /** Add one batch to the additive metrics. */
  add(pred: tf.Tensor, targ: tf.Tensor): void {
    this.metrics.forEach((m, i) => {
      if (!m.additive) return;
      const [s, c] = m.additive.batch(pred, targ);
      this.sums[i]! += s;
      this.counts[i]! += c;
    });
  }
  /** Every metric's value: additive ones from their totals, the others from all the predictions (`all`, kept when `keepsPreds`). */
  values(all?: { preds: tf.Tensor; targs: tf.Tensor }): number[] {
    return this.metrics.map((m, i) => {
      if (m.additive) return m.additive.value(this.sums[i]!, this.counts[i]!);
      if (!all) throw new Error(`metric ${m.name}: no predictions were kept to compute it`);
      return m.compute(all.preds, all.targs);
    });
  }
}

/**
 * A metric that is `finish(mean of perItem(pred, targ))`, with its additive form (sum and count of the
 * per-item values per batch), so the Learner need not keep predictions for it.
 */
function meanMetric(name: string, check: string, perItem: (pred: tf.Tensor, targ: tf.Tensor) => tf.Tensor, finish: (mean: number) => number = (m) => m): Metric {
  const sumAndCount = (pred: tf.Tensor, targ: tf.Tensor): [number, number] => {
    checkRows(check, pred, targ);
    let n = 0;
    const t = tf.tidy(() => {
      const v = perItem(pred, targ);
      n = v.size;
      return tf.sum(v);
    });
    const sum = t.dataSync()[0]!;
    t.dispose();
    return [sum, n];
  };
  const value = (sum: number, count: number) => finish(count ? sum / count : NaN);
  return {
    name,
    compute: (pred, targ) => value(...sumAndCount(pred, targ)),
    additive: { batch: sumAndCount, value },
  };
}

function scalar(f: () => tf.Tensor): number {
  const t = tf.tidy(f);
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
}

function checkRows(name: string, pred: tf.Tensor, targ: tf.Tensor): void {
  if (pred.shape[0] !== targ.shape[0]) {
    throw new Error(`${name}: ${pred.shape[0]} predictions but ${targ.shape[0]} targets`);
  }
}

/** Per item (every position, for [bs, seq, c] predictions): 1 where the argmax over the last axis equals the integer target. */
function hits(pred: tf.Tensor, targ: tf.Tensor): tf.Tensor {
  // as fastai's flatten_check: both sides flattened, so a language model's [bs, seq] targets compare position by position
  return tf.cast(tf.equal(tf.reshape(tf.argMax(pred, -1), [-1]), tf.cast(tf.reshape(targ, [-1]), "int32")), "float32");
}

/** fastai's `accuracy`: fraction of items (every position, for [bs, seq, c] predictions) whose argmax over the last axis equals the integer target. */
export const accuracy: Metric = meanMetric("accuracy", "accuracy", hits);

/** fastai's `error_rate`: 1 − accuracy. */
export const errorRate: Metric = meanMetric("error_rate", "error_rate", hits, (m) => 1 - m);

/**
 * fastai's `Perplexity`: exp of the mean cross-entropy over every position (a language model's [bs, seq, vocab]
 * predictions, or [n, c]). fastai takes exp of the loss averaged per batch row; this averages per token, which
 * differs only when batches have different lengths (an epoch's last, shorter LM batch).
 */
export const perplexity: Metric = meanMetric(
  "perplexity",
  "perplexity",
  (pred, targ) => {
    const c = pred.shape[pred.rank - 1]!;
    const logp = tf.logSoftmax(tf.reshape(pred, [-1, c]));
    return tf.neg(tf.sum(tf.mul(logp, tf.oneHot(tf.cast(tf.reshape(targ, [-1]), "int32"), c)), 1));
  },
  Math.exp,
);

/** Options of `accuracyMulti`. */
export interface AccuracyMultiOptions {
  /** Probability above which a label counts as predicted (default 0.5). */
  thresh?: number;
  /** Apply a sigmoid to the predictions first (default true: models output logits). */
  sigmoid?: boolean;
}

/** fastai's `accuracy_multi`: fraction of (item, label) pairs where thresholded probabilities equal the multi-hot target. */
export function accuracyMulti(opts: AccuracyMultiOptions = {}): Metric {
  const thresh = opts.thresh ?? 0.5;
  const sig = opts.sigmoid ?? true;
  return meanMetric("accuracy_multi", "accuracyMulti", (pred, targ) =>
    tf.cast(tf.equal(tf.greater(sig ? tf.sigmoid(pred) : pred, thresh), tf.cast(targ, "bool")), "float32"),
  );
}

/** fastai's `rmse`: root of the mean squared difference over all values. */
export const rmse: Metric = meanMetric(
  "_rmse",
  "rmse",
  (pred, targ) => tf.square(tf.sub(tf.reshape(pred, [-1]), tf.reshape(tf.cast(targ, "float32"), [-1]))),
  Math.sqrt,
);

/** How `Precision`, `Recall` and `F1Score` combine classes (sklearn's `average`). */
export type Average = "binary" | "macro" | "micro" | "weighted";

/** Options of `Precision`, `Recall` and `F1Score`. */
export interface ClassMetricOptions {
  /** "binary" (only `posLabel`), "macro", "micro" or "weighted" by support (default "binary", as fastai/sklearn). */
  average?: Average;
  /** The positive class for `average: "binary"` (default 1). */
  posLabel?: number;
  /** Multi-label targets: probability threshold after the sigmoid (default 0.5). */
  thresh?: number;
}

/** Per-class true-positive, false-positive and false-negative counts (multi-label: one per label). */
function confusionCounts(pred: tf.Tensor, targ: tf.Tensor, thresh: number): { tp: number[]; fp: number[]; fn: number[]; c: number } {
  checkRows("F1Score/Precision/Recall", pred, targ);
  const c = pred.shape[pred.rank - 1]!;
  const multiLabel = targ.rank === pred.rank && targ.shape[targ.rank - 1] === c && c > 1 && targ.rank > 1;
  if (multiLabel) return { ...multiCounts(pred, targ, thresh, true, 0), c };
  const tp = new Array<number>(c).fill(0);
  const fp = new Array<number>(c).fill(0);
  const fn = new Array<number>(c).fill(0);
  const p = tf.tidy(() => tf.argMax(tf.reshape(pred, [-1, c]), -1));
  const pv = p.dataSync();
  p.dispose();
  const tv = targ.dataSync();
  for (let i = 0; i < pv.length; i++) {
    const yp = pv[i]!;
    const yt = Math.round(tv[i]!);
    if (yp === yt) tp[yp]!++;
    else {
      fp[yp]!++;
      if (yt >= 0 && yt < c) fn[yt]!++;
    }
  }
  return { tp, fp, fn, c };
}

const div = (a: number, b: number) => (b === 0 ? 0 : a / b); // sklearn's zero_division=0

type PerClass = (tp: number, fp: number, fn: number) => number;
const precision: PerClass = (tp, fp) => div(tp, tp + fp);
const recall: PerClass = (tp, _fp, fn) => div(tp, tp + fn);
const f1: PerClass = (tp, fp, fn) => div(2 * tp, 2 * tp + fp + fn);

/** sklearn's `average` over per-class counts: pooled ("micro"), unweighted mean ("macro") or weighted by support. */
function combine(average: "micro" | "macro" | "weighted", perClass: PerClass, tp: number[], fp: number[], fn: number[]): number {
  if (average === "micro") {
    const s = (a: number[]) => a.reduce((x, y) => x + y, 0);
    return perClass(s(tp), s(fp), s(fn));
  }
  const vals = tp.map((_, k) => perClass(tp[k]!, fp[k]!, fn[k]!));
  if (average === "macro") return vals.reduce((a, b) => a + b, 0) / tp.length;
  const support = tp.map((t, k) => t + fn[k]!);
  const total = support.reduce((a, b) => a + b, 0);
  return div(
    vals.reduce((a, v, k) => a + v * support[k]!, 0),
    total,
  );
}

function classMetric(name: string, perClass: PerClass, opts: ClassMetricOptions): Metric {
  const average = opts.average ?? "binary";
  const posLabel = opts.posLabel ?? 1;
  const thresh = opts.thresh ?? 0.5;
  return {
    name: average === "binary" ? name : `${name}_${average}`,
    compute(pred, targ) {
      const { tp, fp, fn, c } = confusionCounts(pred, targ, thresh);
      if (average === "binary") {
        if (posLabel < 0 || posLabel >= c) throw new Error(`${name}: posLabel ${posLabel} is not a class index (0..${c - 1})`);
        return perClass(tp[posLabel]!, fp[posLabel]!, fn[posLabel]!);
      }
      return combine(average, perClass, tp, fp, fn);
    },
  };
}

/** sklearn's precision TP/(TP+FP), as fastai's `Precision`. */
export function Precision(opts: ClassMetricOptions = {}): Metric {
  return classMetric("precision_score", precision, opts);
}

/** sklearn's recall TP/(TP+FN), as fastai's `Recall`. */
export function Recall(opts: ClassMetricOptions = {}): Metric {
  return classMetric("recall_score", recall, opts);
}

/** sklearn's F1 = 2TP/(2TP+FP+FN), as fastai's `F1Score`. */
export function F1Score(opts: ClassMetricOptions = {}): Metric {
  return classMetric("f1_score", f1, opts);
}

// ---------------------------------------------------------------- multi-label (fastai's *Multi)

/** How `F1ScoreMulti`, `PrecisionMulti` and `RecallMulti` combine labels (sklearn's `average` for multi-hot targets). */
export type AverageMulti = "macro" | "micro" | "weighted" | "samples";

/** Options of `F1ScoreMulti`, `PrecisionMulti` and `RecallMulti`, with fastai's defaults. */
export interface MultiMetricOptions {
  /** Probability above which a label counts as predicted (default 0.5). */
  thresh?: number;
  /** Apply a sigmoid to the predictions first (default true: models output logits; false for `getPreds` output). */
  sigmoid?: boolean;
  /**
   * "macro": the score of each label, then their mean (default, as fastai); "micro": one score from the
   * counts pooled over labels; "weighted": label scores weighted by how often each label is true;
   * "samples": the score of each item (its predicted set against its true set), then their mean.
   */
  average?: AverageMulti;
}

/**
 * Counts of a multi-label prediction: per label (`axis` 0) or per item (`axis` 1).
 *   1. probabilities (sigmoid of logits, unless `sigmoid` is false), predicted where > `thresh`;
 *   2. a target is true where > 0.5 (multi-hot);
 *   3. tp / fp / fn counted along the other axis.
 */
function multiCounts(pred: tf.Tensor, targ: tf.Tensor, thresh: number, sigmoid: boolean, axis: 0 | 1): { tp: number[]; fp: number[]; fn: number[] } {
  checkRows("F1ScoreMulti/PrecisionMulti/RecallMulti", pred, targ);
  if (pred.size !== targ.size || pred.rank < 2) {
    throw new Error(`multi-label metrics need [items, labels] predictions and multi-hot targets of the same size; got pred [${pred.shape}], targ [${targ.shape}]`);
  }
  const c = pred.shape[pred.rank - 1]!;
  const n = pred.size / c;
  const p = tf.tidy(() => tf.greater(sigmoid ? tf.sigmoid(pred) : pred, thresh));
  const pv = p.dataSync();
  p.dispose();
  const tv = targ.dataSync();
  const len = axis === 0 ? c : n;
  const tp = new Array<number>(len).fill(0);
  const fp = new Array<number>(len).fill(0);
  const fn = new Array<number>(len).fill(0);
  for (let i = 0; i < pv.length; i++) {
    const k = axis === 0 ? i % c : Math.floor(i / c);
    const yp = pv[i]! !== 0;
    const yt = tv[i]! > 0.5;
    if (yp && yt) tp[k]!++;
    else if (yp) fp[k]!++;
    else if (yt) fn[k]!++;
  }
  return { tp, fp, fn };
}

function multiMetric(name: string, perClass: PerClass, opts: MultiMetricOptions): Metric {
  const thresh = opts.thresh ?? 0.5;
  const sigmoid = opts.sigmoid ?? true;
  const average = opts.average ?? "macro";
  if (!["macro", "micro", "weighted", "samples"].includes(average)) {
    throw new Error(`${name}: average must be "macro", "micro", "weighted" or "samples", got ${JSON.stringify(average)}`);
  }
  return {
    name: `${name}_${average}`,
    compute(pred, targ) {
      if (average === "samples") {
        const { tp, fp, fn } = multiCounts(pred, targ, thresh, sigmoid, 1);
        return tp.reduce((a, _t, i) => a + perClass(tp[i]!, fp[i]!, fn[i]!), 0) / tp.length;
      }
      const { tp, fp, fn } = multiCounts(pred, targ, thresh, sigmoid, 0);
      return combine(average, perClass, tp, fp, fn);
    },
  };
}

/** fastai's `F1ScoreMulti`: sklearn's F1 = 2TP/(2TP+FP+FN) on thresholded multi-label predictions (0 where undefined). */
export function F1ScoreMulti(opts: MultiMetricOptions = {}): Metric {
  return multiMetric("f1_score", f1, opts);
}

/** fastai's `PrecisionMulti`: sklearn's TP/(TP+FP) on thresholded multi-label predictions (0 where undefined). */
export function PrecisionMulti(opts: MultiMetricOptions = {}): Metric {
  return multiMetric("precision_score", precision, opts);
}

/** fastai's `RecallMulti`: sklearn's TP/(TP+FN) on thresholded multi-label predictions (0 where undefined). */
export function RecallMulti(opts: MultiMetricOptions = {}): Metric {
  return multiMetric("recall_score", recall, opts);
}

// ---------------------------------------------------------------- segmentation (fastai's foreground_acc, Dice, ...)
// Predictions are per-pixel logits `[n, h, w, classes]` (channels last); targets are class indices
// `[n, h, w]` or `[n, h, w, 1]`. The class of a pixel is the argmax of its logits.

/** Per-pixel predicted classes and targets as flat int32 arrays of one length. */
function pixelClasses(name: string, pred: tf.Tensor, targ: tf.Tensor): { p: Int32Array; t: Int32Array; nClasses: number } {
  checkRows(name, pred, targ);
  const nClasses = pred.shape[pred.rank - 1]!;
  const p = tf.tidy(() => tf.reshape(tf.argMax(pred, -1), [-1]));
  const t = tf.tidy(() => tf.reshape(tf.cast(targ, "int32"), [-1]));
  const out = { p: p.dataSync() as Int32Array, t: t.dataSync() as Int32Array, nClasses };
  tf.dispose([p, t]);
  if (out.p.length !== out.t.length) {
    throw new Error(`${name}: ${out.p.length} predicted pixels but ${out.t.length} target pixels (targets are class indices [n, h, w])`);
  }
  return out;
}

/** Options of `foregroundAcc`. */
export interface ForegroundAccOptions {
  /** The class not counted: background, or a "void" code (default 0). */
  bkgIdx?: number;
}

/** fastai's `foreground_acc`: pixel accuracy over the pixels whose target is not `bkgIdx` (NaN when there are none). */
export function foregroundAcc(opts: ForegroundAccOptions = {}): Metric {
  const bkg = opts.bkgIdx ?? 0;
  return {
    name: "foreground_acc",
    compute(pred, targ) {
      const { p, t } = pixelClasses("foregroundAcc", pred, targ);
      let n = 0, right = 0;
      for (let i = 0; i < t.length; i++) {
        if (t[i] === bkg) continue;
        n++;
        if (p[i] === t[i]) right++;
      }
      return n ? right / n : NaN;
    },
  };
}

/** Pixels predicted as `c` and also `c` in the target (`inter`), and both counts added (`union`). */
function overlap(p: Int32Array, t: Int32Array, c: number): { inter: number; union: number } {
  let inter = 0, union = 0;
  for (let i = 0; i < t.length; i++) {
    const a = p[i] === c ? 1 : 0, b = t[i] === c ? 1 : 0;
    inter += a * b;
    union += a + b;
  }
  return { inter, union };
}

/** fastai's `Dice` for binary segmentation: 2·|pred ∩ targ| / (|pred| + |targ|) of class 1 (NaN when both are empty). */
export function Dice(): Metric {
  return {
    name: "dice",
    compute(pred, targ) {
      const { p, t } = pixelClasses("Dice", pred, targ);
      const { inter, union } = overlap(p, t, 1);
      return union ? (2 * inter) / union : NaN;
    },
  };
}

/** fastai's `DiceMulti`: the Dice of each class that occurs in the predictions or targets, averaged. */
export function DiceMulti(): Metric {
  return {
    name: "dice_multi",
    compute(pred, targ) {
      const { p, t, nClasses } = pixelClasses("DiceMulti", pred, targ);
      const scores: number[] = [];
      for (let c = 0; c < nClasses; c++) {
        const { inter, union } = overlap(p, t, c);
        if (union) scores.push((2 * inter) / union);
      }
      return scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : NaN;
    },
  };
}

/** fastai's `JaccardCoeff` for binary segmentation: |pred ∩ targ| / |pred ∪ targ| of class 1 (NaN when both are empty). */
export function JaccardCoeff(): Metric {
  return {
    name: "jaccard_coeff",
    compute(pred, targ) {
      const { p, t } = pixelClasses("JaccardCoeff", pred, targ);
      const { inter, union } = overlap(p, t, 1);
      return union - inter ? inter / (union - inter) : NaN;
    },
  };
}
