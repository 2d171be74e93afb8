/**
 * `Learner`: a model, its data, a loss and an optimizer, and the training loop with callbacks
 * (fastai's `Learner`): `fit`, `fitOneCycle`, `fineTune`, `lrFind`, `freeze`, `getPreds`, `predict`.
 */
import * as tf from "../engine/tf";
import { modelSummary } from "./summary";
import { ready } from "../engine/backend";
import {
  CancelBatchException,
  CancelEpochException,
  CancelFitException,
  CancelTrainException,
  CancelValidException,
  NonFiniteLossError,
  TrainingDivergedError,
  FitInterruptedError,
  INNER_LOOP,
  callbackName,
  isCancel,
  sortCallbacks,
  type Callback,
  type EventName,
} from "./callback";
import { toLoss, CrossEntropyLossFlat, BCEWithLogitsLossFlat, MSELossFlat, type Loss } from "./losses";
import { MetricTotals, type Metric } from "./metrics";
import { Adam, expandPerGroup, slice, type LrSpec, type OptFunc, type Optimizer } from "./optimizer";
import { bnMomentumWarning, freezeGroups, isTrained, paramGroups, type GroupParam } from "./params";
import { Recorder } from "./recorder";
import { TrainingGuard, lossAndGradSum } from "./guard";
import { ProgressCallback } from "./progress";
import { combinedCos, ParamScheduler } from "./schedule";
import type { Hypers } from "./optimizer";
import { lrFind, type LrFindOptions, type LrFindResult } from "./lrfind";
import { exportModel } from "./export";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint";
import { activationOf, predictManyWith, predictWith, type InferenceInfo } from "./predict";
import type { DataLoaderLike, DataLoadersLike, Prediction, Preds } from "./contracts";
import * as nodePath from "node:path";
import { inKernel } from "../display/display";
import { concatBatches, getPreds, tta, validate, type GetPredsOptions, type TtaOptions, type TtaSplit, type TtaSplitOptions } from "./preds";

/** Options of `new Learner`, with fastai's defaults. */
export interface LearnerOptions {
  /** Loss on logits (default: `BCEWithLogitsLossFlat` when `dls.isMultiLabel`, else `CrossEntropyLossFlat`). */
  lossFunc?: Loss | ((pred: tf.Tensor, targ: tf.Tensor) => tf.Tensor);
  /** Builds the optimizer over parameter groups (default `Adam`). */
  optFunc?: OptFunc;
  /** Default learning rate for `fit`/`fitOneCycle` (default 1e-3). */
  lr?: number;
  /** Metrics computed over the validation set each epoch (default none). */
  metrics?: Metric | Metric[];
  /** Weight decay; undefined keeps the optimizer's default (Adam: 0.01). */
  wd?: number;
  /** Apply weight decay to batch-norm and bias parameters too (default false). */
  wdBnBias?: boolean;
  /** Keep batch-norm layers trainable in frozen groups (default true). */
  trainBn?: boolean;
  /** Extra callbacks (default none; `Recorder` and `ProgressCallback` are always added). */
  cbs?: Callback | Callback[];
  /** Splits the model into parameter groups of layers (default: one group of the whole model). */
  splitter?: (model: tf.LayersModel) => tf.layers.Layer[][];
  /** Folder for `save`/`load` (`<path>/<modelDir>/`) (default `dls.path` or "."). */
  path?: string;
  /** Sub-folder of `path` for checkpoints (default "models"). */
  modelDir?: string;
  /** Add the `ProgressCallback` (default true). */
  progress?: boolean;
}

/** `fitOneCycle`'s defaults (fastai's `fit_one_cycle`). */
export const fitOneCycleDefaults = {
  div: 25,
  divFinal: 1e5,
  pctStart: 0.25,
  moms: [0.95, 0.85, 0.95] as readonly [number, number, number],
} as const;

/** `fineTune`'s defaults (fastai's `fine_tune`); the frozen phase warms up for `frozenPctStart` of its steps. */
export const fineTuneDefaults = {
  baseLr: 2e-3,
  freezeEpochs: 1,
  lrMult: 100,
  pctStart: 0.3,
  div: 5,
  frozenPctStart: 0.99,
} as const;

