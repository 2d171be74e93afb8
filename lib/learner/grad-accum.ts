/**
 * fastai's `GradientAccumulation` (`callback/training.py`): train with a large effective batch on a
 * machine that only fits small ones. The optimizer steps once per `nAcc` samples seen:
 *   1. `afterLoss` scales the loss the gradients come from by bs/nAcc (inside the gradient
 *      computation), so summed gradients are those of the mean loss over nAcc samples;
 *   2. `afterBackward` adds the batch's gradients to a running sum;
 *   3. `beforeStep` counts the batch's samples: under `nAcc`, it cancels the step
 *      (`CancelBatchException`); at `nAcc` or over, the step takes the sum and the count restarts.
 * So k batches of bs with nAcc = k·bs step as one batch of k·bs would (BatchNorm aside: its
 * statistics still come from each small batch). The recorded loss stays each batch's own mean.
 */
import * as tf from "../engine/tf";
import { CancelBatchException, type Callback } from "./callback";
import type { Learner } from "./learner";

/** fastai's `GradientAccumulation`: the optimizer steps only once every `nAcc` samples, on the summed gradients. */
export class GradientAccumulation implements Callback {
  /** After `MixUp`/`CutMix` (order 0), which replace the loss this scales; fastai's order is MixedPrecision's − 4. */
  order = 6;
  runValid = false;
  /** Samples counted since the last step. */
  count = 0;
  private sum?: Map<tf.Variable, tf.Tensor>;

  constructor(
    /** Samples per optimizer step (default 32, as fastai). */
    readonly nAcc = 32,
  ) {
    if (!Number.isInteger(nAcc) || nAcc < 1) throw new Error(`GradientAccumulation: nAcc is the number of samples per optimizer step, a whole number ≥ 1; got ${nAcc}`);
  }

  beforeFit(): void {
    this.count = 0;
    this.drop();
  }

  afterLoss(learn: Learner): void {
    const bs = learn.yb!.shape[0] ?? 1;
    learn.lossGrad = tf.mul(learn.lossGrad!, bs / this.nAcc);
  }

  afterBackward(learn: Learner): void {
    const sum = this.sum ?? new Map<tf.Variable, tf.Tensor>();
    for (const [v, g] of learn.grads!) {
      const prev = sum.get(v);
      sum.set(v, prev ? tf.add(prev, g) : g.clone());
      prev?.dispose();
    }
    this.sum = sum;
  }

  beforeStep(learn: Learner): void {
    this.count += learn.yb!.shape[0] ?? 1;
    if (this.count < this.nAcc) throw new CancelBatchException("gradient accumulation: no step yet");
    this.count = 0;
    // the step takes the sum; the learner disposes it with the batch
    tf.dispose([...learn.grads!.values()]);
    learn.grads = this.sum;
    this.sum = undefined;
  }

  afterFit(): void {
    this.drop();
  }
  afterCancelFit(): void {
    this.drop();
  }

  /** Forget a partial sum (a fit that ended between steps). */
  private drop(): void {
    if (this.sum) tf.dispose([...this.sum.values()]);
    this.sum = undefined;
  }
}
