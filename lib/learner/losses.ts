/**
 * Loss functions (fastai's `*Flat` losses). Models output LOGITS; every loss takes logits, and knows
 * the activation that turns them into probabilities (`activation`) and back into labels (`decodes`).
 */
import * as tf from "../engine/tf";

/** How a loss reduces its per-item values. */
export type Reduction = "mean" | "sum" | "none";

/** A loss: `forward(logits, targets, reduction)` plus how to read its outputs. */
export interface Loss {
  /** Name shown in logs (`CrossEntropyLossFlat`, ...). */
  readonly name: string;
  /** The loss of `pred` (logits) against `targ`, reduced as asked (default "mean"). */
  forward(pred: tf.Tensor, targ: tf.Tensor, reduction?: Reduction): tf.Tensor;
  /** Logits → what `getPreds` returns (softmax, sigmoid, identity). */
  activation(pred: tf.Tensor): tf.Tensor;
  /** Activated predictions → decoded labels (argmax, thresholding, identity). */
  decodes(probs: tf.Tensor): tf.Tensor;
  /** The targets are class indices (fastai's `y_int`): `MixUp`/`CutMix` mix the losses, not the targets (default false). */
  readonly yInt?: boolean;
}

function reduce(t: tf.Tensor, reduction: Reduction): tf.Tensor {
  if (reduction === "none") return t;
  return reduction === "sum" ? tf.sum(t) : tf.mean(t);
}

/** Flatten logits to [N, c] (class axis last) and integer targets to [N]. */
function flatClass(pred: tf.Tensor, targ: tf.Tensor): { logits: tf.Tensor2D; labels: tf.Tensor1D } {
  const c = pred.shape[pred.rank - 1]!;
  const logits = tf.reshape(pred, [-1, c]) as tf.Tensor2D;
  const labels = tf.cast(tf.reshape(targ, [-1]), "int32") as tf.Tensor1D;
  if (labels.shape[0] !== logits.shape[0]) {
    throw new Error(`CrossEntropyLossFlat: ${logits.shape[0]} predictions but ${labels.shape[0]} targets (pred shape [${pred.shape}], targ shape [${targ.shape}])`);
  }
  return { logits, labels };
}

/** Options of `CrossEntropyLossFlat`. */
export interface CrossEntropyOptions {
  /** Label smoothing ε: the target puts 1 − ε on the class and ε spread over all c classes (default 0). */
  labelSmoothing?: number;
  /**
   * The class axis of the predictions (default -1, the last: tsfast is channels-last, so per-pixel
   * logits `[n, h, w, classes]` of a segmentation model need nothing); fastai's `axis=1` is for
   * channels-first `[n, classes, h, w]`. Every other axis is flattened into items.
   */
  axis?: number;
}

/** `t` with axis `axis` moved last (unchanged when it already is). */
function classAxisLast(t: tf.Tensor, axis: number): tf.Tensor {
  const a = axis < 0 ? t.rank + axis : axis;
  if (a < 0 || a >= t.rank) throw new Error(`CrossEntropyLossFlat: axis ${axis} is not an axis of predictions of shape [${t.shape}]`);
  if (a === t.rank - 1) return t;
  const perm = [...Array(t.rank).keys()].filter((i) => i !== a).concat(a);
  return tf.transpose(t, perm);
}

class CrossEntropy implements Loss {
  readonly name: string;
  readonly yInt = true;
  constructor(
    private readonly eps: number,
    name: string,
    private readonly axis = -1,
  ) {
    this.name = name;
  }
  forward(pred: tf.Tensor, targ: tf.Tensor, reduction: Reduction = "mean"): tf.Tensor {
    return tf.tidy(() => {
      const { logits, labels } = flatClass(classAxisLast(pred, this.axis), targ);
      const c = logits.shape[1];
      // 1. log-probabilities; 2. NLL of the true class; 3. mix with the mean over classes (smoothing)
      const logp = tf.logSoftmax(logits);
      const nll = tf.neg(tf.sum(tf.mul(logp, tf.cast(tf.oneHot(labels, c), "float32")), -1));
      if (this.eps === 0) return reduce(nll, reduction);
      const smooth = tf.neg(tf.mean(logp, -1));
      return reduce(tf.add(tf.mul(nll, 1 - this.eps), tf.mul(smooth, this.eps)), reduction);
    });
  }
  activation(pred: tf.Tensor): tf.Tensor {
    if (this.axis === -1 || this.axis === pred.rank - 1) return tf.softmax(pred);
    return tf.tidy(() => {
      const a = this.axis < 0 ? pred.rank + this.axis : this.axis;
      const perm = [...Array(pred.rank).keys()].filter((i) => i !== a).concat(a);
      const back = perm.map((_p, i) => perm.indexOf(i));
      return tf.transpose(tf.softmax(tf.transpose(pred, perm)), back);
    });
  }
  decodes(probs: tf.Tensor): tf.Tensor {
    return tf.argMax(probs, this.axis);
  }
}