/** Options of `fitOneCycle`; defaults in `fitOneCycleDefaults`. */
export interface FitOneCycleOptions {
  /** Peak learning rate: number, per-group array or `slice` (default: the learner's `lr`). */
  lrMax?: LrSpec;
  /** Start LR = lrMax/div (default 25). */
  div?: number;
  /** Final LR = lrMax/divFinal (default 1e5). */
  divFinal?: number;
  /** Fraction of steps spent warming up (default 0.25). */
  pctStart?: number;
  /** Momentum start, middle, end (default [0.95, 0.85, 0.95]). */
  moms?: [number, number, number];
  /** Weight decay (default: the learner's `wd`). */
  wd?: number;
  /** Extra callbacks for this call only. */
  cbs?: Callback[];
}

/** Options of `fineTune`; defaults in `fineTuneDefaults`. */
export interface FineTuneOptions {
  /** Learning rate of the unfrozen phase's last group, doubled for the frozen phase (default 2e-3). */
  baseLr?: number;
  /** Epochs with the body frozen (default 1). */
  freezeEpochs?: number;
  /** Ratio of the last group's LR to the first group's in the unfrozen phase (default 100). */
  lrMult?: number;
  /** Warm-up fraction of the unfrozen phase (default 0.3). */
  pctStart?: number;
  /** Start-LR divisor of the unfrozen phase (default 5). */
  div?: number;
  /** Weight decay (default: the learner's `wd`). */
  wd?: number;
  /** Extra callbacks for both phases. */
  cbs?: Callback[];
}

/** Options of `fit`. */
export interface FitOptions {
  /** Weight decay (default: the learner's `wd`). */
  wd?: number;
  /** Extra callbacks for this call only. */
  cbs?: Callback[];
  /** Create a fresh optimizer (forget moving averages) first (default false). */
  resetOpt?: boolean;
}

/** A `Learner` trains `model` on `dls` with `lossFunc` and `optFunc`, driven by callbacks. */
export class Learner<D extends DataLoadersLike = DataLoadersLike> {
  private _dls: D;
  readonly model: tf.LayersModel;
  lossFunc: Loss;
  readonly optFunc: OptFunc;
  lr: number;
  metrics: Metric[];
  wd?: number;
  readonly wdBnBias: boolean;
  readonly trainBn: boolean;
  readonly splitter: (model: tf.LayersModel) => tf.layers.Layer[][];
  path: string;
  modelDir: string;
  /** The optimizer, created on first `fit`/`freeze`. */
  opt?: Optimizer;
  /** Callbacks, sorted by `order`. */
  cbs: Callback[] = [];
  readonly recorder: Recorder;

  // --- loop state, read by callbacks ---
  /** Current epoch (0-based). */
  epoch = 0;
  /** Epochs in the current `fit`. */
  nEpoch = 1;
  /** Index of the batch in the current loader. */
  iter = 0;
  /** Batches in the current loader. */
  nIter = 0;
  /** Training batches done in this `fit`. */
  trainIter = 0;
  /** Fraction of this `fit`'s training batches done. */
  pctTrain = 0;
  /** True during the training phase. */
  training = false;
  xb?: tf.Tensor;
  yb?: tf.Tensor;
  /** The model's output (logits) for the current batch. */
  pred?: tf.Tensor;
  /** The mean loss of the current batch (a scalar tensor): what is recorded. */
  loss?: tf.Tensor;
  /**
   * The scalar the gradients are taken of (fastai's `loss_grad`): `loss` until an `afterLoss`
   * handler replaces it (`GradientAccumulation` scales it, `MixUp` mixes it).
   */
  lossGrad?: tf.Tensor;
  /** `loss` as a number. */
  lossValue?: number;
  /** Gradients of the current training batch, by variable. */
  grads?: Map<tf.Variable, tf.Tensor>;
  /** Validation loss of the last validation phase. */
  validLoss?: number;
  /** Metric values of the last validation phase (same order as `metrics`). */
  metricValues?: number[];

