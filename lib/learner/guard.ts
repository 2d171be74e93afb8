/**
 * `TrainingGuard`: what keeps a `fit` from leaving a broken model behind. It holds the last state
 * known to give a finite loss — every weight (BatchNorm moving statistics too) and the optimizer
 * state — and says when a batch shows the training is broken:
 *   1. the loss is NaN or infinite;
 *   2. a gradient is NaN or infinite (their sum is: NaN and ±Infinity show through a sum);
 *   3. the loss is over `DIVERGENCE_RATIO` × the best smoothed loss of this fit (the best counted
 *      as at least `DIVERGENCE_FLOOR`, so a near-zero best cannot flag an ordinary hard batch).
 * The learner then restores that state and stops. Snapshots are tensor clones, which share storage
 * until a weight is written (an optimizer step writes new storage), so keeping one costs little.
 */
import * as tf from "../engine/tf";
import { disposeState, type Optimizer, type OptimizerState } from "./optimizer";
import { SmoothLoss } from "./recorder";
import { nativeSumEach } from "../engine/native/sum-each";

/** A training loss over this multiple of the best smoothed loss is divergence. */
export const DIVERGENCE_RATIO = 1e4;
/** The best smoothed loss counts as at least this in that test. */
export const DIVERGENCE_FLOOR = 1e-2;

/** The last good state of one `fit`, and the divergence test. */
export class TrainingGuard {
  private good?: { weights: tf.Tensor[]; opt: OptimizerState };
  private readonly smooth = new SmoothLoss();
  private best = Infinity;

  /** Starts from the model's current state as the last good one. */
  constructor(
    private readonly model: tf.LayersModel,
    private readonly opt: Optimizer,
  ) {
    this.keep(this.snapshot());
  }

  /** Clones of every weight now (the caller hands them to `keep` or disposes them). */
  snapshot(): tf.Tensor[] {
    return this.model.weights.map((w) => w.read().clone());
  }

  /** `weights` (from `snapshot`, now owned here) and the optimizer's state become the last good state. */
  keep(weights: tf.Tensor[]): void {
    this.drop();
    this.good = { weights, opt: this.opt.stateDict() };
  }

  /** Record an accepted batch's loss in the smoothed loss and its best value. */
  accept(loss: number): void {
    this.smooth.accumulate(loss);
    this.best = Math.min(this.best, this.smooth.value);
  }

  /** Why a batch with this loss and gradient sum shows the training is broken, or undefined. */
  problem(loss: number, gradSum: number): string | undefined {
    if (!Number.isFinite(loss)) return `the loss is ${loss}`;
    if (!Number.isFinite(gradSum)) return "a gradient is NaN or infinite";
    const limit = DIVERGENCE_RATIO * Math.max(this.best, DIVERGENCE_FLOOR);
    if (loss > limit) {
      return `the loss ${loss.toExponential(3)} is over ${DIVERGENCE_RATIO.toExponential(0)}× the best smoothed loss ${this.best.toPrecision(4)}`;
    }
    return undefined;
  }

  /** Put back the last good state (weights, BatchNorm statistics, optimizer state). */
  restore(): void {
    if (!this.good) return;
    this.model.weights.forEach((w, i) => w.write(this.good!.weights[i]!));
    this.opt.loadStateDict(this.good.opt);
  }

  /** Release the kept state. */
  drop(): void {
    if (!this.good) return;
    tf.dispose(this.good.weights);
    disposeState(this.good.opt);
    this.good = undefined;
  }

  /** Whether every weight of the model is finite (one sum over all of them). */
  async weightsFinite(): Promise<boolean> {
    const ws = this.model.weights;
    if (!ws.length) return true;
    const total = tf.tidy(() => tf.addN(ws.map((w) => tf.sum(tf.cast(w.read(), "float32")))));
    const v = (await total.data())[0]!;
    total.dispose();
    return Number.isFinite(v);
  }
}

/** The loss's value and the sum of every gradient, in one read (on "native", the sum is one native call). */
export async function lossAndGradSum(loss: tf.Tensor, grads: tf.Tensor[]): Promise<[number, number]> {
  const fast = nativeSumEach(grads);
  if (fast !== undefined) {
    const l = tf.tidy(() => tf.slice(tf.reshape(loss, [-1]), [0], [1]));
    const [v] = await l.data();
    l.dispose();
    return [v!, fast];
  }
  const both = tf.tidy(() => {
    const gradSum = grads.length ? tf.addN(grads.map((g) => tf.sum(g))) : tf.scalar(0);
    return tf.concat([tf.slice(tf.reshape(loss, [-1]), [0], [1]), tf.reshape(gradSum, [1])]);
  });
  const [l, g] = await both.data();
  both.dispose();
  return [l!, g!];
}
