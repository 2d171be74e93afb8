/**
 * fastai's optimizer steppers: small functions that each do one part of an optimizer step, so that
 * SGD, momentum, RMSProp and Adam are lists of them (`new Optimizer(params, [weightDecay, sgdStep])`).
 *
 * A stepper sees one parameter at a time: its value `p`, its gradient `grad`, the group's
 * hyper-parameters (`lr`, `mom`, `sqrMom`, `eps`, `wd`) and the state earlier steppers and earlier
 * steps left (`gradAvg`, `sqrAvg`, `step`). It returns what it changes, as fastai's steppers return a
 * dict: a new `p`, a new `grad` for the steppers after it, or new state. Tensors are immutable in
 * TensorFlow.js, so nothing is updated in place; the `Optimizer` writes `p` and the state back once
 * every stepper has run (all inside one `tf.tidy`).
 */
import * as tf from "../engine/tf";

/** What a stepper reads: one parameter, its gradient, its group's hyper-parameters and its state. */
export interface StepArgs {
  /** The parameter's value so far in this step (after the steppers before this one). */
  p: tf.Tensor;
  /** Its gradient (changed by `l2Reg` for the steppers after it). */
  grad: tf.Tensor;
  /** Whether weight decay applies to this parameter (false for batch-norm and bias parameters). */
  doWd: boolean;
  /** Learning rate. */
  lr: number;
  /** Momentum: the weight of the old gradient average (Adam's beta1). */
  mom: number;
  /** The weight of the old squared-gradient average (Adam's beta2, RMSProp's alpha). */
  sqrMom: number;
  /** Added to the denominator of RMSProp and Adam. */
  eps: number;
  /** Weight decay. */
  wd: number;
  /** State: the moving average of gradients (`averageGrad`). */
  gradAvg?: tf.Tensor;
  /** State: the moving average of squared gradients (`averageSqrGrad`). */
  sqrAvg?: tf.Tensor;
  /** State: the steps taken so far (`stepStat`). */
  step?: number;
  /** Set by `partial` for `averageGrad` / `averageSqrGrad`: average with weights `mom` and `1 - mom`. */
  dampening?: boolean;
}

/** What a stepper changes: the parameter, the gradient later steppers see, or state. */
export interface StepUpdate {
  p?: tf.Tensor;
  grad?: tf.Tensor;
  gradAvg?: tf.Tensor;
  sqrAvg?: tf.Tensor;
  step?: number;
}

/** One part of an optimizer step (fastai's optimizer callbacks). */
export type Stepper = (a: StepArgs) => StepUpdate | void;

/** fastai's `partial(stepper, dampening=True)`: the stepper with some arguments fixed. */
export function partial(stepper: Stepper, fixed: Partial<StepArgs>): Stepper {
  if (typeof stepper !== "function") throw new Error(`partial: the first argument must be a stepper function, got ${typeof stepper}`);
  const named: Stepper = (a) => stepper({ ...a, ...fixed });
  Object.defineProperty(named, "name", { value: `${stepper.name}(${JSON.stringify(fixed)})` });
  return named;
}

/** Plain gradient descent: `p ← p − lr·grad`. */
export const sgdStep: Stepper = ({ p, grad, lr }) => ({ p: tf.sub(p, tf.mul(grad, lr)) });

/** Decoupled weight decay (AdamW's): `p ← p·(1 − lr·wd)`, for parameters that take weight decay. */
export const weightDecay: Stepper = ({ p, lr, wd, doWd }) => (doWd && wd !== 0 ? { p: tf.mul(p, 1 - lr * wd) } : undefined);

/** L2 regularisation (PyTorch's `weight_decay`): `grad ← grad + wd·p`, for parameters that take weight decay. */
export const l2Reg: Stepper = ({ p, grad, wd, doWd }) => (doWd && wd !== 0 ? { grad: tf.add(grad, tf.mul(p, wd)) } : undefined);

/**
 * The moving average of gradients, state `gradAvg` (starts at zero):
 * `gradAvg ← mom·gradAvg + grad`, or with `dampening` `mom·gradAvg + (1 − mom)·grad`.
 */
export const averageGrad: Stepper = ({ grad, mom, gradAvg, dampening }) => {
  const old = gradAvg ?? tf.zerosLike(grad);
  return { gradAvg: tf.add(tf.mul(old, mom), dampening ? tf.mul(grad, 1 - mom) : grad) };
};

/**
 * The moving average of squared gradients, state `sqrAvg` (starts at zero), dampened unless
 * `dampening` is set to false: `sqrAvg ← sqrMom·sqrAvg + (1 − sqrMom)·grad²`.
 */
export const averageSqrGrad: Stepper = ({ grad, sqrMom, sqrAvg, dampening }) => {
  const old = sqrAvg ?? tf.zerosLike(grad);
  const g2 = tf.square(grad);
  return { sqrAvg: tf.add(tf.mul(old, sqrMom), dampening === false ? g2 : tf.mul(g2, 1 - sqrMom)) };
};

/** Counts the steps, state `step` (Adam's debiasing needs it). */
export const stepStat: Stepper = ({ step }) => ({ step: (step ?? 0) + 1 });

/** SGD with momentum: `p ← p − lr·gradAvg` (after `averageGrad`). */
export const momentumStep: Stepper = ({ p, lr, gradAvg }) => ({ p: tf.sub(p, tf.mul(need(gradAvg, "momentumStep", "gradAvg", "averageGrad"), lr)) });

/** RMSProp: `p ← p − lr·(gradAvg or grad) / (√sqrAvg + eps)` (after `averageSqrGrad`, and `averageGrad` for momentum). */
export const rmsPropStep: Stepper = ({ p, grad, lr, eps, gradAvg, sqrAvg }) => {
  const denom = tf.add(tf.sqrt(need(sqrAvg, "rmsPropStep", "sqrAvg", "averageSqrGrad")), eps);
  return { p: tf.sub(p, tf.mul(tf.div(gradAvg ?? grad, denom), lr)) };
};

/**
 * Adam, after dampened `averageGrad`, `averageSqrGrad` and `stepStat`:
 *   1. debias1 = 1 − mom^step;  debias2 = 1 − sqrMom^step   (the averages started at zero)
 *   2. p ← p − lr/debias1 · gradAvg / (√(sqrAvg/debias2) + eps)
 */
export const adamStep: Stepper = ({ p, lr, mom, sqrMom, eps, gradAvg, sqrAvg, step }) => {
  const t = need(step, "adamStep", "step", "stepStat");
  const debias1 = 1 - Math.pow(mom, t);
  const debias2 = 1 - Math.pow(sqrMom, t);
  const denom = tf.add(tf.sqrt(tf.div(need(sqrAvg, "adamStep", "sqrAvg", "averageSqrGrad"), debias2)), eps);
  return { p: tf.sub(p, tf.mul(tf.div(need(gradAvg, "adamStep", "gradAvg", "averageGrad"), denom), lr / debias1)) };
};

function need<T>(v: T | undefined, who: string, what: string, maker: string): T {
  if (v === undefined) throw new Error(`${who} needs the state "${what}": put ${maker} before ${who} in the optimizer's stepper list`);
  return v;
}