  private stopRequested = false;
  private running = false;
  /** During a fit: the last state that gave a finite loss, and the divergence test. */
  private guard?: TrainingGuard;
  private groups?: tf.layers.Layer[][];
  private params?: GroupParam[][];
  /** The BatchNorm-momentum warning is given once per learner. */
  private bnWarned = false;

  constructor(dls: D, model: tf.LayersModel, opts: LearnerOptions = {}) {
    checkDls(dls);
    this._dls = dls;
    this.model = model;
    this.lossFunc = opts.lossFunc ? toLoss(opts.lossFunc) : defaultLoss(dls);
    this.optFunc = opts.optFunc ?? Adam;
    this.lr = opts.lr ?? 1e-3;
    this.metrics = opts.metrics === undefined ? [] : Array.isArray(opts.metrics) ? opts.metrics : [opts.metrics];
    this.wd = opts.wd;
    this.wdBnBias = opts.wdBnBias ?? false;
    this.trainBn = opts.trainBn ?? true;
    this.splitter = opts.splitter ?? ((m) => [[m]]);
    this.path = opts.path ?? dls.path ?? ".";
    this.modelDir = opts.modelDir ?? "models";
    this.recorder = new Recorder();
    this.addCbs([this.recorder]);
    if (opts.progress ?? true) this.addCbs([new ProgressCallback()]);
    if (opts.cbs) this.addCbs(Array.isArray(opts.cbs) ? opts.cbs : [opts.cbs]);
  }

  /** The data the learner trains on and predicts with. */
  get dls(): D {
    return this._dls;
  }

  /**
   * Replace the data between fits (fastai's `learn.dls = ...`), e.g. progressive resizing: the model,
   * the optimizer and its state are kept; the next `fit` reads the new loaders. The loss, path and
   * vocabulary already chosen stay; new data must have the model's number of classes.
   */
  set dls(dls: D) {
    this.assertIdle("learn.dls = ...");
    checkDls(dls);
    const old = this._dls;
    if (old.c !== undefined && dls.c !== undefined && old.c !== dls.c) {
      throw new Error(`learn.dls = ...: the new DataLoaders have ${dls.c} classes but the model was built for ${old.c}; build a new learner for other classes`);
    }
    this._dls = dls;
  }

  /** Add callbacks (sets their `learn`). */
  addCbs(cbs: Callback[]): this {
    for (const cb of cbs) cb.learn = this;
    this.cbs = sortCallbacks([...this.cbs, ...cbs]);
    return this;
  }

  /** Remove callbacks. */
  removeCbs(cbs: Callback[]): this {
    this.cbs = this.cbs.filter((c) => !cbs.includes(c));
    return this;
  }

  /** The layer groups given by the splitter (computed once). */
  layerGroups(): tf.layers.Layer[][] {
    if (!this.groups) {
      this.groups = this.splitter(this.model);
      if (!Array.isArray(this.groups) || this.groups.length === 0) throw new Error("the splitter must return at least one group of layers");
    }
    return this.groups;
  }

  /** The parameter groups the optimizer works on. */
  paramGroups(): GroupParam[][] {
    if (!this.params) this.params = paramGroups(this.layerGroups(), this.wdBnBias);
    return this.params;
  }

  /** Create the optimizer (`optFunc` over the parameter groups, at `lr`). */
  createOpt(): Optimizer {
    this.opt?.dispose();
    this.opt = this.optFunc(this.paramGroups(), { lr: this.lr });
    if (this.wd !== undefined) this.opt.setHyper("wd", this.wd);
    return this.opt;
  }

  /** Freeze parameter groups `[0, n)` (negative counts from the end); norm layers keep training when `trainBn`. */
  freezeTo(n: number): void {
    if (!this.opt) this.createOpt();
    freezeGroups(this.layerGroups(), n, this.trainBn);
    this.opt!.clearState(); // as fastai: moving averages restart when the trained set changes
  }
  /** Freeze every group but the last. */
  freeze(): void {
    this.freezeTo(-1);
  }
  /** Make every group trainable. */
  unfreeze(): void {
    this.freezeTo(0);
  }

  /** Layers, output shapes, parameter counts and which groups are frozen or trainable, as text. */
  summary(): string {
    return modelSummary(this.model, this.layerGroups());
  }

