/**
 * Inference over whole loaders: `getPreds`, `validate` and test-time augmentation (`tta`).
 */
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import type { DataLoaderLike, Preds } from "./contracts";
import type { Learner } from "./learner";
import { resetModelState } from "./predict";
import { MetricTotals } from "./metrics";

/** Options of `getPreds`. */
export interface GetPredsOptions {
  /** 0 = training loader, 1 = validation loader (default 1). */
  dsIdx?: number;
  /** Any loader instead of `dsIdx`. */
  dl?: DataLoaderLike;
  /** Also return the per-item loss (default false). */
  withLoss?: boolean;
  /** Apply the loss's activation (softmax/sigmoid) (default true). */
  act?: boolean;
  /** Transform each input batch first (used by `tta`; default none). */
  transform?: (xb: tf.Tensor) => tf.Tensor;
}

function loaderOf(learn: Learner, opts: { dsIdx?: number; dl?: DataLoaderLike }): DataLoaderLike {
  return opts.dl ?? (opts.dsIdx === 0 ? learn.dls.train : learn.dls.valid);
}

/** Predictions, targets and optionally per-item losses over a loader, in loader order (see `Learner.getPreds`). */
export async function getPreds(learn: Learner, opts: GetPredsOptions = {}): Promise<Preds> {
  return (await collect(learn, opts, false)).out!;
}

/**
 * The loop of `getPreds`; with `meanLoss` it also averages the batches' mean losses, weighted by
 * batch size (as the training loop computes the validation loss), which works for a loss given as
 * a plain function too (it has no per-item form).
 */
async function collect(
  learn: Learner,
  opts: GetPredsOptions,
  meanLoss: boolean,
  totals?: MetricTotals,
): Promise<{ out?: Preds; loss: number }> {
  await ready();
  let lossSum = 0;
  let count = 0;
  const dl = loaderOf(learn, opts);
  const act = opts.act ?? true;
  const ps: tf.Tensor[] = [];
  const ts: tf.Tensor[] = [];
  const ls: tf.Tensor[] = [];
  resetModelState(learn.model); // a recurrent model starts each pass from a clean state (fastai's before_validate)
  try {
    for await (const b of dl) {
      try {
        const { p, l } = tf.tidy(() => {
          const x = opts.transform ? opts.transform(b.xb) : b.xb;
          const logits = learn.model.apply(x, { training: false }) as tf.Tensor;
          if (meanLoss) {
            const bs = b.yb.shape[0] ?? 1;
            lossSum += learn.lossFunc.forward(logits, b.yb, "mean").dataSync()[0]! * bs;
            count += bs;
          }
          totals?.add(logits, b.yb);
          if (totals && !totals.keepsPreds) return { p: undefined, l: undefined };
          return {
            p: act ? learn.lossFunc.activation(logits) : logits,
            l: opts.withLoss ? learn.lossFunc.forward(logits, b.yb, "none") : undefined,
          };
        });
        if (p) {
          ps.push(p);
          ts.push(b.yb.clone());
        }
        if (l) ls.push(l);
      } finally {
        b.xb.dispose();
        b.yb.dispose();
      }
    }
    if (!ps.length && !count) throw new Error("getPreds: the loader yielded no batches");
    if (!ps.length) return { loss: lossSum / count };
    const [cp, ct] = concatBatches(ps, ts);
    const out: Preds = { preds: cp as tf.Tensor2D, targs: ct };
    if (opts.withLoss) out.losses = tf.concat(ls) as tf.Tensor1D;
    return { out, loss: count ? lossSum / count : NaN };
  } finally {
    tf.dispose([...ps, ...ts, ...ls]);
  }
}

/** `[loss, ...metrics]` over a loader (default the validation set). */
export async function validate(learn: Learner, opts: { dsIdx?: number; dl?: DataLoaderLike } = {}): Promise<number[]> {
  // additive metrics are summed batch by batch (no predictions kept unless a metric needs them all)
  const totals = new MetricTotals(learn.metrics);
  const { out, loss } = await collect(learn, { ...opts, act: false }, true, totals);
  try {
    return [loss, ...totals.values(out)];
  } finally {
    if (out) tf.dispose([out.preds, out.targs]);
  }
}

/** Options of `tta`. */
export interface TtaOptions {
  /** 0 = training loader, 1 = validation loader (default 1). */
  dsIdx?: number;
  /** Any loader instead of `dsIdx`. */
  dl?: DataLoaderLike;
  /** Augmented passes (default 4, as fastai). */
  n?: number;
  /**
   * Weight of the plain predictions: result = lerp(mean(augmented), plain, beta) = (1 − beta)·mean(augmented) + beta·plain
   * (default 0.25). `null`, as fastai's `beta=None`: no blend; the result holds both, `augPreds` (the mean of the
   * augmented passes) and `preds` (the plain predictions), see `TtaSplit`.
   */
  beta?: number | null;
  /** Return the element-wise max over the augmented passes and the plain predictions instead; `beta` is then ignored (default false, as fastai). */
  useMax?: boolean;
  /**
   * How the passes are augmented (default "train"):
   * - "train": as fastai, the loader's TRAINING transforms (random crops, `augTransforms`) on its
   *   items, through `dl.new({ train: true })`; each pass draws afresh;
   * - "flip": a horizontal flip on even passes, the identity on odd ones (no random draws);
   * - a function `(xb, pass) => augmented xb`.
   */
  augment?: "train" | "flip" | ((xb: tf.Tensor, pass: number) => tf.Tensor);
}

