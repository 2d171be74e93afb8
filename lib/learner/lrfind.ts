/**
 * The learning-rate finder (fastai's `lr_find`): train briefly while the learning rate grows
 * exponentially, record the smoothed loss, stop when it diverges, then restore the weights and the
 * optimizer state and suggest learning rates.
 */
import * as util from "node:util";
import * as tf from "../engine/tf";
import { CancelFitException, CancelValidException, NonFiniteLossError } from "./callback";
import type { Learner } from "./learner";
import { disposeState } from "./optimizer";
import { ProgressCallback } from "./progress";
import { ParamScheduler, schedExp, suggestName, valley, type SuggestFunc } from "./schedule";
import { lrFindFigure } from "../display/charts";
import { showPlot } from "../display/plot";
import type { Figure } from "../display/plot";

/** `lrFind`'s defaults (fastai's `lr_find`); `numIt` is raised to at least 6. */
export const lrFindDefaults = {
  startLr: 1e-7,
  endLr: 10,
  numIt: 100,
  stopDiv: true,
  suggestFuncs: [valley] as readonly SuggestFunc[],
  showPlot: true,
} as const;

/** Options of `lrFind`; defaults in `lrFindDefaults`. */
export interface LrFindOptions {
  /** First learning rate (default 1e-7). */
  startLr?: number;
  /** Last learning rate (default 10). */
  endLr?: number;
  /** Training batches to run, cycling the loader if needed (default 100; at least 6). */
  numIt?: number;
  /** Stop when the smoothed loss exceeds 4× its best (default true). */
  stopDiv?: boolean;
  /** Suggestion rules (default `[valley]`; also `slide`, `minimum`, `steep`). */
  suggestFuncs?: SuggestFunc[];
  /** Draw loss vs learning rate with the suggestions marked (default true). */
  showPlot?: boolean;
}

/** What `lrFind` returns: one learning rate per suggestion rule, by its name, plus the recorded curve. */
export interface LrFindResult {
  /** Suggested learning rates, e.g. `{ valley: 1.2e-3 }`. */
  suggestions: Record<string, number>;
  /** The `valley` suggestion, when asked for (likewise `slide`, `minimum`, `steep`). */
  valley?: number;
  slide?: number;
  minimum?: number;
  steep?: number;
  /** Points to mark, by rule name: [lr, loss]. */
  points: Record<string, [number, number]>;
  /** Learning rate per batch. */
  lrs: number[];
  /** Smoothed loss per batch. */
  losses: number[];
  /** The loss-vs-lr chart. */
  figure: Figure;
}

/** fastai's `LRFinder` callback: exponential LR per batch, cancel on divergence or after `numIt` batches. */
export class LRFinder extends ParamScheduler {
  override name = "LRFinder";
  private best = Infinity;
  constructor(
    startLr: number,
    endLr: number,
    private readonly numIt: number,
    private readonly stopDiv: boolean,
  ) {
    super({ lr: schedExp(startLr, endLr) });
  }
  override beforeFit(): void {
    super.beforeFit();
    this.best = Infinity;
  }
  override beforeBatch(learn: Learner): void {
    if (learn.training) this.setAt(learn, learn.trainIter / this.numIt);
  }
  override afterBatch(learn: Learner): void {
    if (!learn.training) return;
    super.afterBatch(learn);
    const smooth = learn.recorder.losses[learn.recorder.losses.length - 1];
    if (smooth === undefined) return;
    if (smooth < this.best) this.best = smooth;
    if (this.stopDiv && (smooth > 4 * this.best || !Number.isFinite(smooth))) throw new CancelFitException();
    if (learn.trainIter >= this.numIt) throw new CancelFitException();
  }
  beforeValidate(): void {
    throw new CancelValidException();
  }
}