  /** Run the callbacks' handlers for `event`, in order. */
  async event(name: EventName): Promise<void> {
    for (const cb of this.cbs) {
      const f = this.handler(cb, name);
      if (!f) continue;
      try {
        await f.call(cb, this);
      } catch (e) {
        throw withCallbackName(e, cb, name);
      }
    }
  }

  /**
   * `event` for the handlers that run inside the gradient computation (a training step's `afterPred`
   * and `afterLoss`): TensorFlow.js records a forward pass in one synchronous call, so they cannot wait.
   */
  private eventSync(name: EventName): void {
    for (const cb of this.cbs) {
      const f = this.handler(cb, name);
      if (!f) continue;
      try {
        const r = f.call(cb, this) as unknown;
        if (r && typeof (r as Promise<void>).then === "function") {
          (r as Promise<void>).catch(() => undefined);
          throw new Error(
            `${name} returned a promise: in a training step ${name} runs inside the gradient computation, which cannot wait; make the handler synchronous`,
          );
        }
      } catch (e) {
        throw withCallbackName(e, cb, name);
      }
    }
  }

  private handler(cb: Callback, name: EventName): Callback[EventName] | undefined {
    const f = cb[name];
    // as fastai: runTrain/runValid only filter the per-batch events
    if (!f || (INNER_LOOP.has(name) && (this.training ? cb.runTrain === false : cb.runValid === false))) return undefined;
    return f;
  }

  private async withEvents(
    body: () => Promise<void>,
    kind: "fit" | "epoch" | "train" | "validate" | "batch",
    cancel: new (...a: never[]) => Error,
    beforeAfter?: () => void,
  ): Promise<void> {
    const cap = kind[0]!.toUpperCase() + kind.slice(1);
    try {
      await this.event(`before${cap}` as EventName);
      await body();
    } catch (e) {
      if (!(e instanceof cancel)) throw e;
      await this.event(`afterCancel${cap}` as EventName);
    }
    beforeAfter?.();
    await this.event(`after${cap}` as EventName);
  }

  /** Train for `nEpoch` epochs at a constant learning rate (`lr`: number, per-group array or `slice`). */
  async fit(nEpoch: number, lr?: LrSpec, opts: FitOptions = {}): Promise<void> {
    await ready();
    if (!Number.isInteger(nEpoch) || nEpoch < 0) throw new Error(`fit: nEpoch must be a non-negative integer, got ${nEpoch}`);
    this.assertIdle("fit");
    if (opts.resetOpt || !this.opt) this.createOpt();
    const opt = this.opt!;
    opt.setHyper("lr", lr ?? this.lr);
    const wd = opts.wd ?? this.wd;
    if (wd !== undefined) opt.setHyper("wd", wd);
    this.warnBnMomentum(nEpoch * this.dls.train.length);
    const extra = opts.cbs ?? [];
    this.addCbs(extra);
    this.stopRequested = false;
    // A tslab kernel interrupt only abandons the cell's promise; listen for it so training really stops.
    const onSigint = () => this.interrupt();
    const listen = inKernel();
    if (listen) process.on("SIGINT", onSigint);
    this.running = true;
    try {
      this.guard = new TrainingGuard(this.model, opt);
      this.nEpoch = nEpoch;
      this.epoch = 0;
      this.trainIter = 0;
      this.pctTrain = 0;
      this.lossValue = undefined;
      await this.withEvents(
        async () => {
          for (let epoch = 0; epoch < nEpoch; epoch++) {
            this.epoch = epoch;
            await this.withEvents(() => this.doEpoch(), "epoch", CancelEpochException);
          }
        },
        "fit",
        CancelFitException,
      );
    } finally {
      if (listen) process.off("SIGINT", onSigint);
      this.guard?.drop();
      this.guard = undefined;
      this.running = false;
      this.training = false;
      this.disposeBatch();
      this.removeCbs(extra);
    }
  }

  /** Once per learner: BatchNorm at tfjs's default momentum leaves validation near chance in a short fit. */
  private warnBnMomentum(steps: number): void {
    if (this.bnWarned || steps === 0) return;
    const warning = bnMomentumWarning(this.model, steps);
    if (!warning) return;
    this.bnWarned = true;
    console.warn(warning);
  }