/** fastai's `CrossEntropyLossFlat`: softmax cross-entropy over the class axis (default the last), integer targets. */
export function CrossEntropyLossFlat(opts: CrossEntropyOptions = {}): Loss {
  return new CrossEntropy(opts.labelSmoothing ?? 0, "CrossEntropyLossFlat", opts.axis ?? -1);
}

/** Options of `LabelSmoothingCrossEntropy`. */
export interface LabelSmoothingOptions {
  /** ε (default 0.1). */
  eps?: number;
}

/** fastai's `LabelSmoothingCrossEntropy`: (1 − ε)·NLL + ε·mean over classes of −log p (= torch's `label_smoothing`). */
export function LabelSmoothingCrossEntropy(opts: LabelSmoothingOptions = {}): Loss {
  return new CrossEntropy(opts.eps ?? 0.1, "LabelSmoothingCrossEntropy");
}

/** Options of `BCEWithLogitsLossFlat`. */
export interface BCEOptions {
  /** Probability above which a label is predicted by `decodes` (default 0.5). */
  thresh?: number;
}

/** A `BCEWithLogitsLossFlat`: its `thresh` is what `decodes`, `predict` and `export` use (set it after choosing one). */
export interface BCEWithLogitsLoss extends Loss {
  /** Probability above which a label is predicted (fastai's `loss_func.thresh`; assignable). */
  thresh: number;
  /** How `predict` turns logits into probabilities. */
  readonly activationName: "sigmoid";
}

/** fastai's `BCEWithLogitsLossFlat`: multi-label binary cross-entropy on logits, multi-hot float targets. */
export function BCEWithLogitsLossFlat(opts: BCEOptions = {}): BCEWithLogitsLoss {
  return {
    name: "BCEWithLogitsLossFlat",
    thresh: opts.thresh ?? 0.5,
    activationName: "sigmoid",
    forward(pred, targ, reduction = "mean") {
      return tf.tidy(() => {
        if (pred.size !== targ.size) {
          throw new Error(`BCEWithLogitsLossFlat: pred shape [${pred.shape}] and targ shape [${targ.shape}] differ in size`);
        }
        const x = pred;
        const y = tf.reshape(tf.cast(targ, "float32"), pred.shape);
        // stable form: max(x, 0) − x·y + log(1 + exp(−|x|)), averaged over labels per item
        const l = tf.add(tf.sub(tf.relu(x), tf.mul(x, y)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
        if (reduction === "none") return pred.rank > 1 ? tf.mean(tf.reshape(l, [pred.shape[0]!, -1]), -1) : l;
        return reduce(l, reduction);
      });
    },
    activation: (pred) => tf.sigmoid(pred),
    decodes(probs) {
      const thresh = this.thresh;
      return tf.tidy(() => tf.cast(tf.greater(probs, thresh), "float32"));
    },
  };
}

function regression(name: string, f: (d: tf.Tensor) => tf.Tensor): Loss {
  return {
    name,
    forward(pred, targ, reduction = "mean") {
      return tf.tidy(() => {
        if (pred.size !== targ.size) {
          throw new Error(`${name}: pred shape [${pred.shape}] and targ shape [${targ.shape}] differ in size`);
        }
        const d = f(tf.sub(tf.reshape(pred, [-1]), tf.reshape(tf.cast(targ, "float32"), [-1])));
        if (reduction === "none" && pred.rank > 1) return tf.mean(tf.reshape(d, [pred.shape[0]!, -1]), -1);
        return reduce(d, reduction);
      });
    },
    activation: (pred) => tf.clone(pred),
    decodes: (probs) => tf.clone(probs),
  };
}

/** fastai's `MSELossFlat`: mean squared error over flattened predictions and targets. */
export function MSELossFlat(): Loss {
  return regression("MSELossFlat", tf.square);
}

/** fastai's `L1LossFlat`: mean absolute error over flattened predictions and targets. */
export function L1LossFlat(): Loss {
  return regression("L1LossFlat", tf.abs);
}

/** Wrap a plain `(pred, targ) => scalar` function as a `Loss` (activation: identity; per-item losses unsupported). */
export function toLoss(f: Loss | ((pred: tf.Tensor, targ: tf.Tensor) => tf.Tensor)): Loss {
  if (typeof f !== "function") return f;
  return {
    name: f.name || "loss",
    forward(pred, targ, reduction = "mean") {
      if (reduction === "none") throw new Error(`the loss function ${f.name || "(anonymous)"} is a plain function: per-item losses need a Loss object`);
      return tf.tidy(() => {
        const v = f(pred, targ);
        return reduction === "sum" ? tf.mul(v, pred.shape[0] ?? 1) : v;
      });
    },
    activation: (pred) => tf.clone(pred),
    decodes: (probs) => tf.clone(probs),
  };
}
