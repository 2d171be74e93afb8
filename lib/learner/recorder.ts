/**
 * `Recorder`: what happened during training — the smoothed training loss and hyper-parameters per
 * batch, and per epoch the train loss, valid loss, metrics and time — plus `plotLoss`/`plotSched`.
 */
import type { Callback } from "./callback";
import type { Learner } from "./learner";
import { lossFigure, schedFigure } from "../display/charts";
import { showPlot } from "../display/plot";
import type { Figure } from "../display/plot";

/** fastai's `AvgSmoothLoss`: debiased exponential moving average, v ← β·v + (1 − β)·loss; value = v/(1 − β^count). */
export class SmoothLoss {
  private val = 0;
  private count = 0;
  constructor(readonly beta = 0.98) {}
  reset(): void {
    this.val = 0;
    this.count = 0;
  }
  accumulate(loss: number): void {
    this.count += 1;
    this.val = this.beta * this.val + (1 - this.beta) * loss;
  }
  get value(): number {
    return this.count === 0 ? NaN : this.val / (1 - Math.pow(this.beta, this.count));
  }
}

/** Records losses, hyper-parameters and metrics during `fit`; always present as `learn.recorder`. */
export class Recorder implements Callback {
  order = 50;
  name = "Recorder";
  /** Smoothed training loss after each training batch. */
  losses: number[] = [];
  /** Learning rate of the last parameter group at each training batch. */
  lrs: number[] = [];
  /** Momentum of the last parameter group at each training batch. */
  moms: number[] = [];
  /** Per epoch: [train_loss, valid_loss, ...metrics]. */
  values: number[][] = [];
  /** Training iteration count at the end of each epoch (x positions of valid losses in `plotLoss`). */
  iters: number[] = [];
  /** Seconds each epoch took. */
  times: number[] = [];
  /** Column names of a log row: epoch, train_loss, valid_loss, metrics..., time. */
  metricNames: string[] = [];
  /** The last epoch's row, formatted as shown: epoch, train_loss, valid_loss, metrics..., time ("None" for the
   * validation columns when the epoch had no validation pass). */
  log: (string | number)[] = [];
  readonly smoothLoss: SmoothLoss;
  private epochStart = 0;

  constructor(beta = 0.98) {
    this.smoothLoss = new SmoothLoss(beta);
  }

  beforeFit(learn: Learner): void {
    this.losses = [];
    this.lrs = [];
    this.moms = [];
    this.values = [];
    this.iters = [];
    this.times = [];
    this.smoothLoss.reset();
    this.metricNames = ["epoch", "train_loss", "valid_loss", ...learn.metrics.map((m) => m.name), "time"];
  }
  beforeEpoch(): void {
    this.epochStart = Date.now();
  }
  afterBatch(learn: Learner): void {
    if (!learn.training || learn.lossValue === undefined) return;
    this.smoothLoss.accumulate(learn.lossValue);
    const h = learn.opt!.hypers[learn.opt!.hypers.length - 1]!;
    this.losses.push(this.smoothLoss.value);
    this.lrs.push(h.lr);
    this.moms.push(h.mom);
  }
  afterEpoch(learn: Learner): void {
    const secs = (Date.now() - this.epochStart) / 1000;
    const v = [this.smoothLoss.value, learn.validLoss ?? NaN, ...(learn.metricValues ?? learn.metrics.map(() => NaN))];
    this.values.push(v);
    this.iters.push(this.losses.length);
    this.times.push(secs);
    // Without a validation pass (no validation set, or an empty one) there is no valid loss or metric to
    // show: fastai shows None there, not a number; `values` keeps NaN for plots.
    const shown: (string | number)[] = learn.validLoss === undefined ? [v[0]!, ...v.slice(1).map(() => "None")] : v;
    this.log = [learn.epoch, ...shown, formatTime(secs)];
  }

  /** Plot the smoothed training loss per batch and the validation loss per epoch (fastai's `plot_loss`). */
  plotLoss(opts: { skipStart?: number; withValid?: boolean } = {}): void {
    showPlot(this.lossFigure(opts));
  }

  /** The figure `plotLoss` draws (train loss from `skipStart`, default 5; valid loss per epoch). */
  lossFigure(opts: { skipStart?: number; withValid?: boolean } = {}): Figure {
    return lossFigure(this, opts);
  }

  /** Plot the learning rate and momentum per training batch (fastai's `plot_sched`). */
  plotSched(): void {
    showPlot(this.schedFigure());
  }

  /** The figure `plotSched` draws. */
  schedFigure(): Figure {
    return schedFigure({ lr: this.lrs, mom: this.moms });
  }
}

/** mm:ss, as fastai prints epoch times. */
export function formatTime(secs: number): string {
  const s = Math.round(secs);
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}