  /** Refuse (changing nothing) while a fit runs: a second call must not touch the running one's lr, groups or weights. */
  private assertIdle(what: string): void {
    if (this.running) {
      throw new Error(`${what}: this learner is already training (an earlier cell may still run); await it, or call learn.interrupt() to stop it`);
    }
  }

  private currentLr(): number {
    return this.opt!.hypers[this.opt!.hypers.length - 1]!.lr;
  }

  /** Ask a running `fit` to stop before its next batch (a kernel interrupt does this); it rejects with `FitInterruptedError`. */
  interrupt(): void {
    this.stopRequested = true;
  }

  private async doEpoch(): Promise<void> {
    await this.withEvents(() => this.allBatches(this.dls.train, true), "train", CancelTrainException);
    this.training = false;
    // The last step of the phase is checked by no later loss: look at the weights themselves.
    if (this.guard && !(await this.guard.weightsFinite())) {
      this.guard.restore();
      throw new TrainingDivergedError(this.epoch, this.iter, this.currentLr(), NaN, "a weight became NaN or infinite");
    }
    this.validLoss = undefined;
    this.metricValues = undefined;
    if (this.dls.valid && this.dls.valid.length > 0) {
      await this.withEvents(() => this.allBatches(this.dls.valid, false), "validate", CancelValidException);
    }
  }

  private async allBatches(dl: DataLoaderLike, training: boolean): Promise<void> {
    this.training = training;
    this.nIter = dl.length;
    let lossSum = 0;
    let count = 0;
    const preds: tf.Tensor[] = [];
    const targs: tf.Tensor[] = [];
    const totals = new MetricTotals(this.metrics);
    try {
      let i = 0;
      for await (const b of dl) {
        this.iter = i++;
        this.xb = b.xb;
        this.yb = b.yb;
        this.lossValue = undefined;
        if (this.stopRequested) {
          this.stopRequested = false;
          throw new FitInterruptedError(this.epoch, this.iter, training);
        }
        try {
          // fastai's TrainEvalCallback counts a training batch (even a cancelled one) before other afterBatch handlers run
          const countBatch = training ? () => this.countTrainBatch() : undefined;
          await this.withEvents(() => (training ? this.trainBatch() : this.validBatch()), "batch", CancelBatchException, countBatch);
          if (!training && this.pred && this.lossValue !== undefined) {
            const bs = this.yb.shape[0] ?? 1;
            lossSum += this.lossValue * bs;
            count += bs;
            // additive metrics (accuracy, perplexity, ...) are summed per batch; only the others keep predictions
            totals.add(this.pred, this.yb);
            if (totals.keepsPreds) {
              preds.push(tf.keep(this.pred.clone()));
              targs.push(tf.keep(this.yb.clone()));
            }
          }
        } finally {
          this.disposeBatch();
          // a callback that replaced xb/yb (MixUp) disposes what it replaced; this catches one that did not
          for (const t of [b.xb, b.yb]) if (!t.isDisposed) t.dispose();
        }
      }
      if (!training) {
        this.validLoss = count ? lossSum / count : NaN;
        if (this.metrics.length && count) {
          if (!totals.keepsPreds) this.metricValues = totals.values();
          else {
            const [p, t] = concatBatches(preds, targs);
            try {
              this.metricValues = totals.values({ preds: p, targs: t });
            } finally {
              p.dispose();
              t.dispose();
            }
          }
        }
      }
    } finally {
      tf.dispose(preds);
      tf.dispose(targs);
    }
  }

  private disposeBatch(): void {
    const ts = [this.xb, this.yb, this.pred, this.loss, this.lossGrad, ...(this.grads ? this.grads.values() : [])];
    for (const t of ts) if (t && !t.isDisposed) t.dispose();
    this.xb = this.yb = this.pred = this.loss = this.lossGrad = undefined;
    this.grads = undefined;
  }

