/**
 * Callbacks: objects with optional (possibly async) methods named by training event, run in `order`.
 *
 * The training loop fires, in this order:
 *   beforeFit → (beforeEpoch → beforeTrain → (beforeBatch → afterPred → afterLoss → beforeBackward
 *   → afterBackward → beforeStep → afterStep → afterBatch)* → afterTrain → beforeValidate →
 *   (beforeBatch → afterPred → afterLoss → afterBatch)* → afterValidate → afterEpoch)* → afterFit.
 * As in fastai, `beforeBatch` may replace `learn.xb`/`learn.yb` (dispose what it replaces), and in
 * training `afterPred`/`afterLoss` run INSIDE the gradient computation (TensorFlow.js records the
 * forward pass in one synchronous call): `afterPred` may replace `learn.pred`, `afterLoss` may replace
 * `learn.lossGrad` (what the gradients are taken of) and `learn.loss` (what is recorded). There they
 * must be synchronous. `beforeBackward` and `afterBackward` then see the gradients (`learn.grads`),
 * `beforeStep` may replace them; throwing `CancelBatchException` before the step skips it.
 */
import type { Learner } from "./learner";

/** The names of the training events a callback can handle. */
export const EVENTS = [
  "beforeFit",
  "beforeEpoch",
  "beforeTrain",
  "beforeBatch",
  "afterPred",
  "afterLoss",
  "beforeBackward",
  "afterBackward",
  "beforeStep",
  "afterStep",
  "afterCancelBatch",
  "afterBatch",
  "afterCancelTrain",
  "afterTrain",
  "beforeValidate",
  "afterCancelValidate",
  "afterValidate",
  "afterCancelEpoch",
  "afterEpoch",
  "afterCancelFit",
  "afterFit",
] as const;

/** One training event name. */
export type EventName = (typeof EVENTS)[number];

/** A callback: any object with optional event methods; `order` sorts them (lower runs first, default 0). */
export type Callback = {
  [K in EventName]?: (learn: Learner) => void | Promise<void>;
} & {
  /** Position among the learner's callbacks; lower runs first (default 0). */
  order?: number;
  /** A name used by `learn.cbs` look-ups and in error messages (default: the class name). */
  name?: string;
  /** Set by the learner when the callback is added. */
  learn?: Learner;
  /** Runs during validation too (default true); `false` skips it while validating. */
  runValid?: boolean;
  /** Runs during training (default true); `false` skips it while training. */
  runTrain?: boolean;
};

/**
 * The events of one batch. As fastai, `runTrain`/`runValid` filter only these: a callback with
 * `runValid: false` still sees `beforeEpoch`, `afterEpoch`, ... of a validation phase.
 */
export const INNER_LOOP: ReadonlySet<EventName> = new Set<EventName>(
  EVENTS.slice(EVENTS.indexOf("beforeBatch"), EVENTS.indexOf("afterBatch") + 1),
);

/**
 * The base of the five control-flow exceptions (fastai's `Cancel*Exception`s): a callback throws one
 * to skip part of the loop; the learner catches it at that level and fires `afterCancel<Level>`.
 */
export class CancelException extends Error {}

/** Throw from a callback to skip the rest of this batch (no optimizer step when thrown before it). */
export class CancelBatchException extends CancelException {
  constructor(message = "batch cancelled") {
    super(message);
    this.name = "CancelBatchException";
  }
}
/** Throw from a callback to skip the rest of the training phase of this epoch. */
export class CancelTrainException extends CancelException {
  constructor(message = "training phase cancelled") {
    super(message);
    this.name = "CancelTrainException";
  }
}
/** Throw from a callback to skip the validation phase of this epoch. */
export class CancelValidException extends CancelException {
  constructor(message = "validation cancelled") {
    super(message);
    this.name = "CancelValidException";
  }
}
/** Throw from a callback to skip the rest of this epoch. */
export class CancelEpochException extends CancelException {
  constructor(message = "epoch cancelled") {
    super(message);
    this.name = "CancelEpochException";
  }
}
/** Throw from a callback to stop `fit` cleanly (afterFit still runs). */
export class CancelFitException extends CancelException {
  constructor(message = "fit cancelled") {
    super(message);
    this.name = "CancelFitException";
  }
}

/** Whether `e` is one of the `Cancel*Exception`s (they pass through callbacks unchanged). */
export function isCancel(e: unknown): e is CancelException {
  return e instanceof CancelException;
}

/**
 * Thrown when the training loss becomes NaN or infinite; the weights, optimizer state and
 * BatchNorm statistics are restored to the last state that gave a finite loss.
 */
export class NonFiniteLossError extends Error {
  constructor(
    readonly epoch: number,
    readonly batch: number,
    readonly lr: number,
    readonly loss: number,
  ) {
    super(
      `training stopped: the loss is ${loss} at epoch ${epoch}, batch ${batch} (lr ${lr.toExponential(3)}); ` +
        `${RESTORED}. Lower the learning rate (try learn.lrFind()) or check the data for NaN.`,
    );
    this.name = "NonFiniteLossError";
  }
}

const RESTORED = "the weights, optimizer state and BatchNorm statistics are restored to the last state that gave a finite loss";

/**
 * Thrown when training diverges although the loss is still a number: a loss over 1e4× the best
 * smoothed loss, or NaN/infinite gradients or weights. The last finite state is restored, as for
 * `NonFiniteLossError` (which it extends, so one `catch` handles both).
 */
export class TrainingDivergedError extends NonFiniteLossError {
  constructor(
    epoch: number,
    batch: number,
    lr: number,
    loss: number,
    /** What was seen, e.g. "the loss 3.1e+12 is over 1e4× the best smoothed loss 0.52". */
    readonly reason: string,
  ) {
    super(epoch, batch, lr, loss);
    this.message =
      `training stopped: it diverged at epoch ${epoch}, batch ${batch} (lr ${lr.toExponential(3)}): ${reason}; ` +
      `${RESTORED}. Lower the learning rate (try learn.lrFind()).`;
    this.name = "TrainingDivergedError";
  }
}

/** Thrown by `fit` when interrupted (kernel interrupt or `learn.interrupt()`); the learner stays usable. */
export class FitInterruptedError extends Error {
  constructor(
    readonly epoch: number,
    readonly batch: number,
    readonly training: boolean,
  ) {
    super(
      `training interrupted at epoch ${epoch}, ${training ? "training" : "validation"} batch ${batch}; ` +
        `the weights are those after the last completed step and fit can be called again`,
    );
    this.name = "FitInterruptedError";
  }
}

/** The display name of a callback: its `name`, else its class name. */
export function callbackName(cb: Callback): string {
  if (cb.name) return cb.name;
  const ctor = (cb as { constructor?: { name?: string } }).constructor;
  return ctor?.name && ctor.name !== "Object" ? ctor.name : "callback";
}

/** Sort callbacks by `order`, keeping insertion order among equals. */
export function sortCallbacks(cbs: Callback[]): Callback[] {
  return cbs
    .map((cb, i) => ({ cb, i }))
    .sort((a, b) => (a.cb.order ?? 0) - (b.cb.order ?? 0) || a.i - b.i)
    .map((x) => x.cb);
}