/** What `tta({ beta: null })` returns: the two predictions fastai's `tta(beta=None)` returns as `(aug_preds, preds)`, unblended. */
export interface TtaSplit extends Preds {
  /** The mean of the `n` augmented passes' predictions. */
  augPreds: tf.Tensor2D;
  /** The plain (un-augmented) predictions, as `getPreds` gives them. */
  preds: tf.Tensor2D;
}

/**
 * The options that ask `tta` for `TtaSplit`. Built with `Omit`, not `TtaOptions & { beta: null }`: without
 * strictNullChecks (tslab's notebooks) `number | null` is `number`, and the intersection would be `never`.
 */
export type TtaSplitOptions = Omit<TtaOptions, "beta" | "useMax"> & { beta: null; useMax?: false };

/** TTA's "flip" augmentation: mirror NHWC images left-right on even passes. */
function flipEven(xb: tf.Tensor, pass: number): tf.Tensor {
  return pass % 2 === 0 ? tf.reverse(xb, 2) : xb.clone();
}

/**
 * fastai's `tta`: `n` passes with augmentation, then one plain pass; returns
 * torch.lerp(mean of the augmented passes, plain, beta), or with `beta: null` both unblended (see `TtaOptions`).
 */
export async function tta(learn: Learner, opts: TtaSplitOptions): Promise<TtaSplit>;
export async function tta(learn: Learner, opts?: TtaOptions): Promise<Preds>;
export async function tta(learn: Learner, opts: TtaOptions = {}): Promise<Preds | TtaSplit> {
  const n = opts.n ?? 4;
  const beta = opts.beta === undefined ? 0.25 : opts.beta;
  if (!Number.isInteger(n) || n < 1) throw new Error(`tta: n is the number of augmented passes, a whole number ≥ 1; got ${n}`);
  if (beta !== null && !(beta >= 0 && beta <= 1)) {
    throw new Error(`tta: beta is the weight of the plain predictions, between 0 and 1, or null for both predictions unblended; got ${beta}`);
  }
  const augment = opts.augment ?? "train";
  const base = loaderOf(learn, opts);
  let augPass: (i: number) => Promise<Preds>;
  let plainDl: DataLoaderLike = base;
  if (augment === "train") {
    if (typeof base.new !== "function") {
      throw new Error(
        'tta: this loader has no training transforms to apply (it has no new({ train: true }), e.g. a TensorDataLoader); pass augment: "flip" or a function (xb, pass) => augmented xb',
      );
    }
    // as fastai's dl.new(shuffled=False, drop_last=False): every pass in the same item order
    const augDl = base.new({ train: true, shuffle: false, dropLast: false });
    plainDl = base.new({ train: false, shuffle: false, dropLast: false });
    augPass = () => getPreds(learn, { dl: augDl });
  } else {
    const f = augment === "flip" ? flipEven : augment;
    if (typeof f !== "function") throw new Error(`tta: augment must be "train", "flip" or a function; got ${String(augment)}`);
    augPass = (i) => getPreds(learn, { dl: base, transform: (x) => f(x, i) });
  }
  const aug: tf.Tensor[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const r = await augPass(i);
      r.targs.dispose();
      aug.push(r.preds);
    }
    const plain = await getPreds(learn, { dl: plainDl });
    if (beta === null && !opts.useMax) {
      const augPreds = tf.tidy(() => tf.mean(tf.stack(aug), 0) as tf.Tensor2D);
      return { augPreds, preds: plain.preds, targs: plain.targs };
    }
    const preds = tf.tidy(() => {
      const stacked = tf.stack(aug);
      if (opts.useMax) return tf.maximum(tf.max(stacked, 0), plain.preds) as tf.Tensor2D;
      const b = beta as number;
      return tf.add(tf.mul(tf.mean(stacked, 0), 1 - b), tf.mul(plain.preds, b)) as tf.Tensor2D;
    });
    plain.preds.dispose();
    return { preds, targs: plain.targs };
  } finally {
    tf.dispose(aug);
  }
}

/**
 * Batches' predictions and targets in one tensor each. Batches whose shapes differ past
 * the first axis (a language model's shorter last sequence) are flattened to [items, classes] and
 * [items] first, which is how the metrics read them anyway.
 */
export function concatBatches(preds: tf.Tensor[], targs: tf.Tensor[]): [tf.Tensor, tf.Tensor] {
  const tail = (x: tf.Tensor) => x.shape.slice(1).join(",");
  if (preds.every((x) => tail(x) === tail(preds[0]!))) return [tf.concat(preds), tf.concat(targs)];
  return tf.tidy(() => [
    tf.concat(preds.map((x) => tf.reshape(x, [-1, x.shape[x.rank - 1]!]))),
    tf.concat(targs.map((x) => tf.reshape(x, [-1]))),
  ]);
}