  /**
   * One training step, in fastai's order: forward, `afterPred`, loss, `afterLoss` (both inside the
   * gradient computation, so a callback's change to the loss changes the gradients), then the checks,
   * `beforeBackward`, `afterBackward`, `beforeStep`, the optimizer step, `afterStep`. A batch the guard
   * finds broken (see `guard.ts`) restores the last good state and stops; otherwise the state it
   * started from becomes the last good state.
   */
  private async trainBatch(): Promise<void> {
    const trained = this.paramGroups().flat().filter(isTrained);
    const guard = this.guard!;
    // Moving statistics change in the forward pass: copy every weight first.
    const before = guard.snapshot();
    let kept = false;
    try {
      // Tensors a handler replaces are disposed here (once nothing refers to them); what it creates is kept.
      // A handler that throws (e.g. CancelBatchException from afterLoss) must not escape the gradient
      // computation: tfjs frees the forward pass's saved tensors only when it finishes. So the error is
      // held, a constant is returned (no gradient flows), and the error is thrown once it has finished.
      let failure: { error: unknown } | undefined;
      let zero: tf.Tensor | undefined;
      const forward = () => {
        let out: tf.Tensor | undefined;
        let loss: tf.Tensor | undefined;
        try {
          out = tf.keep(this.model.apply(this.xb!, { training: true }) as tf.Tensor);
          this.pred = out;
          this.eventSync("afterPred");
          this.pred = tf.keep(this.pred!);
          if (this.pred !== out) out.dispose();
          loss = tf.keep(this.lossFunc.forward(this.pred, this.yb!, "mean"));
          this.loss = this.lossGrad = loss;
          this.eventSync("afterLoss");
          this.loss = tf.keep(this.loss!);
          this.lossGrad = tf.keep(this.lossGrad!);
          if (loss !== this.loss && loss !== this.lossGrad) loss.dispose();
          return this.lossGrad as tf.Scalar;
        } catch (error) {
          failure = { error };
          for (const t of [out, loss]) if (t && t !== this.pred && t !== this.loss && t !== this.lossGrad && !t.isDisposed) t.dispose();
          zero = tf.keep(tf.scalar(0));
          return zero as tf.Scalar;
        }
      };
      if (trained.length) {
        let result: ReturnType<typeof tf.variableGrads> | undefined;
        try {
          result = tf.variableGrads(forward, trained.map((p) => p.variable));
        } catch (e) {
          // with the constant, tfjs finds no variable reached ("Cannot find a connection"): the held error is the real one
          if (!failure) throw e;
        }
        if (failure) {
          if (result) tf.dispose(Object.values(result.grads));
          zero?.dispose();
          throw failure.error;
        }
        const { value, grads } = result!;
        this.lossGrad = value;
        // A parameter the loss does not reach (e.g. a layer a model built but does not use) has no
        // gradient: as PyTorch's optimizers skip a grad of None, it is left out of this step.
        this.grads = new Map(trained.filter((p) => grads[p.variable.name] != null).map((p) => [p.variable, grads[p.variable.name]!]));
      } else {
        tf.tidy(forward);
        if (failure) {
          zero?.dispose();
          throw failure.error;
        }
        this.grads = new Map();
      }
      const [lossValue, gradSum] = await lossAndGradSum(this.loss!, [...this.grads.values()]);
      this.lossValue = lossValue;
      const problem = guard.problem(lossValue, gradSum);
      if (problem) {
        guard.restore();
        if (!Number.isFinite(this.lossValue)) throw new NonFiniteLossError(this.epoch, this.iter, this.currentLr(), this.lossValue);
        throw new TrainingDivergedError(this.epoch, this.iter, this.currentLr(), this.lossValue, problem);
      }
      guard.keep(before);
      kept = true;
      guard.accept(lossValue);
      await this.event("beforeBackward");
      await this.event("afterBackward");
      await this.event("beforeStep");
      this.opt!.step(this.grads);
      await this.event("afterStep");
    } finally {
      if (!kept) tf.dispose(before);
    }
  }

  private countTrainBatch(): void {
    this.trainIter += 1;
    this.pctTrain = this.trainIter / (this.nEpoch * Math.max(1, this.nIter));
  }