/** Run the learning-rate finder on `learn` (see `LrFindOptions`); weights and optimizer state are restored. */
export async function lrFind(learn: Learner, opts: LrFindOptions = {}): Promise<LrFindResult> {
  const d = lrFindDefaults;
  const startLr = opts.startLr ?? d.startLr;
  const endLr = opts.endLr ?? d.endLr;
  const numIt = Math.max(6, opts.numIt ?? d.numIt);
  const stopDiv = opts.stopDiv ?? d.stopDiv;
  const funcs = opts.suggestFuncs ?? [...d.suggestFuncs];
  if (!(startLr > 0 && endLr > startLr)) throw new Error(`lrFind: need 0 < startLr < endLr, got startLr=${startLr}, endLr=${endLr}`);
  const nBatches = learn.dls.train.length;
  if (!nBatches) throw new Error("lrFind: the training loader has no batches");
  if (!learn.opt) learn.createOpt();
  // 1. snapshot every weight (incl. batch-norm statistics) and the optimizer state
  const weights = learn.model.weights;
  const savedW = weights.map((w) => w.read().clone());
  const savedOpt = learn.opt!.stateDict();
  const progress = learn.cbs.filter((c) => c instanceof ProgressCallback);
  learn.removeCbs(progress);
  const finder = new LRFinder(startLr, endLr, numIt, stopDiv);
  try {
    // 2. enough epochs to see numIt batches
    const nEpoch = Math.floor(numIt / nBatches) + 1;
    try {
      await learn.fit(nEpoch, undefined, { cbs: [finder] });
    } catch (e) {
      if (!(e instanceof NonFiniteLossError)) throw e; // a NaN loss is divergence: stop there
    }
  } finally {
    // 3. put everything back
    weights.forEach((w, i) => w.write(savedW[i]!));
    learn.opt!.loadStateDict(savedOpt);
    tf.dispose(savedW);
    disposeState(savedOpt);
    learn.addCbs(progress);
  }
  const lrs = learn.recorder.lrs.slice();
  const losses = learn.recorder.losses.slice();
  return suggest(lrs, losses, numIt, funcs, opts.showPlot ?? d.showPlot);
}

/** Apply suggestion rules to a recorded curve as fastai does (skip the first numIt/10 and last 5 points). */
export function suggest(lrs: number[], losses: number[], numIt: number, funcs: SuggestFunc[], plot = false): LrFindResult {
  let l = lrs.slice(Math.floor(numIt / 10), Math.max(0, lrs.length - 5));
  let y = losses.slice(Math.floor(numIt / 10), Math.max(0, losses.length - 5));
  const nan = y.findIndex((v) => !Number.isFinite(v));
  if (nan >= 0) {
    l = l.slice(0, nan);
    y = y.slice(0, nan);
  }
  const suggestions: Record<string, number> = {};
  const points: Record<string, [number, number]> = {};
  if (l.length < 2) {
    throw new Error(
      `lrFind recorded only ${lrs.length} usable points before the loss diverged; try a smaller startLr, a larger numIt, or stopDiv: false`,
    );
  }
  funcs.forEach((f, i) => {
    const s = f(l, y, numIt);
    const name = suggestName(f, i);
    suggestions[name] = s.lr;
    points[name] = s.point;
  });
  // fastai marks each rule's point (e.g. `minimum` at the lr of the lowest loss, not a tenth of it)
  const figure = lrFindFigure(
    lrs,
    losses,
    Object.entries(points).map(([name, p]) => ({ name, lr: p[0], loss: p[1] })),
  );
  if (plot) showPlot(figure);
  // Printed (e.g. as a notebook cell's value) like fastai's `SuggestedLRs(valley=0.0012)`, not as raw arrays.
  const text = `SuggestedLRs(${Object.entries(suggestions).map(([k, v]) => `${k}=${v.toPrecision(4)}`).join(", ")})`;
  const result = { ...suggestions } as unknown as LrFindResult;
  const hidden = { suggestions, points, lrs, losses, figure, toString: () => text, [util.inspect.custom]: () => text };
  for (const [k, v] of Object.entries(hidden)) Object.defineProperty(result, k, { value: v, enumerable: false });
  Object.defineProperty(result, util.inspect.custom, { value: () => text, enumerable: false });
  return result;
}
