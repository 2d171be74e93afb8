/**
 * Tracker callbacks (fastai's `EarlyStoppingCallback`, `SaveModelCallback`) and `CSVLogger`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { CancelFitException, type Callback } from "./callback";
import type { Learner } from "./learner";

/** Options shared by the tracker callbacks. */
export interface TrackerOptions {
  /** What to watch: "valid_loss", "train_loss" or a metric name (default "valid_loss"). */
  monitor?: string;
  /** "min" or "max"; default (fastai's rule): "min" when the name contains loss or error (also rmse/mse/mae/perplexity), else "max". */
  comp?: "min" | "max";
  /** Smallest change that counts as an improvement (default 0). */
  minDelta?: number;
}

/** Watches a recorded value each epoch and notes whether it improved. */
abstract class TrackerCallback implements Callback {
  order = 60;
  readonly monitor: string;
  readonly comp: "min" | "max";
  readonly minDelta: number;
  best = NaN;
  newBest = false;
  constructor(opts: TrackerOptions = {}) {
    this.monitor = opts.monitor ?? "valid_loss";
    this.comp = opts.comp ?? (/loss|error|rmse|mse|mae|perplexity/i.test(this.monitor) ? "min" : "max");
    this.minDelta = opts.minDelta ?? 0;
  }
  beforeFit(): void {
    this.best = this.comp === "min" ? Infinity : -Infinity;
  }
  afterEpoch(learn: Learner): void | Promise<void> {
    const names = learn.recorder.metricNames.slice(1, -1); // drop epoch, time
    const idx = names.indexOf(this.monitor);
    if (idx < 0) throw new Error(`${this.constructor.name}: monitor "${this.monitor}" is not recorded; choose one of ${names.join(", ")}`);
    const v = learn.recorder.values[learn.recorder.values.length - 1]![idx]!;
    this.newBest = this.comp === "min" ? v < this.best - this.minDelta : v > this.best + this.minDelta;
    if (this.newBest) this.best = v;
  }
}

/** Options of `EarlyStoppingCallback`. */
export interface EarlyStoppingOptions extends TrackerOptions {
  /** Epochs without improvement before stopping (default 1). */
  patience?: number;
}

/** Stop training when `monitor` has not improved for `patience` epochs. */
export class EarlyStoppingCallback extends TrackerCallback {
  readonly patience: number;
  private wait = 0;
  constructor(opts: EarlyStoppingOptions = {}) {
    super(opts);
    this.patience = opts.patience ?? 1;
  }
  override beforeFit(): void {
    super.beforeFit();
    this.wait = 0;
  }
  override afterEpoch(learn: Learner): void {
    super.afterEpoch(learn);
    if (this.newBest) this.wait = 0;
    else if (++this.wait >= this.patience) {
      console.log(`No improvement since epoch ${learn.epoch - this.wait}: early stopping`);
      throw new CancelFitException();
    }
  }
}

/** Options of `SaveModelCallback`. */
export interface SaveModelOptions extends TrackerOptions {
  /** Checkpoint name under `<path>/models/` (default "model"). */
  fname?: string;
  /** Save every epoch as `<fname>_<epoch>` instead of only improvements (default false). */
  everyEpoch?: boolean;
  /** Save the optimizer state too (default false). */
  withOpt?: boolean;
  /** Load the best checkpoint at the end of training (default true). */
  atEnd?: boolean;
}

/** Save the model when `monitor` improves (or every epoch) and reload the best at the end. */
export class SaveModelCallback extends TrackerCallback {
  readonly fname: string;
  readonly everyEpoch: boolean;
  readonly withOpt: boolean;
  readonly atEnd: boolean;
  constructor(opts: SaveModelOptions = {}) {
    super(opts);
    this.fname = opts.fname ?? "model";
    this.everyEpoch = opts.everyEpoch ?? false;
    this.withOpt = opts.withOpt ?? false;
    this.atEnd = opts.atEnd ?? true;
  }
  override async afterEpoch(learn: Learner): Promise<void> {
    if (this.everyEpoch) {
      await learn.save(`${this.fname}_${learn.epoch}`, { withOpt: this.withOpt });
      return;
    }
    super.afterEpoch(learn);
    if (this.newBest) {
      console.log(`Better model found at epoch ${learn.epoch} with ${this.monitor} value: ${this.best}.`);
      await learn.save(this.fname, { withOpt: this.withOpt });
    }
  }
  async afterFit(learn: Learner): Promise<void> {
    if (!this.everyEpoch && this.atEnd && fs.existsSync(learn.checkpointPath(this.fname))) {
      await learn.load(this.fname, { withOpt: this.withOpt });
    }
  }
}

/** Options of `CSVLogger`. */
export interface CSVLoggerOptions {
  /** File name, relative to the learner's `path` (default "history.csv"). */
  fname?: string;
  /** Append to an existing file instead of overwriting it (default false). */
  append?: boolean;
}

/** Write the per-epoch table (epoch, train_loss, valid_loss, metrics, time) to a CSV file. */
export class CSVLogger implements Callback {
  // right after the Recorder fills the row, before trackers may cancel the fit
  order = 55;
  readonly fname: string;
  readonly append: boolean;
  private file = "";
  constructor(opts: CSVLoggerOptions = {}) {
    this.fname = opts.fname ?? "history.csv";
    this.append = opts.append ?? false;
  }
  beforeFit(learn: Learner): void {
    this.file = path.isAbsolute(this.fname) ? this.fname : path.join(learn.path, this.fname);
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    if (!this.append || !fs.existsSync(this.file)) fs.writeFileSync(this.file, learn.recorder.metricNames.join(",") + "\n");
  }
  afterEpoch(learn: Learner): void {
    fs.appendFileSync(this.file, learn.recorder.log.map(String).join(",") + "\n");
  }
}