  private async validBatch(): Promise<void> {
    this.pred = tf.tidy(() => this.model.apply(this.xb!, { training: false }) as tf.Tensor);
    await this.event("afterPred");
    this.loss = this.lossFunc.forward(this.pred!, this.yb!, "mean");
    this.lossValue = (await this.loss.data())[0]!;
    await this.event("afterLoss");
  }

  /** Train with fastai's one-cycle policy: cosine warm-up to `lrMax` then cosine annealing; momentum the other way. */
  async fitOneCycle(nEpoch: number, opts: FitOneCycleOptions = {}): Promise<void> {
    this.assertIdle("fitOneCycle");
    if (!this.opt) this.createOpt();
    const d = fitOneCycleDefaults;
    const div = opts.div ?? d.div;
    const divFinal = opts.divFinal ?? d.divFinal;
    const pctStart = opts.pctStart ?? d.pctStart;
    const [m0, m1, m2] = opts.moms ?? d.moms;
    this.opt!.setHyper("lr", opts.lrMax ?? this.lr);
    const lrMax = this.opt!.hypers.map((h) => h.lr);
    const sched = new ParamScheduler({
      lr: combinedCos(
        pctStart,
        lrMax.map((l) => l / div),
        lrMax,
        lrMax.map((l) => l / divFinal),
      ),
      mom: combinedCos(pctStart, m0, m1, m2),
    });
    await this.fit(nEpoch, lrMax, { wd: opts.wd, cbs: [sched, ...(opts.cbs ?? [])] });
  }

  /** fastai's `fine_tune`: one-cycle with the body frozen, then unfrozen with discriminative learning rates. */
  async fineTune(epochs: number, opts: FineTuneOptions = {}): Promise<void> {
    this.assertIdle("fineTune");
    const d = fineTuneDefaults;
    let baseLr = opts.baseLr ?? d.baseLr;
    const freezeEpochs = opts.freezeEpochs ?? d.freezeEpochs;
    const lrMult = opts.lrMult ?? d.lrMult;
    this.freeze();
    await this.fitOneCycle(freezeEpochs, { lrMax: slice(baseLr), pctStart: d.frozenPctStart, wd: opts.wd, cbs: opts.cbs });
    baseLr /= 2;
    this.unfreeze();
    await this.fitOneCycle(epochs, {
      lrMax: slice(baseLr / lrMult, baseLr),
      pctStart: opts.pctStart ?? d.pctStart,
      div: opts.div ?? d.div,
      wd: opts.wd,
      cbs: opts.cbs,
    });
  }

  /** Set a hyper-parameter on every group now (number, per-group array or `slice`). */
  setHyper(key: keyof Hypers, v: LrSpec): void {
    if (!this.opt) this.createOpt();
    this.opt!.setHyper(key, v);
  }

  /** Learning rates per group that `v` gives with this learner's groups. */
  lrsFor(v: LrSpec): number[] {
    return expandPerGroup(v, this.layerGroups().length);
  }

  /** Predictions (activated), targets and optionally per-item losses over a loader, in loader order; caller disposes. */
  async getPreds(opts: GetPredsOptions = {}): Promise<Preds> {
    return getPreds(this, opts);
  }

  /** Validation loss and metrics over a loader (default the validation set): `[validLoss, ...metrics]`. */
  async validate(opts: { dsIdx?: number; dl?: DataLoaderLike } = {}): Promise<number[]> {
    return validate(this, opts);
  }

  /**
   * fastai's `tta`: `n` passes with the training transforms, averaged, then lerp(mean, plain, `beta`); with
   * `beta: null` both unblended (`{ augPreds, preds, targs }`, fastai's `(aug_preds, preds)`); caller disposes.
   */
  async tta(opts: TtaSplitOptions): Promise<TtaSplit>;
  async tta(opts?: TtaOptions): Promise<Preds>;
  async tta(opts: TtaOptions = {}): Promise<Preds | TtaSplit> {
    return tta(this, opts);
  }

  /** fastai's `lr_find`: sweep the learning rate exponentially, plot loss vs LR, suggest LRs; weights and optimizer state are restored. */
  async lrFind(opts: LrFindOptions = {}): Promise<LrFindResult> {
    this.assertIdle("lrFind");
    await ready();
    return lrFind(this, opts);
  }

