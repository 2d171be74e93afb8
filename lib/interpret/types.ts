/**
 * The parts of a `Learner` and its `DataLoaders` that interpretation uses, as structural types
 * (HELPERS.md's Learner and Data contracts), so this floor depends on no concrete class.
 */
import type * as tf from "../engine/tf";

/** What interpretation needs of a `DataLoader`: its items in prediction order and their images. */
export interface LoaderLike {
  /** What `getItems` returned, e.g. file paths; `getPreds` returns predictions in this order. */
  items: readonly unknown[];
  /** Item `i` after the validation item transforms, float in [0,1], un-normalised. */
  loadImage(i: number): Promise<tf.Tensor3D>;
  /** Whether batches come shuffled (then predictions are not in item order). */
  shuffle?: boolean;
  /** Items found unreadable and skipped by iteration (so absent from `getPreds`). */
  bad?: ReadonlySet<number>;
  /** fastai's `dl.new(...)`: a copy with other options, e.g. unshuffled for predictions in item order. */
  new?(opts: { shuffle?: boolean; dropLast?: boolean; train?: boolean }): LoaderLike;
}

/**
 * What interpretation needs of `DataLoaders`. Loosely typed on purpose, so a `Learner` typed
 * against the learner floor's own narrower `DataLoadersLike` is accepted as it is; `loaderOf`
 * and `vocabOf` check the rest at run time.
 */
export interface DataLoadersLike {
  train: unknown;
  valid: unknown;
  vocab?: readonly string[];
  isMultiLabel?: boolean;
}

/** What `learn.getPreds` returns (the caller disposes the tensors). */
export interface PredsResult {
  preds: tf.Tensor2D;
  targs: tf.Tensor;
  losses?: tf.Tensor1D;
}

/** What interpretation needs of a `Learner`. */
export interface LearnerLike {
  dls: DataLoadersLike;
  /** `dl` (a loader to predict on instead of split `dsIdx`) is used only for the training split, see `fromLearner`. */
  getPreds(opts?: { dsIdx?: number; withLoss?: boolean; dl?: unknown }): Promise<PredsResult>;
}

/** `x` as a `LoaderLike`, or an error saying what the `split` loader lacks. */
export function asLoader(x: unknown, split: string): LoaderLike {
  const dl = x as Partial<LoaderLike> | null | undefined;
  if (!dl || typeof dl !== "object" || !Array.isArray(dl.items) || typeof dl.loadImage !== "function") {
    throw new Error(`the ${split} DataLoader has no \`items\` array and \`loadImage(i)\`; interpretation needs both (see the Data contract)`);
  }
  return dl as LoaderLike;
}

/** The loader of split `dsIdx` (0 = train, 1 = valid), with an error naming the value otherwise. */
export function loaderOf(dls: DataLoadersLike, dsIdx: number): LoaderLike {
  if (dsIdx === 0) return asLoader(dls.train, "train");
  if (dsIdx === 1) return asLoader(dls.valid, "valid");
  throw new Error(`dsIdx must be 0 (train) or 1 (valid), got ${dsIdx}`);
}

/** The class names of `dls`, or an error: interpretation is for classification data. */
export function vocabOf(dls: DataLoadersLike): readonly string[] {
  if (!dls.vocab || dls.vocab.length === 0) {
    throw new Error("these DataLoaders have no vocab (class names): ClassificationInterpretation and the cleaner are for classification data");
  }
  return dls.vocab;
}
