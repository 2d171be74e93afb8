/**
 * The numbers behind interpretation, as plain functions on plain arrays (no tensors, no drawing):
 * confusion matrix, most-confused pairs, top losses and a per-class classification report.
 */

/**
 * Give `obj` a one-line `summary` for `console.log` / `util.inspect` — what a tslab cell prints
 * when the value is its last expression — without changing its fields or equality.
 */
export function withSummary<T extends object>(obj: T, summary: string): T {
  Object.defineProperty(obj, Symbol.for("nodejs.util.inspect.custom"), { value: () => summary, enumerable: false });
  return obj;
}

/** Index of the largest value of `row` (the first one on ties, like `argmax` in PyTorch). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if ((row[j] as number) > (row[best] as number)) best = j;
  return best;
}

/**
 * `cm[actual][predicted]` = how many items of class `actual` were predicted as `predicted`,
 * for `c` classes; rows are the targets, columns the predictions (fastai's and sklearn's layout).
 */
export function confusionMatrixFrom(targets: ArrayLike<number>, decoded: ArrayLike<number>, c: number): number[][] {
  if (targets.length !== decoded.length) {
    throw new Error(`confusion matrix: ${targets.length} targets but ${decoded.length} predictions`);
  }
  const cm = Array.from({ length: c }, () => new Array<number>(c).fill(0));
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i] as number;
    const p = decoded[i] as number;
    if (!(t >= 0 && t < c) || !(p >= 0 && p < c)) {
      throw new Error(`confusion matrix: item ${i} has target ${t} / prediction ${p}, outside 0..${c - 1}`);
    }
    (cm[t] as number[])[p]! += 1;
  }
  return cm;
}

/** Each row of `cm` divided by its sum (rows with no items stay 0): the recall-normalised matrix. */
export function normalizeRows(cm: number[][]): number[][] {
  return cm.map((row) => {
    const s = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (s === 0 ? 0 : v / s));
  });
}

/**
 * The off-diagonal cells of `cm` with at least `minVal` items, as `[actual, predicted, count]`,
 * largest count first (ties keep the row-major order of the matrix).
 */
export function mostConfusedFrom(cm: number[][], vocab: readonly string[], minVal = 1): [string, string, number][] {
  const out: [string, string, number][] = [];
  cm.forEach((row, a) =>
    row.forEach((n, p) => {
      if (a !== p && n >= minVal) out.push([vocab[a] ?? String(a), vocab[p] ?? String(p), n]);
    }),
  );
  // Array.prototype.sort is stable, so equal counts stay in matrix order.
  return out.sort((x, y) => y[2] - x[2]);
}

/**
 * The `k` largest losses (all of them when `k` is undefined) with their item indices, largest
 * first; `largest = false` gives the smallest instead. Ties keep the lower index first.
 */
export function topLossesFrom(
  losses: ArrayLike<number>,
  k?: number,
  largest = true,
): { losses: number[]; indices: number[] } {
  const idx = Array.from({ length: losses.length }, (_, i) => i);
  const sign = largest ? -1 : 1;
  idx.sort((a, b) => sign * ((losses[a] as number) - (losses[b] as number)) || a - b);
  const kept = idx.slice(0, k === undefined ? idx.length : Math.max(0, Math.min(k, idx.length)));
  return { losses: kept.map((i) => losses[i] as number), indices: kept };
}

/** One line of a classification report. */
export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  /** How many items have this class as their target. */
  support: number;
}

/** What `classificationReport` computes: per class, accuracy, and the macro and weighted averages. */
export interface ClassificationReport {
  /** Per class, in vocab order, keyed by class name. */
  classes: Record<string, ClassScores>;
  accuracy: number;
  /** Unweighted mean over classes of precision, recall and F1. */
  macroAvg: ClassScores;
  /** Mean over classes weighted by support. */
  weightedAvg: ClassScores;
  /** The report as text, laid out like sklearn's `classification_report`. */
  text: string;
}

/**
 * Precision, recall, F1 and support per class from a confusion matrix, plus accuracy and the
 * macro / weighted averages — the numbers of sklearn's `classification_report` (0 where a ratio
 * divides by zero, like sklearn's `zero_division` default).
 */
export function classificationReportFrom(cm: number[][], vocab: readonly string[], digits = 2): ClassificationReport {
  const c = cm.length;
  const div = (a: number, b: number): number => (b === 0 ? 0 : a / b);
  let total = 0;
  let correct = 0;
  const classes: Record<string, ClassScores> = {};
  const rows: [string, ClassScores][] = [];
  for (let k = 0; k < c; k++) {
    // 1. tp = diagonal; predicted-as-k = column sum; actually-k (support) = row sum.
    const tp = cm[k]![k]!;
    const support = cm[k]!.reduce((a, b) => a + b, 0);
    let predicted = 0;
    for (let r = 0; r < c; r++) predicted += cm[r]![k]!;
    // 2. precision = tp / predicted, recall = tp / support, F1 = their harmonic mean.
    const precision = div(tp, predicted);
    const recall = div(tp, support);
    const f1 = div(2 * precision * recall, precision + recall);
    const s: ClassScores = { precision, recall, f1, support };
    const name = vocab[k] ?? String(k);
    classes[name] = s;
    rows.push([name, s]);
    total += support;
    correct += tp;
  }
  const avg = (w: (s: ClassScores) => number): ClassScores => {
    const wsum = rows.reduce((a, [, s]) => a + w(s), 0);
    const mean = (f: (s: ClassScores) => number): number =>
      div(rows.reduce((a, [, s]) => a + w(s) * f(s), 0), wsum);
    return { precision: mean((s) => s.precision), recall: mean((s) => s.recall), f1: mean((s) => s.f1), support: total };
  };
  const macroAvg = avg(() => 1);
  const weightedAvg = avg((s) => s.support);
  const accuracy = div(correct, total);
  const text = formatReport(rows, accuracy, macroAvg, weightedAvg, total, digits);
  const r3 = (v: number): string => v.toFixed(3);
  return withSummary(
    { classes, accuracy, macroAvg, weightedAvg, text },
    `ClassificationReport { accuracy: ${r3(accuracy)}, macroF1: ${r3(macroAvg.f1)}, weightedF1: ${r3(weightedAvg.f1)}, classes: ${c}, support: ${total} }`,
  );
}

function formatReport(
  rows: [string, ClassScores][],
  accuracy: number,
  macro: ClassScores,
  weighted: ClassScores,
  total: number,
  digits: number,
): string {
  // Same layout as sklearn: a right-aligned name column at least as wide as "weighted avg".
  const width = Math.max("weighted avg".length, ...rows.map(([n]) => n.length));
  const col = Math.max(10, digits + 2);
  const f = (v: number): string => v.toFixed(digits).padStart(col);
  const line = (name: string, s: ClassScores): string =>
    `${name.padStart(width)} ${f(s.precision)}${f(s.recall)}${f(s.f1)}${String(s.support).padStart(col)}`;
  const head = `${"".padStart(width)} ${"precision".padStart(col)}${"recall".padStart(col)}${"f1-score".padStart(col)}${"support".padStart(col)}`;
  return [
    head,
    "",
    ...rows.map(([n, s]) => line(n, s)),
    "",
    `${"accuracy".padStart(width)} ${"".padStart(col * 2)}${f(accuracy)}${String(total).padStart(col)}`,
    line("macro avg", macro),
    line("weighted avg", weighted),
  ].join("\n");
}