  /** Predict one item (file path or encoded image, preprocessed as the validation set; or a prepared tensor). */
  async predict(input: string | Buffer | tf.Tensor): Promise<Prediction> {
    return predictWith(this.model, this.inferenceInfo(), input);
  }

  /** Predict many items in one batch: paths / encoded images, or a prepared NHWC tensor (not disposed). */
  async predictBatch(inputs: (string | Buffer)[] | tf.Tensor): Promise<Prediction[]> {
    return predictManyWith(this.model, this.inferenceInfo(), inputs);
  }

  private inferenceInfo(): InferenceInfo {
    const spec = typeof this.dls.inferenceSpec === "function" ? this.dls.inferenceSpec() : null;
    return { vocab: this.dls.vocab ?? [], isMultiLabel: !!this.dls.isMultiLabel, inferenceSpec: spec, ...activationOf(this.lossFunc) };
  }

  /** Write a self-contained inference artifact (model JSON + weights + vocab + inference spec) to `dir`, for `loadLearner`. */
  async export(dir = "export"): Promise<void> {
    const info = this.inferenceInfo();
    const target = nodePath.isAbsolute(dir) ? dir : nodePath.join(this.path, dir);
    await exportModel(target, this.model, { vocab: info.vocab, isMultiLabel: info.isMultiLabel, inferenceSpec: info.inferenceSpec, loss: this.lossFunc });
  }

  /** The checkpoint file of `name`: `<path>/<modelDir>/<name>.tsfast`. */
  checkpointPath(name: string): string {
    return nodePath.join(this.path, this.modelDir, `${name}.tsfast`);
  }

  /** Save weights and optimizer state to `<path>/models/<name>.tsfast`; returns the file. */
  async save(name: string, opts: { withOpt?: boolean } = {}): Promise<string> {
    await ready();
    const file = this.checkpointPath(name);
    await saveCheckpoint(file, this.model, (opts.withOpt ?? true) ? this.opt : undefined);
    return file;
  }

  /** Load weights (and optimizer state, default) saved by `save(name)`. */
  async load(name: string, opts: { withOpt?: boolean } = {}): Promise<this> {
    await ready();
    if (!this.opt) this.createOpt();
    await loadCheckpoint(this.checkpointPath(name), this.model, this.opt, opts.withOpt ?? true);
    return this;
  }

  /** Release the optimizer state (the model stays the caller's). */
  dispose(): void {
    this.opt?.dispose();
    this.opt = undefined;
  }
}

/**
 * The loss a target asks for, as fastai's blocks give it: cross-entropy over classes (over the last
 * axis, per pixel, for masks), BCE for multi-label, mean squared error for points and numbers.
 */
export function defaultLoss(dls: DataLoadersLike): Loss {
  switch (dls.targetKind) {
    case "points":
    case "regression":
      return MSELossFlat();
    case "mask":
      return CrossEntropyLossFlat({ axis: -1 });
    default:
      return dls.isMultiLabel ? BCEWithLogitsLossFlat() : CrossEntropyLossFlat();
  }
}

/** The DataLoaders a `Learner` can train on: one input and one target per batch. */
function checkDls(dls: DataLoadersLike): void {
  if (!dls || !dls.train) throw new Error("a Learner needs DataLoaders with a `train` loader (and usually a `valid` one)");
  if ((dls.nInp ?? 1) !== 1 || (dls.nTargets ?? 1) !== 1) {
    throw new Error(
      `Learner trains a model with one input and one target; these DataLoaders have ${dls.nInp ?? 1} inputs and ${dls.nTargets ?? 1} targets ` +
        "(iterate them yourself for now: each batch's xs and ys hold every input and target)",
    );
  }
}

/** A callback's error, its message naming the callback and the event (cancellations pass unchanged). */
function withCallbackName(e: unknown, cb: Callback, name: EventName): unknown {
  if (isCancel(e)) return e;
  if (e instanceof Error && !e.message.includes(" in callback ")) e.message = `${e.message} (in callback ${callbackName(cb)}.${name})`;
  return e;
}
